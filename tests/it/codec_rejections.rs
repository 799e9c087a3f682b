//! Inputs the decoder must refuse with a typed error, quickly, without panicking.

use base64::Engine as _;
use gitlab_license_server::license_key::{self, DecodeError, ValidationError};
use serde_json::{json, Value};

use crate::support::licenses::{envelope_of, license_of, seal_raw_payload};
use crate::support::{fixture_json, other_key_pair, test_public_key};

fn decode(text: impl AsRef<[u8]>) -> Result<license_key::License, DecodeError> {
    license_key::decode(text, &[test_public_key()])
}

fn valid_license_text() -> String {
    fixture_json("vectors.json")[0]["license"]
        .as_str()
        .expect("license")
        .to_string()
}

/// The envelope of a valid license as JSON, to tamper with.
fn valid_envelope() -> serde_json::Map<String, Value> {
    envelope_of(&valid_license_text())
}

/// Encrypts an arbitrary payload with the test key, to reach the payload rules.
fn license_with_payload(payload: &Value) -> String {
    seal_raw_payload(payload.to_string().as_bytes())
}

#[test]
fn truncated_base64_is_refused() {
    let text = valid_license_text();
    for cut in [text.len() / 2, text.len() - 20, 10] {
        let error = decode(&text[..cut]).expect_err("truncated");
        assert_eq!(error, DecodeError::EnvelopeJson, "cut at {cut}");
    }
}

#[test]
fn envelope_without_iv_is_refused() {
    let mut envelope = valid_envelope();
    envelope.remove("iv");
    assert_eq!(
        decode(license_of(&envelope)),
        Err(DecodeError::MissingField("iv"))
    );
    let mut envelope = valid_envelope();
    envelope.insert("key".into(), Value::from(12));
    assert_eq!(
        decode(license_of(&envelope)),
        Err(DecodeError::MissingField("key"))
    );
}

#[test]
fn envelope_that_is_not_an_object_is_refused() {
    let text = base64::engine::general_purpose::STANDARD.encode("[\"data\",\"key\",\"iv\"]");
    assert_eq!(decode(text), Err(DecodeError::EnvelopeJson));
}

#[test]
fn key_wrapped_with_another_key_is_refused() {
    let (other_private, _) = other_key_pair();
    let payload = fixture_json("envelope_vectors.json")[0]["payload"]
        .as_str()
        .expect("payload")
        .to_string();
    let foreign = license_key::encode(&payload, other_private, None).expect("encode");
    assert_eq!(decode(foreign), Err(DecodeError::KeyUnwrap));
}

#[test]
fn flipped_ciphertext_bytes_are_refused() {
    let envelope = valid_envelope();
    let data = envelope["data"].as_str().expect("data").replace('\n', "");
    let ciphertext = base64::engine::general_purpose::STANDARD
        .decode(data)
        .expect("b64");
    for position in [0, ciphertext.len() / 2, ciphertext.len() - 1] {
        let mut flipped = ciphertext.clone();
        flipped[position] ^= 0x01;
        let mut tampered = envelope.clone();
        tampered.insert(
            "data".into(),
            Value::from(base64::engine::general_purpose::STANDARD.encode(flipped)),
        );
        let error = decode(license_of(&tampered)).expect_err("tampered");
        assert!(
            matches!(
                error,
                DecodeError::Cipher | DecodeError::PayloadJson | DecodeError::Validation(_)
            ),
            "byte {position}: {error:?}"
        );
    }
}

#[test]
fn short_iv_and_key_are_refused() {
    let mut envelope = valid_envelope();
    envelope.insert("iv".into(), Value::from("AAAA\n"));
    assert_eq!(decode(license_of(&envelope)), Err(DecodeError::Cipher));
    let mut envelope = valid_envelope();
    envelope.insert("key".into(), Value::from("AAAA\n"));
    assert_eq!(decode(license_of(&envelope)), Err(DecodeError::KeyUnwrap));
}

#[test]
fn version_2_is_refused() {
    let payload = json!({"version": 2, "licensee": {"Name": "x"}, "issued_at": "2025-01-01", "expires_at": "2026-01-01"});
    assert_eq!(
        decode(license_with_payload(&payload)),
        Err(DecodeError::UnsupportedVersion("2".into()))
    );
    let payload = json!({"version": "1", "licensee": {"Name": "x"}, "issued_at": "2025-01-01", "expires_at": "2026-01-01"});
    assert!(matches!(
        decode(license_with_payload(&payload)),
        Err(DecodeError::UnsupportedVersion(_))
    ));
}

#[test]
fn version_one_or_absent_is_accepted() {
    for version in [json!(1), json!(null), json!(1.0)] {
        let payload = json!({"version": version, "licensee": {"Name": "x"}, "issued_at": "2025-01-01", "expires_at": "2026-01-01"});
        assert!(decode(license_with_payload(&payload)).is_ok(), "{version}");
    }
}

#[test]
fn empty_or_missing_licensee_is_refused() {
    for licensee in [json!({}), json!(null), json!("Ada"), json!(["Ada"])] {
        let payload =
            json!({"licensee": licensee, "issued_at": "2025-01-01", "expires_at": "2026-01-01"});
        assert_eq!(
            decode(license_with_payload(&payload)),
            Err(DecodeError::Validation(ValidationError::Licensee)),
            "{licensee}"
        );
    }
}

#[test]
fn unparseable_dates_are_refused() {
    for issued_at in [
        json!("soon"),
        json!("2025-02-30"),
        json!(20250101),
        json!(null),
    ] {
        let payload =
            json!({"licensee": {"Name": "x"}, "issued_at": issued_at, "expires_at": "2026-01-01"});
        assert_eq!(
            decode(license_with_payload(&payload)),
            Err(DecodeError::Validation(ValidationError::StartsAt)),
            "{issued_at}"
        );
    }
    for expires_at in [json!("never"), json!(5), json!(null)] {
        let payload =
            json!({"licensee": {"Name": "x"}, "issued_at": "2025-01-01", "expires_at": expires_at});
        assert_eq!(
            decode(license_with_payload(&payload)),
            Err(DecodeError::Validation(ValidationError::ExpiresAt)),
            "{expires_at}"
        );
    }
    let payload = json!({"licensee": {"Name": "x"}, "issued_at": "2025-01-01", "expires_at": "2026-01-01", "notify_admins_at": 3});
    assert_eq!(
        decode(license_with_payload(&payload)),
        Err(DecodeError::Validation(ValidationError::NotADate(
            "notify_admins_at"
        )))
    );
}

#[test]
fn team_member_licenses_may_omit_expiry() {
    let payload = json!({"licensee": {"Name": "x", "Company": "GitLab", "Email": "x@gitlab.com"}, "issued_at": "2025-01-01"});
    let license = decode(license_with_payload(&payload)).expect("team license");
    assert_eq!(license.expires_at, None);
    assert_eq!(license.expired(chrono::NaiveDate::MAX), None);
}

#[test]
fn restrictions_rules() {
    let base = |restrictions: Value| json!({"licensee": {"Name": "x"}, "issued_at": "2025-01-01", "expires_at": "2026-01-01", "restrictions": restrictions});
    let license = decode(license_with_payload(&base(json!("nonsense")))).expect("ignored");
    assert_eq!(license.plan(), "starter");
    let license = decode(license_with_payload(&base(
        json!({"plan": " ", "custom": [1]}),
    )))
    .expect("blank plan");
    assert_eq!(license.plan(), "starter");
    assert_eq!(
        license.restrictions.raw["custom"],
        json!([1]),
        "unknown keys kept"
    );
    let license = decode(license_with_payload(&base(
        json!({"active_user_count": null}),
    )))
    .expect("null seats");
    assert_eq!(license.restrictions.user_limit(), Value::Null);
    assert_eq!(
        decode(license_with_payload(&base(
            json!({"active_user_count": "ten"})
        ))),
        Err(DecodeError::Validation(ValidationError::NotACount(
            "active_user_count"
        )))
    );
    // GitLab reads add-on products leniently: odd values make an entry count for nothing,
    // never the key invalid.
    let lenient = decode(license_with_payload(&base(
        json!({"add_on_products": {"duo_pro": [{"quantity": -1}, {"quantity": "3", "started_on": "soon"}], "duo_core": 7}})
    )))
    .expect("an odd add_on_products is no reason to refuse the key");
    let duo_pro = &lenient.restrictions.add_on_products["duo_pro"];
    assert_eq!((duo_pro[0].quantity, duo_pro[1].quantity), (-1, 3));
    assert_eq!(duo_pro[1].started_on, None);
    assert!(!lenient
        .restrictions
        .add_on_products
        .contains_key("duo_core"));
}

#[test]
fn offline_cloud_needs_cloud() {
    let payload = json!({"licensee": {"Name": "x"}, "issued_at": "2025-01-01", "expires_at": "2026-01-01", "offline_cloud_licensing_enabled": true});
    assert_eq!(
        decode(license_with_payload(&payload)),
        Err(DecodeError::Validation(
            ValidationError::OfflineWithoutCloud
        ))
    );
}

#[test]
fn unknown_payload_keys_are_kept() {
    let payload = json!({"licensee": {"Name": "x"}, "issued_at": "2025-01-01", "expires_at": "2026-01-01", "future_field": {"a": 1}});
    let license = decode(license_with_payload(&payload)).expect("valid");
    assert_eq!(license.payload["future_field"], json!({"a": 1}));
}

#[test]
fn payload_that_is_not_json_is_refused() {
    let mut text = license_with_payload(&json!([1, 2]));
    assert_eq!(decode(&text), Err(DecodeError::PayloadJson));
    text = license_with_payload(&json!("just a string"));
    assert_eq!(decode(&text), Err(DecodeError::PayloadJson));
}

#[test]
fn ten_megabytes_are_refused_by_size() {
    // Refused by size before any decoding: the work done is bounded by the limit, not the input.
    let huge = "QUFB\n".repeat(2 * 1024 * 1024);
    assert_eq!(decode(&huge), Err(DecodeError::TooLarge));
    // Just under the limit, the whole pipeline still runs and fails cleanly.
    let big = "QUFB".repeat(license_key::MAX_LICENSE_BYTES / 4 - 1);
    assert_eq!(decode(&big), Err(DecodeError::EnvelopeJson));
}

#[test]
fn non_utf8_bytes_are_refused() {
    assert!(decode([0xff, 0xfe, 0x00, 0x80, 0xc3]).is_err());
    let mut bytes = valid_license_text().into_bytes();
    bytes.insert(5, 0xff);
    // Stray bytes are skipped like any non-alphabet character (Ruby's decode64 does the same).
    assert!(decode(&bytes).is_ok());
    assert_eq!(decode([]), Err(DecodeError::Armor));
    assert_eq!(decode("\n\n  \n"), Err(DecodeError::Base64));
}

#[test]
fn errors_never_echo_the_license() {
    let text = valid_license_text();
    let error = decode(&text[..200]).expect_err("truncated");
    assert!(!error.to_string().contains(&text[..40]));
}
