//! API keys and their usage, for `stratus keys` and `stratus usage` (and
//! scripts): `GET/POST /stratus/api-keys`, `DELETE /stratus/api-keys/{name}`
//! (revokes), `GET /stratus/usage?days=N`. SigV4 as every admin API
//! (service `apigateway`). Keys made here are stored with the ones from
//! `stratus.toml` and work at once, without a restart.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use serde::Deserialize;
use stratus_state::keys::KeyError;
use stratus_state::{ApiKeys, KeyRecord};

use crate::error::apigw_error as error;
use crate::AdminState;

pub(crate) fn router() -> axum::Router<AdminState> {
    axum::Router::new()
        .route("/stratus/api-keys", get(list).post(create))
        .route("/stratus/api-keys/{name}", delete(revoke))
        .route("/stratus/usage", get(usage))
}

/// The signature check, and the key store (absent when nothing uses keys).
fn gate(
    s: &AdminState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Arc<ApiKeys>, Box<Response>> {
    if let Err((code, why)) = crate::sigv4::authorize(s, "apigateway", method, uri, headers, body) {
        return Err(Box::new(error(StatusCode::FORBIDDEN, code, &why)));
    }
    s.keys.clone().ok_or_else(|| {
        Box::new(error(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            "this project uses no API keys: declare [usage_plans] (and routes with api_key_required) in stratus.toml",
        ))
    })
}

/// A key as the API shows it, with every plan it is in.
fn item(s: &AdminState, k: &KeyRecord) -> serde_json::Value {
    let app = s.app();
    let mut plans: Vec<&str> = app
        .usage_plans
        .iter()
        .filter(|p| p.keys.contains(&k.name) || k.plans.contains(&p.name))
        .map(|p| p.name.as_str())
        .collect();
    plans.sort_unstable();
    serde_json::json!({
        "id": k.id,
        "name": k.name,
        "value": k.value,
        "enabled": k.enabled,
        "createdDate": k.created,
        "plans": plans,
        "fromConfig": k.from_config,
    })
}

async fn list(
    State(s): State<AdminState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let keys = match gate(&s, &method, &uri, &headers, b"") {
        Ok(k) => k,
        Err(r) => return *r,
    };
    let items: Vec<_> = keys.list().iter().map(|k| item(&s, k)).collect();
    axum::Json(serde_json::json!({ "items": items })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
    value: Option<String>,
    #[serde(default)]
    plans: Vec<String>,
}

async fn create(
    State(s): State<AdminState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let keys = match gate(&s, &method, &uri, &headers, &body) {
        Ok(k) => k,
        Err(r) => return *r,
    };
    let bad = |why: String| error(StatusCode::BAD_REQUEST, "BadRequestException", &why);
    let new: NewKey = match serde_json::from_slice(&body) {
        Ok(n) => n,
        Err(e) => {
            return bad(format!(
                "expected {{\"name\", \"value\"?, \"plans\"?}}: {e}"
            ))
        }
    };
    let name_ok = !new.name.is_empty()
        && new.name.len() <= 64
        && new
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !name_ok {
        return bad("a key name is 1 to 64 letters, digits, '-' or '_'".into());
    }
    if let Some(v) = &new.value {
        let len_ok = (stratus_config::MIN_API_KEY_LEN..=128).contains(&v.len());
        if !len_ok || !v.chars().all(|c| c.is_ascii_graphic()) {
            return bad(format!(
                "a key value is {} to 128 printable ASCII characters, without spaces",
                stratus_config::MIN_API_KEY_LEN
            ));
        }
    }
    if let Some(p) = new
        .plans
        .iter()
        .find(|p| !s.app().usage_plans.iter().any(|u| &u.name == *p))
    {
        let app = s.app();
        let known: Vec<&str> = app.usage_plans.iter().map(|u| u.name.as_str()).collect();
        return bad(format!("no usage plan {p:?} (plans: {})", known.join(", ")));
    }
    match keys.create(&new.name, new.value, new.plans).await {
        Ok(k) => (StatusCode::CREATED, axum::Json(item(&s, &k))).into_response(),
        Err(e) => key_error(&e),
    }
}

/// A key store refusal as API Gateway's management API words it.
fn key_error(e: &KeyError) -> Response {
    let (status, code) = match e {
        KeyError::NameTaken(_) | KeyError::ValueTaken => {
            (StatusCode::CONFLICT, "ConflictException")
        }
        KeyError::Unknown(_) => (StatusCode::NOT_FOUND, "NotFoundException"),
        KeyError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalFailure"),
    };
    error(status, code, &e.to_string())
}

async fn revoke(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let keys = match gate(&s, &method, &uri, &headers, b"") {
        Ok(k) => k,
        Err(r) => return *r,
    };
    match keys.revoke(&name).await {
        Ok(k) => axum::Json(item(&s, &k)).into_response(),
        Err(e) => key_error(&e),
    }
}

#[derive(Deserialize)]
struct UsageQuery {
    days: Option<u32>,
}

async fn usage(
    State(s): State<AdminState>,
    Query(q): Query<UsageQuery>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let keys = match gate(&s, &method, &uri, &headers, b"") {
        Ok(k) => k,
        Err(r) => return *r,
    };
    let days = i64::from(q.days.unwrap_or(7).clamp(1, 40));
    let since =
        stratus_state::keys::day_string(chrono::Utc::now() - chrono::Duration::days(days - 1));
    let names: std::collections::HashMap<String, String> = keys
        .list()
        .iter()
        .map(|k| (k.id.clone(), k.name.clone()))
        .collect();
    let items: Vec<_> = keys
        .usage(&since)
        .into_iter()
        .map(|r| {
            let quota = s
                .app()
                .usage_plans
                .iter()
                .find(|p| p.name == r.plan)
                .and_then(|p| p.quota)
                .map(|q| serde_json::json!({ "limit": q.limit, "period": q.period.to_string() }));
            serde_json::json!({
                "day": r.day,
                "key": names.get(&r.key_id).cloned().unwrap_or_default(),
                "keyId": r.key_id,
                "plan": r.plan,
                "calls": r.calls,
                "quota": quota,
            })
        })
        .collect();
    axum::Json(serde_json::json!({ "items": items })).into_response()
}
