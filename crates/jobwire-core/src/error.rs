//! The one error type every jobwire call returns, whatever the transport or facade.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use crate::model::JobError;
use crate::problem::{Problem, StatusKind};

/// A boxed error from below the SDK (a socket, a TLS stack, a user's transport).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in a jobwire call.
///
/// Match on the variant to tell a missing resource from a refused request:
///
/// ```
/// use jobwire_core::{Error, Problem};
/// let err = Error::from_problem(Problem::new(404, "not_found", "Not Found"), None);
/// match err {
///     Error::NotFound { .. } => {}
///     other => panic!("unexpected {other}"),
/// }
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The service, job or route does not exist (or belongs to another tenant).
    #[error("not found: {problem}")]
    NotFound {
        /// The server's explanation.
        problem: Box<Problem>,
    },
    /// The token is missing or not valid.
    #[error("unauthorized: {problem}")]
    Unauthorized {
        /// The server's explanation.
        problem: Box<Problem>,
    },
    /// The token is valid, but the server refuses this caller the operation (a server
    /// that does not run programs asked to register a command service; deleting a
    /// built-in service).
    #[error("forbidden: {problem}")]
    Forbidden {
        /// The server's explanation.
        problem: Box<Problem>,
    },
    /// The request conflicts with what the server holds: a service name already taken,
    /// an idempotency key still being answered.
    #[error("conflict: {problem}")]
    Conflict {
        /// The server's explanation.
        problem: Box<Problem>,
    },
    /// The server refused what the request says (422): `problem.errors` names each
    /// failing field by JSON pointer — an input that does not match its service's
    /// schema, a service spec with an invalid part.
    #[error("rejected: {problem}")]
    Validation {
        /// The server's explanation, with one [`FieldError`](crate::FieldError) per
        /// failing field.
        problem: Box<Problem>,
    },
    /// The server asks the client to slow down.
    #[error("rate limited ({}): {problem}", retry_hint(*.retry_after))]
    RateLimited {
        /// How long the server asked to wait, from `Retry-After`.
        retry_after: Option<Duration>,
        /// The server's explanation.
        problem: Box<Problem>,
    },
    /// Any other error answer of the API.
    #[error("API error {status}: {problem}")]
    Api {
        /// The HTTP status.
        status: http::StatusCode,
        /// The server's explanation (synthesised when the body was not a problem).
        problem: Box<Problem>,
    },
    /// The call, or the wait for a job, did not finish before its deadline.
    #[error("timed out: {what}")]
    Timeout {
        /// What was being waited for.
        what: String,
    },
    /// The request never got an HTTP answer: connect, I/O or another transport failure.
    #[error(transparent)]
    Transport(TransportError),
    /// An answer arrived but could not be decoded; the raw body is kept.
    #[error("could not decode the answer (HTTP {status}): {message}")]
    Decode {
        /// The HTTP status of the answer.
        status: http::StatusCode,
        /// What did not fit.
        message: String,
        /// The body as received (at most the body limit).
        body: Bytes,
    },
    /// The server answered something the protocol does not allow (e.g. a cursor that
    /// does not advance).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// The job reached `failed`.
    #[error("job {job_id} failed: {error}")]
    JobFailed {
        /// The job's id.
        job_id: String,
        /// Why the service says it failed.
        error: JobError,
    },
    /// The job reached `cancelled`.
    #[error("job {job_id} was cancelled")]
    JobCancelled {
        /// The job's id.
        job_id: String,
    },
    /// An argument or a setting of the caller is not valid; nothing was sent.
    #[error("invalid {what}: {message}")]
    Invalid {
        /// Which argument or setting.
        what: &'static str,
        /// Why it is not valid.
        message: String,
    },
    /// The client was closed (`client.close()`): it sends nothing more.
    #[error("the client is closed")]
    Closed,
}

impl From<TransportError> for Error {
    /// A transport's own timeout becomes [`Error::Timeout`], so callers match one variant.
    fn from(err: TransportError) -> Self {
        if err.is_timeout() {
            Error::Timeout {
                what: format!("request ({})", err.source),
            }
        } else {
            Error::Transport(err)
        }
    }
}

/// What a rate-limited error says of the server's `Retry-After`.
fn retry_hint(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(after) => format!("the server asks to retry after {after:?}"),
        None => "no Retry-After".to_owned(),
    }
}

impl Error {
    /// Maps an error answer's problem to the variant that says what happened.
    pub fn from_problem(problem: Problem, retry_after: Option<Duration>) -> Error {
        let status =
            http::StatusCode::from_u16(problem.status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        let problem = Box::new(problem);
        match crate::problem::status_meaning(status.as_u16()).kind {
            StatusKind::Unauthorized => Error::Unauthorized { problem },
            StatusKind::Forbidden => Error::Forbidden { problem },
            StatusKind::NotFound => Error::NotFound { problem },
            StatusKind::Conflict => Error::Conflict { problem },
            StatusKind::Validation => Error::Validation { problem },
            StatusKind::RateLimited => Error::RateLimited {
                retry_after,
                problem,
            },
            StatusKind::Other => Error::Api { status, problem },
        }
    }

    pub(crate) fn invalid(what: &'static str, message: impl Into<String>) -> Error {
        Error::Invalid {
            what,
            message: message.into(),
        }
    }

    /// The problem the server answered with, for every variant that has one.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Error::NotFound { problem }
            | Error::Unauthorized { problem }
            | Error::Forbidden { problem }
            | Error::Conflict { problem }
            | Error::Validation { problem }
            | Error::RateLimited { problem, .. }
            | Error::Api { problem, .. } => Some(problem),
            _ => None,
        }
    }

    /// The variant as a short name (`not_found`, `job_failed`, `timeout`, …), for
    /// counting failures by kind and for logs.
    ///
    /// ```
    /// let e = jobwire_core::Error::Timeout { what: "a job".into() };
    /// assert_eq!(e.kind_name(), "timeout");
    /// ```
    pub fn kind_name(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not_found",
            Error::Unauthorized { .. } => "unauthorized",
            Error::Forbidden { .. } => "forbidden",
            Error::Conflict { .. } => "conflict",
            Error::Validation { .. } => "validation",
            Error::RateLimited { .. } => "rate_limited",
            Error::Api { .. } => "api",
            Error::Timeout { .. } => "timeout",
            Error::Transport(_) => "transport",
            Error::Decode { .. } => "decode",
            Error::Protocol(_) => "protocol",
            Error::JobFailed { .. } => "job_failed",
            Error::JobCancelled { .. } => "job_cancelled",
            Error::Invalid { .. } => "invalid",
            Error::Closed => "closed",
        }
    }

    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<http::StatusCode> {
        match self {
            Error::Decode { status, .. } | Error::Api { status, .. } => Some(*status),
            Error::NotFound { .. } => Some(http::StatusCode::NOT_FOUND),
            Error::Unauthorized { .. } => Some(http::StatusCode::UNAUTHORIZED),
            Error::Forbidden { .. } => Some(http::StatusCode::FORBIDDEN),
            Error::Conflict { .. } => Some(http::StatusCode::CONFLICT),
            Error::Validation { .. } => Some(http::StatusCode::UNPROCESSABLE_ENTITY),
            Error::RateLimited { .. } => Some(http::StatusCode::TOO_MANY_REQUESTS),
            _ => None,
        }
    }
}

/// What kind of transport failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// No connection could be made (refused, DNS, TLS handshake).
    Connect,
    /// The transport's own timeout fired (connect or per-request).
    Timeout,
    /// The connection broke while sending or receiving.
    Io,
    /// Anything else (a bad request the transport refused, a custom transport's error).
    Other,
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportErrorKind::Connect => "connect",
            TransportErrorKind::Timeout => "timeout",
            TransportErrorKind::Io => "i/o",
            TransportErrorKind::Other => "transport",
        })
    }
}

/// A failure below HTTP, as a transport reports it.
///
/// ```
/// use jobwire_core::{TransportError, TransportErrorKind};
/// let e = TransportError::new(TransportErrorKind::Connect, "connection refused");
/// assert_eq!(e.kind(), TransportErrorKind::Connect);
/// assert_eq!(e.to_string(), "connect error: connection refused");
/// ```
#[derive(Debug, thiserror::Error)]
#[error("{kind} error: {source}")]
pub struct TransportError {
    kind: TransportErrorKind,
    #[source]
    source: BoxError,
}

impl TransportError {
    /// A transport error of a kind, from anything that can be an error (a `&str` too).
    pub fn new(kind: TransportErrorKind, source: impl Into<BoxError>) -> Self {
        TransportError {
            kind,
            source: source.into(),
        }
    }

    /// Which kind of failure this is.
    pub fn kind(&self) -> TransportErrorKind {
        self.kind
    }

    /// Whether the transport's own timeout fired.
    pub fn is_timeout(&self) -> bool {
        self.kind == TransportErrorKind::Timeout
    }

    /// Classifies an I/O error by its kind.
    pub fn from_io(err: std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        let kind = match err.kind() {
            K::TimedOut | K::WouldBlock => TransportErrorKind::Timeout,
            K::ConnectionRefused | K::AddrNotAvailable | K::NotFound => TransportErrorKind::Connect,
            _ => TransportErrorKind::Io,
        };
        TransportError::new(kind, err)
    }
}
