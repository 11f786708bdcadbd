//! The authorization decision, in this process: the pure decision of `coffer-core`, then
//! `Gateway::authorize` with a warm cache (what nearly every request pays), then with the
//! cache dropped before each call (a bucket's first request after a change: the store is
//! read). The audit writer runs, as in the server. The criterion benches
//! (`cargo bench -p coffer-core --bench decide`, `cargo bench -p coffer-gateway --bench
//! authorize`) measure the same with more statistics.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_backend::{Backend, FsBackend};
use coffer_core::{Action, Grantee, Narrowing, Role};
use coffer_gateway::Gateway;

use crate::hist::Histogram;
use crate::table::{Table, latency};
use crate::{Opts, say};

/// A gateway over `database_url` and a filesystem tier in `dir`, with: an owner of bucket
/// `shared`, 50 grants on it to other users and groups, and `reader` granted read through a
/// group. Returns the gateway and reader's access key id.
pub async fn fixture(database_url: &str, dir: &std::path::Path) -> anyhow::Result<(Arc<Gateway>, String)> {
    let store = coffer_metadata::open(database_url).await?;
    store.migrate().await?;
    let tier: Arc<dyn Backend> = Arc::new(FsBackend::new(dir.join("objects")).await?);
    let tiers = BTreeMap::from([("standard".to_owned(), tier)]);
    let gw = Arc::new(Gateway::new(store, tiers, "standard".into(), coffer_identity::ServerKey::generate()));
    gw.admin_create_user("owner", &[], &[], false).await?;
    gw.admin_create_user("reader", &["team-a".into(), "team-b".into()], &[], false).await?;
    gw.admin_create_bucket("shared", "owner", None, None).await?;
    for i in 0..50 {
        let grantee = if i % 2 == 0 { Grantee::User(format!("user{i}")) } else { Grantee::Group(format!("group{i}")) };
        gw.admin_put_grant("shared", grantee, Role::Write).await?;
    }
    gw.admin_put_grant("shared", Grantee::Group("team-b".into()), Role::Read).await?;
    let key = gw.admin_create_key(coffer_gateway::admin::BY_COMMAND_LINE, "reader", Narrowing::default()).await?;
    Ok((gw, key.key.access_key_id))
}

fn row(t: &mut Table, what: &str, h: &Histogram, total: Duration) {
    t.row(vec![
        what.to_owned(),
        crate::table::group(h.count()),
        latency(total / h.count().max(1) as u32),
        latency(h.quantile(0.5)),
        latency(h.quantile(0.99)),
    ]);
}

async fn measure<F, Fut>(n: u64, mut f: F) -> (Histogram, Duration)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut h = Histogram::default();
    let start = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        h.record(t.elapsed());
    }
    (h, start.elapsed())
}

pub async fn run(opts: &Opts) -> anyhow::Result<Vec<Table>> {
    let mut t = Table::new(
        "Authorization decision (in-process; target: cached decision < 5 µs)",
        &["path", "calls", "mean", "p50", "p99"],
    );
    let mut stores = vec![("SQLite", None)];
    if opts.pg != "none" {
        stores.push(("PostgreSQL", Some(opts.pg.clone())));
    }
    for (name, pg) in stores {
        let dir = opts.tempdir("authz")?;
        let db = match &pg {
            Some(url) => match crate::list::PgDatabase::create(url, "authz") {
                Ok(db) => Some(db),
                Err(e) => {
                    t.note(format!("PostgreSQL not measured: {e:#}"));
                    continue;
                }
            },
            None => None,
        };
        let url = match &db {
            Some(db) => db.url.clone(),
            None => format!("sqlite://{}", dir.path().join("coffer.db").display()),
        };
        say!("authz: {name}");
        let (gw, key) = fixture(&url, dir.path()).await?;
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let writer = {
            let gw = gw.clone();
            tokio::spawn(async move {
                gw.run_audit_writer(Duration::from_secs(3600), async move {
                    let _ = stop_rx.await;
                })
                .await
            })
        };
        let caller = gw.caller_for_key(&key).await?;
        if name == "SQLite" {
            let entry_grants = gw.admin_list_grants(Some("shared")).await?;
            let bucket = gw.store().get_bucket("shared").await?.expect("made above");
            let (h, total) = measure(1_000_000, || {
                let d = coffer_core::decide(
                    &caller.principal,
                    &caller.narrowing,
                    &bucket,
                    &entry_grants,
                    Action::Read,
                    1_900_000_000,
                );
                assert!(d.allowed);
                std::future::ready(())
            })
            .await;
            row(&mut t, "pure decision (coffer-core `decide`, 51 grants, group grant)", &h, total);
        }
        gw.authorize(&caller, "shared", Some("k"), Action::Read).await?;
        let (h, total) = measure(200_000, || async {
            gw.authorize(&caller, "shared", Some("k"), Action::Read).await.expect("allowed");
        })
        .await;
        row(&mut t, &format!("`Gateway::authorize`, warm cache ({name})"), &h, total);
        let (h, total) = measure(if pg.is_some() { 2_000 } else { 5_000 }, || async {
            gw.clear_cache();
            gw.authorize(&caller, "shared", Some("k"), Action::Read).await.expect("allowed");
        })
        .await;
        row(&mut t, &format!("`Gateway::authorize`, cache dropped each call ({name})"), &h, total);
        let _ = stop_tx.send(());
        let _ = writer.await;
        drop(gw);
        drop(db);
    }
    t.note("Every call records an audit event (log line filtered out here, event queued to the store's writer).");
    Ok(vec![t])
}
