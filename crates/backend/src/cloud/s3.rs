//! Building an S3 (or S3-compatible) store from an [`S3TierConfig`].

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use object_store::aws::AmazonS3Builder;

use super::config::S3TierConfig;
use super::credentials::{S3Credentials, pick_source};
use super::crypto::RingCrypto;
use super::http::HyperConnector;
use super::raw::{Raw, S3Raw};
use super::{Built, client_options, config_error, raw_client, retry_config};
use crate::Result;

/// The URL every object URL of the bucket starts with.
pub(crate) fn bucket_endpoint(config: &S3TierConfig) -> std::result::Result<String, String> {
    let (bucket, region) = (&config.bucket, &config.region);
    Ok(match (&config.endpoint, config.path_style) {
        (Some(endpoint), true) => format!("{}/{bucket}", endpoint.trim_end_matches('/')),
        (Some(endpoint), false) => {
            let mut url = url::Url::parse(endpoint).map_err(|e| format!("invalid endpoint {endpoint:?}: {e}"))?;
            let host = url.host_str().ok_or_else(|| format!("the endpoint {endpoint:?} has no host"))?.to_owned();
            url.set_host(Some(&format!("{bucket}.{host}"))).map_err(|e| format!("invalid bucket host: {e}"))?;
            url.as_str().trim_end_matches('/').to_owned()
        }
        (None, true) => format!("https://s3.{region}.amazonaws.com/{bucket}"),
        (None, false) => format!("https://{bucket}.s3.{region}.amazonaws.com"),
    })
}

pub(crate) fn build(tier: &str, config: &S3TierConfig, reloads: Arc<AtomicU64>) -> Result<Built> {
    let err = |m: String| config_error(tier, &m);
    let key_id =
        pick_source("access_key_id", &config.access_key_id_env, &config.access_key_id_file, "AWS_ACCESS_KEY_ID")
            .map_err(err)?;
    let secret = pick_source(
        "secret_access_key",
        &config.secret_access_key_env,
        &config.secret_access_key_file,
        "AWS_SECRET_ACCESS_KEY",
    )
    .map_err(err)?;
    let token =
        pick_source("session_token", &config.session_token_env, &config.session_token_file, "AWS_SESSION_TOKEN")
            .map_err(err)?;
    let credentials = Arc::new(S3Credentials::new(tier, key_id, secret, token, reloads).map_err(err)?);
    let bucket_endpoint = bucket_endpoint(config).map_err(err)?;
    // The endpoint given to object_store is the bucket's own URL (virtual-hosted style
    // means "use the endpoint as is"), so that it and the raw requests agree.
    let store = AmazonS3Builder::new()
        .with_bucket_name(&config.bucket)
        .with_region(&config.region)
        .with_endpoint(&bucket_endpoint)
        .with_virtual_hosted_style_request(true)
        .with_credentials(Arc::clone(&credentials) as _)
        .with_crypto_provider(Arc::new(RingCrypto))
        .with_http_connector(HyperConnector)
        .with_retry(retry_config())
        .with_client_options(client_options(config.allow_http))
        .with_allow_http(config.allow_http)
        .build()
        .map_err(|e| err(e.to_string()))?;
    let store = Arc::new(store);
    let raw = Raw::S3(S3Raw {
        client: raw_client(tier, config.allow_http)?,
        credentials,
        region: config.region.clone(),
        bucket_endpoint,
    });
    Ok(Built { store: store.clone(), multipart: store.clone(), lister: store, raw })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_endpoints() {
        let mut c = S3TierConfig::new("data");
        assert_eq!(bucket_endpoint(&c).unwrap(), "https://data.s3.us-east-1.amazonaws.com");
        c.path_style = true;
        assert_eq!(bucket_endpoint(&c).unwrap(), "https://s3.us-east-1.amazonaws.com/data");
        c.endpoint = Some("http://127.0.0.1:9000/".into());
        assert_eq!(bucket_endpoint(&c).unwrap(), "http://127.0.0.1:9000/data");
        c.path_style = false;
        c.endpoint = Some("https://minio.example:9000".into());
        assert_eq!(bucket_endpoint(&c).unwrap(), "https://data.minio.example:9000");
    }
}
