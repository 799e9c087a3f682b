//! Golden tests: the reference implementation's license keys and what a decoder must report.

use gitlab_license_server::license_key::{self, date_text, DecodeError, Secrets};
use serde_json::{json, Value};

use crate::support::{fixture_json, test_private_key, test_public_key, today, vectors_dir};

/// Every key of `expect` this test knows how to check; an unknown one fails the test rather
/// than being silently skipped.
const CHECKED_EXPECTATIONS: &[&str] = &[
    "valid",
    "plan",
    "starts_at",
    "expires_at",
    "user_limit",
    "licensee",
    "add_ons",
    "expired",
    "add_on_products",
    "current",
    // The 400 message of `POST /license`: checked by the API tests.
    "upload_error",
];

#[test]
fn every_vector_decodes_as_expected() {
    let public_key = test_public_key();
    let vectors = fixture_json("vectors.json");
    assert!(vectors.len() >= 10, "expected the full vector set");
    for vector in vectors {
        let name = vector["name"].as_str().expect("vector name");
        let expect = &vector["expect"];
        for key in expect.as_object().expect("expect object").keys() {
            assert!(
                CHECKED_EXPECTATIONS.contains(&key.as_str()),
                "{name}: unchecked expectation `{key}`"
            );
        }
        let text = vector["license"].as_str().expect("license text");
        let decoded = license_key::decode(text, std::slice::from_ref(&public_key));
        if expect["valid"] == json!(false) {
            assert!(decoded.is_err(), "{name}: an invalid vector was accepted");
            continue;
        }
        let license = decoded.unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(json!(license.plan()), expect["plan"], "{name}: plan");
        assert_eq!(
            json!(date_text(license.starts_at)),
            expect["starts_at"],
            "{name}"
        );
        assert_eq!(
            json!(license.expires_at.map(date_text)),
            expect["expires_at"],
            "{name}"
        );
        assert_eq!(
            license.restrictions.user_limit(),
            expect["user_limit"],
            "{name}"
        );
        assert_eq!(
            Value::Object(license.licensee.clone()),
            expect["licensee"],
            "{name}"
        );
        // Key order of the licensee is kept too (the API shows it verbatim).
        assert_eq!(
            serde_json::to_string(&license.licensee).expect("json"),
            serde_json::to_string(&expect["licensee"]).expect("json"),
            "{name}: licensee key order"
        );
        assert_eq!(
            Value::Object(license.restrictions.add_ons.clone()),
            expect["add_ons"],
            "{name}: add_ons"
        );
        assert_eq!(
            json!(license.expired(today())),
            expect["expired"],
            "{name}: expired"
        );
        let products = json!(license.restrictions.add_on_products);
        match expect.get("add_on_products") {
            Some(expected) => assert_eq!(&products, expected, "{name}: add_on_products"),
            None => assert_eq!(products, json!({}), "{name}: add_on_products"),
        }
        if let Some(current) = expect.get("current") {
            // Only a started license can be current (the API tests check the full choice).
            if current == &json!(false) {
                assert!(!license.started(today()), "{name}: should not have started");
            }
        }
    }
}

#[test]
fn invalid_vectors_fail_at_the_expected_stage() {
    let public_key = test_public_key();
    let stages: Vec<(String, &'static str)> = fixture_json("vectors.json")
        .into_iter()
        .filter(|vector| vector["expect"]["valid"] == json!(false))
        .map(|vector| {
            let name = vector["name"].as_str().unwrap_or_default().to_string();
            let text = vector["license"].as_str().unwrap_or_default();
            let error = license_key::decode(text, std::slice::from_ref(&public_key))
                .expect_err("invalid vector");
            (name, error.stage())
        })
        .collect();
    let expected = [
        // The flipped byte garbles a block but leaves valid padding: caught as non-JSON.
        ("tampered_ciphertext", "payload_json"),
        ("signed_by_another_key", "key_unwrap"),
        ("not_base64_garbage", "envelope_json"),
        ("base64_of_non_json", "envelope_json"),
        ("missing_licensee", "validation"),
        ("version_2", "version"),
    ];
    for (name, stage) in expected {
        let found = stages.iter().find(|(vector, _)| vector == name);
        assert_eq!(found.map(|(_, stage)| *stage), Some(stage), "{name}");
    }
    assert_eq!(
        stages.len(),
        expected.len(),
        "every invalid vector has an expected stage"
    );
}

#[test]
fn the_encoder_reproduces_the_reference_byte_for_byte() {
    let private_key = test_private_key();
    let public_key = test_public_key();
    let vectors = fixture_json("envelope_vectors.json");
    assert!(!vectors.is_empty());
    for vector in vectors {
        let name = vector["name"].as_str().expect("name");
        let hex_field = |key: &str| -> [u8; 16] {
            let bytes = hex::decode(vector[key].as_str().expect("hex")).expect("valid hex");
            bytes.try_into().expect("16 bytes")
        };
        let secrets = Secrets {
            aes_key: hex_field("aes_key_hex"),
            iv: hex_field("iv_hex"),
        };
        let payload = vector["payload"].as_str().expect("payload");
        let encoded = license_key::encode_with(payload, &private_key, None, &secrets)
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(
            encoded,
            vector["license"].as_str().expect("license"),
            "{name}"
        );
        let decoded = license_key::decode(&encoded, std::slice::from_ref(&public_key))
            .unwrap_or_else(|error| panic!("{name}: {error}"));
        assert_eq!(
            Value::Object(decoded.payload),
            serde_json::from_str::<Value>(payload).expect("json")
        );
    }
}

#[test]
fn random_secrets_differ_per_license() {
    let private_key = test_private_key();
    let payload = fixture_json("envelope_vectors.json")[0]["payload"]
        .as_str()
        .expect("payload")
        .to_string();
    let first = license_key::encode(&payload, &private_key, None).expect("encode");
    let second = license_key::encode(&payload, &private_key, None).expect("encode");
    assert_ne!(first, second, "each license gets a fresh AES key and IV");
}

#[test]
fn armor_is_written_like_the_reference() {
    let armored = fixture_json("vectors.json")
        .into_iter()
        .find(|vector| vector["name"] == "armored_boundary")
        .expect("armored vector");
    let text = armored["license"].as_str().expect("text");
    let first_line = text.lines().next().expect("a line");
    let private_key = test_private_key();
    let payload = fixture_json("envelope_vectors.json")[0]["payload"]
        .as_str()
        .expect("payload")
        .to_string();
    let ours = license_key::encode(&payload, &private_key, Some("GitLab Enterprise Edition"))
        .expect("encode");
    assert_eq!(ours.lines().next(), Some(first_line));
    assert_eq!(ours.lines().last(), text.lines().last());
    assert!(
        !ours.ends_with('\n'),
        "the gem ends armor without a newline"
    );
}

#[test]
fn key_rotation_tries_every_configured_key() {
    let text = fixture_json("vectors.json")[0]["license"]
        .as_str()
        .expect("text")
        .to_string();
    let (_, other_public) = crate::support::other_key_pair();
    let keys = [other_public.clone(), test_public_key()];
    assert!(
        license_key::decode(&text, &keys).is_ok(),
        "second key opens it"
    );
    assert_eq!(
        license_key::decode(&text, &keys[..1]).err(),
        Some(DecodeError::KeyUnwrap)
    );
    assert_eq!(
        license_key::decode(&text, &[]).err(),
        Some(DecodeError::KeyUnwrap)
    );
}

#[test]
fn fixtures_match_the_shared_vectors() {
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/license-vectors");
    if !shared.is_dir() {
        eprintln!(
            "note: {} not present; using the project's copy",
            shared.display()
        );
        return;
    }
    for name in [
        "vectors.json",
        "envelope_vectors.json",
        "public_key.pem",
        "private_key.pem",
    ] {
        let ours = std::fs::read(vectors_dir().join(name)).expect("fixture");
        let theirs = std::fs::read(shared.join(name)).expect("shared vector");
        assert!(
            ours == theirs,
            "tests/fixtures/license-vectors/{name} differs from shared/"
        );
    }
}
