//! The object file format: the raw bytes, then a JSON trailer, then a fixed footer.
//!
//! ```text
//! [ data … ][ trailer JSON ][ trailer length: u64 LE ][ magic "COFFER01" ]
//! ```
//!
//! Keeping the metadata *in* the object file (rather than in a sidecar) means one rename
//! publishes data and metadata together, so a reader can never pair new bytes with old
//! metadata, and a delete is one unlink. Putting it *after* the data lets a put stream the
//! body straight to disk before the ETag and size are known. Reading the metadata costs a
//! stat, one 16-byte read of the footer, and one read of the trailer.

use std::io::{self, Read, Seek, SeekFrom};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::{ObjectInfo, ObjectMeta, PartInfo};

/// The last 8 bytes of every object file.
pub(crate) const MAGIC: &[u8; 8] = b"COFFER01";
/// The footer: trailer length (8 bytes LE) and magic.
pub(crate) const FOOTER_LEN: u64 = 16;
/// The largest trailer accepted when reading; anything larger is corruption.
const MAX_TRAILER: u64 = 16 * 1024 * 1024;

/// The metadata stored after an object's (or a part's) bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Trailer {
    /// The full key (for a part: the upload's key).
    pub key: String,
    /// Without quotes.
    pub etag: String,
    /// The number of data bytes before the trailer.
    pub size: u64,
    /// Unix milliseconds.
    pub last_modified: u64,
    pub meta: ObjectMeta,
    /// The number of parts of a multipart object.
    pub parts: Option<u32>,
}

impl Trailer {
    /// The trailer as it is appended to the data: JSON, length, magic.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = serde_json::to_vec(self).expect("a trailer always serializes");
        let len = out.len() as u64;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(MAGIC);
        out
    }

    /// The object this trailer describes.
    pub fn object_info(&self) -> ObjectInfo {
        ObjectInfo {
            key: self.key.clone(),
            size: self.size,
            etag: self.etag.clone(),
            last_modified: from_millis(self.last_modified),
            meta: self.meta.clone(),
        }
    }

    /// The part this trailer describes.
    pub fn part_info(&self, part_number: u32) -> PartInfo {
        PartInfo {
            part_number,
            etag: self.etag.clone(),
            size: self.size,
            last_modified: from_millis(self.last_modified),
        }
    }
}

/// Read the trailer of an open object file; the file position is left unspecified.
/// Fails with `InvalidData` when the file is not in this format.
pub(crate) fn read_trailer(file: &mut std::fs::File) -> io::Result<Trailer> {
    let len = file.metadata()?.len();
    if len < FOOTER_LEN {
        return Err(corrupt("shorter than the footer"));
    }
    let mut footer = [0u8; FOOTER_LEN as usize];
    file.seek(SeekFrom::Start(len - FOOTER_LEN))?;
    file.read_exact(&mut footer)?;
    let (tlen, magic) = footer.split_at(8);
    if magic != MAGIC {
        return Err(corrupt("bad magic"));
    }
    let tlen = u64::from_le_bytes(tlen.try_into().expect("8 bytes"));
    if tlen > MAX_TRAILER || tlen > len - FOOTER_LEN {
        return Err(corrupt("bad trailer length"));
    }
    let data_len = len - FOOTER_LEN - tlen;
    let mut json = vec![0u8; tlen as usize];
    file.seek(SeekFrom::Start(data_len))?;
    file.read_exact(&mut json)?;
    let trailer: Trailer = serde_json::from_slice(&json).map_err(|e| corrupt(&format!("bad trailer: {e}")))?;
    if trailer.size != data_len {
        return Err(corrupt("the trailer's size does not match the data"));
    }
    Ok(trailer)
}

/// Open an object file and read its trailer. `Ok(None)` when there is no object file at
/// `path` (missing, a directory, or a path through a non-directory).
pub(crate) fn open(path: &std::path::Path) -> io::Result<Option<(std::fs::File, Trailer)>> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if is_absent(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    if !file.metadata()?.is_file() {
        return Ok(None);
    }
    let trailer = read_trailer(&mut file)?;
    Ok(Some((file, trailer)))
}

/// Whether an error means "nothing there".
pub(crate) fn is_absent(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory)
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("not a coffer object file: {what}"))
}

/// Unix milliseconds of a time (0 before the epoch).
pub(crate) fn to_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The time of Unix milliseconds.
pub(crate) fn from_millis(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn trailer(size: u64) -> Trailer {
        let mut meta = ObjectMeta { content_type: Some("text/plain".into()), ..Default::default() };
        meta.user_metadata.insert("k".into(), "v é".into());
        Trailer {
            key: "a/b".into(),
            etag: "e".repeat(32),
            size,
            last_modified: 1_700_000_000_123,
            meta,
            parts: Some(3),
        }
    }

    #[test]
    fn trailer_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("obj");
        let t = trailer(5);
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"hello").unwrap();
        f.write_all(&t.encode()).unwrap();
        drop(f);
        let (_, read) = open(&path).unwrap().unwrap();
        assert_eq!(read, t);
        assert_eq!(read.object_info().last_modified, from_millis(1_700_000_000_123));
        assert_eq!(to_millis(read.object_info().last_modified), 1_700_000_000_123);
    }

    #[test]
    fn corrupt_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("obj");
        std::fs::write(&path, b"short").unwrap();
        assert_eq!(open(&path).unwrap_err().kind(), io::ErrorKind::InvalidData);
        std::fs::write(&path, b"0123456789abcdefXXXXXXXX").unwrap();
        assert_eq!(open(&path).unwrap_err().kind(), io::ErrorKind::InvalidData);
        // The trailer claims 6 data bytes but 5 precede it.
        let mut bytes = b"hello".to_vec();
        bytes.extend(trailer(6).encode());
        std::fs::write(&path, bytes).unwrap();
        assert_eq!(open(&path).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn absent_objects() {
        let dir = tempfile::tempdir().unwrap();
        assert!(open(&dir.path().join("missing")).unwrap().is_none());
        assert!(open(dir.path()).unwrap().is_none());
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        assert!(open(&dir.path().join("file/below")).unwrap().is_none());
    }
}
