//! The application rate limits a handler checks itself (GitLab's `check_rate_limit!`); the
//! user and IP throttles in front of every API route are `api::throttle`'s.

use crate::domain::throttle;
use crate::policy::Principal;
use crate::state::AppState;
use crate::store::StoreError;

/// `GET /users/:id`'s limit (`users_get_by_id`: 300 requests per 10 minutes per user by
/// default; not for administrators or the allowlist): whether this request is within it.
pub async fn users_get_by_id_allowed(
    state: &AppState,
    caller: &Principal,
) -> Result<bool, StoreError> {
    let settings = crate::services::settings::current(state).await?;
    let user = caller.user();
    let Some((limit, key)) =
        throttle::users_get_by_id_limit(&settings, user.id, &user.username, caller.admin)
    else {
        return Ok(true);
    };
    let observed = state.rate_limiter.hit(key, &limit, state.clock.now());
    let allowed = observed.is_none_or(|observed| observed <= limit.limit);
    if !allowed {
        state.rate_limiter.note_refusal();
        tracing::warn!(
            limit = limit.name,
            user_id = user.id,
            "application rate limit reached"
        );
    }
    Ok(allowed)
}
