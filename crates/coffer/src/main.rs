//! # coffer
//!
//! The `coffer` binary: per-user and per-project object storage for multi-tenant
//! Kubernetes data platforms, behind an S3 API.
//!
//! ## Layout
//! - this file — the command line (`serve`, `migrate`, `admin …`, `openapi`, `controller`,
//!   `webhook`) and dispatch.
//! - [`config`] — the configuration tree: TOML file → `COFFER_*` environment → flags.
//! - [`wiring`] — opening the store, the tiers and the server key; building the gateway.
//! - [`server`] — the HTTP server: S3 at `/`, the REST API under `/api/v1`, STS,
//!   `/healthz`, `/readyz`, `/metrics`; request
//!   ids, metrics and logs around every request; graceful shutdown.
//! - [`listener`] — accepting connections and serving HTTP/1.1 and HTTP/2 on them, with the
//!   limits on slow and oversized requests (header timeout, head size, stalled bodies,
//!   connection cap).
//! - [`metrics`] — the Prometheus registry (requests, bytes, latency histogram).
//! - [`admin`] — `coffer admin user|bucket|grant|key|explain`.
//! - [`kubernetes`] — `coffer controller` and `coffer webhook`.
//! - [`logging`] — structured logs, JSON or text, batched on their way to stderr.

mod admin;
mod config;
mod kubernetes;
mod listener;
mod logging;
mod metrics;
mod server;
mod wiring;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::GlobalArgs;

/// coffer — object storage for every user and project of a data platform, behind an S3 API.
#[derive(Parser, Debug)]
#[command(name = "coffer", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway: the S3 API, the REST API, STS, health and metrics on one listener.
    Serve(config::ServeArgs),
    /// Apply the embedded database migrations and exit.
    Migrate,
    /// Manage users, buckets, grants and access keys directly in the configured store.
    Admin(admin::AdminArgs),
    /// Print the REST API's OpenAPI document (the one served at /api/v1/openapi.json).
    Openapi,
    /// Reconcile Kubeflow profiles into buckets, CSI credentials, PVs and PVCs.
    Controller(kubernetes::ControllerArgs),
    /// Serve the admission webhooks (PVC binding, pod classification, automount injection).
    Webhook(kubernetes::WebhookArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(args) => server::serve(&cli.global, &args).await,
            Command::Migrate => wiring::migrate(&cli.global).await,
            Command::Admin(args) => admin::run(&cli.global, args).await,
            Command::Controller(args) => kubernetes::controller(&cli.global, &args).await,
            Command::Webhook(args) => kubernetes::webhook(&cli.global, &args).await,
            Command::Openapi => {
                println!("{}", coffer_rest_api::openapi().to_pretty_json()?);
                Ok(())
            }
        }
    });
    logging::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
