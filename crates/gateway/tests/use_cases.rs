//! The use cases end to end below the wire: a gateway over a real SQLite store and a real
//! filesystem tier, with changes made through a second store handle standing in for
//! another process (`coffer admin`, another replica).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use coffer_backend::{Backend, ByteStream, FsBackend};
use coffer_core::{Action, Grantee, Narrowing, Role, ShareLink, ShareTarget};
use coffer_gateway::objects::{CopyInput, PutInput};
use coffer_gateway::{Caller, Error, Gateway};
use coffer_identity::ServerKey;

struct Fixture {
    gateway: Arc<Gateway>,
    /// The same database through another handle, as another process would see it.
    other: Arc<Gateway>,
    key: ServerKey,
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
    Fixture { gateway, other, key, _dir: dir, stop }
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
    let k = g.admin_create_key(coffer_gateway::admin::BY_COMMAND_LINE, name, Narrowing::default()).await.unwrap();
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
    f.other.admin_revoke_key(coffer_gateway::admin::BY_COMMAND_LINE, &id).await.unwrap();
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

#[tokio::test(flavor = "multi_thread")]
async fn share_links_open_until_they_expire_or_are_revoked() {
    let f = fixture().await;
    let g = &f.gateway;
    let alice = user(g, "alice", &[]).await;
    let bob = user(g, "bob", &[]).await;
    g.create_bucket(&alice, "shared", None).await.unwrap();
    g.put_object(&alice, "shared", "report.csv", PutInput::default(), body(b"a,b")).await.unwrap();
    let view = g.create_share_link(&alice, "shared", ShareTarget::Object("report.csv".into()), None).await.unwrap();
    assert_eq!(view.link.expires_at - view.link.created_at, 7 * 86_400);
    let (link, as_creator) = g.open_share_link(&view.token, "req", "1.2.3.4").await.unwrap();
    assert_eq!(link.id, view.link.id);
    assert_eq!(as_creator.principal.name, "alice");
    assert!(as_creator.narrowing.read_only);
    // read-only and this bucket only, though its creator owns more
    g.create_bucket(&alice, "elsewhere", None).await.unwrap();
    assert!(g.authorize(&as_creator, "shared", Some("report.csv"), Action::Read).await.is_ok());
    assert!(matches!(g.authorize(&as_creator, "shared", None, Action::Write).await, Err(Error::AccessDenied)));
    assert!(matches!(g.authorize(&as_creator, "elsewhere", None, Action::Read).await, Err(Error::AccessDenied)));

    // an expired link answers Gone (made here directly: the API refuses past expiries)
    let mut old = view.link.clone();
    old.id = coffer_identity::share::new_link_id();
    old.created_at -= 100;
    old.expires_at = old.created_at + 60;
    g.store().create_share_link(&old).await.unwrap();
    let old_token = coffer_identity::share::link_token(&f.key, &old.id);
    assert!(matches!(g.open_share_link(&old_token, "req", "src").await, Err(Error::Gone(m)) if m.contains("expired")));

    // only the creator or the bucket's admins revoke; then Gone
    assert!(matches!(g.revoke_share_link(&bob, &view.link.id).await, Err(Error::AccessDenied)));
    g.revoke_share_link(&alice, &view.link.id).await.unwrap();
    assert!(matches!(g.open_share_link(&view.token, "req", "src").await, Err(Error::Gone(m)) if m.contains("revoked")));

    // forged, foreign and malformed tokens are unknown
    let foreign = coffer_identity::share::link_token(&ServerKey::generate(), &view.link.id);
    for bad in [foreign.as_str(), "SLAAAA.bm9wZQ", ""] {
        assert!(matches!(g.open_share_link(bad, "req", "src").await, Err(Error::NotFound(_))), "{bad}");
    }
    assert!(matches!(g.revoke_share_link(&alice, "not-a-link").await, Err(Error::NotFound(_))));
}

#[tokio::test(flavor = "multi_thread")]
async fn share_link_rules() {
    let f = fixture().await;
    let g = &f.gateway;
    let carol = user(g, "carol", &["unclassified", "protected-b"]).await;
    g.admin_create_bucket("pb-data", "carol", None, Some("protected-b")).await.unwrap();
    g.put_object(&carol, "pb-data", "x", PutInput::default(), body(b"x")).await.unwrap();
    let pb = g.create_share_link(&carol, "pb-data", ShareTarget::Prefix(String::new()), None).await;
    assert!(matches!(pb, Err(Error::Forbidden(m)) if m.contains("protected-b")));
    g.create_bucket(&carol, "open-data", None).await.unwrap();
    let max = g.link_rules().max_expiry;
    let too_long = g.create_share_link(&carol, "open-data", ShareTarget::Prefix("a/".into()), Some(max + 1)).await;
    assert!(matches!(too_long, Err(Error::InvalidArgument(_))));
    let missing = g.create_share_link(&carol, "open-data", ShareTarget::Object("nope".into()), None).await;
    assert!(matches!(missing, Err(Error::NoSuchKey)));
    let nul = g.create_share_link(&carol, "open-data", ShareTarget::Prefix("a\0".into()), None).await;
    assert!(matches!(nul, Err(Error::InvalidArgument(_))));
    let link = g.create_share_link(&carol, "open-data", ShareTarget::Prefix("a/".into()), Some(max)).await.unwrap();
    assert_eq!(link.link.expires_at - link.link.created_at, max);
    let _: &ShareLink = &link.link;
}

#[tokio::test(flavor = "multi_thread")]
async fn projects_keep_an_admin_and_members_reach_every_project_bucket() {
    let f = fixture().await;
    let g = &f.gateway;
    let alice = user(g, "alice", &[]).await;
    let bob = user(g, "bob", &[]).await;
    let p = g.create_project(&alice, "atlas").await.unwrap();
    assert_eq!(p.buckets[0].owner, "project:atlas");
    // a second bucket of the project, as an operator would add on another tier
    g.admin_create_bucket("atlas-scratch", "alice", None, None).await.unwrap();
    g.store().delete_bucket("atlas-scratch").await.unwrap();
    let mut second = p.buckets[0].clone();
    second.name = coffer_core::BucketName::parse("atlas-scratch").unwrap();
    g.store().create_bucket(&second).await.unwrap();
    g.put_member(&alice, "atlas", Grantee::User("bob".into()), Role::Write).await.unwrap();
    for bucket in ["atlas", "atlas-scratch"] {
        within(Duration::from_secs(1), async || g.authorize(&bob, bucket, None, Action::Write).await.is_ok()).await;
    }
    let listed = g.list_projects(&bob).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].buckets.iter().map(|b| b.name.as_str()).collect::<Vec<_>>(), ["atlas", "atlas-scratch"]);
    assert_eq!(listed[0].role, Role::Write);
    assert!(matches!(
        g.put_member(&alice, "atlas", Grantee::User("alice".into()), Role::Read).await,
        Err(Error::Conflict(_))
    ));
    g.remove_member(&alice, "atlas", &Grantee::User("bob".into())).await.unwrap();
    within(Duration::from_secs(1), async || g.authorize(&bob, "atlas-scratch", None, Action::Read).await.is_err())
        .await;
    assert!(matches!(g.get_project(&bob, "atlas").await, Err(Error::AccessDenied)));
    assert!(matches!(g.get_project(&alice, "alice-data").await, Err(Error::NotFound(_))));
    g.delete_project(&alice, "atlas").await.unwrap();
    assert!(g.store().get_bucket("atlas-scratch").await.unwrap().is_none());
}

/// Paging through the audit trail by `until` (the oldest event's millisecond, exclusive)
/// misses no event, however many share a millisecond at a page's edge.
#[tokio::test(flavor = "multi_thread")]
async fn audit_pages_miss_no_event_of_a_shared_millisecond() {
    let f = fixture().await;
    let g = &f.gateway;
    g.admin_create_user("root", &[], &[], true).await.unwrap();
    let k = g.admin_create_key(coffer_gateway::admin::BY_COMMAND_LINE, "root", Narrowing::default()).await.unwrap();
    let admin = g.caller_for_key(&k.key.access_key_id).await.unwrap();
    // Ten events in three milliseconds, stored newest last; four share the middle one.
    let stamps = [1_000, 1_000, 1_000, 2_000, 2_000, 2_000, 2_000, 3_000, 3_000, 3_000];
    let events: Vec<coffer_core::AuditEvent> = stamps
        .iter()
        .enumerate()
        .map(|(i, &at)| coffer_core::AuditEvent {
            at,
            principal: "alice".into(),
            access_key_id: "AK".into(),
            action: "read".into(),
            bucket: "b".into(),
            key: format!("k{i}"),
            allowed: true,
            rule: "owner".into(),
            request_id: format!("R{i}"),
            source: String::new(),
        })
        .collect();
    g.store().append_audit(events).await.unwrap();
    let mut seen = Vec::new();
    let mut until = None;
    let mut pages = Vec::new();
    loop {
        let filter =
            coffer_core::AuditFilter { until, limit: 2, principal: Some("alice".into()), ..Default::default() };
        let page = g.audit_events_for(&admin, &filter).await.unwrap();
        pages.push(page.len());
        seen.extend(page.iter().map(|e| e.key.clone()));
        if page.len() < filter.limit {
            break;
        }
        until = page.last().map(|e| e.at);
    }
    // Pages of 2 ask for more: the first holds all of 3 000 (3), the second all of 2 000 (4).
    assert_eq!(pages, [3, 4, 3, 0]);
    let expected: Vec<String> = (0..10).rev().map(|i| format!("k{i}")).collect();
    assert_eq!(seen, expected, "every event once, newest first");
}

/// Every change to an access key is in the stored audit trail at once — by its user, by the
/// operator, and a refused attempt on another user's key — with who did it and the key's id.
#[tokio::test(flavor = "multi_thread")]
async fn access_key_changes_are_in_the_audit_trail() {
    use coffer_gateway::admin::BY_COMMAND_LINE;
    let f = fixture().await;
    let g = &f.gateway;
    let alice = user(g, "alice", &[]).await.in_request(Some(&coffer_gateway::RequestInfo {
        request_id: "REQ1".into(),
        source: "10.0.0.1:5000".into(),
        read_only_endpoint: false,
    }));
    let bob = user(g, "bob", &[]).await;
    let own =
        coffer_gateway::keys::KeyRequest { read_only: true, buckets: None, classification: None, expires_in: None };
    let made = g.create_own_key(&alice, &own).await.unwrap().key.access_key_id;
    assert!(matches!(g.revoke_own_key(&bob, &made).await, Err(Error::NotFound(_))));
    g.revoke_own_key(&alice, &made).await.unwrap();
    let theirs = g.admin_create_key(BY_COMMAND_LINE, "bob", Narrowing::default()).await.unwrap().key.access_key_id;
    g.admin_revoke_key(BY_COMMAND_LINE, &theirs).await.unwrap();

    // No audit writer runs here: these were stored by the calls themselves.
    let all = g.store().list_audit(&coffer_core::AuditFilter { limit: 100, ..Default::default() }).await.unwrap();
    let changes: Vec<_> = all
        .iter()
        .rev()
        .filter(|e| e.key == made || e.key == theirs)
        .map(|e| (e.principal.as_str(), e.action.as_str(), e.key.as_str(), e.allowed, e.rule.as_str()))
        .collect();
    assert_eq!(
        changes,
        [
            ("alice", "create-access-key", made.as_str(), true, "a user's own key"),
            ("bob", "revoke-access-key", made.as_str(), false, "the key is another user's"),
            ("alice", "revoke-access-key", made.as_str(), true, "a user's own key"),
            (BY_COMMAND_LINE, "create-access-key", theirs.as_str(), true, "the operator, for user bob"),
            (BY_COMMAND_LINE, "revoke-access-key", theirs.as_str(), true, "the operator"),
        ]
    );
    let created = all.iter().find(|e| e.key == made && e.action == "create-access-key").unwrap();
    assert_eq!(
        (created.access_key_id.as_str(), created.request_id.as_str(), created.source.as_str(), created.bucket.as_str()),
        (alice.access_key_id.as_str(), "REQ1", "10.0.0.1:5000", ""),
        "the credential used, the request and the client's address"
    );
}
