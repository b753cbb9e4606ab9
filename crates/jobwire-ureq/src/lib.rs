//! The blocking transport of jobwire: a [ureq] 3 `Agent`, with no async runtime.
//!
//! [`UreqTransport`] implements [`jobwire_core::transport::Transport`]. HTTP error
//! statuses come back as answers (so the SDK reads their problem bodies), bodies are
//! streamed, TLS is rustls with its ring provider, idle connections are pooled and aged
//! out, host names are resolved without a thread per request, and the connect timeout, each request's [`RequestTimeout`] and, for event
//! streams, its [`ReadTimeout`] (each read of the head and body) are applied.
//! The `jobwire-blocking` facade uses it by default; build one yourself to tune it:
//!
//! ```
//! use std::time::Duration;
//! let transport = jobwire_ureq::UreqTransport::builder()
//!     .connect_timeout(Duration::from_secs(3))
//!     .build();
//! # let _ = transport;
//! ```
#![warn(missing_docs)]

mod resolver;

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use jobwire_core::transport::{Body, ReadTimeout, RequestTimeout, Transport};
use jobwire_core::{TransportError, TransportErrorKind};

/// A pooled ureq agent that jobwire sends its requests through. Cheap to clone: clones
/// share one pool.
#[derive(Clone, Debug)]
pub struct UreqTransport {
    agent: ureq::Agent,
}

/// Settings for a [`UreqTransport`].
#[derive(Debug, Clone)]
pub struct UreqTransportBuilder {
    connect_timeout: Duration,
    idle_timeout: Duration,
    max_idle_per_host: usize,
}

impl Default for UreqTransportBuilder {
    fn default() -> Self {
        UreqTransportBuilder {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(90),
            max_idle_per_host: 32,
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

    /// How many idle connections are kept per host (default 32).
    pub fn max_idle_per_host(mut self, max: usize) -> Self {
        self.max_idle_per_host = max;
        self
    }

    /// Builds the transport.
    pub fn build(self) -> UreqTransport {
        let config = ureq::Agent::config_builder()
            // Error statuses are answers: the SDK reads their problem bodies.
            .http_status_as_error(false)
            .timeout_connect(Some(self.connect_timeout))
            .max_idle_age(self.idle_timeout)
            .max_idle_connections_per_host(self.max_idle_per_host)
            .max_idle_connections(self.max_idle_per_host.saturating_mul(4))
            .user_agent("")
            .build();
        // Our resolver: no thread per request for a name already known (see `resolver`).
        let agent = ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::default(),
            resolver::QuickResolver::default(),
        );
        UreqTransport { agent }
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
        let timeout = RequestTimeout::of(&request);
        let per_read = ReadTimeout::of(&request);
        let request = request.map(|b| b.to_vec());
        let configured = self.agent.configure_request(request);
        let request = match per_read {
            // An event stream has no end to bound; each read has.
            Some(idle) => configured.timeout_per_read(Some(idle)).build(),
            None => configured.timeout_global(timeout).build(),
        };
        let response = self.agent.run(request).map_err(classify)?;
        Ok(response.map(|body| Body::from_reader(BodyReader(body.into_reader()))))
    }
}

/// Turns ureq's read errors into I/O errors that carry a classified [`TransportError`],
/// so a timeout mid-body is reported as a timeout.
struct BodyReader<R>(R);

impl<R: Read> Read for BodyReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read(buf).map_err(|e| {
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
