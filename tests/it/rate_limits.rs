//! GitLab's rate limits: the user and IP throttles (off by default; 429 `Retry later` with the
//! `RateLimit-*` headers), `GET /users/:id`'s own limit, and counts shared by replicas — on both
//! backends.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::on_both_backends;
use crate::support::app::{postgres_available, Backend, TestApp, ROOT_TOKEN};
use crate::support::process::{free_port, start_server};
use gitlab_license_server::store::NewUser;

on_both_backends!(
    throttles_are_off_by_default,
    the_authenticated_throttle_counts_per_user,
    the_unauthenticated_throttle_counts_per_address,
    users_get_by_id_has_its_own_limit,
);

async fn put_settings(app: &TestApp, body: Value) {
    let reply = app
        .send_with(
            app.client
                .put(app.url("/api/v4/application/settings"))
                .json(&body),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

async fn throttles_are_off_by_default(app: TestApp) {
    let settings = app.get("/api/v4/application/settings").await.json();
    assert_eq!(settings["throttle_authenticated_api_enabled"], false);
    assert_eq!(settings["throttle_unauthenticated_api_enabled"], false);
    // Far beyond what any limit could be set to in this test, and nothing counted.
    put_settings(
        &app,
        json!({"throttle_authenticated_api_requests_per_period": 1,
               "throttle_unauthenticated_api_requests_per_period": 1}),
    )
    .await;
    for _ in 0..5 {
        assert_eq!(app.get("/api/v4/license").await.status, StatusCode::OK);
        assert_eq!(
            app.send(Method::GET, "/api/v4/license", None).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.state.rate_limiter.keys(),
        0,
        "nothing is counted while off"
    );
}

async fn the_authenticated_throttle_counts_per_user(app: TestApp) {
    let ada = app.add_user(NewUser::human("ada", false)).await;
    let bob = app.add_user(NewUser::human("bob", false)).await;
    let (ada_token, _) = app.token_for(&ada, &["api"], None).await;
    let (bob_token, _) = app.token_for(&bob, &["api"], None).await;
    put_settings(
        &app,
        json!({"throttle_authenticated_api_enabled": true,
               "throttle_authenticated_api_requests_per_period": 3,
               "throttle_authenticated_api_period_in_seconds": 60}),
    )
    .await;
    for _ in 0..3 {
        assert_eq!(
            app.send(Method::GET, "/api/v4/user", Some(&ada_token))
                .await
                .status,
            StatusCode::OK
        );
    }
    let refused = app
        .send(Method::GET, "/api/v4/user", Some(&ada_token))
        .await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.body, "Retry later\n");
    assert_eq!(refused.header("content-type"), Some("text/plain"));
    // The test clock stands at 10:30:00, the start of a minute: a whole window to wait.
    let now = app.clock_now().timestamp();
    let expected = [
        ("ratelimit-name", "throttle_authenticated_api".to_string()),
        ("ratelimit-limit", "3".to_string()),
        ("ratelimit-observed", "4".to_string()),
        ("ratelimit-remaining", "0".to_string()),
        ("ratelimit-reset", (now + 60).to_string()),
        (
            "ratelimit-resettime",
            "Mon, 15 Jun 2026 10:31:00 GMT".to_string(),
        ),
        ("retry-after", "60".to_string()),
    ];
    for (name, value) in expected {
        assert_eq!(refused.header(name), Some(value.as_str()), "{name}");
    }
    // Writes, GraphQL and every other API route count too; bob has his own count.
    assert_eq!(
        app.send(Method::POST, "/api/graphql", Some(&ada_token))
            .await
            .status,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        app.send(Method::GET, "/api/v4/user", Some(&bob_token))
            .await
            .status,
        StatusCode::OK
    );
    // Not the health checks.
    assert_eq!(
        app.send(Method::GET, "/-/readiness", Some(&ada_token))
            .await
            .status,
        StatusCode::OK
    );
    // A request without a token is not ada's (and the unauthenticated throttle is off).
    assert_eq!(
        app.send(Method::GET, "/api/v4/version", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    // The next window starts afresh.
    app.set_now(app.clock_now() + chrono::TimeDelta::seconds(60));
    assert_eq!(
        app.send(Method::GET, "/api/v4/user", Some(&ada_token))
            .await
            .status,
        StatusCode::OK
    );
    // The refusals are in the metrics.
    let metrics = app.get("/-/metrics").await.body;
    assert!(
        metrics.contains("gitlab_license_server_rate_limit_refusals_total 2"),
        "{metrics}"
    );
    // Turned off: nothing is refused any more.
    app.set_now(app.clock_now() - chrono::TimeDelta::seconds(60));
    put_settings(&app, json!({"throttle_authenticated_api_enabled": false})).await;
    assert_eq!(
        app.send(Method::GET, "/api/v4/user", Some(&ada_token))
            .await
            .status,
        StatusCode::OK
    );
}

async fn the_unauthenticated_throttle_counts_per_address(app: TestApp) {
    put_settings(
        &app,
        json!({"throttle_unauthenticated_api_enabled": true,
               "throttle_unauthenticated_api_requests_per_period": 2,
               "throttle_unauthenticated_api_period_in_seconds": 3600}),
    )
    .await;
    // No token, and a token that authenticates nobody, count against the address.
    assert_eq!(
        app.send(Method::GET, "/api/v4/version", None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.send(Method::GET, "/api/v4/version", Some("glpat-nobody"))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let refused = app.send(Method::GET, "/api/v4/version", None).await;
    assert_eq!(
        (refused.status, refused.body.as_str()),
        (StatusCode::TOO_MANY_REQUESTS, "Retry later\n")
    );
    assert_eq!(
        refused.header("ratelimit-name"),
        Some("throttle_unauthenticated_api")
    );
    // ceil(2 * 60 / 3600) = 1; 10:30:00 is half-way through the hour.
    assert_eq!(refused.header("ratelimit-limit"), Some("1"));
    assert_eq!(refused.header("retry-after"), Some("1800"));
    // Authenticated requests are not limited by it; pages outside the API neither.
    assert_eq!(app.get("/api/v4/license").await.status, StatusCode::OK);
    assert_ne!(
        app.send(Method::GET, "/admin", None).await.status,
        StatusCode::TOO_MANY_REQUESTS
    );
}

async fn users_get_by_id_has_its_own_limit(app: TestApp) {
    let ada = app.add_user(NewUser::human("ada", false)).await;
    let bob = app.add_user(NewUser::human("bob", false)).await;
    let (ada_token, _) = app.token_for(&ada, &["read_user"], None).await;
    assert_eq!(
        app.get("/api/v4/application/settings").await.json()["users_get_by_id_limit"],
        300,
        "GitLab's default"
    );
    put_settings(&app, json!({"users_get_by_id_limit": 2})).await;
    let path = format!("/api/v4/users/{}", bob.id);
    // Anyone signed in sees another user's public entity (GitLab's `User`), nothing private.
    let seen = app.send(Method::GET, &path, Some(&ada_token)).await;
    assert_eq!(seen.status, StatusCode::OK, "{}", seen.body);
    let entity = seen.json();
    let keys: Vec<&str> = entity
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys.first(), Some(&"id"));
    assert_eq!(&keys[keys.len() - 2..], ["is_followed", "local_time"]);
    assert!(entity.get("email").is_none() && entity.get("is_admin").is_none());
    assert_eq!(entity["username"], "bob");
    assert_eq!(
        app.send(Method::GET, &path, Some(&ada_token)).await.status,
        StatusCode::OK
    );
    // The third in ten minutes: GitLab's application-limit answer, without throttle headers.
    let refused = app.send(Method::GET, &path, Some(&ada_token)).await;
    assert_eq!(
        (refused.status, refused.json()),
        (
            StatusCode::TOO_MANY_REQUESTS,
            json!({"message": {"error": "This endpoint has been requested too many times. Try again later."}})
        )
    );
    assert_eq!(refused.header("retry-after"), None);
    assert_eq!(refused.header("ratelimit-name"), None);
    // Administrators are not limited, and see GitLab's administrator entity.
    for _ in 0..3 {
        let admin_view = app.get(&path).await;
        assert_eq!(admin_view.status, StatusCode::OK);
        assert_eq!(admin_view.json()["email"], "bob@example.com");
    }
    // The allowlist exempts usernames; 0 turns the limit off.
    put_settings(&app, json!({"users_get_by_id_limit_allowlist": ["ada"]})).await;
    assert_eq!(
        app.send(Method::GET, &path, Some(&ada_token)).await.status,
        StatusCode::OK
    );
    put_settings(
        &app,
        json!({"users_get_by_id_limit_allowlist": [], "users_get_by_id_limit": 0}),
    )
    .await;
    assert_eq!(
        app.send(Method::GET, &path, Some(&ada_token)).await.status,
        StatusCode::OK
    );
    // Ten minutes later the count starts again.
    put_settings(&app, json!({"users_get_by_id_limit": 2})).await;
    app.set_now(app.clock_now() + chrono::TimeDelta::minutes(10));
    assert_eq!(
        app.send(Method::GET, &path, Some(&ada_token)).await.status,
        StatusCode::OK
    );
}

/// Two server processes on one database count one limit together: what one served, the other
/// knows within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_a_limit() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        if backend == Backend::Postgres && !postgres_available() {
            continue;
        }
        let app = TestApp::start(backend, &[]).await;
        let ada = app.add_user(NewUser::human("ada", false)).await;
        let (token, _) = app.token_for(&ada, &["api"], None).await;
        put_settings(
            &app,
            json!({"throttle_authenticated_api_enabled": true,
                   "throttle_authenticated_api_requests_per_period": 4,
                   "throttle_authenticated_api_period_in_seconds": 3600}),
        )
        .await;
        let ports = [free_port(), free_port()];
        let _replicas = [
            start_server(&app.database_url, &app.data_dir.join("a"), ports[0], &[]).await,
            start_server(&app.database_url, &app.data_dir.join("b"), ports[1], &[]).await,
        ];
        let client = reqwest::Client::new();
        let get = |port: u16| {
            client
                .get(format!("http://127.0.0.1:{port}/api/v4/user"))
                .header("PRIVATE-TOKEN", &token)
                .send()
        };
        let status = |reply: reqwest::Result<reqwest::Response>| reply.expect("reply").status();
        for _ in 0..3 {
            assert_eq!(status(get(ports[0]).await), StatusCode::OK, "{backend:?}");
        }
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        // b has not counted ada yet: its first request passes, and its counts meet a's.
        assert_eq!(status(get(ports[1]).await), StatusCode::OK, "{backend:?}");
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        assert_eq!(
            status(get(ports[1]).await),
            StatusCode::TOO_MANY_REQUESTS,
            "{backend:?}: b knows a's three"
        );
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        assert_eq!(
            status(get(ports[0]).await),
            StatusCode::TOO_MANY_REQUESTS,
            "{backend:?}: a knows b's two"
        );
    }
}
