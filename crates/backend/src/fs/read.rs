//! Reading objects: opening an object file by key, and streaming a byte range of it.
//!
//! The open file handle is what gets streamed, so a concurrent overwrite or delete (a
//! rename or unlink of the name) never changes the bytes of a GET already answered: the
//! reader keeps the inode it opened. Data are read in bounded chunks, so memory does not
//! grow with the size of the object.

use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;

use bytes::Bytes;

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::layout;
use super::object_file::{self, Opened, Trailer};
use super::write::TempWriter;
use crate::{ByteRange, ByteStream, Error, Result};

/// The size of the chunks a GET streams, and of the buffer of a copy.
pub(crate) const READ_CHUNK: usize = 256 * 1024;

/// Open the object `key` in `bucket_dir`: `NoSuchKey` if there is none, `NoSuchBucket` if
/// the bucket directory is gone. Blocking.
pub(crate) fn open_object(bucket_dir: &Path, key: &str) -> Result<(std::fs::File, Trailer)> {
    open_object_reading(bucket_dir, key, object_file::TRAILER_READ).map(|o| (o.file, o.trailer))
}

/// [`open_object`], reading the file's last `tail_read` bytes at once.
fn open_object_reading(bucket_dir: &Path, key: &str, tail_read: u64) -> Result<Opened> {
    let found = match layout::key_path(bucket_dir, key) {
        Ok(kp) => object_file::open_with_tail(&kp.file_path(bucket_dir), tail_read)?,
        Err(_) => None, // too long to be stored
    };
    match found {
        Some(found) => Ok(found),
        None if bucket_dir.is_dir() => Err(Error::NoSuchKey),
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
    bucket_dir: &Path,
    key: &str,
    range: Option<ByteRange>,
) -> Result<(Trailer, (u64, u64), RangeData)> {
    let opened = open_object_reading(bucket_dir, key, object_file::SMALL_OBJECT_READ)?;
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
        RangeData::File(file) => {
            let file = tokio::fs::File::from_std(file);
            Box::pin(ReaderStream::with_capacity(file.take(len), READ_CHUNK))
        }
    }
}

/// Copy the `size` data bytes of an open object file into `writer`, chunk by chunk.
pub(crate) async fn copy_data(file: std::fs::File, size: u64, writer: &mut TempWriter) -> Result<()> {
    let mut file = tokio::fs::File::from_std(file);
    file.seek(SeekFrom::Start(0)).await?;
    let mut data = file.take(size);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut copied = 0u64;
    loop {
        let n = data.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        writer.write(&buf[..n]).await?;
        copied += n as u64;
    }
    if copied != size {
        return Err(Error::Io(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "an object file was truncated")));
    }
    Ok(())
}
