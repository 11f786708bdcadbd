//! Accepting connections and serving HTTP/1.1 and HTTP/2 (cleartext, by prior knowledge) on
//! them, with the limits that keep a hostile or broken client from exhausting the server
//! (docs/SECURITY.md, "slow and oversized requests"):
//!
//! - **a request's head** (request line and headers) must arrive within
//!   [`Limits::header_read_timeout`] of the connection opening or of the previous response
//!   (an idle keep-alive connection is closed after as long); a client that trickles its
//!   headers (slowloris), or connects and sends nothing, is disconnected;
//! - **its size**: at most [`Limits::max_head_bytes`] and [`Limits::max_headers`] headers,
//!   else `431 Request Header Fields Too Large` and the connection closed (HTTP/2: the same
//!   bound on the header list);
//! - **a stalled body**: a request body from which no byte arrives for
//!   [`Limits::body_idle_timeout`] while the server waits for it fails the request (the
//!   upload is discarded, nothing partial is kept) and the connection closes;
//! - **connections**: at most [`Limits::max_connections`] at once; past that, new ones wait
//!   in the kernel's accept queue until a slot frees;
//! - **HTTP/2**: at most [`H2_MAX_STREAMS`] concurrent streams per connection, and pings to
//!   drop dead peers.
//!
//! Body sizes are bounded where bodies are read: S3 uploads by the configured maximum object
//! size (refused from `Content-Length` before the body), the REST API's JSON bodies by its
//! body limit, STS forms by theirs.
//!
//! Every request gets the client's address as `ConnectInfo<SocketAddr>`; on shutdown the
//! listener stops accepting, connections finish the requests in flight (idle ones close at
//! once), and [`serve_connections`] returns when the last one has closed.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::response::Response;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// Concurrent HTTP/2 streams per connection.
pub const H2_MAX_STREAMS: u32 = 128;
/// How often an HTTP/2 connection is pinged, and how long the answer may take.
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);

/// What one connection may cost. The defaults are what `coffer serve` uses.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Connections served at once.
    pub max_connections: usize,
    /// How long a request's head may take to arrive (and an idle connection may stay).
    pub header_read_timeout: Duration,
    /// The largest request head, in bytes (also HTTP/1's read buffer).
    pub max_head_bytes: usize,
    /// The most headers in one request.
    pub max_headers: usize,
    /// How long a request body may stall while the server waits for it.
    pub body_idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            header_read_timeout: Duration::from_secs(10),
            max_head_bytes: 64 * 1024,
            max_headers: 100,
            body_idle_timeout: Duration::from_secs(60),
        }
    }
}

/// What a listener serves: any service answering every request (an axum `Router` is one).
pub trait App:
    tower::Service<http::Request<Body>, Response = Response, Error = std::convert::Infallible, Future: Send>
    + Clone
    + Send
    + 'static
{
}

impl<S> App for S where
    S: tower::Service<http::Request<Body>, Response = Response, Error = std::convert::Infallible, Future: Send>
        + Clone
        + Send
        + 'static
{
}

/// Serve `app` on `listener` with the default [`Limits`] until `shutdown` resolves and
/// every connection has closed.
pub async fn serve_connections(
    listener: TcpListener,
    app: impl App,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with_limits(listener, app, Limits::default(), shutdown).await
}

/// [`serve_connections`] with explicit limits.
pub async fn serve_with_limits(
    listener: TcpListener,
    app: impl App,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_head_bytes.max(8192))
        .max_headers(limits.max_headers);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_head_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(H2_MAX_STREAMS)
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
        };
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // keep serving the others.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let conn = serve_one(builder.clone(), app.clone(), stream, remote, limits.clone(), stop_rx.clone());
        tokio::spawn(async move {
            conn.await;
            drop(permit);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it closes: all slots back means all closed.
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    Ok(())
}

/// One connection, from its first byte to its close.
async fn serve_one(
    builder: Arc<auto::Builder<TokioExecutor>>,
    app: impl App,
    stream: TcpStream,
    remote: SocketAddr,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
) {
    let started = Arc::new(AtomicBool::new(false));
    let seen = started.clone();
    let body_idle = limits.body_idle_timeout;
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        seen.store(true, Ordering::Relaxed);
        let mut req = req.map(|b| Body::new(StallGuard::new(b, body_idle)));
        req.extensions_mut().insert(ConnectInfo(remote));
        app.clone().oneshot(req)
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    // hyper times the heads of HTTP/1 requests itself, but only once it knows the protocol:
    // a client that sends nothing (or HTTP/2's preface, slowly) is timed here.
    let first = tokio::time::sleep(limits.header_read_timeout);
    tokio::pin!(first);
    let mut waiting_first = true;
    let mut draining = false;
    if *stop.borrow() {
        conn.as_mut().graceful_shutdown();
        draining = true;
    }
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%remote, error = %e, "connection ended with an error");
                }
                return;
            }
            _ = &mut first, if waiting_first => {
                waiting_first = false;
                if !started.load(Ordering::Relaxed) {
                    tracing::debug!(%remote, "no request within the header timeout: closing the connection");
                    return;
                }
            }
            _ = stop.changed(), if !draining => {
                draining = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A request body that fails when no frame arrives for `limit` while it is being read.
struct StallGuard<B> {
    inner: B,
    limit: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<B> StallGuard<B> {
    fn new(inner: B, limit: Duration) -> Self {
        Self { inner, limit, timer: None }
    }
}

impl<B> HttpBody for StallGuard<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => {
                let limit = this.limit;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        this.timer = None;
                        Poll::Ready(Some(Err(format!(
                            "the request body stalled: no byte for {} s",
                            limit.as_secs_f64()
                        )
                        .into())))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use axum::Router;
    use axum::routing::{get, post};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn app() -> Router {
        Router::new()
            .route("/addr", get(|ConnectInfo(a): ConnectInfo<SocketAddr>| async move { a.to_string() }))
            .route(
                "/echo",
                post(|body: Body| async move {
                    match axum::body::to_bytes(body, usize::MAX).await {
                        Ok(b) => (http::StatusCode::OK, format!("{}", b.len())),
                        Err(e) => (http::StatusCode::BAD_REQUEST, e.to_string()),
                    }
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    "done"
                }),
            )
    }

    fn quick() -> Limits {
        Limits {
            max_connections: 8,
            header_read_timeout: Duration::from_millis(400),
            max_head_bytes: 16 * 1024,
            max_headers: 20,
            body_idle_timeout: Duration::from_millis(400),
        }
    }

    struct Server {
        addr: SocketAddr,
        stop: Option<tokio::sync::oneshot::Sender<()>>,
        task: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    async fn start(limits: Limits) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve_with_limits(listener, app(), limits, async move {
            let _ = rx.await;
        }));
        Server { addr, stop: Some(tx), task }
    }

    /// Everything the server sends until it closes the connection (or 5 s pass).
    async fn read_all(s: &mut TcpStream) -> String {
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    async fn request(addr: SocketAddr, raw: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(raw).await.unwrap();
        read_all(&mut s).await
    }

    #[tokio::test]
    async fn requests_are_served_with_the_client_address() {
        let srv = start(quick()).await;
        let answer = request(srv.addr, b"GET /addr HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains("127.0.0.1:"), "{answer}");
    }

    #[tokio::test]
    async fn silent_and_trickling_clients_are_disconnected() {
        let srv = start(quick()).await;
        let started = Instant::now();
        let mut silent = TcpStream::connect(srv.addr).await.unwrap();
        assert_eq!(read_all(&mut silent).await, "");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());

        let started = Instant::now();
        let mut slow = TcpStream::connect(srv.addr).await.unwrap();
        let mut closed = false;
        for b in b"GET /addr HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if slow.write_all(&[*b]).await.is_err() {
                closed = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            if started.elapsed() > Duration::from_secs(3) {
                break;
            }
        }
        let rest = read_all(&mut slow).await;
        assert!(closed || !rest.contains("200 OK"), "{rest}");
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn idle_keep_alive_connections_are_closed() {
        let srv = start(quick()).await;
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(b"GET /addr HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        let started = Instant::now();
        let all = read_all(&mut s).await;
        assert!(all.starts_with("HTTP/1.1 200"), "{all}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn oversized_heads_get_431() {
        let srv = start(quick()).await;
        let big = format!("GET /addr HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n", "a".repeat(64 * 1024));
        let answer = request(srv.addr, big.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
        let many: String = (0..500).map(|i| format!("x-h{i}: v\r\n")).collect();
        let answer = request(srv.addr, format!("GET /addr HTTP/1.1\r\nhost: x\r\n{many}\r\n").as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    }

    #[tokio::test]
    async fn stalled_bodies_fail_the_request() {
        let srv = start(quick()).await;
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nabc").await.unwrap();
        let started = Instant::now();
        let answer = read_all(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("stalled"), "{answer}");
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
        // A body that keeps coming is fine, however slowly overall.
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(b"POST /echo HTTP/1.1\r\nhost: x\r\ncontent-length: 6\r\nconnection: close\r\n\r\n").await.unwrap();
        for chunk in [b"ab", b"cd", b"ef"] {
            tokio::time::sleep(Duration::from_millis(250)).await;
            s.write_all(chunk).await.unwrap();
        }
        let answer = read_all(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with('6'), "{answer}");
    }

    #[tokio::test]
    async fn connections_past_the_cap_wait_for_a_slot() {
        let srv = start(Limits { max_connections: 2, header_read_timeout: Duration::from_secs(1), ..quick() }).await;
        let _a = TcpStream::connect(srv.addr).await.unwrap();
        let _b = TcpStream::connect(srv.addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Accepted by the kernel, served only once one of the silent two is dropped (1 s).
        let started = Instant::now();
        let answer = request(srv.addr, b"GET /addr HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(started.elapsed() >= Duration::from_millis(500), "{:?}", started.elapsed());
    }

    #[tokio::test]
    async fn shutdown_finishes_requests_in_flight() {
        let mut srv = start(quick()).await;
        let mut s = TcpStream::connect(srv.addr).await.unwrap();
        s.write_all(b"GET /slow HTTP/1.1\r\nhost: x\r\n\r\n").await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        srv.stop.take().unwrap().send(()).unwrap();
        let answer = read_all(&mut s).await;
        assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("done"), "{answer}");
        tokio::time::timeout(Duration::from_secs(5), srv.task).await.unwrap().unwrap().unwrap();
    }
}
