//! # coffer-metadata
//!
//! Who may do what: users, buckets, grants, access keys, share links and quotas, plus the
//! tracked usage of buckets under a quota and the audit trail, kept in PostgreSQL
//! (production) or a SQLite file (the embedded default), behind one trait, [`MetadataStore`].
//!
//! ## Layout
//! - this file — the [`MetadataStore`] trait, its [`Error`], and [`open`].
//! - `changes.rs` — [`ChangeStream`]: committed changes as they commit (PostgreSQL
//!   LISTEN/NOTIFY on channel [`CHANNEL`](changes::CHANNEL), followed by a thread of its own
//!   that reconnects with a backoff and says when it lost the connection).
//! - `diesel_store.rs` — the implementation on Diesel 2.3: one `MultiConnection` enum over
//!   `PgConnection` and `SqliteConnection`, an r2d2 pool, every call on `spawn_blocking`.
//! - `schema.rs` — the Diesel table definitions, shared by both databases.
//! - `migrations/postgres`, `migrations/sqlite` — the SQL, embedded in the binary.
//!
//! Every mutation bumps a single revision counter in the same transaction; [`MetadataStore::revision`]
//! reads it, so any process (another replica, `coffer admin`) can tell within a poll that
//! something changed and drop its caches. On PostgreSQL the same transaction also sends
//! `NOTIFY coffer_changes, '<revision>'`, delivered at commit, so that
//! [`MetadataStore::subscribe_changes`] tells every listener at once instead of at its next
//! poll; SQLite has no notifications and is polled. Writes that are not about rights — bucket
//! usage and the audit trail — move neither the counter nor notify.

use std::sync::Arc;

use coffer_core::{
    AccessKey, AuditEvent, AuditFilter, Bucket, Grant, Grantee, Quota, QuotaScope, ShareLink, Usage, User,
};

pub mod changes;
mod diesel_store;
mod schema;

/// The attribute [`MetadataStore`] is written with, for implementations elsewhere (store
/// wrappers in tests and benchmarks) without a dependency of their own.
pub use async_trait::async_trait;
pub use changes::{ChangeEvent, ChangeStream};
pub use diesel_store::DieselStore;

/// What can go wrong in the store. Messages name the record, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The record does not exist.
    #[error("{what} {name:?} does not exist")]
    NotFound { what: &'static str, name: String },
    /// A record with this identity exists already.
    #[error("{what} {name:?} already exists")]
    Conflict { what: &'static str, name: String },
    /// The record is still referenced (a user who owns buckets).
    #[error("{0}")]
    InUse(String),
    /// The database URL is not one we understand.
    #[error("unsupported database URL {0:?}: use postgres://… or sqlite://…")]
    UnsupportedUrl(String),
    /// The database cannot be reached or failed.
    #[error("metadata store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored value could not be read back (a bug or a hand-edited row).
    #[error("corrupt metadata: {0}")]
    Corrupt(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Audit events a store could not take, handed back with the reason (see
/// [`MetadataStore::append_audit`]).
#[derive(Debug, thiserror::Error)]
#[error("{error}")]
pub struct AuditNotStored {
    pub error: Error,
    pub events: Vec<AuditEvent>,
}

/// The metadata store. Both implementations behave the same; the conformance tests in
/// `tests/store_conformance.rs` run against SQLite and PostgreSQL.
#[async_trait]
pub trait MetadataStore: Send + Sync + 'static {
    /// Apply pending embedded migrations; returns the names of those applied.
    async fn migrate(&self) -> Result<Vec<String>>;
    /// A cheap round-trip, for readiness checks.
    async fn ping(&self) -> Result<()>;
    /// The change counter: greater after every committed mutation, by any process.
    async fn revision(&self) -> Result<i64>;
    /// Hear of committed mutations as they commit, by any process: each moves the
    /// [`revision`](Self::revision) to the value it reports (see [`ChangeStream`]).
    /// `Ok(None)` where the database cannot tell (SQLite): poll `revision` instead.
    /// `Unavailable` if listening cannot start now; a stream that was started reconnects by
    /// itself, reporting [`ChangeEvent::Lost`] and [`ChangeEvent::Reconnected`].
    ///
    /// The default is `Ok(None)`; a store that wraps another should delegate.
    async fn subscribe_changes(&self) -> Result<Option<ChangeStream>> {
        Ok(None)
    }

    /// `Conflict` if the name is taken.
    async fn create_user(&self, user: &User) -> Result<()>;
    async fn get_user(&self, name: &str) -> Result<Option<User>>;
    /// Sorted by name.
    async fn list_users(&self) -> Result<Vec<User>>;
    /// Replace groups, clearance and the admin flag. `NotFound` if absent.
    async fn update_user(&self, user: &User) -> Result<()>;
    /// `NotFound` if absent; `InUse` while the user owns buckets. Removes the user's access
    /// keys and the grants made to the user.
    async fn delete_user(&self, name: &str) -> Result<()>;

    /// `Conflict` if the name is taken (bucket names are global).
    async fn create_bucket(&self, bucket: &Bucket) -> Result<()>;
    async fn get_bucket(&self, name: &str) -> Result<Option<Bucket>>;
    /// Sorted by name.
    async fn list_buckets(&self) -> Result<Vec<Bucket>>;
    /// `NotFound` if absent. Removes the bucket's grants.
    async fn delete_bucket(&self, name: &str) -> Result<()>;

    /// Create or replace the role of (bucket, grantee). `NotFound` if the bucket is absent.
    async fn put_grant(&self, grant: &Grant) -> Result<()>;
    /// `NotFound` if there is no such grant.
    async fn remove_grant(&self, bucket: &str, grantee: &Grantee) -> Result<()>;
    /// All grants, or one bucket's; sorted by bucket, grantee kind, grantee name.
    async fn list_grants(&self, bucket: Option<&str>) -> Result<Vec<Grant>>;

    /// `NotFound` if the user is absent; `Conflict` if the id is taken.
    async fn create_access_key(&self, key: &AccessKey) -> Result<()>;
    /// Revoked keys are returned too (with `revoked_at` set).
    async fn get_access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>>;
    /// All keys, or one user's; sorted by creation time then id.
    async fn list_access_keys(&self, user: Option<&str>) -> Result<Vec<AccessKey>>;
    /// Mark revoked at `at` (Unix seconds). `NotFound` if absent; revoking twice keeps the
    /// first time.
    async fn revoke_access_key(&self, access_key_id: &str, at: i64) -> Result<()>;

    /// `Conflict` if the id is taken; `NotFound` (what `bucket`) if the bucket is absent.
    /// Deleting a bucket deletes its links.
    async fn create_share_link(&self, link: &ShareLink) -> Result<()>;
    /// Revoked and expired links are returned too.
    async fn get_share_link(&self, id: &str) -> Result<Option<ShareLink>>;
    /// The links made by `creator` (a principal name) and/or on `bucket`, or all; newest
    /// first (creation time descending, then id).
    async fn list_share_links(&self, creator: Option<&str>, bucket: Option<&str>) -> Result<Vec<ShareLink>>;
    /// Mark revoked at `at` (Unix seconds). `NotFound` if absent; revoking twice keeps the
    /// first time.
    async fn revoke_share_link(&self, id: &str, at: i64) -> Result<()>;

    /// Create or replace a quota. `NotFound` (what `bucket`) for a bucket quota on a bucket
    /// that does not exist; a user quota needs no user record (federated users have none).
    /// Moves the revision. Deleting a bucket deletes its quota.
    async fn put_quota(&self, quota: &Quota) -> Result<()>;
    /// `NotFound` (what `quota`) if there is none. Moves the revision.
    async fn remove_quota(&self, scope: &QuotaScope) -> Result<()>;
    async fn get_quota(&self, scope: &QuotaScope) -> Result<Option<Quota>>;
    /// Every quota: bucket quotas by bucket, then user quotas by user.
    async fn list_quotas(&self) -> Result<Vec<Quota>>;

    /// A bucket's tracked usage; `None` while it is not tracked. Usage is tracked only for
    /// buckets under a quota (theirs or their owner's); it is not about rights, so none of
    /// the usage calls moves the revision.
    async fn bucket_usage(&self, bucket: &str) -> Result<Option<Usage>>;
    /// Start (or restart) tracking a bucket with a measured usage. `NotFound` (what
    /// `bucket`) if the bucket does not exist. Deleting a bucket deletes its usage.
    async fn set_bucket_usage(&self, bucket: &str, usage: Usage) -> Result<()>;
    /// Add to a tracked bucket's usage, atomically (concurrent callers, other processes);
    /// a result below zero is stored as zero; nothing happens for an untracked bucket.
    async fn add_bucket_usage(&self, bucket: &str, bytes: i64, objects: i64) -> Result<()>;
    /// Stop tracking a bucket (no error if it was not tracked).
    async fn forget_bucket_usage(&self, bucket: &str) -> Result<()>;
    /// The summed tracked usage of every bucket `owner` owns, and how many of its buckets
    /// are not tracked.
    async fn owner_usage(&self, owner: &str) -> Result<(Usage, usize)>;

    /// Append audit events, in one transaction. The audit trail is not about rights: the
    /// revision does not move. The events are taken by value: their strings become the
    /// rows' values without a copy; if they cannot be stored they are handed back.
    async fn append_audit(&self, events: Vec<AuditEvent>) -> Result<(), AuditNotStored>;
    /// Audit events matching `filter`, newest first, at most `filter.limit`.
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>>;
    /// Delete the events older than `before` (Unix milliseconds); returns how many.
    async fn purge_audit(&self, before: i64) -> Result<u64>;
}

/// Open the store a URL names (`postgres://…`, `postgresql://…`, `sqlite://PATH` or
/// `sqlite::memory:`), creating a SQLite file if needed. Does not migrate.
pub async fn open(url: &str) -> Result<Arc<dyn MetadataStore>> {
    Ok(Arc::new(DieselStore::connect(url).await?))
}
