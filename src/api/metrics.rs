//! `GET /-/metrics`: Prometheus scrapes from allow-listed addresses (`METRICS_ALLOWED_CIDRS`,
//! loopback by default) need no token; anyone else needs an administrator's.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{header, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::auth::Admin;
use crate::error::ApiError;
use crate::metrics::{self, HttpLabels, Metrics};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/-/metrics", get(scrape))
}

#[utoipa::path(get, operation_id = "metrics_scrape", path = "/-/metrics", tag = "operations", summary = "Prometheus metrics (OpenMetrics text)", responses((status = 200, description = "OK", body = String, content_type = "application/openmetrics-text"), (status = 400, description = "Bad request", body = Object), (status = 401, description = "Unauthorized", body = Object), (status = 403, description = "Forbidden", body = Object), (status = 404, description = "Not found", body = Object), (status = 409, description = "Conflict", body = Object), (status = 422, description = "Unprocessable", body = Object)))]
async fn scrape(State(state): State<AppState>, mut parts: Parts) -> Response {
    let peer_allowed = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ConnectInfo(peer)| metrics::allowed_peer(&state, peer.ip()));
    if !peer_allowed {
        if let Err(refusal) = Admin::from_request_parts(&mut parts, &state).await {
            return refusal.into_response();
        }
    }
    match metrics::render(&state).await {
        Ok(text) => ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response(),
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// Counts and times every answered request by its matched route (never the raw path, which
/// would make one series per id).
pub async fn observe(
    State(metrics): State<Arc<Metrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let method = match *request.method() {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str)
        .to_string();
    let response = next.run(request).await;
    metrics.observe_request(
        &HttpLabels {
            method,
            route,
            status: response.status().as_u16(),
        },
        started.elapsed(),
    );
    response
}
