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
    object_changed(s, bucket, key, change, "127.0.0.1");
}

/// Sends `change` of `bucket`/`key` to the functions its notifications
/// name (from `source_ip`).
pub(crate) fn object_changed(
    s: &AdminState,
    bucket: &str,
    key: &str,
    change: Change<'_>,
    source_ip: &str,
) {
    let app = s.app();
    let Some(b) = app.buckets.iter().find(|b| b.name == bucket) else {
        return;
    };
    for (i, n) in b.notifications.iter().enumerate() {
        if !n.matches(change.event, key) {
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
            "requestParameters": { "sourceIPAddress": source_ip },
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
