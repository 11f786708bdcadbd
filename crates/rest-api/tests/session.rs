//! The web console's session cookie as a REST credential: it authenticates (`session`), a
//! state-changing request must carry its CSRF token in `X-CSRF-Token`, a tampered, foreign or
//! expired cookie is a 401 — and callers with other credentials are unaffected.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Method, Request, StatusCode, header};
use coffer_backend::{Backend, FsBackend};
use coffer_gateway::Gateway;
use coffer_identity::console::{self, WebSession};
use coffer_identity::{ServerKey, TrustedHeaders, TrustedHeadersConfig};
use coffer_rest_api::{RestState, router};
use http_body_util::BodyExt;
use tower::ServiceExt;

struct App {
    router: axum::Router,
    gateway: Arc<Gateway>,
    _dir: tempfile::TempDir,
}

async fn app() -> App {
    let dir = tempfile::tempdir().unwrap();
    let store = coffer_metadata::open("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let tier: Arc<dyn Backend> = Arc::new(FsBackend::new(dir.path().join("objects")).await.unwrap());
    let gateway = Arc::new(Gateway::new(
        store,
        BTreeMap::from([("standard".to_owned(), tier)]),
        "standard".into(),
        ServerKey::generate(),
    ));
    let headers = TrustedHeaders::new(TrustedHeadersConfig {
        proxies: vec!["10.9.9.9".into()],
        user_header: "x-forwarded-user".into(),
        email_header: "x-forwarded-email".into(),
        groups_header: "x-forwarded-groups".into(),
    })
    .unwrap();
    let state = RestState { gateway: gateway.clone(), headers: Some(Arc::new(headers)), public_url: None };
    App { router: axum::Router::new().nest("/api/v1", router(state)), gateway, _dir: dir }
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

fn session(user: &str, expires_in: i64) -> WebSession {
    WebSession {
        user: user.into(),
        groups: BTreeSet::from(["analysts".to_owned()]),
        source: "oidc:https://id.test".into(),
        csrf: console::random_token(),
        issued_at: now(),
        expires_at: now() + expires_in,
    }
}

/// A request from `from` with these extra headers; the status and the JSON body.
async fn call(
    app: &App,
    method: Method,
    uri: &str,
    from: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::builder().method(method).uri(uri);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let mut req = req.body(Body::from(body.to_owned())).unwrap();
    req.extensions_mut().insert(ConnectInfo(format!("{from}:40000").parse::<SocketAddr>().unwrap()));
    let resp = app.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn a_session_cookie_authenticates_and_state_changes_need_its_csrf_token() {
    let app = app().await;
    let s = session("alice", 3600);
    let cookie =
        format!("theme=dark; {}={}", console::SESSION_COOKIE, console::seal_session(app.gateway.server_key(), &s));
    let with_cookie = [("cookie", cookie.as_str())];

    let (status, me) = call(&app, Method::GET, "/api/v1/me", "127.0.0.1", &with_cookie, "").await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["name"], "alice");
    assert_eq!(me["groups"], serde_json::json!(["analysts"]));
    assert_eq!(me["authenticated_by"], "session");

    let new_bucket = r#"{"name": "alice-data"}"#;
    let json = ("content-type", "application/json");
    // No token, a wrong one, the CSRF cookie's name instead of the header: refused.
    for extra in [vec![], vec![("x-csrf-token", "not-the-token")], vec![("x-csrf-token", "")]] {
        let mut h = vec![with_cookie[0], json];
        h.extend(extra.clone());
        let (status, problem) = call(&app, Method::POST, "/api/v1/buckets", "127.0.0.1", &h, new_bucket).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{extra:?}: {problem}");
        assert_eq!(problem["detail"], "missing or wrong CSRF token");
    }
    for (method, uri) in [
        (Method::PUT, "/api/v1/buckets/alice-data/objects/k"),
        (Method::DELETE, "/api/v1/buckets/alice-data"),
        (Method::POST, "/api/v1/me/keys"),
    ] {
        let (status, _) = call(&app, method.clone(), uri, "127.0.0.1", &with_cookie, "").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {uri}");
    }
    // With the token: through.
    let h = [with_cookie[0], json, ("x-csrf-token", s.csrf.as_str())];
    let (status, created) = call(&app, Method::POST, "/api/v1/buckets", "127.0.0.1", &h, new_bucket).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["owner"], "alice");
    assert_eq!(created["kind"], "owned");
    // Reads need no token.
    let (status, list) = call(&app, Method::GET, "/api/v1/buckets", "127.0.0.1", &with_cookie, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list[0]["name"], "alice-data");
}

#[tokio::test]
async fn tampered_foreign_and_expired_cookies_are_401() {
    let app = app().await;
    let key = app.gateway.server_key();
    let sealed = console::seal_session(key, &session("alice", 3600));
    let expired = console::seal_session(key, &session("alice", -1));
    let foreign = console::seal_session(&ServerKey::generate(), &session("alice", 3600));
    let (head, tag) = sealed.rsplit_once('.').unwrap();
    let tampered = format!("{head}x.{tag}");
    for (what, value, says) in [
        ("expired", expired.as_str(), "expired"),
        ("another server's", foreign.as_str(), "signature"),
        ("tampered", tampered.as_str(), "cookie"),
        ("garbage", "hello", "malformed"),
    ] {
        let cookie = format!("{}={value}", console::SESSION_COOKIE);
        let (status, problem) = call(&app, Method::GET, "/api/v1/me", "127.0.0.1", &[("cookie", &cookie)], "").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {problem}");
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.starts_with("the session cookie was refused") && detail.contains(says), "{what}: {detail}");
    }
}

#[tokio::test]
async fn other_callers_are_unaffected() {
    let app = app().await;
    // The sidecar's headers (from its address) need no CSRF token, even beside a stale cookie.
    let stale = format!("{}=v1.stale.cookie", console::SESSION_COOKIE);
    let h = [("x-forwarded-user", "bob"), ("content-type", "application/json"), ("cookie", stale.as_str())];
    let (status, body) = call(&app, Method::POST, "/api/v1/buckets", "10.9.9.9", &h, r#"{"name": "bob-data"}"#).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, me) = call(&app, Method::GET, "/api/v1/me", "10.9.9.9", &h[..1], "").await;
    assert_eq!((status, me["authenticated_by"].as_str()), (StatusCode::OK, Some("headers")));
    // A bearer token is judged as a bearer token: the cookie beside it plays no part.
    let cookie = format!(
        "{}={}",
        console::SESSION_COOKIE,
        console::seal_session(app.gateway.server_key(), &session("alice", 60))
    );
    let h = [("authorization", "Bearer not.a.token"), ("cookie", cookie.as_str())];
    let (status, problem) = call(&app, Method::GET, "/api/v1/me", "127.0.0.1", &h, "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{problem}");
    assert_eq!(problem["detail"], "no token issuer is configured");
    // Without any credential: the usual 401, naming what to do.
    let (status, problem) =
        call(&app, Method::GET, "/api/v1/me", "127.0.0.1", &[(header::ACCEPT.as_str(), "*/*")], "").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(problem["detail"].as_str().unwrap().starts_with("sign in"), "{problem}");
}
