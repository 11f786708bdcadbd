//! The objects the rules need, looked up: from the API server ([`KubeLookup`]) or from memory
//! ([`MemoryLookup`], for tests).

use std::collections::BTreeMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, ListParams};

/// A lookup that could not be answered (the API server failed, or timed out).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LookupError(pub String);

/// Reads of the objects the webhook's rules take. `Ok(None)` means "does not exist".
#[async_trait]
pub trait Lookup: Send + Sync {
    /// The PersistentVolume `name`.
    async fn pv(&self, name: &str) -> Result<Option<PersistentVolume>, LookupError>;
    /// The PersistentVolumeClaim `namespace/name`.
    async fn pvc(&self, namespace: &str, name: &str) -> Result<Option<PersistentVolumeClaim>, LookupError>;
    /// Every PersistentVolumeClaim of `namespace`.
    async fn pvcs(&self, namespace: &str) -> Result<Vec<PersistentVolumeClaim>, LookupError>;
}

/// [`Lookup`] through the API server (needs `get` on persistentvolumes, `get` and `list` on
/// persistentvolumeclaims).
#[derive(Clone)]
pub struct KubeLookup {
    client: kube::Client,
}

impl KubeLookup {
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }
}

fn kube_error(what: String) -> impl FnOnce(kube::Error) -> LookupError {
    move |e| LookupError(format!("could not read {what}: {e}"))
}

#[async_trait]
impl Lookup for KubeLookup {
    async fn pv(&self, name: &str) -> Result<Option<PersistentVolume>, LookupError> {
        Api::<PersistentVolume>::all(self.client.clone())
            .get_opt(name)
            .await
            .map_err(kube_error(format!("PersistentVolume {name}")))
    }

    async fn pvc(&self, namespace: &str, name: &str) -> Result<Option<PersistentVolumeClaim>, LookupError> {
        Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
            .map_err(kube_error(format!("PersistentVolumeClaim {namespace}/{name}")))
    }

    async fn pvcs(&self, namespace: &str) -> Result<Vec<PersistentVolumeClaim>, LookupError> {
        let list = Api::<PersistentVolumeClaim>::namespaced(self.client.clone(), namespace)
            .list(&ListParams::default())
            .await
            .map_err(kube_error(format!("the PersistentVolumeClaims of {namespace}")))?;
        Ok(list.items)
    }
}

/// [`Lookup`] over objects held in memory; [`MemoryLookup::set_failing`] makes every lookup
/// fail, as an unreachable API server would.
#[derive(Debug, Default)]
pub struct MemoryLookup {
    pvs: RwLock<BTreeMap<String, PersistentVolume>>,
    pvcs: RwLock<BTreeMap<(String, String), PersistentVolumeClaim>>,
    failing: AtomicBool,
}

impl MemoryLookup {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) a volume, by its name.
    pub fn with_pv(self, pv: PersistentVolume) -> Self {
        self.insert_pv(pv);
        self
    }

    /// Add (or replace) a claim, by its namespace and name.
    pub fn with_pvc(self, pvc: PersistentVolumeClaim) -> Self {
        self.insert_pvc(pvc);
        self
    }

    pub fn insert_pv(&self, pv: PersistentVolume) {
        let name = pv.metadata.name.clone().unwrap_or_default();
        self.pvs.write().expect("lock").insert(name, pv);
    }

    pub fn insert_pvc(&self, pvc: PersistentVolumeClaim) {
        let key = (pvc.metadata.namespace.clone().unwrap_or_default(), pvc.metadata.name.clone().unwrap_or_default());
        self.pvcs.write().expect("lock").insert(key, pvc);
    }

    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    fn check(&self) -> Result<(), LookupError> {
        if self.failing.load(Ordering::SeqCst) {
            Err(LookupError("the API server is unavailable (simulated)".into()))
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Lookup for MemoryLookup {
    async fn pv(&self, name: &str) -> Result<Option<PersistentVolume>, LookupError> {
        self.check()?;
        Ok(self.pvs.read().expect("lock").get(name).cloned())
    }

    async fn pvc(&self, namespace: &str, name: &str) -> Result<Option<PersistentVolumeClaim>, LookupError> {
        self.check()?;
        Ok(self.pvcs.read().expect("lock").get(&(namespace.to_owned(), name.to_owned())).cloned())
    }

    async fn pvcs(&self, namespace: &str) -> Result<Vec<PersistentVolumeClaim>, LookupError> {
        self.check()?;
        Ok(self
            .pvcs
            .read()
            .expect("lock")
            .iter()
            .filter(|((ns, _), _)| ns == namespace)
            .map(|(_, v)| v.clone())
            .collect())
    }
}
