//! `POST /license` validations (§4), in GitLab's order, with its exact messages.
//!
//! The checks need `historical_max` over periods that depend on the license, so validation is
//! two steps: [`history_needed`] names the periods, the caller measures them, and [`validate`]
//! decides.

use chrono::{DateTime, NaiveDate, Utc};

use super::licenses::{end_of_day, one_year_before, start_of_day};
use super::text::{count_with_noun, number_with_delimiter};
use crate::license_key::{dates::parse_date, License};

pub const EXPIRED_MESSAGE: &str = "This license has already expired.";
const SALES_URL: &str = "https://about.gitlab.com/sales/";

/// The 400 message for a key that does not decode, naming the configured issuer.
pub fn invalid_key_message(issuer: &str) -> String {
    format!("The license key is invalid. Make sure it is exactly as you received it from {issuer}.")
}

pub type Period = (DateTime<Utc>, DateTime<Utc>);

/// The `historical_max` periods the checks of `license` read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryNeeded {
    /// The term before this license (the current license's, or a year earlier).
    pub prior: Period,
    /// The true-up period, when the license carries a complete true-up.
    pub trueup: Option<Period>,
}

/// The historical maxima measured over [`HistoryNeeded`], plus today's billable count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Measured {
    pub prior_historical_max: i64,
    pub trueup_historical_max: Option<i64>,
    pub daily_billable_users: i64,
}

fn is_trueup(license: &License) -> bool {
    let restrictions = &license.restrictions;
    restrictions.trueup_quantity.is_some()
        && restrictions.trueup_from.is_some()
        && restrictions.trueup_to.is_some()
}

pub fn history_needed(license: &License, current: Option<&License>) -> HistoryNeeded {
    let prior_start = current
        .map(|current| current.starts_at)
        .unwrap_or_else(|| one_year_before(license.starts_at));
    let prior_end = current
        .and_then(|current| current.expires_at)
        .or_else(|| license.expires_at.map(one_year_before))
        .unwrap_or(license.starts_at);
    let prior = (start_of_day(prior_start), end_of_day(prior_end));
    let trueup = is_trueup(license).then(|| {
        let parse = |text: &Option<String>| text.as_deref().and_then(parse_date);
        let from = parse(&license.restrictions.trueup_from)
            .map(start_of_day)
            .unwrap_or(prior.0);
        let to = parse(&license.restrictions.trueup_to)
            .map(end_of_day)
            .unwrap_or(prior.1);
        (from, to)
    });
    HistoryNeeded { prior, trueup }
}

/// `floor(n × 1.1)`: the 10 % grace on seats.
fn with_threshold(count: u64) -> i64 {
    i64::try_from(count.saturating_mul(11) / 10).unwrap_or(i64::MAX)
}

enum Wording {
    Currently,
    YearBefore,
}

fn limit_message(wording: Wording, user_count: i64, seats: u64) -> String {
    let prefix = match wording {
        Wording::Currently => "This GitLab installation currently has",
        Wording::YearBefore => {
            "During the year before this license started, this GitLab installation had"
        }
    };
    let seats_signed = i64::try_from(seats).unwrap_or(i64::MAX);
    let overage = (user_count - seats_signed).max(0);
    format!(
        "{prefix} {} active {}, exceeding this license's limit of {} by {}. Please add a license for at least {} or contact sales at {SALES_URL}",
        number_with_delimiter(user_count),
        if user_count == 1 { "user" } else { "users" },
        number_with_delimiter(seats_signed),
        count_with_noun(overage, "user"),
        count_with_noun(user_count, "user"),
    )
}

/// Rule 4: today's billable users against the seats (with grace).
fn check_available_seats(license: &License, measured: &Measured) -> Result<(), String> {
    match license.restrictions.active_user_count {
        Some(seats) if with_threshold(seats) < measured.daily_billable_users => Err(limit_message(
            Wording::Currently,
            measured.daily_billable_users,
            seats,
        )),
        _ => Ok(()),
    }
}

/// Runs rules 2–5 on a license that decoded (rule 1). The first failure is the message.
pub fn validate(license: &License, measured: &Measured, today: NaiveDate) -> Result<(), String> {
    let restrictions = &license.restrictions;
    let cloud = license.cloud_licensing_enabled;
    if !cloud && !restrictions.reconciliation_completed {
        if let Some(seats) = restrictions.active_user_count {
            if !is_trueup(license) {
                check_prior_period(license, seats, measured)?;
            }
        }
        if is_trueup(license) {
            check_trueup(license, measured)?;
        }
    }
    if restrictions.reconciliation_completed && !cloud {
        check_available_seats(license, measured)?;
    }
    let cancellation = license.online_cloud() && license.generated_from_cancellation;
    if license.expired(today) == Some(true) && !cancellation {
        return Err(EXPIRED_MESSAGE.into());
    }
    Ok(())
}

/// Rule 2: the seats against the previous term's peak (or, with `previous_user_count` covering
/// that peak, against today's count).
fn check_prior_period(license: &License, seats: u64, measured: &Measured) -> Result<(), String> {
    let threshold = with_threshold(seats);
    let prior_max = measured.prior_historical_max;
    let previous = license.restrictions.previous_user_count;
    match previous {
        Some(previous) if prior_max <= i64::try_from(previous).unwrap_or(i64::MAX) => {
            if threshold >= measured.daily_billable_users {
                Ok(())
            } else {
                Err(limit_message(
                    Wording::Currently,
                    measured.daily_billable_users,
                    seats,
                ))
            }
        }
        _ if threshold >= prior_max => Ok(()),
        _ => Err(limit_message(Wording::YearBefore, prior_max, seats)),
    }
}

/// Rule 3: the true-up must pay for the users above the seats of the true-up period.
fn check_trueup(license: &License, measured: &Measured) -> Result<(), String> {
    let restrictions = &license.restrictions;
    let Some(period_seats) = restrictions
        .trueup_period_seat_count
        .or(restrictions.previous_user_count)
    else {
        return check_available_seats(license, measured);
    };
    let quantity = restrictions.trueup_quantity.unwrap_or(0);
    let period_max = measured.trueup_historical_max.unwrap_or(0);
    let expected = period_max - i64::try_from(period_seats).unwrap_or(i64::MAX);
    if with_threshold(quantity) >= expected {
        return check_available_seats(license, measured);
    }
    let quantity = i64::try_from(quantity).unwrap_or(i64::MAX);
    // GitLab interpolates the integers themselves here (no thousands separators), unlike the
    // seat-limit message.
    let users = |count: i64| format!("{count} {}", if count == 1 { "user" } else { "users" });
    Err(format!(
        "You have applied a True-up for {} but you need one for {}. Please contact sales at {SALES_URL}",
        users(quantity),
        users(expected),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_message_matches_gitlab() {
        assert_eq!(
            limit_message(Wording::Currently, 1204, 1000),
            "This GitLab installation currently has 1,204 active users, exceeding this license's limit of 1,000 by 204 users. Please add a license for at least 1,204 users or contact sales at https://about.gitlab.com/sales/"
        );
        assert_eq!(
            limit_message(Wording::YearBefore, 1, 0),
            "During the year before this license started, this GitLab installation had 1 active user, exceeding this license's limit of 0 by 1 user. Please add a license for at least 1 user or contact sales at https://about.gitlab.com/sales/"
        );
    }

    #[test]
    fn threshold_floors() {
        assert_eq!(with_threshold(10), 11);
        assert_eq!(with_threshold(9), 9);
        assert_eq!(with_threshold(0), 0);
        assert_eq!(with_threshold(1000), 1100);
    }
}
