//! Dormant users (GitLab's `User.dormant` and `User.with_no_activity` scopes) and the
//! exclusions the job never touches.

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    Db, NewAudit, Store, StoreResult, User, BILLABLE, COUNT_CAP, GUEST_ACCESS_LEVEL, U_USER_COLUMNS,
};

/// The two ways to be dormant (GitLab's `User.dormant` and `User.with_no_activity`): an
/// active human or service user last active on or before `$1`; or one never active, created
/// on or before `$1`. Each is a range of a partial index — `users_dormant` (last activity,
/// creation, id), `users_never_active` (creation, id) — read in its order, the longest
/// dormant first — and kept apart rather than joined by an `OR`, with which both backends read
/// the whole table in id order when few users are dormant (372–478 ms at a million on SQLite).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dormancy {
    Inactive,
    NeverActive,
}

impl Dormancy {
    pub const BOTH: [Self; 2] = [Self::Inactive, Self::NeverActive];

    fn condition(self) -> &'static str {
        match self {
            Self::Inactive => {
                "u.state = 'active' AND u.user_type IN ('human', 'service_user')
                 AND u.last_activity_on <= $1"
            }
            Self::NeverActive => {
                "u.state = 'active' AND u.user_type IN ('human', 'service_user')
                 AND u.last_activity_on IS NULL AND u.created_at <= $1"
            }
        }
    }

    /// The index order, and (from `$2`) where a page starts after the cursor's user.
    fn order_and_after(self) -> (&'static str, &'static str) {
        match self {
            Self::Inactive => (
                "u.last_activity_on, u.created_at, u.id",
                "(u.last_activity_on, u.created_at, u.id) > ($2, $3, $4)",
            ),
            Self::NeverActive => ("u.created_at, u.id", "(u.created_at, u.id) > ($2, $3)"),
        }
    }
}

/// The dates GitLab's dormancy is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DormancyCutoffs {
    /// Last active on or before this day.
    pub active_by: NaiveDate,
    /// Never active, and created at or before this time.
    pub created_by: DateTime<Utc>,
}

/// Where the next page of dormant users starts: after this user (in the index's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DormantCursor {
    pub last_activity_on: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub id: i64,
}

impl From<&User> for DormantCursor {
    fn from(user: &User) -> Self {
        Self {
            last_activity_on: user.last_activity_on,
            created_at: user.created_at,
            id: user.id,
        }
    }
}

/// Not excluded: themselves, or as a member of an excluded group. Only added while there are
/// exclusions (two lookups a user otherwise spent on an empty table).
const NOT_EXCLUDED: &str = " AND NOT EXISTS (SELECT 1 FROM dormant_exclusions x WHERE x.kind = 'user' AND x.subject_id = u.id)
     AND NOT EXISTS (SELECT 1 FROM members m JOIN dormant_exclusions g
                     ON g.kind = 'group' AND g.subject_id = m.source_id AND m.source_type = 'Namespace'
                     WHERE m.user_id = u.id)";

/// One exclusion: a user or a group (its members), by id.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DormantExclusion {
    pub kind: String,
    pub subject_id: i64,
}

impl Store {
    /// A page of the users dormant in this way, longest dormant first, after `after`.
    pub async fn dormant_users(
        &self,
        dormancy: Dormancy,
        cutoffs: DormancyCutoffs,
        after: Option<DormantCursor>,
        limit: i64,
    ) -> StoreResult<Vec<User>> {
        let excluded = self.dormant_exclusion_condition().await?;
        let sql = self.dormant_page_sql(dormancy, after.is_some(), excluded);
        Ok(with_pool!(self, pool => {
            let query = sqlx::query_as::<_, User>(&sql);
            let query = match dormancy {
                Dormancy::Inactive => query.bind(cutoffs.active_by),
                Dormancy::NeverActive => query.bind(cutoffs.created_by),
            };
            let query = match (after, dormancy) {
                (None, _) => query,
                (Some(cursor), Dormancy::Inactive) => query
                    .bind(cursor.last_activity_on)
                    .bind(cursor.created_at)
                    .bind(cursor.id),
                (Some(cursor), Dormancy::NeverActive) => {
                    query.bind(cursor.created_at).bind(cursor.id)
                }
            };
            query.bind(limit).fetch_all(pool).await?
        }))
    }

    /// A page's statement: `$1` the cutoff, then the cursor (when there is one), then the limit.
    fn dormant_page_sql(&self, dormancy: Dormancy, after: bool, excluded: &str) -> String {
        let (order, after_condition) = dormancy.order_and_after();
        let (after_condition, limit_placeholder) = match (after, dormancy) {
            (false, _) => (String::new(), "$2"),
            (true, Dormancy::Inactive) => (format!(" AND {after_condition}"), "$5"),
            (true, Dormancy::NeverActive) => (format!(" AND {after_condition}"), "$4"),
        };
        format!(
            "SELECT {U_USER_COLUMNS} FROM users u {index}
             WHERE {condition}{excluded}{after_condition}
             ORDER BY {order} LIMIT {limit_placeholder}",
            index = self.dormant_index_hint(dormancy),
            condition = dormancy.condition(),
        )
    }

    /// The capped counts' statement (`$1` the last-activity cutoff, `$2` the creation cutoff).
    fn dormant_count_sql(&self, excluded: &str, extra: &str) -> String {
        format!(
            "SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM users u {inactive_index}
                     WHERE {inactive}{excluded}{extra} LIMIT {cap}) AS a)
                  + (SELECT COUNT(*) FROM (SELECT 1 FROM users u {never_index}
                     WHERE {never}{excluded}{extra} LIMIT {cap}) AS b)",
            inactive_index = self.dormant_index_hint(Dormancy::Inactive),
            never_index = self.dormant_index_hint(Dormancy::NeverActive),
            inactive = Dormancy::Inactive.condition(),
            never = Dormancy::NeverActive.condition().replace("$1", "$2"),
            cap = COUNT_CAP + 1
        )
    }

    /// The planner's plans for the dormant-user statements (the counts, and first and later
    /// pages of both kinds), with sample values written in: for tests that prove they are
    /// served by `users_dormant`.
    pub async fn dormant_query_plans(&self) -> StoreResult<String> {
        let with_values = |sql: String, values: &[&str]| {
            values
                .iter()
                .enumerate()
                .rev()
                .fold(sql, |sql, (index, value)| {
                    sql.replace(&format!("${}", index + 1), value)
                })
        };
        let (day, time) = ("'2026-01-01'", "'2026-01-01T00:00:00+00:00'");
        let statements = [
            with_values(self.dormant_count_sql("", ""), &[day, time]),
            with_values(
                self.dormant_page_sql(Dormancy::Inactive, false, ""),
                &[day, "100"],
            ),
            with_values(
                self.dormant_page_sql(Dormancy::NeverActive, false, ""),
                &[time, "100"],
            ),
            with_values(
                self.dormant_page_sql(Dormancy::Inactive, true, ""),
                &[day, day, time, "5", "100"],
            ),
            with_values(
                self.dormant_page_sql(Dormancy::NeverActive, true, ""),
                &[time, time, "5", "100"],
            ),
        ];
        let mut plans = String::new();
        for statement in statements {
            plans.push_str(&self.query_plan(&statement, &[], &[]).await?);
            plans.push('\n');
        }
        Ok(plans)
    }

    /// SQLite's planner prefers `users_state_type` (or the primary key) over the partial
    /// indexes; named, it reads the range (PostgreSQL finds them itself).
    fn dormant_index_hint(&self, dormancy: Dormancy) -> &'static str {
        match (self.dialect(), dormancy) {
            (super::Dialect::Sqlite, Dormancy::Inactive) => "INDEXED BY users_dormant",
            (super::Dialect::Sqlite, Dormancy::NeverActive) => "INDEXED BY users_never_active",
            (super::Dialect::Postgres, _) => "",
        }
    }

    /// The exclusions' condition while there are any (otherwise two lookups a user spent on an
    /// empty table).
    async fn dormant_exclusion_condition(&self) -> StoreResult<&'static str> {
        Ok(if self.has_dormant_exclusions().await? {
            NOT_EXCLUDED
        } else {
            ""
        })
    }

    /// Whether any user or group is excluded from the dormant-user job.
    async fn has_dormant_exclusions(&self) -> StoreResult<bool> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM (SELECT 1 FROM dormant_exclusions LIMIT 1) AS one")
                .fetch_one(pool)
                .await?
                > 0
        }))
    }

    /// How many users are dormant, and how many of them hold a seat (counted up to
    /// [`COUNT_CAP`] + 1 each).
    pub async fn count_dormant(
        &self,
        cutoffs: DormancyCutoffs,
        ultimate: bool,
    ) -> StoreResult<(i64, i64)> {
        let excluded = self.dormant_exclusion_condition().await?;
        let capped = |extra: &str| self.dormant_count_sql(excluded, extra);
        Ok(with_pool!(self, pool => {
            let all: i64 = sqlx::query_scalar(&capped(""))
                .bind(cutoffs.active_by)
                .bind(cutoffs.created_by)
                .fetch_one(pool)
                .await?;
            // Below Ultimate every dormant user holds a seat (both are active humans and
            // service users); on Ultimate only those with a role above Guest.
            let seats = if ultimate {
                // The billable rule binds its own $1/$2; renumbered past the dormancy bounds.
                let billable = BILLABLE.replace("$1", "$3").replace("$2", "$4");
                sqlx::query_scalar(&capped(&format!(" AND {billable}")))
                    .bind(cutoffs.active_by)
                    .bind(cutoffs.created_by)
                    .bind(ultimate)
                    .bind(GUEST_ACCESS_LEVEL)
                    .fetch_one(pool)
                    .await?
            } else {
                all
            };
            (all.min(COUNT_CAP + 1), seats.min(COUNT_CAP + 1))
        }))
    }

    /// Deactivates these users, each still active, with its audit (and hook) event, in one
    /// transaction; the last active administrator is left active. Returns who was.
    pub async fn deactivate_dormant(
        &self,
        users: &[(i64, NewAudit)],
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<i64>> {
        Ok(in_write_tx!(self, tx => {
            let mut done = Vec::new();
            for (id, audit) in users {
                let admin: Option<bool> = sqlx::query_scalar(
                    "UPDATE users SET state = 'deactivated', updated_at = $2
                     WHERE id = $1 AND state = 'active' RETURNING admin",
                )
                .bind(id)
                .bind(at)
                .fetch_optional(&mut *tx)
                .await?;
                match admin {
                    None => continue,
                    Some(true) => {
                        // Never the last one: put them back rather than fail the batch.
                        let others: Option<i64> = sqlx::query_scalar(
                            "SELECT id FROM users WHERE admin AND state = 'active' LIMIT 1",
                        )
                        .fetch_optional(&mut *tx)
                        .await?;
                        if others.is_none() {
                            sqlx::query("UPDATE users SET state = 'active' WHERE id = $1")
                                .bind(id)
                                .execute(&mut *tx)
                                .await?;
                            continue;
                        }
                    }
                    Some(false) => {}
                }
                insert_audit!(tx, Some(audit), at);
                done.push(*id);
            }
            done
        }))
    }

    /// The exclusions, users first.
    pub async fn dormant_exclusions(&self) -> StoreResult<Vec<DormantExclusion>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, DormantExclusion>(
                "SELECT kind, subject_id FROM dormant_exclusions ORDER BY kind DESC, subject_id",
            )
            .fetch_all(pool)
            .await?
        }))
    }

    /// Replaces the exclusions with `users` and `groups`, audited, in one transaction.
    pub async fn replace_dormant_exclusions(
        &self,
        users: &[i64],
        groups: &[i64],
        audit: &NewAudit,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        in_write_tx!(self, tx => {
            sqlx::query("DELETE FROM dormant_exclusions")
                .execute(&mut *tx)
                .await?;
            for (kind, ids) in [("user", users), ("group", groups)] {
                for id in ids {
                    sqlx::query(
                        "INSERT INTO dormant_exclusions (kind, subject_id, created_at) VALUES ($1, $2, $3)
                         ON CONFLICT (kind, subject_id) DO NOTHING",
                    )
                    .bind(kind)
                    .bind(id)
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            insert_audit!(tx, Some(audit), at);
        });
        Ok(())
    }
}
