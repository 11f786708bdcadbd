//! OIDC token verification against signed tokens: the refusals (expired, not yet valid,
//! wrong audience, unknown issuer, bad signature, `alg: none`, algorithm confusion), Keycloak
//! claim mapping, key rotation with its rate limit, and discovery over HTTP.
//! The RSA keys in `tests/fixtures` are throwaway test keys.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::Duration;

use base64::Engine;
use coffer_identity::{IssuerConfig, OidcVerifier, TokenError};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const ISSUER: &str = "https://id.example.test/realms/platform";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).unwrap()
}

fn config(jwks_file: &Path) -> IssuerConfig {
    IssuerConfig {
        issuer: ISSUER.into(),
        audiences: vec!["coffer".into()],
        jwks_uri: None,
        jwks_file: Some(jwks_file.to_owned()),
        algorithms: vec![Algorithm::RS256],
        username_claim: "preferred_username".into(),
        groups_claim: "groups".into(),
        realm_roles: true,
        client_roles: vec!["coffer".into()],
        leeway_seconds: 60,
        jwks_ttl_seconds: 3600,
        service_accounts: false,
        token_review: None,
    }
}

/// A verifier over a private copy of `jwks-a.json`, and that copy's path.
fn verifier(min_refetch: Duration) -> (OidcVerifier, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, fixture("jwks-a.json")).unwrap();
    (OidcVerifier::with_min_refetch(vec![config(&path)], min_refetch), dir)
}

fn claims() -> Value {
    let t = now();
    json!({
        "iss": ISSUER,
        "sub": "f3b6c7e0-1111",
        "aud": ["account", "coffer"],
        "exp": t + 300,
        "iat": t,
        "nbf": t - 5,
        "preferred_username": "alice",
        "email": "alice@example.test",
        "groups": ["/analysts", "leads"],
        "realm_access": {"roles": ["offline_access", "data-steward"]},
        "resource_access": {"coffer": {"roles": ["protected-b-reader"]}, "other": {"roles": ["ignored"]}},
    })
}

fn sign(claims: &Value, key: &str, kid: &str) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some(kid.into());
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_rsa_pem(&fixture(key)).unwrap()).unwrap()
}

fn with(mut c: Value, field: &str, v: Value) -> Value {
    c[field] = v;
    c
}

#[test]
fn a_valid_keycloak_token_maps_to_user_groups_and_roles() {
    let (v, _dir) = verifier(Duration::from_secs(10));
    let id = v.verify(&sign(&claims(), "rsa-a.pem", "key-a"), now()).unwrap();
    assert_eq!(id.username, "alice");
    assert_eq!(id.issuer, ISSUER);
    assert_eq!(id.subject, "f3b6c7e0-1111");
    assert_eq!(id.email.as_deref(), Some("alice@example.test"));
    let groups: Vec<&str> = id.groups.iter().map(String::as_str).collect();
    assert_eq!(groups, ["analysts", "data-steward", "leads", "offline_access", "protected-b-reader"]);
}

#[test]
fn refusals() {
    let (v, _dir) = verifier(Duration::from_secs(10));
    let t = now();
    let good = claims();
    #[rustfmt::skip]
    let table: Vec<(&str, String, TokenError)> = vec![
        ("expired beyond the leeway", sign(&with(good.clone(), "exp", json!(t - 120)), "rsa-a.pem", "key-a"), TokenError::Expired),
        ("not valid yet", sign(&with(good.clone(), "nbf", json!(t + 600)), "rsa-a.pem", "key-a"), TokenError::NotYetValid),
        ("issued in the future", sign(&with(good.clone(), "iat", json!(t + 600)), "rsa-a.pem", "key-a"), TokenError::NotYetValid),
        ("another audience", sign(&with(good.clone(), "aud", json!("someone-else")), "rsa-a.pem", "key-a"), TokenError::WrongAudience),
        ("an unknown issuer", sign(&with(good.clone(), "iss", json!("https://evil.test")), "rsa-a.pem", "key-a"), TokenError::UnknownIssuer),
        ("signed by another key", sign(&good, "rsa-b.pem", "key-a"), TokenError::BadSignature),
        ("no user name", sign(&with(good.clone(), "preferred_username", json!(null)), "rsa-a.pem", "key-a"), TokenError::MissingClaim("preferred_username".into())),
        ("not a JWT", "abc.def".into(), TokenError::Malformed),
    ];
    for (what, token, want) in table {
        assert_eq!(v.verify(&token, t).unwrap_err(), want, "{what}");
    }
    // Within the leeway, an expired token still passes.
    assert!(v.verify(&sign(&with(good.clone(), "exp", json!(t - 30)), "rsa-a.pem", "key-a"), t).is_ok());
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

#[test]
fn alg_none_and_algorithm_confusion_are_refused() {
    let (v, _dir) = verifier(Duration::from_secs(10));
    let payload = b64(&claims());
    let none = format!("{}.{payload}.", b64(&json!({"alg": "none", "typ": "JWT", "kid": "key-a"})));
    assert_eq!(v.verify(&none, now()).unwrap_err(), TokenError::AlgorithmNotAllowed);
    // HS256 keyed with the public JWKS: the classic confusion attack.
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("key-a".into());
    let hs = jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_secret(&fixture("jwks-a.json"))).unwrap();
    assert_eq!(v.verify(&hs, now()).unwrap_err(), TokenError::AlgorithmNotAllowed);
}

#[test]
fn a_rotated_key_is_picked_up_without_a_restart() {
    let (v, dir) = verifier(Duration::ZERO);
    assert!(v.verify(&sign(&claims(), "rsa-a.pem", "key-a"), now()).is_ok());
    // The provider rotates: the JWKS now holds key-b only.
    std::fs::write(dir.path().join("jwks.json"), fixture("jwks-b.json")).unwrap();
    assert!(v.verify(&sign(&claims(), "rsa-b.pem", "key-b"), now()).is_ok());
}

#[test]
fn unknown_key_ids_refetch_at_most_once_per_interval() {
    let (v, dir) = verifier(Duration::from_secs(3600));
    assert!(v.verify(&sign(&claims(), "rsa-a.pem", "key-a"), now()).is_ok());
    std::fs::write(dir.path().join("jwks.json"), fixture("jwks-b.json")).unwrap();
    // The first fetch was just now: an unknown kid may not trigger another yet.
    assert_eq!(v.verify(&sign(&claims(), "rsa-b.pem", "key-b"), now()).unwrap_err(), TokenError::UnknownKey);
    // Known keys keep working meanwhile.
    assert!(v.verify(&sign(&claims(), "rsa-a.pem", "key-a"), now()).is_ok());
}

/// A one-shot-per-connection HTTP server for discovery and the JWKS.
fn serve_discovery() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let jwks = String::from_utf8(fixture("jwks-a.json")).unwrap();
    let discovery = json!({"issuer": base, "jwks_uri": format!("{base}/certs")}).to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() <= 2 {
                    break;
                }
            }
            let body = if line.contains("/.well-known/openid-configuration") { &discovery } else { &jwks };
            let mut s = stream;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    base
}

#[test]
fn keys_are_found_by_discovery() {
    let base = serve_discovery();
    let mut cfg = config(Path::new("/nonexistent"));
    cfg.issuer = base.clone();
    cfg.jwks_file = None;
    let v = OidcVerifier::new(vec![cfg]);
    let token = sign(&with(claims(), "iss", json!(base)), "rsa-a.pem", "key-a");
    assert_eq!(v.verify(&token, now()).unwrap().username, "alice");
}

#[test]
fn service_account_tokens_name_their_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("jwks.json");
    std::fs::write(&path, fixture("jwks-a.json")).unwrap();
    let mut cfg = config(&path);
    cfg.service_accounts = true;
    let v = OidcVerifier::new(vec![cfg]);
    let t = now();
    let sa = json!({"iss": ISSUER, "aud": ["coffer"], "exp": t + 300, "iat": t,
        "sub": "system:serviceaccount:team-a:notebook"});
    let id = v.verify(&sign(&sa, "rsa-a.pem", "key-a"), t).unwrap();
    assert_eq!(id.username, "team-a");
    assert_eq!(id.service_account, Some(("team-a".into(), "notebook".into())));
    assert!(id.groups.contains("system:serviceaccounts:team-a"));
    let person = with(sa, "sub", json!("alice"));
    assert!(matches!(v.verify(&sign(&person, "rsa-a.pem", "key-a"), t), Err(TokenError::MissingClaim(_))));
}

#[test]
fn id_tokens_are_for_the_console_client_with_the_sign_ins_nonce() {
    let (v, _dir) = verifier(Duration::from_secs(10));
    let t = now();
    let id_token = |c: Value| sign(&c, "rsa-a.pem", "key-a");
    let good = with(with(claims(), "aud", json!("coffer-console")), "nonce", json!("n-123"));
    let id = v.verify_id_token(&id_token(good.clone()), t, ISSUER, "coffer-console", "n-123").unwrap();
    // The issuer's claim mapping applies as for bearer tokens.
    assert_eq!(id.username, "alice");
    assert!(id.groups.contains("analysts") && id.groups.contains("protected-b-reader"));
    // An ID token is no bearer token: its audience is the console's client, not coffer's.
    assert_eq!(v.verify(&id_token(good.clone()), t).unwrap_err(), TokenError::WrongAudience);
    #[rustfmt::skip]
    let table: Vec<(&str, Value, TokenError)> = vec![
        ("another nonce", with(good.clone(), "nonce", json!("n-999")), TokenError::WrongNonce),
        ("no nonce", with(good.clone(), "nonce", json!(null)), TokenError::WrongNonce),
        ("an access token for coffer", with(good.clone(), "aud", json!("coffer")), TokenError::WrongAudience),
        ("authorized for another party", with(good.clone(), "azp", json!("other-app")), TokenError::WrongAudience),
        ("expired", with(good.clone(), "exp", json!(t - 120)), TokenError::Expired),
    ];
    for (what, c, want) in table {
        assert_eq!(v.verify_id_token(&id_token(c), t, ISSUER, "coffer-console", "n-123").unwrap_err(), want, "{what}");
    }
    // Several audiences, the client among them, authorized for the client: accepted.
    let multi = with(with(good.clone(), "aud", json!(["coffer-console", "account"])), "azp", json!("coffer-console"));
    assert!(v.verify_id_token(&id_token(multi), t, ISSUER, "coffer-console", "n-123").is_ok());
    // Only from the console's issuer, even when another configured issuer signed it.
    assert_eq!(
        v.verify_id_token(&id_token(good), t, "https://other.test", "coffer-console", "n-123").unwrap_err(),
        TokenError::UnknownIssuer
    );
}
