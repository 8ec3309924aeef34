//! Hostile and careless input against the newer APIs (the Data API, the S3
//! API, JWT authorizers, the dashboard stream, WebSocket throttling, and
//! web pages reaching the admin listener): one regression test per hole
//! found when they were probed, each through the real server with real
//! clients, asserting on what a client sees.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use stratus_testkit::{write_file, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

use crate::access::{jwks_server_with, now, Signer};
use crate::support::Serving;

const ARN: &str = "arn:aws:rds:us-east-1:000000000000:cluster:main";

/// A project of `body` with listeners on port 0, served by the real binary.
fn serve(body: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, Serving) {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        write_file(dir.path(), rel, text);
    }
    write_file(
        dir.path(),
        "stratus.toml",
        &format!("[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n{body}"),
    );
    let s = Serving::start(dir.path());
    (dir, s)
}

/// `POST /Execute` (unsigned: no credentials are configured); status and body.
async fn execute(admin: std::net::SocketAddr, req: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("http://{admin}/Execute"))
        .header("content-type", "application/json")
        .body(req.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or_else(|_| json!({ "text": text })),
    )
}

fn sql(statement: &str) -> Value {
    json!({ "resourceArn": ARN, "secretArn": "arn:any", "sql": statement })
}

fn threads_of(pid: u32) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

// ---- the RDS Data API ----

/// `many` (millions of rows) answered 400 "more than the allowed response
/// size limit" in either format, the server's peak memory barely moved.
async fn stopped_at_the_limit(s: &Serving, many: &str) {
    let before = s.peak_rss_kb();
    for format in [json!(null), json!("JSON")] {
        let mut req = sql(many);
        req["formatRecordsAs"] = format.clone();
        let (status, body) = execute(s.admin, req).await;
        assert_eq!(status, 400, "{format}: {body}");
        assert_eq!(
            body["message"], "Database returned more than the allowed response size limit",
            "{body}"
        );
    }
    let grown_mb = (s.peak_rss_kb() - before) / 1024;
    assert!(
        grown_mb < 200,
        "the server's peak memory grew by {grown_mb} MB"
    );
}

#[tokio::test]
async fn a_data_api_query_of_millions_of_rows_is_stopped_at_the_answer_limit() {
    let (_dir, s) = serve(
        "[databases.main]\n\n[databases.slow]\nstatement_timeout = 1\n",
        &[],
    );
    // Two million rows of 100 bytes: fetched whole, this took 3.8 GB and
    // 15 s before the size check; twenty million killed the server.
    stopped_at_the_limit(
        &s,
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < 2000000) \
         SELECT x, printf('%.100c', 'p') AS pad FROM c",
    )
    .await;
    // A statement that returns nothing for ever is stopped at its timeout.
    let endless =
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c";
    let mut req = sql(endless);
    req["resourceArn"] = json!("arn:aws:rds:us-east-1:000000000000:cluster:slow");
    let r = reqwest::Client::new()
        .post(format!("http://{}/Execute", s.admin))
        .body(req.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-amzn-errortype"], "StatementTimeoutException");
    // And the server answers as before.
    let (status, body) = execute(s.admin, sql("SELECT 1 AS one")).await;
    assert_eq!(
        (status, &body["records"]),
        (200, &json!([[{ "longValue": 1 }]]))
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn on_postgresql_a_query_of_millions_of_rows_is_stopped_at_the_answer_limit() {
    let schema = crate::databases::PgSchema::new().await;
    let (_dir, s) = serve(
        &format!(
            "[databases.main]\nengine = \"postgres\"\nurl = {:?}\nstatement_timeout = 3\n",
            schema.url
        ),
        &[],
    );
    stopped_at_the_limit(
        &s,
        "SELECT g, repeat('p', 100) AS pad FROM generate_series(1, 3000000) g",
    )
    .await;
    // The database's own timeout, set per database.
    let r = reqwest::Client::new()
        .post(format!("http://{}/Execute", s.admin))
        .body(sql("SELECT pg_sleep(6)").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["x-amzn-errortype"], "StatementTimeoutException");
    // The pool serves on: the stopped statements' connections were closed.
    for _ in 0..12 {
        let (status, body) = execute(s.admin, sql("SELECT 1 AS one")).await;
        assert_eq!(
            (status, &body["records"]),
            (200, &json!([[{ "longValue": 1 }]]))
        );
    }
}

#[tokio::test]
async fn data_api_sql_can_open_no_file_but_its_own_database() {
    let (dir, s) = serve(
        "[databases.main]\n\n[api_keys.demo]\nvalue = \"demo-key-0123456789abcdef\"\n",
        &[],
    );
    let keys = dir.path().join(".stratus/keys.db");
    let elsewhere = dir.path().join("copy.db");
    for statement in [
        format!("ATTACH DATABASE '{}' AS k", keys.display()),
        format!("ATTACH '{}' AS x", elsewhere.display()),
        format!("VACUUM INTO '{}'", elsewhere.display()),
        "SELECT load_extension('/lib/x86_64-linux-gnu/libc.so.6')".to_owned(),
    ] {
        let (status, body) = execute(s.admin, sql(&statement)).await;
        assert_eq!(status, 400, "{statement}: {body}");
    }
    assert!(
        !elsewhere.exists(),
        "a file was written outside the database"
    );
    // Nothing stays attached to a pooled connection for later requests.
    for _ in 0..12 {
        let (status, _) = execute(s.admin, sql("SELECT * FROM k.keys")).await;
        assert_eq!(status, 400);
    }
}

#[tokio::test]
async fn data_api_bodies_that_are_not_requests_get_its_json_errors() {
    let s = TestServer::start("[databases.main]\n").await;
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        client
            .post(s.admin_url("/Execute"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for body in [&b"[1,2,3]"[..], b"\"text\"", b"{}"] {
        let r = post(body.to_vec()).await.unwrap();
        assert_eq!(r.status(), 400, "{}", String::from_utf8_lossy(body));
        assert_eq!(r.headers()["x-amzn-errortype"], "BadRequestException");
        let v: Value = r.json().await.unwrap();
        assert!(v["message"].as_str().is_some(), "{v}");
    }
    // A parameter past the admin listener's request limit: 413, as JSON.
    let big = json!({
        "resourceArn": ARN, "sql": "SELECT :p",
        "parameters": [{ "name": "p", "value": { "stringValue": "x".repeat(7 << 20) } }],
    });
    let r = post(big.to_string().into_bytes()).await.unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["x-amzn-errortype"], "BadRequestException");
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("length limit"),
        "{v}"
    );
}

// ---- web pages and the admin listener ----

/// An attacker's page, served by the gateway (another origin than the
/// admin listener's): a "simple" cross-site POST needs no preflight.
fn evil_page(admin: u16) -> String {
    format!(
        r#"<html><body><p id="done">waiting</p><script>
const body = JSON.stringify({{ resourceArn: "{ARN}", sql: "CREATE TABLE pwned (x)" }});
fetch("http://127.0.0.1:{admin}/Execute", {{ method: "POST", mode: "no-cors", headers: {{ "Content-Type": "text/plain" }}, body }})
  .finally(() => fetch("http://127.0.0.1:{admin}/2015-03-31/functions/f/invocations", {{ method: "POST", mode: "no-cors", body: "{{}}" }}))
  .finally(() => {{ document.getElementById("done").textContent = "sent"; }});
</script></body></html>"#
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_web_page_cannot_drive_the_admin_apis() {
    let admin_port = crate::support::free_port();
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "f/app.py",
        "def handler(event, context):\n    open('invoked', 'w').write('yes')\n    return 'ok'\n",
    );
    write_file(
        dir.path(),
        "stratus.toml",
        &format!(
            r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:{admin_port}"
admin_allow_origins = ["http://tools.localhost:3000"]

[functions.f]
runtime = "python3"
handler = "app.handler"
code = "f"

[databases.main]

[buckets.files]
cors = {{ allow_origins = ["http://site.localhost:8080"], allow_methods = ["GET", "PUT", "POST", "DELETE"] }}

[apis.web]
type = "http"
[apis.web.routes]
"GET /evil" = {{ mock = {{ status = 200, headers = {{ content-type = "text/html" }}, body = {page:?} }} }}
"#,
            page = evil_page(admin_port)
        ),
    );
    let s = Serving::start(dir.path());
    let admin = s.admin;
    let client = reqwest::Client::new();
    let exists = |table: &'static str| async move {
        let (status, body) = execute(
            admin,
            sql(&format!(
                "SELECT count(*) AS n FROM sqlite_master WHERE name = '{table}'"
            )),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body["records"][0][0]["longValue"] == 1
    };

    // A real browser opens the page; its requests reach nothing.
    if let Some(browser) = crate::support::chromium("a cross-site page") {
        // Virtual time runs once the network is idle: the DOM is dumped
        // after the page's requests are answered.
        let flags = ["--virtual-time-budget=5000", "--dump-dom"].map(str::to_owned);
        let out = crate::support::headless(browser, flags.to_vec(), s.url("/evil")).await;
        let dom = String::from_utf8_lossy(&out.stdout);
        assert!(
            dom.contains(">sent<"),
            "the page ran its script: {dom}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!exists("pwned").await, "the page's SQL ran");
        assert!(
            !dir.path().join("f/invoked").exists(),
            "the page invoked a function"
        );
    }

    // The same requests by hand: a foreign Origin, a form content type.
    let page_sql = sql("CREATE TABLE pwned (x)").to_string();
    let r = client
        .post(format!("http://{admin}/Execute"))
        .header("origin", "http://evil.example")
        .header("content-type", "text/plain")
        .body(page_sql.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let why: Value = r.json().await.unwrap();
    assert!(
        why["message"]
            .as_str()
            .unwrap()
            .contains("admin_allow_origins"),
        "{why}"
    );
    let r = client
        .post(format!("http://{admin}/Execute"))
        .header("content-type", "text/plain")
        .body(page_sql.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a form content type without an Origin");
    assert!(!exists("pwned").await);

    // DeleteObjects from a foreign page: refused, the object kept.
    let obj = format!("http://{admin}/s3/files/keep.txt");
    assert_eq!(
        client.put(&obj).body("kept").send().await.unwrap().status(),
        200
    );
    let delete = "<Delete><Object><Key>keep.txt</Key></Object></Delete>";
    let r = client
        .post(format!("http://{admin}/s3/files?delete"))
        .header("origin", "http://evil.example")
        .body(delete)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        client.get(&obj).send().await.unwrap().text().await.unwrap(),
        "kept"
    );

    // Invoke from a foreign page: refused, the function never ran.
    let r = client
        .post(format!("http://{admin}/2015-03-31/functions/f/invocations"))
        .header("origin", "http://evil.example")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(!dir.path().join("f/invoked").exists());

    // A DNS name rebound to 127.0.0.1: same-origin for the page, refused
    // by its Host.
    let (head, _) = stratus_testkit::raw_http(
        admin,
        &format!(
            "POST /Execute HTTP/1.1\r\nHost: evil.example:{admin_port}\r\nOrigin: http://evil.example:{admin_port}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            page_sql.len()
        ),
        page_sql.as_bytes(),
    )
    .await;
    assert!(head.starts_with("HTTP/1.1 403"), "{head}");
    assert!(!exists("pwned").await);

    // What is allowed: the dashboard's own origin, a listed origin, a
    // bucket's CORS origin on that bucket, and clients with no Origin.
    for origin in [
        format!("http://127.0.0.1:{admin_port}"),
        "http://tools.localhost:3000".to_owned(),
    ] {
        let r = client
            .post(format!("http://{admin}/Execute"))
            .header("origin", &origin)
            .header("content-type", "application/json")
            .body(sql("SELECT 1").to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{origin}");
    }
    let r = client
        .put(&obj)
        .header("origin", "http://site.localhost:8080")
        .body("from the site")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(format!("http://{admin}/stratus/dashboard.json"))
        .header("origin", "http://site.localhost:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a bucket's origin reaches only its bucket");
    let r = client
        .get(format!("http://localhost:{admin_port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

// ---- the S3 API ----

/// An S3 request (unsigned: no credentials are configured).
async fn s3(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: impl Into<reqwest::Body>,
) -> (u16, String) {
    let r = c.request(method, url).body(body).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn code_of(xml: &str) -> &str {
    xml.split("<Code>")
        .nth(1)
        .and_then(|r| r.split("</Code>").next())
        .unwrap_or("")
}

fn upload_id(xml: &str) -> String {
    xml.split("<UploadId>")
        .nth(1)
        .unwrap()
        .split("</UploadId>")
        .next()
        .unwrap()
        .to_owned()
}

fn completion(parts: &[(u32, &str)]) -> String {
    let parts: String = parts
        .iter()
        .map(|(n, e)| format!("<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"))
        .collect();
    format!("<CompleteMultipartUpload>{parts}</CompleteMultipartUpload>")
}

#[tokio::test]
async fn s3_multipart_uploads_refuse_bad_completions_and_foreign_ids_and_change_nothing() {
    let s = TestServer::start("[buckets.bkt1]\n[buckets.bkt2]\n").await;
    let c = reqwest::Client::new();
    let url = |path: &str| s.admin_url(&format!("/s3/{path}"));
    use reqwest::Method as M;
    assert_eq!(s3(&c, M::PUT, url("bkt1/mp6"), "original").await.0, 200);
    let (_, created) = s3(&c, M::POST, url("bkt1/mp6?uploads"), "").await;
    let id = upload_id(&created);
    let big = vec![b'a'; 5 * 1024 * 1024];
    let part = |n: u32, key: &str, id: &str| url(&format!("{key}?partNumber={n}&uploadId={id}"));
    let put_part = |n: u32, body: Vec<u8>| {
        let c = c.clone();
        let u = part(n, "bkt1/mp6", &id);
        async move {
            let r = c.put(u).body(body).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.headers()["etag"].to_str().unwrap().to_owned()
        }
    };
    let e1 = put_part(1, big.clone()).await;
    let e2 = put_part(2, b"tail".to_vec()).await;
    let complete = |key: &str, id: &str, body: String| {
        s3(&c, M::POST, url(&format!("{key}?uploadId={id}")), body)
    };
    let original = || s3(&c, M::GET, url("bkt1/mp6"), "");

    // Malformed bodies: 400 MalformedXML, the object as it was.
    let good = completion(&[(1, &e1), (2, &e2)]);
    for body in [
        good[..good.len() / 2].to_owned(),
        String::new(),
        "garbage".to_owned(),
        "<CompleteMultipartUpload></CompleteMultipartUpload>".to_owned(),
    ] {
        let (status, xml) = complete("bkt1/mp6", &id, body.clone()).await;
        assert_eq!(
            (status, code_of(&xml)),
            (400, "MalformedXML"),
            "{body:?}: {xml}"
        );
        assert_eq!(original().await, (200, "original".to_owned()));
    }
    // Out of order, duplicated, a small part before the last.
    for (parts, code) in [
        (vec![(2, e2.as_str()), (1, e1.as_str())], "InvalidPartOrder"),
        (vec![(1, e1.as_str()), (1, e1.as_str())], "InvalidPartOrder"),
        (vec![(1, e1.as_str()), (3, "\"nope\"")], "InvalidPart"),
    ] {
        let (status, xml) = complete("bkt1/mp6", &id, completion(&parts)).await;
        assert_eq!((status, code_of(&xml)), (400, code), "{parts:?}: {xml}");
    }
    let (_, small) = s3(&c, M::POST, url("bkt1/small?uploads"), "").await;
    let small = upload_id(&small);
    let mut etags = Vec::new();
    for n in 1..=2 {
        let r = c
            .put(part(n, "bkt1/small", &small))
            .body("tiny")
            .send()
            .await
            .unwrap();
        etags.push(r.headers()["etag"].to_str().unwrap().to_owned());
    }
    let (status, xml) = complete(
        "bkt1/small",
        &small,
        completion(&[(1, &etags[0]), (2, &etags[1])]),
    )
    .await;
    assert_eq!((status, code_of(&xml)), (400, "EntityTooSmall"), "{xml}");

    // An upload id is its own bucket's and key's.
    let (status, xml) = s3(&c, M::PUT, part(3, "bkt2/other", &id), "stray").await;
    assert_eq!((status, code_of(&xml)), (404, "NoSuchUpload"), "{xml}");
    let (status, xml) = complete("bkt2/stolen", &id, good.clone()).await;
    assert_eq!((status, code_of(&xml)), (404, "NoSuchUpload"), "{xml}");
    assert_eq!(s3(&c, M::GET, url("bkt2/stolen"), "").await.0, 404);
    let (status, _) = s3(&c, M::DELETE, url(&format!("bkt2/other?uploadId={id}")), "").await;
    assert_eq!(status, 404, "another key cannot abort it");

    // The right completion still works, with the parts as uploaded.
    let (status, xml) = complete("bkt1/mp6", &id, good).await;
    assert_eq!(status, 200, "{xml}");
    let got = c
        .get(url("bkt1/mp6"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.len(), big.len() + 4);
    assert!(got.ends_with(b"tail"));
}

#[tokio::test]
async fn delete_objects_refuses_truncated_bodies_and_over_a_thousand_keys() {
    let s = TestServer::start("[buckets.bkt]\n").await;
    let c = reqwest::Client::new();
    let url = |path: &str| s.admin_url(&format!("/s3/{path}"));
    use reqwest::Method as M;
    assert_eq!(s3(&c, M::PUT, url("bkt/d1"), "one").await.0, 200);
    let truncated = "<Delete><Object><Key>d1</Key></Obj";
    let (status, xml) = s3(&c, M::POST, url("bkt?delete"), truncated).await;
    assert_eq!((status, code_of(&xml)), (400, "MalformedXML"), "{xml}");
    assert_eq!(
        s3(&c, M::GET, url("bkt/d1"), "").await,
        (200, "one".to_owned())
    );
    let many: String = (0..1001)
        .map(|i| format!("<Object><Key>k{i}</Key></Object>"))
        .collect();
    let (status, xml) = s3(
        &c,
        M::POST,
        url("bkt?delete"),
        format!("<Delete>{many}</Delete>"),
    )
    .await;
    assert_eq!((status, code_of(&xml)), (400, "MalformedXML"), "{xml}");
    let fine = "<Delete><Object><Key>d1</Key></Object><Quiet>true</Quiet></Delete>";
    assert_eq!(s3(&c, M::POST, url("bkt?delete"), fine).await.0, 200);
    assert_eq!(s3(&c, M::GET, url("bkt/d1"), "").await.0, 404);
}

#[tokio::test]
async fn broken_and_oversized_s3_uploads_are_refused_without_buffering() {
    let (_dir, s) = serve("[buckets.bkt]\n", &[]);
    let c = reqwest::Client::new();
    let url = format!("http://{}/s3/bkt/obj", s.admin);
    let chunked = |body: &'static str, decoded: &str| {
        c.put(&url)
            .header("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
            .header("content-encoding", "aws-chunked")
            .header("x-amz-decoded-content-length", decoded)
            .body(body)
            .send()
    };
    // A chunk size of 2^64-1 once overflowed and panicked the handler.
    let r = chunked("ffffffffffffffff\r\nhello\r\n0\r\n\r\n", "5")
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(code_of(&r.text().await.unwrap()), "IncompleteBody");
    // A decoded length that is not the body's.
    let r = chunked("5\r\nhello\r\n0\r\n\r\n", "9").await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(code_of(&r.text().await.unwrap()), "IncompleteBody");
    let r = chunked("5\r\nhello\r\n0\r\n\r\n", "5").await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        c.get(&url).send().await.unwrap().text().await.unwrap(),
        "hello"
    );

    // A Content-Length past the 128 MB cap is answered before any body is
    // sent (the client here sends none at all).
    let before = s.peak_rss_kb();
    let mut sock = tokio::net::TcpStream::connect(s.admin).await.unwrap();
    sock.write_all(
        b"PUT /s3/bkt/huge HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 200000000\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut head))
        .await
        .expect("answered on the header, before the body")
        .unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 400"), "{head}");
    assert!(head.contains("EntityTooLarge"), "{head}");
    assert!(s.peak_rss_kb() - before < 20 * 1024, "nothing was buffered");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_concurrent_s3_reads_leave_few_threads_behind() {
    let (_dir, s) = serve("[buckets.bkt]\n", &[]);
    let c = reqwest::Client::new();
    let url = format!("http://{}/s3/bkt/obj", s.admin);
    assert_eq!(
        c.put(&url)
            .body(vec![7u8; 1 << 20])
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let gets = (0..1000).map(|_| {
        let (c, url) = (c.clone(), url.clone());
        tokio::spawn(async move {
            let mut r = c.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            // Read slowly: every stream stays open, reading, at once.
            let mut len = 0;
            while let Some(chunk) = r.chunk().await.unwrap() {
                len += chunk.len();
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            len
        })
    });
    let pid = s.child.id();
    let before = threads_of(pid);
    for g in futures_util::future::join_all(gets).await {
        assert_eq!(g.unwrap(), 1 << 20);
    }
    // Threads for blocking work are bounded, and idle ones end soon.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = threads_of(pid);
    assert!(
        after <= before + 8,
        "{after} threads alive 4 s after the reads ({before} before)"
    );
}

// ---- JWT authorizers ----

#[tokio::test(flavor = "multi_thread")]
async fn unknown_jwt_kids_cost_one_fetch_and_never_stall_valid_tokens() {
    let signer = tokio::task::spawn_blocking(|| Signer::new("real"))
        .await
        .unwrap();
    let set = json!({ "keys": [signer.jwk] }).to_string();
    let (idp, fetches) =
        jwks_server_with(Arc::new(std::sync::Mutex::new(set)), Duration::from_secs(2)).await;
    let s = TestServer::start(&format!(
        r#"
[apis.web]
type = "http"
[apis.web.authorizers.login]
type = "jwt"
issuer = "https://issuer.example"
audience = ["my-app"]
jwks = "http://{idp}/jwks.json"
[apis.web.routes]
"GET /me" = {{ mock = {{ status = 200, body = "me" }}, authorizer = "login" }}
"#
    ))
    .await;
    let claims =
        json!({ "iss": "https://issuer.example", "aud": "my-app", "sub": "u", "exp": now() + 600 });
    let good = signer.token(claims.clone());
    let client = reqwest::Client::new();
    let get = |token: String| {
        let (client, url) = (client.clone(), s.url("/me"));
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(get(good.clone()).await, 200, "the first load");
    assert_eq!(fetches.load(Ordering::SeqCst), 1);

    // Tokens that name 300 kids nobody has, with a made-up signature.
    let forged: Vec<String> = (0..300)
        .map(|i| {
            let mut t = signer.token(claims.clone());
            let header = base64_url(
                &json!({ "alg": "RS256", "typ": "JWT", "kid": format!("k{i}") }).to_string(),
            );
            t.replace_range(..t.find('.').unwrap(), &header);
            t
        })
        .collect();
    let flood = futures_util::future::join_all(forged.into_iter().map(&get));
    let valid = async {
        // While the flood (and its one refetch, 2 s slow) is under way, a
        // valid token is answered from the keys already known.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let at = tokio::time::Instant::now();
        let status = get(good.clone()).await;
        (status, at.elapsed())
    };
    let (statuses, (status, took)) = tokio::join!(flood, valid);
    assert!(statuses.iter().all(|s| *s == 401), "forged tokens refused");
    assert_eq!(status, 200);
    assert!(
        took < Duration::from_secs(1),
        "a valid token waited {took:?} behind a key-set fetch"
    );
    assert_eq!(
        fetches.load(Ordering::SeqCst),
        2,
        "one refetch for 300 unknown kids"
    );

    // A JWK that says RS256 verifies nothing else.
    for alg in [
        jsonwebtoken::Algorithm::RS512,
        jsonwebtoken::Algorithm::PS256,
    ] {
        let t = signer.token_with(alg, claims.clone());
        assert_eq!(get(t).await, 401, "{alg:?}");
    }
}

fn base64_url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

// ---- the dashboard stream ----

/// The first `data:` of an SSE stream, with its `id:`.
async fn first_event(r: reqwest::Response) -> (String, String) {
    let mut stream = r.bytes_stream();
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    (field("id:"), field("data:"))
}

#[tokio::test(flavor = "multi_thread")]
async fn dashboard_streams_are_capped_and_share_one_snapshot() {
    let (_dir, s) = serve("max_connections = 40\ndashboard_streams = 4\n", &[]);
    let client = reqwest::Client::new();
    let url = format!("http://{}/stratus/dashboard/stream", s.admin);
    let mut open = Vec::new();
    for _ in 0..4 {
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        open.push(r);
    }
    // Past the cap: 503 at once, with the setting's name.
    for _ in 0..20 {
        let r = client.get(&url).send().await.unwrap();
        assert_eq!(r.status(), 503);
        assert!(r.text().await.unwrap().contains("dashboard_streams"));
    }
    // Streams started together get the same snapshot: built once a tick.
    let mut events = Vec::new();
    for r in open.drain(..2) {
        events.push(first_event(r).await);
    }
    let (a, b) = (&events[0], &events[1]);
    assert!(!a.1.is_empty());
    let ids: Vec<u64> = events.iter().map(|e| e.0.parse().unwrap()).collect();
    if ids[0] == ids[1] {
        assert_eq!(a.1, b.1, "one snapshot per tick");
    }
    // Closing streams frees their places.
    drop(events);
    let mut back = 0;
    for _ in 0..50 {
        if client.get(&url).send().await.unwrap().status() == 200 {
            back += 1;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(back, 1, "a closed stream's place is free again");

    // At the connection cap, /healthz is still answered.
    let mut idle = Vec::new();
    for _ in 0..45 {
        idle.push(tokio::net::TcpStream::connect(s.admin).await.unwrap());
    }
    let r = reqwest::get(format!("http://{}/healthz", s.admin))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "ok\n");
    let r = reqwest::get(format!("http://{}/stratus/dashboard.json", s.admin))
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "the rest is refused at the cap");
}

// ---- WebSocket throttling ----

const ECHO_WS_PY: &str = r#"
import json, time
def handler(event, context):
    body = event.get("body") or ""
    if body.startswith("slow"):
        time.sleep(0.5)
    return {"statusCode": 200, "body": json.dumps({"echo": body})}
"#;

async fn ws_server(throttle: &str) -> TestServer {
    TestServer::start_with_files(
        &format!(
            r#"
[functions.ws]
runtime = "python3"
handler = "app.handler"
code = "ws"

[apis.chat]
type = "websocket"
base_path = "/chat"
[apis.chat.routes]
"$default" = {{ function = "ws", respond = true {throttle} }}
"#
        ),
        &[("ws/app.py", ECHO_WS_PY)],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fast_sender_on_a_throttled_websocket_route_is_answered_and_stays_connected() {
    let s = ws_server(", throttle = { rate = 1, burst = 5 }").await;
    let url = format!("ws://{}/chat", s.gateway);
    let (ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let (mut tx, mut rx) = ws.split();
    let reader = tokio::spawn(async move {
        let (mut echoes, mut throttled) = (0, 0);
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(5), rx.next()).await {
            match msg {
                Ok(Message::Text(t)) if t.contains("Too Many Requests") => throttled += 1,
                Ok(Message::Text(t)) if t.contains("echo") => {
                    echoes += 1;
                    if t.contains("last") {
                        return (echoes, throttled, None);
                    }
                }
                Ok(Message::Close(f)) => return (echoes, throttled, Some(format!("{f:?}"))),
                Ok(_) => {}
                Err(e) => return (echoes, throttled, Some(e.to_string())),
            }
        }
        (echoes, throttled, Some("no last answer".into()))
    });
    for i in 0..2000 {
        tx.send(Message::text(format!("m{i}"))).await.unwrap();
    }
    // The bucket refills one a second: the last message gets through.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    tx.send(Message::text("last")).await.unwrap();
    let (echoes, throttled, closed) = reader.await.unwrap();
    assert_eq!(closed, None, "the connection stayed open");
    assert!(
        throttled > 100,
        "throttled messages were answered: {throttled}"
    );
    assert!((2..=10).contains(&echoes), "{echoes} got through");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_cut_for_too_many_messages_in_flight_gets_the_close_frame() {
    let s = ws_server("").await;
    let url = format!("ws://{}/chat", s.gateway);
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    for i in 0..600 {
        if ws.send(Message::text(format!("slow {i}"))).await.is_err() {
            break;
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let close = loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Err(_) => panic!("not closed within 20 s"),
            Ok(Some(Ok(Message::Close(f)))) => {
                break f.map(|f| (u16::from(f.code), f.reason.to_string()))
            }
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(e))) => panic!("no close frame: {e}"),
            Ok(None) => panic!("no close frame: the stream ended"),
        }
    };
    assert_eq!(
        close,
        Some((1008, "Too many messages in flight".to_owned()))
    );
}

// ---- clients that stop reading ----

#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_stops_reading_is_closed_after_the_header_timeout() {
    let (_dir, s) = serve("header_timeout = 2\n\n[buckets.bkt]\n", &[]);
    let size = 48 << 20;
    let url = format!("http://{}/s3/bkt/big", s.admin);
    let r = reqwest::Client::new()
        .put(&url)
        .body(vec![1u8; size])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Asks for 48 MB, reads nothing for 6 s (past loopback's buffers,
    // the server's writes wait), then reads what there is.
    let mut sock = tokio::net::TcpStream::connect(s.admin).await.unwrap();
    sock.write_all(b"GET /s3/bkt/big HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got += n,
            Err(_) => panic!("the connection was left open"),
        }
    }
    assert!(
        got < size,
        "the whole answer ({got} bytes) waited for a client that read nothing"
    );
    // The server goes on answering.
    let health = reqwest::get(format!("http://{}/healthz", s.admin))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
