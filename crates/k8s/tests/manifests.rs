//! The Kubernetes manifests of `deploy/kustomize`: the base and every overlay are rendered
//! with `kubectl kustomize`, each document is parsed into its k8s-openapi type (cert-manager's
//! kinds as JSON) and serialized back — a misspelt or misplaced field would not survive the
//! round trip — and then checked for what they promise: hardened containers, least-privilege
//! RBAC, probes, webhooks wired to their Service and certificate, the migration Job, the
//! backup CronJob, network policies, a valid `coffer.toml`, and overlays that change exactly
//! what they say.
//!
//! `kubectl` (with its built-in kustomize) must be on PATH: under `CI=true` a missing
//! kubectl fails the tests, elsewhere they are skipped with a notice.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use coffer_k8s::settings::{KubernetesSection, LabelKeys};
use k8s_openapi::api::admissionregistration::v1::{MutatingWebhookConfiguration, ValidatingWebhookConfiguration};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, EnvVar, Namespace, PodSpec, PodTemplateSpec, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::{Metadata, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

const BASE: &str = "base";
const PRODUCTION: &str = "overlays/production";
const GATEKEEPER: &str = "overlays/gatekeeper";
const STATCAN: &str = "overlays/statcan-labels";
const ALL: [&str; 4] = [BASE, PRODUCTION, GATEKEEPER, STATCAN];

const NAMESPACE: &str = "coffer-system";
const GATEWAY: &str = "coffer-gateway";
const CONTROLLER: &str = "coffer-controller";
const WEBHOOK: &str = "coffer-webhook";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

// ------------------------------------------------------------------------------------------
// rendering and parsing
// ------------------------------------------------------------------------------------------

/// One rendering (`kubectl kustomize deploy/kustomize/<dir>`), every document typed.
#[derive(Default)]
struct Rendered {
    dir: String,
    deployments: Vec<Deployment>,
    services: Vec<Service>,
    config_maps: Vec<ConfigMap>,
    secrets: Vec<Secret>,
    service_accounts: Vec<ServiceAccount>,
    namespaces: Vec<Namespace>,
    cluster_roles: Vec<ClusterRole>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    roles: Vec<Role>,
    role_bindings: Vec<RoleBinding>,
    network_policies: Vec<NetworkPolicy>,
    jobs: Vec<Job>,
    cron_jobs: Vec<CronJob>,
    pdbs: Vec<PodDisruptionBudget>,
    validating: Vec<ValidatingWebhookConfiguration>,
    mutating: Vec<MutatingWebhookConfiguration>,
    /// cert-manager's Issuers and Certificates (no k8s-openapi types).
    cert_manager: Vec<Value>,
}

/// Render `deploy/kustomize/<dir>`; None (after a notice) when kubectl is missing outside CI.
fn render(dir: &str) -> Option<Rendered> {
    let path = repo().join("deploy/kustomize").join(dir);
    let output = match Command::new("kubectl").arg("kustomize").arg(&path).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let msg = "kubectl is not installed: the manifests under deploy/kustomize cannot be rendered";
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{msg} (CI=true, so this is a failure; install kubectl, which has kustomize built in)");
            }
            eprintln!("SKIPPED: {msg}");
            return None;
        }
        Err(e) => panic!("running kubectl kustomize {}: {e}", path.display()),
    };
    assert!(output.status.success(), "kubectl kustomize {dir} failed:\n{}", String::from_utf8_lossy(&output.stderr));
    let text = String::from_utf8(output.stdout).expect("kustomize prints UTF-8");
    Some(parse(dir, &text))
}

/// Split a YAML stream into documents and type each by apiVersion and kind.
fn parse(dir: &str, text: &str) -> Rendered {
    let mut r = Rendered { dir: dir.to_owned(), ..Rendered::default() };
    for (i, doc) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let value: Value = serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{dir}: document {i}: {e}"));
        if value.is_null() {
            continue;
        }
        let api_version = value["apiVersion"].as_str().unwrap_or_default().to_owned();
        let kind = value["kind"].as_str().unwrap_or_default().to_owned();
        let what = format!("{dir}: {kind} {}", value["metadata"]["name"].as_str().unwrap_or("<unnamed>"));
        match (api_version.as_str(), kind.as_str()) {
            ("apps/v1", "Deployment") => r.deployments.push(typed(&what, value)),
            ("v1", "Service") => r.services.push(typed(&what, value)),
            ("v1", "ConfigMap") => r.config_maps.push(typed(&what, value)),
            ("v1", "Secret") => r.secrets.push(typed(&what, value)),
            ("v1", "ServiceAccount") => r.service_accounts.push(typed(&what, value)),
            ("v1", "Namespace") => r.namespaces.push(typed(&what, value)),
            ("rbac.authorization.k8s.io/v1", "ClusterRole") => r.cluster_roles.push(typed(&what, value)),
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding") => r.cluster_role_bindings.push(typed(&what, value)),
            ("rbac.authorization.k8s.io/v1", "Role") => r.roles.push(typed(&what, value)),
            ("rbac.authorization.k8s.io/v1", "RoleBinding") => r.role_bindings.push(typed(&what, value)),
            ("networking.k8s.io/v1", "NetworkPolicy") => r.network_policies.push(typed(&what, value)),
            ("batch/v1", "Job") => r.jobs.push(typed(&what, value)),
            ("batch/v1", "CronJob") => r.cron_jobs.push(typed(&what, value)),
            ("policy/v1", "PodDisruptionBudget") => r.pdbs.push(typed(&what, value)),
            ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration") => {
                r.validating.push(typed(&what, value))
            }
            ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration") => r.mutating.push(typed(&what, value)),
            ("cert-manager.io/v1", "Issuer" | "Certificate") => {
                cert_manager_fields(&what, &value);
                r.cert_manager.push(value)
            }
            _ => panic!("{what}: unexpected {api_version} {kind}; teach tests/manifests.rs its type"),
        }
    }
    r
}

/// Deserialize into the k8s-openapi type, then serialize back: anything the type does not
/// know (a typo, a field at the wrong level, a field of a newer Kubernetes) is lost on the
/// way and shows up as a difference.
fn typed<T: DeserializeOwned + Serialize>(what: &str, value: Value) -> T {
    let object: T = serde_json::from_value(value.clone()).unwrap_or_else(|e| panic!("{what}: not a valid object: {e}"));
    let back = serde_json::to_value(&object).expect("serializes");
    let mut lost = Vec::new();
    differences("", &value, &back, &mut lost);
    assert!(lost.is_empty(), "{what}: fields the Kubernetes type does not have (misspelt or misplaced?): {lost:?}");
    object
}

fn differences(path: &str, original: &Value, back: &Value, out: &mut Vec<String>) {
    match (original, back) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => differences(&format!("{path}.{k}"), v, w, out),
                    None => out.push(format!("{path}.{k}")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                differences(&format!("{path}[{i}]"), v, w, out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: {a} became {b}")),
    }
}

/// The fields cert-manager requires of the kinds used here.
fn cert_manager_fields(what: &str, v: &Value) {
    assert!(v["metadata"]["name"].is_string(), "{what}: metadata.name");
    assert_eq!(v["metadata"]["namespace"], NAMESPACE, "{what}: namespaced in {NAMESPACE}");
    let spec = &v["spec"];
    assert!(spec.is_object(), "{what}: spec");
    match v["kind"].as_str() {
        Some("Issuer") => {
            let kinds = ["selfSigned", "ca", "acme", "vault", "venafi"];
            let set: Vec<_> = kinds.iter().filter(|k| !spec[**k].is_null()).collect();
            assert_eq!(set.len(), 1, "{what}: an Issuer has exactly one of {kinds:?}, has {set:?}");
            if !spec["ca"].is_null() {
                assert!(spec["ca"]["secretName"].is_string(), "{what}: spec.ca.secretName");
            }
        }
        Some("Certificate") => {
            assert!(spec["secretName"].is_string(), "{what}: spec.secretName");
            assert!(spec["issuerRef"]["name"].is_string(), "{what}: spec.issuerRef.name");
            assert!(spec["commonName"].is_string() || spec["dnsNames"].is_array(), "{what}: a commonName or dnsNames");
        }
        _ => unreachable!(),
    }
}

// ------------------------------------------------------------------------------------------
// looking things up
// ------------------------------------------------------------------------------------------

fn name_of<T: Metadata<Ty = ObjectMeta>>(o: &T) -> &str {
    o.metadata().name.as_deref().unwrap_or_default()
}

fn named<'a, T: Metadata<Ty = ObjectMeta>>(items: &'a [T], name: &str) -> &'a T {
    let found: Vec<_> = items.iter().filter(|o| name_of(*o) == name).collect();
    assert_eq!(found.len(), 1, "exactly one {} named {name}, found {}", T::KIND, found.len());
    found[0]
}

impl Rendered {
    fn deployment(&self, name: &str) -> &Deployment {
        named(&self.deployments, name)
    }

    fn template(&self, name: &str) -> &PodTemplateSpec {
        &self.deployment(name).spec.as_ref().expect("a Deployment spec").template
    }

    fn pod(&self, name: &str) -> &PodSpec {
        self.template(name).spec.as_ref().expect("a pod spec")
    }

    /// Every pod template's spec and labels: Deployments, Jobs and CronJobs, by `Kind/name`.
    fn pods(&self) -> Vec<(String, &PodSpec, BTreeMap<String, String>)> {
        let mut templates: Vec<(String, &PodTemplateSpec)> = Vec::new();
        for d in &self.deployments {
            templates.push((format!("Deployment/{}", name_of(d)), &d.spec.as_ref().unwrap().template));
        }
        for j in &self.jobs {
            templates.push((format!("Job/{}", name_of(j)), &j.spec.as_ref().unwrap().template));
        }
        for c in &self.cron_jobs {
            let job = c.spec.as_ref().unwrap().job_template.spec.as_ref().unwrap();
            templates.push((format!("CronJob/{}", name_of(c)), &job.template));
        }
        templates
            .into_iter()
            .map(|(what, t)| {
                let labels = t.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
                (what, t.spec.as_ref().expect("a pod spec"), labels)
            })
            .collect()
    }

    /// The ConfigMap a pod mounts as the volume `volume`.
    fn mounted_config_map(&self, pod: &PodSpec, volume: &str) -> &ConfigMap {
        let name = volume_named(pod, volume).config_map.as_ref().expect("a configMap volume").name.clone();
        named(&self.config_maps, &name)
    }

    /// The gateway's `coffer.toml`.
    fn config_text(&self) -> String {
        let cm = self.mounted_config_map(self.pod(GATEWAY), "config");
        cm.data.as_ref().and_then(|d| d.get("coffer.toml")).cloned().expect("coffer.toml in the config ConfigMap")
    }

    fn config(&self) -> toml::Table {
        self.config_text().parse::<toml::Table>().unwrap_or_else(|e| panic!("{}: coffer.toml: {e}", self.dir))
    }

    fn kubernetes(&self) -> coffer_k8s::settings::Settings {
        let table = self.config().get("kubernetes").cloned().expect("a [kubernetes] section");
        let section: KubernetesSection = table.try_into().unwrap_or_else(|e| panic!("{}: [kubernetes]: {e}", self.dir));
        section.resolve().unwrap_or_else(|e| panic!("{}: [kubernetes]: {e}", self.dir))
    }
}

fn volume_named<'a>(pod: &'a PodSpec, name: &str) -> &'a k8s_openapi::api::core::v1::Volume {
    pod.volumes.iter().flatten().find(|v| v.name == name).unwrap_or_else(|| panic!("a volume named {name}"))
}

fn container<'a>(pod: &'a PodSpec, name: &str) -> &'a Container {
    pod.containers.iter().find(|c| c.name == name).unwrap_or_else(|| panic!("a container named {name}"))
}

fn all_containers(pod: &PodSpec) -> impl Iterator<Item = &Container> {
    pod.init_containers.iter().flatten().chain(pod.containers.iter())
}

fn env<'a>(c: &'a Container, name: &str) -> Option<&'a EnvVar> {
    c.env.iter().flatten().find(|e| e.name == name)
}

/// The Secret (name, key) an environment variable is taken from.
fn secret_ref(c: &Container, name: &str) -> Option<(String, String)> {
    let r = env(c, name)?.value_from.as_ref()?.secret_key_ref.as_ref()?;
    Some((r.name.clone(), r.key.clone()))
}

fn selects(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_match = selector.match_labels.iter().flatten().all(|(k, v)| labels.get(k) == Some(v));
    let expressions_match = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.clone().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            other => panic!("unknown selector operator {other}"),
        }
    });
    labels_match && expressions_match
}

fn port_number(p: &IntOrString, container: &Container) -> i32 {
    match p {
        IntOrString::Int(n) => *n,
        IntOrString::String(name) => {
            container
                .ports
                .iter()
                .flatten()
                .find(|cp| cp.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("container {} has no port named {name}", container.name))
                .container_port
        }
    }
}

fn toml_paths(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, toml::Value>) {
    for (k, v) in table {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            toml::Value::Table(t) => toml_paths(&path, t, out),
            other => {
                out.insert(path, other.clone());
            }
        }
    }
}

/// The dotted keys whose values differ between two configurations.
fn config_changes(base: &toml::Table, overlay: &toml::Table) -> BTreeSet<String> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    toml_paths("", base, &mut a);
    toml_paths("", overlay, &mut b);
    a.keys().chain(b.keys()).filter(|k| a.get(*k) != b.get(*k)).cloned().collect()
}

macro_rules! rendered {
    ($dir:expr) => {
        match render($dir) {
            Some(r) => r,
            None => return,
        }
    };
}

// ------------------------------------------------------------------------------------------
// the tests
// ------------------------------------------------------------------------------------------

#[test]
fn every_rendering_parses_into_kubernetes_types() {
    for dir in ALL {
        let r = rendered!(dir);
        for name in [GATEWAY, CONTROLLER, WEBHOOK] {
            r.deployment(name);
        }
        assert_eq!(r.jobs.len(), 1, "{dir}: the migration Job");
        assert_eq!(r.cron_jobs.len(), 1, "{dir}: the backup CronJob");
        assert_eq!(r.validating.len(), 1, "{dir}: one ValidatingWebhookConfiguration");
        assert_eq!(r.mutating.len(), 1, "{dir}: one MutatingWebhookConfiguration");
        // No credentials are committed: every Secret is made by the operator or cert-manager.
        assert!(
            r.secrets.is_empty(),
            "{dir}: Secrets in the manifests: {:?}",
            r.secrets.iter().map(name_of).collect::<Vec<_>>()
        );
        // Every namespaced object says where it goes (there is no `namespace:` transformer).
        let mut namespaced: Vec<(&str, &ObjectMeta)> = Vec::new();
        namespaced.extend(r.deployments.iter().map(|o| (Deployment::KIND, o.metadata())));
        namespaced.extend(r.services.iter().map(|o| (Service::KIND, o.metadata())));
        namespaced.extend(r.config_maps.iter().map(|o| (ConfigMap::KIND, o.metadata())));
        namespaced.extend(r.service_accounts.iter().map(|o| (ServiceAccount::KIND, o.metadata())));
        namespaced.extend(r.roles.iter().map(|o| (Role::KIND, o.metadata())));
        namespaced.extend(r.role_bindings.iter().map(|o| (RoleBinding::KIND, o.metadata())));
        namespaced.extend(r.network_policies.iter().map(|o| (NetworkPolicy::KIND, o.metadata())));
        namespaced.extend(r.jobs.iter().map(|o| (Job::KIND, o.metadata())));
        namespaced.extend(r.cron_jobs.iter().map(|o| (CronJob::KIND, o.metadata())));
        namespaced.extend(r.pdbs.iter().map(|o| (PodDisruptionBudget::KIND, o.metadata())));
        let namespaces: BTreeSet<&str> = r.namespaces.iter().map(name_of).collect();
        for (kind, meta) in namespaced {
            let ns =
                meta.namespace.as_deref().unwrap_or_else(|| panic!("{dir}: {kind} {:?} has no namespace", meta.name));
            assert!(
                namespaces.contains(ns),
                "{dir}: {kind} {:?} is in {ns}, which the manifests do not create",
                meta.name
            );
        }
    }
}

/// Every container of the pod: non-root, read-only root, no escalation, no capabilities,
/// seccomp, requests and a memory limit, a pinned image.
fn assert_hardened(what: &str, pod: &PodSpec) {
    let pod_sc = pod.security_context.as_ref();
    for c in all_containers(pod) {
        let at = format!("{what} container {}", c.name);
        let sc = c.security_context.as_ref().unwrap_or_else(|| panic!("{at}: no securityContext"));
        let non_root = sc.run_as_non_root.or(pod_sc.and_then(|p| p.run_as_non_root));
        assert_eq!(non_root, Some(true), "{at}: runAsNonRoot");
        let uid = sc.run_as_user.or(pod_sc.and_then(|p| p.run_as_user));
        assert!(uid.is_some_and(|u| u != 0), "{at}: a numeric non-root runAsUser (got {uid:?})");
        assert_eq!(sc.read_only_root_filesystem, Some(true), "{at}: readOnlyRootFilesystem");
        assert_eq!(sc.allow_privilege_escalation, Some(false), "{at}: allowPrivilegeEscalation");
        assert_ne!(sc.privileged, Some(true), "{at}: privileged");
        let dropped = sc.capabilities.as_ref().and_then(|c| c.drop.clone()).unwrap_or_default();
        assert!(dropped.iter().any(|d| d == "ALL"), "{at}: capabilities.drop ALL");
        assert!(
            sc.capabilities.as_ref().and_then(|c| c.add.as_ref()).is_none_or(|a| a.is_empty()),
            "{at}: adds capabilities"
        );
        let seccomp = sc.seccomp_profile.as_ref().or(pod_sc.and_then(|p| p.seccomp_profile.as_ref()));
        assert_eq!(seccomp.map(|s| s.type_.as_str()), Some("RuntimeDefault"), "{at}: seccomp RuntimeDefault");
        let resources = c.resources.as_ref().unwrap_or_else(|| panic!("{at}: resources"));
        assert!(
            resources.requests.as_ref().is_some_and(|r| r.contains_key("cpu") && r.contains_key("memory")),
            "{at}: cpu and memory requests"
        );
        assert!(resources.limits.as_ref().is_some_and(|l| l.contains_key("memory")), "{at}: a memory limit");
        let image = c.image.as_deref().unwrap_or_else(|| panic!("{at}: no image"));
        let tag = image.rsplit_once(':').map(|(_, t)| t).filter(|t| !t.contains('/'));
        assert!(tag.is_some_and(|t| t != "latest"), "{at}: image {image} must be pinned to a tag (not latest)");
    }
    assert_ne!(pod.host_network, Some(true), "{what}: hostNetwork");
    assert_ne!(pod.host_pid, Some(true), "{what}: hostPID");
}

#[test]
fn every_container_is_hardened_and_pinned() {
    for dir in ALL {
        let r = rendered!(dir);
        for (what, pod, _) in r.pods() {
            assert_hardened(&format!("{dir}: {what}"), pod);
        }
    }
}

/// deploy/backup/restore-job.yaml is applied by hand (docs/KUBERNETES.md): it must be as
/// hardened as the rest, run the same scripts and PostgreSQL as the backup, and refuse to run
/// until it is told which database it replaces.
#[test]
fn the_restore_job_matches_the_backup() {
    let path = repo().join("deploy/backup/restore-job.yaml");
    let restore = parse("deploy/backup/restore-job.yaml", &std::fs::read_to_string(&path).unwrap());
    assert_eq!(restore.jobs.len(), 1, "one Job and nothing else");
    let job = &restore.jobs[0];
    assert_eq!(job.metadata.namespace.as_deref(), Some(NAMESPACE));
    let pod = job.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    assert_hardened("restore-job.yaml", pod);
    assert_eq!(pod.automount_service_account_token, Some(false));
    let base = rendered!(BASE);
    let cron = base.cron_jobs[0].spec.as_ref().unwrap();
    let backup = cron.job_template.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
    let scripts = volume_named(pod, "scripts").config_map.as_ref().unwrap();
    assert_eq!(Some(&scripts.name), volume_named(backup, "scripts").config_map.as_ref().map(|c| &c.name));
    assert_eq!(scripts.default_mode, Some(0o555));
    let image_of = |p: &PodSpec, stage_var: &str, stage: &str| {
        all_containers(p)
            .find(|c| env(c, stage_var).and_then(|e| e.value.as_deref()) == Some(stage))
            .and_then(|c| c.image.clone())
            .unwrap_or_else(|| panic!("a container of stage {stage}"))
    };
    assert_eq!(
        image_of(pod, "RESTORE_STAGE", "restore"),
        image_of(backup, "BACKUP_STAGE", "dump"),
        "pg_restore must come with the pg_dump that made the dump"
    );
    assert_eq!(image_of(pod, "RESTORE_STAGE", "download"), image_of(backup, "BACKUP_STAGE", "upload"));
    let restore_container = all_containers(pod).find(|c| c.name == "restore").unwrap();
    let confirm = env(restore_container, "RESTORE_CONFIRM").expect("RESTORE_CONFIRM");
    assert_eq!(confirm.value.as_deref(), Some(""), "the Job refuses to run until RESTORE_CONFIRM is filled in");
    let labels = job.spec.as_ref().unwrap().template.metadata.as_ref().unwrap().labels.clone().unwrap();
    let egress = base.network_policies.iter().any(|p| {
        let s = p.spec.as_ref().unwrap();
        s.policy_types.iter().flatten().any(|t| t == "Egress")
            && s.pod_selector.as_ref().is_some_and(|sel| selects(sel, &labels))
    });
    assert!(egress, "a network policy lets the restore reach PostgreSQL and the object store");
}

#[test]
fn the_gateway_probes_serves_and_has_no_api_access() {
    for dir in ALL {
        let r = rendered!(dir);
        let pod = r.pod(GATEWAY);
        let coffer = container(pod, "coffer");
        assert_eq!(
            coffer.args.as_deref().map(|a| a.first().map(String::as_str)),
            Some(Some("serve")),
            "{dir}: coffer serve"
        );
        let args = coffer.args.clone().unwrap_or_default().join(" ");
        assert!(args.contains("--listen 0.0.0.0:9000"), "{dir}: the gateway listens on all addresses: {args}");

        let ready = coffer.readiness_probe.as_ref().expect("a readiness probe");
        let get = ready.http_get.as_ref().expect("an HTTP readiness probe");
        assert_eq!(get.path.as_deref(), Some("/readyz"), "{dir}: readiness is /readyz");
        assert_eq!(port_number(&get.port, coffer), 9000);
        assert!(ready.timeout_seconds.is_some_and(|t| t <= 1), "{dir}: /readyz answers within 1 s; timeout ≤ 1 s");
        let live = coffer.liveness_probe.as_ref().and_then(|p| p.http_get.as_ref()).expect("an HTTP liveness probe");
        assert_eq!(live.path.as_deref(), Some("/healthz"), "{dir}: liveness is /healthz");

        // Secrets from Secrets, never literal values.
        for var in ["COFFER_DATABASE_URL", "COFFER_SERVER_KEY", "COFFER_ADMIN_ACCESS_KEY", "COFFER_ADMIN_SECRET_KEY"] {
            assert!(secret_ref(coffer, var).is_some(), "{dir}: {var} comes from a Secret");
            assert!(env(coffer, var).unwrap().value.is_none(), "{dir}: {var} has no literal value");
        }
        assert_eq!(env(coffer, "COFFER_CONFIG").and_then(|e| e.value.as_deref()), Some("/etc/coffer/coffer.toml"));
        let config_mount =
            coffer.volume_mounts.iter().flatten().find(|m| m.name == "config").expect("the config mount");
        assert_eq!(config_mount.mount_path, "/etc/coffer");

        // No Kubernetes API access: no token, and no role bound to its service account.
        let sa = pod.service_account_name.as_deref().expect("its own service account");
        assert_eq!(pod.automount_service_account_token, Some(false), "{dir}: no token in the gateway's pods");
        assert_eq!(named(&r.service_accounts, sa).automount_service_account_token, Some(false));
        let bound = |subjects: &Option<Vec<k8s_openapi::api::rbac::v1::Subject>>| {
            subjects.iter().flatten().any(|s| s.kind == "ServiceAccount" && s.name == sa)
        };
        assert!(!r.cluster_role_bindings.iter().any(|b| bound(&b.subjects)), "{dir}: a ClusterRoleBinding names {sa}");
        assert!(!r.role_bindings.iter().any(|b| bound(&b.subjects)), "{dir}: a RoleBinding names {sa}");

        // The Service: s3 and s3-ro, to the gateway's pods.
        let svc = named(&r.services, "coffer").spec.as_ref().unwrap();
        let labels = r.template(GATEWAY).metadata.as_ref().unwrap().labels.clone().unwrap();
        let svc_selector = svc.selector.clone().unwrap_or_default();
        assert!(
            !svc_selector.is_empty() && svc_selector.iter().all(|(k, v)| labels.get(k) == Some(v)),
            "{dir}: Service coffer selects the gateway"
        );
        let ports: BTreeMap<String, (i32, i32)> = svc
            .ports
            .iter()
            .flatten()
            .map(|p| {
                (p.name.clone().unwrap_or_default(), (p.port, port_number(p.target_port.as_ref().unwrap(), coffer)))
            })
            .collect();
        assert_eq!(ports.get("s3"), Some(&(9000, 9000)), "{dir}: Service port s3");
        assert_eq!(ports.get("s3-ro"), Some(&(9001, 9001)), "{dir}: Service port s3-ro");

        // At least two replicas, kept by a PodDisruptionBudget.
        let replicas = r.deployment(GATEWAY).spec.as_ref().unwrap().replicas.unwrap_or(1);
        assert!(replicas >= 2, "{dir}: gateway replicas {replicas}");
        let pdb = named(&r.pdbs, GATEWAY).spec.as_ref().unwrap();
        assert!(selects(pdb.selector.as_ref().unwrap(), &labels), "{dir}: the PDB selects the gateway");
    }
}

#[test]
fn the_controller_runs_alone_with_its_service_account() {
    for dir in ALL {
        let r = rendered!(dir);
        let d = r.deployment(CONTROLLER).spec.as_ref().unwrap();
        assert_eq!(d.replicas, Some(1), "{dir}: one controller (no leader election)");
        assert_eq!(d.strategy.as_ref().and_then(|s| s.type_.as_deref()), Some("Recreate"), "{dir}: never two at once");
        let pod = r.pod(CONTROLLER);
        assert_eq!(pod.service_account_name.as_deref(), Some(CONTROLLER));
        let c = container(pod, "controller");
        let args = c.args.clone().unwrap_or_default();
        assert_eq!(args.first().map(String::as_str), Some("controller"));
        assert!(args.join(" ").contains("--metrics-listen 0.0.0.0:8080"), "{dir}: {args:?}");
        let live = c.liveness_probe.as_ref().and_then(|p| p.http_get.as_ref()).expect("liveness");
        assert_eq!((live.path.as_deref(), port_number(&live.port, c)), (Some("/healthz"), 8080));
        for var in ["COFFER_DATABASE_URL", "COFFER_SERVER_KEY"] {
            assert!(secret_ref(c, var).is_some(), "{dir}: the controller's {var} comes from a Secret");
        }
        // The same server key as the gateway's (the key seals the secrets both handle).
        let gateway = container(r.pod(GATEWAY), "coffer");
        assert_eq!(secret_ref(c, "COFFER_SERVER_KEY"), secret_ref(gateway, "COFFER_SERVER_KEY"));
        assert_eq!(secret_ref(c, "COFFER_DATABASE_URL"), secret_ref(gateway, "COFFER_DATABASE_URL"));
    }
}

fn rule_triples(rules: &[PolicyRule]) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for rule in rules {
        for g in rule.api_groups.iter().flatten() {
            for res in rule.resources.iter().flatten() {
                for v in &rule.verbs {
                    out.insert((g.clone(), res.clone(), v.clone()));
                }
            }
        }
    }
    out
}

fn triples(list: &[(&str, &[&str], &[&str])]) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for (group, resources, verbs) in list {
        for res in *resources {
            for v in *verbs {
                out.insert((group.to_string(), res.to_string(), v.to_string()));
            }
        }
    }
    out
}

#[test]
fn rbac_is_least_privilege() {
    for dir in ALL {
        let r = rendered!(dir);
        for role in &r.cluster_roles {
            let rules = role.rules.clone().unwrap_or_default();
            for rule in &rules {
                let all: Vec<&String> = rule
                    .verbs
                    .iter()
                    .chain(rule.resources.iter().flatten())
                    .chain(rule.api_groups.iter().flatten())
                    .collect();
                assert!(
                    !all.iter().any(|s| s.contains('*')),
                    "{dir}: ClusterRole {} grants a wildcard: {rule:?}",
                    name_of(role)
                );
                assert!(
                    rule.non_resource_urls.is_none(),
                    "{dir}: ClusterRole {} grants non-resource URLs",
                    name_of(role)
                );
                assert!(
                    !rule.resources.iter().flatten().any(|res| res == "secrets"),
                    "{dir}: ClusterRole {} grants Secrets cluster-wide",
                    name_of(role)
                );
            }
            assert!(role.aggregation_rule.is_none(), "{dir}: aggregated ClusterRole {}", name_of(role));
        }
        for b in &r.cluster_role_bindings {
            assert!(
                !["cluster-admin", "admin", "edit"].contains(&b.role_ref.name.as_str()),
                "{dir}: {} binds {}",
                name_of(b),
                b.role_ref.name
            );
        }

        let controller = named(&r.cluster_roles, CONTROLLER);
        let expected = triples(&[
            ("kubeflow.org", &["profiles"], &["get", "list", "watch", "update", "patch"]),
            ("kubeflow.org", &["profiles/finalizers", "profiles/status"], &["get", "update", "patch"]),
            (
                "",
                &["persistentvolumes", "persistentvolumeclaims"],
                &["get", "list", "watch", "create", "patch", "delete"],
            ),
            ("", &["namespaces"], &["get", "list", "watch"]),
            ("events.k8s.io", &["events"], &["create", "patch"]),
        ]);
        assert_eq!(
            rule_triples(controller.rules.as_deref().unwrap_or_default()),
            expected,
            "{dir}: the controller's ClusterRole"
        );

        let webhook = named(&r.cluster_roles, WEBHOOK);
        let expected = triples(&[("", &["persistentvolumes", "persistentvolumeclaims"], &["get", "list"])]);
        assert_eq!(
            rule_triples(webhook.rules.as_deref().unwrap_or_default()),
            expected,
            "{dir}: the webhook's ClusterRole"
        );

        // Each ClusterRole is bound to its own service account only.
        for (role, sa) in [(CONTROLLER, CONTROLLER), (WEBHOOK, WEBHOOK)] {
            let bindings: Vec<_> = r.cluster_role_bindings.iter().filter(|b| b.role_ref.name == role).collect();
            assert_eq!(bindings.len(), 1, "{dir}: one binding of {role}");
            let subjects = bindings[0].subjects.clone().unwrap_or_default();
            assert_eq!(subjects.len(), 1);
            assert_eq!(
                (subjects[0].kind.as_str(), subjects[0].name.as_str(), subjects[0].namespace.as_deref()),
                ("ServiceAccount", sa, Some(NAMESPACE))
            );
        }

        // Secrets: one namespaced Role, in the CSI driver's namespace, for the controller only.
        let driver_namespace = r.kubernetes().driver_namespace;
        assert_ne!(driver_namespace, NAMESPACE);
        let secret_roles: Vec<&Role> = r
            .roles
            .iter()
            .filter(|role| {
                role.rules.iter().flatten().any(|rule| rule.resources.iter().flatten().any(|x| x == "secrets"))
            })
            .collect();
        assert_eq!(secret_roles.len(), 1, "{dir}: exactly one Role grants Secrets");
        let role = secret_roles[0];
        assert_eq!(
            role.metadata.namespace.as_deref(),
            Some(driver_namespace.as_str()),
            "{dir}: the Secrets Role is in the driver namespace"
        );
        for rule in role.rules.iter().flatten() {
            assert_eq!(
                rule.resources.as_deref(),
                Some(&["secrets".to_owned()][..]),
                "{dir}: that Role grants Secrets only"
            );
            assert!(!rule.verbs.iter().any(|v| v.contains('*')));
        }
        let bindings: Vec<&RoleBinding> = r.role_bindings.iter().filter(|b| b.role_ref.name == name_of(role)).collect();
        assert_eq!(bindings.len(), 1);
        assert_eq!(bindings[0].metadata.namespace.as_deref(), Some(driver_namespace.as_str()));
        assert_eq!(bindings[0].role_ref.kind, "Role");
        let subjects = bindings[0].subjects.clone().unwrap_or_default();
        assert_eq!(subjects.len(), 1);
        assert_eq!((subjects[0].name.as_str(), subjects[0].namespace.as_deref()), (CONTROLLER, Some(NAMESPACE)));
    }
}

#[test]
fn the_webhooks_are_wired_to_their_service_and_certificate() {
    for dir in ALL {
        let r = rendered!(dir);
        // The serving Certificate, its Secret mounted by the webhook, its DNS name the Service's.
        let service = named(&r.services, WEBHOOK);
        let dns = format!("{WEBHOOK}.{NAMESPACE}.svc");
        let certificate = r
            .cert_manager
            .iter()
            .find(|v| v["kind"] == "Certificate" && v["spec"]["isCA"] != true)
            .expect("a serving Certificate");
        let certificate_name = certificate["metadata"]["name"].as_str().unwrap();
        let dns_names: Vec<&str> =
            certificate["spec"]["dnsNames"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert!(dns_names.contains(&dns.as_str()), "{dir}: the certificate names {dns}: {dns_names:?}");
        let pod = r.pod(WEBHOOK);
        let certs = volume_named(pod, "certs").secret.as_ref().and_then(|s| s.secret_name.clone());
        assert_eq!(
            certs.as_deref(),
            certificate["spec"]["secretName"].as_str(),
            "{dir}: the webhook mounts the certificate's Secret"
        );
        let c = container(pod, "webhook");
        let args = c.args.clone().unwrap_or_default().join(" ");
        assert!(
            args.starts_with("webhook --listen 0.0.0.0:8443 --tls-cert /certs/tls.crt --tls-key /certs/tls.key"),
            "{dir}: {args}"
        );
        let mount = c.volume_mounts.iter().flatten().find(|m| m.name == "certs").expect("the certs mount");
        assert_eq!(mount.mount_path, "/certs");
        assert!(mount.sub_path.is_none(), "{dir}: a subPath mount would never see a renewed certificate");
        let probe = c.readiness_probe.as_ref().and_then(|p| p.http_get.as_ref()).expect("readiness");
        assert_eq!((probe.path.as_deref(), probe.scheme.as_deref()), (Some("/healthz"), Some("HTTPS")));
        assert!(
            named(&r.deployments, WEBHOOK).spec.as_ref().unwrap().replicas.unwrap_or(1) >= 2,
            "{dir}: 2 webhook replicas"
        );

        // 443 on the Service reaches the container's 8443.
        let svc = service.spec.as_ref().unwrap();
        let port = svc.ports.iter().flatten().find(|p| p.port == 443).expect("Service port 443");
        assert_eq!(port_number(port.target_port.as_ref().unwrap(), c), 8443);
        let labels = r.template(WEBHOOK).metadata.as_ref().unwrap().labels.clone().unwrap();
        assert!(svc.selector.clone().unwrap().iter().all(|(k, v)| labels.get(k) == Some(v)));

        let inject = format!("{NAMESPACE}/{certificate_name}");
        let check_common = |kind: &str,
                            meta: &ObjectMeta,
                            name: &str,
                            client: &k8s_openapi::api::admissionregistration::v1::WebhookClientConfig,
                            versions: &[String],
                            side_effects: &str,
                            timeout: Option<i32>,
                            namespaces: Option<&LabelSelector>| {
            let at = format!("{dir}: {kind} webhook {name}");
            assert_eq!(
                meta.annotations.as_ref().and_then(|a| a.get("cert-manager.io/inject-ca-from")),
                Some(&inject),
                "{at}: cert-manager injects the CA of {inject}"
            );
            let s = client.service.as_ref().unwrap_or_else(|| panic!("{at}: calls a Service"));
            assert_eq!((s.name.as_str(), s.namespace.as_str(), s.port), (WEBHOOK, NAMESPACE, Some(443)), "{at}");
            assert!(client.url.is_none() && client.ca_bundle.is_none(), "{at}: no URL, no hand-made caBundle");
            assert_eq!(versions, ["v1"], "{at}: admissionReviewVersions");
            assert_eq!(side_effects, "None", "{at}: sideEffects");
            assert_eq!(timeout, Some(5), "{at}: timeoutSeconds");
            let ns = namespaces.unwrap_or_else(|| panic!("{at}: a namespaceSelector"));
            for excluded in ["kube-system", NAMESPACE] {
                let labels = BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), excluded.to_owned())]);
                assert!(!selects(ns, &labels), "{at}: namespace {excluded} must be left out");
            }
            let profile = BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), "team-a".to_owned())]);
            assert!(selects(ns, &profile), "{at}: a profile's namespace is in");
            s.path.clone().unwrap_or_default()
        };

        let validating = &r.validating[0];
        let mut validated = BTreeSet::new();
        for w in validating.webhooks.iter().flatten() {
            let path = check_common(
                "validating",
                &validating.metadata,
                &w.name,
                &w.client_config,
                &w.admission_review_versions,
                &w.side_effects,
                w.timeout_seconds,
                w.namespace_selector.as_ref(),
            );
            assert_eq!(path, "/validate");
            assert_eq!(w.failure_policy.as_deref(), Some("Fail"), "{dir}: {}: validation fails closed", w.name);
            for rule in w.rules.iter().flatten() {
                for res in rule.resources.iter().flatten() {
                    for op in rule.operations.iter().flatten() {
                        validated.insert((res.clone(), op.clone()));
                    }
                }
            }
        }
        let expected: BTreeSet<(String, String)> = [
            ("persistentvolumeclaims", "CREATE"),
            ("persistentvolumeclaims", "UPDATE"),
            ("pods", "CREATE"),
            ("pods", "UPDATE"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(validated, expected, "{dir}: what is validated");

        let mutating = &r.mutating[0];
        let hooks = mutating.webhooks.clone().unwrap_or_default();
        assert_eq!(hooks.len(), 1);
        let w = &hooks[0];
        let path = check_common(
            "mutating",
            &mutating.metadata,
            &w.name,
            &w.client_config,
            &w.admission_review_versions,
            &w.side_effects,
            w.timeout_seconds,
            w.namespace_selector.as_ref(),
        );
        assert_eq!(path, "/mutate");
        assert_eq!(w.failure_policy.as_deref(), Some("Ignore"), "{dir}: injection fails open (docs/KUBERNETES.md)");
        let rules = w.rules.clone().unwrap_or_default();
        assert_eq!(rules.len(), 1);
        assert_eq!(rules[0].resources.as_deref(), Some(&["pods".to_owned()][..]));
        assert_eq!(rules[0].operations.as_deref(), Some(&["CREATE".to_owned()][..]));
        // Only pods with the inject label of the configured label keys.
        let inject_key = r.kubernetes().labels.inject;
        let selector = w.object_selector.as_ref().expect("an objectSelector");
        let opted_in = BTreeMap::from([(inject_key.clone(), "true".to_owned())]);
        assert!(selects(selector, &opted_in), "{dir}: the mutating webhook selects {inject_key}=true");
        assert!(!selects(selector, &BTreeMap::new()), "{dir}: and nothing else");
    }
}

#[test]
fn cert_manager_makes_a_ca_of_its_own() {
    for dir in ALL {
        let r = rendered!(dir);
        let find = |kind: &str, name: &str| {
            r.cert_manager
                .iter()
                .find(|v| v["kind"] == kind && v["metadata"]["name"] == name)
                .unwrap_or_else(|| panic!("{dir}: {kind} {name}"))
        };
        let serving = r.cert_manager.iter().find(|v| v["kind"] == "Certificate" && v["spec"]["isCA"] != true).unwrap();
        let ca_issuer = find("Issuer", serving["spec"]["issuerRef"]["name"].as_str().unwrap());
        let ca_secret =
            ca_issuer["spec"]["ca"]["secretName"].as_str().expect("the serving certificate comes from a CA Issuer");
        let ca = r
            .cert_manager
            .iter()
            .find(|v| v["kind"] == "Certificate" && v["spec"]["secretName"] == ca_secret)
            .expect("a Certificate makes the CA's Secret");
        assert_eq!(ca["spec"]["isCA"], true, "{dir}: the CA certificate is a CA");
        let root = find("Issuer", ca["spec"]["issuerRef"]["name"].as_str().unwrap());
        assert!(root["spec"]["selfSigned"].is_object(), "{dir}: the CA is self-signed");
        assert_eq!(
            serving["spec"]["privateKey"]["rotationPolicy"], "Always",
            "{dir}: a renewed certificate has a new key"
        );
    }
}

#[test]
fn the_migration_job_and_the_backup_cronjob() {
    for dir in ALL {
        let r = rendered!(dir);
        let job = named(&r.jobs, "coffer-migrate");
        let spec = job.spec.as_ref().unwrap();
        assert!(spec.ttl_seconds_after_finished.is_some(), "{dir}: ttlSecondsAfterFinished");
        assert!(spec.backoff_limit.is_some_and(|b| b > 0), "{dir}: backoffLimit");
        let annotations = job.metadata.annotations.clone().unwrap_or_default();
        assert!(annotations.contains_key("argocd.argoproj.io/hook"), "{dir}: an Argo CD hook");
        let pod = spec.template.spec.as_ref().unwrap();
        assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
        let c = &pod.containers[0];
        assert_eq!(c.args.as_deref(), Some(&["migrate".to_owned()][..]), "{dir}: the Job runs `coffer migrate`");
        let gateway = container(r.pod(GATEWAY), "coffer");
        assert_eq!(c.image, gateway.image, "{dir}: the Job runs the gateway's image");
        assert_eq!(
            secret_ref(c, "COFFER_DATABASE_URL"),
            secret_ref(gateway, "COFFER_DATABASE_URL"),
            "{dir}: the same database"
        );
        assert_eq!(
            r.mounted_config_map(pod, "config").metadata.name,
            r.mounted_config_map(r.pod(GATEWAY), "config").metadata.name,
            "{dir}: the same configuration"
        );
        assert_eq!(pod.automount_service_account_token, Some(false));

        // The backup: the scripts ConfigMap, generated from deploy/backup (one copy).
        let cron = &r.cron_jobs[0];
        let cron_spec = cron.spec.as_ref().unwrap();
        assert_eq!(cron_spec.concurrency_policy.as_deref(), Some("Forbid"), "{dir}: one backup at a time");
        let pod = cron_spec.job_template.spec.as_ref().unwrap().template.spec.as_ref().unwrap();
        let scripts = r.mounted_config_map(pod, "scripts");
        let data = scripts.data.clone().unwrap_or_default();
        for file in ["backup.sh", "restore.sh"] {
            let on_disk = std::fs::read_to_string(repo().join("deploy/backup").join(file)).unwrap();
            assert_eq!(data.get(file), Some(&on_disk), "{dir}: the ConfigMap's {file} is deploy/backup/{file}");
        }
        let mut stages = BTreeSet::new();
        for c in all_containers(pod) {
            assert_eq!(
                c.command.as_deref(),
                Some(&["bash".to_owned(), "/scripts/backup.sh".to_owned()][..]),
                "{dir}: {}",
                c.name
            );
            let mount =
                c.volume_mounts.iter().flatten().find(|m| m.name == "scripts").expect("the scripts are mounted");
            assert_eq!(mount.mount_path, "/scripts");
            let stage = env(c, "BACKUP_STAGE").and_then(|e| e.value.clone()).expect("BACKUP_STAGE");
            if stage == "dump" {
                assert_eq!(
                    secret_ref(c, "DATABASE_URL"),
                    secret_ref(gateway, "COFFER_DATABASE_URL"),
                    "{dir}: the dump reads coffer's database"
                );
            } else {
                for var in ["S3_BUCKET", "RETENTION_DAYS"] {
                    assert!(
                        env(c, var).and_then(|e| e.value.as_deref()).is_some_and(|v| !v.is_empty()),
                        "{dir}: {var}"
                    );
                }
                for var in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"] {
                    assert!(secret_ref(c, var).is_some(), "{dir}: {var} from a Secret");
                }
            }
            stages.insert(stage);
        }
        assert_eq!(stages, BTreeSet::from(["dump".to_owned(), "upload".to_owned()]));
    }
}

#[test]
fn network_policies_deny_by_default_and_open_what_is_needed() {
    for dir in ALL {
        let r = rendered!(dir);
        let deny = r
            .network_policies
            .iter()
            .find(|p| {
                let s = p.spec.as_ref().unwrap();
                s.pod_selector.as_ref().is_none_or(|sel| sel.match_labels.is_none() && sel.match_expressions.is_none())
                    && s.ingress.is_none()
                    && s.policy_types.iter().flatten().any(|t| t == "Ingress")
            })
            .unwrap_or_else(|| panic!("{dir}: a default-deny ingress policy"));
        assert_eq!(deny.metadata.namespace.as_deref(), Some(NAMESPACE));

        // The ports a workload's pods are open on, and from where.
        let open = |workload: &str| -> Vec<(i32, Option<String>)> {
            let labels = r.template(workload).metadata.as_ref().unwrap().labels.clone().unwrap();
            let mut out = Vec::new();
            for p in &r.network_policies {
                let s = p.spec.as_ref().unwrap();
                if !s.pod_selector.as_ref().is_some_and(|sel| selects(sel, &labels)) {
                    continue;
                }
                for rule in s.ingress.iter().flatten() {
                    let from = rule.from.as_ref().map(|f| {
                        f.iter()
                            .filter_map(|peer| {
                                peer.namespace_selector
                                    .as_ref()?
                                    .match_labels
                                    .as_ref()?
                                    .get("kubernetes.io/metadata.name")
                                    .cloned()
                            })
                            .collect::<Vec<_>>()
                            .join(",")
                    });
                    for port in rule.ports.iter().flatten() {
                        if let Some(IntOrString::Int(n)) = port.port {
                            out.push((n, from.clone()));
                        }
                    }
                }
            }
            out
        };
        let gateway = open(GATEWAY);
        for port in [9000, 9001] {
            assert!(gateway.contains(&(port, None)), "{dir}: the gateway's {port} is open to the cluster: {gateway:?}");
        }
        assert!(open(WEBHOOK).contains(&(8443, None)), "{dir}: the webhook's 8443 is open (the API server)");
        assert!(
            open(CONTROLLER).contains(&(8080, Some("monitoring".to_owned()))),
            "{dir}: controller metrics from monitoring"
        );
        assert!(!open(CONTROLLER).iter().any(|(_, from)| from.is_none()), "{dir}: nothing else reaches the controller");

        // Every coffer pod has bounded egress that still includes DNS.
        for (what, _, labels) in r.pods() {
            let egress: Vec<_> = r
                .network_policies
                .iter()
                .filter(|p| {
                    let s = p.spec.as_ref().unwrap();
                    s.policy_types.iter().flatten().any(|t| t == "Egress")
                        && s.pod_selector.as_ref().is_some_and(|sel| selects(sel, &labels))
                })
                .collect();
            assert!(!egress.is_empty(), "{dir}: {what} has no egress policy");
            let dns = egress.iter().any(|p| {
                p.spec
                    .as_ref()
                    .unwrap()
                    .egress
                    .iter()
                    .flatten()
                    .any(|rule| rule.ports.iter().flatten().any(|port| port.port == Some(IntOrString::Int(53))))
            });
            assert!(dns, "{dir}: {what} may resolve names");
        }
    }
}

#[test]
fn the_configuration_is_valid_and_agrees_with_the_manifests() {
    for dir in ALL {
        let r = rendered!(dir);
        let text = r.config_text();
        let config = r.config();
        for key in ["listen", "data_dir", "default_tier", "tiers", "kubernetes"] {
            assert!(config.contains_key(key), "{dir}: coffer.toml has `{key}`");
        }
        for secret in ["database_url", "server_key", "admin_secret_key"] {
            assert!(!config.contains_key(secret), "{dir}: `{secret}` belongs in a Secret, not the ConfigMap");
        }
        assert!(!text.contains("secret_access_key ="), "{dir}: no credential in coffer.toml");
        let tiers = config["tiers"].as_table().unwrap();
        let default = config["default_tier"].as_str().unwrap();
        assert!(tiers.contains_key(default), "{dir}: the default tier {default} is configured");
        assert_eq!(config["listen"].as_str(), Some("0.0.0.0:9000"));
        assert_eq!(config["data_dir"].as_str(), Some("/var/lib/coffer"));

        // Every file a tier names is on a volume mounted into the gateway and the controller.
        for (name, tier) in tiers {
            for (key, value) in tier.as_table().unwrap() {
                if !key.ends_with("_file") {
                    continue;
                }
                let path = value.as_str().unwrap();
                for (workload, main) in [(GATEWAY, "coffer"), (CONTROLLER, "controller")] {
                    let pod = r.pod(workload);
                    let mounted = container(pod, main).volume_mounts.iter().flatten().any(|m| {
                        path.starts_with(&format!("{}/", m.mount_path)) && volume_named(pod, &m.name).secret.is_some()
                    });
                    assert!(mounted, "{dir}: [tiers.{name}] {key} = {path} is not on a Secret volume of {workload}");
                }
            }
        }
        // The data directory is writable (an emptyDir; the root filesystem is read-only).
        for (workload, main) in [(GATEWAY, "coffer"), (CONTROLLER, "controller")] {
            let pod = r.pod(workload);
            let m = container(pod, main).volume_mounts.iter().flatten().find(|m| m.mount_path == "/var/lib/coffer");
            let m = m.unwrap_or_else(|| panic!("{dir}: {workload} mounts the data directory"));
            assert!(volume_named(pod, &m.name).empty_dir.is_some());
        }

        // [kubernetes] resolves, and names what the manifests make.
        let k = r.kubernetes();
        assert!(r.namespaces.iter().any(|n| name_of(n) == k.driver_namespace), "{dir}: the driver namespace exists");
        let endpoint = format!("http://coffer.{NAMESPACE}.svc:9000");
        assert_eq!(k.s3_endpoint, endpoint, "{dir}: CSI drivers reach the gateway's Service");
        for tier in k.tiers.keys() {
            assert!(tiers.contains_key(tier), "{dir}: [kubernetes.tiers.{tier}] is a configured tier");
        }
    }
}

#[test]
fn each_overlay_changes_what_it_says() {
    let base = rendered!(BASE);
    let base_config = base.config();
    assert!(base_config.get("read_only_listen").is_none());
    assert_eq!(base.kubernetes().labels, LabelKeys::coffer());

    // production: more gateways, the external database, the read-only listener.
    let prod = rendered!(PRODUCTION);
    assert_eq!(config_changes(&base_config, &prod.config()), BTreeSet::from(["read_only_listen".to_owned()]));
    assert_eq!(prod.config()["read_only_listen"].as_str(), Some("0.0.0.0:9001"), "the Service's s3-ro port");
    let replicas = |r: &Rendered| r.deployment(GATEWAY).spec.as_ref().unwrap().replicas.unwrap_or(1);
    assert!(replicas(&prod) > replicas(&base), "production runs more gateways");
    let limit = |r: &Rendered| {
        let c = container(r.pod(GATEWAY), "coffer");
        c.resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"].0.clone()
    };
    assert_ne!(limit(&prod), limit(&base), "production sizes the gateway");
    let mut database_refs = 0;
    for (what, pod, _) in prod.pods() {
        for c in all_containers(pod) {
            for var in ["COFFER_DATABASE_URL", "DATABASE_URL"] {
                if let Some((secret, key)) = secret_ref(c, var) {
                    assert_eq!(
                        (secret.as_str(), key.as_str()),
                        ("coffer-postgres-external", "uri"),
                        "production: {what} {} {var}",
                        c.name
                    );
                    database_refs += 1;
                }
            }
        }
    }
    assert_eq!(
        database_refs, 4,
        "production: the gateway, the controller, the migration and the dump use the external database"
    );
    assert_eq!(secret_ref(container(base.pod(GATEWAY), "coffer"), "COFFER_DATABASE_URL").unwrap().0, "coffer-database");

    // gatekeeper: the auth sidecar, believed from loopback only.
    let gk = rendered!(GATEKEEPER);
    let gk_config = gk.config();
    let changed = config_changes(&base_config, &gk_config);
    assert!(
        !changed.is_empty() && changed.iter().all(|k| k.starts_with("trusted_headers.")),
        "gatekeeper changes {changed:?}"
    );
    let trusted = gk_config["trusted_headers"].as_table().unwrap();
    assert_eq!(trusted["proxies"].as_array().unwrap(), &vec![toml::Value::String("127.0.0.1".into())]);
    let pod = gk.pod(GATEWAY);
    assert_eq!(pod.containers.len(), 2, "gatekeeper: coffer and its sidecar");
    let sidecar = container(pod, "oauth2-proxy");
    assert!(sidecar.image.as_deref().unwrap().starts_with("quay.io/oauth2-proxy/oauth2-proxy:"));
    let args = sidecar.args.clone().unwrap_or_default();
    assert!(
        args.iter().any(|a| a.starts_with("--upstream=http://127.0.0.1:9000/")),
        "the sidecar calls coffer over loopback: {args:?}"
    );
    let user_header = trusted["user_header"].as_str().unwrap();
    assert!(user_header.starts_with("X-Forwarded-"), "oauth2-proxy's headers: {user_header}");
    for var in ["OAUTH2_PROXY_CLIENT_SECRET", "OAUTH2_PROXY_COOKIE_SECRET"] {
        assert!(secret_ref(sidecar, var).is_some(), "gatekeeper: {var} from a Secret");
    }
    let web = named(&gk.services, "coffer-web").spec.as_ref().unwrap();
    let target = port_number(web.ports.as_ref().unwrap()[0].target_port.as_ref().unwrap(), sidecar);
    assert!(args.iter().any(|a| a == &format!("--http-address=0.0.0.0:{target}")), "coffer-web reaches the sidecar");
    let labels = gk.template(GATEWAY).metadata.as_ref().unwrap().labels.clone().unwrap();
    let open = gk.network_policies.iter().any(|p| {
        let s = p.spec.as_ref().unwrap();
        s.pod_selector.as_ref().is_some_and(|sel| selects(sel, &labels))
            && s.ingress
                .iter()
                .flatten()
                .any(|rule| rule.ports.iter().flatten().any(|pp| pp.port == Some(IntOrString::Int(target))))
    });
    assert!(open, "gatekeeper: a network policy opens the sidecar's port");
    for r in [&base, &prod] {
        assert!(r.config().get("trusted_headers").is_none(), "{}: no trusted headers without the sidecar", r.dir);
    }

    // statcan-labels: the design notes' label keys, nothing else.
    let statcan = rendered!(STATCAN);
    assert_eq!(config_changes(&base_config, &statcan.config()), BTreeSet::from(["kubernetes.label_keys".to_owned()]));
    assert_eq!(statcan.kubernetes().labels, LabelKeys::statcan());
    // The inject label is shared, so the mutating webhook's objectSelector needs no change.
    assert_eq!(LabelKeys::statcan().inject, LabelKeys::coffer().inject);
}
