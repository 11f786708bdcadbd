//! Share links. Managing them (signed in): `POST|GET /buckets/{name}/links`,
//! `GET /links`, `DELETE /links/{id}`. Using them (no sign-in: the URL is the credential):
//! `GET /share/{token}` — an object link downloads its object, a prefix link lists what it
//! shares — and `GET /share/{token}/{key}` — an object under a prefix link.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{Extensions, HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use coffer_core::ShareTarget;
use coffer_gateway::RequestInfo;
use coffer_gateway::links::{LinkView as Link, key_through};

use crate::RestState;
use crate::auth::Who;
use crate::buckets::{Answer, body};
use crate::objects::{download, list_query, page_json};
use crate::problem::Problem;
use crate::views::{LinkView, ListParams, NewLink, ObjectPage};

/// Where share URLs point: `public_url`, else this request's own host.
fn base_url(st: &RestState, headers: &HeaderMap) -> String {
    if let Some(u) = &st.public_url {
        return u.trim_end_matches('/').to_owned();
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
    format!("http://{host}")
}

fn view(st: &RestState, headers: &HeaderMap, l: Link) -> LinkView {
    let path = format!("/api/v1/share/{}", l.token);
    LinkView {
        url: format!("{}{path}", base_url(st, headers)),
        path,
        id: l.link.id,
        bucket: l.link.bucket.as_str().to_owned(),
        target: l.link.target,
        creator: l.link.creator.name,
        created_at: l.link.created_at,
        expires_at: l.link.expires_at,
        revoked_at: l.link.revoked_at,
    }
}

/// Make a share link to an object or a prefix (you need read on the bucket). Anyone with
/// the URL may read what it shares, as you, until it expires or is revoked.
#[utoipa::path(post, operation_id = "create_link", path = "/buckets/{name}/links", tag = "sharing", params(("name" = String, Path)),
    request_body = NewLink, responses((status = 201, body = LinkView)))]
pub async fn create(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path(bucket): Path<String>,
    headers: HeaderMap,
    json: Result<Json<NewLink>, JsonRejection>,
) -> Answer {
    let req = body(json)?;
    let target = match (req.key, req.prefix) {
        (Some(k), None) => ShareTarget::Object(k),
        (None, Some(p)) => ShareTarget::Prefix(p),
        _ => return Err(Problem::bad_request("give exactly one of `key` and `prefix`")),
    };
    let link = st.gateway.create_share_link(&c, &bucket, target, req.expires_in_seconds).await?;
    Ok((StatusCode::CREATED, Json(view(&st, &headers, link))).into_response())
}

/// Every link on a bucket (its admins).
#[utoipa::path(get, operation_id = "list_bucket_links", path = "/buckets/{name}/links", tag = "sharing", params(("name" = String, Path)),
    responses((status = 200, body = Vec<LinkView>)))]
pub async fn list_for_bucket(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path(bucket): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let links = st.gateway.list_bucket_links(&c, &bucket).await?;
    Ok(Json(links.into_iter().map(|l| view(&st, &headers, l)).collect::<Vec<_>>()).into_response())
}

/// The links you made, newest first.
#[utoipa::path(get, operation_id = "list_my_links", path = "/links", tag = "sharing", responses((status = 200, body = Vec<LinkView>)))]
pub async fn list_own(State(st): State<RestState>, Who(c, _): Who, headers: HeaderMap) -> Answer {
    let links = st.gateway.list_own_links(&c).await?;
    Ok(Json(links.into_iter().map(|l| view(&st, &headers, l)).collect::<Vec<_>>()).into_response())
}

/// Revoke a link (its creator, the bucket's admins). It stops working at once.
#[utoipa::path(delete, operation_id = "revoke_link", path = "/links/{id}", tag = "sharing", params(("id" = String, Path)),
    responses((status = 204, description = "revoked")))]
pub async fn revoke(State(st): State<RestState>, Who(c, _): Who, Path(id): Path<String>) -> Answer {
    st.gateway.revoke_share_link(&c, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Who is using a link: the request's id and the client's address, for the audit trail.
fn user_of_link(parts: &axum::http::Extensions) -> (String, String) {
    let id = parts.get::<RequestInfo>().map(|i| i.request_id.clone()).unwrap_or_default();
    let source = parts.get::<ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.to_string()).unwrap_or_default();
    (id, source)
}

/// `inline; filename*=UTF-8''<last segment of the key>`.
fn disposition(key: &str) -> Option<HeaderValue> {
    let name = key.rsplit('/').find(|s| !s.is_empty()).unwrap_or("download");
    HeaderValue::from_str(&format!("inline; filename*=UTF-8''{}", urlencoding::encode(name))).ok()
}

/// Open a share link (no sign-in): an object link downloads its object (`Range` works);
/// a prefix link answers a page of what it shares, keys relative to its prefix.
#[utoipa::path(get, operation_id = "open_link", path = "/share/{token}", tag = "share links", security(()),
    params(("token" = String, Path), ListParams),
    responses((status = 200, description = "the object (object links) or a page of the shared objects (prefix links)",
        content((ObjectPage = "application/json"), (crate::views::Binary = "*/*"))),
        (status = 206, description = "the range asked for", content_type = "*/*", body = crate::views::Binary),
        (status = 410, description = "the link expired or was revoked", body = Problem,
            content_type = "application/problem+json")))]
pub async fn open(
    State(st): State<RestState>,
    Path(token): Path<String>,
    query: Result<Query<ListParams>, QueryRejection>,
    headers: HeaderMap,
    ext: Extensions,
) -> Answer {
    let (request_id, source) = user_of_link(&ext);
    let (link, caller) = st.gateway.open_share_link(&token, &request_id, &source).await?;
    match &link.target {
        ShareTarget::Object(key) => {
            let (_, mut resp) = download(&st.gateway, &caller, link.bucket.as_str(), key, &headers).await?;
            if let Some(v) = disposition(key) {
                resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
            }
            Ok(resp)
        }
        ShareTarget::Prefix(prefix) => {
            let Query(p) = query.map_err(|e| Problem::bad_request(e.body_text()))?;
            let (_, page) = st.gateway.list_objects(&caller, link.bucket.as_str(), &list_query(prefix, p)).await?;
            Ok(Json(relative(page_json(&page), prefix)).into_response())
        }
    }
}

/// A page with the link's prefix taken off every key, prefix and `next`.
fn relative(mut page: ObjectPage, base: &str) -> ObjectPage {
    let cut = |s: &mut String| {
        if let Some(rest) = s.strip_prefix(base) {
            *s = rest.to_owned();
        }
    };
    page.objects.iter_mut().for_each(|o| cut(&mut o.key));
    page.prefixes.iter_mut().for_each(cut);
    if let Some(n) = page.next.as_mut() {
        cut(n);
    }
    page
}

/// An object under a prefix link (no sign-in); the key is relative to the link's prefix.
#[utoipa::path(get, operation_id = "open_link_object", path = "/share/{token}/{*key}", tag = "share links", security(()),
    params(("token" = String, Path), ("key" = String, Path, description = "the key under the link's prefix")),
    responses((status = 200, description = "the object", content_type = "*/*", body = crate::views::Binary),
        (status = 206, description = "the range asked for", content_type = "*/*", body = crate::views::Binary),
        (status = 410, description = "the link expired or was revoked", body = Problem,
            content_type = "application/problem+json")))]
pub async fn open_key(
    State(st): State<RestState>,
    Path((token, sub)): Path<(String, String)>,
    headers: HeaderMap,
    ext: Extensions,
) -> Answer {
    let (request_id, source) = user_of_link(&ext);
    let (link, caller) = st.gateway.open_share_link(&token, &request_id, &source).await?;
    let key = key_through(&link.target, &sub)?;
    let (_, mut resp) = download(&st.gateway, &caller, link.bucket.as_str(), &key, &headers).await?;
    if let Some(v) = disposition(&key) {
        resp.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::ObjectView;

    #[test]
    fn listings_through_a_link_are_relative_to_its_prefix() {
        let o = |k: &str| ObjectView {
            key: k.into(),
            size: 1,
            etag: "e".into(),
            last_modified: String::new(),
            content_type: None,
        };
        let page =
            ObjectPage { objects: vec![o("p/a"), o("p/b")], prefixes: vec!["p/d/".into()], next: Some("p/d/".into()) };
        let r = relative(page, "p/");
        assert_eq!(r.objects.iter().map(|o| o.key.as_str()).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(r.prefixes, ["d/"]);
        assert_eq!(r.next.as_deref(), Some("d/"));
    }

    #[test]
    fn downloads_are_named_after_the_key() {
        assert_eq!(disposition("a/b/report 1.csv").unwrap(), "inline; filename*=UTF-8''report%201.csv");
        assert_eq!(disposition("dir/").unwrap(), "inline; filename*=UTF-8''dir");
    }
}
