//! Building an Azure Blob Storage store from an [`AzureTierConfig`].

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use object_store::azure::MicrosoftAzureBuilder;

use super::config::AzureTierConfig;
use super::credentials::{AzureCredentials, AzureSecretKind, SecretSource};
use super::crypto::RingCrypto;
use super::http::HyperConnector;
use super::raw::{AzureRaw, Raw};
use super::{Built, client_options, config_error, raw_client, retry_config};
use crate::Result;

/// Which secret the configuration names: an explicit `*_env`/`*_file` setting, else
/// `AZURE_STORAGE_ACCOUNT_KEY` if set, else `AZURE_STORAGE_SAS_TOKEN` if set.
fn secret_source(config: &AzureTierConfig) -> std::result::Result<(AzureSecretKind, SecretSource), String> {
    let key = match (&config.access_key_env, &config.access_key_file) {
        (Some(_), Some(_)) => return Err("set only one of access_key_env and access_key_file".to_owned()),
        (Some(env), None) => Some(SecretSource::Env(env.clone())),
        (None, Some(file)) => Some(SecretSource::File(file.clone())),
        (None, None) => None,
    };
    let sas = match (&config.sas_token_env, &config.sas_token_file) {
        (Some(_), Some(_)) => return Err("set only one of sas_token_env and sas_token_file".to_owned()),
        (Some(env), None) => Some(SecretSource::Env(env.clone())),
        (None, Some(file)) => Some(SecretSource::File(file.clone())),
        (None, None) => None,
    };
    match (key, sas) {
        (Some(_), Some(_)) => Err("configure an account key or a SAS token, not both".to_owned()),
        (Some(key), None) => Ok((AzureSecretKind::AccountKey, key)),
        (None, Some(sas)) => Ok((AzureSecretKind::SasToken, sas)),
        (None, None) if std::env::var_os("AZURE_STORAGE_ACCOUNT_KEY").is_some() => {
            Ok((AzureSecretKind::AccountKey, SecretSource::Env("AZURE_STORAGE_ACCOUNT_KEY".to_owned())))
        }
        (None, None) if std::env::var_os("AZURE_STORAGE_SAS_TOKEN").is_some() => {
            Ok((AzureSecretKind::SasToken, SecretSource::Env("AZURE_STORAGE_SAS_TOKEN".to_owned())))
        }
        (None, None) => Err(
            "no credential: set AZURE_STORAGE_ACCOUNT_KEY or AZURE_STORAGE_SAS_TOKEN, or configure access_key_* or sas_token_*"
                .to_owned(),
        ),
    }
}

pub(crate) fn build(tier: &str, config: &AzureTierConfig, reloads: Arc<AtomicU64>) -> Result<Built> {
    let err = |m: String| config_error(tier, &m);
    let (kind, source) = secret_source(config).map_err(err)?;
    let credentials = Arc::new(AzureCredentials::new(tier, kind, source, reloads).map_err(err)?);
    let endpoint = config
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("https://{}.blob.core.windows.net", config.account))
        .trim_end_matches('/')
        .to_owned();
    let mut container_url =
        url::Url::parse(&endpoint).map_err(|e| err(format!("invalid endpoint {endpoint:?}: {e}")))?;
    container_url
        .path_segments_mut()
        .map_err(|_| err(format!("invalid endpoint {endpoint:?}")))?
        .pop_if_empty()
        .push(&config.container);
    let store = MicrosoftAzureBuilder::new()
        .with_account(&config.account)
        .with_container_name(&config.container)
        .with_endpoint(endpoint)
        .with_credentials(Arc::clone(&credentials) as _)
        .with_crypto_provider(Arc::new(RingCrypto))
        .with_http_connector(HyperConnector)
        .with_retry(retry_config())
        .with_client_options(client_options(config.allow_http))
        .with_allow_http(config.allow_http)
        .build()
        .map_err(|e| err(e.to_string()))?;
    let store = Arc::new(store);
    let raw = Raw::Azure(AzureRaw {
        client: raw_client(tier, config.allow_http)?,
        credentials,
        account: config.account.clone(),
        container_url,
    });
    Ok(Built { store: store.clone(), multipart: store.clone(), lister: store, raw })
}
