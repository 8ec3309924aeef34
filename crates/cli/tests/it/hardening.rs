//! What a careless or hostile client or function must not do to the server:
//! regression tests for each hole found when Stratus was probed, on the real
//! server with real sockets and real function processes.

use std::path::Path;
use std::time::Duration;

use stratus_testkit::write_file;

use crate::support::Serving;

fn project(dir: &Path, body: &str, files: &[(&str, &str)]) {
    for (rel, text) in files {
        write_file(dir, rel, text);
    }
    write_file(
        dir,
        "stratus.toml",
        &format!("[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n{body}"),
    );
}

#[tokio::test]
async fn requests_are_answered_while_nobody_reads_the_log_pipe() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        "[apis.web]\ntype = \"http\"\n[apis.web.routes]\n\"GET /{proxy+}\" = { mock = { status = 200, body = \"ok\" } }\n",
        &[],
    );
    let s = Serving::start(dir.path());
    s.pause_stderr(true);
    // Each access log line carries a 2 KB path: 3,000 of them are ~7 MB of
    // log, far past the pipe (64 KB) and the writer's own bound (4 MB).
    let long = "a".repeat(2000);
    let client = reqwest::Client::new();
    for i in 0..3000 {
        let r = tokio::time::timeout(
            Duration::from_secs(10),
            client.get(s.url(&format!("/{long}/{i}"))).send(),
        )
        .await
        .unwrap_or_else(|_| panic!("request {i} hung: logging blocked serving"))
        .unwrap();
        assert_eq!(r.status(), 200);
    }
    let health = reqwest::get(format!("http://{}/healthz", s.admin))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // Once stderr is read again, the lines dropped meanwhile are counted.
    s.pause_stderr(false);
    let lines = tokio::task::spawn_blocking(move || {
        s.wait_line("log lines were dropped", Duration::from_secs(20))
    })
    .await
    .unwrap();
    assert!(lines.len() > 100, "some lines got through: {}", lines.len());
}

const NOISY_PY: &str = r#"
import sys
def handler(event, context):
    what = event.get("what")
    if what == "huge":
        chunk = "x" * (1024 * 1024)
        for _ in range(int(event["mb"])):
            sys.stdout.write(chunk)
        sys.stdout.flush()
        return "written"
    if what == "bad-utf8":
        sys.stdout.buffer.write(b"before \xff\xfe\xfd after\n")
        sys.stdout.flush()
        print("marker-1", flush=True)
        return "bad"
    print("marker-" + str(event["n"]), flush=True)
    return "ok"
"#;

fn noisy_project(dir: &Path) {
    project(
        dir,
        "[functions.noisy]\nruntime = \"python3\"\nhandler = \"app.handler\"\ncode = \"noisy\"\nmemory = 512\ntimeout = 30\n",
        &[("noisy/app.py", NOISY_PY)],
    );
}

async fn invoke(s: &Serving, payload: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!(
            "http://{}/2015-03-31/functions/noisy/invocations",
            s.admin
        ))
        .body(payload.to_owned())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn a_huge_log_line_is_split_and_never_held_whole() {
    let dir = tempfile::tempdir().unwrap();
    noisy_project(dir.path());
    let s = Serving::start(dir.path());
    let before = s.peak_rss_kb();
    let (status, body) = invoke(&s, r#"{"what":"huge","mb":64}"#).await;
    assert_eq!((status, body.as_str()), (200, "\"written\""));
    // The 64 MB line arrives as 256 KB pieces.
    let s = tokio::task::spawn_blocking(move || {
        let mut pieces = 0;
        while pieces < 256 {
            let seen = s.wait_line("xxxxxxxx", Duration::from_secs(60));
            pieces += seen.iter().filter(|l| l.contains("xxxxxxxx")).count();
            let longest = seen.iter().map(String::len).max().unwrap_or(0);
            assert!(longest < 256 * 1024 + 512, "a line of {longest} bytes");
        }
        s
    })
    .await
    .unwrap();
    let peak = s.peak_rss_kb();
    assert!(
        peak < before + 32 * 1024,
        "server peak memory went from {before} KB to {peak} KB"
    );
}

#[tokio::test]
async fn invalid_utf8_output_is_logged_lossily_and_the_next_call_works() {
    let dir = tempfile::tempdir().unwrap();
    noisy_project(dir.path());
    let s = Serving::start(dir.path());
    assert_eq!(
        invoke(&s, r#"{"what":"bad-utf8"}"#).await,
        (200, "\"bad\"".into())
    );
    for n in 2..5 {
        let (status, body) = invoke(&s, &format!(r#"{{"n":{n}}}"#)).await;
        assert_eq!((status, body.as_str()), (200, "\"ok\""), "call {n}");
    }
    let seen =
        tokio::task::spawn_blocking(move || s.wait_line("marker-4", Duration::from_secs(10)))
            .await
            .unwrap();
    assert!(
        seen.iter()
            .any(|l| l.contains("before \u{fffd}\u{fffd}\u{fffd} after")),
        "{seen:#?}"
    );
    for m in ["marker-1", "marker-2", "marker-3"] {
        assert!(seen.iter().any(|l| l.contains(m)), "{m} lost: {seen:#?}");
    }
}

mod listener_limits {
    use std::time::Duration;

    use stratus_testkit::TestServer;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    const MOCK_API: &str = "[apis.web]\ntype = \"http\"\n[apis.web.routes]\n\"ANY /ping\" = { mock = { status = 200, body = \"pong\" } }\n";

    /// Reads until the peer closes (bounded); what it sent.
    async fn read_to_close(s: &mut TcpStream, limit: Duration) -> String {
        let mut out = Vec::new();
        tokio::time::timeout(limit, s.read_to_end(&mut out))
            .await
            .expect("the server closes the connection in time")
            .ok();
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn a_client_trickling_headers_gets_408_and_is_closed() {
        let s = TestServer::start_full("header_timeout = 1", MOCK_API, &[]).await;
        let mut c = TcpStream::connect(s.gateway).await.unwrap();
        c.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        // One byte every 200 ms: never done within the second it has.
        let trickle = async {
            for b in b"X-Slow: aaaaaaaaaaaaaaaaaaaaa".iter() {
                if c.write_all(&[*b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(3), trickle)
            .await
            .ok();
        let answer = read_to_close(&mut c, Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 408 "), "{answer:?}");
        assert!(
            answer.ends_with(r#"{"message":"Request Timeout"}"#),
            "{answer:?}"
        );
        // The server is fine.
        let r = reqwest::get(s.url("/ping")).await.unwrap();
        assert_eq!(r.text().await.unwrap(), "pong");
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_closed() {
        let s = TestServer::start_full("header_timeout = 1", MOCK_API, &[]).await;
        let mut c = TcpStream::connect(s.gateway).await.unwrap();
        c.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        // The answer, then nothing more: closed without another status line.
        let all = read_to_close(&mut c, Duration::from_secs(5)).await;
        assert!(all.starts_with("HTTP/1.1 200 "), "{all:?}");
        assert!(all.ends_with("pong"), "{all:?}");
        assert_eq!(all.matches("HTTP/1.1").count(), 1, "{all:?}");
    }

    #[tokio::test]
    async fn connections_past_the_cap_get_503_and_the_admin_listener_still_answers() {
        let s = TestServer::start_full("max_connections = 5", MOCK_API, &[]).await;
        let mut held = Vec::new();
        for _ in 0..5 {
            let mut c = TcpStream::connect(s.gateway).await.unwrap();
            c.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 256];
            let n = c.read(&mut buf).await.unwrap();
            assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
            held.push(c); // kept open (keep-alive)
        }
        let mut extra = TcpStream::connect(s.gateway).await.unwrap();
        extra
            .write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let answer = read_to_close(&mut extra, Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 503 "), "{answer:?}");
        assert!(answer.contains(r#"{"message":"Service Unavailable"}"#));
        let health = reqwest::get(s.admin_url("/healthz")).await.unwrap();
        assert_eq!(health.status(), 200);
        // Slots come back as connections close.
        drop(held);
        let mut ok = false;
        for _ in 0..50 {
            if let Ok(r) = reqwest::get(s.url("/ping")).await {
                if r.status() == 200 {
                    ok = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ok, "the gateway answers again once connections close");
    }

    #[tokio::test]
    async fn a_flood_past_the_cap_is_refused_and_every_socket_released() {
        use stratus_testkit::{eventually, sockets_on_port, TCP_ESTABLISHED};
        let s = TestServer::start_full("max_connections = 2", MOCK_API, &[]).await;
        let port = s.gateway.port();
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut c = TcpStream::connect(s.gateway).await.unwrap();
            c.write_all(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut buf = [0u8; 256];
            let _ = c.read(&mut buf).await.unwrap();
            held.push(c);
        }
        // 400 connections that send nothing and never close.
        let mut flood = Vec::new();
        for _ in 0..400 {
            if let Ok(c) = TcpStream::connect(s.gateway).await {
                flood.push(c);
            }
        }
        // Each was answered or closed within its second; only the two held
        // connections remain open on the server's side.
        let released = eventually(Duration::from_secs(10), || {
            sockets_on_port(port, TCP_ESTABLISHED) == 2
        })
        .await;
        assert!(
            released,
            "{} server sockets still open",
            sockets_on_port(port, TCP_ESTABLISHED)
        );
        drop(flood);
        drop(held);
    }

    #[tokio::test]
    async fn headers_over_the_limit_get_431() {
        let s = TestServer::start(MOCK_API).await;
        let client = reqwest::Client::new();
        let r = client
            .get(s.url("/ping"))
            .header("x-big", "a".repeat(9 * 1024))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "9 KB of headers is within API Gateway's 10 KB"
        );
        let r = client
            .get(s.url("/ping"))
            .header("x-big", "a".repeat(100 * 1024))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 431);
        let r = client.get(s.url("/ping")).send().await.unwrap();
        assert_eq!(r.status(), 200);
    }

    #[tokio::test]
    async fn a_mock_route_refuses_a_streamed_body_over_10_mb() {
        let s = TestServer::start(MOCK_API).await;
        let chunks = (0..11).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 1024 * 1024]));
        let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
        let r = reqwest::Client::new()
            .post(s.url("/ping"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
    }
}

#[test]
fn serve_raises_the_open_file_limit_to_the_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), "", &[]);
    let s = Serving::start(dir.path());
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", s.child.id())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap();
    let f: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(f[3], f[4], "soft = hard: {line}");
}
