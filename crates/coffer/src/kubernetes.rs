//! `coffer controller` and `coffer webhook`: the Kubernetes side, built from the same
//! configuration as `serve` (the `[kubernetes]` section, the tiers, the database).
//!
//! Both reach the API server the way kube-rs infers it: the pod's service account in a
//! cluster, else `$KUBECONFIG` / `~/.kube/config`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use clap::Args;
use coffer_k8s::controller::Metrics;
use coffer_k8s::webhook::{KubeLookup, TlsFiles};
use tokio::net::TcpListener;

use crate::config::{Config, GlobalArgs};
use crate::{logging, wiring};

/// Flags of `coffer controller`.
#[derive(Args, Debug, Clone)]
pub struct ControllerArgs {
    /// Where `/healthz` and `/metrics` are served.
    #[arg(long, env = "COFFER_METRICS_LISTEN", default_value = "127.0.0.1:8080")]
    pub metrics_listen: SocketAddr,
    /// Log format: json or text.
    #[arg(long, env = "COFFER_LOG_FORMAT", value_enum)]
    pub log_format: Option<crate::config::LogFormat>,
}

/// Flags of `coffer webhook`.
#[derive(Args, Debug, Clone)]
pub struct WebhookArgs {
    /// The address to listen on.
    #[arg(long, env = "COFFER_WEBHOOK_LISTEN", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,
    /// The certificate chain (PEM); reloaded when it changes.
    #[arg(long, env = "COFFER_TLS_CERT", default_value = "/certs/tls.crt")]
    pub tls_cert: PathBuf,
    /// Its private key (PEM); reloaded when it changes.
    #[arg(long, env = "COFFER_TLS_KEY", default_value = "/certs/tls.key")]
    pub tls_key: PathBuf,
    /// Serve plain HTTP (tests, or behind a TLS-terminating proxy; the API server itself
    /// only calls webhooks over HTTPS).
    #[arg(long)]
    pub insecure_http: bool,
    /// Log format: json or text.
    #[arg(long, env = "COFFER_LOG_FORMAT", value_enum)]
    pub log_format: Option<crate::config::LogFormat>,
}

async fn kube_client() -> anyhow::Result<kube::Client> {
    kube::Client::try_default().await.context("connecting to the Kubernetes API (service account or kubeconfig)")
}

/// `coffer controller`.
pub async fn controller(global: &GlobalArgs, args: &ControllerArgs) -> anyhow::Result<()> {
    let cfg = Config::load(global, None)?;
    logging::init(args.log_format.unwrap_or(cfg.log_format));
    let settings = cfg.kubernetes.clone();
    if settings.tiers.is_empty() {
        tracing::warn!("[kubernetes.tiers] is empty: profiles will get no buckets or volumes");
    }
    let gateway = wiring::gateway(&cfg, cfg.migrate_on_start).await?;
    let client = kube_client().await?;
    let metrics = Arc::new(Metrics::default());
    let listener =
        TcpListener::bind(args.metrics_listen).await.with_context(|| format!("binding {}", args.metrics_listen))?;
    tracing::info!(address = %listener.local_addr()?, "controller metrics listening");
    let served = metrics.clone();
    let app = axum::Router::new().route("/healthz", get(|| async { "ok\n" })).route(
        "/metrics",
        get(move || {
            let m = served.clone();
            async move { ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], m.render()).into_response() }
        }),
    );
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let http = tokio::spawn(async move {
        let mut rx = stop_rx;
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = rx.wait_for(|v| *v).await;
            })
            .await
    });
    // Changes made by `coffer admin` and other replicas reach this process's cache too.
    let watcher_gateway = gateway.clone();
    let mut watch_stop = stop_tx.subscribe();
    let watcher = tokio::spawn(watcher_gateway.watch_changes(async move {
        let _ = watch_stop.wait_for(|v| *v).await;
    }));
    coffer_k8s::controller::run(client, gateway, settings, metrics, crate::server::shutdown_signal()).await;
    let _ = stop_tx.send(true);
    let _ = watcher.await;
    http.await.context("the metrics server")?.context("serving metrics")?;
    Ok(())
}

/// `coffer webhook`.
pub async fn webhook(global: &GlobalArgs, args: &WebhookArgs) -> anyhow::Result<()> {
    let cfg = Config::load(global, None)?;
    logging::init(args.log_format.unwrap_or(cfg.log_format));
    let client = kube_client().await?;
    let listener = TcpListener::bind(args.listen).await.with_context(|| format!("binding {}", args.listen))?;
    let tls = (!args.insecure_http).then(|| TlsFiles::new(&args.tls_cert, &args.tls_key));
    coffer_k8s::webhook::serve(
        listener,
        tls,
        Arc::new(KubeLookup::new(client)),
        cfg.kubernetes.clone(),
        crate::server::shutdown_signal(),
    )
    .await
}
