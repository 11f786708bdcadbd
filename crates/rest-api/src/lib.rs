//! # coffer-rest-api
//!
//! The JSON API for the web apps of a cluster, under `/api/v1`. A caller is a signed-in
//! user: an OIDC bearer token (`Authorization: Bearer …`), an access key signing the request
//! with SigV4 (as for S3), the web console's session cookie (with its CSRF token on every
//! state-changing request), or the identity headers of a trusted auth sidecar (oauth2-proxy,
//! keycloak-gatekeeper). Share links are the one exception: their URL is the credential.
//! The web console (`/console`, crate `coffer-console`) uses this API and nothing else.
//! Errors are RFC 9457 problem details (`application/problem+json`), all of them. The
//! OpenAPI document, `/api/v1/openapi.json`, is generated from the handlers' annotations,
//! which also route the requests, so the two cannot drift apart.
//!
//! ## Layout
//! - this file — [`router`], its state, and the OpenAPI document ([`openapi`]).
//! - [`auth`] — who is calling: bearer token, SigV4, console session cookie (and its CSRF
//!   token), trusted headers; signed payloads.
//! - [`me`] — the caller and their access keys.
//! - [`buckets`] — buckets and their grants (bucket admins only).
//! - [`projects`] — projects and their members.
//! - [`objects`] — objects: list, upload, download with `Range`, delete, copy; streamed.
//! - [`uploads`] — multipart uploads for large files: start, parts (streamed), complete, abort.
//! - [`links`] — share links: made, listed and revoked by users; opened by anyone.
//! - [`quotas`] — quotas and usage: seen by those concerned, set by the platform admin.
//! - [`users`] — every user with their quota and usage, for the platform admin.
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
pub mod uploads;
pub mod users;
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
    security(("bearer" = []), ("sigv4" = []), ("session" = []), ("sidecar" = [])),
    tags(
        (name = "me", description = "You, and your access keys"),
        (name = "buckets", description = "Buckets"),
        (name = "objects", description = "Objects, streamed"),
        (name = "sharing", description = "Grants and share links"),
        (name = "projects", description = "Projects and their members"),
        (name = "share links", description = "Opening a share link: no sign-in, the URL is the credential"),
        (name = "quotas", description = "Quotas and usage"),
        (name = "audit", description = "The audit trail"),
        (name = "users", description = "Users, for the platform admin"),
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
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                coffer_identity::console::SESSION_COOKIE,
                "the web console's session cookie, set by signing in at /console/login; POST, PUT, PATCH and \
                 DELETE requests must also carry the session's CSRF token (the cookie coffer_csrf) in the \
                 X-CSRF-Token header, or are refused with 403",
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
        .routes(routes!(uploads::create, uploads::list))
        .routes(routes!(uploads::put_part))
        .routes(routes!(uploads::list_parts))
        .routes(routes!(uploads::complete))
        .routes(routes!(uploads::abort))
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
        .routes(routes!(users::list))
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
        .layer(axum::middleware::from_fn(limit_json_bodies))
        .layer(axum::middleware::from_fn(auth::check_signed_payload))
        .layer(axum::middleware::from_fn(problem::into_problems))
        .layer(axum::middleware::from_fn(auth::close_after_unread_body))
        .with_state(state)
}

/// The largest JSON request body, in bytes: every JSON body but a multipart completion's.
/// Object contents and parts are streamed, never buffered, and are not bound by it.
pub const JSON_BODY_LIMIT: usize = 64 * 1024;
/// The largest multipart completion (`POST …/uploads/{upload_id}/complete`): up to 10 000
/// parts of about 60 bytes each.
pub const COMPLETE_BODY_LIMIT: usize = 1024 * 1024;

/// Middleware: the JSON extractors read at most [`JSON_BODY_LIMIT`] bytes (a completion
/// [`COMPLETE_BODY_LIMIT`]); past it the request is refused with 413.
async fn limit_json_bodies(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    use tower::{Layer, ServiceExt};
    let limit = if req.method() == axum::http::Method::POST && req.uri().path().ends_with("/complete") {
        COMPLETE_BODY_LIMIT
    } else {
        JSON_BODY_LIMIT
    };
    match axum::extract::DefaultBodyLimit::max(limit).layer(next).oneshot(req).await {
        Ok(resp) => resp,
        Err(never) => match never {},
    }
}

async fn openapi_json(doc: Arc<str>) -> Response {
    let mut resp = doc.to_string().into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}
