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
    /// An answer body or an event was larger than the client accepts
    /// ([`max_body_bytes`](crate::ClientConfig::max_body_bytes),
    /// [`max_event_bytes`](crate::ClientConfig::max_event_bytes)); nothing of it was kept.
    #[error("{what} larger than the client's limit of {limit} bytes")]
    TooLarge {
        /// What was too large: `an answer body`, `an event`.
        what: &'static str,
        /// The limit in force, in bytes.
        limit: usize,
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
        Some(after) => format!("the server asks to retry after {}", duration_text(after)),
        None => "no Retry-After".to_owned(),
    }
}

/// A duration as error messages write it: `250 ms`, `2 s`, `1.5 s`, `90 µs` — never
/// `Debug`'s `1.5s` or `Some(2s)`.
///
/// ```
/// use std::time::Duration;
/// use jobwire_core::error::duration_text;
/// assert_eq!(duration_text(Duration::from_millis(1500)), "1.5 s");
/// assert_eq!(duration_text(Duration::from_millis(250)), "250 ms");
/// assert_eq!(duration_text(Duration::from_secs(u64::MAX)), "18446744073709551615 s");
/// ```
pub fn duration_text(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        // Whole milliseconds, without trailing zeros: 1 s, 1.5 s, 1.25 s.
        let millis = d.subsec_millis();
        if millis == 0 {
            format!("{} s", d.as_secs())
        } else {
            let fraction = format!("{millis:03}");
            format!("{}.{} s", d.as_secs(), fraction.trim_end_matches('0'))
        }
    } else if d >= Duration::from_millis(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} µs", d.as_micros())
    }
}

/// A value from elsewhere (a server, a caller) quoted for a message: in single quotes,
/// with control characters escaped, so a hostile value cannot forge lines of a log.
///
/// ```
/// assert_eq!(jobwire_core::error::quoted("a\nb"), "'a\\nb'");
/// ```
pub fn quoted(value: &str) -> String {
    format!("'{}'", value.escape_debug())
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
            Error::TooLarge { .. } => "too_large",
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::{decode_json, error_from_response};
    use crate::{Job, JobStatus};

    /// Whether `text` has a duration as `Debug` writes it: digits then `s`, `ms`, `µs`
    /// or `ns` with no space between (`2s`, `1.5s`, `250ms`).
    fn has_debug_duration(text: &str) -> bool {
        let chars: Vec<char> = text.chars().collect();
        (1..chars.len()).any(|i| {
            let unit_at = |unit: &str| {
                let unit: Vec<char> = unit.chars().collect();
                chars[i..].starts_with(&unit)
                    && chars
                        .get(i + unit.len())
                        .map_or(true, |c| !c.is_alphanumeric())
            };
            chars[i - 1].is_ascii_digit()
                && (unit_at("s") || unit_at("ms") || unit_at("µs") || unit_at("ns"))
        })
    }

    /// Names the variant: a new variant does not compile until it has a row below.
    fn variant(e: &Error) -> &'static str {
        match e {
            Error::NotFound { .. } => "NotFound",
            Error::Unauthorized { .. } => "Unauthorized",
            Error::Forbidden { .. } => "Forbidden",
            Error::Conflict { .. } => "Conflict",
            Error::Validation { .. } => "Validation",
            Error::RateLimited { .. } => "RateLimited",
            Error::Api { .. } => "Api",
            Error::Timeout { .. } => "Timeout",
            Error::Transport(_) => "Transport",
            Error::Decode { .. } => "Decode",
            Error::TooLarge { .. } => "TooLarge",
            Error::Protocol(_) => "Protocol",
            Error::JobFailed { .. } => "JobFailed",
            Error::JobCancelled { .. } => "JobCancelled",
            Error::Invalid { .. } => "Invalid",
            Error::Closed => "Closed",
        }
    }

    fn answer(status: u16, headers: &[(&str, &str)], body: &str) -> http::Response<Bytes> {
        let mut b = http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Bytes::from(body.to_owned())).unwrap()
    }

    /// Every variant, made where the SDK makes it, reads as text for people: no
    /// `Some(…)`, no `None`, no `Debug` durations (`2s`), values in single quotes.
    #[test]
    fn every_error_displays_without_debug_text() {
        let problem = |code: &str| {
            format!(
                r#"{{"type":"x","title":"T","status":0,"code":"{code}","detail":"d","request_id":"r"}}"#
            )
        };
        let invalid = r#"{"title":"Unprocessable Entity","code":"validation_failed","errors":[{"pointer":"/n","message":"is required"}]}"#;
        let mut failed = Job::new("job_1", "s", JobStatus::Failed);
        failed.error = Some(crate::JobError {
            message: "boom".into(),
            code: Some("fail".into()),
        });
        let mut failed_no_code = failed.clone();
        failed_no_code.error = Some(crate::JobError::new("boom"));
        let bad_event = crate::sse::SseEvent {
            event: "log".into(),
            data: "not json".into(),
            id: "5\n".into(),
        };
        let mut pager = crate::paging::Pager::new(None);
        pager.advance(Some("c".into())).unwrap();
        let config = |url: &str| crate::ClientConfig::default().base_url(url).validate();
        let silent = {
            let t0 = std::time::Instant::now();
            let mut f = crate::follow::Follower::new(
                crate::follow::StreamTarget::all(),
                Duration::from_millis(1500),
                1,
            );
            use crate::stream::EventProtocol;
            let mut error = None;
            for _ in 0..20 {
                f.on_silence(t0);
                if let crate::stream::StreamStep::Yield(crate::follow::FollowOutput::Fail(e)) =
                    f.step(t0)
                {
                    error = Some(e);
                    break;
                }
            }
            error.unwrap()
        };
        let plan = crate::wait::WaitPlan::new(None, &crate::ClientConfig::default());
        let running = crate::JobSnapshot::new(Job::new("job_2", "s", JobStatus::Running), None);
        let errors: Vec<Error> = vec![
            error_from_response(&answer(404, &[], &problem("not_found"))),
            error_from_response(&answer(401, &[], &problem("unauthorized"))),
            error_from_response(&answer(403, &[], &problem("forbidden"))),
            error_from_response(&answer(409, &[], &problem("conflict"))),
            error_from_response(&answer(422, &[], invalid)),
            error_from_response(&answer(
                429,
                &[("retry-after", "2")],
                &problem("rate_limited"),
            )),
            error_from_response(&answer(429, &[], "")),
            Error::RateLimited {
                retry_after: Some(Duration::from_millis(1500)),
                problem: Box::new(Problem::new(429, "rate_limited", "Too Many Requests")),
            },
            error_from_response(&answer(502, &[], "<html>bad gateway</html>")),
            error_from_response(&answer(503, &[], "")),
            Error::from(TransportError::new(
                TransportErrorKind::Timeout,
                "no complete answer within 30 s",
            )),
            crate::deadline::deadline_passed(),
            plan.timed_out(&running),
            silent,
            Error::from(TransportError::from_io(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            ))),
            decode_json::<Job>(answer(200, &[], "{not json")).unwrap_err(),
            crate::event::JobEvent::from_sse(&bad_event).unwrap_err(),
            crate::transport::BodyError::TooLarge { limit: 10 }.into_error(http::StatusCode::OK),
            Error::TooLarge {
                what: "an event",
                limit: 1 << 20,
            },
            crate::event::JobEvent::from_sse(&crate::sse::SseEvent {
                event: "log".into(),
                data: r#"{"job_id":"j","line":"l"}"#.into(),
                id: "x".into(),
            })
            .unwrap_err(),
            pager.advance(Some("c".into())).unwrap_err(),
            crate::outcome::job_result::<serde_json::Value>(&failed).unwrap_err(),
            crate::outcome::job_result::<serde_json::Value>(&failed_no_code).unwrap_err(),
            crate::outcome::job_result::<serde_json::Value>(&Job::new(
                "job_3",
                "s",
                JobStatus::Cancelled,
            ))
            .unwrap_err(),
            config("ftp://h").unwrap_err(),
            config("http://h/?q").unwrap_err(),
            crate::ClientConfig::default()
                .timeout(Duration::ZERO)
                .validate()
                .unwrap_err(),
            crate::ClientConfig::default()
                .max_connections_per_host(0)
                .validate()
                .unwrap_err(),
            crate::options::CallOptions::default()
                .header("bad name", "v")
                .add_headers(&mut http::Request::new(Bytes::new()))
                .unwrap_err(),
            Error::Closed,
        ];
        let mut seen = std::collections::BTreeSet::new();
        for error in &errors {
            seen.insert(variant(error));
            let text = error.to_string();
            assert!(!text.contains("Some("), "{text}");
            assert!(!text.contains("None"), "{text}");
            assert!(!has_debug_duration(&text), "{text}");
            assert!(!text.is_empty());
        }
        assert_eq!(seen.len(), 16, "every variant: {seen:?}");
        // Spot checks of the wording.
        let text = |i: usize| errors[i].to_string();
        assert!(text(5).contains("retry after 2 s"), "{}", text(5));
        assert!(text(6).contains("no Retry-After"), "{}", text(6));
        assert!(text(7).contains("retry after 1.5 s"), "{}", text(7));
        assert!(text(13).contains("silent for 1.5 s"), "{}", text(13));
        assert!(text(16).contains("'5\\n'"), "{}", text(16));
        assert!(text(24).contains("'ftp://h'"), "{}", text(24));
        assert!(!has_debug_duration("2 s, 250 ms, os error 111, job_1"));
        assert!(has_debug_duration("after 2s") && has_debug_duration("(250ms)"));
    }
}
