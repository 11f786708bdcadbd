//! `[console]`: which OpenID issuer signs people in, as which client, and for how long.

use std::path::{Path, PathBuf};

use coffer_identity::IssuerConfig;
use serde::Deserialize;

/// The client id when none is configured.
pub const DEFAULT_CLIENT_ID: &str = "coffer-console";
/// The scopes when none are configured.
pub const DEFAULT_SCOPES: [&str; 3] = ["openid", "profile", "email"];
/// Session length when none is configured, in hours.
pub const DEFAULT_SESSION_HOURS: u64 = 8;
/// The longest session, in hours (30 days).
pub const MAX_SESSION_HOURS: u64 = 720;

/// `[console]` as written in the configuration file.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ConsoleSection {
    /// The issuer that signs people in: one of `[[oidc.issuers]]` (its keys, algorithms,
    /// claims, groups and Keycloak roles apply to the ID token).
    pub issuer: String,
    /// The console's client id at the issuer (default `coffer-console`); the ID token's
    /// audience.
    pub client_id: Option<String>,
    /// A file holding the client secret, for a confidential client (re-read at every
    /// sign-in, so a rotated Secret takes effect at once); a public client uses PKCE alone.
    pub client_secret_file: Option<PathBuf>,
    /// Where the issuer sends the browser back (default `<public_url or the request's
    /// host>/console/callback`); it must be registered at the issuer.
    pub redirect_url: Option<String>,
    /// The scopes asked for (default `["openid", "profile", "email"]`; `openid` is required).
    pub scopes: Option<Vec<String>>,
    /// How long a sign-in lasts, in hours (default 8, at most 720).
    pub session_hours: Option<u64>,
}

/// `[console]`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret_file: Option<PathBuf>,
    pub redirect_url: Option<String>,
    pub scopes: Vec<String>,
    /// Seconds.
    pub session_seconds: i64,
}

impl ConsoleSection {
    /// Check the section against the configured issuers; relative paths are taken from
    /// `data_dir`.
    pub fn resolve(self, issuers: &[IssuerConfig], data_dir: &Path) -> Result<ConsoleSettings, String> {
        let issuer = issuers.iter().find(|i| i.issuer == self.issuer).ok_or_else(|| {
            format!("[console] issuer {:?} is not among the [[oidc.issuers]]; add it there first", self.issuer)
        })?;
        if issuer.service_accounts || issuer.token_review.is_some() {
            return Err(format!(
                "[console] issuer {:?} is a service-account issuer; people sign in with an OpenID provider such as Keycloak",
                self.issuer
            ));
        }
        let client_id = self.client_id.unwrap_or_else(|| DEFAULT_CLIENT_ID.to_owned());
        if client_id.is_empty() || client_id.chars().any(|c| c.is_control()) {
            return Err("[console] client_id must be a non-empty printable string".into());
        }
        let scopes = self.scopes.unwrap_or_else(|| DEFAULT_SCOPES.map(str::to_owned).to_vec());
        if !scopes.iter().any(|s| s == "openid") {
            return Err("[console] scopes must include \"openid\"".into());
        }
        if let Some(bad) =
            scopes.iter().find(|s| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()))
        {
            return Err(format!("[console] scope {bad:?} is not a single scope name"));
        }
        if let Some(url) = &self.redirect_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err("[console] redirect_url must start with https:// or http://".into());
        }
        let hours = self.session_hours.unwrap_or(DEFAULT_SESSION_HOURS);
        if !(1..=MAX_SESSION_HOURS).contains(&hours) {
            return Err(format!("[console] session_hours must be between 1 and {MAX_SESSION_HOURS}"));
        }
        let client_secret_file = self.client_secret_file.map(|p| if p.is_relative() { data_dir.join(p) } else { p });
        Ok(ConsoleSettings {
            issuer: self.issuer,
            client_id,
            client_secret_file,
            redirect_url: self.redirect_url,
            scopes,
            session_seconds: hours as i64 * 3600,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issuer(name: &str, service_accounts: bool) -> IssuerConfig {
        serde_json::from_value(serde_json::json!({
            "issuer": name, "audiences": ["coffer"], "service_accounts": service_accounts
        }))
        .unwrap()
    }

    #[test]
    fn defaults_and_checks() {
        let issuers = [issuer("https://id.test/realms/p", false), issuer("https://kubernetes.default.svc", true)];
        let dir = Path::new("/var/lib/coffer");
        let s = ConsoleSection { issuer: "https://id.test/realms/p".into(), ..Default::default() }
            .resolve(&issuers, dir)
            .unwrap();
        assert_eq!(s.client_id, "coffer-console");
        assert_eq!(s.scopes, ["openid", "profile", "email"]);
        assert_eq!(s.session_seconds, 8 * 3600);
        assert_eq!((s.redirect_url, s.client_secret_file), (None, None));

        let s = ConsoleSection {
            issuer: "https://id.test/realms/p".into(),
            client_secret_file: Some("console.secret".into()),
            session_hours: Some(1),
            ..Default::default()
        }
        .resolve(&issuers, dir)
        .unwrap();
        assert_eq!(s.client_secret_file.as_deref(), Some(Path::new("/var/lib/coffer/console.secret")));
        assert_eq!(s.session_seconds, 3600);

        let bad = |f: &dyn Fn(&mut ConsoleSection)| {
            let mut c = ConsoleSection { issuer: "https://id.test/realms/p".into(), ..Default::default() };
            f(&mut c);
            c.resolve(&issuers, dir).unwrap_err()
        };
        assert!(bad(&|c| c.issuer = "https://elsewhere.test".into()).contains("not among"));
        assert!(bad(&|c| c.issuer = "https://kubernetes.default.svc".into()).contains("service-account"));
        assert!(bad(&|c| c.scopes = Some(vec!["profile".into()])).contains("openid"));
        assert!(bad(&|c| c.scopes = Some(vec!["openid".into(), "profile email".into()])).contains("single scope"));
        assert!(bad(&|c| c.session_hours = Some(0)).contains("session_hours"));
        assert!(bad(&|c| c.session_hours = Some(721)).contains("session_hours"));
        assert!(bad(&|c| c.redirect_url = Some("coffer.example/console/callback".into())).contains("redirect_url"));
        assert!(bad(&|c| c.client_id = Some(String::new())).contains("client_id"));
    }
}
