//! Graceful shutdown of the real binary on SIGTERM / SIGINT.

use std::time::Duration;

use stratus_testkit::{write_file, Upstream};

use crate::support::Serving;

#[tokio::test]
async fn sigterm_lets_an_in_flight_request_finish_then_exits_zero() {
    let up = Upstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "stratus.toml",
        &format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\n[apis.web]\ntype = \"http\"\n[apis.web.routes]\n\"GET /slow\" = {{ http = \"{}\" }}\n",
            up.url("/slow")
        ),
    );
    let mut s = Serving::start(dir.path());
    let url = s.url("/slow?ms=1500");
    let in_flight = tokio::spawn(async move { reqwest::get(url).await?.text().await });
    // Let the request reach the upstream, then ask the server to stop.
    tokio::time::sleep(Duration::from_millis(400)).await;
    s.signal("TERM");
    let body = in_flight
        .await
        .unwrap()
        .expect("in-flight request completed");
    assert_eq!(body, "slow done");
    let status = tokio::task::spawn_blocking(move || {
        let st = s.child.wait().unwrap();
        let lines: Vec<String> = s.lines.try_iter().collect();
        (st, lines, s.gateway)
    })
    .await
    .unwrap();
    let (status, lines, gateway) = status;
    assert!(status.success(), "exit status {status}");
    assert!(
        lines.iter().any(|l| l.contains("SIGTERM received")),
        "{lines:?}"
    );
    // Nothing listens any more.
    assert!(std::net::TcpStream::connect(gateway).is_err());
}

#[tokio::test]
async fn sigint_stops_an_idle_server_with_exit_zero() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "stratus.toml",
        "[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n",
    );
    let mut s = Serving::start(dir.path());
    s.signal("INT");
    let status = tokio::task::spawn_blocking(move || s.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "exit status {status}");
}
