//! The access log under load, as a process: a graceful stop loses no line, and an output that
//! stops taking lines stalls no request (its lines are dropped, counted and reported).

use std::io::Read as _;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::support::app::{Backend, ROOT_TOKEN};
use crate::support::server::ServerProcess;

crate::on_both_backends_as_processes!(
    a_graceful_stop_under_load_loses_no_access_line,
    lines_still_queued_at_the_stop_are_written_before_the_exit,
    an_output_that_stops_reading_stalls_no_request
);

const CLIENTS: usize = 8;

/// `GET /api/v4/license` lines with status 200 in a JSON log.
fn license_lines(log: &str) -> usize {
    log.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| {
            entry["message"] == "response"
                && entry["status"] == 200
                && entry["span"]["method"] == "GET"
                && entry["span"]["route"] == "/api/v4/license"
        })
        .count()
}

async fn a_graceful_stop_under_load_loses_no_access_line(backend: Backend) {
    let mut server = ServerProcess::start(backend, &[]).await;
    server
        .upload(&crate::support::licenses::premium_today(5))
        .await;
    let answered = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let client = reqwest::Client::new();
        let url = server.url("/api/v4/license");
        let answered = answered.clone();
        // Until the server stops answering.
        clients.push(tokio::spawn(async move {
            loop {
                let reply = client
                    .get(&url)
                    .header("PRIVATE-TOKEN", ROOT_TOKEN)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                match reply {
                    Ok(response) if response.status() == 200 => {
                        if response.bytes().await.is_ok() {
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    _ => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let during = answered.load(Ordering::SeqCst);
    assert!(during > 0, "the load never got going");
    // SIGTERM in the middle of the load: the requests in flight finish, then the process
    // writes out its queue and exits.
    let terminating = tokio::task::spawn_blocking(move || {
        server.terminate(Duration::from_secs(30));
        server
    });
    for client in clients {
        client.await.expect("client");
    }
    let server = terminating.await.expect("terminate");
    let answered = answered.load(Ordering::SeqCst);
    let log = server.log();
    let logged = license_lines(&log);
    assert!(
        logged >= answered,
        "{answered} requests answered, {logged} access lines: lines were lost at the stop"
    );
    // A request can be answered and its response lost as the connection closes, at most one
    // per client.
    assert!(
        logged <= answered + CLIENTS,
        "{answered} requests answered, {logged} access lines"
    );
    assert!(log.contains("\"stopped\""), "the last line is written too");
    assert!(!log.contains("lines were dropped"), "a file keeps up");
}

/// A server whose standard output is a pipe the test reads only when it wants to.
async fn with_piped_output(backend: Backend) -> (ServerProcess, std::process::ChildStdout) {
    let data_dir = crate::support::server::scratch_dir("piped_log");
    let database = crate::support::app::ScratchDatabase::new(backend, &data_dir).await;
    std::fs::create_dir_all(data_dir.join("server")).expect("server directory");
    let mut server = ServerProcess::spawn(
        backend,
        &database.url,
        data_dir.join("server"),
        &[],
        |command| command.stdout(Stdio::piped()),
    )
    .await;
    server.keep(database);
    let stdout = server.process.0.stdout.take().expect("piped stdout");
    (server, stdout)
}

/// Reads `stdout` to its end on a thread.
fn read_all(mut stdout: std::process::ChildStdout) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    })
}

async fn lines_still_queued_at_the_stop_are_written_before_the_exit(backend: Backend) {
    // Nobody reads the output until the stop: its pipe fills, and the lines of the requests
    // below wait in the queue (fewer than it holds, so none is dropped).
    let (mut server, stdout) = with_piped_output(backend).await;
    let mut answered = 0;
    for _ in 0..3_000 {
        let reply = server
            .send(reqwest::Method::GET, "/api/v4/license", Some(ROOT_TOKEN))
            .await;
        assert!(!reply.status.is_server_error(), "{}", reply.body);
        answered += 1;
    }
    let reader = read_all(stdout);
    tokio::task::spawn_blocking(move || server.terminate(Duration::from_secs(30)))
        .await
        .expect("terminate");
    let text = reader.join().expect("reader");
    let logged = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|entry| {
            entry["message"] == "response"
                && entry["span"]["method"] == "GET"
                && entry["span"]["route"] == "/api/v4/license"
        })
        .count();
    assert_eq!(logged, answered, "lines queued at the stop were lost");
    assert!(text.contains("\"stopped\""));
}

async fn an_output_that_stops_reading_stalls_no_request(backend: Backend) {
    // Standard output is a pipe nobody reads until the end: once its buffer is full, every
    // write the log makes blocks.
    let (mut server, stdout) = with_piped_output(backend).await;

    // Far more lines than the pipe and the queue hold; every request must still be answered
    // (the client gives each 10 s: a request waiting on the log would hit it).
    let requests = 25_000 / CLIENTS;
    let stalled = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let client = reqwest::Client::new();
        let url = server.url("/-/liveness");
        let stalled = stalled.clone();
        clients.push(tokio::spawn(async move {
            for _ in 0..requests {
                let reply = client
                    .get(&url)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                if !reply.is_ok_and(|response| response.status() == 200) {
                    stalled.store(true, Ordering::SeqCst);
                    return;
                }
            }
        }));
    }
    for client in clients {
        client.await.expect("client");
    }
    assert!(
        !stalled.load(Ordering::SeqCst),
        "a request waited on the log output"
    );

    // The drops are counted and exported.
    let metrics = server.get("/-/metrics").await.body;
    let dropped: u64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("gitlab_license_server_log_lines_dropped_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no drop counter in:\n{metrics}"));
    assert!(dropped > 0, "{metrics}");

    // Once the output takes lines again, the log says lines were dropped.
    let reader = read_all(stdout);
    let _ = tokio::task::spawn_blocking(move || {
        server.terminate(Duration::from_secs(30));
    })
    .await;
    let text = reader.join().expect("reader");
    assert!(
        text.contains("lines were dropped"),
        "the drops are reported in the log:\n{}",
        text.lines().rev().take(5).collect::<Vec<_>>().join("\n")
    );
}
