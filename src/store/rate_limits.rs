//! The rate limits' shared counts: each process adds what it counted since its last visit and
//! reads back the total of every replica. Deliberately not a change (no cache is invalidated,
//! nothing is announced): these rows are counts, not data anyone reads.

use super::{Db, Store, StoreResult};

/// What one process counted for one key and window since it last added its counts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RateCount {
    pub key: String,
    pub window_start: i64,
    /// The window's end (Unix seconds): the row is deleted after it.
    pub expires_at: i64,
    pub delta: i64,
}

const ADD_SQLITE: &str = "INSERT INTO rate_limit_counters (key, window_start, expires_at, count)
     SELECT json_extract(value, '$.key'), json_extract(value, '$.window_start'),
            json_extract(value, '$.expires_at'), json_extract(value, '$.delta')
     FROM json_each($1) WHERE TRUE
     ON CONFLICT (key, window_start) DO UPDATE SET count = count + excluded.count
     RETURNING key, window_start, count";

// Rows in key order, so that two replicas adding the same keys lock them in the same order.
const ADD_POSTGRES: &str = "INSERT INTO rate_limit_counters (key, window_start, expires_at, count)
     SELECT x.key, x.window_start, x.expires_at, x.delta
     FROM jsonb_to_recordset($1::jsonb)
          AS x(key TEXT, window_start BIGINT, expires_at BIGINT, delta BIGINT)
     ORDER BY x.key, x.window_start
     ON CONFLICT (key, window_start)
     DO UPDATE SET count = rate_limit_counters.count + excluded.count
     RETURNING key, window_start, count";

impl Store {
    /// Adds `counts` (one statement, one JSON parameter) and returns each key's total across
    /// replicas, as (key, window start, total).
    pub async fn add_rate_limit_counts(
        &self,
        counts: &[RateCount],
    ) -> StoreResult<Vec<(String, i64, i64)>> {
        if counts.is_empty() {
            return Ok(Vec::new());
        }
        let document = serde_json::to_string(counts).unwrap_or_else(|_| "[]".into());
        self.ensure_reachable()?;
        Ok(match &self.db {
            Db::Sqlite(pool) => {
                sqlx::query_as::<_, (String, i64, i64)>(ADD_SQLITE)
                    .bind(document)
                    .fetch_all(pool)
                    .await?
            }
            Db::Postgres(pool) => {
                sqlx::query_as::<_, (String, i64, i64)>(ADD_POSTGRES)
                    .bind(document)
                    .fetch_all(pool)
                    .await?
            }
        })
    }

    /// Deletes the counts of windows that ended before `now` (Unix seconds); how many.
    pub async fn delete_expired_rate_limit_counts(&self, now: i64) -> StoreResult<u64> {
        Ok(with_pool!(self, pool => {
            sqlx::query("DELETE FROM rate_limit_counters WHERE expires_at < $1")
                .bind(now)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }
}
