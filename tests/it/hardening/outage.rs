//! A PostgreSQL outage, made with a TCP proxy between the server and the database that the
//! test cuts and restores (the shared PostgreSQL keeps running for the other tests): what the
//! caches hold keeps answering, what needs the database is a 503 with `Retry-After`, readiness
//! follows the database, and recovery needs no restart.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

use crate::support::app::{postgres_available, Backend, ScratchDatabase, ROOT_TOKEN};
use crate::support::licenses::duo_today;
use crate::support::server::{scratch_dir, ServerProcess};

/// A TCP proxy on a fixed local port that can be cut (every connection dropped, new ones
/// refused) and restored.
struct CuttableProxy {
    port: u16,
    upstream: String,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    acceptor: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl CuttableProxy {
    async fn start(upstream: &str) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let proxy = Arc::new(Self {
            port,
            upstream: upstream.to_string(),
            up: Arc::new(AtomicBool::new(false)),
            connections: Arc::default(),
            acceptor: Mutex::new(None),
        });
        proxy.serve(listener);
        proxy
    }

    fn serve(self: &Arc<Self>, listener: TcpListener) {
        self.up.store(true, Ordering::SeqCst);
        let proxy = Arc::clone(self);
        let acceptor = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = proxy.upstream.clone();
                let task = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                proxy.connections.lock().expect("lock").push(task);
            }
        });
        *self.acceptor.lock().expect("lock") = Some(acceptor);
    }

    /// Drops every connection and stops listening: the database is gone.
    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.lock().expect("lock").take() {
            acceptor.abort();
        }
        for task in self.connections.lock().expect("lock").drain(..) {
            task.abort();
        }
    }

    /// Listens again on the same port: the database is back.
    async fn restore(self: &Arc<Self>) {
        let started = Instant::now();
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(error) => {
                    assert!(
                        started.elapsed() < Duration::from_secs(5),
                        "rebind: {error}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        self.serve(listener);
    }
}

/// `postgres://…@host:port/db` with the host and port replaced by the proxy's.
fn through_proxy(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").expect("url");
    let (authority, path) = rest.split_once('/').expect("database");
    let credentials = authority
        .rsplit_once('@')
        .map(|(credentials, _)| format!("{credentials}@"))
        .unwrap_or_default();
    format!("{scheme}://{credentials}127.0.0.1:{port}/{path}")
}

fn upstream_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or_default();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    if host_port.contains(':') {
        host_port.to_string()
    } else {
        format!("{host_port}:5432")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_postgres_outage_is_served_from_cache_and_answered_with_503() {
    if !postgres_available() {
        return;
    }
    let dir = scratch_dir("outage");
    let database = ScratchDatabase::new(Backend::Postgres, &dir).await;
    let proxy = CuttableProxy::start(&upstream_of(&database.url)).await;
    let url = through_proxy(&database.url, proxy.port);
    let server = ServerProcess::spawn(Backend::Postgres, &url, dir, &[], |command| command).await;
    server.upload(&duo_today(50, 5)).await;
    let purchases = json!({"query": "{ addOnPurchases { name purchasedQuantity } }"});
    let before = server.graphql(Some(ROOT_TOKEN), &purchases).await.json();
    assert_eq!(
        before["data"]["addOnPurchases"][0]["purchasedQuantity"], 5,
        "{before}"
    );
    let license_before = server.get("/api/v4/license").await.json();

    // GET /license without pause from before the cut until after the recovery.
    let running = Arc::new(AtomicBool::new(true));
    let served = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let mut readers = Vec::new();
    for _ in 0..2 {
        let client = server.client.clone();
        let url = server.url("/api/v4/license");
        let (running, served, failures) = (running.clone(), served.clone(), failures.clone());
        let expected = license_before.clone();
        readers.push(tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                let outcome = client
                    .get(&url)
                    .header("PRIVATE-TOKEN", ROOT_TOKEN)
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                match outcome {
                    Ok(response) if response.status() == 200 => {
                        let body: serde_json::Value = response.json().await.unwrap_or_default();
                        if body["id"] == expected["id"]
                            && body["active_users"] == expected["active_users"]
                        {
                            served.fetch_add(1, Ordering::Relaxed);
                        } else {
                            failures.lock().expect("lock").push(format!("body {body}"));
                        }
                    }
                    Ok(response) => {
                        let status = response.status();
                        let text = response.text().await.unwrap_or_default();
                        failures
                            .lock()
                            .expect("lock")
                            .push(format!("{status} {text}"));
                    }
                    Err(error) => failures.lock().expect("lock").push(error.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.cut();
    // Readiness notices within a few seconds.
    let started = Instant::now();
    loop {
        let reply = server.send(Method::GET, "/-/readiness", None).await;
        if reply.status == 503 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "readiness stayed {}",
            reply.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let served_at_cut = served.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Cached: the license, the token, the add-on purchases.
    let reply = server.graphql(Some(ROOT_TOKEN), &purchases).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json(), before);
    // Needs the database: 503 with Retry-After, GitLab's shapes, never 401 or 500.
    let reply = server.get("/api/v4/users").await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(reply.header("retry-after").is_some());
    assert_eq!(reply.json(), json!({"message": "503 Service Unavailable"}));
    let reply = server
        .graphql(
            Some(ROOT_TOKEN),
            &json!({"query": "{ user(username: \"root\") { id } }"}),
        )
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(reply.header("retry-after").is_some());
    assert!(reply.json()["errors"][0]["message"].is_string());
    // A token never seen before cannot be checked: 503, not "invalid token".
    let reply = server
        .graphql(Some("glpat-never-seen-before-00000000"), &purchases)
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    let reply = server
        .send(
            Method::GET,
            "/api/v4/license",
            Some("glpat-never-seen-before-00000000"),
        )
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);
    let reply = server
        .json_as_root(
            Method::POST,
            "/api/v4/users",
            &json!({
                "username": "during", "name": "During", "email": "during@example.org"
            }),
        )
        .await;
    assert_eq!(reply.status, 503, "{}", reply.body);

    // The readers were answered while the database was away (how many depends on the
    // machine's load, so only that some were).
    let served_during_outage = served.load(Ordering::Relaxed) - served_at_cut;
    assert!(
        served_during_outage > 0,
        "no GET /license answered during the outage"
    );

    // The database comes back: readiness and writes recover without a restart.
    proxy.restore().await;
    server.wait_ready().await;
    let started = Instant::now();
    loop {
        let reply = server.get("/api/v4/users").await;
        if reply.status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            reply.body
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    running.store(false, Ordering::Relaxed);
    for reader in readers {
        reader.await.expect("reader");
    }
    let failures = failures.lock().expect("lock").clone();
    assert!(
        failures.is_empty(),
        "failed GET /license during the outage: {failures:?}"
    );
    eprintln!(
        "GET /license served {} times, {served_during_outage} of them with the database cut",
        served.load(Ordering::Relaxed)
    );
    let reply = server.graphql(Some(ROOT_TOKEN), &purchases).await;
    assert_eq!(reply.json(), before);
    drop(server);
    drop(database);
}
