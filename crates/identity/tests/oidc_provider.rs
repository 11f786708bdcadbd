//! OIDC verification against a real OpenID provider: oauth2-mock-server (npm), started
//! from `tests/oidc/issuer.mjs`, found by discovery over HTTP, issuing RS256 tokens and
//! rotating its keys. `scripts/test` installs it (`npm ci` in `tests/oidc`); without it the
//! test fails under CI=true and is skipped otherwise.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use coffer_identity::{IssuerConfig, OidcVerifier, TokenError};
use jsonwebtoken::Algorithm;
use serde_json::{Value, json};

struct Provider {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    issuer: String,
}

impl Provider {
    fn start() -> Option<Self> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/oidc");
        if !dir.join("node_modules/oauth2-mock-server").exists() {
            let why = format!("oauth2-mock-server is not installed: run `npm ci` in {}", dir.display());
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{why}");
            }
            eprintln!("skipping: {why}");
            return None;
        }
        let mut child = Command::new("node")
            .arg("issuer.mjs")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node runs");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
        let hello: Value = serde_json::from_str(&line).expect("the provider announces its issuer");
        let issuer = hello["issuer"].as_str().unwrap().to_owned();
        Some(Provider { child, stdin, stdout, issuer })
    }

    fn ask(&mut self, req: Value) -> Value {
        writeln!(self.stdin, "{req}").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        let v: Value = serde_json::from_str(&line).unwrap();
        assert!(v.get("error").is_none(), "provider: {v}");
        v
    }

    fn token(&mut self, claims: Value, expires_in: i64, kid: Option<&str>) -> String {
        let v = self.ask(json!({"cmd": "token", "claims": claims, "expiresIn": expires_in, "kid": kid}));
        v["token"].as_str().unwrap().to_owned()
    }

    fn verifier(&self, min_refetch: Duration) -> OidcVerifier {
        OidcVerifier::with_min_refetch(
            vec![IssuerConfig {
                issuer: self.issuer.clone(),
                audiences: vec!["coffer".into()],
                jwks_uri: None,
                jwks_file: None,
                algorithms: vec![Algorithm::RS256],
                username_claim: "preferred_username".into(),
                groups_claim: "groups".into(),
                realm_roles: true,
                client_roles: vec!["coffer".into()],
                leeway_seconds: 60,
                jwks_ttl_seconds: 3600,
                service_accounts: false,
                token_review: None,
            }],
            min_refetch,
        )
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn keycloak_claims() -> Value {
    json!({
        "aud": "coffer",
        "sub": "0b1c-alice",
        "preferred_username": "alice",
        "email": "alice@example.test",
        "groups": ["/analysts"],
        "realm_access": {"roles": ["data-steward"]},
        "resource_access": {"coffer": {"roles": ["pb-reader"]}},
    })
}

#[test]
fn tokens_from_a_real_provider() {
    let Some(mut p) = Provider::start() else { return };
    let v = p.verifier(Duration::ZERO);

    // accepted, with Keycloak-shaped claims mapped
    let id = v.verify(&p.token(keycloak_claims(), 300, None), now()).unwrap();
    assert_eq!(id.username, "alice");
    assert_eq!(id.issuer, p.issuer);
    let groups: Vec<&str> = id.groups.iter().map(String::as_str).collect();
    assert_eq!(groups, ["analysts", "data-steward", "pb-reader"]);

    // expired (beyond the 60 s leeway)
    let expired = p.token(keycloak_claims(), -300, None);
    assert_eq!(v.verify(&expired, now()).unwrap_err(), TokenError::Expired);

    // another audience
    let mut c = keycloak_claims();
    c["aud"] = json!("another-app");
    assert_eq!(v.verify(&p.token(c, 300, None), now()).unwrap_err(), TokenError::WrongAudience);

    // another issuer, signed by the same provider
    let mut c = keycloak_claims();
    c["iss"] = json!("https://not-configured.example.test");
    assert_eq!(v.verify(&p.token(c, 300, None), now()).unwrap_err(), TokenError::UnknownIssuer);

    // a tampered payload keeps the provider's signature, which no longer matches
    let good = p.token(keycloak_claims(), 300, None);
    let parts: Vec<&str> = good.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();
    payload["preferred_username"] = json!("mallory");
    let forged = format!("{}.{}.{}", parts[0], b64.encode(payload.to_string()), parts[2]);
    assert_eq!(v.verify(&forged, now()).unwrap_err(), TokenError::BadSignature);

    // alg: none with the provider's claims
    let header = b64.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
    let unsigned = format!("{header}.{}.", parts[1]);
    assert_eq!(v.verify(&unsigned, now()).unwrap_err(), TokenError::AlgorithmNotAllowed);
}

#[test]
fn a_key_rotation_is_picked_up_without_a_restart() {
    let Some(mut p) = Provider::start() else { return };
    let v = p.verifier(Duration::ZERO);
    let before = p.token(keycloak_claims(), 300, None);
    assert!(v.verify(&before, now()).is_ok());
    // The provider adds a key; tokens signed with it name a kid the cache has never seen.
    let kid = p.ask(json!({"cmd": "rotate"}))["kid"].as_str().unwrap().to_owned();
    let after = p.token(keycloak_claims(), 300, Some(&kid));
    assert_eq!(jsonwebtoken::decode_header(&after).unwrap().kid.as_deref(), Some(kid.as_str()));
    assert_eq!(v.verify(&after, now()).unwrap().username, "alice");
    assert!(v.verify(&before, now()).is_ok());
}
