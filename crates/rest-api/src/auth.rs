//! Who is calling the REST API, in this order:
//! 1. `Authorization: Bearer <token>` — an OIDC token from a configured issuer;
//! 2. `Authorization: AWS4-HMAC-SHA256 …` — an access key (long-term, or STS session
//!    credentials with `x-amz-security-token`), signed as for S3 (service `s3`);
//! 3. the web console's session cookie (`coffer_session`) — state-changing requests (POST,
//!    PUT, PATCH, DELETE) must then carry the session's CSRF token in `X-CSRF-Token`, or are
//!    refused with 403 (a cross-site page can make a browser send the cookie, not the header);
//! 4. the identity headers of a trusted auth sidecar, believed only from its addresses;
//!
//! otherwise nobody: 401. A SigV4 request that declares its payload's SHA-256 has its body
//! checked as it streams ([`check_signed_payload`]): a body that does not match fails the
//! request before anything is stored.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{ConnectInfo, OriginalUri, Request};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::Response;
use coffer_core::{Narrowing, Principal};
use coffer_gateway::{Caller, RequestInfo};
use coffer_identity::HeaderOutcome;
use coffer_identity::console;
use coffer_identity::sigv4::{self, PayloadCheck, PayloadHash};
use http_body::{Body as HttpBody, Frame, SizeHint};

use crate::RestState;
use crate::problem::Problem;

/// The authenticated caller of a REST handler, and how it authenticated (`bearer`,
/// `sigv4`, `session` or `headers`). Refuses with a 401 problem (403 for a console session
/// without its CSRF token).
pub struct Who(pub Caller, pub &'static str);

impl axum::extract::FromRequestParts<RestState> for Who {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, st: &RestState) -> Result<Self, Problem> {
        let remote = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .ok_or_else(|| Problem::unauthorized("the client address is unknown"))?;
        let given = parts.extensions.get::<RequestInfo>().cloned().unwrap_or_default();
        let info = RequestInfo { source: remote.to_string(), ..given };
        // Behind `nest`, the URI has lost its `/api/v1`; a signature covers the whole path.
        let uri = parts.extensions.get::<OriginalUri>().map(|u| u.0.clone()).unwrap_or_else(|| parts.uri.clone());
        let (caller, via) = authenticate(st, remote.ip(), &parts.method, &uri, &parts.headers).await?;
        let caller = caller.in_request(Some(&info));
        if !caller.principal.is_admin
            && let Err(e) = st.gateway.ensure_personal_bucket(&caller.principal.name).await
        {
            tracing::warn!(principal = %caller.principal.name, error = %e, "cannot ensure the personal bucket");
        }
        Ok(Who(caller, via))
    }
}

fn external(principal: Principal, via: &'static str) -> (Caller, &'static str) {
    let caller = Caller {
        principal,
        narrowing: Narrowing::default(),
        access_key_id: via.to_owned(),
        request_id: String::new(),
        source: String::new(),
        read_only_endpoint: false,
    };
    (caller, via)
}

/// The caller of a request, from its method, (whole) URI and headers.
pub async fn authenticate(
    st: &RestState,
    remote: IpAddr,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(Caller, &'static str), Problem> {
    if let Some(auth) = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        if let Some(token) = auth.strip_prefix("Bearer ").map(str::trim) {
            return match st.gateway.principal_for_bearer(token).await {
                None => Err(Problem::unauthorized("no token issuer is configured")),
                Some(Ok(principal)) => Ok(external(principal, "bearer")),
                Some(Err(e)) => {
                    tracing::info!(%remote, error = %e, "bearer token refused");
                    Err(Problem::unauthorized(format!("the bearer token was refused: {e}")))
                }
            };
        }
        if let Some(parsed) = sigv4::parse_authorization(auth) {
            return signed(st, remote, parsed, method, uri, headers).await;
        }
        return Err(Problem::unauthorized("use Authorization: Bearer <token>, or sign the request with SigV4"));
    }
    let cookies = || headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok());
    // A session cookie that does not verify is set aside: the sidecar's headers may still
    // name the caller; if nothing does, the 401 says what was wrong with the cookie.
    let mut refused_cookie = None;
    if let Some(cookie) = console::cookie_value(cookies(), console::SESSION_COOKIE) {
        match st.gateway.principal_for_web_session(cookie) {
            Ok((principal, session)) => {
                if changes_state(method)
                    && !console::csrf_matches(&session, headers.get(console::CSRF_HEADER).and_then(|v| v.to_str().ok()))
                {
                    tracing::info!(%remote, principal = %principal.name, %method, "console request without its CSRF token refused");
                    return Err(Problem::new(StatusCode::FORBIDDEN, "missing or wrong CSRF token"));
                }
                return Ok(external(principal, "session"));
            }
            Err(e) => {
                tracing::info!(%remote, error = %e, "session cookie refused");
                refused_cookie = Some(e);
            }
        }
    }
    if let Some(rule) = &st.headers {
        let get = |name: &str| headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>();
        match rule.identify(remote, get) {
            HeaderOutcome::Trusted(id) => {
                return match st.gateway.principal_for_headers(&id) {
                    Some(principal) => Ok(external(principal, "headers")),
                    None => Err(Problem::unauthorized("that user name is reserved")),
                };
            }
            // Logged by `identify`; treated as if there were no such headers.
            HeaderOutcome::Untrusted | HeaderOutcome::Absent => {}
        }
    }
    if let Some(e) = refused_cookie {
        return Err(Problem::unauthorized(format!("the session cookie was refused: {e}")));
    }
    Err(Problem::unauthorized("sign in: send a bearer token, sign with an access key, or come through the auth proxy"))
}

/// Does a request of this method change state (and so need the CSRF token with a cookie)?
pub fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE)
}

/// A SigV4-signed request: the key's secret, the signature, then the caller behind the key.
async fn signed(
    st: &RestState,
    remote: IpAddr,
    parsed: Result<sigv4::SigV4Header, sigv4::SigV4Error>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<(Caller, &'static str), Problem> {
    let refused = |why: String| {
        tracing::info!(%remote, reason = %why, "SigV4 request refused");
        Problem::unauthorized(why)
    };
    let h = parsed.map_err(|e| refused(e.to_string()))?;
    let secret = st.gateway.secret_for_key(&h.access_key_id).await.map_err(|e| match e {
        coffer_gateway::Error::InvalidAccessKeyId => refused(e.to_string()),
        other => Problem::from(other),
    })?;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
    // Over HTTP/2 the host travels as the URI's authority, not as a header.
    let mut with_host;
    let headers = match (headers.contains_key(header::HOST), uri.authority()) {
        (false, Some(a)) => {
            with_host = headers.clone();
            if let Ok(v) = a.as_str().parse() {
                with_host.insert(header::HOST, v);
            }
            &with_host
        }
        _ => headers,
    };
    sigv4::verify(&h, method.as_str(), uri.path(), uri.query(), headers, &secret, now)
        .map_err(|e| refused(e.to_string()))?;
    let token = headers.get("x-amz-security-token").and_then(|v| v.to_str().ok());
    let caller = if coffer_identity::session::is_session_key(&h.access_key_id) {
        st.gateway.caller_for_session(&h.access_key_id, token)?
    } else if token.is_some() {
        return Err(Problem::from(coffer_gateway::Error::InvalidToken));
    } else {
        st.gateway.caller_for_key(&h.access_key_id).await?
    };
    Ok((caller, "sigv4"))
}

/// Middleware: when a SigV4 request declares its payload's SHA-256, check the body against
/// it as it streams. (The signature itself is checked when the handler asks who is calling;
/// a body is only ever read by a handler that has.)
pub async fn check_signed_payload(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes().starts_with(b"AWS4-HMAC-SHA256"))
        .then(|| req.headers().get("x-amz-content-sha256").and_then(|v| v.to_str().ok()))
        .flatten()
        .and_then(|v| <[u8; 32]>::try_from(hex::decode(v).ok()?).ok())
        .and_then(|h| PayloadHash::Sha256(h).check());
    match declared {
        None => next.run(req).await,
        Some(check) => next.run(req.map(|b| Body::new(Checked { inner: b, check: Some(check) }))).await,
    }
}

/// Middleware: an error answered before the request's body was read to its end (a refusal
/// of who is calling, a CSRF check) closes the connection, and says so — rather than leave
/// the unread body in a keep-alive connection the client would reuse.
pub async fn close_after_unread_body(req: Request, next: Next) -> Response {
    let h = req.headers();
    let declares_body = h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0");
    if !declares_body {
        return next.run(req).await;
    }
    let done = Arc::new(AtomicBool::new(false));
    let watched = done.clone();
    let mut resp = next.run(req.map(|b| Body::new(Watched { inner: b, done: watched }))).await;
    let refused = resp.status().is_client_error() || resp.status().is_server_error();
    if refused && !done.load(Ordering::Acquire) {
        resp.headers_mut().insert(header::CONNECTION, axum::http::HeaderValue::from_static("close"));
    }
    resp
}

/// A body that says when it has been read to its end.
struct Watched {
    inner: Body,
    done: Arc<AtomicBool>,
}

impl HttpBody for Watched {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            self.done.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A body whose SHA-256 is checked when it ends; a mismatch ends it with an error.
struct Checked {
    inner: Body,
    check: Option<PayloadCheck>,
}

impl HttpBody for Checked {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(check)) = (frame.data_ref(), this.check.as_mut()) {
                    check.update(data);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => match this.check.take().map(PayloadCheck::finish) {
                Some(false) => Poll::Ready(Some(Err(axum::Error::new(
                    "the body does not match the SHA-256 in x-amz-content-sha256",
                )))),
                _ => Poll::Ready(None),
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        // The check must run on the last poll, so never claim the end early.
        self.check.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
