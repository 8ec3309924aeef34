//! Buckets and objects: what the S3 API and sites read and write.
//!
//! [`ObjectStore`] is the trait (owned values, boxed futures, as every store
//! here); [`FsObjectStore`] keeps objects in the data directory:
//! `buckets/{bucket}/objects/{sha256(key)}` holds the bytes and
//! `….json` its metadata (key, size, ETag, content type, cache control,
//! user metadata, modification time). Files are named by a hash, so no key
//! (`../x`, `a//b`, `%2e%2e`) can name a path outside its bucket; an
//! in-memory index per bucket (a `BTreeMap` by key) answers listings in
//! key order. Writes go to a temporary file renamed into place, so a
//! reader never sees half an object.
//!
//! What an S3/MinIO-backed implementation (`object_store`) needs is all in
//! the trait: bodies cross it as bytes or a file to stream from
//! ([`Body`]), never as a path a caller builds.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use md5::{Digest as _, Md5};
use sha2::Sha256;

/// What is known of an object without reading it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    /// As S3 computes it, with its quotes: `"md5hex"`, or `"md5-of-md5s-N"`
    /// for a multipart upload.
    pub etag: String,
    pub content_type: String,
    #[serde(default)]
    pub cache_control: Option<String>,
    #[serde(default)]
    pub content_encoding: Option<String>,
    /// `x-amz-meta-*`, names lower-cased without the prefix.
    #[serde(default)]
    pub user: BTreeMap<String, String>,
    /// Milliseconds since the epoch.
    pub modified_ms: i64,
}

/// How an object's bytes are handed out.
#[derive(Debug)]
pub enum Body {
    /// A file to stream from `offset`, `len` bytes.
    File {
        path: PathBuf,
        offset: u64,
        len: u64,
    },
    Bytes(Bytes),
}

/// What a write says besides the bytes.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    pub content_type: Option<String>,
    pub cache_control: Option<String>,
    pub content_encoding: Option<String>,
    pub user: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    #[error("no bucket {0:?}")]
    NoSuchBucket(String),
    #[error("no key {0:?}")]
    NoSuchKey(String),
    #[error("no upload {0:?}")]
    NoSuchUpload(String),
    #[error("bucket {0:?} exists")]
    BucketExists(String),
    #[error("bucket {0:?} is not empty")]
    BucketNotEmpty(String),
    #[error("One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag. (part {0})")]
    InvalidPart(u32),
    #[error("The list of parts was not in ascending order. Parts must be ordered by part number.")]
    InvalidPartOrder,
    #[error("Your proposed upload is smaller than the minimum allowed size (part {0} is {1} bytes; every part but the last is at least 5 MiB)")]
    EntityTooSmall(u32, u64),
    #[error("{0}")]
    Invalid(String),
    #[error("object store: {0}")]
    Io(#[from] std::io::Error),
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub objects: Vec<ObjectMeta>,
    /// With a delimiter: the common prefixes rolled up.
    pub prefixes: Vec<String>,
    /// Where the next page starts (a key), when truncated.
    pub next: Option<String>,
}

pub trait ObjectStore: Send + Sync {
    fn buckets(&self) -> Vec<(String, i64)>;
    fn create_bucket<'a>(&'a self, bucket: &'a str) -> BoxFuture<'a, Result<(), ObjectError>>;
    fn delete_bucket<'a>(&'a self, bucket: &'a str) -> BoxFuture<'a, Result<(), ObjectError>>;
    fn has_bucket(&self, bucket: &str) -> bool;
    fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta, ObjectError>;
    /// The bytes `range` (start, end inclusive) of an object, or all.
    fn get(
        &self,
        bucket: &str,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> Result<(ObjectMeta, Body), ObjectError>;
    fn put<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Bytes,
        opts: PutOptions,
    ) -> BoxFuture<'a, Result<ObjectMeta, ObjectError>>;
    fn delete<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), ObjectError>>;
    /// Keys after `start_after`, with `prefix`, rolled up at `delimiter`.
    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        start_after: Option<&str>,
        max: usize,
    ) -> Result<Listing, ObjectError>;
    fn copy<'a>(
        &'a self,
        from: (&'a str, &'a str),
        to: (&'a str, &'a str),
        replace: Option<PutOptions>,
    ) -> BoxFuture<'a, Result<ObjectMeta, ObjectError>>;
    fn create_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        opts: PutOptions,
    ) -> BoxFuture<'a, Result<String, ObjectError>>;
    /// A part's ETag. An upload belongs to the bucket and key it was
    /// created for: naming another is `NoSuchUpload`, as on S3.
    fn upload_part<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload: &'a str,
        part: u32,
        body: Bytes,
    ) -> BoxFuture<'a, Result<String, ObjectError>>;
    /// Joins `parts` (part number, ETag), which S3 requires in strictly
    /// ascending order, each uploaded with that ETag and all but the last
    /// at least [`MIN_PART`]; on any mistake nothing changes.
    fn complete_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload: &'a str,
        parts: Vec<(u32, String)>,
    ) -> BoxFuture<'a, Result<ObjectMeta, ObjectError>>;
    fn abort_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload: &'a str,
    ) -> BoxFuture<'a, Result<(), ObjectError>>;
}

/// S3's smallest part, but for the last one (5 MiB).
pub const MIN_PART: u64 = 5 * 1024 * 1024;

/// A bucket's creation time (ms) and its objects by key.
type BucketIndex = (i64, BTreeMap<String, ObjectMeta>);

/// Objects in the data directory (see the module comment).
pub struct FsObjectStore {
    root: PathBuf,
    /// Bucket → (created ms, key → metadata).
    index: RwLock<HashMap<String, BucketIndex>>,
    /// Upload id → (bucket, key, options).
    uploads: RwLock<HashMap<String, (String, String, PutOptions)>>,
}

impl std::fmt::Debug for FsObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsObjectStore")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn hashed(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// S3's bucket name rules, in short: 3 to 63 lower-case letters, digits,
/// `-` and `.`, starting and ending with a letter or digit.
pub fn valid_bucket_name(name: &str) -> bool {
    (3..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

/// A content type from a key's extension.
pub fn content_type_of(key: &str) -> String {
    mime_guess::from_path(key)
        .first_raw()
        .unwrap_or("application/octet-stream")
        .to_owned()
}

impl FsObjectStore {
    /// The options of `upload` when it was created for `bucket`/`key`.
    fn upload_of(&self, bucket: &str, key: &str, upload: &str) -> Result<PutOptions, ObjectError> {
        match self.uploads.read().expect("uploads lock").get(upload) {
            Some((b, k, opts)) if b == bucket && k == key => Ok(opts.clone()),
            _ => Err(ObjectError::NoSuchUpload(upload.to_owned())),
        }
    }

    /// Opens (creating) `root` and indexes what is there.
    pub fn open(root: &Path) -> Result<FsObjectStore, ObjectError> {
        std::fs::create_dir_all(root.join("buckets"))?;
        std::fs::create_dir_all(root.join("uploads"))?;
        let mut index = HashMap::new();
        for entry in std::fs::read_dir(root.join("buckets"))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !valid_bucket_name(&name) {
                continue;
            }
            let created = std::fs::read_to_string(entry.path().join("created"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or_else(now_ms);
            let mut objects = BTreeMap::new();
            let dir = entry.path().join("objects");
            if let Ok(files) = std::fs::read_dir(&dir) {
                for f in files.flatten() {
                    let p = f.path();
                    if p.extension().is_some_and(|e| e == "json") {
                        if let Ok(meta) =
                            std::fs::read(&p).map_err(|e| e.to_string()).and_then(|b| {
                                serde_json::from_slice::<ObjectMeta>(&b).map_err(|e| e.to_string())
                            })
                        {
                            objects.insert(meta.key.clone(), meta);
                        }
                    }
                }
            }
            index.insert(name, (created, objects));
        }
        Ok(FsObjectStore {
            root: root.to_path_buf(),
            index: RwLock::new(index),
            uploads: RwLock::default(),
        })
    }

    fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root
            .join("buckets")
            .join(bucket)
            .join("objects")
            .join(hashed(key))
    }

    /// Writes bytes and metadata (temporary files renamed into place) and
    /// indexes the object.
    async fn store(
        &self,
        bucket: &str,
        key: &str,
        body: Bytes,
        etag: String,
        opts: PutOptions,
    ) -> Result<ObjectMeta, ObjectError> {
        if !self.has_bucket(bucket) {
            return Err(ObjectError::NoSuchBucket(bucket.to_owned()));
        }
        if key.is_empty() || key.len() > 1024 {
            return Err(ObjectError::Invalid("a key is 1 to 1024 bytes".into()));
        }
        let meta = ObjectMeta {
            key: key.to_owned(),
            size: body.len() as u64,
            etag,
            content_type: opts.content_type.unwrap_or_else(|| content_type_of(key)),
            cache_control: opts.cache_control,
            content_encoding: opts.content_encoding,
            user: opts.user,
            modified_ms: now_ms(),
        };
        let path = self.object_path(bucket, key);
        let tmp_id = uuid::Uuid::new_v4().simple().to_string();
        let tmp = path.with_extension(format!("tmp-{tmp_id}"));
        tokio::fs::write(&tmp, &body).await?;
        let meta_tmp = path.with_extension(format!("json-{tmp_id}"));
        tokio::fs::write(
            &meta_tmp,
            serde_json::to_vec(&meta).expect("metadata serializes"),
        )
        .await?;
        tokio::fs::rename(&tmp, &path).await?;
        tokio::fs::rename(&meta_tmp, path.with_extension("json")).await?;
        if let Some((_, objects)) = self.index.write().expect("index lock").get_mut(bucket) {
            objects.insert(key.to_owned(), meta.clone());
        }
        Ok(meta)
    }
}

fn md5_etag(body: &[u8]) -> String {
    format!("\"{}\"", hex::encode(Md5::digest(body)))
}

impl ObjectStore for FsObjectStore {
    fn buckets(&self) -> Vec<(String, i64)> {
        let mut all: Vec<(String, i64)> = self
            .index
            .read()
            .expect("index lock")
            .iter()
            .map(|(k, (c, _))| (k.clone(), *c))
            .collect();
        all.sort();
        all
    }

    fn has_bucket(&self, bucket: &str) -> bool {
        self.index.read().expect("index lock").contains_key(bucket)
    }

    fn create_bucket<'a>(&'a self, bucket: &'a str) -> BoxFuture<'a, Result<(), ObjectError>> {
        Box::pin(async move {
            if !valid_bucket_name(bucket) {
                return Err(ObjectError::Invalid(format!(
                    "{bucket:?} is not a bucket name: 3 to 63 lower-case letters, digits, '-' and '.'"
                )));
            }
            if self.has_bucket(bucket) {
                return Err(ObjectError::BucketExists(bucket.to_owned()));
            }
            let dir = self.root.join("buckets").join(bucket);
            tokio::fs::create_dir_all(dir.join("objects")).await?;
            let created = now_ms();
            tokio::fs::write(dir.join("created"), created.to_string()).await?;
            self.index
                .write()
                .expect("index lock")
                .insert(bucket.to_owned(), (created, BTreeMap::new()));
            Ok(())
        })
    }

    fn delete_bucket<'a>(&'a self, bucket: &'a str) -> BoxFuture<'a, Result<(), ObjectError>> {
        Box::pin(async move {
            {
                let index = self.index.read().expect("index lock");
                match index.get(bucket) {
                    None => return Err(ObjectError::NoSuchBucket(bucket.to_owned())),
                    Some((_, objects)) if !objects.is_empty() => {
                        return Err(ObjectError::BucketNotEmpty(bucket.to_owned()))
                    }
                    Some(_) => {}
                }
            }
            self.index.write().expect("index lock").remove(bucket);
            let _ = tokio::fs::remove_dir_all(self.root.join("buckets").join(bucket)).await;
            Ok(())
        })
    }

    fn head(&self, bucket: &str, key: &str) -> Result<ObjectMeta, ObjectError> {
        let index = self.index.read().expect("index lock");
        let (_, objects) = index
            .get(bucket)
            .ok_or_else(|| ObjectError::NoSuchBucket(bucket.to_owned()))?;
        objects
            .get(key)
            .cloned()
            .ok_or_else(|| ObjectError::NoSuchKey(key.to_owned()))
    }

    fn get(
        &self,
        bucket: &str,
        key: &str,
        range: Option<(u64, u64)>,
    ) -> Result<(ObjectMeta, Body), ObjectError> {
        let meta = self.head(bucket, key)?;
        let (offset, len) = match range {
            Some((start, end)) => (start, end + 1 - start),
            None => (0, meta.size),
        };
        let path = self.object_path(bucket, key);
        Ok((meta, Body::File { path, offset, len }))
    }

    fn put<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        body: Bytes,
        opts: PutOptions,
    ) -> BoxFuture<'a, Result<ObjectMeta, ObjectError>> {
        Box::pin(async move {
            let etag = md5_etag(&body);
            self.store(bucket, key, body, etag, opts).await
        })
    }

    fn delete<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<(), ObjectError>> {
        Box::pin(async move {
            if !self.has_bucket(bucket) {
                return Err(ObjectError::NoSuchBucket(bucket.to_owned()));
            }
            let removed = self
                .index
                .write()
                .expect("index lock")
                .get_mut(bucket)
                .and_then(|(_, o)| o.remove(key));
            if removed.is_some() {
                let path = self.object_path(bucket, key);
                let _ = tokio::fs::remove_file(&path).await;
                let _ = tokio::fs::remove_file(path.with_extension("json")).await;
            }
            // Deleting what is not there succeeds, as on S3.
            Ok(())
        })
    }

    fn list(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        start_after: Option<&str>,
        max: usize,
    ) -> Result<Listing, ObjectError> {
        let index = self.index.read().expect("index lock");
        let (_, objects) = index
            .get(bucket)
            .ok_or_else(|| ObjectError::NoSuchBucket(bucket.to_owned()))?;
        let mut out = Listing::default();
        let mut count = 0;
        let lower = start_after.unwrap_or(prefix);
        let range = objects.range::<str, _>((
            if start_after.is_some() {
                std::ops::Bound::Excluded(lower)
            } else {
                std::ops::Bound::Included(lower)
            },
            std::ops::Bound::Unbounded,
        ));
        let mut last_prefix: Option<String> = None;
        for (key, meta) in range {
            if !key.starts_with(prefix) {
                break;
            }
            if count == max {
                out.next = Some(
                    last_prefix
                        .clone()
                        .or_else(|| out.objects.last().map(|o| o.key.clone()))
                        .unwrap_or_default(),
                );
                break;
            }
            let rest = &key[prefix.len()..];
            if let Some(d) = delimiter.filter(|d| !d.is_empty()) {
                if let Some(at) = rest.find(d) {
                    let p = format!("{prefix}{}", &rest[..at + d.len()]);
                    if last_prefix.as_deref() != Some(p.as_str()) {
                        out.prefixes.push(p.clone());
                        last_prefix = Some(p);
                        count += 1;
                    }
                    continue;
                }
            }
            out.objects.push(meta.clone());
            last_prefix = None;
            count += 1;
        }
        Ok(out)
    }

    fn copy<'a>(
        &'a self,
        from: (&'a str, &'a str),
        to: (&'a str, &'a str),
        replace: Option<PutOptions>,
    ) -> BoxFuture<'a, Result<ObjectMeta, ObjectError>> {
        Box::pin(async move {
            let meta = self.head(from.0, from.1)?;
            let body = Bytes::from(tokio::fs::read(self.object_path(from.0, from.1)).await?);
            let opts = replace.unwrap_or(PutOptions {
                content_type: Some(meta.content_type.clone()),
                cache_control: meta.cache_control.clone(),
                content_encoding: meta.content_encoding.clone(),
                user: meta.user.clone(),
            });
            self.store(to.0, to.1, body, meta.etag.clone(), opts).await
        })
    }

    fn create_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        opts: PutOptions,
    ) -> BoxFuture<'a, Result<String, ObjectError>> {
        Box::pin(async move {
            if !self.has_bucket(bucket) {
                return Err(ObjectError::NoSuchBucket(bucket.to_owned()));
            }
            let id = uuid::Uuid::new_v4().simple().to_string();
            tokio::fs::create_dir_all(self.root.join("uploads").join(&id)).await?;
            self.uploads
                .write()
                .expect("uploads lock")
                .insert(id.clone(), (bucket.to_owned(), key.to_owned(), opts));
            Ok(id)
        })
    }

    fn upload_part<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload: &'a str,
        part: u32,
        body: Bytes,
    ) -> BoxFuture<'a, Result<String, ObjectError>> {
        Box::pin(async move {
            self.upload_of(bucket, key, upload)?;
            if !(1..=10_000).contains(&part) {
                return Err(ObjectError::Invalid("a part number is 1 to 10000".into()));
            }
            let etag = md5_etag(&body);
            let dir = self.root.join("uploads").join(upload);
            tokio::fs::write(dir.join(format!("{part:05}")), &body).await?;
            tokio::fs::write(dir.join(format!("{part:05}.etag")), &etag).await?;
            Ok(etag)
        })
    }

    fn complete_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload: &'a str,
        parts: Vec<(u32, String)>,
    ) -> BoxFuture<'a, Result<ObjectMeta, ObjectError>> {
        Box::pin(async move {
            let opts = self.upload_of(bucket, key, upload)?;
            if parts.windows(2).any(|w| w[0].0 >= w[1].0) {
                return Err(ObjectError::InvalidPartOrder);
            }
            let dir = self.root.join("uploads").join(upload);
            // Every part checked before one byte is read or written.
            for (i, (n, etag)) in parts.iter().enumerate() {
                let stored = tokio::fs::read_to_string(dir.join(format!("{n:05}.etag")))
                    .await
                    .map_err(|_| ObjectError::InvalidPart(*n))?;
                if stored.trim_matches('"') != etag.trim_matches('"') {
                    return Err(ObjectError::InvalidPart(*n));
                }
                let size = tokio::fs::metadata(dir.join(format!("{n:05}")))
                    .await
                    .map_err(|_| ObjectError::InvalidPart(*n))?
                    .len();
                if i + 1 < parts.len() && size < MIN_PART {
                    return Err(ObjectError::EntityTooSmall(*n, size));
                }
            }
            let mut body = Vec::new();
            let mut md5s = Vec::new();
            for (n, _) in &parts {
                let bytes = tokio::fs::read(dir.join(format!("{n:05}"))).await?;
                md5s.extend_from_slice(&Md5::digest(&bytes));
                body.extend_from_slice(&bytes);
            }
            let d = Md5::digest(&md5s);
            let etag = format!("\"{}-{}\"", hex::encode(d), parts.len());
            let meta = self
                .store(bucket, key, Bytes::from(body), etag, opts)
                .await?;
            self.uploads.write().expect("uploads lock").remove(upload);
            let _ = tokio::fs::remove_dir_all(&dir).await;
            Ok(meta)
        })
    }

    fn abort_upload<'a>(
        &'a self,
        bucket: &'a str,
        key: &'a str,
        upload: &'a str,
    ) -> BoxFuture<'a, Result<(), ObjectError>> {
        Box::pin(async move {
            self.upload_of(bucket, key, upload)?;
            if self
                .uploads
                .write()
                .expect("uploads lock")
                .remove(upload)
                .is_none()
            {
                return Err(ObjectError::NoSuchUpload(upload.to_owned()));
            }
            let _ = tokio::fs::remove_dir_all(self.root.join("uploads").join(upload)).await;
            Ok(())
        })
    }
}

/// Copies a folder's files into a bucket (a site's `source`), keys as the
/// relative paths with `/`. Returns the objects it wrote (an unchanged file is
/// left alone).
pub async fn seed(
    store: &dyn ObjectStore,
    bucket: &str,
    folder: &Path,
) -> Result<Vec<(String, ObjectMeta)>, ObjectError> {
    if !store.has_bucket(bucket) {
        store.create_bucket(bucket).await?;
    }
    let mut stack = vec![folder.to_path_buf()];
    let mut copied = Vec::new();
    while let Some(dir) = stack.pop() {
        let mut entries = tokio::fs::read_dir(&dir).await?;
        while let Some(e) = entries.next_entry().await? {
            let path = e.path();
            let ty = e.file_type().await?;
            if ty.is_dir() {
                stack.push(path);
            } else if ty.is_file() {
                let rel = path
                    .strip_prefix(folder)
                    .map_err(|e| ObjectError::Invalid(e.to_string()))?;
                let key = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                let body = Bytes::from(tokio::fs::read(&path).await?);
                // Unchanged files are left alone (their ETag and date kept).
                if store
                    .head(bucket, &key)
                    .is_ok_and(|m| m.etag == md5_etag(&body))
                {
                    continue;
                }
                let meta = store.put(bucket, &key, body, PutOptions::default()).await?;
                copied.push((key, meta));
            }
        }
    }
    Ok(copied)
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` → inclusive (start, end); `Err`
/// for one that cannot be met (416); `None` to ignore (several ranges, or
/// not bytes: the whole object, as S3 answers).
pub fn parse_range(value: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
    let spec = value.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let r = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: u64 = n.parse().ok()?;
            if n == 0 || size == 0 {
                return Some(Err(()));
            }
            (size.saturating_sub(n), size - 1)
        }
        (a, "") => (a.parse().ok()?, size.saturating_sub(1)),
        (a, b) => (
            a.parse().ok()?,
            b.parse::<u64>().ok()?.min(size.saturating_sub(1)),
        ),
    };
    if r.0 >= size || r.0 > r.1 {
        return Some(Err(()));
    }
    Some(Ok(r))
}

/// `Last-Modified`: RFC 7231's date.
pub fn http_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Shared handle.
pub type Objects = Arc<dyn ObjectStore>;
