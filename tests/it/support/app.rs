//! A real server per test, on a real socket, over SQLite or PostgreSQL.
//!
//! PostgreSQL tests use `TEST_DATABASE_URL` (default the machine's local server). Each test gets
//! its own database, cloned from a migrated template (`CREATE DATABASE … TEMPLATE …`) and
//! dropped afterwards. Without a reachable PostgreSQL those tests are skipped loudly, unless
//! `REQUIRE_POSTGRES=1`.

use gitlab_license_server::store::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, TimeZone, Utc};
use gitlab_license_server::clock::FixedClock;
use gitlab_license_server::config::Config;
use gitlab_license_server::state::AppState;
use gitlab_license_server::store::{NewToken, NewUser, User};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use sha2::Digest as _;
use sqlx::{Connection as _, Executor as _};

use super::vectors_dir;

pub const ROOT_TOKEN: &str = "glpat-root-token-for-tests-0001";
const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn name(app: TestApp)` on both backends as `name::sqlite` and
/// `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::support::app::TestApp::start($crate::support::app::Backend::Sqlite, &[]).await;
                super::$name(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if !$crate::support::app::postgres_available() {
                    return;
                }
                let app = $crate::support::app::TestApp::start($crate::support::app::Backend::Postgres, &[]).await;
                super::$name(app).await;
            }
        }
    )*};
}

fn test_database_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.into())
}

/// Whether PostgreSQL tests can run; with `REQUIRE_POSTGRES=1` an unreachable server fails.
pub fn postgres_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    let available = *AVAILABLE.get_or_init(|| {
        let url = test_database_url();
        let probe = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async { sqlx::PgConnection::connect(&url).await.ok().map(|_| ()) })
        });
        probe.join().ok().flatten().is_some()
    });
    if !available {
        assert!(
            std::env::var("REQUIRE_POSTGRES").as_deref() != Ok("1"),
            "REQUIRE_POSTGRES=1 but PostgreSQL at TEST_DATABASE_URL is unreachable"
        );
        eprintln!(
            "SKIPPED: PostgreSQL is unreachable at TEST_DATABASE_URL; this test ran on SQLite only"
        );
    }
    available
}

fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Replaces the database name in a PostgreSQL URL.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(slash) if slash > "postgres://".len() => &base[..slash],
        _ => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

/// The migrated template database, created once per set of migrations.
async fn postgres_template(admin: &mut sqlx::PgConnection) -> String {
    let mut hasher = sha2::Sha256::new();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("migrations")
        .filter_map(Result::ok)
        .collect();
    files.sort_by_key(|entry| entry.file_name());
    for file in files {
        hasher.update(std::fs::read(file.path()).expect("migration"));
    }
    let template = format!("gls_template_{}", &hex::encode(hasher.finalize())[..12]);
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&template)
        .fetch_optional(&mut *admin)
        .await
        .expect("query pg_database");
    if exists.is_none() {
        let building = format!("{template}_build_{}", std::process::id());
        admin
            .execute(format!("DROP DATABASE IF EXISTS {building}").as_str())
            .await
            .expect("drop");
        admin
            .execute(format!("CREATE DATABASE {building}").as_str())
            .await
            .expect("create template");
        let url = with_database(&test_database_url(), &building);
        let store = gitlab_license_server::store::Store::connect(&url, Some(1))
            .await
            .expect("connect template");
        store.migrate().await.expect("migrate template");
        store.close().await;
        // A backend may outlive its closed client for a moment; renaming needs it gone.
        let mut published = false;
        for _ in 0..50 {
            sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()")
                .bind(&building)
                .execute(&mut *admin)
                .await
                .expect("terminate");
            if admin
                .execute(format!("ALTER DATABASE {building} RENAME TO {template}").as_str())
                .await
                .is_ok()
            {
                published = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(published, "could not publish the template database");
    }
    template
}

async fn create_postgres_database() -> String {
    let mut admin = sqlx::PgConnection::connect(&test_database_url())
        .await
        .expect("connect PostgreSQL");
    // One creator at a time, across test processes: cloning needs an idle template.
    admin
        .execute("SELECT pg_advisory_lock(7250002)")
        .await
        .expect("lock");
    let template = postgres_template(&mut admin).await;
    let name = unique_name("gls_test");
    let created = admin
        .execute(format!("CREATE DATABASE {name} TEMPLATE {template}").as_str())
        .await;
    admin
        .execute("SELECT pg_advisory_unlock(7250002)")
        .await
        .expect("unlock");
    created.expect("clone the template");
    name
}

fn drop_postgres_database(name: String) {
    let url = test_database_url();
    let _ = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        runtime.block_on(async {
            let mut admin = sqlx::PgConnection::connect(&url).await.ok()?;
            admin
                .execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                .await
                .ok()
        })
    })
    .join();
}

/// The moment tests start at: mid-2026.
pub fn test_now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 15, 10, 30, 0)
        .single()
        .expect("time")
}

pub struct TestApp {
    pub backend: Backend,
    pub base: String,
    pub state: AppState,
    pub clock: Arc<FixedClock>,
    pub client: reqwest::Client,
    pub database_url: String,
    pub data_dir: PathBuf,
    postgres_database: Option<String>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(name) = self.postgres_database.take() {
            drop_postgres_database(name);
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Reply {
    /// Sends `request` (with `token` as `PRIVATE-TOKEN`) and reads the whole answer.
    pub async fn of(request: reqwest::RequestBuilder, token: Option<&str>) -> Self {
        let request = match token {
            Some(token) => request.header("PRIVATE-TOKEN", token),
            None => request,
        };
        let response = request.send().await.expect("request reaches the server");
        Self {
            status: response.status(),
            headers: response.headers().clone(),
            body: response.text().await.expect("body"),
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {:?}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

impl TestApp {
    /// A server with the test key pair, a root token and a clock at [`test_now`]; `overrides`
    /// are extra environment settings.
    pub async fn start(backend: Backend, overrides: &[(&str, &str)]) -> Self {
        let data_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(unique_name("app"));
        std::fs::create_dir_all(&data_dir).expect("data dir");
        let (database_url, postgres_database) = match backend {
            Backend::Sqlite => (format!("sqlite://{}/test.db", data_dir.display()), None),
            Backend::Postgres => {
                let name = create_postgres_database().await;
                (with_database(&test_database_url(), &name), Some(name))
            }
        };
        let public_key = vectors_dir().join("public_key.pem").display().to_string();
        let data_dir_text = data_dir.display().to_string();
        let mut settings: Vec<(&str, &str)> = vec![
            ("DATABASE_URL", &database_url),
            ("DATA_DIR", &data_dir_text),
            ("LICENSE_PUBLIC_KEY_FILE", &public_key),
            ("INITIAL_ROOT_TOKEN", ROOT_TOKEN),
            ("LISTEN_ADDR", "127.0.0.1:0"),
            ("DATABASE_POOL_SIZE", "4"),
        ];
        for (key, value) in overrides {
            settings.retain(|(existing, _)| existing != key);
            settings.push((key, value));
        }
        let source = Settings(
            settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let config = Config::from_source(&source).expect("test config");
        let clock = Arc::new(FixedClock::new(test_now()));
        let state = gitlab_license_server::server::prepare(config, clock.clone())
            .await
            .expect("server prepares");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        // The server's own connection handling, time limits included.
        let app = gitlab_license_server::api::app(state.clone());
        let limits = state.config.limits;
        let server = tokio::spawn(gitlab_license_server::http::serve(
            listener,
            app,
            limits,
            std::future::pending(),
        ));
        Self {
            backend,
            base,
            state,
            clock,
            client: reqwest::Client::new(),
            database_url,
            data_dir,
            postgres_database,
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Sends a request with an optional `PRIVATE-TOKEN`.
    pub async fn send(&self, method: Method, path: &str, token: Option<&str>) -> Reply {
        self.send_with(self.client.request(method, self.url(path)), token)
            .await
    }

    pub async fn send_with(&self, request: reqwest::RequestBuilder, token: Option<&str>) -> Reply {
        Reply::of(request, token).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, Some(ROOT_TOKEN)).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.send(Method::DELETE, path, Some(ROOT_TOKEN)).await
    }

    pub async fn put(&self, path: &str) -> Reply {
        self.send(Method::PUT, path, Some(ROOT_TOKEN)).await
    }

    /// `POST /api/v4/license` with a JSON body.
    pub async fn upload(&self, license: &str) -> Reply {
        let request = self
            .client
            .post(self.url("/api/v4/license"))
            .json(&serde_json::json!({ "license": license }));
        self.send_with(request, Some(ROOT_TOKEN)).await
    }

    pub fn set_now(&self, now: DateTime<Utc>) {
        self.clock.set(now);
    }

    /// Runs SQL straight against the database, behind the server's back (bulk seeding).
    pub async fn execute_sql(&self, sql: &str) {
        match self.backend {
            Backend::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(&self.database_url)
                    .await
                    .expect("connect SQLite");
                connection.execute(sql).await.expect("sql");
            }
            Backend::Postgres => {
                let mut connection = sqlx::PgConnection::connect(&self.database_url)
                    .await
                    .expect("connect PostgreSQL");
                connection.execute(sql).await.expect("sql");
            }
        }
    }

    /// The first column of each row `sql` returns, as text (reading what the server wrote).
    pub async fn query_texts(&self, sql: &str) -> Vec<String> {
        match self.backend {
            Backend::Sqlite => {
                let mut connection = sqlx::SqliteConnection::connect(&self.database_url)
                    .await
                    .expect("connect SQLite");
                sqlx::query_scalar::<_, String>(sql)
                    .fetch_all(&mut connection)
                    .await
                    .expect("sql")
            }
            Backend::Postgres => {
                let mut connection = sqlx::PgConnection::connect(&self.database_url)
                    .await
                    .expect("connect PostgreSQL");
                sqlx::query_scalar::<_, String>(sql)
                    .fetch_all(&mut connection)
                    .await
                    .expect("sql")
            }
        }
    }

    pub async fn add_user(&self, user: NewUser) -> User {
        self.state
            .store
            .create_user(&user, Write::unaudited(test_now()))
            .await
            .expect("create user")
    }

    /// A private top-level group named and pathed `path`.
    pub async fn add_group(&self, path: &str) -> gitlab_license_server::store::Group {
        self.state
            .store
            .create_group(
                &gitlab_license_server::store::NewGroup {
                    name: path.into(),
                    path: path.into(),
                    description: String::new(),
                    visibility: gitlab_license_server::domain::groups::Visibility::Private,
                },
                Write::unaudited(test_now()),
            )
            .await
            .expect("create group")
    }

    /// A token for `user` with `scopes`; returns (token value, token id).
    pub async fn token_for(
        &self,
        user: &User,
        scopes: &[&str],
        expires_at: Option<chrono::NaiveDate>,
    ) -> (String, i64) {
        let value = gitlab_license_server::auth::generate_token();
        let token = NewToken {
            name: "test".into(),
            digest: gitlab_license_server::auth::token_digest(&value),
            scopes: scopes.iter().map(|scope| scope.to_string()).collect(),
            expires_at,
            previous_token_id: None,
        };
        let id = self
            .state
            .store
            .create_token(user.id, &token, Write::unaudited(test_now()))
            .await
            .expect("token");
        (value, id)
    }
}

/// Test settings as a configuration source.
struct Settings(Vec<(String, String)>);

impl gitlab_license_server::config::Source for Settings {
    fn get(&self, key: &str) -> Option<String> {
        // Like the real environment: an empty value is unset.
        self.0
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.clone())
            .filter(|value| !value.is_empty())
    }
}

impl TestApp {
    pub fn clock_today(&self) -> chrono::NaiveDate {
        use gitlab_license_server::clock::Clock as _;
        self.clock.today()
    }

    pub fn clock_now(&self) -> DateTime<Utc> {
        use gitlab_license_server::clock::Clock as _;
        self.clock.now()
    }
}

impl TestApp {
    /// A POST written on a raw socket, for bodies the server refuses before reading them all
    /// (an HTTP client may report the early answer as a broken pipe). Returns status and body.
    pub async fn raw_post(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        body: Vec<u8>,
    ) -> (u16, String) {
        use std::io::{Read as _, Write as _};
        let address = self.base.trim_start_matches("http://").to_string();
        let mut head = format!("POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(&address).expect("connect");
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .expect("timeout");
            let mut writer = stream.try_clone().expect("clone");
            let sender = std::thread::spawn(move || {
                let _ = writer
                    .write_all(head.as_bytes())
                    .and_then(|()| writer.write_all(&body));
            });
            let mut response = Vec::new();
            let _ = stream.read_to_end(&mut response);
            let _ = sender.join();
            let text = String::from_utf8_lossy(&response).into_owned();
            let status = text
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.parse().ok())
                .unwrap_or(0);
            let body = text
                .split_once("\r\n\r\n")
                .map(|(_, body)| body.to_string())
                .unwrap_or_default();
            (status, body)
        })
        .await
        .expect("raw request")
    }
}

impl TestApp {
    /// Runs every due job now (tests drive the worker by hand, on the test clock).
    pub async fn run_jobs(&self) -> usize {
        gitlab_license_server::jobs::run_due(&self.state)
            .await
            .expect("jobs run")
    }
}

impl TestApp {
    /// `POST /api/graphql` with `Authorization: Bearer` (GitLab's documented form).
    pub async fn graphql(&self, token: Option<&str>, query: &str, variables: Value) -> Reply {
        let request = self
            .client
            .post(self.url("/api/graphql"))
            .json(&serde_json::json!({ "query": query, "variables": variables }));
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        self.send_with(request, None).await
    }
}

/// An empty database of either backend, dropped (PostgreSQL) with the value; SQLite's file
/// lives in `dir`.
pub struct ScratchDatabase {
    pub url: String,
    postgres_database: Option<String>,
}

impl ScratchDatabase {
    pub async fn new(backend: Backend, dir: &std::path::Path) -> Self {
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}/{}.db", dir.display(), unique_name("scratch")),
                postgres_database: None,
            },
            Backend::Postgres => {
                let name = unique_name("gls_scratch");
                let mut admin = sqlx::PgConnection::connect(&test_database_url())
                    .await
                    .expect("connect PostgreSQL");
                admin
                    .execute(format!("CREATE DATABASE {name}").as_str())
                    .await
                    .expect("create database");
                Self {
                    url: with_database(&test_database_url(), &name),
                    postgres_database: Some(name),
                }
            }
        }
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        if let Some(name) = self.postgres_database.take() {
            drop_postgres_database(name);
        }
    }
}
