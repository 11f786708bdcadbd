//! Service-account tokens checked through the Kubernetes TokenReview API, against a fake API
//! server on 127.0.0.1 that checks each review request (method, path, the gateway's bearer
//! credential against its token file, the JSON body) and answers as the API server would.
//! The tokens are signed with the throwaway keys in `tests/fixtures`, but nothing checks the
//! signature locally in this mode: that is the API server's job.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine;
use coffer_identity::{IssuerConfig, OidcVerifier, TokenError, TokenReviewConfig};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const GATEWAY_TOKEN: &str = "gateway-credential-1";

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(Path::new(FIXTURES).join(name)).unwrap()
}

/// What the fake API server received.
#[derive(Debug, Clone)]
struct Seen {
    bearer: String,
    body: Value,
}

/// A fake Kubernetes API server: it refuses (400/401/404) any request that is not a proper
/// TokenReview from the gateway, and otherwise answers `answer(request body)`.
struct FakeApi {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeApi {
    fn start(token_file: PathBuf, answer: impl Fn(&Value) -> (u16, Value) + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap() <= 2 {
                        break;
                    }
                    let (name, value) = h.split_once(':').unwrap();
                    headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
                }
                let header = |name: &str| headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
                let len: usize = header("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
                let mut body = vec![0; len];
                reader.read_exact(&mut body).unwrap();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let bearer = header("authorization").unwrap_or_default().trim_start_matches("Bearer ").to_owned();
                log.lock().unwrap().push(Seen { bearer: bearer.clone(), body: body.clone() });

                let expected = std::fs::read_to_string(&token_file).unwrap_or_default();
                let (status, reply) = if line != "POST /apis/authentication.k8s.io/v1/tokenreviews HTTP/1.1\r\n" {
                    (404, json!({"kind": "Status", "message": format!("unexpected {line:?}")}))
                } else if bearer != expected.trim() {
                    (401, json!({"kind": "Status", "message": "Unauthorized"}))
                } else if header("content-type").as_deref() != Some("application/json")
                    || body["apiVersion"] != "authentication.k8s.io/v1"
                    || body["kind"] != "TokenReview"
                    || body["spec"]["audiences"] != json!(["coffer"])
                {
                    (400, json!({"kind": "Status", "message": "a bad TokenReview"}))
                } else {
                    answer(&body)
                };
                let reply = reply.to_string();
                let mut s = stream;
                let _ = write!(
                    s,
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                    reply.len()
                );
            }
        });
        FakeApi { base, seen }
    }

    fn requests(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn last(&self) -> Seen {
        self.seen.lock().unwrap().last().cloned().unwrap()
    }
}

/// The API server's answer for an authenticated token.
fn authenticated(username: &str, audiences: Option<Value>) -> (u16, Value) {
    let mut status = json!({
        "authenticated": true,
        "user": {
            "username": username,
            "uid": "0c4f-uid",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:team-a", "system:authenticated"],
        },
    });
    if let Some(a) = audiences {
        status["audiences"] = a;
    }
    (201, json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}))
}

/// The gateway's token file, the issuer configuration and a verifier using `api`.
struct Setup {
    dir: tempfile::TempDir,
    verifier: OidcVerifier,
}

impl Setup {
    fn token_file(dir: &tempfile::TempDir) -> PathBuf {
        dir.path().join("token")
    }

    fn new(api_server: &str, cache_seconds: u64, dir: tempfile::TempDir) -> Self {
        let review = TokenReviewConfig {
            api_server: api_server.into(),
            token_file: Self::token_file(&dir),
            ca_file: None,
            cache_seconds,
            timeout_seconds: 2,
        };
        Self::with_review(review, dir)
    }

    fn with_review(review: TokenReviewConfig, dir: tempfile::TempDir) -> Self {
        let cfg = IssuerConfig {
            issuer: ISSUER.into(),
            audiences: vec!["coffer".into()],
            jwks_uri: None,
            // Never read in this mode: a JWKS fetch would fail the tests.
            jwks_file: Some("/nonexistent/jwks.json".into()),
            algorithms: vec![Algorithm::RS256],
            username_claim: "preferred_username".into(),
            groups_claim: "groups".into(),
            realm_roles: false,
            client_roles: vec![],
            leeway_seconds: 60,
            jwks_ttl_seconds: 3600,
            service_accounts: true,
            token_review: Some(review),
        };
        Setup { dir, verifier: OidcVerifier::new(vec![cfg]) }
    }
}

/// A temporary directory holding the gateway's token file (with a trailing newline, as
/// files often have).
fn gateway_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(Setup::token_file(&dir), format!("{GATEWAY_TOKEN}\n")).unwrap();
    dir
}

/// A fake API server answering `answer` for the token `expected` only, and a verifier using it.
fn setup(cache_seconds: u64, answer: impl Fn(&Value) -> (u16, Value) + Send + 'static) -> (FakeApi, Setup) {
    let dir = gateway_dir();
    let api = FakeApi::start(Setup::token_file(&dir), answer);
    let s = Setup::new(&api.base, cache_seconds, dir);
    (api, s)
}

fn claims(sub: &str) -> Value {
    let t = now();
    json!({"iss": ISSUER, "aud": ["coffer"], "exp": t + 300, "iat": t, "nbf": t, "sub": sub,
        "kubernetes.io": {"namespace": "team-a", "serviceaccount": {"name": "notebook"}}})
}

fn sign(claims: &Value) -> String {
    let mut h = Header::new(Algorithm::RS256);
    h.kid = Some("key-a".into());
    jsonwebtoken::encode(&h, claims, &EncodingKey::from_rsa_pem(&fixture("rsa-a.pem")).unwrap()).unwrap()
}

fn b64(v: &Value) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

const SA: &str = "system:serviceaccount:team-a:notebook";

#[test]
fn an_authenticated_service_account_names_its_namespace() {
    let signed = claims(SA);
    let token = sign(&signed);
    let expected = token.clone();
    let (api, s) = setup(10, move |body| {
        if body["spec"]["token"] == expected.as_str() {
            authenticated(SA, Some(json!(["coffer"])))
        } else {
            (201, json!({"status": {"authenticated": false, "error": "unknown token"}}))
        }
    });
    let t = now();
    let id = s.verifier.verify(&token, t).unwrap();
    assert_eq!(api.requests(), 1);
    assert_eq!(api.last().bearer, GATEWAY_TOKEN, "the token file's content, trimmed");
    assert_eq!(id.username, "team-a");
    assert_eq!(id.subject, SA);
    assert_eq!(id.issuer, ISSUER);
    assert_eq!(id.email, None);
    assert_eq!(id.service_account, Some(("team-a".into(), "notebook".into())));
    assert_eq!(id.expires_at, signed["exp"].as_i64().unwrap(), "the token's own expiry");
    let groups: Vec<&str> = id.groups.iter().map(String::as_str).collect();
    assert_eq!(groups, ["system:authenticated", "system:serviceaccounts", "system:serviceaccounts:team-a"]);
    // An API server that lists no audiences: the token's own `aud` (now vouched for) decides.
    let other = sign(&claims("system:serviceaccount:team-a:other"));
    let expected = other.clone();
    let (api, s) = setup(10, move |body| {
        assert_eq!(body["spec"]["token"], expected.as_str());
        authenticated("system:serviceaccount:team-a:other", None)
    });
    assert_eq!(s.verifier.verify(&other, t).unwrap().service_account, Some(("team-a".into(), "other".into())));
    assert_eq!(api.requests(), 1);
}

#[test]
fn a_token_the_cluster_refuses_is_rejected_and_not_cached() {
    let (api, s) = setup(10, |_| {
        (201, json!({"kind": "TokenReview", "status": {"authenticated": false, "error": "token has been invalidated"}}))
    });
    let token = sign(&claims(SA));
    assert_eq!(
        s.verifier.verify(&token, now()).unwrap_err(),
        TokenError::Rejected("token has been invalidated".into())
    );
    assert_eq!(
        s.verifier.verify(&token, now()).unwrap_err(),
        TokenError::Rejected("token has been invalidated".into())
    );
    assert_eq!(api.requests(), 2, "refusals are not cached");
    // Not authenticated, with no reason given.
    let (_api, s) = setup(10, |_| (201, json!({"kind": "TokenReview", "status": {"authenticated": false}})));
    assert!(matches!(s.verifier.verify(&token, now()), Err(TokenError::Rejected(_))));
    // An error beside `authenticated: true` is a refusal too.
    let (_api, s) = setup(10, |_| {
        let (code, mut v) = authenticated(SA, None);
        v["status"]["error"] = json!("partial failure");
        (code, v)
    });
    assert_eq!(s.verifier.verify(&token, now()).unwrap_err(), TokenError::Rejected("partial failure".into()));
}

#[test]
fn audiences_the_cluster_reports_must_include_ours() {
    let (api, s) = setup(10, |_| authenticated(SA, Some(json!(["kubernetes", "vault"]))));
    let token = sign(&claims(SA));
    assert_eq!(s.verifier.verify(&token, now()).unwrap_err(), TokenError::WrongAudience);
    assert_eq!(api.requests(), 1);
    let (_api, s) = setup(10, |_| authenticated(SA, Some(json!([]))));
    assert_eq!(s.verifier.verify(&token, now()).unwrap_err(), TokenError::WrongAudience);
}

#[test]
fn a_user_that_is_not_a_service_account_is_refused() {
    for username in ["alice", "system:serviceaccount:team-a", "system:serviceaccount::sa", "system:node:worker-1"] {
        let (api, s) = setup(10, move |_| authenticated(username, Some(json!(["coffer"]))));
        let err = s.verifier.verify(&sign(&claims(SA)), now()).unwrap_err();
        assert!(matches!(err, TokenError::MissingClaim(_)), "{username}: {err:?}");
        assert_eq!(api.requests(), 1);
    }
}

#[test]
fn an_unreachable_or_failing_api_server_is_unavailable_without_leaking_secrets() {
    let token = sign(&claims(SA));
    // Nobody listens there.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let s = Setup::new(&base, 10, gateway_dir());
    let err = s.verifier.verify(&token, now()).unwrap_err();
    assert!(matches!(&err, TokenError::KeysUnavailable(_)), "{err:?}");

    // A 500 whose message (wrongly) echoes the token and the credential: neither may appear.
    let echo = token.clone();
    let (api, s) = setup(10, move |_| {
        (500, json!({"kind": "Status", "message": format!("internal error for {echo} by {GATEWAY_TOKEN}")}))
    });
    let err = s.verifier.verify(&token, now()).unwrap_err();
    let TokenError::KeysUnavailable(msg) = &err else { panic!("{err:?}") };
    assert!(msg.contains("500"), "{msg}");
    assert!(!msg.contains(&token) && !msg.contains(GATEWAY_TOKEN), "{msg}");
    assert_eq!(api.requests(), 1);

    // A 403 (missing RBAC) keeps the API server's reason.
    let (_api, s) =
        setup(10, |_| (403, json!({"kind": "Status", "message": "tokenreviews.authentication.k8s.io is forbidden"})));
    let err = s.verifier.verify(&token, now()).unwrap_err();
    assert!(matches!(&err, TokenError::KeysUnavailable(m) if m.contains("403") && m.contains("forbidden")), "{err:?}");

    // A 2xx that is not a TokenReview at all.
    let (_api, s) = setup(10, |_| (200, json!("<html>")));
    assert!(matches!(s.verifier.verify(&token, now()), Err(TokenError::KeysUnavailable(_))));
}

#[test]
fn plainly_bad_tokens_are_refused_without_asking() {
    let (api, s) = setup(10, |_| authenticated(SA, Some(json!(["coffer"]))));
    let t = now();
    let good = claims(SA);
    let with = |field: &str, v: Value| {
        let mut c = good.clone();
        c[field] = v;
        c
    };
    let none = format!("{}.{}.", b64(&json!({"alg": "none", "typ": "JWT"})), b64(&good));
    let hs256 = {
        let h = Header::new(Algorithm::HS256);
        jsonwebtoken::encode(&h, &good, &EncodingKey::from_secret(b"guessable")).unwrap()
    };
    let mut no_exp = good.clone();
    no_exp.as_object_mut().unwrap().remove("exp");
    #[rustfmt::skip]
    let table: Vec<(&str, String, TokenError)> = vec![
        ("alg none", none, TokenError::AlgorithmNotAllowed),
        ("an algorithm not pinned", hs256, TokenError::AlgorithmNotAllowed),
        ("expired beyond the leeway", sign(&with("exp", json!(t - 120))), TokenError::Expired),
        ("not valid yet", sign(&with("nbf", json!(t + 600))), TokenError::NotYetValid),
        ("another audience", sign(&with("aud", json!("vault"))), TokenError::WrongAudience),
        ("no expiry", sign(&no_exp), TokenError::MissingClaim("exp".into())),
        ("another issuer", sign(&with("iss", json!("https://elsewhere.test"))), TokenError::UnknownIssuer),
        ("not a JWT", "abc.def".into(), TokenError::Malformed),
        ("a payload that is not JSON", format!("{}.bm90LWpzb24.", b64(&json!({"alg": "RS256"}))), TokenError::Malformed),
    ];
    for (what, token, want) in table {
        assert_eq!(s.verifier.verify(&token, t).unwrap_err(), want, "{what}");
    }
    assert_eq!(api.requests(), 0, "none of these reached the API server");
    // A token still within the leeway is reviewed.
    assert!(s.verifier.verify(&sign(&with("exp", json!(t - 30))), t).is_ok());
    assert_eq!(api.requests(), 1);
}

#[test]
fn positive_reviews_are_cached_and_the_gateway_token_is_reread() {
    let (api, s) = setup(10, |_| authenticated(SA, Some(json!(["coffer"]))));
    let t = now();
    let first = sign(&claims(SA));
    let a = s.verifier.verify(&first, t).unwrap();
    let b = s.verifier.verify(&first, t).unwrap();
    assert_eq!(a, b);
    assert_eq!(api.requests(), 1, "the second verification is answered from the cache");
    assert_eq!(api.last().body["spec"]["token"], first.as_str());

    // The kubelet rotates the gateway's token: the next (uncached) review carries the new one.
    std::fs::write(Setup::token_file(&s.dir), "gateway-credential-2").unwrap();
    let mut c = claims(SA);
    c["jti"] = json!("another-token");
    let second = sign(&c);
    s.verifier.verify(&second, t).unwrap();
    assert_eq!(api.requests(), 2);
    assert_eq!(api.last().bearer, "gateway-credential-2");
    assert_eq!(api.last().body["spec"]["token"], second.as_str());

    // The cache never outlives the token: one expiring now is reviewed every time.
    let mut c = claims(SA);
    c["exp"] = json!(t);
    let expiring = sign(&c);
    s.verifier.verify(&expiring, t).unwrap();
    s.verifier.verify(&expiring, t).unwrap();
    assert_eq!(api.requests(), 4);

    // cache_seconds = 0: no cache at all.
    let (api, s) = setup(0, |_| authenticated(SA, Some(json!(["coffer"]))));
    s.verifier.verify(&first, t).unwrap();
    s.verifier.verify(&first, t).unwrap();
    assert_eq!(api.requests(), 2);
}

#[test]
fn the_cache_is_per_token() {
    let (api, s) = setup(10, |body| {
        // Each token names its own service account, in its `sub`.
        let token = body["spec"]["token"].as_str().unwrap();
        let payload = token.split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        authenticated(claims["sub"].as_str().unwrap(), None)
    });
    let t = now();
    let a = s.verifier.verify(&sign(&claims("system:serviceaccount:team-a:one")), t).unwrap();
    let b = s.verifier.verify(&sign(&claims("system:serviceaccount:team-b:two")), t).unwrap();
    assert_eq!(a.service_account, Some(("team-a".into(), "one".into())));
    assert_eq!(b.service_account, Some(("team-b".into(), "two".into())));
    assert_eq!(api.requests(), 2);
}

#[test]
fn missing_local_files_fail_before_any_request() {
    let token = sign(&claims(SA));
    // No gateway token.
    let (api, s) = setup(10, |_| authenticated(SA, None));
    std::fs::remove_file(Setup::token_file(&s.dir)).unwrap();
    let err = s.verifier.verify(&token, now()).unwrap_err();
    assert!(matches!(&err, TokenError::KeysUnavailable(m) if m.contains("token")), "{err:?}");
    // An https API server whose CA bundle holds no certificate.
    let dir = gateway_dir();
    let ca = dir.path().join("ca.crt");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    let review = TokenReviewConfig {
        api_server: api.base.replace("http://", "https://"),
        token_file: Setup::token_file(&dir),
        ca_file: Some(ca),
        cache_seconds: 10,
        timeout_seconds: 2,
    };
    let s = Setup::with_review(review, dir);
    let err = s.verifier.verify(&token, now()).unwrap_err();
    assert!(matches!(&err, TokenError::KeysUnavailable(m) if m.contains("CA bundle")), "{err:?}");
    assert_eq!(api.requests(), 0);
}
