//! The authorization cache against a store that counts its calls: a decision on a warm cache
//! does no store I/O at all, and `watch_changes` drops the cache on change notifications —
//! at once, for newer revisions only, and on any doubt (a lost, re-established or ended
//! stream) — polling slowly while they arrive and fast without them.
//!
//! The store underneath is SQLite (which sends no notifications); the notifications are
//! injected through [`ChangeStream::channel`], and the wrapper can freeze the revision the
//! poll reads, so that only a notification can tell the gateway of a change.
//!
//! The same wrapper can fail the audit writer's writes: the last tests show which decisions
//! reach the log stream, and that one the store could not take is never lost from both.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer_backend::{Backend, FsBackend};
use coffer_core::{
    AccessKey, Action, AuditEvent, AuditFilter, Bucket, Grant, Grantee, Narrowing, Quota, QuotaScope, Role, ShareLink,
    Usage, User,
};
use coffer_gateway::{Caller, Error, Gateway};
use coffer_identity::ServerKey;
use coffer_metadata::{AuditNotStored, ChangeEvent, ChangeStream, MetadataStore, Result};
use tokio::sync::mpsc;

/// A store that counts every call by name, hands out the change streams it is given, and can
/// answer `revision` with a frozen value (without asking the store) or not at all.
struct Counting {
    inner: Arc<dyn MetadataStore>,
    calls: Mutex<BTreeMap<&'static str, u64>>,
    frozen_revision: Mutex<Option<i64>>,
    hang_revision: AtomicBool,
    fail_audit: AtomicBool,
    streams: Mutex<VecDeque<ChangeStream>>,
}

impl Counting {
    fn new(inner: Arc<dyn MetadataStore>) -> Self {
        Self {
            inner,
            calls: Mutex::default(),
            frozen_revision: Mutex::default(),
            hang_revision: AtomicBool::new(false),
            fail_audit: AtomicBool::new(false),
            streams: Mutex::default(),
        }
    }

    fn count(&self, name: &'static str) {
        *self.calls.lock().unwrap().entry(name).or_default() += 1;
    }

    fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.calls.lock().unwrap().clone()
    }

    fn calls_of(&self, name: &str) -> u64 {
        self.calls.lock().unwrap().get(name).copied().unwrap_or(0)
    }

    /// The calls made since `before`, by name.
    fn since(&self, before: &BTreeMap<&'static str, u64>) -> BTreeMap<&'static str, u64> {
        self.calls()
            .into_iter()
            .map(|(k, v)| (k, v - before.get(k).copied().unwrap_or(0)))
            .filter(|(_, v)| *v > 0)
            .collect()
    }

    fn freeze_revision(&self, at: Option<i64>) {
        *self.frozen_revision.lock().unwrap() = at;
    }

    /// A stream for the next `subscribe_changes`, and its sender.
    fn offer_stream(&self) -> mpsc::Sender<ChangeEvent> {
        let (tx, stream) = ChangeStream::channel(16);
        self.streams.lock().unwrap().push_back(stream);
        tx
    }
}

/// Count, then delegate.
macro_rules! delegate {
    ($self:ident . $method:ident ( $($arg:expr),* )) => {{
        $self.count(stringify!($method));
        $self.inner.$method($($arg),*).await
    }};
}

#[coffer_metadata::async_trait]
impl MetadataStore for Counting {
    async fn migrate(&self) -> Result<Vec<String>> {
        delegate!(self.migrate())
    }
    async fn ping(&self) -> Result<()> {
        delegate!(self.ping())
    }
    async fn revision(&self) -> Result<i64> {
        if self.hang_revision.load(Ordering::SeqCst) {
            self.count("revision");
            return std::future::pending().await;
        }
        let frozen = *self.frozen_revision.lock().unwrap();
        match frozen {
            Some(r) => {
                self.count("revision");
                Ok(r)
            }
            None => delegate!(self.revision()),
        }
    }
    async fn subscribe_changes(&self) -> Result<Option<ChangeStream>> {
        self.count("subscribe_changes");
        match self.streams.lock().unwrap().pop_front() {
            Some(s) => Ok(Some(s)),
            None => Err(coffer_metadata::Error::Unavailable("no stream offered".into())),
        }
    }
    async fn create_user(&self, user: &User) -> Result<()> {
        delegate!(self.create_user(user))
    }
    async fn get_user(&self, name: &str) -> Result<Option<User>> {
        delegate!(self.get_user(name))
    }
    async fn list_users(&self) -> Result<Vec<User>> {
        delegate!(self.list_users())
    }
    async fn update_user(&self, user: &User) -> Result<()> {
        delegate!(self.update_user(user))
    }
    async fn delete_user(&self, name: &str) -> Result<()> {
        delegate!(self.delete_user(name))
    }
    async fn create_bucket(&self, bucket: &Bucket) -> Result<()> {
        delegate!(self.create_bucket(bucket))
    }
    async fn get_bucket(&self, name: &str) -> Result<Option<Bucket>> {
        delegate!(self.get_bucket(name))
    }
    async fn list_buckets(&self) -> Result<Vec<Bucket>> {
        delegate!(self.list_buckets())
    }
    async fn delete_bucket(&self, name: &str) -> Result<()> {
        delegate!(self.delete_bucket(name))
    }
    async fn put_grant(&self, grant: &Grant) -> Result<()> {
        delegate!(self.put_grant(grant))
    }
    async fn remove_grant(&self, bucket: &str, grantee: &Grantee) -> Result<()> {
        delegate!(self.remove_grant(bucket, grantee))
    }
    async fn list_grants(&self, bucket: Option<&str>) -> Result<Vec<Grant>> {
        delegate!(self.list_grants(bucket))
    }
    async fn create_access_key(&self, key: &AccessKey) -> Result<()> {
        delegate!(self.create_access_key(key))
    }
    async fn get_access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>> {
        delegate!(self.get_access_key(access_key_id))
    }
    async fn list_access_keys(&self, user: Option<&str>) -> Result<Vec<AccessKey>> {
        delegate!(self.list_access_keys(user))
    }
    async fn revoke_access_key(&self, access_key_id: &str, at: i64) -> Result<()> {
        delegate!(self.revoke_access_key(access_key_id, at))
    }
    async fn create_share_link(&self, link: &ShareLink) -> Result<()> {
        delegate!(self.create_share_link(link))
    }
    async fn get_share_link(&self, id: &str) -> Result<Option<ShareLink>> {
        delegate!(self.get_share_link(id))
    }
    async fn list_share_links(&self, creator: Option<&str>, bucket: Option<&str>) -> Result<Vec<ShareLink>> {
        delegate!(self.list_share_links(creator, bucket))
    }
    async fn revoke_share_link(&self, id: &str, at: i64) -> Result<()> {
        delegate!(self.revoke_share_link(id, at))
    }
    async fn put_quota(&self, quota: &Quota) -> Result<()> {
        delegate!(self.put_quota(quota))
    }
    async fn remove_quota(&self, scope: &QuotaScope) -> Result<()> {
        delegate!(self.remove_quota(scope))
    }
    async fn get_quota(&self, scope: &QuotaScope) -> Result<Option<Quota>> {
        delegate!(self.get_quota(scope))
    }
    async fn list_quotas(&self) -> Result<Vec<Quota>> {
        delegate!(self.list_quotas())
    }
    async fn bucket_usage(&self, bucket: &str) -> Result<Option<Usage>> {
        delegate!(self.bucket_usage(bucket))
    }
    async fn set_bucket_usage(&self, bucket: &str, usage: Usage) -> Result<()> {
        delegate!(self.set_bucket_usage(bucket, usage))
    }
    async fn add_bucket_usage(&self, bucket: &str, bytes: i64, objects: i64) -> Result<()> {
        delegate!(self.add_bucket_usage(bucket, bytes, objects))
    }
    async fn forget_bucket_usage(&self, bucket: &str) -> Result<()> {
        delegate!(self.forget_bucket_usage(bucket))
    }
    async fn owner_usage(&self, owner: &str) -> Result<(Usage, usize)> {
        delegate!(self.owner_usage(owner))
    }
    async fn append_audit(&self, events: Vec<AuditEvent>) -> Result<(), AuditNotStored> {
        if self.fail_audit.load(Ordering::SeqCst) {
            self.count("append_audit");
            let error = coffer_metadata::Error::Unavailable("the test turned audit writes off".into());
            return Err(AuditNotStored { error, events });
        }
        delegate!(self.append_audit(events))
    }
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>> {
        delegate!(self.list_audit(filter))
    }
    async fn purge_audit(&self, before: i64) -> Result<u64> {
        delegate!(self.purge_audit(before))
    }
}

struct Fixture {
    gateway: Arc<Gateway>,
    counting: Arc<Counting>,
    /// The same database through another handle, as another process would see it: its
    /// changes reach `gateway` only through the revision or a notification.
    other: Arc<Gateway>,
    stop: Option<tokio::sync::watch::Sender<bool>>,
    _dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(stop) = &self.stop {
            let _ = stop.send(true);
        }
    }
}

impl Fixture {
    /// Run `watch_changes` on the counting gateway.
    fn watch(&mut self) {
        let (stop, mut rx) = tokio::sync::watch::channel(false);
        tokio::spawn(self.gateway.clone().watch_changes(async move {
            let _ = rx.wait_for(|v| *v).await;
        }));
        self.stop = Some(stop);
    }

    /// The store's real revision.
    async fn revision(&self) -> i64 {
        self.other.store().revision().await.unwrap()
    }
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("coffer.db").display());
    let key = ServerKey::generate();
    let tier: Arc<dyn Backend> = Arc::new(FsBackend::new(dir.path().join("objects")).await.unwrap());
    let make = |store: Arc<dyn MetadataStore>| {
        Arc::new(Gateway::new(
            store,
            BTreeMap::from([("standard".to_owned(), tier.clone())]),
            "standard".into(),
            key.clone(),
        ))
    };
    let store = coffer_metadata::open(&url).await.unwrap();
    store.migrate().await.unwrap();
    let counting = Arc::new(Counting::new(store));
    let gateway = make(counting.clone());
    let other = make(coffer_metadata::open(&url).await.unwrap());
    Fixture { gateway, counting, other, stop: None, _dir: dir }
}

async fn user(g: &Gateway, name: &str) -> Caller {
    g.admin_create_user(name, &[], &[], false).await.unwrap();
    let k = g.admin_create_key(coffer_gateway::admin::BY_COMMAND_LINE, name, Narrowing::default()).await.unwrap();
    g.caller_for_key(&k.key.access_key_id).await.unwrap()
}

/// Poll `f` until it is true; the time it took, or a panic after `limit`.
async fn within(limit: Duration, mut f: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    start.elapsed()
}

fn to_bob() -> Grantee {
    Grantee::User("bob".into())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decision_on_a_warm_cache_does_no_store_io() {
    let f = fixture().await;
    let g = &f.gateway;
    let alice = user(g, "alice").await;
    let bob = user(g, "bob").await;
    let carol = user(g, "carol").await;
    g.create_bucket(&alice, "shared", None).await.unwrap();
    g.create_bucket(&alice, "target", None).await.unwrap();
    g.admin_put_grant("shared", to_bob(), Role::Read).await.unwrap();
    g.admin_put_grant("target", to_bob(), Role::Write).await.unwrap();
    g.admin_set_quota(QuotaScope::Bucket("target".into()), Some(1 << 30), None).await.unwrap();

    // Every kind of decision, allowed and denied, including the answers "no such key" and
    // "no such bucket".
    let decide = async || {
        assert!(g.secret_for_key(&bob.access_key_id).await.is_ok());
        let again = g.caller_for_key(&bob.access_key_id).await.unwrap();
        assert_eq!(again.principal.name, "bob");
        assert!(g.authorize(&bob, "shared", Some("k"), Action::Read).await.is_ok());
        assert!(matches!(g.authorize(&bob, "shared", Some("k"), Action::Write).await, Err(Error::AccessDenied)));
        assert!(matches!(g.authorize(&carol, "shared", None, Action::Read).await, Err(Error::AccessDenied)));
        assert!(g.authorize(&alice, "shared", None, Action::Admin).await.is_ok());
        assert!(g.authorize_copy(&bob, ("shared", "k"), ("target", "k")).await.is_ok());
        assert!(matches!(g.authorize(&bob, "nope", None, Action::Read).await, Err(Error::NoSuchBucket)));
        assert!(matches!(g.secret_for_key("AKNOSUCHKEY").await, Err(Error::InvalidAccessKeyId)));
    };
    decide().await; // warm
    let before = f.counting.calls();
    for _ in 0..500 {
        decide().await;
    }
    assert_eq!(f.counting.since(&before), BTreeMap::new(), "store calls made by decisions on a warm cache");

    // A change made through this gateway drops its cache at once: the next decision reads.
    g.admin_remove_grant("shared", &to_bob()).await.unwrap();
    let before = f.counting.calls();
    assert!(matches!(g.authorize(&bob, "shared", None, Action::Read).await, Err(Error::AccessDenied)));
    assert_eq!(f.counting.since(&before).get("get_bucket"), Some(&1));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_notification_drops_the_cache_at_once_and_doubt_drops_it_too() {
    let mut f = fixture().await;
    let g = f.gateway.clone();
    let alice = user(&g, "alice").await;
    let bob = user(&g, "bob").await;
    g.create_bucket(&alice, "shared", None).await.unwrap();
    g.admin_put_grant("shared", to_bob(), Role::Read).await.unwrap();

    // The poll sees no change from here on: only notifications can tell.
    f.counting.freeze_revision(Some(f.revision().await));
    let events = f.counting.offer_stream();
    f.watch();
    within(Duration::from_secs(5), async || f.counting.calls_of("subscribe_changes") == 1).await;
    within(Duration::from_secs(5), async || f.counting.calls_of("revision") >= 2).await;
    assert!(g.authorize(&bob, "shared", None, Action::Read).await.is_ok());

    // Revoked elsewhere: the cache still says yes (the poll is blind) until the notification.
    f.other.admin_remove_grant("shared", &to_bob()).await.unwrap();
    tokio::time::sleep(coffer_gateway::cache::POLL_INTERVAL * 3).await;
    assert!(g.authorize(&bob, "shared", None, Action::Read).await.is_ok(), "the revision is frozen");
    events.send(ChangeEvent::Changed(f.revision().await)).await.unwrap();
    let took =
        within(Duration::from_secs(1), async || g.authorize(&bob, "shared", None, Action::Read).await.is_err()).await;
    assert!(took < Duration::from_millis(500), "dropped {took:?} after the notification");

    // Granted elsewhere: the same.
    f.other.admin_put_grant("shared", to_bob(), Role::Read).await.unwrap();
    events.send(ChangeEvent::Changed(f.revision().await)).await.unwrap();
    within(Duration::from_secs(1), async || g.authorize(&bob, "shared", None, Action::Read).await.is_ok()).await;

    // A notification of a revision already seen, or an older one, keeps the cache.
    let read_bucket = async || {
        let before = f.counting.calls_of("get_bucket");
        assert!(g.authorize(&bob, "shared", None, Action::Read).await.is_ok());
        f.counting.calls_of("get_bucket") > before
    };
    let rev = f.revision().await;
    events.send(ChangeEvent::Changed(rev)).await.unwrap();
    events.send(ChangeEvent::Changed(rev - 1)).await.unwrap();
    // (The events are handled in order; one more that drops marks their end.)
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!read_bucket().await, "an old notification dropped the cache");

    // Doubt drops it: a lost connection, a re-established one.
    for doubt in [ChangeEvent::Lost, ChangeEvent::Reconnected] {
        // Warm first (the previous doubt may still be settling: a lost listener also
        // switches the poll to its fast pace, and the switch may drop the cache once more).
        within(Duration::from_secs(1), async || !read_bucket().await).await;
        events.send(doubt).await.unwrap();
        within(Duration::from_secs(1), async || read_bucket().await).await;
    }

    // The stream ends: dropped too, and listened to again later.
    assert!(!read_bucket().await);
    let _next = f.counting.offer_stream();
    drop(events);
    within(Duration::from_secs(1), async || read_bucket().await).await;
    within(coffer_gateway::cache::RESUBSCRIBE_INTERVAL * 2, async || f.counting.calls_of("subscribe_changes") == 2)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_poll_is_slow_while_notifications_arrive_and_fast_without() {
    let mut f = fixture().await;
    f.counting.freeze_revision(Some(0));
    let events = f.counting.offer_stream();
    f.watch();
    within(Duration::from_secs(5), async || f.counting.calls_of("subscribe_changes") == 1).await;
    let window = Duration::from_secs(3);
    let polls_in = async |window: Duration| {
        let before = f.counting.calls_of("revision");
        tokio::time::sleep(window).await;
        f.counting.calls_of("revision") - before
    };

    // Listening: every SAFETY_POLL_INTERVAL (7 or 8 in 3 s).
    let listening = polls_in(window).await;
    assert!((4..=9).contains(&listening), "{listening} polls in {window:?} while listening");

    // Lost: every POLL_INTERVAL (15 in 3 s).
    events.send(ChangeEvent::Lost).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let lost = polls_in(window).await;
    assert!(lost >= 11, "{lost} polls in {window:?} without notifications");

    // Back: slow again.
    events.send(ChangeEvent::Reconnected).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let back = polls_in(window).await;
    assert!((4..=9).contains(&back), "{back} polls in {window:?} after listening again");
}

#[tokio::test(flavor = "multi_thread")]
async fn without_notifications_the_poll_alone_applies_changes_made_elsewhere() {
    // A store that cannot listen (the subscription fails: polls fast, retries later).
    let mut f = fixture().await;
    let g = f.gateway.clone();
    let alice = user(&g, "alice").await;
    let bob = user(&g, "bob").await;
    g.create_bucket(&alice, "shared", None).await.unwrap();
    g.admin_put_grant("shared", to_bob(), Role::Read).await.unwrap();
    f.watch();
    assert!(g.authorize(&bob, "shared", None, Action::Read).await.is_ok());
    f.other.admin_remove_grant("shared", &to_bob()).await.unwrap();
    let took =
        within(Duration::from_secs(1), async || g.authorize(&bob, "shared", None, Action::Read).await.is_err()).await;
    assert!(took <= coffer_gateway::cache::POLL_INTERVAL * 3, "{took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_poll_that_hangs_drops_the_cache() {
    let mut f = fixture().await;
    let g = f.gateway.clone();
    let alice = user(&g, "alice").await;
    g.create_bucket(&alice, "data", None).await.unwrap();
    let _events = f.counting.offer_stream();
    f.watch();
    within(Duration::from_secs(5), async || f.counting.calls_of("revision") >= 2).await;
    let read_bucket = async || {
        let before = f.counting.calls_of("get_bucket");
        assert!(g.authorize(&alice, "data", None, Action::Read).await.is_ok());
        f.counting.calls_of("get_bucket") > before
    };
    read_bucket().await;
    assert!(!read_bucket().await, "warm");

    // Notifications still arrive, but the revision does not answer: fail closed, within
    // one poll interval plus the timeout.
    f.counting.hang_revision.store(true, Ordering::SeqCst);
    let took = within(Duration::from_secs(2), async || read_bucket().await).await;
    let bound = coffer_gateway::cache::SAFETY_POLL_INTERVAL + coffer_gateway::REVISION_TIMEOUT;
    assert!(took < bound + Duration::from_millis(200), "dropped after {took:?}");
}

/// The audit lines a test's subscriber saw: level, message, and the event's `allowed` and
/// `key` fields.
#[derive(Clone, Default)]
struct AuditLines(Arc<Mutex<Vec<AuditLine>>>);

/// Level, message, `allowed` and `key`.
type AuditLine = (tracing::Level, String, bool, String);

impl AuditLines {
    /// A subscriber that records `coffer::audit` events at `level` and above, and the lines.
    fn subscriber(level: tracing::Level) -> (impl tracing::Subscriber + Send + Sync, Self) {
        use tracing_subscriber::layer::SubscriberExt;
        let lines = Self::default();
        let filter = tracing_subscriber::filter::Targets::new().with_target("coffer::audit", level);
        (tracing_subscriber::registry().with(lines.clone().with_filter(filter)), lines)
    }

    /// The lines for object `key`, as (level, message, allowed).
    fn of(&self, key: &str) -> Vec<(tracing::Level, String, bool)> {
        let lines = self.0.lock().unwrap();
        lines.iter().filter(|l| l.3 == key).map(|l| (l.0, l.1.clone(), l.2)).collect()
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for AuditLines {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Fields(String, bool, String);
        impl tracing::field::Visit for Fields {
            fn record_bool(&mut self, field: &tracing::field::Field, value: bool) {
                if field.name() == "allowed" {
                    self.1 = value;
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                match field.name() {
                    "message" => self.0 = format!("{value:?}"),
                    "key" => self.2 = format!("{value:?}"),
                    _ => {}
                }
            }
        }
        let mut f = Fields::default();
        event.record(&mut f);
        self.0.lock().unwrap().push((*event.metadata().level(), f.0, f.1, f.2));
    }
}

use tracing_subscriber::Layer as _;

/// One allowed decision (`owner` writes `key` into bucket `data`) and one denial (`other`
/// reads it), then the audit writer runs until it has written (or failed to write) both.
async fn allow_then_deny(g: &Arc<Gateway>, owner: &Caller, other: &Caller, key: &str) {
    let body: coffer_backend::ByteStream = Box::pin(futures::stream::iter([Ok(bytes::Bytes::from_static(b"x"))]));
    g.put_object(owner, "data", key, coffer_gateway::objects::PutInput::default(), body).await.unwrap();
    assert!(matches!(g.head_object(other, "data", key, &Default::default()).await, Err(Error::AccessDenied)));
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let writer = tokio::spawn({
        let g = g.clone();
        async move { g.run_audit_writer(Duration::from_secs(3600), async move { rx.await.unwrap_or(()) }).await }
    });
    stop.send(()).unwrap();
    writer.await.unwrap();
}

/// Denials reach the log as they are made; allowed decisions only when the log asks for
/// `debug` — the store keeps every decision either way.
#[tokio::test(flavor = "current_thread")]
async fn denials_are_logged_at_once_and_allowed_decisions_at_debug() {
    for level in [tracing::Level::INFO, tracing::Level::DEBUG] {
        let f = fixture().await;
        let g = &f.gateway;
        let (subscriber, lines) = AuditLines::subscriber(level);
        let _guard = tracing::subscriber::set_default(subscriber);
        let alice = user(g, "alice").await;
        let bob = user(g, "bob").await;
        g.create_bucket(&alice, "data", None).await.unwrap();
        allow_then_deny(g, &alice, &bob, "mine").await;
        let mut expected = vec![(tracing::Level::INFO, "authorization decision".to_owned(), false)];
        if level == tracing::Level::DEBUG {
            expected.insert(0, (tracing::Level::DEBUG, "authorization decision".to_owned(), true));
        }
        assert_eq!(lines.of("mine"), expected, "at {level}");
        let filter = AuditFilter { bucket: Some("data".into()), limit: 100, ..Default::default() };
        let stored = g.audit_events(&filter).await.unwrap();
        let stored: Vec<(String, bool)> =
            stored.into_iter().filter(|e| e.key == "mine").map(|e| (e.principal, e.allowed)).collect();
        assert_eq!(stored, [("bob".to_owned(), false), ("alice".to_owned(), true)]);
    }
}

/// A batch the store cannot take goes to the log at `warn`: the allowed decisions in it,
/// which were not logged when they were made (the denials were).
#[tokio::test(flavor = "current_thread")]
async fn decisions_the_store_cannot_take_are_logged() {
    let f = fixture().await;
    let g = &f.gateway;
    let (subscriber, lines) = AuditLines::subscriber(tracing::Level::INFO);
    let _guard = tracing::subscriber::set_default(subscriber);
    let alice = user(g, "alice").await;
    let bob = user(g, "bob").await;
    g.create_bucket(&alice, "data", None).await.unwrap();
    f.counting.fail_audit.store(true, Ordering::SeqCst);
    allow_then_deny(g, &alice, &bob, "lost").await;
    assert!(f.counting.calls_of("append_audit") > 0);
    assert_eq!(
        lines.of("lost"),
        [
            (tracing::Level::INFO, "authorization decision".to_owned(), false),
            (tracing::Level::WARN, "authorization decision not stored".to_owned(), true),
        ]
    );
}
