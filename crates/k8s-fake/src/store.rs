//! The object store and the semantics of every verb: resource versions, optimistic
//! concurrency, finalizers and deletion, generation, status subresources, managed fields,
//! the namespace lifecycle, garbage collection and the change history watches read.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};

use crate::error::ApiError;
use crate::fields::{self, Scope, Writer};
use crate::meta::{
    copy_meta, finalizers, generation, is_deleting, meta_mut, meta_str, name_of, namespace_of, normalize, now,
    owner_uids, random_suffix, rv_of, spec_part, uid_of, validate,
};
use crate::patch;
use crate::resources::{ResourceInfo, Resources};
use crate::selector::Selectors;

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChangeKind {
    Added,
    Modified,
    Deleted,
}

/// One committed change, as kept in the history and sent to watches.
#[derive(Clone, Debug)]
pub(crate) struct Change {
    pub rv: u64,
    pub group: String,
    pub plural: String,
    pub namespace: String,
    pub kind: ChangeKind,
    pub object: Value,
    /// The object before the change (for label-selector transitions).
    pub previous: Option<Value>,
}

/// What a watch starts from.
pub(crate) struct WatchStart {
    /// Changes to replay: the history after the requested version, or synthetic ADDED
    /// events for every object when no version (or `0`) was given.
    pub initial: Vec<Arc<Change>>,
    /// Later changes.
    pub rx: broadcast::Receiver<Arc<Change>>,
    /// The store's resource version when the watch started.
    pub start_rv: u64,
}

/// The kinds of PATCH.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Json,
    Merge,
    Strategic,
    Apply,
}

impl PatchKind {
    pub(crate) fn from_content_type(ct: &str) -> Option<Self> {
        match ct {
            "application/json-patch+json" => Some(Self::Json),
            "application/merge-patch+json" => Some(Self::Merge),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

/// Per-request options of writes.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriteOptions {
    pub dry_run: bool,
    /// The `fieldManager` query parameter.
    pub field_manager: Option<String>,
    /// The manager of non-apply writes without `fieldManager` (from the User-Agent).
    pub default_manager: String,
    pub force: bool,
}

impl WriteOptions {
    fn manager(&self) -> &str {
        self.field_manager.as_deref().unwrap_or(&self.default_manager)
    }
}

type Key = (String, String);

pub(crate) struct Store {
    pub resources: Resources,
    rv: u64,
    objects: BTreeMap<Key, BTreeMap<Key, Value>>,
    history: VecDeque<Arc<Change>>,
    history_limit: usize,
    /// Watches from a version older than this get 410 Gone.
    compacted: u64,
    changes: broadcast::Sender<Arc<Change>>,
    revision: watch::Sender<u64>,
    pub namespace_lifecycle: bool,
    pub garbage_collection: bool,
}

fn scope_for(info: &ResourceInfo, subresource: Option<&str>) -> Scope {
    if subresource == Some("status") {
        Scope::StatusOnly
    } else if info.status_subresource {
        Scope::AllButStatus
    } else {
        Scope::All
    }
}

fn is_namespace(info: &ResourceInfo) -> bool {
    info.group.is_empty() && info.plural == "namespaces"
}

fn expect_object(body: Value) -> Result<Value, ApiError> {
    if body.is_object() { Ok(body) } else { Err(ApiError::bad_request("the request body must be a JSON object")) }
}

/// Fills in a missing apiVersion and kind; rejects ones that do not match the endpoint.
fn check_type(info: &ResourceInfo, obj: &mut Value) -> Result<(), ApiError> {
    let expected = info.api_version();
    match obj.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => obj["apiVersion"] = json!(expected),
        Some(v) if v == expected => {}
        Some(v) => {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected})"
            )));
        }
    }
    match obj.get("kind").and_then(Value::as_str) {
        None | Some("") => obj["kind"] = json!(info.kind),
        Some(k) if k == info.kind => {}
        Some(k) => {
            return Err(ApiError::bad_request(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                info.kind
            )));
        }
    }
    Ok(())
}

/// The object as served from an endpoint of `info`'s version.
pub(crate) fn present(info: &ResourceInfo, obj: &Value) -> Value {
    let mut v = obj.clone();
    v["apiVersion"] = json!(info.api_version());
    v["kind"] = json!(info.kind);
    v
}

fn without_rv(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
    }
    v
}

impl Store {
    pub(crate) fn new(resources: Resources, history_limit: usize) -> Self {
        let (changes, _) = broadcast::channel(4096);
        let (revision, _) = watch::channel(0);
        Self {
            resources,
            rv: 0,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted: 0,
            changes,
            revision,
            namespace_lifecycle: true,
            garbage_collection: true,
        }
    }

    pub(crate) fn resource_version(&self) -> u64 {
        self.rv
    }

    pub(crate) fn subscribe_revision(&self) -> watch::Receiver<u64> {
        self.revision.subscribe()
    }

    /// Forgets the whole history: watches from any earlier version get 410 Gone.
    pub(crate) fn compact(&mut self) {
        self.history.clear();
        self.compacted = self.rv;
    }

    fn bucket_key(info: &ResourceInfo) -> Key {
        (info.group.clone(), info.plural.clone())
    }

    fn object_key(info: &ResourceInfo, namespace: Option<&str>, name: &str) -> Key {
        let ns = if info.namespaced { namespace.unwrap_or_default() } else { "" };
        (ns.to_owned(), name.to_owned())
    }

    pub(crate) fn lookup(&self, info: &ResourceInfo, namespace: Option<&str>, name: &str) -> Option<&Value> {
        self.objects.get(&Self::bucket_key(info)).and_then(|b| b.get(&Self::object_key(info, namespace, name)))
    }

    /// Objects of a resource, in one namespace or all, ordered by namespace and name.
    pub(crate) fn objects_of(&self, info: &ResourceInfo, namespace: Option<&str>) -> Vec<&Value> {
        self.objects
            .get(&Self::bucket_key(info))
            .map(|b| {
                b.iter()
                    .filter(|((ns, _), _)| namespace.is_none_or(|want| !info.namespaced || ns == want))
                    .map(|(_, v)| v)
                    .collect()
            })
            .unwrap_or_default()
    }

    fn info_of_bucket(&self, key: &Key) -> Option<Arc<ResourceInfo>> {
        self.resources.all().iter().find(|r| r.group == key.0 && r.plural == key.1).cloned()
    }

    fn record(&mut self, change: Change) {
        let change = Arc::new(change);
        self.history.push_back(change.clone());
        while self.history.len() > self.history_limit {
            if let Some(old) = self.history.pop_front() {
                self.compacted = old.rv;
            }
        }
        let _ = self.changes.send(change);
        self.revision.send_replace(self.rv);
    }

    /// Stores `new` (the successor of `old`), unless nothing changed: then the stored object
    /// is returned and no version is used up, as the real server does. An object being
    /// deleted whose last finalizer is gone is removed instead.
    fn commit(&mut self, info: &ResourceInfo, old: Option<&Value>, mut new: Value, dry_run: bool) -> Value {
        if let Some(old) = old
            && without_rv(old) == without_rv(&new)
        {
            return old.clone();
        }
        if dry_run {
            return new;
        }
        if old.is_some() && self.should_remove(info, &new) {
            return self.remove_object(info, new, old.cloned());
        }
        self.rv += 1;
        meta_mut(&mut new).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let key = Self::object_key(info, Some(namespace_of(&new)), name_of(&new));
        self.objects.entry(Self::bucket_key(info)).or_default().insert(key, new.clone());
        self.record(Change {
            rv: self.rv,
            group: info.group.clone(),
            plural: info.plural.clone(),
            namespace: namespace_of(&new).to_owned(),
            kind: if old.is_some() { ChangeKind::Modified } else { ChangeKind::Added },
            object: new.clone(),
            previous: old.cloned(),
        });
        new
    }

    /// Whether a (deleting) object is done: no finalizers left, and for a namespace, no
    /// objects left in it.
    fn should_remove(&self, info: &ResourceInfo, obj: &Value) -> bool {
        if !is_deleting(obj) || !finalizers(obj).is_empty() {
            return false;
        }
        !(is_namespace(info) && self.namespace_lifecycle && self.namespace_has_objects(name_of(obj)))
    }

    fn namespace_has_objects(&self, ns: &str) -> bool {
        self.objects.iter().any(|(key, bucket)| {
            self.info_of_bucket(key).is_some_and(|i| i.namespaced) && bucket.keys().any(|(n, _)| n == ns)
        })
    }

    /// Removes an object for good: a new version, a DELETED event, then garbage collection
    /// of its dependents and the end of a terminating namespace it emptied.
    fn remove_object(&mut self, info: &ResourceInfo, mut obj: Value, previous: Option<Value>) -> Value {
        self.rv += 1;
        meta_mut(&mut obj).insert("resourceVersion".into(), json!(self.rv.to_string()));
        let key = Self::object_key(info, Some(namespace_of(&obj)), name_of(&obj));
        if let Some(bucket) = self.objects.get_mut(&Self::bucket_key(info)) {
            bucket.remove(&key);
        }
        self.record(Change {
            rv: self.rv,
            group: info.group.clone(),
            plural: info.plural.clone(),
            namespace: namespace_of(&obj).to_owned(),
            kind: ChangeKind::Deleted,
            object: obj.clone(),
            previous,
        });
        self.after_removal(info, &obj);
        obj
    }

    fn after_removal(&mut self, info: &ResourceInfo, obj: &Value) {
        if self.garbage_collection {
            let uid = uid_of(obj).to_owned();
            if !uid.is_empty() {
                for (dep_info, ns, name) in self.orphaned_dependents(&uid, info.namespaced.then(|| namespace_of(obj))) {
                    let _ = self.delete_object(&dep_info, Some(&ns), &name, false);
                }
            }
        }
        if self.namespace_lifecycle && info.namespaced {
            self.maybe_finish_namespace(namespace_of(obj));
        }
    }

    /// Objects owned by `uid` that have no other owner left.
    fn orphaned_dependents(&self, uid: &str, owner_ns: Option<&str>) -> Vec<(Arc<ResourceInfo>, String, String)> {
        let mut out = Vec::new();
        for (key, bucket) in &self.objects {
            let Some(info) = self.info_of_bucket(key) else { continue };
            for ((ns, name), obj) in bucket {
                if owner_ns.is_some_and(|o| o != ns) {
                    continue;
                }
                let owners = owner_uids(obj);
                if owners.iter().any(|o| o == uid) && !owners.iter().any(|o| o != uid && self.uid_exists(o)) {
                    out.push((info.clone(), ns.clone(), name.clone()));
                }
            }
        }
        out
    }

    fn uid_exists(&self, uid: &str) -> bool {
        self.objects.values().any(|b| b.values().any(|o| uid_of(o) == uid))
    }

    fn maybe_finish_namespace(&mut self, ns: &str) {
        let Some(ns_info) = self.resources.namespaces() else { return };
        let Some(ns_obj) = self.lookup(&ns_info, None, ns).cloned() else { return };
        if self.should_remove(&ns_info, &ns_obj) {
            self.remove_object(&ns_info, ns_obj.clone(), Some(ns_obj));
        }
    }

    pub(crate) fn get(&self, info: &ResourceInfo, namespace: Option<&str>, name: &str) -> Result<Value, ApiError> {
        self.lookup(info, namespace, name).map(|o| present(info, o)).ok_or_else(|| ApiError::not_found(info, name))
    }

    pub(crate) fn list(&self, info: &ResourceInfo, namespace: Option<&str>, selectors: &Selectors) -> Value {
        let items: Vec<Value> = self
            .objects_of(info, namespace)
            .into_iter()
            .filter(|o| selectors.matches(o))
            .map(|o| present(info, o))
            .collect();
        json!({
            "apiVersion": info.api_version(),
            "kind": info.list_kind(),
            "metadata": { "resourceVersion": self.rv.to_string() },
            "items": items,
        })
    }

    /// Sets or checks the namespace of a body against the request path.
    fn resolve_namespace(info: &ResourceInfo, path_ns: Option<&str>, obj: &mut Value) -> Result<(), ApiError> {
        if !info.namespaced {
            meta_mut(obj).remove("namespace");
            return Ok(());
        }
        let body_ns = meta_str(obj, "namespace").filter(|s| !s.is_empty()).map(str::to_owned);
        match (body_ns, path_ns) {
            (Some(b), Some(p)) if b != p => Err(ApiError::bad_request(
                "the namespace of the provided object does not match the namespace sent on the request",
            )),
            (_, Some(p)) => {
                meta_mut(obj).insert("namespace".into(), json!(p));
                Ok(())
            }
            (Some(_), None) => Ok(()),
            (None, None) => Err(ApiError::bad_request("a namespace is required")),
        }
    }

    fn check_namespace_for_create(&self, info: &ResourceInfo, ns: &str) -> Result<(), ApiError> {
        if !info.namespaced || !self.namespace_lifecycle {
            return Ok(());
        }
        let Some(ns_info) = self.resources.namespaces() else { return Ok(()) };
        match self.lookup(&ns_info, None, ns) {
            None => Err(ApiError::not_found(&ns_info, ns)),
            Some(n) if is_deleting(n) => Err(ApiError::forbidden(format!(
                "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                info.qualified(),
                name_of(n)
            ))),
            Some(_) => Ok(()),
        }
    }

    /// The common end of every create: system fields, validation, managed fields, commit.
    fn finish_create(
        &mut self,
        info: &ResourceInfo,
        mut obj: Value,
        dry_run: bool,
        writer: Option<Writer<'_>>,
    ) -> Result<(u16, Value), ApiError> {
        let name = name_of(&obj).to_owned();
        self.check_namespace_for_create(info, namespace_of(&obj))?;
        if self.lookup(info, Some(namespace_of(&obj)), &name).is_some() {
            return Err(ApiError::already_exists(info, &name));
        }
        if info.status_subresource
            && let Some(map) = obj.as_object_mut()
        {
            map.remove("status");
        }
        apply_defaults(info, &mut obj, true);
        {
            let meta = meta_mut(&mut obj);
            for key in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "selfLink",
            ] {
                meta.remove(key);
            }
            meta.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            meta.insert("creationTimestamp".into(), json!(now()));
            if info.tracks_generation {
                meta.insert("generation".into(), json!(1));
            }
        }
        normalize(&mut obj);
        validate(info, &obj).map_err(|m| ApiError::invalid(info, &name, m))?;
        if let Some(w) = writer {
            fields::track_update(None, &mut obj, w);
        }
        Ok((201, self.commit(info, None, obj, dry_run)))
    }

    pub(crate) fn create(
        &mut self,
        info: &ResourceInfo,
        path_ns: Option<&str>,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<(u16, Value), ApiError> {
        let mut obj = expect_object(body)?;
        check_type(info, &mut obj)?;
        Self::resolve_namespace(info, path_ns, &mut obj)?;
        if rv_of(&obj).is_some() {
            return Err(ApiError::internal("resourceVersion should not be set on objects to be created"));
        }
        if name_of(&obj).is_empty() {
            match meta_str(&obj, "generateName").filter(|s| !s.is_empty()) {
                Some(prefix) => {
                    let name = format!("{prefix}{}", random_suffix());
                    meta_mut(&mut obj).insert("name".into(), json!(name));
                }
                None => {
                    return Err(ApiError::invalid(
                        info,
                        "",
                        "metadata.name: Required value: name or generateName is required",
                    ));
                }
            }
        }
        meta_mut(&mut obj).remove("managedFields");
        let now = now();
        let api_version = info.api_version();
        let writer = Writer {
            manager: opts.manager(),
            api_version: &api_version,
            subresource: None,
            scope: scope_for(info, None),
            now: &now,
        };
        self.finish_create(info, obj, opts.dry_run, Some(writer))
    }

    /// The common end of every update: the candidate `new` replaces `old` within the
    /// limits the server sets (name, type, system metadata, status subresource, finalizers
    /// of a deleting object), with generation and managed fields maintained.
    fn finish_update(
        &self,
        info: &ResourceInfo,
        old: &Value,
        mut new: Value,
        subresource: Option<&str>,
        writer: Option<Writer<'_>>,
    ) -> Result<Value, ApiError> {
        if !new.is_object() {
            return Err(ApiError::bad_request("the result must be a JSON object"));
        }
        check_type(info, &mut new)?;
        let name = name_of(old).to_owned();
        if name_of(&new) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                name_of(&new)
            )));
        }
        if info.namespaced {
            if namespace_of(&new).is_empty() {
                copy_meta(old, &mut new, "namespace");
            } else if namespace_of(&new) != namespace_of(old) {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
        } else {
            meta_mut(&mut new).remove("namespace");
        }
        if let Some(rv) = rv_of(&new)
            && Some(rv) != rv_of(old)
        {
            return Err(ApiError::conflict(info, &name));
        }
        if subresource == Some("status") {
            let mut result = old.clone();
            match new.get("status") {
                Some(status) => result["status"] = status.clone(),
                None => {
                    if let Some(map) = result.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
            copy_meta(&new, &mut result, "managedFields");
            new = result;
        } else if info.status_subresource {
            match old.get("status") {
                Some(status) => new["status"] = status.clone(),
                None => {
                    if let Some(map) = new.as_object_mut() {
                        map.remove("status");
                    }
                }
            }
        }
        for key in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "resourceVersion",
            "selfLink",
        ] {
            copy_meta(old, &mut new, key);
        }
        if is_deleting(old) {
            let before = finalizers(old);
            let added: Vec<String> = finalizers(&new).into_iter().filter(|f| !before.contains(f)).collect();
            if !added.is_empty() {
                return Err(ApiError::invalid(
                    info,
                    &name,
                    format!(
                        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being \
                         deleted, found new finalizers {added:?}"
                    ),
                ));
            }
        }
        apply_defaults(info, &mut new, false);
        normalize(&mut new);
        validate(info, &new).map_err(|m| ApiError::invalid(info, &name, m))?;
        if info.tracks_generation && spec_part(old) != spec_part(&new) {
            meta_mut(&mut new).insert("generation".into(), json!(generation(old) + 1));
        }
        if let Some(w) = writer {
            fields::track_update(Some(old), &mut new, w);
        }
        Ok(new)
    }

    fn existing(&self, info: &ResourceInfo, namespace: Option<&str>, name: &str) -> Result<Value, ApiError> {
        self.lookup(info, namespace, name).cloned().ok_or_else(|| ApiError::not_found(info, name))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn replace(
        &mut self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<(u16, Value), ApiError> {
        let mut obj = expect_object(body)?;
        check_type(info, &mut obj)?;
        if name_of(&obj) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                name_of(&obj)
            )));
        }
        Self::resolve_namespace(info, namespace, &mut obj)?;
        let old = self.existing(info, namespace, name)?;
        match rv_of(&obj) {
            Some(rv) if Some(rv) != rv_of(&old) => return Err(ApiError::conflict(info, name)),
            None if !info.allow_unconditional_update => {
                return Err(ApiError::invalid(
                    info,
                    name,
                    "metadata.resourceVersion: Invalid value: 0x0: must be specified for an update",
                ));
            }
            _ => {}
        }
        let now = now();
        let api_version = info.api_version();
        let writer = Writer {
            manager: opts.manager(),
            api_version: &api_version,
            subresource,
            scope: scope_for(info, subresource),
            now: &now,
        };
        let new = self.finish_update(info, &old, obj, subresource, Some(writer))?;
        Ok((200, self.commit(info, Some(&old), new, opts.dry_run)))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn patch(
        &mut self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        kind: PatchKind,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<(u16, Value), ApiError> {
        if kind == PatchKind::Apply {
            return self.apply(info, namespace, name, subresource, body, opts);
        }
        let old = self.existing(info, namespace, name)?;
        let mut new = old.clone();
        match kind {
            PatchKind::Json => patch::json_patch(&mut new, &body).map_err(ApiError::unprocessable)?,
            PatchKind::Merge => patch::merge_patch(&mut new, &expect_object(body)?),
            PatchKind::Strategic => {
                let mut body = expect_object(body)?;
                strip_directives(&mut body);
                patch::merge_patch(&mut new, &body);
            }
            PatchKind::Apply => unreachable!("handled above"),
        }
        let now = now();
        let api_version = info.api_version();
        let writer = Writer {
            manager: opts.manager(),
            api_version: &api_version,
            subresource,
            scope: scope_for(info, subresource),
            now: &now,
        };
        let new = self.finish_update(info, &old, new, subresource, Some(writer))?;
        Ok((200, self.commit(info, Some(&old), new, opts.dry_run)))
    }

    fn apply(
        &mut self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        subresource: Option<&str>,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<(u16, Value), ApiError> {
        let manager = opts.field_manager.as_deref().filter(|m| !m.is_empty()).ok_or_else(|| {
            ApiError::invalid(info, name, "fieldManager: Required value: is required for apply patch")
        })?;
        let mut applied = expect_object(body)?;
        for key in ["apiVersion", "kind"] {
            if applied.get(key).and_then(Value::as_str).is_none_or(str::is_empty) {
                return Err(ApiError::bad_request(format!(
                    "error decoding YAML: Object '{}' is missing",
                    if key == "kind" { "Kind" } else { "apiVersion" }
                )));
            }
        }
        check_type(info, &mut applied)?;
        match meta_str(&applied, "name") {
            None | Some("") => {
                meta_mut(&mut applied).insert("name".into(), json!(name));
            }
            Some(n) if n == name => {}
            Some(n) => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
        }
        Self::resolve_namespace(info, namespace, &mut applied)?;
        if applied.pointer("/metadata/managedFields").is_some_and(|m| !m.is_null()) {
            return Err(ApiError::bad_request("metadata.managedFields must be nil"));
        }
        let now = now();
        let api_version = info.api_version();
        let writer =
            Writer { manager, api_version: &api_version, subresource, scope: scope_for(info, subresource), now: &now };
        let old = self.lookup(info, namespace, name).cloned();
        let conflict = |conflicts: Vec<fields::Conflict>| {
            let described: Vec<String> =
                conflicts.iter().map(|c| format!("conflict with \"{}\": {}", c.manager, c.field())).collect();
            let causes = conflicts
                .iter()
                .map(|c| {
                    json!({
                        "type": "FieldManagerConflict",
                        "message": format!("conflict with \"{}\"", c.manager),
                        "field": c.field(),
                    })
                })
                .collect();
            ApiError::conflict_with(
                info,
                name,
                format!(
                    "Apply failed with {} conflict{}: {}",
                    conflicts.len(),
                    if conflicts.len() == 1 { "" } else { "s" },
                    described.join("; ")
                ),
                causes,
            )
        };
        match old {
            None => {
                if subresource.is_some() {
                    return Err(ApiError::not_found(info, name));
                }
                if rv_of(&applied).is_some() {
                    return Err(ApiError::conflict(info, name));
                }
                let mut obj = fields::apply(None, &applied, opts.force, writer).map_err(conflict)?;
                for key in ["name", "namespace"] {
                    copy_meta(&applied, &mut obj, key);
                }
                check_type(info, &mut obj)?;
                self.finish_create(info, obj, opts.dry_run, None)
            }
            Some(old) => {
                let merged = fields::apply(Some(&old), &applied, opts.force, writer).map_err(conflict)?;
                let mut merged = merged;
                if let Some(rv) = rv_of(&applied) {
                    meta_mut(&mut merged).insert("resourceVersion".into(), json!(rv));
                }
                let new = self.finish_update(info, &old, merged, subresource, None)?;
                Ok((200, self.commit(info, Some(&old), new, opts.dry_run)))
            }
        }
    }

    pub(crate) fn delete(
        &mut self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        options: &Value,
        dry_run: bool,
    ) -> Result<(u16, Value), ApiError> {
        let old = self.existing(info, namespace, name)?;
        if let Some(pre) = options.get("preconditions") {
            if let Some(uid) = pre.get("uid").and_then(Value::as_str)
                && uid != uid_of(&old)
            {
                return Err(ApiError::new(
                    409,
                    "Conflict",
                    format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", uid_of(&old)),
                ));
            }
            if let Some(rv) = pre.get("resourceVersion").and_then(Value::as_str)
                && Some(rv) != rv_of(&old)
            {
                return Err(ApiError::new(
                    409,
                    "Conflict",
                    format!(
                        "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}",
                        rv_of(&old).unwrap_or_default()
                    ),
                ));
            }
        }
        if dry_run {
            return Ok((200, present(info, &old)));
        }
        self.delete_object(info, namespace, name, true)
    }

    /// Deletes one object: with finalizers (or a namespace with content) it is marked with a
    /// deletionTimestamp and kept; otherwise it is removed.
    fn delete_object(
        &mut self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        answer_status: bool,
    ) -> Result<(u16, Value), ApiError> {
        let old = self.existing(info, namespace, name)?;
        if is_namespace(info) && self.namespace_lifecycle {
            let contents: Vec<(Arc<ResourceInfo>, String)> = self
                .objects
                .iter()
                .filter_map(|(key, bucket)| self.info_of_bucket(key).filter(|i| i.namespaced).map(|i| (i, bucket)))
                .flat_map(|(i, bucket)| {
                    bucket
                        .keys()
                        .filter(|(ns, _)| ns == name)
                        .map(move |(_, n)| (i.clone(), n.clone()))
                        .collect::<Vec<_>>()
                })
                .collect();
            for (i, n) in contents {
                let _ = self.delete_object(&i, Some(name), &n, false);
            }
        }
        let old = self.lookup(info, namespace, name).cloned().unwrap_or(old);
        let keep = !finalizers(&old).is_empty()
            || (is_namespace(info) && self.namespace_lifecycle && self.namespace_has_objects(name));
        if keep {
            if is_deleting(&old) {
                return Ok((200, present(info, &old)));
            }
            let mut new = old.clone();
            {
                let meta = meta_mut(&mut new);
                meta.insert("deletionTimestamp".into(), json!(now()));
                meta.insert("deletionGracePeriodSeconds".into(), json!(0));
            }
            if info.tracks_generation {
                meta_mut(&mut new).insert("generation".into(), json!(generation(&old) + 1));
            }
            if is_namespace(info) {
                new["status"] = json!({ "phase": "Terminating" });
            }
            let stored = self.commit(info, Some(&old), new, false);
            return Ok((200, present(info, &stored)));
        }
        let removed = self.remove_object(info, old.clone(), Some(old));
        if info.delete_returns_object || !answer_status {
            return Ok((200, present(info, &removed)));
        }
        let mut details = json!({ "name": name, "kind": info.plural, "uid": uid_of(&removed) });
        if !info.group.is_empty() {
            details["group"] = json!(info.group);
        }
        Ok((
            200,
            json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details }),
        ))
    }

    pub(crate) fn delete_collection(
        &mut self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        selectors: &Selectors,
        dry_run: bool,
    ) -> Result<(u16, Value), ApiError> {
        let targets: Vec<(String, String)> = self
            .objects_of(info, namespace)
            .into_iter()
            .filter(|o| selectors.matches(o))
            .map(|o| (namespace_of(o).to_owned(), name_of(o).to_owned()))
            .collect();
        let mut items = Vec::new();
        for (ns, name) in targets {
            if dry_run {
                if let Some(o) = self.lookup(info, Some(&ns), &name) {
                    items.push(present(info, o));
                }
                continue;
            }
            if let Ok((_, obj)) = self.delete_object(info, Some(&ns), &name, false) {
                items.push(obj);
            }
        }
        Ok((
            200,
            json!({
                "apiVersion": info.api_version(),
                "kind": info.list_kind(),
                "metadata": { "resourceVersion": self.rv.to_string() },
                "items": items,
            }),
        ))
    }

    /// Starts a watch of one resource. `from` is the requested resourceVersion (`None` for
    /// "" or "0": replay the current objects as ADDED events).
    pub(crate) fn watch(
        &self,
        info: &ResourceInfo,
        namespace: Option<&str>,
        from: Option<u64>,
    ) -> Result<WatchStart, ApiError> {
        let initial = match from {
            Some(rv) if rv < self.compacted => return Err(ApiError::expired(rv, self.compacted)),
            Some(rv) => self
                .history
                .iter()
                .filter(|c| c.rv > rv && c.group == info.group && c.plural == info.plural)
                .cloned()
                .collect(),
            None => self
                .objects_of(info, namespace)
                .into_iter()
                .map(|o| {
                    Arc::new(Change {
                        rv: rv_of(o).and_then(|r| r.parse().ok()).unwrap_or(0),
                        group: info.group.clone(),
                        plural: info.plural.clone(),
                        namespace: namespace_of(o).to_owned(),
                        kind: ChangeKind::Added,
                        object: o.clone(),
                        previous: None,
                    })
                })
                .collect(),
        };
        Ok(WatchStart { initial, rx: self.changes.subscribe(), start_rv: self.rv })
    }

    /// Direct store access: inserts or overwrites an object without any API checks
    /// (type, namespace existence, validation), filling in uid, creationTimestamp and
    /// generation when missing. It is seen by watches like any write.
    pub(crate) fn put(&mut self, mut obj: Value) -> Result<Value, String> {
        if !obj.is_object() {
            return Err("an object must be a JSON object".into());
        }
        let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or_default();
        let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
        let info = self
            .resources
            .by_kind(api_version, kind)
            .ok_or_else(|| format!("the fake serves no {api_version} {kind}"))?;
        if name_of(&obj).is_empty() {
            return Err("metadata.name is required".into());
        }
        if info.namespaced {
            if namespace_of(&obj).is_empty() {
                meta_mut(&mut obj).insert("namespace".into(), json!("default"));
            }
        } else {
            meta_mut(&mut obj).remove("namespace");
        }
        let old = self.lookup(&info, Some(namespace_of(&obj)), name_of(&obj)).cloned();
        {
            let meta = meta_mut(&mut obj);
            meta.remove("resourceVersion");
            if !meta.get("uid").is_some_and(Value::is_string) {
                let uid = old.as_ref().map(uid_of).map(str::to_owned);
                let uid = uid.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
                meta.insert("uid".into(), json!(uid));
            }
            if !meta.contains_key("creationTimestamp") {
                let ts =
                    old.as_ref().and_then(|o| meta_str(o, "creationTimestamp")).map(str::to_owned).unwrap_or_else(now);
                meta.insert("creationTimestamp".into(), json!(ts));
            }
            if info.tracks_generation && !meta.contains_key("generation") {
                meta.insert("generation".into(), json!(1));
            }
        }
        normalize(&mut obj);
        if let Some(old) = &old {
            copy_meta(old, &mut obj, "resourceVersion");
        }
        let stored = self.commit(&info, old.as_ref(), obj, false);
        if old.is_none() && self.should_remove(&info, &stored) {
            return Ok(self.remove_object(&info, stored.clone(), Some(stored)));
        }
        Ok(stored)
    }

    /// Direct store access: removes an object at once, finalizers or not.
    pub(crate) fn remove(&mut self, info: &ResourceInfo, namespace: Option<&str>, name: &str) -> Option<Value> {
        let old = self.lookup(info, namespace, name).cloned()?;
        Some(self.remove_object(info, old.clone(), Some(old)))
    }
}

/// The few defaults and conversions of the real API server that controllers observe:
/// a Secret's `stringData` is merged into `data` (base64) and dropped, its `type`
/// defaults to `Opaque`; PersistentVolumes default `persistentVolumeReclaimPolicy: Retain`
/// and `volumeMode: Filesystem`, claims `volumeMode: Filesystem`, and both start in phase
/// `Pending`; namespaces get `spec.finalizers: [kubernetes]` and phase `Active`.
fn apply_defaults(info: &ResourceInfo, obj: &mut Value, creating: bool) {
    use base64::Engine as _;
    if !info.group.is_empty() {
        return;
    }
    let set_missing = |obj: &mut Value, section: &str, key: &str, value: Value| {
        if !obj.get(section).is_some_and(Value::is_object) {
            obj[section] = json!({});
        }
        if obj[section].get(key).is_none_or(Value::is_null) {
            obj[section][key] = value;
        }
    };
    match info.plural.as_str() {
        "secrets" => {
            if let Some(Value::Object(string_data)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) {
                if !obj.get("data").is_some_and(Value::is_object) {
                    obj["data"] = json!({});
                }
                for (k, v) in string_data {
                    let text = v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string());
                    obj["data"][k] = json!(base64::engine::general_purpose::STANDARD.encode(text));
                }
            }
            if obj.get("type").is_none_or(Value::is_null) {
                obj["type"] = json!("Opaque");
            }
        }
        "persistentvolumes" => {
            set_missing(obj, "spec", "persistentVolumeReclaimPolicy", json!("Retain"));
            set_missing(obj, "spec", "volumeMode", json!("Filesystem"));
            if creating {
                set_missing(obj, "status", "phase", json!("Pending"));
            }
        }
        "persistentvolumeclaims" => {
            set_missing(obj, "spec", "volumeMode", json!("Filesystem"));
            if creating {
                set_missing(obj, "status", "phase", json!("Pending"));
            }
        }
        "namespaces" => {
            set_missing(obj, "spec", "finalizers", json!(["kubernetes"]));
            if creating {
                set_missing(obj, "status", "phase", json!("Active"));
            }
        }
        _ => {}
    }
}

/// Drops strategic-merge-patch directives (`$patch`, `$retainKeys`,
/// `$setElementOrder/...`, `$deleteFromPrimitiveList/...`): the fake merges such a patch
/// as a JSON merge patch.
fn strip_directives(v: &mut Value) {
    match v {
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with('$'));
            map.values_mut().for_each(strip_directives);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_directives),
        _ => {}
    }
}
