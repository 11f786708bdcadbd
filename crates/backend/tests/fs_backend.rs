//! `FsBackend` driven only through the public `Backend` trait, on temporary directories.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use coffer_backend::{
    Backend, ByteRange, ByteStream, Error, FsBackend, ListEntry, ListQuery, MIN_PART_SIZE, ObjectMeta, PutChecks,
};
use futures::{StreamExt, stream};
use md5::{Digest, Md5};

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

fn md5_hex(data: &[u8]) -> String {
    hex::encode(Md5::digest(data))
}

fn md5_bin(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
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
async fn put_get_head_round_trip() {
    let (_dir, b) = setup().await;
    let mut meta = ObjectMeta {
        content_type: Some("text/plain; charset=utf-8".into()),
        content_encoding: Some("identity".into()),
        content_disposition: Some("attachment; filename=\"x.txt\"".into()),
        content_language: Some("fr".into()),
        cache_control: Some("no-cache".into()),
        expires: Some("Thu, 01 Dec 2094 16:00:00 GMT".into()),
        ..Default::default()
    };
    meta.user_metadata.insert("owner".into(), "zoé".into());
    let data = b"hello, world";
    let info = b.put_object(BUCKET, "dir/hello.txt", meta.clone(), body(data), PutChecks::default()).await.unwrap();
    assert_eq!(info.key, "dir/hello.txt");
    assert_eq!(info.size, data.len() as u64);
    assert_eq!(info.etag, md5_hex(data));
    assert_eq!(info.meta, meta);
    let head = b.head_object(BUCKET, "dir/hello.txt").await.unwrap();
    assert_eq!(head, info);
    let (got, range, s) = b.get_object(BUCKET, "dir/hello.txt", None).await.unwrap();
    assert_eq!(got, info);
    assert_eq!(range, (0, data.len() as u64));
    assert_eq!(collect(s).await, data);
    // Overwrite.
    let info2 = put(&b, "dir/hello.txt", b"bye").await;
    assert_eq!(info2.etag, md5_hex(b"bye"));
    assert_eq!(info2.meta, ObjectMeta::default());
    assert_eq!(get(&b, "dir/hello.txt").await, b"bye");
    // Empty object.
    let empty = put(&b, "empty", b"").await;
    assert_eq!(empty.etag, md5_hex(b""));
    assert_eq!(get(&b, "empty").await, b"");
    // With all checks satisfied.
    let checks = PutChecks { content_md5: Some(md5_bin(data)), expected_size: Some(data.len() as u64), max_size: 100 };
    b.put_object(BUCKET, "checked", ObjectMeta::default(), body(data), checks).await.unwrap();
}

#[tokio::test]
async fn ranges() {
    let (_dir, b) = setup().await;
    put(&b, "r", b"0123456789").await;
    let cases = [
        (ByteRange::FromTo { first: 2, last: Some(5) }, (2, 6), &b"2345"[..]),
        (ByteRange::FromTo { first: 0, last: Some(0) }, (0, 1), b"0"),
        (ByteRange::FromTo { first: 7, last: None }, (7, 10), b"789"),
        (ByteRange::FromTo { first: 8, last: Some(100) }, (8, 10), b"89"),
        (ByteRange::Suffix { len: 3 }, (7, 10), b"789"),
        (ByteRange::Suffix { len: 30 }, (0, 10), b"0123456789"),
    ];
    for (range, want_range, want) in cases {
        let (info, got_range, s) = b.get_object(BUCKET, "r", Some(range)).await.unwrap();
        assert_eq!(info.size, 10);
        assert_eq!(got_range, want_range, "{range:?}");
        assert_eq!(collect(s).await, want, "{range:?}");
    }
    for range in [ByteRange::FromTo { first: 10, last: None }, ByteRange::Suffix { len: 0 }] {
        assert!(matches!(b.get_object(BUCKET, "r", Some(range)).await, Err(Error::InvalidRange)), "{range:?}");
    }
}

#[tokio::test]
async fn missing_things() {
    let (_dir, b) = setup().await;
    put(&b, "d/x", b"x").await;
    for key in ["nope", "d", "d/", "d/x/y", &"k".repeat(2000)] {
        assert!(matches!(b.head_object(BUCKET, key).await, Err(Error::NoSuchKey)), "{key:?}");
        assert!(matches!(b.get_object(BUCKET, key, None).await, Err(Error::NoSuchKey)), "{key:?}");
    }
    assert!(matches!(b.head_object("nobucket", "d/x").await, Err(Error::NoSuchBucket)));
    assert!(matches!(b.get_object("nobucket", "d/x", None).await, Err(Error::NoSuchBucket)));
    assert!(matches!(b.list_objects("nobucket", &all_keys_query()).await, Err(Error::NoSuchBucket)));
    assert!(matches!(b.delete_object("nobucket", "x").await, Err(Error::NoSuchBucket)));
    assert!(matches!(
        b.put_object("nobucket", "x", ObjectMeta::default(), body(b"x"), PutChecks::default()).await,
        Err(Error::NoSuchBucket)
    ));
    assert!(matches!(b.head_object("../root", "x").await, Err(Error::NoSuchBucket)));
    assert!(matches!(
        b.put_object(BUCKET, &"k".repeat(1025), ObjectMeta::default(), body(b"x"), PutChecks::default()).await,
        Err(Error::KeyTooLong)
    ));
}

#[tokio::test]
async fn bad_digest_leaves_nothing() {
    let (dir, b) = setup().await;
    let checks = PutChecks { content_md5: Some(md5_bin(b"other")), ..Default::default() };
    let r = b.put_object(BUCKET, "k", ObjectMeta::default(), body(b"data"), checks).await;
    assert!(matches!(r, Err(Error::BadDigest)), "{r:?}");
    assert!(matches!(b.head_object(BUCKET, "k").await, Err(Error::NoSuchKey)));
    assert!(tmp_is_empty(&root(&dir)));
    // A failed overwrite keeps the old object.
    put(&b, "k", b"old").await;
    let r = b.put_object(BUCKET, "k", ObjectMeta::default(), body(b"data"), checks).await;
    assert!(matches!(r, Err(Error::BadDigest)));
    assert_eq!(get(&b, "k").await, b"old");
    assert!(tmp_is_empty(&root(&dir)));
}

#[tokio::test]
async fn size_checks() {
    let (dir, b) = setup().await;
    let put_with = |checks: PutChecks, data: &'static [u8]| {
        let b = b.clone();
        async move { b.put_object(BUCKET, "k", ObjectMeta::default(), body(data), checks).await }
    };
    let r = put_with(PutChecks { max_size: 10, ..Default::default() }, b"0123456789A").await;
    assert!(matches!(r, Err(Error::EntityTooLarge)), "{r:?}");
    put_with(PutChecks { max_size: 10, ..Default::default() }, b"0123456789").await.unwrap();
    let r = put_with(PutChecks { expected_size: Some(10), ..Default::default() }, b"01234").await;
    assert!(matches!(r, Err(Error::IncompleteBody)), "{r:?}");
    let r = put_with(PutChecks { expected_size: Some(3), ..Default::default() }, b"01234").await;
    assert!(matches!(r, Err(Error::IncompleteBody)), "{r:?}");
    assert_eq!(get(&b, "k").await, b"0123456789");
    assert!(tmp_is_empty(&root(&dir)));
}

#[tokio::test]
async fn too_large_is_detected_while_streaming() {
    let (dir, b) = setup().await;
    // 16 bytes, then a body that never ends: only a check made while streaming can answer.
    let first: ByteStream = Box::pin(stream::iter([Ok(Bytes::from_static(b"0123456789abcdef"))]));
    let endless: ByteStream = Box::pin(first.chain(stream::pending()));
    let checks = PutChecks { max_size: 10, ..Default::default() };
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        b.put_object(BUCKET, "big", ObjectMeta::default(), endless, checks),
    )
    .await
    .expect("the put must fail before the body ends");
    assert!(matches!(r, Err(Error::EntityTooLarge)), "{r:?}");
    assert!(tmp_is_empty(&root(&dir)));
}

#[tokio::test]
async fn body_error_leaves_nothing() {
    let (dir, b) = setup().await;
    put(&b, "k", b"old").await;
    let failing: ByteStream = Box::pin(stream::iter([
        Ok(Bytes::from_static(b"some bytes")),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away")),
        Ok(Bytes::from_static(b"never read")),
    ]));
    let r = b.put_object(BUCKET, "k", ObjectMeta::default(), failing, PutChecks::default()).await;
    assert!(matches!(r, Err(Error::Body(_))), "{r:?}");
    assert_eq!(get(&b, "k").await, b"old");
    assert!(tmp_is_empty(&root(&dir)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_put_leaves_nothing() {
    let (dir, b) = setup().await;
    let first: ByteStream = Box::pin(stream::iter([Ok(Bytes::from(vec![7u8; 1 << 20]))]));
    let endless: ByteStream = Box::pin(first.chain(stream::pending()));
    let task = {
        let b = b.clone();
        tokio::spawn(
            async move { b.put_object(BUCKET, "k", ObjectMeta::default(), endless, PutChecks::default()).await },
        )
    };
    // Wait until the temporary file exists: the put is mid-stream.
    let tmp = root(&dir).join(".tmp");
    for _ in 0..500 {
        if std::fs::read_dir(&tmp).unwrap().next().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!tmp_is_empty(&root(&dir)), "the put should be writing its temporary file");
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(tmp_is_empty(&root(&dir)));
    assert!(matches!(b.head_object(BUCKET, "k").await, Err(Error::NoSuchKey)));
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

fn nasty_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "a",
        "a/",
        "a/b",
        "a-b",
        "a//c",
        "résumé",
        "%41",
        "A",
        "/",
        "/lead",
        "..",
        "../escape",
        "../../../../etc/passwd",
        "x/../../y",
        ".",
        "./x",
        "...",
        ".tmp",
        ".uploads/x",
        "%",
        "%e",
        "%name",
        "a%",
        "sp ace/tab\there",
        "日本語/キー",
        "emoji🎉",
        "back\\slash",
        "q?x=1&y=2#h",
        "trailing//",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    keys.push("L".repeat(1024));
    keys.push(format!("{}/{}", "é".repeat(150), "%".repeat(100)));
    keys.push(format!("{}/{}/x", "d".repeat(300), "d".repeat(300)));
    keys
}

#[tokio::test]
async fn nasty_keys_round_trip_and_stay_inside() {
    let (dir, b) = setup().await;
    b.create_bucket("other").await.unwrap();
    let keys = nasty_keys();
    for key in &keys {
        put(&b, key, key.as_bytes()).await;
    }
    for key in &keys {
        assert_eq!(get(&b, key).await, key.as_bytes(), "{key:?}");
        assert_eq!(b.head_object(BUCKET, key).await.unwrap().key, *key);
    }
    let page = b.list_objects(BUCKET, &all_keys_query()).await.unwrap();
    let mut sorted = keys.clone();
    sorted.sort();
    let listed: Vec<String> = names(&page.entries).into_iter().map(|n| n[2..].to_owned()).collect();
    assert_eq!(listed, sorted);
    assert!(!page.is_truncated);
    // On disk: everything is below root/bkt, nothing in the other bucket or elsewhere.
    let root = root(&dir);
    let bucket_dir = root.join(BUCKET);
    for path in walk(&root) {
        let ok = path.starts_with(&bucket_dir)
            || path == bucket_dir
            || path == root.join("other")
            || path == root.join(".tmp")
            || path == root.join(".uploads");
        assert!(ok, "{path:?} is outside the bucket");
        let canonical = path.canonicalize().unwrap();
        assert!(canonical == path || !canonical.starts_with(&root) || canonical.starts_with(&bucket_dir));
    }
    assert!(!dir.path().join("etc").exists() && !root.join("y").exists() && !root.join("escape").exists());
    assert_eq!(b.list_objects("other", &all_keys_query()).await.unwrap().entries, vec![]);
    // Delete them all: the bucket directory ends up empty.
    for key in &keys {
        b.delete_object(BUCKET, key).await.unwrap();
    }
    assert_eq!(walk(&bucket_dir), Vec::<PathBuf>::new());
}

#[tokio::test]
async fn object_and_prefix_coexist() {
    let (_dir, b) = setup().await;
    put(&b, "a", b"file a").await;
    put(&b, "a/b", b"file a/b").await;
    put(&b, "a/", b"file a/").await;
    assert_eq!(get(&b, "a").await, b"file a");
    assert_eq!(get(&b, "a/b").await, b"file a/b");
    assert_eq!(get(&b, "a/").await, b"file a/");
    let q = ListQuery { delimiter: Some("/".into()), max_keys: 10, ..Default::default() };
    assert_eq!(names(&b.list_objects(BUCKET, &q).await.unwrap().entries), ["O:a", "P:a/"]);
    b.delete_object(BUCKET, "a").await.unwrap();
    assert_eq!(get(&b, "a/b").await, b"file a/b");
    assert!(matches!(b.head_object(BUCKET, "a").await, Err(Error::NoSuchKey)));
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

#[tokio::test]
async fn delete_bucket_rules() {
    let (dir, b) = setup().await;
    put(&b, "deep/obj", b"x").await;
    let upload = b.create_multipart_upload(BUCKET, "mp", ObjectMeta::default()).await.unwrap();
    b.upload_part(BUCKET, "mp", &upload, 1, body(b"part"), PutChecks::default()).await.unwrap();
    assert!(matches!(b.delete_bucket(BUCKET).await, Err(Error::BucketNotEmpty)));
    assert_eq!(b.list_multipart_uploads(BUCKET, "").await.unwrap().len(), 1, "a refused delete keeps uploads");
    b.delete_object(BUCKET, "deep/obj").await.unwrap();
    // Empty leftover directories do not count.
    std::fs::create_dir_all(root(&dir).join(BUCKET).join("left%/over%")).unwrap();
    b.delete_bucket(BUCKET).await.unwrap();
    assert!(!root(&dir).join(BUCKET).exists());
    assert_eq!(std::fs::read_dir(root(&dir).join(".uploads")).unwrap().count(), 0);
    b.delete_bucket(BUCKET).await.unwrap(); // idempotent
    assert!(matches!(b.head_object(BUCKET, "deep/obj").await, Err(Error::NoSuchBucket)));
    b.create_bucket(BUCKET).await.unwrap();
    b.create_bucket(BUCKET).await.unwrap(); // idempotent
    assert!(b.list_multipart_uploads(BUCKET, "").await.unwrap().is_empty());
}

#[tokio::test]
async fn copy_object_metadata() {
    let (dir, b) = setup().await;
    b.create_bucket("dst").await.unwrap();
    let mut meta = ObjectMeta { content_type: Some("image/png".into()), ..Default::default() };
    meta.user_metadata.insert("a".into(), "1".into());
    let data: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
    let src = b.put_object(BUCKET, "src", meta.clone(), body(&data), PutChecks::default()).await.unwrap();
    // COPY
    let copied = b.copy_object(BUCKET, "src", "dst", "copy", None).await.unwrap();
    assert_eq!(copied.meta, meta);
    assert_eq!(copied.etag, md5_hex(&data));
    assert_eq!(copied.key, "copy");
    assert_eq!(b.head_object("dst", "copy").await.unwrap(), copied);
    let (_, _, s) = b.get_object("dst", "copy", None).await.unwrap();
    assert_eq!(collect(s).await, data);
    // REPLACE, onto itself.
    let new_meta = ObjectMeta { content_type: Some("text/plain".into()), ..Default::default() };
    let replaced = b.copy_object(BUCKET, "src", BUCKET, "src", Some(new_meta.clone())).await.unwrap();
    assert_eq!(replaced.meta, new_meta);
    assert_eq!(replaced.etag, src.etag);
    assert_eq!(b.head_object(BUCKET, "src").await.unwrap().meta, new_meta);
    assert_eq!(get(&b, "src").await, data);
    assert!(matches!(b.copy_object(BUCKET, "none", "dst", "x", None).await, Err(Error::NoSuchKey)));
    assert!(matches!(b.copy_object(BUCKET, "src", "nobucket", "x", None).await, Err(Error::NoSuchBucket)));
    assert!(tmp_is_empty(&root(&dir)));
}

/// The reference listing: select, roll up and paginate all keys, sorted.
fn reference(keys: &[String], q: &ListQuery) -> (Vec<String>, bool) {
    let delimiter = q.delimiter.as_deref().filter(|d| !d.is_empty());
    let roll_up = |key: &str| -> Option<String> {
        let rest = key.strip_prefix(q.prefix.as_str())?;
        let d = delimiter?;
        rest.find(d).map(|at| format!("{}{}{}", q.prefix, &rest[..at], d))
    };
    let skip = q.start_after.clone().filter(|sa| roll_up(sa).as_deref() == Some(sa.as_str()));
    let mut sorted = keys.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut all: Vec<String> = Vec::new();
    for key in &sorted {
        if !key.starts_with(&q.prefix)
            || q.start_after.as_ref().is_some_and(|sa| key <= sa)
            || skip.as_ref().is_some_and(|s| key.starts_with(s.as_str()))
        {
            continue;
        }
        let entry = roll_up(key).map_or_else(|| format!("O:{key}"), |p| format!("P:{p}"));
        if all.last() != Some(&entry) {
            all.push(entry);
        }
    }
    let truncated = all.len() > q.max_keys;
    all.truncate(q.max_keys);
    (all, truncated)
}

#[tokio::test]
async fn listing_matches_the_reference() {
    let (_dir, b) = setup().await;
    let keys: Vec<String> = [
        "a",
        "a/",
        "a/b",
        "a-b",
        "a//c",
        "résumé",
        "%41",
        "a/b/c",
        "a/b/c/d",
        "a/c",
        "b/a",
        "b/b/",
        "b//",
        "c",
        "photos/2024/jan/1.jpg",
        "photos/2024/jan/2.jpg",
        "photos/2024/feb/1.jpg",
        "photos/2025/x",
        "photos/index",
        "z",
        "zz/",
        "é/è",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for k in &keys {
        put(&b, k, k.as_bytes()).await;
    }
    for prefix in ["", "a", "a/", "a/b", "b/", "photos/", "photos/2024/", "p", "zzz", "é"] {
        for delimiter in [None, Some("/"), Some("-"), Some("/2"), Some("b")] {
            for start_after in [None, Some("a"), Some("a/"), Some("a/b"), Some("photos/2024/"), Some("b")] {
                for max_keys in [1, 2, 1000] {
                    let q = ListQuery {
                        prefix: prefix.into(),
                        delimiter: delimiter.map(Into::into),
                        start_after: start_after.map(Into::into),
                        max_keys,
                    };
                    let page = b.list_objects(BUCKET, &q).await.unwrap();
                    let (want, truncated) = reference(&keys, &q);
                    assert_eq!(names(&page.entries), want, "{q:?}");
                    assert_eq!(page.is_truncated, truncated, "{q:?}");
                }
            }
            // Page through, one and three entries at a time.
            for page_size in [1, 3] {
                let mut q = ListQuery {
                    prefix: prefix.into(),
                    delimiter: delimiter.map(Into::into),
                    start_after: None,
                    max_keys: page_size,
                };
                let mut seen = Vec::new();
                loop {
                    let page = b.list_objects(BUCKET, &q).await.unwrap();
                    let got = names(&page.entries);
                    seen.extend(got.clone());
                    if !page.is_truncated {
                        break;
                    }
                    assert_eq!(got.len(), page_size);
                    q.start_after = Some(got.last().unwrap()[2..].to_owned());
                }
                let whole = ListQuery { start_after: None, max_keys: usize::MAX, ..q };
                assert_eq!(seen, reference(&keys, &whole).0, "paging {prefix:?} {delimiter:?} by {page_size}");
            }
        }
    }
    // Listed objects carry their info.
    let q = ListQuery { prefix: "résumé".into(), max_keys: 10, ..Default::default() };
    let page = b.list_objects(BUCKET, &q).await.unwrap();
    let [ListEntry::Object(o)] = page.entries.as_slice() else { panic!("{page:?}") };
    assert_eq!(o.etag, md5_hex("résumé".as_bytes()));
    assert_eq!(o.size, "résumé".len() as u64);
}

/// Deterministic pseudo-random bytes, `len` of them, for part or chunk `seed`.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[tokio::test]
async fn multipart_happy_path() {
    let (dir, b) = setup().await;
    let meta = ObjectMeta { content_type: Some("application/zip".into()), ..Default::default() };
    let id = b.create_multipart_upload(BUCKET, "big/file", meta.clone()).await.unwrap();
    assert_eq!(id.len(), 32);
    let p1 = pattern(1, MIN_PART_SIZE as usize);
    let p2 = pattern(2, MIN_PART_SIZE as usize + 3);
    let p3 = pattern(3, 1000);
    // Out of order, and part 2 replaced.
    let i3 = b.upload_part(BUCKET, "big/file", &id, 3, body(&p3), PutChecks::default()).await.unwrap();
    b.upload_part(BUCKET, "big/file", &id, 2, body(b"to be replaced"), PutChecks::default()).await.unwrap();
    let i1 = b.upload_part(BUCKET, "big/file", &id, 1, body(&p1), PutChecks::default()).await.unwrap();
    let checks = PutChecks { content_md5: Some(md5_bin(&p2)), expected_size: Some(p2.len() as u64), max_size: 0 };
    let i2 = b.upload_part(BUCKET, "big/file", &id, 2, body(&p2), checks).await.unwrap();
    assert_eq!(i2.etag, md5_hex(&p2));
    assert_eq!(i2.size, p2.len() as u64);
    let parts = b.list_parts(BUCKET, "big/file", &id).await.unwrap();
    assert_eq!(parts.iter().map(|p| p.part_number).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(parts[1], i2);
    // Not visible before completion.
    assert!(matches!(b.head_object(BUCKET, "big/file").await, Err(Error::NoSuchKey)));
    assert!(b.list_objects(BUCKET, &all_keys_query()).await.unwrap().entries.is_empty());
    let uploads = b.list_multipart_uploads(BUCKET, "").await.unwrap();
    assert_eq!(uploads.len(), 1);
    assert_eq!((uploads[0].key.as_str(), uploads[0].upload_id.as_str()), ("big/file", id.as_str()));

    let list = [(1, i1.etag.clone()), (2, format!("\"{}\"", i2.etag)), (3, i3.etag.clone())];
    let info = b.complete_multipart_upload(BUCKET, "big/file", &id, &list).await.unwrap();
    let mut md5s = Vec::new();
    for p in [&p1, &p2, &p3] {
        md5s.extend_from_slice(&md5_bin(p));
    }
    assert_eq!(info.etag, format!("{}-3", md5_hex(&md5s)));
    let (hex, n) = info.etag.split_once('-').unwrap();
    assert!(hex.len() == 32 && hex.bytes().all(|c| c.is_ascii_hexdigit()) && n == "3");
    assert_eq!(info.size, (p1.len() + p2.len() + p3.len()) as u64);
    assert_eq!(info.meta, meta);
    assert_eq!(b.head_object(BUCKET, "big/file").await.unwrap(), info);
    let (_, _, s) = b.get_object(BUCKET, "big/file", None).await.unwrap();
    let got = collect(s).await;
    assert!(got == [p1.as_slice(), &p2, &p3].concat());
    // The upload is gone.
    assert!(b.list_multipart_uploads(BUCKET, "").await.unwrap().is_empty());
    assert!(matches!(b.list_parts(BUCKET, "big/file", &id).await, Err(Error::NoSuchUpload)));
    assert_eq!(std::fs::read_dir(root(&dir).join(".uploads")).unwrap().count(), 0);
    assert!(tmp_is_empty(&root(&dir)));
    // A copy of a multipart object has a plain MD5 ETag.
    let copy = b.copy_object(BUCKET, "big/file", BUCKET, "copy", None).await.unwrap();
    assert_eq!(copy.etag, hex::encode(Md5::digest(&got)));
}

#[tokio::test]
async fn multipart_errors() {
    let (dir, b) = setup().await;
    let id = b.create_multipart_upload(BUCKET, "k", ObjectMeta::default()).await.unwrap();
    let small1 = b.upload_part(BUCKET, "k", &id, 1, body(b"one"), PutChecks::default()).await.unwrap();
    let small2 = b.upload_part(BUCKET, "k", &id, 2, body(b"two"), PutChecks::default()).await.unwrap();

    // Part numbers outside 1..=10000.
    for n in [0, 10_001] {
        let r = b.upload_part(BUCKET, "k", &id, n, body(b"x"), PutChecks::default()).await;
        assert!(matches!(r, Err(Error::InvalidPart(_))), "{n}: {r:?}");
    }
    // Order.
    let r = b.complete_multipart_upload(BUCKET, "k", &id, &[(2, small2.etag.clone()), (1, small1.etag.clone())]).await;
    assert!(matches!(r, Err(Error::InvalidPartOrder)), "{r:?}");
    let r = b.complete_multipart_upload(BUCKET, "k", &id, &[(1, small1.etag.clone()), (1, small1.etag.clone())]).await;
    assert!(matches!(r, Err(Error::InvalidPartOrder)), "{r:?}");
    // Wrong ETag, missing part, no parts.
    let r = b.complete_multipart_upload(BUCKET, "k", &id, &[(1, "0".repeat(32))]).await;
    assert!(matches!(&r, Err(Error::InvalidPart(m)) if m.contains('1')), "{r:?}");
    let r = b.complete_multipart_upload(BUCKET, "k", &id, &[(1, small1.etag.clone()), (7, small1.etag.clone())]).await;
    assert!(matches!(&r, Err(Error::InvalidPart(m)) if m.contains('7')), "{r:?}");
    assert!(matches!(b.complete_multipart_upload(BUCKET, "k", &id, &[]).await, Err(Error::InvalidPart(_))));
    // Too small.
    let r = b.complete_multipart_upload(BUCKET, "k", &id, &[(1, small1.etag.clone()), (2, small2.etag.clone())]).await;
    assert!(matches!(r, Err(Error::EntityTooSmall)), "{r:?}");
    assert!(matches!(b.head_object(BUCKET, "k").await, Err(Error::NoSuchKey)));
    // One small part alone is fine (the last may be small).
    let info = b.complete_multipart_upload(BUCKET, "k", &id, &[(2, small2.etag.clone())]).await.unwrap();
    assert!(info.etag.ends_with("-1"));
    assert_eq!(get(&b, "k").await, b"two");
    assert!(matches!(
        b.complete_multipart_upload(BUCKET, "k", &id, &[(2, small2.etag)]).await,
        Err(Error::NoSuchUpload)
    ));
    assert!(tmp_is_empty(&root(&dir)));
}

#[tokio::test]
async fn multipart_ownership_and_abort() {
    let (dir, b) = setup().await;
    b.create_bucket("other").await.unwrap();
    let id = b.create_multipart_upload(BUCKET, "k", ObjectMeta::default()).await.unwrap();
    let part = b.upload_part(BUCKET, "k", &id, 1, body(b"p"), PutChecks::default()).await.unwrap();
    let wrong = [
        (BUCKET, "other-key", id.as_str()),
        ("other", "k", id.as_str()),
        (BUCKET, "k", "nope"),
        (BUCKET, "k", "../../bkt"),
    ];
    for (bucket, key, upload) in wrong {
        let r = b.upload_part(bucket, key, upload, 1, body(b"x"), PutChecks::default()).await;
        assert!(matches!(r, Err(Error::NoSuchUpload)), "{bucket} {key} {upload}: {r:?}");
        assert!(matches!(b.list_parts(bucket, key, upload).await, Err(Error::NoSuchUpload)));
        let r = b.complete_multipart_upload(bucket, key, upload, &[(1, part.etag.clone())]).await;
        assert!(matches!(r, Err(Error::NoSuchUpload)));
        assert!(matches!(b.abort_multipart_upload(bucket, key, upload).await, Err(Error::NoSuchUpload)));
    }
    // A bad part leaves nothing.
    let checks = PutChecks { content_md5: Some([0; 16]), ..Default::default() };
    let r = b.upload_part(BUCKET, "k", &id, 2, body(b"x"), checks).await;
    assert!(matches!(r, Err(Error::BadDigest)));
    assert_eq!(b.list_parts(BUCKET, "k", &id).await.unwrap().len(), 1);
    assert!(tmp_is_empty(&root(&dir)));

    b.abort_multipart_upload(BUCKET, "k", &id).await.unwrap();
    assert!(matches!(b.list_parts(BUCKET, "k", &id).await, Err(Error::NoSuchUpload)));
    let r = b.upload_part(BUCKET, "k", &id, 1, body(b"x"), PutChecks::default()).await;
    assert!(matches!(r, Err(Error::NoSuchUpload)));
    assert!(matches!(b.abort_multipart_upload(BUCKET, "k", &id).await, Err(Error::NoSuchUpload)));
    assert_eq!(std::fs::read_dir(root(&dir).join(".uploads")).unwrap().count(), 0);
    assert!(tmp_is_empty(&root(&dir)));
}

#[tokio::test]
async fn list_multipart_uploads() {
    let (_dir, b) = setup().await;
    b.create_bucket("other").await.unwrap();
    let mut ids = Vec::new();
    for key in ["logs/b", "logs/a", "data/x", "logs/a"] {
        ids.push((key, b.create_multipart_upload(BUCKET, key, ObjectMeta::default()).await.unwrap()));
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    b.create_multipart_upload("other", "logs/z", ObjectMeta::default()).await.unwrap();
    let all = b.list_multipart_uploads(BUCKET, "").await.unwrap();
    let got: Vec<(&str, &str)> = all.iter().map(|u| (u.key.as_str(), u.upload_id.as_str())).collect();
    let want = vec![("data/x", ids[2].1.as_str()), ("logs/a", &ids[1].1), ("logs/a", &ids[3].1), ("logs/b", &ids[0].1)];
    assert_eq!(got, want);
    assert!(all[1].initiated <= all[2].initiated);
    let logs = b.list_multipart_uploads(BUCKET, "logs/").await.unwrap();
    assert_eq!(logs.len(), 3);
    assert!(b.list_multipart_uploads(BUCKET, "nothing").await.unwrap().is_empty());
    assert_eq!(b.list_multipart_uploads("other", "").await.unwrap().len(), 1);
    assert!(matches!(b.list_multipart_uploads("missing", "").await, Err(Error::NoSuchBucket)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_streamed_object() {
    const CHUNK: usize = 1 << 20;
    const CHUNKS: u64 = 64;
    let (_dir, b) = setup().await;
    // The expected MD5, computed chunk by chunk: the object never exists in memory.
    let mut expected = Md5::new();
    for i in 0..CHUNKS {
        expected.update(pattern(i, CHUNK));
    }
    let expected: [u8; 16] = expected.finalize().into();
    let generated: ByteStream =
        Box::pin(stream::iter(0..CHUNKS).map(|i| Ok::<_, std::io::Error>(Bytes::from(pattern(i, CHUNK)))));
    let checks = PutChecks { content_md5: Some(expected), expected_size: Some(CHUNKS * CHUNK as u64), max_size: 0 };
    let info = b.put_object(BUCKET, "big", ObjectMeta::default(), generated, checks).await.unwrap();
    assert_eq!(info.etag, hex::encode(expected));
    assert_eq!(info.size, CHUNKS * CHUNK as u64);

    let (_, range, mut s) = b.get_object(BUCKET, "big", None).await.unwrap();
    assert_eq!(range, (0, CHUNKS * CHUNK as u64));
    let mut got = Md5::new();
    let (mut total, mut largest) = (0u64, 0usize);
    while let Some(chunk) = s.next().await {
        let chunk = chunk.unwrap();
        largest = largest.max(chunk.len());
        total += chunk.len() as u64;
        got.update(&chunk);
    }
    assert_eq!(total, info.size);
    assert_eq!(<[u8; 16]>::from(got.finalize()), expected);
    assert!(largest <= 4 * CHUNK, "the GET streams in bounded chunks, not {largest} bytes at once");

    // A range across chunk boundaries.
    let first = 3 * CHUNK as u64 - 10;
    let range = ByteRange::FromTo { first, last: Some(first + 19) };
    let (_, got_range, s) = b.get_object(BUCKET, "big", Some(range)).await.unwrap();
    assert_eq!(got_range, (first, first + 20));
    let want = [&pattern(2, CHUNK)[CHUNK - 10..], &pattern(3, CHUNK)[..10]].concat();
    assert_eq!(collect(s).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_see_old_or_new_never_a_part() {
    let (_dir, b) = setup().await;
    let a = vec![b'a'; 300_000];
    let z = vec![b'z'; 200_000];
    put(&b, "flip", &a).await;
    let writer = {
        let (b, a, z) = (b.clone(), a.clone(), z.clone());
        tokio::spawn(async move {
            for i in 0..30 {
                put(&b, "flip", if i % 2 == 0 { &z } else { &a }).await;
            }
        })
    };
    while !writer.is_finished() {
        let got = get(&b, "flip").await;
        assert!(got == a || got == z, "a reader saw {} mixed bytes", got.len());
    }
    writer.await.unwrap();
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

/// A tiny deterministic generator (xorshift64), so every failure reproduces from its seed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

/// `s` cut at a random character boundary (anywhere: inside a segment, inside what would
/// be a percent-encoded byte run, after a `/`).
fn random_cut(rng: &mut XorShift, s: &str) -> String {
    let mut end = rng.below(s.len() + 1);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

/// Random keys (unicode, empty segments, `.`, `..`, `%`, bytes sorting before `/`, hashed
/// segments longer than 200 encoded bytes, trailing `/`) written through the `Backend`, then
/// random queries paged until not truncated, each page compared with the naive reference.
#[tokio::test]
async fn randomized_listing_matches_a_naive_model() {
    let segments: Vec<String> = [
        "a", "b", "ab", "abab", "", ".", "..", "...", "%", "%41", "%e", "!", "#", "-", "a-b", "a!b", "a#", "x.y", "A",
        "é", "日本", "🎉", "~", " ", "+", "z",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "L".repeat(201),                 // just over the limit: hashed
        format!("{}!", "L".repeat(201)), // shares a long raw prefix with the one above
        "é".repeat(40),                  // 80 bytes raw, 240 encoded: hashed
        "%".repeat(70),                  // 210 encoded: hashed
        "ab".repeat(101),                // hashed, and full of the delimiter "ab"
        "c".repeat(200),                 // exactly the limit: kept as is
    ])
    .collect();
    let delimiters: [Option<&str>; 4] = [None, Some("/"), Some("-"), Some("ab")];
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let started = std::time::Instant::now();
    let mut pages = 0usize;
    for round in 0..3 {
        let (_dir, b) = setup().await;
        let mut keys: Vec<String> = Vec::new();
        while keys.len() < 70 {
            let depth = 1 + rng.below(4);
            let mut key = (0..depth).map(|_| rng.pick(&segments)).collect::<Vec<_>>().join("/");
            if rng.below(6) == 0 {
                key.push('/');
            }
            if key.is_empty() || key.len() > 1024 {
                continue;
            }
            put(&b, &key, key.as_bytes()).await;
            keys.push(key);
        }
        for _ in 0..120 {
            let prefix = match rng.below(4) {
                0 => String::new(),
                1 => rng.pick(&segments).chars().take(1 + rng.below(3)).collect(),
                _ => {
                    let k = rng.pick(&keys);
                    random_cut(&mut rng, &k)
                }
            };
            let delimiter = rng.pick(&delimiters).map(str::to_owned);
            let start_after = match rng.below(4) {
                0 => None,
                1 => Some(rng.pick(&keys)),
                2 => {
                    let k = rng.pick(&keys);
                    Some(random_cut(&mut rng, &k))
                }
                _ => Some(format!("{prefix}{}{}", rng.pick(&segments), delimiter.clone().unwrap_or_default())),
            };
            let max_keys = 1 + rng.below(5);
            let mut q = ListQuery { prefix, delimiter, start_after, max_keys };
            let first = q.clone();
            let (want_all, _) = reference(&keys, &ListQuery { max_keys: usize::MAX, ..first.clone() });
            let mut seen: Vec<String> = Vec::new();
            loop {
                let page = b.list_objects(BUCKET, &q).await.unwrap();
                pages += 1;
                let (want, truncated) = reference(&keys, &q);
                let got = names(&page.entries);
                assert_eq!(got, want, "round {round}, page of {q:?}");
                assert_eq!(page.is_truncated, truncated, "round {round}, is_truncated of {q:?}");
                for e in &page.entries {
                    if let ListEntry::Object(o) = e {
                        assert_eq!(o.etag, md5_hex(o.key.as_bytes()), "{q:?}");
                        assert_eq!(o.size, o.key.len() as u64, "{q:?}");
                    }
                }
                seen.extend(got.iter().cloned());
                if !page.is_truncated {
                    break;
                }
                assert!(seen.len() <= want_all.len(), "paging {first:?} overran the model");
                q.start_after = Some(got.last().expect("a truncated page is not empty")[2..].to_owned());
            }
            assert_eq!(seen, want_all, "paging {first:?}");
        }
    }
    eprintln!("{pages} pages compared in {:?}", started.elapsed());
}

/// A prefix whose directory path would exceed the filesystem's limit cannot name any stored
/// key: the listing is empty, not an I/O error.
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
