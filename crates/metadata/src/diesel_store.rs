//! [`DieselStore`]: the [`MetadataStore`] on Diesel 2.3, for PostgreSQL and SQLite.
//!
//! - One `#[derive(MultiConnection)]` enum, [`AnyConnection`], so every query is written once.
//! - An r2d2 pool (8 connections for PostgreSQL, 4 for a SQLite file, exactly 1 for
//!   `sqlite::memory:` so that every call sees the same database). The pool's manager opens
//!   the backend the URL names and nothing else, so a failure is reported as it happened.
//! - Every call runs on `tokio::task::spawn_blocking`.
//! - Every mutation runs in one transaction whose first statement bumps `revision.value`.
//!   Taking the write lock first serialises writers (PostgreSQL waits on the revision row;
//!   SQLite's busy handler can still retry because no read snapshot is held yet), so the
//!   read-then-write steps inside a mutation never race with another writer. On PostgreSQL
//!   the second statement is `pg_notify('coffer_changes', <new revision>)`: sent at commit,
//!   not at all on a rollback, and — writers being serialised by the row lock — in revision
//!   order.
//! - [`MetadataStore::subscribe_changes`] opens one more connection, outside the pool, for
//!   the `LISTEN` (see [`crate::changes`]).
//! - The audit trail and bucket usage are not about rights: writing them does not bump the
//!   revision, so their writes are single statements that are atomic by themselves.
//! - Foreign keys do the cascades (`grants`, `share_links`, `bucket_quotas` and
//!   `bucket_usage` → `buckets`, `access_keys` → `users`); on SQLite they are enforced
//!   because every pooled connection runs `PRAGMA foreign_keys = ON`.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use coffer_core::{
    AccessKey, AuditEvent, AuditFilter, Bucket, BucketName, Classification, Grant, Grantee, Narrowing, Principal,
    Quota, QuotaScope, Role, ShareLink, ShareTarget, Usage, User, UserName,
};
use diesel::backend::Backend;
use diesel::connection::SimpleConnection;
use diesel::dsl::case_when;
use diesel::migration::MigrationSource;
use diesel::prelude::*;
use diesel::r2d2::{CustomizeConnection, ManageConnection, Pool, R2D2Connection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::BigInt;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::changes::{self, ChangeStream};
use crate::schema::{
    access_keys, audit_events, bucket_quotas, bucket_usage, buckets, grants, revision, share_links, user_quotas, users,
};
use crate::{AuditNotStored, Error, MetadataStore, Result};

/// The PostgreSQL schema.
const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
/// The SQLite schema.
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

const PG_POOL_SIZE: u32 = 8;
const SQLITE_POOL_SIZE: u32 = 4;
/// How long to wait for a connection, from the pool or (PostgreSQL) from the server. While
/// the database is down every call waits this long before it fails (`Unavailable`, a 503),
/// and r2d2 retries its connects at most every half of it, so it also bounds how soon the
/// pool recovers. 2 s is libpq's smallest `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Session-level advisory lock held while migrating PostgreSQL, so that replicas starting
/// together apply the migrations once ("coffer" in ASCII).
const PG_MIGRATION_LOCK: i64 = 0x636f_6666_6572;
/// Per-connection SQLite settings; `busy_timeout` first so that the others wait for locks.
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

/// A connection to either database; queries are written once against it.
#[derive(diesel::MultiConnection)]
pub(crate) enum AnyConnection {
    Postgresql(PgConnection),
    Sqlite(SqliteConnection),
}

/// What a URL names.
#[derive(Clone)]
enum Target {
    Postgres {
        /// The URL as given, plus a `connect_timeout` unless it sets one.
        url: String,
        /// The URL with its password replaced, for messages.
        shown: String,
        /// Passwords found in the URL, scrubbed from error messages.
        secrets: Vec<String>,
    },
    SqliteFile {
        path: String,
    },
    SqliteMemory,
}

impl Target {
    fn parse(url: &str) -> Result<Self> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let (shown, secrets) = redact_pg_url(url);
            let mut full = url.to_owned();
            if !url.contains("connect_timeout=") {
                full.push(if url.contains('?') { '&' } else { '?' });
                full.push_str(&format!("connect_timeout={}", CONNECT_TIMEOUT.as_secs()));
            }
            return Ok(Target::Postgres { url: full, shown, secrets });
        }
        if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            return Ok(Target::SqliteMemory);
        }
        if let Some(path) = url.strip_prefix("sqlite://")
            && !path.is_empty()
        {
            // SQLite treats a name starting with `file:` as a URI; we mean a path.
            let path = if path.starts_with("file:") { format!("./{path}") } else { path.to_owned() };
            return Ok(Target::SqliteFile { path });
        }
        Err(Error::UnsupportedUrl(url.to_owned()))
    }

    fn is_sqlite(&self) -> bool {
        !matches!(self, Target::Postgres { .. })
    }

    /// An `Unavailable` error whose message names the target but no password.
    fn unavailable(&self, err: impl fmt::Display) -> Error {
        let mut msg = format!("{self}: {err}");
        if let Target::Postgres { secrets, .. } = self {
            for s in secrets.iter().filter(|s| !s.is_empty()) {
                msg = msg.replace(s.as_str(), "***");
            }
        }
        Error::Unavailable(msg.into())
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Postgres { shown, .. } => f.write_str(shown),
            Target::SqliteFile { path } => write!(f, "sqlite://{path}"),
            Target::SqliteMemory => f.write_str("sqlite::memory:"),
        }
    }
}

/// The URL with the password of its user-info and any `password=` parameter replaced by
/// `***`, and the passwords found. Anything after the last `@` is taken as host and beyond,
/// so an unencoded `/` or `@` in a password is still hidden.
fn redact_pg_url(url: &str) -> (String, Vec<String>) {
    let mut secrets = Vec::new();
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return ("postgres://…".to_owned(), secrets);
    };
    let (scheme, rest) = url.split_at(scheme_end);
    let mut shown = scheme.to_owned();
    let after_userinfo = match rest.rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            match userinfo.split_once(':') {
                Some((user, password)) => {
                    secrets.push(password.to_owned());
                    shown.push_str(user);
                    shown.push_str(":***");
                }
                None => shown.push_str(userinfo),
            }
            &rest[at..]
        }
        None => rest,
    };
    match after_userinfo.split_once('?') {
        Some((path, query)) => {
            shown.push_str(path);
            shown.push('?');
            let params: Vec<String> = query
                .split('&')
                .map(|kv| match kv.strip_prefix("password=") {
                    Some(p) => {
                        secrets.push(p.to_owned());
                        "password=***".to_owned()
                    }
                    None => kv.to_owned(),
                })
                .collect();
            shown.push_str(&params.join("&"));
        }
        None => shown.push_str(after_userinfo),
    }
    (shown, secrets)
}

/// The r2d2 manager: opens exactly the backend the URL names. (Diesel's generic
/// `ConnectionManager<AnyConnection>` would try each backend in turn and drop the errors,
/// so a PostgreSQL outage would surface as "invalid URL" after an attempt to open the URL
/// as a SQLite file.)
struct Manager {
    target: Arc<Target>,
}

impl fmt::Debug for Manager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Manager").field("target", &self.target.to_string()).finish()
    }
}

impl ManageConnection for Manager {
    type Connection = AnyConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<AnyConnection, diesel::r2d2::Error> {
        let conn = match &*self.target {
            Target::Postgres { url, .. } => PgConnection::establish(url).map(AnyConnection::Postgresql),
            Target::SqliteFile { path } => SqliteConnection::establish(path).map(AnyConnection::Sqlite),
            Target::SqliteMemory => SqliteConnection::establish(":memory:").map(AnyConnection::Sqlite),
        };
        conn.map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut AnyConnection) -> Result<(), diesel::r2d2::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut AnyConnection) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

/// Per-connection SQLite settings: foreign keys, a busy timeout, `synchronous = NORMAL` and,
/// for files, write-ahead logging.
#[derive(Debug)]
struct SqlitePragmas {
    wal: bool,
}

impl CustomizeConnection<AnyConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut AnyConnection) -> Result<(), diesel::r2d2::Error> {
        if let AnyConnection::Sqlite(conn) = conn {
            conn.batch_execute(SQLITE_PRAGMAS).map_err(diesel::r2d2::Error::QueryError)?;
            if self.wal {
                conn.batch_execute("PRAGMA journal_mode = WAL;").map_err(diesel::r2d2::Error::QueryError)?;
            }
        }
        Ok(())
    }
}

/// The metadata store on PostgreSQL or SQLite through Diesel. Cheap to share behind an
/// `Arc`; every call borrows a pooled connection on a blocking thread.
pub struct DieselStore {
    pool: Pool<Manager>,
    target: Arc<Target>,
}

impl fmt::Debug for DieselStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DieselStore").field("target", &self.target.to_string()).finish_non_exhaustive()
    }
}

impl DieselStore {
    /// Connect to the database `url` names: `postgres://…` or `postgresql://…` (a libpq URL),
    /// `sqlite://PATH` (relative or absolute; missing parent directories and the file are
    /// created) or `sqlite::memory:` (one private database, one connection). Does not migrate.
    ///
    /// `UnsupportedUrl` for any other URL; `Unavailable` if the database cannot be opened,
    /// with a message that names the URL without its password.
    pub async fn connect(url: &str) -> Result<Self> {
        let target = Arc::new(Target::parse(url)?);
        tokio::task::spawn_blocking(move || Self::connect_blocking(target)).await.map_err(join_error)?
    }

    fn connect_blocking(target: Arc<Target>) -> Result<Self> {
        if let Target::SqliteFile { path } = &*target
            && let Some(parent) = Path::new(path).parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| target.unavailable(format_args!("creating {parent:?}: {e}")))?;
        }
        let manager = Manager { target: Arc::clone(&target) };
        let pragmas = |wal| SqlitePragmas { wal };
        // One connection first, outside the pool, so that a failure is reported at once and
        // precisely rather than as a pool timeout.
        let mut probe = manager.connect().map_err(|e| target.unavailable(e))?;
        if target.is_sqlite() {
            pragmas(matches!(*target, Target::SqliteFile { .. }))
                .on_acquire(&mut probe)
                .map_err(|e| target.unavailable(e))?;
        }
        drop(probe);

        // No minimum of idle connections: r2d2 would refill it from a background thread after
        // each checkout, and a libpq connect still running in that thread when a short-lived
        // process (`coffer admin`) exits crashes in OpenSSL's exit handlers. Connections are
        // still kept idle for reuse; only the proactive refill is off.
        let mut builder = Pool::builder().min_idle(Some(0)).connection_timeout(CONNECT_TIMEOUT);
        builder = match &*target {
            Target::Postgres { .. } => builder.max_size(PG_POOL_SIZE),
            Target::SqliteFile { .. } => {
                builder.max_size(SQLITE_POOL_SIZE).connection_customizer(Box::new(pragmas(true)))
            }
            // The database lives as long as its only connection: never retire it.
            Target::SqliteMemory => builder
                .max_size(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connection_customizer(Box::new(pragmas(false))),
        };
        let pool = builder.build(manager).map_err(|e| target.unavailable(e))?;
        tracing::debug!(database = %target, "metadata store connected");
        Ok(Self { pool, target })
    }

    /// Run `f` with a pooled connection on a blocking thread.
    async fn with_conn<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        let target = Arc::clone(&self.target);
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().map_err(|e| target.unavailable(e))?;
            f(&mut conn)
        })
        .await
        .map_err(join_error)?
    }

    /// Run `f` in a transaction that first bumps the revision.
    async fn mutate<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut AnyConnection) -> Result<T> + Send + 'static,
    {
        self.with_conn(move |conn| {
            conn.transaction(|conn| {
                bump_revision(conn)?;
                f(conn)
            })
        })
        .await
    }
}

/// Database failures not mapped to a more precise error.
impl From<DieselError> for Error {
    fn from(e: DieselError) -> Self {
        Error::Unavailable(Box::new(e))
    }
}

fn join_error(e: tokio::task::JoinError) -> Error {
    if e.is_panic() {
        std::panic::resume_unwind(e.into_panic());
    }
    Error::Unavailable("the metadata task was cancelled".into())
}

fn is_kind(e: &DieselError, kind: DatabaseErrorKind) -> bool {
    matches!(e, DieselError::DatabaseError(k, _) if *k == kind)
}

fn not_found(what: &'static str, name: impl Into<String>) -> Error {
    Error::NotFound { what, name: name.into() }
}

/// Whether a name looked up could be stored at all. Names come from requests (an access key
/// id from a presigned URL may hold `%00`); PostgreSQL refuses NUL in text, SQLite would
/// merely find nothing. No stored name holds NUL, so such a name is answered as absent
/// without a query, the same on both databases.
fn may_be_stored(name: &str) -> bool {
    !name.contains('\0')
}

/// Move the revision (taking the write lock) and, on PostgreSQL, notify the listeners of
/// the new value at commit.
fn bump_revision(conn: &mut AnyConnection) -> Result<()> {
    let updated = diesel::update(revision::table.filter(revision::id.eq(1)))
        .set(revision::value.eq(revision::value + 1_i64))
        .execute(conn)?;
    if updated != 1 {
        return Err(Error::Corrupt("the revision row is missing".to_owned()));
    }
    if let AnyConnection::Postgresql(conn) = conn {
        diesel::sql_query(changes::notify_sql()).execute(conn)?;
    }
    Ok(())
}

/// Apply `source`'s pending migrations; the names (`<version>_<name>`) of those applied.
fn run_migrations<DB, C>(conn: &mut C, source: EmbeddedMigrations) -> Result<Vec<String>>
where
    DB: Backend,
    C: MigrationHarness<DB>,
    EmbeddedMigrations: MigrationSource<DB>,
{
    let names: HashMap<String, String> = MigrationSource::<DB>::migrations(&source)
        .map_err(Error::Unavailable)?
        .iter()
        .map(|m| (m.name().version().to_string(), m.name().to_string()))
        .collect();
    let applied = conn.run_pending_migrations(source).map_err(Error::Unavailable)?;
    Ok(applied.iter().map(|v| v.to_string()).map(|v| names.get(&v).cloned().unwrap_or(v)).collect())
}

fn migrate_pg(conn: &mut PgConnection) -> Result<Vec<String>> {
    diesel::sql_query(format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})")).execute(conn)?;
    let applied = run_migrations(conn, PG_MIGRATIONS);
    let unlocked = diesel::sql_query(format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})")).execute(conn);
    let applied = applied?;
    unlocked?;
    Ok(applied)
}

// ---- rows and their translation to and from the domain ----

fn corrupt(what: &str, key: &str, detail: impl fmt::Display) -> Error {
    Error::Corrupt(format!("{what} {key:?}: {detail}"))
}

/// A JSON array of strings, as stored.
fn json_strings<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    serde_json::Value::Array(items.into_iter().map(|s| serde_json::Value::String(s.to_owned())).collect()).to_string()
}

/// A stored JSON array of strings.
fn strings_from_json(what: &str, key: &str, field: &str, json: &str) -> Result<Vec<String>> {
    serde_json::from_str(json).map_err(|e| corrupt(what, key, format_args!("{field}: {e}")))
}

/// Audit rows into SQLite, inside the caller's transaction: whole chunks of
/// [`AUDIT_ROWS_PER_SQLITE_INSERT`] rows by one multi-row INSERT each ([`AuditChunk`]), the
/// rest one row at a time. Both statements are found by their type in diesel's cache of
/// the statements it prepared on this connection, without building their SQL again. (With
/// borrowed values diesel writes the SQL out to look it up, and a written-out `sql_query`
/// is prepared anew every time: that took a tenth of a server's CPU under small GETs,
/// docs/BENCHMARKS.md. diesel's own batch INSERT runs row by row on SQLite.) A chunk pays the
/// statement's lookup, reset and start once for all its rows.
fn insert_audit_sqlite(c: &mut SqliteConnection, rows: &[AuditRow]) -> QueryResult<()> {
    let chunks = rows.chunks_exact(AUDIT_ROWS_PER_SQLITE_INSERT);
    let rest = chunks.remainder();
    for chunk in chunks {
        AuditChunk(chunk.try_into().expect("chunks_exact gives whole chunks")).execute(c)?;
    }
    for r in rest {
        diesel::insert_into(audit_events::table).values(r).execute(c)?;
    }
    Ok(())
}

/// Rows per multi-row INSERT of audit events into SQLite: 10 bind parameters each, far
/// below SQLite's limit (999 before 3.32, 32 766 since).
const AUDIT_ROWS_PER_SQLITE_INSERT: usize = 32;

/// A full chunk of audit rows as one INSERT with a row of bind parameters per event. Its
/// query id is static, so diesel prepares it once per connection.
struct AuditChunk<'a>(&'a [AuditRow; AUDIT_ROWS_PER_SQLITE_INSERT]);

impl diesel::query_builder::QueryId for AuditChunk<'_> {
    type QueryId = AuditChunk<'static>;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl diesel::query_builder::QueryFragment<diesel::sqlite::Sqlite> for AuditChunk<'_> {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::sqlite::Sqlite>,
    ) -> QueryResult<()> {
        use diesel::sql_types::{BigInt, Bool, Text};
        out.push_sql(
            "INSERT INTO audit_events (at, principal, access_key_id, action, bucket, object_key, allowed, \
             rule, request_id, source) VALUES ",
        );
        for (i, r) in self.0.iter().enumerate() {
            out.push_sql(if i == 0 { "(" } else { ", (" });
            out.push_bind_param::<BigInt, _>(&r.at)?;
            for text in [&r.principal, &r.access_key_id, &r.action, &r.bucket, &r.object_key] {
                out.push_sql(", ");
                out.push_bind_param::<Text, _>(text)?;
            }
            out.push_sql(", ");
            out.push_bind_param::<Bool, _>(&r.allowed)?;
            for text in [&r.rule, &r.request_id, &r.source] {
                out.push_sql(", ");
                out.push_bind_param::<Text, _>(text)?;
            }
            out.push_sql(")");
        }
        Ok(())
    }
}

impl RunQueryDsl<SqliteConnection> for AuditChunk<'_> {}

/// Rows per INSERT of audit events into PostgreSQL: 10 bind parameters each, well below
/// its limit of 65 535.
const AUDIT_ROWS_PER_INSERT: usize = 100;

/// An audit event as stored (without its id).
#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
struct AuditRow {
    at: i64,
    principal: String,
    access_key_id: String,
    action: String,
    bucket: String,
    object_key: String,
    allowed: bool,
    rule: String,
    request_id: String,
    source: String,
}

impl AuditRow {
    /// The row of an event, its strings moved, not copied.
    fn encode(e: AuditEvent) -> Self {
        // PostgreSQL text cannot hold NUL; the audit trail must not fail on a hostile key.
        let clean = |s: String| if s.contains('\0') { s.replace('\0', "\u{FFFD}") } else { s };
        Self {
            at: e.at,
            principal: clean(e.principal),
            access_key_id: clean(e.access_key_id),
            action: clean(e.action),
            bucket: clean(e.bucket),
            object_key: clean(e.key),
            allowed: e.allowed,
            rule: clean(e.rule),
            request_id: clean(e.request_id),
            source: clean(e.source),
        }
    }

    fn decode(self) -> AuditEvent {
        AuditEvent {
            at: self.at,
            principal: self.principal,
            access_key_id: self.access_key_id,
            action: self.action,
            bucket: self.bucket,
            key: self.object_key,
            allowed: self.allowed,
            rule: self.rule,
            request_id: self.request_id,
            source: self.source,
        }
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
struct UserRow {
    name: String,
    groups: String,
    clearance: String,
    is_admin: bool,
    created_at: i64,
}

impl UserRow {
    fn encode(u: &User) -> Self {
        Self {
            name: u.name.as_str().to_owned(),
            groups: json_strings(u.groups.iter().map(String::as_str)),
            clearance: json_strings(u.clearance.iter().map(Classification::as_str)),
            is_admin: u.is_admin,
            created_at: u.created_at,
        }
    }

    fn decode(self) -> Result<User> {
        let key = self.name.as_str();
        let name = UserName::parse(key).map_err(|e| corrupt("user", key, e))?;
        let groups = strings_from_json("user", key, "groups", &self.groups)?.into_iter().collect();
        let clearance = strings_from_json("user", key, "clearance", &self.clearance)?
            .iter()
            .map(|c| Classification::parse(c).map_err(|e| corrupt("user", key, e)))
            .collect::<Result<BTreeSet<_>>>()?;
        Ok(User { name, groups, clearance, is_admin: self.is_admin, created_at: self.created_at })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = buckets)]
struct BucketRow {
    name: String,
    owner: String,
    tier: String,
    classification: String,
    created_at: i64,
}

impl BucketRow {
    fn encode(b: &Bucket) -> Self {
        Self {
            name: b.name.as_str().to_owned(),
            owner: b.owner.clone(),
            tier: b.tier.clone(),
            classification: b.classification.as_str().to_owned(),
            created_at: b.created_at,
        }
    }

    fn decode(self) -> Result<Bucket> {
        let key = self.name.as_str();
        let name = BucketName::parse(key).map_err(|e| corrupt("bucket", key, e))?;
        let classification = Classification::parse(&self.classification).map_err(|e| corrupt("bucket", key, e))?;
        Ok(Bucket { name, owner: self.owner, tier: self.tier, classification, created_at: self.created_at })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = grants)]
struct GrantRow {
    bucket: String,
    grantee_kind: String,
    grantee: String,
    role: String,
    created_at: i64,
}

impl GrantRow {
    fn encode(g: &Grant) -> Self {
        Self {
            bucket: g.bucket.as_str().to_owned(),
            grantee_kind: g.grantee.kind().to_owned(),
            grantee: g.grantee.name().to_owned(),
            role: g.role.as_str().to_owned(),
            created_at: g.created_at,
        }
    }

    fn decode(self) -> Result<Grant> {
        let key = format!("{} {}:{}", self.bucket, self.grantee_kind, self.grantee);
        let bucket = BucketName::parse(&self.bucket).map_err(|e| corrupt("grant", &key, e))?;
        let grantee = match self.grantee_kind.as_str() {
            "user" => Grantee::User(self.grantee),
            "group" => Grantee::Group(self.grantee),
            other => return Err(corrupt("grant", &key, format_args!("unknown grantee kind {other:?}"))),
        };
        let role = Role::parse(&self.role)
            .ok_or_else(|| corrupt("grant", &key, format_args!("unknown role {:?}", self.role)))?;
        Ok(Grant { bucket, grantee, role, created_at: self.created_at })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = access_keys)]
struct KeyRow {
    access_key_id: String,
    user_name: String,
    secret_sealed: String,
    read_only: bool,
    buckets: Option<String>,
    classification: Option<String>,
    expires_at: Option<i64>,
    created_at: i64,
    revoked_at: Option<i64>,
}

impl KeyRow {
    fn encode(k: &AccessKey) -> Self {
        let n = &k.narrowing;
        Self {
            access_key_id: k.access_key_id.clone(),
            user_name: k.user.as_str().to_owned(),
            secret_sealed: k.secret_sealed.clone(),
            read_only: n.read_only,
            buckets: n.buckets.as_ref().map(|b| json_strings(b.iter().map(BucketName::as_str))),
            classification: n.classification.as_ref().map(|c| c.as_str().to_owned()),
            expires_at: n.expires_at,
            created_at: k.created_at,
            revoked_at: k.revoked_at,
        }
    }

    fn decode(self) -> Result<AccessKey> {
        let key = self.access_key_id.as_str();
        let user = UserName::parse(&self.user_name).map_err(|e| corrupt("access key", key, e))?;
        let buckets = match &self.buckets {
            None => None,
            Some(json) => Some(
                strings_from_json("access key", key, "buckets", json)?
                    .iter()
                    .map(|b| BucketName::parse(b).map_err(|e| corrupt("access key", key, e)))
                    .collect::<Result<BTreeSet<_>>>()?,
            ),
        };
        let classification = self
            .classification
            .as_deref()
            .map(|c| Classification::parse(c).map_err(|e| corrupt("access key", key, e)))
            .transpose()?;
        Ok(AccessKey {
            access_key_id: self.access_key_id,
            user,
            secret_sealed: self.secret_sealed,
            narrowing: Narrowing { read_only: self.read_only, buckets, classification, expires_at: self.expires_at },
            created_at: self.created_at,
            revoked_at: self.revoked_at,
        })
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = share_links)]
struct ShareLinkRow {
    id: String,
    creator: String,
    principal: String,
    bucket: String,
    target_kind: String,
    target: String,
    created_at: i64,
    expires_at: i64,
    revoked_at: Option<i64>,
}

impl ShareLinkRow {
    fn encode(l: &ShareLink) -> Self {
        let (target_kind, target) = match &l.target {
            ShareTarget::Object(key) => ("object", key),
            ShareTarget::Prefix(prefix) => ("prefix", prefix),
        };
        Self {
            id: l.id.clone(),
            creator: l.creator.name.clone(),
            // Strings, sets of strings and a flag: serialising cannot fail.
            principal: serde_json::to_string(&l.creator).expect("a principal serialises to JSON"),
            bucket: l.bucket.as_str().to_owned(),
            target_kind: target_kind.to_owned(),
            target: target.clone(),
            created_at: l.created_at,
            expires_at: l.expires_at,
            revoked_at: l.revoked_at,
        }
    }

    fn decode(self) -> Result<ShareLink> {
        let key = self.id.as_str();
        let creator: Principal = serde_json::from_str(&self.principal)
            .map_err(|e| corrupt("share link", key, format_args!("principal: {e}")))?;
        if creator.name != self.creator {
            return Err(corrupt(
                "share link",
                key,
                format_args!("creator {:?} is not the principal's name {:?}", self.creator, creator.name),
            ));
        }
        let bucket = BucketName::parse(&self.bucket).map_err(|e| corrupt("share link", key, e))?;
        let target = match self.target_kind.as_str() {
            "object" => ShareTarget::Object(self.target),
            "prefix" => ShareTarget::Prefix(self.target),
            other => return Err(corrupt("share link", key, format_args!("unknown target kind {other:?}"))),
        };
        Ok(ShareLink {
            id: self.id,
            creator,
            bucket,
            target,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
        })
    }
}

/// A limit or a count as stored. `BIGINT` holds at most `i64::MAX`; callers never pass more
/// (the gateway validates limits, and no bucket holds 8 EiB or 2⁶³ objects). Should one
/// slip through, it is saturated to `i64::MAX`, which means the same in practice ("more than
/// will ever be stored"), rather than wrapped to a negative number.
fn to_bigint(n: u64) -> i64 {
    debug_assert!(i64::try_from(n).is_ok(), "{n} does not fit in a BIGINT");
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored limit or count: never negative unless the row was edited by hand.
fn from_bigint(what: &str, key: &str, field: &str, n: i64) -> Result<u64> {
    u64::try_from(n).map_err(|_| corrupt(what, key, format_args!("{field} is negative ({n})")))
}

/// How a quota is named in errors: `bucket:NAME` or `user:NAME`.
fn quota_key(scope: &QuotaScope) -> String {
    match scope {
        QuotaScope::Bucket(bucket) => format!("bucket:{bucket}"),
        QuotaScope::User(user) => format!("user:{user}"),
    }
}

/// A quota from its stored columns.
fn decode_quota(scope: QuotaScope, max_bytes: Option<i64>, max_objects: Option<i64>, updated_at: i64) -> Result<Quota> {
    let key = quota_key(&scope);
    let limit = |field, n: Option<i64>| n.map(|n| from_bigint("quota", &key, field, n)).transpose();
    Ok(Quota {
        max_bytes: limit("max_bytes", max_bytes)?,
        max_objects: limit("max_objects", max_objects)?,
        scope,
        updated_at,
    })
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = bucket_quotas)]
struct BucketQuotaRow {
    bucket: String,
    max_bytes: Option<i64>,
    max_objects: Option<i64>,
    updated_at: i64,
}

impl BucketQuotaRow {
    fn decode(self) -> Result<Quota> {
        decode_quota(QuotaScope::Bucket(self.bucket), self.max_bytes, self.max_objects, self.updated_at)
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = user_quotas)]
struct UserQuotaRow {
    user_name: String,
    max_bytes: Option<i64>,
    max_objects: Option<i64>,
    updated_at: i64,
}

impl UserQuotaRow {
    fn decode(self) -> Result<Quota> {
        decode_quota(QuotaScope::User(self.user_name), self.max_bytes, self.max_objects, self.updated_at)
    }
}

#[derive(Queryable, Selectable, Insertable)]
#[diesel(table_name = bucket_usage)]
struct UsageRow {
    bucket: String,
    bytes: i64,
    objects: i64,
}

impl UsageRow {
    fn encode(bucket: String, usage: Usage) -> Self {
        Self { bucket, bytes: to_bigint(usage.bytes), objects: to_bigint(usage.objects) }
    }

    fn decode(self) -> Result<Usage> {
        decode_usage(&self.bucket, self.bytes, self.objects)
    }
}

fn decode_usage(bucket: &str, bytes: i64, objects: i64) -> Result<Usage> {
    Ok(Usage {
        bytes: from_bigint("bucket usage", bucket, "bytes", bytes)?,
        objects: from_bigint("bucket usage", bucket, "objects", objects)?,
    })
}

/// The SQL for `column + delta` floored at zero and capped at `i64::MAX`, in one expression
/// both databases accept, that never computes a sum out of range (PostgreSQL would fail,
/// SQLite would turn it into a float): `column + delta < 0` exactly when
/// `column <= !delta` (that is, `-delta - 1`), and `column + delta > i64::MAX` exactly when
/// `column > i64::MAX - delta` (`i64::MAX` saturated for a negative delta: never).
macro_rules! clamped_add {
    ($column:expr, $delta:expr) => {{
        let delta: i64 = $delta;
        case_when::<_, _, BigInt>($column.le(!delta), 0_i64)
            .when($column.gt(i64::MAX.saturating_sub(delta)), i64::MAX)
            .otherwise($column + delta)
    }};
}

#[async_trait]
impl MetadataStore for DieselStore {
    async fn migrate(&self) -> Result<Vec<String>> {
        let applied = self
            .with_conn(|conn| match conn {
                AnyConnection::Postgresql(conn) => migrate_pg(conn),
                AnyConnection::Sqlite(conn) => run_migrations(conn, SQLITE_MIGRATIONS),
            })
            .await?;
        if !applied.is_empty() {
            tracing::info!(database = %self.target, ?applied, "metadata migrations applied");
        }
        Ok(applied)
    }

    async fn ping(&self) -> Result<()> {
        self.with_conn(|conn| Ok(conn.ping()?)).await
    }

    async fn revision(&self) -> Result<i64> {
        self.with_conn(|conn| {
            revision::table
                .filter(revision::id.eq(1))
                .select(revision::value)
                .first::<i64>(conn)
                .optional()?
                .ok_or_else(|| Error::Corrupt("the revision row is missing".to_owned()))
        })
        .await
    }

    async fn subscribe_changes(&self) -> Result<Option<ChangeStream>> {
        let Target::Postgres { url, .. } = &*self.target else { return Ok(None) };
        let url = url.clone();
        let target = Arc::clone(&self.target);
        tokio::task::spawn_blocking(move || {
            let connect = move || -> Result<PgConnection> {
                let mut conn = PgConnection::establish(&url).map_err(|e| target.unavailable(e))?;
                changes::listen(&mut conn).map_err(|e| target.unavailable(format_args!("LISTEN: {e}")))?;
                Ok(conn)
            };
            let first = connect()?;
            changes::spawn_pg_listener(first, connect).map(Some)
        })
        .await
        .map_err(join_error)?
    }

    async fn create_user(&self, user: &User) -> Result<()> {
        let row = UserRow::encode(user);
        self.mutate(move |conn| match diesel::insert_into(users::table).values(&row).execute(conn) {
            Ok(_) => Ok(()),
            Err(e) if is_kind(&e, DatabaseErrorKind::UniqueViolation) => {
                Err(Error::Conflict { what: "user", name: row.name })
            }
            Err(e) => Err(e.into()),
        })
        .await
    }

    async fn get_user(&self, name: &str) -> Result<Option<User>> {
        if !may_be_stored(name) {
            return Ok(None);
        }
        let name = name.to_owned();
        self.with_conn(move |conn| {
            let row = users::table.find(&name).select(UserRow::as_select()).first(conn).optional()?;
            row.map(UserRow::decode).transpose()
        })
        .await
    }

    async fn list_users(&self) -> Result<Vec<User>> {
        self.with_conn(|conn| {
            let rows = users::table.order(users::name).select(UserRow::as_select()).load(conn)?;
            rows.into_iter().map(UserRow::decode).collect()
        })
        .await
    }

    async fn update_user(&self, user: &User) -> Result<()> {
        let row = UserRow::encode(user);
        self.mutate(move |conn| {
            let updated = diesel::update(users::table.find(&row.name))
                .set((
                    users::groups.eq(&row.groups),
                    users::clearance.eq(&row.clearance),
                    users::is_admin.eq(row.is_admin),
                ))
                .execute(conn)?;
            if updated == 0 {
                return Err(not_found("user", row.name));
            }
            Ok(())
        })
        .await
    }

    async fn delete_user(&self, name: &str) -> Result<()> {
        if !may_be_stored(name) {
            return Err(not_found("user", name));
        }
        let name = name.to_owned();
        self.mutate(move |conn| {
            let exists = users::table.find(&name).select(users::name).first::<String>(conn).optional()?.is_some();
            if !exists {
                return Err(not_found("user", name));
            }
            let owned: Vec<String> = buckets::table
                .filter(buckets::owner.eq(&name))
                .order(buckets::name)
                .select(buckets::name)
                .load(conn)?;
            if !owned.is_empty() {
                return Err(Error::InUse(format!("user {name} owns buckets: {}", owned.join(", "))));
            }
            diesel::delete(grants::table.filter(grants::grantee_kind.eq("user")).filter(grants::grantee.eq(&name)))
                .execute(conn)?;
            // The user's access keys go by ON DELETE CASCADE.
            diesel::delete(users::table.find(&name)).execute(conn)?;
            Ok(())
        })
        .await
    }

    async fn create_bucket(&self, bucket: &Bucket) -> Result<()> {
        let row = BucketRow::encode(bucket);
        self.mutate(move |conn| match diesel::insert_into(buckets::table).values(&row).execute(conn) {
            Ok(_) => Ok(()),
            Err(e) if is_kind(&e, DatabaseErrorKind::UniqueViolation) => {
                Err(Error::Conflict { what: "bucket", name: row.name })
            }
            Err(e) => Err(e.into()),
        })
        .await
    }

    async fn get_bucket(&self, name: &str) -> Result<Option<Bucket>> {
        if !may_be_stored(name) {
            return Ok(None);
        }
        let name = name.to_owned();
        self.with_conn(move |conn| {
            let row = buckets::table.find(&name).select(BucketRow::as_select()).first(conn).optional()?;
            row.map(BucketRow::decode).transpose()
        })
        .await
    }

    async fn list_buckets(&self) -> Result<Vec<Bucket>> {
        self.with_conn(|conn| {
            let rows = buckets::table.order(buckets::name).select(BucketRow::as_select()).load(conn)?;
            rows.into_iter().map(BucketRow::decode).collect()
        })
        .await
    }

    async fn delete_bucket(&self, name: &str) -> Result<()> {
        if !may_be_stored(name) {
            return Err(not_found("bucket", name));
        }
        let name = name.to_owned();
        self.mutate(move |conn| {
            // The bucket's grants go by ON DELETE CASCADE.
            let deleted = diesel::delete(buckets::table.find(&name)).execute(conn)?;
            if deleted == 0 {
                return Err(not_found("bucket", name));
            }
            Ok(())
        })
        .await
    }

    async fn put_grant(&self, grant: &Grant) -> Result<()> {
        let row = GrantRow::encode(grant);
        self.mutate(move |conn| {
            // Writers are serialised by the revision bump, so update-else-insert cannot race.
            let updated = diesel::update(grants::table.find((&row.bucket, &row.grantee_kind, &row.grantee)))
                .set(grants::role.eq(&row.role))
                .execute(conn)?;
            if updated > 0 {
                return Ok(());
            }
            match diesel::insert_into(grants::table).values(&row).execute(conn) {
                Ok(_) => Ok(()),
                Err(e) if is_kind(&e, DatabaseErrorKind::ForeignKeyViolation) => Err(not_found("bucket", row.bucket)),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn remove_grant(&self, bucket: &str, grantee: &Grantee) -> Result<()> {
        let (bucket, kind, name) = (bucket.to_owned(), grantee.kind(), grantee.name().to_owned());
        if !may_be_stored(&bucket) || !may_be_stored(&name) {
            return Err(not_found("grant", format!("{kind}:{name} on {bucket}")));
        }
        self.mutate(move |conn| {
            let deleted = diesel::delete(grants::table.find((&bucket, kind, &name))).execute(conn)?;
            if deleted == 0 {
                return Err(not_found("grant", format!("{kind}:{name} on {bucket}")));
            }
            Ok(())
        })
        .await
    }

    async fn list_grants(&self, bucket: Option<&str>) -> Result<Vec<Grant>> {
        if bucket.is_some_and(|b| !may_be_stored(b)) {
            return Ok(Vec::new());
        }
        let bucket = bucket.map(str::to_owned);
        self.with_conn(move |conn| {
            let mut query = grants::table
                .order((grants::bucket, grants::grantee_kind, grants::grantee))
                .select(GrantRow::as_select())
                .into_boxed();
            if let Some(bucket) = bucket {
                query = query.filter(grants::bucket.eq(bucket));
            }
            let rows = query.load(conn)?;
            rows.into_iter().map(GrantRow::decode).collect()
        })
        .await
    }

    async fn create_access_key(&self, key: &AccessKey) -> Result<()> {
        let row = KeyRow::encode(key);
        self.mutate(move |conn| match diesel::insert_into(access_keys::table).values(&row).execute(conn) {
            Ok(_) => Ok(()),
            Err(e) if is_kind(&e, DatabaseErrorKind::UniqueViolation) => {
                Err(Error::Conflict { what: "access key", name: row.access_key_id })
            }
            Err(e) if is_kind(&e, DatabaseErrorKind::ForeignKeyViolation) => Err(not_found("user", row.user_name)),
            Err(e) => Err(e.into()),
        })
        .await
    }

    async fn get_access_key(&self, access_key_id: &str) -> Result<Option<AccessKey>> {
        if !may_be_stored(access_key_id) {
            return Ok(None);
        }
        let id = access_key_id.to_owned();
        self.with_conn(move |conn| {
            let row = access_keys::table.find(&id).select(KeyRow::as_select()).first(conn).optional()?;
            row.map(KeyRow::decode).transpose()
        })
        .await
    }

    async fn list_access_keys(&self, user: Option<&str>) -> Result<Vec<AccessKey>> {
        if user.is_some_and(|u| !may_be_stored(u)) {
            return Ok(Vec::new());
        }
        let user = user.map(str::to_owned);
        self.with_conn(move |conn| {
            let mut query = access_keys::table
                .order((access_keys::created_at, access_keys::access_key_id))
                .select(KeyRow::as_select())
                .into_boxed();
            if let Some(user) = user {
                query = query.filter(access_keys::user_name.eq(user));
            }
            let rows = query.load(conn)?;
            rows.into_iter().map(KeyRow::decode).collect()
        })
        .await
    }

    async fn revoke_access_key(&self, access_key_id: &str, at: i64) -> Result<()> {
        if !may_be_stored(access_key_id) {
            return Err(not_found("access key", access_key_id));
        }
        let id = access_key_id.to_owned();
        self.mutate(move |conn| {
            let revoked = diesel::update(access_keys::table.find(&id).filter(access_keys::revoked_at.is_null()))
                .set(access_keys::revoked_at.eq(Some(at)))
                .execute(conn)?;
            if revoked == 0 {
                // Either revoked already (keep the first time) or absent.
                let exists = access_keys::table
                    .find(&id)
                    .select(access_keys::access_key_id)
                    .first::<String>(conn)
                    .optional()?
                    .is_some();
                if !exists {
                    return Err(not_found("access key", id));
                }
            }
            Ok(())
        })
        .await
    }

    async fn create_share_link(&self, link: &ShareLink) -> Result<()> {
        let row = ShareLinkRow::encode(link);
        self.mutate(move |conn| match diesel::insert_into(share_links::table).values(&row).execute(conn) {
            Ok(_) => Ok(()),
            Err(e) if is_kind(&e, DatabaseErrorKind::UniqueViolation) => {
                Err(Error::Conflict { what: "share link", name: row.id })
            }
            Err(e) if is_kind(&e, DatabaseErrorKind::ForeignKeyViolation) => Err(not_found("bucket", row.bucket)),
            Err(e) => Err(e.into()),
        })
        .await
    }

    async fn get_share_link(&self, id: &str) -> Result<Option<ShareLink>> {
        if !may_be_stored(id) {
            return Ok(None);
        }
        let id = id.to_owned();
        self.with_conn(move |conn| {
            let row = share_links::table.find(&id).select(ShareLinkRow::as_select()).first(conn).optional()?;
            row.map(ShareLinkRow::decode).transpose()
        })
        .await
    }

    async fn list_share_links(&self, creator: Option<&str>, bucket: Option<&str>) -> Result<Vec<ShareLink>> {
        if creator.is_some_and(|c| !may_be_stored(c)) || bucket.is_some_and(|b| !may_be_stored(b)) {
            return Ok(Vec::new());
        }
        let (creator, bucket) = (creator.map(str::to_owned), bucket.map(str::to_owned));
        self.with_conn(move |conn| {
            let mut query = share_links::table
                .order((share_links::created_at.desc(), share_links::id))
                .select(ShareLinkRow::as_select())
                .into_boxed();
            if let Some(creator) = creator {
                query = query.filter(share_links::creator.eq(creator));
            }
            if let Some(bucket) = bucket {
                query = query.filter(share_links::bucket.eq(bucket));
            }
            let rows = query.load(conn)?;
            rows.into_iter().map(ShareLinkRow::decode).collect()
        })
        .await
    }

    async fn revoke_share_link(&self, id: &str, at: i64) -> Result<()> {
        if !may_be_stored(id) {
            return Err(not_found("share link", id));
        }
        let id = id.to_owned();
        self.mutate(move |conn| {
            let revoked = diesel::update(share_links::table.find(&id).filter(share_links::revoked_at.is_null()))
                .set(share_links::revoked_at.eq(Some(at)))
                .execute(conn)?;
            if revoked == 0 {
                // Either revoked already (keep the first time) or absent.
                let exists =
                    share_links::table.find(&id).select(share_links::id).first::<String>(conn).optional()?.is_some();
                if !exists {
                    return Err(not_found("share link", id));
                }
            }
            Ok(())
        })
        .await
    }

    async fn put_quota(&self, quota: &Quota) -> Result<()> {
        let (max_bytes, max_objects) = (quota.max_bytes.map(to_bigint), quota.max_objects.map(to_bigint));
        let updated_at = quota.updated_at;
        // Writers are serialised by the revision bump, so update-else-insert cannot race.
        match &quota.scope {
            QuotaScope::Bucket(bucket) => {
                if !may_be_stored(bucket) {
                    return Err(not_found("bucket", bucket.as_str()));
                }
                let row = BucketQuotaRow { bucket: bucket.clone(), max_bytes, max_objects, updated_at };
                self.mutate(move |conn| {
                    let updated = diesel::update(bucket_quotas::table.find(&row.bucket))
                        .set((
                            bucket_quotas::max_bytes.eq(row.max_bytes),
                            bucket_quotas::max_objects.eq(row.max_objects),
                            bucket_quotas::updated_at.eq(row.updated_at),
                        ))
                        .execute(conn)?;
                    if updated > 0 {
                        return Ok(());
                    }
                    match diesel::insert_into(bucket_quotas::table).values(&row).execute(conn) {
                        Ok(_) => Ok(()),
                        Err(e) if is_kind(&e, DatabaseErrorKind::ForeignKeyViolation) => {
                            Err(not_found("bucket", row.bucket))
                        }
                        Err(e) => Err(e.into()),
                    }
                })
                .await
            }
            QuotaScope::User(user) => {
                // No user record is needed, but a name holding NUL cannot be any user's.
                if !may_be_stored(user) {
                    return Err(not_found("user", user.as_str()));
                }
                let row = UserQuotaRow { user_name: user.clone(), max_bytes, max_objects, updated_at };
                self.mutate(move |conn| {
                    let updated = diesel::update(user_quotas::table.find(&row.user_name))
                        .set((
                            user_quotas::max_bytes.eq(row.max_bytes),
                            user_quotas::max_objects.eq(row.max_objects),
                            user_quotas::updated_at.eq(row.updated_at),
                        ))
                        .execute(conn)?;
                    if updated == 0 {
                        diesel::insert_into(user_quotas::table).values(&row).execute(conn)?;
                    }
                    Ok(())
                })
                .await
            }
        }
    }

    async fn remove_quota(&self, scope: &QuotaScope) -> Result<()> {
        let key = quota_key(scope);
        let scope = match scope {
            QuotaScope::Bucket(name) | QuotaScope::User(name) if !may_be_stored(name) => {
                return Err(not_found("quota", key));
            }
            scope => scope.clone(),
        };
        self.mutate(move |conn| {
            let deleted = match &scope {
                QuotaScope::Bucket(bucket) => diesel::delete(bucket_quotas::table.find(bucket)).execute(conn)?,
                QuotaScope::User(user) => diesel::delete(user_quotas::table.find(user)).execute(conn)?,
            };
            if deleted == 0 {
                return Err(not_found("quota", key));
            }
            Ok(())
        })
        .await
    }

    async fn get_quota(&self, scope: &QuotaScope) -> Result<Option<Quota>> {
        let scope = match scope {
            QuotaScope::Bucket(name) | QuotaScope::User(name) if !may_be_stored(name) => return Ok(None),
            scope => scope.clone(),
        };
        self.with_conn(move |conn| match scope {
            QuotaScope::Bucket(bucket) => {
                let row =
                    bucket_quotas::table.find(&bucket).select(BucketQuotaRow::as_select()).first(conn).optional()?;
                row.map(BucketQuotaRow::decode).transpose()
            }
            QuotaScope::User(user) => {
                let row = user_quotas::table.find(&user).select(UserQuotaRow::as_select()).first(conn).optional()?;
                row.map(UserQuotaRow::decode).transpose()
            }
        })
        .await
    }

    async fn list_quotas(&self) -> Result<Vec<Quota>> {
        self.with_conn(|conn| {
            let buckets =
                bucket_quotas::table.order(bucket_quotas::bucket).select(BucketQuotaRow::as_select()).load(conn)?;
            let users =
                user_quotas::table.order(user_quotas::user_name).select(UserQuotaRow::as_select()).load(conn)?;
            let buckets = buckets.into_iter().map(BucketQuotaRow::decode);
            buckets.chain(users.into_iter().map(UserQuotaRow::decode)).collect()
        })
        .await
    }

    async fn bucket_usage(&self, bucket: &str) -> Result<Option<Usage>> {
        if !may_be_stored(bucket) {
            return Ok(None);
        }
        let bucket = bucket.to_owned();
        self.with_conn(move |conn| {
            let row = bucket_usage::table.find(&bucket).select(UsageRow::as_select()).first(conn).optional()?;
            row.map(UsageRow::decode).transpose()
        })
        .await
    }

    async fn set_bucket_usage(&self, bucket: &str, usage: Usage) -> Result<()> {
        if !may_be_stored(bucket) {
            return Err(not_found("bucket", bucket));
        }
        let row = UsageRow::encode(bucket.to_owned(), usage);
        // Usage does not bump the revision, so writers are not serialised: update-else-insert
        // as separate statements, each atomic. Should another caller insert the row between
        // the update and the insert, the insert fails as a duplicate and the row is updated
        // after all (the last writer wins, as if the calls had come one after the other).
        self.with_conn(move |conn| {
            let update = |conn: &mut AnyConnection| {
                diesel::update(bucket_usage::table.find(&row.bucket))
                    .set((bucket_usage::bytes.eq(row.bytes), bucket_usage::objects.eq(row.objects)))
                    .execute(conn)
            };
            if update(conn)? > 0 {
                return Ok(());
            }
            match diesel::insert_into(bucket_usage::table).values(&row).execute(conn) {
                Ok(_) => Ok(()),
                Err(e) if is_kind(&e, DatabaseErrorKind::UniqueViolation) => {
                    update(conn)?;
                    Ok(())
                }
                Err(e) if is_kind(&e, DatabaseErrorKind::ForeignKeyViolation) => Err(not_found("bucket", row.bucket)),
                Err(e) => Err(e.into()),
            }
        })
        .await
    }

    async fn add_bucket_usage(&self, bucket: &str, bytes: i64, objects: i64) -> Result<()> {
        if !may_be_stored(bucket) {
            return Ok(());
        }
        let bucket = bucket.to_owned();
        self.with_conn(move |conn| {
            // One statement: the database adds to the current value under its row lock, so
            // concurrent callers (in any process) never lose an update. An untracked bucket
            // has no row: nothing is updated.
            diesel::update(bucket_usage::table.find(&bucket))
                .set((
                    bucket_usage::bytes.eq(clamped_add!(bucket_usage::bytes, bytes)),
                    bucket_usage::objects.eq(clamped_add!(bucket_usage::objects, objects)),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
    }

    async fn forget_bucket_usage(&self, bucket: &str) -> Result<()> {
        if !may_be_stored(bucket) {
            return Ok(());
        }
        let bucket = bucket.to_owned();
        self.with_conn(move |conn| {
            diesel::delete(bucket_usage::table.find(&bucket)).execute(conn)?;
            Ok(())
        })
        .await
    }

    async fn owner_usage(&self, owner: &str) -> Result<(Usage, usize)> {
        if !may_be_stored(owner) {
            return Ok((Usage::default(), 0));
        }
        let owner = owner.to_owned();
        self.with_conn(move |conn| {
            // One statement, so one consistent view of the owner's buckets and their usage.
            let rows: Vec<(String, Option<i64>, Option<i64>)> = buckets::table
                .left_join(bucket_usage::table)
                .filter(buckets::owner.eq(&owner))
                .select((buckets::name, bucket_usage::bytes.nullable(), bucket_usage::objects.nullable()))
                .load(conn)?;
            let mut total = Usage::default();
            let mut untracked = 0;
            for (bucket, bytes, objects) in rows {
                match (bytes, objects) {
                    (Some(bytes), Some(objects)) => {
                        let usage = decode_usage(&bucket, bytes, objects)?;
                        total.bytes = total.bytes.saturating_add(usage.bytes);
                        total.objects = total.objects.saturating_add(usage.objects);
                    }
                    _ => untracked += 1,
                }
            }
            Ok((total, untracked))
        })
        .await
    }

    async fn append_audit(&self, events: Vec<AuditEvent>) -> Result<(), AuditNotStored> {
        if events.is_empty() {
            return Ok(());
        }
        let rows: Vec<AuditRow> = events.into_iter().map(AuditRow::encode).collect();
        let pool = self.pool.clone();
        let target = Arc::clone(&self.target);
        // Not through `with_conn`: the rows come back with the error, whatever failed.
        let done = tokio::task::spawn_blocking(move || {
            let result = pool.get().map_err(|e| target.unavailable(e)).and_then(|mut conn| {
                conn.transaction::<_, Error, _>(|conn| {
                    // On the database's own connection type: through the multi-backend one,
                    // diesel rebuilt the SQL of every row's INSERT, which cost more than the
                    // row (a fifth of a server's CPU under small GETs). SQLite: see
                    // `insert_audit_sqlite`; PostgreSQL takes multi-row INSERTs, one round
                    // trip each.
                    match &mut **conn {
                        AnyConnection::Sqlite(c) => insert_audit_sqlite(c, &rows)?,
                        AnyConnection::Postgresql(c) => {
                            for chunk in rows.chunks(AUDIT_ROWS_PER_INSERT) {
                                diesel::insert_into(audit_events::table).values(chunk).execute(c)?;
                            }
                        }
                    }
                    Ok(())
                })
            });
            (result, rows)
        })
        .await;
        match done {
            Ok((Ok(()), _)) => Ok(()),
            Ok((Err(error), rows)) => {
                Err(AuditNotStored { error, events: rows.into_iter().map(AuditRow::decode).collect() })
            }
            // The task panicked, its rows with it.
            Err(e) => Err(AuditNotStored { error: join_error(e), events: Vec::new() }),
        }
    }

    async fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>> {
        if filter.principal.as_deref().is_some_and(|p| !may_be_stored(p))
            || filter.bucket.as_deref().is_some_and(|b| !may_be_stored(b))
        {
            return Ok(Vec::new());
        }
        let f = filter.clone();
        self.with_conn(move |conn| {
            let mut q = audit_events::table
                .order((audit_events::at.desc(), audit_events::id.desc()))
                .select(AuditRow::as_select())
                .into_boxed();
            if let Some(p) = f.principal {
                q = q.filter(audit_events::principal.eq(p));
            }
            if let Some(b) = f.bucket {
                q = q.filter(audit_events::bucket.eq(b));
            }
            if let Some(a) = f.allowed {
                q = q.filter(audit_events::allowed.eq(a));
            }
            if let Some(t) = f.since {
                q = q.filter(audit_events::at.ge(t));
            }
            if let Some(t) = f.until {
                q = q.filter(audit_events::at.lt(t));
            }
            let limit = i64::try_from(f.limit.max(1)).unwrap_or(i64::MAX);
            Ok(q.limit(limit).load(conn)?.into_iter().map(AuditRow::decode).collect())
        })
        .await
    }

    async fn purge_audit(&self, before: i64) -> Result<u64> {
        self.with_conn(move |conn| {
            let n = diesel::delete(audit_events::table.filter(audit_events::at.lt(before))).execute(conn)?;
            Ok(n as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognised() {
        assert!(matches!(Target::parse("postgres://u@h/db"), Ok(Target::Postgres { .. })));
        assert!(matches!(Target::parse("postgresql://u@h/db"), Ok(Target::Postgres { .. })));
        assert!(matches!(Target::parse("sqlite::memory:"), Ok(Target::SqliteMemory)));
        match Target::parse("sqlite:///var/lib/coffer/meta.db") {
            Ok(Target::SqliteFile { path }) => assert_eq!(path, "/var/lib/coffer/meta.db"),
            _ => panic!("absolute sqlite path"),
        }
        match Target::parse("sqlite://data/meta.db") {
            Ok(Target::SqliteFile { path }) => assert_eq!(path, "data/meta.db"),
            _ => panic!("relative sqlite path"),
        }
        for bad in ["mysql://h/db", "sqlite://", "sqlite:meta.db", "meta.db", ""] {
            assert!(matches!(Target::parse(bad), Err(Error::UnsupportedUrl(_))), "{bad:?}");
        }
    }

    /// The audit writer's INSERTs are prepared once per SQLite connection and then found in
    /// diesel's statement cache: preparing them per row cost a tenth of a server's CPU. Whole
    /// chunks go in one multi-row INSERT, the rest row by row, all in their order.
    #[test]
    fn sqlite_audit_rows_reuse_two_prepared_statements() {
        use diesel::connection::{Instrumentation, InstrumentationEvent};
        use std::sync::Mutex;
        let mut c = SqliteConnection::establish(":memory:").unwrap();
        run_migrations(&mut c, SQLITE_MIGRATIONS).unwrap();
        let events: Arc<Mutex<(usize, usize)>> = Arc::default();
        let seen = events.clone();
        let probe = move |e: InstrumentationEvent<'_>| {
            let mut n = seen.lock().unwrap();
            match e {
                InstrumentationEvent::CacheQuery { .. } => n.0 += 1,
                InstrumentationEvent::StartQuery { .. } => n.1 += 1,
                _ => {}
            }
        };
        c.set_instrumentation(Box::new(probe) as Box<dyn Instrumentation>);
        let event = |i: i64| AuditEvent {
            at: i,
            principal: "alice".into(),
            access_key_id: "AK".into(),
            action: "get-object".into(),
            bucket: "b".into(),
            key: format!("k{i}"),
            allowed: i % 3 != 0,
            rule: "owner".into(),
            request_id: format!("R{i}"),
            source: "127.0.0.1:1".into(),
        };
        // Batches of 4 (rows only), 37 (a chunk and 5 rows) and 64 (two chunks, no rest).
        let mut at = 0;
        for size in [4, 37, 64] {
            let rows: Vec<AuditRow> = (at..at + size).map(|i| AuditRow::encode(event(i))).collect();
            at += size;
            c.transaction(|c| insert_audit_sqlite(c, &rows)).unwrap();
        }
        let (cached, started) = *events.lock().unwrap();
        // 4 + (1 + 5) + 2 statements, and 3 BEGINs and COMMITs.
        // 4 + (1 + 5) + 2 INSERTs, and a BEGIN and a COMMIT per batch.
        assert_eq!(started, 12 + 6, "one statement per chunk and per remaining row");
        assert_eq!(cached, 2, "the chunk's INSERT and the row's are each prepared once");
        let stored: Vec<AuditRow> =
            audit_events::table.order(audit_events::id).select(AuditRow::as_select()).load(&mut c).unwrap();
        assert_eq!(stored.len(), 105);
        for (n, row) in stored.into_iter().enumerate() {
            assert_eq!(row.decode(), event(n as i64), "row {n}: every column, in order");
        }
    }

    #[test]
    fn postgres_urls_get_a_connect_timeout_once() {
        let Ok(Target::Postgres { url, .. }) = Target::parse("postgres://u@h/db") else { panic!() };
        assert_eq!(url, "postgres://u@h/db?connect_timeout=2");
        let Ok(Target::Postgres { url, .. }) = Target::parse("postgres://u@h/db?sslmode=require") else { panic!() };
        assert_eq!(url, "postgres://u@h/db?sslmode=require&connect_timeout=2");
        let Ok(Target::Postgres { url, .. }) = Target::parse("postgres://u@h/db?connect_timeout=9") else { panic!() };
        assert_eq!(url, "postgres://u@h/db?connect_timeout=9");
    }

    #[test]
    fn passwords_are_redacted() {
        let (shown, secrets) = redact_pg_url("postgres://coffer:s3cr/et@db.example:5432/meta?sslmode=require");
        assert_eq!(shown, "postgres://coffer:***@db.example:5432/meta?sslmode=require");
        assert_eq!(secrets, ["s3cr/et"]);
        let (shown, secrets) = redact_pg_url("postgres://db.example/meta?user=coffer&password=hunter2");
        assert_eq!(shown, "postgres://db.example/meta?user=coffer&password=***");
        assert_eq!(secrets, ["hunter2"]);
        let (shown, secrets) = redact_pg_url("postgres://coffer@db.example/meta");
        assert_eq!(shown, "postgres://coffer@db.example/meta");
        assert!(secrets.is_empty());

        let target = Target::parse("postgres://coffer:hunter2@h/db").unwrap();
        let msg = target.unavailable("server said hunter2 is wrong").to_string();
        assert!(!msg.contains("hunter2"), "{msg}");
    }
}
