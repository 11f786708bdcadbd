//! # coffer-backend
//!
//! Where the bytes live. A *tier* is one [`Backend`]; a bucket lives under the prefix
//! `<bucket>/` of its tier. Backends know nothing of users or rights: the gateway has
//! authorized every call before it gets here.
//!
//! ## Layout
//! - this file — the [`Backend`] trait and the types it speaks: [`ObjectMeta`],
//!   [`ObjectInfo`], [`ByteRange`], [`ListQuery`]/[`ListPage`], multipart records, [`Error`].
//! - `fs/` — [`FsBackend`], the local-filesystem backend: atomic writes (temporary file,
//!   fsync, rename), keys encoded so that none can escape its bucket, metadata in a trailer
//!   of the object file, multipart parts staged in `.uploads/` beside the buckets.
//! - `cloud/` — [`CloudBackend`], tiers on S3 (and S3-compatible stores), Azure Blob
//!   Storage and Google Cloud Storage, built on `object_store` with coffer's own HTTP
//!   connector (hyper + rustls/ring) and crypto (ring): bucket markers under
//!   `.coffer-buckets/`, keys encoded into valid object names, metadata and coffer's ETag
//!   as store attributes, client multipart uploads on the store's own with JSON manifests
//!   under `.coffer-uploads/`, credentials from variables or files re-read when they
//!   change. Its configurations ([`S3TierConfig`], [`AzureTierConfig`], [`GcsTierConfig`],
//!   [`CloudTierConfig`]) are what the binary's `[tiers.NAME]` tables deserialize into.
//!
//! All bodies are streams ([`ByteStream`]); nothing holds a whole object in memory.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::SystemTime;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use serde::{Deserialize, Serialize};

mod cloud;
mod fs;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

pub use cloud::{AzureTierConfig, CloudBackend, CloudTierConfig, GcsTierConfig, S3TierConfig};
pub use fs::{FsBackend, FsIo};

/// A stream of body bytes, in or out.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static>>;

/// The largest single PUT or part AWS accepts: 5 GiB.
pub const MAX_PUT_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// The smallest size of a multipart part other than the last: 5 MiB.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// The most parts a multipart upload may have.
pub const MAX_PARTS: u32 = 10_000;

/// What a backend can answer besides success. The gateway maps these to domain errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the bucket does not exist in the backend")]
    NoSuchBucket,
    #[error("the object does not exist")]
    NoSuchKey,
    #[error("the multipart upload does not exist")]
    NoSuchUpload,
    #[error("the bucket is not empty")]
    BucketNotEmpty,
    #[error("the Content-MD5 does not match the bytes received")]
    BadDigest,
    #[error("the body exceeds the maximum allowed size")]
    EntityTooLarge,
    #[error("a part other than the last is smaller than the minimum part size")]
    EntityTooSmall,
    #[error("the body ended before the announced length")]
    IncompleteBody,
    #[error("invalid part: {0}")]
    InvalidPart(String),
    #[error("the list of parts was not in ascending order")]
    InvalidPartOrder,
    #[error("the requested range is not satisfiable")]
    InvalidRange,
    #[error("the key is too long for this backend")]
    KeyTooLong,
    /// Reading the incoming body failed (the client went away, a bad chunk signature).
    #[error("reading the request body failed: {0}")]
    Body(#[source] std::io::Error),
    /// The backend's own storage failed.
    #[error("backend I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The backend cannot be reached or is overloaded (a cloud store down, timing out or
    /// answering 5xx): worth retrying later. The message names the tier, never a secret.
    #[error("backend unavailable: {0}")]
    Unavailable(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The metadata stored with an object and returned with it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectMeta {
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    pub content_disposition: Option<String>,
    pub content_language: Option<String>,
    pub cache_control: Option<String>,
    /// The `Expires` header, as the client sent it.
    pub expires: Option<String>,
    /// `x-amz-meta-*` values, keyed by the lowercase name without the prefix.
    pub user_metadata: BTreeMap<String, String>,
}

/// What a backend knows of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// Without quotes: 32 hex digits, or for a multipart object the MD5 of the part MD5s
    /// followed by `-N`.
    pub etag: String,
    pub last_modified: SystemTime,
    pub meta: ObjectMeta,
}

/// A byte range as an HTTP `Range: bytes=` header names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `first-` or `first-last` (inclusive).
    FromTo { first: u64, last: Option<u64> },
    /// `-n`: the last `n` bytes.
    Suffix { len: u64 },
}

impl ByteRange {
    /// The half-open `start..end` this range selects in an object of `size` bytes, or
    /// `InvalidRange` when it selects nothing (RFC 9110 §14.1.2, as S3 applies it).
    pub fn resolve(self, size: u64) -> Result<(u64, u64)> {
        match self {
            ByteRange::FromTo { first, last } => {
                if first >= size || last.is_some_and(|l| l < first) {
                    return Err(Error::InvalidRange);
                }
                let end = last.map_or(size, |l| l.saturating_add(1).min(size));
                Ok((first, end))
            }
            ByteRange::Suffix { len } => {
                if len == 0 || size == 0 {
                    return Err(Error::InvalidRange);
                }
                Ok((size.saturating_sub(len), size))
            }
        }
    }
}

/// Checks made while a body streams in; a failing check leaves nothing stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PutChecks {
    /// The decoded `Content-MD5`: `BadDigest` if the bytes differ.
    pub content_md5: Option<[u8; 16]>,
    /// The announced length: `IncompleteBody` if fewer bytes arrive, `BadDigest`-free
    /// `EntityTooLarge` never, but more bytes than announced are refused as `IncompleteBody`.
    pub expected_size: Option<u64>,
    /// `EntityTooLarge` beyond this many bytes; `MAX_PUT_SIZE` when zero.
    pub max_size: u64,
}

/// A listing request. Keys are returned in ascending UTF-8 byte order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    pub prefix: String,
    /// Keys containing this after the prefix are rolled up into one common prefix.
    pub delimiter: Option<String>,
    /// Only keys (and common prefixes) strictly greater than this. When it ends with the
    /// delimiter it names a common prefix already returned, and every key under it is skipped.
    pub start_after: Option<String>,
    /// At most this many entries (objects plus common prefixes); at least 1.
    pub max_keys: usize,
}

/// One entry of a listing, in order. A listed object's `meta` is filled when the
/// backend's listing carries it (the filesystem backend, and cloud objects whose ETag
/// needed a HEAD); otherwise it is the default (empty): use `head_object` for metadata.
// Entries live in a page's `Vec`, a thousand at most: boxing the object would cost an
// allocation each for no gain.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListEntry {
    Object(ObjectInfo),
    CommonPrefix(String),
}

/// A page of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    pub entries: Vec<ListEntry>,
    /// More entries follow the last one returned.
    pub is_truncated: bool,
}

/// One uploaded part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    pub part_number: u32,
    /// Without quotes.
    pub etag: String,
    pub size: u64,
    pub last_modified: SystemTime,
}

/// One multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadInfo {
    pub key: String,
    pub upload_id: String,
    pub initiated: SystemTime,
}

/// An object backend. Every method is for one bucket's prefix; buckets must have been
/// created with [`Backend::create_bucket`] first (`NoSuchBucket` otherwise).
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Fails if the backend cannot be used (for `/readyz`).
    async fn check(&self) -> Result<()>;

    /// Create the bucket's home; idempotent.
    async fn create_bucket(&self, bucket: &str) -> Result<()>;
    /// Remove the bucket's home and any multipart uploads in it; `BucketNotEmpty` while it
    /// holds an object. Idempotent when already gone.
    async fn delete_bucket(&self, bucket: &str) -> Result<()>;

    /// Store an object from a stream, atomically: readers see the old object or the whole
    /// new one, never a part; a failed or interrupted put leaves nothing behind.
    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        body: ByteStream,
        checks: PutChecks,
    ) -> Result<ObjectInfo>;

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectInfo>;

    /// The object's info, the resolved half-open range (the whole object when `range` is
    /// `None`), and a stream of exactly those bytes.
    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<(ObjectInfo, (u64, u64), ByteStream)>;

    /// Remove an object; succeeds when it is already absent.
    async fn delete_object(&self, bucket: &str, key: &str) -> Result<()>;

    /// Copy an object, keeping its metadata unless `meta` replaces it. Atomic like a put.
    async fn copy_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        meta: Option<ObjectMeta>,
    ) -> Result<ObjectInfo>;

    async fn list_objects(&self, bucket: &str, query: &ListQuery) -> Result<ListPage>;

    /// Start a multipart upload; returns its opaque id.
    async fn create_multipart_upload(&self, bucket: &str, key: &str, meta: ObjectMeta) -> Result<String>;
    /// Store (or replace) one part, 1..=10000. `NoSuchUpload` unless the id belongs to this
    /// bucket and key.
    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: ByteStream,
        checks: PutChecks,
    ) -> Result<PartInfo>;
    /// The parts uploaded so far, by part number.
    async fn list_parts(&self, bucket: &str, key: &str, upload_id: &str) -> Result<Vec<PartInfo>>;
    /// Assemble the named parts (ascending part numbers, ETags without quotes) into the
    /// object, atomically, and forget the upload.
    async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<ObjectInfo>;
    /// Forget the upload and its parts.
    async fn abort_multipart_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()>;
    /// Uploads in progress whose key starts with `prefix`, by key then initiation time.
    async fn list_multipart_uploads(&self, bucket: &str, prefix: &str) -> Result<Vec<UploadInfo>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_resolve_like_s3() {
        let r = |first, last| ByteRange::FromTo { first, last };
        assert_eq!(r(0, Some(0)).resolve(10).unwrap(), (0, 1));
        assert_eq!(r(2, Some(5)).resolve(10).unwrap(), (2, 6));
        assert_eq!(r(2, None).resolve(10).unwrap(), (2, 10));
        assert_eq!(r(5, Some(100)).resolve(10).unwrap(), (5, 10));
        assert_eq!(ByteRange::Suffix { len: 3 }.resolve(10).unwrap(), (7, 10));
        assert_eq!(ByteRange::Suffix { len: 30 }.resolve(10).unwrap(), (0, 10));
        assert!(matches!(r(10, None).resolve(10), Err(Error::InvalidRange)));
        assert!(matches!(r(5, Some(4)).resolve(10), Err(Error::InvalidRange)));
        assert!(matches!(ByteRange::Suffix { len: 0 }.resolve(10), Err(Error::InvalidRange)));
        assert!(matches!(r(0, None).resolve(0), Err(Error::InvalidRange)));
    }
}
