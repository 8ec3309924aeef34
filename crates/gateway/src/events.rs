//! API Gateway proxy events (payload 1.0 for REST APIs, 2.0 for HTTP APIs)
//! built from a request, and the function's answer mapped back to HTTP.
//!
//! Shapes come from the `aws_lambda_events` types; behaviour (which header
//! value wins, what is null) follows the API Gateway developer guide.

use std::collections::HashMap;
use std::net::SocketAddr;

use aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyRequestContext, ApiGatewayProxyResponse,
    ApiGatewayRequestIdentity, ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
    ApiGatewayV2httpRequestContextHttpDescription, ApiGatewayV2httpResponse,
};
use aws_lambda_events::encodings::Body as EventBody;
use aws_lambda_events::query_map::QueryMap;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::error::GatewayError;
use crate::router::Matched;
use crate::Body;

/// What the event needs to know besides the request itself.
pub(crate) struct EventContext<'a> {
    pub(crate) request_id: &'a str,
    pub(crate) remote: SocketAddr,
    pub(crate) now: chrono::DateTime<chrono::Utc>,
}

const ACCOUNT_ID: &str = stratus_runtime::ACCOUNT_ID;

fn header_str<'h>(h: &'h HeaderMap, name: &header::HeaderName) -> Option<&'h str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Is this body text, to be passed as is, or binary, to be base64-encoded?
fn is_text(headers: &HeaderMap, body: &[u8]) -> bool {
    let ct = header_str(headers, &header::CONTENT_TYPE)
        .unwrap_or("")
        .to_ascii_lowercase();
    let textual = ct.is_empty()
        || ct.starts_with("text/")
        || ct.contains("json")
        || ct.contains("xml")
        || ct.contains("javascript")
        || ct.starts_with("application/x-www-form-urlencoded")
        || ct.starts_with("application/graphql");
    textual && std::str::from_utf8(body).is_ok()
}

/// Does a media type (`image/png; q=1`) match one of an API's
/// `binaryMediaTypes` (`image/png`, `image/*`, `*/*`)?
pub(crate) fn is_binary_type(media_type: &str, binary_types: &[String]) -> bool {
    let mt = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let Some((ty, sub)) = mt.split_once('/') else {
        return false;
    };
    binary_types.iter().any(|b| {
        let (bt, bs) = b.split_once('/').unwrap_or((b, ""));
        (bt == "*" || bt == ty) && (bs == "*" || bs == sub)
    })
}

/// The event's `body`: HTTP APIs (`binary_types` None) base64-encode what
/// is not text; REST APIs base64-encode exactly the bodies whose content
/// type is one of the API's `binaryMediaTypes`, and pass the rest as text.
fn body_field(
    headers: &HeaderMap,
    body: &Bytes,
    binary_types: Option<&[String]>,
) -> (Option<String>, bool) {
    let text = match binary_types {
        None => is_text(headers, body),
        Some(types) => !is_binary_type(
            header_str(headers, &header::CONTENT_TYPE).unwrap_or(""),
            types,
        ),
    };
    if body.is_empty() {
        (None, false)
    } else if text {
        (Some(String::from_utf8_lossy(body).into_owned()), false)
    } else {
        (
            Some(base64::engine::general_purpose::STANDARD.encode(body)),
            true,
        )
    }
}

/// Payload 1.0's `headers`: the last value of each header (all of them are
/// in `multiValueHeaders`).
pub(crate) fn last_values(headers: &HeaderMap) -> HeaderMap {
    let mut single = HeaderMap::new();
    for name in headers.keys() {
        if let Some(last) = headers.get_all(name).iter().next_back() {
            single.insert(name.clone(), last.clone());
        }
    }
    single
}

pub(crate) fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

pub(crate) fn multi_query(pairs: &[(String, String)]) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for (k, v) in pairs {
        map.entry(k.clone()).or_default().push(v.clone());
    }
    map
}

fn user_agent(h: &HeaderMap) -> Option<String> {
    header_str(h, &header::USER_AGENT).map(str::to_owned)
}

fn domain(h: &HeaderMap) -> Option<String> {
    header_str(h, &header::HOST).map(str::to_owned)
}

/// `requestTime` / `time` as API Gateway writes it: `04/Mar/2020:19:15:17 +0000`.
pub(crate) fn request_time(now: chrono::DateTime<chrono::Utc>) -> String {
    now.format("%d/%b/%Y:%H:%M:%S +0000").to_string()
}

/// The first label of the host: `domainPrefix`.
fn domain_prefix(domain: &str) -> String {
    domain.split(['.', ':']).next().unwrap_or(domain).to_owned()
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// Payload format 2.0 (HTTP APIs).
pub(crate) fn v2_event(
    m: &Matched<'_>,
    parts: &request::Parts,
    body: &Bytes,
    cx: &EventContext<'_>,
) -> Result<Vec<u8>, GatewayError> {
    let mut headers = HeaderMap::new();
    let mut cookies = Vec::new();
    for name in parts.headers.keys() {
        let values: Vec<&str> = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if name == header::COOKIE {
            cookies.extend(
                values
                    .iter()
                    .flat_map(|v| v.split(';'))
                    .map(|c| c.trim().to_owned())
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        if let Ok(v) = HeaderValue::from_str(&values.join(",")) {
            headers.insert(name.clone(), v);
        }
    }
    let pairs = query_pairs(parts.uri.query());
    let (body, is_base64_encoded) = body_field(&parts.headers, body, None);
    let route_key = m.route.key.to_string();
    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".into());
    event.route_key = Some(route_key.clone());
    event.raw_path = Some(parts.uri.path().to_owned());
    event.raw_query_string = Some(parts.uri.query().unwrap_or("").to_owned());
    event.cookies = (!cookies.is_empty()).then_some(cookies);
    event.headers = headers;
    event.query_string_parameters = QueryMap::from(multi_query(&pairs));
    event.path_parameters = m
        .params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    event.stage_variables = m.stage.variables.clone().into_iter().collect();
    event.body = body;
    event.is_base64_encoded = is_base64_encoded;

    let mut rc = ApiGatewayV2httpRequestContext::default();
    rc.route_key = Some(route_key);
    rc.account_id = Some(ACCOUNT_ID.into());
    rc.stage = Some(m.stage.name.clone());
    rc.request_id = Some(cx.request_id.to_owned());
    rc.apiid = Some(m.api.name.clone());
    rc.domain_name = domain(&parts.headers);
    rc.domain_prefix = rc.domain_name.as_deref().map(domain_prefix);
    rc.time = Some(request_time(cx.now));
    rc.time_epoch = cx.now.timestamp_millis();
    let mut http = ApiGatewayV2httpRequestContextHttpDescription::default();
    http.method = parts.method.clone();
    http.path = Some(parts.uri.path().to_owned());
    http.protocol = Some(protocol(parts));
    http.source_ip = Some(cx.remote.ip().to_string());
    http.user_agent = user_agent(&parts.headers);
    rc.http = http;
    event.request_context = rc;
    let mut v = serde_json::to_value(&event).map_err(|e| GatewayError::Internal(e.to_string()))?;
    shape_v2(&mut v);
    serde_json::to_vec(&v).map_err(|e| GatewayError::Internal(e.to_string()))
}

/// The crate's 2.0 type also serves authorizer events, so it writes keys an
/// HTTP API never sends (`type`, `methodArn`, `httpMethod`, ...), and empty
/// maps where AWS leaves the key out. Code that tells 1.0 from 2.0 by
/// `"httpMethod" in event`, and strict parsers, see the difference: keep
/// exactly AWS's keys, absent when empty.
fn shape_v2(v: &mut Value) {
    const TOP: &[&str] = &[
        "version",
        "routeKey",
        "rawPath",
        "rawQueryString",
        "cookies",
        "headers",
        "queryStringParameters",
        "requestContext",
        "body",
        "pathParameters",
        "isBase64Encoded",
        "stageVariables",
    ];
    const CONTEXT: &[&str] = &[
        "accountId",
        "apiId",
        "authentication",
        "authorizer",
        "domainName",
        "domainPrefix",
        "http",
        "requestId",
        "routeKey",
        "stage",
        "time",
        "timeEpoch",
    ];
    let Some(obj) = v.as_object_mut() else { return };
    obj.retain(|k, v| TOP.contains(&k.as_str()) && !absent(k, v));
    if let Some(rc) = obj.get_mut("requestContext").and_then(Value::as_object_mut) {
        rc.retain(|k, v| CONTEXT.contains(&k.as_str()) && !v.is_null());
        if let Some(http) = rc.get_mut("http").and_then(Value::as_object_mut) {
            // Always a string on AWS (strict models require one).
            if http.get("userAgent").is_none_or(Value::is_null) {
                http.insert("userAgent".into(), Value::String(String::new()));
            }
        }
    }
}

/// Optional 2.0 keys AWS leaves out when there is nothing to send.
fn absent(key: &str, v: &Value) -> bool {
    let optional = matches!(
        key,
        "cookies" | "queryStringParameters" | "pathParameters" | "stageVariables" | "body"
    );
    optional
        && (v.is_null()
            || v.as_object().is_some_and(|o| o.is_empty())
            || v.as_array().is_some_and(|a| a.is_empty()))
}

fn protocol(parts: &request::Parts) -> String {
    format!("{:?}", parts.version)
}

/// Payload format 1.0 (REST APIs).
pub(crate) fn v1_event(
    m: &Matched<'_>,
    parts: &request::Parts,
    body: &Bytes,
    cx: &EventContext<'_>,
) -> Result<Vec<u8>, GatewayError> {
    let original_names = parts
        .extensions
        .get::<RawRequestHead>()
        .map(RawRequestHead::header_names);
    let original_names = original_names.as_ref();
    let single = last_values(&parts.headers);
    let pairs = query_pairs(parts.uri.query());
    let last_values: HashMap<String, String> = pairs.iter().cloned().collect();
    let (body, is_base64_encoded) =
        body_field(&parts.headers, body, Some(&m.api.binary_media_types));
    let resource = match &m.route.key {
        stratus_config::RouteKey::Http { path, .. } => path.to_string(),
        other => other.to_string(),
    };
    let mut event = ApiGatewayProxyRequest::default();
    event.resource = Some(resource.clone());
    event.path = Some(m.path.clone());
    event.http_method = parts.method.clone();
    event.headers = single;
    event.multi_value_headers = parts.headers.clone();
    event.query_string_parameters = QueryMap::from(last_values);
    event.multi_value_query_string_parameters = QueryMap::from(multi_query(&pairs));
    event.path_parameters = m
        .params
        .iter()
        .map(|(k, v)| ((*k).to_owned(), decode(v)))
        .collect();
    event.stage_variables = m.stage.variables.clone().into_iter().collect();
    event.body = body;
    event.is_base64_encoded = is_base64_encoded;

    let mut rc = ApiGatewayProxyRequestContext::default();
    rc.account_id = Some(ACCOUNT_ID.into());
    rc.resource_id = Some(format!("{:x}", fxhash(&resource)));
    rc.stage = Some(m.stage.name.clone());
    rc.domain_name = domain(&parts.headers);
    rc.domain_prefix = rc.domain_name.as_deref().map(domain_prefix);
    rc.request_id = Some(cx.request_id.to_owned());
    rc.protocol = Some(protocol(parts));
    let mut identity = ApiGatewayRequestIdentity::default();
    identity.source_ip = Some(cx.remote.ip().to_string());
    identity.user_agent = user_agent(&parts.headers);
    rc.identity = identity;
    rc.resource_path = Some(resource);
    rc.path = Some(parts.uri.path().to_owned());
    rc.http_method = parts.method.clone();
    rc.request_time = Some(request_time(cx.now));
    rc.request_time_epoch = cx.now.timestamp_millis();
    rc.apiid = Some(m.api.name.clone());
    event.request_context = rc;

    // In payload 1.0 absent maps are null, not {}.
    let mut v = serde_json::to_value(&event).map_err(|e| GatewayError::Internal(e.to_string()))?;
    // The crate's type has no `extendedRequestId`; AWS always sends one.
    if let Some(rc) = v.get_mut("requestContext").and_then(Value::as_object_mut) {
        rc.insert(
            "extendedRequestId".into(),
            Value::String(cx.request_id.to_owned()),
        );
    }
    // Identity keys AWS always sends, null when unknown.
    if let Some(id) = v
        .pointer_mut("/requestContext/identity")
        .and_then(Value::as_object_mut)
    {
        for key in ["principalOrgId", "clientCert"] {
            id.entry(key).or_insert(Value::Null);
        }
    }
    if let Some(names) = original_names {
        for key in ["headers", "multiValueHeaders"] {
            if let Some(map) = v.get_mut(key).and_then(Value::as_object_mut) {
                restore_case(map, names);
            }
        }
    }
    for key in [
        "queryStringParameters",
        "multiValueQueryStringParameters",
        "pathParameters",
        "stageVariables",
    ] {
        if v.get(key)
            .is_some_and(|x| x.as_object().is_some_and(|o| o.is_empty()))
        {
            v[key] = Value::Null;
        }
    }
    serde_json::to_vec(&v).map_err(|e| GatewayError::Internal(e.to_string()))
}

/// The request line and headers as the client sent them, attached to a
/// request by the listener. HTTP header names are case-insensitive and
/// hyper lower-cases them; REST APIs (payload 1.0) pass them on as the
/// client spelled them, and legacy code reads `headers["Content-Type"]`.
#[derive(Debug, Clone)]
pub struct RawRequestHead(pub Bytes);

impl RawRequestHead {
    /// Lower-case name → the client's spelling (the first one seen).
    fn header_names(&self) -> HashMap<String, String> {
        let mut headers = [httparse::EMPTY_HEADER; 128];
        let mut req = httparse::Request::new(&mut headers);
        if req.parse(&self.0).is_err() {
            return HashMap::new();
        }
        let mut names = HashMap::new();
        for h in req.headers.iter().filter(|h| !h.name.is_empty()) {
            names
                .entry(h.name.to_ascii_lowercase())
                .or_insert_with(|| h.name.to_owned());
        }
        names
    }
}

/// Renames the keys of a header map to the client's spelling.
fn restore_case(map: &mut serde_json::Map<String, Value>, names: &HashMap<String, String>) {
    let old = std::mem::take(map);
    for (k, v) in old {
        let name = names.get(&k).cloned().unwrap_or(k);
        map.insert(name, v);
    }
}

/// A small stable hash, for a resource id that stays the same per route.
fn fxhash(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

fn bad(why: impl Into<String>) -> GatewayError {
    GatewayError::BadGateway(format!("malformed Lambda proxy response: {}", why.into()))
}

fn decode_body(body: Option<EventBody>, base64: bool) -> Result<Bytes, GatewayError> {
    let raw = match body {
        None | Some(EventBody::Empty) => return Ok(Bytes::new()),
        Some(EventBody::Text(t)) => t.into_bytes(),
        Some(EventBody::Binary(b)) => b,
        Some(_) => return Err(bad("unsupported body")),
    };
    if base64 {
        base64::engine::general_purpose::STANDARD
            .decode(&raw)
            .map(Bytes::from)
            .map_err(|e| bad(format!("isBase64Encoded body is not base64: {e}")))
    } else {
        Ok(Bytes::from(raw))
    }
}

fn build(
    status: i64,
    headers: HeaderMap,
    multi: HeaderMap,
    cookies: Vec<String>,
    body: Bytes,
) -> Result<Response<Body>, GatewayError> {
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| bad(format!("statusCode {status} is not an HTTP status")))?;
    let mut resp = Response::new(Full::new(body).map_err(Into::into).boxed());
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    for (k, v) in &headers {
        h.insert(k.clone(), v.clone());
    }
    // multiValueHeaders win on clashes.
    let names: Vec<HeaderName> = multi.keys().cloned().collect();
    for k in names {
        h.remove(&k);
        for v in multi.get_all(&k) {
            h.append(k.clone(), v.clone());
        }
    }
    for c in cookies {
        let v = HeaderValue::from_str(&c).map_err(|_| bad("cookie is not a header value"))?;
        h.append(header::SET_COOKIE, v);
    }
    Ok(resp)
}

/// Maps a payload 1.0 response: it must be an object with `statusCode`.
/// A base64 body is decoded only when the request's `Accept` or the
/// response's content type is one of the API's `binaryMediaTypes`;
/// otherwise REST APIs answer the base64 text itself, as AWS does.
pub(crate) fn v1_response(
    payload: &[u8],
    accept: Option<&str>,
    binary_types: &[String],
) -> Result<Response<Body>, GatewayError> {
    let r: ApiGatewayProxyResponse =
        serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?;
    let binary = r.is_base64_encoded && {
        let content_type = r
            .multi_value_headers
            .get(header::CONTENT_TYPE)
            .or_else(|| r.headers.get(header::CONTENT_TYPE))
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        accept
            .unwrap_or("")
            .split(',')
            .any(|t| is_binary_type(t, binary_types))
            || is_binary_type(content_type, binary_types)
    };
    let body = decode_body(r.body, binary)?;
    build(
        r.status_code,
        r.headers,
        r.multi_value_headers,
        Vec::new(),
        body,
    )
}

/// Maps a payload 2.0 response; JSON without `statusCode` is a 200 whose
/// body is that JSON.
pub(crate) fn v2_response(payload: &[u8]) -> Result<Response<Body>, GatewayError> {
    let value: Value = serde_json::from_slice(payload).map_err(|e| bad(e.to_string()))?;
    let structured = value
        .as_object()
        .is_some_and(|o| o.contains_key("statusCode"));
    if !structured {
        let mut resp = Response::new(
            Full::new(Bytes::copy_from_slice(payload))
                .map_err(Into::into)
                .boxed(),
        );
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        return Ok(resp);
    }
    let mut value = value;
    // The crate's type requires `cookies`; a function may leave it out.
    if value.get("cookies").is_none_or(Value::is_null) {
        value["cookies"] = Value::Array(Vec::new());
    }
    let r: ApiGatewayV2httpResponse =
        serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
    let body = decode_body(r.body, r.is_base64_encoded)?;
    build(
        r.status_code,
        r.headers,
        r.multi_value_headers,
        r.cookies,
        body,
    )
}
