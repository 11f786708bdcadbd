//! Signing in and out, and the cookies.
//!
//! - `GET /console/login`: a fresh PKCE verifier, `state` and `nonce`, kept in the signed,
//!   short-lived login cookie (`Path=/console`, 10 minutes); then `302` to the issuer's
//!   `authorization_endpoint` (from discovery) with the `S256` challenge.
//! - `GET /console/callback`: the login cookie must open and its `state` come back; the code
//!   is exchanged at the `token_endpoint` with the verifier (and the client secret of a
//!   confidential client); the ID token must verify with the issuer's keys and settings, for
//!   the console's client id, with the `nonce`. Then the session cookie and the CSRF cookie
//!   are set and the browser goes to `/console`. Whatever happens, the login cookie is
//!   cleared: a callback works once.
//! - `POST /console/logout`: the cookies cleared; `302` to the issuer's
//!   `end_session_endpoint` (back to `/console` after) when discovery names one.
//!
//! The calls to the issuer block (HTTP) and run off the async runtime.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use coffer_identity::console::{self, LoginState, WebSession};
use coffer_identity::oidc::code_flow::{self, CodeExchange, CodeFlowError, ProviderMetadata};
use coffer_identity::{OidcVerifier, ServerKey, TokenError};
use serde::Deserialize;
use tokio::sync::Mutex;

use crate::settings::ConsoleSettings;

/// How long a sign-in may take between the redirect and the callback.
pub const LOGIN_SECONDS: i64 = 600;
/// How long discovery's answer is kept.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// Browsers keep cookies of up to 4096 bytes; a session with more groups cannot be kept.
const MAX_COOKIE: usize = 4000;

/// The console's shared state.
pub(crate) struct Inner {
    pub(crate) key: ServerKey,
    pub(crate) oidc: Option<Oidc>,
    pub(crate) trusted_headers: bool,
    pub(crate) public_url: Option<String>,
}

/// OpenID Connect sign-in: the settings, the verifier, the provider's endpoints.
pub(crate) struct Oidc {
    pub(crate) settings: ConsoleSettings,
    verifier: Arc<OidcVerifier>,
    discovered: Mutex<Option<(Instant, Arc<ProviderMetadata>)>>,
}

impl Oidc {
    pub(crate) fn new(settings: ConsoleSettings, verifier: Arc<OidcVerifier>) -> Self {
        Self { settings, verifier, discovered: Mutex::new(None) }
    }

    /// The provider's endpoints, from discovery (cached an hour; a failure is not cached).
    async fn metadata(&self) -> Result<Arc<ProviderMetadata>, CodeFlowError> {
        let mut cached = self.discovered.lock().await;
        if let Some((at, m)) = cached.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(m.clone());
        }
        let issuer = self.settings.issuer.clone();
        let m = blocking(move || code_flow::discover(&issuer)).await?;
        let m = Arc::new(m);
        *cached = Some((Instant::now(), m.clone()));
        Ok(m)
    }
}

/// Run blocking work (HTTP to the issuer) off the runtime.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, CodeFlowError> + Send + 'static,
) -> Result<T, CodeFlowError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| Err(CodeFlowError::Unavailable(e.to_string())))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Did the request come over https (directly, through a TLS-terminating proxy, or because the
/// public URL says so)? Then cookies are `Secure`.
fn is_https(inner: &Inner, headers: &HeaderMap, uri: &Uri) -> bool {
    inner.public_url.as_deref().is_some_and(|u| u.starts_with("https://"))
        || uri.scheme_str() == Some("https")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').next().is_some_and(|p| p.trim().eq_ignore_ascii_case("https")))
}

/// `https://host[:port]`: the public URL, else the request's own host.
fn base_url(inner: &Inner, headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(u) = &inner.public_url {
        return Some(u.clone());
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).or(uri.authority().map(|a| a.as_str()))?;
    let sane = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !sane {
        return None;
    }
    let scheme = if is_https(inner, headers, uri) { "https" } else { "http" };
    Some(format!("{scheme}://{host}"))
}

/// A `Set-Cookie` value. `max_age` 0 deletes the cookie.
fn cookie(name: &str, value: &str, path: &str, max_age: i64, http_only: bool, secure: bool) -> HeaderValue {
    let mut c = format!("{name}={value}; Path={path}; Max-Age={max_age}; SameSite=Lax");
    if http_only {
        c.push_str("; HttpOnly");
    }
    if secure {
        c.push_str("; Secure");
    }
    HeaderValue::from_str(&c).expect("cookie values are base64url")
}

/// The `Set-Cookie`s that delete the console's cookies.
fn clear_cookies(secure: bool, session_too: bool) -> Vec<HeaderValue> {
    let mut out = vec![cookie(console::LOGIN_COOKIE, "", "/console", 0, true, secure)];
    if session_too {
        out.push(cookie(console::SESSION_COOKIE, "", "/", 0, true, secure));
        out.push(cookie(console::CSRF_COOKIE, "", "/", 0, false, secure));
    }
    out
}

/// A redirect (`302`) that no cache keeps, with these cookies.
fn redirect(location: &str, cookies: Vec<HeaderValue>) -> Response {
    let mut resp = StatusCode::FOUND.into_response();
    let h = resp.headers_mut();
    h.insert(header::LOCATION, HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/console")));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in cookies {
        h.append(header::SET_COOKIE, c);
    }
    resp
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// A sign-in that did not work: a small page saying why, with a way to try again.
fn failed(status: StatusCode, why: &str, cookies: Vec<HeaderValue>) -> Response {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in failed · coffer</title>\
         <link rel=\"stylesheet\" href=\"/console/app.css\"></head>\n<body><main><h1>Sign-in failed</h1>\
         <p class=\"error\">{}</p><p><a href=\"/console/login\">Sign in again</a> · <a href=\"/console\">Back to the console</a></p>\
         </main></body></html>\n",
        escape(why)
    );
    let mut resp = (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response();
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for c in cookies {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    resp
}

/// `GET /console/login`.
pub(crate) async fn login(State(inner): State<Arc<Inner>>, headers: HeaderMap, uri: Uri) -> Response {
    let Some(oidc) = &inner.oidc else {
        // Behind an auth sidecar, which has signed the user in already.
        return redirect("/console", Vec::new());
    };
    let secure = is_https(&inner, &headers, &uri);
    let redirect_uri = match &oidc.settings.redirect_url {
        Some(u) => u.clone(),
        None => match base_url(&inner, &headers, &uri) {
            Some(base) => format!("{base}/console/callback"),
            None => return failed(StatusCode::BAD_REQUEST, "The request names no usable host.", Vec::new()),
        },
    };
    let meta = match oidc.metadata().await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(issuer = %oidc.settings.issuer, error = %e, "console sign-in: discovery failed");
            return failed(
                StatusCode::BAD_GATEWAY,
                "The identity provider cannot be reached; try again shortly.",
                Vec::new(),
            );
        }
    };
    let state = LoginState {
        state: console::random_token(),
        nonce: console::random_token(),
        verifier: console::random_token(),
        redirect_uri,
        expires_at: now() + LOGIN_SECONDS,
    };
    let enc = |s: &str| urlencoding::encode(s).into_owned();
    let query = [
        ("response_type", "code".to_owned()),
        ("client_id", enc(&oidc.settings.client_id)),
        ("redirect_uri", enc(&state.redirect_uri)),
        ("scope", enc(&oidc.settings.scopes.join(" "))),
        ("state", state.state.clone()),
        ("nonce", state.nonce.clone()),
        ("code_challenge", console::pkce_challenge(&state.verifier)),
        ("code_challenge_method", "S256".to_owned()),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={v}"))
    .collect::<Vec<_>>()
    .join("&");
    let sep = if meta.authorization_endpoint.contains('?') { '&' } else { '?' };
    let location = format!("{}{sep}{query}", meta.authorization_endpoint);
    let sealed = console::seal_login(&inner.key, &state);
    redirect(&location, vec![cookie(console::LOGIN_COOKIE, &sealed, "/console", LOGIN_SECONDS, true, secure)])
}

/// What the issuer sends back to the callback (other parameters are ignored).
#[derive(Debug, Deserialize)]
pub(crate) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
    /// RFC 9207: the issuer of the answer, when the provider says.
    iss: Option<String>,
}

/// `GET /console/callback`.
pub(crate) async fn callback(
    State(inner): State<Arc<Inner>>,
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<Callback>, QueryRejection>,
) -> Response {
    let Some(oidc) = &inner.oidc else { return redirect("/console", Vec::new()) };
    let secure = is_https(&inner, &headers, &uri);
    // The login cookie goes whatever happens: a callback works once.
    let cleared = || clear_cookies(secure, false);
    let refuse = |status: StatusCode, why: &str| {
        tracing::info!(reason = why, "console sign-in refused");
        failed(status, why, cleared())
    };
    let Ok(Query(q)) = query else {
        return refuse(StatusCode::BAD_REQUEST, "The callback's parameters are malformed.");
    };
    let cookies = || headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok());
    let login = match console::cookie_value(cookies(), console::LOGIN_COOKIE)
        .map(|c| console::open_login(&inner.key, c, now()))
    {
        Some(Ok(l)) => l,
        Some(Err(console::CookieError::Expired)) => {
            return refuse(StatusCode::BAD_REQUEST, "This sign-in took too long; sign in again.");
        }
        _ => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "This sign-in was not started here, was started in another browser, or has been used already.",
            );
        }
    };
    if let Some(error) = &q.error {
        let detail = q.error_description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default();
        return refuse(
            StatusCode::BAD_REQUEST,
            &format!("The identity provider did not sign you in: {error}{detail}."),
        );
    }
    let state_ok = q.state.as_deref().is_some_and(|s| constant_time_eq(s.as_bytes(), login.state.as_bytes()));
    if !state_ok {
        return refuse(StatusCode::BAD_REQUEST, "The sign-in's state does not match; sign in again.");
    }
    if q.iss.as_deref().is_some_and(|iss| iss != oidc.settings.issuer) {
        return refuse(StatusCode::BAD_REQUEST, "The answer comes from another identity provider.");
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return refuse(StatusCode::BAD_REQUEST, "The identity provider sent no code.");
    };
    let meta = match oidc.metadata().await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "console sign-in: discovery failed");
            return failed(
                StatusCode::BAD_GATEWAY,
                "The identity provider cannot be reached; try again shortly.",
                cleared(),
            );
        }
    };
    let secret = match &oidc.settings.client_secret_file {
        None => None,
        Some(path) => match std::fs::read_to_string(path) {
            Ok(s) => Some(s.trim().to_owned()),
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot read the console's client secret");
                return failed(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The console's client secret cannot be read; see the server log.",
                    cleared(),
                );
            }
        },
    };
    let (endpoint, client_id, redirect_uri, verifier) = (
        meta.token_endpoint.clone(),
        oidc.settings.client_id.clone(),
        login.redirect_uri.clone(),
        login.verifier.clone(),
    );
    let exchanged = blocking(move || {
        code_flow::exchange_code(&CodeExchange {
            token_endpoint: &endpoint,
            client_id: &client_id,
            client_secret: secret.as_deref(),
            code: &code,
            redirect_uri: &redirect_uri,
            code_verifier: &verifier,
        })
    })
    .await;
    let id_token = match exchanged {
        Ok(t) => t,
        Err(e @ CodeFlowError::Unavailable(_)) => {
            tracing::warn!(error = %e, "console sign-in: the token endpoint failed");
            return failed(
                StatusCode::BAD_GATEWAY,
                "The identity provider cannot be reached; try again shortly.",
                cleared(),
            );
        }
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &e.to_string()),
    };
    let verifier = oidc.verifier.clone();
    let (issuer, client_id, nonce) = (oidc.settings.issuer.clone(), oidc.settings.client_id.clone(), login.nonce);
    let verified =
        tokio::task::spawn_blocking(move || verifier.verify_id_token(&id_token, now(), &issuer, &client_id, &nonce))
            .await
            .unwrap_or_else(|e| Err(TokenError::KeysUnavailable(e.to_string())));
    let identity = match verified {
        Ok(id) => id,
        Err(e @ TokenError::KeysUnavailable(_)) => {
            tracing::warn!(error = %e, "console sign-in: the issuer's keys are unavailable");
            return failed(
                StatusCode::BAD_GATEWAY,
                "The identity provider cannot be reached; try again shortly.",
                cleared(),
            );
        }
        Err(e) => return refuse(StatusCode::BAD_REQUEST, &format!("The ID token was refused: {e}.")),
    };
    if !coffer_gateway::sessions::external_name_allowed(&identity.username) {
        return refuse(StatusCode::FORBIDDEN, &format!("The user name {:?} is reserved.", identity.username));
    }
    let t = now();
    let session = WebSession {
        user: identity.username.clone(),
        groups: identity.groups,
        source: format!("oidc:{}", identity.issuer),
        csrf: console::random_token(),
        issued_at: t,
        expires_at: t + oidc.settings.session_seconds,
    };
    let sealed = console::seal_session(&inner.key, &session);
    if sealed.len() + console::SESSION_COOKIE.len() > MAX_COOKIE {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Your account has too many groups to keep in a browser session; ask your administrator to map fewer \
             groups into the console's tokens.",
        );
    }
    tracing::info!(
        target: "coffer::audit",
        principal = %session.user,
        source = %session.source,
        expires_at = session.expires_at,
        "console session issued"
    );
    let max_age = oidc.settings.session_seconds;
    let mut cookies = cleared();
    cookies.push(cookie(console::SESSION_COOKIE, &sealed, "/", max_age, true, secure));
    cookies.push(cookie(console::CSRF_COOKIE, &session.csrf, "/", max_age, false, secure));
    redirect("/console", cookies)
}

/// `POST /console/logout`.
pub(crate) async fn logout(State(inner): State<Arc<Inner>>, headers: HeaderMap, uri: Uri) -> Response {
    let secure = is_https(&inner, &headers, &uri);
    let cookies = clear_cookies(secure, true);
    let Some(oidc) = &inner.oidc else { return redirect("/console", cookies) };
    let (Ok(meta), Some(base)) = (oidc.metadata().await, base_url(&inner, &headers, &uri)) else {
        return redirect("/console", cookies);
    };
    let Some(end) = &meta.end_session_endpoint else { return redirect("/console", cookies) };
    let sep = if end.contains('?') { '&' } else { '?' };
    let location = format!(
        "{end}{sep}client_id={}&post_logout_redirect_uri={}",
        urlencoding::encode(&oidc.settings.client_id),
        urlencoding::encode(&format!("{base}/console"))
    );
    redirect(&location, cookies)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inner(public_url: Option<&str>) -> Inner {
        Inner {
            key: ServerKey::generate(),
            oidc: None,
            trusted_headers: true,
            public_url: public_url.map(str::to_owned),
        }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_base_url_is_the_public_one_or_the_requests() {
        let uri: Uri = "/console/login".parse().unwrap();
        let h = headers(&[("host", "coffer.test:9000")]);
        assert_eq!(base_url(&inner(None), &h, &uri).as_deref(), Some("http://coffer.test:9000"));
        let h = headers(&[("host", "coffer.test"), ("x-forwarded-proto", "https")]);
        assert_eq!(base_url(&inner(None), &h, &uri).as_deref(), Some("https://coffer.test"));
        assert!(is_https(&inner(None), &h, &uri));
        let h = headers(&[("host", "evil.test/\"><script>")]);
        assert_eq!(base_url(&inner(None), &h, &uri), None);
        let public = inner(Some("https://coffer.example"));
        assert_eq!(
            base_url(&public, &headers(&[("host", "10.0.0.1")]), &uri).as_deref(),
            Some("https://coffer.example")
        );
        assert!(is_https(&public, &HeaderMap::new(), &uri));
        assert!(!is_https(&inner(Some("http://coffer.example")), &HeaderMap::new(), &uri));
    }

    #[test]
    fn cookies_carry_their_attributes() {
        let c = cookie(console::SESSION_COOKIE, "v1.a.b", "/", 28800, true, true);
        assert_eq!(c, "coffer_session=v1.a.b; Path=/; Max-Age=28800; SameSite=Lax; HttpOnly; Secure");
        let c = cookie(console::CSRF_COOKIE, "tok", "/", 60, false, false);
        assert_eq!(c, "coffer_csrf=tok; Path=/; Max-Age=60; SameSite=Lax");
        let cleared = clear_cookies(false, true);
        assert_eq!(cleared.len(), 3);
        assert!(
            cleared.iter().all(|c| c.to_str().unwrap().contains("=; ") && c.to_str().unwrap().contains("Max-Age=0"))
        );
    }

    #[test]
    fn failure_pages_escape_what_they_say() {
        assert_eq!(
            escape("<a href='x' title=\"y\">&</a>"),
            "&lt;a href=&#39;x&#39; title=&quot;y&quot;&gt;&amp;&lt;/a&gt;"
        );
        let resp = failed(StatusCode::BAD_REQUEST, "no", clear_cookies(false, false));
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert_eq!(resp.headers()[header::CACHE_CONTROL], "no-store");
        assert!(resp.headers()[header::SET_COOKIE].to_str().unwrap().starts_with("coffer_login=;"));
    }
}
