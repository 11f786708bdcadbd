//! `object_store` errors → [`Error`].
//!
//! - not found → `NoSuchKey` (or what the caller knows it means: `NoSuchUpload`, …);
//! - the store unreachable (connect errors, timeouts, interrupted transfers), answering
//!   5xx or 429 after the retries → [`Error::Unavailable`] (the gateway answers 503);
//! - anything else (credentials refused, a malformed answer) → [`Error::Io`] (500).
//!
//! Messages name the tier and what failed; they never carry a secret (`object_store`
//! redacts the URL of requests authorized by a SAS token, and signatures travel in headers).

use std::error::Error as StdError;
use std::io;

use object_store::client::HttpError;

use crate::Error;

/// What `object_store`'s retry layer prints before the status of a failed response.
const STATUS_MARKER: &str = "Server returned non-2xx status code: ";

/// The HTTP status of the response that failed, if the error came from one.
pub(crate) fn status_of(e: &(dyn StdError + 'static)) -> Option<u16> {
    let mut current = Some(e);
    while let Some(err) = current {
        let text = err.to_string();
        if let Some(at) = text.find(STATUS_MARKER) {
            let digits: String = text[at + STATUS_MARKER.len()..].chars().take_while(char::is_ascii_digit).collect();
            return digits.parse().ok();
        }
        current = err.source();
    }
    None
}

/// Whether the error is the transport failing (no usable response).
fn is_transport(e: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(e);
    while let Some(err) = current {
        if err.downcast_ref::<HttpError>().is_some() {
            return true;
        }
        current = err.source();
    }
    false
}

/// A failure of the store (not a missing object): `Unavailable` or `Io`.
pub(crate) fn failure(tier: &str, what: &str, e: &(dyn StdError + 'static)) -> Error {
    let status = status_of(e);
    if is_transport(e) && status.is_none() || status.is_some_and(|s| s >= 500 || s == 429) {
        return Error::Unavailable(format!("tier {tier}: {what}: the store is unavailable: {e}"));
    }
    Error::Io(io::Error::other(format!("tier {tier}: {what}: {e}")))
}

/// Whether a ranged read was refused: the store answered 416, or object_store found the
/// range past the end (its `InvalidGetRange` is not public: recognised by its message).
fn range_refused(e: &(dyn StdError + 'static)) -> bool {
    if status_of(e) == Some(416) {
        return true;
    }
    let mut current = Some(e);
    while let Some(err) = current {
        if err.to_string().starts_with("Wanted range starting at ") {
            return true;
        }
        current = err.source();
    }
    false
}

/// Map an error of an object operation: not found → `NoSuchKey`, a refused range →
/// `InvalidRange`.
pub(crate) fn object(tier: &str, what: &str, e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::NoSuchKey,
        e if range_refused(&e) => Error::InvalidRange,
        e => failure(tier, what, &e),
    }
}

/// Map an error where "not found" means the multipart upload is gone.
pub(crate) fn upload(tier: &str, what: &str, e: object_store::Error) -> Error {
    match e {
        object_store::Error::NotFound { .. } => Error::NoSuchUpload,
        e => failure(tier, what, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Fake(&'static str);
    impl std::fmt::Display for Fake {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl StdError for Fake {}

    #[test]
    fn statuses_are_read_from_the_chain() {
        let e = object_store::Error::Generic {
            store: "S3",
            source: Box::new(Fake(
                "Error performing PUT in 1s - Server returned non-2xx status code: 503 Service Unavailable: slow down",
            )),
        };
        assert_eq!(status_of(&e), Some(503));
        assert!(matches!(failure("t", "put", &e), Error::Unavailable(m) if m.contains("tier t")));
        let e = object_store::Error::Generic {
            store: "S3",
            source: Box::new(Fake("Server returned non-2xx status code: 400 Bad Request: nope")),
        };
        assert!(matches!(failure("t", "put", &e), Error::Io(_)));
        let e = object_store::Error::Generic {
            store: "S3",
            source: Box::new(Fake("416: Server returned non-2xx status code: 416 Range Not Satisfiable")),
        };
        assert!(matches!(object("t", "get", e), Error::InvalidRange));
    }
}
