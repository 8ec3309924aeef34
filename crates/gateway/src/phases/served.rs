//! "Request served": the one place that logs a request (and, with the
//! monitoring issue, counts it).

use http::StatusCode;

use crate::context::RequestContext;

pub(crate) struct RequestServed<'a> {
    pub(crate) cx: &'a RequestContext,
    pub(crate) status: StatusCode,
    pub(crate) latency: std::time::Duration,
}

impl RequestServed<'_> {
    pub(crate) fn emit(&self) {
        let cx = self.cx;
        let latency_ms = self.latency.as_secs_f64() * 1000.0;
        let integration_ms = cx
            .integration_latency
            .map(|d| format!("{:.2}", d.as_secs_f64() * 1000.0));
        tracing::info!(
            target: "stratus::access",
            request_id = cx.request_id,
            api = cx.api,
            stage = cx.stage,
            route = cx.route,
            method = cx.method.as_str(),
            path = cx.path,
            source_ip = %cx.remote.ip(),
            status = self.status.as_u16(),
            latency_ms = format_args!("{latency_ms:.2}"),
            integration_latency_ms = integration_ms,
            api_key = cx.api_key,
            principal = cx.principal,
            authorizer = cx.authorizer.as_ref().map(ToString::to_string),
            cache = cx.cache,
            error = cx.error,
            "{} {} {}",
            cx.method,
            cx.path,
            self.status.as_u16(),
        );
    }
}
