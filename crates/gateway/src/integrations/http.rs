//! The `http` integration: forward the request to an upstream URL.
//!
//! Bodies stream both ways (never buffered whole); connections to upstreams
//! are pooled by hyper-util's client. Must never follow redirects or rewrite
//! bodies: it is a proxy, not a client.

use std::error::Error as _;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, Uri};
use http_body_util::{BodyExt, Limited};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

use stratus_config::{UrlPart, UrlTemplate};

use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::router::Matched;
use crate::{Body, BoxError, MAX_REQUEST_BODY};

#[derive(Clone)]
pub(crate) struct Proxy {
    client: Client<HttpConnector, Body>,
}

impl Proxy {
    pub(crate) fn new() -> Proxy {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .build(connector);
        Proxy { client }
    }

    pub(crate) async fn forward(
        &self,
        m: &Matched<'_>,
        url_template: &UrlTemplate,
        req: Request<Body>,
        cx: &RequestContext<'_>,
    ) -> Result<Response<Body>, GatewayError> {
        let (remote, timeout) = (cx.remote, m.route.timeout);
        let (parts, body) = req.into_parts();
        let client_version = parts.version;
        let mapped_query = mapped_query(m, &parts);
        let query = match (parts.uri.query(), mapped_query.as_deref()) {
            (q, None) => q.map(str::to_owned),
            (None | Some(""), Some(extra)) => Some(extra.to_owned()),
            (Some(q), Some(extra)) => Some(format!("{q}&{extra}")),
        };
        let uri = upstream_uri(url_template, m, query.as_deref())?;

        let mapped_headers = mapped_headers(m, &parts);
        let mut headers = parts.headers;
        for (k, v) in mapped_headers {
            headers.insert(k, v);
        }
        let original_host = headers.remove(header::HOST);
        strip_hop_by_hop(&mut headers);
        let forwarded_for = match crate::header_str(&headers, "x-forwarded-for") {
            Some(prev) => format!("{prev}, {}", remote.ip()),
            None => remote.ip().to_string(),
        };
        if let Ok(v) = HeaderValue::from_str(&forwarded_for) {
            headers.insert("x-forwarded-for", v);
        }
        headers.insert("x-forwarded-proto", HeaderValue::from_static("http"));
        if let Some(host) = original_host {
            headers.insert("x-forwarded-host", host);
        }

        // The limit is enforced while streaming: a body that passes it fails
        // the upstream request, which is reported below as 413.
        let body = Limited::new(body, MAX_REQUEST_BODY as usize)
            .map_err(BoxError::from)
            .boxed();
        let mut up = Request::builder()
            .method(parts.method)
            .uri(uri)
            .body(body)
            .map_err(|e| GatewayError::Internal(e.to_string()))?;
        *up.headers_mut() = headers;

        let kind = m.api.kind;
        let resp = match tokio::time::timeout(timeout, self.client.request(up)).await {
            Err(_) => return Err(GatewayError::Timeout(kind)),
            Ok(Err(e)) => return Err(classify(e)),
            Ok(Ok(resp)) => resp,
        };
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        // The client is answered in its own protocol version, whatever the
        // upstream spoke (an HTTP/1.0 upstream must not downgrade it).
        parts.version = client_version;
        Ok(Response::from_parts(
            parts,
            body.map_err(BoxError::from).boxed(),
        ))
    }
}

fn classify(e: hyper_util::client::legacy::Error) -> GatewayError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = e.source();
    while let Some(s) = source {
        if s.is::<http_body_util::LengthLimitError>() {
            return GatewayError::PayloadTooLarge {
                limit: MAX_REQUEST_BODY,
            };
        }
        source = s.source();
    }
    GatewayError::BadGateway(format!("{e}: {}", error_chain(&e)))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = Vec::new();
    let mut source = e.source();
    while let Some(s) = source {
        out.push(s.to_string());
        source = s.source();
    }
    out.join(": ")
}

/// A `request_parameters` mapping's value, from the method request.
fn mapped_source(
    m: &Matched<'_>,
    parts: &http::request::Parts,
    v: &stratus_config::MappedValue,
) -> Option<String> {
    crate::events::method_request_value(v, Some(&parts.headers), parts.uri.query(), &m.params)
}

pub(crate) fn mapped_headers(
    m: &Matched<'_>,
    parts: &http::request::Parts,
) -> Vec<(http::HeaderName, HeaderValue)> {
    m.route
        .request_parameters
        .iter()
        .filter_map(|(t, v)| match t {
            stratus_config::MappedTarget::Header(name) => {
                let value = mapped_source(m, parts, v)?;
                Some((
                    http::HeaderName::from_bytes(name.as_bytes()).ok()?,
                    HeaderValue::from_str(&value).ok()?,
                ))
            }
            stratus_config::MappedTarget::Query(_) => None,
        })
        .collect()
}

/// The query string the mappings add (`integration.request.querystring`).
fn mapped_query(m: &Matched<'_>, parts: &http::request::Parts) -> Option<String> {
    let mut out = form_urlencoded::Serializer::new(String::new());
    let mut any = false;
    for (t, v) in &m.route.request_parameters {
        if let stratus_config::MappedTarget::Query(name) = t {
            if let Some(value) = mapped_source(m, parts, v) {
                out.append_pair(name, &value);
                any = true;
            }
        }
    }
    any.then(|| out.finish())
}

/// Fills the template parsed at load (`{param}`, `{proxy}`,
/// `${stageVariables.x}`) and appends the request's query string.
fn upstream_uri(
    template: &UrlTemplate,
    m: &Matched<'_>,
    query: Option<&str>,
) -> Result<Uri, GatewayError> {
    let mut url = String::with_capacity(template.source.len() + 32);
    for part in &template.parts {
        match part {
            UrlPart::Literal(l) => url.push_str(l),
            UrlPart::Param(name) => {
                if let Some((_, v)) = m.params.iter().find(|(n, _)| n == name) {
                    url.push_str(v);
                }
            }
            UrlPart::StageVariable(var) => {
                if let Some(v) = m.stage.variables.get(var) {
                    url.push_str(v);
                }
            }
        }
    }
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(q);
    }
    url.parse::<Uri>()
        .map_err(|e| GatewayError::BadGateway(format!("upstream URL {url:?}: {e}")))
}

/// Headers that describe one hop and must not be forwarded (RFC 9110 §7.6.1).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in [
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(n);
    }
}
