//! The project's schedules: `GET /stratus/schedules` lists each with its
//! next run, `POST /stratus/schedules/{name}/run` runs one now (`stratus
//! schedule run NAME`: a developer does not wait an hour). SigV4 service
//! `events`, under the one rule.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::AdminState;

pub(crate) fn router() -> axum::Router<AdminState> {
    axum::Router::new()
        .route("/stratus/schedules", get(list))
        .route("/stratus/schedules/{name}/run", post(run))
}

async fn list(
    State(s): State<AdminState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err((code, why)) = crate::sigv4::authorize(&s, "events", &method, &uri, &headers, b"") {
        return crate::error::apigw_error(StatusCode::FORBIDDEN, code, &why);
    }
    let app = s.app();
    let now = chrono::Utc::now();
    let items: Vec<serde_json::Value> = app
        .schedules
        .iter()
        .map(|sch| {
            serde_json::json!({
                "name": sch.name,
                "function": sch.target,
                "expression": sch.expression,
                "timezone": sch.timezone.name(),
                "enabled": sch.enabled,
                "next": sch.enabled.then(|| sch.parsed.next_after(now, now, sch.timezone)).flatten()
                    .map(|t| t.to_rfc3339()),
            })
        })
        .collect();
    axum::Json(serde_json::json!({ "items": items })).into_response()
}

async fn run(
    State(s): State<AdminState>,
    Path(name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err((code, why)) = crate::sigv4::authorize(&s, "events", &method, &uri, &headers, &body)
    {
        return crate::error::apigw_error(StatusCode::FORBIDDEN, code, &why);
    }
    let app = s.app();
    let Some(sch) = app.schedules.iter().find(|x| x.name == name) else {
        let known: Vec<&str> = app.schedules.iter().map(|x| x.name.as_str()).collect();
        return crate::error::apigw_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("no schedule {name:?} (schedules: {})", known.join(", ")),
        );
    };
    match stratus_runtime::schedules::fire(&s.functions, sch, &s.region, chrono::Utc::now()).await {
        Ok(id) => axum::Json(
            serde_json::json!({ "schedule": sch.name, "function": sch.target, "requestId": id }),
        )
        .into_response(),
        Err(e) => crate::error::apigw_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            &e.to_string(),
        ),
    }
}
