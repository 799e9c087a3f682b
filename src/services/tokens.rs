//! Creating personal access tokens (the command line and first-run bootstrap).

use chrono::{DateTime, NaiveDate, Utc};

use crate::auth::{generate_token, token_digest, Scope};
use crate::policy::AdminPrincipal;
use crate::services::audit;
use crate::state::AppState;
use crate::store::{NewToken, Store, StoreError, TokenRow, User, Write};

/// GitLab's default lifetime for a token created without an expiry date.
pub const DEFAULT_LIFETIME_DAYS: i64 = 365;

#[derive(Debug)]
pub enum TokenError {
    UserNotFound,
    /// 400 `{"error": …}` (a bad parameter).
    InvalidParameter(String),
    /// 422 `{"message": …}`.
    Unprocessable(String),
    Store(StoreError),
}

impl From<StoreError> for TokenError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// `POST /users/:id/personal_access_tokens`: the new token's row and its value (shown once).
pub async fn create_for(
    state: &AppState,
    admin: &AdminPrincipal,
    user_id: i64,
    name: &str,
    scopes: &[String],
    expires_at: Option<NaiveDate>,
) -> Result<(TokenRow, String), TokenError> {
    let author = admin.user();
    if scopes.is_empty() || scopes.iter().any(|scope| Scope::from_name(scope).is_none()) {
        return Err(TokenError::InvalidParameter(
            "scopes does not have a valid value".into(),
        ));
    }
    let user = state
        .store
        .find_user(user_id)
        .await?
        .ok_or(TokenError::UserNotFound)?;
    let now = state.clock.now();
    let today = now.date_naive();
    let expires_at = expires_at.unwrap_or(today + chrono::TimeDelta::days(DEFAULT_LIFETIME_DAYS));
    let value = generate_token();
    let token = new_token(&value, name, scopes, Some(expires_at), today)
        .map_err(TokenError::Unprocessable)?;
    let event = audit::event(
        author,
        "User",
        user.id,
        "personal_access_token_created",
        format!("Created personal access token {name} for {}", user.username),
        ("PersonalAccessToken", 0, name),
    );
    let id = state
        .store
        .create_token(user.id, &token, Write::audited(now, &event))
        .await?;
    let row = state
        .store
        .find_token_by_id(id)
        .await?
        .ok_or(StoreError::NotFound("token"))?;
    Ok((row, value))
}

/// Revokes a token; false when it was revoked already.
pub async fn revoke(state: &AppState, author: &User, token: &TokenRow) -> Result<bool, StoreError> {
    let event = audit::event(
        author,
        "User",
        token.user_id,
        "personal_access_token_revoked",
        format!("Revoked personal access token {}", token.name),
        ("PersonalAccessToken", token.id, &token.name),
    );
    state
        .store
        .revoke_token(token.id, Write::audited(state.clock.now(), &event))
        .await
}

/// A token request, checked before anything is written.
pub fn new_token(
    value: &str,
    name: &str,
    scopes: &[String],
    expires_at: Option<NaiveDate>,
    today: NaiveDate,
) -> Result<NewToken, String> {
    if name.trim().is_empty() {
        return Err("the token name must not be empty".into());
    }
    if scopes.is_empty() {
        return Err("at least one scope is needed (e.g. api)".into());
    }
    if let Some(unknown) = scopes
        .iter()
        .find(|scope| Scope::from_name(scope).is_none())
    {
        return Err(format!(
            "unknown scope `{unknown}`; known scopes: {}",
            Scope::all_names()
        ));
    }
    if expires_at.is_some_and(|date| date <= today) {
        return Err("the expiry date must be in the future".into());
    }
    Ok(NewToken {
        name: name.trim().to_string(),
        digest: token_digest(value),
        scopes: scopes.to_vec(),
        expires_at,
    })
}

/// Creates a token for `username` and returns its value (shown once, stored only as a digest).
pub async fn create_for_user(
    store: &Store,
    username: &str,
    name: &str,
    scopes: &[String],
    expires_at: Option<NaiveDate>,
    now: DateTime<Utc>,
) -> Result<String, String> {
    let user = store
        .find_user_by_username(username)
        .await
        .map_err(|error| error.to_string())?
        .ok_or_else(|| format!("no user named `{username}`"))?;
    let value = generate_token();
    let token = new_token(&value, name, scopes, expires_at, now.date_naive())?;
    store
        .create_token(user.id, &token, Write::unaudited(now))
        .await
        .map_err(|error| error.to_string())?;
    Ok(value)
}
