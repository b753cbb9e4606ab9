//! Settings of one call, or of one `run`, that differ from the client's: the retry
//! policy, the request timeout and extra headers ([`CallOptions`], the
//! `client.with_options(..)` of both facades), and what a `run` submits with and how
//! long it may take ([`RunOptions`], for `run_with`).
//!
//! ```
//! use std::time::Duration;
//! use jobwire_core::options::{CallOptions, RunOptions};
//! use jobwire_core::retry::RetryPolicy;
//!
//! let patient = CallOptions::default()
//!     .retry(RetryPolicy::default().max_attempts(8))
//!     .timeout(Duration::from_secs(60))
//!     .header("x-team", "data");
//! let run = RunOptions::default()
//!     .idempotency_key("order-17")
//!     .label("team", "data")
//!     .timeout(Duration::from_secs(30))
//!     .call(patient);
//! assert_eq!(run.idempotency_key_value(), Some("order-17"));
//! ```

use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};

use crate::config::ClientConfig;
use crate::endpoint::Endpoint;
use crate::error::Error;
use crate::retry::RetryPolicy;
use crate::SubmitOptions;

/// Per-call settings: each one set replaces the client's for the calls it applies to.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    retry: Option<RetryPolicy>,
    timeout: Option<Duration>,
    headers: Vec<(HeaderName, HeaderValue)>,
    /// The first header that could not be made one, reported when a call uses these.
    invalid: Option<String>,
}

impl CallOptions {
    /// Retry with `policy` instead of the client's (see [`RetryPolicy`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = Some(policy);
        self
    }

    /// How long one request may take, answer body included, instead of the client's
    /// `timeout` (a long-poll adds its wait to it; event streams are not bounded by it).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sends this header with every request (repeat for several). A name or value that
    /// cannot be a header is an [`Error::Invalid`] from the call, nothing sent.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(value)) => self.headers.push((name, value)),
            _ => {
                self.invalid.get_or_insert_with(|| {
                    format!(
                        "{}: {} is not a valid header",
                        crate::error::quoted(name),
                        crate::error::quoted(value)
                    )
                });
            }
        }
        self
    }

    /// The retry policy to use instead of the client's, if any.
    pub fn retry_value(&self) -> Option<&RetryPolicy> {
        self.retry.as_ref()
    }

    /// The request timeout to use instead of the client's, if any.
    pub fn timeout_value(&self) -> Option<Duration> {
        self.timeout
    }

    /// The request of `endpoint` as a call with these options sends it: built with
    /// this timeout (a long-poll's still adds its wait), with these headers.
    ///
    /// ```
    /// use std::time::Duration;
    /// use jobwire_core::endpoint::GetJob;
    /// use jobwire_core::options::CallOptions;
    /// use jobwire_core::transport::RequestTimeout;
    /// use jobwire_core::ClientConfig;
    ///
    /// let config = ClientConfig::default().validate()?;
    /// let options = CallOptions::default().timeout(Duration::from_secs(2)).header("x-a", "1");
    /// let request = options.request(&GetJob::new("job_1"), &config)?;
    /// assert_eq!(RequestTimeout::of(&request), Some(Duration::from_secs(2)));
    /// assert_eq!(request.headers()["x-a"], "1");
    /// let long_poll = options.request(&GetJob::new("job_1").wait(Duration::from_secs(5)), &config)?;
    /// assert_eq!(RequestTimeout::of(&long_poll), Some(Duration::from_secs(7)));
    /// let bad = CallOptions::default().header("bad name", "x");
    /// assert!(bad.request(&GetJob::new("job_1"), &config).is_err());
    /// # Ok::<(), jobwire_core::Error>(())
    /// ```
    pub fn request<E: Endpoint>(
        &self,
        endpoint: &E,
        config: &ClientConfig,
    ) -> Result<http::Request<Bytes>, Error> {
        let mut request = match self.timeout {
            Some(timeout) => endpoint.request(&config.clone().timeout(timeout))?,
            None => endpoint.request(config)?,
        };
        self.add_headers(&mut request)?;
        Ok(request)
    }

    /// Adds the extra headers to `request` (an event stream's, say).
    pub fn add_headers(&self, request: &mut http::Request<Bytes>) -> Result<(), Error> {
        if let Some(invalid) = &self.invalid {
            return Err(Error::invalid("header", invalid.clone()));
        }
        for (name, value) in &self.headers {
            request.headers_mut().insert(name.clone(), value.clone());
        }
        Ok(())
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.retry.is_none()
            && self.timeout.is_none()
            && self.headers.is_empty()
            && self.invalid.is_none()
    }
}

/// How one `run_with` goes: what the submit carries (labels, an idempotency key, how
/// long the server may hold its answer), how long the whole run may take, and the
/// per-call settings of its requests.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    submit: SubmitOptions,
    timeout: Option<Duration>,
    call: CallOptions,
}

impl RunOptions {
    /// Attach a label to the job, for filtering job lists.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.submit = self.submit.label(key, value);
        self
    }

    /// Submit with this `Idempotency-Key`: a run retried by the caller with the same key
    /// reaches the job the first one made, instead of starting the work again.
    pub fn idempotency_key(mut self, key: impl Into<String>) -> Self {
        self.submit = self.submit.idempotency_key(key);
        self
    }

    /// Let the server hold the submit's answer up to `wait` (whole seconds) for the job
    /// to finish, instead of the second a `run` asks for.
    pub fn wait(mut self, wait: Duration) -> Self {
        self.submit = self.submit.wait(wait);
        self
    }

    /// The whole run — the submit, the waiting, the result — ends within `timeout`
    /// from its start, or with [`Error::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// The per-call settings of the run's requests.
    pub fn call(mut self, options: CallOptions) -> Self {
        self.call = options;
        self
    }

    /// The submit's options as set (the wait only if one was asked for).
    pub fn submit_options(&self) -> &SubmitOptions {
        &self.submit
    }

    /// The key, if one was set.
    pub fn idempotency_key_value(&self) -> Option<&str> {
        self.submit.idempotency_key_value()
    }

    /// The limit on the whole run, if one was set.
    pub fn timeout_value(&self) -> Option<Duration> {
        self.timeout
    }

    /// The per-call settings.
    pub fn call_options(&self) -> &CallOptions {
        &self.call
    }
}
