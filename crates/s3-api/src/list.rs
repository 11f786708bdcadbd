//! ListObjects (V1), ListObjectsV2 and ListObjectVersions (answered as for an unversioned
//! bucket: every object is its own current version `null`).

use coffer_backend::{ListEntry, ListPage, ListQuery, ObjectInfo};
use coffer_gateway::Gateway;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::auth::caller;
use crate::convert::{etag, timestamp};
use crate::error::to_s3;

/// The S3 default and maximum page size.
const MAX_KEYS: i32 = 1000;

fn max_keys(n: Option<i32>) -> S3Result<usize> {
    match n {
        None => Ok(MAX_KEYS as usize),
        Some(n) if n < 0 => Err(S3Error::with_message(S3ErrorCode::InvalidArgument, "max-keys must be non-negative")),
        Some(n) => Ok(n.min(MAX_KEYS) as usize),
    }
}

/// `encoding-type=url`: keys and prefixes come back percent-encoded, as AWS does it: every
/// byte but the unreserved ones (`A-Z a-z 0-9 - . _ ~`) and `/`.
struct Encoder(bool);

fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Encoder {
    fn new(t: Option<&EncodingType>) -> S3Result<Self> {
        match t.map(|t| t.as_str()) {
            None => Ok(Self(false)),
            Some("url") => Ok(Self(true)),
            Some(_) => {
                Err(S3Error::with_message(S3ErrorCode::InvalidArgument, "Invalid Encoding Method specified in Request"))
            }
        }
    }
    fn enc(&self, s: &str) -> String {
        if self.0 { url_encode(s) } else { s.to_owned() }
    }
    fn opt(&self, s: Option<&str>) -> Option<String> {
        s.map(|s| self.enc(s))
    }
}

async fn page(
    gw: &Gateway,
    ext: &http::Extensions,
    bucket: &str,
    prefix: Option<&str>,
    delimiter: Option<&str>,
    start_after: Option<String>,
    max: usize,
) -> S3Result<(coffer_core::Bucket, ListPage)> {
    let c = caller(ext)?;
    let query = ListQuery {
        prefix: prefix.unwrap_or("").to_owned(),
        delimiter: delimiter.filter(|d| !d.is_empty()).map(str::to_owned),
        start_after,
        max_keys: max,
    };
    gw.list_objects(c, bucket, &query).await.map_err(to_s3)
}

fn last_name(page: &ListPage) -> Option<String> {
    page.entries.last().map(|e| match e {
        ListEntry::Object(o) => o.key.clone(),
        ListEntry::CommonPrefix(p) => p.clone(),
    })
}

fn owner(bucket: &coffer_core::Bucket) -> Owner {
    Owner { display_name: Some(bucket.owner.clone()), id: Some(bucket.owner.clone()) }
}

/// An empty delimiter is no delimiter, and is not echoed.
fn delimiter(d: Option<&str>) -> Option<&str> {
    d.filter(|d| !d.is_empty())
}

fn object(o: &ObjectInfo, enc: &Encoder, owner: Option<&Owner>) -> Object {
    Object {
        key: Some(enc.enc(&o.key)),
        owner: owner.cloned(),
        size: Some(crate::convert::size(o)),
        e_tag: Some(etag(&o.etag)),
        last_modified: Some(timestamp(o.last_modified)),
        storage_class: Some(ObjectStorageClass::from_static(ObjectStorageClass::STANDARD)),
        ..Default::default()
    }
}

fn split(page: &ListPage, enc: &Encoder, owner: Option<&Owner>) -> (Vec<Object>, Vec<CommonPrefix>) {
    let mut objects = Vec::new();
    let mut prefixes = Vec::new();
    for e in &page.entries {
        match e {
            ListEntry::Object(o) => objects.push(object(o, enc, owner)),
            ListEntry::CommonPrefix(p) => prefixes.push(CommonPrefix { prefix: Some(enc.enc(p)) }),
        }
    }
    (objects, prefixes)
}

pub async fn list_objects(gw: &Gateway, req: S3Request<ListObjectsInput>) -> S3Result<S3Response<ListObjectsOutput>> {
    let i = &req.input;
    let enc = Encoder::new(i.encoding_type.as_ref())?;
    let max = max_keys(i.max_keys)?;
    let marker = i.marker.clone().filter(|m| !m.is_empty());
    let (b, p) = page(gw, &req.extensions, &i.bucket, i.prefix.as_deref(), i.delimiter.as_deref(), marker, max).await?;
    // V1 lists owners by default.
    let (contents, prefixes) = split(&p, &enc, Some(&owner(&b)));
    Ok(S3Response::new(ListObjectsOutput {
        name: Some(i.bucket.clone()),
        // SDKs do not decode V1's Prefix (it is the request's, echoed), so it is not encoded.
        prefix: Some(i.prefix.clone().unwrap_or_default()),
        marker: Some(enc.enc(i.marker.as_deref().unwrap_or(""))),
        delimiter: enc.opt(delimiter(i.delimiter.as_deref())),
        max_keys: Some(max as i32),
        is_truncated: Some(p.is_truncated),
        next_marker: if p.is_truncated { enc.opt(last_name(&p).as_deref()) } else { None },
        contents: Some(contents),
        common_prefixes: Some(prefixes),
        encoding_type: i.encoding_type.clone(),
        ..Default::default()
    }))
}

pub async fn list_objects_v2(
    gw: &Gateway,
    req: S3Request<ListObjectsV2Input>,
) -> S3Result<S3Response<ListObjectsV2Output>> {
    let i = &req.input;
    let enc = Encoder::new(i.encoding_type.as_ref())?;
    let max = max_keys(i.max_keys)?;
    let after = match i.continuation_token.as_deref() {
        Some(t) => Some(hex::decode(t).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| {
            S3Error::with_message(S3ErrorCode::InvalidArgument, "The continuation token provided is incorrect")
        })?),
        None => i.start_after.clone().filter(|s| !s.is_empty()),
    };
    let (b, p) = page(gw, &req.extensions, &i.bucket, i.prefix.as_deref(), i.delimiter.as_deref(), after, max).await?;
    let owner = i.fetch_owner.unwrap_or(false).then(|| owner(&b));
    let (contents, prefixes) = split(&p, &enc, owner.as_ref());
    Ok(S3Response::new(ListObjectsV2Output {
        name: Some(i.bucket.clone()),
        prefix: Some(enc.enc(i.prefix.as_deref().unwrap_or(""))),
        delimiter: enc.opt(delimiter(i.delimiter.as_deref())),
        max_keys: Some(max as i32),
        key_count: Some(p.entries.len() as i32),
        continuation_token: i.continuation_token.clone(),
        next_continuation_token: if p.is_truncated { last_name(&p).map(hex::encode) } else { None },
        start_after: enc.opt(i.start_after.as_deref()),
        is_truncated: Some(p.is_truncated),
        contents: Some(contents),
        common_prefixes: Some(prefixes),
        encoding_type: i.encoding_type.clone(),
        ..Default::default()
    }))
}

pub async fn list_object_versions(
    gw: &Gateway,
    req: S3Request<ListObjectVersionsInput>,
) -> S3Result<S3Response<ListObjectVersionsOutput>> {
    let i = &req.input;
    let enc = Encoder::new(i.encoding_type.as_ref())?;
    let max = max_keys(i.max_keys)?;
    let marker = i.key_marker.clone().filter(|m| !m.is_empty());
    let (b, p) = page(gw, &req.extensions, &i.bucket, i.prefix.as_deref(), i.delimiter.as_deref(), marker, max).await?;
    let owner = owner(&b);
    let mut versions = Vec::new();
    let mut prefixes = Vec::new();
    for e in &p.entries {
        match e {
            ListEntry::Object(o) => versions.push(ObjectVersion {
                key: Some(enc.enc(&o.key)),
                version_id: Some("null".into()),
                is_latest: Some(true),
                owner: Some(owner.clone()),
                size: Some(crate::convert::size(o)),
                e_tag: Some(etag(&o.etag)),
                last_modified: Some(timestamp(o.last_modified)),
                storage_class: Some(ObjectVersionStorageClass::from_static(ObjectVersionStorageClass::STANDARD)),
                ..Default::default()
            }),
            ListEntry::CommonPrefix(pfx) => prefixes.push(CommonPrefix { prefix: Some(enc.enc(pfx)) }),
        }
    }
    Ok(S3Response::new(ListObjectVersionsOutput {
        name: Some(i.bucket.clone()),
        prefix: Some(enc.enc(i.prefix.as_deref().unwrap_or(""))),
        delimiter: enc.opt(delimiter(i.delimiter.as_deref())),
        key_marker: Some(enc.enc(i.key_marker.as_deref().unwrap_or(""))),
        version_id_marker: i.version_id_marker.clone(),
        max_keys: Some(max as i32),
        is_truncated: Some(p.is_truncated),
        next_key_marker: if p.is_truncated { enc.opt(last_name(&p).as_deref()) } else { None },
        next_version_id_marker: p.is_truncated.then(|| "null".to_owned()),
        versions: Some(versions),
        common_prefixes: Some(prefixes),
        encoding_type: i.encoding_type.clone(),
        ..Default::default()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encoding_keeps_slashes_and_unreserved() {
        assert_eq!(url_encode("foo+1/bar baz/"), "foo%2B1/bar%20baz/");
        assert_eq!(url_encode("a-b_c.d~e"), "a-b_c.d~e");
        assert_eq!(url_encode("é "), "%C3%A9%20");
        assert_eq!(url_encode("\n"), "%0A");
    }
}
