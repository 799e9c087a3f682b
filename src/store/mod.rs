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

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// PostgreSQL channel on which every committed change is announced to the other replicas.
pub const CHANGE_CHANNEL: &str = "gitlab_license_server_changes";

/// GitLab's usage-trends identifier for billable users.
pub const BILLABLE_USERS_MEASUREMENT: i16 = 11;

// Access levels above Guest (Planner 15 and up) occupy a seat on Ultimate.
const GUEST_ACCESS_LEVEL: i32 = crate::domain::members::AccessLevel::GUEST.number();

/// Over `users u`: an active human or service user — GitLab's "active, non-internal, not a
/// bot, not the ghost", the part that billable users and seat-eligible users share.
macro_rules! active_seat_user {
    () => {
        "u.state = 'active' AND u.user_type IN ('human', 'service_user')"
    };
}

/// GitLab's `User.billable`, over `users u`: active humans and service users, and on Ultimate
/// (`$1`) only those with a role above Guest (`$2`) somewhere. The one statement of the rule:
/// counts and per-user answers both use it.
const BILLABLE: &str = concat!(
    active_seat_user!(),
    " AND (NOT CAST($1 AS BOOLEAN) OR EXISTS (
        SELECT 1 FROM members m WHERE m.user_id = u.id AND m.access_level > $2))"
);

/// Lists count their matches up to this many; above it the total is left out, as GitLab leaves
/// out `X-Total`, `X-Total-Pages` and the `last` link (counting a large table on every page
/// costs more than the page).
pub const COUNT_CAP: i64 = 10_000;

/// The count of a list's matches, stopped one past [`COUNT_CAP`]; `from_where` is the list's
/// `FROM … WHERE …`.
fn capped_count(from_where: &str) -> String {
    format!(
        "SELECT COUNT(*) FROM (SELECT 1 {from_where} LIMIT {}) AS capped",
        COUNT_CAP + 1
    )
}

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
pub const MEMBER_SELECT: &str = concat!(
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
    /// SQLite: the task that checkpoints the write-ahead log in the background, stopped when
    /// the last clone of the store goes.
    _checkpointer: Option<Arc<AbortOnDrop>>,
}

/// A spawned task that stops when this is dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// How often SQLite's write-ahead log is copied back into the database file.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

/// Copies SQLite's write-ahead log back into the database file every [`CHECKPOINT_EVERY`],
/// on a connection of its own time, so that no request or recount pays for it. SQLite's
/// automatic checkpoint (off, see [`Store::connect`]) runs in the commit that crosses 1,000
/// pages — 50–70 ms of copying and syncing on whichever write happened to be that one, such
/// as a recount whose seat ledger touched a thousand users. PASSIVE: it never waits for
/// readers or writers, and a log it could copy entirely starts over at the next write.
fn spawn_checkpointer(pool: SqlitePool) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                break;
            }
            if let Err(error) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::debug!(%error, "SQLite checkpoint skipped");
            }
        }
    }))
}

#[derive(Clone, Debug)]
enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

#[macro_use]
mod macros;

mod add_ons;
mod audit;
pub mod backup;
mod billable;
mod dormant;
mod eligible_users;
mod fleet;
mod groups;
mod history;
mod hooks;
mod instance_settings;
mod jobs;
pub mod ledger;
mod licenses;
mod plans;
mod rate_limits;
mod scim;
mod seat_alerts;
mod seat_candidates;
mod sessions;
mod tokens;
mod users;

pub use add_ons::{AddOnPurchase, Locked, SaveMode, SeatAudit};
pub use billable::{BillableMember, BillableUser, BillableUserFilter};
pub use dormant::{Dormancy, DormancyCutoffs, DormantCursor, DormantExclusion};
pub use eligible_users::{
    EligibleKey, EligibleOrder, EligiblePage, EligibleQuery, EligibleUser, EligibleUserFilter,
    KeyValue, UserSearch,
};
pub use fleet::{
    FleetAccount, FleetInstance, FleetInstanceChanges, PeopleFilter, PersonPresence, Recomputed,
    SnapshotFacts, StagedUser, ACCOUNTS_SHOWN_PER_PERSON, FLEET_SUBSET_VIOLATED_EVENT,
    FLEET_SYNC_FAILED_EVENT,
};
pub use hooks::{AttemptOutcome, DeliveryLog, DeliveryWork, HookSettings, SystemHook};
pub use jobs::ClaimOf;
pub use rate_limits::RateCount;
pub use scim::{GroupUpdate, MembershipChange, ScimGroup, ScimMember, ScimUser};
pub use seat_alerts::{SEAT_ALERT_EVENT, TRUE_UP_FORECAST_EVENT};
pub use sessions::{SeatHolder, WebSession};
pub use users::{Admission, SeatGate};

impl Store {
    fn new(db: Db) -> Self {
        let checkpointer = match &db {
            Db::Sqlite(pool) => Some(Arc::new(spawn_checkpointer(pool.clone()))),
            _ => None,
        };
        Self {
            _checkpointer: checkpointer,
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
                // SQLite's own upkeep: each connection runs `PRAGMA optimize` when it closes, so
                // the planner's statistics follow the data; ANALYZE samples at most about 400
                // rows per index, so it stays quick at a million users.
                .analysis_limit(400)
                .optimize_on_close(true, None)
                // Keep per-connection page caches small: the working set is tiny.
                .pragma("cache_size", "-512")
                // Checkpoints run in the background instead (`spawn_checkpointer`).
                .pragma("wal_autocheckpoint", "0");
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

    /// Which SQL this store's backend speaks.
    pub fn dialect(&self) -> Dialect {
        match self.db {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
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
            Db::Sqlite(pool) => {
                sqlx::migrate!("./migrations/sqlite").run(pool).await?;
                // Statistics for the planner where a table lacks them or they went stale
                // (a new index, a large import): SQLite does not gather them by itself.
                sqlx::query("PRAGMA optimize=0x10002").execute(pool).await?;
            }
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

    pub async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(with_pool!(self, pool => {
            sqlx::query_scalar::<_, String>("SELECT value FROM application_settings WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await?
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

/// An FTS5 phrase for `term` (in double quotes, its own quotes doubled): matched against
/// SQLite's `users_search` trigram table, the users whose username or name contains `term`
/// (any case) — the candidates a `LIKE '%term%'` then confirms.
fn trigram_phrase(term: &str) -> String {
    format!("\"{}\"", term.replace('"', "\"\""))
}

/// `$first, $first+1, …` for `count` values (at least one, so `IN (…)` stays valid SQL).
fn placeholders(first: usize, count: usize) -> String {
    if count == 0 {
        return "NULL".into();
    }
    (first..first + count)
        .map(|index| format!("${index}"))
        .collect::<Vec<_>>()
        .join(", ")
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
