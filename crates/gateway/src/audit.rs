//! The audit trail: every authorization decision goes to the metadata store (in batches, by
//! a background writer, so a request never waits for it) and to the log stream (target
//! `coffer::audit`): a denial at once at `info`, an allowed decision at `debug` — and at
//! `warn` if the store could not take it, so no decision is lost from both. Access keys
//! created and revoked — by their users, by the operator's command line or by the Kubernetes
//! controller — are stored at once (see [`KeyChange`]). Old events are purged after the
//! retention period.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use coffer_core::{AuditEvent, AuditFilter, Decision};
use tokio::sync::mpsc;

use crate::{Caller, Gateway, Result};

/// Events waiting for the writer; beyond this they are only in the log (and counted).
const QUEUE: usize = 10_000;
/// The most events written in one transaction.
const BATCH: usize = 500;
/// How long the writer lingers after the first event of a batch, gathering more: under load
/// it then wakes and commits a few dozen times a second, not once per request.
const LINGER: Duration = Duration::from_millis(50);
/// How often old events are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);
/// The most events of one millisecond that a page is completed with (see
/// [`Gateway::audit_events_for`]); far more than one server records in a millisecond.
const SAME_MILLISECOND: usize = 10_000;

/// The queue between requests and the writer.
pub struct AuditSink {
    tx: mpsc::Sender<AuditEvent>,
    rx: Mutex<Option<mpsc::Receiver<AuditEvent>>>,
    dropped: AtomicU64,
}

impl Default for AuditSink {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Self { tx, rx: Mutex::new(Some(rx)), dropped: AtomicU64::new(0) }
    }
}

/// An access key created or revoked: the audit trail's `create-access-key` and
/// `revoke-access-key` events, with the new or revoked key's id as the event's `key`.
pub(crate) enum KeyChange {
    Created,
    Revoked,
}

impl KeyChange {
    fn action(&self) -> &'static str {
        match self {
            KeyChange::Created => "create-access-key",
            KeyChange::Revoked => "revoke-access-key",
        }
    }
}

/// Who changed a key: a caller of the API (a user, for their own keys), or the operator's
/// side — `coffer admin` on the command line, or the Kubernetes controller — named so.
pub(crate) enum ChangedBy<'a> {
    Caller(&'a Caller),
    Operator(&'a str),
}

impl AuditSink {
    /// Events that could not be queued for the store (they are in the log stream).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// When a decision reaches the log stream.
#[derive(Clone, Copy)]
enum Logged {
    /// As it is made: a denial at `info`, an allowed decision at `debug`.
    AtOnce,
    /// When the store could not take it (its queue full, or its write failed): at `warn`.
    NotStored,
}

/// Was this decision logged as it was made? Denials always are; allowed decisions when the
/// log takes `coffer::audit` at `debug`.
fn logged_at_once(e: &AuditEvent) -> bool {
    !e.allowed || tracing::enabled!(target: "coffer::audit", tracing::Level::DEBUG)
}

/// Log one decision (`when` says at which level); returns whether a line was written.
fn log_decision(e: &AuditEvent, when: Logged) -> bool {
    macro_rules! line {
        ($level:ident, $message:literal $(, $field:ident = $value:expr)*) => {
            tracing::$level!(
                target: "coffer::audit",
                $($field = $value,)*
                principal = %e.principal,
                access_key_id = %e.access_key_id,
                action = %e.action,
                bucket = %e.bucket,
                key = %e.key,
                allowed = e.allowed,
                rule = %e.rule,
                source = %e.source,
                $message
            )
        };
    }
    match when {
        // Logged by the writer, outside the request's span: with the request's id.
        Logged::NotStored => line!(warn, "authorization decision not stored", request_id = e.request_id.as_str()),
        Logged::AtOnce if !e.allowed => line!(info, "authorization decision"),
        Logged::AtOnce if tracing::enabled!(target: "coffer::audit", tracing::Level::DEBUG) => {
            line!(debug, "authorization decision")
        }
        Logged::AtOnce => return false,
    }
    true
}

fn now_millis() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

impl Gateway {
    /// Record one decision: to the store soon; to the log now if it is a denial (or the
    /// log asks for allowed decisions too), and later if the store cannot take it.
    pub(crate) fn audit(&self, caller: &Caller, action: &str, bucket: &str, key: Option<&str>, d: &Decision) {
        let event = AuditEvent {
            at: now_millis(),
            principal: caller.principal.name.clone(),
            access_key_id: caller.access_key_id.clone(),
            action: action.to_owned(),
            bucket: bucket.to_owned(),
            key: key.unwrap_or("").to_owned(),
            allowed: d.allowed,
            rule: d.rule.to_string(),
            request_id: caller.request_id.clone(),
            source: caller.source.clone(),
        };
        let logged = log_decision(&event, Logged::AtOnce);
        if let Err(e) = self.audit.tx.try_send(event) {
            self.audit.dropped.fetch_add(1, Ordering::Relaxed);
            if !logged {
                log_decision(&e.into_inner(), Logged::NotStored);
            }
        }
    }

    /// Record an access key created or revoked (or a refused attempt to revoke one): to the
    /// log, and to the store at once — these are rare, and the command line that makes some
    /// of them runs no audit writer. A store that cannot take it leaves the log line.
    pub(crate) async fn audit_key_change(
        &self,
        by: &ChangedBy<'_>,
        change: KeyChange,
        access_key_id: &str,
        allowed: bool,
        rule: String,
    ) {
        let (principal, via, request_id, source) = match by {
            ChangedBy::Caller(c) => {
                (c.principal.name.as_str(), c.access_key_id.as_str(), c.request_id.as_str(), c.source.as_str())
            }
            ChangedBy::Operator(who) => (*who, "", "", ""),
        };
        let action = change.action();
        tracing::info!(
            target: "coffer::audit",
            principal,
            access_key_id = via,
            action,
            key = access_key_id,
            allowed,
            rule = %rule,
            source,
            "access key change"
        );
        let event = AuditEvent {
            at: now_millis(),
            principal: principal.to_owned(),
            access_key_id: via.to_owned(),
            action: action.to_owned(),
            bucket: String::new(),
            key: access_key_id.to_owned(),
            allowed,
            rule,
            request_id: request_id.to_owned(),
            source: source.to_owned(),
        };
        if let Err(e) = self.store.append_audit(vec![event]).await {
            tracing::warn!(error = %e.error, action, access_key_id, "cannot store the audit event");
        }
    }

    /// Write queued events to the store and purge those older than `retention`, until
    /// `shutdown` resolves (then what is queued is written). Run one per server process.
    pub async fn run_audit_writer(&self, retention: Duration, shutdown: impl std::future::Future<Output = ()>) {
        let Some(mut rx) = self.audit.rx.lock().unwrap().take() else {
            tracing::warn!("the audit writer is already running");
            return;
        };
        tokio::pin!(shutdown);
        let mut purge = tokio::time::interval(PURGE_EVERY);
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                n = rx.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        return;
                    }
                    if batch.len() < BATCH {
                        tokio::time::sleep(LINGER).await;
                        while batch.len() < BATCH && let Ok(e) = rx.try_recv() {
                            batch.push(e);
                        }
                    }
                    self.write_audit(&mut batch).await;
                }
                _ = purge.tick() => {
                    let before = now_millis() - retention.as_millis() as i64;
                    match self.store.purge_audit(before).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(events = n, "purged audit events past retention"),
                        Err(e) => tracing::warn!(error = %e, "cannot purge audit events"),
                    }
                }
                _ = &mut shutdown => {
                    while let Ok(e) = rx.try_recv() {
                        batch.push(e);
                    }
                    self.write_audit(&mut batch).await;
                    return;
                }
            }
        }
    }

    async fn write_audit(&self, batch: &mut Vec<AuditEvent>) {
        if batch.is_empty() {
            return;
        }
        let events = batch.len();
        if let Err(e) = self.store.append_audit(std::mem::replace(batch, Vec::with_capacity(BATCH))).await {
            tracing::warn!(error = %e.error, events, "cannot store audit events");
            for event in e.events.iter().filter(|event| !logged_at_once(event)) {
                log_decision(event, Logged::NotStored);
            }
        }
    }

    /// Audit events for the operator, newest first.
    pub async fn audit_events(&self, filter: &AuditFilter) -> Result<Vec<AuditEvent>> {
        Ok(self.store.list_audit(filter).await?)
    }

    /// Audit events for a caller of the REST API, newest first: the platform admin (with a
    /// credential not limited to some buckets) sees every event; a bucket's admins see that
    /// bucket's events, and the filter must name it.
    ///
    /// A page is continued by asking for the events before its oldest one's millisecond
    /// (`until`, exclusive), so a full page also holds every other event of that millisecond:
    /// it may hold a few more than `filter.limit`, and the next page misses none.
    pub async fn audit_events_for(&self, caller: &Caller, filter: &AuditFilter) -> Result<Vec<AuditEvent>> {
        let everything = caller.principal.is_admin && caller.narrowing.buckets.is_none();
        if !everything {
            let Some(bucket) = filter.bucket.as_deref() else {
                return Err(crate::Error::Forbidden(
                    "only the platform admin may list every audit event; name a bucket you administer".into(),
                ));
            };
            self.authorize(caller, bucket, None, coffer_core::Action::Admin).await?;
        }
        let mut events = self.store.list_audit(filter).await?;
        if filter.limit > 0
            && events.len() == filter.limit
            && let Some(oldest) = events.last().map(|e| e.at)
        {
            // The same order (time, then storage order, newest first) within the
            // millisecond: the page already holds its first `have`.
            let have = events.iter().rev().take_while(|e| e.at == oldest).count();
            let same = AuditFilter {
                since: Some(oldest),
                until: Some(oldest.saturating_add(1)),
                limit: SAME_MILLISECOND,
                ..filter.clone()
            };
            events.extend(self.store.list_audit(&same).await?.into_iter().skip(have));
        }
        Ok(events)
    }
}
