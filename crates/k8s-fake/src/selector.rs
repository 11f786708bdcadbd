//! Label and field selectors of LIST, WATCH and DELETE-collection requests.

use serde_json::{Map, Value};

#[derive(Clone, Debug, PartialEq)]
enum LabelReq {
    Eq(String, String),
    NotEq(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
    Gt(String, i64),
    Lt(String, i64),
}

/// A parsed `labelSelector`: every requirement must hold.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct LabelSelector(Vec<LabelReq>);

/// Splits on commas that are not inside parentheses.
fn split_top_level(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn check_key(key: &str, whole: &str) -> Result<String, String> {
    let key = key.trim();
    if key.is_empty() || key.contains(char::is_whitespace) || key.contains(['(', ')', '=', '!', '<', '>']) {
        return Err(format!("unable to parse requirement: invalid label key in {whole:?}"));
    }
    Ok(key.to_owned())
}

fn parse_requirement(part: &str) -> Result<LabelReq, String> {
    let p = part.trim();
    if let Some(rest) = p.strip_prefix('!') {
        return Ok(LabelReq::NotExists(check_key(rest, p)?));
    }
    if let Some(open) = p.find('(') {
        let close = p
            .rfind(')')
            .filter(|&c| c > open && p[c + 1..].trim().is_empty())
            .ok_or_else(|| format!("unable to parse requirement: missing ')' in {p:?}"))?;
        let head = p[..open].trim();
        let (key, op) =
            head.rsplit_once(char::is_whitespace).ok_or_else(|| format!("unable to parse requirement: {p:?}"))?;
        let values: Vec<String> =
            p[open + 1..close].split(',').map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).collect();
        return match op {
            "in" => Ok(LabelReq::In(check_key(key, p)?, values)),
            "notin" => Ok(LabelReq::NotIn(check_key(key, p)?, values)),
            _ => Err(format!("unable to parse requirement: unknown operator {op:?} in {p:?}")),
        };
    }
    if let Some((k, v)) = p.split_once("!=") {
        return Ok(LabelReq::NotEq(check_key(k, p)?, v.trim().to_owned()));
    }
    if let Some((k, v)) = p.split_once("==") {
        return Ok(LabelReq::Eq(check_key(k, p)?, v.trim().to_owned()));
    }
    if let Some((k, v)) = p.split_once('=') {
        return Ok(LabelReq::Eq(check_key(k, p)?, v.trim().to_owned()));
    }
    for (sym, gt) in [('>', true), ('<', false)] {
        if let Some((k, v)) = p.split_once(sym) {
            let n: i64 =
                v.trim().parse().map_err(|_| format!("unable to parse requirement: {v:?} is not an integer"))?;
            let key = check_key(k, p)?;
            return Ok(if gt { LabelReq::Gt(key, n) } else { LabelReq::Lt(key, n) });
        }
    }
    Ok(LabelReq::Exists(check_key(p, p)?))
}

impl LabelSelector {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        split_top_level(s).into_iter().map(parse_requirement).collect::<Result<Vec<_>, _>>().map(Self)
    }

    /// Whether an object (its `metadata.labels`) matches.
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        let empty = Map::new();
        let labels = obj.pointer("/metadata/labels").and_then(Value::as_object).unwrap_or(&empty);
        let label = |k: &str| labels.get(k).and_then(Value::as_str);
        self.0.iter().all(|req| match req {
            LabelReq::Eq(k, v) => label(k) == Some(v.as_str()),
            LabelReq::NotEq(k, v) => label(k) != Some(v.as_str()),
            LabelReq::In(k, vs) => label(k).is_some_and(|l| vs.iter().any(|v| v == l)),
            LabelReq::NotIn(k, vs) => label(k).is_none_or(|l| vs.iter().all(|v| v != l)),
            LabelReq::Exists(k) => label(k).is_some(),
            LabelReq::NotExists(k) => label(k).is_none(),
            LabelReq::Gt(k, n) => label(k).and_then(|l| l.parse::<i64>().ok()).is_some_and(|l| l > *n),
            LabelReq::Lt(k, n) => label(k).and_then(|l| l.parse::<i64>().ok()).is_some_and(|l| l < *n),
        })
    }
}

/// A parsed `fieldSelector`: `path=value`, `path==value` or `path!=value`, comma-separated.
///
/// Any dotted path into the object is accepted (the real server allows only a few per
/// resource, `metadata.name` and `metadata.namespace` everywhere); a missing field reads as
/// the empty string, numbers and booleans as their JSON text.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FieldSelector(Vec<(Vec<String>, bool, String)>);

impl FieldSelector {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        if s.trim().is_empty() {
            return Ok(Self::default());
        }
        let mut reqs = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            let (path, equal, value) = if let Some((k, v)) = part.split_once("!=") {
                (k, false, v)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, true, v)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, true, v)
            } else {
                return Err(format!("invalid selector: '{part}'; can't understand '{part}'"));
            };
            let path: Vec<String> = path.trim().split('.').map(str::to_owned).collect();
            if path.iter().any(String::is_empty) {
                return Err(format!("invalid field selector {part:?}"));
            }
            reqs.push((path, equal, value.trim().to_owned()));
        }
        Ok(Self(reqs))
    }

    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, equal, value)| {
            let mut cur = Some(obj);
            for seg in path {
                cur = cur.and_then(|c| c.get(seg));
            }
            let actual = match cur {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            };
            (actual == *value) == *equal
        })
    }
}

/// Both selectors of a request.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Selectors {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Selectors {
    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.labels.matches(obj) && self.fields.matches(obj)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(labels: Value) -> Value {
        json!({ "metadata": { "name": "a", "namespace": "ns", "labels": labels }, "type": "Opaque" })
    }

    #[test]
    fn label_selector_forms() {
        let o = obj(json!({ "app": "web", "tier": "front", "n": "5" }));
        let m = |s: &str| LabelSelector::parse(s).unwrap().matches(&o);
        assert!(m(""));
        assert!(m("app=web"));
        assert!(m("app==web"));
        assert!(!m("app=db"));
        assert!(m("app!=db"));
        assert!(m("missing!=x"));
        assert!(m("app"));
        assert!(!m("!app"));
        assert!(m("!missing"));
        assert!(m("app in (db, web)"));
        assert!(!m("app notin (db,web)"));
        assert!(m("missing notin (x)"));
        assert!(m("app=web,tier in (front,back),!missing"));
        assert!(!m("app=web,tier=back"));
        assert!(m("n>4"));
        assert!(!m("n<4"));
        assert!(LabelSelector::parse("app in (a").is_err());
        assert!(LabelSelector::parse("app foo (a)").is_err());
    }

    #[test]
    fn field_selector_forms() {
        let o = obj(json!({}));
        let m = |s: &str| FieldSelector::parse(s).unwrap().matches(&o);
        assert!(m("metadata.name=a"));
        assert!(m("metadata.name==a,metadata.namespace=ns"));
        assert!(!m("metadata.name!=a"));
        assert!(m("type=Opaque"));
        assert!(m("spec.missing="));
        assert!(FieldSelector::parse("nonsense").is_err());
    }
}
