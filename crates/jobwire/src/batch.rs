//! Many jobs at once: [`ServiceHandle::run_all`] (results in input order, or
//! fail-fast), [`ServiceHandle::run_unordered`] (results as they complete), and
//! [`JobGuard`] (cancels its jobs when dropped). The bookkeeping is the core's
//! [`Batch`] and [`Plan`]; this runs the jobs as futures of the caller's task, at most
//! `concurrency` at a time.

use std::sync::Mutex;
use std::time::Instant;

use futures_core::Stream;
use futures_util::stream::{FuturesUnordered, StreamExt};
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
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
/// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
/// let echo = client.service("echo").await?;
/// let outputs: Vec<u32> = echo.run_all([1, 2, 3]).concurrency(2).try_collect().await?;
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
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
/// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
/// use futures_util::StreamExt;
/// let echo = client.service("echo").await?;
/// let done: Vec<_> = echo.run_unordered([1, 2, 3]).results::<u32>().collect().await;
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
/// Dropping cannot wait, so the cancels run on a task of the current tokio runtime;
/// [`cancel_all`](Self::cancel_all) cancels and waits for the answers.
///
/// ```
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
/// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
/// let long = serde_json::json!({"duration_seconds": 60});
/// let mut guard = client.guard();
/// let a = guard.add(client.submit("sleep", &long).await?);
/// let b = guard.add(client.submit("sleep", &long).await?);
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
    /// Runs a job per input, at most `concurrency` at a time (default 8); `.collect()`
    /// answers every outcome in input order with a summary, `.try_collect()` the
    /// outputs or the first error — which cancels the other jobs in flight.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let sleep = client.service("sleep").await?;
    /// let inputs = [0.1, -1.0, 0.1].map(|s| serde_json::json!({ "duration_seconds": s }));
    /// let report = sleep.run_all(inputs).concurrency(3).collect::<serde_json::Value>().await;
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

    /// Runs a job per input, at most `concurrency` at a time (default 8); `.results()`
    /// yields `(index, outcome)` as each job ends.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use futures_util::StreamExt;
    /// let sleep = client.service("sleep").await?;
    /// let inputs = [0.3, 0.1, 0.2].map(|s| serde_json::json!({ "duration_seconds": s }));
    /// let order: Vec<usize> = sleep
    ///     .run_unordered(inputs)
    ///     .concurrency(3)
    ///     .results::<serde_json::Value>()
    ///     .map(|(index, _)| index)
    ///     .collect()
    ///     .await;
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
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let echo = client.service("echo").await?;
    /// let report = echo.run_all((0..10).map(|i| serde_json::json!({ "i": i }))).collect::<serde_json::Value>().await;
    /// assert_eq!(report.summary.succeeded, 10);
    /// assert_eq!(report.results[3].1.as_ref().unwrap()["i"], 3);
    /// # Ok(()) }
    /// ```
    pub async fn collect<O: DeserializeOwned>(self) -> BatchReport<O> {
        self.drive(Mode::Collect).await.into_report()
    }

    /// Runs the inputs until one fails: then nothing more starts, the jobs in flight are
    /// cancelled on the server, and that first error is the answer. Otherwise the
    /// outputs, in input order.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let sleep = client.service("sleep").await?;
    /// let inputs = [30.0, -1.0].map(|s| serde_json::json!({ "duration_seconds": s }));
    /// let first_error = sleep.run_all(inputs).try_collect::<serde_json::Value>().await;
    /// assert!(first_error.is_err(), "and the 30 s job was cancelled");
    /// # Ok(()) }
    /// ```
    pub async fn try_collect<O: DeserializeOwned>(self) -> Result<Vec<O>, Error> {
        self.drive(Mode::FailFast).await.into_outputs()
    }

    /// The batch's drive loop: the core's [`Batch`] decides what to start and what to
    /// cancel.
    async fn drive<O: DeserializeOwned>(self, mode: Mode) -> Batch<O> {
        let RunAll {
            client,
            service,
            plan,
        } = self;
        let state = Mutex::new(Batch::new(plan.len(), plan.concurrency_value(), mode));
        let mut running = FuturesUnordered::new();
        loop {
            let next = lock(&state).next_step();
            match next {
                Next::Start(index) => {
                    let (client, service, plan, state) = (&client, &service, &plan, &state);
                    let submitted = move |job_id: &str| lock(state).submitted(index, job_id);
                    running.push(async move {
                        let outcome = client.run_item(service, plan, index, submitted).await;
                        (index, outcome)
                    });
                }
                Next::Wait => {
                    let Some((index, outcome)) = running.next().await else {
                        break;
                    };
                    plan.emit_outcome(index, &outcome);
                    let cancel = lock(&state).finished(index, outcome);
                    cancel_all(&client, cancel).await;
                }
                Next::Done => break,
            }
        }
        drop(running);
        state
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl RunUnordered {
    jobwire_core::__batch_setters!(plan);

    /// `(index, outcome)` of each input as its job ends, at most `concurrency` jobs in
    /// flight. Dropping the stream starts no more jobs; those in flight go on.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use futures_util::StreamExt;
    /// let echo = client.service("echo").await?;
    /// let mut results = std::pin::pin!(echo.run_unordered(0..5).concurrency(2).results::<u32>());
    /// let mut sum = 0;
    /// while let Some((_index, outcome)) = results.next().await {
    ///     sum += outcome?;
    /// }
    /// assert_eq!(sum, 10);
    /// # Ok(()) }
    /// ```
    pub fn results<O: DeserializeOwned + Send + 'static>(
        self,
    ) -> impl Stream<Item = (usize, Result<O, Error>)> + Send + 'static {
        let RunUnordered {
            client,
            service,
            plan,
        } = self;
        let concurrency = plan.concurrency_value();
        futures_util::stream::iter(0..plan.len())
            .map(move |index| {
                let (client, service, plan) = (client.clone(), service.clone(), plan.clone());
                async move {
                    let outcome = client.run_item(&service, &plan, index, |_| false).await;
                    plan.emit_outcome(index, &outcome);
                    (index, outcome)
                }
            })
            .buffer_unordered(concurrency)
    }
}

impl Client {
    /// A [`JobGuard`]: the jobs added to it are cancelled when it is dropped, unless it
    /// is disarmed first.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let mut guard = client.guard();
    /// let mut job = guard.add(client.submit("sleep", &serde_json::json!({"duration_seconds": 60})).await?);
    /// guard.cancel_all().await;
    /// assert_eq!(job.refresh().await?.status, jobwire::JobStatus::Cancelled);
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
    async fn run_item<O: DeserializeOwned>(
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
        let mut job = self
            .submit_with(service, &input, run.submit_options())
            .await?;
        plan.emit(BatchEvent::Submitted {
            index,
            job_id: job.id().to_owned(),
        });
        if submitted(job.id()) {
            job.cancel().await?;
        }
        if plan.follows_events() && !job.job().is_finished() {
            let mut events = job.events();
            while let Some(event) = events.next().await {
                if let Some(done) = plan.observe_event(index, &event?) {
                    return job_result(done);
                }
            }
        }
        job.wait_until(run.deadline()).await?;
        job_result(job.job())
    }
}

impl JobGuard {
    /// Guards `job` (cancelled on drop) and hands it back.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let mut guard = client.guard();
    /// let job = guard.add(client.submit("echo", &1).await?);
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
    /// # let client = jobwire::Client::builder().build()?;
    /// assert!(client.guard().job_ids().is_empty());
    /// # Ok::<(), jobwire::Error>(())
    /// ```
    pub fn job_ids(&self) -> &[String] {
        &self.jobs
    }

    /// Keeps the jobs: nothing is cancelled when the guard is dropped.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let mut guard = client.guard();
    /// let mut job = guard.add(client.submit("sleep", &serde_json::json!({"duration_seconds": 60})).await?);
    /// guard.disarm();
    /// assert_eq!(job.refresh().await?.status, jobwire::JobStatus::Running);
    /// # Ok(()) }
    /// ```
    pub fn disarm(mut self) {
        self.jobs.clear();
    }

    /// Cancels the guarded jobs now and waits for the server's answers; a cancel that
    /// fails is logged.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let mut guard = client.guard();
    /// let mut job = guard.add(client.submit("sleep", &serde_json::json!({"duration_seconds": 60})).await?);
    /// guard.cancel_all().await;
    /// assert!(job.refresh().await?.status.is_terminal());
    /// # Ok(()) }
    /// ```
    pub async fn cancel_all(mut self) {
        let ids = std::mem::take(&mut self.jobs);
        cancel_all(&self.client, ids).await;
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        if self.jobs.is_empty() {
            return;
        }
        let (client, ids) = (self.client.clone(), std::mem::take(&mut self.jobs));
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { cancel_all(&client, ids).await });
            }
            Err(_) => tracing::warn!(
                jobs = ids.len(),
                "a JobGuard dropped outside a tokio runtime cannot cancel its jobs"
            ),
        }
    }
}

/// Cancels jobs, all at once; a cancel that fails is only logged (the batch has its
/// answer already).
async fn cancel_all(client: &Client, ids: Vec<String>) {
    let cancels = ids
        .iter()
        .map(|id| async move { client.execute(&CancelJob::new(id)).await });
    for (id, result) in ids
        .iter()
        .zip(futures_util::future::join_all(cancels).await)
    {
        if let Err(e) = result {
            tracing::warn!(job_id = %id, error = %e, "cannot cancel a job of a stopped batch");
        }
    }
}
