//! Dormant users: GitLab's job that deactivates users inactive for the configured period
//! (`deactivate_dormant_users`, `deactivate_dormant_users_period`), and, beyond GitLab, a
//! preview of who its next run takes and the seats that frees, and exclusions it never
//! touches (docs/directory-api.md).

use chrono::DateTime;
use serde::Serialize;

use crate::domain::dormant::{self, BATCH, PER_RUN};
use crate::domain::licenses::timestamp_text;
use crate::domain::users::{UserState, UserType};
use crate::policy::AdminPrincipal;
use crate::services::audit;
use crate::state::AppState;
use crate::store::{Dormancy, DormancyCutoffs, DormantCursor, StoreError, User, COUNT_CAP};

/// The author of the job's audit events (GitLab's `Users::Internal.admin_bot`; no row).
pub const ADMIN_BOT_ID: i64 = -2;

fn admin_bot() -> User {
    User {
        id: ADMIN_BOT_ID,
        username: "GitLab-Admin-Bot".into(),
        name: "GitLab Admin Bot".into(),
        email: String::new(),
        state: UserState::Active,
        user_type: UserType::AdminBot,
        admin: true,
        created_at: DateTime::UNIX_EPOCH,
        last_activity_on: None,
    }
}

/// How many of the next run's users a preview lists.
pub const PREVIEW_LIMIT: i64 = 100;

/// One user the next run would deactivate.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DormantUser {
    pub id: i64,
    pub username: String,
    pub name: String,
    /// `null`: never active (then created at least 7 days ago).
    pub last_activity_on: Option<String>,
    pub created_at: String,
}

/// What the next run of the job would do.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DormantPreview {
    /// `deactivate_dormant_users`: the job runs only when it is on.
    pub enabled: bool,
    pub period_days: i64,
    pub next_run_at: String,
    /// Dormant users now (counted up to 10,001).
    pub dormant_users: i64,
    /// How many of them hold a seat: what deactivating them frees.
    pub seats_freed: i64,
    /// Whether the counts stopped at their limit (more than 10,000).
    pub counts_capped: bool,
    /// At most this many a run (GitLab's 100,000 a day over ten runs).
    pub per_run: i64,
    /// The first of them, in the order the job takes them: the longest inactive first, then
    /// the never active, oldest first.
    pub users: Vec<DormantUser>,
}

/// GitLab's dormancy cutoffs for `period_days` as of `now`.
fn cutoffs(now: DateTime<chrono::Utc>, period_days: i64) -> DormancyCutoffs {
    let (active_by, created_by) = dormant::cutoffs(now.date_naive(), period_days);
    DormancyCutoffs {
        active_by,
        created_by,
    }
}

/// Who the next run would deactivate, and the seats that frees. Writes nothing.
pub async fn preview(state: &AppState) -> Result<DormantPreview, StoreError> {
    let settings = crate::services::settings::current(state).await?;
    let now = state.clock.now();
    let cutoffs = cutoffs(now, settings.deactivate_dormant_users_period);
    let ultimate = crate::services::licenses::current_is_ultimate(state).await?;
    let (count, seats) = state.store.count_dormant(cutoffs, ultimate).await?;
    // In the order the job takes them: the longest inactive first, then the never active.
    let mut users = Vec::new();
    for dormancy in Dormancy::BOTH {
        let room = PREVIEW_LIMIT - users.len() as i64;
        if room <= 0 {
            break;
        }
        users.extend(
            state
                .store
                .dormant_users(dormancy, cutoffs, None, room)
                .await?,
        );
    }
    let users = users
        .into_iter()
        .map(|user| DormantUser {
            id: user.id,
            username: user.username,
            name: user.name,
            last_activity_on: user.last_activity_on.map(|day| day.to_string()),
            created_at: timestamp_text(user.created_at),
        })
        .collect();
    Ok(DormantPreview {
        enabled: settings.deactivate_dormant_users,
        period_days: settings.deactivate_dormant_users_period,
        next_run_at: timestamp_text(dormant::next_slot(now)),
        dormant_users: count.min(COUNT_CAP),
        seats_freed: seats.min(COUNT_CAP),
        counts_capped: count > COUNT_CAP,
        per_run: PER_RUN,
        users,
    })
}

/// One run of the job: with `deactivate_dormant_users` on, up to [`PER_RUN`] dormant users
/// deactivated, [`BATCH`] a transaction, each with GitLab's `user_deactivate` audit event by
/// the admin bot. Returns how many.
pub async fn run(state: &AppState) -> Result<usize, StoreError> {
    let settings = crate::services::settings::current(state).await?;
    if !settings.deactivate_dormant_users {
        return Ok(0);
    }
    let now = state.clock.now();
    let cutoffs = cutoffs(now, settings.deactivate_dormant_users_period);
    let bot = admin_bot();
    let mut deactivated = 0usize;
    for dormancy in Dormancy::BOTH {
        let mut after: Option<DormantCursor> = None;
        while (deactivated as i64) < PER_RUN {
            let room = (PER_RUN - deactivated as i64).min(BATCH as i64);
            let users = state
                .store
                .dormant_users(dormancy, cutoffs, after, room)
                .await?;
            let Some(last) = users.last() else {
                break;
            };
            after = Some(DormantCursor::from(last));
            let batch: Vec<(i64, crate::store::NewAudit)> = users
                .iter()
                .map(|user| {
                    (
                        user.id,
                        audit::event(
                            &bot,
                            "User",
                            user.id,
                            "user_deactivate",
                            "Deactivated user".into(),
                            ("User", user.id, &user.username),
                        ),
                    )
                })
                .collect();
            deactivated += state.store.deactivate_dormant(&batch, now).await?.len();
        }
    }
    if deactivated > 0 {
        tracing::info!(deactivated, "dormant users deactivated");
    }
    Ok(deactivated)
}

/// The exclusions as names: usernames and group paths.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct Exclusions {
    pub users: Vec<String>,
    pub groups: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ExclusionError {
    /// Names that match no user or group.
    #[error("not found: {0}")]
    NotFound(String),
    #[error("at most {0} exclusions")]
    TooMany(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The most users and groups the exclusion list holds.
pub const MAX_EXCLUSIONS: usize = 1_000;

pub async fn exclusions(state: &AppState) -> Result<Exclusions, StoreError> {
    let mut named = Exclusions::default();
    for exclusion in state.store.dormant_exclusions().await? {
        if exclusion.kind == "user" {
            if let Some(user) = state.store.find_user(exclusion.subject_id).await? {
                named.users.push(user.username);
            }
        } else if let Some(group) = state
            .store
            .find_group(&exclusion.subject_id.to_string())
            .await?
        {
            named.groups.push(group.path);
        }
    }
    Ok(named)
}

/// Replaces the exclusions (usernames or ids, group paths or ids), audited.
pub async fn set_exclusions(
    state: &AppState,
    admin: &AdminPrincipal,
    users: &[String],
    groups: &[String],
) -> Result<Exclusions, ExclusionError> {
    if users.len() + groups.len() > MAX_EXCLUSIONS {
        return Err(ExclusionError::TooMany(MAX_EXCLUSIONS));
    }
    let mut missing = Vec::new();
    let mut user_ids = Vec::new();
    // Usernames in one lookup (case-insensitive, as GitLab's); ids one by one.
    let (ids, names): (Vec<&String>, Vec<&String>) =
        users.iter().partition(|name| name.parse::<i64>().is_ok());
    let names: Vec<String> = names.into_iter().cloned().collect();
    let found = state.store.users_by_usernames(&names).await?;
    for name in &names {
        match found
            .iter()
            .find(|user| user.username.eq_ignore_ascii_case(name))
        {
            Some(user) => user_ids.push(user.id),
            None => missing.push(name.clone()),
        }
    }
    for text in ids {
        match state
            .store
            .find_user(text.parse().unwrap_or_default())
            .await?
        {
            Some(user) => user_ids.push(user.id),
            None => missing.push(text.clone()),
        }
    }
    let mut group_ids = Vec::new();
    for name in groups {
        match state.store.find_group(name).await? {
            Some(group) => group_ids.push(group.id),
            None => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(ExclusionError::NotFound(missing.join(", ")));
    }
    let event = audit::event(
        admin.user(),
        audit::INSTANCE_SCOPE,
        1,
        "dormant_user_exclusions_updated",
        format!(
            "Dormant-user exclusions set: {} users, {} groups",
            user_ids.len(),
            group_ids.len()
        ),
        ("ApplicationSetting", 1, "dormant_user_exclusions"),
    );
    state
        .store
        .replace_dormant_exclusions(&user_ids, &group_ids, &event, state.clock.now())
        .await?;
    Ok(exclusions(state).await?)
}
