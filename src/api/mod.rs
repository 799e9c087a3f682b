//! The HTTP surface: one router per resource, and the middleware every request passes.

pub mod access_log;
pub mod add_on_purchases;
pub mod audit;
pub mod bodies;
pub mod fleet;
pub mod groups;
pub mod health;
pub mod hooks;
pub mod instance;
pub mod license;
pub mod metrics;
pub mod openapi;
pub mod pagination;
pub mod params;
pub mod responses;
pub mod scim;
pub mod scim_admin;
pub mod seats;
pub mod settings;
pub mod throttle;
pub mod tokens;
pub mod users;

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderName, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use tower::{Service, ServiceBuilder};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};

use crate::error::ApiError;
use crate::state::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application, ready to serve (tests drive it on a real socket too).
///
/// The middleware every request passes wraps the router once, as one service. Added with
/// `Router::layer` instead, each layer would wrap every route separately, and axum clones a
/// route's whole stack, box inside box, for every request it serves. Only the route tag sits
/// inside the router, where the matched route is known.
pub fn app(state: AppState) -> impl crate::http::Application + Sync {
    let (rest, _) = openapi::rest_routes().split_for_parts();
    let router = rest
        .merge(openapi::router())
        .merge(crate::graphql::router())
        .merge(crate::web::router())
        .merge(scim::router())
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(access_log::RouteTagLayer)
        .with_state(state.clone());
    ServiceBuilder::new()
        .map_response(|response: Response<_>| response.map(Body::new))
        .layer(SetRequestIdLayer::new(
            REQUEST_ID,
            SequentialRequestId::new(),
        ))
        // One line and one metric observation per request; a failure inside the server rides
        // on the line.
        .layer(access_log::AccessLogLayer {
            request_id: REQUEST_ID,
            metrics: Arc::clone(&state.metrics),
        })
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("a handler panicked".into()).into_response()
        }))
        // Before anything else reads the request, as GitLab's Rack::Attack; outside the
        // reshaping of plain-text refusals, since its `Retry later` is GitLab's plain text.
        .layer(throttle::ThrottleLayer {
            state: state.clone(),
        })
        // Outside the limit layer, so that its 413 is reshaped too.
        .layer(GitlabShapedErrorsLayer {
            body_timeout: state.config.limits.request_body_timeout,
        })
        .layer(RequestBodyLimitLayer::new(crate::body::MAX_BODY_BYTES))
        .service(router)
}

/// Request ids: a random prefix drawn once per process, then a counter, as 32 hex digits (a
/// UUID's length). Unique across requests and replicas without drawing from the kernel's
/// random source for every request, as a random UUID does.
#[derive(Clone)]
struct SequentialRequestId {
    prefix: u64,
    counter: Arc<AtomicU64>,
}

impl SequentialRequestId {
    fn new() -> Self {
        use rand_core::RngCore as _;
        Self {
            prefix: rand_core::OsRng.next_u64(),
            counter: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl MakeRequestId for SequentialRequestId {
    fn make_request_id<B>(&mut self, _: &Request<B>) -> Option<RequestId> {
        let sequence = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut id = [0u8; 32];
        let (prefix, counter) = id.split_at_mut(16);
        hex::encode_to_slice(self.prefix.to_be_bytes(), prefix).ok()?;
        hex::encode_to_slice(sequence.to_be_bytes(), counter).ok()?;
        axum::http::HeaderValue::from_bytes(&id)
            .ok()
            .map(RequestId::new)
    }
}

/// What `METRICS_ADDR` serves: the scrape endpoint alone.
pub fn metrics_app(state: AppState) -> Router {
    Router::from(metrics::router())
        .fallback(|| async { ApiError::RouteNotFound })
        .with_state(state)
}

/// The longest request target (path and query) accepted. GitLab's NGINX refuses 8 KiB;
/// this leaves room for a GraphQL query of GitLab's 10,000-character limit sent by GET.
pub const MAX_URI_BYTES: usize = 32 * 1024;
/// The most header bytes (names and values) a request may carry.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// What every request passes first and every response last, so that refusals made below the
/// handlers come out in GitLab's JSON shape too:
///
/// - a request target over [`MAX_URI_BYTES`] is a 414, headers over [`MAX_HEADER_BYTES`] a
///   431 (hyper's own, larger limits answer with an empty body);
/// - a NUL character (`%00`) in the path or query string, or a path that does not decode to
///   UTF-8, is a 400 before any handler or query sees it (PostgreSQL refuses NUL in any text);
/// - the request body must arrive within `body_timeout` (408 after);
/// - the body limit's 413 and axum's plain-text rejections are reshaped into JSON.
///
/// (One layer rather than several, and a plain service rather than `middleware::from_fn`,
/// which boxes the inner service and its future again for every request.)
#[derive(Clone, Copy)]
struct GitlabShapedErrorsLayer {
    body_timeout: Duration,
}

impl<S> tower::Layer<S> for GitlabShapedErrorsLayer {
    type Service = GitlabShapedErrors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        GitlabShapedErrors {
            inner,
            body_timeout: self.body_timeout,
        }
    }
}

#[derive(Clone)]
struct GitlabShapedErrors<S> {
    inner: S,
    body_timeout: Duration,
}

type BoxedResponseFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response<Body>, Infallible>> + Send>>;

impl<S, B> Service<Request> for GitlabShapedErrors<S>
where
    S: Service<Request, Response = Response<B>, Error = Infallible>,
    S::Future: Send + 'static,
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxedResponseFuture;

    fn poll_ready(
        &mut self,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if let Some(refusal) = refusal_before_reading(&request) {
            return Box::pin(std::future::ready(Ok(refusal)));
        }
        let body_timeout = self.body_timeout;
        if let Some(length) = declared_length(&request) {
            if length > crate::body::MAX_BODY_BYTES as u64 {
                return Box::pin(async move {
                    Ok(refuse_too_large(request, length, body_timeout).await)
                });
            }
        }
        let response = self
            .inner
            .call(crate::body::with_body_deadline(request, body_timeout));
        Box::pin(async move {
            match response.await {
                Ok(response) => Ok(reshape_refusal(response.map(Body::new))),
                Err(never) => match never {},
            }
        })
    }
}

/// The refusals made from the request head alone (see [`GitlabShapedErrors`]).
fn refusal_before_reading(request: &Request) -> Option<Response<Body>> {
    let has_nul = |text: &str| {
        text.as_bytes()
            .windows(3)
            .any(|window| window.eq_ignore_ascii_case(b"%00"))
    };
    let uri = request.uri();
    let target_bytes = uri.path().len() + uri.query().map_or(0, |query| query.len() + 1);
    if target_bytes > MAX_URI_BYTES {
        return Some(
            ApiError::Message(StatusCode::URI_TOO_LONG, "414 URI Too Long".into()).into_response(),
        );
    }
    let header_bytes: usize = request
        .headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Some(
            ApiError::Message(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "431 Request Header Fields Too Large".into(),
            )
            .into_response(),
        );
    }
    if has_nul(uri.path()) || uri.query().is_some_and(has_nul) {
        return Some(
            ApiError::InvalidParameter("a parameter contains a null byte".into()).into_response(),
        );
    }
    if percent_decoded_is_not_utf8(uri.path()) {
        return Some(
            ApiError::InvalidParameter("400 Bad request - the path is not valid UTF-8".into())
                .into_response(),
        );
    }
    None
}

/// The refusals made below the handlers — the body limit's 413 and axum's plain-text
/// rejections — in GitLab's JSON shape.
fn reshape_refusal(response: Response<Body>) -> Response<Body> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|value| value.as_bytes().to_vec())
        .unwrap_or_default();
    if status == StatusCode::PAYLOAD_TOO_LARGE && !content_type.starts_with(b"application/json") {
        return ApiError::PayloadTooLarge.into_response();
    }
    // axum's own rejections (a path segment it cannot decode, a body it cannot read) are
    // plain text; ours are JSON, and the page's are HTML.
    if content_type.starts_with(b"text/plain") {
        let line = format!(
            "{} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or_default()
        );
        return ApiError::Message(status, line).into_response();
    }
    response
}

/// The most of a too-large body that is read (and thrown away) before the 413 is sent.
const DRAINED_BYTES: u64 = 16 * 1024 * 1024;

fn declared_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// 413 for a body declared larger than the limit. Clients such as Python's `requests` send the
/// whole body before they read an answer, and a server that answers and closes while they
/// are still sending makes them report a broken pipe instead of the 413; so a body of up to
/// [`DRAINED_BYTES`] is read and discarded first, within the body timeout (beyond either bound
/// the connection is closed after the answer, as before).
async fn refuse_too_large(request: Request, length: u64, timeout: Duration) -> Response<Body> {
    use http_body_util::BodyExt as _;
    if length <= DRAINED_BYTES {
        let mut body = request.into_body();
        let drained = tokio::time::timeout(timeout, async {
            while let Some(Ok(_)) = body.frame().await {}
        })
        .await;
        if drained.is_err() {
            tracing::debug!("a too-large body was not sent in time; closing");
        }
    }
    let mut response = ApiError::PayloadTooLarge.into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        axum::http::HeaderValue::from_static("close"),
    );
    response
}

/// Whether a path's percent-escapes decode to something that is not UTF-8.
fn percent_decoded_is_not_utf8(path: &str) -> bool {
    path.contains('%')
        && percent_encoding::percent_decode_str(path)
            .decode_utf8()
            .is_err()
}

#[cfg(test)]
mod tests {
    use super::percent_decoded_is_not_utf8;

    #[test]
    fn paths_that_do_not_decode_to_utf8() {
        assert!(percent_decoded_is_not_utf8("/api/v4/users/%FF"));
        assert!(percent_decoded_is_not_utf8("/api/v4/groups/%C3%28"));
        assert!(!percent_decoded_is_not_utf8("/api/v4/groups/caf%C3%A9"));
        assert!(!percent_decoded_is_not_utf8("/api/v4/users/1"));
        assert!(!percent_decoded_is_not_utf8("/a/%zz/%4"));
    }
}
