//! GitLab's user and IP rate limits (Rack::Attack's `throttle_authenticated_api`, per user,
//! and `throttle_unauthenticated_api`, per address), in front of every `/api/` route. Both are
//! off by default, as on GitLab Self-Managed; while they are, a request costs one look at the
//! cached settings and nothing else. Over a limit: `429`, `text/plain` `Retry later\n`, with
//! GitLab's `RateLimit-*` and `Retry-After` headers.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::future::Either;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{header, HeaderName, HeaderValue, Response, StatusCode};
use tower::Service;

use crate::domain::throttle::{self, Limit, THROTTLED_BODY};
use crate::state::AppState;

#[derive(Clone)]
pub struct ThrottleLayer {
    pub state: AppState,
}

impl<S> tower::Layer<S> for ThrottleLayer {
    type Service = Throttle<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Throttle {
            inner,
            state: self.state.clone(),
        }
    }
}

#[derive(Clone)]
pub struct Throttle<S> {
    inner: S,
    state: AppState,
}

type Boxed = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// The inner service's own future while the throttles are off (no box, no await of ours);
/// a boxed one while they are on.
pub type ThrottleFuture<F> = Either<F, Boxed>;

impl<S, B> Service<Request<B>> for Throttle<S>
where
    B: Send + 'static,
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = ThrottleFuture<S::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let api = request.uri().path().starts_with("/api/");
        let off = !api
            || self
                .state
                .cache
                .settings_view(&self.state.store, |settings| {
                    !throttle::api_throttles_on(settings)
                })
                .unwrap_or(false);
        if off {
            return Either::Left(self.inner.call(request));
        }
        // The service that was made ready goes with the request; a clone stays for the next.
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        Either::Right(Box::pin(checked(state, inner, request)))
    }
}

async fn checked<S, B>(
    state: AppState,
    mut inner: S,
    request: Request<B>,
) -> Result<Response<Body>, Infallible>
where
    S: Service<Request<B>, Response = Response<Body>, Error = Infallible>,
{
    let settings = match crate::services::settings::current(&state).await {
        Ok(settings) => settings,
        // Settings that cannot be read limit nothing; the handler reports the outage.
        Err(_) => return inner.call(request).await,
    };
    if !throttle::api_throttles_on(&settings) {
        return inner.call(request).await;
    }
    let address = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |ConnectInfo(peer)| {
            peer.ip()
        });
    let (mut parts, body) = request.into_parts();
    let requester = crate::auth::rate_limit_requester(&mut parts, &state, address).await;
    let request = Request::from_parts(parts, body);
    if let Some((limit, key)) = throttle::api_throttle(&settings, &requester) {
        let now = state.clock.now();
        if let Some(observed) = state.rate_limiter.hit(key, &limit, now) {
            if observed > limit.limit {
                state.rate_limiter.note_refusal();
                tracing::warn!(
                    throttle = limit.name,
                    observed,
                    limit = limit.limit,
                    "request throttled"
                );
                return Ok(throttled(&limit, observed, now));
            }
        }
    }
    inner.call(request).await
}

/// GitLab's throttled answer.
fn throttled(limit: &Limit, observed: i64, now: chrono::DateTime<chrono::Utc>) -> Response<Body> {
    let mut response = Response::new(Body::from(THROTTLED_BODY));
    *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    for (name, value) in throttle::throttled_headers(limit, observed, now) {
        if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            headers.insert(name, value);
        }
    }
    response
}
