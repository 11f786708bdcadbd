//! The fake driven by the real kube client: typed and dynamic APIs, every verb, patches,
//! server-side apply, finalizers, watches, discovery and fault injection.

use std::collections::BTreeMap;
use std::time::Duration;

use coffer_k8s_fake::{FakeApiServer, Fault, PatchType, Verb};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, Secret};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
    WatchEvent, WatchParams,
};
use kube::runtime::watcher;
use kube::{Error, ResourceExt};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(10);

fn secret(name: &str, labels: &[(&str, &str)]) -> Secret {
    serde_json::from_value(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "labels": labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
        },
        "stringData": { "key": "value" },
    }))
    .unwrap()
}

fn api_code(err: &Error) -> (u16, String) {
    match err {
        Error::Api(status) => (status.code, status.reason.clone()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn profile_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("kubeflow.org", "v1", "Profile"), "profiles")
}

async fn names(api: &Api<Secret>, selector: &str) -> Vec<String> {
    api.list(&ListParams::default().labels(selector)).await.unwrap().items.iter().map(ResourceExt::name_any).collect()
}

#[tokio::test]
async fn secrets_create_get_list_replace_delete() {
    let fake = FakeApiServer::start().await.unwrap();
    let client = fake.client();
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());

    let a = secrets.create(&PostParams::default(), &secret("a", &[("app", "web"), ("tier", "front")])).await.unwrap();
    assert_eq!(a.namespace().as_deref(), Some("default"));
    assert!(a.uid().is_some());
    assert!(a.creation_timestamp().is_some());
    assert!(a.resource_version().is_some());
    secrets.create(&PostParams::default(), &secret("b", &[("app", "db")])).await.unwrap();
    secrets.create(&PostParams::default(), &secret("c", &[])).await.unwrap();

    // Duplicates and unknown names.
    let err = secrets.create(&PostParams::default(), &secret("a", &[])).await.unwrap_err();
    assert_eq!(api_code(&err), (409, "AlreadyExists".into()));
    let err = secrets.get("nope").await.unwrap_err();
    assert_eq!(api_code(&err), (404, "NotFound".into()));
    assert!(secrets.get_opt("nope").await.unwrap().is_none());
    assert_eq!(secrets.get("a").await.unwrap().labels()["app"], "web");

    // Label and field selectors.
    assert_eq!(names(&secrets, "").await, ["a", "b", "c"]);
    assert_eq!(names(&secrets, "app=web").await, ["a"]);
    assert_eq!(names(&secrets, "app!=web").await, ["b", "c"]);
    assert_eq!(names(&secrets, "app").await, ["a", "b"]);
    assert_eq!(names(&secrets, "!app").await, ["c"]);
    assert_eq!(names(&secrets, "app in (web, db),tier").await, ["a"]);
    assert_eq!(names(&secrets, "app notin (web)").await, ["b", "c"]);
    let by_name = secrets.list(&ListParams::default().fields("metadata.name=b")).await.unwrap();
    assert_eq!(by_name.items.len(), 1);
    assert!(by_name.metadata.resource_version.is_some());
    let err = secrets.list(&ListParams::default().labels("app in (x")).await.unwrap_err();
    assert_eq!(api_code(&err).0, 400);

    // Other namespaces and the all-namespace list.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": "other" } })).unwrap();
    namespaces.create(&PostParams::default(), &ns).await.unwrap();
    let other: Api<Secret> = Api::namespaced(client.clone(), "other");
    other.create(&PostParams::default(), &secret("a", &[])).await.unwrap();
    let all: Api<Secret> = Api::all(client.clone());
    assert_eq!(all.list(&ListParams::default()).await.unwrap().items.len(), 4);
    let missing: Api<Secret> = Api::namespaced(client.clone(), "missing");
    let err = missing.create(&PostParams::default(), &secret("a", &[])).await.unwrap_err();
    assert_eq!(api_code(&err), (404, "NotFound".into()));

    // Replace: current version works, a stale one conflicts.
    let mut current = secrets.get("a").await.unwrap();
    let stale = current.clone();
    current.labels_mut().insert("replaced".into(), "yes".into());
    let replaced = secrets.replace("a", &PostParams::default(), &current).await.unwrap();
    assert_ne!(replaced.resource_version(), stale.resource_version());
    assert_eq!(replaced.labels()["replaced"], "yes");
    let err = secrets.replace("a", &PostParams::default(), &stale).await.unwrap_err();
    assert_eq!(api_code(&err), (409, "Conflict".into()));
    // The same object again changes nothing, not even the version.
    let again = secrets.replace("a", &PostParams::default(), &replaced).await.unwrap();
    assert_eq!(again.resource_version(), replaced.resource_version());
    // Name in the body must match the path.
    let err = secrets.replace("b", &PostParams::default(), &replaced).await.unwrap_err();
    assert_eq!(api_code(&err).0, 400);

    // Delete: a built-in type answers a Status.
    let deleted = secrets.delete("a", &DeleteParams::default()).await.unwrap();
    let status = deleted.right().expect("a Status");
    assert_eq!(status.details.unwrap().name, "a");
    assert!(secrets.get_opt("a").await.unwrap().is_none());
    let err = secrets.delete("a", &DeleteParams::default()).await.unwrap_err();
    assert_eq!(api_code(&err).0, 404);
    assert!(fake.get("v1", "Secret", Some("default"), "a").is_none());
    assert!(fake.get("v1", "Secret", Some("default"), "b").is_some());

    // Invalid names and labels are refused.
    let err = secrets.create(&PostParams::default(), &secret("Upper", &[])).await.unwrap_err();
    assert_eq!(api_code(&err), (422, "Invalid".into()));
    let err = secrets.create(&PostParams::default(), &secret("x", &[("bad key", "v")])).await.unwrap_err();
    assert_eq!(api_code(&err), (422, "Invalid".into()));

    // The log has every call.
    let creates = fake.requests_for("secrets", Some(Verb::Create));
    assert_eq!(creates[0].method, "POST");
    assert_eq!(creates[0].path, "/api/v1/namespaces/default/secrets");
    assert_eq!(creates[0].status, 201);
    assert_eq!(creates[0].body.as_ref().unwrap()["metadata"]["name"], "a");
    fake.shutdown().await;
}

#[tokio::test]
async fn persistent_volumes_are_cluster_scoped_with_status() {
    let fake = FakeApiServer::start().await.unwrap();
    let pvs: Api<PersistentVolume> = Api::all(fake.client());
    let pv: PersistentVolume = serde_json::from_value(json!({
        "metadata": { "name": "pv-1", "namespace": "ignored", "labels": { "coffer.io/bucket": "b1" } },
        "spec": { "capacity": { "storage": "1Gi" }, "accessModes": ["ReadWriteMany"],
                  "csi": { "driver": "s3.csi.example.com", "volumeHandle": "b1" } },
        "status": { "phase": "Bound" },
    }))
    .unwrap();
    let created = pvs.create(&PostParams::default(), &pv).await.unwrap();
    assert_eq!(created.namespace(), None);
    // The status of a create is dropped (status subresource); defaults are set.
    assert_eq!(created.status.as_ref().unwrap().phase.as_deref(), Some("Pending"));
    let spec = created.spec.as_ref().unwrap();
    assert_eq!(spec.persistent_volume_reclaim_policy.as_deref(), Some("Retain"));
    assert_eq!(spec.volume_mode.as_deref(), Some("Filesystem"));
    assert_eq!(pvs.list(&ListParams::default().labels("coffer.io/bucket=b1")).await.unwrap().items.len(), 1);

    // Status goes through /status only.
    let patched = pvs
        .patch_status("pv-1", &PatchParams::default(), &Patch::Merge(json!({ "status": { "phase": "Available" } })))
        .await
        .unwrap();
    assert_eq!(patched.status.unwrap().phase.as_deref(), Some("Available"));
    let mut with_status = pvs.get("pv-1").await.unwrap();
    with_status.status.as_mut().unwrap().phase = Some("Failed".into());
    with_status.labels_mut().insert("touched".into(), "yes".into());
    let replaced = pvs.replace("pv-1", &PostParams::default(), &with_status).await.unwrap();
    assert_eq!(replaced.status.as_ref().unwrap().phase.as_deref(), Some("Available"));
    assert_eq!(replaced.labels()["touched"], "yes");

    let gone = pvs.delete("pv-1", &DeleteParams::default()).await.unwrap();
    assert!(gone.is_right());
    assert!(pvs.get_opt("pv-1").await.unwrap().is_none());
    fake.shutdown().await;
}

#[tokio::test]
async fn server_side_apply() {
    let fake = FakeApiServer::start().await.unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(fake.client());
    let params = PatchParams::apply("coffer-controller");
    let desired = secret("applied", &[("app", "web"), ("extra", "1")]);

    let first = secrets.patch("applied", &params, &Patch::Apply(&desired)).await.unwrap();
    let second = secrets.patch("applied", &params, &Patch::Apply(&desired)).await.unwrap();
    assert_eq!(first.resource_version(), second.resource_version(), "re-applying is a no-op");
    let managed = second.managed_fields();
    assert_eq!(managed.len(), 1);
    assert_eq!(managed[0].manager.as_deref(), Some("coffer-controller"));
    assert_eq!(managed[0].operation.as_deref(), Some("Apply"));

    // A changed field applies; a label no longer applied is removed.
    let changed = secret("applied", &[("app", "api")]);
    let third = secrets.patch("applied", &params, &Patch::Apply(&changed)).await.unwrap();
    assert_ne!(third.resource_version(), second.resource_version());
    assert_eq!(third.labels().get("app").map(String::as_str), Some("api"));
    assert!(!third.labels().contains_key("extra"));

    // Another manager setting the same field differently conflicts unless it forces.
    let other = secret("applied", &[("app", "other")]);
    let err = secrets.patch("applied", &PatchParams::apply("someone-else"), &Patch::Apply(&other)).await.unwrap_err();
    assert_eq!(api_code(&err), (409, "Conflict".into()));
    let forced =
        secrets.patch("applied", &PatchParams::apply("someone-else").force(), &Patch::Apply(&other)).await.unwrap();
    assert_eq!(forced.labels()["app"], "other");

    // Apply needs a field manager.
    let err = secrets.patch("applied", &PatchParams::default(), &Patch::Apply(&other)).await.unwrap_err();
    assert_eq!(api_code(&err).0, 422);

    let applies: Vec<_> = fake.requests().into_iter().filter(|r| r.is_apply()).collect();
    assert_eq!(applies.len(), 6);
    assert_eq!(applies[0].field_manager(), Some("coffer-controller"));
    assert_eq!(applies[0].patch_type(), Some(PatchType::Apply));
    assert_eq!(applies[0].content_type.as_deref(), Some("application/apply-patch+yaml"));
    assert_eq!(applies[0].status, 201);
    assert_eq!(applies[1].status, 200);
    assert!(!applies[3].force());
    assert!(applies[4].force());
    assert_eq!(applies[3].status, 409);
    fake.shutdown().await;
}

#[tokio::test]
async fn merge_and_json_patches() {
    let fake = FakeApiServer::start().await.unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(fake.client());
    secrets.create(&PostParams::default(), &secret("p", &[("a", "1")])).await.unwrap();

    let merged = secrets
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "labels": { "a": null, "b": "2" } } })),
        )
        .await
        .unwrap();
    assert_eq!(merged.labels().len(), 1);
    assert_eq!(merged.labels()["b"], "2");

    let ops: json_patch::Patch = serde_json::from_value(json!([
        { "op": "test", "path": "/metadata/labels/b", "value": "2" },
        { "op": "add", "path": "/metadata/annotations", "value": {} },
        { "op": "add", "path": "/metadata/annotations/example.com~1note", "value": "hi" },
        { "op": "replace", "path": "/metadata/labels/b", "value": "3" },
    ]))
    .unwrap();
    let patched = secrets.patch("p", &PatchParams::default(), &Patch::Json::<()>(ops)).await.unwrap();
    assert_eq!(patched.annotations()["example.com/note"], "hi");
    assert_eq!(patched.labels()["b"], "3");

    let failing: json_patch::Patch =
        serde_json::from_value(json!([{ "op": "test", "path": "/metadata/labels/b", "value": "nope" }])).unwrap();
    let err = secrets.patch("p", &PatchParams::default(), &Patch::Json::<()>(failing)).await.unwrap_err();
    assert_eq!(api_code(&err), (422, "Invalid".into()));

    // A stale resourceVersion in a patch conflicts.
    let err = secrets
        .patch(
            "p",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "resourceVersion": "1", "labels": { "c": "1" } } })),
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), (409, "Conflict".into()));

    // Strategic merge patches are merged.
    let strategic = secrets
        .patch("p", &PatchParams::default(), &Patch::Strategic(json!({ "metadata": { "labels": { "s": "1" } } })))
        .await
        .unwrap();
    assert_eq!(strategic.labels()["s"], "1");

    let patch_types: Vec<_> =
        fake.requests_for("secrets", Some(Verb::Patch)).iter().map(|r| r.patch_type().unwrap()).collect();
    assert_eq!(
        patch_types,
        [PatchType::Merge, PatchType::Json, PatchType::Json, PatchType::Merge, PatchType::Strategic]
    );
    // Missing objects are 404 for patches.
    let err = secrets.patch("none", &PatchParams::default(), &Patch::Merge(json!({}))).await.unwrap_err();
    assert_eq!(api_code(&err).0, 404);
    fake.shutdown().await;
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let fake = FakeApiServer::start().await.unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(fake.client());
    let mut s = secret("held", &[]);
    s.metadata.finalizers = Some(vec!["coffer.io/cleanup".into()]);
    secrets.create(&PostParams::default(), &s).await.unwrap();

    let events = watcher(secrets.clone(), watcher::Config::default());
    let mut events = Box::pin(events);
    // Init, InitApply(held), InitDone.
    for _ in 0..3 {
        tokio::time::timeout(WAIT, events.try_next()).await.unwrap().unwrap();
    }

    let deleted = secrets.delete("held", &DeleteParams::default()).await.unwrap();
    let kept = deleted.left().expect("the object, still there");
    assert!(kept.metadata.deletion_timestamp.is_some());
    let still = secrets.get("held").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_some());
    match tokio::time::timeout(WAIT, events.try_next()).await.unwrap().unwrap() {
        Some(watcher::Event::Apply(obj)) => assert!(obj.metadata.deletion_timestamp.is_some()),
        other => panic!("expected a MODIFIED event, got {other:?}"),
    }
    // Deleting again changes nothing.
    let again = secrets.delete("held", &DeleteParams::default()).await.unwrap();
    assert_eq!(again.left().unwrap().resource_version(), still.resource_version());

    // No new finalizer on a deleting object.
    let err = secrets
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({ "metadata": { "finalizers": ["coffer.io/cleanup", "other.io/x"] } })),
        )
        .await
        .unwrap_err();
    assert_eq!(api_code(&err), (422, "Invalid".into()));

    // Removing the last finalizer as kube's finalizer helper does removes the object.
    let remove: json_patch::Patch = serde_json::from_value(json!([
        { "op": "test", "path": "/metadata/finalizers/0", "value": "coffer.io/cleanup" },
        { "op": "remove", "path": "/metadata/finalizers/0" },
    ]))
    .unwrap();
    secrets.patch("held", &PatchParams::default(), &Patch::Json::<()>(remove)).await.unwrap();
    assert!(secrets.get_opt("held").await.unwrap().is_none());
    match tokio::time::timeout(WAIT, events.try_next()).await.unwrap().unwrap() {
        Some(watcher::Event::Delete(obj)) => assert_eq!(obj.name_any(), "held"),
        other => panic!("expected a DELETED event, got {other:?}"),
    }
    fake.shutdown().await;
}

#[tokio::test]
async fn watcher_sees_added_modified_deleted() {
    let fake = FakeApiServer::start().await.unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(fake.client());
    secrets.create(&PostParams::default(), &secret("before", &[])).await.unwrap();
    let mut events = Box::pin(watcher(secrets.clone(), watcher::Config::default()));
    let mut next = async || {
        tokio::time::timeout(WAIT, events.try_next())
            .await
            .expect("an event in time")
            .expect("no watcher error")
            .expect("the stream goes on")
    };
    assert!(matches!(next().await, watcher::Event::Init));
    assert!(matches!(next().await, watcher::Event::InitApply(o) if o.name_any() == "before"));
    assert!(matches!(next().await, watcher::Event::InitDone));

    secrets.create(&PostParams::default(), &secret("w", &[])).await.unwrap();
    assert!(matches!(next().await, watcher::Event::Apply(o) if o.name_any() == "w"));
    secrets
        .patch("w", &PatchParams::default(), &Patch::Merge(json!({ "metadata": { "labels": { "x": "y" } } })))
        .await
        .unwrap();
    assert!(matches!(next().await, watcher::Event::Apply(o) if o.labels().contains_key("x")));
    secrets.delete("w", &DeleteParams::default()).await.unwrap();
    assert!(matches!(next().await, watcher::Event::Delete(o) if o.name_any() == "w"));

    // The watch was list-then-watch with bookmarks.
    let watches = fake.requests_for("secrets", Some(Verb::Watch));
    assert_eq!(watches.len(), 1);
    assert_eq!(watches[0].query_param("allowWatchBookmarks"), Some("true"));
    assert_eq!(watches[0].query_param("timeoutSeconds"), Some("290"));
    assert_eq!(fake.requests_for("secrets", Some(Verb::List)).len(), 1);
    fake.shutdown().await;
}

#[tokio::test]
async fn gone_watch_makes_the_watcher_relist() {
    let fake = FakeApiServer::start().await.unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(fake.client());
    secrets.create(&PostParams::default(), &secret("one", &[])).await.unwrap();
    let mut events = Box::pin(watcher(secrets.clone(), watcher::Config::default()));
    let mut seen = Vec::new();
    while !matches!(seen.last(), Some(Ok(watcher::Event::InitDone))) {
        seen.push(tokio::time::timeout(WAIT, events.next()).await.unwrap().unwrap());
    }

    // An event proves the watch is open.
    secrets.create(&PostParams::default(), &secret("two", &[])).await.unwrap();
    let next = tokio::time::timeout(WAIT, events.next()).await.unwrap().unwrap();
    assert!(matches!(next, Ok(watcher::Event::Apply(o)) if o.name_any() == "two"));

    fake.expire_watches();
    secrets.create(&PostParams::default(), &secret("three", &[])).await.unwrap();
    // A 410 error, then a fresh Init with every object.
    let mut after = Vec::new();
    while !matches!(after.last(), Some(Ok(watcher::Event::InitDone))) {
        after.push(tokio::time::timeout(WAIT, events.next()).await.unwrap().unwrap());
    }
    match &after[0] {
        Err(watcher::Error::WatchError(status)) => assert_eq!(status.code, 410),
        other => panic!("expected a 410 watch error, got {other:?}"),
    }
    let relisted: Vec<String> = after
        .iter()
        .filter_map(|e| match e {
            Ok(watcher::Event::InitApply(o)) => Some(o.name_any()),
            _ => None,
        })
        .collect();
    assert_eq!(relisted, ["one", "three", "two"]);
    assert_eq!(fake.requests_for("secrets", Some(Verb::List)).len(), 2);

    // A raw watch from a compacted version gets an ERROR event with 410.
    fake.compact_history();
    let mut raw = Box::pin(secrets.watch(&WatchParams::default(), "1").await.unwrap());
    match tokio::time::timeout(WAIT, raw.try_next()).await.unwrap().unwrap() {
        Some(WatchEvent::Error(status)) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
        }
        other => panic!("expected an ERROR event, got {other:?}"),
    }
    fake.shutdown().await;
}

#[tokio::test]
async fn watch_selectors_bookmarks_and_timeouts() {
    let fake = FakeApiServer::start().await.unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(fake.client());
    let start = fake.resource_version().to_string();
    let params = WatchParams::default().labels("app=web").timeout(1);
    let mut stream = Box::pin(secrets.watch(&params, &start).await.unwrap());

    secrets.create(&PostParams::default(), &secret("m", &[("app", "db")])).await.unwrap();
    secrets
        .patch("m", &PatchParams::default(), &Patch::Merge(json!({ "metadata": { "labels": { "app": "web" } } })))
        .await
        .unwrap();
    secrets
        .patch("m", &PatchParams::default(), &Patch::Merge(json!({ "metadata": { "labels": { "app": "db" } } })))
        .await
        .unwrap();
    let mut kinds = Vec::new();
    while let Some(ev) = tokio::time::timeout(WAIT, stream.try_next()).await.unwrap().unwrap() {
        kinds.push(match ev {
            WatchEvent::Added(_) => "ADDED",
            WatchEvent::Modified(_) => "MODIFIED",
            WatchEvent::Deleted(_) => "DELETED",
            WatchEvent::Bookmark(_) => "BOOKMARK",
            WatchEvent::Error(_) => "ERROR",
        });
    }
    // Entering the selector is ADDED, leaving it DELETED; the timeout ends the stream
    // after a bookmark.
    assert_eq!(kinds, ["ADDED", "DELETED", "BOOKMARK"]);
    fake.shutdown().await;
}

#[tokio::test]
async fn streaming_list_watcher() {
    let fake = FakeApiServer::start().await.unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(fake.client());
    secrets.create(&PostParams::default(), &secret("s1", &[])).await.unwrap();
    let mut events = Box::pin(watcher(secrets.clone(), watcher::Config::default().streaming_lists()));
    let mut seen = Vec::new();
    while !matches!(seen.last(), Some(watcher::Event::InitDone)) {
        seen.push(tokio::time::timeout(WAIT, events.try_next()).await.unwrap().unwrap().unwrap());
    }
    assert!(matches!(&seen[1], watcher::Event::InitApply(o) if o.name_any() == "s1"));
    secrets.create(&PostParams::default(), &secret("s2", &[])).await.unwrap();
    let next = tokio::time::timeout(WAIT, events.try_next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(next, watcher::Event::Apply(o) if o.name_any() == "s2"));
    assert_eq!(fake.requests_for("secrets", Some(Verb::List)).len(), 0);
    let watch = &fake.requests_for("secrets", Some(Verb::Watch))[0];
    assert_eq!(watch.query_param("sendInitialEvents"), Some("true"));
    fake.shutdown().await;
}

#[tokio::test]
async fn dynamic_cluster_scoped_profiles() {
    let fake = FakeApiServer::start().await.unwrap();
    let ar = profile_resource();
    let profiles: Api<DynamicObject> = Api::all_with(fake.client(), &ar);
    let profile = DynamicObject::new("alice", &ar).data(json!({
        "spec": { "owner": { "kind": "User", "name": "alice@example.com" } },
        "status": { "ignored": true },
    }));
    let created = profiles.create(&PostParams::default(), &profile).await.unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    assert!(created.data.get("status").is_none());
    assert_eq!(created.namespace(), None);
    assert_eq!(profiles.list(&ListParams::default()).await.unwrap().items.len(), 1);

    // Spec changes bump the generation; status changes (through /status) do not.
    let patched = profiles
        .patch("alice", &PatchParams::default(), &Patch::Merge(json!({ "spec": { "quota": "10Gi" } })))
        .await
        .unwrap();
    assert_eq!(patched.metadata.generation, Some(2));
    let status = profiles
        .patch_status("alice", &PatchParams::default(), &Patch::Merge(json!({ "status": { "ready": true } })))
        .await
        .unwrap();
    assert_eq!(status.metadata.generation, Some(2));
    assert_eq!(status.data["status"]["ready"], true);
    assert_eq!(status.data["spec"]["quota"], "10Gi");

    // Server-side apply of the status subresource.
    let status_apply = DynamicObject::new("alice", &ar).data(json!({ "status": { "phase": "Ready" } }));
    let applied = profiles
        .patch_status("alice", &PatchParams::apply("status-writer"), &Patch::Apply(&status_apply))
        .await
        .unwrap();
    assert_eq!(applied.data["status"]["phase"], "Ready");
    assert_eq!(applied.data["status"]["ready"], true);
    assert_eq!(applied.metadata.generation, Some(2));
    let status_manager =
        applied.managed_fields().iter().find(|m| m.manager.as_deref() == Some("status-writer")).cloned().unwrap();
    assert_eq!(status_manager.subresource.as_deref(), Some("status"));
    let status = profiles.get("alice").await.unwrap();

    // Custom resources need a resourceVersion on PUT.
    let mut unconditional = status.clone();
    unconditional.metadata.resource_version = None;
    let err = profiles.replace("alice", &PostParams::default(), &unconditional).await.unwrap_err();
    assert_eq!(api_code(&err).0, 422);

    // A namespaced path for a cluster-scoped resource does not exist.
    let wrong: Api<DynamicObject> = Api::namespaced_with(fake.client(), "default", &ar);
    assert_eq!(api_code(&wrong.get("alice").await.unwrap_err()).0, 404);
    // Nor does an unknown resource.
    let unknown = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("example.com", "v1", "Widget"), "widgets");
    let widgets: Api<DynamicObject> = Api::all_with(fake.client(), &unknown);
    assert_eq!(api_code(&widgets.list(&ListParams::default()).await.unwrap_err()), (404, "NotFound".into()));

    // Custom resources answer DELETE with the object.
    let deleted = profiles.delete("alice", &DeleteParams::default()).await.unwrap();
    assert_eq!(deleted.left().unwrap().name_any(), "alice");
    assert!(fake.get("kubeflow.org/v1", "Profile", None, "alice").is_none());
    let paths: Vec<String> = fake.requests_for("profiles", None).iter().map(|r| r.path.clone()).collect();
    assert_eq!(paths[0], "/apis/kubeflow.org/v1/profiles");
    fake.shutdown().await;
}

#[tokio::test]
async fn garbage_collection_and_namespace_deletion() {
    let fake = FakeApiServer::start().await.unwrap();
    let client = fake.client();
    let ar = profile_resource();
    let profiles: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    let owner = profiles
        .create(&PostParams::default(), &DynamicObject::new("bob", &ar).data(json!({ "spec": {} })))
        .await
        .unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(client.clone());
    let mut owned = secret("owned", &[]);
    owned.metadata.owner_references = Some(vec![k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
        api_version: "kubeflow.org/v1".into(),
        kind: "Profile".into(),
        name: "bob".into(),
        uid: owner.uid().unwrap(),
        ..Default::default()
    }]);
    secrets.create(&PostParams::default(), &owned).await.unwrap();
    profiles.delete("bob", &DeleteParams::default()).await.unwrap();
    assert!(secrets.get_opt("owned").await.unwrap().is_none());

    // Deleting a namespace deletes what is in it, then the namespace.
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let ns: Namespace = serde_json::from_value(json!({ "metadata": { "name": "team" } })).unwrap();
    let created = namespaces.create(&PostParams::default(), &ns).await.unwrap();
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Active"));
    let team: Api<Secret> = Api::namespaced(client.clone(), "team");
    let mut held = secret("held", &[]);
    held.metadata.finalizers = Some(vec!["coffer.io/x".into()]);
    team.create(&PostParams::default(), &held).await.unwrap();
    team.create(&PostParams::default(), &secret("plain", &[])).await.unwrap();
    namespaces.delete("team", &DeleteParams::default()).await.unwrap();
    let terminating = namespaces.get("team").await.unwrap();
    assert_eq!(terminating.status.unwrap().phase.as_deref(), Some("Terminating"));
    assert!(team.get_opt("plain").await.unwrap().is_none());
    let err = team.create(&PostParams::default(), &secret("late", &[])).await.unwrap_err();
    assert_eq!(api_code(&err).0, 403);
    team.patch("held", &PatchParams::default(), &Patch::Merge(json!({ "metadata": { "finalizers": null } })))
        .await
        .unwrap();
    assert!(namespaces.get_opt("team").await.unwrap().is_none());
    fake.shutdown().await;
}

#[tokio::test]
async fn discovery_and_version() {
    let fake = FakeApiServer::start().await.unwrap();
    let client = fake.client();
    let version = client.apiserver_version().await.unwrap();
    assert_eq!(version.major, "1");
    let discovery = kube::Discovery::new(client.clone()).run().await.unwrap();
    let (ar, caps) = discovery
        .resolve_gvk(&GroupVersionKind::gvk("kubeflow.org", "v1", "Profile"))
        .expect("profiles are discoverable");
    assert_eq!(ar.plural, "profiles");
    assert_eq!(caps.scope, kube::discovery::Scope::Cluster);
    let (secrets, caps) =
        discovery.resolve_gvk(&GroupVersionKind::gvk("", "v1", "Secret")).expect("secrets are discoverable");
    assert_eq!(secrets.plural, "secrets");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);
    fake.shutdown().await;
}

#[tokio::test]
async fn injected_faults_fail_then_recover() {
    let fake = FakeApiServer::start().await.unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(fake.client());
    fake.inject_fault(Fault::new(Verb::Create, "secrets", 500).times(2));
    fake.inject_fault(Fault::new(Verb::Get, "secrets", 409).named("f").reason("Conflict"));
    for _ in 0..2 {
        let err = secrets.create(&PostParams::default(), &secret("f", &[])).await.unwrap_err();
        assert_eq!(api_code(&err), (500, "InternalError".into()));
    }
    secrets.create(&PostParams::default(), &secret("f", &[])).await.unwrap();
    assert_eq!(api_code(&secrets.get("f").await.unwrap_err()), (409, "Conflict".into()));
    secrets.get("f").await.unwrap();
    let statuses: Vec<u16> = fake.requests_for("secrets", Some(Verb::Create)).iter().map(|r| r.status).collect();
    assert_eq!(statuses, [500, 500, 201]);
    fake.shutdown().await;
}

#[tokio::test]
async fn direct_store_access() {
    let fake = FakeApiServer::builder().namespaces(["team", "default"]).start().await.unwrap();
    let seeded = fake
        .put(json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": { "name": "seeded", "namespace": "default", "labels": { "seed": "yes" } },
            "data": { "k": "dg==" },
        }))
        .unwrap();
    assert!(seeded["metadata"]["uid"].is_string());
    let secrets: Api<Secret> = Api::default_namespaced(fake.client());
    let got = secrets.get("seeded").await.unwrap();
    assert_eq!(got.labels()["seed"], "yes");
    let typed: Secret = fake.get_typed(Some("default"), "seeded").unwrap();
    assert_eq!(typed.uid(), got.uid());
    assert_eq!(fake.list_typed::<Secret>(None).len(), 1);
    assert_eq!(fake.list("v1", "Namespace", None).len(), 5, "the usual four and `team`");
    assert!(fake.put(json!({ "apiVersion": "v9", "kind": "Nope", "metadata": { "name": "x" } })).is_err());
    let removed: Option<Value> = fake.remove("v1", "Secret", Some("default"), "seeded");
    assert!(removed.is_some());
    assert!(secrets.get_opt("seeded").await.unwrap().is_none());
    let waited =
        fake.wait_for(Duration::from_millis(200), |f| f.get("v1", "Secret", Some("default"), "never").is_some()).await;
    assert!(!waited);
    fake.shutdown().await;
}

#[tokio::test]
async fn secret_string_data_and_metadata_only_access() {
    let fake = FakeApiServer::start().await.unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(fake.client());
    let created = secrets.create(&PostParams::default(), &secret("sd", &[("app", "x")])).await.unwrap();
    // stringData goes into data, base64, as on a real server.
    assert!(created.string_data.is_none());
    assert_eq!(created.data.unwrap()["key"].0, b"value");
    assert_eq!(created.type_.as_deref(), Some("Opaque"));
    let stored = fake.get("v1", "Secret", Some("default"), "sd").unwrap();
    assert_eq!(stored["data"]["key"], "dmFsdWU=");
    // Re-applying the same stringData is a no-op.
    let params = PatchParams::apply("m");
    let first = secrets.patch("sd", &params, &Patch::Apply(&secret("sd", &[("app", "x")]))).await.unwrap();
    let second = secrets.patch("sd", &params, &Patch::Apply(&secret("sd", &[("app", "x")]))).await.unwrap();
    assert_eq!(first.resource_version(), second.resource_version());

    // PartialObjectMetadata for get, list and watch.
    let meta = secrets.get_metadata("sd").await.unwrap();
    assert_eq!(meta.labels()["app"], "x");
    assert_eq!(meta.types.as_ref().unwrap().kind, "PartialObjectMetadata");
    let list = secrets.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    let metadata_api: Api<kube::core::PartialObjectMeta<Secret>> = Api::default_namespaced(fake.client());
    let mut events = Box::pin(watcher(metadata_api, watcher::Config::default()));
    let mut seen = Vec::new();
    while !matches!(seen.last(), Some(watcher::Event::InitDone)) {
        seen.push(tokio::time::timeout(WAIT, events.try_next()).await.unwrap().unwrap().unwrap());
    }
    secrets.create(&PostParams::default(), &secret("sd2", &[])).await.unwrap();
    match tokio::time::timeout(WAIT, events.try_next()).await.unwrap().unwrap().unwrap() {
        watcher::Event::Apply(m) => assert_eq!(m.name_any(), "sd2"),
        other => panic!("expected Apply, got {other:?}"),
    }
    fake.shutdown().await;
}

#[tokio::test]
async fn capped_watches_restart_from_their_bookmark() {
    let fake = FakeApiServer::builder().max_watch_timeout(Duration::from_millis(300)).start().await.unwrap();
    let secrets: Api<Secret> = Api::default_namespaced(fake.client());
    let mut events = Box::pin(watcher(secrets.clone(), watcher::Config::default()));
    let mut seen = Vec::new();
    while !matches!(seen.last(), Some(watcher::Event::InitDone)) {
        seen.push(tokio::time::timeout(WAIT, events.try_next()).await.unwrap().unwrap().unwrap());
    }
    // Let a watch or two time out (the watcher re-watches from the bookmark, no relist).
    let drive = async {
        loop {
            let _ = events.try_next().await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(800), drive).await;
    secrets.create(&PostParams::default(), &secret("late", &[])).await.unwrap();
    let next = tokio::time::timeout(WAIT, events.try_next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(next, watcher::Event::Apply(o) if o.name_any() == "late"));
    assert!(fake.requests_for("secrets", Some(Verb::Watch)).len() >= 2);
    assert_eq!(fake.requests_for("secrets", Some(Verb::List)).len(), 1);
    fake.shutdown().await;
}
