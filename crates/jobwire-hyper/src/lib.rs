//! The async transport of jobwire: hyper 1 and hyper-util's pooled client on tokio.
//!
//! [`HyperTransport`] implements [`jobwire_core::transport::AsyncTransport`]. It speaks
//! HTTP/1.1 and HTTP/2 (negotiated by ALPN over TLS, or by prior knowledge over plain
//! TCP), does TLS with rustls and its ring provider against the Mozilla roots, keeps a
//! pool of connections per host and evicts idle ones, and honours its connect timeout,
//! each request's [`RequestTimeout`] (head and whole body) and, for event streams, its
//! [`ReadTimeout`] (head, then each next piece of the body).
//!
//! It has at most [`max_connections_per_host`] requests in flight to one host (100 by
//! default, as aiohttp and httpx): over HTTP/1.1 a connection each, over HTTP/2 a stream
//! each. The others wait their turn, first come first served, until the call's
//! [`CallDeadline`] if it has one; they do not fail, and their [`RequestTimeout`] starts
//! when their turn comes. Running out of file descriptors while connecting is waited
//! out the same way: the connect is tried again, a little later each time, within the
//! request's timeout. The `jobwire` facade uses it by default; build one yourself to tune
//! it:
//!
//! ```
//! use std::time::Duration;
//! use jobwire_hyper::HyperTransport;
//!
//! let transport = HyperTransport::builder()
//!     .connect_timeout(Duration::from_secs(3))
//!     .pool_idle_timeout(Duration::from_secs(30))
//!     .max_connections_per_host(32)
//!     .build()?;
//! # let _ = transport;
//! # Ok::<(), jobwire_core::TransportError>(())
//! ```
//!
//! [`max_connections_per_host`]: HyperTransportBuilder::max_connections_per_host
#![warn(missing_docs)]

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
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
    async_trait, out_of_file_descriptors, AsyncBody, AsyncTransport, CallDeadline, ReadTimeout,
    RequestTimeout,
};
use jobwire_core::{TransportError, TransportErrorKind};

type HttpsClient = Client<HttpsConnector<PatientConnector>, Full<Bytes>>;

/// The default most requests in flight to one host (see the crate docs).
pub const DEFAULT_MAX_CONNECTIONS_PER_HOST: usize =
    jobwire_core::config::DEFAULT_MAX_CONNECTIONS_PER_HOST;

/// The longest pause between two connects while the process is out of file descriptors.
const MAX_DESCRIPTOR_PAUSE: Duration = Duration::from_millis(100);

/// A pooled hyper client that jobwire sends its requests through. Cheap to clone: clones
/// share one pool and one limit per host.
#[derive(Clone, Debug)]
pub struct HyperTransport {
    client: HttpsClient,
    slots: Arc<HostSlots>,
}

/// Settings for a [`HyperTransport`].
#[derive(Debug, Clone)]
pub struct HyperTransportBuilder {
    connect_timeout: Option<Duration>,
    pool_idle_timeout: Duration,
    pool_max_idle_per_host: usize,
    max_connections_per_host: usize,
    http2_prior_knowledge: bool,
}

impl Default for HyperTransportBuilder {
    fn default() -> Self {
        HyperTransportBuilder {
            connect_timeout: Some(Duration::from_secs(10)),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 1024,
            max_connections_per_host: DEFAULT_MAX_CONNECTIONS_PER_HOST,
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

    /// How many idle connections are kept per host (default 1024, and never more than
    /// [`max_connections_per_host`](Self::max_connections_per_host)). Keep it at least
    /// at the requests a program has in flight at once: above it, connections are closed
    /// as they come back and opened again for the next requests.
    pub fn pool_max_idle_per_host(mut self, max: usize) -> Self {
        self.pool_max_idle_per_host = max;
        self
    }

    /// The most requests in flight to one host at once (default 100; at least 1): a
    /// connection each over HTTP/1.1, a stream each over HTTP/2, event streams included.
    /// The others wait their turn in the order they came; they do not fail.
    ///
    /// ```
    /// let transport = jobwire_hyper::HyperTransport::builder().max_connections_per_host(8).build()?;
    /// # let _ = transport;
    /// # Ok::<(), jobwire_core::TransportError>(())
    /// ```
    pub fn max_connections_per_host(mut self, max: usize) -> Self {
        self.max_connections_per_host = max.max(1);
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
        let http = PatientConnector(http);
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
            // Idle connections past the limit would only ever be closed unused.
            .pool_max_idle_per_host(
                self.pool_max_idle_per_host
                    .min(self.max_connections_per_host),
            )
            .http2_only(self.http2_prior_knowledge)
            .build(https);
        Ok(HyperTransport {
            client,
            slots: Arc::new(HostSlots::new(self.max_connections_per_host)),
        })
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
        // The request's turn first: waiting for it is bounded by the call's deadline
        // only; the request's own timeouts start once it has its turn.
        let slot = self.slots.acquire(&request).await?;
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
                slot: Some(slot),
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
    /// The request's turn at its host, given back when the body is over (or dropped).
    slot: Option<tokio::sync::OwnedSemaphorePermit>,
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
                    self.slot = None;
                    return Poll::Ready(Some(Err(TransportError::new(TransportErrorKind::Io, e))));
                }
                Poll::Ready(None) => {
                    // The connection is back in the pool: the next request's turn.
                    self.slot = None;
                    return Poll::Ready(None);
                }
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
                        self.slot = None;
                        return Poll::Ready(Some(Err(timeout_error(timeout))));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

/// The requests in flight to each host, at most `max` each: a connection each over
/// HTTP/1.1, a stream each over HTTP/2. Those past it wait for a turn in the order they
/// came (tokio's semaphore is fair), never failing; only a call's deadline ends the wait.
#[derive(Debug)]
struct HostSlots {
    max: usize,
    /// One queue per host (`host:port`, as the URI has it).
    hosts: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

impl HostSlots {
    fn new(max: usize) -> Self {
        HostSlots {
            max,
            hosts: Mutex::new(HashMap::new()),
        }
    }

    /// The request's turn at its host, once it comes; a timeout error if its call's
    /// deadline comes first.
    async fn acquire(
        &self,
        request: &http::Request<Bytes>,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, TransportError> {
        let host = request.uri().authority().map_or("", |a| a.as_str());
        let slots = {
            let mut hosts = self.hosts.lock().unwrap_or_else(PoisonError::into_inner);
            match hosts.get(host) {
                Some(slots) => slots.clone(),
                None => {
                    let slots = Arc::new(tokio::sync::Semaphore::new(self.max));
                    hosts.insert(host.to_owned(), slots.clone());
                    slots
                }
            }
        };
        let turn = slots.acquire_owned();
        let permit = match CallDeadline::of(request) {
            Some(deadline) => tokio::time::timeout_at(deadline.into(), turn)
                .await
                .map_err(|_| {
                    TransportError::new(
                        TransportErrorKind::Timeout,
                        format!("no connection to {host} was free before the call's deadline"),
                    )
                })?,
            None => turn.await,
        };
        // The semaphore is never closed.
        permit.map_err(|e| TransportError::new(TransportErrorKind::Other, e))
    }
}

/// Connects as hyper-util's [`HttpConnector`] does, but takes running out of file
/// descriptors (EMFILE, ENFILE) for back-pressure, not failure: sockets close as answers
/// come in, so it waits a little (longer each time, up to 100 ms) and connects again.
/// The request's timeout bounds the whole.
#[derive(Clone, Debug)]
struct PatientConnector(HttpConnector);

impl tower_service::Service<http::Uri> for PatientConnector {
    type Response = <HttpConnector as tower_service::Service<http::Uri>>::Response;
    type Error = <HttpConnector as tower_service::Service<http::Uri>>::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let mut connector = self.0.clone();
        Box::pin(async move {
            let mut pause = Duration::from_millis(5);
            loop {
                match connector.call(uri.clone()).await {
                    Err(e) if descriptors_ran_out(&e) => {
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(MAX_DESCRIPTOR_PAUSE);
                    }
                    connected => return connected,
                }
            }
        })
    }
}

/// Whether a connect failed because the process or system has no file descriptor left.
fn descriptors_ran_out(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if e.downcast_ref::<std::io::Error>()
            .is_some_and(out_of_file_descriptors)
        {
            return true;
        }
        cause = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A server that holds each request 50 ms and counts its connections open at once.
    async fn counting_server() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let most = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicUsize::new(0));
        let seen = most.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let (open, most) = (open.clone(), seen.clone());
                tokio::spawn(async move {
                    most.fetch_max(open.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = socket.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        if socket.write_all(answer).await.is_err() {
                            break;
                        }
                    }
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        (format!("http://{addr}/"), most)
    }

    /// 12 requests at once through a cap of 3: never more than 3 connections, every
    /// request answered.
    #[tokio::test(flavor = "multi_thread")]
    async fn requests_past_the_cap_wait_their_turn() {
        let (url, most) = counting_server().await;
        let transport = HyperTransport::builder()
            .max_connections_per_host(3)
            .build()
            .unwrap();
        let requests = (0..12).map(|_| {
            let (transport, url) = (transport.clone(), url.clone());
            tokio::spawn(async move {
                let request = http::Request::get(url).body(Bytes::new()).unwrap();
                let answer = transport.send(request).await.unwrap();
                answer.into_body().read_to_bytes(1024).await.unwrap()
            })
        });
        for request in requests {
            assert_eq!(&request.await.unwrap()[..], b"ok");
        }
        let most = most.load(Ordering::SeqCst);
        assert!((1..=3).contains(&most), "{most} connections at once");
    }

    /// A request whose turn does not come before its call's deadline ends then.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_turn_past_the_deadline_is_a_timeout() {
        let (url, _) = counting_server().await;
        let transport = HyperTransport::builder()
            .max_connections_per_host(1)
            .build()
            .unwrap();
        let held = transport
            .send(http::Request::get(url.clone()).body(Bytes::new()).unwrap())
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_millis(100);
        let late = http::Request::get(url)
            .extension(CallDeadline(deadline))
            .body(Bytes::new())
            .unwrap();
        let err = transport.send(late).await.unwrap_err();
        assert!(err.is_timeout(), "{err}");
        assert!(std::time::Instant::now() >= deadline);
        drop(held);
    }

    /// A refused connection reads as what caused it, not as hyper-util's `Debug` of
    /// its kind.
    #[tokio::test]
    async fn a_refused_connection_says_why() {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let request = http::Request::get(format!("http://{addr}/"))
            .body(Bytes::new())
            .unwrap();
        let err = HyperTransport::new()
            .unwrap()
            .send(request)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert_eq!(err.kind(), TransportErrorKind::Connect);
        assert!(
            !text.contains("(Connect)") && text.contains("refused"),
            "{text}"
        );
    }
}
