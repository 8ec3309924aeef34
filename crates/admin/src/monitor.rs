//! Monitoring on the admin listener: the dashboard (`/`, one page and its
//! assets embedded in the binary, uPlot vendored: no CDN, no build step),
//! its data (`/stratus/dashboard.json`, and `/stratus/dashboard/stream`,
//! the same every second as server-sent events: one snapshot a tick for
//! all streams, see [`DashboardFeed`]), Prometheus metrics
//! (`/metrics`) and the function log store (`/stratus/logs`, what
//! `stratus logs` reads). All of it from `stratus_telemetry`'s registry
//! and log store, which the typed events fill.
//!
//! Access: like every admin API, open on loopback when no credentials are
//! configured; with `[server.credentials]`, a browser or Prometheus gives
//! them as HTTP Basic (user: the access key id, password: the secret), or
//! a client signs with SigV4.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::{Relaxed, SeqCst};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use stratus_telemetry::logstore::{self, Query as LogQuery};
use stratus_telemetry::metrics::{self, registry};
use tokio::sync::{watch, Semaphore};

use crate::AdminState;

const INDEX_HTML: &str = include_str!("../assets/index.html");
const DASHBOARD_JS: &str = include_str!("../assets/dashboard.js");
const DASHBOARD_CSS: &str = include_str!("../assets/dashboard.css");
const UPLOT_JS: &str = include_str!("../assets/vendor/uplot/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../assets/vendor/uplot/uPlot.min.css");

pub(crate) fn router() -> axum::Router<AdminState> {
    axum::Router::new()
        // `POST /` is CloudFormation's query protocol.
        .route("/", get(index).post(crate::cloudformation::dispatch))
        .route("/assets/{file}", get(asset))
        .route("/metrics", get(prometheus))
        .route("/stratus/dashboard.json", get(snapshot_json))
        .route("/stratus/dashboard/stream", get(stream))
        .route("/stratus/logs", get(logs))
}

/// The one access rule (module comment).
fn allowed(
    s: &AdminState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(), Box<Response>> {
    if !s.verify_signatures {
        return Ok(());
    }
    let basic = stratus_gateway::header_str(headers, "authorization")
        .and_then(|a| a.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok());
    if let Some(pair) = basic {
        let expected = format!(
            "{}:{}",
            s.credentials.access_key_id, s.credentials.secret_access_key
        );
        if crate::sigv4::constant_time_eq(pair.as_bytes(), expected.as_bytes()) {
            return Ok(());
        }
    } else if crate::sigv4::authorize(s, "execute-api", method, uri, headers, b"").is_ok()
        && stratus_gateway::header_str(headers, "authorization").is_some()
    {
        return Ok(());
    }
    let mut resp = (StatusCode::UNAUTHORIZED, "credentials required\n").into_response();
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"stratus\""),
    );
    Err(Box::new(resp))
}

macro_rules! guard {
    ($s:expr, $m:expr, $u:expr, $h:expr) => {
        if let Err(r) = allowed(&$s, &$m, &$u, &$h) {
            return *r;
        }
    };
}

async fn index(State(s): State<AdminState>, m: Method, u: Uri, h: HeaderMap) -> Response {
    guard!(s, m, u, h);
    // The first snapshot comes with the page (drawn at once, no request
    // after load); `</` escaped so no string in it can end the script.
    let first = snapshot(&s).to_string().replace("</", "<\\/");
    let page = INDEX_HTML.replacen(
        "window.STRATUS_SNAPSHOT = null;",
        &format!("window.STRATUS_SNAPSHOT = {first};"),
        1,
    );
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page,
    )
        .into_response()
}

async fn asset(Path(file): Path<String>) -> Response {
    let (body, ty) = match file.as_str() {
        "dashboard.js" => (DASHBOARD_JS, "text/javascript; charset=utf-8"),
        "dashboard.css" => (DASHBOARD_CSS, "text/css; charset=utf-8"),
        "uPlot.iife.min.js" => (UPLOT_JS, "text/javascript; charset=utf-8"),
        "uPlot.min.css" => (UPLOT_CSS, "text/css; charset=utf-8"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ty),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

async fn prometheus(State(s): State<AdminState>, m: Method, u: Uri, h: HeaderMap) -> Response {
    guard!(s, m, u, h);
    let mut text = registry().prometheus();
    // Environments, read from the runtime as the scrape happens.
    text.push_str("# HELP stratus_function_environments Execution environments, by state.\n");
    text.push_str("# TYPE stratus_function_environments gauge\n");
    for name in s.app().functions.keys() {
        if let Some((live, idle)) = s.functions.environments(name) {
            text.push_str(&format!(
                "stratus_function_environments{{function=\"{name}\",state=\"idle\"}} {idle}\n\
                 stratus_function_environments{{function=\"{name}\",state=\"busy\"}} {}\n",
                live.saturating_sub(idle)
            ));
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn snapshot_json(State(s): State<AdminState>, m: Method, u: Uri, h: HeaderMap) -> Response {
    guard!(s, m, u, h);
    axum::Json(snapshot(&s)).into_response()
}

/// The dashboard streams' data: one task builds the snapshot once a
/// second while any stream is open and publishes it, numbered, on a watch
/// channel; every stream sends that same text. A stream whose reader is
/// slow skips ticks (the channel holds only the latest: nothing queues
/// per reader), and at most `server.dashboard_streams` are open at once
/// (past it 503), so streams cost the server one snapshot a second
/// however many are open.
pub struct DashboardFeed {
    latest: watch::Sender<(u64, Arc<str>)>,
    streams: Arc<Semaphore>,
    /// The task that builds snapshots is running.
    running: AtomicBool,
}

impl DashboardFeed {
    pub fn new(max_streams: usize) -> DashboardFeed {
        DashboardFeed {
            latest: watch::Sender::new((0, Arc::from(""))),
            streams: Arc::new(Semaphore::new(max_streams)),
            running: AtomicBool::new(false),
        }
    }

    /// A receiver of the snapshots, the task started if it was not.
    fn subscribe(s: &AdminState) -> watch::Receiver<(u64, Arc<str>)> {
        let feed = s.dashboard.clone();
        let mut rx = feed.latest.subscribe();
        if rx.borrow().0 > 0 {
            rx.mark_changed();
        }
        if !feed.running.swap(true, SeqCst) {
            let s = s.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                let mut n = feed.latest.borrow().0;
                loop {
                    tick.tick().await;
                    if feed.latest.receiver_count() == 0 {
                        feed.running.store(false, SeqCst);
                        // A stream that subscribed meanwhile either saw the
                        // task running or starts one: only one goes on.
                        if feed.latest.receiver_count() == 0 || feed.running.swap(true, SeqCst) {
                            break;
                        }
                    }
                    n += 1;
                    let text: Arc<str> = Arc::from(snapshot(&s).to_string());
                    feed.latest.send_replace((n, text));
                }
            });
        }
        rx
    }
}

async fn stream(State(s): State<AdminState>, m: Method, u: Uri, h: HeaderMap) -> Response {
    guard!(s, m, u, h);
    let Ok(permit) = s.dashboard.streams.clone().try_acquire_owned() else {
        let max = s.app().server.dashboard_streams;
        return crate::error::apigw_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "TooManyStreams",
            &format!("{max} dashboard streams are open, the most (server.dashboard_streams): close one, or read /stratus/dashboard.json"),
        );
    };
    let rx = DashboardFeed::subscribe(&s);
    let ticks = futures_util::stream::unfold((rx, permit), |(mut rx, permit)| async move {
        rx.changed().await.ok()?;
        let (n, text) = rx.borrow_and_update().clone();
        let ev = Event::default().id(n.to_string()).data(&*text);
        Some((Ok::<_, Infallible>(ev), (rx, permit)))
    });
    Sse::new(ticks)
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Everything the dashboard shows, at this moment.
pub(crate) fn snapshot(s: &AdminState) -> Value {
    let reg = registry();
    let uptime = reg.started.elapsed().as_secs_f64().max(1.0);
    let p = &s.app().pricing;
    let history = reg.history(120);
    let last = |n: usize| &history[history.len().saturating_sub(n)..];
    let rps = last(11)[..last(11).len().saturating_sub(1)]
        .iter()
        .map(|x| x.requests)
        .sum::<u64>() as f64
        / 10.0;

    let mut total = (0u64, 0u64, 0u64);
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    let mut api_cost: BTreeMap<String, f64> = BTreeMap::new();
    let routes: Vec<Value> = reg
        .routes()
        .iter()
        .filter(|r| !r.api.is_empty())
        .map(|r| {
            let count = r.count();
            let e4 = r.by_class[3].load(Relaxed);
            let e5 = r.by_class[4].load(Relaxed);
            total.0 += count;
            total.1 += e4;
            total.2 += e5;
            *by_kind.entry(r.kind.clone()).or_default() += count;
            let price = match r.kind.as_str() {
                "rest" => p.rest_requests_per_million,
                "http" => p.http_requests_per_million,
                _ => 0.0,
            };
            *api_cost.entry(r.api.clone()).or_default() += count as f64 * price / 1e6;
            json!({
                "api": r.api, "stage": r.stage, "route": r.route, "kind": r.kind,
                "deployment": r.deployment.map_or_else(|| "latest".to_owned(), |n| n.to_string()),
                "count": count, "errors4xx": e4, "errors5xx": e5,
                "throttled": r.throttled.load(Relaxed),
                "avgMs": round2(r.latency.mean_ms()),
                "p50Ms": r.latency.quantile_ms(0.5),
                "p99Ms": r.latency.quantile_ms(0.99),
            })
        })
        .collect();
    let sockets: Vec<Value> = reg
        .sockets()
        .iter()
        .map(|w| {
            let messages = w.messages.load(Relaxed);
            let minutes = w.closed_ms.load(Relaxed) as f64 / 60_000.0;
            *api_cost.entry(w.api.clone()).or_default() +=
                messages as f64 * p.websocket_messages_per_million / 1e6
                    + minutes * p.websocket_connection_minutes_per_million / 1e6;
            json!({
                "api": w.api, "stage": w.stage,
                "connects": w.connects.load(Relaxed), "messages": messages,
                "open": w.open.load(Relaxed), "posts": w.posts.load(Relaxed),
                "gone": w.gone.load(Relaxed), "connectionMinutes": round2(minutes),
            })
        })
        .collect();
    let mut lambda_cost = 0.0;
    let functions: Vec<Value> = reg
        .functions()
        .iter()
        .map(|f| {
            let invocations = f.invocations.load(Relaxed);
            let cost = invocations as f64 * p.lambda_requests_per_million / 1e6
                + f.gb_seconds() * p.lambda_gb_second;
            lambda_cost += cost;
            let (live, idle) = s.functions.environments(&f.name).unwrap_or((0, 0));
            json!({
                "name": f.name, "invocations": invocations, "errors": f.error_count(),
                "throttles": f.throttles.load(Relaxed), "coldStarts": f.cold_starts.load(Relaxed),
                "concurrent": f.concurrent.load(Relaxed),
                "avgMs": round2(f.duration.mean_ms()), "p99Ms": f.duration.quantile_ms(0.99),
                "maxMemoryMb": f.max_memory_mb.load(Relaxed),
                "gbSeconds": f.gb_seconds(), "cost": cost,
                "environments": { "live": live, "idle": idle, "busy": live.saturating_sub(idle) },
            })
        })
        .collect();
    let api_total: f64 = api_cost.values().sum();
    let session = lambda_cost + api_total;
    let series: Vec<Value> = history
        .iter()
        .map(|x| {
            json!({
                "t": reg.started_epoch_ms / 1000 + x.at,
                "requests": x.requests, "errors4xx": x.errors_4xx, "errors5xx": x.errors_5xx,
                "p50Ms": metrics::quantile_ms(std::slice::from_ref(x), 0.5),
                "p99Ms": metrics::quantile_ms(std::slice::from_ref(x), 0.99),
                "invocations": x.invocations,
            })
        })
        .collect();
    let recent: Vec<Value> = reg
        .recent()
        .iter()
        .take(50)
        .map(|r| {
            json!({
                "at": r.at_ms, "method": r.method.as_str(), "path": r.path,
                "api": r.route.api, "route": r.route.route, "status": r.status, "latencyMs": round2(r.latency_ms),
            })
        })
        .collect();
    let logs: Vec<Value> = logstore::store()
        .query(&LogQuery {
            limit: 100,
            ..Default::default()
        })
        .into_iter()
        .map(log_json)
        .collect();
    let authorizers: Vec<Value> = reg
        .authorizers()
        .iter()
        .map(|a| json!({ "api": a.api, "name": a.name, "results": *a.results.lock().expect("results lock") }))
        .collect();
    let route_table: Vec<Value> = s
        .app()
        .route_rows()
        .into_iter()
        .map(|r| {
            json!({
                "api": r.api, "stage": r.stage, "deployment": r.deployment, "method": r.method, "path": r.path,
                "integration": r.integration, "throttle": r.throttle,
                "authorizer": r.authorizer, "apiKey": r.api_key,
            })
        })
        .collect();
    let databases: Vec<Value> = s
        .databases
        .all
        .iter()
        .map(|d| {
            let (open, idle, transactions) = d.pool_use();
            json!({
                "name": d.name, "engine": d.engine, "arn": d.arn,
                "migrations": d.migrations(),
                "pool": { "open": open, "idle": idle, "transactions": transactions },
                "statements": d.statements.load(Relaxed), "errors": d.errors.load(Relaxed),
            })
        })
        .collect();
    json!({
        "uptimeSeconds": uptime.round(),
        "totals": {
            "requests": total.0, "errors4xx": total.1, "errors5xx": total.2,
            "requestsPerSecond": rps,
            "p50Ms": metrics::quantile_ms(last(60), 0.5),
            "p99Ms": metrics::quantile_ms(last(60), 0.99),
            "byKind": by_kind,
        },
        "series": series,
        "routes": routes,
        "functions": functions,
        "websockets": sockets,
        "authorizers": authorizers,
        "databases": databases,
        "recent": recent,
        "logs": logs,
        "routeTable": route_table,
        "cost": {
            "session": session,
            "lambda": lambda_cost,
            "apis": api_cost,
            // At the rate seen so far, for 30 days.
            "perMonth": session / uptime * 30.0 * 86_400.0,
            "prices": {
                "lambdaRequestsPerMillion": p.lambda_requests_per_million,
                "lambdaGbSecond": p.lambda_gb_second,
                "restRequestsPerMillion": p.rest_requests_per_million,
                "httpRequestsPerMillion": p.http_requests_per_million,
                "websocketMessagesPerMillion": p.websocket_messages_per_million,
                "websocketConnectionMinutesPerMillion": p.websocket_connection_minutes_per_million,
            },
        },
    })
}

fn log_json(r: logstore::LogRecord) -> Value {
    json!({
        "seq": r.seq, "at": r.at_ms, "function": r.function,
        "requestId": r.request_id, "line": r.line,
    })
}

#[derive(Deserialize)]
struct LogsQuery {
    function: Option<String>,
    request_id: Option<String>,
    filter: Option<String>,
    /// Epoch milliseconds.
    since: Option<u64>,
    after: Option<u64>,
    limit: Option<usize>,
}

async fn logs(
    State(s): State<AdminState>,
    Query(q): Query<LogsQuery>,
    m: Method,
    u: Uri,
    h: HeaderMap,
) -> Response {
    guard!(s, m, u, h);
    if let Some(f) = &q.function {
        if !s.app().functions.contains_key(f) {
            let app = s.app();
            let known: Vec<&str> = app.functions.keys().map(String::as_str).collect();
            return crate::error::apigw_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFoundException",
                &format!("no function {f:?} (functions: {})", known.join(", ")),
            );
        }
    }
    let store = logstore::store();
    let last = store.last_seq();
    let items: Vec<Value> = store
        .query(&LogQuery {
            function: q.function,
            request_id: q.request_id,
            contains: q.filter,
            since_ms: q.since,
            after: q.after,
            limit: q.limit.unwrap_or(1000).min(10_000),
        })
        .into_iter()
        .map(log_json)
        .collect();
    axum::Json(json!({ "items": items, "last": last })).into_response()
}
