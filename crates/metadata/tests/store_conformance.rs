//! One behaviour suite for every `MetadataStore` backend.
//!
//! Each scenario is an `async fn(&TestDb)`; the `conformance!` macro turns it into two tests,
//! `sqlite::<scenario>` (a database file in a temporary directory) and `postgres::<scenario>`
//! (a fresh database `coffer_test_<hex>`, created on the server named by `COFFER_TEST_PG_URL`,
//! default `postgres://postgres@127.0.0.1:5432/postgres`, and dropped afterwards).
//!
//! If PostgreSQL cannot be reached, the PostgreSQL tests print a notice and pass, unless `CI`
//! is `true`: then they fail.

use std::collections::BTreeSet;
use std::sync::Arc;

use coffer_core::{
    AccessKey, Bucket, BucketName, Classification, Grant, Grantee, Narrowing, Principal, Quota, QuotaScope, Role,
    ShareLink, ShareTarget, Usage, User, UserName,
};
use coffer_metadata::{ChangeEvent, ChangeStream, DieselStore, Error, MetadataStore};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl, SqliteConnection};

const DEFAULT_PG_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Which database a [`TestDb`] lives in.
enum Place {
    Sqlite { path: String, _dir: tempfile::TempDir },
    Postgres { admin_url: String, name: String },
}

/// A fresh, empty database for one test, removed when dropped.
struct TestDb {
    url: String,
    place: Place,
}

impl TestDb {
    fn sqlite() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("meta.db").to_str().expect("UTF-8 temp path").to_owned();
        Self { url: format!("sqlite://{path}"), place: Place::Sqlite { path, _dir: dir } }
    }

    /// `None` (after a notice) if PostgreSQL is unreachable and this is not CI.
    fn postgres() -> Option<Self> {
        let admin_url = std::env::var("COFFER_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned());
        let mut admin = match PgConnection::establish(&with_connect_timeout(&admin_url)) {
            Ok(conn) => conn,
            Err(e) => {
                let ci = std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
                if ci {
                    panic!("PostgreSQL is unreachable at COFFER_TEST_PG_URL={admin_url:?} and CI=true: {e}");
                }
                eprintln!("notice: skipping a PostgreSQL conformance test, server unreachable at {admin_url:?}: {e}");
                return None;
            }
        };
        let name = format!("coffer_test_{}", uuid::Uuid::new_v4().simple());
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("CREATE DATABASE");
        Some(Self { url: with_database(&admin_url, &name), place: Place::Postgres { admin_url, name } })
    }

    /// A store on this database, not migrated.
    async fn open(&self) -> DieselStore {
        DieselStore::connect(&self.url).await.expect("connect")
    }

    /// A store on this database, migrated.
    async fn store(&self) -> DieselStore {
        let store = self.open().await;
        store.migrate().await.expect("migrate");
        store
    }

    /// Run SQL directly, behind the store's back.
    fn exec(&self, sql: &str) {
        match &self.place {
            Place::Sqlite { path, .. } => SqliteConnection::establish(path).expect("open sqlite").batch_execute(sql),
            Place::Postgres { .. } => PgConnection::establish(&self.url).expect("connect").batch_execute(sql),
        }
        .expect("raw SQL");
    }

    fn is_postgres(&self) -> bool {
        matches!(self.place, Place::Postgres { .. })
    }

    /// PostgreSQL only: the count a `SELECT count(*) …` answers, behind the store's back.
    fn pg_count(&self, sql: &str) -> i64 {
        let mut conn = PgConnection::establish(&self.url).expect("connect");
        // As a scalar subquery: `select` writes the `SELECT`.
        diesel::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(&format!("({sql})")))
            .get_result(&mut conn)
            .expect("count")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Place::Postgres { admin_url, name } = &self.place {
            let dropped = PgConnection::establish(&with_connect_timeout(admin_url))
                .map_err(|e| e.to_string())
                .and_then(|mut c| {
                    c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).map_err(|e| e.to_string())
                });
            if let Err(e) = dropped {
                eprintln!("warning: could not drop test database {name}: {e}");
            }
        }
    }
}

fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        return url.to_owned();
    }
    format!("{url}{}connect_timeout=5", if url.contains('?') { '&' } else { '?' })
}

/// `url` with its database replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let base = base[host_start..].find('/').map_or(base, |i| &base[..host_start + i]);
    match query {
        Some(q) => format!("{base}/{db}?{q}"),
        None => format!("{base}/{db}"),
    }
}

/// Defines `sqlite::<scenario>` and `postgres::<scenario>` for every scenario named.
macro_rules! conformance {
    ($($scenario:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $scenario() {
                    let db = super::TestDb::sqlite();
                    super::$scenario(&db).await;
                }
            )+
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $scenario() {
                    let Some(db) = super::TestDb::postgres() else { return };
                    super::$scenario(&db).await;
                }
            )+
        }
    };
}

conformance!(
    users_crud,
    conflicts,
    buckets_crud,
    grants_upsert_remove_list_and_cascade,
    access_keys,
    share_links,
    delete_user_refuses_owners_and_cascades,
    revision_counts_mutations_only,
    migrate_twice_is_a_no_op,
    second_store_sees_changes,
    concurrent_mutations,
    corrupt_rows_are_reported,
    names_with_a_nul_byte_are_absent,
    audit_trail,
    quotas_crud,
    bucket_usage_tracking,
    owner_usage_sums_tracked_and_counts_untracked,
    deleting_a_bucket_deletes_its_quota_and_usage,
    concurrent_usage_additions,
    change_notifications,
    change_stream_reconnects,
);

// ---- sample records ----

fn class(s: &str) -> Classification {
    Classification::parse(s).unwrap()
}

fn user(name: &str) -> User {
    User {
        name: UserName::parse(name).unwrap(),
        groups: BTreeSet::from(["analysts".to_owned()]),
        clearance: BTreeSet::from([Classification::unclassified()]),
        is_admin: false,
        created_at: 1_700_000_000,
    }
}

fn bucket(name: &str, owner: &str) -> Bucket {
    Bucket {
        name: BucketName::parse(name).unwrap(),
        owner: owner.to_owned(),
        tier: "standard".to_owned(),
        classification: Classification::unclassified(),
        created_at: 1_700_000_100,
    }
}

fn grant(bucket: &str, grantee: Grantee, role: Role) -> Grant {
    Grant { bucket: BucketName::parse(bucket).unwrap(), grantee, role, created_at: 1_700_000_200 }
}

fn to_user(name: &str) -> Grantee {
    Grantee::User(name.to_owned())
}

fn to_group(name: &str) -> Grantee {
    Grantee::Group(name.to_owned())
}

fn key(id: &str, user: &str, created_at: i64) -> AccessKey {
    AccessKey {
        access_key_id: id.to_owned(),
        user: UserName::parse(user).unwrap(),
        secret_sealed: format!("sealed:{id}"),
        narrowing: Narrowing::default(),
        created_at,
        revoked_at: None,
    }
}

/// A share link id: `SL` and 20 characters.
fn sl(n: u32) -> String {
    format!("SL{n:020}")
}

fn principal(name: &str) -> Principal {
    Principal {
        name: name.to_owned(),
        groups: BTreeSet::from(["analysts".to_owned()]),
        clearance: BTreeSet::from([Classification::unclassified()]),
        is_admin: false,
    }
}

fn link(id: &str, creator: &str, bucket: &str, target: ShareTarget, created_at: i64) -> ShareLink {
    ShareLink {
        id: id.to_owned(),
        creator: principal(creator),
        bucket: BucketName::parse(bucket).unwrap(),
        target,
        created_at,
        expires_at: created_at + 3_600,
        revoked_at: None,
    }
}

fn on_bucket(name: &str) -> QuotaScope {
    QuotaScope::Bucket(name.to_owned())
}

fn on_user(name: &str) -> QuotaScope {
    QuotaScope::User(name.to_owned())
}

fn quota(scope: QuotaScope, max_bytes: Option<u64>, max_objects: Option<u64>, updated_at: i64) -> Quota {
    Quota { scope, max_bytes, max_objects, updated_at }
}

fn usage(bytes: u64, objects: u64) -> Usage {
    Usage { bytes, objects }
}

fn names<T>(items: &[T], name: impl Fn(&T) -> String) -> Vec<String> {
    items.iter().map(name).collect()
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(result: Result<T, Error>, what: &str, name: &str) {
    match result {
        Err(Error::NotFound { what: w, name: n }) if w == what && n == name => {}
        other => panic!("expected NotFound {{ {what}, {name:?} }}, got {other:?}"),
    }
}

#[track_caller]
fn assert_conflict<T: std::fmt::Debug>(result: Result<T, Error>, what: &str, name: &str) {
    match result {
        Err(Error::Conflict { what: w, name: n }) if w == what && n == name => {}
        other => panic!("expected Conflict {{ {what}, {name:?} }}, got {other:?}"),
    }
}

// ---- scenarios ----

async fn users_crud(db: &TestDb) {
    let store = db.store().await;
    assert!(store.list_users().await.unwrap().is_empty());

    let mut alice = user("alice");
    alice.groups = BTreeSet::from(["analysts".to_owned(), "leads".to_owned()]);
    alice.clearance = BTreeSet::from([class("unclassified"), class("protected-b")]);
    alice.is_admin = true;
    for u in [user("bob"), alice.clone(), user("al-x")] {
        store.create_user(&u).await.unwrap();
    }

    assert_eq!(store.get_user("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(store.get_user("nobody").await.unwrap(), None);
    // Byte order, whatever the database's collation: '-' sorts before letters.
    let listed = store.list_users().await.unwrap();
    assert_eq!(names(&listed, |u| u.name.to_string()), ["al-x", "alice", "bob"]);
    assert_eq!(listed[1], alice);

    // Update replaces groups, clearance and the admin flag, and keeps the creation time.
    let mut changed = alice.clone();
    changed.groups = BTreeSet::new();
    changed.clearance = BTreeSet::from([class("secret")]);
    changed.is_admin = false;
    changed.created_at = 42;
    store.update_user(&changed).await.unwrap();
    let stored = store.get_user("alice").await.unwrap().unwrap();
    assert_eq!(stored, User { created_at: alice.created_at, ..changed });
    assert_not_found(store.update_user(&user("nobody")).await, "user", "nobody");

    store.delete_user("bob").await.unwrap();
    assert_eq!(store.get_user("bob").await.unwrap(), None);
    assert_not_found(store.delete_user("bob").await, "user", "bob");
    assert_eq!(names(&store.list_users().await.unwrap(), |u| u.name.to_string()), ["al-x", "alice"]);
}

async fn conflicts(db: &TestDb) {
    let store = db.store().await;
    let alice = user("alice");
    store.create_user(&alice).await.unwrap();
    let mut other = user("alice");
    other.is_admin = true;
    assert_conflict(store.create_user(&other).await, "user", "alice");
    assert_eq!(store.get_user("alice").await.unwrap(), Some(alice));

    let data = bucket("data", "alice");
    store.create_bucket(&data).await.unwrap();
    assert_conflict(store.create_bucket(&bucket("data", "bob")).await, "bucket", "data");
    assert_eq!(store.get_bucket("data").await.unwrap(), Some(data));

    let k = key("AKIAONE", "alice", 1);
    store.create_access_key(&k).await.unwrap();
    assert_conflict(store.create_access_key(&key("AKIAONE", "alice", 2)).await, "access key", "AKIAONE");
    assert_eq!(store.get_access_key("AKIAONE").await.unwrap(), Some(k));
}

async fn buckets_crud(db: &TestDb) {
    let store = db.store().await;
    assert!(store.list_buckets().await.unwrap().is_empty());

    let mut secret = bucket("abc", "alice");
    secret.classification = class("protected-b");
    secret.tier = "archive".to_owned();
    // The owner need not be a user (it may be a project).
    let project = bucket("data", "project:genomics");
    for b in [project.clone(), secret.clone(), bucket("a-z", "bob")] {
        store.create_bucket(&b).await.unwrap();
    }

    assert_eq!(store.get_bucket("abc").await.unwrap(), Some(secret));
    assert_eq!(store.get_bucket("data").await.unwrap(), Some(project));
    assert_eq!(store.get_bucket("nope").await.unwrap(), None);
    let listed = store.list_buckets().await.unwrap();
    assert_eq!(names(&listed, |b| b.name.to_string()), ["a-z", "abc", "data"]);

    store.delete_bucket("abc").await.unwrap();
    assert_eq!(store.get_bucket("abc").await.unwrap(), None);
    assert_not_found(store.delete_bucket("abc").await, "bucket", "abc");
    assert_eq!(names(&store.list_buckets().await.unwrap(), |b| b.name.to_string()), ["a-z", "data"]);
}

async fn grants_upsert_remove_list_and_cascade(db: &TestDb) {
    let store = db.store().await;
    store.create_bucket(&bucket("data", "alice")).await.unwrap();
    store.create_bucket(&bucket("logs", "bob")).await.unwrap();
    assert!(store.list_grants(None).await.unwrap().is_empty());

    let puts = [
        grant("logs", to_user("alice"), Role::Admin),
        grant("data", to_user("bob"), Role::Read),
        grant("data", to_user("alice"), Role::Read),
        grant("data", to_group("analysts"), Role::Write),
        grant("data", to_user("a-z"), Role::Read),
    ];
    for g in &puts {
        store.put_grant(g).await.unwrap();
    }
    let shown = |gs: Vec<Grant>| {
        gs.into_iter().map(|g| format!("{} {}:{} {}", g.bucket, g.grantee.kind(), g.grantee.name(), g.role)).collect()
    };
    let all: Vec<String> = shown(store.list_grants(None).await.unwrap());
    assert_eq!(
        all,
        [
            "data group:analysts write",
            "data user:a-z read",
            "data user:alice read",
            "data user:bob read",
            "logs user:alice admin"
        ]
    );
    let listed = store.list_grants(Some("logs")).await.unwrap();
    assert_eq!(listed, [puts[0].clone()]);

    // Upsert: a second grant to the same grantee replaces the role.
    store.put_grant(&grant("data", to_user("bob"), Role::Admin)).await.unwrap();
    let data: Vec<String> = shown(store.list_grants(Some("data")).await.unwrap());
    assert_eq!(
        data,
        ["data group:analysts write", "data user:a-z read", "data user:alice read", "data user:bob admin"]
    );

    assert_not_found(store.put_grant(&grant("nope", to_user("bob"), Role::Read)).await, "bucket", "nope");
    assert!(store.list_grants(Some("nope")).await.unwrap().is_empty());

    // Removal matches the grantee kind as well as the name.
    assert!(matches!(
        store.remove_grant("data", &to_user("analysts")).await,
        Err(Error::NotFound { what: "grant", .. })
    ));
    store.remove_grant("data", &to_user("bob")).await.unwrap();
    assert!(matches!(store.remove_grant("data", &to_user("bob")).await, Err(Error::NotFound { what: "grant", .. })));
    assert!(matches!(store.remove_grant("nope", &to_user("bob")).await, Err(Error::NotFound { what: "grant", .. })));
    let data: Vec<String> = shown(store.list_grants(Some("data")).await.unwrap());
    assert_eq!(data, ["data group:analysts write", "data user:a-z read", "data user:alice read"]);

    // Deleting a bucket deletes its grants, and a new bucket of that name starts with none.
    store.delete_bucket("data").await.unwrap();
    let all: Vec<String> = shown(store.list_grants(None).await.unwrap());
    assert_eq!(all, ["logs user:alice admin"]);
    store.create_bucket(&bucket("data", "alice")).await.unwrap();
    assert!(store.list_grants(Some("data")).await.unwrap().is_empty());
}

async fn access_keys(db: &TestDb) {
    let store = db.store().await;
    store.create_user(&user("alice")).await.unwrap();
    store.create_user(&user("bob")).await.unwrap();

    let plain = key("AKIAPLAIN", "alice", 100);
    let narrow = AccessKey {
        narrowing: Narrowing {
            read_only: true,
            buckets: Some(BTreeSet::from([BucketName::parse("data").unwrap(), BucketName::parse("a-z").unwrap()])),
            classification: Some(class("protected-b")),
            expires_at: Some(1_800_000_000),
        },
        ..key("AKIANARROW", "alice", 50)
    };
    let tie = key("AKIAB", "alice", 100);
    let bobs = key("AKIABOB", "bob", 75);
    for k in [&plain, &narrow, &tie, &bobs] {
        store.create_access_key(k).await.unwrap();
    }

    assert_eq!(store.get_access_key("AKIAPLAIN").await.unwrap(), Some(plain.clone()));
    assert_eq!(store.get_access_key("AKIANARROW").await.unwrap(), Some(narrow.clone()));
    assert_eq!(store.get_access_key("AKIANONE").await.unwrap(), None);

    // Sorted by creation time, then id.
    let ids = |ks: Vec<AccessKey>| ks.into_iter().map(|k| k.access_key_id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_access_keys(Some("alice")).await.unwrap()), ["AKIANARROW", "AKIAB", "AKIAPLAIN"]);
    assert_eq!(ids(store.list_access_keys(None).await.unwrap()), ["AKIANARROW", "AKIABOB", "AKIAB", "AKIAPLAIN"]);
    assert!(store.list_access_keys(Some("carol")).await.unwrap().is_empty());

    assert_not_found(store.create_access_key(&key("AKIACAROL", "carol", 1)).await, "user", "carol");

    // Revoking keeps the first time; revoked keys are still returned.
    store.revoke_access_key("AKIAPLAIN", 1_000).await.unwrap();
    store.revoke_access_key("AKIAPLAIN", 2_000).await.unwrap();
    let revoked = store.get_access_key("AKIAPLAIN").await.unwrap().unwrap();
    assert_eq!(revoked, AccessKey { revoked_at: Some(1_000), ..plain });
    assert_eq!(store.list_access_keys(Some("alice")).await.unwrap().len(), 3);
    assert_eq!(store.get_access_key("AKIAB").await.unwrap().unwrap().revoked_at, None);
    assert_not_found(store.revoke_access_key("AKIANONE", 1).await, "access key", "AKIANONE");
}

async fn share_links(db: &TestDb) {
    let store = db.store().await;
    store.create_bucket(&bucket("data", "alice")).await.unwrap();
    store.create_bucket(&bucket("logs", "bob")).await.unwrap();
    assert!(store.list_share_links(None, None).await.unwrap().is_empty());

    // The creator is a snapshot of the principal; it need not be a stored user.
    let mut alice = principal("alice");
    alice.groups = BTreeSet::from(["analysts".to_owned(), "leads".to_owned()]);
    alice.clearance = BTreeSet::from([class("unclassified"), class("protected-b")]);
    alice.is_admin = true;
    let object = ShareLink {
        creator: alice.clone(),
        ..link(&sl(1), "alice", "data", ShareTarget::Object("reports/Q1 résumé ✓ 日本.pdf".to_owned()), 100)
    };
    let whole =
        ShareLink { creator: alice.clone(), ..link(&sl(2), "alice", "data", ShareTarget::Prefix(String::new()), 200) };
    let bobs = link(&sl(3), "bob", "data", ShareTarget::Prefix("logs/2026/".to_owned()), 200);
    let old =
        ShareLink { creator: alice.clone(), ..link(&sl(4), "alice", "logs", ShareTarget::Object("a".to_owned()), 50) };
    let newest = link(&sl(5), "bob", "logs", ShareTarget::Prefix("x y/".to_owned()), 300);

    let mut rev = store.revision().await.unwrap();
    for l in [&object, &whole, &bobs, &old, &newest] {
        store.create_share_link(l).await.unwrap();
        let now = store.revision().await.unwrap();
        assert_eq!(now, rev + 1, "creating {} moves the revision", l.id);
        rev = now;
    }

    // Round trip of both target kinds, with the principal as it was.
    assert_eq!(store.get_share_link(&sl(1)).await.unwrap(), Some(object.clone()));
    assert_eq!(store.get_share_link(&sl(2)).await.unwrap(), Some(whole.clone()));
    assert_eq!(store.get_share_link(&sl(5)).await.unwrap(), Some(newest.clone()));
    assert_eq!(store.get_share_link(&sl(2)).await.unwrap().unwrap().creator, alice);
    assert_eq!(store.get_share_link(&sl(99)).await.unwrap(), None);

    // A taken id, or a missing bucket: refused, and nothing changes.
    let clash = link(&sl(1), "mallory", "logs", ShareTarget::Prefix(String::new()), 1);
    assert_conflict(store.create_share_link(&clash).await, "share link", &sl(1));
    assert_not_found(
        store.create_share_link(&link(&sl(6), "alice", "nope", ShareTarget::Object("k".to_owned()), 1)).await,
        "bucket",
        "nope",
    );
    assert_eq!(store.revision().await.unwrap(), rev, "failed creations keep the revision");
    assert_eq!(store.get_share_link(&sl(1)).await.unwrap(), Some(object.clone()));
    assert_eq!(store.get_share_link(&sl(6)).await.unwrap(), None);

    // Newest first; equal creation times by id. Filters combine.
    let ids = |ls: Vec<ShareLink>| ls.into_iter().map(|l| l.id).collect::<Vec<_>>();
    assert_eq!(ids(store.list_share_links(None, None).await.unwrap()), [sl(5), sl(2), sl(3), sl(1), sl(4)]);
    assert_eq!(ids(store.list_share_links(Some("alice"), None).await.unwrap()), [sl(2), sl(1), sl(4)]);
    assert_eq!(ids(store.list_share_links(None, Some("data")).await.unwrap()), [sl(2), sl(3), sl(1)]);
    assert_eq!(ids(store.list_share_links(Some("bob"), Some("logs")).await.unwrap()), [sl(5)]);
    assert_eq!(ids(store.list_share_links(Some("alice"), Some("logs")).await.unwrap()), [sl(4)]);
    assert!(store.list_share_links(Some("carol"), None).await.unwrap().is_empty());
    assert!(store.list_share_links(None, Some("nope")).await.unwrap().is_empty());
    assert!(store.list_share_links(Some("bob"), Some("nope")).await.unwrap().is_empty());
    let listed = store.list_share_links(Some("alice"), Some("data")).await.unwrap();
    assert_eq!(listed, [whole.clone(), object.clone()]);

    // Revoking keeps the first time; revoked links are still returned and listed.
    store.revoke_share_link(&sl(1), 1_000).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), rev + 1, "revoking moves the revision");
    store.revoke_share_link(&sl(1), 2_000).await.unwrap();
    let revoked = store.get_share_link(&sl(1)).await.unwrap().unwrap();
    assert_eq!(revoked, ShareLink { revoked_at: Some(1_000), ..object.clone() });
    assert_eq!(store.list_share_links(Some("alice"), Some("data")).await.unwrap()[1].revoked_at, Some(1_000));
    assert_eq!(store.get_share_link(&sl(2)).await.unwrap().unwrap().revoked_at, None);
    let rev = store.revision().await.unwrap();
    assert_not_found(store.revoke_share_link(&sl(99), 1).await, "share link", &sl(99));
    assert_eq!(store.revision().await.unwrap(), rev, "a failed revocation keeps the revision");

    // Deleting a bucket deletes its links, and a new bucket of that name starts with none.
    store.delete_bucket("data").await.unwrap();
    assert_eq!(store.get_share_link(&sl(1)).await.unwrap(), None);
    assert_eq!(store.get_share_link(&sl(3)).await.unwrap(), None);
    assert_eq!(ids(store.list_share_links(None, None).await.unwrap()), [sl(5), sl(4)]);
    store.create_bucket(&bucket("data", "alice")).await.unwrap();
    assert!(store.list_share_links(None, Some("data")).await.unwrap().is_empty());
    // The id of a deleted link is free again.
    store.create_share_link(&object).await.unwrap();
    assert_eq!(store.get_share_link(&sl(1)).await.unwrap(), Some(object));
}

/// Names come from requests (an access key id from a presigned URL's `X-Amz-Credential`
/// may be percent-encoded `%00`). No stored name contains NUL, so each database must answer
/// "not there", not fail (PostgreSQL refuses NUL in text), and no mutation may happen.
async fn names_with_a_nul_byte_are_absent(db: &TestDb) {
    let store = db.store().await;
    store.create_user(&user("alice")).await.unwrap();
    store.create_bucket(&bucket("data", "alice")).await.unwrap();
    store.create_access_key(&key("AKIAALICE", "alice", 1)).await.unwrap();
    store.create_share_link(&link(&sl(1), "alice", "data", ShareTarget::Prefix(String::new()), 1)).await.unwrap();
    let before = store.revision().await.unwrap();
    let nul = "AKIA\0ALICE";
    assert_eq!(store.get_access_key(nul).await.unwrap(), None);
    assert_eq!(store.get_user("ali\0ce").await.unwrap(), None);
    assert_eq!(store.get_bucket("da\0ta").await.unwrap(), None);
    assert!(store.list_grants(Some("da\0ta")).await.unwrap().is_empty());
    assert!(store.list_access_keys(Some("ali\0ce")).await.unwrap().is_empty());
    assert_not_found(store.revoke_access_key(nul, 5).await, "access key", nul);
    assert_not_found(store.delete_user("ali\0ce").await, "user", "ali\0ce");
    assert_not_found(store.delete_bucket("da\0ta").await, "bucket", "da\0ta");
    assert_not_found(store.remove_grant("data", &to_group("g\0")).await, "grant", "group:g\0 on data");
    let nul_link = "SL0000000000\x00ABCDEFGHI";
    assert_eq!(store.get_share_link(nul_link).await.unwrap(), None);
    assert_not_found(store.revoke_share_link(nul_link, 5).await, "share link", nul_link);
    assert!(store.list_share_links(Some("ali\0ce"), None).await.unwrap().is_empty());
    assert!(store.list_share_links(None, Some("da\0ta")).await.unwrap().is_empty());
    assert!(store.list_share_links(Some("alice"), Some("da\0ta")).await.unwrap().is_empty());
    assert_eq!(store.get_quota(&on_bucket("da\0ta")).await.unwrap(), None);
    assert_eq!(store.get_quota(&on_user("ali\0ce")).await.unwrap(), None);
    assert_not_found(store.put_quota(&quota(on_bucket("da\0ta"), Some(1), None, 1)).await, "bucket", "da\0ta");
    assert_not_found(store.put_quota(&quota(on_user("ali\0ce"), Some(1), None, 1)).await, "user", "ali\0ce");
    assert_not_found(store.remove_quota(&on_bucket("da\0ta")).await, "quota", "bucket:da\0ta");
    assert_not_found(store.remove_quota(&on_user("ali\0ce")).await, "quota", "user:ali\0ce");
    assert_eq!(store.bucket_usage("da\0ta").await.unwrap(), None);
    assert_not_found(store.set_bucket_usage("da\0ta", usage(1, 1)).await, "bucket", "da\0ta");
    store.add_bucket_usage("da\0ta", 1, 1).await.unwrap();
    store.forget_bucket_usage("da\0ta").await.unwrap();
    assert_eq!(store.owner_usage("ali\0ce").await.unwrap(), (Usage::default(), 0));
    assert!(store.list_quotas().await.unwrap().is_empty());
    assert_eq!(store.revision().await.unwrap(), before, "nothing changed");
    assert_eq!(store.get_access_key("AKIAALICE").await.unwrap().map(|k| k.revoked_at), Some(None));
    assert_eq!(store.get_share_link(&sl(1)).await.unwrap().map(|l| l.revoked_at), Some(None));
}

async fn delete_user_refuses_owners_and_cascades(db: &TestDb) {
    let store = db.store().await;
    for u in ["alice", "bob"] {
        store.create_user(&user(u)).await.unwrap();
    }
    for (b, owner) in [("data", "alice"), ("abc", "alice"), ("logs", "bob")] {
        store.create_bucket(&bucket(b, owner)).await.unwrap();
    }
    store.put_grant(&grant("logs", to_user("alice"), Role::Write)).await.unwrap();
    store.put_grant(&grant("logs", to_group("alice"), Role::Read)).await.unwrap();
    store.put_grant(&grant("logs", to_user("carol"), Role::Read)).await.unwrap();
    store.create_access_key(&key("AKIAALICE", "alice", 1)).await.unwrap();
    store.create_access_key(&key("AKIABOB", "bob", 1)).await.unwrap();

    match store.delete_user("alice").await {
        Err(Error::InUse(msg)) => assert_eq!(msg, "user alice owns buckets: abc, data"),
        other => panic!("expected InUse, got {other:?}"),
    }
    // Refused means nothing changed.
    assert!(store.get_user("alice").await.unwrap().is_some());
    assert!(store.get_access_key("AKIAALICE").await.unwrap().is_some());
    assert_eq!(store.list_grants(Some("logs")).await.unwrap().len(), 3);

    store.delete_bucket("data").await.unwrap();
    store.delete_bucket("abc").await.unwrap();
    store.delete_user("alice").await.unwrap();

    assert_eq!(store.get_user("alice").await.unwrap(), None);
    assert_eq!(store.get_access_key("AKIAALICE").await.unwrap(), None);
    assert!(store.list_access_keys(Some("alice")).await.unwrap().is_empty());
    // The grant to the user went; the group of the same name and other users keep theirs.
    let left: Vec<Grantee> = store.list_grants(Some("logs")).await.unwrap().into_iter().map(|g| g.grantee).collect();
    assert_eq!(left, [to_group("alice"), to_user("carol")]);
    // Bob is untouched.
    assert!(store.get_user("bob").await.unwrap().is_some());
    assert!(store.get_access_key("AKIABOB").await.unwrap().is_some());
    assert_not_found(store.delete_user("alice").await, "user", "alice");
}

async fn revision_counts_mutations_only(db: &TestDb) {
    let store = db.store().await;
    let mut expected = store.revision().await.unwrap();
    assert_eq!(expected, 0, "a fresh database starts at revision 0");

    // Every successful mutation adds exactly one.
    macro_rules! bumps {
        ($call:expr) => {{
            $call.await.unwrap();
            expected += 1;
            assert_eq!(store.revision().await.unwrap(), expected, "after {}", stringify!($call));
        }};
    }
    // Reads and failed mutations add nothing.
    macro_rules! keeps {
        ($call:expr) => {{
            let _ = $call.await;
            assert_eq!(store.revision().await.unwrap(), expected, "after {}", stringify!($call));
        }};
    }

    bumps!(store.create_user(&user("alice")));
    bumps!(store.update_user(&User { is_admin: true, ..user("alice") }));
    bumps!(store.create_bucket(&bucket("data", "alice")));
    bumps!(store.put_grant(&grant("data", to_user("bob"), Role::Read)));
    bumps!(store.put_grant(&grant("data", to_user("bob"), Role::Write)));
    bumps!(store.remove_grant("data", &to_user("bob")));
    bumps!(store.create_access_key(&key("AKIAONE", "alice", 1)));
    bumps!(store.revoke_access_key("AKIAONE", 10));
    bumps!(store.create_share_link(&link(&sl(1), "alice", "data", ShareTarget::Prefix(String::new()), 1)));
    bumps!(store.revoke_share_link(&sl(1), 10));
    bumps!(store.put_quota(&quota(on_bucket("data"), Some(10), None, 1)));
    bumps!(store.put_quota(&quota(on_bucket("data"), None, Some(5), 2)));
    bumps!(store.put_quota(&quota(on_user("alice"), Some(10), Some(5), 1)));
    bumps!(store.put_quota(&quota(on_user("federated-nobody"), None, None, 1)));
    bumps!(store.remove_quota(&on_user("federated-nobody")));

    keeps!(store.ping());
    keeps!(store.get_user("alice"));
    keeps!(store.list_users());
    keeps!(store.get_bucket("data"));
    keeps!(store.list_buckets());
    keeps!(store.list_grants(None));
    keeps!(store.get_access_key("AKIAONE"));
    keeps!(store.list_access_keys(None));
    keeps!(store.get_share_link(&sl(1)));
    keeps!(store.list_share_links(Some("alice"), Some("data")));
    keeps!(store.create_user(&user("alice")));
    keeps!(store.update_user(&user("nobody")));
    keeps!(store.delete_user("alice"));
    keeps!(store.create_bucket(&bucket("data", "alice")));
    keeps!(store.put_grant(&grant("nope", to_user("bob"), Role::Read)));
    keeps!(store.remove_grant("data", &to_user("bob")));
    keeps!(store.create_access_key(&key("AKIATWO", "nobody", 1)));
    keeps!(store.revoke_access_key("AKIANONE", 1));
    keeps!(store.create_share_link(&link(&sl(1), "alice", "data", ShareTarget::Prefix(String::new()), 1)));
    keeps!(store.create_share_link(&link(&sl(2), "alice", "nope", ShareTarget::Prefix(String::new()), 1)));
    keeps!(store.revoke_share_link(&sl(2), 1));
    keeps!(store.delete_bucket("nope"));
    keeps!(store.get_quota(&on_bucket("data")));
    keeps!(store.list_quotas());
    keeps!(store.put_quota(&quota(on_bucket("nope"), Some(1), Some(1), 1)));
    keeps!(store.remove_quota(&on_bucket("nope")));
    keeps!(store.remove_quota(&on_user("federated-nobody")));
    // Usage is not about rights: none of its calls moves the revision, successful or not.
    keeps!(store.bucket_usage("data"));
    keeps!(store.set_bucket_usage("data", usage(100, 2)));
    keeps!(store.set_bucket_usage("data", usage(200, 3)));
    keeps!(store.set_bucket_usage("nope", usage(1, 1)));
    keeps!(store.add_bucket_usage("data", 10, 1));
    keeps!(store.add_bucket_usage("data", -1_000, -10));
    keeps!(store.add_bucket_usage("nope", 10, 1));
    keeps!(store.owner_usage("alice"));
    keeps!(store.forget_bucket_usage("data"));
    keeps!(store.forget_bucket_usage("data"));

    bumps!(store.delete_bucket("data"));
    bumps!(store.delete_user("alice"));
}

async fn migrate_twice_is_a_no_op(db: &TestDb) {
    let store = db.open().await;
    // Not migrated yet: the tables are missing.
    assert!(matches!(store.revision().await, Err(Error::Unavailable(_))));

    let applied = store.migrate().await.unwrap();
    assert_eq!(applied.len(), 4, "{applied:?}");
    assert!(applied[0].ends_with("_init"), "{applied:?}");
    assert!(applied[1].ends_with("_audit"), "{applied:?}");
    assert!(applied[2].ends_with("_share_links"), "{applied:?}");
    assert!(applied[3].ends_with("_quotas"), "{applied:?}");
    assert_eq!(store.migrate().await.unwrap(), Vec::<String>::new());
    assert_eq!(db.open().await.migrate().await.unwrap(), Vec::<String>::new());
    assert_eq!(store.revision().await.unwrap(), 0);
    store.ping().await.unwrap();
}

async fn second_store_sees_changes(db: &TestDb) {
    let first = db.store().await;
    let second = db.store().await;
    let before = first.revision().await.unwrap();

    second.create_user(&user("alice")).await.unwrap();
    second.create_bucket(&bucket("data", "alice")).await.unwrap();
    let after = first.revision().await.unwrap();
    assert!(after > before, "revision {before} -> {after}");
    assert_eq!(first.get_user("alice").await.unwrap(), Some(user("alice")));
    assert_eq!(first.list_buckets().await.unwrap(), [bucket("data", "alice")]);

    first.delete_bucket("data").await.unwrap();
    assert!(second.revision().await.unwrap() > after);
    assert_eq!(second.get_bucket("data").await.unwrap(), None);
}

async fn concurrent_mutations(db: &TestDb) {
    let stores = [Arc::new(db.store().await), Arc::new(db.store().await)];
    stores[0].create_bucket(&bucket("data", "alice")).await.unwrap();
    let start = stores[0].revision().await.unwrap();

    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = Arc::clone(&stores[i % 2]);
        tasks.push(tokio::spawn(async move {
            let name = format!("user{i:02}");
            store.create_user(&user(&name)).await.unwrap();
            // Several writers upserting the same grant.
            let role = if i % 3 == 0 { Role::Read } else { Role::Write };
            store.put_grant(&grant("data", to_group("everyone"), role)).await.unwrap();
            store.put_grant(&grant("data", to_user(&name), Role::Read)).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }

    assert_eq!(stores[1].revision().await.unwrap(), start + 24 * 3);
    assert_eq!(stores[1].list_users().await.unwrap().len(), 24);
    assert_eq!(stores[0].list_grants(Some("data")).await.unwrap().len(), 25);
}

async fn corrupt_rows_are_reported(db: &TestDb) {
    let store = db.store().await;
    store.create_user(&user("alice")).await.unwrap();
    store.create_bucket(&bucket("data", "alice")).await.unwrap();
    store.put_grant(&grant("data", to_user("bob"), Role::Read)).await.unwrap();
    store.create_access_key(&key("AKIAONE", "alice", 1)).await.unwrap();

    db.exec("UPDATE grants SET role = 'owner'");
    assert!(matches!(store.list_grants(None).await, Err(Error::Corrupt(_))));
    db.exec("UPDATE grants SET role = 'read', grantee_kind = 'robot'");
    assert!(matches!(store.list_grants(Some("data")).await, Err(Error::Corrupt(_))));

    db.exec("UPDATE users SET groups = 'not json'");
    assert!(matches!(store.get_user("alice").await, Err(Error::Corrupt(_))));
    db.exec("UPDATE users SET groups = '[]', clearance = '[\"Top Secret\"]'");
    assert!(matches!(store.list_users().await, Err(Error::Corrupt(_))));

    db.exec("UPDATE buckets SET classification = 'Top Secret'");
    assert!(matches!(store.get_bucket("data").await, Err(Error::Corrupt(_))));

    db.exec("UPDATE access_keys SET buckets = '[\"Not_A_Bucket\"]'");
    assert!(matches!(store.get_access_key("AKIAONE").await, Err(Error::Corrupt(_))));

    store.create_share_link(&link(&sl(1), "alice", "data", ShareTarget::Object("k".to_owned()), 1)).await.unwrap();
    db.exec("UPDATE share_links SET principal = 'not json'");
    assert!(matches!(store.get_share_link(&sl(1)).await, Err(Error::Corrupt(_))));
    db.exec(&format!(
        "UPDATE share_links SET principal = '{}', target_kind = 'folder'",
        serde_json::to_string(&principal("alice")).unwrap()
    ));
    assert!(matches!(store.list_share_links(None, None).await, Err(Error::Corrupt(_))));
    db.exec("UPDATE share_links SET target_kind = 'object', creator = 'bob'");
    assert!(matches!(store.get_share_link(&sl(1)).await, Err(Error::Corrupt(_))));
    db.exec("UPDATE share_links SET creator = 'alice'");
    assert!(store.get_share_link(&sl(1)).await.unwrap().is_some());

    store.put_quota(&quota(on_bucket("data"), Some(10), None, 1)).await.unwrap();
    store.put_quota(&quota(on_user("alice"), None, Some(10), 1)).await.unwrap();
    db.exec("UPDATE bucket_quotas SET max_bytes = -1");
    assert!(matches!(store.get_quota(&on_bucket("data")).await, Err(Error::Corrupt(_))));
    assert!(matches!(store.list_quotas().await, Err(Error::Corrupt(_))));
    db.exec("UPDATE bucket_quotas SET max_bytes = NULL; UPDATE user_quotas SET max_objects = -5");
    assert!(store.get_quota(&on_bucket("data")).await.unwrap().is_some());
    assert!(matches!(store.get_quota(&on_user("alice")).await, Err(Error::Corrupt(_))));
    assert!(matches!(store.list_quotas().await, Err(Error::Corrupt(_))));

    store.set_bucket_usage("data", usage(10, 1)).await.unwrap();
    db.exec("UPDATE bucket_usage SET objects = -1");
    assert!(matches!(store.bucket_usage("data").await, Err(Error::Corrupt(_))));
    assert!(matches!(store.owner_usage("alice").await, Err(Error::Corrupt(_))));
    db.exec("UPDATE bucket_usage SET objects = 1, bytes = -10");
    assert!(matches!(store.bucket_usage("data").await, Err(Error::Corrupt(_))));
    // Adding repairs a negative count: the result is floored at zero.
    store.add_bucket_usage("data", 5, 0).await.unwrap();
    assert_eq!(store.bucket_usage("data").await.unwrap(), Some(usage(0, 1)));
}

// ---- URLs and connections, independent of a test database ----

#[tokio::test(flavor = "multi_thread")]
async fn unsupported_urls_are_refused() {
    for url in ["mysql://root@localhost/coffer", "sqlite:", "sqlite://", "coffer.db", ""] {
        assert!(matches!(DieselStore::connect(url).await, Err(Error::UnsupportedUrl(_))), "{url:?}");
        assert!(matches!(coffer_metadata::open(url).await, Err(Error::UnsupportedUrl(_))), "{url:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_postgres_is_unavailable_without_the_password() {
    // Port 1 on the loopback: refused at once.
    let err = DieselStore::connect("postgres://coffer:hunter2@127.0.0.1:1/coffer").await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
    assert!(msg.contains("127.0.0.1"), "{msg}");
    assert!(!msg.contains("hunter2"), "{msg}");
    assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
}

/// Audit events a store cannot take come back with the error, every one and in order (the
/// audit writer then logs them): here a database without the audit table.
#[tokio::test(flavor = "multi_thread")]
async fn audit_events_that_cannot_be_stored_are_handed_back() {
    let store = coffer_metadata::open("sqlite::memory:").await.unwrap();
    let events: Vec<_> = (0..40).map(|i| event(i, "alice", "data", i % 2 == 0)).collect();
    let back = store.append_audit(events.clone()).await.unwrap_err();
    assert!(matches!(back.error, Error::Unavailable(_) | Error::Corrupt(_)), "{:?}", back.error);
    // The one change on the way: a NUL byte, which no store keeps, is replaced.
    let expected: Vec<_> =
        events.into_iter().map(|e| coffer_core::AuditEvent { key: "k\u{FFFD}ey".into(), ..e }).collect();
    assert_eq!(back.events, expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_memory_is_one_database() {
    let store = coffer_metadata::open("sqlite::memory:").await.unwrap();
    assert_eq!(store.migrate().await.unwrap().len(), 4, "every embedded migration applies");
    store.create_user(&user("alice")).await.unwrap();
    for _ in 0..10 {
        assert!(store.get_user("alice").await.unwrap().is_some());
    }
    assert_eq!(store.revision().await.unwrap(), 1);
    // Another memory store is another database.
    let other = coffer_metadata::open("sqlite::memory:").await.unwrap();
    other.migrate().await.unwrap();
    assert!(other.list_users().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_paths_get_their_directories() {
    let dir = tempfile::tempdir().unwrap();

    let absolute = dir.path().join("a/b/meta.db");
    let store = DieselStore::connect(&format!("sqlite://{}", absolute.display())).await.unwrap();
    store.migrate().await.unwrap();
    assert!(absolute.is_file());

    // The same kind of location, written relative to the working directory.
    let cwd = std::env::current_dir().unwrap();
    let up = "../".repeat(cwd.components().count() - 1);
    let target = dir.path().join("c/d/meta.db");
    let relative = format!("{up}{}", target.strip_prefix("/").unwrap().display());
    let store = DieselStore::connect(&format!("sqlite://{relative}")).await.unwrap();
    store.migrate().await.unwrap();
    store.create_user(&user("alice")).await.unwrap();
    assert!(target.is_file());
}

fn event(at: i64, principal: &str, bucket: &str, allowed: bool) -> coffer_core::AuditEvent {
    coffer_core::AuditEvent {
        at,
        principal: principal.into(),
        access_key_id: "CKTEST".into(),
        action: "read".into(),
        bucket: bucket.into(),
        key: "k\0ey".into(),
        allowed,
        rule: "no ownership and no grant (deny by default)".into(),
        request_id: format!("R{at}"),
        source: "127.0.0.1:5000".into(),
    }
}

async fn audit_trail(db: &TestDb) {
    let store = db.store().await;
    let before = store.revision().await.unwrap();
    let events: Vec<_> =
        (0..10).map(|i| event(1000 + i, if i % 2 == 0 { "alice" } else { "bob" }, "b1", i % 3 != 0)).collect();
    store.append_audit(events).await.unwrap();
    store.append_audit(Vec::new()).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), before, "the audit trail is not a metadata change");

    let all = store.list_audit(&coffer_core::AuditFilter { limit: 100, ..Default::default() }).await.unwrap();
    assert_eq!(all.len(), 10);
    assert_eq!(all[0].at, 1009, "newest first");
    assert_eq!(all[9].key, "k\u{FFFD}ey", "a NUL is stored as U+FFFD on every database");
    let f =
        |principal: Option<&str>, allowed: Option<bool>, since: Option<i64>, limit: usize| coffer_core::AuditFilter {
            principal: principal.map(str::to_owned),
            bucket: None,
            allowed,
            since,
            until: None,
            limit,
        };
    let alice = store.list_audit(&f(Some("alice"), None, None, 100)).await.unwrap();
    assert_eq!(alice.iter().map(|e| e.at).collect::<Vec<_>>(), [1008, 1006, 1004, 1002, 1000]);
    let denied = store.list_audit(&f(None, Some(false), None, 100)).await.unwrap();
    assert_eq!(denied.iter().map(|e| e.at).collect::<Vec<_>>(), [1009, 1006, 1003, 1000]);
    let recent = store.list_audit(&f(None, None, Some(1007), 2)).await.unwrap();
    assert_eq!(recent.iter().map(|e| e.at).collect::<Vec<_>>(), [1009, 1008]);
    assert!(
        store
            .list_audit(&coffer_core::AuditFilter { bucket: Some("b2".into()), limit: 10, ..Default::default() })
            .await
            .unwrap()
            .is_empty()
    );

    assert_eq!(store.purge_audit(1005).await.unwrap(), 5);
    let left = store.list_audit(&f(None, None, None, 100)).await.unwrap();
    assert_eq!(left.len(), 5);
    assert!(left.iter().all(|e| e.at >= 1005));

    // A full batch of the writer (500), more than one INSERT holds on PostgreSQL: every
    // event stored once, each with its own fields.
    let batch: Vec<_> = (0..500).map(|i| event(5000 + i, &format!("user{i}"), "b3", i % 2 == 0)).collect();
    store.append_audit(batch).await.unwrap();
    let stored = store
        .list_audit(&coffer_core::AuditFilter { bucket: Some("b3".into()), limit: 1000, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(stored.len(), 500);
    for (e, i) in stored.iter().zip((0..500).rev()) {
        assert_eq!((e.at, e.principal.as_str(), e.allowed), (5000 + i, format!("user{i}").as_str(), i % 2 == 0));
        assert_eq!(e.request_id, format!("R{}", 5000 + i));
    }
}

async fn quotas_crud(db: &TestDb) {
    let store = db.store().await;
    for (b, owner) in [("data", "alice"), ("abc", "alice"), ("logs", "bob")] {
        store.create_bucket(&bucket(b, owner)).await.unwrap();
    }
    assert!(store.list_quotas().await.unwrap().is_empty());
    assert_eq!(store.get_quota(&on_bucket("data")).await.unwrap(), None);
    assert_eq!(store.get_quota(&on_user("alice")).await.unwrap(), None);

    let data = quota(on_bucket("data"), Some(1 << 40), Some(1_000), 100);
    let abc = quota(on_bucket("abc"), None, Some(5), 101);
    let logs = quota(on_bucket("logs"), Some(0), None, 102);
    let unlimited = quota(on_bucket("logs"), None, None, 103);
    let bob = quota(on_user("bob"), Some(10), Some(20), 104);
    // A user quota needs no user record (federated users have none).
    let fed = quota(on_user("a-fed"), Some(i64::MAX as u64), None, 105);
    for q in [&data, &bob, &abc, &logs, &fed] {
        store.put_quota(q).await.unwrap();
    }
    assert_eq!(store.get_quota(&on_bucket("data")).await.unwrap(), Some(data.clone()));
    assert_eq!(store.get_quota(&on_bucket("abc")).await.unwrap(), Some(abc.clone()));
    assert_eq!(store.get_quota(&on_user("bob")).await.unwrap(), Some(bob.clone()));
    assert_eq!(store.get_quota(&on_user("a-fed")).await.unwrap(), Some(fed.clone()));
    // Scopes are apart: a bucket and a user of the same name.
    assert_eq!(store.get_quota(&on_user("data")).await.unwrap(), None);
    assert_eq!(store.get_quota(&on_bucket("bob")).await.unwrap(), None);

    // Bucket quotas by bucket (byte order), then user quotas by user.
    assert_eq!(store.list_quotas().await.unwrap(), [abc.clone(), data.clone(), logs.clone(), fed.clone(), bob.clone()]);

    // Replace: limits and time, including a limit lifted to unlimited.
    store.put_quota(&unlimited).await.unwrap();
    assert_eq!(store.get_quota(&on_bucket("logs")).await.unwrap(), Some(unlimited.clone()));
    let bob2 = quota(on_user("bob"), None, Some(7), 200);
    store.put_quota(&bob2).await.unwrap();
    assert_eq!(store.get_quota(&on_user("bob")).await.unwrap(), Some(bob2.clone()));

    // A bucket quota needs the bucket.
    let rev = store.revision().await.unwrap();
    assert_not_found(store.put_quota(&quota(on_bucket("nope"), Some(1), None, 1)).await, "bucket", "nope");
    assert_eq!(store.get_quota(&on_bucket("nope")).await.unwrap(), None);
    assert_eq!(store.revision().await.unwrap(), rev, "a failed put keeps the revision");

    store.remove_quota(&on_bucket("data")).await.unwrap();
    assert_eq!(store.revision().await.unwrap(), rev + 1, "removing moves the revision");
    assert_eq!(store.get_quota(&on_bucket("data")).await.unwrap(), None);
    assert_not_found(store.remove_quota(&on_bucket("data")).await, "quota", "bucket:data");
    assert_not_found(store.remove_quota(&on_bucket("nope")).await, "quota", "bucket:nope");
    store.remove_quota(&on_user("a-fed")).await.unwrap();
    assert_not_found(store.remove_quota(&on_user("a-fed")).await, "quota", "user:a-fed");
    // Removing a user's quota leaves a bucket of that name alone, and the other way round.
    assert_not_found(store.remove_quota(&on_user("logs")).await, "quota", "user:logs");
    assert_eq!(store.revision().await.unwrap(), rev + 2, "failed removals keep the revision");
    assert_eq!(store.list_quotas().await.unwrap(), [abc, unlimited, bob2]);

    // Removing the quota does not touch the bucket.
    assert!(store.get_bucket("data").await.unwrap().is_some());
}

async fn bucket_usage_tracking(db: &TestDb) {
    let store = db.store().await;
    store.create_bucket(&bucket("data", "alice")).await.unwrap();
    store.create_bucket(&bucket("logs", "alice")).await.unwrap();
    let rev = store.revision().await.unwrap();

    // Untracked: no usage, and adding to it does nothing (not even start tracking).
    assert_eq!(store.bucket_usage("data").await.unwrap(), None);
    store.add_bucket_usage("data", 100, 1).await.unwrap();
    assert_eq!(store.bucket_usage("data").await.unwrap(), None);
    assert_eq!(store.bucket_usage("nope").await.unwrap(), None);
    store.add_bucket_usage("nope", 100, 1).await.unwrap();

    // Tracking needs the bucket.
    assert_not_found(store.set_bucket_usage("nope", usage(1, 1)).await, "bucket", "nope");
    assert_eq!(store.bucket_usage("nope").await.unwrap(), None);

    store.set_bucket_usage("data", usage(1_000, 10)).await.unwrap();
    assert_eq!(store.bucket_usage("data").await.unwrap(), Some(usage(1_000, 10)));
    assert_eq!(store.bucket_usage("logs").await.unwrap(), None, "only the bucket set is tracked");

    store.add_bucket_usage("data", 500, 2).await.unwrap();
    assert_eq!(store.bucket_usage("data").await.unwrap(), Some(usage(1_500, 12)));
    store.add_bucket_usage("data", -200, -1).await.unwrap();
    assert_eq!(store.bucket_usage("data").await.unwrap(), Some(usage(1_300, 11)));
    store.add_bucket_usage("data", 0, 0).await.unwrap();
    assert_eq!(store.bucket_usage("data").await.unwrap(), Some(usage(1_300, 11)));
    // Mixed signs, each dimension on its own.
    store.add_bucket_usage("data", -300, 4).await.unwrap();
    assert_eq!(store.bucket_usage("data").await.unwrap(), Some(usage(1_000, 15)));

    // Below zero is stored as zero, each dimension on its own.
    store.add_bucket_usage("data", -5_000, -3).await.unwrap();
    assert_eq!(store.bucket_usage("data").await.unwrap(), Some(usage(0, 12)));
    store.add_bucket_usage("data", 10, -100).await.unwrap();
    assert_eq!(store.bucket_usage("data").await.unwrap(), Some(usage(10, 0)));
    store.add_bucket_usage("data", i64::MIN, i64::MIN).await.unwrap();
    assert_eq!(store.bucket_usage("data").await.unwrap(), Some(usage(0, 0)));
    store.add_bucket_usage("data", 7, 1).await.unwrap();
    assert_eq!(store.bucket_usage("data").await.unwrap(), Some(usage(7, 1)));

    // At the top, the sum is capped rather than overflowing.
    store.set_bucket_usage("logs", usage(i64::MAX as u64 - 1, 5)).await.unwrap();
    store.add_bucket_usage("logs", i64::MAX, 1).await.unwrap();
    assert_eq!(store.bucket_usage("logs").await.unwrap(), Some(usage(i64::MAX as u64, 6)));
    store.add_bucket_usage("logs", -(i64::MAX), i64::MAX).await.unwrap();
    assert_eq!(store.bucket_usage("logs").await.unwrap(), Some(usage(0, i64::MAX as u64)));

    // Setting again restarts from the measured value.
    store.set_bucket_usage("data", usage(42, 3)).await.unwrap();
    assert_eq!(store.bucket_usage("data").await.unwrap(), Some(usage(42, 3)));
    store.set_bucket_usage("data", usage(0, 0)).await.unwrap();
    assert_eq!(store.bucket_usage("data").await.unwrap(), Some(usage(0, 0)), "zero is tracked, not untracked");

    // Forgetting stops tracking; twice is fine, as is an untracked or missing bucket.
    store.forget_bucket_usage("data").await.unwrap();
    assert_eq!(store.bucket_usage("data").await.unwrap(), None);
    store.forget_bucket_usage("data").await.unwrap();
    store.forget_bucket_usage("nope").await.unwrap();
    store.add_bucket_usage("data", 100, 1).await.unwrap();
    assert_eq!(store.bucket_usage("data").await.unwrap(), None, "a forgotten bucket stays untracked");
    assert!(store.get_bucket("data").await.unwrap().is_some(), "forgetting usage leaves the bucket");
    assert!(store.bucket_usage("logs").await.unwrap().is_some(), "forgetting one bucket leaves the others");

    assert_eq!(store.revision().await.unwrap(), rev, "usage does not move the revision");
}

async fn owner_usage_sums_tracked_and_counts_untracked(db: &TestDb) {
    let store = db.store().await;
    // Owners need not be users; an owner with no buckets has nothing.
    assert_eq!(store.owner_usage("alice").await.unwrap(), (Usage::default(), 0));
    for (b, owner) in
        [("alice-1", "alice"), ("alice-2", "alice"), ("alice-3", "alice"), ("bob-1", "bob"), ("proj-1", "project:x")]
    {
        store.create_bucket(&bucket(b, owner)).await.unwrap();
    }
    let rev = store.revision().await.unwrap();
    assert_eq!(store.owner_usage("alice").await.unwrap(), (Usage::default(), 3));

    store.set_bucket_usage("alice-1", usage(100, 1)).await.unwrap();
    store.set_bucket_usage("alice-3", usage(20, 4)).await.unwrap();
    store.set_bucket_usage("bob-1", usage(5_000, 50)).await.unwrap();
    store.set_bucket_usage("proj-1", usage(7, 7)).await.unwrap();
    assert_eq!(store.owner_usage("alice").await.unwrap(), (usage(120, 5), 1));
    assert_eq!(store.owner_usage("bob").await.unwrap(), (usage(5_000, 50), 0));
    assert_eq!(store.owner_usage("project:x").await.unwrap(), (usage(7, 7), 0));
    assert_eq!(store.owner_usage("carol").await.unwrap(), (Usage::default(), 0));

    store.set_bucket_usage("alice-2", usage(0, 0)).await.unwrap();
    store.add_bucket_usage("alice-3", 30, -1).await.unwrap();
    assert_eq!(store.owner_usage("alice").await.unwrap(), (usage(150, 4), 0));

    store.forget_bucket_usage("alice-1").await.unwrap();
    assert_eq!(store.owner_usage("alice").await.unwrap(), (usage(50, 3), 1));
    store.delete_bucket("alice-3").await.unwrap();
    assert_eq!(store.owner_usage("alice").await.unwrap(), (usage(0, 0), 1));
    assert_eq!(store.revision().await.unwrap(), rev + 1, "only the bucket deletion moved the revision");
}

async fn deleting_a_bucket_deletes_its_quota_and_usage(db: &TestDb) {
    let store = db.store().await;
    store.create_bucket(&bucket("data", "alice")).await.unwrap();
    store.create_bucket(&bucket("logs", "alice")).await.unwrap();
    for b in ["data", "logs"] {
        store.put_quota(&quota(on_bucket(b), Some(100), Some(10), 1)).await.unwrap();
        store.set_bucket_usage(b, usage(50, 5)).await.unwrap();
    }
    store.put_quota(&quota(on_user("alice"), Some(1_000), None, 1)).await.unwrap();

    store.delete_bucket("data").await.unwrap();
    assert_eq!(store.get_quota(&on_bucket("data")).await.unwrap(), None);
    assert_eq!(store.bucket_usage("data").await.unwrap(), None);
    let scopes: Vec<QuotaScope> = store.list_quotas().await.unwrap().into_iter().map(|q| q.scope).collect();
    assert_eq!(scopes, [on_bucket("logs"), on_user("alice")], "other quotas stay");
    assert_eq!(store.bucket_usage("logs").await.unwrap(), Some(usage(50, 5)));
    assert_eq!(store.owner_usage("alice").await.unwrap(), (usage(50, 5), 0));

    // A new bucket of that name starts with neither.
    store.create_bucket(&bucket("data", "alice")).await.unwrap();
    assert_eq!(store.get_quota(&on_bucket("data")).await.unwrap(), None);
    assert_eq!(store.bucket_usage("data").await.unwrap(), None);
    assert_eq!(store.owner_usage("alice").await.unwrap(), (usage(50, 5), 1));
}

/// Two store handles stand for two processes; many tasks add to one bucket's usage at once.
/// Not one addition may be lost.
async fn concurrent_usage_additions(db: &TestDb) {
    const TASKS_PER_STORE: i64 = 8;
    const ADDS_PER_TASK: i64 = 50;
    let stores = [Arc::new(db.store().await), Arc::new(db.store().await)];
    stores[0].create_bucket(&bucket("data", "alice")).await.unwrap();
    stores[0].create_bucket(&bucket("fresh", "alice")).await.unwrap();
    stores[0].set_bucket_usage("data", usage(1_000, 0)).await.unwrap();
    let rev = stores[0].revision().await.unwrap();

    let mut tasks = Vec::new();
    for (s, store) in stores.iter().enumerate() {
        for t in 0..TASKS_PER_STORE {
            let store = Arc::clone(store);
            tasks.push(tokio::spawn(async move {
                // Concurrent first-time tracking of one bucket: every call succeeds.
                let n = u64::try_from(s as i64 * TASKS_PER_STORE + t).unwrap();
                store.set_bucket_usage("fresh", usage(n, n)).await.unwrap();
                for i in 0..ADDS_PER_TASK {
                    // Net +3 bytes and +1 object per pair of calls, with removals in between.
                    if i % 2 == 0 {
                        store.add_bucket_usage("data", 5, 1).await.unwrap();
                    } else {
                        store.add_bucket_usage("data", -2, 0).await.unwrap();
                    }
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }

    let tasks = 2 * TASKS_PER_STORE;
    let pairs = tasks * ADDS_PER_TASK / 2;
    let expected = usage(1_000 + 3 * pairs as u64, pairs as u64);
    assert_eq!(stores[0].bucket_usage("data").await.unwrap(), Some(expected));
    assert_eq!(stores[1].bucket_usage("data").await.unwrap(), Some(expected));
    let fresh = stores[1].bucket_usage("fresh").await.unwrap().expect("tracked");
    assert!(fresh.bytes == fresh.objects && fresh.bytes < tasks as u64, "one of the values set: {fresh:?}");
    assert_eq!(stores[1].revision().await.unwrap(), rev, "usage does not move the revision");
}

// ---- change notifications ----

/// How long a notification may take to arrive in these tests (it takes milliseconds).
const EVENT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

async fn next_event(stream: &mut ChangeStream) -> ChangeEvent {
    tokio::time::timeout(EVENT_WAIT, stream.next())
        .await
        .expect("no change event within the time limit")
        .expect("the change stream ended")
}

async fn subscribe(store: &DieselStore) -> ChangeStream {
    store.subscribe_changes().await.expect("subscribe").expect("PostgreSQL streams changes")
}

/// The listening backends of this test's database.
const LISTENERS: &str = "SELECT count(*) FROM pg_stat_activity \
    WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()";

async fn change_notifications(db: &TestDb) {
    let store = db.store().await;
    if !db.is_postgres() {
        assert!(store.subscribe_changes().await.unwrap().is_none(), "SQLite has no notifications: poll");
        return;
    }
    let other = db.store().await;
    let mut first = subscribe(&store).await;
    let mut second = subscribe(&store).await;

    // A mutation through another handle reaches every listener, with the new revision.
    other.create_user(&user("alice")).await.unwrap();
    let rev = other.revision().await.unwrap();
    assert_eq!(next_event(&mut first).await, ChangeEvent::Changed(rev));
    assert_eq!(next_event(&mut second).await, ChangeEvent::Changed(rev));

    // Concurrent writers: one notification each, in revision order.
    let handles = [Arc::new(db.store().await), Arc::new(db.store().await)];
    let writers: Vec<_> = (0..12)
        .map(|i| {
            let s = Arc::clone(&handles[i % 2]);
            tokio::spawn(async move {
                s.create_user(&user(&format!("user{i:02}"))).await.unwrap();
                // No such bucket: fails, and moves nothing.
                s.put_grant(&grant("nope", to_user("x"), Role::Read)).await.unwrap_err();
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let last = other.revision().await.unwrap();
    assert_eq!(last, rev + 12, "failed mutations do not move the revision");
    for expected in rev + 1..=last {
        assert_eq!(next_event(&mut first).await, ChangeEvent::Changed(expected));
    }

    // Reads, failed mutations, usage and the audit trail notify nobody: the next event is
    // the next mutation's.
    other.create_bucket(&bucket("data", "alice")).await.unwrap();
    assert_eq!(next_event(&mut first).await, ChangeEvent::Changed(last + 1));
    other.list_users().await.unwrap();
    assert_conflict(other.create_user(&user("alice")).await, "user", "alice");
    other.set_bucket_usage("data", usage(1, 1)).await.unwrap();
    other.add_bucket_usage("data", 5, 1).await.unwrap();
    other.append_audit(vec![event(1, "alice", "data", true)]).await.unwrap();
    other.remove_grant("data", &to_user("nobody")).await.unwrap_err();
    store.put_grant(&grant("data", to_user("bob"), Role::Read)).await.unwrap();
    assert_eq!(next_event(&mut first).await, ChangeEvent::Changed(last + 2));

    // The listener that is not read from has them all too, in order.
    let mut seen = Vec::new();
    while seen.last() != Some(&ChangeEvent::Changed(last + 2)) {
        seen.push(next_event(&mut second).await);
    }
    let expected: Vec<_> = (rev + 1..=last + 2).map(ChangeEvent::Changed).collect();
    assert_eq!(seen, expected);

    // Closing a stream closes its connection.
    assert_eq!(db.pg_count(LISTENERS), 2);
    first.close().await;
    drop(second);
    let start = std::time::Instant::now();
    while db.pg_count(LISTENERS) != 0 {
        assert!(start.elapsed() < EVENT_WAIT, "the listening connections were not closed");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn change_stream_reconnects(db: &TestDb) {
    let store = db.store().await;
    if !db.is_postgres() {
        return; // nothing to reconnect: see `change_notifications`
    }
    let mut stream = subscribe(&store).await;
    assert_eq!(db.pg_count(LISTENERS), 1);

    // Its listening backend is terminated: the stream says so, then listens again.
    db.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    );
    assert_eq!(next_event(&mut stream).await, ChangeEvent::Lost);
    assert_eq!(next_event(&mut stream).await, ChangeEvent::Reconnected);
    assert_eq!(db.pg_count(LISTENERS), 1);

    // ... and reports changes again.
    store.create_user(&user("alice")).await.unwrap();
    let rev = store.revision().await.unwrap();
    assert_eq!(next_event(&mut stream).await, ChangeEvent::Changed(rev));

    // Twice.
    db.exec(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
    );
    assert_eq!(next_event(&mut stream).await, ChangeEvent::Lost);
    assert_eq!(next_event(&mut stream).await, ChangeEvent::Reconnected);
    store.delete_user("alice").await.unwrap();
    assert_eq!(next_event(&mut stream).await, ChangeEvent::Changed(rev + 1));
    stream.close().await;
}
