//! # coffer-rest-api
//!
//! The JSON API for the web apps of a cluster, under `/api/v1`. A caller is a signed-in
//! user: an OIDC bearer token (`Authorization: Bearer …`), or the identity headers of a
//! trusted auth sidecar (oauth2-proxy, keycloak-gatekeeper). Errors are RFC 9457 problem
//! details (`application/problem+json`).
//!
//! ## Layout
//! - this file — [`router`] and its state.
//! - [`auth`] — who is calling: bearer token first, then trusted headers.
//! - [`buckets`] — buckets, their grants (bucket admins only), and projects.
//! - [`objects`] — objects: list, upload, download with `Range`, delete, copy; streamed.
//! - [`problem`] — the error document.
//!
//! So far: `GET /me`; buckets (list, create, get, delete); grants (list, add, remove);
//! projects (create); objects (list, upload, download, delete, copy). Access keys, share
//! links, the audit view and the OpenAPI document follow on the same authentication.

use std::sync::Arc;

use axum::Router;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use coffer_gateway::Gateway;
use coffer_identity::TrustedHeaders;
use serde_json::json;

pub mod auth;
pub mod buckets;
pub mod objects;
pub mod problem;

/// What the handlers share.
#[derive(Clone)]
pub struct RestState {
    pub gateway: Arc<Gateway>,
    /// The sidecar-header rule; `None` ignores such headers everywhere.
    pub headers: Option<Arc<TrustedHeaders>>,
}

/// The routes under `/api/v1` (mount with `nest("/api/v1", …)`).
pub fn router(state: RestState) -> Router {
    Router::new()
        .route("/me", get(me))
        .route("/buckets", get(buckets::list).post(buckets::create))
        .route("/buckets/{name}", get(buckets::get_one).delete(buckets::delete))
        .route("/buckets/{name}/grants", get(buckets::list_grants).put(buckets::put_grant))
        .route("/buckets/{name}/grants/{kind}/{grantee}", axum::routing::delete(buckets::remove_grant))
        .route("/buckets/{name}/objects", get(objects::list))
        .route("/buckets/{name}/objects/{*key}", get(objects::get).put(objects::put).delete(objects::delete))
        .route("/buckets/{name}/copy", axum::routing::post(objects::copy))
        .route("/projects", axum::routing::post(buckets::create_project))
        .fallback(|| async { problem::Problem::new(axum::http::StatusCode::NOT_FOUND, "no such API route") })
        .with_state(state)
}

/// `GET /me`: who the API takes the caller for.
async fn me(auth::Who(c): auth::Who) -> Response {
    axum::Json(json!({
        "name": c.principal.name,
        "groups": c.principal.groups,
        "clearance": c.principal.clearance,
        "authenticated_by": c.access_key_id,
    }))
    .into_response()
}
