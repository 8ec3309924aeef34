//! Sites: buckets served on the public listener the way CloudFront serves
//! an S3 origin — index documents, an SPA fallback, a custom 404 page,
//! `ETag`/`Last-Modified` with `If-None-Match`/`If-Modified-Since` → 304,
//! `Range` → 206/416, `Content-Type` from the object, `Cache-Control` from
//! the object or the first matching behaviour — and an edge cache in
//! front: in memory, bounded by bytes, honouring `Cache-Control`
//! (`no-store`, `no-cache`, `private`, `s-maxage`, `max-age`), answering
//! `X-Cache: Hit from stratus` / `Miss from stratus` with `Age`, brotli or
//! gzip for text when the client takes it (compressed once, cached per
//! encoding), emptied
//! for an object when it changes through the S3 API and by path pattern
//! on request (`stratus invalidate`).
//!
//! By hand rather than with tower-http's `ServeDir`: objects are not files
//! at their paths (the store names them by hash, with their metadata
//! beside), and the edge cache sits in front of the lookup.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use stratus_config::{App, Site};
use stratus_state::objects::{Body as ObjectBody, ObjectMeta, ObjectStore};
use tokio::time::Instant;

use crate::Body;

/// The edge cache's size, and the largest object it keeps.
const CACHE_BYTES: u64 = 256 * 1024 * 1024;
const CACHE_OBJECT_MAX: u64 = 8 * 1024 * 1024;
/// Kept this long when nothing says how long (CloudFront's default TTL).
const DEFAULT_TTL: Duration = Duration::from_secs(86_400);

struct Cached {
    /// The answer's headers but `X-Cache`, `Age` and the length.
    headers: HeaderMap,
    meta: ObjectMeta,
    status: StatusCode,
    body: Bytes,
    stored: Instant,
    ttl: Duration,
}

/// Every site of an app, and their edge cache.
pub struct Sites {
    /// Longest base path first.
    sites: Vec<Arc<Site>>,
    objects: Option<Arc<dyn ObjectStore>>,
    /// `site\0key` → the object's answer.
    cache: moka::sync::Cache<String, Arc<Cached>>,
}

impl std::fmt::Debug for Sites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sites").finish_non_exhaustive()
    }
}

/// `site\0key\0encoding`: each encoding of an object is its own entry.
fn cache_key(site: &str, key: &str, encoding: Option<&str>) -> String {
    format!("{site}\0{key}\0{}", encoding.unwrap_or(""))
}

/// The encoding to answer in: brotli, else gzip, when the client takes it.
fn negotiate(headers: &HeaderMap) -> Option<&'static str> {
    let accept = header_str(headers, header::ACCEPT_ENCODING)?.to_ascii_lowercase();
    let takes = |e: &str| {
        accept.split(',').any(|part| {
            let mut it = part.split(';');
            let name = it.next().unwrap_or("").trim();
            let q_zero = it.any(|p| p.trim().replace(' ', "") == "q=0");
            name == e && !q_zero
        })
    };
    if takes("br") {
        Some("br")
    } else if takes("gzip") {
        Some("gzip")
    } else {
        None
    }
}

/// Worth compressing: text-like and at least 1 KB.
fn compressible(meta: &ObjectMeta) -> bool {
    let t = meta.content_type.to_ascii_lowercase();
    meta.content_encoding.is_none()
        && meta.size >= 1024
        && (t.starts_with("text/")
            || [
                "javascript",
                "json",
                "xml",
                "svg",
                "wasm",
                "font/ttf",
                "font/otf",
            ]
            .iter()
            .any(|x| t.contains(x)))
}

fn compress(body: &[u8], encoding: &str) -> std::io::Result<Bytes> {
    use std::io::Write as _;
    match encoding {
        "br" => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 64 * 1024, 5, 22);
                w.write_all(body)?;
            }
            Ok(Bytes::from(out))
        }
        _ => {
            let mut w = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            w.write_all(body)?;
            Ok(Bytes::from(w.finish()?))
        }
    }
}

/// `*` matches any characters (CloudFront's path patterns; `?` one).
fn matches(pattern: &str, path: &str) -> bool {
    crate::phases::authorize::wildcard(pattern, path)
}

impl Sites {
    pub fn new(app: &App, objects: Option<Arc<dyn ObjectStore>>) -> Sites {
        let mut sites = app.sites.clone();
        sites.sort_by_key(|s| std::cmp::Reverse(s.base_path.len()));
        Sites {
            sites,
            objects,
            cache: moka::sync::Cache::builder()
                .max_capacity(CACHE_BYTES)
                .weigher(|_, v: &Arc<Cached>| u32::try_from(v.body.len() + 512).unwrap_or(u32::MAX))
                .support_invalidation_closures()
                .build(),
        }
    }

    /// The site served at `path`, and its mount's length.
    pub(crate) fn mount(&self, path: &str) -> Option<(usize, &Arc<Site>)> {
        self.sites.iter().find_map(|s| {
            let under = s.base_path == "/"
                || path == s.base_path
                || path
                    .strip_prefix(&s.base_path)
                    .is_some_and(|r| r.starts_with('/'));
            under.then_some((s.base_path.len(), s))
        })
    }

    /// An object of `bucket` changed (S3 API): its cached copies go.
    pub fn object_changed(&self, bucket: &str, key: &str) {
        for s in self.sites.iter().filter(|s| s.bucket == bucket) {
            for enc in [None, Some("gzip"), Some("br")] {
                self.cache.invalidate(&cache_key(&s.name, key, enc));
            }
            // What the SPA fallback and the 404 page serve are cached under
            // the paths that asked for them.
            if key == s.index || Some(key) == s.not_found.as_deref() {
                let prefix = format!("{}\0", s.name);
                let _ = self
                    .cache
                    .invalidate_entries_if(move |k, _| k.starts_with(&prefix));
            }
        }
    }

    /// Drops a site's cached paths matching `pattern` (`/docs/*`, `/*`);
    /// false for an unknown site.
    pub fn invalidate(&self, site: &str, pattern: &str) -> bool {
        if !self.sites.iter().any(|s| s.name == site) {
            return false;
        }
        let prefix = format!("{site}\0");
        let pattern = pattern.trim_start_matches('/').to_owned();
        let _ = self.cache.invalidate_entries_if(move |k, _| {
            k.strip_prefix(&prefix)
                .and_then(|rest| rest.rsplit_once('\0'))
                .is_some_and(|(key, _)| matches(&pattern, key))
        });
        true
    }

    pub fn site_names(&self) -> Vec<String> {
        self.sites.iter().map(|s| s.name.clone()).collect()
    }

    /// Answers a request under `site`'s base path.
    pub(crate) async fn serve(
        &self,
        site: &Site,
        method: &Method,
        path: &str,
        headers: &HeaderMap,
    ) -> Response<Body> {
        if method != Method::GET && method != Method::HEAD {
            return plain(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed\n");
        }
        let Some(store) = &self.objects else {
            return plain(StatusCode::NOT_FOUND, "Not Found\n");
        };
        let rel = if site.base_path == "/" {
            path
        } else {
            &path[site.base_path.len()..]
        };
        let decoded = percent_encoding::percent_decode_str(rel)
            .decode_utf8_lossy()
            .into_owned();
        let mut key = decoded.trim_start_matches('/').to_owned();
        if key.is_empty() || key.ends_with('/') {
            key.push_str(&site.index);
        }
        let wants_range = headers.contains_key(header::RANGE);
        let request_key = key.clone();
        let encoding = negotiate(headers);
        let entry = cache_key(&site.name, &request_key, encoding);
        // The edge cache, for whole answers.
        if !wants_range {
            if let Some(hit) = self.cache.get(&entry) {
                let age = hit.stored.elapsed();
                if age < hit.ttl {
                    return answer(&hit, method, headers, Some(age));
                }
                self.cache.invalidate(&entry);
            }
        }
        // Resolve: the key; a directory without its slash; the SPA index;
        // the 404 page.
        let mut status = StatusCode::OK;
        let mut meta = store.head(&site.bucket, &key).ok();
        if meta.is_none() && !key.ends_with(&site.index) {
            let dir = format!("{key}/{}", site.index);
            if let Ok(m) = store.head(&site.bucket, &dir) {
                key = dir;
                meta = Some(m);
            }
        }
        let extensionless = !key.rsplit('/').next().unwrap_or("").contains('.');
        if meta.is_none() && site.spa && extensionless {
            if let Ok(m) = store.head(&site.bucket, &site.index) {
                key = site.index.clone();
                meta = Some(m);
            }
        }
        if meta.is_none() {
            status = StatusCode::NOT_FOUND;
            if let Some(nf) = &site.not_found {
                if let Ok(m) = store.head(&site.bucket, nf) {
                    key = nf.clone();
                    meta = Some(m);
                }
            }
        }
        let Some(meta) = meta else {
            return plain(StatusCode::NOT_FOUND, "Not Found\n");
        };
        let cache_control = meta.cache_control.clone().or_else(|| {
            let p = format!("/{request_key}");
            site.behaviors
                .iter()
                .find(|b| matches(&b.path, &p))
                .and_then(|b| b.cache_control.clone())
                .or_else(|| site.cache_control.clone())
        });
        // A range: from the store, never cached.
        if wants_range && status == StatusCode::OK {
            let range = header_str(headers, header::RANGE)
                .and_then(|r| crate::sites::parse_range(r, meta.size));
            match range {
                Some(Err(())) => {
                    let mut r = plain(StatusCode::RANGE_NOT_SATISFIABLE, "");
                    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{}", meta.size)) {
                        r.headers_mut().insert(header::CONTENT_RANGE, v);
                    }
                    return r;
                }
                Some(Ok((a, b))) => {
                    let Ok((meta, body)) = store.get(&site.bucket, &key, Some((a, b))) else {
                        return plain(StatusCode::NOT_FOUND, "Not Found\n");
                    };
                    let bytes = match read(body).await {
                        Ok(b) => b,
                        Err(_) => return plain(StatusCode::INTERNAL_SERVER_ERROR, "read failed\n"),
                    };
                    let c = Cached {
                        headers: headers_of(&meta, cache_control.as_deref(), None),
                        meta,
                        status: StatusCode::PARTIAL_CONTENT,
                        body: bytes,
                        stored: Instant::now(),
                        ttl: Duration::ZERO,
                    };
                    let mut r = answer(&c, method, headers, None);
                    if let Ok(v) = HeaderValue::from_str(&format!("bytes {a}-{b}/{}", c.meta.size))
                    {
                        r.headers_mut().insert(header::CONTENT_RANGE, v);
                    }
                    return r;
                }
                None => {}
            }
        }
        let Ok((meta, body)) = store.get(&site.bucket, &key, None) else {
            return plain(StatusCode::NOT_FOUND, "Not Found\n");
        };
        let bytes = match read(body).await {
            Ok(b) => b,
            Err(_) => return plain(StatusCode::INTERNAL_SERVER_ERROR, "read failed\n"),
        };
        let ttl = ttl_of(cache_control.as_deref());
        // Compressed once, at the edge, and cached that way.
        let (bytes, encoding) = match encoding.filter(|_| compressible(&meta)) {
            Some(e) => match compress(&bytes, e) {
                Ok(c) => (c, Some(e)),
                Err(_) => (bytes, None),
            },
            None => (bytes, None),
        };
        let cached = Arc::new(Cached {
            headers: headers_of(&meta, cache_control.as_deref(), encoding),
            meta,
            status,
            body: bytes,
            stored: Instant::now(),
            ttl: ttl.unwrap_or_default(),
        });
        if ttl.is_some_and(|t| !t.is_zero()) && cached.meta.size <= CACHE_OBJECT_MAX {
            self.cache.insert(entry, cached.clone());
        }
        answer(&cached, method, headers, None)
    }
}

fn header_str(h: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

pub(crate) use stratus_state::objects::parse_range;

/// How long the edge may keep an answer: `s-maxage`, else `max-age`;
/// never for `no-store`, `no-cache` or `private`; a day when unsaid.
fn ttl_of(cache_control: Option<&str>) -> Option<Duration> {
    let Some(cc) = cache_control else {
        return Some(DEFAULT_TTL);
    };
    let mut max_age = None;
    let mut s_maxage = None;
    for d in cc.split(',').map(|d| d.trim().to_ascii_lowercase()) {
        match d.as_str() {
            "no-store" | "no-cache" | "private" => return None,
            _ => {
                if let Some(v) = d.strip_prefix("s-maxage=") {
                    s_maxage = v.parse().ok();
                } else if let Some(v) = d.strip_prefix("max-age=") {
                    max_age = v.parse().ok();
                }
            }
        }
    }
    Some(
        s_maxage
            .or(max_age)
            .map_or(DEFAULT_TTL, Duration::from_secs),
    )
}

async fn read(body: ObjectBody) -> std::io::Result<Bytes> {
    match body {
        ObjectBody::Bytes(b) => Ok(b),
        ObjectBody::File { path, offset, len } => {
            use tokio::io::{AsyncReadExt, AsyncSeekExt};
            let mut f = tokio::fs::File::open(&path).await?;
            f.seek(std::io::SeekFrom::Start(offset)).await?;
            let mut buf = Vec::with_capacity(len as usize);
            f.take(len).read_to_end(&mut buf).await?;
            Ok(Bytes::from(buf))
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Body> {
    let mut r = Response::new(
        Full::new(Bytes::from_static(text.as_bytes()))
            .map_err(Into::into)
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    r
}

/// An object's answer headers, made once per cached copy (a hit only
/// clones them).
fn headers_of(meta: &ObjectMeta, cache_control: Option<&str>, encoding: Option<&str>) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut set = |name: header::HeaderName, v: &str| {
        if let Ok(v) = HeaderValue::from_str(v) {
            h.insert(name, v);
        }
    };
    set(header::ETAG, &meta.etag);
    set(
        header::LAST_MODIFIED,
        &stratus_state::objects::http_date(meta.modified_ms),
    );
    set(header::ACCEPT_RANGES, "bytes");
    set(header::CONTENT_TYPE, &meta.content_type);
    if let Some(cc) = cache_control {
        set(header::CACHE_CONTROL, cc);
    }
    if let Some(e) = encoding.or(meta.content_encoding.as_deref()) {
        set(header::CONTENT_ENCODING, e);
    }
    if compressible(meta) {
        set(header::VARY, "accept-encoding");
    }
    h
}

/// The answer for a (cached or fresh) object: 304 when the client has it.
fn answer(
    c: &Cached,
    method: &Method,
    headers: &HeaderMap,
    age: Option<Duration>,
) -> Response<Body> {
    let not_modified = c.status == StatusCode::OK
        && (header_str(headers, header::IF_NONE_MATCH)
            .is_some_and(|v| v == "*" || v.split(',').any(|t| t.trim() == c.meta.etag))
            || (!headers.contains_key(header::IF_NONE_MATCH)
                && header_str(headers, header::IF_MODIFIED_SINCE).is_some_and(|v| {
                    chrono::DateTime::parse_from_rfc2822(v).is_ok_and(|since| {
                        since.timestamp_millis() / 1000 >= c.meta.modified_ms / 1000
                    })
                })));
    let (status, body) = if not_modified {
        (StatusCode::NOT_MODIFIED, Bytes::new())
    } else if method == Method::HEAD {
        (c.status, Bytes::new())
    } else {
        (c.status, c.body.clone())
    };
    let mut r = Response::new(Full::new(body).map_err(Into::into).boxed());
    *r.status_mut() = status;
    let h = r.headers_mut();
    *h = c.headers.clone();
    if status == StatusCode::NOT_MODIFIED {
        h.remove(header::CONTENT_TYPE);
    } else if method == Method::HEAD {
        h.insert(header::CONTENT_LENGTH, HeaderValue::from(c.body.len()));
    }
    let x_cache = header::HeaderName::from_static("x-cache");
    match age {
        Some(a) => {
            h.insert(x_cache, HeaderValue::from_static("Hit from stratus"));
            h.insert(header::AGE, HeaderValue::from(a.as_secs()));
        }
        None => {
            h.insert(x_cache, HeaderValue::from_static("Miss from stratus"));
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_negotiated() {
        let h = |v: &str| {
            let mut m = HeaderMap::new();
            m.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
            m
        };
        assert_eq!(negotiate(&h("gzip, deflate, br")), Some("br"));
        assert_eq!(negotiate(&h("gzip")), Some("gzip"));
        assert_eq!(negotiate(&h("br;q=0, gzip")), Some("gzip"));
        assert_eq!(negotiate(&h("identity")), None);
        assert_eq!(negotiate(&HeaderMap::new()), None);
    }

    #[test]
    fn edge_ttls_follow_cache_control() {
        assert_eq!(ttl_of(None), Some(DEFAULT_TTL));
        assert_eq!(ttl_of(Some("max-age=60")), Some(Duration::from_secs(60)));
        assert_eq!(
            ttl_of(Some("public, max-age=60, s-maxage=600")),
            Some(Duration::from_secs(600))
        );
        assert_eq!(ttl_of(Some("no-store")), None);
        assert_eq!(ttl_of(Some("private, max-age=60")), None);
        assert_eq!(ttl_of(Some("max-age=0")), Some(Duration::ZERO));
    }
}
