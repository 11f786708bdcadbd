//! Conversions between s3s DTOs and the gateway's domain types.

use std::collections::BTreeMap;
use std::time::SystemTime;

use coffer_backend::{ByteRange, ByteStream, ObjectInfo, ObjectMeta};
use coffer_gateway::Conditions;
use coffer_gateway::conditions::EtagMatch;
use futures::TryStreamExt;
use s3s::dto::{ETag, ETagCondition, Metadata, Range, StreamingBlob, Timestamp};
use s3s::{S3Error, S3ErrorCode, S3Result};

/// The request body as a backend stream (empty when absent).
pub fn body_stream(body: Option<StreamingBlob>) -> ByteStream {
    match body {
        Some(b) => Box::pin(b.map_err(std::io::Error::other)),
        None => Box::pin(futures::stream::empty()),
    }
}

/// A backend stream as a response body.
pub fn blob(stream: ByteStream) -> StreamingBlob {
    StreamingBlob::wrap(sync_wrapper::SyncStream::new(stream))
}

pub fn etag(s: &str) -> ETag {
    ETag::Strong(s.to_owned())
}

pub fn timestamp(t: SystemTime) -> Timestamp {
    Timestamp::from(t)
}

fn system_time(t: Timestamp) -> SystemTime {
    let odt: time::OffsetDateTime = t.into();
    SystemTime::from(odt)
}

pub fn range(r: Range) -> ByteRange {
    match r {
        Range::Int { first, last } => ByteRange::FromTo { first, last },
        Range::Suffix { length } => ByteRange::Suffix { len: length },
    }
}

/// `x-amz-copy-source-range: bytes=first-last`.
pub fn copy_source_range(s: &str) -> S3Result<ByteRange> {
    let bad = || {
        S3Error::with_message(
            S3ErrorCode::InvalidArgument,
            "The x-amz-copy-source-range value must be of the form bytes=first-last",
        )
    };
    let spec = s.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let first: u64 = a.parse().map_err(|_| bad())?;
    let last: u64 = b.parse().map_err(|_| bad())?;
    if last < first {
        return Err(bad());
    }
    Ok(ByteRange::FromTo { first, last: Some(last) })
}

fn etag_match(c: Option<ETagCondition>) -> Option<EtagMatch> {
    c.map(|c| match c {
        ETagCondition::Any => EtagMatch::Any,
        ETagCondition::ETag(t) => EtagMatch::Tags(vec![t.value().to_owned()]),
    })
}

pub fn conditions(
    if_match: Option<ETagCondition>,
    if_none_match: Option<ETagCondition>,
    if_modified_since: Option<Timestamp>,
    if_unmodified_since: Option<Timestamp>,
) -> Conditions {
    Conditions {
        if_match: etag_match(if_match),
        if_none_match: etag_match(if_none_match),
        if_modified_since: if_modified_since.map(system_time),
        if_unmodified_since: if_unmodified_since.map(system_time),
    }
}

/// The metadata stored from an input with the standard header fields (PutObject,
/// CopyObject with REPLACE, CreateMultipartUpload): `object_meta!(input)`.
#[macro_export]
macro_rules! object_meta {
    ($i:expr) => {
        $crate::convert::object_meta(
            $i.content_type,
            $i.content_encoding,
            $i.content_disposition,
            $i.content_language,
            $i.cache_control,
            $i.expires,
            $i.metadata,
        )
    };
}

/// The metadata a PUT, copy-with-REPLACE or multipart create stores.
#[allow(clippy::too_many_arguments)]
pub fn object_meta(
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<Timestamp>,
    metadata: Option<Metadata>,
) -> ObjectMeta {
    let expires = expires.and_then(|t| {
        let mut buf = Vec::new();
        t.format(s3s::dto::TimestampFormat::HttpDate, &mut buf).ok()?;
        String::from_utf8(buf).ok()
    });
    ObjectMeta {
        content_type,
        content_encoding: content_encoding.and_then(|e| stored_content_encoding(&e)),
        content_disposition,
        content_language,
        cache_control,
        expires,
        user_metadata: metadata
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// `aws-chunked` describes how the request body was sent, not the object: it is not stored.
fn stored_content_encoding(e: &str) -> Option<String> {
    let kept: Vec<&str> =
        e.split(',').map(str::trim).filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked")).collect();
    (!kept.is_empty()).then(|| kept.join(", "))
}

/// The Content-Type answered for an object: as stored, or S3's default for objects stored
/// without one.
pub fn content_type(meta: &ObjectMeta) -> String {
    meta.content_type.clone().unwrap_or_else(|| "binary/octet-stream".to_owned())
}

pub fn metadata(meta: &ObjectMeta) -> Option<Metadata> {
    if meta.user_metadata.is_empty() {
        return None;
    }
    Some(meta.user_metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}

pub fn expires(meta: &ObjectMeta) -> Option<Timestamp> {
    meta.expires.as_deref().and_then(|s| Timestamp::parse(s3s::dto::TimestampFormat::HttpDate, s).ok())
}

pub fn size(info: &ObjectInfo) -> i64 {
    i64::try_from(info.size).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_source_ranges() {
        assert_eq!(copy_source_range("bytes=0-9").unwrap(), ByteRange::FromTo { first: 0, last: Some(9) });
        assert!(copy_source_range("bytes=9-0").is_err());
        assert!(copy_source_range("0-9").is_err());
        assert!(copy_source_range("bytes=-5").is_err());
    }

    #[test]
    fn aws_chunked_is_not_a_stored_content_encoding() {
        assert_eq!(stored_content_encoding("gzip"), Some("gzip".into()));
        assert_eq!(stored_content_encoding("gzip, aws-chunked"), Some("gzip".into()));
        assert_eq!(stored_content_encoding("aws-chunked,gzip"), Some("gzip".into()));
        assert_eq!(stored_content_encoding("aws-chunked"), None);
        assert_eq!(stored_content_encoding("aws-chunked, aws-chunked"), None);
    }

    #[test]
    fn user_metadata_keys_are_lowercased() {
        let mut m = Metadata::new();
        m.insert("Project".into(), "x".into());
        let meta = object_meta(Some("text/plain".into()), None, None, None, None, None, Some(m));
        assert_eq!(meta.user_metadata.get("project").map(String::as_str), Some("x"));
        assert_eq!(metadata(&meta).unwrap().get("project").map(String::as_str), Some("x"));
    }
}
