use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::services::non_empty_segment;
use super::url::Query;
use super::{decode_json, finish, json_body, prefer_wait, start_request, Endpoint};

/// The header of a submit's idempotency key.
const IDEMPOTENCY_KEY: http::HeaderName = http::HeaderName::from_static("idempotency-key");
use crate::{ClientConfig, Error, Job, JobStatus, Page};

/// How to submit a job: server-side wait, labels, idempotency key.
///
/// ```
/// use std::time::Duration;
/// let opts = jobwire_core::SubmitOptions::default()
///     .wait(Duration::from_secs(5))
///     .label("team", "data");
/// assert_eq!(opts.wait_value(), Some(Duration::from_secs(5)));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubmitOptions {
    wait: Option<Duration>,
    labels: BTreeMap<String, String>,
    idempotency_key: Option<String>,
}

impl SubmitOptions {
    /// Let the server hold the answer up to `wait` (whole seconds) for the job to finish,
    /// saving a round trip for quick jobs.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = Some(wait);
        self
    }

    /// Attach a label, for filtering job lists.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Send this `Idempotency-Key`: a repeat with the same key returns the first job.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.idempotency_key = Some(key.into());
        self
    }

    /// The same options without a server-side wait: answered at once.
    pub fn without_wait(mut self) -> Self {
        self.wait = None;
        self
    }

    /// The server-side wait asked for, if any.
    pub fn wait_value(&self) -> Option<Duration> {
        self.wait
    }

    /// The same options with a fresh random `Idempotency-Key` unless one is set: the SDK
    /// does this for every submit, so that a retried submit never creates a second job.
    ///
    /// ```
    /// let keyed = jobwire_core::SubmitOptions::default().with_fresh_key();
    /// let mine = jobwire_core::SubmitOptions::default().idempotency_key("mine").with_fresh_key();
    /// assert!(keyed.idempotency_key_value().is_some_and(|k| k.starts_with("jw-")));
    /// assert_eq!(mine.idempotency_key_value(), Some("mine"));
    /// ```
    pub fn with_fresh_key(mut self) -> Self {
        if self.idempotency_key.is_none() {
            // "jw-" and 32 hex digits, written by hand: it is on every submit.
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let mut key = String::with_capacity(35);
            key.push_str("jw-");
            for word in [crate::backoff::jitter_seed(), crate::backoff::jitter_seed()] {
                for shift in (0..16).rev() {
                    key.push(char::from(HEX[((word >> (shift * 4)) & 0xf) as usize]));
                }
            }
            self.idempotency_key = Some(key);
        }
        self
    }

    /// The `Idempotency-Key` to send, if any.
    pub fn idempotency_key_value(&self) -> Option<&str> {
        self.idempotency_key.as_deref()
    }
}

/// A job as one answer showed it, with its event position from the answer's
/// `Jobwire-Last-Event-Id` header: every change of the job that this state does not show
/// has a higher event id, so following `GET /v1/events` from the position misses none.
///
/// ```
/// let answer = http::Response::builder()
///     .header("jobwire-last-event-id", "42")
///     .body(bytes::Bytes::from_static(br#"{"id":"job_1","service_id":"s","status":"running"}"#))
///     .unwrap();
/// let snapshot = jobwire_core::JobSnapshot::from_answer(answer)?;
/// assert_eq!(snapshot.position, Some(42));
/// assert_eq!(snapshot.job.id, "job_1");
/// # Ok::<(), jobwire_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobSnapshot {
    /// The job as it stood.
    pub job: Job,
    /// Its event position, when the server sent one.
    pub position: Option<u64>,
}

impl JobSnapshot {
    /// A job as seen at event `position`.
    pub fn new(job: Job, position: Option<u64>) -> Self {
        JobSnapshot { job, position }
    }

    /// Takes a later answer for the same job. One without a position (a server or proxy
    /// that drops the header) keeps the last one known: it is still a lower bound.
    ///
    /// ```
    /// use jobwire_core::{Job, JobSnapshot, JobStatus};
    /// let mut seen = JobSnapshot::new(Job::new("job_1", "s", JobStatus::Queued), Some(4));
    /// seen.update(JobSnapshot::new(Job::new("job_1", "s", JobStatus::Running), None));
    /// assert_eq!((seen.job.status, seen.position), (JobStatus::Running, Some(4)));
    /// ```
    pub fn update(&mut self, fresh: JobSnapshot) {
        self.job = fresh.job;
        if fresh.position.is_some() {
            self.position = fresh.position;
        }
    }

    /// Reads a job answer: the job, or the error the answer carries.
    pub fn from_answer(response: http::Response<Bytes>) -> Result<JobSnapshot, Error> {
        let position = response
            .headers()
            .get("jobwire-last-event-id")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let job = decode_json(response)?;
        Ok(JobSnapshot { job, position })
    }
}

/// `POST /v1/services/{id-or-name}/jobs`: submit a job.
///
/// Both the 200 (finished within the wait) and the 202 (accepted) answers decode to
/// the job as it stands.
#[derive(Debug, Clone)]
pub struct SubmitJob {
    service: String,
    input: Value,
    options: SubmitOptions,
}

impl SubmitJob {
    /// A job of `service` (id or name) on `input`.
    pub fn new(service: impl Into<String>, input: Value, options: SubmitOptions) -> Self {
        SubmitJob {
            service: service.into(),
            input,
            options,
        }
    }
}

impl Endpoint for SubmitJob {
    type Output = JobSnapshot;

    fn request(&self, config: &ClientConfig) -> Result<http::Request<Bytes>, Error> {
        let segment = non_empty_segment("service id or name", &self.service)?;
        let path = format!("/v1/services/{segment}/jobs");
        let mut builder = start_request(config, http::Method::POST, &path);
        builder = prefer_wait(builder, config, self.options.wait);
        if let Some(key) = &self.options.idempotency_key {
            if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Error::invalid(
                    "idempotency key",
                    "must be 1 to 255 visible ASCII characters",
                ));
            }
            // Keyed, the submit may be sent again: the server answers a repeat with the
            // first job.
            builder = builder
                .header(IDEMPOTENCY_KEY, key.as_str())
                .extension(crate::retry::Repeatable);
        }
        // The body of `SubmitBody`, borrowed: the input is not copied to be sent.
        #[derive(serde::Serialize)]
        struct Body<'a> {
            input: &'a serde_json::Value,
            #[serde(skip_serializing_if = "BTreeMap::is_empty")]
            labels: &'a BTreeMap<String, String>,
        }
        let body = Body {
            input: &self.input,
            labels: &self.options.labels,
        };
        json_body(builder, &body)
    }

    fn parse(&self, response: http::Response<Bytes>) -> Result<JobSnapshot, Error> {
        JobSnapshot::from_answer(response)
    }
}

/// `GET /v1/jobs/{id}`, optionally long-polling with `Prefer: wait=N`.
#[derive(Debug, Clone)]
pub struct GetJob {
    id: String,
    wait: Option<Duration>,
}

impl GetJob {
    /// The job as it stands now.
    pub fn new(id: impl Into<String>) -> Self {
        GetJob {
            id: id.into(),
            wait: None,
        }
    }

    /// Let the server hold the answer up to `wait` until the job's status changes.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.wait = (!wait.is_zero()).then_some(wait);
        self
    }
}

impl Endpoint for GetJob {
    type Output = JobSnapshot;

    fn request(&self, config: &ClientConfig) -> Result<http::Request<Bytes>, Error> {
        let segment = non_empty_segment("job id", &self.id)?;
        let builder = start_request(config, http::Method::GET, &format!("/v1/jobs/{segment}"));
        finish(prefer_wait(builder, config, self.wait), Bytes::new())
    }

    fn parse(&self, response: http::Response<Bytes>) -> Result<JobSnapshot, Error> {
        JobSnapshot::from_answer(response)
    }
}

/// `POST /v1/jobs/{id}/cancel`: ask to cancel; idempotent.
#[derive(Debug, Clone)]
pub struct CancelJob {
    id: String,
}

impl CancelJob {
    /// Cancel the job with this id.
    pub fn new(id: impl Into<String>) -> Self {
        CancelJob { id: id.into() }
    }
}

impl Endpoint for CancelJob {
    type Output = JobSnapshot;

    fn request(&self, config: &ClientConfig) -> Result<http::Request<Bytes>, Error> {
        let segment = non_empty_segment("job id", &self.id)?;
        let path = format!("/v1/jobs/{segment}/cancel");
        // Cancelling twice is cancelling once.
        let builder =
            start_request(config, http::Method::POST, &path).extension(crate::retry::Repeatable);
        finish(builder, Bytes::new())
    }

    fn parse(&self, response: http::Response<Bytes>) -> Result<JobSnapshot, Error> {
        JobSnapshot::from_answer(response)
    }
}

/// Filters and position for listing jobs (newest first); the same setters appear on
/// the facades' `client.jobs()` lists.
///
/// ```
/// use jobwire_core::{endpoint::JobQuery, JobStatus};
/// let q = JobQuery::default().service("sleep").status(JobStatus::Succeeded).label("team", "data");
/// # let _ = q;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobQuery {
    service: Option<String>,
    status: Option<JobStatus>,
    labels: Vec<(String, String)>,
    limit: Option<u32>,
    cursor: Option<String>,
}

impl JobQuery {
    /// Only jobs of this service (id or name).
    pub fn service(mut self, service: impl Into<String>) -> Self {
        self.service = Some(service.into());
        self
    }

    /// Only jobs in this status.
    pub fn status(mut self, status: JobStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Only jobs carrying this label (several labels must all match).
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((key.into(), value.into()));
        self
    }

    /// Items per page (the server's default is 50, its maximum 1000).
    pub fn limit(mut self, limit: u32) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Start after this cursor (from an earlier page's `next_cursor`).
    pub fn cursor(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// The cursor to start from, if set.
    pub fn start_cursor(&self) -> Option<&str> {
        self.cursor.as_deref()
    }
}

/// Stamps the [`JobQuery`] setters onto a facade's list held in `$field`.
#[doc(hidden)]
#[macro_export]
macro_rules! __job_query_setters {
    ($field:ident) => {
        $crate::__forward_setters! { $field:
            /// Only jobs of this service (id or name).
            fn service(service: impl Into<String>);
            /// Only jobs in this status.
            fn status(status: $crate::JobStatus);
            /// Items per page (server default 50, maximum 1000).
            fn limit(limit: u32);
            /// Start after this cursor (from an earlier page's `next_cursor`).
            fn cursor(cursor: impl Into<String>);
        }
        /// Only jobs carrying this label (several labels must all match).
        pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
            self.$field = self.$field.label(key, value);
            self
        }
    };
}

/// `GET /v1/jobs`: one page of jobs, newest first.
#[derive(Debug, Clone, Default)]
pub struct ListJobs {
    /// The filters; its cursor says which page.
    pub query: JobQuery,
}

impl ListJobs {
    /// The page of `query` that starts at `cursor` (the query's own cursor if `None`).
    pub fn page(query: &JobQuery, cursor: Option<&str>) -> Self {
        let mut query = query.clone();
        if let Some(c) = cursor {
            query.cursor = Some(c.to_owned());
        }
        ListJobs { query }
    }
}

impl Endpoint for ListJobs {
    type Output = Page<Job>;

    fn request(&self, config: &ClientConfig) -> Result<http::Request<Bytes>, Error> {
        let q = &self.query;
        let mut query = Query::default();
        query.push_opt("service", q.service.as_deref());
        query.push_opt("status", q.status.as_ref().map(JobStatus::as_str));
        for (k, v) in &q.labels {
            query.push("label", &format!("{k}:{v}"));
        }
        query.push_opt("limit", q.limit);
        query.push_opt("cursor", q.cursor.as_deref());
        let path = format!("/v1/jobs{}", query.as_str());
        finish(
            start_request(config, http::Method::GET, &path),
            Bytes::new(),
        )
    }

    fn parse(&self, response: http::Response<Bytes>) -> Result<Page<Job>, Error> {
        decode_json(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::RequestTimeout;

    #[test]
    fn fresh_keys_are_jw_and_32_hex_digits_and_differ() {
        let key = || {
            SubmitOptions::default()
                .with_fresh_key()
                .idempotency_key
                .unwrap()
        };
        let (a, b) = (key(), key());
        for k in [&a, &b] {
            assert_eq!(k.len(), 35, "{k}");
            assert!(k.starts_with("jw-"), "{k}");
            assert!(
                k[3..]
                    .bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
                "{k}"
            );
        }
        assert_ne!(a, b);
    }

    fn config() -> ClientConfig {
        ClientConfig::default()
            .base_url("http://h:1/api")
            .token("tok")
            .validate()
            .unwrap()
    }

    #[test]
    fn submit_request_carries_wait_labels_and_key() {
        let opts = SubmitOptions::default()
            .wait(Duration::from_secs(5))
            .label("a", "b")
            .idempotency_key("k1");
        let req = SubmitJob::new("echo", serde_json::json!({"x": 1}), opts)
            .request(&config())
            .unwrap();
        assert_eq!(req.method(), http::Method::POST);
        assert_eq!(req.uri(), "http://h:1/api/v1/services/echo/jobs");
        assert_eq!(req.headers()["prefer"], "wait=5");
        assert_eq!(req.headers()["idempotency-key"], "k1");
        assert_eq!(req.headers()["authorization"], "Bearer tok");
        assert_eq!(req.headers()["content-type"], "application/json");
        // The transport's timeout covers the server-side wait plus the normal timeout.
        assert_eq!(RequestTimeout::of(&req), Some(Duration::from_secs(35)));
        let body: Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"input": {"x": 1}, "labels": {"a": "b"}})
        );
    }

    #[test]
    fn bad_arguments_are_refused_before_sending() {
        let c = config();
        assert!(SubmitJob::new(" ", Value::Null, Default::default())
            .request(&c)
            .is_err());
        let long_key = SubmitOptions::default().idempotency_key("k".repeat(256));
        assert!(SubmitJob::new("echo", Value::Null, long_key)
            .request(&c)
            .is_err());
        let spaced = SubmitOptions::default().idempotency_key("a b");
        assert!(SubmitJob::new("echo", Value::Null, spaced)
            .request(&c)
            .is_err());
        assert!(GetJob::new("").request(&c).is_err());
        assert!(CancelJob::new("").request(&c).is_err());
    }

    #[test]
    fn list_jobs_query_string() {
        let q = JobQuery::default()
            .service("sleep")
            .status(JobStatus::Running)
            .label("team", "a b")
            .limit(2)
            .cursor("c/1");
        let req = ListJobs::page(&q, None).request(&config()).unwrap();
        assert_eq!(
            req.uri().path_and_query().unwrap().as_str(),
            "/api/v1/jobs?service=sleep&status=running&label=team%3Aa%20b&limit=2&cursor=c%2F1"
        );
        let req = ListJobs::page(&q, Some("next")).request(&config()).unwrap();
        assert!(req.uri().query().unwrap().ends_with("cursor=next"));
    }

    #[test]
    fn get_job_wait_zero_sends_no_prefer() {
        let req = GetJob::new("job_1")
            .wait(Duration::ZERO)
            .request(&config())
            .unwrap();
        assert!(req.headers().get("prefer").is_none());
    }
}
