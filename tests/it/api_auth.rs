//! Authentication and authorization in GitLab's shapes, on both backends.

use gitlab_license_server::store::NewUser;
use gitlab_license_server::store::Write;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::on_both_backends;
use crate::support::app::{test_now, Backend, TestApp, ROOT_TOKEN};
use crate::support::licenses::premium;

const UNAUTHORIZED: &str = r#"{"message":"401 Unauthorized"}"#;
const FORBIDDEN: &str = r#"{"message":"403 Forbidden"}"#;

on_both_backends!(
    missing_and_unknown_tokens,
    token_sources,
    expired_and_revoked_tokens,
    scopes,
    non_admins_are_refused_before_validation,
    inactive_accounts,
    revocation_takes_effect_immediately,
);

async fn missing_and_unknown_tokens(app: TestApp) {
    for (method, path) in [
        (Method::GET, "/api/v4/license"),
        (Method::GET, "/api/v4/licenses"),
        (Method::GET, "/api/v4/license/1"),
        (Method::POST, "/api/v4/license"),
        (Method::DELETE, "/api/v4/license/1"),
        (Method::PUT, "/api/v4/license/1/refresh_billable_users"),
        (Method::GET, "/api/v4/license/usage_export.csv"),
    ] {
        let anonymous = app.send(method.clone(), path, None).await;
        assert_eq!(
            (anonymous.status, anonymous.body.as_str()),
            (StatusCode::UNAUTHORIZED, UNAUTHORIZED),
            "{method} {path}"
        );
        let wrong = app
            .send(method.clone(), path, Some("glpat-not-a-real-token-000"))
            .await;
        assert_eq!(
            (wrong.status, wrong.body.as_str()),
            (StatusCode::UNAUTHORIZED, UNAUTHORIZED),
            "{method} {path}"
        );
    }
    let empty = app
        .send_with(
            app.client
                .get(app.url("/api/v4/license"))
                .header("PRIVATE-TOKEN", ""),
            None,
        )
        .await;
    assert_eq!(
        empty.status,
        StatusCode::UNAUTHORIZED,
        "an empty header is anonymous"
    );
}

async fn token_sources(app: TestApp) {
    let url = app.url("/api/v4/license");
    let ok = |reply: crate::support::app::Reply| {
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body)
    };
    ok(app
        .send_with(app.client.get(&url).bearer_auth(ROOT_TOKEN), None)
        .await);
    ok(app
        .send_with(
            app.client.get(&url).query(&[("private_token", ROOT_TOKEN)]),
            None,
        )
        .await);
    ok(app
        .send_with(
            app.client.get(&url).query(&[("access_token", ROOT_TOKEN)]),
            None,
        )
        .await);
    // `private_token` wins over a wrong header, the header over a wrong bearer token.
    ok(app
        .send_with(
            app.client
                .get(&url)
                .query(&[("private_token", ROOT_TOKEN)])
                .header("PRIVATE-TOKEN", "glpat-wrong"),
            None,
        )
        .await);
    ok(app
        .send_with(
            app.client.get(&url).bearer_auth("glpat-wrong"),
            Some(ROOT_TOKEN),
        )
        .await);
}

async fn expired_and_revoked_tokens(app: TestApp) {
    let root = app
        .state
        .store
        .find_user_by_username("root")
        .await
        .expect("query")
        .expect("root");
    let today = app.clock_today();
    let (expired, _) = app.token_for(&root, &["api"], Some(today)).await;
    let reply = app
        .send(Method::GET, "/api/v4/license", Some(&expired))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.json(),
        json!({"error": "invalid_token", "error_description": "Token is expired. You can either do re-authorization or token refresh."})
    );
    assert!(reply
        .header("www-authenticate")
        .is_some_and(|value| value.starts_with("Bearer") && value.contains("invalid_token")));
    let (tomorrow, _) = app.token_for(&root, &["api"], today.succ_opt()).await;
    assert_eq!(
        app.send(Method::GET, "/api/v4/license", Some(&tomorrow))
            .await
            .status,
        StatusCode::OK
    );

    let (revoked, id) = app.token_for(&root, &["api"], None).await;
    app.state
        .store
        .revoke_token(id, Write::unaudited(test_now()))
        .await
        .expect("revoke");
    let reply = app
        .send(Method::GET, "/api/v4/license", Some(&revoked))
        .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.json(),
        json!({"error": "invalid_token", "error_description": "Token was revoked. You have to re-authorize from the user."})
    );
}

async fn scopes(app: TestApp) {
    let root = app
        .state
        .store
        .find_user_by_username("root")
        .await
        .expect("query")
        .expect("root");
    let (read_only, _) = app.token_for(&root, &["read_api"], None).await;
    for path in [
        "/api/v4/license",
        "/api/v4/licenses",
        "/api/v4/license/usage_export.csv",
    ] {
        let reply = app.send(Method::GET, path, Some(&read_only)).await;
        assert_ne!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_ne!(reply.status, StatusCode::FORBIDDEN, "{path}");
    }
    let head = app
        .send(Method::HEAD, "/api/v4/license", Some(&read_only))
        .await;
    assert_eq!(head.status, StatusCode::OK);
    let post = app
        .send_with(
            app.client
                .post(app.url("/api/v4/license"))
                .json(&json!({"license": premium(5)})),
            Some(&read_only),
        )
        .await;
    assert_eq!(post.status, StatusCode::FORBIDDEN);
    assert_eq!(
        post.json(),
        json!({"error": "insufficient_scope", "error_description": "The request requires higher privileges than provided by the access token.", "scope": "api"})
    );
    for (method, path) in [
        (Method::DELETE, "/api/v4/license/1"),
        (Method::PUT, "/api/v4/license/1/refresh_billable_users"),
    ] {
        let reply = app.send(method, path, Some(&read_only)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        assert_eq!(reply.json()["error"], "insufficient_scope");
    }
    assert_eq!(
        app.get("/api/v4/licenses").await.json(),
        json!([]),
        "nothing was written"
    );
    let (user_only, _) = app.token_for(&root, &["read_user"], None).await;
    let reply = app
        .send(Method::GET, "/api/v4/license", Some(&user_only))
        .await;
    assert_eq!(
        (reply.status, reply.json()["scope"].clone()),
        (StatusCode::FORBIDDEN, json!("api read_api"))
    );
    // The login endpoints take read_user tokens, as GitLab's do (python-gitlab's auth()).
    for path in ["/api/v4/user", "/api/v4/version", "/api/v4/metadata"] {
        let reply = app.send(Method::GET, path, Some(&user_only)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
    }
    let (runner_only, _) = app.token_for(&root, &["create_runner"], None).await;
    let reply = app
        .send(Method::GET, "/api/v4/user", Some(&runner_only))
        .await;
    assert_eq!(
        (reply.status, reply.json()["scope"].clone()),
        (StatusCode::FORBIDDEN, json!("api read_api read_user"))
    );
}

async fn non_admins_are_refused_before_validation(app: TestApp) {
    let user = app.add_user(NewUser::human("dev", false)).await;
    let (token, _) = app.token_for(&user, &["api"], None).await;
    for (method, path) in [
        (Method::GET, "/api/v4/license"),
        (Method::GET, "/api/v4/licenses"),
        (Method::GET, "/api/v4/license/abc"),
        (Method::POST, "/api/v4/license"),
        (Method::DELETE, "/api/v4/license/999"),
        (Method::PUT, "/api/v4/license/abc/refresh_billable_users"),
        (Method::GET, "/api/v4/license/usage_export.csv"),
    ] {
        let reply = app.send(method.clone(), path, Some(&token)).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::FORBIDDEN, FORBIDDEN),
            "{method} {path}"
        );
    }
    // Non-admins may still see who they are, as GitLab's `UserPublic` (no admin fields).
    let me = app.send(Method::GET, "/api/v4/user", Some(&token)).await;
    assert_eq!(
        (me.status, me.json()["username"].clone()),
        (StatusCode::OK, json!("dev"))
    );
    assert!(me.json().get("is_admin").is_none());
    assert_eq!(me.json()["email"], "dev@example.com");
}

async fn inactive_accounts(app: TestApp) {
    for (state, message) in [
        ("blocked", "403 Forbidden - Your account has been blocked."),
        ("blocked_pending_approval", "403 Forbidden - Your account is pending approval from your administrator and hence blocked."),
        ("banned", "403 Forbidden - Your account has been banned."),
        (
            "deactivated",
            "403 Forbidden - Your account has been deactivated by your administrator. Please log back in from a web browser to reactivate your account at http://localhost:0",
        ),
    ] {
        let mut user = NewUser::human(&format!("user_{state}"), true);
        user.state = gitlab_license_server::domain::users::UserState::from_name(state).expect("state");
        let user = app.add_user(user).await;
        let (token, _) = app.token_for(&user, &["api"], None).await;
        let reply = app.send(Method::GET, "/api/v4/license", Some(&token)).await;
        assert_eq!((reply.status, reply.json()), (StatusCode::FORBIDDEN, json!({"message": message})), "{state}");
    }
}

async fn revocation_takes_effect_immediately(app: TestApp) {
    let root = app
        .state
        .store
        .find_user_by_username("root")
        .await
        .expect("query")
        .expect("root");
    let (token, id) = app.token_for(&root, &["api"], None).await;
    // Warm the cache, then revoke: the next request must already fail.
    assert_eq!(
        app.send(Method::GET, "/api/v4/license", Some(&token))
            .await
            .status,
        StatusCode::OK
    );
    app.state
        .store
        .revoke_token(id, Write::unaudited(test_now()))
        .await
        .expect("revoke");
    assert_eq!(
        app.send(Method::GET, "/api/v4/license", Some(&token))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_mode_requires_the_admin_mode_scope() {
    let mut backends = vec![Backend::Sqlite];
    if crate::support::app::postgres_available() {
        backends.push(Backend::Postgres);
    }
    for backend in backends {
        let app = TestApp::start(backend, &[("ADMIN_MODE", "true")]).await;
        let root = app
            .state
            .store
            .find_user_by_username("root")
            .await
            .expect("query")
            .expect("root");
        let (plain, _) = app.token_for(&root, &["api"], None).await;
        let reply = app.send(Method::GET, "/api/v4/license", Some(&plain)).await;
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (StatusCode::FORBIDDEN, FORBIDDEN),
            "{backend:?}"
        );
        let (with_mode, _) = app.token_for(&root, &["api", "admin_mode"], None).await;
        assert_eq!(
            app.send(Method::GET, "/api/v4/license", Some(&with_mode))
                .await
                .status,
            StatusCode::OK
        );
        assert_eq!(
            app.get("/api/v4/license").await.status,
            StatusCode::OK,
            "the initial root token has admin_mode"
        );
    }
}
