//! Who holds a seat, instance-wide: the billable users with why each is one, filtered by
//! group, highest role and inactivity, as pages (JSON, the page) and as a CSV written a page
//! at a time.

use bytes::Bytes;
use chrono::{NaiveDate, TimeDelta};
use futures_util::Stream;

use crate::domain::members::AccessLevel;
use crate::domain::seats::{csv_line, SeatHolderEntry, CSV_HEADER};
use crate::services::{groups, licenses};
use crate::state::AppState;
use crate::store::{BillableUserFilter, StoreError, StoreResult};

/// Rows read per statement while the CSV is written.
const CSV_BATCH: i64 = 1_000;

/// The longest inactivity a filter may ask about (a century): larger numbers are refused
/// rather than overflowing the date arithmetic.
pub const MAX_INACTIVE_DAYS: i64 = 36_500;

/// What the list is asked for, as given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeatHolderQuery {
    /// A group's id or path: its members only.
    pub group: Option<String>,
    /// GitLab's number of a role: only users whose highest role it is.
    pub access_level: Option<i64>,
    /// Only users not active for at least this many days (or never active).
    pub inactive_for_days: Option<i64>,
}

#[derive(Debug)]
pub enum SeatHolderError {
    GroupNotFound,
    /// The named parameter does not have a valid value.
    Invalid(&'static str),
    Store(StoreError),
}

impl From<StoreError> for SeatHolderError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// A checked query, ready to read pages of.
#[derive(Debug, Clone)]
pub struct SeatHolders {
    filter: BillableUserFilter,
    today: NaiveDate,
}

/// One page: its entries, and the id to continue after when more follow.
pub struct SeatHolderPage {
    pub entries: Vec<SeatHolderEntry>,
    pub next_after: Option<i64>,
}

/// Checks `query` (the group exists, the role is GitLab's, the days are in range) against the
/// current license's rule.
pub async fn prepare(
    state: &AppState,
    query: &SeatHolderQuery,
) -> Result<SeatHolders, SeatHolderError> {
    let group_id = match query.group.as_deref().filter(|text| !text.is_empty()) {
        Some(id_or_path) => Some(
            groups::find(state, id_or_path)
                .await
                .map_err(|error| match error {
                    groups::GroupError::Store(error) => SeatHolderError::Store(error),
                    _ => SeatHolderError::GroupNotFound,
                })?
                .id,
        ),
        None => None,
    };
    let highest_access_level = match query.access_level {
        Some(number) => Some(
            AccessLevel::from_number(number)
                .ok_or(SeatHolderError::Invalid("access_level"))?
                .number(),
        ),
        None => None,
    };
    let today = state.clock.today();
    let inactive_before = match query.inactive_for_days {
        Some(days) if (0..=MAX_INACTIVE_DAYS).contains(&days) => {
            Some(today - TimeDelta::days(days - 1))
        }
        Some(_) => return Err(SeatHolderError::Invalid("inactive_for_days")),
        None => None,
    };
    Ok(SeatHolders {
        filter: BillableUserFilter {
            ultimate: licenses::current_is_ultimate(state).await?,
            group_id,
            highest_access_level,
            inactive_before,
        },
        today,
    })
}

impl SeatHolders {
    /// The entries after the user `after_id` in id order, at most `limit`.
    pub async fn page(
        &self,
        state: &AppState,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<SeatHolderPage> {
        let (rows, more) = state
            .store
            .billable_users_after(&self.filter, after_id, limit)
            .await?;
        let next_after = if more {
            rows.last().map(|row| row.user.id)
        } else {
            None
        };
        let entries = rows
            .iter()
            .map(|row| SeatHolderEntry::of(row, self.today, self.filter.ultimate))
            .collect();
        Ok(SeatHolderPage {
            entries,
            next_after,
        })
    }

    /// How many users the query matches, up to the count cap (`None` above it).
    pub async fn count(&self, state: &AppState) -> StoreResult<Option<i64>> {
        state
            .store
            .count_billable_users_matching(&self.filter)
            .await
    }

    /// The whole list as CSV, read [`CSV_BATCH`] rows at a time as the client takes it.
    pub fn csv(self, state: AppState) -> impl Stream<Item = Result<Bytes, StoreError>> {
        let start = (self, state, Some(0_i64), true);
        futures_util::stream::try_unfold(start, |(holders, state, after, first)| async move {
            let Some(after_id) = after else {
                return Ok(None);
            };
            let page = holders.page(&state, after_id, CSV_BATCH).await?;
            let mut chunk = String::new();
            if first {
                chunk.push_str(CSV_HEADER);
            }
            for entry in &page.entries {
                chunk.push_str(&csv_line(entry));
            }
            let next = page.next_after;
            Ok(Some((Bytes::from(chunk), (holders, state, next, false))))
        })
    }
}
