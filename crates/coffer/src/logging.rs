//! Structured logs. Every line written while a request is served carries its `request_id`
//! (the span's field); `RUST_LOG` filters (default `info`).
//!
//! Lines go to stderr through [`Batched`]: each line is appended to a buffer in memory and
//! a writer thread writes the buffer out every [`FLUSH_EVERY`] (sooner when it holds
//! [`FLUSH_AT`] bytes). A server logs two lines per request (the request and the
//! authorization decision); one `write(2)` each cost about a tenth of the CPU of a small
//! GET (docs/BENCHMARKS.md), the buffer a few dozen writes a second. A line is on stderr at
//! most [`FLUSH_EVERY`] after it was logged; [`flush`] writes what is pending (at exit, and
//! before a panic's message).

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// How long a line may wait in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(10);
/// A buffer this large is written at once by the thread that fills it.
pub const FLUSH_AT: usize = 256 * 1024;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,s3s::ops=off"));
    let writer = batched();
    // Colours only for a person at a terminal, never escape codes in a log file.
    let ansi = std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    let installed = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if installed.is_ok() {
        writer.start_flusher();
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            flush();
            default_hook(info);
        }));
    }
}

/// Write every pending line to stderr now.
pub fn flush() {
    if let Some(b) = BATCHED.get() {
        b.flush();
    }
}

static BATCHED: OnceLock<Batched<std::io::Stderr>> = OnceLock::new();

fn batched() -> &'static Batched<std::io::Stderr> {
    BATCHED.get_or_init(|| Batched::new(std::io::stderr()))
}

/// Lines buffered in memory on their way to `out`.
pub struct Batched<W> {
    pending: Mutex<Vec<u8>>,
    /// Held while a taken buffer is written, so buffers reach `out` in the order taken.
    out: Mutex<W>,
}

impl<W: Write + Send + 'static> Batched<W> {
    pub fn new(out: W) -> Self {
        Self { pending: Mutex::new(Vec::with_capacity(FLUSH_AT)), out: Mutex::new(out) }
    }

    /// Append one formatted line (or any bytes); write out the buffer if it is full.
    pub fn append(&self, bytes: &[u8]) {
        let full = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.extend_from_slice(bytes);
            pending.len() >= FLUSH_AT
        };
        if full {
            self.flush();
        }
    }

    /// Write out what is pending.
    pub fn flush(&self) {
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let taken = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if pending.is_empty() {
                return;
            }
            std::mem::replace(&mut *pending, Vec::with_capacity(FLUSH_AT))
        };
        // Nowhere to report a failed write to stderr.
        let _ = out.write_all(&taken);
        let _ = out.flush();
    }

    /// A thread that flushes every [`FLUSH_EVERY`], for the life of the process.
    fn start_flusher(&'static self) {
        let spawned = std::thread::Builder::new().name("coffer-log".into()).spawn(move || {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                self.flush();
            }
        });
        if spawned.is_err() {
            // Without the thread, nothing would write small buffers: write every line.
            self.flush();
        }
    }
}

/// One event's writer: tracing-subscriber formats a line and writes it with one
/// `write_all`.
pub struct LineWriter<'a, W> {
    to: &'a Batched<W>,
}

impl<W: Write + Send + 'static> Write for LineWriter<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.to.append(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a, W: Write + Send + 'static> MakeWriter<'a> for &'static Batched<W> {
    type Writer = LineWriter<'a, W>;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter { to: self }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A `Write` that records what reached it and in how many writes.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut s = self.0.lock().unwrap();
            s.0.extend_from_slice(buf);
            s.1 += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_wait_for_a_flush_and_keep_their_order() {
        let sink = Sink::default();
        let b = Batched::new(sink.clone());
        b.append(b"one\n");
        b.append(b"two\n");
        assert!(sink.0.lock().unwrap().0.is_empty(), "nothing is written before a flush");
        b.flush();
        assert_eq!(*sink.0.lock().unwrap(), (b"one\ntwo\n".to_vec(), 1), "two lines, one write");
        b.flush();
        assert_eq!(sink.0.lock().unwrap().1, 1, "an empty buffer is not written");
    }

    #[test]
    fn a_full_buffer_is_written_by_the_thread_that_filled_it() {
        let sink = Sink::default();
        let b = Batched::new(sink.clone());
        let line = vec![b'x'; 1000];
        for _ in 0..FLUSH_AT / 1000 {
            b.append(&line);
        }
        assert!(sink.0.lock().unwrap().0.is_empty());
        b.append(&line);
        assert_eq!(sink.0.lock().unwrap().0.len(), (FLUSH_AT / 1000 + 1) * 1000);
    }

    #[test]
    fn concurrent_lines_arrive_whole() {
        let sink = Sink::default();
        let b: &'static Batched<Sink> = Box::leak(Box::new(Batched::new(sink.clone())));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                std::thread::spawn(move || {
                    for i in 0..5000 {
                        let mut w = b.make_writer();
                        w.write_all(format!("thread {t} line {i}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        b.flush();
        let text = String::from_utf8(sink.0.lock().unwrap().0.clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 20_000);
        for t in 0..4 {
            let mine: Vec<usize> = lines
                .iter()
                .filter_map(|l| l.strip_prefix(&format!("thread {t} line ")))
                .map(|n| n.parse().unwrap())
                .collect();
            assert_eq!(mine, (0..5000).collect::<Vec<_>>(), "each thread's lines whole and in order");
        }
    }
}
