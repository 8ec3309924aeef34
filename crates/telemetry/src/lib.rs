//! Telemetry as typed events. Each thing worth knowing ("request served",
//! "invocation finished", "WebSocket closed", ...) is a struct whose
//! `emit()` is the only place that logs it, so the monitoring work adds
//! counting in exactly one place per event, and a log line's shape is
//! defined once.
//!
//! This crate must never decide anything: it receives facts and reports
//! them.

pub mod access_log;
pub mod logstore;
pub mod metrics;

use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use metrics::registry;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A request the gateway answered (the access log).
#[derive(Debug)]
pub struct RequestServed<'a> {
    pub request_id: &'a str,
    /// `http`, `rest`, `websocket`, or "" when no API matched.
    pub kind: &'a str,
    pub api: &'a str,
    pub stage: &'a str,
    pub route: &'a str,
    pub method: &'a str,
    pub path: &'a str,
    pub source_ip: IpAddr,
    pub status: u16,
    pub latency: Duration,
    pub integration_latency: Option<Duration>,
    pub api_key: Option<&'a str>,
    pub principal: Option<&'a str>,
    pub authorizer: Option<String>,
    /// `"hit"` or `"miss"` when the stage cache was consulted.
    pub cache: Option<&'a str>,
    pub error: Option<&'a str>,
    /// The deployment that served (`None`: the working tree).
    pub deployment: Option<u32>,
}

/// Milliseconds rounded to hundredths, as a number (JSON logs get a
/// number, text logs `0.25`).
fn ms2(d: Duration) -> f64 {
    (ms(d) * 100.0).round() / 100.0
}

impl RequestServed<'_> {
    /// One access line: at INFO, or at WARN for a 5xx (an integration or
    /// the gateway failed), so that `STRATUS_LOG=warn` keeps failures.
    /// Counted per route (`metrics`); a WebSocket upgrade (101) also
    /// counts a connection.
    pub fn emit(&self) {
        let reg = registry();
        let stats = reg.route(self.api, self.stage, self.deployment, self.route, self.kind);
        reg.served(
            &stats,
            self.method,
            self.path,
            self.status,
            self.latency,
            self.integration_latency,
            self.cache,
        );
        if self.status == 101 {
            let s = reg.socket(self.api, self.stage);
            s.connects.fetch_add(1, Relaxed);
            s.open.fetch_add(1, Relaxed);
        }
        macro_rules! line {
            ($level:ident) => {
                tracing::$level!(
                    target: "stratus::access",
                    request_id = self.request_id,
                    api = self.api,
                    stage = self.stage,
                    route = self.route,
                    method = self.method,
                    path = self.path,
                    source_ip = %self.source_ip,
                    status = self.status,
                    latency_ms = ms2(self.latency),
                    integration_latency_ms = self.integration_latency.map(ms2),
                    api_key = self.api_key,
                    principal = self.principal,
                    authorizer = self.authorizer,
                    cache = self.cache,
                    error = self.error,
                    "{} {} {}",
                    self.method,
                    self.path,
                    self.status,
                )
            };
        }
        if self.status >= 500 {
            line!(warn);
        } else {
            line!(info);
        }
    }
}

/// A WebSocket connection ended (after its `$disconnect`).
#[derive(Debug)]
pub struct WebSocketClosed<'a> {
    pub connection_id: &'a str,
    pub api: &'a str,
    pub stage: &'a str,
    pub code: u16,
    pub reason: &'a str,
    /// How long it was open.
    pub open_for: Duration,
}

impl WebSocketClosed<'_> {
    pub fn emit(&self) {
        let s = registry().socket(self.api, self.stage);
        s.open.fetch_sub(1, Relaxed);
        s.closed_ms
            .fetch_add(self.open_for.as_millis() as u64, Relaxed);
        tracing::info!(
            target: "stratus::access",
            connection_id = self.connection_id,
            api = self.api,
            stage = self.stage,
            status = self.code,
            "websocket closed: {}{}{}",
            self.code,
            if self.reason.is_empty() { "" } else { " " },
            self.reason
        );
    }
}

/// A WebSocket message was handled (routed, answered or refused).
#[derive(Debug)]
pub struct WebSocketMessage<'a> {
    pub connection_id: &'a str,
    pub request_id: &'a str,
    pub api: &'a str,
    pub stage: &'a str,
    /// The route it went to ("" when none matched).
    pub route: &'a str,
    pub latency: Duration,
    pub error: Option<&'a str>,
}

impl WebSocketMessage<'_> {
    pub fn emit(&self) {
        registry()
            .socket(self.api, self.stage)
            .messages
            .fetch_add(1, Relaxed);
        tracing::debug!(
            target: "stratus::access",
            connection_id = self.connection_id,
            request_id = self.request_id,
            api = self.api,
            stage = self.stage,
            route = self.route,
            latency_ms = format_args!("{:.2}", ms(self.latency)),
            error = self.error,
            "websocket message"
        );
    }
}

/// A line a function wrote (or Lambda's own lines about it).
#[derive(Debug)]
pub struct FunctionOutput<'a> {
    pub function: &'a str,
    pub request_id: Option<&'a str>,
    pub line: &'a str,
}

impl FunctionOutput<'_> {
    /// Logged, and kept in the function's log store (`stratus logs`).
    pub fn emit(&self) {
        logstore::store().push(self.function, self.request_id, self.line);
        tracing::info!(
            target: "stratus::function",
            function = self.function,
            request_id = self.request_id.unwrap_or("-"),
            "{}",
            self.line
        );
    }
}

/// An invocation began: Lambda's `START` line.
pub fn start_line(request_id: &str) -> String {
    format!("START RequestId: {request_id} Version: $LATEST")
}

/// An invocation ended: Lambda's `END` line.
pub fn end_line(request_id: &str) -> String {
    format!("END RequestId: {request_id}")
}

/// An invocation finished, ran or not.
#[derive(Debug)]
pub struct InvocationFinished<'a> {
    pub function: &'a str,
    pub request_id: &'a str,
    pub duration: Duration,
    pub billed_ms: u64,
    pub memory_mb: u32,
    pub max_memory_mb: u64,
    /// Set on a cold start.
    pub init_duration: Option<Duration>,
    /// The error type of a failed call.
    pub error_type: Option<&'a str>,
}

impl InvocationFinished<'_> {
    /// Lambda's `REPORT` line.
    pub fn report_line(&self) -> String {
        let mut line = format!(
            "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {} ms\tMemory Size: {} MB\tMax Memory Used: {} MB",
            self.request_id,
            ms(self.duration),
            self.billed_ms,
            self.memory_mb,
            self.max_memory_mb,
        );
        if let Some(init) = self.init_duration {
            line.push_str(&format!("\tInit Duration: {:.2} ms", ms(init)));
        }
        line
    }

    /// The structured record (the REPORT line itself is in the function's
    /// log), and the function's metrics.
    pub fn emit(&self) {
        let reg = registry();
        let f = reg.function(self.function);
        f.invocations.fetch_add(1, Relaxed);
        f.concurrent.fetch_sub(1, Relaxed);
        if let Some(t) = self.error_type {
            *f.errors
                .lock()
                .expect("errors lock")
                .entry(t.to_owned())
                .or_default() += 1;
        }
        f.duration.observe(self.duration);
        if let Some(init) = self.init_duration {
            f.init_duration.observe(init);
        }
        f.max_memory_mb.fetch_max(self.max_memory_mb, Relaxed);
        // GB-seconds in millionths: MB/1024 × ms/1000 × 1e6.
        let gb_us = u64::from(self.memory_mb) * self.billed_ms * 1_000_000 / 1024 / 1000;
        f.gb_us.fetch_add(gb_us, Relaxed);
        reg.invoked(self.error_type.is_some());
        tracing::debug!(
            target: "stratus::invocation",
            function = self.function,
            request_id = self.request_id,
            duration_ms = format_args!("{:.2}", ms(self.duration)),
            billed_ms = self.billed_ms,
            max_memory_mb = self.max_memory_mb,
            cold = self.init_duration.is_some(),
            error_type = self.error_type,
            "invocation finished"
        );
    }
}

/// An invocation began in an environment (`cold`: one it had to start).
#[derive(Debug)]
pub struct InvocationStarted<'a> {
    pub function: &'a str,
    pub cold: bool,
}

impl InvocationStarted<'_> {
    pub fn emit(&self) {
        let f = registry().function(self.function);
        f.concurrent.fetch_add(1, Relaxed);
        if self.cold {
            f.cold_starts.fetch_add(1, Relaxed);
        }
    }
}

/// A call refused at the function's concurrency (Lambda's 429).
#[derive(Debug)]
pub struct FunctionThrottled<'a> {
    pub function: &'a str,
}

impl FunctionThrottled<'_> {
    pub fn emit(&self) {
        registry()
            .function(self.function)
            .throttles
            .fetch_add(1, Relaxed);
        tracing::debug!(target: "stratus::function", function = self.function, "throttled");
    }
}

/// What an authorizer decided.
#[derive(Debug)]
pub struct AuthorizerDecided<'a> {
    pub api: &'a str,
    pub authorizer: &'a str,
    /// `allow`, `deny`, `unauthorized`, `error`.
    pub result: &'static str,
    /// The answer came from the result cache.
    pub cached: bool,
}

impl AuthorizerDecided<'_> {
    pub fn emit(&self) {
        let a = registry().authorizer(self.api, self.authorizer);
        let mut results = a.results.lock().expect("results lock");
        *results.entry(self.result).or_default() += 1;
        if self.cached {
            *results.entry("cache_hit").or_default() += 1;
        }
    }
}

/// A call of the `@connections` API.
#[derive(Debug)]
pub struct ConnectionsCalled<'a> {
    pub api: &'a str,
    pub stage: &'a str,
    /// A message was posted to the connection.
    pub posted: bool,
    /// The connection was gone (410).
    pub gone: bool,
}

impl ConnectionsCalled<'_> {
    pub fn emit(&self) {
        let s = registry().socket(self.api, self.stage);
        if self.posted {
            s.posts.fetch_add(1, Relaxed);
        }
        if self.gone {
            s.gone.fetch_add(1, Relaxed);
        }
    }
}

/// An asynchronous event given up on.
#[derive(Debug)]
pub struct AsyncEventDropped<'a> {
    pub function: &'a str,
    pub event_id: &'a str,
    pub reason: &'a str,
}

impl AsyncEventDropped<'_> {
    pub fn emit(&self) {
        tracing::warn!(
            target: "stratus::function",
            function = self.function,
            event = self.event_id,
            "asynchronous event dropped: {}",
            self.reason
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_read_as_lambdas() {
        let mut ev = InvocationFinished {
            function: "f",
            request_id: "r1",
            duration: Duration::from_micros(1500),
            billed_ms: 2,
            memory_mb: 128,
            max_memory_mb: 20,
            init_duration: None,
            error_type: None,
        };
        assert_eq!(
            ev.report_line(),
            "REPORT RequestId: r1\tDuration: 1.50 ms\tBilled Duration: 2 ms\tMemory Size: 128 MB\tMax Memory Used: 20 MB"
        );
        ev.init_duration = Some(Duration::from_millis(3));
        assert!(ev.report_line().ends_with("\tInit Duration: 3.00 ms"));
        assert_eq!(start_line("r1"), "START RequestId: r1 Version: $LATEST");
        assert_eq!(end_line("r1"), "END RequestId: r1");
    }
}
