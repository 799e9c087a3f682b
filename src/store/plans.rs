//! What the planner makes of a statement: how tests prove, on both backends, that a list is
//! served by an index rather than a scan of the table.

use super::{Db, Store, StoreResult};

impl Store {
    /// The plan of `sql` with these binds (`texts` first, then `numbers`), one line per node:
    /// SQLite's `EXPLAIN QUERY PLAN` details, PostgreSQL's `EXPLAIN` lines.
    pub async fn query_plan(
        &self,
        sql: &str,
        texts: &[String],
        numbers: &[i64],
    ) -> StoreResult<String> {
        let lines: Vec<String> = match &self.db {
            Db::Sqlite(pool) => {
                let explain = format!("EXPLAIN QUERY PLAN {sql}");
                let query = sqlx::query_as::<_, (i64, i64, i64, String)>(&explain);
                let query = texts.iter().fold(query, |query, text| query.bind(text));
                let query = numbers
                    .iter()
                    .fold(query, |query, number| query.bind(number));
                query
                    .fetch_all(pool)
                    .await?
                    .into_iter()
                    .map(|(_, _, _, detail)| detail)
                    .collect()
            }
            Db::Postgres(pool) => {
                let explain = format!("EXPLAIN {sql}");
                let query = sqlx::query_scalar::<_, String>(&explain);
                let query = texts.iter().fold(query, |query, text| query.bind(text));
                let query = numbers
                    .iter()
                    .fold(query, |query, number| query.bind(number));
                query.fetch_all(pool).await?
            }
        };
        Ok(lines.join("\n"))
    }

    /// Whether user search has its indexes. On PostgreSQL they need the pg_trgm extension,
    /// which the migration installs when the database user may; when it was installed later
    /// (by a superuser), the missing indexes are created now. SQLite always has them.
    pub async fn ensure_search_indexes(&self) -> StoreResult<bool> {
        let Db::Postgres(pool) = &self.db else {
            return Ok(true);
        };
        let (installed, indexes): (bool, i64) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'),
                    (SELECT COUNT(*) FROM pg_indexes
                     WHERE indexname IN ('users_username_trigram', 'users_name_trigram'))",
        )
        .fetch_one(pool)
        .await?;
        if !installed {
            return Ok(false);
        }
        // Only when one is missing: even a no-op CREATE INDEX locks the table for a moment.
        if indexes < 2 {
            for statement in [
                "CREATE INDEX IF NOT EXISTS users_username_trigram ON users
                 USING gin (lower(username) gin_trgm_ops) WITH (fastupdate = off)",
                "CREATE INDEX IF NOT EXISTS users_name_trigram ON users
                 USING gin (lower(name) gin_trgm_ops) WITH (fastupdate = off)",
            ] {
                sqlx::query(statement).execute(pool).await?;
            }
        }
        Ok(true)
    }

    /// Refreshes the planner's statistics (`ANALYZE`), as after a bulk load.
    pub async fn analyze(&self) -> StoreResult<()> {
        on_pool!(self, pool => {
            sqlx::query("ANALYZE").execute(pool).await?;
        });
        Ok(())
    }
}
