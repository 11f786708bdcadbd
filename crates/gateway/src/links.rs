//! Share links: an expiring, revocable, read-only URL for one object or a prefix, for
//! people with no account (a colleague in another team, a reviewer).
//!
//! - Making one needs `read` on the bucket; the object must exist. Links are allowed only
//!   on buckets of the configured classifications (default `unclassified`): a link is a
//!   bearer secret that opens anywhere, so classified data never leaves through one.
//! - The URL's token is `<id>.<mac>` (see `coffer_identity::share`); the database keeps
//!   the id only.
//! - Each use is authorized again, as the creator (the principal as it was when the link
//!   was made) under a narrowing to that bucket, read-only, until the link's expiry — the
//!   same decision and the same use cases as any other read. A creator who lost read
//!   access, a revoked link or an expired one opens nothing.
//! - The creator, the bucket's admins and the platform admin may revoke a link.

use std::collections::BTreeSet;

use coffer_core::{Action, BucketName, Classification, Narrowing, ShareLink, ShareTarget};
use coffer_identity::share;

use crate::{Caller, Error, Gateway, Result, now};

/// The rules for share links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRules {
    /// Validity when the request names none, in seconds.
    pub default_expiry: i64,
    /// The longest validity, in seconds.
    pub max_expiry: i64,
    /// Buckets of these classifications may be shared by link.
    pub classifications: BTreeSet<Classification>,
}

/// The shortest validity a link may be asked for, in seconds.
pub const MIN_LINK_EXPIRY: i64 = 60;

impl Default for LinkRules {
    fn default() -> Self {
        Self {
            default_expiry: 7 * 86_400,
            max_expiry: 90 * 86_400,
            classifications: BTreeSet::from([Classification::unclassified()]),
        }
    }
}

/// A link as its manager sees it: the record and its token (the secret part of the URL;
/// its `Debug` leaves the token out).
#[derive(Clone, PartialEq, Eq)]
pub struct LinkView {
    pub link: ShareLink,
    pub token: String,
}

impl std::fmt::Debug for LinkView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkView").field("link", &self.link).field("token", &"<redacted>").finish()
    }
}

fn no_link() -> Error {
    Error::NotFound("no such share link".into())
}

impl Gateway {
    /// Use these rules for share links.
    pub fn with_link_rules(mut self, rules: LinkRules) -> Self {
        self.links = rules;
        self
    }

    pub fn link_rules(&self) -> &LinkRules {
        &self.links
    }

    fn view(&self, link: ShareLink) -> LinkView {
        LinkView { token: share::link_token(&self.server_key, &link.id), link }
    }

    fn check_link_classification(&self, classification: &Classification) -> Result<()> {
        if self.links.classifications.contains(classification) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!("objects classified {classification} cannot be shared by link")))
        }
    }

    /// Make a link to `target` in `bucket`, valid `expires_in` seconds (default and bounds
    /// from the rules).
    pub async fn create_share_link(
        &self,
        caller: &Caller,
        bucket: &str,
        target: ShareTarget,
        expires_in: Option<i64>,
    ) -> Result<LinkView> {
        let expires_in = expires_in.unwrap_or(self.links.default_expiry);
        if !(MIN_LINK_EXPIRY..=self.links.max_expiry).contains(&expires_in) {
            return Err(Error::InvalidArgument(format!(
                "expires_in_seconds must be between {MIN_LINK_EXPIRY} and {}",
                self.links.max_expiry
            )));
        }
        let b = match &target {
            ShareTarget::Object(key) => {
                crate::objects::parse_key(key)?;
                if key.contains('\0') {
                    return Err(Error::InvalidArgument("the key is not a valid object key".into()));
                }
                let b = self.authorize(caller, bucket, Some(key), Action::Read).await?;
                self.tier(&b.tier)?.head_object(bucket, key).await?;
                b
            }
            ShareTarget::Prefix(prefix) => {
                if prefix.len() > coffer_core::ObjectKey::MAX_LEN || prefix.contains('\0') {
                    return Err(Error::InvalidArgument("the prefix is not a valid key prefix".into()));
                }
                self.authorize(caller, bucket, Some(prefix), Action::Read).await?
            }
        };
        self.check_link_classification(&b.classification)?;
        let t = now();
        let link = ShareLink {
            id: share::new_link_id(),
            creator: caller.principal.clone(),
            bucket: b.name,
            target,
            created_at: t,
            expires_at: t + expires_in,
            revoked_at: None,
        };
        self.store.create_share_link(&link).await?;
        tracing::info!(
            target: "coffer::audit",
            principal = %caller.principal.name,
            link = %link.id,
            bucket,
            expires_at = link.expires_at,
            "share link created"
        );
        Ok(self.view(link))
    }

    /// The caller's links, newest first.
    pub async fn list_own_links(&self, caller: &Caller) -> Result<Vec<LinkView>> {
        let links = self.store.list_share_links(Some(&caller.principal.name), None).await?;
        Ok(links.into_iter().map(|l| self.view(l)).collect())
    }

    /// Every link on a bucket (bucket admins only), newest first.
    pub async fn list_bucket_links(&self, caller: &Caller, bucket: &str) -> Result<Vec<LinkView>> {
        self.authorize(caller, bucket, None, Action::Admin).await?;
        let links = self.store.list_share_links(None, Some(bucket)).await?;
        Ok(links.into_iter().map(|l| self.view(l)).collect())
    }

    /// Revoke a link: its creator, an admin of its bucket, or the platform admin.
    pub async fn revoke_share_link(&self, caller: &Caller, id: &str) -> Result<()> {
        if !share::is_link_id(id) {
            return Err(no_link());
        }
        let link = self.store.get_share_link(id).await?.ok_or_else(no_link)?;
        if link.creator.name != caller.principal.name {
            self.authorize(caller, link.bucket.as_str(), None, Action::Admin).await?;
        }
        self.store.revoke_share_link(id, now()).await?;
        tracing::info!(target: "coffer::audit", principal = %caller.principal.name, link = id, "share link revoked");
        Ok(())
    }

    /// Open a link from its URL token: the link, and the caller to act as for reading
    /// through it. `NotFound` for an unknown or forged token, `Gone` once expired or revoked.
    pub async fn open_share_link(&self, token: &str, request_id: &str, source: &str) -> Result<(ShareLink, Caller)> {
        let id = share::verify_link_token(&self.server_key, token).ok_or_else(no_link)?;
        let link = self.store.get_share_link(&id).await?.ok_or_else(no_link)?;
        if link.revoked_at.is_some() {
            return Err(Error::Gone("this share link was revoked".into()));
        }
        if now() >= link.expires_at {
            return Err(Error::Gone("this share link has expired".into()));
        }
        let caller = Caller {
            principal: link.creator.clone(),
            narrowing: Narrowing {
                read_only: true,
                buckets: Some(BTreeSet::<BucketName>::from([link.bucket.clone()])),
                classification: None,
                expires_at: Some(link.expires_at),
            },
            access_key_id: format!("share:{}", link.id),
            request_id: request_id.to_owned(),
            source: source.to_owned(),
            read_only_endpoint: false,
        };
        // The rules may have changed since the link was made.
        let entry = self.bucket_entry(link.bucket.as_str()).await?;
        if let Some(b) = &entry.bucket {
            self.check_link_classification(&b.classification)?;
        }
        Ok((link, caller))
    }
}

/// The key a link opens for a request: an object link opens its object (`sub` must be
/// empty); a prefix link opens `prefix + sub`.
pub fn key_through(target: &ShareTarget, sub: &str) -> Result<String> {
    match target {
        ShareTarget::Object(key) if sub.is_empty() => Ok(key.clone()),
        ShareTarget::Object(_) => Err(no_link()),
        ShareTarget::Prefix(_) if sub.is_empty() => Err(Error::InvalidArgument("name an object under the link".into())),
        ShareTarget::Prefix(prefix) => Ok(format!("{prefix}{sub}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_through_links() {
        let obj = ShareTarget::Object("reports/q3.pdf".into());
        assert_eq!(key_through(&obj, "").unwrap(), "reports/q3.pdf");
        assert!(matches!(key_through(&obj, "other"), Err(Error::NotFound(_))));
        let dir = ShareTarget::Prefix("reports/".into());
        assert_eq!(key_through(&dir, "q3.pdf").unwrap(), "reports/q3.pdf");
        assert_eq!(key_through(&dir, "../x").unwrap(), "reports/../x");
        assert!(key_through(&dir, "").is_err());
        let all = ShareTarget::Prefix(String::new());
        assert_eq!(key_through(&all, "a/b").unwrap(), "a/b");
    }
}
