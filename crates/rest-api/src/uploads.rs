//! Multipart uploads, for files too large for one request (a browser sends them in parts,
//! with progress and cancel): `POST /buckets/{name}/uploads` starts one,
//! `PUT …/uploads/{upload_id}/parts/{part_number}?key=` stores a part (streamed),
//! `POST …/uploads/{upload_id}/complete` makes the object, `DELETE …/uploads/{upload_id}?key=`
//! abandons it; `GET …/uploads` and `GET …/uploads/{upload_id}/parts?key=` list what is in
//! progress (to resume or clean up). The gateway's multipart use cases do the work, so
//! authorization, quotas (at completion), the part size limit and the home view apply as for S3.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use coffer_backend::ObjectMeta;
use coffer_gateway::Conditions;
use futures::TryStreamExt;

use crate::RestState;
use crate::auth::Who;
use crate::buckets::{Answer, body};
use crate::objects::MAX_PAGE;
use crate::views::{
    CompleteUpload, NewUpload, ObjectView, PartListParams, PartPage, PartView, UploadKey, UploadListParams, UploadPage,
    UploadView, rfc3339,
};

/// Start a multipart upload of `key`; send its parts, then complete it (or abort it).
#[utoipa::path(post, operation_id = "create_upload", path = "/buckets/{name}/uploads", tag = "objects",
    params(("name" = String, Path)), request_body = NewUpload, responses((status = 201, body = UploadView)))]
pub async fn create(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path(bucket): Path<String>,
    json: Result<Json<NewUpload>, JsonRejection>,
) -> Answer {
    let req = body(json)?;
    let meta = ObjectMeta { content_type: req.content_type.filter(|t| !t.is_empty()), ..ObjectMeta::default() };
    let upload_id = st.gateway.create_multipart_upload(&c, &bucket, &req.key, meta).await?;
    Ok((StatusCode::CREATED, Json(UploadView { upload_id, key: req.key, initiated: None })).into_response())
}

/// The multipart uploads in progress in a bucket (anyone who may list it), a page at a time.
#[utoipa::path(get, operation_id = "list_uploads", path = "/buckets/{name}/uploads", tag = "objects",
    params(("name" = String, Path), UploadListParams), responses((status = 200, body = UploadPage)))]
pub async fn list(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path(bucket): Path<String>,
    Query(p): Query<UploadListParams>,
) -> Answer {
    let max = p.max_uploads.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE) as usize;
    let key_marker = p.start_after_key.as_deref().filter(|k| !k.is_empty());
    let id_marker = p.start_after_upload_id.as_deref().filter(|i| !i.is_empty());
    let (uploads, more) = st.gateway.list_multipart_uploads(&c, &bucket, &p.prefix, key_marker, id_marker, max).await?;
    let last = uploads.last().filter(|_| more).map(|u| (u.key.clone(), u.upload_id.clone()));
    let uploads = uploads
        .into_iter()
        .map(|u| UploadView { upload_id: u.upload_id, key: u.key, initiated: Some(rfc3339(u.initiated)) })
        .collect();
    let (next_key, next_upload_id) = last.unzip();
    Ok(Json(UploadPage { uploads, next_key, next_upload_id }).into_response())
}

/// Store one part of an upload (1–10000; every part but the last at least 5 MiB, each at
/// most the largest single upload); the body streams to the tier. Sending a part number
/// again replaces that part.
#[utoipa::path(put, operation_id = "upload_part", path = "/buckets/{name}/uploads/{upload_id}/parts/{part_number}",
    tag = "objects",
    params(("name" = String, Path), ("upload_id" = String, Path),
        ("part_number" = u32, Path, minimum = 1, maximum = 10000), UploadKey),
    request_body(content = crate::views::Binary, content_type = "application/octet-stream"),
    responses((status = 200, body = PartView)))]
pub async fn put_part(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path((bucket, upload_id, part_number)): Path<(String, String, u32)>,
    Query(q): Query<UploadKey>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let text = |h| headers.get(h).and_then(|v: &HeaderValue| v.to_str().ok());
    let md5 = text(header::HeaderName::from_static("content-md5"));
    let length = text(header::CONTENT_LENGTH).and_then(|v| v.parse().ok());
    let stream = Box::pin(body.into_data_stream().map_err(std::io::Error::other));
    let part =
        st.gateway.upload_part(&c, &bucket, &q.key, &upload_id, i64::from(part_number), md5, length, stream).await?;
    Ok(Json(PartView { part_number: part.part_number, etag: part.etag, size: part.size }).into_response())
}

/// The parts of an upload stored so far (anyone who may list the bucket), a page at a time.
#[utoipa::path(get, operation_id = "list_parts", path = "/buckets/{name}/uploads/{upload_id}/parts", tag = "objects",
    params(("name" = String, Path), ("upload_id" = String, Path), PartListParams),
    responses((status = 200, body = PartPage)))]
pub async fn list_parts(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path((bucket, upload_id)): Path<(String, String)>,
    Query(p): Query<PartListParams>,
) -> Answer {
    let max = p.max_parts.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE) as usize;
    let (parts, more) = st.gateway.list_parts(&c, &bucket, &p.key, &upload_id, p.start_after.unwrap_or(0), max).await?;
    let next = parts.last().filter(|_| more).map(|p| p.part_number);
    let parts =
        parts.into_iter().map(|p| PartView { part_number: p.part_number, etag: p.etag, size: p.size }).collect();
    Ok(Json(PartPage { parts, next }).into_response())
}

/// Make the object from the parts named, in order; the upload ends. Quotas are checked here,
/// with the object's whole size.
#[utoipa::path(post, operation_id = "complete_upload", path = "/buckets/{name}/uploads/{upload_id}/complete",
    tag = "objects", params(("name" = String, Path), ("upload_id" = String, Path)), request_body = CompleteUpload,
    responses((status = 201, body = ObjectView)))]
pub async fn complete(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path((bucket, upload_id)): Path<(String, String)>,
    json: Result<Json<CompleteUpload>, JsonRejection>,
) -> Answer {
    let req = body(json)?;
    let parts = req.parts.into_iter().map(|p| (i64::from(p.part_number), p.etag)).collect();
    let info =
        st.gateway.complete_multipart_upload(&c, &bucket, &req.key, &upload_id, parts, &Conditions::default()).await?;
    Ok((StatusCode::CREATED, Json(ObjectView::from(&info))).into_response())
}

/// Abandon an upload: its parts are deleted.
#[utoipa::path(delete, operation_id = "abort_upload", path = "/buckets/{name}/uploads/{upload_id}", tag = "objects",
    params(("name" = String, Path), ("upload_id" = String, Path), UploadKey),
    responses((status = 204, description = "abandoned")))]
pub async fn abort(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path((bucket, upload_id)): Path<(String, String)>,
    Query(q): Query<UploadKey>,
) -> Answer {
    st.gateway.abort_multipart_upload(&c, &bucket, &q.key, &upload_id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
