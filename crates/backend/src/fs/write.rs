//! Atomic writes: stream into a temporary file, fsync, rename into place.
//!
//! Every object (put, copy, multipart completion) and every part is first written to
//! `root/.tmp/<uuid>` while its MD5 is computed, then made durable with `fsync`, then
//! published with a single `rename`, which replaces any old object atomically: a reader
//! sees the old object or the new one, never a part. The temporary file is owned by a
//! [`TempGuard`] whose `Drop` removes it, so an error, a failed check or a dropped future
//! (the client went away) leaves nothing behind; `FsBackend::new` sweeps `.tmp` for what a
//! crash left.

use std::io;
use std::path::{Path, PathBuf};

use futures::StreamExt;
use md5::{Digest, Md5};
use tokio::io::{AsyncWriteExt, BufWriter};

use super::layout::{KeyPath, NAME_FILE};
use super::object_file::{Trailer, is_absent};
use crate::{ByteStream, Error, MAX_PUT_SIZE, PutChecks, Result};

/// The write buffer in front of a temporary file.
const WRITE_BUFFER: usize = 256 * 1024;
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
pub(crate) struct TempWriter {
    // Declared before `guard`: the file is closed before the guard removes it.
    file: BufWriter<tokio::fs::File>,
    guard: TempGuard,
    md5: Option<Md5>,
    size: u64,
}

impl TempWriter {
    /// Create a temporary file in `tmp_dir`; `hash` computes the MD5 of the data written.
    pub async fn create(tmp_dir: &Path, hash: bool) -> Result<Self> {
        let guard = TempGuard::new(tmp_dir);
        let file = tokio::fs::OpenOptions::new().write(true).create_new(true).open(guard.path()).await?;
        Ok(TempWriter { file: BufWriter::with_capacity(WRITE_BUFFER, file), guard, md5: hash.then(Md5::new), size: 0 })
    }

    /// Append data bytes.
    pub async fn write(&mut self, data: &[u8]) -> Result<()> {
        if let Some(md5) = &mut self.md5 {
            md5.update(data);
        }
        self.file.write_all(data).await?;
        self.size += data.len() as u64;
        Ok(())
    }

    /// The number of data bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The MD5 of the data written (zeros when not hashing).
    pub fn md5(&self) -> [u8; 16] {
        self.md5.as_ref().map_or([0; 16], |m| m.clone().finalize().into())
    }

    /// Append the trailer, flush and fsync; the file is then ready to be renamed.
    pub async fn finish(mut self, trailer: &Trailer) -> Result<TempGuard> {
        debug_assert_eq!(trailer.size, self.size);
        self.file.write_all(&trailer.encode()).await?;
        self.file.flush().await?;
        self.file.get_mut().sync_all().await?;
        let TempWriter { file, guard, .. } = self;
        drop(file);
        Ok(guard)
    }
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
        writer.write(&chunk).await?;
    }
    if checks.expected_size.is_some_and(|expected| writer.size() != expected) {
        return Err(Error::IncompleteBody);
    }
    let md5 = writer.md5();
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
