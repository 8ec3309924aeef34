//! WebSocket APIs: the upgrade (with `$connect`), one task per connection,
//! route selection, `$default`, two-way responses, `$disconnect` after every
//! close, and the connection registry the `@connections` API talks to.
//!
//! Limits: frames of 32 KB, messages of 128 KB (close 1009), an idle
//! timeout and a maximum lifetime (close 1001), and a bounded send queue per
//! connection: a client that cannot keep up is closed, never buffered
//! without bound. Nothing here blocks one connection on another.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::apigw::{
    ApiGatewayRequestIdentity, ApiGatewayWebsocketProxyRequest,
    ApiGatewayWebsocketProxyRequestContext,
};
use aws_lambda_events::query_map::QueryMap;
use base64::Engine as _;
use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt as _};
use futures_util::{SinkExt, StreamExt};
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use stratus_config::{Api, ApiKind, App, RouteKey, SelectionExpr, SelectionPart, Stage};
use stratus_runtime::{InvokeRequest, Runtime};
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};

use crate::error::json_message;
use crate::Body;

/// API Gateway's limits.
pub const MAX_FRAME: usize = 32 * 1024;
pub const MAX_MESSAGE: usize = 128 * 1024;
/// Messages queued for one client before it counts as too slow.
const SEND_QUEUE: usize = 256;
/// How long one write to a client may take before it counts as too slow.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a `$disconnect` event may wait for a busy function.
const LIFECYCLE_WAIT: Duration = Duration::from_secs(60);
/// How long the closing handshake may take before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// What can be sent to a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outbound {
    Text(String),
    Binary(Bytes),
    Close { code: u16, reason: String },
}

/// What the management API may learn about a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub id: String,
    pub api: String,
    pub stage: String,
    /// Epoch milliseconds.
    pub connected_at: i64,
    pub last_active_at: i64,
    pub source_ip: String,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// No such connection (never was, or closed): `GoneException`.
    #[error("connection is gone")]
    Gone,
    /// Its send queue is full: the connection is being closed.
    #[error("connection cannot keep up; closing it")]
    TooSlow,
}

/// Where connections are found by id. In-process today; a registry shared
/// by several Stratus nodes implements the same calls (sending to a
/// connection held by another node becomes a message to that node).
pub trait ConnectionRegistry: Send + Sync + 'static {
    fn register(&self, conn: Arc<LocalConnection>);
    fn unregister(&self, id: &str);
    fn send<'a>(&'a self, id: &'a str, msg: Outbound) -> BoxFuture<'a, Result<(), SendError>>;
    fn info<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<ConnectionInfo>>;
    /// Connections held by this node.
    fn local(&self) -> Vec<Arc<LocalConnection>>;
}

/// A connection held by this process.
pub struct LocalConnection {
    info: ConnectionInfo,
    last_active: AtomicI64,
    tx: mpsc::Sender<Outbound>,
    /// Fired to drop a connection that cannot keep up.
    kill: Notify,
    /// Fired once the server has sent a close frame (e.g. `DELETE`): the
    /// connection ends without waiting on the client's reply.
    closing: Notify,
    close_sent: Mutex<Option<(u16, String)>>,
}

impl LocalConnection {
    pub fn info(&self) -> ConnectionInfo {
        let mut i = self.info.clone();
        i.last_active_at = self.last_active.load(Ordering::Relaxed);
        i
    }

    fn touch(&self) {
        self.last_active.store(epoch_ms(), Ordering::Relaxed);
    }

    /// Never waits: a full queue means the client is too slow, and it goes.
    pub fn send(&self, msg: Outbound) -> Result<(), SendError> {
        match self.tx.try_send(msg) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.kill.notify_one();
                Err(SendError::TooSlow)
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(SendError::Gone),
        }
    }
}

/// The in-process registry.
#[derive(Default)]
pub struct LocalRegistry {
    conns: Mutex<HashMap<String, Arc<LocalConnection>>>,
}

impl LocalRegistry {
    fn get(&self, id: &str) -> Option<Arc<LocalConnection>> {
        self.conns.lock().expect("registry lock").get(id).cloned()
    }
}

impl ConnectionRegistry for LocalRegistry {
    fn register(&self, conn: Arc<LocalConnection>) {
        self.conns
            .lock()
            .expect("registry lock")
            .insert(conn.info.id.clone(), conn);
    }

    fn unregister(&self, id: &str) {
        self.conns.lock().expect("registry lock").remove(id);
    }

    fn send<'a>(&'a self, id: &'a str, msg: Outbound) -> BoxFuture<'a, Result<(), SendError>> {
        let r = self
            .get(id)
            .ok_or(SendError::Gone)
            .and_then(|c| c.send(msg));
        Box::pin(std::future::ready(r))
    }

    fn info<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<ConnectionInfo>> {
        Box::pin(std::future::ready(self.get(id).map(|c| c.info())))
    }

    fn local(&self) -> Vec<Arc<LocalConnection>> {
        self.conns
            .lock()
            .expect("registry lock")
            .values()
            .cloned()
            .collect()
    }
}

/// Every WebSocket API stage of an app, and their connections.
pub struct WebSockets {
    /// Mount path → (API, stage index).
    mounts: HashMap<String, (Arc<Api>, usize)>,
    registry: Arc<dyn ConnectionRegistry>,
    functions: Runtime,
    stop: watch::Sender<bool>,
    /// Connection tasks still running (including their `$disconnect`).
    active: watch::Sender<usize>,
}

impl WebSockets {
    pub(crate) fn new(app: &App, functions: Runtime) -> WebSockets {
        let mut mounts = HashMap::new();
        for api in app.apis.iter().filter(|a| a.kind == ApiKind::WebSocket) {
            for (i, stage) in api.stages.iter().enumerate() {
                mounts.insert(stage.mount.clone(), (api.clone(), i));
            }
        }
        WebSockets {
            mounts,
            registry: Arc::new(LocalRegistry::default()),
            functions,
            stop: watch::channel(false).0,
            active: watch::channel(0).0,
        }
    }

    pub fn registry(&self) -> Arc<dyn ConnectionRegistry> {
        self.registry.clone()
    }

    /// The WebSocket API stage served at exactly this path.
    pub(crate) fn mount(&self, path: &str) -> Option<(&Arc<Api>, &Stage)> {
        let path = if path.len() > 1 {
            path.trim_end_matches('/')
        } else {
            path
        };
        self.mounts.get(path).map(|(api, i)| (api, &api.stages[*i]))
    }

    /// The API and stage of a management endpoint `/ws/{api}/{stage}`.
    pub fn find(&self, api: &str, stage: &str) -> bool {
        self.mounts
            .values()
            .any(|(a, i)| a.name == api && a.stages[*i].name == stage)
    }

    /// Closes every connection (1001, Going away), runs their
    /// `$disconnect`, and waits for all of it, at most `grace`.
    pub async fn shutdown(&self, grace: Duration) {
        self.stop.send_replace(true);
        let mut active = self.active.subscribe();
        let _ = tokio::time::timeout(grace, active.wait_for(|n| *n == 0)).await;
    }

    pub(crate) async fn upgrade<B>(
        self: &Arc<Self>,
        mut req: Request<B>,
        api: Arc<Api>,
        stage: Stage,
        remote: SocketAddr,
        request_id: &str,
    ) -> Response<Body>
    where
        B: Send + 'static,
    {
        let key = req
            .headers()
            .get(header::SEC_WEBSOCKET_KEY)
            .map(|k| k.as_bytes().to_vec());
        let version_ok = req
            .headers()
            .get(header::SEC_WEBSOCKET_VERSION)
            .is_some_and(|v| v == "13");
        // RFC 6455 §4.2.1: the key is 16 random bytes, base64-encoded.
        let key_ok = |k: &Vec<u8>| {
            k.len() == 24
                && base64::engine::general_purpose::STANDARD
                    .decode(k)
                    .is_ok_and(|raw| raw.len() == 16)
        };
        let Some(key) = key.filter(|k| version_ok && key_ok(k)) else {
            return json_message(StatusCode::BAD_REQUEST, "Bad Request");
        };
        let conn_id = new_connection_id();
        let connected_at = epoch_ms();
        let meta = Meta {
            api: api.clone(),
            stage: stage.clone(),
            conn_id: conn_id.clone(),
            connected_at,
            source_ip: remote.ip().to_string(),
            user_agent: req
                .headers()
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            domain: req
                .headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        };

        // $connect runs during the upgrade: its answer decides the handshake.
        if let Some(route) = find_route(&api, "$connect") {
            let event = meta.event(EventKind::Connect(&req), "$connect", request_id, None);
            let status = match self.invoke(route, event).await {
                Ok(payload) => connect_status(&payload),
                Err(Failure::Timeout) => StatusCode::GATEWAY_TIMEOUT,
                Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
            };
            if !status.is_success() {
                let msg = status.canonical_reason().unwrap_or("Forbidden");
                return json_message(status, msg);
            }
        }

        let upgrade = hyper::upgrade::on(&mut req);
        let hub = self.clone();
        self.active.send_modify(|n| *n += 1);
        tokio::spawn(async move {
            match upgrade.await {
                Ok(upgraded) => {
                    // Small buffers that grow on demand: tungstenite's 128 KiB
                    // defaults would cost that much per idle connection.
                    let config = WebSocketConfig::default()
                        .max_frame_size(Some(MAX_FRAME))
                        .max_message_size(Some(MAX_MESSAGE))
                        .read_buffer_size(4 * 1024)
                        .write_buffer_size(0);
                    let ws = tokio_tungstenite::WebSocketStream::from_raw_socket(
                        TokioIo::new(upgraded),
                        Role::Server,
                        Some(config),
                    )
                    .await;
                    hub.serve(ws, meta).await;
                }
                Err(e) => tracing::debug!("websocket upgrade failed: {e}"),
            }
            hub.active.send_modify(|n| *n -= 1);
        });

        let mut resp = Response::new(crate::empty_body());
        *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = resp.headers_mut();
        h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        if let Ok(v) = HeaderValue::from_str(&tungstenite::handshake::derive_accept_key(&key)) {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
        }
        resp
    }

    /// Calls a route's function. Messages are refused when the function
    /// is at its concurrency, as on AWS; `$connect` and `$disconnect` wait
    /// for an environment instead (within the route's timeout, and at least
    /// `LIFECYCLE_WAIT` for `$disconnect`), so that a burst of connects and
    /// drops loses none of them to a momentary limit.
    async fn invoke(
        &self,
        route: &stratus_config::Route,
        event: Vec<u8>,
    ) -> Result<Bytes, Failure> {
        let stratus_config::Integration::Function { name } = &route.integration else {
            return Err(Failure::Error);
        };
        let req = InvokeRequest {
            payload: Bytes::from(event),
            ..Default::default()
        };
        let (limit, call) = match &route.key {
            RouteKey::WebSocket(k) if k == "$connect" => (
                route.timeout,
                self.functions
                    .invoke_waiting(name, req, route.timeout)
                    .boxed(),
            ),
            RouteKey::WebSocket(k) if k == "$disconnect" => {
                let wait = route.timeout.max(LIFECYCLE_WAIT);
                (
                    wait + route.timeout,
                    self.functions.invoke_waiting(name, req, wait).boxed(),
                )
            }
            _ => (route.timeout, self.functions.invoke(name, req).boxed()),
        };
        match tokio::time::timeout(limit, call).await {
            Err(_) => Err(Failure::Timeout),
            Ok(Err(_)) => Err(Failure::Error),
            Ok(Ok(out)) => match out.result {
                Ok(payload) => Ok(payload),
                Err(e) if e.kind == stratus_runtime::ErrorKind::Timeout => Err(Failure::Timeout),
                Err(_) => Err(Failure::Error),
            },
        }
    }

    /// One connection, from the upgrade to `$disconnect`.
    async fn serve<S>(self: &Arc<Self>, ws: tokio_tungstenite::WebSocketStream<S>, meta: Meta)
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (tx, mut rx) = mpsc::channel::<Outbound>(SEND_QUEUE);
        let conn = Arc::new(LocalConnection {
            info: ConnectionInfo {
                id: meta.conn_id.clone(),
                api: meta.api.name.clone(),
                stage: meta.stage.name.clone(),
                connected_at: meta.connected_at,
                last_active_at: meta.connected_at,
                source_ip: meta.source_ip.clone(),
                user_agent: meta.user_agent.clone(),
            },
            last_active: AtomicI64::new(meta.connected_at),
            tx,
            kill: Notify::new(),
            closing: Notify::new(),
            close_sent: Mutex::new(None),
        });
        self.registry.register(conn.clone());
        let meta = Arc::new(meta);
        let (mut sink, mut stream) = ws.split();

        // Writer: drains the send queue; a write that cannot finish in time
        // means the client is too slow. Told to finish once the connection
        // is over, it sends what is still queued, then closes its half: that
        // flushes the reply to a client's close frame (RFC 6455 §5.5.1), or
        // sends a close frame of its own if none was sent yet.
        let writer_conn = conn.clone();
        let finish = Arc::new(Notify::new());
        let writer_finish = finish.clone();
        let writer = tokio::spawn(async move {
            let (mut closed, mut finishing) = (false, false);
            loop {
                let out = if finishing {
                    rx.try_recv().ok()
                } else {
                    tokio::select! {
                        out = rx.recv() => out,
                        () = writer_finish.notified() => {
                            finishing = true;
                            rx.try_recv().ok()
                        }
                    }
                };
                let Some(out) = out else { break };
                if let Outbound::Close { code, reason } = &out {
                    *writer_conn.close_sent.lock().expect("lock") = Some((*code, reason.clone()));
                }
                let (msg, last) = match out {
                    Outbound::Text(t) => (Message::text(t), false),
                    Outbound::Binary(b) => (Message::binary(b), false),
                    Outbound::Close { code, reason } => (
                        Message::Close(Some(CloseFrame {
                            code: CloseCode::from(code),
                            reason: reason.into(),
                        })),
                        true,
                    ),
                };
                match tokio::time::timeout(WRITE_TIMEOUT, sink.send(msg)).await {
                    Ok(Ok(())) if !last => {}
                    Ok(Ok(())) => {
                        closed = true;
                        writer_conn.closing.notify_one();
                        break;
                    }
                    Ok(Err(_)) => break,
                    Err(_) => {
                        writer_conn.kill.notify_one();
                        return;
                    }
                }
            }
            if !closed && !finishing {
                writer_finish.notified().await;
            }
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, sink.close()).await;
        });

        // Messages are handled in order, one at a time, off the read loop,
        // so that a slow function never stops pings, limits or closes.
        let (in_tx, mut in_rx) = mpsc::channel::<Message>(SEND_QUEUE);
        let worker_hub = self.clone();
        let worker_conn = conn.clone();
        let worker_meta = meta.clone();
        let worker = tokio::spawn(async move {
            while let Some(msg) = in_rx.recv().await {
                worker_hub.on_message(&worker_conn, &worker_meta, msg).await;
            }
        });

        let api = &meta.api;
        let lifetime_end = Instant::now() + api.max_lifetime;
        let mut stop = self.stop.subscribe();
        let (code, reason): (u16, String);
        loop {
            let idle_for = Duration::from_millis(
                (epoch_ms() - conn.last_active.load(Ordering::Relaxed)).max(0) as u64,
            );
            let idle_end = Instant::now() + api.idle_timeout.saturating_sub(idle_for);
            tokio::select! {
                frame = stream.next() => match frame {
                    Some(Ok(msg @ (Message::Text(_) | Message::Binary(_)))) => {
                        conn.touch();
                        if in_tx.try_send(msg).is_err() {
                            (code, reason) = (1008, "Too many messages in flight".into());
                            let _ = conn.send(Outbound::Close { code, reason: reason.clone() });
                            break;
                        }
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => conn.touch(),
                    Some(Ok(Message::Close(frame))) => {
                        (code, reason) = frame
                            .map(|f| (u16::from(f.code), f.reason.to_string()))
                            .unwrap_or((1005, String::new()));
                        break;
                    }
                    Some(Ok(Message::Frame(_))) => {}
                    Some(Err(e)) => {
                        (code, reason) = close_for(&e);
                        tracing::debug!(connection = %conn.info.id, "closing: {e}");
                        if code != 1006 {
                            let _ = conn.send(Outbound::Close { code, reason: reason.clone() });
                        }
                        break;
                    }
                    None => {
                        (code, reason) = (1006, "Connection lost".into());
                        break;
                    }
                },
                () = tokio::time::sleep_until(idle_end) => {
                    if epoch_ms() - conn.last_active.load(Ordering::Relaxed) < api.idle_timeout.as_millis() as i64 {
                        continue;
                    }
                    (code, reason) = (1001, "Going away".into());
                    let _ = conn.send(Outbound::Close { code, reason: reason.clone() });
                    break;
                }
                () = tokio::time::sleep_until(lifetime_end) => {
                    (code, reason) = (1001, "Going away".into());
                    let _ = conn.send(Outbound::Close { code, reason: reason.clone() });
                    break;
                }
                _ = stop.wait_for(|s| *s) => {
                    (code, reason) = (1001, "Going away".into());
                    let _ = conn.send(Outbound::Close { code, reason: reason.clone() });
                    break;
                }
                () = conn.kill.notified() => {
                    (code, reason) = (1008, "Slow consumer".into());
                    break;
                }
                () = conn.closing.notified() => {
                    (code, reason) = conn
                        .close_sent
                        .lock()
                        .expect("lock")
                        .clone()
                        .unwrap_or((1000, String::new()));
                    break;
                }
            }
        }

        // The connection is gone for everyone at once.
        self.registry.unregister(&conn.info.id);
        drop(in_tx);
        worker.abort();
        // Let the closing handshake reach the client, briefly; then both
        // halves are dropped, which closes the socket.
        finish.notify_one();
        let writer_abort = writer.abort_handle();
        if tokio::time::timeout(CLOSE_TIMEOUT, writer).await.is_err() {
            writer_abort.abort();
        }
        drop(stream);
        if let Some(route) = find_route(&meta.api, "$disconnect") {
            let request_id = uuid::Uuid::new_v4().to_string();
            let event = meta.event(
                EventKind::<()>::Disconnect(code, &reason),
                "$disconnect",
                &request_id,
                None,
            );
            // Best effort, as on AWS: a failure is only logged.
            if self.invoke(route, event).await.is_err() {
                tracing::warn!(connection = %meta.conn_id, "$disconnect failed");
            }
        }
        tracing::info!(
            target: "stratus::access",
            connection_id = %meta.conn_id,
            api = %meta.api.name,
            stage = %meta.stage.name,
            status = code,
            "websocket closed: {code} {reason}"
        );
    }

    async fn on_message(&self, conn: &LocalConnection, meta: &Meta, msg: Message) {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (body, binary, json) = match &msg {
            Message::Text(t) => (
                t.to_string(),
                false,
                serde_json::from_str::<Value>(t.as_str()).ok(),
            ),
            Message::Binary(b) => (
                base64::engine::general_purpose::STANDARD.encode(b),
                true,
                None,
            ),
            _ => return,
        };
        let selected = match (&meta.api.route_selection, &json) {
            (Some(expr), _) if expr.constant().is_some() => expr.constant().map(str::to_owned),
            (Some(expr), Some(v)) => Some(select_route(expr, v)),
            _ => None,
        };
        let route = selected
            .as_deref()
            .and_then(|k| find_custom_route(&meta.api, k))
            .or_else(|| find_route(&meta.api, "$default"));
        let Some(route) = route else {
            let forbidden = serde_json::json!({
                "message": "Forbidden",
                "connectionId": meta.conn_id,
                "requestId": request_id,
            });
            let _ = conn.send(Outbound::Text(forbidden.to_string()));
            return;
        };
        let route_key = route.key.to_string();
        let event = meta.event(
            EventKind::<()>::Message,
            &route_key,
            &request_id,
            Some((body, binary)),
        );
        match self.invoke(route, event).await {
            Ok(payload) => {
                if route.respond {
                    if let Some(out) = route_response(&payload) {
                        let _ = conn.send(out);
                    }
                }
            }
            Err(_) => {
                let err = serde_json::json!({
                    "message": "Internal server error",
                    "connectionId": meta.conn_id,
                    "requestId": request_id,
                });
                let _ = conn.send(Outbound::Text(err.to_string()));
            }
        }
    }
}

/// The close code and reason for a connection that failed to read: 1009
/// for size limits, 1007 for text that is not UTF-8, 1002 for other
/// protocol violations (unmasked frames, reserved bits), 1006 when the
/// connection is simply gone (nothing to send).
fn close_for(e: &tungstenite::Error) -> (u16, String) {
    use tungstenite::error::ProtocolError;
    match e {
        tungstenite::Error::Capacity(_) => (1009, "Message too big".into()),
        tungstenite::Error::Utf8(_) => (1007, "Invalid frame payload data".into()),
        tungstenite::Error::Protocol(ProtocolError::ResetWithoutClosingHandshake) => {
            (1006, "Connection lost".into())
        }
        tungstenite::Error::Protocol(_) => (1002, "Protocol error".into()),
        _ => (1006, "Connection lost".into()),
    }
}

enum Failure {
    Timeout,
    Error,
}

/// What a `$connect` answer means for the handshake: its `statusCode`, or
/// 200 when it has none.
fn connect_status(payload: &[u8]) -> StatusCode {
    serde_json::from_slice::<Value>(payload)
        .ok()
        .and_then(|v| v.get("statusCode")?.as_u64())
        .and_then(|s| u16::try_from(s).ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::OK)
}

/// The `body` of a function's answer, sent back on a two-way route.
fn route_response(payload: &[u8]) -> Option<Outbound> {
    let v: Value = serde_json::from_slice(payload).ok()?;
    let body = v.get("body")?;
    let text = match body {
        Value::String(s) => s.clone(),
        Value::Null => return None,
        other => other.to_string(),
    };
    if v.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        Some(Outbound::Binary(Bytes::from(raw)))
    } else {
        Some(Outbound::Text(text))
    }
}

/// Evaluates a parsed selection expression against a JSON body: missing
/// paths give "", strings are themselves, other values their JSON text.
pub(crate) fn select_route(expr: &SelectionExpr, body: &Value) -> String {
    let mut out = String::new();
    for part in &expr.parts {
        match part {
            SelectionPart::Literal(l) => out.push_str(l),
            SelectionPart::Body(path) => {
                let found = path.iter().try_fold(body, |v, k| v.get(k.as_str()));
                match found {
                    None | Some(Value::Null) => {}
                    Some(Value::String(s)) => out.push_str(s),
                    Some(other) => out.push_str(&other.to_string()),
                }
            }
        }
    }
    out
}

fn find_route<'a>(api: &'a Api, key: &str) -> Option<&'a stratus_config::Route> {
    api.routes.iter().find(|r| match &r.key {
        RouteKey::WebSocket(k) => k == key,
        RouteKey::Default => key == "$default",
        RouteKey::Http { .. } => false,
    })
}

/// A custom route (never `$connect`/`$disconnect`, whatever the message says).
fn find_custom_route<'a>(api: &'a Api, key: &str) -> Option<&'a stratus_config::Route> {
    if key.starts_with('$') {
        return None;
    }
    find_route(api, key)
}

/// At least 96 random bits (uuid v4: 122), URL-safe.
fn new_connection_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

fn epoch_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What every event of one connection shares.
struct Meta {
    api: Arc<Api>,
    stage: Stage,
    conn_id: String,
    connected_at: i64,
    source_ip: String,
    user_agent: Option<String>,
    domain: Option<String>,
}

enum EventKind<'r, B> {
    Connect(&'r Request<B>),
    Message,
    Disconnect(u16, &'r str),
}

impl Meta {
    fn event<B>(
        &self,
        kind: EventKind<'_, B>,
        route_key: &str,
        request_id: &str,
        body: Option<(String, bool)>,
    ) -> Vec<u8> {
        let now = chrono::Utc::now();
        let mut rc = ApiGatewayWebsocketProxyRequestContext::default();
        rc.route_key = Some(route_key.to_owned());
        rc.message_direction = Some("IN".into());
        rc.connection_id = Some(self.conn_id.clone());
        rc.connected_at = self.connected_at;
        rc.request_id = Some(request_id.to_owned());
        rc.extended_request_id = Some(request_id.to_owned());
        rc.request_time = Some(crate::events::request_time(now));
        rc.request_time_epoch = now.timestamp_millis();
        rc.stage = Some(self.stage.name.clone());
        rc.domain_name = self.domain.clone();
        rc.apiid = Some(self.api.name.clone());
        rc.account_id = Some(stratus_runtime::ACCOUNT_ID.into());
        let mut identity = ApiGatewayRequestIdentity::default();
        identity.source_ip = Some(self.source_ip.clone());
        identity.user_agent = self.user_agent.clone();
        rc.identity = identity;

        let mut event = ApiGatewayWebsocketProxyRequest::default();
        // The crate serializes query maps as lists; API Gateway sends the
        // last value of each in `queryStringParameters`.
        let mut single_query: Option<HashMap<String, String>> = None;
        match kind {
            EventKind::Connect(req) => {
                rc.event_type = Some("CONNECT".into());
                event.headers = crate::events::last_values(req.headers());
                event.multi_value_headers = req.headers().clone();
                let pairs = crate::events::query_pairs(req.uri().query());
                let multi = crate::events::multi_query(&pairs);
                if !pairs.is_empty() {
                    single_query = Some(pairs.into_iter().collect());
                    event.multi_value_query_string_parameters = QueryMap::from(multi);
                }
                event.is_base64_encoded = false;
            }
            EventKind::Message => {
                rc.event_type = Some("MESSAGE".into());
                rc.message_id = Some(new_connection_id());
                if let Some((b, binary)) = body {
                    event.body = Some(b);
                    event.is_base64_encoded = binary;
                }
            }
            EventKind::Disconnect(code, reason) => {
                rc.event_type = Some("DISCONNECT".into());
                rc.disconnect_status_code = Some(i64::from(code));
                rc.disconnect_reason = Some(reason.to_owned());
                event.is_base64_encoded = false;
            }
        }
        if !self.stage.variables.is_empty() {
            event.stage_variables = self.stage.variables.clone().into_iter().collect();
        }
        event.request_context = rc;
        let mut v = serde_json::to_value(&event).unwrap_or_default();
        if let Some(obj) = v.as_object_mut() {
            match single_query {
                Some(q) => {
                    obj.insert("queryStringParameters".into(), serde_json::json!(q));
                }
                None => {
                    obj.remove("queryStringParameters");
                    obj.remove("multiValueQueryStringParameters");
                }
            }
        }
        serde_json::to_vec(&v).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(expr: &str, body: &str) -> String {
        let e = SelectionExpr::parse(expr).unwrap();
        select_route(&e, &serde_json::from_str(body).unwrap())
    }

    #[test]
    fn selection_evaluates_paths_templates_and_missing_values() {
        assert_eq!(eval("$request.body.action", r#"{"action":"send"}"#), "send");
        assert_eq!(eval("$request.body.a.b", r#"{"a":{"b":"deep"}}"#), "deep");
        assert_eq!(eval("$request.body.a.b", r#"{"a":{}}"#), "");
        assert_eq!(eval("$request.body.n", r#"{"n":42}"#), "42");
        assert_eq!(
            eval("$request.body.o", r#"{"o":{"x":true}}"#),
            r#"{"x":true}"#
        );
        assert_eq!(
            eval(
                "${request.body.svc}/${request.body.op}",
                r#"{"svc":"chat","op":"join"}"#
            ),
            "chat/join"
        );
        assert_eq!(eval(r"\$${request.body.op}", r#"{"op":"x"}"#), "$x");
    }

    #[test]
    fn connection_ids_are_url_safe_and_unique() {
        let a = new_connection_id();
        let b = new_connection_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 22);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
