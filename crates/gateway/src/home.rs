//! The home view: one virtual bucket (default `home`) whose top-level prefixes are the
//! buckets the caller may read — `home/<bucket>/<key>` is `<key>` in `<bucket>`.
//!
//! A notebook mounts `home` once and sees every bucket shared with its user, including one
//! shared a second ago: the listing is computed for each request from the grants as they
//! are then. Every operation through the view is the same use case on the underlying bucket,
//! authorized (and audited) against that bucket; nothing is stored for the view itself.
//!
//! Listing: the view's keys are `<bucket>/<key>` over the readable buckets, in S3 order
//! (buckets sorted by `<name>/`, which is the order of their keys). With a delimiter, each
//! bucket rolls up into its common prefix `<bucket>/` without being read, so a bucket
//! shared with you shows as a folder even while empty. A prefix naming a bucket you cannot
//! read lists nothing (it does not say whether the bucket exists).

use coffer_backend::{ListEntry, ListPage, ListQuery};
use coffer_core::{Bucket, BucketName, Classification};

use crate::{Caller, Error, Gateway, Result};

/// The default name of the home view.
pub const DEFAULT_HOME: &str = "home";

/// A key of the view, split into the underlying bucket and key.
pub fn split(key: &str) -> Option<(&str, &str)> {
    let (bucket, rest) = key.split_once('/')?;
    (!bucket.is_empty() && !rest.is_empty()).then_some((bucket, rest))
}

impl Gateway {
    /// Serve the home view under `name` (`None`: no home view).
    pub fn with_home_bucket(mut self, name: Option<String>) -> Self {
        self.home = name;
        self
    }

    /// The home view's name, if it is served.
    pub fn home_bucket(&self) -> Option<&str> {
        self.home.as_deref()
    }

    /// Is `bucket` the home view?
    pub fn is_home(&self, bucket: &str) -> bool {
        self.home.as_deref() == Some(bucket)
    }

    /// The underlying bucket and key of (`bucket`, `key`): itself, or through the view.
    /// `InvalidArgument` for a key of the view that names no bucket and key.
    pub(crate) fn route<'a>(&self, bucket: &'a str, key: &'a str) -> Result<(&'a str, &'a str)> {
        if !self.is_home(bucket) {
            return Ok((bucket, key));
        }
        split(key).ok_or_else(|| {
            Error::InvalidArgument(format!("keys in {bucket} are <bucket>/<key>: {key:?} names no object in a bucket"))
        })
    }

    /// As [`Gateway::route`], for reads: a key naming no object is `NoSuchKey`.
    pub(crate) fn route_read<'a>(&self, bucket: &'a str, key: &'a str) -> Result<(&'a str, &'a str)> {
        self.route(bucket, key).map_err(|e| if self.is_home(bucket) { Error::NoSuchKey } else { e })
    }

    /// The view as a bucket record (owned by its caller), for listings' owner fields.
    pub(crate) fn home_record(&self, caller: &Caller) -> Result<Bucket> {
        let name = self.home.as_deref().unwrap_or(DEFAULT_HOME);
        Ok(Bucket {
            name: BucketName::parse(name).map_err(|e| Error::Internal(e.to_string()))?,
            owner: caller.principal.name.clone(),
            tier: self.default_tier.clone(),
            classification: Classification::unclassified(),
            created_at: 0,
        })
    }

    /// A page of the view (see the module documentation).
    pub(crate) async fn list_home(&self, caller: &Caller, q: &ListQuery) -> Result<(Bucket, ListPage)> {
        let record = self.home_record(caller)?;
        let mut roots: Vec<String> = self
            .visible_buckets(caller)
            .await?
            .into_iter()
            .map(|(b, _)| format!("{}/", b.name.as_str()))
            .filter(|root| root.starts_with(&q.prefix) || q.prefix.starts_with(root.as_str()))
            .collect();
        roots.sort();
        let mut page = ListPage::default();
        let max = q.max_keys;
        if max == 0 {
            return Ok((record, page));
        }
        let after = q.start_after.as_deref();
        for (i, root) in roots.iter().enumerate() {
            let more_after = i + 1 < roots.len();
            // The whole bucket rolls up into one common prefix.
            if let Some(d) = q.delimiter.as_deref()
                && q.prefix.len() < root.len()
                && let Some(at) = root[q.prefix.len()..].find(d)
            {
                let cp = format!("{}{}", q.prefix, &root[q.prefix.len()..q.prefix.len() + at + d.len()]);
                let seen = matches!(page.entries.last(), Some(ListEntry::CommonPrefix(p)) if *p == cp);
                if seen || after.is_some_and(|a| a >= cp.as_str()) {
                    continue;
                }
                page.entries.push(ListEntry::CommonPrefix(cp));
                if page.entries.len() == max {
                    page.is_truncated = more_after;
                    return Ok((record, page));
                }
                continue;
            }
            let inner_after = match after {
                Some(a) if a.starts_with(root.as_str()) => Some(a[root.len()..].to_owned()),
                Some(a) if a > root.as_str() => continue, // every key of this bucket is before it
                _ => None,
            };
            let bucket = &root[..root.len() - 1];
            let inner = ListQuery {
                prefix: q.prefix.strip_prefix(root.as_str()).unwrap_or("").to_owned(),
                delimiter: q.delimiter.clone(),
                start_after: inner_after,
                max_keys: max - page.entries.len(),
            };
            let sub = match self.list_bucket(caller, bucket, &inner).await {
                Ok((_, sub)) => sub,
                // Unshared (or deleted) since the bucket list was read: it has nothing to show.
                Err(Error::AccessDenied | Error::NoSuchBucket) => continue,
                Err(e) => return Err(e),
            };
            for e in sub.entries {
                page.entries.push(match e {
                    ListEntry::Object(mut o) => {
                        o.key = format!("{root}{}", o.key);
                        ListEntry::Object(o)
                    }
                    ListEntry::CommonPrefix(p) => ListEntry::CommonPrefix(format!("{root}{p}")),
                });
            }
            if page.entries.len() == max {
                page.is_truncated = sub.is_truncated || more_after;
                return Ok((record, page));
            }
        }
        Ok((record, page))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_the_view() {
        assert_eq!(split("data/a/b.csv"), Some(("data", "a/b.csv")));
        assert_eq!(split("data/"), None);
        assert_eq!(split("data"), None);
        assert_eq!(split("/x"), None);
        assert_eq!(split("data//x"), Some(("data", "/x")));
    }
}
