//! What only the filesystem backend promises, checked on disk: temporary files swept on
//! restart, directories pruned, no key escaping its bucket directory. Everything every
//! backend promises is in the conformance suite (`backends.rs`, `conformance/`).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use coffer_backend::{Backend, ByteStream, FsBackend, ListEntry, ListQuery, ObjectMeta, PutChecks};
use futures::{StreamExt, stream};

const BUCKET: &str = "bkt";

async fn setup() -> (tempfile::TempDir, FsBackend) {
    let dir = tempfile::tempdir().unwrap();
    let backend = FsBackend::new(dir.path().join("root")).await.unwrap();
    backend.create_bucket(BUCKET).await.unwrap();
    (dir, backend)
}

fn root(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("root")
}

fn body(data: &[u8]) -> ByteStream {
    let chunks: Vec<Result<Bytes, std::io::Error>> =
        data.chunks(7).map(|c| Ok(Bytes::copy_from_slice(c))).collect::<Vec<_>>();
    Box::pin(stream::iter(chunks))
}

async fn collect(mut s: ByteStream) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = s.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    out
}

async fn put(b: &FsBackend, key: &str, data: &[u8]) -> coffer_backend::ObjectInfo {
    b.put_object(BUCKET, key, ObjectMeta::default(), body(data), PutChecks::default()).await.unwrap()
}

async fn get(b: &FsBackend, key: &str) -> Vec<u8> {
    let (_, _, s) = b.get_object(BUCKET, key, None).await.unwrap();
    collect(s).await
}

/// Every entry (file or directory) below `dir`, recursively.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                pending.push(e.path());
            }
            out.push(e.path());
        }
    }
    out
}

fn tmp_is_empty(root: &Path) -> bool {
    std::fs::read_dir(root.join(".tmp")).unwrap().next().is_none()
}

fn all_keys_query() -> ListQuery {
    ListQuery { max_keys: 100_000, ..Default::default() }
}

fn names(entries: &[ListEntry]) -> Vec<String> {
    entries
        .iter()
        .map(|e| match e {
            ListEntry::Object(o) => format!("O:{}", o.key),
            ListEntry::CommonPrefix(p) => format!("P:{p}"),
        })
        .collect()
}

#[tokio::test]
async fn restart_cleans_tmp() {
    let (dir, b) = setup().await;
    put(&b, "kept", b"data").await;
    let tmp = root(&dir).join(".tmp");
    std::fs::write(tmp.join("leftover"), b"partial").unwrap();
    std::fs::create_dir_all(tmp.join("somedir/deeper")).unwrap();
    drop(b);
    let b = FsBackend::new(root(&dir)).await.unwrap();
    assert!(tmp_is_empty(&root(&dir)));
    assert_eq!(get(&b, "kept").await, b"data");
    b.check().await.unwrap();
}

#[tokio::test]
async fn check_reports_a_broken_root() {
    let (dir, b) = setup().await;
    b.check().await.unwrap();
    std::fs::remove_dir_all(root(&dir).join(".tmp")).unwrap();
    assert!(b.check().await.is_err());
}

#[tokio::test]
async fn delete_cleans_empty_dirs() {
    let (dir, b) = setup().await;
    let bucket_dir = root(&dir).join(BUCKET);
    let long = "s".repeat(250);
    put(&b, "x/y/z/w", b"1").await;
    put(&b, "x/keep", b"2").await;
    put(&b, &format!("{long}/{long}/v"), b"3").await;
    b.delete_object(BUCKET, "x/y/z/w").await.unwrap();
    assert_eq!(walk(&bucket_dir.join("x%")), [bucket_dir.join("x%/keep")], "only x%/keep remains in x%");
    b.delete_object(BUCKET, "x/keep").await.unwrap();
    b.delete_object(BUCKET, &format!("{long}/{long}/v")).await.unwrap();
    assert_eq!(walk(&bucket_dir), Vec::<PathBuf>::new());
    // Deleting what is not there succeeds.
    b.delete_object(BUCKET, "x/keep").await.unwrap();
    b.delete_object(BUCKET, "never/was").await.unwrap();
    b.delete_object(BUCKET, &"k".repeat(5000)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_survive_concurrent_deletes_of_their_directory() {
    let (dir, b) = setup().await;
    let long = "w".repeat(240); // a hashed directory, with its name file
    let mut tasks = Vec::new();
    for t in 0..4 {
        let b = b.clone();
        let long = long.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..40 {
                let key = format!("shared/{long}/dir/{t}-{i}");
                put(&b, &key, key.as_bytes()).await;
                assert_eq!(get(&b, &key).await, key.as_bytes());
                b.delete_object(BUCKET, &key).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    put(&b, &format!("shared/{long}/dir/last"), b"x").await;
    let page = b.list_objects(BUCKET, &all_keys_query()).await.unwrap();
    assert_eq!(names(&page.entries), [format!("O:shared/{long}/dir/last")]);
    b.delete_object(BUCKET, &format!("shared/{long}/dir/last")).await.unwrap();
    assert_eq!(walk(&root(&dir).join(BUCKET)), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn listing_a_prefix_too_long_for_the_filesystem_is_empty() {
    let (_dir, b) = setup().await;
    put(&b, "/a", b"x").await;
    for prefix in ["/".repeat(1024), format!("{}x", "/".repeat(1100)), "a/".repeat(1000)] {
        for delimiter in [None, Some("/".to_owned())] {
            let q = ListQuery { prefix: prefix.clone(), delimiter, max_keys: 10, ..Default::default() };
            let page =
                b.list_objects(BUCKET, &q).await.unwrap_or_else(|e| panic!("prefix of {} bytes: {e}", prefix.len()));
            assert!(page.entries.is_empty() && !page.is_truncated, "{page:?}");
        }
    }
    assert_eq!(b.list_multipart_uploads(BUCKET, &"/".repeat(1024)).await.unwrap(), []);
}

#[tokio::test]
async fn nasty_keys_stay_inside_the_bucket_directory() {
    let (dir, b) = setup().await;
    b.create_bucket("other").await.unwrap();
    let keys = [
        "..",
        "../escape",
        "../../../../etc/passwd",
        "x/../../y",
        ".",
        "./x",
        ".tmp",
        ".uploads/x",
        "%",
        "a//c",
        "/",
        "nul\0byte",
        "back\\slash",
    ];
    for key in keys {
        put(&b, key, key.as_bytes()).await;
        assert_eq!(get(&b, key).await, key.as_bytes(), "{key:?}");
    }
    let root = root(&dir);
    let bucket_dir = root.join(BUCKET);
    for path in walk(&root) {
        let ok = path.starts_with(&bucket_dir)
            || path == root.join("other")
            || path == root.join(".tmp")
            || path == root.join(".uploads");
        assert!(ok, "{path:?} is outside the bucket");
        let canonical = path.canonicalize().unwrap();
        assert!(canonical == path || !canonical.starts_with(&root) || canonical.starts_with(&bucket_dir));
    }
    assert!(!dir.path().join("etc").exists() && !root.join("y").exists() && !root.join("escape").exists());
    for key in keys {
        b.delete_object(BUCKET, key).await.unwrap();
    }
    assert_eq!(walk(&bucket_dir), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn multipart_staging_is_cleaned() {
    let (dir, b) = setup().await;
    let uploads = root(&dir).join(".uploads");
    let id = b.create_multipart_upload(BUCKET, "k", ObjectMeta::default()).await.unwrap();
    let part = b.upload_part(BUCKET, "k", &id, 1, body(b"part"), PutChecks::default()).await.unwrap();
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 1);
    b.complete_multipart_upload(BUCKET, "k", &id, &[(1, part.etag)]).await.unwrap();
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 0);
    let id = b.create_multipart_upload(BUCKET, "k", ObjectMeta::default()).await.unwrap();
    b.upload_part(BUCKET, "k", &id, 1, body(b"part"), PutChecks::default()).await.unwrap();
    b.abort_multipart_upload(BUCKET, "k", &id).await.unwrap();
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 0);
    let id = b.create_multipart_upload(BUCKET, "k", ObjectMeta::default()).await.unwrap();
    b.upload_part(BUCKET, "k", &id, 1, body(b"part"), PutChecks::default()).await.unwrap();
    b.delete_object(BUCKET, "k").await.unwrap();
    b.delete_bucket(BUCKET).await.unwrap();
    assert_eq!(std::fs::read_dir(&uploads).unwrap().count(), 0);
    assert!(tmp_is_empty(&root(&dir)));
}

/// Reads open objects relative to the root directory, held open, yet count the length of
/// an object's path as writes do: near the limit on a path's length, every key a write
/// takes reads back, and every key it refuses is absent. The root here is deep, so that
/// keys within the key length limit reach the path length limit.
#[tokio::test]
async fn keys_at_the_path_length_limit_read_back_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut deep = dir.path().to_path_buf();
    while deep.as_os_str().len() < 2900 {
        deep.push("d".repeat(200));
    }
    // With a trailing separator too: a bucket's path has one separator either way.
    for root in [deep.clone(), deep.join("")] {
        keys_near_the_limit(&FsBackend::new(root).await.unwrap()).await;
    }
}

async fn keys_near_the_limit(b: &FsBackend) {
    b.create_bucket(BUCKET).await.ok();
    let (mut taken, mut refused) = (0, 0);
    for len in (600..=1024).step_by(3) {
        let segment = "k".repeat(99);
        let mut key = std::iter::repeat_n(segment.as_str(), len / 100).collect::<Vec<_>>().join("/");
        key.push_str(&"t".repeat(len - key.len()));
        let written = b.put_object(BUCKET, &key, ObjectMeta::default(), body(b"x"), PutChecks::default()).await;
        match written {
            Ok(_) => {
                assert_eq!(get(b, &key).await, b"x", "a key of {len} bytes");
                assert_eq!(b.head_object(BUCKET, &key).await.unwrap().size, 1);
                taken += 1;
            }
            Err(coffer_backend::Error::KeyTooLong) => {
                assert!(matches!(b.get_object(BUCKET, &key, None).await, Err(coffer_backend::Error::NoSuchKey)));
                refused += 1;
            }
            Err(e) => panic!("a key of {len} bytes: {e}"),
        }
    }
    assert!(taken > 0 && refused > 0, "the limit is inside the range: {taken} taken, {refused} refused");
}
