//! `coffer-bench`: coffer against the limits of the machine and against real peers, side by
//! side in one run, one Markdown table per scenario. See docs/BENCHMARKS.md.
//!
//! ```text
//! cargo build --release -p coffer -p coffer-bench
//! cargo run --release -p coffer-bench -- all        # or: authz, large, small, list, rss
//! ```
//!
//! It builds nothing: it runs `$CARGO_TARGET_DIR/release/coffer` (or `--coffer BIN`), Debian's
//! `nginx`, and — when given or found — `s3s-fs` and `garage`; a peer that is missing is
//! reported as not measured. Every server runs on a free loopback port in a temporary
//! directory, and is stopped at the end.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

mod authz;
mod hist;
mod large;
mod list;
mod load;
mod rss;
mod servers;
mod sigv4;
mod small;
mod table;

#[derive(Debug, Parser)]
#[command(name = "coffer-bench", about = "coffer against the machine's limits and its peers, one table per scenario")]
pub struct Opts {
    #[command(subcommand)]
    cmd: Cmd,
    /// The coffer binary (default: $CARGO_TARGET_DIR/release/coffer, else target/release/coffer).
    #[arg(long, global = true, value_name = "BIN")]
    coffer: Option<PathBuf>,
    /// nginx (Debian's; GET ceiling, and PUT through its WebDAV module).
    #[arg(long, global = true, value_name = "BIN", default_value = "nginx")]
    nginx: PathBuf,
    /// A Garage binary (`cargo build --release` of deuxfleurs-org/garage); else
    /// $COFFER_BENCH_GARAGE, else not measured.
    #[arg(long, global = true, value_name = "BIN", env = "COFFER_BENCH_GARAGE")]
    garage: Option<PathBuf>,
    /// An s3s-fs binary (`cargo install s3s-fs --features binary`); else $COFFER_BENCH_S3S_FS,
    /// else `s3s-fs` on the PATH, else not measured.
    #[arg(long = "s3s-fs", global = true, value_name = "BIN", env = "COFFER_BENCH_S3S_FS")]
    s3s_fs: Option<PathBuf>,
    /// Where the temporary directories go (default: the system's temporary directory).
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Seconds each small-object run is measured, after the warm-up.
    #[arg(long, global = true, default_value_t = 10.0)]
    duration: f64,
    /// Seconds of warm-up before each measured run.
    #[arg(long, global = true, default_value_t = 2.0)]
    warmup: f64,
    /// Connection counts of the small-object runs.
    #[arg(long, global = true, value_delimiter = ',', default_values_t = [1usize, 16, 64])]
    concurrency: Vec<usize>,
    /// Small-object operations to run.
    #[arg(long, global = true, value_delimiter = ',', default_values_t = ["put".to_owned(), "get".to_owned(), "head".to_owned(), "delete".to_owned()])]
    ops: Vec<String>,
    /// The size of small objects, bytes.
    #[arg(long, global = true, default_value_t = 4096)]
    small_size: usize,
    /// Send nginx the small GETs signed as coffer's are (nginx ignores the signature), so the
    /// client, which shares the machine, does the same work for both; default: plain GETs.
    #[arg(long, global = true)]
    nginx_signed: bool,
    /// The size of the large object, MiB.
    #[arg(long, global = true, default_value_t = 1024)]
    large_mib: u64,
    /// Runs of the large-object transfers (the median is shown).
    #[arg(long, global = true, default_value_t = 3)]
    runs: usize,
    /// Objects in the bucket listed.
    #[arg(long, global = true, default_value_t = 100_000)]
    objects: usize,
    /// Buckets granted to the user whose ListBuckets is timed.
    #[arg(long, global = true, default_value_t = 10_000)]
    grants: usize,
    /// PostgreSQL server (a fresh database is created and dropped per run); `none` to skip.
    #[arg(long, global = true, default_value = "postgres://postgres@127.0.0.1:5432/postgres")]
    pg: String,
    /// Concurrent 1 GiB transfers of the memory scenario.
    #[arg(long, global = true, default_value_t = 16)]
    streams: usize,
    /// The size of each concurrent PUT of the memory scenario, MiB (default: --large-mib, less
    /// when the disk cannot hold them all).
    #[arg(long, global = true)]
    rss_put_mib: Option<u64>,
    /// Servers to measure (coffer is always measured).
    #[arg(long, global = true, value_delimiter = ',', default_values_t = ["nginx".to_owned(), "s3s-fs".to_owned(), "garage".to_owned()])]
    peers: Vec<String>,
}

#[derive(Debug, Subcommand, Clone, Copy, PartialEq, Eq)]
enum Cmd {
    /// Every scenario, in the order below.
    All,
    /// The authorization decision in-process: pure, cached through the gateway, uncached.
    Authz,
    /// 1 GiB PUT and GET: coffer, the disk (copy + fsync), nginx, the peers.
    Large,
    /// 4 KiB PUT, GET, HEAD, DELETE at each concurrency, SigV4-signed.
    Small,
    /// LIST of a 100 000-object bucket and ListBuckets for a user with 10 000 grants, on SQLite
    /// and PostgreSQL.
    List,
    /// coffer's peak RSS while streaming 1 GiB objects 16 at a time.
    Rss,
}

impl Opts {
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration)
    }

    pub fn warmup(&self) -> Duration {
        Duration::from_secs_f64(self.warmup)
    }

    pub fn workspace_root() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    pub fn coffer_bin(&self) -> PathBuf {
        if let Some(b) = &self.coffer {
            return b.clone();
        }
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Self::workspace_root().join("target"));
        target.join("release").join("coffer")
    }

    pub fn wants(&self, peer: &str) -> bool {
        self.peers.iter().any(|p| p == peer)
    }

    /// A peer's binary, or why it is not measured.
    pub fn peer_bin(&self, peer: &str) -> Result<PathBuf, String> {
        if !self.wants(peer) {
            return Err("not asked for (--peers)".into());
        }
        let given = match peer {
            "nginx" => Some(self.nginx.clone()),
            "garage" => self.garage.clone(),
            "s3s-fs" => self.s3s_fs.clone().or_else(|| Some(PathBuf::from("s3s-fs"))),
            _ => None,
        };
        let hint = match peer {
            "garage" => "build deuxfleurs-org/garage and pass --garage BIN",
            "s3s-fs" => "cargo install s3s-fs --features binary, or pass --s3s-fs BIN",
            _ => "install it, or pass its path",
        };
        let Some(bin) = given else { return Err(format!("no binary: {hint}")) };
        find_executable(&bin).ok_or_else(|| format!("{} not found: {hint}", bin.display()))
    }

    pub fn tempdir(&self, what: &str) -> anyhow::Result<tempfile::TempDir> {
        let prefix = format!("coffer-bench-{what}-");
        let mut b = tempfile::Builder::new();
        b.prefix(&prefix);
        Ok(match &self.dir {
            Some(d) => {
                std::fs::create_dir_all(d)?;
                b.tempdir_in(d)?
            }
            None => b.tempdir()?,
        })
    }
}

/// `bin` if it is a path to a file, else its location on the PATH.
fn find_executable(bin: &std::path::Path) -> Option<PathBuf> {
    if bin.components().count() > 1 {
        return bin.is_file().then(|| bin.to_path_buf());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(bin))
        .find(|p| p.is_file())
}

/// What the figures were measured on.
fn preamble(cmd: Cmd, opts: &Opts) -> String {
    let sh = |c: &str, a: &[&str]| {
        std::process::Command::new(c)
            .args(a)
            .current_dir(Opts::workspace_root())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    let commit = sh("git", &["rev-parse", "--short", "HEAD"]);
    let dirty = if sh("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty() {
        ""
    } else {
        " + uncommitted changes"
    };
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map_or(0.0, |k| k as f64 / 1048576.0);
    let args: Vec<String> = std::env::args().skip(1).collect();
    format!(
        "## coffer-bench {cmd:?}\n\n- command: `coffer-bench {}`\n- date: {}\n- commit: {commit}{dirty}\n- machine: {cpu}, {cores} cores, {mem:.0} GiB, kernel {}\n- coffer: {}\n",
        args.join(" "),
        sh("date", &["-u", "+%Y-%m-%d %H:%M UTC"]),
        sh("uname", &["-r"]),
        opts.coffer_bin().display()
    )
}

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let bin = opts.coffer_bin();
    if opts.cmd != Cmd::Authz && !bin.is_file() {
        anyhow::bail!(
            "no coffer binary at {}: run `cargo build --release -p coffer` first (or pass --coffer)",
            bin.display()
        );
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    println!("{}", preamble(opts.cmd, &opts));
    rt.block_on(async {
        let cmds: &[Cmd] = match opts.cmd {
            Cmd::All => &[Cmd::Authz, Cmd::Large, Cmd::Small, Cmd::List, Cmd::Rss],
            _ => std::slice::from_ref(&opts.cmd),
        };
        for c in cmds {
            let tables = match c {
                Cmd::Authz => authz::run(&opts).await,
                Cmd::Large => large::run(&opts).await,
                Cmd::Small => small::run(&opts).await,
                Cmd::List => list::run(&opts).await,
                Cmd::Rss => rss::run(&opts).await,
                Cmd::All => unreachable!(),
            };
            match tables {
                Ok(tables) => {
                    for t in tables {
                        println!("{}", t.render());
                    }
                }
                Err(e) => println!("### {c:?}\n\nfailed: {e:#}\n"),
            }
        }
        anyhow::Ok(())
    })
}

/// Progress, on stderr (the tables go to stdout).
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => { eprintln!("[coffer-bench] {}", format!($($t)*)) };
}
