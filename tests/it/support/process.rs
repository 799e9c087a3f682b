//! Running the real binary as a server process.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Kills the server if the test fails before stopping it, so no stray process outlives it.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("free port")
}

pub fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gitlab-license-server"))
}

/// Starts `serve` on `port` against `database_url`, logging into `data_dir` (a file, never a
/// pipe nobody reads), and waits until it is ready.
pub async fn start_server(
    database_url: &str,
    data_dir: &Path,
    port: u16,
    extra_env: &[(&str, &str)],
) -> KillOnDrop {
    std::fs::create_dir_all(data_dir).expect("data dir");
    let log =
        |name: &str| Stdio::from(std::fs::File::create(data_dir.join(name)).expect("log file"));
    let mut command = binary();
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .env("DATA_DIR", data_dir)
        .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "LICENSE_PUBLIC_KEY_FILE",
            super::vectors_dir().join("public_key.pem"),
        )
        .stdout(log("server.log"))
        .stderr(log("server.err.log"));
    for (key, value) in extra_env {
        command.env(key, value);
    }
    let server = KillOnDrop(command.spawn().expect("server starts"));
    let client = reqwest::Client::new();
    let started = Instant::now();
    let ready = format!("http://127.0.0.1:{port}/-/readiness");
    while client.get(&ready).send().await.map(|r| r.status()).ok() != Some(reqwest::StatusCode::OK)
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server
}
