//! The records coffer keeps, and the request-time view of a caller.
//!
//! Times are Unix seconds (`i64`) so the same values round-trip through SQLite and
//! PostgreSQL without time-zone questions.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::authz::Role;
use crate::names::{BucketName, Classification, UserName};

/// A user as stored. `is_admin` marks the platform admin, who holds `admin` on every bucket
/// (clearance still applies).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: UserName,
    pub groups: BTreeSet<String>,
    pub clearance: BTreeSet<Classification>,
    pub is_admin: bool,
    pub created_at: i64,
}

impl User {
    /// The principal this user acts as.
    pub fn principal(&self) -> Principal {
        Principal {
            name: self.name.as_str().to_owned(),
            groups: self.groups.clone(),
            clearance: self.clearance.clone(),
            is_admin: self.is_admin,
        }
    }
}

/// A bucket as stored. The owner holds `admin` on it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub name: BucketName,
    pub owner: String,
    pub tier: String,
    pub classification: Classification,
    pub created_at: i64,
}

/// Who a grant is for.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum Grantee {
    User(String),
    Group(String),
}

impl Grantee {
    /// `"user"` or `"group"`, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Grantee::User(_) => "user",
            Grantee::Group(_) => "group",
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Grantee::User(n) | Grantee::Group(n) => n,
        }
    }
}

/// A role on a bucket for a user or a group.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub bucket: BucketName,
    pub grantee: Grantee,
    pub role: Role,
    pub created_at: i64,
}

/// A long-term SigV4 access key as stored: the secret only in sealed form.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    pub access_key_id: String,
    pub user: UserName,
    /// The secret, sealed with the server key (see `coffer-identity`); never the plain text.
    #[serde(skip_serializing)]
    pub secret_sealed: String,
    pub narrowing: Narrowing,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// Limits a credential places on what its principal may otherwise do. The default narrows
/// nothing.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Narrowing {
    /// Refuse every action above `read`.
    pub read_only: bool,
    /// When set, only these buckets.
    pub buckets: Option<BTreeSet<BucketName>>,
    /// When set, only buckets of this classification.
    pub classification: Option<Classification>,
    /// When set, the credential stops working at this Unix time.
    pub expires_at: Option<i64>,
}

/// Who is calling, as resolved by identity: a name, groups and a clearance.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub name: String,
    pub groups: BTreeSet<String>,
    pub clearance: BTreeSet<Classification>,
    pub is_admin: bool,
}

/// One authorization decision, as the audit trail keeps it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unix milliseconds.
    pub at: i64,
    pub principal: String,
    pub access_key_id: String,
    /// `read`, `write`, `copy …`, `create-bucket`, …
    pub action: String,
    pub bucket: String,
    pub key: String,
    pub allowed: bool,
    /// The rule that decided, in words.
    pub rule: String,
    pub request_id: String,
    /// The client's address.
    pub source: String,
}

/// Which audit events to list, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub principal: Option<String>,
    pub bucket: Option<String>,
    pub allowed: Option<bool>,
    /// Unix milliseconds, inclusive.
    pub since: Option<i64>,
    /// Unix milliseconds, exclusive.
    pub until: Option<i64>,
    pub limit: usize,
}

/// What a share link opens: one object, or every object under a prefix.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "path", rename_all = "lowercase")]
pub enum ShareTarget {
    /// One object, by key.
    Object(String),
    /// Every object whose key starts with this prefix (which may be empty: the whole bucket).
    Prefix(String),
}

/// A share link: an expiring, revocable, read-only URL for one object or a prefix. It acts
/// as its creator — the principal as it was when the link was made (name, groups,
/// clearance) — and every use is authorized again against the bucket's grants as they are
/// then, so the link stops working when the creator loses read access.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareLink {
    /// `SL` + 20 characters; public (it names the link), not the secret part of the URL.
    pub id: String,
    /// The creator, as authenticated when the link was made.
    pub creator: Principal,
    pub bucket: BucketName,
    pub target: ShareTarget,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; the link answers 410 from then on.
    pub expires_at: i64,
    /// Unix seconds, once revoked.
    pub revoked_at: Option<i64>,
}

/// What a quota limits: one bucket, or every bucket a user owns.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "name", rename_all = "lowercase")]
pub enum QuotaScope {
    Bucket(String),
    User(String),
}

/// Limits on stored bytes and objects. `None` leaves that dimension unlimited.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quota {
    pub scope: QuotaScope,
    pub max_bytes: Option<u64>,
    pub max_objects: Option<u64>,
    /// Unix seconds.
    pub updated_at: i64,
}

/// What is stored: bytes and objects (completed objects; parts of uploads in progress are
/// not counted).
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub bytes: u64,
    pub objects: u64,
}
