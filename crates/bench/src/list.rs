//! Listing: a bucket of 100 000 objects read page by page (ListObjectsV2, 1000 keys a page,
//! all pages), and ListBuckets for a user with 10 000 grants — on SQLite and on PostgreSQL.
//!
//! The buckets and grants are written through the gateway library (the same admin use cases
//! `coffer admin` runs, concurrently) before the server starts; the objects are PUT through
//! coffer's S3 API (empty bodies, 32 connections), so every record is real.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use coffer_core::{Grantee, Narrowing, Role};
use futures::StreamExt;
use http::Method;

use crate::hist::Histogram;
use crate::load::{self, Conn, Target};
use crate::servers::{self, CofferSetup};
use crate::sigv4::Credentials;
use crate::table::{Table, group, latency, mib, rate};
use crate::{Opts, say};

/// A fresh PostgreSQL database, dropped when this is dropped.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let out =
        Command::new("psql").args(["-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql]).output().context("running psql")?;
    if !out.status.success() {
        bail!("psql: {}", String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(())
}

impl PgDatabase {
    pub fn create(admin_url: &str, what: &str) -> anyhow::Result<Self> {
        let name = format!("coffer_bench_{what}_{}", std::process::id());
        let (base, _) = admin_url.rsplit_once('/').context("a PostgreSQL URL ends with /database")?;
        psql(admin_url, &format!("DROP DATABASE IF EXISTS {name}"))?;
        psql(admin_url, &format!("CREATE DATABASE {name}"))?;
        Ok(PgDatabase { admin_url: admin_url.to_owned(), url: format!("{base}/{name}"), name })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Err(e) = psql(&self.admin_url, &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)) {
            eprintln!("could not drop database {}: {e:#}", self.name);
        }
    }
}

/// The value of the first `<tag>` in an XML document.
fn xml_value<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..start + len])
}

/// Percent-encode a query value.
fn qenc(s: &str) -> String {
    crate::sigv4::uri_encode(s, false)
}

/// List every page; returns (keys seen, page latencies, total time).
async fn list_all(target: &Target) -> anyhow::Result<(usize, Histogram, Duration)> {
    let mut c = Conn::connect(target).await?;
    let mut h = Histogram::default();
    let mut token: Option<String> = None;
    let mut keys = 0;
    let start = Instant::now();
    loop {
        let query = match &token {
            Some(t) => format!("continuation-token={}&list-type=2&max-keys=1000", qenc(t)),
            None => "list-type=2&max-keys=1000".to_owned(),
        };
        let t0 = Instant::now();
        let r = c.send(Method::GET, &format!("/{}", target.bucket), &query, Bytes::new(), None).await?;
        h.record(t0.elapsed());
        let xml = String::from_utf8_lossy(&r.body);
        if !r.status.is_success() {
            bail!("ListObjectsV2: {} {xml}", r.status);
        }
        keys += xml_value(&xml, "KeyCount").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
        match xml_value(&xml, "NextContinuationToken") {
            Some(t) if xml_value(&xml, "IsTruncated") == Some("true") => token = Some(t.replace("&amp;", "&")),
            _ => break,
        }
    }
    Ok((keys, h, start.elapsed()))
}

/// ListBuckets; returns the number of buckets and the latency.
async fn list_buckets(c: &mut Conn) -> anyhow::Result<(usize, Duration)> {
    let t0 = Instant::now();
    let r = c.send(Method::GET, "/", "", Bytes::new(), None).await?;
    let d = t0.elapsed();
    let xml = String::from_utf8_lossy(&r.body);
    if !r.status.is_success() {
        bail!("ListBuckets: {} {xml}", r.status);
    }
    Ok((xml.matches("<Bucket>").count(), d))
}

/// Users, buckets and grants through the gateway library, before the server starts: `owner`
/// owns `grants` buckets, each granting read to `reader`. Returns reader's credentials.
async fn populate_grants(
    url: &str,
    data_dir: &std::path::Path,
    server_key: &str,
    grants: usize,
) -> anyhow::Result<Credentials> {
    let store = coffer_metadata::open(url).await?;
    store.migrate().await?;
    let tier: Arc<dyn coffer_backend::Backend> =
        Arc::new(coffer_backend::FsBackend::new(data_dir.join("objects")).await?);
    let key = coffer_identity::ServerKey::from_base64(server_key)?;
    let gw = Arc::new(coffer_gateway::Gateway::new(
        store,
        std::collections::BTreeMap::from([("standard".to_owned(), tier)]),
        "standard".into(),
        key,
    ));
    gw.admin_create_user("owner", &[], &[], false).await?;
    gw.admin_create_user("reader", &["analysts".into()], &[], false).await?;
    let k = gw.admin_create_key(coffer_gateway::admin::BY_COMMAND_LINE, "reader", Narrowing::default()).await?;
    let results: Vec<anyhow::Result<()>> = futures::stream::iter(0..grants)
        .map(|i| {
            let gw = gw.clone();
            async move {
                let name = format!("granted-{i:05}");
                gw.admin_create_bucket(&name, "owner", None, None).await?;
                gw.admin_put_grant(&name, Grantee::User("reader".into()), Role::Read).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(8)
        .collect()
        .await;
    results.into_iter().collect::<anyhow::Result<()>>()?;
    Ok(Credentials { access_key: k.key.access_key_id, secret_key: k.secret_access_key, region: servers::REGION.into() })
}

pub async fn run(opts: &Opts) -> anyhow::Result<Vec<Table>> {
    let mut t = Table::new(
        format!(
            "Listing: {} objects (ListObjectsV2, 1000 a page, all pages); ListBuckets of a user with {} grants",
            group(opts.objects as u64),
            group(opts.grants as u64)
        ),
        &[
            "store",
            "PUT empty objects",
            "LIST all pages (median of 3)",
            "page p50 · p99",
            "ListBuckets first (cold cache)",
            "ListBuckets warm p50 · p99",
            "buckets listed",
            "peak RSS",
        ],
    );
    let mut stores: Vec<(&str, Option<String>)> = vec![("SQLite", None)];
    if opts.pg != "none" {
        stores.push(("PostgreSQL", Some(opts.pg.clone())));
    }
    for (store, pg) in stores {
        let work = opts.tempdir("list")?;
        let db = match &pg {
            Some(url) => match PgDatabase::create(url, "list") {
                Ok(db) => Some(db),
                Err(e) => {
                    t.row(vec![format!("{store}: not measured ({e:#})")]);
                    continue;
                }
            },
            None => None,
        };
        let dir = work.path().join("coffer");
        let data = servers::coffer_data_dir(&dir);
        std::fs::create_dir_all(&data)?;
        let setup = CofferSetup {
            bin: opts.coffer_bin(),
            database_url: db.as_ref().map(|d| d.url.clone()),
            server_key: coffer_identity::ServerKey::generate().to_base64(),
        };
        let url =
            setup.database_url.clone().unwrap_or_else(|| format!("sqlite://{}", data.join("coffer.db").display()));
        say!("list: {store}: {} buckets granted through the gateway library", opts.grants);
        let t0 = Instant::now();
        let reader = populate_grants(&url, &data, &setup.server_key, opts.grants).await?;
        say!("list: {store}: grants written in {:.1} s", t0.elapsed().as_secs_f64());
        let server = servers::start_coffer(&setup, &dir).await?;
        let reader_target =
            Target { name: "coffer".into(), addr: server.addr, creds: Some(reader), bucket: String::new() };
        let mut rc = Conn::connect(&reader_target).await?;
        let (n_cold, cold) = list_buckets(&mut rc).await?;
        let mut warm = Histogram::default();
        let mut n = n_cold;
        for _ in 0..20 {
            let (k, d) = list_buckets(&mut rc).await?;
            warm.record(d);
            n = k;
        }
        let target = Target {
            name: "coffer".into(),
            addr: server.addr,
            creds: Some(servers::admin_creds()),
            bucket: "listed".into(),
        };
        servers::create_bucket(&target).await?;
        let keys: Arc<Vec<String>> = Arc::new((0..opts.objects).map(|i| format!("dir/obj-{i:06}")).collect());
        say!("list: {store}: PUT {} empty objects", opts.objects);
        let put = load::put_all(&target, keys, Bytes::new(), 32).await?;
        let mut passes = Vec::new();
        let mut pages = Histogram::default();
        for _ in 0..3 {
            let (seen, h, d) = list_all(&target).await?;
            if seen != opts.objects {
                bail!("listed {seen} keys, expected {}", opts.objects);
            }
            pages.merge(&h);
            passes.push(d);
        }
        passes.sort();
        let median = passes[passes.len() / 2];
        say!(
            "list: {store}: LIST {:.2} s, ListBuckets cold {} warm {}",
            median.as_secs_f64(),
            latency(cold),
            latency(warm.quantile(0.5))
        );
        t.row(vec![
            store.to_owned(),
            format!("{} /s", rate(opts.objects as f64 / put.as_secs_f64())),
            format!("{} ({} keys/s)", latency(median), rate(opts.objects as f64 / median.as_secs_f64())),
            format!("{} · {}", latency(pages.quantile(0.5)), latency(pages.quantile(0.99))),
            latency(cold),
            format!("{} · {}", latency(warm.quantile(0.5)), latency(warm.quantile(0.99))),
            group(n as u64),
            server.peak_rss().map_or("–".into(), mib),
        ]);
        drop(server);
        drop(db);
    }
    t.note("Keys `dir/obj-NNNNNN`: one directory of the filesystem tier holds them all.");
    Ok(vec![t])
}
