//! # coffer-gateway
//!
//! The use cases. Every front end (the S3 API, the REST API, the admin CLI, later the
//! controller) calls these functions, so there is one path for every read and write:
//! **authorize** (the pure decision in `coffer-core`) → **metadata** → **backend**.
//!
//! ## Layout
//! - this file — [`Gateway`]: the store, the tiers, the server key, the cache; built once
//!   and shared as `Arc`.
//! - [`error`] — [`Error`], the domain errors front ends map to their wire format.
//! - [`cache`] — the read-through cache of keys and buckets, dropped when the store's
//!   revision moves ([`Gateway::watch_changes`]: PostgreSQL change notifications as they
//!   commit, and a poll of the revision — the only mechanism on SQLite).
//! - [`authorize`] — [`Caller`] (who, under which narrowing) and the checks every use case
//!   begins with.
//! - [`audit`] — each decision, in batches, to the metadata store, with a retention, and to
//!   the log (`target: "coffer::audit"`; allowed decisions at `debug`).
//! - [`buckets`], [`objects`], [`multipart`] — the S3 use cases, named after the AWS
//!   operations.
//! - [`conditions`] — `If-Match` and friends.
//! - [`grants`] — sharing by bucket admins.
//! - [`profiles`] — Kubernetes profiles, for the controller: their principal, their buckets
//!   per tier, the state of CSI keys.
//! - [`projects`] — projects: a bucket owned by the project, members as grants.
//! - [`keys`] — a caller's own access keys, never reaching beyond the caller's credential.
//! - [`links`] — share links: expiring, revocable, read-only URLs, authorized at every use.
//! - [`admin`] — users, buckets, grants, keys and `explain`, for the operator.
//! - [`personal`] — personal buckets, created on a user's first authenticated request.
//! - [`sessions`] — STS `AssumeRoleWithWebIdentity`: OIDC tokens for temporary credentials.
//! - [`home`] — the home view: one virtual bucket whose folders are the buckets the caller
//!   may read.
//! - [`policy`] — Rego policies deciding the role on externally governed buckets.
//! - [`quotas`] — limits on bytes and objects per bucket and per owner, usage tracked
//!   in the metadata store, enforced before a write stores anything.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use coffer_backend::Backend;
use coffer_core::Classification;
use coffer_identity::ServerKey;
use coffer_metadata::MetadataStore;

pub mod admin;
pub mod audit;
pub mod authorize;
pub mod buckets;
pub mod cache;
pub mod conditions;
pub mod error;
pub mod grants;
pub mod home;
pub mod keys;
pub mod links;
pub mod multipart;
pub mod objects;
pub mod personal;
pub mod policy;
pub mod profiles;
pub mod projects;
pub mod quotas;
pub mod sessions;

pub use authorize::{Caller, RequestInfo};
pub use conditions::Conditions;
pub use error::{Error, Result};

/// How long each readiness check may take.
pub const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(800);
/// The longest a revision poll may take before the cache is dropped (fail closed): one poll
/// interval plus this stays under the one second in which a revocation must take effect.
pub const REVISION_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(500);
const _: () = assert!(
    cache::POLL_INTERVAL.as_millis() + REVISION_TIMEOUT.as_millis() < 1000
        && cache::SAFETY_POLL_INTERVAL.as_millis() + REVISION_TIMEOUT.as_millis() < 1000,
    "a poll interval plus the revision timeout must stay under a second (DESIGN.md, Authorization rule 4)"
);

/// The gateway: everything a use case needs, built once at start-up.
pub struct Gateway {
    store: Arc<dyn MetadataStore>,
    tiers: BTreeMap<String, Arc<dyn Backend>>,
    default_tier: String,
    server_key: ServerKey,
    cache: cache::Cache,
    max_object_size: u64,
    federation: Option<sessions::Federation>,
    personal: Option<personal::PersonalBuckets>,
    audit: audit::AuditSink,
    clearances: sessions::Clearances,
    links: links::LinkRules,
    tier_rules: BTreeMap<String, TierRules>,
    policy: Option<Arc<policy::Policy>>,
    home: Option<String>,
}

/// What a tier allows, besides holding bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TierRules {
    /// The classifications its buckets may have; `None`: any.
    pub classifications: Option<BTreeSet<Classification>>,
    /// Refuse every write to its buckets (and the creation of buckets by users).
    pub read_only: bool,
}

impl Gateway {
    /// `tiers` must contain `default_tier`.
    pub fn new(
        store: Arc<dyn MetadataStore>,
        tiers: BTreeMap<String, Arc<dyn Backend>>,
        default_tier: String,
        server_key: ServerKey,
    ) -> Self {
        assert!(tiers.contains_key(&default_tier), "the default tier {default_tier:?} is not configured");
        Self {
            store,
            tiers,
            default_tier,
            server_key,
            cache: cache::Cache::default(),
            max_object_size: coffer_backend::MAX_PUT_SIZE,
            federation: None,
            personal: None,
            audit: audit::AuditSink::default(),
            clearances: sessions::Clearances::default(),
            links: links::LinkRules::default(),
            tier_rules: BTreeMap::new(),
            policy: None,
            home: Some(home::DEFAULT_HOME.to_owned()),
        }
    }

    /// What tier `name` allows (default: any classification, writable).
    pub fn with_tier_rules(mut self, name: &str, rules: TierRules) -> Self {
        self.tier_rules.insert(name.to_owned(), rules);
        self
    }

    /// Decide the role on the buckets `policy` governs with it.
    pub fn with_policy(mut self, policy: Arc<policy::Policy>) -> Self {
        self.policy = Some(policy);
        self
    }

    /// What tier `name` allows.
    pub fn tier_rules(&self, name: &str) -> TierRules {
        self.tier_rules.get(name).cloned().unwrap_or_default()
    }

    /// May a bucket of `classification` be made on tier `name` — by a user (`by_user`), or
    /// by the operator, who may also register buckets on read-only tiers?
    pub(crate) fn check_new_bucket(&self, tier: &str, classification: &Classification, by_user: bool) -> Result<()> {
        let rules = self.tier_rules(tier);
        if let Some(allowed) = &rules.classifications
            && !allowed.contains(classification)
        {
            return Err(Error::Forbidden(format!("tier {tier} does not hold {classification} data")));
        }
        if by_user && rules.read_only {
            return Err(Error::Forbidden(format!("tier {tier} is read-only")));
        }
        Ok(())
    }

    /// Refuse single PUTs and parts above this many bytes (default and maximum: 5 GiB).
    pub fn with_max_object_size(mut self, bytes: u64) -> Self {
        self.max_object_size = bytes.min(coffer_backend::MAX_PUT_SIZE);
        self
    }

    pub fn max_object_size(&self) -> u64 {
        self.max_object_size
    }

    pub fn store(&self) -> &Arc<dyn MetadataStore> {
        &self.store
    }

    pub fn default_tier(&self) -> &str {
        &self.default_tier
    }

    /// The tier names, sorted.
    pub fn tier_names(&self) -> impl Iterator<Item = &str> {
        self.tiers.keys().map(String::as_str)
    }

    fn tier(&self, name: &str) -> Result<&Arc<dyn Backend>> {
        self.tiers.get(name).ok_or_else(|| Error::Internal(format!("bucket on unknown tier {name:?}")))
    }

    /// Readiness: the store answers and every tier's backend is usable, each within
    /// [`READY_TIMEOUT`] (a probe must answer before Kubernetes' default 1 s probe timeout).
    pub async fn check_ready(&self) -> Result<()> {
        let timed_out = |what: &str| Error::Unavailable(format!("{what} did not answer within {READY_TIMEOUT:?}"));
        tokio::time::timeout(READY_TIMEOUT, self.store.ping()).await.map_err(|_| timed_out("the metadata store"))??;
        for (name, b) in &self.tiers {
            tokio::time::timeout(READY_TIMEOUT, b.check())
                .await
                .map_err(|_| timed_out(&format!("tier {name}")))?
                .map_err(|e| Error::Unavailable(format!("tier {name}: {e}")))?;
        }
        Ok(())
    }

    /// Keep the cache true to the store until `shutdown` resolves. Run one per process.
    ///
    /// Where the store sends change notifications (PostgreSQL LISTEN/NOTIFY), the cache is
    /// dropped as soon as one reports a revision newer than the last seen. The revision is
    /// polled all the same: every [`cache::SAFETY_POLL_INTERVAL`] while notifications arrive,
    /// every [`cache::POLL_INTERVAL`] without them (SQLite, a failed subscription — retried
    /// every [`cache::RESUBSCRIBE_INTERVAL`] — or a lost connection). On any doubt the cache
    /// is dropped: a lost or re-established listening connection, an ended stream, a failed
    /// poll or one that takes longer than [`REVISION_TIMEOUT`]. Either interval plus that
    /// timeout is under the second in which a revocation must take effect, even should the
    /// notifications stop silently. Store calls run concurrently with the wait for
    /// notifications, so a slow poll never holds one up.
    pub async fn watch_changes(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        use coffer_metadata::{ChangeEvent, ChangeStream};
        use futures::future::BoxFuture;
        use tokio::time::{Instant, sleep_until};

        /// The outcome of a store call in flight, or never.
        async fn in_flight<T>(call: &mut Option<BoxFuture<'_, T>>) -> T {
            match call {
                Some(f) => f.await,
                None => std::future::pending().await,
            }
        }
        /// The next event of the stream (`None`: it ended), or never without one.
        async fn next_change(stream: &mut Option<ChangeStream>) -> Option<ChangeEvent> {
            match stream {
                Some(s) => s.next().await,
                None => std::future::pending().await,
            }
        }

        tokio::pin!(shutdown);
        let store = &self.store;
        let mut stream: Option<ChangeStream> = None;
        // Notifications arrive: poll slowly.
        let mut listening = false;
        // The store may send notifications (until it says it never will).
        let mut may_listen = true;
        let mut subscribing: Option<BoxFuture<'_, coffer_metadata::Result<Option<ChangeStream>>>> =
            Some(store.subscribe_changes());
        type Polled = std::result::Result<coffer_metadata::Result<i64>, tokio::time::error::Elapsed>;
        let mut polling: Option<BoxFuture<'_, Polled>> = None;
        let mut next_poll = Instant::now();
        let mut next_subscribe = Instant::now();
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                event = next_change(&mut stream) => match event {
                    Some(ChangeEvent::Changed(r)) => {
                        if self.cache.observe_notification(r) {
                            tracing::debug!(revision = r, "metadata changed (notified); cache dropped");
                        }
                    }
                    Some(ChangeEvent::Lost) => {
                        self.cache.invalidate();
                        listening = false;
                        next_poll = Instant::now();
                        tracing::warn!("change notifications lost; cache dropped, polling every {:?}", cache::POLL_INTERVAL);
                    }
                    Some(ChangeEvent::Reconnected) => {
                        // Changes made meanwhile were not notified.
                        self.cache.invalidate();
                        listening = true;
                        next_poll = Instant::now();
                        tracing::info!("change notifications resumed; cache dropped");
                    }
                    None => {
                        self.cache.invalidate();
                        stream = None;
                        listening = false;
                        next_poll = Instant::now();
                        next_subscribe = Instant::now() + cache::RESUBSCRIBE_INTERVAL;
                        tracing::warn!("change notifications ended; cache dropped, listening again soon");
                    }
                },
                subscribed = in_flight(&mut subscribing) => {
                    subscribing = None;
                    match subscribed {
                        Ok(Some(s)) => {
                            stream = Some(s);
                            listening = true;
                            // Changes committed before the LISTEN took effect were not
                            // notified: read the revision once more now that it has.
                            next_poll = Instant::now();
                            tracing::info!(
                                "listening for metadata changes; polling every {:?} as a safety net",
                                cache::SAFETY_POLL_INTERVAL
                            );
                        }
                        Ok(None) => {
                            may_listen = false;
                            tracing::debug!("the metadata store sends no change notifications; polling every {:?}", cache::POLL_INTERVAL);
                        }
                        Err(e) => {
                            next_subscribe = Instant::now() + cache::RESUBSCRIBE_INTERVAL;
                            tracing::warn!(error = %e, "cannot listen for metadata changes; polling every {:?}", cache::POLL_INTERVAL);
                        }
                    }
                }
                polled = in_flight(&mut polling) => {
                    polling = None;
                    match polled {
                        Ok(Ok(r)) => {
                            if self.cache.observe_revision(r) {
                                tracing::debug!(revision = r, "metadata changed (polled); cache dropped");
                            }
                        }
                        // Fail closed: without a fresh revision we cannot vouch for the cache.
                        Ok(Err(e)) => {
                            self.cache.invalidate();
                            tracing::warn!(error = %e, "cannot read the metadata revision");
                        }
                        Err(_) => {
                            self.cache.invalidate();
                            tracing::warn!("the metadata revision did not answer within {REVISION_TIMEOUT:?}; cache dropped");
                        }
                    }
                }
                _ = sleep_until(next_poll), if polling.is_none() => {
                    polling = Some(Box::pin(tokio::time::timeout(REVISION_TIMEOUT, store.revision())));
                    let every = if listening { cache::SAFETY_POLL_INTERVAL } else { cache::POLL_INTERVAL };
                    next_poll = Instant::now() + every;
                }
                _ = sleep_until(next_subscribe), if may_listen && stream.is_none() && subscribing.is_none() => {
                    subscribing = Some(store.subscribe_changes());
                }
            }
        }
        drop(polling);
        drop(subscribing);
        if let Some(s) = stream {
            s.close().await;
        }
    }
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
