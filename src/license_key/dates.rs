//! Date parsing for payload fields, following Ruby's `Date.parse` / `DateTime.parse` on the
//! formats license tooling actually writes.
//!
//! Ruby's parser is a large heuristic; this accepts its common unambiguous forms (ISO 8601 dates
//! and date-times, `YYYY/MM/DD`, `YYYYMMDD`, `DD-MM-YYYY`, `DD Mon YYYY`, `Mon DD YYYY`, RFC 2822)
//! and treats anything else as unparseable, which the gem also maps to "absent". A key written by
//! some other tool in an exotic format could therefore be refused here but taken by GitLab.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime};

const DATE_FORMATS: &[&str] = &[
    "%Y-%m-%d",
    "%Y/%m/%d",
    "%Y%m%d",
    "%d-%m-%Y",
    "%d %b %Y",
    "%b %d %Y",
    "%d %B %Y",
    "%B %d %Y",
    "%b %d, %Y",
    "%B %d, %Y",
];

/// `Date.parse`: the calendar date in `text`, ignoring a time of day after it.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    if let Some(date_time) = parse_date_time(text) {
        return Some(date_time.date_naive());
    }
    DATE_FORMATS
        .iter()
        .find_map(|format| NaiveDate::parse_from_str(text, format).ok())
        .or_else(|| {
            // `2025-03-01T10:00` and `2025-03-01 anything`: the date part decides.
            let head = text.get(..10)?;
            let rest = &text[10..];
            if rest.starts_with(['T', 't', ' ']) {
                NaiveDate::parse_from_str(head, "%Y-%m-%d").ok()
            } else {
                None
            }
        })
}

/// `DateTime.parse`: a point in time; a bare date means its midnight, and no zone means UTC.
pub fn parse_date_time(text: &str) -> Option<DateTime<FixedOffset>> {
    let text = text.trim();
    let utc = FixedOffset::east_opt(0)?;
    DateTime::parse_from_rfc3339(text)
        .or_else(|_| DateTime::parse_from_rfc2822(text))
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S %z"))
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S %Z"))
        .ok()
        .or_else(|| {
            [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
            ]
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
            .or_else(|| {
                DATE_FORMATS
                    .iter()
                    .find_map(|format| NaiveDate::parse_from_str(text, format).ok())
                    .map(|date| date.and_time(NaiveTime::MIN))
            })
            .map(|naive| naive.and_utc().with_timezone(&utc))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ymd(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(year, month, day)
    }

    #[test]
    fn parses_the_forms_license_tools_write() {
        assert_eq!(parse_date("2025-03-01"), ymd(2025, 3, 1));
        assert_eq!(parse_date(" 2025-03-01 "), ymd(2025, 3, 1));
        assert_eq!(parse_date("2025-03-01T23:10:00Z"), ymd(2025, 3, 1));
        assert_eq!(parse_date("2025-03-01 23:10:00 UTC"), ymd(2025, 3, 1));
        assert_eq!(parse_date("2025/03/01"), ymd(2025, 3, 1));
        assert_eq!(parse_date("20250301"), ymd(2025, 3, 1));
        assert_eq!(parse_date("01-03-2025"), ymd(2025, 3, 1));
        assert_eq!(parse_date("1 Mar 2025"), ymd(2025, 3, 1));
        assert_eq!(parse_date("March 1, 2025"), ymd(2025, 3, 1));
    }

    #[test]
    fn refuses_what_is_not_a_date() {
        for text in ["", "soon", "2025-02-30", "2025-13-01", "2025", "1.5"] {
            assert_eq!(parse_date(text), None, "{text:?}");
        }
    }

    #[test]
    fn date_times_default_to_utc() {
        let parsed = parse_date_time("2025-03-01T10:00:00").map(|value| value.to_rfc3339());
        assert_eq!(parsed.as_deref(), Some("2025-03-01T10:00:00+00:00"));
        let parsed = parse_date_time("2025-03-01").map(|value| value.to_rfc3339());
        assert_eq!(parsed.as_deref(), Some("2025-03-01T00:00:00+00:00"));
        assert_eq!(parse_date_time("later"), None);
    }
}
