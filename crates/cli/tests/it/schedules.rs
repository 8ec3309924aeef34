//! Schedules (issue 26, point 3): `[functions.X] schedules`, listed by
//! `stratus routes` with their next run, run now by `stratus schedule
//! run`, each with the event its service sends (EventBridge's Scheduled
//! Event, or the Scheduler's input).

use std::time::Duration;

use serde_json::Value;
use stratus_testkit::write_file;

use crate::support::{run_cli, Serving};

const PROJECT: &str = r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[functions.tick]
runtime = "python3.12"
handler = "app.handler"
code = "fn"
schedules = [
  { name = "every-minute", expression = "rate(1 minute)" },
  { name = "paris-morning", expression = "cron(0 9 ? * MON-FRI *)", timezone = "Europe/Paris", kind = "scheduler", input = '{"report": "daily"}' },
  { name = "off", expression = "rate(1 day)", enabled = false },
]
"#;

const TICK_PY: &str = r#"
import json, os
def handler(event, context):
    with open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "events.jsonl"), "a") as f:
        f.write(json.dumps(event) + "\n")
"#;

/// The events the function has written, once there are `n`.
async fn events(dir: &std::path::Path, n: usize) -> Vec<Value> {
    let got =
        crate::support::json_lines(&dir.join("fn/events.jsonl"), n, Duration::from_secs(10)).await;
    assert!(
        got.len() >= n,
        "the function got fewer than {n} events: {got:?}"
    );
    got
}

#[tokio::test(flavor = "multi_thread")]
async fn schedules_are_listed_and_run_with_their_services_events() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "stratus.toml", PROJECT);
    write_file(dir.path(), "fn/app.py", TICK_PY);
    let project = dir.path().to_str().unwrap();
    let (ok, routes, err) = run_cli(&["routes", project]);
    assert!(ok, "{err}");
    let line = |name: &str| {
        routes
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in {routes}"))
            .to_owned()
    };
    assert!(line("every-minute").contains("rate(1 minute)"), "{routes}");
    assert!(line("paris-morning").contains("Europe/Paris"), "{routes}");
    assert!(line("paris-morning").contains(":00 UTC"), "{routes}");
    assert!(line("off").ends_with("disabled"), "{routes}");
    let _s = Serving::start(dir.path());
    // An EventBridge rule's event.
    let (ok, _, err) = run_cli(&["schedule", "run", "every-minute", "--project", project]);
    assert!(ok, "{err}");
    assert!(err.contains("schedule every-minute ran"), "{err}");
    let got = events(dir.path(), 1).await;
    let e = &got[0];
    assert_eq!(e["detail-type"], "Scheduled Event");
    assert_eq!(e["source"], "aws.events");
    assert_eq!(e["account"], "000000000000");
    assert_eq!(e["region"], "us-east-1");
    assert_eq!(
        e["resources"],
        serde_json::json!(["arn:aws:events:us-east-1:000000000000:rule/every-minute"])
    );
    assert_eq!(e["detail"], serde_json::json!({}));
    assert!(e["time"].as_str().unwrap().ends_with('Z'), "{e}");
    // A Scheduler schedule's input, as given.
    let (ok, _, err) = run_cli(&["schedule", "run", "paris-morning", "--project", project]);
    assert!(ok, "{err}");
    assert_eq!(
        events(dir.path(), 2).await[1],
        serde_json::json!({"report": "daily"})
    );
    // An unknown schedule is named.
    let (ok, _, err) = run_cli(&["schedule", "run", "nope", "--project", project]);
    assert!(!ok);
    assert!(err.contains("no schedule \"nope\""), "{err}");
}
