//! Who is calling, and the check every use case starts with.
//!
//! A front end authenticates (for S3: s3s verifies the SigV4 signature with the secret from
//! [`Gateway::secret_for_key`]) and then asks for the [`Caller`]. Use cases call
//! [`Gateway::authorize`] (or its copy and create variants) first; it loads the bucket and
//! its grants through the cache, runs the pure decision, records an audit event and answers
//! `AccessDenied` for any denial — never revealing whether an object exists.

use std::sync::Arc;

use coffer_core::{
    Action, Bucket, BucketName, Classification, Decision, Grant, Narrowing, Principal, QuotaScope, Role, Rule,
    decide_with_role,
};

use crate::cache::{BucketEntry, KeyEntry, Listing};
use crate::{Error, Gateway, Result, now};

/// A role and the rule it comes from, or the rule that gives none.
type RoleSource = std::result::Result<(Role, Rule), Rule>;

/// The authenticated caller of one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub narrowing: Narrowing,
    /// The credential used, for the audit log.
    pub access_key_id: String,
    /// The request's id, for the audit log (set by the front end).
    pub request_id: String,
    /// The client's address, for the audit log (set by the front end).
    pub source: String,
    /// The request came through a read-only endpoint: every write is refused.
    pub read_only_endpoint: bool,
}

/// What the HTTP layer knows of a request, passed to front ends in the request's
/// extensions: its id, the client's address, and whether its listener is read-only.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub request_id: String,
    pub source: String,
    pub read_only_endpoint: bool,
}

impl Caller {
    /// This caller, attributed to a request (and bound by its endpoint).
    pub fn in_request(mut self, info: Option<&RequestInfo>) -> Self {
        if let Some(i) = info {
            self.request_id = i.request_id.clone();
            self.source = i.source.clone();
            self.read_only_endpoint |= i.read_only_endpoint;
        }
        self
    }
}

impl Gateway {
    async fn key_entry(&self, access_key_id: &str) -> Result<Arc<KeyEntry>> {
        if let Some(hit) = self.cache.key(access_key_id) {
            return hit.ok_or(Error::InvalidAccessKeyId);
        }
        let generation = self.cache.generation();
        let entry = self.load_key(access_key_id).await?;
        self.cache.put_key(generation, access_key_id, entry.clone());
        entry.ok_or(Error::InvalidAccessKeyId)
    }

    async fn load_key(&self, access_key_id: &str) -> Result<Option<Arc<KeyEntry>>> {
        let Some(key) = self.store.get_access_key(access_key_id).await? else { return Ok(None) };
        if key.revoked_at.is_some() {
            return Ok(None);
        }
        let Some(user) = self.store.get_user(key.user.as_str()).await? else { return Ok(None) };
        let secret = self.server_key.open(&key.access_key_id, &key.secret_sealed).map_err(|e| {
            tracing::error!(access_key_id, error = %e, "cannot open a stored secret");
            Error::Internal("cannot open a stored secret".into())
        })?;
        Ok(Some(Arc::new(KeyEntry { key, user, secret })))
    }

    /// The secret of an active access key, for signature verification.
    /// `InvalidAccessKeyId` for unknown and revoked keys.
    pub async fn secret_for_key(&self, access_key_id: &str) -> Result<String> {
        if coffer_identity::session::is_session_key(access_key_id) {
            // Derived, not stored: any replica answers without a lookup.
            return Ok(coffer_identity::session::session_secret(&self.server_key, access_key_id));
        }
        Ok(self.key_entry(access_key_id).await?.secret.clone())
    }

    /// The caller behind an access key whose signature has been verified. An expired key
    /// is refused here, for every operation (`AccessDenied`).
    pub async fn caller_for_key(&self, access_key_id: &str) -> Result<Caller> {
        let e = self.key_entry(access_key_id).await?;
        if e.key.narrowing.expires_at.is_some_and(|t| now() >= t) {
            tracing::info!(target: "coffer::audit", access_key_id, allowed = false, rule = "the credential has expired", "authorization decision");
            return Err(Error::AccessDenied);
        }
        Ok(Caller {
            principal: e.user.principal(),
            narrowing: e.key.narrowing.clone(),
            access_key_id: access_key_id.to_owned(),
            request_id: String::new(),
            source: String::new(),
            read_only_endpoint: false,
        })
    }

    /// Every bucket with its grants, indexed (see [`Listing`]): two queries when not cached.
    pub(crate) async fn listing(&self) -> Result<Arc<Listing>> {
        if let Some(hit) = self.cache.listing() {
            return Ok(hit);
        }
        let generation = self.cache.generation();
        let buckets = self.store.list_buckets().await?;
        let grants = self.store.list_grants(None).await?;
        let listing = Arc::new(Listing::new(buckets, grants));
        self.cache.put_listing(generation, listing.clone());
        Ok(listing)
    }

    pub(crate) async fn bucket_entry(&self, name: &str) -> Result<Arc<BucketEntry>> {
        if let Some(hit) = self.cache.bucket(name) {
            return Ok(hit);
        }
        let generation = self.cache.generation();
        let bucket = self.store.get_bucket(name).await?;
        let (grants, limits) = match &bucket {
            Some(b) => {
                let limits = crate::quotas::Limits {
                    bucket: self.store.get_quota(&QuotaScope::Bucket(name.to_owned())).await?,
                    owner: self.store.get_quota(&QuotaScope::User(b.owner.clone())).await?,
                };
                (self.store.list_grants(Some(name)).await?, limits)
            }
            None => (Vec::new(), Default::default()),
        };
        let entry = Arc::new(BucketEntry { bucket, grants, limits });
        self.cache.put_bucket(generation, name, entry.clone());
        Ok(entry)
    }

    /// Where the caller's role on a bucket comes from: the bucket's policy when one governs
    /// it, else ownership and grants.
    fn role_source(&self, principal: &Principal, bucket: &Bucket, grants: &[Grant], action: Action) -> RoleSource {
        match self.policy.as_ref().filter(|p| p.governs(bucket.name.as_str())) {
            Some(policy) => policy.role(principal, bucket, action),
            None => coffer_core::authz::effective_role(principal, bucket, grants).ok_or(Rule::NoGrant),
        }
    }

    /// The one decision every check makes: the credential's narrowing, the clearance, the
    /// role (grants, or the bucket's policy), then what the tier and the endpoint allow.
    pub(crate) fn decide_for(&self, caller: &Caller, bucket: &Bucket, grants: &[Grant], action: Action) -> Decision {
        let d = decide_with_role(&caller.principal, &caller.narrowing, bucket, action, now(), || {
            self.role_source(&caller.principal, bucket, grants, action)
        });
        if !d.allowed || action.required_role() == Role::Read {
            return d;
        }
        if caller.read_only_endpoint {
            return Decision::deny(Rule::ReadOnlyEndpoint);
        }
        if self.tier_rules(&bucket.tier).read_only {
            return Decision::deny(Rule::ReadOnlyTier { tier: bucket.tier.clone() });
        }
        d
    }

    /// Authorize `action` on bucket `name` (`key` only for the audit log). Returns the
    /// bucket. `NoSuchBucket` when it does not exist, `AccessDenied` when refused.
    pub async fn authorize(&self, caller: &Caller, name: &str, key: Option<&str>, action: Action) -> Result<Bucket> {
        let entry = self.bucket_entry(name).await?;
        let Some(bucket) = &entry.bucket else { return Err(Error::NoSuchBucket) };
        let d = self.decide_for(caller, bucket, &entry.grants, action);
        self.audit(caller, action.as_str(), name, key, &d);
        if d.allowed { Ok(bucket.clone()) } else { Err(Error::AccessDenied) }
    }

    /// Authorize a copy: read on the source, write on the destination, one classification.
    /// Returns (source, destination).
    pub async fn authorize_copy(
        &self,
        caller: &Caller,
        src: (&str, &str),
        dst: (&str, &str),
    ) -> Result<(Bucket, Bucket)> {
        let s = self.bucket_entry(src.0).await?;
        let d = self.bucket_entry(dst.0).await?;
        let (Some(sb), Some(db)) = (&s.bucket, &d.bucket) else { return Err(Error::NoSuchBucket) };
        let read = self.decide_for(caller, sb, &s.grants, Action::Read);
        let decision = if !read.allowed {
            read
        } else {
            let write = self.decide_for(caller, db, &d.grants, Action::Write);
            if write.allowed && sb.classification != db.classification {
                Decision::deny(Rule::CrossClassification {
                    from: sb.classification.clone(),
                    to: db.classification.clone(),
                })
            } else {
                write
            }
        };
        let what = format!("copy {}/{} to", src.0, src.1);
        self.audit(caller, &what, dst.0, Some(dst.1), &decision);
        if decision.allowed { Ok((sb.clone(), db.clone())) } else { Err(Error::AccessDenied) }
    }

    /// The caller's role on a bucket it may see, as its credential, the endpoint and the
    /// tier allow it (each may make every role `read`); `None` when it may not see it.
    pub(crate) fn role_on(&self, caller: &Caller, entry: &BucketEntry) -> Option<Role> {
        self.role_on_bucket(caller, entry.bucket.as_ref()?, &entry.grants)
    }

    /// [`Gateway::role_on`] a bucket and its grants. Seeing it is the decision for `list`
    /// (no audit event per bucket).
    pub(crate) fn role_on_bucket(&self, caller: &Caller, bucket: &Bucket, grants: &[Grant]) -> Option<Role> {
        if !self.decide_for(caller, bucket, grants, Action::List).allowed {
            return None;
        }
        let (role, _) = self.role_source(&caller.principal, bucket, grants, Action::List).ok()?;
        let read_only =
            caller.narrowing.read_only || caller.read_only_endpoint || self.tier_rules(&bucket.tier).read_only;
        Some(if read_only { role.min(Role::Read) } else { role })
    }

    pub(crate) fn authorize_create(
        &self,
        caller: &Caller,
        name: &BucketName,
        classification: &Classification,
    ) -> Result<()> {
        let mut d =
            coffer_core::decide_create_bucket(&caller.principal, &caller.narrowing, name, classification, now());
        if d.allowed && caller.read_only_endpoint {
            d = Decision::deny(Rule::ReadOnlyEndpoint);
        }
        self.audit(caller, "create-bucket", name.as_str(), None, &d);
        if d.allowed { Ok(()) } else { Err(Error::AccessDenied) }
    }
}
