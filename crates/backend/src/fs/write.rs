//! Atomic writes: stream into a temporary file, fsync, rename into place.
//!
//! Every object (put, copy, multipart completion) and every part is first written to
//! `root/.tmp/<uuid>` while its MD5 is computed (see [`TempWriter`]), then made durable with `fsync`, then
//! published with a single `rename`, which replaces any old object atomically: a reader
//! sees the old object or the new one, never a part. The temporary file is owned by a
//! [`TempGuard`] whose `Drop` removes it, so an error, a failed check or a dropped future
//! (the client went away) leaves nothing behind; `FsBackend::new` sweeps `.tmp` for what a
//! crash left.

use std::io::{self, IoSlice, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use md5::{Digest, Md5};

use super::layout::{KeyPath, NAME_FILE};
use super::object_file::{Trailer, is_absent};
use crate::{ByteStream, Error, MAX_PUT_SIZE, PutChecks, Result};

/// The size of the batches a temporary file is hashed and written in: large enough that
/// handing a batch from one thread to another costs little beside its work (1 MiB made one
/// upload 16–20 % faster than 256 KiB; docs/BENCHMARKS.md), small enough that 16 uploads at
/// once, each with up to [`QUEUED`] batches queued, stay well under 150 MiB.
const WRITE_BUFFER: usize = 1024 * 1024;
/// How often a rename is retried when a concurrent delete removed a parent directory.
const RENAME_ATTEMPTS: usize = 32;

/// Owns a temporary file's path and removes the file when dropped, unless disarmed.
#[derive(Debug)]
pub(crate) struct TempGuard {
    path: PathBuf,
    armed: bool,
}

impl TempGuard {
    /// A fresh, unique path in `tmp_dir`, guarded.
    pub fn new(tmp_dir: &Path) -> Self {
        TempGuard { path: tmp_dir.join(uuid::Uuid::new_v4().simple().to_string()), armed: true }
    }

    /// The temporary file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rename the file to `target` and stop guarding it; on failure it stays guarded.
    /// Blocking.
    pub fn rename_to(&mut self, target: &Path) -> io::Result<()> {
        std::fs::rename(&self.path, target)?;
        self.armed = false;
        Ok(())
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if self.armed {
            // Drop cannot await: this one unlink is the price of cleaning up after a
            // cancelled future. Errors (already gone) are of no interest.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// A temporary file being written, with the running MD5 and size.
///
/// Data are gathered into batches of [`WRITE_BUFFER`] bytes. Once a first batch is full,
/// two threads of the blocking pool take over for the rest of the upload: one hashes the
/// batches, one writes them (one `writev` each), each from a queue of [`QUEUED`] batches,
/// while the next batch arrives. The socket, the hash and the file each move at their own
/// pace, and a stage that stalls for a moment (a write meeting the disk, a thread waiting
/// for a CPU) does not stop the others until its queue is full. The chunks are written as
/// they came, never copied into a buffer. Hashing (MD5, about 800 MB/s on one core; it
/// cannot be split) and writing into the page cache (about as fast here) take similar time.
/// A small object never starts the threads: its one batch is hashed in [`Self::md5`] and
/// written with its trailer and `fsync` in one call to the blocking pool.
///
/// Every [`WRITEBACK_EVERY`] bytes, unless the previous one is still running, the writer
/// starts an `fdatasync` of what it wrote so far on another thread, without waiting for it:
/// the disk writes the object while the upload is still arriving, and the final `fsync`
/// finds little left to do. Without it the whole object waits in the page cache and the
/// upload ends with the disk writing all of it. Databases do the same with their large
/// writes (PostgreSQL's `backend_flush_after`, RocksDB's `bytes_per_sync`, with
/// `sync_file_range(2)`, which has no wrapper without `unsafe` code in our dependencies).
pub(crate) struct TempWriter {
    file: Arc<std::fs::File>,
    /// The thread writing batches, once one was sent.
    writer: Option<Stage<io::Result<()>>>,
    /// The hash of the data so far (`None` when not hashing), when no thread is hashing.
    md5: Option<Md5>,
    /// The thread hashing batches, once one was sent; it hands the hash back.
    hasher: Option<Stage<Md5>>,
    /// The chunks of the next batch, and their size; the first `batch_hashed` of them are
    /// in the hash already.
    batch: Vec<Bytes>,
    batch_len: usize,
    batch_hashed: usize,
    /// Where the next batch starts in the file, and where it stood when the last
    /// background `fdatasync` started.
    offset: u64,
    writeback_at: u64,
    /// The background `fdatasync` last started.
    writeback: Option<tokio::task::JoinHandle<()>>,
    // Declared after the file: the file is closed before the guard removes it.
    guard: TempGuard,
    size: u64,
}

/// Batches a stage's queue holds before the upload waits for it.
const QUEUED: usize = 2;

/// Some chunks of a batch, for a stage.
type Job = (Arc<Vec<Bytes>>, std::ops::Range<usize>);

/// A thread of the blocking pool working through a queue of batches, and what it hands back
/// once the queue is closed (or, for the writer, at its first error).
struct Stage<T> {
    queue: tokio::sync::mpsc::Sender<Job>,
    done: tokio::task::JoinHandle<T>,
}

impl<T: Send + 'static> Stage<T> {
    fn start(work: impl FnOnce(tokio::sync::mpsc::Receiver<Job>) -> T + Send + 'static) -> Self {
        let (queue, jobs) = tokio::sync::mpsc::channel(QUEUED);
        Stage { queue, done: tokio::task::spawn_blocking(move || work(jobs)) }
    }

    /// Close the queue; what the thread hands back once it has done what was queued.
    async fn finish(self) -> Result<T> {
        drop(self.queue);
        Ok(self.done.await.map_err(io::Error::other)?)
    }
}

impl TempWriter {
    /// Create a temporary file in `tmp_dir`; `hash` computes the MD5 of the data written.
    pub async fn create(tmp_dir: &Path, hash: bool) -> Result<Self> {
        let guard = TempGuard::new(tmp_dir);
        let path = guard.path().to_path_buf();
        let file =
            tokio::task::spawn_blocking(move || std::fs::OpenOptions::new().write(true).create_new(true).open(path))
                .await
                .map_err(io::Error::other)??;
        Ok(TempWriter {
            file: Arc::new(file),
            writer: None,
            md5: hash.then(Md5::new),
            hasher: None,
            batch: Vec::new(),
            batch_len: 0,
            batch_hashed: 0,
            offset: 0,
            writeback_at: 0,
            writeback: None,
            guard,
            size: 0,
        })
    }

    /// Append data bytes.
    pub async fn write(&mut self, data: Bytes) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.size += data.len() as u64;
        self.batch_len += data.len();
        self.batch.push(data);
        if self.batch_len >= WRITE_BUFFER {
            self.send_batch().await?;
        }
        Ok(())
    }

    /// The number of data bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The MD5 of the data written so far (zeros when not hashing), once the hashing thread
    /// has caught up. The chunks not sent yet (a small object's, all of them) are hashed
    /// here, and not again when they are written.
    pub async fn md5(&mut self) -> Result<[u8; 16]> {
        if let Some(hasher) = self.hasher.take() {
            self.md5 = Some(hasher.finish().await?);
        }
        let Some(md5) = &mut self.md5 else { return Ok([0; 16]) };
        for chunk in &self.batch[self.batch_hashed..] {
            md5.update(chunk);
        }
        self.batch_hashed = self.batch.len();
        Ok(md5.clone().finalize().into())
    }

    /// Append the trailer, write what is pending and fsync; the file is then ready to be
    /// renamed.
    pub async fn finish(mut self, trailer: &Trailer) -> Result<TempGuard> {
        debug_assert_eq!(trailer.size, self.size);
        // Nothing waits for the hash any more.
        drop(self.hasher.take());
        self.settle_writes().await?;
        let mut batch = std::mem::take(&mut self.batch);
        batch.push(Bytes::from(trailer.encode()));
        let (file, start) = (self.file.clone(), self.offset);
        tokio::task::spawn_blocking(move || {
            write_batch(&file, start, &batch)?;
            file.sync_all()
        })
        .await
        .map_err(io::Error::other)??;
        Ok(self.guard)
    }

    /// Wait until every batch sent is written; the first write error, if any.
    async fn settle_writes(&mut self) -> Result<()> {
        match self.writer.take() {
            Some(writer) => Ok(writer.finish().await??),
            None => Ok(()),
        }
    }

    /// Queue the gathered batch for the hashing and the writing threads (starting them with
    /// the first batch). Waits only while a queue is full.
    async fn send_batch(&mut self) -> Result<()> {
        let batch = Arc::new(std::mem::take(&mut self.batch));
        let unhashed = std::mem::take(&mut self.batch_hashed)..batch.len();
        let start = self.offset;
        self.offset += self.batch_len as u64;
        self.batch_len = 0;
        if !unhashed.is_empty() {
            if self.hasher.is_none()
                && let Some(mut md5) = self.md5.take()
            {
                self.hasher = Some(Stage::start(move |mut jobs| {
                    while let Some((batch, chunks)) = jobs.blocking_recv() {
                        for chunk in &batch[chunks] {
                            md5.update(chunk);
                        }
                    }
                    md5
                }));
            }
            if let Some(hasher) = &self.hasher {
                // The hashing thread only stops once its queue is closed.
                let _ = hasher.queue.send((batch.clone(), unhashed)).await;
            }
        }
        let writeback = self.offset - self.writeback_at >= WRITEBACK_EVERY
            && self.writeback.as_ref().is_none_or(|w| w.is_finished());
        if writeback {
            // At least the batches written before this one's turn came are synced.
            self.writeback_at = start;
            let file = self.file.clone();
            self.writeback = Some(tokio::task::spawn_blocking(move || {
                // Advisory: the final `fsync` reports any error.
                let _ = file.sync_data();
            }));
        }
        let writer = self.writer.get_or_insert_with(|| {
            let file = self.file.clone();
            Stage::start(move |mut jobs| {
                let mut at = start;
                while let Some((batch, _)) = jobs.blocking_recv() {
                    write_batch(&file, at, &batch)?;
                    at += batch.iter().map(|c| c.len() as u64).sum::<u64>();
                }
                Ok(())
            })
        });
        let chunks = 0..batch.len();
        if writer.queue.send((batch, chunks)).await.is_err() {
            // The writing thread stopped at an error: that error.
            self.settle_writes().await?;
            return Err(Error::Io(io::Error::other("the writing thread stopped")));
        }
        Ok(())
    }
}

/// Bytes of a file written between two requests to start writing them back to the disk.
const WRITEBACK_EVERY: u64 = 8 * 1024 * 1024;

/// Write every byte of `chunks` (gathered writes, as many as it takes).
fn write_batch(mut file: &std::fs::File, start: u64, chunks: &[Bytes]) -> io::Result<()> {
    debug_assert_eq!(file.stream_position().ok(), Some(start), "batches are written in order");
    let mut slices: Vec<IoSlice<'_>> = chunks.iter().map(|c| IoSlice::new(c)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Stream a request body into `writer`, enforcing `checks` as the bytes arrive. Returns
/// the MD5 of the body. Errors of the body stream become [`Error::Body`].
pub(crate) async fn receive(writer: &mut TempWriter, mut body: ByteStream, checks: PutChecks) -> Result<[u8; 16]> {
    let max = if checks.max_size == 0 { MAX_PUT_SIZE } else { checks.max_size };
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(Error::Body)?;
        let size = writer.size() + chunk.len() as u64;
        if size > max {
            return Err(Error::EntityTooLarge);
        }
        if checks.expected_size.is_some_and(|expected| size > expected) {
            return Err(Error::IncompleteBody);
        }
        writer.write(chunk).await?;
    }
    if checks.expected_size.is_some_and(|expected| writer.size() != expected) {
        return Err(Error::IncompleteBody);
    }
    let md5 = writer.md5().await?;
    if checks.content_md5.is_some_and(|expected| expected != md5) {
        return Err(Error::BadDigest);
    }
    Ok(md5)
}

/// Publish a finished temporary file as the object at `kp` in `bucket_dir`: create the
/// parent directories (fsyncing the parent of each one created), rename, fsync the
/// directory. A concurrent delete may remove an empty parent between its creation and the
/// rename; then this tries again. Blocking.
pub(crate) fn commit(mut guard: TempGuard, tmp_dir: &Path, bucket_dir: &Path, kp: &KeyPath) -> Result<()> {
    let target = kp.file_path(bucket_dir);
    for _ in 0..RENAME_ATTEMPTS {
        if !bucket_dir.is_dir() {
            return Err(Error::NoSuchBucket);
        }
        if !ensure_dirs(tmp_dir, bucket_dir, kp)? {
            continue;
        }
        match guard.rename_to(&target) {
            Ok(()) => {
                sync_dir(target.parent().unwrap_or(bucket_dir));
                return Ok(());
            }
            // A parent directory vanished (our temporary file did not): try again.
            Err(e) if e.kind() == io::ErrorKind::NotFound && guard.path().exists() => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
    Err(Error::Io(io::Error::other("the object's directory kept disappearing")))
}

/// Create the directories of `kp` below `bucket_dir` (not the bucket directory itself),
/// writing the name file of hashed ones. `Ok(false)` when a directory vanished meanwhile.
fn ensure_dirs(tmp_dir: &Path, bucket_dir: &Path, kp: &KeyPath) -> Result<bool> {
    let mut dir = bucket_dir.to_path_buf();
    for component in &kp.dirs {
        dir.push(&component.name);
        match std::fs::create_dir(&dir) {
            // The new directory's entry must reach the disk with the object below it.
            Ok(()) => sync_dir(dir.parent().unwrap_or(bucket_dir)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e.into()),
        }
        if let Some(raw) = &component.hashed_raw {
            let name_file = dir.join(NAME_FILE);
            if !name_file.exists() && !write_name_file(tmp_dir, &name_file, raw)? {
                return Ok(false);
            }
        }
    }
    Ok(true)
}

/// Atomically write the raw segment of a hashed directory into its name file.
/// `Ok(false)` when the directory vanished meanwhile. Blocking.
pub(crate) fn write_name_file(tmp_dir: &Path, name_file: &Path, raw: &str) -> Result<bool> {
    let mut guard = TempGuard::new(tmp_dir);
    std::fs::write(guard.path(), raw)?;
    match guard.rename_to(name_file) {
        Ok(()) => Ok(true),
        Err(e) if is_absent(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Make a rename in `dir` durable; best effort (some filesystems refuse to fsync a directory).
pub(crate) fn sync_dir(dir: &Path) {
    #[cfg(test)]
    synced::record(dir);
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Test support: which directories [`sync_dir`] was asked to make durable.
#[cfg(test)]
pub(crate) mod synced {
    use std::path::{Path, PathBuf};
    use std::sync::Mutex;

    static LOG: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

    pub(crate) fn record(dir: &Path) {
        LOG.lock().unwrap_or_else(|e| e.into_inner()).push(dir.to_path_buf());
    }

    /// The directories synced so far below `root` (tests run in parallel: each looks only
    /// at its own temporary directory).
    pub(crate) fn below(root: &Path) -> Vec<PathBuf> {
        LOG.lock().unwrap_or_else(|e| e.into_inner()).iter().filter(|p| p.starts_with(root)).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::layout;

    /// A finished temporary file, ready to commit.
    fn temp_file(tmp: &Path) -> TempGuard {
        let guard = TempGuard::new(tmp);
        std::fs::write(guard.path(), b"data").unwrap();
        guard
    }

    /// Chunks of odd sizes, as a socket hands them over, adding up to `total` bytes.
    fn chunks(total: usize) -> Vec<Bytes> {
        let (mut out, mut at, mut i) = (Vec::new(), 0usize, 0usize);
        while at < total {
            let len = (1 + (i * 7919) % 100_000).min(total - at);
            out.push(Bytes::from((at..at + len).map(|b| (b % 253) as u8).collect::<Vec<_>>()));
            at += len;
            i += 1;
        }
        out
    }

    #[tokio::test]
    async fn a_large_write_keeps_every_byte_in_order_and_starts_writing_back_early() {
        let dir = tempfile::tempdir().unwrap();
        let total = 2 * WRITEBACK_EVERY as usize + WRITE_BUFFER + 12_345;
        let data = chunks(total);
        let mut writer = TempWriter::create(dir.path(), true).await.unwrap();
        let mut expected = Vec::with_capacity(total);
        let mut writebacks = 0;
        for chunk in data {
            expected.extend_from_slice(&chunk);
            let before = writer.writeback_at;
            writer.write(chunk).await.unwrap();
            writebacks += usize::from(writer.writeback_at != before);
        }
        assert!(writebacks >= 1, "an fdatasync started while the data arrived");
        assert_eq!(writer.size(), total as u64);
        let md5: [u8; 16] = Md5::digest(&expected).into();
        assert_eq!(writer.md5().await.unwrap(), md5);
        let trailer = Trailer {
            key: "k".into(),
            etag: hex::encode(md5),
            size: total as u64,
            last_modified: 0,
            meta: Default::default(),
            parts: None,
        };
        let guard = writer.finish(&trailer).await.unwrap();
        let written = std::fs::read(guard.path()).unwrap();
        let encoded = trailer.encode();
        assert_eq!(written.len(), total + encoded.len());
        assert!(written[..total] == expected[..], "the data, in order");
        assert!(written[total..] == encoded[..], "then the trailer");
    }

    #[tokio::test]
    async fn the_hash_covers_every_chunk_once_whether_sent_or_pending() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = TempWriter::create(dir.path(), true).await.unwrap();
        let mut expected = Vec::new();
        // Pending only, then a batch sent (hashed on the blocking pool) and a pending tail,
        // then more after the hash was asked for.
        for (i, len) in [5, WRITE_BUFFER + 3, 7].into_iter().enumerate() {
            let chunk = Bytes::from(vec![i as u8 + 1; len]);
            expected.extend_from_slice(&chunk);
            writer.write(chunk).await.unwrap();
            let md5: [u8; 16] = Md5::digest(&expected).into();
            assert_eq!(writer.md5().await.unwrap(), md5, "after {} bytes", expected.len());
            assert_eq!(writer.md5().await.unwrap(), md5, "asking twice changes nothing");
        }
        assert!(writer.offset > 0, "a batch went to the blocking pool");
    }

    #[tokio::test]
    async fn a_failed_write_ends_the_upload_with_that_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = TempWriter::create(dir.path(), true).await.unwrap();
        // A read-only descriptor of the same file: every write fails with EBADF.
        writer.file = Arc::new(std::fs::File::open(writer.guard.path()).unwrap());
        let mut failed = None;
        for _ in 0..8 {
            if let Err(e) = writer.write(Bytes::from(vec![7; WRITE_BUFFER])).await {
                failed = Some(e);
                break;
            }
        }
        let trailer = Trailer {
            key: "k".into(),
            etag: String::new(),
            size: writer.size(),
            last_modified: 0,
            meta: Default::default(),
            parts: None,
        };
        // The queue holds two batches: by the third, the writing thread has stopped.
        let err = failed.expect("the upload stops before its end");
        assert!(matches!(&err, Error::Io(e) if e.raw_os_error() == Some(9)), "the write's own error: {err:?}");
        assert!(writer.finish(&trailer).await.is_err(), "and cannot be finished");
    }

    #[tokio::test]
    async fn a_small_write_is_one_batch_with_its_trailer() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = TempWriter::create(dir.path(), false).await.unwrap();
        writer.write(Bytes::from_static(b"hello")).await.unwrap();
        writer.write(Bytes::new()).await.unwrap();
        assert!(writer.writer.is_none() && writer.writeback.is_none(), "nothing written before finish");
        assert_eq!(writer.md5().await.unwrap(), [0; 16], "not hashing");
        let trailer = Trailer {
            key: "k".into(),
            etag: String::new(),
            size: 5,
            last_modified: 0,
            meta: Default::default(),
            parts: None,
        };
        let guard = writer.finish(&trailer).await.unwrap();
        let written = std::fs::read(guard.path()).unwrap();
        assert_eq!(&written[..5], b"hello");
        assert_eq!(written[5..], trailer.encode()[..]);
    }

    #[test]
    fn commit_makes_new_directories_durable() {
        let root = tempfile::tempdir().unwrap();
        let (tmp, bucket) = (root.path().join(".tmp"), root.path().join("b"));
        std::fs::create_dir(&tmp).unwrap();
        std::fs::create_dir(&bucket).unwrap();
        let kp = layout::key_path(&bucket, "x/y/z").unwrap();
        commit(temp_file(&tmp), &tmp, &bucket, &kp).unwrap();
        assert!(kp.file_path(&bucket).is_file());
        let synced = synced::below(root.path());
        // The entry of every new directory is in its parent, and the object's in the last.
        for dir in [bucket.clone(), kp.dir_path(&bucket, 1), kp.dir_path(&bucket, 2)] {
            assert!(synced.contains(&dir), "{dir:?} not synced; synced: {synced:?}");
        }
    }
}
