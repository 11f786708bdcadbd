//! The HTTP transport of the cloud stores: an `object_store` [`HttpConnector`] built on
//! hyper-util's pooled client and rustls with the *ring* provider (no aws-lc, no reqwest).
//!
//! What it takes from [`ClientOptions`]:
//! - `allow_http`: plain `http://` URLs are refused unless set (emulators, MinIO on a
//!   private network);
//! - `connect_timeout`: the TCP connect;
//! - `timeout`: until the response *headers* have arrived. It does not bound the body:
//!   a multi-gigabyte GET may stream for as long as data keeps coming;
//! - `read_timeout`: the longest silence between two body chunks (off unless set);
//! - `pool_idle_timeout`, `pool_max_idle_per_host`: the connection pool;
//! - `user_agent` and the default headers.
//!
//! Proxies and invalid certificates are not supported: asking for them is an error rather
//! than a silent downgrade. Server certificates are checked against the Mozilla roots
//! (`webpki-roots`), so the binary carries its trust store and needs no system CA bundle.

use std::error::Error as StdError;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::header::{HeaderValue, USER_AGENT};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector as TcpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpRequestBody, HttpResponse, HttpResponseBody,
    HttpService,
};
use object_store::{ClientConfigKey, ClientOptions};

/// The connector handed to the `object_store` builders.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct HyperConnector;

impl HttpConnector for HyperConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(HyperService::new(options)?))
    }
}

/// One pooled client with the settings of one [`ClientOptions`].
pub(crate) struct HyperService {
    client: Client<HttpsConnector<TcpConnector>, HttpRequestBody>,
    allow_http: bool,
    timeout: Option<Duration>,
    read_timeout: Option<Duration>,
    user_agent: HeaderValue,
    default_headers: http::HeaderMap,
}

impl std::fmt::Debug for HyperService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HyperService")
            .field("allow_http", &self.allow_http)
            .field("timeout", &self.timeout)
            .field("read_timeout", &self.read_timeout)
            .finish_non_exhaustive()
    }
}

fn config_error(message: String) -> object_store::Error {
    object_store::Error::Generic { store: "coffer-http", source: message.into() }
}

/// A duration option, as `object_store` formats it (humantime).
fn duration(options: &ClientOptions, key: ClientConfigKey) -> object_store::Result<Option<Duration>> {
    match options.get_config_value(&key) {
        None => Ok(None),
        Some(v) => humantime::parse_duration(&v)
            .map(Some)
            .map_err(|e| config_error(format!("invalid {} {v:?}: {e}", key.as_ref()))),
    }
}

fn flag(options: &ClientOptions, key: ClientConfigKey) -> bool {
    options
        .get_config_value(&key)
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes" | "on"))
}

/// The rustls configuration: TLS 1.2 and 1.3 with the ring provider, Mozilla's roots.
pub(crate) fn tls_config() -> object_store::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error(format!("TLS configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

impl HyperService {
    pub(crate) fn new(options: &ClientOptions) -> object_store::Result<Self> {
        if options.get_config_value(&ClientConfigKey::ProxyUrl).is_some() {
            return Err(config_error("HTTP proxies are not supported by coffer's connector".to_owned()));
        }
        if flag(options, ClientConfigKey::AllowInvalidCertificates) {
            return Err(config_error("allow_invalid_certificates is not supported by coffer's connector".to_owned()));
        }
        let mut tcp = TcpConnector::new();
        tcp.enforce_http(false);
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(duration(options, ClientConfigKey::ConnectTimeout)?);
        tcp.set_keepalive(Some(Duration::from_secs(60)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config()?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp);
        let mut builder = Client::builder(TokioExecutor::new());
        builder.pool_timer(TokioTimer::new());
        builder
            .pool_idle_timeout(duration(options, ClientConfigKey::PoolIdleTimeout)?.unwrap_or(Duration::from_secs(90)));
        if let Some(max) = options.get_config_value(&ClientConfigKey::PoolMaxIdlePerHost) {
            let max = max.parse().map_err(|_| config_error(format!("invalid pool_max_idle_per_host {max:?}")))?;
            builder.pool_max_idle_per_host(max);
        }
        let user_agent = options
            .get_config_value(&ClientConfigKey::UserAgent)
            .and_then(|v| HeaderValue::from_str(&v).ok())
            .unwrap_or_else(|| HeaderValue::from_static(concat!("coffer/", env!("CARGO_PKG_VERSION"))));
        Ok(HyperService {
            client: builder.build(https),
            allow_http: flag(options, ClientConfigKey::AllowHttp),
            timeout: duration(options, ClientConfigKey::Timeout)?,
            read_timeout: duration(options, ClientConfigKey::ReadTimeout)?,
            user_agent,
            default_headers: options.get_default_headers().cloned().unwrap_or_default(),
        })
    }
}

/// A transport error of a kind `object_store`'s retry logic understands.
#[derive(Debug)]
struct TransportError(String);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for TransportError {}

fn http_error(kind: HttpErrorKind, message: impl Into<String>) -> HttpError {
    HttpError::new(kind, TransportError(message.into()))
}

/// Classify an error of the legacy client (connect, request or body).
fn classify(e: &(dyn StdError + 'static)) -> HttpErrorKind {
    let mut current: Option<&(dyn StdError + 'static)> = Some(e);
    let mut kind = HttpErrorKind::Unknown;
    while let Some(err) = current {
        if let Some(e) = err.downcast_ref::<hyper_util::client::legacy::Error>()
            && e.is_connect()
        {
            return HttpErrorKind::Connect;
        }
        if let Some(e) = err.downcast_ref::<hyper::Error>() {
            if e.is_timeout() {
                return HttpErrorKind::Timeout;
            }
            if e.is_incomplete_message() || e.is_closed() || e.is_canceled() || e.is_body_write_aborted() {
                kind = HttpErrorKind::Interrupted;
            } else if e.is_parse() || e.is_parse_status() {
                kind = HttpErrorKind::Decode;
            } else if kind == HttpErrorKind::Unknown {
                kind = HttpErrorKind::Request;
            }
        }
        if let Some(e) = err.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            match e.kind() {
                TimedOut => return HttpErrorKind::Timeout,
                ConnectionRefused | NotConnected | AddrNotAvailable => return HttpErrorKind::Connect,
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof => kind = HttpErrorKind::Interrupted,
                _ => {}
            }
        }
        current = err.source();
    }
    kind
}

fn hyper_error(e: impl StdError + Send + Sync + 'static) -> HttpError {
    let kind = classify(&e);
    HttpError::new(kind, e)
}

#[async_trait]
impl HttpService for HyperService {
    async fn call(&self, mut req: HttpRequest) -> Result<HttpResponse, HttpError> {
        match req.uri().scheme_str() {
            Some("https") => {}
            Some("http") if self.allow_http => {}
            Some("http") => {
                return Err(http_error(
                    HttpErrorKind::Unknown,
                    "plain http is not allowed for this store (set allow_http for an emulator)",
                ));
            }
            other => return Err(http_error(HttpErrorKind::Unknown, format!("unsupported URL scheme {other:?}"))),
        }
        let headers = req.headers_mut();
        for (name, value) in &self.default_headers {
            if !headers.contains_key(name) {
                headers.insert(name.clone(), value.clone());
            }
        }
        if !headers.contains_key(USER_AGENT) {
            headers.insert(USER_AGENT, self.user_agent.clone());
        }
        let pending = self.client.request(req);
        let response = match self.timeout {
            Some(limit) => match tokio::time::timeout(limit, pending).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(http_error(HttpErrorKind::Timeout, format!("no response within {limit:?}")));
                }
            },
            None => pending.await,
        }
        .map_err(hyper_error)?;
        let (parts, body) = response.into_parts();
        let body = body.map_err(hyper_error);
        let body = match self.read_timeout {
            Some(limit) => HttpResponseBody::new(IdleTimeout::new(body, limit)),
            None => HttpResponseBody::new(body),
        };
        Ok(HttpResponse::from_parts(parts, body))
    }
}

/// A response body that fails when no chunk arrives for `limit` while it is being read
/// (the time a slow reader takes between two reads does not count).
struct IdleTimeout<B> {
    inner: B,
    limit: Duration,
    deadline: Pin<Box<tokio::time::Sleep>>,
    /// Whether the last poll found nothing: the silence is being timed.
    waiting: bool,
}

impl<B> IdleTimeout<B> {
    fn new(inner: B, limit: Duration) -> Self {
        IdleTimeout { inner, limit, deadline: Box::pin(tokio::time::sleep(limit)), waiting: false }
    }
}

impl<B> Body for IdleTimeout<B>
where
    B: Body<Data = Bytes, Error = HttpError> + Unpin,
{
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.waiting = false;
                Poll::Ready(frame)
            }
            Poll::Pending => {
                if !this.waiting {
                    this.waiting = true;
                    let deadline = tokio::time::Instant::now() + this.limit;
                    this.deadline.as_mut().reset(deadline);
                }
                match this.deadline.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(http_error(
                        HttpErrorKind::Timeout,
                        format!("the response body stalled for {:?}", this.limit),
                    )))),
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
    use super::*;

    #[tokio::test]
    async fn plain_http_needs_allow_http() {
        let service = HyperService::new(&ClientOptions::new()).unwrap();
        let req = http::Request::builder().uri("http://127.0.0.1:9/").body(HttpRequestBody::empty()).unwrap();
        let err = service.call(req).await.unwrap_err();
        assert!(err.to_string().contains("allow_http"), "{err}");
    }

    #[tokio::test]
    async fn connection_refused_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let options = ClientOptions::new().with_allow_http(true);
        let service = HyperService::new(&options).unwrap();
        let req =
            http::Request::builder().uri(format!("http://127.0.0.1:{port}/")).body(HttpRequestBody::empty()).unwrap();
        let err = service.call(req).await.unwrap_err();
        assert_eq!(err.kind(), HttpErrorKind::Connect, "{err}");
    }

    #[tokio::test]
    async fn headers_are_bounded_by_the_timeout() {
        // A server that accepts and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                let (s, _) = listener.accept().await.unwrap();
                held.push(s);
            }
        });
        let options = ClientOptions::new().with_allow_http(true).with_timeout(Duration::from_millis(200));
        let service = HyperService::new(&options).unwrap();
        let req =
            http::Request::builder().uri(format!("http://127.0.0.1:{port}/")).body(HttpRequestBody::empty()).unwrap();
        let err = service.call(req).await.unwrap_err();
        assert_eq!(err.kind(), HttpErrorKind::Timeout, "{err}");
        server.abort();
    }

    #[tokio::test]
    async fn stalled_bodies_time_out_but_slow_readers_do_not() {
        // A server that sends headers and one chunk, then nothing.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = tokio::io::AsyncReadExt::read(&mut s, &mut buf).await;
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nhello").await.unwrap();
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let options = ClientOptions::new().with_allow_http(true).with_read_timeout(Duration::from_millis(300));
        let service = HyperService::new(&options).unwrap();
        let req =
            http::Request::builder().uri(format!("http://127.0.0.1:{port}/")).body(HttpRequestBody::empty()).unwrap();
        let response = service.call(req).await.unwrap();
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap();
        assert_eq!(first.into_data().unwrap(), "hello");
        // A reader pausing longer than the limit is not a stall.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let started = std::time::Instant::now();
        let err = body.frame().await.unwrap().unwrap_err();
        assert_eq!(err.kind(), HttpErrorKind::Timeout, "{err}");
        assert!(started.elapsed() >= Duration::from_millis(250), "timed from the read, not the pause");
        server.abort();
    }

    #[test]
    fn proxies_are_refused() {
        let options = ClientOptions::new().with_proxy_url("http://proxy:3128");
        assert!(HyperService::new(&options).is_err());
    }
}
