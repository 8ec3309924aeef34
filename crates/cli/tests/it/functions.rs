//! Function routes end to end: real server, real function processes, real
//! HTTP client; events checked field by field against `aws_lambda_events`.

use std::path::Path;

use aws_lambda_events::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use serde_json::Value;
use stratus_testkit::TestServer;

/// Answers according to the path; `/event...` returns the event itself.
const EVENTS_PY: &str = r#"
import base64, json, time
def handler(event, context):
    path = event.get("rawPath") or event.get("path") or ""
    if path.endswith("/multi"):
        return {"statusCode": 201, "headers": {"x-a": "single", "x-b": "b"}, "multiValueHeaders": {"x-a": ["m1", "m2"]}, "body": "ok"}
    if path.endswith("/cookies"):
        return {"statusCode": 200, "cookies": ["a=1", "b=2; Path=/"], "body": "c"}
    if path.endswith("/binary"):
        return {"statusCode": 200, "isBase64Encoded": True, "headers": {"content-type": "application/octet-stream"}, "body": base64.b64encode(bytes(range(256))).decode()}
    if path.endswith("/plain"):
        return {"hello": "world", "n": [1, 2]}
    if path.endswith("/malformed"):
        return {"body": "no status code"}
    if path.endswith("/raise"):
        raise RuntimeError("boom")
    if path.endswith("/slow"):
        time.sleep(5)
    if path.endswith("/echo-binary"):
        return {"statusCode": 200, "isBase64Encoded": event["isBase64Encoded"], "body": event["body"]}
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(event)}
"#;

async fn events_server() -> TestServer {
    TestServer::start_with_files(
        r#"
[functions.events]
runtime = "python3"
handler = "app.handler"
code = "events"
timeout = 1

[apis.v2]
type = "http"
base_path = "/v2"
[apis.v2.routes]
"GET /items/{id}" = { function = "events" }
"ANY /resp/{what}" = { function = "events" }
"POST /echo-binary" = { function = "events" }
"GET /v1-format/{id}" = { function = "events", payload = "1.0" }
"GET /integration/slow" = { function = "events", timeout_ms = 300 }

[apis.shop]
type = "rest"
base_path = "/shop"
stages = { prod = { variables = { table = "items-prod" } } }
[apis.shop.routes]
"GET /items/{id}" = { function = "events" }
"GET /resp/{what}" = { function = "events" }
"GET /integration/slow" = { function = "events", timeout_ms = 300 }
"#,
        &[("events/app.py", EVENTS_PY)],
    )
    .await
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

#[tokio::test]
async fn http_api_sends_a_payload_2_0_event() {
    let s = events_server().await;
    let resp = client()
        .get(s.url("/v2/items/42?a=1&a=2&b=x%20y"))
        .header("X-Multi", "one")
        .header("x-multi", "two")
        .header("cookie", "c1=v1; c2=v2")
        .header("user-agent", "stratus-test")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["apigw-requestid"]
        .to_str()
        .unwrap()
        .to_owned();
    let raw: Value = resp.json().await.unwrap();
    // The typed view: it must parse as the official type.
    let event: ApiGatewayV2httpRequest = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(event.version.as_deref(), Some("2.0"));
    assert_eq!(event.route_key.as_deref(), Some("GET /items/{id}"));
    assert_eq!(event.raw_path.as_deref(), Some("/v2/items/42"));
    assert_eq!(event.raw_query_string.as_deref(), Some("a=1&a=2&b=x%20y"));
    assert_eq!(
        event.cookies,
        Some(vec!["c1=v1".to_owned(), "c2=v2".to_owned()])
    );
    assert_eq!(event.path_parameters["id"], "42");
    assert!(!event.is_base64_encoded);
    assert_eq!(event.body, None);
    let rc = &event.request_context;
    assert_eq!(rc.route_key.as_deref(), Some("GET /items/{id}"));
    assert_eq!(rc.stage.as_deref(), Some("$default"));
    assert_eq!(rc.request_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(rc.apiid.as_deref(), Some("v2"));
    assert_eq!(rc.http.method, http_method("GET"));
    assert_eq!(rc.http.path.as_deref(), Some("/v2/items/42"));
    assert_eq!(rc.http.source_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(rc.http.user_agent.as_deref(), Some("stratus-test"));
    assert!(rc.time_epoch > 1_600_000_000_000);
    // The raw JSON: lower-case names, repeated values joined with commas.
    assert_eq!(raw["headers"]["x-multi"], "one,two");
    assert!(
        raw["headers"].get("cookie").is_none(),
        "cookies travel in `cookies`"
    );
    assert_eq!(raw["queryStringParameters"]["a"], "1,2");
    assert_eq!(raw["queryStringParameters"]["b"], "x y");
    assert_eq!(raw["requestContext"]["http"]["protocol"], "HTTP/1.1");
    let time = raw["requestContext"]["time"].as_str().unwrap();
    assert_eq!(time.len(), "12/Mar/2020:19:03:58 +0000".len(), "{time}");
}

fn http_method(m: &str) -> aws_lambda_events::http::Method {
    m.parse().unwrap()
}

#[tokio::test]
async fn rest_api_sends_a_payload_1_0_event() {
    let s = events_server().await;
    let resp = client()
        .get(s.url("/shop/prod/items/a%20b?x=1&x=2"))
        .header("x-multi", "one")
        .header("x-multi", "two")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let request_id = resp.headers()["x-amzn-requestid"]
        .to_str()
        .unwrap()
        .to_owned();
    let raw: Value = resp.json().await.unwrap();
    let event: ApiGatewayProxyRequest = serde_json::from_value(raw.clone()).unwrap();
    assert_eq!(event.resource.as_deref(), Some("/items/{id}"));
    assert_eq!(event.path.as_deref(), Some("/items/a%20b"));
    assert_eq!(event.http_method, http_method("GET"));
    assert_eq!(event.path_parameters["id"], "a b");
    assert_eq!(event.stage_variables["table"], "items-prod");
    let rc = &event.request_context;
    assert_eq!(rc.stage.as_deref(), Some("prod"));
    assert_eq!(rc.path.as_deref(), Some("/shop/prod/items/a%20b"));
    assert_eq!(rc.resource_path.as_deref(), Some("/items/{id}"));
    assert_eq!(rc.request_id.as_deref(), Some(request_id.as_str()));
    assert_eq!(rc.identity.source_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(rc.http_method, http_method("GET"));
    assert!(rc.request_time_epoch > 1_600_000_000_000);
    // The last value wins in `headers` and `queryStringParameters`.
    assert_eq!(raw["headers"]["x-multi"], "two");
    assert_eq!(
        raw["multiValueHeaders"]["x-multi"],
        serde_json::json!(["one", "two"])
    );
    assert_eq!(raw["queryStringParameters"], serde_json::json!({"x": "2"}));
    assert_eq!(
        raw["multiValueQueryStringParameters"],
        serde_json::json!({"x": ["1", "2"]})
    );
    assert_eq!(raw["body"], Value::Null);
    assert_eq!(raw["isBase64Encoded"], false);

    // Absent maps are null, not {}.
    let raw: Value = client()
        .get(s.url("/shop/prod/items/1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["queryStringParameters"], Value::Null);
    assert_eq!(raw["multiValueQueryStringParameters"], Value::Null);

    // An HTTP API route may ask for payload 1.0.
    let raw: Value = client()
        .get(s.url("/v2/v1-format/9"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["resource"], "/v1-format/{id}");
    assert_eq!(raw["pathParameters"]["id"], "9");
    assert!(raw.get("version").is_none());
}

#[tokio::test]
async fn responses_map_headers_cookies_and_base64_bodies() {
    let s = events_server().await;
    // multiValueHeaders win over headers.
    let r = client()
        .get(s.url("/shop/prod/resp/multi"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let xa: Vec<_> = r
        .headers()
        .get_all("x-a")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(xa, ["m1", "m2"]);
    assert_eq!(r.headers()["x-b"], "b");
    assert_eq!(r.text().await.unwrap(), "ok");

    let r = client()
        .get(s.url("/v2/resp/cookies"))
        .send()
        .await
        .unwrap();
    let cookies: Vec<_> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(cookies, ["a=1", "b=2; Path=/"]);

    let r = client().get(s.url("/v2/resp/binary")).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(
        r.bytes().await.unwrap().to_vec(),
        (0..=255u8).collect::<Vec<_>>()
    );

    // Payload 2.0: JSON without statusCode is a 200 whose body is that JSON.
    let r = client().get(s.url("/v2/resp/plain")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v, serde_json::json!({"hello": "world", "n": [1, 2]}));
}

#[tokio::test]
async fn binary_request_bodies_round_trip_base64() {
    let s = events_server().await;
    let bytes: Vec<u8> = (0..=255u8).rev().collect();
    let r = client()
        .post(s.url("/v2/echo-binary"))
        .header("content-type", "application/octet-stream")
        .body(bytes.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes);
    // Text stays text.
    let r = client()
        .post(s.url("/v2/echo-binary"))
        .header("content-type", "text/plain")
        .body("plain words")
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "plain words");
}

#[tokio::test]
async fn failures_map_to_502_504_and_503() {
    let s = events_server().await;
    for path in [
        "/shop/prod/resp/malformed",
        "/v2/resp/raise",
        "/shop/prod/resp/raise",
    ] {
        let r = client().get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 502, "{path}");
        assert_eq!(
            r.text().await.unwrap(),
            r#"{"message":"Internal server error"}"#
        );
    }
    // The function's own timeout (1 s here) is a function error: 502.
    for path in ["/shop/prod/resp/slow", "/v2/resp/slow"] {
        let r = client().get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 502, "{path}");
        assert_eq!(
            r.text().await.unwrap(),
            r#"{"message":"Internal server error"}"#
        );
    }
    // The route's integration timeout: 504 for REST, 503 for HTTP APIs.
    let r = client()
        .get(s.url("/shop/prod/integration/slow"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"message":"Endpoint request timed out"}"#
    );
    let r = client()
        .get(s.url("/v2/integration/slow"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"message":"Service Unavailable"}"#
    );
    // And the function still answers afterwards.
    let r = client().get(s.url("/v2/items/1")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn node_function_answers_a_route() {
    let s = TestServer::start_with_files(
        r#"
[functions.node]
runtime = "nodejs20.x"
handler = "index.handler"
code = "node"
[apis.web]
type = "http"
[apis.web.routes]
"GET /hi/{name}" = { function = "node" }
"#,
        &[(
            "node/index.js",
            "exports.handler = async (event) => ({ statusCode: 200, headers: {'x-rt': 'node'}, body: `hi ${event.pathParameters.name} via ${event.requestContext.http.method}` });\n",
        )],
    )
    .await;
    let r = client().get(s.url("/hi/ada")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-rt"], "node");
    assert_eq!(r.text().await.unwrap(), "hi ada via GET");
}

/// Where function builds shared between tests (and runs) live.
fn shared_data_dir() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/stratus-test-data")
        .display()
        .to_string()
}

fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
        .display()
        .to_string()
}

/// The official Rust runtime (`lambda_http` on `lambda_runtime`), built by
/// Stratus from the example's Cargo package.
#[tokio::test]
async fn rust_lambda_runtime_function_built_by_stratus_answers_a_route() {
    let s = TestServer::start_full(
        &format!("data_dir = {:?}", shared_data_dir()),
        &format!(
            r#"
[functions.rust]
runtime = "provided.al2023"
code = {code:?}
[apis.web]
type = "http"
[apis.web.routes]
"GET /rust/{{name}}" = {{ function = "rust" }}
[apis.shop]
type = "rest"
base_path = "/shop"
stages = {{ prod = {{}} }}
[apis.shop.routes]
"GET /rust/{{name}}" = {{ function = "rust" }}
"#,
            code = repo("examples/hello/functions/hello-rust"),
        ),
        &[],
    )
    .await;
    for path in ["/rust/ferris", "/shop/prod/rust/ferris"] {
        let r = client().get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["message"], "hello, ferris");
        assert_eq!(v["runtime"], "rust");
        assert_eq!(v["function"], "rust");
        assert_eq!(v["requestId"].as_str().unwrap().len(), 36);
    }
}

/// AWS's own Python runtime client as the bootstrap of a provided function.
#[tokio::test]
async fn awslambdaric_as_bootstrap_answers_a_route() {
    let python = std::process::Command::new("python3")
        .args(["-c", "import sys, awslambdaric; print(sys.executable)"])
        .output()
        .unwrap();
    assert!(
        python.status.success(),
        "awslambdaric is not installed (.ci/run installs it): {}",
        String::from_utf8_lossy(&python.stderr)
    );
    let exe = String::from_utf8(python.stdout).unwrap().trim().to_owned();
    let s = TestServer::start_with_files(
        r#"
[functions.ric]
runtime = "provided.al2023"
code = "ric"
[apis.web]
type = "http"
[apis.web.routes]
"GET /ric/{name}" = { function = "ric" }
"#,
        &[
            ("ric/bootstrap", &format!("#!/bin/sh\nexec {exe} -m awslambdaric app.handler\n")),
            (
                "ric/app.py",
                "def handler(event, context):\n    return {'statusCode': 200, 'body': 'ric says hi to ' + event['pathParameters']['name'] + ' in ' + context.function_name}\n",
            ),
        ],
    )
    .await;
    let r = client().get(s.url("/ric/guido")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ric says hi to guido in ric");
}

/// A route that stops waiting (its integration timeout) must not cost the
/// function its environment: the call finishes and the environment returns.
#[tokio::test]
async fn an_integration_timeout_does_not_leak_the_environment() {
    let s = TestServer::start_with_files(
        r#"
[functions.slow]
runtime = "python3"
handler = "app.handler"
code = "slow"
concurrency = 1
timeout = 5
[apis.shop]
type = "rest"
[apis.shop.routes]
"GET /slow" = { function = "slow", timeout_ms = 200 }
"GET /fast" = { function = "slow" }
"#,
        &[(
            "slow/app.py",
            "import time\ndef handler(event, context):\n    if event['path'] == '/slow':\n        time.sleep(1)\n    return {'statusCode': 200, 'body': 'done'}\n",
        )],
    )
    .await;
    let r = client().get(s.url("/slow")).send().await.unwrap();
    assert_eq!(r.status(), 504);
    // The only environment is still busy with the slow call: a throttled
    // Lambda is a 500 to a REST API's client, as on AWS...
    let r = client().get(s.url("/fast")).send().await.unwrap();
    assert_eq!(r.status(), 500);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"message":"Internal server error"}"#
    );
    // ...and comes back once it is done.
    let mut answered = None;
    for _ in 0..50 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let r = client().get(s.url("/fast")).send().await.unwrap();
        if r.status() == 200 {
            answered = Some(r.text().await.unwrap());
            break;
        }
    }
    assert_eq!(answered.as_deref(), Some("done"));
}
