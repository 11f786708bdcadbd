//! The cryptography the cloud stores need, from *ring*: SHA-256 digests and HMAC-SHA256
//! (AWS SigV4, Azure shared keys) and RS256 signatures (Google service-account JWTs).
//!
//! `object_store` asks for a [`CryptoProvider`] when neither of its own (aws-lc-rs, ring)
//! is compiled in; this is ours.

use object_store::client::{CryptoProvider, DigestAlgorithm, DigestContext, HmacContext, Signer, SigningAlgorithm};
use ring::{digest, hmac, rand, signature};
use rustls_pki_types::PrivateKeyDer;
use rustls_pki_types::pem::PemObject;

/// The *ring*-backed [`CryptoProvider`].
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RingCrypto;

fn crypto_error(message: impl Into<String>) -> object_store::Error {
    let message: String = message.into();
    object_store::Error::Generic { store: "coffer-crypto", source: message.into() }
}

impl CryptoProvider for RingCrypto {
    fn digest(&self, algorithm: DigestAlgorithm) -> object_store::Result<Box<dyn DigestContext>> {
        match algorithm {
            DigestAlgorithm::Sha256 => {
                Ok(Box::new(Digest { running: Some(digest::Context::new(&digest::SHA256)), done: None }))
            }
            other => Err(crypto_error(format!("unsupported digest {other:?}"))),
        }
    }

    fn hmac(&self, algorithm: DigestAlgorithm, secret: &[u8]) -> object_store::Result<Box<dyn HmacContext>> {
        match algorithm {
            DigestAlgorithm::Sha256 => {
                let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
                Ok(Box::new(Hmac { running: Some(hmac::Context::with_key(&key)), done: None }))
            }
            other => Err(crypto_error(format!("unsupported HMAC {other:?}"))),
        }
    }

    fn sign(&self, algorithm: SigningAlgorithm, pem: &[u8]) -> object_store::Result<Box<dyn Signer>> {
        match algorithm {
            SigningAlgorithm::RS256 => Ok(Box::new(RsaSigner::from_pem(pem)?)),
            other => Err(crypto_error(format!("unsupported signature {other:?}"))),
        }
    }
}

/// A running SHA-256, then its result.
struct Digest {
    running: Option<digest::Context>,
    done: Option<digest::Digest>,
}

impl DigestContext for Digest {
    fn update(&mut self, data: &[u8]) {
        if let Some(ctx) = &mut self.running {
            ctx.update(data);
        }
    }

    fn finish(&mut self) -> object_store::Result<&[u8]> {
        if let Some(ctx) = self.running.take() {
            self.done = Some(ctx.finish());
        }
        self.done.as_ref().map(|d| d.as_ref()).ok_or_else(|| crypto_error("digest finished without data"))
    }
}

/// A running HMAC, then its tag.
struct Hmac {
    running: Option<hmac::Context>,
    done: Option<hmac::Tag>,
}

impl HmacContext for Hmac {
    fn update(&mut self, data: &[u8]) {
        if let Some(ctx) = &mut self.running {
            ctx.update(data);
        }
    }

    fn finish(&mut self) -> object_store::Result<&[u8]> {
        if let Some(ctx) = self.running.take() {
            self.done = Some(ctx.sign());
        }
        self.done.as_ref().map(|t| t.as_ref()).ok_or_else(|| crypto_error("HMAC finished without data"))
    }
}

/// An RSA private key signing with RSASSA-PKCS1-v1_5 / SHA-256.
pub(crate) struct RsaSigner(signature::RsaKeyPair);

impl std::fmt::Debug for RsaSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RsaSigner(<private key>)")
    }
}

impl RsaSigner {
    /// Parse a PEM private key: PKCS#8 (`BEGIN PRIVATE KEY`, what Google issues) or
    /// PKCS#1 (`BEGIN RSA PRIVATE KEY`). Errors never quote the key.
    pub(crate) fn from_pem(pem: &[u8]) -> object_store::Result<Self> {
        let key = match PrivateKeyDer::from_pem_slice(pem) {
            Ok(PrivateKeyDer::Pkcs8(der)) => signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()),
            Ok(PrivateKeyDer::Pkcs1(der)) => signature::RsaKeyPair::from_der(der.secret_pkcs1_der()),
            Ok(_) => return Err(crypto_error("the PEM private key is not an RSA key")),
            Err(e) => return Err(crypto_error(format!("unreadable PEM private key: {e}"))),
        };
        key.map(RsaSigner).map_err(|e| crypto_error(format!("invalid RSA private key: {e}")))
    }
}

impl Signer for RsaSigner {
    fn sign(&self, string_to_sign: &[u8]) -> object_store::Result<Vec<u8>> {
        let mut out = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(&signature::RSA_PKCS1_SHA256, &rand::SystemRandom::new(), string_to_sign, &mut out)
            .map_err(|_| crypto_error("RSA signing failed"))?;
        Ok(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 2048-bit RSA key generated for these tests only (PKCS#8 PEM).
    pub(crate) const TEST_KEY: &str = include_str!("testdata/rsa-test-key.pem");

    #[test]
    fn sha256_and_hmac_match_known_answers() {
        let mut d = RingCrypto.digest(DigestAlgorithm::Sha256).unwrap();
        d.update(b"abc");
        assert_eq!(
            hex::encode(d.finish().unwrap()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        // RFC 4231, test case 2.
        let mut h = RingCrypto.hmac(DigestAlgorithm::Sha256, b"Jefe").unwrap();
        h.update(b"what do ya want ");
        h.update(b"for nothing?");
        assert_eq!(
            hex::encode(h.finish().unwrap()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn rs256_signatures_verify() {
        let signer = RingCrypto.sign(SigningAlgorithm::RS256, TEST_KEY.as_bytes()).unwrap();
        let sig = signer.sign(b"header.claims").unwrap();
        assert_eq!(sig.len(), 256);
        let key = match PrivateKeyDer::from_pem_slice(TEST_KEY.as_bytes()).unwrap() {
            PrivateKeyDer::Pkcs8(der) => signature::RsaKeyPair::from_pkcs8(der.secret_pkcs8_der()).unwrap(),
            _ => unreachable!(),
        };
        let public = signature::UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, key.public().as_ref());
        public.verify(b"header.claims", &sig).unwrap();
        assert!(public.verify(b"header.claimz", &sig).is_err());
    }

    #[test]
    fn bad_keys_are_refused_without_echoing_them() {
        let err = RingCrypto
            .sign(SigningAlgorithm::RS256, b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n");
        let message = err.err().unwrap().to_string();
        assert!(!message.contains("c2VjcmV0"), "{message}");
    }
}
