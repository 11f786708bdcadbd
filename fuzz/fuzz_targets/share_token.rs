//! Share-link tokens (`coffer_identity::share::verify_link_token`): arbitrary tokens and
//! mutations of a genuine one. Never panics; a token verifies only as the exact token the
//! server would hand out for that id (no forged MAC, no other spelling of the genuine one),
//! and the id it yields is always shaped like a link id (nothing else reaches the store).

#![no_main]

use std::sync::LazyLock;

use coffer_identity::ServerKey;
use coffer_identity::share::{is_link_id, link_token, verify_link_token};
use libfuzzer_sys::fuzz_target;

static KEY: LazyLock<ServerKey> =
    LazyLock::new(|| ServerKey::from_base64("Y29mZmVyLWZ1enotc2VydmVyLWtleS0zMi1ieXRlcyE=").unwrap());
const ID: &str = "SLABCDEFGHIJKLMNOPQRST";

/// What the input does to the genuine token: its first byte picks the mutation, its second
/// is a number used by some, the rest (UTF-8, lossily) is the text used by the others.
#[derive(Debug)]
enum Input {
    Raw(String),
    /// The genuine token with one bit flipped.
    Flip(u8, u8),
    Cut(u8),
    Append(String),
    /// Another id with the genuine MAC.
    OtherId(String),
    /// The genuine id with another MAC.
    OtherMac(String),
}

impl Input {
    fn parse(data: &[u8]) -> Self {
        let n = data.get(1).copied().unwrap_or(0);
        let text = String::from_utf8_lossy(data.get(2..).unwrap_or_default()).into_owned();
        match data.first().copied().unwrap_or(0) % 6 {
            0 => Input::Raw(text),
            1 => Input::Flip(n, text.len() as u8),
            2 => Input::Cut(n),
            3 => Input::Append(text),
            4 => Input::OtherId(text),
            _ => Input::OtherMac(text),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data);
    let genuine = link_token(&KEY, ID);
    let token = match input {
        Input::Raw(s) => s,
        Input::Flip(at, bit) => {
            let mut b = genuine.clone().into_bytes();
            let i = usize::from(at) % b.len();
            b[i] ^= 1 << (bit % 7);
            String::from_utf8_lossy(&b).into_owned()
        }
        Input::Cut(at) => genuine[..usize::from(at).min(genuine.len())].to_owned(),
        Input::Append(s) => format!("{genuine}{s}"),
        Input::OtherId(id) => format!("{id}.{}", genuine.split_once('.').unwrap().1),
        Input::OtherMac(mac) => format!("{ID}.{mac}"),
    };
    if let Some(id) = verify_link_token(&KEY, &token) {
        assert!(is_link_id(&id), "{id:?}");
        assert_eq!(token, link_token(&KEY, &id), "a token other than the server's own verified: {token:?}");
        assert!(token.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
    }
    let _ = is_link_id(&token);
});
