//! OpenID Connect bearer tokens: verify a JWT from one of the configured issuers and say who
//! it names.
//!
//! For each issuer the configuration pins the accepted algorithms and audiences and says
//! which claims carry the user name and groups (Keycloak's defaults: `preferred_username`,
//! `groups`, and optionally its realm and client roles). Verification checks, in order: the
//! token's shape, its issuer (one we know), its algorithm (one pinned for that issuer —
//! `none` never is), its key (from the issuer's JWKS, see [`keys`]), its signature, `exp` /
//! `nbf` / `iat` with a small leeway, and its audience.
//!
//! An issuer marked `service_accounts` is a Kubernetes cluster's: its tokens name a pod's
//! service account, and the principal is the account's namespace (the profile).
//!
//! Fetching keys blocks (HTTP or a file): call [`OidcVerifier::verify`] off the async
//! runtime (`spawn_blocking`).

pub mod keys;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::Value;

use self::keys::{KeyCache, KeySource};

/// Why a token was refused. Clients get a plain 401/403; the variant goes to the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token's issuer is not configured")]
    UnknownIssuer,
    #[error("the token's algorithm is not allowed for its issuer")]
    AlgorithmNotAllowed,
    #[error("the token names a signing key the issuer does not publish")]
    UnknownKey,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token is not meant for this audience")]
    WrongAudience,
    #[error("the token lacks the claim {0:?}")]
    MissingClaim(String),
    #[error("the issuer's signing keys are unavailable: {0}")]
    KeysUnavailable(String),
}

fn default_algorithms() -> Vec<Algorithm> {
    vec![Algorithm::RS256]
}
fn default_username_claim() -> String {
    "preferred_username".into()
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_leeway() -> u64 {
    60
}
fn default_jwks_ttl() -> u64 {
    3600
}

/// One trusted issuer.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IssuerConfig {
    /// The issuer exactly as tokens carry it in `iss`.
    pub issuer: String,
    /// Accepted audiences: a token's `aud` must contain one of them.
    pub audiences: Vec<String>,
    /// Where the signing keys are: a JWKS URL (default: OIDC discovery on the issuer).
    pub jwks_uri: Option<String>,
    /// Or a JWKS file (for example a cluster's service-account issuer keys).
    pub jwks_file: Option<PathBuf>,
    /// The accepted signature algorithms (default `["RS256"]`).
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// The claim holding the user name (default `preferred_username`).
    #[serde(default = "default_username_claim")]
    pub username_claim: String,
    /// The claim holding the groups (default `groups`); a leading `/` (Keycloak's group
    /// paths) is removed.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    /// Count Keycloak realm roles (`realm_access.roles`) as groups.
    #[serde(default)]
    pub realm_roles: bool,
    /// Count these clients' Keycloak roles (`resource_access.<client>.roles`) as groups.
    #[serde(default)]
    pub client_roles: Vec<String>,
    /// Clock leeway for `exp`, `nbf` and `iat`, in seconds (default 60).
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
    /// How long fetched keys are trusted before a refetch, in seconds (default 3600).
    #[serde(default = "default_jwks_ttl")]
    pub jwks_ttl_seconds: u64,
    /// This issuer is a Kubernetes cluster's service-account issuer: a token's `sub`,
    /// `system:serviceaccount:<namespace>:<name>`, names the profile principal `<namespace>`
    /// (pod-level credentials), with the groups `system:serviceaccounts` and
    /// `system:serviceaccounts:<namespace>`.
    #[serde(default)]
    pub service_accounts: bool,
}

/// Who a verified token names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity {
    pub issuer: String,
    pub subject: String,
    pub username: String,
    pub email: Option<String>,
    /// Groups, plus the configured Keycloak roles.
    pub groups: BTreeSet<String>,
    /// `exp`, Unix seconds.
    pub expires_at: i64,
    /// For a service-account token: its namespace and service account.
    pub service_account: Option<(String, String)>,
}

struct Issuer {
    config: IssuerConfig,
    keys: KeyCache,
}

/// Verifies tokens from the configured issuers.
pub struct OidcVerifier {
    issuers: Vec<Issuer>,
}

/// The unverified payload, only to pick the issuer; nothing is trusted before the signature.
fn peek_issuer(token: &str) -> Result<String, TokenError> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Malformed)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    v.get("iss").and_then(Value::as_str).map(str::to_owned).ok_or(TokenError::MissingClaim("iss".into()))
}

/// `system:serviceaccount:<namespace>:<name>` → (namespace, name).
fn service_account(sub: &str) -> Option<(&str, &str)> {
    let rest = sub.strip_prefix("system:serviceaccount:")?;
    let (ns, sa) = rest.split_once(':')?;
    (!ns.is_empty() && !sa.is_empty() && !sa.contains(':')).then_some((ns, sa))
}

fn string_claim(claims: &Value, name: &str) -> Option<String> {
    claims.get(name).and_then(Value::as_str).map(str::to_owned)
}

fn strings(v: Option<&Value>) -> impl Iterator<Item = String> + '_ {
    v.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned)
}

impl OidcVerifier {
    pub fn new(configs: Vec<IssuerConfig>) -> Self {
        Self::with_min_refetch(configs, keys::MIN_REFETCH)
    }

    /// As [`OidcVerifier::new`], refetching keys for unknown ids at most once per `min_refetch`.
    pub fn with_min_refetch(configs: Vec<IssuerConfig>, min_refetch: Duration) -> Self {
        let issuers = configs
            .into_iter()
            .map(|config| {
                let source = match (&config.jwks_file, &config.jwks_uri) {
                    (Some(f), _) => KeySource::File(f.clone()),
                    (None, Some(u)) => KeySource::Url(u.clone()),
                    (None, None) => KeySource::Discovery { issuer: config.issuer.clone() },
                };
                let keys = KeyCache::new(source, Duration::from_secs(config.jwks_ttl_seconds), min_refetch);
                Issuer { config, keys }
            })
            .collect();
        Self { issuers }
    }

    /// Verify `token` at Unix time `now`. Blocking: it may fetch keys.
    pub fn verify(&self, token: &str, now: i64) -> Result<TokenIdentity, TokenError> {
        let iss = peek_issuer(token)?;
        let issuer = self.issuers.iter().find(|i| i.config.issuer == iss).ok_or(TokenError::UnknownIssuer)?;
        let cfg = &issuer.config;
        // An unknown algorithm (`none` among them) fails to parse: refused like a disallowed one.
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::AlgorithmNotAllowed)?;
        if !cfg.algorithms.contains(&header.alg) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = issuer.keys.key(&kid)?;

        let mut v = Validation::new(header.alg);
        v.algorithms = vec![header.alg];
        v.set_issuer(&[&cfg.issuer]);
        v.set_audience(&cfg.audiences);
        v.leeway = cfg.leeway_seconds;
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Value>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::ExpiredSignature => TokenError::Expired,
                K::ImmatureSignature => TokenError::NotYetValid,
                K::InvalidAudience => TokenError::WrongAudience,
                K::InvalidIssuer => TokenError::UnknownIssuer,
                K::MissingRequiredClaim(c) => TokenError::MissingClaim(c.clone()),
                K::InvalidAlgorithm => TokenError::AlgorithmNotAllowed,
                K::InvalidSignature => TokenError::BadSignature,
                _ => TokenError::Malformed,
            }
        })?;
        let claims = data.claims;
        // jsonwebtoken leaves `iat` alone: refuse tokens issued in the future.
        if claims.get("iat").and_then(Value::as_i64).is_some_and(|iat| iat > now + cfg.leeway_seconds as i64) {
            return Err(TokenError::NotYetValid);
        }
        let subject = string_claim(&claims, "sub").unwrap_or_default();
        if cfg.service_accounts {
            let (ns, sa) = service_account(&subject)
                .ok_or_else(|| TokenError::MissingClaim("sub (system:serviceaccount:<namespace>:<name>)".into()))?;
            let groups = BTreeSet::from(["system:serviceaccounts".to_owned(), format!("system:serviceaccounts:{ns}")]);
            return Ok(TokenIdentity {
                issuer: cfg.issuer.clone(),
                username: ns.to_owned(),
                email: None,
                groups,
                expires_at: claims.get("exp").and_then(Value::as_i64).unwrap_or(0),
                service_account: Some((ns.to_owned(), sa.to_owned())),
                subject,
            });
        }
        let username = string_claim(&claims, &cfg.username_claim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| TokenError::MissingClaim(cfg.username_claim.clone()))?;
        let mut groups: BTreeSet<String> =
            strings(claims.get(&cfg.groups_claim)).map(|g| g.trim_start_matches('/').to_owned()).collect();
        if cfg.realm_roles {
            groups.extend(strings(claims.pointer("/realm_access/roles")));
        }
        for client in &cfg.client_roles {
            let access = claims.get("resource_access").and_then(|r| r.get(client));
            groups.extend(strings(access.and_then(|a| a.get("roles"))));
        }
        Ok(TokenIdentity {
            issuer: cfg.issuer.clone(),
            subject,
            username,
            email: string_claim(&claims, "email"),
            groups,
            expires_at: claims.get("exp").and_then(Value::as_i64).unwrap_or(0),
            service_account: None,
        })
    }
}
