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
    // The seat ledger, written by whichever replica ran each recount (eleven of them at the
    // same moment at first): every change once.
    let ledger = app
        .query_texts("SELECT username || ' ' || direction FROM seat_ledger ORDER BY id")
        .await;
    assert_eq!(
        ledger,
        [
            "root baseline",
            "ada started",
            "bob started",
            "cy started",
            "ada stopped"
        ],
        "each change recorded once"
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

/// Two replicas on one PostgreSQL, sharing the secrets key, asked to sync the same instance
/// at once, again and again (and each scheduling its hourly sync too): every sync job ends
/// once, the snapshot holds each upstream user once, and no log line, metric or answer of
/// either replica carries the instance's token — through rate limits and a refused token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_sync_a_fleet_instance_once_and_never_log_its_token() {
    use crate::support::fault_proxy::{Fault, FaultProxy, Rule};
    if !postgres_available() {
        return;
    }
    let app = TestApp::start(Backend::Postgres, &[]).await;
    let upstream = TestApp::start(Backend::Sqlite, &[]).await;
    assert_eq!(
        upstream
            .upload(&crate::support::licenses::premium_today(500))
            .await
            .status,
        201
    );
    for index in 0..150 {
        upstream
            .add_user(gitlab_license_server::store::NewUser::human(
                &format!("person{index}"),
                false,
            ))
            .await;
    }
    let root = upstream
        .state
        .store
        .find_user_by_username("root")
        .await
        .expect("store")
        .expect("root");
    let (token, token_id) = upstream.token_for(&root, &["read_api"], None).await;
    let proxy = FaultProxy::start(&upstream.base).await;
    proxy.add(Rule {
        path: "/api/v4/users",
        skip: 1,
        times: 2,
        fault: Fault::RateLimited {
            retry_after_seconds: 1,
        },
    });
    let secrets_key = "q3Vh0mUqk1rJ1p6n3n0Zr8XlqJ0mX9m0nq6Wkq9yW1A=";
    let settings = [
        ("SECRETS_KEY", secrets_key),
        ("RUST_LOG", "debug"),
        ("OUTBOUND_RETRY_BASE_MILLISECONDS", "50"),
    ];
    let ports = [free_port(), free_port()];
    let dirs = [app.data_dir.join("a"), app.data_dir.join("b")];
    let _replicas = [
        start_server(&app.database_url, &dirs[0], ports[0], &settings).await,
        start_server(&app.database_url, &dirs[1], ports[1], &settings).await,
    ];
    let client = reqwest::Client::new();
    let created = client
        .post(format!(
            "http://127.0.0.1:{}/api/v4/-/fleet/instances",
            ports[0]
        ))
        .header("PRIVATE-TOKEN", ROOT_TOKEN)
        .json(&json!({"name": "prod", "url": proxy.base, "token": token}))
        .send()
        .await
        .expect("create");
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    let mut answers = String::new();
    for _ in 0..5 {
        let [first, second] = ports.map(|port| {
            client
                .post(format!(
                    "http://127.0.0.1:{port}/api/v4/-/fleet/instances/prod/sync"
                ))
                .header("PRIVATE-TOKEN", ROOT_TOKEN)
                .send()
        });
        let (first, second) = tokio::join!(first, second);
        for reply in [first, second] {
            let reply = reply.expect("sync");
            assert_eq!(reply.status(), reqwest::StatusCode::ACCEPTED);
            answers.push_str(&reply.text().await.unwrap_or_default());
        }
    }
    let started = Instant::now();
    loop {
        let jobs = app.state.store.jobs().await.expect("jobs");
        let syncs: Vec<_> = jobs.iter().filter(|job| job.kind == "fleet_sync").collect();
        let open = syncs.iter().any(|job| {
            matches!(
                job.state,
                gitlab_license_server::domain::jobs::JobState::Pending
                    | gitlab_license_server::domain::jobs::JobState::Running
            )
        });
        if !open && !syncs.is_empty() {
            assert!(
                syncs.iter().all(|job| job.last_error.is_none()),
                "{syncs:?}"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "syncs did not finish: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let counts = app
        .query_texts(
            "SELECT CAST(COUNT(*) AS TEXT) || ' ' || CAST(COUNT(DISTINCT upstream_id) AS TEXT) FROM fleet_users",
        )
        .await;
    assert_eq!(counts, ["151 151"], "every upstream user exactly once");
    let status = app
        .query_texts("SELECT sync_status FROM fleet_instances")
        .await;
    assert_eq!(status, ["success"]);

    // The token is refused upstream: the failure is shown, the token is not.
    assert_eq!(
        upstream
            .delete(&format!("/api/v4/personal_access_tokens/{token_id}"))
            .await
            .status,
        204
    );
    let reply = client
        .post(format!(
            "http://127.0.0.1:{}/api/v4/-/fleet/instances/prod/sync",
            ports[1]
        ))
        .header("PRIVATE-TOKEN", ROOT_TOKEN)
        .send()
        .await
        .expect("sync");
    assert_eq!(reply.status(), reqwest::StatusCode::ACCEPTED);
    let started = Instant::now();
    while app
        .query_texts("SELECT sync_status FROM fleet_instances")
        .await
        != ["failed"]
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no failure recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for port in ports {
        for path in [
            "/-/metrics",
            "/api/v4/-/fleet/instances",
            "/api/v4/-/fleet/summary",
            "/api/v4/audit_events",
        ] {
            let body = client
                .get(format!("http://127.0.0.1:{port}{path}"))
                .header("PRIVATE-TOKEN", ROOT_TOKEN)
                .send()
                .await
                .expect("get")
                .text()
                .await
                .unwrap_or_default();
            answers.push_str(&body);
        }
    }
    assert!(answers.contains("fleet_instance_created"));
    assert!(!answers.contains(&token), "a response carries the token");
    let mut logs = String::new();
    for dir in &dirs {
        for file in ["server.log", "server.err.log"] {
            logs.push_str(&std::fs::read_to_string(dir.join(file)).unwrap_or_default());
        }
    }
    assert!(logs.contains("fleet instance synced"), "{logs}");
    assert!(logs.contains("fleet sync failed"), "{logs}");
    assert!(!logs.contains(&token), "a log line carries the token");
    // Sealed with the shared key, not the key files (none was generated).
    assert!(!dirs[0].join("keys/secrets.key").exists());
}

/// GitLab's user cap under concurrency: two server processes on one PostgreSQL, users created
/// on both at the same moment, never both past the cap — exactly as many become active as
/// the cap leaves room for; the rest wait for approval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_never_create_users_past_the_cap() {
    if !postgres_available() {
        return;
    }
    let app = TestApp::start(Backend::Postgres, &[]).await;
    let key = license(
        "2026-01-01",
        "2099-01-01",
        json!({"plan": "premium", "active_user_count": 100}),
    );
    assert_eq!(app.upload(&key).await.status, 201);
    // root and one member: 2 billable users; room for 3 more under a cap of 5.
    app.add_user(gitlab_license_server::store::NewUser::human(
        "member", false,
    ))
    .await;
    let set = app
        .send_with(
            app.client
                .put(app.url("/api/v4/-/seat_control"))
                .json(&json!({"seat_control": "user_cap", "new_user_signups_cap": 5})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    let ports = [free_port(), free_port()];
    let _replicas = [
        start_server(&app.database_url, &app.data_dir.join("a"), ports[0], &[]).await,
        start_server(&app.database_url, &app.data_dir.join("b"), ports[1], &[]).await,
    ];
    let client = reqwest::Client::new();
    let create = |port: u16, name: String| {
        client
            .post(format!("http://127.0.0.1:{port}/api/v4/users"))
            .header("PRIVATE-TOKEN", ROOT_TOKEN)
            .json(&json!({"username": name, "name": name, "email": format!("{name}@example.com")}))
            .send()
    };
    let mut states = Vec::new();
    for round in 0..5 {
        let (first, second) = tokio::join!(
            create(ports[0], format!("a{round}")),
            create(ports[1], format!("b{round}"))
        );
        for reply in [first, second] {
            let reply = reply.expect("create");
            assert_eq!(reply.status(), reqwest::StatusCode::CREATED);
            let body: serde_json::Value = reply.json().await.expect("json");
            states.push(body["state"].as_str().unwrap_or_default().to_string());
        }
    }
    let active = states.iter().filter(|state| *state == "active").count();
    let pending = states
        .iter()
        .filter(|state| *state == "blocked_pending_approval")
        .count();
    assert_eq!((active, pending), (3, 7), "{states:?}");
}

/// GitLab's dormant-user job on two server processes sharing one PostgreSQL: the run due today
/// is taken by one of them, once — each dormant user deactivated once, one audit event each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_deactivate_dormant_users_once() {
    if !postgres_available() {
        return;
    }
    let now = Utc::now();
    if gitlab_license_server::domain::dormant::current_slot(now).is_none() {
        // Before 00:21 UTC no run is due today; the single-process test covers the schedule.
        return;
    }
    let app = TestApp::start(Backend::Postgres, &[]).await;
    let key = license(
        "2026-01-01",
        "2099-01-01",
        json!({"plan": "premium", "active_user_count": 100}),
    );
    assert_eq!(app.upload(&key).await.status, 201);
    let today = now.date_naive();
    let long_ago = (today - TimeDelta::days(200))
        .format("%Y-%m-%d")
        .to_string();
    let recently = today.format("%Y-%m-%d").to_string();
    for (name, last_activity) in [
        ("old1", Some(&long_ago)),
        ("old2", Some(&long_ago)),
        ("fresh", Some(&recently)),
        ("never", None),
    ] {
        let user = app
            .add_user(gitlab_license_server::store::NewUser::human(name, false))
            .await;
        if let Some(day) = last_activity {
            app.execute_sql(&format!(
                "UPDATE users SET last_activity_on = '{day}' WHERE id = {}",
                user.id
            ))
            .await;
        }
    }
    let set = app
        .send_with(
            app.client
                .put(app.url("/api/v4/application/settings"))
                .json(&json!({"deactivate_dormant_users": true})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    let ports = [free_port(), free_port()];
    let _replicas = [
        start_server(&app.database_url, &app.data_dir.join("a"), ports[0], &[]).await,
        start_server(&app.database_url, &app.data_dir.join("b"), ports[1], &[]).await,
    ];
    let deactivated = || async {
        app.query_texts("SELECT username FROM users WHERE state = 'deactivated' ORDER BY username")
            .await
    };
    let started = Instant::now();
    while deactivated().await.len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "the dormant run did not happen: {:?}",
            deactivated().await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Time for a second run, had either replica been going to make one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(deactivated().await, ["never", "old1", "old2"]);
    let audits = app
        .query_texts(
            "SELECT CAST(COUNT(*) AS TEXT) FROM audit_events WHERE event_name = 'user_deactivate'",
        )
        .await;
    assert_eq!(audits, ["3"], "one audit event per user, from one run");
    let jobs = app.state.store.jobs().await.expect("jobs");
    let runs: Vec<_> = jobs
        .iter()
        .filter(|job| job.kind == "users_deactivate_dormant_users")
        .collect();
    assert_eq!(runs.len(), 1, "one run for today's slot: {runs:?}");
    assert_eq!(runs[0].attempts, 1);
}
