//! The webhook's HTTP(S) server: `POST /validate`, `POST /mutate`, `GET /healthz`.
//!
//! HTTP/1.1 and HTTP/2 (ALPN) over rustls with the ring provider; the certificate comes from
//! [`ReloadingCert`], so a renewed cert-manager Secret is served without a restart. Each
//! connection's TLS handshake runs in its own task (a slow client holds up no one), bounded by
//! [`HANDSHAKE_TIMEOUT`]. On shutdown the listener closes and open connections get
//! [`DRAIN_TIMEOUT`] to finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::{Answer, Lookup, ReloadingCert, TlsFiles, review_mutate, review_validate};
use crate::settings::Settings;

/// The largest AdmissionReview accepted (an object and its old version, each up to the API
/// server's ~1.5 MiB).
pub const MAX_BODY: usize = 8 * 1024 * 1024;
/// How long a client has to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long open connections may run on after shutdown is asked for.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
struct AppState {
    lookup: Arc<dyn Lookup>,
    settings: Arc<Settings>,
}

/// The webhook's routes, without transport (for serving, or for in-process tests).
pub fn router(lookup: Arc<dyn Lookup>, settings: Settings) -> Router {
    let state = AppState { lookup, settings: Arc::new(settings) };
    Router::new()
        .route("/validate", post(validate))
        .route("/mutate", post(mutate))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

fn respond(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(answer.body)).into_response()
}

async fn validate(State(state): State<AppState>, body: Bytes) -> Response {
    respond(review_validate(&body, state.lookup.as_ref(), &state.settings).await)
}

async fn mutate(State(state): State<AppState>, body: Bytes) -> Response {
    respond(review_mutate(&body, state.lookup.as_ref(), &state.settings).await)
}

fn tls_acceptor(files: TlsFiles) -> anyhow::Result<TlsAcceptor> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver = ReloadingCert::load(files, provider.clone())?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(resolver));
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serve the webhook on `listener` until `shutdown` completes.
///
/// `tls`: the certificate files (see [`TlsFiles`]; they must load now, and are reloaded when
/// they change); `None` serves plain HTTP (tests, or behind a TLS-terminating proxy — the API
/// server itself only calls webhooks over HTTPS). `lookup` reads the volumes and claims the
/// rules need ([`super::KubeLookup`] in a cluster). Bind to port 0 in tests and read the
/// address from the listener.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsFiles>,
    lookup: Arc<dyn Lookup>,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let acceptor = tls.map(tls_acceptor).transpose()?;
    let service = TowerToHyperService::new(router(lookup, settings));
    let builder = auto::Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, tls = acceptor.is_some(), "coffer webhook listening");
    }
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!("webhook accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let (service, builder, watcher, acceptor) =
            (service.clone(), builder.clone(), graceful.watcher(), acceptor.clone());
        tokio::spawn(async move {
            let result = match acceptor {
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, "webhook TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "webhook TLS handshake timed out");
                        return;
                    }
                },
                None => watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await,
            };
            if let Err(e) = result {
                tracing::debug!(%peer, "webhook connection ended: {e}");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("webhook connections still open after {DRAIN_TIMEOUT:?}; closing"),
    }
    Ok(())
}
