//! Router and middleware, in memory: no socket, `Gateway::handle` called directly.

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};

use stratus_runtime::Runtime;

use super::*;

async fn gateway(toml: &str) -> Gateway {
    let app = stratus_config::load_str(toml, Path::new("stratus.toml"), Path::new("."))
        .unwrap_or_else(|e| panic!("test config is invalid:\n{e}"));
    // No functions here: the runtime starts nothing and writes nothing.
    let functions = Runtime::start(&app, Vec::new()).await.unwrap();
    Gateway::new(&app, Arc::new(functions), Connections::in_memory())
}

const REMOTE: &str = "192.0.2.7:5555";

async fn call(g: &Gateway, method: &str, uri: &str) -> (StatusCode, http::HeaderMap, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = g.handle(req, REMOTE.parse::<SocketAddr>().unwrap()).await;
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status,
        parts.headers,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

/// Each route answers its own key as body, so a test sees which one matched.
const PRIORITY: &str = r#"
[apis.web]
type = "http"
[apis.web.routes]
"GET /items/special" = { mock = { body = "exact" } }
"GET /items/{id}" = { mock = { body = "param" } }
"GET /items/{proxy+}" = { mock = { body = "greedy" } }
"ANY /any" = { mock = { body = "any" } }
"POST /any" = { mock = { body = "post" } }
"GET /a/{x}/c" = { mock = { body = "a-x-c" } }
"GET /a/b/{y}" = { mock = { body = "a-b-y" } }
"$default" = { mock = { status = 404, body = "default" } }
"#;

#[tokio::test]
async fn exact_path_beats_parameter_beats_greedy_beats_default() {
    let g = gateway(PRIORITY).await;
    assert_eq!(call(&g, "GET", "/items/special").await.2, "exact");
    assert_eq!(call(&g, "GET", "/items/7").await.2, "param");
    assert_eq!(call(&g, "GET", "/items/7/parts/2").await.2, "greedy");
    assert_eq!(call(&g, "GET", "/nothing/here").await.2, "default");
    // `{proxy+}` needs at least one segment.
    assert_eq!(call(&g, "GET", "/items").await.2, "default");
}

#[tokio::test]
async fn any_matches_every_method_but_a_named_method_wins() {
    let g = gateway(PRIORITY).await;
    for m in ["GET", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        assert_eq!(call(&g, m, "/any").await.2, "any", "{m}");
    }
    assert_eq!(call(&g, "POST", "/any").await.2, "post");
}

#[tokio::test]
async fn a_more_specific_path_without_the_method_falls_back() {
    let g = gateway(PRIORITY).await;
    // `/items/special` has only GET: a DELETE goes on to `$default`.
    assert_eq!(call(&g, "DELETE", "/items/special").await.2, "default");
    // backtracking across a static branch into a parameter branch
    assert_eq!(call(&g, "GET", "/a/b/c").await.2, "a-b-y");
    assert_eq!(call(&g, "GET", "/a/z/c").await.2, "a-x-c");
}

#[tokio::test]
async fn no_route_bodies_are_aws_bodies() {
    let g = gateway(
        r#"
[apis.web]
type = "http"
base_path = "/web"
[apis.web.routes]
"GET /x" = { mock = {} }
[apis.shop]
type = "rest"
base_path = "/shop"
stages = { prod = {} }
[apis.shop.routes]
"GET /x" = { mock = {} }
"#,
    )
    .await;
    let (status, headers, body) = call(&g, "GET", "/web/nope").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, r#"{"message":"Not Found"}"#);
    assert_eq!(headers["content-type"], "application/json");
    assert!(headers.contains_key("apigw-requestid"));

    let (status, headers, body) = call(&g, "GET", "/shop/prod/nope").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, r#"{"message":"Missing Authentication Token"}"#);
    assert!(headers.contains_key("x-amzn-requestid"));

    // Under the REST API's base path but no such stage.
    let (status, _, body) = call(&g, "GET", "/shop/x").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, r#"{"message":"Not Found"}"#);

    // A method with no route at all on a REST API.
    let (status, _, _) = call(&g, "POST", "/shop/prod/x").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn rest_stages_are_served_under_their_name() {
    let g = gateway(
        r#"
[apis.shop]
type = "rest"
stages = { prod = {}, beta = {} }
[apis.shop.routes]
"GET /items/{id}" = { mock = { body = "item" } }
"#,
    )
    .await;
    assert_eq!(call(&g, "GET", "/prod/items/1").await.2, "item");
    assert_eq!(call(&g, "GET", "/beta/items/1").await.2, "item");
    assert_eq!(call(&g, "GET", "/items/1").await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rest_api_without_stages_serves_default_stage_at_root() {
    let g = gateway(
        "[apis.r]\ntype = \"rest\"\n[apis.r.routes]\n\"GET /\" = { mock = { body = \"root\" } }\n",
    )
    .await;
    assert_eq!(call(&g, "GET", "/").await.2, "root");
    assert_eq!(call(&g, "GET", "/x").await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn longest_mount_wins_between_apis() {
    let g = gateway(
        r#"
[apis.root]
type = "http"
[apis.root.routes]
"GET /{proxy+}" = { mock = { body = "root" } }
[apis.shop]
type = "http"
base_path = "/shop"
[apis.shop.routes]
"GET /{proxy+}" = { mock = { body = "shop" } }
"#,
    )
    .await;
    assert_eq!(call(&g, "GET", "/shop/a").await.2, "shop");
    assert_eq!(call(&g, "GET", "/shopping/a").await.2, "root");
    assert_eq!(call(&g, "GET", "/other").await.2, "root");
}

#[tokio::test]
async fn mock_sends_status_headers_and_body() {
    let g = gateway(
        "[apis.m]\ntype = \"http\"\n[apis.m.routes]\n\"GET /t\" = { mock = { status = 418, headers = { x-tea = \"earl grey\" }, body = \"short and stout\" } }\n",
    ).await;
    let (status, headers, body) = call(&g, "GET", "/t").await;
    assert_eq!(status, StatusCode::IM_A_TEAPOT);
    assert_eq!(headers["x-tea"], "earl grey");
    assert_eq!(body, "short and stout");
}

#[tokio::test]
async fn declared_body_over_ten_megabytes_is_413() {
    let g =
        gateway("[apis.m]\ntype = \"http\"\n[apis.m.routes]\n\"POST /t\" = { mock = {} }\n").await;
    let req = Request::builder()
        .method("POST")
        .uri("/t")
        .header("content-length", (MAX_REQUEST_BODY + 1).to_string())
        .body(Full::new(Bytes::new()))
        .unwrap();
    let resp = g.handle(req, REMOTE.parse().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], br#"{"message":"Request Entity Too Large"}"#);
}

#[tokio::test]
async fn every_request_gets_a_fresh_request_id() {
    let g = gateway(PRIORITY).await;
    let a = call(&g, "GET", "/any").await.1["apigw-requestid"].clone();
    let b = call(&g, "GET", "/any").await.1["apigw-requestid"].clone();
    assert_ne!(a, b);
    assert_eq!(a.len(), 36);
}

// ---- Function routes and WebSocket routing through a fake invoker: no process ----

mod fake {
    use std::sync::Arc;
    use std::time::Duration;

    use bytes::Bytes;
    use futures_util::future::BoxFuture;
    use serde_json::Value;
    use stratus_runtime::{ErrorKind, FunctionError, InvokeError, InvokeRequest, InvokeResponse};

    use crate::Invoke;

    /// What the fake function does with an event.
    pub(super) enum Answer {
        Json(Value),
        Error(&'static str, &'static str),
        Throttled,
        Hang,
    }

    type Handler = Box<dyn Fn(&str, Value) -> Answer + Send + Sync>;

    /// Runs its handler on every event, in memory.
    pub(super) struct Fake(Handler);

    impl Fake {
        pub(super) fn invoker(
            f: impl Fn(&str, Value) -> Answer + Send + Sync + 'static,
        ) -> Arc<dyn Invoke> {
            Arc::new(Fake(Box::new(f)))
        }
    }

    impl Invoke for Fake {
        fn invoke<'a>(
            &'a self,
            function: &'a str,
            req: InvokeRequest,
            _wait: Option<Duration>,
        ) -> BoxFuture<'a, Result<InvokeResponse, InvokeError>> {
            Box::pin(async move {
                let event: Value = serde_json::from_slice(&req.payload).unwrap();
                let result = match (self.0)(function, event) {
                    Answer::Json(v) => Ok(Bytes::from(v.to_string())),
                    Answer::Error(t, m) => Err(FunctionError {
                        kind: ErrorKind::Handled,
                        error_type: t.into(),
                        body: Bytes::from(
                            serde_json::json!({"errorType": t, "errorMessage": m}).to_string(),
                        ),
                    }),
                    Answer::Throttled => return Err(InvokeError::TooManyRequests),
                    Answer::Hang => std::future::pending().await,
                };
                Ok(InvokeResponse {
                    request_id: "fake".into(),
                    result,
                    log_tail: None,
                    duration: Duration::ZERO,
                    billed_ms: 1,
                    init_duration: None,
                    memory_mb: 128,
                    executed_version: "$LATEST".into(),
                })
            })
        }
    }
}

use fake::{Answer, Fake};

const FUNCTIONS: &str = r#"
[functions.f]
runtime = "python3"
handler = "app.handler"
code = "."

[apis.web]
type = "http"
base_path = "/web"
[apis.web.routes]
"GET /items/{id}" = { function = "f" }
"GET /hang" = { function = "f", timeout_ms = 100 }

[apis.shop]
type = "rest"
base_path = "/shop"
[apis.shop.routes]
"GET /items/{id}" = { function = "f" }
"GET /hang" = { function = "f", timeout_ms = 100 }

[apis.chat]
type = "websocket"
base_path = "/chat"
route_selection = "$request.body.action"
[apis.chat.routes]
"send" = { function = "f", respond = true }
"$default" = { function = "f", respond = true }
"#;

fn app() -> stratus_config::App {
    stratus_config::load_str(FUNCTIONS, Path::new("stratus.toml"), Path::new(".")).unwrap()
}

/// Echoes what routing and the event builder produced.
fn echo(_: &str, ev: serde_json::Value) -> Answer {
    let item = &ev["pathParameters"]["id"];
    if item == "boom" {
        return Answer::Error("ValueError", "boom");
    }
    if item == "busy" {
        return Answer::Throttled;
    }
    if ev["requestContext"]["eventType"] == "MESSAGE" {
        let body = serde_json::json!({
            "route": ev["requestContext"]["routeKey"],
            "connectionId": ev["requestContext"]["connectionId"],
        })
        .to_string();
        return Answer::Json(serde_json::json!({"statusCode": 200, "body": body}));
    }
    if ev["rawPath"] == "/web/hang" || ev["path"] == "/hang" {
        return Answer::Hang;
    }
    let body = serde_json::json!({
        "version": ev.get("version"),
        "routeKey": ev.get("routeKey"),
        "resource": ev.get("resource"),
        "id": item,
    });
    Answer::Json(serde_json::json!({"statusCode": 201, "body": body.to_string()}))
}

#[tokio::test]
async fn a_function_route_builds_the_event_and_maps_the_answer_in_memory() {
    let g = Gateway::new(&app(), Fake::invoker(echo), Connections::in_memory());
    let (status, headers, body) = call(&g, "GET", "/web/items/7").await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(headers.contains_key("apigw-requestid"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["version"], "2.0");
    assert_eq!(v["routeKey"], "GET /items/{id}");
    assert_eq!(v["id"], "7");
    // REST: payload 1.0.
    let (status, headers, body) = call(&g, "GET", "/shop/items/8").await;
    assert_eq!(status, StatusCode::CREATED);
    assert!(headers.contains_key("x-amzn-requestid"));
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["version"], serde_json::Value::Null);
    assert_eq!(v["resource"], "/items/{id}");
    assert_eq!(v["id"], "8");
}

#[tokio::test]
async fn function_failures_map_to_awss_answers_in_memory() {
    let g = Gateway::new(&app(), Fake::invoker(echo), Connections::in_memory());
    for prefix in ["/web", "/shop"] {
        let (status, _, body) = call(&g, "GET", &format!("{prefix}/items/boom")).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY, "{prefix}");
        assert_eq!(body, r#"{"message":"Internal server error"}"#);
        let (status, _, body) = call(&g, "GET", &format!("{prefix}/items/busy")).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{prefix}");
        assert_eq!(body, r#"{"message":"Internal server error"}"#);
    }
}

#[tokio::test(start_paused = true)]
async fn an_integration_timeout_is_504_for_rest_and_503_for_http_in_memory() {
    let g = Gateway::new(&app(), Fake::invoker(echo), Connections::in_memory());
    let (status, _, body) = call(&g, "GET", "/shop/hang").await;
    assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(body, r#"{"message":"Endpoint request timed out"}"#);
    let (status, _, body) = call(&g, "GET", "/web/hang").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, r#"{"message":"Service Unavailable"}"#);
}

#[tokio::test]
async fn a_websocket_message_is_routed_by_its_selection_expression_in_memory() {
    let app = app();
    let ws = Gateway::new(&app, Fake::invoker(echo), Connections::in_memory()).websockets();
    let api = app.apis.iter().find(|a| a.name == "chat").unwrap().clone();
    let meta = crate::events::websocket::Meta {
        stage: api.stages[0].clone(),
        api,
        conn_id: "conn-1".into(),
        connected_at: 0,
        source_ip: "192.0.2.7".into(),
        user_agent: None,
        domain: None,
        authorizer: None,
        api_key: None,
    };
    let (conn, mut rx) = crate::websocket::LocalConnection::detached("conn-1");
    for (message, route) in [
        (r#"{"action":"send"}"#, "send"),
        (r#"{"action":"other"}"#, "$default"),
        ("not json", "$default"),
    ] {
        let msg = tokio_tungstenite::tungstenite::Message::text(message);
        ws.on_message(&conn, &meta, msg).await;
        let Some(crate::websocket::Outbound::Text(answer)) = rx.recv().await else {
            panic!("no answer to {message}");
        };
        let v: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert_eq!(v["route"], route, "{message}");
    }
}

#[tokio::test]
async fn a_new_gateway_keeps_open_websocket_connections_reachable() {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;

    let connections = Connections::in_memory();
    let current = Arc::new(std::sync::RwLock::new(Gateway::new(
        &app(),
        Fake::invoker(echo),
        connections.clone(),
    )));
    // A server whose gateway can be swapped, as a reload does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let serving = current.clone();
    tokio::spawn(async move {
        while let Ok((stream, remote)) = listener.accept().await {
            let serving = serving.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let gw = serving.read().unwrap().clone();
                    async move { Ok::<_, std::convert::Infallible>(gw.handle(req, remote).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/chat"))
        .await
        .unwrap();
    let next_json = async |ws: &mut tokio_tungstenite::WebSocketStream<_>| -> serde_json::Value {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        serde_json::from_str(msg.to_text().unwrap()).unwrap()
    };
    ws.send(Message::text(r#"{"action":"send"}"#))
        .await
        .unwrap();
    let id = next_json(&mut ws).await["connectionId"]
        .as_str()
        .unwrap()
        .to_owned();

    // The reload: a new gateway, built from the app again, same connections.
    let reloaded = Gateway::new(&app(), Fake::invoker(echo), connections.clone());
    *current.write().unwrap() = reloaded.clone();

    // `@connections` on the new gateway reaches the connection opened before.
    let registry = reloaded.websockets().registry();
    assert!(registry.info(&id).await.is_some());
    registry
        .send(
            &id,
            crate::websocket::Outbound::Text(r#"{"after":"reload"}"#.into()),
        )
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["after"], "reload");
    // And it keeps routing its messages.
    ws.send(Message::text(r#"{"action":"other"}"#))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["route"], "$default");
}

const CACHED: &str = r#"
[functions.f]
runtime = "python3"
handler = "app.handler"
code = "."

[apis.shop]
type = "rest"
base_path = "/shop"
stages = { prod = { cache = { ttl = 60, keys = ["querystring.q", "path.id"], client_refresh = true } }, dev = {} }
[apis.shop.routes]
"GET /items/{id}" = { function = "f" }
"GET /plain/{id}" = { function = "f", cache = { keys = ["querystring.q"] } }
"GET /short" = { function = "f", cache = { ttl = 5 } }
"GET /never" = { function = "f", cache = { enabled = false } }
"POST /items" = { function = "f" }
"POST /search" = { function = "f", cache = { enabled = true } }
"GET /fail" = { function = "f" }
"#;

/// Counts the calls; answers the call's number (and fails for /fail).
fn counting() -> (Arc<dyn Invoke>, Arc<std::sync::atomic::AtomicU64>) {
    let n = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = n.clone();
    let invoker = Fake::invoker(move |_, ev| {
        let call = seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let status = if ev["path"] == "/fail" { 500 } else { 200 };
        Answer::Json(serde_json::json!({"statusCode": status, "body": format!("call {call}")}))
    });
    (invoker, n)
}

async fn call_with(g: &Gateway, method: &str, uri: &str, header: Option<(&str, &str)>) -> String {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some((k, v)) = header {
        req = req.header(k, v);
    }
    let resp = g
        .handle(
            req.body(Empty::<Bytes>::new()).unwrap(),
            REMOTE.parse::<SocketAddr>().unwrap(),
        )
        .await;
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_stage_cache_keys_expires_refreshes_and_flushes_as_api_gateway() {
    let app = stratus_config::load_str(CACHED, Path::new("stratus.toml"), Path::new("."))
        .unwrap_or_else(|e| panic!("{e}"));
    let (invoker, calls) = counting();
    let g = Gateway::new(&app, invoker, Connections::in_memory());
    let get = |uri: &'static str| call_with(&g, "GET", uri, None);
    // A miss, then hits until the ttl, keyed by the chosen parameters.
    assert_eq!(get("/shop/prod/items/1?q=a").await, "call 1");
    assert_eq!(get("/shop/prod/items/1?q=a").await, "call 1");
    assert_eq!(
        get("/shop/prod/items/1?q=a&other=x").await,
        "call 1",
        "other parameters are not in the key"
    );
    assert_eq!(get("/shop/prod/items/1?q=b").await, "call 2", "q is");
    assert_eq!(
        get("/shop/prod/items/2?q=a").await,
        "call 3",
        "the path parameter is"
    );
    // A route's own keys: without path.id, /plain/1 and /plain/2 share an
    // entry, as on AWS when the path parameter is not a cache key.
    assert_eq!(get("/shop/prod/plain/1").await, "call 4");
    assert_eq!(get("/shop/prod/plain/2").await, "call 4");
    // Not cached: a stage without cache, a route turned off, a POST, a 5xx.
    assert_eq!(get("/shop/dev/items/1?q=a").await, "call 5");
    assert_eq!(get("/shop/dev/items/1?q=a").await, "call 6");
    assert_eq!(get("/shop/prod/never").await, "call 7");
    assert_eq!(get("/shop/prod/never").await, "call 8");
    assert_eq!(
        call_with(&g, "POST", "/shop/prod/items", None).await,
        "call 9"
    );
    assert_eq!(
        call_with(&g, "POST", "/shop/prod/items", None).await,
        "call 10"
    );
    assert_eq!(get("/shop/prod/fail").await, "call 11");
    assert_eq!(get("/shop/prod/fail").await, "call 12");
    // A POST route that asks for the cache gets it.
    assert_eq!(
        call_with(&g, "POST", "/shop/prod/search", None).await,
        "call 13"
    );
    assert_eq!(
        call_with(&g, "POST", "/shop/prod/search", None).await,
        "call 13"
    );
    // A route's own ttl.
    assert_eq!(get("/shop/prod/short").await, "call 14");
    tokio::time::advance(std::time::Duration::from_secs(6)).await;
    assert_eq!(get("/shop/prod/short").await, "call 15");
    // The stage's ttl: still cached at 6 s, fresh past 60.
    assert_eq!(get("/shop/prod/items/1?q=a").await, "call 1");
    tokio::time::advance(std::time::Duration::from_secs(55)).await;
    assert_eq!(get("/shop/prod/items/1?q=a").await, "call 16");
    // Cache-Control: max-age=0 refreshes (the stage allows it).
    let refresh = Some(("cache-control", "max-age=0"));
    assert_eq!(
        call_with(&g, "GET", "/shop/prod/items/1?q=a", refresh).await,
        "call 17"
    );
    assert_eq!(get("/shop/prod/items/1?q=a").await, "call 17");
    // Flushed: every entry of the stage goes.
    assert!(g.caches().flush("shop", "prod"));
    assert!(!g.caches().flush("shop", "dev"));
    assert_eq!(get("/shop/prod/items/1?q=a").await, "call 18");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 18);
}

#[tokio::test]
async fn without_client_refresh_max_age_zero_is_ignored() {
    let toml = CACHED.replace(", client_refresh = true", "");
    let app = stratus_config::load_str(&toml, Path::new("stratus.toml"), Path::new(".")).unwrap();
    let (invoker, _) = counting();
    let g = Gateway::new(&app, invoker, Connections::in_memory());
    assert_eq!(
        call_with(&g, "GET", "/shop/prod/items/1", None).await,
        "call 1"
    );
    let refresh = Some(("cache-control", "max-age=0"));
    assert_eq!(
        call_with(&g, "GET", "/shop/prod/items/1", refresh).await,
        "call 1"
    );
}

/// `@connections` calls on the public listener: which paths are such calls
/// (hostile ones are not), and which connections each may reach.
#[tokio::test]
async fn management_calls_reach_only_their_stage() {
    let g = gateway(
        r#"
[functions.f]
runtime = "python3.12"
handler = "app.handler"
code = "."

[apis.chat]
type = "websocket"
base_path = "/chat"
[apis.chat.routes]
"$default" = { function = "f" }

[apis.live]
type = "websocket"
stages = { prod = {} }
[apis.live.routes]
"$default" = { function = "f" }
"#,
    )
    .await;
    let ws = g.websockets();
    for bad in [
        "/@connections/abc",
        "/prod/@connections/",
        "/prod/@connections/a/b",
        "/prod/connections/abc",
        "/prod/@connections",
    ] {
        assert!(ws.management_call(None, bad).is_none(), "{bad}");
    }
    let call = ws.management_call(None, "/prod/@connections/abc").unwrap();
    assert_eq!((call.prefix, call.id), ("/prod", "abc"));
    assert!(ws.reaches(&call, "live", "prod"));
    assert!(!ws.reaches(&call, "chat", "$default"));
    // The stage's path on the listener, and `/{stage}` spelled encoded.
    let at_mount = ws.management_call(None, "/chat/@connections/abc").unwrap();
    assert!(ws.reaches(&at_mount, "chat", "$default"));
    assert!(!ws.reaches(&at_mount, "live", "prod"));
    let encoded = ws
        .management_call(None, "/%24default/@connections/x")
        .unwrap();
    assert!(ws.reaches(&encoded, "chat", "$default"));
    // At an API's own host, only that API's stage.
    let host = format!(
        "{}.execute-api.localhost:8080",
        stratus_config::api_id("live")
    );
    let hosted = ws
        .management_call(Some(&host), "/prod/@connections/abc")
        .unwrap();
    assert!(ws.reaches(&hosted, "live", "prod"));
    let other = format!(
        "{}.execute-api.localhost:8080",
        stratus_config::api_id("chat")
    );
    let elsewhere = ws
        .management_call(Some(&other), "/prod/@connections/abc")
        .unwrap();
    assert!(!ws.reaches(&elsewhere, "live", "prod"));
    // A project without WebSocket APIs has no such calls.
    let plain = gateway(PRIORITY).await;
    assert!(plain
        .websockets()
        .management_call(None, "/prod/@connections/abc")
        .is_none());
}
