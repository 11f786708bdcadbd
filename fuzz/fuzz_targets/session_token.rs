//! STS session tokens (`coffer_identity::session::verify`): arbitrary tokens, and mutations
//! of a genuine one (its payload re-encoded with a widened narrowing, its signature cut or
//! changed, pieces swapped or appended). Verification must never panic, and must accept a
//! token only when it carries the genuine payload and the genuine signature — never a forgery.

#![no_main]

use std::collections::BTreeSet;
use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use coffer_core::{BucketName, Classification, Narrowing, Principal};
use coffer_identity::ServerKey;
use coffer_identity::session::{self, SessionCredentials};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_700_000_000;

static KEY: LazyLock<ServerKey> =
    LazyLock::new(|| ServerKey::from_base64("Y29mZmVyLWZ1enotc2VydmVyLWtleS0zMi1ieXRlcyE=").unwrap());

static GENUINE: LazyLock<SessionCredentials> = LazyLock::new(|| {
    let principal = Principal {
        name: "alice".into(),
        groups: BTreeSet::from(["analysts".to_owned()]),
        clearance: BTreeSet::from([Classification::unclassified()]),
        is_admin: false,
    };
    let narrowing = Narrowing {
        read_only: true,
        buckets: Some(BTreeSet::from([BucketName::parse("shared-data").unwrap()])),
        classification: None,
        expires_at: None,
    };
    session::mint(&KEY, principal, narrowing, "oidc:https://id.test", NOW - 60, NOW + 3600)
});

/// What the input does to the genuine token. The input's first byte picks the mutation,
/// its second a number used by some, and the rest (UTF-8, lossily) is the text used by the
/// others; the token is presented with the genuine key id unless the text names another
/// after a line feed (`token\nCSOTHER`).
#[derive(Debug)]
enum Mutation {
    /// A token from nothing.
    Raw(String),
    /// The genuine token's payload replaced by this JSON, the genuine signature kept.
    Payload(Vec<u8>),
    /// The genuine payload with one JSON edit (a widened narrowing, an admin flag…).
    Widen(u8),
    /// Flip one bit of the token's text (at the position given by the text's length).
    Flip(usize, u8),
    /// Cut the token at this byte.
    Cut(usize),
    /// Append bytes.
    Append(String),
    /// Replace the signature.
    Signature(String),
    /// Replace the version.
    Version(String),
}

struct Input {
    mutation: Mutation,
    key_id: Option<String>,
    /// Seconds after NOW.
    at: i64,
}

impl Input {
    fn parse(data: &[u8]) -> Self {
        let pick = data.first().copied().unwrap_or(0);
        let n = data.get(1).copied().unwrap_or(0);
        let text = String::from_utf8_lossy(data.get(2..).unwrap_or_default()).into_owned();
        let (text, key_id) = match text.split_once('\n') {
            Some((t, k)) => (t.to_owned(), Some(k.to_owned())),
            None => (text, None),
        };
        let mutation = match pick % 8 {
            0 => Mutation::Raw(text),
            1 => Mutation::Payload(text.into_bytes()),
            2 => Mutation::Widen(n),
            3 => Mutation::Flip(text.len() * 256 + usize::from(n), n),
            4 => Mutation::Cut(usize::from(n) * 4 + text.len()),
            5 => Mutation::Append(text),
            6 => Mutation::Signature(text),
            _ => Mutation::Version(text),
        };
        // Presented late (past the expiry) when the pick byte's top bit is set.
        let at = if pick & 0x80 != 0 { 3600 + i64::from(n) } else { i64::from(n) };
        Input { mutation, key_id, at }
    }
}

fn parts(token: &str) -> (&str, &str, &str) {
    let (signed, tag) = token.rsplit_once('.').unwrap();
    let (version, payload) = signed.split_once('.').unwrap();
    (version, payload, tag)
}

fn widen(edit: u8) -> String {
    let (version, payload, tag) = parts(&GENUINE.session_token);
    let mut v: serde_json::Value = serde_json::from_slice(&B64.decode(payload).unwrap()).unwrap();
    match edit % 6 {
        0 => v["principal"]["is_admin"] = true.into(),
        1 => v["narrowing"]["read_only"] = false.into(),
        2 => v["narrowing"]["buckets"] = serde_json::Value::Null,
        3 => v["expires_at"] = (NOW + 1_000_000).into(),
        4 => v["principal"]["clearance"] = serde_json::json!(["unclassified", "protected-b"]),
        _ => v["principal"]["name"] = "bob".into(),
    }
    format!("{version}.{}.{tag}", B64.encode(serde_json::to_vec(&v).unwrap()))
}

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data);
    let genuine = &GENUINE.session_token;
    let token = match input.mutation {
        Mutation::Raw(s) => s,
        Mutation::Payload(json) => {
            let (version, _, tag) = parts(genuine);
            format!("{version}.{}.{tag}", B64.encode(json))
        }
        Mutation::Widen(edit) => widen(edit),
        Mutation::Flip(at, bit) => {
            let mut bytes = genuine.clone().into_bytes();
            let i = at % bytes.len();
            bytes[i] ^= 1 << (bit % 7);
            String::from_utf8_lossy(&bytes).into_owned()
        }
        Mutation::Cut(at) => genuine[..at.min(genuine.len())].to_owned(),
        Mutation::Append(s) => format!("{genuine}{s}"),
        Mutation::Signature(s) => format!("{}.{s}", genuine.rsplit_once('.').unwrap().0),
        Mutation::Version(s) => format!("{s}.{}", genuine.split_once('.').unwrap().1),
    };
    let key_id = input.key_id.unwrap_or_else(|| GENUINE.access_key_id.clone());
    let now = NOW + input.at;
    match session::verify(&KEY, &key_id, &token, now) {
        Ok(s) => {
            // Only the genuine token, presented with its own key id, before it expires.
            let (v, p, t) = parts(&token);
            let (gv, gp, gt) = parts(genuine);
            assert_eq!((v, p), (gv, gp), "a forged payload verified: {token:?}");
            assert_eq!(B64.decode(t).unwrap(), B64.decode(gt).unwrap(), "a forged signature verified");
            assert_eq!(key_id, GENUINE.access_key_id);
            assert!(now < GENUINE.expires_at);
            assert_eq!(s.access_key_id, GENUINE.access_key_id);
            assert_eq!(s.principal.name, "alice");
            assert!(!s.principal.is_admin && s.narrowing.read_only);
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
    // Another server key never accepts it.
    static OTHER: LazyLock<ServerKey> =
        LazyLock::new(|| ServerKey::from_base64("b3RoZXItc2VydmVyLWtleS0zMi1ieXRlcy1sb25nISE=").unwrap());
    assert!(session::verify(&OTHER, &key_id, &token, now).is_err());
    // The derived secret is a function of the key id only, and never panics.
    let _ = session::session_secret(&KEY, &key_id);
    let _ = session::is_session_key(&key_id);
});
