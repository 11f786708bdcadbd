//! Test environments for the backend conformance suite: a filesystem backend on a
//! temporary directory, and cloud backends on emulators, each on a fresh cloud bucket.
//!
//! Emulators (moto for S3, Azurite for Azure) are shared by every test process of a run:
//! the first test that needs one starts it under a small shell watchdog and records its
//! port in `$CARGO_TARGET_TMPDIR/emulators/<name>/`; each test process registers its pid
//! there; the watchdog stops the emulator once no registered process has been alive for
//! ten seconds (a `flock` on the same lock file keeps a starting test from racing the
//! stop). Under nextest, where every test is a process, this starts each emulator once
//! per run instead of once per test. GCS runs against an in-process fake (see
//! `gcs_fake`), one per test process.
//!
//! Finding the emulators: `COFFER_TEST_MOTO` (a `moto_server` executable) or `moto_server`
//! on `PATH`; `COFFER_TEST_AZURITE` (an `azurite-blob` executable) or
//! `tests/emulators/node_modules/.bin/azurite-blob` or `azurite-blob` on `PATH`. When one is
//! missing the test passes with a notice, except under `CI=true`, where it fails and says
//! how to install it (as the PostgreSQL tests do).

#![allow(dead_code)]

pub mod gcs_fake;

use std::any::Any;
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use coffer_backend::{AzureTierConfig, Backend, CloudBackend, FsBackend, FsIo, GcsTierConfig, S3TierConfig};
use object_store::client::{CryptoProvider, DigestAlgorithm, DigestContext, HmacContext, Signer, SigningAlgorithm};

pub use gcs_fake::GcsFake;

/// The coffer bucket every scenario uses.
pub const BUCKET: &str = "bkt";
/// Azurite's well-known development account and key.
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The test service account of the GCS fake.
pub const GCS_EMAIL: &str = "coffer-test@coffer-test.iam.gserviceaccount.com";
pub const GCS_KEY_1: &str = include_str!("../../src/cloud/testdata/rsa-test-key.pem");
pub const GCS_KEY_2: &str = include_str!("../../src/cloud/testdata/rsa-test-key-2.pem");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Fs,
    S3,
    Azure,
    Gcs,
}

/// How to look for what a backend left behind.
enum Inspector {
    Fs { root: PathBuf },
    S3 { endpoint: String, bucket: String },
    Gcs { fake: GcsFake, bucket: String },
    Nothing,
}

/// One backend, ready with the coffer bucket [`BUCKET`].
pub struct Env {
    pub kind: Kind,
    pub backend: Arc<dyn Backend>,
    /// The longest key the backend stores in [`BUCKET`].
    pub max_key: usize,
    /// A backend of the same kind that cannot work (for `check`).
    pub dead: Arc<dyn Backend>,
    inspector: Inspector,
    _keep: Vec<Box<dyn Any + Send + Sync>>,
}

impl Env {
    pub fn is_cloud(&self) -> bool {
        self.kind != Kind::Fs
    }

    /// What the backend left behind that it should not have: temporary files (fs),
    /// multipart uploads still open in the store (S3, GCS).
    pub async fn leftovers(&self) -> Vec<String> {
        match &self.inspector {
            Inspector::Fs { root } => {
                std::fs::read_dir(root.join(".tmp")).unwrap().map(|e| e.unwrap().path().display().to_string()).collect()
            }
            Inspector::S3 { endpoint, bucket } => {
                let url = format!("{endpoint}/{bucket}?uploads");
                let body = tokio::task::spawn_blocking(move || http_get(&url)).await.unwrap();
                body.split("<Key>").skip(1).map(|s| s.split("</Key>").next().unwrap_or_default().to_owned()).collect()
            }
            Inspector::Gcs { fake, bucket } => fake.pending_uploads(bucket),
            Inspector::Nothing => Vec::new(),
        }
    }

    /// Wait (a few seconds at most) until nothing is left behind; what remains otherwise.
    pub async fn settled_leftovers(&self) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = self.leftovers().await;
            if left.is_empty() || Instant::now() > deadline {
                return left;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..16])
}

fn agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build(),
    )
}

/// GET a URL, the body as text (blocking).
pub fn http_get(url: &str) -> String {
    agent().get(url).call().map(|r| r.into_body().read_to_string().unwrap_or_default()).unwrap_or_default()
}

/// Whether anything answers HTTP at `url`.
fn answers(url: &str) -> bool {
    agent().get(url).call().is_ok()
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The emulator is missing: fail under CI, skip (with a notice) elsewhere.
fn missing(what: &str, install: &str) -> Option<Env> {
    if in_ci() {
        panic!("{what} is not installed and CI=true: {install}");
    }
    eprintln!("notice: {what} is not installed; skipping this test ({install})");
    None
}

/// An executable: the variable's value, else the first candidate that exists, else the
/// name on `PATH`.
fn find_executable(var: &str, candidates: &[PathBuf], name: &str) -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(var) {
        let p = PathBuf::from(v);
        return p.exists().then_some(p);
    }
    for c in candidates {
        if c.exists() {
            return Some(c.clone());
        }
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The watchdog: runs the emulator, stops it once no registered test process is alive.
const WATCHDOG: &str = r#"
dir="$1"; shift
"$@" >"$dir/emulator.log" 2>&1 &
child=$!
idle=0
while kill -0 "$child" 2>/dev/null; do
  alive=0
  for f in "$dir"/users/*; do
    [ -e "$f" ] || continue
    if kill -0 "$(basename "$f")" 2>/dev/null; then alive=1; else rm -f "$f"; fi
  done
  if [ "$alive" = 1 ]; then idle=0; else idle=$((idle + 1)); fi
  if [ "$idle" -ge 10 ]; then
    exec 9>"$dir/lock"
    flock 9
    for f in "$dir"/users/*; do
      [ -e "$f" ] && kill -0 "$(basename "$f")" 2>/dev/null && { idle=0; break; }
    done
    if [ "$idle" -ge 10 ]; then rm -f "$dir/port"; break; fi
    exec 9>&-
  fi
  sleep 1
done
kill "$child" 2>/dev/null
sleep 1
kill -9 "$child" 2>/dev/null
rm -f "$dir/port"
"#;

/// The port of the shared emulator `name`, started with `command(port, data_dir)` if
/// none is running; ready when `ready(port)`.
fn shared_emulator(name: &str, command: impl FnOnce(u16, &Path) -> Vec<String>, ready: impl Fn(u16) -> bool) -> u16 {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("emulators").join(name);
    std::fs::create_dir_all(dir.join("users")).unwrap();
    std::fs::write(dir.join("users").join(std::process::id().to_string()), b"").unwrap();
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("lock")).unwrap();
    lock.lock().unwrap();
    if let Some(port) = std::fs::read_to_string(dir.join("port")).ok().and_then(|p| p.trim().parse().ok())
        && ready(port)
    {
        return port;
    }
    let port = free_port();
    let data = dir.join("data");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).unwrap();
    // The watchdog runs detached (its parent shell exits at once), so it is no child of
    // this test process: nothing to wait for, and it outlives the test.
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"w="$1"; shift; sh -c "$w" watchdog "$@" </dev/null >/dev/null 2>&1 & exit 0"#)
        .arg("launcher")
        .arg(WATCHDOG)
        .arg(&dir)
        .args(command(port, &data));
    cmd.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let status = cmd.status().expect("starting the emulator watchdog");
    assert!(status.success(), "starting the emulator watchdog: {status}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready(port) {
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("emulator.log")).unwrap_or_default();
            panic!("the {name} emulator did not start on port {port}:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut f = std::fs::File::create(dir.join("port")).unwrap();
    write!(f, "{port}").unwrap();
    drop(lock);
    port
}

/// The `moto_server` executable, if installed.
pub fn moto_executable() -> Option<PathBuf> {
    find_executable("COFFER_TEST_MOTO", &[], "moto_server")
}

/// The shared moto server's endpoint, or `None` when moto is not installed.
pub fn moto() -> Option<String> {
    let exe = moto_executable()?;
    let port = shared_emulator(
        "moto",
        |port, _| vec![exe.display().to_string(), "-H".into(), "127.0.0.1".into(), "-p".into(), port.to_string()],
        |port| answers(&format!("http://127.0.0.1:{port}/moto-api/")),
    );
    Some(format!("http://127.0.0.1:{port}"))
}

/// The shared Azurite's account endpoint, or `None` when Azurite is not installed.
pub fn azurite() -> Option<String> {
    let candidates = [workspace_root().join("tests/emulators/node_modules/.bin/azurite-blob")];
    let exe = find_executable("COFFER_TEST_AZURITE", &candidates, "azurite-blob")?;
    let port = shared_emulator(
        "azurite",
        |port, data| {
            vec![
                exe.display().to_string(),
                "--blobHost".into(),
                "127.0.0.1".into(),
                "--blobPort".into(),
                port.to_string(),
                "--location".into(),
                data.display().to_string(),
                "--skipApiVersionCheck".into(),
                "--loose".into(),
                "--disableTelemetry".into(),
            ]
        },
        |port| std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
    );
    Some(format!("http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"))
}

/// Create an S3 bucket on moto (moto accepts unsigned requests unless IAM is enforced).
pub fn create_s3_bucket(endpoint: &str, bucket: &str) {
    let r = agent().put(&format!("{endpoint}/{bucket}")).send_empty().unwrap();
    assert!(r.status().is_success(), "creating bucket {bucket}: {}", r.status());
}

/// SHA-256 and HMAC from ring, for signing the tests' own requests.
#[derive(Debug)]
pub struct TestCrypto;

struct Sha(Option<ring::digest::Context>, Option<ring::digest::Digest>);
impl DigestContext for Sha {
    fn update(&mut self, data: &[u8]) {
        self.0.as_mut().unwrap().update(data)
    }
    fn finish(&mut self) -> object_store::Result<&[u8]> {
        self.1 = Some(self.0.take().unwrap().finish());
        Ok(self.1.as_ref().unwrap().as_ref())
    }
}
struct Mac(Option<ring::hmac::Context>, Option<ring::hmac::Tag>);
impl HmacContext for Mac {
    fn update(&mut self, data: &[u8]) {
        self.0.as_mut().unwrap().update(data)
    }
    fn finish(&mut self) -> object_store::Result<&[u8]> {
        self.1 = Some(self.0.take().unwrap().sign());
        Ok(self.1.as_ref().unwrap().as_ref())
    }
}
impl CryptoProvider for TestCrypto {
    fn digest(&self, _: DigestAlgorithm) -> object_store::Result<Box<dyn DigestContext>> {
        Ok(Box::new(Sha(Some(ring::digest::Context::new(&ring::digest::SHA256)), None)))
    }
    fn hmac(&self, _: DigestAlgorithm, secret: &[u8]) -> object_store::Result<Box<dyn HmacContext>> {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
        Ok(Box::new(Mac(Some(ring::hmac::Context::with_key(&key)), None)))
    }
    fn sign(&self, _: SigningAlgorithm, _: &[u8]) -> object_store::Result<Box<dyn Signer>> {
        unimplemented!("the tests sign no JWTs with this provider")
    }
}

/// Send a request signed for Azurite with the development key.
pub fn azure_request(method: &str, url: &str, account: &str, key: &str) -> u16 {
    use object_store::azure::{AzureAccessKey, AzureAuthorizer, AzureCredential};
    let mut req = http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-length", "0")
        .body(object_store::client::HttpRequestBody::empty())
        .unwrap();
    let credential = AzureCredential::AccessKey(AzureAccessKey::try_new(key).unwrap());
    AzureAuthorizer::new(&credential, account).with_crypto(&TestCrypto).try_authorize(&mut req).unwrap();
    let mut out = http::Request::builder().method(req.method()).uri(req.uri().to_string());
    for (k, v) in req.headers() {
        if k != "content-length" {
            out = out.header(k, v);
        }
    }
    let r = agent().run(out.body(Vec::<u8>::new()).unwrap()).unwrap();
    r.status().as_u16()
}

/// Create an Azure container on Azurite.
pub fn create_container(endpoint: &str, container: &str) {
    let status =
        azure_request("PUT", &format!("{endpoint}/{container}?restype=container"), AZURITE_ACCOUNT, AZURITE_KEY);
    assert!((200..300).contains(&status), "creating container {container}: {status}");
}

/// A service-account key file for the GCS fake.
pub fn write_gcs_key(path: &Path, fake: &GcsFake, kid: &str, pem: &str) {
    let json = serde_json::json!({
        "type": "service_account",
        "project_id": "coffer-test",
        "private_key_id": kid,
        "private_key": pem,
        "client_email": GCS_EMAIL,
        "gcs_base_url": fake.url,
    });
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, json.to_string()).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A port nothing listens on.
fn dead_endpoint() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

/// The filesystem backend, with its short calls inline (what `io = "auto"` picks on a
/// local disk) or on the blocking pool (on a network filesystem).
pub async fn fs(io: FsIo) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let backend = FsBackend::with_io(root.clone(), io).await.unwrap();
    assert_eq!(backend.io_inline(), io == FsIo::Inline);
    backend.create_bucket(BUCKET).await.unwrap();
    // A root that was removed cannot be used.
    let dead = FsBackend::new(dir.path().join("dead")).await.unwrap();
    std::fs::remove_dir_all(dir.path().join("dead")).unwrap();
    Env {
        kind: Kind::Fs,
        backend: Arc::new(backend),
        max_key: 1024,
        dead: Arc::new(dead),
        inspector: Inspector::Fs { root },
        _keep: vec![Box::new(dir)],
    }
}

/// An S3 tier configuration on moto, with the access key in `dir/id` and `dir/secret`.
pub fn s3_config(endpoint: &str, bucket: &str, dir: &Path) -> S3TierConfig {
    let mut c = S3TierConfig::new(bucket);
    c.endpoint = Some(endpoint.to_owned());
    c.path_style = true;
    c.allow_http = true;
    c.access_key_id_file = Some(dir.join("id"));
    c.secret_access_key_file = Some(dir.join("secret"));
    c.session_token_env = Some("COFFER_TEST_S3_TOKEN_UNSET".into());
    c
}

pub async fn s3() -> Option<Env> {
    let Some(endpoint) = moto() else {
        return missing("moto (S3 emulator)", "pip install -r tests/python/requirements.txt, or set COFFER_TEST_MOTO");
    };
    let bucket = unique("coffer-");
    {
        let (e, b) = (endpoint.clone(), bucket.clone());
        tokio::task::spawn_blocking(move || create_s3_bucket(&e, &b)).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("id"), "testing\n").unwrap();
    std::fs::write(dir.path().join("secret"), "testing-secret\n").unwrap();
    let mut config = s3_config(&endpoint, &bucket, dir.path());
    // A tier prefix, so that everything is also tested below one.
    config.prefix = Some("tiers/standard".into());
    let backend = CloudBackend::s3("s3-test", &config).unwrap();
    backend.create_bucket(BUCKET).await.unwrap();
    let mut dead_config = config.clone();
    dead_config.endpoint = Some(dead_endpoint());
    let dead = CloudBackend::s3("s3-dead", &dead_config).unwrap();
    let overhead = "tiers/standard/".len() + BUCKET.len() + 1;
    Some(Env {
        kind: Kind::S3,
        backend: Arc::new(backend),
        max_key: 1024 - overhead,
        dead: Arc::new(dead),
        inspector: Inspector::S3 { endpoint, bucket },
        _keep: vec![Box::new(dir)],
    })
}

/// An Azure tier configuration on Azurite, with the key in a file.
pub fn azure_config(endpoint: &str, container: &str, key_file: &Path) -> AzureTierConfig {
    let mut c = AzureTierConfig::new(AZURITE_ACCOUNT, container);
    c.endpoint = Some(endpoint.to_owned());
    c.allow_http = true;
    c.access_key_file = Some(key_file.to_owned());
    c
}

pub async fn azure() -> Option<Env> {
    let Some(endpoint) = azurite() else {
        return missing("Azurite (Azure emulator)", "run `npm ci` in tests/emulators, or set COFFER_TEST_AZURITE");
    };
    let container = unique("coffer-");
    {
        let (e, c) = (endpoint.clone(), container.clone());
        tokio::task::spawn_blocking(move || create_container(&e, &c)).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("key"), AZURITE_KEY).unwrap();
    let config = azure_config(&endpoint, &container, &dir.path().join("key"));
    let backend = CloudBackend::azure("azure-test", &config).unwrap();
    backend.create_bucket(BUCKET).await.unwrap();
    let mut dead_config = config.clone();
    dead_config.endpoint = Some(format!("{}/{AZURITE_ACCOUNT}", dead_endpoint()));
    let dead = CloudBackend::azure("azure-dead", &dead_config).unwrap();
    let overhead = BUCKET.len() + 1;
    Some(Env {
        kind: Kind::Azure,
        backend: Arc::new(backend),
        max_key: 1024 - overhead,
        dead: Arc::new(dead),
        inspector: Inspector::Nothing,
        _keep: vec![Box::new(dir)],
    })
}

/// A GCS tier configuration on the fake, with a service-account key file.
pub fn gcs_config(bucket: &str, key_file: &Path) -> GcsTierConfig {
    let mut c = GcsTierConfig::new(bucket);
    c.allow_http = true;
    c.service_account_file = Some(key_file.to_owned());
    c
}

pub async fn gcs() -> Option<Env> {
    let fake = GcsFake::shared();
    fake.set_account(GCS_EMAIL);
    fake.allow_key("key-1", GCS_KEY_1);
    let bucket = unique("coffer-");
    fake.create_bucket(&bucket);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("sa.json");
    write_gcs_key(&key_file, &fake, "key-1", GCS_KEY_1);
    let mut config = gcs_config(&bucket, &key_file);
    config.prefix = Some("gcs-tier".into());
    let backend = CloudBackend::gcs("gcs-test", &config).unwrap();
    backend.create_bucket(BUCKET).await.unwrap();
    let mut dead_config = config.clone();
    dead_config.endpoint = Some(dead_endpoint());
    let dead = CloudBackend::gcs("gcs-dead", &dead_config).unwrap();
    let overhead = "gcs-tier/".len() + BUCKET.len() + 1;
    Some(Env {
        kind: Kind::Gcs,
        backend: Arc::new(backend),
        max_key: 1024 - overhead,
        dead: Arc::new(dead),
        inspector: Inspector::Gcs { fake, bucket },
        _keep: vec![Box::new(dir)],
    })
}
