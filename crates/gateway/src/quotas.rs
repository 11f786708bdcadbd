//! Quotas: limits on the bytes and objects of a bucket, or of every bucket a user owns,
//! enforced on PutObject, CopyObject and CompleteMultipartUpload.
//!
//! - Usage is tracked only for buckets under a quota (their own or their owner's): setting
//!   a quota measures the buckets it covers (a listing), and from then on every write and
//!   delete adds its difference, atomically in the metadata store, so every replica sees
//!   the same numbers. A bucket without any quota costs nothing on the write path.
//! - A write is admitted before any byte is stored: the size it adds (its length, less the
//!   object it replaces) must fit under every quota that covers it, and one more object
//!   under the object limits when the key is new. A body of unannounced length is cut off
//!   at the remaining allowance. A refused write stores nothing (`QuotaExceeded`).
//! - Concurrent writes are each checked against the usage before them, so uploads running
//!   at the same moment may together pass a limit by at most their own sizes; the usage
//!   stays exact.
//! - Parts of multipart uploads in progress are not counted; their completion is.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use coffer_backend::{ByteStream, ListEntry, ListQuery};
use coffer_core::{Bucket, Quota, QuotaScope, Usage};
use futures::Stream;

use crate::{Caller, Error, Gateway, Result, now};

/// The limits covering one bucket, as cached with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits {
    /// The bucket's own quota.
    pub bucket: Option<Quota>,
    /// Its owner's quota (over every bucket the owner has).
    pub owner: Option<Quota>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.bucket.is_none() && self.owner.is_none()
    }
}

/// A quota and how much of it is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaReport {
    pub scope: QuotaScope,
    pub quota: Option<Quota>,
    pub usage: Usage,
}

/// A user record with their quota and usage ([`Gateway::list_users`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserReport {
    pub user: coffer_core::User,
    /// Their quota over every bucket they own, if one is set.
    pub quota: Option<Quota>,
    /// The tracked usage of the buckets they own.
    pub usage: Usage,
    /// How many of their buckets are not tracked (not in `usage`).
    pub untracked_buckets: u64,
}

/// A write that was admitted: what to add to the usage once it is stored.
#[derive(Debug)]
pub(crate) struct Admission {
    /// The bucket is tracked (some quota covers it).
    tracked: bool,
    /// The size of the object being replaced, if any.
    replaced: Option<u64>,
    /// Set by [`Limited`] when the body passed the allowance.
    exceeded: Arc<AtomicBool>,
    /// Bytes the body may have, for bodies of unannounced length.
    allowance: Option<u64>,
}

fn exceeded(what: &str) -> Error {
    Error::QuotaExceeded(format!("the request would exceed {what}"))
}

fn describe(scope: &QuotaScope) -> String {
    match scope {
        QuotaScope::Bucket(b) => format!("the quota of bucket {b}"),
        QuotaScope::User(u) => format!("the quota of user {u}"),
    }
}

/// Usage plus a signed difference, floored at zero.
fn plus(usage: u64, delta: i128) -> i128 {
    i128::from(usage) + delta
}

impl Gateway {
    /// The quotas covering `bucket` (cached with the bucket).
    pub(crate) async fn limits(&self, bucket: &str) -> Result<Limits> {
        Ok(self.bucket_entry(bucket).await?.limits.clone())
    }

    /// Admit a write of `incoming` bytes (`None`: not announced) to `key` in `bucket`.
    pub(crate) async fn admit(&self, bucket: &Bucket, key: &str, incoming: Option<u64>) -> Result<Admission> {
        let limits = self.limits(bucket.name.as_str()).await?;
        let mut adm =
            Admission { tracked: false, replaced: None, exceeded: Arc::new(AtomicBool::new(false)), allowance: None };
        if limits.is_empty() {
            return Ok(adm);
        }
        adm.tracked = true;
        adm.replaced = crate::objects::optional(self.tier(&bucket.tier)?.head_object(bucket.name.as_str(), key).await)?
            .map(|o| o.size);
        let new_object = i128::from(adm.replaced.is_none());
        let replaced = i128::from(adm.replaced.unwrap_or(0));
        let mut allowance: Option<i128> = None;
        for quota in [&limits.bucket, &limits.owner].into_iter().flatten() {
            let usage = match &quota.scope {
                QuotaScope::Bucket(b) => self.store.bucket_usage(b).await?.unwrap_or_default(),
                QuotaScope::User(u) => self.store.owner_usage(u).await?.0,
            };
            if let Some(max) = quota.max_objects
                && new_object > 0
                && plus(usage.objects, new_object) > i128::from(max)
            {
                return Err(exceeded(&format!("{}: {max} objects", describe(&quota.scope))));
            }
            if let Some(max) = quota.max_bytes {
                let room = i128::from(max) - plus(usage.bytes, -replaced);
                if let Some(n) = incoming
                    && i128::from(n) > room
                {
                    return Err(exceeded(&format!("{}: {max} bytes", describe(&quota.scope))));
                }
                allowance = Some(allowance.map_or(room, |a| a.min(room)));
            }
        }
        adm.allowance = allowance.map(|a| u64::try_from(a.max(0)).unwrap_or(0));
        Ok(adm)
    }

    /// The body to store, cut off at the admission's allowance.
    pub(crate) fn limit_body(&self, adm: &Admission, body: ByteStream) -> ByteStream {
        match adm.allowance {
            None => body,
            Some(left) => Box::pin(Limited { inner: body, left, exceeded: adm.exceeded.clone() }),
        }
    }

    /// The error of a write that failed: `QuotaExceeded` if its body passed the allowance.
    pub(crate) fn write_failed(&self, adm: &Admission, e: Error) -> Error {
        if adm.exceeded.load(Ordering::Acquire) { exceeded("a quota while the body was read") } else { e }
    }

    /// Count a stored write of `size` bytes.
    pub(crate) async fn account_write(&self, bucket: &str, adm: &Admission, size: u64) {
        if !adm.tracked {
            return;
        }
        let bytes = i128::from(size) - i128::from(adm.replaced.unwrap_or(0));
        let objects = i64::from(adm.replaced.is_none());
        self.add_usage(bucket, bytes, objects).await;
    }

    /// Count a delete: `size` of the object removed, if there was one.
    pub(crate) async fn account_delete(&self, bucket: &str, size: Option<u64>) {
        if let Some(size) = size {
            self.add_usage(bucket, -i128::from(size), -1).await;
        }
    }

    async fn add_usage(&self, bucket: &str, bytes: i128, objects: i64) {
        let bytes = i64::try_from(bytes).unwrap_or(if bytes < 0 { i64::MIN } else { i64::MAX });
        if let Err(e) = self.store.add_bucket_usage(bucket, bytes, objects).await {
            // The write happened; a usage that lags is corrected by `coffer admin quota measure`.
            tracing::warn!(bucket, error = %e, "cannot update the bucket's usage");
        }
    }

    /// The size of `key` before a delete, when the bucket's usage is tracked.
    pub(crate) async fn size_before_delete(&self, bucket: &Bucket, key: &str) -> Result<Option<u64>> {
        if self.limits(bucket.name.as_str()).await?.is_empty() {
            return Ok(None);
        }
        let info = crate::objects::optional(self.tier(&bucket.tier)?.head_object(bucket.name.as_str(), key).await)?;
        Ok(info.map(|o| o.size))
    }

    /// Count every object of a bucket (a full listing).
    pub async fn measure_usage(&self, bucket: &Bucket) -> Result<Usage> {
        let backend = self.tier(&bucket.tier)?;
        let mut usage = Usage::default();
        let mut after = None;
        loop {
            let q = ListQuery { prefix: String::new(), delimiter: None, start_after: after.take(), max_keys: 1000 };
            let page = backend.list_objects(bucket.name.as_str(), &q).await?;
            for e in &page.entries {
                if let ListEntry::Object(o) = e {
                    usage.bytes += o.size;
                    usage.objects += 1;
                    after = Some(o.key.clone());
                }
            }
            if !page.is_truncated || after.is_none() {
                return Ok(usage);
            }
        }
    }

    /// Measure a bucket and (re)start tracking it with what was found.
    pub async fn track_usage(&self, bucket: &Bucket) -> Result<Usage> {
        let usage = self.measure_usage(bucket).await?;
        self.store.set_bucket_usage(bucket.name.as_str(), usage).await?;
        Ok(usage)
    }

    /// The buckets a quota covers.
    async fn covered(&self, scope: &QuotaScope) -> Result<Vec<Bucket>> {
        Ok(match scope {
            QuotaScope::Bucket(b) => {
                vec![
                    self.store
                        .get_bucket(b)
                        .await?
                        .ok_or_else(|| Error::NotFound(format!("bucket {b:?} does not exist")))?,
                ]
            }
            QuotaScope::User(u) => self.store.list_buckets().await?.into_iter().filter(|b| b.owner == *u).collect(),
        })
    }

    /// Set (or replace) a quota, as the operator. The buckets it covers are measured first
    /// if their usage is not tracked yet.
    pub async fn admin_set_quota(
        &self,
        scope: QuotaScope,
        max_bytes: Option<u64>,
        max_objects: Option<u64>,
    ) -> Result<Quota> {
        let limit = i64::MAX as u64;
        if max_bytes.is_some_and(|n| n > limit) || max_objects.is_some_and(|n| n > limit) {
            return Err(Error::InvalidArgument(format!("a quota may be at most {limit}")));
        }
        if max_bytes.is_none() && max_objects.is_none() {
            return Err(Error::InvalidArgument("give a byte limit, an object limit, or both".into()));
        }
        if let QuotaScope::User(u) = &scope {
            coffer_core::UserName::parse(u).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        }
        for b in self.covered(&scope).await? {
            if self.store.bucket_usage(b.name.as_str()).await?.is_none() {
                self.track_usage(&b).await?;
            }
        }
        let quota = Quota { scope, max_bytes, max_objects, updated_at: now() };
        self.store.put_quota(&quota).await?;
        self.cache.invalidate();
        Ok(quota)
    }

    /// Remove a quota, as the operator.
    pub async fn admin_remove_quota(&self, scope: &QuotaScope) -> Result<()> {
        self.store.remove_quota(scope).await?;
        self.cache.invalidate();
        Ok(())
    }

    pub async fn admin_list_quotas(&self) -> Result<Vec<Quota>> {
        Ok(self.store.list_quotas().await?)
    }

    /// A scope's quota and usage, for the operator. Untracked buckets are measured (and not
    /// tracked by this).
    pub async fn quota_report(&self, scope: &QuotaScope) -> Result<QuotaReport> {
        let quota = self.store.get_quota(scope).await?;
        let mut usage = Usage::default();
        for b in self.covered(scope).await? {
            let u = match self.store.bucket_usage(b.name.as_str()).await? {
                Some(u) => u,
                None => self.measure_usage(&b).await?,
            };
            usage.bytes += u.bytes;
            usage.objects += u.objects;
        }
        Ok(QuotaReport { scope: scope.clone(), quota, usage })
    }

    /// Re-measure every bucket a scope covers and restart tracking from what was found.
    pub async fn admin_measure_usage(&self, scope: &QuotaScope) -> Result<QuotaReport> {
        for b in self.covered(scope).await? {
            self.track_usage(&b).await?;
        }
        self.quota_report(scope).await
    }

    /// A bucket's quota and usage, for anyone who may list it.
    pub async fn bucket_quota(&self, caller: &Caller, bucket: &str) -> Result<QuotaReport> {
        self.authorize(caller, bucket, None, coffer_core::Action::List).await?;
        self.quota_report(&QuotaScope::Bucket(bucket.to_owned())).await
    }

    /// A user's quota and usage: the user themself, or the platform admin.
    pub async fn user_quota(&self, caller: &Caller, user: &str) -> Result<QuotaReport> {
        if caller.principal.name != user && !caller.principal.is_admin {
            return Err(Error::Forbidden("only the platform admin may see another user's quota".into()));
        }
        self.quota_report(&QuotaScope::User(user.to_owned())).await
    }

    /// Set a quota through the API: the platform admin only.
    pub async fn set_quota(
        &self,
        caller: &Caller,
        scope: QuotaScope,
        max_bytes: Option<u64>,
        max_objects: Option<u64>,
    ) -> Result<Quota> {
        self.require_platform_admin(caller)?;
        self.admin_set_quota(scope, max_bytes, max_objects).await
    }

    /// Remove a quota through the API: the platform admin only.
    pub async fn remove_quota(&self, caller: &Caller, scope: &QuotaScope) -> Result<()> {
        self.require_platform_admin(caller)?;
        self.admin_remove_quota(scope).await
    }

    /// Every user record with their quota (if any) and usage, for the platform admin (a
    /// credential narrowed to some buckets is not enough). The usage is the tracked one —
    /// every bucket under a quota is tracked; `untracked_buckets` counts the others, which
    /// [`Gateway::user_quota`] measures.
    pub async fn list_users(&self, caller: &Caller) -> Result<Vec<UserReport>> {
        if !caller.principal.is_admin || caller.narrowing.buckets.is_some() {
            return Err(Error::Forbidden("only the platform admin may list users".into()));
        }
        let mut quotas: std::collections::BTreeMap<String, Quota> = self
            .store
            .list_quotas()
            .await?
            .into_iter()
            .filter_map(|q| match &q.scope {
                QuotaScope::User(u) => Some((u.clone(), q.clone())),
                QuotaScope::Bucket(_) => None,
            })
            .collect();
        let mut out = Vec::new();
        for user in self.store.list_users().await? {
            let (usage, untracked) = self.store.owner_usage(user.name.as_str()).await?;
            let quota = quotas.remove(user.name.as_str());
            out.push(UserReport { user, quota, usage, untracked_buckets: untracked as u64 });
        }
        Ok(out)
    }

    fn require_platform_admin(&self, caller: &Caller) -> Result<()> {
        let admin = caller.principal.is_admin
            && caller.narrowing.buckets.is_none()
            && !caller.narrowing.read_only
            && !caller.read_only_endpoint;
        if admin { Ok(()) } else { Err(Error::Forbidden("only the platform admin may change quotas".into())) }
    }
}

/// A body cut off after `left` bytes: one byte more and it fails (and says so).
struct Limited {
    inner: ByteStream,
    left: u64,
    exceeded: Arc<AtomicBool>,
}

impl Stream for Limited {
    type Item = std::result::Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match this.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                let n = chunk.len() as u64;
                if n > this.left {
                    this.exceeded.store(true, Ordering::Release);
                    return Poll::Ready(Some(Err(std::io::Error::other("the body exceeds the quota"))));
                }
                this.left -= n;
                Poll::Ready(Some(Ok(chunk)))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;

    use super::*;

    #[tokio::test]
    async fn a_body_past_its_allowance_fails_and_says_so() {
        let chunks = || {
            let v: Vec<std::io::Result<Bytes>> = vec![Ok(Bytes::from_static(b"12345")), Ok(Bytes::from_static(b"678"))];
            Box::pin(futures::stream::iter(v))
        };
        let flag = Arc::new(AtomicBool::new(false));
        let mut s = Limited { inner: chunks(), left: 7, exceeded: flag.clone() };
        assert_eq!(s.next().await.unwrap().unwrap(), Bytes::from_static(b"12345"));
        assert!(s.next().await.unwrap().is_err());
        assert!(flag.load(Ordering::Acquire));
        let flag = Arc::new(AtomicBool::new(false));
        let s = Limited { inner: chunks(), left: 8, exceeded: flag.clone() };
        assert_eq!(s.map(|c| c.unwrap().len()).collect::<Vec<_>>().await, vec![5, 3]);
        assert!(!flag.load(Ordering::Acquire));
    }
}
