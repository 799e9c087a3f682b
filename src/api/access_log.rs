//! The access log and the request metrics: one line per request (method, route, request id,
//! status, latency, and the cause of a failure), and the request counted and timed by method,
//! route and status — both from one measurement. The request only collects the values;
//! [`crate::logging`] formats and writes the line on its own thread. On request, a `request`
//! span with the request id around every other line logged while serving it.
//!
//! The route is known only inside the router: [`RouteTagLayer`] wraps the routes and leaves
//! the matched one on the response.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::MatchedPath;
use axum::http::{HeaderName, Method, Request, Response};
use tracing::instrument::Instrumented;
use tracing::Instrument as _;

use crate::error::FailureNote;
use crate::logging::{AccessRecord, RequestIdText, Route};
use crate::metrics::{HttpLabels, Metrics};

/// The target of the per-request span (see [`AccessLog`]).
pub const REQUEST_SPAN_TARGET: &str = "gitlab_license_server::request";

#[derive(Clone)]
pub struct AccessLogLayer {
    /// The header that carries the request id (set by an outer layer).
    pub request_id: HeaderName,
    pub metrics: Arc<Metrics>,
}

impl<S> tower::Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog {
            inner,
            request_id: self.request_id.clone(),
            metrics: Arc::clone(&self.metrics),
        }
    }
}

#[derive(Clone)]
pub struct AccessLog<S> {
    inner: S,
    request_id: HeaderName,
    metrics: Arc<Metrics>,
}

impl<S, B, R> tower::Service<Request<B>> for AccessLog<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = AccessFuture<S::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        crate::memory::note_request();
        let method = request.method().clone();
        let request_id = RequestIdText::new(request.headers().get(&self.request_id));
        // The span that ties the other lines logged while serving the request to its access
        // line. Off by default (`debug`): even a one-field span costs every request more than
        // formatting and writing its access line does. `RUST_LOG=info,gitlab_license_server::request=debug`
        // turns it on.
        let span = tracing::debug_span!(target: REQUEST_SPAN_TARGET, "request", request_id = request_id.as_str());
        AccessFuture {
            inner: self.inner.call(request).instrument(span),
            started: Instant::now(),
            method: Some(method),
            request_id: Some(request_id),
            metrics: Arc::clone(&self.metrics),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct AccessFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        started: Instant,
        method: Option<Method>,
        request_id: Option<RequestIdText>,
        metrics: Arc<Metrics>,
    }
}

impl<F, R, E> Future for AccessFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let outcome = std::task::ready!(this.inner.poll(context));
        if let Ok(response) = &outcome {
            let ended = Instant::now();
            let latency = ended.saturating_duration_since(*this.started);
            let method = this.method.take().unwrap_or_default();
            let route = response.extensions().get::<Route>().cloned();
            let status = response.status().as_u16();
            this.metrics.observe_request(
                &HttpLabels {
                    method: method_label(&method),
                    // Refused before the router (a rate limit, a too-large body): no route.
                    route: route.clone().unwrap_or(Route::Unmatched),
                    status,
                },
                latency,
            );
            crate::logging::access(AccessRecord {
                ended,
                method,
                route,
                request_id: this
                    .request_id
                    .take()
                    .unwrap_or_else(|| RequestIdText::new(None)),
                status,
                latency,
                cause: response
                    .extensions()
                    .get::<FailureNote>()
                    .map(|FailureNote(cause)| cause.clone()),
            });
        }
        Poll::Ready(outcome)
    }
}

/// The method as a metric label: the standard ones by name, any other as `other` (a label
/// per invented method would be a series per request).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Wraps the router's routes: leaves the route a request matched on its response (or
/// [`Route::Unmatched`] from the fallbacks), for [`AccessLog`] outside the router.
#[derive(Clone, Copy)]
pub struct RouteTagLayer;

impl<S> tower::Layer<S> for RouteTagLayer {
    type Service = RouteTag<S>;

    fn layer(&self, inner: S) -> RouteTag<S> {
        RouteTag { inner }
    }
}

#[derive(Clone)]
pub struct RouteTag<S> {
    inner: S,
}

impl<S, B, R> tower::Service<Request<B>> for RouteTag<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = RouteTagFuture<S::Future>;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let route = request
            .extensions()
            .get::<MatchedPath>()
            .map_or(Route::Unmatched, |path| Route::Matched(path.clone()));
        RouteTagFuture {
            inner: self.inner.call(request),
            route: Some(route),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct RouteTagFuture<F> {
        #[pin]
        inner: F,
        route: Option<Route>,
    }
}

impl<F, R, E> Future for RouteTagFuture<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut outcome = std::task::ready!(this.inner.poll(context));
        if let (Ok(response), Some(route)) = (&mut outcome, this.route.take()) {
            response.extensions_mut().insert(route);
        }
        Poll::Ready(outcome)
    }
}
