//! The load generator: keep-alive HTTP/1.1 connections (hyper's client connection, one task
//! each), every request SigV4-signed in its headers as an SDK signs it, fixed-duration runs
//! after a warm-up, latencies into a [`Histogram`] per connection, merged at the end.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::hist::Histogram;
use crate::sigv4::{self, Credentials, Signer};

/// A server under test: where it listens, how to sign for it (`None`: plain HTTP, nginx), and
/// the bucket (for nginx: the first path segment).
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub addr: SocketAddr,
    pub creds: Option<Credentials>,
    pub bucket: String,
}

impl Target {
    pub fn host(&self) -> String {
        self.addr.to_string()
    }
}

/// One keep-alive connection, signing what it sends.
pub struct Conn {
    tx: http1::SendRequest<Full<Bytes>>,
    host: String,
    signer: Option<Signer>,
    /// `(unix second, amz date)`: formatted once a second.
    date: (i64, String),
}

/// A response, body read to the end.
pub struct Reply {
    pub status: StatusCode,
    pub body: Bytes,
}

impl Conn {
    pub async fn connect(target: &Target) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(target.addr).await.with_context(|| format!("connecting to {}", target.name))?;
        stream.set_nodelay(true)?;
        let (tx, conn) = http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { tx, host: target.host(), signer: target.creds.clone().map(Signer::new), date: (0, String::new()) })
    }

    fn amz_date(&mut self) -> &str {
        let now = sigv4::now_unix();
        if self.date.0 != now {
            self.date = (now, sigv4::amz_date(now));
        }
        &self.date.1
    }

    /// Send one request. `path` and `query` are URI-encoded; `payload_sha256` saves hashing
    /// the same body again (SDKs hash every body they sign; ours are all the same).
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        query: &str,
        body: Bytes,
        payload_sha256: Option<&str>,
    ) -> anyhow::Result<Reply> {
        let uri = if query.is_empty() { path.to_owned() } else { format!("{path}?{query}") };
        let mut b = Request::builder().method(method.clone()).uri(uri).header(header::HOST, &self.host);
        if !body.is_empty() || method == Method::PUT {
            b = b.header(header::CONTENT_LENGTH, body.len());
        }
        if self.signer.is_some() {
            let computed;
            let sha = match payload_sha256 {
                Some(s) => s,
                None if body.is_empty() => sigv4::EMPTY_SHA256,
                None => {
                    computed = sigv4::sha256_hex(&body);
                    &computed
                }
            };
            let date = self.amz_date().to_owned();
            let host = self.host.clone();
            let signer = self.signer.as_mut().expect("checked");
            for (k, v) in signer.sign_headers(method.as_str(), &host, path, query, &[], sha, &date) {
                b = b.header(k, v);
            }
        }
        let req = b.body(Full::new(body))?;
        self.tx.ready().await?;
        let resp = self.tx.send_request(req).await?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await?.to_bytes();
        Ok(Reply { status: parts.status, body })
    }
}

/// The four small-object operations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Put,
    Get,
    Head,
    Delete,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Put => "PUT",
            Op::Get => "GET",
            Op::Head => "HEAD",
            Op::Delete => "DELETE",
        }
    }

    fn method(self) -> Method {
        match self {
            Op::Put => Method::PUT,
            Op::Get => Method::GET,
            Op::Head => Method::HEAD,
            Op::Delete => Method::DELETE,
        }
    }
}

/// Which keys the connections use.
#[derive(Clone)]
pub enum Keys {
    /// Existing keys, each connection cycling from its own offset (GET, HEAD).
    Cycle(Arc<Vec<String>>),
    /// New keys `"{prefix}-{connection}-{n}"` (PUT); the keys written are returned.
    Fresh(String),
    /// Each connection works through its own list and stops at its end (DELETE).
    PerConnection(Arc<Vec<Vec<String>>>),
}

/// One fixed-duration run.
pub struct Run {
    pub op: Op,
    pub concurrency: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub body: Bytes,
    pub keys: Keys,
}

/// What a run measured.
#[derive(Debug, Default)]
pub struct Outcome {
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
    pub hist: Histogram,
    /// The keys each connection wrote (PUT), warm-up included.
    pub written: Vec<Vec<String>>,
}

impl Outcome {
    pub fn rate(&self) -> f64 {
        if self.elapsed.is_zero() { 0.0 } else { self.ops as f64 / self.elapsed.as_secs_f64() }
    }
}

struct ConnOutcome {
    ops: u64,
    errors: u64,
    first_error: Option<String>,
    last_done: Option<Instant>,
    hist: Histogram,
    written: Vec<String>,
}

/// Run `run` against `target`: `concurrency` connections, requests back to back.
pub async fn run(target: &Target, run: &Run) -> anyhow::Result<Outcome> {
    let mut conns = Vec::with_capacity(run.concurrency);
    for _ in 0..run.concurrency {
        conns.push(Conn::connect(target).await?);
    }
    let payload_sha: Arc<str> = sigv4::sha256_hex(&run.body).into();
    let begin = Instant::now();
    let measure_from = begin + run.warmup;
    let end = measure_from + run.duration;
    let mut tasks = Vec::with_capacity(run.concurrency);
    for (i, conn) in conns.into_iter().enumerate() {
        let (target, op, body, keys, sha) =
            (target.clone(), run.op, run.body.clone(), run.keys.clone(), payload_sha.clone());
        tasks.push(tokio::spawn(
            async move { connection(target, conn, i, op, body, keys, sha, measure_from, end).await },
        ));
    }
    let mut out = Outcome::default();
    let mut last = None::<Instant>;
    for t in tasks {
        let c = t.await?;
        out.ops += c.ops;
        out.errors += c.errors;
        out.hist.merge(&c.hist);
        if out.first_error.is_none() {
            out.first_error = c.first_error;
        }
        last = last.max(c.last_done);
        out.written.push(c.written);
    }
    out.elapsed = last.map_or(Duration::ZERO, |l| l.min(end).saturating_duration_since(measure_from));
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
async fn connection(
    target: Target,
    mut conn: Conn,
    index: usize,
    op: Op,
    body: Bytes,
    keys: Keys,
    payload_sha: Arc<str>,
    measure_from: Instant,
    end: Instant,
) -> ConnOutcome {
    let mut o = ConnOutcome {
        ops: 0,
        errors: 0,
        first_error: None,
        last_done: None,
        hist: Histogram::default(),
        written: vec![],
    };
    let body = if op == Op::Put { body } else { Bytes::new() };
    let sha = (op == Op::Put).then_some(&*payload_sha);
    let mut n = 0usize;
    loop {
        if Instant::now() >= end {
            break;
        }
        let key = match &keys {
            Keys::Cycle(all) => all[(index * 7919 + n) % all.len()].clone(),
            Keys::Fresh(prefix) => format!("{prefix}-{index}-{n}"),
            Keys::PerConnection(lists) => match lists.get(index).and_then(|l| l.get(n)) {
                Some(k) => k.clone(),
                None => break,
            },
        };
        n += 1;
        let path = format!("/{}/{}", target.bucket, key);
        let t0 = Instant::now();
        let result = conn.send(op.method(), &path, "", body.clone(), sha).await;
        let done = Instant::now();
        let ok = match result {
            Ok(r) if r.status.is_success() => true,
            Ok(r) => {
                if o.first_error.is_none() {
                    o.first_error =
                        Some(format!("{} {path}: {} {}", op.name(), r.status, String::from_utf8_lossy(&r.body)));
                }
                false
            }
            Err(e) => {
                if o.first_error.is_none() {
                    o.first_error = Some(format!("{} {path}: {e:#}", op.name()));
                }
                // The connection may be gone: open another.
                match Conn::connect(&target).await {
                    Ok(c) => conn = c,
                    Err(_) => break,
                }
                false
            }
        };
        if ok && op == Op::Put {
            o.written.push(key);
        }
        if t0 >= measure_from && done <= end {
            o.last_done = Some(done);
            if ok {
                o.ops += 1;
                o.hist.record(done - t0);
            } else {
                o.errors += 1;
            }
        }
    }
    o
}

/// PUT every key of `keys` (with `body`) over `concurrency` connections; fails on the first
/// error. Returns the elapsed time.
pub async fn put_all(
    target: &Target,
    keys: Arc<Vec<String>>,
    body: Bytes,
    concurrency: usize,
) -> anyhow::Result<Duration> {
    let next = Arc::new(AtomicUsize::new(0));
    let sha: Arc<str> = sigv4::sha256_hex(&body).into();
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let mut conn = Conn::connect(target).await?;
        let (keys, next, body, sha, bucket) =
            (keys.clone(), next.clone(), body.clone(), sha.clone(), target.bucket.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(key) = keys.get(i) else { return anyhow::Ok(()) };
                let r = conn.send(Method::PUT, &format!("/{bucket}/{key}"), "", body.clone(), Some(&sha)).await?;
                if !r.status.is_success() {
                    return Err(anyhow!("PUT {key}: {} {}", r.status, String::from_utf8_lossy(&r.body)));
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(start.elapsed())
}
