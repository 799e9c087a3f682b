//! Durable jobs: the daily schedule, catching up missed days, exactly-once effects, retries
//! of abandoned work — on both backends.

use chrono::{TimeDelta, TimeZone, Utc};
use gitlab_license_server::domain::jobs::JobKind;
use gitlab_license_server::jobs;
use gitlab_license_server::store::{JobEffect, NewUser};
use serde_json::json;

use crate::on_both_backends;
use crate::support::app::{test_now, TestApp, ROOT_TOKEN};
use crate::support::licenses::{license, premium};

on_both_backends!(
    daily_schedule_records_history_once,
    missed_days_are_made_up,
    history_is_skipped_for_trials_and_without_license,
    a_job_takes_effect_once_even_if_two_workers_finish_it,
    abandoned_jobs_are_claimed_again,
    block_refresh_and_history_move_the_license_figures,
);

fn history_count(rows: &[gitlab_license_server::store::HistoryRow]) -> Vec<(String, i64)> {
    rows.iter()
        .map(|row| {
            (
                row.recorded_at.format("%Y-%m-%d %H:%M").to_string(),
                row.active_user_count,
            )
        })
        .collect()
}

async fn all_history(app: &TestApp) -> Vec<(String, i64)> {
    let rows = app
        .state
        .store
        .history_between(
            Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2100, 1, 1, 0, 0, 0).unwrap(),
        )
        .await
        .expect("history");
    history_count(&rows)
}

async fn daily_schedule_records_history_once(app: TestApp) {
    app.upload(&premium(10)).await;
    // 10:30: only the four-hourly seat refresh (its 08:00 run) is due today.
    assert_eq!(jobs::schedule_due(&app.state).await.expect("schedule"), 1);
    app.run_jobs().await;
    assert_eq!(all_history(&app).await, vec![]);
    // 12:00 passes: one snapshot of the latest count (and the 12:00 seat refresh);
    // scheduling again adds nothing.
    app.set_now(Utc.with_ymd_and_hms(2026, 6, 15, 12, 0, 5).unwrap());
    assert_eq!(jobs::schedule_due(&app.state).await.expect("schedule"), 2);
    // On PostgreSQL our own earlier NOTIFY comes back through the listener and bumps the
    // counter asynchronously; let it arrive before measuring the idle tick.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let changes = app.state.store.change_count();
    assert_eq!(
        jobs::schedule_due(&app.state).await.expect("schedule"),
        0,
        "idempotent"
    );
    assert_eq!(
        app.state.store.change_count(),
        changes,
        "an idle tick writes nothing"
    );
    app.run_jobs().await;
    assert_eq!(
        all_history(&app).await,
        vec![("2026-06-15 12:00".to_string(), 1)]
    );
    // 23:50 passes: a measurement; the next noon's snapshot reads it.
    app.add_user(NewUser::human("alice", false)).await;
    app.set_now(Utc.with_ymd_and_hms(2026, 6, 16, 12, 30, 0).unwrap());
    assert_eq!(jobs::schedule_due(&app.state).await.expect("schedule"), 3);
    app.run_jobs().await;
    let history = all_history(&app).await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[1].0, "2026-06-16 12:00");
    let statuses = app.state.store.jobs().await.expect("jobs");
    assert!(
        statuses
            .iter()
            .all(|job| job.state == gitlab_license_server::domain::jobs::JobState::Done),
        "{statuses:?}"
    );
}

async fn missed_days_are_made_up(app: TestApp) {
    app.upload(&premium(10)).await;
    app.run_jobs().await;
    // The schedule began three days ago; no server ran since.
    app.state
        .store
        .setting_or_insert("schedule_started_on", "2026-06-12", test_now())
        .await
        .expect("setting");
    jobs::schedule_due(&app.state).await.expect("schedule");
    app.run_jobs().await;
    let days: Vec<String> = all_history(&app)
        .await
        .into_iter()
        .map(|(day, _)| day)
        .collect();
    assert_eq!(
        days,
        ["2026-06-12 12:00", "2026-06-13 12:00", "2026-06-14 12:00"]
    );
    // Coming back again schedules nothing twice.
    jobs::schedule_due(&app.state).await.expect("schedule");
    app.run_jobs().await;
    assert_eq!(all_history(&app).await.len(), 3);
}

async fn history_is_skipped_for_trials_and_without_license(app: TestApp) {
    app.set_now(Utc.with_ymd_and_hms(2026, 6, 15, 13, 0, 0).unwrap());
    jobs::schedule_due(&app.state).await.expect("schedule");
    app.run_jobs().await;
    assert_eq!(all_history(&app).await, vec![], "no license: no snapshot");
    app.upload(&license("2026-06-01", "2026-07-01", json!({"trial": true})))
        .await;
    app.set_now(Utc.with_ymd_and_hms(2026, 6, 16, 13, 0, 0).unwrap());
    jobs::schedule_due(&app.state).await.expect("schedule");
    app.run_jobs().await;
    assert_eq!(all_history(&app).await, vec![], "trial: no snapshot");
    let statuses = app.state.store.jobs().await.expect("jobs");
    assert!(
        statuses
            .iter()
            .all(|job| job.state == gitlab_license_server::domain::jobs::JobState::Done),
        "skipping is success: {statuses:?}"
    );
}

async fn a_job_takes_effect_once_even_if_two_workers_finish_it(app: TestApp) {
    let store = &app.state.store;
    let now = test_now();
    store
        .enqueue_job(JobKind::Recount, None, now, now)
        .await
        .expect("enqueue");
    let job = store
        .claim_job(now, now + TimeDelta::minutes(5))
        .await
        .expect("claim")
        .expect("a job");
    assert!(
        store
            .claim_job(now, now + TimeDelta::minutes(5))
            .await
            .expect("claim")
            .is_none(),
        "claimed once"
    );
    let effect = JobEffect::Measurement {
        count: 7,
        recorded_at: now,
        plan: None,
    };
    assert!(store.finish_job(&job, &effect, now).await.expect("finish"));
    assert!(
        !store.finish_job(&job, &effect, now).await.expect("finish"),
        "a second completion is refused"
    );
    assert_eq!(
        store.latest_billable_measurement().await.expect("query"),
        Some(7)
    );
}

async fn abandoned_jobs_are_claimed_again(app: TestApp) {
    let store = &app.state.store;
    let now = test_now();
    store
        .enqueue_job(JobKind::Recount, None, now, now)
        .await
        .expect("enqueue");
    // A worker claims it and dies.
    let stale = store
        .claim_job(now, now + TimeDelta::minutes(5))
        .await
        .expect("claim")
        .expect("job");
    // Once the lease runs out another worker takes it over; the dead one cannot complete it.
    let later = now + TimeDelta::minutes(6);
    let fresh = store
        .claim_job(later, later + TimeDelta::minutes(5))
        .await
        .expect("claim")
        .expect("reclaimed");
    assert_eq!(fresh.id, stale.id);
    assert_eq!(fresh.attempts, 2);
    let effect = JobEffect::Measurement {
        count: 3,
        recorded_at: now,
        plan: None,
    };
    assert!(!store
        .finish_job(&stale, &effect, later)
        .await
        .expect("finish"));
    assert!(store
        .finish_job(&fresh, &effect, later)
        .await
        .expect("finish"));
}

async fn block_refresh_and_history_move_the_license_figures(app: TestApp) {
    // 3 seats; root plus three users is one over.
    let id = app.upload(&premium(3)).await.json()["id"].clone();
    // Everything through the API an administrator uses.
    let mut user_ids = Vec::new();
    for name in ["alice", "bob", "carol"] {
        let reply = app
            .send_with(
                app.client.post(app.url("/api/v4/users")).json(
                    &json!({"username": name, "name": name, "email": format!("{name}@example.org")}),
                ),
                Some(ROOT_TOKEN),
            )
            .await;
        assert_eq!(reply.status, reqwest::StatusCode::CREATED, "{}", reply.body);
        user_ids.push(reply.json()["id"].clone());
    }
    app.set_now(test_now() + TimeDelta::minutes(1));
    app.put(&format!("/api/v4/license/{id}/refresh_billable_users"))
        .await;
    app.run_jobs().await;
    let current = app.get("/api/v4/license").await.json();
    assert_eq!(
        (current["active_users"].clone(), current["overage"].clone()),
        (json!(4), json!(1))
    );
    // Noon: the snapshot takes today's 4.
    app.set_now(Utc.with_ymd_and_hms(2026, 6, 15, 12, 0, 1).unwrap());
    jobs::schedule_due(&app.state).await.expect("schedule");
    app.run_jobs().await;
    assert_eq!(app.get("/api/v4/license").await.json()["historical_max"], 4);
    // Blocking a user and recounting drops active_users and the overage; the peak stays.
    let blocked = app
        .send(
            reqwest::Method::POST,
            &format!("/api/v4/users/{}/block", user_ids[0]),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(
        (blocked.status, blocked.json()),
        (reqwest::StatusCode::CREATED, json!(true))
    );
    app.set_now(Utc.with_ymd_and_hms(2026, 6, 15, 12, 5, 0).unwrap());
    app.put(&format!("/api/v4/license/{id}/refresh_billable_users"))
        .await;
    app.run_jobs().await;
    let current = app.get("/api/v4/license").await.json();
    assert_eq!(current["active_users"], 3);
    assert_eq!(current["overage"], 0);
    assert_eq!(current["historical_max"], 4);
    assert_eq!(current["maximum_user_count"], 4);
    let csv = app.get("/api/v4/license/usage_export.csv").await.body;
    assert!(
        csv.ends_with("Date,Billable User Count\n2026-06-15 12:00:00,4\n"),
        "{csv}"
    );
}
