//! The validating rule for PersistentVolumeClaims: a claim binds only its own profile's
//! volumes, of its own classification.
//!
//! ## Decisions
//! - **A claim naming a volume that does not exist is denied.** Admission is the only moment
//!   the claim is checked: when a volume of that name appears later, the PV controller binds
//!   it to the waiting claim without the claim passing through admission again, so a claim
//!   allowed "for now" could bind a volume someone else later creates with another profile's
//!   or classification's label (volume names of coffer's profiles are predictable). coffer's
//!   controller creates the volume before the claim, so its own claims are never refused;
//!   anyone else pre-binding a claim creates the volume first.
//! - **Updates are checked too**, whenever the claim names a volume: `spec.volumeName` may be
//!   set once on an unbound claim (by the PV controller, or by the claim's owner), and a
//!   relabelled claim (its classification changed) must still match its volume, since the pod
//!   rule trusts the claim's label. A bound claim whose volume has gone (phase `Lost`) may still
//!   be updated, and a claim being deleted always may (the `pvc-protection` finalizer must be
//!   removable).
//! - **Claims without `spec.volumeName`** (dynamic provisioning) are outside the rule. When the
//!   PV controller completes such a binding it sets `spec.volumeName` to a provisioned volume
//!   that carries no coffer labels; a volume without a profile label is accepted only if its
//!   `spec.claimRef` already reserves it for this very claim (namespace, name and, when both
//!   are known, uid) — only the provisioner or an administrator can write that — and such a
//!   volume without a classification label takes the claim's. Every other volume without a
//!   profile label is refused.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};

use super::{Verdict, classification_of, label};
use crate::settings::LabelKeys;

/// The volume a claim names, if any.
pub(crate) fn volume_name(pvc: &PersistentVolumeClaim) -> Option<&str> {
    pvc.spec.as_ref()?.volume_name.as_deref().filter(|v| !v.is_empty())
}

/// Whether the volume's `claimRef` reserves it for this claim.
fn reserved_for(pv: &PersistentVolume, namespace: &str, pvc: &PersistentVolumeClaim) -> bool {
    let Some(claim_ref) = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref()) else {
        return false;
    };
    let Some(name) = pvc.metadata.name.as_deref().filter(|n| !n.is_empty()) else {
        return false;
    };
    let uid_agrees = match (claim_ref.uid.as_deref(), pvc.metadata.uid.as_deref()) {
        (Some(a), Some(b)) if !a.is_empty() && !b.is_empty() => a == b,
        _ => true,
    };
    claim_ref.namespace.as_deref() == Some(namespace) && claim_ref.name.as_deref() == Some(name) && uid_agrees
}

/// May `pvc` (in `namespace`; `old` is the stored claim on an UPDATE) bind the volume it
/// names? `pv` is that volume as looked up, `None` when it does not exist. See the module's
/// decisions.
pub fn check_pvc_binding(
    keys: &LabelKeys,
    namespace: &str,
    pvc: &PersistentVolumeClaim,
    old: Option<&PersistentVolumeClaim>,
    pv: Option<&PersistentVolume>,
) -> Verdict {
    if pvc.metadata.deletion_timestamp.is_some() {
        return Verdict::Allow;
    }
    let Some(volume) = volume_name(pvc) else {
        return Verdict::Allow;
    };
    let claim = pvc.metadata.name.as_deref().unwrap_or("");
    let Some(pv) = pv else {
        let already_bound = old.and_then(volume_name) == Some(volume);
        return if already_bound {
            Verdict::Allow
        } else {
            Verdict::Deny(format!(
                "PersistentVolumeClaim {namespace}/{claim} names PersistentVolume {volume}, which does not exist: \
                 create the volume before a claim that binds it"
            ))
        };
    };
    // A provisioned volume: no profile label, reserved for this claim by its claimRef.
    let mut provisioned = false;
    match label(&pv.metadata, &keys.profile) {
        Some(profile) if profile == namespace => {}
        Some(profile) => {
            return Verdict::Deny(format!(
                "PersistentVolume {volume} belongs to profile {profile:?}; a claim in namespace {namespace} \
                 may only bind its own profile's volumes ({} = {namespace})",
                keys.profile
            ));
        }
        None if reserved_for(pv, namespace, pvc) => provisioned = true,
        None => {
            return Verdict::Deny(format!(
                "PersistentVolume {volume} has no {} label; a claim in namespace {namespace} may only bind \
                 its own profile's volumes ({} = {namespace})",
                keys.profile, keys.profile
            ));
        }
    }
    let claim_class = classification_of(&pvc.metadata, keys);
    let volume_labelled = label(&pv.metadata, &keys.classification).is_some_and(|c| !c.is_empty());
    if provisioned && !volume_labelled {
        return Verdict::Allow;
    }
    let volume_class = classification_of(&pv.metadata, keys);
    if claim_class != volume_class {
        return Verdict::Deny(format!(
            "classification mismatch: PersistentVolumeClaim {namespace}/{claim} is {claim_class} but \
             PersistentVolume {volume} is {volume_class} ({})",
            keys.classification
        ));
    }
    Verdict::Allow
}
