//! The seat ledger's answers: the entries themselves (who started and stopped being billable,
//! when and why) and who was billable on a given day, with since when each counts — as pages
//! (JSON) and as CSV written a page at a time (the API's downloads and the CLI).

use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};
use futures_util::Stream;
use serde::Serialize;

use crate::domain::ledger::Direction;
use crate::domain::licenses::timestamp_text;
use crate::domain::usage_csv::table_cell;
use crate::state::AppState;
use crate::store::ledger::{BillableOnDay, LedgerFilter, LedgerRow};
use crate::store::{StoreError, StoreResult};

/// Rows read per statement while a CSV is written.
pub const CSV_BATCH: i64 = 1_000;

/// A CSV written a page at a time as the reader takes it: `header`, then the lines of each
/// page `page(after)` reads — its lines and the key to continue after (`None`: the last).
/// Nothing is read before the first chunk is asked for, so a caller checks its input first.
pub fn csv_pages<F, Fut>(
    header: &'static str,
    page: F,
) -> impl Stream<Item = Result<Bytes, StoreError>> + Send + 'static
where
    F: FnMut(i64) -> Fut + Send + 'static,
    Fut: Future<Output = StoreResult<(String, Option<i64>)>> + Send + 'static,
{
    futures_util::stream::try_unfold(
        (page, Some(0_i64), true),
        move |(mut page, after, first)| async move {
            let Some(after) = after else {
                return Ok(None);
            };
            let (lines, next) = page(after).await?;
            let chunk = if first {
                format!("{header}{lines}")
            } else {
                lines
            };
            Ok(Some((Bytes::from(chunk), (page, next, false))))
        },
    )
}

/// An optional cell: empty (not `""`) when there is none, as the seat-holder CSV writes it.
pub(crate) fn optional_cell(value: Option<&str>) -> String {
    value.map(table_cell).unwrap_or_default()
}

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

/// The first line of the ledger's CSV.
pub const LEDGER_CSV_HEADER: &str = "id,recorded_at,user_id,username,direction,reason,plan\n";

impl LedgerEntry {
    /// Its line of the ledger's CSV (cells guarded against spreadsheet formulas, as GitLab's
    /// exports are).
    pub fn csv_line(&self) -> String {
        format!(
            "{},{},{},{},{},{},{}\n",
            self.id,
            self.recorded_at,
            self.user_id,
            table_cell(&self.username),
            table_cell(&self.direction),
            table_cell(&self.reason),
            optional_cell(self.plan.as_deref()),
        )
    }
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

/// A checked ledger query (the user found, the days and the direction valid), ready to read
/// pages of.
#[derive(Debug, Clone)]
pub struct Ledger {
    filter: LedgerFilter,
}

/// Checks `query`: the user exists (an id is taken as given), the days are `YYYY-MM-DD`, the
/// direction is `started` or `stopped`.
pub async fn prepare(state: &AppState, query: &LedgerQuery) -> Result<Ledger, LedgerError> {
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
    Ok(Ledger {
        filter: LedgerFilter {
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
        },
    })
}

impl Ledger {
    /// The entries after entry `after_id`, in the order written, at most `limit`.
    pub async fn page(
        &self,
        state: &AppState,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<LedgerEntry>> {
        Ok(state
            .store
            .ledger_page(&self.filter, after_id, limit)
            .await?
            .into_iter()
            .map(LedgerEntry::from)
            .collect())
    }

    /// Every entry the query matches as CSV, read [`CSV_BATCH`] at a time as the reader takes
    /// it.
    pub fn csv(self, state: AppState) -> impl Stream<Item = Result<Bytes, StoreError>> {
        let ledger = Arc::new(self);
        csv_pages(LEDGER_CSV_HEADER, move |after| {
            let (ledger, state) = (ledger.clone(), state.clone());
            async move {
                let entries = ledger.page(&state, after, CSV_BATCH).await?;
                let next = (entries.len() as i64 == CSV_BATCH)
                    .then(|| entries.last().map(|entry| entry.id))
                    .flatten();
                Ok((entries.iter().map(LedgerEntry::csv_line).collect(), next))
            }
        })
    }
}

/// A page of the ledger, in the order it was written, after entry `after_id`.
pub async fn entries(
    state: &AppState,
    query: &LedgerQuery,
    after_id: i64,
    limit: i64,
) -> Result<Vec<LedgerEntry>, LedgerError> {
    Ok(prepare(state, query)
        .await?
        .page(state, after_id, limit)
        .await?)
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

/// The first line of the who-was-billable CSV.
pub const BILLABLE_ON_CSV_HEADER: &str =
    "user_id,username,since,counted_before_the_ledger_began,reason\n";

impl BillableOnEntry {
    /// Its line of the who-was-billable CSV.
    pub fn csv_line(&self) -> String {
        format!(
            "{},{},{},{},{}\n",
            self.user_id,
            table_cell(&self.username),
            self.since,
            self.counted_before_the_ledger_began,
            table_cell(&self.reason),
        )
    }
}

/// A checked day (one the ledger covers), ready to read who was billable at its end.
#[derive(Debug, Clone, Copy)]
pub struct BillableOn {
    day: NaiveDate,
    /// The end of the day: the recounts before it.
    at: DateTime<Utc>,
}

/// Checks `date`: `YYYY-MM-DD`, and no earlier than the ledger's first recount.
pub async fn prepare_billable_on(state: &AppState, date: &str) -> Result<BillableOn, LedgerError> {
    let date = day(date, "date")?;
    let began = state
        .store
        .ledger_began()
        .await?
        .ok_or(LedgerError::Empty)?;
    if date < began.date_naive() {
        return Err(LedgerError::BeforeLedger(began.date_naive()));
    }
    Ok(BillableOn {
        day: date,
        at: start_of(date + TimeDelta::days(1)),
    })
}

impl BillableOn {
    /// The day asked about.
    pub fn day(&self) -> NaiveDate {
        self.day
    }

    /// Who was billable, in user-id order after `after_user`, at most `limit`.
    pub async fn page(
        &self,
        state: &AppState,
        after_user: i64,
        limit: i64,
    ) -> StoreResult<Vec<BillableOnEntry>> {
        Ok(state
            .store
            .billable_at(self.at, after_user, limit)
            .await?
            .into_iter()
            .map(BillableOnEntry::from)
            .collect())
    }

    /// Everyone billable that day as CSV, read [`CSV_BATCH`] at a time as the reader takes it.
    pub fn csv(self, state: AppState) -> impl Stream<Item = Result<Bytes, StoreError>> {
        csv_pages(BILLABLE_ON_CSV_HEADER, move |after| {
            let state = state.clone();
            async move {
                let users = self.page(&state, after, CSV_BATCH).await?;
                let next = (users.len() as i64 == CSV_BATCH)
                    .then(|| users.last().map(|user| user.user_id))
                    .flatten();
                Ok((users.iter().map(BillableOnEntry::csv_line).collect(), next))
            }
        })
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
    Ok(prepare_billable_on(state, date)
        .await?
        .page(state, after_user, limit)
        .await?)
}
