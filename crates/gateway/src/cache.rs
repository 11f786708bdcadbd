//! The read-through cache of what authorization reads on every request: access keys (with
//! their user and opened secret) and buckets (with their grants and quota limits). A decision
//! on a warm cache does no store I/O at all.
//!
//! Correctness rests on one rule: the cache is dropped whenever the store's revision counter
//! moves, as [`Gateway::watch_changes`](crate::Gateway::watch_changes) learns it:
//! - on PostgreSQL, from the store's change notifications (LISTEN/NOTIFY, delivered at
//!   commit): a notification of a newer revision drops the cache at once
//!   ([`Cache::observe_notification`]), typically milliseconds after the commit;
//! - everywhere, from polling the counter ([`Cache::observe_revision`]): every
//!   [`SAFETY_POLL_INTERVAL`] while notifications arrive — a safety net, should they
//!   silently stop — and every [`POLL_INTERVAL`] without them (SQLite, or while the
//!   listening connection is lost).
//!
//! On any doubt — the listening connection lost or re-established, a poll failed — the
//! cache is dropped ([`Cache::invalidate`]). A fill that started before a drop is discarded
//! (the generation check), so a stale read can never repopulate the cache after a change was
//! seen. A revoked key or grant therefore stops working within one notification (or, at
//! worst, one poll) plus one query, on every replica and after changes made by any process
//! (`coffer admin` included).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_core::{AccessKey, Bucket, Grant, Grantee, User};

/// How often the revision counter is read when the store sends no change notifications
/// (SQLite) or while they are lost.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How often the revision counter is read while change notifications arrive: the safety
/// net for notifications that stop without an error (a half-open connection reports
/// nothing). Short enough that it plus [`REVISION_TIMEOUT`](crate::REVISION_TIMEOUT) — a
/// poll that hangs drops the cache — stays under the one second a revocation may take.
pub const SAFETY_POLL_INTERVAL: Duration = Duration::from_millis(400);
/// How long to wait before trying again to listen for change notifications after a failure.
pub const RESUBSCRIBE_INTERVAL: Duration = Duration::from_secs(5);

/// An access key ready for use: its record, its user, and the opened secret (which its
/// `Debug` leaves out).
pub struct KeyEntry {
    pub key: AccessKey,
    pub user: User,
    pub secret: String,
}

impl std::fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyEntry")
            .field("key", &self.key)
            .field("user", &self.user)
            .field("secret", &"<redacted>")
            .finish()
    }
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

impl Inner {
    fn drop_all(&mut self) {
        self.generation += 1;
        self.keys.clear();
        self.buckets.clear();
        self.personal.clear();
    }
}

/// See the module documentation.
#[derive(Default)]
pub struct Cache {
    inner: Mutex<Inner>,
    /// The [`Listing`] and the generation it was filled in: valid while that is current, so
    /// every drop of the cache drops it too.
    listing: Mutex<Option<(u64, Arc<Listing>)>>,
}

/// Every bucket with its grants, indexed by who can have a role on it without a policy (its
/// owner, its grantees): ListBuckets looks at those buckets only, not at every bucket.
#[derive(Debug, Default)]
pub struct Listing {
    /// In the store's order (by name), each with its grants.
    pub buckets: Vec<(Bucket, Vec<Grant>)>,
    /// Positions in `buckets`, by owner.
    pub by_owner: HashMap<String, Vec<usize>>,
    /// Positions in `buckets`, by grantee.
    pub by_grantee: HashMap<Grantee, Vec<usize>>,
}

impl Listing {
    /// From every bucket (in order) and every grant.
    pub fn new(buckets: Vec<Bucket>, grants: Vec<Grant>) -> Self {
        let mut l = Listing::default();
        let mut position: HashMap<String, usize> = HashMap::with_capacity(buckets.len());
        for (i, b) in buckets.into_iter().enumerate() {
            position.insert(b.name.as_str().to_owned(), i);
            l.by_owner.entry(b.owner.clone()).or_default().push(i);
            l.buckets.push((b, Vec::new()));
        }
        for g in grants {
            // A grant on a bucket deleted meanwhile has nothing to show.
            let Some(&i) = position.get(g.bucket.as_str()) else { continue };
            let positions = l.by_grantee.entry(g.grantee.clone()).or_default();
            if positions.last() != Some(&i) {
                positions.push(i);
            }
            l.buckets[i].1.push(g);
        }
        l
    }
}

impl Cache {
    /// The generation a fill must present to be kept.
    pub fn generation(&self) -> u64 {
        self.inner.lock().unwrap().generation
    }

    /// Record the store's revision as a poll read it; drop everything if it differs from the
    /// last one recorded (in either direction: a database restored from a backup goes back).
    /// Returns whether it moved.
    pub fn observe_revision(&self, revision: i64) -> bool {
        let mut g = self.inner.lock().unwrap();
        if g.revision == Some(revision) {
            return false;
        }
        g.revision = Some(revision);
        g.drop_all();
        true
    }

    /// Record a change notification's revision; drop everything if it is newer than the last
    /// one recorded. An older one is a notification overtaken by a poll that already saw a
    /// later revision (and dropped the cache for it). Returns whether it dropped.
    pub fn observe_notification(&self, revision: i64) -> bool {
        let mut g = self.inner.lock().unwrap();
        if g.revision.is_some_and(|seen| seen >= revision) {
            return false;
        }
        g.revision = Some(revision);
        g.drop_all();
        true
    }

    /// Drop everything now (after a change made through this process, or on any doubt).
    pub fn invalidate(&self) {
        self.inner.lock().unwrap().drop_all();
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

    /// The listing, if it was filled in the current generation.
    pub fn listing(&self) -> Option<Arc<Listing>> {
        let generation = self.generation();
        match &*self.listing.lock().unwrap() {
            Some((g, l)) if *g == generation => Some(l.clone()),
            _ => None,
        }
    }

    pub fn put_listing(&self, generation: u64, listing: Arc<Listing>) {
        let current = self.inner.lock().unwrap();
        if current.generation == generation {
            *self.listing.lock().unwrap() = Some((generation, listing));
        }
    }

    pub fn put_bucket(&self, generation: u64, name: &str, entry: Arc<BucketEntry>) {
        let mut g = self.inner.lock().unwrap();
        if g.generation == generation {
            g.buckets.insert(name.to_owned(), entry);
        }
    }
}

impl crate::Gateway {
    /// Drop the cache now, as a change seen in the store would (benchmarks measure the
    /// uncached path with it).
    pub fn clear_cache(&self) {
        self.cache.invalidate();
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
    fn only_a_newer_notification_drops_everything() {
        let c = Cache::default();
        assert!(c.observe_notification(5), "the first revision seen");
        c.put_bucket(c.generation(), "b", entry());
        assert!(!c.observe_notification(5));
        assert!(!c.observe_notification(4), "overtaken by a poll");
        assert!(c.bucket("b").is_some());
        assert!(c.observe_notification(6));
        assert!(c.bucket("b").is_none());
        // A poll that reads what a notification reported keeps the cache...
        c.put_bucket(c.generation(), "b", entry());
        assert!(!c.observe_revision(6));
        assert!(c.bucket("b").is_some());
        // ... and one that reads less (a restored database) drops it.
        assert!(c.observe_revision(2));
        assert!(c.bucket("b").is_none());
        assert!(c.observe_notification(3));
    }

    fn bucket(name: &str, owner: &str) -> Bucket {
        Bucket {
            name: coffer_core::BucketName::parse(name).unwrap(),
            owner: owner.into(),
            tier: "t".into(),
            classification: coffer_core::Classification::unclassified(),
            created_at: 0,
        }
    }

    fn grant(bucket: &str, grantee: Grantee) -> Grant {
        Grant {
            bucket: coffer_core::BucketName::parse(bucket).unwrap(),
            grantee,
            role: coffer_core::Role::Read,
            created_at: 0,
        }
    }

    #[test]
    fn the_listing_indexes_owners_and_grantees_and_drops_with_the_cache() {
        let l = Listing::new(
            vec![bucket("ann-1", "ann"), bucket("bob-1", "bob"), bucket("bob-2", "bob")],
            vec![
                grant("bob-1", Grantee::User("ann".into())),
                grant("bob-2", Grantee::Group("g".into())),
                grant("bob-2", Grantee::User("ann".into())),
                grant("gone-1", Grantee::User("ann".into())),
            ],
        );
        assert_eq!(l.by_owner["bob"], vec![1, 2]);
        assert_eq!(l.by_grantee[&Grantee::User("ann".into())], vec![1, 2]);
        assert_eq!(l.by_grantee[&Grantee::Group("g".into())], vec![2]);
        assert_eq!(l.buckets[2].1.len(), 2);
        let c = Cache::default();
        let l = Arc::new(l);
        c.put_listing(c.generation(), l.clone());
        assert!(c.listing().is_some());
        c.invalidate();
        assert!(c.listing().is_none());
        let g = c.generation();
        c.invalidate();
        c.put_listing(g, l);
        assert!(c.listing().is_none(), "a fill begun before a drop is discarded");
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
