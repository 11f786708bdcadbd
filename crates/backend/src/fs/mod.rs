//! [`FsBackend`]: the local-filesystem backend, and its [`Backend`] implementation.
//!
//! On-disk layout below the root directory:
//!
//! ```text
//! root/
//!   .tmp/<uuid>             temporary files of writes in progress (swept on start)
//!   .uploads/<id>/          one multipart upload: upload.json and part-00001 …
//!   <bucket>/               one bucket (bucket names never start with '.')
//!     <encoded key path>    object files: data + trailer (see `object_file`)
//! ```
//!
//! The pieces live in their own files: `layout` (key ↔ path), `object_file` (file format;
//! `trailer_codec` its binary trailer), `write` (atomic streaming writes), `read` (opening
//! objects, ranged streams), `remove` (deletes), `list` (ordered listings), `multipart`
//! (uploads), `io_mode` (where the short calls run). Blocking filesystem calls run on tokio's blocking pool (`spawn_blocking`) or
//! through `tokio::fs`, except those of a HEAD and a small GET on a local filesystem,
//! which run inline (see `io_mode`).
//!
//! The root directory is held open for the life of the backend; reads (HEAD, GET, the
//! source of a copy) open an object relative to it, by the bucket's name and the key's
//! path (`read::BucketAt`), so the kernel does not walk every directory above the root
//! on every read.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use async_trait::async_trait;

use crate::{
    Backend, ByteRange, ByteStream, Error, ListPage, ListQuery, ObjectInfo, ObjectMeta, PartInfo, PutChecks, Result,
    UploadInfo,
};

mod io_mode;
pub(crate) mod layout;
mod list;
mod multipart;
mod object_file;
mod read;
mod remove;
mod trailer_codec;
mod write;

pub use io_mode::FsIo;
use object_file::{Trailer, to_millis};
use write::TempWriter;

/// The directory of temporary files, below the root.
const TMP_DIR: &str = ".tmp";
/// The directory of multipart uploads, below the root.
const UPLOADS_DIR: &str = ".uploads";

/// An object backend storing each bucket as a directory and each object as one file
/// (its bytes followed by a metadata trailer) below a root directory.
///
/// Writes are atomic (temporary file, fsync, rename); keys are encoded so that none can
/// leave its bucket directory and so that `a` and `a/b` can coexist. Only one `FsBackend`
/// should use a root at a time: [`FsBackend::new`] sweeps the temporary directory.
#[derive(Debug, Clone)]
pub struct FsBackend {
    root: PathBuf,
    /// The root, held open: objects are read relative to it.
    root_dir: Arc<read::RootDir>,
    tmp: PathBuf,
    uploads: PathBuf,
    /// Whether the short calls of HEAD and small GETs run inline (see [`FsIo`]).
    inline: bool,
}

impl FsBackend {
    /// Open (creating it if needed) a backend rooted at `root`.
    ///
    /// This is `async`: it creates `root`, `root/.tmp` and `root/.uploads` on the blocking
    /// pool, and removes everything left in `root/.tmp` by writes a crash or kill
    /// interrupted. Call it once per root, before serving.
    pub async fn new(root: PathBuf) -> Result<FsBackend> {
        Self::with_io(root, FsIo::Auto).await
    }

    /// [`FsBackend::new`], choosing where the short calls of HEAD and small GETs run.
    pub async fn with_io(root: PathBuf, io: FsIo) -> Result<FsBackend> {
        let (tmp, uploads) = (root.join(TMP_DIR), root.join(UPLOADS_DIR));
        let (r, t, u) = (root.clone(), tmp.clone(), uploads.clone());
        let (root_dir, inline) = blocking(move || {
            std::fs::create_dir_all(&r)?;
            std::fs::create_dir_all(&t)?;
            std::fs::create_dir_all(&u)?;
            for entry in std::fs::read_dir(&t)? {
                let entry = entry?;
                let removed = if entry.file_type()?.is_dir() {
                    std::fs::remove_dir_all(entry.path())
                } else {
                    std::fs::remove_file(entry.path())
                };
                match removed {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e.into()),
                    _ => {}
                }
            }
            Ok((read::RootDir::open(&r)?, io.inline_for(&r)))
        })
        .await?;
        Ok(FsBackend { root, root_dir: Arc::new(root_dir), tmp, uploads, inline })
    }

    /// Whether the short calls of HEAD and small GETs run inline on this root.
    pub fn io_inline(&self) -> bool {
        self.inline
    }

    /// Run the short, bounded file-system work of a HEAD or a small GET: inline on a local
    /// filesystem, on the blocking pool otherwise.
    async fn short_io<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        if self.inline { f() } else { blocking(f).await }
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of a bucket; `NoSuchBucket` for a name that cannot be one (it would
    /// be hidden, or leave the root).
    fn bucket_dir(&self, bucket: &str) -> Result<PathBuf> {
        if valid_bucket_name(bucket) { Ok(self.root.join(bucket)) } else { Err(Error::NoSuchBucket) }
    }

    /// A bucket's directory as reads open objects in it; `NoSuchBucket` as [`Self::bucket_dir`].
    fn bucket_at(&self, bucket: &str) -> Result<read::BucketAt> {
        if valid_bucket_name(bucket) {
            Ok(read::BucketAt { root: self.root_dir.clone(), name: bucket.to_owned() })
        } else {
            Err(Error::NoSuchBucket)
        }
    }

    /// The directory of an existing bucket.
    async fn existing_bucket_dir(&self, bucket: &str) -> Result<PathBuf> {
        let dir = self.bucket_dir(bucket)?;
        match tokio::fs::metadata(&dir).await {
            Ok(m) if m.is_dir() => Ok(dir),
            Ok(_) => Err(Error::NoSuchBucket),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NoSuchBucket),
            Err(e) => Err(e.into()),
        }
    }

    /// Finish a temporary file with `trailer` and publish it as `key` in `bucket_dir`.
    async fn publish(
        &self,
        writer: TempWriter,
        bucket_dir: PathBuf,
        key_path: layout::KeyPath,
        trailer: Trailer,
    ) -> Result<ObjectInfo> {
        let guard = writer.finish(&trailer).await?;
        let tmp = self.tmp.clone();
        blocking(move || write::commit(guard, &tmp, &bucket_dir, &key_path)).await?;
        Ok(trailer.object_info())
    }
}

/// Run blocking filesystem work on tokio's blocking pool.
async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(Error::Io(io::Error::other(e))),
    }
}

/// Now, as stored in trailers.
fn now_millis() -> u64 {
    to_millis(SystemTime::now())
}

/// A name that can be a bucket's directory: not hidden, and never leaving the root.
fn valid_bucket_name(bucket: &str) -> bool {
    !bucket.is_empty()
        && bucket.len() <= 255
        && !bucket.starts_with('.')
        && bucket.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

#[async_trait]
impl Backend for FsBackend {
    async fn check(&self) -> Result<()> {
        let b = self.clone();
        blocking(move || {
            for dir in [&b.root, &b.tmp, &b.uploads] {
                if !std::fs::metadata(dir)?.is_dir() {
                    return Err(io::Error::other(format!("{} is not a directory", dir.display())).into());
                }
            }
            let probe = write::TempGuard::new(&b.tmp);
            std::fs::write(probe.path(), b"ok")?;
            std::fs::remove_file(probe.path())?;
            Ok(())
        })
        .await
    }

    async fn create_bucket(&self, bucket: &str) -> Result<()> {
        let dir = self.bucket_dir(bucket).map_err(|_| {
            Error::Io(io::Error::new(io::ErrorKind::InvalidInput, format!("invalid bucket name {bucket:?}")))
        })?;
        let root = self.root.clone();
        blocking(move || match std::fs::create_dir(&dir) {
            Ok(()) => {
                // A bucket the metadata store records must survive a crash.
                write::sync_dir(&root);
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
            Err(e) => Err(e.into()),
        })
        .await
    }

    async fn delete_bucket(&self, bucket: &str) -> Result<()> {
        let dir = self.bucket_dir(bucket)?;
        let (tmp, uploads) = (self.tmp.clone(), self.uploads.clone());
        let bucket = bucket.to_owned();
        blocking(move || {
            remove::delete_bucket(&dir)?;
            multipart::remove_bucket_uploads(&tmp, &uploads, &bucket);
            Ok(())
        })
        .await
    }

    async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        meta: ObjectMeta,
        body: ByteStream,
        checks: PutChecks,
    ) -> Result<ObjectInfo> {
        let bucket_dir = self.existing_bucket_dir(bucket).await?;
        let key_path = layout::key_path(&bucket_dir, key)?;
        let mut writer = TempWriter::create(&self.tmp, true).await?;
        let md5 = write::receive(&mut writer, body, checks).await?;
        let trailer = Trailer {
            key: key.to_owned(),
            etag: hex::encode(md5),
            size: writer.size(),
            last_modified: now_millis(),
            meta,
            parts: None,
        };
        self.publish(writer, bucket_dir, key_path, trailer).await
    }

    // HEAD, GET and DELETE do their file-system work in one blocking call each: opening the
    // object tells a missing bucket from a missing key (`read::open_object`,
    // `remove::delete_object`), so the bucket directory is not looked up first.
    async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectInfo> {
        let at = self.bucket_at(bucket)?;
        let key = key.to_owned();
        self.short_io(move || read::open_object(&at, &key).map(|(_, t)| t.object_info())).await
    }

    async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<(ObjectInfo, (u64, u64), ByteStream)> {
        let at = self.bucket_at(bucket)?;
        let key = key.to_owned();
        let (trailer, range, data) = self.short_io(move || read::open_range(&at, &key, range)).await?;
        Ok((trailer.object_info(), range, read::range_stream(data, range.1 - range.0)))
    }

    async fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        let bucket_dir = self.bucket_dir(bucket)?;
        let key = key.to_owned();
        let tmp = self.tmp.clone();
        blocking(move || match layout::key_path(&bucket_dir, &key) {
            Ok(key_path) => remove::delete_object(&tmp, &bucket_dir, &key_path),
            // A key too long to store is not stored.
            Err(_) if bucket_dir.is_dir() => Ok(()),
            Err(_) => Err(Error::NoSuchBucket),
        })
        .await
    }

    async fn copy_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        meta: Option<ObjectMeta>,
    ) -> Result<ObjectInfo> {
        // A missing source bucket is told apart by opening the source (`read::open_object`).
        let dst_dir = self.existing_bucket_dir(dst_bucket).await?;
        let dst_path = layout::key_path(&dst_dir, dst_key)?;
        let (src_at, src_key) = (self.bucket_at(src_bucket)?, src_key.to_owned());
        let (file, src) = blocking(move || read::open_object(&src_at, &src_key)).await?;
        let mut writer = TempWriter::create(&self.tmp, true).await?;
        read::copy_data(file, src.size, &mut writer).await?;
        let trailer = Trailer {
            key: dst_key.to_owned(),
            etag: hex::encode(writer.md5().await?),
            size: writer.size(),
            last_modified: now_millis(),
            meta: meta.unwrap_or(src.meta),
            parts: None,
        };
        self.publish(writer, dst_dir, dst_path, trailer).await
    }

    async fn list_objects(&self, bucket: &str, query: &ListQuery) -> Result<ListPage> {
        let bucket_dir = self.existing_bucket_dir(bucket).await?;
        let query = query.clone();
        blocking(move || list::list(&bucket_dir, &query)).await
    }

    async fn create_multipart_upload(&self, bucket: &str, key: &str, meta: ObjectMeta) -> Result<String> {
        let bucket_dir = self.existing_bucket_dir(bucket).await?;
        layout::key_path(&bucket_dir, key)?;
        let record =
            multipart::UploadRecord { bucket: bucket.to_owned(), key: key.to_owned(), meta, initiated: now_millis() };
        let (tmp, uploads) = (self.tmp.clone(), self.uploads.clone());
        blocking(move || multipart::create(&tmp, &uploads, &record)).await
    }

    async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: ByteStream,
        checks: PutChecks,
    ) -> Result<PartInfo> {
        multipart::check_part_number(part_number)?;
        let upload = self.load_upload(bucket, key, upload_id).await?;
        let mut writer = TempWriter::create(&self.tmp, true).await?;
        let md5 = write::receive(&mut writer, body, checks).await?;
        let trailer = Trailer {
            key: key.to_owned(),
            etag: hex::encode(md5),
            size: writer.size(),
            last_modified: now_millis(),
            meta: ObjectMeta::default(),
            parts: None,
        };
        let guard = writer.finish(&trailer).await?;
        blocking(move || multipart::store_part(guard, &upload, part_number)).await?;
        Ok(trailer.part_info(part_number))
    }

    async fn list_parts(&self, bucket: &str, key: &str, upload_id: &str) -> Result<Vec<PartInfo>> {
        let upload = self.load_upload(bucket, key, upload_id).await?;
        blocking(move || multipart::list_parts(&upload)).await
    }

    async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: &[(u32, String)],
    ) -> Result<ObjectInfo> {
        let upload = self.load_upload(bucket, key, upload_id).await?;
        let bucket_dir = self.existing_bucket_dir(bucket).await?;
        let key_path = layout::key_path(&bucket_dir, key)?;
        let parts = parts.to_vec();
        let checked = {
            let upload = upload.clone();
            blocking(move || multipart::check_parts(&upload, &parts)).await?
        };
        let mut writer = TempWriter::create(&self.tmp, false).await?;
        for part in &checked.parts {
            let (n, etag) = (part.0, part.1.clone());
            let upload = upload.clone();
            let (file, trailer) = blocking(move || multipart::open_part(&upload, n, &etag)).await?;
            read::copy_data(file, trailer.size, &mut writer).await?;
        }
        let trailer = Trailer {
            key: key.to_owned(),
            etag: checked.etag,
            size: writer.size(),
            last_modified: now_millis(),
            meta: upload.record.meta.clone(),
            parts: Some(checked.parts.len() as u32),
        };
        let info = self.publish(writer, bucket_dir, key_path, trailer).await?;
        let id = upload_id.to_owned();
        let tmp = self.tmp.clone();
        if let Err(e) = blocking(move || multipart::remove_upload(&tmp, &upload)).await {
            // The object is complete; the upload's leftovers only take space.
            tracing::warn!(upload = %id, error = %e, "could not remove a completed multipart upload");
        }
        Ok(info)
    }

    async fn abort_multipart_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        let upload = self.load_upload(bucket, key, upload_id).await?;
        let tmp = self.tmp.clone();
        blocking(move || multipart::remove_upload(&tmp, &upload)).await
    }

    async fn list_multipart_uploads(&self, bucket: &str, prefix: &str) -> Result<Vec<UploadInfo>> {
        self.existing_bucket_dir(bucket).await?;
        let (uploads, bucket, prefix) = (self.uploads.clone(), bucket.to_owned(), prefix.to_owned());
        blocking(move || Ok(multipart::list_uploads(&uploads, &bucket, &prefix))).await
    }
}

impl FsBackend {
    /// The upload `upload_id`, if it belongs to `bucket` and `key`; `NoSuchUpload` otherwise.
    async fn load_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<multipart::Upload> {
        let (uploads, bucket, key, id) =
            (self.uploads.clone(), bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        blocking(move || multipart::load(&uploads, &bucket, &key, &id)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn new_buckets_are_made_durable() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let backend = FsBackend::new(root.clone()).await.unwrap();
        backend.create_bucket("bkt").await.unwrap();
        let synced = write::synced::below(&root);
        assert!(synced.contains(&root), "the bucket's entry is in the root; synced: {synced:?}");
    }
}
