//! A small AWS Signature Version 4 signer: header signing (what an SDK does for every
//! request) and presigned URLs (for curl). Only what the load generator needs: path-style
//! requests whose path and query are already URI-encoded, and a handful of headers.
//!
//! The signing key depends only on the secret, the date, the region and the service, so it is
//! derived once per day and reused, as the SDKs do.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The SHA-256 of an empty payload, hex.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Credentials and scope of a signer.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub access_key: String,
    pub secret_key: String,
    pub region: String,
}

/// A signer with its derived key cached for one date.
#[derive(Debug, Clone)]
pub struct Signer {
    creds: Credentials,
    /// `(YYYYMMDD, key)`.
    key: Option<(String, [u8; 32])>,
}

/// `YYYYMMDDTHHMMSSZ` for a Unix time.
pub fn amz_date(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Unix seconds now.
pub fn now_unix() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(data);
    m.finalize().into_bytes().into()
}

/// Hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// RFC 3986 encoding as SigV4 wants it (unreserved characters kept; `/` kept when asked).
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The canonical query string: parameters sorted by name, then value (they must be encoded).
fn canonical_query(query: &str) -> String {
    if query.is_empty() {
        return String::new();
    }
    let mut pairs: Vec<(&str, &str)> = query.split('&').map(|p| p.split_once('=').unwrap_or((p, ""))).collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(query.len() + 8);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

impl Signer {
    pub fn new(creds: Credentials) -> Self {
        Signer { creds, key: None }
    }

    fn signing_key(&mut self, date: &str) -> [u8; 32] {
        if let Some((d, k)) = &self.key
            && d == date
        {
            return *k;
        }
        let k_date = hmac(format!("AWS4{}", self.creds.secret_key).as_bytes(), date.as_bytes());
        let k_region = hmac(&k_date, self.creds.region.as_bytes());
        let k_service = hmac(&k_region, b"s3");
        let key = hmac(&k_service, b"aws4_request");
        self.key = Some((date.to_owned(), key));
        key
    }

    fn signature(&mut self, amz_date: &str, canonical_request: &str) -> (String, String) {
        let date = &amz_date[..8];
        let scope = format!("{date}/{}/s3/aws4_request", self.creds.region);
        let to_sign = format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", sha256_hex(canonical_request.as_bytes()));
        let key = self.signing_key(date);
        (scope, hex::encode(hmac(&key, to_sign.as_bytes())))
    }

    /// Sign a request in its headers. `path` and `query` must be URI-encoded already;
    /// `headers` are the other headers to sign, lower-case names (besides `host`,
    /// `x-amz-content-sha256` and `x-amz-date`, which are always signed). Returns the headers
    /// to send: `x-amz-date`, `x-amz-content-sha256`, `authorization` (the caller sends `host`
    /// and its own `headers`).
    #[allow(clippy::too_many_arguments)] // the inputs of SigV4's canonical request, each one distinct
    pub fn sign_headers(
        &mut self,
        method: &str,
        host: &str,
        path: &str,
        query: &str,
        headers: &[(&str, &str)],
        payload_sha256: &str,
        amz_date: &str,
    ) -> [(&'static str, String); 3] {
        let mut all: Vec<(&str, &str)> = Vec::with_capacity(headers.len() + 3);
        all.push(("host", host));
        all.push(("x-amz-content-sha256", payload_sha256));
        all.push(("x-amz-date", amz_date));
        all.extend_from_slice(headers);
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut canonical = String::with_capacity(256);
        canonical.push_str(method);
        canonical.push('\n');
        canonical.push_str(path);
        canonical.push('\n');
        canonical.push_str(&canonical_query(query));
        canonical.push('\n');
        for (k, v) in &all {
            canonical.push_str(k);
            canonical.push(':');
            canonical.push_str(v.trim());
            canonical.push('\n');
        }
        canonical.push('\n');
        let signed: Vec<&str> = all.iter().map(|(k, _)| *k).collect();
        let signed = signed.join(";");
        canonical.push_str(&signed);
        canonical.push('\n');
        canonical.push_str(payload_sha256);
        let (scope, signature) = self.signature(amz_date, &canonical);
        let authorization = format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={signature}",
            self.creds.access_key
        );
        [
            ("x-amz-date", amz_date.to_owned()),
            ("x-amz-content-sha256", payload_sha256.to_owned()),
            ("authorization", authorization),
        ]
    }

    /// A presigned URL (`http://host/path?…`) valid for `expires` seconds, signing only
    /// `host`, with an unsigned payload.
    pub fn presign(&mut self, method: &str, host: &str, path: &str, expires: u32, amz_date: &str) -> String {
        let date = &amz_date[..8];
        let credential = format!("{}/{date}/{}/s3/aws4_request", self.creds.access_key, self.creds.region);
        let query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}&X-Amz-Date={amz_date}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host",
            uri_encode(&credential, false)
        );
        let canonical = format!("{method}\n{path}\n{}\nhost:{host}\n\nhost\nUNSIGNED-PAYLOAD", canonical_query(&query));
        let (_, signature) = self.signature(amz_date, &canonical);
        format!("http://{host}{path}?{query}&X-Amz-Signature={signature}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example() -> Signer {
        // The example credentials of AWS's SigV4 documentation for S3.
        Signer::new(Credentials {
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            region: "us-east-1".into(),
        })
    }

    #[test]
    fn dates() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_369_353_600), "20130524T000000Z");
        assert_eq!(amz_date(951_825_600 + 3661), "20000229T130101Z");
    }

    /// AWS's documented example: GET Object with a Range header (signature from the S3 API
    /// reference, "Signature Calculations for the Authorization Header").
    #[test]
    fn aws_get_object_example() {
        let mut s = example();
        let h = s.sign_headers(
            "GET",
            "examplebucket.s3.amazonaws.com",
            "/test.txt",
            "",
            &[("range", "bytes=0-9")],
            EMPTY_SHA256,
            "20130524T000000Z",
        );
        assert_eq!(
            h[2].1,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// AWS's documented example of a presigned URL (S3 API reference, "Authenticating
    /// Requests: Using Query Parameters").
    #[test]
    fn aws_presigned_example() {
        let mut s = example();
        let url = s.presign("GET", "examplebucket.s3.amazonaws.com", "/test.txt", 86400, "20130524T000000Z");
        assert!(
            url.ends_with("X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"),
            "{url}"
        );
    }

    /// What the server verifies: coffer's own verifier accepts the signer's headers.
    #[test]
    fn coffer_verifies_what_we_sign() {
        let mut s = example();
        let date = amz_date(now_unix());
        let sha = sha256_hex(b"hello");
        let h = s.sign_headers("PUT", "127.0.0.1:9000", "/b/a%20key", "x-id=PutObject", &[], &sha, &date);
        let mut headers = http::HeaderMap::new();
        headers.insert("host", "127.0.0.1:9000".parse().unwrap());
        for (k, v) in &h {
            headers.insert(*k, v.parse().unwrap());
        }
        let parsed = coffer_identity::sigv4::parse_authorization(&h[2].1).unwrap().unwrap();
        coffer_identity::sigv4::verify(
            &parsed,
            "PUT",
            "/b/a%20key",
            Some("x-id=PutObject"),
            &headers,
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            now_unix(),
        )
        .unwrap();
    }

    #[test]
    fn encoding_and_query_order() {
        assert_eq!(uri_encode("a b/c~", true), "a%20b/c~");
        assert_eq!(uri_encode("a/b", false), "a%2Fb");
        assert_eq!(
            canonical_query("prefix=&list-type=2&continuation-token=x"),
            "continuation-token=x&list-type=2&prefix="
        );
    }
}
