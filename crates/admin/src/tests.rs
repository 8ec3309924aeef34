//! The admin APIs in memory: `router(state).oneshot(request)`, no socket.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::*;

async fn state() -> AdminState {
    let dir = Path::new(".");
    // No functions: the runtime starts nothing.
    let empty = stratus_config::load_str("", Path::new("stratus.toml"), dir).unwrap();
    let functions = Runtime::start(&empty, Vec::new()).await.unwrap();
    // A WebSocket API for `@connections` (its function is never called).
    let app = stratus_config::load_str(
        "[functions.f]\nruntime = \"python3\"\nhandler = \"app.handler\"\ncode = \".\"\n\
         [apis.chat]\ntype = \"websocket\"\n[apis.chat.routes]\n\"$default\" = { function = \"f\" }\n",
        Path::new("stratus.toml"),
        dir,
    )
    .unwrap();
    let gateway = stratus_gateway::Gateway::new(
        &app,
        Arc::new(functions.clone()),
        stratus_gateway::Connections::in_memory(),
    );
    AdminState {
        ready: Arc::new(AtomicBool::new(true)),
        functions,
        region: "us-east-1".into(),
        credentials: app.server.credentials.clone(),
        verify_signatures: app.server.verify_signatures,
        keys: None,
        reload: None,
        dashboard: Arc::new(crate::DashboardFeed::new(4)),
        stack: None,
        objects: Arc::new(
            stratus_state::objects::FsObjectStore::open(
                &std::env::temp_dir().join(format!("stratus-admin-{}", uuid::Uuid::new_v4())),
            )
            .unwrap(),
        ),
        databases: Arc::default(),
        live: Arc::new(arc_swap::ArcSwap::from_pointee(Live {
            app: Arc::new(app.clone()),
            websockets: gateway.websockets(),
            sites: gateway.sites(),
            caches: gateway.caches(),
        })),
    }
}

async fn send(req: Request<Body>) -> (StatusCode, Option<String>, String) {
    send_to(state().await, req).await
}

/// As with `[server.credentials]` set to the defaults the tests sign with.
async fn strict() -> AdminState {
    AdminState {
        verify_signatures: true,
        ..state().await
    }
}

async fn send_to(state: AdminState, req: Request<Body>) -> (StatusCode, Option<String>, String) {
    let resp = router(state).oneshot(req).await.unwrap();
    let status = resp.status();
    let error_type = resp
        .headers()
        .get("x-amzn-ErrorType")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        error_type,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

#[tokio::test]
async fn health_and_readiness() {
    let req = Request::get("/healthz").body(Body::empty()).unwrap();
    assert_eq!(send(req).await.0, StatusCode::OK);
    let req = Request::get("/readyz").body(Body::empty()).unwrap();
    assert_eq!(send(req).await.2, "ready\n");
}

#[tokio::test]
async fn invoke_api_names_an_unknown_function_as_lambda_does() {
    let req = Request::post("/2015-03-31/functions/ghost/invocations")
        .body(Body::from("{}"))
        .unwrap();
    let (status, error_type, body) = send(req).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_type.as_deref(), Some("ResourceNotFoundException"));
    assert!(
        body.contains("arn:aws:lambda:us-east-1:000000000000:function:ghost"),
        "{body}"
    );
}

fn signed(method: &str, path: &str, body: &'static [u8]) -> Request<Body> {
    let host = "127.0.0.1:8081";
    let url = format!("http://{host}{path}");
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (k, v) in stratus_testkit::sigv4_headers(method, &url, body) {
        req = req.header(k, v);
    }
    req.body(Body::from(body)).unwrap()
}

#[tokio::test]
async fn connections_api_checks_signatures_and_answers_gone() {
    let unsigned = Request::get("/ws/chat/%24default/@connections/abc")
        .header("host", "127.0.0.1:8081")
        .body(Body::empty())
        .unwrap();
    let (status, error_type, _) = send_to(strict().await, unsigned).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_type.as_deref(), Some("ForbiddenException"));

    let (status, error_type, _) = send_to(
        strict().await,
        signed("GET", "/ws/chat/%24default/@connections/abc", b""),
    )
    .await;
    assert_eq!(status, StatusCode::GONE);
    assert_eq!(error_type.as_deref(), Some("GoneException"));

    let (status, error_type, _) = send(signed(
        "POST",
        "/ws/nope/%24default/@connections/abc",
        b"hi",
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_type.as_deref(), Some("NotFoundException"));
}

#[tokio::test]
async fn without_credentials_a_malformed_signature_is_still_refused() {
    // Unsigned passes (no [server.credentials]): the function is unknown.
    let req = Request::post("/2015-03-31/functions/ghost/invocations")
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(send(req).await.0, StatusCode::NOT_FOUND);
    // Any well-formed credentials pass too, whatever their signature.
    let req = Request::post("/2015-03-31/functions/ghost/invocations")
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=test/20261125/us-east-1/lambda/aws4_request, SignedHeaders=host;x-amz-date, Signature=00ff",
        )
        .body(Body::from("{}"))
        .unwrap();
    assert_eq!(send(req).await.0, StatusCode::NOT_FOUND);
    for bad in [
        "Bearer abc",
        "AWS4-HMAC-SHA256 Credential=test/20261125/us-east-1/lambda, SignedHeaders=host, Signature=00ff",
        "AWS4-HMAC-SHA256 Credential=test/20261125/us-east-1/lambda/aws4_request",
    ] {
        let req = Request::post("/2015-03-31/functions/ghost/invocations")
            .header("authorization", bad)
            .body(Body::from("{}"))
            .unwrap();
        let (status, error_type, _) = send(req).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{bad}");
        assert_eq!(error_type.as_deref(), Some("IncompleteSignatureException"), "{bad}");
    }
}

fn req(method: &str, uri: &str, headers: &[(&str, &str)], body: impl AsRef<[u8]>) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    b.body(Body::from(body.as_ref().to_vec())).unwrap()
}

#[tokio::test]
async fn the_s3_api_refuses_bad_input_with_s3s_errors() {
    let s = state().await;
    let send = |r| send_to(s.clone(), r);
    // A bucket name S3 would refuse; an unknown bucket; a missing key.
    let (status, _, body) = send(req("PUT", "/s3/Bad_Name", &[], b"")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("<Code>InvalidArgument</Code>"), "{body}");
    let (status, _, body) = send(req("GET", "/s3/nowhere?list-type=2", &[], b"")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("<Code>NoSuchBucket</Code>"), "{body}");
    assert_eq!(
        send(req("PUT", "/s3/bucket-one", &[], b"")).await.0,
        StatusCode::OK
    );
    let (status, _, body) = send(req("GET", "/s3/bucket-one/missing.txt", &[], b"")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("<Code>NoSuchKey</Code>"), "{body}");
    // A HEAD error has no body.
    let (status, _, body) = send(req("HEAD", "/s3/bucket-one/missing.txt", &[], b"")).await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, ""));
    // Bodies that do not match what the headers say.
    let (status, _, body) = send(req(
        "PUT",
        "/s3/bucket-one/a",
        &[("content-md5", "AAAAAAAAAAAAAAAAAAAAAA==")],
        b"data",
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("<Code>BadDigest</Code>"), "{body}");
    let (status, _, body) = send(req(
        "PUT",
        "/s3/bucket-one/a",
        &[("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")],
        b"zz\r\nnot chunked",
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("<Code>IncompleteBody</Code>"), "{body}");
    let (status, _, _) = send(req(
        "PUT",
        "/s3/bucket-one/a",
        &[("x-amz-content-sha256", "00")],
        b"data",
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A multipart completion that names a part never uploaded; an unknown upload.
    let (status, _, body) = send(req("POST", "/s3/bucket-one/big?uploads", &[], b"")).await;
    assert_eq!(status, StatusCode::OK);
    let id = body
        .split("<UploadId>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let complete: &'static [u8] = b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>\"x\"</ETag></Part></CompleteMultipartUpload>";
    let uri: &'static str = Box::leak(format!("/s3/bucket-one/big?uploadId={id}").into_boxed_str());
    let (status, _, body) = send(req("POST", uri, &[], complete)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("<Code>InvalidPart</Code>"), "{body}");
    let (status, _, body) = send(req(
        "POST",
        "/s3/bucket-one/big?uploadId=nope",
        &[],
        b"<Part><PartNumber>x</PartNumber></Part>",
    ))
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("MalformedXML"), "{body}");
    // The server is fine: a good object goes in and out.
    assert_eq!(
        send(req("PUT", "/s3/bucket-one/ok.txt", &[], b"fine"))
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(
        send(req("GET", "/s3/bucket-one/ok.txt", &[], b"")).await.2,
        "fine"
    );
}

#[tokio::test]
async fn the_data_api_refuses_bad_input_as_aws_does() {
    let (status, error, body) = send(req("POST", "/Execute", &[], b"{not json")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error.as_deref(), Some("BadRequestException"));
    assert!(body.contains("not JSON"), "{body}");
    let (status, error, _) = send(req(
        "POST",
        "/Execute",
        &[],
        br#"{"resourceArn":"arn:aws:rds:us-east-1:000000000000:cluster:none","sql":"SELECT 1"}"#,
    ))
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error.as_deref(), Some("NotFoundException"));
}

#[tokio::test]
async fn the_data_api_refuses_bad_parameters_big_answers_and_a_ninth_transaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = stratus_state::databases::Db::connect(
        "main",
        "arn:main".into(),
        &stratus_state::databases::Location::Sqlite(dir.path().join("main.sqlite")),
        stratus_state::databases::STATEMENT_TIMEOUT,
    )
    .await
    .unwrap();
    let state = AdminState {
        databases: Arc::new(stratus_state::databases::Databases {
            all: vec![Arc::new(db)],
        }),
        ..state().await
    };
    let call = |path: &'static str, body: serde_json::Value| {
        let state = state.clone();
        async move {
            let (status, error, body) =
                send_to(state, req("POST", path, &[], body.to_string())).await;
            (status, error.unwrap_or_default(), body)
        }
    };
    let bad = [
        (
            serde_json::json!({"resourceArn": "main", "sql": "SELECT :a", "parameters": [{"name": "a", "typeHint": "MONEY", "value": {"stringValue": "1"}}]}),
            "is not one of JSON, UUID, TIMESTAMP, DATE, TIME, DECIMAL",
        ),
        (
            serde_json::json!({"resourceArn": "main", "sql": "SELECT :a", "parameters": [{"name": "a", "value": {"arrayValue": {"longValues": [1]}}}]}),
            "arrays are parameters on PostgreSQL only",
        ),
        (
            serde_json::json!({"resourceArn": "main", "sql": "SELECT :a", "parameters": [{"name": "a", "value": {}}]}),
            "parameter a: no value",
        ),
        (
            serde_json::json!({"resourceArn": "main", "sql": "SELECT :b"}),
            "no value for parameter :b",
        ),
        (
            serde_json::json!({"resourceArn": "main"}),
            "sql is required",
        ),
        (
            serde_json::json!({"resourceArn": "main", "sql": "SELECT 1", "transactionId": "nope"}),
            "Transaction nope is not found",
        ),
        (
            serde_json::json!({"resourceArn": "main", "sql": "SELECT zeroblob(800000)"}),
            "Database returned more than the allowed response size limit",
        ),
    ];
    for (body, message) in bad {
        let (status, error, text) = call("/Execute", body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
        assert_eq!(error, "BadRequestException");
        assert!(text.contains(message), "{body}: {text}");
    }
    // As formatted JSON the same blob fits (10 MB there).
    let (status, _, _) = call(
        "/Execute",
        serde_json::json!({"resourceArn": "main", "sql": "SELECT zeroblob(800000)", "formatRecordsAs": "JSON"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // Eight open transactions, the most; the ninth is refused, and one
    // ended makes room.
    let mut ids = Vec::new();
    for _ in 0..8 {
        let (status, _, text) = call(
            "/BeginTransaction",
            serde_json::json!({"resourceArn": "main"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        ids.push(v["transactionId"].as_str().unwrap().to_owned());
    }
    let (status, error, text) = call(
        "/BeginTransaction",
        serde_json::json!({"resourceArn": "main"}),
    )
    .await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::BAD_REQUEST, "BadRequestException")
    );
    assert!(text.contains("8 open transactions"), "{text}");
    // Statements outside transactions still find a connection.
    let (status, _, _) = call(
        "/Execute",
        serde_json::json!({"resourceArn": "main", "sql": "SELECT 1"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, text) = call(
        "/RollbackTransaction",
        serde_json::json!({"resourceArn": "main", "transactionId": ids[0]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("Rollback Complete"));
    let (status, _, _) = call(
        "/BeginTransaction",
        serde_json::json!({"resourceArn": "main"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_bucket_with_cors_answers_preflights_and_puts_the_headers_on_answers() {
    let base = state().await;
    let app = stratus_config::load_str(
        "[buckets.uploads]\ncors = { allow_origins = [\"http://page.test\"], allow_methods = [\"PUT\", \"GET\"], allow_headers = [\"content-type\"], max_age = 60 }\n[buckets.closed]\n",
        Path::new("stratus.toml"),
        Path::new("."),
    )
    .unwrap();
    let old = base.live.load();
    let s = AdminState {
        live: Arc::new(arc_swap::ArcSwap::from_pointee(Live {
            app: Arc::new(app),
            websockets: old.websockets.clone(),
            sites: old.sites.clone(),
            caches: old.caches.clone(),
        })),
        ..base.clone()
    };
    let preflight = |bucket: &str, origin: &str, method: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri(format!("/s3/{bucket}/a.txt"))
            .header("origin", origin)
            .header("access-control-request-method", method)
            .header("access-control-request-headers", "content-type")
            .body(Body::empty())
            .unwrap()
    };
    let resp = router(s.clone())
        .oneshot(preflight("uploads", "http://page.test", "PUT"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers();
    assert_eq!(h["access-control-allow-origin"], "http://page.test");
    assert_eq!(h["access-control-allow-methods"], "PUT,GET");
    assert_eq!(h["access-control-max-age"], "60");
    for (bucket, origin, method) in [
        ("uploads", "http://elsewhere.test", "PUT"),
        ("uploads", "http://page.test", "DELETE"),
    ] {
        let resp = router(s.clone())
            .oneshot(preflight(bucket, origin, method))
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{origin} {method}");
        assert!(!resp.headers().contains_key("access-control-allow-origin"));
    }
    // A bucket without cors: no CORS headers, as on S3.
    let resp = router(s.clone())
        .oneshot(preflight("closed", "http://page.test", "PUT"))
        .await
        .unwrap();
    assert!(!resp.headers().contains_key("access-control-allow-origin"));
    // The answer itself (here an S3 error) carries the origin.
    let get = Request::builder()
        .uri("/s3/uploads/missing.txt")
        .header("origin", "http://page.test")
        .body(Body::empty())
        .unwrap();
    let resp = router(s).oneshot(get).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        resp.headers()["access-control-allow-origin"],
        "http://page.test"
    );
}
