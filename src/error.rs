//! The one place where error responses are made, in GitLab's exact shapes.
//!
//! GitLab-raised errors are `{"message": …}`, parameter-validation errors and unknown routes are
//! `{"error": …}`, and token problems use the OAuth2 shape with a `WWW-Authenticate` header.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Why a request failed, as the client must see it.
#[derive(Debug)]
pub enum ApiError {
    /// No usable credentials: `401 {"message":"401 Unauthorized"}`.
    Unauthorized,
    /// A token past its expiry date.
    TokenExpired,
    /// A revoked token.
    TokenRevoked,
    /// The token lacks a scope the request needs (`scope` lists the acceptable ones).
    InsufficientScope(&'static str),
    /// `403 {"message":"403 Forbidden"}`.
    Forbidden,
    /// `403 {"message":"403 Forbidden - <reason>"}` (e.g. a blocked account).
    ForbiddenBecause(String),
    /// `404 {"message": <text>}`: GitLab words these differently per route.
    NotFound(&'static str),
    /// Unknown route: `404 {"error":"404 Not Found"}`.
    RouteNotFound,
    MethodNotAllowed,
    /// A model validation failed: `400 {"message": <text>}`.
    BadRequest(String),
    /// A model validation failed on fields: `400 {"message": {"field": ["message"]}}`.
    FieldInvalid(&'static str, String),
    /// A model validation failed on several fields: `400 {"message": {"a": [..], "b": [..]}}`.
    ModelInvalid(Vec<(&'static str, Vec<String>)>),
    /// Any status with GitLab's `{"message": <text>}` (409 conflicts, 403/409 moderation rules).
    Message(StatusCode, String),
    /// A parameter is missing or malformed: `400 {"error": <text>}`.
    InvalidParameter(String),
    PayloadTooLarge,
    /// An application rate limit (`check_rate_limit!`): `429 {"message":{"error": …}}`,
    /// without the throttles' headers.
    RateLimited,
    /// The request body stopped arriving before its deadline: `408`.
    RequestTimeout,
    /// The database is needed and cannot be reached: `503` with `Retry-After`.
    ServiceUnavailable,
    /// Anything unexpected. The cause is logged here and never shown to the client.
    Internal(String),
}

pub type ApiResult<T> = Result<T, ApiError>;

pub const NOT_FOUND: &str = "404 Not Found";

/// How long a client is told to wait before retrying a 503 (seconds).
pub const RETRY_AFTER_SECONDS: u16 = 5;

/// Why a request failed inside the server, for its one log line (the trace layer in
/// `api::app` writes it): attached to the response, never shown to the client.
#[derive(Debug, Clone)]
pub struct FailureNote(pub String);

impl ApiError {
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self::Internal(cause.to_string())
    }

    pub fn missing(parameter: &str) -> Self {
        Self::InvalidParameter(format!("{parameter} is missing"))
    }

    pub fn invalid(parameter: &str) -> Self {
        Self::InvalidParameter(format!("{parameter} is invalid"))
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        if error.is_unavailable() {
            Self::ServiceUnavailable
        } else {
            Self::internal(error)
        }
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let challenge =
        format!("Bearer realm=\"\", error=\"{error}\", error_description=\"{description}\"");
    let mut response = (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let message = |status: StatusCode, text: &str| {
            (status, axum::Json(json!({ "message": text }))).into_response()
        };
        let error = |status: StatusCode, text: &str| {
            (status, axum::Json(json!({ "error": text }))).into_response()
        };
        match self {
            Self::Unauthorized => message(StatusCode::UNAUTHORIZED, "401 Unauthorized"),
            Self::TokenExpired => oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "Token is expired. You can either do re-authorization or token refresh.",
            ),
            Self::TokenRevoked => oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "Token was revoked. You have to re-authorize from the user.",
            ),
            Self::InsufficientScope(scope) => {
                let description =
                    "The request requires higher privileges than provided by the access token.";
                let mut response =
                    oauth_error(StatusCode::FORBIDDEN, "insufficient_scope", description);
                *response.body_mut() = axum::body::Body::from(
                    json!({"error": "insufficient_scope", "error_description": description, "scope": scope})
                        .to_string(),
                );
                response
            }
            Self::Forbidden => message(StatusCode::FORBIDDEN, "403 Forbidden"),
            Self::ForbiddenBecause(reason) => {
                message(StatusCode::FORBIDDEN, &format!("403 Forbidden - {reason}"))
            }
            Self::NotFound(text) => message(StatusCode::NOT_FOUND, text),
            Self::RouteNotFound => error(StatusCode::NOT_FOUND, NOT_FOUND),
            Self::MethodNotAllowed => error(StatusCode::METHOD_NOT_ALLOWED, "405 Not Allowed"),
            Self::BadRequest(text) => message(StatusCode::BAD_REQUEST, &text),
            Self::FieldInvalid(field, text) => (
                StatusCode::BAD_REQUEST,
                axum::Json(json!({ "message": { field: [text] } })),
            )
                .into_response(),
            Self::ModelInvalid(fields) => {
                let fields: serde_json::Map<String, serde_json::Value> = fields
                    .into_iter()
                    .map(|(field, messages)| (field.to_string(), json!(messages)))
                    .collect();
                (
                    StatusCode::BAD_REQUEST,
                    axum::Json(json!({ "message": fields })),
                )
                    .into_response()
            }
            Self::Message(status, text) => message(status, &text),
            Self::InvalidParameter(text) => error(StatusCode::BAD_REQUEST, &text),
            Self::RateLimited => (
                StatusCode::TOO_MANY_REQUESTS,
                axum::Json(json!({
                    "message": { "error": crate::domain::throttle::APPLICATION_LIMIT_MESSAGE }
                })),
            )
                .into_response(),
            Self::PayloadTooLarge => message(
                StatusCode::PAYLOAD_TOO_LARGE,
                "413 Request Entity Too Large",
            ),
            Self::RequestTimeout => message(StatusCode::REQUEST_TIMEOUT, "408 Request Timeout"),
            Self::ServiceUnavailable => {
                let mut response =
                    message(StatusCode::SERVICE_UNAVAILABLE, "503 Service Unavailable");
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
                response
            }
            Self::Internal(cause) => {
                let mut response = message(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "500 Internal Server Error",
                );
                response.extensions_mut().insert(FailureNote(cause));
                response
            }
        }
    }
}
