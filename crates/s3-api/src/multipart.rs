//! CreateMultipartUpload, UploadPart, UploadPartCopy, CompleteMultipartUpload,
//! AbortMultipartUpload, ListParts, ListMultipartUploads.

use coffer_gateway::Gateway;
use s3s::dto::*;
use s3s::{S3Error, S3ErrorCode, S3Request, S3Response, S3Result};

use crate::auth::caller;
use crate::convert::{self, body_stream, etag, timestamp};
use crate::error::to_s3;
use crate::objects::copy_source;

pub async fn create_multipart_upload(
    gw: &Gateway,
    req: S3Request<CreateMultipartUploadInput>,
) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
    let c = caller(&req.extensions)?;
    let i = req.input;
    let meta = crate::object_meta!(i);
    let id = gw.create_multipart_upload(c, &i.bucket, &i.key, meta).await.map_err(to_s3)?;
    Ok(S3Response::new(CreateMultipartUploadOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(id),
        ..Default::default()
    }))
}

pub async fn upload_part(gw: &Gateway, req: S3Request<UploadPartInput>) -> S3Result<S3Response<UploadPartOutput>> {
    let c = caller(&req.extensions)?;
    let i = req.input;
    let part = gw
        .upload_part(
            c,
            &i.bucket,
            &i.key,
            &i.upload_id,
            i64::from(i.part_number),
            i.content_md5.as_deref(),
            i.content_length.and_then(|n| u64::try_from(n).ok()),
            body_stream(i.body),
        )
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(UploadPartOutput { e_tag: Some(etag(&part.etag)), ..Default::default() }))
}

pub async fn upload_part_copy(
    gw: &Gateway,
    req: S3Request<UploadPartCopyInput>,
) -> S3Result<S3Response<UploadPartCopyOutput>> {
    let c = caller(&req.extensions)?;
    let i = req.input;
    let src = copy_source(&i.copy_source)?;
    let range = i.copy_source_range.as_deref().map(convert::copy_source_range).transpose()?;
    let cond = convert::conditions(
        i.copy_source_if_match,
        i.copy_source_if_none_match,
        i.copy_source_if_modified_since,
        i.copy_source_if_unmodified_since,
    );
    let part = gw
        .upload_part_copy(c, src, (&i.bucket, &i.key), &i.upload_id, i64::from(i.part_number), range, &cond)
        .await
        .map_err(to_s3)?;
    Ok(S3Response::new(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(etag(&part.etag)),
            last_modified: Some(timestamp(part.last_modified)),
            ..Default::default()
        }),
        ..Default::default()
    }))
}

pub async fn complete_multipart_upload(
    gw: &Gateway,
    req: S3Request<CompleteMultipartUploadInput>,
) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
    let c = caller(&req.extensions)?;
    let i = req.input;
    let malformed = || {
        S3Error::with_message(
            S3ErrorCode::MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema",
        )
    };
    let mut parts = Vec::new();
    for p in i.multipart_upload.and_then(|m| m.parts).unwrap_or_default() {
        let n = p.part_number.ok_or_else(malformed)?;
        let e = p.e_tag.ok_or_else(malformed)?;
        parts.push((i64::from(n), e.value().to_owned()));
    }
    let cond = convert::conditions(i.if_match, i.if_none_match, None, None);
    let info = gw.complete_multipart_upload(c, &i.bucket, &i.key, &i.upload_id, parts, &cond).await.map_err(to_s3)?;
    Ok(S3Response::new(CompleteMultipartUploadOutput {
        bucket: Some(i.bucket.clone()),
        key: Some(i.key.clone()),
        e_tag: Some(etag(&info.etag)),
        location: Some(format!("/{}/{}", i.bucket, urlencoding::encode(&i.key))),
        ..Default::default()
    }))
}

pub async fn abort_multipart_upload(
    gw: &Gateway,
    req: S3Request<AbortMultipartUploadInput>,
) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
    let c = caller(&req.extensions)?;
    let i = &req.input;
    gw.abort_multipart_upload(c, &i.bucket, &i.key, &i.upload_id).await.map_err(to_s3)?;
    Ok(S3Response::new(AbortMultipartUploadOutput::default()))
}

fn page_size(n: Option<i32>) -> S3Result<usize> {
    match n {
        None => Ok(1000),
        Some(n) if n < 0 => {
            Err(S3Error::with_message(S3ErrorCode::InvalidArgument, "The page size must be non-negative"))
        }
        Some(n) => Ok(n.min(1000) as usize),
    }
}

pub async fn list_parts(gw: &Gateway, req: S3Request<ListPartsInput>) -> S3Result<S3Response<ListPartsOutput>> {
    let c = caller(&req.extensions)?;
    let i = &req.input;
    let max = page_size(i.max_parts)?;
    let marker = i.part_number_marker.map(|m| m.max(0) as u32).unwrap_or(0);
    let (parts, truncated) = gw.list_parts(c, &i.bucket, &i.key, &i.upload_id, marker, max).await.map_err(to_s3)?;
    let next = parts.last().map(|p| p.part_number as i32);
    Ok(S3Response::new(ListPartsOutput {
        bucket: Some(i.bucket.clone()),
        key: Some(i.key.clone()),
        upload_id: Some(i.upload_id.clone()),
        max_parts: Some(max as i32),
        part_number_marker: i.part_number_marker,
        is_truncated: Some(truncated),
        next_part_number_marker: if truncated { next } else { None },
        parts: Some(
            parts
                .into_iter()
                .map(|p| Part {
                    part_number: Some(p.part_number as i32),
                    e_tag: Some(etag(&p.etag)),
                    size: Some(p.size as i64),
                    last_modified: Some(timestamp(p.last_modified)),
                    ..Default::default()
                })
                .collect(),
        ),
        storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
        ..Default::default()
    }))
}

pub async fn list_multipart_uploads(
    gw: &Gateway,
    req: S3Request<ListMultipartUploadsInput>,
) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
    let c = caller(&req.extensions)?;
    let i = &req.input;
    let max = page_size(i.max_uploads)?;
    let (uploads, truncated) = gw
        .list_multipart_uploads(
            c,
            &i.bucket,
            i.prefix.as_deref().unwrap_or(""),
            i.key_marker.as_deref().filter(|s| !s.is_empty()),
            i.upload_id_marker.as_deref().filter(|s| !s.is_empty()),
            max,
        )
        .await
        .map_err(to_s3)?;
    let last = uploads.last().map(|u| (u.key.clone(), u.upload_id.clone()));
    Ok(S3Response::new(ListMultipartUploadsOutput {
        bucket: Some(i.bucket.clone()),
        prefix: i.prefix.clone(),
        key_marker: i.key_marker.clone(),
        upload_id_marker: i.upload_id_marker.clone(),
        max_uploads: Some(max as i32),
        is_truncated: Some(truncated),
        next_key_marker: if truncated { last.as_ref().map(|l| l.0.clone()) } else { None },
        next_upload_id_marker: if truncated { last.map(|l| l.1) } else { None },
        uploads: Some(
            uploads
                .into_iter()
                .map(|u| MultipartUpload {
                    key: Some(u.key),
                    upload_id: Some(u.upload_id),
                    initiated: Some(timestamp(u.initiated)),
                    storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    }))
}
