//! The real binary as a server process on its own empty database, for tests that must reach
//! the process as a peer does: requests that could crash it, slow sockets, signals, outages.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};

use super::app::{postgres_available, Backend, Reply, ScratchDatabase, ROOT_TOKEN};
use super::process::{free_port, KillOnDrop};

/// Runs each named `async fn name(backend: Backend)` as `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! on_both_backends_as_processes {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::app::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if $crate::support::app::postgres_available() {
                    super::$name($crate::support::app::Backend::Postgres).await;
                }
            }
        }
    )*};
}

pub struct ServerProcess {
    pub backend: Backend,
    pub base: String,
    pub address: String,
    pub database_url: String,
    pub data_dir: PathBuf,
    pub client: reqwest::Client,
    pub process: KillOnDrop,
    _database: Option<ScratchDatabase>,
}

/// A fresh directory under the test target directory.
pub fn scratch_dir(prefix: &str) -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

impl ServerProcess {
    /// A server on a new empty database of `backend` (it migrates and creates root with
    /// [`ROOT_TOKEN`] itself); `env` adds or overrides settings.
    pub async fn start(backend: Backend, env: &[(&str, &str)]) -> Self {
        let data_dir = scratch_dir("process");
        let database = ScratchDatabase::new(backend, &data_dir).await;
        let url = database.url.clone();
        let mut server = Self::spawn(backend, &url, data_dir, env, |command| command).await;
        server._database = Some(database);
        server
    }

    /// A server on `database_url` (kept by the caller), with `prepare` adjusting the command
    /// (e.g. to start it through a shell with another umask).
    pub async fn spawn(
        backend: Backend,
        database_url: &str,
        data_dir: PathBuf,
        env: &[(&str, &str)],
        prepare: impl FnOnce(&mut Command) -> &mut Command,
    ) -> Self {
        if backend == Backend::Postgres {
            assert!(postgres_available());
        }
        let port = free_port();
        let address = format!("127.0.0.1:{port}");
        let mut command = Command::new(env!("CARGO_BIN_EXE_gitlab-license-server"));
        let log =
            |name: &str| Stdio::from(std::fs::File::create(data_dir.join(name)).expect("log file"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_URL", database_url)
            .env("DATA_DIR", data_dir.join("data"))
            .env("LISTEN_ADDR", &address)
            .env("INITIAL_ROOT_TOKEN", ROOT_TOKEN)
            .env(
                "LICENSE_PUBLIC_KEY_FILE",
                super::vectors_dir().join("public_key.pem"),
            )
            .env("LOG_FORMAT", "json")
            .stdout(log("server.log"))
            .stderr(log("server.err.log"));
        for (key, value) in env {
            command.env(key, value);
        }
        prepare(&mut command);
        let process = KillOnDrop(command.spawn().expect("server starts"));
        let server = Self {
            backend,
            base: format!("http://{address}"),
            address,
            database_url: database_url.to_string(),
            data_dir,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            process,
            _database: None,
        };
        server.wait_ready().await;
        server
    }

    /// Keeps `database` until the server is dropped.
    pub fn keep(&mut self, database: ScratchDatabase) {
        self._database = Some(database);
    }

    /// Waits (at most 30 s) until readiness answers 200.
    pub async fn wait_ready(&self) {
        let started = Instant::now();
        loop {
            let status = self
                .client
                .get(self.url("/-/readiness"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .map(|response| response.status())
                .ok();
            if status == Some(StatusCode::OK) {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "server did not become ready:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything the server has logged so far (stdout and stderr).
    pub fn log(&self) -> String {
        ["server.log", "server.err.log"]
            .iter()
            .filter_map(|name| std::fs::read_to_string(self.data_dir.join(name)).ok())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Whether the process is still alive (a crash shows here).
    pub fn is_running(&mut self) -> bool {
        matches!(self.process.0.try_wait(), Ok(None))
    }

    /// Asserts the process is alive and still answers.
    pub async fn assert_alive(&mut self) {
        assert!(
            self.is_running(),
            "the server process died:\n{}",
            self.log()
        );
        let reply = self.send(Method::GET, "/-/liveness", None).await;
        assert_eq!(reply.status, 200, "liveness after the attack");
    }

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

    /// `method path` with a JSON body, as root.
    pub async fn json_as_root(
        &self,
        method: Method,
        path: &str,
        body: &serde_json::Value,
    ) -> Reply {
        self.send_with(
            self.client.request(method, self.url(path)).json(body),
            Some(ROOT_TOKEN),
        )
        .await
    }

    /// `POST /api/v4/license` as root; asserts it was accepted.
    pub async fn upload(&self, license: &str) -> Reply {
        let reply = self
            .json_as_root(
                Method::POST,
                "/api/v4/license",
                &serde_json::json!({ "license": license }),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.body);
        reply
    }

    /// `POST /api/graphql` with a JSON body (an operation or a batch) and an optional token.
    pub async fn graphql(&self, token: Option<&str>, body: &serde_json::Value) -> Reply {
        let request = self.client.post(self.url("/api/graphql")).json(body);
        let request = match token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        self.send_with(request, None).await
    }

    /// Sends SIGTERM and waits (at most `limit`) for the exit; returns how long it took.
    pub fn terminate(&mut self, limit: Duration) -> Duration {
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &self.process.0.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        loop {
            if let Ok(Some(exit)) = self.process.0.try_wait() {
                assert!(
                    exit.success(),
                    "graceful exit, got {exit:?}\n{}",
                    self.log()
                );
                return started.elapsed();
            }
            assert!(
                started.elapsed() < limit,
                "the server did not stop within {limit:?} of SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
