//! A tiny `kube::runtime::Controller` with a finalizer, reconciling kubeflow Profiles
//! (one Secret per profile, removed on cleanup) against the fake, end to end.

use std::sync::Arc;
use std::time::Duration;

use coffer_k8s_fake::{FakeApiServer, Fault, PatchType, Verb};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event as Note, EventType, Recorder, Reporter};
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde_json::{Value, json};

const FINALIZER: &str = "coffer.io/profile-cleanup";
const MANAGER: &str = "coffer-test-controller";
const WAIT: Duration = Duration::from_secs(15);

struct Ctx {
    client: Client,
    profiles: ApiResource,
    recorder: Recorder,
}

fn profile_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("kubeflow.org", "v1", "Profile"), "profiles")
}

fn secret_name(profile: &DynamicObject) -> String {
    format!("profile-{}", profile.name_any())
}

async fn publish(ctx: &Ctx, profile: &DynamicObject, reason: &str) -> Result<(), kube::Error> {
    let note = Note {
        type_: EventType::Normal,
        reason: reason.into(),
        note: Some(format!("{reason} {}", profile.name_any())),
        action: reason.into(),
        secondary: None,
    };
    ctx.recorder.publish(&note, &profile.object_ref(&ctx.profiles)).await
}

async fn apply(profile: Arc<DynamicObject>, ctx: &Ctx) -> Result<Action, kube::Error> {
    let secrets: Api<Secret> = Api::default_namespaced(ctx.client.clone());
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": secret_name(&profile), "labels": { "coffer.io/profile": profile.name_any() } },
        "stringData": { "owner": profile.data["spec"]["owner"]["name"].as_str().unwrap_or_default() },
    }))
    .expect("a valid secret");
    secrets.patch(&secret_name(&profile), &PatchParams::apply(MANAGER).force(), &Patch::Apply(&secret)).await?;
    publish(ctx, &profile, "Reconciled").await?;
    Ok(Action::requeue(Duration::from_secs(300)))
}

async fn cleanup(profile: Arc<DynamicObject>, ctx: &Ctx) -> Result<Action, kube::Error> {
    let secrets: Api<Secret> = Api::default_namespaced(ctx.client.clone());
    match secrets.delete(&secret_name(&profile), &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 404 => {}
        Err(e) => return Err(e),
    }
    publish(ctx, &profile, "CleanedUp").await?;
    Ok(Action::await_change())
}

async fn reconcile(
    profile: Arc<DynamicObject>,
    ctx: Arc<Ctx>,
) -> Result<Action, kube::runtime::finalizer::Error<kube::Error>> {
    let profiles: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &ctx.profiles);
    finalizer(&profiles, FINALIZER, profile, |event| async {
        match event {
            Finalizer::Apply(p) => apply(p, &ctx).await,
            Finalizer::Cleanup(p) => cleanup(p, &ctx).await,
        }
    })
    .await
}

fn error_policy(_: Arc<DynamicObject>, _: &kube::runtime::finalizer::Error<kube::Error>, _: Arc<Ctx>) -> Action {
    Action::requeue(Duration::from_millis(100))
}

fn start_controller(fake: &FakeApiServer) -> tokio::task::JoinHandle<()> {
    let ar = profile_resource();
    let ctx = Arc::new(Ctx {
        client: fake.client(),
        profiles: ar.clone(),
        recorder: Recorder::new(fake.client(), Reporter::from("coffer-test")),
    });
    let profiles: Api<DynamicObject> = Api::all_with(fake.client(), &ar);
    tokio::spawn(
        Controller::new_with(profiles, watcher::Config::default(), ar)
            .run(reconcile, error_policy, ctx)
            .for_each(|_| async {}),
    )
}

fn has_finalizer(fake: &FakeApiServer, name: &str) -> bool {
    fake.get("kubeflow.org/v1", "Profile", None, name)
        .is_some_and(|p| p["metadata"]["finalizers"] == json!([FINALIZER]))
}

fn secret_exists(fake: &FakeApiServer, name: &str) -> bool {
    fake.get("v1", "Secret", Some("default"), &format!("profile-{name}")).is_some()
}

#[tokio::test]
async fn controller_with_finalizer_reconciles_and_cleans_up() {
    let fake = FakeApiServer::start().await.unwrap();
    let controller = start_controller(&fake);
    let ar = profile_resource();
    let profiles: Api<DynamicObject> = Api::all_with(fake.client(), &ar);
    let profile = DynamicObject::new("alice", &ar).data(json!({
        "spec": { "owner": { "kind": "User", "name": "alice@example.com" } },
    }));
    profiles.create(&PostParams::default(), &profile).await.unwrap();

    assert!(
        fake.wait_for(WAIT, |f| has_finalizer(f, "alice") && secret_exists(f, "alice")).await,
        "the profile was reconciled"
    );
    let secret: Secret = fake.get_typed(Some("default"), "profile-alice").unwrap();
    assert_eq!(secret.labels()["coffer.io/profile"], "alice");
    assert_eq!(secret.data.unwrap()["owner"].0, b"alice@example.com");

    // The finalizer went on with a JSON patch guarded by a `test`.
    let profile_patches = fake.requests_for("profiles", Some(Verb::Patch));
    let add = &profile_patches[0];
    assert_eq!(add.patch_type(), Some(PatchType::Json));
    assert_eq!(add.path, "/apis/kubeflow.org/v1/profiles/alice");
    assert_eq!(
        add.body,
        Some(json!([
            { "op": "test", "path": "/metadata/finalizers", "value": null },
            { "op": "add", "path": "/metadata/finalizers", "value": [FINALIZER] },
        ]))
    );
    // The secret was server-side applied by our manager, with force.
    let applies: Vec<_> =
        fake.requests_for("secrets", Some(Verb::Patch)).into_iter().filter(|r| r.is_apply()).collect();
    assert!(!applies.is_empty());
    assert_eq!(applies[0].field_manager(), Some(MANAGER));
    assert!(applies[0].force());
    assert_eq!(applies[0].path, "/api/v1/namespaces/default/secrets/profile-alice");
    // An event was recorded for the (cluster-scoped) profile in `default`.
    assert!(fake.wait_for(WAIT, |f| !f.list("events.k8s.io/v1", "Event", Some("default")).is_empty()).await);
    let events = fake.list("events.k8s.io/v1", "Event", Some("default"));
    assert_eq!(events[0]["reason"], "Reconciled");
    assert_eq!(events[0]["regarding"]["name"], "alice");

    // Delete: the profile stays until cleanup ran and the finalizer is gone.
    let deleted = profiles.delete("alice", &DeleteParams::default()).await.unwrap();
    assert!(deleted.left().unwrap().metadata.deletion_timestamp.is_some());
    assert!(
        fake.wait_for(WAIT, |f| f.get("kubeflow.org/v1", "Profile", None, "alice").is_none()).await,
        "the profile is gone"
    );
    assert!(!secret_exists(&fake, "alice"), "cleanup deleted the secret");
    let secret_deletes = fake.requests_for("secrets", Some(Verb::Delete));
    assert_eq!(secret_deletes.len(), 1);
    assert_eq!(secret_deletes[0].path, "/api/v1/namespaces/default/secrets/profile-alice");
    let remove = fake
        .requests_for("profiles", Some(Verb::Patch))
        .into_iter()
        .find(|r| {
            r.body.as_ref().and_then(Value::as_array).is_some_and(|ops| ops.iter().any(|op| op["op"] == "remove"))
        })
        .expect("the finalizer was removed");
    assert_eq!(
        remove.body,
        Some(json!([
            { "op": "test", "path": "/metadata/finalizers/0", "value": FINALIZER },
            { "op": "remove", "path": "/metadata/finalizers/0" },
        ]))
    );
    assert_eq!(remove.status, 200);
    assert!(
        fake.wait_for(WAIT, |f| f
            .list("events.k8s.io/v1", "Event", Some("default"))
            .iter()
            .any(|e| e["reason"] == "CleanedUp"))
            .await
    );
    controller.abort();
    fake.shutdown().await;
}

#[tokio::test]
async fn controller_requeues_after_injected_errors() {
    let fake = FakeApiServer::start().await.unwrap();
    // The first two applies of the secret fail with 500.
    fake.inject_fault(Fault::new(Verb::Patch, "secrets", 500).times(2));
    let controller = start_controller(&fake);
    let ar = profile_resource();
    let profiles: Api<DynamicObject> = Api::all_with(fake.client(), &ar);
    profiles
        .create(
            &PostParams::default(),
            &DynamicObject::new("bob", &ar).data(json!({ "spec": { "owner": { "name": "bob@example.com" } } })),
        )
        .await
        .unwrap();
    assert!(fake.wait_for(WAIT, |f| secret_exists(f, "bob")).await, "reconciled despite errors");
    let statuses: Vec<u16> = fake.requests_for("secrets", Some(Verb::Patch)).iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..3], [500, 500, 201]);

    // A conflicting finalizer patch (another writer got in between) is retried too.
    fake.inject_fault(Fault::new(Verb::Patch, "profiles", 409).times(1));
    profiles.delete("bob", &DeleteParams::default()).await.unwrap();
    assert!(
        fake.wait_for(WAIT, |f| f.get("kubeflow.org/v1", "Profile", None, "bob").is_none()).await,
        "deleted after a retried finalizer removal"
    );
    let finalizer_patches: Vec<u16> =
        fake.requests_for("profiles", Some(Verb::Patch)).iter().map(|r| r.status).collect();
    assert!(finalizer_patches.contains(&409));
    assert!(!secret_exists(&fake, "bob"));
    controller.abort();
    fake.shutdown().await;
}
