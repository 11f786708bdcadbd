//! The object file format: the raw bytes, then a trailer, then a fixed footer.
//!
//! ```text
//! [ data … ][ trailer ][ trailer length: u64 LE ][ magic "COFFER02" ]
//! ```
//!
//! The trailer is binary (`trailer_codec`). Files written before it (magic `COFFER01`)
//! hold it as JSON, and are read as they are: both formats stay readable, and only format 2
//! is written.
//!
//! Keeping the metadata *in* the object file (rather than in a sidecar) means one rename
//! publishes data and metadata together, so a reader can never pair new bytes with old
//! metadata, and a delete is one unlink. Putting it *after* the data lets a put stream the
//! body straight to disk before the ETag and size are known. Reading the metadata costs a
//! stat, one 16-byte read of the footer, and one read of the trailer.

use std::io;
use std::os::unix::fs::FileExt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::{ObjectInfo, ObjectMeta, PartInfo};

/// The last 8 bytes of an object file written now: its trailer is binary.
pub(crate) const MAGIC: &[u8; 8] = b"COFFER02";
/// The last 8 bytes of an object file of format 1: its trailer is JSON.
pub(crate) const MAGIC_JSON: &[u8; 8] = b"COFFER01";
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
    /// The trailer as it is appended to the data: the trailer, its length, the magic.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256);
        super::trailer_codec::encode(self, &mut out);
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

/// How much of a file's end [`open`] reads at once: the footer and a trailer of ordinary
/// size (a key, an ETag, a content type and a few metadata), so that reading the metadata
/// is one `pread`.
pub(crate) const TRAILER_READ: u64 = 2 * 1024;
/// What a GET reads at once with [`open_with_tail`]: also all the data of a small object,
/// so that a 4 KiB GET is one `open`, one `fstat` and one `pread`.
pub(crate) const SMALL_OBJECT_READ: u64 = 16 * 1024;

/// An object file opened and its trailer read, with the last bytes read along the way.
#[derive(Debug)]
pub(crate) struct Opened {
    pub file: std::fs::File,
    pub trailer: Trailer,
    /// The file's last bytes, from offset `tail_start`.
    tail: Vec<u8>,
    tail_start: u64,
}

impl Opened {
    /// The data bytes `start..end` if the read that found the trailer already holds them.
    #[cfg(test)]
    pub fn data_in_tail(&self, start: u64, end: u64) -> Option<&[u8]> {
        let from = self.tail_offset(start, end)?;
        Some(&self.tail[from..from + (end - start) as usize])
    }

    /// The file, the trailer and, without copying, the data bytes `start..end` if the read
    /// that found the trailer already holds them.
    pub fn into_parts(self, start: u64, end: u64) -> (std::fs::File, Trailer, Option<bytes::Bytes>) {
        let data = self
            .tail_offset(start, end)
            .map(|from| bytes::Bytes::from(self.tail).slice(from..from + (end - start) as usize));
        (self.file, self.trailer, data)
    }

    fn tail_offset(&self, start: u64, end: u64) -> Option<usize> {
        if start < self.tail_start || end > self.trailer.size || start > end {
            return None;
        }
        Some((start - self.tail_start) as usize)
    }
}

/// Read the trailer of an open object file of `len` bytes. Positional reads only: the
/// file position is not used. Fails with `InvalidData` when the file is not in this format.
fn read_trailer(file: std::fs::File, len: u64, tail_read: u64) -> io::Result<Opened> {
    if len < FOOTER_LEN {
        return Err(corrupt("shorter than the footer"));
    }
    let tail_start = len - len.min(tail_read.max(FOOTER_LEN));
    let mut tail = vec![0u8; (len - tail_start) as usize];
    file.read_exact_at(&mut tail, tail_start)?;
    let (tlen, magic) = tail[tail.len() - FOOTER_LEN as usize..].split_at(8);
    let json = match magic {
        m if m == MAGIC => false,
        m if m == MAGIC_JSON => true,
        _ => return Err(corrupt("bad magic")),
    };
    let tlen = u64::from_le_bytes(tlen.try_into().expect("8 bytes"));
    if tlen > MAX_TRAILER || tlen > len - FOOTER_LEN {
        return Err(corrupt("bad trailer length"));
    }
    let data_len = len - FOOTER_LEN - tlen;
    let decode = |bytes: &[u8]| {
        if json {
            serde_json::from_slice::<Trailer>(bytes).map_err(|e| corrupt(&format!("bad trailer: {e}")))
        } else {
            super::trailer_codec::decode(bytes).map_err(|e| corrupt(&format!("bad trailer: {e}")))
        }
    };
    let trailer = if data_len >= tail_start {
        let from = (data_len - tail_start) as usize;
        decode(&tail[from..from + tlen as usize])?
    } else {
        // A trailer larger than the tail read (many user metadata): read it whole.
        let mut whole = vec![0u8; tlen as usize];
        file.read_exact_at(&mut whole, data_len)?;
        decode(&whole)?
    };
    if trailer.size != data_len {
        return Err(corrupt("the trailer's size does not match the data"));
    }
    Ok(Opened { file, trailer, tail, tail_start })
}

/// Open an object file and read its trailer. `Ok(None)` when there is no object file at
/// `path` (missing, a directory, or a path through a non-directory).
pub(crate) fn open(path: &std::path::Path) -> io::Result<Option<Opened>> {
    open_with_tail(path, TRAILER_READ)
}

/// [`open`], reading the last `tail_read` bytes of the file at once (see
/// [`Opened::into_parts`]).
pub(crate) fn open_with_tail(path: &std::path::Path, tail_read: u64) -> io::Result<Option<Opened>> {
    with_tail(std::fs::File::open(path), tail_read)
}

/// [`open_with_tail`] of a file opened another way: `opened` is that open's result.
pub(crate) fn with_tail(opened: io::Result<std::fs::File>, tail_read: u64) -> io::Result<Option<Opened>> {
    let file = match opened {
        Ok(f) => f,
        Err(e) if is_absent(&e) => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Ok(None);
    }
    read_trailer(file, meta.len(), tail_read).map(Some)
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
        let read = open(&path).unwrap().unwrap().trailer;
        assert_eq!(read, t);
        assert_eq!(read.object_info().last_modified, from_millis(1_700_000_000_123));
        assert_eq!(to_millis(read.object_info().last_modified), 1_700_000_000_123);
    }

    #[test]
    fn one_read_finds_the_trailer_and_a_small_objects_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("obj");
        let write = |data: &[u8], t: &Trailer| {
            let mut f = std::fs::File::create(&path).unwrap();
            f.write_all(data).unwrap();
            f.write_all(&t.encode()).unwrap();
        };
        // Small: the data come with the trailer.
        let data: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
        write(&data, &trailer(4096));
        let o = open_with_tail(&path, SMALL_OBJECT_READ).unwrap().unwrap();
        assert_eq!(o.trailer, trailer(4096));
        assert_eq!(o.data_in_tail(0, 4096).unwrap(), &data[..]);
        assert_eq!(o.data_in_tail(100, 200).unwrap(), &data[100..200]);
        assert_eq!(o.data_in_tail(4096, 4096).unwrap(), b"");
        assert!(o.data_in_tail(0, 4097).is_none(), "past the data: the trailer is not data");
        let (_, t, bytes) = o.into_parts(10, 20);
        assert_eq!((t, &bytes.unwrap()[..]), (trailer(4096), &data[10..20]));
        // With the metadata-only read the data are not there.
        let o = open(&path).unwrap().unwrap();
        assert!(o.data_in_tail(0, 4096).is_none());
        assert_eq!(o.data_in_tail(4000, 4096).unwrap(), &data[4000..]);
        // A trailer larger than the read (much user metadata) is read whole.
        let mut big = trailer(4096);
        big.meta.user_metadata.insert("big".into(), "x".repeat(3 * SMALL_OBJECT_READ as usize));
        write(&data, &big);
        for tail in [TRAILER_READ, SMALL_OBJECT_READ] {
            let o = open_with_tail(&path, tail).unwrap().unwrap();
            assert_eq!(o.trailer, big);
            assert!(o.data_in_tail(0, 1).is_none());
        }
        // An object without data: the footer alone fits any read.
        write(b"", &trailer(0));
        assert_eq!(open_with_tail(&path, 1).unwrap().unwrap().trailer, trailer(0));
    }

    /// A trailer as format 1 wrote it: JSON, its length, `COFFER01`.
    fn encode_format_1(t: &Trailer) -> Vec<u8> {
        let mut out = serde_json::to_vec(t).unwrap();
        let len = out.len() as u64;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(MAGIC_JSON);
        out
    }

    #[test]
    fn files_of_format_1_are_still_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("obj");
        let mut t = trailer(5);
        t.meta.user_metadata.insert("big".into(), "x".repeat(3 * SMALL_OBJECT_READ as usize));
        for t in [trailer(5), t] {
            let mut bytes = b"hello".to_vec();
            bytes.extend(encode_format_1(&t));
            std::fs::write(&path, &bytes).unwrap();
            for tail in [TRAILER_READ, SMALL_OBJECT_READ] {
                let o = open_with_tail(&path, tail).unwrap().unwrap();
                assert_eq!(o.trailer, t);
            }
            // The magic decides the decoder: JSON under format 2's magic is corrupt.
            let n = bytes.len();
            bytes[n - 8..].copy_from_slice(MAGIC);
            std::fs::write(&path, &bytes).unwrap();
            assert_eq!(open(&path).unwrap_err().kind(), io::ErrorKind::InvalidData);
        }
        // What is written now is format 2.
        assert_eq!(&trailer(5).encode()[..][trailer(5).encode().len() - 8..], MAGIC);
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
