//! RFC 9457 problem details, with the extensions of the jobwire API.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where problem types live: `type` is this prefix followed by the [`Problem::code`].
pub const PROBLEM_TYPE_BASE: &str = "https://jobwire.dev/problems/";

/// The media type of a problem body.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// An RFC 9457 problem, as every jobwire error answer carries.
///
/// ```
/// use jobwire_core::Problem;
/// let p = Problem::new(404, "not_found", "Not Found").with_detail("no job job_x");
/// assert_eq!(p.type_uri, "https://jobwire.dev/problems/not_found");
/// let back: Problem = serde_json::from_slice(&serde_json::to_vec(&p).unwrap()).unwrap();
/// assert_eq!(back, p);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[serde(rename = "type", default)]
    pub type_uri: String,
    /// Short summary of the kind of problem.
    #[serde(default)]
    pub title: String,
    /// The HTTP status the server answered with.
    #[serde(default)]
    pub status: u16,
    /// What went wrong this time, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Machine-readable code: `not_found`, `validation_failed`, …
    #[serde(default)]
    pub code: String,
    /// Whether the same request may succeed if sent again later.
    #[serde(default)]
    pub retryable: bool,
    /// The server's id for the request, to quote in a bug report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// One entry per invalid field, for `validation_failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Members this version does not know, kept as they came.
    #[serde(flatten)]
    pub extensions: Map<String, Value>,
}

impl Problem {
    /// A problem with a status, a code and a title; `type` is derived from the code.
    pub fn new(status: u16, code: impl Into<String>, title: impl Into<String>) -> Self {
        let code = code.into();
        Problem {
            type_uri: format!("{PROBLEM_TYPE_BASE}{code}"),
            title: title.into(),
            status,
            detail: None,
            retryable: Problem::retryable_status(status),
            code,
            request_id: None,
            errors: Vec::new(),
            extensions: Map::new(),
        }
    }

    /// Whether an answer of this status may succeed when the request is sent again: the
    /// server was busy or a gateway failed (408, 429, 502, 503, 504). The one rule for
    /// the `retryable` member and for the SDK's retries.
    ///
    /// ```
    /// assert!(jobwire_core::Problem::retryable_status(503));
    /// assert!(!jobwire_core::Problem::retryable_status(422));
    /// ```
    pub fn retryable_status(status: u16) -> bool {
        status_meaning(status).retryable
    }

    /// The API's problem code for an HTTP status, for an error answer that came without
    /// a problem body (from a proxy, say).
    ///
    /// ```
    /// assert_eq!(jobwire_core::Problem::code_for_status(404), "not_found");
    /// assert_eq!(jobwire_core::Problem::code_for_status(418), "bad_request");
    /// assert_eq!(jobwire_core::Problem::code_for_status(502), "unavailable");
    /// assert_eq!(jobwire_core::Problem::code_for_status(500), "internal");
    /// ```
    pub fn code_for_status(status: u16) -> &'static str {
        status_meaning(status).code
    }

    /// The same problem with a detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The same problem with field errors.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.title, self.code)?;
        if let Some(detail) = &self.detail {
            write!(f, ": {detail}")?;
        }
        for e in &self.errors {
            write!(f, "; {e}")?;
        }
        Ok(())
    }
}

/// One invalid field of a request, by JSON pointer.
///
/// ```
/// let e = jobwire_core::FieldError::new("/duration_seconds", "must be a number");
/// assert_eq!(e.to_string(), "/duration_seconds: must be a number");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FieldError {
    /// JSON pointer (RFC 6901) into the request body's input.
    pub pointer: String,
    /// Why it is invalid.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(pointer: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.pointer, self.message)
    }
}

/// Which [`Error`](crate::Error) variant an error status becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StatusKind {
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    Validation,
    RateLimited,
    Other,
}

/// What the API makes of an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct StatusMeaning {
    /// The problem `code`.
    pub code: &'static str,
    /// Whether the same request may succeed when sent again.
    pub retryable: bool,
    /// The error variant.
    pub kind: StatusKind,
}

/// The one table of statuses: problem code, retryability and error variant together, so
/// they cannot disagree.
pub(crate) fn status_meaning(status: u16) -> StatusMeaning {
    use StatusKind::*;
    let (code, retryable, kind) = match status {
        401 => ("unauthorized", false, Unauthorized),
        403 => ("forbidden", false, Forbidden),
        404 => ("not_found", false, NotFound),
        408 => ("request_timeout", true, Other),
        409 => ("conflict", false, Conflict),
        410 => ("gone", false, Other),
        413 => ("payload_too_large", false, Other),
        422 => ("validation_failed", false, Validation),
        429 => ("rate_limited", true, RateLimited),
        507 => ("quota_exceeded", false, Other),
        // A gateway that failed or timed out: the service behind it is unavailable.
        502..=504 => ("unavailable", true, Other),
        400..=499 => ("bad_request", false, Other),
        _ => ("internal", false, Other),
    };
    StatusMeaning {
        code,
        retryable,
        kind,
    }
}
