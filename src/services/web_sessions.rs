//! Sessions of the subscription page. An administrator signs in with a personal access
//! token; the session then acts with that token, so revoking the token, its expiry, a blocked
//! account or lost admin rights end it at the next request. Only the cookie's digest is stored,
//! so a database dump does not hold live sessions.

use std::sync::Arc;

use base64::Engine as _;
use chrono::TimeDelta;
use rand_core::RngCore as _;

use crate::auth::{self, AdminPrincipal, LICENSE_READ_SCOPES};
use crate::error::ApiError;
use crate::policy::{authorize, Need};
use crate::state::AppState;
use crate::store::TokenWithUser;
use crate::store::{StoreResult, Write};

/// GitLab's default session length (`session_expire_delay`, one week).
pub const SESSION_LIFETIME: TimeDelta = TimeDelta::weeks(1);

/// A new session: the cookie value and the CSRF token its forms carry.
pub struct OpenedSession {
    pub cookie_value: String,
    pub csrf_token: String,
}

/// A session that is still good, with the administrator it acts for.
pub struct ResumedSession {
    pub actor: AdminPrincipal,
    pub csrf_token: String,
}

/// 256 random bits, URL-safe.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand_core::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The [policy](crate::policy) as the API's admin endpoints apply it to a read, for a token
/// read from a form or a session: usable, `api` or `read_api` scope, active account,
/// administrator (with `admin_mode` where Admin Mode is on).
fn admit(record: Arc<TokenWithUser>, state: &AppState) -> Result<AdminPrincipal, ApiError> {
    let principal = authorize(
        record,
        auth::policy_settings(state),
        Need::Read(LICENSE_READ_SCOPES),
    )
    .map_err(|refusal| auth::refusal_error(refusal, state))?;
    principal.into_admin().map_err(|_| ApiError::Forbidden)
}

/// Signs an administrator in with a personal access token.
pub async fn sign_in(state: &AppState, token: &str) -> Result<OpenedSession, ApiError> {
    let record = auth::find_token(token.trim(), state).await?;
    let record = Arc::clone(&admit(record, state)?.token);
    let opened = OpenedSession {
        cookie_value: random_secret(),
        csrf_token: random_secret(),
    };
    let now = state.clock.now();
    let event = crate::services::audit::event(
        &record.user,
        "User",
        record.user.id,
        "user_signed_in",
        format!(
            "Signed in to the subscription page with personal access token {}",
            record.token_name
        ),
        ("User", record.user.id, &record.user.username),
    );
    state
        .store
        .create_web_session(
            &auth::token_digest(&opened.cookie_value),
            record.token_id,
            &opened.csrf_token,
            now,
            now + SESSION_LIFETIME,
            &event,
        )
        .await?;
    auth::record_use(state, &record).await;
    tracing::info!(
        user_id = record.user.id,
        token_id = record.token_id,
        "signed in to the web page"
    );
    Ok(opened)
}

/// The session behind a cookie: `Ok(None)` when there is none (unknown or expired), an error
/// when its token or account no longer qualifies.
pub async fn resume(
    state: &AppState,
    cookie_value: &str,
) -> Result<Option<ResumedSession>, ApiError> {
    let digest = auth::token_digest(cookie_value);
    let Some(session) = state
        .store
        .find_web_session(&digest, state.clock.now())
        .await?
    else {
        return Ok(None);
    };
    let principal = admit(Arc::new(session.token), state)?;
    auth::record_use(state, &principal.token).await;
    Ok(Some(ResumedSession {
        actor: principal,
        csrf_token: session.csrf_token,
    }))
}

/// Ends `user`'s session behind a cookie (nothing happens for an unknown one).
pub async fn sign_out(
    state: &AppState,
    user: &crate::store::User,
    cookie_value: &str,
) -> StoreResult<()> {
    let event = crate::services::audit::event(
        user,
        "User",
        user.id,
        "user_signed_out",
        "Signed out of the subscription page".to_string(),
        ("User", user.id, &user.username),
    );
    if state
        .store
        .delete_web_session(
            &auth::token_digest(cookie_value),
            Write::audited(state.clock.now(), &event),
        )
        .await?
    {
        tracing::info!("signed out of the web page");
    }
    Ok(())
}

/// Ends a session whose token or account no longer qualifies (not a sign-out: nobody asked).
pub async fn end(state: &AppState, cookie_value: &str) -> StoreResult<()> {
    state
        .store
        .delete_web_session(
            &auth::token_digest(cookie_value),
            Write::unaudited(state.clock.now()),
        )
        .await
        .map(|_| ())
}
