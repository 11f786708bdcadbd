//! PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, CopyObject.

use coffer_gateway::Gateway;
use coffer_gateway::objects::{CopyInput, PutInput};
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::auth::caller;
use crate::convert::{self, blob, body_stream, etag, timestamp};
use crate::error::to_s3;

pub async fn put_object(gw: &Gateway, req: S3Request<PutObjectInput>) -> S3Result<S3Response<PutObjectOutput>> {
    let c = caller(&req.extensions)?;
    let i = req.input;
    let meta = crate::object_meta!(i);
    let input = PutInput {
        meta,
        content_md5: i.content_md5,
        content_length: i.content_length.and_then(|n| u64::try_from(n).ok()),
        conditions: convert::conditions(i.if_match, i.if_none_match, None, None),
    };
    let info = gw.put_object(c, &i.bucket, &i.key, input, body_stream(i.body)).await.map_err(to_s3)?;
    Ok(S3Response::new(PutObjectOutput { e_tag: Some(etag(&info.etag)), ..Default::default() }))
}

pub async fn get_object(gw: &Gateway, req: S3Request<GetObjectInput>) -> S3Result<S3Response<GetObjectOutput>> {
    let c = caller(&req.extensions)?;
    let i = req.input;
    if i.part_number.is_some() {
        return Err(S3Error::with_message(S3ErrorCode::NotImplemented, "GetObject by partNumber is not supported"));
    }
    let cond = convert::conditions(i.if_match, i.if_none_match, i.if_modified_since, i.if_unmodified_since);
    let ranged = i.range.is_some();
    let (info, (start, end), stream) =
        gw.get_object(c, &i.bucket, &i.key, i.range.map(convert::range), &cond).await.map_err(to_s3)?;
    let m = &info.meta;
    Ok(S3Response::new(GetObjectOutput {
        body: Some(blob(stream)),
        content_length: Some((end - start) as i64),
        content_range: ranged.then(|| format!("bytes {}-{}/{}", start, end.saturating_sub(1), info.size)),
        accept_ranges: Some("bytes".into()),
        e_tag: Some(etag(&info.etag)),
        last_modified: Some(timestamp(info.last_modified)),
        content_type: Some(crate::convert::content_type(m)),
        content_encoding: m.content_encoding.clone(),
        content_disposition: m.content_disposition.clone(),
        content_language: m.content_language.clone(),
        cache_control: m.cache_control.clone(),
        expires: convert::expires(m),
        metadata: convert::metadata(m),
        ..Default::default()
    }))
}

pub async fn head_object(gw: &Gateway, req: S3Request<HeadObjectInput>) -> S3Result<S3Response<HeadObjectOutput>> {
    let c = caller(&req.extensions)?;
    let i = req.input;
    let cond = convert::conditions(i.if_match, i.if_none_match, i.if_modified_since, i.if_unmodified_since);
    let info = gw.head_object(c, &i.bucket, &i.key, &cond).await.map_err(to_s3)?;
    let (content_length, content_range) = match i.range {
        None => (convert::size(&info), None),
        Some(r) => {
            let (s, e) = convert::range(r).resolve(info.size).map_err(|e| to_s3(e.into()))?;
            ((e - s) as i64, Some(format!("bytes {}-{}/{}", s, e - 1, info.size)))
        }
    };
    let m = &info.meta;
    Ok(S3Response::new(HeadObjectOutput {
        content_length: Some(content_length),
        content_range,
        accept_ranges: Some("bytes".into()),
        e_tag: Some(etag(&info.etag)),
        last_modified: Some(timestamp(info.last_modified)),
        content_type: Some(crate::convert::content_type(m)),
        content_encoding: m.content_encoding.clone(),
        content_disposition: m.content_disposition.clone(),
        content_language: m.content_language.clone(),
        cache_control: m.cache_control.clone(),
        expires: convert::expires(m),
        metadata: convert::metadata(m),
        ..Default::default()
    }))
}

pub async fn delete_object(
    gw: &Gateway,
    req: S3Request<DeleteObjectInput>,
) -> S3Result<S3Response<DeleteObjectOutput>> {
    let c = caller(&req.extensions)?;
    gw.delete_object(c, &req.input.bucket, &req.input.key).await.map_err(to_s3)?;
    Ok(S3Response::new(DeleteObjectOutput::default()))
}

pub async fn delete_objects(
    gw: &Gateway,
    req: S3Request<DeleteObjectsInput>,
) -> S3Result<S3Response<DeleteObjectsOutput>> {
    let c = caller(&req.extensions)?;
    let quiet = req.input.delete.quiet.unwrap_or(false);
    let keys: Vec<String> = req.input.delete.objects.into_iter().map(|o| o.key).collect();
    if keys.len() > 1000 {
        return Err(S3Error::with_message(S3ErrorCode::MalformedXML, "At most 1000 keys may be deleted at once"));
    }
    let results = gw.delete_objects(c, &req.input.bucket, &keys).await.map_err(to_s3)?;
    let mut deleted = Vec::new();
    let mut errors = Vec::new();
    for (key, r) in results {
        match r {
            Ok(()) if !quiet => deleted.push(DeletedObject { key: Some(key), ..Default::default() }),
            Ok(()) => {}
            Err(e) => {
                let e = to_s3(e);
                errors.push(Error {
                    key: Some(key),
                    code: Some(e.code().as_str().to_owned()),
                    message: e.message().map(str::to_owned),
                    version_id: None,
                });
            }
        }
    }
    Ok(S3Response::new(DeleteObjectsOutput {
        deleted: Some(deleted),
        errors: (!errors.is_empty()).then_some(errors),
        ..Default::default()
    }))
}

/// The bucket and key an `x-amz-copy-source` names.
pub fn copy_source(src: &CopySource) -> S3Result<(&str, &str)> {
    match src {
        CopySource::Bucket { bucket, key, version_id } => {
            if version_id.as_deref().is_some_and(|v| v != "null") {
                return Err(S3Error::with_message(S3ErrorCode::NoSuchVersion, "The specified version does not exist."));
            }
            Ok((bucket, key))
        }
        _ => Err(S3Error::with_message(S3ErrorCode::NotImplemented, "Access point copy sources are not supported")),
    }
}

pub async fn copy_object(gw: &Gateway, req: S3Request<CopyObjectInput>) -> S3Result<S3Response<CopyObjectOutput>> {
    let c = caller(&req.extensions)?;
    let i = req.input;
    let src = copy_source(&i.copy_source)?;
    let replace = match i.metadata_directive.as_ref().map(|d| d.as_str()) {
        None | Some("COPY") => false,
        Some("REPLACE") => true,
        Some(other) => {
            return Err(S3Error::with_message(
                S3ErrorCode::InvalidArgument,
                format!("Unknown metadata directive {other:?}"),
            ));
        }
    };
    let input = CopyInput {
        replace_meta: replace.then(|| crate::object_meta!(i)),
        source_conditions: convert::conditions(
            i.copy_source_if_match,
            i.copy_source_if_none_match,
            i.copy_source_if_modified_since,
            i.copy_source_if_unmodified_since,
        ),
    };
    let info = gw.copy_object(c, src, (&i.bucket, &i.key), input).await.map_err(to_s3)?;
    Ok(S3Response::new(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(etag(&info.etag)),
            last_modified: Some(timestamp(info.last_modified)),
            ..Default::default()
        }),
        ..Default::default()
    }))
}
