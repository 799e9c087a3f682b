//! Licenses made on the fly with the test key, for the API tests.

use chrono::NaiveDate;
use gitlab_license_server::license_key::{self, NewLicense};
use serde_json::{json, Map, Value};

use super::test_private_key;

pub fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
}

/// A signed license from `starts` to `expires` with `restrictions` (an object).
pub fn license(starts: &str, expires: &str, restrictions: Value) -> String {
    let mut licensee = Map::new();
    licensee.insert("Name".into(), json!("Ada Admin"));
    licensee.insert("Email".into(), json!("ada@example.org"));
    licensee.insert("Company".into(), json!("Example Org"));
    let restrictions = match restrictions {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let new = NewLicense {
        licensee,
        starts_at: day(starts),
        expires_at: Some(day(expires)),
        restrictions,
    };
    license_key::encode(&new.to_payload_json(), &test_private_key(), None).expect("encode")
}

/// A premium license with `seats`, running 2026-01-01 → 2027-01-01 (current at `test_now`).
pub fn premium(seats: u64) -> String {
    license(
        "2026-01-01",
        "2027-01-01",
        json!({"plan": "premium", "active_user_count": seats}),
    )
}

/// A signed license with an arbitrary payload (for flags `NewLicense` does not set).
pub fn license_from_payload(payload: Value) -> String {
    license_key::encode(&payload.to_string(), &test_private_key(), None).expect("encode")
}
