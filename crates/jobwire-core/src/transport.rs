//! The two transport traits: how an [`http::Request`] becomes an [`http::Response`].
//!
//! The SDK builds every request and reads every answer itself; a transport only moves
//! bytes. It owns connecting, pooling, TLS and its timeouts; the SDK owns deadlines,
//! waiting and paging. Both traits are object safe and implemented for closures, so a
//! custom transport (a proxy, a test double, another HTTP stack) is a few lines:
//!
//! ```
//! use bytes::Bytes;
//! use jobwire_core::transport::{Body, Transport};
//! use jobwire_core::TransportError;
//!
//! let canned = |_req: http::Request<Bytes>| -> Result<http::Response<Body>, TransportError> {
//!     Ok(http::Response::new(Body::from(r#"{"status":"ok","version":"test"}"#)))
//! };
//! let transport: &dyn Transport = &canned;
//! let answer = transport.send(http::Request::new(Bytes::new())).unwrap();
//! assert_eq!(answer.status(), 200);
//! ```

use std::future::Future;
use std::io::Read;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_core::Stream;

use crate::error::{Error, TransportError, TransportErrorKind};

/// The attribute for implementing [`AsyncTransport`] with an `async fn`.
pub use async_trait::async_trait;

/// How long a transport may take for one request, put in the request's extensions by
/// the SDK. Long-polls carry a longer one than plain calls; transports must honour it.
///
/// ```
/// use std::time::Duration;
/// use jobwire_core::transport::RequestTimeout;
/// let mut req = http::Request::new(bytes::Bytes::new());
/// req.extensions_mut().insert(RequestTimeout(Duration::from_secs(5)));
/// assert_eq!(RequestTimeout::of(&req), Some(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTimeout(pub Duration);

impl RequestTimeout {
    /// The timeout a request carries, if any.
    pub fn of<B>(request: &http::Request<B>) -> Option<Duration> {
        request.extensions().get::<RequestTimeout>().map(|t| t.0)
    }
}

/// Put in a request's extensions when its call must end by an instant (a client's
/// `within`): a transport that holds requests back — waiting for a free connection to
/// the host, or for file descriptors — stops waiting then, with a timeout error. The
/// wait itself does not count against the [`RequestTimeout`], which bounds the exchange
/// with the server once it starts: a request that waits its turn does not fail.
///
/// ```
/// use std::time::{Duration, Instant};
/// use jobwire_core::transport::CallDeadline;
/// let mut req = http::Request::new(bytes::Bytes::new());
/// let end = Instant::now() + Duration::from_secs(5);
/// req.extensions_mut().insert(CallDeadline(end));
/// assert_eq!(CallDeadline::of(&req), Some(end));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallDeadline(pub std::time::Instant);

impl CallDeadline {
    /// The deadline a request carries, if any.
    pub fn of<B>(request: &http::Request<B>) -> Option<std::time::Instant> {
        request.extensions().get::<CallDeadline>().map(|d| d.0)
    }
}

/// For an answer that streams without end (an event stream), put in the request's
/// extensions: how long the transport may wait for the answer's head, and then for each
/// next piece of its body. Transports must honour it: it is how a stream that goes
/// silent is noticed (the SDK then reconnects). A stream under a call's deadline carries
/// a [`RequestTimeout`] as well, the whole answer's bound: transports end the stream
/// with a timeout then, however its pieces come.
///
/// ```
/// use std::time::Duration;
/// use jobwire_core::transport::ReadTimeout;
/// let mut req = http::Request::new(bytes::Bytes::new());
/// req.extensions_mut().insert(ReadTimeout(Duration::from_secs(45)));
/// assert_eq!(ReadTimeout::of(&req), Some(Duration::from_secs(45)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadTimeout(pub Duration);

impl ReadTimeout {
    /// The read timeout a request carries, if any.
    pub fn of<B>(request: &http::Request<B>) -> Option<Duration> {
        request.extensions().get::<ReadTimeout>().map(|t| t.0)
    }
}

/// A blocking transport: sends one request, returns the answer's head and a body that
/// is read incrementally. HTTP error statuses are answers, not errors.
pub trait Transport: Send + Sync {
    /// Sends `request` and returns the answer, or a failure below HTTP.
    fn send(&self, request: http::Request<Bytes>) -> Result<http::Response<Body>, TransportError>;
}

impl<F> Transport for F
where
    F: Fn(http::Request<Bytes>) -> Result<http::Response<Body>, TransportError> + Send + Sync,
{
    fn send(&self, request: http::Request<Bytes>) -> Result<http::Response<Body>, TransportError> {
        self(request)
    }
}

/// An async transport: the same contract as [`Transport`], with a `Send` future (so it
/// works inside any handler and on any task) and a streamed body. Implement it with an
/// `async fn` under [`macro@async_trait`], or pass a closure that returns a future:
///
/// ```
/// use bytes::Bytes;
/// use jobwire_core::transport::{async_trait, AsyncBody, AsyncTransport};
/// use jobwire_core::TransportError;
///
/// struct Canned;
///
/// #[async_trait]
/// impl AsyncTransport for Canned {
///     async fn send(
///         &self,
///         _request: http::Request<Bytes>,
///     ) -> Result<http::Response<AsyncBody>, TransportError> {
///         Ok(http::Response::new(AsyncBody::from("{}")))
///     }
/// }
///
/// let closure = |_req: http::Request<Bytes>| async {
///     Ok::<_, TransportError>(http::Response::new(AsyncBody::from("{}")))
/// };
/// let transports: Vec<Box<dyn AsyncTransport>> = vec![Box::new(Canned), Box::new(closure)];
/// # let _ = transports;
/// ```
#[async_trait]
pub trait AsyncTransport: Send + Sync {
    /// Sends `request`: the answer, or a failure below HTTP.
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<AsyncBody>, TransportError>;
}

#[async_trait]
impl<F, Fut> AsyncTransport for F
where
    F: Fn(http::Request<Bytes>) -> Fut + Send + Sync,
    Fut: Future<Output = Result<http::Response<AsyncBody>, TransportError>> + Send,
{
    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<AsyncBody>, TransportError> {
        self(request).await
    }
}

/// The body of a blocking answer: in memory, or a reader the transport streams from.
pub struct Body {
    inner: BodyInner,
}

enum BodyInner {
    Bytes(std::io::Cursor<Bytes>),
    Reader(Box<dyn Read + Send>),
}

impl Body {
    /// An empty body.
    pub fn empty() -> Self {
        Body::from(Bytes::new())
    }

    /// A body read incrementally from `reader`.
    pub fn from_reader(reader: impl Read + Send + 'static) -> Self {
        Body {
            inner: BodyInner::Reader(Box::new(reader)),
        }
    }

    /// Reads the next piece of the body into `buf`: `Ok(0)` at its end. A failure keeps
    /// the transport's classification (a read timeout stays a timeout).
    ///
    /// ```
    /// let mut body = jobwire_core::transport::Body::from("abc");
    /// let mut buf = [0u8; 8];
    /// assert_eq!(body.read_chunk(&mut buf).unwrap(), 3);
    /// assert_eq!(body.read_chunk(&mut buf).unwrap(), 0);
    /// ```
    pub fn read_chunk(&mut self, buf: &mut [u8]) -> Result<usize, TransportError> {
        loop {
            match self.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => return other.map_err(transport_error_from_io),
            }
        }
    }

    /// Reads the whole body, failing once it grows past `limit` bytes.
    pub fn read_to_bytes(mut self, limit: usize) -> Result<Bytes, BodyError> {
        if let BodyInner::Bytes(cursor) = &self.inner {
            let bytes = cursor.get_ref().clone();
            return check_limit(bytes, limit);
        }
        // Straight into the buffer (no zeroed bounce buffer, no second copy); one byte
        // past the limit says the body is too large.
        let mut buf = Vec::new();
        let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
        (&mut self)
            .take(cap)
            .read_to_end(&mut buf)
            .map_err(|e| BodyError::Transport(transport_error_from_io(e)))?;
        if buf.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        Ok(Bytes::from(buf))
    }
}

/// Unwraps the [`TransportError`] a transport's reader may carry inside an I/O error.
fn transport_error_from_io(e: std::io::Error) -> TransportError {
    if e.get_ref()
        .is_some_and(|inner| inner.is::<TransportError>())
    {
        if let Some(inner) = e.into_inner() {
            if let Ok(te) = inner.downcast::<TransportError>() {
                return *te;
            }
            return TransportError::new(TransportErrorKind::Io, "body read failed");
        }
        return TransportError::new(TransportErrorKind::Io, "body read failed");
    }
    TransportError::from_io(e)
}

fn check_limit(bytes: Bytes, limit: usize) -> Result<Bytes, BodyError> {
    if bytes.len() > limit {
        Err(BodyError::TooLarge { limit })
    } else {
        Ok(bytes)
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.inner {
            BodyInner::Bytes(cursor) => cursor.read(buf),
            BodyInner::Reader(reader) => reader.read(buf),
        }
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Body { .. }")
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body {
            inner: BodyInner::Bytes(std::io::Cursor::new(bytes)),
        }
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Self {
        Body::from(Bytes::from_static(s.as_bytes()))
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Body::from(Bytes::from(v))
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<Bytes, TransportError>> + Send>>;

/// The body of an async answer: a stream of byte chunks.
pub struct AsyncBody {
    chunks: ChunkStream,
}

impl AsyncBody {
    /// A body streamed chunk by chunk.
    pub fn from_stream(
        stream: impl Stream<Item = Result<Bytes, TransportError>> + Send + 'static,
    ) -> Self {
        AsyncBody {
            chunks: Box::pin(stream),
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        AsyncBody::from(Bytes::new())
    }

    /// The next chunk, `None` at the end of the body.
    pub async fn next_chunk(&mut self) -> Option<Result<Bytes, TransportError>> {
        std::future::poll_fn(|cx| self.chunks.as_mut().poll_next(cx)).await
    }

    /// Reads the whole body, failing once it grows past `limit` bytes.
    pub async fn read_to_bytes(mut self, limit: usize) -> Result<Bytes, BodyError> {
        let mut buf = BytesMut::new();
        while let Some(chunk) = self.next_chunk().await {
            let chunk = chunk.map_err(BodyError::Transport)?;
            if buf.len().saturating_add(chunk.len()) > limit {
                return Err(BodyError::TooLarge { limit });
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    }
}

impl Stream for AsyncBody {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.chunks.as_mut().poll_next(cx)
    }
}

impl std::fmt::Debug for AsyncBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AsyncBody { .. }")
    }
}

struct Once(Option<Bytes>);

impl Stream for Once {
    type Item = Result<Bytes, TransportError>;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.take().filter(|b| !b.is_empty()).map(Ok))
    }
}

impl From<Bytes> for AsyncBody {
    fn from(bytes: Bytes) -> Self {
        AsyncBody::from_stream(Once(Some(bytes)))
    }
}

impl From<&'static str> for AsyncBody {
    fn from(s: &'static str) -> Self {
        AsyncBody::from(Bytes::from_static(s.as_bytes()))
    }
}

impl From<Vec<u8>> for AsyncBody {
    fn from(v: Vec<u8>) -> Self {
        AsyncBody::from(Bytes::from(v))
    }
}

/// Whether an I/O error says the process (EMFILE) or the system (ENFILE) is out of file
/// descriptors: for a transport, a reason to wait and connect again — sockets close as
/// answers come in — rather than to fail the request.
///
/// ```
/// use jobwire_core::transport::out_of_file_descriptors;
/// # #[cfg(unix)]
/// assert!(out_of_file_descriptors(&std::io::Error::from_raw_os_error(24)));
/// assert!(!out_of_file_descriptors(&std::io::Error::from(std::io::ErrorKind::ConnectionRefused)));
/// ```
pub fn out_of_file_descriptors(error: &std::io::Error) -> bool {
    // EMFILE and ENFILE are 24 and 23 on Linux, the BSDs and macOS; WSAEMFILE on Windows.
    #[cfg(unix)]
    const CODES: [i32; 2] = [24, 23];
    #[cfg(windows)]
    const CODES: [i32; 1] = [10024];
    #[cfg(not(any(unix, windows)))]
    const CODES: [i32; 0] = [];
    error
        .raw_os_error()
        .is_some_and(|code| CODES.contains(&code))
}

/// Why a body could not be read whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body is larger than the client accepts.
    #[error("answer body larger than {limit} bytes")]
    TooLarge {
        /// The limit in force.
        limit: usize,
    },
    /// The transport failed while the body streamed.
    #[error(transparent)]
    Transport(TransportError),
}

impl BodyError {
    /// The [`Error`] for an answer of `status` whose body could not be read.
    pub fn into_error(self, _status: http::StatusCode) -> Error {
        match self {
            BodyError::TooLarge { limit } => Error::TooLarge {
                what: "an answer body",
                limit,
            },
            BodyError::Transport(e) => Error::from(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocking_body_enforces_limit_for_readers_and_bytes() {
        let body = Body::from_reader(std::io::Cursor::new(vec![7u8; 100]));
        assert!(matches!(
            body.read_to_bytes(99),
            Err(BodyError::TooLarge { limit: 99 })
        ));
        let body = Body::from_reader(std::io::Cursor::new(vec![7u8; 100]));
        assert_eq!(body.read_to_bytes(100).unwrap().len(), 100);
        assert!(Body::from(vec![1u8; 10]).read_to_bytes(9).is_err());
    }

    #[test]
    fn reader_error_keeps_transport_error_kind() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other(TransportError::new(
                    TransportErrorKind::Timeout,
                    "stalled",
                )))
            }
        }
        match Body::from_reader(Broken).read_to_bytes(10) {
            Err(BodyError::Transport(e)) => assert!(e.is_timeout()),
            other => panic!("unexpected {other:?}"),
        }
    }
}
