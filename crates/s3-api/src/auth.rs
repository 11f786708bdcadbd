//! Authentication hooks for s3s, and the requests refused before s3s sees them.
//!
//! s3s verifies SigV4 with the secret [`GatewayAuth::get_secret_key`] returns, then calls
//! [`GatewayAuth::check`] before reading any body: anonymous requests are refused there, the
//! [`Caller`] is resolved and put in the request's extensions for the operations, and the
//! operation's name is recorded for metrics.

use std::sync::{Arc, Mutex};

use coffer_gateway::{Caller, Gateway};
use http::{HeaderMap, Method, Uri};
use s3s::access::{S3Access, S3AccessContext};
use s3s::auth::{S3Auth, SecretKey};
use s3s::{S3Error, S3ErrorCode, S3Result};

use crate::error::to_s3;

/// A slot the HTTP layer puts in the request's extensions; the access hook writes the
/// resolved S3 operation name (`PutObject`, …) into it.
#[derive(Debug, Clone, Default)]
pub struct OperationName(Arc<Mutex<Option<String>>>);

impl OperationName {
    pub fn get(&self) -> Option<String> {
        self.0.lock().unwrap().clone()
    }

    fn set(&self, name: &str) {
        *self.0.lock().unwrap() = Some(name.to_owned());
    }
}

/// The s3s auth and access provider backed by the gateway.
pub struct GatewayAuth {
    pub gateway: Arc<Gateway>,
}

#[async_trait::async_trait]
impl S3Auth for GatewayAuth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<SecretKey> {
        self.gateway.secret_for_key(access_key).await.map(SecretKey::from).map_err(to_s3)
    }
}

#[async_trait::async_trait]
impl S3Access for GatewayAuth {
    async fn check(&self, cx: &mut S3AccessContext<'_>) -> S3Result<()> {
        let op = cx.s3_op().name().to_owned();
        if let Some(slot) = cx.extensions_mut().get::<OperationName>() {
            slot.set(&op);
        }
        let Some(creds) = cx.credentials() else {
            return Err(S3Error::with_message(S3ErrorCode::AccessDenied, "Anonymous access is not allowed"));
        };
        let token = security_token(cx.headers(), cx.uri());
        let caller: Caller = if coffer_identity::session::is_session_key(&creds.access_key) {
            self.gateway.caller_for_session(&creds.access_key, token.as_deref()).map_err(to_s3)?
        } else if token.is_some() {
            // A session token with a long-term key: refuse rather than ignore it.
            return Err(to_s3(coffer_gateway::Error::InvalidToken));
        } else {
            self.gateway.caller_for_key(&creds.access_key).await.map_err(to_s3)?
        };
        let info = cx.extensions_mut().get::<coffer_gateway::RequestInfo>().cloned();
        let caller = caller.in_request(info.as_ref());
        if !caller.principal.is_admin
            && let Err(e) = self.gateway.ensure_personal_bucket(&caller.principal.name).await
        {
            // The request itself does not depend on it: log and go on.
            tracing::warn!(principal = %caller.principal.name, error = %e, "cannot ensure the personal bucket");
        }
        cx.extensions_mut().insert(caller);
        Ok(())
    }
}

/// The session token of a request: the `x-amz-security-token` header, or the
/// `X-Amz-Security-Token` query parameter of a presigned URL. (s3s does not check it.)
fn security_token(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(v) = headers.get("x-amz-security-token").and_then(|v| v.to_str().ok()) {
        return Some(v.to_owned());
    }
    uri.query()?
        .split('&')
        .find_map(|p| p.strip_prefix("X-Amz-Security-Token="))
        .and_then(|v| urlencoding::decode(v).ok())
        .map(|v| v.into_owned())
}

/// The caller the access hook resolved.
pub fn caller(ext: &http::Extensions) -> S3Result<&Caller> {
    ext.get::<Caller>().ok_or_else(|| S3Error::with_message(S3ErrorCode::AccessDenied, "Access Denied"))
}

/// The longest validity of a presigned URL: one week, as AWS.
const MAX_PRESIGNED_EXPIRY: i64 = 604_800;

/// Requests coffer refuses before s3s reads anything:
/// - Signature Version 2 (header `Authorization: AWS id:sig`, or a presigned query with
///   `AWSAccessKeyId` / `Signature`): 400 `InvalidRequest`, as AWS answers in SigV4-only regions;
/// - browser POST-form uploads (`multipart/form-data` POSTs), which s3s would buffer in
///   memory: 501 `NotImplemented`;
/// - CORS preflights (`OPTIONS`): 400 without an `Origin`, 403 with one (no CORS rules);
/// - presigned URLs valid for less than 0 or more than 604800 seconds: 403 `AccessDenied`.
pub fn refuse_unsupported(method: &Method, uri: &Uri, headers: &HeaderMap) -> Result<(), S3Error> {
    let auth = headers.get(http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or("");
    let query = uri.query().unwrap_or("");
    let v2_query = query.split('&').any(|p| p.starts_with("AWSAccessKeyId=") || p.starts_with("Signature="));
    if auth.starts_with("AWS ") || v2_query {
        return Err(S3Error::with_message(
            S3ErrorCode::InvalidRequest,
            "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.",
        ));
    }
    if method == Method::OPTIONS {
        // A CORS preflight. coffer has no CORS configuration: AWS's answers without one.
        return Err(if headers.contains_key(http::header::ORIGIN) {
            S3Error::with_message(S3ErrorCode::AccessDenied, "CORSResponse: CORS is not enabled for this bucket.")
        } else {
            S3Error::with_message(
                S3ErrorCode::InvalidRequest,
                "Insufficient information. Origin request header needed.",
            )
        });
    }
    if let Some(expires) = query.split('&').find_map(|p| p.strip_prefix("X-Amz-Expires="))
        && !expires.parse::<i64>().is_ok_and(|n| (0..=MAX_PRESIGNED_EXPIRY).contains(&n))
    {
        return Err(S3Error::with_message(
            S3ErrorCode::AccessDenied,
            "X-Amz-Expires must be a number of seconds from 0 to 604800 (one week)",
        ));
    }
    let form = headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"));
    if method == Method::POST && form {
        return Err(S3Error::with_message(S3ErrorCode::NotImplemented, "POST object uploads are not supported"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: Method, uri: &str, headers: &[(&str, &str)]) -> Option<String> {
        let mut h = HeaderMap::new();
        for (k, v) in headers {
            h.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
        }
        refuse_unsupported(&method, &uri.parse().unwrap(), &h).err().map(|e| e.code().as_str().to_owned())
    }

    #[test]
    fn sigv2_and_post_forms_are_refused_sigv4_passes() {
        assert_eq!(
            check(Method::GET, "/b/k", &[("authorization", "AWS AKID:c2ln")]).as_deref(),
            Some("InvalidRequest")
        );
        assert_eq!(
            check(Method::GET, "/b/k?AWSAccessKeyId=AK&Expires=1&Signature=x", &[]).as_deref(),
            Some("InvalidRequest")
        );
        assert_eq!(
            check(Method::POST, "/b", &[("content-type", "multipart/form-data; boundary=x")]).as_deref(),
            Some("NotImplemented")
        );
        let v4 = "AWS4-HMAC-SHA256 Credential=AK/20250101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=ab";
        assert_eq!(check(Method::GET, "/b/k", &[("authorization", v4)]), None);
        assert_eq!(check(Method::GET, "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab", &[]), None);
        assert_eq!(check(Method::POST, "/b?delete", &[("content-type", "application/xml")]), None);
        assert_eq!(check(Method::OPTIONS, "/b/k", &[]).as_deref(), Some("InvalidRequest"));
        assert_eq!(check(Method::OPTIONS, "/b/k", &[("origin", "http://x")]).as_deref(), Some("AccessDenied"));
        for bad in ["-7", "609901", "x"] {
            let uri = format!("/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires={bad}&X-Amz-Signature=ab");
            assert_eq!(check(Method::GET, &uri, &[]).as_deref(), Some("AccessDenied"), "{bad}");
        }
        let ok = "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=604800&X-Amz-Signature=ab";
        assert_eq!(check(Method::GET, ok, &[]), None);
    }
}
