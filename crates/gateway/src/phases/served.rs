//! "Request served": the context, read once, becomes the telemetry event
//! (the one place a request is logged and, next, counted).

use http::StatusCode;

use crate::context::RequestContext;

pub(crate) fn emit(cx: &RequestContext, status: StatusCode, latency: std::time::Duration) {
    stratus_telemetry::RequestServed {
        request_id: &cx.request_id,
        api: &cx.api,
        stage: &cx.stage,
        route: &cx.route,
        method: cx.method.as_str(),
        path: &cx.path,
        source_ip: cx.remote.ip(),
        status: status.as_u16(),
        latency,
        integration_latency: cx.integration_latency,
        api_key: cx.api_key.as_deref(),
        principal: cx.principal.as_deref(),
        authorizer: cx.authorizer.as_ref().map(ToString::to_string),
        cache: cx.cache,
        error: cx.error.as_deref(),
    }
    .emit();
}
