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
//! - [`problem`] — the error document.
//!
//! So far the API answers `GET /api/v1/me`; buckets, objects, grants, projects, keys,
//! share links and the audit view follow on the same authentication.

use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use coffer_gateway::Gateway;
use coffer_identity::TrustedHeaders;
use serde_json::json;

pub mod auth;
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
    Router::new().route("/me", get(me)).with_state(state)
}

/// `GET /me`: who the API takes the caller for.
async fn me(
    State(st): State<RestState>,
    ConnectInfo(remote): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
) -> Response {
    match auth::authenticate(&st, remote.ip(), &headers).await {
        Ok(caller) => axum::Json(json!({
            "name": caller.principal.name,
            "groups": caller.principal.groups,
            "clearance": caller.principal.clearance,
            "authenticated_by": caller.via,
        }))
        .into_response(),
        Err(p) => p.into_response(),
    }
}
