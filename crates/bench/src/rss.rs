//! Memory: coffer's peak RSS (`VmHWM`) while it streams large objects many at a time — 16
//! concurrent PUTs of a 1 GiB file (curl, presigned URLs), then 16 concurrent GETs of them.

use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail};

use crate::large::{self, urls};
use crate::table::{Table, mib};
use crate::{Opts, say};

/// Start `n` curls at once; the wall time until the last is done.
fn concurrent_curls(cmds: Vec<Vec<String>>) -> anyhow::Result<std::time::Duration> {
    let start = Instant::now();
    let mut children = Vec::new();
    for args in cmds {
        let c = Command::new("curl")
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting curl")?;
        children.push(c);
    }
    for c in children {
        let out = c.wait_with_output()?;
        let code = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if !code.starts_with('2') {
            bail!("curl answered {code}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }
    Ok(start.elapsed())
}

pub async fn run(opts: &Opts) -> anyhow::Result<Vec<Table>> {
    let work = opts.tempdir("rss")?;
    let size = opts.large_mib * 1024 * 1024;
    let n = opts.streams;
    // The GETs all read one object of the full size; the PUTs need `n` objects at once. When
    // the disk cannot hold them, the PUTs are smaller: what a stream holds in memory does not
    // depend on the object's size (bounded buffers), only the duration does.
    let free = large::free_bytes(work.path()).unwrap_or(u64::MAX);
    if free < 2 * size + (512 << 20) {
        bail!("{} needs 2 × {} MiB free", work.path().display(), opts.large_mib);
    }
    let mut put_mib = opts.rss_put_mib.unwrap_or(opts.large_mib);
    while put_mib > 16 && (n as u64 + 2) * put_mib * 1048576 + 2 * size > free.saturating_sub(1 << 30) {
        put_mib /= 2;
    }
    let src = work.path().join("source.bin");
    say!("rss: writing {} MiB of data", opts.large_mib);
    large::make_source(&src, size)?;
    let put_src = if put_mib == opts.large_mib {
        src.clone()
    } else {
        let p = work.path().join("put-source.bin");
        large::make_source(&p, put_mib * 1048576)?;
        p
    };
    let peer = match large::start_one(opts, "coffer", work.path(), "bench").await? {
        Ok(p) => p,
        Err(why) => bail!("{why}"),
    };
    let idle = peer.server.peak_rss();
    let base = ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Expect:"].map(str::to_owned);
    let curl_put = |key: &str, file: &std::path::Path| {
        let (put, _) = urls(&peer.target, key);
        let mut a = base.to_vec();
        a.extend(["-T".to_owned(), file.display().to_string(), put]);
        a
    };
    concurrent_curls(vec![curl_put("big", &src)])?;
    let after_one = peer.server.peak_rss();
    say!("rss: {n} concurrent PUTs of {put_mib} MiB");
    let put = concurrent_curls((0..n).map(|i| curl_put(&format!("put-{i}"), &put_src)).collect())?;
    let after_put = peer.server.peak_rss();
    let get_cmds = (0..n)
        .map(|_| {
            let (_, get) = urls(&peer.target, "big");
            let mut a = base.to_vec();
            a.push(get);
            a
        })
        .collect();
    say!("rss: {n} concurrent GETs of {} MiB", opts.large_mib);
    let get = concurrent_curls(get_cmds)?;
    let after_get = peer.server.peak_rss();
    let mut t = Table::new(
        format!("Memory: coffer's peak RSS (VmHWM) streaming {n} large objects at once (target < 150 MiB)"),
        &["phase", "aggregate MB/s", "coffer peak RSS so far"],
    );
    let m = |b: Option<u64>| b.map_or("–".into(), mib);
    t.row(vec!["started, bucket made".into(), "–".into(), m(idle)]);
    t.row(vec![format!("1 PUT of {} MiB", opts.large_mib), "–".into(), m(after_one)]);
    t.row(vec![
        format!("{n} concurrent PUTs of {put_mib} MiB"),
        format!("{:.0}", large::mbps(put_mib * 1048576 * n as u64, put)),
        m(after_put),
    ]);
    t.row(vec![
        format!("{n} concurrent GETs of {} MiB", opts.large_mib),
        format!("{:.0}", large::mbps(size * n as u64, get)),
        m(after_get),
    ]);
    if put_mib != opts.large_mib {
        t.note(format!(
            "The PUTs were {put_mib} MiB each ({} free where the data went; {n} × {} MiB would not fit).",
            mib(free),
            opts.large_mib
        ));
    }
    if let Some(fs) = large::fs_type(work.path()) {
        t.note(format!("Data directory on {fs}."));
    }
    Ok(vec![t])
}
