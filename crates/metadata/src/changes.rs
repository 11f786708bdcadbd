//! Change notifications: a [`ChangeStream`] of the revisions committed mutations move the
//! counter to, as they commit, from any process.
//!
//! On PostgreSQL every mutation's transaction ends with `NOTIFY coffer_changes, '<revision>'`
//! ([`CHANNEL`]), which the server delivers at commit — a listener never hears of a change
//! before it is visible — and in commit order, which the revision bump (a row lock held to
//! the commit) makes revision order. SQLite has no notifications; its callers poll
//! [`MetadataStore::revision`](crate::MetadataStore::revision).
//!
//! Diesel's `PgConnection` has no asynchronous notification API, so [`spawn_pg_listener`]
//! gives one connection of its own (outside the pool) to a dedicated thread. The thread
//! reads what has arrived every [`NOTIFY_POLL`] — `PQconsumeInput` and `PQnotifies`: a
//! non-blocking read of the socket, no round-trip — and re-issues the `LISTEN` every
//! [`KEEPALIVE`] to notice a dead connection. When the connection fails it reports
//! [`ChangeEvent::Lost`], reconnects with a backoff (up to [`MAX_BACKOFF`]) and reports
//! [`ChangeEvent::Reconnected`]: changes committed in between were not reported, so the
//! consumer must assume anything changed. The thread ends soon after the stream is dropped
//! or [closed](ChangeStream::close).

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::prelude::*;
use tokio::sync::mpsc;

use crate::{Error, Result};

/// The PostgreSQL notification channel; the payload is the new revision, in decimal.
pub const CHANNEL: &str = "coffer_changes";
/// How often the listening thread reads the notifications that have arrived.
pub const NOTIFY_POLL: Duration = Duration::from_millis(10);
/// How often the listening thread checks its connection with a round-trip.
pub const KEEPALIVE: Duration = Duration::from_secs(10);
/// The first wait before reconnecting; doubled after each failure up to [`MAX_BACKOFF`].
pub const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between two attempts to reconnect.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Events waiting for the consumer before the listener waits for it.
const CAPACITY: usize = 1024;

/// What a [`ChangeStream`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeEvent {
    /// A mutation committed and moved the revision to this value. Values arrive in
    /// increasing order while the stream is connected.
    Changed(i64),
    /// The listening connection failed: changes may go unreported until [`Reconnected`](Self::Reconnected).
    Lost,
    /// Listening again after [`Lost`](Self::Lost). Changes committed in between were not
    /// reported: assume anything changed.
    Reconnected,
}

/// The changes committed to a store, as they commit; from
/// [`MetadataStore::subscribe_changes`](crate::MetadataStore::subscribe_changes). Ends (`None`)
/// only if its producer stops for good.
#[derive(Debug)]
pub struct ChangeStream {
    rx: mpsc::Receiver<ChangeEvent>,
    thread: Option<JoinHandle<()>>,
}

impl ChangeStream {
    /// A stream fed through the returned sender, for other implementations of the store and
    /// for tests.
    pub fn channel(capacity: usize) -> (mpsc::Sender<ChangeEvent>, ChangeStream) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (tx, ChangeStream { rx, thread: None })
    }

    /// The next event; `None` once the producer has stopped.
    pub async fn next(&mut self) -> Option<ChangeEvent> {
        self.rx.recv().await
    }

    /// Stop listening and wait (off the runtime's threads) until the listening connection
    /// is closed. Dropping the stream stops it too, without waiting.
    pub async fn close(mut self) {
        self.rx.close();
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

/// Follow `first` (a connection that has run `LISTEN`) on a thread of its own; `connect`
/// opens a replacement (and runs `LISTEN` on it) after a failure. Errors are logged as
/// `connect` words them (it must not reveal a password).
pub(crate) fn spawn_pg_listener<F>(first: PgConnection, connect: F) -> Result<ChangeStream>
where
    F: Fn() -> Result<PgConnection> + Send + 'static,
{
    let (tx, mut stream) = ChangeStream::channel(CAPACITY);
    let thread = std::thread::Builder::new()
        .name("coffer-listen".to_owned())
        .spawn(move || run(first, connect, tx))
        .map_err(|e| Error::Unavailable(format!("cannot start the thread listening for changes: {e}").into()))?;
    stream.thread = Some(thread);
    Ok(stream)
}

/// `LISTEN` on [`CHANNEL`]; a no-op round-trip on a connection already listening.
pub(crate) fn listen(conn: &mut PgConnection) -> QueryResult<()> {
    diesel::sql_query(format!("LISTEN {CHANNEL}")).execute(conn).map(drop)
}

/// The SQL a mutation's transaction runs after bumping the revision, on PostgreSQL.
pub(crate) fn notify_sql() -> String {
    format!("SELECT pg_notify('{CHANNEL}', value::text) FROM revision WHERE id = 1")
}

fn run<F>(mut conn: PgConnection, connect: F, tx: mpsc::Sender<ChangeEvent>)
where
    F: Fn() -> Result<PgConnection>,
{
    loop {
        let Some(failure) = follow(&mut conn, &tx) else { return };
        drop(conn);
        tracing::warn!(error = %failure, "lost the connection listening for metadata changes; reconnecting");
        if tx.blocking_send(ChangeEvent::Lost).is_err() {
            return;
        }
        let Some(fresh) = reconnect(&connect, &tx) else { return };
        conn = fresh;
        tracing::info!("listening for metadata changes again");
        if tx.blocking_send(ChangeEvent::Reconnected).is_err() {
            return;
        }
    }
}

/// Forward notifications until the connection fails (the failure) or the consumer is gone
/// (`None`).
fn follow(conn: &mut PgConnection, tx: &mpsc::Sender<ChangeEvent>) -> Option<String> {
    let mut checked = Instant::now();
    loop {
        if tx.is_closed() {
            return None;
        }
        // `notifications_iter` yields what has arrived, then `None`; an error repeats forever,
        // so stop at the first.
        for n in conn.notifications_iter() {
            let n = match n {
                Ok(n) => n,
                Err(e) => return Some(e.to_string()),
            };
            if n.channel != CHANNEL {
                continue;
            }
            match n.payload.parse::<i64>() {
                Ok(revision) => {
                    if tx.blocking_send(ChangeEvent::Changed(revision)).is_err() {
                        return None;
                    }
                }
                // Not sent by a coffer mutation (those always carry the revision).
                Err(_) => tracing::debug!(payload = %n.payload, "ignoring a foreign notification on {CHANNEL}"),
            }
        }
        if checked.elapsed() >= KEEPALIVE {
            if let Err(e) = listen(conn) {
                return Some(e.to_string());
            }
            checked = Instant::now();
        }
        std::thread::sleep(NOTIFY_POLL);
    }
}

/// A new listening connection, retrying with a backoff; `None` if the consumer went away.
fn reconnect<F>(connect: &F, tx: &mpsc::Sender<ChangeEvent>) -> Option<PgConnection>
where
    F: Fn() -> Result<PgConnection>,
{
    let mut backoff = MIN_BACKOFF;
    loop {
        if !pause(backoff, tx) {
            return None;
        }
        match connect() {
            Ok(conn) => return Some(conn),
            Err(e) => {
                tracing::warn!(error = %e, retry_in = ?backoff.saturating_mul(2).min(MAX_BACKOFF), "cannot listen for metadata changes");
                backoff = backoff.saturating_mul(2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Sleep `d`, waking up to notice a consumer gone (then `false`).
fn pause(d: Duration, tx: &mpsc::Sender<ChangeEvent>) -> bool {
    let until = Instant::now() + d;
    loop {
        if tx.is_closed() {
            return false;
        }
        let now = Instant::now();
        if now >= until {
            return true;
        }
        std::thread::sleep((until - now).min(NOTIFY_POLL * 5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_channel_stream_delivers_in_order_and_ends_with_its_sender() {
        let (tx, mut stream) = ChangeStream::channel(4);
        tx.send(ChangeEvent::Changed(1)).await.unwrap();
        tx.send(ChangeEvent::Lost).await.unwrap();
        tx.send(ChangeEvent::Reconnected).await.unwrap();
        drop(tx);
        assert_eq!(stream.next().await, Some(ChangeEvent::Changed(1)));
        assert_eq!(stream.next().await, Some(ChangeEvent::Lost));
        assert_eq!(stream.next().await, Some(ChangeEvent::Reconnected));
        assert_eq!(stream.next().await, None);
    }

    #[tokio::test]
    async fn closing_a_stream_tells_its_producer() {
        let (tx, stream) = ChangeStream::channel(1);
        assert!(!tx.is_closed());
        stream.close().await;
        assert!(tx.is_closed());
        assert!(!pause(Duration::from_secs(60), &tx), "a pause ends at once without a consumer");
    }
}
