//! The authorization decision (`coffer_core::decide` and friends) on arbitrary principals,
//! narrowings and grants, drawn from small vocabularies so that names, groups and
//! classifications collide often. Invariants (DESIGN.md §Authorization):
//! - a bucket outside the principal's clearance is never allowed, and is denied by the
//!   clearance rule unless the narrowing denied first;
//! - nothing is allowed without ownership, the platform admin flag or a matching grant that
//!   covers the action, and the allowing rule names it truthfully;
//! - a narrowing never widens: whatever is allowed under a narrowing is allowed without it,
//!   and tightening a narrowing never allows more;
//! - more grants never allow less, grants on other buckets change nothing;
//! - an expired credential is always denied;
//! - a copy is allowed only when both sides are and their classifications are equal;
//! - creating a bucket needs the clearance and the narrowing.

#![no_main]

use std::collections::BTreeSet;

use arbitrary::Arbitrary;
use coffer_core::{
    Action, Bucket, BucketName, Classification, Decision, Grant, Grantee, Narrowing, Principal, Role, Rule, decide,
    decide_copy, decide_create_bucket,
};
use libfuzzer_sys::fuzz_target;

const USERS: [&str; 4] = ["alice", "bob", "carol", "system:serviceaccount:ns:sa"];
const GROUPS: [&str; 3] = ["analysts", "leads", "system:serviceaccounts"];
const CLASSES: [&str; 3] = ["unclassified", "protected-a", "protected-b"];
const BUCKETS: [&str; 3] = ["data", "secret", "other"];
const NOW: i64 = 1_700_000_000;

#[derive(Debug, Arbitrary)]
struct P {
    name: u8,
    groups: Vec<u8>,
    clearance: Vec<u8>,
    is_admin: bool,
}

#[derive(Debug, Arbitrary)]
struct B {
    name: u8,
    owner: u8,
    classification: u8,
}

#[derive(Debug, Arbitrary)]
struct G {
    bucket: u8,
    group: bool,
    who: u8,
    role: u8,
}

#[derive(Debug, Arbitrary)]
struct N {
    read_only: bool,
    buckets: Option<Vec<u8>>,
    classification: Option<u8>,
    expires_in: Option<i16>,
}

#[derive(Debug, Arbitrary)]
struct Input {
    principal: P,
    narrowing: N,
    bucket: B,
    other_bucket: B,
    grants: Vec<G>,
    action: u8,
    /// Which grants a subset keeps (bit i: grant i).
    keep: u64,
    /// How to tighten the narrowing.
    tighten: N,
}

fn pick<'a>(list: &[&'a str], i: u8) -> &'a str {
    list[usize::from(i) % list.len()]
}

fn class(i: u8) -> Classification {
    Classification::parse(pick(&CLASSES, i)).unwrap()
}

fn bucket_name(i: u8) -> BucketName {
    BucketName::parse(pick(&BUCKETS, i)).unwrap()
}

fn role(i: u8) -> Role {
    [Role::Read, Role::Write, Role::Admin][usize::from(i) % 3]
}

fn action(i: u8) -> Action {
    [Action::List, Action::Read, Action::Write, Action::Delete, Action::Admin][usize::from(i) % 5]
}

fn principal(p: &P) -> Principal {
    Principal {
        name: pick(&USERS, p.name).to_owned(),
        groups: p.groups.iter().take(4).map(|g| pick(&GROUPS, *g).to_owned()).collect(),
        clearance: p.clearance.iter().take(4).map(|c| class(*c)).collect(),
        is_admin: p.is_admin,
    }
}

fn bucket(b: &B) -> Bucket {
    Bucket {
        name: bucket_name(b.name),
        owner: pick(&USERS, b.owner).to_owned(),
        tier: "standard".into(),
        classification: class(b.classification),
        created_at: 0,
    }
}

fn grant(g: &G) -> Grant {
    let grantee =
        if g.group { Grantee::Group(pick(&GROUPS, g.who).to_owned()) } else { Grantee::User(pick(&USERS, g.who).to_owned()) };
    Grant { bucket: bucket_name(g.bucket), grantee, role: role(g.role), created_at: 0 }
}

fn narrowing(n: &N) -> Narrowing {
    Narrowing {
        read_only: n.read_only,
        buckets: n.buckets.as_ref().map(|v| v.iter().take(4).map(|b| bucket_name(*b)).collect::<BTreeSet<_>>()),
        classification: n.classification.map(class),
        expires_at: n.expires_in.map(|s| NOW + i64::from(s)),
    }
}

/// `base` with every limit of `extra` added (never fewer limits).
fn tightened(base: &Narrowing, extra: &Narrowing) -> Narrowing {
    let buckets = match (&base.buckets, &extra.buckets) {
        (Some(a), Some(b)) => Some(a.intersection(b).cloned().collect()),
        (Some(a), None) => Some(a.clone()),
        (None, b) => b.clone(),
    };
    let classification = match (&base.classification, &extra.classification) {
        // Two different classifications: nothing passes; keep the base's (still as tight).
        (Some(a), _) => Some(a.clone()),
        (None, b) => b.clone(),
    };
    let expires_at = match (base.expires_at, extra.expires_at) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    Narrowing { read_only: base.read_only || extra.read_only, buckets, classification, expires_at }
}

/// Does the narrowing let `action` on `b` through (its own checks only)?
fn narrowing_passes(n: &Narrowing, b: &Bucket, action: Action) -> bool {
    n.expires_at.is_none_or(|t| NOW < t)
        && n.buckets.as_ref().is_none_or(|s| s.contains(&b.name))
        && (!n.read_only || action.required_role() == Role::Read)
        && n.classification.as_ref().is_none_or(|c| *c == b.classification)
}

/// The grounds for an allow: does the principal really have a role covering the action?
fn has_grounds(p: &Principal, b: &Bucket, grants: &[Grant], action: Action, rule: &Rule) -> bool {
    let required = action.required_role();
    match rule {
        Rule::Owner => b.owner == p.name,
        Rule::PlatformAdmin => p.is_admin,
        Rule::UserGrant { role } => {
            *role >= required
                && grants.iter().any(|g| g.bucket == b.name && g.role == *role && g.grantee == Grantee::User(p.name.clone()))
        }
        Rule::GroupGrant { group, role } => {
            *role >= required
                && p.groups.contains(group)
                && grants.iter().any(|g| g.bucket == b.name && g.role == *role && g.grantee == Grantee::Group(group.clone()))
        }
        _ => false,
    }
}

fn check_one(p: &Principal, n: &Narrowing, b: &Bucket, grants: &[Grant], a: Action) -> Decision {
    let d = decide(p, n, b, grants, a, NOW);
    let _ = d.rule.to_string();
    let json = serde_json::to_string(&d).unwrap();
    assert_eq!(serde_json::from_str::<Decision>(&json).unwrap(), d);
    if d.allowed {
        assert!(p.clearance.contains(&b.classification), "allowed outside the clearance: {d:?}");
        assert!(narrowing_passes(n, b, a), "allowed past the narrowing: {n:?} {d:?}");
        assert!(has_grounds(p, b, grants, a, &d.rule), "allowed without grounds: {p:?} {b:?} {grants:?} {a:?} {d:?}");
    } else if narrowing_passes(n, b, a) && !p.clearance.contains(&b.classification) {
        assert_eq!(d.rule, Rule::Clearance { classification: b.classification.clone() });
    }
    if n.expires_at.is_some_and(|t| NOW >= t) {
        assert_eq!(d, Decision::deny(Rule::CredentialExpired));
    }
    d
}

fuzz_target!(|input: Input| {
    let p = principal(&input.principal);
    let n = narrowing(&input.narrowing);
    let b = bucket(&input.bucket);
    let other = bucket(&input.other_bucket);
    let grants: Vec<Grant> = input.grants.iter().take(12).map(grant).collect();
    let a = action(input.action);

    let d = check_one(&p, &n, &b, &grants, a);

    // A narrowing never widens.
    let open = check_one(&p, &Narrowing::default(), &b, &grants, a);
    if d.allowed {
        assert!(open.allowed, "allowed under {n:?} but not without a narrowing");
    }
    let tight = tightened(&n, &narrowing(&input.tighten));
    let dt = check_one(&p, &tight, &b, &grants, a);
    if dt.allowed {
        assert!(d.allowed, "the tighter {tight:?} allows what {n:?} denies");
    }

    // More grants never allow less; grants on other buckets change nothing.
    let subset: Vec<Grant> =
        grants.iter().enumerate().filter(|(i, _)| input.keep >> (i % 64) & 1 == 1).map(|(_, g)| g.clone()).collect();
    if check_one(&p, &n, &b, &subset, a).allowed {
        assert!(d.allowed, "removing grants allowed more");
    }
    let own: Vec<Grant> = grants.iter().filter(|g| g.bucket == b.name).cloned().collect();
    assert_eq!(decide(&p, &n, &b, &own, a, NOW), d);

    // Allowed for an action: allowed for every action needing no more.
    for lesser in [Action::List, Action::Read, Action::Write, Action::Delete, Action::Admin] {
        if lesser.required_role() <= a.required_role() && d.allowed {
            assert!(decide(&p, &n, &b, &grants, lesser, NOW).allowed, "{a:?} allowed but not {lesser:?}");
        }
    }

    // Copies: read on the source, write on the destination, one classification.
    let c = decide_copy(&p, &n, (&other, &grants), (&b, &grants), NOW);
    if c.allowed {
        assert_eq!(other.classification, b.classification, "a copy across classifications: {c:?}");
        assert!(decide(&p, &n, &other, &grants, Action::Read, NOW).allowed);
        assert!(decide(&p, &n, &b, &grants, Action::Write, NOW).allowed);
    }

    // Creating a bucket: within the clearance and the narrowing.
    let cb = decide_create_bucket(&p, &n, &b.name, &b.classification, NOW);
    if cb.allowed {
        assert!(p.clearance.contains(&b.classification));
        assert!(narrowing_passes(&n, &b, Action::Admin));
    }
});
