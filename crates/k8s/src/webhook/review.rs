//! AdmissionReview v1 in, AdmissionReview v1 out: parse the request, look up what the rule
//! needs, decide, answer. No HTTP here; [`super::server`] wraps these.
//!
//! ## Answers
//! - A decision: HTTP 200 and an AdmissionReview whose `response` echoes the request's `uid`,
//!   with `allowed`; a denial carries `status: {code: 403, reason: Forbidden, message}`; a
//!   mutation carries `patchType: JSONPatch` and the RFC 6902 patch, base64-encoded.
//! - A lookup that fails (the API server is down or slower than [`LOOKUP_TIMEOUT`]):
//!   - validation fails closed: a denial with code 500 (as its `failurePolicy: Fail` would;
//!     pod controllers retry);
//!   - injection fails open: allowed without a patch, with a warning (as its
//!     `failurePolicy: Ignore` would; not injecting never grants anything, and the pod's
//!     user restarts it to get the mounts). So does a patch failing the webhook's own
//!     credential check, which only a bug could produce (logged as an error).
//! - A body that is not an AdmissionReview v1: HTTP 400 with a message; when the request's
//!   `uid` can be read, the body is an AdmissionReview with `allowed: false` and code 400.
//! - A kind, operation or subresource the webhook has no rule for (a misregistration, DELETE,
//!   `pods/status`): allowed, with a warning for an unexpected kind.

use std::collections::BTreeMap;
use std::time::Duration;

use base64::Engine;
use futures::future::try_join_all;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod};
use kube::core::Status;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::binding::volume_name;
use super::{
    Lookup, LookupError, Verdict, check_pod_claims, check_pvc_binding, credentials_added, inject_automounts,
    label_is_true, pod_claim_names,
};
use crate::settings::Settings;

/// How long the lookups of one review may take: under the webhooks' `timeoutSeconds` (5 s in
/// coffer's manifests), so that the webhook, not the API server's timeout, answers.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// An HTTP answer: its status code and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

/// Answer a `POST /validate` body: PVCs get the binding rule, pods the classification rule.
pub async fn review_validate(body: &[u8], lookup: &dyn Lookup, settings: &Settings) -> Answer {
    let envelope = match Envelope::parse(body) {
        Ok(e) => e,
        Err(answer) => return answer,
    };
    match (envelope.group.as_str(), envelope.kind.as_str()) {
        ("", "PersistentVolumeClaim") => match envelope.request::<PersistentVolumeClaim>() {
            Ok(req) => reply(validate_pvc(&req, lookup, settings).await),
            Err(answer) => answer,
        },
        ("", "Pod") => match envelope.request::<Pod>() {
            Ok(req) => reply(validate_pod(&req, lookup, settings).await),
            Err(answer) => answer,
        },
        _ => envelope.unexpected_kind("validating"),
    }
}

/// Answer a `POST /mutate` body: pods get the automount injection.
pub async fn review_mutate(body: &[u8], lookup: &dyn Lookup, settings: &Settings) -> Answer {
    let envelope = match Envelope::parse(body) {
        Ok(e) => e,
        Err(answer) => return answer,
    };
    match (envelope.group.as_str(), envelope.kind.as_str()) {
        ("", "Pod") => match envelope.request::<Pod>() {
            Ok(req) => reply(mutate_pod(&req, lookup, settings).await),
            Err(answer) => answer,
        },
        _ => envelope.unexpected_kind("mutating"),
    }
}

/// The review as JSON, with what was read before its request is typed.
struct Envelope {
    review: Value,
    uid: Option<String>,
    group: String,
    kind: String,
}

impl Envelope {
    fn parse(body: &[u8]) -> Result<Self, Answer> {
        let review: Value =
            serde_json::from_slice(body).map_err(|e| bad_request(None, format!("the body is not JSON: {e}")))?;
        let uid = review.pointer("/request/uid").and_then(Value::as_str).map(str::to_owned);
        if review.get("apiVersion").and_then(Value::as_str) != Some(kube::core::admission::META_API_VERSION_V1)
            || review.get("kind").and_then(Value::as_str) != Some(kube::core::admission::META_KIND)
        {
            return Err(bad_request(uid, "expected an AdmissionReview of admission.k8s.io/v1".into()));
        }
        if !review.get("request").is_some_and(Value::is_object) {
            return Err(bad_request(uid, "the AdmissionReview has no request".into()));
        }
        if uid.as_deref().is_none_or(str::is_empty) {
            return Err(bad_request(None, "the AdmissionReview's request has no uid".into()));
        }
        let text = |p: &str| review.pointer(p).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (group, kind) = (text("/request/kind/group"), text("/request/kind/kind"));
        Ok(Self { review, uid, group, kind })
    }

    fn request<K: kube::Resource + DeserializeOwned>(self) -> Result<AdmissionRequest<K>, Answer> {
        let review: AdmissionReview<K> = serde_json::from_value(self.review)
            .map_err(|e| bad_request(self.uid.clone(), format!("malformed AdmissionReview: {e}")))?;
        review.try_into().map_err(|e| bad_request(self.uid, format!("malformed AdmissionReview: {e}")))
    }

    fn unexpected_kind(self, webhook: &str) -> Answer {
        let (group, kind) = (self.group.clone(), self.kind.clone());
        match self.request::<kube::core::DynamicObject>() {
            Ok(req) => {
                let warning = format!("coffer's {webhook} webhook has no rule for {group}/{kind}: allowed");
                tracing::warn!(uid = %req.uid, %group, %kind, "{warning}");
                let mut response = AdmissionResponse::from(&req);
                response.warnings = Some(vec![warning]);
                reply(response)
            }
            Err(answer) => answer,
        }
    }
}

fn bad_request(uid: Option<String>, message: String) -> Answer {
    tracing::warn!(uid = uid.as_deref().unwrap_or(""), "malformed admission request: {message}");
    match uid {
        Some(uid) => {
            let mut response = AdmissionResponse::invalid(&message);
            response.uid = uid;
            response.result = Status::failure(&message, "BadRequest").with_code(400);
            Answer { status: 400, body: serde_json::to_value(response.into_review()).expect("a review serializes") }
        }
        None => Answer { status: 400, body: json!({ "message": message }) },
    }
}

fn deny<K: kube::Resource>(req: &AdmissionRequest<K>, code: u16, reason: &str, message: &str) -> AdmissionResponse {
    let mut response = AdmissionResponse::from(req).deny(message);
    response.result = Status::failure(message, reason).with_code(code);
    response
}

fn lookup_failed<K: kube::Resource>(req: &AdmissionRequest<K>, e: &LookupError) -> AdmissionResponse {
    tracing::error!(uid = %req.uid, "admission lookup failed: {e}");
    deny(req, 500, "InternalError", &format!("coffer's webhook could not decide, try again: {e}"))
}

async fn timed<T>(f: impl Future<Output = Result<T, LookupError>>) -> Result<T, LookupError> {
    tokio::time::timeout(LOOKUP_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| Err(LookupError(format!("the API server did not answer within {LOOKUP_TIMEOUT:?}"))))
}

/// The answer of a decision: an AdmissionReview, the patch base64-encoded.
fn reply(mut response: AdmissionResponse) -> Answer {
    let patch = response.patch.take();
    let mut body = serde_json::to_value(response.into_review()).expect("a review serializes");
    if let Some(patch) = patch {
        body["response"]["patch"] = Value::String(base64::engine::general_purpose::STANDARD.encode(patch));
    }
    Answer { status: 200, body }
}

fn verdict<K: kube::Resource>(req: &AdmissionRequest<K>, verdict: Verdict) -> AdmissionResponse {
    let response = match &verdict {
        Verdict::Allow => AdmissionResponse::from(req),
        Verdict::Deny(message) => deny(req, 403, "Forbidden", message),
    };
    tracing::info!(
        uid = %req.uid,
        kind = %req.kind.kind,
        namespace = req.namespace.as_deref().unwrap_or(""),
        name = %req.name,
        operation = ?req.operation,
        allowed = verdict.is_allowed(),
        "admission: {}",
        verdict.message().unwrap_or("allowed")
    );
    response
}

/// Whether a rule applies at all: CREATE or UPDATE of the object itself, with an object.
fn in_scope<K: kube::Resource>(req: &AdmissionRequest<K>) -> Option<&K> {
    if !matches!(req.operation, Operation::Create | Operation::Update) || req.sub_resource.is_some() {
        return None;
    }
    req.object.as_ref()
}

fn namespace_of<K: kube::Resource>(req: &AdmissionRequest<K>, object: &K) -> String {
    req.namespace.clone().filter(|n| !n.is_empty()).or_else(|| object.meta().namespace.clone()).unwrap_or_default()
}

async fn validate_pvc(
    req: &AdmissionRequest<PersistentVolumeClaim>,
    lookup: &dyn Lookup,
    settings: &Settings,
) -> AdmissionResponse {
    let Some(pvc) = in_scope(req) else {
        return AdmissionResponse::from(req);
    };
    let namespace = namespace_of(req, pvc);
    let pv = match volume_name(pvc) {
        Some(volume) => match timed(lookup.pv(volume)).await {
            Ok(pv) => pv,
            Err(e) => return lookup_failed(req, &e),
        },
        None => None,
    };
    verdict(req, check_pvc_binding(&settings.labels, &namespace, pvc, req.old_object.as_ref(), pv.as_ref()))
}

async fn validate_pod(req: &AdmissionRequest<Pod>, lookup: &dyn Lookup, settings: &Settings) -> AdmissionResponse {
    let Some(pod) = in_scope(req) else {
        return AdmissionResponse::from(req);
    };
    let namespace = namespace_of(req, pod);
    let names = pod_claim_names(pod);
    let found = match timed(try_join_all(names.iter().map(|n| lookup.pvc(&namespace, n)))).await {
        Ok(found) => found,
        Err(e) => return lookup_failed(req, &e),
    };
    let claims: BTreeMap<String, Option<PersistentVolumeClaim>> = names.into_iter().zip(found).collect();
    verdict(req, check_pod_claims(&settings.labels, pod, req.old_object.as_ref(), &claims))
}

async fn mutate_pod(req: &AdmissionRequest<Pod>, lookup: &dyn Lookup, settings: &Settings) -> AdmissionResponse {
    let allow = AdmissionResponse::from(req);
    let Some(pod) = in_scope(req).filter(|_| req.operation == Operation::Create) else {
        return allow;
    };
    if !label_is_true(&pod.metadata, &settings.labels.inject) {
        return allow;
    }
    let namespace = namespace_of(req, pod);
    let pvcs = match timed(lookup.pvcs(&namespace)).await {
        Ok(pvcs) => pvcs,
        Err(e) => {
            tracing::error!(uid = %req.uid, namespace, "admission lookup failed, automounts not injected: {e}");
            return not_injected(allow, &format!("could not list the namespace's claims ({e})"));
        }
    };
    let patch = inject_automounts(settings, &namespace, pod, &pvcs);
    if patch.0.is_empty() {
        return allow;
    }
    // Defence in depth: the patch must apply, and add no credential.
    let before = serde_json::to_value(pod).expect("a pod serializes");
    let mut after = before.clone();
    let problem = match json_patch::patch(&mut after, &patch) {
        Err(e) => Some(format!("the injection patch does not apply: {e}")),
        Ok(()) => {
            let added = credentials_added(&before, &after);
            (!added.is_empty()).then(|| format!("the injection patch would add credentials: {}", added.join(", ")))
        }
    };
    if let Some(problem) = problem {
        tracing::error!(uid = %req.uid, namespace, "{problem}");
        return not_injected(allow, &problem);
    }
    let operations = patch.0.len();
    match allow.clone().with_patch(patch) {
        Ok(response) => {
            tracing::info!(uid = %req.uid, namespace, name = %req.name, operations, "admission: automounts injected");
            response
        }
        Err(e) => not_injected(allow, &e.to_string()),
    }
}

/// Injection fails open: the pod is admitted as it is, its creator warned.
fn not_injected(mut allow: AdmissionResponse, why: &str) -> AdmissionResponse {
    allow.warnings = Some(vec![format!(
        "coffer did not mount the namespace's buckets into this pod: {why}; recreate the pod to retry"
    )]);
    allow
}
