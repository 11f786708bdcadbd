//! An issuer's signing keys: fetched from its JWKS (by OIDC discovery, a URL, or a file),
//! cached, refreshed on a TTL, and refetched when a token names a key id the cache does not
//! know — at most once per [`MIN_REFETCH`] (by default), so a stream of tokens with made-up `kid`s cannot
//! turn coffer into a load generator against the identity provider.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};

use super::TokenError;

/// The least time between two fetches caused by unknown key ids (the default).
pub const MIN_REFETCH: Duration = Duration::from_secs(10);
/// How long an HTTP fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where an issuer's JWKS comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `<issuer>/.well-known/openid-configuration`, then its `jwks_uri`.
    Discovery { issuer: String },
    /// A JWKS URL.
    Url(String),
    /// A JWKS file (a mounted ConfigMap, the cluster's service-account keys).
    File(PathBuf),
}

fn unavailable(what: impl std::fmt::Display) -> TokenError {
    TokenError::KeysUnavailable(what.to_string())
}

fn get_json(url: &str) -> Result<serde_json::Value, TokenError> {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(FETCH_TIMEOUT)).http_status_as_error(true).build().into();
    let mut resp = agent.get(url).call().map_err(|e| unavailable(format_args!("GET {url}: {e}")))?;
    let text = resp
        .body_mut()
        .with_config()
        .limit(1024 * 1024)
        .read_to_string()
        .map_err(|e| unavailable(format_args!("GET {url}: {e}")))?;
    serde_json::from_str(&text).map_err(|e| unavailable(format_args!("GET {url}: {e}")))
}

impl KeySource {
    /// Fetch the JWKS document.
    pub fn fetch(&self) -> Result<serde_json::Value, TokenError> {
        match self {
            KeySource::Discovery { issuer } => {
                let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
                let doc = get_json(&url)?;
                let jwks_uri = doc
                    .get("jwks_uri")
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| unavailable(format_args!("{url} names no jwks_uri")))?;
                get_json(jwks_uri)
            }
            KeySource::Url(url) => get_json(url),
            KeySource::File(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| unavailable(format_args!("reading {}: {e}", path.display())))?;
                serde_json::from_str(&text).map_err(|e| unavailable(format_args!("parsing {}: {e}", path.display())))
            }
        }
    }
}

/// The signature keys of a JWKS document, by key id. Keys meant for encryption, and keys
/// of types this build cannot verify with, are skipped one by one (Keycloak publishes
/// `RSA-OAEP` encryption keys beside its signing keys).
pub fn signing_keys(doc: &serde_json::Value) -> HashMap<String, DecodingKey> {
    let mut out = HashMap::new();
    let Some(keys) = doc.get("keys").and_then(|k| k.as_array()) else { return out };
    for raw in keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(raw.clone()) else { continue };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let Some(kid) = jwk.common.key_id.clone() else { continue };
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            out.insert(kid, key);
        }
    }
    out
}

struct State {
    keys: HashMap<String, DecodingKey>,
    /// When the keys were last fetched successfully.
    fetched: Option<Instant>,
    /// When a fetch was last attempted (successful or not).
    attempted: Option<Instant>,
}

/// The cached keys of one issuer.
pub struct KeyCache {
    source: KeySource,
    ttl: Duration,
    min_refetch: Duration,
    state: Mutex<State>,
}

impl KeyCache {
    /// Keys from `source`, trusted for `ttl`, refetched for unknown ids at most once per
    /// `min_refetch`.
    pub fn new(source: KeySource, ttl: Duration, min_refetch: Duration) -> Self {
        let state = Mutex::new(State { keys: HashMap::new(), fetched: None, attempted: None });
        Self { source, ttl, min_refetch, state }
    }

    /// The key with this id. Fetches when the cache is empty or older than the TTL, or —
    /// rate-limited — when the id is unknown (a rotation). Blocking (it may fetch).
    pub fn key(&self, kid: &str) -> Result<DecodingKey, TokenError> {
        let now = Instant::now();
        let (stale, known, may_refetch) = {
            let s = self.state.lock().unwrap();
            let stale = s.fetched.is_none_or(|t| now.duration_since(t) >= self.ttl);
            let may = s.attempted.is_none_or(|t| now.duration_since(t) >= self.min_refetch);
            (stale, s.keys.get(kid).cloned(), may)
        };
        if let Some(k) = known.as_ref().filter(|_| !stale) {
            return Ok(k.clone());
        }
        if (stale || may_refetch)
            && let Err(e) = self.refresh(now)
        {
            // Keep serving a key we have while the provider is briefly unreachable.
            return match known {
                Some(k) => {
                    tracing::warn!(error = %e, "refreshing signing keys failed; using the cached ones");
                    Ok(k)
                }
                None => Err(e),
            };
        }
        self.state.lock().unwrap().keys.get(kid).cloned().ok_or(TokenError::UnknownKey)
    }

    fn refresh(&self, now: Instant) -> Result<(), TokenError> {
        self.state.lock().unwrap().attempted = Some(now);
        let keys = signing_keys(&self.source.fetch()?);
        tracing::info!(source = ?self.source, keys = keys.len(), "fetched signing keys");
        let mut s = self.state.lock().unwrap();
        s.keys = keys;
        s.fetched = Some(now);
        Ok(())
    }
}
