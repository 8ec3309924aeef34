//! Telemetry as typed events. Each thing worth knowing ("request served",
//! "invocation finished", "WebSocket closed", ...) is a struct whose
//! `emit()` is the only place that logs it, so the monitoring work adds
//! counting in exactly one place per event, and a log line's shape is
//! defined once.
//!
//! This crate must never decide anything: it receives facts and reports
//! them.

use std::net::IpAddr;
use std::time::Duration;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A request the gateway answered (the access log).
#[derive(Debug)]
pub struct RequestServed<'a> {
    pub request_id: &'a str,
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
}

/// Milliseconds rounded to hundredths, as a number (JSON logs get a
/// number, text logs `0.25`).
fn ms2(d: Duration) -> f64 {
    (ms(d) * 100.0).round() / 100.0
}

impl RequestServed<'_> {
    /// One access line: at INFO, or at WARN for a 5xx (an integration or
    /// the gateway failed), so that `STRATUS_LOG=warn` keeps failures.
    pub fn emit(&self) {
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
}

impl WebSocketClosed<'_> {
    pub fn emit(&self) {
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
    pub fn emit(&self) {
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
    /// log); where invocation metrics will be counted.
    pub fn emit(&self) {
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
