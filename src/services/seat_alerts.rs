//! Seat alerts before the overage: when the seats in use cross a threshold (80, 90 and 100 %
//! by default, `SEAT_ALERT_THRESHOLDS`) of the license's seats or of an add-on purchase's,
//! a `seat_usage_threshold_reached` system-hook event fires — once per crossing, across
//! replicas; a count back below a threshold re-arms it. Checked after every recount, license
//! change and seat assignment.

use serde::Serialize;
use serde_json::json;

use crate::domain::add_ons;
use crate::domain::seats::{alert_levels, utilization};
use crate::services::licenses;
use crate::state::AppState;
use crate::store::StoreResult;

/// One thing whose seats are counted: the current license, or an active add-on purchase.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SeatUsage {
    /// `license:<id>` or `add_on_purchase:<id>`.
    pub subject: String,
    /// `license` or `add_on`.
    pub kind: &'static str,
    /// What the page calls it: "License seats", "GitLab Duo Pro seats (instance)".
    pub label: String,
    /// Seats in use: billable users (the latest count), or assigned add-on seats.
    pub used: i64,
    /// Seats there are.
    pub capacity: i64,
    /// `used / capacity`.
    pub utilization: f64,
    /// The configured thresholds reached now (percentages).
    pub reached: Vec<u32>,
    /// The thresholds that have fired (a hook event was sent) and not re-armed since.
    pub fired: Vec<u32>,
}

/// The current license (when it has a seat limit) and every active add-on purchase, with
/// their seats in use.
async fn measured(state: &AppState) -> StoreResult<Vec<SeatUsage>> {
    let today = state.clock.today();
    let thresholds = &state.config.seat_alert_thresholds;
    let mut usages = Vec::new();
    let mut add = |subject: String, kind, label: String, used: i64, capacity: i64| {
        let reached = alert_levels(used, capacity, thresholds)
            .map(|levels| levels.reached)
            .unwrap_or_default();
        usages.push(SeatUsage {
            subject,
            kind,
            label,
            used,
            capacity,
            utilization: utilization(used, capacity),
            reached,
            fired: Vec::new(),
        });
    };
    if let Some((row, license)) = licenses::current(state, today).await? {
        if let Some(seats) = license.restrictions.active_user_count {
            let used = licenses::daily_billable_users(state, Some(&license)).await?;
            add(
                format!("license:{}", row.id),
                "license",
                "License seats".to_string(),
                used,
                i64::try_from(seats).unwrap_or(i64::MAX),
            );
        }
    }
    for purchase in state.store.all_add_on_purchases().await? {
        if !add_ons::is_active(purchase.started_on, purchase.expires_on, today) {
            continue;
        }
        let scope = purchase.namespace_path.as_deref().unwrap_or("instance");
        add(
            format!("add_on_purchase:{}", purchase.id),
            "add_on",
            format!(
                "{} seats ({scope})",
                add_ons::product_name(&purchase.add_on_name)
            ),
            purchase.assigned_quantity,
            purchase.quantity,
        );
    }
    Ok(usages)
}

/// Every measured subject with the thresholds it has reached and those that have fired.
pub async fn status(state: &AppState) -> StoreResult<Vec<SeatUsage>> {
    let mut usages = measured(state).await?;
    let fired = state.store.fired_seat_alerts().await?;
    for usage in &mut usages {
        usage.fired = fired
            .iter()
            .filter(|(subject, _)| *subject == usage.subject)
            .filter_map(|(_, threshold)| u32::try_from(*threshold).ok())
            .collect();
    }
    Ok(usages)
}

/// Fires the thresholds newly reached and re-arms those fallen below; wakes the hook sender
/// when one fired. Writes nothing when nothing changed. Returns how many fired.
pub async fn check(state: &AppState) -> StoreResult<usize> {
    let thresholds = &state.config.seat_alert_thresholds;
    if thresholds.is_empty() {
        return Ok(0);
    }
    let now = state.clock.now();
    let mut fired = 0;
    for usage in status(state).await? {
        let Some(levels) = alert_levels(usage.used, usage.capacity, thresholds) else {
            continue;
        };
        let new: Vec<(i32, serde_json::Value)> = levels
            .reached
            .iter()
            .filter(|threshold| !usage.fired.contains(threshold))
            .map(|threshold| {
                let payload = json!({
                    "event_name": crate::store::SEAT_ALERT_EVENT,
                    "subject": usage.kind,
                    "seats": usage.label,
                    "threshold_percent": threshold,
                    "used": usage.used,
                    "capacity": usage.capacity,
                    "utilization_percent": (usage.utilization * 1000.0).round() / 10.0,
                    "created_at": crate::domain::licenses::timestamp_text(now),
                });
                (i32::try_from(*threshold).unwrap_or(i32::MAX), payload)
            })
            .collect();
        let rearm: Vec<i32> = levels
            .below
            .iter()
            .filter(|threshold| usage.fired.contains(threshold))
            .filter_map(|threshold| i32::try_from(*threshold).ok())
            .collect();
        if new.is_empty() && rearm.is_empty() {
            continue;
        }
        fired += state
            .store
            .record_seat_alerts(&usage.subject, &new, &rearm, now)
            .await?;
    }
    if fired > 0 {
        state.hooks_wake.notify_one();
    }
    Ok(fired)
}

/// [`check`], for callers whose own work is done: a failure is logged, not returned.
pub async fn check_quietly(state: &AppState) {
    if let Err(error) = check(state).await {
        tracing::warn!(%error, "could not check the seat alerts");
    }
}
