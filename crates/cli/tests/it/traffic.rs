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
