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
    let restrictions = match restrictions {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    encode_license(starts, expires, restrictions, false)
}

/// Like [`license`], an offline cloud license (GitLab provisions add-on products only from
/// cloud licenses).
pub fn cloud_license(starts: &str, expires: &str, restrictions: Value) -> String {
    let restrictions = match restrictions {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    encode_license(starts, expires, restrictions, true)
}

fn encode_license(
    starts: &str,
    expires: &str,
    restrictions: Map<String, Value>,
    cloud: bool,
) -> String {
    let mut licensee = Map::new();
    licensee.insert("Name".into(), json!("Ada Admin"));
    licensee.insert("Email".into(), json!("ada@example.org"));
    licensee.insert("Company".into(), json!("Example Org"));
    let new = NewLicense {
        licensee,
        starts_at: day(starts),
        expires_at: Some(day(expires)),
        restrictions,
        cloud_licensing_enabled: cloud,
        offline_cloud_licensing_enabled: cloud,
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

/// The envelope object `{data, key, iv}` of a license text.
pub fn envelope_of(text: &str) -> Map<String, Value> {
    use base64::Engine as _;
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let json = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .expect("base64");
    match serde_json::from_slice(&json) {
        Ok(Value::Object(envelope)) => envelope,
        other => panic!("not an envelope: {other:?}"),
    }
}

/// An envelope as license text.
pub fn license_of(envelope: &Map<String, Value>) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(Value::Object(envelope.clone()).to_string())
}

/// Seals any bytes as a payload under the test key, skipping the encoder's validity check, so
/// the payload stages of the decoder can be reached with anything. One RSA signature is made
/// per test run; only the AES data changes between calls.
pub fn seal_raw_payload(payload: &[u8]) -> String {
    use aes::cipher::{block_padding::Pkcs7, BlockEncryptMut, KeyIvInit};
    use base64::Engine as _;
    const SECRETS: license_key::Secrets = license_key::Secrets {
        aes_key: [3; 16],
        iv: [5; 16],
    };
    static TEMPLATE: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
    let template = TEMPLATE.get_or_init(|| {
        let valid =
            json!({"licensee": {"N": 1}, "issued_at": "2025-01-01", "expires_at": "2026-01-01"});
        let text =
            license_key::encode_with(&valid.to_string(), &test_private_key(), None, &SECRETS)
                .expect("encode");
        envelope_of(&text)
    });
    let data = cbc::Encryptor::<aes::Aes128>::new(&SECRETS.aes_key.into(), &SECRETS.iv.into())
        .encrypt_padded_vec_mut::<Pkcs7>(payload);
    let mut envelope = template.clone();
    envelope.insert(
        "data".into(),
        Value::from(base64::engine::general_purpose::STANDARD.encode(data)),
    );
    license_of(&envelope)
}

/// Dates around the wall clock, for servers that run on it (real processes): `days` from
/// today, as text.
pub fn days_from_today(days: i64) -> String {
    (chrono::Utc::now().date_naive() + chrono::TimeDelta::days(days))
        .format("%Y-%m-%d")
        .to_string()
}

/// A premium license with `seats`, current by the wall clock (started a month ago, a year left).
pub fn premium_today(seats: u64) -> String {
    license(
        &days_from_today(-30),
        &days_from_today(365),
        json!({"plan": "premium", "active_user_count": seats}),
    )
}

/// Like [`premium_today`], also selling `duo_seats` GitLab Duo Pro seats (a cloud license, so
/// that the purchase is provisioned).
pub fn duo_today(seats: u64, duo_seats: u64) -> String {
    cloud_license(
        &days_from_today(-30),
        &days_from_today(365),
        json!({
            "plan": "premium",
            "active_user_count": seats,
            "add_on_products": {"duo_pro": [{
                "quantity": duo_seats,
                "started_on": days_from_today(-30),
                "expires_on": days_from_today(365),
                "purchase_xid": "A-S00012345",
                "trial": false
            }]}
        }),
    )
}
