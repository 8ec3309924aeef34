//! Access control through the real server: Lambda authorizers written as
//! ordinary Python and Node functions (TOKEN and REQUEST, their cache, a
//! WebSocket `$connect`), JWT authorizers against keys this test makes and
//! serves, and API keys with usage plans (quotas across a restart, and
//! `stratus keys` / `stratus usage`).

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use stratus_testkit::TestServer;
use tokio_tungstenite::tungstenite;

/// A TOKEN/REQUEST authorizer: the token decides. `calls` counts its own
/// invocations (one warm process), so a cache hit shows as a repeat.
const AUTH_PY: &str = r#"
calls = 0
def policy(effect, resource, **context):
    return {"principalId": "alice", "policyDocument": {"Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": effect, "Resource": resource}]},
            "context": context}
def handler(event, context):
    global calls
    calls += 1
    token = event.get("authorizationToken") or (event.get("queryStringParameters") or {}).get("token")
    arn = event["methodArn"]
    if token == "allow":
        return policy("Allow", "*", user="alice", calls=calls, admin=True)
    if token == "narrow":
        return policy("Allow", arn, calls=calls)
    if token == "deny":
        return policy("Deny", "*")
    if token == "unauthorized":
        raise Exception("Unauthorized")
    if token == "crash":
        raise Exception("database down")
    if token == "nested":
        return policy("Allow", "*", user={"name": "alice"})
    return {"nonsense": True}
"#;

/// Answers with what reached it: the authorizer context and the key.
const ECHO_PY: &str = r#"
import json
def handler(event, context):
    rc = event.get("requestContext", {})
    body = {"authorizer": rc.get("authorizer"), "apiKey": rc.get("identity", {}).get("apiKey"),
            "eventType": rc.get("eventType")}
    return {"statusCode": 200, "body": json.dumps(body)}
"#;

/// An HTTP API REQUEST authorizer with simple responses, in Node.
const AUTH_JS: &str = r#"
exports.handler = async (event) => {
  const user = event.headers["x-user"];
  if (user === "boom") throw new Error("Unauthorized");
  return { isAuthorized: user === "ok", context: { user, routeArn: event.routeArn, identity: event.identitySource } };
};
"#;

const PROJECT: &str = r#"
[functions.auth]
runtime = "python3"
handler = "app.handler"
code = "auth"

[functions.echo]
runtime = "python3"
handler = "app.handler"
code = "echo"

[functions.nauth]
runtime = "nodejs"
handler = "index.handler"
code = "nauth"

[apis.shop]
type = "rest"
base_path = "/shop"
stages = { prod = {} }
[apis.shop.authorizers.tok]
type = "token"
function = "auth"
identity_validation = "^[a-z]+$"
[apis.shop.authorizers.fresh]
type = "token"
function = "auth"
ttl = 0
[apis.shop.authorizers.req]
type = "request"
function = "auth"
identity_source = "method.request.querystring.token"
[apis.shop.routes]
"GET /req" = { function = "echo", authorizer = "req" }
"GET /items" = { function = "echo", authorizer = "tok" }
"POST /items" = { function = "echo", authorizer = "tok" }
"GET /fresh" = { function = "echo", authorizer = "fresh" }

[apis.web]
type = "http"
base_path = "/web"
[apis.web.cors]
allow_origins = ["http://localhost:3000"]
[apis.web.authorizers.who]
type = "request"
function = "nauth"
identity_source = ["$request.header.X-User"]
simple_responses = true
[apis.web.routes]
"GET /me" = { function = "echo", authorizer = "who" }

[apis.chat]
type = "websocket"
base_path = "/chat"
[apis.chat.authorizers.door]
type = "request"
function = "auth"
identity_source = "route.request.querystring.token"
[apis.chat.routes]
"$connect" = { function = "echo", authorizer = "door" }
"$default" = { function = "echo", respond = true }
"#;

async fn server() -> TestServer {
    TestServer::start_with_files(
        PROJECT,
        &[
            ("auth/app.py", AUTH_PY),
            ("echo/app.py", ECHO_PY),
            ("nauth/index.js", AUTH_JS),
        ],
    )
    .await
}

async fn get(s: &TestServer, path: &str, headers: &[(&str, &str)]) -> (u16, Value, String) {
    let mut req = reqwest::Client::new().get(s.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let hdrs = format!("{:?}", r.headers());
    let body: Value = r.json().await.unwrap_or(Value::Null);
    (status, body, hdrs)
}

fn token(t: &str) -> [(&'static str, String); 1] {
    [("authorization", t.to_owned())]
}

async fn get_tok(s: &TestServer, path: &str, t: &str) -> (u16, Value) {
    let [(k, v)] = token(t);
    let (status, body, _) = get(s, path, &[(k, &v)]).await;
    (status, body)
}

#[tokio::test]
async fn a_token_authorizer_allows_denies_and_caches_as_aws_does() {
    let s = server().await;
    // No token: 401 without calling the function.
    let (status, body, _) = get(&s, "/shop/prod/items", &[]).await;
    assert_eq!(
        (status, body),
        (401, serde_json::json!({"message": "Unauthorized"}))
    );
    // A token that fails identity_validation: 401, no call either.
    let (status, _) = get_tok(&s, "/shop/prod/items", "Not Valid!").await;
    assert_eq!(status, 401);

    // Allowed: the context reaches the function, values as strings (REST).
    let (status, body) = get_tok(&s, "/shop/prod/items", "allow").await;
    assert_eq!(status, 200, "{body}");
    let a = &body["authorizer"];
    assert_eq!(a["principalId"], "alice");
    assert_eq!(a["user"], "alice");
    assert_eq!(a["admin"], "true");
    assert_eq!(a["calls"], "1", "the first call of the authorizer: {a}");
    assert!(a["integrationLatency"].is_number(), "{a}");
    // The same token again: the cached answer (the function is not called).
    let (_, body) = get_tok(&s, "/shop/prod/items", "allow").await;
    assert_eq!(body["authorizer"]["calls"], "1");
    // The cached policy applies to another method: `*` allows it too.
    let r = reqwest::Client::new()
        .post(s.url("/shop/prod/items"))
        .header("authorization", "allow")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // ttl = 0: the function is called every time.
    let (_, first) = get_tok(&s, "/shop/prod/fresh", "allow").await;
    let (_, second) = get_tok(&s, "/shop/prod/fresh", "allow").await;
    let n = |v: &Value| {
        v["authorizer"]["calls"]
            .as_str()
            .unwrap()
            .parse::<u32>()
            .unwrap()
    };
    assert_eq!(n(&second), n(&first) + 1, "{first} {second}");

    // A policy naming one method's ARN, cached, denies the others.
    let (status, body) = get_tok(&s, "/shop/prod/items", "narrow").await;
    assert_eq!(status, 200, "{body}");
    let r = reqwest::Client::new()
        .post(s.url("/shop/prod/items"))
        .header("authorization", "narrow")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"message":"User is not authorized to access this resource"}"#
    );

    // Explicit deny, the function's `Unauthorized`, failures and bad answers.
    let (status, body) = get_tok(&s, "/shop/prod/items", "deny").await;
    assert_eq!(status, 403);
    assert_eq!(
        body["message"],
        "User is not authorized to access this resource with an explicit deny"
    );
    assert_eq!(get_tok(&s, "/shop/prod/items", "unauthorized").await.0, 401);
    assert_eq!(get_tok(&s, "/shop/prod/items", "crash").await.0, 500);
    assert_eq!(get_tok(&s, "/shop/prod/items", "nested").await.0, 500);
    assert_eq!(get_tok(&s, "/shop/prod/items", "garbage").await.0, 500);
    // The server is fine after all of it.
    assert_eq!(get_tok(&s, "/shop/prod/items", "allow").await.0, 200);

    // A REQUEST authorizer reads its identity from the query string.
    assert_eq!(get(&s, "/shop/prod/req", &[]).await.0, 401);
    let (status, body, _) = get(&s, "/shop/prod/req?token=allow", &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["authorizer"]["principalId"], "alice");
    assert_eq!(get(&s, "/shop/prod/req?token=deny", &[]).await.0, 403);
}

#[tokio::test]
async fn an_http_api_request_authorizer_with_simple_responses_in_node() {
    let s = server().await;
    let origin = ("origin", "http://localhost:3000");
    // The identity source is missing: 401, and a browser still sees CORS
    // headers on it.
    let (status, body, headers) = get(&s, "/web/me", &[origin]).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        headers.contains("\"access-control-allow-origin\": \"http://localhost:3000\""),
        "{headers}"
    );
    let (status, body, _) = get(&s, "/web/me", &[("x-user", "ok")]).await;
    assert_eq!(status, 200, "{body}");
    let lambda = &body["authorizer"]["lambda"];
    assert_eq!(lambda["user"], "ok");
    assert_eq!(
        lambda["routeArn"],
        "arn:aws:execute-api:us-east-1:000000000000:web/$default/GET/me"
    );
    assert_eq!(lambda["identity"], serde_json::json!(["ok"]));
    let (status, body, headers) = get(&s, "/web/me", &[("x-user", "no"), origin]).await;
    assert_eq!(
        (status, body),
        (403, serde_json::json!({"message": "Forbidden"}))
    );
    assert!(headers.contains("access-control-allow-origin"), "{headers}");
    let (status, _, _) = get(&s, "/web/me", &[("x-user", "boom")]).await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_websocket_connect_is_refused_or_let_in_by_its_authorizer() {
    use futures_util::{SinkExt, StreamExt};
    let s = server().await;
    let url = |q: &str| format!("ws://{}/chat{q}", s.gateway);
    let refused = |r: Result<_, tungstenite::Error>| match r {
        Err(tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("{e}"),
        Ok(_) => 101,
    };
    // No token: 401; a deny: 403; a failing authorizer: 500.
    assert_eq!(
        refused(tokio_tungstenite::connect_async(url("")).await),
        401
    );
    assert_eq!(
        refused(tokio_tungstenite::connect_async(url("?token=deny")).await),
        403
    );
    assert_eq!(
        refused(tokio_tungstenite::connect_async(url("?token=crash")).await),
        500
    );
    // Allowed: messages carry the authorizer's context.
    let (mut ws, _) = tokio_tungstenite::connect_async(url("?token=allow"))
        .await
        .expect("connect");
    ws.send(tungstenite::Message::text("hi")).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_str(answer.to_text().unwrap()).unwrap();
    assert_eq!(v["eventType"], "MESSAGE");
    assert_eq!(v["authorizer"]["principalId"], "alice");
    assert_eq!(v["authorizer"]["user"], "alice");
}

// ---- JWT ----

/// An RSA key pair: signs tokens, and its public half as a JWK.
pub(crate) struct Signer {
    kid: String,
    key: jsonwebtoken::EncodingKey,
    pub(crate) jwk: Value,
}

impl Signer {
    pub(crate) fn new(kid: &str) -> Signer {
        use base64::Engine as _;
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::traits::PublicKeyParts;
        let private = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let der = private.to_pkcs1_der().unwrap();
        let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        Signer {
            kid: kid.to_owned(),
            key: jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes()),
            jwk: serde_json::json!({
                "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                "n": b64(private.n().to_bytes_be()),
                "e": b64(private.e().to_bytes_be()),
            }),
        }
    }

    pub(crate) fn token(&self, claims: Value) -> String {
        self.token_with(jsonwebtoken::Algorithm::RS256, claims)
    }

    /// A token signed with `alg` (an RSA one) by this key.
    pub(crate) fn token_with(&self, alg: jsonwebtoken::Algorithm, claims: Value) -> String {
        let mut header = jsonwebtoken::Header::new(alg);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).unwrap()
    }
}

/// Serves whatever `jwks` holds at any path, over plain HTTP, after
/// `delay`; counts the fetches.
pub(crate) async fn jwks_server_with(
    jwks: std::sync::Arc<std::sync::Mutex<String>>,
    delay: Duration,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = fetches.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                continue;
            };
            let (jwks, counted) = (jwks.clone(), counted.clone());
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::time::sleep(delay).await;
                let body = jwks.lock().unwrap().clone();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (addr, fetches)
}

async fn jwks_server(jwks: std::sync::Arc<std::sync::Mutex<String>>) -> std::net::SocketAddr {
    jwks_server_with(jwks, Duration::ZERO).await.0
}

pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test]
async fn a_jwt_authorizer_checks_signature_issuer_audience_time_and_scopes() {
    let (first, second) = tokio::task::spawn_blocking(|| (Signer::new("one"), Signer::new("two")))
        .await
        .unwrap();
    let set = |keys: &[&Signer]| {
        serde_json::json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()})
            .to_string()
    };
    let jwks = std::sync::Arc::new(std::sync::Mutex::new(set(&[&first])));
    let idp = jwks_server(jwks.clone()).await;
    let s = TestServer::start_with_files(
        &format!(
            r#"
[functions.echo]
runtime = "python3"
handler = "app.handler"
code = "echo"

[apis.web]
type = "http"
[apis.web.authorizers.login]
type = "jwt"
issuer = "https://issuer.example"
audience = ["my-app"]
jwks = "http://{idp}/.well-known/jwks.json"
[apis.web.routes]
"GET /me" = {{ function = "echo", authorizer = "login" }}
"POST /tickets" = {{ function = "echo", authorizer = "login", scopes = ["tickets:write"] }}
"#
        ),
        &[("echo/app.py", ECHO_PY)],
    )
    .await;
    let claims = |extra: Value| {
        let mut c = serde_json::json!({
            "iss": "https://issuer.example", "sub": "user-1", "aud": "my-app",
            "exp": now() + 600, "iat": now(), "scope": "tickets:read profile",
        });
        c.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        c
    };
    let call = |method: &'static str, path: &'static str, token: String| {
        let url = s.url(path);
        async move {
            let r = reqwest::Client::new()
                .request(method.parse().unwrap(), url)
                .header("authorization", token)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let challenge = r
                .headers()
                .get("www-authenticate")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (status, challenge, body)
        }
    };

    // Good: claims (as strings) and scopes reach the function.
    let good = first.token(claims(serde_json::json!({})));
    let (status, _, body) = call("GET", "/me", format!("Bearer {good}")).await;
    assert_eq!(status, 200, "{body}");
    let jwt = &body["authorizer"]["jwt"];
    assert_eq!(jwt["claims"]["sub"], "user-1");
    assert!(jwt["claims"]["exp"].is_string(), "{jwt}");
    assert_eq!(
        jwt["scopes"],
        serde_json::json!(["tickets:read", "profile"])
    );

    // Expired, wrong audience, wrong issuer: 401 with a Bearer challenge.
    for (bad, why) in [
        (claims(serde_json::json!({"exp": now() - 3600})), "expired"),
        (claims(serde_json::json!({"aud": "other-app"})), "audience"),
        (
            claims(serde_json::json!({"iss": "https://evil.example"})),
            "issuer",
        ),
    ] {
        let (status, challenge, body) = call("GET", "/me", first.token(bad)).await;
        assert_eq!(status, 401, "{why}");
        assert_eq!(body, serde_json::json!({"message": "Unauthorized"}));
        assert!(
            challenge.starts_with("Bearer")
                && challenge.contains("error=\"invalid_token\"")
                && challenge.contains(why),
            "{why}: {challenge}"
        );
    }
    // `client_id` stands in for a missing `aud`.
    let mut c = claims(serde_json::json!({"client_id": "my-app"}));
    c.as_object_mut().unwrap().remove("aud");
    assert_eq!(call("GET", "/me", first.token(c)).await.0, 200);
    // No token at all; a token that is not one.
    assert_eq!(call("GET", "/me", String::new()).await.0, 401);
    assert_eq!(call("GET", "/me", "Bearer x.y.z".into()).await.0, 401);

    // Scopes: the route wants tickets:write.
    let (status, _, body) = call("POST", "/tickets", good.clone()).await;
    assert_eq!(
        (status, body),
        (403, serde_json::json!({"message": "Forbidden"}))
    );
    let writer = first.token(claims(serde_json::json!({"scope": "tickets:write"})));
    assert_eq!(call("POST", "/tickets", writer).await.0, 200);

    // The issuer rotates its keys: a token of the new key makes Stratus
    // fetch the set again; the old key's tokens then fail.
    *jwks.lock().unwrap() = set(&[&second]);
    let rotated = second.token(claims(serde_json::json!({})));
    let (status, _, body) = call("GET", "/me", rotated).await;
    assert_eq!(status, 200, "{body}");
    let old = first.token(claims(serde_json::json!({"sub": "user-2"})));
    assert_eq!(call("GET", "/me", old).await.0, 401);
}

// ---- API keys and usage plans ----

fn keys_project(dir: &Path, admin_port: u16) {
    stratus_testkit::write_file(
        dir,
        "stratus.toml",
        &format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:{admin_port}"

[apis.shop]
type = "rest"
stages = {{ prod = {{}} }}
[apis.shop.routes]
"GET /items" = {{ mock = {{ status = 200, body = "items" }}, api_key_required = true }}
"GET /open" = {{ mock = {{ status = 200, body = "open" }} }}

[api_keys.demo]
value = "demo-key-0123456789abcdef"

[usage_plans.basic]
apis = ["shop/prod"]
quota = {{ limit = 3, period = "DAY" }}
keys = ["demo"]
"#
        ),
    );
}

fn cli(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let out = crate::support::stratus()
        .args(args)
        .arg("--project")
        .arg(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn api_keys_open_routes_quotas_hold_across_a_restart_and_the_cli_manages_keys() {
    let dir = tempfile::tempdir().unwrap();
    let admin_port = crate::support::free_port();
    keys_project(dir.path(), admin_port);
    let rt = tokio::runtime::Runtime::new().unwrap();
    // "BODY STATUS"
    let get = |s: &crate::support::Serving, path: &str, key: Option<&str>| {
        rt.block_on(async {
            let mut req = reqwest::Client::new().get(s.url(path));
            if let Some(k) = key {
                req = req.header("x-api-key", k);
            }
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            format!("{} {status}", r.text().await.unwrap())
        })
    };

    let s = crate::support::Serving::start(dir.path());
    assert_eq!(get(&s, "/prod/open", None), "open 200");
    assert_eq!(
        get(&s, "/prod/items", None),
        r#"{"message":"Forbidden"} 403"#
    );
    assert_eq!(
        get(&s, "/prod/items", Some("not-a-key-0123456789")),
        r#"{"message":"Forbidden"} 403"#
    );
    assert_eq!(
        get(&s, "/prod/items", Some("demo-key-0123456789abcdef")),
        "items 200"
    );
    assert_eq!(
        get(&s, "/prod/items", Some("demo-key-0123456789abcdef")),
        "items 200"
    );
    s.signal("TERM");
    let mut s = s;
    s.child.wait().unwrap();

    // After a restart the day's count goes on: one call left, then 429.
    let s = crate::support::Serving::start(dir.path());
    assert_eq!(
        get(&s, "/prod/items", Some("demo-key-0123456789abcdef")),
        "items 200"
    );
    assert_eq!(
        get(&s, "/prod/items", Some("demo-key-0123456789abcdef")),
        r#"{"message":"Limit Exceeded"} 429"#
    );

    // A key made at run time works at once; revoked, it is refused.
    let (ok, value, err) = cli(
        dir.path(),
        &["keys", "create", "partner", "--plan", "basic"],
    );
    assert!(ok, "{err}");
    let value = value.trim().to_owned();
    assert_eq!(value.len(), 40, "{value}");
    assert_eq!(get(&s, "/prod/items", Some(&value)), "items 200");
    let (ok, list, err) = cli(dir.path(), &["keys", "list"]);
    assert!(ok, "{err}");
    assert!(list.starts_with("NAME"), "{list}");
    assert!(
        list.lines().any(|l| l.starts_with("partner")
            && l.contains(&value)
            && l.contains("true")
            && l.contains("basic")),
        "{list}"
    );
    assert!(
        list.lines()
            .any(|l| l.starts_with("demo") && l.contains("stratus.toml")),
        "{list}"
    );
    let (ok, _, err) = cli(dir.path(), &["keys", "revoke", "partner"]);
    assert!(ok, "{err}");
    assert_eq!(
        get(&s, "/prod/items", Some(&value)),
        r#"{"message":"Forbidden"} 403"#
    );
    // Mistakes are named.
    let (ok, _, err) = cli(dir.path(), &["keys", "create", "x", "--plan", "gold"]);
    assert!(!ok && err.contains("no usage plan \"gold\""), "{err}");
    let (ok, _, err) = cli(dir.path(), &["keys", "create", "partner"]);
    assert!(!ok && err.contains("409"), "{err}");

    // Usage: calls per key and day (the refused ones are not counted).
    let (ok, usage, err) = cli(dir.path(), &["usage"]);
    assert!(ok, "{err}");
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let demo = usage
        .lines()
        .find(|l| l.contains(" demo "))
        .unwrap_or_else(|| panic!("{usage}"));
    assert!(
        demo.starts_with(&today) && demo.contains(" 3 ") && demo.contains("3 per DAY"),
        "{usage}"
    );
    assert!(
        usage
            .lines()
            .any(|l| l.contains(" partner ") && l.contains(" 1 ")),
        "{usage}"
    );
}

/// An authorizer that names the caller's API key (`usageIdentifierKey`).
const KEY_AUTH_PY: &str = r#"
def handler(event, context):
    token = event.get("authorizationToken") or (event.get("queryStringParameters") or {}).get("token") or ""
    return {"principalId": "p", "usageIdentifierKey": token,
            "policyDocument": {"Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": "*"}]}}
"#;

#[tokio::test]
async fn keys_from_an_authorizer_plan_throttles_per_key_and_connect_keys() {
    let s = TestServer::start_with_files(
        r#"
[functions.auth]
runtime = "python3"
handler = "app.handler"
code = "auth"

[functions.echo]
runtime = "python3"
handler = "app.handler"
code = "echo"

[apis.shop]
type = "rest"
base_path = "/shop"
api_key_source = "AUTHORIZER"
[apis.shop.authorizers.tok]
type = "token"
function = "auth"
[apis.shop.routes]
"GET /items" = { function = "echo", authorizer = "tok", api_key_required = true }

[apis.chat]
type = "websocket"
base_path = "/chat"
[apis.chat.routes]
"$connect" = { function = "echo", api_key_required = true }
"$default" = { function = "echo", respond = true }

[api_keys.one]
value = "key-one-0123456789abcdef"
[api_keys.two]
value = "key-two-0123456789abcdef"

[usage_plans.slow]
apis = ["shop/$default", "chat/$default"]
throttle = { rate = 0.001, burst = 2 }
keys = ["one", "two"]
"#,
        &[("auth/app.py", KEY_AUTH_PY), ("echo/app.py", ECHO_PY)],
    )
    .await;
    // The key comes from the authorizer and reaches the event.
    let (status, body) = get_tok(&s, "/shop/items", "key-one-0123456789abcdef").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["apiKey"], "key-one-0123456789abcdef");
    // The plan's throttle is per key: `one` has one token left, `two` its
    // own two; an authorizer naming an unknown key: 403.
    let message = |m: &str| serde_json::json!({ "message": m });
    for (key, status, body) in [
        ("key-one-0123456789abcdef", 200, None),
        (
            "key-one-0123456789abcdef",
            429,
            Some(message("Too Many Requests")),
        ),
        ("key-two-0123456789abcdef", 200, None),
        ("unknownkey", 403, Some(message("Forbidden"))),
    ] {
        let got = get_tok(&s, "/shop/items", key).await;
        assert_eq!(got.0, status, "{key}: {}", got.1);
        if let Some(body) = body {
            assert_eq!(got.1, body);
        }
    }

    // WebSocket: $connect checks x-api-key.
    let url = format!("ws://{}/chat", s.gateway);
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tungstenite::Error::Http(r)) => assert_eq!(r.status(), 403),
        other => panic!("connected without a key: {:?}", other.map(|_| ())),
    }
    let mut req =
        tungstenite::client::IntoClientRequest::into_client_request(url.as_str()).unwrap();
    req.headers_mut()
        .insert("x-api-key", "key-two-0123456789abcdef".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect with a key");
    use futures_util::{SinkExt, StreamExt};
    ws.send(tungstenite::Message::text("hi")).await.unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let v: Value = serde_json::from_str(answer.to_text().unwrap()).unwrap();
    assert_eq!(v["apiKey"], "key-two-0123456789abcdef", "{v}");
}
