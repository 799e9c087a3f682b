//! Seat alerts: which thresholds have fired for which subject, so that each crossing fires
//! once across replicas.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Db, Store, StoreResult};

/// The system-hook event a reached threshold raises.
pub const SEAT_ALERT_EVENT: &str = "seat_usage_threshold_reached";

/// The system-hook event of a true-up forecast crossing zero.
pub const TRUE_UP_FORECAST_EVENT: &str = "true_up_forecast_changed";

impl Store {
    /// The thresholds fired (and not re-armed) for each subject: (subject, threshold).
    pub async fn fired_seat_alerts(&self) -> StoreResult<Vec<(String, i32)>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, (String, i32)>(
                "SELECT subject, threshold FROM seat_alerts ORDER BY subject, threshold",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// In one transaction: re-arms `rearm` (thresholds the count is now below) and fires each
    /// of `reached` that has not fired, recording its hook event with it. The unique key on
    /// (subject, threshold) decides between replicas firing the same crossing at once: the one
    /// whose row goes in records the event; the other's insert does nothing. Returns how many
    /// fired.
    pub async fn record_seat_alerts(
        &self,
        subject: &str,
        reached: &[(i32, Value)],
        rearm: &[i32],
        now: DateTime<Utc>,
    ) -> StoreResult<usize> {
        Ok(in_write_tx!(self, tx => {
            for threshold in rearm {
                sqlx::query("DELETE FROM seat_alerts WHERE subject = $1 AND threshold = $2")
                    .bind(subject)
                    .bind(threshold)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut fired = 0;
            for (threshold, payload) in reached {
                let inserted = sqlx::query_scalar::<_, i64>(
                    "INSERT INTO seat_alerts (subject, threshold, fired_at) VALUES ($1, $2, $3)
                     ON CONFLICT (subject, threshold) DO NOTHING RETURNING id",
                )
                .bind(subject)
                .bind(threshold)
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?;
                if inserted.is_some() {
                    let _recorded = insert_hook_event!(tx, SEAT_ALERT_EVENT, payload.clone(), None::<String>, now);
                    fired += 1;
                }
            }
            fired
        }))
    }

    /// Records that the true-up forecast is over the license (`over`) or back within it, with
    /// its `true_up_forecast_changed` hook event — only when that changes: the row (subject
    /// `true_up_forecast`) goes in or out once, so of replicas checking at once one records
    /// the crossing. True when it did.
    pub async fn record_true_up_crossing(
        &self,
        over: bool,
        payload: &Value,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            let changed = if over {
                sqlx::query_scalar::<_, i64>(
                    "INSERT INTO seat_alerts (subject, threshold, fired_at) VALUES ('true_up_forecast', 0, $1)
                     ON CONFLICT (subject, threshold) DO NOTHING RETURNING id",
                )
                .bind(now)
                .fetch_optional(&mut *tx)
                .await?
                .is_some()
            } else {
                sqlx::query_scalar::<_, i64>(
                    "DELETE FROM seat_alerts WHERE subject = 'true_up_forecast' RETURNING id",
                )
                .fetch_optional(&mut *tx)
                .await?
                .is_some()
            };
            if changed {
                let _recorded = insert_hook_event!(
                    tx,
                    TRUE_UP_FORECAST_EVENT,
                    payload.clone(),
                    None::<String>,
                    now
                );
            }
            changed
        }))
    }
}
