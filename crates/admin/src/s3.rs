//! The S3 API, path-style under `/s3` on the admin listener
//! (`--endpoint-url http://127.0.0.1:8081/s3`): the operations `aws s3`
//! and boto3's transfer manager use — ListBuckets, Create/Head/DeleteBucket,
//! GetBucketLocation, Put/Get/Head/Delete/CopyObject, DeleteObjects,
//! ListObjects(V2), multipart uploads — with S3's XML answers and errors,
//! under the one credentials rule of every admin API (SigV4, service `s3`;
//! presigned URLs, v4 and the v2 form boto3 still makes, are refused once
//! expired).
//!
//! Written here rather than with `s3s`: `s3s` brings the whole S3 model
//! (hundreds of operations and a code-generated DTO layer, "experimental"
//! by its own account) and leaves authentication, storage and every
//! behaviour to the implementer anyway; what `aws s3` and boto3 rely on is
//! the dozen operations below, and their exact answers are what the tests
//! pin down. The two request bodies S3 sends as XML (DeleteObjects,
//! CompleteMultipartUpload) are parsed whole by `roxmltree` (a truncated
//! or malformed document is refused as S3 refuses it, never read as a
//! shorter list); request bodies over [`MAX_BODY`] are refused on their
//! `Content-Length`, before a byte of them is read.

use std::collections::BTreeMap;

use aws_sigv4::http_request::SignableBody;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use base64::Engine as _;
use stratus_state::objects::{self, ObjectError, ObjectMeta, PutOptions};

use crate::connections::iso;
use crate::AdminState;

/// Bodies larger than this are refused (uploads past it go multipart).
pub(crate) const MAX_BODY: usize = 128 * 1024 * 1024;
const NS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

pub(crate) fn router() -> axum::Router<AdminState> {
    axum::Router::new()
        .route("/stratus/invalidate", axum::routing::post(invalidate))
        .route("/s3", any(service))
        .route("/s3/", any(service))
        .route("/s3/{bucket}", any(bucket))
        .route("/s3/{bucket}/", any(bucket))
        .route("/s3/{bucket}/{*key}", any(object))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn(refuse_oversized))
}

/// The most keys one DeleteObjects names (S3's limit).
const MAX_DELETE_KEYS: usize = 1000;

/// A body declared larger than [`MAX_BODY`] (its `Content-Length`, or the
/// decoded length of an aws-chunked one) is refused before it is read:
/// buffering it first would hold up to the cap for nothing.
async fn refuse_oversized(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let len = {
        let declared = |name: &str| {
            stratus_gateway::header_str(req.headers(), name).and_then(|v| v.parse::<u64>().ok())
        };
        declared("content-length")
            .into_iter()
            .chain(declared("x-amz-decoded-content-length"))
            .max()
    };
    if len.is_some_and(|n| n > MAX_BODY as u64) {
        let mut resp = error(
            req.method(),
            StatusCode::BAD_REQUEST,
            "EntityTooLarge",
            &format!(
                "Your proposed upload exceeds the maximum allowed size ({MAX_BODY} bytes; larger uploads go multipart)"
            ),
            req.uri().path(),
        );
        // The unread body makes the connection unusable for another request.
        resp.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return resp;
    }
    next.run(req).await
}

/// S3's bucket CORS: a request to `/s3/BUCKET/...` of a bucket with
/// `cors` set gets its preflight answered here (200, as S3 answers, with
/// the preflight headers when the origin and method are allowed; 403
/// otherwise) and its answer the CORS headers, so that a page can upload
/// through a presigned URL. Buckets without `cors` send none, as on S3.
pub(crate) async fn bucket_cors(
    State(s): State<AdminState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    use stratus_gateway::cors;
    let bucket = req
        .uri()
        .path()
        .strip_prefix("/s3/")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("");
    let app = s.app();
    let Some(rules) = app
        .buckets
        .iter()
        .find(|b| b.name == bucket)
        .and_then(|b| b.cors.clone())
    else {
        return next.run(req).await;
    };
    let origin = req.headers().get(axum::http::header::ORIGIN).cloned();
    if let Some(o) = cors::preflight_origin(req.method(), req.headers()) {
        let method = req
            .headers()
            .get(axum::http::header::ACCESS_CONTROL_REQUEST_METHOD)
            .and_then(|m| m.to_str().ok())
            .unwrap_or("");
        let mut headers = HeaderMap::new();
        cors::preflight_headers(&rules, o, &mut headers);
        cors::answer_headers(&rules, Some(o), &mut headers);
        let method_ok = rules.allow_methods.iter().any(|m| m == "*" || m == method);
        if headers.is_empty() || !method_ok {
            return (
                StatusCode::FORBIDDEN,
                "CORSResponse: This CORS request is not allowed.",
            )
                .into_response();
        }
        return (StatusCode::OK, headers).into_response();
    }
    let mut resp = next.run(req).await;
    cors::answer_headers(&rules, origin.as_ref(), resp.headers_mut());
    resp
}

#[derive(serde::Deserialize)]
struct Invalidation {
    site: String,
    paths: Vec<String>,
}

/// `POST /stratus/invalidate {"site", "paths": ["/docs/*"]}`: drops the
/// site's cached copies (CloudFront's CreateInvalidation, at once).
async fn invalidate(
    State(s): State<AdminState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let inv: Invalidation = match crate::signed_json(
        &s,
        "cloudfront",
        (&method, &uri, &headers, &body),
        "InvalidArgument",
        "expected {\"site\": \"NAME\", \"paths\": [\"/path/*\"]}",
    ) {
        Ok(i) => i,
        Err(r) => return *r,
    };
    for p in &inv.paths {
        if !s.sites().invalidate(&inv.site, p) {
            return crate::error::apigw_error(
                StatusCode::NOT_FOUND,
                "NoSuchDistribution",
                &format!(
                    "no site {:?} (sites: {})",
                    inv.site,
                    s.sites().site_names().join(", ")
                ),
            );
        }
    }
    axum::Json(serde_json::json!({ "site": inv.site, "paths": inv.paths, "status": "Completed" }))
        .into_response()
}

/// Text as XML content or an attribute value.
pub(crate) fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn xml(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/xml")],
        format!("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n{body}"),
    )
        .into_response()
}

/// An S3 error: XML `<Error>` (no body on HEAD, as S3).
fn error(
    method: &Method,
    status: StatusCode,
    code: &str,
    message: &str,
    resource: &str,
) -> Response {
    if method == Method::HEAD {
        return status.into_response();
    }
    xml(
        status,
        format!(
            "<Error><Code>{code}</Code><Message>{}</Message><Resource>{}</Resource><RequestId>{}</RequestId></Error>",
            esc(message),
            esc(resource),
            uuid::Uuid::new_v4().simple()
        ),
    )
}

fn store_error(method: &Method, e: ObjectError, resource: &str) -> Response {
    let (status, code) = match &e {
        ObjectError::NoSuchBucket(_) => (StatusCode::NOT_FOUND, "NoSuchBucket"),
        ObjectError::NoSuchKey(_) => (StatusCode::NOT_FOUND, "NoSuchKey"),
        ObjectError::NoSuchUpload(_) => (StatusCode::NOT_FOUND, "NoSuchUpload"),
        ObjectError::BucketExists(_) => (StatusCode::CONFLICT, "BucketAlreadyOwnedByYou"),
        ObjectError::BucketNotEmpty(_) => (StatusCode::CONFLICT, "BucketNotEmpty"),
        ObjectError::InvalidPart(_) => (StatusCode::BAD_REQUEST, "InvalidPart"),
        ObjectError::InvalidPartOrder => (StatusCode::BAD_REQUEST, "InvalidPartOrder"),
        ObjectError::EntityTooSmall(..) => (StatusCode::BAD_REQUEST, "EntityTooSmall"),
        ObjectError::Invalid(_) => (StatusCode::BAD_REQUEST, "InvalidArgument"),
        ObjectError::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "InternalError"),
    };
    error(method, status, code, &e.to_string(), resource)
}

use stratus_state::objects::{http_date, parse_range};

/// The signature and expiry check; `Err` is the answer.
fn check(
    s: &AdminState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    q: &BTreeMap<String, String>,
) -> Result<(), Box<Response>> {
    let refuse = |status: StatusCode, code: &str, msg: &str| {
        Box::new(error(method, status, code, msg, uri.path()))
    };
    let now = chrono::Utc::now();
    // Presigned, v4: X-Amz-Date + X-Amz-Expires.
    if let Some(date) = q.get("X-Amz-Date") {
        let when = chrono::NaiveDateTime::parse_from_str(date, "%Y%m%dT%H%M%SZ")
            .map_err(|_| {
                refuse(
                    StatusCode::FORBIDDEN,
                    "AccessDenied",
                    "malformed X-Amz-Date",
                )
            })?
            .and_utc();
        let expires: i64 = q
            .get("X-Amz-Expires")
            .and_then(|e| e.parse().ok())
            .unwrap_or(0);
        if now > when + chrono::Duration::seconds(expires) {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "Request has expired",
            ));
        }
        if s.verify_signatures {
            crate::sigv4::verify_presigned(&s.credentials, method, uri, headers, q)
                .map_err(|why| refuse(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", &why))?;
        }
        return Ok(());
    }
    // Presigned, v2 (boto3's default form for S3): Expires in epoch seconds.
    if let (Some(expires), Some(_)) = (q.get("Expires"), q.get("Signature")) {
        let at: i64 = expires.parse().unwrap_or(0);
        if now.timestamp() > at {
            return Err(refuse(
                StatusCode::FORBIDDEN,
                "AccessDenied",
                "Request has expired",
            ));
        }
        if s.verify_signatures {
            crate::sigv4::verify_presigned_v2(&s.credentials, method, uri, q)
                .map_err(|why| refuse(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", &why))?;
        }
        return Ok(());
    }
    let payload =
        stratus_gateway::header_str(headers, "x-amz-content-sha256").unwrap_or("UNSIGNED-PAYLOAD");
    crate::sigv4::authorize_payload(
        s,
        "s3",
        method,
        uri,
        headers,
        SignableBody::Precomputed(payload.to_owned()),
    )
    .map_err(|(code, why)| {
        let code = if code == "InvalidSignatureException" {
            "SignatureDoesNotMatch"
        } else {
            "AccessDenied"
        };
        refuse(StatusCode::FORBIDDEN, code, &why)
    })
}

/// The body as sent: aws-chunked (the CLI's streaming uploads, with or
/// without chunk signatures and trailers) decoded; checksums checked.
fn payload(headers: &HeaderMap, body: Bytes) -> Result<Bytes, (&'static str, String)> {
    let sha = stratus_gateway::header_str(headers, "x-amz-content-sha256").unwrap_or("");
    let chunked = sha.starts_with("STREAMING-")
        || stratus_gateway::header_str(headers, "content-encoding")
            .is_some_and(|e| e.contains("aws-chunked"));
    let body = if chunked { dechunk(&body)? } else { body };
    if let Some(n) = stratus_gateway::header_str(headers, "x-amz-decoded-content-length") {
        if n.parse::<usize>().ok() != Some(body.len()) {
            return Err((
                "IncompleteBody",
                format!(
                    "You did not provide the number of bytes specified by x-amz-decoded-content-length ({n}; the body has {})",
                    body.len()
                ),
            ));
        }
    }
    if let Some(md5) = stratus_gateway::header_str(headers, "content-md5") {
        use md5::Digest as _;
        let got = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&body));
        if got != md5 {
            return Err((
                "BadDigest",
                "the Content-MD5 does not match the body".into(),
            ));
        }
    }
    if let Some(crc) = stratus_gateway::header_str(headers, "x-amz-checksum-crc32") {
        let got =
            base64::engine::general_purpose::STANDARD.encode(crc32fast::hash(&body).to_be_bytes());
        if got != crc {
            return Err((
                "BadDigest",
                "the x-amz-checksum-crc32 does not match the body".into(),
            ));
        }
    }
    if !sha.is_empty() && !sha.starts_with("STREAMING-") && sha != "UNSIGNED-PAYLOAD" {
        use sha2::Digest as _;
        let got = hex::encode(sha2::Sha256::digest(&body));
        if got != sha {
            return Err((
                "XAmzContentSHA256Mismatch",
                "the x-amz-content-sha256 does not match the body".into(),
            ));
        }
    }
    Ok(body)
}

/// aws-chunked: `HEX[;chunk-signature=…]\r\n DATA \r\n` … `0…\r\n` then
/// optional trailers and a blank line.
fn dechunk(body: &[u8]) -> Result<Bytes, (&'static str, String)> {
    let bad = || ("IncompleteBody", "malformed aws-chunked body".to_owned());
    let mut out = Vec::with_capacity(body.len());
    let mut rest = body;
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let line = std::str::from_utf8(&rest[..eol]).map_err(|_| bad())?;
        let size = usize::from_str_radix(line.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad())?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(Bytes::from(out));
        }
        // A size near usize::MAX must not wrap around: checked, not `+`.
        if size.checked_add(2).is_none_or(|end| rest.len() < end) {
            return Err(bad());
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

fn put_options(headers: &HeaderMap, key: &str) -> PutOptions {
    let h = |n: &str| stratus_gateway::header_str(headers, n).map(str::to_owned);
    let user = headers
        .iter()
        .filter_map(|(k, v)| {
            let name = k.as_str().strip_prefix("x-amz-meta-")?;
            Some((name.to_owned(), v.to_str().ok()?.to_owned()))
        })
        .collect();
    PutOptions {
        // No type given: one from the extension (S3 would say
        // binary/octet-stream; a site needs the real one).
        content_type: h("content-type").or_else(|| Some(objects::content_type_of(key))),
        cache_control: h("cache-control"),
        content_encoding: h("content-encoding")
            .map(|e| {
                e.split(',')
                    .map(str::trim)
                    .filter(|p| *p != "aws-chunked")
                    .collect::<Vec<_>>()
                    .join(",")
            })
            .filter(|e| !e.is_empty()),
        user,
    }
}

/// What S3 answers for a body that is not the XML it expects.
const MALFORMED_XML: &str =
    "The XML you provided was not well-formed or did not validate against our published schema";

/// 400 MalformedXML, saying `why`.
fn malformed(method: &Method, why: &str, resource: &str) -> Response {
    error(
        method,
        StatusCode::BAD_REQUEST,
        "MalformedXML",
        why,
        resource,
    )
}

/// A request body parsed as XML whose root element is `root`.
fn xml_body<'a>(body: &'a [u8], root: &str) -> Result<roxmltree::Document<'a>, String> {
    let text = std::str::from_utf8(body).map_err(|_| MALFORMED_XML.to_owned())?;
    let doc = roxmltree::Document::parse(text).map_err(|e| format!("{MALFORMED_XML} ({e})"))?;
    if doc.root_element().tag_name().name() != root {
        return Err(format!("{MALFORMED_XML} (the root element is not {root})"));
    }
    Ok(doc)
}

/// The text of `node`'s child element `name`, if it has one.
fn child_text<'a>(node: roxmltree::Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
        .map(|c| c.text().unwrap_or(""))
}

/// DeleteObjects' body: the keys (1 to 1,000) and `Quiet`.
fn delete_request(body: &[u8]) -> Result<(Vec<String>, bool), String> {
    let doc = xml_body(body, "Delete")?;
    let root = doc.root_element();
    let quiet = child_text(root, "Quiet").is_some_and(|q| q.trim() == "true");
    let mut keys = Vec::new();
    for object in root
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "Object")
    {
        match child_text(object, "Key") {
            Some(k) if !k.is_empty() => keys.push(k.to_owned()),
            _ => return Err(format!("{MALFORMED_XML} (an Object without a Key)")),
        }
    }
    if keys.is_empty() || keys.len() > MAX_DELETE_KEYS {
        return Err(format!(
            "{MALFORMED_XML} (a Delete names 1 to {MAX_DELETE_KEYS} objects, not {})",
            keys.len()
        ));
    }
    Ok((keys, quiet))
}

/// CompleteMultipartUpload's body: (part number, ETag) as listed, at
/// least one.
fn completed_parts(body: &[u8]) -> Result<Vec<(u32, String)>, String> {
    let doc = xml_body(body, "CompleteMultipartUpload")?;
    let mut parts = Vec::new();
    for part in doc
        .root_element()
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "Part")
    {
        let n = child_text(part, "PartNumber").and_then(|n| n.trim().parse().ok());
        match (n, child_text(part, "ETag")) {
            (Some(n), Some(e)) => parts.push((n, e.trim().to_owned())),
            _ => {
                return Err(format!(
                    "{MALFORMED_XML} (each Part needs PartNumber and ETag)"
                ))
            }
        }
    }
    if parts.is_empty() {
        return Err(format!("{MALFORMED_XML} (no Part)"));
    }
    Ok(parts)
}

async fn service(
    State(s): State<AdminState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Response {
    if let Err(r) = check(&s, &method, &uri, &headers, &q) {
        return *r;
    }
    if method != Method::GET {
        return error(
            &method,
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "only GET (ListBuckets) here",
            "/",
        );
    }
    let buckets: String = s
        .objects
        .buckets()
        .iter()
        .map(|(name, created)| {
            format!(
                "<Bucket><Name>{}</Name><CreationDate>{}</CreationDate></Bucket>",
                esc(name),
                iso(*created)
            )
        })
        .collect();
    xml(
        StatusCode::OK,
        format!(
            "<ListAllMyBucketsResult xmlns=\"{NS}\"><Owner><ID>stratus</ID><DisplayName>stratus</DisplayName></Owner><Buckets>{buckets}</Buckets></ListAllMyBucketsResult>"
        ),
    )
}

async fn bucket(
    State(s): State<AdminState>,
    Path(bucket): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Err(r) = check(&s, &method, &uri, &headers, &q) {
        return *r;
    }
    let store = &s.objects;
    let resource = format!("/{bucket}");
    match method {
        Method::PUT => match store.create_bucket(&bucket).await {
            Ok(()) => (StatusCode::OK, [(header::LOCATION, format!("/{bucket}"))]).into_response(),
            Err(e) => store_error(&method, e, &resource),
        },
        Method::HEAD => {
            if store.has_bucket(&bucket) {
                (StatusCode::OK, [("x-amz-bucket-region", s.region.clone())]).into_response()
            } else {
                StatusCode::NOT_FOUND.into_response()
            }
        }
        Method::DELETE => match store.delete_bucket(&bucket).await {
            Ok(()) => StatusCode::NO_CONTENT.into_response(),
            Err(e) => store_error(&method, e, &resource),
        },
        Method::POST if q.contains_key("delete") => {
            let (keys, quiet) = match delete_request(&body) {
                Ok(x) => x,
                Err(why) => return malformed(&method, &why, &resource),
            };
            let mut out = String::new();
            for key in keys {
                match store.delete(&bucket, &key).await {
                    Ok(()) => {
                        s.sites().object_changed(&bucket, &key);
                        crate::notify::object_changed(&s, &bucket, &key, removed(), Some(&headers));
                        if !quiet {
                            out.push_str(&format!("<Deleted><Key>{}</Key></Deleted>", esc(&key)));
                        }
                    }
                    Err(e) => out.push_str(&format!(
                        "<Error><Key>{}</Key><Code>InternalError</Code><Message>{}</Message></Error>",
                        esc(&key),
                        esc(&e.to_string())
                    )),
                }
            }
            xml(
                StatusCode::OK,
                format!("<DeleteResult xmlns=\"{NS}\">{out}</DeleteResult>"),
            )
        }
        Method::GET if q.contains_key("location") => {
            if !store.has_bucket(&bucket) {
                return store_error(&method, ObjectError::NoSuchBucket(bucket), &resource);
            }
            let region = if s.region == "us-east-1" {
                String::new()
            } else {
                s.region.clone()
            };
            xml(
                StatusCode::OK,
                format!("<LocationConstraint xmlns=\"{NS}\">{region}</LocationConstraint>"),
            )
        }
        Method::GET => list(&s, &method, &bucket, &q),
        _ => error(
            &method,
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "not a bucket operation",
            &resource,
        ),
    }
}

/// ListObjectsV2 (`list-type=2`) and ListObjects (v1, `marker`).
fn list(s: &AdminState, method: &Method, bucket: &str, q: &BTreeMap<String, String>) -> Response {
    let v2 = q.get("list-type").is_some_and(|t| t == "2");
    let prefix = q.get("prefix").map_or("", String::as_str);
    let delimiter = q.get("delimiter").map(String::as_str);
    let max = q
        .get("max-keys")
        .and_then(|m| m.parse().ok())
        .unwrap_or(1000usize)
        .min(1000);
    let url_encoded = q.get("encoding-type").is_some_and(|e| e == "url");
    let enc = |k: &str| {
        if url_encoded {
            percent_encoding::utf8_percent_encode(k, percent_encoding::NON_ALPHANUMERIC)
                .to_string()
                .replace("%2F", "/")
                .replace("%2D", "-")
                .replace("%2E", ".")
                .replace("%5F", "_")
                .replace("%7E", "~")
        } else {
            esc(k)
        }
    };
    let token = q.get("continuation-token").and_then(|t| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(t)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    });
    let start_after = if v2 {
        token.clone().or_else(|| q.get("start-after").cloned())
    } else {
        q.get("marker").cloned()
    };
    let listing = match s
        .objects
        .list(bucket, prefix, delimiter, start_after.as_deref(), max)
    {
        Ok(l) => l,
        Err(e) => return store_error(method, e, &format!("/{bucket}")),
    };
    let mut out = format!(
        "<ListBucketResult xmlns=\"{NS}\"><Name>{}</Name><Prefix>{}</Prefix><MaxKeys>{max}</MaxKeys><IsTruncated>{}</IsTruncated>",
        esc(bucket),
        enc(prefix),
        listing.next.is_some()
    );
    if let Some(d) = delimiter {
        out.push_str(&format!("<Delimiter>{}</Delimiter>", enc(d)));
    }
    if url_encoded {
        out.push_str("<EncodingType>url</EncodingType>");
    }
    if v2 {
        out.push_str(&format!(
            "<KeyCount>{}</KeyCount>",
            listing.objects.len() + listing.prefixes.len()
        ));
        if let Some(t) = q.get("continuation-token") {
            out.push_str(&format!(
                "<ContinuationToken>{}</ContinuationToken>",
                esc(t)
            ));
        }
        if let Some(next) = &listing.next {
            let t = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(next);
            out.push_str(&format!(
                "<NextContinuationToken>{t}</NextContinuationToken>"
            ));
        }
    } else if let Some(next) = &listing.next {
        out.push_str(&format!("<NextMarker>{}</NextMarker>", enc(next)));
    }
    for o in &listing.objects {
        out.push_str(&format!(
            "<Contents><Key>{}</Key><LastModified>{}</LastModified><ETag>{}</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            enc(&o.key),
            iso(o.modified_ms),
            esc(&o.etag),
            o.size
        ));
    }
    for p in &listing.prefixes {
        out.push_str(&format!(
            "<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>",
            enc(p)
        ));
    }
    out.push_str("</ListBucketResult>");
    xml(StatusCode::OK, out)
}

/// The headers every object answer carries.
fn object_headers(resp: &mut Response, meta: &ObjectMeta) {
    let h = resp.headers_mut();
    let mut set = |k: &str, v: &str| {
        if let (Ok(k), Ok(v)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.insert(k, v);
        }
    };
    set("etag", &meta.etag);
    set("last-modified", &http_date(meta.modified_ms));
    set("content-type", &meta.content_type);
    set("accept-ranges", "bytes");
    if let Some(c) = &meta.cache_control {
        set("cache-control", c);
    }
    if let Some(c) = &meta.content_encoding {
        set("content-encoding", c);
    }
    for (k, v) in &meta.user {
        set(&format!("x-amz-meta-{k}"), v);
    }
}

/// An object's bytes as a response body (a file streamed from its offset).
pub(crate) async fn body_of(body: objects::Body) -> Result<Body, std::io::Error> {
    match body {
        objects::Body::Bytes(b) => Ok(Body::from(b)),
        objects::Body::File { path, offset, len } => {
            use tokio::io::{AsyncReadExt, AsyncSeekExt};
            let mut f = tokio::fs::File::open(&path).await?;
            f.seek(std::io::SeekFrom::Start(offset)).await?;
            let stream = tokio_util::io::ReaderStream::new(f.take(len));
            Ok(Body::from_stream(stream))
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn object(
    State(s): State<AdminState>,
    Path((bucket, key)): Path<(String, String)>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Err(r) = check(&s, &method, &uri, &headers, &q) {
        return *r;
    }
    let store = &s.objects;
    let resource = format!("/{bucket}/{key}");
    let fail = |e: ObjectError| store_error(&method, e, &resource);
    match method {
        Method::GET | Method::HEAD => {
            let meta = match store.head(&bucket, &key) {
                Ok(m) => m,
                Err(e) => return fail(e),
            };
            let hv = |n: &str| stratus_gateway::header_str(&headers, n);
            if let Some(m) = hv("if-match") {
                if m != "*" && !m.split(',').any(|t| t.trim() == meta.etag) {
                    return error(
                        &method,
                        StatusCode::PRECONDITION_FAILED,
                        "PreconditionFailed",
                        "At least one of the pre-conditions you specified did not hold",
                        &resource,
                    );
                }
            }
            if let Some(m) = hv("if-none-match") {
                if m == "*" || m.split(',').any(|t| t.trim() == meta.etag) {
                    let mut r = StatusCode::NOT_MODIFIED.into_response();
                    object_headers(&mut r, &meta);
                    return r;
                }
            }
            let range = match hv("range").and_then(|r| parse_range(r, meta.size)) {
                Some(Err(())) => {
                    return error(
                        &method,
                        StatusCode::RANGE_NOT_SATISFIABLE,
                        "InvalidRange",
                        "The requested range is not satisfiable",
                        &resource,
                    )
                }
                Some(Ok(r)) => Some(r),
                None => None,
            };
            let (meta, data) = match store.get(&bucket, &key, range) {
                Ok(x) => x,
                Err(e) => return fail(e),
            };
            let len = range.map_or(meta.size, |(a, b)| b - a + 1);
            let body = if method == Method::HEAD {
                Body::empty()
            } else {
                match body_of(data).await {
                    Ok(b) => b,
                    Err(e) => return fail(ObjectError::Io(e)),
                }
            };
            let mut resp = Response::new(body);
            object_headers(&mut resp, &meta);
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            if let Some((a, b)) = range {
                *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
                if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{}", meta.size)) {
                    resp.headers_mut().insert(header::CONTENT_RANGE, v);
                }
            }
            resp
        }
        Method::PUT => {
            let body = match payload(&headers, body) {
                Ok(b) => b,
                Err((code, msg)) => {
                    return error(&method, StatusCode::BAD_REQUEST, code, &msg, &resource)
                }
            };
            // UploadPart
            if let (Some(part), Some(upload)) = (q.get("partNumber"), q.get("uploadId")) {
                let Ok(n) = part.parse::<u32>() else {
                    return error(
                        &method,
                        StatusCode::BAD_REQUEST,
                        "InvalidArgument",
                        "partNumber is a number",
                        &resource,
                    );
                };
                return match store.upload_part(&bucket, &key, upload, n, body).await {
                    Ok(etag) => (StatusCode::OK, [(header::ETAG, etag)]).into_response(),
                    Err(e) => fail(e),
                };
            }
            // CopyObject
            if let Some(src) = stratus_gateway::header_str(&headers, "x-amz-copy-source") {
                let src = percent_encoding::percent_decode_str(src)
                    .decode_utf8_lossy()
                    .into_owned();
                let src = src.trim_start_matches('/');
                let Some((sb, sk)) = src.split_once('/') else {
                    return error(
                        &method,
                        StatusCode::BAD_REQUEST,
                        "InvalidArgument",
                        "x-amz-copy-source is /bucket/key",
                        &resource,
                    );
                };
                let replace = stratus_gateway::header_str(&headers, "x-amz-metadata-directive")
                    .is_some_and(|d| d == "REPLACE")
                    .then(|| put_options(&headers, &key));
                return match store.copy((sb, sk), (&bucket, &key), replace).await {
                    Ok(meta) => {
                        s.sites().object_changed(&bucket, &key);
                        crate::notify::object_changed(
                            &s,
                            &bucket,
                            &key,
                            created("ObjectCreated:Copy", &meta),
                            Some(&headers),
                        );
                        xml(
                            StatusCode::OK,
                            format!(
                                "<CopyObjectResult xmlns=\"{NS}\"><LastModified>{}</LastModified><ETag>{}</ETag></CopyObjectResult>",
                                iso(meta.modified_ms),
                                esc(&meta.etag)
                            ),
                        )
                    }
                    Err(e) => fail(e),
                };
            }
            match store
                .put(&bucket, &key, body, put_options(&headers, &key))
                .await
            {
                Ok(meta) => {
                    s.sites().object_changed(&bucket, &key);
                    crate::notify::object_changed(
                        &s,
                        &bucket,
                        &key,
                        created("ObjectCreated:Put", &meta),
                        Some(&headers),
                    );
                    (StatusCode::OK, [(header::ETAG, meta.etag)]).into_response()
                }
                Err(e) => fail(e),
            }
        }
        Method::DELETE => {
            if let Some(upload) = q.get("uploadId") {
                return match store.abort_upload(&bucket, &key, upload).await {
                    Ok(()) => StatusCode::NO_CONTENT.into_response(),
                    Err(e) => fail(e),
                };
            }
            match store.delete(&bucket, &key).await {
                Ok(()) => {
                    s.sites().object_changed(&bucket, &key);
                    crate::notify::object_changed(&s, &bucket, &key, removed(), Some(&headers));
                    StatusCode::NO_CONTENT.into_response()
                }
                Err(e) => fail(e),
            }
        }
        Method::POST if q.contains_key("uploads") => {
            match store.create_upload(&bucket, &key, put_options(&headers, &key)).await {
                Ok(id) => xml(
                    StatusCode::OK,
                    format!(
                        "<InitiateMultipartUploadResult xmlns=\"{NS}\"><Bucket>{}</Bucket><Key>{}</Key><UploadId>{id}</UploadId></InitiateMultipartUploadResult>",
                        esc(&bucket),
                        esc(&key)
                    ),
                ),
                Err(e) => fail(e),
            }
        }
        Method::POST if q.contains_key("uploadId") => {
            let parts = match completed_parts(&body) {
                Ok(x) => x,
                Err(why) => return malformed(&method, &why, &resource),
            };
            match store
                .complete_upload(&bucket, &key, &q["uploadId"], parts)
                .await
            {
                Ok(meta) => {
                    s.sites().object_changed(&bucket, &key);
                    crate::notify::object_changed(
                        &s,
                        &bucket,
                        &key,
                        created("ObjectCreated:CompleteMultipartUpload", &meta),
                        Some(&headers),
                    );
                    xml(
                        StatusCode::OK,
                        format!(
                            "<CompleteMultipartUploadResult xmlns=\"{NS}\"><Location>{}</Location><Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag></CompleteMultipartUploadResult>",
                            esc(uri.path()),
                            esc(&bucket),
                            esc(&key),
                            esc(&meta.etag)
                        ),
                    )
                }
                Err(e) => fail(e),
            }
        }
        _ => error(
            &method,
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "not an object operation",
            &resource,
        ),
    }
}

/// An object created, for its notifications.
fn created<'m>(event: &'static str, meta: &'m objects::ObjectMeta) -> crate::notify::Change<'m> {
    crate::notify::Change {
        event,
        size: Some(meta.size),
        etag: Some(&meta.etag),
    }
}

fn removed() -> crate::notify::Change<'static> {
    crate::notify::Change {
        event: "ObjectRemoved:Delete",
        size: None,
        etag: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_read_as_s3_reads_them() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Some(Ok((50, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=5-1", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }

    #[test]
    fn aws_chunked_bodies_are_decoded() {
        let body = b"5;chunk-signature=abc\r\nhello\r\n6;chunk-signature=def\r\n world\r\n0;chunk-signature=0\r\nx-amz-checksum-crc32:AAAA\r\n\r\n";
        assert_eq!(&dechunk(body).unwrap()[..], b"hello world");
        assert!(dechunk(b"zz\r\nhello").is_err());
        assert!(dechunk(b"10\r\nshort\r\n").is_err());
    }

    #[test]
    fn xml_bodies_are_read_whole_or_refused() {
        let x = b"<Delete><Object><Key>a&amp;b</Key></Object><Object><Key>c</Key></Object><Quiet>true</Quiet></Delete>";
        assert_eq!(
            delete_request(x).unwrap(),
            (vec!["a&b".to_owned(), "c".to_owned()], true)
        );
        for bad in [
            &b"<Delete><Object><Key>d1</Key></Obj"[..],
            b"",
            b"garbage",
            b"<Delete></Delete>",
            b"<Other><Object><Key>k</Key></Object></Other>",
        ] {
            assert!(
                delete_request(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let many = format!(
            "<Delete>{}</Delete>",
            "<Object><Key>k</Key></Object>".repeat(1001)
        );
        assert!(delete_request(many.as_bytes()).is_err());
        let ok = b"<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Part><ETag>\"e1\"</ETag><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>";
        assert_eq!(completed_parts(ok).unwrap(), [(1, "\"e1\"".to_owned())]);
        assert!(completed_parts(b"<CompleteMultipartUpload></CompleteMultipartUpload>").is_err());
        assert!(completed_parts(b"<CompleteMultipartUpload><Part><PartNumber>1</Part>").is_err());
    }

    #[test]
    fn a_huge_chunk_size_is_refused_not_overflowed() {
        assert!(dechunk(b"ffffffffffffffff\r\nhello\r\n").is_err());
        assert!(dechunk(b"fffffffffffffffe\r\nhello\r\n").is_err());
    }
}
