//! Round trips: what is issued decodes to exactly what was asked for.

use chrono::{Duration, NaiveDate};
use gitlab_license_server::license_key::{self, date_text, NewLicense};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

use crate::support::{cases, test_private_key, test_public_key};

fn day() -> impl Strategy<Value = NaiveDate> {
    // 1990-01-01 plus up to ~110 years.
    (0i64..40_000).prop_map(|offset| {
        NaiveDate::from_ymd_opt(1990, 1, 1).expect("date") + Duration::days(offset)
    })
}

fn licensee_text() -> impl Strategy<Value = String> {
    // Printable text including quotes, backslashes, non-ASCII letters and emoji.
    proptest::string::string_regex("[ -~äöüßÆø€😀\"\\\\]{1,40}").expect("regex")
}

fn add_on_name() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[A-Za-z][A-Za-z0-9_]{0,20}").expect("regex")
}

prop_compose! {
    fn new_license()(
        name in licensee_text(),
        email in licensee_text(),
        company in licensee_text(),
        plan in prop_oneof![Just("starter"), Just("premium"), Just("ultimate")],
        seats in 0u64..1_000_000,
        starts in day(),
        length in 1i64..4000,
        add_ons in proptest::collection::btree_map(add_on_name(), 0u64..100, 0..4),
        duo in proptest::option::of(1u64..10_000),
        trial in any::<bool>(),
    ) -> NewLicense {
        let mut licensee = Map::new();
        licensee.insert("Name".into(), json!(name));
        licensee.insert("Email".into(), json!(email));
        licensee.insert("Company".into(), json!(company));
        let expires = starts + Duration::days(length);
        let mut restrictions = Map::new();
        restrictions.insert("active_user_count".into(), json!(seats));
        restrictions.insert("plan".into(), json!(plan));
        if !add_ons.is_empty() {
            restrictions.insert("add_ons".into(), json!(add_ons));
        }
        if let Some(quantity) = duo {
            restrictions.insert("add_on_products".into(), json!({"duo_pro": [{
                "quantity": quantity,
                "started_on": date_text(starts),
                "expires_on": date_text(expires),
                "purchase_xid": "A-S00000001",
                "trial": trial,
            }]}));
        }
        if trial {
            restrictions.insert("trial".into(), json!(true));
        }
        NewLicense { licensee, starts_at: starts, expires_at: Some(expires), restrictions, cloud_licensing_enabled: false, offline_cloud_licensing_enabled: false }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn issued_licenses_decode_to_what_was_asked(new in new_license(), armor in proptest::option::of("[A-Za-z ]{1,30}")) {
        let text = license_key::encode(&new.to_payload_json(), &test_private_key(), armor.as_deref())
            .expect("encode");
        let license = license_key::decode(&text, &[test_public_key()]).expect("decode");
        prop_assert_eq!(&license.licensee, &new.licensee);
        prop_assert_eq!(license.starts_at, new.starts_at);
        prop_assert_eq!(license.expires_at, new.expires_at);
        prop_assert_eq!(&license.restrictions.raw, &new.restrictions);
        prop_assert_eq!(license.plan(), new.restrictions["plan"].as_str().unwrap_or_default());
        prop_assert_eq!(license.restrictions.active_user_count, new.restrictions["active_user_count"].as_u64());
        prop_assert_eq!(license.restrictions.trial, new.restrictions.contains_key("trial"));
        let expected_add_ons = new.restrictions.get("add_ons").cloned().unwrap_or(json!({}));
        prop_assert_eq!(Value::Object(license.restrictions.add_ons.clone()), expected_add_ons);
        if let Some(products) = new.restrictions.get("add_on_products") {
            prop_assert_eq!(json!(license.restrictions.add_on_products), products.clone());
        }
    }
}
