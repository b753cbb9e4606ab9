//! The connection layer: every accepted socket is timed, counted and capped.
//!
//! A peer gets a bounded share of the server whatever it does with its socket:
//!
//! - **headers**: an HTTP/1.1 request whose header has not arrived whole within
//!   [`ConnectionLimits::header_read_timeout`] ends its connection (hyper's own timer).
//!   Waiting for the next request on a kept-alive HTTP/1.1 connection is reading its
//!   header, so that timeout also bounds how long such a connection idles;
//! - **idle**: a connection with no request in progress for
//!   [`ConnectionLimits::idle_timeout`] is closed (HTTP/2 gets a `GOAWAY`), whatever the
//!   protocol. A request is in progress from its first header byte until its answer's
//!   last byte left, so long-polls and event streams are never idle;
//! - **writes**: a write that cannot make progress for
//!   [`ConnectionLimits::write_timeout`] (the peer stopped reading: an event stream
//!   nobody consumes, a full TCP window) ends the connection, and with it what the
//!   server was holding for that peer;
//! - **HTTP/2 liveness**: keep-alive pings every
//!   [`ConnectionLimits::h2_keep_alive_interval`]; a peer that does not answer one within
//!   the same time is gone;
//! - **count**: at most [`ConnectionLimits::max_connections`] are open. A connection
//!   beyond it closes the longest-idle open connection to make room; when none is idle,
//!   the newcomer gets a `503` problem and is closed.
//!
//! Each connection task owns its connection and watches three things besides it: the
//! server stopping, a request from the accept loop to make room, and its own idle
//! deadline. Whichever comes first asks hyper for a graceful shutdown (an idle HTTP/1.1
//! connection closes at once; a busy one after its answer).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{watch, Notify};
use tokio::time::{Instant, Sleep};

use crate::locking::lock;

/// What the connection layer enforces; see the module docs. Set through
/// [`ServerConfig`](crate::ServerConfig).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionLimits {
    /// Longest time an HTTP/1.1 request header may take to arrive whole (and an idle
    /// HTTP/1.1 connection may wait for the next one).
    pub header_read_timeout: Duration,
    /// Longest time a connection may stay open with no request in progress.
    pub idle_timeout: Duration,
    /// Longest time a write may wait for the peer to take bytes.
    pub write_timeout: Duration,
    /// How often an HTTP/2 connection is pinged, and how long an answer may take.
    pub h2_keep_alive_interval: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            h2_keep_alive_interval: Duration::from_secs(20),
            max_connections: 10_000,
        }
    }
}

/// The open connections: how many, which are idle since when, and a way to ask one to
/// close.
pub(crate) struct Connections {
    open: Mutex<HashMap<u64, Arc<Tracked>>>,
    next_id: AtomicU64,
    /// Wakes [`Connections::all_closed`] when the last connection ends.
    emptied: Notify,
    epoch: Instant,
}

/// One open connection's state, shared by its task, its requests and the registry.
pub(crate) struct Tracked {
    id: u64,
    /// Requests in progress (from header to the answer's last byte).
    in_flight: AtomicUsize,
    /// Milliseconds since the registry's epoch when the connection last became idle.
    idle_since: AtomicU64,
    /// Asks the connection's task to close it (to make room for a newcomer).
    close: Notify,
    /// Tells the connection's task it became idle, so its idle deadline starts now.
    idled: Notify,
}

/// What [`Connections::admit`] decided for a newly accepted socket.
#[derive(Debug)]
pub(crate) enum Admission {
    /// Serve it.
    Admitted(Arc<Tracked>),
    /// The server is full of busy connections: answer 503 and close it.
    Full,
}

impl Connections {
    pub(crate) fn new() -> Self {
        Connections {
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            emptied: Notify::new(),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// How many connections are open.
    pub(crate) fn count(&self) -> usize {
        lock(&self.open).len()
    }

    /// Registers a newly accepted connection, making room under `max` by asking the
    /// longest-idle connection to close, or refusing it when every open one is busy.
    pub(crate) fn admit(&self, max: usize) -> Admission {
        let mut open = lock(&self.open);
        if open.len() >= max {
            let oldest_idle = open
                .values()
                .filter(|c| c.in_flight.load(Ordering::Acquire) == 0)
                .min_by_key(|c| c.idle_since.load(Ordering::Acquire))
                .map(|c| c.id);
            // It leaves the count now; its task closes it at once.
            match oldest_idle.and_then(|id| open.remove(&id)) {
                Some(victim) => victim.close.notify_one(),
                None => return Admission::Full,
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let tracked = Arc::new(Tracked {
            id,
            in_flight: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.now_ms()),
            close: Notify::new(),
            idled: Notify::new(),
        });
        open.insert(id, tracked.clone());
        Admission::Admitted(tracked)
    }

    /// Forgets a closed connection.
    fn remove(&self, id: u64) {
        let mut open = lock(&self.open);
        open.remove(&id);
        if open.is_empty() {
            self.emptied.notify_waiters();
        }
    }

    /// Returns once no connection is open.
    pub(crate) async fn all_closed(&self) {
        loop {
            let emptied = self.emptied.notified();
            if self.count() == 0 {
                return;
            }
            emptied.await;
        }
    }
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracked").field("id", &self.id).finish()
    }
}

/// Serves one connection until it ends: closes it gracefully when the server stops,
/// when the accept loop needs its room, or when it has been idle too long.
pub(crate) async fn drive<C>(
    connections: Arc<Connections>,
    tracked: Arc<Tracked>,
    connection: C,
    idle_timeout: Duration,
    mut stopping: watch::Receiver<bool>,
) where
    C: Future<Output = Result<(), Box<dyn std::error::Error + Send + Sync>>> + GracefulConnection,
{
    let mut connection = std::pin::pin!(connection);
    let mut closing = false;
    loop {
        let deadline = idle_deadline(&connections, &tracked, idle_timeout);
        tokio::select! {
            ended = connection.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                break;
            }
            _ = stopping.wait_for(|stop| *stop), if !closing => {
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            _ = tracked.close.notified(), if !closing => {
                tracing::debug!("closing an idle connection to make room for a new one");
                closing = true;
                connection.as_mut().graceful_shutdown();
            }
            _ = tracked.idled.notified(), if !closing => {}
            _ = tokio::time::sleep_until(deadline), if !closing => {
                if tracked.in_flight.load(Ordering::Acquire) == 0
                    && Instant::now() >= idle_deadline(&connections, &tracked, idle_timeout)
                {
                    tracing::debug!("closing an idle connection");
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
    connections.remove(tracked.id);
}

/// When `tracked` may be closed as idle if nothing happens meanwhile: `idle_timeout`
/// after it became idle, or (while busy) a full `idle_timeout` from now, to look again.
fn idle_deadline(connections: &Connections, tracked: &Tracked, idle_timeout: Duration) -> Instant {
    if tracked.in_flight.load(Ordering::Acquire) > 0 {
        return Instant::now() + idle_timeout;
    }
    let since = Duration::from_millis(tracked.idle_since.load(Ordering::Acquire));
    connections.epoch + since + idle_timeout
}

/// A connection hyper can be asked to shut down gracefully.
pub(crate) trait GracefulConnection {
    /// Starts a graceful shutdown: no new requests; close once the current ones end.
    fn graceful_shutdown(self: Pin<&mut Self>);
}

impl<I, S, E, B> GracefulConnection
    for hyper_util::server::conn::auto::UpgradeableConnection<'_, I, S, E>
where
    S: hyper::service::HttpService<Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::Future: 'static,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    B: HttpBody + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, B>,
{
    fn graceful_shutdown(self: Pin<&mut Self>) {
        hyper_util::server::conn::auto::UpgradeableConnection::graceful_shutdown(self);
    }
}

/// Marks its connection busy for as long as it lives: from a request's header to its
/// answer's last byte (it rides in the answer's body).
struct Busy {
    connections: Arc<Connections>,
    tracked: Arc<Tracked>,
}

impl Busy {
    fn new(connections: &Arc<Connections>, tracked: &Arc<Tracked>) -> Self {
        tracked.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy {
            connections: connections.clone(),
            tracked: tracked.clone(),
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let now = self.connections.now_ms();
        // Idle from now on if this was the last request in progress.
        self.tracked.idle_since.store(now, Ordering::Release);
        if self.tracked.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.tracked.idled.notify_one();
        }
    }
}

/// The server's service for one connection: the router, with each request counted as in
/// progress until its answer's body is done.
#[derive(Clone)]
pub(crate) struct CountedService {
    router: TowerToHyperService<axum::Router>,
    connections: Arc<Connections>,
    tracked: Arc<Tracked>,
}

impl CountedService {
    pub(crate) fn new(
        router: axum::Router,
        connections: Arc<Connections>,
        tracked: Arc<Tracked>,
    ) -> Self {
        CountedService {
            router: TowerToHyperService::new(router),
            connections,
            tracked,
        }
    }
}

impl Service<http::Request<Incoming>> for CountedService {
    type Response = http::Response<CountedBody>;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn call(&self, request: http::Request<Incoming>) -> Self::Future {
        let busy = Busy::new(&self.connections, &self.tracked);
        let answer = self.router.call(request);
        Box::pin(async move {
            let response = answer.await?;
            Ok(response.map(|body| CountedBody {
                inner: body,
                _busy: busy,
            }))
        })
    }
}

/// An answer's body that keeps its connection marked busy until it is sent (dropped).
pub(crate) struct CountedBody {
    inner: axum::body::Body,
    _busy: Busy,
}

impl HttpBody for CountedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A socket whose writes may not stall: a write (or flush) that has made no progress
/// for `timeout` fails with `TimedOut`, which ends the connection.
pub(crate) struct WriteTimed<T> {
    inner: T,
    timeout: Duration,
    /// Armed while a write is pending; `None` once it made progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<T> WriteTimed<T> {
    pub(crate) fn new(inner: T, timeout: Duration) -> Self {
        WriteTimed {
            inner,
            timeout,
            stalled: None,
        }
    }

    /// The outcome of a pending write: still pending, or timed out.
    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let timeout = self.timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(stalled.as_mut().poll(cx));
        self.stalled = None;
        tracing::debug!(?timeout, "the peer stopped reading; closing its connection");
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the peer took no bytes for the write timeout",
        )))
    }

    fn progressed<R>(
        &mut self,
        outcome: Poll<io::Result<R>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<R>> {
        match outcome {
            Poll::Pending => self.pending(cx),
            ready => {
                self.stalled = None;
                ready
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteTimed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let outcome = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progressed(outcome, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let outcome = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progressed(outcome, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let outcome = Pin::new(&mut self.inner).poll_flush(cx);
        self.progressed(outcome, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The answer to a connection the server has no room for, written straight to its
/// socket (best effort: it is closed right after).
pub(crate) const FULL_ANSWER: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/problem+json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 169\r\n\
\r\n\
{\"type\":\"https://jobwire.dev/problems/unavailable\",\"title\":\"Service Unavailable\",\"status\":503,\"code\":\"unavailable\",\"retryable\":true,\"detail\":\"too many open connections\"}";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_answer_is_a_whole_problem() {
        let text = std::str::from_utf8(FULL_ANSWER).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
        let problem: jobwire_core::Problem = serde_json::from_str(body).unwrap();
        assert_eq!(
            (problem.status, problem.code.as_str()),
            (503, "unavailable")
        );
    }

    #[tokio::test]
    async fn a_full_server_makes_room_by_closing_the_longest_idle() {
        let connections = Arc::new(Connections::new());
        let Admission::Admitted(first) = connections.admit(2) else {
            panic!("room")
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        let Admission::Admitted(second) = connections.admit(2) else {
            panic!("room")
        };
        // Full: the first (idle longest) is asked to close and leaves the count.
        let Admission::Admitted(_third) = connections.admit(2) else {
            panic!("an idle one makes room")
        };
        assert_eq!(connections.count(), 2);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), first.close.notified())
                .await
                .is_ok(),
            "the longest-idle connection was asked to close"
        );
        // Every open one busy: the newcomer is refused.
        let _busy_second = Busy::new(&connections, &second);
        let _busy_third = Busy::new(&connections, &_third);
        assert!(matches!(connections.admit(2), Admission::Full));
        assert_eq!(connections.count(), 2);
    }

    #[tokio::test]
    async fn a_stalled_write_times_out() {
        // A pipe whose reader never reads: the writer fills it, then stalls.
        let (_reader, writer) = tokio::io::duplex(64);
        let mut timed = WriteTimed::new(writer, Duration::from_millis(100));
        let started = std::time::Instant::now();
        let outcome = tokio::io::AsyncWriteExt::write_all(&mut timed, &[0u8; 4096]).await;
        let err = outcome.expect_err("the write stalls");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(100));
        // Progress disarms it: a reader that keeps up never sees a timeout.
        let (reader2, writer2) = tokio::io::duplex(64);
        let mut timed = WriteTimed::new(writer2, Duration::from_millis(100));
        let drain = tokio::spawn(async move {
            let mut reader2 = reader2;
            let mut sink = Vec::new();
            tokio::io::AsyncReadExt::read_to_end(&mut reader2, &mut sink)
                .await
                .unwrap();
            sink.len()
        });
        for _ in 0..20 {
            tokio::io::AsyncWriteExt::write_all(&mut timed, &[1u8; 256])
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(timed);
        assert_eq!(drain.await.unwrap(), 20 * 256);
    }
}
