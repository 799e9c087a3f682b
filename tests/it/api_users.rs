//! `/api/v4/users`, moderation, audit events and billable counting — on both backends.

use chrono::TimeDelta;
use gitlab_license_server::store::NewUser;
use gitlab_license_server::store::Write;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::on_both_backends;
use crate::support::app::{test_now, TestApp, ROOT_TOKEN};
use crate::support::licenses::{license, premium};

on_both_backends!(
    create_and_read_users,
    create_errors_change_nothing,
    list_filters_and_pagination,
    update_and_delete_users,
    moderation_actions,
    blocked_users_lose_api_access_at_once,
    audit_trail_of_admin_actions,
    billable_counting_across_types_and_states,
);

async fn post_json(app: &TestApp, path: &str, body: Value) -> crate::support::app::Reply {
    app.send_with(app.client.post(app.url(path)).json(&body), Some(ROOT_TOKEN))
        .await
}

async fn put_json(app: &TestApp, path: &str, body: Value) -> crate::support::app::Reply {
    app.send_with(app.client.put(app.url(path)).json(&body), Some(ROOT_TOKEN))
        .await
}

async fn user_count(app: &TestApp) -> i64 {
    app.get("/api/v4/users")
        .await
        .header("x-total")
        .and_then(|t| t.parse().ok())
        .expect("x-total")
}

async fn create_and_read_users(app: TestApp) {
    let created = post_json(&app, "/api/v4/users", json!({"username": "ada", "name": "Ada Lovelace", "email": "ada@example.org", "unknown_field": 1})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let user = created.json();
    let keys: Vec<&str> = user
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .take(8)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "username",
            "name",
            "state",
            "locked",
            "avatar_url",
            "web_url",
            "created_at"
        ]
    );
    assert_eq!(
        (
            user["username"].clone(),
            user["state"].clone(),
            user["is_admin"].clone(),
            user["bot"].clone()
        ),
        (json!("ada"), json!("active"), json!(false), json!(false))
    );
    assert_eq!(user["created_at"], "2026-06-15T10:30:00.000Z");
    let id = user["id"].as_i64().expect("id");
    let shown = app.get(&format!("/api/v4/users/{id}")).await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.json()["email"], "ada@example.org");
    assert!(
        shown.json().get("sign_in_count").is_some(),
        "one user is UserDetailsWithAdmin"
    );
    let bot = post_json(&app, "/api/v4/users", json!({"username": "bot1", "name": "Bot", "email": "bot1@example.org", "user_type": "project_bot", "admin": "false"})).await;
    assert_eq!(
        (bot.status, bot.json()["bot"].clone()),
        (StatusCode::CREATED, json!(true))
    );
    let missing = app.get("/api/v4/users/4242").await;
    assert_eq!(
        (missing.status, missing.json()),
        (
            StatusCode::NOT_FOUND,
            json!({"message": "404 User Not Found"})
        )
    );
    let not_numeric = app.get("/api/v4/users/ada").await;
    assert_eq!(
        (not_numeric.status, not_numeric.json()),
        (StatusCode::NOT_FOUND, json!({"error": "404 Not Found"}))
    );
}

async fn create_errors_change_nothing(app: TestApp) {
    post_json(
        &app,
        "/api/v4/users",
        json!({"username": "ada", "name": "Ada", "email": "ada@example.org"}),
    )
    .await;
    let before = user_count(&app).await;
    let cases = [
        (
            json!({}),
            StatusCode::BAD_REQUEST,
            json!({"error": "email is missing, name is missing, username is missing"}),
        ),
        (
            json!({"name": "X", "email": "x@example.org"}),
            StatusCode::BAD_REQUEST,
            json!({"error": "username is missing"}),
        ),
        (
            json!({"username": "ADA", "name": "X", "email": "ADA@example.org"}),
            StatusCode::CONFLICT,
            json!({"message": "Email has already been taken"}),
        ),
        (
            json!({"username": "Ada", "name": "X", "email": "new@example.org"}),
            StatusCode::CONFLICT,
            json!({"message": "Username has already been taken"}),
        ),
        (
            json!({"username": "x", "name": "X", "email": "nope"}),
            StatusCode::BAD_REQUEST,
            json!({"message": {"email": ["is invalid"]}}),
        ),
        (
            json!({"username": "x", "name": "X", "email": "x@example.org", "admin": "maybe"}),
            StatusCode::BAD_REQUEST,
            json!({"error": "admin is invalid"}),
        ),
        (
            json!({"username": "x", "name": "X", "email": "x@example.org", "user_type": "robot"}),
            StatusCode::BAD_REQUEST,
            json!({"message": {"user_type": ["is not included in the list"]}}),
        ),
        (
            json!({"username": ["x"], "name": "X", "email": "x@example.org"}),
            StatusCode::BAD_REQUEST,
            json!({"error": "username is invalid"}),
        ),
    ];
    for (body, status, expected) in cases {
        let reply = post_json(&app, "/api/v4/users", body.clone()).await;
        assert_eq!((reply.status, reply.json()), (status, expected), "{body}");
    }
    assert_eq!(user_count(&app).await, before, "nothing half-written");
    let dev = app.add_user(NewUser::human("dev", false)).await;
    let (token, _) = app.token_for(&dev, &["api"], None).await;
    let reply = app
        .send_with(
            app.client
                .post(app.url("/api/v4/users"))
                .json(&json!({"username": "y", "name": "Y", "email": "y@example.org"})),
            Some(&token),
        )
        .await;
    assert_eq!(
        (reply.status, reply.json()),
        (StatusCode::FORBIDDEN, json!({"message": "403 Forbidden"}))
    );
}

async fn list_filters_and_pagination(app: TestApp) {
    for index in 0..24 {
        app.add_user(NewUser::human(&format!("user{index:02}"), false))
            .await;
    }
    let mut blocked = NewUser::human("blocky", false);
    blocked.state = gitlab_license_server::domain::users::UserState::Blocked;
    app.add_user(blocked).await;
    let mut ghost = NewUser::human("ghost", false);
    ghost.user_type = gitlab_license_server::domain::users::UserType::Ghost;
    app.add_user(ghost).await;
    let first = app.get("/api/v4/users").await;
    assert_eq!(first.status, StatusCode::OK);
    let listed = first.json();
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(20),
        "20 per page by default"
    );
    assert_eq!(listed[0]["username"], "ghost", "newest first");
    assert_eq!(first.header("x-total"), Some("27"));
    assert_eq!(first.header("x-total-pages"), Some("2"));
    assert_eq!(first.header("x-page"), Some("1"));
    assert_eq!(first.header("x-per-page"), Some("20"));
    assert_eq!(first.header("x-next-page"), Some("2"));
    assert_eq!(first.header("x-prev-page"), Some(""));
    let link = first.header("link").expect("link");
    assert!(link.contains("page=2&per_page=20>; rel=\"next\""), "{link}");
    assert!(
        link.contains("rel=\"first\"")
            && link.contains("rel=\"last\"")
            && !link.contains("rel=\"prev\"")
    );
    let second = app.get("/api/v4/users?page=2&per_page=20").await;
    assert_eq!(second.json().as_array().map(Vec::len), Some(7));
    assert_eq!(second.header("x-next-page"), Some(""));
    assert_eq!(second.header("x-prev-page"), Some("1"));
    let capped = app.get("/api/v4/users?per_page=500").await;
    assert_eq!(capped.header("x-per-page"), Some("100"));
    let names = |reply: crate::support::app::Reply| -> Vec<String> {
        reply
            .json()
            .as_array()
            .expect("array")
            .iter()
            .map(|u| u["username"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        names(app.get("/api/v4/users?username=USER03").await),
        ["user03"]
    );
    assert_eq!(
        names(
            app.get("/api/v4/users?search=ser1&order_by=username&sort=asc&per_page=3")
                .await
        ),
        ["user10", "user11", "user12"]
    );
    assert_eq!(
        names(app.get("/api/v4/users?blocked=true").await),
        ["blocky"]
    );
    assert!(
        !names(app.get("/api/v4/users?active=true&per_page=100").await)
            .contains(&"ghost".to_string())
    );
    assert!(!names(
        app.get("/api/v4/users?exclude_internal=true&per_page=100")
            .await
    )
    .contains(&"ghost".to_string()));
    assert_eq!(
        app.get("/api/v4/users?humans=true").await.header("x-total"),
        Some("26")
    );
    // `_` and `%` in a search are literal characters, not wildcards.
    app.add_user(NewUser::human("snake_case", false)).await;
    assert_eq!(
        names(app.get("/api/v4/users?search=e_c").await),
        ["snake_case"]
    );
    assert!(names(app.get("/api/v4/users?search=%25").await).is_empty());
    for (query, error) in [
        ("page=x", "page is invalid"),
        ("per_page=0", "per_page has a value not allowed"),
        ("order_by=email", "order_by does not have a valid value"),
        ("active=perhaps", "active is invalid"),
    ] {
        let reply = app.get(&format!("/api/v4/users?{query}")).await;
        assert_eq!(
            (reply.status, reply.json()),
            (StatusCode::BAD_REQUEST, json!({"error": error})),
            "{query}"
        );
    }
}

async fn update_and_delete_users(app: TestApp) {
    let ada = app.add_user(NewUser::human("ada", false)).await;
    let bob = app.add_user(NewUser::human("bob", false)).await;
    let reply = put_json(
        &app,
        &format!("/api/v4/users/{}", ada.id),
        json!({"name": "Ada L.", "admin": true}),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        (
            reply.json()["name"].clone(),
            reply.json()["is_admin"].clone()
        ),
        (json!("Ada L."), json!(true))
    );
    let conflict = put_json(
        &app,
        &format!("/api/v4/users/{}", ada.id),
        json!({"email": "BOB@example.com"}),
    )
    .await;
    assert_eq!(
        (conflict.status, conflict.json()),
        (
            StatusCode::CONFLICT,
            json!({"message": "Email has already been taken"})
        )
    );
    let own = put_json(
        &app,
        &format!("/api/v4/users/{}", ada.id),
        json!({"email": "ada@example.com"}),
    )
    .await;
    assert_eq!(
        own.status,
        StatusCode::OK,
        "keeping one's own email is no conflict"
    );
    assert_eq!(
        put_json(&app, "/api/v4/users/999", json!({"name": "x"}))
            .await
            .json(),
        json!({"message": "404 User Not Found"})
    );
    let (token, _) = app.token_for(&bob, &["api"], None).await;
    app.state
        .store
        .add_membership(bob.id, "Namespace", 1, 30, Write::unaudited(test_now()))
        .await
        .expect("member");
    let deleted = app.delete(&format!("/api/v4/users/{}", bob.id)).await;
    assert_eq!(
        (deleted.status, deleted.body.as_str()),
        (StatusCode::NO_CONTENT, "")
    );
    assert_eq!(
        app.send(Method::GET, "/api/v4/user", Some(&token))
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "their tokens go with them"
    );
    assert_eq!(
        app.delete(&format!("/api/v4/users/{}", bob.id))
            .await
            .json(),
        json!({"message": "404 User Not Found"})
    );
}

async fn moderation_actions(app: TestApp) {
    let ada = app.add_user(NewUser::human("ada", false)).await;
    let old = app
        .state
        .store
        .create_user(
            &NewUser::human("old", false),
            Write::unaudited(test_now() - TimeDelta::days(120)),
        )
        .await
        .expect("old user");
    let mut pending = NewUser::human("pending", false);
    pending.state = gitlab_license_server::domain::users::UserState::BlockedPendingApproval;
    let pending = app.add_user(pending).await;
    let act = |id: i64, action: &'static str| {
        let app = &app;
        async move {
            app.send(
                Method::POST,
                &format!("/api/v4/users/{id}/{action}"),
                Some(ROOT_TOKEN),
            )
            .await
        }
    };
    let expect = |reply: crate::support::app::Reply, status: StatusCode, body: Value| {
        assert_eq!((reply.status, reply.json()), (status, body));
    };
    expect(act(ada.id, "block").await, StatusCode::CREATED, json!(true));
    expect(act(ada.id, "block").await, StatusCode::CREATED, Value::Null);
    expect(
        act(ada.id, "deactivate").await,
        StatusCode::FORBIDDEN,
        json!({"message": "Error occurred. A blocked user cannot be deactivated"}),
    );
    expect(
        act(ada.id, "activate").await,
        StatusCode::FORBIDDEN,
        json!({"message": "Error occurred. A blocked user must be unblocked to be activated"}),
    );
    expect(
        act(ada.id, "ban").await,
        StatusCode::FORBIDDEN,
        json!({"message": "You cannot ban blocked users."}),
    );
    expect(
        act(ada.id, "unblock").await,
        StatusCode::CREATED,
        json!(true),
    );
    expect(
        act(ada.id, "unblock").await,
        StatusCode::CREATED,
        json!(false),
    );
    // An API request is recorded activity (today): Ada cannot be deactivated now.
    let (ada_token, _) = app.token_for(&ada, &["read_user"], None).await;
    assert_eq!(
        app.send(Method::GET, "/api/v4/user", Some(&ada_token))
            .await
            .status,
        StatusCode::OK
    );
    expect(
        act(ada.id, "deactivate").await,
        StatusCode::FORBIDDEN,
        json!({"message": "The user you are trying to deactivate has been active in the past 90 days and cannot be deactivated"}),
    );
    // The period is the instance's `deactivate_dormant_users_period`, as GitLab reads it.
    let longer = app
        .send_with(
            app.client
                .put(app.url("/api/v4/application/settings"))
                .json(&json!({"deactivate_dormant_users_period": 180})),
            Some(crate::support::app::ROOT_TOKEN),
        )
        .await;
    assert_eq!(longer.status, StatusCode::OK, "{}", longer.body);
    expect(
        act(ada.id, "deactivate").await,
        StatusCode::FORBIDDEN,
        json!({"message": "The user you are trying to deactivate has been active in the past 180 days and cannot be deactivated"}),
    );
    let back = app
        .send_with(
            app.client
                .put(app.url("/api/v4/application/settings"))
                .json(&json!({"deactivate_dormant_users_period": 90})),
            Some(crate::support::app::ROOT_TOKEN),
        )
        .await;
    assert_eq!(back.status, StatusCode::OK);
    expect(
        act(old.id, "deactivate").await,
        StatusCode::CREATED,
        json!(true),
    );
    expect(
        act(old.id, "deactivate").await,
        StatusCode::CREATED,
        Value::Null,
    );
    expect(
        act(old.id, "unblock").await,
        StatusCode::FORBIDDEN,
        json!({"message": "403 Forbidden - Deactivated users cannot be unblocked by the API"}),
    );
    expect(
        act(old.id, "activate").await,
        StatusCode::CREATED,
        json!(true),
    );
    expect(act(ada.id, "ban").await, StatusCode::CREATED, json!(true));
    expect(
        act(ada.id, "ban").await,
        StatusCode::FORBIDDEN,
        json!({"message": "You cannot ban banned users."}),
    );
    expect(act(ada.id, "unban").await, StatusCode::CREATED, json!(true));
    expect(
        act(ada.id, "unban").await,
        StatusCode::FORBIDDEN,
        json!({"message": "You cannot unban active users."}),
    );
    expect(
        act(ada.id, "approve").await,
        StatusCode::CONFLICT,
        json!({"message": "The user you are trying to approve is not pending approval"}),
    );
    expect(
        act(pending.id, "approve").await,
        StatusCode::CREATED,
        json!({"message": "Success"}),
    );
    expect(
        act(1, "block").await,
        StatusCode::FORBIDDEN,
        json!({"message": "403 Forbidden - The API initiating user cannot be blocked by the API"}),
    );
    expect(
        act(4242, "block").await,
        StatusCode::NOT_FOUND,
        json!({"message": "404 User Not Found"}),
    );
    expect(
        act(ada.id, "teleport").await,
        StatusCode::NOT_FOUND,
        json!({"error": "404 Not Found"}),
    );
    for (id, state) in [
        (ada.id, "active"),
        (old.id, "active"),
        (pending.id, "active"),
    ] {
        assert_eq!(
            app.get(&format!("/api/v4/users/{id}")).await.json()["state"],
            state
        );
    }
}

async fn blocked_users_lose_api_access_at_once(app: TestApp) {
    let admin = app.add_user(NewUser::human("second_admin", true)).await;
    let (token, _) = app.token_for(&admin, &["api"], None).await;
    assert_eq!(
        app.send(Method::GET, "/api/v4/license", Some(&token))
            .await
            .status,
        StatusCode::OK,
        "warms the cache"
    );
    app.send(
        Method::POST,
        &format!("/api/v4/users/{}/block", admin.id),
        Some(ROOT_TOKEN),
    )
    .await;
    let reply = app.send(Method::GET, "/api/v4/license", Some(&token)).await;
    assert_eq!(
        (reply.status, reply.json()),
        (
            StatusCode::FORBIDDEN,
            json!({"message": "403 Forbidden - Your account has been blocked."})
        )
    );
    app.send(
        Method::POST,
        &format!("/api/v4/users/{}/unblock", admin.id),
        Some(ROOT_TOKEN),
    )
    .await;
    assert_eq!(
        app.send(Method::GET, "/api/v4/license", Some(&token))
            .await
            .status,
        StatusCode::OK
    );
}

async fn audit_trail_of_admin_actions(app: TestApp) {
    let created = post_json(
        &app,
        "/api/v4/users",
        json!({"username": "ada", "name": "Ada", "email": "ada@example.org"}),
    )
    .await
    .json();
    let id = created["id"].as_i64().expect("id");
    app.send(
        Method::POST,
        &format!("/api/v4/users/{id}/block"),
        Some(ROOT_TOKEN),
    )
    .await;
    let uploaded = app.upload(&premium(10)).await.json();
    app.delete(&format!("/api/v4/license/{}", uploaded["id"]))
        .await;
    let events = app.get("/api/v4/audit_events").await;
    assert_eq!(events.status, StatusCode::OK);
    let names: Vec<Value> = events
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["event_name"].clone())
        .collect();
    assert_eq!(
        names,
        [
            json!("license_removed"),
            json!("license_added"),
            json!("user_blocked"),
            json!("user_created")
        ]
    );
    let blocked = &events.json()[2];
    assert_eq!(
        (
            blocked["author_id"].clone(),
            blocked["entity_type"].clone(),
            blocked["entity_id"].clone()
        ),
        (json!(1), json!("User"), json!(id))
    );
    assert_eq!(blocked["details"]["target_details"], "ada");
    assert_eq!(blocked["created_at"], "2026-06-15T10:30:00.000Z");
    let for_user = app
        .get(&format!(
            "/api/v4/audit_events?entity_type=User&entity_id={id}"
        ))
        .await
        .json();
    assert_eq!(for_user.as_array().map(Vec::len), Some(2));
    let one = app
        .get(&format!("/api/v4/audit_events/{}", blocked["id"]))
        .await;
    assert_eq!(one.json(), *blocked);
    assert_eq!(
        app.get("/api/v4/audit_events/999").await.json(),
        json!({"message": "404 Not found"})
    );
    assert_eq!(
        app.get("/api/v4/audit_events?entity_id=3").await.json(),
        json!({"error": "entity_type is missing"})
    );
    assert_eq!(
        app.get("/api/v4/audit_events?entity_type=Nope")
            .await
            .json(),
        json!({"error": "entity_type does not have a valid value"})
    );
    assert_eq!(
        app.get("/api/v4/audit_events?created_after=2030-01-01")
            .await
            .json(),
        json!([])
    );
    // A refused action leaves no trace.
    app.send(
        Method::POST,
        &format!("/api/v4/users/{id}/ban"),
        Some(ROOT_TOKEN),
    )
    .await;
    assert_eq!(
        app.get("/api/v4/audit_events").await.header("x-total"),
        Some("4")
    );
}

async fn billable_counting_across_types_and_states(app: TestApp) {
    use gitlab_license_server::domain::users::UserType;
    let mut expected_premium = 1; // root
    for user_type in UserType::ALL.map(UserType::as_str) {
        for state in [
            "active",
            "blocked",
            "deactivated",
            "banned",
            "blocked_pending_approval",
            "ldap_blocked",
        ] {
            let mut user = NewUser::human(&format!("{user_type}_{state}"), false);
            user.user_type = UserType::from_name(user_type).expect("type");
            user.state =
                gitlab_license_server::domain::users::UserState::from_name(state).expect("state");
            app.add_user(user).await;
            if state == "active" && matches!(user_type, "human" | "service_user") {
                expected_premium += 1;
            }
        }
    }
    assert_eq!(expected_premium, 3);
    let entity = app.upload(&premium(100)).await.json();
    assert_eq!(
        entity["active_users"], expected_premium,
        "only active humans and service users"
    );
    // Ultimate: members above Guest only (active humans/service users among them).
    let human = app
        .state
        .store
        .find_user_by_username("human_active")
        .await
        .expect("q")
        .expect("user");
    let service = app
        .state
        .store
        .find_user_by_username("service_user_active")
        .await
        .expect("q")
        .expect("user");
    let blocked = app
        .state
        .store
        .find_user_by_username("human_blocked")
        .await
        .expect("q")
        .expect("user");
    let bot = app
        .state
        .store
        .find_user_by_username("project_bot_active")
        .await
        .expect("q")
        .expect("user");
    for (user, level) in [(&human, 30), (&service, 10), (&blocked, 40), (&bot, 40)] {
        app.state
            .store
            .add_membership(user.id, "Namespace", 9, level, Write::unaudited(test_now()))
            .await
            .expect("member");
    }
    app.set_now(test_now() + TimeDelta::minutes(1));
    let ultimate = app
        .upload(&license(
            "2026-01-01",
            "2027-01-01",
            json!({"plan": "ultimate"}),
        ))
        .await
        .json();
    assert_eq!(
        ultimate["active_users"], 1,
        "only the active human developer"
    );
}
