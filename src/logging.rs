//! Log output, kept off the request path.
//!
//! A request hands its access-log line to a queue as a few raw values ([`AccessRecord`]) and
//! moves on: the line is formatted and written by one writer thread, which takes the queue in
//! batches and writes many lines with one write. Every other log line is formatted where it
//! happens (they are rare on the request path) and queued the same way. So a request never
//! waits for the terminal, the file or the pipe behind standard output, and never pays for
//! formatting its access line.
//!
//! When the output cannot keep up (a stalled pipe, a full disk, a log shipper that stopped
//! reading), the queue reaches [`QUEUE_LIMIT`] and further lines are dropped rather than
//! making requests wait: the log must never become a way to stall the server. Drops are
//! counted (`gitlab_license_server_log_lines_dropped_total` in `/-/metrics`) and reported in
//! the log itself once the output takes lines again ([`report_drops`]).
//!
//! On a graceful stop the queue is written out before the process exits ([`LogOutput`]'s
//! drop), so the line of every request answered is in the log.
//!
//! The lines are the ones `tracing_subscriber`'s formatter writes (text or JSON): the writer
//! thread emits each access line as the same event, in the same `request` span, that the
//! request would have, with the time the response was made.

mod access_line;

use std::cell::{Cell, RefCell};
use std::io::{IsTerminal as _, Stdout, Write as _};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use axum::http::{HeaderValue, Method};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

use access_line::{AccessLine, LineClock, Timestamp};

/// Lines (or access records) the queue holds while the writer thread is behind; beyond it
/// lines are dropped. At about 300 bytes a line that is at most a few megabytes, allocated
/// only while lines wait.
pub const QUEUE_LIMIT: usize = 16_384;
/// The writer thread's buffer: lines that arrive together leave in one write.
const WRITE_BUFFER_BYTES: usize = 64 * 1024;
/// After a batch, the writer thread sleeps this long before it looks for more, and goes back
/// to waiting on the queue only when nothing came: under load, requests then queue lines
/// without waking it each time, and a line waits at most this long.
const BATCH_PAUSE: Duration = Duration::from_millis(10);
/// How long a stop waits for the queue to be written out (a stalled output cannot hold the
/// exit back longer).
const FLUSH_ON_STOP: Duration = Duration::from_secs(5);
/// How often [`report_drops`] looks at the drop count.
const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(10);
/// The access line's target, as it was when the request's own thread wrote it.
pub const ACCESS_TARGET: &str = "gitlab_license_server::api";

/// What a request leaves for its access-log line: plain values, nothing the writer thread
/// would have to free on the request thread's behalf.
pub struct AccessRecord {
    /// When the response was made (the line's timestamp).
    pub ended: Instant,
    pub method: Method,
    /// `None` when the request never reached the router (refused before it, e.g. by a rate
    /// limit).
    pub route: Option<Route>,
    pub request_id: RequestIdText,
    pub status: u16,
    pub latency: Duration,
    /// Why the server failed the request, for the ones it did (logged at error level).
    pub cause: Option<String>,
}

/// The request id as the line shows it (empty when absent or not printable). The server's own
/// ids (32 characters) are copied inline; longer ones a client sent are kept as they came.
pub enum RequestIdText {
    Inline { bytes: [u8; 32], len: u8 },
    Long(HeaderValue),
}

impl RequestIdText {
    pub fn new(value: Option<&HeaderValue>) -> Self {
        let mut bytes = [0; 32];
        let Some((value, text)) = value.and_then(|value| Some((value, value.to_str().ok()?)))
        else {
            return Self::Inline { bytes, len: 0 };
        };
        match (bytes.get_mut(..text.len()), u8::try_from(text.len())) {
            (Some(inline), Ok(len)) => {
                inline.copy_from_slice(text.as_bytes());
                Self::Inline { bytes, len }
            }
            _ => Self::Long(value.clone()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Self::Inline { bytes, len } => bytes
                .get(..usize::from(*len))
                .and_then(|text| std::str::from_utf8(text).ok())
                .unwrap_or_default(),
            Self::Long(value) => value.to_str().unwrap_or_default(),
        }
    }
}

/// The route a request matched, as the router's middleware (`metrics::observe`) leaves it on
/// the response (a shared string: cloning it copies nothing).
#[derive(Clone)]
pub enum Route {
    Matched(axum::extract::MatchedPath),
    /// No route matched (a 404 or 405 from the router).
    Unmatched,
}

impl Route {
    pub fn as_str(&self) -> &str {
        match self {
            Self::Matched(path) => path.as_str(),
            Self::Unmatched => "unmatched",
        }
    }
}

impl PartialEq for Route {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Route {}

impl std::hash::Hash for Route {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl std::fmt::Debug for Route {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(self.as_str())
    }
}

enum Message {
    Line(Vec<u8>),
    Access(AccessRecord),
    /// Write out everything queued before it, then answer.
    Flush(Sender<()>),
}

struct Queue {
    sender: Sender<Message>,
    queued: AtomicUsize,
    dropped: AtomicU64,
}

static QUEUE: OnceLock<Queue> = OnceLock::new();

thread_local! {
    /// Set on the writer thread: lines formatted there go straight to its buffer.
    static WRITER_BUFFER: RefCell<Option<Vec<u8>>> = const { RefCell::new(None) };
    /// The time the line being formatted on this thread is stamped with, when not now.
    static LINE_TIME: Cell<Option<SystemTime>> = const { Cell::new(None) };
    /// Set while a report of dropped lines is logged: that line is queued even when the queue
    /// is full (else the report of drops would be dropped itself).
    static PAST_THE_LIMIT: Cell<bool> = const { Cell::new(false) };
}

impl Queue {
    fn push(&self, message: Message) {
        if self.queued.load(Ordering::Relaxed) >= QUEUE_LIMIT && !PAST_THE_LIMIT.with(Cell::get) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.queued.fetch_add(1, Ordering::Relaxed);
        if self.sender.send(message).is_err() {
            self.queued.fetch_sub(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Keeps the log output going; dropping it writes out what is still queued (waiting at most
/// [`FLUSH_ON_STOP`]).
#[must_use = "dropping it stops the log output"]
pub struct LogOutput {
    installed: bool,
}

impl Drop for LogOutput {
    fn drop(&mut self) {
        if self.installed {
            flush(FLUSH_ON_STOP);
        }
    }
}

/// Waits (at most `limit`) until every line queued so far has been written.
pub fn flush(limit: Duration) -> bool {
    let Some(queue) = QUEUE.get() else {
        return true;
    };
    let (done, finished) = mpsc::channel();
    // A flush is never dropped for a full queue: it is what empties it.
    queue.queued.fetch_add(1, Ordering::Relaxed);
    queue.sender.send(Message::Flush(done)).is_ok() && finished.recv_timeout(limit).is_ok()
}

/// Sets up the process's logging: `RUST_LOG`'s filter (default `info,sqlx=warn`) and `format`,
/// written to standard output by the writer thread.
pub fn init(format: LogFormat) -> LogOutput {
    // An empty RUST_LOG counts as unset, like every other setting.
    // sqlx reports every dropped pooled connection at info: during a database outage that
    // would be a line per request, so its default is warn.
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| "info,sqlx=warn".into());
    let filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = std::io::stdout().is_terminal();
    let style = match (format, colour) {
        (LogFormat::Json, _) => LineStyle::Json,
        (LogFormat::Text, false) => LineStyle::Text,
        (LogFormat::Text, true) => LineStyle::Colour,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_timer(LineTime)
        .with_writer(QueueWriter);
    let installed = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    }
    .is_ok();
    if installed {
        let (sender, receiver) = mpsc::channel();
        let queue = Queue {
            sender,
            queued: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
        };
        if QUEUE.set(queue).is_ok() {
            let out = std::io::stdout();
            let spawned = std::thread::Builder::new()
                .name("log-writer".into())
                .spawn(move || write_lines(&receiver, out, style));
            if spawned.is_err() {
                // No thread, no queue: lines would only pile up. Counted as dropped from here.
                if let Some(queue) = QUEUE.get() {
                    queue.queued.store(QUEUE_LIMIT, Ordering::Relaxed);
                }
            }
        }
    }
    LogOutput { installed }
}

/// Log lines dropped since start because the output could not keep up.
pub fn dropped_lines() -> u64 {
    QUEUE
        .get()
        .map_or(0, |queue| queue.dropped.load(Ordering::Relaxed))
}

/// Hands a request's access line to the writer thread (or, where no writer thread runs — a
/// server inside tests, a command — writes it here).
pub fn access(record: AccessRecord) {
    let wanted = if record.cause.is_some() {
        tracing::enabled!(target: ACCESS_TARGET, tracing::Level::ERROR)
    } else {
        tracing::enabled!(target: ACCESS_TARGET, tracing::Level::INFO)
    };
    if !wanted {
        return;
    }
    match QUEUE.get() {
        Some(queue) => queue.push(Message::Access(record)),
        None => emit_access(&record),
    }
}

/// The access line as the event it has always been: `response` with the status, the latency
/// and any failure, inside the `request` span with the method, route and request id.
fn emit_access(record: &AccessRecord) {
    let request_id = record.request_id.as_str();
    let span = tracing::info_span!(
        target: ACCESS_TARGET,
        "request",
        method = %record.method,
        route = tracing::field::Empty,
        request_id
    );
    if let Some(route) = &record.route {
        span.record("route", route.as_str());
    }
    let _entered = span.enter();
    let status = record.status;
    let latency_ms = record.latency.as_secs_f64() * 1000.0;
    match &record.cause {
        Some(cause) => {
            tracing::error!(target: ACCESS_TARGET, status, latency_ms, cause, "response")
        }
        None => tracing::info!(target: ACCESS_TARGET, status, latency_ms, "response"),
    }
}

/// How access lines are written: by hand as `tracing_subscriber`'s formatter writes the event
/// where that is plain (text to a file or a pipe, JSON; see [`access_line`]), and through the
/// formatter itself for a terminal's colours.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum LineStyle {
    Text,
    Json,
    Colour,
}

/// The access line of `record`, made at `at`, exactly as the formatter would write the event
/// [`emit_access`] makes (a test holds the two together).
fn format_access(
    style: LineStyle,
    record: &AccessRecord,
    at: SystemTime,
    clock: &mut LineClock,
    line: &mut Vec<u8>,
) {
    let access_line = AccessLine { record, at };
    match style {
        LineStyle::Text => access_line.text(clock, line),
        LineStyle::Json => access_line.json(clock, line),
        LineStyle::Colour => {
            LINE_TIME.with(|time| time.set(Some(at)));
            emit_access(record);
            LINE_TIME.with(|time| time.set(None));
            WRITER_BUFFER.with(|buffer| {
                if let Some(buffer) = buffer.borrow_mut().as_mut() {
                    line.append(buffer);
                }
            });
        }
    }
}

/// Turns the monotonic instants requests are stamped with into wall-clock time: one reading of
/// both clocks per batch, so a request reads one clock, not two, and every line of a batch is
/// placed against a wall-clock reading at most a batch old.
struct WallClock {
    wall: SystemTime,
    monotonic: Instant,
}

impl WallClock {
    fn now() -> Self {
        Self {
            wall: SystemTime::now(),
            monotonic: Instant::now(),
        }
    }

    fn at(&self, instant: Instant) -> SystemTime {
        match self.monotonic.checked_duration_since(instant) {
            Some(before) => self.wall.checked_sub(before).unwrap_or(self.wall),
            None => self
                .wall
                .checked_add(instant.duration_since(self.monotonic))
                .unwrap_or(self.wall),
        }
    }
}

/// The writer thread: takes what is queued, formats access records, writes in batches.
fn write_lines(receiver: &Receiver<Message>, out: Stdout, style: LineStyle) {
    WRITER_BUFFER.with(|buffer| *buffer.borrow_mut() = Some(Vec::with_capacity(512)));
    let mut batch = Batch {
        out,
        buffer: Vec::with_capacity(WRITE_BUFFER_BYTES + 4096),
        unwritten: 0,
    };
    let mut line_clock = LineClock::default();
    loop {
        // Asleep until something arrives…
        let Ok(first) = receiver.recv() else { return };
        let mut next = Some(first);
        // …then in batches while lines keep coming.
        loop {
            let wall_clock = WallClock::now();
            while let Some(message) = next.take().or_else(|| receiver.try_recv().ok()) {
                if let Some(queue) = QUEUE.get() {
                    queue.queued.fetch_sub(1, Ordering::Relaxed);
                }
                match message {
                    Message::Line(line) => batch.add(|buffer| buffer.extend_from_slice(&line)),
                    Message::Access(record) => {
                        let at = wall_clock.at(record.ended);
                        batch.add(|buffer| {
                            format_access(style, &record, at, &mut line_clock, buffer);
                        });
                    }
                    Message::Flush(done) => {
                        batch.write_out();
                        let _ = done.send(());
                    }
                }
            }
            batch.write_out();
            // A pause, not a wait on the queue: while this thread waits on it, every line
            // queued would wake it (a switch of threads per request, on a busy core).
            std::thread::sleep(BATCH_PAUSE);
            match receiver.try_recv() {
                Ok(message) => next = Some(message),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return,
            }
        }
    }
}

/// Lines formatted straight into one buffer, written out with one write when it fills or the
/// queue runs dry.
struct Batch {
    out: Stdout,
    buffer: Vec<u8>,
    /// Lines in `buffer`: counted as dropped if the output refuses them.
    unwritten: u64,
}

impl Batch {
    fn add(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let before = self.buffer.len();
        write(&mut self.buffer);
        if self.buffer.len() > before {
            self.unwritten += 1;
        }
        if self.buffer.len() >= WRITE_BUFFER_BYTES {
            self.write_out();
        }
    }

    fn write_out(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        let mut out = self.out.lock();
        if out
            .write_all(&self.buffer)
            .and_then(|()| out.flush())
            .is_err()
        {
            // Lines that went into a write the output refused count as dropped.
            if let Some(queue) = QUEUE.get() {
                queue.dropped.fetch_add(self.unwritten, Ordering::Relaxed);
            }
        }
        self.unwritten = 0;
        self.buffer.clear();
    }
}

/// The formatter's output: onto the queue, or, on the writer thread, into its buffer.
#[derive(Clone, Copy)]
struct QueueWriter;

struct QueuedLine;

impl MakeWriter<'_> for QueueWriter {
    type Writer = QueuedLine;

    fn make_writer(&self) -> QueuedLine {
        QueuedLine
    }
}

impl std::io::Write for QueuedLine {
    /// The formatter writes each line whole, in one call.
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let on_writer_thread = WRITER_BUFFER.with(|buffer| match buffer.borrow_mut().as_mut() {
            Some(buffer) => {
                buffer.extend_from_slice(line);
                true
            }
            None => false,
        });
        if !on_writer_thread {
            match QUEUE.get() {
                Some(queue) => queue.push(Message::Line(line.to_vec())),
                // Before the writer thread starts (or without one): straight out.
                None => {
                    let _ = std::io::stdout().write_all(line);
                }
            }
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The line's timestamp: RFC 3339 in UTC with microseconds, as `tracing_subscriber`'s default
/// — the response's time for access lines, now for the others.
struct LineTime;

impl FormatTime for LineTime {
    fn format_time(&self, writer: &mut Writer<'_>) -> std::fmt::Result {
        let at = LINE_TIME.with(Cell::get).unwrap_or_else(SystemTime::now);
        write!(writer, "{}", Timestamp(at))
    }
}

/// Runs for the life of the server: every few seconds, if lines were dropped since the last
/// look, says so in the log (a line queued even when the queue is full, so it arrives once the
/// output takes lines again).
pub async fn report_drops() {
    let mut reported = dropped_lines();
    let mut interval = tokio::time::interval(DROP_REPORT_INTERVAL);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let dropped = dropped_lines();
        if dropped > reported {
            past_the_limit(|| {
                tracing::warn!(
                    dropped = dropped - reported,
                    dropped_since_start = dropped,
                    "log output cannot keep up: lines were dropped"
                );
            });
            reported = dropped;
        }
    }
}

/// At a stop: how many lines were dropped since start, if any.
pub fn report_drops_at_stop() {
    let dropped = dropped_lines();
    if dropped > 0 {
        past_the_limit(|| {
            tracing::warn!(
                dropped_since_start = dropped,
                "log output could not keep up: lines were dropped"
            );
        });
    }
}

fn past_the_limit(log: impl FnOnce()) {
    PAST_THE_LIMIT.with(|flag| flag.set(true));
    log();
    PAST_THE_LIMIT.with(|flag| flag.set(false));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What `tracing_subscriber`'s own formatter writes for the access event of `record`.
    fn formatter_line(json: bool, record: &AccessRecord, at: SystemTime) -> String {
        let captured = Captured::default();
        let writer = {
            let captured = captured.clone();
            move || captured.clone()
        };
        let builder = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_timer(LineTime)
            .with_writer(writer);
        LINE_TIME.with(|time| time.set(Some(at)));
        if json {
            let subscriber = builder.json().flatten_event(true).finish();
            tracing::subscriber::with_default(subscriber, || emit_access(record));
        } else {
            tracing::subscriber::with_default(builder.finish(), || emit_access(record));
        }
        LINE_TIME.with(|time| time.set(None));
        let bytes = captured.0.lock().expect("lock").clone();
        String::from_utf8(bytes).expect("utf-8")
    }

    fn records() -> Vec<AccessRecord> {
        let ended = Instant::now();
        let long_id = "a client's own request id, longer than the server's 32 characters";
        vec![
            AccessRecord {
                ended,
                method: Method::GET,
                route: Some(Route::Unmatched),
                request_id: RequestIdText::new(Some(&HeaderValue::from_static(
                    "50cf0a2cfa77b8100000000000000001",
                ))),
                status: 404,
                latency: Duration::from_nanos(48_743),
                cause: None,
            },
            AccessRecord {
                ended,
                method: Method::POST,
                route: None,
                request_id: RequestIdText::new(None),
                status: 413,
                latency: Duration::from_nanos(7_110_695),
                cause: None,
            },
            AccessRecord {
                ended,
                method: Method::from_bytes(b"PURGE").expect("method"),
                route: Some(Route::Unmatched),
                request_id: RequestIdText::new(Some(&HeaderValue::from_static(
                    "client-chose-this \"one\"",
                ))),
                status: 500,
                latency: Duration::from_secs(3),
                cause: Some("database said: \"no\"\n\tand \\ more — ünïcode".into()),
            },
            AccessRecord {
                ended,
                method: Method::DELETE,
                route: None,
                request_id: RequestIdText::new(Some(&HeaderValue::from_static(long_id))),
                status: 204,
                latency: Duration::from_nanos(1),
                cause: None,
            },
            AccessRecord {
                ended,
                method: Method::GET,
                route: None,
                request_id: RequestIdText::new(Some(
                    &HeaderValue::from_bytes("not printable: ü".as_bytes()).expect("value"),
                )),
                status: 200,
                latency: Duration::from_secs(123_456),
                cause: None,
            },
        ]
    }

    #[test]
    fn access_lines_are_the_formatters_lines() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_micros(1_796_688_000_123_456);
        let mut clock = LineClock::default();
        // The clock's cache of the last second is used, renewed and skipped alike.
        for at in [
            start,
            start + Duration::from_millis(5),
            start + Duration::from_secs(90),
        ] {
            for record in records() {
                for (style, json) in [(LineStyle::Text, false), (LineStyle::Json, true)] {
                    let mut ours = Vec::new();
                    format_access(style, &record, at, &mut clock, &mut ours);
                    assert_eq!(
                        String::from_utf8(ours).expect("utf-8"),
                        formatter_line(json, &record, at),
                        "{style:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn request_ids_are_shown_as_they_came() {
        let own = HeaderValue::from_static("50cf0a2cfa77b8100000000000000001");
        let long = HeaderValue::from_static("an id of forty characters from a client");
        assert_eq!(
            RequestIdText::new(Some(&own)).as_str(),
            own.to_str().expect("text")
        );
        assert_eq!(
            RequestIdText::new(Some(&long)).as_str(),
            long.to_str().expect("text")
        );
        assert_eq!(RequestIdText::new(None).as_str(), "");
        let unprintable = HeaderValue::from_bytes(b"\xff").expect("value");
        assert_eq!(RequestIdText::new(Some(&unprintable)).as_str(), "");
    }

    #[test]
    fn instants_become_the_wall_clock_time_they_were() {
        let clock = WallClock::now();
        let before = clock.monotonic - Duration::from_millis(7);
        let after = clock.monotonic + Duration::from_millis(3);
        assert_eq!(clock.at(before), clock.wall - Duration::from_millis(7));
        assert_eq!(clock.at(after), clock.wall + Duration::from_millis(3));
        assert_eq!(clock.at(clock.monotonic), clock.wall);
    }
}
