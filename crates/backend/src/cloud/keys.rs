//! Key ↔ object-name encoding for the cloud stores.
//!
//! `object_store`'s [`Path`](object_store::path::Path) cannot hold an empty segment (`a//b`),
//! a `.` or `..` segment, or an ASCII control character, and it strips leading and trailing
//! `/`; S3 keys may contain all of these. Each `/`-separated segment of a key is therefore
//! mapped, reversibly:
//!
//! | in the key                       | stored as          |
//! | -------------------------------- | ------------------ |
//! | `%`                              | `%25`              |
//! | an ASCII control character       | `%XX` (upper hex)  |
//! | a segment that is exactly `.`    | `%2E`              |
//! | a segment that is exactly `..`   | `%2E%2E`           |
//! | an empty segment                 | `%` (a lone `%`, which no other rule produces) |
//!
//! On Azure two more, because its front end rewrites names: `\` → `%5C` (Azure turns a
//! backslash into `/`), and a `.` ending a segment → `%2E` (Azure drops trailing dots of
//! path segments). This is the [`Dialect::Azure`].
//!
//! Everything else is kept, so ordinary keys are stored under their own names and a tool
//! that mounts the bucket directly sees real names. Decoding accepts only the canonical
//! spelling (`%41` is not a name this encoding writes), so names written by someone else
//! are recognised and skipped by listings.
//!
//! The store lists names in byte order of the *encoded* names. That is the byte order of
//! the keys, except for keys with the features above (for example `a/.` is stored as
//! `a/%2E` and sorts before `a/-`; `a/` is stored as `a/%` and sorts after `a/ b`).

use std::fmt::Write;

/// The escaping rules of a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// S3 and GCS: `%`, control characters, `.`/`..`/empty segments.
    Standard,
    /// Azure: also `\` and a segment's trailing `.`.
    Azure,
}

/// The encoding of a whole key.
pub(crate) fn encode_key(key: &str, dialect: Dialect) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    for (i, segment) in key.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        encode_segment(segment, dialect, &mut out);
    }
    out
}

/// Append the encoding of one complete segment.
fn encode_segment(segment: &str, dialect: Dialect, out: &mut String) {
    match segment {
        "" => out.push('%'),
        "." => out.push_str("%2E"),
        ".." => out.push_str("%2E%2E"),
        _ => {
            let (body, trailing_dot) = match dialect {
                Dialect::Azure if segment.ends_with('.') => (&segment[..segment.len() - 1], true),
                _ => (segment, false),
            };
            encode_chars(body, dialect, out);
            if trailing_dot {
                out.push_str("%2E");
            }
        }
    }
}

fn escaped(c: char, dialect: Dialect) -> bool {
    c == '%' || c.is_ascii_control() || (dialect == Dialect::Azure && c == '\\')
}

/// Append `s` with the per-character escapes.
fn encode_chars(s: &str, dialect: Dialect, out: &mut String) {
    for c in s.chars() {
        if escaped(c, dialect) {
            let _ = write!(out, "%{:02X}", c as u32);
        } else {
            out.push(c);
        }
    }
}

/// The key an encoded name stands for, or `None` when the name is not a canonical
/// encoding (it was written by someone else).
pub(crate) fn decode_key(name: &str, dialect: Dialect) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    for (i, segment) in name.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(&decode_segment(segment, dialect)?);
    }
    Some(out)
}

/// Decode one complete segment, canonical spellings only.
fn decode_segment(enc: &str, dialect: Dialect) -> Option<String> {
    let decoded = if enc == "%" { String::new() } else { unescape(enc)? };
    let mut canonical = String::with_capacity(enc.len());
    encode_segment(&decoded, dialect, &mut canonical);
    (canonical == enc).then_some(decoded)
}

/// Reverse `%XX` escapes of ASCII characters (upper-case hex only).
fn unescape(enc: &str) -> Option<String> {
    let mut out = String::with_capacity(enc.len());
    let mut rest = enc;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let hex = rest.get(at + 1..at + 3)?;
        if !hex.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)) {
            return None;
        }
        let byte = u8::from_str_radix(hex, 16).ok()?;
        if !byte.is_ascii() {
            return None;
        }
        out.push(char::from(byte));
        rest = &rest[at + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// Decode a common prefix the store rolled up at `delimiter` (one the listing lets the
/// store apply, see [`delimiter_is_safe`]): complete segments, then the partial segment
/// that ends with the delimiter.
pub(crate) fn decode_common_prefix(enc: &str, delimiter: &str, dialect: Dialect) -> Option<String> {
    if delimiter == "/" {
        let body = enc.strip_suffix('/')?;
        return Some(format!("{}/", decode_key(body, dialect)?));
    }
    let (complete, partial) = match enc.rsplit_once('/') {
        Some((complete, partial)) => (Some(complete), partial),
        None => (None, enc),
    };
    let mut out = match complete {
        Some(c) => format!("{}/", decode_key(c, dialect)?),
        None => String::new(),
    };
    let decoded = unescape(partial)?;
    // Canonical only, and not a whole-segment special case.
    if encode_partial_segment(&decoded, dialect) != (partial.to_owned(), true) {
        return None;
    }
    out.push_str(&decoded);
    Some(out)
}

/// Whether the store can roll up encoded names at `delimiter` and get exactly the common
/// prefixes of the keys: `/` (kept as is by the encoding), or a delimiter without any of
/// the characters the encoding introduces or removes (`%`, `/`, `.`, `\`, upper-case hex
/// digits, control characters). Other delimiters are rolled up by coffer itself.
pub(crate) fn delimiter_is_safe(delimiter: &str) -> bool {
    delimiter == "/"
        || (!delimiter.is_empty()
            && delimiter.chars().all(|c| {
                !(matches!(c, '%' | '/' | '.' | '\\')
                    || c.is_ascii_digit()
                    || ('A'..='F').contains(&c)
                    || c.is_ascii_control())
            }))
}

/// The encoding of the beginning of a segment whose end is unknown, and whether it is
/// exact (every segment starting with `partial` is stored under a name starting with the
/// encoding, and conversely). Not exact for the beginnings of the whole-segment special
/// cases (`.`, `..`) and, on Azure, for a beginning that ends with `.`: then the longest
/// encoding that every such segment starts with.
fn encode_partial_segment(partial: &str, dialect: Dialect) -> (String, bool) {
    if partial == "." || partial == ".." {
        return (String::new(), false);
    }
    let mut out = String::with_capacity(partial.len());
    match dialect {
        Dialect::Azure if partial.ends_with('.') => {
            encode_chars(partial.trim_end_matches('.'), dialect, &mut out);
            (out, false)
        }
        _ => {
            encode_chars(partial, dialect, &mut out);
            (out, true)
        }
    }
}

/// How a listing prefix maps onto encoded names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EncodedPrefix {
    /// Every encoded name of a key starting with the prefix starts with this.
    pub encoded: String,
    /// Whether the converse holds too: every decodable name starting with `encoded` is a
    /// key starting with the prefix. When not, listings filter by the decoded key.
    pub exact: bool,
}

/// The encoded form of a listing prefix.
pub(crate) fn encode_prefix(prefix: &str, dialect: Dialect) -> EncodedPrefix {
    let (complete, partial) = match prefix.rsplit_once('/') {
        Some((complete, partial)) => (Some(complete), partial),
        None => (None, prefix),
    };
    let mut encoded = match complete {
        Some(c) => {
            let mut e = encode_key(c, dialect);
            e.push('/');
            e
        }
        None => String::new(),
    };
    let (p, exact) = encode_partial_segment(partial, dialect);
    encoded.push_str(&p);
    EncodedPrefix { encoded, exact }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIALECTS: [Dialect; 2] = [Dialect::Standard, Dialect::Azure];

    fn nasty() -> Vec<String> {
        let mut keys: Vec<String> = [
            "a",
            "a/b",
            "a/",
            "/a",
            "/",
            "//",
            "a//b",
            ".",
            "..",
            "../..",
            "a/../../b",
            "./.",
            "...",
            ".hidden",
            "%",
            "%41",
            "%2E",
            "%25",
            "a%",
            "100% done",
            "tab\there",
            "nul\0byte",
            "new\nline",
            "del\u{7f}",
            "résumé",
            "日本語/キー",
            "emoji 🎉",
            "",
            "x/./y",
            "x/../y",
            "trailing//",
            "back\\slash",
            "dot./x",
            "a.",
            "a..b.",
            "%5C",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        keys.push("a/".repeat(50));
        keys
    }

    #[test]
    fn round_trips_and_paths_are_valid() {
        for dialect in DIALECTS {
            for key in nasty() {
                let enc = encode_key(&key, dialect);
                assert_eq!(decode_key(&enc, dialect).as_deref(), Some(key.as_str()), "{key:?} -> {enc:?}");
                let path = object_store::path::Path::parse(&enc).unwrap_or_else(|e| panic!("{key:?} -> {enc:?}: {e}"));
                assert_eq!(path.as_ref(), enc, "{key:?}: the store keeps the name as is");
                if dialect == Dialect::Azure {
                    assert!(!enc.contains('\\'), "{enc:?}");
                    assert!(enc.split('/').all(|s| !s.ends_with('.')), "{enc:?}");
                }
            }
        }
    }

    #[test]
    fn ordinary_keys_keep_their_names() {
        for key in ["a", "photos/2024/jan 1.jpg", "x-y_z.~!$&'()*+,;=:@", "é/è", ".hidden/.x", "a..b", "..."] {
            assert_eq!(encode_key(key, Dialect::Standard), key);
        }
        assert_eq!(encode_key("photos/2024/jan 1.jpg", Dialect::Azure), "photos/2024/jan 1.jpg");
        assert_eq!(encode_key("a//b", Dialect::Standard), "a/%/b");
        assert_eq!(encode_key("/", Dialect::Standard), "%/%");
        assert_eq!(encode_key("a/../.", Dialect::Standard), "a/%2E%2E/%2E");
        assert_eq!(encode_key("50%\t", Dialect::Standard), "50%25%09");
        assert_eq!(encode_key("a\\b./...", Dialect::Azure), "a%5Cb%2E/..%2E");
        assert_eq!(encode_key("a\\b./...", Dialect::Standard), "a\\b./...");
    }

    #[test]
    fn foreign_names_do_not_decode() {
        for name in ["%41", "%2e", "%zz", "a%", "%2", "a/./b", "a//b", "%C3%A9", "a%2Eb"] {
            for dialect in DIALECTS {
                assert_eq!(decode_key(name, dialect), None, "{name:?}");
            }
        }
        assert_eq!(decode_key("%252", Dialect::Standard).as_deref(), Some("%2"));
        assert_eq!(decode_key("%2541", Dialect::Standard).as_deref(), Some("%41"));
        assert_eq!(decode_key("a.", Dialect::Azure), None, "Azure never stores a trailing dot");
        assert_eq!(decode_key("a%5C", Dialect::Standard), None);
    }

    #[test]
    fn distinct_keys_have_distinct_names() {
        for dialect in DIALECTS {
            let keys = nasty();
            let mut names: Vec<String> = keys.iter().map(|k| encode_key(k, dialect)).collect();
            names.sort();
            names.dedup();
            let mut unique = keys.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(names.len(), unique.len());
        }
    }

    #[test]
    fn prefixes() {
        let p = |s: &str| encode_prefix(s, Dialect::Standard);
        assert_eq!(p(""), EncodedPrefix { encoded: "".into(), exact: true });
        assert_eq!(p("a/b"), EncodedPrefix { encoded: "a/b".into(), exact: true });
        assert_eq!(p("a//"), EncodedPrefix { encoded: "a/%/".into(), exact: true });
        assert_eq!(p("a/."), EncodedPrefix { encoded: "a/".into(), exact: false });
        assert_eq!(p("a/%"), EncodedPrefix { encoded: "a/%25".into(), exact: true });
        assert_eq!(encode_prefix("x/a.", Dialect::Azure), EncodedPrefix { encoded: "x/a".into(), exact: false });
        // Every key with the prefix has a name with the encoded prefix.
        for dialect in DIALECTS {
            for key in nasty() {
                for end in (0..=key.len()).filter(|&i| key.is_char_boundary(i)) {
                    let prefix = &key[..end];
                    let ep = encode_prefix(prefix, dialect);
                    assert!(encode_key(&key, dialect).starts_with(&ep.encoded), "{key:?} / {prefix:?} -> {ep:?}");
                }
            }
        }
    }

    #[test]
    fn common_prefixes_decode() {
        let d = Dialect::Standard;
        assert_eq!(decode_common_prefix("a/%/", "/", d).as_deref(), Some("a//"));
        assert_eq!(decode_common_prefix("%/", "/", d).as_deref(), Some("/"));
        assert_eq!(decode_common_prefix("a/b-", "-", d).as_deref(), Some("a/b-"));
        assert_eq!(decode_common_prefix("a/%25x-", "-", d).as_deref(), Some("a/%x-"));
        assert_eq!(decode_common_prefix("a/%41-", "-", d), None);
        assert!(delimiter_is_safe("/") && delimiter_is_safe("-") && delimiter_is_safe("ab") && delimiter_is_safe("é"));
        for unsafe_ in ["", ".", "%", "/2", "//", "2", "E", "a\n", "\\"] {
            assert!(!delimiter_is_safe(unsafe_), "{unsafe_:?}");
        }
    }
}
