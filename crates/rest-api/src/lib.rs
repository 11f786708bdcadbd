//! # coffer-rest-api
//!
//! The JSON API for the web apps of a cluster, under `/api/v1`. A caller is a signed-in
//! user: an OIDC bearer token (`Authorization: Bearer …`), an access key signing the request
//! with SigV4 (as for S3), or the identity headers of a trusted auth sidecar (oauth2-proxy,
//! keycloak-gatekeeper). Share links are the one exception: their URL is the credential.
//! Errors are RFC 9457 problem details (`application/problem+json`), all of them. The
//! OpenAPI document, `/api/v1/openapi.json`, is generated from the handlers' annotations,
//! which also route the requests, so the two cannot drift apart.
//!
//! ## Layout
//! - this file — [`router`], its state, and the OpenAPI document ([`openapi`]).
//! - [`auth`] — who is calling: bearer token, SigV4, trusted headers; signed payloads.
//! - [`me`] — the caller and their access keys.
//! - [`buckets`] — buckets and their grants (bucket admins only).
//! - [`projects`] — projects and their members.
//! - [`objects`] — objects: list, upload, download with `Range`, delete, copy; streamed.
//! - [`links`] — share links: made, listed and revoked by users; opened by anyone.
//! - [`quotas`] — quotas and usage: seen by those concerned, set by the platform admin.
//! - [`audit`] — the audit trail, for the platform admin and bucket admins.
//! - [`views`] — the JSON bodies and their schemas.
//! - [`problem`] — the error document, and the middleware that makes every error one.

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use coffer_gateway::Gateway;
use coffer_identity::TrustedHeaders;
use utoipa::OpenApi;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{RefOr, ResponseBuilder, content::ContentBuilder};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod audit;
pub mod auth;
pub mod buckets;
pub mod links;
pub mod me;
pub mod objects;
pub mod problem;
pub mod projects;
pub mod quotas;
pub mod views;

/// What the handlers share.
#[derive(Clone)]
pub struct RestState {
    pub gateway: Arc<Gateway>,
    /// The sidecar-header rule; `None` ignores such headers everywhere.
    pub headers: Option<Arc<TrustedHeaders>>,
    /// The externally visible base URL (`https://coffer.example`), for share links; `None`:
    /// the request's own host.
    pub public_url: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "coffer",
        description = "Object storage for the users and projects of a data platform: buckets, \
            objects, sharing (grants, projects, share links), access keys and the audit trail. \
            Errors are RFC 9457 problem details.",
        license(name = "Apache-2.0")
    ),
    servers((url = "/api/v1")),
    security(("bearer" = []), ("sigv4" = []), ("sidecar" = [])),
    tags(
        (name = "me", description = "You, and your access keys"),
        (name = "buckets", description = "Buckets"),
        (name = "objects", description = "Objects, streamed"),
        (name = "sharing", description = "Grants and share links"),
        (name = "projects", description = "Projects and their members"),
        (name = "share links", description = "Opening a share link: no sign-in, the URL is the credential"),
        (name = "quotas", description = "Quotas and usage"),
        (name = "audit", description = "The audit trail"),
    )
)]
struct ApiDoc;

/// The statuses any operation may answer besides its own, all as problem details.
const COMMON_ERRORS: [(&str, &str); 7] = [
    ("400", "the request is malformed"),
    ("401", "not signed in, or the credential was refused"),
    ("403", "signed in, but not allowed"),
    ("404", "no such bucket, object, project, key or link"),
    ("409", "conflicts with the current state"),
    ("413", "the body is too large"),
    ("503", "the metadata store or a tier is unavailable; try again"),
];

/// What every operation shares: the security schemes, the problem responses, and the
/// paths written for axum (`{*key}`) in OpenAPI's form (`{key}`).
struct Conventions;

impl utoipa::Modify for Conventions {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build()),
        );
        components.add_security_scheme(
            "sigv4",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "AWS Signature Version 4 with an access key (service `s3`), as S3 clients sign requests",
            ))),
        );
        components.add_security_scheme(
            "sidecar",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Forwarded-User",
                "identity headers set by the trusted auth sidecar (names configurable)",
            ))),
        );
        components.schemas.insert("Problem".into(), <problem::Problem as utoipa::PartialSchema>::schema());
        let problem = || {
            ContentBuilder::new().schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name("Problem")))).build()
        };
        let paths = std::mem::take(&mut api.paths.paths);
        for (path, mut item) in paths {
            for op in [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.head, &mut item.patch]
                .into_iter()
                .flatten()
            {
                for (status, description) in COMMON_ERRORS {
                    op.responses.responses.entry(status.to_owned()).or_insert_with(|| {
                        RefOr::T(
                            ResponseBuilder::new()
                                .description(description)
                                .content(problem::PROBLEM_JSON, problem())
                                .build(),
                        )
                    });
                }
            }
            api.paths.paths.insert(path.replace("{*", "{"), item);
        }
    }
}

/// The routes and the document, from the same annotations.
fn routes() -> OpenApiRouter<RestState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(me::me))
        .routes(routes!(me::list_keys, me::create_key))
        .routes(routes!(me::revoke_key))
        .routes(routes!(buckets::list, buckets::create))
        .routes(routes!(buckets::get_one, buckets::delete))
        .routes(routes!(buckets::list_grants, buckets::put_grant))
        .routes(routes!(buckets::remove_grant))
        .routes(routes!(objects::list))
        .routes(routes!(objects::get, objects::put, objects::delete))
        .routes(routes!(objects::copy))
        .routes(routes!(links::create, links::list_for_bucket))
        .routes(routes!(links::list_own))
        .routes(routes!(links::revoke))
        .routes(routes!(links::open))
        .routes(routes!(links::open_key))
        .routes(routes!(projects::list, projects::create))
        .routes(routes!(projects::get_one, projects::delete))
        .routes(routes!(projects::list_members, projects::put_member))
        .routes(routes!(projects::remove_member))
        .routes(routes!(audit::list))
        .routes(routes!(quotas::get_bucket, quotas::put_bucket, quotas::delete_bucket))
        .routes(routes!(quotas::get_user, quotas::put_user, quotas::delete_user))
        .routes(routes!(quotas::get_mine))
}

/// The OpenAPI document (OpenAPI 3.1), as served at `/api/v1/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut api = routes().into_openapi();
    // After the routes have added their paths, so that it sees every operation.
    utoipa::Modify::modify(&Conventions, &mut api);
    api
}

/// The routes under `/api/v1` (mount with `nest("/api/v1", …)`).
pub fn router(state: RestState) -> Router {
    let (router, _) = routes().split_for_parts();
    let doc: Arc<str> = openapi().to_pretty_json().expect("the OpenAPI document serializes").into();
    router
        .route("/openapi.json", get(move || openapi_json(doc.clone())))
        .fallback(|| async { problem::Problem::new(axum::http::StatusCode::NOT_FOUND, "no such API route") })
        .layer(axum::middleware::from_fn(auth::check_signed_payload))
        .layer(axum::middleware::from_fn(problem::into_problems))
        .with_state(state)
}

async fn openapi_json(doc: Arc<str>) -> Response {
    let mut resp = doc.to_string().into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
