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
//!   revision moves ([`Gateway::watch_changes`]).
//! - [`authorize`] — [`Caller`] (who, under which narrowing) and the checks every use case
//!   begins with.
//! - [`audit`] — each decision to the log (`target: "coffer::audit"`) and, in batches, to
//!   the metadata store, with a retention.
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

    /// Poll the store's revision every [`cache::POLL_INTERVAL`] and drop the cache when it
    /// moves, until `shutdown` resolves. Run one per process.
    pub async fn watch_changes(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(cache::POLL_INTERVAL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tick.tick() => {
                    match self.store.revision().await {
                        Ok(r) => {
                            if self.cache.observe_revision(r) {
                                tracing::debug!(revision = r, "metadata changed; cache dropped");
                            }
                        }
                        Err(e) => {
                            // Fail closed: without a fresh revision we cannot vouch for the cache.
                            self.cache.invalidate();
                            tracing::warn!(error = %e, "cannot read the metadata revision");
                        }
                    }
                }
            }
        }
    }
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}
