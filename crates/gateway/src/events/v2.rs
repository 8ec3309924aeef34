//! Payload format 2.0 (HTTP APIs): the event and the answer.

use std::collections::BTreeMap;

use aws_lambda_events::apigw::ApiGatewayV2httpResponse;
use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{request, Response};
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use serde_json::Value;

use crate::error::GatewayError;
use crate::router::Matched;
use crate::Body;

use super::*;

/// Payload format 2.0 (HTTP APIs): exactly AWS's keys, optional ones
/// absent when empty, serialized straight from the request. (Building
/// `aws_lambda_events`' type, turning it into a `serde_json::Value` and
/// pruning the keys AWS does not send cost ~4 µs a call, a tenth of what
/// Stratus spends on a warm call; a test checks both give the same JSON.)
pub(crate) fn v2_event(
    m: &Matched<'_>,
    parts: &request::Parts,
    body: &Bytes,
    cx: &EventContext<'_>,
) -> Result<Vec<u8>, GatewayError> {
    with_v2_event(m, parts, body, cx, |event| serde_json::to_vec(event))
        .map_err(|e| GatewayError::Internal(e.to_string()))
}

/// The 2.0 event as a JSON value (REQUEST authorizers' events start from it).
pub(crate) fn v2_value(
    m: &Matched<'_>,
    parts: &request::Parts,
    cx: &EventContext<'_>,
) -> Result<Value, GatewayError> {
    with_v2_event(m, parts, &Bytes::new(), cx, |event| {
        serde_json::to_value(event)
    })
    .map_err(|e| GatewayError::Internal(e.to_string()))
}

fn with_v2_event<R>(
    m: &Matched<'_>,
    parts: &request::Parts,
    body: &Bytes,
    cx: &EventContext<'_>,
    write: impl FnOnce(&V2Event<'_>) -> R,
) -> R {
    let mut headers = Vec::with_capacity(parts.headers.keys_len());
    let mut cookies = Vec::new();
    for name in parts.headers.keys() {
        let mut values = parts
            .headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok());
        if name == header::COOKIE {
            cookies.extend(
                values
                    .flat_map(|v| v.split(';'))
                    .map(str::trim)
                    .filter(|c| !c.is_empty()),
            );
            continue;
        }
        let first = values.next().unwrap_or("");
        let value = match values.next() {
            None => std::borrow::Cow::Borrowed(first),
            Some(second) => {
                let mut joined = format!("{first},{second}");
                for v in values {
                    joined.push(',');
                    joined.push_str(v);
                }
                std::borrow::Cow::Owned(joined)
            }
        };
        headers.push((name.as_str(), value));
    }
    let pairs = query_pairs(parts.uri.query());
    let mut query: BTreeMap<&str, String> = BTreeMap::new();
    for (k, v) in &pairs {
        query
            .entry(k.as_str())
            .and_modify(|all| {
                all.push(',');
                all.push_str(v);
            })
            .or_insert_with(|| v.clone());
    }
    let (body, is_base64_encoded) = body_field(&parts.headers, body, None);
    let route_key = m.route.key.to_string();
    let domain_name = header_str(&parts.headers, &header::HOST);
    // A function URL's event: its path as the URL has it (without the
    // listener's `/lambda-url/NAME`), the url id as apiId, and an
    // anonymous caller unless IAM signed it.
    let url = m.api.function_url.as_ref();
    let path = match url {
        Some(_) => url_path(parts.uri.path(), &m.api.base_path),
        None => parts.uri.path(),
    };
    let (account_id, api_id) = match url {
        Some(u) if u.auth == stratus_config::UrlAuth::None => ("anonymous", m.api.id.as_str()),
        Some(_) => (ACCOUNT_ID, m.api.id.as_str()),
        None => (ACCOUNT_ID, m.api.name.as_str()),
    };
    let event = V2Event {
        version: "2.0",
        route_key: &route_key,
        raw_path: path,
        raw_query_string: parts.uri.query().unwrap_or(""),
        cookies,
        headers: Pairs(&headers),
        query_string_parameters: query,
        request_context: V2Context {
            account_id,
            api_id,
            domain_name,
            domain_prefix: domain_name.map(domain_prefix),
            http: V2Http {
                method: parts.method.as_str(),
                path,
                protocol: protocol(parts),
                source_ip: cx.remote.ip().to_string(),
                user_agent: header_str(&parts.headers, &header::USER_AGENT).unwrap_or(""),
            },
            authorizer: cx.authorizer,
            request_id: cx.request_id,
            route_key: &route_key,
            stage: &m.stage.name,
            time: request_time(cx.now),
            time_epoch: cx.now.timestamp_millis(),
        },
        body,
        path_parameters: Pairs(&m.params),
        is_base64_encoded,
        stage_variables: &m.stage.variables,
    };
    write(&event)
}

/// A function URL's path: the request's, less the listener's mount
/// (`/lambda-url/NAME/a` → `/a`); at its own host, as it is.
fn url_path<'p>(path: &'p str, mount: &str) -> &'p str {
    match path.strip_prefix(mount) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => path,
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V2Event<'a> {
    version: &'static str,
    route_key: &'a str,
    raw_path: &'a str,
    raw_query_string: &'a str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cookies: Vec<&'a str>,
    headers: Pairs<'a, &'a str, std::borrow::Cow<'a, str>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    query_string_parameters: BTreeMap<&'a str, String>,
    request_context: V2Context<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<String>,
    #[serde(skip_serializing_if = "Pairs::is_empty")]
    path_parameters: Pairs<'a, &'a str, String>,
    is_base64_encoded: bool,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    stage_variables: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V2Context<'a> {
    account_id: &'static str,
    api_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    domain_prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    authorizer: Option<&'a Value>,
    http: V2Http<'a>,
    request_id: &'a str,
    route_key: &'a str,
    stage: &'a str,
    time: String,
    time_epoch: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct V2Http<'a> {
    method: &'a str,
    path: &'a str,
    protocol: String,
    source_ip: String,
    /// Always a string on AWS (strict models require one).
    user_agent: &'a str,
}

/// Name-value pairs written as a JSON object.
struct Pairs<'a, K, V>(&'a [(K, V)]);

impl<K, V> Pairs<'_, K, V> {
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Serialize for Pairs<'_, K, V> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k.as_ref(), v.as_ref())?;
        }
        map.end()
    }
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
    let r = structured_response(value)?;
    let body = decode_body(r.body, r.is_base64_encoded)?;
    build(
        r.status_code,
        r.headers,
        r.multi_value_headers,
        r.cookies,
        body,
    )
}

/// A payload 2.0 answer object (one with `statusCode`) as the crate's
/// type: header values made text, `cookies` defaulted.
fn structured_response(mut value: Value) -> Result<ApiGatewayV2httpResponse, GatewayError> {
    super::header_values_as_text(&mut value);
    // The crate's type requires `cookies`; a function may leave it out.
    if value.get("cookies").is_none_or(Value::is_null) {
        value["cookies"] = Value::Array(Vec::new());
    }
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

/// The head of a streamed HTTP integration answer from its prelude (a
/// payload 2.0 answer's `statusCode`, 200 when absent, `headers`,
/// `multiValueHeaders`, `cookies`), its body to come.
pub(crate) fn prelude_head(prelude: &[u8]) -> Result<Response<Body>, GatewayError> {
    let mut value: Value = serde_json::from_slice(prelude)
        .map_err(|e| bad(format!("the stream's prelude is not JSON: {e}")))?;
    let Some(o) = value.as_object_mut() else {
        return Err(bad("the stream's prelude is not a JSON object"));
    };
    o.entry("statusCode").or_insert(Value::from(200));
    let r = structured_response(value)?;
    build(
        r.status_code,
        r.headers,
        r.multi_value_headers,
        r.cookies,
        Bytes::new(),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use aws_lambda_events::apigw::{
        ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
        ApiGatewayV2httpRequestContextHttpDescription,
    };
    use aws_lambda_events::query_map::QueryMap;

    use http::HeaderMap;

    use super::*;
    use crate::router::{Lookup, RouteTable};

    /// The event as the first version built it, from `aws_lambda_events`' type
    /// pruned to AWS's keys: the oracle the direct serializer is held to.
    fn crate_event(
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
        let mut v =
            serde_json::to_value(&event).map_err(|e| GatewayError::Internal(e.to_string()))?;
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

    const APP: &str = r#"
functions.f = { runtime = "python3", handler = "app.handler", code = "." }

[apis.web]
type = "http"
[apis.web.stages.prod]
variables = { color = "blue", size = "L" }
[apis.web.routes]
"ANY /items/{id}" = { function = "f" }
"GET /{proxy+}" = { function = "f" }
"$default" = { function = "f" }
"#;

    #[test]
    fn the_event_is_the_crate_types_event_pruned_to_awss_keys() {
        let app = stratus_config::load_str(APP, Path::new("stratus.toml"), Path::new(".")).unwrap();
        let table = RouteTable::new(&app);
        let now = chrono::Utc::now();
        type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a [u8])>, &'a [u8]);
        let cases: Vec<Case<'_>> = vec![
            (
                "GET",
                "/prod/items/42",
                vec![("host", b"api.example.com:8080")],
                b"",
            ),
            (
                "POST",
                "/prod/items/a%20b?x=1&x=2&y=&z=%C3%A9",
                vec![
                    ("host", b"h"),
                    ("user-agent", b"curl/8"),
                    ("cookie", b"a=1; b=2"),
                    ("cookie", b"c=3"),
                    ("x-multi", b"one"),
                    ("x-multi", b"two"),
                    ("x-multi", b"three"),
                    ("x-odd", b"caf\xc3\xa9"),
                    ("content-type", b"application/json"),
                ],
                br#"{"k":"v"}"#,
            ),
            (
                "GET",
                "/prod/deep/a/b/c",
                vec![("content-type", b"application/octet-stream")],
                b"\x00\x01binary",
            ),
            ("DELETE", "/prod/", vec![], b"plain text"),
        ];
        for (method, uri, headers, body) in cases {
            let mut req = http::Request::builder().method(method).uri(uri);
            for (k, v) in &headers {
                req = req.header(*k, HeaderValue::from_bytes(v).unwrap());
            }
            let (parts, ()) = req.body(()).unwrap().into_parts();
            let path = parts.uri.path().to_owned();
            let Lookup::Found(m) = table.lookup(&parts.method, None, &path) else {
                panic!("no route for {method} {uri}");
            };
            let body = Bytes::from_static(body);
            let cx = EventContext {
                request_id: "req-1",
                remote: "10.0.0.9:5000".parse().unwrap(),
                now,
                authorizer: None,
                api_key: None,
                iam_caller: None,
            };
            let ours: Value =
                serde_json::from_slice(&v2_event(&m, &parts, &body, &cx).unwrap()).unwrap();
            let theirs: Value =
                serde_json::from_slice(&crate_event(&m, &parts, &body, &cx).unwrap()).unwrap();
            assert_eq!(ours, theirs, "{method} {uri}");
        }
    }
}
