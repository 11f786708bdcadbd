//! Small objects: PUT, GET, HEAD and DELETE of 4 KiB objects at 1, 16 and 64 keep-alive
//! connections, every request SigV4-signed in its headers (nginx: plain GETs of the same
//! bytes, the ceiling; with `--nginx-signed`, signed as coffer's are). One server runs at a
//! time; for each connection count: PUT new keys, GET and HEAD keys of a 1000-object working
//! set, DELETE the keys the PUTs wrote.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use crate::large::{self, SERVERS};
use crate::load::{self, Keys, Op, Outcome};
use crate::table::{Table, latency, mib, rate, ratio};
use crate::{Opts, say};

const WORKING_SET: usize = 1000;

fn parse_ops(opts: &Opts) -> anyhow::Result<Vec<Op>> {
    opts.ops
        .iter()
        .map(|o| match o.to_ascii_lowercase().as_str() {
            "put" => Ok(Op::Put),
            "get" => Ok(Op::Get),
            "head" => Ok(Op::Head),
            "delete" => Ok(Op::Delete),
            other => anyhow::bail!("unknown operation {other:?} (put, get, head, delete)"),
        })
        .collect()
}

fn cell(o: &Outcome) -> String {
    let mut s =
        format!("{} /s · {} · {}", rate(o.rate()), latency(o.hist.quantile(0.5)), latency(o.hist.quantile(0.99)));
    if o.errors > 0 {
        s.push_str(&format!(" · {} errors", o.errors));
    }
    s
}

pub async fn run(opts: &Opts) -> anyhow::Result<Vec<Table>> {
    let ops = parse_ops(opts)?;
    let body = Bytes::from((0..opts.small_size).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
    let keys: Arc<Vec<String>> = Arc::new((0..WORKING_SET).map(|i| format!("obj-{i:04}")).collect());
    // (op, connections, server) → outcome
    let mut results: BTreeMap<(usize, usize, &str), Outcome> = BTreeMap::new();
    let mut missing = Vec::new();
    let mut rss = Vec::new();
    for name in SERVERS {
        if name == "nginx" && !ops.contains(&Op::Get) {
            continue;
        }
        let work = opts.tempdir("small")?;
        let mut peer = match large::start_one(opts, name, work.path(), "bench").await? {
            Ok(p) => p,
            Err(why) => {
                missing.push((name, why));
                continue;
            }
        };
        say!("small: {name}: writing the working set");
        if name == "nginx" && opts.nginx_signed {
            // Any key: nginx does not check it, but the client signs as it signs for coffer.
            peer.target.creds = Some(crate::servers::admin_creds());
        }
        if name == "nginx" {
            let dir = peer.server.dir.join("www").join("bench");
            for k in keys.iter() {
                std::fs::write(dir.join(k), &body)?;
            }
        } else {
            load::put_all(&peer.target, keys.clone(), body.clone(), 16).await?;
        }
        for &c in &opts.concurrency {
            let mut written = None;
            for (oi, &op) in ops.iter().enumerate() {
                if name == "nginx" && op != Op::Get {
                    continue;
                }
                let keys = match op {
                    Op::Put => Keys::Fresh(format!("p{c}")),
                    Op::Get | Op::Head => Keys::Cycle(keys.clone()),
                    Op::Delete => match written.take() {
                        Some(w) => Keys::PerConnection(Arc::new(w)),
                        None => {
                            // No PUT ran first: delete (absent) keys, still a full DELETE path.
                            Keys::Fresh(format!("d{c}"))
                        }
                    },
                };
                let spec = load::Run {
                    op,
                    concurrency: c,
                    // DELETEs work through what the PUTs wrote (warm already): none is wasted.
                    warmup: if op == Op::Delete { std::time::Duration::ZERO } else { opts.warmup() },
                    duration: opts.duration(),
                    body: body.clone(),
                    keys,
                };
                let mut out = load::run(&peer.target, &spec).await?;
                say!(
                    "small: {name} {} x{c}: {:.0} ops/s p50 {} p99 {} errors {}{}",
                    op.name(),
                    out.rate(),
                    latency(out.hist.quantile(0.5)),
                    latency(out.hist.quantile(0.99)),
                    out.errors,
                    out.first_error.as_deref().map(|e| format!(" (first: {e})")).unwrap_or_default()
                );
                if op == Op::Put {
                    written = Some(std::mem::take(&mut out.written));
                }
                results.insert((oi, c, name), out);
            }
        }
        rss.push((name, peer.server.peak_rss()));
    }
    let present: Vec<&str> = SERVERS.iter().copied().filter(|s| results.keys().any(|k| k.2 == *s)).collect();
    let mut header = vec!["op", "conns"];
    header.extend(present.iter().copied());
    header.extend(["coffer ÷ nginx", "coffer ÷ garage"]);
    let mut t = Table::new(
        format!(
            "Small objects: {} B, SigV4-signed; {} s measured after {} s warm-up (ops/s · p50 · p99)",
            opts.small_size, opts.duration, opts.warmup
        ),
        &header,
    );
    for (oi, op) in ops.iter().enumerate() {
        for &c in &opts.concurrency {
            let mut row = vec![op.name().to_owned(), c.to_string()];
            for s in &present {
                row.push(results.get(&(oi, c, *s)).map_or("–".into(), cell));
            }
            let r = |s: &str| results.get(&(oi, c, s)).map(Outcome::rate);
            let coffer = r("coffer").unwrap_or(f64::NAN);
            row.push(r("nginx").map_or("–".into(), |n| ratio(coffer, n)));
            row.push(r("garage").map_or("–".into(), |g| ratio(coffer, g)));
            t.row(row);
        }
    }
    for (name, why) in &missing {
        t.note(format!("{name}: not measured ({why})."));
    }
    if present.contains(&"nginx") {
        t.note(if opts.nginx_signed {
            "nginx got the GETs signed as coffer's are (--nginx-signed); it ignores the signature."
        } else {
            "nginx got plain GETs (no signature to compute on the client)."
        });
    }
    t.note(format!(
        "Server peak RSS after the runs: {}.",
        rss.iter().map(|(n, r)| format!("{n} {}", r.map_or("–".into(), mib))).collect::<Vec<_>>().join(", ")
    ));
    t.note("Targets: coffer GET ≥ 0.5× nginx at every concurrency; coffer ahead of Garage on every row.");
    Ok(vec![t])
}
