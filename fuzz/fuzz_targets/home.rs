//! The home view's key mapping, `coffer_gateway::home::split`: `home/<bucket>/<key>` is
//! `<key>` in `<bucket>`. It must never panic; what it splits must put back together into
//! the same key, with a non-empty bucket part free of `/` and a non-empty key; and it must
//! refuse exactly the keys that name no object in a bucket.

#![no_main]

use coffer_gateway::home::split;
use libfuzzer_sys::fuzz_target;

fn check(key: &str) {
    match split(key) {
        Some((bucket, rest)) => {
            assert!(!bucket.is_empty() && !bucket.contains('/'), "{key:?} -> bucket {bucket:?}");
            assert!(!rest.is_empty(), "{key:?} -> empty key");
            assert_eq!(format!("{bucket}/{rest}"), key);
        }
        None => {
            let named = key.find('/').is_some_and(|at| at > 0 && at + 1 < key.len());
            assert!(!named, "{key:?} names an object in a bucket but was refused");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check(&String::from_utf8_lossy(data));
});
