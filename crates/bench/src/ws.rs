//! WebSocket scenarios: idle connections and their memory, a message's
//! round trip through a function, a broadcast through `@connections`.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use futures_util::SinkExt;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `n` connections, 500 at a time.
pub(crate) async fn open(gateway: SocketAddr, path: &str, n: usize) -> anyhow::Result<Vec<Ws>> {
    let url = format!("ws://{gateway}{path}");
    let mut all = Vec::with_capacity(n);
    while all.len() < n {
        let batch = (n - all.len()).min(500);
        let opened = futures_util::future::join_all(
            (0..batch).map(|_| tokio_tungstenite::connect_async(url.clone())),
        )
        .await;
        for r in opened {
            all.push(r?.0);
        }
    }
    Ok(all)
}

async fn recv_text(ws: &mut Ws) -> anyhow::Result<String> {
    loop {
        match tokio::time::timeout(Duration::from_secs(30), ws.next()).await? {
            Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
            Some(Ok(_)) => continue,
            other => anyhow::bail!("connection ended: {other:?}"),
        }
    }
}

/// Median and p99 round trip (µs) of `n` messages through a two-way route.
pub(crate) async fn round_trip(ws: &mut Ws, n: usize) -> anyhow::Result<(f64, f64)> {
    let mut hist = hdrhistogram::Histogram::<u64>::new(3)?;
    for i in 0..n {
        let t = Instant::now();
        ws.send(Message::text(format!(r#"{{"action":"echo","i":{i}}}"#)))
            .await?;
        recv_text(ws).await?;
        if i >= n / 10 {
            hist.record(t.elapsed().as_micros() as u64)?;
        }
    }
    Ok((
        hist.value_at_quantile(0.5) as f64,
        hist.value_at_quantile(0.99) as f64,
    ))
}

/// Asks each connection its id (a two-way `id` route), `parallel` at a time.
pub(crate) async fn ids(conns: &mut [Ws], parallel: usize) -> anyhow::Result<Vec<String>> {
    let results: Vec<anyhow::Result<String>> = stream::iter(conns.iter_mut())
        .map(|ws| async move {
            ws.send(Message::text(r#"{"action":"id"}"#)).await?;
            recv_text(ws).await
        })
        .buffered(parallel)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Posts one message to every connection through `@connections` (SigV4,
/// 64 requests in flight) and waits until every client has it. Seconds.
pub(crate) async fn broadcast(
    admin: SocketAddr,
    api_stage: &str,
    conns: &mut [Ws],
    ids: &[String],
) -> anyhow::Result<f64> {
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let start = Instant::now();
    let posted: Vec<anyhow::Result<()>> = stream::iter(ids)
        .map(|id| {
            let client = client.clone();
            async move {
                let url = format!("http://{admin}/ws/{api_stage}/@connections/{id}");
                let req = signed_post(&url, b"broadcast")?;
                let resp = client.request(req).await?;
                let ok = resp.status().is_success();
                let _ = resp.into_body().collect().await;
                anyhow::ensure!(ok, "POST to {id} failed");
                Ok(())
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    posted.into_iter().collect::<anyhow::Result<()>>()?;
    let received: Vec<anyhow::Result<String>> = stream::iter(conns.iter_mut())
        .map(|ws| async move { recv_text(ws).await })
        .buffer_unordered(256)
        .collect()
        .await;
    received.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    Ok(start.elapsed().as_secs_f64())
}

fn signed_post(
    url: &str,
    body: &'static [u8],
) -> anyhow::Result<http::Request<Full<bytes::Bytes>>> {
    let mut req = http::Request::post(url).body(Full::new(bytes::Bytes::from_static(body)))?;
    for (k, v) in stratus_testkit::sigv4_headers("POST", url, body) {
        req.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes())?,
            http::HeaderValue::from_str(&v)?,
        );
    }
    Ok(req)
}
