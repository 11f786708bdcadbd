//! # coffer-s3-api
//!
//! The S3 wire protocol. [`s3s`] parses requests, verifies SigV4 (headers, presigned
//! queries, aws-chunked payloads) and encodes XML; this crate plugs the gateway into it and
//! maps the gateway's domain errors to S3 error codes once.
//!
//! ## Layout
//! - [`service`] — [`build`]: the `S3Service` (auth, access, limits) and the `S3` trait
//!   implementation, one line per operation, forwarding to the family modules.
//! - [`auth`] — `S3Auth` (the secret of an access key) and `S3Access` (anonymous requests
//!   refused, the caller resolved, the operation name recorded for metrics);
//!   [`refuse_unsupported`]: SigV2 and POST-form uploads refused before s3s reads a body.
//! - [`buckets`], [`objects`], [`list`], [`multipart`] — the operations, by family.
//! - [`convert`] — DTO ↔ domain conversions (metadata, ranges, conditions, timestamps).
//! - [`error`] — gateway errors → `S3Error` (code, status, message).
//! - [`sts`] — STS `AssumeRoleWithWebIdentity` on the same endpoint (AWS query protocol).

pub mod auth;
pub mod buckets;
pub mod convert;
pub mod error;
pub mod list;
pub mod multipart;
pub mod objects;
pub mod service;
pub mod sts;

pub use auth::{OperationName, refuse_unsupported};
pub use error::complete_error_body;
pub use service::build;
