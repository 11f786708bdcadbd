//! Sealing secrets with the server key.
//!
//! SigV4 needs the plain secret on the server to recompute signatures, so a one-way hash
//! will not do; instead the secret is encrypted with a 32-byte server key that lives outside
//! the database (a file or an environment variable). A stolen database alone yields no
//! usable secret. The sealed form is `v1:` + base64(24-byte nonce ‖ ciphertext ‖ tag).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rand::rngs::OsRng;

/// Why a key or a sealed secret was refused.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the server key must be 32 bytes, base64-encoded")]
    BadServerKey,
    #[error("the sealed secret is malformed")]
    Malformed,
    #[error("the sealed secret does not open with this server key (was the key changed?)")]
    WrongKey,
}

/// The server's secret-sealing key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct ServerKey([u8; 32]);

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKey(…)")
    }
}

const PREFIX: &str = "v1:";

impl ServerKey {
    /// A new random key.
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        OsRng.fill_bytes(&mut k);
        Self(k)
    }

    /// Parse the base64 form (surrounding white space ignored).
    pub fn from_base64(s: &str) -> Result<Self, SealError> {
        let bytes = B64.decode(s.trim()).map_err(|_| SealError::BadServerKey)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| SealError::BadServerKey)?;
        Ok(Self(arr))
    }

    /// The base64 form, for writing the key file.
    pub fn to_base64(&self) -> String {
        B64.encode(self.0)
    }

    /// A subkey for another purpose (HMAC-SHA256 of the purpose under this key), so one
    /// secret never serves two primitives.
    pub(crate) fn derive(&self, purpose: &str) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }

    /// Seal `secret`, bound to `access_key_id`.
    pub fn seal(&self, access_key_id: &str, secret: &str) -> String {
        let mut nonce = [0u8; 24];
        OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher()
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: secret.as_bytes(), aad: access_key_id.as_bytes() })
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        format!("{PREFIX}{}", B64.encode(out))
    }

    /// Open a sealed secret of `access_key_id`.
    pub fn open(&self, access_key_id: &str, sealed: &str) -> Result<String, SealError> {
        let raw = sealed.strip_prefix(PREFIX).ok_or(SealError::Malformed)?;
        let bytes = B64.decode(raw).map_err(|_| SealError::Malformed)?;
        if bytes.len() < 24 + 16 {
            return Err(SealError::Malformed);
        }
        let (nonce, ct) = bytes.split_at(24);
        let plain = self
            .cipher()
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: access_key_id.as_bytes() })
            .map_err(|_| SealError::WrongKey)?;
        String::from_utf8(plain).map_err(|_| SealError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_hides_the_secret() {
        let k = ServerKey::generate();
        let sealed = k.seal("CKID", "s3cr3t-value");
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains("s3cr3t-value"));
        assert_eq!(k.open("CKID", &sealed).unwrap(), "s3cr3t-value");
        // same secret, fresh nonce
        assert_ne!(sealed, k.seal("CKID", "s3cr3t-value"));
    }

    #[test]
    fn sealed_secrets_are_bound_to_their_key_id_and_server_key() {
        let k = ServerKey::generate();
        let sealed = k.seal("CKID", "secret");
        assert!(matches!(k.open("OTHER", &sealed), Err(SealError::WrongKey)));
        assert!(matches!(ServerKey::generate().open("CKID", &sealed), Err(SealError::WrongKey)));
        assert!(matches!(k.open("CKID", "v1:!!"), Err(SealError::Malformed)));
        assert!(matches!(k.open("CKID", "plain"), Err(SealError::Malformed)));
    }

    #[test]
    fn server_keys_parse_from_base64_only_at_32_bytes() {
        let k = ServerKey::generate();
        let again = ServerKey::from_base64(&format!("{}\n", k.to_base64())).unwrap();
        assert_eq!(again.open("id", &k.seal("id", "x")).unwrap(), "x");
        assert!(ServerKey::from_base64("c2hvcnQ=").is_err());
        assert!(format!("{k:?}").contains('…'));
    }

    #[test]
    fn debug_never_shows_the_key_or_its_bytes() {
        let k = ServerKey::generate();
        let shown = format!("{k:?} {k:#?}");
        assert!(!shown.contains(&k.to_base64()), "{shown}");
        assert!(!shown.contains(&hex::encode(k.0)), "{shown}");
        assert!(!shown.contains(&format!("{:?}", k.0)), "{shown}");
        // Errors name what is wrong, not the key or the secret.
        let sealed = k.seal("CKID", "s3cr3t-value-123");
        let e = ServerKey::generate().open("CKID", &sealed).unwrap_err();
        assert!(!format!("{e} {e:?}").contains("s3cr3t"));
    }
}
