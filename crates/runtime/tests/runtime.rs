//! The runtime with real function processes: Python and Node bootstraps
//! shipped by Stratus, each behaviour as AWS Lambda has it.

use std::path::Path;

use bytes::Bytes;
use serde_json::{json, Value};
use stratus_runtime::{ErrorKind, InvokeError, InvokeRequest, Runtime};

struct Project {
    dir: tempfile::TempDir,
    runtime: Runtime,
}

impl Drop for Project {
    fn drop(&mut self) {
        self.runtime.shutdown();
    }
}

async fn project(toml: &str, files: &[(&str, &str)]) -> Project {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    std::fs::write(dir.path().join("stratus.toml"), toml).unwrap();
    let app = stratus_config::load(dir.path()).unwrap_or_else(|e| panic!("{e}"));
    let runtime = Runtime::start(&app, vec![]).await.unwrap();
    Project { dir, runtime }
}

fn req(v: Value) -> InvokeRequest {
    InvokeRequest {
        payload: Bytes::from(v.to_string()),
        ..Default::default()
    }
}

fn json_of(b: &Bytes) -> Value {
    serde_json::from_slice(b).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(b)))
}

const PY: &str = r#"
import os, time, json, sys
INIT_PID = os.getpid()
def handler(event, context):
    action = event.get("action")
    if action == "echo":
        print("echoing", event.get("value"))
        return {"value": event.get("value"), "pid": os.getpid(),
                "request_id": context.aws_request_id,
                "function_name": context.function_name,
                "memory": context.memory_limit_in_mb,
                "arn": context.invoked_function_arn,
                "remaining": context.get_remaining_time_in_millis(),
                "log_group": context.log_group_name,
                "env": {k: os.environ.get(k) for k in ["AWS_LAMBDA_RUNTIME_API", "_HANDLER", "LAMBDA_TASK_ROOT", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_LAMBDA_INITIALIZATION_TYPE", "TZ", "GREETING", "HOME", "CARGO", "_X_AMZN_TRACE_ID"]},
                "cwd": os.getcwd()}
    if action == "barrier":
        # Every call waits until `n` calls have arrived: serialized calls would never get there.
        d = event["dir"]
        open(os.path.join(d, str(os.getpid())), "w").close()
        deadline = time.time() + 20
        while len(os.listdir(d)) < event["n"]:
            if time.time() > deadline:
                raise Exception("barrier not reached: calls are not running in parallel")
            time.sleep(0.01)
        return {"pid": os.getpid()}
    if action == "sleep":
        time.sleep(event["seconds"])
        return "slept"
    if action == "spin":
        while True:
            pass
    if action == "exit":
        os._exit(event["code"])
    if action == "escape":
        import subprocess
        # A child in a session (and process group) of its own.
        child = subprocess.Popen(["sleep", "300"], start_new_session=True)
        return {"pid": child.pid}
    if action == "hog":
        blob = bytearray(event["mb"] * 1024 * 1024)
        for i in range(0, len(blob), 4096):
            blob[i] = 1
        time.sleep(5)
        return len(blob)
    if action == "raise":
        raise ValueError("bad value: " + str(event.get("value")))
    if action == "bogus":
        # Talk to the Runtime API directly about an invocation that does not exist.
        import http.client
        host, port = os.environ["AWS_LAMBDA_RUNTIME_API"].split(":")
        c = http.client.HTTPConnection(host, int(port))
        c.request("POST", "/2018-06-01/runtime/invocation/not-a-request/response", body=b"{}")
        r = c.getresponse()
        out = {"status": r.status, "body": json.loads(r.read())}
        c.request("GET", "/2018-06-01/runtime/invocation/x/response")
        r = c.getresponse()
        out["wrong_method"] = [r.status, json.loads(r.read())]
        c.request("GET", "/2018-06-01/runtime/elsewhere")
        r = c.getresponse()
        out["unknown_path"] = [r.status, json.loads(r.read())]
        out["batch"] = os.sched_getscheduler(0) == os.SCHED_BATCH
        return out
    if action == "huge":
        return "x" * (7 * 1024 * 1024)
    return None
"#;

fn py_project(extra: &str) -> String {
    format!(
        r#"
[functions.py]
runtime = "python3"
handler = "app.handler"
code = "py"
environment = {{ GREETING = "hi" }}
{extra}
"#
    )
}

#[tokio::test]
async fn python_function_answers_with_aws_context_and_environment() {
    let p = project(&py_project(""), &[("py/app.py", PY)]).await;
    let r = p
        .runtime
        .invoke("py", req(json!({"action": "echo", "value": 42})))
        .await
        .unwrap();
    let v = json_of(r.result.as_ref().unwrap());
    assert_eq!(v["value"], 42);
    assert_eq!(v["request_id"], r.request_id);
    assert_eq!(v["function_name"], "py");
    assert_eq!(v["memory"], "128");
    // X-Ray's trace header shape: Root=1-{8 hex}-{24 hex};Parent={16 hex};Sampled=0
    let trace = v["env"]["_X_AMZN_TRACE_ID"].as_str().unwrap();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let parts: Vec<&str> = trace.split(';').collect();
    let root: Vec<&str> = parts[0].trim_start_matches("Root=").split('-').collect();
    assert!(
        parts.len() == 3
            && parts[0].starts_with("Root=1-")
            && root.len() == 3
            && hex(root[1], 8)
            && hex(root[2], 24)
            && parts[1].strip_prefix("Parent=").is_some_and(|p| hex(p, 16))
            && parts[2] == "Sampled=0",
        "{trace}"
    );
    assert_eq!(
        v["arn"],
        "arn:aws:lambda:us-east-1:000000000000:function:py"
    );
    assert_eq!(v["log_group"], "/aws/lambda/py");
    let remaining = v["remaining"].as_i64().unwrap();
    assert!(remaining > 0 && remaining <= 3000, "{remaining}");
    let env = &v["env"];
    assert!(env["AWS_LAMBDA_RUNTIME_API"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(env["_HANDLER"], "app.handler");
    let code = p.dir.path().join("py");
    assert_eq!(env["LAMBDA_TASK_ROOT"], code.to_str().unwrap());
    assert_eq!(v["cwd"], code.to_str().unwrap());
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "py");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_VERSION"], "$LATEST");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "128");
    assert_eq!(env["AWS_REGION"], "us-east-1");
    assert_eq!(env["AWS_DEFAULT_REGION"], "us-east-1");
    assert_eq!(env["AWS_LAMBDA_INITIALIZATION_TYPE"], "on-demand");
    assert!(env["AWS_LAMBDA_LOG_STREAM_NAME"]
        .as_str()
        .unwrap()
        .contains("[$LATEST]"));
    assert_eq!(env["TZ"], "UTC");
    assert_eq!(env["GREETING"], "hi");
    // Nothing of the server's environment leaks in.
    assert_eq!(env["HOME"], Value::Null);
    assert_eq!(env["CARGO"], Value::Null);
}

#[tokio::test]
async fn warm_environment_is_reused_and_only_the_first_call_is_cold() {
    let p = project(&py_project(""), &[("py/app.py", PY)]).await;
    let first = p
        .runtime
        .invoke("py", req(json!({"action": "echo"})))
        .await
        .unwrap();
    let second = p
        .runtime
        .invoke("py", req(json!({"action": "echo"})))
        .await
        .unwrap();
    assert!(first.init_duration.is_some(), "first call is a cold start");
    assert!(second.init_duration.is_none(), "second call is warm");
    let pid =
        |r: &stratus_runtime::InvokeResponse| json_of(r.result.as_ref().unwrap())["pid"].clone();
    assert_eq!(pid(&first), pid(&second), "same process serves both calls");
    assert_eq!(p.runtime.environments("py"), Some((1, 1)));
}

#[tokio::test]
async fn concurrent_calls_run_in_parallel_on_separate_environments() {
    let n = 4;
    let p = project(&py_project("concurrency = 4"), &[("py/app.py", PY)]).await;
    let barrier = tempfile::tempdir().unwrap();
    let calls = (0..n).map(|_| {
        let rt = p.runtime.clone();
        let d = barrier.path().to_str().unwrap().to_owned();
        async move {
            rt.invoke("py", req(json!({"action": "barrier", "dir": d, "n": n})))
                .await
        }
    });
    let results = futures_util::future::join_all(calls).await;
    let mut pids = Vec::new();
    for r in results {
        let r = r.unwrap();
        pids.push(
            json_of(r.result.as_ref().expect("call succeeded"))["pid"]
                .as_i64()
                .unwrap(),
        );
    }
    pids.sort();
    pids.dedup();
    assert_eq!(pids.len(), n, "each call had its own environment");
}

#[tokio::test]
async fn calls_past_the_concurrency_limit_are_refused_not_queued() {
    let p = project(&py_project("concurrency = 1"), &[("py/app.py", PY)]).await;
    let rt = p.runtime.clone();
    let busy = tokio::spawn(async move {
        rt.invoke("py", req(json!({"action": "sleep", "seconds": 1.5})))
            .await
    });
    // Wait until the first call holds the only environment.
    for _ in 0..200 {
        if p.runtime.environments("py") == Some((1, 0)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let refused = p.runtime.invoke("py", req(json!({"action": "echo"}))).await;
    assert_eq!(refused.unwrap_err(), InvokeError::TooManyRequests);
    assert_eq!(
        busy.await.unwrap().unwrap().result.unwrap(),
        Bytes::from("\"slept\"")
    );
}

#[tokio::test]
async fn timeout_kills_the_environment_and_the_next_call_starts_fresh() {
    let p = project(&py_project("timeout = 1"), &[("py/app.py", PY)]).await;
    let first = p
        .runtime
        .invoke("py", req(json!({"action": "echo"})))
        .await
        .unwrap();
    let r = p
        .runtime
        .invoke("py", req(json!({"action": "spin"})))
        .await
        .unwrap();
    let e = r.result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Timeout);
    assert_eq!(e.error_type, "Sandbox.Timedout");
    assert_eq!(
        e.message(),
        format!(
            "RequestId: {} Error: Task timed out after 1.00 seconds",
            r.request_id
        )
    );
    let next = p
        .runtime
        .invoke("py", req(json!({"action": "echo"})))
        .await
        .unwrap();
    assert!(
        next.init_duration.is_some(),
        "a fresh environment after the timeout"
    );
    let pid =
        |r: &stratus_runtime::InvokeResponse| json_of(r.result.as_ref().unwrap())["pid"].clone();
    assert_ne!(pid(&first), pid(&next));
}

#[tokio::test]
async fn a_crash_mid_call_is_reported_and_replaced() {
    let p = project(&py_project(""), &[("py/app.py", PY)]).await;
    let r = p
        .runtime
        .invoke("py", req(json!({"action": "exit", "code": 3})))
        .await
        .unwrap();
    let e = r.result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Crash);
    assert_eq!(e.error_type, "Runtime.ExitError");
    assert_eq!(
        e.message(),
        format!(
            "RequestId: {} Error: Runtime exited with error: exit status 3",
            r.request_id
        )
    );
    let next = p
        .runtime
        .invoke("py", req(json!({"action": "echo", "value": 1})))
        .await
        .unwrap();
    assert_eq!(json_of(next.result.as_ref().unwrap())["value"], 1);
}

#[tokio::test]
async fn a_memory_hog_is_killed_at_its_limit() {
    let p = project(&py_project("memory = 128"), &[("py/app.py", PY)]).await;
    let r = p
        .runtime
        .invoke("py", req(json!({"action": "hog", "mb": 400})))
        .await
        .unwrap();
    let e = r.result.unwrap_err();
    assert_eq!(e.error_type, "Runtime.OutOfMemory");
    assert!(
        e.message()
            .ends_with("Runtime exited with error: signal: killed"),
        "{}",
        e.message()
    );
    // Under the limit it works.
    let ok = p
        .runtime
        .invoke("py", req(json!({"action": "hog", "mb": 0})))
        .await;
    assert!(ok.is_ok());
}

#[tokio::test]
async fn handled_errors_keep_the_environment_warm() {
    let p = project(&py_project(""), &[("py/app.py", PY)]).await;
    let r = p
        .runtime
        .invoke("py", req(json!({"action": "raise", "value": 7})))
        .await
        .unwrap();
    let e = r.result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Handled);
    assert_eq!(e.error_type, "ValueError");
    let body = json_of(&e.body);
    assert_eq!(body["errorMessage"], "bad value: 7");
    assert!(
        body["stackTrace"].as_array().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
    let again = p
        .runtime
        .invoke("py", req(json!({"action": "echo"})))
        .await
        .unwrap();
    assert!(
        again.init_duration.is_none(),
        "still warm after a handled error"
    );
}

#[tokio::test]
async fn an_init_error_reaches_the_caller() {
    let p = project(&py_project(""), &[("py/app.py", "import does_not_exist\n")]).await;
    let r = p.runtime.invoke("py", req(json!({}))).await.unwrap();
    let e = r.result.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Init);
    assert_eq!(e.error_type, "Runtime.ImportModuleError");
    assert!(
        e.message().contains("No module named 'does_not_exist'"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn logs_carry_start_end_report_and_the_functions_output() {
    let p = project(&py_project(""), &[("py/app.py", PY)]).await;
    let mut r = req(json!({"action": "echo", "value": "xyz"}));
    r.tail_logs = true;
    let r = p.runtime.invoke("py", r).await.unwrap();
    let tail = r.log_tail.unwrap();
    let id = &r.request_id;
    let lines: Vec<&str> = tail.lines().collect();
    assert_eq!(lines[0], format!("START RequestId: {id} Version: $LATEST"));
    assert!(lines.contains(&"echoing xyz"), "{tail}");
    let end = lines
        .iter()
        .position(|l| *l == format!("END RequestId: {id}"))
        .expect(&tail);
    let report = lines[end + 1];
    assert!(
        report.starts_with(&format!("REPORT RequestId: {id}\tDuration: ")),
        "{report}"
    );
    assert!(report.contains("\tBilled Duration: "), "{report}");
    assert!(
        report.contains("\tMemory Size: 128 MB\tMax Memory Used: "),
        "{report}"
    );
    assert!(
        report.contains("\tInit Duration: "),
        "cold start has Init Duration: {report}"
    );
}

#[tokio::test]
async fn unknown_function_is_not_found() {
    let p = project(&py_project(""), &[("py/app.py", PY)]).await;
    let e = p.runtime.invoke("nope", req(json!({}))).await.unwrap_err();
    assert_eq!(e, InvokeError::NotFound("nope".into()));
}

const NODE: &str = r#"
export const handler = async (event, context) => {
  console.log('node got', event.value);
  await new Promise((r) => setTimeout(r, 5));
  if (event.fail) throw new TypeError('node failed');
  if (event.huge) return 'x'.repeat(7 * 1024 * 1024);
  return { value: event.value, requestId: context.awsRequestId, fn: context.functionName,
           memory: context.memoryLimitInMB, remaining: context.getRemainingTimeInMillis() };
};
"#;

const NODE_CALLBACK: &str = r#"
exports.handler = function (event, context, callback) {
  setTimeout(() => callback(null, { cb: event.value }), 1);
};
"#;

#[tokio::test]
async fn node_async_and_callback_handlers() {
    let p = project(
        r#"
[functions.node]
runtime = "nodejs20.x"
handler = "index.handler"
code = "node"
[functions.cb]
runtime = "nodejs"
handler = "cb.handler"
code = "node"
"#,
        &[("node/index.mjs", NODE), ("node/cb.js", NODE_CALLBACK)],
    )
    .await;
    let mut r = req(json!({"value": "n1"}));
    r.tail_logs = true;
    let r = p.runtime.invoke("node", r).await.unwrap();
    let v = json_of(r.result.as_ref().unwrap());
    assert_eq!(v["value"], "n1");
    assert_eq!(v["requestId"], r.request_id);
    assert_eq!(v["fn"], "node");
    assert_eq!(v["memory"], "128");
    assert!(v["remaining"].as_i64().unwrap() > 0);
    let tail = r.log_tail.unwrap();
    assert!(
        tail.contains(&format!("\t{}\tINFO\tnode got n1", r.request_id)),
        "{tail}"
    );

    let e = p
        .runtime
        .invoke("node", req(json!({"fail": true})))
        .await
        .unwrap()
        .result
        .unwrap_err();
    assert_eq!(e.error_type, "TypeError");
    assert_eq!(e.message(), "node failed");

    // An answer over 6 MB is refused (the server then closes the runtime's
    // connection); the same environment goes on answering.
    let huge = p
        .runtime
        .invoke("node", req(json!({"huge": true})))
        .await
        .unwrap();
    assert_eq!(
        huge.result.unwrap_err().error_type,
        "Function.ResponseSizeTooLarge"
    );
    let after = p
        .runtime
        .invoke("node", req(json!({"value": "n2"})))
        .await
        .unwrap();
    assert_eq!(json_of(after.result.as_ref().unwrap())["value"], "n2");
    assert!(
        after.init_duration.is_none(),
        "the environment was replaced"
    );

    let cb = p
        .runtime
        .invoke("cb", req(json!({"value": 5})))
        .await
        .unwrap();
    assert_eq!(json_of(cb.result.as_ref().unwrap()), json!({"cb": 5}));
    let _ = Path::new(".");
}

#[tokio::test]
async fn runtime_api_rejects_unknown_ids_and_oversize_responses() {
    let p = project(&py_project(""), &[("py/app.py", PY)]).await;
    let r = p
        .runtime
        .invoke("py", req(json!({"action": "bogus"})))
        .await
        .unwrap();
    let v = json_of(r.result.as_ref().unwrap());
    assert_eq!(v["status"], 400);
    assert_eq!(v["body"]["errorType"], "InvalidRequestID");
    assert_eq!(v["wrong_method"][0], 405, "{v}");
    assert_eq!(v["unknown_path"][0], 404, "{v}");
    assert_eq!(v["unknown_path"][1]["errorType"], "NotFound", "{v}");
    // Functions run under SCHED_BATCH (see launch.rs: no wake-up preemption).
    assert_eq!(v["batch"], true, "{v}");

    let r = p
        .runtime
        .invoke("py", req(json!({"action": "huge"})))
        .await
        .unwrap();
    let e = r.result.unwrap_err();
    assert_eq!(e.error_type, "Function.ResponseSizeTooLarge");
    // The environment survives and answers the next call.
    let ok = p
        .runtime
        .invoke("py", req(json!({"action": "echo", "value": 3})))
        .await
        .unwrap();
    assert_eq!(json_of(ok.result.as_ref().unwrap())["value"], 3);
    assert!(ok.init_duration.is_none());

    // Payloads over 6 MB are refused before any environment sees them.
    let big = InvokeRequest {
        payload: Bytes::from(vec![b' '; 6 * 1024 * 1024 + 1]),
        ..Default::default()
    };
    assert_eq!(
        p.runtime.invoke("py", big).await.unwrap_err(),
        InvokeError::PayloadTooLarge
    );
}

#[tokio::test]
async fn warm_environments_start_at_boot_and_idle_ones_scale_to_zero() {
    // Provisioned: two environments before any call, and the first call is warm.
    let p = project(&py_project("warm = 2"), &[("py/app.py", PY)]).await;
    assert_eq!(p.runtime.environments("py"), Some((2, 2)));
    let r = p
        .runtime
        .invoke("py", req(json!({"action": "echo"})))
        .await
        .unwrap();
    assert!(
        r.init_duration.is_none(),
        "a provisioned environment is warm"
    );
    let env = &json_of(r.result.as_ref().unwrap())["env"];
    assert_eq!(
        env["AWS_LAMBDA_INITIALIZATION_TYPE"],
        "provisioned-concurrency"
    );
    drop(p);

    // On demand, with a 1 s idle timeout: the environment is stopped.
    let p = project(&py_project("idle_timeout = 1"), &[("py/app.py", PY)]).await;
    p.runtime
        .invoke("py", req(json!({"action": "echo"})))
        .await
        .unwrap();
    assert_eq!(p.runtime.environments("py"), Some((1, 1)));
    let mut reaped = false;
    for _ in 0..40 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        if p.runtime.environments("py") == Some((0, 0)) {
            reaped = true;
            break;
        }
    }
    assert!(reaped, "an idle environment outlived its idle_timeout");
    // The next call starts a fresh one.
    let r = p
        .runtime
        .invoke("py", req(json!({"action": "echo"})))
        .await
        .unwrap();
    assert!(r.init_duration.is_some());
}

#[tokio::test]
async fn node_dependencies_from_package_json_are_installed_outside_the_source_tree() {
    let p = project(
        r#"
[functions.deps]
runtime = "nodejs20.x"
handler = "index.handler"
code = "node"
"#,
        &[
            ("node/package.json", r#"{"name": "deps", "version": "1.0.0", "dependencies": {"is-number": "7.0.0"}}"#),
            (
                "node/index.js",
                "const isNumber = require('is-number');\nexports.handler = async (e) => ({ number: isNumber(e.value) });\n",
            ),
        ],
    )
    .await;
    let r = p
        .runtime
        .invoke("deps", req(json!({"value": 42})))
        .await
        .unwrap();
    assert_eq!(json_of(r.result.as_ref().unwrap()), json!({"number": true}));
    // Installed into Stratus's build directory, not beside the code.
    assert!(!p.dir.path().join("node/node_modules").exists());
    assert!(p
        .dir
        .path()
        .join(".stratus/build/deps/node/node_modules/is-number")
        .is_dir());
}

/// What a foreign process gets from a Runtime API address: the raw answer
/// (empty when the connection is refused by closing it).
async fn foreign_request(addr: &str, method: &str, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "{method} /2018-06-01/runtime/{path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
    );
    let _ = c.write_all(req.as_bytes()).await;
    let mut out = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(5), c.read_to_end(&mut out)).await;
    assert!(read.is_ok(), "a foreign connection is never left hanging");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn a_foreign_process_cannot_use_an_environments_runtime_api() {
    let p = project(&py_project(""), &[("py/app.py", PY)]).await;
    let echo = |v: i64| {
        p.runtime
            .invoke("py", req(json!({"action": "echo", "value": v})))
    };
    let first = json_of(echo(1).await.unwrap().result.as_ref().unwrap());
    let addr = first["env"]["AWS_LAMBDA_RUNTIME_API"]
        .as_str()
        .unwrap()
        .to_owned();
    // This test process is not in the environment's process group: it may
    // neither take the next invocation nor report an init error.
    let (next, init) = tokio::join!(
        foreign_request(&addr, "GET", "invocation/next"),
        foreign_request(&addr, "POST", "init/error"),
    );
    assert_eq!(next, "", "the next invocation went to a foreign process");
    assert_eq!(init, "", "a foreign init error was accepted");
    // The function keeps answering its own calls, in the same environment.
    for v in 2..5 {
        let r = echo(v).await.unwrap();
        let out = json_of(r.result.as_ref().unwrap());
        assert_eq!(out["value"], v);
        assert_eq!(out["pid"], first["pid"], "the environment was not replaced");
    }
}

/// Is `pid` still running (not gone, not a zombie)?
fn running(pid: u64) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat[stat.rfind(')').unwrap() + 1..]
            .split_whitespace()
            .next();
        state != Some("Z")
    })
}

async fn gone(pid: u64) -> bool {
    for _ in 0..250 {
        if !running(pid) {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    false
}

#[tokio::test]
async fn no_setsid_child_outlives_its_environment_or_the_shutdown() {
    let p = project(&py_project(""), &[("py/app.py", PY)]).await;
    let escape = || async {
        let r = p
            .runtime
            .invoke("py", req(json!({"action": "escape"})))
            .await
            .unwrap();
        json_of(r.result.as_ref().unwrap())["pid"].as_u64().unwrap()
    };
    // The environment ends (its process exits): its escaped child goes too.
    let first = escape().await;
    assert!(running(first));
    let r = p
        .runtime
        .invoke("py", req(json!({"action": "exit", "code": 3})))
        .await
        .unwrap();
    assert!(r.result.is_err());
    assert!(gone(first).await, "pid {first} outlived its environment");
    // The server shuts down: the same.
    let second = escape().await;
    assert!(running(second));
    p.runtime.shutdown();
    assert!(gone(second).await, "pid {second} outlived the shutdown");
}

/// Counts its calls per event in DIR; fails the first `fail` calls of each.
const FLAKY_PY: &str = r#"
import os, time
def handler(event, context):
    d = os.environ["DIR"]
    path = os.path.join(d, event["id"])
    with open(path, "a") as f:
        f.write("x")
    time.sleep(event.get("sleep", 0))
    if len(open(path).read()) <= event.get("fail", 0):
        raise Exception("failing on purpose")
    return "ok"
"#;

fn flaky_project(dir: &Path, concurrency: u32) -> String {
    format!(
        r#"
[functions.flaky]
runtime = "python3"
handler = "app.handler"
code = "flaky"
concurrency = {concurrency}
environment = {{ DIR = "{}" }}
async = {{ retry_delay = 1, max_retries = 2 }}
"#,
        dir.display()
    )
}

async fn calls(dir: &Path, id: &str) -> usize {
    std::fs::read_to_string(dir.join(id)).map_or(0, |s| s.len())
}

#[tokio::test]
async fn asynchronous_events_past_concurrency_are_queued_and_all_run() {
    let out = tempfile::tempdir().unwrap();
    let p = project(&flaky_project(out.path(), 4), &[("flaky/app.py", FLAKY_PY)]).await;
    for i in 0..40 {
        let ev = req(json!({"id": format!("e{i}"), "sleep": 0.2}));
        p.runtime.invoke_async("flaky", ev).unwrap();
    }
    // 40 events, 4 at a time, 0.2 s each: about 2 s; bounded at 30 s.
    let mut done = 0;
    for _ in 0..300 {
        done = std::fs::read_dir(out.path()).unwrap().count();
        if done == 40 && p.runtime.async_events("flaky") == Some((0, 0)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(done, 40, "every queued event ran");
    assert_eq!(p.runtime.async_events("flaky"), Some((0, 0)));
    for i in 0..40 {
        assert_eq!(
            calls(out.path(), &format!("e{i}")).await,
            1,
            "event e{i} ran once"
        );
    }
}

#[tokio::test]
async fn asynchronous_events_are_retried_twice_then_dropped() {
    let out = tempfile::tempdir().unwrap();
    let p = project(&flaky_project(out.path(), 2), &[("flaky/app.py", FLAKY_PY)]).await;
    // Fails twice, then succeeds on the second retry.
    p.runtime
        .invoke_async("flaky", req(json!({"id": "recovers", "fail": 2})))
        .unwrap();
    // Always fails: three attempts, then dropped and counted.
    p.runtime
        .invoke_async("flaky", req(json!({"id": "hopeless", "fail": 99})))
        .unwrap();
    // Retries after 1 s and 2 s: all settled within 3 s and a bit.
    let mut settled = false;
    for _ in 0..100 {
        if p.runtime
            .async_events("flaky")
            .is_some_and(|(pending, _)| pending == 0)
        {
            settled = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        settled,
        "events still pending: {:?}",
        p.runtime.async_events("flaky")
    );
    assert_eq!(calls(out.path(), "recovers").await, 3);
    assert_eq!(
        calls(out.path(), "hopeless").await,
        3,
        "1 attempt + 2 retries"
    );
    assert_eq!(
        p.runtime.async_events("flaky"),
        Some((0, 1)),
        "one event dropped"
    );
}

/// Answers through its callback at once, and leaves a timer behind that
/// writes a file: on AWS the answer waits for the timer (the event loop
/// must be empty) unless callbackWaitsForEmptyEventLoop is false.
const NODE_PENDING_TIMER: &str = r#"
const fs = require('fs');
exports.handler = function (event, context, callback) {
  context.callbackWaitsForEmptyEventLoop = event.wait;
  setTimeout(() => fs.writeFileSync(event.file, 'fired'), 300);
  callback(null, { timerFiredBeforeAnswer: fs.existsSync(event.file) });
};
"#;

#[tokio::test]
async fn node_callback_answers_wait_for_an_empty_event_loop() {
    let out = tempfile::tempdir().unwrap();
    let p = project(
        "[functions.cb]\nruntime = \"nodejs\"\nhandler = \"cb.handler\"\ncode = \"node\"\n",
        &[("node/cb.js", NODE_PENDING_TIMER)],
    )
    .await;
    for (i, wait) in [true, false, true].into_iter().enumerate() {
        let file = out.path().join(format!("timer-{i}"));
        let r = p
            .runtime
            .invoke("cb", req(json!({"wait": wait, "file": file})))
            .await
            .unwrap();
        assert_eq!(
            json_of(r.result.as_ref().unwrap()),
            json!({"timerFiredBeforeAnswer": false})
        );
        // The answer came after the timer only when the runtime waited.
        assert_eq!(
            file.exists(),
            wait,
            "call {i}, callbackWaitsForEmptyEventLoop = {wait}"
        );
        if !wait {
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }
}

#[tokio::test]
async fn everything_printed_before_answering_is_logged_before_end() {
    let p = project(
        "[functions.chatty]\nruntime = \"python3\"\nhandler = \"app.handler\"\ncode = \"c\"\n",
        &[(
            "c/app.py",
            "import sys\ndef handler(event, context):\n    for i in range(200):\n        print('line', i)\n    sys.stderr.write('last words\\n')\n    return 'ok'\n",
        )],
    )
    .await;
    for _ in 0..5 {
        let mut r = req(json!({}));
        r.tail_logs = true;
        let out = p.runtime.invoke("chatty", r).await.unwrap();
        let tail = out.log_tail.unwrap();
        let end = tail.find("END RequestId").expect("an END line");
        for needle in ["line 199", "last words"] {
            let at = tail
                .find(needle)
                .unwrap_or_else(|| panic!("{needle} missing:\n{tail}"));
            assert!(at < end, "{needle} logged after END:\n{tail}");
        }
    }
}

#[tokio::test]
async fn memory_of_a_functions_child_processes_counts_against_its_limit() {
    let p = project(
        "[functions.parent]\nruntime = \"python3\"\nhandler = \"app.handler\"\ncode = \"m\"\nmemory = 128\ntimeout = 20\n",
        &[(
            "m/app.py",
            "import subprocess, sys\ndef handler(event, context):\n    # The bootstrap stays small; its child takes 300 MB.\n    child = subprocess.Popen([sys.executable, '-c', \"import time; x = b'x' * (300 * 1024 * 1024); time.sleep(30)\"])\n    child.wait()\n    return 'survived'\n",
        )],
    )
    .await;
    let out = p.runtime.invoke("parent", req(json!({}))).await.unwrap();
    let e = out.result.expect_err("the environment is killed");
    assert_eq!(e.error_type, "Runtime.OutOfMemory", "{}", e.message());
    assert!(out.memory_mb == 128);
}

#[tokio::test]
async fn a_burst_past_the_local_environments_is_queued_and_answered() {
    // No reserved concurrency: nothing is throttled; 2 environments at most
    // on this machine, so 8 calls at once take turns.
    let p = project(&py_project("environments = 2"), &[("py/app.py", PY)]).await;
    let calls = (0..8).map(|_| {
        let rt = p.runtime.clone();
        async move {
            rt.invoke("py", req(json!({"action": "sleep", "seconds": 0.3})))
                .await
        }
    });
    let results = futures_util::future::join_all(calls).await;
    for r in &results {
        let out = r.as_ref().expect("queued, not throttled");
        assert_eq!(json_of(out.result.as_ref().unwrap()), json!("slept"));
    }
    let (live, _) = p.runtime.environments("py").unwrap();
    assert!(live <= 2, "{live} environments for a cap of 2");
}

#[tokio::test]
async fn environments_default_to_a_reserved_concurrency() {
    // With `concurrency = 1` (reserved), the second call at once is
    // throttled as Lambda throttles, not queued.
    let p = project(&py_project("concurrency = 1"), &[("py/app.py", PY)]).await;
    let slow = p
        .runtime
        .invoke("py", req(json!({"action": "sleep", "seconds": 0.5})));
    let second = async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        p.runtime.invoke("py", req(json!({"action": "echo"}))).await
    };
    let (first, second) = tokio::join!(slow, second);
    assert!(first.is_ok());
    assert_eq!(second.unwrap_err(), InvokeError::TooManyRequests);
}

#[tokio::test]
async fn a_failing_pip_install_stops_the_start_with_pips_own_words() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("py")).unwrap();
    std::fs::write(dir.path().join("py/app.py"), PY).unwrap();
    // `--no-index`: pip fails at once, without the network.
    std::fs::write(
        dir.path().join("py/requirements.txt"),
        "--no-index\nstratus-no-such-package==1.0\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("stratus.toml"), py_project("")).unwrap();
    let app = stratus_config::load(dir.path()).unwrap();
    let err = Runtime::start(&app, vec![]).await.unwrap_err().to_string();
    assert!(err.contains("requirements.txt"), "{err}");
    assert!(
        err.contains("stratus-no-such-package"),
        "pip's output is in the error: {err}"
    );
}

/// A streaming Node handler, as written for AWS: `awslambda` is a global.
const NODE_STREAM: &str = r#"
import fs from 'node:fs';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  if (event.http) {
    responseStream = awslambda.HttpResponseStream.from(responseStream, {
      statusCode: 201, headers: { 'x-streamed': 'yes' }, cookies: ['a=1'],
    });
  } else {
    responseStream.setContentType('text/plain');
  }
  if (event.mb) {
    const mb = Buffer.alloc(1024 * 1024, 'x');
    for (let i = 0; i < event.mb; i++) {
      if (!responseStream.write(mb)) await new Promise((r) => responseStream.once('drain', r));
    }
    responseStream.end();
    return;
  }
  for (let i = 1; event.forever || i <= (event.chunks ?? 5); i++) {
    // The last chunk waits for the caller to have seen the first.
    if (event.gate && i === (event.chunks ?? 5)) {
      while (!fs.existsSync(event.gate)) await sleep(20);
    }
    responseStream.write(`chunk ${i}\n`);
    console.log(`wrote chunk ${i} of ${context.awsRequestId}`);
    if (event.fail && i === 2) throw new Error('broke after two chunks');
    await sleep(event.gap ?? 200);
  }
  responseStream.end();
});
"#;

async fn next_event(s: &mut stratus_runtime::ResponseStream) -> stratus_runtime::StreamEvent {
    tokio::time::timeout(std::time::Duration::from_secs(10), s.chunks.recv())
        .await
        .expect("a stream event in time")
        .expect("the stream ends with End or Failed")
}

fn stream_of(s: stratus_runtime::Streamed) -> stratus_runtime::ResponseStream {
    match s {
        stratus_runtime::Streamed::Stream(s) => s,
        stratus_runtime::Streamed::Whole(w) => panic!("not streamed: {w:?}"),
    }
}

#[tokio::test]
async fn node_streams_its_response_as_it_writes_it() {
    use stratus_runtime::StreamEvent;
    let p = project(
        r#"
[functions.stream]
runtime = "nodejs20.x"
handler = "index.handler"
code = "node"
timeout = 4
concurrency = 1
"#,
        &[("node/index.mjs", NODE_STREAM)],
    )
    .await;
    // Five chunks, the last written only once the first has arrived here:
    // a buffered answer would never end.
    let gate = p.dir.path().join("gate");
    let mut s = stream_of(
        p.runtime
            .invoke_stream("stream", req(json!({"gate": gate, "gap": 200})))
            .await
            .unwrap(),
    );
    assert_eq!(s.content_type, "text/plain");
    assert_eq!(s.executed_version, "$LATEST");
    assert_eq!(
        next_event(&mut s).await,
        StreamEvent::Data("chunk 1\n".into())
    );
    std::fs::write(&gate, "").unwrap();
    let mut rest = String::new();
    loop {
        match next_event(&mut s).await {
            StreamEvent::Data(b) => rest.push_str(std::str::from_utf8(&b).unwrap()),
            StreamEvent::End => break,
            StreamEvent::Failed(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(rest, "chunk 2\nchunk 3\nchunk 4\nchunk 5\n");

    // An error after two chunks: the bytes, then the function's error.
    let mut s = stream_of(
        p.runtime
            .invoke_stream("stream", req(json!({"fail": true, "gap": 10})))
            .await
            .unwrap(),
    );
    let mut got = Vec::new();
    let failed = loop {
        match next_event(&mut s).await {
            StreamEvent::Data(b) => got.push(b),
            StreamEvent::End => panic!("ended well: {got:?}"),
            StreamEvent::Failed(e) => break e,
        }
    };
    assert_eq!(got.concat(), b"chunk 1\nchunk 2\n");
    assert_eq!(failed.error_type, "Error");
    assert_eq!(failed.message(), "broke after two chunks");
    assert_eq!(failed.kind, ErrorKind::Handled);

    // `Invoke` buffers a stream, as Lambda's does.
    let whole = p
        .runtime
        .invoke("stream", req(json!({"chunks": 3, "gap": 5})))
        .await
        .unwrap();
    assert_eq!(
        whole.result.unwrap(),
        Bytes::from("chunk 1\nchunk 2\nchunk 3\n")
    );
    assert!(whole.init_duration.is_none(), "the environment stayed warm");

    // The prelude of an HTTP integration stream comes first, as written.
    let mut s = stream_of(
        p.runtime
            .invoke_stream("stream", req(json!({"http": true, "chunks": 1})))
            .await
            .unwrap(),
    );
    assert_eq!(s.content_type, stratus_runtime::HTTP_INTEGRATION_STREAM);
    let mut body = Vec::new();
    while let StreamEvent::Data(b) = next_event(&mut s).await {
        body.extend_from_slice(&b);
    }
    let prelude = br#"{"statusCode":201,"headers":{"x-streamed":"yes"},"cookies":["a=1"]}"#;
    assert_eq!(&body[..prelude.len()], prelude);
    assert_eq!(&body[prelude.len()..prelude.len() + 8], &[0u8; 8]);
    assert_eq!(&body[prelude.len() + 8..], b"chunk 1\n");

    // A caller that goes away mid-stream stops the function: its
    // environment is freed at once (concurrency 1: the next call runs).
    let mut s = stream_of(
        p.runtime
            .invoke_stream("stream", req(json!({"forever": true, "gap": 50})))
            .await
            .unwrap(),
    );
    assert!(matches!(next_event(&mut s).await, StreamEvent::Data(_)));
    drop(s);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while p.runtime.environments("stream") != Some((0, 0)) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            p.runtime.environments("stream")
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let after = p
        .runtime
        .invoke("stream", req(json!({"chunks": 1, "gap": 1})))
        .await
        .unwrap();
    assert_eq!(after.result.unwrap(), Bytes::from("chunk 1\n"));

    // The function's timeout covers the whole stream.
    let mut s = stream_of(
        p.runtime
            .invoke_stream("stream", req(json!({"forever": true, "gap": 100})))
            .await
            .unwrap(),
    );
    let failed = loop {
        match next_event(&mut s).await {
            StreamEvent::Data(_) => {}
            StreamEvent::End => panic!("ended"),
            StreamEvent::Failed(e) => break e,
        }
    };
    assert_eq!(failed.error_type, "Sandbox.Timedout");
}

#[tokio::test]
async fn a_stream_goes_at_2_mb_a_second_past_6_mb_and_stops_at_20_mb() {
    use stratus_runtime::StreamEvent;
    let p = project(
        r#"
[functions.stream]
runtime = "nodejs20.x"
handler = "index.handler"
code = "node"
timeout = 30
"#,
        &[("node/index.mjs", NODE_STREAM)],
    )
    .await;
    let started = tokio::time::Instant::now();
    let mut s = stream_of(
        p.runtime
            .invoke_stream("stream", req(json!({"mb": 21})))
            .await
            .unwrap(),
    );
    let mut total = 0usize;
    let failed = loop {
        match next_event(&mut s).await {
            StreamEvent::Data(b) => total += b.len(),
            StreamEvent::End => panic!("21 MB streamed whole"),
            StreamEvent::Failed(e) => break e,
        }
    };
    assert_eq!(failed.error_type, "Function.ResponseSizeTooLarge");
    assert!(
        total <= stratus_runtime::MAX_STREAMED_RESPONSE,
        "{total} bytes passed on"
    );
    assert!(total >= 19 * 1024 * 1024, "{total} bytes passed on");
    // 14 MB past the 6 MB burst at 2 MB/s: at least 7 s (a bound the
    // pacing sets, whatever the machine's speed).
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}
