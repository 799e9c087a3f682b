//! A system-hook receiver that accepts connections and never answers: its deliveries time out
//! on their own, a few at a time, while recounts and every other background job carry on.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::on_both_backends_as_processes;
use crate::support::app::{Backend, ROOT_TOKEN};
use crate::support::licenses::premium_today;
use crate::support::server::ServerProcess;

/// Accepts connections and holds them open without a byte of answer; returns its URL and how
/// many connections it has been sent.
async fn hanging_receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&connections);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            held.push(stream);
        }
    });
    (url, connections)
}

async fn a_hanging_hook_receiver_stalls_nothing(backend: Backend) {
    let server = ServerProcess::start(
        backend,
        &[("HOOK_TIMEOUT_SECONDS", "4"), ("HOOK_CONCURRENCY", "2")],
    )
    .await;
    let (url, connections) = hanging_receiver().await;
    let hook = server
        .json_as_root(Method::POST, "/api/v4/hooks", &json!({ "url": url }))
        .await;
    assert_eq!(hook.status, 201, "{}", hook.body);
    server.upload(&premium_today(50)).await;
    // Six events for the hanging receiver (five users and the license).
    for n in 0..5 {
        let created = server.json_as_root(Method::POST, "/api/v4/users", &json!({
                    "username": format!("hung{n}"), "name": "Hung", "email": format!("hung{n}@example.org")
                })).await;
        assert_eq!(created.status, 201, "{}", created.body);
    }
    // The receiver is being tried, but only two deliveries at a time.
    let started = Instant::now();
    while connections.load(std::sync::atomic::Ordering::Relaxed) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no delivery was tried"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(connections.load(std::sync::atomic::Ordering::Relaxed) <= 2);
    // A recount asked for now is done in moments, not after the hooks give up.
    let refresh = server
        .send(
            reqwest::Method::PUT,
            "/api/v4/license/1/refresh_billable_users",
            Some(ROOT_TOKEN),
        )
        .await;
    assert_eq!(refresh.status, 202);
    let started = Instant::now();
    loop {
        let license = server.get("/api/v4/license").await.json();
        if license["active_users"] == 6 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "the recount waited behind the hanging hook: {license}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each attempt ends at the hook's time budget and is recorded as a failure to retry.
    let started = Instant::now();
    loop {
        let deliveries = server.get("/api/v4/hooks/1/deliveries").await.json();
        let failed = deliveries
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|item| item["attempts"].as_i64().unwrap_or(0) >= 1)
                    .count()
            })
            .unwrap_or(0);
        if failed >= 2 {
            let item = &deliveries[0];
            assert!(item["state"] != "delivered", "{deliveries}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(12),
            "no attempt timed out: {deliveries}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

on_both_backends_as_processes!(a_hanging_hook_receiver_stalls_nothing);
