//! System hooks: sending deliveries (durable, retried with back-off, one replica at a time)
//! and raising the license alerts GitLab has no hook for (expiring, expired, overage, seats
//! exhausted).

use std::time::Duration;

use chrono::{NaiveDate, TimeDelta};
use serde::Serialize;
use serde_json::{json, Value};

use crate::domain::add_ons;
use crate::domain::licenses::LicenseEntity;
use crate::outbound::{Call, Outbound};
use crate::policy::AdminPrincipal;
use crate::services::{audit, licenses};
use crate::state::AppState;
use crate::store::{
    AddOnPurchase, AttemptOutcome, DeliveryWork, HookSettings, NewAudit, StoreResult, SystemHook,
    User,
};

/// Attempts before a delivery is given up (GitLab retries failing hooks a few times too).
pub const MAX_ATTEMPTS: i32 = 8;
/// How long past its time budget one replica holds a claimed delivery before another may
/// take it over (the process may have died mid-attempt).
const LEASE_MARGIN: TimeDelta = TimeDelta::minutes(1);
/// How often the sender looks for due deliveries when nobody woke it.
const POLL_INTERVAL: Duration = Duration::from_secs(15);
/// A receiver's answer is read up to this much (its status is all that counts).
const HOOK_ANSWER_BYTES: usize = 64 * 1024;
/// Days before expiry at which `license_expiring` is sent (GitLab's reminder days).
pub const EXPIRY_NOTICE_DAYS: [i64; 4] = [30, 14, 7, 1];

/// The wait before attempt `attempts + 1`: 10 s, doubling, at most an hour.
pub fn backoff(attempts: i32) -> TimeDelta {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 12)).unwrap_or(0);
    TimeDelta::seconds((10i64 << exponent).min(3600))
}

/// Posts one payload the way GitLab posts system hooks, within `budget` (connecting,
/// sending and the answer), through the server's one outgoing client. Ok(status) for any
/// answer; the caller decides what counts as delivered.
/// Where a payload goes.
struct Receiver<'a> {
    url: &'a str,
    token: Option<&'a str>,
    verify_tls: bool,
}

async fn post(
    outbound: &Outbound,
    receiver: Receiver<'_>,
    event_name: &str,
    payload: String,
    budget: Duration,
) -> Result<u16, String> {
    let mut headers = vec![
        ("Content-Type", "application/json".to_string()),
        (
            "User-Agent",
            format!("GitLab/{}", env!("CARGO_PKG_VERSION")),
        ),
        ("X-Gitlab-Event", "System Hook".to_string()),
        ("X-Gitlab-Event-Name", event_name.to_string()),
    ];
    if let Some(token) = receiver.token.filter(|token| !token.is_empty()) {
        headers.push(("X-Gitlab-Token", token.to_string()));
    }
    let call = Call {
        method: reqwest::Method::POST,
        url: receiver.url,
        headers,
        body: Some(payload),
        max_answer_bytes: HOOK_ANSWER_BYTES,
    };
    // The errors name what went wrong, never the URL or the token.
    outbound
        .deliver_once(&call, receiver.verify_tls, budget)
        .await
}

/// Claims the next due delivery, leased for its time budget and a margin.
async fn claim(state: &AppState) -> StoreResult<Option<DeliveryWork>> {
    let now = state.clock.now();
    let budget = TimeDelta::from_std(state.config.limits.hook_timeout).unwrap_or(TimeDelta::zero());
    state
        .store
        .claim_delivery(now, now + budget + LEASE_MARGIN)
        .await
}

/// Makes one attempt at a claimed delivery and records its outcome.
async fn send(state: &AppState, work: DeliveryWork) {
    let outcome = attempt(
        &state.outbound,
        &work,
        state.config.limits.hook_timeout,
        state.clock.now(),
    )
    .await;
    if let AttemptOutcome::GiveUp { error, .. } = &outcome {
        tracing::warn!(delivery_id = work.id, %error, "system hook delivery given up");
    }
    if let Err(error) = state
        .store
        .finish_delivery(&work, &outcome, state.clock.now())
        .await
    {
        tracing::warn!(delivery_id = work.id, %error, "could not record a delivery attempt");
    }
}

/// Sends every due delivery, `HOOK_CONCURRENCY` at a time, and waits for them; returns how
/// many attempts were made (tests and one-off runs; the server runs [`spawn_sender`]).
pub async fn deliver_due(state: &AppState) -> StoreResult<usize> {
    let mut attempts = 0;
    loop {
        let mut in_flight = tokio::task::JoinSet::new();
        while in_flight.len() < state.config.limits.hook_concurrency {
            let Some(work) = claim(state).await? else {
                break;
            };
            let state = state.clone();
            in_flight.spawn(async move { send(&state, work).await });
        }
        if in_flight.is_empty() {
            return Ok(attempts);
        }
        attempts += in_flight.len();
        while in_flight.join_next().await.is_some() {}
    }
}

/// The server's sender: its own task, apart from the job worker, so a receiver that never
/// answers delays nothing but its own deliveries; at most `HOOK_CONCURRENCY` attempts in
/// flight, each within `HOOK_TIMEOUT_SECONDS`, a new one claimed as soon as one ends.
pub fn spawn_sender(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut in_flight = tokio::task::JoinSet::new();
        loop {
            while in_flight.len() < state.config.limits.hook_concurrency
                && state.store.is_reachable()
            {
                match claim(&state).await {
                    Ok(Some(work)) => {
                        let state = state.clone();
                        in_flight.spawn(async move { send(&state, work).await });
                    }
                    Ok(None) => break,
                    Err(error) => {
                        tracing::warn!(%error, "could not claim system hook deliveries");
                        break;
                    }
                }
            }
            tokio::select! {
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                _ = tokio::time::timeout(POLL_INTERVAL, state.hooks_wake.notified()) => {}
            }
        }
    })
}

async fn attempt(
    outbound: &Outbound,
    work: &DeliveryWork,
    budget: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> AttemptOutcome {
    let receiver = Receiver {
        url: &work.url,
        token: work.token.as_deref(),
        verify_tls: work.enable_ssl_verification,
    };
    let sent = post(
        outbound,
        receiver,
        &work.event_name,
        work.payload.clone(),
        budget,
    )
    .await;
    let (status, error) = match sent {
        Ok(status) if (200..300).contains(&status) => {
            return AttemptOutcome::Delivered {
                status: i32::from(status),
            }
        }
        Ok(status) => (Some(i32::from(status)), format!("HTTP {status}")),
        Err(error) => (None, error),
    };
    if work.attempts >= MAX_ATTEMPTS {
        AttemptOutcome::GiveUp { status, error }
    } else {
        AttemptOutcome::Retry {
            status,
            error,
            at: now + backoff(work.attempts),
        }
    }
}

/// The audit event of a change to a system hook (`verb`: "Added", "Changed", "Removed").
/// The URL is left out: it may carry credentials.
fn hook_audit(author: &User, event_name: &'static str, verb: &str, hook_id: i64) -> NewAudit {
    audit::event(
        author,
        audit::INSTANCE_SCOPE,
        1,
        event_name,
        format!("{verb} system hook {hook_id}"),
        ("SystemHook", hook_id, "System hook"),
    )
}

/// `POST /hooks`, audited in the same transaction.
pub async fn create(
    state: &AppState,
    admin: &AdminPrincipal,
    settings: &HookSettings,
) -> StoreResult<Option<SystemHook>> {
    let author = admin.user();
    let audit = hook_audit(author, "system_hook_created", "Added", 0);
    let hook = state
        .store
        .save_hook(None, settings, state.clock.now(), &audit)
        .await?;
    if let Some(hook) = &hook {
        tracing::info!(hook_id = hook.id, "system hook added");
    }
    Ok(hook)
}

/// `PUT /hooks/:id`, audited in the same transaction; `None` when there is no such hook.
pub async fn update(
    state: &AppState,
    admin: &AdminPrincipal,
    id: i64,
    settings: &HookSettings,
) -> StoreResult<Option<SystemHook>> {
    let author = admin.user();
    let audit = hook_audit(author, "system_hook_updated", "Changed", id);
    state
        .store
        .save_hook(Some(id), settings, state.clock.now(), &audit)
        .await
}

/// `DELETE /hooks/:id`, audited in the same transaction; false when there was no such hook.
pub async fn delete(state: &AppState, admin: &AdminPrincipal, id: i64) -> StoreResult<bool> {
    let author = admin.user();
    let audit = hook_audit(author, "system_hook_destroyed", "Removed", id);
    state.store.delete_hook(id, state.clock.now(), &audit).await
}

/// GitLab's sample `project_create` event, which "test system hook" sends and answers with.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SampleEvent {
    event_name: &'static str,
    created_at: &'static str,
    updated_at: &'static str,
    name: &'static str,
    path: &'static str,
    path_with_namespace: &'static str,
    project_id: i64,
    owner_name: &'static str,
    owner_email: &'static str,
    project_visibility: &'static str,
}

impl Default for SampleEvent {
    fn default() -> Self {
        SampleEvent {
            event_name: "project_create",
            created_at: "2026-01-01T00:00:00Z",
            updated_at: "2026-01-01T00:00:00Z",
            name: "Ruby",
            path: "ruby",
            path_with_namespace: "jsmith/ruby",
            project_id: 1,
            owner_name: "Someone",
            owner_email: "example@gitlabhq.com",
            project_visibility: "private",
        }
    }
}

/// `POST /hooks/:id`: sends a sample event now and reports GitLab's test payload.
pub async fn test(
    outbound: &Outbound,
    hook: &SystemHook,
    budget: Duration,
) -> Result<SampleEvent, String> {
    let payload = SampleEvent::default();
    let body = serde_json::to_string(&payload).map_err(|error| error.to_string())?;
    let receiver = Receiver {
        url: &hook.settings.url,
        token: hook.settings.token.as_deref(),
        verify_tls: hook.settings.enable_ssl_verification,
    };
    let status = post(outbound, receiver, "project_create", body, budget).await?;
    if (200..300).contains(&status) {
        Ok(payload)
    } else {
        Err(format!("hook answered HTTP {status}"))
    }
}

/// The alerts due for the current license today: (event, dedupe key, payload).
pub fn license_alerts(
    license_id: i64,
    plan: &str,
    expires_on: Option<NaiveDate>,
    overage: i64,
    today: NaiveDate,
) -> Vec<(&'static str, String, Value)> {
    let mut alerts = Vec::new();
    let base = |event: &str| {
        json!({
            "event_name": event,
            "license_id": license_id,
            "plan": plan,
            "expires_at": expires_on.map(|day| day.to_string()),
        })
    };
    if let Some(expires_on) = expires_on {
        let days_left = (expires_on - today).num_days();
        if days_left <= 0 {
            alerts.push((
                "license_expired",
                format!("license_expired:{license_id}"),
                base("license_expired"),
            ));
        } else if let Some(notice) = EXPIRY_NOTICE_DAYS
            .iter()
            .rev()
            .find(|notice| days_left <= **notice)
        {
            // The tightest notice that applies: a server that was down on day 30 still
            // sends the 14-day one when it comes back on day 12.
            let mut payload = base("license_expiring");
            payload["days_remaining"] = json!(days_left);
            alerts.push((
                "license_expiring",
                format!("license_expiring:{license_id}:{notice}"),
                payload,
            ));
        }
    }
    if overage > 0 {
        let mut payload = base("license_overage");
        payload["overage"] = json!(overage);
        alerts.push((
            "license_overage",
            format!("license_overage:{license_id}"),
            payload,
        ));
    }
    alerts
}

/// Records the current license's due alerts (each once ever) and wakes the sender.
pub async fn check_license_alerts(state: &AppState) -> StoreResult<usize> {
    match licenses::current_entity(state).await? {
        Some(license) => record_license_alerts(state, &license).await,
        None => Ok(0),
    }
}

/// Records the due alerts (each once ever) of `license`, the current license as just worked
/// out by the caller, and wakes the sender.
pub async fn record_license_alerts(
    state: &AppState,
    license: &LicenseEntity,
) -> StoreResult<usize> {
    let expires_on = license
        .expires_at
        .as_deref()
        .and_then(|day| NaiveDate::parse_from_str(day, "%Y-%m-%d").ok());
    let mut recorded = 0;
    for (event, key, payload) in license_alerts(
        license.id,
        &license.plan,
        expires_on,
        license.overage,
        state.clock.today(),
    ) {
        if state
            .store
            .record_hook_event(event, &payload, Some(&key), state.clock.now())
            .await?
        {
            recorded += 1;
        }
    }
    if recorded > 0 {
        state.hooks_wake.notify_one();
    }
    Ok(recorded)
}

/// After an assignment: tells the hooks when a purchase has no free seat left (at most once
/// a day per purchase).
pub async fn check_seats_exhausted(state: &AppState, purchase: &AddOnPurchase) {
    if purchase.assigned_quantity < purchase.quantity {
        return;
    }
    let payload = json!({
        "event_name": "add_on_seats_exhausted",
        "add_on": add_ons::display_name(&purchase.add_on_name),
        "namespace": purchase.namespace_path,
        "purchased_quantity": purchase.quantity,
        "assigned_quantity": purchase.assigned_quantity,
    });
    let key = format!(
        "add_on_seats_exhausted:{}:{}",
        purchase.id,
        state.clock.today()
    );
    match state
        .store
        .record_hook_event(
            "add_on_seats_exhausted",
            &payload,
            Some(&key),
            state.clock.now(),
        )
        .await
    {
        Ok(true) => state.hooks_wake.notify_one(),
        Ok(false) => {}
        Err(error) => tracing::warn!(%error, "could not record a seats-exhausted hook event"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("date")
    }

    #[test]
    fn expiry_notices_at_30_14_7_and_1_days() {
        let expires = Some(day("2027-01-01"));
        let keys = |today: &str| -> Vec<String> {
            license_alerts(5, "premium", expires, 0, day(today))
                .into_iter()
                .map(|(_, key, _)| key)
                .collect()
        };
        assert!(keys("2026-11-30").is_empty());
        assert_eq!(keys("2026-12-02"), ["license_expiring:5:30"]);
        assert_eq!(keys("2026-12-20"), ["license_expiring:5:14"]);
        assert_eq!(keys("2026-12-25"), ["license_expiring:5:7"]);
        assert_eq!(keys("2026-12-31"), ["license_expiring:5:1"]);
        assert_eq!(keys("2027-01-01"), ["license_expired:5"]);
        assert_eq!(
            license_alerts(5, "premium", None, 2, day("2026-06-01"))[0].1,
            "license_overage:5"
        );
    }

    #[test]
    fn back_off_doubles_up_to_an_hour() {
        assert_eq!(backoff(1), TimeDelta::seconds(10));
        assert_eq!(backoff(2), TimeDelta::seconds(20));
        assert_eq!(backoff(4), TimeDelta::seconds(80));
        assert_eq!(backoff(20), TimeDelta::seconds(3600));
    }
}
