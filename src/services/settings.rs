//! The instance's settings: read (cached until a change, as the license is), changed through
//! GitLab's settings API or the seat-control extension with GitLab's validations, each change
//! audited, and their side effects (pending users approved when approval is no longer
//! required, or when a raised or removed user cap is asked to approve them).

use std::sync::Arc;

use serde_json::json;

use crate::cache::Cache;
use crate::domain::settings::{Given, ModelErrors, SeatControl, Settings};
use crate::policy::AdminPrincipal;
use crate::services::audit;
use crate::state::AppState;
use crate::store::{NewAudit, StoreError, Write};

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// GitLab's model errors: attribute → messages.
    #[error("invalid settings")]
    Invalid(ModelErrors),
    /// The seat controls need a Premium or Ultimate license (GitLab's `seat_control` feature).
    #[error("seat controls need a Premium or Ultimate license")]
    Unlicensed,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many times a change is reapplied when another one came first.
const ATTEMPTS: usize = 5;

/// The settings now (GitLab's defaults for every key never changed).
pub async fn current(state: &AppState) -> Result<Arc<Settings>, StoreError> {
    if let Some(settings) = state.cache.settings(&state.store) {
        return Ok(settings);
    }
    let ticket = Cache::ticket(&state.store);
    match state.store.instance_settings_document().await {
        Ok(document) => {
            let settings = Arc::new(parse(document.as_deref()));
            state.cache.put_settings(ticket, Arc::clone(&settings));
            Ok(settings)
        }
        Err(error) => state.cache.last_known_settings().ok_or(error),
    }
}

/// Whether the current license lets the seat controls act (GitLab's `seat_control` feature:
/// Premium and Ultimate).
pub async fn seat_controls_licensed(state: &AppState) -> Result<bool, StoreError> {
    Ok(
        crate::services::licenses::current(state, state.clock.today())
            .await?
            .is_some_and(|(_, license)| {
                crate::domain::settings::seat_controls_licensed(license.plan())
            }),
    )
}

/// How many of the users waiting for approval [`seat_control_status`] names.
pub const PENDING_NAMED: i64 = 10;

/// What the seat-control page shows beside the form: the setting, whether the license lets it
/// act (and which plan it has), the billable users it is measured against, and who waits for
/// approval.
#[derive(Debug, Clone)]
pub struct SeatControlStatus {
    pub settings: Arc<Settings>,
    /// The current license's plan (`None`: no license is active).
    pub plan: Option<String>,
    /// Whether that plan lets the seat controls act (Premium or Ultimate).
    pub licensed: bool,
    /// The license's seats (`None`: it states none).
    pub seats: Option<i64>,
    /// Billable users now, counted as the license counts them.
    pub billable_users: i64,
    /// Users waiting for approval (`blocked_pending_approval`), counted up to 10,001.
    pub pending_approval: i64,
    /// The first [`PENDING_NAMED`] of them, in id order.
    pub pending_users: Vec<crate::store::User>,
}

/// The seat controls with what they act on (writes nothing).
pub async fn seat_control_status(state: &AppState) -> Result<SeatControlStatus, StoreError> {
    let settings = current(state).await?;
    let license = crate::services::licenses::current(state, state.clock.today())
        .await?
        .map(|(_, license)| license);
    let plan = license.as_ref().map(|license| license.plan().to_string());
    let licensed = plan
        .as_deref()
        .is_some_and(crate::domain::settings::seat_controls_licensed);
    let seats = license
        .as_ref()
        .and_then(|license| license.restrictions.active_user_count)
        .and_then(|seats| i64::try_from(seats).ok())
        .filter(|seats| *seats > 0);
    let billable_users =
        crate::services::licenses::live_billable_users(state, license.as_ref()).await?;
    let pending_approval = state
        .store
        .count_users_in_state(crate::domain::users::UserState::BlockedPendingApproval)
        .await?;
    let pending_users = state
        .store
        .users_in_state(
            crate::domain::users::UserState::BlockedPendingApproval,
            0,
            PENDING_NAMED,
        )
        .await?;
    Ok(SeatControlStatus {
        settings,
        plan,
        licensed,
        seats,
        billable_users,
        pending_approval,
        pending_users,
    })
}

/// The settings as stored, straight from the database (the command line, which has no cache).
pub async fn stored(store: &crate::store::Store) -> Result<Settings, StoreError> {
    Ok(parse(store.instance_settings_document().await?.as_deref()))
}

/// A stored document read back; anything unreadable is GitLab's defaults (a document is only
/// ever written by [`change`], from a validated [`Settings`]).
fn parse(document: Option<&str>) -> Settings {
    document
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

/// The audit events of a change: one per setting whose value changed, as GitLab's
/// `ApplicationSettingChangesAuditor` writes them.
fn audits(author: &AdminPrincipal, before: &Settings, after: &Settings) -> Vec<NewAudit> {
    let (old, new) = (
        serde_json::to_value(before).unwrap_or_default(),
        serde_json::to_value(after).unwrap_or_default(),
    );
    before
        .changed_keys(after)
        .into_iter()
        .map(|key| {
            let mut event = audit::event(
                author.user(),
                audit::INSTANCE_SCOPE,
                1,
                "application_setting_updated",
                format!("Changed {key} from {} to {}", old[key], new[key]),
                ("ApplicationSetting", 1, key),
            );
            event.details["change"] = json!(key);
            event.details["from"] = old[key].clone();
            event.details["to"] = new[key].clone();
            event
        })
        .collect()
}

/// Applies `edit` to the settings as stored and saves them with their audits, reapplying it if
/// another change came first. Returns the settings before and after.
async fn change(
    state: &AppState,
    author: &AdminPrincipal,
    edit: impl Fn(&Settings) -> Result<Settings, SettingsError>,
) -> Result<(Settings, Settings), SettingsError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let document = state.store.instance_settings_document().await?;
        let before = parse(document.as_deref());
        let after = edit(&before)?;
        if after == before {
            return Ok((before, after));
        }
        let text = serde_json::to_string(&after)
            .map_err(|error| StoreError::Database(sqlx::Error::Encode(Box::new(error))))?;
        let events = audits(author, &before, &after);
        match state
            .store
            .replace_instance_settings(document.as_deref(), &text, &events, state.clock.now())
            .await
        {
            Ok(()) => {
                tracing::info!(
                    changed = ?before.changed_keys(&after),
                    admin_id = author.user().id,
                    "settings changed"
                );
                return Ok((before, after));
            }
            Err(StoreError::Conflict(_)) if attempt < ATTEMPTS => continue,
            Err(error) => return Err(error.into()),
        }
    }
}

/// `PUT /application/settings`: the given keys, validated together as GitLab's model does.
pub async fn update(
    state: &AppState,
    author: &AdminPrincipal,
    changes: &[(&'static str, Given)],
) -> Result<Settings, SettingsError> {
    let (before, after) = change(state, author, |settings| {
        settings.with(changes).map_err(SettingsError::Invalid)
    })
    .await?;
    // GitLab's lifetime policy (`update_personal_access_tokens_lifetime`, Ultimate only).
    if let Some(days) = after.max_personal_access_token_lifetime {
        // Ultimate only: GitLab's `personal_access_token_expiration_policy` feature.
        if crate::services::licenses::current_is_ultimate(state).await?
            && before.max_personal_access_token_lifetime != Some(days)
        {
            enforce_token_lifetime(state, author, days).await?;
        }
    }
    // GitLab approves every pending user once approval is no longer required.
    if before.require_admin_approval_after_user_signup
        && !after.require_admin_approval_after_user_signup
    {
        crate::services::approvals::approve_all_pending(state, author).await?;
    }
    Ok(after)
}

/// GitLab's lifetime policy (Ultimate): once `max_personal_access_token_lifetime` is set,
/// tokens that would outlive it, or never expire, are revoked.
async fn enforce_token_lifetime(
    state: &AppState,
    author: &AdminPrincipal,
    days: i64,
) -> Result<u64, StoreError> {
    let today = state.clock.today();
    let Some(last_day) = u64::try_from(days)
        .ok()
        .and_then(|days| today.checked_add_days(chrono::Days::new(days)))
    else {
        return Ok(0);
    };
    let event = audit::event(
        author.user(),
        "User",
        author.user().id,
        "personal_access_tokens_revoked_by_lifetime_policy",
        format!(
            "Revoked the personal access tokens expiring after {last_day} or never (maximum lifetime {days} days)"
        ),
        ("ApplicationSetting", 0, "max_personal_access_token_lifetime"),
    );
    let revoked = state
        .store
        .revoke_tokens_beyond(last_day, Write::audited(state.clock.now(), &event))
        .await?;
    tracing::info!(revoked, days, "token lifetime policy applied");
    Ok(revoked)
}

/// The seat controls (GitLab's admin form; this server's extension): off, a user cap, or
/// blocking overages. `auto_approve_pending_users`: approve the users waiting for approval when
/// the cap is raised or removed (GitLab's form flag).
pub async fn set_seat_control(
    state: &AppState,
    author: &AdminPrincipal,
    licensed: bool,
    control: SeatControl,
    cap: Option<i64>,
    auto_approve_pending_users: bool,
) -> Result<Settings, SettingsError> {
    if !licensed && control != SeatControl::Off {
        return Err(SettingsError::Unlicensed);
    }
    let (before, after) = change(state, author, |settings| {
        let next = Settings {
            seat_control: control,
            new_user_signups_cap: cap,
            ..settings.clone()
        };
        let errors = next.validate();
        if errors.is_empty() {
            Ok(next)
        } else {
            Err(SettingsError::Invalid(errors))
        }
    })
    .await?;
    // GitLab's `user_cap_increased?`: there was a cap, and now there is none or a larger one.
    let raised = match (before.user_cap(true), after.user_cap(true)) {
        (Some(old), None) => old > 0,
        (Some(old), Some(new)) => new > old,
        _ => false,
    };
    if raised && auto_approve_pending_users {
        crate::services::approvals::approve_all_pending(state, author).await?;
    }
    Ok(after)
}
