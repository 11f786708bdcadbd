//! Sharing, by a bucket's admins: list, add and remove grants; and projects — a bucket owned
//! by the project (`project:<name>`), its creator its first admin, its members granted.

use coffer_core::{Action, Bucket, Grant, Grantee, Role, UserName};

use crate::{Caller, Error, Gateway, Result, now};

/// The owner name of a project's bucket.
pub fn project_owner(name: &str) -> String {
    format!("project:{name}")
}

fn grantee_name(g: &Grantee) -> Result<()> {
    UserName::parse(g.name()).map(|_| ()).map_err(|e| Error::InvalidArgument(e.to_string()))
}

impl Gateway {
    /// The grants on a bucket (bucket admins only).
    pub async fn list_grants(&self, caller: &Caller, bucket: &str) -> Result<Vec<Grant>> {
        self.authorize(caller, bucket, None, Action::Admin).await?;
        Ok(self.store.list_grants(Some(bucket)).await?)
    }

    /// Grant (or change) a role on a bucket (bucket admins only).
    pub async fn put_grant(&self, caller: &Caller, bucket: &str, grantee: Grantee, role: Role) -> Result<Grant> {
        let b = self.authorize(caller, bucket, None, Action::Admin).await?;
        grantee_name(&grantee)?;
        let grant = Grant { bucket: b.name, grantee, role, created_at: now() };
        self.store.put_grant(&grant).await?;
        self.cache.invalidate();
        Ok(grant)
    }

    /// Remove a grant (bucket admins only).
    pub async fn remove_grant(&self, caller: &Caller, bucket: &str, grantee: &Grantee) -> Result<()> {
        self.authorize(caller, bucket, None, Action::Admin).await?;
        self.store.remove_grant(bucket, grantee).await?;
        self.cache.invalidate();
        Ok(())
    }

    /// Create a project: its bucket (named after it, owned by `project:<name>`, in the
    /// default tier, unclassified) and an admin grant for its creator.
    pub async fn create_project(&self, caller: &Caller, name: &str) -> Result<Bucket> {
        let bucket_name = crate::buckets::parse_bucket_name(name)?;
        let classification = coffer_core::Classification::unclassified();
        if self.store.get_bucket(name).await?.is_some() {
            return Err(Error::BucketAlreadyExists);
        }
        self.authorize_create(caller, &bucket_name, &classification)?;
        let bucket = Bucket {
            name: bucket_name.clone(),
            owner: project_owner(name),
            tier: self.default_tier.clone(),
            classification,
            created_at: now(),
        };
        self.insert_bucket(&bucket).await.map_err(|e| match e {
            Error::Conflict(_) => Error::BucketAlreadyExists,
            e => e,
        })?;
        let creator = Grant {
            bucket: bucket_name,
            grantee: Grantee::User(caller.principal.name.clone()),
            role: Role::Admin,
            created_at: now(),
        };
        self.store.put_grant(&creator).await?;
        self.cache.invalidate();
        Ok(bucket)
    }
}
