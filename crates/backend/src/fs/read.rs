//! Reading objects: opening an object file by key, and streaming a byte range of it.
//!
//! The open file handle is what gets streamed, so a concurrent overwrite or delete (a
//! rename or unlink of the name) never changes the bytes of a GET already answered: the
//! reader keeps the inode it opened. Data are read in bounded chunks, so memory does not
//! grow with the size of the object.

use std::io::SeekFrom;
use std::path::Path;

use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::layout;
use super::object_file::{self, Trailer};
use super::write::TempWriter;
use crate::{ByteRange, ByteStream, Error, Result};

/// The size of the chunks a GET streams, and of the buffer of a copy.
pub(crate) const READ_CHUNK: usize = 256 * 1024;

/// Open the object `key` in `bucket_dir`: `NoSuchKey` if there is none, `NoSuchBucket` if
/// the bucket directory is gone. Blocking.
pub(crate) fn open_object(bucket_dir: &Path, key: &str) -> Result<(std::fs::File, Trailer)> {
    let found = match layout::key_path(bucket_dir, key) {
        Ok(kp) => object_file::open(&kp.file_path(bucket_dir))?,
        Err(_) => None, // too long to be stored
    };
    match found {
        Some(found) => Ok(found),
        None if bucket_dir.is_dir() => Err(Error::NoSuchKey),
        None => Err(Error::NoSuchBucket),
    }
}

/// A stream of the bytes `range` selects in the data (of `size` bytes) of an open object
/// file, with the resolved half-open range.
pub(crate) async fn range_stream(
    file: std::fs::File,
    size: u64,
    range: Option<ByteRange>,
) -> Result<((u64, u64), ByteStream)> {
    let (start, end) = match range {
        Some(r) => r.resolve(size)?,
        None => (0, size),
    };
    let mut file = tokio::fs::File::from_std(file);
    file.seek(SeekFrom::Start(start)).await?;
    let stream = ReaderStream::with_capacity(file.take(end - start), READ_CHUNK);
    Ok(((start, end), Box::pin(stream)))
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
