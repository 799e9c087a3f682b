//! `GET /license/usage_export.csv` (§6), written as Ruby's CSV library writes it.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::domain::licenses::HistoryRow;
use crate::license_key::{date_text, License};

/// GitLab stops adding rows once the export passes 15 MB.
pub const MAX_EXPORT_BYTES: usize = 15 * 1024 * 1024;

/// Quotes a field only when it needs it (a comma, a quote or a line break), doubling quotes;
/// an empty text is `""`, as Ruby's CSV writes it (nil is the empty, unquoted field).
fn field(text: &str) -> String {
    if text.is_empty() {
        "\"\"".to_string()
    } else if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Spreadsheet-formula guard GitLab applies to table cells.
pub(crate) fn table_cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', ';']) {
        field(&format!("'{text}"))
    } else {
        field(text)
    }
}

fn csv_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A licensee value as Ruby would print it; a missing one is an empty, unquoted field.
fn licensee_value(license: &License, key: &str) -> String {
    match license.licensee.get(key) {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => field(text),
        Some(other) => field(&other.to_string()),
    }
}

/// The export for `license` (stored as `data`) and its history rows, oldest first.
pub fn render(data: &str, license: &License, history: &[HistoryRow], now: DateTime<Utc>) -> String {
    let key = format!("{}\n", data.replace("\r\n", "\n").trim_end_matches('\n'));
    let mut csv = String::with_capacity(key.len() + 256 + history.len() * 24);
    csv.push_str(&format!("License Key,{}\n", field(&key)));
    csv.push_str(&format!("Email,{}\n", licensee_value(license, "Email")));
    csv.push_str(&format!(
        "License Start Date,{}\n",
        date_text(license.starts_at)
    ));
    csv.push_str(&format!(
        "License End Date,{}\n",
        license.expires_at.map(date_text).unwrap_or_default()
    ));
    csv.push_str(&format!("Company,{}\n", licensee_value(license, "Company")));
    csv.push_str(&format!("Generated At,{}\n", csv_time(now)));
    csv.push_str("\"\",\"\"\n");
    csv.push_str("Date,Billable User Count\n");
    for row in history {
        if csv.len() > MAX_EXPORT_BYTES {
            break;
        }
        csv.push_str(&table_cell(&csv_time(row.recorded_at)));
        csv.push(',');
        csv.push_str(&row.active_user_count.to_string());
        csv.push('\n');
    }
    csv
}

/// The history rows of a usage export (or of just its table): every line after the
/// `Date,Billable User Count` header (or the older `Date,Active User Count`). Errors name the
/// line.
pub fn parse_history(text: &str) -> Result<Vec<HistoryRow>, String> {
    let mut lines = text.lines().enumerate();
    let header = lines.by_ref().find(|(_, line)| {
        let line = line.trim().trim_start_matches('\u{feff}');
        line == "Date,Billable User Count" || line == "Date,Active User Count"
    });
    if header.is_none() {
        return Err("no `Date,Billable User Count` header line was found".into());
    }
    let mut rows = Vec::new();
    for (index, line) in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let number = index + 1;
        let (date, count) = line
            .split_once(',')
            .ok_or_else(|| format!("line {number}: expected `date,count`"))?;
        let date = date.trim().trim_matches('"').trim_start_matches('\'');
        let recorded_at = chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%d %H:%M:%S")
            .or_else(|_| {
                chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").map(|day| {
                    day.and_time(chrono::NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default())
                })
            })
            .map_err(|_| format!("line {number}: `{date}` is not a date (YYYY-MM-DD HH:MM:SS)"))?
            .and_utc();
        let active_user_count: i64 = count
            .trim()
            .trim_matches('"')
            .parse()
            .ok()
            .filter(|count: &i64| *count >= 0)
            .ok_or_else(|| format!("line {number}: `{}` is not a user count", count.trim()))?;
        rows.push(HistoryRow {
            recorded_at,
            active_user_count,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_follows_ruby_csv() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field(""), "\"\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(table_cell("=SUM(A1)"), "'=SUM(A1)");
    }

    #[test]
    fn history_parses_from_the_table() {
        let text = "License Key,\"abc\ndef\n\"\nEmail,a@b\n\"\",\"\"\nDate,Billable User Count\n2026-01-01 12:00:04,98\n2026-01-02,7\n\n";
        let rows = parse_history(text).expect("parses");
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0].recorded_at.to_rfc3339(),
            "2026-01-01T12:00:04+00:00"
        );
        assert_eq!(rows[1].active_user_count, 7);
        assert!(parse_history("nothing").is_err());
        assert!(parse_history("Date,Billable User Count\n2026-13-01,5")
            .expect_err("bad")
            .contains("line 2"));
        assert!(parse_history("Date,Billable User Count\n2026-01-01,-5").is_err());
    }
}
