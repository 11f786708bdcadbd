//! The name parsers at the edge: `BucketName`, `ObjectKey`, `UserName`, `Classification`.
//! Each must never panic, must accept exactly what its rules (restated here independently)
//! allow, and must round-trip what it accepts through `Display`, `as_str` and serde.

#![no_main]

use coffer_core::{BucketName, Classification, ObjectKey, UserName};
use libfuzzer_sys::fuzz_target;

/// AWS's general-purpose bucket naming rules, written from the documentation.
fn bucket_name_ok(s: &str) -> bool {
    let b = s.as_bytes();
    if !(3..=63).contains(&b.len()) {
        return false;
    }
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if !b.iter().all(|&c| alnum(c) || c == b'.' || c == b'-') {
        return false;
    }
    if !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    // Each dot-separated label is non-empty and begins and ends with a letter or digit.
    for label in s.split('.') {
        let l = label.as_bytes();
        if l.is_empty() || !alnum(l[0]) || !alnum(l[l.len() - 1]) {
            return false;
        }
    }
    // Not an IPv4 address: four labels of digits, each 0–255 without leading zeros (what
    // `Ipv4Addr` parses).
    let labels: Vec<&str> = s.split('.').collect();
    let octet = |l: &str| {
        !l.is_empty()
            && l.len() <= 3
            && l.bytes().all(|c| c.is_ascii_digit())
            && (l.len() == 1 || !l.starts_with('0'))
            && l.parse::<u16>().is_ok_and(|n| n <= 255)
    };
    if labels.len() == 4 && labels.iter().all(|l| octet(l)) {
        return false;
    }
    let reserved_prefix = ["xn--", "sthree-", "amzn-s3-demo-"].iter().any(|p| s.starts_with(p));
    let reserved_suffix = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"].iter().any(|p| s.ends_with(p));
    !reserved_prefix && !reserved_suffix
}

fn user_name_ok(s: &str) -> bool {
    (1..=128).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphanumeric() || b"._-@:".contains(&c))
}

fn classification_ok(s: &str) -> bool {
    (1..=64).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

fn check(s: &str) {
    match BucketName::parse(s) {
        Ok(b) => {
            assert!(bucket_name_ok(s), "accepted an invalid bucket name {s:?}");
            assert_eq!(b.as_str(), s);
            assert_eq!(b.to_string(), s);
            let json = serde_json::to_string(&b).unwrap();
            assert_eq!(serde_json::from_str::<BucketName>(&json).unwrap(), b);
            // A bucket name is always a safe single path segment and a valid host label list.
            assert!(!s.contains('/') && s != "." && s != "..");
        }
        Err(e) => {
            assert!(!bucket_name_ok(s), "refused a valid bucket name {s:?}: {e}");
            // Serde refuses what `parse` refuses: no way around the rules through JSON.
            let json = serde_json::to_string(s).unwrap();
            assert!(serde_json::from_str::<BucketName>(&json).is_err());
            let _ = e.to_string();
        }
    }
    match ObjectKey::parse(s) {
        Ok(k) => {
            assert!(!s.is_empty() && s.len() <= ObjectKey::MAX_LEN);
            assert_eq!(k.as_str(), s);
            assert_eq!(k.to_string(), s);
        }
        Err(_) => assert!(s.is_empty() || s.len() > ObjectKey::MAX_LEN),
    }
    match UserName::parse(s) {
        Ok(u) => {
            assert!(user_name_ok(s), "accepted an invalid user name {s:?}");
            assert_eq!(u.as_str(), s);
            let json = serde_json::to_string(&u).unwrap();
            assert_eq!(serde_json::from_str::<UserName>(&json).unwrap(), u);
        }
        Err(_) => {
            assert!(!user_name_ok(s), "refused a valid user name {s:?}");
            assert!(serde_json::from_str::<UserName>(&serde_json::to_string(s).unwrap()).is_err());
        }
    }
    match Classification::parse(s) {
        Ok(c) => {
            assert!(classification_ok(s), "accepted an invalid classification {s:?}");
            assert_eq!(c.as_str(), s);
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(serde_json::from_str::<Classification>(&json).unwrap(), c);
        }
        Err(_) => {
            assert!(!classification_ok(s), "refused a valid classification {s:?}");
            assert!(serde_json::from_str::<Classification>(&serde_json::to_string(s).unwrap()).is_err());
        }
    }
}

fuzz_target!(|data: &[u8]| {
    match std::str::from_utf8(data) {
        Ok(s) => check(s),
        Err(_) => check(&String::from_utf8_lossy(data)),
    }
});
