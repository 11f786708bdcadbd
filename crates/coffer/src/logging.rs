//! Structured logs. Every line written while a request is served carries its `request_id`
//! (set for the request's task by [`in_request`], and written as the field of a span named
//! `request`); `RUST_LOG` filters (default `info`). [`Lines`] formats each event as
//! one line of text or one JSON object (`--log-format`); records of the `log` crate, which
//! some dependencies use, arrive as events too.
//!
//! Lines go to stderr through [`Batched`]: each line is appended to a buffer in memory and
//! a writer thread writes the buffer out every [`FLUSH_EVERY`] (sooner when it holds
//! [`FLUSH_AT`] bytes). A server logs a line per request (and one per denial); one
//! `write(2)` each cost about a tenth of the CPU of a small GET (docs/BENCHMARKS.md), the
//! buffer a few dozen writes a second. A line is on stderr at
//! most [`FLUSH_EVERY`] after it was logged; [`flush`] writes what is pending (at exit, and
//! before a panic's message).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_log::NormalizeEvent;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;

/// How long a line may wait in the buffer.
pub const FLUSH_EVERY: Duration = Duration::from_millis(10);
/// A buffer this large is written at once by the thread that fills it.
pub const FLUSH_AT: usize = 256 * 1024;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,s3s::ops=off"));
    let out = batched();
    // Colours only for a person at a terminal, never escape codes in a log file.
    let ansi = format == LogFormat::Text && std::io::stderr().is_terminal();
    // `try_init` also routes the `log` crate's records (from dependencies) here.
    let installed = tracing_subscriber::registry().with(filter).with(Lines::new(format, ansi, out)).try_init();
    if installed.is_ok() {
        out.start_flusher();
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

/// The layer that turns events into lines, written straight into a reused buffer and
/// appended to the [`Batched`] output:
/// - [`LogFormat::Text`]: `<time> <LEVEL> <span>{<fields>}: <target>: <message> <field>=<value> …`,
///   the layout of tracing-subscriber's full format;
/// - [`LogFormat::Json`]: one object per line, `timestamp`, `level`, the event's fields
///   (`message` among them), `target`, and the current span's fields and `name` under
///   `span`, the layout of tracing-subscriber's JSON format with flattened events.
///
/// tracing-subscriber's own `fmt` layer styles every field name through a generic writer
/// and, for JSON, parses the span's fields back out of text on every event. A GET's two
/// lines cost about an eighth of its CPU through it (docs/BENCHMARKS.md).
pub struct Lines<W: 'static> {
    format: LogFormat,
    ansi: bool,
    out: &'static Batched<W>,
}

impl<W> Lines<W> {
    pub fn new(format: LogFormat, ansi: bool, out: &'static Batched<W>) -> Self {
        Self { format, ansi, out }
    }
}

tokio::task_local! {
    /// The id of the request the current task serves.
    static REQUEST_ID: String;
}

/// Run `f` as the request `id`: every line it logs carries the id, written as if it were
/// logged in a span `request` with the field `request_id`. A task-local value, where a
/// `tracing` span per request (made, entered and left at every poll, closed) cost about
/// 2.5 % of a small GET's instructions (docs/BENCHMARKS.md).
pub fn in_request<F: std::future::Future>(id: String, f: F) -> impl std::future::Future<Output = F::Output> {
    REQUEST_ID.scope(id, f)
}

/// A span's fields, written once when the span is made, in the layer's format:
/// `a=1 b="x"` (text) or `"a":1,"b":"x"` (JSON).
struct SpanFields(String);

thread_local! {
    /// Each thread's line buffer, reused from line to line.
    static LINE: RefCell<String> = RefCell::new(String::with_capacity(512));
}

impl<S, W> Layer<S> for Lines<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: Write + Send + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = String::new();
        attrs.record(&mut FieldWriter::new(self.format, &mut fields, true));
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            let first = fields.is_empty();
            values.record(&mut FieldWriter::new(self.format, fields, first));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        LINE.with(|cell| match cell.try_borrow_mut() {
            Ok(mut line) => self.write_line(event, &ctx, &mut line),
            // An event logged while a field of another was being formatted.
            Err(_) => self.write_line(event, &ctx, &mut String::new()),
        });
    }
}

impl<W: Write + Send + 'static> Lines<W> {
    fn write_line<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>, line: &mut String)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        line.clear();
        // A record of the `log` crate arrives as an event of tracing-log's; its own target
        // and level are in its fields.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        match self.format {
            LogFormat::Text => {
                push_timestamp(line, SystemTime::now());
                line.push(' ');
                self.push_level(line, meta.level());
                line.push(' ');
                let in_request = REQUEST_ID
                    .try_with(|id| {
                        line.push_str("request{request_id=");
                        line.push_str(id);
                        line.push_str("}:");
                    })
                    .is_ok();
                let scope = ctx.event_scope(event);
                let in_span = scope.is_some();
                if let Some(scope) = scope {
                    for span in scope.from_root() {
                        line.push_str(span.name());
                        let extensions = span.extensions();
                        if let Some(SpanFields(fields)) = extensions.get::<SpanFields>()
                            && !fields.is_empty()
                        {
                            line.push('{');
                            line.push_str(fields);
                            line.push('}');
                        }
                        line.push(':');
                    }
                }
                if in_request || in_span {
                    line.push(' ');
                }
                line.push_str(meta.target());
                line.push_str(": ");
                event.record(&mut FieldWriter::new(LogFormat::Text, line, true));
            }
            LogFormat::Json => {
                line.push_str("{\"timestamp\":\"");
                push_timestamp(line, SystemTime::now());
                line.push_str("\",\"level\":\"");
                line.push_str(meta.level().as_str());
                line.push('"');
                event.record(&mut FieldWriter::new(LogFormat::Json, line, false));
                line.push_str(",\"target\":");
                push_json_str(line, meta.target());
                let span = ctx.event_span(event);
                let in_request = REQUEST_ID
                    .try_with(|id| {
                        line.push_str(",\"span\":{\"request_id\":");
                        push_json_str(line, id);
                        line.push(',');
                    })
                    .is_ok();
                if let Some(span) = &span {
                    if !in_request {
                        line.push_str(",\"span\":{");
                    }
                    let extensions = span.extensions();
                    if let Some(SpanFields(fields)) = extensions.get::<SpanFields>()
                        && !fields.is_empty()
                    {
                        line.push_str(fields);
                        line.push(',');
                    }
                }
                if in_request || span.is_some() {
                    line.push_str("\"name\":");
                    push_json_str(line, span.as_ref().map_or("request", |s| s.name()));
                    line.push('}');
                }
                line.push('}');
            }
        }
        line.push('\n');
        self.out.append(line.as_bytes());
    }

    /// The level, five wide and right-aligned, coloured at a terminal.
    fn push_level(&self, line: &mut String, level: &Level) {
        let (text, colour) = match *level {
            Level::TRACE => ("TRACE", "\x1b[35m"),
            Level::DEBUG => ("DEBUG", "\x1b[34m"),
            Level::INFO => (" INFO", "\x1b[32m"),
            Level::WARN => (" WARN", "\x1b[33m"),
            Level::ERROR => ("ERROR", "\x1b[31m"),
        };
        if self.ansi {
            line.push_str(colour);
            line.push_str(text);
            line.push_str("\x1b[0m");
        } else {
            line.push_str(text);
        }
    }
}

/// Writes the fields it visits: `message` bare then `name=value`, space-separated, strings
/// quoted (text), or `"name":value` pairs with a comma before all but a first (JSON; numbers
/// and booleans as JSON literals, everything else as a string). tracing-log's `log.*`
/// fields are left out: the line shows their meaning as its target.
struct FieldWriter<'a> {
    format: LogFormat,
    out: &'a mut String,
    first: bool,
}

impl<'a> FieldWriter<'a> {
    fn new(format: LogFormat, out: &'a mut String, first: bool) -> Self {
        Self { format, out, first }
    }

    /// The separator and the name, `name=` or `"name":` (nothing for a text `message`);
    /// `false` for a field left out.
    fn start(&mut self, field: &Field) -> bool {
        let name = field.name();
        if name.starts_with("log.") {
            return false;
        }
        let name = name.strip_prefix("r#").unwrap_or(name);
        match self.format {
            LogFormat::Text => {
                if !self.first {
                    self.out.push(' ');
                }
                if name != "message" {
                    self.out.push_str(name);
                    self.out.push('=');
                }
            }
            LogFormat::Json => {
                if !self.first {
                    self.out.push(',');
                }
                push_json_str(self.out, name);
                self.out.push(':');
            }
        }
        self.first = false;
        true
    }

    /// A number or boolean: the same in both formats.
    fn literal(&mut self, field: &Field, value: impl std::fmt::Display) {
        if self.start(field) {
            let _ = write!(self.out, "{value}");
        }
    }
}

impl Visit for FieldWriter<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if !self.start(field) {
            return;
        }
        match self.format {
            LogFormat::Text if field.name() == "message" => self.out.push_str(value),
            LogFormat::Text => push_debug_str(self.out, value),
            LogFormat::Json => push_json_str(self.out, value),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if !self.start(field) {
            return;
        }
        match self.format {
            LogFormat::Text => {
                let _ = write!(self.out, "{value:?}");
            }
            LogFormat::Json => {
                self.out.push('"');
                let _ = write!(JsonEscaped(self.out), "{value:?}");
                self.out.push('"');
            }
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.literal(field, value);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.literal(field, value);
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.literal(field, value);
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() || self.format == LogFormat::Text {
            self.literal(field, value);
        } else {
            // JSON has no NaN or infinity.
            self.literal(field, "null");
        }
    }
}

/// A `fmt::Write` that escapes what it is given for the inside of a JSON string.
struct JsonEscaped<'a>(&'a mut String);

impl std::fmt::Write for JsonEscaped<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        push_json_escaped(self.0, s);
        Ok(())
    }
}

/// `s` as `{s:?}` writes it: quoted, escaped as Rust escapes a string. The strings of log
/// fields (names, keys, actions) are nearly always printable ASCII with nothing to escape,
/// which goes straight in; anything else goes through `Debug`.
fn push_debug_str(out: &mut String, s: &str) {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        let _ = write!(out, "{s:?}");
    }
}

/// `s` as a JSON string, quotes included.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    push_json_escaped(out, s);
    out.push('"');
}

/// `s` escaped for the inside of a JSON string (RFC 8259: quote, backslash, control
/// characters).
fn push_json_escaped(out: &mut String, s: &str) {
    let mut plain = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&s[plain..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        plain = i + 1;
    }
    out.push_str(&s[plain..]);
}

/// RFC 3339 in UTC with microseconds: `2026-11-27T20:35:00.123456Z`.
fn push_timestamp(out: &mut String, at: SystemTime) {
    let since = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (year, month, day) = civil_from_days(secs / 86_400);
    let of_day = secs % 86_400;
    push_digits(out, year, 4);
    out.push('-');
    push_digits(out, month, 2);
    out.push('-');
    push_digits(out, day, 2);
    out.push('T');
    push_digits(out, of_day / 3600, 2);
    out.push(':');
    push_digits(out, of_day / 60 % 60, 2);
    out.push(':');
    push_digits(out, of_day % 60, 2);
    out.push('.');
    push_digits(out, u64::from(since.subsec_micros()), 6);
    out.push('Z');
}

/// `n`'s last `width` decimal digits, zero-padded.
fn push_digits(out: &mut String, n: u64, width: u32) {
    for i in (0..width).rev() {
        out.push(char::from(b'0' + (n / 10u64.pow(i) % 10) as u8));
    }
}

/// Days since 1970-01-01 to the (year, month, day) of the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`, for days on or after the epoch).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + u64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    #[test]
    fn strings_are_quoted_as_debug_quotes_them() {
        for s in [
            "",
            "plain key/with spaces-and_dots.txt",
            "a\"b",
            "back\\slash",
            "tab\there",
            "é ключ",
            "\u{7f}",
            "nul\0",
            "'single'",
        ] {
            let mut out = String::new();
            super::push_debug_str(&mut out, s);
            assert_eq!(out, format!("{s:?}"), "for {s:?}");
        }
    }

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
                        b.append(format!("thread {t} line {i}\n").as_bytes());
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

    /// The lines `f` logs through a [`Lines`] layer of `format`, without a filter.
    fn logged(format: LogFormat, f: impl FnOnce()) -> Vec<String> {
        let sink = Sink::default();
        let out: &'static Batched<Sink> = Box::leak(Box::new(Batched::new(sink.clone())));
        let subscriber = tracing_subscriber::registry().with(Lines::new(format, false, out));
        tracing::subscriber::with_default(subscriber, f);
        out.flush();
        let text = String::from_utf8(sink.0.lock().unwrap().0.clone()).unwrap();
        assert!(text.ends_with('\n'), "every line ends: {text:?}");
        text.lines().map(str::to_owned).collect()
    }

    /// A request's summary line, in a request span, with fields of every kind.
    fn a_request_line() {
        let span = tracing::info_span!("request", request_id = %"1A2B");
        let _entered = span.enter();
        let path = "/b/k \"q\"\n\u{1}";
        tracing::info!(
            method = %"GET",
            path,
            status = 200u64,
            delta = -3i64,
            ok = true,
            duration_ms = 0.25,
            parts = ?Some(2),
            "request"
        );
    }

    #[test]
    fn text_lines_read_like_tracing_subscribers_full_format() {
        let lines = logged(LogFormat::Text, a_request_line);
        assert_eq!(lines.len(), 1);
        let (time, rest) = lines[0].split_once(' ').unwrap();
        assert_eq!(time.len(), "2026-11-27T20:35:00.123456Z".len(), "{time}");
        assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{time}");
        assert_eq!(
            rest,
            " INFO request{request_id=1A2B}: coffer::logging::tests: request method=GET \
             path=\"/b/k \\\"q\\\"\\n\\u{1}\" status=200 delta=-3 ok=true duration_ms=0.25 parts=Some(2)"
        );
    }

    #[test]
    fn json_lines_are_objects_with_the_span_under_span() {
        let lines = logged(LogFormat::Json, a_request_line);
        assert_eq!(lines.len(), 1);
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        let time = v["timestamp"].as_str().unwrap();
        assert_eq!(time.len(), 27, "{time}");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["message"], "request");
        assert_eq!(v["method"], "GET");
        assert_eq!(v["path"], "/b/k \"q\"\n\u{1}", "quotes, newline and control characters survive");
        assert_eq!(v["status"], 200);
        assert_eq!(v["delta"], -3);
        assert_eq!(v["ok"], true);
        assert_eq!(v["duration_ms"], 0.25);
        assert_eq!(v["parts"], "Some(2)");
        assert_eq!(v["target"], "coffer::logging::tests");
        assert_eq!(v["span"], serde_json::json!({"request_id": "1A2B", "name": "request"}));
        assert_eq!(v.as_object().unwrap().len(), 12, "no other key: {v}");
    }

    /// A line logged by a task run [`in_request`] reads as one logged in a `request` span
    /// with the id as its field, in both formats.
    #[test]
    fn lines_in_a_request_read_as_in_a_request_span() {
        for format in [LogFormat::Text, LogFormat::Json] {
            let in_span = logged(format, a_request_line);
            let in_task = logged(format, || {
                let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
                runtime.block_on(in_request("1A2B".to_owned(), async {
                    tracing::info!(method = %"GET", path = "/b/k \"q\"\n\u{1}", status = 200u64, delta = -3i64, ok = true, duration_ms = 0.25, parts = ?Some(2), "request");
                }));
            });
            assert_eq!(in_task.len(), 1);
            // The lines differ in their time only.
            let untimed = |l: &str| match format {
                LogFormat::Text => l.split_once(' ').unwrap().1.to_owned(),
                LogFormat::Json => {
                    let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                    v.as_object_mut().unwrap().remove("timestamp").unwrap();
                    v.to_string()
                }
            };
            assert_eq!(untimed(&in_task[0]), untimed(&in_span[0]), "{format:?}");
            // And a span inside the request keeps the id.
            let nested = logged(format, || {
                let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
                runtime.block_on(in_request("1A2B".to_owned(), async {
                    let span = tracing::info_span!("job", id = 7u64);
                    let _entered = span.enter();
                    tracing::info!("inside");
                }));
            });
            match format {
                LogFormat::Text => {
                    assert!(nested[0].contains(" INFO request{request_id=1A2B}:job{id=7}: "), "{}", nested[0])
                }
                LogFormat::Json => {
                    let v: serde_json::Value = serde_json::from_str(&nested[0]).unwrap();
                    assert_eq!(v["span"], serde_json::json!({"request_id": "1A2B", "id": 7, "name": "job"}));
                }
            }
        }
        // Outside a request, nothing is added.
        let outside = logged(LogFormat::Json, || tracing::info!("alone"));
        let v: serde_json::Value = serde_json::from_str(&outside[0]).unwrap();
        assert!(v.get("span").is_none(), "{v}");
    }

    #[test]
    fn fields_recorded_later_join_the_span() {
        let lines = logged(LogFormat::Json, || {
            let span = tracing::info_span!("job", id = 7u64, state = tracing::field::Empty);
            span.record("state", "done");
            let _entered = span.enter();
            tracing::warn!(r#type = "x", value = f64::NAN, "outside");
        });
        let v: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(v["span"], serde_json::json!({"id": 7, "state": "done", "name": "job"}));
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["type"], "x", "the raw identifier's r# is dropped");
        assert!(v["value"].is_null(), "JSON has no NaN: {v}");
    }

    #[test]
    fn log_crate_records_keep_their_target_and_lose_tracing_logs_fields() {
        use tracing_log::log;
        let record = |format| {
            logged(format, || {
                tracing_log::format_trace(
                    &log::Record::builder()
                        .target("diesel::connection")
                        .level(log::Level::Warn)
                        .module_path(Some("diesel::connection"))
                        .file(Some("src/connection.rs"))
                        .line(Some(9))
                        .args(format_args!("slow query"))
                        .build(),
                )
                .unwrap();
            })
        };
        let v: serde_json::Value = serde_json::from_str(&record(LogFormat::Json)[0]).unwrap();
        assert_eq!(v["target"], "diesel::connection");
        assert_eq!(v["level"], "WARN");
        assert_eq!(v["message"], "slow query");
        assert!(v.as_object().unwrap().keys().all(|k| !k.starts_with("log.")), "{v}");
        let text = &record(LogFormat::Text)[0];
        assert!(text.ends_with(" WARN diesel::connection: slow query"), "{text}");
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let at = |secs: u64, micros: u64| {
            let mut s = String::new();
            push_timestamp(&mut s, SystemTime::UNIX_EPOCH + Duration::from_micros(secs * 1_000_000 + micros));
            s
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_868_800, 7), "2000-03-01T00:00:00.000007Z");
        assert_eq!(at(1_709_251_199, 999_999), "2024-02-29T23:59:59.999999Z");
        assert_eq!(at(1_795_811_700, 123_456), "2026-11-27T20:35:00.123456Z");
    }
}
