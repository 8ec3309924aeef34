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
        .route(
            "/2021-11-15/functions/{name}/response-streaming-invocations",
            post(invoke_with_response_stream),
        )
        .merge(crate::lambda_versions::router())
}

/// `name`, `name:qualifier` or a function ARN (with or without one) →
/// `name` or `name:qualifier`.
pub(crate) fn function_target(raw: &str) -> &str {
    raw.strip_prefix("arn:aws:lambda:")
        .and_then(|rest| rest.split(":function:").nth(1))
        .unwrap_or(raw)
}

/// A call as the Invoke APIs name it: the function (`name` or
/// `name:qualifier`), its ARN for errors, and the request; or the error
/// answer (refused signature, unknown function, a payload that is not JSON).
fn call_of(
    s: &AdminState,
    raw_name: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(String, String, InvokeRequest), Box<Response>> {
    if let Err((code, why)) = crate::sigv4::authorize(s, "lambda", method, uri, headers, &body) {
        tracing::warn!("Invoke API request refused: {why}");
        return Err(Box::new(lambda_error(StatusCode::FORBIDDEN, code, &why)));
    }
    // The qualifier: in the name (`name:3`, an ARN with one), or
    // `?Qualifier=` as boto3 sends it.
    let mut name = function_target(raw_name).to_owned();
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
        return Err(Box::new(not_found(&arn)));
    }
    let payload = if body.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        body
    };
    if serde_json::from_slice::<serde::de::IgnoredAny>(&payload).is_err() {
        return Err(Box::new(lambda_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json: Unexpected character",
        )));
    }
    let client_context = header_str(headers, "x-amz-client-context").and_then(|c| {
        let raw = base64::engine::general_purpose::STANDARD.decode(c).ok()?;
        String::from_utf8(raw).ok()
    });
    let request = InvokeRequest {
        payload,
        client_context,
        cognito_identity: None,
        tail_logs: header_str(headers, "x-amz-log-type") == Some("Tail"),
        lineage: 0,
    };
    Ok((name, arn, request))
}

fn not_found(arn: &str) -> Response {
    lambda_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        &format!("Function not found: {arn}"),
    )
}

/// A call that could not run, as Lambda answers it.
fn invoke_error(e: InvokeError, arn: &str) -> Response {
    match e {
        InvokeError::NotFound(_) => not_found(arn),
        InvokeError::TooManyRequests => lambda_error(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequestsException",
            "Rate Exceeded.",
        ),
        e @ InvokeError::PayloadTooLarge => lambda_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            &e.to_string(),
        ),
        e @ InvokeError::Start(_) => {
            lambda_error(StatusCode::BAD_GATEWAY, "ServiceException", &e.to_string())
        }
    }
}

/// The last 4 KB of a call's log lines, base64-encoded, as Lambda returns them.
fn log_result(tail: &str) -> String {
    let bytes = tail.as_bytes();
    let start = bytes.len().saturating_sub(4096);
    base64::engine::general_purpose::STANDARD.encode(&bytes[start..])
}

async fn invoke(
    State(s): State<AdminState>,
    Path(raw_name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (name, arn, request) = match call_of(&s, &raw_name, &method, &uri, &headers, body) {
        Ok(call) => call,
        Err(answer) => return *answer,
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
            Err(e) => invoke_error(e, &arn),
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
                    if let Ok(v) = HeaderValue::from_str(&log_result(&tail)) {
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

/// `InvokeWithResponseStream`: the answer as an event stream
/// (`application/vnd.amazon.eventstream`), a `PayloadChunk` for each chunk
/// as the function writes it, then `InvokeComplete` (with `ErrorCode` and
/// `ErrorDetails` when the function failed). A function that does not
/// stream gets one chunk: its whole answer. boto3's
/// `invoke_with_response_stream` reads it.
async fn invoke_with_response_stream(
    State(s): State<AdminState>,
    Path(raw_name): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use stratus_runtime::{StreamEvent, Streamed};
    let (name, arn, request) = match call_of(&s, &raw_name, &method, &uri, &headers, body) {
        Ok(call) => call,
        Err(answer) => return *answer,
    };
    match header_str(&headers, "x-amz-invocation-type").unwrap_or("RequestResponse") {
        "DryRun" => return StatusCode::NO_CONTENT.into_response(),
        "RequestResponse" => {}
        other => {
            return lambda_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                &format!(
                    "Unsupported invocation type {other:?}: expected RequestResponse or DryRun"
                ),
            )
        }
    }
    let (request_id, version, content_type, events) = match s
        .functions
        .invoke_stream(&name, request)
        .await
    {
        Err(e) => return invoke_error(e, &arn),
        Ok(Streamed::Whole(out)) => {
            let mut events = Vec::new();
            let log = out.log_tail.as_deref().map(log_result);
            match out.result {
                Ok(b) => {
                    events.push(payload_chunk(b));
                    events.push(invoke_complete(None, log));
                }
                Err(e) => events.push(invoke_complete(Some(&e), log)),
            }
            let events = futures_util::stream::iter(
                events.into_iter().map(Ok::<_, std::convert::Infallible>),
            );
            let body = axum::body::Body::from_stream(events);
            (
                out.request_id,
                out.executed_version,
                "application/json".to_owned(),
                body,
            )
        }
        Ok(Streamed::Stream(st)) => {
            let events = futures_util::stream::unfold(Some(st.chunks), |rx| async move {
                let mut rx = rx?;
                let (message, more) = match rx.recv().await {
                    Some(StreamEvent::Data(b)) => (payload_chunk(b), true),
                    Some(StreamEvent::End) => (invoke_complete(None, None), false),
                    Some(StreamEvent::Failed(e)) => (invoke_complete(Some(&e), None), false),
                    None => {
                        let cut = stratus_runtime::FunctionError {
                                kind: stratus_runtime::ErrorKind::Crash,
                                error_type: "Stratus.StreamCut".into(),
                                body: Bytes::from_static(
                                    br#"{"errorMessage":"the stream was cut (the server is stopping)"}"#,
                                ),
                            };
                        (invoke_complete(Some(&cut), None), false)
                    }
                };
                Some((
                    Ok::<_, std::convert::Infallible>(message),
                    more.then_some(rx),
                ))
            });
            let body = axum::body::Body::from_stream(events);
            (st.request_id, st.executed_version, st.content_type, body)
        }
    };
    let mut resp = Response::new(events);
    let h = resp.headers_mut();
    for (k, v) in [
        ("content-type", content_type.as_str()),
        ("x-amz-executed-version", version.as_str()),
        ("x-amzn-RequestId", request_id.as_str()),
    ] {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(k, v);
        }
    }
    resp
}

/// One event-stream message of `InvokeWithResponseStream`.
fn event_message(event_type: &'static str, content_type: &'static str, payload: Bytes) -> Bytes {
    use aws_smithy_types::event_stream::{Header, HeaderValue as Value, Message};
    let message = Message::new(payload)
        .add_header(Header::new(":message-type", Value::String("event".into())))
        .add_header(Header::new(":event-type", Value::String(event_type.into())))
        .add_header(Header::new(
            ":content-type",
            Value::String(content_type.into()),
        ));
    let mut out = Vec::with_capacity(message.payload().len() + 128);
    // Writing to a Vec only fails on sizes the event stream cannot frame
    // (a payload over 16 MB): the chunks here are far smaller.
    aws_smithy_eventstream::frame::write_message_to(&message, &mut out)
        .expect("an event stream message");
    Bytes::from(out)
}

fn payload_chunk(b: Bytes) -> Bytes {
    event_message("PayloadChunk", "application/octet-stream", b)
}

fn invoke_complete(error: Option<&stratus_runtime::FunctionError>, log: Option<String>) -> Bytes {
    let mut v = serde_json::Map::new();
    if let Some(e) = error {
        v.insert("ErrorCode".into(), e.error_type.clone().into());
        v.insert("ErrorDetails".into(), e.message().into());
    }
    if let Some(log) = log {
        v.insert("LogResult".into(), log.into());
    }
    let payload = serde_json::Value::Object(v).to_string();
    event_message("InvokeComplete", "application/json", Bytes::from(payload))
}
