//! GitLab's scalars and enums as this schema uses them: `Time`, `Date`, the add-on types, the
//! user sorts and states.

use async_graphql::{Enum, InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{DateTime, NaiveDate, Utc};

use crate::store::EligibleOrder;

/// GitLab's `Time` scalar: an ISO 8601 timestamp.
pub struct Time(pub DateTime<Utc>);

#[Scalar(name = "Time")]
impl ScalarType for Time {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => DateTime::parse_from_rfc3339(text)
                .map(|time| Self(time.with_timezone(&Utc)))
                .map_err(|_| {
                    InputValueError::custom(format!("{text:?} is not a valid ISO 8601 time"))
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
    }
}

/// GitLab's `Date` scalar: an ISO 8601 date.
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(Self)
                .map_err(|_| {
                    InputValueError::custom(format!("{text:?} is not a valid ISO 8601 date"))
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

/// Types of add-ons.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "GitlabSubscriptionsAddOnType")]
pub enum AddOnType {
    /// GitLab Duo Core add-on.
    DuoCore,
    /// GitLab Duo Pro add-on.
    CodeSuggestions,
    /// GitLab Duo Enterprise add-on.
    DuoEnterprise,
    /// GitLab Duo with Amazon Q add-on.
    DuoAmazonQ,
}

impl AddOnType {
    /// The internal add-on name.
    pub fn internal_name(self) -> &'static str {
        match self {
            Self::DuoCore => "duo_core",
            Self::CodeSuggestions => "code_suggestions",
            Self::DuoEnterprise => "duo_enterprise",
            Self::DuoAmazonQ => "duo_amazon_q",
        }
    }
}

/// Values for sorting users.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "GitlabSubscriptionsUserSort")]
pub enum UserSort {
    /// Id by ascending order.
    IdAsc,
    /// Id by descending order.
    IdDesc,
    /// Name by ascending order.
    NameAsc,
    /// Name by descending order.
    NameDesc,
    /// Last activity by ascending order.
    LastActivityOnAsc,
    /// Last activity by descending order.
    LastActivityOnDesc,
}

impl UserSort {
    pub fn order(self) -> EligibleOrder {
        match self {
            Self::IdAsc => EligibleOrder::IdAsc,
            Self::IdDesc => EligibleOrder::IdDesc,
            Self::NameAsc => EligibleOrder::NameAsc,
            Self::NameDesc => EligibleOrder::NameDesc,
            Self::LastActivityOnAsc => EligibleOrder::LastActivityAsc,
            Self::LastActivityOnDesc => EligibleOrder::LastActivityDesc,
        }
    }
}

/// Possible states of a user.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(name = "UserState", rename_items = "snake_case")]
pub enum UserState {
    /// User is active and can use the system.
    Active,
    /// User has been blocked by an administrator and cannot use the system.
    Blocked,
    /// User is no longer active and cannot use the system.
    Deactivated,
    /// User is blocked, and their contributions are hidden.
    Banned,
    /// User has been blocked by the system.
    LdapBlocked,
    /// User is blocked and pending approval.
    BlockedPendingApproval,
}

impl UserState {
    pub(super) fn of(state: crate::domain::users::UserState) -> Self {
        use crate::domain::users::UserState as Stored;
        match state {
            Stored::Active => Self::Active,
            Stored::Deactivated => Self::Deactivated,
            Stored::Banned => Self::Banned,
            Stored::LdapBlocked => Self::LdapBlocked,
            Stored::BlockedPendingApproval => Self::BlockedPendingApproval,
            Stored::Blocked => Self::Blocked,
        }
    }
}
