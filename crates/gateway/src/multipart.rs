//! Multipart use cases: CreateMultipartUpload, UploadPart, UploadPartCopy,
//! CompleteMultipartUpload, AbortMultipartUpload, ListParts, ListMultipartUploads.

use coffer_backend::{ByteRange, ByteStream, MAX_PARTS, ObjectInfo, ObjectMeta, PartInfo, UploadInfo};
use coffer_core::Action;

use crate::objects::{optional, parse_key};
use crate::{Caller, Conditions, Error, Gateway, Result};

fn check_part_number(n: i64) -> Result<u32> {
    if (1..=i64::from(MAX_PARTS)).contains(&n) {
        Ok(n as u32)
    } else {
        Err(Error::InvalidArgument("Part number must be an integer between 1 and 10000, inclusive".into()))
    }
}

/// The ETag S3 gives the object completed from these parts: the MD5 of the parts' binary
/// MD5s, then `-N`. `None` if a part's ETag is not an MD5.
fn multipart_etag(parts: &[(u32, String)]) -> Option<String> {
    use md5::{Digest, Md5};
    let mut h = Md5::new();
    for (_, etag) in parts {
        let raw = hex::decode(etag).ok().filter(|b| b.len() == 16)?;
        h.update(raw);
    }
    Some(format!("{}-{}", hex::encode(h.finalize()), parts.len()))
}

impl Gateway {
    pub async fn create_multipart_upload(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
    ) -> Result<String> {
        let (bucket, key) = self.route(bucket, key)?;
        parse_key(key)?;
        let b = self.authorize(caller, bucket, Some(key), Action::Write).await?;
        Ok(self.tier(&b.tier)?.create_multipart_upload(bucket, key, meta).await?)
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: i64,
        content_md5: Option<&str>,
        content_length: Option<u64>,
        body: ByteStream,
    ) -> Result<PartInfo> {
        let part_number = check_part_number(part_number)?;
        let (bucket, key) = self.route(bucket, key)?;
        let b = self.authorize(caller, bucket, Some(key), Action::Write).await?;
        let checks = self.checks(content_md5, content_length)?;
        Ok(self.tier(&b.tier)?.upload_part(bucket, key, upload_id, part_number, body, checks).await?)
    }

    /// UploadPartCopy: a part made of (a range of) another object.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part_copy(
        &self,
        caller: &Caller,
        src: (&str, &str),
        dst: (&str, &str),
        upload_id: &str,
        part_number: i64,
        range: Option<ByteRange>,
        source_conditions: &Conditions,
    ) -> Result<PartInfo> {
        let part_number = check_part_number(part_number)?;
        let src = self.route_read(src.0, src.1)?;
        let dst = self.route(dst.0, dst.1)?;
        let (sb, db) = self.authorize_copy(caller, src, dst).await?;
        let source = self.tier(&sb.tier)?;
        let info = source.head_object(src.0, src.1).await?;
        source_conditions.check_copy_source(&info)?;
        // Unlike a GET's Range, a copy-source range must lie within the source.
        if let Some(ByteRange::FromTo { first, last }) = range
            && (first >= info.size || last.is_some_and(|l| l >= info.size))
        {
            return Err(Error::InvalidRange);
        }
        let (_, (start, end), body) = source.get_object(src.0, src.1, range).await?;
        let checks = self.checks(None, Some(end - start))?;
        Ok(self.tier(&db.tier)?.upload_part(dst.0, dst.1, upload_id, part_number, body, checks).await?)
    }

    /// CompleteMultipartUpload with the client's list of (part number, ETag).
    pub async fn complete_multipart_upload(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<(i64, String)>,
        conditions: &Conditions,
    ) -> Result<ObjectInfo> {
        let (bucket, key) = self.route(bucket, key)?;
        let b = self.authorize(caller, bucket, Some(key), Action::Write).await?;
        if parts.is_empty() {
            return Err(Error::InvalidRequest("You must specify at least one part".into()));
        }
        let mut list = Vec::with_capacity(parts.len());
        for (n, etag) in parts {
            list.push((check_part_number(n)?, etag.trim_matches('"').to_owned()));
        }
        let backend = self.tier(&b.tier)?;
        if !conditions.is_empty() {
            conditions.check_write(optional(backend.head_object(bucket, key).await)?.as_ref())?;
        }
        let adm = if self.limits(bucket).await?.is_empty() {
            self.admit(&b, key, None).await?
        } else {
            // The object will be as large as the named parts.
            let sizes = match backend.list_parts(bucket, key, upload_id).await {
                Ok(p) => p,
                Err(coffer_backend::Error::NoSuchUpload) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            let total =
                list.iter().filter_map(|(n, _)| sizes.iter().find(|p| p.part_number == *n)).map(|p| p.size).sum();
            self.admit(&b, key, Some(total)).await?
        };
        match backend.complete_multipart_upload(bucket, key, upload_id, &list).await {
            // A retried complete (the first answer was lost) finds the upload gone; if the
            // object is the one these parts make, answer as the first time, as S3 does.
            Err(coffer_backend::Error::NoSuchUpload) => match optional(backend.head_object(bucket, key).await)? {
                Some(info) if multipart_etag(&list).is_some_and(|e| e == info.etag) => Ok(info),
                _ => Err(Error::NoSuchUpload),
            },
            other => {
                let info = other?;
                self.account_write(bucket, &adm, info.size).await;
                Ok(info)
            }
        }
    }

    pub async fn abort_multipart_upload(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<()> {
        let (bucket, key) = self.route(bucket, key)?;
        let b = self.authorize(caller, bucket, Some(key), Action::Delete).await?;
        Ok(self.tier(&b.tier)?.abort_multipart_upload(bucket, key, upload_id).await?)
    }

    /// ListParts: the parts after `marker`, at most `max`; and whether more follow.
    pub async fn list_parts(
        &self,
        caller: &Caller,
        bucket: &str,
        key: &str,
        upload_id: &str,
        marker: u32,
        max: usize,
    ) -> Result<(Vec<PartInfo>, bool)> {
        let (bucket, key) = self.route(bucket, key).map_err(|_| Error::NoSuchUpload)?;
        let b = self.authorize(caller, bucket, Some(key), Action::List).await?;
        let all = self.tier(&b.tier)?.list_parts(bucket, key, upload_id).await?;
        let mut rest: Vec<PartInfo> = all.into_iter().filter(|p| p.part_number > marker).collect();
        let truncated = rest.len() > max;
        rest.truncate(max);
        Ok((rest, truncated))
    }

    /// ListMultipartUploads: uploads under `prefix` after (key_marker, upload_id_marker), at
    /// most `max`; and whether more follow.
    pub async fn list_multipart_uploads(
        &self,
        caller: &Caller,
        bucket: &str,
        prefix: &str,
        key_marker: Option<&str>,
        upload_id_marker: Option<&str>,
        max: usize,
    ) -> Result<(Vec<UploadInfo>, bool)> {
        if self.is_home(bucket) {
            // Through the view: the uploads of the one bucket the prefix names.
            let Some((inner, rest)) = prefix.split_once('/') else { return Ok((Vec::new(), false)) };
            let root = format!("{inner}/");
            let km = key_marker.map(|k| k.strip_prefix(root.as_str()).unwrap_or(""));
            let (mut uploads, more) =
                match Box::pin(self.list_multipart_uploads(caller, inner, rest, km, upload_id_marker, max)).await {
                    Ok(r) => r,
                    Err(Error::AccessDenied | Error::NoSuchBucket) => return Ok((Vec::new(), false)),
                    Err(e) => return Err(e),
                };
            for u in &mut uploads {
                u.key = format!("{root}{}", u.key);
            }
            return Ok((uploads, more));
        }
        let b = self.authorize(caller, bucket, None, Action::List).await?;
        let all = self.tier(&b.tier)?.list_multipart_uploads(bucket, prefix).await?;
        let mut rest: Vec<UploadInfo> = match key_marker {
            None => all,
            Some(km) => {
                // Keys after the marker; with an upload id marker, also the later uploads of
                // the marker key itself.
                let mut past_id = false;
                all.into_iter()
                    .filter(|u| {
                        if u.key.as_str() > km {
                            return true;
                        }
                        if u.key == km
                            && let Some(id) = upload_id_marker
                        {
                            if past_id {
                                return true;
                            }
                            past_id = u.upload_id == id;
                        }
                        false
                    })
                    .collect()
            }
        };
        let truncated = rest.len() > max;
        rest.truncate(max);
        Ok((rest, truncated))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_etags_are_md5_of_md5s() {
        // Two parts whose MD5s are those of "a" and "b".
        let parts = vec![
            (1, "0cc175b9c0f1b6a831c399e269772661".to_owned()),
            (2, "92eb5ffee6ae2fec3ad71c777531578f".to_owned()),
        ];
        let mut concat = hex::decode(&parts[0].1).unwrap();
        concat.extend(hex::decode(&parts[1].1).unwrap());
        use md5::{Digest, Md5};
        let want = format!("{}-2", hex::encode(Md5::digest(&concat)));
        assert_eq!(multipart_etag(&parts).unwrap(), want);
        assert_eq!(multipart_etag(&[(1, "not-md5".into())]), None);
    }
}
