//! The validating rule for pods: a pod uses only claims of its own classification.
//!
//! ## Decisions
//! - The pod's classification is its classification label (missing = `unclassified`), each
//!   claim's is the claim's label; the binding rule keeps a claim's label equal to its
//!   volume's.
//! - **A pod naming a claim that does not exist is denied on CREATE.** The pod would wait
//!   for the claim and start, without being admitted again, as soon as a claim of that name
//!   appears — whatever that claim's classification. Workloads create their claims first
//!   (StatefulSets, Argo's `volumeClaimTemplates`, Helm's install order) and pod controllers
//!   retry, so a legitimate pod is at most delayed.
//! - **UPDATEs are checked too** (the pod's classification label may change; volumes may
//!   not), except that a claim gone since the pod was admitted does not block the update, nor
//!   does anything block a pod being deleted.
//! - Generic ephemeral volumes are ignored: their claim is made for the pod by the
//!   ephemeral-volume controller and goes through the claim rule itself.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};

use super::{Verdict, classification_of};
use crate::settings::LabelKeys;

/// The claims a pod's `persistentVolumeClaim` volumes name, sorted, without duplicates.
pub fn pod_claim_names(pod: &Pod) -> Vec<String> {
    let names: BTreeSet<String> = pod
        .spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .filter_map(|v| v.persistent_volume_claim.as_ref())
        .map(|c| c.claim_name.clone())
        .filter(|n| !n.is_empty())
        .collect();
    names.into_iter().collect()
}

/// May `pod` use the claims it names? `claims` maps each of [`pod_claim_names`] to the claim
/// in the pod's namespace as looked up (`None`, or no entry: it does not exist); `old` is the
/// stored pod on an UPDATE. See the module's decisions.
pub fn check_pod_claims(
    keys: &LabelKeys,
    pod: &Pod,
    old: Option<&Pod>,
    claims: &BTreeMap<String, Option<PersistentVolumeClaim>>,
) -> Verdict {
    if pod.metadata.deletion_timestamp.is_some() {
        return Verdict::Allow;
    }
    let pod_class = classification_of(&pod.metadata, keys);
    let mut problems = Vec::new();
    for name in pod_claim_names(pod) {
        match claims.get(&name).and_then(Option::as_ref) {
            None if old.is_some() => {}
            None => problems.push(format!(
                "PersistentVolumeClaim {name} does not exist (create the claim before the pod that uses it)"
            )),
            Some(pvc) => {
                let claim_class = classification_of(&pvc.metadata, keys);
                if claim_class != pod_class {
                    problems.push(format!("PersistentVolumeClaim {name} is {claim_class}"));
                }
            }
        }
    }
    if problems.is_empty() {
        Verdict::Allow
    } else {
        Verdict::Deny(format!(
            "the pod is {pod_class} ({} label) and may only use claims of that classification: {}",
            keys.classification,
            problems.join("; ")
        ))
    }
}
