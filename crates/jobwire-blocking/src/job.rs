//! Jobs: submitting one, running one to its result, and a handle that caches a job's
//! state and refreshes, waits for, reads and cancels it. The waiting is the core's
//! [`WaitPlan`]; the loop here only does what it says, blocking the calling thread.

use std::time::{Duration, Instant};

use jobwire_core::endpoint::{CancelJob, GetJob, SubmitJob};
use jobwire_core::follow::StreamTarget;
use jobwire_core::outcome::{input_value, job_result};
use jobwire_core::run::RunPlan;
use jobwire_core::wait::{WaitPlan, WaitStep};
use jobwire_core::{deadline, Error, Job, JobSnapshot, JobStatus, SubmitOptions};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Client, EventStream};

/// A submitted job. It caches the job as last seen: [`status`](Self::status) reads the
/// cache, [`refresh`](Self::refresh) and the waits update it.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
/// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
/// let mut job = client.submit("sleep", &serde_json::json!({"duration_seconds": 0.2}))?;
/// println!("{} is {}", job.id(), job.status());
/// let out: serde_json::Value = job.result()?; // woken by the job's `done` event
/// assert_eq!(out["slept"], 0.2);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct JobHandle {
    client: Client,
    /// The job as last seen, with its event position (see [`JobSnapshot`]).
    seen: JobSnapshot,
}

impl Client {
    /// Submits a job to `service` (id or name) on `input` (a serde type or a
    /// `serde_json::Value`) without waiting for it. Every submit carries a fresh
    /// `Idempotency-Key`, so a retried submit never makes a second job.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let job = client.submit("sleep", &serde_json::json!({"duration_seconds": 1}))?;
    /// assert!(job.id().starts_with("job_"));
    /// # Ok(()) }
    /// ```
    pub fn submit<I: Serialize + ?Sized>(
        &self,
        service: &str,
        input: &I,
    ) -> Result<JobHandle, Error> {
        self.submit_with(service, input, SubmitOptions::default())
    }

    /// Submits with options: a server-side wait, labels, an idempotency key.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use std::time::Duration;
    /// use jobwire_blocking::SubmitOptions;
    /// // Held by the server until the job is done: a quick job costs one round trip.
    /// let options = SubmitOptions::default().wait(Duration::from_secs(5)).idempotency_key("order-17");
    /// let job = client.submit_with("echo", &serde_json::json!({"n": 1}), options.clone())?;
    /// assert_eq!(job.status(), &jobwire_blocking::JobStatus::Succeeded);
    /// // The same key again: the same job, not a second one.
    /// let again = client.submit_with("echo", &serde_json::json!({"n": 1}), options)?;
    /// assert_eq!(again.id(), job.id());
    /// # Ok(()) }
    /// ```
    pub fn submit_with<I: Serialize + ?Sized>(
        &self,
        service: &str,
        input: &I,
        options: SubmitOptions,
    ) -> Result<JobHandle, Error> {
        let endpoint = SubmitJob::new(service, input_value(input)?, options.with_fresh_key());
        let seen = self.execute(&endpoint)?;
        Ok(self.job_handle(seen))
    }

    /// Submits a job and waits for its result in one call; a job that fails or is
    /// cancelled is an [`Error::JobFailed`] or [`Error::JobCancelled`].
    ///
    /// The submit asks the server to hold its answer a moment (a second; a whole
    /// long-poll when waits do not use events), so a quick job costs one round trip; a
    /// longer one is then waited for like [`JobHandle::wait`] (the core's [`RunPlan`]).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let out: serde_json::Value = client.run("echo", &serde_json::json!({"hi": 1}))?;
    /// assert_eq!(out, serde_json::json!({"hi": 1}));
    /// let refused = client.run::<_, serde_json::Value>("sleep", &serde_json::json!({"duration_seconds": "x"}));
    /// assert!(matches!(refused, Err(jobwire_blocking::Error::Validation { .. })));
    /// # Ok(()) }
    /// ```
    pub fn run<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        service: &str,
        input: &I,
    ) -> Result<O, Error> {
        let plan = RunPlan::new(self.config(), self.deadline, Instant::now());
        let mut job = self.submit_with(service, input, plan.submit_options())?;
        job.wait_until(plan.deadline())?;
        job_result(job.job())
    }

    /// A job by id, as it stands now; [`Error::NotFound`] when this tenant has none.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let submitted = client.submit("echo", &1)?;
    /// let found = client.job(submitted.id())?;
    /// assert_eq!(found.job().service, "echo");
    /// # Ok(()) }
    /// ```
    pub fn job(&self, id: &str) -> Result<JobHandle, Error> {
        let seen = self.execute(&GetJob::new(id))?;
        Ok(self.job_handle(seen))
    }

    /// A handle of a job seen as `seen`, free of this clone's deadline (so a job can
    /// still be cancelled after a wait on it timed out).
    pub(crate) fn job_handle(&self, seen: JobSnapshot) -> JobHandle {
        let mut client = self.clone();
        client.deadline = None;
        JobHandle { client, seen }
    }
}

impl JobHandle {
    /// The job's id (`job_…`).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let job = client.submit("echo", &1)?;
    /// assert!(job.id().starts_with("job_"));
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> &str {
        &self.seen.job.id
    }

    /// The status as last seen; sends nothing.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let job = client.submit("sleep", &serde_json::json!({"duration_seconds": 5}))?;
    /// assert!(!job.status().is_terminal());
    /// # Ok(()) }
    /// ```
    pub fn status(&self) -> &JobStatus {
        &self.seen.job.status
    }

    /// The whole job as last seen; sends nothing.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let job = client.submit("echo", &serde_json::json!({"n": 1}))?;
    /// assert_eq!(job.job().input, serde_json::json!({"n": 1}));
    /// # Ok(()) }
    /// ```
    pub fn job(&self) -> &Job {
        &self.seen.job
    }

    /// Fetches the job's current state.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let mut job = client.submit("sleep", &serde_json::json!({"duration_seconds": 0.1}))?;
    /// std::thread::sleep(std::time::Duration::from_millis(300));
    /// assert_eq!(job.refresh()?.status, jobwire_blocking::JobStatus::Succeeded);
    /// # Ok(()) }
    /// ```
    pub fn refresh(&mut self) -> Result<&Job, Error> {
        let fresh = self.client.execute(&GetJob::new(self.id()))?;
        self.seen.update(fresh);
        Ok(&self.seen.job)
    }

    /// The job's events — status changes, progress, log lines, output chunks, then
    /// `Done` with the final job — from its first (the server keeps a finished job's
    /// events for a while) as they happen, as an `Iterator`. It resumes by itself after
    /// a dropped connection (no gap, no duplicate) and ends after `Done`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let job = client.submit("steps", &serde_json::json!({"steps": 3, "interval_ms": 10}))?;
    /// let mut progress = 0;
    /// for event in job.events() {
    ///     if let jobwire_blocking::EventKind::Progress { .. } = event?.kind {
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
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let mut job = client.submit("sleep", &serde_json::json!({"duration_seconds": 5}))?;
    /// assert!(!job.is_finished()?);
    /// job.cancel()?;
    /// assert!(job.is_finished()?);
    /// # Ok(()) }
    /// ```
    pub fn is_finished(&mut self) -> Result<bool, Error> {
        if !self.seen.job.is_finished() {
            self.refresh()?;
        }
        Ok(self.seen.job.is_finished())
    }

    /// Waits until the job is terminal (bounded by the client's `wait_timeout`, if set)
    /// and returns it, whatever its outcome.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let mut job = client.submit("sleep", &serde_json::json!({"duration_seconds": 0.2}))?;
    /// let done = job.wait()?;
    /// assert_eq!(done.status, jobwire_blocking::JobStatus::Succeeded);
    /// # Ok(()) }
    /// ```
    pub fn wait(&mut self) -> Result<&Job, Error> {
        let limit = self.client.config().wait_timeout_value();
        self.wait_until(limit.and_then(|t| deadline::after(Instant::now(), t)))
    }

    /// Waits at most `timeout` for the job to be terminal; [`Error::Timeout`] otherwise.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use std::time::Duration;
    /// let mut job = client.submit("sleep", &serde_json::json!({"duration_seconds": 10}))?;
    /// let waited = job.wait_for(Duration::from_millis(100));
    /// assert!(matches!(waited, Err(jobwire_blocking::Error::Timeout { .. })));
    /// # Ok(()) }
    /// ```
    pub fn wait_for(&mut self, timeout: Duration) -> Result<&Job, Error> {
        // A timeout too large to add to now is no deadline at all.
        self.wait_until(deadline::after(Instant::now(), timeout))
    }

    /// The wait's drive loop: the core's [`WaitPlan`] decides (push, re-read,
    /// long-poll), this does it.
    pub(crate) fn wait_until(&mut self, until: Option<Instant>) -> Result<&Job, Error> {
        let until = deadline::earlier(until, self.client.deadline);
        let mut plan = WaitPlan::new(until, self.client.config());
        loop {
            match plan.next(&self.seen, Instant::now()) {
                WaitStep::Finished => return Ok(&self.seen.job),
                WaitStep::TimedOut => return Err(plan.timed_out(&self.seen)),
                WaitStep::Watch { deadline } => {
                    let wake = self.client.wake_of(&self.seen, deadline);
                    plan.on_wake(&mut self.seen, wake);
                }
                WaitStep::Sleep(pause) => std::thread::sleep(pause),
                WaitStep::Refresh => {
                    let fresh = self.client.execute(&GetJob::new(self.id()))?;
                    plan.on_job(&mut self.seen, fresh, Instant::now());
                }
                WaitStep::Poll { wait } => {
                    let endpoint = GetJob::new(self.id()).wait(wait);
                    let fresh = self.client.execute(&endpoint)?;
                    plan.on_job(&mut self.seen, fresh, Instant::now());
                }
            }
        }
    }

    /// Waits for the job and decodes its output as `T` (or `serde_json::Value`); a job
    /// that failed or was cancelled is [`Error::JobFailed`] or [`Error::JobCancelled`].
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// #[derive(serde::Deserialize)]
    /// struct Slept { slept: f64 }
    /// let mut job = client.submit("sleep", &serde_json::json!({"duration_seconds": 0.1}))?;
    /// let out: Slept = job.result()?;
    /// assert_eq!(out.slept, 0.1);
    /// # Ok(()) }
    /// ```
    pub fn result<T: DeserializeOwned>(&mut self) -> Result<T, Error> {
        self.wait()?;
        job_result(&self.seen.job)
    }

    /// Asks the server to cancel the job (idempotent) and returns it as it now stands.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let mut job = client.submit("sleep", &serde_json::json!({"duration_seconds": 60}))?;
    /// assert_eq!(job.cancel()?.status, jobwire_blocking::JobStatus::Cancelled);
    /// assert!(matches!(job.result::<serde_json::Value>(), Err(jobwire_blocking::Error::JobCancelled { .. })));
    /// # Ok(()) }
    /// ```
    pub fn cancel(&mut self) -> Result<&Job, Error> {
        let fresh = self.client.execute(&CancelJob::new(self.id()))?;
        self.seen.update(fresh);
        Ok(&self.seen.job)
    }
}
