//! S3 event notifications (issue 26, point 4): `[buckets.X]
//! notifications`, an `aws s3 cp` that triggers a function with S3's
//! `Records` event, a filter that does not, a removal.

use std::time::Duration;

use serde_json::Value;
use stratus_testkit::write_file;

use crate::support::{aws, Serving};

const PROJECT: &str = r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[functions.on-upload]
runtime = "python3.12"
handler = "app.handler"
code = "fn"

[buckets.uploads]
notifications = [
  { function = "on-upload", events = ["s3:ObjectCreated:*"], prefix = "incoming/", suffix = ".txt" },
  { function = "on-upload", events = ["s3:ObjectRemoved:*"] },
]
"#;

const RECORD_PY: &str = r#"
import json, os
def handler(event, context):
    with open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "events.jsonl"), "a") as f:
        f.write(json.dumps(event) + "\n")
"#;

async fn records(dir: &std::path::Path, n: usize) -> Vec<Value> {
    let file = dir.join("fn/events.jsonl");
    crate::support::json_lines(&file, n, Duration::from_secs(10))
        .await
        .into_iter()
        .map(|e| e["Records"][0].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_created_and_removed_invoke_the_notified_function() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "stratus.toml", PROJECT);
    write_file(dir.path(), "fn/app.py", RECORD_PY);
    write_file(dir.path(), "files/a note.txt", "hello s3 events");
    write_file(dir.path(), "files/photo.jpg", "not text");
    let s = Serving::start(dir.path());
    let endpoint = format!("http://{}/s3", s.admin);
    let cp = |from: &str, to: &str| {
        let (ok, _, err) = aws(&endpoint, &["s3", "cp", from, to]);
        assert!(ok, "{err}");
    };
    let files = dir.path().join("files");
    cp(
        files.join("photo.jpg").to_str().unwrap(),
        "s3://uploads/incoming/photo.jpg",
    );
    cp(
        files.join("a note.txt").to_str().unwrap(),
        "s3://uploads/incoming/a note.txt",
    );
    let got = records(dir.path(), 1).await;
    assert_eq!(
        got.len(),
        1,
        "the .jpg does not pass the suffix filter: {got:?}"
    );
    let r = &got[0];
    assert_eq!(r["eventSource"], "aws:s3");
    assert_eq!(r["eventName"], "ObjectCreated:Put");
    assert_eq!(r["awsRegion"], "us-east-1");
    assert_eq!(r["s3"]["bucket"]["name"], "uploads");
    assert_eq!(r["s3"]["bucket"]["arn"], "arn:aws:s3:::uploads");
    assert_eq!(
        r["s3"]["object"]["key"], "incoming/a+note.txt",
        "URL-encoded as S3 does"
    );
    assert_eq!(r["s3"]["object"]["size"], 15);
    let etag = r["s3"]["object"]["eTag"].as_str().unwrap();
    assert_eq!(etag.len(), 32, "an MD5, unquoted: {etag}");
    // A removal, under the second notification (any key).
    let (ok, _, err) = aws(&endpoint, &["s3", "rm", "s3://uploads/incoming/photo.jpg"]);
    assert!(ok, "{err}");
    let got = records(dir.path(), 2).await;
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[1]["eventName"], "ObjectRemoved:Delete");
    assert_eq!(got[1]["s3"]["object"]["key"], "incoming/photo.jpg");
    assert!(got[1]["s3"]["object"].get("size").is_none());
    let (a, b) = (
        got[0]["s3"]["object"]["sequencer"].as_str().unwrap(),
        got[1]["s3"]["object"]["sequencer"].as_str().unwrap(),
    );
    assert!(b > a, "sequencers grow: {a} {b}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_source_copy_sends_its_notifications_once() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "stratus.toml",
        &PROJECT.replace(
            "[buckets.uploads]\n",
            "[buckets.uploads]\nsource = \"seed\"\n",
        ),
    );
    write_file(dir.path(), "fn/app.py", RECORD_PY);
    write_file(dir.path(), "seed/incoming/first.txt", "seeded");
    write_file(dir.path(), "seed/incoming/skip.bin", "not under the filter");
    {
        let _s = Serving::start(dir.path());
        let got = records(dir.path(), 1).await;
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["eventName"], "ObjectCreated:Put");
        assert_eq!(got[0]["s3"]["object"]["key"], "incoming/first.txt");
    }
    // Started again with nothing changed: nothing is copied, nothing sent.
    let _s = Serving::start(dir.path());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let lines = std::fs::read_to_string(dir.path().join("fn/events.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 1, "{lines}");
}

const LOOP_PY: &str = r#"
import json, os, boto3
s3 = boto3.client("s3")
def handler(event, context):
    key = event["Records"][0]["s3"]["object"]["key"]
    with open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "events.jsonl"), "a") as f:
        f.write(json.dumps(event) + "\n")
    # The classic mistake: the output lands under the function's own filter.
    n = int(key.rsplit("-", 1)[1].split(".")[0]) + 1
    s3.put_object(Bucket="uploads", Key=f"incoming/loop-{n}.txt", Body=b"again")
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_function_writing_under_its_own_filter_is_stopped_after_16_rounds() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "stratus.toml", PROJECT);
    write_file(dir.path(), "fn/app.py", LOOP_PY);
    let s = Serving::start(dir.path());
    let endpoint = format!("http://{}/s3", s.admin);
    write_file(dir.path(), "first.txt", "go");
    let (ok, _, err) = aws(
        &endpoint,
        &[
            "s3",
            "cp",
            dir.path().join("first.txt").to_str().unwrap(),
            "s3://uploads/incoming/loop-0.txt",
        ],
    );
    assert!(ok, "{err}");
    let s = tokio::task::spawn_blocking(move || {
        let lines = s.wait_line("recursive loop", Duration::from_secs(60));
        (s, lines)
    });
    let (_s, lines) = s.await.unwrap();
    let said = lines.iter().find(|l| l.contains("recursive loop")).unwrap();
    assert!(said.contains("stopped after 16 invocations"), "{said}");
    let got = records(dir.path(), 16).await;
    assert_eq!(got.len(), 16, "16 rounds, then stopped");
    assert_eq!(got[15]["s3"]["object"]["key"], "incoming/loop-15.txt");
}
