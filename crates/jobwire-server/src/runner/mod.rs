//! Running jobs: the lifecycle `queued -> running -> succeeded | failed | cancelled`, one
//! tokio task per job, cancellation, and the watch channels that let requests wait for a
//! job without polling.
//!
//! While a job is unfinished it has an [`ActiveJob`] entry, which holds the authoritative
//! copy of the job. Every change to it happens under that entry's lock, in this order:
//! check the job is not terminal, change it, persist it (with its events) to the store,
//! publish it on the watch channel. So terminal states never change again, the `done`
//! event is always a job's last, and a waiter never sees a state the store has not seen.
//! The entry disappears when the job becomes terminal; from then on the store answers.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use jobwire_core::{Job, JobError, JobStatus, Progress, Service};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::AbortHandle;

use crate::bus::EventBus;
use crate::services::{Handler, HandlerResult};
use crate::store::{EventKind, KeyRecord, Keyed, NewEvent, Store, StoreError};
use crate::util::{lock, now_rfc3339, random_id};

/// Why a job could not be submitted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SubmitError {
    /// The tenant has too many unfinished jobs.
    #[error("too many unfinished jobs (at most {0} per tenant)")]
    RateLimited(usize),
    /// The server is shutting down.
    #[error("the server is shutting down")]
    ShuttingDown,
    /// The job could not be stored.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// No random id could be made.
    #[error("cannot generate a job id: {0}")]
    Random(getrandom::Error),
    /// The tenant already used the idempotency key; nothing was created.
    #[error("the idempotency key was used before")]
    KeyTaken(KeyRecord),
}

/// An `Idempotency-Key` a submit carries, with the fingerprint of what it asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyUse<'a> {
    /// The key the client chose.
    pub key: &'a str,
    /// A digest of the service, input and labels.
    pub fingerprint: &'a str,
}

/// How a job ended.
enum Outcome {
    Succeeded(Value),
    Failed(JobError),
    Cancelled,
}

/// Runs jobs and tracks the unfinished ones. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Runner {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    bus: Arc<EventBus>,
    tables: Mutex<Tables>,
    limits: Limits,
    closed: AtomicBool,
}

/// What one tenant and one job may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Unfinished jobs per tenant.
    pub max_in_flight: usize,
    /// Progress, log and output events recorded per job (status and done always are).
    pub max_reports_per_job: usize,
}

#[derive(Default)]
struct Tables {
    /// Unfinished jobs by id.
    active: HashMap<String, Arc<ActiveJob>>,
    /// Unfinished jobs per tenant (including reserved slots of jobs being submitted).
    in_flight: HashMap<String, usize>,
}

/// An unfinished job.
pub(crate) struct ActiveJob {
    tenant: String,
    id: String,
    service_id: String,
    /// Progress, log and output events asked for so far (recorded or dropped).
    reports: AtomicUsize,
    state: Mutex<ActiveState>,
    watch: watch::Sender<Job>,
    /// Set when the job becomes terminal, for blocking handlers to notice.
    cancelled: AtomicBool,
}

struct ActiveState {
    job: Job,
    /// Aborts the handler's task, once it has been started.
    abort: Option<AbortHandle>,
}

impl ActiveJob {
    /// The entry of an unfinished job, and a receiver that sees its changes.
    fn new(tenant: &str, job: &Job) -> (Arc<ActiveJob>, watch::Receiver<Job>) {
        let (tx, rx) = watch::channel(job.clone());
        let active = Arc::new(ActiveJob {
            tenant: tenant.to_owned(),
            id: job.id.clone(),
            service_id: job.service_id.clone(),
            reports: AtomicUsize::new(0),
            state: Mutex::new(ActiveState {
                job: job.clone(),
                abort: None,
            }),
            watch: tx,
            cancelled: AtomicBool::new(false),
        });
        (active, rx)
    }
}

/// How the jobs a previous process left unfinished were dealt with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Accepted but never started: running now.
    pub resumed: usize,
    /// Running when the process stopped: failed as `interrupted`.
    pub interrupted: usize,
}

/// What a handler gets besides its input: the way to report progress, log lines and
/// partial output, and to notice that its job was cancelled.
///
/// Reports made after the job became terminal are dropped, so a job's `done` event stays
/// its last.
#[derive(Clone)]
pub(crate) struct JobContext {
    runner: Runner,
    job: Arc<ActiveJob>,
}

impl JobContext {
    /// Records progress (`fraction` clamped to 0..=1): updates the job's `progress` and
    /// records a `progress` event.
    pub(crate) fn progress(&self, fraction: f64, message: impl Into<String>) {
        if !self.runner.allow_report(&self.job) {
            return;
        }
        let fraction = if fraction.is_nan() {
            0.0
        } else {
            fraction.clamp(0.0, 1.0)
        };
        let message = message.into();
        let data = json!({ "job_id": self.job.id, "fraction": fraction, "message": message });
        self.runner.update(&self.job, |job| {
            if job.status.is_terminal() {
                return None;
            }
            job.progress = Some(Progress::new(fraction, message));
            Some(vec![(EventKind::Progress, data)])
        });
    }

    /// Records a `log` event with one line of text.
    pub(crate) fn log(&self, line: impl Into<String>) {
        if !self.runner.allow_report(&self.job) {
            return;
        }
        let data = json!({ "job_id": self.job.id, "line": line.into() });
        self.runner.event(&self.job, EventKind::Log, data);
    }

    /// Records an `output` event with a partial output chunk.
    pub(crate) fn output(&self, chunk: impl Into<String>) {
        if !self.runner.allow_report(&self.job) {
            return;
        }
        let data = json!({ "job_id": self.job.id, "chunk": chunk.into() });
        self.runner.event(&self.job, EventKind::Output, data);
    }

    /// Whether the job is already terminal (cancelled, or the server is shutting down).
    /// Async handlers are simply dropped; blocking handlers should check this now and then
    /// and return early.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.job.cancelled.load(Ordering::Acquire)
    }
}

fn status_event(job: &Job) -> (EventKind, Value) {
    (
        EventKind::Status,
        json!({ "job_id": job.id, "status": job.status.as_str() }),
    )
}

fn done_event(job: &Job) -> (EventKind, Value) {
    let mut data = serde_json::to_value(job).unwrap_or_else(|_| json!({}));
    if let Value::Object(map) = &mut data {
        map.insert("job_id".into(), Value::String(job.id.clone()));
    }
    (EventKind::Done, data)
}

fn new_events(job_id: &str, service_id: &str, events: Vec<(EventKind, Value)>) -> Vec<NewEvent> {
    let now = now_rfc3339();
    events
        .into_iter()
        .map(|(kind, data)| NewEvent {
            job_id: job_id.to_owned(),
            service_id: service_id.to_owned(),
            kind,
            data,
            created_at: now.clone(),
        })
        .collect()
}

impl Runner {
    /// A runner over `store` that publishes events on `bus`.
    pub(crate) fn new(store: Arc<dyn Store>, bus: Arc<EventBus>, limits: Limits) -> Self {
        Runner {
            inner: Arc::new(Inner {
                store,
                bus,
                tables: Mutex::new(Tables::default()),
                limits,
                closed: AtomicBool::new(false),
            }),
        }
    }

    /// The store jobs are kept in.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Where recorded events are published.
    pub(crate) fn bus(&self) -> &Arc<EventBus> {
        &self.inner.bus
    }

    /// Whether a job may record one more progress, log or output event. The first one
    /// past the cap is replaced by a log line saying so; later ones are dropped.
    fn allow_report(&self, job: &ActiveJob) -> bool {
        let max = self.inner.limits.max_reports_per_job;
        let n = job.reports.fetch_add(1, Ordering::AcqRel);
        if n == max {
            let line = format!(
                "this job reached {max} progress, log and output events; later ones are dropped"
            );
            self.event(
                job,
                EventKind::Log,
                json!({ "job_id": job.id, "line": line }),
            );
        }
        n < max
    }

    /// The crash rule, for the jobs a previous process left unfinished (it crashed, was
    /// killed, or its shutdown grace ran out):
    ///
    /// - `queued` — accepted, never started: run now, once;
    /// - `running` — its handler may have done part of its work: not run again, but
    ///   `failed` with code `interrupted`, and its `done` event recorded.
    ///
    /// So no job runs twice, and every accepted job ends.
    pub(crate) fn recover(
        &self,
        handler_of: impl Fn(&str) -> Option<Handler>,
    ) -> Result<Recovered, StoreError> {
        let mut recovered = Recovered::default();
        for (tenant, job) in self.inner.store.unfinished_jobs()? {
            let handler = handler_of(&job.service_id);
            match (job.status.clone(), handler) {
                (JobStatus::Queued, Some(handler)) => {
                    self.resume(&tenant, job, handler);
                    recovered.resumed += 1;
                }
                (JobStatus::Queued, None) => {
                    let why = "its service has no handler in this server process";
                    self.fail_left(&tenant, job, why)?;
                    recovered.interrupted += 1;
                }
                _ => {
                    let why = "the server stopped while the job was running";
                    self.fail_left(&tenant, job, why)?;
                    recovered.interrupted += 1;
                }
            }
        }
        Ok(recovered)
    }

    /// Runs a `queued` job a previous process accepted and never started.
    fn resume(&self, tenant: &str, job: Job, handler: Handler) {
        let input = job.input.clone();
        let (active, _) = ActiveJob::new(tenant, &job);
        {
            let mut tables = lock(&self.inner.tables);
            tables.active.insert(job.id.clone(), active.clone());
            *tables.in_flight.entry(tenant.to_owned()).or_insert(0) += 1;
        }
        tokio::spawn(self.clone().supervise(active, handler, input));
    }

    /// Ends a job a previous process left behind as `failed` (`interrupted`).
    fn fail_left(&self, tenant: &str, mut job: Job, why: &str) -> Result<(), StoreError> {
        job.status = JobStatus::Failed;
        job.error = Some(interrupted(why));
        job.finished_at = Some(now_rfc3339());
        let events = new_events(
            &job.id,
            &job.service_id,
            vec![status_event(&job), done_event(&job)],
        );
        let store = &self.inner.store;
        self.inner.bus.record(tenant, events, |events| {
            store.update_job(tenant, &job, events)
        })
    }

    /// How many jobs are unfinished in this process.
    pub(crate) fn unfinished(&self) -> usize {
        lock(&self.inner.tables).active.len()
    }

    /// Accepts a job: stores it `queued`, starts a task that runs `handler` on it, and
    /// returns a receiver that sees every change of the job.
    pub(crate) fn submit(
        &self,
        tenant: &str,
        service: &Service,
        handler: Handler,
        input: Value,
        labels: BTreeMap<String, String>,
        key: Option<KeyUse<'_>>,
    ) -> Result<watch::Receiver<Job>, SubmitError> {
        self.reserve_slot(tenant)?;
        match self.start(tenant, service, handler, input, labels, key) {
            Ok(rx) => Ok(rx),
            Err(e) => {
                self.release_slot(&mut lock(&self.inner.tables), tenant);
                Err(e)
            }
        }
    }

    fn reserve_slot(&self, tenant: &str) -> Result<(), SubmitError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(SubmitError::ShuttingDown);
        }
        let mut tables = lock(&self.inner.tables);
        let count = tables.in_flight.entry(tenant.to_owned()).or_insert(0);
        if *count >= self.inner.limits.max_in_flight {
            return Err(SubmitError::RateLimited(self.inner.limits.max_in_flight));
        }
        *count += 1;
        Ok(())
    }

    fn release_slot(&self, tables: &mut Tables, tenant: &str) {
        if let Some(count) = tables.in_flight.get_mut(tenant) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                tables.in_flight.remove(tenant);
            }
        }
    }

    fn start(
        &self,
        tenant: &str,
        service: &Service,
        handler: Handler,
        input: Value,
        labels: BTreeMap<String, String>,
        key: Option<KeyUse<'_>>,
    ) -> Result<watch::Receiver<Job>, SubmitError> {
        let id = random_id("job_", 12).map_err(SubmitError::Random)?;
        let mut job = Job::new(id.clone(), service.id.clone(), JobStatus::Queued);
        job.service = service.name.clone();
        job.input = input.clone();
        job.labels = labels;
        job.created_at = now_rfc3339();
        let events = new_events(&id, &service.id, vec![status_event(&job)]);

        let (active, rx) = ActiveJob::new(tenant, &job);
        {
            // Held until the job is stored: nothing (a shutdown) may change it before.
            let _state = lock(&active.state);
            {
                let mut tables = lock(&self.inner.tables);
                // Checked under the lock `abort_all` takes, so no job slips past a shutdown.
                if self.inner.closed.load(Ordering::Acquire) {
                    return Err(SubmitError::ShuttingDown);
                }
                tables.active.insert(id.clone(), active.clone());
            }
            let mut taken = None;
            let stored = self.inner.bus.record(tenant, events, |events| {
                let store = &self.inner.store;
                match key {
                    None => Ok(store.insert_job(tenant, &job, events)?.1),
                    Some(k) => {
                        match store.insert_keyed_job(tenant, &job, events, k.key, k.fingerprint)? {
                            Keyed::Inserted(seqs) => Ok(seqs),
                            // Nothing stored, nothing to publish.
                            Keyed::Taken(record) => {
                                taken = Some(record);
                                Ok(Vec::new())
                            }
                        }
                    }
                }
            });
            let failed = match (stored, taken) {
                (Err(e), _) => Some(SubmitError::Store(e)),
                (Ok(()), Some(record)) => Some(SubmitError::KeyTaken(record)),
                (Ok(()), None) => None,
            };
            if let Some(e) = failed {
                lock(&self.inner.tables).active.remove(&id);
                return Err(e);
            }
        }
        tokio::spawn(self.clone().supervise(active, handler, input));
        Ok(rx)
    }

    /// The life of one job: mark it running, run the handler in its own task (so a panic
    /// or an abort cannot take the bookkeeping down with it), record how it ended.
    async fn supervise(self, job: Arc<ActiveJob>, handler: Handler, input: Value) {
        let started = self.update(&job, |j| {
            if j.status != JobStatus::Queued {
                return None;
            }
            j.status = JobStatus::Running;
            j.started_at = Some(now_rfc3339());
            Some(vec![status_event(j)])
        });
        if !started {
            return;
        }
        let ctx = JobContext {
            runner: self.clone(),
            job: job.clone(),
        };
        let task = match handler {
            Handler::Async(f) => tokio::spawn(f(input, ctx)),
            Handler::Blocking(f) => tokio::task::spawn_blocking(move || f(input, ctx)),
        };
        {
            let mut state = lock(&job.state);
            if state.job.status.is_terminal() {
                // Cancelled between "running" and here.
                task.abort();
                return;
            }
            state.abort = Some(task.abort_handle());
        }
        let outcome = match task.await {
            Ok(result) => outcome_of(result),
            Err(e) if e.is_panic() => {
                tracing::error!(job_id = %job.id, "job handler panicked");
                let mut error = JobError::new("the service's handler panicked");
                error.code = Some("internal".into());
                Outcome::Failed(error)
            }
            // Aborted: whoever aborted it has already recorded the outcome.
            Err(_) => return,
        };
        self.finish(&job, outcome);
    }

    /// Applies `change` to an unfinished job under its lock; when it returns events, the
    /// changed job and those events are persisted and published. Returns whether it did.
    fn update(
        &self,
        job: &ActiveJob,
        change: impl FnOnce(&mut Job) -> Option<Vec<(EventKind, Value)>>,
    ) -> bool {
        let mut state = lock(&job.state);
        let mut next = state.job.clone();
        let Some(events) = change(&mut next) else {
            return false;
        };
        let events = new_events(&job.id, &job.service_id, events);
        let store = &self.inner.store;
        let stored = self.inner.bus.record(&job.tenant, events, |events| {
            store.update_job(&job.tenant, &next, events)
        });
        if let Err(e) = stored {
            tracing::error!(job_id = %job.id, error = %e, "cannot persist a job change");
        }
        let terminal = next.status.is_terminal();
        state.job = next.clone();
        if terminal {
            job.cancelled.store(true, Ordering::Release);
            if let Some(abort) = state.abort.take() {
                abort.abort();
            }
            let mut tables = lock(&self.inner.tables);
            tables.active.remove(&job.id);
            self.release_slot(&mut tables, &job.tenant);
        }
        job.watch.send_replace(next);
        true
    }

    /// Records an event that does not change the job, unless the job is terminal.
    fn event(&self, job: &ActiveJob, kind: EventKind, data: Value) {
        let state = lock(&job.state);
        if state.job.status.is_terminal() {
            return;
        }
        let events = new_events(&job.id, &job.service_id, vec![(kind, data)]);
        let store = &self.inner.store;
        let stored = self.inner.bus.record(&job.tenant, events, |events| {
            store.append_events(&job.tenant, events)
        });
        if let Err(e) = stored {
            tracing::error!(job_id = %job.id, error = %e, "cannot record a job event");
        }
    }

    /// Makes an unfinished job terminal; a no-op when it already is.
    fn finish(&self, job: &ActiveJob, outcome: Outcome) {
        self.update(job, |j| {
            if j.status.is_terminal() {
                return None;
            }
            match outcome {
                Outcome::Succeeded(output) => {
                    j.status = JobStatus::Succeeded;
                    j.output = Some(output);
                }
                Outcome::Failed(error) => {
                    j.status = JobStatus::Failed;
                    j.error = Some(error);
                }
                Outcome::Cancelled => j.status = JobStatus::Cancelled,
            }
            j.finished_at = Some(now_rfc3339());
            Some(vec![status_event(j), done_event(j)])
        });
    }

    fn active(&self, tenant: &str, id: &str) -> Option<Arc<ActiveJob>> {
        lock(&self.inner.tables)
            .active
            .get(id)
            .filter(|job| job.tenant == tenant)
            .cloned()
    }

    /// A receiver that sees every change of an unfinished job of `tenant`; `None` when
    /// the job is finished (or unknown).
    pub(crate) fn watch(&self, tenant: &str, id: &str) -> Option<watch::Receiver<Job>> {
        self.active(tenant, id).map(|job| job.watch.subscribe())
    }

    /// The job as it stands now, with its event position: every change of the job that
    /// this state does not show yet gets an event id above the position.
    pub(crate) fn get(&self, tenant: &str, id: &str) -> Result<Option<(Job, i64)>, StoreError> {
        match self.active(tenant, id) {
            Some(job) => {
                // Both under the job's lock, which every change of the job holds while it
                // records its events: the position and the state agree.
                let state = lock(&job.state);
                Ok(Some((state.job.clone(), self.inner.bus.latest())))
            }
            None => Ok(self
                .inner
                .store
                .get_job(tenant, id)?
                .map(|job| (job, self.inner.bus.latest()))),
        }
    }

    /// [`get`](Self::get) for a job last seen as `seen`: a terminal job changes no more,
    /// so it is its own answer and only an unfinished one is looked up again.
    pub(crate) fn current(
        &self,
        tenant: &str,
        seen: Job,
    ) -> Result<Option<(Job, i64)>, StoreError> {
        if seen.is_finished() {
            return Ok(Some((seen, self.inner.bus.latest())));
        }
        self.get(tenant, &seen.id)
    }

    /// Cancels a job if it is unfinished; returns the job as it then stands (unchanged
    /// when it was already terminal) with its event position, or `None` when `tenant`
    /// has no such job.
    pub(crate) fn cancel(&self, tenant: &str, id: &str) -> Result<Option<(Job, i64)>, StoreError> {
        if let Some(job) = self.active(tenant, id) {
            self.finish(&job, Outcome::Cancelled);
        }
        self.get(tenant, id)
    }

    /// Refuses new jobs from now on.
    pub(crate) fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }

    /// Fails every unfinished job as `interrupted` (the crash rule's answer for a job
    /// whose handler may have done part of its work) and aborts its handler. Returns how
    /// many there were.
    pub(crate) fn abort_all(&self) -> usize {
        let jobs: Vec<Arc<ActiveJob>> = lock(&self.inner.tables).active.values().cloned().collect();
        for job in &jobs {
            let why = "the server shut down before the job finished";
            self.finish(job, Outcome::Failed(interrupted(why)));
        }
        jobs.len()
    }
}

/// The error of a job the server stopped under: code `interrupted`.
fn interrupted(why: &str) -> JobError {
    let mut error = JobError::new(why);
    error.code = Some("interrupted".into());
    error
}

fn outcome_of(result: HandlerResult) -> Outcome {
    match result {
        Ok(output) => Outcome::Succeeded(output),
        Err(error) => Outcome::Failed(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::Registry;
    use crate::store::MemoryStore;
    use std::time::Duration;

    fn limits(max_in_flight: usize) -> Limits {
        Limits {
            max_in_flight,
            max_reports_per_job: 10_000,
        }
    }

    fn setup(max_in_flight: usize) -> (Runner, Registry) {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(1000));
        let registry = Registry::builtin();
        registry.seed(store.as_ref()).unwrap();
        let bus = Arc::new(EventBus::new(64, 0));
        (Runner::new(store, bus, limits(max_in_flight)), registry)
    }

    fn all_events(runner: &Runner, tenant: &str) -> Vec<crate::store::Event> {
        let query = crate::store::EventQuery {
            limit: 1000,
            ..Default::default()
        };
        runner.store().events(tenant, &query).unwrap()
    }

    async fn run(
        runner: &Runner,
        registry: &Registry,
        tenant: &str,
        name: &str,
        input: Value,
    ) -> Job {
        let service = runner.store().find_service(tenant, name).unwrap().unwrap();
        let handler = registry.handler(&service.id).unwrap();
        let mut rx = runner
            .submit(tenant, &service, handler, input, BTreeMap::new(), None)
            .unwrap();
        let job = tokio::time::timeout(
            Duration::from_secs(20),
            rx.wait_for(|j| j.status.is_terminal()),
        )
        .await
        .unwrap()
        .unwrap()
        .clone();
        job
    }

    #[tokio::test]
    async fn steps_records_events_in_order() {
        let (runner, registry) = setup(10);
        let job = run(
            &runner,
            &registry,
            "t",
            "steps",
            json!({"steps": 3, "interval_ms": 1}),
        )
        .await;
        assert_eq!(job.status, JobStatus::Succeeded);
        let output = job.output.clone().unwrap();
        assert_eq!(output["steps"], 3);
        assert_eq!(job.progress.as_ref().unwrap().fraction, 1.0);

        let events = all_events(&runner, "t");
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "status", "status", "progress", "log", "output", "progress", "log", "output",
                "progress", "log", "output", "status", "done"
            ]
        );
        assert!(events.iter().all(|e| e.data["job_id"] == job.id.as_str()));
        let chunks: String = events
            .iter()
            .filter(|e| e.kind == "output")
            .map(|e| e.data["chunk"].as_str().unwrap())
            .collect();
        assert_eq!(output["text"], chunks.as_str());
        assert_eq!(events[2].data["fraction"], json!(1.0 / 3.0));
        assert_eq!(events[2].data["message"], "step 1 of 3");
        let done: Job = serde_json::from_value(events[12].data.clone()).unwrap();
        assert_eq!(done, job);
        // Stored state equals the published state.
        assert_eq!(runner.get("t", &job.id).unwrap().unwrap().0, job);
    }

    #[tokio::test]
    async fn cancel_is_final_and_counts_free_a_slot() {
        let (runner, registry) = setup(1);
        let service = runner.store().find_service("t", "sleep").unwrap().unwrap();
        let handler = registry.handler(&service.id).unwrap();
        let rx = runner
            .submit(
                "t",
                &service,
                handler.clone(),
                json!({"duration_seconds": 30}),
                BTreeMap::new(),
                None,
            )
            .unwrap();
        let id = rx.borrow().id.clone();
        assert!(matches!(
            runner.submit(
                "t",
                &service,
                handler.clone(),
                json!({"duration_seconds": 1}),
                BTreeMap::new(),
                None
            ),
            Err(SubmitError::RateLimited(1))
        ));
        let (cancelled, _) = runner.cancel("t", &id).unwrap().unwrap();
        assert_eq!(cancelled.status, JobStatus::Cancelled);
        assert!(cancelled.finished_at.is_some());
        // Idempotent, and invisible to other tenants.
        assert_eq!(runner.cancel("t", &id).unwrap().unwrap().0, cancelled);
        assert!(runner.cancel("other", &id).unwrap().is_none());
        // The slot is free again.
        let rx2 = runner
            .submit(
                "t",
                &service,
                handler,
                json!({"duration_seconds": 0}),
                BTreeMap::new(),
                None,
            )
            .unwrap();
        drop(rx2);
        let events = all_events(&runner, "t");
        let last_of_job: Vec<&str> = events
            .iter()
            .filter(|e| e.job_id == id)
            .map(|e| e.kind.as_str())
            .collect();
        assert_eq!(last_of_job.last(), Some(&"done"));
    }

    #[tokio::test]
    async fn the_crash_rule_runs_queued_jobs_and_fails_running_ones() {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(1000));
        let registry = Registry::builtin();
        registry.seed(store.as_ref()).unwrap();
        let left = |id: &str, service: &str, status: JobStatus| {
            let mut job = Job::new(id, service, status);
            job.input = json!("in");
            job.created_at = now_rfc3339();
            store.insert_job("t", &job, &[]).unwrap();
        };
        left("job_running", "svc_echo", JobStatus::Running);
        left("job_queued", "svc_echo", JobStatus::Queued);
        left("job_orphan", "svc_gone", JobStatus::Queued);
        let runner = Runner::new(store.clone(), Arc::new(EventBus::new(64, 0)), limits(10));
        let recovered = runner.recover(|id| registry.handler(id)).unwrap();
        assert_eq!(
            recovered,
            Recovered {
                resumed: 1,
                interrupted: 2
            }
        );
        let running = store.get_job("t", "job_running").unwrap().unwrap();
        assert_eq!(running.status, JobStatus::Failed);
        assert_eq!(running.error.unwrap().code.as_deref(), Some("interrupted"));
        let orphan = store.get_job("t", "job_orphan").unwrap().unwrap();
        assert_eq!(orphan.status, JobStatus::Failed);
        // The queued one runs, once, to the end.
        for _ in 0..100 {
            if runner.unfinished() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let queued = store.get_job("t", "job_queued").unwrap().unwrap();
        assert_eq!(queued.status, JobStatus::Succeeded);
        assert_eq!(queued.output, Some(json!("in")));
        let kinds: Vec<String> = all_events(&runner, "t")
            .into_iter()
            .filter(|e| e.job_id == "job_running")
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["status", "done"], "its done is recorded");
        assert_eq!(
            runner.recover(|id| registry.handler(id)).unwrap(),
            Recovered::default()
        );
    }

    #[tokio::test]
    async fn handler_panic_fails_the_job() {
        let (runner, _) = setup(10);
        let service = Service::new("svc_boom", "boom", json!({}), now_rfc3339());
        let handler = Handler::from_async(|input: Value, _ctx| async move {
            assert!(input.is_string(), "boom");
            Ok(input)
        });
        let mut rx = runner
            .submit("t", &service, handler, json!(null), BTreeMap::new(), None)
            .unwrap_or_else(|e| panic!("{e}"));
        let job = rx
            .wait_for(|j| j.status.is_terminal())
            .await
            .unwrap()
            .clone();
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.error.unwrap().code.as_deref(), Some("internal"));
    }
}
