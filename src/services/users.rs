//! The user directory: create, change, delete and moderate users, with audit events.

use chrono::NaiveDate;

use crate::domain::moderation::{
    self_refusal, transition, Action, Answer, Transition, LAST_ADMIN_REFUSAL, SELF_DEMOTION_REFUSAL,
};
use crate::domain::settings::SeatControl;
use crate::domain::users::{validate_identity, UserState, UserType};
use crate::policy::AdminPrincipal;
use crate::services::audit;
use crate::state::AppState;
use crate::store::{Admission, HookEvent, NewUser, SeatGate, StoreError, User, UserChanges, Write};

/// Why a user operation was refused, in the terms GitLab answers with.
#[derive(Debug)]
pub enum UserError {
    NotFound,
    /// 409 with GitLab's message (a taken email or username).
    Conflict(String),
    /// 400 `{"message": {field: [message]}}`.
    Invalid(&'static str, String),
    /// A moderation rule: status and message.
    Refused(u16, String),
    /// No seat left and overages blocked: nothing was created.
    NoSeats,
    Store(StoreError),
}

impl From<StoreError> for UserError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(message) => Self::Conflict(message),
            StoreError::LastAdministrator => Self::Refused(403, LAST_ADMIN_REFUSAL.into()),
            other => Self::Store(other),
        }
    }
}

/// GitLab's `user_create` / `user_destroy` system-hook payload (`user_id` is filled in with
/// the row's id when the change is recorded).
pub(crate) fn user_hook(
    event_name: &'static str,
    username: &str,
    name: &str,
    email: &str,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
) -> HookEvent {
    let time =
        |at: chrono::DateTime<chrono::Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    HookEvent {
        event_name,
        payload: serde_json::json!({
            "created_at": time(created_at),
            "updated_at": time(updated_at),
            "email": email,
            "event_name": event_name,
            "name": name,
            "username": username,
            "user_id": serde_json::Value::Null,
        }),
        id_field: Some("user_id"),
    }
}

pub async fn create(
    state: &AppState,
    admin: &AdminPrincipal,
    new: NewUser,
) -> Result<User, UserError> {
    let author = admin.user();
    validate_identity(Some(&new.username), Some(&new.email), Some(&new.name))
        .map_err(|(field, message)| UserError::Invalid(field, message.into()))?;
    if let Some(message) = state
        .store
        .user_conflict(Some(&new.email), Some(&new.username), None)
        .await?
    {
        return Err(UserError::Conflict(message.into()));
    }
    let now = state.clock.now();
    let mut event = audit::event(
        author,
        "User",
        0,
        "user_created",
        format!("Created user {}", new.username),
        ("User", 0, &new.username),
    );
    event.hook = Some(user_hook(
        "user_create",
        &new.username,
        &new.name,
        &new.email,
        now,
        now,
    ));
    let gate = seat_gate(state, &new).await?;
    let mut pending = audit::event(
        author,
        "User",
        0,
        PENDING_EVENT,
        format!(
            "User cap reached: {} was created pending approval",
            new.username
        ),
        ("User", 0, &new.username),
    );
    pending.hook = Some(user_hook(
        PENDING_EVENT,
        &new.username,
        &new.name,
        &new.email,
        now,
        now,
    ));
    let admission = state
        .store
        .create_user_gated(
            &new,
            gate,
            Write::audited(now, &event),
            Write::audited(now, &pending),
        )
        .await?;
    let user = match admission {
        Admission::Created(user) => user,
        Admission::Pending(user) => {
            tracing::info!(
                user_id = user.id,
                "user cap reached: user created pending approval"
            );
            user
        }
        Admission::NoSeats => {
            let mut refused = audit::event(
                author,
                "User",
                0,
                REFUSED_EVENT,
                format!(
                    "No seat available: {} was not created (block seat overages)",
                    new.username
                ),
                ("User", 0, &new.username),
            );
            let mut hook = user_hook(
                REFUSED_EVENT,
                &new.username,
                &new.name,
                &new.email,
                now,
                now,
            );
            hook.id_field = None;
            hook.payload["reason"] = serde_json::json!(NO_SEATS_AVAILABLE);
            refused.hook = Some(hook);
            state.store.record_audit(&refused, now).await?;
            state.hooks_wake.notify_one();
            tracing::info!(username = %new.username, "no seat available: user not created");
            return Err(UserError::NoSeats);
        }
    };
    tracing::info!(user_id = user.id, "user created");
    state.hooks_wake.notify_one();
    Ok(user)
}

/// The audit and system-hook event of a user created pending approval (the user cap).
pub const PENDING_EVENT: &str = "user_pending_approval";
/// The audit and system-hook event of a creation refused for want of a seat.
pub const REFUSED_EVENT: &str = "user_creation_refused";
/// GitLab's `ERROR_NO_SEATS_AVAILABLE`.
pub const NO_SEATS_AVAILABLE: &str = "NO_SEATS_AVAILABLE";

/// GitLab's `User.user_cap_reached?`: a user cap in force and at least that many billable
/// users (counted only that far).
async fn user_cap_reached(state: &AppState) -> Result<bool, StoreError> {
    let settings = crate::services::settings::current(state).await?;
    if settings.seat_control != SeatControl::UserCap {
        return Ok(false);
    }
    let Some((_, license)) = crate::services::licenses::current(state, state.clock.today()).await?
    else {
        return Ok(false);
    };
    let licensed = crate::domain::settings::seat_controls_licensed(license.plan());
    match settings.user_cap(licensed) {
        Some(cap) => Ok(state
            .store
            .billable_at_least(cap, license.plan() == "ultimate")
            .await?),
        None => Ok(false),
    }
}

/// What the seat controls ask of creating `new` (GitLab's `EE::Users::BuildService` and
/// `CreateService`): a user cap for a new human; blocked overages for a new user who would
/// take a seat — a new user has no membership yet, so on Ultimate (guests and users without a
/// role do not count) nobody new does. Both need a Premium or Ultimate license.
async fn seat_gate(state: &AppState, new: &NewUser) -> Result<SeatGate, StoreError> {
    let settings = crate::services::settings::current(state).await?;
    if settings.seat_control == SeatControl::Off {
        return Ok(SeatGate::Open);
    }
    let Some((_, license)) = crate::services::licenses::current(state, state.clock.today()).await?
    else {
        return Ok(SeatGate::Open);
    };
    let licensed = crate::domain::settings::seat_controls_licensed(license.plan());
    let ultimate = license.plan() == "ultimate";
    if let Some(cap) = settings.user_cap(licensed) {
        if new.user_type == UserType::Human && new.state == UserState::Active {
            return Ok(SeatGate::UserCap { cap, ultimate });
        }
    }
    let takes_seat = new.state == UserState::Active
        && matches!(new.user_type, UserType::Human | UserType::ServiceUser)
        && !ultimate;
    if settings.blocks_overages(licensed) && takes_seat {
        // GitLab refuses when the license states no seats at all (`seats` blank or zero).
        let seats = license
            .restrictions
            .active_user_count
            .and_then(|seats| i64::try_from(seats).ok())
            .unwrap_or(0);
        return Ok(SeatGate::BlockOverages { seats, ultimate });
    }
    Ok(SeatGate::Open)
}

/// The user `id`, or `NotFound`.
async fn existing_user(state: &AppState, id: i64) -> Result<User, UserError> {
    state.store.find_user(id).await?.ok_or(UserError::NotFound)
}

pub async fn update(
    state: &AppState,
    admin: &AdminPrincipal,
    id: i64,
    changes: UserChanges,
) -> Result<User, UserError> {
    let author = admin.user();
    let existing = existing_user(state, id).await?;
    if id == author.id && changes.admin == Some(false) && existing.admin {
        return Err(UserError::Refused(403, SELF_DEMOTION_REFUSAL.into()));
    }
    validate_identity(
        changes.username.as_deref(),
        changes.email.as_deref(),
        changes.name.as_deref(),
    )
    .map_err(|(field, message)| UserError::Invalid(field, message.into()))?;
    if let Some(message) = state
        .store
        .user_conflict(
            changes.email.as_deref(),
            changes.username.as_deref(),
            Some(id),
        )
        .await?
    {
        return Err(UserError::Conflict(message.into()));
    }
    let event = audit::event(
        author,
        "User",
        id,
        "user_updated",
        format!("Updated user {}", existing.username),
        ("User", id, &existing.username),
    );
    state
        .store
        .update_user(id, &changes, Write::audited(state.clock.now(), &event))
        .await?
        .ok_or(UserError::NotFound)
}

/// Deletes a user; like GitLab, not the sole owner of a group unless `hard_delete`.
pub async fn delete(
    state: &AppState,
    admin: &AdminPrincipal,
    id: i64,
    hard_delete: bool,
) -> Result<(), UserError> {
    let author = admin.user();
    let existing = existing_user(state, id).await?;
    if id == author.id {
        return Err(UserError::Refused(403, self_refusal("deleted")));
    }
    if !hard_delete && state.store.groups_solely_owned_by(id).await? > 0 {
        return Err(UserError::Refused(
            409,
            "User cannot be removed while is the sole-owner of a group".into(),
        ));
    }
    remove(
        state,
        author,
        &existing,
        "user_destroyed",
        format!("Removed user {}", existing.username),
    )
    .await
}

/// Removes `existing` with the audit event `event_name` and GitLab's `user_destroy` system
/// hook, in one transaction.
async fn remove(
    state: &AppState,
    author: &User,
    existing: &User,
    event_name: &'static str,
    message: String,
) -> Result<(), UserError> {
    let now = state.clock.now();
    let id = existing.id;
    let mut event = audit::event(
        author,
        "User",
        id,
        event_name,
        message,
        ("User", id, &existing.username),
    );
    event.hook = Some(user_hook(
        "user_destroy",
        &existing.username,
        &existing.name,
        &existing.email,
        existing.created_at,
        now,
    ));
    if state
        .store
        .delete_user(id, Write::audited(now, &event))
        .await?
    {
        tracing::info!(user_id = id, event_name, "user removed");
        state.hooks_wake.notify_one();
        Ok(())
    } else {
        Err(UserError::NotFound)
    }
}

/// `POST /users/:id/reject`: a user waiting for approval is removed (GitLab's
/// `Users::RejectService`: a hard delete, audited, with the `user_destroy` system hook); anyone
/// else is `409 User does not have a pending request`.
pub async fn reject(state: &AppState, admin: &AdminPrincipal, id: i64) -> Result<(), UserError> {
    let existing = existing_user(state, id).await?;
    if existing.state != UserState::BlockedPendingApproval {
        return Err(UserError::Refused(
            409,
            "User does not have a pending request".into(),
        ));
    }
    remove(
        state,
        admin.user(),
        &existing,
        "user_rejected",
        format!("Instance access request rejected: {}", existing.username),
    )
    .await
}

/// Applies a moderation action; the answer is the JSON body of GitLab's 201.
pub async fn moderate(
    state: &AppState,
    admin: &AdminPrincipal,
    id: i64,
    action: Action,
    today: NaiveDate,
) -> Result<Answer, UserError> {
    let author = admin.user();
    let user = existing_user(state, id).await?;
    let dormant_days = crate::services::settings::current(state)
        .await?
        .deactivate_dormant_users_period;
    match transition(action, &user, author.id, today, dormant_days) {
        Transition::Refused(status, message) => Err(UserError::Refused(status, message)),
        Transition::Unchanged(body) => Ok(body),
        Transition::To(new_state, body) => {
            // GitLab: a deactivated user activated while the user cap is reached waits for
            // approval instead.
            let new_state = if action == Action::Activate
                && user.state == UserState::Deactivated
                && user_cap_reached(state).await?
            {
                UserState::BlockedPendingApproval
            } else {
                new_state
            };
            let event = audit::event(
                author,
                "User",
                id,
                action.event_name(),
                format!(
                    "Changed state of {} from {} to {new_state}",
                    user.username, user.state
                ),
                ("User", id, &user.username),
            );
            state
                .store
                .set_user_state(id, new_state, Write::audited(state.clock.now(), &event))
                .await?;
            tracing::info!(
                user_id = id,
                from = %user.state,
                to = %new_state,
                "user state changed"
            );
            Ok(body)
        }
    }
}

/// How long the token `admin rescue` prints stays valid: long enough to sign in and make a
/// proper one, short enough that a forgotten copy soon stops working.
pub const RESCUE_TOKEN_DAYS: i64 = 7;

/// `gitlab-license-server admin rescue`: `username` (root by default) becomes an active
/// administrator again — root is created anew if it was deleted — with a new token
/// (`api`, `admin_mode`), returned here and shown once. Audited as the user's own act.
pub async fn rescue_admin(
    store: &crate::store::Store,
    username: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(User, String, NaiveDate), String> {
    let value = crate::auth::generate_token();
    let expires_on = now.date_naive() + chrono::TimeDelta::days(RESCUE_TOKEN_DAYS);
    let scopes = [crate::auth::Scope::Api, crate::auth::Scope::AdminMode]
        .map(|scope| scope.as_str().to_string());
    let token = crate::services::tokens::new_token(
        &value,
        "admin rescue",
        &scopes,
        Some(expires_on),
        now.date_naive(),
    )?;
    let audit_for = |user: &User, created: bool| {
        let message = if created {
            format!(
                "Created {} again from the command line (admin rescue)",
                user.username
            )
        } else {
            format!(
                "Restored administrator access of {} from the command line (admin rescue)",
                user.username
            )
        };
        audit::event(
            user,
            "User",
            user.id,
            "admin_rescued",
            message,
            ("User", user.id, &user.username),
        )
    };
    match store
        .rescue_admin(username, &token, now, &audit_for)
        .await
        .map_err(|error| error.to_string())?
    {
        Some((user, _)) => Ok((user, value, expires_on)),
        None => Err(format!(
            "there is no user named `{username}`; without --username, root is restored (or created again)"
        )),
    }
}
