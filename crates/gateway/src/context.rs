//! The per-request context: created once when a request arrives, filled by
//! the phases as they run, read once by the access event at the end.
//! Nothing travels as loose arguments between phases.

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderValue, Response};
use stratus_config::{Api, ApiKind, Route, Stage};
use tokio::time::Instant;

use crate::Body;

/// Borrows what matched from the gateway's immutable tables (`'g`), so
/// that noting a match costs nothing per request.
#[derive(Debug)]
pub(crate) struct RequestContext<'g> {
    pub(crate) request_id: String,
    pub(crate) started: Instant,
    pub(crate) remote: SocketAddr,
    pub(crate) method: http::Method,
    /// The request path (after dot segments are resolved).
    pub(crate) path: String,
    /// What matched: API, stage, route (none while unknown).
    pub(crate) api: Option<&'g Api>,
    pub(crate) stage: Option<&'g Stage>,
    pub(crate) route: Option<&'g Route>,
    /// A WebSocket upgrade (its route is `$connect`).
    pub(crate) websocket: bool,
    /// The API key the request presented (API key phase).
    pub(crate) api_key: Option<String>,
    /// The access key of a SigV4-signed caller (`AWS_IAM` routes).
    pub(crate) iam_caller: Option<String>,
    /// The caller an authorizer let in (authorizer phase).
    pub(crate) principal: Option<String>,
    /// `requestContext.authorizer` for the route's payload format.
    pub(crate) authorizer: Option<serde_json::Value>,
    /// How long the integration took (upstream or function).
    pub(crate) integration_latency: Option<Duration>,
    /// `"hit"` or `"miss"` when the stage cache was consulted (cache phase).
    pub(crate) cache: Option<&'static str>,
    /// Why the request failed, for the access log.
    pub(crate) error: Option<String>,
    /// The request's `Origin`, for CORS.
    pub(crate) origin: Option<http::HeaderValue>,
    /// The gateway's own failure: its AWS message and response type.
    pub(crate) failure: Option<(std::borrow::Cow<'static, str>, &'static str)>,
    /// `$context.error.validationErrorString`: why validation refused it.
    pub(crate) validation_error: Option<String>,
    /// The request's headers and query, kept for an API whose gateway
    /// responses map them (`method.request.header.NAME`).
    pub(crate) request_head: Option<(http::HeaderMap, Option<String>)>,
    /// What the integration answered.
    pub(crate) integration_status: Option<u16>,
    /// For access logs: `Host`, `User-Agent`, the HTTP version.
    pub(crate) host: Option<http::HeaderValue>,
    pub(crate) user_agent: Option<http::HeaderValue>,
    pub(crate) version: http::Version,
}

impl<'g> RequestContext<'g> {
    /// The request's `Host`, as text.
    pub(crate) fn host_str(&self) -> Option<&str> {
        self.host.as_ref().and_then(|h| h.to_str().ok())
    }

    pub(crate) fn new<B>(req: &http::Request<B>, remote: SocketAddr) -> RequestContext<'g> {
        RequestContext {
            request_id: uuid::Uuid::new_v4().to_string(),
            started: Instant::now(),
            remote,
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            origin: req.headers().get(http::header::ORIGIN).cloned(),
            failure: None,
            validation_error: None,
            iam_caller: None,
            request_head: None,
            integration_status: None,
            // HTTP/2 names the host in the URI's authority.
            host: req.headers().get(http::header::HOST).cloned().or_else(|| {
                req.uri()
                    .authority()
                    .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
            }),
            user_agent: req.headers().get(http::header::USER_AGENT).cloned(),
            version: req.version(),
            api: None,
            stage: None,
            route: None,
            websocket: false,
            api_key: None,
            principal: None,
            authorizer: None,
            integration_latency: None,
            cache: None,
            error: None,
        }
    }

    /// Keeps what an API's gateway responses may map from the request.
    pub(crate) fn keep_request_head<B>(&mut self, req: &http::Request<B>) {
        if self.api.is_some_and(|a| {
            a.gateway_responses.values().any(|g| {
                g.headers
                    .iter()
                    .any(|(_, v)| !matches!(v, stratus_config::MappedValue::Static(_)))
            })
        }) {
            self.request_head = Some((req.headers().clone(), req.uri().query().map(str::to_owned)));
        }
    }

    /// Notes the API and stage a request fell under, and its route if any.
    pub(crate) fn matched(&mut self, api: &'g Api, stage: &'g Stage, route: Option<&'g Route>) {
        self.api = Some(api);
        self.stage = Some(stage);
        self.route = route;
    }

    /// What an event built now for this request needs from the context.
    pub(crate) fn event_context(&self) -> crate::events::EventContext<'_> {
        crate::events::EventContext {
            request_id: &self.request_id,
            remote: self.remote,
            now: chrono::Utc::now(),
            authorizer: self.authorizer.as_ref(),
            api_key: self.api_key.as_deref(),
            iam_caller: self.iam_caller.as_deref(),
        }
    }

    pub(crate) fn kind(&self) -> Option<ApiKind> {
        self.api.map(|a| a.kind)
    }

    /// The last step of every request: the request id header (named as the
    /// API type names it) and the access event.
    pub(crate) fn finish(self, mut resp: Response<Body>) -> Response<Body> {
        let id_header = match self.kind() {
            Some(ApiKind::Http) | None => "apigw-requestid",
            _ => "x-amzn-requestid",
        };
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            resp.headers_mut().insert(id_header, v);
        }
        let length = http_body::Body::size_hint(resp.body()).exact();
        crate::phases::served::emit(&self, resp.status(), self.started.elapsed(), length);
        resp
    }
}
