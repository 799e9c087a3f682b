//! Cookies, the signed-in administrator, and CSRF checks for the web page.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq as _;

use crate::auth::AdminPrincipal;
use crate::services::web_sessions;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "_gitlab_license_server_session";
/// The sign-in form's CSRF token, before there is a session to keep it in.
pub const SIGN_IN_CSRF_COOKIE: &str = "_gitlab_license_server_csrf";
const COOKIE_PATH: &str = "/admin";

pub const SIGN_IN_PATH: &str = "/admin/sign_in";
pub const PAGE_PATH: &str = "/admin/subscription";

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_string())
        .filter(|value| !value.is_empty())
}

/// `Set-Cookie` for one of our cookies: HTTP-only, `SameSite=Strict`, limited to `/admin`,
/// and `Secure` when the server is reached over https (plain-http local use keeps working).
/// `max_age` 0 deletes the cookie.
pub fn set_cookie(
    state: &AppState,
    name: &str,
    value: &str,
    max_age: i64,
) -> (header::HeaderName, HeaderValue) {
    let secure = if state
        .config
        .external_url
        .get(..8)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://"))
    {
        "; Secure"
    } else {
        ""
    };
    let text = format!(
        "{name}={value}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}"
    );
    // Values are our own URL-safe base64, so the header is always valid.
    let value = HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""));
    (header::SET_COOKIE, value)
}

/// Compares a submitted CSRF token with the expected one in constant time.
pub fn csrf_matches(expected: &str, submitted: Option<&str>) -> bool {
    submitted.is_some_and(|submitted| {
        !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes()))
    })
}

/// The signed-in administrator. Anonymous visitors, and sessions whose token or account no
/// longer qualifies, are sent to the sign-in page instead.
pub struct WebAdmin {
    pub actor: AdminPrincipal,
    pub csrf_token: String,
    pub cookie_value: String,
}

impl WebAdmin {
    /// The session's token may change things (`api`), not only read them (`read_api`).
    pub fn can_write(&self) -> bool {
        self.actor.can_write
    }
}

impl FromRequestParts<AppState> for WebAdmin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Some(cookie_value) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(Redirect::to(SIGN_IN_PATH).into_response());
        };
        match web_sessions::resume(state, &cookie_value).await {
            Ok(Some(session)) => Ok(Self {
                actor: session.actor,
                csrf_token: session.csrf_token,
                cookie_value,
            }),
            Ok(None) => Err(ended(state, "expired")),
            Err(crate::error::ApiError::Internal(cause)) => {
                tracing::error!(%cause, "could not read a web session");
                Err(super::response::error_page(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong on our side. Please try again.",
                ))
            }
            // The database is unreachable: the session is not over, the page is unavailable.
            Err(crate::error::ApiError::ServiceUnavailable) => Err(super::response::error_page(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "The database cannot be reached right now. Please try again in a moment.",
            )),
            // The token was revoked or expired, the account blocked, or admin rights lost:
            // the session is over.
            Err(_) => {
                if let Err(error) = web_sessions::end(state, &cookie_value).await {
                    tracing::warn!(%error, "could not end a refused web session");
                }
                Err(ended(state, "refused"))
            }
        }
    }
}

/// Back to the sign-in page, forgetting the session cookie.
fn ended(state: &AppState, reason: &str) -> Response {
    (
        [set_cookie(state, SESSION_COOKIE, "", 0)],
        Redirect::to(&format!("{SIGN_IN_PATH}?session={reason}")),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; _gitlab_license_server_session=abc"),
        );
        headers.append(header::COOKIE, HeaderValue::from_static("b=2"));
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&headers, "b").as_deref(), Some("2"));
        assert_eq!(cookie(&headers, "c"), None);
    }

    #[test]
    fn csrf_tokens_must_match_exactly() {
        assert!(csrf_matches("abc", Some("abc")));
        assert!(!csrf_matches("abc", Some("abd")));
        assert!(!csrf_matches("abc", Some("ab")));
        assert!(!csrf_matches("abc", None));
        assert!(!csrf_matches("", Some("")));
    }
}
