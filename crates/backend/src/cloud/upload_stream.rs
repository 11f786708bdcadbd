//! Receiving a request body for a cloud store: the [`PutChecks`] enforced as bytes arrive,
//! the MD5 computed on the way, and the two ways a PUT reaches the store.
//!
//! - A body of at most [`PART_SIZE`] (5 MiB) is buffered and stored with one PUT carrying
//!   its MD5 as coffer's ETag (`coffer-etag`): nothing is visible until that PUT completes.
//! - A larger body streams through the store's own multipart upload in `PART_SIZE` parts,
//!   at most [`PARTS_IN_FLIGHT`] uploading at a time, so memory stays bounded (about
//!   `PART_SIZE × (PARTS_IN_FLIGHT + 2)`) whatever the size. The object appears when the
//!   upload completes; its ETag is then the store's own. A failed check, a body error or a
//!   dropped future aborts the store's upload ([`AbortOnDrop`], and [`undo_if_dropped`]
//!   while the upload is being started), so nothing is left visible and no parts linger.
//!   Once the body has fully arrived and passed the checks, completion runs to its end in a
//!   task of its own.

use std::future::Future;

use bytes::Bytes;
use futures::StreamExt;
use md5::{Digest, Md5};
use object_store::WriteMultipart;

use crate::{ByteStream, Error, MAX_PUT_SIZE, PutChecks, Result};

/// The size of the parts of a streamed PUT, and the largest body stored with one PUT.
pub(crate) const PART_SIZE: usize = 5 * 1024 * 1024;
/// How many parts of one streamed PUT upload at the same time.
pub(crate) const PARTS_IN_FLIGHT: usize = 2;

/// A request body being read under [`PutChecks`].
pub(crate) struct CheckedBody {
    body: ByteStream,
    checks: PutChecks,
    max: u64,
    md5: Md5,
    size: u64,
}

impl CheckedBody {
    pub(crate) fn new(body: ByteStream, checks: PutChecks) -> Self {
        let max = if checks.max_size == 0 { MAX_PUT_SIZE } else { checks.max_size };
        CheckedBody { body, checks, max, md5: Md5::new(), size: 0 }
    }

    /// The next chunk, or `None` at the end. Fails as soon as the body is too large or
    /// longer than announced, and with [`Error::Body`] when the stream fails.
    pub(crate) async fn next(&mut self) -> Result<Option<Bytes>> {
        loop {
            let Some(chunk) = self.body.next().await else { return Ok(None) };
            let chunk = chunk.map_err(Error::Body)?;
            if chunk.is_empty() {
                continue;
            }
            let size = self.size + chunk.len() as u64;
            if size > self.max {
                return Err(Error::EntityTooLarge);
            }
            if self.checks.expected_size.is_some_and(|expected| size > expected) {
                return Err(Error::IncompleteBody);
            }
            self.size = size;
            self.md5.update(&chunk);
            return Ok(Some(chunk));
        }
    }

    /// After the end: the announced length and the Content-MD5 must match. The MD5.
    pub(crate) fn finish(&self) -> Result<[u8; 16]> {
        if self.checks.expected_size.is_some_and(|expected| self.size != expected) {
            return Err(Error::IncompleteBody);
        }
        let md5: [u8; 16] = self.md5.clone().finalize().into();
        if self.checks.content_md5.is_some_and(|expected| expected != md5) {
            return Err(Error::BadDigest);
        }
        Ok(md5)
    }

    pub(crate) fn size(&self) -> u64 {
        self.size
    }
}

/// The start of a body: all of it, or the first part and the rest still to read.
pub(crate) enum Head {
    /// The body ended within `limit` bytes.
    Whole(Vec<Bytes>),
    /// More than `limit` bytes: what was read so far (a little over `limit`).
    Partial(Vec<Bytes>),
}

/// Read until the body ends or more than `limit` bytes have arrived.
pub(crate) async fn read_head(body: &mut CheckedBody, limit: usize) -> Result<Head> {
    let mut chunks = Vec::new();
    while body.size() <= limit as u64 {
        match body.next().await? {
            Some(chunk) => chunks.push(chunk),
            None => return Ok(Head::Whole(chunks)),
        }
    }
    Ok(Head::Partial(chunks))
}

/// Read a whole body into memory (a multipart part: the store's API takes a part whole).
pub(crate) async fn read_all(body: &mut CheckedBody) -> Result<Vec<Bytes>> {
    let mut chunks = Vec::new();
    while let Some(chunk) = body.next().await? {
        chunks.push(chunk);
    }
    Ok(chunks)
}

/// Run `start` to completion even if the caller goes away (a request dropped mid-way);
/// when it did go away, `undo` what `start` made. For starting a store multipart upload,
/// which must be aborted if nobody will ever complete it.
pub(crate) async fn undo_if_dropped<T, F, U, UF>(start: F, undo: U) -> object_store::Result<T>
where
    T: Send + 'static,
    F: Future<Output = object_store::Result<T>> + Send + 'static,
    U: FnOnce(T) -> UF + Send + 'static,
    UF: Future<Output = ()> + Send + 'static,
{
    struct Guard<T: Send + 'static, U: FnOnce(T) -> UF + Send + 'static, UF: Future<Output = ()> + Send + 'static> {
        pending: Option<(tokio::task::JoinHandle<object_store::Result<T>>, U)>,
    }
    impl<T: Send + 'static, U: FnOnce(T) -> UF + Send + 'static, UF: Future<Output = ()> + Send + 'static> Drop
        for Guard<T, U, UF>
    {
        fn drop(&mut self) {
            if let Some((handle, undo)) = self.pending.take() {
                // The task keeps running when its handle is dropped: wait for it elsewhere.
                tokio::spawn(async move {
                    if let Ok(Ok(made)) = handle.await {
                        undo(made).await;
                    }
                });
            }
        }
    }
    let mut guard = Guard { pending: Some((tokio::spawn(start), undo)) };
    let handle = &mut guard.pending.as_mut().expect("just set").0;
    let outcome = handle.await;
    guard.pending = None;
    match outcome {
        Ok(r) => r,
        Err(e) => Err(object_store::Error::JoinError { source: e }),
    }
}

/// A store multipart upload that is aborted unless completed: when dropped (an error, a
/// cancelled request) the abort runs in the background.
pub(crate) struct AbortOnDrop {
    writer: Option<WriteMultipart>,
    tier: String,
}

impl AbortOnDrop {
    pub(crate) fn new(writer: WriteMultipart, tier: &str) -> Self {
        AbortOnDrop { writer: Some(writer), tier: tier.to_owned() }
    }

    pub(crate) fn writer(&mut self) -> &mut WriteMultipart {
        self.writer.as_mut().expect("the upload is still open")
    }

    /// Hand the upload over to be completed (or aborted by the caller).
    pub(crate) fn take(mut self) -> WriteMultipart {
        self.writer.take().expect("the upload is still open")
    }

    /// Abort now, waiting for it.
    pub(crate) async fn abort(mut self) {
        if let Some(writer) = self.writer.take()
            && let Err(e) = writer.abort().await
        {
            tracing::warn!(tier = %self.tier, error = %e, "could not abort a multipart upload in the store");
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let Some(writer) = self.writer.take() else { return };
        let tier = std::mem::take(&mut self.tier);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move {
                    if let Err(e) = writer.abort().await {
                        tracing::warn!(tier = %tier, error = %e, "could not abort a dropped multipart upload in the store");
                    }
                });
            }
            Err(_) => tracing::warn!(tier = %tier, "a dropped multipart upload could not be aborted: no runtime"),
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::stream;

    use super::*;

    fn body(chunks: &[&'static [u8]]) -> ByteStream {
        Box::pin(stream::iter(chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect::<Vec<_>>()))
    }

    #[tokio::test]
    async fn checks_are_enforced_while_reading() {
        let mut b = CheckedBody::new(body(&[b"0123", b"4567"]), PutChecks { max_size: 6, ..Default::default() });
        assert!(b.next().await.unwrap().is_some());
        assert!(matches!(b.next().await, Err(Error::EntityTooLarge)));
        let mut b =
            CheckedBody::new(body(&[b"0123", b"4567"]), PutChecks { expected_size: Some(5), ..Default::default() });
        b.next().await.unwrap();
        assert!(matches!(b.next().await, Err(Error::IncompleteBody)));
        let mut b = CheckedBody::new(body(&[b"0123"]), PutChecks { expected_size: Some(5), ..Default::default() });
        read_all(&mut b).await.unwrap();
        assert!(matches!(b.finish(), Err(Error::IncompleteBody)));
        let mut b = CheckedBody::new(body(&[b"0123"]), PutChecks { content_md5: Some([0; 16]), ..Default::default() });
        read_all(&mut b).await.unwrap();
        assert!(matches!(b.finish(), Err(Error::BadDigest)));
        let mut b = CheckedBody::new(body(&[b"0123", b"", b"4"]), PutChecks::default());
        assert_eq!(read_all(&mut b).await.unwrap().len(), 2);
        assert_eq!(hex::encode(b.finish().unwrap()), hex::encode(Md5::digest(b"01234")));
    }

    #[tokio::test]
    async fn what_a_dropped_caller_started_is_undone() {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let caller = tokio::spawn(undo_if_dropped(
            async {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                Ok(42)
            },
            move |made: i32| async move {
                let _ = tx.send(made);
            },
        ));
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        caller.abort();
        let undone = tokio::time::timeout(std::time::Duration::from_secs(5), rx).await.unwrap().unwrap();
        assert_eq!(undone, 42);
        // A caller that waits gets the result, and nothing is undone.
        let made = undo_if_dropped(async { Ok(7) }, |_: i32| async { panic!("not undone") }).await.unwrap();
        assert_eq!(made, 7);
    }

    #[tokio::test]
    async fn heads_stop_after_the_limit() {
        let mut b = CheckedBody::new(body(&[b"01", b"23", b"45", b"67"]), PutChecks::default());
        let Head::Partial(chunks) = read_head(&mut b, 3).await.unwrap() else { panic!() };
        assert_eq!(chunks.len(), 2);
        let mut b = CheckedBody::new(body(&[b"01", b"2"]), PutChecks::default());
        let Head::Whole(chunks) = read_head(&mut b, 3).await.unwrap() else { panic!() };
        assert_eq!(chunks.len(), 2);
    }
}
