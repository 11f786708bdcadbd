//! The REST API's JSON request bodies, read the way the handlers read them (axum's `Json`
//! extractor over serde). Arbitrary bytes must never panic the parser, and what parses
//! must survive the checks the handlers run next (name parsers) without panicking either.

#![no_main]

use axum::Json;
use coffer_core::{BucketName, Classification, ObjectKey, UserName};
use coffer_rest_api::quotas::NewQuota;
use coffer_rest_api::views::{CopyRequest, NewBucket, NewGrant, NewKey, NewLink, NewProject};
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;

/// The body as a handler gets it, or the rejection it turns into a problem (always a
/// client error, with a message).
fn read<T: DeserializeOwned>(data: &[u8]) -> Option<T> {
    match Json::<T>::from_bytes(data) {
        Ok(Json(v)) => Some(v),
        Err(e) => {
            assert!(e.status().is_client_error(), "{e:?}");
            assert!(!e.body_text().is_empty());
            None
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Some(b) = read::<NewBucket>(data) {
        let _ = BucketName::parse(&b.name);
        let _ = b.tier.as_deref().map(Classification::parse);
    }
    if let Some(g) = read::<NewGrant>(data) {
        let _ = g.user.as_deref().map(UserName::parse);
        let _ = g.group.as_deref().map(UserName::parse);
    }
    if let Some(p) = read::<NewProject>(data) {
        let _ = BucketName::parse(&p.name);
    }
    if let Some(k) = read::<NewKey>(data) {
        for b in k.buckets.iter().flatten() {
            let _ = BucketName::parse(b);
        }
        let _ = k.classification.as_deref().map(Classification::parse);
        let _ = k.expires_in_seconds.map(|s| s.checked_add(1_700_000_000));
    }
    if let Some(l) = read::<NewLink>(data) {
        let _ = l.key.as_deref().map(ObjectKey::parse);
        let _ = l.prefix.as_deref().map(str::len);
    }
    if let Some(c) = read::<CopyRequest>(data) {
        let _ = BucketName::parse(&c.from_bucket);
        let _ = ObjectKey::parse(&c.from_key);
        let _ = ObjectKey::parse(&c.to_key);
    }
    if let Some(q) = read::<NewQuota>(data) {
        let _ = (q.max_bytes, q.max_objects);
    }
    // And as any JSON value: deep nesting, huge numbers, odd escapes.
    let _ = serde_json::from_slice::<serde_json::Value>(data);
});
