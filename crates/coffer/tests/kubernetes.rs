//! End to end on Kubernetes' side: the real `coffer serve` and `coffer controller` binaries
//! on one database, the controller talking to the in-process fake API server
//! (`coffer-k8s-fake`, through a kubeconfig) — no real kube-apiserver can run here. A
//! Kubeflow `Profile` appears; the credential Secret the controller writes in the driver
//! namespace works against the running coffer for the profile's bucket and is refused
//! everywhere else; after a rotation the new key works, and once the overlap is over the
//! old one stops.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use coffer_k8s_fake::FakeApiServer;
use rusty_s3::actions::{GetObject, PutObject};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_coffer");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// The status of a presigned PUT then GET of `key` in `bucket` with `creds`.
fn put_get(endpoint: &url::Url, bucket: &str, creds: &Credentials, key: &str) -> (u16, u16) {
    let b = Bucket::new(endpoint.clone(), UrlStyle::Path, bucket.to_owned(), "us-east-1").unwrap();
    let ttl = Duration::from_secs(60);
    let put = PutObject::new(&b, Some(creds), key).sign(ttl);
    let p = agent().put(put.as_str()).send(b"from the CSI credential".as_slice()).unwrap().status().as_u16();
    let get = GetObject::new(&b, Some(creds), key).sign(ttl);
    let g = agent().get(get.as_str()).call().unwrap().status().as_u16();
    (p, g)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controllers_credential_works_for_its_bucket_and_rotates() {
    let fake = FakeApiServer::builder().namespaces(["csi", "alice"]).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\n\
             clusters:\n- name: fake\n  cluster:\n    server: {}\n\
             contexts:\n- name: fake\n  context:\n    cluster: fake\n    user: fake\n    namespace: default\n\
             users:\n- name: fake\n  user: {{}}\n",
            fake.url()
        ),
    )
    .unwrap();
    let port = free_port();
    let config = dir.path().join("coffer.toml");
    std::fs::write(
        &config,
        format!(
            "[kubernetes]\ndriver_namespace = \"csi\"\ns3_endpoint = \"http://127.0.0.1:{port}\"\n\
             key_rotation = \"12s\"\nkey_overlap = \"4s\"\n\
             [kubernetes.tiers.standard]\ndriver = \"k8s-csi-s3\"\n"
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    let database = format!("sqlite://{}", data.join("coffer.db").display());
    let common = |cmd: &mut Command| {
        cmd.arg("--config")
            .arg(&config)
            .arg("--data-dir")
            .arg(&data)
            .args(["--database-url", &database])
            .env("KUBECONFIG", &kubeconfig)
            .env("COFFER_ADMIN_ACCESS_KEY", "k8sadmin")
            .env("COFFER_ADMIN_SECRET_KEY", "k8sadmin-secret")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    };
    let mut serve = Command::new(BIN);
    serve.args(["serve", "--listen", &format!("127.0.0.1:{port}")]);
    common(&mut serve);
    let _server = Proc(serve.spawn().unwrap());
    let endpoint: url::Url = format!("http://127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while agent().get(endpoint.join("readyz").unwrap().as_str()).call().map(|r| r.status().as_u16()).unwrap_or(0) != 200
    {
        assert!(Instant::now() < deadline, "coffer serve did not become ready");
        std::thread::sleep(Duration::from_millis(100));
    }
    let metrics_port = free_port();
    let mut controller = Command::new(BIN);
    controller.args(["controller", "--metrics-listen", &format!("127.0.0.1:{metrics_port}")]);
    common(&mut controller);
    let _controller = Proc(controller.spawn().unwrap());

    fake.put(json!({
        "apiVersion": "kubeflow.org/v1", "kind": "Profile",
        "metadata": {"name": "alice"},
        "spec": {"owner": {"kind": "User", "name": "alice@example.com"}},
    }))
    .unwrap();
    let secret = |fake: &FakeApiServer| -> Option<(String, String)> {
        let s = fake.get("v1", "Secret", Some("csi"), "coffer-alice-standard")?;
        let field = |k: &str| {
            let raw = base64::engine::general_purpose::STANDARD.decode(s["data"][k].as_str().unwrap()).unwrap();
            String::from_utf8(raw).unwrap()
        };
        Some((field("accessKeyID"), field("secretAccessKey")))
    };
    assert!(fake.wait_for(Duration::from_secs(30), |f| secret(f).is_some()).await, "no credential Secret");
    let (id1, secret1) = secret(&fake).unwrap();
    let first = Credentials::new(&id1, &secret1);

    // the profile's bucket: read and write with the CSI credential
    assert_eq!(put_get(&endpoint, "alice", &first, "k8s/hello.txt"), (200, 200));
    // anywhere else: refused
    let admin = Credentials::new("k8sadmin", "k8sadmin-secret");
    let other = Bucket::new(endpoint.clone(), UrlStyle::Path, "other-data".to_owned(), "us-east-1").unwrap();
    let made = rusty_s3::actions::CreateBucket::new(&other, &admin).sign(Duration::from_secs(60));
    assert_eq!(agent().put(made.as_str()).send_empty().unwrap().status().as_u16(), 200);
    assert_eq!(put_get(&endpoint, "other-data", &first, "x"), (403, 403));
    // the controller's own metrics
    let m = agent()
        .get(&format!("http://127.0.0.1:{metrics_port}/metrics"))
        .call()
        .unwrap()
        .into_body()
        .read_to_string()
        .unwrap();
    assert!(m.contains("coffer_controller_keys_created_total 1"), "{m}");

    // a rotation: a new key in the Secret; both work during the overlap
    assert!(
        fake.wait_for(Duration::from_secs(40), |f| secret(f).is_some_and(|(id, _)| id != id1)).await,
        "the credential was not rotated"
    );
    let (id2, secret2) = secret(&fake).unwrap();
    let second = Credentials::new(&id2, &secret2);
    assert_eq!(put_get(&endpoint, "alice", &second, "k8s/after.txt"), (200, 200));
    // after the overlap: the old key is refused, the new one works
    let deadline = Instant::now() + Duration::from_secs(30);
    while put_get(&endpoint, "alice", &first, "k8s/old.txt").1 != 403 {
        assert!(Instant::now() < deadline, "the old key still works after the overlap");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(put_get(&endpoint, "alice", &second, "k8s/still.txt"), (200, 200));
    fake.shutdown().await;
}
