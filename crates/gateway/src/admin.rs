//! The operator's use cases: users, buckets, grants, access keys, `explain`, and the
//! bootstrap admin. The admin CLI calls these against the configured store; they make no
//! authorization decision of their own (whoever can run them holds the database), but every
//! record passes the same parsing as on the S3 path.

use std::collections::BTreeSet;

use coffer_core::{
    AccessKey, Action, Bucket, BucketName, Classification, Decision, Grant, Grantee, Narrowing, Role, User, UserName,
};
use coffer_identity::{GeneratedKey, generate_access_key};

use crate::audit::{ChangedBy, KeyChange};
use crate::{Error, Gateway, Result, now};

/// The name of the platform admin created at first start.
pub const BOOTSTRAP_ADMIN: &str = "admin";

/// Who the audit trail says changed a key on the operator's side (a principal no stored
/// user can be: user names have no spaces): `coffer admin` on the command line, the Kubernetes
/// controller, and `coffer serve` making the platform admin's first key.
pub const BY_COMMAND_LINE: &str = "coffer admin";
pub const BY_CONTROLLER: &str = "coffer controller";
const BOOTSTRAP_BY: &str = "coffer serve";

/// A new access key: the record, and the secret — shown once, never again (its `Debug`
/// leaves the secret out).
#[derive(Clone)]
pub struct NewKey {
    pub key: AccessKey,
    pub secret_access_key: String,
}

impl std::fmt::Debug for NewKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewKey").field("key", &self.key).field("secret_access_key", &"<redacted>").finish()
    }
}

fn user_name(s: &str) -> Result<UserName> {
    UserName::parse(s).map_err(|e| Error::InvalidArgument(e.to_string()))
}

fn classifications(list: &[String]) -> Result<BTreeSet<Classification>> {
    list.iter().map(|c| Classification::parse(c).map_err(|e| Error::InvalidArgument(e.to_string()))).collect()
}

impl Gateway {
    pub async fn admin_create_user(
        &self,
        name: &str,
        groups: &[String],
        clearance: &[String],
        is_admin: bool,
    ) -> Result<User> {
        let clearance = if clearance.is_empty() {
            BTreeSet::from([Classification::unclassified()])
        } else {
            classifications(clearance)?
        };
        for g in groups {
            user_name(g).map_err(|_| Error::InvalidArgument(format!("group name {g:?} is invalid")))?;
        }
        if !crate::sessions::external_name_allowed(name) {
            return Err(Error::InvalidArgument(format!("user name {name:?} is reserved for projects")));
        }
        let user = User {
            name: user_name(name)?,
            groups: groups.iter().cloned().collect(),
            clearance,
            is_admin,
            created_at: now(),
        };
        self.store.create_user(&user).await?;
        self.cache.invalidate();
        Ok(user)
    }

    pub async fn admin_list_users(&self) -> Result<Vec<User>> {
        Ok(self.store.list_users().await?)
    }

    pub async fn admin_delete_user(&self, name: &str) -> Result<()> {
        self.store.delete_user(name).await?;
        self.cache.invalidate();
        Ok(())
    }

    /// Create a bucket for `owner` (a user) with a tier and classification.
    pub async fn admin_create_bucket(
        &self,
        name: &str,
        owner: &str,
        tier: Option<&str>,
        classification: Option<&str>,
    ) -> Result<Bucket> {
        let name = crate::buckets::parse_bucket_name(name)?;
        if self.store.get_user(owner).await?.is_none() {
            return Err(Error::NotFound(format!("user {owner:?} does not exist")));
        }
        let classification = match classification {
            Some(c) => Classification::parse(c).map_err(|e| Error::InvalidArgument(e.to_string()))?,
            None => Classification::unclassified(),
        };
        let tier = self.resolve_tier(tier)?;
        self.check_new_bucket(&tier, &classification, false)?;
        let bucket = Bucket { name, owner: owner.to_owned(), tier, classification, created_at: now() };
        self.insert_bucket(&bucket).await?;
        Ok(bucket)
    }

    pub async fn admin_list_buckets(&self) -> Result<Vec<Bucket>> {
        Ok(self.store.list_buckets().await?)
    }

    /// Delete an empty bucket.
    pub async fn admin_delete_bucket(&self, name: &str) -> Result<()> {
        let bucket = self
            .store
            .get_bucket(name)
            .await?
            .ok_or_else(|| Error::NotFound(format!("bucket {name:?} does not exist")))?;
        self.remove_bucket(&bucket).await
    }

    pub async fn admin_put_grant(&self, bucket: &str, grantee: Grantee, role: Role) -> Result<Grant> {
        let bucket = BucketName::parse(bucket).map_err(|e| Error::InvalidBucketName(e.to_string()))?;
        user_name(grantee.name())?;
        let grant = Grant { bucket, grantee, role, created_at: now() };
        self.store.put_grant(&grant).await?;
        self.cache.invalidate();
        Ok(grant)
    }

    pub async fn admin_remove_grant(&self, bucket: &str, grantee: &Grantee) -> Result<()> {
        self.store.remove_grant(bucket, grantee).await?;
        self.cache.invalidate();
        Ok(())
    }

    pub async fn admin_list_grants(&self, bucket: Option<&str>) -> Result<Vec<Grant>> {
        Ok(self.store.list_grants(bucket).await?)
    }

    /// Create an access key for `user`, narrowed as given, on the operator's behalf (`by`
    /// names the tool, for the audit trail). The secret is returned once.
    pub async fn admin_create_key(&self, by: &str, user: &str, narrowing: Narrowing) -> Result<NewKey> {
        let generated = generate_access_key();
        let key = self.store_key(user, &generated, narrowing).await?;
        let rule = format!("the operator, for user {user}");
        self.audit_key_change(&ChangedBy::Operator(by), KeyChange::Created, &generated.access_key_id, true, rule).await;
        Ok(key)
    }

    pub(crate) async fn store_key(&self, user: &str, generated: &GeneratedKey, narrowing: Narrowing) -> Result<NewKey> {
        let key = AccessKey {
            access_key_id: generated.access_key_id.clone(),
            user: user_name(user)?,
            secret_sealed: self.server_key.seal(&generated.access_key_id, &generated.secret_access_key),
            narrowing,
            created_at: now(),
            revoked_at: None,
        };
        self.store.create_access_key(&key).await?;
        self.cache.invalidate();
        Ok(NewKey { key, secret_access_key: generated.secret_access_key.clone() })
    }

    pub async fn admin_list_keys(&self, user: Option<&str>) -> Result<Vec<AccessKey>> {
        Ok(self.store.list_access_keys(user).await?)
    }

    /// Revoke an access key on the operator's behalf (`by` names the tool, for the audit
    /// trail).
    pub async fn admin_revoke_key(&self, by: &str, access_key_id: &str) -> Result<()> {
        self.store.revoke_access_key(access_key_id, now()).await?;
        self.cache.invalidate();
        let rule = "the operator".to_owned();
        self.audit_key_change(&ChangedBy::Operator(by), KeyChange::Revoked, access_key_id, true, rule).await;
        Ok(())
    }

    /// What would `user` be told for `action` on `bucket`, and by which rule — with no
    /// credential narrowing; for a bucket a policy governs, the policy's verdict.
    pub async fn explain(&self, user: &str, bucket: &str, action: Action) -> Result<Decision> {
        let user =
            self.store.get_user(user).await?.ok_or_else(|| Error::NotFound(format!("user {user:?} does not exist")))?;
        let b = self
            .store
            .get_bucket(bucket)
            .await?
            .ok_or_else(|| Error::NotFound(format!("bucket {bucket:?} does not exist")))?;
        let grants = self.store.list_grants(Some(bucket)).await?;
        let caller = crate::Caller {
            principal: user.principal(),
            narrowing: Narrowing::default(),
            access_key_id: "explain".into(),
            request_id: String::new(),
            source: String::new(),
            read_only_endpoint: false,
        };
        Ok(self.decide_for(&caller, &b, &grants, action))
    }

    async fn audit_bootstrap_key(&self, access_key_id: &str) {
        let rule = format!("the platform admin's first key, for user {BOOTSTRAP_ADMIN}");
        self.audit_key_change(&ChangedBy::Operator(BOOTSTRAP_BY), KeyChange::Created, access_key_id, true, rule).await;
    }

    /// Make sure the platform admin exists. With `credentials` (from
    /// `COFFER_ADMIN_ACCESS_KEY` / `COFFER_ADMIN_SECRET_KEY`) make sure that key exists too;
    /// without, generate a key on the very first start only and return it to be printed once.
    pub async fn ensure_bootstrap_admin(&self, credentials: Option<(String, String)>) -> Result<Option<GeneratedKey>> {
        let created = match self.store.get_user(BOOTSTRAP_ADMIN).await? {
            Some(_) => false,
            None => match self.admin_create_user(BOOTSTRAP_ADMIN, &[], &[], true).await {
                Ok(_) => true,
                Err(Error::Conflict(_)) => false, // another replica won the race
                Err(e) => return Err(e),
            },
        };
        match credentials {
            Some((id, secret)) => {
                if id.len() < 3 || secret.len() < 8 {
                    return Err(Error::InvalidArgument(
                        "COFFER_ADMIN_ACCESS_KEY must have 3+ characters and COFFER_ADMIN_SECRET_KEY 8+".into(),
                    ));
                }
                match self.store.get_access_key(&id).await? {
                    Some(k) if k.revoked_at.is_none() => {
                        let stored = self.server_key.open(&k.access_key_id, &k.secret_sealed).map_err(|e| {
                            Error::Internal(format!("cannot open the bootstrap admin's stored secret: {e}"))
                        })?;
                        if stored != secret || k.user.as_str() != BOOTSTRAP_ADMIN {
                            return Err(Error::Conflict(format!(
                                "access key {id} exists with another secret or owner; revoke it first"
                            )));
                        }
                        Ok(None)
                    }
                    Some(_) => Err(Error::Conflict(format!("access key {id} was revoked; choose another id"))),
                    None => {
                        let generated = GeneratedKey { access_key_id: id, secret_access_key: secret };
                        match self.store_key(BOOTSTRAP_ADMIN, &generated, Narrowing::default()).await {
                            Ok(_) => {
                                self.audit_bootstrap_key(&generated.access_key_id).await;
                                Ok(None)
                            }
                            Err(Error::Conflict(_)) => Ok(None),
                            Err(e) => Err(e),
                        }
                    }
                }
            }
            None if created => {
                let generated = generate_access_key();
                self.store_key(BOOTSTRAP_ADMIN, &generated, Narrowing::default()).await?;
                self.audit_bootstrap_key(&generated.access_key_id).await;
                Ok(Some(generated))
            }
            None => Ok(None),
        }
    }
}
