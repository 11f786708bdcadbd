//! Buckets and their grants:
//! `GET|POST /buckets`, `GET|DELETE /buckets/{name}`,
//! `GET|PUT /buckets/{name}/grants`, `DELETE /buckets/{name}/grants/{kind}/{grantee}`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use coffer_core::{Grant, Grantee};

use crate::RestState;
use crate::auth::Who;
use crate::problem::Problem;
use crate::views::{BucketView, NewBucket, NewGrant};

pub(crate) type Answer = Result<Response, Problem>;

/// A JSON request body, or a 400 problem saying what is wrong with it.
pub(crate) fn body<T>(j: Result<Json<T>, JsonRejection>) -> Result<T, Problem> {
    j.map(|Json(v)| v).map_err(|e| Problem::bad_request(e.body_text()))
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

/// The buckets you may read, with your role on each.
#[utoipa::path(get, operation_id = "list_buckets", path = "/buckets", tag = "buckets", responses((status = 200, body = Vec<BucketView>)))]
pub async fn list(State(st): State<RestState>, Who(c, _): Who) -> Answer {
    let all = st.gateway.visible_buckets(&c).await?;
    Ok(Json(all.into_iter().map(|(bucket, role)| BucketView { bucket, role }).collect::<Vec<_>>()).into_response())
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
    Ok((StatusCode::CREATED, Json(BucketView { bucket, role: coffer_core::Role::Admin })).into_response())
}

/// One bucket you may read.
#[utoipa::path(get, operation_id = "get_bucket", path = "/buckets/{name}", tag = "buckets", params(("name" = String, Path)),
    responses((status = 200, body = BucketView)))]
pub async fn get_one(State(st): State<RestState>, Who(c, _): Who, Path(name): Path<String>) -> Answer {
    let (bucket, role) = st.gateway.bucket_with_role(&c, &name).await?;
    Ok(Json(BucketView { bucket, role }).into_response())
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
