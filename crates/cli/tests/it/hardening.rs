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
    let lines = tokio::task::spawn_blocking(move || {
        let seen = s.wait_line("REPORT RequestId", Duration::from_secs(60));
        (seen, s)
    })
    .await
    .unwrap();
    let (seen, s) = lines;
    let pieces: Vec<&String> = seen.iter().filter(|l| l.contains("xxxxxxxx")).collect();
    assert_eq!(pieces.len(), 256, "64 MB in 256 KB pieces");
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
