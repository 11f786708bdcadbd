//! The browser app's files, embedded in the binary from `crates/console/assets/` (no Node
//! at build or run time). Adding a file is one line in [`ASSETS`]; a test fails when a file
//! of the directory is not listed.
//!
//! Every file is answered with its content type, a strong `ETag` (of its bytes) and
//! `Cache-Control: no-cache`, so a browser revalidates (a `304` when nothing changed) and
//! never runs a stale script against a newer server. Paths without a file extension that
//! name no file are the app's own routes: they get `index.html`.

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// One embedded file.
pub struct Asset {
    /// Its path under `/console/`.
    pub path: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($path:literal) => {
        Asset { path: $path, body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $path)) }
    };
}

/// The files of the app, by their path under `/console/` (and under `assets/`).
pub static ASSETS: &[Asset] = &[
    asset!("index.html"),
    asset!("app.css"),
    asset!("app.js"),
    asset!("api.js"),
    asset!("ui.js"),
    asset!("buckets.js"),
    asset!("browser.js"),
    asset!("sharing.js"),
    asset!("keys.js"),
    asset!("projects.js"),
    asset!("admin.js"),
    asset!("pages.css"),
];

/// The page every app route answers.
pub const INDEX: &str = "index.html";

/// The content type of a file, by its extension.
pub fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).as_deref() {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("json" | "map") => "application/json",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("jpg" | "jpeg") => "image/jpeg",
        Some("gif") => "image/gif",
        Some("webp") => "image/webp",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        Some("woff") => "font/woff",
        Some("txt") => "text/plain; charset=utf-8",
        Some("wasm") => "application/wasm",
        _ => "application/octet-stream",
    }
}

/// The ETags of [`ASSETS`], in the same order (computed once).
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| ASSETS.iter().map(|a| format!("\"{}\"", hex::encode(&Sha256::digest(a.body)[..16]))).collect())
}

/// The file at `path` (under `/console/`), or for an app route the index. A path whose last
/// segment ends in a file type the app serves (`.js`, `.png`, …) names a file, missing if not
/// embedded; any other path is an app route, dotted names included (`projects/team.data`).
pub fn lookup(path: &str) -> Option<(usize, &'static Asset)> {
    let path = path.trim_start_matches('/');
    let path = if path.is_empty() { INDEX } else { path };
    if let Some(found) = ASSETS.iter().enumerate().find(|(_, a)| a.path == path) {
        return Some(found);
    }
    let last = path.rsplit('/').next().unwrap_or(path);
    let names_a_file = last.contains('.') && content_type(last) != "application/octet-stream";
    if names_a_file || path.split('/').any(|seg| seg == "..") {
        return None;
    }
    ASSETS.iter().enumerate().find(|(_, a)| a.path == INDEX)
}

/// Answer a GET (or HEAD) for `path` under `/console/`.
pub fn serve(path: &str, request: &HeaderMap) -> Response {
    let Some((i, asset)) = lookup(path) else {
        return (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "no such file\n")
            .into_response();
    };
    let etag = &etags()[i];
    let fresh = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim() == etag || t.trim() == "*");
    let mut resp =
        if fresh { StatusCode::NOT_MODIFIED.into_response() } else { Body::from(asset.body).into_response() };
    let h = resp.headers_mut();
    if !fresh {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(asset.path)));
    }
    if let Ok(v) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_assets_directory_is_embedded() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/assets");
        let mut on_disk = Vec::new();
        let mut stack = vec![std::path::PathBuf::from(dir)];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    on_disk.push(p.strip_prefix(dir).unwrap().to_string_lossy().replace('\\', "/"));
                }
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = ASSETS.iter().map(|a| a.path.to_owned()).collect();
        listed.sort();
        assert_eq!(listed, on_disk, "list every file of crates/console/assets in ASSETS, and only those");
        for a in ASSETS {
            assert_ne!(content_type(a.path), "application/octet-stream", "{}: add its content type", a.path);
        }
    }

    #[test]
    fn app_routes_get_the_index_and_missing_files_a_404() {
        assert_eq!(lookup("").unwrap().1.path, "index.html");
        assert_eq!(lookup("/app.js").unwrap().1.path, "app.js");
        assert_eq!(lookup("buckets/my-data").unwrap().1.path, "index.html");
        assert!(lookup("missing.js").is_none());
        assert!(lookup("../Cargo.toml").is_none());
        assert!(lookup("projects/../../secret").is_none());
        assert!(lookup("missing.png").is_none());
        assert_eq!(lookup("projects/team.data").unwrap().1.path, "index.html");
        assert_eq!(content_type("a/b.JS"), "text/javascript; charset=utf-8");
    }

    #[test]
    fn a_known_etag_gets_a_304() {
        let first = serve("app.js", &HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        assert_eq!(first.headers()[header::CONTENT_TYPE], "text/javascript; charset=utf-8");
        assert_eq!(first.headers()[header::CACHE_CONTROL], "no-cache");
        let etag = first.headers()[header::ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, etag.clone());
        let second = serve("app.js", &again);
        assert_eq!(second.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(second.headers()[header::ETAG], etag);
        assert_eq!(serve("nope.css", &HeaderMap::new()).status(), StatusCode::NOT_FOUND);
    }
}
