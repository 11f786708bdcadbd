//! Multipart uploads, staged in `root/.uploads/<upload id>/` until completed.
//!
//! An upload directory holds `upload.json` (bucket, key, metadata, initiation time) and one
//! file per part, `part-00001` … `part-10000`, in the object file format (data + trailer
//! with the part's ETag and size), each written atomically like an object. Uploads live
//! outside the bucket directories, so an upload is never visible as an object (nor does it
//! keep a bucket "non-empty") until completion concatenates its parts into one object
//! file, published by the same temporary-file-and-rename path as a put.
//!
//! Upload ids are random (UUID v4, 32 lowercase hex digits) and are checked to be exactly
//! that before being used in a path; every call checks that the upload belongs to the
//! bucket and key it names.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::object_file::{self, Trailer, from_millis, is_absent};
use super::write::{TempGuard, sync_dir};
use crate::{Error, MAX_PARTS, MIN_PART_SIZE, ObjectMeta, PartInfo, Result, UploadInfo};

/// The record of an upload, in its directory.
const UPLOAD_FILE: &str = "upload.json";

/// What `upload.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct UploadRecord {
    pub bucket: String,
    pub key: String,
    pub meta: ObjectMeta,
    /// Unix milliseconds.
    pub initiated: u64,
}

/// An upload in progress: its directory and record.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    pub dir: PathBuf,
    pub record: UploadRecord,
}

/// The parts of a completion, checked.
#[derive(Debug)]
pub(crate) struct CheckedParts {
    /// Part numbers with the ETags stored for them.
    pub parts: Vec<(u32, String)>,
    /// The multipart ETag: MD5 of the parts' binary MD5s, `-`, the number of parts.
    pub etag: String,
}

/// `InvalidPart` unless `n` is in `1..=MAX_PARTS`.
pub(crate) fn check_part_number(n: u32) -> Result<()> {
    if (1..=MAX_PARTS).contains(&n) {
        Ok(())
    } else {
        Err(Error::InvalidPart(format!("part number {n} is not between 1 and {MAX_PARTS}")))
    }
}

fn part_name(n: u32) -> String {
    format!("part-{n:05}")
}

fn parse_part_name(name: &str) -> Option<u32> {
    let digits = name.strip_prefix("part-")?;
    if digits.len() != 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| (1..=MAX_PARTS).contains(n))
}

/// Whether `id` has the shape of an id this backend hands out (and so is a safe file name).
fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Start an upload: its directory with its record is made in `tmp_dir`, then renamed into
/// `uploads_dir` in one step, so a crash never leaves an upload directory without a record
/// (one that no listing shows and nothing would remove); what it leaves in `tmp_dir` is
/// swept at the next start. Blocking.
pub(crate) fn create(tmp_dir: &Path, uploads_dir: &Path, record: &UploadRecord) -> Result<String> {
    let id = uuid::Uuid::new_v4().simple().to_string();
    let staged = StagedDir(tmp_dir.join(uuid::Uuid::new_v4().simple().to_string()));
    std::fs::create_dir(&staged.0)?;
    let mut file = std::fs::File::create_new(staged.0.join(UPLOAD_FILE))?;
    file.write_all(&serde_json::to_vec(record).map_err(io::Error::other)?)?;
    file.sync_all()?;
    drop(file);
    sync_dir(&staged.0);
    std::fs::rename(&staged.0, uploads_dir.join(&id))?;
    std::mem::forget(staged);
    sync_dir(uploads_dir);
    Ok(id)
}

/// A staged upload directory, removed if its creation fails before it is published.
struct StagedDir(PathBuf);

impl Drop for StagedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Read an upload's record: `NoSuchUpload` unless it exists for `bucket` and `key`. Blocking.
pub(crate) fn load(uploads_dir: &Path, bucket: &str, key: &str, id: &str) -> Result<Upload> {
    if !valid_id(id) {
        return Err(Error::NoSuchUpload);
    }
    let dir = uploads_dir.join(id);
    let record = read_record(&dir)?.ok_or(Error::NoSuchUpload)?;
    if record.bucket != bucket || record.key != key {
        return Err(Error::NoSuchUpload);
    }
    Ok(Upload { dir, record })
}

fn read_record(dir: &Path) -> io::Result<Option<UploadRecord>> {
    match std::fs::read(dir.join(UPLOAD_FILE)) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes).map(Some).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
        }
        Err(e) if is_absent(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Publish a finished temporary part file as part `n`, replacing any earlier one. Blocking.
pub(crate) fn store_part(mut guard: TempGuard, upload: &Upload, n: u32) -> Result<()> {
    match guard.rename_to(&upload.dir.join(part_name(n))) {
        Ok(()) => {
            sync_dir(&upload.dir);
            Ok(())
        }
        Err(e) if is_absent(&e) => Err(Error::NoSuchUpload), // aborted meanwhile
        Err(e) => Err(e.into()),
    }
}

/// The parts uploaded so far, by part number. Blocking.
pub(crate) fn list_parts(upload: &Upload) -> Result<Vec<PartInfo>> {
    let entries = match std::fs::read_dir(&upload.dir) {
        Ok(entries) => entries,
        Err(e) if is_absent(&e) => return Err(Error::NoSuchUpload),
        Err(e) => return Err(e.into()),
    };
    let mut parts = Vec::new();
    for entry in entries {
        let entry = entry?;
        let Some(n) = entry.file_name().to_str().and_then(parse_part_name) else { continue };
        if let Some(o) = object_file::open(&entry.path())? {
            parts.push(o.trailer.part_info(n));
        }
    }
    parts.sort_by_key(|p| p.part_number);
    Ok(parts)
}

/// Check the parts a completion names: ascending, all uploaded with these ETags, then all
/// but the last at least `MIN_PART_SIZE`. Computes the multipart ETag. Blocking.
pub(crate) fn check_parts(upload: &Upload, parts: &[(u32, String)]) -> Result<CheckedParts> {
    if parts.is_empty() {
        return Err(Error::InvalidPart("a completion must name at least one part".to_owned()));
    }
    if parts.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(Error::InvalidPartOrder);
    }
    let trailers = parts.iter().map(|(n, etag)| part_trailer(upload, *n, etag)).collect::<Result<Vec<_>>>()?;
    if trailers[..trailers.len() - 1].iter().any(|t| t.size < MIN_PART_SIZE) {
        return Err(Error::EntityTooSmall);
    }
    let mut md5s = Md5::new();
    let mut checked = Vec::with_capacity(parts.len());
    for ((n, _), trailer) in parts.iter().zip(trailers) {
        let binary = hex::decode(&trailer.etag)
            .map_err(|_| Error::Io(io::Error::new(io::ErrorKind::InvalidData, "a part has a malformed ETag")))?;
        md5s.update(&binary);
        checked.push((*n, trailer.etag));
    }
    let etag = format!("{}-{}", hex::encode(md5s.finalize()), parts.len());
    Ok(CheckedParts { parts: checked, etag })
}

/// Open part `n` for reading its data, checking it still has ETag `etag`. Blocking.
pub(crate) fn open_part(upload: &Upload, n: u32, etag: &str) -> Result<(std::fs::File, Trailer)> {
    check_part_number(n)?;
    match object_file::open(&upload.dir.join(part_name(n)))? {
        Some(o) if etag_matches(&o.trailer.etag, etag) => Ok((o.file, o.trailer)),
        Some(_) => Err(Error::InvalidPart(format!("part {n}: the ETag {etag} does not match the part uploaded"))),
        None => Err(Error::InvalidPart(format!("part {n} has not been uploaded"))),
    }
}

/// The trailer of part `n`, checking that it has ETag `etag`.
fn part_trailer(upload: &Upload, n: u32, etag: &str) -> Result<Trailer> {
    open_part(upload, n, etag).map(|(_, trailer)| trailer)
}

/// Whether an ETag sent by a client (perhaps quoted) names the stored one.
fn etag_matches(stored: &str, given: &str) -> bool {
    given.trim().trim_matches('"').eq_ignore_ascii_case(stored)
}

/// Remove an upload and its parts; succeeds when it is already gone. The directory is first
/// renamed into `tmp_dir` in one step, so a crash part-way leaves no upload without its
/// record in `.uploads` (nothing would list or remove it), only debris in `.tmp`, swept at the
/// next start. Blocking.
pub(crate) fn remove_upload(tmp_dir: &Path, upload: &Upload) -> Result<()> {
    let doomed = tmp_dir.join(uuid::Uuid::new_v4().simple().to_string());
    match std::fs::rename(&upload.dir, &doomed) {
        Ok(()) => {}
        Err(e) if is_absent(&e) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    if let Some(uploads_dir) = upload.dir.parent() {
        sync_dir(uploads_dir);
    }
    remove_dir(&doomed)
}

fn remove_dir(dir: &Path) -> Result<()> {
    let mut attempts = 0;
    loop {
        match std::fs::remove_dir_all(dir) {
            Ok(()) => return Ok(()),
            Err(e) if is_absent(&e) => return Ok(()),
            // A part landed while the directory was being emptied: empty it again.
            Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty && attempts < 8 => attempts += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Every upload in progress: its id, directory and record. Unreadable ones (still being
/// created, or damaged) are skipped.
fn all_uploads(uploads_dir: &Path) -> Vec<(String, Upload)> {
    let Ok(entries) = std::fs::read_dir(uploads_dir) else { return Vec::new() };
    let mut uploads = Vec::new();
    for entry in entries.flatten() {
        let Ok(id) = entry.file_name().into_string() else { continue };
        if !valid_id(&id) {
            continue;
        }
        let dir = entry.path();
        match read_record(&dir) {
            Ok(Some(record)) => uploads.push((id, Upload { dir, record })),
            Ok(None) => {}
            Err(e) => tracing::warn!(upload = %id, error = %e, "skipping an unreadable multipart upload"),
        }
    }
    uploads
}

/// The uploads of `bucket` whose key starts with `prefix`, by key then initiation. Blocking.
pub(crate) fn list_uploads(uploads_dir: &Path, bucket: &str, prefix: &str) -> Vec<UploadInfo> {
    let mut found: Vec<(String, u64, String)> = all_uploads(uploads_dir)
        .into_iter()
        .filter(|(_, u)| u.record.bucket == bucket && u.record.key.starts_with(prefix))
        .map(|(id, u)| (u.record.key, u.record.initiated, id))
        .collect();
    found.sort();
    found
        .into_iter()
        .map(|(key, initiated, upload_id)| UploadInfo { key, upload_id, initiated: from_millis(initiated) })
        .collect()
}

/// Remove every upload of `bucket` (when the bucket is deleted). Blocking.
pub(crate) fn remove_bucket_uploads(tmp_dir: &Path, uploads_dir: &Path, bucket: &str) {
    for (id, upload) in all_uploads(uploads_dir) {
        if upload.record.bucket == bucket
            && let Err(e) = remove_upload(tmp_dir, &upload)
        {
            tracing::warn!(upload = %id, error = %e, "could not remove a multipart upload of a deleted bucket");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn part_names() {
        assert_eq!(part_name(1), "part-00001");
        assert_eq!(part_name(10_000), "part-10000");
        assert_eq!(parse_part_name("part-00042"), Some(42));
        assert_eq!(parse_part_name("part-10000"), Some(10_000));
        assert_eq!(parse_part_name("part-00000"), None);
        assert_eq!(parse_part_name("part-10001"), None);
        assert_eq!(parse_part_name("part-1"), None);
        assert_eq!(parse_part_name("upload.json"), None);
    }

    #[test]
    fn ids_are_checked_before_use() {
        let id = uuid::Uuid::new_v4().simple().to_string();
        assert!(valid_id(&id));
        for bad in ["", "../../etc", "0123456789abcdef0123456789abcde/", "0123456789ABCDEF0123456789ABCDEF"] {
            assert!(!valid_id(bad), "{bad:?}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(load(dir.path(), "b", "k", "../x"), Err(Error::NoSuchUpload)));
        assert!(matches!(load(dir.path(), "b", "k", &id), Err(Error::NoSuchUpload)));
    }

    #[test]
    fn new_uploads_are_made_durable() {
        let root = tempfile::tempdir().unwrap();
        let (tmp, uploads) = (root.path().join(".tmp"), root.path().join(".uploads"));
        std::fs::create_dir(&tmp).unwrap();
        std::fs::create_dir(&uploads).unwrap();
        let record = UploadRecord { bucket: "b".into(), key: "k".into(), meta: ObjectMeta::default(), initiated: 0 };
        let id = create(&tmp, &uploads, &record).unwrap();
        let synced = crate::fs::write::synced::below(root.path());
        // The upload's directory entry is in `.uploads`; its record was synced in the
        // directory before the directory was published (staged in `.tmp`, renamed whole).
        assert!(synced.contains(&uploads), "synced: {synced:?}");
        assert!(synced.iter().any(|p| p.parent() == Some(tmp.as_path())), "synced: {synced:?}");
        assert!(uploads.join(&id).join(UPLOAD_FILE).is_file());
        assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "nothing is left in .tmp");
        assert!(load(&uploads, "b", "k", &id).is_ok());
    }

    #[test]
    fn etags_compare_loosely() {
        assert!(etag_matches("abc", "\"abc\""));
        assert!(etag_matches("abc", "ABC"));
        assert!(!etag_matches("abc", "abd"));
    }

    #[test]
    fn part_numbers() {
        assert!(check_part_number(1).is_ok());
        assert!(check_part_number(MAX_PARTS).is_ok());
        assert!(matches!(check_part_number(0), Err(Error::InvalidPart(_))));
        assert!(matches!(check_part_number(MAX_PARTS + 1), Err(Error::InvalidPart(_))));
    }
}
