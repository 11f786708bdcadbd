//! The pure authorization decision: `cargo bench -p coffer-core --bench decide`.
//! Owner, a direct user grant among many, a group grant, and a denial, for buckets with 1
//! and 100 grants.

use std::collections::BTreeSet;
use std::hint::black_box;

use coffer_core::{Action, Bucket, BucketName, Classification, Grant, Grantee, Narrowing, Principal, Role, decide};
use criterion::{Criterion, criterion_group, criterion_main};

fn bucket() -> Bucket {
    Bucket {
        name: BucketName::parse("shared").unwrap(),
        owner: "owner".into(),
        tier: "standard".into(),
        classification: Classification::unclassified(),
        created_at: 0,
    }
}

fn principal(name: &str, groups: &[&str]) -> Principal {
    Principal {
        name: name.into(),
        groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        clearance: BTreeSet::from([Classification::unclassified()]),
        is_admin: false,
    }
}

/// `n` grants to others, then the ones given.
fn grants(n: usize, extra: &[(Grantee, Role)]) -> Vec<Grant> {
    let b = BucketName::parse("shared").unwrap();
    let mut v: Vec<Grant> = (0..n)
        .map(|i| Grant {
            bucket: b.clone(),
            grantee: if i % 2 == 0 { Grantee::User(format!("user{i}")) } else { Grantee::Group(format!("group{i}")) },
            role: Role::Write,
            created_at: 0,
        })
        .collect();
    v.extend(extra.iter().map(|(g, r)| Grant { bucket: b.clone(), grantee: g.clone(), role: *r, created_at: 0 }));
    v
}

fn bench(c: &mut Criterion) {
    let b = bucket();
    let none = Narrowing::default();
    let now = 1_900_000_000;
    let owner = principal("owner", &[]);
    let reader = principal("reader", &["team-a", "team-b"]);
    let stranger = principal("stranger", &["nobody"]);
    for n in [1usize, 100] {
        let g = grants(n, &[(Grantee::User("reader".into()), Role::Read)]);
        let gg = grants(n, &[(Grantee::Group("team-b".into()), Role::Write)]);
        c.bench_function(&format!("decide/owner/{n} grants"), |bn| {
            bn.iter(|| decide(black_box(&owner), &none, black_box(&b), black_box(&g), Action::Write, now))
        });
        c.bench_function(&format!("decide/user grant/{n} grants"), |bn| {
            bn.iter(|| decide(black_box(&reader), &none, black_box(&b), black_box(&g), Action::Read, now))
        });
        c.bench_function(&format!("decide/group grant/{n} grants"), |bn| {
            bn.iter(|| decide(black_box(&reader), &none, black_box(&b), black_box(&gg), Action::Write, now))
        });
        c.bench_function(&format!("decide/denied/{n} grants"), |bn| {
            bn.iter(|| decide(black_box(&stranger), &none, black_box(&b), black_box(&g), Action::Read, now))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
