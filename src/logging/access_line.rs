//! The access line's text, written by hand exactly as `tracing_subscriber`'s formatter writes
//! the access event ([`super::emit_access`]), text and JSON: the formatter's work, its
//! `core::fmt` machinery and a calendar conversion per line, was most of what the log cost
//! the server's one core. A test formats the same records both ways and compares the bytes.

use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{Datelike as _, Timelike as _};

use super::{AccessRecord, ACCESS_TARGET};

/// One access line to write: the record and the wall-clock time the response was made.
pub(super) struct AccessLine<'a> {
    pub record: &'a AccessRecord,
    pub at: SystemTime,
}

impl AccessLine<'_> {
    fn failed(&self) -> bool {
        self.record.cause.is_some()
    }

    fn latency_ms(&self) -> f64 {
        self.record.latency.as_secs_f64() * 1000.0
    }

    /// `2026-12-07T21:57:52.891258Z  INFO request{method=GET request_id="…" route="…"}:
    /// gitlab_license_server::api: response status=200 latency_ms=0.048743`
    pub fn text(&self, clock: &mut LineClock, line: &mut Vec<u8>) {
        let record = self.record;
        clock.push_timestamp(line, self.at);
        line.extend_from_slice(if self.failed() { b" ERROR" } else { b"  INFO" });
        line.extend_from_slice(b" request{method=");
        line.extend_from_slice(record.method.as_str().as_bytes());
        line.extend_from_slice(b" request_id=");
        push_debug_str(line, record.request_id.as_str());
        if let Some(route) = &record.route {
            line.extend_from_slice(b" route=");
            push_debug_str(line, route.as_str());
        }
        line.extend_from_slice(b"}: ");
        line.extend_from_slice(ACCESS_TARGET.as_bytes());
        line.extend_from_slice(b": response status=");
        push_digits(line, u64::from(record.status), 1);
        // `{:?}` itself: serde_json's shorter route to the shortest digits breaks the rare
        // exact ties in the last digit the other way (532024.7739257812 for …813).
        let _ = write!(line, " latency_ms={:?}", self.latency_ms());
        if let Some(cause) = &record.cause {
            line.extend_from_slice(b" cause=");
            push_debug_str(line, cause);
        }
        line.push(b'\n');
    }

    /// The same line as `LOG_FORMAT=json` writes it (flattened event, the span twice: as
    /// `span` and as the only entry of `spans`).
    pub fn json(&self, clock: &mut LineClock, line: &mut Vec<u8>) {
        let record = self.record;
        line.extend_from_slice(b"{\"timestamp\":\"");
        clock.push_timestamp(line, self.at);
        line.extend_from_slice(if self.failed() {
            b"\",\"level\":\"ERROR\""
        } else {
            b"\",\"level\":\"INFO\""
        });
        line.extend_from_slice(b",\"message\":\"response\",\"status\":");
        push_digits(line, u64::from(record.status), 1);
        line.extend_from_slice(b",\"latency_ms\":");
        push_json(line, &self.latency_ms());
        if let Some(cause) = &record.cause {
            line.extend_from_slice(b",\"cause\":");
            push_json(line, cause);
        }
        line.extend_from_slice(b",\"target\":\"");
        line.extend_from_slice(ACCESS_TARGET.as_bytes());
        line.extend_from_slice(b"\",\"span\":");
        let span_start = line.len();
        line.extend_from_slice(b"{\"method\":\"");
        line.extend_from_slice(record.method.as_str().as_bytes());
        line.extend_from_slice(b"\",\"request_id\":");
        push_json(line, record.request_id.as_str());
        if let Some(route) = &record.route {
            line.extend_from_slice(b",\"route\":");
            push_json(line, route.as_str());
        }
        line.extend_from_slice(b",\"name\":\"request\"}");
        let span_end = line.len();
        line.extend_from_slice(b",\"spans\":[");
        line.extend_from_within(span_start..span_end);
        line.extend_from_slice(b"]}\n");
    }
}

/// RFC 3339 in UTC with microseconds (`2026-12-07T21:57:52.891258Z`), as the formatter's
/// timer writes it.
pub(super) struct Timestamp(pub SystemTime);

impl std::fmt::Display for Timestamp {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at: chrono::DateTime<chrono::Utc> = self.0.into();
        write!(
            formatter,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
            at.year(),
            at.month(),
            at.day(),
            at.hour(),
            at.minute(),
            at.second(),
            at.timestamp_subsec_micros().min(999_999)
        )
    }
}

/// The writer thread's memory of the last second it stamped a line with: the lines of one
/// second share the date and time up to the seconds, so the calendar is worked out once a
/// second rather than once a line.
#[derive(Default)]
pub(super) struct LineClock {
    second: Option<u64>,
    /// `2026-12-07T21:57:52.` for `second`.
    prefix: [u8; 20],
}

impl LineClock {
    fn push_timestamp(&mut self, line: &mut Vec<u8>, at: SystemTime) {
        let Ok(since_epoch) = at.duration_since(UNIX_EPOCH) else {
            let _ = write!(line, "{}", Timestamp(at));
            return;
        };
        let second = since_epoch.as_secs();
        if self.second != Some(second) {
            let mut whole = Vec::with_capacity(32);
            let _ = write!(
                whole,
                "{}",
                Timestamp(UNIX_EPOCH + Duration::from_secs(second))
            );
            // Beyond year 9999 the prefix is longer: no cache, the whole stamp each time.
            match whole.get(..self.prefix.len()) {
                Some(prefix) if whole.len() == self.prefix.len() + 7 => {
                    self.prefix.copy_from_slice(prefix);
                    self.second = Some(second);
                }
                _ => {
                    let _ = write!(line, "{}", Timestamp(at));
                    return;
                }
            }
        }
        line.extend_from_slice(&self.prefix);
        push_digits(line, u64::from(since_epoch.subsec_micros()), 6);
        line.push(b'Z');
    }
}

/// `value` in decimal, zero-padded to at least `width` digits (at most 20).
fn push_digits(line: &mut Vec<u8>, mut value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        // A digit, 0 to 9.
        digits[start] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    let start = start.min(digits.len().saturating_sub(width));
    line.extend_from_slice(&digits[start..]);
}

/// `text` as `{:?}` writes it, without the per-character work when nothing needs escaping
/// (request ids and routes are plain ASCII).
fn push_debug_str(line: &mut Vec<u8>, text: &str) {
    let plain = text.bytes().all(|byte| {
        (b' '..=b'~').contains(&byte) && byte != b'"' && byte != b'\\' && byte != b'\''
    });
    if plain {
        line.push(b'"');
        line.extend_from_slice(text.as_bytes());
        line.push(b'"');
    } else {
        let _ = write!(line, "{text:?}");
    }
}

/// Writing into a `Vec` cannot fail, nor can serialising a string or a number.
fn push_json<T: serde::Serialize + ?Sized>(line: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(&mut *line, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_the_timers_timestamps() {
        let mut clock = LineClock::default();
        let start = UNIX_EPOCH + Duration::from_micros(1_796_688_000_123_456);
        // Within one second, across seconds, days and years, and back.
        let offsets = [
            0,
            1,
            876_543,
            1_000_000,
            86_400_000_000,
            31_536_000_000_000,
            7,
        ];
        for offset in offsets {
            let at = start + Duration::from_micros(offset);
            let mut line = Vec::new();
            clock.push_timestamp(&mut line, at);
            assert_eq!(
                String::from_utf8(line).expect("utf-8"),
                Timestamp(at).to_string()
            );
        }
        for at in [
            UNIX_EPOCH - Duration::from_secs(1),
            UNIX_EPOCH + Duration::from_secs(300_000_000_000),
        ] {
            let mut line = Vec::new();
            clock.push_timestamp(&mut line, at);
            assert_eq!(
                String::from_utf8(line).expect("utf-8"),
                Timestamp(at).to_string()
            );
        }
    }

    #[test]
    fn digits_are_padded_to_the_width() {
        for (value, width, text) in [
            (0, 1, "0"),
            (7, 6, "000007"),
            (123_456, 6, "123456"),
            (200, 1, "200"),
            (u64::MAX, 1, "18446744073709551615"),
        ] {
            let mut line = Vec::new();
            push_digits(&mut line, value, width);
            assert_eq!(String::from_utf8(line).expect("utf-8"), text);
        }
    }
}
