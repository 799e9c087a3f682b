//! Request bodies, bounded: at most [`MAX_BODY_BYTES`] and a deadline to arrive by, each
//! failure a GitLab-shaped error (413, 408, 400). Shared by the REST API and GraphQL. And the
//! one response body written as it is read: a CSV download.

use axum::extract::Request;

use crate::error::ApiError;

/// Bodies are read up to this size (the limit layer refuses larger ones first).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

fn body_too_large_or_unreadable(error: axum::Error) -> ApiError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(current) = source {
        if current.is::<http_body_util::LengthLimitError>() {
            return ApiError::PayloadTooLarge;
        }
        if current.is::<BodyTimedOut>() {
            return ApiError::RequestTimeout;
        }
        source = current.source();
    }
    ApiError::InvalidParameter("the request body could not be read".into())
}

/// Reads a whole request body of at most [`MAX_BODY_BYTES`]: 413 beyond, 408 when it stops
/// arriving before its deadline, 400 when it cannot be read.
pub async fn read_body(body: axum::body::Body) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(body_too_large_or_unreadable)
}

/// A request body that did not arrive in full before its deadline.
#[derive(Debug)]
pub struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

/// A body that fails with [`BodyTimedOut`] once its deadline passes: a client trickling a
/// body a byte at a time holds its request for that long at most.
struct DeadlineBody {
    inner: axum::body::Body,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for DeadlineBody {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        use std::future::Future as _;
        if let std::task::Poll::Ready(frame) = std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
            return std::task::Poll::Ready(frame);
        }
        match self.deadline.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => {
                std::task::Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))))
            }
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Gives a request's body a deadline `timeout` from now (requests without a body, most of
/// them, are left as they are: no timer for them).
pub fn with_body_deadline(request: Request, timeout: std::time::Duration) -> Request {
    use http_body::Body as _;
    if request.body().is_end_stream() {
        return request;
    }
    request.map(|inner| {
        axum::body::Body::new(DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(timeout)),
        })
    })
}

/// A CSV download named `filename`, its body written as the client reads it.
pub fn csv_download(filename: &str, body: axum::body::Body) -> axum::response::Response {
    use axum::http::{header, HeaderValue, StatusCode};
    use axum::response::IntoResponse;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .unwrap_or(HeaderValue::from_static("attachment"));
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            ),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}
