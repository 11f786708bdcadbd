//! The webhook's certificate: PEM files (cert-manager's `tls.crt` and `tls.key` mounted from a
//! Secret), re-read when they change, without a restart.
//!
//! [`ReloadingCert`] is the rustls certificate resolver. On a handshake, at most once per
//! [`TlsFiles::check_every`], it compares both files' modification time, length and inode
//! with those of the pair it serves (a Secret update swaps a symlink to new files, so the inode
//! changes even when nothing else does). When they differ it loads the new pair; a pair that
//! does not load (unreadable, not PEM, no certificate, or a key that is not the certificate's)
//! is refused with a warning and the previous certificate is kept — and that broken pair is
//! not retried until the files change again.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Where the certificate and its key are, and how often to look for new ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain (PEM), leaf first.
    pub cert: PathBuf,
    /// The private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// The files are looked at no more often than this (default 5 s).
    pub check_every: Duration,
}

impl TlsFiles {
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self { cert: cert.into(), key: key.into(), check_every: Duration::from_secs(5) }
    }

    /// `tls.crt` and `tls.key` in `dir`: a mounted `kubernetes.io/tls` Secret.
    pub fn in_dir(dir: impl AsRef<Path>) -> Self {
        Self::new(dir.as_ref().join("tls.crt"), dir.as_ref().join("tls.key"))
    }

    /// The same files, looked at no more often than `every`.
    pub fn check_every(mut self, every: Duration) -> Self {
        self.check_every = every;
        self
    }
}

/// A certificate pair that could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Pem { path: PathBuf, message: String },
    #[error("the key {key} does not go with the certificate {cert}: {source}")]
    Pair { cert: PathBuf, key: PathBuf, source: rustls::Error },
}

/// What identifies one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn file_stamp(path: &Path) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&meta);
    #[cfg(not(unix))]
    let inode = 0;
    Some(FileStamp { modified: meta.modified().ok(), len: meta.len(), inode })
}

type Stamp = (Option<FileStamp>, Option<FileStamp>);

fn stamp(files: &TlsFiles) -> Stamp {
    (file_stamp(&files.cert), file_stamp(&files.key))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

/// Load and check a certificate pair.
fn load(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let cert_pem = read(&files.cert)?;
    let key_pem = read(&files.key)?;
    let pem_error = |path: &Path, message: String| TlsError::Pem { path: path.to_owned(), message };
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(&files.cert, e.to_string()))?;
    if chain.is_empty() {
        return Err(pem_error(&files.cert, "no certificate in the file".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| pem_error(&files.key, e.to_string()))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|source| TlsError::Pair {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    })
}

struct State {
    current: Arc<CertifiedKey>,
    /// The files' stamp when `current` was loaded.
    loaded: Stamp,
    /// The stamp of a pair that failed to load (not retried while unchanged).
    refused: Option<Stamp>,
    checked: Instant,
}

/// A [`ResolvesServerCert`] serving the pair in [`TlsFiles`], reloaded when the files change.
pub struct ReloadingCert {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    state: Mutex<State>,
}

impl fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingCert").field("files", &self.files).finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Load the pair now (an error if it does not load: the server must not start without a
    /// certificate).
    pub fn load(files: TlsFiles, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let loaded = stamp(&files);
        let current = Arc::new(load(&files, &provider)?);
        let state = Mutex::new(State { current, loaded, refused: None, checked: Instant::now() });
        Ok(Self { files, provider, state })
    }

    /// The pair to serve, after looking for new files if the last look is old enough.
    pub fn current(&self) -> Arc<CertifiedKey> {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if state.checked.elapsed() >= self.files.check_every {
            state.checked = Instant::now();
            let now = stamp(&self.files);
            if now != state.loaded && Some(now) != state.refused {
                match load(&self.files, &self.provider) {
                    Ok(pair) => {
                        tracing::info!(cert = %self.files.cert.display(), "webhook TLS certificate reloaded");
                        state.current = Arc::new(pair);
                        state.loaded = now;
                        state.refused = None;
                    }
                    Err(e) => {
                        tracing::warn!("new webhook TLS certificate refused, keeping the previous one: {e}");
                        state.refused = Some(now);
                    }
                }
            }
        }
        state.current.clone()
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}
