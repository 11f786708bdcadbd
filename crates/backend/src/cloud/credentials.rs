//! Cloud credentials: read from environment variables or files, never logged, and re-read
//! when a file changes so that a rotated secret takes effect without a restart.
//!
//! A Kubernetes Secret volume is updated by swapping a symlink to a new directory, so
//! every file of the secret changes at once. [`Watched`] therefore treats its files as one
//! set: at most once a second (on the request path, no background task) it `stat`s them,
//! following symlinks; when any changed it reads them all, twice if a file changed during
//! the read, and parses the set. A new credential is swapped in for the next requests
//! (requests in flight keep the one they signed with) and one line is logged, with the
//! tier's name and without the secret. A file that cannot be read or parsed keeps the last
//! good credential and logs a warning, again without the secret.
//!
//! The providers implement `object_store`'s [`CredentialProvider`]: `S3Credentials`
//! (access key id, secret, optional session token), `AzureCredentials` (account key or SAS
//! token) and `GcsCredentials` (a service-account JSON key, from which it signs its own
//! OAuth JWTs, RS256, cached for up to an hour and renewed when the key file changes).

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use object_store::CredentialProvider;
use object_store::aws::AwsCredential;
use object_store::azure::{AzureAccessKey, AzureCredential};
use object_store::client::Signer;
use object_store::gcp::GcpCredential;
use sha2::{Digest, Sha256};

use super::crypto::RsaSigner;

/// How often files are checked for a change, at most.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// Where one secret comes from. Names and paths are not secret; values are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SecretSource {
    /// An environment variable, read once.
    Env(String),
    /// A file, re-read when it changes.
    File(PathBuf),
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Env(name) => write!(f, "${name}"),
            SecretSource::File(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The source a pair of `*_env` / `*_file` settings names, `default_env` when neither is
/// set; an error when both are.
pub(crate) fn pick_source(
    what: &str,
    env: &Option<String>,
    file: &Option<PathBuf>,
    default_env: &str,
) -> Result<SecretSource, String> {
    match (env, file) {
        (Some(_), Some(_)) => Err(format!("set only one of {what}_env and {what}_file")),
        (Some(name), None) => Ok(SecretSource::Env(name.clone())),
        (None, Some(path)) => Ok(SecretSource::File(path.clone())),
        (None, None) => Ok(SecretSource::Env(default_env.to_owned())),
    }
}

/// What identifies a file's content without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    #[cfg(unix)]
    inode: (u64, u64),
}

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?; // follows symlinks
    Some(Stamp {
        len: m.len(),
        modified: m.modified().ok(),
        #[cfg(unix)]
        inode: {
            use std::os::unix::fs::MetadataExt;
            (m.dev(), m.ino())
        },
    })
}

/// Turns the raw values of a set of sources (trimmed; `None` for an unset variable) into a
/// credential. Error messages must not quote the values.
type Parser<T> = Box<dyn Fn(&[Option<String>]) -> Result<T, String> + Send + Sync>;

struct WatchState<T> {
    value: Arc<T>,
    next_check: Instant,
    stamps: Vec<Option<Stamp>>,
    digest: [u8; 32],
}

/// A credential made of a set of secrets, kept current with their files.
pub(crate) struct Watched<T> {
    tier: String,
    what: &'static str,
    sources: Vec<SecretSource>,
    parse: Parser<T>,
    reloads: Arc<AtomicU64>,
    state: Mutex<WatchState<T>>,
}

impl<T> std::fmt::Debug for Watched<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sources: Vec<String> = self.sources.iter().map(ToString::to_string).collect();
        f.debug_struct("Watched")
            .field("tier", &self.tier)
            .field("what", &self.what)
            .field("sources", &sources)
            .field("value", &"<redacted>")
            .finish()
    }
}

fn digest(values: &[Option<String>]) -> [u8; 32] {
    let mut h = Sha256::new();
    for v in values {
        match v {
            Some(v) => {
                h.update([1]);
                h.update((v.len() as u64).to_le_bytes());
                h.update(v.as_bytes());
            }
            None => h.update([0]),
        }
    }
    h.finalize().into()
}

impl<T: Send + Sync + 'static> Watched<T> {
    /// Read and parse the sources now; fails when they cannot be read or parsed.
    pub(crate) fn new(
        tier: &str,
        what: &'static str,
        sources: Vec<SecretSource>,
        reloads: Arc<AtomicU64>,
        parse: Parser<T>,
    ) -> Result<Self, String> {
        let (values, stamps) = read_consistent(&sources).map_err(|e| format!("{what}: {e}"))?;
        let value = parse(&values).map_err(|e| format!("{what}: {e}"))?;
        let state = WatchState {
            value: Arc::new(value),
            next_check: Instant::now() + CHECK_EVERY,
            stamps,
            digest: digest(&values),
        };
        Ok(Watched { tier: tier.to_owned(), what, sources, parse, reloads, state: Mutex::new(state) })
    }

    fn has_files(&self) -> bool {
        self.sources.iter().any(|s| matches!(s, SecretSource::File(_)))
    }

    /// The current credential, re-reading the files if they changed.
    pub(crate) fn get(&self) -> Arc<T> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        if !self.has_files() || now < st.next_check {
            return Arc::clone(&st.value);
        }
        st.next_check = now + CHECK_EVERY;
        let stamps = stamps(&self.sources);
        if stamps == st.stamps {
            return Arc::clone(&st.value);
        }
        match read_consistent(&self.sources) {
            Err(e) => {
                // Retried on the next check: the files may be mid-swap.
                tracing::warn!(tier = %self.tier, credential = self.what, error = %e,
                    "could not re-read a backend credential file; keeping the last good credential");
            }
            Ok((values, stamps)) => {
                st.stamps = stamps;
                let d = digest(&values);
                if d != st.digest {
                    st.digest = d;
                    match (self.parse)(&values) {
                        Ok(value) => {
                            st.value = Arc::new(value);
                            self.reloads.fetch_add(1, Ordering::Relaxed);
                            tracing::info!(tier = %self.tier, credential = self.what,
                                "reloaded the backend credential");
                        }
                        Err(e) => tracing::warn!(tier = %self.tier, credential = self.what, error = %e,
                            "a changed backend credential is invalid; keeping the last good credential"),
                    }
                }
            }
        }
        Arc::clone(&st.value)
    }
}

fn stamps(sources: &[SecretSource]) -> Vec<Option<Stamp>> {
    sources
        .iter()
        .map(|s| match s {
            SecretSource::File(p) => stamp(p),
            SecretSource::Env(_) => None,
        })
        .collect()
}

/// The values of a set of sources, and the stamps of their files when read.
type Snapshot = (Vec<Option<String>>, Vec<Option<Stamp>>);

/// Read every source; again if a file changed meanwhile (a secret swapped mid-read).
fn read_consistent(sources: &[SecretSource]) -> Result<Snapshot, String> {
    let mut last_error = String::new();
    for _ in 0..4 {
        let before = stamps(sources);
        let values = sources
            .iter()
            .map(|s| match s {
                SecretSource::Env(name) => Ok(std::env::var(name).ok().map(|v| v.trim().to_owned())),
                SecretSource::File(path) => std::fs::read_to_string(path)
                    .map(|v| Some(v.trim().to_owned()))
                    .map_err(|e| format!("cannot read {}: {e}", path.display())),
            })
            .collect::<Result<Vec<_>, _>>();
        let after = stamps(sources);
        match values {
            Ok(values) if before == after => return Ok((values, after)),
            Ok(_) => last_error = "the files kept changing while being read".to_owned(),
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

/// `Ok(value)` for a set value, an error naming the source otherwise.
fn required<'a>(value: &'a Option<String>, source: &SecretSource) -> Result<&'a str, String> {
    match value.as_deref() {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(format!("{source} is not set or empty")),
    }
}

/// S3 access keys: id, secret and an optional session token.
#[derive(Debug)]
pub(crate) struct S3Credentials(pub(crate) Watched<AwsCredential>);

impl S3Credentials {
    pub(crate) fn new(
        tier: &str,
        key_id: SecretSource,
        secret: SecretSource,
        token: SecretSource,
        reloads: Arc<AtomicU64>,
    ) -> Result<Self, String> {
        let sources = vec![key_id, secret, token];
        let names = sources.clone();
        let parse: Parser<AwsCredential> = Box::new(move |v| {
            Ok(AwsCredential {
                key_id: required(&v[0], &names[0])?.to_owned(),
                secret_key: required(&v[1], &names[1])?.to_owned(),
                token: v[2].clone().filter(|t| !t.is_empty()),
            })
        });
        Ok(S3Credentials(Watched::new(tier, "s3 access key", sources, reloads, parse)?))
    }
}

#[async_trait]
impl CredentialProvider for S3Credentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        Ok(self.0.get())
    }
}

/// Which kind of Azure secret a source holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AzureSecretKind {
    AccountKey,
    SasToken,
}

/// An Azure account key or SAS token.
#[derive(Debug)]
pub(crate) struct AzureCredentials(pub(crate) Watched<AzureCredential>);

impl AzureCredentials {
    pub(crate) fn new(
        tier: &str,
        kind: AzureSecretKind,
        source: SecretSource,
        reloads: Arc<AtomicU64>,
    ) -> Result<Self, String> {
        let name = source.clone();
        let parse: Parser<AzureCredential> = Box::new(move |v| {
            let value = required(&v[0], &name)?;
            match kind {
                AzureSecretKind::AccountKey => AzureAccessKey::try_new(value)
                    .map(AzureCredential::AccessKey)
                    .map_err(|_| format!("{name} is not a base64 account key")),
                AzureSecretKind::SasToken => object_store::azure::split_sas(value.trim_start_matches('?'))
                    .map(AzureCredential::SASToken)
                    .map_err(|_| format!("{name} is not a SAS token")),
            }
        });
        let what = match kind {
            AzureSecretKind::AccountKey => "azure account key",
            AzureSecretKind::SasToken => "azure sas token",
        };
        Ok(AzureCredentials(Watched::new(tier, what, vec![source], reloads, parse)?))
    }
}

#[async_trait]
impl CredentialProvider for AzureCredentials {
    type Credential = AzureCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AzureCredential>> {
        Ok(self.0.get())
    }
}

/// The parts of a service-account key file coffer uses.
pub(crate) struct ServiceAccount {
    pub client_email: String,
    pub private_key_id: String,
    /// `None` with `disable_oauth` (emulators accept any token).
    pub signer: Option<RsaSigner>,
    /// The storage endpoint the file names (an emulator convention).
    pub gcs_base_url: Option<String>,
}

#[derive(serde::Deserialize)]
struct ServiceAccountFile {
    #[serde(default)]
    private_key: String,
    #[serde(default)]
    private_key_id: String,
    #[serde(default)]
    client_email: String,
    #[serde(default)]
    gcs_base_url: Option<String>,
    #[serde(default)]
    disable_oauth: bool,
}

fn parse_service_account(json: &str) -> Result<ServiceAccount, String> {
    // serde_json's messages can quote values: report the position only.
    let file: ServiceAccountFile = serde_json::from_str(json)
        .map_err(|e| format!("not a service-account JSON key (line {}, column {})", e.line(), e.column()))?;
    let signer = if file.disable_oauth {
        None
    } else {
        if file.client_email.is_empty() || file.private_key.is_empty() {
            return Err("the service-account key lacks client_email or private_key".to_owned());
        }
        Some(RsaSigner::from_pem(file.private_key.as_bytes()).map_err(|e| e.to_string())?)
    };
    Ok(ServiceAccount {
        client_email: file.client_email,
        private_key_id: file.private_key_id,
        signer,
        gcs_base_url: file.gcs_base_url,
    })
}

/// The OAuth scope coffer's tokens ask for.
const GCS_SCOPE: &str = "https://www.googleapis.com/auth/devstorage.read_write";
/// How long a self-signed token is valid (Google's maximum).
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// A token this close to expiry is renewed.
const TOKEN_MARGIN: Duration = Duration::from_secs(300);

struct CachedToken {
    account: Arc<ServiceAccount>,
    token: Arc<GcpCredential>,
    expires: Instant,
}

/// Bearer tokens from a service-account key: self-signed JWTs (no token exchange), the
/// way Google documents for service accounts calling Google APIs.
pub(crate) struct GcsCredentials {
    pub(crate) account: Watched<ServiceAccount>,
    cache: Mutex<Option<CachedToken>>,
}

impl std::fmt::Debug for GcsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcsCredentials").field("account", &self.account).finish_non_exhaustive()
    }
}

impl GcsCredentials {
    pub(crate) fn new(tier: &str, file: PathBuf, reloads: Arc<AtomicU64>) -> Result<Self, String> {
        let source = SecretSource::File(file);
        let parse: Parser<ServiceAccount> = Box::new(|v| parse_service_account(v[0].as_deref().unwrap_or_default()));
        let account = Watched::new(tier, "gcs service account", vec![source], reloads, parse)?;
        Ok(GcsCredentials { account, cache: Mutex::new(None) })
    }

    /// The `gcs_base_url` of the key file as first read.
    pub(crate) fn base_url(&self) -> Option<String> {
        self.account.get().gcs_base_url.clone()
    }

    fn token(&self) -> object_store::Result<Arc<GcpCredential>> {
        let account = self.account.get();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.as_ref()
            && Arc::ptr_eq(&c.account, &account)
            && c.expires > Instant::now() + TOKEN_MARGIN
        {
            return Ok(Arc::clone(&c.token));
        }
        let bearer = match &account.signer {
            None => String::new(),
            Some(signer) => self_signed_jwt(&account, signer)?,
        };
        let token = Arc::new(GcpCredential { bearer });
        *cache = Some(CachedToken {
            account: Arc::clone(&account),
            token: Arc::clone(&token),
            expires: Instant::now() + TOKEN_LIFETIME,
        });
        Ok(token)
    }
}

/// `header.claims.signature`, RS256, valid for an hour.
fn self_signed_jwt(account: &ServiceAccount, signer: &RsaSigner) -> object_store::Result<String> {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let header = serde_json::json!({"alg": "RS256", "typ": "JWT", "kid": account.private_key_id});
    let claims = serde_json::json!({
        "iss": account.client_email,
        "sub": account.client_email,
        "scope": GCS_SCOPE,
        "iat": now,
        "exp": now + TOKEN_LIFETIME.as_secs(),
    });
    let message =
        format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()));
    let signature = signer.sign(message.as_bytes())?;
    Ok(format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

#[async_trait]
impl CredentialProvider for GcsCredentials {
    type Credential = GcpCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<GcpCredential>> {
        self.token()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(path: &std::path::Path, content: &str) {
        // Like a Secret update: write a new file, then rename it over the old one.
        let tmp = path.with_extension("new");
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }

    fn s3(dir: &std::path::Path, reloads: Arc<AtomicU64>) -> S3Credentials {
        S3Credentials::new(
            "t",
            SecretSource::File(dir.join("id")),
            SecretSource::File(dir.join("secret")),
            SecretSource::Env("COFFER_TEST_UNSET_TOKEN_VARIABLE".into()),
            reloads,
        )
        .unwrap()
    }

    #[test]
    fn sources_are_picked_from_settings() {
        assert_eq!(pick_source("x", &None, &None, "D").unwrap(), SecretSource::Env("D".into()));
        assert_eq!(pick_source("x", &Some("E".into()), &None, "D").unwrap(), SecretSource::Env("E".into()));
        assert_eq!(pick_source("x", &None, &Some("/f".into()), "D").unwrap(), SecretSource::File("/f".into()));
        assert!(pick_source("x", &Some("E".into()), &Some("/f".into()), "D").is_err());
    }

    #[test]
    fn files_are_reread_when_they_change() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("id"), "AKID1\n");
        write(&dir.path().join("secret"), "secret-one\n");
        let reloads = Arc::new(AtomicU64::new(0));
        let creds = s3(dir.path(), Arc::clone(&reloads));
        let c = creds.0.get();
        assert_eq!((c.key_id.as_str(), c.secret_key.as_str(), c.token.as_deref()), ("AKID1", "secret-one", None));
        write(&dir.path().join("id"), "AKID2");
        write(&dir.path().join("secret"), "secret-two");
        // Not before a second has passed.
        assert_eq!(creds.0.get().key_id, "AKID1");
        creds.0.state.lock().unwrap().next_check = Instant::now();
        assert_eq!(creds.0.get().key_id, "AKID2");
        assert_eq!(creds.0.get().secret_key, "secret-two");
        assert_eq!(reloads.load(Ordering::Relaxed), 1);
        // A broken file keeps the last good credential.
        std::fs::remove_file(dir.path().join("secret")).unwrap();
        creds.0.state.lock().unwrap().next_check = Instant::now();
        assert_eq!(creds.0.get().secret_key, "secret-two");
        write(&dir.path().join("secret"), "");
        creds.0.state.lock().unwrap().next_check = Instant::now();
        assert_eq!(creds.0.get().secret_key, "secret-two");
        assert_eq!(reloads.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn missing_secrets_fail_at_start_and_debug_redacts() {
        let dir = tempfile::tempdir().unwrap();
        let err = S3Credentials::new(
            "t",
            SecretSource::File(dir.path().join("nope")),
            SecretSource::Env("X".into()),
            SecretSource::Env("Y".into()),
            Arc::default(),
        )
        .unwrap_err();
        assert!(err.contains("nope"), "{err}");
        write(&dir.path().join("id"), "AKID1");
        write(&dir.path().join("secret"), "very-secret-value");
        let creds = s3(dir.path(), Arc::default());
        let debug = format!("{creds:?}");
        assert!(!debug.contains("very-secret-value") && !debug.contains("AKID1"), "{debug}");
    }

    #[test]
    fn azure_keys_and_sas_tokens_parse() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("key"), "c2VjcmV0LWtleQ==");
        let c = AzureCredentials::new(
            "t",
            AzureSecretKind::AccountKey,
            SecretSource::File(dir.path().join("key")),
            Arc::default(),
        )
        .unwrap();
        assert!(matches!(*c.0.get(), AzureCredential::AccessKey(_)));
        write(&dir.path().join("sas"), "?sv=2022-11-02&sig=abc%2Bdef");
        let c = AzureCredentials::new(
            "t",
            AzureSecretKind::SasToken,
            SecretSource::File(dir.path().join("sas")),
            Arc::default(),
        )
        .unwrap();
        let AzureCredential::SASToken(pairs) = &*c.0.get() else { panic!() };
        assert!(pairs.iter().any(|(k, _)| k == "sig"));
        write(&dir.path().join("bad"), "not base64 !!");
        let err = AzureCredentials::new(
            "t",
            AzureSecretKind::AccountKey,
            SecretSource::File(dir.path().join("bad")),
            Arc::default(),
        )
        .unwrap_err();
        assert!(!err.contains("not base64 !!"), "{err}");
    }

    #[tokio::test]
    async fn gcs_tokens_are_signed_jwts_renewed_on_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let key = |pem: &str, id: &str| {
            serde_json::json!({"type": "service_account", "client_email": "svc@p.iam.gserviceaccount.com",
                               "private_key_id": id, "private_key": pem})
            .to_string()
        };
        let path = dir.path().join("sa.json");
        write(&path, &key(crate::cloud::crypto::tests::TEST_KEY, "k1"));
        let creds = GcsCredentials::new("t", path.clone(), Arc::default()).unwrap();
        let t1 = creds.get_credential().await.unwrap();
        let parts: Vec<&str> = t1.bearer.split('.').collect();
        assert_eq!(parts.len(), 3);
        let header: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["kid"], "k1");
        assert!(Arc::ptr_eq(&t1, &creds.get_credential().await.unwrap()), "cached");
        write(&path, &key(include_str!("testdata/rsa-test-key-2.pem"), "k2"));
        creds.account.state.lock().unwrap().next_check = Instant::now();
        let t2 = creds.get_credential().await.unwrap();
        let header: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(t2.bearer.split('.').next().unwrap()).unwrap()).unwrap();
        assert_eq!(header["kid"], "k2");
        // An emulator key: no OAuth at all.
        write(&path, r#"{"disable_oauth": true, "gcs_base_url": "http://127.0.0.1:1"}"#);
        creds.account.state.lock().unwrap().next_check = Instant::now();
        assert_eq!(creds.get_credential().await.unwrap().bearer, "");
        assert_eq!(creds.base_url().as_deref(), Some("http://127.0.0.1:1"));
    }
}
