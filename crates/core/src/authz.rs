//! The authorization decision, DESIGN.md §Authorization 1–6, as pure functions.
//!
//! Every S3 and REST operation maps to one [`Action`] on one bucket. [`decide`] answers
//! whether a principal, under a credential's [`Narrowing`], may perform it, and names the
//! [`Rule`] that decided, so `coffer admin explain` and the audit log can say why.
//!
//! Order of the checks (the first that denies decides):
//! 1. the credential's narrowing: expiry, bucket list, read-only, classification;
//! 2. the principal's clearance must include the bucket's classification;
//! 3. the effective role — ownership, platform admin, direct grant, group grants, the
//!    highest wins — must cover the action. No role at all is the default deny.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::model::{Bucket, Grant, Grantee, Narrowing, Principal};
use crate::names::{BucketName, Classification};

/// A role on a bucket. Ordered: `Read < Write < Admin`, each covering the ones below.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// List, get, head.
    Read,
    /// Read, plus put, delete, multipart.
    Write,
    /// Write, plus managing grants and the bucket itself.
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
        }
    }

    /// The indefinite article before the role's name in a sentence: "an admin grant".
    pub fn article(self) -> &'static str {
        if self == Role::Admin { "an" } else { "a" }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "read" => Some(Role::Read),
            "write" => Some(Role::Write),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an operation does to a bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// List objects or uploads; head the bucket.
    List,
    /// Get or head an object; read the source of a copy.
    Read,
    /// Put, copy into, or upload parts of an object.
    Write,
    /// Delete an object, abort an upload.
    Delete,
    /// Delete the bucket, manage its grants.
    Admin,
}

impl Action {
    /// The least role that covers this action.
    pub fn required_role(self) -> Role {
        match self {
            Action::List | Action::Read => Role::Read,
            Action::Write | Action::Delete => Role::Write,
            Action::Admin => Role::Admin,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Action::List => "list",
            Action::Read => "read",
            Action::Write => "write",
            Action::Delete => "delete",
            Action::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "list" => Some(Action::List),
            "read" => Some(Action::Read),
            "write" => Some(Action::Write),
            "delete" => Some(Action::Delete),
            "admin" => Some(Action::Admin),
            _ => None,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The rule that decided. Allowing rules name where the role came from; denying rules name
/// the check that failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "kebab-case")]
pub enum Rule {
    /// Allowed: the principal owns the bucket.
    Owner,
    /// Allowed: the principal is the platform admin.
    PlatformAdmin,
    /// Allowed: a grant to the principal itself.
    UserGrant { role: Role },
    /// Allowed: a grant to one of the principal's groups.
    GroupGrant { group: String, role: Role },
    /// Denied: the credential has expired.
    CredentialExpired,
    /// Denied: the credential is limited to other buckets.
    CredentialBucketScope,
    /// Denied: the credential is read-only.
    CredentialReadOnly,
    /// Denied: the credential is limited to another classification.
    CredentialClassification { allowed: Classification },
    /// Denied: the bucket's classification is outside the principal's clearance.
    Clearance { classification: Classification },
    /// Denied: no ownership and no grant (deny by default).
    NoGrant,
    /// Denied: a role, but too low for the action.
    RoleTooLow { role: Role, required: Role },
    /// Denied: a copy between buckets of different classifications.
    CrossClassification { from: Classification, to: Classification },
    /// Allowed: the bucket is governed by a policy, which gave this role.
    Policy { role: Role },
    /// Denied: the bucket is governed by a policy, which gave no role.
    PolicyDenied,
    /// Denied: a write to a bucket on a read-only tier.
    ReadOnlyTier { tier: String },
    /// Denied: a write through a read-only endpoint.
    ReadOnlyEndpoint,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Owner => write!(f, "the principal owns the bucket"),
            Rule::PlatformAdmin => write!(f, "the principal is the platform admin"),
            Rule::UserGrant { role } => write!(f, "{} {role} grant to the user", role.article()),
            Rule::GroupGrant { group, role } => write!(f, "{} {role} grant to group {group}", role.article()),
            Rule::CredentialExpired => write!(f, "the credential has expired"),
            Rule::CredentialBucketScope => write!(f, "the credential is limited to other buckets"),
            Rule::CredentialReadOnly => write!(f, "the credential is read-only"),
            Rule::CredentialClassification { allowed } => {
                write!(f, "the credential is limited to classification {allowed}")
            }
            Rule::Clearance { classification } => {
                write!(f, "classification {classification} is outside the principal's clearance")
            }
            Rule::NoGrant => write!(f, "no ownership and no grant (deny by default)"),
            Rule::RoleTooLow { role, required } => {
                write!(f, "the effective role {role} is below the required {required}")
            }
            Rule::CrossClassification { from, to } => {
                write!(f, "data may not be copied from {from} to {to}")
            }
            Rule::Policy { role } => write!(f, "the bucket's policy gives the role {role}"),
            Rule::PolicyDenied => write!(f, "the bucket's policy gives no role"),
            Rule::ReadOnlyTier { tier } => write!(f, "tier {tier} is read-only"),
            Rule::ReadOnlyEndpoint => write!(f, "this endpoint is read-only"),
        }
    }
}

/// The outcome of an authorization check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    pub allowed: bool,
    pub rule: Rule,
}

impl Decision {
    pub fn allow(rule: Rule) -> Self {
        Self { allowed: true, rule }
    }
    pub fn deny(rule: Rule) -> Self {
        Self { allowed: false, rule }
    }
}

/// The checks a credential's narrowing makes on an action against a bucket, before any role.
fn check_narrowing(
    narrowing: &Narrowing,
    bucket: &BucketName,
    classification: &Classification,
    required: Role,
    now: i64,
) -> Option<Rule> {
    if narrowing.expires_at.is_some_and(|t| now >= t) {
        return Some(Rule::CredentialExpired);
    }
    if narrowing.buckets.as_ref().is_some_and(|set| !set.contains(bucket)) {
        return Some(Rule::CredentialBucketScope);
    }
    if narrowing.read_only && required > Role::Read {
        return Some(Rule::CredentialReadOnly);
    }
    if let Some(allowed) = &narrowing.classification
        && allowed != classification
    {
        return Some(Rule::CredentialClassification { allowed: allowed.clone() });
    }
    None
}

/// The principal's effective role on a bucket and where it comes from; the highest wins.
/// Among equal roles the more direct source is named (owner, admin, user grant, group grant).
pub fn effective_role(principal: &Principal, bucket: &Bucket, grants: &[Grant]) -> Option<(Role, Rule)> {
    if bucket.owner == principal.name {
        return Some((Role::Admin, Rule::Owner));
    }
    if principal.is_admin {
        return Some((Role::Admin, Rule::PlatformAdmin));
    }
    let mut best: Option<(Role, Rule)> = None;
    for g in grants.iter().filter(|g| g.bucket == bucket.name) {
        let rule = match &g.grantee {
            Grantee::User(u) if *u == principal.name => Rule::UserGrant { role: g.role },
            Grantee::Group(grp) if principal.groups.contains(grp) => {
                Rule::GroupGrant { group: grp.clone(), role: g.role }
            }
            _ => continue,
        };
        let better = match &best {
            None => true,
            Some((r, Rule::GroupGrant { .. })) => {
                g.role > *r || (g.role == *r && matches!(rule, Rule::UserGrant { .. }))
            }
            Some((r, _)) => g.role > *r,
        };
        if better {
            best = Some((g.role, rule));
        }
    }
    best
}

/// May `principal`, holding a credential narrowed by `narrowing`, perform `action` on
/// `bucket`, given the bucket's `grants`, at Unix time `now`?
pub fn decide(
    principal: &Principal,
    narrowing: &Narrowing,
    bucket: &Bucket,
    grants: &[Grant],
    action: Action,
    now: i64,
) -> Decision {
    decide_with_role(principal, narrowing, bucket, action, now, || {
        effective_role(principal, bucket, grants).ok_or(Rule::NoGrant)
    })
}

/// [`decide`] with the role coming from elsewhere (a policy): the credential's narrowing
/// and the principal's clearance are checked first, as always; then `role` — asked only
/// if they pass — must cover the action; when it gives none, its rule denies.
pub fn decide_with_role(
    principal: &Principal,
    narrowing: &Narrowing,
    bucket: &Bucket,
    action: Action,
    now: i64,
    role: impl FnOnce() -> Result<(Role, Rule), Rule>,
) -> Decision {
    let required = action.required_role();
    if let Some(rule) = check_narrowing(narrowing, &bucket.name, &bucket.classification, required, now) {
        return Decision::deny(rule);
    }
    if !principal.clearance.contains(&bucket.classification) {
        return Decision::deny(Rule::Clearance { classification: bucket.classification.clone() });
    }
    match role() {
        Err(rule) => Decision::deny(rule),
        Ok((role, rule)) if role >= required => Decision::allow(rule),
        Ok((role, _)) => Decision::deny(Rule::RoleTooLow { role, required }),
    }
}

/// A copy (CopyObject, UploadPartCopy) needs `read` on the source and `write` on the
/// destination, and the two classifications must be the same.
pub fn decide_copy(
    principal: &Principal,
    narrowing: &Narrowing,
    source: (&Bucket, &[Grant]),
    destination: (&Bucket, &[Grant]),
    now: i64,
) -> Decision {
    let read = decide(principal, narrowing, source.0, source.1, Action::Read, now);
    if !read.allowed {
        return read;
    }
    let write = decide(principal, narrowing, destination.0, destination.1, Action::Write, now);
    if !write.allowed {
        return write;
    }
    if source.0.classification != destination.0.classification {
        return Decision::deny(Rule::CrossClassification {
            from: source.0.classification.clone(),
            to: destination.0.classification.clone(),
        });
    }
    write
}

/// May the principal create a bucket of this name and classification? Any principal may
/// create a bucket it will own, within its clearance and its credential's narrowing.
pub fn decide_create_bucket(
    principal: &Principal,
    narrowing: &Narrowing,
    name: &BucketName,
    classification: &Classification,
    now: i64,
) -> Decision {
    if let Some(rule) = check_narrowing(narrowing, name, classification, Role::Admin, now) {
        return Decision::deny(rule);
    }
    if !principal.clearance.contains(classification) {
        return Decision::deny(Rule::Clearance { classification: classification.clone() });
    }
    Decision::allow(if principal.is_admin { Rule::PlatformAdmin } else { Rule::Owner })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const NOW: i64 = 1_700_000_000;

    #[test]
    fn grant_rules_read_as_english() {
        assert_eq!(Rule::UserGrant { role: Role::Admin }.to_string(), "an admin grant to the user");
        assert_eq!(Rule::UserGrant { role: Role::Read }.to_string(), "a read grant to the user");
        let group = Rule::GroupGrant { group: "ds".into(), role: Role::Write };
        assert_eq!(group.to_string(), "a write grant to group ds");
        assert_eq!(
            Rule::GroupGrant { group: "ds".into(), role: Role::Admin }.to_string(),
            "an admin grant to group ds"
        );
    }

    fn class(s: &str) -> Classification {
        Classification::parse(s).unwrap()
    }

    fn principal(name: &str, groups: &[&str], clearance: &[&str]) -> Principal {
        Principal {
            name: name.into(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            clearance: clearance.iter().map(|s| class(s)).collect(),
            is_admin: false,
        }
    }

    fn bucket(name: &str, owner: &str, classification: &str) -> Bucket {
        Bucket {
            name: BucketName::parse(name).unwrap(),
            owner: owner.into(),
            tier: "standard".into(),
            classification: class(classification),
            created_at: 0,
        }
    }

    fn grant(bucket: &str, grantee: Grantee, role: Role) -> Grant {
        Grant { bucket: BucketName::parse(bucket).unwrap(), grantee, role, created_at: 0 }
    }

    fn user(n: &str) -> Grantee {
        Grantee::User(n.into())
    }
    fn group(n: &str) -> Grantee {
        Grantee::Group(n.into())
    }

    fn narrow_buckets(names: &[&str]) -> Narrowing {
        Narrowing {
            buckets: Some(names.iter().map(|n| BucketName::parse(n).unwrap()).collect::<BTreeSet<_>>()),
            ..Narrowing::default()
        }
    }

    #[test]
    fn decision_table() {
        let alice = principal("alice", &[], &["unclassified"]);
        let bob = principal("bob", &["analysts"], &["unclassified"]);
        let carol = principal("carol", &["analysts", "leads"], &["unclassified", "protected-b"]);
        let mut admin = principal("admin", &[], &["unclassified"]);
        admin.is_admin = true;

        let data = bucket("data", "alice", "unclassified");
        let secret = bucket("secret", "carol", "protected-b");
        let grants = vec![
            grant("data", group("analysts"), Role::Read),
            grant("data", user("carol"), Role::Write),
            grant("data", group("leads"), Role::Admin),
            grant("secret", user("bob"), Role::Admin),
        ];
        let none = Narrowing::default();
        let ro = Narrowing { read_only: true, ..Narrowing::default() };
        let expired = Narrowing { expires_at: Some(NOW - 1), ..Narrowing::default() };
        let later = Narrowing { expires_at: Some(NOW + 60), ..Narrowing::default() };
        let only_other = narrow_buckets(&["other"]);
        let only_data = narrow_buckets(&["data"]);
        let only_pb = Narrowing { classification: Some(class("protected-b")), ..Narrowing::default() };

        use Action::*;
        #[rustfmt::skip]
        let table: Vec<(&Principal, &Narrowing, &Bucket, Action, bool, Rule)> = vec![
            // ownership
            (&alice, &none, &data, Admin, true, Rule::Owner),
            (&alice, &none, &data, Delete, true, Rule::Owner),
            // group read grant: read and list, nothing more
            (&bob, &none, &data, Read, true, Rule::GroupGrant { group: "analysts".into(), role: Role::Read }),
            (&bob, &none, &data, List, true, Rule::GroupGrant { group: "analysts".into(), role: Role::Read }),
            (&bob, &none, &data, Write, false, Rule::RoleTooLow { role: Role::Read, required: Role::Write }),
            (&bob, &none, &data, Delete, false, Rule::RoleTooLow { role: Role::Read, required: Role::Write }),
            // the highest of user and group grants wins
            (&carol, &none, &data, Admin, true, Rule::GroupGrant { group: "leads".into(), role: Role::Admin }),
            (&carol, &none, &data, Write, true, Rule::GroupGrant { group: "leads".into(), role: Role::Admin }),
            // no grant at all: default deny
            (&alice, &none, &secret, Read, false, Rule::Clearance { classification: class("protected-b") }),
            // clearance checked before the role
            (&bob, &none, &secret, Read, false, Rule::Clearance { classification: class("protected-b") }),
            (&carol, &none, &secret, Write, true, Rule::Owner),
            // platform admin
            (&admin, &none, &data, Admin, true, Rule::PlatformAdmin),
            (&admin, &none, &secret, Read, false, Rule::Clearance { classification: class("protected-b") }),
            // narrowing
            (&alice, &ro, &data, Read, true, Rule::Owner),
            (&alice, &ro, &data, List, true, Rule::Owner),
            (&alice, &ro, &data, Write, false, Rule::CredentialReadOnly),
            (&alice, &ro, &data, Delete, false, Rule::CredentialReadOnly),
            (&alice, &expired, &data, Read, false, Rule::CredentialExpired),
            (&alice, &later, &data, Read, true, Rule::Owner),
            (&alice, &only_other, &data, Read, false, Rule::CredentialBucketScope),
            (&alice, &only_data, &data, Write, true, Rule::Owner),
            (&carol, &only_pb, &data, Read, false, Rule::CredentialClassification { allowed: class("protected-b") }),
            (&carol, &only_pb, &secret, Read, true, Rule::Owner),
        ];
        for (i, (p, n, b, a, allowed, rule)) in table.into_iter().enumerate() {
            let d = decide(p, n, b, &grants, a, NOW);
            assert_eq!(d, Decision { allowed, rule: rule.clone() }, "row {i}: {} {a} on {}", p.name, b.name);
        }
    }

    #[test]
    fn no_grant_is_the_default_deny() {
        let dave = principal("dave", &["others"], &["unclassified"]);
        let data = bucket("data", "alice", "unclassified");
        let d = decide(&dave, &Narrowing::default(), &data, &[], Action::List, NOW);
        assert_eq!(d, Decision { allowed: false, rule: Rule::NoGrant });
    }

    #[test]
    fn grants_on_other_buckets_do_not_count() {
        let dave = principal("dave", &[], &["unclassified"]);
        let data = bucket("data", "alice", "unclassified");
        let grants = vec![grant("elsewhere", user("dave"), Role::Admin)];
        assert!(!decide(&dave, &Narrowing::default(), &data, &grants, Action::Read, NOW).allowed);
    }

    #[test]
    fn a_user_grant_is_named_over_an_equal_group_grant() {
        let bob = principal("bob", &["analysts"], &["unclassified"]);
        let data = bucket("data", "alice", "unclassified");
        let grants = vec![grant("data", group("analysts"), Role::Write), grant("data", user("bob"), Role::Write)];
        let d = decide(&bob, &Narrowing::default(), &data, &grants, Action::Write, NOW);
        assert_eq!(d.rule, Rule::UserGrant { role: Role::Write });
    }

    #[test]
    fn copies_need_read_then_write_and_one_classification() {
        let carol = principal("carol", &[], &["unclassified", "protected-b"]);
        let pub_src = bucket("pub-src", "carol", "unclassified");
        let pub_dst = bucket("pub-dst", "carol", "unclassified");
        let pb = bucket("pb-data", "carol", "protected-b");
        let ro_src = bucket("ro-src", "alice", "unclassified");
        let grants = vec![grant("ro-src", user("carol"), Role::Read)];
        let none = Narrowing::default();

        assert!(decide_copy(&carol, &none, (&pub_src, &[]), (&pub_dst, &[]), NOW).allowed);
        assert_eq!(
            decide_copy(&carol, &none, (&pb, &[]), (&pub_dst, &[]), NOW).rule,
            Rule::CrossClassification { from: class("protected-b"), to: class("unclassified") }
        );
        assert_eq!(
            decide_copy(&carol, &none, (&pub_src, &[]), (&pb, &[]), NOW).rule,
            Rule::CrossClassification { from: class("unclassified"), to: class("protected-b") }
        );
        // read on the source suffices; write on it is not needed
        assert!(decide_copy(&carol, &none, (&ro_src, &grants), (&pub_dst, &[]), NOW).allowed);
        // but the destination needs write
        assert_eq!(
            decide_copy(&carol, &none, (&pub_dst, &[]), (&ro_src, &grants), NOW).rule,
            Rule::RoleTooLow { role: Role::Read, required: Role::Write }
        );
    }

    #[test]
    fn creating_buckets() {
        let alice = principal("alice", &[], &["unclassified"]);
        let name = BucketName::parse("new-bucket").unwrap();
        let none = Narrowing::default();
        assert!(decide_create_bucket(&alice, &none, &name, &class("unclassified"), NOW).allowed);
        assert_eq!(
            decide_create_bucket(&alice, &none, &name, &class("protected-b"), NOW).rule,
            Rule::Clearance { classification: class("protected-b") }
        );
        let ro = Narrowing { read_only: true, ..Narrowing::default() };
        assert_eq!(
            decide_create_bucket(&alice, &ro, &name, &class("unclassified"), NOW).rule,
            Rule::CredentialReadOnly
        );
        assert_eq!(
            decide_create_bucket(&alice, &narrow_buckets(&["other"]), &name, &class("unclassified"), NOW).rule,
            Rule::CredentialBucketScope
        );
    }
}
