//! AWS Signature Version 4, header form, for requests that do not go through s3s.
//!
//! coffer's JSON REST API accepts the same credentials as the S3 API, signed the same way:
//! `Authorization: AWS4-HMAC-SHA256 Credential=<id>/<YYYYMMDD>/<region>/s3/aws4_request,
//! SignedHeaders=<a;b;c>, Signature=<64 hex>`, computed exactly as for S3 (botocore's
//! `S3SigV4Auth` is the reference client). The S3 flavour matters in one place: the
//! canonical URI is the path **as sent on the wire**, already percent-encoded, and is not
//! encoded a second time.
//!
//! The flow for a caller:
//! 1. [`parse_authorization`] on the `Authorization` value (`None`: another scheme);
//! 2. look up the secret of [`SigV4Header::access_key_id`] (and check the region, if it
//!    cares);
//! 3. [`verify`] — the rules S3 applies: `x-amz-date` within 15 minutes and on the scope's
//!    day, `host` signed, every signed header present, every `x-amz-*` header signed,
//!    `x-amz-content-sha256` declared, and a signature compared in constant time;
//! 4. when the declared payload is [`PayloadHash::Sha256`], feed the body through a
//!    [`PayloadCheck`] and refuse the request if it does not match.
//!
//! Errors ([`SigV4Error`]) never carry the secret or the signature the server expected.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The only algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service of the credential scope that coffer's clients sign with.
pub const SERVICE: &str = "s3";
/// How far the request time may be from the server's clock, in seconds (15 minutes, as S3).
pub const MAX_SKEW_SECONDS: i64 = 15 * 60;
/// The `x-amz-content-sha256` value of a request whose body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

const SCOPE_TERMINATOR: &str = "aws4_request";
const AMZ_DATE: &str = "x-amz-date";
const CONTENT_SHA256: &str = "x-amz-content-sha256";

type HmacSha256 = Hmac<Sha256>;

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigV4Header {
    pub access_key_id: String,
    /// The credential scope's date, `YYYYMMDD`.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lower-case header names, in the order the client listed (and signed) them.
    pub signed_headers: Vec<String>,
    /// 64 hex digits.
    pub signature: String,
}

/// Why a request's signature was refused. The messages name what is wrong with the
/// request; none contains the secret or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// The Authorization header or one of the signing headers cannot be understood.
    #[error("malformed SigV4 authorization: {0}")]
    Malformed(String),
    /// A header needed for the signature (a required one, or one listed as signed) is
    /// absent.
    #[error("the request lacks the header {0}")]
    MissingHeader(String),
    /// A header that must be signed (`host`, any `x-amz-*`) is not among the signed
    /// headers.
    #[error("the header {0} must be signed")]
    UnsignedHeader(String),
    /// `x-amz-date` is more than 15 minutes away from the server's clock.
    #[error("the difference between the request time and the server's time is too large")]
    RequestTimeTooSkewed,
    /// The signature is not the one the secret gives for this request.
    #[error("the request signature does not match")]
    SignatureDoesNotMatch,
    /// An `x-amz-content-sha256` that this verifier does not handle (streaming uploads).
    #[error("unsupported x-amz-content-sha256: {0}")]
    UnsupportedPayload(String),
}

fn malformed(message: &str) -> SigV4Error {
    SigV4Error::Malformed(message.to_owned())
}

/// Parse an `Authorization` value if it is of the `AWS4-HMAC-SHA256 …` scheme.
///
/// `None` means another scheme (`Bearer …`, SigV2's `AWS id:sig`, …), for another
/// verifier to consider; `Some(Err(_))` a SigV4 header that is malformed.
pub fn parse_authorization(value: &str) -> Option<Result<SigV4Header, SigV4Error>> {
    let rest = value.trim_start().strip_prefix(ALGORITHM)?;
    if !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    Some(parse_fields(rest))
}

fn parse_fields(fields: &str) -> Result<SigV4Header, SigV4Error> {
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for field in fields.split(',') {
        let field = field.trim_matches([' ', '\t']);
        let Some((key, value)) = field.split_once('=') else {
            return Err(malformed("expected Credential=…, SignedHeaders=…, Signature=…"));
        };
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => return Err(malformed("unknown component in the Authorization header")),
        };
        if slot.replace(value).is_some() {
            return Err(malformed("repeated component in the Authorization header"));
        }
    }
    let credential = credential.ok_or_else(|| malformed("missing Credential"))?;
    let signed_headers = signed_headers.ok_or_else(|| malformed("missing SignedHeaders"))?;
    let signature = signature.ok_or_else(|| malformed("missing Signature"))?;

    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts[..] else {
        return Err(malformed("Credential must be <access key>/<YYYYMMDD>/<region>/<service>/aws4_request"));
    };
    if terminator != SCOPE_TERMINATOR {
        return Err(malformed("the credential scope must end with aws4_request"));
    }
    if access_key_id.is_empty() || region.is_empty() || service.is_empty() {
        return Err(malformed("empty part in Credential"));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed("the credential scope's date must be YYYYMMDD"));
    }

    let mut names: Vec<String> = Vec::new();
    for name in signed_headers.split(';') {
        let valid = !name.is_empty()
            && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.!#$%&'*+^`|~".contains(&b));
        if !valid {
            return Err(malformed("SignedHeaders must be lower-case header names separated by ;"));
        }
        if names.iter().any(|n| n == name) {
            return Err(malformed("repeated header in SignedHeaders"));
        }
        names.push(name.to_owned());
    }

    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed("Signature must be 64 hex digits"));
    }

    Ok(SigV4Header {
        access_key_id: access_key_id.to_owned(),
        date: date.to_owned(),
        region: region.to_owned(),
        service: service.to_owned(),
        signed_headers: names,
        signature: signature.to_owned(),
    })
}

/// What the client declared about the body in `x-amz-content-sha256`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadHash {
    /// `UNSIGNED-PAYLOAD`: the body is not covered by the signature.
    Unsigned,
    /// The SHA-256 of the body, which the caller must check (see [`PayloadCheck`]).
    Sha256([u8; 32]),
}

impl PayloadHash {
    /// A checker for the body, when there is a hash to check.
    pub fn check(&self) -> Option<PayloadCheck> {
        match self {
            PayloadHash::Unsigned => None,
            PayloadHash::Sha256(expected) => Some(PayloadCheck::new(*expected)),
        }
    }
}

/// Verify the signature of a request.
///
/// - `method`: as received (`GET`, `PUT`, …);
/// - `raw_path`: the path exactly as received, percent-encoded, without the query;
/// - `raw_query`: the query string as received, without the `?` (`None` if there is none);
/// - `headers`: the request headers; they must include `host` (over HTTP/2, put the
///   `:authority` there first);
/// - `secret`: the secret access key of `header.access_key_id`;
/// - `now`: the server's clock, Unix seconds.
///
/// The region of the scope is not checked here (the caller knows whether it cares). On
/// success, returns the payload hash the client declared: when it is
/// [`PayloadHash::Sha256`], the caller must check the body against it.
pub fn verify(
    header: &SigV4Header,
    method: &str,
    raw_path: &str,
    raw_query: Option<&str>,
    headers: &http::HeaderMap,
    secret: &str,
    now: i64,
) -> Result<PayloadHash, SigV4Error> {
    if header.service != SERVICE {
        return Err(malformed("the credential scope's service must be s3"));
    }
    let is_signed = |name: &str| header.signed_headers.iter().any(|n| n == name);
    if !is_signed("host") {
        return Err(SigV4Error::UnsignedHeader("host".to_owned()));
    }

    // The signing time.
    let amz_date = match single_header(headers, AMZ_DATE)? {
        Some(value) => value,
        None if headers.contains_key(http::header::DATE) => {
            return Err(malformed("x-amz-date is required; the Date header is not accepted as the signing time"));
        }
        None => return Err(SigV4Error::MissingHeader(AMZ_DATE.to_owned())),
    };
    let signed_at =
        parse_amz_date(amz_date).ok_or_else(|| malformed("x-amz-date must be in the form YYYYMMDDTHHMMSSZ"))?;
    if amz_date[..8] != header.date {
        return Err(malformed("x-amz-date is not on the credential scope's date"));
    }
    if now.abs_diff(signed_at) > MAX_SKEW_SECONDS.unsigned_abs() {
        return Err(SigV4Error::RequestTimeTooSkewed);
    }

    // The payload declaration.
    let content_sha256 =
        single_header(headers, CONTENT_SHA256)?.ok_or_else(|| SigV4Error::MissingHeader(CONTENT_SHA256.to_owned()))?;
    let payload = parse_payload_hash(content_sha256)?;

    // Every x-amz-* header present must be signed (S3's rule), so none can be added or
    // changed on the way.
    if let Some(name) =
        headers.keys().map(http::HeaderName::as_str).find(|name| name.starts_with("x-amz-") && !is_signed(name))
    {
        return Err(SigV4Error::UnsignedHeader(name.to_owned()));
    }

    let canonical = canonical_request(header, method, raw_path, raw_query, headers, content_sha256)?;
    let scope = format!("{}/{}/{}/{SCOPE_TERMINATOR}", header.date, header.region, header.service);
    let string_to_sign = format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(&canonical)));

    let provided = hex::decode(&header.signature).map_err(|_| malformed("Signature must be 64 hex digits"))?;
    let key = signing_key(secret, &header.date, &header.region, &header.service);
    let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(string_to_sign.as_bytes());
    mac.verify_slice(&provided).map_err(|_| SigV4Error::SignatureDoesNotMatch)?;
    Ok(payload)
}

/// The value of a header that may appear at most once, as text.
fn single_header<'a>(headers: &'a http::HeaderMap, name: &'static str) -> Result<Option<&'a str>, SigV4Error> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(SigV4Error::Malformed(format!("the header {name} is repeated")));
    }
    let value = value.to_str().map_err(|_| SigV4Error::Malformed(format!("the header {name} is not ASCII")))?;
    Ok(Some(value.trim()))
}

/// `YYYYMMDDTHHMMSSZ` to Unix seconds.
fn parse_amz_date(value: &str) -> Option<i64> {
    let b = value.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        let digits = &value[range];
        if !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    };
    let year = i32::try_from(number(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(number(4..6)?).ok()?).ok()?;
    let day = u8::try_from(number(6..8)?).ok()?;
    let hour = u8::try_from(number(9..11)?).ok()?;
    let minute = u8::try_from(number(11..13)?).ok()?;
    let second = u8::try_from(number(13..15)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let time = time::Time::from_hms(hour, minute, second).ok()?;
    Some(time::PrimitiveDateTime::new(date, time).assume_utc().unix_timestamp())
}

fn parse_payload_hash(value: &str) -> Result<PayloadHash, SigV4Error> {
    if value == UNSIGNED_PAYLOAD {
        return Ok(PayloadHash::Unsigned);
    }
    if value.starts_with("STREAMING-") {
        let shown: String = value.chars().take(64).collect();
        return Err(SigV4Error::UnsupportedPayload(format!(
            "{shown} (streaming signed payloads are not accepted here; send the body's SHA-256 or UNSIGNED-PAYLOAD)"
        )));
    }
    let mut hash = [0u8; 32];
    if value.len() != 64 || hex::decode_to_slice(value, &mut hash).is_err() {
        return Err(malformed("x-amz-content-sha256 must be UNSIGNED-PAYLOAD or 64 hex digits"));
    }
    Ok(PayloadHash::Sha256(hash))
}

/// The canonical request, as bytes (header values need not be UTF-8).
fn canonical_request(
    header: &SigV4Header,
    method: &str,
    raw_path: &str,
    raw_query: Option<&str>,
    headers: &http::HeaderMap,
    payload_hash: &str,
) -> Result<Vec<u8>, SigV4Error> {
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(method.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(if raw_path.is_empty() { "/" } else { raw_path }.as_bytes());
    out.push(b'\n');
    out.extend_from_slice(canonical_query(raw_query.unwrap_or("")).as_bytes());
    out.push(b'\n');
    for name in &header.signed_headers {
        let mut values = headers.get_all(name.as_str()).iter().peekable();
        if values.peek().is_none() {
            return Err(SigV4Error::MissingHeader(name.clone()));
        }
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_header_value(&mut out, value.as_bytes());
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(header.signed_headers.join(";").as_bytes());
    out.push(b'\n');
    out.extend_from_slice(payload_hash.as_bytes());
    Ok(out)
}

/// A header value trimmed, with each run of inner spaces or tabs collapsed to one space.
fn push_header_value(out: &mut Vec<u8>, value: &[u8]) {
    let words = value.split(|b| *b == b' ' || *b == b'\t').filter(|w| !w.is_empty());
    for (i, word) in words.enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(word);
    }
}

/// The canonical query string: each name and value percent-decoded (a `+` stays a `+`),
/// then encoded the AWS way, a missing `=` read as an empty value, the pairs sorted by
/// encoded name then encoded value.
fn canonical_query(raw: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (name, value) = p.split_once('=').unwrap_or((p, ""));
            (aws_encode(&percent_decode(name)), aws_encode(&percent_decode(value)))
        })
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(raw.len() + 16);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Decode `%XX` escapes; a `%` not followed by two hex digits is kept as it is.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(hi), Some(lo)) =
                (b.get(i + 1).and_then(|c| hex_value(*c)), b.get(i + 2).and_then(|c| hex_value(*c)))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// AWS's URI encoding: unreserved characters (`A-Za-z0-9-._~`) kept, every other byte
/// `%XX` in upper-case hex.
fn aws_encode(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

/// `kSigning` = HMAC chain over date, region, service and `aws4_request`.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let step = |key: &[u8], data: &str| -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().into()
    };
    let k_date = step(format!("AWS4{secret}").as_bytes(), date);
    let k_region = step(&k_date, region);
    let k_service = step(&k_region, service);
    step(&k_service, SCOPE_TERMINATOR)
}

/// Checks a body, fed in pieces, against the SHA-256 the client declared.
#[derive(Clone)]
pub struct PayloadCheck {
    expected: [u8; 32],
    hasher: Sha256,
}

impl std::fmt::Debug for PayloadCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PayloadCheck").field("expected", &hex::encode(self.expected)).finish_non_exhaustive()
    }
}

impl PayloadCheck {
    /// A check against `expected`, the declared SHA-256 of the whole body.
    pub fn new(expected: [u8; 32]) -> Self {
        Self { expected, hasher: Sha256::new() }
    }

    /// Feed the next piece of the body.
    pub fn update(&mut self, chunk: &[u8]) {
        self.hasher.update(chunk);
    }

    /// Whether the body fed so far is the one declared.
    pub fn finish(self) -> bool {
        let actual: [u8; 32] = self.hasher.finalize().into();
        actual == self.expected
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderName, HeaderValue};

    const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const HOST: &str = "examplebucket.s3.amazonaws.com";
    const AMZ_DATE_2013: &str = "20130524T000000Z";
    /// 2013-05-24T00:00:00Z.
    const NOW_2013: i64 = 1_369_353_600;
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn header_map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn authorization(signed_headers: &str, signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders={signed_headers}, Signature={signature}"
        )
    }

    fn parse(value: &str) -> SigV4Header {
        parse_authorization(value).expect("a SigV4 header").expect("well formed")
    }

    // --- AWS's documented examples -------------------------------------------------

    const GET_OBJECT_SIGNATURE: &str = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

    fn get_object() -> (SigV4Header, HeaderMap) {
        let header = parse(&authorization("host;range;x-amz-content-sha256;x-amz-date", GET_OBJECT_SIGNATURE));
        let headers = header_map(&[
            ("host", HOST),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", AMZ_DATE_2013),
        ]);
        (header, headers)
    }

    #[test]
    fn aws_example_get_object() {
        let (header, headers) = get_object();
        let expected_canonical = format!(
            "GET\n/test.txt\n\nhost:{HOST}\nrange:bytes=0-9\nx-amz-content-sha256:{EMPTY_SHA256}\n\
             x-amz-date:{AMZ_DATE_2013}\n\nhost;range;x-amz-content-sha256;x-amz-date\n{EMPTY_SHA256}"
        );
        let canonical = canonical_request(&header, "GET", "/test.txt", None, &headers, EMPTY_SHA256).unwrap();
        assert_eq!(String::from_utf8(canonical).unwrap(), expected_canonical);

        let payload = verify(&header, "GET", "/test.txt", None, &headers, SECRET, NOW_2013).unwrap();
        let mut empty = [0u8; 32];
        hex::decode_to_slice(EMPTY_SHA256, &mut empty).unwrap();
        assert_eq!(payload, PayloadHash::Sha256(empty));
    }

    #[test]
    fn aws_example_list_objects_sorts_the_query() {
        let header = parse(&authorization(
            "host;x-amz-content-sha256;x-amz-date",
            "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        ));
        let headers =
            header_map(&[("host", HOST), ("x-amz-content-sha256", EMPTY_SHA256), ("x-amz-date", AMZ_DATE_2013)]);
        for query in ["max-keys=2&prefix=J", "prefix=J&max-keys=2"] {
            verify(&header, "GET", "/", Some(query), &headers, SECRET, NOW_2013).unwrap();
        }
    }

    #[test]
    fn aws_example_get_bucket_lifecycle_has_a_parameter_without_value() {
        let header = parse(&authorization(
            "host;x-amz-content-sha256;x-amz-date",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        ));
        let headers =
            header_map(&[("host", HOST), ("x-amz-content-sha256", EMPTY_SHA256), ("x-amz-date", AMZ_DATE_2013)]);
        for query in ["lifecycle", "lifecycle="] {
            verify(&header, "GET", "/", Some(query), &headers, SECRET, NOW_2013).unwrap();
        }
    }

    #[test]
    fn aws_example_put_object_uses_the_path_as_sent() {
        let body = b"Welcome to Amazon S3.";
        let body_hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
        let header = parse(&authorization(
            "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
            "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        ));
        let headers = header_map(&[
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("host", HOST),
            ("x-amz-content-sha256", body_hash),
            ("x-amz-date", AMZ_DATE_2013),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ]);
        let payload = verify(&header, "PUT", "/test%24file.text", None, &headers, SECRET, NOW_2013).unwrap();
        let mut check = payload.check().expect("a signed payload");
        check.update(&body[..7]);
        check.update(&body[7..]);
        assert!(check.finish());
    }

    // --- refusals ----------------------------------------------------------------

    #[test]
    fn tampering_breaks_the_signature() {
        let (header, headers) = get_object();
        let ok =
            |method, path, query, headers: &HeaderMap| verify(&header, method, path, query, headers, SECRET, NOW_2013);
        assert!(ok("GET", "/test.txt", None, &headers).is_ok());
        let mismatch = Err(SigV4Error::SignatureDoesNotMatch);
        assert_eq!(ok("PUT", "/test.txt", None, &headers), mismatch);
        assert_eq!(ok("GET", "/test.txT", None, &headers), mismatch);
        assert_eq!(ok("GET", "/test%2Etxt", None, &headers), mismatch);
        assert_eq!(ok("GET", "/test.txt", Some("a=1"), &headers), mismatch);

        let mut other_range = headers.clone();
        other_range.insert("range", HeaderValue::from_static("bytes=0-99"));
        assert_eq!(ok("GET", "/test.txt", None, &other_range), mismatch);

        let mut two_ranges = headers.clone();
        two_ranges.append("range", HeaderValue::from_static("bytes=20-29"));
        assert_eq!(ok("GET", "/test.txt", None, &two_ranges), mismatch);

        // Unsigned, non-x-amz headers may change freely.
        let mut extra = headers.clone();
        extra.insert("user-agent", HeaderValue::from_static("curl/8"));
        assert!(ok("GET", "/test.txt", None, &extra).is_ok());

        let mut tampered = header.clone();
        tampered.signature = format!("{}0", &GET_OBJECT_SIGNATURE[..63]);
        assert_eq!(verify(&tampered, "GET", "/test.txt", None, &headers, SECRET, NOW_2013), mismatch);

        let mut other_region = header.clone();
        other_region.region = "eu-west-1".into();
        assert_eq!(verify(&other_region, "GET", "/test.txt", None, &headers, SECRET, NOW_2013), mismatch);
    }

    #[test]
    fn wrong_secret_fails() {
        let (header, headers) = get_object();
        let err = verify(&header, "GET", "/test.txt", None, &headers, "not-the-secret", NOW_2013).unwrap_err();
        assert_eq!(err, SigV4Error::SignatureDoesNotMatch);
        let message = err.to_string();
        assert!(!message.contains(GET_OBJECT_SIGNATURE));
        assert!(!message.contains(SECRET));
    }

    #[test]
    fn clock_skew_is_bounded_to_fifteen_minutes() {
        let (header, headers) = get_object();
        let at = |now| verify(&header, "GET", "/test.txt", None, &headers, SECRET, now);
        assert!(at(NOW_2013 + MAX_SKEW_SECONDS).is_ok());
        assert!(at(NOW_2013 - MAX_SKEW_SECONDS).is_ok());
        assert_eq!(at(NOW_2013 + MAX_SKEW_SECONDS + 1), Err(SigV4Error::RequestTimeTooSkewed));
        assert_eq!(at(NOW_2013 - MAX_SKEW_SECONDS - 1), Err(SigV4Error::RequestTimeTooSkewed));
        assert_eq!(at(1_700_000_000), Err(SigV4Error::RequestTimeTooSkewed));
    }

    #[test]
    fn host_must_be_signed() {
        let (_, headers) = get_object();
        let header = parse(&authorization("range;x-amz-content-sha256;x-amz-date", GET_OBJECT_SIGNATURE));
        assert_eq!(
            verify(&header, "GET", "/test.txt", None, &headers, SECRET, NOW_2013),
            Err(SigV4Error::UnsignedHeader("host".into()))
        );
    }

    #[test]
    fn x_amz_headers_must_be_signed() {
        let (header, mut headers) = get_object();
        headers.insert("x-amz-meta-color", HeaderValue::from_static("blue"));
        assert_eq!(
            verify(&header, "GET", "/test.txt", None, &headers, SECRET, NOW_2013),
            Err(SigV4Error::UnsignedHeader("x-amz-meta-color".into()))
        );
    }

    #[test]
    fn signed_headers_must_be_present() {
        let (header, mut headers) = get_object();
        headers.remove("range");
        assert_eq!(
            verify(&header, "GET", "/test.txt", None, &headers, SECRET, NOW_2013),
            Err(SigV4Error::MissingHeader("range".into()))
        );
    }

    #[test]
    fn the_signing_headers_are_required_and_checked() {
        let (header, headers) = get_object();
        let run = |headers: &HeaderMap| verify(&header, "GET", "/test.txt", None, headers, SECRET, NOW_2013);

        let mut no_date = headers.clone();
        no_date.remove("x-amz-date");
        assert_eq!(run(&no_date), Err(SigV4Error::MissingHeader("x-amz-date".into())));
        no_date.insert("date", HeaderValue::from_static("Fri, 24 May 2013 00:00:00 GMT"));
        assert!(matches!(run(&no_date), Err(SigV4Error::Malformed(m)) if m.contains("Date")));

        let mut bad_date = headers.clone();
        bad_date.insert("x-amz-date", HeaderValue::from_static("2013-05-24T00:00:00Z"));
        assert!(matches!(run(&bad_date), Err(SigV4Error::Malformed(_))));
        bad_date.insert("x-amz-date", HeaderValue::from_static("20130231T000000Z"));
        assert!(matches!(run(&bad_date), Err(SigV4Error::Malformed(_))));

        // A time on another day than the scope's, even within the skew.
        let mut other_day = headers.clone();
        other_day.insert("x-amz-date", HeaderValue::from_static("20130523T235959Z"));
        assert!(matches!(run(&other_day), Err(SigV4Error::Malformed(m)) if m.contains("scope")));

        let mut no_hash = headers.clone();
        no_hash.remove("x-amz-content-sha256");
        assert_eq!(run(&no_hash), Err(SigV4Error::MissingHeader("x-amz-content-sha256".into())));

        let mut streaming = headers.clone();
        streaming.insert("x-amz-content-sha256", HeaderValue::from_static("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"));
        assert!(matches!(run(&streaming), Err(SigV4Error::UnsupportedPayload(_))));

        let mut short_hash = headers.clone();
        short_hash.insert("x-amz-content-sha256", HeaderValue::from_static("abcd"));
        assert!(matches!(run(&short_hash), Err(SigV4Error::Malformed(_))));

        let mut wrong_service = header.clone();
        wrong_service.service = "iam".into();
        assert!(matches!(
            verify(&wrong_service, "GET", "/test.txt", None, &headers, SECRET, NOW_2013),
            Err(SigV4Error::Malformed(_))
        ));
    }

    #[test]
    fn other_schemes_are_not_ours() {
        assert_eq!(parse_authorization("Bearer x"), None);
        assert_eq!(parse_authorization("AWS id:sig"), None);
        assert_eq!(parse_authorization("AWS4-HMAC-SHA256X Credential=a"), None);
        assert_eq!(parse_authorization(""), None);
    }

    #[test]
    fn garbage_sigv4_headers_are_malformed() {
        let sig = GET_OBJECT_SIGNATURE;
        let cred = "AKID/20130524/us-east-1/s3/aws4_request";
        let cases = [
            "AWS4-HMAC-SHA256".to_owned(),
            "AWS4-HMAC-SHA256 garbage".to_owned(),
            format!("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=host"),
            format!("AWS4-HMAC-SHA256 Credential={cred}, Signature={sig}"),
            format!("AWS4-HMAC-SHA256 SignedHeaders=host, Signature={sig}"),
            format!("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=host, Signature=abc"),
            format!("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=host, Signature={}", "z".repeat(64)),
            format!("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=Host, Signature={sig}"),
            format!("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=host;;range, Signature={sig}"),
            format!("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=host;host, Signature={sig}"),
            format!("AWS4-HMAC-SHA256 Credential={cred}, SignedHeaders=host, Signature={sig}, Extra=1"),
            format!("AWS4-HMAC-SHA256 Credential={cred}, Credential={cred}, SignedHeaders=host, Signature={sig}"),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/20130524/us-east-1/s3/aws5_request, SignedHeaders=host, Signature={sig}"
            ),
            format!(
                "AWS4-HMAC-SHA256 Credential=AKID/2013-05-24/us-east-1/s3/aws4_request, SignedHeaders=host, Signature={sig}"
            ),
            format!("AWS4-HMAC-SHA256 Credential=AKID/20130524/s3/aws4_request, SignedHeaders=host, Signature={sig}"),
            format!(
                "AWS4-HMAC-SHA256 Credential=/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature={sig}"
            ),
        ];
        for case in &cases {
            match parse_authorization(case) {
                Some(Err(SigV4Error::Malformed(_))) => {}
                other => panic!("{case:?} gave {other:?}"),
            }
        }
    }

    #[test]
    fn parses_with_or_without_spaces() {
        let compact = parse(&format!(
            "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/20130524/us-east-1/s3/aws4_request,\
             SignedHeaders=host;x-amz-date,Signature={GET_OBJECT_SIGNATURE}"
        ));
        assert_eq!(
            compact,
            SigV4Header {
                access_key_id: ACCESS_KEY.into(),
                date: "20130524".into(),
                region: "us-east-1".into(),
                service: "s3".into(),
                signed_headers: vec!["host".into(), "x-amz-date".into()],
                signature: GET_OBJECT_SIGNATURE.into(),
            }
        );
        let spaced = parse(&format!(
            "  AWS4-HMAC-SHA256   Credential={ACCESS_KEY}/20130524/us-east-1/s3/aws4_request ,  \
             SignedHeaders=host;x-amz-date,\tSignature={GET_OBJECT_SIGNATURE} "
        ));
        assert_eq!(spaced, compact);
    }

    // --- canonical forms ---------------------------------------------------------

    #[test]
    fn canonical_query_decodes_then_reencodes() {
        assert_eq!(canonical_query(""), "");
        assert_eq!(
            canonical_query("b=2&a=x+y&c&a=%20z&%c3%bc=1&&d=a/b~c&e=100%"),
            "%C3%BC=1&a=%20z&a=x%2By&b=2&c=&d=a%2Fb~c&e=100%25"
        );
    }

    #[test]
    fn canonical_header_values_are_trimmed_and_joined() {
        let header = parse(&authorization("host;x-custom", GET_OBJECT_SIGNATURE));
        let headers = header_map(&[("host", HOST), ("x-custom", "  a   b \t c  "), ("x-custom", "d")]);
        let canonical = canonical_request(&header, "GET", "", None, &headers, "h").unwrap();
        assert_eq!(
            String::from_utf8(canonical).unwrap(),
            format!("GET\n/\n\nhost:{HOST}\nx-custom:a b c,d\n\nhost;x-custom\nh")
        );
    }

    // --- a round trip with an independent signer --------------------------------

    /// Signs like a client would: takes the canonical URI and query already in their
    /// canonical form and the headers to sign (lower-case, sorted, clean values; the
    /// signing time and the payload hash are read from `x-amz-date` and
    /// `x-amz-content-sha256` among them).
    fn client_signature(
        secret: &str,
        region: &str,
        method: &str,
        canonical_uri: &str,
        canonical_query: &str,
        signed: &[(&str, &str)],
    ) -> String {
        let value = |name: &str| signed.iter().find(|(n, _)| *n == name).unwrap().1;
        let amz_date = value("x-amz-date");
        let payload_hash = value("x-amz-content-sha256");
        fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
            let mut mac = HmacSha256::new_from_slice(key).unwrap();
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        let mut canonical = format!("{method}\n{canonical_uri}\n{canonical_query}\n");
        for (name, value) in signed {
            canonical.push_str(&format!("{name}:{value}\n"));
        }
        let names: Vec<&str> = signed.iter().map(|(n, _)| *n).collect();
        canonical.push_str(&format!("\n{}\n{payload_hash}", names.join(";")));
        let day = &amz_date[..8];
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{day}/{region}/s3/aws4_request\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let mut key = hmac(format!("AWS4{secret}").as_bytes(), day.as_bytes());
        for part in [region, "s3", "aws4_request"] {
            key = hmac(&key, part.as_bytes());
        }
        hex::encode(hmac(&key, to_sign.as_bytes()))
    }

    #[test]
    fn round_trip_with_spaces_plus_unicode_and_empty_values() {
        let secret = "s3cr3t/with+symbols=";
        let amz_date = "20240229T235930Z";
        let now = 1_709_251_170; // 2024-02-29T23:59:30Z
        let body = "{\"name\":\"ünïcode\"}";
        let body_hash = hex::encode(Sha256::digest(body.as_bytes()));
        let path = "/v1/buckets/my%20bucket/objects/a%2Fb%20c.txt";
        // As a client would send it: spaces as %20, a literal '+', lower-case escapes,
        // a parameter without '=', one with an empty value, a repeated name, a '/'.
        let raw_query = "q=a%20b&plus=1+2&name=%c3%bc&flag&empty=&a=2&a=1&path=a/b~c&x%20y=z";
        // What botocore computes from the decoded parameters.
        let canonical_query = "a=1&a=2&empty=&flag=&name=%C3%BC&path=a%2Fb~c&plus=1%2B2&q=a%20b&x%20y=z";
        let signed = [
            ("content-type", "application/json"),
            ("host", "coffer.example:8443"),
            ("x-amz-content-sha256", body_hash.as_str()),
            ("x-amz-date", amz_date),
            ("x-amz-security-token", "tok en"),
        ];
        let signature = client_signature(secret, "eu-central-1", "POST", path, canonical_query, &signed);
        let header = parse(&format!(
            "AWS4-HMAC-SHA256 Credential=CKEXAMPLE/20240229/eu-central-1/s3/aws4_request, \
             SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date;x-amz-security-token, \
             Signature={signature}"
        ));
        // Sent with some untidy whitespace, and an unsigned header.
        let headers = header_map(&[
            ("host", "coffer.example:8443"),
            ("content-type", " application/json "),
            ("x-amz-content-sha256", &body_hash),
            ("x-amz-date", amz_date),
            ("x-amz-security-token", "tok   en"),
            ("accept", "*/*"),
        ]);

        let payload = verify(&header, "POST", path, Some(raw_query), &headers, secret, now).unwrap();
        let mut check = payload.check().unwrap();
        check.update(body.as_bytes());
        assert!(check.finish());

        // The same parameters in another order and encoding still verify...
        let reordered = "x%20y=z&path=a%2Fb~c&q=a%20b&a=1&flag=&empty&plus=1%2b2&name=%C3%BC&a=2";
        assert!(verify(&header, "POST", path, Some(reordered), &headers, secret, now).is_ok());
        // ...but '+' is not a space, and the path is not re-encoded or decoded.
        let plus_as_space = raw_query.replace("q=a%20b", "q=a+b");
        assert_eq!(
            verify(&header, "POST", path, Some(&plus_as_space), &headers, secret, now),
            Err(SigV4Error::SignatureDoesNotMatch)
        );
        assert_eq!(
            verify(
                &header,
                "POST",
                "/v1/buckets/my bucket/objects/a%2Fb%20c.txt",
                Some(raw_query),
                &headers,
                secret,
                now
            ),
            Err(SigV4Error::SignatureDoesNotMatch)
        );
        assert_eq!(
            verify(
                &header,
                "POST",
                "/v1/buckets/my%20bucket/objects/a/b%20c.txt",
                Some(raw_query),
                &headers,
                secret,
                now
            ),
            Err(SigV4Error::SignatureDoesNotMatch)
        );
        let unsigned = PayloadHash::Unsigned;
        assert!(unsigned.check().is_none());
    }

    #[test]
    fn unsigned_payload_round_trip() {
        let amz_date = "20240229T235930Z";
        let now = 1_709_251_170;
        let signed = [("host", "h"), ("x-amz-content-sha256", UNSIGNED_PAYLOAD), ("x-amz-date", amz_date)];
        let signature = client_signature("k", "us-east-1", "DELETE", "/x", "", &signed);
        let header = parse(&format!(
            "AWS4-HMAC-SHA256 Credential=CK/20240229/us-east-1/s3/aws4_request, \
             SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature={signature}"
        ));
        let headers = header_map(&signed);
        assert_eq!(verify(&header, "DELETE", "/x", None, &headers, "k", now), Ok(PayloadHash::Unsigned));
        assert_eq!(verify(&header, "DELETE", "/x", Some(""), &headers, "k", now), Ok(PayloadHash::Unsigned));
    }

    // --- payload check -----------------------------------------------------------

    #[test]
    fn payload_check_matches_and_mismatches() {
        let expected: [u8; 32] = Sha256::digest(b"hello world").into();

        let mut whole = PayloadCheck::new(expected);
        whole.update(b"hello world");
        assert!(whole.finish());

        let mut pieces = PayloadCheck::new(expected);
        for chunk in [&b"hel"[..], b"", b"lo wor", b"ld"] {
            pieces.update(chunk);
        }
        assert!(pieces.finish());

        let mut different = PayloadCheck::new(expected);
        different.update(b"hello world!");
        assert!(!different.finish());

        let mut truncated = PayloadCheck::new(expected);
        truncated.update(b"hello");
        assert!(!truncated.finish());

        let mut empty: [u8; 32] = [0; 32];
        hex::decode_to_slice(EMPTY_SHA256, &mut empty).unwrap();
        assert!(PayloadCheck::new(empty).finish());
    }
}
