//! The use cases end to end below the wire: a gateway over a real SQLite store and a real
//! filesystem tier, with changes made through a second store handle standing in for
//! another process (`coffer admin`, another replica).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use coffer_backend::{Backend, ByteStream, FsBackend};
use coffer_core::{Action, Grantee, Narrowing, Role};
use coffer_gateway::objects::{CopyInput, PutInput};
use coffer_gateway::{Caller, Error, Gateway};
use coffer_identity::ServerKey;

struct Fixture {
    gateway: Arc<Gateway>,
    /// The same database through another handle, as another process would see it.
    other: Arc<Gateway>,
    _dir: tempfile::TempDir,
    stop: tokio::sync::watch::Sender<bool>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("coffer.db").display());
    let key = ServerKey::generate();
    let make = |store: Arc<dyn coffer_metadata::MetadataStore>, tier: Arc<dyn Backend>| {
        Arc::new(Gateway::new(store, BTreeMap::from([("standard".to_owned(), tier)]), "standard".into(), key.clone()))
    };
    let store = coffer_metadata::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    let tier: Arc<dyn Backend> = Arc::new(FsBackend::new(dir.path().join("objects")).await.unwrap());
    let gateway = make(store, tier.clone());
    let other = make(coffer_metadata::open(&url).await.unwrap(), tier);
    let (stop, mut rx) = tokio::sync::watch::channel(false);
    tokio::spawn(gateway.clone().watch_changes(async move {
        let _ = rx.wait_for(|v| *v).await;
    }));
    Fixture { gateway, other, _dir: dir, stop }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

fn body(b: &'static [u8]) -> ByteStream {
    Box::pin(futures::stream::iter([Ok(Bytes::from_static(b))]))
}

async fn user(g: &Gateway, name: &str, clearance: &[&str]) -> Caller {
    let clearance: Vec<String> = clearance.iter().map(|s| s.to_string()).collect();
    g.admin_create_user(name, &[], &clearance, false).await.unwrap();
    let k = g.admin_create_key(name, Narrowing::default()).await.unwrap();
    g.caller_for_key(&k.key.access_key_id).await.unwrap()
}

/// Poll `f` until it is true; the time it took, or a panic after `limit`.
async fn within(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_made_elsewhere_apply_within_a_second() {
    let f = fixture().await;
    let g = &f.gateway;
    let alice = user(g, "alice", &[]).await;
    let bob = user(g, "bob", &[]).await;
    g.create_bucket(&alice, "shared", None).await.unwrap();
    // Warm the cache with a denial.
    assert!(matches!(g.authorize(&bob, "shared", None, Action::Read).await, Err(Error::AccessDenied)));

    f.other.admin_put_grant("shared", Grantee::User("bob".into()), Role::Read).await.unwrap();
    within(Duration::from_secs(1), async || g.authorize(&bob, "shared", None, Action::Read).await.is_ok()).await;

    f.other.admin_remove_grant("shared", &Grantee::User("bob".into())).await.unwrap();
    within(Duration::from_secs(1), async || g.authorize(&bob, "shared", None, Action::Read).await.is_err()).await;

    // A key revoked elsewhere stops authenticating.
    let id = alice.access_key_id.clone();
    assert!(g.secret_for_key(&id).await.is_ok());
    f.other.admin_revoke_key(&id).await.unwrap();
    within(Duration::from_secs(1), async || matches!(g.secret_for_key(&id).await, Err(Error::InvalidAccessKeyId)))
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bucket_creation_rules() {
    let f = fixture().await;
    let g = &f.gateway;
    let alice = user(g, "alice", &[]).await;
    let bob = user(g, "bob", &[]).await;
    let b = g.create_bucket(&alice, "alice-data", None).await.unwrap();
    assert_eq!(b.owner, "alice");
    assert_eq!(b.tier, "standard");
    assert!(matches!(g.create_bucket(&alice, "alice-data", None).await, Err(Error::BucketAlreadyOwnedByYou)));
    assert!(matches!(g.create_bucket(&bob, "alice-data", None).await, Err(Error::BucketAlreadyExists)));
    assert!(matches!(g.create_bucket(&bob, "Bad_Name", None).await, Err(Error::InvalidBucketName(_))));
    assert!(matches!(g.create_bucket(&bob, "metrics", None).await, Err(Error::InvalidBucketName(_))));
    assert!(matches!(g.create_bucket(&bob, "bob-data", Some("gold")).await, Err(Error::InvalidLocationConstraint(_))));
    assert_eq!(g.list_buckets(&bob).await.unwrap().len(), 0);
    assert_eq!(g.list_buckets(&alice).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn data_never_crosses_classifications() {
    let f = fixture().await;
    let g = &f.gateway;
    let carol = user(g, "carol", &["unclassified", "protected-b"]).await;
    g.admin_create_bucket("pb-data", "carol", None, Some("protected-b")).await.unwrap();
    g.admin_create_bucket("open-data", "carol", None, None).await.unwrap();
    g.put_object(&carol, "pb-data", "secret.csv", PutInput::default(), body(b"classified")).await.unwrap();
    let copy = g.copy_object(&carol, ("pb-data", "secret.csv"), ("open-data", "leak.csv"), CopyInput::default()).await;
    assert!(matches!(copy, Err(Error::AccessDenied)));
    let leaked = g.head_object(&carol, "open-data", "leak.csv", &Default::default()).await;
    assert!(matches!(leaked, Err(Error::NoSuchKey)), "nothing may be written by a denied copy");
    // Same classification copies fine.
    g.copy_object(&carol, ("pb-data", "secret.csv"), ("pb-data", "copy.csv"), CopyInput::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_explained_decision_names_its_rule() {
    let f = fixture().await;
    let g = &f.gateway;
    let alice = user(g, "alice", &[]).await;
    user(g, "bob", &[]).await;
    g.create_bucket(&alice, "explained", None).await.unwrap();
    g.admin_put_grant("explained", Grantee::User("bob".into()), Role::Read).await.unwrap();
    let d = g.explain("bob", "explained", Action::Write).await.unwrap();
    assert!(!d.allowed);
    assert_eq!(d.rule.to_string(), "the effective role read is below the required write");
    assert!(g.explain("alice", "explained", Action::Admin).await.unwrap().allowed);
}
