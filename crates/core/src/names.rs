//! Parsed names. Input is parsed into these once, at the edge; past that point a
//! `BucketName` is known to follow the S3 rules and nobody checks again.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a name was refused. The message is safe to show to a client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {value:?} is invalid: {reason}")]
pub struct NameError {
    pub what: &'static str,
    pub value: String,
    pub reason: &'static str,
}

fn refuse(what: &'static str, value: &str, reason: &'static str) -> NameError {
    NameError { what, value: value.to_owned(), reason }
}

/// A bucket name following the AWS general-purpose bucket naming rules:
/// 3–63 characters of lowercase letters, digits, `.` and `-`; starting and ending with a
/// letter or digit; no `..`, `.-` or `-.`; not shaped like an IP address; none of the reserved prefixes
/// (`xn--`, `sthree-`, `amzn-s3-demo-`) or suffixes (`-s3alias`, `--ol-s3`, `.mrap`, `--x-s3`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
pub struct BucketName(String);

impl BucketName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        const W: &str = "bucket name";
        if s.len() < 3 || s.len() > 63 {
            return Err(refuse(W, s, "must be 3 to 63 characters long"));
        }
        if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-') {
            return Err(refuse(W, s, "may contain only lowercase letters, digits, '.' and '-'"));
        }
        let edge_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        if !edge_ok(s.as_bytes()[0]) || !edge_ok(s.as_bytes()[s.len() - 1]) {
            return Err(refuse(W, s, "must begin and end with a letter or digit"));
        }
        if s.contains("..") {
            return Err(refuse(W, s, "must not contain two adjacent periods"));
        }
        if s.contains(".-") || s.contains("-.") {
            return Err(refuse(W, s, "each dot-separated label must begin and end with a letter or digit"));
        }
        if s.parse::<std::net::Ipv4Addr>().is_ok() {
            return Err(refuse(W, s, "must not be formatted as an IP address"));
        }
        for p in ["xn--", "sthree-", "amzn-s3-demo-"] {
            if s.starts_with(p) {
                return Err(refuse(W, s, "uses a reserved prefix"));
            }
        }
        for p in ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"] {
            if s.ends_with(p) {
                return Err(refuse(W, s, "uses a reserved suffix"));
            }
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BucketName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        Self::parse(&s)
    }
}

impl From<BucketName> for String {
    fn from(b: BucketName) -> String {
        b.0
    }
}

impl fmt::Display for BucketName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An object key: any non-empty UTF-8 string of at most 1024 bytes, stored exactly as given
/// (`..` segments, `%`, spaces, trailing `/` included). Backends must keep it inside its bucket.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// The S3 limit on a key's length in bytes.
    pub const MAX_LEN: usize = 1024;

    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty() {
            return Err(refuse("object key", s, "must not be empty"));
        }
        if s.len() > Self::MAX_LEN {
            return Err(refuse("object key", s, "must be at most 1024 bytes"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A user or group name: 1–128 characters of letters, digits and `.`, `_`, `-`, `@`, `:`.
/// The same rules serve for group names; `:` admits Kubernetes service-account names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
pub struct UserName(String);

impl UserName {
    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty() || s.len() > 128 {
            return Err(refuse("name", s, "must be 1 to 128 characters long"));
        }
        if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@' | ':')) {
            return Err(refuse("name", s, "may contain only letters, digits and . _ - @ :"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for UserName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        Self::parse(&s)
    }
}

impl From<UserName> for String {
    fn from(u: UserName) -> String {
        u.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A data classification such as `unclassified` or `protected-b`: 1–64 characters of
/// lowercase letters, digits and `-`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
pub struct Classification(String);

impl Classification {
    /// The classification of a bucket created without one, and the clearance every principal
    /// has unless configured otherwise.
    pub const DEFAULT: &'static str = "unclassified";

    pub fn parse(s: &str) -> Result<Self, NameError> {
        if s.is_empty() || s.len() > 64 {
            return Err(refuse("classification", s, "must be 1 to 64 characters long"));
        }
        if !s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(refuse("classification", s, "may contain only lowercase letters, digits and '-'"));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn unclassified() -> Self {
        Self(Self::DEFAULT.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Classification {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, NameError> {
        Self::parse(&s)
    }
}

impl From<Classification> for String {
    fn from(c: Classification) -> String {
        c.0
    }
}

impl fmt::Display for Classification {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_names_follow_the_aws_rules() {
        let ok = ["abc", "my-bucket", "my.bucket.2", "a1b", &"a".repeat(63)];
        for n in ok {
            assert!(BucketName::parse(n).is_ok(), "{n} should be valid");
        }
        let bad = [
            "ab",
            &"a".repeat(64),
            "My-Bucket",
            "my_bucket",
            "-abc",
            "abc-",
            ".abc",
            "a..b",
            "192.168.5.4",
            "xn--abc",
            "sthree-abc",
            "abc-s3alias",
            "abc--ol-s3",
            "abc.mrap",
            "bucket with space",
            "foo.-bar",
            "foo-.bar",
            "",
        ];
        for n in bad {
            assert!(BucketName::parse(n).is_err(), "{n:?} should be invalid");
        }
    }

    #[test]
    fn object_keys_keep_anything_but_empty_or_too_long() {
        for k in ["a", "../../etc/passwd", "dir/", "100% sure", "résumé/ünï", "a//b", " "] {
            assert_eq!(ObjectKey::parse(k).unwrap().as_str(), k);
        }
        assert!(ObjectKey::parse("").is_err());
        assert!(ObjectKey::parse(&"k".repeat(1025)).is_err());
        assert!(ObjectKey::parse(&"k".repeat(1024)).is_ok());
    }

    #[test]
    fn user_and_classification_names() {
        assert!(UserName::parse("alice").is_ok());
        assert!(UserName::parse("system:serviceaccount:ns:sa").is_ok());
        assert!(UserName::parse("alice smith").is_err());
        assert!(UserName::parse("").is_err());
        assert!(Classification::parse("protected-b").is_ok());
        assert!(Classification::parse("Protected-B").is_err());
    }
}
