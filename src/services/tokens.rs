//! Personal access tokens: created (the API, the command line, first-run bootstrap) and
//! rotated as the instance's settings say (prefix, expiry required, longest lifetime), and
//! revoked — alone, as a rotated token's family, or by the lifetime policy.

use chrono::{DateTime, NaiveDate, Utc};

use crate::auth::{generate_prefixed_token, token_digest, Scope};
use crate::domain::tokens::TokenRules;
use crate::policy::{AdminPrincipal, Principal};
use crate::services::audit;
use crate::state::AppState;
use crate::store::{NewToken, Store, StoreError, TokenRow, TokenWithUser, User, Write};

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
    let rules = token_rules(state).await?;
    let expires_at = rules
        .expiry_for_new(expires_at, today)
        .map_err(TokenError::Unprocessable)?;
    let value = generate_prefixed_token(&rules.prefix);
    let token =
        new_token(&value, name, scopes, expires_at, today).map_err(TokenError::Unprocessable)?;
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

/// What the settings (and, for the longest lifetime, an Ultimate license) say about new tokens.
pub async fn token_rules(state: &AppState) -> Result<TokenRules, StoreError> {
    let settings = crate::services::settings::current(state).await?;
    // The longest lifetime is enforced on Ultimate only (`personal_access_token_expiration_policy`).
    let ultimate = crate::services::licenses::current_is_ultimate(state).await?;
    Ok(settings.token_rules(ultimate))
}

#[derive(Debug)]
pub enum RotateError {
    /// GitLab's `Token already revoked` (also when another rotation came first).
    AlreadyRevoked,
    /// The new token's expiry does not pass GitLab's check (the sentence).
    Invalid(String),
    Store(StoreError),
}

impl From<StoreError> for RotateError {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

/// GitLab's `RotateService`: in one transaction the token is revoked and a successor made
/// with its name and scopes, expiring on `expires_at` or as the settings say; the successor
/// and its value (shown once).
pub async fn rotate(
    state: &AppState,
    actor: &Principal,
    token: &TokenRow,
    expires_at: Option<NaiveDate>,
) -> Result<(TokenRow, String), RotateError> {
    if token.revoked {
        return Err(RotateError::AlreadyRevoked);
    }
    let now = state.clock.now();
    let today = now.date_naive();
    let rules = token_rules(state).await?;
    let expires_at = rules
        .expiry_for_rotation(expires_at, today)
        .map_err(RotateError::Invalid)?;
    let value = generate_prefixed_token(&rules.prefix);
    let successor = NewToken {
        previous_token_id: Some(token.id),
        ..new_token(&value, &token.name, token.scopes.names(), expires_at, today)
            .map_err(RotateError::Invalid)?
    };
    let event = audit::event(
        actor.user(),
        "User",
        token.user_id,
        "personal_access_token_rotated",
        format!("Rotated personal access token {}", token.name),
        ("PersonalAccessToken", 0, &token.name),
    );
    let id = state
        .store
        .rotate_token(
            token.id,
            token.user_id,
            &successor,
            Write::audited(now, &event),
        )
        .await?
        .ok_or(RotateError::AlreadyRevoked)?;
    tracing::info!(
        token_id = token.id,
        successor_id = id,
        user_id = token.user_id,
        "personal access token rotated"
    );
    let row = state
        .store
        .find_token_by_id(id)
        .await?
        .ok_or(StoreError::NotFound("token"))?;
    Ok((row, value))
}

/// GitLab's reuse detection: a revoked token used to rotate revokes every token rotated from
/// it (whoever holds the successor may hold a stolen copy, or be the thief).
pub async fn revoke_family(state: &AppState, token: &TokenWithUser) -> Result<u64, StoreError> {
    let event = audit::event(
        &token.user,
        "User",
        token.user.id,
        "personal_access_token_family_revoked",
        format!(
            "Revoked the tokens rotated from personal access token {}: the revoked token was used to rotate",
            token.token_name
        ),
        ("PersonalAccessToken", token.token_id, &token.token_name),
    );
    let revoked = state
        .store
        .revoke_token_family(token.token_id, Write::audited(state.clock.now(), &event))
        .await?;
    if revoked > 0 {
        tracing::warn!(
            token_id = token.token_id,
            revoked,
            "a revoked token was used to rotate: its family is revoked"
        );
    }
    Ok(revoked)
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
        previous_token_id: None,
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
    // The prefix the settings give new tokens; a token made from the command line is new too.
    let prefix = crate::services::settings::stored(store)
        .await
        .map_err(|error| error.to_string())?
        .personal_access_token_prefix;
    let value = generate_prefixed_token(&prefix);
    let token = new_token(&value, name, scopes, expires_at, now.date_naive())?;
    store
        .create_token(user.id, &token, Write::unaudited(now))
        .await
        .map_err(|error| error.to_string())?;
    Ok(value)
}
