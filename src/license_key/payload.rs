//! The decrypted payload: the gem's attribute rules (`load_attributes`) and validity (`valid?`),
//! and the typed view of it that the rest of the server reads.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset, NaiveDate};
use serde::Serialize;
use serde_json::{Map, Value};

use super::dates::{parse_date, parse_date_time};
use super::DecodeError;

/// What a license says when it names no plan.
pub const DEFAULT_PLAN: &str = "starter";

/// Why a payload that decrypted is still not a license.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("`licensee` must be a non-empty object")]
    Licensee,
    #[error("`issued_at` (the start date) is missing or not a date")]
    StartsAt,
    #[error("`expires_at` is missing or not a date")]
    ExpiresAt,
    #[error("`{0}` is not a date")]
    NotADate(&'static str),
    #[error("`{0}` is not a date and time")]
    NotADateTime(&'static str),
    #[error("`restrictions` must be an object")]
    Restrictions,
    #[error("an offline cloud license must also enable cloud licensing")]
    OfflineWithoutCloud,
    #[error("`restrictions.{0}` must be a whole number of at least 0")]
    NotACount(&'static str),
}

/// One purchase of an add-on product such as GitLab Duo, from `restrictions.add_on_products`,
/// read as GitLab reads it (`license_add_ons/info.rb`): the quantity with Ruby's `to_i`, a date
/// that does not parse as none, a purchase reference as given — never a reason to refuse the
/// key. Entries with a quantity of 0 or less count for nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddOnProduct {
    pub quantity: i64,
    pub started_on: Option<NaiveDate>,
    pub expires_on: Option<NaiveDate>,
    pub purchase_xid: Option<String>,
    pub trial: bool,
}

/// The `restrictions` object, with the keys GitLab reads typed and every key kept in `raw`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Restrictions {
    pub raw: Map<String, Value>,
    /// `plan`, or `starter` when absent or blank.
    pub plan: String,
    /// `active_user_count`: the seats; `None` means no seat limit.
    pub active_user_count: Option<u64>,
    pub add_ons: Map<String, Value>,
    pub add_on_products: BTreeMap<String, Vec<AddOnProduct>>,
    pub trial: bool,
    pub previous_user_count: Option<u64>,
    pub trueup_quantity: Option<u64>,
    /// Kept as text: the upload check falls back to other dates when these do not parse.
    pub trueup_from: Option<String>,
    pub trueup_to: Option<String>,
    pub trueup_period_seat_count: Option<u64>,
    pub reconciliation_completed: bool,
    pub subscription_name: Option<String>,
}

impl Restrictions {
    /// What the API shows as `user_limit`: the seats, `0` without the key, `null` when the key
    /// is present with a null value (as Ruby would show it).
    pub fn user_limit(&self) -> Value {
        match self.raw.get("active_user_count") {
            None => Value::from(0),
            Some(Value::Null) => Value::Null,
            Some(_) => self.active_user_count.map_or(Value::Null, Value::from),
        }
    }
}

/// A decoded, gem-valid license.
#[derive(Debug, Clone, PartialEq)]
pub struct License {
    /// The payload object exactly as decrypted, unknown keys included.
    pub payload: Map<String, Value>,
    pub licensee: Map<String, Value>,
    /// `issued_at` in the payload.
    pub starts_at: NaiveDate,
    pub expires_at: Option<NaiveDate>,
    pub notify_admins_at: Option<NaiveDate>,
    pub notify_users_at: Option<NaiveDate>,
    pub block_changes_at: Option<NaiveDate>,
    pub last_synced_at: Option<DateTime<FixedOffset>>,
    pub next_sync_at: Option<DateTime<FixedOffset>>,
    pub activated_at: Option<DateTime<FixedOffset>>,
    pub cloud_licensing_enabled: bool,
    pub offline_cloud_licensing_enabled: bool,
    pub auto_renew_enabled: bool,
    pub seat_reconciliation_enabled: bool,
    pub operational_metrics_enabled: bool,
    pub generated_from_customers_dot: bool,
    pub generated_from_cancellation: bool,
    pub restrictions: Restrictions,
}

impl License {
    /// The gem's `expired?`: `today >= expires_at`; `None` for a license that never expires.
    pub fn expired(&self, today: NaiveDate) -> Option<bool> {
        self.expires_at.map(|expires_at| today >= expires_at)
    }

    /// `starts_at <= today`.
    pub fn started(&self, today: NaiveDate) -> bool {
        self.starts_at <= today
    }

    /// The plan name GitLab shows.
    pub fn plan(&self) -> &str {
        &self.restrictions.plan
    }

    /// A licensee field (`Name`, `Email`, `Company`) as text, empty when absent.
    pub fn licensee_field(&self, field: &str) -> &str {
        self.licensee
            .get(field)
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// Cloud licenses that sync online (not offline cloud licenses).
    pub fn online_cloud(&self) -> bool {
        self.cloud_licensing_enabled && !self.offline_cloud_licensing_enabled
    }
}

/// Parses the decrypted payload text.
pub fn parse(payload: &[u8]) -> Result<License, DecodeError> {
    let value: Value = serde_json::from_slice(payload).map_err(|_| DecodeError::PayloadJson)?;
    let Value::Object(payload) = value else {
        return Err(DecodeError::PayloadJson);
    };
    check_version(payload.get("version"))?;
    from_attributes(payload).map_err(DecodeError::Validation)
}

/// `version` absent (or `nil`/`false`, which Ruby's `|| 1` turns into 1) or equal to 1.
fn check_version(version: Option<&Value>) -> Result<(), DecodeError> {
    match version {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(()),
        Some(Value::Number(number)) if number.as_f64() == Some(1.0) => Ok(()),
        Some(other) => Err(DecodeError::UnsupportedVersion(other.to_string())),
    }
}

/// A date attribute as the gem loads it: strings go through `Date.parse` (failure = absent),
/// `null`/`false` are absent, and any other JSON value is kept and then fails `valid?`.
fn date_attribute(
    payload: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<NaiveDate>, ValidationError> {
    match payload.get(key) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(None),
        Some(Value::String(text)) => Ok(parse_date(text)),
        Some(_) => Err(ValidationError::NotADate(key)),
    }
}

fn date_time_attribute(
    payload: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<DateTime<FixedOffset>>, ValidationError> {
    match payload.get(key) {
        None | Some(Value::Null) | Some(Value::Bool(false)) => Ok(None),
        Some(Value::String(text)) => Ok(parse_date_time(text)),
        Some(_) => Err(ValidationError::NotADateTime(key)),
    }
}

/// Only JSON `true` turns a flag on (the gem compares with `== true`).
fn flag(map: &Map<String, Value>, key: &str) -> bool {
    map.get(key) == Some(&Value::Bool(true))
}

/// Ruby truthiness, for restriction flags read as `if restrictions[:trial]`.
fn truthy(map: &Map<String, Value>, key: &str) -> bool {
    !matches!(
        map.get(key),
        None | Some(Value::Null) | Some(Value::Bool(false))
    )
}

/// GitLab team members' licenses may omit `expires_at`.
fn gitlab_team_member_license(licensee: &Map<String, Value>) -> bool {
    let text = |key: &str| {
        licensee
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let company = text("Company").to_lowercase();
    let email = text("Email");
    company.contains("gitlab")
        && (email.ends_with("@gitlab.com") || email.ends_with("@jihulab.com"))
}

fn from_attributes(payload: Map<String, Value>) -> Result<License, ValidationError> {
    let licensee = match payload.get("licensee") {
        Some(Value::Object(licensee)) if !licensee.is_empty() => licensee.clone(),
        _ => return Err(ValidationError::Licensee),
    };
    let starts_at = date_attribute(&payload, "issued_at")
        .ok()
        .flatten()
        .ok_or(ValidationError::StartsAt)?;
    let expires_at =
        date_attribute(&payload, "expires_at").map_err(|_| ValidationError::ExpiresAt)?;
    if expires_at.is_none() && !gitlab_team_member_license(&licensee) {
        return Err(ValidationError::ExpiresAt);
    }
    let cloud_licensing_enabled = flag(&payload, "cloud_licensing_enabled");
    let offline_cloud_licensing_enabled = flag(&payload, "offline_cloud_licensing_enabled");
    if offline_cloud_licensing_enabled && !cloud_licensing_enabled {
        return Err(ValidationError::OfflineWithoutCloud);
    }
    let restrictions = match payload.get("restrictions") {
        None | Some(Value::Null) => Restrictions::default_plan(),
        Some(Value::Object(raw)) => Restrictions::parse(raw.clone())?,
        // The gem ignores a non-object value when loading, so `valid?` never sees it.
        Some(_) => Restrictions::default_plan(),
    };
    Ok(License {
        licensee,
        starts_at,
        expires_at,
        notify_admins_at: date_attribute(&payload, "notify_admins_at")?,
        notify_users_at: date_attribute(&payload, "notify_users_at")?,
        block_changes_at: date_attribute(&payload, "block_changes_at")?,
        last_synced_at: date_time_attribute(&payload, "last_synced_at")?,
        next_sync_at: date_time_attribute(&payload, "next_sync_at")?,
        activated_at: date_time_attribute(&payload, "activated_at")?,
        cloud_licensing_enabled,
        offline_cloud_licensing_enabled,
        auto_renew_enabled: flag(&payload, "auto_renew_enabled"),
        seat_reconciliation_enabled: flag(&payload, "seat_reconciliation_enabled"),
        operational_metrics_enabled: flag(&payload, "operational_metrics_enabled"),
        generated_from_customers_dot: flag(&payload, "generated_from_customers_dot"),
        generated_from_cancellation: flag(&payload, "generated_from_cancellation"),
        restrictions,
        payload,
    })
}

impl Restrictions {
    fn default_plan() -> Self {
        Self {
            plan: DEFAULT_PLAN.into(),
            ..Self::default()
        }
    }

    fn parse(raw: Map<String, Value>) -> Result<Self, ValidationError> {
        // GitLab would crash later on a count that is not a number; refusing the key up front
        // is the clearer answer.
        let count = |key: &'static str| match raw.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_u64()
                .map(Some)
                .ok_or(ValidationError::NotACount(key)),
        };
        let text = |key: &str| match raw.get(key) {
            Some(Value::String(text)) => Some(text.clone()),
            Some(Value::Number(number)) => Some(number.to_string()),
            _ => None,
        };
        let plan = text("plan")
            .filter(|plan| !plan.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_PLAN.into());
        let add_ons = match raw.get("add_ons") {
            Some(Value::Object(add_ons)) => add_ons.clone(),
            _ => Map::new(),
        };
        Ok(Self {
            plan,
            active_user_count: count("active_user_count")?,
            add_ons,
            add_on_products: parse_add_on_products(raw.get("add_on_products")),
            trial: truthy(&raw, "trial"),
            previous_user_count: count("previous_user_count")?,
            trueup_quantity: count("trueup_quantity")?,
            trueup_from: text("trueup_from"),
            trueup_to: text("trueup_to"),
            trueup_period_seat_count: count("trueup_period_seat_count")?,
            reconciliation_completed: truthy(&raw, "reconciliation_completed"),
            subscription_name: text("subscription_name"),
            raw,
        })
    }
}

fn parse_add_on_products(value: Option<&Value>) -> BTreeMap<String, Vec<AddOnProduct>> {
    let Some(Value::Object(products)) = value else {
        return BTreeMap::new();
    };
    products
        .iter()
        .filter_map(|(name, purchases)| {
            let Value::Array(purchases) = purchases else {
                return None;
            };
            let list = purchases
                .iter()
                .filter_map(Value::as_object)
                .map(|purchase| AddOnProduct {
                    quantity: ruby_to_i(purchase.get("quantity")),
                    started_on: lenient_date(purchase.get("started_on")),
                    expires_on: lenient_date(purchase.get("expires_on")),
                    purchase_xid: match purchase.get("purchase_xid") {
                        Some(Value::String(xid)) => Some(xid.clone()),
                        Some(Value::Number(xid)) => Some(xid.to_string()),
                        _ => None,
                    },
                    // GitLab compares with `true` itself.
                    trial: purchase.get("trial") == Some(&Value::Bool(true)),
                })
                .collect();
            Some((name.clone(), list))
        })
        .collect()
}

/// Ruby's `to_i`: integers as they are, floats truncated, text by its leading digits (with
/// an optional sign and underscores between digits), anything else 0.
fn ruby_to_i(value: Option<&Value>) -> i64 {
    match value {
        Some(Value::Number(number)) => number
            .as_i64()
            .or_else(|| {
                number
                    .as_u64()
                    .map(|n| i64::try_from(n).unwrap_or(i64::MAX))
            })
            .or_else(|| number.as_f64().map(|n| n.trunc() as i64))
            .unwrap_or(0),
        Some(Value::String(text)) => {
            let text = text.trim_start();
            let (negative, digits) = match text.as_bytes().first() {
                Some(b'-') => (true, &text[1..]),
                Some(b'+') => (false, &text[1..]),
                _ => (false, text),
            };
            let mut value: i64 = 0;
            let mut previous_digit = false;
            for byte in digits.bytes() {
                match byte {
                    b'0'..=b'9' => {
                        value = value
                            .saturating_mul(10)
                            .saturating_add(i64::from(byte - b'0'));
                        previous_digit = true;
                    }
                    b'_' if previous_digit => previous_digit = false,
                    _ => break,
                }
            }
            if negative {
                -value
            } else {
                value
            }
        }
        _ => 0,
    }
}

/// `date&.to_date`, with an unparseable date as none (GitLab rescues `Date::Error`).
fn lenient_date(value: Option<&Value>) -> Option<NaiveDate> {
    value.and_then(Value::as_str).and_then(parse_date)
}

#[cfg(test)]
mod lenient_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities_read_like_ruby_to_i() {
        for (value, expected) in [
            (json!(5), 5),
            (json!(3.9), 3),
            (json!("7"), 7),
            (json!(" 12 seats"), 12),
            (json!("1_000"), 1000),
            (json!("-2"), -2),
            (json!("seats"), 0),
            (json!(null), 0),
            (json!(true), 0),
            (json!([1]), 0),
        ] {
            assert_eq!(ruby_to_i(Some(&value)), expected, "{value}");
        }
        assert_eq!(ruby_to_i(None), 0);
    }

    #[test]
    fn odd_add_on_products_are_read_not_refused() {
        let products = parse_add_on_products(Some(&json!({
            "duo_pro": [
                {"quantity": "4", "started_on": "not a date", "expires_on": "2030-01-01", "trial": "true"},
                "not an object",
                {"quantity": 2, "purchase_xid": 77, "trial": true}
            ],
            "duo_enterprise": "not a list"
        })));
        let duo_pro = &products["duo_pro"];
        assert_eq!(duo_pro.len(), 2);
        assert_eq!(duo_pro[0].quantity, 4);
        assert_eq!(duo_pro[0].started_on, None);
        assert!(!duo_pro[0].trial);
        assert_eq!(duo_pro[1].purchase_xid.as_deref(), Some("77"));
        assert!(duo_pro[1].trial);
        assert!(!products.contains_key("duo_enterprise"));
        assert!(parse_add_on_products(Some(&json!(["x"]))).is_empty());
    }
}
