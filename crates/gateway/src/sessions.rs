//! Federation: OIDC (and service-account) tokens exchanged for temporary SigV4 credentials
//! — STS `AssumeRoleWithWebIdentity` — and the callers behind those credentials.
//!
//! The token names a user and groups; the configured group → classification map gives the
//! clearance (`unclassified` always). The session carries that principal and an optional
//! narrowing; grants are still read live, so a removed grant stops a session at once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use coffer_core::{BucketName, Classification, Narrowing, Principal};
use coffer_identity::console::{CookieError, WebSession};
use coffer_identity::session::{self, SessionCredentials};
use coffer_identity::{OidcVerifier, TokenError, TokenIdentity};
use serde::Deserialize;

use crate::{Caller, Error, Gateway, Result, now};

/// The clearance of principals that come from outside the metadata store (tokens, headers):
/// `unclassified`, plus what their groups and (for service accounts) namespace give.
#[derive(Debug, Clone, Default)]
pub struct Clearances {
    /// Group → classifications its members are cleared for.
    pub groups: BTreeMap<String, Vec<Classification>>,
    /// Namespace → classifications its service accounts (the profile) are cleared for.
    pub namespaces: BTreeMap<String, Vec<Classification>>,
    /// Members of these groups are platform admins (admin on every bucket; clearance still
    /// applies).
    pub admin_groups: BTreeSet<String>,
}

/// May an identity from outside (a token, headers) use this name? Names of the form
/// `project:<name>` own projects' buckets and are never a person's.
pub fn external_name_allowed(name: &str) -> bool {
    !name.starts_with("project:")
}

impl Clearances {
    /// The principal of an externally authenticated user or service account.
    pub fn principal(&self, name: &str, groups: &BTreeSet<String>, namespace: Option<&str>) -> Principal {
        let mut clearance = BTreeSet::from([Classification::unclassified()]);
        for g in groups {
            if let Some(cs) = self.groups.get(g) {
                clearance.extend(cs.iter().cloned());
            }
        }
        if let Some(cs) = namespace.and_then(|ns| self.namespaces.get(ns)) {
            clearance.extend(cs.iter().cloned());
        }
        let is_admin = groups.iter().any(|g| self.admin_groups.contains(g));
        Principal { name: name.to_owned(), groups: groups.clone(), clearance, is_admin }
    }
}

/// What federation needs: the token verifier and the rules for sessions.
pub struct Federation {
    pub verifier: Arc<OidcVerifier>,
    /// Session length when the request names none, in seconds.
    pub default_duration: i64,
    /// The longest session, in seconds.
    pub max_duration: i64,
}

/// The least session AWS STS grants, in seconds.
pub const MIN_DURATION: i64 = 900;

/// A session policy: coffer's narrowing, as JSON in the `Policy` parameter.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SessionPolicy {
    #[serde(default)]
    pub read_only: bool,
    pub buckets: Option<Vec<String>>,
    pub classification: Option<String>,
}

/// Why an exchange was refused, in STS's terms.
#[derive(Debug, thiserror::Error)]
pub enum StsError {
    #[error("{0}")]
    InvalidIdentityToken(String),
    #[error("{0}")]
    ExpiredToken(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    MalformedPolicy(String),
    #[error("{0}")]
    IdpCommunication(String),
    #[error("web identity federation is not configured")]
    NotConfigured,
}

/// Verify a bearer token off the runtime (fetching keys blocks).
async fn verify_token(verifier: &Arc<OidcVerifier>, token: &str, now: i64) -> Result<TokenIdentity, TokenError> {
    let verifier = verifier.clone();
    let token = token.to_owned();
    tokio::task::spawn_blocking(move || verifier.verify(&token, now))
        .await
        .unwrap_or_else(|e| Err(TokenError::KeysUnavailable(e.to_string())))
}

impl Gateway {
    /// How externally authenticated principals are cleared.
    pub fn with_clearances(mut self, clearances: Clearances) -> Self {
        self.clearances = clearances;
        self
    }

    /// The principal behind an OIDC bearer token (for the REST API). `None` when no issuer
    /// is configured.
    pub async fn principal_for_bearer(&self, token: &str) -> Option<Result<Principal, TokenError>> {
        let fed = self.federation.as_ref()?;
        Some(verify_token(&fed.verifier, token, now()).await.map(|id| {
            self.clearances.principal(&id.username, &id.groups, id.service_account.as_ref().map(|(ns, _)| ns.as_str()))
        }))
    }

    /// The principal named by a trusted sidecar's headers; `None` for a reserved name.
    pub fn principal_for_headers(&self, id: &coffer_identity::HeaderIdentity) -> Option<Principal> {
        external_name_allowed(&id.username).then(|| self.clearances.principal(&id.username, &id.groups, None))
    }

    /// The principal behind a web console session cookie, and the session (for its CSRF
    /// token). The cookie's signature and expiry are checked here; clearance and the
    /// platform-admin flag come from its groups now, as for a token.
    pub fn principal_for_web_session(&self, cookie: &str) -> Result<(Principal, WebSession), CookieError> {
        let s = coffer_identity::console::open_session(&self.server_key, cookie, now())?;
        if !external_name_allowed(&s.user) {
            // Never minted so; refused all the same.
            return Err(CookieError::Malformed);
        }
        Ok((self.clearances.principal(&s.user, &s.groups, None), s))
    }

    /// The server key, for the front ends that sign their own cookies (the web console).
    pub fn server_key(&self) -> &coffer_identity::ServerKey {
        &self.server_key
    }

    /// The verifier of the configured OpenID issuers, when there are any.
    pub fn token_verifier(&self) -> Option<Arc<OidcVerifier>> {
        self.federation.as_ref().map(|f| f.verifier.clone())
    }

    /// Enable `AssumeRoleWithWebIdentity`.
    pub fn with_federation(mut self, federation: Federation) -> Self {
        self.federation = Some(federation);
        self
    }

    /// Exchange a bearer token for temporary credentials and the user name it names.
    /// Blocking work (fetching keys) runs off the runtime.
    pub async fn assume_role_with_web_identity(
        &self,
        token: &str,
        duration: Option<i64>,
        policy: Option<&str>,
    ) -> Result<(SessionCredentials, String), StsError> {
        let fed = self.federation.as_ref().ok_or(StsError::NotConfigured)?;
        let duration = duration.unwrap_or(fed.default_duration);
        if !(MIN_DURATION..=fed.max_duration).contains(&duration) {
            return Err(StsError::Validation(format!(
                "DurationSeconds must be between {MIN_DURATION} and {}",
                fed.max_duration
            )));
        }
        let narrowing = match policy {
            None | Some("") => Narrowing::default(),
            Some(p) => narrowing_of(p)?,
        };
        let t = now();
        let identity = verify_token(&fed.verifier, token, t).await.map_err(|e| match e {
            TokenError::Expired => StsError::ExpiredToken("The web identity token has expired".into()),
            TokenError::KeysUnavailable(m) => StsError::IdpCommunication(m),
            other => StsError::InvalidIdentityToken(other.to_string()),
        })?;
        if !external_name_allowed(&identity.username) {
            return Err(StsError::InvalidIdentityToken(format!("the user name {:?} is reserved", identity.username)));
        }
        let principal = self.clearances.principal(
            &identity.username,
            &identity.groups,
            identity.service_account.as_ref().map(|(ns, _)| ns.as_str()),
        );
        // A session never outlives the token's own validity by more than asked, nor the max.
        let expires_at = t + duration;
        let source = match &identity.service_account {
            Some((ns, sa)) => format!("serviceaccount:{ns}:{sa}"),
            None => format!("oidc:{}", identity.issuer),
        };
        let creds = session::mint(&self.server_key, principal, narrowing, &source, t, expires_at);
        tracing::info!(
            target: "coffer::audit",
            principal = %identity.username,
            access_key_id = %creds.access_key_id,
            source,
            expires_at,
            "session issued"
        );
        Ok((creds, identity.username))
    }

    /// The caller behind session credentials: the token must verify for this key id.
    pub fn caller_for_session(&self, access_key_id: &str, token: Option<&str>) -> Result<Caller> {
        let token = token.ok_or(Error::InvalidToken)?;
        let s = session::verify(&self.server_key, access_key_id, token, now()).map_err(|e| {
            tracing::info!(target: "coffer::audit", access_key_id, allowed = false, rule = %e, "session refused");
            match e {
                session::SessionError::Expired => Error::ExpiredToken,
                _ => Error::InvalidToken,
            }
        })?;
        Ok(Caller {
            principal: s.principal,
            narrowing: s.narrowing,
            access_key_id: access_key_id.to_owned(),
            request_id: String::new(),
            source: String::new(),
            read_only_endpoint: false,
        })
    }
}

fn narrowing_of(policy: &str) -> Result<Narrowing, StsError> {
    let p: SessionPolicy = serde_json::from_str(policy).map_err(|e| StsError::MalformedPolicy(e.to_string()))?;
    let buckets = match p.buckets {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|b| BucketName::parse(b).map_err(|e| StsError::MalformedPolicy(e.to_string())))
                .collect::<Result<BTreeSet<_>, _>>()?,
        ),
    };
    let classification = p
        .classification
        .map(|c| Classification::parse(&c).map_err(|e| StsError::MalformedPolicy(e.to_string())))
        .transpose()?;
    Ok(Narrowing { read_only: p.read_only, buckets, classification, expires_at: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_policies_parse_into_narrowings() {
        let n = narrowing_of(r#"{"read_only": true, "buckets": ["shared-data"], "classification": "protected-b"}"#)
            .unwrap();
        assert!(n.read_only);
        assert_eq!(n.buckets.unwrap().len(), 1);
        assert_eq!(n.classification.unwrap().as_str(), "protected-b");
        assert!(narrowing_of(r#"{"Version": "2012-10-17"}"#).is_err());
        assert!(narrowing_of(r#"{"buckets": ["Bad_Name"]}"#).is_err());
    }
}
