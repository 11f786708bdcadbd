//! A caller's own access keys: create (the secret is returned once), list, revoke.
//!
//! A key acts as a user record of the metadata store. A caller known only from a token or
//! a sidecar's headers gets one on their first key, with the groups and clearance they have
//! at that moment (never the platform-admin flag: a long-term key must not carry a
//! privilege that comes and goes with a group); from then on `coffer admin user` manages it.
//!
//! A key never reaches further than the credential that made it: it inherits the caller's
//! narrowing (read-only, buckets, classification, expiry) and may only narrow it further.

use std::collections::BTreeSet;

use coffer_core::{AccessKey, BucketName, Classification, Narrowing, User, UserName};
use coffer_identity::generate_access_key;

use crate::admin::NewKey;
use crate::audit::{ChangedBy, KeyChange};
use crate::{Caller, Error, Gateway, Result, now};

/// The most keys one user may hold that are neither revoked nor expired.
pub const MAX_ACTIVE_KEYS: usize = 100;
/// The shortest validity a key may be asked for, in seconds.
pub const MIN_KEY_LIFETIME: i64 = 60;

/// What a caller asks for: the key's narrowing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRequest {
    pub read_only: bool,
    /// Only these buckets.
    pub buckets: Option<Vec<String>>,
    /// Only buckets of this classification.
    pub classification: Option<String>,
    /// Seconds from now until the key stops working; none: until revoked.
    pub expires_in: Option<i64>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::InvalidArgument(msg.into())
}

/// The narrowing a request asks for, within the caller's own.
fn narrowing_for(caller: &Narrowing, req: &KeyRequest, now: i64) -> Result<Narrowing> {
    let buckets = match &req.buckets {
        None => caller.buckets.clone(),
        Some(list) => {
            if list.is_empty() {
                return Err(invalid("`buckets` must name at least one bucket (leave it out for every bucket)"));
            }
            let set = list
                .iter()
                .map(|b| BucketName::parse(b).map_err(|e| invalid(e.to_string())))
                .collect::<Result<BTreeSet<_>>>()?;
            if let Some(allowed) = &caller.buckets
                && let Some(outside) = set.iter().find(|b| !allowed.contains(*b))
            {
                return Err(invalid(format!("your credential does not reach bucket {outside}")));
            }
            Some(set)
        }
    };
    let classification = match (&req.classification, &caller.classification) {
        (None, inherited) => inherited.clone(),
        (Some(c), inherited) => {
            let c = Classification::parse(c).map_err(|e| invalid(e.to_string()))?;
            if inherited.as_ref().is_some_and(|i| *i != c) {
                return Err(invalid(format!("your credential is limited to another classification than {c}")));
            }
            Some(c)
        }
    };
    let asked = match req.expires_in {
        None => None,
        Some(s) if s < MIN_KEY_LIFETIME => {
            return Err(invalid(format!("expires_in_seconds must be at least {MIN_KEY_LIFETIME}")));
        }
        Some(s) => Some(now.saturating_add(s)),
    };
    let expires_at = match (asked, caller.expires_at) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    };
    Ok(Narrowing { read_only: req.read_only || caller.read_only, buckets, classification, expires_at })
}

impl Gateway {
    /// The caller's keys, revoked ones included, oldest first.
    pub async fn list_own_keys(&self, caller: &Caller) -> Result<Vec<AccessKey>> {
        Ok(self.store.list_access_keys(Some(&caller.principal.name)).await?)
    }

    /// A new key for the caller; the secret is in the answer and nowhere else.
    pub async fn create_own_key(&self, caller: &Caller, req: &KeyRequest) -> Result<NewKey> {
        let t = now();
        let narrowing = narrowing_for(&caller.narrowing, req, t)?;
        let name = &caller.principal.name;
        if self.store.get_user(name).await?.is_none() {
            self.record_external_user(caller).await?;
        }
        let active = self
            .store
            .list_access_keys(Some(name))
            .await?
            .iter()
            .filter(|k| k.revoked_at.is_none() && k.narrowing.expires_at.is_none_or(|e| e > t))
            .count();
        if active >= MAX_ACTIVE_KEYS {
            return Err(Error::Conflict(format!(
                "you already have {MAX_ACTIVE_KEYS} active access keys; revoke one first"
            )));
        }
        let key = self.store_key(name, &generate_access_key(), narrowing).await?;
        let rule = "a user's own key".to_owned();
        self.audit_key_change(&ChangedBy::Caller(caller), KeyChange::Created, &key.key.access_key_id, true, rule).await;
        Ok(key)
    }

    /// Record a caller known only from a token or headers as a user, as it is now.
    async fn record_external_user(&self, caller: &Caller) -> Result<()> {
        let p = &caller.principal;
        if !crate::sessions::external_name_allowed(&p.name) {
            return Err(Error::Forbidden(format!("the name {:?} cannot hold access keys", p.name)));
        }
        let user = User {
            name: UserName::parse(&p.name).map_err(|e| invalid(e.to_string()))?,
            groups: p.groups.iter().filter(|g| UserName::parse(g).is_ok()).cloned().collect(),
            clearance: p.clearance.clone(),
            is_admin: false,
            created_at: now(),
        };
        match self.store.create_user(&user).await {
            Ok(()) => {
                tracing::info!(user = %p.name, "recorded a federated user for their first access key");
                self.cache.invalidate();
                Ok(())
            }
            // Recorded concurrently: the same outcome.
            Err(coffer_metadata::Error::Conflict { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Revoke one of the caller's keys. Someone else's key answers as absent.
    pub async fn revoke_own_key(&self, caller: &Caller, access_key_id: &str) -> Result<()> {
        let absent = || Error::NotFound(format!("access key {access_key_id:?} does not exist"));
        let key = self.store.get_access_key(access_key_id).await?.ok_or_else(absent)?;
        let by = ChangedBy::Caller(caller);
        if key.user.as_str() != caller.principal.name {
            let rule = "the key is another user's".to_owned();
            self.audit_key_change(&by, KeyChange::Revoked, access_key_id, false, rule).await;
            return Err(absent());
        }
        self.store.revoke_access_key(access_key_id, now()).await?;
        self.cache.invalidate();
        self.audit_key_change(&by, KeyChange::Revoked, access_key_id, true, "a user's own key".to_owned()).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(read_only: bool, buckets: Option<&[&str]>, class: Option<&str>, expires_in: Option<i64>) -> KeyRequest {
        KeyRequest {
            read_only,
            buckets: buckets.map(|b| b.iter().map(|s| s.to_string()).collect()),
            classification: class.map(str::to_owned),
            expires_in,
        }
    }

    fn bucket_set(names: &[&str]) -> Option<BTreeSet<BucketName>> {
        Some(names.iter().map(|n| BucketName::parse(n).unwrap()).collect())
    }

    #[test]
    fn an_unnarrowed_caller_gets_what_it_asks() {
        let n = narrowing_for(&Narrowing::default(), &req(true, Some(&["data"]), Some("protected-b"), Some(600)), 1000)
            .unwrap();
        assert!(n.read_only);
        assert_eq!(n.buckets, bucket_set(&["data"]));
        assert_eq!(n.classification.unwrap().as_str(), "protected-b");
        assert_eq!(n.expires_at, Some(1600));
        assert_eq!(narrowing_for(&Narrowing::default(), &KeyRequest::default(), 1000).unwrap(), Narrowing::default());
    }

    #[test]
    fn a_key_never_reaches_beyond_its_creators_credential() {
        let caller = Narrowing {
            read_only: true,
            buckets: bucket_set(&["aaa", "bbb"]),
            classification: Some(Classification::unclassified()),
            expires_at: Some(5000),
        };
        // inherits everything
        let n = narrowing_for(&caller, &KeyRequest::default(), 1000).unwrap();
        assert_eq!(n, caller);
        // may narrow further
        let n = narrowing_for(&caller, &req(false, Some(&["bbb"]), None, Some(100)), 1000).unwrap();
        assert!(n.read_only);
        assert_eq!(n.buckets, bucket_set(&["bbb"]));
        assert_eq!(n.expires_at, Some(1100));
        // a later expiry is cut to the caller's
        assert_eq!(
            narrowing_for(&caller, &req(false, None, None, Some(1_000_000)), 1000).unwrap().expires_at,
            Some(5000)
        );
        // may not widen
        assert!(narrowing_for(&caller, &req(false, Some(&["ccc"]), None, None), 1000).is_err());
        assert!(narrowing_for(&caller, &req(false, None, Some("protected-b"), None), 1000).is_err());
    }

    #[test]
    fn bad_requests() {
        let none = Narrowing::default();
        assert!(narrowing_for(&none, &req(false, Some(&[]), None, None), 0).is_err());
        assert!(narrowing_for(&none, &req(false, Some(&["Bad_Name"]), None, None), 0).is_err());
        assert!(narrowing_for(&none, &req(false, None, Some("NOT VALID"), None), 0).is_err());
        assert!(narrowing_for(&none, &req(false, None, None, Some(59)), 0).is_err());
        assert!(narrowing_for(&none, &req(false, None, None, Some(-1)), 0).is_err());
    }
}
