//! Personal access tokens: where a request's token comes from, what it may do, and the
//! extractors that make "authenticated" and "administrator" types a handler can demand.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;
use sha2::{Digest, Sha256};

use crate::cache::Cache;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::TokenWithUser;

pub use crate::domain::users::TOKEN_PREFIX;
const TOKEN_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const TOKEN_RANDOM_CHARS: usize = 20;

pub use crate::domain::tokens::Scope;
use crate::domain::users::UserState;
use crate::policy::{authorize, AuthError, Need, Settings};
pub use crate::policy::{AdminPrincipal, Principal};

/// Read scopes the license API accepts (for GET and HEAD) besides `api`.
pub const LICENSE_READ_SCOPES: &[Scope] = &[Scope::ReadApi];
/// `/user`, `/version` and `/metadata` also take `read_user` tokens, as GitLab's do.
pub const USER_READ_SCOPES: &[Scope] = &[Scope::ReadApi, Scope::ReadUser];

/// The SHA-256 digest a token is stored as (hex).
pub fn token_digest(token: &str) -> String {
    // Into a buffer, then one String: `hex::encode` collects chars one by one, and this runs
    // on every authenticated request.
    let mut text = [0u8; 64];
    let digest = Sha256::digest(token.as_bytes());
    match hex::encode_to_slice(digest, &mut text) {
        // Hex digits are ASCII; `from_utf8` only checks that.
        Ok(()) => std::str::from_utf8(&text).map_or_else(|_| hex::encode(digest), str::to_owned),
        Err(_) => hex::encode(digest),
    }
}

/// A new `glpat-` token with 120 random bits.
pub fn generate_token() -> String {
    generate_prefixed_token(TOKEN_PREFIX)
}

/// A new token with GitLab's `prefix` (`glpat-`, `glsoat-`) and 120 random bits.
pub fn generate_prefixed_token(prefix: &str) -> String {
    use rand_core::RngCore as _;
    let mut bytes = [0u8; TOKEN_RANDOM_CHARS];
    rand_core::OsRng.fill_bytes(&mut bytes);
    let random: String = bytes
        .iter()
        .map(|byte| TOKEN_ALPHABET[usize::from(*byte) % TOKEN_ALPHABET.len()] as char)
        .collect();
    format!("{prefix}{random}")
}

/// The token a request carries, in GitLab's order: `private_token` parameter, `PRIVATE-TOKEN`
/// header, then the OAuth places (`access_token` parameter, `Authorization: Bearer`). Empty
/// values count as absent, so an empty `PRIVATE-TOKEN:` header is anonymous.
pub fn request_token(parts: &Parts) -> Option<String> {
    let query = parts.uri.query().unwrap_or_default();
    let parameter = |name: &str| {
        form_urlencoded_pairs(query)
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
            .filter(|value| !value.is_empty())
    };
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_string)
    };
    let bearer = || {
        header("authorization").and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            let token = token.trim();
            (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
        })
    };
    parameter("private_token")
        .or_else(|| header("private-token"))
        .or_else(|| parameter("access_token"))
        .or_else(bearer)
}

fn form_urlencoded_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .unwrap_or_default()
        .into_iter()
}

/// GitLab's reasons for refusing an account's API access (`403 Forbidden - …`).
pub fn account_refusal(state: UserState, external_url: &str) -> Option<String> {
    match state {
        UserState::Active => None,
        UserState::BlockedPendingApproval => Some(
            "Your account is pending approval from your administrator and hence blocked.".into(),
        ),
        UserState::Deactivated => Some(format!(
            "Your account has been deactivated by your administrator. Please log back in from a web browser to reactivate your account at {external_url}"
        )),
        UserState::Banned => Some("Your account has been banned.".into()),
        UserState::Blocked | UserState::LdapBlocked => {
            Some("Your account has been blocked.".into())
        }
    }
}

/// How often a token's `last_used_at` is written (GitLab's interval).
const LAST_USED_INTERVAL_MINUTES: i64 = 10;

/// Keeps `last_used_at` current without a write per request (at most one write per token per
/// ten minutes and process, skipped when the stored time is recent anyway), and the user's
/// `last_activity_on` as GitLab's activity service does: at most once a day.
pub async fn record_use(state: &AppState, record: &TokenWithUser) {
    record_activity(state, &record.user).await;
    record_token_use(state, record).await;
}

/// `Users::ActivityService`: the day of the user's latest authenticated request.
pub async fn record_activity(state: &AppState, user: &crate::store::User) {
    let today = state.clock.today();
    if user.last_activity_on >= Some(today)
        || !state.store.is_reachable()
        || !state.cache.should_record_activity(user.id, today)
    {
        return;
    }
    let recorded = state
        .store
        .unless_unreachable(state.store.set_last_activity(user.id, today))
        .await;
    if let Err(error) = recorded {
        tracing::warn!(%error, "could not record a user's activity");
    }
}

async fn record_token_use(state: &AppState, record: &TokenWithUser) {
    let now = state.clock.now();
    let interval = chrono::TimeDelta::minutes(LAST_USED_INTERVAL_MINUTES);
    let recent = record.last_used_at.is_some_and(|at| now - at < interval);
    let throttle = interval.to_std().unwrap_or_default();
    // During a database outage the write would only fail; the next use after it records it.
    if recent
        || !state.store.is_reachable()
        || !state.cache.should_touch_token(record.token_id, throttle)
    {
        return;
    }
    let touched = state
        .store
        .unless_unreachable(state.store.touch_token(record.token_id, now, interval))
        .await;
    if let Err(error) = touched {
        tracing::warn!(%error, "could not record a token's use");
    }
}

/// Looks the token up (through the cache) and applies the [policy](crate::policy): known,
/// not revoked, not expired, scope fits the method (`api`, or one of `read_scopes` for GET and
/// HEAD), account active.
pub async fn authenticate(
    parts: &Parts,
    state: &AppState,
    read_scopes: &'static [Scope],
) -> Result<Principal, ApiError> {
    let record = lookup_token(parts, state).await?;
    let need = if matches!(parts.method, Method::GET | Method::HEAD) {
        Need::Read(read_scopes)
    } else {
        Need::Write
    };
    let principal = authorize(record, policy_settings(state), need)
        .map_err(|refusal| refusal_error(refusal, state))?;
    record_use(state, &principal.token).await;
    Ok(principal)
}

/// The instance settings the policy reads.
pub fn policy_settings(state: &AppState) -> Settings {
    Settings {
        admin_mode: state.config.admin_mode,
        today: state.clock.today(),
    }
}

/// A refusal of the policy as the REST API answers it (GitLab's bodies).
pub fn refusal_error(refusal: AuthError, state: &AppState) -> ApiError {
    match refusal {
        AuthError::Revoked => ApiError::TokenRevoked,
        AuthError::Expired => ApiError::TokenExpired,
        AuthError::InsufficientScope(scopes) => ApiError::InsufficientScope(scopes),
        AuthError::Account(account) => ApiError::ForbiddenBecause(
            account_refusal(account, &state.config.external_url)
                .unwrap_or_else(|| "Your account has been blocked.".into()),
        ),
    }
}

/// The request's token record, if it is known (whether it may do anything is the
/// [policy](crate::policy)'s to say).
pub async fn lookup_token(parts: &Parts, state: &AppState) -> Result<Arc<TokenWithUser>, ApiError> {
    if let Some(ResolvedToken(record)) = parts.extensions.get::<ResolvedToken>() {
        return Ok(Arc::clone(record));
    }
    let token = request_token(parts).ok_or(ApiError::Unauthorized)?;
    find_token(&token, state).await
}

/// The request's token record as the rate limits found it, so that the handler does not look
/// it up a second time.
#[derive(Clone)]
pub struct ResolvedToken(pub Arc<TokenWithUser>);

/// Who a request counts against for the rate limits (GitLab's `authenticated_identifier`): the
/// user of a token that authenticates — known, not revoked or expired, account active, any
/// scope — else the address it came from. A token found is left in the request for
/// [`lookup_token`].
pub async fn rate_limit_requester(
    parts: &mut Parts,
    state: &AppState,
    address: std::net::IpAddr,
) -> crate::domain::throttle::Requester {
    use crate::domain::throttle::Requester;
    let Some(token) = request_token(parts) else {
        return Requester::Address(address);
    };
    let Ok(record) = find_token(&token, state).await else {
        return Requester::Address(address);
    };
    parts.extensions.insert(ResolvedToken(Arc::clone(&record)));
    match authorize(record, policy_settings(state), Need::Read(&Scope::ALL)) {
        Ok(principal) => Requester::User {
            id: principal.user().id,
            admin: principal.admin,
        },
        Err(_) => Requester::Address(address),
    }
}

/// A token by its value (through the cache), if it is known.
/// While the database cannot be reached, a token checked before the outage is served from
/// the cache as it was then (no write can have revoked it meanwhile: writes need the
/// database too); one never seen is a 503, never "unauthorized".
pub async fn find_token(token: &str, state: &AppState) -> Result<Arc<TokenWithUser>, ApiError> {
    let digest = token_digest(token);
    let record = match state.cache.token(&digest, &state.store) {
        Some(record) => record,
        None => {
            let ticket = Cache::ticket(&state.store);
            match state
                .store
                .unless_unreachable(state.store.find_token(&digest))
                .await
            {
                Ok(found) => {
                    let record = Arc::new(found.ok_or(ApiError::Unauthorized)?);
                    state.cache.put_token(&digest, ticket, Arc::clone(&record));
                    record
                }
                Err(error) if error.is_unavailable() => state
                    .cache
                    .last_known_token(&digest)
                    .ok_or(ApiError::ServiceUnavailable)?,
                Err(error) => return Err(error.into()),
            }
        }
    };
    Ok(record)
}

/// Any authenticated user, on the endpoints that also accept `read_user` tokens.
pub struct Authenticated(pub Principal);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state, USER_READ_SCOPES).await.map(Self)
    }
}

/// Any authenticated user whose token reads the API (`api`, or `read_api` for GET): the
/// endpoints that are not about the user's own profile (`read_user` reaches only those).
pub struct ApiUser(pub Principal);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state, LICENSE_READ_SCOPES)
            .await
            .map(Self)
    }
}

/// An administrator (with the `admin_mode` scope when Admin Mode is on). Only this type opens
/// the admin-only handlers, and it is extracted before any parameter is looked at.
pub struct Admin(pub AdminPrincipal);

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state, LICENSE_READ_SCOPES)
            .await?
            .into_admin()
            .map(Self)
            .map_err(|_| ApiError::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut builder = axum::http::Request::builder().uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(()).expect("request").into_parts().0
    }

    #[test]
    fn token_sources_in_gitlab_order() {
        let all = parts(
            "/x?private_token=p&access_token=a",
            &[("PRIVATE-TOKEN", "h"), ("Authorization", "Bearer b")],
        );
        assert_eq!(request_token(&all).as_deref(), Some("p"));
        let header_and_bearer = parts(
            "/x?access_token=a",
            &[("PRIVATE-TOKEN", "h"), ("Authorization", "Bearer b")],
        );
        assert_eq!(request_token(&header_and_bearer).as_deref(), Some("h"));
        let oauth = parts("/x?access_token=a", &[("Authorization", "Bearer b")]);
        assert_eq!(request_token(&oauth).as_deref(), Some("a"));
        let bearer = parts("/x", &[("Authorization", "bearer b")]);
        assert_eq!(request_token(&bearer).as_deref(), Some("b"));
    }

    #[test]
    fn empty_values_are_anonymous() {
        assert_eq!(
            request_token(&parts("/x?private_token=", &[("PRIVATE-TOKEN", "")])),
            None
        );
        assert_eq!(
            request_token(&parts("/x", &[("Authorization", "Bearer ")])),
            None
        );
        assert_eq!(
            request_token(&parts("/x", &[("Authorization", "Basic abc")])),
            None
        );
    }

    #[test]
    fn generated_tokens_look_like_gitlab_tokens() {
        let token = generate_token();
        assert!(token.starts_with("glpat-"));
        assert_eq!(token.len(), 26);
        assert_ne!(token, generate_token());
        assert_eq!(token_digest("abc").len(), 64);
    }
}
