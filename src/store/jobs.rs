//! The job queue: enqueued, claimed exactly once, finished or retried.

use chrono::{DateTime, Utc};

use crate::domain::jobs::{JobKind, JobState};

use super::{Db, JobEffect, JobRow, JobStatus, Store, StoreResult};

/// Which jobs a worker claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOf {
    Any,
    Only(JobKind),
    AllBut(JobKind),
}

impl Store {
    /// Queues a job; with a `unique_key` a second insert of the same key is a no-op (false),
    /// which is how replicas agree on scheduled runs.
    pub async fn enqueue_job(
        &self,
        kind: JobKind,
        unique_key: Option<&str>,
        run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        self.enqueue_subject_job(kind, unique_key, None, run_at, now)
            .await
    }

    /// [`Store::enqueue_job`] for a job about one thing (`subject_id`: a fleet sync's
    /// instance).
    pub async fn enqueue_subject_job(
        &self,
        kind: JobKind,
        unique_key: Option<&str>,
        subject_id: Option<i64>,
        run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            sqlx::query(
                "INSERT INTO jobs (kind, unique_key, subject_id, run_at, state, attempts, created_at)
                 VALUES ($1, $2, $3, $4, 'pending', 0, $5)
                 ON CONFLICT (unique_key) DO NOTHING",
            )
            .bind(kind.as_str())
            .bind(unique_key)
            .bind(subject_id)
            .bind(run_at)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0
        }))
    }

    /// Claims the oldest due job (or one whose worker's lease ran out) for `lease`.
    pub async fn claim_job(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<JobRow>> {
        self.claim_job_of(ClaimOf::Any, now, lease_until).await
    }

    /// [`Store::claim_job`] among the kinds `of` names: the job worker and the fleet-sync
    /// runner each claim their own.
    pub async fn claim_job_of(
        &self,
        of: ClaimOf,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<JobRow>> {
        let (condition, kind) = match of {
            ClaimOf::Any => ("", None),
            ClaimOf::Only(kind) => (" AND kind = $3", Some(kind.as_str())),
            ClaimOf::AllBut(kind) => (" AND kind <> $3", Some(kind.as_str())),
        };
        let pick = format!(
            "SELECT id FROM jobs
             WHERE ((state = 'pending' AND run_at <= $1) OR (state = 'running' AND locked_until < $1)){condition}
             ORDER BY run_at, id LIMIT 1"
        );
        let claim = |pick: &str| {
            format!(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_until = $2
                 WHERE id = ({pick})
                 RETURNING id, kind, unique_key, run_at, attempts, subject_id"
            )
        };
        Ok(match &self.db {
            // One writer at a time: the statement is atomic as it stands.
            Db::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let sql = claim(&pick);
                let query = sqlx::query_as::<_, JobRow>(&sql)
                    .bind(now)
                    .bind(lease_until);
                let query = match kind {
                    Some(kind) => query.bind(kind),
                    None => query,
                };
                let job = query.fetch_optional(&mut *tx).await?;
                tx.commit().await?;
                job
            }
            // Concurrent workers skip rows another transaction holds instead of waiting.
            Db::Postgres(pool) => {
                let sql = claim(&format!("{pick} FOR UPDATE SKIP LOCKED"));
                let query = sqlx::query_as::<_, JobRow>(&sql)
                    .bind(now)
                    .bind(lease_until);
                let query = match kind {
                    Some(kind) => query.bind(kind),
                    None => query,
                };
                query.fetch_optional(pool).await?
            }
        })
    }

    /// Commits a claimed job's effect together with its completion. False (and nothing
    /// written) when the claim was lost meanwhile, so the effect happens exactly once.
    pub async fn finish_job(
        &self,
        job: &JobRow,
        effect: &JobEffect,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        macro_rules! finish {
            ($kind:ident, $begin:expr) => {{
                let mut tx = $begin;
                let owned = sqlx::query(
                    "UPDATE jobs SET state = 'done', finished_at = $3, locked_until = NULL, last_error = NULL
                     WHERE id = $1 AND state = 'running' AND attempts = $2",
                )
                .bind(job.id)
                .bind(job.attempts)
                .bind(now)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if !owned {
                    return Ok(false);
                }
                write_job_effect!(tx, effect);
                announce_change!($kind, tx);
                tx.commit().await?;
                self.changed();
                Ok(true)
            }};
        }
        match &self.db {
            Db::Sqlite(pool) => finish!(sqlite, pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => finish!(postgres, pool.begin().await?),
        }
    }

    /// Gives a failed job back to the queue at `retry_at`, or gives up on it.
    pub async fn fail_job(
        &self,
        job: &JobRow,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        in_write_tx!(self, tx => {
            sqlx::query(
                "UPDATE jobs SET state = $3, run_at = COALESCE($4, run_at), locked_until = NULL, last_error = $5
                 WHERE id = $1 AND attempts = $2",
            )
            .bind(job.id)
            .bind(job.attempts)
            .bind(if retry_at.is_some() {
                JobState::Pending
            } else {
                JobState::Failed
            }
            .as_str())
            .bind(retry_at)
            .bind(error)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// Every job, oldest first (tests and operators' inspection).
    pub async fn jobs(&self) -> StoreResult<Vec<JobStatus>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, JobStatus>(
                "SELECT id, kind, unique_key, run_at, state, attempts, last_error FROM jobs ORDER BY id",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// The unique keys of scheduled jobs due at or after `since` (one read per scheduler tick,
    /// so that an idle tick writes nothing).
    pub async fn scheduled_job_keys(
        &self,
        since: DateTime<Utc>,
    ) -> StoreResult<std::collections::HashSet<String>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar::<_, String>(
                "SELECT unique_key FROM jobs WHERE unique_key IS NOT NULL AND run_at >= $1",
            )
            .bind(since)
            .fetch_all(pool)
            .await?
            .into_iter()
            .collect()
        }))
    }
}
