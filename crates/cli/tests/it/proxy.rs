//! The `http` integration against a real upstream.

use bytes::Bytes;
use futures_util::stream;
use stratus_testkit::{TestServer, Upstream};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn project(up: &Upstream) -> TestServer {
    let u = up.url("");
    TestServer::start(&format!(
        r#"
[apis.web]
type = "http"
[apis.web.routes]
"ANY /echo/{{proxy+}}" = {{ http = "{u}/echoed/{{proxy}}" }}
"POST /count" = {{ http = "{u}/count" }}
"GET /big" = {{ http = "{u}/big" }}
"GET /slow" = {{ http = "{u}/slow", timeout_ms = 300 }}
"GET /down" = {{ http = "http://127.0.0.1:{dead}/x" }}

[apis.shop]
type = "rest"
base_path = "/shop"
stages = {{ prod = {{ variables = {{ target = "prod-items" }} }}, beta = {{ variables = {{ target = "beta-items" }} }} }}
[apis.shop.routes]
"GET /items/{{id}}" = {{ http = "{u}/${{stageVariables.target}}/{{id}}" }}
"GET /slow" = {{ http = "{u}/slow", timeout_ms = 300 }}
"#,
        dead = closed_port(),
    ))
    .await
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn proxy_passes_method_path_query_headers_and_body() {
    let up = Upstream::start().await;
    let s = project(&up).await;
    let resp = client()
        .put(s.url("/echo/a/b%20c?x=1&y=two"))
        .header("x-custom", "kept")
        .header("connection", "keep-alive, x-hop")
        .header("x-hop", "dropped")
        .body("the body")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-upstream"], "echo");
    assert!(resp.headers().contains_key("apigw-requestid"));
    let text = resp.text().await.unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("PUT"));
    assert_eq!(lines.next(), Some("/echoed/a/b%20c?x=1&y=two"));
    assert!(text.contains("\nx-custom: kept\n"), "{text}");
    assert!(text.contains("\nx-forwarded-for: 127.0.0.1\n"), "{text}");
    assert!(text.contains("\nx-forwarded-proto: http\n"), "{text}");
    assert!(
        text.contains(&format!("\nx-forwarded-host: {}\n", s.gateway)),
        "{text}"
    );
    assert!(
        !text.contains("x-hop"),
        "hop-by-hop header forwarded: {text}"
    );
    assert!(text.ends_with("\n\nthe body"), "{text}");
}

#[tokio::test]
async fn stage_variables_fill_the_url_template() {
    let up = Upstream::start().await;
    let s = project(&up).await;
    for (stage, target) in [("prod", "prod-items"), ("beta", "beta-items")] {
        let resp = client()
            .get(s.url(&format!("/shop/{stage}/items/42")))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().contains_key("x-amzn-requestid"));
        let text = resp.text().await.unwrap();
        assert_eq!(text.lines().nth(1), Some(format!("/{target}/42").as_str()));
    }
}

#[tokio::test]
async fn large_bodies_stream_both_ways() {
    let up = Upstream::start().await;
    let s = project(&up).await;
    // 64 MiB down: far over the request limit, which applies to requests only.
    let big = 64 * 1024 * 1024;
    let mut resp = client()
        .get(s.url(&format!("/big?bytes={big}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut got = 0usize;
    let mut chunks = 0;
    while let Some(c) = resp.chunk().await.unwrap() {
        got += c.len();
        chunks += 1;
    }
    assert_eq!(got, big);
    assert!(chunks > 1, "the body arrived in one piece: not streamed");

    // 9 MiB up, chunked (no content-length): under the limit, forwarded whole.
    let up_size = 9 * 1024 * 1024;
    let frames = (0..9).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'y'; 1024 * 1024])));
    let resp = client()
        .post(s.url("/count"))
        .body(reqwest::Body::wrap_stream(stream::iter(frames)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), up_size.to_string());
}

#[tokio::test]
async fn bodies_over_ten_megabytes_get_413_and_the_server_stays_up() {
    let up = Upstream::start().await;
    let s = project(&up).await;
    let eleven = vec![b'z'; 11 * 1024 * 1024];
    // Declared length.
    let resp = client()
        .post(s.url("/count"))
        .body(eleven.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"message":"Request Entity Too Large"}"#
    );
    // Chunked: found out while streaming.
    let frames = eleven
        .chunks(1024 * 1024)
        .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
        .collect::<Vec<_>>();
    let resp = client()
        .post(s.url("/count"))
        .body(reqwest::Body::wrap_stream(stream::iter(frames)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    // Still serving.
    let resp = client().put(s.url("/echo/x")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn unreachable_upstream_is_502() {
    let up = Upstream::start().await;
    let s = project(&up).await;
    let resp = client().get(s.url("/down")).send().await.unwrap();
    assert_eq!(resp.status(), 502);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"message":"Internal server error"}"#
    );
}

#[tokio::test]
async fn slow_upstream_times_out_504_for_rest_503_for_http() {
    let up = Upstream::start().await;
    let s = project(&up).await;
    let resp = client()
        .get(s.url("/shop/prod/slow?ms=3000"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 504);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"message":"Endpoint request timed out"}"#
    );
    let resp = client().get(s.url("/slow?ms=3000")).send().await.unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(
        resp.text().await.unwrap(),
        r#"{"message":"Service Unavailable"}"#
    );
    // Within the timeout it answers.
    let resp = client().get(s.url("/slow?ms=10")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "slow done");
}

#[tokio::test]
async fn admin_listener_answers_health_and_readiness() {
    let s = TestServer::start("").await;
    let health = client().get(s.admin_url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let ready = client().get(s.admin_url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    // No APIs: the gateway answers 404 with the AWS body.
    let resp = client().get(s.url("/anything")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(resp.text().await.unwrap(), r#"{"message":"Not Found"}"#);
    s.shutdown().await;
}

/// The whole answer to a hand-written GET (clients normalize `..` away).
async fn raw_request(addr: std::net::SocketAddr, path: &str) -> String {
    let (head, body) = stratus_testkit::raw_http(addr, &format!("GET {path} HTTP/1.1"), b"").await;
    format!("{head}\r\n\r\n{}", String::from_utf8_lossy(&body))
}

#[tokio::test]
async fn dot_segments_never_reach_the_upstream_or_escape_a_route() {
    let up = Upstream::start().await;
    let u = up.url("");
    let s = TestServer::start(&format!(
        r#"
[apis.web]
type = "http"
[apis.web.routes]
"GET /files/{{proxy+}}" = {{ http = "{u}/static/{{proxy}}" }}
"GET /public/{{proxy+}}" = {{ mock = {{ status = 200, body = "public" }} }}
"#
    ))
    .await;
    // Resolved inside the route: the upstream sees the clean path.
    let a = raw_request(s.gateway, "/files/a/../b.txt").await;
    assert!(a.starts_with("HTTP/1.1 200"), "{a}");
    assert!(a.contains("\n/static/b.txt\n"), "{a}");
    // Resolved out of the route: no route matches.
    for p in [
        "/files/../private/secret.txt",
        "/files/%2e%2e/private/secret.txt",
        "/files/.%2E/private/secret.txt",
        "/public/../private/keys",
    ] {
        let r = raw_request(s.gateway, p).await;
        assert!(r.starts_with("HTTP/1.1 404"), "{p}: {r}");
        assert!(!r.contains("x-upstream"), "{p} reached the upstream: {r}");
    }
    // Climbing above the root, or hidden behind encoded slashes: 400.
    for p in [
        "/files/../../etc/passwd",
        "/files/%2e%2e/%2e%2e/etc/passwd",
        "/files/..%2fprivate/secret.txt",
        "/files/%2e%2e%2Fprivate",
        "/files/..%5cprivate",
    ] {
        let r = raw_request(s.gateway, p).await;
        assert!(r.starts_with("HTTP/1.1 400"), "{p}: {r}");
        assert!(r.contains(r#"{"message":"Bad Request"}"#), "{p}: {r}");
    }
}

#[tokio::test]
async fn an_http_1_0_upstream_does_not_downgrade_the_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let up_addr = upstream.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = upstream.accept().await {
            let mut buf = [0u8; 4096];
            let _ = c.read(&mut buf).await;
            let _ = c
                .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await;
        }
    });
    let s = TestServer::start(&format!(
        "[apis.web]\ntype = \"http\"\n[apis.web.routes]\n\"GET /old\" = {{ http = \"http://{up_addr}/\" }}\n"
    ))
    .await;
    let r = raw_request(s.gateway, "/old").await;
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    assert!(r.ends_with("ok"), "{r}");
}
