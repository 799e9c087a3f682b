//! What every page answer shares: the security headers, the error page, a refused or failed
//! step ([`Failure`]), and the fields of a posted form.

use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::Markup;

use super::views;

/// Security headers for every page: no scripts at all, nothing framed, no caching of
/// pages that show licensing data.
const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub fn html(status: StatusCode, markup: Markup) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "same-origin"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        markup.into_string(),
    )
        .into_response()
}

pub fn error_page(status: StatusCode, message: &str) -> Response {
    html(status, views::error(message))
}

/// A refused or failed step, shown on the page it came from.
pub struct Failure {
    pub status: StatusCode,
    pub message: String,
}

impl Failure {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "web page request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong on our side. Please try again.",
        )
    }

    /// The database cannot be reached: nothing is wrong with the request, try again soon.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "The database cannot be reached right now. Please try again in a moment.",
        )
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(error: crate::store::StoreError) -> Self {
        if error.is_unavailable() {
            Self::unavailable()
        } else {
            Self::internal(error)
        }
    }
}

/// A form's fields, repeated names kept.
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    pub fn parse(body: &Bytes) -> Self {
        Self(serde_urlencoded::from_bytes(body).unwrap_or_default())
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

pub fn invalid_authenticity_token() -> Failure {
    // Rails answers a missing or wrong CSRF token with 422.
    Failure::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "Invalid authenticity token: reload the page and try again.",
    )
}

pub fn error_page_for(failure: Failure) -> Response {
    error_page(failure.status, &failure.message)
}
