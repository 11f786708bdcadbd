//! `Gateway::authorize`, as every S3 request calls it: `cargo bench -p coffer-gateway --bench
//! authorize`. With a warm cache (the common case; target: under 5 µs) and with the cache
//! dropped before each call (the store is read: the bucket, its grants, its quotas). SQLite
//! in a temporary directory; the audit writer runs, as in the server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use coffer_backend::{Backend, FsBackend};
use coffer_core::{Action, Grantee, Narrowing, Role};
use coffer_gateway::Gateway;
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (gw, caller) = rt.block_on(async {
        let store =
            coffer_metadata::open(&format!("sqlite://{}", dir.path().join("coffer.db").display())).await.unwrap();
        store.migrate().await.unwrap();
        let tier: Arc<dyn Backend> = Arc::new(FsBackend::new(dir.path().join("objects")).await.unwrap());
        let gw = Arc::new(Gateway::new(
            store,
            BTreeMap::from([("standard".to_owned(), tier)]),
            "standard".into(),
            coffer_identity::ServerKey::generate(),
        ));
        gw.admin_create_user("owner", &[], &[], false).await.unwrap();
        gw.admin_create_user("reader", &["team-a".into(), "team-b".into()], &[], false).await.unwrap();
        gw.admin_create_bucket("shared", "owner", None, None).await.unwrap();
        for i in 0..50 {
            let g = if i % 2 == 0 { Grantee::User(format!("user{i}")) } else { Grantee::Group(format!("group{i}")) };
            gw.admin_put_grant("shared", g, Role::Write).await.unwrap();
        }
        gw.admin_put_grant("shared", Grantee::Group("team-b".into()), Role::Read).await.unwrap();
        let key =
            gw.admin_create_key(coffer_gateway::admin::BY_COMMAND_LINE, "reader", Narrowing::default()).await.unwrap();
        let caller = gw.caller_for_key(&key.key.access_key_id).await.unwrap();
        (gw, caller)
    });
    let writer = {
        let gw = gw.clone();
        rt.spawn(async move { gw.run_audit_writer(Duration::from_secs(3600), std::future::pending::<()>()).await })
    };
    c.bench_function("authorize/warm cache", |b| {
        b.to_async(&rt).iter(|| async { gw.authorize(&caller, "shared", Some("k"), Action::Read).await.unwrap() })
    });
    c.bench_function("authorize/cache dropped", |b| {
        b.to_async(&rt).iter(|| async {
            gw.clear_cache();
            gw.authorize(&caller, "shared", Some("k"), Action::Read).await.unwrap()
        })
    });
    writer.abort();
}

criterion_group!(benches, bench);
criterion_main!(benches);
