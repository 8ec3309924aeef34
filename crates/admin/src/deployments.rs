//! Deployments and stages on the admin listener (SigV4 service
//! `apigateway`, the one rule): `GET /stratus/deployments` lists them and
//! where each stage points; `POST /stratus/deployments {description?,
//! stage?, api?}` snapshots the project (CreateDeployment), moving a stage
//! to it when asked; `POST /stratus/stages {stage, api?, deployment}` moves
//! a stage (`"latest"`: back to the file's choice). A move reloads the
//! server in place and answers once the new routes serve.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{json, Value};

use crate::error::apigw_error;
use crate::AdminState;

pub(crate) fn router() -> axum::Router<AdminState> {
    axum::Router::new()
        .route("/stratus/deployments", get(list).post(create))
        .route("/stratus/stages", post(move_stage))
        .route("/stratus/canaries", post(canary))
}

fn bad(status: StatusCode, code: &str, message: &str) -> Response {
    apigw_error(status, code, message)
}

/// The API holding `stage` (the one named, or the only one with it).
fn api_of(s: &AdminState, api: Option<&str>, stage: &str) -> Result<String, Box<Response>> {
    let app = s.app();
    let holders: Vec<&str> = app
        .apis
        .iter()
        .filter(|a| api.is_none_or(|n| n == a.name))
        .filter(|a| a.stages.iter().any(|st| st.name == stage))
        .map(|a| a.name.as_str())
        .collect();
    match holders.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(Box::new(bad(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            &format!(
                "no stage {stage:?}{}",
                api.map(|a| format!(" in API {a:?}")).unwrap_or_default()
            ),
        ))),
        many => Err(Box::new(bad(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            &format!(
                "stage {stage:?} is in several APIs ({}): name one",
                many.join(", ")
            ),
        ))),
    }
}

/// A signed request about one stage: its body, and the stage's API.
fn staged<T: serde::de::DeserializeOwned>(
    s: &AdminState,
    request: (&Method, &Uri, &HeaderMap, &[u8]),
    expected: &str,
    stage_of: impl Fn(&T) -> (String, Option<String>),
) -> Result<(T, String), Box<Response>> {
    let req: T = crate::signed_json(s, "apigateway", request, "BadRequestException", expected)?;
    let (stage, api) = stage_of(&req);
    let api = api_of(s, api.as_deref(), &stage)?;
    Ok((req, api))
}

/// Asks the server to reload, and waits for the new routes to serve.
async fn reload(s: &AdminState) -> Result<(), Box<Response>> {
    let Some(tx) = &s.reload else { return Ok(()) };
    let (ack, done) = tokio::sync::oneshot::channel();
    let sent = tx.send(ack).await.is_ok();
    if sent && done.await.unwrap_or(false) {
        return Ok(());
    }
    Err(Box::new(bad(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalFailure",
        "the stage moved, but the server could not reload (see its log)",
    )))
}

async fn list(State(s): State<AdminState>, m: Method, u: Uri, h: HeaderMap, b: Bytes) -> Response {
    if let Err((code, why)) = crate::sigv4::authorize(&s, "apigateway", &m, &u, &h, &b) {
        return bad(StatusCode::FORBIDDEN, code, &why);
    }
    let store = s.functions.deployments();
    let deployments: Vec<Value> = store
        .list()
        .iter()
        .map(|d| json!({ "id": d.id, "description": d.description, "created": d.created, "functions": d.functions }))
        .collect();
    let stages: Vec<Value> = s
        .app()
        .apis
        .iter()
        .flat_map(|a| {
            a.stages.iter().map(move |st| {
                json!({
                    "api": a.name, "stage": st.name, "deployment": st.deployment.to_string(),
                    "canary": st.canary.as_ref().map(|c| json!({ "deployment": c.deployment, "percent": c.percent })),
                })
            })
        })
        .collect();
    axum::Json(json!({ "deployments": deployments, "stages": stages })).into_response()
}

#[derive(serde::Deserialize, Default)]
struct NewDeployment {
    #[serde(default)]
    description: String,
    stage: Option<String>,
    api: Option<String>,
}

async fn create(
    State(s): State<AdminState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let req: NewDeployment = match crate::signed_json(
        &s,
        "apigateway",
        (&m, &u, &h, &b),
        "BadRequestException",
        "expected {\"description\"?, \"stage\"?, \"api\"?}",
    ) {
        Ok(r) => r,
        Err(r) => return *r,
    };
    let target = match &req.stage {
        Some(stage) => match api_of(&s, req.api.as_deref(), stage) {
            Ok(api) => Some((api, stage.clone())),
            Err(r) => return *r,
        },
        None => None,
    };
    let (runtime, app, description) = (s.functions.clone(), s.app(), req.description.clone());
    let made = tokio::task::spawn_blocking(move || {
        runtime
            .deployments()
            .create(&app, runtime.versions(), &description)
    })
    .await;
    let d = match made {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            return bad(
                StatusCode::BAD_REQUEST,
                "BadRequestException",
                &e.to_string(),
            )
        }
        Err(e) => {
            return bad(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
                &e.to_string(),
            )
        }
    };
    if let Some((api, stage)) = &target {
        if let Err(e) = s.functions.deployments().point(api, stage, Some(d.id)) {
            return bad(
                StatusCode::BAD_REQUEST,
                "BadRequestException",
                &e.to_string(),
            );
        }
        if let Err(r) = reload(&s).await {
            return *r;
        }
    }
    (
        StatusCode::CREATED,
        axum::Json(json!({
            "id": d.id, "description": d.description, "functions": d.functions,
            "stage": target.map(|(a, st)| format!("{a}/{st}")),
        })),
    )
        .into_response()
}

#[derive(serde::Deserialize)]
struct Move {
    stage: String,
    api: Option<String>,
    deployment: Value,
}

async fn move_stage(
    State(s): State<AdminState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let (req, api): (Move, String) = match staged(
        &s,
        (&m, &u, &h, &b),
        "expected {\"stage\", \"api\"?, \"deployment\": ID or \"latest\"}",
        |r: &Move| (r.stage.clone(), r.api.clone()),
    ) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let to = match &req.deployment {
        Value::String(l) if l == "latest" => None,
        v => match v
            .as_u64()
            .or_else(|| v.as_str().and_then(|t| t.parse().ok()))
        {
            Some(n) => Some(n as u32),
            None => {
                return bad(
                    StatusCode::BAD_REQUEST,
                    "BadRequestException",
                    "deployment: an id, or \"latest\"",
                )
            }
        },
    };
    if let Err(e) = s.functions.deployments().point(&api, &req.stage, to) {
        return bad(StatusCode::NOT_FOUND, "NotFoundException", &e.to_string());
    }
    if let Err(r) = reload(&s).await {
        return *r;
    }
    axum::Json(json!({
        "api": api, "stage": req.stage,
        "deployment": to.map_or_else(|| "latest".to_owned(), |n| n.to_string()),
    }))
    .into_response()
}

#[derive(serde::Deserialize)]
struct CanaryChange {
    stage: String,
    api: Option<String>,
    /// `set` (with `deployment` and `percent`), `promote` or `remove`.
    action: String,
    deployment: Option<u32>,
    percent: Option<f64>,
}

/// `POST /stratus/canaries`: a stage's canary set, promoted (the stage
/// moves to the canary's deployment, the canary goes) or removed.
async fn canary(
    State(s): State<AdminState>,
    m: Method,
    u: Uri,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let (req, api): (CanaryChange, String) = match staged(
        &s,
        (&m, &u, &h, &b),
        "expected {\"stage\", \"api\"?, \"action\": \"set\"|\"promote\"|\"remove\", \"deployment\"?, \"percent\"?}",
        |r: &CanaryChange| (r.stage.clone(), r.api.clone()),
    ) {
        Ok(x) => x,
        Err(r) => return *r,
    };
    let store = s.functions.deployments();
    let current = s
        .app()
        .apis
        .iter()
        .filter(|a| a.name == api)
        .flat_map(|a| a.stages.iter())
        .find(|st| st.name == req.stage)
        .and_then(|st| st.canary.clone());
    use stratus_runtime::deployments::CanarySetting;
    let done = match (req.action.as_str(), req.deployment, req.percent) {
        ("set", Some(deployment), Some(percent)) => store.set_canary(
            &api,
            &req.stage,
            Some(CanarySetting {
                deployment,
                percent,
            }),
        ),
        ("promote", ..) => match current {
            Some(c) => store
                .point(&api, &req.stage, Some(c.deployment))
                .and_then(|()| store.set_canary(&api, &req.stage, None)),
            None => {
                return bad(
                    StatusCode::BAD_REQUEST,
                    "BadRequestException",
                    &format!("stage {api}/{} has no canary", req.stage),
                )
            }
        },
        ("remove", ..) => store.set_canary(&api, &req.stage, None),
        _ => {
            return bad(
                StatusCode::BAD_REQUEST,
                "BadRequestException",
                "action: set (with deployment and percent), promote or remove",
            )
        }
    };
    if let Err(e) = done {
        return bad(
            StatusCode::BAD_REQUEST,
            "BadRequestException",
            &e.to_string(),
        );
    }
    if let Err(r) = reload(&s).await {
        return *r;
    }
    axum::Json(json!({ "api": api, "stage": req.stage, "action": req.action })).into_response()
}
