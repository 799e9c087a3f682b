//! Background work: billable-user recounts and the daily history snapshot.
//!
//! Jobs are rows (durable across crashes and restarts). A worker claims one at a time with a
//! lease; the job's effect and its completion commit together, guarded by the claim, so each
//! job takes effect exactly once however many replicas run workers. The schedule is made of
//! jobs with one unique key per day and kind, so replicas scheduling the same day collide
//! harmlessly, and days missed while no server ran are scheduled when one comes back.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Timelike, Utc};
use tokio::sync::Notify;

use crate::domain::jobs::{JobKind, JobState};
use crate::services::{add_ons, fleet, hooks, licenses, seat_alerts};
use crate::state::AppState;
use crate::store::{ClaimOf, HistoryRow, JobEffect, JobRow, StoreResult};

/// Seats are refreshed every four hours.
const SEAT_REFRESH_HOURS: u32 = 4;

/// GitLab's schedule: the count at 23:50 UTC, the snapshot at 12:00 UTC.
const RECOUNT_AT: (u32, u32) = (23, 50);
const HISTORY_AT: (u32, u32) = (12, 0);
/// How far back missed days are made up (an instance down for longer keeps its gap).
const CATCH_UP_DAYS: i64 = 31;
/// The setting that marks the first day this instance scheduled anything.
const SCHEDULE_START_SETTING: &str = "schedule_started_on";

const LEASE: TimeDelta = TimeDelta::minutes(5);
const MAX_ATTEMPTS: i32 = 5;
const POLL_INTERVAL: Duration = Duration::from_secs(15);

/// When the next daily history snapshot is due after `now` (the page's "the first is
/// recorded at").
pub fn next_history_snapshot(now: DateTime<Utc>) -> DateTime<Utc> {
    let today = at(now.date_naive(), HISTORY_AT);
    if now < today {
        today
    } else {
        today + TimeDelta::days(1)
    }
}

fn at(day: NaiveDate, (hour, minute): (u32, u32)) -> DateTime<Utc> {
    day.and_time(NaiveTime::from_hms_opt(hour, minute, 0).unwrap_or(NaiveTime::MIN))
        .and_utc()
}

/// Makes sure every scheduled run due by now exists as a job, back to the start of the
/// schedule (at most [`CATCH_UP_DAYS`]). Returns how many were added.
pub async fn schedule_due(state: &AppState) -> StoreResult<usize> {
    let now = state.clock.now();
    let today = now.date_naive();
    let started_on = state
        .store
        .setting_or_insert(
            SCHEDULE_START_SETTING,
            &today.format("%Y-%m-%d").to_string(),
            now,
        )
        .await?;
    let started_on = NaiveDate::parse_from_str(&started_on, "%Y-%m-%d").unwrap_or(today);
    let first_day = started_on.max(today - TimeDelta::days(CATCH_UP_DAYS));
    // Every write wakes every replica (PostgreSQL NOTIFY) and invalidates caches, so only the
    // runs not scheduled yet are inserted; an idle tick is a single read.
    let existing = state
        .store
        .scheduled_job_keys(at(first_day, (0, 0)))
        .await?;
    let mut added = 0;
    let mut day = first_day;
    while day <= today {
        for (kind, time) in [
            (JobKind::History, HISTORY_AT),
            (JobKind::Recount, RECOUNT_AT),
        ] {
            let run_at = at(day, time);
            let key = format!("{kind}:{}", day.format("%Y-%m-%d"));
            if run_at <= now
                && !existing.contains(&key)
                && state
                    .store
                    .enqueue_job(kind, Some(&key), run_at, now)
                    .await?
            {
                added += 1;
            }
        }
        day += TimeDelta::days(1);
    }
    // The seat refresh only needs its latest run: it looks at the present, not at a day.
    let slot_hour = now.hour() / SEAT_REFRESH_HOURS * SEAT_REFRESH_HOURS;
    let key = format!(
        "{}:{}T{slot_hour:02}",
        JobKind::SeatRefresh,
        today.format("%Y-%m-%d")
    );
    if !existing.contains(&key)
        && state
            .store
            .enqueue_job(
                JobKind::SeatRefresh,
                Some(&key),
                at(today, (slot_hour, 0)),
                now,
            )
            .await?
    {
        added += 1;
    }
    added += schedule_fleet_syncs(state, now, &existing).await?;
    added += schedule_dormant_users(state, now, &existing).await?;
    Ok(added)
}

/// GitLab's dormant-user job, on its schedule (`21,42 0-4 * * *` UTC) while
/// `deactivate_dormant_users` is on: only the latest run due today (it looks at the present).
async fn schedule_dormant_users(
    state: &AppState,
    now: DateTime<Utc>,
    existing: &std::collections::HashSet<String>,
) -> StoreResult<usize> {
    let Some(slot) = crate::domain::dormant::current_slot(now) else {
        return Ok(0);
    };
    if !crate::services::settings::current(state)
        .await?
        .deactivate_dormant_users
    {
        return Ok(0);
    }
    let key = format!(
        "{}:{}",
        JobKind::DormantUsers,
        crate::domain::dormant::slot_key(slot)
    );
    let added = !existing.contains(&key)
        && state
            .store
            .enqueue_job(JobKind::DormantUsers, Some(&key), slot, now)
            .await?;
    Ok(usize::from(added))
}

/// One sync per online fleet instance and interval (`FLEET_SYNC_INTERVAL_MINUTES`, hourly by
/// default), keyed by the interval's start so replicas agree; only the current interval's
/// run is made up (a sync reads the present).
async fn schedule_fleet_syncs(
    state: &AppState,
    now: DateTime<Utc>,
    existing: &std::collections::HashSet<String>,
) -> StoreResult<usize> {
    let interval = i64::try_from(state.config.fleet_sync_interval.as_secs())
        .unwrap_or(3600)
        .max(60);
    let slot_start = now.timestamp() - now.timestamp().rem_euclid(interval);
    let Some(slot_at) = DateTime::<Utc>::from_timestamp(slot_start, 0) else {
        return Ok(0);
    };
    let mut added = 0;
    for instance in state.store.fleet_instances().await? {
        // Offline instances are imported, not synced; one synced (or about to be) in this
        // interval already has its run — on demand, or just after it was added.
        let synced_in_slot = instance.last_success_at.is_some_and(|at| at >= slot_at);
        let in_hand = matches!(instance.sync_status.as_str(), "queued" | "running");
        if instance.url.is_none() || synced_in_slot || in_hand {
            continue;
        }
        let key = format!(
            "{}:{}:{}",
            JobKind::FleetSync,
            instance.id,
            slot_at.format("%Y-%m-%dT%H:%M")
        );
        if !existing.contains(&key)
            && state
                .store
                .enqueue_subject_job(
                    JobKind::FleetSync,
                    Some(&key),
                    Some(instance.id),
                    slot_at,
                    now,
                )
                .await?
        {
            added += 1;
        }
    }
    Ok(added)
}

/// What a job does, computed before its effect is committed.
async fn effect_of(state: &AppState, job: &JobRow) -> Result<JobEffect, String> {
    let today = state.clock.today();
    match JobKind::from_name(&job.kind) {
        Some(JobKind::Recount) => {
            let current = licenses::current(state, today)
                .await
                .map_err(|error| error.to_string())?;
            let count = licenses::live_billable_users(state, current.as_ref().map(|(_, l)| l))
                .await
                .map_err(|error| error.to_string())?;
            Ok(JobEffect::Measurement {
                count,
                recorded_at: job.run_at,
                plan: current.map(|(_, license)| license.plan().to_string()),
            })
        }
        Some(JobKind::History) => {
            let current = licenses::current(state, today)
                .await
                .map_err(|error| error.to_string())?;
            // GitLab skips the snapshot without a current license and for trials.
            let Some((_, license)) = current.filter(|(_, license)| !license.restrictions.trial)
            else {
                return Ok(JobEffect::Nothing);
            };
            let count = licenses::daily_billable_users(state, Some(&license))
                .await
                .map_err(|error| error.to_string())?;
            Ok(JobEffect::History(HistoryRow {
                recorded_at: job.run_at,
                active_user_count: count,
            }))
        }
        Some(JobKind::SeatRefresh) => {
            // Idempotent, so it commits on its own; running it twice frees nothing more.
            add_ons::refresh_seats(state)
                .await
                .map_err(|error| error.to_string())?;
            // Licenses expire by the calendar: their alerts are checked on the same beat.
            hooks::check_license_alerts(state)
                .await
                .map_err(|error| error.to_string())?;
            Ok(JobEffect::Nothing)
        }
        Some(JobKind::DormantUsers) => {
            // Commits batch by batch; running it twice deactivates nobody twice.
            crate::services::dormant::run(state)
                .await
                .map_err(|error| error.to_string())?;
            Ok(JobEffect::Nothing)
        }
        // Runs apart (see `run_next`): its effect is a snapshot swapped in page by page.
        Some(JobKind::FleetSync) => Err("a fleet sync runs on its own".into()),
        None => Err(format!("unknown job kind `{}`", job.kind)),
    }
}

/// Claims and runs one due job of any kind; false when none was due.
pub async fn run_next(state: &AppState) -> StoreResult<bool> {
    run_next_of(state, ClaimOf::Any).await
}

async fn run_next_of(state: &AppState, of: ClaimOf) -> StoreResult<bool> {
    let now = state.clock.now();
    let Some(job) = state.store.claim_job_of(of, now, now + LEASE).await? else {
        return Ok(false);
    };
    run_claimed(state, job).await?;
    Ok(true)
}

/// When a failed attempt of `job` is tried again (none after the last).
fn retry_time(state: &AppState, job: &JobRow) -> Option<DateTime<Utc>> {
    (job.attempts < MAX_ATTEMPTS)
        .then(|| state.clock.now() + TimeDelta::seconds(30 * i64::from(job.attempts)))
}

/// Runs a claimed job and records its outcome.
async fn run_claimed(state: &AppState, job: JobRow) -> StoreResult<()> {
    let started = std::time::Instant::now();
    let outcome = if JobKind::from_name(&job.kind) == Some(JobKind::FleetSync) {
        // A sync commits its own completion with its snapshot (or its failure), guarded by
        // the claim like every job; a database failure under it is retried as any job's.
        match fleet::run_sync_job(state, &job).await {
            Ok(outcome) => outcome,
            Err(error) => {
                state
                    .store
                    .fail_job(&job, &error.to_string(), retry_time(state, &job))
                    .await?;
                JobState::Failed.as_str()
            }
        }
    } else {
        match effect_of(state, &job).await {
            Ok(effect) => {
                if state
                    .store
                    .finish_job(&job, &effect, state.clock.now())
                    .await?
                {
                    // The seat ledger's comparison of every user (its baseline, a plan
                    // change) goes on after the recount, a batch per transaction.
                    if JobKind::from_name(&job.kind) == Some(JobKind::Recount) {
                        if let Err(error) =
                            state.store.continue_ledger_scan(state.clock.now()).await
                        {
                            tracing::warn!(%error, "the seat ledger's scan stopped; the next recount continues it");
                        }
                    }
                    // A recount or a seat refresh moves the seats in use: the alerts follow.
                    if matches!(
                        JobKind::from_name(&job.kind),
                        Some(JobKind::Recount | JobKind::SeatRefresh)
                    ) {
                        seat_alerts::check_quietly(state).await;
                    }
                    // A recount moves today's count and a snapshot the peak: the true-up
                    // forecast may cross zero.
                    if matches!(
                        JobKind::from_name(&job.kind),
                        Some(JobKind::Recount | JobKind::History)
                    ) {
                        crate::services::true_up::check_forecast_quietly(state).await;
                    }
                    JobState::Done.as_str()
                } else {
                    tracing::warn!(
                        job_id = job.id,
                        kind = job.kind,
                        "job lease lost; not committed"
                    );
                    "lost"
                }
            }
            Err(error) => {
                tracing::warn!(job_id = job.id, kind = job.kind, error, "job failed");
                state
                    .store
                    .fail_job(&job, &error, retry_time(state, &job))
                    .await?;
                JobState::Failed.as_str()
            }
        }
    };
    state
        .metrics
        .observe_job(&job.kind, outcome, started.elapsed());
    Ok(())
}

/// Runs due jobs of every kind, one after the other, until none is left; returns how many
/// ran (tests, the CLI; the server runs [`spawn_worker`] and [`spawn_fleet_syncer`]).
pub async fn run_due(state: &AppState) -> StoreResult<usize> {
    let mut ran = 0;
    while run_next(state).await? {
        ran += 1;
    }
    Ok(ran)
}

/// The background worker of `serve`: schedules, then runs what is due, whenever woken (a
/// local enqueue or another replica's change) or every [`POLL_INTERVAL`]. System-hook
/// deliveries have their own sender (`services::hooks::spawn_sender`) and fleet syncs their
/// own runner ([`spawn_fleet_syncer`]): a receiver or a GitLab instance that never answers
/// must not hold up a recount.
pub fn spawn_worker(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match schedule_due(&state).await {
                Ok(added) if added > 0 => state.fleet_wake.notify_one(),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "scheduling failed"),
            }
            loop {
                match run_next_of(&state, ClaimOf::AllBut(JobKind::FleetSync)).await {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(error) => {
                        tracing::warn!(%error, "running jobs failed");
                        break;
                    }
                }
            }
            let _ = tokio::time::timeout(POLL_INTERVAL, state.jobs_wake.notified()).await;
        }
    })
}

/// Fleet syncs in flight at once, per server process: each holds a connection while it
/// stages, so a fleet of many instances syncs a few at a time rather than all at once.
const FLEET_SYNC_CONCURRENCY: usize = 2;

/// The fleet-sync runner of `serve`: claims due `fleet_sync` jobs, at most
/// [`FLEET_SYNC_CONCURRENCY`] at a time, a new one as soon as one ends; woken when a sync is
/// queued (here or by another replica) and otherwise every [`POLL_INTERVAL`].
pub fn spawn_fleet_syncer(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut in_flight = tokio::task::JoinSet::new();
        loop {
            while in_flight.len() < FLEET_SYNC_CONCURRENCY && state.store.is_reachable() {
                let now = state.clock.now();
                match state
                    .store
                    .claim_job_of(ClaimOf::Only(JobKind::FleetSync), now, now + LEASE)
                    .await
                {
                    Ok(Some(job)) => {
                        let state = state.clone();
                        in_flight.spawn(async move {
                            if let Err(error) = run_claimed(&state, job).await {
                                tracing::warn!(%error, "fleet sync failed to record its outcome");
                            }
                        });
                    }
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(%error, "could not claim fleet syncs");
                        break;
                    }
                }
            }
            tokio::select! {
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = tokio::time::timeout(POLL_INTERVAL, state.fleet_wake.notified()) => {}
            }
        }
    })
}

/// A wake-up handle shared by the enqueuers and the worker.
pub fn wake_handle() -> Arc<Notify> {
    Arc::new(Notify::new())
}
