//! GitLab's keyset cursors: the sort values of the row a page ends at, as a JSON object of
//! strings, URL-safe base64 encoded (`{"id":"42"}`, `{"name":"Ada","id":"42"}`). Clients
//! treat them as opaque; GitLab reads both padded and unpadded base64.

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde_json::{Map, Value};

/// The longest cursor read: a page's sort values are a few short fields.
const MAX_CURSOR_CHARS: usize = 4096;

/// Encodes `fields` (in their order) as a cursor.
pub fn encode(fields: Map<String, Value>) -> String {
    URL_SAFE.encode(Value::Object(fields).to_string())
}

/// The fields of a cursor; `None` for anything that is not a base64 JSON object.
pub fn decode(cursor: &str) -> Option<Map<String, Value>> {
    let cursor = cursor.trim();
    if cursor.len() > MAX_CURSOR_CHARS {
        return None;
    }
    let bytes = URL_SAFE
        .decode(cursor)
        .or_else(|_| URL_SAFE_NO_PAD.decode(cursor))
        .ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(fields) => Some(fields),
        _ => None,
    }
}

/// An integer field as GitLab writes it (a string), or as a JSON number.
pub fn integer(fields: &Map<String, Value>, name: &str) -> Option<i64> {
    match fields.get(name)? {
        Value::String(text) => text.parse().ok(),
        Value::Number(number) => number.as_i64(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_and_reads_gitlab_cursors() {
        let mut fields = Map::new();
        fields.insert("name".into(), json!("Ada Lovelace"));
        fields.insert("id".into(), json!("42"));
        let cursor = encode(fields.clone());
        assert_eq!(decode(&cursor), Some(fields.clone()));
        assert_eq!(integer(&fields, "id"), Some(42));
        // GitLab's own, unpadded.
        assert_eq!(
            decode("eyJpZCI6IjEyIn0").and_then(|fields| integer(&fields, "id")),
            Some(12)
        );
        for bad in ["", "nonsense", "W10", &"A".repeat(MAX_CURSOR_CHARS + 4)] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }
}
