//! `coffer controller`: for every profile — a Kubeflow `Profile` (kubeflow.org/v1,
//! cluster-scoped; the namespace is its name, the owner `spec.owner.name`) or, when
//! configured, a namespace carrying the profile label — and every tier of the
//! `[kubernetes.tiers]` section, make sure of:
//!
//! 1. the profile's bucket on the tier, owned by the profile principal, classified as the
//!    tier says, with the profile's owner as its admin (tiers the profile is not cleared
//!    for are skipped);
//! 2. a credential for the CSI driver — a coffer key narrowed to that bucket (read-only on a
//!    read-only tier) in a Secret of the driver namespace, never the profile's; Mountpoint's
//!    driver-wide Secret instead holds one key granted each profile's Mountpoint buckets —
//!    replaced every `key_rotation`, the old key revoked `key_overlap` later;
//! 3. the PersistentVolume for the tier's CSI driver and the PVC in the profile's namespace,
//!    bound to each other (see [`crate::desired`]).
//!
//! Everything is written with server-side apply (field manager `coffer-controller`,
//! forced), so a reconcile changes nothing when nothing changed and corrects drift. A
//! profile gets the finalizer `coffer.dev/cleanup`; when it is deleted the PVCs, PVs and
//! Secrets go, the keys are revoked, and the buckets stay (unless `delete_buckets`, and
//! then only empty ones). Failures requeue with exponential backoff (5 s doubling to
//! 5 min); Kubernetes Events on the profile and the metrics say what happened.
//!
//! ## Layout
//! - this file — [`run`], the context and the error policy.
//! - `reconcile.rs` — apply and cleanup for one profile.
//! - `credentials.rs` — the keys in Secrets and their rotation.
//! - `metrics.rs` — the counters `/metrics` shows.

mod credentials;
pub mod metrics;
mod reconcile;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use coffer_gateway::Gateway;
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};

pub use self::metrics::Metrics;
use crate::settings::Settings;

/// The finalizer coffer puts on profiles.
pub const FINALIZER: &str = "coffer.dev/cleanup";
/// How often a profile is looked at even when nothing changed (drift, rotation).
pub const RESYNC: Duration = Duration::from_secs(600);

/// What can go wrong reconciling a profile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("coffer: {0}")]
    Gateway(#[from] coffer_gateway::Error),
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("{0}")]
    Invalid(String),
    #[error("finalizer: {0}")]
    Finalizer(String),
}

/// Kubeflow's `Profile`.
pub fn profile_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("kubeflow.org", "v1", "Profile"), "profiles")
}

/// Everything a reconcile needs.
pub struct Context {
    pub client: Client,
    pub gateway: Arc<Gateway>,
    pub settings: Settings,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Consecutive failures per profile, for the backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// The Mountpoint driver's Secret is shared by every profile: one writer at a time.
    mountpoint: tokio::sync::Mutex<()>,
    /// The clock, in Unix seconds (tests move it).
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
}

fn system_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

impl Context {
    pub fn new(client: Client, gateway: Arc<Gateway>, settings: Settings, metrics: Arc<Metrics>) -> Self {
        let reporter =
            Reporter { controller: "coffer-controller".into(), instance: std::env::var("CONTROLLER_POD_NAME").ok() };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            gateway,
            settings,
            metrics,
            failures: Mutex::new(HashMap::new()),
            mountpoint: tokio::sync::Mutex::new(()),
            clock: Arc::new(system_now),
        }
    }

    /// Use this clock instead of the system's (tests).
    pub fn with_clock(mut self, clock: Arc<dyn Fn() -> i64 + Send + Sync>) -> Self {
        self.clock = clock;
        self
    }

    pub(crate) fn now(&self) -> i64 {
        (self.clock)()
    }

    fn failed(&self, name: &str) -> u32 {
        let mut f = self.failures.lock().unwrap();
        let n = f.entry(name.to_owned()).or_default();
        *n += 1;
        *n
    }

    fn succeeded(&self, name: &str) {
        self.failures.lock().unwrap().remove(name);
    }
}

/// The wait before retrying after the `n`-th consecutive failure: 5 s, doubling, at most
/// 5 min.
pub fn backoff(n: u32) -> Duration {
    let secs = 5u64.saturating_mul(1u64 << n.saturating_sub(1).min(6));
    Duration::from_secs(secs.min(300))
}

fn error_policy<K: ResourceExt>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let name = obj.name_any();
    let n = ctx.failed(&name);
    ctx.metrics.failure();
    let wait = backoff(n);
    tracing::warn!(profile = %name, error = %error, attempt = n, retry_in = ?wait, "reconcile failed");
    Action::requeue(wait)
}

/// Run the controller until `shutdown` resolves.
pub async fn run(
    client: Client,
    gateway: Arc<Gateway>,
    settings: Settings,
    metrics: Arc<Metrics>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let ctx = Arc::new(Context::new(client.clone(), gateway, settings, metrics));
    run_with(ctx, shutdown).await
}

/// [`run`] with a context made beforehand (tests give it a clock).
pub async fn run_with(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let stop = move || {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    };
    let ar = profile_resource();
    let profiles: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &ar);
    let profile_loop = Controller::new_with(profiles, watcher::Config::default(), ar)
        .graceful_shutdown_on(stop())
        .run(reconcile::profile, error_policy, ctx.clone())
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "profile controller event");
            }
        });
    if ctx.settings.watch_namespaces {
        let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
        let selector = watcher::Config::default().labels(&ctx.settings.labels.profile);
        let namespace_loop = Controller::new(namespaces, selector)
            .graceful_shutdown_on(stop())
            .run(reconcile::namespace, error_policy, ctx.clone())
            .for_each(|r| async move {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "namespace controller event");
                }
            });
        futures::join!(profile_loop, namespace_loop);
    } else {
        profile_loop.await;
    }
    tracing::info!("controller stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_five_minutes() {
        let secs: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(secs, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
    }
}
