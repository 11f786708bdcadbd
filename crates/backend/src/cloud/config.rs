//! The configuration of cloud tiers, as the binary's TOML embeds it:
//!
//! ```toml
//! [tiers.standard]
//! kind = "s3"            # or "azure", "gcs" ("filesystem" is the binary's own)
//! bucket = "coffer-data"
//! ```
//!
//! Secrets are never in the configuration: it names the environment variable or the file
//! each one is read from (files are re-read when they change, see `credentials`).

use std::path::PathBuf;

use serde::Deserialize;

/// A cloud tier, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum CloudTierConfig {
    /// Amazon S3 or an S3-compatible store (MinIO, Ceph RGW, …).
    S3(S3TierConfig),
    /// Azure Blob Storage.
    Azure(AzureTierConfig),
    /// Google Cloud Storage.
    Gcs(GcsTierConfig),
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

/// An S3 (or S3-compatible) tier: one S3 bucket holds every coffer bucket of the tier.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3TierConfig {
    /// The S3 bucket that holds this tier. It must exist; coffer never creates it.
    pub bucket: String,
    /// A path inside that bucket under which coffer keeps everything (`team/coffer`);
    /// the whole bucket when unset.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The endpoint of an S3-compatible store (`https://minio.example:9000`); AWS when
    /// unset.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The region requests are signed for.
    #[serde(default = "default_region")]
    pub region: String,
    /// Path-style requests (`endpoint/bucket/key`) instead of virtual-hosted ones
    /// (`bucket.endpoint/key`); most S3-compatible stores need this.
    #[serde(default)]
    pub path_style: bool,
    /// Allow a plain `http://` endpoint (a test store, or one on a private network).
    #[serde(default)]
    pub allow_http: bool,
    /// The environment variable holding the access key id (default `AWS_ACCESS_KEY_ID`).
    #[serde(default)]
    pub access_key_id_env: Option<String>,
    /// A file holding the access key id, re-read when it changes (instead of the variable).
    #[serde(default)]
    pub access_key_id_file: Option<PathBuf>,
    /// The environment variable holding the secret access key (default
    /// `AWS_SECRET_ACCESS_KEY`).
    #[serde(default)]
    pub secret_access_key_env: Option<String>,
    /// A file holding the secret access key, re-read when it changes.
    #[serde(default)]
    pub secret_access_key_file: Option<PathBuf>,
    /// The environment variable holding a session token, if any (default
    /// `AWS_SESSION_TOKEN`; no token when it is unset).
    #[serde(default)]
    pub session_token_env: Option<String>,
    /// A file holding a session token, re-read when it changes.
    #[serde(default)]
    pub session_token_file: Option<PathBuf>,
}

impl S3TierConfig {
    /// A configuration with the defaults, for `bucket`.
    pub fn new(bucket: impl Into<String>) -> Self {
        S3TierConfig {
            bucket: bucket.into(),
            prefix: None,
            endpoint: None,
            region: default_region(),
            path_style: false,
            allow_http: false,
            access_key_id_env: None,
            access_key_id_file: None,
            secret_access_key_env: None,
            secret_access_key_file: None,
            session_token_env: None,
            session_token_file: None,
        }
    }
}

/// An Azure Blob Storage tier: one container holds every coffer bucket of the tier.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AzureTierConfig {
    /// The storage account name (`devstoreaccount1` for Azurite).
    pub account: String,
    /// The container that holds this tier. It must exist; coffer never creates it.
    pub container: String,
    /// A path inside the container under which coffer keeps everything; the whole
    /// container when unset.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The account's blob endpoint, for Azurite or sovereign clouds
    /// (`http://127.0.0.1:10000/devstoreaccount1`); `https://<account>.blob.core.windows.net`
    /// when unset.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Allow a plain `http://` endpoint (Azurite).
    #[serde(default)]
    pub allow_http: bool,
    /// The environment variable holding the account key (default
    /// `AZURE_STORAGE_ACCOUNT_KEY`).
    #[serde(default)]
    pub access_key_env: Option<String>,
    /// A file holding the account key, re-read when it changes.
    #[serde(default)]
    pub access_key_file: Option<PathBuf>,
    /// The environment variable holding a SAS token instead of a key (default
    /// `AZURE_STORAGE_SAS_TOKEN`).
    #[serde(default)]
    pub sas_token_env: Option<String>,
    /// A file holding a SAS token, re-read when it changes.
    #[serde(default)]
    pub sas_token_file: Option<PathBuf>,
}

impl AzureTierConfig {
    /// A configuration with the defaults, for `account` and `container`.
    pub fn new(account: impl Into<String>, container: impl Into<String>) -> Self {
        AzureTierConfig {
            account: account.into(),
            container: container.into(),
            prefix: None,
            endpoint: None,
            allow_http: false,
            access_key_env: None,
            access_key_file: None,
            sas_token_env: None,
            sas_token_file: None,
        }
    }
}

/// A Google Cloud Storage tier: one GCS bucket holds every coffer bucket of the tier.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcsTierConfig {
    /// The GCS bucket that holds this tier. It must exist; coffer never creates it.
    pub bucket: String,
    /// A path inside that bucket under which coffer keeps everything; the whole bucket
    /// when unset.
    #[serde(default)]
    pub prefix: Option<String>,
    /// The storage endpoint (`https://storage.googleapis.com` when unset, or the
    /// `gcs_base_url` of the service-account file).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Allow a plain `http://` endpoint (a test server).
    #[serde(default)]
    pub allow_http: bool,
    /// The service-account JSON key file, re-read when it changes; default: the file
    /// named by `GOOGLE_APPLICATION_CREDENTIALS`.
    #[serde(default)]
    pub service_account_file: Option<PathBuf>,
}

impl GcsTierConfig {
    /// A configuration with the defaults, for `bucket`.
    pub fn new(bucket: impl Into<String>) -> Self {
        GcsTierConfig {
            bucket: bucket.into(),
            prefix: None,
            endpoint: None,
            allow_http: false,
            service_account_file: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_parse_from_toml() {
        #[derive(Deserialize)]
        struct Root {
            tiers: std::collections::BTreeMap<String, CloudTierConfig>,
        }
        let root: Root = toml::from_str(
            r#"
            [tiers.standard]
            kind = "s3"
            bucket = "data"
            endpoint = "http://127.0.0.1:9000"
            path_style = true
            allow_http = true
            access_key_id_file = "/run/s3/id"
            secret_access_key_file = "/run/s3/secret"

            [tiers.blob]
            kind = "azure"
            account = "acct"
            container = "c"
            sas_token_env = "SAS"

            [tiers.gcs]
            kind = "gcs"
            bucket = "b"
            prefix = "coffer"
            service_account_file = "/run/gcs/key.json"
            "#,
        )
        .unwrap();
        let CloudTierConfig::S3(s3) = &root.tiers["standard"] else { panic!() };
        assert_eq!(s3.region, "us-east-1");
        assert!(s3.path_style && s3.allow_http);
        assert_eq!(s3.secret_access_key_file.as_deref(), Some(std::path::Path::new("/run/s3/secret")));
        let CloudTierConfig::Azure(az) = &root.tiers["blob"] else { panic!() };
        assert_eq!(az.sas_token_env.as_deref(), Some("SAS"));
        let CloudTierConfig::Gcs(gcs) = &root.tiers["gcs"] else { panic!() };
        assert_eq!(gcs.prefix.as_deref(), Some("coffer"));
        assert_eq!(
            gcs,
            &GcsTierConfig {
                prefix: Some("coffer".into()),
                service_account_file: Some("/run/gcs/key.json".into()),
                ..GcsTierConfig::new("b")
            }
        );
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r: Result<CloudTierConfig, _> =
            toml::from_str("kind = \"s3\"\nbucket = \"b\"\nsecret_access_key = \"oops\"");
        assert!(r.unwrap_err().to_string().contains("secret_access_key"));
        let r: Result<CloudTierConfig, _> = toml::from_str("kind = \"ftp\"");
        assert!(r.is_err());
        let r: Result<S3TierConfig, _> = toml::from_str("region = \"eu-west-1\"");
        assert!(r.unwrap_err().to_string().contains("bucket"), "the bucket is required");
    }
}
