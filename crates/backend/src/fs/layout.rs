//! Key ↔ path encoding: where an object key lives below its bucket directory.
//!
//! S3 keys are arbitrary UTF-8 strings (`..` segments, `%`, empty segments as in `a//b`,
//! trailing `/`, …) and S3 lets the object `a` and the object `a/b` exist at the same time.
//! A filesystem allows neither escape-prone names nor a file and a directory of the same
//! name, so every key is split on `/` and each segment is encoded:
//!
//! - bytes `[A-Za-z0-9._-]` are kept, every other byte becomes `%XX` (uppercase hex);
//! - the segments `.` and `..` are fully escaped (`%2E`, `%2E%2E`), so no path component
//!   can ever be `.` or `..`, and no component contains `/`: a key cannot leave its bucket;
//! - the empty segment is `%e` (lowercase, so it is never confused with `%XX`);
//! - an encoding longer than [`MAX_SEGMENT`] bytes is replaced by `%h<sha256 hex>` of the raw
//!   segment (file names are limited to 255 bytes).
//!
//! Intermediate segments become directories named `<encoding>%`. A canonical encoding never
//! ends with a lone `%`, so a directory can never collide with an object file of the same
//! segment: `a` (file) and `a%/b` (file `b` in directory `a%`) coexist. A hashed directory
//! keeps its raw segment in a [`NAME_FILE`] inside it, so listings can recover it; a hashed
//! object file needs nothing extra, since its trailer carries the full key.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The longest encoded segment kept as is; longer ones are hashed.
pub(crate) const MAX_SEGMENT: usize = 200;
/// The longest full path (bucket directory included) an object may have.
pub(crate) const MAX_PATH: usize = 3800;
/// The longest key S3 accepts, in bytes.
pub(crate) const MAX_KEY: usize = 1024;
/// The file inside a hashed directory that holds the directory's raw segment.
pub(crate) const NAME_FILE: &str = "%name";
/// The suffix that marks a directory (an intermediate key segment).
const DIR_SUFFIX: char = '%';
/// The marker of a hashed name: `%h` followed by 64 lowercase hex digits.
const HASH_MARK: &str = "%h";
/// The encoding of the empty segment.
const EMPTY: &str = "%e";

/// One encoded path component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Component {
    /// The file or directory name on disk (directories carry the `%` suffix).
    pub name: String,
    /// The raw segment, when the name is a hash and the raw segment must be stored beside it.
    pub hashed_raw: Option<String>,
}

/// Where a key lives, relative to its bucket directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyPath {
    /// The directories, outermost first.
    pub dirs: Vec<Component>,
    /// The object file inside the innermost directory.
    pub file: Component,
}

impl KeyPath {
    /// The full path of the object file below `bucket_dir`.
    pub fn file_path(&self, bucket_dir: &Path) -> PathBuf {
        let mut p = self.dir_path(bucket_dir, self.dirs.len());
        p.push(&self.file.name);
        p
    }

    /// The path of the first `depth` directories below `bucket_dir`.
    pub fn dir_path(&self, bucket_dir: &Path, depth: usize) -> PathBuf {
        let mut p = bucket_dir.to_path_buf();
        for d in &self.dirs[..depth] {
            p.push(&d.name);
        }
        p
    }
}

/// Encode a key into its path below `bucket_dir`; `KeyTooLong` when the key or the
/// resulting path is too long for the filesystem.
pub(crate) fn key_path(bucket_dir: &Path, key: &str) -> Result<KeyPath> {
    key_path_below(bucket_dir.as_os_str().len(), key)
}

/// [`key_path`] below a bucket directory whose path is `dir_len` bytes long.
pub(crate) fn key_path_below(dir_len: usize, key: &str) -> Result<KeyPath> {
    if key.len() > MAX_KEY {
        return Err(Error::KeyTooLong);
    }
    let mut segments: Vec<&str> = key.split('/').collect();
    let last = segments.pop().unwrap_or_default();
    let dirs: Vec<Component> = segments.into_iter().map(dir_component).collect();
    let file = file_component(last);
    let len = dir_len + dirs.iter().map(|d| d.name.len() + 1).sum::<usize>() + 1 + file.name.len();
    if len > MAX_PATH {
        return Err(Error::KeyTooLong);
    }
    Ok(KeyPath { dirs, file })
}

/// The directory a complete key segment becomes.
pub(crate) fn dir_component(segment: &str) -> Component {
    let (mut name, hashed) = encode_segment(segment);
    name.push(DIR_SUFFIX);
    Component { name, hashed_raw: hashed.then(|| segment.to_owned()) }
}

/// The object file the last key segment becomes.
fn file_component(segment: &str) -> Component {
    let (name, hashed) = encode_segment(segment);
    Component { name, hashed_raw: hashed.then(|| segment.to_owned()) }
}

/// Encode one segment; the flag tells whether the name is a hash.
pub(crate) fn encode_segment(segment: &str) -> (String, bool) {
    if segment.is_empty() {
        return (EMPTY.to_owned(), false);
    }
    if segment == "." || segment == ".." {
        return ("%2E".repeat(segment.len()), false);
    }
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX_UPPER[usize::from(b >> 4)]));
            out.push(char::from(HEX_UPPER[usize::from(b & 0xf)]));
        }
    }
    if out.len() > MAX_SEGMENT {
        return (format!("{HASH_MARK}{}", hex::encode(Sha256::digest(segment.as_bytes()))), true);
    }
    (out, false)
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

/// What a name found on disk stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// A segment, decoded from its name.
    Segment(String),
    /// A hashed name: the raw segment is stored elsewhere (trailer or [`NAME_FILE`]).
    Hashed,
}

/// Decode the name of a directory entry: `None` for anything this backend did not write
/// (stray files, [`NAME_FILE`], non-canonical spellings), which listings ignore.
pub(crate) fn decode_name(name: &str, is_dir: bool) -> Option<Decoded> {
    let enc = if is_dir { name.strip_suffix(DIR_SUFFIX)? } else { name };
    if let Some(hash) = enc.strip_prefix(HASH_MARK) {
        let ok = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        return ok.then_some(Decoded::Hashed);
    }
    let segment = decode_segment(enc)?;
    // Only the canonical spelling is ours; anything else is a stray file.
    (encode_segment(&segment) == (enc.to_owned(), false)).then_some(Decoded::Segment(segment))
}

/// Reverse the percent-encoding of one segment (not hashed).
fn decode_segment(enc: &str) -> Option<String> {
    if enc == EMPTY {
        return Some(String::new());
    }
    let bytes = enc.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = hex_digit(*bytes.get(i + 1)?)?;
            let lo = hex_digit(*bytes.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// An uppercase hex digit's value.
fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The directory below `bucket_dir` that holds every key starting with `prefix`, and the
/// key prefix those keys share (the complete segments of `prefix`, each followed by `/`).
pub(crate) fn prefix_dir(bucket_dir: &Path, prefix: &str) -> (PathBuf, String) {
    let mut dir = bucket_dir.to_path_buf();
    match prefix.rsplit_once('/') {
        None => (dir, String::new()),
        Some((head, _)) => {
            for seg in head.split('/') {
                dir.push(dir_component(seg).name);
            }
            (dir, format!("{head}/"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Component as PathComponent;

    use super::*;

    /// Rebuild the key from a key path, the way a listing does.
    fn decode_key(kp: &KeyPath) -> String {
        let mut segments = Vec::new();
        for d in &kp.dirs {
            match decode_name(&d.name, true).expect("dir name decodes") {
                Decoded::Segment(s) => segments.push(s),
                Decoded::Hashed => segments.push(d.hashed_raw.clone().expect("hashed dir keeps its name")),
            }
        }
        match decode_name(&kp.file.name, false).expect("file name decodes") {
            Decoded::Segment(s) => segments.push(s),
            Decoded::Hashed => segments.push(kp.file.hashed_raw.clone().expect("hashed file keeps its name")),
        }
        segments.join("/")
    }

    fn nasty_keys() -> Vec<String> {
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
            "../../etc/passwd",
            "a/../../b",
            "./.",
            "...",
            ".hidden",
            "%",
            "%41",
            "%e",
            "%h",
            "%name",
            "a%",
            "a%/b%",
            "100% done",
            "with space",
            "résumé",
            "日本語/キー",
            "emoji 🎉/x",
            "back\\slash",
            "nul\0byte",
            "tab\tnew\nline",
            "a-b",
            "A_B.c",
            "~tilde",
            "+plus=eq&amp?q#frag",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        keys.push("x".repeat(1024));
        keys.push("é".repeat(100));
        keys.push(format!("{}/{}", "%".repeat(300), "y".repeat(300)));
        keys.push(format!("{}/tail", "d".repeat(201)));
        keys.push(format!("{}/", "d".repeat(200)));
        keys.push("a/".repeat(300));
        keys
    }

    #[test]
    fn keys_round_trip() {
        let bucket = Path::new("/srv/coffer/bucket");
        for key in nasty_keys() {
            let kp = key_path(bucket, &key).unwrap_or_else(|e| panic!("{key:?}: {e}"));
            assert_eq!(decode_key(&kp), key, "round trip of {key:?}");
        }
    }

    #[test]
    fn paths_never_escape_the_bucket() {
        let bucket = Path::new("/srv/coffer/bucket");
        for key in nasty_keys() {
            let kp = key_path(bucket, &key).unwrap();
            let path = kp.file_path(bucket);
            assert!(path.starts_with(bucket), "{key:?} -> {path:?}");
            let rel = path.strip_prefix(bucket).unwrap();
            assert_eq!(rel.components().count(), kp.dirs.len() + 1, "{key:?} -> {rel:?}");
            for c in rel.components() {
                let PathComponent::Normal(name) = c else { panic!("{key:?} -> {rel:?} has {c:?}") };
                let name = name.to_str().unwrap();
                assert!(name != "." && name != ".." && !name.is_empty(), "{key:?} -> {name:?}");
                assert!(name.len() <= 255, "{key:?} -> {name:?}");
                assert!(!name.contains('/') && !name.contains('\0'), "{key:?} -> {name:?}");
            }
        }
    }

    #[test]
    fn files_and_dirs_never_collide() {
        let bucket = Path::new("/b");
        let file = key_path(bucket, "a").unwrap().file_path(bucket);
        let dir = key_path(bucket, "a/b").unwrap().dir_path(bucket, 1);
        assert_ne!(file, dir);
        for key in nasty_keys() {
            let kp = key_path(bucket, &key).unwrap();
            assert!(!kp.file.name.ends_with('%'), "{key:?}");
            assert!(kp.dirs.iter().all(|d| d.name.ends_with('%')), "{key:?}");
            assert!(decode_name(&kp.file.name, true).is_none(), "{key:?} file name is not a directory name");
        }
    }

    #[test]
    fn encodings_are_as_documented() {
        assert_eq!(encode_segment("abc-_.XYZ09"), ("abc-_.XYZ09".to_owned(), false));
        assert_eq!(encode_segment(".."), ("%2E%2E".to_owned(), false));
        assert_eq!(encode_segment("."), ("%2E".to_owned(), false));
        assert_eq!(encode_segment(""), ("%e".to_owned(), false));
        assert_eq!(encode_segment("a b%"), ("a%20b%25".to_owned(), false));
        assert_eq!(encode_segment("é"), ("%C3%A9".to_owned(), false));
        let (long, hashed) = encode_segment(&"z".repeat(201));
        assert!(hashed && long.starts_with("%h") && long.len() == 66);
        assert_eq!(dir_component("a").name, "a%");
        assert_eq!(dir_component("").name, "%e%");
    }

    #[test]
    fn stray_names_are_ignored() {
        for name in ["%name", "%", "a%2", "%2e", "%41", "a b", "%zz", "%h123", ""] {
            assert_eq!(decode_name(name, false), None, "{name:?}");
        }
        assert_eq!(decode_name("a", true), None);
        assert_eq!(decode_name("a%", false), None);
        assert_eq!(decode_name("%2541", false), Some(Decoded::Segment("%41".into())));
    }

    #[test]
    fn too_long_keys_are_refused() {
        let bucket = Path::new("/b");
        assert!(matches!(key_path(bucket, &"x".repeat(1025)), Err(Error::KeyTooLong)));
        // 1024 slashes: 1025 empty segments, each `%e%/`, exceed the path limit.
        assert!(matches!(key_path(bucket, &"/".repeat(1024)), Err(Error::KeyTooLong)));
        // A long bucket path counts too.
        let deep = PathBuf::from(format!("/{}", "r/".repeat(1880)));
        assert!(matches!(key_path(&deep, &"é".repeat(300)), Err(Error::KeyTooLong)));
    }

    #[test]
    fn prefix_dirs() {
        let b = Path::new("/b");
        assert_eq!(prefix_dir(b, "abc"), (PathBuf::from("/b"), String::new()));
        assert_eq!(prefix_dir(b, "a/b/c"), (PathBuf::from("/b/a%/b%"), "a/b/".to_owned()));
        assert_eq!(prefix_dir(b, "a//"), (PathBuf::from("/b/a%/%e%"), "a//".to_owned()));
        assert_eq!(prefix_dir(b, "/"), (PathBuf::from("/b/%e%"), "/".to_owned()));
    }
}
