//! What start-up refuses and what it leaves on disk: private file modes whatever the umask,
//! weak initial tokens, database URLs without a database, oversized key requests — and a
//! readiness probe that knows whether the schema is the one this binary expects.

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use crate::on_both_backends_as_processes;
use crate::support::app::{Backend, ScratchDatabase};
use crate::support::process::binary;
use crate::support::server::{scratch_dir, ServerProcess};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Under `umask 000`, the data directory is 0700 and the SQLite database with its `-wal` and
/// `-shm` files 0600; a data directory left world-readable by an earlier version is tightened.
async fn data_files_are_private_whatever_the_umask(backend: Backend) {
    for existing in [false, true] {
        let dir = scratch_dir("modes");
        let data = dir.join("data");
        if existing {
            std::fs::create_dir_all(&data).expect("data dir");
            std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        }
        let database = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(ScratchDatabase::new(backend, &dir).await),
        };
        let url = match &database {
            Some(database) => database.url.clone(),
            None => format!("sqlite://{}/license-server.db", data.display()),
        };
        let server = ServerProcess::spawn(
            backend,
            &url,
            dir.clone(),
            // No token and no key given: both are generated into the data directory.
            &[("INITIAL_ROOT_TOKEN", ""), ("LICENSE_PUBLIC_KEY_FILE", "")],
            |command| {
                use std::os::unix::process::CommandExt as _;
                // SAFETY: umask is async-signal-safe and touches only the child's own state.
                unsafe {
                    command.pre_exec(|| {
                        libc::umask(0);
                        Ok(())
                    })
                }
            },
        )
        .await;
        // A write, so that SQLite's write-ahead log exists.
        let token = std::fs::read_to_string(data.join("initial_root_token")).expect("token file");
        let created = server
            .send_with(
                server
                    .client
                    .post(server.url("/api/v4/hooks"))
                    .json(&serde_json::json!({"url": "http://127.0.0.1:9/x", "token": "secret"})),
                Some(token.trim()),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.body);
        assert_eq!(mode(&data), 0o700, "data directory (existing: {existing})");
        assert_eq!(mode(&data.join("initial_root_token")), 0o600);
        // The generated key pair arrives a moment after readiness.
        let key = data.join("keys/license_key");
        let started = std::time::Instant::now();
        while !key.exists() && started.elapsed() < Duration::from_secs(20) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(mode(&key), 0o600);
        assert_eq!(mode(&data.join("keys")), 0o700);
        if backend == Backend::Sqlite {
            for file in [
                "license-server.db",
                "license-server.db-wal",
                "license-server.db-shm",
            ] {
                assert_eq!(
                    mode(&data.join(file)),
                    0o600,
                    "{file} (existing: {existing})"
                );
            }
        }
        drop(server);
        drop(database);
    }
}

/// Runs `serve` with `env` and expects it to refuse to start, naming `expected`.
fn refuses_to_start(env: &[(&str, &str)], expected: &str) {
    let dir = scratch_dir("refusal");
    let mut command = binary();
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATA_DIR", dir.join("data"))
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}/db.sqlite", dir.display()),
        );
    for (key, value) in env {
        command.env(key, value);
    }
    // A server that does start would run for ever: give it ten seconds.
    let log = dir.join("refusal.log");
    command
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"));
    let mut child = command.spawn().expect("runs");
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stderr = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        status.is_some_and(|status| !status.success()),
        "started with {env:?}"
    );
    assert!(stderr.contains(expected), "{env:?}: {stderr}");
    assert!(
        !dir.join("db.sqlite").exists(),
        "{env:?} created a database before refusing"
    );
}

/// Weak initial root tokens and database URLs that name no database stop the start with a
/// clear message (nothing is created); `keys generate --bits` takes 2048 to 8192.
async fn unsafe_settings_are_refused(backend: Backend) {
    for weak in [
        "MyS3cretNotGlpat",
        "glpat-short",
        "glpat-0123456789012345678",
    ] {
        refuses_to_start(&[("INITIAL_ROOT_TOKEN", weak)], "INITIAL_ROOT_TOKEN");
    }
    let file = scratch_dir("token").join("token");
    std::fs::write(&file, "glpat-short\n").expect("write");
    refuses_to_start(
        &[("INITIAL_ROOT_TOKEN_FILE", &file.display().to_string())],
        "INITIAL_ROOT_TOKEN",
    );
    match backend {
        Backend::Postgres => {
            for url in [
                "postgresql://",
                "postgres://postgres@127.0.0.1:5432",
                "postgres://postgres@127.0.0.1:5432/",
            ] {
                refuses_to_start(&[("DATABASE_URL", url)], "DATABASE_URL");
            }
        }
        Backend::Sqlite => {
            for url in ["sqlite://", "sqlite:"] {
                refuses_to_start(&[("DATABASE_URL", url)], "DATABASE_URL");
            }
        }
    }
    // A strong token starts (20 characters after the prefix).
    let server = ServerProcess::start(
        backend,
        &[("INITIAL_ROOT_TOKEN", "glpat-01234567890123456789")],
    )
    .await;
    let reply = server
        .send(
            reqwest::Method::GET,
            "/api/v4/user",
            Some("glpat-01234567890123456789"),
        )
        .await;
    assert_eq!(reply.status, 200);

    let keys = scratch_dir("keys");
    for bits in ["1024", "100000"] {
        let output = binary()
            .args(["keys", "generate", "--bits", bits, "--out"])
            .arg(&keys)
            .output()
            .expect("runs");
        assert!(!output.status.success(), "--bits {bits} accepted");
        assert!(String::from_utf8_lossy(&output.stderr).contains("2048..=8192"));
    }
}

/// Readiness is 200 only while the database holds this binary's migrated schema.
async fn readiness_checks_the_schema(backend: Backend) {
    let server = ServerProcess::start(backend, &[]).await;
    let reply = server
        .send(reqwest::Method::GET, "/-/readiness", None)
        .await;
    assert_eq!(reply.status, 200);
    let execute = |statement: &'static str| {
        let url = server.database_url.clone();
        async move {
            use sqlx::Connection as _;
            match backend {
                Backend::Sqlite => {
                    let mut connection =
                        sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
                    sqlx::query(statement)
                        .execute(&mut connection)
                        .await
                        .expect("statement");
                }
                Backend::Postgres => {
                    let mut connection = sqlx::PgConnection::connect(&url).await.expect("postgres");
                    sqlx::query(statement)
                        .execute(&mut connection)
                        .await
                        .expect("statement");
                }
            }
        }
    };
    // The newest migration undone: not the expected schema.
    execute(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT MAX(version) FROM _sqlx_migrations)",
    )
    .await;
    let reply = server
        .send(reqwest::Method::GET, "/-/readiness", None)
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert_eq!(reply.json()["status"], "failed");
    // The schema gone altogether.
    execute("DROP TABLE _sqlx_migrations").await;
    let reply = server
        .send(reqwest::Method::GET, "/-/readiness", None)
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    // Liveness does not depend on the database.
    let reply = server.send(reqwest::Method::GET, "/-/liveness", None).await;
    assert_eq!(reply.status, 200);
}

on_both_backends_as_processes!(
    data_files_are_private_whatever_the_umask,
    unsafe_settings_are_refused,
    readiness_checks_the_schema,
);
