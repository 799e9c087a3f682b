//! The seat ledger's rows: the append-only `seat_ledger` (written by each recount, in its
//! transaction — see `write_seat_ledger!`), which is its own running set (whoever's latest
//! entry is not a stop counted at the last recount), and the reads: the ledger itself and who
//! was billable on a day.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::domain::ledger::{Candidate, Facts};
use crate::domain::users::{UserState, UserType};

use super::{Db, Dialect, Store, StoreError, StoreResult};

/// The plan recorded for a recount made without a current license.
pub const NO_PLAN: &str = "none";
/// Users read per statement when the ledger compares everyone (baseline, plan change).
pub const BATCH: i64 = 1_000;
/// The most changed users a recount compares in its own transaction; more, and it starts a
/// scan of every user in batches instead.
pub const PENDING_IN_RECOUNT: usize = 10_000;

/// A comparison of every user under way (the baseline, or after a change of the license's
/// plan), kept in `application_settings` so that any replica continues it where it stopped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LedgerScan {
    /// The ledger's first entries: those who count are the baseline, not "started".
    pub baseline: bool,
    /// The last user compared.
    pub after: i64,
    /// The recount that began it: its entries carry this time.
    pub at: DateTime<Utc>,
    pub plan_before: Option<String>,
    pub plan: String,
}

/// Which backend a transaction speaks (the ledger's batch statements differ in their JSON
/// functions).
pub fn dialect_of<DB: sqlx::Database>(_: &sqlx::Transaction<'_, DB>) -> Dialect {
    if DB::NAME == <sqlx::Postgres as sqlx::Database>::NAME {
        Dialect::Postgres
    } else {
        Dialect::Sqlite
    }
}

/// A batch's user ids as the one parameter of [`facts_sql`]: a JSON array.
pub fn ids_json(ids: &[i64]) -> String {
    serde_json::Value::from(ids).to_string()
}

/// One candidate as [`facts_sql`] returns it: id, username, state, user type, highest access
/// level, the direction of its latest ledger entry.
pub type FactsRow = (i64, String, String, String, Option<i32>, Option<String>);

/// The candidates' facts and latest entries (`$1`: their ids as a JSON array) as one JSON
/// array of [`FactsRow`]s.
pub fn facts_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "SELECT json_group_array(json_array(u.id, u.username, u.state, u.user_type,
                    (SELECT MAX(m.access_level) FROM members m WHERE m.user_id = u.id),
                    (SELECT l.direction FROM seat_ledger l WHERE l.user_id = u.id
                     ORDER BY l.id DESC LIMIT 1)))
             FROM users u WHERE u.id IN (SELECT value FROM json_each($1))"
        }
        Dialect::Postgres => {
            "SELECT COALESCE(json_agg(json_build_array(u.id, u.username, u.state, u.user_type,
                    (SELECT MAX(m.access_level) FROM members m WHERE m.user_id = u.id),
                    (SELECT l.direction FROM seat_ledger l WHERE l.user_id = u.id
                     ORDER BY l.id DESC LIMIT 1)))::text, '[]')
             FROM users u WHERE u.id IN (SELECT value::bigint FROM json_array_elements_text($1::json))"
        }
    }
}

/// [`facts_sql`]'s answer read back.
pub fn parse_facts(text: &str) -> Result<Vec<FactsRow>, StoreError> {
    serde_json::from_str(text)
        .map_err(|error| StoreError::Database(sqlx::Error::Decode(Box::new(error))))
}

/// Changes as the one parameter of [`insert_changes_sql`]: `[[user_id, username, direction,
/// reason], …]`, in the order they are appended.
pub fn changes_json(changes: &[crate::domain::ledger::Change]) -> String {
    serde_json::Value::from(
        changes
            .iter()
            .map(|change| {
                serde_json::json!([
                    change.user_id,
                    change.username,
                    change.direction.as_str(),
                    change.reason
                ])
            })
            .collect::<Vec<_>>(),
    )
    .to_string()
}

/// Appends the entries of [`changes_json`] (`$3`) recorded at `$1` for plan `$2`, in order.
pub fn insert_changes_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "INSERT INTO seat_ledger (recorded_at, user_id, username, direction, reason, plan)
             SELECT $1, json_extract(value, '$[0]'), json_extract(value, '$[1]'),
                    json_extract(value, '$[2]'), json_extract(value, '$[3]'), $2
             FROM json_each($3) ORDER BY key"
        }
        Dialect::Postgres => {
            "INSERT INTO seat_ledger (recorded_at, user_id, username, direction, reason, plan)
             SELECT $1, (entry->>0)::bigint, entry->>1, entry->>2, entry->>3, $2
             FROM json_array_elements($3::json) WITH ORDINALITY AS rows(entry, position)
             ORDER BY position"
        }
    }
}

/// Whether a user whose latest entry has this direction counted at the last recount.
pub fn counts(latest: Option<&str>) -> bool {
    latest.is_some_and(|direction| direction != "stopped")
}

/// Of `count` users (`$1…`), those who counted at the last recount, with their usernames: each
/// one's latest entry, found through `seat_ledger_user`, is not a stop.
pub fn holders_sql(count: usize) -> String {
    format!(
        "SELECT l.user_id, l.username FROM seat_ledger l
         WHERE l.user_id IN ({}) AND l.direction <> 'stopped'
           AND l.id = (SELECT MAX(x.id) FROM seat_ledger x WHERE x.user_id = l.user_id)",
        super::placeholders(1, count)
    )
}

/// Users who counted at the last recount and are gone (deleted): the end of a scan of every
/// user records their stop. Reads the whole ledger, as a scan reads every user.
pub const GONE_HOLDERS: &str = "SELECT l.user_id FROM seat_ledger l
     WHERE l.direction <> 'stopped'
       AND NOT EXISTS (SELECT 1 FROM seat_ledger later
                       WHERE later.user_id = l.user_id AND later.id > l.id)
       AND NOT EXISTS (SELECT 1 FROM users u WHERE u.id = l.user_id)";

/// A moment, given by value or by reference (the macros see both).
pub fn moment<T: std::borrow::Borrow<DateTime<Utc>>>(at: &T) -> DateTime<Utc> {
    *at.borrow()
}

/// The candidates of one batch: each id with its facts now (none: deleted) and whether it
/// counted at the previous recount.
pub fn candidates(
    ids: &[i64],
    facts: Vec<(i64, String, String, String, Option<i32>)>,
    held: &HashMap<i64, String>,
) -> Vec<Candidate> {
    let mut now: HashMap<i64, (String, Facts)> = facts
        .into_iter()
        .map(|(id, username, state, user_type, level)| {
            (
                id,
                (
                    username,
                    Facts {
                        state: UserState::from(state),
                        user_type: UserType::from(user_type),
                        highest_access_level: level,
                    },
                ),
            )
        })
        .collect();
    ids.iter()
        .map(|id| {
            let found = now.remove(id);
            let username = found
                .as_ref()
                .map(|(username, _)| username.clone())
                .or_else(|| held.get(id).cloned())
                .unwrap_or_default();
            Candidate {
                user_id: *id,
                username,
                facts: found.map(|(_, facts)| facts),
                counted_before: held.contains_key(id),
            }
        })
        .collect()
}

/// Who was billable at `$1`, after user `$2`, at most `$3`: each user whose latest entry
/// before `$1` is not a stop, read in user order through `seat_ledger_user`.
const BILLABLE_AT: &str =
    "SELECT l.user_id, l.username, l.recorded_at AS since, l.direction, l.reason
     FROM seat_ledger l
     WHERE l.user_id > $2 AND l.recorded_at < $1 AND l.direction <> 'stopped'
       AND NOT EXISTS (
           SELECT 1 FROM seat_ledger later
           WHERE later.user_id = l.user_id AND later.recorded_at < $1
             AND (later.recorded_at > l.recorded_at
                  OR (later.recorded_at = l.recorded_at AND later.id > l.id)))
     ORDER BY l.user_id LIMIT $3";

/// The statement of [`Store::ledger_page`] for `filter`: `$1` the entry to start after, `$2`
/// the limit, then the filters that are set, in field order.
fn ledger_page_sql(filter: &LedgerFilter) -> String {
    let mut conditions = vec!["id > $1".to_string()];
    let mut next = 3;
    let mut bind = |condition: &str| {
        conditions.push(condition.replace('?', &format!("${next}")));
        next += 1;
    };
    if filter.user_id.is_some() {
        bind("user_id = ?");
    }
    if filter.from.is_some() {
        bind("recorded_at >= ?");
    }
    if filter.to.is_some() {
        bind("recorded_at < ?");
    }
    if let Some(direction) = &filter.direction {
        if direction == "started" {
            bind("direction IN (?, 'baseline')");
        } else {
            bind("direction = ?");
        }
    }
    format!(
        "SELECT id, recorded_at, user_id, username, direction, reason, plan FROM seat_ledger
         WHERE {} ORDER BY id LIMIT $2",
        conditions.join(" AND ")
    )
}

/// One ledger entry.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LedgerRow {
    pub id: i64,
    pub recorded_at: DateTime<Utc>,
    pub user_id: i64,
    pub username: String,
    pub direction: String,
    pub reason: String,
    pub plan: Option<String>,
}

/// The ledger's filters (each served by an index).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerFilter {
    pub user_id: Option<i64>,
    /// `from <= recorded_at < to`.
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// `started` also lists the baseline (the users who counted when the ledger began).
    pub direction: Option<String>,
}

/// Someone billable on a day: since when (the entry that made them count) and why.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct BillableOnDay {
    pub user_id: i64,
    pub username: String,
    pub since: DateTime<Utc>,
    pub direction: String,
    pub reason: String,
}

impl Store {
    /// A page of the ledger in entry order, after entry `after_id`. Only the filters given
    /// make the statement, so each is served by its index (a user's entries by
    /// `seat_ledger_user`, a span of days by `seat_ledger_recorded`).
    pub async fn ledger_page(
        &self,
        filter: &LedgerFilter,
        after_id: i64,
        limit: i64,
    ) -> StoreResult<Vec<LedgerRow>> {
        let sql = ledger_page_sql(filter);
        Ok(with_pool!(self, pool => {
            let mut query = sqlx::query_as::<_, LedgerRow>(&sql).bind(after_id).bind(limit);
            if let Some(user_id) = filter.user_id {
                query = query.bind(user_id);
            }
            if let Some(from) = filter.from {
                query = query.bind(from);
            }
            if let Some(to) = filter.to {
                query = query.bind(to);
            }
            if let Some(direction) = &filter.direction {
                query = query.bind(direction);
            }
            query.fetch_all(pool).await?
        }))
    }

    /// Continues the seat ledger's scan in progress, if there is one, a batch of
    /// [`BATCH`] users per transaction until it ends: a writer waits at most one batch.
    /// Called after every recount; any replica may run it (each batch takes the ledger's
    /// lock and reads where the scan stands), and a scan cut short by a stop is continued by
    /// the next recount. Evaluates to the batches run.
    pub async fn continue_ledger_scan(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        // Almost always none: read before taking the writer's lock.
        if !self.ledger_scan_in_progress().await? {
            return Ok(0);
        }
        let mut batches = 0;
        loop {
            let more = in_write_tx!(self, tx => { ledger_scan_batch!(tx, now) });
            if !more {
                return Ok(batches);
            }
            batches += 1;
        }
    }

    /// Whether a comparison of every user is under way (its entries are still being written).
    pub async fn ledger_scan_in_progress(&self) -> StoreResult<bool> {
        Ok(self.setting("seat_ledger_scan").await?.is_some())
    }

    /// The plans of the ledger's reads (`tests/it/scale.rs` checks their indexes): a user's
    /// entries, who was billable at a moment.
    pub async fn ledger_plans(&self) -> StoreResult<Vec<(&'static str, String)>> {
        let by_user = ledger_page_sql(&LedgerFilter {
            user_id: Some(1),
            ..LedgerFilter::default()
        });
        // The moment as a literal (a plan needs no bound timestamp), the rest renumbered.
        let billable_at = BILLABLE_AT
            .replace("$1", "'2026-01-01 00:00:00+00:00'")
            .replace("$2", "$1")
            .replace("$3", "$2");
        Ok(vec![
            (
                "a user's entries",
                self.query_plan(&by_user, &[], &[0, 20, 1]).await?,
            ),
            (
                "billable at a moment",
                self.query_plan(&billable_at, &[], &[0, 20]).await?,
            ),
            (
                "who counted at the last recount",
                self.query_plan(&holders_sql(1), &[], &[1]).await?,
            ),
        ])
    }

    /// When the ledger began (its first recount), if it has.
    pub async fn ledger_began(&self) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar::<_, DateTime<Utc>>(
                "SELECT recorded_at FROM seat_ledger ORDER BY id LIMIT 1",
            )
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Who was billable at `at` (the recounts before it), in user-id order after `after_user`:
    /// each user whose latest entry before `at` started (or was the baseline).
    pub async fn billable_at(
        &self,
        at: DateTime<Utc>,
        after_user: i64,
        limit: i64,
    ) -> StoreResult<Vec<BillableOnDay>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, BillableOnDay>(BILLABLE_AT)
            .bind(at)
            .bind(after_user)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Of `ids`, those who counted at the last recount.
    pub async fn ledger_holders_among(&self, ids: &[i64]) -> StoreResult<Vec<i64>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = holders_sql(ids.len());
        let holders = with_pool!(self, pool => {
            let mut query = sqlx::query_as::<_, (i64, String)>(&sql);
            for id in ids {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await?
        });
        Ok(holders.into_iter().map(|(id, _)| id).collect())
    }

    /// The latest stop of each of `ids` at or after `since`: (user, when, why).
    pub async fn ledger_stops_since(
        &self,
        ids: &[i64],
        since: DateTime<Utc>,
    ) -> StoreResult<Vec<(i64, DateTime<Utc>, String)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT user_id, recorded_at, reason FROM seat_ledger
             WHERE direction = 'stopped' AND recorded_at >= $1 AND user_id IN ({})
             ORDER BY recorded_at, id",
            super::placeholders(2, ids.len())
        );
        Ok(with_pool!(self, pool => {
            let mut query = sqlx::query_as::<_, (i64, DateTime<Utc>, String)>(&sql).bind(since);
            for id in ids {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await?
        }))
    }
}
