//! RFC 9457 problem details: `{"type", "title", "status", "detail"}` as
//! `application/problem+json`, for every error the API answers — the gateway's domain
//! errors (mapped once, here) and the framework's own refusals (a malformed query or path,
//! an unknown route or method), which [`into_problems`] rewrites.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The media type of every error answer.
pub const PROBLEM_JSON: &str = "application/problem+json";
/// The `Retry-After` of a `503`, in seconds.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// An error answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`: the status says what kind of problem it is.
    #[serde(rename = "type")]
    pub kind: String,
    /// The status's reason phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, in words meant for the user.
    pub detail: String,
}

impl Problem {
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self {
            kind: "about:blank".into(),
            title: status.canonical_reason().unwrap_or("Error").into(),
            status: status.as_u16(),
            detail: detail.into(),
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_string(&self).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            // The metadata store or a tier is down: say how soon a retry may succeed.
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        resp
    }
}

impl From<coffer_gateway::Error> for Problem {
    fn from(e: coffer_gateway::Error) -> Self {
        use coffer_gateway::Error as E;
        let status = match &e {
            E::AccessDenied | E::Forbidden(_) | E::QuotaExceeded(_) => StatusCode::FORBIDDEN,
            E::InvalidAccessKeyId | E::InvalidToken | E::ExpiredToken => StatusCode::UNAUTHORIZED,
            E::NoSuchBucket | E::NoSuchKey | E::NoSuchUpload | E::NotFound(_) => StatusCode::NOT_FOUND,
            E::BucketAlreadyExists | E::BucketAlreadyOwnedByYou | E::BucketNotEmpty | E::Conflict(_) | E::InUse(_) => {
                StatusCode::CONFLICT
            }
            E::Gone(_) => StatusCode::GONE,
            E::InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE,
            E::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            E::EntityTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            E::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            E::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let detail = match &e {
            E::Internal(m) | E::Unavailable(m) => {
                tracing::error!(error = %m, "REST request failed");
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    "the service is unavailable; try again shortly".to_owned()
                } else {
                    "the request could not be completed; see the server log".to_owned()
                }
            }
            other => other.to_string(),
        };
        Problem::new(status, detail)
    }
}

/// Middleware: every error answer of the API is a problem document. Errors raised by the
/// framework itself (a query or path that does not parse, a method a route does not have)
/// come as plain text; their text becomes the `detail`, their status and headers stay.
pub async fn into_problems(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    let is_problem = resp.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes() == PROBLEM_JSON.as_bytes());
    if !(status.is_client_error() || status.is_server_error()) || is_problem {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let text = match axum::body::to_bytes(body, 16 * 1024).await {
        Ok(b) if !b.is_empty() => String::from_utf8_lossy(&b).trim().to_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_owned(),
    };
    let problem = Problem::new(status, text);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(serde_json::to_string(&problem).unwrap_or_default()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_is_a_503_with_retry_after() {
        let resp = Problem::from(coffer_gateway::Error::Unavailable("postgres://u@db: refused".into())).into_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        assert_eq!(resp.headers()[header::CONTENT_TYPE], PROBLEM_JSON);
        let internal = Problem::from(coffer_gateway::Error::Internal("x".into())).into_response();
        assert_eq!(internal.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!internal.headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn unavailable_details_name_no_dependency() {
        let p = Problem::from(coffer_gateway::Error::Unavailable("postgres://u:pw@db: refused".into()));
        assert_eq!(p.status, 503);
        assert!(!p.detail.contains("postgres"), "{}", p.detail);
    }
}
