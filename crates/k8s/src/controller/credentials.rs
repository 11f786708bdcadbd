//! The keys CSI drivers use, kept in Secrets of the driver namespace, and their rotation.
//!
//! A Secret's annotations say which key it holds and since when, and — during a rotation's
//! overlap — which key it replaced and when that one is revoked. The secret value itself is
//! never read back from Kubernetes: coffer holds it sealed and opens it to re-apply the
//! Secret. A key that was revoked or deleted behind the controller's back is replaced at
//! once.

use coffer_core::Narrowing;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams};

use super::{Context, Error};
use crate::desired::{self, Credential};

/// What a Secret's annotations say.
#[derive(Debug, Default, PartialEq, Eq)]
struct Recorded {
    key: Option<(String, i64)>,
    previous: Option<(String, i64)>,
}

fn recorded(secret: Option<&Secret>) -> Recorded {
    let Some(a) = secret.and_then(|s| s.metadata.annotations.as_ref()) else { return Recorded::default() };
    let num = |k: &str| a.get(k).and_then(|v| v.parse::<i64>().ok());
    Recorded {
        key: a.get(desired::KEY_ID).cloned().zip(num(desired::KEY_CREATED)),
        previous: a.get(desired::PREVIOUS_KEY_ID).cloned().zip(num(desired::REVOKE_PREVIOUS_AT)),
    }
}

/// The keys a Secret names (current and previous), for cleanup.
pub(super) fn keys_in(secret: &Secret) -> Vec<String> {
    let r = recorded(Some(secret));
    r.key.into_iter().chain(r.previous).map(|(id, _)| id).collect()
}

async fn revoke(ctx: &Context, id: &str) -> Result<(), Error> {
    match ctx.gateway.admin_revoke_key(coffer_gateway::admin::BY_CONTROLLER, id).await {
        Ok(()) | Err(coffer_gateway::Error::NotFound(_)) => {
            ctx.metrics.key_revoked();
            tracing::info!(access_key_id = id, "revoked a CSI credential");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Revoke every key a Secret names.
pub(super) async fn revoke_all(ctx: &Context, secret: &Secret) -> Result<(), Error> {
    for id in keys_in(secret) {
        revoke(ctx, &id).await?;
    }
    Ok(())
}

/// Make sure Secret `name` (driver namespace) holds a working key of `user` narrowed by
/// `narrowing`, rotated on schedule; `build` makes the Secret from the credential. Returns
/// when the controller should look again (Unix seconds).
pub(super) async fn ensure(
    ctx: &Context,
    name: &str,
    user: &str,
    narrowing: Narrowing,
    build: impl Fn(&Credential) -> Secret,
) -> Result<i64, Error> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.settings.driver_namespace);
    let existing = api.get_opt(name).await?;
    let now = ctx.now();
    let rotation = ctx.settings.key_rotation.as_secs() as i64;
    let overlap = ctx.settings.key_overlap.as_secs() as i64;
    let Recorded { key, mut previous } = recorded(existing.as_ref());

    let current = match key {
        Some((id, created)) if ctx.gateway.key_is_active(&id).await? => Some((id, created)),
        Some((id, _)) => {
            tracing::warn!(secret = name, access_key_id = %id, "the Secret's key no longer works; replacing it");
            None
        }
        None => None,
    };
    let (id, created) = match current {
        Some((id, created)) if now - created < rotation => (id, created),
        still_valid => {
            let k = ctx.gateway.admin_create_key(coffer_gateway::admin::BY_CONTROLLER, user, narrowing).await?;
            ctx.metrics.key_created();
            if let Some((old, _)) = still_valid {
                // A rotation: the old key keeps working for the overlap, then goes.
                if let Some((older, _)) = previous.take() {
                    revoke(ctx, &older).await?;
                }
                previous = Some((old, now + overlap));
                tracing::info!(secret = name, access_key_id = %k.key.access_key_id, "rotated a CSI credential");
            } else {
                tracing::info!(secret = name, access_key_id = %k.key.access_key_id, "made a CSI credential");
            }
            (k.key.access_key_id, now)
        }
    };
    if let Some((old, at)) = &previous
        && now >= *at
    {
        revoke(ctx, old).await?;
        previous = None;
        // The overlap is over: its annotations go (an apply that leaves a field out only
        // drops it where the manager still owns it; say it plainly).
        let clear = serde_json::json!({"metadata": {"annotations": {
            desired::PREVIOUS_KEY_ID: null,
            desired::REVOKE_PREVIOUS_AT: null,
        }}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&clear)).await?;
    }
    let secret_access_key = ctx.gateway.secret_for_key(&id).await?;
    let cred = Credential { access_key_id: id, secret_access_key, created_at: created, previous: previous.clone() };
    api.patch(name, &PatchParams::apply(desired::MANAGER).force(), &Patch::Apply(&build(&cred))).await?;
    let mut next = created + rotation;
    if let Some((_, at)) = previous {
        next = next.min(at);
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kube::api::ObjectMeta;

    use super::*;

    #[test]
    fn annotations_are_read_back() {
        let s = Secret {
            metadata: ObjectMeta {
                annotations: Some(BTreeMap::from([
                    (desired::KEY_ID.to_owned(), "CKNEW".to_owned()),
                    (desired::KEY_CREATED.to_owned(), "100".to_owned()),
                    (desired::PREVIOUS_KEY_ID.to_owned(), "CKOLD".to_owned()),
                    (desired::REVOKE_PREVIOUS_AT.to_owned(), "200".to_owned()),
                ])),
                ..ObjectMeta::default()
            },
            ..Secret::default()
        };
        let r = recorded(Some(&s));
        assert_eq!(r.key, Some(("CKNEW".into(), 100)));
        assert_eq!(r.previous, Some(("CKOLD".into(), 200)));
        assert_eq!(keys_in(&s), ["CKNEW", "CKOLD"]);
        assert_eq!(recorded(None), Recorded::default());
        let mut broken = s.clone();
        broken.metadata.annotations.as_mut().unwrap().insert(desired::KEY_CREATED.to_owned(), "soon".to_owned());
        assert_eq!(recorded(Some(&broken)).key, None);
    }
}
