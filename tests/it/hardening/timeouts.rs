//! Slow and idle peers: headers trickled a line at a time, keep-alive connections left open,
//! bodies that never finish, and a client that would hold SIGTERM hostage. Each costs the
//! peer its own connection after the configured time, never the server.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::on_both_backends_as_processes;
use crate::support::app::{Backend, ROOT_TOKEN};
use crate::support::server::ServerProcess;

const SHORT_TIMEOUTS: &[(&str, &str)] = &[
    ("HTTP_HEADER_READ_TIMEOUT_SECONDS", "2"),
    ("HTTP_KEEP_ALIVE_TIMEOUT_SECONDS", "3"),
    ("HTTP_REQUEST_BODY_TIMEOUT_SECONDS", "2"),
    ("SHUTDOWN_TIMEOUT_SECONDS", "3"),
];

/// Waits until the server closes `stream` (EOF or reset) and returns how long that took, or
/// `None` if it is still open after `limit`. Whatever the server sent first is returned too.
fn wait_closed(stream: &mut TcpStream, until: Instant) -> (Option<Duration>, String) {
    let started = Instant::now();
    let limit = until.saturating_duration_since(started);
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    while started.elapsed() < limit {
        match stream.read(&mut buffer) {
            Ok(0) => {
                return (
                    Some(started.elapsed()),
                    String::from_utf8_lossy(&received).into(),
                )
            }
            Ok(read) => received.extend_from_slice(&buffer[..read]),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => {
                return (
                    Some(started.elapsed()),
                    String::from_utf8_lossy(&received).into(),
                )
            }
        }
    }
    (None, String::from_utf8_lossy(&received).into())
}

/// Thirty-two clients trickling header lines and sixteen idle keep-alive connections are all
/// closed by the server within their timeouts, while others are served meanwhile.
async fn slow_headers_and_idle_connections_are_closed(backend: Backend) {
    let server = ServerProcess::start(backend, SHORT_TIMEOUTS).await;
    let address = server.address.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut slow: Vec<TcpStream> = (0..32)
            .map(|_| {
                let mut stream = TcpStream::connect(&address).expect("connect");
                stream
                    .write_all(b"GET /api/v4/version HTTP/1.1\r\nHost: x\r\n")
                    .expect("write");
                stream
            })
            .collect();
        let mut idle: Vec<TcpStream> = (0..16)
            .map(|_| {
                let mut stream = TcpStream::connect(&address).expect("connect");
                stream
                    .write_all(b"GET /-/liveness HTTP/1.1\r\nHost: x\r\n\r\n")
                    .expect("write");
                stream
            })
            .collect();
        // One more header line a second for the slow ones: never a complete head.
        let trickler = {
            let mut clones: Vec<TcpStream> =
                slow.iter().map(|s| s.try_clone().expect("clone")).collect();
            std::thread::spawn(move || {
                for line in 0..8 {
                    std::thread::sleep(Duration::from_millis(700));
                    for stream in &mut clones {
                        let _ = stream.write_all(format!("X-Line-{line}: 1\r\n").as_bytes());
                    }
                }
            })
        };
        // Every connection gets the same deadline, from now.
        let until = Instant::now() + Duration::from_secs(6);
        let opened = Instant::now();
        let slow_closed: Vec<_> = slow
            .iter_mut()
            .map(|stream| wait_closed(stream, until).0.map(|_| opened.elapsed()))
            .collect();
        let idle_closed: Vec<_> = idle
            .iter_mut()
            .map(|stream| {
                let (closed, answer) = wait_closed(stream, until);
                (closed.map(|_| opened.elapsed()), answer)
            })
            .collect();
        let _ = trickler.join();
        (slow_closed, idle_closed)
    });
    // Meanwhile the server answers everybody else at once.
    let started = Instant::now();
    let reply = server.get("/api/v4/version").await;
    assert_eq!(reply.status, 200);
    assert!(started.elapsed() < Duration::from_secs(1));
    let (slow_closed, idle_closed) = outcome.await.expect("clients");
    for closed in slow_closed {
        let after = closed.expect("a slow-header connection stayed open past the header timeout");
        assert!(after < Duration::from_secs(4), "closed after {after:?}");
    }
    for (closed, answer) in idle_closed {
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        let after = closed.expect("an idle keep-alive connection stayed open past its timeout");
        assert!(after < Duration::from_secs(5), "closed after {after:?}");
    }
}

/// A body that stops arriving: 408 in GitLab's JSON shape once the body timeout passes, and
/// nothing is written.
async fn slow_bodies_time_out(backend: Backend) {
    let server = ServerProcess::start(backend, SHORT_TIMEOUTS).await;
    let address = server.address.clone();
    let (closed, answer) = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&address).expect("connect");
        let head = format!(
            "POST /api/v4/users HTTP/1.1\r\nHost: x\r\nPRIVATE-TOKEN: {ROOT_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{{\"username\": \"slow\""
        );
        stream.write_all(head.as_bytes()).expect("write");
        wait_closed(&mut stream, Instant::now() + Duration::from_secs(8))
    })
    .await
    .expect("client");
    let after = closed.expect("a stalled body kept its connection open");
    assert!(after < Duration::from_secs(5), "answered after {after:?}");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.contains("{\"message\":\"408 Request Timeout\"}"),
        "{answer}"
    );
    let users = server.get("/api/v4/users?username=slow").await;
    assert_eq!(users.json(), serde_json::json!([]));
}

/// SIGTERM with a client trickling its headers: the server stops within the shutdown
/// deadline instead of waiting for the client.
async fn shutdown_has_a_deadline(backend: Backend) {
    let mut server = ServerProcess::start(
        backend,
        &[
            // Header and body timeouts far away, so only the shutdown deadline can end it.
            ("HTTP_HEADER_READ_TIMEOUT_SECONDS", "120"),
            ("HTTP_REQUEST_BODY_TIMEOUT_SECONDS", "120"),
            ("SHUTDOWN_TIMEOUT_SECONDS", "2"),
        ],
    )
    .await;
    let address = server.address.clone();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = std::sync::Arc::clone(&stop);
    let trickler = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(&address).expect("connect");
        let _ = stream.write_all(b"POST /api/v4/users HTTP/1.1\r\nHost: x\r\n");
        let mut line = 0;
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            if stream
                .write_all(format!("X-Line-{line}: 1\r\n").as_bytes())
                .is_err()
            {
                break;
            }
            line += 1;
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let took = server.terminate(Duration::from_secs(6));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = trickler.join();
    assert!(took < Duration::from_secs(4), "stopped after {took:?}");
}

on_both_backends_as_processes!(
    slow_headers_and_idle_connections_are_closed,
    slow_bodies_time_out,
    shutdown_has_a_deadline,
);
