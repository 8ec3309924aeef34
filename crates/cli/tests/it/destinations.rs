//! Asynchronous destinations (issue 26, point 6): `OnSuccess` and
//! `OnFailure` functions get the invocation record Lambda shapes.

use std::time::Duration;

use stratus_testkit::write_file;

use crate::support::Serving;

const PROJECT: &str = r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[functions.works]
runtime = "python3.12"
handler = "app.works"
code = "fn"
async = { on_success = "record" }

[functions.breaks]
runtime = "python3.12"
handler = "app.breaks"
code = "fn"
async = { max_retries = 1, retry_delay = 1, on_failure = "record" }

[functions.record]
runtime = "python3.12"
handler = "app.record"
code = "fn"
"#;

const APP_PY: &str = r#"
import json, os
def works(event, context):
    return {"doubled": event["n"] * 2}
def breaks(event, context):
    raise ValueError("no good: " + str(event["n"]))
def record(event, context):
    with open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "records.jsonl"), "a") as f:
        f.write(json.dumps(event) + "\n")
"#;

#[tokio::test(flavor = "multi_thread")]
async fn destinations_get_the_invocation_record_on_success_and_failure() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "stratus.toml", PROJECT);
    write_file(dir.path(), "fn/app.py", APP_PY);
    let s = Serving::start(dir.path());
    let client = reqwest::Client::new();
    for (function, n) in [("works", 21), ("breaks", 7)] {
        let r = client
            .post(format!(
                "http://{}/2015-03-31/functions/{function}/invocations",
                s.admin
            ))
            .header("x-amz-invocation-type", "Event")
            .body(format!(r#"{{"n": {n}}}"#))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202, "{function}");
    }
    let file = dir.path().join("fn/records.jsonl");
    let got = crate::support::json_lines(&file, 2, Duration::from_secs(15)).await;
    assert_eq!(got.len(), 2, "{got:?}");
    let by = |c: &str| {
        got.iter()
            .find(|r| r["requestContext"]["condition"] == c)
            .unwrap_or_else(|| panic!("no {c} record in {got:?}"))
            .clone()
    };
    let ok = by("Success");
    assert_eq!(ok["version"], "1.0");
    assert_eq!(ok["requestPayload"], serde_json::json!({"n": 21}));
    assert_eq!(ok["responsePayload"], serde_json::json!({"doubled": 42}));
    assert_eq!(ok["responseContext"]["executedVersion"], "$LATEST");
    assert_eq!(
        ok["requestContext"]["functionArn"],
        "arn:aws:lambda:us-east-1:000000000000:function:works:$LATEST"
    );
    assert_eq!(ok["requestContext"]["approximateInvokeCount"], 1);
    let failed = by("RetriesExhausted");
    assert_eq!(
        failed["requestContext"]["approximateInvokeCount"], 2,
        "one retry"
    );
    assert_eq!(failed["responseContext"]["functionError"], "Unhandled");
    assert_eq!(failed["responsePayload"]["errorType"], "ValueError");
    assert_eq!(failed["responsePayload"]["errorMessage"], "no good: 7");
}
