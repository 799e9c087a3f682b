//! Approving the users who wait for approval, all at once: GitLab's
//! `ApproveBlockedPendingApprovalUsersWorker`, run when approval is no longer required or a
//! raised or removed user cap is asked to approve them.

use crate::domain::moderation::Action;
use crate::domain::users::UserState;
use crate::policy::AdminPrincipal;
use crate::services::audit;
use crate::state::AppState;
use crate::store::{StoreError, Write};

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
