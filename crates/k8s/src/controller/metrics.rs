//! The controller's counters, in the Prometheus text format (served at `/metrics` of
//! `coffer controller`).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of the controller's work.
#[derive(Debug, Default)]
pub struct Metrics {
    reconciles: AtomicU64,
    failures: AtomicU64,
    cleanups: AtomicU64,
    keys_created: AtomicU64,
    keys_revoked: AtomicU64,
}

impl Metrics {
    pub(crate) fn reconciled(&self) {
        self.reconciles.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn failure(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn cleaned_up(&self) {
        self.cleanups.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn key_created(&self) {
        self.keys_created.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn key_revoked(&self) {
        self.keys_revoked.fetch_add(1, Ordering::Relaxed);
    }

    /// Reconciles that succeeded, failed; cleanups; keys made and revoked.
    pub fn snapshot(&self) -> [u64; 5] {
        [&self.reconciles, &self.failures, &self.cleanups, &self.keys_created, &self.keys_revoked]
            .map(|c| c.load(Ordering::Relaxed))
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let [ok, failed, cleanups, created, revoked] = self.snapshot();
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        counter("coffer_controller_reconciles_total", "Profile reconciles that succeeded.", ok);
        counter(
            "coffer_controller_reconcile_errors_total",
            "Profile reconciles that failed (retried with backoff).",
            failed,
        );
        counter("coffer_controller_cleanups_total", "Profiles cleaned up after their deletion.", cleanups);
        counter("coffer_controller_keys_created_total", "CSI credentials made (first or rotated).", created);
        counter(
            "coffer_controller_keys_revoked_total",
            "CSI credentials revoked (rotated out or cleaned up).",
            revoked,
        );
        out
    }
}
