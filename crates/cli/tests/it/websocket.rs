//! WebSocket APIs with real WebSocket clients, real function processes,
//! and SigV4-signed `@connections` calls (the `aws-sigv4` crate and boto3).

use std::path::PathBuf;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use stratus_testkit::TestServer;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Logs every event to EVENT_LOG, then answers by route.
const WS_PY: &str = r#"
import json, os
LOG = os.environ["EVENT_LOG"]
def handler(event, context):
    rc = event["requestContext"]
    with open(LOG, "a") as f:
        f.write(json.dumps(event) + "\n")
    route = rc["routeKey"]
    if route == "$connect":
        q = event.get("queryStringParameters") or {}
        return {"statusCode": int(q.get("status", "200"))}
    if route == "$disconnect":
        return {"statusCode": 200}
    if route == "quiet":
        return {"statusCode": 200, "body": "must not be sent"}
    if route == "boom":
        raise Exception("boom")
    return {"statusCode": 200, "body": json.dumps({"route": route, "body": event.get("body"),
            "b64": event.get("isBase64Encoded"), "connectionId": rc["connectionId"], "eventType": rc["eventType"]})}
"#;

struct Chat {
    s: TestServer,
    log: PathBuf,
}

impl Chat {
    fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.s.gateway)
    }

    /// Every event the function received, in order.
    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Waits (bounded) until an event matches.
    async fn wait_event(&self, what: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..500 {
            if let Some(e) = self.events().into_iter().find(|e| what(e)) {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("no such event; got {:#?}", self.events());
    }
}

async fn chat(extra_api: &str, idle: u32) -> Chat {
    let dir = tempfile::tempdir().unwrap().keep();
    let log = dir.join("events.jsonl");
    let s = TestServer::start_with_files(
        &format!(
            r#"
[functions.ws]
runtime = "python3"
handler = "app.handler"
code = "ws"
environment = {{ EVENT_LOG = {log:?} }}

[apis.chat]
type = "websocket"
base_path = "/chat"
stages = {{ prod = {{ variables = {{ room = "main" }} }} }}
idle_timeout = {idle}
[apis.chat.routes]
"$connect" = {{ function = "ws" }}
"$disconnect" = {{ function = "ws" }}
"$default" = {{ function = "ws", respond = true }}
"echo" = {{ function = "ws", respond = true }}
"quiet" = {{ function = "ws" }}
"boom" = {{ function = "ws", respond = true }}

[apis.nested]
type = "websocket"
base_path = "/nested"
route_selection = "$request.body.msg.type"
[apis.nested.routes]
"ping" = {{ function = "ws", respond = true }}

[apis.tpl]
type = "websocket"
base_path = "/tpl"
route_selection = "${{request.body.svc}}/${{request.body.op}}"
[apis.tpl.routes]
"chat/join" = {{ function = "ws", respond = true }}
"$default" = {{ function = "ws", respond = true }}
{extra_api}
"#,
            log = log.display().to_string(),
        ),
        &[("ws/app.py", WS_PY)],
    )
    .await;
    Chat { s, log }
}

async fn connect(url: &str) -> Ws {
    tokio_tungstenite::connect_async(url)
        .await
        .expect("websocket connect")
        .0
}

async fn recv_text(ws: &mut Ws) -> String {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("stream open")
            .expect("no error");
        match msg {
            Message::Text(t) => return t.to_string(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected text, got {other:?}"),
        }
    }
}

async fn recv_json(ws: &mut Ws) -> Value {
    serde_json::from_str(&recv_text(ws).await).unwrap()
}

/// The close frame the server sends, if any, within 10 s.
async fn closed_with(ws: &mut Ws) -> Option<(u16, String)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => panic!("not closed within 10 s"),
            Ok(Some(Ok(Message::Close(f)))) => {
                return f.map(|f| (u16::from(f.code), f.reason.to_string()))
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(_))) | Ok(None) => return None,
        }
    }
}

#[tokio::test]
async fn connect_is_refused_with_the_status_connect_returns() {
    let c = chat("", 600).await;
    let refused = tokio_tungstenite::connect_async(c.ws_url("/chat/prod?status=403")).await;
    match refused {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 403),
        other => panic!("expected a 403 refusal, got {other:?}"),
    }
    let refused = tokio_tungstenite::connect_async(c.ws_url("/chat/prod?status=401")).await;
    assert!(matches!(refused, Err(tungstenite::Error::Http(r)) if r.status() == 401));

    let _ok = connect(&c.ws_url("/chat/prod?status=200&name=ann")).await;
    let e = c
        .wait_event(|e| {
            e["requestContext"]["eventType"] == "CONNECT"
                && e["queryStringParameters"]["status"] == "200"
        })
        .await;
    let rc = &e["requestContext"];
    assert_eq!(rc["routeKey"], "$connect");
    assert_eq!(rc["stage"], "prod");
    assert_eq!(rc["apiId"], "chat");
    assert_eq!(rc["messageDirection"], "IN");
    assert_eq!(rc["identity"]["sourceIp"], "127.0.0.1");
    assert_eq!(e["queryStringParameters"]["name"], "ann");
    assert_eq!(e["stageVariables"]["room"], "main");
    assert!(e["headers"]["sec-websocket-key"].is_string(), "{e}");
    let id = rc["connectionId"].as_str().unwrap();
    assert!(
        id.len() >= 16
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "{id}"
    );
    // Not an upgrade: 426.
    let r = reqwest::get(c.s.url("/chat/prod")).await.unwrap();
    assert_eq!(r.status(), 426);
}

#[tokio::test]
async fn messages_are_routed_by_their_content() {
    let c = chat("", 600).await;
    let mut ws = connect(&c.ws_url("/chat/prod")).await;
    ws.send(Message::text(r#"{"action":"echo","x":1}"#))
        .await
        .unwrap();
    let v = recv_json(&mut ws).await;
    assert_eq!(v["route"], "echo");
    assert_eq!(v["eventType"], "MESSAGE");
    assert_eq!(v["body"], r#"{"action":"echo","x":1}"#);
    // No such route, a missing path, and non-JSON: all $default.
    for msg in [
        r#"{"action":"nope"}"#,
        r#"{"other":1}"#,
        "plain text, not JSON",
    ] {
        ws.send(Message::text(msg)).await.unwrap();
        let v = recv_json(&mut ws).await;
        assert_eq!(v["route"], "$default", "{msg}");
        assert_eq!(v["body"], msg);
    }
    // Binary frames arrive base64-encoded at $default.
    ws.send(Message::binary(vec![0u8, 1, 2, 255]))
        .await
        .unwrap();
    let v = recv_json(&mut ws).await;
    assert_eq!(v["route"], "$default");
    assert_eq!(v["b64"], true);
    assert_eq!(v["body"], "AAEC/w==");
    // A route without respond = true sends nothing back; the next answer is the echo's.
    ws.send(Message::text(r#"{"action":"quiet"}"#))
        .await
        .unwrap();
    ws.send(Message::text(r#"{"action":"echo","after":"quiet"}"#))
        .await
        .unwrap();
    let v = recv_json(&mut ws).await;
    assert_eq!(v["route"], "echo");
    c.wait_event(|e| e["requestContext"]["routeKey"] == "quiet")
        .await;
    // A failing function: the client hears about it.
    ws.send(Message::text(r#"{"action":"boom"}"#))
        .await
        .unwrap();
    let v = recv_json(&mut ws).await;
    assert_eq!(v["message"], "Internal server error");
    assert!(v["connectionId"].is_string() && v["requestId"].is_string());

    // Nested paths and templates.
    let mut nested = connect(&c.ws_url("/nested")).await;
    nested
        .send(Message::text(r#"{"msg":{"type":"ping"}}"#))
        .await
        .unwrap();
    assert_eq!(recv_json(&mut nested).await["route"], "ping");
    let mut tpl = connect(&c.ws_url("/tpl")).await;
    tpl.send(Message::text(r#"{"svc":"chat","op":"join"}"#))
        .await
        .unwrap();
    assert_eq!(recv_json(&mut tpl).await["route"], "chat/join");
    tpl.send(Message::text(r#"{"svc":"chat","op":"leave"}"#))
        .await
        .unwrap();
    assert_eq!(recv_json(&mut tpl).await["route"], "$default");
}

#[tokio::test]
async fn no_match_and_no_default_gets_forbidden_and_stays_connected() {
    let c = chat("", 600).await;
    let mut ws = connect(&c.ws_url("/nested")).await;
    ws.send(Message::text(r#"{"msg":{"type":"other"}}"#))
        .await
        .unwrap();
    let v = recv_json(&mut ws).await;
    assert_eq!(v["message"], "Forbidden");
    assert!(v["connectionId"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(v["requestId"].as_str().is_some_and(|s| !s.is_empty()));
    // Still connected.
    ws.send(Message::text(r#"{"msg":{"type":"ping"}}"#))
        .await
        .unwrap();
    assert_eq!(recv_json(&mut ws).await["route"], "ping");
}

/// A request to the management API, SigV4-signed as an SDK signs it.
fn signed(method: &str, url: &str, body: &[u8]) -> reqwest::RequestBuilder {
    let mut builder = reqwest::Client::new()
        .request(method.parse().unwrap(), url)
        .body(body.to_vec());
    for (k, v) in stratus_testkit::sigv4_headers(method, url, body) {
        builder = builder.header(k, v);
    }
    builder
}

fn connection_url(c: &Chat, id: &str) -> String {
    c.s.admin_url(&format!("/ws/chat/prod/@connections/{id}"))
}

async fn connection_id(c: &Chat, ws: &mut Ws) -> String {
    ws.send(Message::text(r#"{"action":"echo"}"#))
        .await
        .unwrap();
    let v = recv_json(ws).await;
    let _ = c;
    v["connectionId"].as_str().unwrap().to_owned()
}

/// `[server.credentials]`: every admin API then checks signatures (the
/// defaults the tests' `signed` helper signs with).
const STRICT: &str = "[server.credentials]\naccess_key_id = \"stratus\"\nsecret_access_key = \"stratus-local-secret\"\n";

#[tokio::test]
async fn connections_api_posts_describes_and_deletes_with_sigv4() {
    let c = chat(STRICT, 600).await;
    let mut ws = connect(&c.ws_url("/chat/prod")).await;
    let id = connection_id(&c, &mut ws).await;
    let url = connection_url(&c, &id);

    let r = signed("POST", &url, b"hello from the backend")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(recv_text(&mut ws).await, "hello from the backend");

    let r = signed("GET", &url, b"").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["identity"]["sourceIp"], "127.0.0.1");
    assert!(v["connectedAt"].as_str().unwrap().ends_with('Z'));
    assert!(v["lastActiveAt"].is_string());

    // Unsigned or badly signed: refused.
    let r = reqwest::Client::new()
        .post(&url)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = signed("POST", &url, b"signed body")
        .body("another body")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let r = signed("DELETE", &url, b"").send().await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(closed_with(&mut ws).await.map(|c| c.0), Some(1000));
    let d = c
        .wait_event(|e| {
            e["requestContext"]["eventType"] == "DISCONNECT"
                && e["requestContext"]["connectionId"] == id.as_str()
        })
        .await;
    assert_eq!(d["requestContext"]["routeKey"], "$disconnect");
    assert_eq!(d["requestContext"]["disconnectStatusCode"], 1000);

    // Gone afterwards, and for ids that never were.
    for gone in [url.clone(), connection_url(&c, "never-was")] {
        let r = signed("POST", &gone, b"late").send().await.unwrap();
        assert_eq!(r.status(), 410);
        assert_eq!(r.headers()["x-amzn-errortype"], "GoneException");
        let r = signed("GET", &gone, b"").send().await.unwrap();
        assert_eq!(r.status(), 410);
    }
}

/// boto3's `apigatewaymanagementapi` client with the credentials `key` /
/// `secret`: what it got, as JSON (`refused` holds the error code of a
/// refusal).
async fn boto3_connections(c: &Chat, id: &str, key: &str, secret: &str) -> Value {
    let endpoint = c.s.admin_url("/ws/chat/prod");
    let script = format!(
        r#"
import json, boto3
c = boto3.client('apigatewaymanagementapi', endpoint_url='{endpoint}', region_name='us-east-1',
                 aws_access_key_id='{key}', aws_secret_access_key='{secret}')
try:
    c.post_to_connection(ConnectionId='{id}', Data=b'from boto3')
except c.exceptions.ClientError as e:
    print(json.dumps({{'refused': e.response['Error']['Code']}}))
    raise SystemExit
info = c.get_connection(ConnectionId='{id}')
try:
    c.post_to_connection(ConnectionId='nope', Data=b'x')
    gone = None
except c.exceptions.GoneException as e:
    gone = e.response['Error']['Code']
print(json.dumps({{'ip': info['Identity']['SourceIp'], 'gone': gone}}))
"#
    );
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn boto3_apigatewaymanagementapi_talks_to_connections() {
    // No [server.credentials]: a developer's usual credentials (here
    // LocalStack's test/test) are accepted, as LocalStack accepts them.
    let c = chat("", 600).await;
    let mut ws = connect(&c.ws_url("/chat/prod")).await;
    let id = connection_id(&c, &mut ws).await;
    let v = boto3_connections(&c, &id, "test", "test").await;
    assert_eq!(v, json!({"ip": "127.0.0.1", "gone": "GoneException"}));
    assert_eq!(recv_text(&mut ws).await, "from boto3");
}

#[tokio::test]
async fn configured_credentials_are_required_by_connections() {
    let c = chat(STRICT, 600).await;
    let mut ws = connect(&c.ws_url("/chat/prod")).await;
    let id = connection_id(&c, &mut ws).await;
    let v = boto3_connections(&c, &id, "test", "test").await;
    assert_eq!(v, json!({"refused": "ForbiddenException"}));
    let v = boto3_connections(&c, &id, "stratus", "stratus-local-secret").await;
    assert_eq!(v, json!({"ip": "127.0.0.1", "gone": "GoneException"}));
    assert_eq!(recv_text(&mut ws).await, "from boto3");
}

#[tokio::test]
async fn disconnect_runs_after_client_close_with_its_code() {
    let c = chat("", 600).await;
    let mut ws = connect(&c.ws_url("/chat/prod")).await;
    let id = connection_id(&c, &mut ws).await;
    ws.close(Some(tungstenite::protocol::CloseFrame {
        code: CloseCode::Away,
        reason: "bye".into(),
    }))
    .await
    .unwrap();
    let d = c
        .wait_event(|e| {
            e["requestContext"]["eventType"] == "DISCONNECT"
                && e["requestContext"]["connectionId"] == id.as_str()
        })
        .await;
    assert_eq!(d["requestContext"]["disconnectStatusCode"], 1001);
    assert_eq!(d["requestContext"]["disconnectReason"], "bye");
}

#[tokio::test]
async fn idle_connections_are_closed_and_disconnected() {
    let c = chat("", 1).await;
    let mut ws = connect(&c.ws_url("/chat/prod")).await;
    let id = connection_id(&c, &mut ws).await;
    assert_eq!(
        closed_with(&mut ws).await,
        Some((1001, "Going away".into()))
    );
    let d = c
        .wait_event(|e| {
            e["requestContext"]["eventType"] == "DISCONNECT"
                && e["requestContext"]["connectionId"] == id.as_str()
        })
        .await;
    assert_eq!(d["requestContext"]["disconnectStatusCode"], 1001);
}

#[tokio::test]
async fn shutdown_closes_connections_and_runs_disconnect() {
    let c = chat("", 600).await;
    let mut ws = connect(&c.ws_url("/chat/prod")).await;
    let id = connection_id(&c, &mut ws).await;
    let log = c.log.clone();
    c.s.shutdown().await;
    assert_eq!(closed_with(&mut ws).await.map(|c| c.0), Some(1001));
    // shutdown() returned only after $disconnect ran.
    let events = std::fs::read_to_string(log).unwrap();
    assert!(
        events
            .lines()
            .any(|l| l.contains("\"DISCONNECT\"") && l.contains(&id)),
        "{events}"
    );
}

#[tokio::test]
async fn oversize_messages_close_with_1009() {
    let c = chat("", 600).await;
    let mut ws = connect(&c.ws_url("/chat/prod")).await;
    let big = "x".repeat(200 * 1024);
    let _ = ws
        .send(Message::text(format!(
            r#"{{"action":"echo","big":"{big}"}}"#
        )))
        .await;
    assert_eq!(closed_with(&mut ws).await.map(|c| c.0), Some(1009));
}

#[tokio::test]
async fn a_slow_client_does_not_delay_the_others_and_is_closed() {
    let c = chat("", 600).await;
    // `slow` connects and then never reads again.
    let mut slow = connect(&c.ws_url("/chat/prod")).await;
    let slow_id = connection_id(&c, &mut slow).await;
    let mut fast = connect(&c.ws_url("/chat/prod")).await;
    let fast_id = connection_id(&c, &mut fast).await;
    let chunk = vec![b'z'; 64 * 1024];
    let mut slow_gone = false;
    for i in 0..2000 {
        let r = signed("POST", &connection_url(&c, &slow_id), &chunk)
            .send()
            .await
            .unwrap();
        if r.status() == 410 {
            slow_gone = true;
            break;
        }
        if i % 20 == 0 {
            let msg = format!("fast {i}");
            let r = signed("POST", &connection_url(&c, &fast_id), msg.as_bytes())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(
                recv_text(&mut fast).await,
                msg,
                "the fast client was held up"
            );
        }
    }
    assert!(
        slow_gone,
        "the slow client was never closed: buffered without bound?"
    );
    drop(slow);
}

#[tokio::test]
async fn pings_are_answered_with_pongs() {
    let c = chat("", 600).await;
    let mut ws = connect(&c.ws_url("/chat/prod")).await;
    ws.send(Message::Ping(b"are you there".to_vec().into()))
        .await
        .unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Pong(p))) => return p.to_vec(),
                Some(Ok(_)) => continue,
                other => panic!("connection ended: {other:?}"),
            }
        }
    })
    .await
    .expect("a pong within 5 s");
    assert_eq!(pong, b"are you there");
}

/// A WebSocket handshake by hand on a raw socket, for frames no client
/// library will send. Returns the socket after the 101.
async fn raw_upgrade(addr: std::net::SocketAddr, path: &str) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s
}

/// One client frame: FIN, `first` holds the opcode and RSV bits; masked
/// unless `masked` is false.
fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut f = vec![first];
    let len = payload.len() as u8; // small payloads only
    if masked {
        let key = [1u8, 2, 3, 4];
        f.push(0x80 | len);
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.push(len);
        f.extend_from_slice(payload);
    }
    f
}

/// Reads frames until a close frame; returns its code (None if the socket
/// closed without one). Bounded to 5 s.
async fn raw_close_code(s: &mut tokio::net::TcpStream) -> Option<u16> {
    use tokio::io::AsyncReadExt;
    let read = async {
        loop {
            let mut h = [0u8; 2];
            s.read_exact(&mut h).await.ok()?;
            let len = usize::from(h[1] & 0x7f);
            let mut body = vec![0u8; len];
            s.read_exact(&mut body).await.ok()?;
            if h[0] & 0x0f == 0x8 {
                return Some(u16::from_be_bytes([body[0], body[1]]));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read)
        .await
        .expect("the server answers within 5 s")
}

#[tokio::test]
async fn bad_frames_close_with_1007_or_1002_and_run_disconnect() {
    use tokio::io::AsyncWriteExt;
    let c = chat("", 600).await;
    // Text that is not UTF-8: 1007.
    let mut s = raw_upgrade(c.s.gateway, "/chat/prod").await;
    s.write_all(&frame(0x81, &[0xff, 0xfe, 0xfd], true))
        .await
        .unwrap();
    assert_eq!(raw_close_code(&mut s).await, Some(1007));
    // An unmasked client frame: 1002.
    let mut s = raw_upgrade(c.s.gateway, "/chat/prod").await;
    s.write_all(&frame(0x81, b"{}", false)).await.unwrap();
    assert_eq!(raw_close_code(&mut s).await, Some(1002));
    // Reserved bits set: 1002.
    let mut s = raw_upgrade(c.s.gateway, "/chat/prod").await;
    s.write_all(&frame(0x81 | 0x40, b"{}", true)).await.unwrap();
    assert_eq!(raw_close_code(&mut s).await, Some(1002));
    c.wait_event(|e| e["requestContext"]["disconnectStatusCode"] == 1007)
        .await;
    c.wait_event(|e| e["requestContext"]["disconnectStatusCode"] == 1002)
        .await;
}

#[tokio::test]
async fn a_client_close_gets_a_close_reply() {
    let c = chat("", 600).await;
    let mut ws = connect(&c.ws_url("/chat/prod")).await;
    ws.send(Message::Close(Some(tungstenite::protocol::CloseFrame {
        code: CloseCode::Normal,
        reason: "done".into(),
    })))
    .await
    .unwrap();
    // The reply echoes the code (RFC 6455 §5.5.1), then the server closes
    // the TCP connection, which ends the stream.
    assert_eq!(closed_with(&mut ws).await, Some((1000, "done".into())));
    let end = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("the server closes the connection within 5 s");
    assert!(matches!(end, None | Some(Err(_))), "{end:?}");
}

#[tokio::test]
async fn websocket_closes_and_drops_leave_no_close_wait_sockets() {
    use stratus_testkit::{eventually, sockets_on_port, TCP_CLOSE_WAIT, TCP_ESTABLISHED};
    let c = chat("", 600).await;
    let port = c.s.gateway.port();
    for i in 0..60 {
        let mut ws = connect(&c.ws_url("/chat/prod")).await;
        if i % 2 == 0 {
            ws.close(None).await.unwrap();
            // Wait for the reply so that the server side is done with it.
            let _ = closed_with(&mut ws).await;
        }
        drop(ws); // odd ones: the TCP connection just goes away
    }
    let released = eventually(Duration::from_secs(10), || {
        sockets_on_port(port, TCP_CLOSE_WAIT) == 0 && sockets_on_port(port, TCP_ESTABLISHED) == 0
    })
    .await;
    assert!(
        released,
        "server sockets left: {} CLOSE-WAIT, {} ESTABLISHED",
        sockets_on_port(port, TCP_CLOSE_WAIT),
        sockets_on_port(port, TCP_ESTABLISHED)
    );
    // Every one of them got its $disconnect.
    assert!(
        eventually(Duration::from_secs(10), || {
            c.events()
                .iter()
                .filter(|e| e["requestContext"]["eventType"] == "DISCONNECT")
                .count()
                == 60
        })
        .await
    );
}

#[tokio::test]
async fn invalid_handshake_keys_get_400() {
    let c = chat("", 600).await;
    let client = reqwest::Client::new();
    for key in [
        "",
        "c2hvcnQ=",
        &"A".repeat(4096),
        "not base64 at all!!!!!!!",
    ] {
        let r = client
            .get(c.s.url("/chat/prod"))
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", key)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "key {key:?}");
    }
}

#[tokio::test]
async fn static_route_selection_expressions_select_their_constant() {
    let c = chat(
        r#"
[apis.always]
type = "websocket"
base_path = "/always"
route_selection = '\$default'
[apis.always.routes]
"$default" = { function = "ws", respond = true }

[apis.fixed]
type = "websocket"
base_path = "/fixed"
route_selection = "action"
[apis.fixed.routes]
"action" = { function = "ws", respond = true }
"#,
        600,
    )
    .await;
    let mut ws = connect(&c.ws_url("/always")).await;
    ws.send(Message::text(r#"{"action":"echo"}"#))
        .await
        .unwrap();
    assert_eq!(recv_json(&mut ws).await["route"], "$default");
    let mut ws = connect(&c.ws_url("/fixed")).await;
    ws.send(Message::text("not even json")).await.unwrap();
    assert_eq!(recv_json(&mut ws).await["route"], "action");
}

#[tokio::test]
async fn connect_and_disconnect_bursts_past_concurrency_lose_nothing() {
    let dir = tempfile::tempdir().unwrap().keep();
    let log = dir.join("events.jsonl");
    let slow_py = WS_PY.replace(
        "    route = rc[\"routeKey\"]\n",
        "    route = rc[\"routeKey\"]\n    import time\n    time.sleep(0.05)\n",
    );
    let s = TestServer::start_with_files(
        &format!(
            r#"
[functions.ws]
runtime = "python3"
handler = "app.handler"
code = "ws"
concurrency = 2
environment = {{ EVENT_LOG = {log:?} }}

[apis.chat]
type = "websocket"
[apis.chat.routes]
"$connect" = {{ function = "ws" }}
"$disconnect" = {{ function = "ws" }}
"#,
            log = log.display().to_string(),
        ),
        &[("ws/app.py", &slow_py)],
    )
    .await;
    let c = Chat { s, log };
    // 30 clients at once on a function that runs 2 at a time.
    let url = c.ws_url("/");
    let clients = futures_util::future::join_all((0..30).map(|_| {
        let url = url.clone();
        async move { tokio_tungstenite::connect_async(url).await }
    }))
    .await;
    let refused = clients.iter().filter(|r| r.is_err()).count();
    assert_eq!(refused, 0, "handshakes refused under a burst");
    drop(clients); // every client drops at once
    let all = stratus_testkit::eventually(Duration::from_secs(30), || {
        let events = c.events();
        let count = |t: &str| {
            events
                .iter()
                .filter(|e| e["requestContext"]["eventType"] == t)
                .count()
        };
        count("CONNECT") == 30 && count("DISCONNECT") == 30
    })
    .await;
    assert!(all, "events: {}", c.events().len());
}

#[tokio::test]
async fn websocket_messages_past_a_routes_throttle_are_answered_too_many_requests() {
    let c = chat(
        "[apis.th]\ntype = \"websocket\"\nbase_path = \"/th\"\n[apis.th.routes]\n\
         \"echo\" = { function = \"ws\", respond = true, throttle = { rate = 0.001, burst = 2 } }\n",
        600,
    )
    .await;
    let mut ws = connect(&c.ws_url("/th")).await;
    for _ in 0..4 {
        ws.send(Message::text(r#"{"action":"echo"}"#))
            .await
            .unwrap();
    }
    let mut routed = 0;
    let mut throttled = 0;
    for _ in 0..4 {
        let v = recv_json(&mut ws).await;
        if v["message"] == "Too Many Requests" {
            assert!(
                v["connectionId"].is_string() && v["requestId"].is_string(),
                "{v}"
            );
            throttled += 1;
        } else {
            assert_eq!(v["route"], "echo", "{v}");
            routed += 1;
        }
    }
    assert_eq!((routed, throttled), (2, 2));
    // The connection stays open and usable for routes without a limit.
    ws.send(Message::text(r#"{"action":"other"}"#))
        .await
        .unwrap();
    let v = recv_json(&mut ws).await;
    assert_eq!(v["message"], "Forbidden", "no $default on this API: {v}");
}

/// `$connect` takes its route's throttle (or its stage's): past it the
/// handshake is 429, and the function is not called for it.
#[tokio::test]
async fn connect_is_throttled_by_its_route() {
    let c = chat(
        r#"
[apis.gated]
type = "websocket"
base_path = "/gated"
[apis.gated.routes]
"$connect" = { function = "ws", throttle = { rate = 0.001, burst = 1 } }
"$default" = { function = "ws", respond = true }
"#,
        600,
    )
    .await;
    let (first, _) = tokio_tungstenite::connect_async(c.ws_url("/gated"))
        .await
        .expect("the first $connect is let in");
    match tokio_tungstenite::connect_async(c.ws_url("/gated")).await {
        Err(tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 429),
        other => panic!("the second $connect was not refused: {other:?}"),
    }
    let connects = c
        .events()
        .iter()
        .filter(|e| {
            e["requestContext"]["routeKey"] == "$connect"
                && e["requestContext"]["stage"] == "$default"
        })
        .count();
    assert_eq!(connects, 1);
    drop(first);
}
