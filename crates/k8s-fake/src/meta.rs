//! Small helpers on objects as JSON: metadata access, normalisation, validation, clock.

use serde_json::{Map, Value, json};

use crate::resources::ResourceInfo;

pub(crate) fn meta_str<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.get("metadata").and_then(|m| m.get(key)).and_then(Value::as_str)
}

/// `metadata` as a mutable map, created when missing (the object must be an object).
pub(crate) fn meta_mut(obj: &mut Value) -> &mut Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"].as_object_mut().expect("metadata is an object")
}

pub(crate) fn name_of(obj: &Value) -> &str {
    meta_str(obj, "name").unwrap_or_default()
}

pub(crate) fn namespace_of(obj: &Value) -> &str {
    meta_str(obj, "namespace").unwrap_or_default()
}

pub(crate) fn uid_of(obj: &Value) -> &str {
    meta_str(obj, "uid").unwrap_or_default()
}

pub(crate) fn rv_of(obj: &Value) -> Option<&str> {
    meta_str(obj, "resourceVersion").filter(|s| !s.is_empty())
}

pub(crate) fn finalizers(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

pub(crate) fn is_deleting(obj: &Value) -> bool {
    meta_str(obj, "deletionTimestamp").is_some()
}

pub(crate) fn generation(obj: &Value) -> i64 {
    obj.pointer("/metadata/generation").and_then(Value::as_i64).unwrap_or(0)
}

pub(crate) fn owner_uids(obj: &Value) -> Vec<String> {
    obj.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .map(|refs| refs.iter().filter_map(|r| r.get("uid").and_then(Value::as_str)).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Copies `metadata.{key}` from `from` into `to`, or removes it from `to` when `from` has none.
pub(crate) fn copy_meta(from: &Value, to: &mut Value, key: &str) {
    let value = from.get("metadata").and_then(|m| m.get(key)).cloned();
    let meta = meta_mut(to);
    match value {
        Some(v) => {
            meta.insert(key.to_owned(), v);
        }
        None => {
            meta.remove(key);
        }
    }
}

/// Drops what Go's `omitempty` would not serialise: empty labels, annotations,
/// finalizers and owner references.
pub(crate) fn normalize(obj: &mut Value) {
    let meta = meta_mut(obj);
    for key in ["labels", "annotations", "finalizers", "ownerReferences", "managedFields"] {
        let empty = match meta.get(key) {
            Some(Value::Null) => true,
            Some(Value::Object(m)) => m.is_empty(),
            Some(Value::Array(a)) => a.is_empty(),
            _ => false,
        };
        if empty {
            meta.remove(key);
        }
    }
}

/// The object without `metadata` and `status`: what a generation bump looks at.
pub(crate) fn spec_part(obj: &Value) -> Value {
    let mut v = obj.clone();
    if let Some(map) = v.as_object_mut() {
        map.remove("metadata");
        map.remove("status");
        map.remove("apiVersion");
        map.remove("kind");
    }
    v
}

/// The current time as the API server writes it (RFC 3339, whole seconds, UTC).
pub(crate) fn now() -> String {
    let t = time::OffsetDateTime::now_utc();
    let t = t.replace_nanosecond(0).unwrap_or(t);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Five random characters for `generateName`, from the alphabet the API server uses.
pub(crate) fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4().as_bytes().iter().take(5).map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect()
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// A label value, or the name part of a qualified name when `name` is set.
fn is_label_token(s: &str, allow_empty: bool) -> bool {
    if s.is_empty() {
        return allow_empty;
    }
    let alnum = |b: u8| b.is_ascii_alphanumeric();
    s.len() <= 63
        && s.bytes().all(|b| alnum(b) || b == b'-' || b == b'_' || b == b'.')
        && alnum(s.as_bytes()[0])
        && alnum(s.as_bytes()[s.len() - 1])
}

fn is_qualified_name(key: &str) -> bool {
    match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && !prefix.is_empty() && is_label_token(name, false),
        None => is_label_token(key, false),
    }
}

/// Validates the name and the label and annotation keys and values as the API server
/// does (422 Invalid on failure); returns the error message.
pub(crate) fn validate(info: &ResourceInfo, obj: &Value) -> Result<(), String> {
    let name = name_of(obj);
    let name_ok =
        if info.group.is_empty() && info.plural == "namespaces" { is_dns_label(name) } else { is_dns_subdomain(name) };
    if !name_ok {
        return Err(format!(
            "metadata.name: Invalid value: \"{name}\": a lowercase RFC 1123 {} must consist of lower case \
             alphanumeric characters, '-'{}, and must start and end with an alphanumeric character",
            if info.plural == "namespaces" { "label" } else { "subdomain" },
            if info.plural == "namespaces" { "" } else { " or '.'" },
        ));
    }
    if let Some(labels) = obj.pointer("/metadata/labels").and_then(Value::as_object) {
        for (k, v) in labels {
            if !is_qualified_name(k) {
                return Err(format!(
                    "metadata.labels: Invalid value: \"{k}\": name part must consist of alphanumeric characters, '-', '_' or '.'"
                ));
            }
            match v.as_str() {
                Some(v) if is_label_token(v, true) => {}
                _ => {
                    return Err(format!(
                        "metadata.labels: Invalid value: {v}: a valid label must be an empty string or consist of \
                         alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
                    ));
                }
            }
        }
    }
    if let Some(annotations) = obj.pointer("/metadata/annotations").and_then(Value::as_object) {
        for (k, v) in annotations {
            if !is_qualified_name(k) {
                return Err(format!(
                    "metadata.annotations: Invalid value: \"{k}\": name part must consist of alphanumeric characters, '-', '_' or '.'"
                ));
            }
            if !v.is_string() {
                return Err(format!("metadata.annotations.{k}: Invalid value: {v}: must be a string"));
            }
        }
    }
    if let Some(fins) = obj.pointer("/metadata/finalizers") {
        let ok = fins.as_array().is_some_and(|a| a.iter().all(|f| f.as_str().is_some_and(is_qualified_name)));
        if !ok {
            return Err(format!("metadata.finalizers: Invalid value: {fins}: must be qualified names"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels() {
        assert!(is_dns_subdomain("a.b-c.d"));
        assert!(!is_dns_subdomain("Upper"));
        assert!(!is_dns_subdomain("-a"));
        assert!(!is_dns_label("a.b"));
        assert!(is_qualified_name("app.kubernetes.io/name"));
        assert!(is_qualified_name("coffer.example.com/cleanup"));
        assert!(!is_qualified_name("a/b/c"));
        assert!(!is_qualified_name("/x"));
        assert!(is_label_token("", true));
        assert!(!is_label_token("-x", true));
        assert_eq!(now().len(), 20);
        assert_eq!(random_suffix().len(), 5);
    }
}
