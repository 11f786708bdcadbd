//! `coffer admin …`: the operator's commands, run against the configured store directly
//! (in a `kubectl exec` or a Job). They call the gateway's admin use cases, so a running
//! server sees their changes within a second (its cache follows the store's revision).
//! With `--json` every command prints one JSON document on stdout.

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use coffer_core::{AccessKey, Action, BucketName, Grantee, Narrowing, QuotaScope, Role};
use coffer_gateway::Gateway;
use serde_json::{Value, json};

use crate::config::{Config, GlobalArgs};
use crate::wiring;

#[derive(Args, Debug)]
pub struct AdminArgs {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Subcommand, Debug)]
enum AdminCommand {
    /// Users: create, list, delete.
    #[command(subcommand)]
    User(UserCommand),
    /// Buckets: create, list, delete.
    #[command(subcommand)]
    Bucket(BucketCommand),
    /// Grants of a role on a bucket to a user or a group.
    #[command(subcommand)]
    Grant(GrantCommand),
    /// Access keys: create, list, revoke.
    #[command(subcommand)]
    Key(KeyCommand),
    /// The audit trail of authorization decisions.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Quotas on the bytes and objects of a bucket, or of every bucket a user owns.
    #[command(subcommand)]
    Quota(QuotaCommand),
    /// Explain the decision for a user, a bucket and an action.
    Explain {
        #[arg(long)]
        user: String,
        #[arg(long)]
        bucket: String,
        /// read, write, delete, list or admin.
        #[arg(long)]
        action: String,
    },
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct ScopeArgs {
    /// A bucket's quota.
    #[arg(long)]
    bucket: Option<String>,
    /// A user's quota, over every bucket the user owns.
    #[arg(long)]
    user: Option<String>,
}

impl ScopeArgs {
    fn scope(&self) -> QuotaScope {
        match (&self.bucket, &self.user) {
            (Some(b), _) => QuotaScope::Bucket(b.clone()),
            (_, Some(u)) => QuotaScope::User(u.clone()),
            _ => unreachable!("clap requires one of --bucket and --user"),
        }
    }
}

#[derive(Subcommand, Debug)]
enum QuotaCommand {
    /// Set (or replace) a quota; the buckets it covers are measured if not yet counted.
    Set {
        #[command(flatten)]
        scope: ScopeArgs,
        /// At most this many bytes: 500M, 20GiB, 1T, or plain bytes.
        #[arg(long)]
        max_bytes: Option<String>,
        /// At most this many objects.
        #[arg(long)]
        max_objects: Option<u64>,
    },
    /// Remove a quota.
    Remove {
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Every quota.
    List,
    /// A quota and what is used of it.
    Show {
        #[command(flatten)]
        scope: ScopeArgs,
    },
    /// Count the objects of the covered buckets again and continue from that count.
    Measure {
        #[command(flatten)]
        scope: ScopeArgs,
    },
}

/// `500M`, `20GiB`, `1T`, `1.5G` or plain bytes; K/M/G/T are powers of 1024 with or without
/// `iB`, and `KB`/`MB`/`GB`/`TB` powers of 1000.
pub fn parse_size(s: &str) -> anyhow::Result<u64> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().with_context(|| format!("invalid size {s:?}"))?;
    let mult: f64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "K" | "KI" | "KIB" => 1024.0,
        "M" | "MI" | "MIB" => 1024f64.powi(2),
        "G" | "GI" | "GIB" => 1024f64.powi(3),
        "T" | "TI" | "TIB" => 1024f64.powi(4),
        "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        _ => bail!("invalid size {s:?}: use a number with K, M, G or T (binary) or KB, MB, GB, TB"),
    };
    let bytes = n * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes > i64::MAX as f64 {
        bail!("invalid size {s:?}");
    }
    Ok(bytes.round() as u64)
}

fn report_json(r: &coffer_gateway::quotas::QuotaReport) -> Value {
    json!({
        "scope": to_json(&r.scope),
        "max_bytes": r.quota.as_ref().and_then(|q| q.max_bytes),
        "max_objects": r.quota.as_ref().and_then(|q| q.max_objects),
        "bytes": r.usage.bytes,
        "objects": r.usage.objects,
    })
}

#[derive(Subcommand, Debug)]
enum AuditCommand {
    /// List decisions, newest first.
    List {
        /// Only this principal's.
        #[arg(long)]
        user: Option<String>,
        /// Only on this bucket.
        #[arg(long)]
        bucket: Option<String>,
        /// Only allowed or only denied decisions.
        #[arg(long, value_parser = ["allow", "deny"])]
        decision: Option<String>,
        /// Only the last DURATION (30s, 15m, 12h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Create a user.
    Create {
        name: String,
        /// A group the user belongs to (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// The classifications the user may touch, comma-separated (default: unclassified).
        #[arg(long, value_delimiter = ',')]
        clearance: Vec<String>,
        /// Make the user a platform admin (admin on every bucket).
        #[arg(long)]
        platform_admin: bool,
    },
    /// List users.
    List,
    /// Delete a user (refused while the user owns buckets); removes the user's keys and grants.
    Delete { name: String },
}

#[derive(Subcommand, Debug)]
enum BucketCommand {
    /// Create a bucket for an owner.
    Create {
        name: String,
        #[arg(long)]
        owner: String,
        #[arg(long)]
        tier: Option<String>,
        #[arg(long)]
        classification: Option<String>,
    },
    /// List buckets.
    List,
    /// Delete an empty bucket.
    Delete { name: String },
}

#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
struct GranteeArgs {
    /// The user to grant to.
    #[arg(long)]
    user: Option<String>,
    /// The group to grant to.
    #[arg(long)]
    group: Option<String>,
}

impl GranteeArgs {
    fn grantee(&self) -> Grantee {
        match (&self.user, &self.group) {
            (Some(u), _) => Grantee::User(u.clone()),
            (_, Some(g)) => Grantee::Group(g.clone()),
            _ => unreachable!("clap requires one of --user and --group"),
        }
    }
}

#[derive(Subcommand, Debug)]
enum GrantCommand {
    /// Grant (or change) a role.
    Add {
        #[arg(long)]
        bucket: String,
        #[command(flatten)]
        grantee: GranteeArgs,
        /// read, write or admin.
        #[arg(long)]
        role: String,
    },
    /// Remove a grant.
    Remove {
        #[arg(long)]
        bucket: String,
        #[command(flatten)]
        grantee: GranteeArgs,
    },
    /// List grants.
    List {
        #[arg(long)]
        bucket: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    /// Create an access key; its secret is printed this once.
    Create {
        #[arg(long)]
        user: String,
        /// Refuse every write with this key.
        #[arg(long)]
        read_only: bool,
        /// Limit the key to this bucket (repeatable).
        #[arg(long = "bucket")]
        buckets: Vec<String>,
        /// Limit the key to buckets of this classification.
        #[arg(long)]
        classification: Option<String>,
        /// Let the key expire after this long: 30s, 15m, 12h, 7d.
        #[arg(long)]
        expires_in: Option<String>,
    },
    /// List access keys (never their secrets).
    List {
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke an access key.
    Revoke { access_key_id: String },
}

/// `30s`, `15m`, `12h`, `7d`, or plain seconds.
pub fn parse_duration(s: &str) -> anyhow::Result<i64> {
    let s = s.trim();
    let (num, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => s.split_at(i),
        None => (s, "s"),
    };
    let n: i64 = num.parse().with_context(|| format!("invalid duration {s:?}"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => bail!("invalid duration {s:?}: use a number followed by s, m, h or d"),
    };
    if n <= 0 {
        bail!("invalid duration {s:?}: must be positive");
    }
    n.checked_mul(mult).with_context(|| format!("duration {s:?} is too long"))
}

/// A record in its serde form (the same JSON the REST API answers).
fn to_json<T: serde::Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

fn key_json(k: &AccessKey) -> Value {
    json!({
        "access_key_id": k.access_key_id,
        "user": k.user.as_str(),
        "read_only": k.narrowing.read_only,
        "buckets": k.narrowing.buckets.as_ref().map(|s| s.iter().map(|b| b.as_str()).collect::<Vec<_>>()),
        "classification": k.narrowing.classification.as_ref().map(|c| c.as_str()),
        "expires_at": k.narrowing.expires_at,
        "created_at": k.created_at,
        "revoked_at": k.revoked_at,
    })
}

/// Print `value` as JSON, or as text lines.
fn emit(json_out: bool, value: &Value) {
    if json_out {
        println!("{}", serde_json::to_string_pretty(value).unwrap_or_default());
        return;
    }
    match value {
        Value::Array(rows) if rows.is_empty() => println!("(none)"),
        Value::Array(rows) => {
            for r in rows {
                println!("{}", text_line(r));
            }
        }
        other => println!("{}", text_line(other)),
    }
}

fn text_line(v: &Value) -> String {
    match v {
        Value::Object(m) => m
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join("  "),
        other => other.to_string(),
    }
}

/// `coffer admin …`.
pub async fn run(global: &GlobalArgs, args: AdminArgs) -> anyhow::Result<()> {
    let cfg = Config::load(global, None)?;
    // Admin commands migrate too, so they work on a fresh database before the first serve.
    let gw = wiring::gateway(&cfg, cfg.migrate_on_start).await?;
    let value = execute(&gw, args.command).await?;
    emit(args.json, &value);
    Ok(())
}

async fn execute(gw: &Gateway, command: AdminCommand) -> anyhow::Result<Value> {
    Ok(match command {
        AdminCommand::User(UserCommand::Create { name, groups, clearance, platform_admin }) => {
            to_json(&gw.admin_create_user(&name, &groups, &clearance, platform_admin).await?)
        }
        AdminCommand::User(UserCommand::List) => {
            Value::Array(gw.admin_list_users().await?.iter().map(to_json).collect())
        }
        AdminCommand::User(UserCommand::Delete { name }) => {
            gw.admin_delete_user(&name).await?;
            json!({ "deleted": name })
        }
        AdminCommand::Bucket(BucketCommand::Create { name, owner, tier, classification }) => {
            to_json(&gw.admin_create_bucket(&name, &owner, tier.as_deref(), classification.as_deref()).await?)
        }
        AdminCommand::Bucket(BucketCommand::List) => {
            Value::Array(gw.admin_list_buckets().await?.iter().map(to_json).collect())
        }
        AdminCommand::Bucket(BucketCommand::Delete { name }) => {
            gw.admin_delete_bucket(&name).await?;
            json!({ "deleted": name })
        }
        AdminCommand::Grant(GrantCommand::Add { bucket, grantee, role }) => {
            let role =
                Role::parse(&role).with_context(|| format!("invalid role {role:?}: use read, write or admin"))?;
            to_json(&gw.admin_put_grant(&bucket, grantee.grantee(), role).await?)
        }
        AdminCommand::Grant(GrantCommand::Remove { bucket, grantee }) => {
            gw.admin_remove_grant(&bucket, &grantee.grantee()).await?;
            json!({ "removed": true })
        }
        AdminCommand::Grant(GrantCommand::List { bucket }) => {
            Value::Array(gw.admin_list_grants(bucket.as_deref()).await?.iter().map(to_json).collect())
        }
        AdminCommand::Key(KeyCommand::Create { user, read_only, buckets, classification, expires_in }) => {
            let buckets = if buckets.is_empty() {
                None
            } else {
                Some(
                    buckets
                        .iter()
                        .map(|b| BucketName::parse(b))
                        .collect::<Result<BTreeSet<_>, _>>()
                        .context("--bucket")?,
                )
            };
            let classification = classification
                .map(|c| coffer_core::Classification::parse(&c))
                .transpose()
                .context("--classification")?;
            let expires_at = match expires_in {
                Some(d) => Some(now() + parse_duration(&d)?),
                None => None,
            };
            let narrowing = Narrowing { read_only, buckets, classification, expires_at };
            let k = gw.admin_create_key(coffer_gateway::admin::BY_COMMAND_LINE, &user, narrowing).await?;
            let mut v = key_json(&k.key);
            v["secret_access_key"] = Value::String(k.secret_access_key);
            v
        }
        AdminCommand::Key(KeyCommand::List { user }) => {
            Value::Array(gw.admin_list_keys(user.as_deref()).await?.iter().map(key_json).collect())
        }
        AdminCommand::Key(KeyCommand::Revoke { access_key_id }) => {
            gw.admin_revoke_key(coffer_gateway::admin::BY_COMMAND_LINE, &access_key_id).await?;
            json!({ "revoked": access_key_id })
        }
        AdminCommand::Audit(AuditCommand::List { user, bucket, decision, since, limit }) => {
            let since = match since {
                Some(d) => Some((now() - parse_duration(&d)?) * 1000),
                None => None,
            };
            let filter = coffer_core::AuditFilter {
                principal: user,
                bucket,
                allowed: decision.map(|d| d == "allow"),
                since,
                until: None,
                limit,
            };
            let events = gw.audit_events(&filter).await?;
            Value::Array(events.iter().map(to_json).collect())
        }
        AdminCommand::Quota(QuotaCommand::Set { scope, max_bytes, max_objects }) => {
            let max_bytes = max_bytes.as_deref().map(parse_size).transpose().context("--max-bytes")?;
            to_json(&gw.admin_set_quota(scope.scope(), max_bytes, max_objects).await?)
        }
        AdminCommand::Quota(QuotaCommand::Remove { scope }) => {
            gw.admin_remove_quota(&scope.scope()).await?;
            json!({ "removed": true })
        }
        AdminCommand::Quota(QuotaCommand::List) => {
            Value::Array(gw.admin_list_quotas().await?.iter().map(to_json).collect())
        }
        AdminCommand::Quota(QuotaCommand::Show { scope }) => report_json(&gw.quota_report(&scope.scope()).await?),
        AdminCommand::Quota(QuotaCommand::Measure { scope }) => {
            report_json(&gw.admin_measure_usage(&scope.scope()).await?)
        }
        AdminCommand::Explain { user, bucket, action } => {
            let action = Action::parse(&action)
                .with_context(|| format!("invalid action {action:?}: use read, write, delete, list or admin"))?;
            let d = gw.explain(&user, &bucket, action).await?;
            json!({ "allowed": d.allowed, "rule": d.rule, "reason": d.rule.to_string() })
        }
    })
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("500M").unwrap(), 500 * 1024 * 1024);
        assert_eq!(parse_size("20GiB").unwrap(), 20 * 1024 * 1024 * 1024);
        assert_eq!(parse_size("1.5G").unwrap(), 3 * 512 * 1024 * 1024);
        assert_eq!(parse_size("2 TB").unwrap(), 2_000_000_000_000);
        assert_eq!(parse_size("10kb").unwrap(), 10_000);
        for bad in ["", "x", "10X", "-5", "1e30"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s").unwrap(), 30);
        assert_eq!(parse_duration("15m").unwrap(), 900);
        assert_eq!(parse_duration("2h").unwrap(), 7200);
        assert_eq!(parse_duration("7d").unwrap(), 604800);
        assert_eq!(parse_duration("45").unwrap(), 45);
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1w").is_err());
        assert!(parse_duration("abc").is_err());
    }
}
