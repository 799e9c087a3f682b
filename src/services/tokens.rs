//! Creating personal access tokens (the command line and first-run bootstrap).

use chrono::{DateTime, NaiveDate, Utc};

use crate::auth::{generate_token, token_digest, KNOWN_SCOPES};
use crate::store::{NewToken, Store};

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
        .find(|scope| !KNOWN_SCOPES.contains(&scope.as_str()))
    {
        return Err(format!(
            "unknown scope `{unknown}`; known scopes: {}",
            KNOWN_SCOPES.join(", ")
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
        .create_token(user.id, &token, now)
        .await
        .map_err(|error| error.to_string())?;
    Ok(value)
}
