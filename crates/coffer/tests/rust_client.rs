//! End-to-end with a Rust S3 client: the real `coffer` binary on a free port, driven with
//! `rusty-s3` (SigV4 presigned requests) over `ureq`, against SQLite and PostgreSQL.
//! Users and keys are made with `coffer admin --json`, as an operator would.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rusty_s3::actions::{CreateMultipartUpload, ListObjectsV2};
use rusty_s3::{Bucket, Credentials, S3Action, UrlStyle};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_coffer");
const EXPIRES: Duration = Duration::from_secs(300);

/// A running server on its own data directory and database.
struct Server {
    child: Child,
    port: u16,
    data: tempfile::TempDir,
    database_url: String,
    pg_db: Option<String>,
}

fn pg_admin_url() -> String {
    std::env::var("COFFER_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

fn psql(sql: &str) -> Result<(), String> {
    let out = Command::new("psql")
        .arg(pg_admin_url())
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).into_owned()) }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Server {
    /// `None` when PostgreSQL is wanted but absent outside CI (under CI=true that panics).
    fn start(postgres: bool) -> Option<Self> {
        let data = tempfile::tempdir().unwrap();
        let (database_url, pg_db) = if postgres {
            let db = format!("coffer_rs_{}", std::process::id()) + &format!("_{}", free_port());
            if let Err(e) = psql(&format!("CREATE DATABASE {db}")) {
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("PostgreSQL is required under CI=true: {e}");
                }
                eprintln!("skipping the PostgreSQL run: {e}");
                return None;
            }
            let base = pg_admin_url();
            let root = base.rsplit_once('/').map(|(r, _)| r.to_owned()).unwrap_or(base);
            (format!("{root}/{db}"), Some(db))
        } else {
            (format!("sqlite://{}", data.path().join("coffer.db").display()), None)
        };
        let port = free_port();
        let child = Command::new(BIN)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .arg("--data-dir")
            .arg(data.path())
            .args(["--database-url", &database_url])
            .env("COFFER_ADMIN_ACCESS_KEY", "rustadmin")
            .env("COFFER_ADMIN_SECRET_KEY", "rustadmin-secret")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start coffer");
        let server = Server { child, port, data, database_url, pg_db };
        server.wait_ready();
        Some(server)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(r) = agent().get(&format!("http://127.0.0.1:{}/readyz", self.port)).call()
                && r.status() == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("coffer did not become ready");
    }

    fn admin(&self, args: &[&str]) -> Value {
        let out = Command::new(BIN)
            .arg("admin")
            .arg("--data-dir")
            .arg(self.data.path())
            .args(["--database-url", &self.database_url, "--json"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "coffer admin {args:?}: {:?} {} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn endpoint(&self) -> url::Url {
        format!("http://127.0.0.1:{}", self.port).parse().unwrap()
    }

    fn bucket(&self, name: &str) -> Bucket {
        Bucket::new(self.endpoint(), UrlStyle::Path, name.to_owned(), "us-east-1").unwrap()
    }

    fn user(&self, name: &str, extra: &[&str]) -> Credentials {
        self.admin(&["user", "create", name]);
        self.key(name, extra)
    }

    fn key(&self, name: &str, extra: &[&str]) -> Credentials {
        let mut args = vec!["key", "create", "--user", name];
        args.extend_from_slice(extra);
        let k = self.admin(&args);
        Credentials::new(k["access_key_id"].as_str().unwrap(), k["secret_access_key"].as_str().unwrap())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(db) = &self.pg_db {
            let _ = psql(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"));
        }
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// (status, body) of a request to a presigned URL.
fn send(method: &str, url: url::Url, body: Option<&[u8]>) -> (u16, Vec<u8>) {
    let a = agent();
    let resp = match (method, body) {
        ("GET", _) => a.get(url.as_str()).call(),
        ("HEAD", _) => a.head(url.as_str()).call(),
        ("DELETE", _) => a.delete(url.as_str()).call(),
        ("PUT", b) => a.put(url.as_str()).send(b.unwrap_or(&[])),
        ("POST", b) => a.post(url.as_str()).send(b.unwrap_or(&[])),
        _ => unreachable!(),
    };
    let mut resp = resp.expect("HTTP exchange");
    let status = resp.status().as_u16();
    let body = resp.body_mut().with_config().limit(64 << 20).read_to_vec().unwrap_or_default();
    (status, body)
}

fn error_code(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    s.split("<Code>").nth(1).and_then(|r| r.split("</Code>").next()).unwrap_or("").to_owned()
}

fn scenario(server: &Server) {
    let alice = server.user("alice", &[]);
    let bob = server.user("bob", &[]);
    let bucket = server.bucket("rust-client");

    // CreateBucket, HeadBucket
    let (st, body) = send("PUT", bucket.create_bucket(&alice).sign(EXPIRES), None);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(send("HEAD", bucket.head_bucket(Some(&alice)).sign(EXPIRES), None).0, 200);

    // PutObject, GetObject, HeadObject: bytes and ETag round-trip
    let data = b"bytes from a Rust client".to_vec();
    let (st, _) = send("PUT", bucket.put_object(Some(&alice), "dir/hello.txt").sign(EXPIRES), Some(&data));
    assert_eq!(st, 200);
    let (st, got) = send("GET", bucket.get_object(Some(&alice), "dir/hello.txt").sign(EXPIRES), None);
    assert_eq!((st, got), (200, data.clone()));
    let (st, _) = send("HEAD", bucket.head_object(Some(&alice), "dir/hello.txt").sign(EXPIRES), None);
    assert_eq!(st, 200);

    // ListObjectsV2 with a delimiter
    send("PUT", bucket.put_object(Some(&alice), "top.txt").sign(EXPIRES), Some(b"t"));
    let mut list = bucket.list_objects_v2(Some(&alice));
    list.with_delimiter("/");
    let (st, xml) = send("GET", list.sign(EXPIRES), None);
    assert_eq!(st, 200);
    let parsed = ListObjectsV2::parse_response(std::str::from_utf8(&xml).unwrap()).unwrap();
    let keys: Vec<_> = parsed.contents.iter().map(|c| c.key.as_str()).collect();
    let prefixes: Vec<_> = parsed.common_prefixes.iter().map(|p| p.prefix.as_str()).collect();
    assert_eq!(keys, ["top.txt"]);
    assert_eq!(prefixes, ["dir/"]);

    // Multipart: 5 MiB + a short last part; ETag "<md5 of md5s>-2"
    let create = bucket.create_multipart_upload(Some(&alice), "multi.bin");
    let (st, xml) = send("POST", create.sign(EXPIRES), None);
    assert_eq!(st, 200);
    let upload = CreateMultipartUpload::parse_response(std::str::from_utf8(&xml).unwrap()).unwrap();
    let id = upload.upload_id().to_owned();
    let part1 = vec![b'a'; 5 * 1024 * 1024];
    let part2 = b"tail".to_vec();
    let mut etags = Vec::new();
    for (n, p) in [(1u16, &part1), (2, &part2)] {
        let url = bucket.upload_part(Some(&alice), "multi.bin", n, &id).sign(EXPIRES);
        let resp = agent().put(url.as_str()).send(&p[..]).unwrap();
        assert_eq!(resp.status(), 200);
        etags.push(resp.headers().get("etag").unwrap().to_str().unwrap().to_owned());
    }
    let complete = bucket.complete_multipart_upload(Some(&alice), "multi.bin", &id, etags.iter().map(String::as_str));
    let url = complete.sign(EXPIRES);
    let (st, body) = send("POST", url, Some(complete.body().as_bytes()));
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("-2&quot;") || String::from_utf8_lossy(&body).contains("-2\""));
    let (_, got) = send("GET", bucket.get_object(Some(&alice), "multi.bin").sign(EXPIRES), None);
    assert_eq!(got.len(), part1.len() + part2.len());
    assert!(got.ends_with(b"tail"));

    // Authorization: bob sees AccessDenied until granted read; read does not allow writes.
    let (st, body) = send("GET", bucket.get_object(Some(&bob), "dir/hello.txt").sign(EXPIRES), None);
    assert_eq!((st, error_code(&body).as_str()), (403, "AccessDenied"));
    let (st, body) = send("GET", bucket.get_object(Some(&bob), "missing").sign(EXPIRES), None);
    assert_eq!((st, error_code(&body).as_str()), (403, "AccessDenied"), "no existence leak");
    server.admin(&["grant", "add", "--bucket", "rust-client", "--user", "bob", "--role", "read"]);
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let (st, _) = send("GET", bucket.get_object(Some(&bob), "dir/hello.txt").sign(EXPIRES), None);
        if st == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "a new grant must apply within 1 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let (st, body) = send("PUT", bucket.put_object(Some(&bob), "bob.txt").sign(EXPIRES), Some(b"x"));
    assert_eq!((st, error_code(&body).as_str()), (403, "AccessDenied"));

    // A read-only key of the owner cannot write.
    let alice_ro = server.key("alice", &["--read-only"]);
    let (st, body) = send("PUT", bucket.put_object(Some(&alice_ro), "ro.txt").sign(EXPIRES), Some(b"x"));
    assert_eq!((st, error_code(&body).as_str()), (403, "AccessDenied"));

    // DeleteObjects, then DeleteObject, then the empty bucket goes.
    let objs = [rusty_s3::actions::ObjectIdentifier::new("top.txt".into())];
    let del = bucket.delete_objects(Some(&alice), objs.iter());
    let url = del.sign(EXPIRES);
    let (body, md5) = del.body_with_md5();
    let resp = agent().post(url.as_str()).header("content-md5", &md5).send(body.as_bytes()).unwrap();
    assert_eq!(resp.status(), 200);
    for k in ["dir/hello.txt", "multi.bin"] {
        assert_eq!(send("DELETE", bucket.delete_object(Some(&alice), k).sign(EXPIRES), None).0, 204);
    }
    assert_eq!(send("DELETE", bucket.delete_bucket(&alice).sign(EXPIRES), None).0, 204);
    assert_eq!(send("HEAD", bucket.head_bucket(Some(&alice)).sign(EXPIRES), None).0, 404);
}

#[test]
fn rust_client_on_sqlite() {
    let server = Server::start(false).unwrap();
    scenario(&server);
}

#[test]
fn rust_client_on_postgres() {
    if let Some(server) = Server::start(true) {
        scenario(&server);
    }
}
