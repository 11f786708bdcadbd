//! An in-process fake of the Kubernetes API server, for tests.
//!
//! [`FakeApiServer::start`] serves plain HTTP on `127.0.0.1:0` and hands back a ready
//! [`kube::Client`]. The real kube-rs client and its controller runtime
//! ([`kube::runtime::Controller`], [`watcher`](kube::runtime::watcher()),
//! [`finalizer`](kube::runtime::finalizer()), [`Recorder`](kube::runtime::events::Recorder))
//! run against it end to end, so a controller can be tested without a cluster. Tests can
//! also seed and inspect the stored objects directly ([`FakeApiServer::put`],
//! [`FakeApiServer::get`], [`FakeApiServer::list`]), assert on the exact requests a
//! controller made ([`FakeApiServer::requests`]) and make requests fail on purpose
//! ([`FakeApiServer::inject_fault`]).
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use coffer_k8s_fake::{FakeApiServer, Verb};
//! use k8s_openapi::api::core::v1::Secret;
//! use kube::api::{Api, Patch, PatchParams};
//!
//! let fake = FakeApiServer::start().await?;
//! let secrets: Api<Secret> = Api::default_namespaced(fake.client());
//! let secret: Secret = serde_json::from_value(serde_json::json!({
//!     "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "s" },
//!     "stringData": { "k": "v" },
//! }))?;
//! secrets.patch("s", &PatchParams::apply("my-controller"), &Patch::Apply(&secret)).await?;
//! assert!(fake.get("v1", "Secret", Some("default"), "s").is_some());
//! let apply = fake.requests().into_iter().find(|r| r.is_apply()).unwrap();
//! assert_eq!(apply.field_manager(), Some("my-controller"));
//! assert_eq!(apply.verb, Verb::Patch);
//! fake.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! - `resources`: the resource table ([`ResourceInfo`], [`default_resources`]).
//! - `server`: HTTP routing (`/api/v1/...`, `/apis/{group}/{version}/...`, namespaced
//!   and cluster paths, all-namespace lists), the request log, fault injection, legacy
//!   discovery and watch streams.
//! - `store`: the objects and the semantics of each verb.
//! - `fields`: managed fields and server-side apply; `patch`: merge and JSON patch;
//!   `selector`: label and field selectors; `meta`: metadata helpers and validation.
//!
//! # What is faithful
//!
//! - **Paths and scope**: core and group paths, namespaced and cluster-scoped resources,
//!   lists across all namespaces (`/api/v1/secrets`), the `/status` subresource. Unknown
//!   resources and wrong scopes answer 404 with a `Status`.
//! - **Errors** are `Status` objects with the API server's reasons and codes (404
//!   `NotFound`, 409 `AlreadyExists`/`Conflict`, 400 `BadRequest`, 422 `Invalid`, 410
//!   `Expired`, ...), so kube-rs reports them as `kube::Error::Api` with the right code.
//! - **Resource versions**: a global counter; every write that changes something gets a
//!   new one, a write that changes nothing (re-applying the same configuration, a PUT of
//!   the same object) keeps the old one and sends no watch event. `uid` and
//!   `creationTimestamp` are set on create; `generateName` works.
//! - **Optimistic concurrency**: a PUT, patch or apply carrying a stale
//!   `metadata.resourceVersion` answers 409 `Conflict`; a PUT without one is refused (422)
//!   for custom resources, as the real server does. DELETE preconditions are honoured.
//! - **Generation** (custom resources): 1 on create, +1 on any change outside `metadata`
//!   and `status`, and when deletion starts.
//! - **Status subresource**: writes to the main resource keep the stored `status` (and
//!   create drops it); writes to `/status` change only `status`.
//! - **Finalizers and deletion**: DELETE of an object with finalizers sets
//!   `deletionTimestamp` (and `deletionGracePeriodSeconds: 0`) and keeps it (MODIFIED);
//!   no new finalizer may be added then (422); when the last finalizer goes, the object is
//!   removed (DELETED). Without finalizers DELETE removes at once and answers a `Status`
//!   of success (built-in types) or the object (custom resources).
//! - **Patches**: JSON merge patch; JSON patch (RFC 6902: add, remove, replace, move,
//!   copy, test, with `~0`/`~1` escaping; a `test` of a missing path against `null`
//!   passes, as kube's `finalizer` helper expects); a failed patch answers 422.
//! - **Server-side apply** (`application/apply-patch+yaml`): `fieldManager` required,
//!   creates when absent, otherwise merges the applied configuration into the stored
//!   object (objects merge recursively, scalars and lists replace), removes fields the
//!   manager applied before but no longer applies (unless another manager owns them),
//!   reports conflicts with fields another manager owns with a different value (409,
//!   unless `force=true`, which takes them over), and keeps `metadata.managedFields` in the
//!   real `FieldsV1` format with `operation: Apply` / `Update` entries. Other writes record
//!   `Update` entries for the `fieldManager` given (or the User-Agent's first word).
//! - **Watch**: `watch=true`/`1` with `resourceVersion`, label and field selectors,
//!   `allowWatchBookmarks`, `timeoutSeconds` (the stream ends then, after a BOOKMARK when
//!   bookmarks are allowed) and `sendInitialEvents` (streaming lists: ADDED events then a
//!   BOOKMARK annotated `k8s.io/initial-events-end`). Without a version (or `0`) the
//!   current objects come first as ADDED. Objects entering or leaving a label selector
//!   come as ADDED / DELETED. A version older than the kept history (see
//!   [`FakeApiServerBuilder::history_limit`], [`FakeApiServer::expire_watches`]) gets an
//!   `ERROR` event with a 410 `Expired` status in a 200 stream, as from the real watch
//!   cache, and kube's watcher then lists again. kube's default `watcher::Config` uses
//!   list-then-watch (`InitialListStrategy::ListWatch`); streaming lists work too.
//! - **Namespaces** (can be switched off, [`FakeApiServerBuilder::namespace_lifecycle`]):
//!   creating in a namespace that does not exist answers 404, in a terminating one 403;
//!   `default`, `kube-system`, `kube-public` and `kube-node-lease` exist from the start;
//!   deleting a namespace deletes its objects and removes it once they are gone.
//! - **Garbage collection** (can be switched off,
//!   [`FakeApiServerBuilder::garbage_collection`]): when an object is removed, objects whose
//!   `ownerReferences` name it and no other existing owner are deleted too.
//! - **Validation**: names (DNS subdomain; DNS label for namespaces), label keys and
//!   values, annotation keys, finalizer names (422 `Invalid`); name and namespace in the
//!   body must match the path (400 `BadRequest`); apiVersion and kind must match the
//!   endpoint.
//! - **Defaults and conversions** controllers observe: a Secret's `stringData` is merged
//!   into `data` (base64) and dropped, its `type` defaults to `Opaque`; PersistentVolumes
//!   default `persistentVolumeReclaimPolicy: Retain` and `volumeMode: Filesystem`, claims
//!   `volumeMode: Filesystem`, and both start in phase `Pending`; namespaces get
//!   `spec.finalizers: [kubernetes]` and phase `Active`.
//! - **Metadata-only access**: an `Accept` asking for `PartialObjectMetadata` (kube's
//!   `get_metadata`, `list_metadata`, `Api<PartialObjectMeta<K>>`, metadata watchers) gets
//!   `meta.k8s.io/v1` `PartialObjectMetadata(List)` objects.
//! - **Discovery**: legacy `/api`, `/api/v1`, `/apis`, `/apis/{group}`,
//!   `/apis/{group}/{version}` and `/version` (typed `Api<K>` and `Api<DynamicObject>` with
//!   an `ApiResource` need none of it; `kube::Discovery::run` works).
//!
//! # What is not
//!
//! - No schemas: no defaulting beyond the above, no pruning of unknown fields, no
//!   validation beyond the above, `fieldValidation` is ignored, immutable fields (a
//!   Secret's `type`, a PV's `spec`...) can be changed.
//! - No controllers run: no PV/PVC binding, no pod scheduling or kubelet, no service
//!   account tokens, no events of its own. Only namespace deletion and garbage collection
//!   (above) are emulated, synchronously.
//! - Strategic merge patch is applied as a JSON merge patch (lists replace, directives such
//!   as `$patch` are dropped). Server-side apply treats every list as atomic (the real
//!   server merges lists with merge keys, e.g. containers by name) and the fields of the
//!   same manager name under `Apply` and `Update` never conflict with each other.
//! - LIST ignores `limit` and `continue` (everything comes in one page) and
//!   `resourceVersion`/`resourceVersionMatch` (always the latest state). Field selectors
//!   accept any dotted path. No periodic bookmarks, only the closing one.
//! - DELETE ignores `propagationPolicy`, `gracePeriodSeconds` and orphaning: garbage
//!   collection is immediate and always background-like. Pods are removed at once (no
//!   kubelet), namespaces ignore `spec.finalizers`.
//! - `dryRun=All` is honoured for writes (nothing is stored, no version is used).
//! - [`FakeApiServer::put`] stores an object as given (no defaults, validation or managed
//!   fields), for seeding.
//! - No authentication, authorization, admission webhooks, aggregated discovery,
//!   protobuf, tables, `/scale` or other subresources than `/status`, YAML bodies
//!   (kube sends apply bodies as JSON), or HTTP/2-only features.

mod error;
mod fields;
mod log;
mod meta;
mod patch;
mod resources;
mod selector;
mod server;
mod store;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kube::Resource;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use crate::log::{Fault, PatchType, RequestRecord, Verb};
use crate::resources::Resources;
pub use crate::resources::{ResourceInfo, default_resources};
use crate::server::{Shared, lock};
use crate::store::Store;

/// An error of direct store access ([`FakeApiServer::put`]) or of starting the fake.
#[derive(Debug)]
pub struct FakeError(String);

impl std::fmt::Display for FakeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FakeError {}

/// Configures a [`FakeApiServer`] before it starts.
#[derive(Clone, Debug)]
pub struct FakeApiServerBuilder {
    resources: Vec<ResourceInfo>,
    history_limit: usize,
    namespaces: Vec<String>,
    namespace_lifecycle: bool,
    garbage_collection: bool,
    max_watch_timeout: Option<Duration>,
}

impl Default for FakeApiServerBuilder {
    fn default() -> Self {
        Self {
            resources: default_resources(),
            history_limit: 1000,
            namespaces: ["default", "kube-system", "kube-public", "kube-node-lease"].map(str::to_owned).to_vec(),
            namespace_lifecycle: true,
            garbage_collection: true,
            max_watch_timeout: None,
        }
    }
}

impl FakeApiServerBuilder {
    /// Serves one more resource (or replaces the row with the same group, version and plural).
    #[must_use]
    pub fn resource(mut self, info: ResourceInfo) -> Self {
        self.resources.push(info);
        self
    }

    /// Serves exactly these resources instead of [`default_resources`].
    #[must_use]
    pub fn resources(mut self, infos: Vec<ResourceInfo>) -> Self {
        self.resources = infos;
        self
    }

    /// How many changes the watch history keeps (default 1000); a watch from an older
    /// resourceVersion gets 410 Gone.
    #[must_use]
    pub fn history_limit(mut self, n: usize) -> Self {
        self.history_limit = n;
        self
    }

    /// More namespaces that exist from the start, besides `default`, `kube-system`,
    /// `kube-public` and `kube-node-lease` (which always do, as in a real cluster).
    #[must_use]
    pub fn namespaces<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for name in names {
            let name = name.into();
            if !self.namespaces.contains(&name) {
                self.namespaces.push(name);
            }
        }
        self
    }

    /// Whether namespaces must exist for creates in them, and deleting a namespace deletes
    /// its content (default on).
    #[must_use]
    pub fn namespace_lifecycle(mut self, on: bool) -> Self {
        self.namespace_lifecycle = on;
        self
    }

    /// Whether removing an object deletes the objects it solely owns (default on).
    #[must_use]
    pub fn garbage_collection(mut self, on: bool) -> Self {
        self.garbage_collection = on;
        self
    }

    /// Caps every watch at this duration (clients ask for 290 s by default), so tests can
    /// exercise watch restarts.
    #[must_use]
    pub fn max_watch_timeout(mut self, timeout: Duration) -> Self {
        self.max_watch_timeout = Some(timeout);
        self
    }

    /// Starts the server on `127.0.0.1` with a free port.
    pub async fn start(self) -> Result<FakeApiServer, FakeError> {
        let mut store = Store::new(Resources::new(self.resources), self.history_limit);
        store.namespace_lifecycle = self.namespace_lifecycle;
        store.garbage_collection = self.garbage_collection;
        let has_namespaces = store.resources.namespaces().is_some();
        if has_namespaces {
            for ns in &self.namespaces {
                store
                    .put(json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns }, "status": { "phase": "Active" } }))
                    .map_err(FakeError)?;
            }
        }
        let (shutdown, _) = watch::channel(false);
        let (expiry, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            log: Mutex::new(Vec::new()),
            faults: Mutex::new(Vec::new()),
            expiry,
            shutdown,
            max_watch_timeout: self.max_watch_timeout,
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| FakeError(format!("cannot bind 127.0.0.1:0: {e}")))?;
        let addr = listener.local_addr().map_err(|e| FakeError(format!("no local address: {e}")))?;
        let app = axum::Router::new().fallback(server::handle).with_state(shared.clone());
        let mut stop = shared.shutdown.subscribe();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            });
            if let Err(e) = serve.await {
                tracing::warn!("fake kube-apiserver stopped: {e}");
            }
        });
        let url = format!("http://{addr}");
        let config = client_config(&url)?;
        let client = kube::Client::try_from(config).map_err(|e| FakeError(format!("cannot build a client: {e}")))?;
        Ok(FakeApiServer { shared, url, addr, client, task: Some(task) })
    }
}

fn client_config(url: &str) -> Result<kube::Config, FakeError> {
    let uri = url.parse::<axum::http::Uri>().map_err(|e| FakeError(format!("bad url {url}: {e}")))?;
    let mut config = kube::Config::new(uri);
    config.default_namespace = "default".into();
    Ok(config)
}

/// A running fake API server. Dropping it stops the server too (without waiting).
pub struct FakeApiServer {
    shared: Arc<Shared>,
    url: String,
    addr: SocketAddr,
    client: kube::Client,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeApiServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeApiServer").field("url", &self.url).finish_non_exhaustive()
    }
}

impl FakeApiServer {
    /// Starts a fake with the default resources and settings.
    pub async fn start() -> Result<Self, FakeError> {
        FakeApiServerBuilder::default().start().await
    }

    /// A builder for other resources or settings.
    pub fn builder() -> FakeApiServerBuilder {
        FakeApiServerBuilder::default()
    }

    /// The base URL, `http://127.0.0.1:{port}`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A client for the fake (default namespace `default`, no auth).
    pub fn client(&self) -> kube::Client {
        self.client.clone()
    }

    /// A client configuration for the fake, to build other clients from.
    pub fn config(&self) -> kube::Config {
        client_config(&self.url).expect("the fake's own URL parses")
    }

    /// Stops the server: open watches end, then the listener closes.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), task).await.is_err()
        {
            tracing::warn!("fake kube-apiserver did not stop within 5s");
        }
    }

    /// Serves one more resource from now on.
    pub fn add_resource(&self, info: ResourceInfo) {
        let mut store = lock(&self.shared.store);
        store.resources.add(info);
    }

    // ---- direct store access ----

    /// Inserts or overwrites an object (JSON with `apiVersion`, `kind` and
    /// `metadata.name`; namespaced objects without a namespace go to `default`), bypassing
    /// every API check. `uid`, `creationTimestamp` (and `generation`) are filled in when
    /// missing; a new resourceVersion is assigned and watches see ADDED or MODIFIED.
    /// Returns the stored object.
    pub fn put(&self, obj: Value) -> Result<Value, FakeError> {
        lock(&self.shared.store).put(obj).map_err(FakeError)
    }

    /// [`FakeApiServer::put`] of a typed object.
    pub fn put_typed<K>(&self, obj: &K) -> Result<K, FakeError>
    where
        K: Resource<DynamicType = ()> + Serialize + DeserializeOwned,
    {
        let mut value = serde_json::to_value(obj).map_err(|e| FakeError(e.to_string()))?;
        value["apiVersion"] = json!(K::api_version(&()));
        value["kind"] = json!(K::kind(&()));
        let stored = self.put(value)?;
        serde_json::from_value(stored).map_err(|e| FakeError(e.to_string()))
    }

    /// The stored object, if any (`namespace` is ignored for cluster-scoped kinds).
    pub fn get(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let store = lock(&self.shared.store);
        let info = store.resources.by_kind(api_version, kind)?;
        store.lookup(&info, namespace, name).map(|o| store::present(&info, o))
    }

    /// The stored object as a typed value, if any.
    pub fn get_typed<K>(&self, namespace: Option<&str>, name: &str) -> Option<K>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned,
    {
        let value = self.get(&K::api_version(&()), &K::kind(&()), namespace, name)?;
        serde_json::from_value(value).ok()
    }

    /// The stored objects of a kind, in one namespace (`Some`) or all (`None`), ordered by
    /// namespace and name.
    pub fn list(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Vec<Value> {
        let store = lock(&self.shared.store);
        let Some(info) = store.resources.by_kind(api_version, kind) else {
            return Vec::new();
        };
        store.objects_of(&info, namespace).into_iter().map(|o| store::present(&info, o)).collect()
    }

    /// [`FakeApiServer::list`] as typed values.
    pub fn list_typed<K>(&self, namespace: Option<&str>) -> Vec<K>
    where
        K: Resource<DynamicType = ()> + DeserializeOwned,
    {
        self.list(&K::api_version(&()), &K::kind(&()), namespace)
            .into_iter()
            .filter_map(|v| serde_json::from_value(v).ok())
            .collect()
    }

    /// Removes an object at once, finalizers or not (watches see DELETED). Returns it.
    pub fn remove(&self, api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Option<Value> {
        let mut store = lock(&self.shared.store);
        let info = store.resources.by_kind(api_version, kind)?;
        store.remove(&info, namespace, name)
    }

    /// The current (latest) resourceVersion.
    pub fn resource_version(&self) -> u64 {
        lock(&self.shared.store).resource_version()
    }

    /// Forgets the watch history: watches that start from an earlier resourceVersion get
    /// 410 Gone. Open watches go on.
    pub fn compact_history(&self) {
        lock(&self.shared.store).compact();
    }

    /// Forgets the watch history and ends every open watch with an `ERROR` event holding a
    /// 410 `Expired` status, as the real server does when a watcher falls too far behind;
    /// kube's watcher then lists again.
    pub fn expire_watches(&self) {
        lock(&self.shared.store).compact();
        self.shared.expiry.send_modify(|n| *n += 1);
    }

    /// Waits until `condition` holds, checking it now and after every change to the
    /// store. Returns whether it held before `timeout`.
    pub async fn wait_for<F>(&self, timeout: Duration, mut condition: F) -> bool
    where
        F: FnMut(&Self) -> bool,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = lock(&self.shared.store).subscribe_revision();
        loop {
            changes.mark_unchanged();
            if condition(self) {
                return true;
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return condition(self),
            }
        }
    }

    // ---- request log ----

    /// Every request served so far, in the order the answers were made.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log).clone()
    }

    /// The requests so far, clearing the log.
    pub fn take_requests(&self) -> Vec<RequestRecord> {
        std::mem::take(&mut *lock(&self.shared.log))
    }

    /// Clears the request log.
    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// The requests so far on one resource (plural), optionally of one verb.
    pub fn requests_for(&self, resource: &str, verb: Option<Verb>) -> Vec<RequestRecord> {
        lock(&self.shared.log)
            .iter()
            .filter(|r| r.resource.as_deref() == Some(resource) && verb.is_none_or(|v| r.verb == v))
            .cloned()
            .collect()
    }

    // ---- faults ----

    /// Makes matching requests fail (see [`Fault`]).
    pub fn inject_fault(&self, fault: Fault) {
        lock(&self.shared.faults).push(fault);
    }

    /// Drops every fault not yet used up.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }
}

impl Drop for FakeApiServer {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}
