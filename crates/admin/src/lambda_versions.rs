//! Lambda's versions and aliases API, as boto3's `lambda` client and the
//! AWS CLI call it: PublishVersion, ListVersionsByFunction, CreateAlias,
//! GetAlias, UpdateAlias, DeleteAlias, ListAliases (SigV4 service `lambda`,
//! the one rule). The store is `stratus_runtime::versions`.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{json, Value};
use stratus_runtime::versions::{Alias, Version, VersionError};

use crate::error::lambda_error;
use crate::AdminState;

pub(crate) fn router() -> axum::Router<AdminState> {
    axum::Router::new()
        .route(
            "/2015-03-31/functions/{name}/versions",
            get(list_versions).post(publish),
        )
        .route(
            "/2015-03-31/functions/{name}/aliases",
            get(list_aliases).post(create_alias),
        )
        .route(
            "/2015-03-31/functions/{name}/aliases/{alias}",
            get(get_alias).put(update_alias).delete(delete_alias),
        )
}

fn failed(e: VersionError) -> Response {
    match e {
        VersionError::NotFound(m) => {
            lambda_error(StatusCode::NOT_FOUND, "ResourceNotFoundException", &m)
        }
        VersionError::Invalid(m) => lambda_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            &m,
        ),
        VersionError::Io(m) => {
            lambda_error(StatusCode::INTERNAL_SERVER_ERROR, "ServiceException", &m)
        }
    }
}

/// A signed Lambda API request (SigV4 service `lambda`, the one rule)
/// and its JSON body (`{}` when empty).
struct Signed(Value);

impl axum::extract::FromRequest<AdminState> for Signed {
    type Rejection = Response;

    async fn from_request(
        req: axum::extract::Request,
        s: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let body = axum::body::to_bytes(body, stratus_runtime::MAX_SYNC_PAYLOAD)
            .await
            .map_err(|_| {
                lambda_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestTooLargeException",
                    "the body is too large",
                )
            })?;
        if let Err((code, why)) = crate::sigv4::authorize(
            s,
            "lambda",
            &parts.method,
            &parts.uri,
            &parts.headers,
            &body,
        ) {
            return Err(lambda_error(StatusCode::FORBIDDEN, code, &why));
        }
        if body.is_empty() {
            return Ok(Signed(json!({})));
        }
        serde_json::from_slice(&body).map(Signed).map_err(|_| {
            lambda_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContentException",
                "Could not parse request body into json",
            )
        })
    }
}

/// The function a path names (by name or ARN), if the project has it.
fn function(s: &AdminState, raw: &str) -> Result<String, Box<Response>> {
    let name = crate::lambda::function_target(raw)
        .split(':')
        .next()
        .unwrap_or_default()
        .to_owned();
    if s.functions.has_function(&name) {
        return Ok(name);
    }
    let arn = stratus_runtime::function_arn(&s.region, &name);
    Err(Box::new(lambda_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        &format!("Function not found: {arn}"),
    )))
}

macro_rules! function {
    ($s:expr, $raw:expr) => {
        match function(&$s, &$raw) {
            Ok(n) => n,
            Err(r) => return *r,
        }
    };
}

/// A version as Lambda's FunctionConfiguration shows it.
fn configuration(s: &AdminState, name: &str, version: Option<&Version>) -> Value {
    let f = s.functions.function(name);
    let arn = stratus_runtime::function_arn(&s.region, name);
    let (qualified, number, sha, description) = match version {
        Some(v) => (
            format!("{arn}:{}", v.version),
            v.version.to_string(),
            v.code_sha256.clone(),
            v.description.clone(),
        ),
        None => (arn, "$LATEST".to_owned(), String::new(), String::new()),
    };
    json!({
        "FunctionName": name,
        "FunctionArn": qualified,
        "Runtime": f.as_ref().map(|f| f.runtime.id().to_owned()),
        "Handler": f.as_ref().map(|f| f.handler.clone()),
        "Timeout": f.as_ref().map(|f| f.timeout.as_secs()),
        "MemorySize": f.as_ref().map(|f| f.memory_mb),
        "Role": format!("arn:aws:iam::{}:role/stratus", stratus_runtime::ACCOUNT_ID),
        "CodeSha256": sha,
        "Version": number,
        "Description": description,
        "State": "Active",
        "LastModified": version
            .and_then(|v| chrono::DateTime::from_timestamp_millis(v.created))
            .unwrap_or_else(chrono::Utc::now)
            .format("%Y-%m-%dT%H:%M:%S%.3f+0000")
            .to_string(),
    })
}

async fn publish(
    State(s): State<AdminState>,
    Path(raw): Path<String>,
    Signed(req): Signed,
) -> Response {
    let name = function!(s, raw);
    let Some(f) = s.functions.function(&name) else {
        return failed(VersionError::NotFound(name));
    };
    let description = req["Description"].as_str().unwrap_or_default().to_owned();
    let app = s.app();
    let versions = s.functions.clone();
    let published =
        tokio::task::spawn_blocking(move || versions.versions().publish(&f, &app, &description))
            .await;
    match published {
        Ok(Ok(v)) => {
            if let Some(want) = req["CodeSha256"].as_str() {
                if want != v.code_sha256 {
                    return lambda_error(
                        StatusCode::PRECONDITION_FAILED,
                        "PreconditionFailedException",
                        "CodeSha256 does not match the function's code",
                    );
                }
            }
            (
                StatusCode::CREATED,
                axum::Json(configuration(&s, &name, Some(&v))),
            )
                .into_response()
        }
        Ok(Err(e)) => failed(e),
        Err(e) => failed(VersionError::Io(e.to_string())),
    }
}

async fn list_versions(
    State(s): State<AdminState>,
    Path(raw): Path<String>,
    _: Signed,
) -> Response {
    let name = function!(s, raw);
    let mut all = vec![configuration(&s, &name, None)];
    all.extend(
        s.functions
            .versions()
            .list(&name)
            .iter()
            .map(|v| configuration(&s, &name, Some(v))),
    );
    axum::Json(json!({ "Versions": all })).into_response()
}

fn alias_json(s: &AdminState, name: &str, a: &Alias) -> Value {
    let weights: BTreeMap<String, f64> =
        a.weights.iter().map(|(v, w)| (v.to_string(), *w)).collect();
    let mut out = json!({
        "AliasArn": format!("{}:{}", stratus_runtime::function_arn(&s.region, name), a.name),
        "Name": a.name,
        "FunctionVersion": a.version.to_string(),
        "Description": a.description,
        "RevisionId": format!("{:016x}", revision_id(&serde_json::to_string(a).unwrap_or_default())),
    });
    if !weights.is_empty() {
        out["RoutingConfig"] = json!({ "AdditionalVersionWeights": weights });
    }
    out
}

/// A revision id that changes with the alias.
fn revision_id(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// An alias from a CreateAlias/UpdateAlias body, over `base`.
fn alias_from(req: &Value, base: Alias) -> Result<Alias, VersionError> {
    let version = match req.get("FunctionVersion").and_then(Value::as_str) {
        Some(v) => v.parse::<u32>().map_err(|_| {
            VersionError::Invalid(format!(
                "FunctionVersion {v:?} is not a published version number"
            ))
        })?,
        None => base.version,
    };
    let weights = match req.get("RoutingConfig") {
        Some(rc) => rc["AdditionalVersionWeights"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, w)| {
                let v = k
                    .parse::<u32>()
                    .map_err(|_| VersionError::Invalid(format!("{k:?} is not a version")))?;
                let w = w.as_f64().ok_or_else(|| {
                    VersionError::Invalid(format!("the weight of {k} is not a number"))
                })?;
                Ok((v, w))
            })
            .collect::<Result<_, VersionError>>()?,
        None => base.weights,
    };
    Ok(Alias {
        name: base.name,
        version,
        weights,
        description: req
            .get("Description")
            .and_then(Value::as_str)
            .map_or(base.description, str::to_owned),
    })
}

async fn create_alias(
    State(s): State<AdminState>,
    Path(raw): Path<String>,
    Signed(req): Signed,
) -> Response {
    let name = function!(s, raw);
    let Some(alias) = req["Name"].as_str().map(str::to_owned) else {
        return failed(VersionError::Invalid("Name is required".into()));
    };
    let store = s.functions.versions();
    if store.alias(&name, &alias).is_some() {
        return lambda_error(
            StatusCode::CONFLICT,
            "ResourceConflictException",
            &format!(
                "Alias already exists: {}:{alias}",
                stratus_runtime::function_arn(&s.region, &name)
            ),
        );
    }
    let base = Alias {
        name: alias,
        version: 0,
        weights: BTreeMap::new(),
        description: String::new(),
    };
    match alias_from(&req, base).and_then(|a| store.set_alias(&name, a)) {
        Ok(a) => (StatusCode::CREATED, axum::Json(alias_json(&s, &name, &a))).into_response(),
        Err(e) => failed(e),
    }
}

async fn update_alias(
    State(s): State<AdminState>,
    Path((raw, alias)): Path<(String, String)>,
    Signed(req): Signed,
) -> Response {
    let name = function!(s, raw);
    let store = s.functions.versions();
    let Some(base) = store.alias(&name, &alias) else {
        return failed(VersionError::NotFound(format!(
            "function {name} has no alias {alias}"
        )));
    };
    match alias_from(&req, base).and_then(|a| store.set_alias(&name, a)) {
        Ok(a) => axum::Json(alias_json(&s, &name, &a)).into_response(),
        Err(e) => failed(e),
    }
}

async fn get_alias(
    State(s): State<AdminState>,
    Path((raw, alias)): Path<(String, String)>,
    _: Signed,
) -> Response {
    let name = function!(s, raw);
    match s.functions.versions().alias(&name, &alias) {
        Some(a) => axum::Json(alias_json(&s, &name, &a)).into_response(),
        None => failed(VersionError::NotFound(format!(
            "function {name} has no alias {alias}"
        ))),
    }
}

async fn delete_alias(
    State(s): State<AdminState>,
    Path((raw, alias)): Path<(String, String)>,
    _: Signed,
) -> Response {
    let name = function!(s, raw);
    match s.functions.versions().delete_alias(&name, &alias) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failed(e),
    }
}

async fn list_aliases(State(s): State<AdminState>, Path(raw): Path<String>, _: Signed) -> Response {
    let name = function!(s, raw);
    let all: Vec<Value> = s
        .functions
        .versions()
        .aliases(&name)
        .values()
        .map(|a| alias_json(&s, &name, a))
        .collect();
    axum::Json(json!({ "Aliases": all })).into_response()
}
