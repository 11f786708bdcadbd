//! Reading objects: opening an object file by key, and streaming a byte range of it.
//!
//! The open file handle is what gets streamed, so a concurrent overwrite or delete (a
//! rename or unlink of the name) never changes the bytes of a GET already answered: the
//! reader keeps the inode it opened. Data are read in bounded chunks, so memory does not
//! grow with the size of the object.

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use bytes::Bytes;

use futures::StreamExt;

use super::layout;
use super::object_file::{self, Opened, Trailer};
use super::write::TempWriter;
use crate::{ByteRange, ByteStream, Error, Result};

/// The size of the chunks a GET streams, and of the buffer of a copy.
pub(crate) const READ_CHUNK: usize = 256 * 1024;

/// The root directory of a filesystem tier, held open (`O_PATH`) for the life of the
/// backend: objects are opened relative to it (see [`BucketAt`]).
#[derive(Debug)]
pub(crate) struct RootDir {
    fd: OwnedFd,
    /// The length of a bucket directory's path less its name's (the root's path and a
    /// separator, unless the root's path ends in one): writes limit the length of an
    /// object's full path, so reads count it the same way.
    prefix_len: usize,
}

impl RootDir {
    pub(crate) fn open(root: &Path) -> std::io::Result<Self> {
        let fd = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())?;
        let prefix_len = root.join("b").as_os_str().len() - 1;
        Ok(Self { fd, prefix_len })
    }
}

/// A bucket's directory, to open its objects: the open root directory and the bucket's
/// (validated) name below it. An open then walks the bucket's name and the key's segments,
/// not every directory from `/` to the root as well — that walk was about 2 % of a small
/// GET's CPU (docs/BENCHMARKS.md).
pub(crate) struct BucketAt {
    pub(crate) root: Arc<RootDir>,
    pub(crate) name: String,
}

impl BucketAt {
    /// The file of `kp`, opened for reading.
    fn open(&self, kp: &layout::KeyPath) -> std::io::Result<std::fs::File> {
        let path = kp.file_path(Path::new(&self.name));
        let fd = rustix::fs::openat(&self.root.fd, &path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())?;
        Ok(std::fs::File::from(fd))
    }

    /// Whether the bucket's directory exists.
    fn exists(&self) -> bool {
        rustix::fs::statat(&self.root.fd, self.name.as_str(), AtFlags::empty())
            .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory)
    }
}

/// Open the object `key` in bucket `at`: `NoSuchKey` if there is none, `NoSuchBucket` if
/// the bucket directory is gone. Blocking.
pub(crate) fn open_object(at: &BucketAt, key: &str) -> Result<(std::fs::File, Trailer)> {
    open_object_reading(at, key, object_file::TRAILER_READ).map(|o| (o.file, o.trailer))
}

/// [`open_object`], reading the file's last `tail_read` bytes at once.
fn open_object_reading(at: &BucketAt, key: &str, tail_read: u64) -> Result<Opened> {
    let found = match layout::key_path_below(at.root.prefix_len + at.name.len(), key) {
        Ok(kp) => object_file::with_tail(at.open(&kp), tail_read)?,
        Err(_) => None, // too long to be stored
    };
    match found {
        Some(found) => Ok(found),
        None if at.exists() => Err(Error::NoSuchKey),
        None => Err(Error::NoSuchBucket),
    }
}

/// Ranges up to this size are read by the call that opens the object and sent as one chunk.
pub(crate) const SMALL_READ: u64 = 64 * 1024;

/// What a GET sends: the bytes of a small range, or the open file positioned at its start.
pub(crate) enum RangeData {
    Read(Bytes),
    File(std::fs::File),
}

/// Open the object `key`, resolve `range` against its size and, for a small range, read it:
/// the whole of a small GET's file-system work in one call — for a small object one
/// `open`, one `fstat` and one `pread`, which read the data with the trailer. Returns the
/// trailer and the half-open range. Blocking.
pub(crate) fn open_range(
    at: &BucketAt,
    key: &str,
    range: Option<ByteRange>,
) -> Result<(Trailer, (u64, u64), RangeData)> {
    let opened = open_object_reading(at, key, object_file::SMALL_OBJECT_READ)?;
    let (start, end) = match range {
        Some(r) => r.resolve(opened.trailer.size)?,
        None => (0, opened.trailer.size),
    };
    let (mut file, trailer, in_tail) = opened.into_parts(start, end);
    if let Some(data) = in_tail {
        return Ok((trailer, (start, end), RangeData::Read(data)));
    }
    if end - start <= SMALL_READ {
        let mut data = vec![0u8; (end - start) as usize];
        file.read_exact_at(&mut data, start)?;
        return Ok((trailer, (start, end), RangeData::Read(Bytes::from(data))));
    }
    file.seek(SeekFrom::Start(start))?;
    Ok((trailer, (start, end), RangeData::File(file)))
}

/// The stream of `len` bytes of what [`open_range`] returned.
pub(crate) fn range_stream(data: RangeData, len: u64) -> ByteStream {
    match data {
        RangeData::Read(b) if b.is_empty() => Box::pin(futures::stream::empty()),
        RangeData::Read(b) => Box::pin(futures::stream::once(async move { Ok(b) })),
        RangeData::File(file) => file_chunks(file, len),
    }
}

/// The next `len` bytes of `file`, from its current position, in chunks of [`READ_CHUNK`].
///
/// Each chunk is read on the blocking pool straight into the buffer that is then sent (no
/// copy in between), and the next chunk is read while the stream's consumer handles this
/// one: reading the file and sending the data overlap. A file shorter than `len` ends the
/// stream with `UnexpectedEof`.
pub(crate) fn file_chunks(file: std::fs::File, len: u64) -> ByteStream {
    let first = (len > 0).then(|| read_chunk(file, len));
    Box::pin(futures::stream::unfold(first, |next| async move {
        let (file, data, left) = match next?.await {
            Ok(Ok(read)) => read,
            Ok(Err(e)) => return Some((Err(e), None)),
            Err(e) => return Some((Err(std::io::Error::other(e)), None)),
        };
        let next = (left > 0).then(|| read_chunk(file, left));
        Some((Ok(data), next))
    }))
}

/// A chunk being read: the file, the chunk and the bytes left after it.
type ChunkRead = tokio::task::JoinHandle<std::io::Result<(std::fs::File, Bytes, u64)>>;

fn read_chunk(file: std::fs::File, left: u64) -> ChunkRead {
    tokio::task::spawn_blocking(move || {
        let want = left.min(READ_CHUNK as u64);
        let mut data = Vec::with_capacity(want as usize);
        // `read_to_end` reads into the vector's spare capacity without zeroing it first.
        (&file).take(want).read_to_end(&mut data)?;
        if (data.len() as u64) < want {
            return Err(truncated());
        }
        Ok((file, Bytes::from(data), left - want))
    })
}

fn truncated() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "an object file was truncated")
}

/// Copy the `size` data bytes of an open object file into `writer`, chunk by chunk.
pub(crate) async fn copy_data(mut file: std::fs::File, size: u64, writer: &mut TempWriter) -> Result<()> {
    file.rewind()?;
    let mut chunks = file_chunks(file, size);
    while let Some(chunk) = chunks.next().await {
        writer.write(chunk?).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bytes that differ at every offset, so a chunk out of place shows.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ (i / 251) as u8).collect()
    }

    async fn collect(mut s: ByteStream) -> std::io::Result<(Vec<u8>, Vec<usize>)> {
        let (mut all, mut sizes) = (Vec::new(), Vec::new());
        while let Some(chunk) = s.next().await {
            let chunk = chunk?;
            sizes.push(chunk.len());
            all.extend_from_slice(&chunk);
        }
        Ok((all, sizes))
    }

    #[tokio::test]
    async fn a_range_streams_exactly_its_bytes_in_read_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data = pattern(3 * READ_CHUNK + 1000);
        std::fs::write(&path, &data).unwrap();
        let (start, len) = (777usize, 2 * READ_CHUNK + 5);
        let mut file = std::fs::File::open(&path).unwrap();
        file.seek(SeekFrom::Start(start as u64)).unwrap();
        let (got, sizes) = collect(file_chunks(file, len as u64)).await.unwrap();
        assert_eq!(sizes, vec![READ_CHUNK, READ_CHUNK, 5]);
        assert!(got == data[start..start + len], "the bytes of the range, in order");
        let (empty, sizes) = collect(file_chunks(std::fs::File::open(&path).unwrap(), 0)).await.unwrap();
        assert!(empty.is_empty() && sizes.is_empty());
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_range_ends_the_stream_with_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, pattern(READ_CHUNK + 10)).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let err = collect(file_chunks(file, 2 * READ_CHUNK as u64)).await.unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
