//! Function URLs (issue 26, point 1): a function's own URL, at
//! `/lambda-url/NAME` and at its own host `{url-id}.lambda-url.localhost`,
//! with `AuthType` `NONE` and `AWS_IAM` (signed by botocore, refused
//! unsigned), its CORS, and the payload 2.0 event Lambda gives a URL.

use serde_json::Value;
use stratus_testkit::write_file;

use crate::support::Serving;

const PROJECT: &str = r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[functions.open]
runtime = "python3.12"
handler = "app.handler"
code = "fn"
url = { cors = { allow_origins = ["http://localhost:3000"], allow_methods = ["GET", "POST"], max_age = 60 } }

[functions.private]
runtime = "python3.12"
handler = "app.handler"
code = "fn"
url = { auth = "AWS_IAM" }
"#;

const ECHO_PY: &str = r#"
import json
def handler(event, context):
    rc = event["requestContext"]
    return {"statusCode": 200, "headers": {"x-answer": "yes"}, "body": json.dumps({
        "version": event["version"], "routeKey": event["routeKey"], "rawPath": event["rawPath"],
        "query": event.get("queryStringParameters"), "accountId": rc["accountId"], "apiId": rc["apiId"],
        "stage": rc["stage"], "http": rc["http"], "body": event.get("body"),
        "iam": (rc.get("authorizer") or {}).get("iam"),
    })}
"#;

/// A botocore-signed (or unsigned) POST to `url`: (status, body).
fn python_call(url: &str, signed: bool) -> (u16, String) {
    let key = signed.then_some(("AKIDEXAMPLE", "secret"));
    crate::support::botocore_post(url, "lambda", key, r#"{"hi":1}"#)
}

#[tokio::test(flavor = "multi_thread")]
async fn function_urls_answer_at_their_path_and_host_with_none_and_aws_iam() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "stratus.toml", PROJECT);
    write_file(dir.path(), "fn/app.py", ECHO_PY);
    let s = Serving::start(dir.path());
    let client = reqwest::Client::new();
    // NONE, at the listener's path: the URL's own path and query.
    let r = client
        .get(s.url("/lambda-url/open/items/7?q=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-answer"], "yes");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["version"], "2.0");
    assert_eq!(v["routeKey"], "$default");
    assert_eq!(v["rawPath"], "/items/7");
    assert_eq!(v["http"]["path"], "/items/7");
    assert_eq!(v["query"]["q"], "1");
    assert_eq!(v["accountId"], "anonymous");
    assert_eq!(v["stage"], "$default");
    let url_id = v["apiId"].as_str().unwrap().to_owned();
    assert_eq!(url_id.len(), 32, "{url_id}");
    // At its own host, the path as it is.
    let r = client
        .post(s.url("/some/where"))
        .header(
            "host",
            format!("{url_id}.lambda-url.localhost:{}", s.gateway.port()),
        )
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        (v["rawPath"].as_str(), v["body"].as_str()),
        (Some("/some/where"), Some("payload"))
    );
    // Its CORS: a preflight answered, the origin allowed.
    assert_eq!(
        crate::support::preflight(&s.url("/lambda-url/open/"), "http://localhost:3000", "POST")
            .await,
        Some("http://localhost:3000".to_owned())
    );
    // A body past Lambda's 6 MB request payload is refused before any
    // signature is read, and the server answers on.
    let r = client
        .post(s.url("/lambda-url/private/"))
        .body(vec![b'x'; 6 * 1024 * 1024 + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // AWS_IAM: unsigned is refused as Lambda refuses it; botocore-signed
    // gets in, the caller in the event.
    let url = s.url("/lambda-url/private/");
    let (status, body) = tokio::task::spawn_blocking({
        let url = url.clone();
        move || python_call(&url, false)
    })
    .await
    .unwrap();
    assert_eq!((status, body.as_str()), (403, r#"{"Message":"Forbidden"}"#));
    let (status, body) = tokio::task::spawn_blocking(move || python_call(&url, true))
        .await
        .unwrap();
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["iam"]["accessKey"], "AKIDEXAMPLE");
    assert_eq!(v["accountId"], "000000000000");
    assert_eq!(v["body"], r#"{"hi":1}"#);
}
