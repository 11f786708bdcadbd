//! The domain errors of every use case. Each front end maps them to its wire format once
//! (S3 XML in `coffer-s3-api`, exit codes and messages in the admin CLI). Internal details
//! travel in `Internal` and `Unavailable` for the log, never to a client.

use coffer_backend::Error as BackendError;
use coffer_metadata::Error as StoreError;

/// What a use case can answer besides success.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("access denied")]
    AccessDenied,
    #[error("the access key id does not exist in our records")]
    InvalidAccessKeyId,
    /// A session token missing, forged, or for another key.
    #[error("the security token included in the request is invalid")]
    InvalidToken,
    #[error("the provided token has expired")]
    ExpiredToken,
    #[error("the bucket does not exist")]
    NoSuchBucket,
    #[error("the key does not exist")]
    NoSuchKey,
    #[error("the multipart upload does not exist")]
    NoSuchUpload,
    #[error("the bucket name is taken")]
    BucketAlreadyExists,
    #[error("you already own this bucket")]
    BucketAlreadyOwnedByYou,
    #[error("the bucket is not empty")]
    BucketNotEmpty,
    #[error("{0}")]
    InvalidBucketName(String),
    #[error("unknown tier {0:?}")]
    InvalidLocationConstraint(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("the Content-MD5 is not a valid base64 MD5 digest")]
    InvalidDigest,
    #[error("the key is too long")]
    KeyTooLong,
    #[error("the Content-MD5 does not match the bytes received")]
    BadDigest,
    #[error("the object exceeds the maximum allowed size")]
    EntityTooLarge,
    #[error("a part other than the last is smaller than the minimum allowed size")]
    EntityTooSmall,
    #[error("the body ended before the announced length")]
    IncompleteBody,
    #[error("{0}")]
    InvalidPart(String),
    #[error("the list of parts was not in ascending order")]
    InvalidPartOrder,
    #[error("the requested range is not satisfiable")]
    InvalidRange,
    #[error("a precondition failed")]
    PreconditionFailed,
    /// 304: carries what the response still reports (`ETag`, `Last-Modified`).
    #[error("not modified")]
    NotModified { etag: String, last_modified: std::time::SystemTime },
    /// An administrative lookup found nothing (user, grant, key).
    #[error("{0}")]
    NotFound(String),
    /// An administrative create found the name taken.
    #[error("{0}")]
    Conflict(String),
    /// A record is still referenced.
    #[error("{0}")]
    InUse(String),
    /// Refused by a rule that is not about a bucket's grants (what a share link may open,
    /// who may read the audit trail); the message says which.
    #[error("{0}")]
    Forbidden(String),
    /// A share link that has expired or was revoked.
    #[error("{0}")]
    Gone(String),
    /// The write would pass a bucket's or a user's quota.
    #[error("{0}")]
    QuotaExceeded(String),
    /// The metadata store is down.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// The client went away or sent a broken body.
    #[error("reading the request body failed: {0}")]
    Body(String),
    /// Anything else: logged, answered as an internal error.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { what, name } => Error::NotFound(format!("{what} {name:?} does not exist")),
            StoreError::Conflict { what, name } => Error::Conflict(format!("{what} {name:?} already exists")),
            StoreError::InUse(m) => Error::InUse(m),
            StoreError::Unavailable(e) => Error::Unavailable(e.to_string()),
            other => Error::Internal(other.to_string()),
        }
    }
}

impl From<BackendError> for Error {
    fn from(e: BackendError) -> Self {
        match e {
            BackendError::NoSuchBucket => Error::NoSuchBucket,
            BackendError::NoSuchKey => Error::NoSuchKey,
            BackendError::NoSuchUpload => Error::NoSuchUpload,
            BackendError::BucketNotEmpty => Error::BucketNotEmpty,
            BackendError::BadDigest => Error::BadDigest,
            BackendError::EntityTooLarge => Error::EntityTooLarge,
            BackendError::EntityTooSmall => Error::EntityTooSmall,
            BackendError::IncompleteBody => Error::IncompleteBody,
            BackendError::InvalidPart(m) => Error::InvalidPart(m),
            BackendError::InvalidPartOrder => Error::InvalidPartOrder,
            BackendError::InvalidRange => Error::InvalidRange,
            BackendError::KeyTooLong => Error::KeyTooLong,
            BackendError::Body(e) => Error::Body(e.to_string()),
            BackendError::Io(e) => Error::Internal(format!("backend I/O: {e}")),
            BackendError::Unavailable(m) => Error::Unavailable(m),
        }
    }
}
