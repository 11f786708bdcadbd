//! Rego policies for externally governed buckets (the design notes' "FDI" data: who may
//! read or write it is decided outside coffer).
//!
//! A policy is a set of `.rego` files and JSON data files (files, or directories such as a
//! mounted ConfigMap) and the bucket names it governs (`*` globs). For a governed bucket the
//! built-in rules apply first — the credential's narrowing, then the principal's clearance
//! for the bucket's classification — and then the policy's rule, not the bucket's grants,
//! gives the role. The rule (default `data.coffer.decision`) is evaluated with the input
//!
//! ```json
//! {"principal": {"name", "groups", "clearance", "namespace", "is_admin"},
//!  "bucket": {"name", "owner", "classification", "tier"},
//!  "action": "list" | "read" | "write" | "delete" | "admin"}
//! ```
//!
//! and must yield `{"allow": true, "role": "read" | "write" | "admin"}`; anything else
//! (undefined, `allow: false`, an error) gives no role, so the request is denied.
//!
//! The files are checked for changes at most once a second and the policy is rebuilt when
//! they change; a policy that no longer compiles is refused (logged) and the last good one
//! stays in force.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use coffer_core::{Action, Bucket, Principal, Role, Rule};
use serde_json::{Value, json};

/// How often the files are looked at for changes.
pub const RELOAD_CHECK: Duration = Duration::from_secs(1);
/// The rule evaluated when the configuration names none.
pub const DEFAULT_RULE: &str = "data.coffer.decision";

/// Where a policy comes from and what it governs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// `.rego` and `.json` files, or directories holding them (not recursive; hidden files,
    /// such as a ConfigMap's `..data`, are skipped).
    pub paths: Vec<PathBuf>,
    /// The governed bucket names; `*` matches any run of characters.
    pub buckets: Vec<String>,
    /// The rule giving the decision.
    pub rule: String,
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("no .rego file found in {0:?}")]
    NoPolicy(Vec<PathBuf>),
}

/// The files of a policy, and when each last changed: a change to any means a reload.
type Fingerprint = BTreeMap<PathBuf, (SystemTime, u64)>;

struct Loaded {
    engine: regorus::Engine,
    fingerprint: Fingerprint,
}

/// A loaded policy; cheap to share.
pub struct Policy {
    config: PolicyConfig,
    loaded: RwLock<Arc<Loaded>>,
    last_check: Mutex<Instant>,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy").field("config", &self.config).finish_non_exhaustive()
    }
}

/// The files a policy is made of, in a stable order.
fn files_of(paths: &[PathBuf]) -> Result<Vec<PathBuf>, PolicyError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|source| PolicyError::Read { path: p.clone(), source })?;
        if meta.is_dir() {
            let entries = std::fs::read_dir(p).map_err(|source| PolicyError::Read { path: p.clone(), source })?;
            let mut found = Vec::new();
            for e in entries {
                let e = e.map_err(|source| PolicyError::Read { path: p.clone(), source })?;
                let path = e.path();
                let name = e.file_name().to_string_lossy().into_owned();
                let wanted = path.extension().is_some_and(|x| x == "rego" || x == "json");
                if !name.starts_with('.') && wanted && path.is_file() {
                    found.push(path);
                }
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn fingerprint(files: &[PathBuf]) -> Fingerprint {
    files
        .iter()
        .map(|f| {
            // `metadata` follows symlinks: a ConfigMap update swaps the link's target.
            let stamp = std::fs::metadata(f).map(|m| (m.modified().unwrap_or(SystemTime::UNIX_EPOCH), m.len()));
            (f.clone(), stamp.unwrap_or((SystemTime::UNIX_EPOCH, u64::MAX)))
        })
        .collect()
}

fn build(config: &PolicyConfig) -> Result<Loaded, PolicyError> {
    let files = files_of(&config.paths)?;
    let fp = fingerprint(&files);
    let mut engine = regorus::Engine::new();
    let mut policies = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|source| PolicyError::Read { path: f.clone(), source })?;
        let invalid = |e: &dyn std::fmt::Display| PolicyError::Invalid { path: f.clone(), message: e.to_string() };
        if f.extension().is_some_and(|x| x == "rego") {
            engine.add_policy(f.display().to_string(), text).map_err(|e| invalid(&e))?;
            policies += 1;
        } else {
            let data = regorus::Value::from_json_str(&text).map_err(|e| invalid(&e))?;
            engine.add_data(data).map_err(|e| invalid(&e))?;
        }
    }
    if policies == 0 {
        return Err(PolicyError::NoPolicy(config.paths.clone()));
    }
    // Evaluate once so that a rule that cannot be evaluated is refused at load time.
    let mut probe = engine.clone();
    probe
        .set_input_json("{}")
        .map_err(|e| PolicyError::Invalid { path: PathBuf::from(&config.rule), message: e.to_string() })?;
    probe
        .eval_rule(config.rule.clone())
        .map_err(|e| PolicyError::Invalid { path: PathBuf::from(&config.rule), message: e.to_string() })?;
    Ok(Loaded { engine, fingerprint: fp })
}

/// Does `name` match the glob `pattern` (`*`: any run of characters)?
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else { return false };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else { return rest.is_empty() };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The namespace of a service-account principal, from its groups.
fn namespace(p: &Principal) -> Option<&str> {
    p.groups.iter().find_map(|g| g.strip_prefix("system:serviceaccounts:"))
}

impl Policy {
    /// Load the policy; its errors stop the start-up.
    pub fn load(config: PolicyConfig) -> Result<Self, PolicyError> {
        let loaded = build(&config)?;
        Ok(Self { config, loaded: RwLock::new(Arc::new(loaded)), last_check: Mutex::new(Instant::now()) })
    }

    /// Is this bucket governed by the policy?
    pub fn governs(&self, bucket: &str) -> bool {
        self.config.buckets.iter().any(|p| glob_match(p, bucket))
    }

    /// Rebuild the policy if its files changed (checked at most every [`RELOAD_CHECK`]).
    /// Returns whether a new policy is in force.
    pub fn reload_if_changed(&self) -> bool {
        {
            let mut last = self.last_check.lock().unwrap();
            if last.elapsed() < RELOAD_CHECK {
                return false;
            }
            *last = Instant::now();
        }
        let current = self.loaded.read().unwrap().clone();
        let files = match files_of(&self.config.paths) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the policy files; the last policy stays in force");
                return false;
            }
        };
        if fingerprint(&files) == current.fingerprint {
            return false;
        }
        match build(&self.config) {
            Ok(new) => {
                *self.loaded.write().unwrap() = Arc::new(new);
                tracing::info!(paths = ?self.config.paths, "policy reloaded");
                true
            }
            Err(e) => {
                tracing::error!(error = %e, "the changed policy is invalid; the last policy stays in force");
                // Keep the last good policy, but remember these files so that a broken one is
                // not rebuilt every second until it changes again.
                *self.loaded.write().unwrap() =
                    Arc::new(Loaded { engine: current.engine.clone(), fingerprint: fingerprint(&files) });
                false
            }
        }
    }

    /// The role the policy gives `principal` for `action` on `bucket`, or the rule denying.
    pub fn role(&self, principal: &Principal, bucket: &Bucket, action: Action) -> Result<(Role, Rule), Rule> {
        self.reload_if_changed();
        let loaded = self.loaded.read().unwrap().clone();
        let input = json!({
            "principal": {
                "name": principal.name,
                "groups": principal.groups,
                "clearance": principal.clearance.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                "namespace": namespace(principal),
                "is_admin": principal.is_admin,
            },
            "bucket": {
                "name": bucket.name.as_str(),
                "owner": bucket.owner,
                "classification": bucket.classification.as_str(),
                "tier": bucket.tier,
            },
            "action": action.as_str(),
        });
        let mut engine = loaded.engine.clone();
        let verdict = engine
            .set_input_json(&input.to_string())
            .and_then(|()| engine.eval_rule(self.config.rule.clone()))
            .and_then(|v| v.to_json_str());
        let verdict: Value = match verdict {
            Ok(text) => serde_json::from_str(&text).unwrap_or(Value::Null),
            Err(e) => {
                tracing::warn!(bucket = %bucket.name, error = %e, "the policy could not be evaluated; denied");
                return Err(Rule::PolicyDenied);
            }
        };
        let allowed = verdict.get("allow").and_then(Value::as_bool) == Some(true);
        let role = verdict.get("role").and_then(Value::as_str).and_then(Role::parse);
        match (allowed, role) {
            (true, Some(role)) => Ok((role, Rule::Policy { role })),
            _ => Err(Rule::PolicyDenied),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use coffer_core::{BucketName, Classification};

    use super::*;

    const POLICY: &str = r#"
package coffer

import rego.v1

decision := {"allow": true, "role": data.roles[g]} if {
    some g in input.principal.groups
    data.roles[g]
    input.action != "admin"
}
"#;

    fn principal(groups: &[&str]) -> Principal {
        Principal {
            name: "p".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            clearance: BTreeSet::from([Classification::unclassified()]),
            is_admin: false,
        }
    }

    fn bucket() -> Bucket {
        Bucket {
            name: BucketName::parse("fdi-census").unwrap(),
            owner: "steward".into(),
            tier: "standard".into(),
            classification: Classification::unclassified(),
            created_at: 0,
        }
    }

    #[test]
    fn roles_from_the_policy_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.rego"), POLICY).unwrap();
        std::fs::write(dir.path().join("data.json"), r#"{"roles": {"readers": "read"}}"#).unwrap();
        std::fs::write(dir.path().join(".hidden.rego"), "not rego at all").unwrap();
        let cfg = PolicyConfig {
            paths: vec![dir.path().to_owned()],
            buckets: vec!["fdi-*".into()],
            rule: DEFAULT_RULE.into(),
        };
        let policy = Policy::load(cfg.clone()).unwrap();
        assert!(policy.governs("fdi-census") && !policy.governs("census"));
        let (role, rule) = policy.role(&principal(&["readers"]), &bucket(), Action::Read).unwrap();
        assert_eq!((role, rule), (Role::Read, Rule::Policy { role: Role::Read }));
        assert_eq!(policy.role(&principal(&["others"]), &bucket(), Action::Read).unwrap_err(), Rule::PolicyDenied);
        assert_eq!(policy.role(&principal(&["readers"]), &bucket(), Action::Admin).unwrap_err(), Rule::PolicyDenied);

        // new data: picked up after the check interval
        std::fs::write(dir.path().join("data.json"), r#"{"roles": {"readers": "read", "writers": "write"}}"#).unwrap();
        *policy.last_check.lock().unwrap() -= RELOAD_CHECK;
        assert!(policy.reload_if_changed());
        assert_eq!(policy.role(&principal(&["writers"]), &bucket(), Action::Write).unwrap().0, Role::Write);

        // a broken policy keeps the last good one
        std::fs::write(dir.path().join("p.rego"), "package coffer\n decision := ").unwrap();
        *policy.last_check.lock().unwrap() -= RELOAD_CHECK;
        assert!(!policy.reload_if_changed());
        assert_eq!(policy.role(&principal(&["writers"]), &bucket(), Action::Write).unwrap().0, Role::Write);

        // and a broken policy refuses to load at all
        assert!(matches!(Policy::load(cfg), Err(PolicyError::Invalid { .. })));
        let empty = tempfile::tempdir().unwrap();
        let none = PolicyConfig { paths: vec![empty.path().to_owned()], buckets: vec![], rule: DEFAULT_RULE.into() };
        assert!(matches!(Policy::load(none), Err(PolicyError::NoPolicy(_))));
    }

    #[test]
    fn globs() {
        assert!(glob_match("fdi-*", "fdi-census"));
        assert!(glob_match("*", "anything"));
        assert!(glob_match("fdi-census", "fdi-census"));
        assert!(!glob_match("fdi-census", "fdi-census-2"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
        assert!(glob_match("*-pb", "fdi-pb"));
        assert!(!glob_match("fdi-*", "census"));
        assert!(glob_match("a*a", "aa"));
        assert!(!glob_match("a*a", "a"));
    }
}
