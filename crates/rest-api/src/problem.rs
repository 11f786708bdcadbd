//! RFC 9457 problem details: `{"type", "title", "status", "detail"}` as
//! `application/problem+json`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answer.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
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

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_string(&self).unwrap_or_default();
        let mut resp = (status, body).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<coffer_gateway::Error> for Problem {
    fn from(e: coffer_gateway::Error) -> Self {
        use coffer_gateway::Error as E;
        let status = match &e {
            E::AccessDenied => StatusCode::FORBIDDEN,
            E::NoSuchBucket | E::NoSuchKey | E::NoSuchUpload | E::NotFound(_) => StatusCode::NOT_FOUND,
            E::BucketAlreadyExists | E::BucketAlreadyOwnedByYou | E::BucketNotEmpty | E::Conflict(_) | E::InUse(_) => {
                StatusCode::CONFLICT
            }
            E::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            E::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        let detail = match &e {
            E::Internal(m) | E::Unavailable(m) => {
                tracing::error!(error = %m, "REST request failed");
                "the request could not be completed; see the server log".to_owned()
            }
            other => other.to_string(),
        };
        Problem::new(status, detail)
    }
}
