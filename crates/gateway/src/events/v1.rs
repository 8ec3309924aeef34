//! Payload format 1.0 (REST APIs): the event and the answer.

use std::collections::HashMap;

use aws_lambda_events::apigw::{
    ApiGatewayProxyRequest, ApiGatewayProxyRequestContext, ApiGatewayProxyResponse,
    ApiGatewayRequestIdentity,
};
use aws_lambda_events::query_map::QueryMap;
use bytes::Bytes;
use http::header::{self};
use http::{request, Response};
use serde_json::Value;

use crate::error::GatewayError;
use crate::router::Matched;
use crate::Body;

use super::*;

/// Payload format 1.0 (REST APIs).
pub(crate) fn v1_event(
    m: &Matched<'_>,
    parts: &request::Parts,
    body: &Bytes,
    cx: &EventContext<'_>,
) -> Result<Vec<u8>, GatewayError> {
    let v = v1_value(m, parts, body, cx)?;
    serde_json::to_vec(&v).map_err(|e| GatewayError::Internal(e.to_string()))
}

/// The 1.0 event as a JSON value (REQUEST authorizers' events start from it).
pub(crate) fn v1_value(
    m: &Matched<'_>,
    parts: &request::Parts,
    body: &Bytes,
    cx: &EventContext<'_>,
) -> Result<Value, GatewayError> {
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
    identity.api_key = cx.api_key.map(str::to_owned);
    if let Some(key) = cx.iam_caller {
        identity.access_key = Some(key.to_owned());
        identity.account_id = Some(ACCOUNT_ID.to_owned());
        identity.caller = Some(key.to_owned());
        identity.user = Some(key.to_owned());
        identity.user_arn = Some(format!("arn:aws:iam::{ACCOUNT_ID}:user/{key}"));
    }
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
        if let Some(a) = cx.authorizer {
            rc.insert("authorizer".into(), a.clone());
        }
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
    Ok(v)
}

/// A small stable hash, for a resource id that stays the same per route.
fn fxhash(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
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
    // The usual answer parses directly; one with numeric or boolean
    // header values is mended first.
    let r: ApiGatewayProxyResponse = match serde_json::from_slice(payload) {
        Ok(r) => r,
        Err(e) => {
            let mut v: serde_json::Value =
                serde_json::from_slice(payload).map_err(|_| bad(e.to_string()))?;
            super::header_values_as_text(&mut v);
            serde_json::from_value(v).map_err(|e| bad(e.to_string()))?
        }
    };
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
