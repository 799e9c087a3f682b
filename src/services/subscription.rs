//! Everything the subscription page shows, read from the store in one concurrent round of a
//! fixed number of queries, however many licenses, users, seats or days there are: the
//! licenses, the newest measurement, the purchases, their seat holders (one windowed query)
//! and the users who may take a seat, all at once; the current license's history and maximum
//! start as soon as the licenses are in (its term decides which days to read).

use chrono::NaiveDate;

use crate::domain::licenses::{
    current_license, license_entity, license_term, LicenseEntity, StoredLicense, UsageFigures,
};
use crate::domain::subscription::{days_left, LicenseStanding};
use crate::license_key::License;
use crate::services::licenses;
use crate::state::AppState;
use crate::store::{AddOnPurchase, HistoryRow, LicenseRow, StoreError, StoreResult, User};

/// How many seat holders the page lists per purchase, the newest (the rest are reachable by
/// username).
pub const SEAT_HOLDERS_SHOWN: i64 = 200;
/// How many users the page suggests when assigning seats.
pub const SUGGESTED_USERS: i64 = 200;

#[derive(Debug, Clone)]
pub struct Overview {
    pub today: NaiveDate,
    pub current: Option<CurrentLicense>,
    /// Every decodable license, newest first.
    pub licenses: Vec<LicenseSummary>,
    /// Stored licenses that no configured public key verifies (hidden everywhere else).
    pub unverifiable_licenses: usize,
    pub purchases: Vec<PurchaseSeats>,
    /// Users who may hold an instance seat, by username (suggestions for the assign form).
    pub eligible_users: Vec<User>,
    /// The license's and each add-on purchase's seats in use, with the alert thresholds
    /// reached (the page's seat-alert banners).
    pub seat_usage: Vec<crate::services::seat_alerts::SeatUsage>,
}

#[derive(Debug, Clone)]
pub struct CurrentLicense {
    /// The figures exactly as `GET /license` reports them.
    pub entity: LicenseEntity,
    pub license: License,
    /// The first and last day of the term (today for a license without an end).
    pub term: (NaiveDate, NaiveDate),
    pub days_left: Option<i64>,
    /// Daily billable-user counts within the term, oldest first.
    pub history: Vec<HistoryRow>,
}

#[derive(Debug, Clone)]
pub struct LicenseSummary {
    pub id: i64,
    pub license: License,
    pub standing: LicenseStanding,
}

#[derive(Debug, Clone)]
pub struct PurchaseSeats {
    pub purchase: AddOnPurchase,
    pub active: bool,
    /// The newest [`SEAT_HOLDERS_SHOWN`] holders, by username.
    pub holders: Vec<User>,
}

pub async fn overview(state: &AppState) -> StoreResult<Overview> {
    let today = state.clock.today();
    let store = &state.store;
    // The licenses, then at once the current one's history and maximum over its term; the
    // other reads run alongside.
    let licenses_and_term = async {
        let rows = licenses::recent(state, i64::MAX).await?;
        let stored: Vec<StoredLicense> = rows.iter().map(|(_, stored)| stored.clone()).collect();
        let current_id = current_license(&stored, today).map(|chosen| chosen.id);
        let term = match current_license_of(&rows, current_id) {
            None => None,
            Some((_, license)) => {
                let (from, to) = license_term(license, today);
                Some(tokio::try_join!(
                    store.history_between(from, to),
                    store.historical_max(from, to),
                )?)
            }
        };
        Ok::<_, StoreError>((rows, current_id, term))
    };
    let ((rows, current_id, term), measurement, purchases, holders, eligible_users) = tokio::try_join!(
        licenses_and_term,
        store.latest_billable_measurement(),
        store.all_add_on_purchases(),
        store.seat_holders(SEAT_HOLDERS_SHOWN),
        store.instance_eligible_users(SUGGESTED_USERS),
    )?;

    let current = match (current_license_of(&rows, current_id), term) {
        (Some((row, license)), Some((history, historical_max))) => {
            // GitLab's `daily_billable_users_count`: the newest measurement; a live count
            // only before the first recount has run.
            let daily_billable_users = match measurement {
                Some(count) => count,
                None => licenses::live_billable_users(state, Some(license)).await?,
            };
            let figures = UsageFigures {
                historical_max,
                daily_billable_users,
                current_active_users: None,
            };
            Some(CurrentLicense {
                entity: license_entity(row.id, row.created_at, license, figures, today, true),
                license: license.clone(),
                term: (license.starts_at, license.expires_at.unwrap_or(today)),
                days_left: days_left(license, today),
                history,
            })
        }
        _ => None,
    };

    let unverifiable_licenses = rows
        .iter()
        .filter(|(_, stored)| stored.license().is_none())
        .count();
    let licenses = rows
        .iter()
        .filter_map(|(row, stored)| {
            stored.license().map(|license| LicenseSummary {
                id: row.id,
                license: license.clone(),
                standing: LicenseStanding::of(license, Some(row.id) == current_id, today),
            })
        })
        .collect();

    let purchases = purchases
        .into_iter()
        .map(|purchase| PurchaseSeats {
            active: crate::domain::add_ons::is_active(
                purchase.started_on,
                purchase.expires_on,
                today,
            ),
            holders: holders
                .iter()
                .filter(|holder| holder.add_on_purchase_id == purchase.id)
                .map(|holder| holder.user.clone())
                .collect(),
            purchase,
        })
        .collect();

    Ok(Overview {
        today,
        current,
        licenses,
        unverifiable_licenses,
        purchases,
        eligible_users,
        seat_usage: crate::services::seat_alerts::status(state).await?,
    })
}

/// The current license's row and decoding among `rows`.
fn current_license_of(
    rows: &[(LicenseRow, StoredLicense)],
    current_id: Option<i64>,
) -> Option<(&LicenseRow, &License)> {
    rows.iter()
        .find(|(row, _)| Some(row.id) == current_id)
        .and_then(|(row, stored)| stored.license().map(|license| (row, license)))
}
