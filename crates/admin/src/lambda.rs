//! The Lambda Invoke API (`POST /2015-03-31/functions/{name}/invocations`),
//! which is what `aws lambda invoke --endpoint-url` and boto3's `lambda`
//! client call.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use stratus_runtime::{InvokeError, InvokeRequest};

use stratus_gateway::header_str;

use crate::error::lambda_error;
use crate::AdminState;

/// Asynchronous (`Event`) payload limit.
const MAX_ASYNC_PAYLOAD: usize = 256 * 1024;

pub(crate) fn router() -> axum::Router<AdminState> {
    axum::Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        .merge(crate::lambda_versions::router())
}

/// `name`, `name:qualifier` or a function ARN (with or without one) →
/// `name` or `name:qualifier`.
pub(crate) fn function_target(raw: &str) -> &str {
    raw.strip_prefix("arn:aws:lambda:")
        .and_then(|rest| rest.split(":function:").nth(1))
        .unwrap_or(raw)
}

async fn invoke(
    State(s): State<AdminState>,
    Path(raw_name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err((code, why)) = crate::sigv4::authorize(&s, "lambda", &method, &uri, &headers, &body)
    {
        tracing::warn!("Invoke API request refused: {why}");
        return lambda_error(StatusCode::FORBIDDEN, code, &why);
    }
    // The qualifier: in the name (`name:3`, an ARN with one), or
    // `?Qualifier=` as boto3 sends it.
    let mut name = function_target(&raw_name).to_owned();
    let qualifier = uri.query().and_then(|q| {
        stratus_gateway::query_pairs(Some(q))
            .into_iter()
            .find(|(k, _)| k == "Qualifier")
            .map(|(_, v)| v)
    });
    if let Some(q) = qualifier {
        if !name.contains(':') {
            name = format!("{name}:{q}");
        }
    }
    let (base, _) = stratus_config::split_qualifier(&name);
    let arn = format!(
        "{}{}",
        stratus_runtime::function_arn(&s.region, base),
        name.strip_prefix(base).unwrap_or("")
    );
    if !s.functions.has_function(base) {
        return lambda_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: {arn}"),
        );
    }
    let payload = if body.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        body
    };
    if serde_json::from_slice::<serde::de::IgnoredAny>(&payload).is_err() {
        return lambda_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json: Unexpected character",
        );
    }
    let client_context = header_str(&headers, "x-amz-client-context").and_then(|c| {
        let raw = base64::engine::general_purpose::STANDARD.decode(c).ok()?;
        String::from_utf8(raw).ok()
    });
    let request = InvokeRequest {
        payload,
        client_context,
        cognito_identity: None,
        tail_logs: header_str(&headers, "x-amz-log-type") == Some("Tail"),
        lineage: 0,
    };

    match header_str(&headers, "x-amz-invocation-type").unwrap_or("RequestResponse") {
        "DryRun" => StatusCode::NO_CONTENT.into_response(),
        "Event" => {
            if request.payload.len() > MAX_ASYNC_PAYLOAD {
                return lambda_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "RequestTooLargeException",
                    &format!("Request must be smaller than {MAX_ASYNC_PAYLOAD} bytes for the InvokeAsync operation"),
                );
            }
            // A version's environments are made ready first; then the
            // event is queued, run as environments free up, retried on
            // errors (see `Runtime::invoke_async`).
            if s.functions.preload(&name).await.is_err() {
                return lambda_error(
                    StatusCode::NOT_FOUND,
                    "ResourceNotFoundException",
                    &format!("Function not found: {arn}"),
                );
            }
            let id = match s.functions.invoke_async(&name, request) {
                Ok(id) => id,
                Err(e) => {
                    return lambda_error(
                        StatusCode::TOO_MANY_REQUESTS,
                        "TooManyRequestsException",
                        &format!("{e} (the function's asynchronous event queue is full)"),
                    )
                }
            };
            let mut resp = StatusCode::ACCEPTED.into_response();
            if let Ok(v) = HeaderValue::from_str(&id) {
                resp.headers_mut().insert("x-amzn-RequestId", v);
            }
            resp
        }
        "RequestResponse" => match s.functions.invoke(&name, request).await {
            Err(InvokeError::NotFound(_)) => lambda_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                &format!("Function not found: {arn}"),
            ),
            Err(InvokeError::TooManyRequests) => lambda_error(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "Rate Exceeded.",
            ),
            Err(e @ InvokeError::PayloadTooLarge) => lambda_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestTooLargeException",
                &e.to_string(),
            ),
            Err(e @ InvokeError::Start(_)) => {
                lambda_error(StatusCode::BAD_GATEWAY, "ServiceException", &e.to_string())
            }
            Ok(out) => {
                let (body, failed) = match out.result {
                    Ok(b) => (b, false),
                    Err(e) => (e.body, true),
                };
                let mut resp = (StatusCode::OK, body).into_response();
                let h = resp.headers_mut();
                h.insert("content-type", HeaderValue::from_static("application/json"));
                if let Ok(v) = HeaderValue::from_str(&out.executed_version) {
                    h.insert("x-amz-executed-version", v);
                }
                if let Ok(v) = HeaderValue::from_str(&out.request_id) {
                    h.insert("x-amzn-RequestId", v);
                }
                if failed {
                    h.insert(
                        "x-amz-function-error",
                        HeaderValue::from_static("Unhandled"),
                    );
                }
                if let Some(tail) = out.log_tail {
                    // The last 4 KB, as Lambda returns them.
                    let bytes = tail.as_bytes();
                    let start = bytes.len().saturating_sub(4096);
                    let encoded = base64::engine::general_purpose::STANDARD.encode(&bytes[start..]);
                    if let Ok(v) = HeaderValue::from_str(&encoded) {
                        h.insert("x-amz-log-result", v);
                    }
                }
                resp
            }
        },
        other => lambda_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            &format!(
                "Unsupported invocation type {other:?}: expected RequestResponse, Event or DryRun"
            ),
        ),
    }
}
