//! Many jobs at once: [`ServiceHandle::run_all`] (results in input order, or
//! fail-fast), [`ServiceHandle::run_unordered`] (results as they complete), each also
//! fed from a `Stream` of inputs read as room frees (`run_all_from`,
//! `run_unordered_from`: a bounded channel works), and [`JobGuard`] (cancels its jobs
//! when dropped). The bookkeeping is the core's [`Batch`] and [`Plan`]; this runs the
//! jobs as futures of the caller's task, at most `concurrency` at a time.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_core::Stream;
use futures_util::future::{select, BoxFuture, Either};
use futures_util::stream::{FuturesUnordered, StreamExt};
use jobwire_core::batch::{self, Batch, BatchEvent, BatchReport, Input, Mode, Next, Plan};
use jobwire_core::endpoint::CancelJob;
use jobwire_core::outcome::job_result;
use jobwire_core::run::RunPlan;
use jobwire_core::Error;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::stream::lock;
use crate::{Client, JobHandle, ServiceHandle};

/// Where a batch reads its inputs from, one at a time as room frees.
type Source = Pin<Box<dyn Stream<Item = Input> + Send>>;

/// A batch whose outcomes come back in input order; from [`ServiceHandle::run_all`] or
/// [`ServiceHandle::run_all_from`].
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
#[must_use = "a batch runs when collected"]
pub struct RunAll {
    client: Client,
    service: Arc<str>,
    source: Source,
    plan: Plan,
}

/// A batch whose outcomes come back as they complete; from
/// [`ServiceHandle::run_unordered`] or [`ServiceHandle::run_unordered_from`].
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
#[must_use = "a batch runs when its results are read"]
pub struct RunUnordered {
    client: Client,
    service: Arc<str>,
    source: Source,
    plan: Plan,
}

impl std::fmt::Debug for RunAll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunAll")
            .field("service", &self.service)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for RunUnordered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunUnordered")
            .field("service", &self.service)
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
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
            service: self.service.id.as_str().into(),
            source: eager(inputs),
            plan: self.batch_plan(),
        }
    }

    /// [`run_all`](Self::run_all) on inputs taken from `inputs` one at a time, as room
    /// frees: a lazy or endless stream, or the receiving end of a bounded channel — the
    /// batch holds no more than `concurrency` inputs beside what the stream buffers.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let (send, mut receive) = tokio::sync::mpsc::channel::<u32>(4);
    /// tokio::spawn(async move {
    ///     for i in 0..20 {
    ///         send.send(i).await.ok(); // waits while the batch is full
    ///     }
    /// });
    /// let inputs = futures_util::stream::poll_fn(move |cx| receive.poll_recv(cx));
    /// let echo = client.service("echo").await?;
    /// let outputs: Vec<u32> = echo.run_all_from(inputs).concurrency(4).try_collect().await?;
    /// assert_eq!(outputs, (0..20).collect::<Vec<_>>());
    /// # Ok(()) }
    /// ```
    pub fn run_all_from<I: Serialize>(
        &self,
        inputs: impl Stream<Item = I> + Send + 'static,
    ) -> RunAll {
        RunAll {
            client: self.client.clone(),
            service: self.service.id.as_str().into(),
            source: lazy(inputs),
            plan: self.batch_plan(),
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
            service: self.service.id.as_str().into(),
            source: eager(inputs),
            plan: self.batch_plan(),
        }
    }

    /// [`run_unordered`](Self::run_unordered) on inputs taken from `inputs` one at a
    /// time, as room frees (see [`run_all_from`](Self::run_all_from)).
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use futures_util::StreamExt;
    /// let echo = client.service("echo").await?;
    /// let endless = futures_util::stream::iter(0u64..);
    /// let first: Vec<_> = echo.run_unordered_from(endless).results::<u64>().take(5).collect().await;
    /// assert_eq!(first.len(), 5, "only what was read ran");
    /// # Ok(()) }
    /// ```
    pub fn run_unordered_from<I: Serialize>(
        &self,
        inputs: impl Stream<Item = I> + Send + 'static,
    ) -> RunUnordered {
        RunUnordered {
            client: self.client.clone(),
            service: self.service.id.as_str().into(),
            source: lazy(inputs),
            plan: self.batch_plan(),
        }
    }
}

impl ServiceHandle {
    /// How a batch of this service runs by default: with feature `validation`, each
    /// input checked against the service's input schema before it is sent.
    fn batch_plan(&self) -> Plan {
        let plan = Plan::default();
        #[cfg(feature = "validation")]
        let plan = plan.checked_against(self.service.clone(), self.input_check.clone());
        plan
    }
}

/// Inputs made JSON now, handed out one at a time.
fn eager<I: Serialize>(inputs: impl IntoIterator<Item = I>) -> Source {
    let inputs: Vec<Input> = inputs.into_iter().map(|i| batch::input(&i)).collect();
    Box::pin(futures_util::stream::iter(inputs))
}

/// Inputs made JSON as they are read.
fn lazy<I: Serialize>(inputs: impl Stream<Item = I> + Send + 'static) -> Source {
    Box::pin(inputs.map(|i| batch::input(&i)))
}

impl RunAll {
    /// At most `n` jobs in flight at once (default 8; 0 counts as 1).
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let echo = client.service("echo").await?;
    /// let outputs: Vec<u32> = echo.run_all(0..32).concurrency(16).try_collect().await?;
    /// assert_eq!(outputs.len(), 32);
    /// # Ok(()) }
    /// ```
    pub fn concurrency(mut self, n: usize) -> Self {
        self.plan = self.plan.concurrency(n);
        self
    }

    /// Calls `hook` with each [`BatchEvent`] — submitted, progress, finished, failed,
    /// each with the input's index and its job's id — to drive a progress bar, say.
    /// With a hook, each job's events are followed for its progress.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use jobwire::BatchEvent;
    /// let echo = client.service("echo").await?;
    /// let report = echo
    ///     .run_all([1, 2])
    ///     .on_event(|event| {
    ///         if let BatchEvent::Finished { index, job_id } = event {
    ///             println!("input {index} done as {job_id}");
    ///         }
    ///     })
    ///     .collect::<u32>()
    ///     .await;
    /// assert_eq!(report.summary.succeeded, 2);
    /// # Ok(()) }
    /// ```
    pub fn on_event(mut self, hook: impl Fn(&BatchEvent) + Send + Sync + 'static) -> Self {
        self.plan = self.plan.on_event(hook);
        self
    }

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
    pub async fn collect<O: DeserializeOwned + Send + 'static>(self) -> BatchReport<O> {
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
    pub async fn try_collect<O: DeserializeOwned + Send + 'static>(self) -> Result<Vec<O>, Error> {
        self.drive(Mode::FailFast).await.into_outputs()
    }

    /// Runs the batch to its end in `mode`.
    async fn drive<O: DeserializeOwned + Send + 'static>(self, mode: Mode) -> Batch<O> {
        let RunAll {
            client,
            service,
            source,
            plan,
        } = self;
        let mut driver = Driver::new(client, service, source, plan, mode);
        while driver.next_finished().await.is_some() {}
        driver.into_batch()
    }
}

impl RunUnordered {
    /// At most `n` jobs in flight at once (default 8; 0 counts as 1).
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use futures_util::StreamExt;
    /// let echo = client.service("echo").await?;
    /// let done = echo.run_unordered(0..32).concurrency(16).results::<u32>().count().await;
    /// assert_eq!(done, 32);
    /// # Ok(()) }
    /// ```
    pub fn concurrency(mut self, n: usize) -> Self {
        self.plan = self.plan.concurrency(n);
        self
    }

    /// Stops at the first error: nothing more starts, the other jobs in flight are
    /// cancelled on the server, and the error is the last item.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use futures_util::StreamExt;
    /// let sleep = client.service("sleep").await?;
    /// let inputs = [30.0, -1.0, 30.0].map(|s| serde_json::json!({ "duration_seconds": s }));
    /// let items: Vec<_> = sleep.run_unordered(inputs).fail_fast().results::<serde_json::Value>().collect().await;
    /// assert!(matches!(items[..], [(1, Err(_))]), "the 30 s jobs were cancelled");
    /// # Ok(()) }
    /// ```
    pub fn fail_fast(mut self) -> Self {
        self.plan = self.plan.fail_fast();
        self
    }

    /// Calls `hook` with each [`BatchEvent`] (see [`RunAll::on_event`]).
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use futures_util::StreamExt;
    /// let echo = client.service("echo").await?;
    /// let done = echo
    ///     .run_unordered([1, 2])
    ///     .on_event(|event| println!("{event:?}"))
    ///     .results::<u32>()
    ///     .count()
    ///     .await;
    /// assert_eq!(done, 2);
    /// # Ok(()) }
    /// ```
    pub fn on_event(mut self, hook: impl Fn(&BatchEvent) + Send + Sync + 'static) -> Self {
        self.plan = self.plan.on_event(hook);
        self
    }

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
            source,
            plan,
        } = self;
        let mode = plan.mode();
        let driver = Driver::new(client, service, source, plan, mode);
        futures_util::stream::unfold(driver, |mut driver| async move {
            loop {
                let index = driver.next_finished().await?;
                if let Some(outcome) = driver.reported(index) {
                    return Some(((index, outcome), driver));
                }
            }
        })
    }
}

/// A job of a batch, running: its input's index and outcome when it ends.
type Running<O> = BoxFuture<'static, (usize, Result<O, Error>)>;

/// Drives one batch: reads inputs as the core's [`Batch`] makes room, runs each as a
/// future, hands the batch each outcome and cancels what it says to.
struct Driver<O> {
    client: Client,
    service: Arc<str>,
    source: Source,
    plan: Plan,
    batch: Arc<Mutex<Batch<O>>>,
    running: FuturesUnordered<Running<O>>,
    /// An input the batch has room for, not yet read from the source.
    to_read: Option<usize>,
}

impl<O: DeserializeOwned + Send + 'static> Driver<O> {
    fn new(client: Client, service: Arc<str>, source: Source, plan: Plan, mode: Mode) -> Self {
        let batch = Arc::new(Mutex::new(Batch::new(plan.concurrency_value(), mode)));
        Driver {
            client,
            service,
            source,
            plan,
            batch,
            running: FuturesUnordered::new(),
            to_read: None,
        }
    }

    /// Runs the batch until an input's job ends and answers that input's index; `None`
    /// when nothing is left. The jobs in flight go on while the next input is awaited.
    async fn next_finished(&mut self) -> Option<usize> {
        loop {
            let next = match self.to_read.take() {
                Some(index) if lock(&self.batch).still_wanted(index) => Next::Start(index),
                _ => lock(&self.batch).next_step(),
            };
            let index = match next {
                Next::Start(index) => index,
                Next::Wait => {
                    let (index, outcome) = self.running.next().await?;
                    return Some(self.finish(index, outcome).await);
                }
                Next::Done => return None,
            };
            self.to_read = Some(index);
            let read = if self.running.is_empty() {
                Either::Left(self.source.next().await)
            } else {
                match select(self.source.next(), self.running.next()).await {
                    Either::Left((input, _)) => Either::Left(input),
                    Either::Right((ended, _)) => Either::Right(ended),
                }
            };
            match read {
                Either::Left(input) => {
                    self.to_read = None;
                    match input {
                        Some(input) if lock(&self.batch).still_wanted(index) => {
                            let job = self.start(index, input);
                            self.running.push(job);
                        }
                        // The batch stopped while its input was read: dropped.
                        Some(_) => {}
                        None => lock(&self.batch).exhausted(index),
                    }
                }
                Either::Right(Some((ended, outcome))) => {
                    return Some(self.finish(ended, outcome).await)
                }
                Either::Right(None) => {}
            }
        }
    }

    /// Input `index` runs as a job.
    fn start(&self, index: usize, input: Input) -> Running<O> {
        let (client, service, plan) =
            (self.client.clone(), self.service.clone(), self.plan.clone());
        let batch = self.batch.clone();
        Box::pin(async move {
            let mut job_id = None;
            let submitted = |id: &str| lock(&batch).submitted(index, id);
            let outcome = client
                .run_item(&service, &plan, index, input, &mut job_id, submitted)
                .await;
            plan.emit_outcome(index, job_id.as_deref(), &outcome);
            (index, outcome)
        })
    }

    /// Hands the batch input `index`'s outcome and cancels what it says to; answers
    /// `index`.
    async fn finish(&mut self, index: usize, outcome: Result<O, Error>) -> usize {
        let cancel = lock(&self.batch).finished(index, outcome);
        cancel_all(&self.client, cancel).await;
        index
    }

    /// Input `index`'s outcome, if it is one to hand out as it comes.
    fn reported(&mut self, index: usize) -> Option<Result<O, Error>> {
        let mut batch = lock(&self.batch);
        if batch.reports(index) {
            batch.take_outcome(index)
        } else {
            None
        }
    }

    /// The batch, once it is done.
    fn into_batch(self) -> Batch<O> {
        let mut batch = lock(&self.batch);
        std::mem::replace(&mut *batch, Batch::new(1, Mode::Collect))
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
    /// what happens and `job_id` the job it became. `submitted(job_id)` answers whether
    /// to cancel the job at once (the batch stopped meanwhile).
    async fn run_item<O: DeserializeOwned>(
        &self,
        service: &str,
        plan: &Plan,
        index: usize,
        input: Input,
        job_id: &mut Option<String>,
        submitted: impl FnOnce(&str) -> bool,
    ) -> Result<O, Error> {
        let input = plan.decode_input(input)?;
        let mut run = RunPlan::new(self.config(), self.deadline, Instant::now());
        if plan.follows_events() {
            // Answered at once: the job's events tell the rest.
            run = run.answered_at_once();
        }
        let mut job = self
            .submit_with(service, &input, run.submit_options())
            .await?;
        drop(input);
        *job_id = Some(job.id().to_owned());
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
