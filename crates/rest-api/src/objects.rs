//! Objects, streamed both ways:
//! `GET /buckets/{bucket}/objects?prefix&delimiter&start_after&max_keys` (a page),
//! `PUT|GET|DELETE /buckets/{bucket}/objects/{*key}` (upload with its Content-Type,
//! download with `Range`), `POST /buckets/{bucket}/copy` `{"from_bucket", "from_key", "to_key"}`.

use std::time::UNIX_EPOCH;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coffer_backend::{ByteRange, ListEntry, ListQuery, ObjectInfo, ObjectMeta};
use coffer_gateway::Conditions;
use coffer_gateway::objects::{CopyInput, PutInput};
use futures::TryStreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::RestState;
use crate::auth::Who;
use crate::problem::Problem;

type Answer = Result<Response, Problem>;

fn info_json(o: &ObjectInfo) -> Value {
    let ms = o.last_modified.duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    json!({"key": o.key, "size": o.size, "etag": o.etag, "last_modified_ms": ms, "content_type": o.meta.content_type})
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[serde(default)]
    prefix: String,
    delimiter: Option<String>,
    start_after: Option<String>,
    max_keys: Option<usize>,
}

/// One page; `next` is the `start_after` of the next page, or null at the end.
pub async fn list(
    State(st): State<RestState>,
    Who(c): Who,
    Path(bucket): Path<String>,
    Query(p): Query<ListParams>,
) -> Answer {
    let query = ListQuery {
        prefix: p.prefix,
        delimiter: p.delimiter.filter(|d| !d.is_empty()),
        start_after: p.start_after.filter(|s| !s.is_empty()),
        max_keys: p.max_keys.unwrap_or(1000).clamp(1, 1000),
    };
    let (_, page) = st.gateway.list_objects(&c, &bucket, &query).await?;
    let mut objects = Vec::new();
    let mut prefixes = Vec::new();
    let mut last = None;
    for e in &page.entries {
        match e {
            ListEntry::Object(o) => {
                objects.push(info_json(o));
                last = Some(o.key.clone());
            }
            ListEntry::CommonPrefix(p) => {
                prefixes.push(p.clone());
                last = Some(p.clone());
            }
        }
    }
    let next = if page.is_truncated { last } else { None };
    Ok(Json(json!({"objects": objects, "prefixes": prefixes, "next": next})).into_response())
}

/// Upload: the body streams to the tier; `Content-Type` is kept.
pub async fn put(
    State(st): State<RestState>,
    Who(c): Who,
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
    Ok((StatusCode::CREATED, Json(info_json(&info))).into_response())
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

/// Download, whole or a `Range`.
pub async fn get(
    State(st): State<RestState>,
    Who(c): Who,
    Path((bucket, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Answer {
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        None => None,
        Some(v) => Some(parse_range(v).ok_or_else(|| Problem::new(StatusCode::RANGE_NOT_SATISFIABLE, "bad Range"))?),
    };
    let (info, (start, end), stream) =
        st.gateway.get_object(&c, &bucket, &key, range, &Conditions::default()).await.map_err(|e| match e {
            coffer_gateway::Error::InvalidRange => Problem::new(StatusCode::RANGE_NOT_SATISFIABLE, e.to_string()),
            e => e.into(),
        })?;
    let status = if range.is_some() { StatusCode::PARTIAL_CONTENT } else { StatusCode::OK };
    let mut resp = (status, Body::from_stream(stream)).into_response();
    let h = resp.headers_mut();
    let ct = info.meta.content_type.as_deref().unwrap_or("application/octet-stream");
    if let Ok(v) = HeaderValue::from_str(ct) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(end - start));
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", info.etag)) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if range.is_some()
        && let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{}", start, end.saturating_sub(1), info.size))
    {
        h.insert(header::CONTENT_RANGE, v);
    }
    Ok(resp)
}

pub async fn delete(State(st): State<RestState>, Who(c): Who, Path((bucket, key)): Path<(String, String)>) -> Answer {
    st.gateway.delete_object(&c, &bucket, &key).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopyRequest {
    from_bucket: String,
    from_key: String,
    to_key: String,
}

/// Copy into this bucket (read on the source, write here, one classification).
pub async fn copy(
    State(st): State<RestState>,
    Who(c): Who,
    Path(bucket): Path<String>,
    json: Result<Json<CopyRequest>, JsonRejection>,
) -> Answer {
    let Json(req) = json.map_err(|e| Problem::new(StatusCode::BAD_REQUEST, e.body_text()))?;
    let info = st
        .gateway
        .copy_object(&c, (&req.from_bucket, &req.from_key), (&bucket, &req.to_key), CopyInput::default())
        .await?;
    Ok((StatusCode::CREATED, Json(info_json(&info))).into_response())
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
}
