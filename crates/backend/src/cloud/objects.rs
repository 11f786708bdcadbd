//! Objects: put (one PUT or a streamed multipart upload), head, get, delete, copy.
//!
//! coffer's ETag of an object is the `coffer-etag` metadata when the object has it (single
//! PUTs: the MD5 of the body; Azure multipart completions: the MD5 of the part MD5s), else
//! the store's own ETag without quotes. Every read (head, get, list) applies this rule, so
//! it reports what put or complete returned.

use std::time::SystemTime;

use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, GetResult, MultipartUpload, ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload,
    WriteMultipart,
};

use super::metadata::Provider;
use super::upload_stream::{self, AbortOnDrop, CheckedBody, Head, PART_SIZE, PARTS_IN_FLIGHT};
use super::{Inner, errors, metadata, whole_seconds};
use crate::{ByteRange, ByteStream, Error, ObjectInfo, ObjectMeta, PutChecks, Result};

impl Inner {
    /// The info of an object from a GET or HEAD answer.
    pub(super) fn info_from(&self, key: &str, result: &GetResult) -> ObjectInfo {
        let (meta, coffer_etag) = metadata::from_attributes(self.provider, &result.attributes);
        let etag =
            coffer_etag.unwrap_or_else(|| metadata::strip_etag(result.meta.e_tag.as_deref().unwrap_or_default()));
        ObjectInfo {
            key: key.to_owned(),
            size: result.meta.size,
            etag,
            last_modified: whole_seconds(SystemTime::from(result.meta.last_modified)),
            meta,
        }
    }

    /// HEAD a store path (object_store's `head` does not return attributes).
    pub(super) async fn head_path(
        &self,
        key: &str,
        path: &Path,
    ) -> std::result::Result<ObjectInfo, object_store::Error> {
        let result = self.store.get_opts(path, GetOptions { head: true, ..Default::default() }).await?;
        Ok(self.info_from(key, &result))
    }

    pub(super) async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        body: ByteStream,
        checks: PutChecks,
    ) -> Result<ObjectInfo> {
        self.require_bucket(bucket).await?;
        let path = self.object_path(bucket, key)?;
        self.put_stream(key, &path, meta, body, checks).await
    }

    /// Store a body at `path`: one PUT when it fits in a part, a streamed multipart upload
    /// otherwise.
    pub(super) async fn put_stream(
        &self,
        key: &str,
        path: &Path,
        meta: ObjectMeta,
        body: ByteStream,
        checks: PutChecks,
    ) -> Result<ObjectInfo> {
        let mut body = CheckedBody::new(body, checks);
        let first = match upload_stream::read_head(&mut body, PART_SIZE).await? {
            Head::Whole(chunks) => {
                let md5 = hex::encode(body.finish()?);
                let attributes = metadata::to_attributes(self.provider, &meta, Some(&md5));
                let opts = PutOptions { attributes, ..Default::default() };
                let payload: PutPayload = chunks.into_iter().collect();
                self.store.put_opts(path, payload, opts).await.map_err(|e| errors::failure(&self.tier, "put", &e))?;
                return Ok(ObjectInfo {
                    key: key.to_owned(),
                    size: body.size(),
                    etag: md5,
                    last_modified: whole_seconds(SystemTime::now()),
                    meta,
                });
            }
            Head::Partial(chunks) => chunks,
        };
        let attributes = metadata::to_attributes(self.provider, &meta, None);
        let opts = PutMultipartOptions { attributes, ..Default::default() };
        let (store, started) = (self.store.clone(), path.clone());
        let tier = self.tier.clone();
        let upload = upload_stream::undo_if_dropped(
            async move { store.put_multipart_opts(&started, opts).await },
            move |mut upload: Box<dyn MultipartUpload>| async move {
                if let Err(e) = upload.abort().await {
                    tracing::warn!(tier = %tier, error = %e, "could not abort a multipart upload in the store");
                }
            },
        )
        .await
        .map_err(|e| errors::failure(&self.tier, "starting a multipart put", &e))?;
        let mut upload = AbortOnDrop::new(WriteMultipart::new_with_chunk_size(upload, PART_SIZE), &self.tier);
        for chunk in first {
            upload.writer().put(chunk);
        }
        loop {
            if let Err(e) = upload.writer().wait_for_capacity(PARTS_IN_FLIGHT).await {
                upload.abort().await;
                return Err(errors::failure(&self.tier, "uploading a part", &e));
            }
            match body.next().await {
                Ok(Some(chunk)) => upload.writer().put(chunk),
                Ok(None) => break,
                Err(e) => {
                    upload.abort().await;
                    return Err(e);
                }
            }
        }
        if let Err(e) = body.finish() {
            upload.abort().await;
            return Err(e);
        }
        // The whole body arrived and passed the checks: complete even if the request is
        // dropped now (`finish` aborts the upload itself when it fails).
        let writer = upload.take();
        let result = match tokio::spawn(writer.finish()).await {
            Ok(r) => r,
            Err(e) => Err(object_store::Error::JoinError { source: e }),
        }
        .map_err(|e| errors::failure(&self.tier, "completing a put", &e))?;
        Ok(ObjectInfo {
            key: key.to_owned(),
            size: body.size(),
            etag: metadata::strip_etag(result.e_tag.as_deref().unwrap_or_default()),
            last_modified: whole_seconds(SystemTime::now()),
            meta,
        })
    }

    pub(super) async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectInfo> {
        let path = match self.object_path(bucket, key) {
            Ok(p) => p,
            Err(Error::KeyTooLong) => return Err(self.missing(bucket, Error::NoSuchKey).await),
            Err(e) => return Err(e),
        };
        match self.head_path(key, &path).await {
            Ok(info) => Ok(info),
            Err(object_store::Error::NotFound { .. }) => Err(self.missing(bucket, Error::NoSuchKey).await),
            Err(e) => Err(errors::failure(&self.tier, "head", &e)),
        }
    }

    pub(super) async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<(ObjectInfo, (u64, u64), ByteStream)> {
        let path = match self.object_path(bucket, key) {
            Ok(p) => p,
            Err(Error::KeyTooLong) => return Err(self.missing(bucket, Error::NoSuchKey).await),
            Err(e) => return Err(e),
        };
        let get_range = match range {
            None => None,
            Some(ByteRange::FromTo { first, last: Some(last) }) if last < first => return Err(Error::InvalidRange),
            Some(ByteRange::FromTo { first, last: Some(last) }) => {
                Some(GetRange::Bounded(first..last.saturating_add(1)))
            }
            Some(ByteRange::FromTo { first, last: None }) => Some(GetRange::Offset(first)),
            Some(ByteRange::Suffix { len: 0 }) => return Err(Error::InvalidRange),
            Some(ByteRange::Suffix { len }) => Some(GetRange::Suffix(len)),
        };
        let mut attempts = 0;
        let result = loop {
            attempts += 1;
            let (get_range, if_match) = match (self.provider, range) {
                // object_store cannot ask Azure for a suffix: ask for the bytes it names in
                // the object as it is now, and only if it is still that object.
                (Provider::Azure, Some(ByteRange::Suffix { len })) => match self.store.head(&path).await {
                    Ok(meta) if meta.size == 0 => return Err(Error::InvalidRange),
                    Ok(meta) => (Some(GetRange::Bounded(meta.size.saturating_sub(len)..meta.size)), meta.e_tag),
                    Err(object_store::Error::NotFound { .. }) => {
                        return Err(self.missing(bucket, Error::NoSuchKey).await);
                    }
                    Err(e) => return Err(errors::object(&self.tier, "get", e)),
                },
                _ => (get_range.clone(), None),
            };
            match self.store.get_opts(&path, GetOptions { range: get_range, if_match, ..Default::default() }).await {
                Ok(r) => break r,
                Err(object_store::Error::NotFound { .. }) => return Err(self.missing(bucket, Error::NoSuchKey).await),
                // Replaced between the HEAD and the GET: again.
                Err(object_store::Error::Precondition { .. }) if attempts < 3 => continue,
                Err(e) => {
                    // Any range of an empty object is unsatisfiable, however the store
                    // words it (Azurite answers `bytes 0--1/0`).
                    if range.is_some()
                        && let Ok(meta) = self.store.head(&path).await
                        && meta.size == 0
                    {
                        return Err(Error::InvalidRange);
                    }
                    return Err(errors::object(&self.tier, "get", e));
                }
            }
        };
        let info = self.info_from(key, &result);
        // What the store returned must be what the range selects in this object.
        let resolved = match range {
            Some(r) => r.resolve(info.size)?,
            None => (0, info.size),
        };
        if (result.range.start, result.range.end) != resolved {
            return Err(Error::Io(std::io::Error::other(format!(
                "tier {}: asked for bytes {resolved:?}, the store sent {:?}",
                self.tier, result.range
            ))));
        }
        let tier = self.tier.clone();
        let stream = result
            .into_stream()
            .map_err(move |e| std::io::Error::other(format!("tier {tier}: reading an object failed: {e}")));
        Ok((info, resolved, Box::pin(stream)))
    }

    pub(super) async fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        self.require_bucket(bucket).await?;
        let Ok(path) = self.object_path(bucket, key) else {
            return Ok(()); // a key the store cannot name is not stored
        };
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(errors::failure(&self.tier, "delete", &e)),
        }
    }

    pub(super) async fn copy_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        meta: Option<ObjectMeta>,
    ) -> Result<ObjectInfo> {
        self.require_bucket(src_bucket).await?;
        self.require_bucket(dst_bucket).await?;
        let Ok(src) = self.object_path(src_bucket, src_key) else { return Err(Error::NoSuchKey) };
        let dst = self.object_path(dst_bucket, dst_key)?;
        match meta {
            // Same metadata: a copy inside the store, which keeps the metadata (and the
            // `coffer-etag`, still right since the bytes are the same).
            None => {
                if src != dst {
                    self.store.copy(&src, &dst).await.map_err(|e| errors::object(&self.tier, "copy", e))?;
                }
                self.head_path(dst_key, &dst).await.map_err(|e| errors::object(&self.tier, "copy", e))
            }
            // New metadata: stream the bytes through (the stores' copy cannot replace them
            // through object_store), like a put.
            Some(meta) => {
                let (info, _, body) = self.get_object(src_bucket, src_key, None).await?;
                let checks = PutChecks { expected_size: Some(info.size), ..Default::default() };
                // The body is the store's own: its failures are the store's, not a client's.
                self.put_stream(dst_key, &dst, meta, body, checks).await.map_err(|e| match e {
                    Error::Body(e) => Error::Io(std::io::Error::other(format!(
                        "tier {}: copying failed while reading the source: {e}",
                        self.tier
                    ))),
                    Error::IncompleteBody => Error::Io(std::io::Error::other(format!(
                        "tier {}: the source of a copy changed while it was read",
                        self.tier
                    ))),
                    e => e,
                })
            }
        }
    }
}
