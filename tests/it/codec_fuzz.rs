//! Fuzzing the decoder with proptest: raw bytes, mutated real keys, and arbitrary payloads that
//! reach the innermost rules. The property is "never panics; every refusal is typed; anything
//! accepted is a gem-valid license". `FUZZ_CASES` sets the effort (`.ci/run` raises it).

use gitlab_license_server::license_key::{self, DecodeError};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::support::licenses::seal_raw_payload;
use crate::support::{cases, fixture_json, test_public_key, today};

fn seeds() -> Vec<String> {
    fixture_json("vectors.json")
        .into_iter()
        .filter_map(|vector| vector["license"].as_str().map(str::to_string))
        .collect()
}

/// Decoding must finish with a license or a typed error, and an accepted license must obey the
/// invariants every caller relies on.
fn check(input: &[u8]) -> Result<(), TestCaseError> {
    match license_key::decode(input, &[test_public_key()]) {
        Ok(license) => {
            prop_assert!(!license.licensee.is_empty());
            if let Some(expires_at) = license.expires_at {
                prop_assert_eq!(license.expired(today()), Some(today() >= expires_at));
            }
            prop_assert!(!license.plan().trim().is_empty());
        }
        Err(error) => {
            prop_assert!(!error.stage().is_empty());
            prop_assert!(!error.to_string().is_empty());
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip(at, mask)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Mutation::Insert(at, byte)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        let len = bytes.len().max(1);
        match *mutation {
            Mutation::Flip(at, mask) => {
                if let Some(byte) = bytes.get_mut(at % len) {
                    *byte ^= mask;
                }
            }
            Mutation::Insert(at, byte) => bytes.insert(at % (bytes.len() + 1), byte),
            Mutation::Delete(at) => {
                if !bytes.is_empty() {
                    bytes.remove(at % len);
                }
            }
            Mutation::Truncate(at) => bytes.truncate(at % len),
        }
    }
    bytes
}

/// JSON values shaped like payloads: the known keys with values of every type.
fn payload_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just("2025-01-01".to_string()),
            Just("2035-13-01".to_string()),
            Just("premium".to_string()),
            ".{0,12}",
        ]
        .prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("quantity".to_string()),
                    Just("started_on".to_string()),
                    Just("Name".to_string()),
                    "[a-z_]{1,8}"
                ],
                inner,
                0..4
            )
            .prop_map(|map| json!(map)),
        ]
    });
    let keys = prop_oneof![
        Just("version"),
        Just("licensee"),
        Just("issued_at"),
        Just("expires_at"),
        Just("notify_admins_at"),
        Just("last_synced_at"),
        Just("cloud_licensing_enabled"),
        Just("offline_cloud_licensing_enabled"),
        Just("restrictions"),
    ];
    let restrictions = proptest::collection::btree_map(
        prop_oneof![
            Just("plan"),
            Just("active_user_count"),
            Just("add_ons"),
            Just("add_on_products"),
            Just("trial"),
            Just("previous_user_count"),
            Just("trueup_quantity"),
            Just("trueup_from"),
        ],
        value.clone(),
        0..5,
    )
    .prop_map(|map| json!(map));
    (
        proptest::collection::btree_map(keys, value, 0..7),
        proptest::option::of(restrictions),
        any::<bool>(),
    )
        .prop_map(|(mut fields, restrictions, well_formed_core)| {
            if well_formed_core {
                fields.insert("licensee", json!({"Name": "Fuzz"}));
                fields.insert("issued_at", json!("2025-01-01"));
                fields.insert("expires_at", json!("2030-01-01"));
                fields.remove("version");
            }
            if let Some(restrictions) = restrictions {
                fields.insert("restrictions", restrictions);
            }
            json!(fields)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(input in proptest::collection::vec(any::<u8>(), 0..4096)) {
        check(&input)?;
    }

    #[test]
    fn mutated_real_keys_never_panic(seed in any::<prop::sample::Index>(), mutations in proptest::collection::vec(mutation(), 1..6)) {
        let seeds = seeds();
        let input = apply(seeds[seed.index(seeds.len())].clone().into_bytes(), &mutations);
        check(&input)?;
    }

    #[test]
    fn arbitrary_payloads_never_panic(payload in payload_value()) {
        let text = seal_raw_payload(payload.to_string().as_bytes());
        let outcome = license_key::decode(&text, &[test_public_key()]);
        // Sealed with the right key: any refusal must come from the payload stages.
        if let Err(error) = &outcome {
            prop_assert!(
                matches!(error, DecodeError::PayloadJson | DecodeError::UnsupportedVersion(_) | DecodeError::Validation(_)),
                "{:?}", error
            );
        }
        check(text.as_bytes())?;
    }

    #[test]
    fn arbitrary_payload_bytes_never_panic(payload in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(seal_raw_payload(&payload).as_bytes())?;
    }
}
