//! The Lambda proxy integration: event in, function, response out.

use bytes::Bytes;
use http::{header, Request, Response};
use stratus_config::PayloadFormat;

use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::events;
use crate::invoke::{call_function, CallError, Invoke};
use crate::phases::limits::collect_limited;
use crate::router::Matched;
use crate::Body;

pub(crate) async fn call(
    functions: &dyn Invoke,
    m: &Matched<'_>,
    function: &str,
    req: Request<Body>,
    cx: &RequestContext<'_>,
) -> Result<Response<Body>, GatewayError> {
    let (parts, body) = req.into_parts();
    let accept = crate::header_str(&parts.headers, header::ACCEPT).map(str::to_owned);
    let body = collect_limited(body).await?;
    let ev = cx.event_context();
    let event = events::proxy_event(m, &parts, &body, &ev)?;
    if m.route.stream {
        return streamed(
            functions,
            m,
            function,
            Bytes::from(event),
            accept.as_deref(),
        )
        .await;
    }
    let payload = call_function(
        functions,
        function,
        Bytes::from(event),
        // The gateway bounds the whole integration (body included) by the
        // route's timeout.
        None,
        None,
    )
    .await
    .map_err(|e| e.into_gateway_error(m.api.kind))?;
    proxy_response(m, &payload, accept.as_deref())
}

/// The function's whole answer as a proxy integration reads it.
fn proxy_response(
    m: &Matched<'_>,
    payload: &Bytes,
    accept: Option<&str>,
) -> Result<Response<Body>, GatewayError> {
    match m.route.payload {
        PayloadFormat::V1 => events::v1::v1_response(payload, accept, &m.api.binary_media_types),
        PayloadFormat::V2 => events::v2::v2_response(payload),
    }
}

/// A route that streams (a function URL in `RESPONSE_STREAM` mode, a REST
/// route with `transfer_mode = "STREAM"`): the answer's head once the
/// function has started its stream (the HTTP integration prelude, when it
/// wrote one), then every chunk as it comes. A failure before the first
/// byte is the route's 502; after it, the connection is cut, as Lambda
/// cuts it (the client sees a body that did not end).
async fn streamed(
    functions: &dyn Invoke,
    m: &Matched<'_>,
    function: &str,
    event: Bytes,
    accept: Option<&str>,
) -> Result<Response<Body>, GatewayError> {
    let kind = m.api.kind;
    let req = stratus_runtime::InvokeRequest {
        payload: event,
        ..Default::default()
    };
    let failed = |e: &stratus_runtime::FunctionError| {
        CallError::from_function(function, e).into_gateway_error(kind)
    };
    let mut s = match functions.invoke_stream(function, req).await {
        Err(e) => return Err(CallError::from_invoke(e).into_gateway_error(kind)),
        Ok(stratus_runtime::Streamed::Whole(out)) => {
            let payload = out.result.map_err(|e| failed(&e))?;
            return proxy_response(m, &payload, accept);
        }
        Ok(stratus_runtime::Streamed::Stream(s)) => s,
    };
    let http = s.content_type == stratus_runtime::HTTP_INTEGRATION_STREAM;
    // What came before the body: the prelude (HTTP integration streams),
    // or the first chunk, so that a failure before any byte is a 502.
    let mut head = bytes::BytesMut::new();
    let (prelude, first, ended) = loop {
        let event = s.chunks.recv().await;
        match event {
            Some(StreamEvent::Data(b)) => {
                head.extend_from_slice(&b);
                if !http {
                    break (None, head.split().freeze(), false);
                }
                if let Some(at) = find_separator(&head) {
                    let prelude = head.split_to(at).freeze();
                    let _ = head.split_to(PRELUDE_SEPARATOR.len());
                    break (Some(prelude), head.split().freeze(), false);
                }
                if head.len() > MAX_PRELUDE {
                    return Err(GatewayError::BadGateway(format!(
                        "function {function:?} streamed no prelude separator in its first {MAX_PRELUDE} bytes"
                    )));
                }
            }
            Some(StreamEvent::End) if !http => break (None, head.split().freeze(), true),
            Some(StreamEvent::End) => {
                return Err(GatewayError::BadGateway(format!(
                    "function {function:?} ended its stream before the prelude's end"
                )))
            }
            Some(StreamEvent::Failed(e)) => return Err(failed(&e)),
            None => {
                return Err(GatewayError::BadGateway(format!(
                    "function {function:?}'s stream was cut"
                )))
            }
        }
    };
    let mut resp = match prelude {
        Some(p) => events::v2::prelude_head(&p)?,
        None => {
            let mut r = Response::new(crate::empty_body());
            if let Ok(v) = http::HeaderValue::from_str(&s.content_type) {
                r.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            r
        }
    };
    let rest = if ended { None } else { Some(s.chunks) };
    *resp.body_mut() = stream_body(first, rest);
    Ok(resp)
}

use stratus_runtime::StreamEvent;

/// The 8 NUL bytes between an HTTP integration stream's prelude and body.
const PRELUDE_SEPARATOR: [u8; 8] = [0; 8];

/// How much a prelude may take.
const MAX_PRELUDE: usize = 64 * 1024;

fn find_separator(b: &[u8]) -> Option<usize> {
    b.windows(PRELUDE_SEPARATOR.len())
        .position(|w| w == PRELUDE_SEPARATOR)
}

/// The body: what was read already, then each chunk as the function
/// writes it; a stream that fails (or is cut) ends the body with an error,
/// which makes hyper cut the connection rather than end the body well.
fn stream_body(first: Bytes, rest: Option<tokio::sync::mpsc::Receiver<StreamEvent>>) -> Body {
    use http_body_util::BodyExt;
    let first = (!first.is_empty()).then_some(first);
    let head = futures_util::stream::iter(first.map(|b| Ok(http_body::Frame::data(b))));
    let tail = futures_util::stream::unfold(rest, |rx| async move {
        let mut rx = rx?;
        match rx.recv().await {
            Some(StreamEvent::Data(b)) => Some((Ok(http_body::Frame::data(b)), Some(rx))),
            Some(StreamEvent::End) => None,
            Some(StreamEvent::Failed(e)) => {
                // Pending once before the error, so that hyper writes out
                // the chunks before it (it flushes when the body waits)
                // rather than dropping them as it cuts the connection.
                tokio::task::yield_now().await;
                let why: crate::BoxError = format!(
                    "the function's stream failed: {}: {}",
                    e.error_type,
                    e.message()
                )
                .into();
                Some((Err(why), None))
            }
            None => Some((Err("the function's stream was cut".into()), None)),
        }
    });
    let frames = futures_util::StreamExt::chain(head, tail);
    BodyExt::boxed(http_body_util::StreamBody::new(frames))
}
