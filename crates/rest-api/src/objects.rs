//! Objects, streamed both ways:
//! `GET /buckets/{name}/objects?prefix&delimiter&start_after&max_keys` (a page),
//! `PUT|GET|DELETE /buckets/{name}/objects/{key}` (upload with its Content-Type,
//! download with `Range`, as an attachment with `download=1`), `POST /buckets/{name}/copy`.
//! Multipart uploads are in [`crate::uploads`].

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer_backend::{ByteRange, ByteStream, ListEntry, ListPage, ListQuery, ObjectInfo, ObjectMeta};
use coffer_gateway::objects::{CopyInput, PutInput};
use coffer_gateway::{Caller, Conditions, Gateway};
use futures::TryStreamExt;

use crate::RestState;
use crate::auth::Who;
use crate::buckets::{Answer, body};
use crate::problem::Problem;
use crate::views::{CopyRequest, DownloadParams, ListParams, ObjectPage, ObjectView};

/// The most entries in one page.
pub const MAX_PAGE: u32 = 1000;

/// A page of a listing as JSON; `next` is the `start_after` of the next page.
pub fn page_json(page: &ListPage) -> ObjectPage {
    let mut objects = Vec::new();
    let mut prefixes = Vec::new();
    let mut last = None;
    for e in &page.entries {
        match e {
            ListEntry::Object(o) => {
                objects.push(ObjectView::from(o));
                last = Some(o.key.clone());
            }
            ListEntry::CommonPrefix(p) => {
                prefixes.push(p.clone());
                last = Some(p.clone());
            }
        }
    }
    ObjectPage { objects, prefixes, next: if page.is_truncated { last } else { None } }
}

/// The backend query for list parameters, under `base` (a share link's prefix, or "").
pub fn list_query(base: &str, p: ListParams) -> ListQuery {
    ListQuery {
        prefix: format!("{base}{}", p.prefix),
        delimiter: p.delimiter.filter(|d| !d.is_empty()),
        start_after: p.start_after.filter(|s| !s.is_empty()).map(|s| format!("{base}{s}")),
        max_keys: p.max_keys.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE) as usize,
    }
}

/// One page of a bucket's objects and common prefixes.
#[utoipa::path(get, operation_id = "list_objects", path = "/buckets/{name}/objects", tag = "objects",
    params(("name" = String, Path), ListParams), responses((status = 200, body = ObjectPage)))]
pub async fn list(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path(bucket): Path<String>,
    Query(p): Query<ListParams>,
) -> Answer {
    let (_, page) = st.gateway.list_objects(&c, &bucket, &list_query("", p)).await?;
    Ok(Json(page_json(&page)).into_response())
}

/// Upload an object; the body streams to the tier and `Content-Type` is kept.
#[utoipa::path(put, operation_id = "put_object", path = "/buckets/{name}/objects/{*key}", tag = "objects",
    params(("name" = String, Path), ("key" = String, Path, description = "the object key; `/` allowed")),
    request_body(content = crate::views::Binary, content_type = "application/octet-stream"),
    responses((status = 201, body = ObjectView)))]
pub async fn put(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path((bucket, key)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    let text = |h| headers.get(h).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned);
    let input = PutInput {
        meta: ObjectMeta { content_type: text(header::CONTENT_TYPE), ..ObjectMeta::default() },
        content_md5: text(header::HeaderName::from_static("content-md5")),
        content_length: text(header::CONTENT_LENGTH).and_then(|v| v.parse().ok()),
        conditions: Conditions::default(),
    };
    let stream = Box::pin(body.into_data_stream().map_err(std::io::Error::other));
    let info = st.gateway.put_object(&c, &bucket, &key, input, stream).await?;
    Ok((StatusCode::CREATED, Json(ObjectView::from(&info))).into_response())
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n`.
fn parse_range(v: &str) -> Option<ByteRange> {
    let spec = v.trim().strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    if a.is_empty() {
        return Some(ByteRange::Suffix { len: b.parse().ok()? });
    }
    let first = a.parse().ok()?;
    let last = if b.is_empty() { None } else { Some(b.parse().ok()?) };
    Some(ByteRange::FromTo { first, last })
}

/// Download an object (or the `Range` asked for) as `caller`: the response streams the
/// bytes with the object's type. Share links download through here too.
pub async fn download(
    gateway: &Gateway,
    caller: &Caller,
    bucket: &str,
    key: &str,
    headers: &HeaderMap,
) -> Result<(ObjectInfo, Response), Problem> {
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(v) => Some(parse_range(v).ok_or_else(|| Problem::new(StatusCode::RANGE_NOT_SATISFIABLE, "bad Range"))?),
    };
    let (info, (start, end), stream) = gateway.get_object(caller, bucket, key, range, &Conditions::default()).await?;
    Ok((info.clone(), streamed(&info, range.is_some(), (start, end), stream)))
}

fn streamed(info: &ObjectInfo, partial: bool, (start, end): (u64, u64), stream: ByteStream) -> Response {
    let status = if partial { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    let mut resp = (status, Body::from_stream(stream)).into_response();
    let h = resp.headers_mut();
    let ct = info.meta.content_type.as_deref().unwrap_or("application/octet-stream");
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(ct).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", info.etag)) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    // Objects are anyone's content, served on the web console's origin: never let one run as
    // a page of that origin (an uploaded HTML file opened in a browser), nor be sniffed into
    // a script or a style sheet.
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if partial && let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{}", start, end.saturating_sub(1), info.size))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    resp
}

/// `Content-Disposition: attachment` naming the key's last segment: an ASCII `filename`
/// and the exact one as RFC 5987's `filename*` (as share links name theirs).
fn attachment(key: &str) -> HeaderValue {
    let name = key.rsplit('/').find(|s| !s.is_empty()).unwrap_or("download");
    let ascii: String = name
        .chars()
        .map(|c| if c == ' ' || (c.is_ascii_graphic() && c != '"' && c != '\\') { c } else { '_' })
        .collect();
    HeaderValue::from_str(&format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{}", urlencoding::encode(name)))
        .unwrap_or(HeaderValue::from_static("attachment"))
}

/// Download an object, whole or the `Range` asked for; with `download=1`, as an attachment.
/// Object responses carry `Content-Security-Policy: sandbox`: opened in a browser, an
/// object never runs as a page of this origin.
#[utoipa::path(get, operation_id = "get_object", path = "/buckets/{name}/objects/{*key}", tag = "objects",
    params(("name" = String, Path), ("key" = String, Path, description = "the object key; `/` allowed"),
        ("Range" = Option<String>, Header, description = "`bytes=first-last`, `bytes=first-` or `bytes=-suffix`"),
        DownloadParams),
    responses((status = 200, description = "the object", content_type = "*/*", body = crate::views::Binary),
        (status = 206, description = "the range asked for", content_type = "*/*", body = crate::views::Binary),
        (status = 416, description = "the range is outside the object", body = crate::problem::Problem,
            content_type = "application/problem+json")))]
pub async fn get(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path((bucket, key)): Path<(String, String)>,
    Query(p): Query<DownloadParams>,
    headers: HeaderMap,
) -> Answer {
    let as_attachment = match p.download.as_deref() {
        None | Some("" | "0" | "false") => false,
        Some("1" | "true") => true,
        Some(_) => return Err(Problem::bad_request("download must be 1 or 0")),
    };
    let mut resp = download(&st.gateway, &c, &bucket, &key, &headers).await?.1;
    if as_attachment {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, attachment(&key));
    }
    Ok(resp)
}

/// Delete an object (succeeds whether or not it exists).
#[utoipa::path(delete, operation_id = "delete_object", path = "/buckets/{name}/objects/{*key}", tag = "objects",
    params(("name" = String, Path), ("key" = String, Path, description = "the object key; `/` allowed")),
    responses((status = 204, description = "deleted")))]
pub async fn delete(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path((bucket, key)): Path<(String, String)>,
) -> Answer {
    st.gateway.delete_object(&c, &bucket, &key).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Copy an object into this bucket: read on the source, write here, and the same
/// classification on both sides.
#[utoipa::path(post, operation_id = "copy_object", path = "/buckets/{name}/copy", tag = "objects", params(("name" = String, Path)),
    request_body = CopyRequest, responses((status = 201, body = ObjectView)))]
pub async fn copy(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path(bucket): Path<String>,
    json: Result<Json<CopyRequest>, JsonRejection>,
) -> Answer {
    let req = body(json)?;
    let info = st
        .gateway
        .copy_object(&c, (&req.from_bucket, &req.from_key), (&bucket, &req.to_key), CopyInput::default())
        .await?;
    Ok((StatusCode::CREATED, Json(ObjectView::from(&info))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-4"), Some(ByteRange::FromTo { first: 0, last: Some(4) }));
        assert_eq!(parse_range("bytes=5-"), Some(ByteRange::FromTo { first: 5, last: None }));
        assert_eq!(parse_range("bytes=-3"), Some(ByteRange::Suffix { len: 3 }));
        assert_eq!(parse_range("items=0-1"), None);
        assert_eq!(parse_range("bytes=x-1"), None);
    }

    #[test]
    fn attachments_name_the_keys_last_segment() {
        assert_eq!(attachment("a/b/report.csv"), "attachment; filename=\"report.csv\"; filename*=UTF-8''report.csv");
        assert_eq!(
            attachment("dir/r\u{e9}sum\u{e9} \"x\".pdf"),
            "attachment; filename=\"r_sum_ _x_.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%22x%22.pdf"
        );
        assert_eq!(attachment("dir/"), "attachment; filename=\"dir\"; filename*=UTF-8''dir");
    }

    #[test]
    fn list_queries_stay_under_their_base() {
        let p = ListParams {
            prefix: "a/".into(),
            delimiter: Some("/".into()),
            start_after: Some("a/b".into()),
            max_keys: Some(5000),
        };
        let q = list_query("shared/", p);
        assert_eq!(q.prefix, "shared/a/");
        assert_eq!(q.start_after.as_deref(), Some("shared/a/b"));
        assert_eq!(q.max_keys, 1000);
        let q = list_query(
            "",
            ListParams { prefix: String::new(), delimiter: Some(String::new()), start_after: None, max_keys: Some(0) },
        );
        assert_eq!((q.delimiter, q.max_keys), (None, 1));
    }
}
