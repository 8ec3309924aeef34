//! The public gateway: takes an HTTP request, finds its API, stage and
//! route, runs the route's integration and maps failures to API Gateway's
//! status codes and bodies.
//!
//! It owns no sockets (`stratus-server` does), so every phase can be tested
//! in memory by calling [`Gateway::handle`]. It must never read the config
//! file: it receives an already validated `App`.

mod context;
mod error;
mod events;
mod integrations;
mod invoke;
mod phases;
mod router;
mod sample;
mod sites;
mod websocket;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body as HttpBody;
use http_body_util::BodyExt;
use stratus_config::{ApiKeySource, App, Integration};
use tokio::time::Instant;

pub use error::GatewayError;
pub use events::{header_str, query_pairs, IamCaller, RawRequestHead, UrlCaller};
pub use invoke::Invoke;
pub use phases::cache::StageCaches;
pub use sample::{event_for, SampleRequest};
pub use sites::Sites;
/// CORS answers, for the admin listener's S3 API (bucket CORS).
pub mod cors {
    pub use crate::phases::cors::{
        allows_origin, answer_headers, preflight_headers, preflight_origin,
    };
}
pub use websocket::{
    ConnectionInfo, Connections, LocalConnection, Management, Outbound, SendError, WebSockets,
    MAX_FRAME, MAX_MESSAGE,
};

use context::RequestContext;
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
    proxy: integrations::http::Proxy,
    functions: Arc<dyn Invoke>,
    websockets: Arc<WebSockets>,
    access: Arc<Access>,
    sites: Arc<Sites>,
    caches: Arc<phases::cache::StageCaches>,
    /// Stages with a canary: API → stage → (percent, the canary's routes).
    canaries: HashMap<String, HashMap<String, (f64, RouteTable)>>,
    /// AWS_IAM function URLs: (url id, mount).
    signed_urls: Vec<(String, String)>,
    /// Some route is `AWS_IAM`.
    iam_routes: bool,
}

/// A stage's canary: `percent` of its requests are served by `app`'s
/// (one API, one stage) routes.
pub struct Canary {
    pub api: String,
    pub stage: String,
    pub percent: f64,
    pub app: App,
}

/// Who may call what, and how often: shared by HTTP requests and
/// WebSocket `$connect` and messages.
pub(crate) struct Access {
    /// Token buckets of the throttles (phases/throttle.rs).
    pub(crate) limiter: Arc<dyn stratus_state::RateLimiter>,
    /// The server-wide throttle.
    pub(crate) server_throttle: Option<stratus_config::Throttle>,
    pub(crate) authorizers: phases::authorize::Authorizers,
    pub(crate) keys: phases::api_key::KeyCheck,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").finish_non_exhaustive()
    }
}

impl Gateway {
    /// `functions` runs the function integrations of `app`; `connections`
    /// holds the WebSocket connections and outlives this gateway (a reload
    /// builds a new gateway with the same connections).
    pub fn new(app: &App, functions: Arc<dyn Invoke>, connections: Arc<Connections>) -> Gateway {
        Gateway::with_stores(app, functions, connections, None, None)
    }

    /// `new`, with the API keys that usage plans open (`None`: no key is
    /// accepted, so key-protected routes answer 403) and the objects sites
    /// serve (`None`: sites answer 404).
    pub fn with_stores(
        app: &App,
        functions: Arc<dyn Invoke>,
        connections: Arc<Connections>,
        keys: Option<Arc<stratus_state::ApiKeys>>,
        objects: Option<Arc<dyn stratus_state::objects::ObjectStore>>,
    ) -> Gateway {
        Self::with_canaries(app, functions, connections, keys, objects, Vec::new(), None)
    }

    /// `with_stores`, and stages' canaries, and the throttles' buckets
    /// (`None`: in this process; a fleet shares them, `cluster.redis`).
    pub fn with_canaries(
        app: &App,
        functions: Arc<dyn Invoke>,
        connections: Arc<Connections>,
        keys: Option<Arc<stratus_state::ApiKeys>>,
        objects: Option<Arc<dyn stratus_state::objects::ObjectStore>>,
        canaries: Vec<Canary>,
        limiter: Option<Arc<dyn stratus_state::RateLimiter>>,
    ) -> Gateway {
        let mut by_stage: HashMap<String, HashMap<String, (f64, RouteTable)>> = HashMap::new();
        for c in canaries {
            by_stage
                .entry(c.api)
                .or_default()
                .insert(c.stage, (c.percent, RouteTable::new(&c.app)));
        }
        // One set of buckets for HTTP requests and WebSocket messages (the
        // server-wide limit counts both).
        let access = Arc::new(Access {
            limiter: limiter
                .unwrap_or_else(|| Arc::new(stratus_state::MemoryRateLimiter::default())),
            server_throttle: app.server.throttle,
            authorizers: phases::authorize::Authorizers::new(app, functions.clone()),
            keys: phases::api_key::KeyCheck {
                keys,
                plans: app.usage_plans.clone(),
            },
        });
        Gateway {
            inner: Arc::new(Inner {
                table: RouteTable::new(app),
                proxy: integrations::http::Proxy::new(),
                websockets: Arc::new(WebSockets::new(
                    app,
                    functions.clone(),
                    connections,
                    access.clone(),
                )),
                functions,
                access,
                sites: Arc::new(Sites::new(app, objects)),
                caches: Arc::new(phases::cache::StageCaches::new(app)),
                canaries: by_stage,
                signed_urls: app
                    .apis
                    .iter()
                    .filter(|a| {
                        a.function_url
                            .as_ref()
                            .is_some_and(|u| u.auth == stratus_config::UrlAuth::AwsIam)
                    })
                    .map(|a| (a.id.clone(), a.base_path.clone()))
                    .collect(),
                iam_routes: app.apis.iter().any(|a| a.routes.iter().any(|r| r.iam)),
            }),
        }
    }

    /// Whether a request to `host` and `path` is for a function URL whose
    /// `AuthType` is `AWS_IAM` (the server checks its signature first).
    /// The SigV4 service a request must be signed for: `lambda` on an
    /// `AWS_IAM` function URL, `execute-api` on an `AWS_IAM` route; the
    /// server checks the signature over the whole body before `handle`.
    pub fn signature_service(
        &self,
        method: &http::Method,
        host: Option<&str>,
        path: &str,
    ) -> Option<&'static str> {
        if self.needs_signature(host, path) {
            return Some("lambda");
        }
        if !self.inner.iam_routes {
            return None;
        }
        let host_api = router::host_api_id(host);
        let host_api = host_api
            .as_deref()
            .filter(|id| self.inner.table.serves_host(id));
        match self.inner.table.lookup(method, host_api, path) {
            Lookup::Found(m) if m.route.iam => Some("execute-api"),
            _ => None,
        }
    }

    pub fn needs_signature(&self, host: Option<&str>, path: &str) -> bool {
        let urls = &self.inner.signed_urls;
        if urls.is_empty() {
            return false;
        }
        let id = router::host_api_id(host);
        urls.iter().any(|(url_id, mount)| {
            id.as_deref() == Some(url_id.as_str())
                || path
                    .strip_prefix(mount.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }

    /// The sites, for the S3 API (an object changed) and invalidations.
    pub fn sites(&self) -> Arc<Sites> {
        self.inner.sites.clone()
    }

    /// The REST stages' response caches, for the flush API.
    pub fn caches(&self) -> Arc<StageCaches> {
        self.inner.caches.clone()
    }

    /// The WebSocket APIs' connections, for the `@connections` API and shutdown.
    pub fn websockets(&self) -> Arc<WebSockets> {
        self.inner.websockets.clone()
    }

    /// The canary of the stage a lookup fell in, if it has one.
    fn canary_of(&self, lookup: &Lookup<'_>) -> Option<(f64, &RouteTable)> {
        if self.inner.canaries.is_empty() {
            return None;
        }
        let (api, stage) = match lookup {
            Lookup::Found(m) => (m.api, m.stage),
            Lookup::NoRoute { api, stage } => (*api, *stage),
            Lookup::NoApi => return None,
        };
        self.inner
            .canaries
            .get(&api.name)?
            .get(&stage.name)
            .map(|(p, t)| (*p, t))
    }

    /// Serves one request: a context is made, the phases run, and the
    /// context's access event closes it, whatever the outcome.
    pub async fn handle<B>(&self, req: Request<B>, remote: SocketAddr) -> Response<Body>
    where
        B: HttpBody<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        let mut cx = RequestContext::new(&req, remote);
        let req = req.map(|b| b.map_err(Into::into).boxed());
        let mut resp = match self.phases(req, &mut cx).await {
            Ok(resp) => resp,
            Err(e) => {
                cx.error = Some(e.to_string());
                cx.failure = Some((e.message(), e.response_type()));
                // REST APIs answer through their gateway responses.
                match cx.api.filter(|a| a.kind == stratus_config::ApiKind::Rest) {
                    Some(api) => phases::gateway_responses::answer(api, e, &cx),
                    None => e.into_response(),
                }
            }
        };
        // CORS headers on every answer to an allowed origin, the gateway's
        // own errors included (phases/cors.rs).
        if let Some(cors) = cx.api.and_then(|a| a.cors.as_ref()) {
            phases::cors::decorate(cors, cx.origin.as_ref(), &mut resp);
        }
        cx.finish(resp)
    }

    /// The phases, in the order API Gateway applies them. Each one either
    /// passes the request on or ends it with a `GatewayError`, whose kind
    /// decides the status and the AWS body (`error.rs`).
    async fn phases<'g>(
        &'g self,
        req: Request<Body>,
        cx: &mut RequestContext<'g>,
    ) -> Result<Response<Body>, GatewayError> {
        // Dot segments resolved before anything reads the path, so that no
        // route can be climbed out of (400 above the root).
        let req = phases::normalize::apply(req)?;
        if req.uri().path() != cx.path {
            cx.path = req.uri().path().to_owned();
        }

        // A request to an API's own host (`{id}.execute-api.localhost`)
        // is matched against that API's stages alone (router.rs).
        let host_api = router::host_api_id(cx.host_str());
        let host_api = host_api
            .as_deref()
            .filter(|id| self.inner.table.serves_host(id) || self.inner.websockets.serves_host(id));

        // A WebSocket API stage is served at exactly its mount path: the
        // upgrade and `$connect` (websocket/upgrade.rs).
        if let Some((api, stage)) = self.inner.websockets.mount(host_api, &cx.path) {
            cx.matched(api, stage, None);
            cx.websocket = true;
            let (api, stage) = (api.clone(), stage.clone());
            return Ok(self
                .inner
                .websockets
                .serve_upgrade(req, api, stage, cx)
                .await);
        }

        // A site mounted deeper than any API stage serves the path
        // (sites.rs): the longest mount wins, as between APIs.
        if let Some((len, site)) = self
            .inner
            .sites
            .mount(&cx.path)
            .filter(|_| host_api.is_none())
        {
            if self.inner.table.mount_len(&cx.path).is_none_or(|l| len > l) {
                return Ok(self
                    .inner
                    .sites
                    .serve(site, req.method(), &cx.path, req.headers())
                    .await);
            }
        }

        // Match: API by base path and stage, then the route (router.rs);
        // a stage's canary takes its share of the requests.
        let mut lookup = self.inner.table.lookup(&cx.method, host_api, &cx.path);
        if let Some((percent, table)) = self.canary_of(&lookup) {
            if rand::random::<f64>() * 100.0 < percent {
                lookup = table.lookup(&cx.method, host_api, &cx.path);
            }
        }
        // CORS: a preflight to an API with CORS is answered here, whether
        // or not a route matches it (phases/cors.rs; the CORS headers of every
        // answer, this one too, are added in `handle`).
        if let Some(origin) = phases::cors::preflight_origin(&cx.method, req.headers()) {
            let api_stage = match &lookup {
                Lookup::Found(m) => Some((m.api, m.stage)),
                Lookup::NoRoute { api, stage } => Some((*api, *stage)),
                Lookup::NoApi => None,
            };
            if let Some((api, stage)) = api_stage {
                if let Some(cors) = &api.cors {
                    cx.matched(api, stage, None);
                    return Ok(phases::cors::preflight(cors, origin));
                }
            }
        }
        let m = match lookup {
            Lookup::Found(m) => m,
            Lookup::NoRoute { api, stage } => {
                cx.matched(api, stage, None);
                cx.keep_request_head(&req);
                return Err(GatewayError::NoRoute(Some(api.kind)));
            }
            Lookup::NoApi => return Err(GatewayError::NoRoute(None)),
        };
        cx.matched(m.api, m.stage, Some(m.route));
        cx.keep_request_head(&req);

        // An AWS_IAM function URL: the caller the server's signature check
        // found, as Lambda gives it; none is 403 (the check was not made).
        if let Some(url) = &m.api.function_url {
            if url.auth == stratus_config::UrlAuth::AwsIam {
                let Some(UrlCaller(key)) = req.extensions().get::<UrlCaller>().cloned() else {
                    return Err(GatewayError::Forbidden(
                        "the function URL takes SigV4-signed requests",
                    ));
                };
                cx.authorizer = Some(iam_authorizer(&key));
            }
        }
        // AWS_IAM: the server checked the signature (`signature_service`).
        if m.route.iam {
            match req.extensions().get::<IamCaller>() {
                Some(IamCaller::Signed(key)) => {
                    cx.iam_caller = Some(key.clone());
                    if m.api.kind == stratus_config::ApiKind::Http {
                        cx.authorizer = Some(iam_authorizer(key));
                    }
                }
                Some(IamCaller::Refused(why)) => {
                    return Err(GatewayError::InvalidSignature(why.clone()))
                }
                Some(IamCaller::Unsigned) | None => return Err(GatewayError::MissingSignature),
            }
        }
        let access = &*self.inner.access;
        // The resource policy (phases/policy.rs): an explicit deny ends it;
        // an implicit one too, unless an authorizer may still allow.
        if let Some(p) = &m.api.policy {
            let arn = access.authorizers.arn(
                &m.api.name,
                &m.stage.name,
                &format!("{}{}", req.method(), m.path),
            );
            let verdict = phases::policy::judge(p, &arn, &m.api.name, cx.remote.ip());
            let who = cx.iam_caller.as_deref().map_or_else(
                || "anonymous".to_owned(),
                |k| format!("arn:aws:iam::{}:user/{k}", events::ACCOUNT_ID),
            );
            let words = |explicit: bool| {
                format!(
                    "User: {who} is not authorized to perform: execute-api:Invoke on resource: {arn}{}",
                    if explicit { " with an explicit deny" } else { "" }
                )
            };
            match verdict {
                phases::authorize::policy::Verdict::ExplicitDeny => {
                    return Err(GatewayError::PolicyDenied(words(true)))
                }
                // An authorizer's Allow (or a signed IAM caller of this
                // account) lifts an implicit deny, as AWS's table says.
                phases::authorize::policy::Verdict::ImplicitDeny
                    if m.route.authorizer.is_none() && !m.route.iam =>
                {
                    return Err(GatewayError::PolicyDenied(words(false)))
                }
                _ => {}
            }
        }
        // API key (read from `x-api-key`): a key of a usage plan on this
        // stage, within the plan's throttle and quota (phases/api_key.rs).
        let key_from_header = m.api.api_key_source == ApiKeySource::Header;
        if m.route.api_key_required && key_from_header {
            let key = header_str(req.headers(), "x-api-key").map(str::to_owned);
            access
                .keys
                .admit(
                    &*access.limiter,
                    m.api,
                    m.stage,
                    &m.route.key,
                    key.as_deref(),
                )
                .await?;
            cx.api_key = key;
        }
        // Throttle: route or else stage › server (phases/throttle.rs).
        phases::throttle::apply(
            &*access.limiter,
            access.server_throttle,
            m.api,
            m.stage,
            m.route,
        )
        .await?;
        // Authorizer: Lambda (with its result cache) or JWT
        // (phases/authorize).
        let mut req = req;
        if m.route.authorizer.is_some() {
            let (parts, body) = req.into_parts();
            let granted = {
                let ev = cx.event_context();
                access.authorizers.http(&m, &parts, &ev).await?
            };
            if let Some(g) = granted {
                cx.principal = g.principal;
                cx.authorizer = Some(g.context);
                // The key the authorizer named, when the API reads it there.
                if m.route.api_key_required && !key_from_header {
                    access
                        .keys
                        .admit(
                            &*access.limiter,
                            m.api,
                            m.stage,
                            &m.route.key,
                            g.usage_key.as_deref(),
                        )
                        .await?;
                    cx.api_key = g.usage_key;
                }
            }
            req = Request::from_parts(parts, body);
        } else if m.route.api_key_required && !key_from_header {
            return Err(GatewayError::Forbidden(
                "the API reads keys from an authorizer, and the route has none",
            ));
        }
        // Validation: a REST request validator (phases/validate.rs).
        if let Some(v) = &m.route.validation {
            req = phases::validate::check(v, &m, req, cx).await?;
        }
        // Cache: a REST stage's response cache (phases/cache.rs), after
        // every check a caller must pass, before the integration.
        // (A streamed answer is never cached: it is not held whole.)
        let cache = if m.route.stream {
            None
        } else {
            self.inner.caches.plan(&m, &req)
        };
        if let Some(plan) = &cache {
            if let Some(hit) = plan.lookup() {
                cx.cache = Some("hit");
                return Ok(hit);
            }
            cx.cache = Some("miss");
        }

        // The payload limit, as declared (streamed bodies are bounded
        // while they are read).
        phases::limits::check_declared(&req)?;

        // The integration, under the route's timeout.
        let started = Instant::now();
        let result = match (&m.route.mapping, &m.route.integration) {
            (Some(mapping), integration) => {
                let call = integrations::mapping::call(
                    &*self.inner.functions,
                    &self.inner.proxy,
                    &m,
                    mapping,
                    integration,
                    req,
                    cx,
                );
                within_route_timeout(&m, call).await
            }
            (None, Integration::Mock(mock)) => {
                integrations::mock::answer(mock, req.into_body()).await
            }
            (None, Integration::Http { url }) => self.inner.proxy.forward(&m, url, req, cx).await,
            (None, Integration::Function { name }) => {
                let call = integrations::function::call(&*self.inner.functions, &m, name, req, cx);
                within_route_timeout(&m, call).await
            }
        };
        if !matches!(m.route.integration, Integration::Mock(_)) {
            cx.integration_latency = Some(started.elapsed());
        }
        if let Ok(resp) = &result {
            cx.integration_status = Some(resp.status().as_u16());
        }
        match (cache, result) {
            (Some(plan), Ok(resp)) => Ok(plan.store(resp).await),
            (_, result) => result,
        }
    }
}

/// An integration under its route's timeout (API Gateway's 504 / 503).
async fn within_route_timeout(
    m: &router::Matched<'_>,
    call: impl std::future::Future<Output = Result<Response<Body>, GatewayError>>,
) -> Result<Response<Body>, GatewayError> {
    match tokio::time::timeout(m.route.timeout, call).await {
        Ok(r) => r,
        Err(_) => Err(GatewayError::Timeout(m.api.kind)),
    }
}

/// `requestContext.authorizer` of a SigV4-signed caller, as Lambda gives
/// a function URL's and API Gateway an HTTP API route's.
fn iam_authorizer(key: &str) -> serde_json::Value {
    let account = events::ACCOUNT_ID;
    serde_json::json!({ "iam": {
        "accessKey": key,
        "accountId": account,
        "callerId": key,
        "cognitoIdentity": null,
        "principalOrgId": null,
        "userArn": format!("arn:aws:iam::{account}:user/{key}"),
        "userId": key,
    }})
}

pub(crate) fn empty_body() -> Body {
    http_body_util::Empty::<Bytes>::new()
        .map_err(Into::into)
        .boxed()
}

#[cfg(test)]
mod tests;
