//! REST integrations that are not proxies: the request goes through the
//! route's mapping template (chosen by its `Content-Type`, or passed
//! through as `passthrough` allows), to a `MOCK` (whose template's
//! `statusCode` picks the answer), a non-proxy Lambda call (the template's
//! output is the event) or a non-proxy HTTP call; the integration response
//! is chosen by `selectionPattern` (the Lambda `errorMessage`, or the
//! status code), its template renders the answer from the integration's,
//! its `responseParameters` set headers, and `$context.responseOverride`
//! has the last word. As API Gateway's developer guide describes it.

use bytes::Bytes;
use http::{header, HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use stratus_config::{Integration, IntegrationResponse, MappedValue, Mapping, Passthrough};
use stratus_vtl::{Input, Value, Vars};

use crate::context::RequestContext;
use crate::error::GatewayError;
use crate::events;
use crate::invoke::{CallError, Invoke};
use crate::phases::limits::collect_limited;
use crate::router::Matched;
use crate::Body;

/// What the integration gave back, before its integration response.
struct Outcome {
    /// What `selectionPattern` is matched against: the Lambda
    /// `errorMessage` (none for a success), or the status code.
    key: Option<String>,
    /// The answer's status when no integration response is configured.
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn call(
    functions: &dyn Invoke,
    proxy: &super::http::Proxy,
    m: &Matched<'_>,
    mapping: &Mapping,
    integration: &Integration,
    req: Request<Body>,
    cx: &RequestContext<'_>,
) -> Result<Response<Body>, GatewayError> {
    let (parts, body) = req.into_parts();
    let body = collect_limited(body).await?;
    // `contentHandling` of the request, before any template reads it
    // (CONVERT_TO_TEXT only turns a body of a binary media type).
    let binary = crate::header_str(&parts.headers, header::CONTENT_TYPE)
        .is_some_and(|t| events::is_binary_type(t, &m.api.binary_media_types));
    let how = match mapping.content_handling {
        Some(stratus_config::ContentHandling::ToText) if !binary => None,
        other => other,
    };
    let body = convert(how, body)
        .map_err(|e| GatewayError::BadRequest(format!("the body is not base64: {e}")))?;
    let ev = cx.event_context();
    let event = events::v1::v1_value(m, &parts, &body, &ev)?;
    let context = event
        .get("requestContext")
        .map(Value::from)
        .unwrap_or(Value::Map(Vec::new()));
    let stage_variables = Value::map(
        m.stage
            .variables
            .iter()
            .map(|(k, v)| (k.clone(), Value::str(v.clone()))),
    );
    let vars = || {
        let mut v = Vars::new();
        v.insert("context".into(), context.clone());
        v.insert("stageVariables".into(), stage_variables.clone());
        v
    };
    let path: Vec<(String, String)> = m
        .params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), events::decode(v)))
        .collect();
    let query = events::query_pairs(parts.uri.query());
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let text = String::from_utf8_lossy(&body);
    let input = Input {
        body: &text,
        path: &path,
        querystring: &query,
        header: &headers,
    };

    // The request: its template, or the body passed through.
    let content_type = media_type(crate::header_str(&parts.headers, header::CONTENT_TYPE))
        .unwrap_or("application/json")
        .to_ascii_lowercase();
    let mut request_vars = vars();
    let payload = match find_template(&mapping.request_templates, &content_type) {
        Some(t) => Bytes::from(
            t.render(&input, &mut request_vars)
                .map_err(|e| GatewayError::Internal(format!("the request template: {e}")))?,
        ),
        None => match mapping.passthrough {
            Passthrough::WhenNoMatch => body.clone(),
            Passthrough::WhenNoTemplates if mapping.request_templates.is_empty() => body.clone(),
            _ => return Err(GatewayError::UnsupportedMediaType(content_type)),
        },
    };

    let kind = m.api.kind;
    let outcome = match integration {
        Integration::Mock(mock) => {
            // The template's `statusCode` (a number or its text) picks the
            // integration response; 200 when it names none.
            let status = serde_json::from_slice::<serde_json::Value>(&payload)
                .ok()
                .and_then(|v| match v.get("statusCode")? {
                    serde_json::Value::Number(n) => n.as_u64(),
                    serde_json::Value::String(s) => s.trim().parse().ok(),
                    _ => None,
                })
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(200);
            let mut headers = HeaderMap::new();
            append_headers(&mut headers, mock.headers.iter());
            Outcome {
                key: Some(status.to_string()),
                status,
                headers,
                body: Bytes::from(mock.body.clone()),
            }
        }
        Integration::Function { name } => {
            let req = stratus_runtime::InvokeRequest {
                payload,
                ..Default::default()
            };
            let out = functions
                .invoke(name, req, None)
                .await
                .map_err(|e| CallError::from_invoke(e).into_gateway_error(kind))?;
            let mut headers = HeaderMap::new();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            match out.result {
                Ok(b) => Outcome {
                    key: None,
                    status: 200,
                    headers,
                    body: b,
                },
                // A function's error goes through the integration responses
                // like a success; its `errorMessage` selects one.
                Err(e) => Outcome {
                    key: Some(e.message()),
                    status: 200,
                    headers,
                    body: e.body,
                },
            }
        }
        Integration::Http { url } => {
            let mut up = Request::new(Full::new(payload).map_err(Into::into).boxed());
            *up.method_mut() = parts.method.clone();
            *up.uri_mut() = parts.uri.clone();
            let h = up.headers_mut();
            for name in [header::CONTENT_TYPE, header::ACCEPT, header::HOST] {
                if let Some(v) = parts.headers.get(&name) {
                    h.insert(name, v.clone());
                }
            }
            // `request_parameters` read the method request, not this one.
            for (k, v) in super::http::mapped_headers(m, &parts) {
                h.insert(k, v);
            }
            // `$context.requestOverride.header.NAME` of the request template.
            if let Some(Value::Map(over)) = request_vars
                .get("context")
                .and_then(|c| c.get("requestOverride"))
                .and_then(|o| o.get("header"))
            {
                let pairs: Vec<(String, String)> =
                    over.iter().map(|(k, v)| (k.clone(), v.render())).collect();
                append_headers(h, pairs.iter().map(|(k, v)| (k, v)));
            }
            let resp = proxy.forward(m, url, up, cx).await?;
            let (rp, rb) = resp.into_parts();
            let body = collect_limited(rb).await?;
            Outcome {
                key: Some(rp.status.as_u16().to_string()),
                status: rp.status.as_u16(),
                headers: rp.headers,
                body,
            }
        }
    };

    let chosen: Option<&IntegrationResponse> = outcome
        .key
        .as_deref()
        .and_then(|k| {
            mapping
                .responses
                .iter()
                .find(|r| r.pattern.as_ref().is_some_and(|p| p.is_match(k)))
        })
        .or_else(|| mapping.responses.iter().find(|r| r.pattern.is_none()));
    let Some(chosen) = chosen else {
        if mapping.responses.is_empty() {
            // No integration responses configured: the answer as it came.
            return Ok(answer(outcome.status, outcome.headers, outcome.body));
        }
        return Err(GatewayError::Internal(format!(
            "no integration response matches {:?} and none is the default",
            outcome.key.unwrap_or_default()
        )));
    };

    // The answer: the integration response's template for the client's
    // `Accept` type (else application/json, else its first), reading the
    // integration's body as `$input`.
    let accept =
        media_type(crate::header_str(&parts.headers, header::ACCEPT)).map(str::to_ascii_lowercase);
    let template = accept
        .as_deref()
        .and_then(|a| chosen.templates.iter().find(|(ct, _)| ct == a))
        .or_else(|| {
            chosen
                .templates
                .iter()
                .find(|(ct, _)| ct == "application/json")
        })
        .or_else(|| chosen.templates.first());
    let integration_text = String::from_utf8_lossy(&outcome.body).into_owned();
    let mut response_vars = vars();
    let (body, content_type) = match template {
        Some((ct, t)) => {
            let input = Input {
                body: &integration_text,
                ..input
            };
            let out = t
                .render(&input, &mut response_vars)
                .map_err(|e| GatewayError::Internal(format!("the response template: {e}")))?;
            (Bytes::from(out), Some(ct.clone()))
        }
        None => (outcome.body.clone(), None),
    };
    let mut headers = HeaderMap::new();
    match content_type {
        Some(ct) => {
            if let Ok(v) = HeaderValue::from_str(&ct) {
                headers.insert(header::CONTENT_TYPE, v);
            }
        }
        None => {
            let ct = outcome
                .headers
                .get(header::CONTENT_TYPE)
                .cloned()
                .unwrap_or(HeaderValue::from_static("application/json"));
            headers.insert(header::CONTENT_TYPE, ct);
        }
    }
    for (name, source) in &chosen.headers {
        let value = match source {
            MappedValue::Static(s) => Some(s.clone()),
            MappedValue::Header(h) => {
                crate::header_str(&outcome.headers, h.as_str()).map(str::to_owned)
            }
            MappedValue::Body => Some(integration_text.clone()),
            MappedValue::BodyPath(p) => stratus_vtl::json_path(&integration_text, p)
                .ok()
                .filter(|v| !v.is_null())
                .map(|v| v.render()),
            MappedValue::Query(_) | MappedValue::Path(_) => None,
        };
        // A mapped header replaces what is there (Content-Type too).
        if let (Some(v), Ok(k)) = (value, HeaderName::from_bytes(name.as_bytes())) {
            if let Ok(v) = HeaderValue::from_str(&v) {
                headers.insert(k, v);
            }
        }
    }
    let body = convert(chosen.content_handling, body).map_err(|e| {
        GatewayError::Internal(format!("the integration's answer is not base64: {e}"))
    })?;
    let mut status = chosen.status;
    if let Some(over) = response_vars
        .get("context")
        .and_then(|c| c.get("responseOverride"))
    {
        if let Some(s) = over
            .get("status")
            .and_then(|s| s.render().parse::<u16>().ok())
        {
            status = s;
        }
        if let Some(Value::Map(h)) = over.get("header") {
            for (k, v) in h {
                if let (Ok(k), Ok(v)) = (
                    HeaderName::from_bytes(k.as_bytes()),
                    HeaderValue::from_str(&v.render()),
                ) {
                    headers.insert(k, v);
                }
            }
        }
    }
    Ok(answer(status, headers, body))
}

/// `CONVERT_TO_TEXT` (bytes → their base64 text) or `CONVERT_TO_BINARY`
/// (base64 text → its bytes).
fn convert(
    how: Option<stratus_config::ContentHandling>,
    body: Bytes,
) -> Result<Bytes, base64::DecodeError> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(match how {
        None => body,
        Some(stratus_config::ContentHandling::ToText) => Bytes::from(b64.encode(&body)),
        Some(stratus_config::ContentHandling::ToBinary) => {
            let text: Vec<u8> = body
                .iter()
                .copied()
                .filter(|c| !c.is_ascii_whitespace())
                .collect();
            Bytes::from(b64.decode(text)?)
        }
    })
}

fn answer(status: u16, headers: HeaderMap, body: Bytes) -> Response<Body> {
    let mut resp = Response::new(Full::new(body).map_err(Into::into).boxed());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    *resp.headers_mut() = headers;
    resp.headers_mut().remove(header::CONTENT_LENGTH);
    resp.headers_mut().remove(header::TRANSFER_ENCODING);
    resp
}

/// `type/subtype` of a `Content-Type` or `Accept` value (its first, for
/// a list).
fn media_type(v: Option<&str>) -> Option<&str> {
    let first = v?.split(',').next()?;
    let t = first.split(';').next()?.trim();
    (!t.is_empty() && t != "*/*").then_some(t)
}

fn find_template<'a>(
    templates: &'a [(String, std::sync::Arc<stratus_vtl::Template>)],
    content_type: &str,
) -> Option<&'a stratus_vtl::Template> {
    templates
        .iter()
        .find(|(ct, _)| ct == content_type)
        .map(|(_, t)| &**t)
}

fn append_headers<'a, K, V>(h: &mut HeaderMap, pairs: impl IntoIterator<Item = (K, V)>)
where
    K: AsRef<str> + 'a,
    V: AsRef<str> + 'a,
{
    for (k, v) in pairs {
        if let (Ok(k), Ok(v)) = (
            HeaderName::from_bytes(k.as_ref().as_bytes()),
            HeaderValue::from_str(v.as_ref()),
        ) {
            h.append(k, v);
        }
    }
}
