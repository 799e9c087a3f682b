//! License use cases: read the store, apply the domain rules, keep the caches honest.
//! No HTTP here (handlers turn results into responses) and no SQL (the store does that).

use std::sync::Arc;

use bytes::Bytes;
use chrono::NaiveDate;

use crate::cache::Cache;
use crate::domain::jobs::JobKind;
use crate::domain::licenses::{
    current_license, license_entity, license_term, LicenseEntity, StoredLicense, UsageFigures,
    CURRENT_LICENSE_WINDOW,
};
use crate::domain::usage_csv;
use crate::license_key::{self, License};
use crate::state::AppState;
use crate::store::{LicenseRow, StoreResult};

/// Decodes a stored row, reusing an earlier decode of the same text.
pub(crate) fn stored(state: &AppState, row: &LicenseRow) -> StoredLicense {
    let decoded = state.cache.decoded(row.id, &row.data).unwrap_or_else(|| {
        let decoded = Arc::new(license_key::decode(
            &row.data,
            &state.license_keys.current(),
        ));
        state
            .cache
            .put_decoded(row.id, &row.data, Arc::clone(&decoded));
        decoded
    });
    StoredLicense {
        id: row.id,
        created_at: row.created_at,
        decoded,
    }
}

pub(crate) async fn recent(
    state: &AppState,
    limit: i64,
) -> StoreResult<Vec<(LicenseRow, StoredLicense)>> {
    let rows = state.store.recent_licenses(limit).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let decoded = stored(state, &row);
            (row, decoded)
        })
        .collect())
}

/// How many stored licenses no configured public key verifies. They are kept, but hidden
/// from `GET /license`, `GET /licenses` and the page: after a change of keys, every license
/// signed by the old key. The fix is [`UNVERIFIABLE_FIX`].
pub async fn unverifiable_count(state: &AppState) -> StoreResult<usize> {
    Ok(recent(state, i64::MAX)
        .await?
        .iter()
        .filter(|(_, stored)| stored.license().is_none())
        .count())
}

/// What to do about licenses no configured key verifies (logged and shown on the page).
pub const UNVERIFIABLE_FIX: &str = "add the public key that signed them to \
    LICENSE_PUBLIC_KEY_FILE beside the current one (the file may hold several PEM public keys) \
    and restart; or upload the same licenses signed again with the current key";

/// Warns, loudly, when stored licenses are hidden because no configured key verifies them
/// (at start, and after every license change).
pub async fn warn_about_unverifiable(state: &AppState) {
    match unverifiable_count(state).await {
        Ok(0) => {}
        Ok(count) => tracing::warn!(
            count,
            fix = UNVERIFIABLE_FIX,
            "stored licenses that no configured public key verifies are hidden from \
             GET /license, GET /licenses and the subscription page; their rows are kept"
        ),
        Err(error) => {
            tracing::warn!(%error, "could not check the stored licenses against the public keys")
        }
    }
}

/// The current license with its stored row.
pub async fn current(
    state: &AppState,
    today: NaiveDate,
) -> StoreResult<Option<(LicenseRow, License)>> {
    let rows = recent(state, CURRENT_LICENSE_WINDOW).await?;
    let licenses: Vec<StoredLicense> = rows.iter().map(|(_, stored)| stored.clone()).collect();
    let Some(chosen) = current_license(&licenses, today) else {
        return Ok(None);
    };
    let Some(license) = chosen.license().cloned() else {
        return Ok(None);
    };
    Ok(rows
        .into_iter()
        .find(|(row, _)| row.id == chosen.id)
        .map(|(row, _)| (row, license)))
}

/// GitLab's `daily_billable_users_count`: the newest measurement, or a live count.
pub async fn daily_billable_users(state: &AppState, current: Option<&License>) -> StoreResult<i64> {
    if let Some(count) = state.store.latest_billable_measurement().await? {
        return Ok(count);
    }
    live_billable_users(state, current).await
}

/// A billable-user count made now (one SQL aggregate).
/// Which of `user_ids` occupy a seat of the current license (`using_license_seat`): none
/// without a current license.
pub async fn seat_users(
    state: &AppState,
    user_ids: &[i64],
) -> StoreResult<std::collections::HashSet<i64>> {
    match current(state, state.clock.today()).await? {
        None => Ok(std::collections::HashSet::new()),
        Some((_, license)) => {
            state
                .store
                .billable_among(user_ids, license.plan() == "ultimate")
                .await
        }
    }
}

/// Whether the current license is Ultimate (where guests occupy no seat); false without one.
pub async fn current_is_ultimate(state: &AppState) -> StoreResult<bool> {
    Ok(current(state, state.clock.today())
        .await?
        .is_some_and(|(_, license)| license.plan() == "ultimate"))
}

pub async fn live_billable_users(state: &AppState, current: Option<&License>) -> StoreResult<i64> {
    let ultimate = current.is_some_and(|license| license.plan() == "ultimate");
    state.store.count_billable_users(ultimate).await
}

pub(super) async fn entity(
    state: &AppState,
    row: &LicenseRow,
    license: &License,
    daily_billable_users: i64,
    current_active_users: Option<i64>,
    with_active_users: bool,
) -> StoreResult<LicenseEntity> {
    let today = state.clock.today();
    let (from, to) = license_term(license, today);
    let figures = UsageFigures {
        historical_max: state.store.historical_max(from, to).await?,
        daily_billable_users,
        current_active_users,
    };
    Ok(license_entity(
        row.id,
        row.created_at,
        license,
        figures,
        today,
        with_active_users,
    ))
}

/// The body of `GET /license`: the current license, or `null`. Served from cache while nothing
/// has changed since it was computed today.
pub async fn current_license_json(state: &AppState) -> StoreResult<Bytes> {
    let today = state.clock.today();
    if let Some(body) = state.cache.current_license(today, &state.store) {
        return Ok(body);
    }
    let ticket = Cache::ticket(&state.store);
    let body = match state.store.unless_unreachable(current_entity(state)).await {
        Ok(None) => Bytes::from_static(b"null"),
        Ok(Some(entity)) => Bytes::from(serde_json::to_vec(&entity).unwrap_or_default()),
        // During an outage the body last computed today is still the answer: nothing can
        // have changed it without the database.
        Err(error) if error.is_unavailable() => {
            return state.cache.last_known_current_license(today).ok_or(error);
        }
        Err(error) => return Err(error),
    };
    state.cache.put_current_license(today, ticket, body.clone());
    Ok(body)
}

/// The current license as `GET /license` shows it (with `active_users`), if there is one.
pub async fn current_entity(state: &AppState) -> StoreResult<Option<LicenseEntity>> {
    let Some((row, license)) = current(state, state.clock.today()).await? else {
        return Ok(None);
    };
    let daily = daily_billable_users(state, Some(&license)).await?;
    Ok(Some(
        entity(state, &row, &license, daily, None, true).await?,
    ))
}

/// `GET /licenses`: every decodable row, newest first. Rows whose key no longer decodes (for
/// example after the issuer key was rotated away) are left out rather than failing the list.
pub async fn list(state: &AppState) -> StoreResult<Vec<LicenseEntity>> {
    let today = state.clock.today();
    let rows = recent(state, i64::MAX).await?;
    let licenses: Vec<StoredLicense> = rows.iter().map(|(_, stored)| stored.clone()).collect();
    let current = current_license(&licenses, today).and_then(StoredLicense::license);
    let daily = daily_billable_users(state, current).await?;
    let current_active_users = current.map(|_| daily);
    let mut entities = Vec::with_capacity(rows.len());
    for (row, stored) in &rows {
        if let Some(license) = stored.license() {
            entities.push(entity(state, row, license, daily, current_active_users, false).await?);
        }
    }
    Ok(entities)
}

/// `GET /license/:id`: any row, current or not. `None` when absent or no longer decodable.
pub async fn find(state: &AppState, id: i64) -> StoreResult<Option<LicenseEntity>> {
    let Some(row) = state.store.find_license(id).await? else {
        return Ok(None);
    };
    let decoded = stored(state, &row);
    let Some(license) = decoded.license() else {
        return Ok(None);
    };
    let current = current(state, state.clock.today()).await?;
    let daily = daily_billable_users(state, current.as_ref().map(|(_, license)| license)).await?;
    Ok(Some(entity(state, &row, license, daily, None, true).await?))
}

/// `PUT /license/:id/refresh_billable_users`: `None` for an unknown id. Queues a recount; a
/// license that has not started yet queues none (GitLab's newest behaviour) but still answers
/// success.
pub async fn refresh_billable_users(state: &AppState, id: i64) -> StoreResult<Option<()>> {
    let Some(row) = state.store.find_license(id).await? else {
        return Ok(None);
    };
    let started = stored(state, &row)
        .license()
        .is_some_and(|license| license.started(state.clock.today()));
    if started {
        enqueue_recount(state).await?;
    }
    Ok(Some(()))
}

/// `GET /license/usage_export.csv`: `None` when there is no current license.
pub async fn usage_csv(state: &AppState) -> StoreResult<Option<String>> {
    let now = state.clock.now();
    let today = now.date_naive();
    let Some((row, license)) = current(state, today).await? else {
        return Ok(None);
    };
    let (from, to) = license_term(&license, today);
    let history = state.store.history_between(from, to).await?;
    Ok(Some(usage_csv::render(&row.data, &license, &history, now)))
}

/// Queues a recount now (the refresh endpoint, and uploads of started licenses); the worker
/// runs it (`jobs`).
pub(super) async fn enqueue_recount(state: &AppState) -> StoreResult<()> {
    let now = state.clock.now();
    state
        .store
        .enqueue_job(JobKind::Recount, None, now, now)
        .await?;
    state.jobs_wake.notify_one();
    Ok(())
}
