//! The seven License endpoints through the real router on a real socket, on both backends.

use chrono::{TimeZone, Utc};
use gitlab_license_server::store::Write;
use gitlab_license_server::store::{HistoryRow, NewUser};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::on_both_backends;
use crate::support::app::{test_now, TestApp, ROOT_TOKEN};
use crate::support::fixture_json;
use crate::support::licenses::{license, license_from_payload, premium};

const INVALID_KEY: &str =
    "The license key is invalid. Make sure it is exactly as you received it from the license issuer.";

fn at(text: &str) -> chrono::DateTime<Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

async fn history(app: &TestApp, rows: &[(&str, i64)]) {
    let rows: Vec<HistoryRow> = rows
        .iter()
        .map(|(recorded_at, count)| HistoryRow {
            recorded_at: at(recorded_at),
            active_user_count: *count,
        })
        .collect();
    app.state
        .store
        .insert_history(&rows)
        .await
        .expect("history");
}

async fn measurement(app: &TestApp, count: i64, recorded_at: &str) {
    app.state
        .store
        .record_billable_measurement(count, at(recorded_at))
        .await
        .expect("measurement");
}

on_both_backends!(
    empty_instance,
    license_lifecycle,
    entity_field_order_and_formats,
    upload_reads_query_form_json_and_multipart,
    upload_parameter_errors,
    upload_validations_in_order,
    seat_check_against_the_prior_year,
    seat_check_with_previous_user_count,
    trueup_check,
    reconciliation_completed_checks_available_seats,
    vectors_over_http,
    current_license_choice,
    expired_license_is_still_shown,
    expired_on_the_expiry_day,
    overage_for_current_and_expired,
    licenses_list_uses_current_count,
    refresh_billable_users_recounts,
    refresh_billable_users_unknown_id,
    ultimate_counts_only_members_above_guest,
    usage_export_layout,
    usage_export_without_license,
    id_parameter_errors,
    trial_upload_sets_trial_end,
    cancelled_cloud_subscriptions,
);

fn cloud_payload(subscription: &str, starts: &str, expires: &str, cancellation: bool) -> Value {
    json!({
        "version": 1,
        "licensee": {"Name": "Ada Admin", "Email": "ada@example.org", "Company": "Example Org"},
        "issued_at": starts, "expires_at": expires,
        "cloud_licensing_enabled": true, "generated_from_cancellation": cancellation,
        "restrictions": {"plan": "premium", "active_user_count": 1, "subscription_name": subscription},
    })
}

async fn empty_instance(app: TestApp) {
    let reply = app.get("/api/v4/license").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "null");
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let reply = app.get("/api/v4/licenses").await;
    assert_eq!((reply.status, reply.json()), (StatusCode::OK, json!([])));
    assert!(reply.header("x-total").is_none(), "not paginated");
}

async fn license_lifecycle(app: TestApp) {
    let key = premium(50);
    let created = app.upload(&key).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let entity = created.json();
    let id = entity["id"].as_i64().expect("id");
    assert_eq!(entity["plan"], "premium");
    assert_eq!(entity["user_limit"], 50);
    assert_eq!(entity["expired"], false);

    let current = app.get("/api/v4/license").await;
    assert_eq!(current.status, StatusCode::OK);
    assert_eq!(
        current.json(),
        entity,
        "GET /license shows what POST returned"
    );
    let by_id = app.get(&format!("/api/v4/license/{id}")).await;
    assert_eq!(by_id.json(), entity);
    let list = app.get("/api/v4/licenses").await.json();
    let mut without_active_users = entity.clone();
    without_active_users
        .as_object_mut()
        .expect("object")
        .remove("active_users");
    assert_eq!(list, json!([without_active_users]));

    // Duplicates are not rejected: the same key twice makes two rows, the newest current.
    let second = app.upload(&key).await.json();
    assert!(second["id"].as_i64() > Some(id));
    assert_eq!(app.get("/api/v4/license").await.json()["id"], second["id"]);
    assert_eq!(
        app.get("/api/v4/licenses")
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    let deleted = app
        .delete(&format!("/api/v4/license/{}", second["id"]))
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.body, "", "204 has no body");
    assert_eq!(
        app.get("/api/v4/license").await.json()["id"],
        json!(id),
        "the older one is current again"
    );

    assert_eq!(
        app.delete(&format!("/api/v4/license/{id}")).await.status,
        StatusCode::NO_CONTENT
    );
    let again = app.delete(&format!("/api/v4/license/{id}")).await;
    assert_eq!(
        (again.status, again.json()),
        (StatusCode::NOT_FOUND, json!({"message": "404 Not found"}))
    );
    let gone = app.get(&format!("/api/v4/license/{id}")).await;
    assert_eq!(
        (gone.status, gone.json()),
        (StatusCode::NOT_FOUND, json!({"message": "404 Not Found"}))
    );
    assert_eq!(app.get("/api/v4/license").await.body, "null");
}

async fn entity_field_order_and_formats(app: TestApp) {
    let body = app.upload(&premium(10)).await.body;
    let keys: Vec<String> = serde_json::from_str::<serde_json::Map<String, Value>>(&body)
        .expect("object")
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "plan",
            "created_at",
            "starts_at",
            "expires_at",
            "historical_max",
            "maximum_user_count",
            "licensee",
            "add_ons",
            "expired",
            "overage",
            "user_limit",
            "active_users"
        ]
    );
    let entity: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(entity["created_at"], "2026-06-15T10:30:00.000Z");
    assert_eq!(entity["starts_at"], "2026-01-01");
    assert_eq!(entity["expires_at"], "2027-01-01");
    assert_eq!(
        entity["licensee"],
        json!({"Name": "Ada Admin", "Email": "ada@example.org", "Company": "Example Org"})
    );
    assert_eq!(entity["add_ons"], json!({}));
    assert!(entity["historical_max"].is_i64() && entity["active_users"].is_i64());
}

async fn upload_reads_query_form_json_and_multipart(app: TestApp) {
    let key = premium(10);
    let query = app
        .send_with(
            app.client
                .post(app.url("/api/v4/license"))
                .query(&[("license", &key)]),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(query.status, StatusCode::CREATED, "query: {}", query.body);
    let form = app
        .send_with(
            app.client
                .post(app.url("/api/v4/license"))
                .form(&[("license", &key)]),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(form.status, StatusCode::CREATED, "form: {}", form.body);
    assert_eq!(app.upload(&key).await.status, StatusCode::CREATED, "json");
    let boundary = "XyZ123";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"license\"; filename=\"a.license\"\r\nContent-Type: text/plain\r\n\r\n{key}\r\n--{boundary}--\r\n"
    );
    let multipart = app
        .send_with(
            app.client
                .post(app.url("/api/v4/license"))
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(multipart),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(
        multipart.status,
        StatusCode::CREATED,
        "multipart: {}",
        multipart.body
    );
    assert_eq!(
        app.get("/api/v4/licenses")
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(4)
    );
}

async fn upload_parameter_errors(app: TestApp) {
    let post = |request: reqwest::RequestBuilder| app.send_with(request, Some(ROOT_TOKEN));
    let url = app.url("/api/v4/license");
    let missing = post(app.client.post(&url)).await;
    assert_eq!(
        (missing.status, missing.json()),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "license is missing"})
        )
    );
    let array = post(app.client.post(&url).json(&json!({"license": ["a"]}))).await;
    assert_eq!(
        (array.status, array.json()),
        (
            StatusCode::BAD_REQUEST,
            json!({"error": "license is invalid"})
        )
    );
    // Present but null, empty or not a key: the model's invalid-key message (Grape's
    // `requires` only checks that the key is there).
    for body in [
        json!({"license": ""}),
        json!({"license": null}),
        json!({"license": 12}),
        json!({"license": "foo"}),
    ] {
        let reply = post(app.client.post(&url).json(&body)).await;
        assert_eq!(
            (reply.status, reply.json()),
            (StatusCode::BAD_REQUEST, json!({"message": INVALID_KEY})),
            "{body}"
        );
    }
    let malformed = post(
        app.client
            .post(&url)
            .header("content-type", "application/json")
            .body("{nope"),
    )
    .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert!(malformed.json()["error"].is_string());
    let plain = post(
        app.client
            .post(&url)
            .header("content-type", "text/plain")
            .body("license=x"),
    )
    .await;
    assert_eq!(plain.json(), json!({"error": "license is missing"}));
    let huge = format!("{{\"license\": \"{}\"}}", "A".repeat(2 * 1024 * 1024));
    let (status, body) = app
        .raw_post(
            "/api/v4/license",
            &[
                ("content-type", "application/json"),
                ("private-token", ROOT_TOKEN),
            ],
            huge.into_bytes(),
        )
        .await;
    assert_eq!(
        (status, body.as_str()),
        (413, r#"{"message":"413 Request Entity Too Large"}"#)
    );
    assert_eq!(
        app.get("/api/v4/licenses").await.json(),
        json!([]),
        "nothing was stored"
    );
}

async fn upload_validations_in_order(app: TestApp) {
    // Invalid key first: garbage never reaches the other checks.
    let reply = app.upload("foo").await;
    assert_eq!(reply.json(), json!({"message": INVALID_KEY}));
    // Expired is the last check: a license over its seats that is also expired reports seats.
    history(&app, &[("2018-06-01T12:00:00Z", 500)]).await;
    let reply = app
        .upload(&license(
            "2019-01-01",
            "2020-01-01",
            json!({"plan": "premium", "active_user_count": 10}),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.json()["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("During the year before")),
        "{}",
        reply.body
    );
    let reply = app
        .upload(&license(
            "2019-01-01",
            "2020-01-01",
            json!({"plan": "premium", "active_user_count": 1000}),
        ))
        .await;
    assert_eq!(
        reply.json(),
        json!({"message": "This license has already expired."})
    );
    // A license expiring today is already expired.
    let reply = app
        .upload(&license("2025-06-15", "2026-06-15", json!({})))
        .await;
    assert_eq!(
        reply.json(),
        json!({"message": "This license has already expired."})
    );
    assert_eq!(app.get("/api/v4/licenses").await.json(), json!([]));
}

async fn seat_check_against_the_prior_year(app: TestApp) {
    // No current license: the prior period is the year before the new license.
    history(
        &app,
        &[
            ("2025-03-01T12:00:00Z", 1204),
            ("2024-12-31T12:00:00Z", 5000),
        ],
    )
    .await;
    let reply = app
        .upload(&license(
            "2026-01-01",
            "2027-01-01",
            json!({"active_user_count": 1000}),
        ))
        .await;
    assert_eq!(
        reply.json()["message"],
        "During the year before this license started, this GitLab installation had 1,204 active users, exceeding this license's limit of 1,000 by 204 users. Please add a license for at least 1,204 users or contact sales at https://about.gitlab.com/sales/"
    );
    // 10 % grace: floor(1095 × 1.1) = 1204 seats suffice.
    let reply = app
        .upload(&license(
            "2026-01-01",
            "2027-01-01",
            json!({"active_user_count": 1095}),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    // With a current license, its term is the prior period: the 5000 on 2024-12-31 is outside.
    let reply = app
        .upload(&license(
            "2026-02-01",
            "2027-02-01",
            json!({"active_user_count": 1095}),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
    // Singular wording.
    let fresh = TestApp::start(app.backend, &[]).await;
    history(&fresh, &[("2025-06-01T12:00:00Z", 1)]).await;
    let reply = fresh
        .upload(&license(
            "2026-01-01",
            "2027-01-01",
            json!({"active_user_count": 0}),
        ))
        .await;
    assert_eq!(
        reply.json()["message"],
        "During the year before this license started, this GitLab installation had 1 active user, exceeding this license's limit of 0 by 1 user. Please add a license for at least 1 user or contact sales at https://about.gitlab.com/sales/"
    );
}

async fn seat_check_with_previous_user_count(app: TestApp) {
    history(&app, &[("2025-06-01T12:00:00Z", 40)]).await;
    measurement(&app, 60, "2026-06-15T09:00:00Z").await;
    // previous_user_count covers the prior peak: today's 60 users are compared instead.
    let reply = app
        .upload(&license(
            "2026-01-01",
            "2027-01-01",
            json!({"active_user_count": 50, "previous_user_count": 45}),
        ))
        .await;
    assert_eq!(
        reply.json()["message"],
        "This GitLab installation currently has 60 active users, exceeding this license's limit of 50 by 10 users. Please add a license for at least 60 users or contact sales at https://about.gitlab.com/sales/"
    );
    let reply = app
        .upload(&license(
            "2026-01-01",
            "2027-01-01",
            json!({"active_user_count": 55, "previous_user_count": 45}),
        ))
        .await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

async fn trueup_check(app: TestApp) {
    history(&app, &[("2025-05-01T12:00:00Z", 130)]).await;
    let trueup = |quantity: u64| {
        license(
            "2026-01-01",
            "2027-01-01",
            json!({
                "active_user_count": 200, "previous_user_count": 100,
                "trueup_quantity": quantity, "trueup_from": "2025-01-01", "trueup_to": "2025-12-31",
            }),
        )
    };
    // 130 users against 100 seats need a true-up of 30; 20 × 1.1 = 22 is not enough.
    let reply = app.upload(&trueup(20)).await;
    assert_eq!(
        reply.json()["message"],
        "You have applied a True-up for 20 users but you need one for 30 users. Please contact sales at https://about.gitlab.com/sales/"
    );
    // 28 × 1.1 = 30 is.
    let reply = app.upload(&trueup(28)).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.body);
}

async fn reconciliation_completed_checks_available_seats(app: TestApp) {
    history(&app, &[("2025-06-01T12:00:00Z", 9999)]).await;
    measurement(&app, 12, "2026-06-15T09:00:00Z").await;
    let reconciled = |seats: u64| {
        license(
            "2026-01-01",
            "2027-01-01",
            json!({"active_user_count": seats, "reconciliation_completed": true}),
        )
    };
    let reply = app.upload(&reconciled(10)).await;
    assert_eq!(
        reply.json()["message"],
        "This GitLab installation currently has 12 active users, exceeding this license's limit of 10 by 2 users. Please add a license for at least 12 users or contact sales at https://about.gitlab.com/sales/"
    );
    // The prior-year peak of 9999 is not looked at once reconciliation is done.
    assert_eq!(
        app.upload(&reconciled(11)).await.status,
        StatusCode::CREATED
    );
}

async fn vectors_over_http(app: TestApp) {
    for vector in fixture_json("vectors.json") {
        let name = vector["name"].as_str().expect("name");
        let expect = &vector["expect"];
        let reply = app
            .upload(vector["license"].as_str().expect("license"))
            .await;
        if expect["valid"] == json!(false) {
            assert_eq!(
                (reply.status, reply.json()),
                (StatusCode::BAD_REQUEST, json!({"message": INVALID_KEY})),
                "{name}"
            );
            continue;
        }
        if let Some(message) = expect.get("upload_error") {
            assert_eq!(
                (reply.status, &reply.json()["message"]),
                (StatusCode::BAD_REQUEST, message),
                "{name}"
            );
            continue;
        }
        assert_eq!(reply.status, StatusCode::CREATED, "{name}: {}", reply.body);
        let entity = reply.json();
        for field in [
            "plan",
            "starts_at",
            "expires_at",
            "user_limit",
            "licensee",
            "add_ons",
            "expired",
        ] {
            assert_eq!(entity[field], expect[field], "{name}: {field}");
        }
        let current = app.get("/api/v4/license").await.json();
        if expect.get("current") == Some(&json!(false)) {
            assert_ne!(
                current["id"], entity["id"],
                "{name} must not become current"
            );
        } else {
            assert_eq!(
                current["id"], entity["id"],
                "{name} is the newest started license"
            );
        }
    }
}

async fn current_license_choice(app: TestApp) {
    let early_future = app
        .upload(&license(
            "2027-01-01",
            "2028-01-01",
            json!({"plan": "ultimate"}),
        ))
        .await;
    assert_eq!(
        early_future.status,
        StatusCode::CREATED,
        "future-dated licenses are accepted"
    );
    assert_eq!(
        app.get("/api/v4/license").await.body,
        "null",
        "but never current"
    );
    let older = app
        .upload(&license(
            "2025-01-01",
            "2028-01-01",
            json!({"plan": "premium"}),
        ))
        .await
        .json();
    let future = app
        .upload(&license(
            "2027-01-01",
            "2028-01-01",
            json!({"plan": "ultimate"}),
        ))
        .await;
    let newer = app
        .upload(&license(
            "2026-03-01",
            "2027-03-01",
            json!({"plan": "starter"}),
        ))
        .await
        .json();
    // The newest upload wins, not the latest start date.
    assert_eq!(app.get("/api/v4/license").await.json()["id"], newer["id"]);
    app.delete(&format!("/api/v4/license/{}", newer["id"]))
        .await;
    assert_eq!(app.get("/api/v4/license").await.json()["id"], older["id"]);
    // On its start date a future license becomes current by itself — when it is the newest
    // upload; one uploaded before the current license stays behind it.
    app.set_now(
        Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0)
            .single()
            .expect("time"),
    );
    assert_eq!(
        app.get("/api/v4/license").await.json()["id"],
        future.json()["id"]
    );
    app.delete(&format!("/api/v4/license/{}", future.json()["id"]))
        .await;
    assert_eq!(app.get("/api/v4/license").await.json()["id"], older["id"]);
    assert_ne!(older["id"], early_future.json()["id"]);
}

async fn expired_license_is_still_shown(app: TestApp) {
    let uploaded = app.upload(&premium(10)).await.json();
    app.set_now(
        Utc.with_ymd_and_hms(2028, 1, 1, 12, 0, 0)
            .single()
            .expect("time"),
    );
    let current = app.get("/api/v4/license").await.json();
    assert_eq!(current["id"], uploaded["id"]);
    assert_eq!(current["expired"], true);
    // An unexpired, started license takes precedence over a newer expired one.
    app.set_now(test_now());
    let long = app
        .upload(&license("2025-01-01", "2030-01-01", json!({})))
        .await
        .json();
    let short = app
        .upload(&license("2026-01-01", "2027-06-01", json!({})))
        .await
        .json();
    assert_eq!(app.get("/api/v4/license").await.json()["id"], short["id"]);
    app.set_now(
        Utc.with_ymd_and_hms(2028, 1, 1, 12, 0, 0)
            .single()
            .expect("time"),
    );
    assert_eq!(app.get("/api/v4/license").await.json()["id"], long["id"]);
}

async fn expired_on_the_expiry_day(app: TestApp) {
    let id = app.upload(&premium(10)).await.json()["id"].clone();
    app.set_now(
        Utc.with_ymd_and_hms(2026, 12, 31, 23, 59, 59)
            .single()
            .expect("time"),
    );
    assert_eq!(
        app.get(&format!("/api/v4/license/{id}")).await.json()["expired"],
        false
    );
    app.set_now(
        Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0)
            .single()
            .expect("time"),
    );
    assert_eq!(
        app.get(&format!("/api/v4/license/{id}")).await.json()["expired"],
        true
    );
}

async fn overage_for_current_and_expired(app: TestApp) {
    let id = app.upload(&premium(100)).await.json()["id"].clone();
    history(
        &app,
        &[
            ("2026-03-01T12:00:00Z", 120),
            ("2025-12-31T12:00:00Z", 999),
            ("2027-01-02T12:00:00Z", 999),
        ],
    )
    .await;
    // Later than the recount the upload recorded at 10:30.
    measurement(&app, 112, "2026-06-15T11:00:00Z").await;
    let current = app.get("/api/v4/license").await.json();
    assert_eq!(
        current["historical_max"], 120,
        "only history inside the term counts"
    );
    assert_eq!(current["maximum_user_count"], 120);
    assert_eq!(current["active_users"], 112);
    assert_eq!(
        current["overage"], 12,
        "current license: today's users over seats"
    );
    // After expiry GitLab's code uses maximum_user_count (docs say historical_max).
    app.set_now(
        Utc.with_ymd_and_hms(2027, 2, 1, 0, 0, 0)
            .single()
            .expect("time"),
    );
    measurement(&app, 90, "2027-02-01T00:00:00Z").await;
    let expired = app.get(&format!("/api/v4/license/{id}")).await.json();
    assert_eq!(expired["expired"], true);
    assert_eq!(expired["active_users"], 90);
    assert_eq!(expired["maximum_user_count"], 120);
    assert_eq!(expired["overage"], 20);
    // Today's count above the peak raises maximum_user_count.
    measurement(&app, 130, "2027-02-01T01:00:00Z").await;
    let expired = app.get(&format!("/api/v4/license/{id}")).await.json();
    assert_eq!(
        (
            expired["maximum_user_count"].clone(),
            expired["overage"].clone()
        ),
        (json!(130), json!(30))
    );
    // No seat limit: no overage.
    app.set_now(test_now());
    let unlimited = app
        .upload(&license("2026-01-01", "2027-01-01", json!({})))
        .await
        .json();
    assert_eq!(
        (
            unlimited["user_limit"].clone(),
            unlimited["overage"].clone()
        ),
        (json!(0), json!(0))
    );
}

async fn licenses_list_uses_current_count(app: TestApp) {
    app.upload(&premium(5)).await;
    app.upload(&premium(50)).await;
    measurement(&app, 8, "2026-06-15T11:00:00Z").await;
    let list = app.get("/api/v4/licenses").await.json();
    let overages: Vec<Value> = list
        .as_array()
        .expect("array")
        .iter()
        .map(|l| l["overage"].clone())
        .collect();
    assert_eq!(
        overages,
        [json!(0), json!(3)],
        "newest first; each judged on today's count"
    );
    assert!(list[0].get("active_users").is_none());
}

async fn refresh_billable_users_recounts(app: TestApp) {
    let id = app.upload(&premium(10)).await.json()["id"].clone();
    // The upload queued a recount; the worker stores it as a measurement.
    assert_eq!(app.run_jobs().await, 1);
    let before = app.get("/api/v4/license").await.json()["active_users"].clone();
    assert_eq!(before, 1, "root is the only billable user");
    for name in ["alice", "bob"] {
        app.add_user(NewUser::human(name, false)).await;
    }
    let mut blocked = NewUser::human("carol", false);
    blocked.state = gitlab_license_server::domain::users::UserState::Blocked;
    app.add_user(blocked).await;
    let mut bot = NewUser::human("project_1_bot", false);
    bot.user_type = gitlab_license_server::domain::users::UserType::ProjectBot;
    app.add_user(bot).await;
    let mut service = NewUser::human("svc", false);
    service.user_type = gitlab_license_server::domain::users::UserType::ServiceUser;
    app.add_user(service).await;
    // A measurement was stored at upload, so the new users show only after a recount.
    assert_eq!(app.get("/api/v4/license").await.json()["active_users"], 1);
    app.set_now(test_now() + chrono::TimeDelta::minutes(1));
    let reply = app
        .put(&format!("/api/v4/license/{id}/refresh_billable_users"))
        .await;
    assert_eq!(
        (reply.status, reply.json()),
        (StatusCode::ACCEPTED, json!({"success": true}))
    );
    // Accepted, not done: the count changes once the queued job has run.
    assert_eq!(app.get("/api/v4/license").await.json()["active_users"], 1);
    assert_eq!(app.run_jobs().await, 1);
    let current = app.get("/api/v4/license").await.json();
    assert_eq!(
        current["active_users"], 4,
        "root, alice, bob and the service user"
    );
    assert_eq!(current["historical_max"], 0, "a recount writes no history");
}

async fn refresh_billable_users_unknown_id(app: TestApp) {
    let reply = app.put("/api/v4/license/4242/refresh_billable_users").await;
    assert_eq!(
        (reply.status, reply.json()),
        (StatusCode::NOT_FOUND, json!({"message": "404 Not Found"}))
    );
    assert!(
        app.state.store.jobs().await.expect("jobs").is_empty(),
        "nothing queued"
    );
    // A license that has not started answers success but queues nothing (nor does its upload).
    let future = app
        .upload(&license("2027-01-01", "2028-01-01", json!({})))
        .await
        .json();
    let reply = app
        .put(&format!(
            "/api/v4/license/{}/refresh_billable_users",
            future["id"]
        ))
        .await;
    assert_eq!(reply.status, StatusCode::ACCEPTED);
    assert!(
        app.state.store.jobs().await.expect("jobs").is_empty(),
        "a license that has not started queues no recount"
    );
}

async fn ultimate_counts_only_members_above_guest(app: TestApp) {
    let guest = app.add_user(NewUser::human("guest", false)).await;
    let reporter = app.add_user(NewUser::human("reporter", false)).await;
    let planner = app.add_user(NewUser::human("planner", false)).await;
    app.add_user(NewUser::human("nobody", false)).await;
    let store = &app.state.store;
    store
        .add_membership(guest.id, "Namespace", 1, 10, Write::unaudited(test_now()))
        .await
        .expect("member");
    store
        .add_membership(
            reporter.id,
            "Namespace",
            1,
            20,
            Write::unaudited(test_now()),
        )
        .await
        .expect("member");
    store
        .add_membership(planner.id, "Project", 7, 15, Write::unaudited(test_now()))
        .await
        .expect("member");
    let entity = app
        .upload(&license(
            "2026-01-01",
            "2027-01-01",
            json!({"plan": "ultimate"}),
        ))
        .await
        .json();
    assert_eq!(
        entity["active_users"], 2,
        "reporter and planner; not guests, members-less users or root"
    );
    app.set_now(test_now() + chrono::TimeDelta::minutes(1));
    let premium = app.upload(&premium(100)).await.json();
    assert_eq!(premium["active_users"], 5, "every active human on premium");
}

async fn usage_export_layout(app: TestApp) {
    let key = premium(10);
    app.upload(&key).await;
    history(
        &app,
        &[
            ("2026-01-01T12:00:04Z", 98),
            ("2025-12-31T23:59:59Z", 1),
            ("2026-01-02T12:00:03.500Z", 101),
            ("2027-01-01T23:59:59Z", 7),
            ("2027-01-02T00:00:00Z", 2),
        ],
    )
    .await;
    let reply = app.get("/api/v4/license/usage_export.csv").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("content-type"), Some("text/csv"));
    let expected = format!(
        "License Key,\"{}\n\"\nEmail,ada@example.org\nLicense Start Date,2026-01-01\nLicense End Date,2027-01-01\nCompany,Example Org\nGenerated At,2026-06-15 10:30:00\n\"\",\"\"\nDate,Billable User Count\n2026-01-01 12:00:04,98\n2026-01-02 12:00:03,101\n2027-01-01 23:59:59,7\n",
        key.trim_end_matches('\n')
    );
    assert_eq!(reply.body, expected);
    assert_eq!(
        app.get("/api/v4/license/usage_export").await.body,
        expected,
        "extension-less path"
    );
    // CRLF keys are normalised.
    let crlf = premium(10).replace('\n', "\r\n");
    app.upload(&crlf).await;
    let body = app.get("/api/v4/license/usage_export.csv").await.body;
    assert!(!body.contains('\r'));
}

async fn usage_export_without_license(app: TestApp) {
    let reply = app.get("/api/v4/license/usage_export.csv").await;
    assert_eq!(
        (reply.status, reply.json()),
        (
            StatusCode::NOT_FOUND,
            json!({"message": "404 License Not Found"})
        )
    );
}

async fn id_parameter_errors(app: TestApp) {
    for (method, path) in [
        (Method::GET, "/api/v4/license/abc"),
        (Method::DELETE, "/api/v4/license/1.5"),
        (Method::PUT, "/api/v4/license/x/refresh_billable_users"),
    ] {
        let reply = app.send(method.clone(), path, Some(ROOT_TOKEN)).await;
        assert_eq!(
            (reply.status, reply.json()),
            (StatusCode::BAD_REQUEST, json!({"error": "id is invalid"})),
            "{method} {path}"
        );
    }
    let huge = app.get("/api/v4/license/99999999999999999999").await;
    assert_eq!(
        (huge.status, huge.json()),
        (StatusCode::NOT_FOUND, json!({"message": "404 Not Found"}))
    );
    let huge = app.delete("/api/v4/license/99999999999999999999").await;
    assert_eq!(huge.json(), json!({"message": "404 Not found"}));
}

async fn trial_upload_sets_trial_end(app: TestApp) {
    app.upload(&license("2026-06-01", "2026-07-01", json!({"trial": true})))
        .await;
    let setting = app
        .state
        .store
        .setting("license_trial_ends_on")
        .await
        .expect("setting");
    assert_eq!(setting.as_deref(), Some("2026-07-01"));
    // Only the first trial sets it.
    app.upload(&license("2026-06-01", "2026-08-01", json!({"trial": true})))
        .await;
    let setting = app
        .state
        .store
        .setting("license_trial_ends_on")
        .await
        .expect("setting");
    assert_eq!(setting.as_deref(), Some("2026-07-01"));
}

async fn cancelled_cloud_subscriptions(app: TestApp) {
    // An expired online cloud license generated by a cancellation is accepted (rule 5's
    // exception); cloud licenses also skip the seat checks (1 seat, a peak of 50).
    history(&app, &[("2025-06-01T12:00:00Z", 50)]).await;
    let expired = license_from_payload(cloud_payload("S9", "2025-01-01", "2026-01-01", true));
    assert_eq!(app.upload(&expired).await.status, StatusCode::CREATED);
    let expired_plain =
        license_from_payload(cloud_payload("S9", "2025-01-01", "2026-01-01", false));
    assert_eq!(
        app.upload(&expired_plain).await.json()["message"],
        "This license has already expired."
    );

    // §3.1: licenses of a cancelled subscription are passed over while another is valid.
    let other = app
        .upload(&license(
            "2026-01-01",
            "2027-01-01",
            json!({"subscription_name": "S2"}),
        ))
        .await
        .json();
    app.upload(&license(
        "2026-02-01",
        "2027-02-01",
        json!({"subscription_name": "S1"}),
    ))
    .await;
    app.upload(&license_from_payload(cloud_payload(
        "S1",
        "2026-03-01",
        "2027-03-01",
        true,
    )))
    .await;
    assert_eq!(app.get("/api/v4/license").await.json()["id"], other["id"]);
}
