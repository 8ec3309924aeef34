//! A REST stage's response cache, as API Gateway's stage cache answers:
//! a stage with `cache` keeps its routes' successful answers for the ttl
//! (default 300 s, at most 3600), GET routes by default and others when
//! they ask; the key is the route and the parameters chosen
//! (`querystring.q`, `header.accept-language`, `path.id`) — as on AWS,
//! a path parameter is not in the key unless listed. A client's
//! `Cache-Control: max-age=0` refreshes the entry when the stage allows
//! it (`client_refresh`), and is ignored otherwise. Hits and misses are
//! counted per route and logged; the admin API flushes a stage.
//!
//! moka holds the entries, bounded by bytes (`size_mb`); each entry's
//! expiry is checked against tokio's clock, so tests can pause time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use stratus_config::{ApiKind, App, CacheKey, Method as RouteMethod, RouteKey, StageCache};

use crate::router::Matched;
use crate::Body;

/// The largest answer kept (API Gateway's item limit is 1 MB).
pub(crate) const MAX_ITEM: u64 = 1024 * 1024;

pub(crate) struct Entry {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
    expires: tokio::time::Instant,
}

struct Store {
    config: StageCache,
    entries: moka::sync::Cache<String, Arc<Entry>>,
}

/// Every cached stage's store, by API and stage name.
#[derive(Default)]
pub struct StageCaches {
    stores: HashMap<String, HashMap<String, Store>>,
}

/// What the cache phase decided for one request.
pub(crate) struct Plan<'c> {
    store: &'c Store,
    key: String,
    ttl: Duration,
    /// Skip the lookup and store a fresh answer (`max-age=0`, allowed).
    pub(crate) refresh: bool,
}

impl StageCaches {
    pub(crate) fn new(app: &App) -> StageCaches {
        let mut stores: HashMap<String, HashMap<String, Store>> = HashMap::new();
        for api in app.apis.iter().filter(|a| a.kind == ApiKind::Rest) {
            for stage in &api.stages {
                let Some(config) = stage.cache.clone() else {
                    continue;
                };
                let entries = moka::sync::Cache::builder()
                    .max_capacity(config.max_bytes)
                    .weigher(|k: &String, v: &Arc<Entry>| {
                        let headers: usize = v
                            .headers
                            .iter()
                            .map(|(n, v)| n.as_str().len() + v.len())
                            .sum();
                        u32::try_from(k.len() + v.body.len() + headers).unwrap_or(u32::MAX)
                    })
                    // Nothing lives past the longest ttl allowed.
                    .time_to_live(Duration::from_secs(
                        stratus_config::MAX_CACHE_TTL_SECS as u64,
                    ))
                    .build();
                stores
                    .entry(api.name.clone())
                    .or_default()
                    .insert(stage.name.clone(), Store { config, entries });
            }
        }
        StageCaches { stores }
    }

    /// Whether and how this request uses its stage's cache.
    pub(crate) fn plan<B>(&self, m: &Matched<'_>, req: &Request<B>) -> Option<Plan<'_>> {
        if self.stores.is_empty() {
            return None; // no stage caches: nothing hashed per request
        }
        let store = self.stores.get(&m.api.name)?.get(&m.stage.name)?;
        let route = &m.route.cache;
        let is_get = matches!(
            m.route.key,
            RouteKey::Http {
                method: RouteMethod::Get,
                ..
            }
        );
        if !route.enabled.unwrap_or(is_get) {
            return None;
        }
        let ttl = route.ttl.unwrap_or(store.config.ttl);
        if ttl.is_zero() {
            return None;
        }
        let keys = route.keys.as_ref().unwrap_or(&store.config.keys);
        let mut key = format!("{} {}", req.method(), m.route.key);
        let query = crate::events::query_pairs(req.uri().query());
        for k in keys {
            key.push('\u{0}');
            match k {
                CacheKey::Query(name) => {
                    key.push_str("q:");
                    for (_, v) in query.iter().filter(|(n, _)| n == name) {
                        key.push_str(v);
                        key.push('\u{1}');
                    }
                }
                CacheKey::Header(name) => {
                    key.push_str("h:");
                    for v in req.headers().get_all(name.as_str()) {
                        key.push_str(&String::from_utf8_lossy(v.as_bytes()));
                        key.push('\u{1}');
                    }
                }
                CacheKey::Path(name) => {
                    key.push_str("p:");
                    if let Some((_, v)) = m.params.iter().find(|(n, _)| n == name) {
                        key.push_str(v);
                    }
                }
            }
        }
        let refresh = store.config.client_refresh
            && req
                .headers()
                .get_all(http::header::CACHE_CONTROL)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|d| d.trim().eq_ignore_ascii_case("max-age=0"));
        Some(Plan {
            store,
            key,
            ttl,
            refresh,
        })
    }

    /// Drops a stage's entries (FlushStageCache); false for a stage
    /// without a cache.
    pub fn flush(&self, api: &str, stage: &str) -> bool {
        match self.stores.get(api).and_then(|s| s.get(stage)) {
            Some(store) => {
                store.entries.invalidate_all();
                true
            }
            None => false,
        }
    }

    /// `API/STAGE` of every cached stage.
    pub fn stages(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .stores
            .iter()
            .flat_map(|(api, stages)| stages.keys().map(move |s| format!("{api}/{s}")))
            .collect();
        all.sort();
        all
    }
}

impl Plan<'_> {
    /// A fresh cached answer, if there is one.
    pub(crate) fn lookup(&self) -> Option<Response<Body>> {
        if self.refresh {
            return None;
        }
        let entry = self.store.entries.get(&self.key)?;
        if tokio::time::Instant::now() >= entry.expires {
            self.store.entries.invalidate(&self.key);
            return None;
        }
        let mut resp = Response::new(
            Full::new(entry.body.clone())
                .map_err(|e| match e {})
                .boxed(),
        );
        *resp.status_mut() = entry.status;
        *resp.headers_mut() = entry.headers.clone();
        Some(resp)
    }

    /// Keeps a successful answer of at most `MAX_ITEM` bytes; gives the
    /// answer back either way.
    pub(crate) async fn store(&self, resp: Response<Body>) -> Response<Body> {
        let small = http_body::Body::size_hint(resp.body())
            .exact()
            .is_some_and(|n| n <= MAX_ITEM);
        if !resp.status().is_success() || !small {
            return resp;
        }
        let (parts, body) = resp.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => {
                // The answer broke while it was read: passed on as such.
                let failed =
                    http_body_util::StreamBody::new(futures_util::stream::once(async move {
                        Err::<http_body::Frame<Bytes>, _>(e)
                    }));
                return Response::from_parts(parts, BodyExt::boxed(failed));
            }
        };
        self.store.entries.insert(
            self.key.clone(),
            Arc::new(Entry {
                status: parts.status,
                headers: parts.headers.clone(),
                body: body.clone(),
                expires: tokio::time::Instant::now() + self.ttl,
            }),
        );
        Response::from_parts(parts, Full::new(body).map_err(|e| match e {}).boxed())
    }
}
