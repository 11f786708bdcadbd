//! The proof that a mutation adds no credential: every place of a pod that can carry one is
//! listed before and after the patch, and nothing may appear.
//!
//! What counts (anywhere in the pod, containers of every kind included): Secret volumes and
//! references (`secret`, `secretName`, `secretRef`, `secretKeyRef`, `secretFile`, the CSI
//! `*SecretRef`s), environment (`env`, `envFrom` — any variable, since a value is as good as a
//! Secret), `projected` volumes and `serviceAccountToken` sources, inline `csi` volumes (their
//! attributes can carry keys), `hostPath` (the node's own credentials), image pull Secrets,
//! the service account (`serviceAccountName`, `serviceAccount`) and
//! `automountServiceAccountToken: true`. Each entry is recorded with its whole value and a
//! path naming list elements by their `name`, so a changed or an extra one shows as new.

use std::collections::BTreeSet;

use serde_json::Value;

/// Keys whose value is, or refers to, a credential.
const CREDENTIAL_KEYS: &[&str] = &[
    "secret",
    "secretName",
    "secretRef",
    "secretKeyRef",
    "secretFile",
    "nodePublishSecretRef",
    "nodeStageSecretRef",
    "nodeExpandSecretRef",
    "controllerPublishSecretRef",
    "controllerExpandSecretRef",
    "env",
    "envFrom",
    "projected",
    "serviceAccountToken",
    "csi",
    "hostPath",
    "imagePullSecrets",
    "serviceAccountName",
    "serviceAccount",
];

fn element_id(index: usize, element: &Value) -> String {
    match element.get("name").and_then(Value::as_str) {
        Some(name) => format!("[{name}]"),
        None => format!("[{index}]"),
    }
}

fn walk(value: &Value, path: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let here = format!("{path}.{key}");
                if key == "automountServiceAccountToken" {
                    if v == &Value::Bool(true) {
                        out.insert(format!("{here} = true"));
                    }
                } else if CREDENTIAL_KEYS.contains(&key.as_str()) {
                    match v {
                        Value::Array(items) => {
                            for (i, item) in items.iter().enumerate() {
                                out.insert(format!("{here}{} = {item}", element_id(i, item)));
                            }
                        }
                        Value::Null => {}
                        other => {
                            out.insert(format!("{here} = {other}"));
                        }
                    }
                } else {
                    walk(v, &here, out);
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{path}{}", element_id(i, item)), out);
            }
        }
        _ => {}
    }
}

/// Every credential-bearing entry of a pod (as JSON), one line each: `path = value`.
pub fn credential_refs(pod: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    walk(pod, "", &mut out);
    out
}

/// The credential-bearing entries of `after` that `before` did not have.
pub fn credentials_added(before: &Value, after: &Value) -> Vec<String> {
    let before = credential_refs(before);
    credential_refs(after).into_iter().filter(|r| !before.contains(r)).collect()
}

/// Panics, listing them, if `after` (a patched pod) has credential-bearing entries that
/// `before` (the pod as submitted) did not.
#[track_caller]
pub fn assert_no_credentials_added(before: &Value, after: &Value) {
    let added = credentials_added(before, after);
    assert!(added.is_empty(), "the patch added credential-bearing entries:\n  {}", added.join("\n  "));
}
