//! A job handle: its cached state, and how to refresh, wait for, read and cancel it.

use std::time::{Duration, Instant};

use jobwire_core::endpoint::{CancelJob, GetJob};
use jobwire_core::outcome::job_result;
use jobwire_core::wait::{WaitStep, Waiter};
use jobwire_core::{Error, Job, JobStatus};
use serde::de::DeserializeOwned;

use crate::Client;

/// A submitted job. It caches the job as last seen: [`status`](Self::status) reads the
/// cache, [`refresh`](Self::refresh) and the waits update it.
///
/// ```no_run
/// # fn demo(client: jobwire_blocking::Client) -> Result<(), jobwire_blocking::Error> {
/// let mut job = client.submit("sleep", &serde_json::json!({"duration_seconds": 1}))?;
/// println!("{} is {}", job.id(), job.status());
/// let out: serde_json::Value = job.result()?; // waits on a long-poll, no sleep loop
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct JobHandle {
    client: Client,
    job: Job,
}

impl JobHandle {
    pub(crate) fn new(client: Client, job: Job) -> Self {
        JobHandle { client, job }
    }

    /// The job's id (`job_…`).
    pub fn id(&self) -> &str {
        &self.job.id
    }

    /// The status as last seen; sends nothing.
    pub fn status(&self) -> &JobStatus {
        &self.job.status
    }

    /// The whole job as last seen; sends nothing.
    pub fn job(&self) -> &Job {
        &self.job
    }

    /// Fetches the job's current state.
    pub fn refresh(&mut self) -> Result<&Job, Error> {
        self.job = self.client.execute(&GetJob::new(&self.job.id))?;
        Ok(&self.job)
    }

    /// Whether the job has finished; asks the server only while the cache says it has
    /// not.
    pub fn is_finished(&mut self) -> Result<bool, Error> {
        if !self.job.is_finished() {
            self.refresh()?;
        }
        Ok(self.job.is_finished())
    }

    /// Waits until the job is terminal (bounded by the client's `wait_timeout`, if set)
    /// and returns it, whatever its outcome.
    pub fn wait(&mut self) -> Result<&Job, Error> {
        let deadline = self
            .client
            .config()
            .default_wait_timeout()
            .map(|t| Instant::now() + t);
        self.wait_until(deadline)
    }

    /// Waits at most `timeout` for the job to be terminal; [`Error::Timeout`] otherwise.
    pub fn wait_for(&mut self, timeout: Duration) -> Result<&Job, Error> {
        self.wait_until(Some(Instant::now() + timeout))
    }

    fn wait_until(&mut self, deadline: Option<Instant>) -> Result<&Job, Error> {
        let mut waiter = Waiter::new(deadline, self.client.config().long_poll_max());
        loop {
            match waiter.next(Instant::now(), &self.job.status) {
                WaitStep::Poll { pause, wait } => {
                    if !pause.is_zero() {
                        std::thread::sleep(pause);
                    }
                    let sent = Instant::now();
                    let job = self.client.execute(&GetJob::new(&self.job.id).wait(wait))?;
                    waiter.observe(wait, sent.elapsed(), job.status != self.job.status);
                    self.job = job;
                }
                WaitStep::Finished => return Ok(&self.job),
                WaitStep::TimedOut => return Err(wait_timed_out(&self.job)),
                _ => return Err(Error::Protocol("unknown wait step".into())),
            }
        }
    }

    /// Waits for the job and decodes its output as `T` (or `serde_json::Value`).
    pub fn result<T: DeserializeOwned>(&mut self) -> Result<T, Error> {
        self.wait()?;
        job_result(&self.job)
    }

    /// Asks the server to cancel the job (idempotent) and returns it as it now stands.
    pub fn cancel(&mut self) -> Result<&Job, Error> {
        self.job = self.client.execute(&CancelJob::new(&self.job.id))?;
        Ok(&self.job)
    }
}

fn wait_timed_out(job: &Job) -> Error {
    Error::Timeout {
        what: format!("job {} to finish (still {})", job.id, job.status),
    }
}
