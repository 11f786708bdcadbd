//! Bucket use cases: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation.

use coffer_core::{Action, Bucket, BucketName, Classification, Grantee, Role};

use crate::{Caller, Error, Gateway, Result, now};

/// Names the HTTP server routes elsewhere (`/healthz`, `/readyz`, `/metrics`, `/api/…`,
/// `/console/…`).
pub const RESERVED_BUCKET_NAMES: [&str; 5] = ["healthz", "readyz", "metrics", "api", "console"];

/// Parse a new bucket's name: the S3 rules, and none of the reserved names.
pub(crate) fn parse_bucket_name(name: &str) -> Result<BucketName> {
    let parsed = BucketName::parse(name).map_err(|e| Error::InvalidBucketName(e.to_string()))?;
    if RESERVED_BUCKET_NAMES.contains(&name) {
        return Err(Error::InvalidBucketName(format!("bucket name {name:?} is reserved by coffer")));
    }
    Ok(parsed)
}

impl Gateway {
    /// The buckets the caller may read, by name.
    pub async fn list_buckets(&self, caller: &Caller) -> Result<Vec<Bucket>> {
        Ok(self.visible_buckets(caller).await?.into_iter().map(|(b, _)| b).collect())
    }

    /// The buckets the caller may read, by name, each with the caller's role on it.
    ///
    /// Only the buckets where the caller can have a role are decided: all of them for the
    /// platform admin, else those it owns, those granted to it or to one of its groups, and
    /// those a policy governs — every other bucket gives no role, so the answer is the same
    /// as deciding every bucket, in time proportional to the caller's buckets.
    pub async fn visible_buckets(&self, caller: &Caller) -> Result<Vec<(Bucket, Role)>> {
        let listing = self.listing().await?;
        let p = &caller.principal;
        let candidates: Vec<usize> = if p.is_admin {
            (0..listing.buckets.len()).collect()
        } else {
            let mut c: Vec<usize> = Vec::new();
            c.extend(listing.by_owner.get(&p.name).into_iter().flatten());
            c.extend(listing.by_grantee.get(&Grantee::User(p.name.clone())).into_iter().flatten());
            for g in &p.groups {
                c.extend(listing.by_grantee.get(&Grantee::Group(g.clone())).into_iter().flatten());
            }
            if let Some(policy) = &self.policy {
                c.extend((0..listing.buckets.len()).filter(|&i| policy.governs(listing.buckets[i].0.name.as_str())));
            }
            c.sort_unstable();
            c.dedup();
            c
        };
        let mut out = Vec::with_capacity(candidates.len());
        for i in candidates {
            let (bucket, grants) = &listing.buckets[i];
            if let Some(role) = self.role_on_bucket(caller, bucket, grants) {
                out.push((bucket.clone(), role));
            }
        }
        Ok(out)
    }

    /// One bucket the caller may list, with the caller's role on it.
    pub async fn bucket_with_role(&self, caller: &Caller, name: &str) -> Result<(Bucket, Role)> {
        let bucket = self.authorize(caller, name, None, Action::List).await?;
        let entry = self.bucket_entry(name).await?;
        Ok((bucket, self.role_on(caller, &entry).unwrap_or(Role::Read)))
    }

    /// Create a bucket the caller owns, on `tier` (default tier when `None`), classified
    /// `unclassified`.
    pub async fn create_bucket(&self, caller: &Caller, name: &str, tier: Option<&str>) -> Result<Bucket> {
        if self.is_home(name) {
            return Err(Error::BucketAlreadyExists);
        }
        let name = parse_bucket_name(name)?;
        let classification = Classification::unclassified();
        let tier = self.resolve_tier(tier)?;
        // An existing bucket answers before any authorization, as S3 does.
        if let Some(existing) = self.store.get_bucket(name.as_str()).await? {
            return Err(if existing.owner == caller.principal.name {
                Error::BucketAlreadyOwnedByYou
            } else {
                Error::BucketAlreadyExists
            });
        }
        self.authorize_create(caller, &name, &classification)?;
        self.check_new_bucket(&tier, &classification, true)?;
        let bucket = Bucket { name, owner: caller.principal.name.clone(), tier, classification, created_at: now() };
        self.insert_bucket(&bucket).await.map_err(|e| match e {
            Error::Conflict(_) => Error::BucketAlreadyExists,
            e => e,
        })?;
        Ok(bucket)
    }

    pub(crate) fn resolve_tier(&self, tier: Option<&str>) -> Result<String> {
        match tier.filter(|t| !t.is_empty()) {
            None => Ok(self.default_tier.clone()),
            // "us-east-1" is what SDKs send when a region is configured; it names no tier.
            Some("us-east-1") => Ok(self.default_tier.clone()),
            Some(t) if self.tiers.contains_key(t) => Ok(t.to_owned()),
            Some(t) => Err(Error::InvalidLocationConstraint(t.to_owned())),
        }
    }

    /// Record a bucket, then make its home in the backend; undo the record if that fails.
    pub(crate) async fn insert_bucket(&self, bucket: &Bucket) -> Result<()> {
        if self.is_home(bucket.name.as_str()) {
            return Err(Error::InvalidBucketName(format!("{} is the name of the home view", bucket.name)));
        }
        self.store.create_bucket(bucket).await?;
        self.cache.invalidate();
        // A new bucket of an owner under a quota is counted from its first object.
        if self.store.get_quota(&coffer_core::QuotaScope::User(bucket.owner.clone())).await?.is_some() {
            self.store.set_bucket_usage(bucket.name.as_str(), coffer_core::Usage::default()).await?;
        }
        if let Err(e) = self.tier(&bucket.tier)?.create_bucket(bucket.name.as_str()).await {
            let _ = self.store.delete_bucket(bucket.name.as_str()).await;
            self.cache.invalidate();
            return Err(e.into());
        }
        Ok(())
    }

    /// HeadBucket: exists and the caller may list it.
    pub async fn head_bucket(&self, caller: &Caller, name: &str) -> Result<Bucket> {
        if self.is_home(name) {
            return self.home_record(caller);
        }
        self.authorize(caller, name, None, Action::List).await
    }

    /// GetBucketLocation: the bucket's tier.
    pub async fn get_bucket_location(&self, caller: &Caller, name: &str) -> Result<String> {
        if self.is_home(name) {
            return Ok(self.default_tier.clone());
        }
        Ok(self.authorize(caller, name, None, Action::List).await?.tier)
    }

    /// DeleteBucket: only by an admin of the bucket, only when empty.
    pub async fn delete_bucket(&self, caller: &Caller, name: &str) -> Result<()> {
        if self.is_home(name) {
            return Err(Error::Forbidden(format!("{name} is the home view of every user; it cannot be deleted")));
        }
        let bucket = self.authorize(caller, name, None, Action::Admin).await?;
        self.remove_bucket(&bucket).await
    }

    /// Remove an (empty) bucket from its backend, then from the store.
    pub(crate) async fn remove_bucket(&self, bucket: &Bucket) -> Result<()> {
        self.tier(&bucket.tier)?.delete_bucket(bucket.name.as_str()).await?;
        self.store.delete_bucket(bucket.name.as_str()).await?;
        self.cache.invalidate();
        Ok(())
    }
}
