//! Generation of access key ids and secrets.

use rand::Rng;
use rand::distributions::Alphanumeric;
use rand::rngs::OsRng;

/// A fresh access key: the secret is shown to its owner once and then only kept sealed.
/// Its `Debug` shows the id only, so a key never reaches a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct GeneratedKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A new random key pair from the operating system's CSPRNG: a 20-character id starting
/// with `CK` (upper-case letters and digits, like AWS's `AKIA…`) and a 40-character
/// alphanumeric secret (about 238 bits).
pub fn generate_access_key() -> GeneratedKey {
    let mut rng = OsRng;
    let id: String = (0..18).map(|_| ID_ALPHABET[rng.gen_range(0..ID_ALPHABET.len())] as char).collect();
    let secret: String = (&mut rng).sample_iter(&Alphanumeric).take(40).map(char::from).collect();
    GeneratedKey { access_key_id: format!("CK{id}"), secret_access_key: secret }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_aws_shape_and_differ() {
        let a = generate_access_key();
        let b = generate_access_key();
        assert_eq!(a.access_key_id.len(), 20);
        assert!(a.access_key_id.starts_with("CK"));
        assert!(a.access_key_id.bytes().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        assert_eq!(a.secret_access_key.len(), 40);
        assert!(a.secret_access_key.bytes().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let k = generate_access_key();
        let shown = format!("{k:?} {k:#?}");
        assert!(shown.contains(&k.access_key_id), "{shown}");
        assert!(!shown.contains(&k.secret_access_key), "{shown}");
    }
}
