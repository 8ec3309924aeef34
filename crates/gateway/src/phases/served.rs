//! "Request served": the context, read once, becomes the telemetry event
//! (the one place a request is logged and, next, counted).

use http::StatusCode;

use crate::context::RequestContext;

pub(crate) fn emit(
    cx: &RequestContext<'_>,
    status: StatusCode,
    latency: std::time::Duration,
    response_length: Option<u64>,
) {
    if let Some(log) = cx.stage.and_then(|s| s.access_log.as_deref()) {
        let line = access_line(log, cx, status, latency, response_length);
        stratus_telemetry::access_log::write(log.file.clone(), line);
    }
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
        deployment: cx.stage.and_then(|s| match s.deployment {
            stratus_config::DeploymentRef::Id(n) => Some(n),
            stratus_config::DeploymentRef::Latest => None,
        }),
    }
    .emit();
}

/// The stage's own access log line (`$context` variables, as API Gateway
/// fills them).
fn access_line(
    log: &stratus_config::AccessLog,
    cx: &RequestContext<'_>,
    status: StatusCode,
    latency: std::time::Duration,
    response_length: Option<u64>,
) -> String {
    use std::borrow::Cow;
    let ms = |d: std::time::Duration| Cow::Owned(d.as_millis().to_string());
    let header = |h: &Option<http::HeaderValue>| {
        h.as_ref()
            .and_then(|v| v.to_str().ok())
            .map(|s| Cow::Owned(s.to_owned()))
    };
    let at = chrono::Utc::now() - chrono::Duration::from_std(latency).unwrap_or_default();
    log.render(|var| match var {
        "requestId" | "extendedRequestId" => Some(Cow::Borrowed(cx.request_id.as_str())),
        "apiId" => cx.api.map(|a| Cow::Borrowed(a.name.as_str())),
        "stage" => cx.stage.map(|s| Cow::Borrowed(s.name.as_str())),
        "domainName" => header(&cx.host),
        "httpMethod" => Some(Cow::Borrowed(cx.method.as_str())),
        "path" => Some(Cow::Borrowed(cx.path.as_str())),
        "protocol" => Some(Cow::Owned(format!("{:?}", cx.version))),
        "resourcePath" => cx.route.map(|r| match &r.key {
            stratus_config::RouteKey::Http { path, .. } => Cow::Owned(path.to_string()),
            other => Cow::Owned(other.to_string()),
        }),
        "routeKey" => match cx.route {
            Some(r) => Some(Cow::Owned(r.key.to_string())),
            None if cx.websocket => Some(Cow::Borrowed("$connect")),
            None => None,
        },
        "status" => Some(Cow::Owned(status.as_u16().to_string())),
        "responseLength" => response_length.map(|n| Cow::Owned(n.to_string())),
        "responseLatency" => Some(ms(latency)),
        "integrationLatency" => cx.integration_latency.map(ms),
        "integrationStatus" => cx.integration_status.map(|s| Cow::Owned(s.to_string())),
        "integrationErrorMessage" => cx
            .error
            .as_deref()
            .filter(|_| cx.integration_latency.is_some())
            .map(Cow::Borrowed),
        "error.message" => cx.failure.as_ref().map(|(m, _)| Cow::Borrowed(m.as_ref())),
        "error.responseType" => cx.failure.as_ref().map(|(_, t)| Cow::Borrowed(*t)),
        "error.validationErrorString" => cx.validation_error.as_deref().map(Cow::Borrowed),
        "identity.sourceIp" => Some(Cow::Owned(cx.remote.ip().to_string())),
        "identity.userAgent" => header(&cx.user_agent),
        "identity.apiKey" => cx.api_key.as_deref().map(Cow::Borrowed),
        "authorizer.principalId" => cx.principal.as_deref().map(Cow::Borrowed),
        "requestTime" => Some(Cow::Owned(crate::events::request_time(at))),
        "requestTimeEpoch" => Some(Cow::Owned(at.timestamp_millis().to_string())),
        "eventType" if cx.websocket => Some(Cow::Borrowed("CONNECT")),
        _ => None,
    })
}
