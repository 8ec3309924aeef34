//! The Lambda Invoke API on the admin listener, called by boto3 (a real AWS
//! SDK) and by plain HTTP; and `stratus invoke`.

use std::process::Command;

use serde_json::Value;
use stratus_testkit::{write_file, TestServer};

use crate::support::{free_port, stratus, Serving};

const FN_PY: &str = r#"
import time
def handler(event, context):
    print("invoked with", event)
    if event.get("fail"):
        raise KeyError("missing thing")
    if event.get("sleep"):
        time.sleep(event["sleep"])
    return {"echo": event, "fn": context.function_name}
"#;

async fn server() -> TestServer {
    TestServer::start_with_files(
        "[functions.py]\nruntime = \"python3\"\nhandler = \"app.handler\"\ncode = \"py\"\nconcurrency = 1\n",
        &[("py/app.py", FN_PY)],
    )
    .await
}

/// Runs a Python snippet with boto3; `ENDPOINT` is the admin URL.
fn boto3(endpoint: &str, script: &str) -> Value {
    boto3_as(endpoint, "stratus", "stratus", script)
}

/// `boto3`, signing with the credentials `key` / `secret`.
fn boto3_as(endpoint: &str, key: &str, secret: &str, script: &str) -> Value {
    let prelude = format!(
        "import base64, json, boto3, botocore\n\
         client = boto3.client('lambda', endpoint_url='{endpoint}', region_name='us-east-1', \
         aws_access_key_id='{key}', aws_secret_access_key='{secret}', \
         config=botocore.config.Config(retries={{'max_attempts': 0}}))\n"
    );
    let out = Command::new("python3")
        .args(["-c", &format!("{prelude}{script}")])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "boto3 script failed (is boto3 installed? .ci/run installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

#[tokio::test]
async fn boto3_invokes_functions_with_tail_logs_and_function_errors() {
    let s = server().await;
    let endpoint = s.admin_url("");
    let v = tokio::task::spawn_blocking(move || {
        boto3(
            &endpoint,
            r#"
r = client.invoke(FunctionName='py', Payload=json.dumps({'a': 1}), LogType='Tail')
ok = {'status': r['StatusCode'], 'payload': json.loads(r['Payload'].read()), 'error': r.get('FunctionError'),
      'logs': base64.b64decode(r['LogResult']).decode(), 'version': r.get('ExecutedVersion')}
r = client.invoke(FunctionName='py', Payload=json.dumps({'fail': True}))
failed = {'status': r['StatusCode'], 'payload': json.loads(r['Payload'].read()), 'error': r.get('FunctionError')}
try:
    client.invoke(FunctionName='nope', Payload=b'{}')
    missing = None
except client.exceptions.ResourceNotFoundException as e:
    missing = {'code': e.response['Error']['Code'], 'status': e.response['ResponseMetadata']['HTTPStatusCode']}
event = client.invoke(FunctionName='py', InvocationType='Event', Payload=b'{}')['StatusCode']
dry = client.invoke(FunctionName='py', InvocationType='DryRun', Payload=b'{}')['StatusCode']
print(json.dumps({'ok': ok, 'failed': failed, 'missing': missing, 'event': event, 'dry': dry}))
"#,
        )
    })
    .await
    .unwrap();
    assert_eq!(v["ok"]["status"], 200);
    assert_eq!(
        v["ok"]["payload"],
        serde_json::json!({"echo": {"a": 1}, "fn": "py"})
    );
    assert_eq!(v["ok"]["error"], Value::Null);
    assert_eq!(v["ok"]["version"], "$LATEST");
    let logs = v["ok"]["logs"].as_str().unwrap();
    assert!(logs.starts_with("START RequestId: "), "{logs}");
    assert!(logs.contains("invoked with {'a': 1}"), "{logs}");
    assert!(logs.contains("\nEND RequestId: "), "{logs}");
    assert!(logs.contains("\nREPORT RequestId: "), "{logs}");

    assert_eq!(v["failed"]["status"], 200);
    assert_eq!(v["failed"]["error"], "Unhandled");
    assert_eq!(v["failed"]["payload"]["errorType"], "KeyError");
    assert_eq!(v["failed"]["payload"]["errorMessage"], "'missing thing'");

    assert_eq!(v["missing"]["code"], "ResourceNotFoundException");
    assert_eq!(v["missing"]["status"], 404);
    assert_eq!(v["event"], 202);
    assert_eq!(v["dry"], 204);
}

#[tokio::test]
async fn invoke_api_refuses_past_the_concurrency_limit_with_429() {
    let s = server().await;
    let url = s.admin_url("/2015-03-31/functions/py/invocations");
    let client = reqwest::Client::new();
    let busy = {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            client
                .post(url)
                .body(r#"{"sleep": 1.5}"#)
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    // Until the first call holds the only environment, a second one may still succeed.
    let mut refused = None;
    for _ in 0..100 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let r = client.post(&url).body("{}").send().await.unwrap();
        if r.status() == 429 {
            refused = Some(r);
            break;
        }
    }
    let r = refused.expect("a call past the concurrency limit was refused");
    assert_eq!(r.headers()["x-amzn-errortype"], "TooManyRequestsException");
    assert_eq!(busy.await.unwrap(), 200);
    // Bad JSON is the caller's fault.
    let r = client.post(&url).body("not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.headers()["x-amzn-errortype"],
        "InvalidRequestContentException"
    );
}

#[test]
fn stratus_invoke_runs_standalone_and_prints_result_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "py/app.py", FN_PY);
    write_file(
        dir.path(),
        "stratus.toml",
        "[server]\nadmin_listen = \"127.0.0.1:0\"\nlisten = \"127.0.0.1:0\"\n[functions.py]\nruntime = \"python3\"\nhandler = \"app.handler\"\ncode = \"py\"\n",
    );
    write_file(dir.path(), "event.json", r#"{"from": "file"}"#);
    let out = stratus()
        .args(["invoke", "py", "--payload", "@event.json", "."])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(v, serde_json::json!({"echo": {"from": "file"}, "fn": "py"}));
    assert!(stderr.contains("START RequestId: "), "{stderr}");
    assert!(stderr.contains("invoked with {'from': 'file'}"), "{stderr}");
    assert!(stderr.contains("REPORT RequestId: "), "{stderr}");

    // A function error: printed, exit code 1.
    let out = stratus()
        .args(["invoke", "py", "--payload", r#"{"fail": true}"#, "."])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["errorType"], "KeyError");
}

#[tokio::test]
async fn stratus_invoke_goes_through_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    write_file(dir.path(), "py/app.py", FN_PY);
    write_file(
        dir.path(),
        "stratus.toml",
        &format!("[server]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:{admin}\"\n[functions.py]\nruntime = \"python3\"\nhandler = \"app.handler\"\ncode = \"py\"\n"),
    );
    let s = Serving::start(dir.path());
    let project = dir.path().to_owned();
    let out = tokio::task::spawn_blocking(move || {
        stratus()
            .args(["invoke", "py", "--payload", r#"{"via": "server"}"#])
            .arg(&project)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["echo"]["via"], "server");
    // The server ran it: its log has the call.
    let seen = std::iter::from_fn(|| s.lines.recv_timeout(std::time::Duration::from_secs(5)).ok())
        .any(|l| l.contains("invoked with {'via': 'server'}"));
    assert!(seen, "the running server did not run the call");
}

#[tokio::test]
async fn configured_credentials_are_required_by_the_invoke_api() {
    let s = TestServer::start_with_files(
        "[server.credentials]\naccess_key_id = \"dev\"\nsecret_access_key = \"dev-secret\"\n\
         [functions.py]\nruntime = \"python3\"\nhandler = \"app.handler\"\ncode = \"py\"\n",
        &[("py/app.py", FN_PY)],
    )
    .await;
    let script = r#"
try:
    r = client.invoke(FunctionName='py', Payload=b'{"a": 2}')
    print(json.dumps({'status': r['StatusCode'], 'payload': json.loads(r['Payload'].read())}))
except botocore.exceptions.ClientError as e:
    print(json.dumps({'refused': e.response['Error']['Code'], 'status': e.response['ResponseMetadata']['HTTPStatusCode']}))
"#;
    let endpoint = s.admin_url("");
    let (wrong, right) = tokio::task::spawn_blocking(move || {
        (
            boto3_as(&endpoint, "stratus", "stratus", script),
            boto3_as(&endpoint, "dev", "dev-secret", script),
        )
    })
    .await
    .unwrap();
    assert_eq!(
        wrong,
        serde_json::json!({"refused": "UnrecognizedClientException", "status": 403})
    );
    assert_eq!(
        right,
        serde_json::json!({"status": 200, "payload": {"echo": {"a": 2}, "fn": "py"}})
    );
    // Unsigned: refused too, while the same request passes on a server
    // with no credentials configured (the other tests here).
    let r = reqwest::Client::new()
        .post(s.admin_url("/2015-03-31/functions/py/invocations"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        r.headers()["x-amzn-errortype"],
        "UnrecognizedClientException"
    );
}
