//! A small HTTP proxy in front of an upstream server, on its own loopback port, that injects
//! the faults a real GitLab and the network in front of it produce: `429` with `Retry-After`,
//! `5xx`, a stall (no answer at all), a connection cut mid-answer, a redirect to another host,
//! and answers rewritten (the `using_license_seat` field removed, as GitLab CE and older
//! versions omit it). One request per connection (`Connection: close`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// What a matching request gets instead of the upstream's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `429 Too Many Requests` with `Retry-After: <seconds>`.
    RateLimited { retry_after_seconds: u64 },
    /// An error status with a GitLab-shaped body.
    Status(u16),
    /// The request is read and never answered.
    Stall,
    /// The upstream's answer, cut off half-way through its body.
    Cut,
    /// `302` to another host.
    RedirectElsewhere,
}

/// Applies `fault` to requests whose path contains `path`, after letting `skip` of them
/// through, `times` times. Rules take requests in order: a later rule sees only what the
/// earlier ones, done, leave.
#[derive(Debug, Clone)]
pub struct Rule {
    pub path: &'static str,
    pub skip: usize,
    pub times: usize,
    pub fault: Fault,
}

/// One request as the proxy saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub at: Instant,
    /// The fault applied, if any.
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct Plan {
    rules: Vec<Rule>,
    strip_seat_field: bool,
    seen: Vec<Seen>,
}

pub struct FaultProxy {
    pub base: String,
    plan: Arc<Mutex<Plan>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    /// A proxy forwarding to `upstream` (`http://host:port`).
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let plan = Arc::new(Mutex::new(Plan::default()));
        let upstream = upstream.to_string();
        let shared = Arc::clone(&plan);
        let task = tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (plan, upstream, client) =
                    (Arc::clone(&shared), upstream.clone(), client.clone());
                tokio::spawn(async move { serve(stream, plan, &upstream, &client).await });
            }
        });
        Self { base, plan, task }
    }

    pub fn add(&self, rule: Rule) {
        self.plan.lock().expect("plan").rules.push(rule);
    }

    pub fn clear(&self) {
        self.plan.lock().expect("plan").rules.clear();
    }

    pub fn strip_seat_field(&self, strip: bool) {
        self.plan.lock().expect("plan").strip_seat_field = strip;
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.plan.lock().expect("plan").seen.clone()
    }
}

/// Reads a request head (and any body announced) from `stream`.
async fn read_request(stream: &mut TcpStream) -> Option<(String, String, Vec<(String, String)>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(position) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
            break position;
        }
        if buffer.len() > 64 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
    let mut lines = head.lines();
    let mut request_line = lines.next()?.split_whitespace();
    let method = request_line.next()?.to_string();
    let target = request_line.next()?.to_string();
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    Some((method, target, headers))
}

fn answer(status: u16, reason: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut text = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    let mut bytes = text.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Removes every `"using_license_seat": …` member from a JSON answer.
fn without_seat_field(body: &[u8]) -> Vec<u8> {
    fn strip(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            serde_json::Value::Object(fields) => {
                fields.remove("using_license_seat");
            }
            _ => {}
        }
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut json) => {
            strip(&mut json);
            serde_json::to_vec(&json).unwrap_or_default()
        }
        Err(_) => body.to_vec(),
    }
}

async fn serve(
    mut stream: TcpStream,
    plan: Arc<Mutex<Plan>>,
    upstream: &str,
    client: &reqwest::Client,
) {
    let Some((method, target, headers)) = read_request(&mut stream).await else {
        return;
    };
    let path = target.split('?').next().unwrap_or_default().to_string();
    let (fault, strip) = {
        let mut plan = plan.lock().expect("plan");
        let mut fault = None;
        for rule in plan.rules.iter_mut() {
            if !path.contains(rule.path) || rule.times == 0 {
                continue;
            }
            // The first rule still in play takes the request: it lets it through while it
            // has some to skip, then faults it.
            if rule.skip > 0 {
                rule.skip -= 1;
            } else {
                rule.times -= 1;
                fault = Some(rule.fault.clone());
            }
            break;
        }
        plan.seen.push(Seen {
            path: path.clone(),
            at: Instant::now(),
            fault: fault.clone(),
        });
        (fault, plan.strip_seat_field)
    };
    let json = ("Content-Type", "application/json".to_string());
    match fault {
        Some(Fault::RateLimited {
            retry_after_seconds,
        }) => {
            let body = br#"{"message":"Retry later"}"#;
            let _ = stream
                .write_all(&answer(
                    429,
                    "Too Many Requests",
                    &[json, ("Retry-After", retry_after_seconds.to_string())],
                    body,
                ))
                .await;
            return;
        }
        Some(Fault::Status(status)) => {
            let body = format!(r#"{{"message":"{status} injected by the test proxy"}}"#);
            let _ = stream
                .write_all(&answer(status, "Injected", &[json], body.as_bytes()))
                .await;
            return;
        }
        Some(Fault::Stall) => {
            tokio::time::sleep(Duration::from_secs(120)).await;
            return;
        }
        Some(Fault::RedirectElsewhere) => {
            let _ = stream
                .write_all(&answer(
                    302,
                    "Found",
                    &[("Location", format!("http://127.0.0.2:9{target}"))],
                    b"",
                ))
                .await;
            return;
        }
        Some(Fault::Cut) | None => {}
    }
    let mut request = client.request(
        method.parse().unwrap_or(reqwest::Method::GET),
        format!("{upstream}{target}"),
    );
    for (name, value) in &headers {
        if matches!(name.as_str(), "private-token" | "authorization" | "accept") {
            request = request.header(name.as_str(), value.as_str());
        }
    }
    let Ok(response) = request.send().await else {
        return;
    };
    let status = response.status();
    let mut kept: Vec<(&str, String)> = Vec::new();
    for name in ["content-type", "link", "x-total", "x-next-page"] {
        if let Some(value) = response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
        {
            kept.push((name, value.to_string()));
        }
    }
    let mut body = response
        .bytes()
        .await
        .map(|bytes| bytes.to_vec())
        .unwrap_or_default();
    if strip {
        body = without_seat_field(&body);
    }
    let bytes = answer(
        status.as_u16(),
        status.canonical_reason().unwrap_or("OK"),
        &kept,
        &body,
    );
    if matches!(fault, Some(Fault::Cut)) {
        // The head promises the whole body; half of it arrives, then the connection closes.
        let cut = bytes.len() - body.len() / 2;
        let _ = stream.write_all(&bytes[..cut]).await;
        let _ = stream.shutdown().await;
        return;
    }
    let _ = stream.write_all(&bytes).await;
}
