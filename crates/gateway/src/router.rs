//! The route table: which API, stage and route a request path belongs to.
//!
//! Built once from an `App` and never mutated; a reload builds a new one.
//!
//! Written by hand rather than with `matchit` because API Gateway's rules
//! differ from matchit's: a `{param}` and a greedy `{proxy+}` may sit at the
//! same level (matchit rejects that as a conflict), and when the most
//! specific path has no route for the request's method, matching falls back
//! to less specific paths and finally to `$default`. The trie below walks
//! static segments first, then parameters, then greedy parameters, which is
//! exactly AWS's priority.

use std::collections::HashMap;
use std::sync::Arc;

use stratus_config::{Api, ApiKind, App, Method, PathPattern, Route, RouteKey, Segment, Stage};

/// One routable API stage, mounted at a path prefix.
#[derive(Debug)]
struct Mount {
    prefix: String,
    api: usize,
    stage: usize,
}

#[derive(Debug)]
pub(crate) struct RouteTable {
    apis: Vec<ApiTable>,
    /// The listener's paths. Longest prefix first, so the most specific
    /// mount wins.
    mounts: Vec<Mount>,
    /// By API id: the stages at the API's own host
    /// (`{id}.execute-api.localhost`), at `/{stage}` (`$default` at `/`).
    hosts: HashMap<String, Vec<Mount>>,
}

/// Where a stage is served at its API's own host.
pub(crate) fn host_mount(stage: &Stage) -> String {
    stratus_config::stage_mount("/", &stage.name)
}

/// The API id a request's `Host` names: `ID` of
/// `ID.execute-api.localhost[:port]` (or of any `ID.execute-api.…` host, as
/// AWS's own are), or a function URL's `ID.lambda-url.…`, lower-cased.
/// Allocates only for such a host.
pub(crate) fn host_api_id(host: Option<&str>) -> Option<String> {
    let (id, rest) = host?.split_once('.')?;
    let named = |label: &str| {
        rest.get(..label.len())
            .is_some_and(|r| r.eq_ignore_ascii_case(label))
    };
    let named = named("execute-api.") || named("lambda-url.");
    (named && !id.is_empty()).then(|| id.to_ascii_lowercase())
}

#[derive(Debug)]
struct ApiTable {
    api: Arc<Api>,
    root: Node,
    default_route: Option<usize>,
}

/// Route indexes by method; `Method::Any` is the fallback slot.
#[derive(Debug, Default)]
struct Methods([Option<usize>; Method::ALL.len()]);

impl Methods {
    fn insert(&mut self, m: Method, route: usize) {
        self.0[m as usize] = Some(route);
    }

    fn get(&self, m: Option<Method>) -> Option<usize> {
        m.and_then(|m| self.0[m as usize])
            .or(self.0[Method::Any as usize])
    }
}

#[derive(Debug, Default)]
struct Node {
    statics: HashMap<String, Node>,
    param: Option<Box<Node>>,
    greedy: Methods,
    here: Methods,
}

impl Node {
    fn insert(&mut self, segments: &[Segment], method: Method, route: usize) {
        match segments.split_first() {
            None => self.here.insert(method, route),
            Some((Segment::Static(s), rest)) => self
                .statics
                .entry(s.clone())
                .or_default()
                .insert(rest, method, route),
            Some((Segment::Param(_), rest)) => self
                .param
                .get_or_insert_with(Default::default)
                .insert(rest, method, route),
            Some((Segment::Greedy(_), _)) => self.greedy.insert(method, route),
        }
    }

    fn find(&self, segments: &[&str], method: Option<Method>) -> Option<usize> {
        let Some((first, rest)) = segments.split_first() else {
            return self.here.get(method);
        };
        if let Some(found) = self.statics.get(*first).and_then(|n| n.find(rest, method)) {
            return Some(found);
        }
        if let Some(found) = self
            .param
            .as_ref()
            .filter(|_| !first.is_empty())
            .and_then(|n| n.find(rest, method))
        {
            return Some(found);
        }
        self.greedy.get(method)
    }
}

/// What a request path resolved to.
#[derive(Debug)]
pub(crate) enum Lookup<'a> {
    Found(Matched<'a>),
    /// The path is under an API stage, but no route matches.
    NoRoute {
        api: &'a Arc<Api>,
        stage: &'a Stage,
    },
    /// The path is under no API at all.
    NoApi,
}

#[derive(Debug)]
pub(crate) struct Matched<'a> {
    pub(crate) api: &'a Arc<Api>,
    pub(crate) stage: &'a Stage,
    pub(crate) route: &'a Route,
    /// Path parameters, raw (still percent-encoded), in route order.
    pub(crate) params: Vec<(&'a str, String)>,
    /// The path below the stage mount, e.g. `/items/1`.
    pub(crate) path: String,
}

impl RouteTable {
    pub(crate) fn new(app: &App) -> RouteTable {
        let mut apis = Vec::new();
        let mut mounts = Vec::new();
        let mut hosts: HashMap<String, Vec<Mount>> = HashMap::new();
        // WebSocket APIs are served by the WebSocket upgrade path, not here.
        for api in app.apis.iter().filter(|a| a.kind != ApiKind::WebSocket) {
            let mut root = Node::default();
            let mut default_route = None;
            for (i, r) in api.routes.iter().enumerate() {
                match &r.key {
                    RouteKey::Http { method, path } => root.insert(&path.segments, *method, i),
                    RouteKey::Default => default_route = Some(i),
                    RouteKey::WebSocket(_) => {}
                }
            }
            for (s, stage) in api.stages.iter().enumerate() {
                if !api.host_only {
                    mounts.push(Mount {
                        prefix: stage.mount.clone(),
                        api: apis.len(),
                        stage: s,
                    });
                }
                hosts.entry(api.id.clone()).or_default().push(Mount {
                    prefix: host_mount(stage),
                    api: apis.len(),
                    stage: s,
                });
            }
            apis.push(ApiTable {
                api: api.clone(),
                root,
                default_route,
            });
        }
        mounts.sort_by_key(|m| std::cmp::Reverse(m.prefix.len()));
        for m in hosts.values_mut() {
            m.sort_by_key(|m| std::cmp::Reverse(m.prefix.len()));
        }
        RouteTable {
            apis,
            mounts,
            hosts,
        }
    }

    /// The mounts a request is matched against: at an API's own host
    /// (`host_api`, an id the gateway serves) that API's alone (none when
    /// it is a WebSocket API's), else the listener's paths.
    fn mounts(&self, host_api: Option<&str>) -> &[Mount] {
        match host_api {
            Some(id) => self.hosts.get(id).map_or(&[], Vec::as_slice),
            None => &self.mounts,
        }
    }

    /// Whether `id` is one of this table's APIs'.
    pub(crate) fn serves_host(&self, id: &str) -> bool {
        self.hosts.contains_key(id)
    }

    /// The length of the longest API stage mount `path` is under.
    pub(crate) fn mount_len(&self, path: &str) -> Option<usize> {
        self.mounts
            .iter()
            .find(|m| strip_mount(path, &m.prefix).is_some())
            .map(|m| m.prefix.len())
    }

    /// The API, stage and route of `method path`, at the API's own host
    /// when `host_api` names one (`host_api_id`).
    pub(crate) fn lookup(
        &self,
        method: &http::Method,
        host_api: Option<&str>,
        path: &str,
    ) -> Lookup<'_> {
        let mounts = self.mounts(host_api);
        let Some((mount, rest)) = mounts
            .iter()
            .find_map(|m| strip_mount(path, &m.prefix).map(|rest| (m, rest)))
        else {
            // At an API's own host, a path under none of its stages is
            // that API's answer to a path with no route.
            return match (host_api, mounts.first()) {
                (Some(_), Some(m)) => {
                    let api = &self.apis[m.api].api;
                    Lookup::NoRoute {
                        api,
                        stage: &api.stages[m.stage],
                    }
                }
                _ => Lookup::NoApi,
            };
        };
        let table = &self.apis[mount.api];
        let api = &table.api;
        let stage = &api.stages[mount.stage];
        let rest = if rest.is_empty() { "/" } else { rest };
        let mut segments: Vec<&str> = rest[1..].split('/').collect();
        // `/items/` is `/items`; `/` has no segments.
        if segments.last() == Some(&"") {
            segments.pop();
        }
        let method = Method::parse(method.as_str());
        let Some(i) = table.root.find(&segments, method).or(table.default_route) else {
            return Lookup::NoRoute { api, stage };
        };
        let route = &api.routes[i];
        let params = match &route.key {
            RouteKey::Http { path, .. } => extract_params(path, &segments),
            _ => Vec::new(),
        };
        Lookup::Found(Matched {
            api,
            stage,
            route,
            params,
            path: rest.to_owned(),
        })
    }
}

/// `Some(rest)` when `path` is `prefix` or below it at a segment boundary.
fn strip_mount<'p>(path: &'p str, prefix: &str) -> Option<&'p str> {
    if prefix == "/" {
        return Some(path);
    }
    let rest = path.strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with('/')).then_some(rest)
}

fn extract_params<'a>(pattern: &'a PathPattern, segments: &[&str]) -> Vec<(&'a str, String)> {
    let mut out = Vec::new();
    for (i, seg) in pattern.segments.iter().enumerate() {
        match seg {
            Segment::Static(_) => {}
            Segment::Param(name) => out.push((name.as_str(), segments[i].to_owned())),
            Segment::Greedy(name) => out.push((name.as_str(), segments[i..].join("/"))),
        }
    }
    out
}
