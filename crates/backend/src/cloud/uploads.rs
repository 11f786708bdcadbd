//! Client multipart uploads (CreateMultipartUpload … Complete/Abort across requests and
//! replicas) on the store's own multipart uploads, with their state in the store.
//!
//! An upload is a store multipart upload for the object's name plus small JSON manifests
//! under `<root>.coffer-uploads/<bucket>/<upload id>/`:
//!
//! - `upload.json`: the key, the initiation time, the store's upload id, the metadata;
//! - `part-00001.json` …: per client part, its size, MD5 (the part's ETag), the store's
//!   part ids and the time it was stored. A re-uploaded part replaces its manifest.
//!
//! coffer's upload ids are random (32 hex digits) and checked before they are used in a
//! name; every call checks that the upload belongs to the bucket and key it names.
//!
//! Client part `n` is stored as the store's part `n` (index `n - 1`) on S3 and GCS, so
//! parts may arrive in any order and be replaced. On Azure a part is one or more blocks of
//! at most 5 MiB (memory stays bounded whatever the part size). Completion checks the named
//! parts like the filesystem backend (`InvalidPart`, `InvalidPartOrder`, `EntityTooSmall`)
//! and then commits exactly those parts, in order: with `complete_multipart` when they are
//! 1..=n, otherwise with explicit part numbers (`raw`); on Azure by committing their blocks
//! with the object's properties (`raw`). The ETag is the MD5 of the part MD5s, `-N`: on S3
//! it is also what S3 computes; on Azure it is stored as `coffer_etag`; on GCS the store's
//! own ETag is reported. The manifests are removed on completion and abort.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt, stream};
use md5::{Digest, Md5};
use object_store::list::PaginatedListOptions;
use object_store::multipart::PartId;
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutMultipartOptions, PutPayload};
use serde::{Deserialize, Serialize};

use super::metadata::{self, Provider};
use super::upload_stream::{self, CheckedBody, PART_SIZE};
use super::{FAN_OUT, Inner, UPLOADS_DIR, errors, valid_bucket, whole_seconds};
use crate::{
    ByteStream, Error, MAX_PARTS, MIN_PART_SIZE, ObjectInfo, ObjectMeta, PartInfo, PutChecks, Result, UploadInfo,
};

const UPLOAD_FILE: &str = "upload.json";

/// `upload.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct UploadRecord {
    key: String,
    /// Unix milliseconds.
    initiated: u64,
    /// The store's multipart upload id (empty on Azure, which has none).
    store_upload_id: String,
    meta: ObjectMeta,
}

/// `part-NNNNN.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PartRecord {
    size: u64,
    /// Hex MD5 of the part: its ETag.
    md5: String,
    /// The store's ids of the part: its ETag (S3, GCS) or its blocks (Azure).
    store_parts: Vec<String>,
    /// Unix milliseconds.
    last_modified: u64,
}

fn now_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn part_file(n: u32) -> String {
    format!("part-{n:05}.json")
}

fn check_part_number(n: u32) -> Result<()> {
    if (1..=MAX_PARTS).contains(&n) {
        Ok(())
    } else {
        Err(Error::InvalidPart(format!("part number {n} is not between 1 and {MAX_PARTS}")))
    }
}

/// Whether an ETag a client sent (perhaps quoted) names the stored one.
fn etag_matches(stored: &str, given: &str) -> bool {
    given.trim().trim_matches('"').eq_ignore_ascii_case(stored)
}

/// An upload that exists: its id and record.
struct Upload {
    id: String,
    record: UploadRecord,
}

impl Inner {
    fn uploads_prefix(&self, bucket: &str) -> String {
        format!("{}{UPLOADS_DIR}/{bucket}/", self.root)
    }

    fn upload_file(&self, bucket: &str, id: &str, file: &str) -> Path {
        self.own_path(&[UPLOADS_DIR, bucket, id, file])
    }

    async fn get_json<T: for<'de> Deserialize<'de>>(&self, path: &Path) -> Result<Option<T>> {
        match self.store.get(path).await {
            Ok(r) => {
                let bytes = r.bytes().await.map_err(|e| errors::failure(&self.tier, "reading a manifest", &e))?;
                serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                    Error::Io(std::io::Error::other(format!("tier {}: the manifest {path} is damaged: {e}", self.tier)))
                })
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(errors::failure(&self.tier, "reading a manifest", &e)),
        }
    }

    async fn put_json<T: Serialize>(&self, path: &Path, value: &T) -> Result<()> {
        let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
        self.store
            .put(path, PutPayload::from(bytes))
            .await
            .map_err(|e| errors::failure(&self.tier, "writing a manifest", &e))?;
        Ok(())
    }

    /// The upload `id`, if it exists for `bucket` and `key`.
    async fn load_upload(&self, bucket: &str, key: &str, id: &str) -> Result<Upload> {
        if !valid_bucket(bucket) || !valid_id(id) {
            return Err(Error::NoSuchUpload);
        }
        match self.get_json::<UploadRecord>(&self.upload_file(bucket, id, UPLOAD_FILE)).await? {
            Some(record) if record.key == key => Ok(Upload { id: id.to_owned(), record }),
            _ => Err(Error::NoSuchUpload),
        }
    }

    pub(super) async fn create_upload(&self, bucket: &str, key: &str, meta: ObjectMeta) -> Result<String> {
        self.require_bucket(bucket).await?;
        let path = self.object_path(bucket, key)?;
        let store_upload_id = match self.provider {
            // Azure has no upload to start, and takes the properties at commit.
            Provider::Azure => String::new(),
            Provider::S3 | Provider::Gcs => {
                let attributes = metadata::to_attributes(self.provider, &meta, None);
                let opts = PutMultipartOptions { attributes, ..Default::default() };
                let (multipart, started, undo_path) = (self.multipart.clone(), path.clone(), path.clone());
                let undo_store = self.multipart.clone();
                upload_stream::undo_if_dropped(
                    async move { multipart.create_multipart_opts(&started, opts).await },
                    move |id: String| async move {
                        let _ = undo_store.abort_multipart(&undo_path, &id).await;
                    },
                )
                .await
                .map_err(|e| errors::failure(&self.tier, "starting a multipart upload", &e))?
            }
        };
        let id = uuid::Uuid::new_v4().simple().to_string();
        let record = UploadRecord { key: key.to_owned(), initiated: now_millis(), store_upload_id, meta };
        if let Err(e) = self.put_json(&self.upload_file(bucket, &id, UPLOAD_FILE), &record).await {
            self.abort_store_upload(&path, &record.store_upload_id).await;
            return Err(e);
        }
        Ok(id)
    }

    pub(super) async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        n: u32,
        body: ByteStream,
        checks: PutChecks,
    ) -> Result<PartInfo> {
        check_part_number(n)?;
        let upload = self.load_upload(bucket, key, id).await?;
        let path = self.object_path(bucket, key)?;
        let mut body = CheckedBody::new(body, checks);
        let store_parts = match self.provider {
            Provider::Azure => self.put_blocks(&path, &mut body).await?,
            Provider::S3 | Provider::Gcs => {
                let chunks = upload_stream::read_all(&mut body).await?;
                body.finish()?;
                let payload: PutPayload = chunks.into_iter().collect();
                let part = self
                    .multipart
                    .put_part(&path, &upload.record.store_upload_id, (n - 1) as usize, payload)
                    .await
                    .map_err(|e| errors::upload(&self.tier, "uploading a part", e))?;
                vec![part.content_id]
            }
        };
        let md5 = hex::encode(body.finish()?);
        let record = PartRecord { size: body.size(), md5, store_parts, last_modified: now_millis() };
        let part_path = self.upload_file(bucket, id, &part_file(n));
        self.put_json(&part_path, &record).await?;
        // Aborted or completed meanwhile: leave nothing behind.
        if self.get_json::<UploadRecord>(&self.upload_file(bucket, id, UPLOAD_FILE)).await?.is_none() {
            let _ = self.store.delete(&part_path).await;
            return Err(Error::NoSuchUpload);
        }
        Ok(part_info(n, &record))
    }

    /// Store an Azure part as blocks of at most `PART_SIZE`, as the body arrives.
    async fn put_blocks(&self, path: &Path, body: &mut CheckedBody) -> Result<Vec<String>> {
        let mut ids = Vec::new();
        let mut chunks: Vec<Bytes> = Vec::new();
        let mut buffered = 0;
        loop {
            let next = body.next().await?;
            if let Some(chunk) = &next {
                buffered += chunk.len();
                chunks.push(chunk.clone());
            }
            if buffered >= PART_SIZE || (next.is_none() && buffered > 0) {
                let payload: PutPayload = std::mem::take(&mut chunks).into_iter().collect();
                buffered = 0;
                let part = self
                    .multipart
                    .put_part(path, &String::new(), ids.len(), payload)
                    .await
                    .map_err(|e| errors::failure(&self.tier, "uploading a block", &e))?;
                ids.push(part.content_id);
            }
            if next.is_none() {
                return Ok(ids);
            }
        }
    }

    pub(super) async fn list_parts(&self, bucket: &str, key: &str, id: &str) -> Result<Vec<PartInfo>> {
        self.load_upload(bucket, key, id).await?;
        let names = self.list_names(&format!("{}{id}/part-", self.uploads_prefix(bucket))).await?;
        let mut numbers: Vec<u32> = names
            .iter()
            .filter_map(|name| name.rsplit('/').next())
            .filter_map(|file| file.strip_prefix("part-")?.strip_suffix(".json")?.parse().ok())
            .filter(|n| (1..=MAX_PARTS).contains(n))
            .collect();
        numbers.sort_unstable();
        let parts: Vec<Option<PartInfo>> = stream::iter(numbers)
            .map(|n| async move {
                let record = self.get_json::<PartRecord>(&self.upload_file(bucket, id, &part_file(n))).await?;
                Ok::<_, Error>(record.map(|r| part_info(n, &r)))
            })
            .buffered(FAN_OUT)
            .try_collect()
            .await?;
        Ok(parts.into_iter().flatten().collect())
    }

    pub(super) async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        id: &str,
        parts: &[(u32, String)],
    ) -> Result<ObjectInfo> {
        let upload = self.load_upload(bucket, key, id).await?;
        if parts.is_empty() {
            return Err(Error::InvalidPart("a completion must name at least one part".to_owned()));
        }
        if parts.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(Error::InvalidPartOrder);
        }
        let records: Vec<PartRecord> = stream::iter(parts.iter().cloned())
            .map(|(n, etag)| async move {
                check_part_number(n)?;
                match self.get_json::<PartRecord>(&self.upload_file(bucket, id, &part_file(n))).await? {
                    Some(r) if etag_matches(&r.md5, &etag) => Ok(r),
                    Some(_) => {
                        Err(Error::InvalidPart(format!("part {n}: the ETag {etag} does not match the part uploaded")))
                    }
                    None => Err(Error::InvalidPart(format!("part {n} has not been uploaded"))),
                }
            })
            .buffered(FAN_OUT)
            .try_collect()
            .await?;
        if records[..records.len() - 1].iter().any(|r| r.size < MIN_PART_SIZE) {
            return Err(Error::EntityTooSmall);
        }
        let mut md5s = Md5::new();
        for r in &records {
            let binary = hex::decode(&r.md5).map_err(|_| {
                Error::Io(std::io::Error::other(format!("tier {}: a part manifest has a malformed MD5", self.tier)))
            })?;
            md5s.update(&binary);
        }
        let coffer_etag = format!("{}-{}", hex::encode(md5s.finalize()), records.len());
        let path = self.object_path(bucket, key)?;
        let store_upload_id = &upload.record.store_upload_id;
        let etag = match self.provider {
            Provider::Azure => {
                let blocks: Vec<String> = records.iter().flat_map(|r| r.store_parts.iter().cloned()).collect();
                let attributes = metadata::to_attributes(self.provider, &upload.record.meta, Some(&coffer_etag));
                self.raw.commit_blocks(&self.tier, &path, &blocks, &attributes).await?;
                coffer_etag
            }
            Provider::S3 | Provider::Gcs => {
                let in_order = parts.iter().enumerate().all(|(i, (n, _))| *n as usize == i + 1);
                let store_etag = if in_order {
                    let ids = records
                        .iter()
                        .map(|r| PartId { content_id: r.store_parts.first().cloned().unwrap_or_default() })
                        .collect();
                    let result = self
                        .multipart
                        .complete_multipart(&path, store_upload_id, ids)
                        .await
                        .map_err(|e| errors::upload(&self.tier, "completing a multipart upload", e))?;
                    metadata::strip_etag(result.e_tag.as_deref().unwrap_or_default())
                } else {
                    let numbered: Vec<(u32, String)> = parts
                        .iter()
                        .zip(&records)
                        .map(|((n, _), r)| (*n, r.store_parts.first().cloned().unwrap_or_default()))
                        .collect();
                    self.raw.complete_parts(&self.tier, &path, store_upload_id, &numbered).await?
                };
                if self.provider == Provider::S3 && store_etag != coffer_etag {
                    tracing::warn!(tier = %self.tier, store_etag, coffer_etag,
                        "S3 computed another multipart ETag (encrypted bucket?); reporting S3's");
                }
                store_etag
            }
        };
        let size = records.iter().map(|r| r.size).sum();
        self.remove_manifests(bucket, id).await;
        Ok(ObjectInfo {
            key: key.to_owned(),
            size,
            etag,
            last_modified: whole_seconds(SystemTime::now()),
            meta: upload.record.meta,
        })
    }

    pub(super) async fn abort_upload(&self, bucket: &str, key: &str, id: &str) -> Result<()> {
        let upload = self.load_upload(bucket, key, id).await?;
        if let Ok(path) = self.object_path(bucket, key) {
            self.abort_store_upload(&path, &upload.record.store_upload_id).await;
        }
        self.remove_manifests(bucket, id).await;
        Ok(())
    }

    /// Abort the store's multipart upload; a failure only leaves invisible parts behind.
    async fn abort_store_upload(&self, path: &Path, store_upload_id: &String) {
        if self.provider == Provider::Azure {
            return; // uncommitted blocks expire by themselves
        }
        match self.multipart.abort_multipart(path, store_upload_id).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(tier = %self.tier, error = %e, "could not abort a multipart upload in the store"),
        }
    }

    /// Remove an upload's manifests: the parts first, `upload.json` last (so a crash leaves
    /// an upload that can still be listed and aborted).
    async fn remove_manifests(&self, bucket: &str, id: &str) {
        let prefix = format!("{}{id}/", self.uploads_prefix(bucket));
        let names = match self.list_names(&prefix).await {
            Ok(names) => names,
            Err(e) => {
                tracing::warn!(tier = %self.tier, upload = id, error = %e, "could not list an upload's manifests");
                return;
            }
        };
        let upload_file = format!("{prefix}{UPLOAD_FILE}");
        let parts: Vec<String> = names.into_iter().filter(|n| *n != upload_file).collect();
        let results: Vec<std::result::Result<(), object_store::Error>> = stream::iter(parts)
            .map(|name| async move {
                let Ok(path) = Path::parse(&name) else { return Ok(()) };
                match self.store.delete(&path).await {
                    Err(object_store::Error::NotFound { .. }) => Ok(()),
                    r => r,
                }
            })
            .buffer_unordered(FAN_OUT)
            .collect()
            .await;
        if let Some(Err(e)) = results.into_iter().find(|r| r.is_err()) {
            tracing::warn!(tier = %self.tier, upload = id, error = %e, "could not remove a part manifest");
            return;
        }
        match self.store.delete(&self.upload_file(bucket, id, UPLOAD_FILE)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => tracing::warn!(tier = %self.tier, upload = id, error = %e, "could not remove an upload manifest"),
        }
    }

    /// Every name below `prefix` (all pages).
    async fn list_names(&self, prefix: &str) -> Result<Vec<String>> {
        let mut names = Vec::new();
        let mut token = None;
        loop {
            let opts = PaginatedListOptions { page_token: token, max_keys: Some(1000), ..Default::default() };
            let page = self
                .lister
                .list_paginated(Some(prefix), opts)
                .await
                .map_err(|e| errors::failure(&self.tier, "listing manifests", &e))?;
            names.extend(page.result.objects.into_iter().map(|m| m.location.to_string()));
            token = page.page_token;
            if token.is_none() {
                return Ok(names);
            }
        }
    }

    /// Every upload of a bucket: (id, record).
    async fn bucket_uploads(&self, bucket: &str) -> Result<Vec<Upload>> {
        let prefix = self.uploads_prefix(bucket);
        let ids: Vec<String> = self
            .list_names(&prefix)
            .await?
            .into_iter()
            .filter_map(|name| {
                let rest = name.strip_prefix(&prefix)?;
                let (id, file) = rest.split_once('/')?;
                (file == UPLOAD_FILE && valid_id(id)).then(|| id.to_owned())
            })
            .collect();
        let uploads: Vec<Option<Upload>> = stream::iter(ids)
            .map(|id| async move {
                let record = self.get_json::<UploadRecord>(&self.upload_file(bucket, &id, UPLOAD_FILE)).await?;
                Ok::<_, Error>(record.map(|record| Upload { id, record }))
            })
            .buffered(FAN_OUT)
            .try_collect()
            .await?;
        Ok(uploads.into_iter().flatten().collect())
    }

    pub(super) async fn list_uploads(&self, bucket: &str, prefix: &str) -> Result<Vec<UploadInfo>> {
        self.require_bucket(bucket).await?;
        let mut found: Vec<(String, u64, String)> = self
            .bucket_uploads(bucket)
            .await?
            .into_iter()
            .filter(|u| u.record.key.starts_with(prefix))
            .map(|u| (u.record.key, u.record.initiated, u.id))
            .collect();
        found.sort();
        Ok(found
            .into_iter()
            .map(|(key, initiated, upload_id)| UploadInfo { key, upload_id, initiated: from_millis(initiated) })
            .collect())
    }

    /// Abort every upload of a bucket (when it is deleted).
    pub(super) async fn abort_bucket_uploads(&self, bucket: &str) -> Result<()> {
        for upload in self.bucket_uploads(bucket).await? {
            if let Ok(path) = self.object_path(bucket, &upload.record.key) {
                self.abort_store_upload(&path, &upload.record.store_upload_id).await;
            }
            self.remove_manifests(bucket, &upload.id).await;
        }
        Ok(())
    }
}

fn part_info(n: u32, r: &PartRecord) -> PartInfo {
    PartInfo { part_number: n, etag: r.md5.clone(), size: r.size, last_modified: from_millis(r.last_modified) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_part_names() {
        assert!(valid_id(&uuid::Uuid::new_v4().simple().to_string()));
        for bad in ["", "../x", "0123456789ABCDEF0123456789ABCDEF", "0123456789abcdef0123456789abcde/"] {
            assert!(!valid_id(bad));
        }
        assert_eq!(part_file(7), "part-00007.json");
        assert!(etag_matches("abc", "\"ABC\""));
        assert!(check_part_number(0).is_err() && check_part_number(10_001).is_err() && check_part_number(1).is_ok());
    }
}
