//! `coffer admin …`: the operator's commands, run against the configured store directly
//! (in a `kubectl exec` or a Job). They call the gateway's admin use cases, so a running
//! server sees their changes within a second (its cache follows the store's revision).
//! With `--json` every command prints one JSON document on stdout.

use std::collections::BTreeSet;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use coffer_core::{AccessKey, Action, BucketName, Grantee, Narrowing, Role};
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
            let k = gw.admin_create_key(&user, narrowing).await?;
            let mut v = key_json(&k.key);
            v["secret_access_key"] = Value::String(k.secret_access_key);
            v
        }
        AdminCommand::Key(KeyCommand::List { user }) => {
            Value::Array(gw.admin_list_keys(user.as_deref()).await?.iter().map(key_json).collect())
        }
        AdminCommand::Key(KeyCommand::Revoke { access_key_id }) => {
            gw.admin_revoke_key(&access_key_id).await?;
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
