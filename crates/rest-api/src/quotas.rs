//! Quotas and usage: `GET|PUT|DELETE /buckets/{name}/quota`, `GET|PUT|DELETE
//! /users/{name}/quota`, `GET /me/quota`. Anyone who may list a bucket sees its quota and
//! usage; a user sees their own; only the platform admin sets and removes quotas.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use coffer_core::{Quota, QuotaScope};
use coffer_gateway::quotas::QuotaReport;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::RestState;
use crate::auth::Who;
use crate::buckets::{Answer, body};

/// A quota (null limits: none set) and what is used of it.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaView {
    pub scope: QuotaScope,
    /// Bytes allowed; null: no byte limit.
    pub max_bytes: Option<u64>,
    /// Objects allowed; null: no object limit.
    pub max_objects: Option<u64>,
    /// Bytes stored.
    pub bytes: u64,
    /// Objects stored.
    pub objects: u64,
}

impl From<QuotaReport> for QuotaView {
    fn from(r: QuotaReport) -> Self {
        Self {
            max_bytes: r.quota.as_ref().and_then(|q| q.max_bytes),
            max_objects: r.quota.as_ref().and_then(|q| q.max_objects),
            scope: r.scope,
            bytes: r.usage.bytes,
            objects: r.usage.objects,
        }
    }
}

/// `PUT …/quota`: at least one limit.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQuota {
    #[schema(minimum = 0, maximum = 9223372036854775807_u64)]
    pub max_bytes: Option<u64>,
    #[schema(minimum = 0, maximum = 9223372036854775807_u64)]
    pub max_objects: Option<u64>,
}

/// A bucket's quota and usage (anyone who may list the bucket).
#[utoipa::path(get, operation_id = "get_bucket_quota", path = "/buckets/{name}/quota", tag = "quotas",
    params(("name" = String, Path)), responses((status = 200, body = QuotaView)))]
pub async fn get_bucket(State(st): State<RestState>, Who(c, _): Who, Path(name): Path<String>) -> Answer {
    Ok(Json(QuotaView::from(st.gateway.bucket_quota(&c, &name).await?)).into_response())
}

/// Set a bucket's quota (the platform admin).
#[utoipa::path(put, operation_id = "put_bucket_quota", path = "/buckets/{name}/quota", tag = "quotas",
    params(("name" = String, Path)), request_body = NewQuota, responses((status = 200, body = Quota)))]
pub async fn put_bucket(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path(name): Path<String>,
    json: Result<Json<NewQuota>, JsonRejection>,
) -> Answer {
    let q = body(json)?;
    Ok(Json(st.gateway.set_quota(&c, QuotaScope::Bucket(name), q.max_bytes, q.max_objects).await?).into_response())
}

/// Remove a bucket's quota (the platform admin).
#[utoipa::path(delete, operation_id = "delete_bucket_quota", path = "/buckets/{name}/quota", tag = "quotas",
    params(("name" = String, Path)), responses((status = 204, description = "removed")))]
pub async fn delete_bucket(State(st): State<RestState>, Who(c, _): Who, Path(name): Path<String>) -> Answer {
    st.gateway.remove_quota(&c, &QuotaScope::Bucket(name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A user's quota over all the buckets they own, and their usage (the user, the platform
/// admin).
#[utoipa::path(get, operation_id = "get_user_quota", path = "/users/{name}/quota", tag = "quotas",
    params(("name" = String, Path)), responses((status = 200, body = QuotaView)))]
pub async fn get_user(State(st): State<RestState>, Who(c, _): Who, Path(name): Path<String>) -> Answer {
    Ok(Json(QuotaView::from(st.gateway.user_quota(&c, &name).await?)).into_response())
}

/// Set a user's quota (the platform admin).
#[utoipa::path(put, operation_id = "put_user_quota", path = "/users/{name}/quota", tag = "quotas",
    params(("name" = String, Path)), request_body = NewQuota, responses((status = 200, body = Quota)))]
pub async fn put_user(
    State(st): State<RestState>,
    Who(c, _): Who,
    Path(name): Path<String>,
    json: Result<Json<NewQuota>, JsonRejection>,
) -> Answer {
    let q = body(json)?;
    Ok(Json(st.gateway.set_quota(&c, QuotaScope::User(name), q.max_bytes, q.max_objects).await?).into_response())
}

/// Remove a user's quota (the platform admin).
#[utoipa::path(delete, operation_id = "delete_user_quota", path = "/users/{name}/quota", tag = "quotas",
    params(("name" = String, Path)), responses((status = 204, description = "removed")))]
pub async fn delete_user(State(st): State<RestState>, Who(c, _): Who, Path(name): Path<String>) -> Answer {
    st.gateway.remove_quota(&c, &QuotaScope::User(name)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Your own quota and usage.
#[utoipa::path(get, operation_id = "get_my_quota", path = "/me/quota", tag = "me",
    responses((status = 200, body = QuotaView)))]
pub async fn get_mine(State(st): State<RestState>, Who(c, _): Who) -> Answer {
    let me = c.principal.name.clone();
    Ok(Json(QuotaView::from(st.gateway.user_quota(&c, &me).await?)).into_response())
}
