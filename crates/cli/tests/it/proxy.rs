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
