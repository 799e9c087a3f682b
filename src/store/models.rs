//! Rows as the store returns them.

use chrono::{DateTime, NaiveDate, Utc};

use crate::domain::groups::Visibility;
use crate::domain::jobs::JobState;
pub use crate::domain::licenses::HistoryRow;
use crate::domain::members::AccessLevel;
use crate::domain::tokens::{Scope, Scopes};
pub use crate::domain::users::User;
use crate::domain::users::{UserState, UserType};

/// A token row joined with its owner, as authentication needs it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenWithUser {
    pub token_id: i64,
    pub token_name: String,
    /// Stored space-separated; parsed once, here.
    #[sqlx(try_from = "String")]
    pub scopes: Scopes,
    pub expires_at: Option<NaiveDate>,
    pub revoked: bool,
    pub last_used_at: Option<DateTime<Utc>>,
    #[sqlx(flatten)]
    pub user: User,
}

impl TokenWithUser {
    pub fn has_scope(&self, scope: Scope) -> bool {
        self.scopes.contains(scope)
    }
}

/// A token to store: only its digest, never its value.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub name: String,
    pub digest: String,
    pub scopes: Vec<String>,
    pub expires_at: Option<NaiveDate>,
    /// The token this one replaces (a rotation).
    pub previous_token_id: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LicenseRow {
    pub id: i64,
    pub data: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub username: String,
    pub name: String,
    pub email: String,
    pub state: UserState,
    pub user_type: UserType,
    pub admin: bool,
}

impl NewUser {
    /// An active human user, the common case.
    pub fn human(username: &str, admin: bool) -> Self {
        Self {
            username: username.into(),
            name: username.into(),
            email: format!("{username}@example.com"),
            state: UserState::Active,
            user_type: UserType::Human,
            admin,
        }
    }
}

/// A claimed job.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub unique_key: Option<String>,
    pub run_at: DateTime<Utc>,
    /// Which claim this is; completing needs the same number, so a stale worker cannot.
    pub attempts: i32,
    /// What the job is about, for kinds that name one thing (a fleet sync: its instance).
    pub subject_id: Option<i64>,
}

/// A job as listed for inspection.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct JobStatus {
    pub id: i64,
    pub kind: String,
    pub unique_key: Option<String>,
    pub run_at: DateTime<Utc>,
    #[sqlx(try_from = "String")]
    pub state: JobState,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// What a job writes when it completes (in the same transaction as its completion).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobEffect {
    Nothing,
    Measurement {
        count: i64,
        recorded_at: DateTime<Utc>,
        /// The plan of the license counted for (`None`: no current license): the seat ledger
        /// records who started and stopped counting under it, in the same transaction.
        plan: Option<String>,
    },
    History(HistoryRow),
}

/// An audit event to record in the same transaction as the change it describes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAudit {
    pub author_id: i64,
    pub entity_type: &'static str,
    pub entity_id: i64,
    pub event_name: &'static str,
    pub details: serde_json::Value,
    /// The system-hook event the change also raises, recorded in the same transaction.
    pub hook: Option<HookEvent>,
}

/// One audited write: when it happens and the audit event (with its hook) recorded in its
/// transaction, if any. Every write that an administrator may want to trace takes one.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    pub at: DateTime<Utc>,
    pub audit: Option<&'a NewAudit>,
}

impl<'a> Write<'a> {
    pub fn audited(at: DateTime<Utc>, audit: &'a NewAudit) -> Self {
        Self {
            at,
            audit: Some(audit),
        }
    }

    /// A write with no audit event: seeding, tests and changes the system makes on its own.
    pub fn unaudited(at: DateTime<Utc>) -> Self {
        Self { at, audit: None }
    }

    /// The audit event about the row the write has just created, whose id was not known before.
    pub fn audit_of(&self, entity_id: i64) -> Option<NewAudit> {
        self.audit.map(|audit| NewAudit {
            entity_id,
            ..audit.clone()
        })
    }

    /// The audit event naming, as its target, the row the write has just created.
    pub fn audit_targeting(&self, target_id: i64) -> Option<NewAudit> {
        self.audit.map(|audit| {
            let mut details = audit.details.clone();
            details["target_id"] = serde_json::json!(target_id);
            NewAudit {
                details,
                ..audit.clone()
            }
        })
    }
}

/// A system-hook event (the outbox row), with a delivery for every hook.
#[derive(Debug, Clone, PartialEq)]
pub struct HookEvent {
    pub event_name: &'static str,
    pub payload: serde_json::Value,
    /// The payload field that takes the entity's id once it is known (`user_id`).
    pub id_field: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRow {
    pub id: i64,
    pub author_id: i64,
    pub entity_type: String,
    pub entity_id: i64,
    pub event_name: String,
    pub details: String,
    pub created_at: DateTime<Utc>,
}

/// `GET /users` filters (GitLab's parameter names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    pub search: Option<String>,
    pub username: Option<String>,
    pub active: bool,
    pub blocked: bool,
    pub humans: bool,
    pub exclude_internal: bool,
}

/// Which SQL a statement is written for, where the two backends need different text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// GitLab's shortest term that matches part of a username or name; shorter ones match exactly.
pub const MIN_PARTIAL_SEARCH_CHARS: usize = 3;

/// GitLab's user search (`User.search` for administrators): a leading `@` is dropped; a term of
/// three characters or more matches part of a username or name, a shorter one a whole
/// username or name; e-mail addresses match exactly. Served by indexes on both backends:
/// pg_trgm GIN indexes on PostgreSQL, the `users_search` trigram table on SQLite (then the
/// same LIKE, so both answer the same rows), `lower(email)` and `lower(name)` indexes.
pub(super) fn search_condition(search: &str, dialect: Dialect, args: &mut Vec<String>) -> String {
    let term = search.strip_prefix('@').unwrap_or(search).to_lowercase();
    if term.is_empty() {
        return "1 = 0".into();
    }
    args.push(term.clone());
    let exact = args.len();
    if term.chars().count() < MIN_PARTIAL_SEARCH_CHARS {
        return format!(
            "(lower(username) = ${exact} OR lower(name) = ${exact} OR lower(email) = ${exact})"
        );
    }
    args.push(super::contains_pattern(&term));
    let pattern = args.len();
    let partial = format!(
        "(lower(username) LIKE ${pattern} ESCAPE '\\' OR lower(name) LIKE ${pattern} ESCAPE '\\')"
    );
    match dialect {
        Dialect::Postgres => format!("({partial} OR lower(email) = ${exact})"),
        Dialect::Sqlite => {
            args.push(super::trigram_phrase(&term));
            let phrase = args.len();
            format!(
                "((id IN (SELECT rowid FROM users_search WHERE users_search MATCH ${phrase}) \
                 AND {partial}) OR lower(email) = ${exact})"
            )
        }
    }
}

impl UserFilter {
    /// The WHERE clause of the filters that are set, and its text arguments (`$1`, `$2`, …):
    /// built from what is asked, so that each condition can use its index on both backends
    /// (`(? IS NULL OR …)` forms defeat SQLite's planner).
    pub fn where_clause(&self, dialect: Dialect) -> (String, Vec<String>) {
        let mut conditions: Vec<String> = Vec::new();
        let mut args: Vec<String> = Vec::new();
        if let Some(search) = &self.search {
            conditions.push(search_condition(search, dialect, &mut args));
        }
        if let Some(username) = &self.username {
            args.push(username.clone());
            conditions.push(format!("lower(username) = lower(${})", args.len()));
        }
        if self.active {
            conditions.push("state = 'active' AND user_type <> 'ghost'".into());
        }
        if self.blocked {
            conditions.push("state IN ('blocked', 'ldap_blocked')".into());
        }
        if self.humans {
            conditions.push("user_type = 'human'".into());
        }
        if self.exclude_internal {
            conditions.push(
                "user_type IN ('human', 'project_bot', 'service_user', 'service_account')".into(),
            );
        }
        if conditions.is_empty() {
            (String::new(), args)
        } else {
            (format!("WHERE {}", conditions.join(" AND ")), args)
        }
    }
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserChanges {
    pub username: Option<String>,
    pub name: Option<String>,
    pub email: Option<String>,
    pub admin: Option<bool>,
    pub user_type: Option<UserType>,
}

#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Group {
    pub id: i64,
    pub name: String,
    pub path: String,
    pub description: String,
    #[sqlx(try_from = "String")]
    pub visibility: Visibility,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGroup {
    pub name: String,
    pub path: String,
    pub description: String,
    pub visibility: Visibility,
}

/// A group membership with its user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Member {
    #[sqlx(try_from = "i32")]
    pub access_level: AccessLevel,
    #[sqlx(rename = "member_created_at")]
    pub member_created_at: DateTime<Utc>,
    #[sqlx(flatten)]
    pub user: User,
}

/// A personal access token as the token API shows it (never its value).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TokenRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub scopes: Scopes,
    pub expires_at: Option<NaiveDate>,
    pub revoked: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// `GET /personal_access_tokens` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenFilter {
    pub user_id: Option<i64>,
    pub revoked: Option<bool>,
    /// `Some(true)` for active (not revoked, not expired on `today`), `Some(false)` inactive.
    pub active: Option<bool>,
}

/// One page of a list: its rows, whether more follow, and the total when it is at most
/// [`COUNT_CAP`](super::COUNT_CAP) (GitLab leaves larger totals out rather than count them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed<T> {
    pub rows: Vec<T>,
    pub more: bool,
    pub total: Option<i64>,
}

impl<T> Listed<T> {
    /// From a page, whether more follow, and a count made by `capped_count`.
    pub fn capped((rows, more, counted): (Vec<T>, bool, i64)) -> Self {
        Self {
            rows,
            more,
            total: (counted <= super::COUNT_CAP).then_some(counted),
        }
    }
}
