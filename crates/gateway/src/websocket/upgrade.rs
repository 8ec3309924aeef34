//! The upgrade: handshake checks, `$connect` (its answer decides the
//! handshake), then the connection's task.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use http::{header, HeaderValue, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use stratus_config::{Api, Stage};
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::routing::find_route;
use super::{WebSockets, MAX_FRAME, MAX_MESSAGE};
use crate::context::RequestContext;
use crate::error::json_message;
use crate::events::websocket::{new_connection_id, EventKind, Meta};
use crate::Body;

impl WebSockets {
    /// A request to a WebSocket stage's path: the upgrade, or 426 for
    /// anything that is not one.
    pub(crate) async fn serve_upgrade(
        self: &Arc<Self>,
        req: Request<Body>,
        api: Arc<Api>,
        stage: Stage,
        cx: &RequestContext<'_>,
    ) -> Response<Body> {
        let upgrade = crate::header_str(req.headers(), header::UPGRADE)
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
        if upgrade && req.method() == http::Method::GET {
            self.upgrade(req, api, stage, cx.remote, &cx.request_id)
                .await
        } else {
            json_message(StatusCode::UPGRADE_REQUIRED, "Upgrade Required")
        }
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
        let connected_at = crate::events::epoch_ms();
        let mut meta = Meta {
            api: api.clone(),
            stage: stage.clone(),
            conn_id: conn_id.clone(),
            connected_at,
            source_ip: remote.ip().to_string(),
            user_agent: crate::header_str(req.headers(), header::USER_AGENT).map(str::to_owned),
            domain: crate::header_str(req.headers(), header::HOST).map(str::to_owned),
            authorizer: None,
            api_key: None,
        };

        // $connect's throttle (its own, else its stage's, then the
        // server's): past it the handshake is 429, as API Gateway answers.
        if let Some(route) = find_route(&api, "$connect") {
            if crate::phases::throttle::apply(
                &*self.access.limiter,
                self.access.server_throttle,
                &api,
                &stage,
                route,
            )
            .await
            .is_err()
            {
                return json_message(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            }
        }
        // $connect's authorizer and API key (AWS applies both to $connect
        // only; later messages carry what they let in).
        if let Some(route) = find_route(&api, "$connect") {
            if let Err(e) = self.admit_connect(route, &req, &mut meta, request_id).await {
                return e.into_response();
            }
        }

        // $connect runs during the upgrade: its answer decides the handshake.
        if let Some(route) = find_route(&api, "$connect") {
            let event = meta.event(EventKind::Connect(&req), "$connect", request_id, None);
            let status = match self.invoke(route, event).await {
                Ok(payload) => connect_status(&payload),
                Err(e) if e.timed_out() => StatusCode::GATEWAY_TIMEOUT,
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
}

impl WebSockets {
    async fn admit_connect<B>(
        &self,
        route: &stratus_config::Route,
        req: &Request<B>,
        meta: &mut Meta,
        request_id: &str,
    ) -> Result<(), crate::GatewayError> {
        let access = &*self.access;
        let mut usage_key = None;
        if let Some(auth) = &route.authorizer {
            let who = crate::phases::authorize::Request {
                api: &meta.api,
                stage: &meta.stage,
                route_key: "$connect",
                method: "GET",
                path: "/",
                headers: req.headers(),
                query: req.uri().query(),
                source_ip: meta.source_ip.clone(),
                request_id,
            };
            let event = || meta.event_value(EventKind::Connect(req), "$connect", request_id, None);
            let granted = access
                .authorizers
                .connect(auth, &who, event, route.timeout)
                .await?;
            usage_key = granted.usage_key;
            meta.authorizer = Some(granted.context);
        }
        if route.api_key_required {
            let key = match meta.api.api_key_source {
                stratus_config::ApiKeySource::Header => {
                    crate::header_str(req.headers(), "x-api-key").map(str::to_owned)
                }
                stratus_config::ApiKeySource::Authorizer => usage_key,
            };
            access
                .keys
                .admit(
                    &*access.limiter,
                    &meta.api,
                    &meta.stage,
                    &route.key,
                    key.as_deref(),
                )
                .await?;
            meta.api_key = key;
        }
        Ok(())
    }
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
