//! One profile's reconcile: apply (buckets, credentials, PVs, PVCs) or, once it is being
//! deleted, cleanup — wrapped in the finalizer so that cleanup always runs before the
//! profile goes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use coffer_core::{BucketName, Classification, Grantee, Narrowing, Role};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume, PersistentVolumeClaim, Secret};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{Event as KubeEvent, EventType};
use kube::runtime::finalizer::{Event, finalizer};
use kube::{Resource, ResourceExt};

use super::{Context, Error, FINALIZER, RESYNC, credentials, profile_resource};
use crate::desired::{self, Volume};
use crate::settings::{Driver, TierVolumes};

/// The principal the Mountpoint driver's key belongs to.
pub const MOUNTPOINT_PRINCIPAL: &str = "system:coffer-csi-mountpoint";

/// A profile, whatever it came from.
struct Profile {
    name: String,
    owner: Option<String>,
    reference: k8s_openapi::api::core::v1::ObjectReference,
}

/// Reconcile a Kubeflow `Profile`.
pub(super) async fn profile(obj: Arc<DynamicObject>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<DynamicObject> = Api::all_with(ctx.client.clone(), &profile_resource());
    let ar = profile_resource();
    let run = finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            Event::Apply(p) => {
                let owner = p.data.pointer("/spec/owner/name").and_then(|v| v.as_str()).map(str::to_owned);
                let profile = Profile { name: p.name_any(), owner, reference: p.object_ref(&ar) };
                apply(&ctx, &profile).await
            }
            Event::Cleanup(p) => {
                let profile = Profile { name: p.name_any(), owner: None, reference: p.object_ref(&ar) };
                cleanup(&ctx, &profile).await
            }
        }
    });
    finish(&ctx, run.await)
}

/// Reconcile a namespace carrying the profile label (its owner: the `owner` annotation,
/// as Kubeflow sets it on profile namespaces).
pub(super) async fn namespace(obj: Arc<Namespace>, ctx: Arc<Context>) -> Result<Action, Error> {
    let api: Api<Namespace> = Api::all(ctx.client.clone());
    let run = finalizer(&api, FINALIZER, obj, |event| async {
        match event {
            Event::Apply(ns) => {
                let owner = ns.annotations().get("owner").cloned();
                let profile = Profile { name: ns.name_any(), owner, reference: ns.object_ref(&()) };
                apply(&ctx, &profile).await
            }
            Event::Cleanup(ns) => {
                let profile = Profile { name: ns.name_any(), owner: None, reference: ns.object_ref(&()) };
                cleanup(&ctx, &profile).await
            }
        }
    });
    finish(&ctx, run.await)
}

fn finish(ctx: &Context, r: Result<Action, kube::runtime::finalizer::Error<Error>>) -> Result<Action, Error> {
    use kube::runtime::finalizer::Error as F;
    match r {
        Ok(a) => Ok(a),
        Err(F::ApplyFailed(e) | F::CleanupFailed(e)) => Err(e),
        Err(F::AddFinalizer(e) | F::RemoveFinalizer(e)) => Err(Error::Kube(e)),
        Err(other) => {
            let _ = ctx;
            Err(Error::Finalizer(other.to_string()))
        }
    }
}

async fn event(ctx: &Context, p: &Profile, type_: EventType, reason: &str, action: &str, note: String) {
    let ev = KubeEvent { type_, reason: reason.into(), note: Some(note), action: action.into(), secondary: None };
    if let Err(e) = ctx.recorder.publish(&ev, &p.reference).await {
        tracing::warn!(profile = %p.name, error = %e, "cannot publish an event");
    }
}

fn apply_params() -> PatchParams {
    PatchParams::apply(desired::MANAGER).force()
}

/// One tier of the profile, decided.
struct Planned<'a> {
    tier: &'a str,
    volumes: &'a TierVolumes,
    bucket: String,
    classification: String,
    read_only: bool,
}

/// The tiers this profile gets: configured for Kubernetes, existing in coffer, and of a
/// classification the profile is cleared for.
fn plan<'a>(ctx: &'a Context, profile: &str) -> (Vec<Planned<'a>>, Vec<String>) {
    let clearance = ctx.gateway.profile_clearance(profile);
    let mut planned = Vec::new();
    let mut skipped = Vec::new();
    for (tier, volumes) in &ctx.settings.tiers {
        if !ctx.gateway.tier_names().any(|t| t == tier) {
            skipped.push(format!("tier {tier} is not a configured storage tier"));
            continue;
        }
        let rules = ctx.gateway.tier_rules(tier);
        let allowed: Option<Vec<String>> =
            rules.classifications.as_ref().map(|s| s.iter().map(|c| c.as_str().to_owned()).collect());
        let classification = desired::tier_classification(volumes, allowed.as_deref());
        let cleared = Classification::parse(&classification).is_ok_and(|c| clearance.contains(&c));
        if !cleared {
            skipped.push(format!("tier {tier}: profile {profile} is not cleared for {classification}"));
            continue;
        }
        planned.push(Planned {
            tier,
            volumes,
            bucket: desired::bucket_name(profile, tier, ctx.gateway.default_tier()),
            classification,
            read_only: rules.read_only,
        });
    }
    (planned, skipped)
}

async fn apply(ctx: &Context, p: &Profile) -> Result<Action, Error> {
    match apply_tiers(ctx, p).await {
        Ok((action, note)) => {
            ctx.succeeded(&p.name);
            ctx.metrics.reconciled();
            event(ctx, p, EventType::Normal, "Reconciled", "Reconcile", note).await;
            Ok(action)
        }
        Err(e) => {
            event(ctx, p, EventType::Warning, "ReconcileFailed", "Reconcile", e.to_string()).await;
            Err(e)
        }
    }
}

/// Every planned tier in place; the requeue, and what to say in the event.
async fn apply_tiers(ctx: &Context, p: &Profile) -> Result<(Action, String), Error> {
    ctx.gateway.ensure_profile_user(&p.name).await?;
    let (planned, skipped) = plan(ctx, &p.name);
    let mut wake = ctx.now() + RESYNC.as_secs() as i64;
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &p.name);
    let mut made = Vec::new();
    for t in &planned {
        ctx.gateway.ensure_profile_bucket(&p.name, &t.bucket, t.tier, &t.classification, p.owner.as_deref()).await?;
        let v = Volume {
            profile: &p.name,
            tier: t.tier,
            settings: t.volumes,
            bucket: &t.bucket,
            classification: &t.classification,
            read_only: t.read_only,
        };
        match t.volumes.driver {
            Driver::K8sCsiS3 | Driver::JuiceFs => {
                let narrowing = Narrowing {
                    read_only: t.read_only,
                    buckets: Some(BTreeSet::from([
                        BucketName::parse(&t.bucket).map_err(|e| Error::Invalid(e.to_string()))?
                    ])),
                    ..Narrowing::default()
                };
                let name = desired::secret_name(&p.name, t.tier);
                let build = |c: &desired::Credential| {
                    desired::volume_secret(&ctx.settings, &v, c).expect("these drivers take a Secret")
                };
                wake = wake.min(credentials::ensure(ctx, &name, &p.name, narrowing, build).await?);
            }
            Driver::Mountpoint => {
                wake = wake.min(ensure_mountpoint(ctx, t).await?);
            }
            Driver::BlobCsi => {}
        }
        let pv = desired::persistent_volume(&ctx.settings, &v);
        pvs.patch(&desired::pv_name(&p.name, t.tier), &apply_params(), &Patch::Apply(&pv)).await?;
        let pvc = desired::persistent_volume_claim(&ctx.settings, &v);
        pvcs.patch(&desired::pvc_name(t.tier), &apply_params(), &Patch::Apply(&pvc)).await?;
        made.push(format!("{} ({})", t.bucket, t.tier));
    }
    let mut note =
        format!("buckets and volumes in place: {}", if made.is_empty() { "none".into() } else { made.join(", ") });
    if !skipped.is_empty() {
        note.push_str(&format!("; skipped: {}", skipped.join("; ")));
    }
    let wait = (wake - ctx.now()).clamp(1, RESYNC.as_secs() as i64);
    Ok((Action::requeue(Duration::from_secs(wait as u64)), note))
}

/// The Mountpoint driver's key: one for every profile, granted each Mountpoint bucket.
async fn ensure_mountpoint(ctx: &Context, t: &Planned<'_>) -> Result<i64, Error> {
    let _one_writer = ctx.mountpoint.lock().await;
    let user = ctx.gateway.admin_list_users().await?.into_iter().find(|u| u.name.as_str() == MOUNTPOINT_PRINCIPAL);
    // The driver reads buckets of every classification its tiers hold.
    let mut clearance: Vec<String> = ctx
        .settings
        .tiers
        .values()
        .filter(|v| v.driver == Driver::Mountpoint)
        .filter_map(|v| v.classification.clone())
        .collect();
    clearance.push(t.classification.clone());
    clearance.push(crate::settings::UNCLASSIFIED.to_owned());
    clearance.sort();
    clearance.dedup();
    match user {
        Some(mut u) => {
            let want: BTreeSet<Classification> =
                clearance.iter().filter_map(|c| Classification::parse(c).ok()).collect();
            if !want.is_subset(&u.clearance) {
                u.clearance.extend(want);
                ctx.gateway.store().update_user(&u).await.map_err(coffer_gateway::Error::from)?;
            }
        }
        None => match ctx.gateway.admin_create_user(MOUNTPOINT_PRINCIPAL, &[], &clearance, false).await {
            Ok(_) | Err(coffer_gateway::Error::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        },
    }
    let role = if t.read_only { Role::Read } else { Role::Write };
    ctx.gateway.admin_put_grant(&t.bucket, Grantee::User(MOUNTPOINT_PRINCIPAL.into()), role).await?;
    let name = desired::mountpoint_secret_name(t.volumes);
    let build = |c: &desired::Credential| desired::mountpoint_secret(&ctx.settings, t.volumes, c);
    credentials::ensure(ctx, &name, MOUNTPOINT_PRINCIPAL, Narrowing::default(), build).await
}

fn gone<T>(r: Result<T, kube::Error>) -> Result<(), Error> {
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn cleanup(ctx: &Context, p: &Profile) -> Result<Action, Error> {
    let pvs: Api<PersistentVolume> = Api::all(ctx.client.clone());
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &p.name);
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.settings.driver_namespace);
    let mut kept = Vec::new();
    for (tier, volumes) in &ctx.settings.tiers {
        gone(pvcs.delete(&desired::pvc_name(tier), &DeleteParams::default()).await)?;
        gone(pvs.delete(&desired::pv_name(&p.name, tier), &DeleteParams::default()).await)?;
        let name = desired::secret_name(&p.name, tier);
        if let Some(s) = secrets.get_opt(&name).await? {
            credentials::revoke_all(ctx, &s).await?;
            gone(secrets.delete(&name, &DeleteParams::default()).await)?;
        }
        let bucket = desired::bucket_name(&p.name, tier, ctx.gateway.default_tier());
        let Some(b) = ctx.gateway.store().get_bucket(&bucket).await.map_err(coffer_gateway::Error::from)? else {
            continue;
        };
        if b.owner != p.name {
            continue;
        }
        if volumes.driver == Driver::Mountpoint {
            match ctx.gateway.admin_remove_grant(&bucket, &Grantee::User(MOUNTPOINT_PRINCIPAL.into())).await {
                Ok(()) | Err(coffer_gateway::Error::NotFound(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if ctx.settings.delete_buckets {
            match ctx.gateway.admin_delete_bucket(&bucket).await {
                Ok(()) => {}
                Err(coffer_gateway::Error::BucketNotEmpty) => kept.push(format!("{bucket} (not empty)")),
                Err(e) => return Err(e.into()),
            }
        } else {
            kept.push(bucket);
        }
    }
    ctx.metrics.cleaned_up();
    let note = if kept.is_empty() {
        "volumes, credentials and buckets removed".to_owned()
    } else {
        format!("volumes and credentials removed; buckets kept: {}", kept.join(", "))
    };
    tracing::info!(profile = %p.name, "{note}");
    event(ctx, p, EventType::Normal, "CleanedUp", "Cleanup", note).await;
    Ok(Action::await_change())
}
