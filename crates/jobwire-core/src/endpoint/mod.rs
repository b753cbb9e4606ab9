//! Endpoint descriptions: each builds one [`http::Request`] and turns its
//! [`http::Response`] into an output or a typed [`Error`].
//!
//! Nothing here does I/O; a facade's drive loop sends what [`Endpoint::request`] built
//! and hands the answer to [`Endpoint::parse`]:
//!
//! ```
//! use bytes::Bytes;
//! use jobwire_core::endpoint::{Endpoint, GetJob};
//! use jobwire_core::ClientConfig;
//!
//! let config = ClientConfig::default().token("t").validate().unwrap();
//! let endpoint = GetJob::new("job_1");
//! let request = endpoint.request(&config).unwrap();
//! assert_eq!(request.uri(), "http://127.0.0.1:7878/v1/jobs/job_1");
//!
//! let answer = http::Response::builder()
//!     .status(404)
//!     .header("content-type", "application/problem+json")
//!     .body(Bytes::from_static(br#"{"type":"https://jobwire.dev/problems/not_found","title":"Not Found","status":404,"code":"not_found"}"#))
//!     .unwrap();
//! assert!(matches!(endpoint.parse(answer), Err(jobwire_core::Error::NotFound { .. })));
//! ```

mod health;
mod jobs;
mod services;
mod url;

use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use serde::de::DeserializeOwned;

use crate::config::ClientConfig;
use crate::error::Error;
use crate::problem::Problem;
use crate::transport::RequestTimeout;

pub use health::GetHealth;
pub use jobs::{CancelJob, GetJob, JobQuery, JobSnapshot, ListJobs, SubmitJob, SubmitOptions};
pub use services::{CreateService, DeleteService, GetService, ListServices, ServiceQuery};
pub use url::encode_component;

/// One API operation: how to ask, and how to read the answer.
pub trait Endpoint {
    /// What a successful answer decodes to.
    type Output;

    /// Builds the request for `config`'s server, token and timeouts.
    fn request(&self, config: &ClientConfig) -> Result<http::Request<Bytes>, Error>;

    /// Reads the answer: the output on success, the matching [`Error`] otherwise.
    fn parse(&self, response: http::Response<Bytes>) -> Result<Self::Output, Error>;
}

/// Starts a request to `path_and_query` (beginning with `/v1/`) with the headers every
/// call carries: accept, user agent, authorization, and the per-request timeout.
pub(crate) fn start_request(
    config: &ClientConfig,
    method: http::Method,
    path_and_query: &str,
) -> http::request::Builder {
    addressed(config, method, path_and_query)
        .header(header::ACCEPT, HeaderValue::from_static("application/json"))
        .extension(RequestTimeout(config.timeout_value()))
}

/// Starts the `GET` that opens an event stream at `path_and_query`: the headers of
/// every call, `Accept: text/event-stream`, and a per-read timeout of `idle` (the
/// stream's watchdog) instead of a whole-request one.
pub(crate) fn start_stream_request(
    config: &ClientConfig,
    path_and_query: &str,
    idle: Duration,
) -> http::request::Builder {
    addressed(config, http::Method::GET, path_and_query)
        .header(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        )
        .header(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))
        .extension(crate::transport::ReadTimeout(idle))
}

/// A request to `path_and_query` under the base URL with the user agent and the
/// authorization, both made once when the settings were validated.
fn addressed(
    config: &ClientConfig,
    method: http::Method,
    path_and_query: &str,
) -> http::request::Builder {
    let builder = http::Request::builder().method(method);
    let mut builder = match config.request_uri(path_and_query) {
        Some(uri) => builder.uri(uri),
        // Parsed whole, so that a bad one is reported as the builder's error.
        None => builder.uri(format!("{}{path_and_query}", config.base_url_value())),
    };
    let (authorization, user_agent) = config.request_headers();
    if let Some(user_agent) = user_agent {
        builder = builder.header(header::USER_AGENT, user_agent.into_owned());
    }
    if let Some(authorization) = authorization {
        builder = builder.header(header::AUTHORIZATION, authorization.into_owned());
    }
    builder
}

/// Finishes a request built by [`start_request`].
pub(crate) fn finish(
    builder: http::request::Builder,
    body: Bytes,
) -> Result<http::Request<Bytes>, Error> {
    builder
        .body(body)
        .map_err(|e| Error::invalid("request", e.to_string()))
}

/// Adds `Prefer: wait=N` and stretches the request timeout to cover the wait.
pub(crate) fn prefer_wait(
    builder: http::request::Builder,
    config: &ClientConfig,
    wait: Option<Duration>,
) -> http::request::Builder {
    match wait {
        Some(wait) => builder
            .header(
                crate::prefer::PREFER,
                crate::prefer::wait_value(wait.as_secs()),
            )
            .extension(RequestTimeout(config.timeout_value().saturating_add(wait))),
        None => builder,
    }
}

/// The service and the job a request's path names, for logs and spans:
/// `/v1/services/{service}/…` and `/v1/jobs/{job}/…` (still percent-encoded).
///
/// ```
/// use jobwire_core::endpoint::subject_of;
/// assert_eq!(subject_of("/v1/services/echo/jobs"), (Some("echo"), None));
/// assert_eq!(subject_of("/api/v1/jobs/job_1/cancel"), (None, Some("job_1")));
/// assert_eq!(subject_of("/v1/jobs"), (None, None));
/// ```
pub fn subject_of(path: &str) -> (Option<&str>, Option<&str>) {
    let mut segments = path.split('/').skip_while(|s| *s != "v1").skip(1);
    match (segments.next(), segments.next()) {
        (Some("services"), Some(service)) if !service.is_empty() => (Some(service), None),
        (Some("jobs"), Some(job)) if !job.is_empty() => (None, Some(job)),
        _ => (None, None),
    }
}

/// Decodes a successful JSON answer, or maps an error answer to its [`Error`].
pub fn decode_json<T: DeserializeOwned>(response: http::Response<Bytes>) -> Result<T, Error> {
    let status = response.status();
    if !status.is_success() {
        return Err(error_from_response(&response));
    }
    let body = response.into_body();
    serde_json::from_slice(&body).map_err(|e| Error::Decode {
        status,
        message: e.to_string(),
        body,
    })
}

/// Maps an error answer to an [`Error`]: the problem body when there is one, else a
/// problem made from the status line and whatever text came back.
pub fn error_from_response(response: &http::Response<Bytes>) -> Error {
    let status = response.status();
    let retry_after = retry_after_of(response);
    let mut problem = match serde_json::from_slice::<Problem>(response.body()) {
        Ok(p) if p.status != 0 || !p.code.is_empty() || !p.title.is_empty() => p,
        _ => synthesized_problem(status, response.body()),
    };
    // The status line is the truth; a proxy may have answered instead of the server.
    problem.status = status.as_u16();
    if problem.request_id.is_none() {
        problem.request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
    }
    Error::from_problem(problem, retry_after)
}

fn synthesized_problem(status: http::StatusCode, body: &Bytes) -> Problem {
    let code = Problem::code_for_status(status.as_u16());
    let title = status.canonical_reason().unwrap_or("Unexpected status");
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let problem = Problem::new(status.as_u16(), code, title);
    if text.is_empty() {
        problem
    } else {
        problem.with_detail(text.chars().take(512).collect::<String>())
    }
}

/// How long an answer asks the client to wait (`Retry-After`): delay-seconds, or an HTTP
/// date measured against the answer's own `Date` — the server's clock against the
/// server's clock, so the client's clock (skewed or not) plays no part.
///
/// ```
/// use std::time::Duration;
/// let answer = http::Response::builder()
///     .header("date", "Sun, 06 Nov 1994 08:49:37 GMT")
///     .header("retry-after", "Sun, 06 Nov 1994 08:49:40 GMT")
///     .body(())
///     .unwrap();
/// assert_eq!(jobwire_core::endpoint::retry_after_of(&answer), Some(Duration::from_secs(3)));
/// ```
pub fn retry_after_of<B>(response: &http::Response<B>) -> Option<Duration> {
    let headers = response.headers();
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    let sent = headers
        .get(header::DATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    match sent {
        Some(sent) => parse_retry_after(value, sent),
        // A date with nothing to measure it against says nothing; seconds still do.
        None => value.trim().parse::<u64>().ok().map(Duration::from_secs),
    }
}

/// Reads `Retry-After` as delay-seconds or an HTTP date (RFC 9110 §10.2.3), a date
/// measured from `now`.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use jobwire_core::endpoint::parse_retry_after;
/// assert_eq!(parse_retry_after("7", SystemTime::now()), Some(Duration::from_secs(7)));
/// assert_eq!(parse_retry_after("soon", SystemTime::now()), None);
/// ```
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A JSON request body, with its content type.
pub(crate) fn json_body(
    builder: http::request::Builder,
    value: &impl serde::Serialize,
) -> Result<http::Request<Bytes>, Error> {
    let body =
        serde_json::to_vec(value).map_err(|e| Error::invalid("request body", e.to_string()))?;
    finish(
        builder.header(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        ),
        Bytes::from(body),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, headers: &[(&str, &str)], body: &'static str) -> http::Response<Bytes> {
        let mut b = http::Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(Bytes::from_static(body.as_bytes())).unwrap()
    }

    #[test]
    fn error_mapping_table() {
        let problem = r#"{"type":"https://jobwire.dev/problems/x","title":"T","status":0,"code":"x","request_id":"r1"}"#;
        let cases: Vec<(http::Response<Bytes>, &str)> = vec![
            (answer(404, &[], problem), "NotFound"),
            (answer(401, &[], problem), "Unauthorized"),
            (answer(429, &[("retry-after", "3")], problem), "RateLimited"),
            (answer(422, &[], problem), "Validation"),
            (answer(409, &[], problem), "Conflict"),
            (answer(403, &[], problem), "Forbidden"),
            (answer(410, &[], problem), "Api"),
            (answer(502, &[], "<html>bad gateway</html>"), "Api"),
            (answer(503, &[], ""), "Api"),
        ];
        for (resp, want) in cases {
            let status = resp.status();
            let err = error_from_response(&resp);
            let got = match &err {
                Error::NotFound { .. } => "NotFound",
                Error::Unauthorized { .. } => "Unauthorized",
                Error::RateLimited { .. } => "RateLimited",
                Error::Forbidden { .. } => "Forbidden",
                Error::Conflict { .. } => "Conflict",
                Error::Validation { .. } => "Validation",
                Error::Api { .. } => "Api",
                _ => "other",
            };
            assert_eq!(got, want, "{status}");
            assert_eq!(err.status(), Some(status));
            assert_eq!(err.problem().unwrap().status, status.as_u16());
        }
    }

    #[test]
    fn non_problem_error_body_is_kept_as_detail() {
        let err = error_from_response(&answer(502, &[("x-request-id", "abc")], "upstream down"));
        let p = err.problem().unwrap();
        assert_eq!(p.detail.as_deref(), Some("upstream down"));
        assert_eq!(p.request_id.as_deref(), Some("abc"));
        assert!(p.retryable);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("-1", now), None);
        let err = error_from_response(&answer(429, &[("retry-after", "2")], ""));
        assert!(
            matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(2))
        );
        let dated = answer(
            503,
            &[
                ("date", &httpdate::fmt_http_date(now)),
                ("retry-after", &later),
            ],
            "",
        );
        assert_eq!(retry_after_of(&dated), Some(Duration::from_secs(30)));
        let undated = answer(503, &[("retry-after", &later)], "");
        assert_eq!(
            retry_after_of(&undated),
            None,
            "a date with no Date to measure from"
        );
        let err = error_from_response(&answer(429, &[("retry-after", "2")], ""));
        assert!(
            matches!(err, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(2))
        );
    }

    /// Every number a header (or an event field) carries, at its boundaries — 0, 2^31,
    /// 2^63, 2^64 - 1, one past it, negative, a date in the year 9999 and one before
    /// 1970 — goes through every decision that does arithmetic on it without a panic,
    /// and a pause it asks for is bounded.
    #[test]
    fn hostile_header_values_never_panic() {
        use crate::backoff::Jitter;
        use crate::follow::{Follower, StreamTarget};
        use crate::push::Watchlist;
        use crate::retry::{RetryBudget, RetryPolicy};
        use crate::stream::{EventProtocol, StreamStep};
        use crate::throttle::Pacer;
        use std::time::Instant;

        let numbers = [
            "0",
            "2147483648",
            "9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "99999999999999999999999999999",
            "-1",
            " 7 ",
            "1e300",
            "Fri, 31 Dec 9999 23:59:59 GMT",
            "Thu, 01 Jan 1900 00:00:00 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "",
        ];
        let dates = [
            None,
            Some("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some("Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        let t0 = Instant::now();
        let config = crate::ClientConfig::default().validate().unwrap();
        let policy = RetryPolicy::default();
        let get = || {
            http::Request::get("http://h/v1/jobs/j")
                .body(Bytes::new())
                .unwrap()
        };
        for value in numbers {
            for date in dates {
                for status in [429, 503] {
                    let mut headers = vec![("retry-after", value)];
                    headers.extend(date.map(|d| ("date", d)));
                    let response = answer(status, &headers, "");
                    let hint = retry_after_of(&response);
                    let error = error_from_response(&response);
                    let text = error.to_string();
                    assert!(!text.contains("Some(") && !text.contains("None"), "{text}");
                    // A call's retry: at most the policy's longest pause, or done.
                    let decided = policy.decide(
                        1,
                        &get(),
                        &Ok(response.clone()),
                        None,
                        &mut RetryBudget::default(),
                        &mut Jitter::new(1),
                    );
                    if let crate::retry::Attempt::Again { after } = decided {
                        assert!(after <= policy.max_delay_value(), "{value}: {after:?}");
                    }
                    // The pause every clone's calls share: at most the same.
                    let pacer = Pacer::new(&config, 1);
                    pacer.after(&policy, 1, &get(), &Ok(response.clone()), None, t0);
                    assert!(pacer.reserve(t0) <= policy.max_delay_value(), "{value}");
                    // An event stream refused with it reconnects within its back-off cap.
                    let mut follower =
                        Follower::new(StreamTarget::all(), Duration::from_secs(45), 1);
                    follower.step(t0);
                    follower.on_refused(t0, response);
                    if let StreamStep::Connect { pause } = follower.step(t0) {
                        assert!(pause <= Duration::from_secs(30), "{value}: {pause:?}");
                    }
                    let _ = hint;
                }
            }
            // A job answer's event position.
            let response = answer(
                200,
                &[("jobwire-last-event-id", value)],
                r#"{"id":"j","service_id":"s","status":"running"}"#,
            );
            let snapshot = JobSnapshot::from_answer(response).unwrap();
            let mut list = Watchlist::new(Duration::from_secs(45), 1);
            list.register(t0, "j", snapshot.position);
            list.register(t0, "k", Some(0));
            list.register(t0, "l", Some(u64::MAX));
            if let StreamStep::Connect { .. } = list.step(t0) {
                let request = list.follower().unwrap().request(&config, t0).unwrap();
                assert!(request.headers().contains_key("last-event-id"));
            }
            // An event's id and the stream's `retry:`.
            let mut follower = Follower::new(StreamTarget::all(), Duration::MAX, 1);
            let head = http::Response::builder()
                .header("content-type", "text/event-stream")
                .body(())
                .unwrap()
                .into_parts()
                .0;
            follower.on_head(t0, &head);
            let chunk = format!(
                "retry: {value}\nid: {value}\nevent: log\ndata: {{\"job_id\":\"j\",\"line\":\"x\"}}\n\nid: 1\nevent: log\ndata: {{\"job_id\":\"j\",\"line\":\"y\"}}\n\n"
            );
            follower.on_chunk(t0, chunk.as_bytes());
            for _ in 0..4 {
                follower.step(t0);
            }
            follower.on_end(t0);
            if let StreamStep::Connect { pause } = follower.step(t0) {
                assert!(pause <= Duration::from_secs(30), "{value}: {pause:?}");
            }
        }
    }

    #[test]
    fn bad_json_keeps_the_raw_body() {
        match decode_json::<crate::Job>(answer(200, &[], "{not json")) {
            Err(Error::Decode { body, status, .. }) => {
                assert_eq!(&body[..], b"{not json");
                assert_eq!(status, 200);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
