//! `coffer webhook`: the admission webhooks of the Kubernetes integration.
//!
//! Two rules and one mutation, each a pure function on Kubernetes objects; the objects they
//! need are looked up by the caller through [`Lookup`], so the rules are tested without a
//! cluster:
//!
//! - [`check_pvc_binding`] (validating, PVCs): a claim binds a PersistentVolume only if the
//!   volume's profile label names the claim's namespace and their classifications match.
//! - [`check_pod_claims`] (validating, pods): a pod uses only claims of its own
//!   classification.
//! - [`inject_automounts`] (mutating, pods): opted-in pods get their namespace's automount
//!   claims of their classification, mounted under the configured mount path — and never a
//!   credential ([`credentials_added`] checks every patch before it is answered).
//!
//! [`review_validate`] and [`review_mutate`] turn an `AdmissionReview` v1 body into the answer;
//! [`serve`] is the HTTPS server around them (`POST /validate`, `POST /mutate`,
//! `GET /healthz`), its certificate re-read from cert-manager's files when they change
//! ([`ReloadingCert`]).
//!
//! ## Wiring (`coffer webhook`)
//! ```no_run
//! # async fn run(settings: coffer_k8s::settings::Settings) -> anyhow::Result<()> {
//! use std::sync::Arc;
//! use coffer_k8s::webhook::{serve, KubeLookup, TlsFiles};
//! let client = kube::Client::try_default().await?;
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8443").await?;
//! let tls = TlsFiles::new("/certs/tls.crt", "/certs/tls.key"); // or TlsFiles::in_dir("/certs")
//! serve(listener, Some(tls), Arc::new(KubeLookup::new(client)), settings, async {
//!     let _ = tokio::signal::ctrl_c().await;
//! })
//! .await
//! # }
//! ```
//! The webhook's service account needs `get` on `persistentvolumes` and `get`, `list` on
//! `persistentvolumeclaims`. Register `/validate` for PVCs (CREATE, UPDATE) and pods (CREATE,
//! and UPDATE to catch a relabelled running pod) with `failurePolicy: Fail`, and `/mutate` for
//! pods (CREATE) with `failurePolicy: Ignore` (injection fails open, see `review.rs`); all with
//! `admissionReviewVersions: ["v1"]`, `sideEffects: None`, a `timeoutSeconds` above
//! [`LOOKUP_TIMEOUT`], scoped to the profile namespaces. The mount path and label keys come
//! from [`Settings`](crate::settings::Settings) (`[kubernetes]`).
//!
//! ## Files
//! - `binding.rs` — the PVC → PV binding rule.
//! - `pod_claims.rs` — the pod → PVC classification rule.
//! - `inject.rs` — the automount injection (a JSON Patch).
//! - `no_credentials.rs` — the scan proving a patch adds no credential.
//! - `lookup.rs` — [`Lookup`]: the API server ([`KubeLookup`]) or memory ([`MemoryLookup`]).
//! - `review.rs` — AdmissionReview v1 in, AdmissionReview v1 out.
//! - `tls.rs` — the certificate files and their reloading resolver.
//! - `server.rs` — the HTTP(S) server.

mod binding;
mod inject;
mod lookup;
mod no_credentials;
mod pod_claims;
mod review;
mod server;
mod tls;

pub use binding::check_pvc_binding;
pub use inject::{inject_automounts, is_argo_pod, volume_name_for};
pub use lookup::{KubeLookup, Lookup, LookupError, MemoryLookup};
pub use no_credentials::{assert_no_credentials_added, credential_refs, credentials_added};
pub use pod_claims::{check_pod_claims, pod_claim_names};
pub use review::{Answer, LOOKUP_TIMEOUT, review_mutate, review_validate};
pub use server::{DRAIN_TIMEOUT, HANDSHAKE_TIMEOUT, MAX_BODY, router, serve};
pub use tls::{ReloadingCert, TlsError, TlsFiles};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::settings::{LabelKeys, UNCLASSIFIED};

/// What a validating rule decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Admit the object.
    Allow,
    /// Refuse it; the message is shown to whoever made the request.
    Deny(String),
}

impl Verdict {
    /// Whether the object is admitted.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Verdict::Allow)
    }

    /// The denial's message, if denied.
    pub fn message(&self) -> Option<&str> {
        match self {
            Verdict::Allow => None,
            Verdict::Deny(m) => Some(m),
        }
    }
}

/// A label's value, if set.
pub(crate) fn label<'a>(meta: &'a ObjectMeta, key: &str) -> Option<&'a str> {
    meta.labels.as_ref()?.get(key).map(String::as_str)
}

/// Whether a label is `"true"`.
pub(crate) fn label_is_true(meta: &ObjectMeta, key: &str) -> bool {
    label(meta, key) == Some("true")
}

/// An object's classification: its classification label, or [`UNCLASSIFIED`] when the label
/// is missing or empty. Values compare exactly (labels are case-sensitive).
pub fn classification_of<'a>(meta: &'a ObjectMeta, keys: &LabelKeys) -> &'a str {
    match label(meta, &keys.classification) {
        Some(c) if !c.is_empty() => c,
        _ => UNCLASSIFIED,
    }
}
