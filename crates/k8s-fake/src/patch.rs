//! JSON merge patch (RFC 7386) and JSON patch (RFC 6902) with JSON pointers (RFC 6901).

use serde_json::Value;

/// Applies an RFC 7386 merge patch: objects merge recursively, `null` removes a key,
/// anything else (arrays included) replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(map) = target else { return };
    for (key, value) in patch {
        if value.is_null() {
            map.remove(key);
        } else {
            merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// Parses a JSON pointer into its unescaped reference tokens.
pub(crate) fn parse_pointer(pointer: &str) -> Result<Vec<String>, String> {
    if pointer.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return Err(format!("JSON pointer {pointer:?} does not start with '/'"));
    };
    Ok(rest.split('/').map(|t| t.replace("~1", "/").replace("~0", "~")).collect())
}

/// An array index token: digits without a leading zero.
fn array_index(token: &str) -> Option<usize> {
    if token.is_empty() || (token.len() > 1 && token.starts_with('0')) || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

fn get<'a>(doc: &'a Value, tokens: &[String]) -> Option<&'a Value> {
    tokens.iter().try_fold(doc, |cur, token| match cur {
        Value::Object(map) => map.get(token),
        Value::Array(items) => array_index(token).and_then(|i| items.get(i)),
        _ => None,
    })
}

fn get_mut<'a>(doc: &'a mut Value, tokens: &[String]) -> Option<&'a mut Value> {
    tokens.iter().try_fold(doc, |cur, token| match cur {
        Value::Object(map) => map.get_mut(token),
        Value::Array(items) => array_index(token).and_then(move |i| items.get_mut(i)),
        _ => None,
    })
}

fn display(tokens: &[String]) -> String {
    tokens.iter().map(|t| format!("/{}", t.replace('~', "~0").replace('/', "~1"))).collect()
}

fn add(doc: &mut Value, tokens: &[String], value: Value) -> Result<(), String> {
    let Some((last, parent)) = tokens.split_last() else {
        *doc = value;
        return Ok(());
    };
    let path = display(tokens);
    match get_mut(doc, parent) {
        Some(Value::Object(map)) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Some(Value::Array(items)) => {
            if last == "-" {
                items.push(value);
                return Ok(());
            }
            match array_index(last) {
                Some(i) if i <= items.len() => {
                    items.insert(i, value);
                    Ok(())
                }
                _ => Err(format!("add operation does not apply: index out of bounds at {path}")),
            }
        }
        Some(_) => Err(format!("add operation does not apply: parent of {path} is not a container")),
        None => Err(format!("add operation does not apply: doc is missing path: \"{path}\"")),
    }
}

fn remove(doc: &mut Value, tokens: &[String]) -> Result<Value, String> {
    let path = display(tokens);
    let Some((last, parent)) = tokens.split_last() else {
        return Err("remove operation does not apply: cannot remove the whole document".into());
    };
    let missing = || format!("remove operation does not apply: doc is missing path: \"{path}\"");
    match get_mut(doc, parent) {
        Some(Value::Object(map)) => map.remove(last).ok_or_else(missing),
        Some(Value::Array(items)) => match array_index(last) {
            Some(i) if i < items.len() => Ok(items.remove(i)),
            _ => Err(missing()),
        },
        _ => Err(missing()),
    }
}

/// Applies an RFC 6902 JSON patch (`add`, `remove`, `replace`, `move`, `copy`, `test`),
/// atomically: on error `doc` is left as it was.
///
/// As kube-apiserver (evanphx/json-patch) does, `test` of a path that does not exist
/// against `null` succeeds: kube's `finalizer` helper relies on it.
pub(crate) fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let Value::Array(ops) = ops else {
        return Err("a JSON patch must be an array of operations".into());
    };
    let mut work = doc.clone();
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).ok_or("a JSON patch operation has no \"op\"")?;
        let path = parse_pointer(op.get("path").and_then(Value::as_str).ok_or("operation has no \"path\"")?)?;
        let value = || op.get("value").cloned().ok_or(format!("{kind} operation has no \"value\""));
        let from = || {
            op.get("from")
                .and_then(Value::as_str)
                .ok_or(format!("{kind} operation has no \"from\""))
                .and_then(parse_pointer)
        };
        match kind {
            "add" => add(&mut work, &path, value()?)?,
            "remove" => {
                remove(&mut work, &path)?;
            }
            "replace" => {
                let value = value()?;
                match get_mut(&mut work, &path) {
                    Some(slot) => *slot = value,
                    None => {
                        return Err(format!(
                            "replace operation does not apply: doc is missing key: {}",
                            display(&path)
                        ));
                    }
                }
            }
            "move" => {
                let from = from()?;
                if path.len() > from.len() && path.starts_with(&from) {
                    return Err("move operation cannot move a value into one of its children".into());
                }
                let moved = remove(&mut work, &from)?;
                add(&mut work, &path, moved)?;
            }
            "copy" => {
                let from = from()?;
                let copied = get(&work, &from).cloned().ok_or_else(|| {
                    format!("copy operation does not apply: doc is missing from path: {}", display(&from))
                })?;
                add(&mut work, &path, copied)?;
            }
            "test" => {
                let expected = value()?;
                let ok = match get(&work, &path) {
                    None => expected.is_null(),
                    Some(actual) => *actual == expected,
                };
                if !ok {
                    return Err(format!("testing value {} failed: test failed", display(&path)));
                }
            }
            other => return Err(format!("unexpected kind of JSON patch operation: {other:?}")),
        }
    }
    *doc = work;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merge_patch_rfc7386() {
        let mut doc = json!({ "a": "b", "c": { "d": "e", "f": "g" }, "l": [1, 2] });
        merge_patch(&mut doc, &json!({ "a": "z", "c": { "f": null }, "l": [3], "n": { "x": 1 } }));
        assert_eq!(doc, json!({ "a": "z", "c": { "d": "e" }, "l": [3], "n": { "x": 1 } }));
    }

    #[test]
    fn json_patch_ops_and_escaping() {
        let mut doc = json!({ "metadata": { "annotations": { "a/b": "1", "m~n": "2" } }, "list": ["x"] });
        json_patch(
            &mut doc,
            &json!([
                { "op": "test", "path": "/metadata/annotations/a~1b", "value": "1" },
                { "op": "replace", "path": "/metadata/annotations/m~0n", "value": "3" },
                { "op": "add", "path": "/list/-", "value": "y" },
                { "op": "add", "path": "/list/0", "value": "w" },
                { "op": "remove", "path": "/list/1" },
                { "op": "copy", "from": "/list", "path": "/copy" },
                { "op": "move", "from": "/copy", "path": "/moved" },
                { "op": "test", "path": "/metadata/finalizers", "value": null },
            ]),
        )
        .unwrap();
        assert_eq!(
            doc,
            json!({ "metadata": { "annotations": { "a/b": "1", "m~n": "3" } }, "list": ["w", "y"], "moved": ["w", "y"] })
        );
    }

    #[test]
    fn json_patch_is_atomic() {
        let mut doc = json!({ "a": 1 });
        let err = json_patch(
            &mut doc,
            &json!([{ "op": "replace", "path": "/a", "value": 2 }, { "op": "test", "path": "/a", "value": 3 }]),
        )
        .unwrap_err();
        assert!(err.contains("test failed"), "{err}");
        assert_eq!(doc, json!({ "a": 1 }));
        assert!(json_patch(&mut doc, &json!([{ "op": "remove", "path": "/nope" }])).is_err());
        assert!(json_patch(&mut doc, &json!([{ "op": "add", "path": "/x/y", "value": 1 }])).is_err());
    }
}
