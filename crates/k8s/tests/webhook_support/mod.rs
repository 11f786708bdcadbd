//! Shared by the webhook tests: fixtures (real AdmissionReview v1 bodies), object builders,
//! and patch decoding.
#![allow(dead_code)]

use std::collections::BTreeMap;

use base64::Engine;
use coffer_k8s::settings::LabelKeys;
use coffer_k8s::webhook::{Answer, assert_no_credentials_added};
use k8s_openapi::api::core::v1::{
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

/// A fixture of `tests/fixtures/`, parsed.
pub fn fixture(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn body(review: &Value) -> Vec<u8> {
    serde_json::to_vec(review).unwrap()
}

/// Set (or, with `None`, remove) a label of the object at `pointer` (e.g. `/request/object`).
pub fn set_label(review: &mut Value, pointer: &str, key: &str, value: Option<&str>) {
    let meta = review.pointer_mut(&format!("{pointer}/metadata")).expect("an object with metadata");
    if meta.get("labels").is_none() {
        meta["labels"] = Value::Object(Default::default());
    }
    let labels = meta["labels"].as_object_mut().unwrap();
    match value {
        Some(v) => labels.insert(key.to_owned(), Value::String(v.to_owned())),
        None => labels.remove(key),
    };
}

fn labels(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, String>> {
    (!pairs.is_empty()).then(|| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

/// A PersistentVolume with the given profile and classification labels (`None`: unlabelled).
pub fn pv(keys: &LabelKeys, name: &str, profile: Option<&str>, class: Option<&str>) -> PersistentVolume {
    let mut pairs = Vec::new();
    if let Some(p) = profile {
        pairs.push((keys.profile.as_str(), p));
    }
    if let Some(c) = class {
        pairs.push((keys.classification.as_str(), c));
    }
    PersistentVolume {
        metadata: ObjectMeta { name: Some(name.into()), labels: labels(&pairs), ..Default::default() },
        spec: Some(PersistentVolumeSpec {
            access_modes: Some(vec!["ReadWriteMany".into()]),
            storage_class_name: Some(String::new()),
            ..Default::default()
        }),
        status: None,
    }
}

/// The same volume, reserved for the claim `namespace/name` (`spec.claimRef`).
pub fn reserved(mut pv: PersistentVolume, namespace: &str, name: &str, uid: Option<&str>) -> PersistentVolume {
    pv.spec.as_mut().unwrap().claim_ref = Some(ObjectReference {
        kind: Some("PersistentVolumeClaim".into()),
        api_version: Some("v1".into()),
        namespace: Some(namespace.into()),
        name: Some(name.into()),
        uid: uid.map(Into::into),
        ..Default::default()
    });
    pv
}

/// A claim with labels and access modes.
pub fn pvc(namespace: &str, name: &str, pairs: &[(&str, &str)], modes: &[&str]) -> PersistentVolumeClaim {
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(namespace.into()),
            labels: labels(pairs),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(modes.iter().map(|m| m.to_string()).collect()),
            ..Default::default()
        }),
        status: None,
    }
}

/// The response of an answered review, checked to be an AdmissionReview v1 echoing `uid`.
pub fn response<'a>(answer: &'a Answer, uid: &str) -> &'a Value {
    assert_eq!(answer.body["apiVersion"], "admission.k8s.io/v1", "{:#}", answer.body);
    assert_eq!(answer.body["kind"], "AdmissionReview");
    let response = &answer.body["response"];
    assert_eq!(response["uid"], uid, "{:#}", answer.body);
    response
}

pub fn uid_of(review: &Value) -> String {
    review["request"]["uid"].as_str().unwrap().to_owned()
}

/// Allowed, HTTP 200.
#[track_caller]
pub fn assert_allowed(answer: &Answer, review: &Value) {
    assert_eq!(answer.status, 200, "{:#}", answer.body);
    let r = response(answer, &uid_of(review));
    assert_eq!(r["allowed"], true, "{:#}", answer.body);
}

/// Denied with code 403, the message containing every one of `needles`.
#[track_caller]
pub fn assert_denied(answer: &Answer, review: &Value, needles: &[&str]) {
    assert_eq!(answer.status, 200, "{:#}", answer.body);
    let r = response(answer, &uid_of(review));
    assert_eq!(r["allowed"], false, "{:#}", answer.body);
    assert_eq!(r["status"]["code"], 403, "{:#}", answer.body);
    assert_eq!(r["status"]["status"], "Failure");
    let message = r["status"]["message"].as_str().unwrap();
    for needle in needles {
        assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    }
}

/// The JSON Patch of a mutation answer (`None`: no patch).
pub fn patch_of(answer: &Answer) -> Option<json_patch::Patch> {
    let response = &answer.body["response"];
    let encoded = response.get("patch")?.as_str().expect("the patch is a base64 string");
    assert_eq!(response["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).expect("base64");
    Some(serde_json::from_slice(&bytes).expect("an RFC 6902 patch"))
}

/// Apply a mutation answer's patch (if any) to the review's pod, check that it adds no
/// credential, and return the patched pod.
pub fn patched_pod(review: &Value, answer: &Answer) -> Value {
    let before = review["request"]["object"].clone();
    let mut after = before.clone();
    if let Some(patch) = patch_of(answer) {
        json_patch::patch(&mut after, &patch).expect("the patch applies");
    }
    assert_no_credentials_added(&before, &after);
    // Still a valid pod.
    serde_json::from_value::<k8s_openapi::api::core::v1::Pod>(after.clone()).expect("a pod");
    after
}

/// `(name, mountPath, readOnly)` of a container's mounts.
pub fn mounts(pod: &Value, container: &str) -> Vec<(String, String, bool)> {
    let containers = pod["spec"]["containers"].as_array().unwrap();
    let c = containers.iter().find(|c| c["name"] == container).unwrap();
    c["volumeMounts"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .map(|m| {
                    (
                        m["name"].as_str().unwrap().to_owned(),
                        m["mountPath"].as_str().unwrap().to_owned(),
                        m["readOnly"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `claimName → (volume name, readOnly)` of a pod's PVC volumes.
pub fn claim_volumes(pod: &Value) -> BTreeMap<String, (String, bool)> {
    pod["spec"]["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let c = v.get("persistentVolumeClaim")?;
            Some((
                c["claimName"].as_str()?.to_owned(),
                (v["name"].as_str()?.to_owned(), c["readOnly"].as_bool().unwrap_or(false)),
            ))
        })
        .collect()
}
