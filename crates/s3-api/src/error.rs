//! Gateway errors → S3 errors, with the codes and statuses AWS uses. Internal details go to
//! the log, never into the response.

use coffer_gateway::Error;
use s3s::{S3Error, S3ErrorCode};

/// The S3 error for a gateway error.
pub fn to_s3(e: Error) -> S3Error {
    use S3ErrorCode as C;
    let (code, msg): (S3ErrorCode, String) = match e {
        Error::AccessDenied => (C::AccessDenied, "Access Denied".into()),
        Error::InvalidAccessKeyId => {
            (C::InvalidAccessKeyId, "The AWS Access Key Id you provided does not exist in our records.".into())
        }
        Error::InvalidToken => (C::InvalidToken, "The provided token is malformed or otherwise invalid.".into()),
        Error::ExpiredToken => (C::ExpiredToken, "The provided token has expired.".into()),
        Error::NoSuchBucket => (C::NoSuchBucket, "The specified bucket does not exist".into()),
        Error::NoSuchKey => (C::NoSuchKey, "The specified key does not exist.".into()),
        Error::NoSuchUpload => (
            C::NoSuchUpload,
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.".into(),
        ),
        Error::BucketAlreadyExists => (
            C::BucketAlreadyExists,
            "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.".into(),
        ),
        Error::BucketAlreadyOwnedByYou => (
            C::BucketAlreadyOwnedByYou,
            "Your previous request to create the named bucket succeeded and you already own it.".into(),
        ),
        Error::BucketNotEmpty => (C::BucketNotEmpty, "The bucket you tried to delete is not empty".into()),
        Error::InvalidBucketName(m) => (C::InvalidBucketName, m),
        Error::InvalidLocationConstraint(t) => {
            (C::InvalidLocationConstraint, format!("The specified location-constraint (tier) {t:?} is not valid"))
        }
        Error::InvalidArgument(m) => (C::InvalidArgument, m),
        Error::InvalidRequest(m) => (C::InvalidRequest, m),
        Error::InvalidDigest => (C::InvalidDigest, "The Content-MD5 you specified is not valid.".into()),
        Error::KeyTooLong => (C::KeyTooLongError, "Your key is too long".into()),
        Error::BadDigest => (C::BadDigest, "The Content-MD5 you specified did not match what we received.".into()),
        Error::EntityTooLarge => (C::EntityTooLarge, "Your proposed upload exceeds the maximum allowed object size.".into()),
        Error::EntityTooSmall => {
            (C::EntityTooSmall, "Your proposed upload is smaller than the minimum allowed object size.".into())
        }
        Error::IncompleteBody => {
            (C::IncompleteBody, "You did not provide the number of bytes specified by the Content-Length HTTP header".into())
        }
        Error::InvalidPart(m) => (
            C::InvalidPart,
            format!("One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag. ({m})"),
        ),
        Error::InvalidPartOrder => (
            C::InvalidPartOrder,
            "The list of parts was not in ascending order. The parts list must be specified in order by part number.".into(),
        ),
        Error::InvalidRange => (C::InvalidRange, "The requested range is not satisfiable".into()),
        Error::PreconditionFailed => {
            (C::PreconditionFailed, "At least one of the pre-conditions you specified did not hold".into())
        }
        Error::NotModified { etag, last_modified } => {
            // A 304 still names the representation (RFC 9110 §15.4.5).
            let mut e = S3Error::with_message(C::NotModified, "Not Modified");
            let mut headers = http::HeaderMap::new();
            if let Ok(v) = http::HeaderValue::from_str(&format!("\"{etag}\"")) {
                headers.insert(http::header::ETAG, v);
            }
            let mut date = Vec::new();
            if s3s::dto::Timestamp::from(last_modified).format(s3s::dto::TimestampFormat::HttpDate, &mut date).is_ok()
                && let Ok(v) = http::HeaderValue::from_bytes(&date)
            {
                headers.insert(http::header::LAST_MODIFIED, v);
            }
            e.set_headers(headers);
            return e;
        }
        Error::NotFound(m) => (C::InvalidArgument, m),
        Error::Forbidden(m) => (C::AccessDenied, m),
        Error::QuotaExceeded(m) => {
            // Ceph RGW's code and status for the same refusal.
            let mut e = S3Error::with_message(C::Custom("QuotaExceeded".into()), m);
            e.set_status_code(http::StatusCode::FORBIDDEN);
            return e;
        }
        Error::Gone(m) => (C::AccessDenied, m),
        Error::Conflict(m) | Error::InUse(m) => (C::OperationAborted, m),
        Error::Body(m) => {
            tracing::info!(error = %m, "request body failed");
            (C::IncompleteBody, "The request body could not be read completely".into())
        }
        Error::Unavailable(m) => {
            tracing::error!(error = %m, "dependency unavailable");
            return service_unavailable();
        }
        Error::Internal(m) => {
            tracing::error!(error = %m, "internal error");
            (C::InternalError, "We encountered an internal error. Please try again.".into())
        }
    };
    S3Error::with_message(code, msg)
}

/// How long a client should wait before retrying a `503`, in seconds (`Retry-After`).
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// `503 ServiceUnavailable` with `Retry-After`: the metadata store or a tier cannot be
/// reached. The SDKs retry it with backoff; the header says how soon a retry may succeed.
pub fn service_unavailable() -> S3Error {
    let mut e = S3Error::with_message(
        S3ErrorCode::ServiceUnavailable,
        "The service is temporarily unavailable. Please retry the request.",
    );
    // s3s replaces the response's headers with these: keep the error's XML content type.
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/xml"));
    headers.insert(http::header::RETRY_AFTER, http::HeaderValue::from(RETRY_AFTER_SECONDS));
    e.set_headers(headers);
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn codes_and_statuses_are_those_of_aws() {
        #[rustfmt::skip]
        let table: Vec<(Error, &str, u16)> = vec![
            (Error::AccessDenied, "AccessDenied", 403),
            (Error::InvalidAccessKeyId, "InvalidAccessKeyId", 403),
            (Error::NoSuchBucket, "NoSuchBucket", 404),
            (Error::NoSuchKey, "NoSuchKey", 404),
            (Error::NoSuchUpload, "NoSuchUpload", 404),
            (Error::BucketAlreadyExists, "BucketAlreadyExists", 409),
            (Error::BucketAlreadyOwnedByYou, "BucketAlreadyOwnedByYou", 409),
            (Error::BucketNotEmpty, "BucketNotEmpty", 409),
            (Error::InvalidBucketName("x".into()), "InvalidBucketName", 400),
            (Error::EntityTooSmall, "EntityTooSmall", 400),
            (Error::EntityTooLarge, "EntityTooLarge", 400),
            (Error::InvalidPart("p".into()), "InvalidPart", 400),
            (Error::InvalidPartOrder, "InvalidPartOrder", 400),
            (Error::InvalidRange, "InvalidRange", 416),
            (Error::PreconditionFailed, "PreconditionFailed", 412),
            (Error::NotModified { etag: "e".into(), last_modified: std::time::UNIX_EPOCH }, "NotModified", 304),
            (Error::BadDigest, "BadDigest", 400),
            (Error::Internal("secret detail".into()), "InternalError", 500),
            (Error::Unavailable("secret detail".into()), "ServiceUnavailable", 503),
        ];
        for (e, code, status) in table {
            let s3 = to_s3(e);
            assert_eq!(s3.code().as_str(), code);
            assert_eq!(s3.status_code(), Some(StatusCode::from_u16(status).unwrap()), "{code}");
            assert!(!s3.message().unwrap_or("").contains("secret detail"));
        }
    }

    #[test]
    fn unavailable_says_when_to_retry() {
        let e = to_s3(Error::Unavailable("postgres://coffer@db: connection refused".into()));
        assert_eq!(e.code().as_str(), "ServiceUnavailable");
        assert_eq!(e.status_code(), Some(StatusCode::SERVICE_UNAVAILABLE));
        let retry_after = e.headers().and_then(|h| h.get(http::header::RETRY_AFTER));
        assert_eq!(retry_after.and_then(|v| v.to_str().ok()), Some("1"));
        // Other errors carry no Retry-After.
        assert!(to_s3(Error::Internal("x".into())).headers().is_none_or(|h| !h.contains_key("retry-after")));
    }
}

/// The message AWS gives with an error code, for errors s3s raises without one
/// (`SignatureDoesNotMatch`, `RequestTimeTooSkewed`, …).
pub fn default_message(code: &str) -> &'static str {
    match code {
        "SignatureDoesNotMatch" => {
            "The request signature we calculated does not match the signature you provided. Check your key and signing method."
        }
        "RequestTimeTooSkewed" => "The difference between the request time and the current time is too large.",
        "AccessDenied" => "Access Denied",
        "InvalidAccessKeyId" => "The AWS Access Key Id you provided does not exist in our records.",
        "AuthorizationHeaderMalformed" => "The authorization header is malformed.",
        "MissingContentLength" => "You must provide the Content-Length HTTP header.",
        "MalformedXML" => "The XML you provided was not well-formed or did not validate against our published schema.",
        "InvalidArgument" => "Invalid Argument",
        "InvalidRequest" => "Invalid Request",
        "InvalidURI" => "Couldn't parse the specified URI.",
        "KeyTooLongError" => "Your key is too long",
        "MethodNotAllowed" => "The specified method is not allowed against this resource.",
        "NotImplemented" => "A header you provided implies functionality that is not implemented.",
        "XAmzContentSHA256Mismatch" => "The provided 'x-amz-content-sha256' header does not match what was computed.",
        "IncompleteBody" => "You did not provide the number of bytes specified by the Content-Length HTTP header.",
        _ => "The request could not be completed.",
    }
}

/// Complete an S3 XML error body: add the `Message` s3s left out and the `RequestId`.
/// Returns `None` when the body is not an S3 error document.
pub fn complete_error_body(body: &str, request_id: &str) -> Option<String> {
    let code_start = body.find("<Code>")? + "<Code>".len();
    let code_end = code_start + body[code_start..].find("</Code>")?;
    let close = body.rfind("</Error>")?;
    let mut out = String::with_capacity(body.len() + 160);
    out.push_str(&body[..close]);
    if !body.contains("<Message>") {
        out.push_str("<Message>");
        out.push_str(default_message(&body[code_start..code_end]));
        out.push_str("</Message>");
    }
    if !body.contains("<RequestId>") {
        out.push_str("<RequestId>");
        out.push_str(request_id);
        out.push_str("</RequestId>");
    }
    out.push_str(&body[close..]);
    Some(out)
}

#[cfg(test)]
mod completion_tests {
    use super::*;

    #[test]
    fn missing_messages_and_request_ids_are_added() {
        let b = "<?xml version=\"1.0\"?><Error><Code>SignatureDoesNotMatch</Code></Error>";
        let out = complete_error_body(b, "ABC").unwrap();
        assert!(out.contains("<Message>The request signature we calculated"));
        assert!(out.ends_with("<RequestId>ABC</RequestId></Error>"));
        let b = "<Error><Code>NoSuchKey</Code><Message>m</Message></Error>";
        assert_eq!(
            complete_error_body(b, "X").unwrap(),
            "<Error><Code>NoSuchKey</Code><Message>m</Message><RequestId>X</RequestId></Error>"
        );
        assert!(complete_error_body("<ListBucketResult/>", "X").is_none());
    }
}
