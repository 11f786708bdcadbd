//! Field ownership (`metadata.managedFields`) and server-side apply.
//!
//! A field set is a set of leaf paths: a leaf is a scalar, a list (lists are atomic here:
//! a list is owned and replaced whole, where the real server merges lists that have a
//! merge key, such as a pod's containers) or an empty object. Sets are stored in the real
//! `FieldsV1` format (`{"f:metadata":{"f:labels":{"f:app":{}}}}`), so clients see ordinary
//! managed fields, and parsed back from it (associative `k:`/`v:`/`i:` keys written by a
//! real server make their list an atomic leaf).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

pub(crate) type FieldPath = Vec<String>;
pub(crate) type FieldSet = BTreeSet<FieldPath>;

/// The part of an object a write may change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The whole object (resources without a status subresource).
    All,
    /// Everything but `status` (the main endpoint of a resource with a status subresource).
    AllButStatus,
    /// Only `status` (the `/status` subresource).
    StatusOnly,
}

/// Metadata the server owns: never part of a field set.
const SYSTEM_METADATA: &[&str] = &[
    "name",
    "namespace",
    "generateName",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "managedFields",
    "selfLink",
];

fn in_scope(path: &[String], scope: Scope) -> bool {
    let Some(first) = path.first() else { return false };
    if first == "apiVersion" || first == "kind" {
        return false;
    }
    if first == "metadata" && path.get(1).is_some_and(|k| SYSTEM_METADATA.contains(&k.as_str())) {
        return false;
    }
    match scope {
        Scope::All => true,
        Scope::AllButStatus => first != "status",
        Scope::StatusOnly => first == "status",
    }
}

/// The leaves of `value` within `scope`, with their values.
pub(crate) fn leaves(value: &Value, scope: Scope) -> BTreeMap<FieldPath, &Value> {
    fn walk<'a>(v: &'a Value, prefix: &mut FieldPath, scope: Scope, out: &mut BTreeMap<FieldPath, &'a Value>) {
        match v {
            Value::Object(map) if !map.is_empty() => {
                for (k, child) in map {
                    prefix.push(k.clone());
                    if in_scope(prefix, scope) {
                        walk(child, prefix, scope, out);
                    }
                    prefix.pop();
                }
            }
            _ if !prefix.is_empty() => {
                out.insert(prefix.clone(), v);
            }
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(value, &mut Vec::new(), scope, &mut out);
    out
}

pub(crate) fn get_path<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(value, |cur, seg| cur.as_object().and_then(|m| m.get(seg)))
}

/// Sets the value at `path`, creating (or replacing non-object) parents as objects.
/// An empty object only makes sure an object is there.
fn set_path(value: &mut Value, path: &[String], new: Value) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut cur = value;
    for seg in parents {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        cur = cur
            .as_object_mut()
            .map(|m| m.entry(seg.clone()).or_insert(Value::Object(Map::new())))
            .expect("just made an object");
    }
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    let Some(map) = cur.as_object_mut() else { return };
    if new.as_object().is_some_and(Map::is_empty) && map.get(last).is_some_and(Value::is_object) {
        return;
    }
    map.insert(last.clone(), new);
}

/// Removes the value at `path`, and the parent objects that this leaves empty.
pub(crate) fn remove_path(value: &mut Value, path: &[String]) {
    fn go(cur: &mut Value, path: &[String]) -> bool {
        let Some(map) = cur.as_object_mut() else { return false };
        match path {
            [] => false,
            [last] => map.remove(last).is_some(),
            [first, rest @ ..] => {
                let Some(child) = map.get_mut(first) else { return false };
                let removed = go(child, rest);
                if removed && child.as_object().is_some_and(Map::is_empty) {
                    map.remove(first);
                }
                removed
            }
        }
    }
    go(value, path);
}

/// Whether one path is the other or contains it.
fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// A field set in the `FieldsV1` format.
pub(crate) fn encode(set: &FieldSet) -> Value {
    fn node_mut<'a>(root: &'a mut Value, path: &[String]) -> &'a mut Value {
        path.iter().fold(root, |cur, seg| {
            cur.as_object_mut()
                .expect("fieldsV1 nodes are objects")
                .entry(format!("f:{seg}"))
                .or_insert_with(|| json!({}))
        })
    }
    let mut root = json!({});
    for path in set {
        node_mut(&mut root, path);
    }
    for path in set {
        let node = node_mut(&mut root, path);
        if let Some(map) = node.as_object_mut()
            && map.keys().any(|k| k != ".")
        {
            map.insert(".".into(), json!({}));
        }
    }
    root
}

/// Parses a `FieldsV1` value into a field set.
pub(crate) fn decode(fields: &Value) -> FieldSet {
    fn walk(node: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
        let Some(map) = node.as_object() else { return };
        if (map.is_empty() || map.contains_key(".")) && !prefix.is_empty() {
            out.insert(prefix.clone());
        }
        for (key, child) in map {
            if let Some(name) = key.strip_prefix("f:") {
                prefix.push(name.to_owned());
                walk(child, prefix, out);
                prefix.pop();
            } else if (key.starts_with("k:") || key.starts_with("v:") || key.starts_with("i:")) && !prefix.is_empty() {
                out.insert(prefix.clone());
            }
        }
    }
    let mut out = FieldSet::new();
    walk(fields, &mut Vec::new(), &mut out);
    out
}

/// One entry of `metadata.managedFields`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Manager {
    pub manager: String,
    pub operation: String,
    pub api_version: String,
    pub time: String,
    pub subresource: Option<String>,
    pub fields: FieldSet,
}

impl Manager {
    fn is(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager && self.operation == operation && self.subresource.as_deref() == subresource
    }

    fn to_json(&self) -> Value {
        let mut v = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": encode(&self.fields),
        });
        if let Some(sub) = &self.subresource {
            v["subresource"] = json!(sub);
        }
        v
    }
}

pub(crate) fn read_managers(obj: &Value) -> Vec<Manager> {
    let Some(entries) = obj.pointer("/metadata/managedFields").and_then(Value::as_array) else {
        return Vec::new();
    };
    let text = |e: &Value, k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    entries
        .iter()
        .map(|e| Manager {
            manager: text(e, "manager"),
            operation: text(e, "operation"),
            api_version: text(e, "apiVersion"),
            time: text(e, "time"),
            subresource: e.get("subresource").and_then(Value::as_str).map(str::to_owned),
            fields: e.get("fieldsV1").map(decode).unwrap_or_default(),
        })
        .collect()
}

fn write_managers(obj: &mut Value, mut managers: Vec<Manager>) {
    managers.retain(|m| !m.fields.is_empty());
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else { return };
    if managers.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), Value::Array(managers.iter().map(Manager::to_json).collect()));
    }
}

/// Who writes, and where.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Writer<'a> {
    pub manager: &'a str,
    pub api_version: &'a str,
    pub subresource: Option<&'a str>,
    pub scope: Scope,
    pub now: &'a str,
}

/// Records a non-apply write (create, update, merge or JSON patch) in `new`'s managed
/// fields: the writer's `Update` entry gains the fields it changed, other entries lose
/// them, and removed fields leave every entry.
pub(crate) fn track_update(old: Option<&Value>, new: &mut Value, w: Writer<'_>) {
    let mut managers = old.map(read_managers).unwrap_or_default();
    let null = Value::Null;
    let old_leaves = leaves(old.unwrap_or(&null), w.scope);
    let new_leaves = leaves(new, w.scope);
    let changed: Vec<&FieldPath> =
        new_leaves.iter().filter(|(p, v)| old_leaves.get(*p) != Some(*v)).map(|(p, _)| p).collect();
    let removed: Vec<&FieldPath> = old_leaves.keys().filter(|p| !new_leaves.contains_key(*p)).collect();
    for m in &mut managers {
        m.fields.retain(|q| {
            !changed.iter().any(|p| overlaps(p, q)) && !removed.iter().any(|p| q.starts_with(p.as_slice()))
        });
    }
    if !changed.is_empty() {
        let idx = match managers.iter().position(|m| m.is(w.manager, "Update", w.subresource)) {
            Some(i) => i,
            None => {
                managers.push(Manager {
                    manager: w.manager.to_owned(),
                    operation: "Update".into(),
                    api_version: w.api_version.to_owned(),
                    time: w.now.to_owned(),
                    subresource: w.subresource.map(str::to_owned),
                    fields: FieldSet::new(),
                });
                managers.len() - 1
            }
        };
        let entry = &mut managers[idx];
        entry.fields.extend(changed.into_iter().cloned());
        entry.time = w.now.to_owned();
        entry.api_version = w.api_version.to_owned();
    }
    write_managers(new, managers);
}

/// A field another manager owns with a different value, found by a non-forced apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Conflict {
    pub manager: String,
    pub path: FieldPath,
}

impl Conflict {
    /// The field as the API server writes it: `.spec.x`.
    pub(crate) fn field(&self) -> String {
        self.path.iter().map(|s| format!(".{s}")).collect()
    }
}

/// Server-side apply of `applied` by `w.manager` onto `old` (or onto nothing: a create).
///
/// Fields of the applied configuration replace the stored ones (objects merge
/// recursively, lists and scalars replace, `null` removes); fields the manager applied
/// last time but no longer applies are removed unless another manager owns them; a field
/// owned by another manager with a different value is a conflict, unless `force`, which
/// takes it over.
pub(crate) fn apply(old: Option<&Value>, applied: &Value, force: bool, w: Writer<'_>) -> Result<Value, Vec<Conflict>> {
    let mut result = old.cloned().unwrap_or_else(|| json!({}));
    let mut managers = old.map(read_managers).unwrap_or_default();
    let all = leaves(applied, w.scope);
    let removals: Vec<&FieldPath> = all.iter().filter(|(_, v)| v.is_null()).map(|(p, _)| p).collect();
    let sets: BTreeMap<&FieldPath, &Value> = all.iter().filter(|(_, v)| !v.is_null()).map(|(p, v)| (p, *v)).collect();
    let applied_set: FieldSet = sets.keys().map(|p| (*p).clone()).collect();

    let mut conflicts = Vec::new();
    for m in managers.iter().filter(|m| m.manager != w.manager) {
        for (p, v) in &sets {
            if m.fields.iter().any(|q| overlaps(p, q)) && get_path(&result, p) != Some(*v) {
                let c = Conflict { manager: m.manager.clone(), path: (*p).clone() };
                if !conflicts.contains(&c) {
                    conflicts.push(c);
                }
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    for c in &conflicts {
        for m in managers.iter_mut().filter(|m| m.manager == c.manager) {
            m.fields.retain(|q| !overlaps(q, &c.path));
        }
    }

    let previous: FieldSet =
        managers.iter().find(|m| m.is(w.manager, "Apply", w.subresource)).map(|m| m.fields.clone()).unwrap_or_default();
    for p in &previous {
        let still_applied = applied_set.iter().any(|a| overlaps(a, p));
        let owned_elsewhere = managers
            .iter()
            .filter(|m| !m.is(w.manager, "Apply", w.subresource))
            .any(|m| m.fields.iter().any(|q| overlaps(q, p)));
        if !still_applied && !owned_elsewhere {
            remove_path(&mut result, p);
        }
    }
    for p in removals {
        remove_path(&mut result, p);
    }
    for (p, v) in &sets {
        set_path(&mut result, p, (*v).clone());
    }
    for key in ["apiVersion", "kind"] {
        if result.get(key).is_none()
            && let Some(v) = applied.get(key)
        {
            result[key] = v.clone();
        }
    }
    if result.get("metadata").is_none() {
        result["metadata"] = json!({});
    }

    match managers.iter_mut().find(|m| m.is(w.manager, "Apply", w.subresource)) {
        Some(entry) => {
            if entry.fields != applied_set {
                entry.fields = applied_set;
                entry.time = w.now.to_owned();
            }
            entry.api_version = w.api_version.to_owned();
        }
        None => managers.push(Manager {
            manager: w.manager.to_owned(),
            operation: "Apply".into(),
            api_version: w.api_version.to_owned(),
            time: w.now.to_owned(),
            subresource: w.subresource.map(str::to_owned),
            fields: applied_set,
        }),
    }
    write_managers(&mut result, managers);
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(manager: &str) -> Writer<'_> {
        Writer { manager, api_version: "v1", subresource: None, scope: Scope::All, now: "2024-01-01T00:00:00Z" }
    }

    #[test]
    fn fields_v1_round_trip() {
        let set: FieldSet = [
            vec!["metadata".to_owned(), "labels".to_owned(), "app".to_owned()],
            vec!["spec".to_owned()],
            vec!["spec".to_owned(), "x".to_owned()],
        ]
        .into_iter()
        .collect();
        let encoded = encode(&set);
        assert_eq!(encoded, json!({ "f:metadata": { "f:labels": { "f:app": {} } }, "f:spec": { ".": {}, "f:x": {} } }));
        assert_eq!(decode(&encoded), set);
    }

    #[test]
    fn apply_removes_fields_no_longer_applied() {
        let first = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "a", "labels": { "x": "1", "y": "2" } }, "data": { "k": "v" } });
        let obj = apply(None, &first, false, writer("m")).unwrap();
        assert_eq!(obj["metadata"]["labels"], json!({ "x": "1", "y": "2" }));
        let second = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "a", "labels": { "x": "1" } }, "data": { "k": "v2" } });
        let obj = apply(Some(&obj), &second, false, writer("m")).unwrap();
        assert_eq!(obj["metadata"]["labels"], json!({ "x": "1" }));
        assert_eq!(obj["data"], json!({ "k": "v2" }));
        assert_eq!(read_managers(&obj).len(), 1);
    }

    #[test]
    fn apply_conflicts_and_force() {
        let a = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "a" }, "data": { "k": "v" } });
        let obj = apply(None, &a, false, writer("one")).unwrap();
        // The same value is shared, not a conflict.
        let obj = apply(Some(&obj), &a, false, writer("two")).unwrap();
        assert_eq!(read_managers(&obj).len(), 2);
        let b =
            json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "a" }, "data": { "k": "other" } });
        let conflicts = apply(Some(&obj), &b, false, writer("three")).unwrap_err();
        assert_eq!(conflicts.len(), 2);
        assert_eq!(conflicts[0].field(), ".data.k");
        let obj = apply(Some(&obj), &b, true, writer("three")).unwrap();
        assert_eq!(obj["data"]["k"], "other");
        let managers = read_managers(&obj);
        assert_eq!(managers.len(), 1);
        assert_eq!(managers[0].manager, "three");
    }

    #[test]
    fn updates_move_ownership() {
        let a = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "a" }, "data": { "k": "v", "j": "w" } });
        let obj = apply(None, &a, false, writer("applier")).unwrap();
        let mut new = obj.clone();
        new["data"]["k"] = json!("changed");
        track_update(Some(&obj), &mut new, writer("editor"));
        let managers = read_managers(&new);
        assert_eq!(managers.len(), 2);
        assert_eq!(managers[1].manager, "editor");
        assert_eq!(managers[1].fields.iter().next().unwrap(), &vec!["data".to_owned(), "k".to_owned()]);
        assert!(!managers[0].fields.contains(&vec!["data".to_owned(), "k".to_owned()]));
    }
}
