//! Credential rotation without a restart: the credential files of a tier are replaced the
//! way Kubernetes updates a Secret volume (a `..data` symlink swapped to a new directory)
//! while uploads run; the backend picks the new credential up (and logs it, naming the
//! tier), the old one is then revoked at the store, and no request fails.
//!
//! - S3: a moto server of its own that enforces IAM (`INITIAL_NO_AUTH_ACTION_COUNT`), an
//!   IAM user with two access keys (made by `support/moto_iam.py` with boto3); key 1 is
//!   deleted at the store after the reload.
//! - GCS: the in-process fake verifies each JWT's signature; key 1 is revoked there after
//!   the reload.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use coffer_backend::{Backend, ByteStream, CloudBackend, ObjectMeta, PutChecks};
use futures::{StreamExt, stream};
use support::{BUCKET, GCS_KEY_1, GCS_KEY_2, GcsFake};

/// Everything logged in this process (the tests here read the reload line).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> Logs {
    static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .init();
        logs
    })
    .clone()
}

/// A Kubernetes-style secret directory: files that are symlinks into `..data`, itself a
/// symlink to the current version's directory.
struct SecretDir {
    dir: PathBuf,
    version: usize,
}

impl SecretDir {
    fn new(dir: &Path, files: &[(&str, &str)]) -> SecretDir {
        let mut s = SecretDir { dir: dir.to_owned(), version: 0 };
        s.update(files);
        for (name, _) in files {
            std::os::unix::fs::symlink(format!("..data/{name}"), dir.join(name)).unwrap();
        }
        s
    }

    /// Write a new version and swap `..data` to it atomically.
    fn update(&mut self, files: &[(&str, &str)]) {
        self.version += 1;
        let version = self.dir.join(format!("..v{}", self.version));
        std::fs::create_dir(&version).unwrap();
        for (name, content) in files {
            std::fs::write(version.join(name), content).unwrap();
        }
        let tmp = self.dir.join("..data_tmp");
        std::os::unix::fs::symlink(version.file_name().unwrap(), &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
    }
}

fn payload(seed: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| ((i * 31 + seed * 7) % 251) as u8).collect()
}

fn body(data: Vec<u8>) -> ByteStream {
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        data.chunks(256 * 1024).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    Box::pin(stream::iter(chunks))
}

/// What one uploading task did: (key, payload seed) of each upload, and the failures.
type Outcome = (Vec<(String, usize)>, Vec<String>);

/// Uploads from several tasks until stopped.
struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<Outcome>>,
}

fn start_load(backend: &CloudBackend, tasks: usize) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = (0..tasks)
        .map(|t| {
            let (b, stop) = (backend.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let (mut done, mut failed) = (Vec::new(), Vec::new());
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    // Task 0 streams objects of three parts: uploads that span a rotation.
                    let size = if t == 0 { 12 * 1024 * 1024 } else { 1000 + i };
                    let key = format!("load/{t}/{i}");
                    let r = b
                        .put_object(
                            BUCKET,
                            &key,
                            ObjectMeta::default(),
                            body(payload(t * 1000 + i, size)),
                            PutChecks::default(),
                        )
                        .await;
                    match r {
                        Ok(_) => done.push((key, t * 1000 + i)),
                        Err(e) => failed.push(format!("{key}: {e}")),
                    }
                    i += 1;
                }
                (done, failed)
            })
        })
        .collect();
    Load { stop, tasks }
}

impl Load {
    async fn finish(self) -> Outcome {
        self.stop.store(true, Ordering::Relaxed);
        let (mut done, mut failed) = (Vec::new(), Vec::new());
        for t in self.tasks {
            let (d, f) = t.await.unwrap();
            done.extend(d);
            failed.extend(f);
        }
        (done, failed)
    }
}

async fn wait_for_reload(logs: &Logs, tier: &str, backend: &CloudBackend) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = logs.text();
        if text.lines().any(|l| l.contains("reloaded the backend credential") && l.contains(tier)) {
            assert!(backend.credential_reloads() >= 1);
            return;
        }
        assert!(Instant::now() < deadline, "no reload was logged for {tier}:\n{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn check_all_readable(backend: &CloudBackend, done: &[(String, usize)]) {
    for (key, seed) in done {
        let (info, _, s) = backend.get_object(BUCKET, key, None).await.unwrap_or_else(|e| panic!("{key}: {e}"));
        let got: Vec<u8> = s.map(|c| c.unwrap()).collect::<Vec<_>>().await.concat();
        assert_eq!(got, payload(*seed, info.size as usize), "{key}");
    }
}

/// A process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> PathBuf {
    std::env::var_os("COFFER_TEST_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_credentials_rotate_without_failed_requests() {
    let Some(moto) = support::moto_executable() else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("moto is not installed and CI=true: pip install -r tests/python/requirements.txt");
        }
        eprintln!("notice: moto is not installed; skipping the rotation test");
        return;
    };
    let logs = capture_logs();
    let port = support::free_port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("moto.log")).unwrap();
    let _moto = Proc(
        Command::new(&moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "5")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let helper = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/moto_iam.py");
    let out = Command::new(python()).arg(&helper).args(["setup", &endpoint, "rotation"]).output().unwrap();
    assert!(out.status.success(), "moto_iam.py setup: {}", String::from_utf8_lossy(&out.stderr));
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let (id1, secret1) = (keys["key1"]["id"].as_str().unwrap(), keys["key1"]["secret"].as_str().unwrap());
    let (id2, secret2) = (keys["key2"]["id"].as_str().unwrap(), keys["key2"]["secret"].as_str().unwrap());

    let secrets = dir.path().join("secret");
    std::fs::create_dir(&secrets).unwrap();
    let mut secret_dir = SecretDir::new(&secrets, &[("id", id1), ("secret", secret1)]);
    let config = support::s3_config(&endpoint, "rotation", &secrets);
    let backend = CloudBackend::s3("rotating-s3", &config).unwrap();
    backend.create_bucket(BUCKET).await.unwrap();
    // A wrong key is refused by this moto: IAM is enforced.
    let wrong = tempfile::tempdir().unwrap();
    std::fs::write(wrong.path().join("id"), id1).unwrap();
    std::fs::write(wrong.path().join("secret"), "not-the-secret").unwrap();
    let refused = CloudBackend::s3("refused", &support::s3_config(&endpoint, "rotation", wrong.path())).unwrap();
    assert!(refused.check().await.is_err(), "moto must enforce IAM for this test to mean anything");

    let load = start_load(&backend, 4);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    secret_dir.update(&[("id", id2), ("secret", secret2)]);
    wait_for_reload(&logs, "rotating-s3", &backend).await;
    let out = Command::new(python()).arg(&helper).args(["delete-key", &endpoint, id1, id2, secret2]).output().unwrap();
    assert!(out.status.success(), "moto_iam.py delete-key: {}", String::from_utf8_lossy(&out.stderr));
    // Key 1 is really gone.
    let old = tempfile::tempdir().unwrap();
    std::fs::write(old.path().join("id"), id1).unwrap();
    std::fs::write(old.path().join("secret"), secret1).unwrap();
    let revoked = CloudBackend::s3("revoked", &support::s3_config(&endpoint, "rotation", old.path())).unwrap();
    assert!(revoked.check().await.is_err(), "key 1 must be refused once deleted");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (done, failed) = load.finish().await;
    assert!(failed.is_empty(), "failed requests: {failed:#?}");
    assert!(done.len() > 10, "only {} uploads", done.len());
    check_all_readable(&backend, &done).await;
    let text = logs.text();
    for secret in [secret1, secret2] {
        assert!(!text.contains(secret), "a secret was logged");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn gcs_service_account_rotates_without_failed_requests() {
    let logs = capture_logs();
    let fake = GcsFake::shared();
    fake.set_account(support::GCS_EMAIL);
    fake.allow_key("rot-1", GCS_KEY_1);
    fake.allow_key("rot-2", GCS_KEY_2);
    fake.create_bucket("rotation");
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secret");
    std::fs::create_dir(&secrets).unwrap();
    let key = |kid: &str, pem: &str| {
        serde_json::json!({"type": "service_account", "private_key_id": kid, "private_key": pem,
                           "client_email": support::GCS_EMAIL, "gcs_base_url": fake.url})
        .to_string()
    };
    let mut secret_dir = SecretDir::new(&secrets, &[("key.json", &key("rot-1", GCS_KEY_1))]);
    let config = support::gcs_config("rotation", &secrets.join("key.json"));
    let backend = CloudBackend::gcs("rotating-gcs", &config).unwrap();
    backend.create_bucket(BUCKET).await.unwrap();
    let load = start_load(&backend, 4);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    secret_dir.update(&[("key.json", &key("rot-2", GCS_KEY_2))]);
    wait_for_reload(&logs, "rotating-gcs", &backend).await;
    // Requests that took the old credential just before the reload are on their way:
    // revoke a moment later, as an operator deleting the old key after the rollout would.
    tokio::time::sleep(Duration::from_millis(500)).await;
    fake.revoke_key("rot-1");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (done, failed) = load.finish().await;
    assert!(failed.is_empty(), "failed requests: {failed:#?}");
    assert!(done.len() > 10, "only {} uploads", done.len());
    check_all_readable(&backend, &done).await;
    assert!(!logs.text().contains("PRIVATE KEY"), "a key was logged");
}
