//! The fleet's rows: instances, the users of each one's latest complete snapshot, the pages of
//! a sync in progress, and the figures computed when a snapshot changes.
//!
//! A sync stages its pages (one transaction per page) and swaps them in with its completion in
//! one transaction: the previous snapshot answers until then, and a sync cut short leaves
//! nothing behind but staged rows the next sync of the instance drops. The swap, an
//! instance's removal and an import recompute who is the same person across instances
//! (`domain::fleet::match_people`) in the same transaction.

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::fleet::{Account, FleetFigures};

use super::{Db, JobRow, Store, StoreError, StoreResult, Write};

/// The stored summary row's name.
const SUMMARY: &str = "fleet";
/// The system-hook event of a sync that failed.
pub const FLEET_SYNC_FAILED_EVENT: &str = "fleet_sync_failed";
/// The system-hook event raised when the subset assumption stops holding.
pub const FLEET_SUBSET_VIOLATED_EVENT: &str = "fleet_subset_violated";
/// Accounts updated per statement when person facts change.
const FACTS_PER_STATEMENT: usize = 250;
/// Staged users inserted per statement.
const STAGED_PER_STATEMENT: usize = 100;

/// A watched instance.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FleetInstance {
    pub id: i64,
    pub name: String,
    /// `None` for an offline instance (imported from files).
    pub url: Option<String>,
    /// Sealed (see `secrets.rs`); never shown.
    pub token_ciphertext: Option<String>,
    pub gitlab_version: Option<String>,
    pub license_plan: Option<String>,
    pub license_seats: Option<i64>,
    pub license_starts_on: Option<NaiveDate>,
    pub license_expires_on: Option<NaiveDate>,
    pub license_billable_users: Option<i64>,
    pub users_count: Option<i64>,
    pub billable_users: Option<i64>,
    pub billability_source: Option<String>,
    pub sync_status: String,
    pub sync_started_at: Option<DateTime<Utc>>,
    pub sync_finished_at: Option<DateTime<Utc>>,
    pub sync_error: Option<String>,
    pub last_success_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const INSTANCE_COLUMNS: &str = "id, name, url, token_ciphertext, gitlab_version, license_plan, license_seats, license_starts_on, license_expires_on, license_billable_users, users_count, billable_users, billability_source, sync_status, sync_started_at, sync_finished_at, sync_error, last_success_at, created_at, updated_at";

/// A change to an instance's registration; `None` keeps a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetInstanceChanges {
    pub name: Option<String>,
    pub url: Option<String>,
    pub token_ciphertext: Option<String>,
}

/// One user of an instance, as staged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedUser {
    pub upstream_id: i64,
    pub username: String,
    pub name: String,
    pub email: String,
    pub state: String,
    pub bot: bool,
    pub is_admin: bool,
    pub billable: bool,
    pub identities: String,
    pub last_activity_on: Option<NaiveDate>,
    pub created_at: Option<DateTime<Utc>>,
}

/// What a complete sync (or import) found besides its users.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SnapshotFacts {
    pub gitlab_version: Option<String>,
    pub license_plan: Option<String>,
    pub license_seats: Option<i64>,
    pub license_starts_on: Option<NaiveDate>,
    pub license_expires_on: Option<NaiveDate>,
    pub license_billable_users: Option<i64>,
    /// `instance`, `computed`, or `mixed`.
    pub billability_source: Option<String>,
}

/// One account of the fleet, as the people list shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FleetAccount {
    pub person_key: String,
    pub instance_id: i64,
    pub upstream_id: i64,
    pub username: String,
    pub name: String,
    pub email: String,
    pub state: String,
    pub bot: bool,
    pub is_admin: bool,
    pub billable: bool,
    pub identities: String,
    pub last_activity_on: Option<NaiveDate>,
    pub person_billable: bool,
    pub person_outside_largest: bool,
}

/// Accounts listed per person on a people page (a person's `account_count` has them all).
pub const ACCOUNTS_SHOWN_PER_PERSON: i64 = 50;

/// A person's presence on one instance.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PersonPresence {
    pub person_key: String,
    pub instance_id: i64,
    /// 1 when the person is billable there.
    pub billable: i64,
    pub accounts: i64,
}

/// The people list's filters (each served by its own index).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeopleFilter {
    pub instance_id: Option<i64>,
    pub billable: Option<bool>,
    pub outside_largest: Option<bool>,
}

impl PeopleFilter {
    /// `WHERE …` over `fleet_users` for the filters set, binding `$2`, `$3`, `$4` in that
    /// order (`$1` is the cursor); unset filters bind nothing and cost nothing.
    fn where_clause(&self) -> String {
        let mut conditions = vec!["person_key > $1".to_string()];
        if self.instance_id.is_some() {
            conditions.push("instance_id = $2".into());
        }
        if self.billable.is_some() {
            conditions.push("person_billable = $3".into());
        }
        if self.outside_largest.is_some() {
            conditions.push("person_outside_largest = $4".into());
        }
        format!("WHERE {}", conditions.join(" AND "))
    }
}

/// What a swap did to the fleet's figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recomputed {
    pub figures: FleetFigures,
    /// The subset assumption held before and does not now (the hook event was raised).
    pub subset_violated: bool,
}

/// Reads every account, matches people, writes the facts that changed, stores the summary and
/// raises `fleet_subset_violated` when the subset stops holding — all inside the open
/// transaction `$tx`. Evaluates to [`Recomputed`].
macro_rules! recompute_fleet {
    ($tx:expr, $now:expr) => {{
        let instances: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM fleet_instances WHERE last_success_at IS NOT NULL ORDER BY id",
        )
        .fetch_all(&mut *$tx)
        .await?;
        // Read as a stream into compact accounts: the stored key is kept as a fingerprint.
        let mut accounts = Vec::new();
        {
            let mut rows = sqlx::query_as::<_, (i64, i64, i64, String, String, bool, String, bool, bool)>(
                "SELECT id, instance_id, upstream_id, lower(email), identities, billable, person_key, person_billable, person_outside_largest FROM fleet_users",
            )
            .fetch(&mut *$tx);
            while let Some((row_id, instance_id, upstream_id, email, identities, billable, key, person_billable, outside)) =
                futures_util::TryStreamExt::try_next(&mut rows).await?
            {
                accounts.push(Account {
                    row_id,
                    instance_id,
                    upstream_id,
                    email,
                    identities,
                    billable,
                    stored: (crate::domain::fleet::key_hash(&key), person_billable, outside),
                });
            }
        }
        let (changed, figures) = crate::domain::fleet::match_people(&instances, &accounts);
        drop(accounts);
        for chunk in changed.chunks(FACTS_PER_STATEMENT) {
            let values = (0..chunk.len())
                .map(|i| format!("(CAST(${} AS BIGINT), ${}, CAST(${} AS BOOLEAN), CAST(${} AS BOOLEAN))", 4 * i + 1, 4 * i + 2, 4 * i + 3, 4 * i + 4))
                .collect::<Vec<_>>()
                .join(", ");
            let sql = format!(
                "WITH v (id, k, b, o) AS (VALUES {values})
                 UPDATE fleet_users SET person_key = v.k, person_billable = v.b, person_outside_largest = v.o
                 FROM v WHERE fleet_users.id = v.id"
            );
            let mut query = sqlx::query(&sql);
            for fact in chunk {
                query = query
                    .bind(fact.row_id)
                    .bind(&fact.person_key)
                    .bind(fact.person_billable)
                    .bind(fact.person_outside_largest);
            }
            query.execute(&mut *$tx).await?;
        }
        let held_before: Option<bool> =
            sqlx::query_scalar("SELECT subset_holds FROM fleet_summaries WHERE name = $1")
                .bind(SUMMARY)
                .fetch_optional(&mut *$tx)
                .await?;
        let summary = serde_json::to_string(&figures).unwrap_or_default();
        sqlx::query(
            "INSERT INTO fleet_summaries (name, summary, subset_holds, computed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET summary = excluded.summary, subset_holds = excluded.subset_holds, computed_at = excluded.computed_at",
        )
        .bind(SUMMARY)
        .bind(&summary)
        .bind(figures.subset_holds)
        .bind($now)
        .execute(&mut *$tx)
        .await?;
        let subset_violated = held_before.unwrap_or(true) && !figures.subset_holds;
        if subset_violated {
            let largest: Option<String> = match figures.largest_instance_id {
                Some(id) => sqlx::query_scalar("SELECT name FROM fleet_instances WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *$tx)
                    .await?,
                None => None,
            };
            let payload = serde_json::json!({
                "event_name": FLEET_SUBSET_VIOLATED_EVENT,
                "largest_instance": largest,
                "people_outside_largest": figures.people_outside_largest,
                "unique_billable_users": figures.unique_billable_users,
                "created_at": crate::domain::licenses::timestamp_text($now),
            });
            let _recorded = insert_hook_event!($tx, FLEET_SUBSET_VIOLATED_EVENT, payload, None::<String>, $now);
        }
        Recomputed { figures, subset_violated }
    }};
}

impl Store {
    pub async fn fleet_instances(&self) -> StoreResult<Vec<FleetInstance>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, FleetInstance>(&format!("SELECT {INSTANCE_COLUMNS} FROM fleet_instances ORDER BY id"))
                .fetch_all(pool)
                .await?
        }))
    }

    pub async fn fleet_instance(&self, id: i64) -> StoreResult<Option<FleetInstance>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, FleetInstance>(&format!("SELECT {INSTANCE_COLUMNS} FROM fleet_instances WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// An instance by name, case-insensitively (names are unique that way).
    pub async fn fleet_instance_named(&self, name: &str) -> StoreResult<Option<FleetInstance>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, FleetInstance>(&format!("SELECT {INSTANCE_COLUMNS} FROM fleet_instances WHERE lower(name) = lower($1)"))
                .bind(name)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Registers an instance; a taken name is a [`StoreError::Conflict`].
    pub async fn create_fleet_instance(
        &self,
        name: &str,
        url: Option<&str>,
        token_ciphertext: Option<&str>,
        write: Write<'_>,
    ) -> StoreResult<FleetInstance> {
        Ok(in_write_tx!(self, tx => {
            let instance = sqlx::query_as::<_, FleetInstance>(&format!(
                "INSERT INTO fleet_instances (name, url, token_ciphertext, sync_status, created_at, updated_at)
                 VALUES ($1, $2, $3, 'never', $4, $4) RETURNING {INSTANCE_COLUMNS}"
            ))
            .bind(name)
            .bind(url)
            .bind(token_ciphertext)
            .bind(write.at)
            .fetch_one(&mut *tx)
            .await
            .map_err(name_taken)?;
            insert_audit!(tx, write.audit_of(instance.id).as_ref(), write.at);
            instance
        }))
    }

    /// Changes an instance's registration; `None` when it does not exist.
    pub async fn update_fleet_instance(
        &self,
        id: i64,
        changes: &FleetInstanceChanges,
        write: Write<'_>,
    ) -> StoreResult<Option<FleetInstance>> {
        Ok(in_write_tx!(self, tx => {
            let updated = sqlx::query_as::<_, FleetInstance>(&format!(
                "UPDATE fleet_instances SET
                    name = COALESCE($2, name),
                    url = COALESCE($3, url),
                    token_ciphertext = COALESCE($4, token_ciphertext),
                    updated_at = $5
                 WHERE id = $1 RETURNING {INSTANCE_COLUMNS}"
            ))
            .bind(id)
            .bind(changes.name.as_deref())
            .bind(changes.url.as_deref())
            .bind(changes.token_ciphertext.as_deref())
            .bind(write.at)
            .fetch_optional(&mut *tx)
            .await
            .map_err(name_taken)?;
            if updated.is_some() {
                insert_audit!(tx, write.audit, write.at);
            }
            updated
        }))
    }

    /// Removes an instance with its snapshot and recomputes the fleet without it; false when
    /// it did not exist.
    pub async fn delete_fleet_instance(&self, id: i64, write: Write<'_>) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            sqlx::query("DELETE FROM fleet_staged_users WHERE instance_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM fleet_users WHERE instance_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let deleted = execute_audited!(
                tx,
                sqlx::query("DELETE FROM fleet_instances WHERE id = $1").bind(id),
                write
            );
            if deleted {
                let _recomputed = recompute_fleet!(tx, write.at);
            }
            deleted
        }))
    }

    /// Queues a sync of `instance_id` now, unless one is already waiting or running (an
    /// on-demand job has no unique key: this check is what keeps it single, and a request
    /// made while a sync runs is answered by that sync); the instance shows `queued` until a
    /// worker takes it. Returns whether a job was added.
    pub async fn queue_fleet_sync(
        &self,
        instance_id: i64,
        job_kind: &str,
        write: Write<'_>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            let waiting: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM jobs WHERE kind = $1 AND subject_id = $2 AND state IN ('pending', 'running') LIMIT 1",
            )
            .bind(job_kind)
            .bind(instance_id)
            .fetch_optional(&mut *tx)
            .await?;
            let added = waiting.is_none()
                && sqlx::query(
                    "INSERT INTO jobs (kind, subject_id, run_at, state, attempts, created_at)
                     VALUES ($1, $2, $3, 'pending', 0, $3)",
                )
                .bind(job_kind)
                .bind(instance_id)
                .bind(write.at)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    > 0;
            sqlx::query(
                "UPDATE fleet_instances SET sync_status = 'queued' WHERE id = $1 AND sync_status <> 'running'",
            )
            .bind(instance_id)
            .execute(&mut *tx)
            .await?;
            insert_audit!(tx, write.audit, write.at);
            added
        }))
    }

    /// Marks `instance_id`'s sync started by `job`, unless an older job's sync of it holds a
    /// live lease (then false: this run is skipped). Drops pages staged by earlier syncs
    /// that never finished.
    pub async fn begin_fleet_sync(
        &self,
        job: &JobRow,
        instance_id: i64,
        stage: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            // Of two syncs claimed at once, the older job goes on and the newer one skips.
            let busy: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM jobs WHERE kind = $1 AND subject_id = $2 AND state = 'running' AND id < $3 AND locked_until > $4 LIMIT 1",
            )
            .bind(&job.kind)
            .bind(instance_id)
            .bind(job.id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if busy.is_none() {
                sqlx::query("DELETE FROM fleet_staged_users WHERE instance_id = $1 AND stage <> $2")
                    .bind(instance_id)
                    .bind(stage)
                    .execute(&mut *tx)
                    .await?;
                sqlx::query(
                    "UPDATE fleet_instances SET sync_status = 'running', sync_started_at = $2 WHERE id = $1",
                )
                .bind(instance_id)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            busy.is_none()
        }))
    }

    /// Stages one page of users (one transaction).
    pub async fn stage_fleet_users(
        &self,
        instance_id: i64,
        stage: &str,
        users: &[StagedUser],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        if users.is_empty() {
            return Ok(());
        }
        in_write_tx!(self, tx => {
            for chunk in users.chunks(STAGED_PER_STATEMENT) {
                let values = (0..chunk.len())
                    .map(|i| {
                        let b = 11 * i + 4;
                        format!(
                            "($1, $2, $3, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                            b, b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9, b + 10
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                // A user listed again on a later page (the instance's users shifted while it
                // was read) keeps the later copy.
                let sql = format!(
                    "INSERT INTO fleet_staged_users (instance_id, stage, staged_at, upstream_id, username, name, email, state, bot, is_admin, billable, identities, last_activity_on, created_at)
                     VALUES {values}
                     ON CONFLICT (instance_id, stage, upstream_id) DO UPDATE SET
                        username = excluded.username, name = excluded.name, email = excluded.email,
                        state = excluded.state, bot = excluded.bot, is_admin = excluded.is_admin,
                        billable = excluded.billable, identities = excluded.identities,
                        last_activity_on = excluded.last_activity_on, created_at = excluded.created_at"
                );
                let mut query = sqlx::query(&sql).bind(instance_id).bind(stage).bind(now);
                for user in chunk {
                    query = query
                        .bind(user.upstream_id)
                        .bind(&user.username)
                        .bind(&user.name)
                        .bind(&user.email)
                        .bind(&user.state)
                        .bind(user.bot)
                        .bind(user.is_admin)
                        .bind(user.billable)
                        .bind(&user.identities)
                        .bind(user.last_activity_on)
                        .bind(user.created_at);
                }
                query.execute(&mut *tx).await?;
            }
        });
        Ok(())
    }

    /// Drops the pages a sync staged (it failed or was abandoned).
    pub async fn drop_fleet_stage(&self, instance_id: i64, stage: &str) -> StoreResult<()> {
        in_write_tx!(self, tx => {
            sqlx::query("DELETE FROM fleet_staged_users WHERE instance_id = $1 AND stage = $2")
                .bind(instance_id)
                .bind(stage)
                .execute(&mut *tx)
                .await?;
        });
        Ok(())
    }

    /// Renews a running job's lease; false when its claim was lost (the work must stop).
    pub async fn extend_job_lease(&self, job: &JobRow, until: DateTime<Utc>) -> StoreResult<bool> {
        Ok(with_pool!(self, pool => {
            sqlx::query(
                "UPDATE jobs SET locked_until = $3 WHERE id = $1 AND attempts = $2 AND state = 'running'",
            )
            .bind(job.id)
            .bind(job.attempts)
            .bind(until)
            .execute(pool)
            .await?
            .rows_affected()
                == 1
        }))
    }

    /// Swaps the staged snapshot of `instance_id` in, in one transaction with the job's
    /// completion (when a job ran it: guarded by its claim, so it lands once) and the fleet's
    /// recomputation. `staged` is how many users the sync staged: none found means another
    /// sync of the instance dropped the stage, and nothing is swapped. `Ok(None)` when the claim
    /// was lost or the instance removed meanwhile.
    pub async fn swap_fleet_snapshot(
        &self,
        job: Option<&JobRow>,
        instance_id: i64,
        stage: &str,
        staged: i64,
        facts: &SnapshotFacts,
        write: Write<'_>,
    ) -> StoreResult<Option<Recomputed>> {
        Ok(in_write_tx!(self, tx => 'swap: {
            if let Some(job) = job {
                let owned = sqlx::query(
                    "UPDATE jobs SET state = 'done', finished_at = $3, locked_until = NULL, last_error = NULL
                     WHERE id = $1 AND state = 'running' AND attempts = $2",
                )
                .bind(job.id)
                .bind(job.attempts)
                .bind(write.at)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if !owned {
                    break 'swap None;
                }
            }
            let found: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM fleet_staged_users WHERE instance_id = $1 AND stage = $2",
            )
            .bind(instance_id)
            .bind(stage)
            .fetch_one(&mut *tx)
            .await?;
            // Stages are dropped whole, never in part: one gone while its pages were read was
            // dropped by another sync of the instance.
            if found == 0 && staged > 0 {
                return Err(StoreError::Conflict(
                    "another sync of this instance ran at the same time; nothing was changed".into(),
                ));
            }
            sqlx::query("DELETE FROM fleet_users WHERE instance_id = $1")
                .bind(instance_id)
                .execute(&mut *tx)
                .await?;
            // Each account starts with the facts it has when it is matched by its own
            // address alone — right for most, so the matching below rewrites only the
            // accounts another instance changes. (The stage holds each user once.)
            sqlx::query(
                "INSERT INTO fleet_users (instance_id, upstream_id, username, name, email, state, bot, is_admin, billable, identities, last_activity_on, created_at, person_key, person_billable, person_outside_largest)
                 SELECT instance_id, upstream_id, username, name, email, state, bot, is_admin, billable, identities, last_activity_on, created_at,
                        CASE WHEN email <> '' THEN lower(email) ELSE 'account:' || instance_id || ':' || upstream_id END, billable, FALSE
                 FROM fleet_staged_users WHERE instance_id = $1 AND stage = $2",
            )
            .bind(instance_id)
            .bind(stage)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM fleet_staged_users WHERE instance_id = $1 AND stage = $2")
                .bind(instance_id)
                .bind(stage)
                .execute(&mut *tx)
                .await?;
            let updated = sqlx::query(
                "UPDATE fleet_instances SET
                    gitlab_version = $2, license_plan = $3, license_seats = $4, license_starts_on = $5,
                    license_expires_on = $6, license_billable_users = $7, billability_source = $8,
                    users_count = (SELECT COUNT(*) FROM fleet_users WHERE instance_id = $1),
                    billable_users = (SELECT COUNT(*) FROM fleet_users WHERE instance_id = $1 AND billable),
                    sync_status = 'success', sync_finished_at = $9, sync_error = NULL, last_success_at = $9
                 WHERE id = $1",
            )
            .bind(instance_id)
            .bind(facts.gitlab_version.as_deref())
            .bind(facts.license_plan.as_deref())
            .bind(facts.license_seats)
            .bind(facts.license_starts_on)
            .bind(facts.license_expires_on)
            .bind(facts.license_billable_users)
            .bind(facts.billability_source.as_deref())
            .bind(write.at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 0 {
                // Removed while it synced: the removal already recomputed the fleet.
                break 'swap None;
            }
            insert_audit!(tx, write.audit, write.at);
            Some(recompute_fleet!(tx, write.at))
        }))
    }

    /// Refreshes the planner's statistics of the fleet's accounts after a snapshot replaced a
    /// large part of them, so the people lists keep their index plans (on PostgreSQL, stale
    /// estimates after a bulk swap also bring JIT compilation into a page's time). SQLite
    /// samples (`analysis_limit`), so this stays cheap at any size.
    pub async fn analyze_fleet(&self) -> StoreResult<()> {
        with_pool!(self, pool => {
            sqlx::query("ANALYZE fleet_users").execute(pool).await?;
        });
        Ok(())
    }

    /// Records a failed sync: the instance shows why, its staged pages are dropped, the
    /// `fleet_sync_failed` event is raised, and the job (when one ran it) is done — the next
    /// scheduled sync tries again. The previous snapshot stays. False when the job's claim
    /// was lost (nothing recorded).
    pub async fn fail_fleet_sync(
        &self,
        job: Option<&JobRow>,
        instance_id: i64,
        stage: &str,
        error: &str,
        payload: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => 'fail: {
            if let Some(job) = job {
                let owned = sqlx::query(
                    "UPDATE jobs SET state = 'done', finished_at = $3, locked_until = NULL, last_error = $4
                     WHERE id = $1 AND state = 'running' AND attempts = $2",
                )
                .bind(job.id)
                .bind(job.attempts)
                .bind(now)
                .bind(error)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                if !owned {
                    break 'fail false;
                }
            }
            sqlx::query("DELETE FROM fleet_staged_users WHERE instance_id = $1 AND stage = $2")
                .bind(instance_id)
                .bind(stage)
                .execute(&mut *tx)
                .await?;
            let updated = sqlx::query(
                "UPDATE fleet_instances SET sync_status = 'failed', sync_finished_at = $2, sync_error = $3 WHERE id = $1",
            )
            .bind(instance_id)
            .bind(now)
            .bind(error)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated > 0 {
                let _recorded = insert_hook_event!(tx, FLEET_SYNC_FAILED_EVENT, payload.clone(), None::<String>, now);
            }
            true
        }))
    }

    /// The figures stored at the last snapshot change, and when.
    pub async fn fleet_figures(&self) -> StoreResult<Option<(FleetFigures, DateTime<Utc>)>> {
        let row: Option<(String, DateTime<Utc>)> = with_pool!(self, pool => {
            sqlx::query_as("SELECT summary, computed_at FROM fleet_summaries WHERE name = $1")
                .bind(SUMMARY)
                .fetch_optional(pool)
                .await?
        });
        Ok(row.and_then(|(summary, at)| {
            serde_json::from_str(&summary)
                .ok()
                .map(|figures| (figures, at))
        }))
    }

    /// The person keys of one page of people after `after`, in key order (one more than
    /// `limit` says another page follows).
    pub async fn fleet_people_keys(
        &self,
        filter: PeopleFilter,
        after: &str,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        let sql = people_keys_sql(filter);
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar::<_, String>(&sql)
                .bind(after)
                .bind(filter.instance_id)
                .bind(filter.billable)
                .bind(filter.outside_largest)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// The plan of a people page with `filter` (tests hold every filter to an index).
    pub async fn fleet_people_plan(&self, filter: PeopleFilter) -> StoreResult<String> {
        let sql = people_keys_sql(filter)
            .replace("$2", &filter.instance_id.unwrap_or(0).to_string())
            .replace(
                "$3",
                if filter.billable.unwrap_or(false) {
                    "TRUE"
                } else {
                    "FALSE"
                },
            )
            .replace(
                "$4",
                if filter.outside_largest.unwrap_or(false) {
                    "TRUE"
                } else {
                    "FALSE"
                },
            )
            .replace("$5", "$2");
        self.query_plan(&sql, &[String::new()], &[101]).await
    }

    /// The first [`ACCOUNTS_SHOWN_PER_PERSON`] accounts of each person `keys` names, by
    /// person then instance (a misconfigured identity provider can give one "person"
    /// thousands of accounts; a page stays bounded).
    pub async fn fleet_accounts_of(&self, keys: &[String]) -> StoreResult<Vec<FleetAccount>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        const COLUMNS: &str = "person_key, instance_id, upstream_id, username, name, email, state, bot, is_admin, billable, identities, last_activity_on, person_billable, person_outside_largest";
        let sql = format!(
            "SELECT {COLUMNS} FROM (
                SELECT {COLUMNS}, ROW_NUMBER() OVER (PARTITION BY person_key ORDER BY instance_id, upstream_id) AS place
                FROM fleet_users WHERE person_key IN ({})
             ) AS shown WHERE place <= {ACCOUNTS_SHOWN_PER_PERSON}
             ORDER BY person_key, instance_id, upstream_id",
            placeholders(keys.len())
        );
        Ok(with_pool!(self, pool => {
            let mut query = sqlx::query_as::<_, FleetAccount>(&sql);
            for key in keys {
                query = query.bind(key);
            }
            query.fetch_all(pool).await?
        }))
    }

    /// Where each person `keys` names is present: (person, instance, billable there, accounts
    /// there), all of them however many accounts a person has.
    pub async fn fleet_presence_of(&self, keys: &[String]) -> StoreResult<Vec<PersonPresence>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT person_key, instance_id,
                    CAST(MAX(CASE WHEN billable THEN 1 ELSE 0 END) AS BIGINT) AS billable, COUNT(*) AS accounts
             FROM fleet_users WHERE person_key IN ({})
             GROUP BY person_key, instance_id ORDER BY person_key, instance_id",
            placeholders(keys.len())
        );
        Ok(with_pool!(self, pool => {
            let mut query = sqlx::query_as::<_, PersonPresence>(&sql);
            for key in keys {
                query = query.bind(key);
            }
            query.fetch_all(pool).await?
        }))
    }
}

/// `$1, $2, …` for `count` binds.
fn placeholders(count: usize) -> String {
    (1..=count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One page of person keys: the filters set, after a key, in key order.
fn people_keys_sql(filter: PeopleFilter) -> String {
    format!(
        "SELECT DISTINCT person_key FROM fleet_users {} ORDER BY person_key LIMIT $5",
        filter.where_clause()
    )
}

/// A unique-name violation as the conflict it is.
fn name_taken(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict("an instance with this name already exists".into())
        }
        _ => StoreError::Database(error),
    }
}
