//! GitLab's dormant-user deactivation (`Users::DeactivateDormantUsersWorker`): who counts as
//! dormant, when the job runs, and how many it may take a run. Pure: callers bring the clock.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Timelike, Utc};

/// A user never seen active is dormant once created this many days ago (`MINIMUM_DAYS_CREATED`).
pub const MINIMUM_DAYS_CREATED: i64 = 7;
/// The most users one run deactivates: GitLab's ten runs a day take at most 100,000.
pub const PER_RUN: i64 = 10_000;
/// Users deactivated per transaction (GitLab's batch).
pub const BATCH: usize = 200;
/// GitLab's cron, `21,42 0-4 * * *`: the minutes past each of the hours 0 to 4 (UTC).
const MINUTES: [u32; 2] = [21, 42];
const LAST_HOUR: u32 = 4;

/// The bounds of dormancy on `today` for a period of `period_days`: users whose last activity
/// is on or before the first, and users never active created before the second.
/// A period longer than the calendar reaches back (GitLab sets no upper bound) makes nobody
/// dormant.
pub fn cutoffs(today: NaiveDate, period_days: i64) -> (NaiveDate, DateTime<Utc>) {
    let back = |days: i64| {
        TimeDelta::try_days(days)
            .and_then(|span| today.checked_sub_signed(span))
            .unwrap_or(NaiveDate::MIN)
    };
    (
        back(period_days),
        back(MINIMUM_DAYS_CREATED)
            .and_time(NaiveTime::MIN)
            .and_utc(),
    )
}

/// The run of GitLab's schedule due last at `now` today, if one is (none before 00:21 UTC).
pub fn current_slot(now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    slots(now.date_naive())
        .into_iter()
        .rev()
        .find(|slot| *slot <= now)
}

/// The next run of GitLab's schedule after `now`.
pub fn next_slot(now: DateTime<Utc>) -> DateTime<Utc> {
    let today = now.date_naive();
    slots(today)
        .into_iter()
        .find(|slot| *slot > now)
        .unwrap_or_else(|| slots(today + TimeDelta::days(1))[0])
}

fn slots(day: NaiveDate) -> Vec<DateTime<Utc>> {
    (0..=LAST_HOUR)
        .flat_map(|hour| {
            MINUTES.iter().filter_map(move |minute| {
                NaiveTime::from_hms_opt(hour, *minute, 0).map(|time| day.and_time(time).and_utc())
            })
        })
        .collect()
}

/// The slot's key in the job queue, so replicas scheduling it collide harmlessly.
pub fn slot_key(slot: DateTime<Utc>) -> String {
    format!(
        "{}T{:02}:{:02}",
        slot.date_naive().format("%Y-%m-%d"),
        slot.hour(),
        slot.minute()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn gitlab_schedule() {
        assert_eq!(current_slot(at("2026-06-15T00:20:59Z")), None);
        assert_eq!(
            current_slot(at("2026-06-15T00:21:00Z")),
            Some(at("2026-06-15T00:21:00Z"))
        );
        assert_eq!(
            current_slot(at("2026-06-15T10:30:00Z")),
            Some(at("2026-06-15T04:42:00Z"))
        );
        assert_eq!(
            next_slot(at("2026-06-15T01:30:00Z")),
            at("2026-06-15T01:42:00Z")
        );
        assert_eq!(
            next_slot(at("2026-06-15T10:30:00Z")),
            at("2026-06-16T00:21:00Z")
        );
        assert_eq!(slot_key(at("2026-06-15T04:42:00Z")), "2026-06-15T04:42");
    }

    #[test]
    fn dormancy_bounds() {
        let today = NaiveDate::from_ymd_opt(2026, 6, 15).expect("day");
        let (active_by, created_by) = cutoffs(today, 90);
        assert_eq!(
            active_by,
            NaiveDate::from_ymd_opt(2026, 3, 17).expect("day")
        );
        assert_eq!(created_by, at("2026-06-08T00:00:00Z"));
        // GitLab bounds the period only from below: a vast one makes nobody dormant.
        assert_eq!(cutoffs(today, i64::MAX).0, NaiveDate::MIN);
        assert_eq!(cutoffs(today, 1_000_000_000_000).0, NaiveDate::MIN);
    }
}
