//! Static content through the real binary: the AWS CLI and boto3 against
//! the S3 API, and a site served with CloudFront's behaviour (304, 206,
//! SPA fallback, a custom 404, an API beside it, the edge cache and its
//! invalidation, no escape from the bucket).

use std::path::Path;
use std::time::Duration;

use crate::support::{aws, free_port, stratus, Serving};

fn project(dir: &Path, admin: u16) {
    stratus_testkit::write_file(
        dir,
        "stratus.toml",
        &format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:{admin}"

[functions.api]
runtime = "python3"
handler = "app.handler"
code = "api"

[buckets.site]
source = "dist"

[sites.portal]
bucket = "site"
spa = true
not_found = "404.html"
cache_control = "max-age=300"
behaviors = [{{ path = "/assets/*", cache_control = "public, max-age=31536000, immutable" }}]

[apis.api]
type = "http"
base_path = "/api"
[apis.api.routes]
"ANY /{{proxy+}}" = {{ function = "api" }}
"#
        ),
    );
    stratus_testkit::write_file(
        dir,
        "api/app.py",
        "def handler(event, context):\n    return {'statusCode': 200, 'body': 'api ' + event['rawPath']}\n",
    );
    stratus_testkit::write_file(dir, "dist/index.html", "<h1>home</h1>");
    stratus_testkit::write_file(dir, "dist/404.html", "<h1>not here</h1>");
    stratus_testkit::write_file(dir, "dist/assets/app.css", "body { color: teal }");
    stratus_testkit::write_file(dir, "dist/docs/index.html", "<h1>docs</h1>");
    stratus_testkit::write_file(dir, "secret.txt", "outside the bucket");
    stratus_testkit::write_file(
        dir,
        "dist/assets/app.js",
        &"console.log('stratus');\n".repeat(200),
    );
}

/// What S3 computes for a multipart upload: the MD5 of the parts' binary
/// MD5s, then `-N`.
fn multipart_etag(data: &[u8], part: usize) -> String {
    use md5::Digest as _;
    let mut all = Vec::new();
    let chunks: Vec<&[u8]> = data.chunks(part).collect();
    for c in &chunks {
        all.extend_from_slice(&md5::Md5::digest(c));
    }
    let d = md5::Md5::digest(&all);
    format!("\"{}-{}\"", hex::encode(d), chunks.len())
}

#[test]
fn the_aws_cli_and_boto3_publish_and_a_site_serves_with_caching() {
    let dir = tempfile::tempdir().unwrap();
    let admin = free_port();
    project(dir.path(), admin);
    let s = Serving::start(dir.path());
    let endpoint = format!("http://127.0.0.1:{admin}/s3");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let get = |path: &str, headers: &[(&str, &str)]| {
        let mut req = client.get(s.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        rt.block_on(async {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let h = r.headers().clone();
            (status, h, r.text().await.unwrap_or_default())
        })
    };

    // --- The AWS CLI: sync a folder up (a 20 MB file goes multipart),
    // list it, sync it down, delete with --delete.
    let up = dir.path().join("up");
    stratus_testkit::write_file(&up, "a.txt", "alpha");
    stratus_testkit::write_file(&up, "sub/b.txt", "beta");
    let big: Vec<u8> = (0..20_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(up.join("sub/big.bin"), &big).unwrap();
    let (ok, _, err) = aws(&endpoint, &["s3", "mb", "s3://uploads"]);
    assert!(ok, "{err}");
    let (ok, out, err) = aws(
        &endpoint,
        &["s3", "sync", up.to_str().unwrap(), "s3://uploads"],
    );
    assert!(ok, "{err}");
    assert_eq!(out.matches("upload:").count(), 3, "{out}");
    // Nothing changed: a second sync uploads nothing.
    let (ok, out, _) = aws(
        &endpoint,
        &["s3", "sync", up.to_str().unwrap(), "s3://uploads"],
    );
    assert!(ok && !out.contains("upload:"), "{out}");
    let (ok, out, err) = aws(&endpoint, &["s3", "ls", "s3://uploads", "--recursive"]);
    assert!(ok, "{err}");
    for key in ["a.txt", "sub/b.txt", "sub/big.bin"] {
        assert!(out.contains(key), "{out}");
    }
    let (ok, out, _) = aws(
        &endpoint,
        &[
            "s3api",
            "head-object",
            "--bucket",
            "uploads",
            "--key",
            "sub/big.bin",
        ],
    );
    assert!(ok);
    let head: serde_json::Value = serde_json::from_str(&out).unwrap();
    // The CLI's parts are 8 MiB.
    assert_eq!(head["ETag"], multipart_etag(&big, 8 * 1024 * 1024));
    assert_eq!(head["ContentLength"], 20_000_000);
    let down = dir.path().join("down");
    let (ok, _, err) = aws(
        &endpoint,
        &["s3", "sync", "s3://uploads", down.to_str().unwrap()],
    );
    assert!(ok, "{err}");
    assert_eq!(std::fs::read(down.join("sub/big.bin")).unwrap(), big);
    assert_eq!(
        std::fs::read_to_string(down.join("a.txt")).unwrap(),
        "alpha"
    );
    std::fs::remove_file(up.join("a.txt")).unwrap();
    let (ok, out, _) = aws(
        &endpoint,
        &[
            "s3",
            "sync",
            "--delete",
            up.to_str().unwrap(),
            "s3://uploads",
        ],
    );
    assert!(ok && out.contains("delete: s3://uploads/a.txt"), "{out}");
    let (_, out, err) = aws(
        &endpoint,
        &[
            "s3api",
            "head-object",
            "--bucket",
            "uploads",
            "--key",
            "a.txt",
        ],
    );
    assert!(out.is_empty() && err.contains("404"), "{err}");
    let (ok, _, err) = aws(&endpoint, &["s3", "ls", "s3://no-such-bucket"]);
    assert!(!ok && err.contains("NoSuchBucket"), "{err}");

    // --- boto3: upload_file, list, download_file, presigned URLs.
    let file = dir.path().join("hello.txt");
    std::fs::write(&file, "hello from boto3").unwrap();
    let v = crate::support::boto3_script(
        &format!(
            r#"
import sys, json, time, boto3, botocore
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
s3.upload_file({file:?}, "uploads", "docs/hello.txt")
listing = s3.list_objects_v2(Bucket="uploads", Prefix="docs/", Delimiter="/")
s3.download_file("uploads", "docs/hello.txt", {file:?} + ".down")
v4 = boto3.client("s3", endpoint_url=sys.argv[1], config=botocore.config.Config(signature_version="s3v4"))
print(json.dumps({{
  "keys": [o["Key"] for o in listing.get("Contents", [])],
  "down": open({file:?} + ".down").read(),
  "url": s3.generate_presigned_url("get_object", Params={{"Bucket": "uploads", "Key": "docs/hello.txt"}}),
  "v4": v4.generate_presigned_url("get_object", Params={{"Bucket": "uploads", "Key": "docs/hello.txt"}}),
  "expired": s3.generate_presigned_url("get_object", Params={{"Bucket": "uploads", "Key": "docs/hello.txt"}}, ExpiresIn=1),
  "expired4": v4.generate_presigned_url("get_object", Params={{"Bucket": "uploads", "Key": "docs/hello.txt"}}, ExpiresIn=1),
}}))
"#
        ),
        &endpoint,
    );
    assert_eq!(v["keys"], serde_json::json!(["docs/hello.txt"]));
    assert_eq!(v["down"], "hello from boto3");
    let fetch = |url: &str| {
        rt.block_on(async {
            let r = reqwest::get(url).await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        })
    };
    assert_eq!(
        fetch(v["url"].as_str().unwrap()),
        (200, "hello from boto3".into())
    );
    assert_eq!(fetch(v["v4"].as_str().unwrap()).0, 200);
    #[allow(clippy::disallowed_methods)]
    std::thread::sleep(Duration::from_millis(2100));
    for key in ["expired", "expired4"] {
        let (status, body) = fetch(v[key].as_str().unwrap());
        assert_eq!(status, 403, "{key}");
        assert!(
            body.contains("<Code>AccessDenied</Code>") && body.contains("expired"),
            "{body}"
        );
    }

    // --- The site: seeded from dist/ at start.
    let (status, h, body) = get("/", &[]);
    assert_eq!((status, body.as_str()), (200, "<h1>home</h1>"));
    assert_eq!(h["content-type"], "text/html");
    assert_eq!(h["cache-control"], "max-age=300");
    assert_eq!(h["x-cache"], "Miss from stratus");
    let etag = h["etag"].to_str().unwrap().to_owned();
    let (_, h, _) = get("/", &[]);
    assert_eq!(h["x-cache"], "Hit from stratus");
    assert!(h.contains_key("age"));
    // 304 on If-None-Match and on If-Modified-Since.
    let (status, _, body) = get("/", &[("if-none-match", &etag)]);
    assert_eq!((status, body.as_str()), (304, ""));
    let last_modified = h["last-modified"].to_str().unwrap().to_owned();
    assert_eq!(get("/", &[("if-modified-since", &last_modified)]).0, 304);
    // A behaviour's Cache-Control; a content type from the extension.
    let (_, h, _) = get("/assets/app.css", &[]);
    assert_eq!(h["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(h["content-type"], "text/css");
    // Ranges.
    let (status, h, body) = get("/assets/app.css", &[("range", "bytes=0-3")]);
    assert_eq!((status, body.as_str()), (206, "body"));
    assert_eq!(h["content-range"], "bytes 0-3/20");
    assert_eq!(get("/assets/app.css", &[("range", "bytes=100-")]).0, 416);
    // A directory's index, the SPA fallback, the custom 404.
    assert_eq!(get("/docs/", &[]).2, "<h1>docs</h1>");
    assert_eq!(get("/docs", &[]).2, "<h1>docs</h1>");
    let (status, _, body) = get("/app/settings/42", &[]);
    assert_eq!((status, body.as_str()), (200, "<h1>home</h1>"));
    let (status, _, body) = get("/missing.js", &[]);
    assert_eq!((status, body.as_str()), (404, "<h1>not here</h1>"));
    // Compression, negotiated: brotli, gzip, or none; each its own entry.
    let js = "console.log('stratus');\n".repeat(200);
    let raw = |path: &str, enc: &str| {
        rt.block_on(async {
            let r = client
                .get(s.url(path))
                .header("accept-encoding", enc)
                .send()
                .await
                .unwrap();
            let h = r.headers().clone();
            (h, r.bytes().await.unwrap())
        })
    };
    let (h, body) = raw("/assets/app.js", "gzip, deflate, br");
    assert_eq!(h["content-encoding"], "br");
    assert_eq!(h["vary"], "accept-encoding");
    assert!(body.len() < js.len() / 4, "{}", body.len());
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut brotli::Decompressor::new(&body[..], 4096), &mut plain)
        .unwrap();
    assert_eq!(plain, js.as_bytes());
    let (h, body) = raw("/assets/app.js", "gzip");
    assert_eq!(h["content-encoding"], "gzip");
    let mut plain = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain).unwrap();
    assert_eq!(plain, js.as_bytes());
    let (h, body) = raw("/assets/app.js", "identity");
    assert!(!h.contains_key("content-encoding"));
    assert_eq!(body, js.as_bytes());
    assert_eq!(raw("/assets/app.js", "br").0["x-cache"], "Hit from stratus");

    // An API beside the site: the longest mount wins.
    assert_eq!(get("/api/orders", &[]).2, "api /api/orders");
    // No way out of the bucket.
    for evil in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/..%2fsecret.txt",
        "/assets/..%2f..%2fsecret.txt",
        "/%2e%2e%2f%2e%2e%2fstratus.toml",
    ] {
        let (status, _, body) = get(evil, &[]);
        assert!(
            !body.contains("outside the bucket") && !body.contains("[server]"),
            "{evil}: {status} {body}"
        );
    }

    // --- The edge cache: an S3 overwrite and an invalidation empty it.
    let _ = get("/assets/app.css", &[]);
    assert_eq!(get("/assets/app.css", &[]).1["x-cache"], "Hit from stratus");
    let css = dir.path().join("new.css");
    std::fs::write(&css, "body { color: red }").unwrap();
    let (ok, _, err) = aws(
        &endpoint,
        &[
            "s3",
            "cp",
            css.to_str().unwrap(),
            "s3://site/assets/app.css",
        ],
    );
    assert!(ok, "{err}");
    let (_, h, body) = get("/assets/app.css", &[]);
    assert_eq!(
        (h["x-cache"].to_str().unwrap(), body.as_str()),
        ("Miss from stratus", "body { color: red }")
    );
    assert_eq!(get("/assets/app.css", &[]).1["x-cache"], "Hit from stratus");
    let out = stratus()
        .args(["invalidate", "portal", "/assets/*", "--project"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        get("/assets/app.css", &[]).1["x-cache"],
        "Miss from stratus"
    );
    let out = stratus()
        .args(["invalidate", "nosite", "/*", "--project"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no site \"nosite\""));
}
