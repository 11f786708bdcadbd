//! Sharing, by a bucket's admins: list, add and remove grants.

use coffer_core::{Action, Bucket, Grant, Grantee, Role, UserName};

use crate::{Caller, Error, Gateway, Result, now};

pub(crate) fn grantee_name(g: &Grantee) -> Result<()> {
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
        if role < Role::Admin {
            self.keep_a_project_admin(&b, &grantee).await?;
        }
        let grant = Grant { bucket: b.name, grantee, role, created_at: now() };
        self.store.put_grant(&grant).await?;
        self.cache.invalidate();
        Ok(grant)
    }

    /// Remove a grant (bucket admins only).
    pub async fn remove_grant(&self, caller: &Caller, bucket: &str, grantee: &Grantee) -> Result<()> {
        let b = self.authorize(caller, bucket, None, Action::Admin).await?;
        self.keep_a_project_admin(&b, grantee).await?;
        self.store.remove_grant(bucket, grantee).await?;
        self.cache.invalidate();
        Ok(())
    }

    /// A project's own bucket keeps at least one admin grant, whichever way its grants are
    /// changed (as members, or as the bucket's grants).
    async fn keep_a_project_admin(&self, bucket: &Bucket, losing: &Grantee) -> Result<()> {
        let name = bucket.name.as_str();
        if crate::projects::project_of(&bucket.owner) == Some(name) && self.would_leave_no_admin(name, losing).await? {
            return Err(Error::Conflict(format!("project {name} must keep at least one admin")));
        }
        Ok(())
    }
}
