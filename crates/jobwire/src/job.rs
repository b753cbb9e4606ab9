//! Jobs: submitting one, running one to its result, and a handle that caches a job's
//! state and refreshes, waits for, reads and cancels it. The waiting is the core's
//! [`WaitPlan`]; the loop here only does what it says.

use std::time::{Duration, Instant};

use jobwire_core::call::Answer;
use jobwire_core::endpoint::{CancelJob, GetJob, SubmitJob};
use jobwire_core::follow::StreamTarget;
use jobwire_core::options::RunOptions;
use jobwire_core::outcome::{input_value, job_result};
use jobwire_core::run::RunPlan;
use jobwire_core::wait::{WaitPlan, WaitStep};
use jobwire_core::{deadline, Error, Job, JobSnapshot, JobStatus, SubmitOptions};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Client, EventStream};

/// A submitted job. It caches the job as last seen: [`status`](Self::status) reads the
/// cache, [`refresh`](Self::refresh) and the waits update it. It keeps the deadline of
/// the client it was made by (`client.within(..)`): its waits, events, result and
/// cancel all end by it.
///
/// ```
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
/// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
/// let mut job = client.submit("sleep", &serde_json::json!({"duration_seconds": 0.2})).await?;
/// println!("{} is {}", job.id(), job.status());
/// let out: serde_json::Value = job.result().await?; // woken by the job's `done` event
/// assert_eq!(out["slept"], 0.2);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct JobHandle {
    client: Client,
    /// The job as last seen, with its event position (see [`JobSnapshot`]).
    seen: JobSnapshot,
    /// The status and request id of the last answer about the job.
    answered: Option<(http::StatusCode, Option<String>)>,
}

impl Client {
    /// Submits a job to `service` (id or name) on `input` (a serde type or a
    /// `serde_json::Value`) without waiting for it. Every submit carries a fresh
    /// `Idempotency-Key`, so a retried submit never makes a second job.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let job = client.submit("sleep", &serde_json::json!({"duration_seconds": 1})).await?;
    /// assert!(job.id().starts_with("job_"));
    /// # Ok(()) }
    /// ```
    pub async fn submit<I: Serialize + ?Sized>(
        &self,
        service: &str,
        input: &I,
    ) -> Result<JobHandle, Error> {
        self.submit_with(service, input, SubmitOptions::default())
            .await
    }

    /// Submits with options: a server-side wait, labels, an idempotency key.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use std::time::Duration;
    /// use jobwire::SubmitOptions;
    /// // Held by the server until the job is done: a quick job costs one round trip.
    /// let options = SubmitOptions::default().wait(Duration::from_secs(5)).idempotency_key("order-17");
    /// let job = client.submit_with("echo", &serde_json::json!({"n": 1}), options.clone()).await?;
    /// assert_eq!(job.status(), &jobwire::JobStatus::Succeeded);
    /// // The same key again: the same job, not a second one.
    /// let again = client.submit_with("echo", &serde_json::json!({"n": 1}), options).await?;
    /// assert_eq!(again.id(), job.id());
    /// # Ok(()) }
    /// ```
    pub async fn submit_with<I: Serialize + ?Sized>(
        &self,
        service: &str,
        input: &I,
        options: SubmitOptions,
    ) -> Result<JobHandle, Error> {
        let endpoint = SubmitJob::new(service, input_value(input)?, options.with_fresh_key());
        let answer = self.execute_answer(&endpoint).await?;
        Ok(self.answered_handle(answer))
    }

    /// Submits a job and waits for its result in one call; a job that fails or is
    /// cancelled is an [`Error::JobFailed`] or [`Error::JobCancelled`].
    ///
    /// The submit asks the server to hold its answer a moment (a second; a whole
    /// long-poll when waits do not use events), so a quick job costs one round trip; a
    /// longer one is then waited for like [`JobHandle::wait`] (the core's [`RunPlan`]).
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let out: serde_json::Value = client.run("echo", &serde_json::json!({"hi": 1})).await?;
    /// assert_eq!(out, serde_json::json!({"hi": 1}));
    /// let refused = client.run::<_, serde_json::Value>("sleep", &serde_json::json!({"duration_seconds": "x"})).await;
    /// assert!(matches!(refused, Err(jobwire::Error::Validation { .. })));
    /// # Ok(()) }
    /// ```
    pub async fn run<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        service: &str,
        input: &I,
    ) -> Result<O, Error> {
        self.run_with(service, input, RunOptions::default()).await
    }

    /// [`run`](Self::run) with options: labels, an idempotency key (a caller that
    /// retries the run with the same key reaches the job the first try made, instead of
    /// starting the work twice), how long the server may hold the submit's answer, a
    /// timeout for the whole run, and per-call settings.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use std::time::Duration;
    /// use jobwire::RunOptions;
    /// let options = RunOptions::default()
    ///     .idempotency_key("order-17")
    ///     .label("team", "data")
    ///     .timeout(Duration::from_secs(30));
    /// let first: serde_json::Value = client.run_with("echo", &1, options.clone()).await?;
    /// let again: serde_json::Value = client.run_with("echo", &1, options).await?; // the same job
    /// assert_eq!(first, again);
    /// assert_eq!(client.jobs().label("team", "data").page().await?.items.len(), 1);
    /// # Ok(()) }
    /// ```
    pub async fn run_with<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        service: &str,
        input: &I,
        options: RunOptions,
    ) -> Result<O, Error> {
        let client = self.with_run_options(&options);
        let plan = RunPlan::with_options(self.config(), self.deadline, &options, Instant::now());
        let mut job = client
            .submit_with(service, input, plan.submit_options())
            .await?;
        job.wait_until(plan.deadline()).await?;
        job_result(job.job())
    }

    /// This client with a run's per-call settings, if it has any.
    pub(crate) fn with_run_options(&self, options: &RunOptions) -> Client {
        if options.call_options().is_empty() {
            self.clone()
        } else {
            self.with_options(options.call_options().clone())
        }
    }

    /// A handle of the job `id`, without a request: its state is read when it is first
    /// needed (a wait, a refresh, a result). An id of no job of this tenant is
    /// [`Error::NotFound`] then.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let id = client.submit("sleep", &serde_json::json!({"duration_seconds": 0.1})).await?.id().to_owned();
    /// let mut job = client.job(&id); // nothing sent
    /// assert_eq!(job.wait().await?.status, jobwire::JobStatus::Succeeded);
    /// # Ok(()) }
    /// ```
    pub fn job(&self, id: &str) -> JobHandle {
        self.job_handle(JobSnapshot::new(
            Job::new(id, "", JobStatus::Unknown("unread".into())),
            None,
        ))
    }

    /// A job by id, as it stands now: one read; [`Error::NotFound`] when this tenant has
    /// none.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let submitted = client.submit("echo", &1).await?;
    /// let found = client.get_job(submitted.id()).await?;
    /// assert_eq!(found.job().service, "echo");
    /// assert!(matches!(client.get_job("job_nope").await, Err(jobwire::Error::NotFound { .. })));
    /// # Ok(()) }
    /// ```
    pub async fn get_job(&self, id: &str) -> Result<JobHandle, Error> {
        let answer = self.execute_answer(&GetJob::new(id)).await?;
        Ok(self.answered_handle(answer))
    }

    /// A handle of a job as a list showed it, without a request.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// client.submit("sleep", &serde_json::json!({"duration_seconds": 60})).await?;
    /// for listed in client.jobs().status(jobwire::JobStatus::Running).page().await?.items {
    ///     let mut job = client.handle(listed);
    ///     job.cancel().await?; // one request each
    /// }
    /// # Ok(()) }
    /// ```
    pub fn handle(&self, job: Job) -> JobHandle {
        self.job_handle(JobSnapshot::new(job, None))
    }

    /// Cancels the job `id` (idempotent): one request; the job as it now stands.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let id = client.submit("sleep", &serde_json::json!({"duration_seconds": 60})).await?.id().to_owned();
    /// assert_eq!(client.cancel(&id).await?.status, jobwire::JobStatus::Cancelled);
    /// # Ok(()) }
    /// ```
    pub async fn cancel(&self, id: &str) -> Result<Job, Error> {
        Ok(self.execute(&CancelJob::new(id)).await?.job)
    }

    /// Waits for the job `id` to be terminal (bounded by the client's `wait_timeout`,
    /// if set, and its deadline) and returns it, whatever its outcome.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let id = client.submit("sleep", &serde_json::json!({"duration_seconds": 0.1})).await?.id().to_owned();
    /// assert_eq!(client.wait(&id).await?.status, jobwire::JobStatus::Succeeded);
    /// # Ok(()) }
    /// ```
    pub async fn wait(&self, id: &str) -> Result<Job, Error> {
        let mut job = self.job(id);
        job.wait().await.cloned()
    }

    /// A handle of a job seen as `seen`, bound by this clone's deadline.
    pub(crate) fn job_handle(&self, seen: JobSnapshot) -> JobHandle {
        JobHandle {
            client: self.clone(),
            seen,
            answered: None,
        }
    }

    /// A handle of the job an answer showed, with the answer's status and request id.
    fn answered_handle(&self, answer: Answer<JobSnapshot>) -> JobHandle {
        let mut handle = self.job_handle(answer.value);
        handle.answered = Some((answer.status, answer.request_id));
        handle
    }
}

impl JobHandle {
    /// The job's id (`job_…`).
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let job = client.submit("echo", &1).await?;
    /// assert!(job.id().starts_with("job_"));
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> &str {
        &self.seen.job.id
    }

    /// The status as last seen; sends nothing.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let job = client.submit("sleep", &serde_json::json!({"duration_seconds": 5})).await?;
    /// assert!(!job.status().is_terminal());
    /// # Ok(()) }
    /// ```
    pub fn status(&self) -> &JobStatus {
        &self.seen.job.status
    }

    /// The whole job as last seen; sends nothing.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let job = client.submit("echo", &serde_json::json!({"n": 1})).await?;
    /// assert_eq!(job.job().input, serde_json::json!({"n": 1}));
    /// # Ok(()) }
    /// ```
    pub fn job(&self) -> &Job {
        &self.seen.job
    }

    /// Fetches the job's current state.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let mut job = client.submit("sleep", &serde_json::json!({"duration_seconds": 0.1})).await?;
    /// tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    /// assert_eq!(job.refresh().await?.status, jobwire::JobStatus::Succeeded);
    /// # Ok(()) }
    /// ```
    pub async fn refresh(&mut self) -> Result<&Job, Error> {
        let answer = self.client.execute_answer(&GetJob::new(self.id())).await?;
        Ok(self.take(answer))
    }

    /// Takes a later answer about the job.
    fn take(&mut self, answer: Answer<JobSnapshot>) -> &Job {
        self.answered = Some((answer.status, answer.request_id));
        self.seen.update(answer.value);
        &self.seen.job
    }

    /// The server's request id of the last answer about the job (its submit, a refresh,
    /// a cancel), to quote in a bug report; `None` before the first or when the server
    /// sent none.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let job = client.submit("echo", &1).await?;
    /// assert!(job.request_id().unwrap().starts_with("req_"));
    /// # Ok(()) }
    /// ```
    pub fn request_id(&self) -> Option<&str> {
        self.answered.as_ref()?.1.as_deref()
    }

    /// The HTTP status of the last answer about the job: 202 for a submit answered at
    /// once, 200 for one that finished within its server-side wait, 200 for a read.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let job = client.submit("sleep", &serde_json::json!({"duration_seconds": 1})).await?;
    /// assert_eq!(job.http_status(), Some(http::StatusCode::ACCEPTED));
    /// # Ok(()) }
    /// ```
    pub fn http_status(&self) -> Option<http::StatusCode> {
        self.answered.as_ref().map(|(status, _)| *status)
    }

    /// When everything done with this handle must end: the deadline of the client that
    /// made it (`client.within(..)`), if it had one.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use std::time::Duration;
    /// let job = client.within(Duration::from_secs(30)).submit("echo", &1).await?;
    /// assert!(job.deadline().is_some());
    /// # Ok(()) }
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.client.deadline
    }

    /// The job's events — status changes, progress, log lines, output chunks, then
    /// `Done` with the final job — from its first (the server keeps a finished job's
    /// events for a while) as they happen, as a `Stream`. It resumes by itself after a
    /// dropped connection (no gap, no duplicate) and ends after `Done`.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use futures_util::StreamExt;
    /// let job = client.submit("steps", &serde_json::json!({"steps": 3, "interval_ms": 10})).await?;
    /// let mut events = job.events();
    /// let mut progress = 0;
    /// while let Some(event) = events.next().await {
    ///     if let jobwire::EventKind::Progress { .. } = event?.kind {
    ///         progress += 1;
    ///     }
    /// }
    /// assert_eq!(progress, 3);
    /// # Ok(()) }
    /// ```
    pub fn events(&self) -> EventStream {
        EventStream::new(self.client.clone(), StreamTarget::job(self.id()))
    }

    /// Whether the job has finished; asks the server only while the cached state says
    /// it has not.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let mut job = client.submit("sleep", &serde_json::json!({"duration_seconds": 5})).await?;
    /// assert!(!job.is_finished().await?);
    /// job.cancel().await?;
    /// assert!(job.is_finished().await?);
    /// # Ok(()) }
    /// ```
    pub async fn is_finished(&mut self) -> Result<bool, Error> {
        if !self.seen.job.is_finished() {
            self.refresh().await?;
        }
        Ok(self.seen.job.is_finished())
    }

    /// Waits until the job is terminal (bounded by the client's `wait_timeout`, if set)
    /// and returns it, whatever its outcome.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let mut job = client.submit("sleep", &serde_json::json!({"duration_seconds": 0.2})).await?;
    /// let done = job.wait().await?;
    /// assert_eq!(done.status, jobwire::JobStatus::Succeeded);
    /// # Ok(()) }
    /// ```
    pub async fn wait(&mut self) -> Result<&Job, Error> {
        let limit = self.client.config().wait_timeout_value();
        self.wait_until(limit.and_then(|t| deadline::after(Instant::now(), t)))
            .await
    }

    /// Waits at most `timeout` for the job to be terminal; [`Error::Timeout`] otherwise.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use std::time::Duration;
    /// let mut job = client.submit("sleep", &serde_json::json!({"duration_seconds": 10})).await?;
    /// let waited = job.wait_for(Duration::from_millis(100)).await;
    /// assert!(matches!(waited, Err(jobwire::Error::Timeout { .. })));
    /// # Ok(()) }
    /// ```
    pub async fn wait_for(&mut self, timeout: Duration) -> Result<&Job, Error> {
        // A timeout too large to add to now is no deadline at all.
        self.wait_until(deadline::after(Instant::now(), timeout))
            .await
    }

    /// The wait's drive loop: the core's [`WaitPlan`] decides (push, re-read,
    /// long-poll), this does it. Rare paths are boxed, so the common wait's future
    /// stays small.
    pub(crate) async fn wait_until(&mut self, until: Option<Instant>) -> Result<&Job, Error> {
        let until = deadline::earlier(until, self.client.deadline);
        let mut plan = WaitPlan::new(until, self.client.config());
        loop {
            match plan.next(&self.seen, Instant::now()) {
                WaitStep::Finished => return Ok(&self.seen.job),
                WaitStep::TimedOut => return Err(plan.timed_out(&self.seen)),
                WaitStep::Watch { deadline } => {
                    let wake = self.client.wake_of(&self.seen, deadline).await;
                    plan.on_wake(&mut self.seen, wake);
                }
                WaitStep::Sleep(pause) => tokio::time::sleep(pause).await,
                WaitStep::Refresh => {
                    let fresh = Box::pin(self.client.execute(&GetJob::new(self.id()))).await?;
                    plan.on_job(&mut self.seen, fresh, Instant::now());
                }
                WaitStep::Poll { wait } => {
                    let endpoint = GetJob::new(self.id()).wait(wait);
                    let fresh = Box::pin(self.client.execute(&endpoint)).await?;
                    plan.on_job(&mut self.seen, fresh, Instant::now());
                }
            }
        }
    }

    /// Waits for the job and decodes its output as `T` (or `serde_json::Value`); a job
    /// that failed or was cancelled is [`Error::JobFailed`] or [`Error::JobCancelled`].
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// #[derive(serde::Deserialize)]
    /// struct Slept { slept: f64 }
    /// let mut job = client.submit("sleep", &serde_json::json!({"duration_seconds": 0.1})).await?;
    /// let out: Slept = job.result().await?;
    /// assert_eq!(out.slept, 0.1);
    /// # Ok(()) }
    /// ```
    pub async fn result<T: DeserializeOwned>(&mut self) -> Result<T, Error> {
        self.wait().await?;
        job_result(&self.seen.job)
    }

    /// Asks the server to cancel the job (idempotent) and returns it as it now stands.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let mut job = client.submit("sleep", &serde_json::json!({"duration_seconds": 60})).await?;
    /// assert_eq!(job.cancel().await?.status, jobwire::JobStatus::Cancelled);
    /// assert!(matches!(job.result::<serde_json::Value>().await, Err(jobwire::Error::JobCancelled { .. })));
    /// # Ok(()) }
    /// ```
    pub async fn cancel(&mut self) -> Result<&Job, Error> {
        let answer = self
            .client
            .execute_answer(&CancelJob::new(self.id()))
            .await?;
        Ok(self.take(answer))
    }
}
