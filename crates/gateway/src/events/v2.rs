//! Payload format 2.0 (HTTP APIs): the event and the answer.

use aws_lambda_events::apigw::{
    ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
    ApiGatewayV2httpRequestContextHttpDescription, ApiGatewayV2httpResponse,
};
use aws_lambda_events::query_map::QueryMap;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};
use http::{request, Response};
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::error::GatewayError;
use crate::router::Matched;
use crate::Body;

use super::*;

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
