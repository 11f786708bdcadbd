//! Share-link tokens: the secret part of a share link's URL.
//!
//! A link has a public id (`SL` + 20 characters, stored) and a token `<id>.<mac>` handed
//! out in its URL, the MAC an HMAC-SHA256 of the id under a subkey of the server key. The
//! database therefore holds nothing that opens a link (a stolen database yields no usable
//! URL), any replica checks a token without a lookup before touching the store, and the
//! creator can be shown the URL again (it is recomputed, not kept).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use rand::Rng;
use rand::rngs::OsRng;
use sha2::Sha256;

use crate::ServerKey;

/// The prefix of share link ids.
pub const LINK_ID_PREFIX: &str = "SL";
const PURPOSE: &str = "coffer/share-link/v1";
const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Random characters after the prefix (100 bits).
const ID_RANDOM_LEN: usize = 20;

fn mac(key: &ServerKey) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(&key.derive(PURPOSE)).expect("HMAC takes any key length")
}

/// A new random link id.
pub fn new_link_id() -> String {
    let mut rng = OsRng;
    let id: String = (0..ID_RANDOM_LEN).map(|_| ID_ALPHABET[rng.gen_range(0..ID_ALPHABET.len())] as char).collect();
    format!("{LINK_ID_PREFIX}{id}")
}

/// Is `id` shaped like a link id (so that no other string reaches the store)?
pub fn is_link_id(id: &str) -> bool {
    id.len() == LINK_ID_PREFIX.len() + ID_RANDOM_LEN
        && id.starts_with(LINK_ID_PREFIX)
        && id[LINK_ID_PREFIX.len()..].bytes().all(|b| ID_ALPHABET.contains(&b))
}

/// The token of link `id`: `<id>.<base64url MAC>`, URL-safe as it is.
pub fn link_token(key: &ServerKey, id: &str) -> String {
    let mut m = mac(key);
    m.update(id.as_bytes());
    format!("{id}.{}", B64.encode(m.finalize().into_bytes()))
}

/// The link id a token names, if its MAC is right (checked in constant time).
pub fn verify_link_token(key: &ServerKey, token: &str) -> Option<String> {
    let (id, tag) = token.split_once('.')?;
    if !is_link_id(id) {
        return None;
    }
    let tag = B64.decode(tag).ok()?;
    let mut m = mac(key);
    m.update(id.as_bytes());
    m.verify_slice(&tag).ok()?;
    Some(id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_with_the_same_server_key_only() {
        let key = ServerKey::generate();
        let replica = ServerKey::from_base64(&key.to_base64()).unwrap();
        let id = new_link_id();
        assert!(is_link_id(&id), "{id}");
        let token = link_token(&key, &id);
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)), "{token}");
        assert_eq!(verify_link_token(&replica, &token), Some(id.clone()));
        assert_eq!(verify_link_token(&ServerKey::generate(), &token), None);
    }

    #[test]
    fn forged_and_malformed_tokens_are_refused() {
        let key = ServerKey::generate();
        let id = new_link_id();
        let token = link_token(&key, &id);
        let (_, tag) = token.split_once('.').unwrap();
        let other = new_link_id();
        // another id with this id's MAC
        assert_eq!(verify_link_token(&key, &format!("{other}.{tag}")), None);
        // a truncated MAC
        assert_eq!(verify_link_token(&key, &token[..token.len() - 2]), None);
        for bad in ["", ".", "SL.", &id, "not-a-link.abc", &format!("{id}.!!!"), &format!("x{token}")] {
            assert_eq!(verify_link_token(&key, bad), None, "{bad:?}");
        }
        assert_ne!(new_link_id(), new_link_id());
        assert!(!is_link_id("SLabc"));
        assert!(!is_link_id(&format!("SL{}", "a".repeat(20))));
    }
}
