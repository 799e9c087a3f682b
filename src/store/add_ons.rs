//! Add-on purchases and their seats (user assignments).

use std::collections::BTreeSet;

use chrono::{DateTime, NaiveDate, Utc};

use super::eligible_users::eligible_where;
use super::{placeholders, Db, LicenseRow, NewAudit, Store, StoreError, StoreResult, Write};
use crate::domain::add_ons::{Provisioned, PurchaseTerms, SeatFacts};

/// Every purchase column, with the namespace's path and the seats in use (a plain count of
/// assignment rows, as GitLab's `assigned_quantity`).
const PURCHASE_SELECT: &str =
    "SELECT p.id, p.add_on_name, p.namespace_id, g.path AS namespace_path,
        p.quantity, p.started_on, p.expires_on, p.purchase_xid, p.trial, p.created_at, p.updated_at,
        (SELECT COUNT(*) FROM user_add_on_assignments a WHERE a.add_on_purchase_id = p.id)
            AS assigned_quantity
    FROM add_on_purchases p LEFT JOIN groups g ON g.id = p.namespace_id";

/// Deletes the newest assignments of every purchase holding more than it bought.
const TRIM_OVERAGE: &str = "DELETE FROM user_add_on_assignments WHERE id IN (
        SELECT id FROM (
            SELECT a.id, p.quantity,
                   ROW_NUMBER() OVER (PARTITION BY a.add_on_purchase_id ORDER BY a.created_at, a.id) AS seat
            FROM user_add_on_assignments a JOIN add_on_purchases p ON p.id = a.add_on_purchase_id
        ) ranked WHERE seat > quantity)";

const ALREADY_EXISTS: &str = "Add-on purchase already exists for this namespace";

const INSERT_PURCHASE: &str = "INSERT INTO add_on_purchases (add_on_name, namespace_id, quantity,
        started_on, expires_on, purchase_xid, trial, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id";

const UPDATE_PURCHASE: &str = "UPDATE add_on_purchases SET quantity = $2, started_on = $3,
        expires_on = $4, purchase_xid = $5, trial = $6, updated_at = $7,
        add_on_name = COALESCE($8, add_on_name)
    WHERE id = $1";

/// Binds a purchase's terms and the time, after the binds `$query` already has (the name and
/// namespace of [`INSERT_PURCHASE`], the id of [`UPDATE_PURCHASE`]).
macro_rules! bind_terms {
    ($query:expr, $terms:expr, $now:expr) => {
        $query
            .bind($terms.quantity)
            .bind($terms.started_on)
            .bind($terms.expires_on)
            .bind(&$terms.purchase_xid)
            .bind($terms.trial)
            .bind($now)
    };
}

/// Runs `$body` in a write transaction that may turn out to change nothing. The body evaluates
/// to `(value, wrote)`; only a transaction that wrote is committed and announced, so idle
/// checks neither wake replicas nor invalidate caches. SQLite takes its write lock at `BEGIN`
/// (read-then-write bodies are serialised); on PostgreSQL `$lock` is `FOR UPDATE`, for the
/// body to lock the rows it reads.
macro_rules! in_checked_write_tx {
    ($store:expr, $tx:ident, $lock:ident => $body:expr) => {{
        $store.ensure_reachable()?;
        let (value, wrote) = match &$store.db {
            Db::Sqlite(pool) => {
                let mut $tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let $lock = "";
                let (value, wrote) = $body;
                if wrote {
                    $tx.commit().await?;
                }
                (value, wrote)
            }
            Db::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                let $lock = "FOR UPDATE";
                let (value, wrote) = $body;
                if wrote {
                    announce_change!(postgres, $tx);
                    $tx.commit().await?;
                }
                (value, wrote)
            }
        };
        if wrote {
            $store.changed();
        }
        value
    }};
}

/// Builds the audit event of one seat change from the user's id and username.
pub type SeatAudit<'a> = dyn Fn(i64, &str) -> NewAudit + Send + Sync + 'a;

/// Records one audit event per user whose seat changed, inside the change's transaction.
macro_rules! audit_seat_changes {
    ($tx:expr, $user_ids:expr, $audit_for:expr, $now:expr) => {{
        let user_ids: &[i64] = $user_ids;
        if !user_ids.is_empty() {
            let sql = format!(
                "SELECT id, username FROM users WHERE id IN ({}) ORDER BY id",
                placeholders(1, user_ids.len())
            );
            let mut query = sqlx::query_as::<_, (i64, String)>(&sql);
            for user_id in user_ids {
                query = query.bind(*user_id);
            }
            for (user_id, username) in query.fetch_all(&mut *$tx).await? {
                let audit = $audit_for(user_id, &username);
                insert_audit!($tx, Some(&audit), $now);
            }
        }
    }};
}

/// The purchase as the seat mutations found it under its lock.
pub enum Locked<T> {
    Missing,
    Inactive,
    Decided(T),
}

/// Creating versus updating a purchase through the REST provisioning API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaveMode {
    Create,
    Update,
}

impl Store {
    /// Active purchases of a namespace (`None`: the instance's), oldest first.
    pub async fn active_add_on_purchases(
        &self,
        namespace_id: Option<i64>,
        today: NaiveDate,
    ) -> StoreResult<Vec<AddOnPurchase>> {
        let sql = format!(
            "{PURCHASE_SELECT}
             WHERE COALESCE(p.namespace_id, 0) = COALESCE(CAST($1 AS BIGINT), 0)
               AND p.started_on <= $2 AND $2 < p.expires_on
             ORDER BY p.id"
        );
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, AddOnPurchase>(&sql)
                .bind(namespace_id)
                .bind(today)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Usernames of a purchase's seat holders in the order GitLab keeps seats (oldest
    /// assignment first), skipping `skip`, at most `limit`.
    pub async fn purchase_assignees(
        &self,
        purchase_id: i64,
        skip: i64,
        limit: i64,
    ) -> StoreResult<Vec<String>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar::<_, String>(
                "SELECT u.username FROM user_add_on_assignments a JOIN users u ON u.id = a.user_id
                 WHERE a.add_on_purchase_id = $1
                 ORDER BY a.created_at, a.id LIMIT $2 OFFSET $3",
            )
            .bind(purchase_id)
            .bind(limit)
            .bind(skip)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Every purchase, active or not, oldest first.
    pub async fn all_add_on_purchases(&self) -> StoreResult<Vec<AddOnPurchase>> {
        let sql = format!("{PURCHASE_SELECT} ORDER BY p.id");
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, AddOnPurchase>(&sql).fetch_all(pool).await?
        }))
    }

    pub async fn find_add_on_purchase(&self, id: i64) -> StoreResult<Option<AddOnPurchase>> {
        let sql = format!("{PURCHASE_SELECT} WHERE p.id = $1");
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, AddOnPurchase>(&sql)
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// The purchase of one add-on for a namespace (`None`: the instance).
    pub async fn find_add_on_purchase_by_name(
        &self,
        namespace_id: Option<i64>,
        add_on_name: &str,
    ) -> StoreResult<Option<AddOnPurchase>> {
        let sql = format!(
            "{PURCHASE_SELECT}
             WHERE COALESCE(p.namespace_id, 0) = COALESCE(CAST($1 AS BIGINT), 0)
               AND p.add_on_name = $2"
        );
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, AddOnPurchase>(&sql)
                .bind(namespace_id)
                .bind(add_on_name)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Creates or updates a group's (or the instance's) purchase of one add-on. A lower
    /// quantity frees the newest seats beyond it in the same transaction. `None` when updating
    /// a purchase that does not exist; a conflict when creating one that does.
    pub async fn save_add_on_purchase(
        &self,
        namespace_id: Option<i64>,
        add_on_name: &str,
        terms: &PurchaseTerms,
        mode: SaveMode,
        write: Write<'_>,
    ) -> StoreResult<Option<i64>> {
        let id = in_write_tx!(self, tx => {
            let existing = sqlx::query_scalar::<_, i64>(
                "SELECT id FROM add_on_purchases
                 WHERE COALESCE(namespace_id, 0) = COALESCE(CAST($1 AS BIGINT), 0) AND add_on_name = $2",
            )
            .bind(namespace_id)
            .bind(add_on_name)
            .fetch_optional(&mut *tx)
            .await?;
            let id = match (mode, existing) {
                (SaveMode::Create, Some(_)) => {
                    return Err(StoreError::Conflict(ALREADY_EXISTS.into()))
                }
                (SaveMode::Update, None) => None,
                (SaveMode::Create, None) => Some(
                    bind_terms!(
                        sqlx::query_scalar::<_, i64>(INSERT_PURCHASE).bind(add_on_name).bind(namespace_id),
                        terms,
                        write.at
                    )
                    .fetch_one(&mut *tx)
                    .await
                    // A concurrent create of the same purchase won the race.
                    .map_err(|error| match &error {
                        sqlx::Error::Database(db) if db.is_unique_violation() => {
                            StoreError::Conflict(ALREADY_EXISTS.into())
                        }
                        _ => StoreError::Database(error),
                    })?,
                ),
                (SaveMode::Update, Some(id)) => {
                    bind_terms!(sqlx::query(UPDATE_PURCHASE).bind(id), terms, write.at)
                        .bind(None::<&str>)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(TRIM_OVERAGE).execute(&mut *tx).await?;
                    Some(id)
                }
            };
            if id.is_some() {
                insert_audit!(tx, write.audit, write.at);
            }
            id
        });
        Ok(id)
    }

    /// Brings the instance's license-provisioned purchases in line with the current license:
    /// `Some(terms)` creates or updates one, `None` ends an active one today (its seats are
    /// kept, for a renewal to find them). Writes only what differs; true when it wrote.
    pub async fn provision_instance_add_ons(
        &self,
        license_window: i64,
        today: NaiveDate,
        now: DateTime<Utc>,
        plan: impl FnOnce(&[LicenseRow]) -> Vec<Provisioned>,
    ) -> StoreResult<bool> {
        // GitLab's expire service ends a purchase the license no longer carries yesterday.
        let yesterday = today.pred_opt().unwrap_or(today);
        Ok(in_checked_write_tx!(self, tx, lock => {
            // One provisioning run at a time, on every replica (SQLite's BEGIN IMMEDIATE
            // already serialises it); the licenses are read after the lock, so the plan is
            // made from what is committed now.
            sqlx::query(
                "INSERT INTO application_settings (name, value, updated_at)
                 VALUES ('add_on_provisioning_guard', '', $1)
                 ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at",
            )
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let licenses = sqlx::query_as::<_, LicenseRow>(
                "SELECT id, data, created_at FROM licenses ORDER BY id DESC LIMIT $1",
            )
            .bind(license_window)
            .fetch_all(&mut *tx)
            .await?;
            let mut wrote = false;
            for Provisioned { slot, chosen } in plan(&licenses) {
                // The slot's instance purchases, the one of the chosen add-on first: that is
                // the purchase the license keeps (in place, with its seats); any other of the
                // slot (left by an older version, which kept one per product) ends.
                let sql = format!(
                    "SELECT id, add_on_name, quantity, started_on, expires_on, purchase_xid, trial
                     FROM add_on_purchases
                     WHERE namespace_id IS NULL AND add_on_name IN ({})
                     ORDER BY CASE WHEN add_on_name = $1 THEN 0 ELSE 1 END, id {lock}",
                    placeholders(2, slot.len())
                );
                let mut query = sqlx::query_as::<
                    _,
                    (i64, String, i64, NaiveDate, NaiveDate, Option<String>, bool),
                >(&sql)
                .bind(chosen.as_ref().map_or("", |(name, _)| *name));
                for name in slot {
                    query = query.bind(*name);
                }
                let existing = query.fetch_all(&mut *tx).await?;
                let mut rows = existing.into_iter();
                let kept = match (&chosen, rows.next()) {
                    (Some((name, terms)), None) => {
                        bind_terms!(
                            sqlx::query_scalar::<_, i64>(INSERT_PURCHASE).bind(*name).bind(None::<i64>),
                            terms,
                            now
                        )
                        .fetch_one(&mut *tx)
                        .await?;
                        wrote = true;
                        None
                    }
                    (Some((name, terms)), Some((id, add_on_name, quantity, started_on, expires_on, purchase_xid, trial))) => {
                        let current = PurchaseTerms { quantity, started_on, expires_on, purchase_xid, trial };
                        if &current != terms || add_on_name != *name {
                            bind_terms!(sqlx::query(UPDATE_PURCHASE).bind(id), terms, now)
                                .bind(*name)
                                .execute(&mut *tx)
                                .await?;
                            wrote = true;
                        }
                        Some(id)
                    }
                    (None, first) => {
                        // Nothing provisions the slot: every purchase of it ends.
                        rows = first.into_iter().chain(rows).collect::<Vec<_>>().into_iter();
                        None
                    }
                };
                for (id, _, _, started_on, expires_on, _, _) in rows {
                    if Some(id) != kept && started_on <= today && today < expires_on {
                        sqlx::query("UPDATE add_on_purchases SET expires_on = $2, updated_at = $3 WHERE id = $1")
                            .bind(id)
                            .bind(yesterday.max(started_on))
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        wrote = true;
                    }
                }
            }
            if wrote {
                // Fewer seats than assigned: the newest assignments go first, as GitLab's
                // `ReconcileSeatOverageService` removes the most recently assigned users (it
                // would keep those with recent Duo usage; none is tracked here).
                sqlx::query(TRIM_OVERAGE).execute(&mut *tx).await?;
            }
            (wrote, wrote)
        }))
    }

    /// Assigns seats of a purchase under its lock: the purchase row is locked (PostgreSQL) or
    /// the database is (SQLite), the facts are read, `decide` picks the users to insert, and
    /// they are inserted in the same transaction — so concurrent requests, on any replica,
    /// cannot hand out more seats than `decide` allows. A refusal writes nothing.
    pub async fn assign_add_on_seats<T, E>(
        &self,
        purchase_id: i64,
        user_ids: &[i64],
        today: NaiveDate,
        now: DateTime<Utc>,
        decide: impl FnOnce(&SeatFacts) -> Result<(Vec<i64>, T), E>,
        audit_for: &SeatAudit<'_>,
    ) -> StoreResult<Locked<Result<T, E>>> {
        let eligible_sql = format!(
            "SELECT u.id FROM users u WHERE u.id IN ({}) AND {}",
            placeholders(2, user_ids.len()),
            eligible_where("$1")
        );
        let assigned_sql = format!(
            "SELECT user_id FROM user_add_on_assignments
             WHERE add_on_purchase_id = $1 AND user_id IN ({})",
            placeholders(2, user_ids.len())
        );
        Ok(in_checked_write_tx!(self, tx, lock => {
            let purchase = sqlx::query_as::<_, (i64, Option<i64>, NaiveDate, NaiveDate)>(&format!(
                "SELECT quantity, namespace_id, started_on, expires_on FROM add_on_purchases WHERE id = $1 {lock}"
            ))
            .bind(purchase_id)
            .fetch_optional(&mut *tx)
            .await?;
            match purchase {
                None => (Locked::Missing, false),
                Some((_, _, started_on, expires_on)) if !(started_on <= today && today < expires_on) => {
                    (Locked::Inactive, false)
                }
                Some((quantity, namespace_id, _, _)) => {
                    let assigned = sqlx::query_scalar::<_, i64>(
                        "SELECT COUNT(*) FROM user_add_on_assignments WHERE add_on_purchase_id = $1",
                    )
                    .bind(purchase_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    let mut eligible_query = sqlx::query_scalar::<_, i64>(&eligible_sql)
                        .bind(namespace_id);
                    let mut assigned_query = sqlx::query_scalar::<_, i64>(&assigned_sql)
                        .bind(purchase_id);
                    for user_id in user_ids {
                        eligible_query = eligible_query.bind(*user_id);
                        assigned_query = assigned_query.bind(*user_id);
                    }
                    let facts = SeatFacts {
                        quantity,
                        assigned,
                        eligible: eligible_query.fetch_all(&mut *tx).await?.into_iter().collect(),
                        already_assigned: assigned_query.fetch_all(&mut *tx).await?.into_iter().collect::<BTreeSet<_>>(),
                    };
                    match decide(&facts) {
                        Err(refusal) => (Locked::Decided(Err(refusal)), false),
                        Ok((to_insert, value)) => {
                            for user_id in &to_insert {
                                sqlx::query(
                                    "INSERT INTO user_add_on_assignments (add_on_purchase_id, user_id, created_at)
                                     VALUES ($1, $2, $3) ON CONFLICT (add_on_purchase_id, user_id) DO NOTHING",
                                )
                                .bind(purchase_id)
                                .bind(*user_id)
                                .bind(now)
                                .execute(&mut *tx)
                                .await?;
                            }
                            audit_seat_changes!(tx, &to_insert, audit_for, now);
                            (Locked::Decided(Ok(value)), !to_insert.is_empty())
                        }
                    }
                }
            }
        }))
    }

    /// Frees the seats these users hold on a purchase, with an audit event for each; how
    /// many were freed.
    pub async fn remove_add_on_seats(
        &self,
        purchase_id: i64,
        user_ids: &[i64],
        now: DateTime<Utc>,
        audit_for: &SeatAudit<'_>,
    ) -> StoreResult<u64> {
        let sql = format!(
            "DELETE FROM user_add_on_assignments WHERE add_on_purchase_id = $1 AND user_id IN ({})
             RETURNING user_id",
            placeholders(2, user_ids.len())
        );
        Ok(in_checked_write_tx!(self, tx, _lock => {
            let mut query = sqlx::query_scalar::<_, i64>(&sql).bind(purchase_id);
            for user_id in user_ids {
                query = query.bind(*user_id);
            }
            let removed = query.fetch_all(&mut *tx).await?;
            audit_seat_changes!(tx, &removed, audit_for, now);
            let count = u64::try_from(removed.len()).unwrap_or(u64::MAX);
            (count, count > 0)
        }))
    }

    /// A user's seats among `purchase_ids`, on purchases active today.
    pub async fn user_add_on_seats(
        &self,
        user_id: i64,
        purchase_ids: &[i64],
        today: NaiveDate,
    ) -> StoreResult<Vec<AddOnPurchase>> {
        let sql = format!(
            "{PURCHASE_SELECT}
             WHERE p.started_on <= $2 AND $2 < p.expires_on
               AND EXISTS (SELECT 1 FROM user_add_on_assignments a
                           WHERE a.add_on_purchase_id = p.id AND a.user_id = $1)
               AND p.id IN ({})
             ORDER BY p.id",
            placeholders(3, purchase_ids.len())
        );
        Ok(with_pool!(self, pool => {
            let mut query = sqlx::query_as::<_, AddOnPurchase>(&sql).bind(user_id).bind(today);
            for id in purchase_ids {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await?
        }))
    }

    /// The scheduled seat clean-up: frees the seats of users who may no longer hold them
    /// (blocked, banned, deactivated, turned bot, left the purchase's group), then the newest
    /// seats of purchases holding more than they bought. How many seats it freed.
    pub async fn clean_up_add_on_seats(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let ineligible = format!(
            "DELETE FROM user_add_on_assignments WHERE id IN (
                SELECT a.id FROM user_add_on_assignments a
                JOIN add_on_purchases p ON p.id = a.add_on_purchase_id
                JOIN users u ON u.id = a.user_id
                WHERE NOT ({}))",
            eligible_where("p.namespace_id")
        );
        Ok(in_checked_write_tx!(self, tx, _lock => {
            let freed = sqlx::query(&ineligible).execute(&mut *tx).await?.rows_affected()
                + sqlx::query(TRIM_OVERAGE).execute(&mut *tx).await?.rows_affected();
            if freed > 0 {
                sqlx::query("UPDATE add_on_purchases SET last_assigned_users_refreshed_at = $1")
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
            }
            (freed, freed > 0)
        }))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AddOnPurchase {
    pub id: i64,
    pub add_on_name: String,
    pub namespace_id: Option<i64>,
    pub namespace_path: Option<String>,
    pub quantity: i64,
    pub started_on: NaiveDate,
    pub expires_on: NaiveDate,
    pub purchase_xid: Option<String>,
    pub trial: bool,
    pub assigned_quantity: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}
