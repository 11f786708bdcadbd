//! The read-through cache of what authorization reads on every request: access keys (with
//! their user and opened secret) and buckets (with their grants).
//!
//! Correctness rests on one rule: the cache is dropped whenever the store's revision
//! counter moves, and the counter is polled at least every [`POLL_INTERVAL`]. A fill that
//! started before a drop is discarded (the generation check), so a stale read can never
//! repopulate the cache after a change was seen. A revoked key or grant therefore stops
//! working within one poll plus one query, on every replica and after changes made by any
//! process (`coffer admin` included).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_core::{AccessKey, Bucket, Grant, User};

/// How often the revision counter is read.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// An access key ready for use: its record, its user, and the opened secret.
#[derive(Debug)]
pub struct KeyEntry {
    pub key: AccessKey,
    pub user: User,
    pub secret: String,
}

/// A bucket, its grants and the quotas covering it; `bucket: None` caches "no such bucket".
#[derive(Debug)]
pub struct BucketEntry {
    pub bucket: Option<Bucket>,
    pub grants: Vec<Grant>,
    pub limits: crate::quotas::Limits,
}

#[derive(Default)]
struct Inner {
    generation: u64,
    revision: Option<i64>,
    keys: HashMap<String, Option<Arc<KeyEntry>>>,
    buckets: HashMap<String, Arc<BucketEntry>>,
    /// Principals whose personal bucket is known to exist.
    personal: std::collections::HashSet<String>,
}

/// See the module documentation.
#[derive(Default)]
pub struct Cache {
    inner: Mutex<Inner>,
}

impl Cache {
    /// The generation a fill must present to be kept.
    pub fn generation(&self) -> u64 {
        self.inner.lock().unwrap().generation
    }

    /// Record the store's revision; drop everything if it moved. Returns whether it moved.
    pub fn observe_revision(&self, revision: i64) -> bool {
        let mut g = self.inner.lock().unwrap();
        if g.revision == Some(revision) {
            return false;
        }
        g.revision = Some(revision);
        g.generation += 1;
        g.keys.clear();
        g.buckets.clear();
        g.personal.clear();
        true
    }

    /// Drop everything now (after a change made through this process).
    pub fn invalidate(&self) {
        let mut g = self.inner.lock().unwrap();
        g.generation += 1;
        g.keys.clear();
        g.buckets.clear();
        g.personal.clear();
    }

    pub fn has_personal(&self, principal: &str) -> bool {
        self.inner.lock().unwrap().personal.contains(principal)
    }

    pub fn put_personal(&self, generation: u64, principal: &str) {
        let mut g = self.inner.lock().unwrap();
        if g.generation == generation {
            g.personal.insert(principal.to_owned());
        }
    }

    pub fn key(&self, id: &str) -> Option<Option<Arc<KeyEntry>>> {
        self.inner.lock().unwrap().keys.get(id).cloned()
    }

    pub fn put_key(&self, generation: u64, id: &str, entry: Option<Arc<KeyEntry>>) {
        let mut g = self.inner.lock().unwrap();
        if g.generation == generation {
            g.keys.insert(id.to_owned(), entry);
        }
    }

    pub fn bucket(&self, name: &str) -> Option<Arc<BucketEntry>> {
        self.inner.lock().unwrap().buckets.get(name).cloned()
    }

    pub fn put_bucket(&self, generation: u64, name: &str, entry: Arc<BucketEntry>) {
        let mut g = self.inner.lock().unwrap();
        if g.generation == generation {
            g.buckets.insert(name.to_owned(), entry);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Arc<BucketEntry> {
        Arc::new(BucketEntry { bucket: None, grants: vec![], limits: Default::default() })
    }

    #[test]
    fn a_moved_revision_drops_everything() {
        let c = Cache::default();
        assert!(c.observe_revision(1));
        c.put_bucket(c.generation(), "b", entry());
        assert!(c.bucket("b").is_some());
        assert!(!c.observe_revision(1));
        assert!(c.bucket("b").is_some());
        assert!(c.observe_revision(2));
        assert!(c.bucket("b").is_none());
    }

    #[test]
    fn a_fill_begun_before_a_drop_is_discarded() {
        let c = Cache::default();
        let g = c.generation();
        c.invalidate();
        c.put_bucket(g, "b", entry());
        assert!(c.bucket("b").is_none());
        c.put_key(g, "k", None);
        assert!(c.key("k").is_none());
    }
}
