//! Large objects: one PUT and one GET of the same file at a time, by curl (presigned URLs for
//! the S3 servers, so the client hashes nothing), against the limits of this machine: the
//! disk (the same bytes copied to a new file on the same disk, then fsynced — what a durable
//! PUT cannot beat) and HTTP over loopback (nginx sending the file with sendfile; nginx's
//! WebDAV PUT writes a file without fsync).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use md5::Digest;

use crate::load::Target;
use crate::servers::{self, CofferSetup, Server};
use crate::sigv4::{self, Signer};
use crate::table::{Table, mib, ratio};
use crate::{Opts, say};

/// Write `size` bytes that no layer can deduplicate or compress; returns their MD5 (hex).
pub fn make_source(path: &Path, size: u64) -> anyhow::Result<String> {
    let mut f = std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(path)?);
    let mut md5 = md5::Md5::new();
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut block = vec![0u8; 1 << 20];
    let mut left = size;
    while left > 0 {
        for chunk in block.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            chunk.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(block.len() as u64) as usize;
        md5.update(&block[..n]);
        f.write_all(&block[..n])?;
        left -= n as u64;
    }
    f.flush()?;
    f.get_ref().sync_all()?;
    Ok(hex::encode(md5.finalize()))
}

/// Copy `src` to a new file `dst` through a 1 MiB buffer, then fsync it; the elapsed time.
fn copy_fsync(src: &Path, dst: &Path) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let mut r = std::fs::File::open(src)?;
    let mut w = std::fs::File::create(dst)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n])?;
    }
    w.sync_all()?;
    let d = start.elapsed();
    drop(w);
    std::fs::remove_file(dst)?;
    Ok(d)
}

/// `curl` a URL: PUT the file `upload`, or GET to /dev/null. Checks the status; returns the
/// elapsed time (as curl measured it) and the response headers.
pub fn curl(url: &str, upload: Option<&Path>) -> anyhow::Result<(Duration, String)> {
    let mut c = Command::new("curl");
    c.args(["-sS", "-o", "/dev/null", "-D", "-", "-w", "\n%{http_code} %{time_total}"]);
    c.args(["-H", "Expect:"]); // no 100-continue round trip, as SDKs over HTTP/1.1 mostly do
    if let Some(f) = upload {
        c.arg("-T").arg(f);
    }
    c.arg(url);
    let out = c.output().context("running curl")?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let last = text.lines().last().unwrap_or("");
    let mut it = last.split_whitespace();
    let code: u16 = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    let secs: f64 = it.next().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN);
    if !(200..300).contains(&code) {
        bail!(
            "curl {} {url}: status {code}: {}",
            if upload.is_some() { "PUT" } else { "GET" },
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((Duration::from_secs_f64(secs), text))
}

/// The URLs of one object on a server: (PUT, GET).
pub fn urls(target: &Target, key: &str) -> (String, String) {
    let path = format!("/{}/{}", target.bucket, key);
    match &target.creds {
        Some(c) => {
            let mut s = Signer::new(c.clone());
            let date = sigv4::amz_date(sigv4::now_unix());
            (s.presign("PUT", &target.host(), &path, 3600, &date), s.presign("GET", &target.host(), &path, 3600, &date))
        }
        None => {
            let url = format!("http://{}{path}", target.host());
            (url.clone(), url)
        }
    }
}

pub fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

/// Median, min and max.
pub fn stats(v: &[f64]) -> (f64, f64, f64) {
    let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if s.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    s.sort_by(f64::total_cmp);
    let mid = if s.len() % 2 == 1 { s[s.len() / 2] } else { (s[s.len() / 2 - 1] + s[s.len() / 2]) / 2.0 };
    (mid, s[0], s[s.len() - 1])
}

pub fn cell(v: &[f64]) -> String {
    if v.is_empty() {
        return "–".into();
    }
    let (m, lo, hi) = stats(v);
    if v.len() == 1 { format!("{m:.0}") } else { format!("{m:.0} ({lo:.0}–{hi:.0})") }
}

/// A started server with what the large scenario needs of it.
pub struct Peer {
    pub server: Server,
    pub target: Target,
}

/// Start one server of the comparison (`coffer`, `nginx`, `garage`, `s3s-fs`) in `root/<name>`
/// with `bucket` made; `Ok(Err(why))` when a peer cannot be had.
pub async fn start_one(opts: &Opts, name: &str, root: &Path, bucket: &str) -> anyhow::Result<Result<Peer, String>> {
    let dir = root.join(name);
    if name == "coffer" {
        let setup = CofferSetup {
            bin: opts.coffer_bin(),
            database_url: None,
            server_key: coffer_identity::ServerKey::generate().to_base64(),
        };
        let s = servers::start_coffer(&setup, &dir).await?;
        let target =
            Target { name: name.into(), addr: s.addr, creds: Some(servers::admin_creds()), bucket: bucket.into() };
        servers::create_bucket(&target).await?;
        return Ok(Ok(Peer { server: s, target }));
    }
    let bin = match opts.peer_bin(name) {
        Ok(b) => b,
        Err(why) => return Ok(Err(why)),
    };
    let started = match name {
        "nginx" => servers::start_nginx(&bin, &dir).await.map(|s| (s, None)),
        "garage" => servers::start_garage(&bin, &dir, bucket).await.map(|(s, c)| (s, Some(c))),
        _ => servers::start_s3s_fs(&bin, &dir).await.map(|(s, c)| (s, Some(c))),
    };
    let (server, creds) = match started {
        Ok(x) => x,
        Err(e) => return Ok(Err(format!("could not start: {e:#}"))),
    };
    let target = Target { name: name.into(), addr: server.addr, creds, bucket: bucket.into() };
    match name {
        "nginx" => std::fs::create_dir_all(server.dir.join("www").join(bucket))?,
        "s3s-fs" => servers::create_bucket(&target).await?,
        _ => {}
    }
    Ok(Ok(Peer { server, target }))
}

/// The servers of the comparisons, in table order.
pub const SERVERS: [&str; 4] = ["coffer", "nginx", "garage", "s3s-fs"];

/// Free bytes on the file system holding `dir` (`df`).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    let out = Command::new("df").args(["-k", "--output=avail"]).arg(dir).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().nth(1)?.trim().parse::<u64>().ok().map(|k| k * 1024)
}

/// The type of the file system holding `dir` (`df`): `ext4`, `tmpfs`, …
pub fn fs_type(dir: &Path) -> Option<String> {
    let out = Command::new("df").args(["--output=fstype"]).arg(dir).output().ok()?;
    String::from_utf8_lossy(&out.stdout).lines().nth(1).map(|s| s.trim().to_owned())
}

/// Delete an object (signed for S3 servers, WebDAV for nginx): each server holds one copy at
/// most, and a PUT never has the old copy beside its new one.
async fn delete(target: &Target, key: &str) -> anyhow::Result<()> {
    let mut c = crate::load::Conn::connect(target).await?;
    let path = format!("/{}/{}", target.bucket, key);
    c.send(http::Method::DELETE, &path, "", bytes::Bytes::new(), None).await?;
    Ok(())
}

pub async fn run(opts: &Opts) -> anyhow::Result<Vec<Table>> {
    let work = opts.tempdir("large")?;
    let size = opts.large_mib * 1024 * 1024;
    if free_bytes(work.path()).is_some_and(|f| f < 3 * size + (512 << 20)) {
        bail!(
            "{} needs 3 × {} MiB free (the source, a copy, one stored object)",
            work.path().display(),
            opts.large_mib
        );
    }
    let src: PathBuf = work.path().join("source.bin");
    say!("large: writing {} MiB of data", opts.large_mib);
    let md5 = make_source(&src, size)?;
    let mut disk = Vec::new();
    for _ in 0..opts.runs {
        disk.push(mbps(size, copy_fsync(&src, &work.path().join("copy.bin"))?));
    }
    say!("large: disk copy + fsync {:.0} MB/s (median)", stats(&disk).0);
    // One server at a time, each with its own directory, removed after it.
    let mut rows = Vec::new();
    let mut missing = Vec::new();
    for name in SERVERS {
        let dir = work.path().join(format!("srv-{name}"));
        let peer = match start_one(opts, name, &dir, "bench").await? {
            Ok(p) => p,
            Err(why) => {
                missing.push((name, why));
                continue;
            }
        };
        let (mut put, mut get) = (Vec::new(), Vec::new());
        for run in 0..opts.runs {
            delete(&peer.target, "big").await?;
            let (put_url, get_url) = urls(&peer.target, "big");
            let (d, _) = curl(&put_url, Some(&src)).with_context(|| name.to_owned())?;
            put.push(mbps(size, d));
            let (d, headers) = curl(&get_url, None).with_context(|| name.to_owned())?;
            get.push(mbps(size, d));
            if name == "coffer" && run == 0 {
                let etag = headers.lines().find(|l| l.to_ascii_lowercase().starts_with("etag:")).unwrap_or("");
                if !etag.contains(&md5) {
                    bail!("coffer's ETag ({etag}) is not the MD5 of the bytes ({md5})");
                }
            }
            say!("large: {name} run {}: PUT {:.0} MB/s, GET {:.0} MB/s", run + 1, put[run], get[run]);
        }
        rows.push((name, put, get, peer.server.peak_rss()));
        drop(peer);
        let _ = std::fs::remove_dir_all(&dir);
    }
    let disk_m = stats(&disk).0;
    let nginx_get = rows.iter().find(|r| r.0 == "nginx").map(|r| stats(&r.2).0);
    let mut t = Table::new(
        format!(
            "Large objects: {} MiB, one transfer at a time, {} runs (MB/s: median (min–max))",
            opts.large_mib, opts.runs
        ),
        &["", "PUT MB/s", "PUT ÷ disk", "GET MB/s", "GET ÷ nginx", "server peak RSS"],
    );
    t.row(vec!["disk: copy + fsync, same disk (the PUT limit)".into(), cell(&disk), "1.00×".into()]);
    for (name, put, get, rss) in rows {
        let what = match name {
            "nginx" => "nginx: sendfile GET (the HTTP limit); WebDAV PUT, no fsync".to_owned(),
            "garage" => "Garage (data and metadata fsync on)".to_owned(),
            n => n.to_owned(),
        };
        t.row(vec![
            what,
            cell(&put),
            ratio(stats(&put).0, disk_m),
            cell(&get),
            nginx_get.map_or("–".into(), |n| ratio(stats(&get).0, n)),
            rss.map_or("–".into(), mib),
        ]);
    }
    for (name, why) in missing {
        t.row(vec![format!("{name}: not measured ({why})")]);
    }
    if let Some(fs) = fs_type(work.path()) {
        t.note(format!(
            "Data and copies on {fs}{}.",
            if fs == "tmpfs" {
                " (memory: fsync costs nothing there, so the copy is the memory-copy limit, not the disk's)"
            } else {
                ""
            }
        ));
    }
    t.note("Targets: coffer PUT ≥ 0.80× disk, GET ≥ 0.90× nginx. Clients: curl (presigned URLs for S3 servers, `-o /dev/null`); the source file is in the page cache; one server runs at a time.");
    Ok(vec![t])
}
