//! Login-time endpoints, health probes, routing errors and first-run setup, on both backends.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::on_both_backends;
use crate::support::app::{Backend, TestApp, ROOT_TOKEN};

on_both_backends!(
    current_user_version_and_metadata,
    health_probes,
    readiness_fails_without_database,
    unknown_routes_and_methods,
    request_ids_are_echoed,
    cli_token_create_works_against_the_running_server,
    root_is_created_once,
    migrate_command_is_idempotent,
);

async fn migrate_command_is_idempotent(app: TestApp) {
    for _ in 0..2 {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_gitlab-license-server"))
            .arg("migrate")
            .env("DATABASE_URL", &app.database_url)
            .output()
            .expect("cli runs");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("migrations applied"));
    }
    assert_eq!(
        app.get("/api/v4/license").await.status,
        StatusCode::OK,
        "the server still works"
    );
}

async fn current_user_version_and_metadata(app: TestApp) {
    let me = app.get("/api/v4/user").await;
    assert_eq!(me.status, StatusCode::OK);
    let me = me.json();
    assert_eq!(
        (
            me["id"].clone(),
            me["username"].clone(),
            me["is_admin"].clone()
        ),
        (json!(1), json!("root"), json!(true))
    );
    assert_eq!(me["state"], "active");
    assert_eq!(me["created_at"], "2026-06-15T10:30:00.000Z");
    for path in ["/api/v4/version", "/api/v4/metadata"] {
        let reply = app.get(path).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        let body = reply.json();
        assert_eq!(body["version"], "18.6.0-ee");
        assert_eq!(body["enterprise"], true);
        assert!(body["revision"].is_string());
        assert_eq!(
            app.send(Method::GET, path, None).await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        app.send(Method::GET, "/api/v4/user", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn health_probes(app: TestApp) {
    let health = app.send(Method::GET, "/-/health", None).await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "GitLab OK")
    );
    let live = app.send(Method::GET, "/-/liveness", None).await;
    assert_eq!(
        (live.status, live.json()["status"].clone()),
        (StatusCode::OK, json!("ok"))
    );
    let ready = app.send(Method::GET, "/-/readiness", None).await;
    assert_eq!(
        (ready.status, ready.json()["status"].clone()),
        (StatusCode::OK, json!("ok"))
    );
}

async fn readiness_fails_without_database(app: TestApp) {
    app.state.store.close().await;
    let ready = app.send(Method::GET, "/-/readiness", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.json()["status"], "failed");
    // Anything that needs the database is a 503 in GitLab's shape, to retry later, with no
    // detail leaked (and a token that cannot be checked is not called invalid).
    let reply = app
        .send(
            Method::GET,
            "/api/v4/licenses",
            Some("glpat-uncached-token-0000"),
        )
        .await;
    assert_eq!(
        (reply.status, reply.body.as_str()),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"message":"503 Service Unavailable"}"#
        )
    );
    assert_eq!(reply.header("retry-after"), Some("5"));
    assert_eq!(
        app.send(Method::GET, "/-/liveness", None).await.status,
        StatusCode::OK,
        "still alive"
    );
}

async fn unknown_routes_and_methods(app: TestApp) {
    for path in ["/api/v4/nothing", "/api/v4/license/1/unknown", "/elsewhere"] {
        let reply = app.get(path).await;
        assert_eq!(
            (reply.status, reply.json()),
            (StatusCode::NOT_FOUND, json!({"error": "404 Not Found"})),
            "{path}"
        );
        let anonymous = app.send(Method::GET, path, None).await;
        assert_eq!(anonymous.status, StatusCode::NOT_FOUND, "{path}");
    }
    let reply = app
        .send(Method::PATCH, "/api/v4/license", Some(ROOT_TOKEN))
        .await;
    assert_eq!(
        (reply.status, reply.json()),
        (
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"error": "405 Not Allowed"})
        )
    );
}

async fn request_ids_are_echoed(app: TestApp) {
    let generated = app.get("/api/v4/license").await;
    assert!(generated
        .header("x-request-id")
        .is_some_and(|id| id.len() >= 32));
    let given = app
        .send_with(
            app.client
                .get(app.url("/api/v4/license"))
                .header("X-Request-Id", "abc-123"),
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(given.header("x-request-id"), Some("abc-123"));
}

async fn cli_token_create_works_against_the_running_server(app: TestApp) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_gitlab-license-server"))
        .args([
            "token",
            "create",
            "--username",
            "root",
            "--name",
            "script",
            "--scopes",
            "read_api",
        ])
        .env("DATABASE_URL", &app.database_url)
        .env("DATA_DIR", &app.data_dir)
        .output()
        .expect("cli runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    assert!(token.starts_with("glpat-") && token.len() == 26, "{token}");
    let reply = app
        .send(Method::GET, "/api/v4/licenses", Some(&token))
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let post = app
        .send(Method::POST, "/api/v4/license", Some(&token))
        .await;
    assert_eq!(post.status, StatusCode::FORBIDDEN, "read_api cannot write");

    let failures = [
        (
            vec!["--username", "ghost", "--name", "x", "--scopes", "api"],
            "no user named `ghost`",
        ),
        (
            vec![
                "--username",
                "root",
                "--name",
                "x",
                "--scopes",
                "everything",
            ],
            "unknown scope",
        ),
        (
            vec![
                "--username",
                "root",
                "--name",
                "x",
                "--scopes",
                "api",
                "--expires-at",
                "2001-01-01",
            ],
            "in the future",
        ),
        (
            vec![
                "--username",
                "root",
                "--name",
                "x",
                "--scopes",
                "api",
                "--expires-at",
                "soon",
            ],
            "YYYY-MM-DD",
        ),
    ];
    for (args, needle) in failures {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_gitlab-license-server"))
            .args(["token", "create"])
            .args(&args)
            .env("DATABASE_URL", &app.database_url)
            .output()
            .expect("cli runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success() && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
        assert!(output.stdout.is_empty());
    }
}

async fn root_is_created_once(app: TestApp) {
    // A second server on the same database finds root and creates nothing.
    let state = gitlab_license_server::server::prepare(
        gitlab_license_server::config::Config::from_source(&[
            ("DATABASE_URL", app.database_url.as_str()),
            ("DATA_DIR", &app.data_dir.display().to_string()),
            ("INITIAL_ROOT_TOKEN", "glpat-another-token-0000000"),
            (
                "LICENSE_PUBLIC_KEY_FILE",
                &crate::support::vectors_dir()
                    .join("public_key.pem")
                    .display()
                    .to_string(),
            ),
        ])
        .expect("config"),
        app.clock.clone(),
    )
    .await
    .expect("second start");
    assert!(!app.data_dir.join("initial_root_token").exists());
    assert!(state
        .store
        .find_token(&gitlab_license_server::auth::token_digest(
            "glpat-another-token-0000000"
        ))
        .await
        .expect("query")
        .is_none());
    assert!(state
        .store
        .find_token(&gitlab_license_server::auth::token_digest(ROOT_TOKEN))
        .await
        .expect("query")
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_run_generates_root_token_and_keys() {
    let mut backends = vec![Backend::Sqlite];
    if crate::support::app::postgres_available() {
        backends.push(Backend::Postgres);
    }
    for backend in backends {
        let app = TestApp::start(
            backend,
            &[("INITIAL_ROOT_TOKEN", ""), ("LICENSE_PUBLIC_KEY_FILE", "")],
        )
        .await;
        let token_file = app.data_dir.join("initial_root_token");
        let token = std::fs::read_to_string(&token_file)
            .expect("token file")
            .trim()
            .to_string();
        assert!(token.starts_with("glpat-"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&token_file)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{backend:?}");
        }
        // What a container without a shell runs to read it.
        let printed = std::process::Command::new(env!("CARGO_BIN_EXE_gitlab-license-server"))
            .args(["token", "initial"])
            .env("DATA_DIR", &app.data_dir)
            .output()
            .expect("token initial");
        assert!(printed.status.success());
        assert_eq!(
            String::from_utf8_lossy(&printed.stdout),
            format!("{token}\n")
        );
        assert_eq!(
            app.send(Method::GET, "/api/v4/license", Some(&token))
                .await
                .status,
            StatusCode::OK
        );
        // The key pair is generated off the start-up path and written once the server already
        // verifies with it: the public key file appears within moments.
        let public_key = app.data_dir.join("keys/license_key.pub");
        let started = std::time::Instant::now();
        while !public_key.is_file() {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(20),
                "no key pair was generated"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        // The generated key pair issues licenses the server accepts.
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_gitlab-license-server"))
            .args(["license", "issue", "--private-key"])
            .arg(app.data_dir.join("keys/license_key"))
            .args([
                "--name",
                "A",
                "--email",
                "a@example.org",
                "--company",
                "C",
                "--plan",
                "premium",
                "--seats",
                "5",
                "--starts",
                "2026-01-01",
                "--expires",
                "2027-01-01",
            ])
            .output()
            .expect("cli runs");
        assert!(output.status.success());
        let key = String::from_utf8(output.stdout).expect("utf-8");
        let reply = app
            .send_with(
                app.client
                    .post(app.url("/api/v4/license"))
                    .json(&json!({"license": key})),
                Some(&token),
            )
            .await;
        assert_eq!(
            reply.status,
            StatusCode::CREATED,
            "{backend:?}: {}",
            reply.body
        );
    }
}

#[tokio::test]
async fn unusable_database_urls_fail_with_a_message() {
    let config =
        gitlab_license_server::config::Config::from_source(&[("DATABASE_URL", "mysql://x")])
            .expect("config");
    let error = gitlab_license_server::server::prepare(
        config,
        std::sync::Arc::new(gitlab_license_server::clock::SystemClock),
    )
    .await
    .err()
    .expect("refused");
    assert!(error.contains("sqlite:// or postgres://"), "{error}");
}

/// The change listener must not take one of the pool's connections: with a pool of one,
/// requests would otherwise wait for a connection that never comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_of_one_connection_still_serves() {
    let mut backends = vec![Backend::Sqlite];
    if crate::support::app::postgres_available() {
        backends.push(Backend::Postgres);
    }
    for backend in backends {
        let app = TestApp::start(backend, &[("DATABASE_POOL_SIZE", "1")]).await;
        // Give the listener time to connect before the requests.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        for _ in 0..3 {
            let reply = app
                .send(Method::GET, "/api/v4/licenses", Some(ROOT_TOKEN))
                .await;
            assert_eq!(reply.status, StatusCode::OK, "{backend:?}: {}", reply.body);
        }
    }
}
