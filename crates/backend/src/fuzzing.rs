//! The key encodings of both backend families, exposed for the fuzz targets under `fuzz/`
//! (feature `fuzzing`). Not an API: thin wrappers over crate-private functions, in plain
//! types, so a fuzz target can check the encodings' promises (round trips, containment,
//! canonical decoding) without a filesystem or a cloud store.

use std::path::{Path, PathBuf};

use crate::cloud::keys::{self, Dialect};
use crate::fs::layout::{self, Decoded};

/// One path component of the filesystem encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsComponent {
    /// The file or directory name on disk.
    pub name: String,
    /// The raw segment kept beside a hashed name.
    pub hashed_raw: Option<String>,
}

/// Where the filesystem backend puts a key below its bucket directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsKeyPath {
    pub dirs: Vec<FsComponent>,
    pub file: FsComponent,
    /// The object file's full path.
    pub file_path: PathBuf,
}

/// The filesystem encoding of `key` below `bucket_dir`; `None` when it is refused as too
/// long.
pub fn fs_key_path(bucket_dir: &Path, key: &str) -> Option<FsKeyPath> {
    let kp = layout::key_path(bucket_dir, key).ok()?;
    let component = |c: &layout::Component| FsComponent { name: c.name.clone(), hashed_raw: c.hashed_raw.clone() };
    Some(FsKeyPath {
        dirs: kp.dirs.iter().map(component).collect(),
        file: component(&kp.file),
        file_path: kp.file_path(bucket_dir),
    })
}

/// What a name found on disk decodes to: `None` for a name the backend did not write,
/// `Some(None)` for a hashed name (the raw segment is stored elsewhere), `Some(Some(s))`
/// for the segment `s`.
pub fn fs_decode_name(name: &str, is_dir: bool) -> Option<Option<String>> {
    layout::decode_name(name, is_dir).map(|d| match d {
        Decoded::Segment(s) => Some(s),
        Decoded::Hashed => None,
    })
}

/// One segment's encoding, and whether it is a hash.
pub fn fs_encode_segment(segment: &str) -> (String, bool) {
    layout::encode_segment(segment)
}

/// The directory that holds every key starting with `prefix`, and their shared key prefix.
pub fn fs_prefix_dir(bucket_dir: &Path, prefix: &str) -> (PathBuf, String) {
    layout::prefix_dir(bucket_dir, prefix)
}

fn dialect(azure: bool) -> Dialect {
    if azure { Dialect::Azure } else { Dialect::Standard }
}

/// The cloud object name of `key` (Azure's dialect when `azure`).
pub fn cloud_encode_key(key: &str, azure: bool) -> String {
    keys::encode_key(key, dialect(azure))
}

/// The key a cloud object name stands for, if it is a canonical encoding.
pub fn cloud_decode_key(name: &str, azure: bool) -> Option<String> {
    keys::decode_key(name, dialect(azure))
}

/// The encoded form of a listing prefix, and whether it is exact.
pub fn cloud_encode_prefix(prefix: &str, azure: bool) -> (String, bool) {
    let e = keys::encode_prefix(prefix, dialect(azure));
    (e.encoded, e.exact)
}

/// Decode a common prefix a store rolled up at `delimiter`.
pub fn cloud_decode_common_prefix(enc: &str, delimiter: &str, azure: bool) -> Option<String> {
    keys::decode_common_prefix(enc, delimiter, dialect(azure))
}

/// Whether the store may roll up encoded names at `delimiter`.
pub fn cloud_delimiter_is_safe(delimiter: &str) -> bool {
    keys::delimiter_is_safe(delimiter)
}

/// Whether `object_store` accepts `name` as an object path and keeps it unchanged.
pub fn cloud_name_is_valid(name: &str) -> bool {
    object_store::path::Path::parse(name).is_ok_and(|p| p.as_ref() == name)
}
