//! Groups, members and personal access tokens through the API — on both backends.

use chrono::TimeDelta;
use gitlab_license_server::store::NewUser;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::on_both_backends;
use crate::support::app::{test_now, TestApp, ROOT_TOKEN};
use crate::support::licenses::license;

on_both_backends!(
    groups_and_members,
    members_decide_ultimate_seats,
    personal_access_tokens
);

async fn send_json(
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

async fn groups_and_members(app: TestApp) {
    let created = send_json(
        &app,
        Method::POST,
        "/api/v4/groups",
        json!({"name": "Platform", "path": "platform"}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let group = created.json();
    assert_eq!(
        (
            group["path"].clone(),
            group["visibility"].clone(),
            group["full_path"].clone()
        ),
        (json!("platform"), json!("private"), json!("platform"))
    );
    let id = group["id"].as_i64().expect("id");
    assert_eq!(
        app.get("/api/v4/groups/platform").await.json()["id"],
        id,
        "by path too"
    );
    let errors = [
        (
            json!({"name": "X"}),
            StatusCode::BAD_REQUEST,
            json!({"error": "path is missing"}),
        ),
        (
            json!({"name": "Other", "path": "PLATFORM"}),
            StatusCode::BAD_REQUEST,
            json!({"message": "Failed to save group {:path=>[\"has already been taken\"]}"}),
        ),
        (
            json!({"name": "X", "path": "x", "visibility": "secret"}),
            StatusCode::BAD_REQUEST,
            json!({"error": "visibility does not have a valid value"}),
        ),
    ];
    for (body, status, expected) in errors {
        let reply = send_json(&app, Method::POST, "/api/v4/groups", body.clone()).await;
        assert_eq!((reply.status, reply.json()), (status, expected), "{body}");
    }
    assert_eq!(app.get("/api/v4/groups").await.header("x-total"), Some("1"));
    assert_eq!(
        app.get("/api/v4/groups/999").await.json(),
        json!({"message": "404 Group Not Found"})
    );

    let ada = app.add_user(NewUser::human("ada", false)).await;
    let path = format!("/api/v4/groups/{id}/members");
    let added = send_json(
        &app,
        Method::POST,
        &path,
        json!({"user_id": ada.id, "access_level": 30}),
    )
    .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    assert_eq!(
        (
            added.json()["username"].clone(),
            added.json()["access_level"].clone()
        ),
        (json!("ada"), json!(30))
    );
    let member_errors = [
        (
            json!({"user_id": ada.id, "access_level": 30}),
            StatusCode::CONFLICT,
            json!({"message": "Member already exists"}),
        ),
        (
            json!({"user_id": 999, "access_level": 30}),
            StatusCode::NOT_FOUND,
            json!({"message": "404 User Not Found"}),
        ),
        (
            json!({"user_id": ada.id, "access_level": 35}),
            StatusCode::BAD_REQUEST,
            json!({"message": {"access_level": ["is not included in the list"]}}),
        ),
        (
            json!({"user_id": ada.id}),
            StatusCode::BAD_REQUEST,
            json!({"error": "access_level is missing"}),
        ),
        (
            json!({"user_id": "ada", "access_level": 30}),
            StatusCode::BAD_REQUEST,
            json!({"error": "user_id is invalid"}),
        ),
    ];
    for (body, status, expected) in member_errors {
        let reply = send_json(&app, Method::POST, &path, body.clone()).await;
        assert_eq!((reply.status, reply.json()), (status, expected), "{body}");
    }
    let updated = send_json(
        &app,
        Method::PUT,
        &format!("{path}/{}", ada.id),
        json!({"access_level": 50}),
    )
    .await;
    assert_eq!(updated.json()["access_level"], 50);
    assert_eq!(
        app.get(&path).await.json().as_array().map(Vec::len),
        Some(1)
    );
    // The sole owner of a group cannot be deleted without hard_delete.
    let refused = app.delete(&format!("/api/v4/users/{}", ada.id)).await;
    assert_eq!(
        (refused.status, refused.json()),
        (
            StatusCode::CONFLICT,
            json!({"message": "User cannot be removed while is the sole-owner of a group"})
        )
    );
    assert_eq!(
        app.delete(&format!("{path}/{}", ada.id)).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&format!("{path}/{}", ada.id)).await.json(),
        json!({"message": "404 Not found"})
    );
    assert_eq!(
        send_json(
            &app,
            Method::PUT,
            &format!("{path}/{}", ada.id),
            json!({"access_level": 20})
        )
        .await
        .json(),
        json!({"message": "404 Not found"})
    );
    // hard_delete removes a sole owner anyway.
    let bob = app.add_user(NewUser::human("bob", false)).await;
    send_json(
        &app,
        Method::POST,
        &path,
        json!({"user_id": bob.id, "access_level": 50}),
    )
    .await;
    assert_eq!(
        app.delete(&format!("/api/v4/users/{}", bob.id))
            .await
            .status,
        StatusCode::CONFLICT
    );
    let hard = app
        .delete(&format!("/api/v4/users/{}?hard_delete=true", bob.id))
        .await;
    assert_eq!(hard.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.get(&path).await.json(),
        json!([]),
        "their membership went with them"
    );
    let deleted = app.delete(&format!("/api/v4/groups/{id}")).await;
    assert_eq!(
        (deleted.status, deleted.json()),
        (StatusCode::ACCEPTED, json!({"message": "202 Accepted"}))
    );
    assert_eq!(
        app.get(&format!("/api/v4/groups/{id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

async fn members_decide_ultimate_seats(app: TestApp) {
    let group = send_json(
        &app,
        Method::POST,
        "/api/v4/groups",
        json!({"name": "G", "path": "g"}),
    )
    .await
    .json();
    let path = format!("/api/v4/groups/{}/members", group["id"]);
    let guest = app.add_user(NewUser::human("guest", false)).await;
    let developer = app.add_user(NewUser::human("developer", false)).await;
    send_json(
        &app,
        Method::POST,
        &path,
        json!({"user_id": guest.id, "access_level": 10}),
    )
    .await;
    send_json(
        &app,
        Method::POST,
        &path,
        json!({"user_id": developer.id, "access_level": 30}),
    )
    .await;
    let entity = app
        .upload(&license(
            "2026-01-01",
            "2027-01-01",
            json!({"plan": "ultimate", "active_user_count": 10}),
        ))
        .await
        .json();
    assert_eq!(entity["active_users"], 1, "guests take no Ultimate seat");
    // Promoting the guest makes them billable at the next recount.
    send_json(
        &app,
        Method::PUT,
        &format!("{path}/{}", guest.id),
        json!({"access_level": 20}),
    )
    .await;
    app.set_now(test_now() + TimeDelta::minutes(1));
    app.put(&format!(
        "/api/v4/license/{}/refresh_billable_users",
        entity["id"]
    ))
    .await;
    app.run_jobs().await;
    assert_eq!(app.get("/api/v4/license").await.json()["active_users"], 2);
}

async fn personal_access_tokens(app: TestApp) {
    let ada = app.add_user(NewUser::human("ada", false)).await;
    let path = format!("/api/v4/users/{}/personal_access_tokens", ada.id);
    let created = send_json(
        &app,
        Method::POST,
        &path,
        json!({"name": "ci", "scopes": ["read_api"]}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let token = created.json();
    let keys: Vec<&str> = token
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "revoked",
            "created_at",
            "description",
            "scopes",
            "user_id",
            "last_used_at",
            "active",
            "expires_at",
            "token"
        ]
    );
    assert_eq!(token["expires_at"], "2027-06-15", "a year by default");
    assert_eq!(token["scopes"], json!(["read_api"]));
    let value = token["token"].as_str().expect("value").to_string();
    // The token works, with its scope.
    assert_eq!(
        app.send(Method::GET, "/api/v4/user", Some(&value))
            .await
            .json()["username"],
        "ada"
    );
    let own = app
        .send(
            Method::GET,
            "/api/v4/personal_access_tokens/self",
            Some(&value),
        )
        .await
        .json();
    assert_eq!(
        (own["id"].clone(), own.get("token").is_none()),
        (token["id"].clone(), true)
    );
    // Using the token records when (GitLab writes it at most every ten minutes).
    assert_eq!(token["last_used_at"], Value::Null, "unused when created");
    assert_eq!(own["last_used_at"], "2026-06-15T10:30:00.000Z");
    let errors = [
        (
            json!({"name": "x", "scopes": ["root"]}),
            StatusCode::BAD_REQUEST,
            json!({"error": "scopes does not have a valid value"}),
        ),
        (
            json!({"scopes": ["api"]}),
            StatusCode::BAD_REQUEST,
            json!({"error": "name is missing"}),
        ),
        (
            json!({"name": "x", "scopes": "api", "expires_at": "someday"}),
            StatusCode::BAD_REQUEST,
            json!({"error": "expires_at is invalid"}),
        ),
        (
            json!({"name": "x", "scopes": "api", "expires_at": "2020-01-01"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "the expiry date must be in the future"}),
        ),
    ];
    for (body, status, expected) in errors {
        let reply = send_json(&app, Method::POST, &path, body.clone()).await;
        assert_eq!((reply.status, reply.json()), (status, expected), "{body}");
    }
    assert_eq!(
        send_json(
            &app,
            Method::POST,
            "/api/v4/users/999/personal_access_tokens",
            json!({"name": "x", "scopes": "api"})
        )
        .await
        .json(),
        json!({"message": "404 User Not Found"})
    );
    // Listing: administrators see all, users their own.
    let all = app.get("/api/v4/personal_access_tokens").await;
    assert_eq!(all.header("x-total"), Some("2"), "root's and ada's");
    assert_eq!(
        app.get(&format!(
            "/api/v4/personal_access_tokens?user_id={}",
            ada.id
        ))
        .await
        .json()
        .as_array()
        .map(Vec::len),
        Some(1)
    );
    let mine = app
        .send(Method::GET, "/api/v4/personal_access_tokens", Some(&value))
        .await
        .json();
    assert_eq!(mine.as_array().map(Vec::len), Some(1));
    assert_eq!(
        app.send(
            Method::GET,
            "/api/v4/personal_access_tokens?user_id=1",
            Some(&value)
        )
        .await
        .status,
        StatusCode::UNAUTHORIZED
    );
    // Revocation: by id (204, then 400), and the token stops working at once.
    let revoke_path = format!("/api/v4/personal_access_tokens/{}", token["id"]);
    assert_eq!(
        app.delete(&revoke_path).await.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.delete(&revoke_path).await.json(),
        json!({"message": "400 Bad request"})
    );
    assert_eq!(
        app.send(Method::GET, "/api/v4/user", Some(&value))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.delete("/api/v4/personal_access_tokens/999")
            .await
            .json(),
        json!({"message": "404 Not found"})
    );
    assert_eq!(
        app.get("/api/v4/personal_access_tokens?state=active")
            .await
            .header("x-total"),
        Some("1")
    );
    assert_eq!(
        app.get("/api/v4/personal_access_tokens?revoked=true")
            .await
            .header("x-total"),
        Some("1")
    );
    // Self-revocation.
    let second = send_json(
        &app,
        Method::POST,
        &path,
        json!({"name": "other", "scopes": "api"}),
    )
    .await
    .json();
    let second_value = second["token"].as_str().expect("value").to_string();
    assert_eq!(
        app.send(
            Method::DELETE,
            "/api/v4/personal_access_tokens/self",
            Some(&second_value)
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.send(Method::GET, "/api/v4/user", Some(&second_value))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    // Creation and revocation are audited.
    let events: Vec<Value> = app
        .get("/api/v4/audit_events")
        .await
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["event_name"].clone())
        .collect();
    assert!(
        events.contains(&json!("personal_access_token_created"))
            && events.contains(&json!("personal_access_token_revoked")),
        "{events:?}"
    );
}
