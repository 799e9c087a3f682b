//! `GET`/`PUT /api/v4/application/settings` (GitLab's defaults, validations and error shapes,
//! audit events, the approval side effect) and the seat-control extension, on both backends.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::on_both_backends;
use crate::support::app::{TestApp, ROOT_TOKEN};
use crate::support::licenses::{license, premium};
use gitlab_license_server::domain::users::UserState;
use gitlab_license_server::store::NewUser;

on_both_backends!(
    settings_have_gitlab_defaults_and_validations,
    seat_controls_are_an_extension_for_paid_plans,
    turning_approval_off_approves_pending_users,
    concurrent_changes_to_different_settings_both_land,
);

/// Two administrators changing different settings at the same moment: the settings are one
/// stored document, changed by compare-and-set and reapplied on conflict, so neither change
/// overwrites the other, and each is audited once.
async fn concurrent_changes_to_different_settings_both_land(app: TestApp) {
    const ROUNDS: i64 = 12;
    for round in 0..ROUNDS {
        let period = 100 + round;
        let prefix = format!("r{round}-");
        let (first, second) = tokio::join!(
            put_json(
                &app,
                "/api/v4/application/settings",
                json!({"deactivate_dormant_users_period": period}),
            ),
            put_json(
                &app,
                "/api/v4/application/settings",
                json!({"personal_access_token_prefix": prefix}),
            )
        );
        assert_eq!(
            (first.status, second.status),
            (StatusCode::OK, StatusCode::OK)
        );
        let settings = app.get("/api/v4/application/settings").await.json();
        assert_eq!(
            (
                settings["deactivate_dormant_users_period"].clone(),
                settings["personal_access_token_prefix"].clone()
            ),
            (json!(period), json!(prefix)),
            "round {round}: one change overwrote the other"
        );
    }
    let audited = app
        .query_texts(
            "SELECT CAST(COUNT(*) AS TEXT) FROM audit_events WHERE event_name = 'application_setting_updated'",
        )
        .await;
    assert_eq!(audited, [(2 * ROUNDS).to_string()]);
}

async fn put_json(app: &TestApp, path: &str, body: Value) -> crate::support::app::Reply {
    app.send_with(app.client.put(app.url(path)).json(&body), Some(ROOT_TOKEN))
        .await
}

async fn settings_have_gitlab_defaults_and_validations(app: TestApp) {
    let shown = app.get("/api/v4/application/settings").await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(
        shown.json(),
        json!({
            "id": 1,
            "require_admin_approval_after_user_signup": true,
            "deactivate_dormant_users": false,
            "deactivate_dormant_users_period": 90,
            "personal_access_token_prefix": "glpat-",
            "require_personal_access_token_expiry": true,
            "max_personal_access_token_lifetime": null,
            "throttle_authenticated_api_enabled": false,
            "throttle_authenticated_api_requests_per_period": 7200,
            "throttle_authenticated_api_period_in_seconds": 3600,
            "throttle_unauthenticated_api_enabled": false,
            "throttle_unauthenticated_api_requests_per_period": 3600,
            "throttle_unauthenticated_api_period_in_seconds": 3600,
            "users_get_by_id_limit": 300,
            "users_get_by_id_limit_allowlist": [],
        })
    );

    // GitLab's model error, byte for byte; nothing changes.
    let refused = put_json(
        &app,
        "/api/v4/application/settings",
        json!({"deactivate_dormant_users": true, "deactivate_dormant_users_period": 30}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        refused.body,
        r#"{"message":{"deactivate_dormant_users_period":["'30' days of inactivity must be greater than or equal to 90"]}}"#
    );
    let several = put_json(
        &app,
        "/api/v4/application/settings",
        json!({"personal_access_token_prefix": "no spaces!", "throttle_authenticated_api_period_in_seconds": 0}),
    )
    .await;
    assert_eq!(several.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        several.json(),
        json!({"message": {
            "personal_access_token_prefix": ["can contain only letters of the Base64 alphabet (RFC4648) with the addition of '@', ':' and '.'"],
            "throttle_authenticated_api_period_in_seconds": ["must be greater than 0"],
        }})
    );
    assert_eq!(
        app.get("/api/v4/application/settings").await.body,
        shown.body
    );

    // Parameter errors are Grape's.
    let wrong_type = app
        .send(
            Method::PUT,
            "/api/v4/application/settings?throttle_authenticated_api_enabled=maybe",
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(wrong_type.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        wrong_type.json(),
        json!({"error": "throttle_authenticated_api_enabled is invalid"})
    );
    let nothing = put_json(&app, "/api/v4/application/settings", json!({})).await;
    assert_eq!(nothing.status, StatusCode::BAD_REQUEST);
    assert!(
        nothing.json()["error"].as_str().is_some_and(
            |text| text.ends_with("are missing, at least one parameter must be provided")
        )
    );

    // Keys this server does not act on are dropped with a 200, as GitLab drops unknown ones.
    let unknown = put_json(
        &app,
        "/api/v4/application/settings",
        json!({"signup_enabled": false, "gravatar_enabled": true}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::OK, "{}", unknown.body);
    assert_eq!(unknown.body, shown.body);

    // A change: applied, shown, audited once per setting that changed.
    let changed = app
        .send(
            Method::PUT,
            "/api/v4/application/settings?deactivate_dormant_users=true&deactivate_dormant_users_period=120&personal_access_token_prefix=acme-&signup_enabled=false",
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    let after = app.get("/api/v4/application/settings").await.json();
    assert_eq!(after["deactivate_dormant_users"], true);
    assert_eq!(after["deactivate_dormant_users_period"], 120);
    assert_eq!(after["personal_access_token_prefix"], "acme-");
    assert!(after.get("signup_enabled").is_none());
    let audits = app.get("/api/v4/audit_events?per_page=100").await.json();
    let changes: Vec<String> = audits
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| event["event_name"] == "application_setting_updated")
        .map(|event| {
            event["details"]["custom_message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    let mut changes = changes;
    changes.sort();
    assert_eq!(
        changes,
        [
            "Changed deactivate_dormant_users from false to true",
            "Changed deactivate_dormant_users_period from 90 to 120",
            "Changed personal_access_token_prefix from \"glpat-\" to \"acme-\"",
        ]
    );
    // The same again changes nothing and audits nothing.
    let again = app
        .send(
            Method::PUT,
            "/api/v4/application/settings?deactivate_dormant_users_period=120",
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);
    let count = app
        .query_texts("SELECT CAST(COUNT(*) AS TEXT) FROM audit_events WHERE event_name = 'application_setting_updated'")
        .await;
    assert_eq!(count, ["3"]);

    // Administrators only.
    let ada = app.add_user(NewUser::human("ada", false)).await;
    let (token, _) = app
        .token_for(
            &ada,
            &["api"],
            Some(crate::support::licenses::day("2027-01-01")),
        )
        .await;
    let forbidden = app
        .send(Method::GET, "/api/v4/application/settings", Some(&token))
        .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    let anonymous = app
        .send(Method::GET, "/api/v4/application/settings", None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

async fn seat_controls_are_an_extension_for_paid_plans(app: TestApp) {
    let shown = app.get("/api/v4/-/seat_control").await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(
        shown.json(),
        json!({"seat_control": "off", "seat_control_value": 0, "new_user_signups_cap": null, "licensed": false})
    );
    // Without Premium or Ultimate: refused.
    let refused = put_json(
        &app,
        "/api/v4/-/seat_control",
        json!({"seat_control": "user_cap", "new_user_signups_cap": 5}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);

    assert_eq!(app.upload(&premium(10)).await.status, StatusCode::CREATED);
    // GitLab's model rules for the cap.
    let missing = put_json(
        &app,
        "/api/v4/-/seat_control",
        json!({"seat_control": "user_cap"}),
    )
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        missing.json(),
        json!({"message": {"new_user_signups_cap": ["is not a number"]}})
    );
    let zero = put_json(
        &app,
        "/api/v4/-/seat_control",
        json!({"seat_control": 1, "new_user_signups_cap": 0}),
    )
    .await;
    assert_eq!(
        zero.json(),
        json!({"message": {"new_user_signups_cap": ["must be greater than 0"]}})
    );
    let blank = put_json(
        &app,
        "/api/v4/-/seat_control",
        json!({"seat_control": "block_overages", "new_user_signups_cap": 3}),
    )
    .await;
    assert_eq!(
        blank.json(),
        json!({"message": {"new_user_signups_cap": ["must be blank"]}})
    );
    let bad = put_json(
        &app,
        "/api/v4/-/seat_control",
        json!({"seat_control": "sometimes"}),
    )
    .await;
    assert_eq!(
        bad.json(),
        json!({"error": "seat_control does not have a valid value"})
    );

    let set = put_json(
        &app,
        "/api/v4/-/seat_control",
        json!({"seat_control": "user_cap", "new_user_signups_cap": 5}),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(
        set.json(),
        json!({"seat_control": "user_cap", "seat_control_value": 1, "new_user_signups_cap": 5, "licensed": true})
    );
    // Not on GitLab's settings API (GitLab's API has no such keys).
    let settings = app.get("/api/v4/application/settings").await.json();
    assert!(settings.get("seat_control").is_none());
    assert!(settings.get("new_user_signups_cap").is_none());
    let ignored = put_json(
        &app,
        "/api/v4/application/settings",
        json!({"new_user_signups_cap": 1}),
    )
    .await;
    assert_eq!(ignored.status, StatusCode::OK);
    assert_eq!(
        app.get("/api/v4/-/seat_control").await.json()["new_user_signups_cap"],
        5
    );

    // A license without a paid plan: the controls stay set but do not act.
    let free = license(
        "2026-01-01",
        "2027-01-01",
        json!({"plan": "starter", "active_user_count": 10}),
    );
    assert_eq!(app.upload(&free).await.status, StatusCode::CREATED);
    assert_eq!(
        app.get("/api/v4/-/seat_control").await.json()["licensed"],
        false
    );
}

async fn turning_approval_off_approves_pending_users(app: TestApp) {
    let mut pending = NewUser::human("waiting", false);
    pending.state = UserState::BlockedPendingApproval;
    let waiting = app.add_user(pending).await;
    let state_of = |id: i64| {
        let app = &app;
        async move {
            app.get(&format!("/api/v4/users/{id}")).await.json()["state"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        }
    };
    assert_eq!(state_of(waiting.id).await, "blocked_pending_approval");
    // Turning it on (it is on by default) approves nobody.
    let on = put_json(
        &app,
        "/api/v4/application/settings",
        json!({"require_admin_approval_after_user_signup": true}),
    )
    .await;
    assert_eq!(on.status, StatusCode::OK);
    assert_eq!(state_of(waiting.id).await, "blocked_pending_approval");
    let off = put_json(
        &app,
        "/api/v4/application/settings",
        json!({"require_admin_approval_after_user_signup": "false"}),
    )
    .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.body);
    assert_eq!(
        off.json()["require_admin_approval_after_user_signup"],
        false
    );
    assert_eq!(state_of(waiting.id).await, "active");
    let approved = app
        .query_texts(
            "SELECT CAST(COUNT(*) AS TEXT) FROM audit_events WHERE event_name = 'user_approved'",
        )
        .await;
    assert_eq!(approved, ["1"]);
}

on_both_backends!(
    the_user_cap_makes_new_humans_wait_for_approval,
    blocked_overages_refuse_new_billable_users,
);

async fn create(app: &TestApp, username: &str, user_type: &str) -> crate::support::app::Reply {
    app.send_with(
        app.client.post(app.url("/api/v4/users")).json(&json!({
            "username": username, "name": username,
            "email": format!("{username}@example.com"), "user_type": user_type,
        })),
        Some(ROOT_TOKEN),
    )
    .await
}

async fn audit_names(app: &TestApp, event: &str) -> Vec<String> {
    app.query_texts(&format!(
        "SELECT CAST(entity_id AS TEXT) FROM audit_events WHERE event_name = '{event}' ORDER BY id"
    ))
    .await
}

/// GitLab's user cap: at the cap (billable users counted as the license does), a new human is
/// created `blocked_pending_approval` (201), does not count, and waits for approve (201) or
/// reject (200, removed); bots are created active; raising the cap approves nobody unless
/// asked; a deactivated user activated at the cap waits too.
async fn the_user_cap_makes_new_humans_wait_for_approval(app: TestApp) {
    assert_eq!(app.upload(&premium(10)).await.status, StatusCode::CREATED);
    // root and ada: 2 billable users; a cap of 3.
    let ada = create(&app, "ada", "human").await;
    assert_eq!(ada.status, StatusCode::CREATED);
    let set = put_json(
        &app,
        "/api/v4/-/seat_control",
        json!({"seat_control": "user_cap", "new_user_signups_cap": 3}),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);

    let bea = create(&app, "bea", "human").await;
    assert_eq!(bea.status, StatusCode::CREATED);
    assert_eq!(bea.json()["state"], "active", "under the cap");
    let cyd = create(&app, "cyd", "human").await;
    assert_eq!(cyd.status, StatusCode::CREATED, "{}", cyd.body);
    assert_eq!(cyd.json()["state"], "blocked_pending_approval");
    assert_eq!(cyd.json()["using_license_seat"], false);
    let bot = create(&app, "project_9_bot", "project_bot").await;
    assert_eq!(bot.json()["state"], "active", "bots never wait");
    let cyd_id = cyd.json()["id"].as_i64().expect("id");
    assert_eq!(
        audit_names(&app, "user_pending_approval").await,
        [cyd_id.to_string()]
    );
    let hook = app
        .query_texts("SELECT CAST(event_name AS TEXT) FROM hook_events WHERE event_name = 'user_pending_approval'")
        .await;
    assert_eq!(hook.len(), 1);

    // Reject: 200 and the user is gone; a second time (or for an active user) 409.
    let dee = create(&app, "dee", "human").await;
    let dee_id = dee.json()["id"].as_i64().expect("id");
    let rejected = app
        .send(
            Method::POST,
            &format!("/api/v4/users/{dee_id}/reject"),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(rejected.status, StatusCode::OK, "{}", rejected.body);
    assert_eq!(rejected.json(), json!({"message": "Success"}));
    assert_eq!(
        app.get(&format!("/api/v4/users/{dee_id}")).await.status,
        StatusCode::NOT_FOUND
    );
    let again = app
        .send(
            Method::POST,
            &format!("/api/v4/users/{dee_id}/reject"),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    let bea_id = bea.json()["id"].as_i64().expect("id");
    let active = app
        .send(
            Method::POST,
            &format!("/api/v4/users/{bea_id}/reject"),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(active.status, StatusCode::CONFLICT);
    assert_eq!(
        active.json(),
        json!({"message": "User does not have a pending request"})
    );

    // Raising the cap without asking approves nobody; with auto_approve_pending_users it does.
    let raised = put_json(
        &app,
        "/api/v4/-/seat_control",
        json!({"seat_control": "user_cap", "new_user_signups_cap": 5}),
    )
    .await;
    assert_eq!(raised.status, StatusCode::OK);
    assert_eq!(
        app.get(&format!("/api/v4/users/{cyd_id}")).await.json()["state"],
        "blocked_pending_approval"
    );
    let raised = put_json(&app, "/api/v4/-/seat_control", json!({"seat_control": "user_cap", "new_user_signups_cap": 6, "auto_approve_pending_users": true})).await;
    assert_eq!(raised.status, StatusCode::OK);
    assert_eq!(
        app.get(&format!("/api/v4/users/{cyd_id}")).await.json()["state"],
        "active"
    );

    // Approve: GitLab's answers; no cap check on approve.
    let approve_active = app
        .send(
            Method::POST,
            &format!("/api/v4/users/{cyd_id}/approve"),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(approve_active.status, StatusCode::CONFLICT);
    assert_eq!(
        approve_active.json(),
        json!({"message": "The user you are trying to approve is not pending approval"})
    );

    // At the cap again (root, ada, bea, cyd = 4; cap 4), a deactivated user activated waits.
    put_json(
        &app,
        "/api/v4/-/seat_control",
        json!({"seat_control": "user_cap", "new_user_signups_cap": 4}),
    )
    .await;
    let deactivated = app
        .send(
            Method::POST,
            &format!("/api/v4/users/{bea_id}/deactivate"),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(
        deactivated.status,
        StatusCode::CREATED,
        "{}",
        deactivated.body
    );
    let eve = create(&app, "eve", "human").await;
    assert_eq!(eve.json()["state"], "active", "bea's seat was free");
    let activated = app
        .send(
            Method::POST,
            &format!("/api/v4/users/{bea_id}/activate"),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(activated.status, StatusCode::CREATED);
    assert_eq!(
        app.get(&format!("/api/v4/users/{bea_id}")).await.json()["state"],
        "blocked_pending_approval"
    );
    let approved = app
        .send(
            Method::POST,
            &format!("/api/v4/users/{bea_id}/approve"),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(approved.status, StatusCode::CREATED);
    assert_eq!(approved.json(), json!({"message": "Success"}));

    // Off: new humans are created active again.
    put_json(
        &app,
        "/api/v4/-/seat_control",
        json!({"seat_control": "off"}),
    )
    .await;
    assert_eq!(create(&app, "fay", "human").await.json()["state"], "active");
}

/// Block seat overages: with every seat taken, a new user who would take one is refused with
/// GitLab's NO_SEATS_AVAILABLE and nothing is written but the refusal's audit and hook event;
/// a bot is still created.
async fn blocked_overages_refuse_new_billable_users(app: TestApp) {
    assert_eq!(app.upload(&premium(2)).await.status, StatusCode::CREATED);
    assert_eq!(
        create(&app, "ada", "human").await.status,
        StatusCode::CREATED
    );
    let set = put_json(
        &app,
        "/api/v4/-/seat_control",
        json!({"seat_control": "block_overages"}),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let users = "SELECT CAST(COUNT(*) AS TEXT) FROM users";
    let before = app.query_texts(users).await;
    let refused = create(&app, "bea", "human").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert_eq!(refused.json(), json!({"message": "NO_SEATS_AVAILABLE"}));
    assert_eq!(app.query_texts(users).await, before, "nothing written");
    assert_eq!(audit_names(&app, "user_creation_refused").await, ["0"]);
    let service = create(&app, "svc", "service_user").await;
    assert_eq!(
        service.status,
        StatusCode::FORBIDDEN,
        "a service user takes a seat too"
    );
    let bot = create(&app, "project_9_bot", "project_bot").await;
    assert_eq!(bot.status, StatusCode::CREATED, "{}", bot.body);
    // A freed seat lets the next one in.
    let ada_id = app.get("/api/v4/users?username=ada").await.json()[0]["id"]
        .as_i64()
        .expect("ada");
    app.send(
        Method::POST,
        &format!("/api/v4/users/{ada_id}/block"),
        Some(ROOT_TOKEN),
    )
    .await;
    assert_eq!(
        create(&app, "bea", "human").await.status,
        StatusCode::CREATED
    );
}

on_both_backends!(dormant_users_are_deactivated_on_gitlabs_schedule);

/// GitLab's dormant-user job: with `deactivate_dormant_users` on, the run due at 00:21 UTC
/// deactivates active humans and service users inactive for the period, and those never
/// active created at least 7 days ago — not bots, not blocked users, not the exclusions —
/// with GitLab's `user_deactivate` audit event by the admin bot; the preview named exactly
/// them beforehand; off, nothing happens.
async fn dormant_users_are_deactivated_on_gitlabs_schedule(app: TestApp) {
    assert_eq!(app.upload(&premium(20)).await.status, StatusCode::CREATED);
    dormant_people(&app).await;

    // Exclusions: names that match nothing change nothing.
    let missing = put_json(
        &app,
        "/api/v4/-/dormant_users/exclusions",
        json!({"users": ["spared", "nobody"]}),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    let set = put_json(
        &app,
        "/api/v4/-/dormant_users/exclusions",
        json!({"users": ["spared"], "groups": ["keep"]}),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(set.json(), json!({"users": ["spared"], "groups": ["keep"]}));
    assert_eq!(
        app.get("/api/v4/-/dormant_users/exclusions").await.json(),
        set.json()
    );

    let on = put_json(
        &app,
        "/api/v4/application/settings",
        json!({"deactivate_dormant_users": true, "deactivate_dormant_users_period": 90}),
    )
    .await;
    assert_eq!(on.status, StatusCode::OK, "{}", on.body);
    let preview = app.get("/api/v4/-/dormant_users").await.json();
    let named: Vec<&str> = preview["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|user| user["username"].as_str())
        .collect();
    // The order the job takes them: the longest inactive first, then the never active.
    assert_eq!(named, ["svc", "old", "never_old"]);
    assert_eq!(
        (
            preview["dormant_users"].clone(),
            preview["seats_freed"].clone()
        ),
        (json!(3), json!(3))
    );
    assert_eq!(preview["enabled"], true);
    assert!(
        preview["next_run_at"]
            .as_str()
            .is_some_and(|at| at.starts_with("2026-06-16T00:21")),
        "{preview}"
    );

    // The run due last today (04:42 UTC; it is 10:30) takes exactly the preview's users.
    gitlab_license_server::jobs::schedule_due(&app.state)
        .await
        .expect("schedule");
    app.run_jobs().await;
    let mut deactivated = app
        .query_texts("SELECT username FROM users WHERE state = 'deactivated' ORDER BY id")
        .await;
    deactivated.sort();
    assert_eq!(deactivated, ["never_old", "old", "svc"]);
    assert_eq!(
        app.query_texts(
            "SELECT CAST(author_id AS TEXT) FROM audit_events WHERE event_name = 'user_deactivate'"
        )
        .await,
        ["-2", "-2", "-2"]
    );
    assert_eq!(
        app.get("/api/v4/-/dormant_users").await.json()["dormant_users"],
        0
    );

    // Off: the next run takes nobody.
    put_json(
        &app,
        "/api/v4/application/settings",
        json!({"deactivate_dormant_users": false}),
    )
    .await;
    app.execute_sql("UPDATE users SET last_activity_on = '2026-01-01' WHERE username = 'recent'")
        .await;
    app.set_now(crate::support::app::test_now() + chrono::TimeDelta::hours(15));
    gitlab_license_server::jobs::schedule_due(&app.state)
        .await
        .expect("schedule");
    app.run_jobs().await;
    assert_eq!(
        app.get("/api/v4/users?username=recent").await.json()[0]["state"],
        "active"
    );
}

on_both_backends!(blocked_overages_refuse_memberships_that_would_take_a_seat);

/// Block seat overages on memberships (GitLab's `BlockSeatOverages`): on Ultimate a role above
/// Guest makes someone billable, so adding or promoting one beyond the license's seats is
/// refused with GitLab's message and writes nothing; a Guest, or someone already billable, is
/// let through.
async fn blocked_overages_refuse_memberships_that_would_take_a_seat(app: TestApp) {
    let ultimate = license(
        "2026-01-01",
        "2027-01-01",
        json!({"plan": "ultimate", "active_user_count": 2}),
    );
    assert_eq!(app.upload(&ultimate).await.status, StatusCode::CREATED);
    let mut ids = Vec::new();
    for name in ["ann", "ben", "cat"] {
        ids.push(
            create(&app, name, "human").await.json()["id"]
                .as_i64()
                .expect("id"),
        );
    }
    let group = app.add_group("team").await;
    let set = put_json(
        &app,
        "/api/v4/-/seat_control",
        json!({"seat_control": "block_overages"}),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    let members = format!("/api/v4/groups/{}/members", group.id);
    let add = |user_id: i64, level: i64| {
        let app = &app;
        let members = members.clone();
        async move {
            put_or_post(
                app,
                Method::POST,
                &members,
                json!({"user_id": user_id, "access_level": level}),
            )
            .await
        }
    };
    assert_eq!(add(ids[0], 30).await.status, StatusCode::CREATED);
    assert_eq!(add(ids[1], 30).await.status, StatusCode::CREATED);
    let before = app
        .query_texts("SELECT CAST(COUNT(*) AS TEXT) FROM members")
        .await;
    let refused = add(ids[2], 30).await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert_eq!(
        refused.json(),
        json!({"message": "There are not enough available seats to invite this many users."})
    );
    assert_eq!(
        app.query_texts("SELECT CAST(COUNT(*) AS TEXT) FROM members")
            .await,
        before
    );
    assert_eq!(
        app.query_texts("SELECT CAST(COUNT(*) AS TEXT) FROM audit_events WHERE event_name = 'member_change_refused'").await,
        ["1"]
    );
    // A Guest takes no seat on Ultimate; promoting them would.
    assert_eq!(add(ids[2], 10).await.status, StatusCode::CREATED);
    let promote = put_or_post(
        &app,
        Method::PUT,
        &format!("{members}/{}", ids[2]),
        json!({"access_level": 30}),
    )
    .await;
    assert_eq!(promote.status, StatusCode::BAD_REQUEST, "{}", promote.body);
    // Someone already billable may be promoted.
    let already = put_or_post(
        &app,
        Method::PUT,
        &format!("{members}/{}", ids[0]),
        json!({"access_level": 40}),
    )
    .await;
    assert_eq!(already.status, StatusCode::OK, "{}", already.body);
}

async fn put_or_post(
    app: &TestApp,
    method: Method,
    path: &str,
    body: Value,
) -> crate::support::app::Reply {
    app.send_with(
        app.client.request(method, app.url(path)).json(&body),
        Some(ROOT_TOKEN),
    )
    .await
}

/// Users of every kind the dormant-user job weighs, with their activity and creation dates,
/// and `grouped` a member of the group `keep` (shared with the seat-controls page's tests).
pub async fn dormant_people(app: &TestApp) {
    let people = [
        ("old", "human", "active", Some("2026-03-01"), "2026-01-01"),
        (
            "recent",
            "human",
            "active",
            Some("2026-06-01"),
            "2026-01-01",
        ),
        ("never_old", "human", "active", None, "2026-06-01"),
        ("never_new", "human", "active", None, "2026-06-12"),
        (
            "svc",
            "service_user",
            "active",
            Some("2026-01-01"),
            "2026-01-01",
        ),
        (
            "project_5_bot",
            "project_bot",
            "active",
            Some("2026-01-01"),
            "2026-01-01",
        ),
        (
            "spared",
            "human",
            "active",
            Some("2026-01-01"),
            "2026-01-01",
        ),
        (
            "grouped",
            "human",
            "active",
            Some("2026-01-01"),
            "2026-01-01",
        ),
        (
            "was_blocked",
            "human",
            "blocked",
            Some("2026-01-01"),
            "2026-01-01",
        ),
    ];
    for (username, user_type, _, _, _) in people {
        assert_eq!(
            create(app, username, user_type).await.status,
            StatusCode::CREATED
        );
    }
    for (username, _, state, activity, created) in people {
        let activity = activity.map_or("NULL".to_string(), |day| format!("'{day}'"));
        app.execute_sql(&format!(
            "UPDATE users SET state = '{state}', last_activity_on = {activity},
                              created_at = '{created}T00:00:00+00:00'
             WHERE username = '{username}'"
        ))
        .await;
    }
    let group = app.add_group("keep").await;
    let grouped = app.get("/api/v4/users?username=grouped").await.json()[0]["id"].clone();
    let member = app
        .send_with(
            app.client
                .post(app.url(&format!("/api/v4/groups/{}/members", group.id)))
                .json(&json!({"user_id": grouped, "access_level": 30})),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(member.status, StatusCode::CREATED, "{}", member.body);
}
