//! The money question: the term's peak explained (who was billable on its day, who has since
//! stopped and why the peak stays), the true-up forecast, and what removing users would change
//! (docs/true-up.md). Reads only: nothing here writes.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use chrono::{DateTime, NaiveTime, TimeDelta, Utc};
use futures_util::Stream;
use serde::Serialize;

use crate::domain::licenses::timestamp_text;
use crate::domain::true_up::{self, Forecast, Price, Term};
use crate::domain::usage_csv::table_cell;
use crate::services::ledger::{self, optional_cell};
use crate::services::licenses;
use crate::services::seat_holders::{self, SeatHolderError, SeatHolderQuery};
use crate::state::AppState;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum TrueUpError {
    #[error("404 License Not Found")]
    NoLicense,
    /// The current license has no seat limit or no end: there is no true-up.
    #[error("{0}")]
    NoTrueUp(&'static str),
    #[error("{0} is invalid")]
    Invalid(&'static str),
    #[error("{0}")]
    Missing(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The most usernames a what-if names (the bulk tools' bound).
pub const MAX_WHAT_IF_USERS: usize = crate::domain::seats::MAX_BULK_ENTRIES;

/// The current license's term, its daily counts and today's count.
async fn inputs(
    state: &AppState,
) -> Result<(Term, Vec<(chrono::NaiveDate, i64)>, i64, bool), TrueUpError> {
    let today = state.clock.today();
    let (_, license) = licenses::current(state, today)
        .await?
        .ok_or(TrueUpError::NoLicense)?;
    let seats = license
        .restrictions
        .active_user_count
        .and_then(|seats| i64::try_from(seats).ok())
        .ok_or(TrueUpError::NoTrueUp(
            "the current license has no seat limit: there is no true-up",
        ))?;
    let expires_on = license.expires_at.ok_or(TrueUpError::NoTrueUp(
        "the current license does not expire: there is no renewal to true up",
    ))?;
    let term = Term {
        starts_on: license.starts_at,
        expires_on,
        seats,
    };
    let (from, to) = crate::domain::licenses::license_term(&license, today);
    let counts = state
        .store
        .history_between(from, to)
        .await?
        .into_iter()
        .map(|row| (row.recorded_at.date_naive(), row.active_user_count))
        .collect();
    let billable_today = licenses::daily_billable_users(state, Some(&license)).await?;
    Ok((term, counts, billable_today, license.plan() == "ultimate"))
}

/// The price a request names, else the configured one (`TRUE_UP_PRICE_PER_SEAT`).
fn price_of(
    state: &AppState,
    price: Option<&str>,
    currency: Option<&str>,
) -> Result<Option<(Price, String)>, TrueUpError> {
    match price.map(str::trim).filter(|text| !text.is_empty()) {
        None => Ok(state.config.true_up_price.clone()),
        Some(text) => {
            let price = Price::parse(text).ok_or(TrueUpError::Invalid("price_per_seat"))?;
            let currency = currency
                .map(str::trim)
                .filter(|text| !text.is_empty())
                .unwrap_or("USD");
            if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
                return Err(TrueUpError::Invalid("currency"));
            }
            Ok(Some((price, currency.to_ascii_uppercase())))
        }
    }
}

/// The true-up forecast of the current license.
pub async fn forecast(
    state: &AppState,
    price: Option<&str>,
    currency: Option<&str>,
) -> Result<Forecast, TrueUpError> {
    let price = price_of(state, price, currency)?;
    let (term, counts, billable_today, _) = inputs(state).await?;
    Ok(true_up::forecast(
        term,
        &counts,
        state.clock.today(),
        billable_today,
        price,
    ))
}

/// One person billable on the peak day.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PeakPerson {
    pub user_id: i64,
    pub username: String,
    /// Why they counted that day.
    pub reason: String,
    /// Whether they still count now.
    pub still_billable: bool,
    /// When and why they stopped counting since, if they did.
    pub stopped_at: Option<String>,
    pub stopped_because: Option<String>,
}

/// The peak of the current term, explained.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PeakExplanation {
    pub seats: i64,
    pub historical_max: i64,
    pub peak_on: Option<String>,
    pub overage_so_far: i64,
    /// Whether the seat ledger covers the peak day (it began later otherwise: no names).
    pub names_known: bool,
    /// The people billable on the peak day (a page, in user-id order).
    pub people: Vec<PeakPerson>,
    /// How many of this page have stopped counting since.
    pub stopped_since: usize,
    /// GitLab's rule, in a sentence.
    pub rule: &'static str,
}

const PEAK_RULE: &str = "The true-up charges the highest daily count of the term above the seats (GitLab's historical maximum). It does not fall when people are blocked, deactivated, deprovisioned or removed afterwards: they counted on that day.";

/// The people of the peak day, ready to read in pages: the day is found once, so every page
/// (and a CSV) reads the same day's people.
#[derive(Debug, Clone, Copy)]
pub struct PeakPeople {
    /// The end of the peak day, when the ledger covers it (else nobody's name is known).
    end: Option<DateTime<Utc>>,
}

/// The first line of the peak day's CSV.
pub const PEAK_CSV_HEADER: &str =
    "user_id,username,reason,still_billable,stopped_at,stopped_because\n";

impl PeakPerson {
    /// Its line of the peak day's CSV (cells guarded as the seat-holder CSV's are).
    pub fn csv_line(&self) -> String {
        format!(
            "{},{},{},{},{},{}\n",
            self.user_id,
            table_cell(&self.username),
            table_cell(&self.reason),
            self.still_billable,
            optional_cell(self.stopped_at.as_deref()),
            optional_cell(self.stopped_because.as_deref()),
        )
    }
}

/// The current term's forecast (without a price), whether the ledger covers its peak day,
/// and that day's people.
async fn peak_day(state: &AppState) -> Result<(Forecast, bool, PeakPeople), TrueUpError> {
    let (term, counts, billable_today, _) = inputs(state).await?;
    let forecast = true_up::forecast(term, &counts, state.clock.today(), billable_today, None);
    let peak_on = forecast
        .peak_on
        .as_deref()
        .and_then(|text| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok());
    let began = state.store.ledger_began().await?;
    let names_known = match (peak_on, began) {
        (Some(day), Some(began)) => day >= began.date_naive(),
        _ => false,
    };
    let end = peak_on.filter(|_| names_known).map(|day| {
        (day + TimeDelta::days(1))
            .and_time(NaiveTime::MIN)
            .and_utc()
    });
    Ok((forecast, names_known, PeakPeople { end }))
}

/// The people of the current term's peak day (checks that there is a term: a license with
/// seats and an end).
pub async fn peak_people(state: &AppState) -> Result<PeakPeople, TrueUpError> {
    Ok(peak_day(state).await?.2)
}

impl PeakPeople {
    /// The people billable that day, in user-id order after `after_user`, at most `limit`,
    /// and the user to continue after when more follow.
    pub async fn page(
        &self,
        state: &AppState,
        after_user: i64,
        limit: i64,
    ) -> Result<(Vec<PeakPerson>, Option<i64>), StoreError> {
        let Some(end) = self.end else {
            return Ok((Vec::new(), None));
        };
        let mut next = None;
        let mut rows = state.store.billable_at(end, after_user, limit + 1).await?;
        if rows.len() as i64 > limit {
            rows.truncate(usize::try_from(limit).unwrap_or(0));
            next = rows.last().map(|row| row.user_id);
        }
        let ids: Vec<i64> = rows.iter().map(|row| row.user_id).collect();
        let holding: HashSet<i64> = state
            .store
            .ledger_holders_among(&ids)
            .await?
            .into_iter()
            .collect();
        let stops: HashMap<i64, (DateTime<Utc>, String)> = state
            .store
            .ledger_stops_since(&ids, end)
            .await?
            .into_iter()
            .map(|(id, at, reason)| (id, (at, reason)))
            .collect();
        let people = rows
            .into_iter()
            .map(|row| {
                let still = holding.contains(&row.user_id);
                let stop = (!still).then(|| stops.get(&row.user_id)).flatten();
                PeakPerson {
                    user_id: row.user_id,
                    username: row.username,
                    reason: row.reason,
                    still_billable: still,
                    stopped_at: stop.map(|(at, _)| timestamp_text(*at)),
                    stopped_because: stop.map(|(_, reason)| reason.clone()),
                }
            })
            .collect();
        Ok((people, next))
    }

    /// Everyone of the peak day as CSV (just the header when the ledger does not cover it),
    /// read [`ledger::CSV_BATCH`] at a time as the reader takes it.
    pub fn csv(self, state: AppState) -> impl Stream<Item = Result<Bytes, StoreError>> {
        ledger::csv_pages(PEAK_CSV_HEADER, move |after| {
            let state = state.clone();
            async move {
                let (people, next) = self.page(&state, after, ledger::CSV_BATCH).await?;
                Ok((people.iter().map(PeakPerson::csv_line).collect(), next))
            }
        })
    }
}

/// The peak: its day, who was billable then (`after_user`, `limit`: a page) and who has since
/// stopped.
pub async fn peak(
    state: &AppState,
    after_user: i64,
    limit: i64,
) -> Result<(PeakExplanation, Option<i64>), TrueUpError> {
    let (forecast, names_known, people) = peak_day(state).await?;
    let (people, next) = people.page(state, after_user, limit).await?;
    let stopped_since = people
        .iter()
        .filter(|person| !person.still_billable)
        .count();
    Ok((
        PeakExplanation {
            seats: forecast.seats,
            historical_max: forecast.historical_max,
            peak_on: forecast.peak_on,
            overage_so_far: forecast.overage_so_far,
            names_known,
            people,
            stopped_since,
            rule: PEAK_RULE,
        },
        next,
    ))
}

/// Whom a what-if removes.
#[derive(Debug, Clone)]
pub enum WhatIfUsers {
    Usernames(Vec<String>),
    InactiveForDays(i64),
}

/// What removing or deactivating users now would change.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WhatIf {
    /// Of the users named, those who count now (their seats would be freed).
    pub billable_removed: i64,
    pub usernames_not_found: Vec<String>,
    pub billable_today: i64,
    pub billable_today_after: i64,
    /// Unchanged: the peak already reached stays for the term.
    pub historical_max: i64,
    pub overage_so_far: i64,
    pub projected_overage: i64,
    pub projected_overage_after: i64,
    pub amount: Option<f64>,
    pub amount_after: Option<f64>,
    pub currency: Option<String>,
    pub note: &'static str,
}

/// A preview: nothing is written.
pub async fn what_if(
    state: &AppState,
    users: WhatIfUsers,
    price: Option<&str>,
    currency: Option<&str>,
) -> Result<WhatIf, TrueUpError> {
    let price = price_of(state, price, currency)?;
    let (term, counts, billable_today, ultimate) = inputs(state).await?;
    let (removed, not_found) = match users {
        WhatIfUsers::Usernames(names) => {
            if names.is_empty() {
                return Err(TrueUpError::Missing(
                    "usernames or inactive_for_days is missing",
                ));
            }
            if names.len() > MAX_WHAT_IF_USERS {
                return Err(TrueUpError::Invalid("usernames"));
            }
            // One lookup a chunk, not one a name: usernames match case-insensitively, as
            // GitLab's do.
            let mut ids = Vec::new();
            let mut found = HashSet::new();
            for chunk in names.chunks(500) {
                for user in state.store.users_by_usernames(chunk).await? {
                    found.insert(user.username.to_lowercase());
                    ids.push(user.id);
                }
            }
            let not_found: Vec<String> = names
                .into_iter()
                .filter(|name| !found.contains(&name.to_lowercase()))
                .collect();
            ids.sort_unstable();
            ids.dedup();
            let mut billable = 0i64;
            for chunk in ids.chunks(500) {
                billable += state.store.billable_among(chunk, ultimate).await?.len() as i64;
            }
            (billable, not_found)
        }
        WhatIfUsers::InactiveForDays(days) => {
            let holders = seat_holders::prepare(
                state,
                &SeatHolderQuery {
                    inactive_for_days: Some(days),
                    ..SeatHolderQuery::default()
                },
            )
            .await
            .map_err(|error| match error {
                SeatHolderError::Store(error) => TrueUpError::Store(error),
                _ => TrueUpError::Invalid("inactive_for_days"),
            })?;
            let count = holders
                .count(state)
                .await?
                .unwrap_or(crate::store::COUNT_CAP + 1);
            (count, Vec::new())
        }
    };
    let today = state.clock.today();
    let before = true_up::forecast(term, &counts, today, billable_today, price.clone());
    let after_count = (billable_today - removed).max(0);
    let after = true_up::forecast(term, &counts, today, after_count, price);
    Ok(WhatIf {
        billable_removed: removed,
        usernames_not_found: not_found,
        billable_today,
        billable_today_after: after_count,
        historical_max: before.historical_max,
        overage_so_far: before.overage_so_far,
        projected_overage: before.projected_overage,
        projected_overage_after: after.projected_overage,
        amount: before.amount,
        amount_after: after.amount,
        currency: before.currency,
        note: "A preview: nothing was changed. The peak already reached this term stays; removing users lowers only what is still to come. To act, use the bulk tools (POST /api/v4/-/duo_seats/reclaim for Duo seats, POST /api/v4/users/:id/deactivate or block for users).",
    })
}

/// The system-hook event sent when the projected overage at renewal crosses from zero to
/// positive, or back.
pub const FORECAST_CHANGED_EVENT: &str = crate::store::TRUE_UP_FORECAST_EVENT;

/// Sends `true_up_forecast_changed` when the projected overage at renewal (at today's count)
/// has crossed zero since the last check — once per crossing, across replicas. Checked after
/// recounts, daily snapshots and license changes.
pub async fn check_forecast(state: &AppState) -> Result<bool, TrueUpError> {
    let forecast = match forecast(state, None, None).await {
        Ok(forecast) => forecast,
        // No license with seats and an end: no true-up to watch.
        Err(TrueUpError::NoLicense | TrueUpError::NoTrueUp(_)) => return Ok(false),
        Err(error) => return Err(error),
    };
    let over = forecast.projected_overage > 0;
    let now = state.clock.now();
    let payload = serde_json::json!({
        "event_name": FORECAST_CHANGED_EVENT,
        "projected_overage": forecast.projected_overage,
        "overage_so_far": forecast.overage_so_far,
        "seats": forecast.seats,
        "billable_today": forecast.billable_today,
        "expires_on": forecast.expires_on,
        "amount": forecast.amount,
        "currency": forecast.currency,
        "over_license": over,
        "created_at": timestamp_text(now),
    });
    let fired = state
        .store
        .record_true_up_crossing(over, &payload, now)
        .await?;
    if fired {
        state.hooks_wake.notify_one();
        tracing::info!(
            projected_overage = forecast.projected_overage,
            "true-up forecast crossed zero"
        );
    }
    Ok(fired)
}

/// [`check_forecast`], for callers whose own work is done: a failure is logged.
pub async fn check_forecast_quietly(state: &AppState) {
    if let Err(error) = check_forecast(state).await {
        tracing::warn!(%error, "could not check the true-up forecast");
    }
}
