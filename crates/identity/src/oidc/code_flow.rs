//! The OpenID Connect authorization code flow, as a client (the web console's sign-in):
//! the provider's endpoints from discovery ([`discover`]), and the code exchanged for
//! tokens at its token endpoint ([`exchange_code`]) with the PKCE verifier — and the
//! client's secret for a confidential client (HTTP Basic, RFC 6749 §2.3.1).
//!
//! The ID token that comes back is checked by [`super::OidcVerifier::verify_id_token`].
//! Both calls block (HTTP): run them off the async runtime.

use std::time::Duration;

use base64::Engine;
use serde_json::Value;

/// How long one call to the provider may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read from the provider.
const MAX_BODY: u64 = 1024 * 1024;

/// Why the flow failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodeFlowError {
    /// The provider could not be reached, or answered with a server error.
    #[error("the identity provider is unavailable: {0}")]
    Unavailable(String),
    /// The provider refused the request (an OAuth error: a used or expired code, a wrong
    /// verifier, a wrong client secret).
    #[error("the identity provider refused the sign-in: {0}")]
    Refused(String),
    /// The provider's answer is not what the protocol says.
    #[error("the identity provider's answer is malformed: {0}")]
    Malformed(String),
}

/// What discovery says about a provider (`/.well-known/openid-configuration`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderMetadata {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    /// RP-initiated logout, when the provider offers it.
    pub end_session_endpoint: Option<String>,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().timeout_global(Some(TIMEOUT)).http_status_as_error(false).build().into()
}

/// The body of an answer, as text.
fn read(mut resp: ureq::http::Response<ureq::Body>, url: &str) -> Result<(u16, String), CodeFlowError> {
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(MAX_BODY)
        .read_to_string()
        .map_err(|e| CodeFlowError::Unavailable(format!("{url}: {e}")))?;
    Ok((status, text))
}

/// Fetch and check the discovery document of `issuer` (its `issuer` must be exactly that).
pub fn discover(issuer: &str) -> Result<ProviderMetadata, CodeFlowError> {
    let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
    let resp = agent().get(&url).call().map_err(|e| CodeFlowError::Unavailable(format!("GET {url}: {e}")))?;
    let (status, text) = read(resp, &url)?;
    if status != 200 {
        return Err(CodeFlowError::Unavailable(format!("GET {url}: HTTP {status}")));
    }
    parse_discovery(issuer, &text).map_err(|m| CodeFlowError::Malformed(format!("{url}: {m}")))
}

/// The metadata in a discovery document, checked against the issuer it was fetched for.
pub fn parse_discovery(issuer: &str, text: &str) -> Result<ProviderMetadata, String> {
    let doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let field = |name: &str| doc.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let named = field("issuer").ok_or("no issuer")?;
    if named != issuer {
        return Err(format!("it names the issuer {named:?}, not {issuer:?}"));
    }
    let endpoint = |name: &str| {
        let url = field(name).ok_or_else(|| format!("no {name}"))?;
        if url.starts_with("https://") || url.starts_with("http://") {
            Ok(url)
        } else {
            Err(format!("{name} {url:?} is not an http(s) URL"))
        }
    };
    Ok(ProviderMetadata {
        issuer: named,
        authorization_endpoint: endpoint("authorization_endpoint")?,
        token_endpoint: endpoint("token_endpoint")?,
        end_session_endpoint: endpoint("end_session_endpoint").ok(),
    })
}

/// One code to exchange.
#[derive(Debug, Clone)]
pub struct CodeExchange<'a> {
    pub token_endpoint: &'a str,
    pub client_id: &'a str,
    /// For a confidential client; a public client proves itself with PKCE alone.
    pub client_secret: Option<&'a str>,
    pub code: &'a str,
    /// Exactly the `redirect_uri` of the authorization request.
    pub redirect_uri: &'a str,
    /// The PKCE code verifier whose challenge the authorization request carried.
    pub code_verifier: &'a str,
}

/// Exchange an authorization code for tokens; the ID token.
pub fn exchange_code(x: &CodeExchange<'_>) -> Result<String, CodeFlowError> {
    let mut req = agent().post(x.token_endpoint).header("accept", "application/json");
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", x.code),
        ("redirect_uri", x.redirect_uri),
        ("code_verifier", x.code_verifier),
    ];
    match x.client_secret {
        Some(secret) => req = req.header("authorization", basic_auth(x.client_id, secret)),
        None => form.push(("client_id", x.client_id)),
    }
    let url = x.token_endpoint;
    let resp = req.send_form(form).map_err(|e| CodeFlowError::Unavailable(format!("POST {url}: {e}")))?;
    let (status, text) = read(resp, url)?;
    parse_token_response(status, &text)
}

/// `Basic base64(urlencode(id) ":" urlencode(secret))`, as RFC 6749 §2.3.1 has it.
fn basic_auth(id: &str, secret: &str) -> String {
    let creds = format!("{}:{}", urlencoding::encode(id), urlencoding::encode(secret));
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(creds))
}

/// The ID token of a token endpoint's answer, or why there is none.
pub fn parse_token_response(status: u16, text: &str) -> Result<String, CodeFlowError> {
    let doc: Option<Value> = serde_json::from_str(text).ok();
    let field = |name: &str| doc.as_ref().and_then(|d| d.get(name)).and_then(Value::as_str).map(str::to_owned);
    if status >= 500 {
        return Err(CodeFlowError::Unavailable(format!("the token endpoint answered HTTP {status}")));
    }
    if status != 200 {
        let error = field("error").unwrap_or_else(|| format!("HTTP {status}"));
        return Err(CodeFlowError::Refused(match field("error_description") {
            Some(d) => format!("{error}: {d}"),
            None => error,
        }));
    }
    field("id_token").filter(|t| !t.is_empty()).ok_or_else(|| {
        CodeFlowError::Malformed("the token endpoint's answer has no id_token (is `openid` among the scopes?)".into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovery_must_name_its_issuer_and_its_endpoints() {
        let doc = r#"{"issuer": "https://id.test/realms/p",
            "authorization_endpoint": "https://id.test/realms/p/auth",
            "token_endpoint": "https://id.test/realms/p/token",
            "end_session_endpoint": "https://id.test/realms/p/logout"}"#;
        let m = parse_discovery("https://id.test/realms/p", doc).unwrap();
        assert_eq!(m.token_endpoint, "https://id.test/realms/p/token");
        assert_eq!(m.end_session_endpoint.as_deref(), Some("https://id.test/realms/p/logout"));
        assert!(parse_discovery("https://other.test", doc).unwrap_err().contains("names the issuer"));
        let no_logout = r#"{"issuer": "i", "authorization_endpoint": "http://a", "token_endpoint": "http://t"}"#;
        assert_eq!(parse_discovery("i", no_logout).unwrap().end_session_endpoint, None);
        let bad = r#"{"issuer": "i", "authorization_endpoint": "javascript:x", "token_endpoint": "http://t"}"#;
        assert!(parse_discovery("i", bad).is_err());
        assert!(parse_discovery("i", "not json").is_err());
    }

    #[test]
    fn token_answers() {
        assert_eq!(parse_token_response(200, r#"{"id_token": "a.b.c", "access_token": "x"}"#).unwrap(), "a.b.c");
        assert!(matches!(parse_token_response(200, r#"{"access_token": "x"}"#), Err(CodeFlowError::Malformed(_))));
        assert_eq!(
            parse_token_response(400, r#"{"error": "invalid_grant", "error_description": "Code not valid"}"#),
            Err(CodeFlowError::Refused("invalid_grant: Code not valid".into()))
        );
        assert_eq!(parse_token_response(401, ""), Err(CodeFlowError::Refused("HTTP 401".into())));
        assert!(matches!(parse_token_response(503, ""), Err(CodeFlowError::Unavailable(_))));
    }

    #[test]
    fn client_credentials_are_form_encoded_before_base64() {
        let b = basic_auth("coffer console", "s3:cr%t");
        let raw = base64::engine::general_purpose::STANDARD.decode(b.strip_prefix("Basic ").unwrap()).unwrap();
        assert_eq!(String::from_utf8(raw).unwrap(), "coffer%20console:s3%3Acr%25t");
    }
}
