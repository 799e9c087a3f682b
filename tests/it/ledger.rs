//! The seat ledger (docs/true-up.md): a scripted history — users added, a service user and a
//! bot, one blocked, a license replaced mid-term by an Ultimate one (guests and users without a
//! role stop counting), a member promoted — gives exactly the entries and the who-was-billable
//! lists a hand count gives, on SQLite and PostgreSQL, through the REST API.

use chrono::TimeDelta;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::on_both_backends;
use crate::support::app::{test_now, TestApp, ROOT_TOKEN};
use crate::support::licenses::{license, premium};

on_both_backends!(
    the_ledger_records_a_scripted_history,
    ledger_input_is_checked,
    the_peak_forecast_and_what_if_match_a_hand_count,
    the_csvs_match_a_scripted_history,
    the_cli_prints_the_ledger_csvs_and_the_forecast,
);

async fn recount(app: &TestApp) {
    let id = app.get("/api/v4/license").await.json()["id"]
        .as_i64()
        .expect("license id");
    let reply = app
        .put(&format!("/api/v4/license/{id}/refresh_billable_users"))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
    app.run_jobs().await;
}

async fn create_user(app: &TestApp, username: &str, user_type: &str) -> i64 {
    let reply = app
        .send_with(
            app.client.post(app.url("/api/v4/users")).json(&json!({
                "username": username, "name": username, "email": format!("{username}@example.com"), "user_type": user_type,
            })),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    reply.json()["id"].as_i64().expect("id")
}

/// (username, direction, reason) of the whole ledger, in order.
async fn entries(app: &TestApp, query: &str) -> Vec<(String, String, String)> {
    let reply = app
        .get(&format!("/api/v4/-/seats/ledger?per_page=100{query}"))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    reply
        .json()
        .as_array()
        .expect("list")
        .iter()
        .map(|entry| {
            (
                entry["username"].as_str().unwrap_or_default().to_string(),
                entry["direction"].as_str().unwrap_or_default().to_string(),
                entry["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn billable_on(app: &TestApp, date: &str) -> Vec<String> {
    let reply = app
        .get(&format!(
            "/api/v4/-/seats/billable_on?date={date}&per_page=100"
        ))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{date}: {}", reply.body);
    reply
        .json()
        .as_array()
        .expect("list")
        .iter()
        .map(|user| user["username"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn owned(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
        .collect()
}

async fn the_ledger_records_a_scripted_history(app: TestApp) {
    // Day 1 (2026-06-15): the license; its recount starts the ledger with root as baseline.
    assert_eq!(app.upload(&premium(10)).await.status, StatusCode::CREATED);
    app.run_jobs().await;
    assert_eq!(
        entries(&app, "").await,
        owned(&[(
            "root",
            "baseline",
            "Active human user (every active human user occupies a seat)"
        )])
    );

    // Day 2: two humans, a service user and a bot; the bot never counts.
    app.set_now(test_now() + TimeDelta::days(1));
    let alice = create_user(&app, "alice", "human").await;
    let bob = create_user(&app, "bob", "human").await;
    create_user(&app, "carol", "service_user").await;
    create_user(&app, "project_1_bot", "project_bot").await;
    recount(&app).await;

    // Day 3: bob is blocked; a recount with nothing else changed records only him.
    app.set_now(test_now() + TimeDelta::days(2));
    let blocked = app
        .send(
            Method::POST,
            &format!("/api/v4/users/{bob}/block"),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(blocked.status, StatusCode::CREATED);
    recount(&app).await;
    recount(&app).await;

    // Day 4: an Ultimate license replaces the Premium one mid-term; alice becomes a Developer
    // of a group first, so she keeps counting; root and carol have no role above Guest.
    app.set_now(test_now() + TimeDelta::days(3));
    let group = app.add_group("platform").await;
    let member = app
        .send_with(
            app.client
                .post(app.url(&format!("/api/v4/groups/{}/members", group.id)))
                .json(&json!({"user_id": alice, "access_level": 30})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(member.status, StatusCode::CREATED, "{}", member.body);
    let ultimate = license(
        "2026-01-01",
        "2027-01-01",
        json!({"plan": "ultimate", "active_user_count": 10}),
    );
    assert_eq!(app.upload(&ultimate).await.status, StatusCode::CREATED);
    app.run_jobs().await;

    // The hand count: day 1 {root}; day 2 + alice, bob, carol; day 3 − bob; day 4 − root,
    // − carol (Ultimate: no role above Guest).
    let ledger = entries(&app, "").await;
    assert_eq!(
        ledger,
        owned(&[
            ("root", "baseline", "Active human user (every active human user occupies a seat)"),
            ("alice", "started", "Active human user (every active human user occupies a seat)"),
            ("bob", "started", "Active human user (every active human user occupies a seat)"),
            ("carol", "started", "Active service user (every active service user occupies a seat)"),
            ("bob", "stopped", "State changed to blocked"),
            ("root", "stopped", "License plan changed from Premium to Ultimate: Ultimate counts only roles above Guest, and the user has no role"),
            ("carol", "stopped", "License plan changed from Premium to Ultimate: Ultimate counts only roles above Guest, and the user has no role"),
        ])
    );
    assert_eq!(billable_on(&app, "2026-06-15").await, ["root"]);
    assert_eq!(
        billable_on(&app, "2026-06-16").await,
        ["root", "alice", "bob", "carol"]
    );
    assert_eq!(
        billable_on(&app, "2026-06-17").await,
        ["root", "alice", "carol"]
    );
    assert_eq!(billable_on(&app, "2026-06-18").await, ["alice"]);
    // Since when: alice from day 2's recount; root counted before the ledger began.
    let day_two = app
        .get("/api/v4/-/seats/billable_on?date=2026-06-16")
        .await
        .json();
    assert_eq!(day_two[0]["counted_before_the_ledger_began"], true);
    assert_eq!(day_two[1]["since"], "2026-06-16T10:30:00.000Z");
    assert_eq!(
        day_two[1]["reason"],
        "Active human user (every active human user occupies a seat)"
    );
    // The same count as GET /license.
    assert_eq!(app.get("/api/v4/license").await.json()["active_users"], 1);

    // Filters: by user (id or username), direction, days.
    let bobs: Vec<String> = entries(&app, &format!("&user={bob}"))
        .await
        .into_iter()
        .map(|(_, d, _)| d)
        .collect();
    assert_eq!(bobs, ["started", "stopped"]);
    assert_eq!(entries(&app, "&user=bob").await.len(), 2);
    assert_eq!(entries(&app, "&direction=stopped").await.len(), 3);
    assert_eq!(
        entries(&app, "&direction=started").await.len(),
        4,
        "with the baseline"
    );
    assert_eq!(
        entries(&app, "&from=2026-06-17&to=2026-06-17").await,
        owned(&[("bob", "stopped", "State changed to blocked")])
    );
    // Keyset pages walk it once.
    let first = app.get("/api/v4/-/seats/ledger?per_page=4").await;
    assert_eq!(first.json().as_array().map(Vec::len), Some(4));
    let next = first.header("link").expect("a next link").to_string();
    let cursor = next
        .split("cursor=")
        .nth(1)
        .and_then(|rest| rest.split(['&', '>']).next())
        .expect("cursor");
    let second = app
        .get(&format!(
            "/api/v4/-/seats/ledger?per_page=4&cursor={cursor}"
        ))
        .await
        .json();
    assert_eq!(second.as_array().map(Vec::len), Some(3));
    assert_eq!(
        (
            second[0]["username"].clone(),
            second[0]["direction"].clone()
        ),
        (json!("bob"), json!("stopped"))
    );

    // A deleted user who counted is recorded as stopped.
    app.set_now(test_now() + TimeDelta::days(4));
    let deleted = app
        .send(
            Method::DELETE,
            &format!("/api/v4/users/{alice}"),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.body);
    recount(&app).await;
    assert_eq!(
        entries(&app, "&direction=stopped&from=2026-06-19").await,
        owned(&[("alice", "stopped", "User deleted")])
    );
    assert_eq!(billable_on(&app, "2026-06-19").await, Vec::<String>::new());
}

async fn ledger_input_is_checked(app: TestApp) {
    // Before any recount: no ledger to answer from.
    let empty = app.get("/api/v4/-/seats/billable_on?date=2026-06-15").await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "{}", empty.body);
    assert_eq!(app.get("/api/v4/-/seats/ledger").await.json(), json!([]));
    assert_eq!(app.upload(&premium(10)).await.status, StatusCode::CREATED);
    app.run_jobs().await;
    for (path, expected) in [
        (
            "/api/v4/-/seats/billable_on",
            json!({"error": "date is missing"}),
        ),
        (
            "/api/v4/-/seats/billable_on?date=15/06/2026",
            json!({"error": "date is invalid"}),
        ),
        (
            "/api/v4/-/seats/ledger?direction=sideways",
            json!({"error": "direction is invalid"}),
        ),
        (
            "/api/v4/-/seats/ledger?from=yesterday",
            json!({"error": "from is invalid"}),
        ),
        (
            "/api/v4/-/seats/ledger?cursor=zzz",
            json!({"error": "cursor is invalid"}),
        ),
    ] {
        let reply = app.get(path).await;
        assert_eq!(
            (reply.status, reply.json()),
            (StatusCode::BAD_REQUEST, expected),
            "{path}"
        );
    }
    let before = app.get("/api/v4/-/seats/billable_on?date=2026-01-01").await;
    assert_eq!(before.status, StatusCode::BAD_REQUEST);
    assert!(
        before
            .body
            .contains("before the seat ledger began (2026-06-15)"),
        "{}",
        before.body
    );
    let unknown = app.get("/api/v4/-/seats/ledger?user=nobody").await;
    assert_eq!(
        (unknown.status, unknown.json()),
        (
            StatusCode::NOT_FOUND,
            json!({"message": "404 User Not Found"})
        )
    );
    // Administrators only.
    let plain = app
        .add_user(gitlab_license_server::store::NewUser::human("plain", false))
        .await;
    let (token, _) = app.token_for(&plain, &["api"], None).await;
    let refused = app
        .send(Method::GET, "/api/v4/-/seats/ledger", Some(&token))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let _: Value = refused.json();
}

async fn daily_count(app: &TestApp, day: &str, count: i64) {
    let at = chrono::DateTime::parse_from_rfc3339(&format!("{day}T23:59:00Z"))
        .expect("time")
        .with_timezone(&chrono::Utc);
    app.state
        .store
        .insert_history(&[gitlab_license_server::store::HistoryRow {
            recorded_at: at,
            active_user_count: count,
        }])
        .await
        .expect("history");
}

/// The hand count: 3 seats; root counts from day 1; alice, bob and carol join on day 2 (4
/// billable: the peak, 1 over); bob is blocked on day 3 (3 billable). The renewal charges the
/// peak: 1 seat, 100 EUR — and removing alice now would not change it.
async fn the_peak_forecast_and_what_if_match_a_hand_count(app: TestApp) {
    assert_eq!(
        app.get("/api/v4/-/seats/forecast").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(app.upload(&premium(3)).await.status, StatusCode::CREATED);
    app.run_jobs().await;
    daily_count(&app, "2026-06-15", 1).await;
    app.set_now(test_now() + TimeDelta::days(1));
    for name in ["alice", "bob", "carol"] {
        create_user(&app, name, "human").await;
    }
    recount(&app).await;
    daily_count(&app, "2026-06-16", 4).await;
    app.set_now(test_now() + TimeDelta::days(2));
    let bob = app
        .send(Method::GET, "/api/v4/users?username=bob", Some(ROOT_TOKEN))
        .await
        .json()[0]["id"]
        .as_i64()
        .expect("bob");
    assert_eq!(
        app.send(
            Method::POST,
            &format!("/api/v4/users/{bob}/block"),
            Some(ROOT_TOKEN)
        )
        .await
        .status,
        StatusCode::CREATED
    );
    recount(&app).await;
    daily_count(&app, "2026-06-17", 3).await;

    // The peak: 4 on 2026-06-16, the four people of that day; bob has stopped since.
    let peak = app.get("/api/v4/-/seats/peak").await;
    assert_eq!(peak.status, StatusCode::OK, "{}", peak.body);
    let peak = peak.json();
    assert_eq!(
        (
            peak["historical_max"].clone(),
            peak["peak_on"].clone(),
            peak["overage_so_far"].clone()
        ),
        (json!(4), json!("2026-06-16"), json!(1))
    );
    assert_eq!(peak["names_known"], true);
    let people: Vec<(String, bool)> = peak["people"]
        .as_array()
        .expect("people")
        .iter()
        .map(|p| {
            (
                p["username"].as_str().unwrap_or_default().to_string(),
                p["still_billable"].as_bool().unwrap_or(true),
            )
        })
        .collect();
    assert_eq!(
        people,
        [
            ("root".to_string(), true),
            ("alice".into(), true),
            ("bob".into(), false),
            ("carol".into(), true)
        ]
    );
    assert_eq!(
        peak["people"][2]["stopped_because"],
        "State changed to blocked"
    );
    assert_eq!(peak["stopped_since"], 1);
    // Paged.
    let first = app.get("/api/v4/-/seats/peak?per_page=2").await;
    assert_eq!(first.json()["people"].as_array().map(Vec::len), Some(2));
    assert!(first
        .header("link")
        .is_some_and(|link| link.contains("rel=\"next\"")));

    // The forecast: today 3 (0 over, what GET /license shows), the peak 4 (1 over, what the
    // renewal charges); at today's count the projection stays at the peak: 1 × 100 EUR.
    let forecast = app
        .get("/api/v4/-/seats/forecast?price_per_seat=100&currency=eur")
        .await;
    assert_eq!(forecast.status, StatusCode::OK, "{}", forecast.body);
    let forecast = forecast.json();
    assert_eq!(
        (
            forecast["seats"].clone(),
            forecast["billable_today"].clone(),
            forecast["overage_today"].clone(),
            forecast["overage_so_far"].clone(),
            forecast["projected_overage"].clone(),
            forecast["amount"].clone(),
            forecast["currency"].clone()
        ),
        (
            json!(3),
            json!(3),
            json!(0),
            json!(1),
            json!(1),
            json!(100.0),
            json!("EUR")
        )
    );
    assert_eq!(
        app.get("/api/v4/license").await.json()["overage"],
        forecast["overage_today"]
    );
    assert_eq!(forecast["quarters"][1]["quarter"], 2);
    assert_eq!(
        (
            forecast["quarters"][1]["max_count"].clone(),
            forecast["quarters"][1]["new_overage"].clone()
        ),
        (json!(4), json!(1))
    );
    assert_eq!(
        forecast["quarters"][1]["amount"], 50.0,
        "the second quarter's new seat, for half the term"
    );

    // What if alice went: today's count falls to 2, the projected overage stays 1 (the peak).
    let what_if = app
        .send_with(
            app.client
                .post(app.url("/api/v4/-/seats/what_if"))
                .json(&json!({"usernames": "alice, nobody", "price_per_seat": "100"})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(what_if.status, StatusCode::OK, "{}", what_if.body);
    let what_if = what_if.json();
    assert_eq!(
        (
            what_if["billable_removed"].clone(),
            what_if["billable_today_after"].clone(),
            what_if["historical_max"].clone(),
            what_if["projected_overage"].clone(),
            what_if["projected_overage_after"].clone(),
            what_if["amount_after"].clone()
        ),
        (
            json!(1),
            json!(2),
            json!(4),
            json!(1),
            json!(1),
            json!(100.0)
        )
    );
    assert_eq!(what_if["usernames_not_found"], json!(["nobody"]));
    // Never writes: alice is still active, the ledger unchanged.
    let ledger_before = app
        .query_texts("SELECT CAST(COUNT(*) AS TEXT) FROM seat_ledger")
        .await;
    let inactive = app
        .send_with(
            app.client
                .post(app.url("/api/v4/-/seats/what_if"))
                .json(&json!({"inactive_for_days": 30})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(inactive.status, StatusCode::OK, "{}", inactive.body);
    assert_eq!(
        inactive.json()["billable_removed"],
        2,
        "alice and carol were never active; root is, today"
    );
    assert_eq!(user_state(&app, "alice").await, "active");
    assert_eq!(
        app.query_texts("SELECT CAST(COUNT(*) AS TEXT) FROM seat_ledger")
            .await,
        ledger_before
    );

    // Bad input.
    for (request, expected) in [
        (
            app.client
                .get(app.url("/api/v4/-/seats/forecast?price_per_seat=abc")),
            json!({"error": "price_per_seat is invalid"}),
        ),
        (
            app.client
                .get(app.url("/api/v4/-/seats/forecast?price_per_seat=1&currency=euros")),
            json!({"error": "currency is invalid"}),
        ),
        (
            app.client
                .post(app.url("/api/v4/-/seats/what_if"))
                .json(&json!({})),
            json!({"error": "usernames, inactive_for_days are missing, exactly one parameter must be provided"}),
        ),
        (
            app.client
                .post(app.url("/api/v4/-/seats/what_if"))
                .json(&json!({"usernames": ["a"], "inactive_for_days": 3})),
            json!({"error": "usernames, inactive_for_days are mutually exclusive"}),
        ),
        (
            app.client
                .post(app.url("/api/v4/-/seats/what_if"))
                .json(&json!({"inactive_for_days": -4})),
            json!({"error": "inactive_for_days is invalid"}),
        ),
    ] {
        let reply = app.send_with(request, Some(ROOT_TOKEN)).await;
        assert_eq!(
            (reply.status, reply.json()),
            (StatusCode::BAD_REQUEST, expected)
        );
    }
}

async fn user_state(app: &TestApp, username: &str) -> String {
    app.send(
        Method::GET,
        &format!("/api/v4/users?username={username}"),
        Some(ROOT_TOKEN),
    )
    .await
    .json()[0]["state"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn forecast_events(app: &TestApp) -> Vec<String> {
    app.query_texts(
        "SELECT payload FROM hook_events WHERE event_name = 'true_up_forecast_changed' ORDER BY id",
    )
    .await
}

/// The forecast's gauges and its `true_up_forecast_changed` hook event: once when the
/// projected overage at renewal turns positive, once when it is back to zero.
async fn forecast_gauges_and_crossings(backend: crate::support::app::Backend) {
    let app = TestApp::start(
        backend,
        &[
            ("TRUE_UP_PRICE_PER_SEAT", "100"),
            ("TRUE_UP_CURRENCY", "eur"),
        ],
    )
    .await;
    assert_eq!(app.upload(&premium(3)).await.status, StatusCode::CREATED);
    app.run_jobs().await;
    assert!(
        forecast_events(&app).await.is_empty(),
        "1 of 3 seats: nothing to say"
    );
    app.set_now(test_now() + TimeDelta::minutes(1));
    let ids = [
        create_user(&app, "ann", "human").await,
        create_user(&app, "ben", "human").await,
        create_user(&app, "cat", "human").await,
    ];
    recount(&app).await;
    app.set_now(test_now() + TimeDelta::minutes(2));
    recount(&app).await;
    let fired = forecast_events(&app).await;
    assert_eq!(fired.len(), 1, "once per crossing: {fired:?}");
    let payload: Value = serde_json::from_str(&fired[0]).expect("payload");
    assert_eq!(
        (
            payload["over_license"].clone(),
            payload["projected_overage"].clone(),
            payload["amount"].clone(),
            payload["currency"].clone()
        ),
        (json!(true), json!(1), json!(100.0), json!("EUR"))
    );
    // The configured price is the forecast's too.
    assert_eq!(
        app.get("/api/v4/-/seats/forecast").await.json()["amount"],
        100.0
    );
    let metrics = app.get("/-/metrics").await.body;
    assert!(
        metrics.contains("gitlab_license_server_true_up_forecast_seats 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gitlab_license_server_true_up_forecast_amount{currency=\"EUR\"} 100"),
        "{metrics}"
    );
    // Back within the license (no daily snapshot recorded the peak): the crossing back, once.
    app.set_now(test_now() + TimeDelta::minutes(3));
    let blocked = app
        .send(
            Method::POST,
            &format!("/api/v4/users/{}/block", ids[0]),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(blocked.status, StatusCode::CREATED);
    recount(&app).await;
    app.set_now(test_now() + TimeDelta::minutes(4));
    recount(&app).await;
    let fired = forecast_events(&app).await;
    assert_eq!(fired.len(), 2, "{fired:?}");
    assert!(fired[1].contains("\"over_license\":false"), "{}", fired[1]);
    assert!(app
        .get("/-/metrics")
        .await
        .body
        .contains("gitlab_license_server_true_up_forecast_seats 0"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecast_gauges_and_crossings_sqlite() {
    forecast_gauges_and_crossings(crate::support::app::Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecast_gauges_and_crossings_postgres() {
    if crate::support::app::postgres_available() {
        forecast_gauges_and_crossings(crate::support::app::Backend::Postgres).await;
    }
}

on_both_backends!(comparing_everyone_is_written_in_batches);

/// A million users take tens of seconds to compare: the baseline and a plan change are a scan
/// in batches of 1,000 after the recount commits. Here 2,500 users (three batches): everyone
/// recorded once, the scan gone when done, and a scan left mid-way (as a stop would leave it)
/// finished by the next recount without recording anybody twice.
async fn comparing_everyone_is_written_in_batches(app: TestApp) {
    app.execute_sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2500)
         INSERT INTO users (username, name, email, state, user_type, admin, created_at, updated_at)
         SELECT 'bulk' || i, 'Bulk ' || i, 'bulk' || i || '@example.com', 'active', 'human', false,
                '2026-06-01 00:00:00+00:00', '2026-06-01 00:00:00+00:00'
         FROM n",
    )
    .await;
    let count = |sql: &'static str| {
        let app = &app;
        async move { app.query_texts(sql).await.join(",") }
    };
    assert_eq!(app.upload(&premium(5000)).await.status, StatusCode::CREATED);
    app.run_jobs().await;
    assert_eq!(
        count("SELECT CAST(COUNT(*) AS TEXT) FROM seat_ledger WHERE direction = 'baseline'").await,
        "2501"
    );
    assert_eq!(
        count("SELECT CAST(COUNT(DISTINCT user_id) AS TEXT) FROM seat_ledger").await,
        "2501"
    );
    assert_eq!(
        count("SELECT CAST(COUNT(*) AS TEXT) FROM application_settings WHERE name = 'seat_ledger_scan'").await,
        "0"
    );

    // Ultimate: nobody has a role above Guest, so all 2,501 stop, each once, for the plan.
    app.set_now(test_now() + TimeDelta::days(1));
    let ultimate = license(
        "2026-01-01",
        "2027-01-01",
        json!({"plan": "ultimate", "active_user_count": 5000}),
    );
    assert_eq!(app.upload(&ultimate).await.status, StatusCode::CREATED);
    app.run_jobs().await;
    assert_eq!(
        count(
            "SELECT CAST(COUNT(*) AS TEXT) FROM seat_ledger
             WHERE direction = 'stopped' AND reason LIKE 'License plan changed from Premium to Ultimate%'"
        )
        .await,
        "2501"
    );
    assert_eq!(
        count(
            "SELECT CAST(COUNT(*) AS TEXT) FROM seat_ledger l WHERE l.direction <> 'stopped'
             AND l.id = (SELECT MAX(x.id) FROM seat_ledger x WHERE x.user_id = l.user_id)"
        )
        .await,
        "0"
    );

    // A scan left at user 1,250 is continued by the next recount: nothing new to record.
    app.execute_sql(
        "INSERT INTO application_settings (name, value, updated_at)
         VALUES ('seat_ledger_scan',
                 '{\"baseline\":false,\"after\":1250,\"at\":\"2026-06-16T10:30:00Z\",\"plan_before\":\"ultimate\",\"plan\":\"ultimate\"}',
                 '2026-06-16 10:30:00+00:00')",
    )
    .await;
    recount(&app).await;
    assert_eq!(
        count("SELECT CAST(COUNT(*) AS TEXT) FROM seat_ledger").await,
        "5002"
    );
    assert_eq!(
        count("SELECT CAST(COUNT(*) AS TEXT) FROM application_settings WHERE name = 'seat_ledger_scan'").await,
        "0"
    );
}

const HUMAN: &str = "Active human user (every active human user occupies a seat)";
const SERVICE: &str = "Active service user (every active service user occupies a seat)";
const BLOCKED: &str = "State changed to blocked";

/// The ids of the small scripted history.
struct Script {
    root: i64,
    alice: i64,
    bob: i64,
    carol: i64,
    /// The ledger's entry ids, in order: root's baseline, alice, bob and carol started, bob
    /// stopped.
    entries: Vec<i64>,
}

impl Script {
    /// A line of the ledger's CSV: entry `n` (0-based) of the script.
    fn entry(
        &self,
        n: usize,
        at: &str,
        user: i64,
        name: &str,
        direction: &str,
        reason: &str,
    ) -> String {
        format!(
            "{},{at},{user},{name},{direction},{reason},premium\n",
            self.entries[n]
        )
    }

    fn ledger_lines(&self) -> [String; 5] {
        [
            self.entry(
                0,
                "2026-06-15T10:30:00.000Z",
                self.root,
                "root",
                "baseline",
                HUMAN,
            ),
            self.entry(
                1,
                "2026-06-16T10:30:00.000Z",
                self.alice,
                "alice",
                "started",
                HUMAN,
            ),
            self.entry(
                2,
                "2026-06-16T10:30:00.000Z",
                self.bob,
                "bob",
                "started",
                HUMAN,
            ),
            self.entry(
                3,
                "2026-06-16T10:30:00.000Z",
                self.carol,
                "carol",
                "started",
                SERVICE,
            ),
            self.entry(
                4,
                "2026-06-17T10:30:00.000Z",
                self.bob,
                "bob",
                "stopped",
                BLOCKED,
            ),
        ]
    }

    /// Who was billable at the end of 2026-06-16, as the CSV lists them.
    fn billable_on_day_two(&self) -> String {
        [
            "user_id,username,since,counted_before_the_ledger_began,reason\n".to_string(),
            format!("{},root,2026-06-15T10:30:00.000Z,true,{HUMAN}\n", self.root),
            format!(
                "{},alice,2026-06-16T10:30:00.000Z,false,{HUMAN}\n",
                self.alice
            ),
            format!("{},bob,2026-06-16T10:30:00.000Z,false,{HUMAN}\n", self.bob),
            format!(
                "{},carol,2026-06-16T10:30:00.000Z,false,{SERVICE}\n",
                self.carol
            ),
        ]
        .concat()
    }
}

const LEDGER_HEADER: &str = "id,recorded_at,user_id,username,direction,reason,plan\n";

/// 3 seats. Day 1 (2026-06-15): the license; root is the baseline; 1 billable. Day 2: alice,
/// bob and the service user carol join (4: the peak, 1 over). Day 3: bob is blocked (3).
async fn scripted_history(app: &TestApp) -> Script {
    assert_eq!(app.upload(&premium(3)).await.status, StatusCode::CREATED);
    app.run_jobs().await;
    daily_count(app, "2026-06-15", 1).await;
    app.set_now(test_now() + TimeDelta::days(1));
    let alice = create_user(app, "alice", "human").await;
    let bob = create_user(app, "bob", "human").await;
    let carol = create_user(app, "carol", "service_user").await;
    recount(app).await;
    daily_count(app, "2026-06-16", 4).await;
    app.set_now(test_now() + TimeDelta::days(2));
    let blocked = app
        .send(
            Method::POST,
            &format!("/api/v4/users/{bob}/block"),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(blocked.status, StatusCode::CREATED, "{}", blocked.body);
    recount(app).await;
    daily_count(app, "2026-06-17", 3).await;
    let ledger = app.get("/api/v4/-/seats/ledger?per_page=100").await.json();
    let entries: Vec<i64> = ledger
        .as_array()
        .expect("entries")
        .iter()
        .map(|entry| entry["id"].as_i64().expect("id"))
        .collect();
    assert_eq!(entries.len(), 5, "{ledger}");
    Script {
        root: ledger[0]["user_id"].as_i64().expect("root"),
        alice,
        bob,
        carol,
        entries,
    }
}

/// A CSV download: 200, its type and file name, and its text.
async fn csv(app: &TestApp, path: &str, filename: &str) -> String {
    let reply = app.get(path).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
    assert_eq!(
        reply.header("content-type"),
        Some("text/csv; charset=utf-8"),
        "{path}"
    );
    assert_eq!(
        reply.header("content-disposition"),
        Some(format!("attachment; filename=\"{filename}\"").as_str()),
        "{path}"
    );
    reply.body
}

async fn the_csvs_match_a_scripted_history(app: TestApp) {
    // Before anything: the peak needs a license, who-was-billable a ledger, as in JSON.
    for (json, csv_path) in [
        ("/api/v4/-/seats/peak", "/api/v4/-/seats/peak.csv"),
        (
            "/api/v4/-/seats/billable_on?date=2026-06-15",
            "/api/v4/-/seats/billable_on.csv?date=2026-06-15",
        ),
    ] {
        let (json, csv) = (app.get(json).await, app.get(csv_path).await);
        assert_ne!(json.status, StatusCode::OK, "{}", json.body);
        assert_eq!(
            (csv.status, csv.json()),
            (json.status, json.json()),
            "{csv_path}"
        );
    }
    assert_eq!(
        csv(&app, "/api/v4/-/seats/ledger.csv", "seat_ledger.csv").await,
        LEDGER_HEADER
    );

    let script = scripted_history(&app).await;
    let lines = script.ledger_lines();

    // The whole ledger, then each filter as the JSON list applies it.
    assert_eq!(
        csv(&app, "/api/v4/-/seats/ledger.csv", "seat_ledger.csv").await,
        format!("{LEDGER_HEADER}{}", lines.concat())
    );
    for (query, rows) in [
        (format!("user={}", script.bob), vec![2, 4]),
        ("user=bob".to_string(), vec![2, 4]),
        ("direction=stopped".to_string(), vec![4]),
        ("direction=started".to_string(), vec![0, 1, 2, 3]),
        ("from=2026-06-16&to=2026-06-16".to_string(), vec![1, 2, 3]),
        ("from=2026-06-17".to_string(), vec![4]),
        ("user=alice&direction=stopped".to_string(), vec![]),
    ] {
        let expected: String = rows.iter().map(|n| lines[*n].as_str()).collect();
        assert_eq!(
            csv(
                &app,
                &format!("/api/v4/-/seats/ledger.csv?{query}"),
                "seat_ledger.csv"
            )
            .await,
            format!("{LEDGER_HEADER}{expected}"),
            "{query}"
        );
    }

    // Who was billable on a day: day 2 everyone, day 3 without bob.
    assert_eq!(
        csv(
            &app,
            "/api/v4/-/seats/billable_on.csv?date=2026-06-16",
            "billable_on_2026-06-16.csv"
        )
        .await,
        script.billable_on_day_two()
    );
    let day_three = csv(
        &app,
        "/api/v4/-/seats/billable_on.csv?date=2026-06-17",
        "billable_on_2026-06-17.csv",
    )
    .await;
    assert_eq!(
        day_three
            .lines()
            .skip(1)
            .map(|line| line.split(',').nth(1).unwrap_or_default())
            .collect::<Vec<_>>(),
        ["root", "alice", "carol"]
    );

    // The peak day (2026-06-16, 4 billable): its four people; bob stopped since, and why.
    assert_eq!(
        csv(&app, "/api/v4/-/seats/peak.csv", "peak.csv").await,
        [
            "user_id,username,reason,still_billable,stopped_at,stopped_because\n".to_string(),
            format!("{},root,{HUMAN},true,,\n", script.root),
            format!("{},alice,{HUMAN},true,,\n", script.alice),
            format!(
                "{},bob,{HUMAN},false,2026-06-17T10:30:00.000Z,{BLOCKED}\n",
                script.bob
            ),
            format!("{},carol,{SERVICE},true,,\n", script.carol),
        ]
        .concat()
    );

    // Bad input: the JSON list's error, before any line is written.
    for (json, status) in [
        (
            "/api/v4/-/seats/ledger?direction=sideways",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v4/-/seats/ledger?from=yesterday",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v4/-/seats/ledger?to=2026-13-01",
            StatusCode::BAD_REQUEST,
        ),
        ("/api/v4/-/seats/ledger?user=nobody", StatusCode::NOT_FOUND),
        ("/api/v4/-/seats/billable_on", StatusCode::BAD_REQUEST),
        (
            "/api/v4/-/seats/billable_on?date=15/06/2026",
            StatusCode::BAD_REQUEST,
        ),
        (
            "/api/v4/-/seats/billable_on?date=2026-01-01",
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let csv_path = json.replacen("/ledger", "/ledger.csv", 1).replacen(
            "/billable_on",
            "/billable_on.csv",
            1,
        );
        let (json_reply, csv_reply) = (app.get(json).await, app.get(&csv_path).await);
        assert_eq!(json_reply.status, status, "{json}: {}", json_reply.body);
        assert_eq!(
            (csv_reply.status, csv_reply.json()),
            (json_reply.status, json_reply.json()),
            "{csv_path}"
        );
        assert_ne!(
            csv_reply.header("content-type"),
            Some("text/csv; charset=utf-8")
        );
    }
    let before = app
        .get("/api/v4/-/seats/billable_on.csv?date=2026-01-01")
        .await;
    assert!(
        before
            .body
            .contains("before the seat ledger began (2026-06-15)"),
        "{}",
        before.body
    );

    // Administrators only.
    let plain = app
        .add_user(gitlab_license_server::store::NewUser::human("plain", false))
        .await;
    let (token, _) = app.token_for(&plain, &["api"], None).await;
    for path in [
        "/api/v4/-/seats/ledger.csv",
        "/api/v4/-/seats/billable_on.csv?date=2026-06-16",
        "/api/v4/-/seats/peak.csv",
    ] {
        assert_eq!(
            app.send(Method::GET, path, Some(&token)).await.status,
            StatusCode::FORBIDDEN,
            "{path}"
        );
    }

    // A reason with a comma is quoted: an Ultimate license stops those without a role.
    app.set_now(test_now() + TimeDelta::days(3));
    let ultimate = license(
        "2026-01-01",
        "2027-01-01",
        json!({"plan": "ultimate", "active_user_count": 10}),
    );
    assert_eq!(app.upload(&ultimate).await.status, StatusCode::CREATED);
    app.run_jobs().await;
    let stopped = csv(
        &app,
        "/api/v4/-/seats/ledger.csv?from=2026-06-18&user=alice",
        "seat_ledger.csv",
    )
    .await;
    let line = stopped.lines().nth(1).expect("alice stopped");
    assert!(
        line.ends_with(&format!(
            ",2026-06-18T10:30:00.000Z,{},alice,stopped,\"License plan changed from Premium to Ultimate: Ultimate counts only roles above Guest, and the user has no role\",ultimate",
            script.alice
        )),
        "{line}"
    );

    // Longer than a batch: 2,100 more entries (users who counted from day 4) are read a
    // thousand at a time, each once, in order.
    app.execute_sql(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2100)
         INSERT INTO seat_ledger (recorded_at, user_id, username, direction, reason, plan)
         SELECT l.recorded_at, 100000 + n.i, 'seeded' || n.i, 'started', l.reason, l.plan
         FROM n, seat_ledger l WHERE l.id = (SELECT MAX(id) FROM seat_ledger) ORDER BY n.i",
    )
    .await;
    let whole = csv(&app, "/api/v4/-/seats/ledger.csv", "seat_ledger.csv").await;
    let ids: Vec<i64> = whole
        .lines()
        .skip(1)
        .map(|line| {
            line.split(',')
                .next()
                .unwrap_or_default()
                .parse()
                .expect("id")
        })
        .collect();
    assert_eq!(
        app.query_texts("SELECT CAST(COUNT(*) AS TEXT) FROM seat_ledger")
            .await,
        [ids.len().to_string()]
    );
    assert!(ids.len() > 2_100 && ids.windows(2).all(|pair| pair[0] < pair[1]));
    let last = whole.lines().last().unwrap_or_default();
    assert!(last.contains(",102100,seeded2100,started,"), "{last}");
    let day_four = csv(
        &app,
        "/api/v4/-/seats/billable_on.csv?date=2026-06-18",
        "billable_on_2026-06-18.csv",
    )
    .await;
    let users: Vec<i64> = day_four
        .lines()
        .skip(1)
        .map(|line| {
            line.split(',')
                .next()
                .unwrap_or_default()
                .parse()
                .expect("user id")
        })
        .collect();
    assert_eq!(users, (100_001..=102_100).collect::<Vec<i64>>());
}

/// Runs `seats <args>` against the app's database, as `token`.
fn seats_cli(app: &TestApp, args: &[&str], token: &str) -> std::process::Output {
    crate::support::process::binary()
        .arg("seats")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", &app.database_url)
        .env("DATA_DIR", &app.data_dir)
        .env(
            "LICENSE_PUBLIC_KEY_FILE",
            crate::support::vectors_dir().join("public_key.pem"),
        )
        .env("GITLAB_TOKEN", token)
        .output()
        .expect("the binary runs")
}

/// A command's standard output, after checking it succeeded.
fn stdout_of(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A failure the operator can read: non-zero, nothing on standard output, the message on
/// standard error.
fn assert_fails(output: &std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "expected a failure: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

async fn the_cli_prints_the_ledger_csvs_and_the_forecast(app: TestApp) {
    let script = scripted_history(&app).await;
    let lines = script.ledger_lines();

    // The same lines as the API's CSVs, through the same services.
    let ledger = stdout_of(&seats_cli(&app, &["ledger"], ROOT_TOKEN));
    assert_eq!(ledger, format!("{LEDGER_HEADER}{}", lines.concat()));
    assert_eq!(ledger, app.get("/api/v4/-/seats/ledger.csv").await.body);
    assert_eq!(
        stdout_of(&seats_cli(
            &app,
            &["ledger", "--user", "bob", "--direction", "stopped"],
            ROOT_TOKEN
        )),
        format!("{LEDGER_HEADER}{}", lines[4])
    );
    assert_eq!(
        stdout_of(&seats_cli(
            &app,
            &[
                "ledger",
                "--from",
                "2026-06-16",
                "--to",
                "2026-06-16",
                "--direction",
                "started"
            ],
            ROOT_TOKEN
        )),
        format!("{LEDGER_HEADER}{}{}{}", lines[1], lines[2], lines[3])
    );
    let day_two = stdout_of(&seats_cli(&app, &["billable-on", "2026-06-16"], ROOT_TOKEN));
    assert_eq!(day_two, script.billable_on_day_two());
    assert_eq!(
        day_two,
        app.get("/api/v4/-/seats/billable_on.csv?date=2026-06-16")
            .await
            .body
    );

    // The API's errors, on standard error with a non-zero exit.
    assert_fails(
        &seats_cli(&app, &["billable-on", "2026-01-01"], ROOT_TOKEN),
        "date is before the seat ledger began (2026-06-15)",
    );
    assert_fails(
        &seats_cli(&app, &["billable-on", "15/06/2026"], ROOT_TOKEN),
        "date is invalid",
    );
    assert_fails(
        &seats_cli(&app, &["ledger", "--direction", "sideways"], ROOT_TOKEN),
        "direction is invalid",
    );
    assert_fails(
        &seats_cli(&app, &["ledger", "--user", "nobody"], ROOT_TOKEN),
        "404 User Not Found",
    );
    // An administrator's token only.
    assert_fails(
        &seats_cli(&app, &["ledger"], "glpat-nothing"),
        "GITLAB_TOKEN is not a valid personal access token",
    );
    let plain = app
        .add_user(gitlab_license_server::store::NewUser::human("plain", false))
        .await;
    let (token, _) = app.token_for(&plain, &["api"], None).await;
    assert_fails(
        &seats_cli(&app, &["billable-on", "2026-06-16"], &token),
        "GITLAB_TOKEN must belong to an administrator",
    );

    // The forecast: the command runs by the wall clock, so the license and the server's
    // clock are today's; the JSON is the API's.
    app.set_now(chrono::Utc::now());
    assert_eq!(
        app.upload(&crate::support::licenses::premium_today(10))
            .await
            .status,
        StatusCode::CREATED
    );
    app.run_jobs().await;
    let printed = stdout_of(&seats_cli(
        &app,
        &["forecast", "--price-per-seat", "100", "--currency", "eur"],
        ROOT_TOKEN,
    ));
    let forecast: Value = serde_json::from_str(&printed).expect("JSON");
    assert_eq!(
        forecast,
        app.get("/api/v4/-/seats/forecast?price_per_seat=100&currency=eur")
            .await
            .json()
    );
    assert_eq!(
        (
            forecast["seats"].clone(),
            forecast["price_per_seat"].clone(),
            forecast["currency"].clone()
        ),
        (json!(10), json!(100.0), json!("EUR"))
    );
    assert_eq!(
        serde_json::from_str::<Value>(&stdout_of(&seats_cli(&app, &["forecast"], ROOT_TOKEN)))
            .expect("JSON")["amount"],
        Value::Null,
        "no price configured"
    );
    assert_fails(
        &seats_cli(&app, &["forecast", "--price-per-seat", "abc"], ROOT_TOKEN),
        "price_per_seat is invalid",
    );
}

on_both_backends!(deprovisioning_is_recorded_and_the_ledger_outlives_the_process);

/// A user an identity provider provisions and then deprovisions (GitLab's `ldap_blocked`)
/// starts and stops in the ledger; a second server process on the same database — a restart,
/// or another replica — answers the same ledger.
async fn deprovisioning_is_recorded_and_the_ledger_outlives_the_process(app: TestApp) {
    assert_eq!(app.upload(&premium(10)).await.status, StatusCode::CREATED);
    app.run_jobs().await;
    let token = app
        .send(Method::POST, "/api/v4/-/scim/token", Some(ROOT_TOKEN))
        .await
        .json()["token"]
        .as_str()
        .expect("SCIM token")
        .to_string();
    let scim = |method: Method, path: &str, body: Value| {
        app.client
            .request(method, app.url(&format!("/api/scim/v2/application{path}")))
            .bearer_auth(&token)
            .header("Content-Type", "application/scim+json")
            .body(body.to_string())
    };
    let created = scim(
        Method::POST,
        "/Users",
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "externalId": "dora-1", "userName": "dora", "active": true,
            "name": {"formatted": "Dora Example", "givenName": "Dora", "familyName": "Example"},
            "emails": [{"primary": true, "type": "work", "value": "dora@example.com"}],
        }),
    )
    .send()
    .await
    .expect("provision");
    assert_eq!(created.status(), StatusCode::CREATED);
    app.set_now(test_now() + TimeDelta::days(1));
    recount(&app).await;
    let patched = scim(
        Method::PATCH,
        "/Users/dora-1",
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "active", "value": "False"}],
        }),
    )
    .send()
    .await
    .expect("deprovision");
    assert_eq!(patched.status(), StatusCode::NO_CONTENT);
    app.set_now(test_now() + TimeDelta::days(2));
    recount(&app).await;
    assert_eq!(
        entries(&app, "&user=dora").await,
        owned(&[
            (
                "dora",
                "started",
                "Active human user (every active human user occupies a seat)"
            ),
            ("dora", "stopped", "State changed to ldap_blocked"),
        ])
    );
    assert!(!billable_on(&app, "2026-06-17")
        .await
        .contains(&"dora".to_string()));
    assert!(billable_on(&app, "2026-06-16")
        .await
        .contains(&"dora".to_string()));

    // Another process on the same database answers the same.
    let ledger = app.get("/api/v4/-/seats/ledger.csv").await.body;
    let again = TestApp::start(app.backend, &[("DATABASE_URL", &app.database_url)]).await;
    again.set_now(test_now() + TimeDelta::days(2));
    assert_eq!(again.get("/api/v4/-/seats/ledger.csv").await.body, ledger);
    recount(&again).await;
    assert_eq!(
        again.get("/api/v4/-/seats/ledger.csv").await.body,
        ledger,
        "a recount with nothing changed adds nothing"
    );
}
