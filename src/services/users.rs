//! The user directory: create, change, delete and moderate users, with audit events.

use chrono::NaiveDate;

use crate::domain::moderation::{
    self_refusal, transition, Action, Answer, Transition, LAST_ADMIN_REFUSAL, SELF_DEMOTION_REFUSAL,
};
use crate::domain::users::{validate_identity, UserState};
use crate::policy::AdminPrincipal;
use crate::services::audit;
use crate::state::AppState;
use crate::store::{HookEvent, NewUser, StoreError, User, UserChanges, Write};

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
    let user = state
        .store
        .create_user(&new, Write::audited(now, &event))
        .await?;
    tracing::info!(user_id = user.id, "user created");
    state.hooks_wake.notify_one();
    Ok(user)
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
    let mut event = audit::event(
        author,
        "User",
        id,
        "user_destroyed",
        format!("Removed user {}", existing.username),
        ("User", id, &existing.username),
    );
    event.hook = Some(user_hook(
        "user_destroy",
        &existing.username,
        &existing.name,
        &existing.email,
        existing.created_at,
        state.clock.now(),
    ));
    if state
        .store
        .delete_user(id, Write::audited(state.clock.now(), &event))
        .await?
    {
        tracing::info!(user_id = id, "user removed");
        state.hooks_wake.notify_one();
        Ok(())
    } else {
        Err(UserError::NotFound)
    }
}

/// Applies a moderation action; the answer is the JSON body of GitLab's 201.
/// Approves every user waiting for approval (GitLab's `ApproveBlockedPendingApprovalUsersWorker`:
/// no cap is checked), each audited as an administrator's approval. Returns how many.
pub async fn approve_all_pending(
    state: &AppState,
    admin: &AdminPrincipal,
) -> Result<usize, StoreError> {
    let mut approved = 0;
    let mut after = 0;
    loop {
        let pending = state
            .store
            .users_in_state(UserState::BlockedPendingApproval, after, 100)
            .await?;
        let Some(last) = pending.last() else {
            break;
        };
        after = last.id;
        for user in &pending {
            let event = audit::event(
                admin.user(),
                "User",
                user.id,
                Action::Approve.event_name(),
                "Instance access request approved".into(),
                ("User", user.id, &user.username),
            );
            if state
                .store
                .set_user_state(
                    user.id,
                    UserState::Active,
                    Write::audited(state.clock.now(), &event),
                )
                .await?
            {
                approved += 1;
            }
        }
    }
    if approved > 0 {
        tracing::info!(approved, "pending users approved");
    }
    Ok(approved)
}

pub async fn moderate(
    state: &AppState,
    admin: &AdminPrincipal,
    id: i64,
    action: Action,
    today: NaiveDate,
) -> Result<Answer, UserError> {
    let author = admin.user();
    let user = existing_user(state, id).await?;
    match transition(action, &user, author.id, today) {
        Transition::Refused(status, message) => Err(UserError::Refused(status, message)),
        Transition::Unchanged(body) => Ok(body),
        Transition::To(new_state, body) => {
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
