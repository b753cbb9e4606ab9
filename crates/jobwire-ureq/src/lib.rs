//! The blocking transport of jobwire: a [ureq] 3 `Agent`, with no async runtime.
//!
//! [`UreqTransport`] implements [`jobwire_core::transport::Transport`]. HTTP error
//! statuses come back as answers (so the SDK reads their problem bodies), bodies are
//! streamed, TLS is rustls with its ring provider, idle connections are pooled and aged
//! out, host names are resolved without a thread per request, and the connect timeout,
//! each request's [`RequestTimeout`] (no read waits longer, and the answer ends once it
//! has passed) and, for event streams, its [`ReadTimeout`] (each read of the head and
//! body) are applied. The socket timeouts stay the same from one request to the next, so
//! they are set once per connection, not before every read.
//!
//! It has at most [`max_connections_per_host`] requests in flight to one host (100 by
//! default, as aiohttp and httpx; ureq speaks HTTP/1.1, a connection each). The other
//! threads wait their turn, first come first served, until their call's
//! [`CallDeadline`] if it has one; they do not fail, and their [`RequestTimeout`] starts
//! when their turn comes. Running out of file descriptors while connecting is waited out
//! the same way: the connect is tried again, a little later each time, within the
//! connect timeout. The `jobwire-blocking` facade uses it by default; build one yourself
//! to tune it:
//!
//! ```
//! use std::time::Duration;
//! let transport = jobwire_ureq::UreqTransport::builder()
//!     .connect_timeout(Duration::from_secs(3))
//!     .max_connections_per_host(32)
//!     .build();
//! # let _ = transport;
//! ```
//!
//! [`max_connections_per_host`]: UreqTransportBuilder::max_connections_per_host
#![warn(missing_docs)]

mod resolver;
mod slots;

use std::io::Read;
use std::time::{Duration, Instant};

use bytes::Bytes;
use jobwire_core::error::duration_text;
use jobwire_core::transport::{
    out_of_file_descriptors, Body, CallDeadline, ReadTimeout, RequestTimeout, Transport,
};
use jobwire_core::{TransportError, TransportErrorKind};

/// The default most requests in flight to one host (see the crate docs).
pub const DEFAULT_MAX_CONNECTIONS_PER_HOST: usize =
    jobwire_core::config::DEFAULT_MAX_CONNECTIONS_PER_HOST;

/// The longest pause between two connects while the process is out of file descriptors.
const MAX_DESCRIPTOR_PAUSE: Duration = Duration::from_millis(100);

/// A pooled ureq agent that jobwire sends its requests through. Cheap to clone: clones
/// share one pool and one limit per host.
#[derive(Clone, Debug)]
pub struct UreqTransport {
    agent: ureq::Agent,
    slots: std::sync::Arc<slots::HostSlots>,
}

/// Settings for a [`UreqTransport`].
#[derive(Debug, Clone)]
pub struct UreqTransportBuilder {
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle_per_host: usize,
    max_connections_per_host: usize,
}

impl Default for UreqTransportBuilder {
    fn default() -> Self {
        UreqTransportBuilder {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            max_idle_per_host: 1024,
            max_connections_per_host: DEFAULT_MAX_CONNECTIONS_PER_HOST,
        }
    }
}

impl UreqTransportBuilder {
    /// How long connecting (DNS, TCP and TLS) may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long an idle pooled connection is kept (default 90 s).
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// How many idle connections are kept per host (default 1024, and never more than
    /// [`max_connections_per_host`](Self::max_connections_per_host)). Keep it at least
    /// at the requests a program has in flight at once: above it, connections are closed
    /// as they come back and opened again for the next requests.
    pub fn max_idle_per_host(mut self, max: usize) -> Self {
        self.max_idle_per_host = max;
        self
    }

    /// The most requests in flight to one host at once (default 100; at least 1), event
    /// streams included. The other threads wait their turn in the order they came; they
    /// do not fail.
    ///
    /// ```
    /// let transport = jobwire_ureq::UreqTransport::builder().max_connections_per_host(8).build();
    /// # let _ = transport;
    /// ```
    pub fn max_connections_per_host(mut self, max: usize) -> Self {
        self.max_connections_per_host = max.max(1);
        self
    }

    /// Builds the transport.
    pub fn build(self) -> UreqTransport {
        // Idle connections past the limit would only ever be closed unused.
        let max_idle = self.max_idle_per_host.min(self.max_connections_per_host);
        let config = ureq::Agent::config_builder()
            // Error statuses are answers: the SDK reads their problem bodies.
            .http_status_as_error(false)
            .timeout_connect(Some(self.connect_timeout))
            .max_idle_age(self.idle_timeout)
            .max_idle_connections_per_host(max_idle)
            .max_idle_connections(max_idle.saturating_mul(4))
            .user_agent("")
            .build();
        // Our resolver: no thread per request for a name already known (see `resolver`).
        let agent = ureq::Agent::with_parts(
            config,
            PatientConnector(ureq::unversioned::transport::DefaultConnector::default()),
            resolver::QuickResolver::default(),
        );
        UreqTransport {
            agent,
            slots: std::sync::Arc::new(slots::HostSlots::new(self.max_connections_per_host)),
        }
    }
}

impl UreqTransport {
    /// A transport with the default settings.
    pub fn new() -> Self {
        UreqTransportBuilder::default().build()
    }

    /// Settings to build a transport from.
    pub fn builder() -> UreqTransportBuilder {
        UreqTransportBuilder::default()
    }
}

impl Default for UreqTransport {
    fn default() -> Self {
        UreqTransport::new()
    }
}

impl Transport for UreqTransport {
    fn send(&self, request: http::Request<Bytes>) -> Result<http::Response<Body>, TransportError> {
        // The request's turn first: waiting for it is bounded by the call's deadline
        // only; the request's own timeouts start once it has its turn.
        let host = request.uri().authority().map_or("", |a| a.as_str());
        let slot = self
            .slots
            .acquire(host, CallDeadline::of(&request))
            .map_err(|()| {
                TransportError::new(
                    TransportErrorKind::Timeout,
                    format!("no connection to {host} was free before the call's deadline"),
                )
            })?;
        let timeout = RequestTimeout::of(&request);
        let per_read = ReadTimeout::of(&request);
        let request = request.map(|b| b.to_vec());
        let configured = self.agent.configure_request(request);
        // A plain request's whole answer is bounded by its timeout: each read waits at
        // most that long (a socket timeout that stays the same from request to request,
        // so it is set once per connection, not per read as a shrinking deadline would
        // be), and the body reader ends the answer once the deadline has passed. An
        // event stream's reads wait at most its read timeout each; its whole answer is
        // bounded only when it has a timeout too (a call's deadline).
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut configured = configured.timeout_per_read(per_read.or(timeout));
        if per_read.is_some() {
            // A stream with a deadline ends at it, not a read timeout after the last
            // read began.
            configured = configured.timeout_global(timeout);
        }
        let request = configured.build();
        let response = self.agent.run(request).map_err(classify)?;
        if deadline.is_some_and(|d| Instant::now() > d) {
            return Err(timed_out(timeout));
        }
        Ok(response.map(|body| {
            Body::from_reader(BodyReader {
                inner: body.into_reader(),
                deadline,
                timeout,
                slot: Some(slot),
            })
        }))
    }
}

/// Turns ureq's read errors into I/O errors that carry a classified [`TransportError`],
/// so a timeout mid-body is reported as a timeout.
struct BodyReader<R> {
    inner: R,
    /// When the whole answer must have arrived (plain requests).
    deadline: Option<Instant>,
    timeout: Option<Duration>,
    /// The request's turn at its host, given back at the body's end (or when dropped).
    slot: Option<slots::Slot>,
}

/// The error of an answer not complete within its request's timeout.
fn timed_out(timeout: Option<Duration>) -> TransportError {
    let within = timeout.map_or_else(|| "its deadline".to_owned(), duration_text);
    TransportError::new(
        TransportErrorKind::Timeout,
        format!("no complete answer within {within}"),
    )
}

impl<R: Read> Read for BodyReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.deadline.is_some_and(|d| Instant::now() > d) {
            self.slot = None;
            return Err(std::io::Error::other(timed_out(self.timeout)));
        }
        let read = self.inner.read(buf);
        if matches!(read, Ok(0)) && !buf.is_empty() {
            // The end: the connection is back in the pool, the next request's turn. (A
            // read that timed out is no end: a stream read in ticks reads on.)
            self.slot = None;
        }
        read.map_err(|e| {
            // ureq reports its own timeouts mid-body as an I/O error that wraps them.
            let ureq_timeout = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<ureq::Error>())
                .is_some_and(|inner| matches!(inner, ureq::Error::Timeout(_)));
            let error = if ureq_timeout {
                TransportError::new(TransportErrorKind::Timeout, e)
            } else {
                TransportError::from_io(e)
            };
            std::io::Error::other(error)
        })
    }
}

/// ureq's default connector, but running out of file descriptors (EMFILE, ENFILE) is
/// back-pressure, not failure: sockets close as answers come in, so it waits a little
/// (longer each time, up to 100 ms) and connects again, within the connect timeout.
#[derive(Debug)]
struct PatientConnector(ureq::unversioned::transport::DefaultConnector);

impl ureq::unversioned::transport::Connector<()> for PatientConnector {
    type Out = Box<dyn ureq::unversioned::transport::Transport>;

    fn connect(
        &self,
        details: &ureq::unversioned::transport::ConnectionDetails,
        chained: Option<()>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        let give_up = Instant::now().checked_add(*details.timeout.after);
        let mut pause = Duration::from_millis(5);
        loop {
            match self.0.connect(details, chained) {
                Err(ureq::Error::Io(e))
                    if out_of_file_descriptors(&e)
                        && give_up.map_or(true, |end| Instant::now() + pause < end) =>
                {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(MAX_DESCRIPTOR_PAUSE);
                }
                connected => return connected,
            }
        }
    }
}

fn classify(err: ureq::Error) -> TransportError {
    let kind = match &err {
        ureq::Error::Timeout(_) => TransportErrorKind::Timeout,
        ureq::Error::HostNotFound | ureq::Error::ConnectionFailed => TransportErrorKind::Connect,
        ureq::Error::Io(io) => return TransportError::from_io(clone_io(io)),
        ureq::Error::Tls(_) => TransportErrorKind::Connect,
        ureq::Error::Protocol(_) => TransportErrorKind::Io,
        _ => TransportErrorKind::Other,
    };
    TransportError::new(kind, err)
}

fn clone_io(io: &std::io::Error) -> std::io::Error {
    std::io::Error::new(io.kind(), io.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;

    /// A server that sends a head, then its body a byte at a time, each well within the
    /// per-read timeout: the answer still ends at the request's deadline.
    #[test]
    fn a_body_that_trickles_in_ends_at_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut request = [0u8; 1024];
            let _ = socket.read(&mut request);
            let _ = socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n");
            for _ in 0..1000 {
                std::thread::sleep(Duration::from_millis(40));
                if socket.write_all(b"x").is_err() {
                    return;
                }
            }
        });
        let request = http::Request::get(format!("http://{addr}/slow"))
            .extension(RequestTimeout(Duration::from_millis(400)))
            .body(Bytes::new())
            .unwrap();
        let started = Instant::now();
        let answer = UreqTransport::new().send(request).unwrap();
        let read = answer.into_body().read_to_bytes(1 << 20);
        let elapsed = started.elapsed();
        match read {
            Err(jobwire_core::transport::BodyError::Transport(e)) => assert!(e.is_timeout(), "{e}"),
            other => panic!("expected a timeout, got {other:?}"),
        }
        assert!(
            elapsed >= Duration::from_millis(400) && elapsed < Duration::from_millis(700),
            "{elapsed:?}"
        );
    }
}

#[cfg(test)]
mod cap_tests {
    use super::*;
    use std::io::Write;
    use std::net::TcpListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    /// 12 threads at once through a cap of 3: never more than 3 connections, every
    /// request answered.
    #[test]
    fn requests_past_the_cap_wait_their_turn() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let (open, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let seen = most.clone();
        std::thread::spawn(move || {
            for socket in listener.incoming() {
                let mut socket = socket.unwrap();
                let (open, most) = (open.clone(), seen.clone());
                std::thread::spawn(move || {
                    most.fetch_max(open.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                    let mut buf = [0u8; 1024];
                    while matches!(socket.read(&mut buf), Ok(n) if n > 0) {
                        std::thread::sleep(Duration::from_millis(50));
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if socket.write_all(answer).is_err() {
                            break;
                        }
                    }
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        let transport = UreqTransport::builder().max_connections_per_host(3).build();
        std::thread::scope(|scope| {
            for _ in 0..12 {
                scope.spawn(|| {
                    let request = http::Request::get(format!("http://{addr}/"))
                        .body(Bytes::new())
                        .unwrap();
                    let body = transport.send(request).unwrap().into_body();
                    assert_eq!(&body.read_to_bytes(1024).unwrap()[..], b"ok");
                });
            }
        });
        let most = most.load(Ordering::SeqCst);
        assert!((1..=3).contains(&most), "{most} connections at once");
    }
}
