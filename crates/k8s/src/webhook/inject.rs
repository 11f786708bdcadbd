//! The mutating webhook: opted-in pods get their namespace's automount claims.
//!
//! A pod labelled `<inject key> = "true"` gets every claim of its namespace labelled
//! `<automount key> = "true"` whose classification equals the pod's: a `volumes` entry
//! `{name, persistentVolumeClaim: {claimName}}` and a mount at `<mount_path>/<claim>` in its
//! containers. Claims whose only access mode is `ReadOnlyMany` are mounted read-only (and the
//! volume source says `readOnly` too, which the kubelet enforces).
//!
//! ## Decisions
//! - **Idempotent.** A claim the pod already names in a volume (added by us on an earlier
//!   invocation, or by the user where they want it) is skipped whole; a container that already
//!   mounts something at the claim's path keeps it and gets no second mount; a claim no
//!   container would receive adds no volume. Re-running on the patched pod yields an empty
//!   patch.
//! - **Init containers are left alone**, native sidecars included: they are platform plumbing
//!   (Argo's `init`, service-mesh and permission-fixing containers) that run before the user's
//!   code and need none of the user's data; keeping data volumes out of them keeps classified
//!   data where the user works.
//! - **Argo workflow pods** (the `workflows.argoproj.io/workflow` label, or containers `main`
//!   and `wait` side by side) keep Argo's executor containers untouched: `wait` (and
//!   `supervisor`, its replacement in Argo's init-less pods, and the `artifact-plugin-*`
//!   sidecars). Only the user's containers see the buckets.
//! - **Volume names** are `coffer-<claim, dots as dashes, cut to 40>-<8 hex of a hash of the
//!   claim name>`: a DNS-1123 label, the same for the same claim on every pod, and distinct for
//!   distinct claims; should the pod already use that name for another volume, `-2`, `-3`, …
//!   is appended.
//! - Claims being deleted, or `Lost`, are not injected (the pod could never start).
//! - Only volumes and mounts are ever added: no Secret, environment, token or any other
//!   credential (see [`super::credentials_added`]).

use std::collections::BTreeSet;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use serde_json::{Value, json};

use super::{classification_of, label, label_is_true};
use crate::settings::Settings;

/// The label Argo sets on every pod of a workflow.
pub const ARGO_WORKFLOW_LABEL: &str = "workflows.argoproj.io/workflow";

/// Whether a pod is one of an Argo workflow's.
pub fn is_argo_pod(pod: &Pod) -> bool {
    if label(&pod.metadata, ARGO_WORKFLOW_LABEL).is_some() {
        return true;
    }
    let names: BTreeSet<&str> = pod.spec.iter().flat_map(|s| s.containers.iter()).map(|c| c.name.as_str()).collect();
    names.contains("main") && names.contains("wait")
}

/// Argo's executor containers in a workflow pod.
fn is_argo_executor(container: &str) -> bool {
    container == "wait" || container == "supervisor" || container.starts_with("artifact-plugin-")
}

/// 32-bit FNV-1a: a stable, dependency-free hash for volume names.
fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// The pod volume name for `claim`, avoiding the names in `taken`: a DNS-1123 label (at most
/// 63 characters), stable for a claim, distinct for distinct claims.
pub fn volume_name_for(claim: &str, taken: &BTreeSet<String>) -> String {
    let stem: String =
        claim.chars().map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' }).take(40).collect();
    let stem = stem.trim_matches('-');
    let base = if stem.is_empty() {
        format!("coffer-{:08x}", fnv1a(claim))
    } else {
        format!("coffer-{stem}-{:08x}", fnv1a(claim))
    };
    if !taken.contains(&base) {
        return base;
    }
    (2..).map(|n| format!("{base}-{n}")).find(|n| !taken.contains(n)).expect("an unused suffix")
}

fn claim_is_read_only(pvc: &PersistentVolumeClaim) -> bool {
    pvc.spec.as_ref().and_then(|s| s.access_modes.as_deref()).is_some_and(|m| m == ["ReadOnlyMany"])
}

fn add(tokens: &[&str], value: Value) -> PatchOperation {
    PatchOperation::Add(AddOperation { path: PointerBuf::from_tokens(tokens.iter().copied()), value })
}

/// The JSON Patch (RFC 6902, against the pod) mounting the automount claims of `pvcs` (the
/// claims of the pod's namespace `namespace`) into `pod`; empty when there is nothing to do.
pub fn inject_automounts(settings: &Settings, namespace: &str, pod: &Pod, pvcs: &[PersistentVolumeClaim]) -> Patch {
    let keys = &settings.labels;
    let Some(spec) = pod.spec.as_ref() else {
        return Patch(Vec::new());
    };
    if !label_is_true(&pod.metadata, &keys.inject) {
        return Patch(Vec::new());
    }
    let pod_class = classification_of(&pod.metadata, keys);
    let argo = is_argo_pod(pod);

    let mut candidates: Vec<&PersistentVolumeClaim> = pvcs
        .iter()
        .filter(|p| p.metadata.namespace.as_deref().is_none_or(|ns| ns == namespace))
        .filter(|p| p.metadata.name.as_deref().is_some_and(|n| !n.is_empty()))
        .filter(|p| label_is_true(&p.metadata, &keys.automount))
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Lost"))
        .filter(|p| classification_of(&p.metadata, keys) == pod_class)
        .collect();
    candidates.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    candidates.dedup_by(|a, b| a.metadata.name == b.metadata.name);

    let volumes = spec.volumes.as_deref().unwrap_or_default();
    let claimed: BTreeSet<&str> =
        volumes.iter().filter_map(|v| v.persistent_volume_claim.as_ref()).map(|c| c.claim_name.as_str()).collect();
    let mut taken: BTreeSet<String> = volumes.iter().map(|v| v.name.clone()).collect();

    let mut new_volumes = Vec::new();
    let mut new_mounts: Vec<Vec<Value>> = vec![Vec::new(); spec.containers.len()];
    for pvc in candidates {
        let claim = pvc.metadata.name.as_deref().unwrap_or_default();
        if claimed.contains(claim) {
            continue;
        }
        let path = format!("{}/{claim}", settings.mount_path);
        let receivers: Vec<usize> = spec
            .containers
            .iter()
            .enumerate()
            .filter(|(_, c)| !(argo && is_argo_executor(&c.name)))
            .filter(|(_, c)| !c.volume_mounts.iter().flatten().any(|m| m.mount_path.trim_end_matches('/') == path))
            .map(|(i, _)| i)
            .collect();
        if receivers.is_empty() {
            continue;
        }
        let name = volume_name_for(claim, &taken);
        taken.insert(name.clone());
        let read_only = claim_is_read_only(pvc);
        let mut source = json!({ "claimName": claim });
        let mut mount = json!({ "name": name, "mountPath": path });
        if read_only {
            source["readOnly"] = Value::Bool(true);
            mount["readOnly"] = Value::Bool(true);
        }
        new_volumes.push(json!({ "name": name, "persistentVolumeClaim": source }));
        for i in receivers {
            new_mounts[i].push(mount.clone());
        }
    }

    let mut ops = Vec::new();
    if !new_volumes.is_empty() {
        if spec.volumes.is_none() {
            ops.push(add(&["spec", "volumes"], Value::Array(new_volumes)));
        } else {
            ops.extend(new_volumes.into_iter().map(|v| add(&["spec", "volumes", "-"], v)));
        }
    }
    for (i, mounts) in new_mounts.into_iter().enumerate() {
        if mounts.is_empty() {
            continue;
        }
        let index = i.to_string();
        if spec.containers[i].volume_mounts.is_none() {
            ops.push(add(&["spec", "containers", &index, "volumeMounts"], Value::Array(mounts)));
        } else {
            ops.extend(mounts.into_iter().map(|m| add(&["spec", "containers", &index, "volumeMounts", "-"], m)));
        }
    }
    Patch(ops)
}
