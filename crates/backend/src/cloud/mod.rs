//! [`CloudBackend`]: tiers on S3 (and S3-compatible stores), Azure Blob Storage and Google
//! Cloud Storage, built on `object_store`.
//!
//! A tier is one cloud bucket or container (with an optional path prefix). Below it:
//!
//! ```text
//! <prefix>/
//!   .coffer-buckets/<bucket>              marker: the bucket exists (empty object)
//!   .coffer-uploads/<bucket>/<id>/        one client multipart upload: upload.json and
//!                                         part-00001.json … (see `uploads`)
//!   <bucket>/<encoded key>                the objects (see `keys`)
//! ```
//!
//! Bucket names never start with `.`, so neither bookkeeping prefix can be a bucket.
//!
//! The pieces: `http` (the HTTP connector: hyper + rustls/ring), `crypto` (ring digests,
//! HMAC and RS256), `config` (the tier configurations), `credentials` (secrets from
//! variables or files, rotated without restart), `s3`/`azure`/`gcs` (building each store),
//! `keys` (key ↔ name encoding), `metadata` (metadata ↔ attributes), `upload_stream`
//! (bodies, checks, streamed PUTs), `objects` (put/get/head/copy/delete), `list`
//! (listings), `uploads` (client multipart uploads), `raw` (the few requests
//! `object_store` cannot make: completions with explicit part numbers, Azure block-list
//! commits with metadata, Azure listings with metadata), `errors` (error mapping).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use object_store::client::{HttpClient, HttpConnector};
use object_store::list::{PaginatedListOptions, PaginatedListStore};
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig};

use crate::{
    Backend, ByteRange, ByteStream, Error, ListPage, ListQuery, ObjectInfo, ObjectMeta, PartInfo, PutChecks, Result,
    UploadInfo,
};

mod azure;
mod config;
mod credentials;
mod crypto;
mod errors;
mod gcs;
mod http;
pub(crate) mod keys;
mod list;
mod metadata;
mod objects;
mod raw;
mod s3;
mod upload_stream;
mod uploads;

pub use config::{AzureTierConfig, CloudTierConfig, GcsTierConfig, S3TierConfig};
use metadata::Provider;

/// The prefix (below the tier's) of bucket markers.
const BUCKETS_DIR: &str = ".coffer-buckets";
/// The prefix (below the tier's) of client multipart uploads.
const UPLOADS_DIR: &str = ".coffer-uploads";
/// How long a bucket seen to exist is trusted without asking the store again. Only a
/// delete by another replica can make this stale, and the gateway checks buckets in the
/// metadata store before it calls a backend.
const BUCKET_CACHE_TTL: Duration = Duration::from_secs(5);
/// How many requests one listing or cleanup sends at the same time.
const FAN_OUT: usize = 16;
/// The longest a readiness check may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(10);

/// A tier on a cloud object store. Cheap to clone; every clone shares one connection pool.
#[derive(Clone)]
pub struct CloudBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CloudBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudBackend")
            .field("tier", &self.inner.tier)
            .field("provider", &self.inner.provider)
            .field("root", &self.inner.root)
            .finish_non_exhaustive()
    }
}

/// What every operation shares.
pub(crate) struct Inner {
    /// The tier's name, for messages.
    tier: String,
    provider: Provider,
    store: Arc<dyn ObjectStore>,
    multipart: Arc<dyn MultipartStore>,
    lister: Arc<dyn PaginatedListStore>,
    /// The tier's prefix, encoded, with a trailing `/` (or empty).
    root: String,
    /// The requests `object_store` cannot make.
    raw: raw::Raw,
    /// Buckets seen to exist, and when.
    buckets: Mutex<HashMap<String, Instant>>,
    /// How many times a credential was reloaded.
    reloads: Arc<AtomicU64>,
}

/// What a store builder hands back.
pub(crate) struct Built {
    store: Arc<dyn ObjectStore>,
    multipart: Arc<dyn MultipartStore>,
    lister: Arc<dyn PaginatedListStore>,
    raw: raw::Raw,
}

/// The TCP connect to a store.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Until a response's headers. Every request body coffer sends a store is in memory and at
/// most one part (`upload_stream::PART_SIZE`, 5 MiB), so this bounds an unresponsive store,
/// not a client's slow upload.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest pause while a response body streams.
const READ_TIMEOUT: Duration = Duration::from_secs(30);
/// No retry starts later than this after the first attempt.
const RETRY_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client settings every store uses.
pub(crate) fn client_options(allow_http: bool) -> ClientOptions {
    ClientOptions::new()
        .with_allow_http(allow_http)
        .with_connect_timeout(CONNECT_TIMEOUT)
        .with_timeout(REQUEST_TIMEOUT)
        .with_read_timeout(READ_TIMEOUT)
        .with_pool_idle_timeout(Duration::from_secs(60))
}

/// Retries: a few, quickly, so that a dead store (connections refused or reset) is reported
/// within about two seconds, and one that stopped answering after [`REQUEST_TIMEOUT`]
/// (a timed-out attempt is retried only before [`RETRY_TIMEOUT`]).
pub(crate) fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 3,
        retry_timeout: RETRY_TIMEOUT,
    }
}

/// An HTTP client for the raw requests, on the same connector.
pub(crate) fn raw_client(tier: &str, allow_http: bool) -> Result<HttpClient> {
    http::HyperConnector.connect(&client_options(allow_http)).map_err(|e| config_error(tier, &e.to_string()))
}

fn config_error(tier: &str, message: &str) -> Error {
    Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("tier {tier}: {message}")))
}

/// The tier prefix of a configuration, normalised: no leading or trailing `/`, a valid path.
fn normalise_prefix(tier: &str, prefix: Option<&str>) -> Result<String> {
    let p = prefix.unwrap_or_default().trim_matches('/');
    if p.is_empty() {
        return Ok(String::new());
    }
    match Path::parse(p) {
        Ok(path) if path.as_ref() == p => Ok(format!("{p}/")),
        _ => Err(config_error(tier, &format!("invalid prefix {p:?}: empty, `.` or `..` segments are not allowed"))),
    }
}

impl CloudBackend {
    /// A tier on Amazon S3 or an S3-compatible store. Reads the credentials now (an error
    /// when they are missing); makes no request.
    pub fn s3(tier: &str, config: &S3TierConfig) -> Result<CloudBackend> {
        let reloads = Arc::new(AtomicU64::new(0));
        let built = s3::build(tier, config, Arc::clone(&reloads))?;
        Self::assemble(tier, Provider::S3, config.prefix.as_deref(), built, reloads)
    }

    /// A tier on Azure Blob Storage (or Azurite).
    pub fn azure(tier: &str, config: &AzureTierConfig) -> Result<CloudBackend> {
        let reloads = Arc::new(AtomicU64::new(0));
        let built = azure::build(tier, config, Arc::clone(&reloads))?;
        Self::assemble(tier, Provider::Azure, config.prefix.as_deref(), built, reloads)
    }

    /// A tier on Google Cloud Storage.
    pub fn gcs(tier: &str, config: &GcsTierConfig) -> Result<CloudBackend> {
        let reloads = Arc::new(AtomicU64::new(0));
        let built = gcs::build(tier, config, Arc::clone(&reloads))?;
        Self::assemble(tier, Provider::Gcs, config.prefix.as_deref(), built, reloads)
    }

    /// A tier from its tagged configuration.
    pub fn from_config(tier: &str, config: &CloudTierConfig) -> Result<CloudBackend> {
        match config {
            CloudTierConfig::S3(c) => Self::s3(tier, c),
            CloudTierConfig::Azure(c) => Self::azure(tier, c),
            CloudTierConfig::Gcs(c) => Self::gcs(tier, c),
        }
    }

    fn assemble(
        tier: &str,
        provider: Provider,
        prefix: Option<&str>,
        built: Built,
        reloads: Arc<AtomicU64>,
    ) -> Result<CloudBackend> {
        let root = normalise_prefix(tier, prefix)?;
        let inner = Inner {
            tier: tier.to_owned(),
            provider,
            store: built.store,
            multipart: built.multipart,
            lister: built.lister,
            root,
            raw: built.raw,
            buckets: Mutex::new(HashMap::new()),
            reloads,
        };
        Ok(CloudBackend { inner: Arc::new(inner) })
    }

    /// The tier's name.
    pub fn tier(&self) -> &str {
        &self.inner.tier
    }

    /// How many times a credential file change was picked up (a metric).
    pub fn credential_reloads(&self) -> u64 {
        self.inner.reloads.load(Ordering::Relaxed)
    }
}

/// A time as the stores report it everywhere: whole seconds (listings have milliseconds,
/// HEAD's `Last-Modified` has seconds).
fn whole_seconds(t: SystemTime) -> SystemTime {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// The longest object name each store accepts, and how it counts.
fn name_fits(provider: Provider, name: &str) -> bool {
    match provider {
        // 1024 bytes of UTF-8.
        Provider::S3 | Provider::Gcs => name.len() <= 1024,
        // 1024 characters, at most 254 path segments.
        Provider::Azure => name.chars().count() <= 1024 && name.split('/').count() <= 254,
    }
}

/// Whether a bucket name is one this backend can hold (as the filesystem backend).
fn valid_bucket(bucket: &str) -> bool {
    !bucket.is_empty()
        && bucket.len() <= 255
        && !bucket.starts_with('.')
        && bucket.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

impl Inner {
    /// The key escaping rules of the store.
    fn dialect(&self) -> keys::Dialect {
        match self.provider {
            Provider::Azure => keys::Dialect::Azure,
            Provider::S3 | Provider::Gcs => keys::Dialect::Standard,
        }
    }

    /// `<root><bucket>/`: every name of the bucket's objects starts with this.
    fn bucket_root(&self, bucket: &str) -> String {
        format!("{}{bucket}/", self.root)
    }

    /// The store path of an object; `KeyTooLong` when the store cannot name it.
    fn object_path(&self, bucket: &str, key: &str) -> Result<Path> {
        if !valid_bucket(bucket) {
            return Err(Error::NoSuchBucket);
        }
        let name = format!("{}{}", self.bucket_root(bucket), keys::encode_key(key, self.dialect()));
        if !name_fits(self.provider, &name) {
            return Err(Error::KeyTooLong);
        }
        Path::parse(&name).map_err(|e| Error::Io(std::io::Error::other(format!("tier {}: {e}", self.tier))))
    }

    /// A path of coffer's own (markers, manifests), from parts that are valid segments.
    fn own_path(&self, parts: &[&str]) -> Path {
        let name = format!("{}{}", self.root, parts.join("/"));
        Path::parse(&name).expect("coffer's own names are valid paths")
    }

    fn marker_path(&self, bucket: &str) -> Path {
        self.own_path(&[BUCKETS_DIR, bucket])
    }

    /// Whether the bucket exists (asks the store unless seen recently).
    async fn bucket_exists(&self, bucket: &str) -> Result<bool> {
        if !valid_bucket(bucket) {
            return Ok(false);
        }
        if let Some(seen) = self.buckets.lock().unwrap_or_else(|e| e.into_inner()).get(bucket)
            && seen.elapsed() < BUCKET_CACHE_TTL
        {
            return Ok(true);
        }
        match self.store.head(&self.marker_path(bucket)).await {
            Ok(_) => {
                self.buckets.lock().unwrap_or_else(|e| e.into_inner()).insert(bucket.to_owned(), Instant::now());
                Ok(true)
            }
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(errors::failure(&self.tier, "checking a bucket", &e)),
        }
    }

    /// `NoSuchBucket` unless the bucket exists.
    async fn require_bucket(&self, bucket: &str) -> Result<()> {
        if self.bucket_exists(bucket).await? { Ok(()) } else { Err(Error::NoSuchBucket) }
    }

    /// After a "not found": `NoSuchBucket` if that is why, else `otherwise`.
    async fn missing(&self, bucket: &str, otherwise: Error) -> Error {
        match self.bucket_exists(bucket).await {
            Ok(true) => otherwise,
            Ok(false) => Error::NoSuchBucket,
            Err(e) => e,
        }
    }

    async fn check(&self) -> Result<()> {
        let opts = PaginatedListOptions { max_keys: Some(1), ..Default::default() };
        // No `/` at the end: the probe is the same, and moto's IAM mode (the rotation test)
        // miscomputes signatures of listings whose prefix ends in an encoded `/`.
        let prefix = format!("{}{BUCKETS_DIR}", self.root);
        match tokio::time::timeout(CHECK_TIMEOUT, self.lister.list_paginated(Some(&prefix), opts)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(errors::failure(&self.tier, "readiness check", &e)),
            Err(_) => Err(Error::Unavailable(format!(
                "tier {}: the store did not answer within {CHECK_TIMEOUT:?}",
                self.tier
            ))),
        }
    }

    async fn create_bucket(&self, bucket: &str) -> Result<()> {
        if !valid_bucket(bucket) {
            return Err(Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid bucket name {bucket:?}"),
            )));
        }
        let marker = self.marker_path(bucket);
        self.store
            .put(&marker, object_store::PutPayload::new())
            .await
            .map_err(|e| errors::failure(&self.tier, "creating a bucket", &e))?;
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).insert(bucket.to_owned(), Instant::now());
        Ok(())
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<()> {
        if !valid_bucket(bucket) {
            return Err(Error::NoSuchBucket);
        }
        let opts = PaginatedListOptions { max_keys: Some(1), ..Default::default() };
        let page = self
            .lister
            .list_paginated(Some(&self.bucket_root(bucket)), opts)
            .await
            .map_err(|e| errors::failure(&self.tier, "checking that a bucket is empty", &e))?;
        if !page.result.objects.is_empty() || !page.result.common_prefixes.is_empty() {
            return Err(Error::BucketNotEmpty);
        }
        self.abort_bucket_uploads(bucket).await?;
        self.buckets.lock().unwrap_or_else(|e| e.into_inner()).remove(bucket);
        match self.store.delete(&self.marker_path(bucket)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(errors::failure(&self.tier, "deleting a bucket", &e)),
        }
    }
}

#[async_trait]
impl Backend for CloudBackend {
    async fn check(&self) -> Result<()> {
        self.inner.check().await
    }

    async fn create_bucket(&self, bucket: &str) -> Result<()> {
        self.inner.create_bucket(bucket).await
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<()> {
        self.inner.delete_bucket(bucket).await
    }

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        body: ByteStream,
        checks: PutChecks,
    ) -> Result<ObjectInfo> {
        self.inner.put_object(bucket, key, meta, body, checks).await
    }

    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectInfo> {
        self.inner.head_object(bucket, key).await
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<(ObjectInfo, (u64, u64), ByteStream)> {
        self.inner.get_object(bucket, key, range).await
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        self.inner.delete_object(bucket, key).await
    }

    async fn copy_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        meta: Option<ObjectMeta>,
    ) -> Result<ObjectInfo> {
        self.inner.copy_object(src_bucket, src_key, dst_bucket, dst_key, meta).await
    }

    async fn list_objects(&self, bucket: &str, query: &ListQuery) -> Result<ListPage> {
        self.inner.list_objects(bucket, query).await
    }

    async fn create_multipart_upload(&self, bucket: &str, key: &str, meta: ObjectMeta) -> Result<String> {
        self.inner.create_upload(bucket, key, meta).await
    }

    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: ByteStream,
        checks: PutChecks,
    ) -> Result<PartInfo> {
        self.inner.upload_part(bucket, key, upload_id, part_number, body, checks).await
    }

    async fn list_parts(&self, bucket: &str, key: &str, upload_id: &str) -> Result<Vec<PartInfo>> {
        self.inner.list_parts(bucket, key, upload_id).await
    }

    async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<ObjectInfo> {
        self.inner.complete_upload(bucket, key, upload_id, parts).await
    }

    async fn abort_multipart_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        self.inner.abort_upload(bucket, key, upload_id).await
    }

    async fn list_multipart_uploads(&self, bucket: &str, prefix: &str) -> Result<Vec<UploadInfo>> {
        self.inner.list_uploads(bucket, prefix).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_store_is_reported_within_bounds() {
        let options = client_options(false);
        let get = |key| options.get_config_value(&key).and_then(|v| humantime::parse_duration(&v).ok());
        assert_eq!(get(object_store::ClientConfigKey::ConnectTimeout), Some(CONNECT_TIMEOUT));
        assert_eq!(get(object_store::ClientConfigKey::Timeout), Some(REQUEST_TIMEOUT));
        assert_eq!(get(object_store::ClientConfigKey::ReadTimeout), Some(READ_TIMEOUT));
        let retry = retry_config();
        // The longest all backoffs can add up to, with object_store's jitter at its worst.
        let mut worst = Duration::ZERO;
        let mut next = retry.backoff.init_backoff;
        for _ in 0..retry.max_retries {
            worst += next;
            next = (next.mul_f64(retry.backoff.base)).min(retry.backoff.max_backoff);
        }
        assert!(worst <= Duration::from_secs(2), "{worst:?}");
        assert!(retry.retry_timeout <= Duration::from_secs(10));
        assert!(REQUEST_TIMEOUT <= Duration::from_secs(30) && CONNECT_TIMEOUT <= Duration::from_secs(2));
    }

    #[test]
    fn prefixes_are_normalised() {
        assert_eq!(normalise_prefix("t", None).unwrap(), "");
        assert_eq!(normalise_prefix("t", Some("/a/b/")).unwrap(), "a/b/");
        assert!(normalise_prefix("t", Some("a//b")).is_err());
        assert!(normalise_prefix("t", Some("a/../b")).is_err());
    }

    #[test]
    fn name_limits() {
        assert!(name_fits(Provider::S3, &"x".repeat(1024)));
        assert!(!name_fits(Provider::S3, &"é".repeat(513)));
        assert!(name_fits(Provider::Azure, &"é".repeat(1000)));
        assert!(!name_fits(Provider::Azure, &"a/".repeat(254)));
    }
}
