//! Object use cases: PutObject, HeadObject, GetObject, DeleteObject(s), CopyObject and the
//! listings. Bodies stream from the front end to the backend and back; nothing here holds
//! an object in memory.

use base64::Engine;
use coffer_backend::{ByteRange, ByteStream, ListPage, ListQuery, ObjectInfo, ObjectMeta, PutChecks};
use coffer_core::{Action, ObjectKey};

use crate::{Caller, Conditions, Error, Gateway, Result};

/// What accompanies a PutObject body.
#[derive(Debug, Clone, Default)]
pub struct PutInput {
    pub meta: ObjectMeta,
    /// The `Content-MD5` header as sent (base64).
    pub content_md5: Option<String>,
    /// The announced (decoded) length, when known.
    pub content_length: Option<u64>,
    pub conditions: Conditions,
}

/// What accompanies a CopyObject.
#[derive(Debug, Clone, Default)]
pub struct CopyInput {
    /// `Some` for `x-amz-metadata-directive: REPLACE`.
    pub replace_meta: Option<ObjectMeta>,
    /// `x-amz-copy-source-if-*`.
    pub source_conditions: Conditions,
}

pub(crate) fn parse_key(key: &str) -> Result<()> {
    ObjectKey::parse(key).map(|_| ()).map_err(|e| {
        if key.len() > ObjectKey::MAX_LEN { Error::KeyTooLong } else { Error::InvalidArgument(e.to_string()) }
    })
}

pub(crate) fn decode_md5(content_md5: Option<&str>) -> Result<Option<[u8; 16]>> {
    let Some(s) = content_md5 else { return Ok(None) };
    let bytes = base64::engine::general_purpose::STANDARD.decode(s.trim()).map_err(|_| Error::InvalidDigest)?;
    let arr: [u8; 16] = bytes.try_into().map_err(|_| Error::InvalidDigest)?;
    Ok(Some(arr))
}

impl Gateway {
    pub(crate) fn checks(&self, content_md5: Option<&str>, content_length: Option<u64>) -> Result<PutChecks> {
        if content_length.is_some_and(|n| n > self.max_object_size) {
            return Err(Error::EntityTooLarge);
        }
        Ok(PutChecks {
            content_md5: decode_md5(content_md5)?,
            expected_size: content_length,
            max_size: self.max_object_size,
        })
    }

    /// PutObject: stream `body` into the bucket's tier, atomically.
    pub async fn put_object(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        input: PutInput,
        body: ByteStream,
    ) -> Result<ObjectInfo> {
        let (bucket, key) = self.route(bucket, key)?;
        parse_key(key)?;
        let b = self.authorize(caller, bucket, Some(key), Action::Write).await?;
        let checks = self.checks(input.content_md5.as_deref(), input.content_length)?;
        let backend = self.tier(&b.tier)?;
        if !input.conditions.is_empty() {
            let existing = optional(backend.head_object(bucket, key).await)?;
            input.conditions.check_write(existing.as_ref())?;
        }
        let adm = self.admit(&b, key, input.content_length).await?;
        let body = self.limit_body(&adm, body);
        let info = backend
            .put_object(bucket, key, input.meta, body, checks)
            .await
            .map_err(|e| self.write_failed(&adm, e.into()))?;
        self.account_write(bucket, &adm, info.size).await;
        Ok(info)
    }

    /// HeadObject, with preconditions.
    pub async fn head_object(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        conditions: &Conditions,
    ) -> Result<ObjectInfo> {
        let (bucket, key) = self.route_read(bucket, key)?;
        let b = self.authorize(caller, bucket, Some(key), Action::Read).await?;
        let info = self.tier(&b.tier)?.head_object(bucket, key).await?;
        conditions.check_read(&info)?;
        Ok(info)
    }

    /// GetObject: preconditions first, then the (range of the) body.
    /// Returns the object's info, the half-open range served and the stream.
    pub async fn get_object(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
        conditions: &Conditions,
    ) -> Result<(ObjectInfo, (u64, u64), ByteStream)> {
        let (bucket, key) = self.route_read(bucket, key)?;
        let b = self.authorize(caller, bucket, Some(key), Action::Read).await?;
        let backend = self.tier(&b.tier)?;
        if !conditions.is_empty() {
            conditions.check_read(&backend.head_object(bucket, key).await?)?;
        }
        Ok(backend.get_object(bucket, key, range).await?)
    }

    /// DeleteObject: succeeds whether or not the key exists.
    pub async fn delete_object(&self, caller: &Caller, bucket: &str, key: &str) -> Result<()> {
        let (bucket, key) = self.route(bucket, key)?;
        let b = self.authorize(caller, bucket, Some(key), Action::Delete).await?;
        let size = self.size_before_delete(&b, key).await?;
        self.tier(&b.tier)?.delete_object(bucket, key).await?;
        self.account_delete(bucket, size).await;
        Ok(())
    }

    /// DeleteObjects: one authorization for the bucket, one result per key, in order.
    pub async fn delete_objects(
        &self,
        caller: &Caller,
        bucket: &str,
        keys: &[String],
    ) -> Result<Vec<(String, Result<()>)>> {
        if self.is_home(bucket) {
            // Through the view each key may be in another bucket: one at a time.
            let mut out = Vec::with_capacity(keys.len());
            for k in keys {
                out.push((k.clone(), self.delete_object(caller, bucket, k).await));
            }
            return Ok(out);
        }
        let b = match self.authorize(caller, bucket, None, Action::Delete).await {
            Ok(b) => b,
            Err(Error::AccessDenied) => {
                return Ok(keys.iter().map(|k| (k.clone(), Err(Error::AccessDenied))).collect());
            }
            Err(e) => return Err(e),
        };
        let backend = self.tier(&b.tier)?;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let r = match self.size_before_delete(&b, k).await {
                Ok(size) => match backend.delete_object(bucket, k).await {
                    Ok(()) => {
                        self.account_delete(bucket, size).await;
                        Ok(())
                    }
                    Err(e) => Err(Error::from(e)),
                },
                Err(e) => Err(e),
            };
            out.push((k.clone(), r));
        }
        Ok(out)
    }

    /// CopyObject: read on the source, write on the destination, one classification.
    pub async fn copy_object(
        &self,
        caller: &Caller,
        src: (&str, &str),
        dst: (&str, &str),
        input: CopyInput,
    ) -> Result<ObjectInfo> {
        let src = self.route_read(src.0, src.1)?;
        let dst = self.route(dst.0, dst.1)?;
        parse_key(dst.1)?;
        let (sb, db) = self.authorize_copy(caller, src, dst).await?;
        if src == dst && input.replace_meta.is_none() {
            return Err(Error::InvalidRequest(
                "This copy request is illegal because it is trying to copy an object to itself without \
                 changing the object's metadata, storage class, website redirect location or encryption attributes."
                    .into(),
            ));
        }
        let source = self.tier(&sb.tier)?;
        let info = source.head_object(src.0, src.1).await?;
        input.source_conditions.check_copy_source(&info)?;
        if info.size > self.max_object_size {
            return Err(Error::InvalidRequest(format!(
                "The specified copy source is larger than the maximum allowable size for a copy source: {}",
                self.max_object_size
            )));
        }
        let adm = self.admit(&db, dst.1, Some(info.size)).await?;
        let copied = if sb.tier == db.tier {
            source.copy_object(src.0, src.1, dst.0, dst.1, input.replace_meta).await?
        } else {
            // Across tiers: stream through this process.
            let (info, _, body) = source.get_object(src.0, src.1, None).await?;
            let meta = input.replace_meta.unwrap_or(info.meta);
            let checks =
                PutChecks { content_md5: None, expected_size: Some(info.size), max_size: self.max_object_size };
            self.tier(&db.tier)?.put_object(dst.0, dst.1, meta, body, checks).await?
        };
        self.account_write(dst.0, &adm, copied.size).await;
        Ok(copied)
    }

    /// ListObjects / ListObjectsV2 / ListObjectVersions: one page, and the bucket (its
    /// owner is the objects' owner).
    pub async fn list_objects(
        &self,
        caller: &Caller,
        bucket: &str,
        query: &ListQuery,
    ) -> Result<(coffer_core::Bucket, ListPage)> {
        if self.is_home(bucket) {
            return self.list_home(caller, query).await;
        }
        self.list_bucket(caller, bucket, query).await
    }

    /// One page of a (real) bucket.
    pub(crate) async fn list_bucket(
        &self,
        caller: &Caller,
        bucket: &str,
        query: &ListQuery,
    ) -> Result<(coffer_core::Bucket, ListPage)> {
        let b = self.authorize(caller, bucket, None, Action::List).await?;
        if query.max_keys == 0 {
            return Ok((b, ListPage::default()));
        }
        let page = self.tier(&b.tier)?.list_objects(bucket, query).await?;
        Ok((b, page))
    }
}

/// `Ok(None)` for a missing object.
pub(crate) fn optional(r: coffer_backend::Result<ObjectInfo>) -> Result<Option<ObjectInfo>> {
    match r {
        Ok(i) => Ok(Some(i)),
        Err(coffer_backend::Error::NoSuchKey) => Ok(None),
        Err(e) => Err(e.into()),
    }
}
