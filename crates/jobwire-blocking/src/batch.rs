//! Many jobs at once: [`ServiceHandle::run_all`] (results in input order, or
//! fail-fast), [`ServiceHandle::run_unordered`] (results as they complete), each also
//! fed from an iterator of inputs read as room frees (`run_all_from`,
//! `run_unordered_from`: a bounded channel's receiver works), and [`JobGuard`] (cancels
//! its jobs when dropped). The bookkeeping is the core's [`Batch`] and [`Plan`]; this
//! runs the jobs on a bounded set of threads (`concurrency` of them), with no runtime.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
type Source = Box<dyn Iterator<Item = Input> + Send>;

/// A batch whose outcomes come back in input order; from [`ServiceHandle::run_all`] or
/// [`ServiceHandle::run_all_from`].
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
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
/// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
/// let echo = client.service("echo")?;
/// let done: Vec<_> = echo.run_unordered([1, 2, 3]).results::<u32>().collect();
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
    /// Runs a job per input, at most `concurrency` at a time (default 8); `.collect()`
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
            service: self.service.id.as_str().into(),
            source: eager(inputs),
            plan: self.batch_plan(),
        }
    }

    /// [`run_all`](Self::run_all) on inputs taken from `inputs` one at a time, as room
    /// frees: a lazy or endless iterator, or the receiving end of a bounded channel —
    /// the batch holds no more than `concurrency` inputs beside what the channel buffers.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let (send, receive) = std::sync::mpsc::sync_channel::<u32>(4);
    /// std::thread::spawn(move || {
    ///     for i in 0..20 {
    ///         send.send(i).ok(); // waits while the batch is full
    ///     }
    /// });
    /// let echo = client.service("echo")?;
    /// let outputs: Vec<u32> = echo.run_all_from(receive).concurrency(4).try_collect()?;
    /// assert_eq!(outputs, (0..20).collect::<Vec<_>>());
    /// # Ok(()) }
    /// ```
    pub fn run_all_from<I, S>(&self, inputs: S) -> RunAll
    where
        I: Serialize,
        S: IntoIterator<Item = I>,
        S::IntoIter: Send + 'static,
    {
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
    ///     .collect()
    ///;
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
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let echo = client.service("echo")?;
    /// let first: Vec<_> = echo.run_unordered_from(0u64..).concurrency(2).results::<u64>().take(5).collect();
    /// assert_eq!(first.len(), 5, "only what was read ran");
    /// # Ok(()) }
    /// ```
    pub fn run_unordered_from<I, S>(&self, inputs: S) -> RunUnordered
    where
        I: Serialize,
        S: IntoIterator<Item = I>,
        S::IntoIter: Send + 'static,
    {
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
    Box::new(inputs.into_iter())
}

/// Inputs made JSON as they are read.
fn lazy<I: Serialize, S>(inputs: S) -> Source
where
    S: IntoIterator<Item = I>,
    S::IntoIter: Send + 'static,
{
    Box::new(inputs.into_iter().map(|i| batch::input(&i)))
}

impl RunAll {
    /// At most `n` jobs in flight at once (default 8; 0 counts as 1).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let echo = client.service("echo")?;
    /// let outputs: Vec<u32> = echo.run_all(0..32).concurrency(16).try_collect()?;
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
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use jobwire_blocking::BatchEvent;
    /// let echo = client.service("echo")?;
    /// let report = echo
    ///     .run_all([1, 2])
    ///     .on_event(|event| {
    ///         if let BatchEvent::Finished { index, job_id } = event {
    ///             println!("input {index} done as {job_id}");
    ///         }
    ///     })
    ///     .collect::<u32>()
    ///;
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
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let echo = client.service("echo")?;
    /// let report = echo.run_all((0..10).map(|i| serde_json::json!({ "i": i }))).collect::<serde_json::Value>();
    /// assert_eq!(report.summary.succeeded, 10);
    /// assert_eq!(report.results[3].1.as_ref().unwrap()["i"], 3);
    /// # Ok(()) }
    /// ```
    pub fn collect<O: DeserializeOwned + Send + 'static>(self) -> BatchReport<O> {
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
    pub fn try_collect<O: DeserializeOwned + Send + 'static>(self) -> Result<Vec<O>, Error> {
        self.drive(Mode::FailFast).into_outputs()
    }

    /// Runs the batch to its end in `mode`, on `concurrency` threads that each run one
    /// job at a time.
    fn drive<O: DeserializeOwned + Send>(self, mode: Mode) -> Batch<O> {
        let threads = self.threads();
        let shared = Shared::new(self.client, self.service, self.source, self.plan, mode);
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| shared.work(None));
            }
        });
        shared.into_batch()
    }

    /// How many threads run the batch: `concurrency`, fewer for fewer inputs.
    fn threads(&self) -> usize {
        threads(&self.plan, &self.source)
    }
}

impl RunUnordered {
    /// At most `n` jobs in flight at once (default 8; 0 counts as 1).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let echo = client.service("echo")?;
    /// let done = echo.run_unordered(0..32).concurrency(16).results::<u32>().count();
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
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let sleep = client.service("sleep")?;
    /// let inputs = [30.0, -1.0, 30.0].map(|s| serde_json::json!({ "duration_seconds": s }));
    /// let items: Vec<_> = sleep.run_unordered(inputs).fail_fast().results::<serde_json::Value>().collect();
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
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let echo = client.service("echo")?;
    /// let done = echo
    ///     .run_unordered([1, 2])
    ///     .on_event(|event| println!("{event:?}"))
    ///     .results::<u32>()
    ///     .count()
    ///;
    /// assert_eq!(done, 2);
    /// # Ok(()) }
    /// ```
    pub fn on_event(mut self, hook: impl Fn(&BatchEvent) + Send + Sync + 'static) -> Self {
        self.plan = self.plan.on_event(hook);
        self
    }

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
        let threads = threads(&self.plan, &self.source);
        let mode = self.plan.mode();
        let shared = Arc::new(Shared::new(
            self.client,
            self.service,
            self.source,
            self.plan,
            mode,
        ));
        let (tx, rx) = mpsc::channel();
        for _ in 0..threads {
            let (shared, tx) = (shared.clone(), tx.clone());
            std::thread::spawn(move || shared.work(Some(&tx)));
        }
        // Ends when every thread is done.
        rx.into_iter()
    }
}

/// `concurrency` threads, fewer when the source holds fewer inputs.
fn threads(plan: &Plan, source: &Source) -> usize {
    let most = source.size_hint().1.unwrap_or(usize::MAX);
    plan.concurrency_value().min(most)
}

/// One batch, shared by the threads that run it: its inputs, handed out as the core's
/// [`Batch`] makes room, and the batch, told each outcome.
struct Shared<O> {
    client: Client,
    service: Arc<str>,
    plan: Plan,
    source: Mutex<Source>,
    batch: Mutex<Batch<O>>,
}

impl<O: DeserializeOwned + Send> Shared<O> {
    fn new(client: Client, service: Arc<str>, source: Source, plan: Plan, mode: Mode) -> Self {
        Shared {
            batch: Mutex::new(Batch::new(plan.concurrency_value(), mode)),
            client,
            service,
            plan,
            source: Mutex::new(source),
        }
    }

    /// One thread's loop: takes the next input while the batch has room, runs it, tells
    /// the batch, cancels what it says to, and hands `results` the outcomes to report.
    fn work(&self, results: Option<&mpsc::Sender<(usize, Result<O, Error>)>>) {
        while let Some((index, input)) = self.next_input() {
            let mut job_id = None;
            let submitted = |id: &str| lock(&self.batch).submitted(index, id);
            let outcome = self.client.run_item(
                &self.service,
                &self.plan,
                index,
                input,
                &mut job_id,
                submitted,
            );
            self.plan.emit_outcome(index, job_id.as_deref(), &outcome);
            let (cancel, reported) = {
                let mut batch = lock(&self.batch);
                let cancel = batch.finished(index, outcome);
                let reported = match results {
                    Some(_) if batch.reports(index) => batch.take_outcome(index),
                    _ => None,
                };
                (cancel, reported)
            };
            cancel_all(&self.client, cancel);
            if let (Some(results), Some(outcome)) = (results, reported) {
                if results.send((index, outcome)).is_err() {
                    // The caller dropped the results: start nothing more.
                    return;
                }
            }
        }
    }

    /// The next input to run and its index, while the batch goes on. The source is held
    /// while the index is taken, so inputs get their indexes in the order they are read.
    fn next_input(&self) -> Option<(usize, Input)> {
        let mut source = lock(&self.source);
        let next = lock(&self.batch).next_step();
        match next {
            Next::Start(index) => match source.next() {
                // The batch may have stopped while the input was read: then it is dropped.
                Some(input) if lock(&self.batch).still_wanted(index) => Some((index, input)),
                Some(_) => None,
                None => {
                    lock(&self.batch).exhausted(index);
                    None
                }
            },
            // A thread holds one job at most, so there is room whenever it asks: a
            // batch with none stopped.
            Next::Wait | Next::Done => None,
        }
    }

    /// The batch, once every thread is done.
    fn into_batch(self) -> Batch<O> {
        self.batch
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
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
    /// what happens and `job_id` the job it became. `submitted(job_id)` answers whether
    /// to cancel the job at once (the batch stopped meanwhile).
    fn run_item<O: DeserializeOwned>(
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
        let mut job = self.submit_with(service, &input, run.submit_options())?;
        drop(input);
        *job_id = Some(job.id().to_owned());
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
