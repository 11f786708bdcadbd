//! Configuration: one serde tree read from a TOML file (`--config`), overridden by
//! `COFFER_*` environment variables and then by flags (clap reads both), validated once at
//! start-up. With no file at all coffer runs on its embedded defaults: SQLite and objects
//! under `./coffer-data`, listening on `127.0.0.1:9000`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde::Deserialize;

/// Flags shared by every subcommand: where the configuration and the data are.
#[derive(Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// A TOML configuration file.
    #[arg(long, global = true, env = "COFFER_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The data directory: the SQLite database, the server key, the objects of the default tier.
    #[arg(long, global = true, env = "COFFER_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// The metadata database: postgres://… or sqlite://PATH (default sqlite://<data-dir>/coffer.db).
    #[arg(long, global = true, env = "COFFER_DATABASE_URL", value_name = "URL", hide_env_values = true)]
    pub database_url: Option<String>,
}

/// Flags of `coffer serve`.
#[derive(Args, Debug, Clone, Default)]
pub struct ServeArgs {
    /// The address to listen on (default 127.0.0.1:9000).
    #[arg(long, env = "COFFER_LISTEN", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Log format.
    #[arg(long, env = "COFFER_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
}

#[derive(ValueEnum, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    #[default]
    Text,
}

/// The configuration file.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The address to listen on.
    pub listen: Option<SocketAddr>,
    /// A second address serving the same APIs read-only: every write is refused with
    /// AccessDenied (for read-only mounts).
    pub read_only_listen: Option<SocketAddr>,
    /// The data directory.
    pub data_dir: Option<PathBuf>,
    /// The metadata database URL.
    pub database_url: Option<String>,
    /// Log format: "json" or "text".
    pub log_format: Option<LogFormat>,
    /// A file holding the base64 server key that seals access-key secrets
    /// (default `<data-dir>/server.key`, created on first use). `COFFER_SERVER_KEY` overrides.
    pub server_key_file: Option<PathBuf>,
    /// Apply pending migrations at start-up (default true).
    pub migrate_on_start: Option<bool>,
    /// The largest single PUT or part, in bytes (default and maximum 5 GiB).
    pub max_object_size: Option<u64>,
    /// The tier buckets get when created without a location constraint (default "standard").
    pub default_tier: Option<String>,
    /// Named tiers. Without any, one tier "standard" on `<data-dir>/objects`.
    #[serde(default)]
    pub tiers: BTreeMap<String, TierConfig>,
    /// Trusted OpenID issuers and what their groups are cleared for.
    #[serde(default)]
    pub oidc: OidcSection,
    /// Temporary credentials from `AssumeRoleWithWebIdentity`.
    #[serde(default)]
    pub sts: StsSection,
    /// A personal bucket for every user, made on the first authenticated request.
    pub personal_buckets: Option<PersonalBucketsSection>,
    /// How long audit events are kept in the metadata store, in days (default 90).
    pub audit_retention_days: Option<u64>,
    /// Identity headers of a trusted auth sidecar, for the REST API (and the web console).
    pub trusted_headers: Option<coffer_identity::TrustedHeadersConfig>,
    /// The web console at `/console`: OpenID Connect sign-in (issuer, client_id,
    /// client_secret_file, redirect_url, scopes, session_hours).
    pub console: Option<coffer_console::ConsoleSection>,
    /// The externally visible base URL (e.g. "https://coffer.example.com"), for the URLs of
    /// share links; default: the host each request was sent to.
    pub public_url: Option<String>,
    /// Share links: their default and longest validity, and which classifications may be
    /// shared by link.
    #[serde(default)]
    pub share_links: ShareLinksSection,
    /// A Rego policy deciding who may read or write externally governed buckets.
    pub policy: Option<PolicySection>,
    /// The name of the home view, the virtual bucket whose folders are the buckets each
    /// caller may read (default "home"; "" turns it off).
    pub home_bucket: Option<String>,
    /// `coffer controller` and `coffer webhook`: label keys, the CSI driver namespace,
    /// credential rotation, and the volumes made for each profile per tier.
    pub kubernetes: Option<coffer_k8s::settings::KubernetesSection>,
}

/// `[policy]`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct PolicySection {
    /// `.rego` and `.json` files, or directories of them (a mounted ConfigMap); reloaded when
    /// they change. Relative paths are taken from the data directory.
    pub paths: Vec<PathBuf>,
    /// The buckets the policy governs (`*` matches any run of characters), e.g. ["fdi-*"].
    pub buckets: Vec<String>,
    /// The rule giving `{"allow": bool, "role": "read" | "write" | "admin"}` (default
    /// "data.coffer.decision").
    pub rule: Option<String>,
}

/// `[share_links]`.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct ShareLinksSection {
    /// Validity when the request names none (default 604800 s, 7 days).
    pub default_expiry_seconds: Option<i64>,
    /// The longest validity (default 7776000 s, 90 days; at most 10 years).
    pub max_expiry_seconds: Option<i64>,
    /// Buckets of these classifications may be shared by link (default ["unclassified"]):
    /// a link opens anywhere, so classified data stays behind sign-in.
    pub classifications: Option<Vec<String>>,
}

/// `[personal_buckets]`.
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct PersonalBucketsSection {
    /// The bucket name, with `{user}` for the user name (made S3-valid); e.g. "home-{user}".
    pub template: String,
}

/// `[oidc]`: `[[oidc.issuers]]` entries and `[oidc.clearances]`.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct OidcSection {
    /// The issuers whose tokens are accepted (each: issuer, audiences, jwks_uri or
    /// jwks_file, algorithms, username_claim, groups_claim, realm_roles, client_roles,
    /// leeway_seconds, jwks_ttl_seconds, service_accounts, and token_review to check a
    /// service-account issuer's tokens with the Kubernetes TokenReview API).
    #[serde(default)]
    pub issuers: Vec<coffer_identity::IssuerConfig>,
    /// Group → the classifications its members may touch (everyone has `unclassified`).
    #[serde(default)]
    pub clearances: BTreeMap<String, Vec<String>>,
    /// Namespace → the classifications its service accounts (the profile) may touch.
    #[serde(default)]
    pub namespace_clearances: BTreeMap<String, Vec<String>>,
    /// Members of these groups are platform admins (admin on every bucket, the whole audit
    /// trail; clearance still applies).
    #[serde(default)]
    pub admin_groups: Vec<String>,
}

/// `[sts]`.
#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct StsSection {
    /// Session length when the request names none (default 3600 s).
    pub default_duration_seconds: Option<i64>,
    /// The longest session (default and maximum 43200 s, 12 h).
    pub max_duration_seconds: Option<i64>,
}

/// One tier: its backend (`kind` and the backend's own fields) and what it allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TierConfig {
    pub backend: TierBackend,
    /// The classifications its buckets may have (default: any).
    pub classifications: Option<Vec<String>>,
    /// Refuse every write to its buckets (default false).
    pub read_only: bool,
}

impl TierConfig {
    /// A writable tier of any classification on `backend`.
    pub fn of(backend: TierBackend) -> Self {
        Self { backend, classifications: None, read_only: false }
    }
}

/// The fields every tier has besides its backend's.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TierRulesSection {
    classifications: Option<Vec<String>>,
    #[serde(default)]
    read_only: bool,
}

impl<'de> Deserialize<'de> for TierConfig {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error as _;
        // The common fields are taken out first, so the backend's own keep
        // `deny_unknown_fields` (serde cannot combine it with `flatten`).
        let mut table = toml::Table::deserialize(d)?;
        let mut rules = toml::Table::new();
        for field in ["classifications", "read_only"] {
            if let Some(v) = table.remove(field) {
                rules.insert(field.to_owned(), v);
            }
        }
        let rules = TierRulesSection::deserialize(rules).map_err(D::Error::custom)?;
        let backend = TierBackend::deserialize(table).map_err(D::Error::custom)?;
        Ok(Self { backend, classifications: rules.classifications, read_only: rules.read_only })
    }
}

/// One tier's backend (see docs/BACKENDS.md for every field).
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum TierBackend {
    /// Objects on a local (or mounted) filesystem.
    Filesystem {
        /// The directory; relative paths are taken from the data directory.
        path: PathBuf,
        /// Where the short calls of HEAD and small GETs run: `auto` (inline on a local
        /// filesystem, on the blocking pool on a network or FUSE one), `inline` or `pool`.
        #[serde(default)]
        io: coffer_backend::FsIo,
    },
    /// An S3 bucket, on AWS or an S3-compatible store.
    S3(coffer_backend::S3TierConfig),
    /// An Azure Blob Storage container.
    Azure(coffer_backend::AzureTierConfig),
    /// A Google Cloud Storage bucket.
    Gcs(coffer_backend::GcsTierConfig),
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub read_only_listen: Option<SocketAddr>,
    pub data_dir: PathBuf,
    pub database_url: String,
    pub log_format: LogFormat,
    pub server_key_file: PathBuf,
    pub migrate_on_start: bool,
    pub max_object_size: u64,
    pub default_tier: String,
    pub tiers: BTreeMap<String, TierConfig>,
    pub oidc_issuers: Vec<coffer_identity::IssuerConfig>,
    pub clearances: BTreeMap<String, Vec<coffer_core::Classification>>,
    pub namespace_clearances: BTreeMap<String, Vec<coffer_core::Classification>>,
    pub sts_default_duration: i64,
    pub sts_max_duration: i64,
    pub personal_bucket_template: Option<String>,
    pub audit_retention: std::time::Duration,
    pub trusted_headers: Option<coffer_identity::TrustedHeadersConfig>,
    pub console: Option<coffer_console::ConsoleSettings>,
    pub admin_groups: Vec<String>,
    pub public_url: Option<String>,
    pub link_rules: coffer_gateway::links::LinkRules,
    pub policy: Option<coffer_gateway::policy::PolicyConfig>,
    pub home_bucket: Option<String>,
    pub kubernetes: coffer_k8s::settings::Settings,
}

pub const DEFAULT_LISTEN: &str = "127.0.0.1:9000";
pub const DEFAULT_DATA_DIR: &str = "./coffer-data";

impl Config {
    /// Read the file (if any), apply the flags and environment, validate.
    pub fn load(global: &GlobalArgs, serve: Option<&ServeArgs>) -> anyhow::Result<Self> {
        let file: FileConfig = match &global.config {
            Some(p) => {
                let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", p.display()))?
            }
            None => FileConfig::default(),
        };
        Self::resolve(file, global, serve)
    }

    fn resolve(file: FileConfig, global: &GlobalArgs, serve: Option<&ServeArgs>) -> anyhow::Result<Self> {
        let data_dir = global.data_dir.clone().or(file.data_dir).unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = global
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("coffer.db").display()));
        let listen = serve
            .and_then(|s| s.listen)
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("a valid default address"));
        let log_format = serve.and_then(|s| s.log_format).or(file.log_format).unwrap_or_default();
        let mut tiers = file.tiers;
        if tiers.is_empty() {
            tiers.insert(
                "standard".into(),
                TierConfig::of(TierBackend::Filesystem { path: PathBuf::from("objects"), io: Default::default() }),
            );
        }
        for (name, tier) in tiers.iter_mut() {
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
                bail!("tier name {name:?} must be lowercase letters, digits and '-'");
            }
            if let Some(list) = &tier.classifications {
                if list.is_empty() {
                    bail!("[tiers.{name}] classifications must name at least one (leave it out for any)");
                }
                for c in list {
                    coffer_core::Classification::parse(c).with_context(|| format!("[tiers.{name}] classifications"))?;
                }
            }
            if let TierBackend::Filesystem { path, .. } = &mut tier.backend
                && path.is_relative()
            {
                *path = data_dir.join(&*path);
            }
        }
        let default_tier = file.default_tier.unwrap_or_else(|| "standard".into());
        if !tiers.contains_key(&default_tier) {
            bail!("default_tier {default_tier:?} is not among the configured tiers");
        }
        let max_object_size = file.max_object_size.unwrap_or(coffer_backend::MAX_PUT_SIZE);
        if max_object_size == 0 || max_object_size > coffer_backend::MAX_PUT_SIZE {
            bail!("max_object_size must be between 1 and {} bytes", coffer_backend::MAX_PUT_SIZE);
        }
        let server_key_file = match file.server_key_file {
            Some(p) if p.is_relative() => data_dir.join(p),
            Some(p) => p,
            None => data_dir.join("server.key"),
        };
        let sts_max_duration = file.sts.max_duration_seconds.unwrap_or(43_200);
        let sts_default_duration = file.sts.default_duration_seconds.unwrap_or(3600).min(sts_max_duration);
        if !(900..=43_200).contains(&sts_max_duration) || sts_default_duration < 900 {
            bail!("[sts] durations must be between 900 and 43200 seconds");
        }
        let clearances = parse_clearances(file.oidc.clearances, "[oidc.clearances]")?;
        let namespace_clearances = parse_clearances(file.oidc.namespace_clearances, "[oidc.namespace_clearances]")?;
        for i in &file.oidc.issuers {
            if i.audiences.is_empty() {
                bail!("[[oidc.issuers]] {:?} needs at least one audience", i.issuer);
            }
            if i.algorithms.is_empty() {
                bail!("[[oidc.issuers]] {:?} needs at least one algorithm", i.issuer);
            }
            if let Some(review) = &i.token_review {
                if !i.service_accounts {
                    bail!(
                        "[[oidc.issuers]] {:?}: token_review checks Kubernetes service-account tokens only; \
                         set service_accounts = true or remove token_review",
                        i.issuer
                    );
                }
                if !(review.api_server.starts_with("https://") || review.api_server.starts_with("http://")) {
                    bail!(
                        "[[oidc.issuers]] {:?}: token_review.api_server must start with https:// or http://",
                        i.issuer
                    );
                }
                if review.timeout_seconds == 0 {
                    bail!("[[oidc.issuers]] {:?}: token_review.timeout_seconds must be at least 1", i.issuer);
                }
            }
        }
        let policy = file.policy.map(|p| policy_config(p, &data_dir)).transpose()?;
        let console = file
            .console
            .map(|c| c.resolve(&file.oidc.issuers, &data_dir))
            .transpose()
            .map_err(|e| anyhow::anyhow!(e))?;
        let kubernetes = match file.kubernetes {
            Some(k) => k.resolve().map_err(|e| anyhow::anyhow!(e))?,
            None => coffer_k8s::settings::Settings::default(),
        };
        for name in kubernetes.tiers.keys() {
            if !tiers.contains_key(name) {
                bail!("[kubernetes.tiers.{name}] names no tier of [tiers]");
            }
        }
        let home_bucket = match file.home_bucket.as_deref() {
            None => Some(coffer_gateway::home::DEFAULT_HOME.to_owned()),
            Some("") => None,
            Some(name) => {
                coffer_core::BucketName::parse(name).context("home_bucket")?;
                Some(name.to_owned())
            }
        };
        Ok(Self {
            listen,
            read_only_listen: file.read_only_listen,
            data_dir,
            database_url,
            log_format,
            server_key_file,
            migrate_on_start: file.migrate_on_start.unwrap_or(true),
            max_object_size,
            default_tier,
            tiers,
            oidc_issuers: file.oidc.issuers,
            clearances,
            namespace_clearances,
            sts_default_duration,
            sts_max_duration,
            personal_bucket_template: personal_bucket_template(file.personal_buckets)?,
            audit_retention: std::time::Duration::from_secs(file.audit_retention_days.unwrap_or(90).max(1) * 86_400),
            trusted_headers: file.trusted_headers,
            console,
            admin_groups: file.oidc.admin_groups,
            public_url: public_url(file.public_url)?,
            link_rules: link_rules(file.share_links)?,
            policy,
            home_bucket,
            kubernetes,
        })
    }

    /// The database URL with any password hidden, for logs.
    pub fn database_url_redacted(&self) -> String {
        redact_url(&self.database_url)
    }
}

fn public_url(url: Option<String>) -> anyhow::Result<Option<String>> {
    match url {
        Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
            bail!("public_url must start with http:// or https://")
        }
        Some(u) => Ok(Some(u.trim_end_matches('/').to_owned())),
        None => Ok(None),
    }
}

fn link_rules(section: ShareLinksSection) -> anyhow::Result<coffer_gateway::links::LinkRules> {
    let defaults = coffer_gateway::links::LinkRules::default();
    let max_expiry = section.max_expiry_seconds.unwrap_or(defaults.max_expiry);
    let default_expiry = section.default_expiry_seconds.unwrap_or(defaults.default_expiry).min(max_expiry);
    let min = coffer_gateway::links::MIN_LINK_EXPIRY;
    if !(min..=10 * 365 * 86_400).contains(&max_expiry) || default_expiry < min {
        bail!("[share_links] expiries must be between {min} seconds and 10 years");
    }
    let classifications = match section.classifications {
        None => defaults.classifications,
        Some(list) => list
            .iter()
            .map(|c| coffer_core::Classification::parse(c))
            .collect::<Result<_, _>>()
            .context("[share_links] classifications")?,
    };
    Ok(coffer_gateway::links::LinkRules { default_expiry, max_expiry, classifications })
}

fn policy_config(p: PolicySection, data_dir: &Path) -> anyhow::Result<coffer_gateway::policy::PolicyConfig> {
    if p.paths.is_empty() || p.buckets.is_empty() {
        bail!("[policy] needs at least one path and one bucket pattern");
    }
    let rule = p.rule.unwrap_or_else(|| coffer_gateway::policy::DEFAULT_RULE.to_owned());
    if !rule.starts_with("data.") {
        bail!("[policy] rule must be a rule path such as \"data.coffer.decision\"");
    }
    let paths = p.paths.into_iter().map(|x| if x.is_relative() { data_dir.join(x) } else { x }).collect();
    Ok(coffer_gateway::policy::PolicyConfig { paths, buckets: p.buckets, rule })
}

fn personal_bucket_template(section: Option<PersonalBucketsSection>) -> anyhow::Result<Option<String>> {
    match section {
        Some(p) if !p.template.contains("{user}") => bail!("[personal_buckets] template must contain {{user}}"),
        Some(p) => Ok(Some(p.template)),
        None => Ok(None),
    }
}

/// A name → classifications table, parsed.
fn parse_clearances(
    raw: BTreeMap<String, Vec<String>>,
    section: &str,
) -> anyhow::Result<BTreeMap<String, Vec<coffer_core::Classification>>> {
    raw.into_iter()
        .map(|(name, list)| {
            let parsed = list
                .iter()
                .map(|c| coffer_core::Classification::parse(c))
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("{section} {name:?}"))?;
            Ok((name, parsed))
        })
        .collect()
}

/// `scheme://user:password@host/…` → `scheme://user:***@host/…`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let Some((auth, host)) = rest.split_once('@') else { return url.to_owned() };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

/// Make sure a directory exists.
pub fn ensure_dir(p: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fs_tier(path: &str) -> TierConfig {
        TierConfig::of(TierBackend::Filesystem { path: PathBuf::from(path), io: Default::default() })
    }

    #[test]
    fn tiers_carry_classifications_and_a_read_only_flag() {
        let file: FileConfig = toml::from_str(
            r#"
            [tiers.standard]
            kind = "filesystem"
            path = "objects"
            [tiers.pb]
            kind = "filesystem"
            path = "/pb"
            io = "pool"
            classifications = ["protected-b"]
            read_only = true
            "#,
        )
        .unwrap();
        let c = Config::resolve(file, &GlobalArgs::default(), None).unwrap();
        let io = |t: &str| match &c.tiers[t].backend {
            TierBackend::Filesystem { io, .. } => *io,
            other => panic!("{other:?}"),
        };
        assert_eq!((io("pb"), io("standard")), (coffer_backend::FsIo::Pool, coffer_backend::FsIo::Auto));
        assert_eq!(c.tiers["pb"].classifications.as_deref(), Some(&["protected-b".to_owned()][..]));
        assert!(c.tiers["pb"].read_only);
        assert!(!c.tiers["standard"].read_only && c.tiers["standard"].classifications.is_none());
        for bad in [
            "[tiers.x]\nkind = \"filesystem\"\npath = \"p\"\npaht = \"typo\"",
            "[tiers.x]\nkind = \"filesystem\"\npath = \"p\"\nread_only = \"yes\"",
            "[tiers.x]\nkind = \"tape\"\npath = \"p\"",
            "[tiers.x]\nkind = \"filesystem\"\npath = \"p\"\nio = \"threads\"",
        ] {
            assert!(toml::from_str::<FileConfig>(bad).is_err(), "{bad}");
        }
        let file: FileConfig =
            toml::from_str("[tiers.standard]\nkind = \"filesystem\"\npath = \"p\"\nclassifications = [\"Not Valid\"]")
                .unwrap();
        assert!(Config::resolve(file, &GlobalArgs::default(), None).is_err());
    }

    #[test]
    fn defaults_need_no_file() {
        let c = Config::resolve(FileConfig::default(), &GlobalArgs::default(), None).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(c.data_dir, PathBuf::from("./coffer-data"));
        assert_eq!(c.database_url, "sqlite://./coffer-data/coffer.db");
        assert_eq!(c.tiers["standard"], fs_tier("./coffer-data/objects"));
        assert_eq!(c.default_tier, "standard");
        assert_eq!(c.server_key_file, PathBuf::from("./coffer-data/server.key"));
        assert!(c.migrate_on_start);
    }

    #[test]
    fn flags_override_the_file() {
        let file: FileConfig = toml::from_str(
            r#"
            listen = "0.0.0.0:8000"
            data_dir = "/var/lib/coffer"
            log_format = "json"
            [tiers.premium]
            kind = "filesystem"
            path = "/fast"
            [tiers.standard]
            kind = "filesystem"
            path = "objects"
            "#,
        )
        .unwrap();
        let global = GlobalArgs { data_dir: Some("/data".into()), ..Default::default() };
        let serve = ServeArgs { listen: Some("127.0.0.1:1234".parse().unwrap()), log_format: None };
        let c = Config::resolve(file, &global, Some(&serve)).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:1234");
        assert_eq!(c.log_format, LogFormat::Json);
        assert_eq!(c.tiers["standard"], fs_tier("/data/objects"));
        assert_eq!(c.tiers["premium"], fs_tier("/fast"));
    }

    #[test]
    fn oidc_issuers_and_clearances() {
        let file: FileConfig = toml::from_str(
            r#"
            [[oidc.issuers]]
            issuer = "https://keycloak.example/realms/platform"
            audiences = ["coffer"]
            realm_roles = true
            [oidc.clearances]
            pb-readers = ["protected-b"]
            [sts]
            max_duration_seconds = 7200
            "#,
        )
        .unwrap();
        let c = Config::resolve(file, &GlobalArgs::default(), None).unwrap();
        assert_eq!(c.oidc_issuers.len(), 1);
        assert_eq!(c.oidc_issuers[0].username_claim, "preferred_username");
        assert_eq!(c.clearances["pb-readers"][0].as_str(), "protected-b");
        assert_eq!((c.sts_default_duration, c.sts_max_duration), (3600, 7200));
        let bad: FileConfig = toml::from_str("[sts]\nmax_duration_seconds = 100000").unwrap();
        assert!(Config::resolve(bad, &GlobalArgs::default(), None).is_err());
    }

    #[test]
    fn token_review_is_for_service_account_issuers_only() {
        let file: FileConfig = toml::from_str(
            r#"
            [[oidc.issuers]]
            issuer = "https://keycloak.example/realms/platform"
            audiences = ["coffer"]

            [[oidc.issuers]]
            issuer = "https://kubernetes.default.svc.cluster.local"
            audiences = ["coffer"]
            service_accounts = true
            [oidc.issuers.token_review]
            api_server = "https://kubernetes.default.svc"
            cache_seconds = 30
            "#,
        )
        .unwrap();
        let c = Config::resolve(file, &GlobalArgs::default(), None).unwrap();
        assert_eq!(c.oidc_issuers[0].token_review, None);
        let review = c.oidc_issuers[1].token_review.as_ref().unwrap();
        assert_eq!(review.api_server, "https://kubernetes.default.svc");
        assert_eq!(review.cache_seconds, 30);
        assert_eq!(review.timeout_seconds, 5);
        assert_eq!(review.token_file, PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/token"));
        assert_eq!(
            review.effective_ca_file(),
            Some(PathBuf::from("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"))
        );

        // The inline form, with every default.
        let inline = r#"
            [[oidc.issuers]]
            issuer = "https://kubernetes.default.svc.cluster.local"
            audiences = ["coffer"]
            token_review = {}
            "#;
        let file: FileConfig = toml::from_str(&format!("{inline}service_accounts = true")).unwrap();
        let c = Config::resolve(file, &GlobalArgs::default(), None).unwrap();
        assert_eq!(c.oidc_issuers[0].token_review, Some(coffer_identity::TokenReviewConfig::default()));
        // Without service_accounts = true it is refused, and says why.
        let file: FileConfig = toml::from_str(inline).unwrap();
        let err = Config::resolve(file, &GlobalArgs::default(), None).unwrap_err().to_string();
        assert!(err.contains("token_review") && err.contains("service_accounts = true"), "{err}");

        let bad = |review: &str| {
            let text = format!(
                "[[oidc.issuers]]\nissuer = \"i\"\naudiences = [\"coffer\"]\nservice_accounts = true\n\
                 token_review = {{ {review} }}"
            );
            Config::resolve(toml::from_str(&text).unwrap(), &GlobalArgs::default(), None).is_err()
        };
        assert!(bad(r#"api_server = "kubernetes.default.svc""#));
        assert!(bad("timeout_seconds = 0"));
        assert!(!bad(r#"api_server = "http://127.0.0.1:8001", timeout_seconds = 1"#));
        // Unknown fields are refused.
        let sub_table = "[[oidc.issuers]]\nissuer = \"i\"\naudiences = [\"coffer\"]\n[oidc.issuers.token_review]\n";
        assert!(toml::from_str::<FileConfig>(&format!("{sub_table}cache_seconds = 1")).is_ok());
        assert!(toml::from_str::<FileConfig>(&format!("{sub_table}api_sever = \"https://x\"")).is_err());
    }

    #[test]
    fn the_console_signs_in_with_a_configured_issuer() {
        let issuer = "[[oidc.issuers]]\nissuer = \"https://id.test/realms/p\"\naudiences = [\"coffer\"]\n";
        let file: FileConfig = toml::from_str(&format!(
            "{issuer}[console]\nissuer = \"https://id.test/realms/p\"\nclient_secret_file = \"console.secret\"\n\
             session_hours = 2\n"
        ))
        .unwrap();
        let global = GlobalArgs { data_dir: Some("/data".into()), ..Default::default() };
        let c = Config::resolve(file, &global, None).unwrap().console.unwrap();
        assert_eq!((c.client_id.as_str(), c.session_seconds), ("coffer-console", 7200));
        assert_eq!(c.client_secret_file, Some(PathBuf::from("/data/console.secret")));
        assert!(Config::resolve(FileConfig::default(), &global, None).unwrap().console.is_none());
        // Another issuer, an unknown field: refused.
        let file: FileConfig = toml::from_str("[console]\nissuer = \"https://id.test/realms/p\"").unwrap();
        let err = Config::resolve(file, &global, None).unwrap_err().to_string();
        assert!(err.contains("[[oidc.issuers]]"), "{err}");
        assert!(toml::from_str::<FileConfig>(&format!("{issuer}[console]\nissuer = \"x\"\nclient = \"y\"")).is_err());
    }

    #[test]
    fn unknown_fields_and_bad_values_are_refused() {
        assert!(toml::from_str::<FileConfig>("listn = \"x\"").is_err());
        let file: FileConfig = toml::from_str("default_tier = \"gold\"").unwrap();
        assert!(Config::resolve(file, &GlobalArgs::default(), None).is_err());
        let file: FileConfig = toml::from_str("max_object_size = 0").unwrap();
        assert!(Config::resolve(file, &GlobalArgs::default(), None).is_err());
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:pw@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(redact_url("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    }
}
