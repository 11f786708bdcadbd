//! # coffer-core
//!
//! The domain of coffer and the one pure authorization decision. Nothing here does I/O or
//! needs an async runtime, so every rule can be tested with plain tables.
//!
//! ## Layout
//! - [`names`] — parsed names: [`BucketName`] (S3 naming rules), [`ObjectKey`], [`UserName`],
//!   [`Classification`].
//! - [`model`] — the records the metadata store keeps: [`User`], [`Bucket`], [`Grant`],
//!   [`AccessKey`], [`ShareLink`], [`Quota`] and [`Usage`], and the request-time
//!   [`Principal`] and [`Narrowing`].
//! - [`authz`] — [`Role`], [`Action`] and [`decide`]: DESIGN.md §Authorization 1–6 as one
//!   function returning a [`Decision`] that names the rule which decided.

pub mod authz;
pub mod model;
pub mod names;

pub use authz::{Action, Decision, Role, Rule, decide, decide_copy, decide_create_bucket, decide_with_role};
pub use model::{
    AccessKey, AuditEvent, AuditFilter, Bucket, Grant, Grantee, Narrowing, Principal, Quota, QuotaScope, ShareLink,
    ShareTarget, Usage, User,
};
pub use names::{BucketName, Classification, NameError, ObjectKey, UserName};
