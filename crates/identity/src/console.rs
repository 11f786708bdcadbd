//! Browser sessions of the web console: the signed session cookie, the signed state of a
//! sign-in in progress, PKCE, and reading cookies.
//!
//! Both cookies are self-describing and signed like STS session tokens: `v1.<payload>.<mac>`,
//! the payload base64url JSON, the MAC an HMAC-SHA256 of `v1.<payload>` under a subkey of the
//! server key (one subkey per purpose), all base64url — so any replica checks them without a
//! database, and a cookie of one kind never passes for the other.
//!
//! - The session cookie ([`SESSION_COOKIE`]) carries a [`WebSession`]: the user name, the
//!   groups, where the identity came from, a random CSRF token, and its validity. Grants,
//!   clearances and the platform-admin flag are not in it: they are worked out at every
//!   request, as for every other caller.
//! - The CSRF cookie ([`CSRF_COOKIE`]) holds the same CSRF token, readable by the console's
//!   JavaScript, which sends it back in [`CSRF_HEADER`] on every state-changing request
//!   (double submit): a cross-site page can make the browser send the cookies, never the header.
//! - The login cookie ([`LOGIN_COOKIE`]) carries a [`LoginState`] from the redirect to the
//!   provider to the callback: `state`, `nonce`, the PKCE verifier, the redirect URI.

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ServerKey;

/// The session cookie (HttpOnly).
pub const SESSION_COOKIE: &str = "coffer_session";
/// The CSRF token, readable by the console's JavaScript.
pub const CSRF_COOKIE: &str = "coffer_csrf";
/// The sign-in in progress (HttpOnly, `Path=/console`).
pub const LOGIN_COOKIE: &str = "coffer_login";
/// The header carrying the CSRF token on state-changing requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

const VERSION: &str = "v1";
const SESSION_PURPOSE: &str = "coffer/console-session/v1";
const LOGIN_PURPOSE: &str = "coffer/console-login/v1";

/// A signed-in browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebSession {
    /// The user name.
    pub user: String,
    /// The groups (and Keycloak roles) the ID token gave.
    pub groups: BTreeSet<String>,
    /// Where the identity came from, for the audit log (`oidc:<issuer>`).
    pub source: String,
    /// The CSRF token, also in the CSRF cookie.
    pub csrf: String,
    /// Unix seconds.
    pub issued_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// A sign-in between the redirect to the provider and the callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    /// Sent as `state`; must come back with the code.
    pub state: String,
    /// Sent as `nonce`; must be in the ID token.
    pub nonce: String,
    /// The PKCE code verifier (its S256 challenge was sent).
    pub verifier: String,
    /// The `redirect_uri` sent, to send again with the code.
    pub redirect_uri: String,
    /// Unix seconds.
    pub expires_at: i64,
}

/// Why a cookie was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CookieError {
    #[error("the cookie is malformed")]
    Malformed,
    #[error("the cookie's signature is invalid")]
    BadSignature,
    #[error("the session has expired; sign in again")]
    Expired,
}

fn mac(key: &ServerKey, purpose: &str) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(&key.derive(purpose)).expect("HMAC takes any key length")
}

fn seal<T: Serialize>(key: &ServerKey, purpose: &str, value: &T) -> String {
    let payload = B64.encode(serde_json::to_vec(value).expect("a cookie payload serializes"));
    let signed = format!("{VERSION}.{payload}");
    let mut m = mac(key, purpose);
    m.update(signed.as_bytes());
    format!("{signed}.{}", B64.encode(m.finalize().into_bytes()))
}

fn open<T: DeserializeOwned>(key: &ServerKey, purpose: &str, cookie: &str) -> Result<T, CookieError> {
    let (signed, tag) = cookie.rsplit_once('.').ok_or(CookieError::Malformed)?;
    let (version, payload) = signed.split_once('.').ok_or(CookieError::Malformed)?;
    if version != VERSION {
        return Err(CookieError::Malformed);
    }
    let tag = B64.decode(tag).map_err(|_| CookieError::Malformed)?;
    let mut m = mac(key, purpose);
    m.update(signed.as_bytes());
    m.verify_slice(&tag).map_err(|_| CookieError::BadSignature)?;
    let bytes = B64.decode(payload).map_err(|_| CookieError::Malformed)?;
    serde_json::from_slice(&bytes).map_err(|_| CookieError::Malformed)
}

/// The session cookie's value.
pub fn seal_session(key: &ServerKey, session: &WebSession) -> String {
    seal(key, SESSION_PURPOSE, session)
}

/// The session a cookie carries, if it is signed with this server key and valid at `now`.
pub fn open_session(key: &ServerKey, cookie: &str, now: i64) -> Result<WebSession, CookieError> {
    let s: WebSession = open(key, SESSION_PURPOSE, cookie)?;
    if now >= s.expires_at { Err(CookieError::Expired) } else { Ok(s) }
}

/// The login cookie's value.
pub fn seal_login(key: &ServerKey, login: &LoginState) -> String {
    seal(key, LOGIN_PURPOSE, login)
}

/// The sign-in a login cookie carries, if signed with this server key and valid at `now`.
pub fn open_login(key: &ServerKey, cookie: &str, now: i64) -> Result<LoginState, CookieError> {
    let s: LoginState = open(key, LOGIN_PURPOSE, cookie)?;
    if now >= s.expires_at { Err(CookieError::Expired) } else { Ok(s) }
}

/// A random token: 32 bytes from the OS, base64url (43 characters) — usable as a PKCE code
/// verifier, a `state`, a `nonce` or a CSRF token.
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    B64.encode(b)
}

/// The PKCE `S256` code challenge of a verifier (RFC 7636 §4.2).
pub fn pkce_challenge(verifier: &str) -> String {
    B64.encode(Sha256::digest(verifier.as_bytes()))
}

/// Does the CSRF token sent with a request match the session's? (Constant time.)
pub fn csrf_matches(session: &WebSession, sent: Option<&str>) -> bool {
    match sent {
        Some(t) => {
            !session.csrf.is_empty() && crate::oidc::constant_time_eq(t.trim().as_bytes(), session.csrf.as_bytes())
        }
        None => false,
    }
}

/// The value of cookie `name` among `Cookie` header values (`a=1; b=2`; HTTP/2 may send
/// several headers). The first occurrence wins.
pub fn cookie_value<'a>(headers: impl IntoIterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    headers.into_iter().flat_map(|h| h.split(';')).find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim().trim_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(expires_at: i64) -> WebSession {
        WebSession {
            user: "alice".into(),
            groups: BTreeSet::from(["analysts".to_owned()]),
            source: "oidc:https://id.test".into(),
            csrf: random_token(),
            issued_at: 1000,
            expires_at,
        }
    }

    #[test]
    fn a_sealed_session_opens_on_any_replica_until_it_expires() {
        let key = ServerKey::generate();
        let replica = ServerKey::from_base64(&key.to_base64()).unwrap();
        let s = session(4600);
        let cookie = seal_session(&key, &s);
        assert!(cookie.starts_with("v1."));
        // Only cookie-safe characters: no quoting, no escaping.
        assert!(cookie.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "{cookie}");
        assert_eq!(open_session(&replica, &cookie, 2000).unwrap(), s);
        assert_eq!(open_session(&key, &cookie, 4600).unwrap_err(), CookieError::Expired);
        assert_eq!(open_session(&key, &cookie, 9999).unwrap_err(), CookieError::Expired);
    }

    #[test]
    fn tampered_forged_and_foreign_cookies_are_refused() {
        let key = ServerKey::generate();
        let cookie = seal_session(&key, &session(4600));
        // Another server key.
        assert_eq!(open_session(&ServerKey::generate(), &cookie, 2000).unwrap_err(), CookieError::BadSignature);
        // A changed payload under the old MAC: another user, admin groups, a later expiry.
        let (v, rest) = cookie.split_once('.').unwrap();
        let (payload, tag) = rest.split_once('.').unwrap();
        let mut s: WebSession = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
        s.user = "admin".into();
        s.groups.insert("platform-admins".into());
        s.expires_at = i64::MAX;
        let forged = format!("{v}.{}.{tag}", B64.encode(serde_json::to_vec(&s).unwrap()));
        assert_eq!(open_session(&key, &forged, 2000).unwrap_err(), CookieError::BadSignature);
        // A truncated MAC, another version, garbage.
        assert_eq!(open_session(&key, &cookie[..cookie.len() - 3], 2000).unwrap_err(), CookieError::BadSignature);
        let v2 = format!("v2{}", &cookie[2..]);
        assert_eq!(open_session(&key, &v2, 2000).unwrap_err(), CookieError::Malformed);
        for bad in ["", "v1", "v1.x", "v1.!!.??", "abc.def.ghi"] {
            assert!(open_session(&key, bad, 2000).is_err(), "{bad:?}");
        }
        // A login cookie is no session cookie, even under the same server key.
        let login = LoginState {
            state: "s".into(),
            nonce: "n".into(),
            verifier: "v".into(),
            redirect_uri: "http://x/console/callback".into(),
            expires_at: 4600,
        };
        let sealed = seal_login(&key, &login);
        assert_eq!(open_session(&key, &sealed, 2000).unwrap_err(), CookieError::BadSignature);
        assert_eq!(open_login(&key, &sealed, 2000).unwrap(), login);
        assert_eq!(open_login(&key, &sealed, 4600).unwrap_err(), CookieError::Expired);
        assert_eq!(open_login(&key, &cookie, 2000).unwrap_err(), CookieError::BadSignature);
    }

    #[test]
    fn pkce_s256_is_rfc_7636s_example() {
        // RFC 7636, appendix B: the verifier is the base64url of these octets, the challenge
        // the base64url of its SHA-256.
        let octets = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77, 105, 214, 191,
            240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        assert_eq!(B64.encode(octets), "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        // A fresh verifier is 43 unreserved characters (the least RFC 7636 allows), never twice the same.
        let v = random_token();
        assert_eq!(v.len(), 43);
        assert!(v.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)));
        assert_ne!(v, random_token());
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        let s = session(4600);
        assert!(csrf_matches(&s, Some(&s.csrf)));
        assert!(!csrf_matches(&s, None));
        assert!(!csrf_matches(&s, Some("")));
        assert!(!csrf_matches(&s, Some(&s.csrf[..42])));
        assert!(!csrf_matches(&s, Some(&random_token())));
        let empty = WebSession { csrf: String::new(), ..s };
        assert!(!csrf_matches(&empty, Some("")));
    }

    #[test]
    fn cookies_are_found_in_any_cookie_header() {
        let h = ["theme=dark; coffer_session=v1.abc.def", "coffer_csrf=\"tok\""];
        assert_eq!(cookie_value(h, SESSION_COOKIE), Some("v1.abc.def"));
        assert_eq!(cookie_value(h, CSRF_COOKIE), Some("tok"));
        assert_eq!(cookie_value(h, "missing"), None);
        assert_eq!(cookie_value(["xcoffer_session=1; coffer_session=2"], SESSION_COOKIE), Some("2"));
        assert_eq!(cookie_value(["a=1;b=2"], "b"), Some("2"));
    }
}
