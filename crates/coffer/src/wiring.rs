//! Building the parts from the configuration: the metadata store, the server key, the
//! tiers and the gateway. `serve`, `migrate` and `admin` all start here, so they always
//! agree on where things are.

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context;
use coffer_backend::{Backend, CloudBackend, FsBackend};
use coffer_gateway::Gateway;
use coffer_identity::ServerKey;
use coffer_metadata::MetadataStore;

use crate::config::{Config, GlobalArgs, TierBackend, ensure_dir};

/// Open the store the configuration names (creating the data directory for SQLite).
pub async fn open_store(cfg: &Config) -> anyhow::Result<Arc<dyn MetadataStore>> {
    if cfg.database_url.starts_with("sqlite:") {
        ensure_dir(&cfg.data_dir)?;
    }
    coffer_metadata::open(&cfg.database_url)
        .await
        .with_context(|| format!("opening the metadata store {}", cfg.database_url_redacted()))
}

/// The server key: `COFFER_SERVER_KEY` (base64), else the key file, created on first use.
pub fn server_key(cfg: &Config) -> anyhow::Result<ServerKey> {
    if let Ok(v) = std::env::var("COFFER_SERVER_KEY") {
        return ServerKey::from_base64(&v).context("COFFER_SERVER_KEY");
    }
    let path = &cfg.server_key_file;
    match std::fs::read_to_string(path) {
        Ok(s) => ServerKey::from_base64(&s).with_context(|| format!("reading the server key {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = ServerKey::generate();
            if let Some(dir) = path.parent() {
                ensure_dir(dir)?;
            }
            write_private(path, &key.to_base64())
                .with_context(|| format!("writing the new server key {}", path.display()))?;
            tracing::info!(path = %path.display(), "generated a new server key");
            Ok(key)
        }
        Err(e) => Err(e).with_context(|| format!("reading the server key {}", path.display())),
    }
}

/// Create a file readable by its owner only; never overwrite one.
fn write_private(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

/// The tiers' backends.
pub async fn tiers(cfg: &Config) -> anyhow::Result<BTreeMap<String, Arc<dyn Backend>>> {
    let mut out: BTreeMap<String, Arc<dyn Backend>> = BTreeMap::new();
    for (name, tier) in &cfg.tiers {
        let backend: Arc<dyn Backend> = match &tier.backend {
            TierBackend::Filesystem { path, io } => {
                let fs = FsBackend::with_io(path.clone(), *io)
                    .await
                    .with_context(|| format!("opening tier {name} at {}", path.display()))?;
                tracing::info!(tier = %name, path = %path.display(), inline_io = fs.io_inline(), "filesystem tier");
                Arc::new(fs)
            }
            TierBackend::S3(c) => Arc::new(CloudBackend::s3(name, c).with_context(|| format!("tier {name}"))?),
            TierBackend::Azure(c) => Arc::new(CloudBackend::azure(name, c).with_context(|| format!("tier {name}"))?),
            TierBackend::Gcs(c) => Arc::new(CloudBackend::gcs(name, c).with_context(|| format!("tier {name}"))?),
        };
        out.insert(name.clone(), backend);
    }
    Ok(out)
}

/// Everything `serve` and `admin` need: the configuration and a gateway over it.
pub async fn gateway(cfg: &Config, migrate: bool) -> anyhow::Result<Arc<Gateway>> {
    let store = open_store(cfg).await?;
    if migrate {
        let applied = store.migrate().await.context("applying migrations")?;
        for m in applied {
            tracing::info!(migration = %m, "applied migration");
        }
    }
    let key = server_key(cfg)?;
    let tiers = tiers(cfg).await?;
    let mut gateway =
        Gateway::new(store, tiers, cfg.default_tier.clone(), key).with_max_object_size(cfg.max_object_size);
    gateway = gateway.with_clearances(coffer_gateway::sessions::Clearances {
        groups: cfg.clearances.clone(),
        namespaces: cfg.namespace_clearances.clone(),
        admin_groups: cfg.admin_groups.iter().cloned().collect(),
    });
    gateway = gateway.with_link_rules(cfg.link_rules.clone()).with_home_bucket(cfg.home_bucket.clone());
    if let Some(p) = &cfg.policy {
        let policy = coffer_gateway::policy::Policy::load(p.clone()).context("loading the [policy]")?;
        tracing::info!(paths = ?p.paths, buckets = ?p.buckets, "policy loaded");
        gateway = gateway.with_policy(Arc::new(policy));
    }
    for (name, tier) in &cfg.tiers {
        let classifications = match &tier.classifications {
            Some(list) => Some(
                list.iter()
                    .map(|c| coffer_core::Classification::parse(c))
                    .collect::<Result<_, _>>()
                    .context("tiers")?,
            ),
            None => None,
        };
        gateway =
            gateway.with_tier_rules(name, coffer_gateway::TierRules { classifications, read_only: tier.read_only });
    }
    if !cfg.oidc_issuers.is_empty() {
        gateway = gateway.with_federation(coffer_gateway::sessions::Federation {
            verifier: Arc::new(coffer_identity::OidcVerifier::new(cfg.oidc_issuers.clone())),
            default_duration: cfg.sts_default_duration,
            max_duration: cfg.sts_max_duration,
        });
    }
    if let Some(template) = &cfg.personal_bucket_template {
        gateway =
            gateway.with_personal_buckets(coffer_gateway::personal::PersonalBuckets { template: template.clone() });
    }
    Ok(Arc::new(gateway))
}

/// The web console (`/console`): OpenID Connect sign-in with `[console]`, the auth sidecar's
/// sign-in with `[trusted_headers]`, else a page saying how to enable it.
pub fn console(cfg: &Config, gateway: &Gateway) -> anyhow::Result<coffer_console::Console> {
    if let Some(path) = cfg.console.as_ref().and_then(|c| c.client_secret_file.as_ref()) {
        std::fs::metadata(path).with_context(|| format!("[console] client_secret_file {}", path.display()))?;
    }
    let console = coffer_console::Console::new(coffer_console::ConsoleParts {
        settings: cfg.console.clone(),
        trusted_headers: cfg.trusted_headers.is_some(),
        public_url: cfg.public_url.clone(),
        server_key: gateway.server_key().clone(),
        verifier: gateway.token_verifier(),
    })
    .map_err(|e| anyhow::anyhow!(e))?;
    if let Some(c) = &cfg.console {
        tracing::info!(issuer = %c.issuer, client_id = %c.client_id, "web console: sign-in with OpenID Connect");
    } else if console.is_enabled() {
        tracing::info!("web console: signed in by the auth proxy's headers");
    }
    Ok(console)
}

/// `coffer migrate`.
pub async fn migrate(global: &GlobalArgs) -> anyhow::Result<()> {
    let cfg = Config::load(global, None)?;
    let store = open_store(&cfg).await?;
    let applied = store.migrate().await.context("applying migrations")?;
    if applied.is_empty() {
        println!("the database is up to date");
    }
    for m in applied {
        println!("applied {m}");
    }
    Ok(())
}
