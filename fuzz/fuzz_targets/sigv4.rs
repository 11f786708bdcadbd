//! SigV4 `Authorization` headers (`coffer_identity::sigv4::parse_authorization`), then
//! `verify` of the parsed header against arbitrary request parts. Never panics; a parsed
//! header meets the grammar (five-part credential, `YYYYMMDD`, lower-case unique signed
//! headers, 64 hex digits) and parses again, written back, to itself; a request never
//! verifies with a signature made up by the fuzzer.

#![no_main]

use arbitrary::Arbitrary;
use coffer_identity::sigv4::{self, SigV4Header};
use libfuzzer_sys::fuzz_target;

/// The input: the `Authorization` value up to the first newline; the bytes after it feed
/// the rest of the request through `arbitrary`.
#[derive(Debug, Arbitrary)]
struct Request {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, Vec<u8>)>,
    secret: String,
    now: i64,
}

fn render(h: &SigV4Header) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{}/{}/{}/aws4_request, SignedHeaders={}, Signature={}",
        h.access_key_id,
        h.date,
        h.region,
        h.service,
        h.signed_headers.join(";"),
        h.signature
    )
}

fn check_grammar(h: &SigV4Header) {
    assert!(!h.access_key_id.is_empty() && !h.region.is_empty() && !h.service.is_empty());
    for part in [&h.access_key_id, &h.date, &h.region, &h.service] {
        assert!(!part.contains('/') && !part.contains(','), "{h:?}");
    }
    assert!(h.date.len() == 8 && h.date.bytes().all(|b| b.is_ascii_digit()));
    assert!(h.signature.len() == 64 && h.signature.bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(!h.signed_headers.is_empty());
    for (i, n) in h.signed_headers.iter().enumerate() {
        assert!(!n.is_empty() && !n.bytes().any(|b| b.is_ascii_uppercase() || b == b';' || b == b' '), "{n:?}");
        assert!(!h.signed_headers[..i].contains(n), "repeated {n:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let (line, rest) = match data.iter().position(|b| *b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (data, &[][..]),
    };
    let authorization = String::from_utf8_lossy(line);
    let Ok(input) = Request::arbitrary_take_rest(arbitrary::Unstructured::new(rest)) else {
        return;
    };
    let Some(parsed) = sigv4::parse_authorization(&authorization) else {
        return;
    };
    let h = match parsed {
        Ok(h) => h,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    check_grammar(&h);
    let again = sigv4::parse_authorization(&render(&h)).expect("still SigV4").expect("still valid");
    assert_eq!(again, h);

    let mut headers = http::HeaderMap::new();
    for (name, value) in input.headers.iter().take(16) {
        if let (Ok(n), Ok(v)) = (http::HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    let result = sigv4::verify(&h, &input.method, &input.path, input.query.as_deref(), &headers, &input.secret, input.now);
    match result {
        // A 256-bit MAC the fuzzer made up does not match: reaching here is a bypass.
        Ok(_) => panic!("a request verified with a made-up signature: {h:?}"),
        Err(e) => {
            let msg = e.to_string();
            if input.secret.len() >= 8 && msg.contains(&input.secret) {
                // Leaked only if it comes from the secret: with another secret of the same
                // length the message must no longer hold it (a secret such as "x-amz-da" is
                // also a piece of the message's own words or of the request).
                let other: String = input.secret.chars().map(|c| if c == '~' { '^' } else { '~' }).collect();
                let again = sigv4::verify(&h, &input.method, &input.path, input.query.as_deref(), &headers, &other, input.now);
                let msg2 = again.err().map(|e| e.to_string()).unwrap_or_default();
                assert!(msg2.contains(&input.secret), "the secret leaked into {msg:?}");
            }
        }
    }
});
