//! The public gateway: takes an HTTP request, finds its API, stage and
//! route, runs the route's integration and maps failures to API Gateway's
//! status codes and bodies.
//!
//! It owns no sockets (`stratus-server` does), so every phase can be tested
//! in memory by calling [`Gateway::handle`]. It must never read the config
//! file: it receives an already validated `App`.

mod error;
mod events;
mod invoke;
mod normalize;
mod proxy;
mod router;
mod websocket;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body::Body as HttpBody;
use http_body_util::{BodyExt, Full};
use stratus_config::{ApiKind, App, Integration, Mock, PayloadFormat};
use tokio::time::Instant;

pub use error::GatewayError;
pub use events::RawRequestHead;
pub use invoke::Invoke;
pub use websocket::{
    ConnectionInfo, ConnectionRegistry, LocalConnection, LocalRegistry, Outbound, SendError,
    WebSockets, MAX_FRAME, MAX_MESSAGE,
};

use router::{Lookup, RouteTable};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type of every response the gateway produces.
pub type Body = http_body_util::combinators::BoxBody<Bytes, BoxError>;

/// API Gateway's payload limit: larger requests get 413.
pub const MAX_REQUEST_BODY: u64 = 10 * 1024 * 1024;

/// The gateway for one `App`. Cheap to clone; immutable once built, so a
/// reload builds a new one and swaps it in.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    table: RouteTable,
    proxy: proxy::Proxy,
    functions: Arc<dyn Invoke>,
    websockets: Arc<WebSockets>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    /// `functions` runs the function integrations of `app`.
    pub fn new(app: &App, functions: Arc<dyn Invoke>) -> Gateway {
        Gateway {
            inner: Arc::new(Inner {
                table: RouteTable::new(app),
                proxy: proxy::Proxy::new(),
                websockets: Arc::new(WebSockets::new(app, functions.clone())),
                functions,
            }),
        }
    }

    /// The WebSocket APIs' connections, for the `@connections` API and shutdown.
    pub fn websockets(&self) -> Arc<WebSockets> {
        self.inner.websockets.clone()
    }

    /// Serves one request. The phases, in the order API Gateway applies them:
    /// 1. a request id, on the response and in every log line of the request;
    /// 2. route matching (API by base path and stage, then the route);
    /// 3. the payload limit (by `content-length` here, while streaming in
    ///    the proxy);
    /// 4. the integration, under its timeout;
    /// 5. the access log event.
    pub async fn handle<B>(&self, req: Request<B>, remote: SocketAddr) -> Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        let started = Instant::now();
        let request_id = uuid::Uuid::new_v4().to_string();
        let method = req.method().clone();
        let mut req = req;
        match normalize::normalize(req.uri().path()) {
            Ok(None) => {}
            Ok(Some(normal)) => {
                let uri = match req.uri().query() {
                    Some(q) => format!("{normal}?{q}"),
                    None => normal,
                };
                if let Ok(uri) = uri.parse() {
                    *req.uri_mut() = uri;
                }
            }
            Err(()) => {
                let path = req.uri().path().to_owned();
                let e = GatewayError::BadRequest("the path climbs above the root".into());
                let resp = e.clone().into_response();
                RequestServed {
                    request_id: &request_id,
                    api: "",
                    stage: "",
                    route: "",
                    method: method.as_str(),
                    path: &path,
                    remote,
                    status: resp.status(),
                    latency: started.elapsed(),
                    error: Some(&e.to_string()),
                }
                .emit();
                return resp;
            }
        }
        let path = req.uri().path().to_owned();

        // A WebSocket API stage is served at exactly its mount path.
        if let Some((api, stage)) = self.inner.websockets.mount(&path) {
            let (api, stage) = (api.clone(), stage.clone());
            let upgrade = req
                .headers()
                .get(header::UPGRADE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
            let mut resp = if upgrade && method == http::Method::GET {
                self.inner
                    .websockets
                    .upgrade(req, api.clone(), stage.clone(), remote, &request_id)
                    .await
            } else {
                error::json_message(StatusCode::UPGRADE_REQUIRED, "Upgrade Required")
            };
            if let Ok(v) = HeaderValue::from_str(&request_id) {
                resp.headers_mut().insert("x-amzn-requestid", v);
            }
            RequestServed {
                request_id: &request_id,
                api: &api.name,
                stage: &stage.name,
                route: "$connect",
                method: method.as_str(),
                path: &path,
                remote,
                status: resp.status(),
                latency: started.elapsed(),
                error: None,
            }
            .emit();
            return resp;
        }

        let lookup = self.inner.table.lookup(&method, &path);
        let kind = match &lookup {
            Lookup::Found(m) => Some(m.api.kind),
            Lookup::NoRoute { api, .. } => Some(api.kind),
            Lookup::NoApi => None,
        };
        let (api_name, stage_name, route_key) = match &lookup {
            Lookup::Found(m) => (
                m.api.name.as_str(),
                m.stage.name.as_str(),
                m.route.key.to_string(),
            ),
            Lookup::NoRoute { api, stage } => {
                (api.name.as_str(), stage.name.as_str(), String::new())
            }
            Lookup::NoApi => ("", "", String::new()),
        };

        let result = match &lookup {
            Lookup::Found(m) => {
                let too_long = req
                    .headers()
                    .get(header::CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                    .is_some_and(|n| n > MAX_REQUEST_BODY);
                if too_long {
                    Err(GatewayError::PayloadTooLarge {
                        limit: MAX_REQUEST_BODY,
                    })
                } else {
                    let req = req.map(|b| b.map_err(Into::into).boxed());
                    self.integrate(m, req, remote, &request_id).await
                }
            }
            _ => Err(GatewayError::NoRoute(kind)),
        };

        let (mut resp, error) = match result {
            Ok(r) => (r, None),
            Err(e) => {
                let msg = e.to_string();
                (e.into_response(), Some(msg))
            }
        };
        let id_header = match kind {
            Some(ApiKind::Http) | None => "apigw-requestid",
            _ => "x-amzn-requestid",
        };
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            resp.headers_mut().insert(id_header, v);
        }
        RequestServed {
            request_id: &request_id,
            api: api_name,
            stage: stage_name,
            route: &route_key,
            method: method.as_str(),
            path: &path,
            remote,
            status: resp.status(),
            latency: started.elapsed(),
            error: error.as_deref(),
        }
        .emit();
        resp
    }

    async fn integrate(
        &self,
        m: &router::Matched<'_>,
        req: Request<Body>,
        remote: SocketAddr,
        request_id: &str,
    ) -> Result<Response<Body>, GatewayError> {
        match &m.route.integration {
            Integration::Mock(mock) => {
                // The body is read (and bounded) even though a mock ignores
                // it: a request over the limit is 413 on every route.
                collect_limited(req.into_body()).await?;
                Ok(mock_response(mock))
            }
            Integration::Http { url } => {
                self.inner
                    .proxy
                    .forward(m, url, req, remote, m.route.timeout)
                    .await
            }
            Integration::Function { name } => {
                let kind = m.api.kind;
                let call = self.call_function(m, name, req, remote, request_id);
                match tokio::time::timeout(m.route.timeout, call).await {
                    Ok(r) => r,
                    Err(_) => Err(GatewayError::Timeout(kind)),
                }
            }
        }
    }

    /// The Lambda proxy integration: event in, function, response out.
    async fn call_function(
        &self,
        m: &router::Matched<'_>,
        function: &str,
        req: Request<Body>,
        remote: SocketAddr,
        request_id: &str,
    ) -> Result<Response<Body>, GatewayError> {
        let (parts, body) = req.into_parts();
        let accept = parts
            .headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = collect_limited(body).await?;
        let cx = events::EventContext {
            request_id,
            remote,
            now: chrono::Utc::now(),
        };
        let event = match m.route.payload {
            PayloadFormat::V1 => events::v1::v1_event(m, &parts, &body, &cx)?,
            PayloadFormat::V2 => events::v2::v2_event(m, &parts, &body, &cx)?,
        };
        let payload = crate::invoke::call_function(
            &*self.inner.functions,
            function,
            Bytes::from(event),
            m.route.timeout,
            None,
        )
        .await
        .map_err(|e| e.into_gateway_error(m.api.kind))?;
        match m.route.payload {
            PayloadFormat::V1 => {
                events::v1::v1_response(&payload, accept.as_deref(), &m.api.binary_media_types)
            }
            PayloadFormat::V2 => events::v2::v2_response(&payload),
        }
    }
}

/// Reads a whole request body, up to the payload limit.
///
/// Written as a function returning `impl Future + Send + 'static` rather
/// than an `async fn`: with an `async fn` here rustc cannot prove the
/// gateway's request future `Send` for every lifetime (rust-lang/rust#96865),
/// and hyper's connection task needs it.
#[allow(clippy::manual_async_fn)]
fn collect_limited(
    body: Body,
) -> impl std::future::Future<Output = Result<Bytes, GatewayError>> + Send + 'static {
    async move {
        let mut body = body;
        let mut buf = bytes::BytesMut::new();
        while let Some(frame) = body.frame().await {
            let frame = frame
                .map_err(|e| GatewayError::BadRequest(format!("reading the request body: {e}")))?;
            if let Some(data) = frame.data_ref() {
                if buf.len() + data.len() > MAX_REQUEST_BODY as usize {
                    return Err(GatewayError::PayloadTooLarge {
                        limit: MAX_REQUEST_BODY,
                    });
                }
                buf.extend_from_slice(data);
            }
        }
        Ok(buf.freeze())
    }
}

pub(crate) fn empty_body() -> Body {
    http_body_util::Empty::<Bytes>::new()
        .map_err(Into::into)
        .boxed()
}

fn mock_response(m: &Mock) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(m.body.clone()))
            .map_err(Into::into)
            .boxed(),
    );
    *resp.status_mut() = StatusCode::from_u16(m.status).unwrap_or(StatusCode::OK);
    for (k, v) in &m.headers {
        if let (Ok(k), Ok(v)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            resp.headers_mut().append(k, v);
        }
    }
    resp
}

/// "request served": the one place that logs a request and (later) counts it.
struct RequestServed<'a> {
    request_id: &'a str,
    api: &'a str,
    stage: &'a str,
    route: &'a str,
    method: &'a str,
    path: &'a str,
    remote: SocketAddr,
    status: StatusCode,
    latency: std::time::Duration,
    error: Option<&'a str>,
}

impl RequestServed<'_> {
    fn emit(&self) {
        let latency_ms = self.latency.as_secs_f64() * 1000.0;
        tracing::info!(
            target: "stratus::access",
            request_id = self.request_id,
            api = self.api,
            stage = self.stage,
            route = self.route,
            method = self.method,
            path = self.path,
            source_ip = %self.remote.ip(),
            status = self.status.as_u16(),
            latency_ms = format_args!("{latency_ms:.2}"),
            error = self.error,
            "{} {} {}",
            self.method,
            self.path,
            self.status.as_u16(),
        );
    }
}

#[cfg(test)]
mod tests;
