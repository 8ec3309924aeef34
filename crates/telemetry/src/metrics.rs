//! The numbers behind `/metrics` and the dashboard, counted in the typed
//! events' `emit()` (one place per event, as the log line).
//!
//! One registry feeds both, written here rather than with `metrics` +
//! `metrics-exporter-prometheus` or `prometheus-client`: the dashboard
//! needs what those libraries keep private (iteration over every series,
//! per-second history for rates and percentiles, the recent requests), and
//! counting each event once in one structure keeps a request's cost to one
//! map lookup (a reused key buffer, no allocation) and a few atomic adds.
//! The Prometheus text format it writes is small and fixed; a test parses
//! it with Prometheus's own Python parser.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, LazyLock, Mutex, RwLock};
// Real time, not tokio's: the history is per wall-clock second, whatever
// a test does with tokio's clock.
#[allow(clippy::disallowed_types)]
use std::time::Instant;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Latency buckets' upper bounds, in seconds.
pub const BUCKETS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Counters are split in shards, one per thread (round robin): a request
/// adds to its thread's own cache line, never to one the other cores are
/// writing (on 2 cores, shared counters cost ~3 µs a request in cache-line
/// traffic; see docs/benchmarks.md); a reader sums the shards.
const SHARDS: usize = 8;

fn shard() -> usize {
    use std::sync::atomic::AtomicUsize;
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static SHARD: usize = NEXT.fetch_add(1, Relaxed) % SHARDS;
    }
    SHARD.with(|s| *s)
}

#[derive(Debug, Default)]
#[repr(align(128))]
struct Cell(AtomicU64);

#[derive(Debug, Default)]
#[repr(align(128))]
struct SignedCell(AtomicI64);

/// A sharded counter, read as one (the `AtomicU64` calls it replaces).
#[derive(Debug, Default)]
pub struct Counter([Cell; SHARDS]);

impl Counter {
    pub fn fetch_add(&self, n: u64, _: std::sync::atomic::Ordering) {
        self.0[shard()].0.fetch_add(n, Relaxed);
    }

    pub fn load(&self, _: std::sync::atomic::Ordering) -> u64 {
        self.0.iter().map(|c| c.0.load(Relaxed)).sum()
    }
}

/// A sharded gauge (up and down).
#[derive(Debug, Default)]
pub struct Gauge([SignedCell; SHARDS]);

impl Gauge {
    pub fn fetch_add(&self, n: i64, _: std::sync::atomic::Ordering) {
        self.0[shard()].0.fetch_add(n, Relaxed);
    }

    pub fn fetch_sub(&self, n: i64, _: std::sync::atomic::Ordering) {
        self.0[shard()].0.fetch_sub(n, Relaxed);
    }

    pub fn load(&self, _: std::sync::atomic::Ordering) -> i64 {
        self.0.iter().map(|c| c.0.load(Relaxed)).sum()
    }
}

#[derive(Debug, Default)]
#[repr(align(128))]
struct HistShard {
    /// One per bound, and +Inf last.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_ns: AtomicU64,
}

/// A latency histogram: cumulative on output, per bucket here; sharded.
#[derive(Debug, Default)]
pub struct Histogram {
    shards: [HistShard; SHARDS],
}

fn bucket_of(d: Duration) -> usize {
    let s = d.as_secs_f64();
    BUCKETS
        .iter()
        .position(|b| s <= *b)
        .unwrap_or(BUCKETS.len())
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let sh = &self.shards[shard()];
        sh.buckets[bucket_of(d)].fetch_add(1, Relaxed);
        sh.count.fetch_add(1, Relaxed);
        sh.sum_ns
            .fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.shards.iter().map(|s| s.count.load(Relaxed)).sum()
    }

    fn sum_ns(&self) -> u64 {
        self.shards.iter().map(|s| s.sum_ns.load(Relaxed)).sum()
    }

    fn buckets(&self) -> [u64; BUCKETS.len() + 1] {
        let mut out = [0; BUCKETS.len() + 1];
        for s in &self.shards {
            for (o, b) in out.iter_mut().zip(&s.buckets) {
                *o += b.load(Relaxed);
            }
        }
        out
    }

    /// The mean, in milliseconds (0 without observations).
    pub fn mean_ms(&self) -> f64 {
        let n = self.count();
        if n == 0 {
            0.0
        } else {
            self.sum_ns() as f64 / n as f64 / 1e6
        }
    }

    /// A quantile's bucket bound, in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let one = Second {
            latency: self.buckets(),
            ..Default::default()
        };
        quantile_ms(std::slice::from_ref(&one), q)
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        let mut acc = 0;
        for (i, b) in self.buckets().iter().enumerate() {
            acc += b;
            let le = BUCKETS.get(i).map_or("+Inf".to_owned(), |v| v.to_string());
            let sep = if labels.is_empty() { "" } else { "," };
            let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {acc}");
        }
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {}", self.sum_ns() as f64 / 1e9);
        let _ = writeln!(out, "{name}_count{braces} {}", self.count());
    }
}

/// One API route of one stage.
#[derive(Debug, Default)]
pub struct RouteStats {
    pub api: String,
    pub stage: String,
    /// The deployment that served (`None`: the working tree, `latest`).
    pub deployment: Option<u32>,
    pub route: String,
    /// `http`, `rest` or `websocket` (for prices).
    pub kind: String,
    /// Answers by class: 1xx..5xx (index 0..4).
    pub by_class: [Counter; 5],
    pub throttled: Counter,
    /// The stage cache's answers (CacheHitCount) and lookups that found
    /// nothing (CacheMissCount).
    pub cache_hits: Counter,
    pub cache_misses: Counter,
    pub latency: Histogram,
    pub integration_latency: Histogram,
}

/// A Prometheus label value, escaped.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl RouteStats {
    /// `api="..",stage="..",deployment="..",route=".."`, for Prometheus.
    fn labels(&self) -> String {
        format!(
            "api=\"{}\",stage=\"{}\",deployment=\"{}\",route=\"{}\"",
            esc(&self.api),
            esc(&self.stage),
            self.deployment
                .map_or_else(|| "latest".to_owned(), |n| n.to_string()),
            esc(&self.route)
        )
    }

    pub fn count(&self) -> u64 {
        self.by_class.iter().map(|c| c.load(Relaxed)).sum()
    }
}

/// One function.
#[derive(Debug, Default)]
pub struct FunctionStats {
    pub name: String,
    pub invocations: Counter,
    pub errors: Mutex<BTreeMap<String, u64>>,
    pub throttles: Counter,
    pub cold_starts: Counter,
    pub duration: Histogram,
    pub init_duration: Histogram,
    pub concurrent: Gauge,
    pub max_memory_mb: AtomicU64,
    /// Billed GB-seconds, in millionths.
    pub gb_us: Counter,
}

impl FunctionStats {
    pub fn error_count(&self) -> u64 {
        self.errors.lock().expect("errors lock").values().sum()
    }

    pub fn gb_seconds(&self) -> f64 {
        self.gb_us.load(Relaxed) as f64 / 1e6
    }
}

/// One WebSocket API stage.
#[derive(Debug, Default)]
pub struct SocketStats {
    pub api: String,
    pub stage: String,
    pub connects: Counter,
    pub messages: Counter,
    pub open: Gauge,
    /// Milliseconds of closed connections.
    pub closed_ms: Counter,
    pub posts: Counter,
    pub gone: Counter,
}

/// One authorizer's results.
#[derive(Debug, Default)]
pub struct AuthorizerStats {
    pub api: String,
    pub name: String,
    /// allow, deny, unauthorized, error, cache_hit.
    pub results: Mutex<BTreeMap<&'static str, u64>>,
}

/// One second of traffic, for rates and recent percentiles.
#[derive(Debug, Clone, Default)]
pub struct Second {
    pub at: u64,
    pub requests: u64,
    pub errors_4xx: u64,
    pub errors_5xx: u64,
    pub latency: [u64; BUCKETS.len() + 1],
    pub invocations: u64,
    pub function_errors: u64,
}

/// A request, as the dashboard's live tail shows it (its route's entry
/// shared, so keeping it costs one allocation: the path).
#[derive(Debug, Clone)]
pub struct Recent {
    pub at_ms: u64,
    pub method: http_method::Method,
    pub path: String,
    pub route: Arc<RouteStats>,
    pub status: u16,
    pub latency_ms: f64,
}

/// An HTTP method, kept without allocating for the usual ones.
pub mod http_method {
    #[derive(Debug, Clone)]
    pub enum Method {
        Known(&'static str),
        Other(String),
    }

    impl Method {
        pub fn new(m: &str) -> Method {
            const KNOWN: [&str; 9] = [
                "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
            ];
            KNOWN
                .iter()
                .find(|k| **k == m)
                .map_or_else(|| Method::Other(m.to_owned()), |k| Method::Known(k))
        }

        pub fn as_str(&self) -> &str {
            match self {
                Method::Known(k) => k,
                Method::Other(o) => o,
            }
        }
    }
}

/// Seconds of history kept; recent requests kept.
const HISTORY: usize = 300;
const RECENT: usize = 100;

/// Every number Stratus keeps about its traffic, since it started.
#[derive(Debug)]
#[allow(clippy::disallowed_types)]
pub struct Registry {
    pub started: Instant,
    pub started_epoch_ms: u64,
    routes: RwLock<HashMap<Box<str>, Arc<RouteStats>>>,
    functions: RwLock<HashMap<Box<str>, Arc<FunctionStats>>>,
    sockets: RwLock<HashMap<Box<str>, Arc<SocketStats>>>,
    authorizers: RwLock<HashMap<Box<str>, Arc<AuthorizerStats>>>,
    /// Per shard (as the counters), merged when read.
    history: [Mutex<VecDeque<Second>>; SHARDS],
    recent: [Mutex<VecDeque<Recent>>; SHARDS],
}

/// The process's registry.
pub fn registry() -> &'static Registry {
    static R: LazyLock<Registry> = LazyLock::new(Registry::new);
    &R
}

fn epoch_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Finds (or makes) the entry for `parts` joined by NUL, looking up with a
/// reused buffer so that a known series costs no allocation.
fn entry<T>(
    map: &RwLock<HashMap<Box<str>, Arc<T>>>,
    parts: &[&str],
    make: impl FnOnce() -> T,
) -> Arc<T> {
    thread_local! {
        static KEY: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    KEY.with(|k| {
        let mut key = k.borrow_mut();
        key.clear();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                key.push('\0');
            }
            key.push_str(p);
        }
        if let Some(found) = map.read().expect("metrics lock").get(key.as_str()) {
            return found.clone();
        }
        map.write()
            .expect("metrics lock")
            .entry(key.as_str().into())
            .or_insert_with(|| Arc::new(make()))
            .clone()
    })
}

impl Registry {
    #[allow(clippy::disallowed_types)]
    fn new() -> Registry {
        Registry {
            started: Instant::now(),
            started_epoch_ms: epoch_ms(),
            routes: RwLock::default(),
            functions: RwLock::default(),
            sockets: RwLock::default(),
            authorizers: RwLock::default(),
            history: Default::default(),
            recent: Default::default(),
        }
    }

    /// The current second's slot in the history.
    fn with_second(&self, f: impl FnOnce(&mut Second)) {
        let now = self.started.elapsed().as_secs();
        let mut h = self.history[shard()].lock().expect("history lock");
        if h.back().is_none_or(|s| s.at != now) {
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(Second {
                at: now,
                ..Default::default()
            });
        }
        f(h.back_mut().expect("a second"));
    }

    /// A route's entry; each thread keeps the ones it used, so the shared
    /// map is read once per route and thread, not per request.
    pub(crate) fn route(
        &self,
        api: &str,
        stage: &str,
        deployment: Option<u32>,
        route: &str,
        kind: &str,
    ) -> Arc<RouteStats> {
        thread_local! {
            static SEEN: RefCell<Vec<Arc<RouteStats>>> = const { RefCell::new(Vec::new()) };
        }
        let found = SEEN.with(|seen| {
            seen.borrow()
                .iter()
                .find(|r| {
                    r.route == route
                        && r.api == api
                        && r.stage == stage
                        && r.deployment == deployment
                })
                .cloned()
        });
        if let Some(r) = found {
            return r;
        }
        let dep = deployment.map_or_else(|| "latest".to_owned(), |n| n.to_string());
        let r = entry(&self.routes, &[api, stage, &dep, route], || RouteStats {
            api: api.to_owned(),
            stage: stage.to_owned(),
            deployment,
            route: route.to_owned(),
            kind: kind.to_owned(),
            ..Default::default()
        });
        SEEN.with(|seen| {
            let mut seen = seen.borrow_mut();
            // A bounded cache: routes are few, but a thread must not grow it forever.
            if seen.len() >= 256 {
                seen.clear();
            }
            seen.push(r.clone());
        });
        r
    }

    pub(crate) fn function(&self, name: &str) -> Arc<FunctionStats> {
        entry(&self.functions, &[name], || FunctionStats {
            name: name.to_owned(),
            ..Default::default()
        })
    }

    pub(crate) fn socket(&self, api: &str, stage: &str) -> Arc<SocketStats> {
        entry(&self.sockets, &[api, stage], || SocketStats {
            api: api.to_owned(),
            stage: stage.to_owned(),
            ..Default::default()
        })
    }

    pub(crate) fn authorizer(&self, api: &str, name: &str) -> Arc<AuthorizerStats> {
        entry(&self.authorizers, &[api, name], || AuthorizerStats {
            api: api.to_owned(),
            name: name.to_owned(),
            ..Default::default()
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn served(
        &self,
        stats: &Arc<RouteStats>,
        method: &str,
        path: &str,
        status: u16,
        latency: Duration,
        integration: Option<Duration>,
        cache: Option<&str>,
    ) {
        let class = usize::from((status / 100).clamp(1, 5) - 1);
        stats.by_class[class].fetch_add(1, Relaxed);
        match cache {
            Some("hit") => stats.cache_hits.fetch_add(1, Relaxed),
            Some(_) => stats.cache_misses.fetch_add(1, Relaxed),
            None => {}
        }
        if status == 429 {
            stats.throttled.fetch_add(1, Relaxed);
        }
        stats.latency.observe(latency);
        if let Some(i) = integration {
            stats.integration_latency.observe(i);
        }
        let bucket = bucket_of(latency);
        self.with_second(|s| {
            s.requests += 1;
            s.latency[bucket] += 1;
            match status {
                400..=499 => s.errors_4xx += 1,
                500.. => s.errors_5xx += 1,
                _ => {}
            }
        });
        let mut recent = self.recent[shard()].lock().expect("recent lock");
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(Recent {
            at_ms: epoch_ms(),
            method: http_method::Method::new(method),
            path: path.to_owned(),
            route: stats.clone(),
            status,
            latency_ms: latency.as_secs_f64() * 1000.0,
        });
    }

    pub(crate) fn invoked(&self, failed: bool) {
        self.with_second(|s| {
            s.invocations += 1;
            if failed {
                s.function_errors += 1;
            }
        });
    }

    pub fn routes(&self) -> Vec<Arc<RouteStats>> {
        sorted(&self.routes)
    }

    pub fn functions(&self) -> Vec<Arc<FunctionStats>> {
        sorted(&self.functions)
    }

    pub fn sockets(&self) -> Vec<Arc<SocketStats>> {
        sorted(&self.sockets)
    }

    pub fn authorizers(&self) -> Vec<Arc<AuthorizerStats>> {
        sorted(&self.authorizers)
    }

    /// The last `n` seconds (oldest first), with empty seconds filled in.
    pub fn history(&self, n: usize) -> Vec<Second> {
        let now = self.started.elapsed().as_secs();
        let mut out: Vec<Second> = (0..n as u64)
            .rev()
            .filter_map(|back| now.checked_sub(back))
            .map(|at| Second {
                at,
                ..Default::default()
            })
            .collect();
        let first = out.first().map_or(0, |s| s.at);
        for shard in &self.history {
            for s in shard.lock().expect("history lock").iter() {
                let Some(slot) =
                    s.at.checked_sub(first)
                        .and_then(|i| out.get_mut(i as usize))
                else {
                    continue;
                };
                slot.requests += s.requests;
                slot.errors_4xx += s.errors_4xx;
                slot.errors_5xx += s.errors_5xx;
                slot.invocations += s.invocations;
                slot.function_errors += s.function_errors;
                for (a, b) in slot.latency.iter_mut().zip(s.latency) {
                    *a += b;
                }
            }
        }
        out
    }

    /// Newest first.
    pub fn recent(&self) -> Vec<Recent> {
        let mut all: Vec<Recent> = self
            .recent
            .iter()
            .flat_map(|r| {
                r.lock()
                    .expect("recent lock")
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .collect();
        all.sort_by_key(|r| std::cmp::Reverse(r.at_ms));
        all.truncate(RECENT);
        all
    }

    /// Everything, in the Prometheus text format (0.0.4).
    pub fn prometheus(&self) -> String {
        let mut out = String::with_capacity(8192);
        let routes = self.routes();
        head(
            &mut out,
            "stratus_api_requests_total",
            "counter",
            "Requests answered, by API, stage, route and status class.",
        );
        for r in &routes {
            for (i, c) in r.by_class.iter().enumerate() {
                let n = c.load(Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "stratus_api_requests_total{{{},class=\"{}xx\"}} {n}",
                        r.labels(),
                        i + 1
                    );
                }
            }
        }
        head(
            &mut out,
            "stratus_api_throttled_total",
            "counter",
            "Requests refused with 429.",
        );
        for r in &routes {
            let _ = writeln!(
                out,
                "stratus_api_throttled_total{{{}}} {}",
                r.labels(),
                r.throttled.load(Relaxed)
            );
        }
        for (name, help, pick) in [
            (
                "stratus_api_cache_hits_total",
                "Answers from the stage cache (CacheHitCount).",
                (|r: &RouteStats| r.cache_hits.load(Relaxed)) as fn(&RouteStats) -> u64,
            ),
            (
                "stratus_api_cache_misses_total",
                "Stage cache lookups that found nothing (CacheMissCount).",
                |r: &RouteStats| r.cache_misses.load(Relaxed),
            ),
        ] {
            head(&mut out, name, "counter", help);
            for r in &routes {
                let _ = writeln!(out, "{name}{{{}}} {}", r.labels(), pick(r));
            }
        }
        head(
            &mut out,
            "stratus_api_latency_seconds",
            "histogram",
            "Time from request to answer.",
        );
        for r in &routes {
            let labels = r.labels();
            r.latency
                .write(&mut out, "stratus_api_latency_seconds", &labels);
        }
        head(
            &mut out,
            "stratus_api_integration_latency_seconds",
            "histogram",
            "Time the integration (upstream or function) took.",
        );
        for r in routes.iter().filter(|r| r.integration_latency.count() > 0) {
            let labels = r.labels();
            r.integration_latency.write(
                &mut out,
                "stratus_api_integration_latency_seconds",
                &labels,
            );
        }

        let functions = self.functions();
        let simple: [Column<FunctionStats, String>; 6] = [
            (
                "stratus_function_invocations_total",
                "counter",
                "Function invocations.",
                |f| f.invocations.load(Relaxed).to_string(),
            ),
            (
                "stratus_function_throttles_total",
                "counter",
                "Invocations refused at the function's concurrency.",
                |f| f.throttles.load(Relaxed).to_string(),
            ),
            (
                "stratus_function_cold_starts_total",
                "counter",
                "Invocations that started an environment.",
                |f| f.cold_starts.load(Relaxed).to_string(),
            ),
            (
                "stratus_function_concurrent_executions",
                "gauge",
                "Invocations running now.",
                |f| f.concurrent.load(Relaxed).to_string(),
            ),
            (
                "stratus_function_max_memory_used_bytes",
                "gauge",
                "The largest resident memory an invocation reached.",
                |f| (f.max_memory_mb.load(Relaxed) * 1024 * 1024).to_string(),
            ),
            (
                "stratus_function_gb_seconds_total",
                "counter",
                "Billed GB-seconds (1 ms billing).",
                |f| f.gb_seconds().to_string(),
            ),
        ];
        for (name, kind, help, value) in simple {
            head(&mut out, name, kind, help);
            for f in &functions {
                let _ = writeln!(out, "{name}{{function=\"{}\"}} {}", esc(&f.name), value(f));
            }
        }
        head(
            &mut out,
            "stratus_function_errors_total",
            "counter",
            "Failed invocations, by error type.",
        );
        for f in &functions {
            for (t, n) in f.errors.lock().expect("errors lock").iter() {
                let _ = writeln!(
                    out,
                    "stratus_function_errors_total{{function=\"{}\",error_type=\"{}\"}} {n}",
                    esc(&f.name),
                    esc(t)
                );
            }
        }
        head(
            &mut out,
            "stratus_function_duration_seconds",
            "histogram",
            "Invocation duration.",
        );
        for f in &functions {
            f.duration.write(
                &mut out,
                "stratus_function_duration_seconds",
                &format!("function=\"{}\"", esc(&f.name)),
            );
        }
        head(
            &mut out,
            "stratus_function_init_duration_seconds",
            "histogram",
            "Environment start (cold start) duration.",
        );
        for f in functions.iter().filter(|f| f.init_duration.count() > 0) {
            f.init_duration.write(
                &mut out,
                "stratus_function_init_duration_seconds",
                &format!("function=\"{}\"", esc(&f.name)),
            );
        }

        let sockets = self.sockets();
        let ws: [Column<SocketStats, i64>; 5] = [
            (
                "stratus_websocket_connects_total",
                "counter",
                "Connections accepted.",
                |s| s.connects.load(Relaxed) as i64,
            ),
            (
                "stratus_websocket_messages_total",
                "counter",
                "Messages received.",
                |s| s.messages.load(Relaxed) as i64,
            ),
            (
                "stratus_websocket_open_connections",
                "gauge",
                "Connections open now.",
                |s| s.open.load(Relaxed),
            ),
            (
                "stratus_websocket_posts_total",
                "counter",
                "@connections posts delivered.",
                |s| s.posts.load(Relaxed) as i64,
            ),
            (
                "stratus_websocket_gone_total",
                "counter",
                "@connections calls answered 410 Gone.",
                |s| s.gone.load(Relaxed) as i64,
            ),
        ];
        for (name, kind, help, value) in ws {
            head(&mut out, name, kind, help);
            for s in &sockets {
                let _ = writeln!(
                    out,
                    "{name}{{api=\"{}\",stage=\"{}\"}} {}",
                    esc(&s.api),
                    esc(&s.stage),
                    value(s)
                );
            }
        }
        head(
            &mut out,
            "stratus_authorizer_results_total",
            "counter",
            "Authorizer decisions: allow, deny, unauthorized, error, cache_hit.",
        );
        for a in self.authorizers() {
            for (result, n) in a.results.lock().expect("results lock").iter() {
                let _ = writeln!(
                    out,
                    "stratus_authorizer_results_total{{api=\"{}\",authorizer=\"{}\",result=\"{result}\"}} {n}",
                    esc(&a.api),
                    esc(&a.name)
                );
            }
        }
        out
    }
}

/// A simple series: name, type, help, and its value for one entry.
type Column<T, V> = (&'static str, &'static str, &'static str, fn(&T) -> V);

fn head(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sorted<T>(map: &RwLock<HashMap<Box<str>, Arc<T>>>) -> Vec<Arc<T>> {
    let m = map.read().expect("metrics lock");
    let mut keys: Vec<&Box<str>> = m.keys().collect();
    keys.sort();
    keys.into_iter().map(|k| m[k].clone()).collect()
}

/// A quantile (0..1) of the latencies in `seconds`: the upper bound of the
/// bucket it falls in, in milliseconds (None without requests).
pub fn quantile_ms(seconds: &[Second], q: f64) -> Option<f64> {
    let mut counts = [0u64; BUCKETS.len() + 1];
    for s in seconds {
        for (c, n) in counts.iter_mut().zip(s.latency) {
            *c += n;
        }
    }
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((total as f64) * q).ceil().max(1.0) as u64;
    let mut acc = 0;
    for (i, n) in counts.iter().enumerate() {
        acc += n;
        if acc >= rank {
            return Some(BUCKETS.get(i).map_or(60_000.0, |b| b * 1000.0));
        }
    }
    None
}
