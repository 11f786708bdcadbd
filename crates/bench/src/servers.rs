//! Starting and stopping the servers under test, each on a free loopback port in its own
//! temporary directory: coffer (the release binary), nginx (Debian's, with its own
//! configuration), s3s-fs and Garage. Also the peak RSS of a process (`VmHWM`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bytes::Bytes;
use http::Method;

use crate::load::{Conn, Target};
use crate::sigv4::Credentials;

pub const REGION: &str = "us-east-1";
pub const ADMIN_KEY: &str = "bench-admin";
pub const ADMIN_SECRET: &str = "bench-admin-secret-0123456789";

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A field of `/proc/<pid>/status` in bytes (`VmHWM`, `VmRSS`).
pub fn proc_status_bytes(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: u64 = line[field.len()..].trim_start_matches(':').trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

/// The children of `pid` (nginx's workers).
fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return vec![] };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/status")).ok().is_some_and(|s| {
                s.lines().any(|l| l.strip_prefix("PPid:").is_some_and(|v| v.trim() == pid.to_string()))
            })
        })
        .collect()
}

/// A running server process, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Server {
    pub name: String,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    child: Option<Child>,
    /// Count the children's memory too (nginx: master and workers).
    with_children: bool,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The peak resident set so far (the process's, plus its children's for nginx).
    pub fn peak_rss(&self) -> Option<u64> {
        let pid = self.pid();
        let mut total = proc_status_bytes(pid, "VmHWM")?;
        if self.with_children {
            total += children(pid).into_iter().filter_map(|c| proc_status_bytes(c, "VmHWM")).sum::<u64>();
        }
        Some(total)
    }

    /// SIGTERM and wait (up to 30 s, then SIGKILL).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn spawn(name: &str, cmd: &mut Command, log: &Path, addr: SocketAddr, dir: &Path) -> anyhow::Result<Server> {
    let out = std::fs::File::create(log)?;
    let child = cmd
        .stdin(Stdio::null())
        .stdout(out.try_clone()?)
        .stderr(out)
        .spawn()
        .with_context(|| format!("starting {name} ({:?})", cmd.get_program()))?;
    Ok(Server { name: name.to_owned(), addr, dir: dir.to_owned(), child: Some(child), with_children: false })
}

/// Wait until `path` answers with a status below 500 (or `want` exactly, when given).
async fn wait_http(server: &mut Server, path: &str, log: &Path) -> anyhow::Result<()> {
    let target = Target { name: server.name.clone(), addr: server.addr, creds: None, bucket: String::new() };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(c) = server.child.as_mut()
            && let Ok(Some(status)) = c.try_wait()
        {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            bail!("{} exited ({status}) before it was ready:\n{}", server.name, tail(&log, 30));
        }
        if let Ok(mut c) = Conn::connect(&target).await
            && let Ok(r) = c.send(Method::GET, path, "", Bytes::new(), None).await
            && r.status.as_u16() < 500
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{} did not answer on {} within 60 s", server.name, server.addr);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

/// How coffer is started.
#[derive(Debug, Clone)]
pub struct CofferSetup {
    pub bin: PathBuf,
    /// `None`: SQLite in the data directory.
    pub database_url: Option<String>,
    /// Base64, shared with anything that opens the store directly.
    pub server_key: String,
}

pub fn admin_creds() -> Credentials {
    Credentials { access_key: ADMIN_KEY.into(), secret_key: ADMIN_SECRET.into(), region: REGION.into() }
}

/// Start `coffer serve` with its data in `dir` and the platform admin's key known.
/// Logs at coffer's default level go to `dir/coffer.log`, as a deployment ships them.
pub async fn start_coffer(setup: &CofferSetup, dir: &Path) -> anyhow::Result<Server> {
    std::fs::create_dir_all(dir)?;
    let port = free_port()?;
    let log = dir.join("coffer.log");
    let mut cmd = Command::new(&setup.bin);
    cmd.arg("serve").arg("--listen").arg(loopback(port).to_string()).arg("--data-dir").arg(dir.join("data"));
    cmd.env("COFFER_ADMIN_ACCESS_KEY", ADMIN_KEY)
        .env("COFFER_ADMIN_SECRET_KEY", ADMIN_SECRET)
        .env("COFFER_SERVER_KEY", &setup.server_key)
        .env_remove("COFFER_CONFIG");
    match &setup.database_url {
        Some(url) => cmd.env("COFFER_DATABASE_URL", url),
        None => cmd.env_remove("COFFER_DATABASE_URL"),
    };
    let mut s = spawn("coffer", &mut cmd, &log, loopback(port), dir)?;
    wait_http(&mut s, "/readyz", &log).await?;
    Ok(s)
}

/// The data directory `start_coffer` gives coffer below `dir`.
pub fn coffer_data_dir(dir: &Path) -> PathBuf {
    dir.join("data")
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// Start nginx serving `dir/www` (the bucket is a directory there) with WebDAV PUT, keep-alive,
/// sendfile, two workers, an access log.
pub async fn start_nginx(bin: &Path, dir: &Path) -> anyhow::Result<Server> {
    let www = dir.join("www");
    std::fs::create_dir_all(&www)?;
    let port = free_port()?;
    let d = dir.display();
    let user = if running_as_root() { "user root;\n" } else { "" };
    let conf = format!(
        "{user}worker_processes 2;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 4096; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         sendfile on;\n  tcp_nopush on;\n  keepalive_requests 100000000;\n  keepalive_timeout 300s;\n\
         default_type application/octet-stream;\n\
         server {{\n    listen 127.0.0.1:{port};\n    root {www};\n    client_max_body_size 0;\n\
         location / {{ dav_methods PUT DELETE; create_full_put_path on; }}\n  }}\n}}\n",
        www = www.display()
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let log = dir.join("nginx.out");
    let mut cmd = Command::new(bin);
    cmd.arg("-p").arg(dir).arg("-c").arg(&conf_path);
    let mut s = spawn("nginx", &mut cmd, &log, loopback(port), dir)?;
    s.with_children = true;
    wait_http(&mut s, "/", &log).await?;
    Ok(s)
}

/// Start s3s-fs on `dir/root`, one key.
pub async fn start_s3s_fs(bin: &Path, dir: &Path) -> anyhow::Result<(Server, Credentials)> {
    let root = dir.join("root");
    std::fs::create_dir_all(&root)?;
    let port = free_port()?;
    let creds =
        Credentials { access_key: "s3sfs-key".into(), secret_key: "s3sfs-secret-123456".into(), region: REGION.into() };
    let log = dir.join("s3s-fs.log");
    let mut cmd = Command::new(bin);
    cmd.args(["--host", "127.0.0.1", "--port", &port.to_string(), "--access-key", &creds.access_key])
        .args(["--secret-key", &creds.secret_key])
        .arg(&root)
        .env("RUST_LOG", "warn");
    let mut s = spawn("s3s-fs", &mut cmd, &log, loopback(port), dir)?;
    wait_http(&mut s, "/", &log).await?;
    Ok((s, creds))
}

fn run_cli(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Start a single-node Garage (LMDB metadata; data and metadata fsynced, as coffer's PUT
/// is), with a layout, a key and `bucket` allowed to it.
pub async fn start_garage(bin: &Path, dir: &Path, bucket: &str) -> anyhow::Result<(Server, Credentials)> {
    std::fs::create_dir_all(dir)?;
    let (s3, rpc, admin) = (free_port()?, free_port()?, free_port()?);
    let d = dir.display();
    let secret: String = (0..32).map(|i| format!("{:02x}", (i * 37 + 11) % 256)).collect();
    let conf = format!(
        "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"lmdb\"\nreplication_factor = 1\n\
         metadata_fsync = true\ndata_fsync = true\n\
         rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
         [s3_api]\ns3_region = \"{REGION}\"\napi_bind_addr = \"127.0.0.1:{s3}\"\nroot_domain = \".s3.garage.localhost\"\n\
         [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n"
    );
    let conf_path = dir.join("garage.toml");
    std::fs::write(&conf_path, conf)?;
    let log = dir.join("garage.log");
    let mut cmd = Command::new(bin);
    cmd.arg("-c").arg(&conf_path).arg("server").env("RUST_LOG", "warn");
    let mut s = spawn("garage", &mut cmd, &log, loopback(s3), dir)?;
    wait_http(&mut s, "/", &log).await?;
    let cli = |args: &[&str]| {
        let mut c = Command::new(bin);
        c.arg("-c").arg(&conf_path).args(args).env("RUST_LOG", "warn");
        run_cli(&mut c)
    };
    let node = cli(&["node", "id", "-q"])?;
    let node = node.trim().split('@').next().unwrap_or("").to_owned();
    if node.is_empty() {
        return Err(anyhow!("garage node id printed nothing"));
    }
    cli(&["layout", "assign", "-z", "dc1", "-c", "100G", &node])?;
    cli(&["layout", "apply", "--version", "1"])?;
    let creds = Credentials {
        access_key: "GK0123456789abcdef01234567".into(),
        secret_key: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into(),
        region: REGION.into(),
    };
    // The layout takes a moment to be used; the first commands may be refused.
    let steps: [Vec<&str>; 3] = [
        vec!["key", "import", "--yes", "-n", "bench", &creds.access_key, &creds.secret_key],
        vec!["bucket", "create", bucket],
        vec!["bucket", "allow", "--read", "--write", "--owner", bucket, "--key", "bench"],
    ];
    for step in &steps {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match cli(step) {
                Ok(_) => break,
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
    Ok((s, creds))
}

/// Create `bucket` with a signed PUT (an existing bucket of ours is fine).
pub async fn create_bucket(target: &Target) -> anyhow::Result<()> {
    let mut c = Conn::connect(target).await?;
    let r = c.send(Method::PUT, &format!("/{}", target.bucket), "", Bytes::new(), None).await?;
    if !r.status.is_success() && !String::from_utf8_lossy(&r.body).contains("BucketAlreadyOwnedByYou") {
        bail!(
            "creating bucket {} on {}: {} {}",
            target.bucket,
            target.name,
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    Ok(())
}
