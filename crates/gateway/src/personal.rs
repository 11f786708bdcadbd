//! Personal buckets: every user gets one, created on the first authenticated request.
//!
//! The name comes from a template over the user name (`{user}`), made S3-valid: lowercase,
//! every character outside `a-z 0-9 -` turned into `-`, runs of `-` collapsed, cut to fit.
//! If another owner already holds that name, the user's bucket takes a suffix derived from
//! the user name (`-<6 hex>`), so the choice is stable and never lands on someone else's.

use coffer_core::{Bucket, BucketName, Classification};
use md5::{Digest, Md5};

use crate::{Error, Gateway, Result, now};

/// The personal-bucket rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalBuckets {
    /// The name template; `{user}` is replaced by the user name.
    pub template: String,
}

fn short_hash(user: &str) -> String {
    hex::encode(&Md5::digest(user.as_bytes())[..3])
}

/// The candidate names for `user`, in order: the plain one, then the suffixed one.
pub fn candidates(template: &str, user: &str) -> Vec<String> {
    let raw = template.replace("{user}", &user.to_lowercase());
    let mut name = String::with_capacity(raw.len());
    for c in raw.chars() {
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' };
        if !(c == '-' && name.ends_with('-')) {
            name.push(c);
        }
    }
    let base = name.trim_matches('-').to_owned();
    let suffix = short_hash(user);
    let mut out = Vec::new();
    let plain: String = base.chars().take(63).collect::<String>().trim_end_matches('-').to_owned();
    if BucketName::parse(&plain).is_ok() && !crate::buckets::RESERVED_BUCKET_NAMES.contains(&plain.as_str()) {
        out.push(plain);
    }
    let cut: String = base.chars().take(63 - 7).collect::<String>().trim_end_matches('-').to_owned();
    let suffixed = if cut.is_empty() { format!("u-{suffix}") } else { format!("{cut}-{suffix}") };
    if BucketName::parse(&suffixed).is_ok() {
        out.push(suffixed);
    }
    out
}

impl Gateway {
    /// Enable personal buckets.
    pub fn with_personal_buckets(mut self, rule: PersonalBuckets) -> Self {
        self.personal = Some(rule);
        self
    }

    /// The names `user`'s personal bucket may have (none when personal buckets are off);
    /// theirs is the one of these they own.
    pub fn personal_bucket_names(&self, user: &str) -> Vec<String> {
        self.personal.as_ref().map(|rule| candidates(&rule.template, user)).unwrap_or_default()
    }

    /// Make sure `user` has a personal bucket (when enabled); returns its name. Cheap after
    /// the first call: the answer is cached until the metadata changes.
    pub async fn ensure_personal_bucket(&self, user: &str) -> Result<Option<String>> {
        let Some(rule) = &self.personal else { return Ok(None) };
        if self.check_new_bucket(&self.default_tier, &Classification::unclassified(), true).is_err() {
            // Configured so (the default tier holds no unclassified data, or is read-only).
            return Ok(None);
        }
        if self.cache.has_personal(user) {
            return Ok(None);
        }
        let generation = self.cache.generation();
        for name in candidates(&rule.template, user) {
            match self.store.get_bucket(&name).await? {
                Some(b) if b.owner == user => {
                    self.cache.put_personal(generation, user);
                    return Ok(Some(name));
                }
                Some(_) => continue,
                None => {
                    let bucket = Bucket {
                        name: BucketName::parse(&name).map_err(|e| Error::Internal(e.to_string()))?,
                        owner: user.to_owned(),
                        tier: self.default_tier.clone(),
                        classification: Classification::unclassified(),
                        created_at: now(),
                    };
                    match self.insert_bucket(&bucket).await {
                        Ok(()) => {
                            tracing::info!(user, bucket = %name, "created the personal bucket");
                            return Ok(Some(name));
                        }
                        // Created concurrently (another replica, another request): look again.
                        Err(Error::Conflict(_)) => {
                            if let Some(b) = self.store.get_bucket(&name).await?
                                && b.owner == user
                            {
                                return Ok(Some(name));
                            }
                        }
                        Err(e) => return Err(e),
                    }
                }
            }
        }
        tracing::warn!(user, "no free name for the personal bucket");
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_s3_valid() {
        assert_eq!(candidates("{user}", "alice")[0], "alice");
        assert_eq!(candidates("home-{user}", "Alice.Smith@Example.com")[0], "home-alice-smith-example-com");
        assert_eq!(candidates("{user}", "system:serviceaccount:ns:sa")[0], "system-serviceaccount-ns-sa");
        let long = "x".repeat(100);
        assert!(candidates("{user}", &long).iter().all(|n| n.len() <= 63));
        // too short for a bucket: only the suffixed name
        let short = candidates("{user}", "a");
        assert_eq!(short.len(), 1);
        assert!(short[0].starts_with("a-") && short[0].len() == 8);
        // reserved names are skipped
        assert!(!candidates("{user}", "metrics").contains(&"metrics".to_owned()));
        // the suffix is stable per user and differs between users
        assert_eq!(candidates("{user}", "bob")[1], candidates("{user}", "bob")[1]);
        assert_ne!(candidates("{user}", "bob")[1], candidates("{user}", "Bob")[1]);
        assert!(candidates("{user}", "___")[0].starts_with("u-"));
    }
}
