//! Billable users: the counts, and the daily history they are recorded in.

use chrono::{DateTime, Utc};

use super::{
    Db, HistoryRow, JobEffect, Store, StoreResult, BILLABLE, BILLABLE_USERS_MEASUREMENT,
    GUEST_ACCESS_LEVEL,
};

/// One billable-user measurement (a day already measured keeps its first count).
pub(super) const INSERT_MEASUREMENT: &str =
    "INSERT INTO usage_trends_measurements (identifier, count, recorded_at)
     VALUES ($1, $2, $3) ON CONFLICT (identifier, recorded_at) DO NOTHING";

/// One day of the billable-user history.
pub(super) const INSERT_HISTORY: &str =
    "INSERT INTO historical_data (recorded_at, active_user_count) VALUES ($1, $2)";

impl Store {
    /// GitLab's `User.billable` count, in one query: active humans and service users, and on
    /// Ultimate only those with a membership above Guest.
    pub async fn count_billable_users(&self, ultimate: bool) -> StoreResult<i64> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar::<_, i64>(&format!("SELECT COUNT(*) FROM users u WHERE {BILLABLE}"))
                .bind(ultimate)
                .bind(GUEST_ACCESS_LEVEL)
                .fetch_one(pool)
                .await?
        }))
    }

    /// Whether there are at least `n` billable users (counted only that far, as GitLab's
    /// `billable.limit(n).count`).
    pub async fn billable_at_least(&self, n: i64, ultimate: bool) -> StoreResult<bool> {
        let counted = with_pool!(self, pool => {
            sqlx::query_scalar::<_, i64>(&format!(
                "SELECT COUNT(*) FROM (SELECT 1 FROM users u WHERE {BILLABLE} LIMIT $3) AS capped"
            ))
            .bind(ultimate)
            .bind(GUEST_ACCESS_LEVEL)
            .bind(n)
            .fetch_one(pool)
            .await?
        });
        Ok(counted >= n)
    }

    /// Which of `ids` are billable users (GitLab's `using_license_seat?`), by the same rule
    /// as [`Store::count_billable_users`].
    pub async fn billable_among(
        &self,
        ids: &[i64],
        ultimate: bool,
    ) -> StoreResult<std::collections::HashSet<i64>> {
        if ids.is_empty() {
            return Ok(std::collections::HashSet::new());
        }
        let list = (3..3 + ids.len())
            .map(|index| format!("${index}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!("SELECT u.id FROM users u WHERE u.id IN ({list}) AND {BILLABLE}");
        Ok(with_pool!(self, pool => {
            let mut query = sqlx::query_scalar::<_, i64>(&sql)
                .bind(ultimate)
                .bind(GUEST_ACCESS_LEVEL);
            for id in ids {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await?.into_iter().collect()
        }))
    }

    /// The newest billable-users measurement.
    pub async fn latest_billable_measurement(&self) -> StoreResult<Option<i64>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar::<_, i64>(
                "SELECT count FROM usage_trends_measurements
                 WHERE identifier = $1 ORDER BY recorded_at DESC, id DESC LIMIT 1",
            )
            .bind(BILLABLE_USERS_MEASUREMENT)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Stores a billable-users measurement; a second one at the same instant is ignored.
    pub async fn record_billable_measurement(
        &self,
        count: i64,
        recorded_at: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.record_recount(count, recorded_at, None).await
    }

    /// What a recount job commits — the measurement and the seat ledger's entries under
    /// `plan` — without a job (benchmarks, tools).
    pub async fn record_recount(
        &self,
        count: i64,
        recorded_at: DateTime<Utc>,
        plan: Option<&str>,
    ) -> StoreResult<()> {
        let effect = JobEffect::Measurement {
            count,
            recorded_at,
            plan: plan.map(str::to_string),
        };
        in_write_tx!(self, tx => {
            write_job_effect!(tx, &effect);
        });
        self.continue_ledger_scan(recorded_at).await?;
        Ok(())
    }

    /// The largest daily snapshot with `from <= recorded_at <= to`, or 0.
    pub async fn historical_max(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> StoreResult<i64> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MAX(active_user_count) FROM historical_data
                 WHERE recorded_at >= $1 AND recorded_at <= $2",
            )
            .bind(from)
            .bind(to)
            .fetch_one(pool)
            .await?
            .unwrap_or(0)
        }))
    }

    /// Snapshots with `from <= recorded_at <= to`, oldest row first (GitLab's `find_each`).
    pub async fn history_between(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<HistoryRow>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, HistoryRow>(
                "SELECT recorded_at, active_user_count FROM historical_data
                 WHERE recorded_at >= $1 AND recorded_at <= $2 ORDER BY id",
            )
            .bind(from)
            .bind(to)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Adds history rows not already present (same instant and count); returns how many were
    /// new. One transaction, so an import lands whole or not at all.
    pub async fn import_history(&self, rows: &[HistoryRow]) -> StoreResult<usize> {
        Ok(in_write_tx!(self, tx => {
            let mut inserted = 0;
            for row in rows {
                inserted += sqlx::query(
                    "INSERT INTO historical_data (recorded_at, active_user_count)
                     SELECT $1, $2 WHERE NOT EXISTS (
                         SELECT 1 FROM historical_data WHERE recorded_at = $1 AND active_user_count = $2)",
                )
                .bind(row.recorded_at)
                .bind(row.active_user_count)
                .execute(&mut *tx)
                .await?
                .rows_affected() as usize;
            }
            inserted
        }))
    }

    /// Adds daily snapshots (tests and imports).
    pub async fn insert_history(&self, rows: &[HistoryRow]) -> StoreResult<()> {
        in_write_tx!(self, tx => {
            for row in rows {
                write_job_effect!(tx, JobEffect::History(row.clone()));
            }
        });
        Ok(())
    }
}
