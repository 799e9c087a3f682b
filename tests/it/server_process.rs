//! The real binary as an operator runs it: start-up messages, JSON request logs that never
//! contain a secret, and a clean exit on SIGTERM — on both backends.

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::app::{postgres_available, Backend, TestApp};
use crate::support::licenses::premium;
use crate::support::process::{free_port, KillOnDrop};

async fn run_and_inspect(backend: Backend) {
    // TestApp provides a fresh database (and its cleanup); the binary gets its own process.
    let app = TestApp::start(backend, &[]).await;
    let port = free_port();
    let data_dir = app.data_dir.join("process");
    let secret_token = "glpat-process-secret-000001";
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let log_path = app.data_dir.join("server.log");
    let error_log_path = app.data_dir.join("server.err.log");
    let mut server = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_gitlab-license-server"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", &app.database_url)
            .env("DATA_DIR", &data_dir)
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env(
                "LICENSE_PUBLIC_KEY_FILE",
                crate::support::vectors_dir().join("public_key.pem"),
            )
            .env("LOG_FORMAT", "json")
            .env("RUST_LOG", "debug")
            // A file, not a pipe: nobody reads a pipe while the server runs, and a full one would
            // block its logging.
            .stdout(Stdio::from(
                std::fs::File::create(&log_path).expect("log file"),
            ))
            .stderr(Stdio::from(
                std::fs::File::create(&error_log_path).expect("log file"),
            ))
            .spawn()
            .expect("server starts"),
    );
    let child = &mut server.0;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client
        .get(format!("{base}/-/readiness"))
        .send()
        .await
        .map(|r| r.status())
        .ok()
        != Some(StatusCode::OK)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The database already has root (TestApp made it), so mint a token through the CLI.
    let output = Command::new(env!("CARGO_BIN_EXE_gitlab-license-server"))
        .args([
            "token",
            "create",
            "--username",
            "root",
            "--name",
            "logs",
            "--scopes",
            "api",
        ])
        .env("DATABASE_URL", &app.database_url)
        .output()
        .expect("cli");
    let token = String::from_utf8(output.stdout)
        .expect("utf-8")
        .trim()
        .to_string();
    assert!(token.starts_with("glpat-"));
    // A system hook whose receiver is down: its token must not reach the log either.
    let hook_token = "hook-secret-token-000001";
    let hook = client
        .post(format!("{base}/api/v4/hooks"))
        .header("PRIVATE-TOKEN", &token)
        .json(&json!({"url": "http://127.0.0.1:9/hook", "token": hook_token}))
        .send()
        .await
        .expect("hook");
    assert_eq!(hook.status(), StatusCode::CREATED);
    // Signing in to the web page: neither the token typed into the form, nor the session
    // cookie, nor the CSRF token reaches the log.
    let form = client
        .get(format!("{base}/admin/sign_in"))
        .send()
        .await
        .expect("sign-in form");
    let csrf_cookie = form
        .headers()
        .get("set-cookie")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .unwrap_or_default()
        .to_string();
    let csrf = csrf_cookie
        .split_once('=')
        .map(|(_, value)| value.to_string())
        .unwrap_or_default();
    assert!(!csrf.is_empty());
    let web = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let signed_in = web
        .post(format!("{base}/admin/sign_in"))
        .header("Cookie", &csrf_cookie)
        .form(&[
            ("authenticity_token", csrf.as_str()),
            ("token", token.as_str()),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let session_cookie = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find(|value| value.starts_with("_gitlab_license_server_session="))
        .and_then(|value| value.split(';').next())
        .unwrap_or_default()
        .to_string();
    let page = web
        .get(format!("{base}/admin/subscription"))
        .header("Cookie", &session_cookie)
        .send()
        .await
        .expect("page");
    assert_eq!(page.status(), StatusCode::OK);
    let session = session_cookie
        .split_once('=')
        .map(|(_, value)| value.to_string())
        .unwrap_or_default();
    assert!(session.len() > 20);
    let license = premium(10);
    let reply = client
        .post(format!("{base}/api/v4/license"))
        .header("PRIVATE-TOKEN", &token)
        .json(&json!({"license": license}))
        .send()
        .await
        .expect("upload");
    assert_eq!(reply.status(), StatusCode::CREATED);
    let _ = client
        .get(format!("{base}/api/v4/license?private_token={token}"))
        .send()
        .await;
    let _ = client
        .get(format!("{base}/api/v4/license"))
        .bearer_auth(secret_token)
        .send()
        .await;
    let _ = client
        .post(format!("{base}/api/v4/license"))
        .header("PRIVATE-TOKEN", &token)
        .form(&[("license", "not-a-key-SECRETISH")])
        .send()
        .await;

    let graphql = client
        .post(format!("{base}/api/graphql"))
        .bearer_auth(&token)
        .json(&json!({"query": "{ currentUser { username } }"}))
        .send()
        .await
        .expect("graphql");
    assert_eq!(graphql.status(), StatusCode::OK);
    // Give the sender time to try the hook (the upload's event woke it).
    let attempted = Instant::now();
    loop {
        let deliveries: Value = client
            .get(format!("{base}/api/v4/hooks/1/deliveries"))
            .header("PRIVATE-TOKEN", &token)
            .send()
            .await
            .expect("deliveries")
            .json()
            .await
            .expect("json");
        if deliveries[0]["attempts"].as_i64().unwrap_or(0) >= 1 {
            break;
        }
        assert!(
            attempted.elapsed() < Duration::from_secs(20),
            "the hook was never tried: {deliveries}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The container health check: healthy while serving …
    let healthcheck = || {
        Command::new(env!("CARGO_BIN_EXE_gitlab-license-server"))
            .arg("healthcheck")
            .env("LISTEN_ADDR", format!("0.0.0.0:{port}"))
            .output()
            .expect("healthcheck runs")
    };
    let healthy = healthcheck();
    assert!(
        healthy.status.success(),
        "{}",
        String::from_utf8_lossy(&healthy.stderr)
    );

    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(terminated.success());
    let exit = child.wait().expect("wait");
    assert!(exit.success(), "graceful shutdown exits 0, got {exit:?}");
    // … and unhealthy once stopped.
    let stopped = healthcheck();
    assert!(!stopped.status.success());
    assert!(String::from_utf8_lossy(&stopped.stderr).contains("cannot connect"));

    let mut lines = Vec::new();
    for path in [&log_path, &error_log_path] {
        let file = std::fs::File::open(path).expect("log");
        lines.extend(BufReader::new(file).lines().map_while(Result::ok));
    }
    let log = lines.join("\n");
    assert!(
        log.contains("\"ready\""),
        "start-up announces readiness:\n{log}"
    );
    assert!(log.contains("stopped"), "shutdown is logged");
    let request_line = lines
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|entry| {
            entry["message"] == "response"
                && entry["status"] == 201
                && entry["span"]["route"] == "/api/v4/license"
        })
        .unwrap_or_else(|| panic!("a JSON response line for the upload:\n{log}"));
    let span = request_line.get("span").cloned().unwrap_or_default();
    assert_eq!(span["method"], "POST");
    assert_eq!(span["route"], "/api/v4/license");
    assert!(span["request_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(request_line["latency_ms"].is_number());
    for secret in [
        token.as_str(),
        secret_token,
        &license[..40],
        "not-a-key-SECRETISH",
        hook_token,
        &session,
        &csrf,
    ] {
        assert!(
            !log.contains(secret),
            "a secret reached the log ({backend:?}): {}",
            &secret[..10]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_hold_no_secrets_and_sigterm_stops_cleanly_on_sqlite() {
    run_and_inspect(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_hold_no_secrets_and_sigterm_stops_cleanly_on_postgres() {
    if postgres_available() {
        run_and_inspect(Backend::Postgres).await;
    }
}

crate::on_both_backends_as_processes!(a_start_with_keys_that_verify_no_stored_license_says_so);

/// The log of a server restarted on a database whose license no configured key verifies
/// names the count and the fix; with the old key beside the new one, it says nothing.
async fn a_start_with_keys_that_verify_no_stored_license_says_so(backend: Backend) {
    use crate::support::server::{scratch_dir, ServerProcess};
    let first = ServerProcess::start(backend, &[]).await;
    first
        .upload(&crate::support::licenses::premium_today(5))
        .await;
    let keys = scratch_dir("rotated_keys");
    let (_, new_public) =
        gitlab_license_server::license_key::keys::generate_pem_pair(2048).expect("key pair");
    let old_public = std::fs::read_to_string(crate::support::vectors_dir().join("public_key.pem"))
        .expect("vectors key");
    std::fs::write(keys.join("new.pub"), &new_public).expect("write key");
    std::fs::write(keys.join("both.pub"), format!("{new_public}\n{old_public}"))
        .expect("write keys");

    let warning = "no configured public key verifies";
    let start_with = |key: &str| {
        let key = keys.join(key).display().to_string();
        let database_url = first.database_url.clone();
        async move {
            ServerProcess::spawn(
                backend,
                &database_url,
                scratch_dir("rotated"),
                &[("LICENSE_PUBLIC_KEY_FILE", &key)],
                |command| command,
            )
            .await
        }
    };
    let rotated = start_with("new.pub").await;
    // The check runs just after start-up, off its path.
    let started = Instant::now();
    while !rotated.log().contains(warning) && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = rotated.log();
    let line = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|entry| {
            entry["message"]
                .as_str()
                .is_some_and(|text| text.contains(warning))
        })
        .unwrap_or_else(|| panic!("a warning about the hidden license:\n{log}"));
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["count"], 1);
    assert!(line["fix"]
        .as_str()
        .is_some_and(|fix| fix.contains("LICENSE_PUBLIC_KEY_FILE")));

    let both = start_with("both.pub").await;
    assert_eq!(
        both.get("/api/v4/licenses")
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!both.log().contains(warning), "{}", both.log());
}
