//! Seat intelligence: who holds a seat and why, as the list and its CSV show it.

use chrono::NaiveDate;
use serde::Serialize;

use crate::domain::licenses::timestamp_text;
use crate::domain::members::AccessLevel;
use crate::domain::usage_csv::table_cell;
use crate::domain::users::User;

/// A billable user and what makes them one: their highest role anywhere (none without a
/// membership) and how many groups they belong to, beside the user's type, state and last
/// activity.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BillableUser {
    pub highest_access_level: Option<i32>,
    pub groups: i64,
    #[sqlx(flatten)]
    pub user: User,
}

/// An access level with its name, as GitLab's entities show one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AccessLevelDetails {
    #[schema(example = 30)]
    pub integer_value: i32,
    #[schema(example = "Developer")]
    pub string_value: &'static str,
}

impl From<AccessLevel> for AccessLevelDetails {
    fn from(level: AccessLevel) -> Self {
        Self {
            integer_value: level.number(),
            string_value: level.name(),
        }
    }
}

/// One row of the seat-holder list (JSON and page): the user, and why they hold a seat.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct SeatHolderEntry {
    pub id: i64,
    pub username: String,
    pub name: String,
    pub email: String,
    #[schema(example = "active")]
    pub state: &'static str,
    #[schema(example = "human")]
    pub user_type: &'static str,
    pub highest_access_level: Option<AccessLevelDetails>,
    /// How many groups the user is a member of.
    pub group_count: i64,
    #[schema(example = "2026-06-01")]
    pub last_activity_on: Option<String>,
    /// Whole days since the last activity; null when the user was never active.
    pub inactive_days: Option<i64>,
    pub created_at: String,
    /// Why the user occupies a seat, in a sentence.
    pub billable_because: String,
}

impl SeatHolderEntry {
    /// The entry for `holder`, with inactivity counted up to `today`; `ultimate` says whether
    /// the license needs a role above Guest.
    pub fn of(holder: &BillableUser, today: NaiveDate, ultimate: bool) -> Self {
        let user = &holder.user;
        let highest = holder.highest_access_level.map(AccessLevel::from);
        let kind = match user.user_type.as_str() {
            "service_user" => "service user",
            _ => "human user",
        };
        let billable_because = match (ultimate, highest) {
            (true, Some(level)) => format!(
                "Active {kind} with the {} role (above Guest, as Ultimate counts)",
                level.name()
            ),
            (_, Some(level)) => format!("Active {kind} with the {} role", level.name()),
            (_, None) => format!("Active {kind} (every active {kind} occupies a seat)"),
        };
        Self {
            id: user.id,
            username: user.username.clone(),
            name: user.name.clone(),
            email: user.email.clone(),
            state: user.state.as_str(),
            user_type: user.user_type.as_str(),
            highest_access_level: highest.map(AccessLevelDetails::from),
            group_count: holder.groups,
            last_activity_on: user.last_activity_on.map(|day| day.to_string()),
            inactive_days: user
                .last_activity_on
                .map(|day| (today - day).num_days().max(0)),
            created_at: timestamp_text(user.created_at),
            billable_because,
        }
    }
}

/// The first line of the seat-holder CSV.
pub const CSV_HEADER: &str = "id,username,name,email,state,user_type,highest_role,highest_access_level,groups,last_activity_on,inactive_days,created_at,billable_because\n";

/// One line of the seat-holder CSV (cells guarded against spreadsheet formulas, as GitLab's
/// exports are).
pub fn csv_line(entry: &SeatHolderEntry) -> String {
    let optional = |value: Option<String>| value.unwrap_or_default();
    let cells = [
        entry.id.to_string(),
        table_cell(&entry.username),
        table_cell(&entry.name),
        table_cell(&entry.email),
        entry.state.to_string(),
        entry.user_type.to_string(),
        optional(
            entry
                .highest_access_level
                .as_ref()
                .map(|level| level.string_value.to_string()),
        ),
        optional(
            entry
                .highest_access_level
                .as_ref()
                .map(|level| level.integer_value.to_string()),
        ),
        entry.group_count.to_string(),
        optional(entry.last_activity_on.clone()),
        optional(entry.inactive_days.map(|days| days.to_string())),
        entry.created_at.clone(),
        table_cell(&entry.billable_because),
    ];
    let mut line = cells.join(",");
    line.push('\n');
    line
}

/// What a count of seats in use does to one subject's alerts (a license's seats, or an add-on
/// purchase's): the thresholds reached now, and those below which the count has fallen (to
/// re-arm). `None` when there is nothing to measure against (no seat limit, no seats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertLevels {
    pub reached: Vec<u32>,
    pub below: Vec<u32>,
}

pub fn alert_levels(used: i64, capacity: i64, thresholds: &[u32]) -> Option<AlertLevels> {
    if capacity <= 0 {
        return None;
    }
    // Whole-number arithmetic: 90 of 100 seats reaches 90 %, 89 does not.
    let (reached, below) = thresholds.iter().partition(|threshold| {
        i128::from(used) * 100 >= i128::from(**threshold) * i128::from(capacity)
    });
    Some(AlertLevels { reached, below })
}

/// Seats in use as a share of the seats there are (0 when there are none).
pub fn utilization(used: i64, capacity: i64) -> f64 {
    if capacity <= 0 {
        0.0
    } else {
        used as f64 / capacity as f64
    }
}

/// Why a bulk assignment passes someone over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SeatOutcome {
    /// Would get (dry run) or got a seat.
    Assign,
    /// No user has this username or e-mail.
    NotFound,
    /// The user may not hold this purchase's seat (inactive, a bot, not a member of the
    /// purchase's group).
    NotEligible,
    /// The user holds a seat already.
    AlreadySeated,
    /// Eligible, but the free seats ran out before their turn.
    NotEnoughSeats,
}

impl SeatOutcome {
    /// The name the API answers with (`not_enough_seats`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Assign => "assign",
            Self::NotFound => "not_found",
            Self::NotEligible => "not_eligible",
            Self::AlreadySeated => "already_seated",
            Self::NotEnoughSeats => "not_enough_seats",
        }
    }
}

/// One person a bulk assignment considers: found or not, and what the store knows of them.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SeatCandidate {
    pub user_id: i64,
    pub username: String,
    pub email: String,
    pub eligible: bool,
    pub seated: bool,
}

/// Each candidate's outcome, in order: those already seated or not eligible are skipped, the
/// others get a seat while `free_seats` last (in the order given, so a rerun with more seats
/// continues where this one stopped).
pub fn plan_seats(candidates: &[Option<&SeatCandidate>], free_seats: i64) -> Vec<SeatOutcome> {
    let mut free = free_seats.max(0);
    candidates
        .iter()
        .map(|candidate| match candidate {
            None => SeatOutcome::NotFound,
            Some(found) if found.seated => SeatOutcome::AlreadySeated,
            Some(found) if !found.eligible => SeatOutcome::NotEligible,
            Some(_) if free == 0 => SeatOutcome::NotEnoughSeats,
            Some(_) => {
                free -= 1;
                SeatOutcome::Assign
            }
        })
        .collect()
}

/// The most entries a list for a bulk assignment may hold.
pub const MAX_BULK_ENTRIES: usize = 10_000;

/// The usernames or e-mail addresses of a CSV file (or a pasted list): the first cell of each
/// line, unquoted and trimmed; a header (`username`, `email`, `user`) and empty lines are
/// skipped; repeats (ignoring case) are kept once, in first-seen order. `Err` names the
/// problem: more than [`MAX_BULK_ENTRIES`] entries.
pub fn list_entries(text: &str) -> Result<Vec<String>, String> {
    let mut seen = std::collections::HashSet::new();
    let mut entries = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let first = line
            .split([',', ';', '\t'])
            .next()
            .unwrap_or_default()
            .trim()
            .trim_matches('"')
            .trim()
            .trim_start_matches('@');
        if first.is_empty()
            || (index == 0
                && ["username", "email", "e-mail", "user"]
                    .iter()
                    .any(|header| first.eq_ignore_ascii_case(header)))
        {
            continue;
        }
        if seen.insert(first.to_lowercase()) {
            entries.push(first.to_string());
            if entries.len() > MAX_BULK_ENTRIES {
                return Err(format!(
                    "the list has more than {MAX_BULK_ENTRIES} users; split it"
                ));
            }
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::users::{UserState, UserType};
    use chrono::{TimeZone, Utc};

    fn holder(level: Option<i32>, active: Option<&str>) -> BillableUser {
        BillableUser {
            highest_access_level: level,
            groups: i64::from(level.is_some()),
            user: User {
                id: 7,
                username: "=cmd".into(),
                name: "Ada, Lovelace".into(),
                email: "ada@example.org".into(),
                state: UserState::Active,
                user_type: UserType::Human,
                admin: false,
                created_at: Utc
                    .with_ymd_and_hms(2026, 1, 2, 3, 4, 5)
                    .single()
                    .expect("time"),
                last_activity_on: active
                    .map(|day| NaiveDate::parse_from_str(day, "%Y-%m-%d").expect("day")),
            },
        }
    }

    #[test]
    fn thresholds_are_reached_at_their_percentage() {
        let levels = alert_levels(90, 100, &[80, 90, 100]).expect("levels");
        assert_eq!(levels.reached, [80, 90]);
        assert_eq!(levels.below, [100]);
        let levels = alert_levels(89, 100, &[80, 90, 100]).expect("levels");
        assert_eq!(levels.reached, [80]);
        assert_eq!(alert_levels(3, 3, &[100]).expect("levels").reached, [100]);
        assert_eq!(alert_levels(5, 0, &[80]), None);
        assert_eq!(utilization(9, 10), 0.9);
    }

    #[test]
    fn seats_go_in_order_while_they_last() {
        let candidate = |user_id, eligible, seated| SeatCandidate {
            user_id,
            username: format!("u{user_id}"),
            email: String::new(),
            eligible,
            seated,
        };
        let (a, b, c, d) = (
            candidate(1, true, false),
            candidate(2, true, true),
            candidate(3, false, false),
            candidate(4, true, false),
        );
        let outcomes = plan_seats(&[Some(&a), None, Some(&b), Some(&c), Some(&d)], 1);
        assert_eq!(
            outcomes,
            [
                SeatOutcome::Assign,
                SeatOutcome::NotFound,
                SeatOutcome::AlreadySeated,
                SeatOutcome::NotEligible,
                SeatOutcome::NotEnoughSeats
            ]
        );
    }

    #[test]
    fn outcome_names_are_the_apis() {
        for outcome in [
            SeatOutcome::Assign,
            SeatOutcome::NotFound,
            SeatOutcome::NotEligible,
            SeatOutcome::AlreadySeated,
            SeatOutcome::NotEnoughSeats,
        ] {
            assert_eq!(
                serde_json::to_value(outcome).expect("json"),
                serde_json::json!(outcome.as_str())
            );
        }
    }

    #[test]
    fn lists_come_from_the_first_column() {
        let entries = list_entries("username,name\n@ada,Ada\n\"bob@example.org\",Bob\n\nADA\n")
            .expect("list");
        assert_eq!(entries, ["ada", "bob@example.org"]);
        let long: String = (0..=MAX_BULK_ENTRIES).map(|n| format!("u{n}\n")).collect();
        assert!(list_entries(&long).is_err());
    }

    #[test]
    fn says_why_and_how_long_inactive() {
        let today = NaiveDate::from_ymd_opt(2026, 6, 15).expect("day");
        let entry = SeatHolderEntry::of(&holder(Some(30), Some("2026-03-17")), today, true);
        assert_eq!(entry.inactive_days, Some(90));
        assert_eq!(
            entry.billable_because,
            "Active human user with the Developer role (above Guest, as Ultimate counts)"
        );
        let plain = SeatHolderEntry::of(&holder(None, None), today, false);
        assert_eq!(plain.inactive_days, None);
        assert_eq!(
            plain.billable_because,
            "Active human user (every active human user occupies a seat)"
        );
        assert_eq!(
            csv_line(&entry),
            "7,'=cmd,\"Ada, Lovelace\",ada@example.org,active,human,Developer,30,1,2026-03-17,90,2026-01-02T03:04:05.000Z,\"Active human user with the Developer role (above Guest, as Ultimate counts)\"\n"
        );
    }
}
