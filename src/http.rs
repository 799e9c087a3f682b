//! Accepting connections, with the time limits no peer may exceed: a request head must
//! arrive within the header-read timeout, a kept-alive connection may idle for the keep-alive
//! timeout, and after SIGTERM the requests in flight get the shutdown deadline, then the
//! remaining connections are dropped. (The request-body deadline is applied per request, in
//! `api::app`'s middleware.)
//!
//! hyper's own header timer starts when it begins waiting for a request, so it cannot tell a
//! slow head from an idle keep-alive connection; here the socket's reads are watched instead:
//! waiting for the first byte of a request is idling, waiting for the rest of its head is
//! reading headers, and while a request is being served nothing is timed at this level.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tower::{Service, ServiceExt as _};

use crate::config::Limits;

/// What [`serve`] serves: a cloneable service that answers every request (an axum `Router`,
/// or `api::app`'s stack around one).
pub trait Application:
    Service<Request<Body>, Response = Response<Body>, Error = Infallible, Future: Send + 'static>
    + Clone
    + Send
    + 'static
{
}

impl<T> Application for T where
    T: Service<
            Request<Body>,
            Response = Response<Body>,
            Error = Infallible,
            Future: Send + 'static,
        > + Clone
        + Send
        + 'static
{
}

/// Serves `app` on `listener` until `shutdown` completes, then gives the connections
/// `limits.shutdown_timeout` to finish their requests.
pub async fn serve(
    listener: TcpListener,
    app: impl Application,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) {
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(
                        stream,
                        peer,
                        app.clone(),
                        limits,
                        stopping.clone(),
                    ));
                }
                Err(error) => {
                    // Out of file descriptors, most likely: wait rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            // Reap finished connections as they end.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let _ = stop.send(true);
    let drained = tokio::time::timeout(limits.shutdown_timeout, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            connections = connections.len(),
            "the shutdown deadline passed; dropping the remaining connections"
        );
        connections.abort_all();
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: impl Application,
    limits: Limits,
    mut stopping: tokio::sync::watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::new(limits, Instant::now()));
    let io = TokioIo::new(WatchedIo::new(stream, Arc::clone(&activity)));
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        let app = app.clone();
        let activity = Arc::clone(&activity);
        activity.request_started();
        async move {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(peer));
            let response = app.oneshot(request).await;
            activity.request_finished(Instant::now());
            response
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(connection);
    let stop_requested = async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    tokio::select! {
        _ = connection.as_mut() => return,
        () = stop_requested => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// Waiting for a request's first byte (since then).
    Idle(Instant),
    /// A request head has started arriving (since then).
    Head(Instant),
    /// Requests are being served.
    Busy(usize),
}

/// What a connection is doing, as its reads and its service see it.
struct Activity {
    limits: Limits,
    phase: Mutex<Phase>,
}

impl Activity {
    fn new(limits: Limits, now: Instant) -> Self {
        // A new connection owes its first request head at once.
        Self {
            limits,
            phase: Mutex::new(Phase::Head(now)),
        }
    }

    fn update(&self, change: impl FnOnce(Phase) -> Phase) {
        let mut phase = self
            .phase
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *phase = change(*phase);
    }

    fn bytes_received(&self, now: Instant) {
        self.update(|phase| match phase {
            Phase::Idle(_) => Phase::Head(now),
            other => other,
        });
    }

    fn request_started(&self) {
        self.update(|phase| match phase {
            Phase::Busy(requests) => Phase::Busy(requests + 1),
            _ => Phase::Busy(1),
        });
    }

    fn request_finished(&self, now: Instant) {
        self.update(|phase| match phase {
            Phase::Busy(requests) if requests > 1 => Phase::Busy(requests - 1),
            _ => Phase::Idle(now),
        });
    }

    /// When a read that is still waiting must give up.
    fn read_deadline(&self) -> Option<Instant> {
        let phase = *self
            .phase
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match phase {
            Phase::Idle(since) => Some(since + self.limits.keep_alive_timeout),
            Phase::Head(since) => Some(since + self.limits.header_read_timeout),
            Phase::Busy(_) => None,
        }
    }
}

/// A socket whose waiting reads end with `TimedOut` at the connection's deadline (hyper then
/// closes the connection).
struct WatchedIo {
    stream: TcpStream,
    activity: Arc<Activity>,
    timer: Pin<Box<Sleep>>,
    timer_at: Option<Instant>,
}

impl WatchedIo {
    fn new(stream: TcpStream, activity: Arc<Activity>) -> Self {
        Self {
            stream,
            activity,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            timer_at: None,
        }
    }
}

impl WatchedIo {
    fn arm(&mut self, deadline: Instant) {
        self.timer.as_mut().reset(deadline);
        self.timer_at = Some(deadline);
    }

    /// While requests are served nothing is timed here; look again a keep-alive period on.
    fn arm_recheck(&mut self) {
        self.arm(Instant::now() + self.activity.limits.keep_alive_timeout);
    }
}

impl AsyncRead for WatchedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.stream).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    self.activity.bytes_received(Instant::now());
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(error)) => Poll::Ready(Err(error)),
            Poll::Pending => {
                // The timer is always set while a read waits, and moved only when a deadline
                // comes earlier than it is set for: a keep-alive connection pushes its
                // deadline later with every request, and moving the timer (or waking the
                // task) each time would cost every request. A timer that fires before the
                // deadline — or while a request is being served, when there is none — is
                // simply set again.
                match self.activity.read_deadline() {
                    Some(deadline) if self.timer_at.is_none_or(|at| at > deadline) => {
                        self.arm(deadline)
                    }
                    None if self.timer_at.is_none() => self.arm_recheck(),
                    _ => {}
                }
                loop {
                    if self.timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    match self.activity.read_deadline() {
                        Some(deadline) if Instant::now() >= deadline => {
                            return Poll::Ready(Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "the peer sent no request in time",
                            )))
                        }
                        Some(deadline) => self.arm(deadline),
                        None => self.arm_recheck(),
                    }
                }
            }
        }
    }
}

impl AsyncWrite for WatchedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(2),
            keep_alive_timeout: Duration::from_secs(5),
            ..Limits::default()
        }
    }

    #[test]
    fn phases_give_each_wait_its_own_deadline() {
        let start = Instant::now();
        let at = |seconds: u64| start + Duration::from_secs(seconds);
        let activity = Activity::new(limits(), start);
        assert_eq!(activity.read_deadline(), Some(at(2)));
        activity.request_started();
        assert_eq!(activity.read_deadline(), None);
        activity.request_finished(at(1));
        assert_eq!(activity.read_deadline(), Some(at(6)));
        activity.bytes_received(at(4));
        assert_eq!(activity.read_deadline(), Some(at(6)));
        // More bytes of the same head do not move the deadline.
        activity.bytes_received(at(5));
        assert_eq!(activity.read_deadline(), Some(at(6)));
        // Two pipelined requests: idle only when both are done.
        activity.request_started();
        activity.request_started();
        activity.request_finished(at(7));
        assert_eq!(activity.read_deadline(), None);
        activity.request_finished(at(8));
        assert_eq!(activity.read_deadline(), Some(at(13)));
    }
}
