//! The access log: one line per request (method, route, request id, status, latency, and the
//! cause of a failure). The request only collects the values; [`crate::logging`] formats and
//! writes the line on its own thread. On request, a `request` span with the request id around
//! every other line logged while serving it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime};

use axum::http::{HeaderName, HeaderValue, Method, Request, Response};
use tracing::instrument::Instrumented;
use tracing::Instrument as _;

use crate::error::FailureNote;
use crate::logging::{AccessRecord, Route};

/// The target of the per-request span (see [`AccessLog`]).
pub const REQUEST_SPAN_TARGET: &str = "gitlab_license_server::request";

#[derive(Clone)]
pub struct AccessLogLayer {
    /// The header that carries the request id (set by an outer layer).
    pub request_id: HeaderName,
}

impl<S> tower::Layer<S> for AccessLogLayer {
    type Service = AccessLog<S>;

    fn layer(&self, inner: S) -> AccessLog<S> {
        AccessLog {
            inner,
            request_id: self.request_id.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AccessLog<S> {
    inner: S,
    request_id: HeaderName,
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
        let request_id = request.headers().get(&self.request_id).cloned();
        let id_text = request_id
            .as_ref()
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        // The span that ties the other lines logged while serving the request to its access
        // line. Off by default (`debug`): even a one-field span costs every request more than
        // formatting and writing its access line does. `RUST_LOG=info,gitlab_license_server::request=debug`
        // turns it on.
        let span =
            tracing::debug_span!(target: REQUEST_SPAN_TARGET, "request", request_id = id_text);
        AccessFuture {
            inner: self.inner.call(request).instrument(span),
            started: Instant::now(),
            method: Some(method),
            request_id,
        }
    }
}

pin_project_lite::pin_project! {
    pub struct AccessFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        started: Instant,
        method: Option<Method>,
        request_id: Option<HeaderValue>,
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
            crate::logging::access(AccessRecord {
                at: SystemTime::now(),
                method: this.method.take().unwrap_or_default(),
                route: response.extensions().get::<Route>().cloned(),
                request_id: this.request_id.take(),
                status: response.status().as_u16(),
                latency: this.started.elapsed(),
                cause: response
                    .extensions()
                    .get::<FailureNote>()
                    .map(|FailureNote(cause)| cause.clone()),
            });
        }
        Poll::Ready(outcome)
    }
}
