//! Who is calling, and the check every use case starts with.
//!
//! A front end authenticates (for S3: s3s verifies the SigV4 signature with the secret from
//! [`Gateway::secret_for_key`]) and then asks for the [`Caller`]. Use cases call
//! [`Gateway::authorize`] (or its copy and create variants) first; it loads the bucket and
//! its grants through the cache, runs the pure decision, records an audit event and answers
//! `AccessDenied` for any denial — never revealing whether an object exists.

use std::sync::Arc;

use coffer_core::{Action, Bucket, BucketName, Classification, Narrowing, Principal, Role, decide};

use crate::cache::{BucketEntry, KeyEntry};
use crate::{Error, Gateway, Result, now};

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
}

/// What the HTTP layer knows of a request, passed to front ends in the request's
/// extensions: its id and the client's address.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub request_id: String,
    pub source: String,
}

impl Caller {
    /// This caller, attributed to a request.
    pub fn in_request(mut self, info: Option<&RequestInfo>) -> Self {
        if let Some(i) = info {
            self.request_id = i.request_id.clone();
            self.source = i.source.clone();
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
        })
    }

    pub(crate) async fn bucket_entry(&self, name: &str) -> Result<Arc<BucketEntry>> {
        if let Some(hit) = self.cache.bucket(name) {
            return Ok(hit);
        }
        let generation = self.cache.generation();
        let bucket = self.store.get_bucket(name).await?;
        let grants = match &bucket {
            Some(_) => self.store.list_grants(Some(name)).await?,
            None => Vec::new(),
        };
        let entry = Arc::new(BucketEntry { bucket, grants });
        self.cache.put_bucket(generation, name, entry.clone());
        Ok(entry)
    }

    /// Authorize `action` on bucket `name` (`key` only for the audit log). Returns the
    /// bucket. `NoSuchBucket` when it does not exist, `AccessDenied` when refused.
    pub async fn authorize(&self, caller: &Caller, name: &str, key: Option<&str>, action: Action) -> Result<Bucket> {
        let entry = self.bucket_entry(name).await?;
        let Some(bucket) = &entry.bucket else { return Err(Error::NoSuchBucket) };
        let d = decide(&caller.principal, &caller.narrowing, bucket, &entry.grants, action, now());
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
        let decision =
            coffer_core::decide_copy(&caller.principal, &caller.narrowing, (sb, &s.grants), (db, &d.grants), now());
        let what = format!("copy {}/{} to", src.0, src.1);
        self.audit(caller, &what, dst.0, Some(dst.1), &decision);
        if decision.allowed { Ok((sb.clone(), db.clone())) } else { Err(Error::AccessDenied) }
    }

    /// May the caller see this bucket in ListBuckets? (read, no audit event per bucket)
    pub(crate) fn may_list(&self, caller: &Caller, entry: &BucketEntry) -> bool {
        entry.bucket.as_ref().is_some_and(|b| {
            decide(&caller.principal, &caller.narrowing, b, &entry.grants, Action::List, now()).allowed
        })
    }

    /// The caller's role on a bucket it may see, as its credential allows it (a read-only
    /// credential makes every role `read`); `None` when it may not see the bucket.
    pub(crate) fn role_on(&self, caller: &Caller, entry: &BucketEntry) -> Option<Role> {
        if !self.may_list(caller, entry) {
            return None;
        }
        let bucket = entry.bucket.as_ref()?;
        let (role, _) = coffer_core::authz::effective_role(&caller.principal, bucket, &entry.grants)?;
        Some(if caller.narrowing.read_only { role.min(Role::Read) } else { role })
    }

    pub(crate) fn authorize_create(
        &self,
        caller: &Caller,
        name: &BucketName,
        classification: &Classification,
    ) -> Result<()> {
        let d = coffer_core::decide_create_bucket(&caller.principal, &caller.narrowing, name, classification, now());
        self.audit(caller, "create-bucket", name.as_str(), None, &d);
        if d.allowed { Ok(()) } else { Err(Error::AccessDenied) }
    }
}
