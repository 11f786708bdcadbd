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
//! Such an issuer may instead have its tokens checked by the cluster (`token_review`): when
//! its keys are not reachable, each token goes to the Kubernetes TokenReview API (see
//! [`token_review`]) rather than through a JWKS. What is plainly wrong is still refused
//! without asking — a malformed token, `alg: none` or an algorithm not pinned for the
//! issuer, a token past its `exp`, or one for another audience (read from the unverified
//! payload: a pre-filter only, the API server does the real check) — and the API server's
//! answer must name a service account and, if it lists audiences, one of the issuer's.
//! Positive answers are cached for a few seconds, keyed by the token's hash.
//!
//! The web console signs people in with the authorization code flow ([`code_flow`]); the
//! ID token it gets is checked by [`OidcVerifier::verify_id_token`] with the same issuer
//! settings (keys, algorithms, claims, groups, Keycloak roles), but for the console's client
//! id as the audience and with the sign-in's `nonce`.
//!
//! Fetching keys and reviewing tokens block (HTTP or a file): call [`OidcVerifier::verify`]
//! off the async runtime (`spawn_blocking`).

pub mod code_flow;
pub mod keys;
pub mod token_review;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::Value;

use self::keys::{KeyCache, KeySource};
pub use self::token_review::TokenReviewConfig;
use self::token_review::{ReviewCache, TokenReviewClient};

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
    /// The Kubernetes API server refused the token in a TokenReview (its reason).
    #[error("the token was refused by the cluster: {0}")]
    Rejected(String),
    /// An ID token whose `nonce` is not the one its sign-in sent (a replayed or injected token).
    #[error("the ID token's nonce does not match the sign-in")]
    WrongNonce,
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
    /// Check this service-account issuer's tokens with the Kubernetes TokenReview API instead
    /// of its JWKS (for clusters whose issuer keys are not reachable); requires
    /// `service_accounts`. The JWKS settings are then unused.
    #[serde(default)]
    pub token_review: Option<TokenReviewConfig>,
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
    review: Option<Reviewer>,
}

/// An issuer's TokenReview client and its cache of positive answers.
struct Reviewer {
    client: TokenReviewClient,
    cache: ReviewCache,
}

/// Verifies tokens from the configured issuers.
pub struct OidcVerifier {
    issuers: Vec<Issuer>,
}

/// The unverified payload; nothing in it is trusted before the signature is checked.
fn peek_payload(token: &str) -> Result<Value, TokenError> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(TokenError::Malformed);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).map_err(|_| TokenError::Malformed)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)?;
    if !v.is_object() {
        return Err(TokenError::Malformed);
    }
    Ok(v)
}

/// The unverified `iss`, only to pick the issuer.
fn peek_issuer(token: &str) -> Result<String, TokenError> {
    let v = peek_payload(token)?;
    v.get("iss").and_then(Value::as_str).map(str::to_owned).ok_or(TokenError::MissingClaim("iss".into()))
}

/// The `aud` claim as a list (a string or an array of strings).
fn audiences_of(claims: &Value) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        other => strings(other).collect(),
    }
}

/// The service-account groups, plus any given.
fn service_account_groups(ns: &str, more: impl IntoIterator<Item = String>) -> BTreeSet<String> {
    let mut groups = BTreeSet::from(["system:serviceaccounts".to_owned(), format!("system:serviceaccounts:{ns}")]);
    groups.extend(more);
    groups
}

fn not_a_service_account() -> TokenError {
    TokenError::MissingClaim("sub (system:serviceaccount:<namespace>:<name>)".into())
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

/// Equal, compared in time independent of where they differ.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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
                let review = config
                    .token_review
                    .clone()
                    .map(|c| Reviewer { client: TokenReviewClient::new(c), cache: ReviewCache::default() });
                Issuer { config, keys, review }
            })
            .collect();
        Self { issuers }
    }

    /// Verify `token` at Unix time `now`. Blocking: it may fetch keys or ask the cluster.
    pub fn verify(&self, token: &str, now: i64) -> Result<TokenIdentity, TokenError> {
        self.verify_for(token, now, None).map(|(id, _)| id)
    }

    /// Verify an OpenID Connect ID token from the authorization code flow of client
    /// `client_id` at `issuer`: everything [`OidcVerifier::verify`] checks, with the audience
    /// `client_id` instead of the issuer's configured audiences (and `azp`, when present,
    /// `client_id` too), and its `nonce` the one the sign-in sent. Blocking: it may fetch keys.
    pub fn verify_id_token(
        &self,
        token: &str,
        now: i64,
        issuer: &str,
        client_id: &str,
        nonce: &str,
    ) -> Result<TokenIdentity, TokenError> {
        if peek_issuer(token)? != issuer {
            return Err(TokenError::UnknownIssuer);
        }
        let (id, claims) = self.verify_for(token, now, Some(client_id))?;
        if id.service_account.is_some() {
            return Err(TokenError::UnknownIssuer);
        }
        if claims.get("azp").and_then(Value::as_str).is_some_and(|azp| azp != client_id) {
            return Err(TokenError::WrongAudience);
        }
        let sent = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if !constant_time_eq(sent.as_bytes(), nonce.as_bytes()) || nonce.is_empty() {
            return Err(TokenError::WrongNonce);
        }
        Ok(id)
    }

    /// Verify `token`, for `audience` if given (else the issuer's audiences); its identity
    /// and its claims.
    fn verify_for(&self, token: &str, now: i64, audience: Option<&str>) -> Result<(TokenIdentity, Value), TokenError> {
        let iss = peek_issuer(token)?;
        let issuer = self.issuers.iter().find(|i| i.config.issuer == iss).ok_or(TokenError::UnknownIssuer)?;
        let cfg = &issuer.config;
        // An unknown algorithm (`none` among them) fails to parse: refused like a disallowed one.
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::AlgorithmNotAllowed)?;
        if !cfg.algorithms.contains(&header.alg) {
            return Err(TokenError::AlgorithmNotAllowed);
        }
        if let Some(reviewer) = &issuer.review {
            if audience.is_some() {
                // The cluster reviews service-account tokens, never a sign-in's ID token.
                return Err(TokenError::UnknownIssuer);
            }
            return Self::review(cfg, reviewer, token, now).map(|id| (id, Value::Null));
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = issuer.keys.key(&kid)?;

        let mut v = Validation::new(header.alg);
        v.algorithms = vec![header.alg];
        v.set_issuer(&[&cfg.issuer]);
        match audience {
            Some(a) => v.set_audience(&[a]),
            None => v.set_audience(&cfg.audiences),
        }
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
            let (ns, sa) = service_account(&subject).ok_or_else(not_a_service_account)?;
            let id = TokenIdentity {
                issuer: cfg.issuer.clone(),
                username: ns.to_owned(),
                email: None,
                groups: service_account_groups(ns, []),
                expires_at: claims.get("exp").and_then(Value::as_i64).unwrap_or(0),
                service_account: Some((ns.to_owned(), sa.to_owned())),
                subject: subject.clone(),
            };
            return Ok((id, claims));
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
        let id = TokenIdentity {
            issuer: cfg.issuer.clone(),
            subject,
            username,
            email: string_claim(&claims, "email"),
            groups,
            expires_at: claims.get("exp").and_then(Value::as_i64).unwrap_or(0),
            service_account: None,
        };
        Ok((id, claims))
    }

    /// The TokenReview path: local pre-filters on the unverified payload, the cache, then the
    /// API server.
    fn review(cfg: &IssuerConfig, reviewer: &Reviewer, token: &str, now: i64) -> Result<TokenIdentity, TokenError> {
        let claims = peek_payload(token)?;
        let leeway = cfg.leeway_seconds as i64;
        let exp = claims.get("exp").and_then(Value::as_i64).ok_or_else(|| TokenError::MissingClaim("exp".into()))?;
        if exp < now - leeway {
            return Err(TokenError::Expired);
        }
        if claims.get("nbf").and_then(Value::as_i64).is_some_and(|nbf| nbf > now + leeway) {
            return Err(TokenError::NotYetValid);
        }
        if !audiences_of(&claims).iter().any(|a| cfg.audiences.contains(a)) {
            return Err(TokenError::WrongAudience);
        }
        let key = token_review::token_key(token);
        if let Some(id) = reviewer.cache.get(&key) {
            return Ok(id);
        }
        let review = reviewer.client.review(token, &cfg.audiences)?;
        if review.audiences.as_ref().is_some_and(|auds| !auds.iter().any(|a| cfg.audiences.contains(a))) {
            return Err(TokenError::WrongAudience);
        }
        let (ns, sa) = service_account(&review.username).ok_or_else(|| {
            TokenError::MissingClaim("status.user.username (system:serviceaccount:<namespace>:<name>)".into())
        })?;
        let id = TokenIdentity {
            issuer: cfg.issuer.clone(),
            username: ns.to_owned(),
            email: None,
            groups: service_account_groups(ns, review.groups),
            expires_at: exp,
            service_account: Some((ns.to_owned(), sa.to_owned())),
            subject: review.username.clone(),
        };
        // Never cached past the token's own expiry.
        let cache_for = reviewer.client.config().cache_seconds.min(u64::try_from(exp - now).unwrap_or(0));
        reviewer.cache.put(key, id.clone(), Duration::from_secs(cache_for));
        Ok(id)
    }
}
