//! Persistence. The only module that sees SQL.
//!
//! One `Store` holds either a SQLite or a PostgreSQL pool. Most statements are written once and
//! compiled against both drivers through [`with_pool!`], so the shared test suite keeps both
//! honest; where the dialects differ, each backend gets its own statement side by side.

mod models;

pub use models::*;

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// PostgreSQL channel on which every committed change is announced to the other replicas.
pub const CHANGE_CHANNEL: &str = "gitlab_license_server_changes";

/// GitLab's usage-trends identifier for billable users.
pub const BILLABLE_USERS_MEASUREMENT: i16 = 11;

/// Access levels above Guest (Planner 15 and up) occupy a seat on Ultimate.
pub const GUEST_ACCESS_LEVEL: i32 = 10;

/// GitLab's `User.billable`, over `users u`: active humans and service users, and on Ultimate
/// (`$1`) only those with a role above Guest (`$2`) somewhere. The one statement of the rule:
/// counts and per-user answers both use it.
const BILLABLE: &str = "u.state = 'active'
    AND u.user_type IN ('human', 'service_user')
    AND (NOT CAST($1 AS BOOLEAN) OR EXISTS (
        SELECT 1 FROM members m WHERE m.user_id = u.id AND m.access_level > $2))";

/// The columns of a [`User`], for every statement that returns users.
const USER_COLUMNS: &str =
    "id, username, name, email, state, user_type, admin, created_at, last_activity_on";

/// [`USER_COLUMNS`] of `users` aliased `u`, as a literal so that `concat!` can build on it.
macro_rules! u_user_columns {
    () => {
        "u.id, u.username, u.name, u.email, u.state, u.user_type, u.admin, u.created_at, u.last_activity_on"
    };
}
const U_USER_COLUMNS: &str = u_user_columns!();

/// The columns of a [`TokenWithUser`]: tokens aliased `t` joined with their users `u`.
const TOKEN_WITH_USER_COLUMNS: &str = concat!(
    "t.id AS token_id, t.name AS token_name, t.scopes, t.expires_at, t.revoked, t.last_used_at, ",
    u_user_columns!()
);

/// A group's memberships joined with their users (as [`Member`] rows); callers add conditions.
const MEMBER_SELECT: &str = concat!(
    "SELECT m.access_level, m.created_at AS member_created_at, ",
    u_user_columns!(),
    " FROM members m JOIN users u ON u.id = m.user_id
    WHERE m.source_type = 'Namespace' AND m.source_id = $1"
);

/// Connection-pool figures for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    pub size: u32,
    pub idle: u32,
    pub max: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error("DATABASE_URL must start with sqlite:// or postgres:// (got `{0}…`)")]
    UnsupportedUrl(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The database was found unreachable a moment ago; requests fail at once until it
    /// answers again (see [`Store::mark_unreachable`]).
    #[error("the database is unreachable")]
    Unavailable,
    /// The change would leave no active administrator.
    #[error("the change would leave no active administrator")]
    LastAdministrator,
}

impl StoreError {
    /// Whether the database could not be reached (down, restarting, a network cut, or no
    /// connection free in time), as opposed to a statement that failed: the request may
    /// succeed if retried, so clients get a 503, not a 500.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable => true,
            Self::Database(error) => is_connection_error(error),
            _ => false,
        }
    }
}

/// sqlx errors that mean "no usable connection" rather than "this statement failed".
pub fn is_connection_error(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL's connection exceptions (class 08), shutdowns and start-ups (57P01–03),
        // and no slot left (53300).
        sqlx::Error::Database(database) => database.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The database, plus a counter bumped after every committed write so that caches can tell
/// whether what they hold is still current.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    changes: Arc<AtomicU64>,
    /// Set while the database is known to be unreachable (PostgreSQL: the change listener
    /// lost its connection and cannot get one back); cleared when it answers again.
    unreachable: Arc<AtomicBool>,
    /// Woken when the database is declared unreachable, so that calls already waiting for a
    /// connection (a pool waits up to its acquire timeout) give up then, not seconds later.
    outage: Arc<tokio::sync::Notify>,
}

#[derive(Clone, Debug)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs the same block against whichever pool the store holds; the block is compiled once
/// per driver, so a statement that one backend cannot type fails the build. While the
/// database is known to be unreachable it fails at once with [`StoreError::Unavailable`]
/// instead of waiting for a connection that will not come.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {{
        $store.ensure_reachable()?;
        on_pool!($store, $pool => $body)
    }};
}

/// [`with_pool!`] without the reachability check (the probe, the pool figures, closing).
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            Db::Sqlite($pool) => $body,
            Db::Postgres($pool) => $body,
        }
    };
}

/// Announces a committed change to other replicas (PostgreSQL only; SQLite has one process).
macro_rules! announce_change {
    (sqlite, $tx:expr) => {};
    (postgres, $tx:expr) => {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind($crate::store::CHANGE_CHANNEL)
            .execute(&mut *$tx)
            .await?;
    };
}

/// Runs `$body` in one write transaction on either backend, then commits, announces the change
/// to other replicas (PostgreSQL `NOTIFY`, delivered on commit) and bumps the local change
/// counter — the steps every write needs, in the only order that keeps caches honest.
macro_rules! in_write_tx {
    ($store:expr, $tx:ident => $body:expr) => {{
        $store.ensure_reachable()?;
        let value = match &$store.db {
            Db::Sqlite(pool) => {
                let mut $tx = pool.begin().await?;
                let value = $body;
                $tx.commit().await?;
                value
            }
            Db::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                let value = $body;
                announce_change!(postgres, $tx);
                $tx.commit().await?;
                value
            }
        };
        $store.changed();
        value
    }};
}

/// Inside an open transaction whose change removed an active administrator (blocked,
/// banned, deactivated, demoted or deleted one): refuses the change, with
/// [`StoreError::LastAdministrator`], if no active administrator is left. Such changes first
/// take one shared row lock (an upsert both backends have), so two administrators demoting
/// each other at the same moment are counted one after the other, never both against the
/// state before either.
macro_rules! keep_an_active_admin {
    ($tx:expr, $now:expr) => {{
        sqlx::query(
            "INSERT INTO application_settings (name, value, updated_at)
             VALUES ('active_admins_guard', '', $1)
             ON CONFLICT (name) DO UPDATE SET updated_at = excluded.updated_at",
        )
        .bind($now)
        .execute(&mut *$tx)
        .await?;
        let remaining: Option<i64> =
            sqlx::query_scalar("SELECT id FROM users WHERE admin AND state = 'active' LIMIT 1")
                .fetch_optional(&mut *$tx)
                .await?;
        if remaining.is_none() {
            return Err(StoreError::LastAdministrator);
        }
    }};
}

/// Inserts a token inside an open transaction and evaluates to its id.
macro_rules! insert_token {
    ($tx:expr, $user_id:expr, $token:expr, $now:expr) => {
        sqlx::query_scalar::<_, i64>(
            "INSERT INTO personal_access_tokens (user_id, name, token_digest, scopes, expires_at, revoked, created_at)
             VALUES ($1, $2, $3, $4, $5, FALSE, $6) RETURNING id",
        )
        .bind($user_id)
        .bind(&$token.name)
        .bind(&$token.digest)
        .bind($token.scopes.join(" "))
        .bind($token.expires_at)
        .bind($now)
        .fetch_one(&mut *$tx)
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict("a token with this value already exists".into())
            }
            _ => StoreError::Database(error),
        })?
    };
}

/// Records a system-hook event and one pending delivery per hook inside an open transaction;
/// evaluates to whether it was new (a `dedupe_key` already used records nothing).
macro_rules! insert_hook_event {
    ($tx:expr, $name:expr, $payload:expr, $dedupe:expr, $now:expr) => {{
        let event_id = sqlx::query_scalar::<_, i64>(
            "INSERT INTO hook_events (event_name, payload, dedupe_key, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id",
        )
        .bind($name)
        .bind($payload.to_string())
        .bind($dedupe)
        .bind($now)
        .fetch_optional(&mut *$tx)
        .await?;
        if let Some(event_id) = event_id {
            sqlx::query(
                "INSERT INTO hook_deliveries (hook_id, event_id, state, attempts, next_attempt_at, created_at)
                 SELECT id, $1, 'pending', 0, $2, $2 FROM system_hooks",
            )
            .bind(event_id)
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        }
        event_id.is_some()
    }};
}

/// Records an audit event inside an open transaction (and the hook event it raises).
macro_rules! insert_audit {
    ($tx:expr, $audit:expr, $now:expr) => {
        if let Some(audit) = $audit {
            if let Some(hook) = &audit.hook {
                let mut payload = hook.payload.clone();
                if let Some(field) = hook.id_field {
                    payload[field] = serde_json::json!(audit.entity_id);
                }
                let _recorded = insert_hook_event!($tx, hook.event_name, payload, None::<String>, $now);
            }
            sqlx::query(
                "INSERT INTO audit_events (author_id, entity_type, entity_id, event_name, details, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(audit.author_id)
            .bind(audit.entity_type)
            .bind(audit.entity_id)
            .bind(audit.event_name)
            .bind(audit.details.to_string())
            .bind($now)
            .execute(&mut *$tx)
            .await?;
        }
    };
}

mod add_ons;
pub mod backup;
mod hooks;
mod sessions;

pub use add_ons::{
    AddOnPurchase, EligibleOrder, EligibleUserFilter, Locked, SaveMode, SeatAudit, UserSearch,
};
pub use hooks::{AttemptOutcome, DeliveryLog, DeliveryWork, HookSettings, SystemHook};
pub use sessions::{SeatHolder, WebSession};

impl Store {
    fn new(db: Db) -> Self {
        Self {
            db,
            changes: Arc::new(AtomicU64::new(0)),
            unreachable: Arc::new(AtomicBool::new(false)),
            outage: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Whether the database answered the last time anybody could tell.
    pub fn is_reachable(&self) -> bool {
        !self.unreachable.load(Ordering::Acquire)
    }

    /// From now on statements fail at once with [`StoreError::Unavailable`].
    pub fn mark_unreachable(&self) {
        if !self.unreachable.swap(true, Ordering::AcqRel) {
            tracing::warn!("the database is unreachable; serving what the caches hold");
        }
        self.outage.notify_waiters();
    }

    /// Runs `call`, or fails with [`StoreError::Unavailable`] as soon as the database is
    /// declared unreachable. For the reads that have a cached answer to fall back on during an
    /// outage (and the bookkeeping writes of every authenticated request): one that began just
    /// before the outage was noticed would otherwise wait out the pool's acquire timeout.
    pub async fn unless_unreachable<T>(
        &self,
        call: impl std::future::Future<Output = StoreResult<T>>,
    ) -> StoreResult<T> {
        let outage = self.outage.notified();
        tokio::pin!(outage);
        // Registered before the flag is read, so a declaration in between still wakes it.
        outage.as_mut().enable();
        self.ensure_reachable()?;
        tokio::select! {
            biased;
            result = call => result,
            () = outage => Err(StoreError::Unavailable),
        }
    }

    /// The database answers again. Anything may have changed meanwhile, so caches start over.
    pub fn mark_reachable(&self) {
        if self.unreachable.swap(false, Ordering::AcqRel) {
            tracing::info!("the database is reachable again");
            self.changed();
        }
    }

    fn ensure_reachable(&self) -> StoreResult<()> {
        if self.is_reachable() {
            Ok(())
        } else {
            Err(StoreError::Unavailable)
        }
    }

    /// How many writes this process has committed or heard of; a cached value read before the
    /// number moved may be stale.
    pub fn change_count(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Records that the data changed: after every local commit, and when another replica
    /// announces one.
    pub fn changed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    /// Connects to `url` (`sqlite://…` or `postgres://…`); a missing SQLite file is created.
    pub async fn connect(url: &str, pool_size: Option<u32>) -> StoreResult<Self> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
                // Keep per-connection page caches small: the working set is tiny.
                .pragma("cache_size", "-512");
            if !url.contains(":memory:") {
                prepare_private_sqlite_file(options.get_filename())?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(pool_size.unwrap_or(4))
                .min_connections(1)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await?;
            Ok(Self::new(Db::Sqlite(pool)))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options =
                PgConnectOptions::from_str(url)?.application_name("gitlab-license-server");
            let pool = PgPoolOptions::new()
                .max_connections(pool_size.unwrap_or(10))
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(options)
                .await?;
            Ok(Self::new(Db::Postgres(pool)))
        } else {
            let scheme: String = url.chars().take_while(|c| *c != ':').take(16).collect();
            Err(StoreError::UnsupportedUrl(scheme))
        }
    }

    /// The connection pool's size now, its idle part and its limit.
    pub fn pool_stats(&self) -> PoolStats {
        on_pool!(self, pool => PoolStats {
            size: pool.size(),
            idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            max: pool.options().get_max_connections(),
        })
    }

    pub fn backend_name(&self) -> &'static str {
        match &self.db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgresql",
        }
    }

    pub fn postgres_pool(&self) -> Option<&PgPool> {
        match &self.db {
            Db::Postgres(pool) => Some(pool),
            Db::Sqlite(_) => None,
        }
    }

    /// Applies the migrations of this backend (PostgreSQL serialises concurrent replicas with an
    /// advisory lock).
    pub async fn migrate(&self) -> StoreResult<()> {
        match &self.db {
            Db::Sqlite(pool) => sqlx::migrate!("./migrations/sqlite").run(pool).await?,
            Db::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// Readiness: the database answers and holds the schema this build expects — the newest
    /// migration it knows applied successfully, none newer — and the directory is there.
    pub async fn check_schema(&self) -> Result<(), String> {
        if !self.is_reachable() {
            return Err("database unreachable".into());
        }
        let expected = self.schema_version();
        let applied = on_pool!(self, pool => {
            sqlx::query_as::<_, (Option<i64>, i64)>(
                "SELECT MAX(version), COUNT(*) FROM _sqlx_migrations WHERE success",
            )
            .fetch_one(pool)
            .await
        });
        let (latest, _) = applied.map_err(|error| {
            if StoreError::from(error).is_unavailable() {
                "database unreachable".to_string()
            } else {
                "the schema is missing".to_string()
            }
        })?;
        if latest != Some(expected) {
            return Err(format!(
                "the schema is at migration {} but this build expects {expected}",
                latest.map_or_else(|| "none".to_string(), |version| version.to_string())
            ));
        }
        on_pool!(self, pool => {
            sqlx::query("SELECT 1 FROM users WHERE FALSE").execute(pool).await.map(|_| ())
        })
        .map_err(|_| "the users table is missing".to_string())?;
        Ok(())
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }

    // ----- users and tokens -------------------------------------------------------------

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

    /// The token with this digest and its owner.
    pub async fn find_token(&self, digest: &str) -> StoreResult<Option<TokenWithUser>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, TokenWithUser>(&format!(
                "SELECT {TOKEN_WITH_USER_COLUMNS}
                 FROM personal_access_tokens t JOIN users u ON u.id = t.user_id
                 WHERE t.token_digest = $1",
            ))
            .bind(digest)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Records a token's use unless it was recorded within `interval`. Not announced as a
    /// change: nothing cached shows it, and the token API reads it from here.
    pub async fn touch_token(
        &self,
        token_id: i64,
        now: DateTime<Utc>,
        interval: chrono::TimeDelta,
    ) -> StoreResult<()> {
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE personal_access_tokens SET last_used_at = $2
                 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
            )
            .bind(token_id)
            .bind(now)
            .bind(now - interval)
            .execute(pool)
            .await?;
        });
        Ok(())
    }

    pub async fn create_token(
        &self,
        user_id: i64,
        token: &NewToken,
        now: DateTime<Utc>,
        audit: Option<&NewAudit>,
    ) -> StoreResult<i64> {
        Ok(in_write_tx!(self, tx => {
            let id = insert_token!(tx, user_id, token, now);
            insert_audit!(tx, audit.map(|audit| NewAudit {
                details: {
                    let mut details = audit.details.clone();
                    details["target_id"] = serde_json::json!(id);
                    details
                },
                ..audit.clone()
            }), now);
            id
        }))
    }

    const TOKEN_COLUMNS: &'static str =
        "id, user_id, name, scopes, expires_at, revoked, created_at, last_used_at";

    pub async fn find_token_by_id(&self, id: i64) -> StoreResult<Option<TokenRow>> {
        let sql = format!(
            "SELECT {} FROM personal_access_tokens WHERE id = $1",
            Self::TOKEN_COLUMNS
        );
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, TokenRow>(&sql).bind(id).fetch_optional(pool).await?
        }))
    }

    pub async fn list_tokens(
        &self,
        filter: &TokenFilter,
        today: NaiveDate,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<TokenRow>, i64)> {
        const WHERE: &str = "WHERE ($1 = 0 OR user_id = $1)
               AND (NOT $2 OR revoked = $3)
               AND (NOT $4 OR ((NOT revoked AND (expires_at IS NULL OR expires_at > $6)) = $5))";
        let page_sql = format!(
            "SELECT {} FROM personal_access_tokens {WHERE} ORDER BY id LIMIT $7 OFFSET $8",
            Self::TOKEN_COLUMNS
        );
        let count_sql = format!("SELECT COUNT(*) FROM personal_access_tokens {WHERE}");
        Ok(with_pool!(self, pool => {
            // The page and the total share one WHERE clause and so one set of binds.
            macro_rules! filtered {
                ($query:expr) => {
                    $query.bind(filter.user_id.unwrap_or(0)).bind(filter.revoked.is_some()).bind(filter.revoked.unwrap_or(false)).bind(filter.active.is_some()).bind(filter.active.unwrap_or(false)).bind(today)
                };
            }
            let tokens = filtered!(sqlx::query_as::<_, TokenRow>(&page_sql))
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await?;
            let total = filtered!(sqlx::query_scalar::<_, i64>(&count_sql))
                .fetch_one(pool)
                .await?;
            (tokens, total)
        }))
    }

    /// Adds a user; a taken username or email is a [`StoreError::Conflict`] naming it.
    pub async fn create_user(
        &self,
        user: &NewUser,
        now: DateTime<Utc>,
        audit: Option<&NewAudit>,
    ) -> StoreResult<User> {
        Ok(in_write_tx!(self, tx => {
            let created = sqlx::query_as::<_, User>(&format!(
                "INSERT INTO users (username, name, email, state, user_type, admin, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
                 RETURNING {USER_COLUMNS}"
            ))
            .bind(&user.username)
            .bind(&user.name)
            .bind(&user.email)
            .bind(&user.state)
            .bind(&user.user_type)
            .bind(user.admin)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|error| unique_violation(error, &[
                ("users_username_unique", "Username has already been taken"),
                ("users_email_unique", "Email has already been taken"),
            ]))?;
            insert_audit!(tx, audit.map(|audit| NewAudit { entity_id: created.id, ..audit.clone() }), now);
            created
        }))
    }

    /// Moves a user to another state (`active`, `blocked`, `deactivated`, `banned`, …).
    pub async fn set_user_state(
        &self,
        user_id: i64,
        state: &str,
        now: DateTime<Utc>,
        audit: Option<&NewAudit>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            let admin: Option<bool> = sqlx::query_scalar(
                "UPDATE users SET state = $2, updated_at = $3 WHERE id = $1 RETURNING admin",
            )
            .bind(user_id)
            .bind(state)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            if admin == Some(true) && state != "active" {
                keep_an_active_admin!(tx, now);
            }
            if admin.is_some() {
                insert_audit!(tx, audit, now);
            }
            admin.is_some()
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

    /// `GET /users`: one page in the requested order, and the total matching.
    pub async fn list_users(
        &self,
        filter: &UserFilter,
        order: (&'static str, &'static str),
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<User>, i64)> {
        const WHERE: &str = "WHERE (CAST($1 AS TEXT) IS NULL
                    OR lower(username) LIKE $1 ESCAPE '\\' OR lower(name) LIKE $1 ESCAPE '\\'
                    OR lower(email) LIKE $1 ESCAPE '\\')
               AND (CAST($2 AS TEXT) IS NULL OR lower(username) = lower($2))
               AND (NOT $3 OR (state = 'active' AND user_type <> 'ghost'))
               AND (NOT $4 OR state IN ('blocked', 'ldap_blocked'))
               AND (NOT $5 OR user_type = 'human')
               AND (NOT $6 OR user_type IN ('human', 'project_bot', 'service_user', 'service_account'))";
        let (column, direction) = order;
        let search = filter.search.as_deref().map(contains_pattern);
        let page_sql = format!(
            "SELECT {USER_COLUMNS} FROM users {WHERE}
             ORDER BY {column} {direction}, id {direction} LIMIT $7 OFFSET $8"
        );
        let count_sql = format!("SELECT COUNT(*) FROM users {WHERE}");
        Ok(with_pool!(self, pool => {
            // The page and the total share one WHERE clause and so one set of binds.
            macro_rules! filtered {
                ($query:expr) => {
                    $query.bind(&search).bind(&filter.username).bind(filter.active).bind(filter.blocked).bind(filter.humans).bind(filter.exclude_internal)
                };
            }
            let users = filtered!(sqlx::query_as::<_, User>(&page_sql))
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await?;
            let total = filtered!(sqlx::query_scalar::<_, i64>(&count_sql))
                .fetch_one(pool)
                .await?;
            (users, total)
        }))
    }

    /// Applies `changes`; `None` when there is no such user.
    pub async fn update_user(
        &self,
        id: i64,
        changes: &UserChanges,
        now: DateTime<Utc>,
        audit: Option<&NewAudit>,
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
            .bind(&changes.user_type)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|error| unique_violation(error, &[
                ("users_username_unique", "Username has already been taken"),
                ("users_email_unique", "Email has already been taken"),
            ]))?;
            if updated.is_some() {
                if changes.admin == Some(false) {
                    keep_an_active_admin!(tx, now);
                }
                insert_audit!(tx, audit, now);
            }
            updated
        }))
    }

    /// Deletes a user with their tokens and memberships; false when there was none.
    pub async fn delete_user(
        &self,
        id: i64,
        now: DateTime<Utc>,
        audit: Option<&NewAudit>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            let removed: Option<(bool, String)> =
                sqlx::query_as("DELETE FROM users WHERE id = $1 RETURNING admin, state")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if removed.as_ref().is_some_and(|(admin, state)| *admin && state == "active") {
                keep_an_active_admin!(tx, now);
            }
            if removed.is_some() {
                insert_audit!(tx, audit, now);
            }
            removed.is_some()
        }))
    }

    /// Audit events, newest first, optionally for one entity and within a time window.
    pub async fn audit_events(
        &self,
        entity: Option<(&str, Option<i64>)>,
        created_after: Option<DateTime<Utc>>,
        created_before: Option<DateTime<Utc>>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<AuditRow>, i64)> {
        const WHERE: &str = "WHERE (CAST($1 AS TEXT) IS NULL OR entity_type = $1)
               AND ($2 = 0 OR entity_id = $2)
               AND (NOT $3 OR created_at >= $4) AND (NOT $5 OR created_at <= $6)";
        let (entity_type, entity_id) = match entity {
            Some((entity_type, id)) => (Some(entity_type.to_string()), id.unwrap_or(0)),
            None => (None, 0),
        };
        let epoch = DateTime::<Utc>::UNIX_EPOCH;
        let page_sql = format!(
            "SELECT id, author_id, entity_type, entity_id, event_name, details, created_at
             FROM audit_events {WHERE} ORDER BY id DESC LIMIT $7 OFFSET $8"
        );
        let count_sql = format!("SELECT COUNT(*) FROM audit_events {WHERE}");
        Ok(with_pool!(self, pool => {
            // The page and the total share one WHERE clause and so one set of binds.
            macro_rules! filtered {
                ($query:expr) => {
                    $query.bind(&entity_type).bind(entity_id).bind(created_after.is_some()).bind(created_after.unwrap_or(epoch)).bind(created_before.is_some()).bind(created_before.unwrap_or(epoch))
                };
            }
            let rows = filtered!(sqlx::query_as::<_, AuditRow>(&page_sql))
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await?;
            let total = filtered!(sqlx::query_scalar::<_, i64>(&count_sql))
                .fetch_one(pool)
                .await?;
            (rows, total)
        }))
    }

    pub async fn find_audit_event(&self, id: i64) -> StoreResult<Option<AuditRow>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, AuditRow>(
                "SELECT id, author_id, entity_type, entity_id, event_name, details, created_at
                 FROM audit_events WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Gives a user access to a group or project at `access_level`.
    pub async fn add_membership(
        &self,
        user_id: i64,
        source_type: &str,
        source_id: i64,
        access_level: i32,
        now: DateTime<Utc>,
        audit: Option<&NewAudit>,
    ) -> StoreResult<()> {
        in_write_tx!(self, tx => {
            sqlx::query(
                "INSERT INTO members (user_id, source_type, source_id, access_level, created_at)
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(user_id)
            .bind(source_type)
            .bind(source_id)
            .bind(access_level)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(|error| unique_violation(error, &[("members_source_type_source_id_user_id_key", "Member already exists")]))?;
            insert_audit!(tx, audit, now);
        });
        Ok(())
    }

    /// Revokes a token; false when there was none with this id.
    pub async fn revoke_token(
        &self,
        token_id: i64,
        now: DateTime<Utc>,
        audit: Option<&NewAudit>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            let revoked = sqlx::query(
                "UPDATE personal_access_tokens SET revoked = TRUE WHERE id = $1 AND NOT revoked",
            )
            .bind(token_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if revoked {
                insert_audit!(tx, audit, now);
            }
            revoked
        }))
    }

    // ----- groups and members ----------------------------------------------------------------

    pub async fn create_group(
        &self,
        group: &NewGroup,
        now: DateTime<Utc>,
        audit: Option<&NewAudit>,
    ) -> StoreResult<Group> {
        Ok(in_write_tx!(self, tx => {
            let created = sqlx::query_as::<_, Group>(
                "INSERT INTO groups (name, path, description, visibility, created_at)
                 VALUES ($1, $2, $3, $4, $5)
                 RETURNING id, name, path, description, visibility, created_at",
            )
            .bind(&group.name)
            .bind(&group.path)
            .bind(&group.description)
            .bind(&group.visibility)
            .bind(now)
            .fetch_one(&mut *tx)
            .await
            .map_err(|error| unique_violation(error, &[("groups_path_unique", "path")]))?;
            insert_audit!(tx, audit.map(|audit| NewAudit { entity_id: created.id, ..audit.clone() }), now);
            created
        }))
    }

    pub async fn list_groups(
        &self,
        search: Option<&str>,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<Group>, i64)> {
        const WHERE: &str =
            "WHERE (CAST($1 AS TEXT) IS NULL OR lower(name) LIKE $1 ESCAPE '\\' OR lower(path) LIKE $1 ESCAPE '\\')";
        let pattern = search.map(contains_pattern);
        let page_sql = format!(
            "SELECT id, name, path, description, visibility, created_at FROM groups {WHERE}
             ORDER BY name ASC, id ASC LIMIT $2 OFFSET $3"
        );
        let count_sql = format!("SELECT COUNT(*) FROM groups {WHERE}");
        Ok(with_pool!(self, pool => {
            let groups = sqlx::query_as::<_, Group>(&page_sql)
                .bind(&pattern)
                .bind(limit)
                .bind(offset)
                .fetch_all(pool)
                .await?;
            let total = sqlx::query_scalar::<_, i64>(&count_sql)
                .bind(&pattern)
                .fetch_one(pool)
                .await?;
            (groups, total)
        }))
    }

    /// A group by numeric id or by (case-insensitive) path.
    pub async fn find_group(&self, id_or_path: &str) -> StoreResult<Option<Group>> {
        let id: i64 = id_or_path.parse().unwrap_or(0);
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, Group>(
                "SELECT id, name, path, description, visibility, created_at FROM groups
                 WHERE id = $1 OR lower(path) = lower($2) ORDER BY id LIMIT 1",
            )
            .bind(id)
            .bind(id_or_path)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Deletes a group and its memberships.
    pub async fn delete_group(
        &self,
        id: i64,
        now: DateTime<Utc>,
        audit: Option<&NewAudit>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            sqlx::query("DELETE FROM members WHERE source_type = 'Namespace' AND source_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let deleted = sqlx::query("DELETE FROM groups WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected()
                > 0;
            if deleted {
                insert_audit!(tx, audit, now);
            }
            deleted
        }))
    }

    pub async fn group_members(
        &self,
        group_id: i64,
        offset: i64,
        limit: i64,
    ) -> StoreResult<(Vec<Member>, i64)> {
        Ok(with_pool!(self, pool => {
            let members = sqlx::query_as::<_, Member>(&format!(
                "{MEMBER_SELECT} ORDER BY m.id LIMIT $2 OFFSET $3"
            ))
            .bind(group_id)
            .bind(limit)
            .bind(offset)
            .fetch_all(pool)
            .await?;
            let total = sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM members WHERE source_type = 'Namespace' AND source_id = $1",
            )
            .bind(group_id)
            .fetch_one(pool)
            .await?;
            (members, total)
        }))
    }

    pub async fn group_member(&self, group_id: i64, user_id: i64) -> StoreResult<Option<Member>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, Member>(&format!("{MEMBER_SELECT} AND m.user_id = $2"))
            .bind(group_id)
            .bind(user_id)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// Changes a group member's access level; false when they are not a member.
    pub async fn set_member_access(
        &self,
        group_id: i64,
        user_id: i64,
        access_level: i32,
        now: DateTime<Utc>,
        audit: Option<&NewAudit>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            let changed = sqlx::query(
                "UPDATE members SET access_level = $3
                 WHERE source_type = 'Namespace' AND source_id = $1 AND user_id = $2",
            )
            .bind(group_id)
            .bind(user_id)
            .bind(access_level)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if changed {
                insert_audit!(tx, audit, now);
            }
            changed
        }))
    }

    /// Removes a group member (recording `hook` with it); false when they were not one.
    pub async fn remove_member(
        &self,
        group_id: i64,
        user_id: i64,
        now: DateTime<Utc>,
        audit: Option<&NewAudit>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            let removed = sqlx::query(
                "DELETE FROM members WHERE source_type = 'Namespace' AND source_id = $1 AND user_id = $2",
            )
            .bind(group_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?
            .rows_affected()
                > 0;
            if removed {
                insert_audit!(tx, audit, now);
            }
            removed
        }))
    }

    /// Groups whose only owner (access 50) is this user.
    pub async fn groups_solely_owned_by(&self, user_id: i64) -> StoreResult<i64> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar::<_, i64>(
                "SELECT COUNT(*) FROM members m
                 WHERE m.source_type = 'Namespace' AND m.user_id = $1 AND m.access_level = 50
                   AND NOT EXISTS (SELECT 1 FROM members o
                        WHERE o.source_type = 'Namespace' AND o.source_id = m.source_id
                          AND o.access_level = 50 AND o.user_id <> m.user_id)",
            )
            .bind(user_id)
            .fetch_one(pool)
            .await?
        }))
    }

    // ----- licenses ---------------------------------------------------------------------

    /// Up to `limit` licenses, newest id first (GitLab considers the 100 most recent).
    pub async fn recent_licenses(&self, limit: i64) -> StoreResult<Vec<LicenseRow>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, LicenseRow>(
                "SELECT id, data, created_at FROM licenses ORDER BY id DESC LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    pub async fn find_license(&self, id: i64) -> StoreResult<Option<LicenseRow>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_as::<_, LicenseRow>("SELECT id, data, created_at FROM licenses WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Stores an uploaded license; a trial license also sets the instance's trial end date
    /// when none is set yet. One transaction.
    pub async fn create_license(
        &self,
        data: &str,
        trial_ends_on: Option<NaiveDate>,
        now: DateTime<Utc>,
        audit: Option<&NewAudit>,
    ) -> StoreResult<LicenseRow> {
        Ok(in_write_tx!(self, tx => {
            let row = sqlx::query_as::<_, LicenseRow>(
                "INSERT INTO licenses (data, created_at, updated_at) VALUES ($1, $2, $2)
                 RETURNING id, data, created_at",
            )
            .bind(data)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            if let Some(ends_on) = trial_ends_on {
                sqlx::query(
                    "INSERT INTO application_settings (name, value, updated_at)
                     VALUES ('license_trial_ends_on', $1, $2)
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(ends_on.format("%Y-%m-%d").to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            insert_audit!(tx, audit.map(|audit| NewAudit { entity_id: row.id, ..audit.clone() }), now);
            row
        }))
    }

    /// Deletes a license; false when there was none with this id.
    pub async fn delete_license(
        &self,
        id: i64,
        now: DateTime<Utc>,
        audit: Option<&NewAudit>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            let deleted = sqlx::query("DELETE FROM licenses WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if deleted > 0 {
                insert_audit!(tx, audit, now);
            }
            deleted > 0
        }))
    }

    pub async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar::<_, String>("SELECT value FROM application_settings WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await?
        }))
    }

    // ----- jobs ---------------------------------------------------------------------------

    /// Queues a job; with a `unique_key` a second insert of the same key is a no-op (false),
    /// which is how replicas agree on scheduled runs.
    pub async fn enqueue_job(
        &self,
        kind: &str,
        unique_key: Option<&str>,
        run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        Ok(in_write_tx!(self, tx => {
            sqlx::query(
                "INSERT INTO jobs (kind, unique_key, run_at, state, attempts, created_at)
                 VALUES ($1, $2, $3, 'pending', 0, $4)
                 ON CONFLICT (unique_key) DO NOTHING",
            )
            .bind(kind)
            .bind(unique_key)
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
        const PICK: &str = "SELECT id FROM jobs
             WHERE (state = 'pending' AND run_at <= $1) OR (state = 'running' AND locked_until < $1)
             ORDER BY run_at, id LIMIT 1";
        let claim = |pick: &str| {
            format!(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, locked_until = $2
                 WHERE id = ({pick})
                 RETURNING id, kind, unique_key, run_at, attempts"
            )
        };
        Ok(match &self.db {
            // One writer at a time: the statement is atomic as it stands.
            Db::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let job = sqlx::query_as::<_, JobRow>(&claim(PICK))
                    .bind(now)
                    .bind(lease_until)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.commit().await?;
                job
            }
            // Concurrent workers skip rows another transaction holds instead of waiting.
            Db::Postgres(pool) => {
                sqlx::query_as::<_, JobRow>(&claim(&format!("{PICK} FOR UPDATE SKIP LOCKED")))
                    .bind(now)
                    .bind(lease_until)
                    .fetch_optional(pool)
                    .await?
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
                match effect {
                    JobEffect::Nothing => {}
                    JobEffect::Measurement { count, recorded_at } => {
                        sqlx::query(
                            "INSERT INTO usage_trends_measurements (identifier, count, recorded_at)
                             VALUES ($1, $2, $3) ON CONFLICT (identifier, recorded_at) DO NOTHING",
                        )
                        .bind(BILLABLE_USERS_MEASUREMENT)
                        .bind(count)
                        .bind(recorded_at)
                        .execute(&mut *tx)
                        .await?;
                    }
                    JobEffect::History(row) => {
                        sqlx::query(
                            "INSERT INTO historical_data (recorded_at, active_user_count) VALUES ($1, $2)",
                        )
                        .bind(row.recorded_at)
                        .bind(row.active_user_count)
                        .execute(&mut *tx)
                        .await?;
                    }
                }
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
            .bind(if retry_at.is_some() { "pending" } else { "failed" })
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

    /// Sets a setting unless it is set, and returns the value now stored. Reads first: a
    /// setting that exists costs no write (and so no cache invalidation or notification).
    pub async fn setting_or_insert(
        &self,
        name: &str,
        value: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<String> {
        if let Some(existing) = self.setting(name).await? {
            return Ok(existing);
        }
        in_write_tx!(self, tx => {
            sqlx::query(
                "INSERT INTO application_settings (name, value, updated_at) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(value)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        });
        Ok(self
            .setting(name)
            .await?
            .unwrap_or_else(|| value.to_string()))
    }

    // ----- billable users and history -------------------------------------------------------

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
        in_write_tx!(self, tx => {
            sqlx::query(
                "INSERT INTO usage_trends_measurements (identifier, count, recorded_at)
                 VALUES ($1, $2, $3) ON CONFLICT (identifier, recorded_at) DO NOTHING",
            )
            .bind(BILLABLE_USERS_MEASUREMENT)
            .bind(count)
            .bind(recorded_at)
            .execute(&mut *tx)
            .await?;
        });
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
                sqlx::query(
                    "INSERT INTO historical_data (recorded_at, active_user_count) VALUES ($1, $2)",
                )
                .bind(row.recorded_at)
                .bind(row.active_user_count)
                .execute(&mut *tx)
                .await?;
            }
        });
        Ok(())
    }
}

/// The SQLite database holds token digests and hook secrets: its file is created (or
/// tightened) to 0600 before SQLite opens it, whatever the umask, and SQLite gives its `-wal`
/// and `-shm` files the database file's mode. A missing parent directory is created 0700.
fn prepare_private_sqlite_file(path: &std::path::Path) -> StoreResult<()> {
    let io = |error: std::io::Error| StoreError::Database(sqlx::Error::Io(error));
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() && !parent.exists() {
            crate::keyfiles::ensure_private_dir(parent)
                .map_err(|error| io(std::io::Error::other(error)))?;
        }
    }
    if !path.exists() {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(_) => {}
            // Another process made it first: fine, it is tightened below.
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(io(error)),
        }
    }
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned());
    for suffix in ["", "-wal", "-shm"] {
        let file = match (&file_name, suffix) {
            (_, "") => path.to_path_buf(),
            (Some(name), suffix) => path.with_file_name(format!("{name}{suffix}")),
            (None, _) => continue,
        };
        if file.exists() {
            crate::keyfiles::make_file_private(&file).map_err(io)?;
        }
    }
    Ok(())
}

/// Maps a unique-constraint violation to the user-facing message of the constraint it broke.
fn unique_violation(error: sqlx::Error, messages: &[(&str, &str)]) -> StoreError {
    if let sqlx::Error::Database(database_error) = &error {
        if database_error.is_unique_violation() {
            if let [(_, only)] = messages {
                return StoreError::Conflict((*only).to_string());
            }
            let text = database_error.message();
            let constraint = database_error.constraint().unwrap_or_default();
            for (name, message) in messages {
                // PostgreSQL names the index; SQLite names the indexed expression's table.column.
                let column = name
                    .trim_start_matches("users_")
                    .trim_end_matches("_unique");
                if constraint == *name
                    || text.contains(name)
                    || text.contains(&format!("users.{column}"))
                    || text.contains(&format!("lower({column})"))
                {
                    return StoreError::Conflict((*message).to_string());
                }
            }
            return StoreError::Conflict("already exists".into());
        }
    }
    StoreError::Database(error)
}

/// A case-insensitive `LIKE … ESCAPE '\'` pattern matching `text` anywhere, taking `%`, `_`
/// and `\` in it literally (SQLite has no default escape character, PostgreSQL's is `\`).
fn contains_pattern(text: &str) -> String {
    let escaped = text
        .to_lowercase()
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_");
    format!("%{escaped}%")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_aliased_user_columns_are_the_user_columns() {
        let aliased: Vec<String> = USER_COLUMNS
            .split(", ")
            .map(|column| format!("u.{column}"))
            .collect();
        assert_eq!(U_USER_COLUMNS, aliased.join(", "));
        assert!(TOKEN_WITH_USER_COLUMNS.ends_with(U_USER_COLUMNS));
        assert!(MEMBER_SELECT.contains(U_USER_COLUMNS));
    }
}
