//! Building a Google Cloud Storage store from a [`GcsTierConfig`].

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use object_store::StaticCredentialProvider;
use object_store::gcp::{GcpSigningCredential, GoogleCloudStorageBuilder};

use super::config::GcsTierConfig;
use super::credentials::GcsCredentials;
use super::crypto::RingCrypto;
use super::http::HyperConnector;
use super::raw::{GcsRaw, Raw};
use super::{Built, client_options, config_error, raw_client, retry_config};
use crate::Result;

pub(crate) fn build(tier: &str, config: &GcsTierConfig, reloads: Arc<AtomicU64>) -> Result<Built> {
    let err = |m: String| config_error(tier, &m);
    let file = match &config.service_account_file {
        Some(file) => file.clone(),
        None => std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS")
            .map(Into::into)
            .ok_or_else(|| err("no service_account_file, and GOOGLE_APPLICATION_CREDENTIALS is not set".to_owned()))?,
    };
    let credentials = Arc::new(GcsCredentials::new(tier, file, reloads).map_err(err)?);
    let base_url = config
        .endpoint
        .clone()
        .or_else(|| credentials.base_url())
        .unwrap_or_else(|| "https://storage.googleapis.com".to_owned())
        .trim_end_matches('/')
        .to_owned();
    // Signed URLs are not used; a static signer keeps object_store from looking for one
    // on a metadata server.
    let signing = StaticCredentialProvider::new(GcpSigningCredential { email: String::new(), private_key: None });
    let store = GoogleCloudStorageBuilder::new()
        .with_bucket_name(&config.bucket)
        .with_base_url(&base_url)
        .with_credentials(Arc::clone(&credentials) as _)
        .with_signing_credentials(Arc::new(signing))
        .with_crypto_provider(Arc::new(RingCrypto))
        .with_http_connector(HyperConnector)
        .with_retry(retry_config())
        .with_client_options(client_options(config.allow_http))
        .build()
        .map_err(|e| err(e.to_string()))?;
    let store = Arc::new(store);
    let bucket_url = format!(
        "{base_url}/{}",
        percent_encoding::utf8_percent_encode(&config.bucket, percent_encoding::NON_ALPHANUMERIC)
    );
    let raw = Raw::Gcs(GcsRaw { client: raw_client(tier, config.allow_http)?, credentials, bucket_url });
    Ok(Built { store: store.clone(), multipart: store.clone(), lister: store, raw })
}
