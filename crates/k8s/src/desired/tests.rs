//! Table tests of the desired state, one row per driver (and read-only variants).

use serde_json::{Value, json};

use super::*;
use crate::settings::{KubernetesSection, LabelKeys};

fn settings() -> Settings {
    let section: KubernetesSection = serde_json::from_value(json!({
        "driver_namespace": "csi",
        "s3_endpoint": "http://coffer.coffer-system.svc:9000",
    }))
    .unwrap();
    section.resolve().unwrap()
}

fn tier(driver: Value) -> TierVolumes {
    serde_json::from_value(driver).unwrap()
}

fn cred(previous: bool) -> Credential {
    Credential {
        access_key_id: "CKTESTKEY".into(),
        secret_access_key: "s3cr3t".into(),
        created_at: 1_700_000_000,
        previous: previous.then(|| ("CKOLDKEY".to_owned(), 1_700_086_400)),
    }
}

fn volume<'a>(t: &'a TierVolumes, read_only: bool) -> Volume<'a> {
    Volume {
        profile: "alice",
        tier: "standard",
        settings: t,
        bucket: "alice",
        classification: "unclassified",
        read_only,
    }
}

fn json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap()
}

#[test]
fn names_are_valid_and_never_collide_by_truncation() {
    assert_eq!(pv_name("alice", "standard"), "coffer-alice-standard");
    assert_eq!(pvc_name("premium"), "coffer-premium");
    let long_a = "a".repeat(80);
    let mut long_b = long_a.clone();
    long_b.push('b');
    let (x, y) = (pv_name(&long_a, "t"), pv_name(&long_b, "t"));
    assert!(x.len() <= 63 && y.len() <= 63, "{x} {y}");
    assert_ne!(x, y);
    assert!(x.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'));
    assert_eq!(k8s_name(&["Team_One", "PB"]), "team-one-pb");
    assert_eq!(bucket_name("alice", "standard", "standard"), "alice");
    assert_eq!(bucket_name("alice", "premium", "standard"), "alice-premium");
}

#[test]
fn classification_of_a_tier() {
    let t = tier(json!({"driver": "mountpoint"}));
    assert_eq!(tier_classification(&t, None), "unclassified");
    assert_eq!(tier_classification(&t, Some(&["protected-b".to_owned()])), "protected-b");
    assert_eq!(tier_classification(&t, Some(&["a".to_owned(), "b".to_owned()])), "unclassified");
    let pinned = tier(json!({"driver": "mountpoint", "classification": "protected-b"}));
    assert_eq!(tier_classification(&pinned, None), "protected-b");
}

/// One row per driver: the CSI part of the PV, its mount options, and the Secret.
#[test]
fn every_driver_template() {
    let s = settings();
    struct Row {
        tier: TierVolumes,
        read_only: bool,
        csi: Value,
        mount_options: Value,
        secret: Value,
    }
    let rows = [
        Row {
            tier: tier(json!({"driver": "k8s-csi-s3", "capacity": "10Gi"})),
            read_only: false,
            csi: json!({
                "driver": "ru.yandex.s3.csi",
                "volumeHandle": "alice",
                "controllerPublishSecretRef": {"name": "coffer-alice-standard", "namespace": "csi"},
                "nodePublishSecretRef": {"name": "coffer-alice-standard", "namespace": "csi"},
                "nodeStageSecretRef": {"name": "coffer-alice-standard", "namespace": "csi"},
                "volumeAttributes": {"capacity": "10Gi", "mounter": "geesefs",
                                     "options": "--memory-limit 1000 --dir-mode 0777 --file-mode 0666"},
            }),
            mount_options: Value::Null,
            secret: json!({"accessKeyID": "CKTESTKEY", "secretAccessKey": "s3cr3t",
                           "endpoint": "http://coffer.coffer-system.svc:9000", "region": "us-east-1"}),
        },
        Row {
            tier: tier(json!({"driver": "k8s-csi-s3"})),
            read_only: true,
            csi: json!({
                "driver": "ru.yandex.s3.csi",
                "volumeHandle": "alice",
                "readOnly": true,
                "controllerPublishSecretRef": {"name": "coffer-alice-standard", "namespace": "csi"},
                "nodePublishSecretRef": {"name": "coffer-alice-standard", "namespace": "csi"},
                "nodeStageSecretRef": {"name": "coffer-alice-standard", "namespace": "csi"},
                "volumeAttributes": {"capacity": "100Gi", "mounter": "geesefs",
                                     "options": "--memory-limit 1000 --dir-mode 0777 --file-mode 0666 -o ro"},
            }),
            mount_options: Value::Null,
            secret: json!({"accessKeyID": "CKTESTKEY", "secretAccessKey": "s3cr3t",
                           "endpoint": "http://coffer.coffer-system.svc:9000", "region": "us-east-1"}),
        },
        Row {
            tier: tier(json!({"driver": "mountpoint", "mount_options": ["uid=1000", "gid=100"]})),
            read_only: false,
            csi: json!({"driver": "s3.csi.aws.com", "volumeHandle": "coffer-alice-standard",
                        "volumeAttributes": {"bucketName": "alice"}}),
            mount_options: json!([
                "endpoint-url http://coffer.coffer-system.svc:9000",
                "force-path-style",
                "region us-east-1",
                "allow-other",
                "allow-delete",
                "allow-overwrite",
                "uid=1000",
                "gid=100"
            ]),
            secret: Value::Null,
        },
        Row {
            tier: tier(json!({"driver": "mountpoint", "prefix": "/notebooks/"})),
            read_only: false,
            csi: json!({"driver": "s3.csi.aws.com", "volumeHandle": "coffer-alice-standard",
                        "volumeAttributes": {"bucketName": "alice"}}),
            mount_options: json!([
                "endpoint-url http://coffer.coffer-system.svc:9000",
                "force-path-style",
                "region us-east-1",
                "allow-other",
                "prefix notebooks/",
                "allow-delete",
                "allow-overwrite"
            ]),
            secret: Value::Null,
        },
        Row {
            tier: tier(json!({"driver": "k8s-csi-s3", "prefix": "work"})),
            read_only: false,
            csi: json!({
                "driver": "ru.yandex.s3.csi",
                "volumeHandle": "alice/work",
                "controllerPublishSecretRef": {"name": "coffer-alice-standard", "namespace": "csi"},
                "nodePublishSecretRef": {"name": "coffer-alice-standard", "namespace": "csi"},
                "nodeStageSecretRef": {"name": "coffer-alice-standard", "namespace": "csi"},
                "volumeAttributes": {"capacity": "100Gi", "mounter": "geesefs",
                                     "options": "--memory-limit 1000 --dir-mode 0777 --file-mode 0666"},
            }),
            mount_options: Value::Null,
            secret: json!({"accessKeyID": "CKTESTKEY", "secretAccessKey": "s3cr3t",
                           "endpoint": "http://coffer.coffer-system.svc:9000", "region": "us-east-1"}),
        },
        Row {
            tier: tier(json!({"driver": "mountpoint"})),
            read_only: true,
            csi: json!({"driver": "s3.csi.aws.com", "volumeHandle": "coffer-alice-standard", "readOnly": true,
                        "volumeAttributes": {"bucketName": "alice"}}),
            mount_options: json!([
                "endpoint-url http://coffer.coffer-system.svc:9000",
                "force-path-style",
                "region us-east-1",
                "allow-other",
                "read-only"
            ]),
            secret: Value::Null,
        },
        Row {
            tier: tier(json!({"driver": "juicefs", "juicefs_metaurl": "redis://redis.juicefs:6379/1"})),
            read_only: false,
            csi: json!({"driver": "csi.juicefs.com", "volumeHandle": "coffer-alice-standard", "fsType": "juicefs",
                        "nodePublishSecretRef": {"name": "coffer-alice-standard", "namespace": "csi"}}),
            mount_options: Value::Null,
            secret: json!({"name": "alice-standard", "metaurl": "redis://redis.juicefs:6379/1", "storage": "s3",
                           "bucket": "http://coffer.coffer-system.svc:9000/alice",
                           "access-key": "CKTESTKEY", "secret-key": "s3cr3t"}),
        },
        Row {
            tier: tier(json!({"driver": "blob-csi", "blob_secret": "azure-storage", "blob_account": "aawstd",
                              "blob_container": "coffer", "blob_prefix": "prod"})),
            read_only: false,
            csi: json!({"driver": "blob.csi.azure.com", "volumeHandle": "aawstd#coffer#coffer-alice-standard",
                        "nodeStageSecretRef": {"name": "azure-storage", "namespace": "csi"},
                        "volumeAttributes": {"containerName": "coffer", "storageAccount": "aawstd", "protocol": "fuse2"}}),
            mount_options: json!(["-o allow_other", "--subdirectory=prod/alice/"]),
            secret: Value::Null,
        },
    ];
    for (i, row) in rows.iter().enumerate() {
        let v = volume(&row.tier, row.read_only);
        let pv = json(&persistent_volume(&s, &v));
        assert_eq!(pv["spec"]["csi"], row.csi, "row {i}: csi");
        assert_eq!(pv["spec"]["mountOptions"], row.mount_options, "row {i}: mount options");
        // common to every driver
        let mode = if row.read_only { "ReadOnlyMany" } else { "ReadWriteMany" };
        assert_eq!(pv["spec"]["accessModes"], json!([mode]), "row {i}");
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(pv["spec"]["storageClassName"], "");
        assert_eq!(pv["spec"]["claimRef"]["namespace"], "alice");
        assert_eq!(pv["spec"]["claimRef"]["name"], "coffer-standard");
        assert_eq!(pv["metadata"]["labels"]["coffer.dev/profile"], "alice");
        assert_eq!(pv["metadata"]["labels"]["coffer.dev/classification"], "unclassified");
        let pvc = json(&persistent_volume_claim(&s, &v));
        assert_eq!(pvc["metadata"]["namespace"], "alice");
        assert_eq!(pvc["spec"]["volumeName"], "coffer-alice-standard");
        assert_eq!(pvc["spec"]["storageClassName"], "");
        assert_eq!(pvc["spec"]["accessModes"], json!([mode]));
        assert_eq!(pvc["metadata"]["labels"]["coffer.dev/automount"], "true");
        assert_eq!(pvc["spec"]["resources"]["requests"]["storage"], pv["spec"]["capacity"]["storage"]);
        let secret = volume_secret(&s, &v, &cred(false)).map(|x| json(&x));
        match (&secret, &row.secret) {
            (None, Value::Null) => {}
            (Some(sec), want) => {
                assert_eq!(sec["stringData"], *want, "row {i}: secret");
                assert_eq!(sec["metadata"]["namespace"], "csi", "credentials stay in the driver namespace");
                assert_eq!(sec["metadata"]["annotations"][KEY_ID], "CKTESTKEY");
            }
            (None, want) => panic!("row {i}: expected the secret {want}"),
        }
    }
}

#[test]
fn the_mountpoint_driver_secret_and_rotation_annotations() {
    let s = settings();
    let t = tier(json!({"driver": "mountpoint"}));
    let secret = json(&mountpoint_secret(&s, &t, &cred(true)));
    assert_eq!(secret["metadata"]["name"], "aws-secret");
    assert_eq!(secret["metadata"]["namespace"], "csi");
    assert_eq!(secret["stringData"], json!({"key_id": "CKTESTKEY", "access_key": "s3cr3t"}));
    assert_eq!(secret["metadata"]["annotations"][PREVIOUS_KEY_ID], "CKOLDKEY");
    assert_eq!(secret["metadata"]["annotations"][REVOKE_PREVIOUS_AT], "1700086400");
    let named = tier(json!({"driver": "mountpoint", "driver_secret": "mp-creds"}));
    assert_eq!(mountpoint_secret_name(&named), "mp-creds");
}

#[test]
fn the_design_notes_label_keys() {
    let mut s = settings();
    s.labels = LabelKeys::statcan();
    let t = tier(json!({"driver": "mountpoint", "no_automount": true}));
    let v = volume(&t, false);
    let pv = json(&persistent_volume(&s, &v));
    assert_eq!(pv["metadata"]["labels"]["profile"], "alice");
    assert_eq!(pv["metadata"]["labels"]["data.statcan.gc.ca/classification"], "unclassified");
    let pvc = json(&persistent_volume_claim(&s, &v));
    assert!(pvc["metadata"]["labels"].get("blob.aaw.statcan.gc.ca/automount").is_none());
    assert!(pvc["metadata"]["labels"].get("profile").is_none());
}
