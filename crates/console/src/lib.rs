//! # coffer-console
//!
//! The web console, served by `coffer serve` at `/console` on the same listener as the S3
//! and REST APIs. The console is a browser app that uses only the documented REST API
//! (`/api/v1`); this crate gives it what a browser needs around that API:
//!
//! - **sign-in** with OpenID Connect — the authorization code flow with PKCE (`S256`), a
//!   `state` and a `nonce` — against the issuer of `[console]` (Keycloak in production):
//!   `GET /console/login` sends the browser to the issuer, `GET /console/callback` exchanges
//!   the code, verifies the ID token with the issuer's keys and settings (the audience being
//!   the console's client id) and sets the session cookie; `POST /console/logout` clears it
//!   (and ends the issuer's session when it offers RP-initiated logout). Behind an auth
//!   sidecar (`[trusted_headers]`) the sidecar signs people in instead and `/console/login`
//!   just goes back to `/console`.
//! - **the session cookie** `coffer_session` — self-describing and signed with a subkey of
//!   the server key (see `coffer_identity::console`), so that every replica accepts it
//!   without a database; HttpOnly, `SameSite=Lax`, `Secure` over https — and the
//!   JavaScript-readable `coffer_csrf`, whose token the app sends back in `X-CSRF-Token`
//!   (the REST API refuses state-changing cookie requests without it).
//! - **the app's files**, embedded in the binary ([`assets`]), with a strict
//!   Content-Security-Policy and friends on every answer.
//!
//! With neither `[console]` nor `[trusted_headers]`, `/console` answers how to enable it.
//!
//! ## Layout
//! - this file — [`Console`] and its [`router`](Console::router), the security headers,
//!   [`sandbox_responses`] for the rest of the origin.
//! - [`settings`] — `[console]`.
//! - [`login`] — sign-in, callback, sign-out; the cookies.
//! - [`assets`] — the embedded files.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use coffer_identity::{OidcVerifier, ServerKey};

pub mod assets;
pub mod login;
pub mod settings;

pub use settings::{ConsoleSection, ConsoleSettings};

/// The Content-Security-Policy of every console answer: the app's own files only, no
/// inline script or style, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; \
     script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/// Where the console lives.
pub const PREFIX: &str = "/console";

/// Is this path the console's (`/console`, `/console/…`)?
pub fn is_console_path(path: &str) -> bool {
    path == PREFIX || path.strip_prefix(PREFIX).is_some_and(|rest| rest.starts_with('/'))
}

/// What the console is built from.
pub struct ConsoleParts {
    /// `[console]`: OpenID Connect sign-in.
    pub settings: Option<ConsoleSettings>,
    /// An auth sidecar signs people in (`[trusted_headers]`).
    pub trusted_headers: bool,
    /// The externally visible base URL (`public_url`).
    pub public_url: Option<String>,
    /// Signs the cookies.
    pub server_key: ServerKey,
    /// Verifies the ID token (the configured issuers'); required with `settings`.
    pub verifier: Option<Arc<OidcVerifier>>,
}

/// The web console: enabled with OpenID Connect sign-in, behind an auth sidecar, or not at all.
#[derive(Clone, Default)]
pub struct Console {
    inner: Option<Arc<login::Inner>>,
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            None => f.write_str("Console(disabled)"),
            Some(i) => f
                .debug_struct("Console")
                .field("issuer", &i.oidc.as_ref().map(|o| o.settings.issuer.as_str()))
                .field("trusted_headers", &i.trusted_headers)
                .finish(),
        }
    }
}

impl Console {
    /// The console, or an error when `[console]` is set without a verifier for its issuer.
    /// Disabled when there is neither `[console]` nor an auth sidecar.
    pub fn new(parts: ConsoleParts) -> Result<Self, String> {
        if parts.settings.is_none() && !parts.trusted_headers {
            return Ok(Self::default());
        }
        let oidc = match parts.settings {
            None => None,
            Some(settings) => {
                let verifier = parts.verifier.ok_or("[console] needs its issuer among the [[oidc.issuers]]")?;
                Some(login::Oidc::new(settings, verifier))
            }
        };
        let public_url = parts.public_url.map(|u| u.trim_end_matches('/').to_owned());
        Ok(Self {
            inner: Some(Arc::new(login::Inner {
                key: parts.server_key,
                oidc,
                trusted_headers: parts.trusted_headers,
                public_url,
            })),
        })
    }

    /// Is the console served (rather than a page saying how to enable it)?
    pub fn is_enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// The routes under `/console` (merge them into the server's router).
    pub fn router(&self) -> Router {
        let routes = match &self.inner {
            None => Router::new().route(PREFIX, get(not_enabled)).route("/console/{*path}", get(not_enabled)),
            Some(inner) => Router::new()
                .route(PREFIX, get(app))
                .route("/console/", get(app))
                .route("/console/login", get(login::login))
                .route("/console/callback", get(login::callback))
                .route("/console/logout", post(login::logout))
                .route("/console/{*path}", get(app))
                .with_state(inner.clone()),
        };
        routes.layer(middleware::from_fn(security_headers))
    }
}

/// `/console` and its files.
async fn app(State(_): State<Arc<login::Inner>>, uri: axum::http::Uri, headers: HeaderMap) -> Response {
    let path = uri.path().strip_prefix(PREFIX).unwrap_or("");
    assets::serve(path, &headers)
}

/// What a server without a console answers.
async fn not_enabled() -> Response {
    let text = "The web console is not enabled on this server.\n\n\
        To enable it, give coffer a [console] section naming the OpenID Connect issuer people sign in\n\
        with (one of the [[oidc.issuers]]) and the console's client id there:\n\n\
        \x20   [console]\n\
        \x20   issuer = \"https://keycloak.example/realms/platform\"\n\
        \x20   client_id = \"coffer-console\"\n\n\
        or, behind an auth proxy that signs people in, a [trusted_headers] section.\n\
        See \"Web console\" in coffer's README.\n";
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

/// Middleware: the security headers of every console answer.
async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    resp
}

/// Middleware for everything else on the console's origin (the S3 API, the REST API): an
/// answer without a Content-Security-Policy gets `sandbox`, so that content users stored
/// (an HTML file fetched through a presigned URL, say) never runs as a page of this
/// origin — where it could read the CSRF cookie and act with the console's session.
pub async fn sandbox_responses(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    sandbox(&mut resp);
    resp
}

/// Sandbox one answer that does not set its own `Content-Security-Policy` (see
/// [`sandbox_responses`]).
pub fn sandbox(resp: &mut Response) {
    if !resp.headers().contains_key(header::CONTENT_SECURITY_POLICY) {
        resp.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_paths() {
        assert!(is_console_path("/console"));
        assert!(is_console_path("/console/"));
        assert!(is_console_path("/console/app.js"));
        assert!(!is_console_path("/consoles"));
        assert!(!is_console_path("/console-data/key"));
        assert!(!is_console_path("/api/v1/me"));
    }
}
