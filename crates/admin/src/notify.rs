//! S3 event notifications: an object created or removed through the S3
//! API invokes the bucket's notified functions asynchronously, with the
//! `Records` event S3 sends (the key URL-encoded as S3 encodes it, size,
//! eTag, sequencer).

use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;

use crate::AdminState;

/// S3's sequencer: grows with every event of this server.
static SEQUENCER: AtomicU64 = AtomicU64::new(0);

/// What changed: `ObjectCreated:Put` and the object's size and ETag, or
/// `ObjectRemoved:Delete`.
pub(crate) struct Change<'a> {
    pub(crate) event: &'static str,
    pub(crate) size: Option<u64>,
    pub(crate) etag: Option<&'a str>,
}

/// S3's key encoding in events: form encoding (a space is `+`), the `/`
/// between segments kept.
fn event_key(key: &str) -> String {
    key.split('/')
        .map(|seg| form_urlencoded::byte_serialize(seg.as_bytes()).collect::<String>())
        .collect::<Vec<_>>()
        .join("/")
}

/// An object a bucket's `source` copied in at start: a PutObject.
pub fn object_created(
    s: &AdminState,
    bucket: &str,
    key: &str,
    meta: &stratus_state::objects::ObjectMeta,
) {
    let change = Change {
        event: "ObjectCreated:Put",
        size: Some(meta.size),
        etag: Some(&meta.etag),
    };
    object_changed(s, bucket, key, change, None);
}

/// How many rounds of a recursive loop a request's trace header counts:
/// `Lineage=HASH:N` of `X-Amzn-Trace-Id`, which botocore sends from a
/// function's `_X_AMZN_TRACE_ID` (0: none).
fn lineage_of(headers: &axum::http::HeaderMap) -> u32 {
    stratus_gateway::header_str(headers, "x-amzn-trace-id")
        .and_then(|t| {
            let decoded = percent_encoding::percent_decode_str(t)
                .decode_utf8_lossy()
                .into_owned();
            decoded
                .split(';')
                .find_map(|part| part.trim().strip_prefix("Lineage=").map(str::to_owned))
        })
        .and_then(|l| l.rsplit_once(':').and_then(|(_, n)| n.parse().ok()))
        .unwrap_or(0)
}

/// Lambda stops a loop of a function and S3 after this many rounds.
const MAX_LOOP: u32 = 16;

/// Sends `change` of `bucket`/`key` to the functions its notifications
/// name; `headers` are the S3 request's (none: a `source` copy).
pub(crate) fn object_changed(
    s: &AdminState,
    bucket: &str,
    key: &str,
    change: Change<'_>,
    headers: Option<&axum::http::HeaderMap>,
) {
    let source_ip = headers
        .and_then(|h| stratus_gateway::header_str(h, "x-forwarded-for"))
        .and_then(|f| f.split(',').next())
        .map_or_else(|| "127.0.0.1".to_owned(), |ip| ip.trim().to_owned());
    let lineage = headers.map_or(0, lineage_of);
    let app = s.app();
    let Some(b) = app.buckets.iter().find(|b| b.name == bucket) else {
        return;
    };
    for (i, n) in b.notifications.iter().enumerate() {
        if !n.matches(change.event, key) {
            continue;
        }
        // A function that writes under its own notification loops; Lambda's
        // recursive-loop detection stops it, and so does this.
        if lineage >= MAX_LOOP {
            tracing::warn!(
                bucket,
                key,
                function = %n.function,
                "s3 event {} not sent: the recursive loop of {} and bucket {bucket} was stopped after {MAX_LOOP} invocations (Lambda's recursive-loop detection)",
                change.event,
                n.function
            );
            continue;
        }
        let sequencer = format!("{:016X}", SEQUENCER.fetch_add(1, Ordering::Relaxed) + 1);
        let mut object = serde_json::json!({ "key": event_key(key), "sequencer": sequencer });
        if let Some(size) = change.size {
            object["size"] = size.into();
        }
        if let Some(etag) = change.etag {
            object["eTag"] = etag.trim_matches('"').into();
        }
        let request_id = uuid::Uuid::new_v4().simple().to_string().to_uppercase();
        let record = serde_json::json!({
            "eventVersion": "2.1",
            "eventSource": "aws:s3",
            "awsRegion": s.region,
            "eventTime": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "eventName": change.event,
            "userIdentity": { "principalId": "AWS:STRATUS" },
            "requestParameters": { "sourceIPAddress": &source_ip },
            "responseElements": { "x-amz-request-id": &request_id[..16], "x-amz-id-2": request_id },
            "s3": {
                "s3SchemaVersion": "1.0",
                "configurationId": format!("{bucket}-notification-{}", i + 1),
                "bucket": {
                    "name": bucket,
                    "ownerIdentity": { "principalId": "STRATUS" },
                    "arn": format!("arn:aws:s3:::{bucket}"),
                },
                "object": object,
            },
        });
        let payload = Bytes::from(serde_json::json!({ "Records": [record] }).to_string());
        let request = stratus_runtime::InvokeRequest {
            payload,
            client_context: None,
            cognito_identity: None,
            tail_logs: false,
            lineage: lineage + 1,
        };
        // A version's environments are made ready first, as for any
        // `Event` invocation; the S3 call does not wait for it.
        let (functions, function, event) = (s.functions.clone(), n.function.clone(), change.event);
        let (bucket, key) = (bucket.to_owned(), key.to_owned());
        tokio::spawn(async move {
            let sent = match functions.preload(&function).await {
                Ok(()) => functions.invoke_async(&function, request).map(|_| ()),
                Err(e) => Err(e),
            };
            match sent {
                Ok(()) => tracing::info!(bucket, key, function, "s3 event {event} sent"),
                Err(e) => tracing::error!(bucket, key, function, "s3 event {event} not sent: {e}"),
            }
        });
    }
}
