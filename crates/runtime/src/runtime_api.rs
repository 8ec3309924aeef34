//! The Lambda Runtime API of one environment, as its bootstrap sees it:
//! `next`, `response`, `error` and `init/error` under `/2018-06-01/runtime/`.
//!
//! Served by hyper directly, with the four routes matched by hand: a router
//! (axum was used before) cost a path-parameter allocation, a tower service
//! stack and a boxed body per request on the hottest path Stratus has,
//! while this API is fixed by AWS and never grows.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{HeaderMap, Method, Request, Response, StatusCode};
use tokio::time::Instant;

use crate::env::{kill_group, log_line, Answer, InFlight, Pending, Reply, Shared};
use crate::{ErrorKind, FunctionError, MAX_SYNC_PAYLOAD};

/// Chunks of a streamed response read ahead of the caller.
const STREAM_FRAMES: usize = 8;

/// The response limit as Lambda's Runtime API words it in its 413 (the
/// 6 MB payload limit plus 100 bytes of allowance).
const RESPONSE_LIMIT_AS_WORDED: usize = MAX_SYNC_PAYLOAD + 100;

const PREFIX: &str = "/2018-06-01/runtime/";

/// How long (in 1 ms steps) a connection waits for its environment's pid.
const PID_WAIT_STEPS: usize = 2000;

type Answered = Response<Full<Bytes>>;

/// Serves the Runtime API to the environment's own processes only: a
/// connection from any other process is refused and logged (see `peer`).
pub(crate) async fn serve(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    let Ok(local) = listener.local_addr() else {
        return;
    };
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        // The process may connect before its spawner has stored its pid
        // (a compiled bootstrap starts in microseconds): wait for it, a
        // little, rather than refuse the environment's own first connection.
        let mut pgid = shared.pid.load(Ordering::SeqCst) as u32;
        for _ in 0..PID_WAIT_STEPS {
            if pgid != 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
            pgid = shared.pid.load(Ordering::SeqCst) as u32;
        }
        tracing::debug!(function = %shared.function.name, %peer, "Runtime API: new connection");
        let own =
            tokio::task::spawn_blocking(move || crate::peer::held_by_group(peer, local, pgid))
                .await
                .unwrap_or(false);
        if !own {
            tracing::warn!(
                target: "stratus::function",
                function = %shared.function.name,
                %peer,
                "Runtime API: refused a connection from a process outside the environment"
            );
            continue;
        }
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| route(shared.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(s: Arc<Shared>, req: Request<Incoming>) -> Result<Answered, Infallible> {
    let Some(rest) = req.uri().path().strip_prefix(PREFIX) else {
        return Ok(not_found());
    };
    let post = req.method() == Method::POST;
    let answer = match rest {
        "invocation/next" if req.method() == Method::GET => next(&s).await,
        "init/error" if post => init_error(&s, req).await,
        "invocation/next" | "init/error" => method_not_allowed(),
        _ => match rest
            .strip_prefix("invocation/")
            .and_then(|r| r.rsplit_once('/'))
        {
            Some((id, "response")) if post => {
                let id = id.to_owned();
                response(&s, &id, req).await
            }
            Some((id, "error")) if post => {
                let id = id.to_owned();
                error(&s, &id, req).await
            }
            Some((_, "response" | "error")) => method_not_allowed(),
            _ => not_found(),
        },
    };
    Ok(answer)
}

async fn next(s: &Shared) -> Answered {
    // One `next` at a time: an environment runs one invocation at a time.
    let mut rx = s.rx.lock().await;
    loop {
        let Some(p) = rx.recv().await else {
            // The environment is being retired: never answer.
            drop(rx);
            return std::future::pending().await;
        };
        let Pending {
            request_id,
            payload,
            client_context,
            cognito_identity,
            invoked_arn,
            timeout,
            lineage,
            reply,
        } = p;
        if reply.is_closed() {
            continue; // the caller gave up before the runtime was ready
        }
        let deadline = crate::epoch_ms() + timeout.as_millis() as i64;
        let mut resp = Response::new(Full::new(payload));
        let headers = resp.headers_mut();
        let mut set = |k: &'static str, v: &str| {
            if let Ok(v) = HeaderValue::from_str(v) {
                headers.insert(HeaderName::from_static(k), v);
            }
        };
        set("content-type", "application/json");
        set("lambda-runtime-aws-request-id", &request_id);
        set("lambda-runtime-deadline-ms", &deadline.to_string());
        set(
            "lambda-runtime-invoked-function-arn",
            invoked_arn.as_deref().unwrap_or(&s.arn),
        );
        set("lambda-runtime-trace-id", &trace_id(lineage));
        if let Some(c) = &client_context {
            set("lambda-runtime-client-context", c);
        }
        if let Some(c) = &cognito_identity {
            set("lambda-runtime-cognito-identity", c);
        }
        *s.inflight.lock().expect("lock") = Some(InFlight {
            request_id,
            picked_at: Instant::now(),
            reply,
        });
        return resp;
    }
}

/// An X-Ray style trace header, as Lambda passes it; with the
/// recursive-loop count (`Lineage=HASH:N`) of an invocation an S3 event
/// of a function's own write started, which the SDKs send back on their
/// calls (botocore's `X-Amzn-Trace-Id`).
fn trace_id(lineage: u32) -> String {
    let secs = crate::epoch_ms() / 1000;
    // 96 random bits for the root, 64 for the parent: two v4 UUIDs' worth
    // of the same fast generator, without formatting them as UUIDs.
    let a = uuid::Uuid::new_v4().as_u128();
    let b = uuid::Uuid::new_v4().as_u128();
    let root = format!(
        "Root=1-{secs:08x}-{:024x};Parent={:016x};Sampled=0",
        a >> 32,
        b as u64
    );
    match lineage {
        0 => root,
        n => format!("{root};Lineage={:08x}:{n}", (a as u32)),
    }
}

fn json(status: StatusCode, body: impl Into<Bytes>) -> Answered {
    let mut resp = Response::new(Full::new(body.into()));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn accepted() -> Answered {
    json(
        StatusCode::ACCEPTED,
        Bytes::from_static(br#"{"status":"OK"}"#),
    )
}

fn runtime_api_error(status: StatusCode, error_type: &str, message: &str) -> Answered {
    let body = serde_json::json!({ "errorMessage": message, "errorType": error_type });
    json(status, body.to_string())
}

fn not_found() -> Answered {
    runtime_api_error(StatusCode::NOT_FOUND, "NotFound", "Not Found")
}

fn method_not_allowed() -> Answered {
    runtime_api_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
        "Method Not Allowed",
    )
}

/// Reads a body up to the synchronous payload limit; `None` when over it.
async fn read_limited(body: Incoming) -> Option<Bytes> {
    Limited::new(body, MAX_SYNC_PAYLOAD)
        .collect()
        .await
        .ok()
        .map(|b| b.to_bytes())
}

/// 400 for a response or error about an invocation this environment does not run.
fn invalid_request_id() -> Answered {
    runtime_api_error(
        StatusCode::BAD_REQUEST,
        "InvalidRequestID",
        "Invalid request ID",
    )
}

fn take_inflight(s: &Shared, id: &str) -> Option<InFlight> {
    let mut slot = s.inflight.lock().expect("lock");
    if slot.as_ref().is_some_and(|f| f.request_id == id) {
        slot.take()
    } else {
        None
    }
}

fn send(flight: InFlight, reply: Reply) {
    let _ = flight.reply.send(Answer {
        picked_at: flight.picked_at,
        reply,
    });
}

async fn response(s: &Shared, id: &str, req: Request<Incoming>) -> Answered {
    let Some(flight) = take_inflight(s, id) else {
        // The body is read all the same: an unread body makes hyper close
        // the connection, and the client's next request on it fails.
        let _ = read_limited(req.into_body()).await;
        return invalid_request_id();
    };
    let streaming = req
        .headers()
        .get("lambda-runtime-function-response-mode")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"streaming"));
    if streaming {
        return stream_response(flight, req).await;
    }
    match read_limited(req.into_body()).await {
        Some(body) => {
            send(flight, Reply::Ok(body));
            accepted()
        }
        None => {
            send(flight, Reply::TooLarge);
            runtime_api_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!(
                    "Exceeded maximum allowed payload size ({RESPONSE_LIMIT_AS_WORDED} bytes)."
                ),
            )
        }
    }
}

/// A streamed response (`Lambda-Runtime-Function-Response-Mode:
/// streaming`): each chunk of the body is passed on as it arrives; the
/// error trailers (`Lambda-Runtime-Function-Error-Type`, `-Body` in
/// base64), or a body that breaks off, end it with an error. The 202 comes
/// when the body has ended, as Lambda's does.
async fn stream_response(flight: InFlight, req: Request<Incoming>) -> Answered {
    let (parts, mut body) = req.into_parts();
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_owned();
    let (tx, frames) = tokio::sync::mpsc::channel(STREAM_FRAMES);
    send(
        flight,
        Reply::Stream {
            content_type,
            frames,
        },
    );
    loop {
        let frame = match body.frame().await {
            None => break,
            Some(Ok(frame)) => frame,
            Some(Err(e)) => {
                let broken = FunctionError::new(
                    ErrorKind::Handled,
                    "Runtime.StreamError",
                    format!("the function's response stream broke off: {e}"),
                );
                let _ = tx.send(Err(broken)).await;
                break;
            }
        };
        let item = match frame.into_data() {
            Ok(data) if data.is_empty() => continue,
            Ok(data) => Ok(data),
            Err(frame) => match frame.into_trailers().ok().and_then(|t| trailer_error(&t)) {
                Some(e) => Err(e),
                None => continue,
            },
        };
        if tx.send(item).await.is_err() {
            // The call ended (its caller went away, its time ran out): the
            // environment is being stopped; nothing more is read.
            return runtime_api_error(
                StatusCode::GONE,
                "InvocationEnded",
                "The invocation has ended",
            );
        }
    }
    accepted()
}

/// The error a streamed response's trailers report, as Lambda reads them.
fn trailer_error(trailers: &HeaderMap) -> Option<FunctionError> {
    let error_type = trailers
        .get("lambda-runtime-function-error-type")?
        .to_str()
        .ok()?
        .to_owned();
    let body = trailers
        .get("lambda-runtime-function-error-body")
        .and_then(|v| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD
                .decode(v.as_bytes())
                .ok()
        })
        .map(Bytes::from)
        .unwrap_or_else(|| {
            Bytes::from(
                serde_json::json!({ "errorType": error_type, "errorMessage": "" }).to_string(),
            )
        });
    Some(FunctionError {
        kind: ErrorKind::Handled,
        error_type,
        body,
    })
}

fn error_type_of(headers: &HeaderMap, body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("errorType")?.as_str().map(str::to_owned))
        .or_else(|| {
            headers
                .get("lambda-runtime-function-error-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "Unhandled".to_owned())
}

async fn error(s: &Shared, id: &str, req: Request<Incoming>) -> Answered {
    let Some(flight) = take_inflight(s, id) else {
        // The body is read all the same: an unread body makes hyper close
        // the connection, and the client's next request on it fails.
        let _ = read_limited(req.into_body()).await;
        return invalid_request_id();
    };
    let (parts, body) = req.into_parts();
    let body = read_limited(body).await.unwrap_or_default();
    let error_type = error_type_of(&parts.headers, &body);
    send(flight, Reply::Err { error_type, body });
    accepted()
}

async fn init_error(s: &Shared, req: Request<Incoming>) -> Answered {
    let (parts, body) = req.into_parts();
    let body = read_limited(body).await.unwrap_or_default();
    let error_type = error_type_of(&parts.headers, &body);
    let line = format!(
        "INIT_REPORT Init error: {error_type}: {}",
        String::from_utf8_lossy(&body)
    );
    log_line(s, &line);
    *s.init_error.lock().expect("lock") = Some((error_type, body));
    // An environment whose init failed is never used again.
    let pid = s.pid.load(Ordering::SeqCst) as u32;
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        kill_group(pid);
    });
    accepted()
}
