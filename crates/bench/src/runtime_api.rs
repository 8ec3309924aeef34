//! The warm-call baseline: the function's own binary driven through a
//! minimal Lambda Runtime API of our own, with no gateway and no pool in
//! front. What a route adds is measured against this.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::sync::{mpsc, oneshot, Mutex};
use tokio::time::Instant;

struct Harness {
    events: Mutex<mpsc::Receiver<(Bytes, oneshot::Sender<Bytes>)>>,
    waiting: Mutex<Option<oneshot::Sender<Bytes>>>,
}

async fn next(State(h): State<Arc<Harness>>) -> impl IntoResponse {
    let (event, reply) = h
        .events
        .lock()
        .await
        .recv()
        .await
        .expect("the driver outlives the function");
    *h.waiting.lock().await = Some(reply);
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() + 30_000)
        .unwrap_or(0);
    (
        [
            ("lambda-runtime-aws-request-id", "bench-request".to_owned()),
            ("lambda-runtime-deadline-ms", deadline.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                "arn:aws:lambda:us-east-1:000000000000:function:bench".to_owned(),
            ),
            (
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000".to_owned(),
            ),
            ("content-type", "application/json".to_owned()),
        ],
        event,
    )
}

async fn response(
    State(h): State<Arc<Harness>>,
    UrlPath(_id): UrlPath<String>,
    body: Bytes,
) -> impl IntoResponse {
    if let Some(reply) = h.waiting.lock().await.take() {
        let _ = reply.send(body);
    }
    (axum::http::StatusCode::ACCEPTED, "{}")
}

/// Median and p99 of `n` sequential calls, in µs.
pub(crate) async fn baseline(
    bootstrap: &Path,
    event: &[u8],
    n: usize,
) -> anyhow::Result<(f64, f64)> {
    let (tx, rx) = mpsc::channel(1);
    let harness = Arc::new(Harness {
        events: Mutex::new(rx),
        waiting: Mutex::new(None),
    });
    let app = axum::Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route(
            "/2018-06-01/runtime/invocation/{id}/response",
            post(response),
        )
        .route("/2018-06-01/runtime/invocation/{id}/error", post(response))
        .with_state(harness);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let mut child = Command::new(bootstrap)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let mut hist = hdrhistogram::Histogram::<u64>::new(3)?;
    for i in 0..(n + n / 10) {
        let (reply_tx, reply_rx) = oneshot::channel();
        let t = Instant::now();
        tx.send((Bytes::copy_from_slice(event), reply_tx)).await?;
        tokio::time::timeout(Duration::from_secs(10), reply_rx).await??;
        if i >= n / 10 {
            hist.record(t.elapsed().as_micros() as u64)?;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    Ok((
        hist.value_at_quantile(0.5) as f64,
        hist.value_at_quantile(0.99) as f64,
    ))
}
