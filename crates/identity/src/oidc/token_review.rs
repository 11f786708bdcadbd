//! Service-account tokens checked by the cluster itself: a `TokenReview` posted to the
//! Kubernetes API server (`POST /apis/authentication.k8s.io/v1/tokenreviews`), for clusters
//! whose service-account issuer keys coffer cannot reach.
//!
//! The request carries the token under review and the issuer's audiences; it is
//! authenticated with the gateway pod's own service-account token, read from its file on
//! every call because the kubelet rotates it. Over HTTPS the API server's certificate is
//! checked against a PEM bundle (by default the pod's `ca.crt`), also re-read on every call
//! so that a rotated bundle is picked up. The gateway's service account needs `create` on
//! `tokenreviews` in `authentication.k8s.io` (the `system:auth-delegator` ClusterRole).
//!
//! Positive answers are cached briefly ([`ReviewCache`]), keyed by the SHA-256 of the
//! token. No error message built here ever contains the token or the gateway's credential.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{TokenError, TokenIdentity};

/// The API server as a pod sees it.
pub const DEFAULT_API_SERVER: &str = "https://kubernetes.default.svc";
/// The pod's own (projected, rotated) service-account token.
pub const DEFAULT_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// The cluster's CA bundle as mounted in every pod.
pub const DEFAULT_CA_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
/// The path of the TokenReview collection.
pub const TOKEN_REVIEWS_PATH: &str = "/apis/authentication.k8s.io/v1/tokenreviews";
/// The most positive reviews kept; past it, expired entries are dropped, and if the cache is
/// still full new answers are not cached until some expire.
pub const MAX_CACHED_REVIEWS: usize = 10_000;
/// The largest response body read from the API server.
const MAX_RESPONSE: u64 = 1024 * 1024;

fn default_api_server() -> String {
    DEFAULT_API_SERVER.into()
}
fn default_token_file() -> PathBuf {
    DEFAULT_TOKEN_FILE.into()
}
fn default_cache_seconds() -> u64 {
    10
}
fn default_timeout_seconds() -> u64 {
    5
}

/// How to reach the Kubernetes TokenReview API (`token_review` of an issuer).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TokenReviewConfig {
    /// The API server's base URL (default `https://kubernetes.default.svc`).
    #[serde(default = "default_api_server")]
    pub api_server: String,
    /// The gateway's own service-account token, sent as its bearer credential; read again on
    /// every review, as the kubelet rotates it (default
    /// `/var/run/secrets/kubernetes.io/serviceaccount/token`).
    #[serde(default = "default_token_file")]
    pub token_file: PathBuf,
    /// The PEM bundle trusted for the API server's certificate (default, for an `https`
    /// API server, `/var/run/secrets/kubernetes.io/serviceaccount/ca.crt`).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// How long a positive review is cached, in seconds, never past the token's own `exp`
    /// (default 10; 0 disables the cache). Refusals are never cached.
    #[serde(default = "default_cache_seconds")]
    pub cache_seconds: u64,
    /// How long one review may take, in seconds (default 5).
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u64,
}

impl Default for TokenReviewConfig {
    fn default() -> Self {
        Self {
            api_server: default_api_server(),
            token_file: default_token_file(),
            ca_file: None,
            cache_seconds: default_cache_seconds(),
            timeout_seconds: default_timeout_seconds(),
        }
    }
}

impl TokenReviewConfig {
    /// The CA bundle in effect: the configured one, else the pod's for an `https` API server.
    pub fn effective_ca_file(&self) -> Option<PathBuf> {
        self.ca_file.clone().or_else(|| self.api_server.starts_with("https://").then(|| DEFAULT_CA_FILE.into()))
    }

    /// The full URL reviews are posted to.
    pub fn url(&self) -> String {
        format!("{}{TOKEN_REVIEWS_PATH}", self.api_server.trim_end_matches('/'))
    }
}

/// What the API server said about an authenticated token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// `status.user.username`.
    pub username: String,
    /// `status.user.groups`.
    pub groups: Vec<String>,
    /// `status.audiences`, when the API server returned any.
    pub audiences: Option<Vec<String>>,
}

#[derive(Deserialize, Default)]
struct ReviewResponse {
    #[serde(default)]
    status: ReviewStatus,
}

#[derive(Deserialize, Default)]
struct ReviewStatus {
    #[serde(default)]
    authenticated: bool,
    #[serde(default)]
    user: ReviewUser,
    #[serde(default)]
    audiences: Option<Vec<String>>,
    #[serde(default)]
    error: String,
}

#[derive(Deserialize, Default)]
struct ReviewUser {
    #[serde(default)]
    username: String,
    #[serde(default)]
    groups: Vec<String>,
}

fn unavailable(what: impl std::fmt::Display) -> TokenError {
    TokenError::KeysUnavailable(what.to_string())
}

/// Posts TokenReviews for one issuer.
pub struct TokenReviewClient {
    config: TokenReviewConfig,
    /// The agent, with the CA bundle it was built for (rebuilt when the file changes).
    agent: Mutex<Option<(Option<Vec<u8>>, ureq::Agent)>>,
}

impl TokenReviewClient {
    /// A client; nothing is read or checked before the first review.
    pub fn new(config: TokenReviewConfig) -> Self {
        Self { config, agent: Mutex::new(None) }
    }

    pub fn config(&self) -> &TokenReviewConfig {
        &self.config
    }

    /// An agent trusting the current CA bundle.
    fn agent(&self) -> Result<ureq::Agent, TokenError> {
        let ca = match self.config.effective_ca_file() {
            Some(path) => {
                Some(std::fs::read(&path).map_err(|e| unavailable(format_args!("reading {}: {e}", path.display())))?)
            }
            None => None,
        };
        let mut cached = self.agent.lock().unwrap();
        if let Some((built_for, agent)) = cached.as_ref()
            && *built_for == ca
        {
            return Ok(agent.clone());
        }
        let mut builder = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(self.config.timeout_seconds)))
            .http_status_as_error(false)
            // The API server never redirects a review; a redirect must not carry our credential.
            .max_redirects(0);
        if let Some(pem) = &ca {
            let certs = ureq::tls::parse_pem(pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(Ok(c)),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| unavailable(format_args!("parsing the CA bundle: {e}")))?;
            if certs.is_empty() {
                return Err(unavailable("the CA bundle holds no certificate"));
            }
            let tls = ureq::tls::TlsConfig::builder().root_certs(ureq::tls::RootCerts::new_with_certs(&certs)).build();
            builder = builder.tls_config(tls);
        }
        let agent: ureq::Agent = builder.build().into();
        *cached = Some((ca, agent.clone()));
        Ok(agent)
    }

    /// Ask the API server about `token` for these audiences. Blocking. `Ok` only when it
    /// authenticated the token; [`TokenError::Rejected`] when it did not; and
    /// [`TokenError::KeysUnavailable`] when it could not be asked.
    pub fn review(&self, token: &str, audiences: &[String]) -> Result<Review, TokenError> {
        let path = &self.config.token_file;
        let credential = std::fs::read_to_string(path)
            .map_err(|e| unavailable(format_args!("reading the gateway's token {}: {e}", path.display())))?;
        let credential = credential.trim();
        if credential.is_empty() {
            return Err(unavailable(format_args!("the gateway's token {} is empty", path.display())));
        }
        let agent = self.agent()?;
        let url = self.config.url();
        let body = json!({
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": audiences},
        })
        .to_string();
        // Error texts name the URL only: never the token nor the credential.
        let fail = |e: &dyn std::fmt::Display| unavailable(format_args!("POST {url}: {e}"));
        let mut resp = agent
            .post(&url)
            .header("Authorization", format!("Bearer {credential}"))
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .send(body)
            .map_err(|e| fail(&e))?;
        let status = resp.status();
        let text = resp.body_mut().with_config().limit(MAX_RESPONSE).read_to_string().map_err(|e| fail(&e))?;
        if !status.is_success() {
            // A Kubernetes `Status` says why (RBAC, most often); keep its message if it is safe.
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .filter(|m| !m.contains(token) && !m.contains(credential))
                .map(|m| format!(": {}", m.chars().take(300).collect::<String>()))
                .unwrap_or_default();
            return Err(fail(&format_args!("HTTP {}{message}", status.as_u16())));
        }
        let parsed: ReviewResponse = serde_json::from_str(&text).map_err(|e| fail(&format_args!("the answer: {e}")))?;
        let st = parsed.status;
        if !st.error.is_empty() {
            let mut error = st.error;
            if error.contains(token) {
                error = "the API server refused the token".into();
            }
            return Err(TokenError::Rejected(error));
        }
        if !st.authenticated {
            return Err(TokenError::Rejected("the API server did not authenticate the token".into()));
        }
        Ok(Review { username: st.user.username, groups: st.user.groups, audiences: st.audiences })
    }
}

/// The SHA-256 of a token: the cache key, so that the cache holds no token.
pub fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Positive reviews, by token hash, each until its deadline.
#[derive(Default)]
pub struct ReviewCache {
    entries: Mutex<HashMap<[u8; 32], (TokenIdentity, Instant)>>,
}

impl ReviewCache {
    /// The identity cached for this token, if still fresh.
    pub fn get(&self, key: &[u8; 32]) -> Option<TokenIdentity> {
        let mut entries = self.entries.lock().unwrap();
        match entries.get(key) {
            Some((id, until)) if Instant::now() < *until => Some(id.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Cache `id` for `ttl` (nothing for a zero `ttl`).
    pub fn put(&self, key: [u8; 32], id: TokenIdentity, ttl: Duration) {
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap();
        if entries.len() >= MAX_CACHED_REVIEWS {
            entries.retain(|_, (_, until)| now < *until);
            if entries.len() >= MAX_CACHED_REVIEWS {
                return;
            }
        }
        entries.insert(key, (id, now + ttl));
    }

    /// How many entries are held (fresh or not).
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> TokenIdentity {
        TokenIdentity {
            issuer: "i".into(),
            subject: format!("system:serviceaccount:ns:sa{n}"),
            username: "ns".into(),
            email: None,
            groups: Default::default(),
            expires_at: 0,
            service_account: Some(("ns".into(), format!("sa{n}"))),
        }
    }

    #[test]
    fn the_cache_is_bounded_and_drops_expired_entries_first() {
        let cache = ReviewCache::default();
        for n in 0..MAX_CACHED_REVIEWS {
            let ttl = if n % 2 == 0 { Duration::from_nanos(1) } else { Duration::from_secs(60) };
            cache.put(token_key(&n.to_string()), id(n), ttl);
        }
        assert_eq!(cache.len(), MAX_CACHED_REVIEWS);
        std::thread::sleep(Duration::from_millis(2));
        cache.put(token_key("new"), id(0), Duration::from_secs(60));
        assert_eq!(cache.len(), MAX_CACHED_REVIEWS / 2 + 1);
        assert!(cache.get(&token_key("new")).is_some());
        assert!(cache.get(&token_key("1")).is_some());
        assert!(cache.get(&token_key("0")).is_none());
    }

    #[test]
    fn a_full_cache_of_fresh_entries_takes_no_more() {
        let cache = ReviewCache::default();
        for n in 0..MAX_CACHED_REVIEWS {
            cache.put(token_key(&n.to_string()), id(n), Duration::from_secs(60));
        }
        cache.put(token_key("new"), id(0), Duration::from_secs(60));
        assert_eq!(cache.len(), MAX_CACHED_REVIEWS);
        assert!(cache.get(&token_key("new")).is_none());
    }

    #[test]
    fn the_ca_bundle_defaults_to_the_pods_for_https_only() {
        let mut c = TokenReviewConfig::default();
        assert_eq!(c.effective_ca_file(), Some(PathBuf::from(DEFAULT_CA_FILE)));
        assert_eq!(c.url(), "https://kubernetes.default.svc/apis/authentication.k8s.io/v1/tokenreviews");
        c.api_server = "http://127.0.0.1:8080/".into();
        assert_eq!(c.effective_ca_file(), None);
        assert_eq!(c.url(), "http://127.0.0.1:8080/apis/authentication.k8s.io/v1/tokenreviews");
        c.ca_file = Some("/etc/ca.pem".into());
        assert_eq!(c.effective_ca_file(), Some(PathBuf::from("/etc/ca.pem")));
    }

    #[test]
    fn toml_defaults_and_unknown_fields() {
        let c: TokenReviewConfig = serde_json::from_value(json!({})).unwrap();
        assert_eq!(c, TokenReviewConfig::default());
        assert!(serde_json::from_value::<TokenReviewConfig>(json!({"api_sever": "x"})).is_err());
    }
}
