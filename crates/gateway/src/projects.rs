//! Projects: a team's storage. A project named `N` owns the bucket `N` (owner
//! `project:N`); its members are the users and groups granted a role on the project's
//! buckets. Creating a project makes its bucket and its creator the first admin; project
//! admins add, change and remove members (users or groups, with `read`, `write` or
//! `admin`), and a project always keeps at least one admin.
//!
//! Membership *is* a grant, so the one authorization decision applies to project buckets
//! unchanged and `coffer admin explain` names the member's grant.

use coffer_core::{Action, Bucket, Classification, Grant, Grantee, Role};

use crate::grants::grantee_name;
use crate::{Caller, Error, Gateway, Result, now};

/// The owner name of a project's buckets.
pub fn project_owner(name: &str) -> String {
    format!("project:{name}")
}

/// The project a bucket owner names, if it is one.
pub fn project_of(owner: &str) -> Option<&str> {
    owner.strip_prefix("project:")
}

/// A project as its members see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub name: String,
    /// Its buckets, by name; the first is the bucket named after it.
    pub buckets: Vec<Bucket>,
    /// The caller's role in it.
    pub role: Role,
    /// When its bucket was created (Unix seconds).
    pub created_at: i64,
}

fn no_project(name: &str) -> Error {
    Error::NotFound(format!("project {name:?} does not exist"))
}

impl Gateway {
    /// Create a project: its bucket (named after it, owned by `project:<name>`, in the
    /// default tier, unclassified) and an admin grant for its creator.
    pub async fn create_project(&self, caller: &Caller, name: &str) -> Result<Project> {
        let bucket_name = crate::buckets::parse_bucket_name(name)?;
        let classification = Classification::unclassified();
        if self.store.get_bucket(name).await?.is_some() {
            return Err(Error::BucketAlreadyExists);
        }
        self.authorize_create(caller, &bucket_name, &classification)?;
        self.check_new_bucket(&self.default_tier, &classification, true)?;
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
        Ok(Project { name: name.to_owned(), created_at: bucket.created_at, buckets: vec![bucket], role: Role::Admin })
    }

    /// The projects the caller is a member of (may read), by name.
    pub async fn list_projects(&self, caller: &Caller) -> Result<Vec<Project>> {
        let mut out: Vec<Project> = Vec::new();
        for b in self.store.list_buckets().await? {
            let Some(project) = project_of(&b.owner) else { continue };
            let entry = self.bucket_entry(b.name.as_str()).await?;
            let Some(role) = self.role_on(caller, &entry) else { continue };
            match out.iter_mut().find(|p| p.name == project) {
                Some(p) => {
                    p.role = p.role.max(role);
                    p.buckets.push(b);
                }
                None => {
                    out.push(Project { name: project.to_owned(), created_at: b.created_at, buckets: vec![b], role })
                }
            }
        }
        for p in &mut out {
            // The bucket named after the project first.
            p.buckets.sort_by_key(|b| b.name.as_str() != p.name);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// The project's own bucket, after checking the caller may do `action` in the project.
    async fn project_bucket(&self, caller: &Caller, name: &str, action: Action) -> Result<Bucket> {
        let entry = self.bucket_entry(name).await?;
        match &entry.bucket {
            Some(b) if project_of(&b.owner) == Some(name) => {}
            _ => return Err(no_project(name)),
        }
        self.authorize(caller, name, None, action).await
    }

    /// Every bucket the project owns, its own first.
    async fn project_buckets(&self, name: &str) -> Result<Vec<Bucket>> {
        let owner = project_owner(name);
        let mut all: Vec<Bucket> = self.store.list_buckets().await?.into_iter().filter(|b| b.owner == owner).collect();
        all.sort_by_key(|b| b.name.as_str() != name);
        Ok(all)
    }

    /// One project, for its members.
    pub async fn get_project(&self, caller: &Caller, name: &str) -> Result<Project> {
        let own = self.project_bucket(caller, name, Action::List).await?;
        let entry = self.bucket_entry(name).await?;
        let role = self.role_on(caller, &entry).ok_or(Error::AccessDenied)?;
        Ok(Project {
            name: name.to_owned(),
            created_at: own.created_at,
            buckets: self.project_buckets(name).await?,
            role,
        })
    }

    /// The members: the grants on the project's own bucket (visible to every member).
    pub async fn list_members(&self, caller: &Caller, name: &str) -> Result<Vec<Grant>> {
        self.project_bucket(caller, name, Action::List).await?;
        Ok(self.store.list_grants(Some(name)).await?)
    }

    /// Add a member or change a member's role, on every bucket of the project (project
    /// admins only).
    pub async fn put_member(&self, caller: &Caller, name: &str, member: Grantee, role: Role) -> Result<Grant> {
        self.project_bucket(caller, name, Action::Admin).await?;
        grantee_name(&member)?;
        if role < Role::Admin && self.would_leave_no_admin(name, &member).await? {
            return Err(Error::Conflict(format!("project {name} must keep at least one admin")));
        }
        let mut own = None;
        for b in self.project_buckets(name).await? {
            let g = Grant { bucket: b.name, grantee: member.clone(), role, created_at: now() };
            self.store.put_grant(&g).await?;
            own.get_or_insert(g);
        }
        self.cache.invalidate();
        own.ok_or_else(|| no_project(name))
    }

    /// Remove a member from every bucket of the project (project admins only). The last
    /// admin cannot be removed.
    pub async fn remove_member(&self, caller: &Caller, name: &str, member: &Grantee) -> Result<()> {
        self.project_bucket(caller, name, Action::Admin).await?;
        let grants = self.store.list_grants(Some(name)).await?;
        if !grants.iter().any(|g| g.grantee == *member) {
            return Err(Error::NotFound(format!(
                "{} {} is not a member of project {name}",
                member.kind(),
                member.name()
            )));
        }
        if self.would_leave_no_admin(name, member).await? {
            return Err(Error::Conflict(format!("project {name} must keep at least one admin")));
        }
        for b in self.project_buckets(name).await? {
            match self.store.remove_grant(b.name.as_str(), member).await {
                Ok(()) | Err(coffer_metadata::Error::NotFound { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        self.cache.invalidate();
        Ok(())
    }

    /// Would the project have no admin left if `member` lost the role?
    pub(crate) async fn would_leave_no_admin(&self, name: &str, member: &Grantee) -> Result<bool> {
        let grants = self.store.list_grants(Some(name)).await?;
        Ok(!grants.iter().any(|g| g.role == Role::Admin && g.grantee != *member))
    }

    /// Delete a project: every one of its buckets, which must be empty (project admins
    /// only). Nothing is deleted unless every bucket is empty.
    pub async fn delete_project(&self, caller: &Caller, name: &str) -> Result<()> {
        self.project_bucket(caller, name, Action::Admin).await?;
        let buckets = self.project_buckets(name).await?;
        for b in &buckets {
            let probe =
                coffer_backend::ListQuery { prefix: String::new(), delimiter: None, start_after: None, max_keys: 1 };
            let page = self.tier(&b.tier)?.list_objects(b.name.as_str(), &probe).await?;
            if !page.entries.is_empty() {
                return Err(Error::BucketNotEmpty);
            }
        }
        for b in buckets.iter().rev() {
            self.remove_bucket(b).await?;
        }
        Ok(())
    }
}
