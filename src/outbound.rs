//! The one HTTP client for every outgoing call: system-hook deliveries and the GitLab
//! instances of the fleet. Every call has a time budget covering the whole answer, a bound
//! on the answer's size, and never follows a redirect to another host. API calls are
//! retried: `429` after the peer's `Retry-After` (or `RateLimit-Reset`), `5xx`, cut
//! connections and time-outs with exponential back-off and jitter, within a number of
//! attempts; `401`/`403` stop at once with the peer's reason. Hook deliveries make one attempt
//! per call (their retries are durable rows, see `services::hooks`).
//!
//! Errors name the host and what went wrong, never a header value (tokens travel in headers).

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use rand_core::RngCore as _;
use reqwest::header::HeaderMap;

use crate::config::{AllowedDestination, Limits};

/// Redirects followed within one host, at most.
const MAX_REDIRECTS: usize = 5;
/// How much of an error answer's body is kept for the reason shown.
const REASON_CHARS: usize = 200;

/// Why an outgoing call failed, in words fit for an operator (no secrets).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// `401`/`403`: the credentials are refused; retrying cannot help.
    #[error("HTTP {status}: {reason}")]
    Refused { status: u16, reason: String },
    /// Another answer that retrying cannot change (`404`, `400`, a redirect elsewhere, …).
    #[error("HTTP {status}: {reason}")]
    Rejected { status: u16, reason: String },
    /// Every attempt failed; the last reason.
    #[error("gave up after {attempts} attempts: {reason}")]
    GaveUp { attempts: u32, reason: String },
    /// The peer asked to wait longer than this server is willing to.
    #[error("rate limited: the peer asks to wait {wait_seconds} s, more than the {limit_seconds} s honoured (OUTBOUND_MAX_RETRY_WAIT_SECONDS)")]
    WaitTooLong {
        wait_seconds: u64,
        limit_seconds: u64,
    },
    /// The answer was larger than the call allows.
    #[error("the answer is larger than {0} bytes")]
    TooLarge(usize),
    /// The request could not be made at all (a malformed URL).
    #[error("{0}")]
    Invalid(String),
}

/// A whole answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// One outgoing request: method GET or POST, headers, an optional body.
pub struct Call<'a> {
    pub method: reqwest::Method,
    pub url: &'a str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<String>,
    /// The largest answer accepted, in bytes.
    pub max_answer_bytes: usize,
}

/// The clients (each built when first used, then kept: they pool connections, and loading
/// the system's trusted roots is kept off the start-up path) and the retry policy.
pub struct Outbound {
    /// API calls: TLS verified against the system's and the bundled roots, redirects
    /// followed within the same scheme, host and port only.
    api: OnceLock<reqwest::Client>,
    /// Hook deliveries, as GitLab sends them: no redirects followed.
    hooks: OnceLock<reqwest::Client>,
    /// Hook deliveries to receivers whose TLS verification is turned off.
    hooks_unverified: OnceLock<reqwest::Client>,
    limits: Limits,
    /// `OUTBOUND_ALLOW_LIST`; `None`: every destination.
    allow_list: Option<Vec<AllowedDestination>>,
}

fn same_origin(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

fn hook_client(verify_tls: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .danger_accept_invalid_certs(!verify_tls)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_default()
}

/// A reqwest error in words, without its URL.
fn transport_reason(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the connection was cut mid-answer"
    } else if error.is_redirect() {
        "too many redirects"
    } else {
        "the request failed"
    };
    let mut detail = String::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail = cause.to_string();
        source = cause.source();
    }
    if detail.is_empty() {
        kind.to_string()
    } else {
        format!("{kind} ({detail})")
    }
}

/// How long the peer asks to wait before the next attempt: `Retry-After` (seconds or an
/// HTTP date), else `RateLimit-Reset` (a Unix time, as GitLab sends it).
pub fn requested_wait(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    if let Some(text) = header("retry-after") {
        if let Ok(seconds) = text.parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        if let Ok(at) = DateTime::parse_from_rfc2822(text) {
            return Some((at.with_timezone(&Utc) - now).to_std().unwrap_or_default());
        }
    }
    let reset = header("ratelimit-reset")?.parse::<i64>().ok()?;
    let at = DateTime::<Utc>::from_timestamp(reset, 0)?;
    Some((at - now).to_std().unwrap_or_default())
}

/// The first line of an error answer, shortened: GitLab's `{"message": "401 Unauthorized"}`
/// reads as `401 Unauthorized`.
fn reason_of(status: u16, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|json| {
            match json
                .get("message")
                .or_else(|| json.get("error_description"))
                .or_else(|| json.get("error"))
            {
                Some(serde_json::Value::String(message)) => Some(message.clone()),
                Some(other) => Some(other.to_string()),
                None => None,
            }
        })
        .unwrap_or_else(|| text.lines().next().unwrap_or_default().to_string());
    let message: String = message.chars().take(REASON_CHARS).collect();
    if message.trim().is_empty() {
        reqwest::StatusCode::from_u16(status)
            .ok()
            .and_then(|code| code.canonical_reason())
            .unwrap_or("no reason given")
            .to_string()
    } else {
        message
    }
}

/// One attempt's result: an answer, or a failure that may be retried.
enum Attempt {
    Answer(Answer),
    Retryable(String),
}

fn api_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let first = attempt.previous().first().cloned();
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if first.is_some_and(|first| same_origin(&first, attempt.url())) {
                attempt.follow()
            } else {
                // The 3xx answer comes back as it is and is refused by the caller: a
                // token is never sent to another host.
                attempt.stop()
            }
        }))
        .user_agent(concat!("gitlab-license-server/", env!("CARGO_PKG_VERSION")))
        .build()
        .unwrap_or_default()
}

impl Outbound {
    pub fn new(limits: Limits, allow_list: Option<Vec<AllowedDestination>>) -> Self {
        Self {
            api: OnceLock::new(),
            hooks: OnceLock::new(),
            hooks_unverified: OnceLock::new(),
            limits,
            allow_list,
        }
    }

    /// Refuses a destination outside `OUTBOUND_ALLOW_LIST` before anything is sent (redirects
    /// stay on the same host, so the first URL decides).
    fn permitted(&self, url: &str) -> Result<(), CallError> {
        let Some(list) = &self.allow_list else {
            return Ok(());
        };
        let host = reqwest::Url::parse(url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_string))
            .ok_or_else(|| CallError::Invalid("not a usable URL".into()))?;
        if list.iter().any(|entry| entry.admits(&host)) {
            Ok(())
        } else {
            Err(CallError::Invalid(format!(
                "{host} is not in OUTBOUND_ALLOW_LIST; nothing was sent"
            )))
        }
    }

    /// One attempt within `budget`: the request, then the whole answer up to its bound.
    async fn attempt(
        client: &reqwest::Client,
        call: &Call<'_>,
        budget: Duration,
    ) -> Result<Attempt, CallError> {
        let mut request = client.request(call.method.clone(), call.url);
        for (name, value) in &call.headers {
            request = request.header(*name, value);
        }
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        let exchange = async {
            let mut response = match request.send().await {
                Ok(response) => response,
                Err(error) if error.is_builder() => {
                    return Err(CallError::Invalid(format!(
                        "not a usable URL: {}",
                        transport_reason(&error)
                    )))
                }
                Err(error) => return Ok(Attempt::Retryable(transport_reason(&error))),
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let mut body = Vec::new();
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        if body.len() + chunk.len() > call.max_answer_bytes {
                            return Err(CallError::TooLarge(call.max_answer_bytes));
                        }
                        body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(error) => return Ok(Attempt::Retryable(transport_reason(&error))),
                }
            }
            Ok(Attempt::Answer(Answer {
                status,
                headers,
                body: Bytes::from(body),
            }))
        };
        match tokio::time::timeout(budget, exchange).await {
            Ok(result) => result,
            Err(_) => Ok(Attempt::Retryable(format!(
                "no whole answer within {} s",
                budget.as_secs_f32()
            ))),
        }
    }

    /// The wait before retry number `retry` (1-based): the base doubled per retry, with up to
    /// half of it again as jitter, so replicas retrying together spread out.
    fn backoff(&self, retry: u32) -> Duration {
        let base = self
            .limits
            .outbound_retry_base
            .saturating_mul(1 << retry.saturating_sub(1).min(10));
        let jitter_millis = u64::try_from(base.as_millis() / 2).unwrap_or(0).max(1);
        base + Duration::from_millis(u64::from(rand_core::OsRng.next_u32()) % jitter_millis)
    }

    /// An API call with retries (see the module's description). `Ok` is an answer that is
    /// neither a refusal nor retryable: a `2xx`, or a `3xx`/`4xx` the caller decides about.
    pub async fn call(&self, call: &Call<'_>) -> Result<Answer, CallError> {
        self.permitted(call.url)?;
        let attempts = self.limits.outbound_max_attempts.max(1);
        let mut reason = String::new();
        for attempt in 1..=attempts {
            let wait = match Self::attempt(
                self.api.get_or_init(api_client),
                call,
                self.limits.outbound_timeout,
            )
            .await?
            {
                Attempt::Answer(answer) => match answer.status {
                    401 | 403 => {
                        return Err(CallError::Refused {
                            status: answer.status,
                            reason: reason_of(answer.status, &answer.body),
                        })
                    }
                    300..=399 => {
                        let target = answer
                            .headers
                            .get("location")
                            .and_then(|value| value.to_str().ok())
                            .and_then(|location| {
                                reqwest::Url::parse(call.url).ok()?.join(location).ok()
                            })
                            .and_then(|url| url.host_str().map(str::to_string))
                            .unwrap_or_else(|| "elsewhere".into());
                        return Err(CallError::Rejected {
                            status: answer.status,
                            reason: format!("redirected to another host ({target}); redirects are only followed within the instance's own host"),
                        });
                    }
                    429 => {
                        let requested = requested_wait(&answer.headers, Utc::now());
                        reason = format!("HTTP 429: {}", reason_of(429, &answer.body));
                        match requested {
                            Some(wait) if wait > self.limits.outbound_max_retry_wait => {
                                return Err(CallError::WaitTooLong {
                                    wait_seconds: wait.as_secs(),
                                    limit_seconds: self.limits.outbound_max_retry_wait.as_secs(),
                                })
                            }
                            Some(wait) => wait,
                            None => self.backoff(attempt),
                        }
                    }
                    500..=599 => {
                        reason = format!(
                            "HTTP {}: {}",
                            answer.status,
                            reason_of(answer.status, &answer.body)
                        );
                        self.backoff(attempt)
                    }
                    _ => return Ok(answer),
                },
                Attempt::Retryable(why) => {
                    reason = why;
                    self.backoff(attempt)
                }
            };
            if attempt < attempts {
                tracing::debug!(
                    attempt,
                    reason,
                    wait_ms = wait.as_millis() as u64,
                    "outgoing call retried"
                );
                tokio::time::sleep(wait).await;
            }
        }
        Err(CallError::GaveUp { attempts, reason })
    }

    /// [`Outbound::call`] that wants a `2xx`: any other answer is [`CallError::Rejected`].
    pub async fn call_ok(&self, call: &Call<'_>) -> Result<Answer, CallError> {
        let answer = self.call(call).await?;
        if (200..300).contains(&answer.status) {
            Ok(answer)
        } else {
            Err(CallError::Rejected {
                status: answer.status,
                reason: reason_of(answer.status, &answer.body),
            })
        }
    }

    /// One hook delivery attempt within `budget`: the answer's status, or why there was
    /// none. Redirects are not followed (GitLab's hooks do not follow them either).
    pub async fn deliver_once(
        &self,
        call: &Call<'_>,
        verify_tls: bool,
        budget: Duration,
    ) -> Result<u16, String> {
        self.permitted(call.url)
            .map_err(|error| error.to_string())?;
        let client = if verify_tls {
            self.hooks.get_or_init(|| hook_client(true))
        } else {
            self.hooks_unverified.get_or_init(|| hook_client(false))
        };
        match Self::attempt(client, call, budget).await {
            Ok(Attempt::Answer(answer)) => Ok(answer.status),
            Ok(Attempt::Retryable(reason)) => Err(reason),
            Err(error) => Err(error.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[tokio::test]
    async fn destinations_outside_the_allow_list_are_refused_unsent() {
        let outbound = Outbound::new(
            Limits::default(),
            Some(vec![AllowedDestination::Addresses(
                "127.0.0.0/8".parse().expect("block"),
            )]),
        );
        let call = |url| Call {
            method: reqwest::Method::GET,
            url,
            headers: Vec::new(),
            body: None,
            max_answer_bytes: 10,
        };
        let refused = outbound.call(&call("http://10.1.2.3/api")).await;
        assert!(
            matches!(&refused, Err(CallError::Invalid(reason)) if reason.contains("OUTBOUND_ALLOW_LIST")),
            "{refused:?}"
        );
        let refused = outbound
            .deliver_once(
                &call("http://hooks.example.com/"),
                true,
                Duration::from_secs(1),
            )
            .await;
        assert!(refused.is_err_and(|reason| reason.contains("not in OUTBOUND_ALLOW_LIST")));
    }

    #[test]
    fn waits_come_from_retry_after_or_the_rate_limit_reset() {
        let now = DateTime::parse_from_rfc3339("2026-06-15T10:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let mut headers = HeaderMap::new();
        assert_eq!(requested_wait(&headers, now), None);
        headers.insert("ratelimit-reset", HeaderValue::from_static("1781517605"));
        assert_eq!(requested_wait(&headers, now), Some(Duration::from_secs(5)));
        headers.insert("retry-after", HeaderValue::from_static("3"));
        assert_eq!(requested_wait(&headers, now), Some(Duration::from_secs(3)));
        headers.insert(
            "retry-after",
            HeaderValue::from_static("Mon, 15 Jun 2026 10:00:07 GMT"),
        );
        assert_eq!(requested_wait(&headers, now), Some(Duration::from_secs(7)));
    }

    #[test]
    fn reasons_are_gitlab_messages_cut_short() {
        assert_eq!(
            reason_of(401, br#"{"message":"401 Unauthorized"}"#),
            "401 Unauthorized"
        );
        assert_eq!(reason_of(502, b""), "Bad Gateway");
        assert_eq!(
            reason_of(401, br#"{"error":"invalid_token","error_description":"Token was revoked. You have to re-authenticate."}"#),
            "Token was revoked. You have to re-authenticate."
        );
        assert_eq!(
            reason_of(500, "x".repeat(500).as_bytes()).len(),
            REASON_CHARS
        );
    }

    #[test]
    fn back_off_doubles_with_jitter() {
        let outbound = Outbound::new(
            Limits {
                outbound_retry_base: Duration::from_millis(100),
                ..Limits::default()
            },
            None,
        );
        for retry in 1..=4 {
            let base = 100 * (1 << (retry - 1));
            let wait = outbound.backoff(retry).as_millis();
            assert!(
                (base..base + base / 2 + 1).contains(&wait),
                "{retry}: {wait}"
            );
        }
    }
}
