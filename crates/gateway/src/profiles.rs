//! Kubernetes profiles, for the controller: a profile (a namespace) is a principal of its
//! own — the name its service accounts act as — owning one bucket per tier, which its
//! owner administers; CSI drivers reach those buckets with keys narrowed to them.
//!
//! These are operator use cases, like [`crate::admin`]: whoever runs the controller holds
//! the database; every record still passes the same parsing and tier rules.

use std::collections::BTreeSet;

use coffer_core::{Bucket, Classification, Grantee, Role, User, UserName};

use crate::{Error, Gateway, Result, now};

fn invalid(e: impl std::fmt::Display) -> Error {
    Error::InvalidArgument(e.to_string())
}

impl Gateway {
    /// What a profile is cleared for: `unclassified`, plus its namespace's clearances.
    pub fn profile_clearance(&self, profile: &str) -> BTreeSet<Classification> {
        self.clearances.principal(profile, &BTreeSet::new(), Some(profile)).clearance
    }

    /// The profile's user record (keys need one), kept cleared as its namespace is.
    pub async fn ensure_profile_user(&self, profile: &str) -> Result<User> {
        let clearance = self.profile_clearance(profile);
        match self.store.get_user(profile).await? {
            Some(mut u) if u.clearance != clearance => {
                u.clearance = clearance;
                self.store.update_user(&u).await?;
                self.cache.invalidate();
                Ok(u)
            }
            Some(u) => Ok(u),
            None => {
                let user = User {
                    name: UserName::parse(profile).map_err(invalid)?,
                    groups: BTreeSet::from([format!("system:serviceaccounts:{profile}")]),
                    clearance,
                    is_admin: false,
                    created_at: now(),
                };
                match self.store.create_user(&user).await {
                    Ok(()) | Err(coffer_metadata::Error::Conflict { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
                self.cache.invalidate();
                Ok(user)
            }
        }
    }

    /// The profile's bucket `name` on `tier`: made (owned by the profile) if absent; its
    /// `owner` (a user) made admin. A bucket of that name owned by someone else is a
    /// `Conflict`: the controller reports it rather than pick another name, since the
    /// profile's volume is named after the bucket.
    pub async fn ensure_profile_bucket(
        &self,
        profile: &str,
        name: &str,
        tier: &str,
        classification: &str,
        owner: Option<&str>,
    ) -> Result<Bucket> {
        let classification = Classification::parse(classification).map_err(invalid)?;
        let bucket = match self.store.get_bucket(name).await? {
            Some(b) if b.owner == profile => {
                if b.tier != tier || b.classification != classification {
                    tracing::warn!(
                        bucket = name,
                        tier = %b.tier,
                        classification = %b.classification,
                        "the profile's bucket keeps its tier and classification (they are fixed when it is made)"
                    );
                }
                b
            }
            Some(b) => {
                return Err(Error::Conflict(format!("bucket {name} belongs to {}, not to profile {profile}", b.owner)));
            }
            None => {
                let tier = self.resolve_tier(Some(tier))?;
                self.check_new_bucket(&tier, &classification, false)?;
                let bucket = Bucket {
                    name: crate::buckets::parse_bucket_name(name)?,
                    owner: profile.to_owned(),
                    tier,
                    classification,
                    created_at: now(),
                };
                match self.insert_bucket(&bucket).await {
                    Ok(()) => {
                        tracing::info!(profile, bucket = name, tier = %bucket.tier, "made the profile's bucket");
                        bucket
                    }
                    // Made concurrently by another replica: use it if it is the profile's.
                    Err(Error::Conflict(_)) => match self.store.get_bucket(name).await? {
                        Some(b) if b.owner == profile => b,
                        _ => return Err(Error::Conflict(format!("bucket {name} is taken"))),
                    },
                    Err(e) => return Err(e),
                }
            }
        };
        if let Some(owner) = owner {
            let grantee = Grantee::User(owner.to_owned());
            let has =
                self.store.list_grants(Some(name)).await?.iter().any(|g| g.grantee == grantee && g.role == Role::Admin);
            if !has {
                self.admin_put_grant(name, grantee, Role::Admin).await?;
            }
        }
        Ok(bucket)
    }

    /// Is this access key in force (it exists, is not revoked and has not expired)?
    pub async fn key_is_active(&self, access_key_id: &str) -> Result<bool> {
        Ok(self
            .store
            .get_access_key(access_key_id)
            .await?
            .is_some_and(|k| k.revoked_at.is_none() && k.narrowing.expires_at.is_none_or(|t| t > now())))
    }
}
