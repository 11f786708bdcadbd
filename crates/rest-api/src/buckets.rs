//! Buckets and their grants:
//! `GET|POST /buckets` (each with the caller's role and how it is theirs), `GET|DELETE /buckets/{name}`,
//! `GET|PUT /buckets/{name}/grants`, `DELETE /buckets/{name}/grants/{kind}/{grantee}`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_core::{Bucket, Grant, Grantee, Role};
use coffer_gateway::Caller;

use crate::RestState;
use crate::auth::Who;
use crate::problem::Problem;
use crate::views::{BucketKind, BucketView, NewBucket, NewGrant};

pub(crate) type Answer = Result<Response, Problem>;

/// A JSON request body, or a problem saying what is wrong with it: 413 past the body
/// limit ([`crate::JSON_BODY_LIMIT`]), else 400.
pub(crate) fn body<T>(j: Result<Json<T>, JsonRejection>) -> Result<T, Problem> {
    j.map(|Json(v)| v).map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Problem::new(StatusCode::PAYLOAD_TOO_LARGE, e.body_text()),
        _ => Problem::bad_request(e.body_text()),
    })
}

/// Exactly one of `user` and `group`.
pub(crate) fn grantee(user: Option<String>, group: Option<String>) -> Result<Grantee, Problem> {
    match (user, group) {
        (Some(u), None) => Ok(Grantee::User(u)),
        (None, Some(g)) => Ok(Grantee::Group(g)),
        _ => Err(Problem::bad_request("give exactly one of `user` and `group`")),
    }
}

/// `user` or `group`, from a path.
pub(crate) fn grantee_of(kind: &str, name: String) -> Result<Grantee, Problem> {
    match kind {
        "user" => Ok(Grantee::User(name)),
        "group" => Ok(Grantee::Group(name)),
        _ => Err(Problem::new(StatusCode::NOT_FOUND, "grantee kinds are user and group")),
    }
}

/// How `bucket` is the caller's; `personal` are the names the caller's personal bucket may have.
fn kind_of(caller: &Caller, personal: &[String], bucket: &Bucket) -> BucketKind {
    if bucket.owner.starts_with("project:") {
        BucketKind::Project
    } else if bucket.owner != caller.principal.name {
        BucketKind::Shared
    } else if personal.iter().any(|p| p == bucket.name.as_str()) {
        BucketKind::Personal
    } else {
        BucketKind::Owned
    }
}

/// A bucket as the caller sees it.
fn view(st: &RestState, caller: &Caller, bucket: Bucket, role: Role) -> BucketView {
    let kind = kind_of(caller, &st.gateway.personal_bucket_names(&caller.principal.name), &bucket);
    BucketView { bucket, role, kind }
}

/// The buckets you may read, with your role on each and how each is yours (`personal`,
/// `owned`, `project` or `shared`).
#[utoipa::path(get, operation_id = "list_buckets", path = "/buckets", tag = "buckets", responses((status = 200, body = Vec<BucketView>)))]
pub async fn list(State(st): State<RestState>, Who(c, _): Who) -> Answer {
    let all = st.gateway.visible_buckets(&c).await?;
    let personal = st.gateway.personal_bucket_names(&c.principal.name);
    let views: Vec<BucketView> = all
        .into_iter()
        .map(|(bucket, role)| BucketView { kind: kind_of(&c, &personal, &bucket), bucket, role })
        .collect();
    Ok(Json(views).into_response())
}

/// Create a bucket you own (unclassified).
#[utoipa::path(post, operation_id = "create_bucket", path = "/buckets", tag = "buckets", request_body = NewBucket,
    responses((status = 201, body = BucketView)))]
pub async fn create(
    State(st): State<RestState>,
    Who(c, _): Who,
    json: Result<Json<NewBucket>, JsonRejection>,
) -> Answer {
    let req = body(json)?;
    let bucket = st.gateway.create_bucket(&c, &req.name, req.tier.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(view(&st, &c, bucket, Role::Admin))).into_response())
}

/// One bucket you may read.
#[utoipa::path(get, operation_id = "get_bucket", path = "/buckets/{name}", tag = "buckets", params(("name" = String, Path)),
    responses((status = 200, body = BucketView)))]
pub async fn get_one(State(st): State<RestState>, Who(c, _): Who, Path(name): Path<String>) -> Answer {
    let (bucket, role) = st.gateway.bucket_with_role(&c, &name).await?;
    Ok(Json(view(&st, &c, bucket, role)).into_response())
}

/// Delete an empty bucket (its admins).
#[utoipa::path(delete, operation_id = "delete_bucket", path = "/buckets/{name}", tag = "buckets", params(("name" = String, Path)),
    responses((status = 204, description = "deleted")))]
pub async fn delete(State(st): State<RestState>, Who(c, _): Who, Path(name): Path<String>) -> Answer {
    st.gateway.delete_bucket(&c, &name).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The grants on a bucket (its admins).
#[utoipa::path(get, operation_id = "list_grants", path = "/buckets/{name}/grants", tag = "sharing", params(("name" = String, Path)),
    responses((status = 200, body = Vec<Grant>)))]
pub async fn list_grants(State(st): State<RestState>, Who(c, _): Who, Path(name): Path<String>) -> Answer {
    Ok(Json(st.gateway.list_grants(&c, &name).await?).into_response())
}

/// Grant a user or a group a role on a bucket, or change it (the bucket's admins).
#[utoipa::path(put, operation_id = "put_grant", path = "/buckets/{name}/grants", tag = "sharing", params(("name" = String, Path)),
    request_body = NewGrant, responses((status = 200, body = Grant)))]
pub async fn put_grant(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path(name): Path<String>,
    json: Result<Json<NewGrant>, JsonRejection>,
) -> Answer {
    let req = body(json)?;
    let who = grantee(req.user, req.group)?;
    Ok(Json(st.gateway.put_grant(&c, &name, who, req.role).await?).into_response())
}

/// Remove a grant (the bucket's admins).
#[utoipa::path(delete, operation_id = "remove_grant", path = "/buckets/{name}/grants/{kind}/{grantee}", tag = "sharing",
    params(("name" = String, Path), ("kind" = String, Path, description = "`user` or `group`"), ("grantee" = String, Path)),
    responses((status = 204, description = "removed")))]
pub async fn remove_grant(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path((name, kind, who)): Path<(String, String, String)>,
) -> Answer {
    let who = grantee_of(&kind, who)?;
    st.gateway.remove_grant(&c, &name, &who).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
