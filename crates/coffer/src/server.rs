//! The HTTP server. One listener serves the S3 API (path-style, at `/`), STS
//! `AssumeRoleWithWebIdentity`, the REST API under `/api/v1`, the web console at `/console`,
//! `/healthz`, `/readyz` and `/metrics`. Around every S3 request: a request id (the `x-amz-request-id`
//! header and the `request_id` of every log line), the refusal of SigV2 and POST forms,
//! metrics (operation, status, latency, bytes) and one summary log line.
//! [`Front`] is the one service a listener calls: it does the above and hands an S3 request
//! straight to s3s, and only the REST API and the console to their axum router.
//! [`run`] takes the listener and a shutdown future, so tests and `serve` start it alike;
//! on shutdown, requests in flight finish.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use anyhow::Context as _;
use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use coffer_gateway::Gateway;
use coffer_s3_api::{OperationName, refuse_unsupported};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::config::{Config, GlobalArgs, ServeArgs};
use crate::metrics::Metrics;
use crate::{logging, wiring};

#[derive(Clone)]
struct AppState {
    gateway: Arc<Gateway>,
    metrics: Arc<Metrics>,
    options: Arc<Options>,
    /// This listener refuses every write.
    read_only: bool,
}

/// What the front ends need beyond the gateway.
#[derive(Debug, Default)]
pub struct Options {
    /// The sidecar-header rule of the REST API.
    pub trusted_headers: Option<Arc<coffer_identity::TrustedHeaders>>,
    /// The externally visible base URL, for share links.
    pub public_url: Option<String>,
    /// How long audit events stay in the store.
    pub audit_retention: std::time::Duration,
    /// A second listener, serving the same APIs read-only (every write refused).
    pub read_only_listener: Option<TcpListener>,
    /// The web console at `/console` (disabled by default).
    pub console: coffer_console::Console,
}

/// `coffer serve`.
pub async fn serve(global: &GlobalArgs, args: &ServeArgs) -> anyhow::Result<()> {
    let cfg = Config::load(global, Some(args))?;
    logging::init(cfg.log_format);
    tracing::info!(
        data_dir = %cfg.data_dir.display(),
        database = %cfg.database_url_redacted(),
        tiers = ?cfg.tiers.keys().collect::<Vec<_>>(),
        "starting coffer"
    );
    let gateway = wiring::gateway(&cfg, cfg.migrate_on_start).await?;
    bootstrap_admin(&gateway).await?;
    let listener = TcpListener::bind(cfg.listen).await.with_context(|| format!("binding {}", cfg.listen))?;
    tracing::info!(address = %listener.local_addr()?, "listening");
    let read_only_listener = match cfg.read_only_listen {
        Some(addr) => {
            let l = TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
            tracing::info!(address = %l.local_addr()?, "listening read-only");
            Some(l)
        }
        None => None,
    };
    let trusted_headers = match &cfg.trusted_headers {
        Some(c) => Some(Arc::new(
            coffer_identity::TrustedHeaders::new(c.clone()).map_err(|e| anyhow::anyhow!("[trusted_headers] {e}"))?,
        )),
        None => None,
    };
    let options = Options {
        trusted_headers,
        public_url: cfg.public_url.clone(),
        audit_retention: cfg.audit_retention,
        read_only_listener,
        console: wiring::console(&cfg, &gateway)?,
    };
    run(listener, gateway, options, shutdown_signal()).await
}

/// Create the platform admin on first start; print a generated key once.
async fn bootstrap_admin(gateway: &Gateway) -> anyhow::Result<()> {
    let id = std::env::var("COFFER_ADMIN_ACCESS_KEY").ok().filter(|s| !s.is_empty());
    let secret = std::env::var("COFFER_ADMIN_SECRET_KEY").ok().filter(|s| !s.is_empty());
    let creds = match (id, secret) {
        (Some(i), Some(s)) => Some((i, s)),
        (None, None) => None,
        _ => anyhow::bail!("set both COFFER_ADMIN_ACCESS_KEY and COFFER_ADMIN_SECRET_KEY, or neither"),
    };
    if let Some(k) = gateway.ensure_bootstrap_admin(creds).await.context("creating the bootstrap admin")? {
        // Printed on stdout, not logged: it is shown this once and never stored in clear.
        println!(
            "\ncoffer: created the platform admin `{}`. Its credentials are shown only this once:\n\
             \n    AWS_ACCESS_KEY_ID={}\n    AWS_SECRET_ACCESS_KEY={}\n",
            coffer_gateway::admin::BOOTSTRAP_ADMIN,
            k.access_key_id,
            k.secret_access_key
        );
    }
    Ok(())
}

/// SIGTERM or Ctrl-C.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

/// Serve on `listener` until `shutdown` resolves and every request in flight has finished.
pub async fn run(
    listener: TcpListener,
    gateway: Arc<Gateway>,
    options: Options,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let gateway_for_audit = gateway.clone();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let watcher = tokio::spawn(gateway.clone().watch_changes(async move {
        let mut rx = stop_rx;
        let _ = rx.wait_for(|v| *v).await;
    }));
    let mut options = options;
    let audit_retention = options.audit_retention;
    let read_only_listener = options.read_only_listener.take();
    let state =
        AppState { gateway, metrics: Arc::new(Metrics::default()), options: Arc::new(options), read_only: false };
    let audit_gateway = gateway_for_audit;
    let mut audit_stop = stop_tx.subscribe();
    let audit = tokio::spawn(async move {
        audit_gateway
            .run_audit_writer(audit_retention, async move {
                let _ = audit_stop.wait_for(|v| *v).await;
            })
            .await
    });
    // Both listeners stop accepting on the same signal and drain their requests.
    let (down_tx, down_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = down_tx.send(true);
    });
    let down = move || {
        let mut rx = down_rx.clone();
        async move {
            let _ = rx.wait_for(|v| *v).await;
        }
    };
    let read_only = read_only_listener.map(|l| {
        let app = Front::new(AppState { read_only: true, ..state.clone() });
        let stop = down();
        tokio::spawn(crate::listener::serve_connections(l, app, stop))
    });
    // Connection limits (slow and oversized requests): see `listener`.
    crate::listener::serve_connections(listener, Front::new(state), down()).await.context("serving")?;
    if let Some(ro) = read_only {
        ro.await.context("the read-only listener")?.context("serving read-only")?;
    }
    let _ = stop_tx.send(true);
    let _ = watcher.await;
    let _ = audit.await;
    tracing::info!("stopped");
    Ok(())
}

/// The front door of a listener: every request goes through [`Front::handle`], which
/// answers the plain routes and STS itself, sends S3 requests straight to s3s, and the REST
/// API and the console through their axum router.
#[derive(Clone)]
struct Front(Arc<FrontParts>);

struct FrontParts {
    st: AppState,
    s3: s3s::service::S3Service,
    /// The REST API under `/api/v1` and the console; anything else it is given goes to S3.
    web: Router,
}

impl Front {
    fn new(st: AppState) -> Self {
        let s3 = coffer_s3_api::build(st.gateway.clone());
        let fallback =
            axum::error_handling::HandleError::new(s3.clone(), |e: s3s::HttpError| async move { s3_service_error(&e) });
        let rest = coffer_rest_api::router(coffer_rest_api::RestState {
            gateway: st.gateway.clone(),
            headers: st.options.trusted_headers.clone(),
            public_url: st.options.public_url.clone(),
        });
        // The web console shares the origin with users' content: every answer but the
        // console's own is sandboxed (see `coffer_console::sandbox`).
        let web = Router::new()
            .nest("/api/v1", rest)
            .merge(st.options.console.router())
            .fallback_service(fallback)
            .layer(middleware::from_fn(coffer_console::sandbox_responses));
        Self(Arc::new(FrontParts { st, s3, web }))
    }
}

impl tower::Service<Request> for Front {
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Response, std::convert::Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let parts = self.0.clone();
        Box::pin(async move { Ok(parts.handle(req).await) })
    }
}

/// What an S3 request that s3s could not answer at all gets.
fn s3_service_error(e: &s3s::HttpError) -> Response {
    tracing::error!(error = ?e, "S3 service error");
    StatusCode::INTERNAL_SERVER_ERROR.into_response()
}

/// The request id's header on REST and console answers, on S3 answers (as AWS names it) and
/// on STS answers (likewise). Built at compile time: a name given as a string is parsed
/// again on every insert.
const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const X_AMZ_REQUEST_ID: HeaderName = HeaderName::from_static("x-amz-request-id");
const X_AMZN_REQUESTID: HeaderName = HeaderName::from_static("x-amzn-requestid");

/// The plain routes: GET `/healthz`, `/readyz`, `/metrics`.
async fn plain_route(st: &AppState, path: &str) -> Option<Response> {
    match path {
        "/healthz" => Some((StatusCode::OK, "ok\n").into_response()),
        "/readyz" => Some(readyz(st).await),
        "/metrics" => Some(metrics(st)),
        _ => None,
    }
}

async fn readyz(st: &AppState) -> Response {
    match st.gateway.check_ready().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "not ready");
            (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
        }
    }
}

fn metrics(st: &AppState) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], st.metrics.render()).into_response()
}

/// The path as it may be logged: a share link's token is a credential, so only its public id
/// is kept (`/api/v1/share/SL….***/rest`).
fn loggable(path: &str) -> std::borrow::Cow<'_, str> {
    const SHARE: &str = "/api/v1/share/";
    let Some(rest) = path.strip_prefix(SHARE) else { return path.into() };
    let (token, tail) = rest.split_once('/').map_or((rest, ""), |(t, r)| (t, r));
    let id = token.split_once('.').map_or(token, |(id, _)| id);
    let sep = if tail.is_empty() { "" } else { "/" };
    format!("{SHARE}{id}.***{sep}{tail}").into()
}

/// A fresh request id: 16 upper-case hex digits, like S3's.
/// A request id: 16 upper-case hex digits, like S3's `x-amz-request-id`. A counter mixed
/// with a per-process random seed by a bijection of 64-bit integers (SplitMix64's), so ids
/// never repeat within a process, look random, and differ between replicas, without a
/// `getrandom` call per request.
fn request_id() -> String {
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| uuid::Uuid::new_v4().as_u64_pair().0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{:016X}", mix64(seed.wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))))
}

/// A client address as `SocketAddr` displays it (`1.2.3.4:5678`, `[::1]:5678`), without the
/// formatting machinery for the IPv4 addresses nearly every request comes from.
fn address_text(a: &std::net::SocketAddr) -> String {
    let std::net::SocketAddr::V4(v4) = a else { return a.to_string() };
    let mut out = String::with_capacity(21);
    for (i, octet) in v4.ip().octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        push_decimal(&mut out, u32::from(octet));
    }
    out.push(':');
    push_decimal(&mut out, u32::from(v4.port()));
    out
}

fn push_decimal(out: &mut String, mut n: u32) {
    let mut digits = [0u8; 10];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend(digits[at..].iter().map(|&d| char::from(d)));
}

/// SplitMix64's finalizer: a bijection of `u64` that scatters neighbouring inputs.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl FrontParts {
    /// Request id, metrics and the summary log line around every request, then the front end
    /// the request is for: the plain routes, the REST API, STS, or S3.
    async fn handle(&self, req: Request) -> Response {
        let st = &self.st;
        let id = request_id();
        crate::logging::in_request(id.clone(), async move {
            let start = Instant::now();
            let method = req.method().clone();
            let path = req.uri().path().to_owned();
            let unanswered_expect = expects_continue_without_body(req.headers());
            // `/healthz`, `/readyz` and `/metrics` are answered here for GET only, so every
            // other request on those paths still reaches the S3 API (and gets S3 errors).
            if method == http::Method::GET
                && let Some(resp) = plain_route(st, &path).await
            {
                return resp;
            }
            let front = if path.starts_with("/api/") {
                Some("REST")
            } else {
                coffer_console::is_console_path(&path).then_some("Console")
            };
            let (operation, resp) = if let Some(front) = front {
                let mut req = req;
                req.extensions_mut().insert(coffer_gateway::RequestInfo {
                    request_id: id.clone(),
                    source: String::new(),
                    read_only_endpoint: st.read_only,
                });
                let Ok(mut resp) = self.web.clone().oneshot(req).await;
                if let Ok(v) = HeaderValue::from_str(&id) {
                    resp.headers_mut().insert(X_REQUEST_ID, v);
                }
                (front.to_owned(), resp)
            } else if coffer_s3_api::sts::is_sts_request(&method, req.uri(), req.headers()) {
                ("AssumeRoleWithWebIdentity".to_owned(), sts(st, req, &id).await)
            } else {
                self.s3_request(req, &id).await
            };
            let mut resp = with_retry_after(resp);
            if unanswered_expect {
                // The final answer goes without a `100 Continue` (there is no body to wait for).
                // botocore then keeps that answer's status line for its next request on the
                // connection and reads the next answer's headers as lost (an empty ETag);
                // closing the connection here, as Go's net/http does, keeps every client sane.
                resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            let status = resp.status().as_u16();
            let elapsed = start.elapsed();
            st.metrics.observe(&operation, status, elapsed);
            tracing::info!(
                %method,
                path = %loggable(&path),
                operation,
                status,
                duration_ms = elapsed.as_secs_f64() * 1000.0,
                "request"
            );
            let metrics = st.metrics.clone();
            resp.map(|b| Body::new(Counted::new(b, move |n| metrics.add_bytes_out(n), None)))
        })
        .await
    }
}

/// Does this request ask for `100 Continue` although it has no body (`Content-Length: 0`, or
/// neither a length nor a chunked body)? The server answers it without a `100`.
fn expects_continue_without_body(headers: &HeaderMap) -> bool {
    let expects = headers
        .get(header::EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("100-continue"));
    if !expects {
        return false;
    }
    match headers.get(header::CONTENT_LENGTH) {
        Some(len) => len.to_str().ok().and_then(|l| l.trim().parse::<u64>().ok()) == Some(0),
        None => !headers.contains_key(header::TRANSFER_ENCODING),
    }
}

/// Every `503` of the S3, STS and REST front ends says when to retry (the metadata store
/// or a tier is down; the mappings set it, this catches any other).
fn with_retry_after(mut resp: Response) -> Response {
    if resp.status() == StatusCode::SERVICE_UNAVAILABLE && !resp.headers().contains_key(header::RETRY_AFTER) {
        resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(coffer_s3_api::error::RETRY_AFTER_SECONDS));
    }
    resp
}

/// An S3 request: SigV2 and POST forms refused here, the rest through s3s; error bodies
/// completed; the connection closed after a refusal that left the body unread. Returns the
/// S3 operation's name and the response.
impl FrontParts {
    async fn s3_request(&self, mut req: Request, id: &str) -> (String, Response) {
        let st = &self.st;
        let method = req.method().clone();
        let op = OperationName::default();
        req.extensions_mut().insert(op.clone());
        let source = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| address_text(&c.0))
            .unwrap_or_default();
        req.extensions_mut().insert(coffer_gateway::RequestInfo {
            request_id: id.to_owned(),
            source,
            read_only_endpoint: st.read_only,
        });
        let has_body = declares_body(req.headers());
        let body_done = Arc::new(AtomicBool::new(false));
        let mut resp = match refuse_unsupported(req.method(), req.uri(), req.headers()) {
            Err(e) => xml_error(&e, id),
            Ok(()) => {
                let metrics = st.metrics.clone();
                let done = body_done.clone();
                let req = req.map(|b| {
                    s3s::Body::http_body_unsync(Counted::new(b, move |n| metrics.add_bytes_in(n), Some(done)))
                });
                let mut resp = match self.s3.call(req).await {
                    Ok(resp) => resp.map(Body::new),
                    Err(e) => s3_service_error(&e),
                };
                coffer_console::sandbox(&mut resp);
                resp
            }
        };
        if resp.status().as_u16() >= 400 {
            if method != http::Method::HEAD {
                resp = complete_error(resp, id).await;
            }
            // Refused before its body was read (often without a `100 Continue`, so the client
            // never sent it): close the connection rather than read the next request as this
            // one's body.
            if has_body && !body_done.load(Ordering::Acquire) {
                resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
        }
        if let Ok(v) = HeaderValue::from_str(id) {
            resp.headers_mut().insert(X_AMZ_REQUEST_ID, v);
        }
        (op.get().unwrap_or_else(|| "Unknown".to_owned()), resp)
    }
}

/// An STS call: read its (small) form body, answer in the STS XML format.
async fn sts(st: &AppState, req: Request, request_id: &str) -> Response {
    let query = req.uri().query().map(str::to_owned);
    let body = match axum::body::to_bytes(req.into_body(), coffer_s3_api::sts::MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "request too large\n").into_response(),
    };
    let (status, xml) = coffer_s3_api::sts::handle(&st.gateway, query.as_deref(), &body, request_id).await;
    let mut resp = (status, [(header::CONTENT_TYPE, "text/xml")], xml).into_response();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert(X_AMZN_REQUESTID, v);
    }
    resp
}

/// Give an S3 error document the `Message` and `RequestId` AWS always sends (s3s omits
/// them for the errors it raises itself). Error bodies are small; anything else passes.
async fn complete_error(resp: Response, request_id: &str) -> Response {
    const LIMIT: usize = 64 * 1024;
    let (mut parts, body) = resp.into_parts();
    let is_xml =
        parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("xml"));
    if !is_xml || body.size_hint().upper().is_none_or(|n| n as usize > LIMIT) {
        return Response::from_parts(parts, body);
    }
    let bytes = match axum::body::to_bytes(body, LIMIT).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read an error body");
            return Response::from_parts(parts, Body::empty());
        }
    };
    let completed = std::str::from_utf8(&bytes).ok().and_then(|s| coffer_s3_api::complete_error_body(s, request_id));
    let body = match completed {
        Some(text) => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Body::from(text)
        }
        None => Body::from(bytes),
    };
    Response::from_parts(parts, body)
}

/// An S3 XML error answered by this layer (s3s answers all others).
fn xml_error(e: &s3s::S3Error, request_id: &str) -> Response {
    let esc = |s: &str| s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;");
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message><RequestId>{}</RequestId></Error>",
        e.code().as_str(),
        esc(e.message().unwrap_or("")),
        request_id
    );
    let status = e.status_code().unwrap_or(StatusCode::BAD_REQUEST);
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

/// Does the request announce a body (a non-zero `Content-Length`, or chunked)?
fn declares_body(h: &http::HeaderMap) -> bool {
    h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0")
}

/// A body that reports the size of every data frame as it passes, and optionally when it
/// has been read to the end.
struct Counted {
    inner: Body,
    on_data: Box<dyn Fn(u64) + Send + Sync>,
    done: Option<Arc<AtomicBool>>,
}

impl Counted {
    fn new(inner: Body, on_data: impl Fn(u64) + Send + Sync + 'static, done: Option<Arc<AtomicBool>>) -> Self {
        Self { inner, on_data: Box::new(on_data), done }
    }
}

impl HttpBody for Counted {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    (this.on_data)(data.len() as u64);
                }
            }
            Poll::Ready(None) => {
                if let Some(d) = &this.done {
                    d.store(true, Ordering::Release);
                }
            }
            _ => {}
        }
        polled
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
    use super::*;

    #[test]
    fn request_ids_are_sixteen_hex_digits_and_never_repeat() {
        let ids: Vec<String> = (0..100_000).map(|_| request_id()).collect();
        assert!(
            ids.iter().all(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)))
        );
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        // Consecutive ids share no visible pattern: about half their bits differ.
        let differing =
            |a: &str, b: &str| (u64::from_str_radix(a, 16).unwrap() ^ u64::from_str_radix(b, 16).unwrap()).count_ones();
        let mean = ids.windows(2).map(|w| differing(&w[0], &w[1]) as f64).sum::<f64>() / (ids.len() - 1) as f64;
        assert!((28.0..36.0).contains(&mean), "{mean}");
    }

    #[test]
    fn client_addresses_read_as_socket_addr_displays_them() {
        for a in ["0.0.0.0:0", "127.0.0.1:8080", "255.255.255.255:65535", "10.20.3.4:9", "[::1]:443", "[fe80::1]:1"] {
            let addr: std::net::SocketAddr = a.parse().unwrap();
            assert_eq!(address_text(&addr), addr.to_string());
            assert_eq!(address_text(&addr), a);
        }
    }

    #[test]
    fn an_expect_without_a_body_is_recognised() {
        let h = |pairs: &[(&str, &str)]| {
            let mut m = HeaderMap::new();
            for (k, v) in pairs {
                m.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
            }
            m
        };
        assert!(expects_continue_without_body(&h(&[("expect", "100-continue"), ("content-length", "0")])));
        assert!(expects_continue_without_body(&h(&[("expect", "100-Continue")])));
        assert!(!expects_continue_without_body(&h(&[("expect", "100-continue"), ("content-length", "5")])));
        assert!(!expects_continue_without_body(&h(&[("expect", "100-continue"), ("transfer-encoding", "chunked")])));
        assert!(!expects_continue_without_body(&h(&[("content-length", "0")])));
    }

    #[test]
    fn every_503_says_when_to_retry() {
        let resp = with_retry_after((StatusCode::SERVICE_UNAVAILABLE, "x").into_response());
        assert_eq!(resp.headers()[header::RETRY_AFTER], "1");
        let resp = (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "7")], "x").into_response();
        assert_eq!(with_retry_after(resp).headers()[header::RETRY_AFTER], "7");
        let resp = with_retry_after((StatusCode::INTERNAL_SERVER_ERROR, "x").into_response());
        assert!(!resp.headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn share_tokens_are_not_logged() {
        assert_eq!(loggable("/api/v1/share/SLABC.c2VjcmV0"), "/api/v1/share/SLABC.***");
        assert_eq!(loggable("/api/v1/share/SLABC.c2VjcmV0/a/b.txt"), "/api/v1/share/SLABC.***/a/b.txt");
        assert_eq!(loggable("/api/v1/share/garbage"), "/api/v1/share/garbage.***");
        assert_eq!(loggable("/bucket/key"), "/bucket/key");
        assert_eq!(loggable("/api/v1/buckets"), "/api/v1/buckets");
    }
}
