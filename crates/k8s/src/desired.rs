//! What a profile should have on each tier, as pure functions of the profile, the tier's
//! settings and (where the driver needs one) a credential: the bucket's name, the Secret
//! in the driver namespace, the PersistentVolume and the PersistentVolumeClaim. The
//! controller applies these with server-side apply, so running it again changes nothing
//! and drift is corrected.
//!
//! Per driver:
//! - **k8s-csi-s3** (`ru.yandex.s3.csi`): a Secret per volume (`accessKeyID`,
//!   `secretAccessKey`, `endpoint`) with a key narrowed to the volume's bucket; the PV's
//!   `volumeHandle` is the bucket, its publish and stage secret refs name that Secret.
//! - **mountpoint** (`s3.csi.aws.com`): the driver reads one Secret of its own (`key_id`,
//!   `access_key`); the PV names the bucket (`bucketName`) and carries the mount options
//!   `endpoint-url`, `force-path-style`, `region` (and `read-only` on read-only tiers).
//! - **juicefs** (`csi.juicefs.com`): a Secret per volume with the volume's name, the
//!   metadata engine, the bucket's URL on coffer and a key narrowed to it.
//! - **blob-csi** (`blob.csi.azure.com`): the tier's own Azure container, mounted at the
//!   bucket's directory (`--subdirectory`, blobfuse2) with the operator's storage Secret;
//!   coffer makes no credential for it.
//!
//! No Secret is ever made in a profile's namespace: credentials stay with the drivers.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeSpec, Secret, SecretReference, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::api::ObjectMeta;

use crate::settings::{Driver, Settings, TierVolumes, UNCLASSIFIED};

/// The field manager of every server-side apply.
pub const MANAGER: &str = "coffer-controller";
/// The label naming the tier of a PV or PVC.
pub const TIER_LABEL: &str = "coffer.dev/tier";
/// Annotations on a credential Secret: the key in it, when it was made, and the key it
/// replaced with the time that one is revoked.
pub const KEY_ID: &str = "coffer.dev/access-key-id";
pub const KEY_CREATED: &str = "coffer.dev/key-created-at";
pub const PREVIOUS_KEY_ID: &str = "coffer.dev/previous-access-key-id";
pub const REVOKE_PREVIOUS_AT: &str = "coffer.dev/revoke-previous-at";

/// One profile's volume on one tier, everything decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume<'a> {
    /// The profile (and its namespace).
    pub profile: &'a str,
    pub tier: &'a str,
    pub settings: &'a TierVolumes,
    /// The profile's bucket on the tier.
    pub bucket: &'a str,
    /// The bucket's classification.
    pub classification: &'a str,
    /// The tier refuses writes.
    pub read_only: bool,
}

/// A key for a CSI driver (its `Debug` leaves the secret out).
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Unix seconds.
    pub created_at: i64,
    /// The key this one replaced, still valid until the given time (Unix seconds).
    pub previous: Option<(String, i64)>,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("created_at", &self.created_at)
            .field("previous", &self.previous)
            .finish()
    }
}

/// A Kubernetes name for `parts` joined with `-`: lower-case, `[a-z0-9-]`, at most 63
/// characters (a PV name must also be a DNS label for some drivers); a long name is cut
/// and keeps a short hash of the whole, so two names never collide by truncation.
pub fn k8s_name(parts: &[&str]) -> String {
    let raw = parts.join("-").to_lowercase();
    let mut name: String = raw.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '-' }).collect();
    name = name.trim_matches('-').to_owned();
    if name.len() <= 63 {
        return name;
    }
    let hash = fnv(&raw);
    let keep: String = name.chars().take(63 - 9).collect::<String>().trim_end_matches('-').to_owned();
    format!("{keep}-{hash:08x}")
}

/// FNV-1a, 32 bits: a stable short hash for names.
fn fnv(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// The PV of a profile on a tier (cluster-scoped, so the profile is in the name).
pub fn pv_name(profile: &str, tier: &str) -> String {
    k8s_name(&["coffer", profile, tier])
}

/// The PVC of a tier in the profile's namespace; also the folder it is mounted at.
pub fn pvc_name(tier: &str) -> String {
    k8s_name(&["coffer", tier])
}

/// The credential Secret of a profile's volume, in the driver namespace.
pub fn secret_name(profile: &str, tier: &str) -> String {
    k8s_name(&["coffer", profile, tier])
}

/// The Mountpoint driver's own Secret.
pub fn mountpoint_secret_name(v: &TierVolumes) -> String {
    v.driver_secret.clone().unwrap_or_else(|| "aws-secret".into())
}

fn labels(settings: &Settings, v: &Volume<'_>) -> BTreeMap<String, String> {
    BTreeMap::from([
        (settings.labels.profile.clone(), v.profile.to_owned()),
        (settings.labels.classification.clone(), v.classification.to_owned()),
        (TIER_LABEL.to_owned(), v.tier.to_owned()),
        ("app.kubernetes.io/managed-by".to_owned(), "coffer".to_owned()),
    ])
}

fn access_modes(v: &Volume<'_>) -> Vec<String> {
    vec![if v.read_only { "ReadOnlyMany" } else { "ReadWriteMany" }.to_owned()]
}

/// The region S3 clients sign for; coffer accepts any, this is what SDKs default to.
const REGION: &str = "us-east-1";

fn credential_annotations(c: &Credential) -> BTreeMap<String, String> {
    let mut a = BTreeMap::from([
        (KEY_ID.to_owned(), c.access_key_id.clone()),
        (KEY_CREATED.to_owned(), c.created_at.to_string()),
    ]);
    if let Some((id, at)) = &c.previous {
        a.insert(PREVIOUS_KEY_ID.to_owned(), id.clone());
        a.insert(REVOKE_PREVIOUS_AT.to_owned(), at.to_string());
    }
    a
}

fn secret_object(
    settings: &Settings,
    name: String,
    labels: BTreeMap<String, String>,
    c: &Credential,
    data: BTreeMap<String, String>,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(settings.driver_namespace.clone()),
            labels: Some(labels),
            annotations: Some(credential_annotations(c)),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_owned()),
        string_data: Some(data),
        ..Secret::default()
    }
}

/// The bucket's URL on coffer, path-style.
fn bucket_url(settings: &Settings, bucket: &str) -> String {
    format!("{}/{bucket}", settings.s3_endpoint.trim_end_matches('/'))
}

/// The Secret of a volume's own credential (k8s-csi-s3, juicefs); `None` for drivers that
/// take no per-volume credential.
pub fn volume_secret(settings: &Settings, v: &Volume<'_>, c: &Credential) -> Option<Secret> {
    let data = match v.settings.driver {
        Driver::K8sCsiS3 => BTreeMap::from([
            ("accessKeyID".to_owned(), c.access_key_id.clone()),
            ("secretAccessKey".to_owned(), c.secret_access_key.clone()),
            ("endpoint".to_owned(), settings.s3_endpoint.clone()),
            ("region".to_owned(), REGION.to_owned()),
        ]),
        Driver::JuiceFs => BTreeMap::from([
            ("name".to_owned(), k8s_name(&[v.profile, v.tier])),
            ("metaurl".to_owned(), v.settings.juicefs_metaurl.clone().unwrap_or_default()),
            ("storage".to_owned(), "s3".to_owned()),
            ("bucket".to_owned(), bucket_url(settings, v.bucket)),
            ("access-key".to_owned(), c.access_key_id.clone()),
            ("secret-key".to_owned(), c.secret_access_key.clone()),
        ]),
        Driver::Mountpoint | Driver::BlobCsi => return None,
    };
    Some(secret_object(settings, secret_name(v.profile, v.tier), labels(settings, v), c, data))
}

/// The Mountpoint driver's Secret, with the key granted every profile's Mountpoint buckets.
pub fn mountpoint_secret(settings: &Settings, tier: &TierVolumes, c: &Credential) -> Secret {
    let labels = BTreeMap::from([("app.kubernetes.io/managed-by".to_owned(), "coffer".to_owned())]);
    let data = BTreeMap::from([
        ("key_id".to_owned(), c.access_key_id.clone()),
        ("access_key".to_owned(), c.secret_access_key.clone()),
    ]);
    secret_object(settings, mountpoint_secret_name(tier), labels, c, data)
}

fn secret_ref(settings: &Settings, name: String) -> Option<SecretReference> {
    Some(SecretReference { name: Some(name), namespace: Some(settings.driver_namespace.clone()) })
}

/// The PersistentVolume of a profile on a tier, bound in advance to its PVC.
pub fn persistent_volume(settings: &Settings, v: &Volume<'_>) -> PersistentVolume {
    let t = v.settings;
    let mut mount_options: Vec<String> = Vec::new();
    let mut attributes = BTreeMap::new();
    let mut csi = CSIPersistentVolumeSource {
        driver: t.driver.csi_name().to_owned(),
        volume_handle: pv_name(v.profile, v.tier),
        read_only: v.read_only.then_some(true),
        ..CSIPersistentVolumeSource::default()
    };
    // A folder of the bucket, as `folder/`, when the tier mounts one.
    let folder = t.prefix.as_deref().map(|p| p.trim_matches('/')).filter(|p| !p.is_empty());
    match t.driver {
        Driver::K8sCsiS3 => {
            let secret = secret_ref(settings, secret_name(v.profile, v.tier));
            csi.volume_handle = match folder {
                Some(f) => format!("{}/{f}", v.bucket),
                None => v.bucket.to_owned(),
            };
            csi.controller_publish_secret_ref = secret.clone();
            csi.node_publish_secret_ref = secret.clone();
            csi.node_stage_secret_ref = secret;
            attributes.insert("capacity".to_owned(), t.capacity.clone());
            attributes.insert("mounter".to_owned(), "geesefs".to_owned());
            let mut options =
                vec!["--memory-limit 1000".to_owned(), "--dir-mode 0777".to_owned(), "--file-mode 0666".to_owned()];
            if v.read_only {
                options.push("-o ro".to_owned());
            }
            options.extend(t.mount_options.iter().cloned());
            attributes.insert("options".to_owned(), options.join(" "));
        }
        Driver::Mountpoint => {
            attributes.insert("bucketName".to_owned(), v.bucket.to_owned());
            mount_options.extend([
                format!("endpoint-url {}", settings.s3_endpoint),
                "force-path-style".to_owned(),
                format!("region {REGION}"),
                "allow-other".to_owned(),
            ]);
            if let Some(f) = folder {
                mount_options.push(format!("prefix {f}/"));
            }
            if v.read_only {
                mount_options.push("read-only".to_owned());
            } else {
                mount_options.extend(["allow-delete".to_owned(), "allow-overwrite".to_owned()]);
            }
            mount_options.extend(t.mount_options.iter().cloned());
        }
        Driver::JuiceFs => {
            csi.fs_type = Some("juicefs".to_owned());
            csi.node_publish_secret_ref = secret_ref(settings, secret_name(v.profile, v.tier));
        }
        Driver::BlobCsi => {
            let container = t.blob_container.clone().unwrap_or_default();
            let account = t.blob_account.clone().unwrap_or_default();
            // Unique per volume, as the driver requires; it names the account and container.
            csi.volume_handle = format!("{account}#{container}#{}", pv_name(v.profile, v.tier));
            csi.node_stage_secret_ref = secret_ref(settings, t.blob_secret.clone().unwrap_or_default());
            attributes.insert("containerName".to_owned(), container);
            attributes.insert("storageAccount".to_owned(), account);
            attributes.insert("protocol".to_owned(), "fuse2".to_owned());
            let prefix = t.blob_prefix.as_deref().map(|p| format!("{}/", p.trim_matches('/'))).unwrap_or_default();
            let sub = folder.map(|f| format!("{f}/")).unwrap_or_default();
            mount_options.extend(["-o allow_other".to_owned(), format!("--subdirectory={prefix}{}/{sub}", v.bucket)]);
            if v.read_only {
                mount_options.push("-o ro".to_owned());
            }
            mount_options.extend(t.mount_options.iter().cloned());
        }
    }
    if !attributes.is_empty() {
        csi.volume_attributes = Some(attributes);
    }
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(pv_name(v.profile, v.tier)),
            labels: Some(labels(settings, v)),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeSpec {
            access_modes: Some(access_modes(v)),
            capacity: Some(BTreeMap::from([("storage".to_owned(), Quantity(t.capacity.clone()))])),
            claim_ref: Some(ObjectReference {
                api_version: Some("v1".to_owned()),
                kind: Some("PersistentVolumeClaim".to_owned()),
                namespace: Some(v.profile.to_owned()),
                name: Some(pvc_name(v.tier)),
                ..ObjectReference::default()
            }),
            csi: Some(csi),
            mount_options: (!mount_options.is_empty()).then_some(mount_options),
            persistent_volume_reclaim_policy: Some("Retain".to_owned()),
            storage_class_name: Some(String::new()),
            volume_mode: Some("Filesystem".to_owned()),
            ..PersistentVolumeSpec::default()
        }),
        ..PersistentVolume::default()
    }
}

/// The PersistentVolumeClaim of a profile on a tier, in the profile's namespace, naming
/// its PV; labelled for automount unless the tier says otherwise.
pub fn persistent_volume_claim(settings: &Settings, v: &Volume<'_>) -> PersistentVolumeClaim {
    let mut labels = labels(settings, v);
    labels.remove(&settings.labels.profile);
    if !v.settings.no_automount {
        labels.insert(settings.labels.automount.clone(), "true".to_owned());
    }
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(pvc_name(v.tier)),
            namespace: Some(v.profile.to_owned()),
            labels: Some(labels),
            ..ObjectMeta::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(access_modes(v)),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(v.settings.capacity.clone()))])),
                ..VolumeResourceRequirements::default()
            }),
            storage_class_name: Some(String::new()),
            volume_name: Some(pv_name(v.profile, v.tier)),
            volume_mode: Some("Filesystem".to_owned()),
            ..PersistentVolumeClaimSpec::default()
        }),
        ..PersistentVolumeClaim::default()
    }
}

/// The bucket of a profile on a tier: the profile's name on the default tier,
/// `<profile>-<tier>` on the others.
pub fn bucket_name(profile: &str, tier: &str, default_tier: &str) -> String {
    if tier == default_tier { profile.to_owned() } else { format!("{profile}-{tier}") }
}

/// The classification of a tier's profile buckets: the tier's `classification`, else the
/// storage tier's only one, else `unclassified`.
pub fn tier_classification(v: &TierVolumes, tier_classifications: Option<&[String]>) -> String {
    if let Some(c) = &v.classification {
        return c.clone();
    }
    match tier_classifications {
        Some([only]) => only.clone(),
        _ => UNCLASSIFIED.to_owned(),
    }
}

#[cfg(test)]
mod tests;
