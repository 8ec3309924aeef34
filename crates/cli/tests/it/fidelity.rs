//! AWS fidelity as unmodified third-party code sees it: every event type
//! Stratus emits is parsed by Powertools for AWS Lambda's strict pydantic
//! models inside a real function, and the details frameworks rely on
//! (which keys exist, header case, binary bodies) match AWS.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use stratus_testkit::{raw_http, TestServer};
use tokio_tungstenite::tungstenite::Message;

/// Parses each event with the Powertools model for its kind and answers
/// what it found; WebSocket events are appended to EVENT_LOG.
const STRICT_PY: &str = r#"
import json, os
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import (
    APIGatewayProxyEventModel, APIGatewayProxyEventV2Model,
    APIGatewayWebSocketConnectEventModel, APIGatewayWebSocketMessageEventModel,
    APIGatewayWebSocketDisconnectEventModel)

def check(event, model):
    try:
        parse(event=event, model=model)
        return "ok"
    except Exception as e:
        return str(e)

def handler(event, context):
    rc = event["requestContext"]
    kind = rc.get("eventType")
    if kind:
        model = {"CONNECT": APIGatewayWebSocketConnectEventModel,
                 "MESSAGE": APIGatewayWebSocketMessageEventModel,
                 "DISCONNECT": APIGatewayWebSocketDisconnectEventModel}[kind]
        with open(os.environ["EVENT_LOG"], "a") as f:
            f.write(json.dumps({"kind": kind, "parsed": check(event, model)}) + "\n")
        return {"statusCode": 200, "body": json.dumps({"parsed": check(event, model)})}
    if event.get("version") == "2.0":
        facts = {"parsed": check(event, APIGatewayProxyEventV2Model),
                 "keys": sorted(event.keys()), "userAgent": rc["http"]["userAgent"]}
    else:
        facts = {"parsed": check(event, APIGatewayProxyEventModel),
                 "headers": sorted(event["headers"].keys()),
                 "multi": sorted(event["multiValueHeaders"].keys()),
                 "extendedRequestId": rc.get("extendedRequestId"),
                 "identity": sorted(rc["identity"].keys()),
                 "b64": event["isBase64Encoded"], "body": event["body"]}
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(facts)}
"#;

async fn strict_project(log: &std::path::Path) -> TestServer {
    TestServer::start_with_files(
        &format!(
            r#"
[functions.strict]
runtime = "python3"
handler = "app.handler"
code = "strict"
timeout = 10
environment = {{ EVENT_LOG = {log:?} }}

[apis.web]
type = "http"
base_path = "/web"
[apis.web.routes]
"GET /items/{{id}}" = {{ function = "strict" }}

[apis.shop]
type = "rest"
base_path = "/shop"
binary_media_types = ["image/png"]
[apis.shop.routes]
"ANY /items/{{id}}" = {{ function = "strict" }}

[apis.chat]
type = "websocket"
base_path = "/chat"
[apis.chat.routes]
"$connect" = {{ function = "strict" }}
"$disconnect" = {{ function = "strict" }}
"$default" = {{ function = "strict", respond = true }}
"#,
            log = log.display().to_string()
        ),
        &[("strict/app.py", STRICT_PY)],
    )
    .await
}

#[tokio::test]
async fn http_api_events_have_exactly_awss_keys_and_parse_strictly() {
    let dir = tempfile::tempdir().unwrap();
    let s = strict_project(&dir.path().join("events.jsonl")).await;
    // No User-Agent, no query, no stage variables, no body.
    let (head, body) = raw_http(s.gateway, "GET /web/items/7 HTTP/1.1", b"").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let facts: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(facts["parsed"], "ok", "{facts}");
    assert_eq!(facts["userAgent"], "");
    assert_eq!(
        facts["keys"],
        json!([
            "headers",
            "isBase64Encoded",
            "pathParameters",
            "rawPath",
            "rawQueryString",
            "requestContext",
            "routeKey",
            "version"
        ]),
        "no httpMethod/type/methodArn/resource, no empty stageVariables"
    );
}

#[tokio::test]
async fn rest_api_events_keep_header_case_and_awss_null_fields() {
    let dir = tempfile::tempdir().unwrap();
    let s = strict_project(&dir.path().join("events.jsonl")).await;
    let (head, body) = raw_http(
        s.gateway,
        "GET /shop/items/7 HTTP/1.1\r\nX-Mixed-Case: yes\r\nContent-Type: text/plain\r\nUser-Agent: legacy/1.0",
        b"",
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let facts: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(facts["parsed"], "ok", "{facts}");
    for key in ["headers", "multi"] {
        let names = facts[key].as_array().unwrap();
        for n in ["X-Mixed-Case", "Content-Type", "User-Agent", "Host"] {
            assert!(names.contains(&json!(n)), "{key} lacks {n}: {names:?}");
        }
    }
    assert!(facts["extendedRequestId"].is_string(), "{facts}");
    let identity = facts["identity"].as_array().unwrap();
    for k in [
        "principalOrgId",
        "cognitoIdentityPoolId",
        "accessKey",
        "userArn",
        "user",
        "caller",
    ] {
        assert!(identity.contains(&json!(k)), "identity lacks {k}");
    }
}

#[tokio::test]
async fn websocket_events_parse_with_powertools_models() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("events.jsonl");
    let s = strict_project(&log).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/chat", s.gateway))
        .await
        .unwrap();
    ws.send(Message::text("hello")).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(answer.into_text().unwrap().as_str(), r#"{"parsed": "ok"}"#);
    ws.close(None).await.unwrap();
    let all_three = stratus_testkit::eventually(Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("DISCONNECT"))
    })
    .await;
    assert!(all_three);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["CONNECT", "MESSAGE", "DISCONNECT"]);
    for l in &lines {
        assert_eq!(l["parsed"], "ok", "{l}");
    }
}

/// Answers base64 with the content type it is asked for.
const BINARY_PY: &str = r#"
import base64, json
def handler(event, context):
    q = event.get("queryStringParameters") or {}
    if q.get("echo"):
        return {"statusCode": 200, "body": json.dumps({"b64": event["isBase64Encoded"], "body": event["body"]})}
    return {"statusCode": 200, "headers": {"content-type": q.get("type", "application/octet-stream")},
            "isBase64Encoded": True, "body": base64.b64encode(b"\x89PNG\x00\x01").decode()}
"#;

#[tokio::test]
async fn rest_binary_media_types_decide_what_is_base64() {
    let s = TestServer::start_with_files(
        r#"
[functions.bin]
runtime = "python3"
handler = "app.handler"
code = "bin"

[apis.shop]
type = "rest"
binary_media_types = ["image/png"]
[apis.shop.routes]
"ANY /file" = { function = "bin" }
"#,
        &[("bin/app.py", BINARY_PY)],
    )
    .await;
    let client = reqwest::Client::new();
    let get = |accept: &'static str, ty: &'static str| {
        client
            .get(s.url(&format!("/file?type={ty}")))
            .header("accept", accept)
            .send()
    };
    let png = b"\x89PNG\x00\x01".to_vec();
    // Accept names a binary media type: decoded.
    let r = get("image/png", "application/octet-stream").await.unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), png);
    // The response's content type is one: decoded.
    let r = get("text/html", "image/png").await.unwrap();
    assert_eq!(r.bytes().await.unwrap().to_vec(), png);
    // Neither: the base64 text itself, as AWS answers.
    let r = get("text/html", "application/octet-stream").await.unwrap();
    assert_eq!(r.text().await.unwrap(), "iVBORwAB");
    // Request bodies: base64 in the event only for binary media types.
    let post = |ty: &'static str| {
        client
            .post(s.url("/file?echo=1"))
            .header("content-type", ty)
            .body("plain words")
            .send()
    };
    let v: Value = post("image/png").await.unwrap().json().await.unwrap();
    assert_eq!(v, json!({"b64": true, "body": "cGxhaW4gd29yZHM="}));
    let v: Value = post("application/octet-stream")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"b64": false, "body": "plain words"}));
}

/// Node.js: Powertools for AWS Lambda (TypeScript)'s zod schemas, installed
/// from package.json by Stratus itself, parse HTTP (2.0) and REST (1.0)
/// events strictly. (Its WebSocket schema requires `type` and `methodArn`,
/// authorizer fields that AWS's MESSAGE and DISCONNECT events do not carry,
/// so it is not used; Python Powertools' WebSocket models are, above.)
const STRICT_JS: &str = r#"
const schemas = require('@aws-lambda-powertools/parser/schemas');
exports.handler = async (event) => {
  const schema = event.version === '2.0' ? schemas.APIGatewayProxyEventV2Schema
    : schemas.APIGatewayProxyEventSchema;
  const r = schema.safeParse(event);
  const parsed = r.success ? 'ok' : JSON.stringify(r.error.issues);
  return { statusCode: 200, body: JSON.stringify({ parsed }) };
};
"#;

#[tokio::test]
async fn http_and_rest_events_parse_with_powertools_for_typescript() {
    let s = TestServer::start_with_files(
        r#"
[functions.strict]
runtime = "nodejs"
handler = "index.handler"
code = "strict"
timeout = 10

[apis.web]
type = "http"
base_path = "/web"
[apis.web.routes]
"GET /items/{id}" = { function = "strict" }

[apis.shop]
type = "rest"
base_path = "/shop"
[apis.shop.routes]
"ANY /items/{id}" = { function = "strict" }

"#,
        &[
            ("strict/index.js", STRICT_JS),
            (
                "strict/package.json",
                r#"{"name": "strict", "version": "1.0.0", "dependencies": {"@aws-lambda-powertools/parser": "2.35.0", "zod": "4.6.7"}}"#,
            ),
        ],
    )
    .await;
    for head in [
        "GET /web/items/7 HTTP/1.1",
        "GET /shop/items/7?a=1 HTTP/1.1\r\nX-Mixed-Case: yes",
    ] {
        let (status, body) = raw_http(s.gateway, head, b"").await;
        assert!(status.starts_with("HTTP/1.1 200"), "{status}");
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["parsed"], "ok", "{head}: {v}");
    }
}
