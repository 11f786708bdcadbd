//! [`ObjectMeta`] ↔ `object_store` [`Attributes`], and the names coffer keeps of its own.
//!
//! The standard fields become the store's own properties (`Content-Type`, …), so other
//! tools see them; `Expires`, the user metadata and coffer's bookkeeping become user
//! metadata of the store (`x-amz-meta-*`, `x-ms-meta-*`, `x-goog-meta-*`):
//!
//! | coffer                  | S3 / GCS name           | Azure name (C# identifiers only) |
//! | ----------------------- | ----------------------- | -------------------------------- |
//! | the ETag of a single PUT | `coffer-etag`          | `coffer_etag`                    |
//! | `Expires`               | `coffer-expires`        | `coffer_expires`                 |
//! | no `Content-Type` given | `coffer-untyped: 1`     | `coffer_untyped`                 |
//! | user key `k`            | `k`, or `coffer-key-<hex of k>` | `k`, or `coffer_key_<hex of k>` |
//!
//! A user key is stored under its own name when it is a plain name on that store (S3/GCS:
//! `[a-z0-9.-]+` — no `_`, which many HTTP servers and proxies drop from header names;
//! Azure: a C# identifier, `[a-z_][a-z0-9_]*`) and does not start with
//! `coffer-`/`coffer_`; otherwise hex-encoded, which keeps it reversible.
//!
//! Values travel as HTTP header values, which must be printable ASCII and lose leading and
//! trailing blanks. A value that is not plain (empty, non-ASCII, control characters, blanks
//! at either end, or starting with `=?`) is stored RFC 2047-style as `=?UTF-8?B?<base64>?=`
//! and decoded on the way back; since every value starting with `=?` is encoded, decoding is
//! exact.
//!
//! The store assigns a default `Content-Type` to objects stored without one; the
//! `coffer-untyped` marker tells them apart from objects whose client sent that type.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use object_store::{Attribute, AttributeValue, Attributes};

use crate::ObjectMeta;

/// Which store's naming rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    S3,
    Azure,
    Gcs,
}

impl Provider {
    fn separator(self) -> char {
        match self {
            Provider::Azure => '_',
            Provider::S3 | Provider::Gcs => '-',
        }
    }

    /// coffer's own metadata name `coffer<sep>what`.
    fn own(self, what: &str) -> String {
        let sep = self.separator();
        format!("coffer{sep}{}", what.replace('-', &sep.to_string()))
    }

    fn etag_name(self) -> String {
        self.own("etag")
    }

    /// Whether a user key can be stored under its own name.
    fn plain_key(self, key: &str) -> bool {
        if key.is_empty() || key.starts_with(&self.own("")) {
            return false;
        }
        match self {
            // No `_`: many HTTP servers and proxies drop headers with underscores.
            Provider::S3 | Provider::Gcs => {
                key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-'))
            }
            Provider::Azure => {
                let mut bytes = key.bytes();
                bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
                    && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            }
        }
    }

    fn encode_user_key(self, key: &str) -> String {
        if self.plain_key(key) { key.to_owned() } else { format!("{}{}", self.own("key-"), hex::encode(key)) }
    }

    /// The user key a stored metadata name stands for (`None` for coffer's own names).
    fn decode_user_key(self, name: &str) -> Option<String> {
        let name = name.to_ascii_lowercase();
        if let Some(hexed) = name.strip_prefix(&self.own("key-")) {
            return match hex::decode(hexed).ok().and_then(|b| String::from_utf8(b).ok()) {
                Some(key) => Some(key),
                None => Some(name),
            };
        }
        if name.starts_with(&self.own("")) {
            return None;
        }
        Some(name)
    }
}

const ENCODED_PREFIX: &str = "=?UTF-8?B?";
const ENCODED_SUFFIX: &str = "?=";

/// A metadata value as an HTTP header value can carry it.
pub(crate) fn encode_value(value: &str) -> String {
    let plain = !value.is_empty()
        && !value.starts_with("=?")
        && value.trim_matches([' ', '\t']) == value
        && value.bytes().all(|b| (0x20..0x7f).contains(&b));
    if plain { value.to_owned() } else { format!("{ENCODED_PREFIX}{}{ENCODED_SUFFIX}", BASE64.encode(value)) }
}

/// The inverse of [`encode_value`]; a value that does not decode is returned as is.
pub(crate) fn decode_value(value: &str) -> String {
    value
        .strip_prefix(ENCODED_PREFIX)
        .and_then(|v| v.strip_suffix(ENCODED_SUFFIX))
        .and_then(|b64| BASE64.decode(b64).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| value.to_owned())
}

/// The attributes an object is stored with; `etag` is coffer's ETag when it is known
/// before the upload (single PUTs).
pub(crate) fn to_attributes(provider: Provider, meta: &ObjectMeta, etag: Option<&str>) -> Attributes {
    let mut attrs = Attributes::new();
    let mut put = |k: Attribute, v: &str| {
        attrs.insert(k, AttributeValue::from(encode_value(v)));
    };
    match &meta.content_type {
        Some(ct) => put(Attribute::ContentType, ct),
        None => put(Attribute::Metadata(provider.own("untyped").into()), "1"),
    }
    if let Some(v) = &meta.content_encoding {
        put(Attribute::ContentEncoding, v);
    }
    if let Some(v) = &meta.content_disposition {
        put(Attribute::ContentDisposition, v);
    }
    if let Some(v) = &meta.content_language {
        put(Attribute::ContentLanguage, v);
    }
    if let Some(v) = &meta.cache_control {
        put(Attribute::CacheControl, v);
    }
    if let Some(v) = &meta.expires {
        put(Attribute::Metadata(provider.own("expires").into()), v);
    }
    if let Some(etag) = etag {
        put(Attribute::Metadata(provider.etag_name().into()), etag);
    }
    for (k, v) in &meta.user_metadata {
        put(Attribute::Metadata(provider.encode_user_key(k).into()), v);
    }
    attrs
}

/// The metadata of a stored object and coffer's ETag, when it was stored with one.
pub(crate) fn from_attributes(provider: Provider, attrs: &Attributes) -> (ObjectMeta, Option<String>) {
    let mut meta = ObjectMeta::default();
    let mut etag = None;
    let mut untyped = false;
    let mut user = BTreeMap::new();
    let (etag_name, expires_name, untyped_name) =
        (provider.etag_name(), provider.own("expires"), provider.own("untyped"));
    for (k, v) in attrs {
        let standard = !matches!(k, Attribute::Metadata(_));
        if standard && v.as_ref().is_empty() {
            // Stores answer an empty header for a property never set.
            continue;
        }
        let value = decode_value(v.as_ref());
        match k {
            Attribute::ContentType => meta.content_type = Some(value),
            Attribute::ContentEncoding => meta.content_encoding = Some(value),
            Attribute::ContentDisposition => meta.content_disposition = Some(value),
            Attribute::ContentLanguage => meta.content_language = Some(value),
            Attribute::CacheControl => meta.cache_control = Some(value),
            Attribute::Metadata(name) => {
                let lower = name.to_ascii_lowercase();
                if lower == etag_name {
                    etag = Some(value);
                } else if lower == expires_name {
                    meta.expires = Some(value);
                } else if lower == untyped_name {
                    untyped = true;
                } else if let Some(key) = provider.decode_user_key(&lower) {
                    user.insert(key, value);
                }
            }
            _ => {}
        }
    }
    if untyped {
        meta.content_type = None;
    }
    meta.user_metadata = user;
    (meta, etag)
}

/// An ETag as coffer reports it: without quotes (and without a weak marker).
pub(crate) fn strip_etag(etag: &str) -> String {
    etag.trim().trim_start_matches("W/").trim_matches('"').to_owned()
}

/// Whether an ETag is a plain MD5 (32 hex digits).
pub(crate) fn is_md5_hex(etag: &str) -> bool {
    etag.len() == 32 && etag.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_meta() -> ObjectMeta {
        let mut meta = ObjectMeta {
            content_type: Some("text/plain; charset=utf-8".into()),
            content_encoding: Some("gzip".into()),
            content_disposition: Some("attachment; filename=\"résumé.txt\"".into()),
            content_language: Some("fr".into()),
            cache_control: Some("no-cache".into()),
            expires: Some("Thu, 01 Dec 2094 16:00:00 GMT".into()),
            ..Default::default()
        };
        for (k, v) in [
            ("owner", "zoé"),
            ("with-dash", " padded "),
            ("under_score", ""),
            ("coffer-etag", "a user's own"),
            ("Upper", "=?UTF-8?B?Zm9v?="),
            ("dotted.name", "tab\there"),
        ] {
            meta.user_metadata.insert(k.into(), v.into());
        }
        meta
    }

    #[test]
    fn metadata_round_trips_on_every_provider() {
        for provider in [Provider::S3, Provider::Azure, Provider::Gcs] {
            let meta = full_meta();
            let attrs = to_attributes(provider, &meta, Some("0123456789abcdef0123456789abcdef"));
            for (_, v) in &attrs {
                assert!(v.as_ref().bytes().all(|b| (0x20..0x7f).contains(&b)), "{provider:?}: {v:?}");
            }
            if provider == Provider::Azure {
                for (k, _) in &attrs {
                    if let Attribute::Metadata(name) = k {
                        let ok = name.bytes().next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
                            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                        assert!(ok, "{name:?} is not a C# identifier");
                    }
                }
            }
            let (back, etag) = from_attributes(provider, &attrs);
            assert_eq!(back, meta, "{provider:?}");
            assert_eq!(etag.as_deref(), Some("0123456789abcdef0123456789abcdef"));
        }
    }

    #[test]
    fn untyped_objects_stay_untyped() {
        for provider in [Provider::S3, Provider::Azure, Provider::Gcs] {
            let mut attrs = to_attributes(provider, &ObjectMeta::default(), None);
            // The store fills in its default type.
            attrs.insert(Attribute::ContentType, "binary/octet-stream".into());
            let (back, etag) = from_attributes(provider, &attrs);
            assert_eq!(back, ObjectMeta::default());
            assert_eq!(etag, None);
        }
    }

    #[test]
    fn plain_names_and_values_are_kept() {
        assert_eq!(Provider::S3.encode_user_key("my-key"), "my-key");
        assert_eq!(Provider::Azure.encode_user_key("my_key"), "my_key");
        assert_eq!(Provider::Azure.encode_user_key("my-key"), format!("coffer_key_{}", hex::encode("my-key")));
        assert_eq!(encode_value("text/html"), "text/html");
        assert_eq!(decode_value(&encode_value("=?x")), "=?x");
        assert_eq!(strip_etag("\"abc\""), "abc");
        assert_eq!(strip_etag("W/\"abc\""), "abc");
        assert!(is_md5_hex("d41d8cd98f00b204e9800998ecf8427e"));
        assert!(!is_md5_hex("d41d8cd98f00b204e9800998ecf8427e-2"));
    }
}
