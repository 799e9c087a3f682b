//! What GitLab derives from stored licenses: which one is current, and the fields of the
//! `GitlabLicense` / `GitlabLicenseWithActiveUsers` entities. Pure: the caller brings the rows,
//! the counts and today's date.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Months, NaiveDate, NaiveTime, TimeDelta, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::license_key::{date_text, DecodeError, License};

/// One day's count of billable users (GitLab's `historical_data`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HistoryRow {
    pub recorded_at: DateTime<Utc>,
    pub active_user_count: i64,
}

/// How many of the newest rows GitLab considers when choosing the current license.
pub const CURRENT_LICENSE_WINDOW: i64 = 100;

/// A stored license with its decoded form (decoding is deterministic, so it can be shared).
#[derive(Debug, Clone)]
pub struct StoredLicense {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub decoded: Arc<Result<License, DecodeError>>,
}

impl StoredLicense {
    pub fn license(&self) -> Option<&License> {
        self.decoded.as_ref().as_ref().ok()
    }
}

/// The current license among `newest_first` (§3.1): the newest started, unexpired license not
/// of a cancelled subscription; else the newest started one even if expired; else none.
pub fn current_license(newest_first: &[StoredLicense], today: NaiveDate) -> Option<&StoredLicense> {
    let started: Vec<(&StoredLicense, &License)> = newest_first
        .iter()
        .filter_map(|stored| stored.license().map(|license| (stored, license)))
        .filter(|(_, license)| license.started(today))
        .collect();
    let cancelled: HashSet<&str> = newest_first
        .iter()
        .filter_map(StoredLicense::license)
        .filter(|license| license.online_cloud() && license.generated_from_cancellation)
        .filter_map(|license| license.restrictions.subscription_name.as_deref())
        .collect();
    started
        .iter()
        .find(|(_, license)| {
            license.expired(today) != Some(true)
                && !license
                    .restrictions
                    .subscription_name
                    .as_deref()
                    .is_some_and(|name| cancelled.contains(name))
        })
        .or_else(|| started.first())
        .map(|(stored, _)| *stored)
}

pub fn start_of_day(date: NaiveDate) -> DateTime<Utc> {
    date.and_time(NaiveTime::MIN).and_utc()
}

/// The last representable instant of a day (Rails' `end_of_day`).
pub fn end_of_day(date: NaiveDate) -> DateTime<Utc> {
    start_of_day(date) + TimeDelta::days(1) - TimeDelta::nanoseconds(1)
}

/// `date - 1.year` as Ruby computes it (29 February becomes 28 February).
pub fn one_year_before(date: NaiveDate) -> NaiveDate {
    date.checked_sub_months(Months::new(12)).unwrap_or(date)
}

/// The span over which a license's `historical_max` is taken: its start (or a year ago) to the
/// end of its expiry day (or of today).
pub fn license_term(license: &License, today: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        start_of_day(license.starts_at),
        end_of_day(license.expires_at.unwrap_or(today)),
    )
}

/// The instance-wide numbers an entity needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsageFigures {
    /// `historical_max` over the license's term.
    pub historical_max: i64,
    /// The newest billable-users measurement (or a live count when there is none).
    pub daily_billable_users: i64,
    /// `GET /licenses` passes the current license's daily count for every row.
    pub current_active_users: Option<i64>,
}

/// The JSON of a license, in GitLab's field order.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LicenseEntity {
    pub id: i64,
    pub plan: String,
    pub created_at: String,
    pub starts_at: String,
    pub expires_at: Option<String>,
    pub historical_max: i64,
    pub maximum_user_count: i64,
    /// The licensee as the key names it (`Name`, `Email`, `Company`, …).
    #[schema(value_type = Object, example = json!({"Name": "Ada Lovelace", "Email": "ada@example.com", "Company": "Example"}))]
    pub licensee: Map<String, Value>,
    /// Add-on seat counts by add-on, e.g. `GitLab_DuoEnterprise`.
    #[schema(value_type = Object, example = json!({"GitLab_DuoEnterprise": 10}))]
    pub add_ons: Map<String, Value>,
    pub expired: Option<bool>,
    pub overage: i64,
    /// The seats the license grants; `null` for a license without a limit.
    #[schema(value_type = Option<i64>)]
    pub user_limit: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active_users: Option<i64>,
}

/// GitLab's timestamp format: UTC with milliseconds and `Z`.
pub fn timestamp_text(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Builds the entity; `with_active_users` selects `GitlabLicenseWithActiveUsers`.
pub fn license_entity(
    id: i64,
    created_at: DateTime<Utc>,
    license: &License,
    figures: UsageFigures,
    today: NaiveDate,
    with_active_users: bool,
) -> LicenseEntity {
    let maximum_user_count = figures.historical_max.max(figures.daily_billable_users);
    let expired = license.expired(today);
    let overage_of = |users: i64| match license.restrictions.active_user_count {
        None => 0,
        Some(seats) => (users - i64::try_from(seats).unwrap_or(i64::MAX)).max(0),
    };
    let overage = if expired == Some(true) {
        overage_of(maximum_user_count)
    } else {
        overage_of(
            figures
                .current_active_users
                .unwrap_or(figures.daily_billable_users),
        )
    };
    LicenseEntity {
        id,
        plan: license.plan().to_string(),
        created_at: timestamp_text(created_at),
        starts_at: date_text(license.starts_at),
        expires_at: license.expires_at.map(date_text),
        historical_max: figures.historical_max,
        maximum_user_count,
        licensee: license.licensee.clone(),
        add_ons: license.restrictions.add_ons.clone(),
        expired,
        overage,
        user_limit: license.restrictions.user_limit(),
        active_users: with_active_users.then_some(figures.daily_billable_users),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn end_of_day_is_the_last_instant() {
        let day = NaiveDate::from_ymd_opt(2025, 3, 1).expect("date");
        assert_eq!(
            end_of_day(day).to_rfc3339(),
            "2025-03-01T23:59:59.999999999+00:00"
        );
    }

    #[test]
    fn one_year_before_leap_day() {
        let leap = NaiveDate::from_ymd_opt(2024, 2, 29).expect("date");
        assert_eq!(
            one_year_before(leap),
            NaiveDate::from_ymd_opt(2023, 2, 28).expect("date")
        );
    }

    #[test]
    fn timestamps_have_milliseconds() {
        let at = DateTime::parse_from_rfc3339("2018-02-27T23:21:58.674123Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(timestamp_text(at), "2018-02-27T23:21:58.674Z");
    }
}
