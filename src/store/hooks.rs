//! System hooks, their events (the outbox) and deliveries.

use chrono::{DateTime, Utc};

use super::{Db, NewAudit, Store, StoreResult, Write};

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SystemHook {
    pub id: i64,
    #[sqlx(flatten)]
    pub settings: HookSettings,
    pub created_at: DateTime<Utc>,
}

/// A hook's settings as created or updated.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HookSettings {
    pub url: String,
    pub token: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub push_events: bool,
    pub tag_push_events: bool,
    pub merge_requests_events: bool,
    pub repository_update_events: bool,
    pub enable_ssl_verification: bool,
}

/// A claimed delivery, with what sending it needs.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryWork {
    pub id: i64,
    pub attempts: i32,
    pub url: String,
    pub token: Option<String>,
    pub enable_ssl_verification: bool,
    pub event_name: String,
    pub payload: String,
}

/// One line of a hook's delivery log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryLog {
    pub id: i64,
    pub event_name: String,
    pub state: String,
    pub attempts: i32,
    pub response_status: Option<i32>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// How an attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered {
        status: i32,
    },
    Retry {
        status: Option<i32>,
        error: String,
        at: DateTime<Utc>,
    },
    GiveUp {
        status: Option<i32>,
        error: String,
    },
}

const HOOK_COLUMNS: &str = "id, url, token, name, description, push_events, tag_push_events,
    merge_requests_events, repository_update_events, enable_ssl_verification, created_at";

impl Store {
    pub async fn list_hooks(&self) -> StoreResult<Vec<SystemHook>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, SystemHook>(&format!("SELECT {HOOK_COLUMNS} FROM system_hooks ORDER BY id"))
                .fetch_all(pool)
                .await?
        }))
    }

    pub async fn find_hook(&self, id: i64) -> StoreResult<Option<SystemHook>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, SystemHook>(&format!("SELECT {HOOK_COLUMNS} FROM system_hooks WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Creates (`id` None) or updates a hook; `None` when updating one that does not exist.
    pub async fn save_hook(
        &self,
        id: Option<i64>,
        settings: &HookSettings,
        now: DateTime<Utc>,
        audit: &NewAudit,
    ) -> StoreResult<Option<SystemHook>> {
        // $1 is the id (update) or the creation time (insert); the settings follow.
        let sql = match id {
            None => format!(
                "INSERT INTO system_hooks (created_at, url, token, name, description, push_events,
                     tag_push_events, merge_requests_events, repository_update_events,
                     enable_ssl_verification)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {HOOK_COLUMNS}"
            ),
            Some(_) => format!(
                "UPDATE system_hooks SET url = $2, token = $3, name = $4, description = $5,
                     push_events = $6, tag_push_events = $7, merge_requests_events = $8,
                     repository_update_events = $9, enable_ssl_verification = $10
                 WHERE id = $1 RETURNING {HOOK_COLUMNS}"
            ),
        };
        Ok(in_write_tx!(self, tx => {
            let query = sqlx::query_as::<_, SystemHook>(&sql);
            let query = match id {
                Some(id) => query.bind(id),
                None => query.bind(now),
            };
            let saved = query
                .bind(&settings.url)
                .bind(&settings.token)
                .bind(&settings.name)
                .bind(&settings.description)
                .bind(settings.push_events)
                .bind(settings.tag_push_events)
                .bind(settings.merge_requests_events)
                .bind(settings.repository_update_events)
                .bind(settings.enable_ssl_verification)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(hook) = &saved {
                // A new hook's id is known only now.
                let mut audit = audit.clone();
                audit.details["target_id"] = serde_json::json!(hook.id);
                insert_audit!(tx, Some(&audit), now);
            }
            saved
        }))
    }

    pub async fn delete_hook(
        &self,
        id: i64,
        now: DateTime<Utc>,
        audit: &NewAudit,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            let statement = sqlx::query("DELETE FROM system_hooks WHERE id = $1").bind(id);
            execute_audited!(tx, statement, Write::audited(now, audit))
        }))
    }

    /// Records an event raised outside a change's own transaction (scheduled alerts); with a
    /// `dedupe_key` it is recorded once ever. True when it was new.
    pub async fn record_hook_event(
        &self,
        event_name: &str,
        payload: &serde_json::Value,
        dedupe_key: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            insert_hook_event!(tx, event_name, payload, dedupe_key, now)
        }))
    }

    /// Claims the oldest due delivery (or one whose sender's lease ran out) until
    /// `lease_until`; one replica at a time sends it.
    pub async fn claim_delivery(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<DeliveryWork>> {
        const PICK: &str = "SELECT id FROM hook_deliveries
             WHERE (state = 'pending' AND next_attempt_at <= $1)
                OR (state = 'sending' AND locked_until < $1)
             ORDER BY next_attempt_at, id LIMIT 1";
        let claim = |pick: &str| {
            format!(
                "WITH claimed AS (
                     UPDATE hook_deliveries SET state = 'sending', attempts = attempts + 1, locked_until = $2
                     WHERE id = ({pick}) RETURNING id, attempts, hook_id, event_id)
                 SELECT c.id, c.attempts, h.url, h.token, h.enable_ssl_verification, e.event_name, e.payload
                 FROM claimed c JOIN system_hooks h ON h.id = c.hook_id JOIN hook_events e ON e.id = c.event_id"
            )
        };
        Ok(match &self.db {
            Db::Sqlite(pool) => {
                // SQLite has no data-modifying CTE: claim, then read, under one write lock.
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let claimed = sqlx::query_scalar::<_, i64>(&format!(
                    "UPDATE hook_deliveries SET state = 'sending', attempts = attempts + 1, locked_until = $2
                     WHERE id = ({PICK}) RETURNING id"
                ))
                .bind(now)
                .bind(lease_until)
                .fetch_optional(&mut *tx)
                .await?;
                let work = match claimed {
                    Some(id) => sqlx::query_as::<_, DeliveryWork>(
                        "SELECT d.id, d.attempts, h.url, h.token, h.enable_ssl_verification, e.event_name, e.payload
                         FROM hook_deliveries d JOIN system_hooks h ON h.id = d.hook_id
                         JOIN hook_events e ON e.id = d.event_id WHERE d.id = $1",
                    )
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?,
                    None => None,
                };
                tx.commit().await?;
                work
            }
            Db::Postgres(pool) => {
                sqlx::query_as::<_, DeliveryWork>(&claim(&format!("{PICK} FOR UPDATE SKIP LOCKED")))
                    .bind(now)
                    .bind(lease_until)
                    .fetch_optional(pool)
                    .await?
            }
        })
    }

    /// Records how a claimed attempt ended; ignored if the claim was lost meanwhile.
    pub async fn finish_delivery(
        &self,
        work: &DeliveryWork,
        outcome: &AttemptOutcome,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let (state, status, error, next, delivered_at) = match outcome {
            AttemptOutcome::Delivered { status } => {
                ("delivered", Some(*status), None, None, Some(now))
            }
            AttemptOutcome::Retry { status, error, at } => {
                ("pending", *status, Some(error.as_str()), Some(*at), None)
            }
            AttemptOutcome::GiveUp { status, error } => {
                ("failed", *status, Some(error.as_str()), None, None)
            }
        };
        in_write_tx!(self, tx => {
            sqlx::query(
                "UPDATE hook_deliveries SET state = $3, response_status = $4, last_error = $5,
                     next_attempt_at = COALESCE($6, next_attempt_at), delivered_at = $7, locked_until = NULL
                 WHERE id = $1 AND attempts = $2 AND state = 'sending'",
            )
            .bind(work.id)
            .bind(work.attempts)
            .bind(state)
            .bind(status)
            .bind(error)
            .bind(next)
            .bind(delivered_at)
            .execute(&mut *tx)
            .await?;
        });
        Ok(())
    }

    /// A hook's deliveries, newest first.
    pub async fn hook_deliveries(&self, hook_id: i64, limit: i64) -> StoreResult<Vec<DeliveryLog>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, DeliveryLog>(
                "SELECT d.id, e.event_name, d.state, d.attempts, d.response_status, d.last_error,
                        d.created_at, d.delivered_at
                 FROM hook_deliveries d JOIN hook_events e ON e.id = d.event_id
                 WHERE d.hook_id = $1 ORDER BY d.id DESC LIMIT $2",
            )
            .bind(hook_id)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }
}
