//! The async transport of jobwire: hyper 1 and hyper-util's pooled client on tokio.
//!
//! [`HyperTransport`] implements [`jobwire_core::transport::AsyncTransport`]. It speaks
//! HTTP/1.1 and HTTP/2 (negotiated by ALPN over TLS, or by prior knowledge over plain
//! TCP), does TLS with rustls and its ring provider against the Mozilla roots, keeps a
//! pool of connections per host and evicts idle ones, and honours its connect timeout,
//! each request's [`RequestTimeout`] (head and whole body) and, for event streams, its
//! [`ReadTimeout`] (head, then each next piece of the body). The `jobwire` facade uses it by
//! default; build one yourself to tune it:
//!
//! ```
//! use std::time::Duration;
//! use jobwire_hyper::HyperTransport;
//!
//! let transport = HyperTransport::builder()
//!     .connect_timeout(Duration::from_secs(3))
//!     .pool_idle_timeout(Duration::from_secs(30))
//!     .build()?;
//! # let _ = transport;
//! # Ok::<(), jobwire_core::TransportError>(())
//! ```
#![warn(missing_docs)]

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_core::Stream;
use http_body::Body as _;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use jobwire_core::error::duration_text;
use jobwire_core::transport::{
    async_trait, AsyncBody, AsyncTransport, ReadTimeout, RequestTimeout,
};
use jobwire_core::{TransportError, TransportErrorKind};

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A pooled hyper client that jobwire sends its requests through. Cheap to clone: clones
/// share one pool.
#[derive(Clone, Debug)]
pub struct HyperTransport {
    client: HttpsClient,
}

/// Settings for a [`HyperTransport`].
#[derive(Debug, Clone)]
pub struct HyperTransportBuilder {
    connect_timeout: Option<Duration>,
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
    http2_prior_knowledge: bool,
}

impl Default for HyperTransportBuilder {
    fn default() -> Self {
        HyperTransportBuilder {
            connect_timeout: Some(Duration::from_secs(10)),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 1024,
            http2_prior_knowledge: false,
        }
    }
}

impl HyperTransportBuilder {
    /// How long connecting (TCP and TLS) may take (default 10 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// How long an idle pooled connection is kept before it is closed (default 90 s).
    pub fn pool_idle_timeout(mut self, timeout: Duration) -> Self {
        self.pool_idle_timeout = timeout;
        self
    }

    /// How many idle connections are kept per host (default 1024). Keep it at least at
    /// the requests a program has in flight at once: above it, connections are closed
    /// as they come back and opened again for the next requests.
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = max;
        self
    }

    /// Speak HTTP/2 from the first byte, also over plain TCP (h2c). Over TLS, HTTP/2 is
    /// negotiated by ALPN without this.
    pub fn http2_prior_knowledge(mut self) -> Self {
        self.http2_prior_knowledge = true;
        self
    }

    /// Builds the transport. Needs no runtime yet; requests must be sent from tokio.
    pub fn build(self) -> Result<HyperTransport, TransportError> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(self.connect_timeout);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(provider)
            .map_err(|e| TransportError::new(TransportErrorKind::Other, e))?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            // Without a timer hyper-util never evicts idle connections.
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(self.pool_idle_timeout)
            .pool_max_idle_per_host(self.pool_max_idle_per_host)
            .http2_only(self.http2_prior_knowledge)
            .build(https);
        Ok(HyperTransport { client })
    }
}

impl HyperTransport {
    /// A transport with the default settings.
    pub fn new() -> Result<Self, TransportError> {
        HyperTransportBuilder::default().build()
    }

    /// Settings to build a transport from.
    pub fn builder() -> HyperTransportBuilder {
        HyperTransportBuilder::default()
    }
}

#[async_trait]
impl AsyncTransport for HyperTransport {
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<AsyncBody>, TransportError> {
        // A stream's read timeout restarts with every piece; a request timeout does not,
        // and bounds a stream too when it has one (a call's deadline).
        let per_read = ReadTimeout::of(&request);
        let whole = RequestTimeout::of(&request);
        let now = tokio::time::Instant::now();
        let end = whole.and_then(|t| now.checked_add(t));
        let deadline = earliest(per_read.and_then(|t| now.checked_add(t)), end);
        let timeout = per_read.or(whole);
        let pending = self.client.request(request.map(Full::new));
        let response = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline, pending)
                .await
                .map_err(|_| timeout_error(timeout))?,
            None => pending.await,
        }
        .map_err(classify_client_error)?;
        Ok(response.map(|body| {
            AsyncBody::from_stream(IncomingStream {
                body,
                deadline,
                timer: None,
                per_read,
                end,
                timeout,
            })
        }))
    }
}

/// The earlier of two optional instants.
fn earliest(
    a: Option<tokio::time::Instant>,
    b: Option<tokio::time::Instant>,
) -> Option<tokio::time::Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn timeout_error(timeout: Option<Duration>) -> TransportError {
    let within = timeout.map_or_else(|| "its deadline".to_owned(), duration_text);
    TransportError::new(
        TransportErrorKind::Timeout,
        format!("no complete answer within {within}"),
    )
}

fn classify_client_error(err: hyper_util::client::legacy::Error) -> TransportError {
    let kind = if err.is_connect() {
        // hyper-util reports its connect timeout as a connect error wrapping TimedOut.
        if source_is_timeout(&err) {
            TransportErrorKind::Timeout
        } else {
            TransportErrorKind::Connect
        }
    } else {
        TransportErrorKind::Io
    };
    TransportError::new(kind, ClientError(err))
}

/// hyper-util's error, shown by what caused it: its own text is the `Debug` of its kind
/// (`client error (Connect)`), which says nothing a reader can act on.
#[derive(Debug)]
struct ClientError(hyper_util::client::legacy::Error);

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use std::error::Error as _;
        let mut cause = self.0.source();
        if cause.is_none() {
            return f.write_str(if self.0.is_connect() {
                "cannot connect"
            } else {
                "the request failed"
            });
        }
        let mut first = true;
        while let Some(e) = cause {
            if !first {
                f.write_str(": ")?;
            }
            write!(f, "{e}")?;
            first = false;
            cause = e.source();
        }
        Ok(())
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn source_is_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = err.source();
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return true;
            }
        }
        source = e.source();
    }
    false
}

/// A hyper body as a stream of data chunks that ends with a timeout error once the
/// request's deadline passes, so a server that stalls mid-body cannot hang the caller.
/// With `per_read`, each piece that arrives moves the deadline a whole timeout on, never
/// past `end`.
struct IncomingStream {
    body: hyper::body::Incoming,
    /// When the body (or, for a stream, the current read) must have arrived.
    deadline: Option<tokio::time::Instant>,
    /// The timer of `deadline`, made only once a read has to wait: most answers arrive
    /// with their head, and then no timer is made at all.
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// A stream's per-read timeout.
    per_read: Option<Duration>,
    /// When the whole answer must have arrived, if ever.
    end: Option<tokio::time::Instant>,
    /// The timeout named in a timeout error.
    timeout: Option<Duration>,
}

impl Stream for IncomingStream {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match Pin::new(&mut self.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if data.is_empty() => continue,
                    Ok(data) => {
                        if let Some(t) = self.per_read {
                            let next = tokio::time::Instant::now() + t;
                            let next = self.end.map_or(next, |end| end.min(next));
                            self.deadline = Some(next);
                            if let Some(timer) = self.timer.as_mut() {
                                timer.as_mut().reset(next);
                            }
                        }
                        return Poll::Ready(Some(Ok(data)));
                    }
                    Err(_trailers) => continue,
                },
                Poll::Ready(Some(Err(e))) => {
                    return Poll::Ready(Some(Err(TransportError::new(TransportErrorKind::Io, e))))
                }
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {
                    let Some(deadline) = self.deadline else {
                        return Poll::Pending;
                    };
                    let timeout = self.timeout;
                    let timer = self
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                    if timer.as_mut().poll(cx).is_ready() {
                        self.deadline = None;
                        self.timer = None;
                        return Poll::Ready(Some(Err(timeout_error(timeout))));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}
