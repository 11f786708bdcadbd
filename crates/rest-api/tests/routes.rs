//! The OpenAPI document and the router come from the same annotations; these tests hold
//! them to it: every documented operation is routed, unknown routes and methods answer
//! problem documents, and the document is well formed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use coffer_backend::{Backend, FsBackend};
use coffer_gateway::Gateway;
use coffer_rest_api::{RestState, router};
use http_body_util::BodyExt;
use tower::ServiceExt;

async fn app() -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = coffer_metadata::open("sqlite::memory:").await.unwrap();
    store.migrate().await.unwrap();
    let tier: Arc<dyn Backend> = Arc::new(FsBackend::new(dir.path().join("objects")).await.unwrap());
    let gateway = Gateway::new(
        store,
        BTreeMap::from([("standard".to_owned(), tier)]),
        "standard".into(),
        coffer_identity::ServerKey::generate(),
    );
    let state = RestState { gateway: Arc::new(gateway), headers: None, public_url: None };
    (axum::Router::new().nest("/api/v1", router(state)), dir)
}

async fn call(app: &axum::Router, method: Method, uri: &str) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let req = Request::builder().method(method).uri(uri).body(Body::empty()).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (parts.status, parts.headers, json)
}

fn document() -> serde_json::Value {
    serde_json::to_value(coffer_rest_api::openapi()).unwrap()
}

#[tokio::test]
async fn every_documented_operation_is_routed() {
    let (app, _dir) = app().await;
    let doc = document();
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let uri =
            format!("/api/v1{path}").replace("{key}", "dir/file.txt").replace("{kind}", "user").replace(['{', '}'], "");
        for method in item.as_object().unwrap().keys() {
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let (status, headers, body) = call(&app, m, &uri).await;
            assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
            assert_ne!(body["detail"], "no such API route", "{method} {uri} is documented but not routed");
            assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json", "{method} {uri}: {body}");
            // Signed-in routes refuse an anonymous caller; share links look the token up.
            let public = path.starts_with("/share/");
            let expected = if public { StatusCode::NOT_FOUND } else { StatusCode::UNAUTHORIZED };
            assert_eq!(status, expected, "{method} {uri}: {body}");
            operations += 1;
        }
    }
    assert!(operations >= 29, "only {operations} operations documented");
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problems() {
    let (app, _dir) = app().await;
    let (status, headers, body) = call(&app, Method::GET, "/api/v1/no/such/route").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(body["detail"], "no such API route");
    let (status, headers, body) = call(&app, Method::PATCH, "/api/v1/buckets").await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
    assert_eq!(body["status"], 405);
    assert!(headers.contains_key(header::ALLOW), "{headers:?}");
}

#[tokio::test]
async fn the_document_is_served_and_well_formed() {
    let (app, _dir) = app().await;
    let (status, headers, served) = call(&app, Method::GET, "/api/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let doc = document();
    assert_eq!(served, doc);
    assert_eq!(doc["openapi"], "3.1.0");
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        assert!(!path.contains('*'), "{path} is in axum's form, not OpenAPI's");
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path} has no operationId"));
            assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
            for status in ["400", "401", "403", "404", "503"] {
                let r = &op["responses"][status];
                assert!(r["content"]["application/problem+json"].is_object(), "{method} {path} {status}");
            }
            let ok = op["responses"].as_object().unwrap().keys().any(|s| s.starts_with('2'));
            assert!(ok, "{method} {path} documents no success");
            if path.starts_with("/share/") {
                assert_eq!(op["security"], serde_json::json!([{}]), "{path} is public");
            }
        }
    }
    for scheme in ["bearer", "sigv4", "session", "sidecar"] {
        assert!(doc["components"]["securitySchemes"][scheme].is_object(), "{scheme}");
    }
    let session = &doc["components"]["securitySchemes"]["session"];
    assert_eq!((session["type"].as_str(), session["in"].as_str()), (Some("apiKey"), Some("cookie")));
    assert_eq!(session["name"], "coffer_session");
}
