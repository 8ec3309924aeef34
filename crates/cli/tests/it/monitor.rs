//! Monitoring through the real binary (its own process: the counters are
//! the process's): `/metrics` read by Prometheus's own parser after known
//! traffic, a stage's access log format, `stratus logs -f`, and the
//! dashboard in headless Chromium.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::support::{free_port, stratus, Serving};

const APP_PY: &str = r#"
import time
def handler(event, context):
    path = event.get("rawPath", "")
    if path.endswith("/fail"):
        raise RuntimeError("boom")
    print("handled " + path + " " + (event.get("queryStringParameters") or {}).get("mark", ""))
    return {"statusCode": 200, "body": "ok"}
"#;

/// Writes the project; the admin listener on a known port (for the CLI).
fn project(dir: &Path, admin: u16) {
    stratus_testkit::write_file(
        dir,
        "stratus.toml",
        &format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:{admin}"

[functions.app]
runtime = "python3"
handler = "app.handler"
code = "app"

[apis.web]
type = "http"
stages = {{ prod = {{ access_log = {{ file = "logs/access.log", format = '{{"id":"$context.requestId","ip":"$context.identity.sourceIp","method":"$context.httpMethod","route":"$context.routeKey","resource":"$context.resourcePath","path":"$context.path","status":"$context.status","len":"$context.responseLength","latency":"$context.responseLatency","ilatency":"$context.integrationLatency","istatus":"$context.integrationStatus","error":"$context.error.message","etype":"$context.error.responseType","time":"$context.requestTime","epoch":"$context.requestTimeEpoch","stage":"$context.stage","api":"$context.apiId","ua":"$context.identity.userAgent"}}' }} }} }}
[apis.web.routes]
"GET /ping" = {{ mock = {{ status = 200, body = "pong" }} }}
"GET /fn" = {{ function = "app" }}
"GET /fail" = {{ function = "app" }}
"GET /one" = {{ mock = {{ status = 200 }}, throttle = {{ rate = 0.001, burst = 1 }} }}

[databases.main]
migrations = "migrations"
"#
        ),
    );
    stratus_testkit::write_file(dir, "app/app.py", APP_PY);
    stratus_testkit::write_file(
        dir,
        "migrations/001_init.sql",
        "CREATE TABLE t (x INTEGER);",
    );
}

fn get(rt: &tokio::runtime::Runtime, s: &Serving, path: &str) -> u16 {
    rt.block_on(async {
        reqwest::Client::new()
            .get(s.url(path))
            .header("user-agent", "monitor-test/1")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    })
}

/// `(name, labels, value)` of every sample, as Prometheus's parser reads them.
fn parse_prometheus(text: &str) -> Vec<(String, serde_json::Map<String, Value>, f64)> {
    let script = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        out.append([s.name, s.labels, s.value])
print(json.dumps(out))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Prometheus parser refused /metrics: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Vec<(String, serde_json::Map<String, Value>, f64)> =
        serde_json::from_slice(&out.stdout).unwrap();
    v
}

fn sample(
    samples: &[(String, serde_json::Map<String, Value>, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k) == Some(&Value::from(*v)))
        })
        .map(|(_, _, v)| v)
        .sum()
}

#[test]
fn metrics_access_logs_logs_follow_and_the_dashboard_after_known_traffic() {
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    project(dir.path(), admin);
    let s = Serving::start(dir.path());
    let rt = tokio::runtime::Runtime::new().unwrap();

    // `stratus logs -f` from before the traffic: it must see lines printed later.
    let mut follow = stratus()
        .args(["logs", "app", "-f", "--project"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let follow_out = follow.stdout.take().unwrap();
    // Its first poll comes before the traffic (a test thread, no runtime).
    #[allow(clippy::disallowed_methods)]
    std::thread::sleep(Duration::from_millis(800));

    // Known traffic: 3 mocks, 2 function calls (the first a cold start),
    // one function failure (502), 2 unknown paths (404), a throttle (429).
    for _ in 0..3 {
        assert_eq!(get(&rt, &s, "/prod/ping"), 200);
    }
    assert_eq!(get(&rt, &s, "/prod/fn?mark=first"), 200);
    assert_eq!(get(&rt, &s, "/prod/fn?mark=followed-line"), 200);
    assert_eq!(get(&rt, &s, "/prod/fail"), 502);
    assert_eq!(get(&rt, &s, "/prod/nope"), 404);
    assert_eq!(get(&rt, &s, "/prod/nope"), 404);
    assert_eq!(get(&rt, &s, "/prod/one"), 200);
    assert_eq!(get(&rt, &s, "/prod/one"), 429);

    // /metrics, through Prometheus's parser.
    let text = rt.block_on(async {
        reqwest::get(format!("http://127.0.0.1:{admin}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    let m = parse_prometheus(&text);
    let req = |route: &str, class: &str| {
        sample(
            &m,
            "stratus_api_requests_total",
            &[
                ("api", "web"),
                ("stage", "prod"),
                ("route", route),
                ("class", class),
            ],
        )
    };
    assert_eq!(req("GET /ping", "2xx"), 3.0);
    assert_eq!(req("GET /fn", "2xx"), 2.0);
    assert_eq!(req("GET /fail", "5xx"), 1.0);
    assert_eq!(req("", "4xx"), 2.0, "unknown paths have no route label");
    assert_eq!(req("GET /one", "2xx") + req("GET /one", "4xx"), 2.0);
    assert_eq!(
        sample(&m, "stratus_api_throttled_total", &[("route", "GET /one")]),
        1.0
    );
    let f = [("function", "app")];
    assert_eq!(sample(&m, "stratus_function_invocations_total", &f), 3.0);
    assert_eq!(sample(&m, "stratus_function_cold_starts_total", &f), 1.0);
    assert_eq!(
        sample(
            &m,
            "stratus_function_errors_total",
            &[("function", "app"), ("error_type", "RuntimeError")]
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(&m, "stratus_function_duration_seconds_count", &f),
        3.0
    );
    assert!(sample(&m, "stratus_function_gb_seconds_total", &f) > 0.0);
    // The histogram's buckets are cumulative and end at the count.
    let inf = sample(
        &m,
        "stratus_api_latency_seconds_bucket",
        &[("route", "GET /ping"), ("le", "+Inf")],
    );
    assert_eq!(inf, 3.0);

    // `stratus logs -f` got the line printed after it started.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(follow_out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = Vec::new();
    let found = loop {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(l) => {
                let hit = l.contains("handled /prod/fn followed-line");
                seen.push(l);
                if hit {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(found, "stratus logs -f printed: {seen:#?}");
    let line = seen.last().unwrap();
    assert!(line.contains(" app "), "TIME FUNCTION LINE: {line}");
    // Without -f: a filter over what is kept.
    let out = stratus()
        .args(["logs", "--filter", "REPORT", "--project"])
        .arg(dir.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(
        text.lines().all(|l| l.contains("REPORT RequestId:")),
        "{text}"
    );

    // The access log, field by field.
    let log = dir.path().join("logs/access.log");
    let lines = (0..50)
        .find_map(|_| {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.lines().count() >= 10 {
                return Some(text);
            }
            #[allow(clippy::disallowed_methods)]
            std::thread::sleep(Duration::from_millis(100));
            None
        })
        .expect("ten access log lines");
    let entries: Vec<Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let fn_call = entries.iter().find(|e| e["path"] == "/prod/fn").unwrap();
    assert_eq!(fn_call["method"], "GET");
    assert_eq!(fn_call["route"], "GET /fn");
    assert_eq!(fn_call["resource"], "/fn");
    assert_eq!(fn_call["status"], "200");
    assert_eq!(fn_call["istatus"], "200");
    assert_eq!(fn_call["len"], "2");
    assert_eq!(fn_call["ip"], "127.0.0.1");
    assert_eq!(fn_call["stage"], "prod");
    assert_eq!(fn_call["api"], "web");
    assert_eq!(fn_call["ua"], "monitor-test/1");
    assert_eq!(fn_call["error"], "-");
    assert!(fn_call["ilatency"].as_str().unwrap().parse::<u64>().is_ok());
    assert!(fn_call["latency"].as_str().unwrap().parse::<u64>().is_ok());
    assert_eq!(fn_call["id"].as_str().unwrap().len(), 36);
    assert!(
        fn_call["time"].as_str().unwrap().ends_with(" +0000"),
        "{fn_call}"
    );
    assert!(fn_call["epoch"].as_str().unwrap().parse::<u64>().unwrap() > 1_700_000_000_000);
    let throttled = entries.iter().find(|e| e["status"] == "429").unwrap();
    assert_eq!(throttled["error"], "Too Many Requests");
    assert_eq!(throttled["etype"], "THROTTLED");
    assert_eq!(throttled["istatus"], "-");
    let missing = entries.iter().find(|e| e["status"] == "404").unwrap();
    assert_eq!(missing["route"], "-");
    assert_eq!(missing["etype"], "RESOURCE_NOT_FOUND");

    dashboard(admin);
}

/// The page in a real browser, after the traffic above.
fn dashboard(admin: u16) {
    let Some(browser) = crate::support::chromium("the dashboard") else {
        return;
    };
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let run = |extra: &str| {
        std::process::Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                // The page holds a live stream open: stop after this long.
                "--timeout=3000",
                "--window-size=1300,1500",
                extra,
            ])
            .arg(format!("http://127.0.0.1:{admin}/"))
            .output()
            .unwrap()
    };
    let dom = String::from_utf8_lossy(&run("--dump-dom").stdout).into_owned();
    let text_of = |id: &str| -> String {
        let start = dom
            .find(&format!("id=\"{id}\""))
            .unwrap_or_else(|| panic!("no #{id} in {dom}"));
        let rest = &dom[start..];
        let open = rest.find('>').unwrap() + 1;
        let close = rest[open..].find('<').unwrap();
        rest[open..open + close].to_owned()
    };
    // The 10 requests above (the dashboard itself is on the admin listener).
    assert_eq!(text_of("t-requests"), "10", "{dom}");
    assert_eq!(text_of("t-invocations"), "3");
    // The function's row: name, then its invocations.
    let functions = &dom[dom.find("id=\"functions\"").unwrap()..];
    assert!(
        functions.contains("<td>app</td><td class=\"n\">3</td>"),
        "{functions}"
    );
    // A cost above zero: "$0.0000…" is not "$0.00".
    let cost = text_of("t-cost");
    assert!(
        cost.starts_with("$0.0000") && cost != "$0.00 / $0.00",
        "{cost}"
    );
    assert!(dom.contains("<td>GET /fn</td>"), "the route table");
    assert!(
        dom.contains("<td>main</td><td>sqlite</td><td>arn:aws:rds:us-east-1:000000000000:cluster:main</td><td>001_init.sql</td>"),
        "the databases table"
    );
    let shot = shots.join("dashboard.png");
    let _ = run(&format!("--screenshot={}", shot.display()));
    assert!(shot.is_file(), "a screenshot in {}", shot.display());
}
