//! The webhook's rules, driven by real AdmissionReview v1 bodies (tests/fixtures/) through
//! `review_validate` / `review_mutate`, with an in-memory lookup.

mod webhook_support;

use std::collections::BTreeSet;

use coffer_k8s::settings::{LabelKeys, Settings};
use coffer_k8s::webhook::{
    MemoryLookup, assert_no_credentials_added, credential_refs, credentials_added, review_mutate, review_validate,
    volume_name_for,
};
use serde_json::{Value, json};
use webhook_support::*;

const OBJECT: &str = "/request/object";
const OLD: &str = "/request/oldObject";

fn coffer() -> LabelKeys {
    LabelKeys::coffer()
}

fn statcan_settings() -> Settings {
    Settings { labels: LabelKeys::statcan(), ..Settings::default() }
}

async fn validate(review: &Value, lookup: &MemoryLookup) -> coffer_k8s::webhook::Answer {
    review_validate(&body(review), lookup, &Settings::default()).await
}

async fn mutate(review: &Value, lookup: &MemoryLookup) -> coffer_k8s::webhook::Answer {
    review_mutate(&body(review), lookup, &Settings::default()).await
}

// ---------------------------------------------------------------- PVC → PV binding

/// The controller's claim `alice/standard` binding `coffer-alice-standard`.
#[tokio::test]
async fn a_claim_binds_its_own_profiles_volume() {
    let review = fixture("pvc_create.json");
    let lookup = MemoryLookup::new().with_pv(pv(&coffer(), "coffer-alice-standard", Some("alice"), None));
    assert_allowed(&validate(&review, &lookup).await, &review);
    // An explicit `unclassified` on one side equals a missing label on the other.
    let lookup =
        MemoryLookup::new().with_pv(pv(&coffer(), "coffer-alice-standard", Some("alice"), Some("unclassified")));
    assert_allowed(&validate(&review, &lookup).await, &review);
    // Both protected-b.
    let mut review = review;
    set_label(&mut review, OBJECT, "coffer.dev/classification", Some("protected-b"));
    let lookup =
        MemoryLookup::new().with_pv(pv(&coffer(), "coffer-alice-standard", Some("alice"), Some("protected-b")));
    assert_allowed(&validate(&review, &lookup).await, &review);
}

#[tokio::test]
async fn a_claim_may_not_bind_another_profiles_volume() {
    let review = fixture("pvc_create.json");
    let lookup = MemoryLookup::new().with_pv(pv(&coffer(), "coffer-alice-standard", Some("bob"), None));
    assert_denied(&validate(&review, &lookup).await, &review, &["coffer-alice-standard", "\"bob\"", "alice"]);
    // A volume without any profile label is nobody's: refused.
    let lookup = MemoryLookup::new().with_pv(pv(&coffer(), "coffer-alice-standard", None, None));
    assert_denied(&validate(&review, &lookup).await, &review, &["no coffer.dev/profile label"]);
}

#[tokio::test]
async fn classifications_must_match_both_ways() {
    // Unlabelled (unclassified) claim, protected-b volume.
    let review = fixture("pvc_create.json");
    let lookup =
        MemoryLookup::new().with_pv(pv(&coffer(), "coffer-alice-standard", Some("alice"), Some("protected-b")));
    assert_denied(
        &validate(&review, &lookup).await,
        &review,
        &["classification mismatch", "is unclassified", "is protected-b"],
    );
    // protected-b claim, unlabelled (unclassified) volume.
    let mut review = review;
    set_label(&mut review, OBJECT, "coffer.dev/classification", Some("protected-b"));
    let lookup = MemoryLookup::new().with_pv(pv(&coffer(), "coffer-alice-standard", Some("alice"), None));
    assert_denied(
        &validate(&review, &lookup).await,
        &review,
        &["classification mismatch", "is protected-b", "is unclassified"],
    );
}

#[tokio::test]
async fn a_claim_naming_a_missing_volume_is_denied() {
    let review = fixture("pvc_create.json");
    assert_denied(
        &validate(&review, &MemoryLookup::new()).await,
        &review,
        &["coffer-alice-standard", "does not exist"],
    );
}

#[tokio::test]
async fn dynamic_provisioning_is_outside_the_rule() {
    // A claim without spec.volumeName: allowed without any lookup (a failing lookup proves it).
    let mut review = fixture("pvc_create.json");
    review["request"]["object"]["spec"].as_object_mut().unwrap().remove("volumeName");
    let failing = MemoryLookup::new();
    failing.set_failing(true);
    assert_allowed(&validate(&review, &failing).await, &review);

    // The PV controller completing that provisioning: the new volume carries no coffer label
    // but its claimRef reserves it for this very claim.
    let review = fixture("pvc_update_provisioned.json");
    let name = "pvc-8e1f4c7a-3b6d-4e92-a0c5-2d9b8f1e6a03";
    let uid = "8e1f4c7a-3b6d-4e92-a0c5-2d9b8f1e6a03";
    let lookup = MemoryLookup::new().with_pv(reserved(
        pv(&coffer(), name, None, None),
        "alice",
        "workspace-alice-nb",
        Some(uid),
    ));
    assert_allowed(&validate(&review, &lookup).await, &review);
    // Even for a protected-b claim: the fresh volume takes the claim's classification.
    let mut protected = review.clone();
    set_label(&mut protected, OBJECT, "coffer.dev/classification", Some("protected-b"));
    assert_allowed(&validate(&protected, &lookup).await, &protected);
    // …but a labelled volume is still held to its label.
    let labelled = MemoryLookup::new().with_pv(reserved(
        pv(&coffer(), name, None, Some("unclassified")),
        "alice",
        "workspace-alice-nb",
        Some(uid),
    ));
    assert_denied(&validate(&protected, &labelled).await, &protected, &["classification mismatch"]);

    // Reserved for another claim (or another incarnation of this one): refused.
    let other = MemoryLookup::new().with_pv(reserved(pv(&coffer(), name, None, None), "alice", "someone-else", None));
    assert_denied(&validate(&review, &other).await, &review, &["no coffer.dev/profile label"]);
    let stale = MemoryLookup::new().with_pv(reserved(
        pv(&coffer(), name, None, None),
        "alice",
        "workspace-alice-nb",
        Some("00000000-0000-0000-0000-000000000000"),
    ));
    assert_denied(&validate(&review, &stale).await, &review, &["no coffer.dev/profile label"]);
}

/// Mallory sets `volumeName` on her unbound claim to Alice's volume.
#[tokio::test]
async fn an_update_pointing_a_claim_at_a_foreign_volume_is_denied() {
    let review = fixture("pvc_update_volume_name.json");
    assert_eq!(review["request"]["operation"], "UPDATE");
    let lookup = MemoryLookup::new().with_pv(pv(&coffer(), "coffer-alice-standard", Some("alice"), None));
    assert_denied(&validate(&review, &lookup).await, &review, &["coffer-alice-standard", "\"alice\"", "mallory"]);
    // The same update towards her own profile's volume is fine.
    let mut own = review.clone();
    own["request"]["object"]["spec"]["volumeName"] = json!("coffer-mallory-standard");
    let lookup = MemoryLookup::new().with_pv(pv(&coffer(), "coffer-mallory-standard", Some("mallory"), None));
    assert_allowed(&validate(&own, &lookup).await, &own);
}

#[tokio::test]
async fn updates_of_bound_claims() {
    // A bound claim relabelled to another classification than its volume's: refused.
    let mut review = fixture("pvc_update_volume_name.json");
    review["request"]["namespace"] = json!("alice");
    for side in [OBJECT, OLD] {
        review.pointer_mut(side).unwrap()["metadata"]["namespace"] = json!("alice");
        review.pointer_mut(side).unwrap()["spec"]["volumeName"] = json!("coffer-alice-prob");
        set_label(&mut review, side, "coffer.dev/classification", Some("protected-b"));
    }
    let lookup = MemoryLookup::new().with_pv(pv(&coffer(), "coffer-alice-prob", Some("alice"), Some("protected-b")));
    assert_allowed(&validate(&review, &lookup).await, &review);
    let mut relabelled = review.clone();
    set_label(&mut relabelled, OBJECT, "coffer.dev/classification", None);
    assert_denied(&validate(&relabelled, &lookup).await, &relabelled, &["classification mismatch"]);

    // A bound claim whose volume is gone (Lost) may still be updated…
    assert_allowed(&validate(&relabelled, &MemoryLookup::new()).await, &relabelled);
    // …and a claim being deleted always may (its finalizer must come off).
    let mut deleting = relabelled.clone();
    deleting["request"]["object"]["metadata"]["deletionTimestamp"] = json!("2025-05-14T12:00:00Z");
    assert_allowed(&validate(&deleting, &lookup).await, &deleting);
}

#[tokio::test]
async fn a_failed_lookup_refuses_with_500() {
    let review = fixture("pvc_create.json");
    let lookup = MemoryLookup::new();
    lookup.set_failing(true);
    let answer = validate(&review, &lookup).await;
    assert_eq!(answer.status, 200);
    let r = response(&answer, &uid_of(&review));
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 500);
    assert!(r["status"]["message"].as_str().unwrap().contains("try again"));
}

#[tokio::test]
async fn the_statcan_label_keys_work_for_bindings() {
    let keys = LabelKeys::statcan();
    let settings = statcan_settings();
    let mut review = fixture("pvc_create.json");
    set_label(&mut review, OBJECT, "data.statcan.gc.ca/classification", Some("protected-b"));
    let good = MemoryLookup::new().with_pv(pv(&keys, "coffer-alice-standard", Some("alice"), Some("protected-b")));
    let answer = review_validate(&body(&review), &good, &settings).await;
    assert_allowed(&answer, &review);
    let foreign = MemoryLookup::new().with_pv(pv(&keys, "coffer-alice-standard", Some("bob"), Some("protected-b")));
    let answer = review_validate(&body(&review), &foreign, &settings).await;
    assert_denied(&answer, &review, &["(profile = alice)"]);
    let unclassified = MemoryLookup::new().with_pv(pv(&keys, "coffer-alice-standard", Some("alice"), None));
    let answer = review_validate(&body(&review), &unclassified, &settings).await;
    assert_denied(&answer, &review, &["classification mismatch", "data.statcan.gc.ca/classification"]);
    // coffer's keys mean nothing under the statcan settings: a coffer.dev/profile label is no
    // profile label.
    let coffer_labelled =
        MemoryLookup::new().with_pv(pv(&coffer(), "coffer-alice-standard", Some("alice"), Some("protected-b")));
    let answer = review_validate(&body(&review), &coffer_labelled, &settings).await;
    assert_denied(&answer, &review, &["no profile label"]);
}

// ---------------------------------------------------------------- pods → PVCs

fn notebook_claims(class: Option<&str>) -> MemoryLookup {
    let labels: Vec<(&str, &str)> = class.map(|c| vec![("coffer.dev/classification", c)]).unwrap_or_default();
    MemoryLookup::new().with_pvc(pvc("alice", "workspace-alice-nb", &labels, &["ReadWriteOnce"]))
}

#[tokio::test]
async fn pods_use_claims_of_their_classification() {
    let review = fixture("pod_create_notebook.json");
    // Unlabelled pod, unlabelled claim.
    assert_allowed(&validate(&review, &notebook_claims(None)).await, &review);
    // Unlabelled pod, claim explicitly unclassified.
    assert_allowed(&validate(&review, &notebook_claims(Some("unclassified"))).await, &review);
    // protected-b both.
    let mut protected = review.clone();
    set_label(&mut protected, OBJECT, "coffer.dev/classification", Some("protected-b"));
    assert_allowed(&validate(&protected, &notebook_claims(Some("protected-b"))).await, &protected);
}

#[tokio::test]
async fn pods_are_denied_claims_of_another_classification() {
    // An unlabelled pod (unclassified) with a protected-b claim.
    let review = fixture("pod_create_notebook.json");
    assert_denied(
        &validate(&review, &notebook_claims(Some("protected-b"))).await,
        &review,
        &["the pod is unclassified", "workspace-alice-nb is protected-b"],
    );
    // A protected-b pod with an unclassified claim.
    let mut protected = review.clone();
    set_label(&mut protected, OBJECT, "coffer.dev/classification", Some("protected-b"));
    assert_denied(
        &validate(&protected, &notebook_claims(None)).await,
        &protected,
        &["the pod is protected-b", "workspace-alice-nb is unclassified"],
    );
}

#[tokio::test]
async fn pods_naming_missing_claims() {
    let review = fixture("pod_create_notebook.json");
    assert_denied(&validate(&review, &MemoryLookup::new()).await, &review, &["workspace-alice-nb does not exist"]);
    // On an UPDATE (the claim went away after the pod was admitted) it does not block.
    let mut update = review.clone();
    update["request"]["operation"] = json!("UPDATE");
    update["request"]["oldObject"] = review["request"]["object"].clone();
    assert_allowed(&validate(&update, &MemoryLookup::new()).await, &update);
}

#[tokio::test]
async fn relabelling_a_running_pod_is_checked() {
    let mut review = fixture("pod_create_notebook.json");
    set_label(&mut review, OBJECT, "coffer.dev/classification", Some("protected-b"));
    let old = review["request"]["object"].clone();
    review["request"]["operation"] = json!("UPDATE");
    review["request"]["oldObject"] = old;
    set_label(&mut review, OBJECT, "coffer.dev/classification", None);
    assert_denied(
        &validate(&review, &notebook_claims(Some("protected-b"))).await,
        &review,
        &["the pod is unclassified"],
    );
    // Subresources (status, ephemeral containers) are not this rule's business.
    review["request"]["subResource"] = json!("status");
    assert_allowed(&validate(&review, &notebook_claims(Some("protected-b"))).await, &review);
}

#[tokio::test]
async fn ephemeral_volumes_are_ignored() {
    let mut review = fixture("pod_create_notebook.json");
    review["request"]["object"]["spec"]["volumes"].as_array_mut().unwrap().push(json!({
        "name": "scratch",
        "ephemeral": { "volumeClaimTemplate": { "spec": {
            "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } }
        } } }
    }));
    assert_allowed(&validate(&review, &notebook_claims(None)).await, &review);
}

#[tokio::test]
async fn the_statcan_label_keys_work_for_pods() {
    let settings = statcan_settings();
    let mut review = fixture("pod_create_notebook.json");
    let prob = MemoryLookup::new().with_pvc(pvc(
        "alice",
        "workspace-alice-nb",
        &[("data.statcan.gc.ca/classification", "protected-b")],
        &["ReadWriteOnce"],
    ));
    let answer = review_validate(&body(&review), &prob, &settings).await;
    assert_denied(&answer, &review, &["the pod is unclassified", "data.statcan.gc.ca/classification"]);
    set_label(&mut review, OBJECT, "data.statcan.gc.ca/classification", Some("protected-b"));
    let answer = review_validate(&body(&review), &prob, &settings).await;
    assert_allowed(&answer, &review);
}

// ---------------------------------------------------------------- injection

/// Alice's namespace: two unclassified automount claims (one read-only), a protected-b one,
/// her workspace (not automount), a terminating one, and Bob's (another namespace).
fn alice_claims(automount_key: &str, class_key: &str) -> MemoryLookup {
    let auto = (automount_key, "true");
    let mut terminating = pvc("alice", "old-bucket", &[auto], &["ReadWriteMany"]);
    terminating.metadata.deletion_timestamp = Some(serde_json::from_value(json!("2025-05-14T12:00:00Z")).unwrap());
    MemoryLookup::new()
        .with_pvc(pvc("alice", "standard", &[auto], &["ReadWriteMany"]))
        .with_pvc(pvc("alice", "standard-ro", &[auto], &["ReadOnlyMany"]))
        .with_pvc(pvc("alice", "prob", &[auto, (class_key, "protected-b")], &["ReadWriteMany"]))
        .with_pvc(pvc("alice", "prob-ro", &[auto, (class_key, "protected-b")], &["ReadOnlyMany"]))
        .with_pvc(pvc("alice", "workspace-alice-nb", &[], &["ReadWriteOnce"]))
        .with_pvc(pvc("alice", "not-auto", &[(automount_key, "false")], &["ReadWriteMany"]))
        .with_pvc(terminating)
        .with_pvc(pvc("bob", "bobs", &[auto], &["ReadWriteMany"]))
}

fn coffer_claims() -> MemoryLookup {
    alice_claims("coffer.dev/automount", "coffer.dev/classification")
}

const ROOT: &str = "/home/jovyan/buckets";

#[tokio::test]
async fn a_notebook_gets_its_automount_claims_in_every_container() {
    let review = fixture("pod_create_notebook.json");
    let answer = mutate(&review, &coffer_claims()).await;
    assert_allowed(&answer, &review);
    let pod = patched_pod(&review, &answer);

    let volumes = claim_volumes(&pod);
    let claims: Vec<&str> = volumes.keys().map(String::as_str).collect();
    assert_eq!(claims, ["standard", "standard-ro", "workspace-alice-nb"]);
    let (standard, standard_ro) = (&volumes["standard"], &volumes["standard-ro"]);
    assert!(!standard.1 && standard_ro.1, "ReadOnlyMany claims are read-only volumes: {volumes:?}");
    for container in ["alice-nb", "tensorboard"] {
        let ms = mounts(&pod, container);
        assert!(ms.contains(&(standard.0.clone(), format!("{ROOT}/standard"), false)), "{container}: {ms:?}");
        assert!(ms.contains(&(standard_ro.0.clone(), format!("{ROOT}/standard-ro"), true)), "{container}: {ms:?}");
    }
    // The original mounts are untouched, first.
    assert_eq!(mounts(&pod, "alice-nb")[1], ("workspace-alice-nb".into(), "/home/jovyan".into(), false));
    // Everything else is as it was.
    let mut stripped = pod.clone();
    stripped["spec"]["volumes"] = review["request"]["object"]["spec"]["volumes"].clone();
    for i in 0..2 {
        stripped["spec"]["containers"][i]["volumeMounts"] =
            review["request"]["object"]["spec"]["containers"][i]["volumeMounts"].clone();
    }
    assert_eq!(stripped, review["request"]["object"]);
}

#[tokio::test]
async fn argo_wait_and_init_containers_are_left_alone() {
    let review = fixture("pod_create_argo.json");
    let answer = mutate(&review, &coffer_claims()).await;
    let pod = patched_pod(&review, &answer);
    let main = mounts(&pod, "main");
    assert!(main.iter().any(|m| m.1 == format!("{ROOT}/standard")), "{main:?}");
    assert!(main.iter().any(|m| m.1 == format!("{ROOT}/standard-ro") && m.2), "{main:?}");
    assert_eq!(pod["spec"]["containers"][0]["name"], "wait");
    assert_eq!(pod["spec"]["containers"][0], review["request"]["object"]["spec"]["containers"][0]);
    assert_eq!(pod["spec"]["initContainers"], review["request"]["object"]["spec"]["initContainers"]);

    // Without the workflow label, the main/wait pair gives it away.
    let mut unlabelled = review.clone();
    set_label(&mut unlabelled, OBJECT, "workflows.argoproj.io/workflow", None);
    let pod = patched_pod(&unlabelled, &mutate(&unlabelled, &coffer_claims()).await);
    assert_eq!(pod["spec"]["containers"][0], review["request"]["object"]["spec"]["containers"][0]);
    assert_eq!(mounts(&pod, "main").len(), 4);

    // In a pod that is not Argo's, a container called `wait` is just a container.
    let mut plain = fixture("pod_create_notebook.json");
    plain["request"]["object"]["spec"]["containers"][1]["name"] = json!("wait");
    let pod = patched_pod(&plain, &mutate(&plain, &coffer_claims()).await);
    assert_eq!(mounts(&pod, "wait").len(), 3);
}

#[tokio::test]
async fn injection_is_idempotent() {
    let review = fixture("pod_create_notebook.json");
    let answer = mutate(&review, &coffer_claims()).await;
    let pod = patched_pod(&review, &answer);
    // The patched pod, reviewed again (reinvocation): nothing more.
    let mut again = review.clone();
    again["request"]["object"] = pod.clone();
    let answer = mutate(&again, &coffer_claims()).await;
    assert_allowed(&answer, &again);
    assert!(patch_of(&answer).is_none(), "{:#}", answer.body);
    assert!(answer.body["response"].get("patchType").is_none());

    // A pod that already names the claim (where its user wants it) gets no second volume.
    let mut own = review.clone();
    own["request"]["object"]["spec"]["volumes"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "mine", "persistentVolumeClaim": { "claimName": "standard" } }));
    let pod = patched_pod(&own, &mutate(&own, &coffer_claims()).await);
    let volumes = claim_volumes(&pod);
    assert_eq!(volumes["standard"].0, "mine");
    assert!(mounts(&pod, "alice-nb").iter().all(|m| m.1 != format!("{ROOT}/standard")));

    // A container already mounting something at the path keeps it, and gets no second mount;
    // the other container still gets the claim.
    let mut taken = review.clone();
    taken["request"]["object"]["spec"]["volumes"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "scratch", "emptyDir": {} }));
    taken["request"]["object"]["spec"]["containers"][0]["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "scratch", "mountPath": format!("{ROOT}/standard/") }));
    let pod = patched_pod(&taken, &mutate(&taken, &coffer_claims()).await);
    let at_path: Vec<_> = mounts(&pod, "alice-nb")
        .into_iter()
        .filter(|m| m.1.trim_end_matches('/') == format!("{ROOT}/standard"))
        .collect();
    assert_eq!(at_path.len(), 1);
    assert_eq!(at_path[0].0, "scratch");
    assert!(mounts(&pod, "tensorboard").iter().any(|m| m.1 == format!("{ROOT}/standard")));

    // When no container can take it, the claim adds no volume at all.
    let mut full = taken.clone();
    full["request"]["object"]["spec"]["containers"][1]["volumeMounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "name": "scratch", "mountPath": format!("{ROOT}/standard") }));
    let pod = patched_pod(&full, &mutate(&full, &coffer_claims()).await);
    assert!(!claim_volumes(&pod).contains_key("standard"));
    assert!(claim_volumes(&pod).contains_key("standard-ro"));
}

#[tokio::test]
async fn a_protected_b_pod_gets_only_protected_b_claims() {
    let mut review = fixture("pod_create_notebook.json");
    set_label(&mut review, OBJECT, "coffer.dev/classification", Some("protected-b"));
    let pod = patched_pod(&review, &mutate(&review, &coffer_claims()).await);
    let claims: Vec<String> = claim_volumes(&pod).into_keys().collect();
    assert_eq!(claims, ["prob", "prob-ro", "workspace-alice-nb"]);
    assert!(mounts(&pod, "alice-nb").contains(&(
        claim_volumes(&pod)["prob-ro"].0.clone(),
        format!("{ROOT}/prob-ro"),
        true
    )));
}

#[tokio::test]
async fn pods_without_the_inject_label_get_nothing() {
    let failing = coffer_claims();
    failing.set_failing(true); // and nothing is even looked up
    let mut review = fixture("pod_create_notebook.json");
    set_label(&mut review, OBJECT, "coffer.dev/inject", None);
    let answer = mutate(&review, &failing).await;
    assert_allowed(&answer, &review);
    assert!(patch_of(&answer).is_none());
    set_label(&mut review, OBJECT, "coffer.dev/inject", Some("false"));
    assert!(patch_of(&mutate(&review, &failing).await).is_none());
    // Opted in but the lookup fails: injection fails open — admitted as it is, with a warning.
    set_label(&mut review, OBJECT, "coffer.dev/inject", Some("true"));
    let answer = mutate(&review, &failing).await;
    assert_allowed(&answer, &review);
    assert!(patch_of(&answer).is_none());
    let warning = answer.body["response"]["warnings"][0].as_str().unwrap();
    assert!(warning.contains("did not mount") && warning.contains("simulated"), "{warning}");
}

#[tokio::test]
async fn only_creates_are_mutated() {
    let review = fixture("pod_create_notebook.json");
    let mut update = review.clone();
    update["request"]["operation"] = json!("UPDATE");
    update["request"]["oldObject"] = review["request"]["object"].clone();
    let answer = mutate(&update, &coffer_claims()).await;
    assert_allowed(&answer, &update);
    assert!(patch_of(&answer).is_none());
}

#[tokio::test]
async fn a_pod_without_volumes_or_mounts_gets_whole_arrays() {
    let mut review = fixture("pod_create_notebook.json");
    let spec = review["request"]["object"]["spec"].as_object_mut().unwrap();
    spec.remove("volumes");
    for c in spec["containers"].as_array_mut().unwrap() {
        c.as_object_mut().unwrap().remove("volumeMounts");
    }
    let answer = mutate(&review, &coffer_claims()).await;
    let patch = patch_of(&answer).unwrap();
    let paths: Vec<String> =
        patch.0.iter().map(|op| serde_json::to_value(op).unwrap()["path"].as_str().unwrap().to_owned()).collect();
    assert_eq!(paths, ["/spec/volumes", "/spec/containers/0/volumeMounts", "/spec/containers/1/volumeMounts"]);
    let pod = patched_pod(&review, &answer);
    assert_eq!(claim_volumes(&pod).len(), 2);
}

#[tokio::test]
async fn the_statcan_label_keys_work_for_injection() {
    let settings = statcan_settings();
    let lookup = alice_claims("blob.aaw.statcan.gc.ca/automount", "data.statcan.gc.ca/classification");
    let mut review = fixture("pod_create_notebook.json");
    set_label(&mut review, OBJECT, "data.statcan.gc.ca/classification", Some("protected-b"));
    let answer = review_mutate(&body(&review), &lookup, &settings).await;
    let pod = patched_pod(&review, &answer);
    let claims: Vec<String> = claim_volumes(&pod).into_keys().collect();
    assert_eq!(claims, ["prob", "prob-ro", "workspace-alice-nb"]);
    // coffer's automount label means nothing under the statcan keys.
    let answer = review_mutate(&body(&review), &coffer_claims(), &settings).await;
    assert!(patch_of(&answer).is_none());
}

// ---------------------------------------------------------------- no credentials, ever

#[test]
fn the_credential_scan_catches_secrets_and_environment() {
    let review = fixture("pod_create_notebook.json");
    let pod = review["request"]["object"].clone();
    let refs = credential_refs(&pod);
    // What the submitted pod already has is listed (and so not blamed on a patch).
    assert!(refs.iter().any(|r| r.contains("env[NB_PREFIX]")), "{refs:?}");
    assert!(refs.iter().any(|r| r.contains("kube-api-access-8xk2p].projected")), "{refs:?}");
    assert!(refs.iter().any(|r| r.starts_with(".spec.serviceAccountName")), "{refs:?}");
    assert!(credentials_added(&pod, &pod).is_empty());

    let add = |patch: Value| {
        let mut after = pod.clone();
        json_patch::patch(&mut after, &serde_json::from_value::<json_patch::Patch>(patch).unwrap()).unwrap();
        credentials_added(&pod, &after)
    };
    let secret_volume = add(json!([
        { "op": "add", "path": "/spec/volumes/-", "value": { "name": "creds", "secret": { "secretName": "coffer-alice" } } }
    ]));
    assert_eq!(secret_volume.len(), 1, "{secret_volume:?}");
    assert!(secret_volume[0].contains("[creds].secret"));
    let env = add(json!([
        { "op": "add", "path": "/spec/containers/0/env/-", "value": { "name": "AWS_SECRET_ACCESS_KEY", "value": "x" } }
    ]));
    assert!(env.len() == 1 && env[0].contains("env[AWS_SECRET_ACCESS_KEY]"), "{env:?}");
    let changed_env = add(json!([
        { "op": "replace", "path": "/spec/containers/0/env/0/value", "value": "/elsewhere" }
    ]));
    assert_eq!(changed_env.len(), 1, "{changed_env:?}");
    let env_from = add(json!([
        { "op": "add", "path": "/spec/containers/1/envFrom", "value": [{ "secretRef": { "name": "coffer-alice" } }] }
    ]));
    assert_eq!(env_from.len(), 1, "{env_from:?}");
    let token = add(json!([
        { "op": "add", "path": "/spec/volumes/-", "value": { "name": "tok", "projected": { "sources": [
            { "serviceAccountToken": { "audience": "sts.amazonaws.com", "path": "token" } }
        ] } } }
    ]));
    assert_eq!(token.len(), 1, "{token:?}");
    let csi = add(json!([
        { "op": "add", "path": "/spec/volumes/-", "value": { "name": "inline", "csi": {
            "driver": "s3.csi.aws.com", "nodePublishSecretRef": { "name": "coffer-alice" }
        } } }
    ]));
    assert_eq!(csi.len(), 1, "{csi:?}");
    let sa = add(json!([
        { "op": "replace", "path": "/spec/serviceAccountName", "value": "coffer-controller" },
        { "op": "add", "path": "/spec/automountServiceAccountToken", "value": true }
    ]));
    assert_eq!(sa.len(), 2, "{sa:?}");
    let init_env = add(json!([
        { "op": "add", "path": "/spec/initContainers", "value": [
            { "name": "fetch", "image": "x", "env": [{ "name": "TOKEN", "valueFrom": { "secretKeyRef": { "name": "s", "key": "k" } } }] }
        ] }
    ]));
    assert_eq!(init_env.len(), 1, "{init_env:?}");
    // A plain PVC volume and mount are no credential.
    assert!(add(json!([
        { "op": "add", "path": "/spec/volumes/-", "value": { "name": "b", "persistentVolumeClaim": { "claimName": "standard" } } },
        { "op": "add", "path": "/spec/containers/0/volumeMounts/-", "value": { "name": "b", "mountPath": "/home/jovyan/buckets/standard" } }
    ]))
    .is_empty());
}

#[test]
#[should_panic(expected = "added credential-bearing entries")]
fn the_credential_assertion_fails_loudly() {
    let pod = fixture("pod_create_notebook.json")["request"]["object"].clone();
    let mut after = pod.clone();
    after["spec"]["containers"][1]["env"] = json!([{ "name": "AWS_ACCESS_KEY_ID", "value": "AKIA" }]);
    assert_no_credentials_added(&pod, &after);
}

// ---------------------------------------------------------------- volume names

#[test]
fn volume_names_are_dns_labels_stable_and_distinct() {
    let none = BTreeSet::new();
    let long = "a".repeat(200);
    let dotted = "data.team-a.project-with-a-really-long-name-that-goes-on-and-on";
    let names: Vec<String> = ["standard", "standard-ro", dotted, &long, "x", "0-weird-.-name"]
        .iter()
        .map(|c| volume_name_for(c, &none))
        .collect();
    for n in &names {
        assert!(n.len() <= 63, "{n}");
        assert!(n.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{n}");
        assert!(n.starts_with("coffer-") && !n.ends_with('-'), "{n}");
    }
    assert_eq!(names.iter().collect::<BTreeSet<_>>().len(), names.len());
    assert_eq!(volume_name_for("standard", &none), names[0]);
    // Two claims identical in their first 40 characters still differ.
    let (a, b) = (format!("{long}-a"), format!("{long}-b"));
    assert_ne!(volume_name_for(&a, &none), volume_name_for(&b, &none));
    // A name the pod already uses for something else is avoided, stably.
    let taken: BTreeSet<String> = [names[0].clone()].into();
    let other = volume_name_for("standard", &taken);
    assert_eq!(other, format!("{}-2", names[0]));
    assert_eq!(volume_name_for("standard", &taken), other);
}

// ---------------------------------------------------------------- malformed input

#[tokio::test]
async fn malformed_reviews_are_400s() {
    let lookup = MemoryLookup::new();
    let settings = Settings::default();
    // Not JSON: a 400 with a message.
    let answer = review_validate(b"{not json", &lookup, &settings).await;
    assert_eq!(answer.status, 400);
    assert!(answer.body["message"].as_str().unwrap().contains("not JSON"));
    // No uid to answer to.
    let answer = review_mutate(
        br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}}"#,
        &lookup,
        &settings,
    )
    .await;
    assert_eq!(answer.status, 400);
    assert!(answer.body.get("response").is_none());
    // A readable uid but a broken request: an AdmissionReview refusing it.
    let mut review = fixture("pvc_create.json");
    review["request"]["object"]["spec"]["accessModes"] = json!("ReadWriteMany");
    let answer = review_validate(&body(&review), &lookup, &settings).await;
    assert_eq!(answer.status, 400);
    let r = response(&answer, &uid_of(&review));
    assert_eq!(r["allowed"], false);
    assert_eq!(r["status"]["code"], 400);
    assert!(r["status"]["message"].as_str().unwrap().contains("malformed"));
    // v1beta1 is not spoken.
    let mut review = fixture("pvc_create.json");
    review["apiVersion"] = json!("admission.k8s.io/v1beta1");
    let answer = review_validate(&body(&review), &lookup, &settings).await;
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body["response"]["uid"], uid_of(&review));
}

#[tokio::test]
async fn kinds_without_a_rule_are_allowed_with_a_warning() {
    let mut review = fixture("pvc_create.json");
    review["request"]["kind"] = json!({ "group": "apps", "version": "v1", "kind": "Deployment" });
    review["request"]["object"] =
        json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "x", "namespace": "alice" } });
    let answer = validate(&review, &MemoryLookup::new()).await;
    assert_allowed(&answer, &review);
    assert!(answer.body["response"]["warnings"][0].as_str().unwrap().contains("apps/Deployment"));
    let answer = mutate(&fixture("pvc_create.json"), &MemoryLookup::new()).await;
    assert_allowed(&answer, &fixture("pvc_create.json"));
}
