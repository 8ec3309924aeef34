//! Response streaming (issue 26, point 2), end to end: a Node function
//! written as for AWS (`awslambda.streamifyResponse`,
//! `awslambda.HttpResponseStream.from`) behind a `RESPONSE_STREAM`
//! function URL and a REST route that streams, read by reqwest chunk by
//! chunk; boto3's `invoke_with_response_stream`; and a Rust function on
//! `lambda_http::run_with_streaming_response`.

use std::time::Duration;

use stratus_testkit::write_file;

use crate::support::{boto3_script, Serving};

const PROJECT: &str = r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[functions.stream]
runtime = "nodejs20.x"
handler = "index.handler"
code = "node"
timeout = 30
concurrency = 1
url = { invoke_mode = "RESPONSE_STREAM" }

[functions.whole]
runtime = "python3.12"
handler = "app.handler"
code = "py"

[apis.shop]
type = "rest"
base_path = "/shop"
stages = { prod = {} }
[apis.shop.routes]
"GET /stream" = { function = "stream", transfer_mode = "STREAM" }
"GET /buffered" = { function = "stream" }
"#;

/// Options come from the URL's query (a function URL's or a REST route's
/// event), or are the event itself (a direct invoke).
const NODE_STREAM: &str = r#"
import fs from 'node:fs';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
export const handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  const o = event.queryStringParameters ?? event;
  if (o.throw) throw new Error('failed before any byte');
  if (o.http) {
    responseStream = awslambda.HttpResponseStream.from(responseStream, {
      statusCode: 201, headers: { 'x-streamed': 'yes', 'content-type': 'text/plain' }, cookies: ['a=1'],
    });
  } else {
    responseStream.setContentType('text/plain');
  }
  const chunks = Number(o.chunks ?? 5);
  for (let i = 1; o.forever || i <= chunks; i++) {
    // The last chunk waits for the client to have read the first.
    if (o.gate && i === chunks) {
      while (!fs.existsSync(o.gate)) await sleep(20);
    }
    responseStream.write(`chunk ${i}\n`);
    if (o.fail && i === 2) throw new Error('broke after two chunks');
    await sleep(Number(o.gap ?? 200));
  }
  responseStream.end();
});
"#;

const PY_WHOLE: &str = r#"
def handler(event, context):
    return {"whole": True}
"#;

/// Reads the body until `want` is in it (or it ends); what was read, and
/// whether the body ended with an error.
async fn read_until(r: &mut reqwest::Response, got: &mut String, want: &str) -> bool {
    while !got.contains(want) {
        match tokio::time::timeout(Duration::from_secs(10), r.chunk()).await {
            Ok(Ok(Some(c))) => got.push_str(std::str::from_utf8(&c).unwrap()),
            Ok(Ok(None)) => return false,
            Ok(Err(_)) => return true,
            Err(_) => panic!("no chunk in 10 s; read so far: {got:?}"),
        }
    }
    false
}

/// The first chunk reaches the client while the function is still
/// writing: the last chunk is only written once the client has read the
/// first (a buffered answer would never end).
async fn streams_in_order(client: &reqwest::Client, url: &str, gate: &std::path::Path) {
    let mut r = client
        .get(format!(
            "{url}{}gate={}",
            if url.contains('?') { "&" } else { "?" },
            gate.display()
        ))
        .send()
        .await
        .unwrap();
    let mut got = String::new();
    read_until(&mut r, &mut got, "chunk 1\n").await;
    assert!(!got.contains("chunk 5"), "{got:?}");
    std::fs::write(gate, "").unwrap();
    let cut = read_until(&mut r, &mut got, "never").await;
    assert!(!cut, "{got:?}");
    assert_eq!(got, "chunk 1\nchunk 2\nchunk 3\nchunk 4\nchunk 5\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_function_streams_through_its_url_and_a_rest_route() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "stratus.toml", PROJECT);
    write_file(dir.path(), "node/index.mjs", NODE_STREAM);
    write_file(dir.path(), "py/app.py", PY_WHOLE);
    let s = Serving::start(dir.path());
    let client = reqwest::Client::new();
    let url = s.url("/lambda-url/stream/");

    // Plain stream: 200, the stream's content type, five chunks in order.
    let r = client
        .get(format!("{url}?chunks=1&gap=1"))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    if status != 200 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let log: Vec<String> = s.lines.try_iter().collect();
        panic!("{status} {text} {log:#?}");
    }
    assert_eq!(headers["content-type"], "text/plain");
    assert!(headers.get("content-length").is_none());
    assert_eq!(text, "chunk 1\n");
    streams_in_order(&client, &url, &dir.path().join("gate-url")).await;

    // An HTTP integration prelude: its status, headers and cookies.
    let r = client
        .get(format!("{url}?http=1&chunks=2&gap=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["x-streamed"], "yes");
    assert_eq!(r.headers()["set-cookie"], "a=1");
    assert_eq!(r.text().await.unwrap(), "chunk 1\nchunk 2\n");

    // A failure before any byte is the URL's 502; after bytes, the body
    // is cut (it does not end well) after what was written.
    let r = client.get(format!("{url}?throw=1")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    let mut r = client
        .get(format!("{url}?fail=1&gap=10"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut got = String::new();
    let cut = read_until(&mut r, &mut got, "never").await;
    assert!(cut, "the body ended as if whole: {got:?}");
    assert_eq!(got, "chunk 1\nchunk 2\n");
    s.wait_line("broke after two chunks", Duration::from_secs(10));

    // The REST route that streams: the prelude's head, chunks in order.
    let rest = s.url("/shop/prod/stream?http=1");
    streams_in_order(&client, &rest, &dir.path().join("gate-rest")).await;
    // The same function on a buffered route: its stream, gathered (a
    // streamed body is not an API Gateway proxy answer, so it is the 502
    // of a malformed Lambda response, as on AWS).
    let r = client
        .get(s.url("/shop/prod/buffered?chunks=1&gap=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);

    // A client that goes away mid-stream stops the function: with
    // concurrency 1 and a 30 s timeout, the next call runs at once.
    let mut r = client
        .get(format!("{url}?forever=1&gap=50"))
        .send()
        .await
        .unwrap();
    let mut got = String::new();
    read_until(&mut r, &mut got, "chunk 2\n").await;
    drop(r);
    s.wait_line(
        "the caller went away during the streamed response",
        Duration::from_secs(10),
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let r = client
            .get(format!("{url}?chunks=1&gap=1"))
            .send()
            .await
            .unwrap();
        if r.status() == 200 {
            assert_eq!(r.text().await.unwrap(), "chunk 1\n");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still {}",
            r.status()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // boto3's invoke_with_response_stream: the chunks as PayloadChunk
    // events, then InvokeComplete (with the error when it failed); a
    // function that does not stream answers in one chunk.
    let admin = format!("http://{}", s.admin);
    let out = boto3_script(
        r#"
import sys, json, boto3
c = boto3.client("lambda", endpoint_url=sys.argv[1])
def run(name, payload):
    r = c.invoke_with_response_stream(FunctionName=name, Payload=json.dumps(payload))
    chunks, complete = [], None
    for ev in r["EventStream"]:
        if "PayloadChunk" in ev:
            chunks.append(ev["PayloadChunk"]["Payload"].decode())
        if "InvokeComplete" in ev:
            complete = ev["InvokeComplete"]
    return {"status": r["StatusCode"], "type": r.get("ResponseStreamContentType"),
            "version": r.get("ExecutedVersion"), "chunks": chunks, "complete": complete}
print(json.dumps({
    "ok": run("stream", {"chunks": 3, "gap": 50}),
    "failed": run("stream", {"chunks": 3, "gap": 10, "fail": True}),
    "whole": run("whole", {}),
}))
"#,
        &admin,
    );
    let ok = &out["ok"];
    assert_eq!(ok["status"], 200);
    assert_eq!(ok["type"], "text/plain");
    assert_eq!(ok["version"], "$LATEST");
    assert_eq!(ok["chunks"].as_array().unwrap().len(), 3, "{ok}");
    assert_eq!(ok["chunks"][0], "chunk 1\n");
    assert_eq!(ok["complete"], serde_json::json!({}));
    let failed = &out["failed"];
    assert_eq!(
        failed["chunks"].as_array().unwrap().concat_strings(),
        "chunk 1\nchunk 2\n"
    );
    assert_eq!(failed["complete"]["ErrorCode"], "Error");
    assert_eq!(failed["complete"]["ErrorDetails"], "broke after two chunks");
    assert_eq!(out["whole"]["chunks"][0], r#"{"whole": true}"#);
    assert_eq!(out["whole"]["complete"], serde_json::json!({}));
}

trait ConcatStrings {
    fn concat_strings(&self) -> String;
}

impl ConcatStrings for Vec<serde_json::Value> {
    fn concat_strings(&self) -> String {
        self.iter().filter_map(|v| v.as_str()).collect()
    }
}

const RUST_CARGO: &str = r#"[package]
name = "stream-rust"
version = "0.1.0"
edition = "2021"
publish = false

[dependencies]
lambda_http = { version = "1", default-features = false, features = ["apigw_http", "apigw_rest"] }
serde_json = "1"
tokio = { version = "1", features = ["macros"] }
"#;

const RUST_MAIN: &str = r#"
use lambda_http::lambda_runtime::streaming::channel;
use lambda_http::{run_with_streaming_response, service_fn, Error, Request, Response};

async fn handler(
    _req: Request,
) -> Result<Response<lambda_http::lambda_runtime::streaming::Body>, Error> {
    let (mut tx, body) = channel();
    tokio::spawn(async move {
        for i in 1..=3 {
            let _ = tx.send_data(format!("rust {i}\n").into()).await;
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    });
    Ok(Response::builder()
        .status(202)
        .header("content-type", "text/plain")
        .header("x-runtime", "rust")
        .body(body)?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    run_with_streaming_response(service_fn(handler)).await
}
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_rust_function_streams_with_lambda_http() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "stratus.toml",
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[functions.rs]
runtime = "provided.al2023"
handler = "bootstrap"
code = "rs"
url = { invoke_mode = "RESPONSE_STREAM" }
"#,
    );
    write_file(dir.path(), "rs/Cargo.toml", RUST_CARGO);
    write_file(dir.path(), "rs/src/main.rs", RUST_MAIN);
    let s = Serving::start(dir.path());
    let mut r = reqwest::get(s.url("/lambda-url/rs/")).await.unwrap();
    assert_eq!(r.status(), 202);
    assert_eq!(r.headers()["x-runtime"], "rust");
    let mut got = String::new();
    let cut = read_until(&mut r, &mut got, "never").await;
    assert!(!cut, "{got:?}");
    assert_eq!(got, "rust 1\nrust 2\nrust 3\n");
}

/// A SAM template's streaming pieces: `FunctionUrlConfig` with
/// `InvokeMode: RESPONSE_STREAM`, and an OpenAPI REST route whose
/// integration has `responseTransferMode: STREAM` and the
/// `response-streaming-invocations` URI, as AWS's guide writes them.
const STREAM_TEMPLATE: &str = r#"AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Resources:
  Streamer:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: node/
      Handler: index.handler
      Runtime: nodejs20.x
      Timeout: 30
      FunctionUrlConfig:
        AuthType: NONE
        InvokeMode: RESPONSE_STREAM
  StreamApi:
    Type: AWS::Serverless::Api
    Properties:
      StageName: prod
      DefinitionBody:
        openapi: "3.0.1"
        info: { title: streams, version: "1" }
        paths:
          /stream:
            get:
              x-amazon-apigateway-integration:
                type: aws_proxy
                httpMethod: POST
                responseTransferMode: STREAM
                timeoutInMillis: 60000
                uri: !Sub arn:aws:apigateway:${AWS::Region}:lambda:path/2021-11-15/functions/${Streamer.Arn}/response-streaming-invocations
Outputs:
  Url:
    Value: !GetAtt StreamerUrl.FunctionUrl
"#;

#[tokio::test(flavor = "multi_thread")]
async fn a_templates_streaming_url_and_rest_route_stream() {
    let dir = tempfile::tempdir().unwrap();
    write_file(dir.path(), "template.yaml", STREAM_TEMPLATE);
    write_file(dir.path(), "node/index.mjs", NODE_STREAM);
    let s = Serving::start_on_free_ports(dir.path());
    let client = reqwest::Client::new();
    streams_in_order(
        &client,
        &s.url("/lambda-url/Streamer/"),
        &dir.path().join("gate-url"),
    )
    .await;
    streams_in_order(
        &client,
        &s.url("/prod/stream?http=1"),
        &dir.path().join("gate-rest"),
    )
    .await;
}

/// A function that claims an HTTP integration stream but never writes the
/// prelude's separator: past 64 KB the gateway gives up with a 502 rather
/// than buffer on; a prelude that is not JSON is a 502 too.
#[tokio::test(flavor = "multi_thread")]
async fn a_prelude_that_never_ends_or_is_not_json_is_a_502() {
    let dir = tempfile::tempdir().unwrap();
    write_file(
        dir.path(),
        "stratus.toml",
        r#"[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[functions.bad]
runtime = "nodejs20.x"
handler = "index.handler"
code = "node"
url = { invoke_mode = "RESPONSE_STREAM" }
"#,
    );
    write_file(
        dir.path(),
        "node/index.mjs",
        r#"
export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.setContentType('application/vnd.awslambda.http-integration-response');
  if (event.rawQueryString === 'json') {
    responseStream.write('not json at all');
    responseStream.write(new Uint8Array(8));
    responseStream.write('body');
  } else {
    for (let i = 0; i < 80; i++) responseStream.write('x'.repeat(1024));
  }
  responseStream.end();
});
"#,
    );
    let s = Serving::start(dir.path());
    let r = reqwest::get(s.url("/lambda-url/bad/")).await.unwrap();
    assert_eq!(r.status(), 502);
    let r = reqwest::get(s.url("/lambda-url/bad/?json")).await.unwrap();
    assert_eq!(r.status(), 502);
    assert!(
        r.text().await.unwrap().contains("Internal"),
        "a 502 with the gateway's own body"
    );
}
