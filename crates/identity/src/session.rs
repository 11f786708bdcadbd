//! Temporary credentials (STS sessions) that verify without a database.
//!
//! A session is three strings handed to the client: an access key id (`CS…`), a secret
//! access key, and a session token. The **secret is derived** from the key id with a
//! subkey of the server key, so any replica can give s3s the secret for a `CS…` id with no
//! lookup. The **token is self-describing and signed**: `v1.<payload>.<mac>`, the payload a
//! base64url JSON of the principal, the narrowing, the key id and the validity, the MAC an
//! HMAC-SHA256 under another subkey. Every request presents the token
//! (`x-amz-security-token`); verifying it checks the MAC (constant time), the key id and
//! the expiry. What the principal may do is still read live (grants), so revoking a grant
//! stops a session at once; the token only fixes who it is and how it is narrowed.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use coffer_core::{Narrowing, Principal};
use hmac::{Hmac, Mac};
use rand::Rng;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::ServerKey;

/// The prefix of session access key ids (long-term keys start with `CK`).
pub const SESSION_KEY_PREFIX: &str = "CS";
const TOKEN_VERSION: &str = "v1";
const SECRET_PURPOSE: &str = "coffer/session-secret/v1";
const TOKEN_PURPOSE: &str = "coffer/session-token/v1";
const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// What a session token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The session's access key id.
    pub access_key_id: String,
    pub principal: Principal,
    pub narrowing: Narrowing,
    /// Where the identity came from, for the audit log (e.g. `oidc:<issuer>`).
    pub source: String,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds; also in `narrowing.expires_at`.
    pub expires_at: i64,
}

/// The credentials handed to the client. Its `Debug` shows neither the secret nor the
/// token.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub expires_at: i64,
}

impl std::fmt::Debug for SessionCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Why a session token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error("the session token is malformed")]
    Malformed,
    #[error("the session token's signature is invalid")]
    BadSignature,
    #[error("the session token belongs to another access key")]
    WrongKey,
    #[error("the session has expired")]
    Expired,
}

fn mac(key: &ServerKey, purpose: &str) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(&key.derive(purpose)).expect("HMAC takes any key length")
}

/// Is this the id of a session (rather than a long-term key)?
pub fn is_session_key(access_key_id: &str) -> bool {
    access_key_id.starts_with(SESSION_KEY_PREFIX)
}

/// The secret of a session key id (40 characters), derivable by any replica.
pub fn session_secret(key: &ServerKey, access_key_id: &str) -> String {
    let mut m = mac(key, SECRET_PURPOSE);
    m.update(access_key_id.as_bytes());
    let mut s = B64.encode(m.finalize().into_bytes());
    s.truncate(40);
    s
}

/// Mint a session for `principal`, narrowed by `narrowing`, valid from `now` until
/// `expires_at` (the narrowing's own expiry is set to it).
pub fn mint(
    key: &ServerKey,
    principal: Principal,
    mut narrowing: Narrowing,
    source: &str,
    now: i64,
    expires_at: i64,
) -> SessionCredentials {
    let mut rng = OsRng;
    let id: String = (0..18).map(|_| ID_ALPHABET[rng.gen_range(0..ID_ALPHABET.len())] as char).collect();
    let access_key_id = format!("{SESSION_KEY_PREFIX}{id}");
    narrowing.expires_at = Some(narrowing.expires_at.map_or(expires_at, |t| t.min(expires_at)));
    let session = Session {
        access_key_id: access_key_id.clone(),
        principal,
        narrowing,
        source: source.to_owned(),
        issued_at: now,
        expires_at,
    };
    let payload = B64.encode(serde_json::to_vec(&session).expect("a session serializes"));
    let signed = format!("{TOKEN_VERSION}.{payload}");
    let mut m = mac(key, TOKEN_PURPOSE);
    m.update(signed.as_bytes());
    let session_token = format!("{signed}.{}", B64.encode(m.finalize().into_bytes()));
    SessionCredentials {
        secret_access_key: session_secret(key, &access_key_id),
        access_key_id,
        session_token,
        expires_at,
    }
}

/// Verify the token presented with `access_key_id` at Unix time `now`.
pub fn verify(key: &ServerKey, access_key_id: &str, token: &str, now: i64) -> Result<Session, SessionError> {
    let (signed, tag) = token.rsplit_once('.').ok_or(SessionError::Malformed)?;
    let (version, payload) = signed.split_once('.').ok_or(SessionError::Malformed)?;
    if version != TOKEN_VERSION {
        return Err(SessionError::Malformed);
    }
    let tag = B64.decode(tag).map_err(|_| SessionError::Malformed)?;
    let mut m = mac(key, TOKEN_PURPOSE);
    m.update(signed.as_bytes());
    m.verify_slice(&tag).map_err(|_| SessionError::BadSignature)?;
    let bytes = B64.decode(payload).map_err(|_| SessionError::Malformed)?;
    let session: Session = serde_json::from_slice(&bytes).map_err(|_| SessionError::Malformed)?;
    if session.access_key_id != access_key_id {
        return Err(SessionError::WrongKey);
    }
    if now >= session.expires_at {
        return Err(SessionError::Expired);
    }
    Ok(session)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use coffer_core::{BucketName, Classification};

    use super::*;

    fn alice() -> Principal {
        Principal {
            name: "alice".into(),
            groups: BTreeSet::from(["analysts".to_owned()]),
            clearance: BTreeSet::from([Classification::unclassified()]),
            is_admin: false,
        }
    }

    fn narrowed() -> Narrowing {
        Narrowing {
            read_only: true,
            buckets: Some(BTreeSet::from([BucketName::parse("shared-data").unwrap()])),
            classification: None,
            expires_at: None,
        }
    }

    #[test]
    fn a_minted_session_verifies_anywhere_with_the_same_server_key() {
        let key = ServerKey::generate();
        let replica = ServerKey::from_base64(&key.to_base64()).unwrap();
        let c = mint(&key, alice(), narrowed(), "oidc:https://id.test", 1000, 4600);
        assert!(is_session_key(&c.access_key_id));
        assert_eq!(c.access_key_id.len(), 20);
        assert_eq!(c.secret_access_key.len(), 40);
        assert_eq!(session_secret(&replica, &c.access_key_id), c.secret_access_key);
        let s = verify(&replica, &c.access_key_id, &c.session_token, 2000).unwrap();
        assert_eq!(s.principal, alice());
        assert!(s.narrowing.read_only);
        assert_eq!(s.narrowing.expires_at, Some(4600));
        assert_eq!(s.source, "oidc:https://id.test");
    }

    #[test]
    fn refusals() {
        let key = ServerKey::generate();
        let c = mint(&key, alice(), narrowed(), "test", 1000, 4600);
        let t = &c.session_token;
        assert_eq!(verify(&key, &c.access_key_id, t, 4600).unwrap_err(), SessionError::Expired);
        assert_eq!(verify(&key, "CSOTHERKEY", t, 2000).unwrap_err(), SessionError::WrongKey);
        assert_eq!(verify(&ServerKey::generate(), &c.access_key_id, t, 2000).unwrap_err(), SessionError::BadSignature);
        assert_eq!(verify(&key, &c.access_key_id, "garbage", 2000).unwrap_err(), SessionError::Malformed);
        // Widening the narrowing in the payload breaks the signature.
        let (v, rest) = t.split_once('.').unwrap();
        let (payload, tag) = rest.split_once('.').unwrap();
        let mut s: Session = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
        s.narrowing.read_only = false;
        s.principal.is_admin = true;
        let forged = format!("{v}.{}.{tag}", B64.encode(serde_json::to_vec(&s).unwrap()));
        assert_eq!(verify(&key, &c.access_key_id, &forged, 2000).unwrap_err(), SessionError::BadSignature);
    }

    #[test]
    fn a_session_never_outlives_a_shorter_narrowing() {
        let key = ServerKey::generate();
        let n = Narrowing { expires_at: Some(2000), ..Narrowing::default() };
        let c = mint(&key, alice(), n, "test", 1000, 4600);
        let s = verify(&key, &c.access_key_id, &c.session_token, 1500).unwrap();
        assert_eq!(s.narrowing.expires_at, Some(2000));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let key = ServerKey::generate();
        let c = mint(&key, alice(), narrowed(), "test", 1000, 4600);
        let shown = format!("{c:?} {c:#?} {key:?} {key:#?}");
        assert!(shown.contains(&c.access_key_id), "{shown}");
        for secret in [&c.secret_access_key, &c.session_token, &key.to_base64()] {
            assert!(!shown.contains(secret.as_str()), "{shown}");
        }
        // Nor any piece of the token's signature or of the derived secret.
        let (_, tag) = c.session_token.rsplit_once('.').unwrap();
        assert!(!shown.contains(tag) && !shown.contains(&c.secret_access_key[..20]), "{shown}");
        // A verified session is who and what, not how to authenticate as it.
        let s = verify(&key, &c.access_key_id, &c.session_token, 2000).unwrap();
        let shown = format!("{s:?}");
        assert!(!shown.contains(&c.secret_access_key) && !shown.contains(tag), "{shown}");
    }

    #[test]
    fn secrets_differ_per_key_id_and_server_key() {
        let k = ServerKey::generate();
        assert_ne!(session_secret(&k, "CSA"), session_secret(&k, "CSB"));
        assert_ne!(session_secret(&k, "CSA"), session_secret(&ServerKey::generate(), "CSA"));
    }
}
