//! The `@connections` management API of WebSocket APIs, as API Gateway's
//! `execute-api` endpoint has it, at `/ws/{api}/{stage}/@connections/{id}`
//! on the admin listener: `POST` sends data, `GET` describes, `DELETE`
//! closes. Requests must be SigV4-signed (service `execute-api`) with the
//! project's credentials, so boto3's `apigatewaymanagementapi` client works
//! with `endpoint_url` set to `http://{admin}/ws/{api}/{stage}`.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use stratus_gateway::{ConnectionInfo, Outbound, SendError};

use crate::error::apigw_error as error;
use crate::AdminState;

pub(crate) fn router() -> axum::Router<AdminState> {
    axum::Router::new().route(
        "/ws/{api}/{stage}/@connections/{id}",
        get(handle).post(handle).delete(handle),
    )
}

fn gone(api: &str, stage: &str, id: &str) -> Response {
    stratus_telemetry::ConnectionsCalled {
        api,
        stage,
        posted: false,
        gone: true,
    }
    .emit();
    error(
        StatusCode::GONE,
        "GoneException",
        &format!("Connection {id} is gone"),
    )
}

async fn handle(
    State(s): State<AdminState>,
    Path((api, stage, id)): Path<(String, String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err((_, why)) =
        crate::sigv4::authorize(&s, "execute-api", &method, &uri, &headers, &body)
    {
        tracing::warn!("@connections request refused: {why}");
        return error(StatusCode::FORBIDDEN, "ForbiddenException", &why);
    }
    let ws = s.websockets();
    if !ws.find(&api, &stage) {
        return error(
            StatusCode::NOT_FOUND,
            "NotFoundException",
            &format!("No WebSocket API {api:?} with stage {stage:?}"),
        );
    }
    // A connection of another API or stage is not visible here.
    let info = ws
        .registry()
        .info(&id)
        .await
        .filter(|i| i.api == api && i.stage == stage);
    answer(&ws, info, &api, &stage, &id, method, body).await
}

/// `@connections` on the public listener, where API Gateway's execute-api
/// domain has it: `https://{domainName}/{stage}/@connections/{id}`, as
/// AWS's examples hand it to `ApiGatewayManagementApi` (see
/// `WebSockets::management_call` for the paths that reach a connection).
/// Signed as on the admin listener.
pub async fn public_call(
    s: &AdminState,
    call: &stratus_gateway::Management<'_>,
    method: Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    if let Err((_, why)) = crate::sigv4::authorize(s, "execute-api", &method, uri, headers, &body) {
        tracing::warn!("@connections request refused: {why}");
        return error(StatusCode::FORBIDDEN, "ForbiddenException", &why);
    }
    let id = percent_encoding::percent_decode_str(call.id).decode_utf8_lossy();
    let ws = s.websockets();
    let info = ws.registry().info(&id).await;
    let Some(info) = info.filter(|i| ws.reaches(call, &i.api, &i.stage)) else {
        // Unknown here, or of another API or stage: gone, as on AWS.
        let stage = call.prefix.trim_start_matches('/');
        return gone("-", stage, &id);
    };
    let (api, stage) = (info.api.clone(), info.stage.clone());
    answer(&ws, Some(info), &api, &stage, &id, method, body).await
}

async fn answer(
    ws: &stratus_gateway::WebSockets,
    info: Option<ConnectionInfo>,
    api: &str,
    stage: &str,
    id: &str,
    method: Method,
    body: Bytes,
) -> Response {
    let registry = ws.registry();
    let Some(info) = info else {
        return gone(api, stage, id);
    };
    match method {
        Method::POST => {
            let msg = match String::from_utf8(body.to_vec()) {
                Ok(text) => Outbound::Text(text),
                Err(_) => Outbound::Binary(body),
            };
            match registry.send(id, msg).await {
                Ok(()) => {
                    stratus_telemetry::ConnectionsCalled {
                        api,
                        stage,
                        posted: true,
                        gone: false,
                    }
                    .emit();
                    StatusCode::OK.into_response()
                }
                Err(SendError::Gone | SendError::TooSlow) => gone(api, stage, id),
            }
        }
        Method::GET => axum::Json(describe(&info)).into_response(),
        Method::DELETE => {
            let close = Outbound::Close {
                code: 1000,
                reason: "Closed by the server".into(),
            };
            match registry.send(id, close).await {
                Ok(()) | Err(SendError::TooSlow) => StatusCode::NO_CONTENT.into_response(),
                Err(SendError::Gone) => gone(api, stage, id),
            }
        }
        _ => error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "use POST, GET or DELETE",
        ),
    }
}

/// ISO 8601 with milliseconds, as AWS's APIs write times.
pub(crate) fn iso(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string()
}

fn describe(i: &ConnectionInfo) -> serde_json::Value {
    serde_json::json!({
        "connectedAt": iso(i.connected_at),
        "identity": { "sourceIp": i.source_ip, "userAgent": i.user_agent },
        "lastActiveAt": iso(i.last_active_at),
    })
}
