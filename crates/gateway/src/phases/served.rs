//! "Request served": the context, read once, becomes the telemetry event
//! (the one place a request is logged and, next, counted).

use http::StatusCode;

use crate::context::RequestContext;

pub(crate) fn emit(cx: &RequestContext<'_>, status: StatusCode, latency: std::time::Duration) {
    let route = match cx.route {
        Some(r) => r.key.to_string(),
        None if cx.websocket => "$connect".to_owned(),
        None => String::new(),
    };
    stratus_telemetry::RequestServed {
        request_id: &cx.request_id,
        kind: match cx.kind() {
            Some(stratus_config::ApiKind::Http) => "http",
            Some(stratus_config::ApiKind::Rest) => "rest",
            Some(stratus_config::ApiKind::WebSocket) => "websocket",
            None => "",
        },
        api: cx.api.map_or("", |a| a.name.as_str()),
        stage: cx.stage.map_or("", |s| s.name.as_str()),
        route: &route,
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
