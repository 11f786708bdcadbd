//! The backends' key encodings. Filesystem: every key stays inside its bucket directory
//! (only plain components, none `.`/`..`/empty, none longer than 255 bytes, no `/` or NUL),
//! decodes back to itself, and distinct keys get distinct files; names found on disk decode
//! only from their canonical spelling. Cloud: names round-trip, are valid `object_store`
//! paths, distinct keys get distinct names, and a prefix's encoding is a prefix of the
//! encoding of every key it starts.

#![no_main]

use std::path::{Component, Path};

use coffer_backend::fuzzing::*;
use libfuzzer_sys::fuzz_target;

/// The input: fields separated by the byte 0xFF (which UTF-8 never contains), each read as
/// UTF-8 (lossily): a key, another key, a name as if found on disk or in a store, a
/// delimiter, where to cut the key for a prefix (a decimal number), and a flag for a deep
/// bucket directory. Missing fields are empty.
#[derive(Debug, Default)]
struct Input {
    key: String,
    other: String,
    name: String,
    delimiter: String,
    cut: usize,
    deep_bucket: bool,
}

impl Input {
    fn parse(data: &[u8]) -> Self {
        let mut fields = data.split(|b| *b == 0xFF).map(|f| String::from_utf8_lossy(f).into_owned());
        let mut next = || fields.next().unwrap_or_default();
        Input {
            key: next(),
            other: next(),
            name: next(),
            delimiter: next(),
            cut: next().trim().parse().unwrap_or(usize::MAX),
            deep_bucket: !next().is_empty(),
        }
    }
}

const MAX_KEY: usize = 1024;

fn fs_checks(bucket: &Path, key: &str, other: &str) {
    let Some(kp) = fs_key_path(bucket, key) else {
        return; // too long for this filesystem: refused, never truncated
    };
    assert!(key.len() <= MAX_KEY);
    let path = &kp.file_path;
    assert!(path.starts_with(bucket), "{key:?} -> {path:?}");
    let rel = path.strip_prefix(bucket).unwrap();
    assert_eq!(rel.components().count(), kp.dirs.len() + 1, "{key:?} -> {rel:?}");
    for c in rel.components() {
        let Component::Normal(name) = c else { panic!("{key:?} -> {rel:?} has {c:?}") };
        let name = name.to_str().expect("encoded names are UTF-8");
        assert!(!name.is_empty() && name != "." && name != "..", "{key:?} -> {name:?}");
        assert!(name.len() <= 255, "{key:?} -> {name:?}");
        assert!(!name.contains('/') && !name.contains('\0'), "{key:?} -> {name:?}");
    }
    // Directories end with `%`, the object file never does: a key `a` and a key `a/b`
    // never collide.
    assert!(kp.dirs.iter().all(|d| d.name.ends_with('%')), "{key:?}");
    assert!(!kp.file.name.ends_with('%'), "{key:?}");
    // Decoding what was written gives the key back.
    let mut segments = Vec::new();
    for (i, c) in kp.dirs.iter().chain(std::iter::once(&kp.file)).enumerate() {
        let is_dir = i < kp.dirs.len();
        let seg = match fs_decode_name(&c.name, is_dir) {
            Some(Some(s)) => {
                assert!(c.hashed_raw.is_none());
                s
            }
            Some(None) => c.hashed_raw.clone().expect("a hashed name keeps its raw segment"),
            None => panic!("{key:?}: the name {:?} does not decode", c.name),
        };
        segments.push(seg);
    }
    assert_eq!(segments.join("/"), key);
    // The listing directory of a prefix of the key (cut at each of its first slashes, and
    // in its last segment) is an ancestor of its file.
    let cuts = key.match_indices('/').map(|(i, _)| i).take(8).chain([key.len()]);
    for end in cuts.flat_map(|i| [i, i + 1]).filter(|&i| i <= key.len() && key.is_char_boundary(i)) {
        let (dir, shared) = fs_prefix_dir(bucket, &key[..end]);
        assert!(dir.starts_with(bucket));
        assert!(key.starts_with(&shared), "{key:?} / {:?} -> {shared:?}", &key[..end]);
        if shared.len() <= key.rfind('/').map_or(0, |i| i + 1) {
            assert!(path.starts_with(&dir), "{key:?}: {path:?} is not under {dir:?}");
        }
    }
    if let Some(other_kp) = fs_key_path(bucket, other)
        && other != key
    {
        assert_ne!(other_kp.file_path, kp.file_path, "{key:?} and {other:?} share a file");
    }
}

fn fs_name_checks(name: &str) {
    for is_dir in [false, true] {
        if let Some(Some(seg)) = fs_decode_name(name, is_dir) {
            // Only the canonical spelling decodes.
            let (enc, hashed) = fs_encode_segment(&seg);
            assert!(!hashed);
            let expected = if is_dir { format!("{enc}%") } else { enc };
            assert_eq!(expected, name, "{name:?} decoded to {seg:?}");
        }
    }
}

fn cloud_checks(key: &str, other: &str, name: &str, delimiter: &str, cut: usize) {
    for azure in [false, true] {
        let enc = cloud_encode_key(key, azure);
        assert_eq!(cloud_decode_key(&enc, azure).as_deref(), Some(key), "{key:?} -> {enc:?}");
        assert!(cloud_name_is_valid(&enc), "{key:?} -> {enc:?} is not a valid object path");
        if azure {
            assert!(!enc.contains('\\') && enc.split('/').all(|s| !s.ends_with('.')), "{enc:?}");
        }
        if other != key {
            assert_ne!(cloud_encode_key(other, azure), enc, "{key:?} and {other:?} share a name");
        }
        // Every name decodes only from its canonical spelling.
        if let Some(k) = cloud_decode_key(name, azure) {
            assert_eq!(cloud_encode_key(&k, azure), name, "{name:?} decoded to {k:?}");
        }
        let mut end = cut.min(key.len());
        while !key.is_char_boundary(end) {
            end -= 1;
        }
        let prefix = &key[..end];
        let (ep, exact) = cloud_encode_prefix(prefix, azure);
        assert!(enc.starts_with(&ep), "{key:?} / {prefix:?} -> {ep:?}");
        // An exact prefix: a decodable name starting with it is a key starting with the prefix.
        if exact
            && name.starts_with(&ep)
            && let Some(k) = cloud_decode_key(name, azure)
        {
            assert!(k.starts_with(prefix), "{name:?} ({k:?}) under {ep:?} but not under {prefix:?}");
        }
        if cloud_delimiter_is_safe(delimiter)
            && name.ends_with(delimiter)
            && let Some(cp) = cloud_decode_common_prefix(name, delimiter, azure)
        {
            assert!(cp.ends_with(delimiter), "{name:?} / {delimiter:?} -> {cp:?}");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let input = Input::parse(data);
    let bucket = if input.deep_bucket {
        Path::new("/srv/coffer/objects/a-fairly-long-bucket-name-for-the-path-limits")
    } else {
        Path::new("/b")
    };
    fs_checks(bucket, &input.key, &input.other);
    fs_name_checks(&input.name);
    cloud_checks(&input.key, &input.other, &input.name, &input.delimiter, input.cut);
});
