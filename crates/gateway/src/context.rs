//! The per-request context: created once when a request arrives, filled by
//! the phases as they run, read once by the access event at the end.
//! Nothing travels as loose arguments between phases.

use std::net::SocketAddr;
use std::time::Duration;

use http::{HeaderValue, Response};
use stratus_config::{Api, ApiKind, Route, Stage};
use tokio::time::Instant;

use crate::Body;

#[derive(Debug)]
pub(crate) struct RequestContext {
    pub(crate) request_id: String,
    pub(crate) started: Instant,
    pub(crate) remote: SocketAddr,
    pub(crate) method: http::Method,
    /// The request path (after dot segments are resolved).
    pub(crate) path: String,
    /// What matched: API type, API, stage and route key ("" while unknown).
    pub(crate) kind: Option<ApiKind>,
    pub(crate) api: String,
    pub(crate) stage: String,
    pub(crate) route: String,
    /// The API key the request presented (API key phase).
    pub(crate) api_key: Option<String>,
    /// The caller an authorizer let in, and its context (authorizer phase).
    pub(crate) principal: Option<String>,
    pub(crate) authorizer: Option<serde_json::Value>,
    /// How long the integration took (upstream or function).
    pub(crate) integration_latency: Option<Duration>,
    /// `"hit"` or `"miss"` when the stage cache was consulted (cache phase).
    pub(crate) cache: Option<&'static str>,
    /// Why the request failed, for the access log.
    pub(crate) error: Option<String>,
}

impl RequestContext {
    pub(crate) fn new<B>(req: &http::Request<B>, remote: SocketAddr) -> RequestContext {
        RequestContext {
            request_id: uuid::Uuid::new_v4().to_string(),
            started: Instant::now(),
            remote,
            method: req.method().clone(),
            path: req.uri().path().to_owned(),
            kind: None,
            api: String::new(),
            stage: String::new(),
            route: String::new(),
            api_key: None,
            principal: None,
            authorizer: None,
            integration_latency: None,
            cache: None,
            error: None,
        }
    }

    /// Notes the API and stage a request fell under, and its route if any.
    pub(crate) fn matched(&mut self, api: &Api, stage: &Stage, route: Option<&Route>) {
        self.kind = Some(api.kind);
        self.api.clone_from(&api.name);
        self.stage.clone_from(&stage.name);
        if let Some(r) = route {
            self.route = r.key.to_string();
        }
    }

    /// The last step of every request: the request id header (named as the
    /// API type names it) and the access event.
    pub(crate) fn finish(self, mut resp: Response<Body>) -> Response<Body> {
        let id_header = match self.kind {
            Some(ApiKind::Http) | None => "apigw-requestid",
            _ => "x-amzn-requestid",
        };
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            resp.headers_mut().insert(id_header, v);
        }
        crate::phases::served::emit(&self, resp.status(), self.started.elapsed());
        resp
    }
}
