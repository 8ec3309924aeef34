//! API Gateway events built from a request (payload 1.0 for REST APIs in
//! `v1`, 2.0 for HTTP APIs in `v2`, WebSocket events in `websocket`), the
//! function's answer mapped back to HTTP, and what they share.
//!
//! Shapes come from the `aws_lambda_events` types; behaviour (which header
//! value wins, what is null) follows the API Gateway developer guide.

pub(crate) mod v1;
pub(crate) mod v2;
pub(crate) mod websocket;

use std::collections::HashMap;
use std::net::SocketAddr;

use aws_lambda_events::encodings::Body as EventBody;
use base64::Engine as _;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::error::GatewayError;
use crate::Body;

/// What the event needs to know besides the request itself.
pub(crate) struct EventContext<'a> {
    pub(crate) request_id: &'a str,
    pub(crate) remote: SocketAddr,
    pub(crate) now: chrono::DateTime<chrono::Utc>,
    /// `requestContext.authorizer`, as the authorizer phase shaped it for
    /// the route's payload format.
    pub(crate) authorizer: Option<&'a Value>,
    /// The API key the request was let in with (`identity.apiKey`).
    pub(crate) api_key: Option<&'a str>,
    /// The access key of a SigV4-signed caller (`AWS_IAM` routes).
    pub(crate) iam_caller: Option<&'a str>,
}

pub(crate) const ACCOUNT_ID: &str = stratus_runtime::ACCOUNT_ID;

/// A header's value as text, when it is text.
pub fn header_str(h: &HeaderMap, name: impl header::AsHeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// Is this body text, to be passed as is, or binary, to be base64-encoded?
pub(crate) fn is_text(headers: &HeaderMap, body: &[u8]) -> bool {
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
pub(crate) fn body_field(
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

pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
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

pub(crate) fn user_agent(h: &HeaderMap) -> Option<String> {
    header_str(h, &header::USER_AGENT).map(str::to_owned)
}

pub(crate) fn domain(h: &HeaderMap) -> Option<String> {
    header_str(h, &header::HOST).map(str::to_owned)
}

/// The Lambda proxy event of a matched route, in its payload format.
pub(crate) fn proxy_event(
    m: &crate::router::Matched<'_>,
    parts: &http::request::Parts,
    body: &Bytes,
    cx: &EventContext<'_>,
) -> Result<Vec<u8>, crate::error::GatewayError> {
    match m.route.payload {
        stratus_config::PayloadFormat::V1 => v1::v1_event(m, parts, body, cx),
        stratus_config::PayloadFormat::V2 => v2::v2_event(m, parts, body, cx),
    }
}

/// `requestTime` / `time` as API Gateway writes it: `04/Mar/2020:19:15:17 +0000`
/// (formatted once a second per thread: every event carries it).
pub(crate) fn request_time(now: chrono::DateTime<chrono::Utc>) -> String {
    use std::cell::RefCell;
    thread_local! {
        static SECOND: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) };
    }
    let secs = now.timestamp();
    SECOND.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != secs {
            *cached = (secs, now.format("%d/%b/%Y:%H:%M:%S +0000").to_string());
        }
        cached.1.clone()
    })
}

/// The first label of the host: `domainPrefix`.
pub(crate) fn domain_prefix(domain: &str) -> String {
    domain.split(['.', ':']).next().unwrap_or(domain).to_owned()
}

pub(crate) fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

pub(crate) fn protocol(parts: &request::Parts) -> String {
    format!("{:?}", parts.version)
}

/// The request line and headers as the client sent them, attached to a
/// request by the listener. HTTP header names are case-insensitive and
/// hyper lower-cases them; REST APIs (payload 1.0) pass them on as the
/// client spelled them, and legacy code reads `headers["Content-Type"]`.
#[derive(Debug, Clone)]
pub struct RawRequestHead(pub Bytes);

/// The access key id that signed a request to an `AWS_IAM` function URL,
/// as the server found it (its signature checked): the event's
/// `requestContext.authorizer.iam`.
#[derive(Debug, Clone)]
pub struct UrlCaller(pub String);

/// The outcome of the server's SigV4 check of a request to an `AWS_IAM`
/// route (service `execute-api`): the caller's access key, or why not
/// (`Unsigned`: no signature at all).
#[derive(Debug, Clone)]
pub enum IamCaller {
    Signed(String),
    Unsigned,
    Refused(String),
}

impl RawRequestHead {
    /// Lower-case name → the client's spelling (the first one seen).
    pub(crate) fn header_names(&self) -> HashMap<String, String> {
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
pub(crate) fn restore_case(
    map: &mut serde_json::Map<String, Value>,
    names: &HashMap<String, String>,
) {
    let old = std::mem::take(map);
    for (k, v) in old {
        let name = names.get(&k).cloned().unwrap_or(k);
        map.insert(name, v);
    }
}

/// Header values a function gave as numbers or booleans (`"timestamp":
/// +new Date`) made text, and null ones dropped, as API Gateway takes
/// them: the response types want strings.
pub(crate) fn header_values_as_text(response: &mut Value) {
    let text = |v: &Value| match v {
        Value::Number(n) => Some(Value::String(n.to_string())),
        Value::Bool(b) => Some(Value::String(b.to_string())),
        other => Some(other.clone()).filter(|v| !v.is_null()),
    };
    if let Some(Value::Object(h)) = response.get_mut("headers") {
        *h = std::mem::take(h)
            .into_iter()
            .filter_map(|(k, v)| Some((k, text(&v)?)))
            .collect();
    }
    if let Some(Value::Object(h)) = response.get_mut("multiValueHeaders") {
        for v in h.values_mut() {
            if let Value::Array(items) = v {
                *items = items.iter().filter_map(text).collect();
            }
        }
    }
}

/// A mapping's value read from the method request (`requestParameters`,
/// gateway responses' headers): `'text'`, or the request's header, query
/// string or path parameter of that name; `None` when it has none (or
/// the source is an integration response's).
pub(crate) fn method_request_value(
    v: &stratus_config::MappedValue,
    headers: Option<&HeaderMap>,
    query: Option<&str>,
    path: &[(&str, String)],
) -> Option<String> {
    use stratus_config::MappedValue;
    match v {
        MappedValue::Static(s) => Some(s.clone()),
        MappedValue::Header(h) => headers
            .and_then(|hs| header_str(hs, h.as_str()))
            .map(str::to_owned),
        MappedValue::Query(q) => query_pairs(query)
            .into_iter()
            .find(|(k, _)| k == q)
            .map(|(_, v)| v),
        MappedValue::Path(p) => path.iter().find(|(k, _)| k == p).map(|(_, v)| decode(v)),
        MappedValue::Body | MappedValue::BodyPath(_) => None,
    }
}

pub(crate) fn bad(why: impl Into<String>) -> GatewayError {
    GatewayError::BadGateway(format!("malformed Lambda proxy response: {}", why.into()))
}

pub(crate) fn decode_body(body: Option<EventBody>, base64: bool) -> Result<Bytes, GatewayError> {
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

pub(crate) fn build(
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

pub(crate) use stratus_runtime::epoch_ms;
