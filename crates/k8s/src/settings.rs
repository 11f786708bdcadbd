//! The `[kubernetes]` section of coffer's configuration: what the controller and the
//! webhook share (label keys, the mount path) and what the controller makes per tier.
//!
//! ```toml
//! [kubernetes]
//! label_keys = "coffer"                  # or "statcan": the design notes' keys
//! driver_namespace = "coffer-csi"        # where credentials live (never a profile's namespace)
//! s3_endpoint = "http://coffer.coffer-system.svc:9000"   # what CSI drivers talk to
//! key_rotation = "90d"                   # a profile's CSI key is replaced this often…
//! key_overlap = "30d"                    # …and the old one revoked this long after (mounts
//!                                        # keep the key they were made with: outlive them)
//! delete_buckets = false                 # on profile deletion (default: keep the data)
//! watch_namespaces = false               # also treat namespaces labelled `<profile key>=true` as profiles
//! mount_path = "/home/jovyan/buckets"    # where the webhook mounts automount PVCs
//!
//! [kubernetes.tiers.standard]
//! driver = "mountpoint"                  # k8s-csi-s3 | mountpoint | juicefs | blob-csi
//! capacity = "100Gi"
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

/// The label (and annotation) keys coffer reads and writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelKeys {
    /// On a PV: the profile it belongs to.
    pub profile: String,
    /// On PVs, PVCs and pods: the data classification (none means `unclassified`).
    pub classification: String,
    /// On a PVC: mount me into the namespace's opted-in pods (`"true"`).
    pub automount: String,
    /// On a pod: inject the automount PVCs (`"true"`).
    pub inject: String,
}

impl LabelKeys {
    /// coffer's own keys, under `coffer.dev/`.
    pub fn coffer() -> Self {
        Self {
            profile: "coffer.dev/profile".into(),
            classification: "coffer.dev/classification".into(),
            automount: "coffer.dev/automount".into(),
            inject: "coffer.dev/inject".into(),
        }
    }

    /// The keys of the design notes' platform (the profile label is plain `profile`).
    pub fn statcan() -> Self {
        Self {
            profile: "profile".into(),
            classification: "data.statcan.gc.ca/classification".into(),
            automount: "blob.aaw.statcan.gc.ca/automount".into(),
            inject: "coffer.dev/inject".into(),
        }
    }
}

/// The classification of anything without the label.
pub const UNCLASSIFIED: &str = "unclassified";

/// The CSI drivers the controller can make volumes for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Driver {
    /// k8s-csi-s3 (`ru.yandex.s3.csi`, geesefs): a volume per bucket, its own endpoint and
    /// Secret (a key for that profile's bucket).
    #[serde(rename = "k8s-csi-s3")]
    K8sCsiS3,
    /// The Mountpoint for Amazon S3 CSI driver (`s3.csi.aws.com`): mount options name the
    /// endpoint; one driver-wide Secret (a key granted each profile's buckets).
    #[serde(rename = "mountpoint")]
    Mountpoint,
    /// JuiceFS (`csi.juicefs.com`): a Secret per volume with the bucket's URL and a key.
    #[serde(rename = "juicefs")]
    JuiceFs,
    /// Azure blob-csi (`blob.csi.azure.com`) mounting the tier's container directly, with
    /// the operator's storage Secret (for tiers on Azure).
    #[serde(rename = "blob-csi")]
    BlobCsi,
}

impl Driver {
    /// The CSI driver name.
    pub fn csi_name(self) -> &'static str {
        match self {
            Driver::K8sCsiS3 => "ru.yandex.s3.csi",
            Driver::Mountpoint => "s3.csi.aws.com",
            Driver::JuiceFs => "csi.juicefs.com",
            Driver::BlobCsi => "blob.csi.azure.com",
        }
    }
}

fn default_capacity() -> String {
    "100Gi".into()
}

/// `[kubernetes.tiers.NAME]`: the volumes made for each profile on this tier.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierVolumes {
    /// The CSI driver.
    pub driver: Driver,
    /// The capacity written on the PV and PVC (object storage has no size; Kubernetes wants
    /// one).
    #[serde(default = "default_capacity")]
    pub capacity: String,
    /// The classification of the profile buckets on this tier (default: the tier's only
    /// classification, else `unclassified`).
    pub classification: Option<String>,
    /// Extra mount options (`mountpoint`, `k8s-csi-s3`, `blob-csi`).
    #[serde(default)]
    pub mount_options: Vec<String>,
    /// Mount only this folder of each profile's bucket (`mountpoint`: the `prefix` mount
    /// option; `k8s-csi-s3`: the volume handle's path; `blob-csi`: the subdirectory).
    pub prefix: Option<String>,
    /// Mountpoint: the driver-wide Secret (in the driver namespace) holding its coffer key
    /// as `key_id` and `access_key` (default `aws-secret`, the name the driver looks for).
    pub driver_secret: Option<String>,
    /// JuiceFS: the metadata engine URL (`redis://…`), required for `juicefs`.
    pub juicefs_metaurl: Option<String>,
    /// blob-csi: the Secret (in the driver namespace) with the storage account's name and
    /// key, required for `blob-csi`.
    pub blob_secret: Option<String>,
    /// blob-csi: the storage account of the tier, as its `[tiers.NAME]` says.
    pub blob_account: Option<String>,
    /// blob-csi: the container of the tier, as its `[tiers.NAME]` says.
    pub blob_container: Option<String>,
    /// blob-csi: the tier's `prefix` inside the container, if it has one.
    pub blob_prefix: Option<String>,
    /// Do not make PVCs of this tier automount (default: they do).
    #[serde(default)]
    pub no_automount: bool,
}

fn default_driver_namespace() -> String {
    "coffer-csi".into()
}
fn default_rotation() -> String {
    "90d".into()
}
fn default_overlap() -> String {
    // CSI drivers read a volume's Secret when they mount it: a mount keeps its key until it
    // is remounted, so the old key must outlive the longest-running pods.
    "30d".into()
}
fn default_mount_path() -> String {
    "/home/jovyan/buckets".into()
}
fn default_label_keys() -> String {
    "coffer".into()
}

/// `[kubernetes]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesSection {
    /// `coffer` (keys under `coffer.dev/`) or `statcan` (the design notes' keys).
    #[serde(default = "default_label_keys")]
    pub label_keys: String,
    /// The namespace of the CSI drivers, where the credentials Secrets live.
    #[serde(default = "default_driver_namespace")]
    pub driver_namespace: String,
    /// The S3 endpoint CSI drivers use to reach coffer.
    pub s3_endpoint: Option<String>,
    /// How often a CSI credential is replaced (`30d`, `12h`, …).
    #[serde(default = "default_rotation")]
    pub key_rotation: String,
    /// How long the replaced credential keeps working.
    #[serde(default = "default_overlap")]
    pub key_overlap: String,
    /// Delete a profile's buckets (when empty) with the profile.
    #[serde(default)]
    pub delete_buckets: bool,
    /// Also treat namespaces labelled `<profile key>=true` as profiles.
    #[serde(default)]
    pub watch_namespaces: bool,
    /// Where the webhook mounts automount PVCs in pods (`<mount_path>/<pvc name>`).
    #[serde(default = "default_mount_path")]
    pub mount_path: String,
    /// The volumes per tier.
    #[serde(default)]
    pub tiers: BTreeMap<String, TierVolumes>,
}

/// Everything the controller and the webhook need, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub labels: LabelKeys,
    pub driver_namespace: String,
    pub s3_endpoint: String,
    pub key_rotation: Duration,
    pub key_overlap: Duration,
    pub delete_buckets: bool,
    pub watch_namespaces: bool,
    pub mount_path: String,
    pub tiers: BTreeMap<String, TierVolumes>,
}

/// `30s`, `15m`, `12h`, `7d`.
fn duration(field: &str, s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().map_err(|_| format!("{field}: {s:?} is not a duration such as 12h or 7d"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{field}: {s:?} is not a duration such as 12h or 7d")),
    };
    if n == 0 {
        return Err(format!("{field} must be positive"));
    }
    Ok(Duration::from_secs(n * mult))
}

impl KubernetesSection {
    /// Check and resolve.
    pub fn resolve(self) -> Result<Settings, String> {
        let labels = match self.label_keys.as_str() {
            "coffer" => LabelKeys::coffer(),
            "statcan" => LabelKeys::statcan(),
            other => return Err(format!("[kubernetes] label_keys {other:?}: use coffer or statcan")),
        };
        let key_rotation = duration("key_rotation", &self.key_rotation)?;
        let key_overlap = duration("key_overlap", &self.key_overlap)?;
        if key_overlap >= key_rotation {
            return Err("[kubernetes] key_overlap must be shorter than key_rotation".into());
        }
        for (name, t) in &self.tiers {
            match t.driver {
                Driver::JuiceFs if t.juicefs_metaurl.is_none() => {
                    return Err(format!("[kubernetes.tiers.{name}] juicefs needs juicefs_metaurl"));
                }
                Driver::BlobCsi
                    if t.blob_secret.is_none() || t.blob_account.is_none() || t.blob_container.is_none() =>
                {
                    return Err(format!(
                        "[kubernetes.tiers.{name}] blob-csi needs blob_secret, blob_account and blob_container"
                    ));
                }
                _ => {}
            }
        }
        if !self.mount_path.starts_with('/') {
            return Err("[kubernetes] mount_path must be absolute".into());
        }
        Ok(Settings {
            labels,
            driver_namespace: self.driver_namespace,
            s3_endpoint: self.s3_endpoint.unwrap_or_else(|| "http://coffer.coffer-system.svc:9000".into()),
            key_rotation,
            key_overlap,
            delete_buckets: self.delete_buckets,
            watch_namespaces: self.watch_namespaces,
            mount_path: self.mount_path.trim_end_matches('/').to_owned(),
            tiers: self.tiers,
        })
    }
}

impl Default for Settings {
    fn default() -> Self {
        let section: KubernetesSection = serde_json::from_value(serde_json::json!({})).expect("defaults parse");
        section.resolve().expect("defaults are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_checks() {
        let s = Settings::default();
        assert_eq!(s.labels, LabelKeys::coffer());
        assert_eq!(s.driver_namespace, "coffer-csi");
        assert_eq!(s.key_rotation, Duration::from_secs(90 * 86_400));
        assert_eq!(s.key_overlap, Duration::from_secs(30 * 86_400));
        assert_eq!(s.mount_path, "/home/jovyan/buckets");
        let parse = |v: serde_json::Value| serde_json::from_value::<KubernetesSection>(v).unwrap().resolve();
        assert_eq!(
            parse(serde_json::json!({"label_keys": "statcan"})).unwrap().labels.automount,
            "blob.aaw.statcan.gc.ca/automount"
        );
        assert!(parse(serde_json::json!({"label_keys": "other"})).is_err());
        assert!(parse(serde_json::json!({"key_rotation": "1h", "key_overlap": "2h"})).is_err());
        assert!(parse(serde_json::json!({"key_rotation": "soon"})).is_err());
        assert!(parse(serde_json::json!({"tiers": {"fast": {"driver": "juicefs"}}})).is_err());
        assert!(parse(serde_json::json!({"tiers": {"az": {"driver": "blob-csi", "blob_secret": "s"}}})).is_err());
        let ok = parse(serde_json::json!({"tiers": {"standard": {"driver": "mountpoint"}}})).unwrap();
        assert_eq!(ok.tiers["standard"].capacity, "100Gi");
        assert!(
            serde_json::from_value::<KubernetesSection>(serde_json::json!({"tiers": {"x": {"driver": "nfs"}}}))
                .is_err()
        );
    }
}
