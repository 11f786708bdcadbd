//! Deleting objects and buckets.
//!
//! Deleting an object unlinks its file, then removes the directories it leaves empty, up to
//! (not including) the bucket directory, so the tree does not fill with dead directories,
//! then fsyncs the directory of the last entry removed.
//! This races with puts creating those directories: `rmdir` only removes an empty
//! directory, and a put whose parent vanished retries (see `write::commit`). A hashed
//! directory holds its name file, which is removed with it and put back if the `rmdir`
//! loses a race.
//!
//! A bucket may only be deleted without objects: leftover empty directories do not count.

use std::io;
use std::path::{Path, PathBuf};

use super::layout::{self, KeyPath, NAME_FILE};
use super::object_file::is_absent;
use super::write::{sync_dir, write_name_file};
use crate::{Error, Result};

/// Remove the object at `kp` (nothing if absent) and prune empty parents. Blocking.
pub(crate) fn delete_object(tmp_dir: &Path, bucket_dir: &Path, kp: &KeyPath) -> Result<()> {
    match std::fs::remove_file(kp.file_path(bucket_dir)) {
        Ok(()) => {}
        Err(e) if is_absent(&e) => {
            if !bucket_dir.is_dir() {
                return Err(Error::NoSuchBucket);
            }
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    }
    // The directory holding the last entry removed: the file's, or a pruned one's parent.
    let mut changed = kp.dirs.len();
    for depth in (1..=kp.dirs.len()).rev() {
        let dir = kp.dir_path(bucket_dir, depth);
        if !remove_if_empty(tmp_dir, &dir, kp.dirs[depth - 1].hashed_raw.as_deref()) {
            break;
        }
        changed = depth - 1;
    }
    // Make the delete durable: a crash must not bring an acknowledged delete back.
    sync_dir(&kp.dir_path(bucket_dir, changed));
    Ok(())
}

/// Remove `dir` if it is empty (but for the name file of a hashed directory, whose raw
/// segment is `hashed_raw`). Whether it is gone.
fn remove_if_empty(tmp_dir: &Path, dir: &Path, hashed_raw: Option<&str>) -> bool {
    let Some(raw) = hashed_raw else {
        return std::fs::remove_dir(dir).is_ok();
    };
    let Ok(mut entries) = std::fs::read_dir(dir) else {
        return false;
    };
    if !entries.all(|e| e.is_ok_and(|e| e.file_name() == NAME_FILE)) {
        return false;
    }
    let name_file = dir.join(NAME_FILE);
    let _ = std::fs::remove_file(&name_file);
    match std::fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) if is_absent(&e) => true,
        Err(_) => {
            // A put got in first: the directory stays, and needs its name back.
            let _ = write_name_file(tmp_dir, &name_file, raw);
            false
        }
    }
}

/// Remove a bucket directory: `BucketNotEmpty` while it holds an object file; stray files
/// and empty directories are removed with it. Succeeds when it is already gone. Blocking.
pub(crate) fn delete_bucket(bucket_dir: &Path) -> Result<()> {
    // Every directory of the tree, parents before children; objects stop the deletion
    // before anything is removed.
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut strays: Vec<PathBuf> = Vec::new();
    let mut pending = vec![bucket_dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if is_absent(&e) => continue,
            Err(e) => return Err(e.into()),
        };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            if entry.file_type()?.is_dir() {
                pending.push(entry.path());
            } else if name.to_str().is_some_and(|n| layout::decode_name(n, false).is_some()) {
                return Err(Error::BucketNotEmpty);
            } else {
                strays.push(entry.path());
            }
        }
        dirs.push(dir);
    }
    for stray in strays {
        match std::fs::remove_file(&stray) {
            Err(e) if !is_absent(&e) => return Err(e.into()),
            _ => {}
        }
    }
    for dir in dirs.iter().rev() {
        match std::fs::remove_dir(dir) {
            Ok(()) => {}
            Err(e) if is_absent(&e) => {}
            // A put got in meanwhile (or a hashed directory's name file was rewritten).
            Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => return Err(Error::BucketNotEmpty),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::write::synced;

    #[test]
    fn deletes_are_made_durable() {
        let root = tempfile::tempdir().unwrap();
        let (tmp, bucket) = (root.path().join(".tmp"), root.path().join("b"));
        std::fs::create_dir(&tmp).unwrap();
        let gone = layout::key_path(&bucket, "a/b/c").unwrap();
        let kept = layout::key_path(&bucket, "a/keep").unwrap();
        std::fs::create_dir_all(gone.dir_path(&bucket, 2)).unwrap();
        std::fs::write(gone.file_path(&bucket), b"x").unwrap();
        std::fs::write(kept.file_path(&bucket), b"x").unwrap();
        delete_object(&tmp, &bucket, &gone).unwrap();
        assert!(!gone.dir_path(&bucket, 2).exists() && kept.file_path(&bucket).exists());
        // The last entry removed is `b%`, in `a%`: that directory must reach the disk.
        let synced = synced::below(root.path());
        assert!(synced.contains(&gone.dir_path(&bucket, 1)), "synced: {synced:?}");
        // Without pruning, the object's own directory.
        let flat = layout::key_path(&bucket, "a/keep").unwrap();
        delete_object(&tmp, &bucket, &flat).unwrap();
        let synced = synced::below(root.path());
        assert!(synced.contains(&bucket), "a%, now empty, was removed from the bucket directory: {synced:?}");
    }
}
