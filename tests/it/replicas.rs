//! Several real server processes on one database, and the history import command.

use std::time::{Duration, Instant};

use chrono::{NaiveTime, TimeDelta, Utc};
use serde_json::json;

use crate::on_both_backends;
use crate::support::app::{postgres_available, Backend, TestApp, ROOT_TOKEN};
use crate::support::licenses::license;
use crate::support::process::{binary, free_port, start_server};

on_both_backends!(history_import_round_trips_with_the_export);

async fn history_import_round_trips_with_the_export(app: TestApp) {
    let key = license(
        "2026-01-01",
        "2027-01-01",
        json!({"plan": "premium", "active_user_count": 10}),
    );
    app.upload(&key).await;
    let rows: Vec<_> = (0..5)
        .map(|day| gitlab_license_server::store::HistoryRow {
            recorded_at: crate::support::app::test_now() - TimeDelta::days(day)
                + TimeDelta::seconds(day),
            active_user_count: 7 + day,
        })
        .collect();
    app.state
        .store
        .insert_history(&rows)
        .await
        .expect("history");
    let export = app.get("/api/v4/license/usage_export.csv").await.body;
    let file = app.data_dir.join("export.csv");
    std::fs::write(&file, &export).expect("write");

    let fresh = TestApp::start(app.backend, &[]).await;
    let import = || {
        binary()
            .args(["history", "import"])
            .arg(&file)
            .env("DATABASE_URL", &fresh.database_url)
            .output()
            .expect("cli")
    };
    let first = import();
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&first.stdout).trim(),
        "imported 5 of 5 rows (0 already present)"
    );
    let second = import();
    assert_eq!(
        String::from_utf8_lossy(&second.stdout).trim(),
        "imported 0 of 5 rows (5 already present)"
    );
    fresh.upload(&key).await;
    let table = |csv: &str| {
        csv.split_once("Date,Billable User Count\n")
            .map(|(_, rows)| rows.to_string())
    };
    let re_exported = fresh.get("/api/v4/license/usage_export.csv").await.body;
    assert_eq!(
        table(&re_exported),
        table(&export),
        "the imported history exports the same"
    );
    assert_eq!(
        fresh.get("/api/v4/license").await.json()["historical_max"],
        11
    );

    let bad = app.data_dir.join("bad.csv");
    std::fs::write(
        &bad,
        "Date,Billable User Count\n2026-01-01 12:00:00,5\nnot a row\n",
    )
    .expect("write");
    let output = binary()
        .args(["history", "import"])
        .arg(&bad)
        .env("DATABASE_URL", &fresh.database_url)
        .output()
        .expect("cli");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("line 3"));
}

/// Two `serve` processes on one PostgreSQL database: the schedule, the made-up days and a
/// burst of refreshes sent to both each take effect exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_run_each_job_exactly_once() {
    if !postgres_available() {
        return;
    }
    let app = TestApp::start(Backend::Postgres, &[]).await;
    let now = Utc::now();
    let today = now.date_naive();
    let key = license(
        "2026-01-01",
        "2099-01-01",
        json!({"plan": "premium", "active_user_count": 100}),
    );
    // A license current by the real clock, and a schedule that began four days ago.
    app.upload(&key).await;
    let started_on = today - TimeDelta::days(4);
    app.state
        .store
        .setting_or_insert(
            "schedule_started_on",
            &started_on.format("%Y-%m-%d").to_string(),
            now,
        )
        .await
        .expect("setting");
    let ports = [free_port(), free_port()];
    let replicas = [
        start_server(&app.database_url, &app.data_dir.join("a"), ports[0], &[]).await,
        start_server(&app.database_url, &app.data_dir.join("b"), ports[1], &[]).await,
    ];
    let client = reqwest::Client::new();
    let id = app.get("/api/v4/license").await.json()["id"].clone();
    for round in 0..10 {
        let port = ports[round % 2];
        let reply = client
            .put(format!(
                "http://127.0.0.1:{port}/api/v4/license/{id}/refresh_billable_users"
            ))
            .header("PRIVATE-TOKEN", ROOT_TOKEN)
            .send()
            .await
            .expect("refresh");
        assert_eq!(reply.status(), reqwest::StatusCode::ACCEPTED);
    }
    // Wait for both workers to drain the queue.
    let started = Instant::now();
    loop {
        let jobs = app.state.store.jobs().await.expect("jobs");
        if !jobs.is_empty()
            && jobs
                .iter()
                .all(|job| job.state == gitlab_license_server::domain::jobs::JobState::Done)
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "jobs did not finish: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let jobs = app.state.store.jobs().await.expect("jobs");
    assert!(
        jobs.iter().all(|job| job.attempts == 1),
        "each job claimed once: {jobs:?}"
    );
    let noon = NaiveTime::from_hms_opt(12, 0, 0).expect("noon");
    let expected_days: Vec<_> = (0..=4)
        .map(|back| today - TimeDelta::days(back))
        .filter(|day| day.and_time(noon).and_utc() <= now)
        .collect();
    let history_jobs = jobs
        .iter()
        .filter(|job| job.kind == "historical_data")
        .count();
    assert_eq!(
        history_jobs,
        expected_days.len(),
        "one snapshot job per day, whichever replica scheduled it"
    );
    let history = app
        .state
        .store
        .history_between(
            started_on.and_time(NaiveTime::MIN).and_utc(),
            now + TimeDelta::days(1),
        )
        .await
        .expect("history");
    assert_eq!(
        history.len(),
        expected_days.len(),
        "one snapshot per day: {history:?}"
    );
    let recounts = jobs
        .iter()
        .filter(|job| job.kind == "billable_users_count" && job.unique_key.is_none())
        .count();
    assert_eq!(recounts, 11, "ten refreshes and the upload's recount");

    // The administrator's flow across both replicas: a 2-seat license, three new users,
    // refresh, block one, refresh — active_users and overage follow GitLab's rules.
    let base = |replica: usize| format!("http://127.0.0.1:{}/api/v4", ports[replica]);
    let small = license(
        "2026-01-01",
        "2099-01-01",
        json!({"plan": "premium", "active_user_count": 2}),
    );
    let reply = client
        .post(format!("{}/license", base(0)))
        .header("PRIVATE-TOKEN", ROOT_TOKEN)
        .json(&json!({"license": small}))
        .send()
        .await
        .expect("upload");
    assert_eq!(reply.status(), reqwest::StatusCode::CREATED);
    let small_id = reply.json::<serde_json::Value>().await.expect("json")["id"].clone();
    let mut user_ids = Vec::new();
    for name in ["ada", "bob", "cy"] {
        let reply = client
            .post(format!("{}/users", base(0)))
            .header("PRIVATE-TOKEN", ROOT_TOKEN)
            .json(&json!({"username": name, "name": name, "email": format!("{name}@example.org")}))
            .send()
            .await
            .expect("create user");
        assert_eq!(reply.status(), reqwest::StatusCode::CREATED);
        user_ids.push(reply.json::<serde_json::Value>().await.expect("json")["id"].clone());
    }
    let refresh_and_read = |refresh_on: usize, read_on: usize| {
        let client = client.clone();
        let app = &app;
        let (refresh, read) = (base(refresh_on), base(read_on));
        let small_id = small_id.clone();
        async move {
            client
                .put(format!(
                    "{refresh}/license/{small_id}/refresh_billable_users"
                ))
                .header("PRIVATE-TOKEN", ROOT_TOKEN)
                .send()
                .await
                .expect("refresh");
            let started = Instant::now();
            while app
                .state
                .store
                .jobs()
                .await
                .expect("jobs")
                .iter()
                .any(|job| job.state != gitlab_license_server::domain::jobs::JobState::Done)
            {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "recount did not run"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            client
                .get(format!("{read}/license"))
                .header("PRIVATE-TOKEN", ROOT_TOKEN)
                .send()
                .await
                .expect("read")
                .json::<serde_json::Value>()
                .await
                .expect("json")
        }
    };
    let current = refresh_and_read(1, 0).await;
    assert_eq!(
        (current["active_users"].clone(), current["overage"].clone()),
        (json!(4), json!(2))
    );
    let reply = client
        .post(format!("{}/users/{}/block", base(1), user_ids[0]))
        .header("PRIVATE-TOKEN", ROOT_TOKEN)
        .send()
        .await
        .expect("block");
    assert_eq!(reply.status(), reqwest::StatusCode::CREATED);
    let current = refresh_and_read(0, 1).await;
    assert_eq!(
        (current["active_users"].clone(), current["overage"].clone()),
        (json!(3), json!(1))
    );
    drop(replicas);
}

/// Two `serve` processes on one PostgreSQL database recount at the same moment, many times:
/// each seat-alert threshold the count crosses fires exactly one system-hook event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_fire_a_seat_alert_once() {
    if !postgres_available() {
        return;
    }
    let app = TestApp::start(Backend::Postgres, &[]).await;
    // A 10-seat license current by the real clock, uploaded while root is the only billable
    // user (10 %: no alert yet).
    let key = license(
        "2026-01-01",
        "2099-01-01",
        json!({"plan": "premium", "active_user_count": 10}),
    );
    assert_eq!(app.upload(&key).await.status, 201);
    for index in 0..8 {
        app.add_user(gitlab_license_server::store::NewUser::human(
            &format!("member{index}"),
            false,
        ))
        .await;
    }
    let ports = [free_port(), free_port()];
    let _replicas = [
        start_server(&app.database_url, &app.data_dir.join("a"), ports[0], &[]).await,
        start_server(&app.database_url, &app.data_dir.join("b"), ports[1], &[]).await,
    ];
    let client = reqwest::Client::new();
    let id = app.get("/api/v4/license").await.json()["id"].clone();
    // Five rounds of a refresh sent to both replicas at once.
    for _ in 0..5 {
        let refreshes = ports.map(|port| {
            client
                .put(format!(
                    "http://127.0.0.1:{port}/api/v4/license/{id}/refresh_billable_users"
                ))
                .header("PRIVATE-TOKEN", ROOT_TOKEN)
                .send()
        });
        let [first, second] = refreshes;
        let (first, second) = tokio::join!(first, second);
        for reply in [first, second] {
            assert_eq!(
                reply.expect("refresh").status(),
                reqwest::StatusCode::ACCEPTED
            );
        }
    }
    let started = Instant::now();
    loop {
        let jobs = app.state.store.jobs().await.expect("jobs");
        let recounts_done = jobs
            .iter()
            .filter(|job| job.kind == "billable_users_count" && job.unique_key.is_none())
            .filter(|job| job.state == gitlab_license_server::domain::jobs::JobState::Done)
            .count();
        if recounts_done >= 11 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "recounts did not finish: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events = app
        .query_texts(
            "SELECT payload FROM hook_events WHERE event_name = 'seat_usage_threshold_reached' ORDER BY id",
        )
        .await;
    let thresholds: Vec<i64> = events
        .iter()
        .map(|payload| {
            serde_json::from_str::<serde_json::Value>(payload).expect("payload")
                ["threshold_percent"]
                .as_i64()
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        thresholds,
        [80, 90],
        "9 of 10 seats: the 80 % and 90 % alerts, each exactly once: {events:?}"
    );
    let fired = app
        .query_texts("SELECT subject || ':' || threshold FROM seat_alerts ORDER BY threshold")
        .await;
    assert_eq!(fired.len(), 2, "{fired:?}");
}
