//! Error answers as RFC 9457 problems (`application/problem+json`), built from
//! [`jobwire_core::Problem`].
//!
//! Handlers return [`ApiError`]. Its response carries the [`Problem`] in an extension and
//! no body yet; the request middleware ([`finish`]) fills in `request_id` and writes the
//! body, so every problem names its request. The same middleware turns any other error
//! answer (a framework rejection, say) into a problem, so clients only ever see problems.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, StatusCode};
use jobwire_core::problem::PROBLEM_CONTENT_TYPE;
use jobwire_core::{FieldError, Problem};

/// An error answer of the API (boxed: it travels in every handler's `Result`).
#[derive(Debug, Clone)]
pub(crate) struct ApiError(Box<Inner>);

#[derive(Debug, Clone)]
struct Inner {
    problem: Problem,
    headers: HeaderMap,
}

/// The problem of an error response, waiting for its `request_id` (see [`finish`]).
#[derive(Debug, Clone)]
pub(crate) struct PendingProblem(pub Problem);

impl ApiError {
    fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        let title = status.canonical_reason().unwrap_or("Error");
        ApiError(Box::new(Inner {
            problem: Problem::new(status.as_u16(), code, title).with_detail(detail),
            headers: HeaderMap::new(),
        }))
    }

    /// 400 `bad_request`.
    pub(crate) fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    /// 401 `unauthorized`, with `WWW-Authenticate: Bearer`.
    pub(crate) fn unauthorized(detail: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "unauthorized", detail);
        e.0.headers
            .insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        e
    }

    /// 403 `forbidden`: the caller may not do this here.
    pub(crate) fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }

    /// 404 `not_found`.
    pub(crate) fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 405 with code `bad_request` (the API has no code of its own for it) and `Allow`.
    pub(crate) fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "bad_request", detail)
    }

    /// 408 `request_timeout`: the body did not arrive in time. The connection is closed
    /// after the answer (what is left of the body is not worth reading).
    pub(crate) fn request_timeout(limit: std::time::Duration) -> Self {
        let mut e = Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {} s",
                limit.as_secs_f64()
            ),
        );
        e.0.headers
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        e
    }

    /// 409 `conflict`.
    pub(crate) fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", detail)
    }

    /// 410 `gone`: what was asked for existed, and is no longer kept.
    pub(crate) fn gone(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::GONE, "gone", detail)
    }

    /// 413 `payload_too_large`.
    pub(crate) fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    }

    /// 422 `validation_failed` with one entry per invalid field.
    pub(crate) fn validation(detail: impl Into<String>, errors: Vec<FieldError>) -> Self {
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            detail,
        );
        e.0.problem.errors = errors;
        e
    }

    /// 429 `rate_limited`, with `Retry-After: 1`.
    pub(crate) fn rate_limited(detail: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", detail);
        e.0.headers
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        e
    }

    /// 503 `unavailable`, with `Retry-After: 1`.
    pub(crate) fn unavailable(detail: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail);
        e.0.headers
            .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        e
    }

    /// 507 `quota_exceeded`: the tenant stores its quota of bytes already. Not
    /// retryable soon: room comes back only as retention removes old jobs.
    pub(crate) fn quota_exceeded(used: u64, limit: u64) -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "quota_exceeded",
            format!(
                "the tenant stores {used} bytes of jobs and events, and may store {limit}; \
                 no new job is accepted until retention removes old ones (the jobs already \
                 accepted keep everything they record)"
            ),
        )
    }

    /// 500 `internal`. The detail stays generic: the cause goes to the log, not the client.
    pub(crate) fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the server failed to handle the request; quote the request_id when reporting it",
        )
    }

    /// The same error with one more header on its answer.
    pub(crate) fn with_header(mut self, name: http::HeaderName, value: HeaderValue) -> Self {
        self.0.headers.insert(name, value);
        self
    }

    /// The problem to send.
    #[cfg(test)]
    pub(crate) fn problem(&self) -> &Problem {
        &self.0.problem
    }
}

impl From<Problem> for ApiError {
    /// A problem made elsewhere (the input check shared with the SDK), sent as it is.
    fn from(problem: Problem) -> Self {
        ApiError(Box::new(Inner {
            problem,
            headers: HeaderMap::new(),
        }))
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        ApiError::internal()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let Inner { problem, headers } = *self.0;
        let status =
            StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = Response::new(Body::empty());
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        response.extensions_mut().insert(PendingProblem(problem));
        response
    }
}

/// The code of a problem made for an error response that did not come with one.
fn code_for(status: StatusCode) -> &'static str {
    Problem::code_for_status(status.as_u16())
}

/// Writes the body of an error response: the pending problem with `request_id` set, or,
/// for an error response that has no problem (a framework's own), a problem made from
/// its status and plain-text body.
pub(crate) async fn finish(response: Response, request_id: &str) -> Response {
    let (mut parts, body) = response.into_parts();
    let problem = match parts.extensions.remove::<PendingProblem>() {
        Some(PendingProblem(problem)) => problem,
        None if parts.status.is_client_error() || parts.status.is_server_error() => {
            let already_problem = parts
                .headers
                .get(CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(PROBLEM_CONTENT_TYPE.as_bytes()));
            if already_problem {
                return Response::from_parts(parts, body);
            }
            let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
            let title = parts.status.canonical_reason().unwrap_or("Error");
            let mut problem = Problem::new(parts.status.as_u16(), code_for(parts.status), title);
            if parts.status.is_client_error() && !text.is_empty() {
                problem = problem.with_detail(String::from_utf8_lossy(&text).trim().to_owned());
            }
            problem
        }
        None => return Response::from_parts(parts, body),
    };
    let mut problem = problem;
    problem.request_id = Some(request_id.to_owned());
    let bytes = serde_json::to_vec(&problem).unwrap_or_else(|_| b"{}".to_vec());
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static(PROBLEM_CONTENT_TYPE));
    parts.headers.remove(http::header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn finish_fills_request_id_and_body() {
        let response = ApiError::rate_limited("slow down").into_response();
        let response = finish(response, "req-1").await;
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()[RETRY_AFTER], "1");
        assert_eq!(response.headers()[CONTENT_TYPE], PROBLEM_CONTENT_TYPE);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let problem: Problem = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem.code, "rate_limited");
        assert!(problem.retryable);
        assert_eq!(problem.request_id.as_deref(), Some("req-1"));
        assert_eq!(problem.detail.as_deref(), Some("slow down"));
    }

    #[tokio::test]
    async fn finish_turns_plain_errors_into_problems() {
        let plain = (StatusCode::BAD_REQUEST, "Invalid URL").into_response();
        let response = finish(plain, "req-2").await;
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let problem: Problem = serde_json::from_slice(&body).unwrap();
        assert_eq!(problem.code, "bad_request");
        assert_eq!(problem.detail.as_deref(), Some("Invalid URL"));

        let ok = finish(StatusCode::OK.into_response(), "req-3").await;
        assert!(ok.headers().get(CONTENT_TYPE).is_none());
    }

    #[test]
    fn unauthorized_asks_for_bearer() {
        let e = ApiError::unauthorized("no token");
        assert_eq!(e.0.headers[WWW_AUTHENTICATE], "Bearer");
        assert_eq!(e.problem().status, 401);
    }
}
