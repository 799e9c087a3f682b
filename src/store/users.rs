//! Users: the directory, its states, and the bootstrap and rescue of administrators.

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::users::{UserState, UserType};

use super::{
    capped_count, unique_violation, Db, Dialect, Listed, NewAudit, NewToken, NewUser, Store,
    StoreError, StoreResult, User, UserChanges, UserFilter, Write, BILLABLE, GUEST_ACCESS_LEVEL,
    USER_COLUMNS,
};

/// What the seat controls ask of a new user's creation (GitLab's `seat_control`, in force only
/// on a Premium or Ultimate license: the caller decides).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeatGate {
    Open,
    /// At `cap` billable users, new humans wait for approval.
    UserCap {
        cap: i64,
        ultimate: bool,
    },
    /// At `seats` billable users, no new billable user is created.
    BlockOverages {
        seats: i64,
        ultimate: bool,
    },
}

/// How a gated creation ended.
#[derive(Debug, Clone)]
pub enum Admission {
    Created(User),
    /// Created `blocked_pending_approval`: the user cap is reached.
    Pending(User),
    /// Nothing written: no seat is left and overages are blocked.
    NoSeats,
}

impl Store {
    /// On an empty directory, creates `root` (admin) and its first token in one transaction.
    /// Returns false when users already exist (another replica, or an earlier run, did it).
    pub async fn bootstrap_root(&self, token: &NewToken, now: DateTime<Utc>) -> StoreResult<bool> {
        macro_rules! bootstrap {
            ($kind:ident, $begin:expr, $lock:expr) => {{
                let mut tx = $begin;
                if let Some(lock) = $lock {
                    sqlx::query(lock).execute(&mut *tx).await?;
                }
                let users: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
                    .fetch_one(&mut *tx)
                    .await?;
                if users > 0 {
                    return Ok(false);
                }
                let user_id: i64 = sqlx::query_scalar(
                    "INSERT INTO users (username, name, email, state, user_type, admin, created_at, updated_at)
                     VALUES ('root', 'Administrator', 'admin@example.com', 'active', 'human', TRUE, $1, $1)
                     RETURNING id",
                )
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                insert_token!(tx, user_id, token, now);
                announce_change!($kind, tx);
                tx.commit().await?;
                self.changed();
                Ok(true)
            }};
        }
        match &self.db {
            // Read-then-write: take SQLite's write lock up front so two starts cannot race.
            Db::Sqlite(pool) => {
                bootstrap!(
                    sqlite,
                    pool.begin_with("BEGIN IMMEDIATE").await?,
                    None::<&str>
                )
            }
            Db::Postgres(pool) => bootstrap!(
                postgres,
                pool.begin().await?,
                Some("SELECT pg_advisory_xact_lock(7250001)")
            ),
        }
    }

    /// `admin rescue`: makes `username` an active administrator again — or, for `root`
    /// when it no longer exists, creates it — and gives it `token`, with the audit event
    /// `audit_for(user, created)`, in one transaction. `None` when a user other than root
    /// does not exist.
    pub async fn rescue_admin(
        &self,
        username: &str,
        token: &NewToken,
        now: DateTime<Utc>,
        audit_for: &(dyn Fn(&User, bool) -> NewAudit + Sync),
    ) -> StoreResult<Option<(User, bool)>> {
        Ok(in_write_tx!(self, tx => {
            let existing: Option<i64> = sqlx::query_scalar(
                "UPDATE users SET admin = TRUE, state = 'active', updated_at = $2
                 WHERE lower(username) = lower($1) RETURNING id",
            )
            .bind(username)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let (user_id, created) = match existing {
                Some(id) => (id, false),
                None if username.eq_ignore_ascii_case("root") => {
                    // GitLab's root address, unless someone else has it by now.
                    let taken: Option<i64> = sqlx::query_scalar(
                        "SELECT id FROM users WHERE lower(email) = 'admin@example.com'",
                    )
                    .fetch_optional(&mut *tx)
                    .await?;
                    let email = match taken {
                        None => "admin@example.com".to_string(),
                        Some(_) => format!("root+rescued-{}@example.com", now.timestamp()),
                    };
                    let id: i64 = sqlx::query_scalar(
                        "INSERT INTO users (username, name, email, state, user_type, admin, created_at, updated_at)
                         VALUES ('root', 'Administrator', $1, 'active', 'human', TRUE, $2, $2)
                         RETURNING id",
                    )
                    .bind(email)
                    .bind(now)
                    .fetch_one(&mut *tx)
                    .await?;
                    (id, true)
                }
                None => return Ok(None),
            };
            let _token_id = insert_token!(tx, user_id, token, now);
            let user = sqlx::query_as::<_, User>(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE id = $1"
            ))
            .bind(user_id)
            .fetch_one(&mut *tx)
            .await?;
            let audit = audit_for(&user, created);
            insert_audit!(tx, Some(&audit), now);
            Some((user, created))
        }))
    }

    /// Records that a user was active on `day` (GitLab's `last_activity_on`); only moves the
    /// date forward. False when it was already that recent.
    ///
    /// Like [`Store::touch_token`], it announces no change: cached tokens and licenses do not
    /// depend on the date, and invalidating every replica's caches for each user's first
    /// request of the day would cost the hot path for nothing.
    pub async fn set_last_activity(&self, user_id: i64, day: NaiveDate) -> StoreResult<bool> {
        Ok(with_pool!(self, pool => {
            sqlx::query(
                "UPDATE users SET last_activity_on = $2
                 WHERE id = $1 AND (last_activity_on IS NULL OR last_activity_on < $2)",
            )
            .bind(user_id)
            .bind(day)
            .execute(pool)
            .await?
            .rows_affected()
                > 0
        }))
    }

    pub async fn find_user_by_username(&self, username: &str) -> StoreResult<Option<User>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, User>(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE lower(username) = lower($1)"
            ))
            .bind(username)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Adds a user; a taken username or email is a [`StoreError::Conflict`] naming it.
    pub async fn create_user(&self, user: &NewUser, write: Write<'_>) -> StoreResult<User> {
        Ok(in_write_tx!(self, tx => {
            let created = insert_user!(tx, user, write.at);
            insert_audit!(tx, write.audit_of(created.id), write.at);
            created
        }))
    }

    /// Adds a user under the seat controls, decided inside the insert's transaction and one
    /// at a time across replicas (a row lock held to commit), so two users created together at
    /// the cap are counted one after the other: with a user cap reached, a new human is
    /// created `blocked_pending_approval` (`pending_write`'s audit and hook then recorded
    /// too); with overages blocked and no seat left, nothing is written.
    pub async fn create_user_gated(
        &self,
        user: &NewUser,
        gate: SeatGate,
        write: Write<'_>,
        pending_write: Write<'_>,
    ) -> StoreResult<Admission> {
        Ok(in_write_tx!(self, tx => {
            let admission = match gate {
                SeatGate::Open => None,
                SeatGate::UserCap { cap, ultimate } | SeatGate::BlockOverages { seats: cap, ultimate } => {
                    sqlx::query(
                        "INSERT INTO application_settings (name, value, updated_at)
                         VALUES ('seat_control_lock', '', $1)
                         ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at",
                    )
                    .bind(write.at)
                    .execute(&mut *tx)
                    .await?;
                    // GitLab's `billable.limit(n).count`: counted only as far as it matters.
                    let billable: i64 = sqlx::query_scalar(&format!(
                        "SELECT COUNT(*) FROM (SELECT 1 FROM users u WHERE {BILLABLE} LIMIT $3) AS capped"
                    ))
                    .bind(ultimate)
                    .bind(GUEST_ACCESS_LEVEL)
                    .bind(cap.saturating_add(1))
                    .fetch_one(&mut *tx)
                    .await?;
                    Some((gate, billable >= cap))
                }
            };
            match admission {
                Some((SeatGate::BlockOverages { .. }, true)) => Admission::NoSeats,
                Some((SeatGate::UserCap { .. }, true)) => {
                    let pending = NewUser {
                        state: UserState::BlockedPendingApproval,
                        ..user.clone()
                    };
                    let created = insert_user!(tx, pending, write.at);
                    insert_audit!(tx, write.audit_of(created.id), write.at);
                    insert_audit!(tx, pending_write.audit_of(created.id), write.at);
                    Admission::Pending(created)
                }
                _ => {
                    let created = insert_user!(tx, user, write.at);
                    insert_audit!(tx, write.audit_of(created.id), write.at);
                    Admission::Created(created)
                }
            }
        }))
    }

    /// Moves a user to another state (`active`, `blocked`, `deactivated`, `banned`, …).
    pub async fn set_user_state(
        &self,
        user_id: i64,
        state: UserState,
        write: Write<'_>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            let admin: Option<bool> = sqlx::query_scalar(
                "UPDATE users SET state = $2, updated_at = $3 WHERE id = $1 RETURNING admin",
            )
            .bind(user_id)
            .bind(state.as_str())
            .bind(write.at)
            .fetch_optional(&mut *tx)
            .await?;
            if admin == Some(true) && state != UserState::Active {
                keep_an_active_admin!(tx, write.at);
            }
            if admin.is_some() {
                insert_audit!(tx, write.audit, write.at);
            }
            admin.is_some()
        }))
    }

    /// A page of the users in `state`, in id order after user `after` (`users_state_type`
    /// finds them).
    pub async fn users_in_state(
        &self,
        state: UserState,
        after: i64,
        limit: i64,
    ) -> StoreResult<Vec<User>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, User>(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE state = $1 AND id > $2 ORDER BY id LIMIT $3"
            ))
            .bind(state.as_str())
            .bind(after)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    /// How many users are in `state`, counted up to one past [`COUNT_CAP`](super::COUNT_CAP)
    /// (`users_state_type` finds them).
    pub async fn count_users_in_state(&self, state: UserState) -> StoreResult<i64> {
        let sql = capped_count("FROM users WHERE state = $1");
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar::<_, i64>(&sql)
                .bind(state.as_str())
                .fetch_one(pool)
                .await?
        }))
    }

    pub async fn find_user(&self, id: i64) -> StoreResult<Option<User>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, User>(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Which of `email` and `username` another user (not `except_id`) already has, email
    /// first, as GitLab checks them.
    pub async fn user_conflict(
        &self,
        email: Option<&str>,
        username: Option<&str>,
        except_id: Option<i64>,
    ) -> StoreResult<Option<&'static str>> {
        let except_id = except_id.unwrap_or(0);
        let taken = |column: &'static str, value: &str| {
            let value = value.to_string();
            async move {
                let sql = format!(
                    "SELECT COUNT(*) FROM users WHERE lower({column}) = lower($1) AND id <> $2"
                );
                Ok::<bool, StoreError>(with_pool!(self, pool => {
                    sqlx::query_scalar::<_, i64>(&sql)
                        .bind(&value)
                        .bind(except_id)
                        .fetch_one(pool)
                        .await?
                        > 0
                }))
            }
        };
        if let Some(email) = email {
            if taken("email", email).await? {
                return Ok(Some("Email has already been taken"));
            }
        }
        if let Some(username) = username {
            if taken("username", username).await? {
                return Ok(Some("Username has already been taken"));
            }
        }
        Ok(None)
    }

    /// The page statement of [`Store::list_users`] (its last two binds are the limit and the
    /// offset) and its text arguments — what the query-plan tests explain.
    pub fn list_users_sql(
        &self,
        filter: &UserFilter,
        (column, direction): (&'static str, &'static str),
    ) -> (String, Vec<String>) {
        let (source, args, _) = self.matching_users(filter);
        let sql = format!(
            "{source}
             ORDER BY {column} {direction}, id {direction} LIMIT ${} OFFSET ${}",
            args.len() + 1,
            args.len() + 2
        );
        (sql, args)
    }

    /// `SELECT … FROM …` of the users `filter` matches, its text arguments, and whether it ends
    /// in a WHERE clause (that a further condition joins with AND). A search on PostgreSQL
    /// first gathers its matches (MATERIALIZED): its planner cannot estimate how few rows a
    /// `LIKE '%…%'` matches, and would otherwise walk the primary key through a million rows
    /// looking for a page of them, where the trigram indexes find them at once.
    fn matching_users(&self, filter: &UserFilter) -> (String, Vec<String>, bool) {
        let dialect = self.dialect();
        let (where_clause, args) = filter.where_clause(dialect);
        if filter.search.is_some() && dialect == Dialect::Postgres {
            let source = format!(
                "WITH matches AS MATERIALIZED (SELECT {USER_COLUMNS} FROM users {where_clause})
                 SELECT {USER_COLUMNS} FROM matches"
            );
            (source, args, false)
        } else {
            let filtered = !where_clause.is_empty();
            let source = format!("SELECT {USER_COLUMNS} FROM users {where_clause}");
            (source, args, filtered)
        }
    }

    /// The statement of [`Store::list_users_by_id`] (its last binds: the cursor's id when
    /// `after` is set, then the limit) and its text arguments.
    pub fn users_by_id_sql(
        &self,
        filter: &UserFilter,
        ascending: bool,
        after: bool,
    ) -> (String, Vec<String>) {
        let (source, args, filtered) = self.matching_users(filter);
        let (direction, beyond) = if ascending {
            ("ASC", ">")
        } else {
            ("DESC", "<")
        };
        let mut next = args.len() + 1;
        let after_clause = if after {
            let joiner = if filtered { "AND" } else { "WHERE" };
            next += 1;
            format!("{joiner} id {beyond} ${}", next - 1)
        } else {
            String::new()
        };
        let sql = format!(
            "{source} {after_clause}
             ORDER BY id {direction} LIMIT ${next}"
        );
        (sql, args)
    }

    /// `GET /users?pagination=keyset`: the page after the user `after` in id order (the
    /// primary key serves any depth alike), and whether another page follows.
    pub async fn list_users_by_id(
        &self,
        filter: &UserFilter,
        ascending: bool,
        after: Option<i64>,
        limit: i64,
    ) -> StoreResult<(Vec<User>, bool)> {
        let (sql, args) = self.users_by_id_sql(filter, ascending, after.is_some());
        let mut users = with_pool!(self, pool => {
            let query = sqlx::query_as::<_, User>(&sql);
            let query = args.iter().fold(query, |query, arg| query.bind(arg));
            let query = match after {
                Some(id) => query.bind(id),
                None => query,
            };
            query.bind(limit.saturating_add(1)).fetch_all(pool).await?
        });
        let more = users.len() as i64 > limit;
        users.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok((users, more))
    }

    /// `GET /users`: one page in the requested order.
    pub async fn list_users(
        &self,
        filter: &UserFilter,
        order: (&'static str, &'static str),
        offset: i64,
        limit: i64,
    ) -> StoreResult<Listed<User>> {
        let (page_sql, args) = self.list_users_sql(filter, order);
        let (where_clause, _) = filter.where_clause(self.dialect());
        let count_sql = capped_count(&format!("FROM users {where_clause}"));
        Ok(Listed::capped(with_pool!(self, pool => {
            page_and_total!(pool, User, &page_sql, &count_sql, limit, offset, |query| {
                args.iter().fold(query, |query, arg| query.bind(arg))
            })
        })))
    }

    /// Applies `changes`; `None` when there is no such user.
    pub async fn update_user(
        &self,
        id: i64,
        changes: &UserChanges,
        write: Write<'_>,
    ) -> StoreResult<Option<User>> {
        Ok(in_write_tx!(self, tx => {
            let updated = sqlx::query_as::<_, User>(&format!(
                "UPDATE users SET
                    username = COALESCE($2, username), name = COALESCE($3, name),
                    email = COALESCE($4, email), admin = COALESCE($5, admin),
                    user_type = COALESCE($6, user_type), updated_at = $7
                 WHERE id = $1
                 RETURNING {USER_COLUMNS}"
            ))
            .bind(id)
            .bind(&changes.username)
            .bind(&changes.name)
            .bind(&changes.email)
            .bind(changes.admin)
            .bind(changes.user_type.map(UserType::as_str))
            .bind(write.at)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|error| unique_violation(error, &[
                ("users_username_unique", "Username has already been taken"),
                ("users_email_unique", "Email has already been taken"),
            ]))?;
            if updated.is_some() {
                if changes.admin == Some(false) {
                    keep_an_active_admin!(tx, write.at);
                }
                insert_audit!(tx, write.audit, write.at);
            }
            updated
        }))
    }

    /// Deletes a user with their tokens and memberships; false when there was none.
    pub async fn delete_user(&self, id: i64, write: Write<'_>) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            let removed: Option<(bool, String)> =
                sqlx::query_as("DELETE FROM users WHERE id = $1 RETURNING admin, state")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if removed.as_ref().is_some_and(|(admin, state)| *admin && state == "active") {
                keep_an_active_admin!(tx, write.at);
            }
            if removed.is_some() {
                insert_audit!(tx, write.audit, write.at);
            }
            removed.is_some()
        }))
    }
}
