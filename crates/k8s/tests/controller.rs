//! The real controller loop (kube-rs `Controller`, `finalizer`, `Recorder`) against the
//! in-process fake API server (`coffer-k8s-fake`) and a real gateway (SQLite, a filesystem
//! tier): reconcile scenarios with the exact calls asserted — server-side apply, the
//! finalizer added and removed, deletes — plus idempotence, drift, rotation with a moving
//! clock, errors with backoff, cleanup, and namespaces as profiles.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use base64::Engine;
use coffer_backend::{Backend, FsBackend};
use coffer_gateway::Gateway;
use coffer_k8s::controller::{self, Context, FINALIZER, Metrics};
use coffer_k8s::settings::{KubernetesSection, Settings};
use coffer_k8s_fake::{FakeApiServer, Fault, Verb};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

struct World {
    fake: FakeApiServer,
    gateway: Arc<Gateway>,
    clock: Arc<AtomicI64>,
    metrics: Arc<Metrics>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

fn settings(extra: Value) -> Settings {
    let mut base = json!({
        "driver_namespace": "csi",
        "s3_endpoint": "http://coffer.coffer-system.svc:9000",
        "key_rotation": "1h",
        "key_overlap": "10m",
        "tiers": {"standard": {"driver": "k8s-csi-s3", "capacity": "50Gi"}},
    });
    if let (Value::Object(b), Value::Object(e)) = (&mut base, extra) {
        b.extend(e);
    }
    serde_json::from_value::<KubernetesSection>(base).unwrap().resolve().unwrap()
}

async fn gateway(dir: &tempfile::TempDir) -> Arc<Gateway> {
    let store = coffer_metadata::open(&format!("sqlite://{}", dir.path().join("c.db").display())).await.unwrap();
    store.migrate().await.unwrap();
    let standard: Arc<dyn Backend> = Arc::new(FsBackend::new(dir.path().join("standard")).await.unwrap());
    let premium: Arc<dyn Backend> = Arc::new(FsBackend::new(dir.path().join("premium")).await.unwrap());
    let g = Gateway::new(
        store,
        BTreeMap::from([("standard".to_owned(), standard), ("premium".to_owned(), premium)]),
        "standard".into(),
        coffer_identity::ServerKey::generate(),
    )
    .with_tier_rules(
        "premium",
        coffer_gateway::TierRules {
            classifications: Some([coffer_core::Classification::parse("protected-b").unwrap()].into()),
            read_only: false,
        },
    )
    .with_clearances(coffer_gateway::sessions::Clearances {
        namespaces: BTreeMap::from([(
            "team-pb".to_owned(),
            vec![coffer_core::Classification::parse("protected-b").unwrap()],
        )]),
        ..Default::default()
    });
    Arc::new(g)
}

impl World {
    async fn start(settings: Settings) -> World {
        let dir = tempfile::tempdir().unwrap();
        let fake =
            FakeApiServer::builder().namespaces(["default", "csi", "alice", "team-pb", "bob"]).start().await.unwrap();
        let gateway = gateway(&dir).await;
        let clock = Arc::new(AtomicI64::new(1_800_000_000));
        let metrics = Arc::new(Metrics::default());
        let c = clock.clone();
        let ctx = Context::new(fake.client(), gateway.clone(), settings, metrics.clone())
            .with_clock(Arc::new(move || c.load(Ordering::SeqCst)));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(controller::run_with(Arc::new(ctx), async move {
            let _ = rx.await;
        }));
        World { fake, gateway, clock, metrics, stop: Some(tx), task, _dir: dir }
    }

    fn profile(&self, name: &str, owner: &str) {
        self.fake
            .put(json!({
                "apiVersion": "kubeflow.org/v1", "kind": "Profile",
                "metadata": {"name": name},
                "spec": {"owner": {"kind": "User", "name": owner}},
            }))
            .unwrap();
    }

    /// Change something harmless on the profile, so that the controller looks again.
    fn touch(&self, name: &str) {
        let mut p = self.fake.get("kubeflow.org/v1", "Profile", None, name).unwrap();
        p["metadata"]["labels"] = json!({"touched": self.fake.resource_version().to_string()});
        self.fake.put(p).unwrap();
    }

    async fn until(&self, what: &str, mut f: impl FnMut(&FakeApiServer) -> bool) {
        assert!(self.fake.wait_for(WAIT, |fake| f(fake)).await, "timed out waiting for: {what}");
    }

    fn secret_data(&self, name: &str) -> BTreeMap<String, String> {
        let s = self.fake.get("v1", "Secret", Some("csi"), name).expect("the secret");
        s["data"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| {
                let raw = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
                (k.clone(), String::from_utf8(raw).unwrap())
            })
            .collect()
    }

    fn annotation(&self, secret: &str, key: &str) -> Option<String> {
        let s = self.fake.get("v1", "Secret", Some("csi"), secret)?;
        s["metadata"]["annotations"][key].as_str().map(str::to_owned)
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
        self.fake.shutdown().await;
    }
}

fn has(fake: &FakeApiServer, api: &str, kind: &str, ns: Option<&str>, name: &str) -> bool {
    fake.get(api, kind, ns, name).is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_gets_its_bucket_credential_and_volume() {
    let w = World::start(settings(json!({
        "tiers": {
            "standard": {"driver": "k8s-csi-s3", "capacity": "50Gi"},
            "premium": {"driver": "mountpoint"},
        }
    })))
    .await;
    w.profile("alice", "alice@example.com");
    w.until("the PVC", |f| has(f, "v1", "PersistentVolumeClaim", Some("alice"), "coffer-standard")).await;

    // the bucket: owned by the profile, its owner admin, on the default tier
    let b = w.gateway.store().get_bucket("alice").await.unwrap().expect("the profile's bucket");
    assert_eq!((b.owner.as_str(), b.tier.as_str(), b.classification.as_str()), ("alice", "standard", "unclassified"));
    let grants = w.gateway.store().list_grants(Some("alice")).await.unwrap();
    assert!(grants.iter().any(|g| g.grantee.name() == "alice@example.com" && g.role == coffer_core::Role::Admin));
    // premium holds protected-b and alice's namespace is not cleared for it: skipped
    assert!(w.gateway.store().get_bucket("alice-premium").await.unwrap().is_none());
    assert!(!has(&w.fake, "v1", "PersistentVolume", None, "coffer-alice-premium"));

    // the credential: in the driver namespace, a key narrowed to the bucket
    let data = w.secret_data("coffer-alice-standard");
    assert_eq!(data["endpoint"], "http://coffer.coffer-system.svc:9000");
    let key = w.gateway.store().get_access_key(&data["accessKeyID"]).await.unwrap().expect("the key");
    assert_eq!(key.user.as_str(), "alice");
    let scope: Vec<&str> = key.narrowing.buckets.as_ref().unwrap().iter().map(|b| b.as_str()).collect();
    assert_eq!(scope, ["alice"]);
    assert_eq!(w.gateway.secret_for_key(&data["accessKeyID"]).await.unwrap(), data["secretAccessKey"]);
    assert!(w.fake.list("v1", "Secret", Some("alice")).is_empty(), "no Secret in the profile's namespace");

    // the PV and PVC, bound in advance
    let pv = w.fake.get("v1", "PersistentVolume", None, "coffer-alice-standard").unwrap();
    assert_eq!(pv["spec"]["claimRef"]["namespace"], "alice");
    assert_eq!(pv["spec"]["csi"]["driver"], "ru.yandex.s3.csi");
    assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
    assert_eq!(pv["metadata"]["labels"]["coffer.dev/profile"], "alice");
    let pvc = w.fake.get("v1", "PersistentVolumeClaim", Some("alice"), "coffer-standard").unwrap();
    assert_eq!(pvc["spec"]["volumeName"], "coffer-alice-standard");
    assert_eq!(pvc["metadata"]["labels"]["coffer.dev/automount"], "true");

    // the exact calls: server-side apply as coffer-controller for the secret, PV and PVC;
    // the finalizer added by a JSON patch; an event on the profile (a request is logged
    // once it has been answered: wait for the last one)
    w.until("the PVC's apply logged", |f| {
        f.requests().iter().any(|r| r.is_apply() && r.resource.as_deref() == Some("persistentvolumeclaims"))
    })
    .await;
    let applies: Vec<String> = w
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.is_apply())
        .map(|r| {
            assert_eq!(r.field_manager(), Some("coffer-controller"));
            assert_eq!(r.query_param("force"), Some("true"));
            r.resource.clone().unwrap_or_default()
        })
        .collect();
    for resource in ["secrets", "persistentvolumes", "persistentvolumeclaims"] {
        assert!(applies.iter().any(|r| r == resource), "no apply of {resource}: {applies:?}");
    }
    let p = w.fake.get("kubeflow.org/v1", "Profile", None, "alice").unwrap();
    assert_eq!(p["metadata"]["finalizers"], json!([FINALIZER]));
    w.until("the Reconciled event", |f| {
        f.list("events.k8s.io/v1", "Event", Some("default"))
            .iter()
            .chain(f.list("events.k8s.io/v1", "Event", Some("alice")).iter())
            .any(|e| {
                e["reason"] == "Reconciled"
                    && e["note"].as_str().is_some_and(|n| n.contains("not cleared for protected-b"))
            })
    })
    .await;
    assert!(w.metrics.snapshot()[0] >= 1);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciling_again_changes_nothing_and_drift_is_corrected() {
    let w = World::start(settings(json!({}))).await;
    w.profile("alice", "alice@example.com");
    w.until("the PVC", |f| has(f, "v1", "PersistentVolumeClaim", Some("alice"), "coffer-standard")).await;
    let version = |f: &FakeApiServer, kind: &str, ns: Option<&str>, name: &str| {
        f.get(if kind == "Profile" { "kubeflow.org/v1" } else { "v1" }, kind, ns, name).unwrap()["metadata"]["resourceVersion"].clone()
    };
    let before = [
        version(&w.fake, "Secret", Some("csi"), "coffer-alice-standard"),
        version(&w.fake, "PersistentVolume", None, "coffer-alice-standard"),
        version(&w.fake, "PersistentVolumeClaim", Some("alice"), "coffer-standard"),
    ];
    let key = w.secret_data("coffer-alice-standard")["accessKeyID"].clone();
    let reconciles = w.metrics.snapshot()[0];
    w.touch("alice");
    w.until("another reconcile", |_| w.metrics.snapshot()[0] > reconciles).await;
    let after = [
        version(&w.fake, "Secret", Some("csi"), "coffer-alice-standard"),
        version(&w.fake, "PersistentVolume", None, "coffer-alice-standard"),
        version(&w.fake, "PersistentVolumeClaim", Some("alice"), "coffer-standard"),
    ];
    assert_eq!(before, after, "a reconcile with nothing to do wrote something");
    assert_eq!(w.secret_data("coffer-alice-standard")["accessKeyID"], key, "the key is kept");

    // someone edits the PV: the next reconcile puts it back
    let mut pv = w.fake.get("v1", "PersistentVolume", None, "coffer-alice-standard").unwrap();
    pv["spec"]["persistentVolumeReclaimPolicy"] = json!("Delete");
    pv["metadata"]["labels"]["coffer.dev/profile"] = json!("mallory");
    w.fake.put(pv).unwrap();
    w.touch("alice");
    w.until("the PV corrected", |f| {
        let pv = f.get("v1", "PersistentVolume", None, "coffer-alice-standard").unwrap();
        pv["spec"]["persistentVolumeReclaimPolicy"] == "Retain"
            && pv["metadata"]["labels"]["coffer.dev/profile"] == "alice"
    })
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_rotate_with_an_overlap() {
    let w = World::start(settings(json!({}))).await;
    w.profile("alice", "alice@example.com");
    w.until("the credential", |f| has(f, "v1", "Secret", Some("csi"), "coffer-alice-standard")).await;
    let first = w.secret_data("coffer-alice-standard")["accessKeyID"].clone();

    // past the rotation period: a new key, the old one still valid during the overlap
    w.clock.fetch_add(3601, Ordering::SeqCst);
    w.touch("alice");
    w.until("a rotated key", |_| {
        w.annotation("coffer-alice-standard", "coffer.dev/access-key-id").is_some_and(|k| k != first)
    })
    .await;
    let second = w.secret_data("coffer-alice-standard")["accessKeyID"].clone();
    assert_eq!(
        w.annotation("coffer-alice-standard", "coffer.dev/previous-access-key-id").as_deref(),
        Some(first.as_str())
    );
    assert!(w.gateway.key_is_active(&first).await.unwrap(), "the old key works during the overlap");
    assert!(w.gateway.key_is_active(&second).await.unwrap());

    // past the overlap: the old key is revoked and forgotten
    w.clock.fetch_add(601, Ordering::SeqCst);
    w.touch("alice");
    w.until("the old key revoked", |_| {
        w.annotation("coffer-alice-standard", "coffer.dev/previous-access-key-id").is_none()
    })
    .await;
    assert!(!w.gateway.key_is_active(&first).await.unwrap());
    assert!(w.gateway.key_is_active(&second).await.unwrap());
    assert_eq!(w.secret_data("coffer-alice-standard")["accessKeyID"], second);

    // a key revoked behind the controller's back is replaced at once
    w.gateway.admin_revoke_key(coffer_gateway::admin::BY_CONTROLLER, &second).await.unwrap();
    w.touch("alice");
    w.until("a replaced key", |_| {
        w.annotation("coffer-alice-standard", "coffer.dev/access-key-id").is_some_and(|k| k != second)
    })
    .await;
    let [_, _, _, created, revoked] = w.metrics.snapshot();
    assert!(created >= 3 && revoked >= 1, "created {created}, revoked {revoked}");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_profile_cleans_up_and_keeps_the_bucket() {
    let w = World::start(settings(json!({}))).await;
    w.profile("alice", "alice@example.com");
    w.until("the PVC", |f| has(f, "v1", "PersistentVolumeClaim", Some("alice"), "coffer-standard")).await;
    let key = w.secret_data("coffer-alice-standard")["accessKeyID"].clone();
    w.fake.clear_requests();

    let profiles: kube::Api<kube::api::DynamicObject> =
        kube::Api::all_with(w.fake.client(), &controller::profile_resource());
    profiles.delete("alice", &Default::default()).await.unwrap();
    w.until("the profile gone", |f| !has(f, "kubeflow.org/v1", "Profile", None, "alice")).await;
    w.until("the finalizer removal logged", |f| {
        f.requests().iter().any(|r| r.resource.as_deref() == Some("profiles") && r.verb == Verb::Patch)
    })
    .await;
    assert!(!has(&w.fake, "v1", "PersistentVolumeClaim", Some("alice"), "coffer-standard"));
    assert!(!has(&w.fake, "v1", "PersistentVolume", None, "coffer-alice-standard"));
    assert!(!has(&w.fake, "v1", "Secret", Some("csi"), "coffer-alice-standard"));
    assert!(!w.gateway.key_is_active(&key).await.unwrap(), "the credential is revoked");
    assert!(w.gateway.store().get_bucket("alice").await.unwrap().is_some(), "the data stays");
    // the calls: deletes of the three, then the finalizer removed by a JSON patch with a test
    let calls = w.fake.requests();
    for resource in ["persistentvolumeclaims", "persistentvolumes", "secrets"] {
        assert!(
            calls.iter().any(|r| r.verb == Verb::Delete && r.resource.as_deref() == Some(resource)),
            "no delete of {resource}"
        );
    }
    let removal = calls
        .iter()
        .find(|r| r.resource.as_deref() == Some("profiles") && r.verb == Verb::Patch)
        .expect("the finalizer removal");
    let ops = removal.body.as_ref().unwrap();
    assert_eq!(ops[0]["op"], "test");
    assert_eq!(ops[0]["value"], FINALIZER);
    assert_eq!(ops[1]["op"], "remove");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_with_backoff_and_reported() {
    let w = World::start(settings(json!({}))).await;
    w.fake.inject_fault(Fault::new(Verb::Patch, "persistentvolumes", 500));
    w.profile("alice", "alice@example.com");
    w.until("the PVC after a retry", |f| has(f, "v1", "PersistentVolumeClaim", Some("alice"), "coffer-standard")).await;
    assert!(w.metrics.snapshot()[1] >= 1, "the failure was counted");
    w.until("the warning event", |f| {
        ["default", "alice"].iter().any(|ns| {
            f.list("events.k8s.io/v1", "Event", Some(ns))
                .iter()
                .any(|e| e["type"] == "Warning" && e["reason"] == "ReconcileFailed")
        })
    })
    .await;
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cleared_namespaces_and_the_mountpoint_driver() {
    let w = World::start(settings(json!({
        "tiers": {"premium": {"driver": "mountpoint"}, "standard": {"driver": "mountpoint"}},
    })))
    .await;
    w.profile("team-pb", "lead@example.com");
    w.until("the protected-b PVC", |f| has(f, "v1", "PersistentVolumeClaim", Some("team-pb"), "coffer-premium")).await;
    let b = w.gateway.store().get_bucket("team-pb-premium").await.unwrap().expect("the premium bucket");
    assert_eq!(b.classification.as_str(), "protected-b");
    let pv = w.fake.get("v1", "PersistentVolume", None, "coffer-team-pb-premium").unwrap();
    assert_eq!(pv["metadata"]["labels"]["coffer.dev/classification"], "protected-b");
    assert_eq!(pv["spec"]["csi"]["volumeAttributes"]["bucketName"], "team-pb-premium");
    // one driver-wide Secret, its key granted each Mountpoint bucket
    let data = w.secret_data("aws-secret");
    let grants = w.gateway.store().list_grants(Some("team-pb-premium")).await.unwrap();
    assert!(
        grants.iter().any(|g| g.grantee.name() == "system:coffer-csi-mountpoint" && g.role == coffer_core::Role::Write)
    );
    let key = w.gateway.store().get_access_key(&data["key_id"]).await.unwrap().unwrap();
    assert_eq!(key.user.as_str(), "system:coffer-csi-mountpoint");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labelled_namespaces_are_profiles_too() {
    let w = World::start(settings(json!({"watch_namespaces": true}))).await;
    w.fake
        .put(json!({
            "apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": "bob", "labels": {"coffer.dev/profile": "true"}, "annotations": {"owner": "bob@example.com"}},
        }))
        .unwrap();
    w.until("bob's PVC", |f| has(f, "v1", "PersistentVolumeClaim", Some("bob"), "coffer-standard")).await;
    let grants = w.gateway.store().list_grants(Some("bob")).await.unwrap();
    assert!(grants.iter().any(|g| g.grantee.name() == "bob@example.com"));
    let ns = w.fake.get("v1", "Namespace", None, "bob").unwrap();
    assert_eq!(ns["metadata"]["finalizers"], json!([FINALIZER]));
    w.stop().await;
}
