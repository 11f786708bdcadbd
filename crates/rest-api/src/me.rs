//! The caller: `GET /me`; their access keys: `GET|POST /me/keys`, `DELETE /me/keys/{id}`.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use coffer_core::AccessKey;
use coffer_gateway::keys::KeyRequest;

use crate::RestState;
use crate::auth::Who;
use crate::buckets::{Answer, body};
use crate::views::{CreatedKey, Me, NewKey};

/// Who the API takes you for.
#[utoipa::path(get, operation_id = "get_me", path = "/me", tag = "me", responses((status = 200, body = Me)))]
pub async fn me(Who(c, via): Who) -> Answer {
    let p = c.principal;
    Ok(Json(Me {
        name: p.name,
        groups: p.groups.into_iter().collect(),
        clearance: p.clearance.into_iter().collect(),
        is_admin: p.is_admin,
        authenticated_by: via.to_owned(),
    })
    .into_response())
}

/// Your access keys, revoked ones included (never their secrets).
#[utoipa::path(get, operation_id = "list_my_keys", path = "/me/keys", tag = "me", responses((status = 200, body = Vec<AccessKey>)))]
pub async fn list_keys(State(st): State<RestState>, Who(c, _): Who) -> Answer {
    Ok(Json(st.gateway.list_own_keys(&c).await?).into_response())
}

/// A new access key for S3 clients; its secret is in this answer only.
#[utoipa::path(post, operation_id = "create_my_key", path = "/me/keys", tag = "me", request_body = NewKey,
    responses((status = 201, body = CreatedKey)))]
pub async fn create_key(
    State(st): State<RestState>,
    Who(c, _): Who,
    json: Result<Json<NewKey>, JsonRejection>,
) -> Answer {
    let req = body(json)?;
    let req = KeyRequest {
        read_only: req.read_only,
        buckets: req.buckets,
        classification: req.classification,
        expires_in: req.expires_in_seconds,
    };
    let k = st.gateway.create_own_key(&c, &req).await?;
    let created =
        CreatedKey { access_key_id: k.key.access_key_id.clone(), secret_access_key: k.secret_access_key, key: k.key };
    let mut resp = (StatusCode::CREATED, Json(created)).into_response();
    // A secret: no cache may keep it.
    resp.headers_mut().insert(axum::http::header::CACHE_CONTROL, axum::http::HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Revoke one of your keys; it stops working on every server within a second.
#[utoipa::path(delete, operation_id = "revoke_my_key", path = "/me/keys/{id}", tag = "me", params(("id" = String, Path)),
    responses((status = 204, description = "revoked")))]
pub async fn revoke_key(State(st): State<RestState>, Who(c, _): Who, Path(id): Path<String>) -> Answer {
    st.gateway.revoke_own_key(&c, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
