//! CORS, as HTTP APIs answer it (and REST APIs with `cors` set): the
//! gateway answers preflights itself, without calling the integration
//! (an `OPTIONS` route or not), and puts the CORS headers on every answer
//! to an allowed origin, its own errors included (403, 404, 413, 429...),
//! so that a browser sees why a call failed. Headers an integration set
//! are replaced, as API Gateway ignores a backend's CORS headers when the
//! API has a CORS configuration.
//!
//! Not tower-http's `CorsLayer`: the configuration is per API, known only
//! once the path is matched, and the gateway's own error answers must
//! carry the headers; a layer around the gateway sees neither, and one per
//! API would have to be chosen inside the pipeline anyway.

use bytes::Bytes;
use http::header::{
    HeaderValue, ACCESS_CONTROL_ALLOW_CREDENTIALS, ACCESS_CONTROL_ALLOW_HEADERS,
    ACCESS_CONTROL_ALLOW_METHODS, ACCESS_CONTROL_ALLOW_ORIGIN, ACCESS_CONTROL_EXPOSE_HEADERS,
    ACCESS_CONTROL_MAX_AGE, ACCESS_CONTROL_REQUEST_METHOD, ORIGIN, VARY,
};
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use stratus_config::Cors;

use crate::Body;

/// The origin of a preflight (`OPTIONS` with `Origin` and
/// `Access-Control-Request-Method`), if the request is one.
pub fn preflight_origin<'r>(method: &Method, headers: &'r HeaderMap) -> Option<&'r HeaderValue> {
    if method != Method::OPTIONS || !headers.contains_key(ACCESS_CONTROL_REQUEST_METHOD) {
        return None;
    }
    headers.get(ORIGIN)
}

/// The answer to a preflight: 204, with the preflight's own headers
/// (methods, headers, max age) when the origin is allowed; the origin and
/// credentials headers are `decorate`'s, as on every answer. Without
/// them the browser refuses the call.
pub(crate) fn preflight(cors: &Cors, origin: &HeaderValue) -> Response<Body> {
    let mut resp = Response::new(Empty::<Bytes>::new().map_err(|e| match e {}).boxed());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    preflight_headers(cors, origin, resp.headers_mut());
    resp
}

/// A preflight answer's own headers (methods, headers, max age), when the
/// origin is allowed; for other listeners' preflights (the S3 API's).
pub fn preflight_headers(cors: &Cors, origin: &HeaderValue, h: &mut HeaderMap) {
    if allowed_origin(cors, origin).is_none() {
        return;
    }
    set_list(h, ACCESS_CONTROL_ALLOW_METHODS, &cors.allow_methods);
    set_list(h, ACCESS_CONTROL_ALLOW_HEADERS, &cors.allow_headers);
    if let Some(age) = cors.max_age {
        h.insert(ACCESS_CONTROL_MAX_AGE, HeaderValue::from(age));
    }
}

/// The CORS headers of an answer to a request from `origin` (none without
/// one; the integration's are dropped either way).
pub(crate) fn decorate(cors: &Cors, origin: Option<&HeaderValue>, resp: &mut Response<Body>) {
    answer_headers(cors, origin, resp.headers_mut());
}

/// `decorate` on headers alone, for other listeners' answers.
pub fn answer_headers(cors: &Cors, origin: Option<&HeaderValue>, h: &mut HeaderMap) {
    for name in [
        ACCESS_CONTROL_ALLOW_ORIGIN,
        ACCESS_CONTROL_EXPOSE_HEADERS,
        ACCESS_CONTROL_ALLOW_CREDENTIALS,
    ] {
        h.remove(name);
    }
    let Some(allowed) = origin.and_then(|o| allowed_origin(cors, o)) else {
        return;
    };
    if allowed != "*" {
        h.append(VARY, HeaderValue::from_static("origin"));
    }
    h.insert(ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
    set_list(h, ACCESS_CONTROL_EXPOSE_HEADERS, &cors.expose_headers);
    if cors.allow_credentials {
        h.insert(
            ACCESS_CONTROL_ALLOW_CREDENTIALS,
            HeaderValue::from_static("true"),
        );
    }
}

/// `*` when every origin is allowed, the origin itself when it is listed
/// (scheme and host compared without case), else none.
fn allowed_origin(cors: &Cors, origin: &HeaderValue) -> Option<HeaderValue> {
    let o = origin.to_str().ok()?;
    if cors.allow_origins.iter().any(|a| a == "*") {
        return Some(HeaderValue::from_static("*"));
    }
    cors.allow_origins
        .iter()
        .any(|a| a.eq_ignore_ascii_case(o))
        .then(|| origin.clone())
}

fn set_list(h: &mut HeaderMap, name: http::HeaderName, values: &[String]) {
    if values.is_empty() {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(&values.join(",")) {
        h.insert(name, v);
    }
}

/// Whether `cors` lets `origin`'s pages make requests (`*`, or listed).
pub fn allows_origin(cors: &Cors, origin: &HeaderValue) -> bool {
    allowed_origin(cors, origin).is_some()
}
