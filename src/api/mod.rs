//! The HTTP surface: one router per resource, and the middleware every request passes.

pub mod add_on_purchases;
pub mod audit;
pub mod groups;
pub mod health;
pub mod hooks;
pub mod instance;
pub mod license;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod params;
pub mod tokens;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{header, HeaderName, Response, StatusCode};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;

use crate::error::ApiError;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application, ready to serve (tests drive it on a real socket too).
pub fn app(state: AppState) -> Router {
    Router::new()
        .merge(license::router())
        .merge(instance::router())
        .merge(users::router())
        .merge(audit::router())
        .merge(groups::router())
        .merge(tokens::router())
        .merge(health::router())
        .merge(metrics::router())
        .merge(hooks::router())
        .merge(openapi::router())
        .merge(add_on_purchases::router())
        .merge(crate::graphql::router())
        .merge(crate::web::router())
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state.metrics),
            metrics::observe,
        ))
        .with_state(state)
        .layer(RequestBodyLimitLayer::new(params::MAX_BODY_BYTES))
        // Outside the limit layer, so that its 413 is reshaped too.
        .layer(middleware::from_fn(gitlab_shaped_errors))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("a handler panicked".into()).into_response()
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|request: &Request| {
                    // The path only: query strings may carry `private_token`.
                    let route = request
                        .extensions()
                        .get::<MatchedPath>()
                        .map_or("unmatched", MatchedPath::as_str);
                    let request_id = request
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|value| value.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!("request", method = %request.method(), route, request_id)
                })
                .on_request(())
                .on_response(|response: &Response<Body>, latency: Duration, _: &Span| {
                    tracing::info!(
                        status = response.status().as_u16(),
                        latency_ms = latency.as_secs_f64() * 1000.0,
                        "response"
                    );
                })
                .on_failure(()),
        )
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

/// What `METRICS_ADDR` serves: the scrape endpoint alone.
pub fn metrics_app(state: AppState) -> Router {
    metrics::router()
        .fallback(|| async { ApiError::RouteNotFound })
        .with_state(state)
}

/// Responses made by layers rather than handlers (the body limit's 413) come out in GitLab's
/// JSON shape too.
///
/// It also refuses a NUL character (`%00`) in the path or query string: nothing stored can
/// match one (PostgreSQL refuses it in any text), so such a request is a 400 before any handler
/// or query sees it. (Here rather than in a layer of its own: every layer costs each request.)
async fn gitlab_shaped_errors(request: Request, next: Next) -> Response<Body> {
    let has_nul = |text: &str| {
        text.as_bytes()
            .windows(3)
            .any(|window| window.eq_ignore_ascii_case(b"%00"))
    };
    let uri = request.uri();
    if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
        return ApiError::InvalidParameter("a parameter contains a null byte".into())
            .into_response();
    }
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_json {
        return ApiError::PayloadTooLarge.into_response();
    }
    response
}
