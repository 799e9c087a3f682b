//! `GET /license/usage_export.csv` (§6), written as Ruby's CSV library writes it.

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::license_key::{date_text, License};
use crate::store::HistoryRow;

/// GitLab stops adding rows once the export passes 15 MB.
pub const MAX_EXPORT_BYTES: usize = 15 * 1024 * 1024;

/// Quotes a field only when it needs it (a comma, a quote or a line break), doubling quotes.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Spreadsheet-formula guard GitLab applies to table cells.
fn table_cell(text: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_follows_ruby_csv() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(table_cell("=SUM(A1)"), "'=SUM(A1)");
    }
}
