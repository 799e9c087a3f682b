//! GitLab's application settings that this server acts on (`GET`/`PUT
//! /api/v4/application/settings`), with GitLab's defaults and model validations
//! (`app/models/application_setting.rb`, `ee/app/models/ee/application_setting.rb`), and the
//! seat controls GitLab sets only from its admin form (`seat_control`,
//! `new_user_signups_cap`), kept beside them. Pure: the store keeps the values as one JSON
//! document and the services apply them.

use crate::domain::tokens::TokenRules;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// GitLab's `SEAT_CONTROL_*`: off, a user cap, or blocking overages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeatControl {
    #[default]
    Off,
    UserCap,
    BlockOverages,
}

impl SeatControl {
    /// GitLab's integer for it (0, 1, 2).
    pub fn number(self) -> i64 {
        match self {
            Self::Off => 0,
            Self::UserCap => 1,
            Self::BlockOverages => 2,
        }
    }

    pub fn from_number(number: i64) -> Option<Self> {
        Some(match number {
            0 => Self::Off,
            1 => Self::UserCap,
            2 => Self::BlockOverages,
            _ => return None,
        })
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "off" => Self::Off,
            "user_cap" => Self::UserCap,
            "block_overages" => Self::BlockOverages,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::UserCap => "user_cap",
            Self::BlockOverages => "block_overages",
        }
    }
}

/// Whether a license plan lets the seat controls act (GitLab's `seat_control` feature:
/// Premium and Ultimate).
pub fn seat_controls_licensed(plan: &str) -> bool {
    matches!(plan, "premium" | "ultimate")
}

/// GitLab's limit on a token's lifetime when no setting lowers it (`MAX_PERSONAL_ACCESS_TOKEN_LIFETIME_IN_DAYS`).
pub const MAX_TOKEN_LIFETIME_DAYS: i64 = 365;
/// The shortest dormancy period GitLab accepts.
pub const MIN_DORMANT_PERIOD_DAYS: i64 = 90;
/// The longest token prefix GitLab accepts.
pub const MAX_PREFIX_LENGTH: usize = 20;

/// The settings, every one with GitLab's default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub require_admin_approval_after_user_signup: bool,
    pub deactivate_dormant_users: bool,
    pub deactivate_dormant_users_period: i64,
    pub personal_access_token_prefix: String,
    pub require_personal_access_token_expiry: bool,
    pub max_personal_access_token_lifetime: Option<i64>,
    pub throttle_authenticated_api_enabled: bool,
    pub throttle_authenticated_api_requests_per_period: i64,
    pub throttle_authenticated_api_period_in_seconds: i64,
    pub throttle_unauthenticated_api_enabled: bool,
    pub throttle_unauthenticated_api_requests_per_period: i64,
    pub throttle_unauthenticated_api_period_in_seconds: i64,
    /// `GET /users/:id`'s own limit for non-administrators, per 10 minutes (0: none).
    pub users_get_by_id_limit: i64,
    pub users_get_by_id_limit_allowlist: Vec<String>,
    /// Not in GitLab's REST API: its admin form only (and this server's extension).
    pub seat_control: SeatControl,
    pub new_user_signups_cap: Option<i64>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            require_admin_approval_after_user_signup: true,
            deactivate_dormant_users: false,
            deactivate_dormant_users_period: 90,
            personal_access_token_prefix: "glpat-".into(),
            require_personal_access_token_expiry: true,
            max_personal_access_token_lifetime: None,
            throttle_authenticated_api_enabled: false,
            throttle_authenticated_api_requests_per_period: 7200,
            throttle_authenticated_api_period_in_seconds: 3600,
            throttle_unauthenticated_api_enabled: false,
            throttle_unauthenticated_api_requests_per_period: 3600,
            throttle_unauthenticated_api_period_in_seconds: 3600,
            users_get_by_id_limit: 300,
            users_get_by_id_limit_allowlist: Vec::new(),
            seat_control: SeatControl::Off,
            new_user_signups_cap: None,
        }
    }
}

/// The type Grape coerces a key's value to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Boolean,
    Integer,
    String,
    /// An array of strings (or one comma-separated string).
    Strings,
}

/// The keys `PUT /application/settings` takes and `GET` shows, with their types.
pub const API_KEYS: &[(&str, Kind)] = &[
    ("require_admin_approval_after_user_signup", Kind::Boolean),
    ("deactivate_dormant_users", Kind::Boolean),
    ("deactivate_dormant_users_period", Kind::Integer),
    ("personal_access_token_prefix", Kind::String),
    ("require_personal_access_token_expiry", Kind::Boolean),
    ("max_personal_access_token_lifetime", Kind::Integer),
    ("throttle_authenticated_api_enabled", Kind::Boolean),
    (
        "throttle_authenticated_api_requests_per_period",
        Kind::Integer,
    ),
    (
        "throttle_authenticated_api_period_in_seconds",
        Kind::Integer,
    ),
    ("throttle_unauthenticated_api_enabled", Kind::Boolean),
    (
        "throttle_unauthenticated_api_requests_per_period",
        Kind::Integer,
    ),
    (
        "throttle_unauthenticated_api_period_in_seconds",
        Kind::Integer,
    ),
    ("users_get_by_id_limit", Kind::Integer),
    ("users_get_by_id_limit_allowlist", Kind::Strings),
];

/// A value as the request gave it, coerced to its key's type (`None`: set to null/blank).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Given {
    Boolean(bool),
    Integer(Option<i64>),
    String(String),
    Strings(Vec<String>),
}

/// A model validation's failures: attribute → messages, in GitLab's order.
pub type ModelErrors = Vec<(&'static str, Vec<String>)>;

fn push(errors: &mut ModelErrors, key: &'static str, message: String) {
    match errors.iter_mut().find(|(name, _)| *name == key) {
        Some((_, messages)) => messages.push(message),
        None => errors.push((key, vec![message])),
    }
}

impl Settings {
    /// These settings with `changes` applied, or GitLab's model errors (nothing applied).
    pub fn with(&self, changes: &[(&'static str, Given)]) -> Result<Settings, ModelErrors> {
        let mut next = self.clone();
        for (key, value) in changes {
            next.set(key, value.clone());
        }
        let errors = next.validate();
        if errors.is_empty() {
            Ok(next)
        } else {
            Err(errors)
        }
    }

    fn set(&mut self, key: &str, value: Given) {
        let flag = |value: &Given| matches!(value, Given::Boolean(true));
        let number = |value: &Given| match value {
            Given::Integer(number) => *number,
            _ => None,
        };
        match key {
            "require_admin_approval_after_user_signup" => {
                self.require_admin_approval_after_user_signup = flag(&value)
            }
            "deactivate_dormant_users" => self.deactivate_dormant_users = flag(&value),
            // A blank period keeps the column's NOT NULL: the validation below names it.
            "deactivate_dormant_users_period" => {
                self.deactivate_dormant_users_period = number(&value).unwrap_or(i64::MIN)
            }
            "personal_access_token_prefix" => {
                if let Given::String(text) = value {
                    self.personal_access_token_prefix = text;
                }
            }
            "require_personal_access_token_expiry" => {
                self.require_personal_access_token_expiry = flag(&value)
            }
            "max_personal_access_token_lifetime" => {
                self.max_personal_access_token_lifetime = number(&value)
            }
            "throttle_authenticated_api_enabled" => {
                self.throttle_authenticated_api_enabled = flag(&value)
            }
            "throttle_authenticated_api_requests_per_period" => {
                self.throttle_authenticated_api_requests_per_period =
                    number(&value).unwrap_or(i64::MIN)
            }
            "throttle_authenticated_api_period_in_seconds" => {
                self.throttle_authenticated_api_period_in_seconds =
                    number(&value).unwrap_or(i64::MIN)
            }
            "throttle_unauthenticated_api_enabled" => {
                self.throttle_unauthenticated_api_enabled = flag(&value)
            }
            "throttle_unauthenticated_api_requests_per_period" => {
                self.throttle_unauthenticated_api_requests_per_period =
                    number(&value).unwrap_or(i64::MIN)
            }
            "throttle_unauthenticated_api_period_in_seconds" => {
                self.throttle_unauthenticated_api_period_in_seconds =
                    number(&value).unwrap_or(i64::MIN)
            }
            "users_get_by_id_limit" => {
                self.users_get_by_id_limit = number(&value).unwrap_or(i64::MIN)
            }
            "users_get_by_id_limit_allowlist" => {
                if let Given::Strings(names) = value {
                    self.users_get_by_id_limit_allowlist = names;
                }
            }
            _ => {}
        }
    }

    /// GitLab's validations of these keys, in its messages.
    pub fn validate(&self) -> ModelErrors {
        let mut errors = ModelErrors::new();
        if self.deactivate_dormant_users {
            let period = self.deactivate_dormant_users_period;
            if period == i64::MIN {
                push(
                    &mut errors,
                    "deactivate_dormant_users_period",
                    "can't be blank".into(),
                );
            } else if period < MIN_DORMANT_PERIOD_DAYS {
                push(
                    &mut errors,
                    "deactivate_dormant_users_period",
                    format!("'{period}' days of inactivity must be greater than or equal to {MIN_DORMANT_PERIOD_DAYS}"),
                );
            }
        } else if self.deactivate_dormant_users_period == i64::MIN {
            // Not validated while off (GitLab's `if: :deactivate_dormant_users?`), but the
            // column cannot be empty: the default stays.
            push(
                &mut errors,
                "deactivate_dormant_users_period",
                "can't be blank".into(),
            );
        }
        let prefix = &self.personal_access_token_prefix;
        if !prefix.is_empty() {
            if !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_+=/@:.-".contains(&b))
            {
                push(
                    &mut errors,
                    "personal_access_token_prefix",
                    "can contain only letters of the Base64 alphabet (RFC4648) with the addition of '@', ':' and '.'".into(),
                );
            }
            if prefix.chars().count() > MAX_PREFIX_LENGTH {
                push(
                    &mut errors,
                    "personal_access_token_prefix",
                    format!("is too long (maximum is {MAX_PREFIX_LENGTH} characters)"),
                );
            }
        }
        if let Some(days) = self.max_personal_access_token_lifetime {
            if days <= 0 {
                push(
                    &mut errors,
                    "max_personal_access_token_lifetime",
                    "must be greater than 0".into(),
                );
            } else if days > MAX_TOKEN_LIFETIME_DAYS {
                push(
                    &mut errors,
                    "max_personal_access_token_lifetime",
                    format!("must be less than or equal to {MAX_TOKEN_LIFETIME_DAYS}"),
                );
            }
        }
        for (key, value) in [
            (
                "throttle_authenticated_api_requests_per_period",
                self.throttle_authenticated_api_requests_per_period,
            ),
            (
                "throttle_authenticated_api_period_in_seconds",
                self.throttle_authenticated_api_period_in_seconds,
            ),
            (
                "throttle_unauthenticated_api_requests_per_period",
                self.throttle_unauthenticated_api_requests_per_period,
            ),
            (
                "throttle_unauthenticated_api_period_in_seconds",
                self.throttle_unauthenticated_api_period_in_seconds,
            ),
        ] {
            if value == i64::MIN {
                push(&mut errors, key, "is not a number".into());
            } else if value <= 0 {
                push(&mut errors, key, "must be greater than 0".into());
            }
        }
        if self.users_get_by_id_limit == i64::MIN {
            push(
                &mut errors,
                "users_get_by_id_limit",
                "is not a number".into(),
            );
        } else if self.users_get_by_id_limit < 0 {
            push(
                &mut errors,
                "users_get_by_id_limit",
                "must be greater than or equal to 0".into(),
            );
        }
        if self.users_get_by_id_limit_allowlist.len() > 100 {
            push(
                &mut errors,
                "users_get_by_id_limit_allowlist",
                "is too long (maximum is 100 entries)".into(),
            );
        }
        match (self.seat_control, self.new_user_signups_cap) {
            (SeatControl::UserCap, None) => push(
                &mut errors,
                "new_user_signups_cap",
                "is not a number".into(),
            ),
            (SeatControl::UserCap, Some(cap)) if cap <= 0 => push(
                &mut errors,
                "new_user_signups_cap",
                "must be greater than 0".into(),
            ),
            (SeatControl::Off | SeatControl::BlockOverages, Some(_)) => {
                push(&mut errors, "new_user_signups_cap", "must be blank".into())
            }
            _ => {}
        }
        errors
    }

    /// The names of the keys whose values differ between `self` and `other`, in API order.
    pub fn changed_keys(&self, other: &Settings) -> Vec<&'static str> {
        let (Ok(Value::Object(before)), Ok(Value::Object(after))) =
            (serde_json::to_value(self), serde_json::to_value(other))
        else {
            return Vec::new();
        };
        let mut keys: Vec<&'static str> = API_KEYS
            .iter()
            .map(|(key, _)| *key)
            .chain(["seat_control", "new_user_signups_cap"])
            .filter(|key| before.get(*key) != after.get(*key))
            .collect();
        keys.dedup();
        keys
    }

    /// The user cap in force (GitLab's `seat_control_user_cap?` needs a licensed plan: the
    /// caller says whether the license has one).
    pub fn user_cap(&self, licensed: bool) -> Option<i64> {
        (licensed && self.seat_control == SeatControl::UserCap)
            .then_some(self.new_user_signups_cap)
            .flatten()
    }

    /// Whether overages are blocked (`seat_control_block_overages?`).
    pub fn blocks_overages(&self, licensed: bool) -> bool {
        licensed && self.seat_control == SeatControl::BlockOverages
    }

    /// What these settings say about new tokens. `ultimate`: the license has GitLab's
    /// `personal_access_token_expiration_policy` feature, without which
    /// `max_personal_access_token_lifetime` is stored but not enforced.
    pub fn token_rules(&self, ultimate: bool) -> TokenRules {
        TokenRules {
            prefix: self.personal_access_token_prefix.clone(),
            expiry_required: self.require_personal_access_token_expiry,
            max_lifetime_days: self
                .max_personal_access_token_lifetime
                .filter(|_| ultimate)
                .unwrap_or(MAX_TOKEN_LIFETIME_DAYS),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gitlab_defaults() {
        let entity = serde_json::to_value(Settings::default()).expect("json");
        assert_eq!(entity["require_admin_approval_after_user_signup"], true);
        assert_eq!(entity["deactivate_dormant_users"], false);
        assert_eq!(entity["deactivate_dormant_users_period"], 90);
        assert_eq!(entity["personal_access_token_prefix"], "glpat-");
        assert_eq!(entity["require_personal_access_token_expiry"], true);
        assert_eq!(entity["max_personal_access_token_lifetime"], Value::Null);
        assert_eq!(
            entity["throttle_authenticated_api_requests_per_period"],
            7200
        );
        assert_eq!(
            entity["throttle_unauthenticated_api_requests_per_period"],
            3600
        );
        assert_eq!(entity["seat_control"], "off");
    }

    #[test]
    fn gitlab_validations() {
        let settings = Settings::default();
        let errors = settings
            .with(&[
                ("deactivate_dormant_users", Given::Boolean(true)),
                ("deactivate_dormant_users_period", Given::Integer(Some(30))),
            ])
            .expect_err("too short");
        assert_eq!(
            errors,
            vec![(
                "deactivate_dormant_users_period",
                vec!["'30' days of inactivity must be greater than or equal to 90".to_string()]
            )]
        );
        // A short period is not checked while dormant users are not deactivated.
        assert!(settings
            .with(&[("deactivate_dormant_users_period", Given::Integer(Some(30)))])
            .is_ok());
        let errors = settings
            .with(&[
                (
                    "personal_access_token_prefix",
                    Given::String("a prefix that is far too long!".into()),
                ),
                (
                    "throttle_authenticated_api_period_in_seconds",
                    Given::Integer(Some(0)),
                ),
                (
                    "max_personal_access_token_lifetime",
                    Given::Integer(Some(366)),
                ),
            ])
            .expect_err("three");
        let keys: Vec<&str> = errors.iter().map(|(key, _)| *key).collect();
        assert_eq!(
            keys,
            [
                "personal_access_token_prefix",
                "max_personal_access_token_lifetime",
                "throttle_authenticated_api_period_in_seconds"
            ]
        );
        assert_eq!(errors[0].1.len(), 2, "bad characters and too long");
    }

    #[test]
    fn seat_controls() {
        let mut settings = Settings {
            seat_control: SeatControl::UserCap,
            new_user_signups_cap: Some(10),
            ..Settings::default()
        };
        assert!(settings.validate().is_empty());
        assert_eq!(settings.user_cap(true), Some(10));
        assert_eq!(settings.user_cap(false), None, "needs Premium or Ultimate");
        settings.seat_control = SeatControl::BlockOverages;
        assert_eq!(
            settings.validate(),
            vec![("new_user_signups_cap", vec!["must be blank".to_string()])]
        );
        settings.new_user_signups_cap = None;
        assert!(settings.blocks_overages(true));
        assert_eq!(settings.user_cap(true), None);
    }
}
