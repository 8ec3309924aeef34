//! TLS on the public listener and `@connections` where AWS's execute-api
//! domain has it (issue 24, point 8): a WebSocket API whose `$connect`
//! function asks another function (an async Invoke) to post to the new
//! connection through `https://{domainName}/{stage}`, as AWS's examples
//! build the callback URL, with boto3 and with the AWS SDK for JavaScript
//! v3, neither told where Stratus is nor which CA to trust; HTTPS from a
//! client outside with the local CA; bad bytes and stalled handshakes.

use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use stratus_testkit::write_file;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::Serving;

const PORTS: [&str; 4] = ["--port", "0", "--admin-listen", "127.0.0.1:0"];

/// Two WebSocket APIs (stages `py` and `node`), each with a `$connect`
/// function that hands its connection to a poster function.
const TEMPLATE: &str = r#"AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    Timeout: 15
Resources:
  PyChat:
    Type: AWS::ApiGatewayV2::Api
    Properties: { Name: pychat, ProtocolType: WEBSOCKET, RouteSelectionExpression: "$request.body.action" }
  PyConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref PyChat
      RouteKey: $connect
      Target: !Sub "integrations/${PyConnectInteg}"
  PyConnectInteg:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref PyChat
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${PyConnect.Arn}/invocations"
  PyStage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: { ApiId: !Ref PyChat, StageName: py, AutoDeploy: true }
  PyConnect:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: py/
      Handler: connect.handler
      Runtime: python3.12
      Environment: { Variables: { POSTER: !Ref PyPoster } }
  PyPoster:
    Type: AWS::Serverless::Function
    Properties: { CodeUri: py/, Handler: poster.handler, Runtime: python3.12 }
  NodeChat:
    Type: AWS::ApiGatewayV2::Api
    Properties: { Name: nodechat, ProtocolType: WEBSOCKET, RouteSelectionExpression: "$request.body.action" }
  NodeConnectRoute:
    Type: AWS::ApiGatewayV2::Route
    Properties:
      ApiId: !Ref NodeChat
      RouteKey: $connect
      Target: !Sub "integrations/${NodeConnectInteg}"
  NodeConnectInteg:
    Type: AWS::ApiGatewayV2::Integration
    Properties:
      ApiId: !Ref NodeChat
      IntegrationType: AWS_PROXY
      IntegrationUri: !Sub "arn:aws:apigateway:${AWS::Region}:lambda:path/2015-03-31/functions/${NodeConnect.Arn}/invocations"
  NodeStage:
    Type: AWS::ApiGatewayV2::Stage
    Properties: { ApiId: !Ref NodeChat, StageName: node, AutoDeploy: true }
  NodeConnect:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: node/
      Handler: connect.handler
      Runtime: nodejs20.x
      Environment: { Variables: { POSTER: !Ref NodePoster } }
  NodePoster:
    Type: AWS::Serverless::Function
    Properties: { CodeUri: node/, Handler: poster.handler, Runtime: nodejs20.x }
"#;

const PY_CONNECT: &str = r#"
import json, os, boto3
lam = boto3.client("lambda")
def handler(event, context):
    rc = event["requestContext"]
    lam.invoke(FunctionName=os.environ["POSTER"], InvocationType="Event", Payload=json.dumps({
        "endpoint": f"https://{rc['domainName']}/{rc['stage']}", "id": rc["connectionId"],
    }))
    return {"statusCode": 200}
"#;

/// Posts until the connection is open: the async Invoke may run before
/// `$connect` has answered, when the connection is not yet postable (on AWS
/// too).
const PY_POSTER: &str = r#"
import json, time, boto3
def handler(event, context):
    api = boto3.client("apigatewaymanagementapi", endpoint_url=event["endpoint"])
    for _ in range(100):
        try:
            api.post_to_connection(ConnectionId=event["id"], Data=json.dumps({
                "from": "boto3", "id": event["id"], "endpoint": event["endpoint"],
            }).encode())
            info = api.get_connection(ConnectionId=event["id"])
            print("posted; connected at", info["ConnectedAt"].isoformat())
            return
        except api.exceptions.GoneException:
            time.sleep(0.1)
    raise Exception("the connection never opened")
"#;

const NODE_CONNECT: &str = r#"
const { LambdaClient, InvokeCommand } = require("@aws-sdk/client-lambda");
const lambda = new LambdaClient({});
exports.handler = async (event) => {
  const rc = event.requestContext;
  await lambda.send(new InvokeCommand({
    FunctionName: process.env.POSTER,
    InvocationType: "Event",
    Payload: JSON.stringify({ endpoint: `https://${rc.domainName}/${rc.stage}`, id: rc.connectionId }),
  }));
  return { statusCode: 200 };
};
"#;

const NODE_POSTER: &str = r#"
const { ApiGatewayManagementApiClient, PostToConnectionCommand } = require("@aws-sdk/client-apigatewaymanagementapi");
exports.handler = async (event) => {
  const api = new ApiGatewayManagementApiClient({ endpoint: event.endpoint });
  const Data = JSON.stringify({ from: "sdk-js-v3", id: event.id, endpoint: event.endpoint });
  for (let i = 0; i < 100; i++) {
    try {
      await api.send(new PostToConnectionCommand({ ConnectionId: event.id, Data }));
      return;
    } catch (e) {
      if (e.name !== "GoneException") throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error("the connection never opened");
};
"#;

/// The first message `url`'s WebSocket receives, as JSON.
async fn first_message(url: &str) -> Value {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
        .await
        .unwrap_or_else(|_| panic!("{url}: nothing was posted to the connection"))
        .unwrap()
        .unwrap();
    serde_json::from_str(msg.to_text().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_functions_post_back_through_https_domain_name_and_stage() {
    let Some(modules) = crate::support::npm_installed(
        "sdk-js",
        &[
            "@aws-sdk/client-lambda@3.1178.0",
            "@aws-sdk/client-apigatewaymanagementapi@3.1178.0",
        ],
        "the AWS SDK for JavaScript v3 callback",
    ) else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("callbacks");
    write_file(&dir, "template.yaml", TEMPLATE);
    write_file(&dir, "py/connect.py", PY_CONNECT);
    write_file(&dir, "py/poster.py", PY_POSTER);
    write_file(&dir, "node/connect.js", NODE_CONNECT);
    write_file(&dir, "node/poster.js", NODE_POSTER);
    std::os::unix::fs::symlink(&modules, dir.join("node/node_modules")).unwrap();
    let s = Serving::start_with(&dir, &PORTS, &[]);
    let gateway = s.gateway;
    for (stage, sdk) in [("py", "boto3"), ("node", "sdk-js-v3")] {
        let v = first_message(&format!("ws://{gateway}/{stage}")).await;
        assert_eq!(v["from"], sdk, "{v}");
        assert_eq!(v["endpoint"], format!("https://{gateway}/{stage}"), "{v}");
        assert!(v["id"].as_str().is_some_and(|id| !id.is_empty()), "{v}");
    }
    // A stage that is not the connection's does not reach it: 410, as
    // AWS answers a connection id it does not know there.
    let ca = dir.join(".stratus/tls/ca.pem");
    let out = https(
        &ca,
        &format!("https://{gateway}/node/@connections/nope"),
        "POST",
    );
    assert!(out.starts_with("410 "), "{out}");
    // A message past 128 KB is refused at once, as PostToConnection does.
    let r = reqwest::Client::new()
        .post(format!("http://{gateway}/node/@connections/nope"))
        .body(vec![b'x'; 128 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let _ = std::fs::remove_file(dir.join("node/node_modules"));
}

/// A request over HTTPS by Python's own client, trusting `ca` only:
/// `"STATUS BODY"`.
fn https(ca: &Path, url: &str, method: &str) -> String {
    let script = r#"
import ssl, sys, urllib.request, urllib.error
ctx = ssl.create_default_context(cafile=sys.argv[1])
req = urllib.request.Request(sys.argv[2], method=sys.argv[3], data=b"{}" if sys.argv[3] == "POST" else None)
try:
    r = urllib.request.urlopen(req, context=ctx, timeout=10)
    print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
"#;
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(ca)
        .args([url, method])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

const PLAIN: &str = r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
header_timeout = 2

[functions.hello]
runtime = "python3.12"
handler = "app.handler"
code = "hello"

[apis.web]
type = "rest"
stages = { prod = {} }

[apis.web.routes]
"GET /hello" = { function = "hello" }
"#;

const HELLO: &str = r#"
def handler(event, context):
    return {"statusCode": 200, "body": "hello from " + event["requestContext"]["stage"]}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn one_port_answers_https_and_http_and_bad_handshakes_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "stratus.toml", PLAIN);
    write_file(dir.path(), "hello/app.py", HELLO);
    let s = Serving::start(dir.path());
    let ca = dir.path().join(".stratus/tls/ca.pem");
    let key = dir.path().join(".stratus/tls/ca-key.pem");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the CA's key is readable by others");
    }
    // HTTPS by name and by address, trusting the local CA only; then plain
    // HTTP on the same port.
    let gw = s.gateway;
    for host in [format!("localhost:{}", gw.port()), gw.to_string()] {
        let out = https(&ca, &format!("https://{host}/prod/hello"), "GET");
        assert!(out.starts_with("200 hello from"), "{host}: {out}");
    }
    let r = reqwest::get(s.url("/prod/hello")).await.unwrap();
    assert_eq!(r.status(), 200);
    // A client that does not trust the CA refuses the certificate.
    let script = "import ssl, sys, urllib.request\ntry:\n    urllib.request.urlopen(sys.argv[1], timeout=10)\nexcept Exception as e:\n    print(type(e).__name__, e)";
    let out = std::process::Command::new("python3")
        .args(["-c", script, &format!("https://{gw}/prod/hello")])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("CERTIFICATE_VERIFY_FAILED"), "{said}");

    // Garbage after a handshake's first byte: closed, no HTTP answer.
    let mut sock = tokio::net::TcpStream::connect(gw).await.unwrap();
    sock.write_all(b"\x16\x03\x01\x00\x05hello garbage that is not TLS\r\n\r\n")
        .await
        .unwrap();
    assert_closed(&mut sock, Duration::from_secs(5)).await;
    // A handshake that stops after one byte, and a silent connection:
    // both closed once the header timeout (2 s) has passed.
    let mut stalled = tokio::net::TcpStream::connect(gw).await.unwrap();
    stalled.write_all(b"\x16").await.unwrap();
    let mut silent = tokio::net::TcpStream::connect(gw).await.unwrap();
    assert_closed(&mut stalled, Duration::from_secs(6)).await;
    assert_closed(&mut silent, Duration::from_secs(6)).await;
    // And the server goes on answering both ways.
    let out = https(&ca, &format!("https://{gw}/prod/hello"), "GET");
    assert!(out.starts_with("200 "), "{out}");
    let r = reqwest::get(s.url("/prod/hello")).await.unwrap();
    assert_eq!(r.status(), 200);
    // The CA is kept across restarts (what trusts it keeps trusting it).
    let before = std::fs::read(&ca).unwrap();
    drop(s);
    let s = Serving::start(dir.path());
    assert_eq!(std::fs::read(&ca).unwrap(), before);
    let out = https(&ca, &format!("https://{}/prod/hello", s.gateway), "GET");
    assert!(out.starts_with("200 "), "{out}");
}

/// The server closes `sock` within `limit` without an HTTP answer (a TLS
/// alert may come first).
async fn assert_closed(sock: &mut tokio::net::TcpStream, limit: Duration) {
    let mut got = Vec::new();
    let mut buf = [0u8; 256];
    loop {
        match tokio::time::timeout(limit, sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => panic!("the connection was left open"),
        }
    }
    assert!(
        !got.starts_with(b"HTTP/"),
        "answered {:?}",
        String::from_utf8_lossy(&got)
    );
}
