//! Traffic management through the real server: throttles at the route,
//! stage and server levels, in API Gateway's order, with its answers.

use stratus_testkit::TestServer;

/// Buckets that do not refill while a test runs (one token every 1,000 s),
/// so every count below is exact.
const THROTTLED: &str = r#"
[apis.web]
type = "http"
stages = { prod = { throttle = { rate = 0.001, burst = 5 } } }
[apis.web.routes]
"GET /a" = { mock = { status = 200, body = "a" } }
"GET /b" = { mock = { status = 200, body = "b" }, throttle = { rate = 0.001, burst = 3 } }

[apis.shop]
type = "rest"
base_path = "/shop"
[apis.shop.routes]
"GET /c" = { mock = { status = 200, body = "c" } }
"#;

/// `n` requests at once to `path`: (answers 200, answers 429), and every
/// 429's body.
async fn burst(s: &TestServer, path: &str, n: usize) -> (usize, usize, Vec<String>) {
    let client = reqwest::Client::new();
    let calls = (0..n).map(|_| {
        let (client, url) = (client.clone(), s.url(path));
        tokio::spawn(async move {
            let r = client.get(url).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    });
    let mut ok = 0;
    let mut throttled = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        match call.await.unwrap() {
            (200, _) => ok += 1,
            (429, body) => throttled.push(body),
            (status, body) => panic!("{path}: {status} {body}"),
        }
    }
    (ok, throttled.len(), throttled)
}

#[tokio::test]
async fn a_burst_past_burst_gets_exactly_the_excess_as_429_at_each_level() {
    let s = TestServer::start_full("throttle = { rate = 0.001, burst = 20 }", THROTTLED, &[]).await;
    // The stage's default: 5 of 8.
    let (ok, throttled, bodies) = burst(&s, "/prod/a", 8).await;
    assert_eq!((ok, throttled), (5, 3));
    for body in bodies {
        assert_eq!(body, r#"{"message":"Too Many Requests"}"#);
    }
    // A route's own limit replaces the stage's: 3 of 8, from a bucket of
    // its own (the stage's is empty by now).
    assert_eq!(burst(&s, "/prod/b", 8).await.0, 3);
    // The server-wide bucket took every request admitted so far (8 of its
    // 20): a route with no limit of its own gets the 12 left, REST as HTTP.
    let (ok, throttled, bodies) = burst(&s, "/shop/c", 15).await;
    assert_eq!((ok, throttled), (12, 3));
    assert_eq!(bodies[0], r#"{"message":"Too Many Requests"}"#);
    // The server stays up and answers what is not throttled.
    let r = reqwest::get(s.url("/nothing-here")).await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn buckets_refill_at_their_rate() {
    let s = TestServer::start(
        r#"
[apis.web]
type = "http"
[apis.web.routes]
"GET /x" = { mock = { status = 200 }, throttle = { rate = 2, burst = 2 } }
"#,
    )
    .await;
    assert_eq!(burst(&s, "/x", 4).await.0, 2);
    // One token every 500 ms: after 1.1 s the bucket is full again (2,
    // never more, however long the wait).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(burst(&s, "/x", 4).await.0, 2);
}

const CORS: &str = r#"
[apis.web]
type = "http"
[apis.web.cors]
allow_origins = ["http://localhost:3000"]
allow_methods = ["GET", "POST"]
allow_headers = ["Content-Type", "authorization"]
expose_headers = ["x-total"]
max_age = 600
[apis.web.routes]
"ANY /items" = { mock = { status = 418, body = "the integration" } }
"GET /mine" = { mock = { status = 200, headers = { access-control-allow-origin = "http://evil.example" }, body = "ok" } }
"GET /closed" = { mock = { status = 200 }, throttle = { rate = 0, burst = 0 } }

[apis.shop]
type = "rest"
base_path = "/shop"
cors = { allow_origins = ["*"], allow_methods = ["*"] }
[apis.shop.routes]
"GET /x" = { mock = { status = 200 } }
"#;

const SITE: &str = "http://localhost:3000";

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn cors_preflights_are_answered_by_the_gateway() {
    let s = TestServer::start(CORS).await;
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(reqwest::Method::OPTIONS, s.url("/items"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    // An ANY route exists, and still the gateway answers (418 would be the
    // integration).
    let r = preflight(SITE).await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some(SITE)
    );
    assert_eq!(
        header(&r, "access-control-allow-methods").as_deref(),
        Some("GET,POST")
    );
    assert_eq!(
        header(&r, "access-control-allow-headers").as_deref(),
        Some("content-type,authorization")
    );
    assert_eq!(header(&r, "access-control-max-age").as_deref(), Some("600"));
    assert_eq!(header(&r, "access-control-allow-credentials"), None);
    // An origin not listed: no CORS headers, so the browser refuses.
    let r = preflight("http://elsewhere.example").await.unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(header(&r, "access-control-allow-origin"), None);
    // A plain OPTIONS (no Access-Control-Request-Method) is the route's.
    let r = client
        .request(reqwest::Method::OPTIONS, s.url("/items"))
        .header("origin", SITE)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 418);
    // A preflight for a path with no route is answered too.
    let r = client
        .request(reqwest::Method::OPTIONS, s.url("/shop/nowhere"))
        .header("origin", SITE)
        .header("access-control-request-method", "DELETE")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(
        header(&r, "access-control-allow-methods").as_deref(),
        Some("*")
    );
}

#[tokio::test]
async fn cors_headers_are_on_every_answer_errors_included() {
    let s = TestServer::start(CORS).await;
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(s.url(path)).header("origin", SITE).send();
    // The integration's own CORS header is replaced, as API Gateway does.
    let r = get("/mine").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some(SITE)
    );
    assert_eq!(
        header(&r, "access-control-expose-headers").as_deref(),
        Some("x-total")
    );
    assert_eq!(header(&r, "vary").as_deref(), Some("origin"));
    // The gateway's errors carry them: 429, 404 (HTTP API), 403 (REST).
    let r = get("/closed").await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some(SITE)
    );
    let r = get("/nothing").await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some(SITE)
    );
    let r = get("/shop/nothing").await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        header(&r, "access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"message":"Missing Authentication Token"}"#
    );
    // No Origin, no CORS headers (the integration's are dropped still).
    let r = client.get(s.url("/mine")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "access-control-allow-origin"), None);
}

/// A page on one origin (`localhost`) calling APIs on another
/// (`127.0.0.1`), in a real browser: what CORS is for.
const BROWSER: &str = r#"
[apis.site]
type = "http"
base_path = "/site"
[apis.site.routes]
"GET /index" = { mock = { status = 200, headers = { content-type = "text/html" }, body = '''
<!doctype html><html><head><title>waiting</title></head><body>waiting</body>
<script>
async function call(path, init) {
  try {
    const r = await fetch(`http://127.0.0.1:${location.port}${path}`, init);
    return `${r.status} ${await r.text()}`;
  } catch (e) {
    return 'blocked';
  }
}
(async () => {
  const out = {
    allowed: await call('/api/hello', { headers: { 'x-demo': '1' } }),
    throttled: await call('/api/closed'),
    nocors: await call('/nocors/hello'),
  };
  document.body.textContent = JSON.stringify(out);
  document.title = 'done';
})();
</script></html>
''' } }

[apis.api]
type = "http"
base_path = "/api"
cors = { allow_origins = ["*"], allow_methods = ["GET"], allow_headers = ["x-demo"] }
[apis.api.routes]
"GET /hello" = { mock = { status = 200, body = "hi" } }
"GET /closed" = { mock = { status = 200 }, throttle = { rate = 0, burst = 0 } }

[apis.nocors]
type = "http"
base_path = "/nocors"
[apis.nocors.routes]
"GET /hello" = { mock = { status = 200, body = "hi" } }
"#;

#[tokio::test]
async fn a_browser_calls_across_origins_as_cors_allows() {
    let Some(browser) = crate::support::chromium("the CORS browser test") else {
        return;
    };
    let s = TestServer::start(BROWSER).await;
    let page = s.url("/site/index").replace("127.0.0.1", "localhost");
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let run = |extra: &str| {
        let flags = [
            "--virtual-time-budget=10000",
            "--window-size=900,200",
            extra,
        ];
        crate::support::headless(browser, flags.map(str::to_owned).to_vec(), page.clone())
    };
    let dom = run("--dump-dom").await;
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    // The page's own report, as the browser saw each call.
    assert!(dom.contains("<title>done</title>"), "{dom}");
    // A preflighted call (custom header) is let through.
    assert!(dom.contains(r#""allowed":"200 hi""#), "{dom}");
    // The gateway's own 429 carries CORS headers: the page sees it.
    assert!(
        dom.contains(r#""throttled":"429 {\"message\":\"Too Many Requests\"}""#),
        "{dom}"
    );
    // An API without CORS: the browser blocks the answer.
    assert!(dom.contains(r#""nocors":"blocked""#), "{dom}");
    let shot = shots.join("cors.png");
    let _ = run(&format!("--screenshot={}", shot.display())).await;
    assert!(shot.is_file(), "a screenshot in {}", shot.display());
}
