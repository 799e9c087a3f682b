//! The seat ledger's answers: the entries themselves (who started and stopped being billable,
//! when and why) and who was billable on a given day, with since when each counts.

use chrono::{NaiveDate, NaiveTime, TimeDelta};
use serde::Serialize;

use crate::domain::ledger::Direction;
use crate::domain::licenses::timestamp_text;
use crate::state::AppState;
use crate::store::ledger::{BillableOnDay, LedgerFilter, LedgerRow};
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("404 User Not Found")]
    UserNotFound,
    /// A parameter without a valid value (its name).
    #[error("{0} is invalid")]
    Invalid(&'static str),
    /// A day before the ledger's first recount: nobody can say who counted then.
    #[error("date is before the seat ledger began ({0}): nothing was recorded before it")]
    BeforeLedger(NaiveDate),
    #[error("the seat ledger has no entries yet: it begins at the next recount")]
    Empty,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One ledger entry as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LedgerEntry {
    pub id: i64,
    /// The recount that recorded it.
    pub recorded_at: String,
    pub user_id: i64,
    pub username: String,
    /// `started`, `stopped`, or `baseline` (counted when the ledger began).
    pub direction: String,
    pub reason: String,
    /// The license plan the recount counted for (`none` without a license).
    pub plan: Option<String>,
}

impl From<LedgerRow> for LedgerEntry {
    fn from(row: LedgerRow) -> Self {
        Self {
            id: row.id,
            recorded_at: timestamp_text(row.recorded_at),
            user_id: row.user_id,
            username: row.username,
            direction: row.direction,
            reason: row.reason,
            plan: row.plan,
        }
    }
}

/// The ledger's filters as a request gives them.
#[derive(Debug, Clone, Default)]
pub struct LedgerQuery {
    /// An id or a username.
    pub user: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub direction: Option<String>,
}

fn day(text: &str, name: &'static str) -> Result<NaiveDate, LedgerError> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").map_err(|_| LedgerError::Invalid(name))
}

fn start_of(day: NaiveDate) -> chrono::DateTime<chrono::Utc> {
    day.and_time(NaiveTime::MIN).and_utc()
}

/// A page of the ledger, in the order it was written, after entry `after_id`.
pub async fn entries(
    state: &AppState,
    query: &LedgerQuery,
    after_id: i64,
    limit: i64,
) -> Result<Vec<LedgerEntry>, LedgerError> {
    let user_id = match query.user.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(text) => match text.parse::<i64>() {
            Ok(id) => Some(id),
            Err(_) => Some(
                state
                    .store
                    .find_user_by_username(text)
                    .await?
                    .ok_or(LedgerError::UserNotFound)?
                    .id,
            ),
        },
    };
    let direction = match query.direction.as_deref() {
        None | Some("") => None,
        Some(text) => match Direction::from_name(text) {
            Some(Direction::Started | Direction::Stopped) => Some(text.to_string()),
            _ => return Err(LedgerError::Invalid("direction")),
        },
    };
    let filter = LedgerFilter {
        user_id,
        from: query
            .from
            .as_deref()
            .map(|text| day(text, "from"))
            .transpose()?
            .map(start_of),
        to: query
            .to
            .as_deref()
            .map(|text| day(text, "to"))
            .transpose()?
            .map(|to| start_of(to + TimeDelta::days(1))),
        direction,
    };
    Ok(state
        .store
        .ledger_page(&filter, after_id, limit)
        .await?
        .into_iter()
        .map(LedgerEntry::from)
        .collect())
}

/// Someone who was billable on the day asked about.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BillableOnEntry {
    pub user_id: i64,
    pub username: String,
    /// The recount from which the user counted (for `baseline`: the ledger's first recount —
    /// they counted already).
    pub since: String,
    pub counted_before_the_ledger_began: bool,
    pub reason: String,
}

impl From<BillableOnDay> for BillableOnEntry {
    fn from(row: BillableOnDay) -> Self {
        Self {
            user_id: row.user_id,
            username: row.username,
            since: timestamp_text(row.since),
            counted_before_the_ledger_began: row.direction == Direction::Baseline.as_str(),
            reason: row.reason,
        }
    }
}

/// Who was billable at the end of `date` (as the recounts up to then found), in user-id
/// order after `after_user`.
pub async fn billable_on(
    state: &AppState,
    date: &str,
    after_user: i64,
    limit: i64,
) -> Result<Vec<BillableOnEntry>, LedgerError> {
    let date = day(date, "date")?;
    let began = state
        .store
        .ledger_began()
        .await?
        .ok_or(LedgerError::Empty)?;
    if date < began.date_naive() {
        return Err(LedgerError::BeforeLedger(began.date_naive()));
    }
    Ok(state
        .store
        .billable_at(start_of(date + TimeDelta::days(1)), after_user, limit)
        .await?
        .into_iter()
        .map(BillableOnEntry::from)
        .collect())
}
