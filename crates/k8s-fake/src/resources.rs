//! The resources the fake serves: their group, version, plural, kind, scope and the few
//! per-resource behaviours of the real API server that the fake reproduces.

use std::sync::Arc;

/// One API resource served by the fake (a row of the resource table).
///
/// The flags reproduce the per-resource differences of the real API server that a
/// controller can observe; [`ResourceInfo::builtin`] and [`ResourceInfo::custom`] set them
/// the way kube-apiserver does for built-in types and for custom resources.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceInfo {
    /// API group, `""` for the core group.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Plural resource name used in URLs, e.g. `secrets`.
    pub plural: String,
    /// Kind, e.g. `Secret`.
    pub kind: String,
    /// Namespaced (`true`) or cluster-scoped (`false`).
    pub namespaced: bool,
    /// Has a `/status` subresource: writes to the main resource keep the stored `status`,
    /// writes to `/status` change nothing but `status`, and `status` is dropped on create.
    pub status_subresource: bool,
    /// Maintains `metadata.generation` (1 on create, +1 on every change outside
    /// `metadata` and `status`, and when deletion starts), as custom resources do.
    pub tracks_generation: bool,
    /// A PUT without `metadata.resourceVersion` is accepted (built-in types) rather than
    /// rejected with 422 (custom resources).
    pub allow_unconditional_update: bool,
    /// An immediate DELETE answers with the deleted object (custom resources) rather than
    /// a `Status` of success (most built-in types).
    pub delete_returns_object: bool,
}

impl ResourceInfo {
    /// A built-in resource: no generation, unconditional updates allowed, DELETE answers
    /// with a `Status`, no status subresource (see [`ResourceInfo::with_status`]).
    pub fn builtin(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
            kind: kind.to_owned(),
            namespaced,
            status_subresource: false,
            tracks_generation: false,
            allow_unconditional_update: true,
            delete_returns_object: false,
        }
    }

    /// A custom resource (CRD) with a status subresource: generation tracked, PUT needs a
    /// resourceVersion, DELETE answers with the object.
    pub fn custom(group: &str, version: &str, plural: &str, kind: &str, namespaced: bool) -> Self {
        Self {
            status_subresource: true,
            tracks_generation: true,
            allow_unconditional_update: false,
            delete_returns_object: true,
            ..Self::builtin(group, version, plural, kind, namespaced)
        }
    }

    /// Sets whether the resource has a `/status` subresource.
    #[must_use]
    pub fn with_status(mut self, status_subresource: bool) -> Self {
        self.status_subresource = status_subresource;
        self
    }

    /// `group/version`, or `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.clone() } else { format!("{}/{}", self.group, self.version) }
    }

    /// The kind of a list of these objects, e.g. `SecretList`.
    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    /// The URL prefix of the group version: `/api/v1` or `/apis/{group}/{version}`.
    pub fn url_prefix(&self) -> String {
        if self.group.is_empty() {
            format!("/api/{}", self.version)
        } else {
            format!("/apis/{}/{}", self.group, self.version)
        }
    }

    /// `plural` or `plural.group`, as the API server names a resource in its messages.
    pub(crate) fn qualified(&self) -> String {
        if self.group.is_empty() { self.plural.clone() } else { format!("{}.{}", self.plural, self.group) }
    }
}

/// The resources served when the builder is not told otherwise: the ones coffer uses.
///
/// | group/version | plural | kind | scope | status subresource |
/// |---|---|---|---|---|
/// | v1 | namespaces | Namespace | cluster | yes |
/// | v1 | secrets | Secret | namespaced | no |
/// | v1 | configmaps | ConfigMap | namespaced | no |
/// | v1 | serviceaccounts | ServiceAccount | namespaced | no |
/// | v1 | services | Service | namespaced | yes |
/// | v1 | persistentvolumeclaims | PersistentVolumeClaim | namespaced | yes |
/// | v1 | persistentvolumes | PersistentVolume | cluster | yes |
/// | v1 | pods | Pod | namespaced | yes |
/// | v1 | events | Event | namespaced | no |
/// | events.k8s.io/v1 | events | Event | namespaced | no |
/// | coordination.k8s.io/v1 | leases | Lease | namespaced | no |
/// | kubeflow.org/v1 | profiles | Profile | cluster (custom resource) | yes |
pub fn default_resources() -> Vec<ResourceInfo> {
    vec![
        ResourceInfo::builtin("", "v1", "namespaces", "Namespace", false).with_status(true),
        ResourceInfo::builtin("", "v1", "secrets", "Secret", true),
        ResourceInfo::builtin("", "v1", "configmaps", "ConfigMap", true),
        ResourceInfo::builtin("", "v1", "serviceaccounts", "ServiceAccount", true),
        ResourceInfo::builtin("", "v1", "services", "Service", true).with_status(true),
        ResourceInfo::builtin("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", true).with_status(true),
        ResourceInfo::builtin("", "v1", "persistentvolumes", "PersistentVolume", false).with_status(true),
        ResourceInfo::builtin("", "v1", "pods", "Pod", true).with_status(true),
        ResourceInfo::builtin("", "v1", "events", "Event", true),
        ResourceInfo::builtin("events.k8s.io", "v1", "events", "Event", true),
        ResourceInfo::builtin("coordination.k8s.io", "v1", "leases", "Lease", true),
        ResourceInfo::custom("kubeflow.org", "v1", "profiles", "Profile", false),
    ]
}

/// The resource table of a running fake.
#[derive(Debug, Default)]
pub(crate) struct Resources {
    list: Vec<Arc<ResourceInfo>>,
}

impl Resources {
    pub(crate) fn new(list: Vec<ResourceInfo>) -> Self {
        let mut out = Self::default();
        for info in list {
            out.add(info);
        }
        out
    }

    /// Adds a resource, replacing one with the same group, version and plural.
    pub(crate) fn add(&mut self, info: ResourceInfo) {
        self.list.retain(|r| !(r.group == info.group && r.version == info.version && r.plural == info.plural));
        self.list.push(Arc::new(info));
    }

    pub(crate) fn all(&self) -> &[Arc<ResourceInfo>] {
        &self.list
    }

    pub(crate) fn by_plural(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceInfo>> {
        self.list.iter().find(|r| r.group == group && r.version == version && r.plural == plural).cloned()
    }

    /// Looks a resource up by `apiVersion` and kind.
    pub(crate) fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceInfo>> {
        let (group, version) = split_api_version(api_version);
        self.list.iter().find(|r| r.group == group && r.version == version && r.kind == kind).cloned()
    }

    pub(crate) fn namespaces(&self) -> Option<Arc<ResourceInfo>> {
        self.list.iter().find(|r| r.group.is_empty() && r.plural == "namespaces").cloned()
    }
}

/// Splits `group/version` (or `version` for the core group) into its parts.
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.split_once('/') {
        Some((group, version)) => (group, version),
        None => ("", api_version),
    }
}
