//! Many jobs at once: [`ServiceHandle::run_all`] (results in input order, or
//! fail-fast), [`ServiceHandle::run_unordered`] (results as they complete), and
//! [`JobGuard`] (cancels its jobs when dropped). The bookkeeping is the core's
//! [`Batch`] and [`Plan`]; this runs the jobs on a bounded set of threads
//! (`concurrency` of them), with no runtime.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use jobwire_core::batch::{Batch, BatchEvent, BatchReport, Mode, Next, Plan};
use jobwire_core::endpoint::CancelJob;
use jobwire_core::outcome::job_result;
use jobwire_core::run::RunPlan;
use jobwire_core::Error;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::stream::lock;
use crate::{Client, JobHandle, ServiceHandle};

/// A batch whose outcomes come back in input order; from [`ServiceHandle::run_all`].
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
/// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
/// let echo = client.service("echo")?;
/// let outputs: Vec<u32> = echo.run_all([1, 2, 3]).concurrency(2).try_collect()?;
/// assert_eq!(outputs, [1, 2, 3]);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a batch runs when collected"]
pub struct RunAll {
    client: Client,
    service: String,
    plan: Plan,
}

/// A batch whose outcomes come back as they complete; from
/// [`ServiceHandle::run_unordered`].
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
/// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
/// let echo = client.service("echo")?;
/// let done: Vec<_> = echo.run_unordered([1, 2, 3]).results::<u32>().collect();
/// assert_eq!(done.len(), 3);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
#[must_use = "a batch runs when its results are read"]
pub struct RunUnordered {
    client: Client,
    service: String,
    plan: Plan,
}

/// Cancels the jobs added to it when dropped, unless [`disarm`](Self::disarm)ed: the
/// rollback of a step that started jobs and then failed. From [`Client::guard`].
///
/// Dropping it cancels the jobs and waits for the server's answers, like
/// [`cancel_all`](Self::cancel_all).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
/// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
/// let long = serde_json::json!({"duration_seconds": 60});
/// let mut guard = client.guard();
/// let a = guard.add(client.submit("sleep", &long)?);
/// let b = guard.add(client.submit("sleep", &long)?);
/// // … a step that returns early with `?` would leave `guard` to cancel both …
/// guard.disarm(); // all went well: the jobs keep running
/// # let _ = (a, b);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a guard cancels its jobs when dropped"]
pub struct JobGuard {
    client: Client,
    jobs: Vec<String>,
}

impl ServiceHandle {
    /// Runs a job per input on at most `concurrency` threads (default 8); `.collect()`
    /// answers every outcome in input order with a summary, `.try_collect()` the
    /// outputs or the first error — which cancels the other jobs in flight.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let sleep = client.service("sleep")?;
    /// let inputs = [0.1, -1.0, 0.1].map(|s| serde_json::json!({ "duration_seconds": s }));
    /// let report = sleep.run_all(inputs).concurrency(3).collect::<serde_json::Value>();
    /// assert_eq!((report.summary.succeeded, report.summary.failed), (2, 1));
    /// for (index, outcome) in report.results {
    ///     if let Err(e) = outcome {
    ///         println!("input {index}: {e}");
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn run_all<I: Serialize>(&self, inputs: impl IntoIterator<Item = I>) -> RunAll {
        RunAll {
            client: self.client.clone(),
            service: self.service.id.clone(),
            plan: Plan::new(inputs),
        }
    }

    /// Runs a job per input on at most `concurrency` threads (default 8); `.results()`
    /// yields `(index, outcome)` as each job ends.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let sleep = client.service("sleep")?;
    /// let inputs = [0.3, 0.1, 0.2].map(|s| serde_json::json!({ "duration_seconds": s }));
    /// let order: Vec<usize> = sleep
    ///     .run_unordered(inputs)
    ///     .concurrency(3)
    ///     .results::<serde_json::Value>()
    ///     .map(|(index, _)| index)
    ///     .collect();
    /// assert_eq!(order, [1, 2, 0], "as they end");
    /// # Ok(()) }
    /// ```
    pub fn run_unordered<I: Serialize>(&self, inputs: impl IntoIterator<Item = I>) -> RunUnordered {
        RunUnordered {
            client: self.client.clone(),
            service: self.service.id.clone(),
            plan: Plan::new(inputs),
        }
    }
}

impl RunAll {
    jobwire_core::__batch_setters!(plan);

    /// Runs every input and answers each outcome in input order, with a summary.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let echo = client.service("echo")?;
    /// let report = echo.run_all((0..10).map(|i| serde_json::json!({ "i": i }))).collect::<serde_json::Value>();
    /// assert_eq!(report.summary.succeeded, 10);
    /// assert_eq!(report.results[3].1.as_ref().unwrap()["i"], 3);
    /// # Ok(()) }
    /// ```
    pub fn collect<O: DeserializeOwned + Send>(self) -> BatchReport<O> {
        self.drive(Mode::Collect).into_report()
    }

    /// Runs the inputs until one fails: then nothing more starts, the jobs in flight are
    /// cancelled on the server, and that first error is the answer. Otherwise the
    /// outputs, in input order.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let sleep = client.service("sleep")?;
    /// let inputs = [30.0, -1.0].map(|s| serde_json::json!({ "duration_seconds": s }));
    /// let first_error = sleep.run_all(inputs).try_collect::<serde_json::Value>();
    /// assert!(first_error.is_err(), "and the 30 s job was cancelled");
    /// # Ok(()) }
    /// ```
    pub fn try_collect<O: DeserializeOwned + Send>(self) -> Result<Vec<O>, Error> {
        self.drive(Mode::FailFast).into_outputs()
    }

    /// The batch's drive loop, on each of `concurrency` threads: the core's [`Batch`]
    /// decides what to start and what to cancel.
    fn drive<O: DeserializeOwned + Send>(self, mode: Mode) -> Batch<O> {
        let RunAll {
            client,
            service,
            plan,
        } = self;
        let state = Mutex::new(Batch::new(plan.len(), plan.concurrency_value(), mode));
        let threads = plan.concurrency_value().min(plan.len());
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    // A thread holds one job at most, so there is room whenever it asks.
                    let index = match lock(&state).next_step() {
                        Next::Start(index) => index,
                        Next::Wait | Next::Done => return,
                    };
                    let submitted = |job_id: &str| lock(&state).submitted(index, job_id);
                    let outcome = client.run_item(&service, &plan, index, submitted);
                    plan.emit_outcome(index, &outcome);
                    let cancel = lock(&state).finished(index, outcome);
                    cancel_all(&client, cancel);
                });
            }
        });
        state.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RunUnordered {
    jobwire_core::__batch_setters!(plan);

    /// `(index, outcome)` of each input as its job ends, from `concurrency` threads
    /// started now. Dropping the iterator starts no more jobs; those in flight go on.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let echo = client.service("echo")?;
    /// let mut sum = 0;
    /// for (_index, outcome) in echo.run_unordered(0..5).concurrency(2).results::<u32>() {
    ///     sum += outcome?;
    /// }
    /// assert_eq!(sum, 10);
    /// # Ok(()) }
    /// ```
    pub fn results<O: DeserializeOwned + Send + 'static>(
        self,
    ) -> impl Iterator<Item = (usize, Result<O, Error>)> {
        let RunUnordered {
            client,
            service,
            plan,
        } = self;
        let total = plan.len();
        let next = Arc::new(Mutex::new(0usize));
        let (tx, rx) = mpsc::channel();
        for _ in 0..plan.concurrency_value().min(total) {
            let (client, service, plan) = (client.clone(), service.clone(), plan.clone());
            let (next, tx) = (next.clone(), tx.clone());
            std::thread::spawn(move || loop {
                let index = {
                    let mut next = lock(&next);
                    if *next >= total {
                        return;
                    }
                    *next += 1;
                    *next - 1
                };
                let outcome = client.run_item::<O>(&service, &plan, index, |_| false);
                plan.emit_outcome(index, &outcome);
                if tx.send((index, outcome)).is_err() {
                    // The caller dropped the results: start nothing more.
                    return;
                }
            });
        }
        rx.into_iter().take(total)
    }
}

impl Client {
    /// A [`JobGuard`]: the jobs added to it are cancelled when it is dropped, unless it
    /// is disarmed first.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let mut guard = client.guard();
    /// let mut job = guard.add(client.submit("sleep", &serde_json::json!({"duration_seconds": 60}))?);
    /// guard.cancel_all();
    /// assert_eq!(job.refresh()?.status, jobwire_blocking::JobStatus::Cancelled);
    /// # Ok(()) }
    /// ```
    pub fn guard(&self) -> JobGuard {
        JobGuard {
            client: self.clone(),
            jobs: Vec::new(),
        }
    }

    /// Runs input `index` of a batch like [`run`](Self::run), telling the plan's hook
    /// what happens. `submitted(job_id)` answers whether to cancel the job at once (the
    /// batch stopped meanwhile).
    fn run_item<O: DeserializeOwned>(
        &self,
        service: &str,
        plan: &Plan,
        index: usize,
        submitted: impl FnOnce(&str) -> bool,
    ) -> Result<O, Error> {
        let input = plan.input(index)?;
        let mut run = RunPlan::new(self.config(), self.deadline, Instant::now());
        if plan.follows_events() {
            // Answered at once: the job's events tell the rest.
            run = run.answered_at_once();
        }
        let mut job = self.submit_with(service, &input, run.submit_options())?;
        plan.emit(BatchEvent::Submitted {
            index,
            job_id: job.id().to_owned(),
        });
        if submitted(job.id()) {
            job.cancel()?;
        }
        if plan.follows_events() && !job.job().is_finished() {
            for event in job.events() {
                if let Some(done) = plan.observe_event(index, &event?) {
                    return job_result(done);
                }
            }
        }
        job.wait_until(run.deadline())?;
        job_result(job.job())
    }
}

impl JobGuard {
    /// Guards `job` (cancelled on drop) and hands it back.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let mut guard = client.guard();
    /// let job = guard.add(client.submit("echo", &1)?);
    /// assert_eq!(guard.job_ids(), [job.id()]);
    /// guard.disarm();
    /// # Ok(()) }
    /// ```
    pub fn add(&mut self, job: JobHandle) -> JobHandle {
        self.jobs.push(job.id().to_owned());
        job
    }

    /// The ids of the guarded jobs.
    ///
    /// ```
    /// # let client = jobwire_blocking::Client::builder().build()?;
    /// assert!(client.guard().job_ids().is_empty());
    /// # Ok::<(), jobwire_blocking::Error>(())
    /// ```
    pub fn job_ids(&self) -> &[String] {
        &self.jobs
    }

    /// Keeps the jobs: nothing is cancelled when the guard is dropped.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let mut guard = client.guard();
    /// let mut job = guard.add(client.submit("sleep", &serde_json::json!({"duration_seconds": 60}))?);
    /// guard.disarm();
    /// assert_eq!(job.refresh()?.status, jobwire_blocking::JobStatus::Running);
    /// # Ok(()) }
    /// ```
    pub fn disarm(mut self) {
        self.jobs.clear();
    }

    /// Cancels the guarded jobs now and waits for the server's answers (dropping the
    /// guard does the same); a cancel that fails is logged.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let mut guard = client.guard();
    /// let mut job = guard.add(client.submit("sleep", &serde_json::json!({"duration_seconds": 60}))?);
    /// guard.cancel_all();
    /// assert!(job.refresh()?.status.is_terminal());
    /// # Ok(()) }
    /// ```
    pub fn cancel_all(mut self) {
        let ids = std::mem::take(&mut self.jobs);
        cancel_all(&self.client, ids);
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        let ids = std::mem::take(&mut self.jobs);
        cancel_all(&self.client, ids);
    }
}

/// Cancels jobs, one after another; a cancel that fails is only logged (the batch has
/// its answer already).
fn cancel_all(client: &Client, ids: Vec<String>) {
    for id in &ids {
        if let Err(e) = client.execute(&CancelJob::new(id)) {
            tracing::warn!(job_id = %id, error = %e, "cannot cancel a job of a stopped batch");
        }
    }
}
