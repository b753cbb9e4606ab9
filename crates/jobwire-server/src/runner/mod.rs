//! Running jobs: admission, one supervisor task per job, cancellation, leases and the
//! crash rule, and the watch channels that let requests wait for a job without polling.
//!
//! - [`lifecycle`]: the job lifecycle as a pure transition (state + happening → new state
//!   + events to record);
//! - [`admission`]: submit — id, first state, the atomic insert with key and limit;
//! - [`supervision`]: each job's handler task, leases, the crash rule, shutdown;
//! - [`context`]: what a handler gets to report with;
//! - [`completion`]: submits and cancels that finish even when their caller goes away.
//!
//! While a job is unfinished on this server it has an [`ActiveJob`] entry, which holds
//! the job as last stored. Every change — a handler's report or outcome, a cancel here
//! or through a peer, an admission, the crash rule's verdict — is decided by the
//! [`lifecycle`] and goes through the one [`Runner::commit`] path, under the entry's
//! lock when there is one: the store write (an insert, or a compare-and-set naming the
//! status the job had and this server as the lease holder — events alone too), then the
//! change's [`Effect`](lifecycle::Effect)s (retire the job here, publish the new state on
//! the watch channel), or the effects of a [`lost`](lifecycle::lost) change when the
//! store holds another state. So terminal states never change again, `done` is always a
//! job's last event, and a waiter never sees a state the store has not committed. A job
//! another server changed (a cancel through it, a takeover) is lost here at this
//! server's next write, or at once when the store is shared ([`Runner::follow_peers`]
//! watches for peers' `done`s): its handler is aborted. Reads ([`Runner::get`]) always
//! go to the store.

mod admission;
mod completion;
mod context;
mod lifecycle;
mod supervision;
mod workers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobwire_core::Job;
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

pub(crate) use admission::SubmitError;
use completion::to_completion;
pub use context::JobContext;
pub(crate) use lifecycle::Caps;
use lifecycle::{Effect, Happening, Transition};

use crate::bus::{self, EventBus};
use crate::clock::Clock;
use crate::locking::lock;
use crate::services::Registry;
use crate::store::{
    EventData, EventKind, Expected, Inserted, KeyRecord, NewEvent, NewJob, Store, StoreError,
};

/// Runs jobs and tracks the unfinished ones. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Runner {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    bus: Arc<EventBus>,
    clock: Arc<dyn Clock>,
    handlers: Arc<Registry>,
    /// This process, as the holder of leases.
    server_id: String,
    limits: Limits,
    /// Unfinished jobs this server runs, by id.
    active: Mutex<HashMap<String, Arc<ActiveJob>>>,
    closed: AtomicBool,
    /// Where blocking handlers run.
    workers: workers::Workers,
}

/// What one tenant and one job may take, how long a lease lasts, and how many threads
/// blocking handlers get.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Unfinished jobs per tenant.
    pub max_in_flight: usize,
    /// Progress, log and output events recorded per job (status and done always are).
    pub max_reports_per_job: usize,
    /// Bytes one tenant may store before its submits are refused.
    pub max_stored_bytes: u64,
    /// How long a job stays this server's without a renewal (renewed every third of it).
    pub lease: Duration,
    /// Threads of the worker pool, where blocking handlers run.
    pub worker_threads: usize,
    /// What a job may record, in bytes.
    pub caps: lifecycle::Caps,
}

/// An unfinished job this server runs.
pub(crate) struct ActiveJob {
    tenant: String,
    id: String,
    service_id: String,
    /// Progress, log and output reports asked for so far (recorded or dropped).
    reports_made: AtomicUsize,
    /// Where the handler's reports queue for the supervisor.
    reports: mpsc::UnboundedSender<Happening>,
    /// Held across a change's store write: one change at a time.
    state: tokio::sync::Mutex<ActiveState>,
    /// The job as last stored (the runner's only copy of it), seen by its waiters.
    watch: watch::Sender<Job>,
    /// Set when the job is no longer this server's to run (terminal, or lost), for
    /// blocking handlers to notice.
    cancelled: AtomicBool,
}

struct ActiveState {
    /// Aborts the handler's task, once it has been started.
    abort: Option<AbortHandle>,
}

type Parts = (
    Arc<ActiveJob>,
    watch::Receiver<Job>,
    mpsc::UnboundedReceiver<Happening>,
);

impl ActiveJob {
    /// The entry of an unfinished job, a receiver that sees its changes, and the queue
    /// of its handler's reports.
    fn new(tenant: &str, job: &Job) -> Parts {
        let (tx, rx) = watch::channel(job.clone());
        let (reports, queued) = mpsc::unbounded_channel();
        let active = Arc::new(ActiveJob {
            tenant: tenant.to_owned(),
            id: job.id.clone(),
            service_id: job.service_id.clone(),
            reports_made: AtomicUsize::new(0),
            reports,
            state: tokio::sync::Mutex::new(ActiveState { abort: None }),
            watch: tx,
            cancelled: AtomicBool::new(false),
        });
        (active, rx, queued)
    }

    /// Whether the job as last stored is terminal.
    fn is_terminal(&self) -> bool {
        self.watch.borrow().status.is_terminal()
    }
}

/// What a change writes to the store.
// Made and consumed once per change, never kept: boxing the job would only add an
// allocation.
#[allow(clippy::large_enum_variant)]
enum Write<'a> {
    /// A new job, with its key, within its tenant's limit (admission).
    Insert(NewJob<'a>),
    /// A stored job's new state (`None`: events alone), if the store still holds it as
    /// `expected`.
    Change {
        tenant: &'a str,
        job_id: &'a str,
        next: Option<Job>,
        expected: Expected<'a>,
    },
}

/// How a commit went.
#[derive(Debug)]
enum Committed {
    /// Written; the change's effects are carried out.
    Stored,
    /// The store holds another state: nothing written, the effects of a lost change
    /// carried out.
    Lost,
    /// An insert whose key was used before: nothing written.
    KeyTaken(KeyRecord),
    /// An insert past its tenant's limit: nothing written.
    AtLimit,
    /// An insert of a tenant that stores its quota already: nothing written.
    OverQuota { used: u64 },
}

/// How [`Runner::apply`] went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Applied {
    /// Written and taken.
    Done,
    /// The lifecycle refused it (the job is terminal, or no longer queued): nothing
    /// written.
    Refused,
    /// The store holds another state, or another server holds the job: this server
    /// stopped running it.
    Lost,
    /// The store failed: nothing changed.
    Failed,
}

/// The events of a transition, stamped for the store.
fn new_events(
    job_id: &str,
    service_id: &str,
    events: Vec<(EventKind, EventData)>,
    now: &str,
) -> Vec<NewEvent> {
    events
        .into_iter()
        .map(|(kind, data)| NewEvent {
            job_id: job_id.to_owned(),
            service_id: service_id.to_owned(),
            kind,
            data,
            created_at: now.to_owned(),
        })
        .collect()
}

impl Runner {
    /// A runner over `store` whose events reach `bus`, running the handlers of
    /// `handlers` as server `server_id`.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        bus: Arc<EventBus>,
        clock: Arc<dyn Clock>,
        handlers: Arc<Registry>,
        server_id: String,
        limits: Limits,
    ) -> Self {
        Runner {
            inner: Arc::new(Inner {
                store,
                bus,
                clock,
                handlers,
                server_id,
                limits,
                active: Mutex::new(HashMap::new()),
                closed: AtomicBool::new(false),
                workers: workers::Workers::new(limits.worker_threads),
            }),
        }
    }

    /// The store jobs are kept in.
    pub(crate) fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Where committed events are published.
    pub(crate) fn bus(&self) -> &Arc<EventBus> {
        &self.inner.bus
    }

    /// The handlers this server runs.
    pub(crate) fn handlers(&self) -> &Arc<Registry> {
        &self.inner.handlers
    }

    /// How many jobs are unfinished on this server.
    pub(crate) fn unfinished(&self) -> usize {
        lock(&self.inner.active).len()
    }

    /// Applies `happening` to a job of this server; see the module docs.
    async fn apply(&self, job: &ActiveJob, happening: Happening) -> Applied {
        let mut state = job.state.lock().await;
        let now = self.inner.clock.now_rfc3339();
        let (change, status) = {
            let current = job.watch.borrow();
            match lifecycle::transition(&current, happening, &now, &self.inner.limits.caps) {
                Some(change) => (change, current.status.clone()),
                None => return Applied::Refused,
            }
        };
        let write = Write::Change {
            tenant: &job.tenant,
            job_id: &job.id,
            next: change.job,
            expected: Expected {
                status: &status,
                owner: Some(&self.inner.server_id),
            },
        };
        let events = new_events(&job.id, &job.service_id, change.events, &now);
        match self
            .commit(Some((job, &mut state)), write, events, &change.effects)
            .await
        {
            Ok(Committed::Stored) => Applied::Done,
            Ok(_) => Applied::Lost,
            Err(e) => {
                tracing::error!(job_id = %job.id, error = %e, "cannot record a job change");
                Applied::Failed
            }
        }
    }

    /// The one path of every change to a job — a handler's report or outcome, a cancel
    /// here or through a peer, an admission, the crash rule's verdict: the store write
    /// (an insert, or a compare-and-set with the change's events), then, on the entry
    /// of a job this server runs, the change's `effects` — or, when the store holds
    /// another state, those of a [`lost`](lifecycle::lost) change.
    async fn commit(
        &self,
        entry: Option<(&ActiveJob, &mut ActiveState)>,
        write: Write<'_>,
        events: Vec<NewEvent>,
        effects: &[Effect],
    ) -> Result<Committed, StoreError> {
        let store = &self.inner.store;
        let (committed, next) = match write {
            Write::Insert(new) => match store.insert_job(new, events).await? {
                Inserted::Stored(_) => (Committed::Stored, None),
                Inserted::KeyTaken(record) => (Committed::KeyTaken(record), None),
                Inserted::AtLimit => (Committed::AtLimit, None),
                Inserted::OverQuota { used } => (Committed::OverQuota { used }, None),
            },
            Write::Change {
                tenant,
                job_id,
                next,
                expected,
            } => {
                let written = match &next {
                    Some(next) => store.update_job(tenant, next, expected, events).await?,
                    None => {
                        store
                            .append_events(tenant, job_id, expected, events)
                            .await?
                    }
                };
                match written {
                    Some(_) => (Committed::Stored, next),
                    None => (Committed::Lost, None),
                }
            }
        };
        if let Some((job, state)) = entry {
            match &committed {
                Committed::Stored => self.carry_out(job, state, effects, next).await,
                Committed::Lost => {
                    tracing::warn!(
                        job_id = %job.id,
                        "the job changed elsewhere; no longer running it here"
                    );
                    self.carry_out(job, state, &lifecycle::lost(), None).await;
                }
                Committed::KeyTaken(_) | Committed::AtLimit | Committed::OverQuota { .. } => {}
            }
        }
        Ok(committed)
    }

    /// Carries out what a stored change (or a lost one) requires of this server.
    async fn carry_out(
        &self,
        job: &ActiveJob,
        state: &mut ActiveState,
        effects: &[Effect],
        next: Option<Job>,
    ) {
        let mut next = next;
        for effect in effects {
            match effect {
                Effect::Retire => self.retire(job, state),
                Effect::Publish => {
                    if let Some(next) = next.take() {
                        job.watch.send_replace(next);
                    }
                }
                Effect::PublishStored => {
                    if let Ok(Some((stored, _))) =
                        self.inner.store.get_job(&job.tenant, &job.id).await
                    {
                        job.watch.send_replace(stored);
                    }
                }
            }
        }
    }

    /// Follows every server's `done`s, for those other servers record for jobs this one
    /// runs (a cancel through a peer, a takeover): such a job stops here at once, and its
    /// waiters here wake. Only a store shared with other servers needs it. The bus hands
    /// it `done`s only, so the other events of every job cost it nothing.
    ///
    /// Subscribes when called, so nothing published after the call is missed; the
    /// returned future does the following.
    pub(crate) fn follow_peers(
        self,
        closed: watch::Receiver<bool>,
    ) -> impl std::future::Future<Output = ()> + Send {
        let dones = self.inner.bus.subscribe_dones();
        self.follow(dones, closed)
    }

    async fn follow(self, mut dones: bus::Subscription, mut closed: watch::Receiver<bool>) {
        loop {
            let received = tokio::select! {
                received = dones.recv() => received,
                _ = closed.wait_for(|closed| *closed) => return,
            };
            let suspects: Vec<Arc<ActiveJob>> = match received {
                Ok(done) => lock(&self.inner.active)
                    .get(&done.job_id)
                    .cloned()
                    .into_iter()
                    .collect(),
                // Missed some: look at every job, and follow afresh.
                Err(bus::CutOff) => {
                    dones = self.inner.bus.subscribe_dones();
                    lock(&self.inner.active).values().cloned().collect()
                }
            };
            for job in suspects {
                let mut state = job.state.lock().await;
                // Its own `done` (recorded under this lock) left it terminal and retired.
                if job.is_terminal() || job.cancelled.load(Ordering::Acquire) {
                    continue;
                }
                if let Ok(Some((stored, _))) = self.inner.store.get_job(&job.tenant, &job.id).await
                {
                    if stored.status != job.watch.borrow().status {
                        tracing::warn!(
                            job_id = %job.id,
                            "the job changed elsewhere; no longer running it here"
                        );
                        self.carry_out(&job, &mut state, &lifecycle::lost(), None)
                            .await;
                    }
                }
            }
        }
    }

    /// Stops running a job here: its handler is aborted and its entry removed.
    fn retire(&self, job: &ActiveJob, state: &mut ActiveState) {
        job.cancelled.store(true, Ordering::Release);
        if let Some(abort) = state.abort.take() {
            abort.abort();
        }
        lock(&self.inner.active).remove(&job.id);
    }

    fn active(&self, tenant: &str, id: &str) -> Option<Arc<ActiveJob>> {
        lock(&self.inner.active)
            .get(id)
            .filter(|job| job.tenant == tenant)
            .cloned()
    }

    /// A receiver that sees every change of an unfinished job of `tenant` this server
    /// runs; `None` when it does not run it (finished, unknown, or another server's).
    pub(crate) fn watch(&self, tenant: &str, id: &str) -> Option<watch::Receiver<Job>> {
        self.active(tenant, id).map(|job| job.watch.subscribe())
    }

    /// The job as it stands now, with its event position: every change of the job that
    /// this state does not show yet gets an event id above the position.
    pub(crate) async fn get(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<(Job, i64)>, StoreError> {
        // The store, not this server's copy: another server may have changed the job,
        // and the store reads the state and its position in one snapshot.
        self.inner.store.get_job(tenant, id).await
    }

    /// [`get`](Self::get) for a job last seen as `seen`: a terminal job changes no more,
    /// so it is its own answer and only an unfinished one is looked up again.
    pub(crate) async fn current(
        &self,
        tenant: &str,
        seen: Job,
    ) -> Result<Option<(Job, i64)>, StoreError> {
        if seen.is_finished() {
            return Ok(Some((seen, self.inner.bus.latest())));
        }
        self.get(tenant, &seen.id).await
    }

    /// Cancels a job if it is unfinished, wherever it runs; returns the job as it then
    /// stands (unchanged when it was already terminal) with its event position, or
    /// `None` when `tenant` has no such job.
    pub(crate) async fn cancel(
        &self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<(Job, i64)>, StoreError> {
        // To completion: a client that goes away mid-cancel cannot leave the job
        // cancelled in the store but running here.
        let (runner, tenant, id) = (self.clone(), tenant.to_owned(), id.to_owned());
        to_completion(async move { runner.cancel_now(&tenant, &id).await }).await
    }

    async fn cancel_now(&self, tenant: &str, id: &str) -> Result<Option<(Job, i64)>, StoreError> {
        if let Some(job) = self.active(tenant, id) {
            if self.apply(&job, Happening::Cancel).await == Applied::Failed {
                return Err(StoreError::new("the cancel could not be recorded"));
            }
            return self.get(tenant, id).await;
        }
        // Another server's job (or a finished one): cancelled in the store, whoever
        // holds it; its server notices at its next write and stops the handler.
        loop {
            let Some((job, position)) = self.inner.store.get_job(tenant, id).await? else {
                return Ok(None);
            };
            let now = self.inner.clock.now_rfc3339();
            let Some(Transition {
                job: Some(next),
                events,
                effects,
            }) = lifecycle::transition(&job, Happening::Cancel, &now, &self.inner.limits.caps)
            else {
                return Ok(Some((job, position)));
            };
            let write = Write::Change {
                tenant,
                job_id: &job.id,
                next: Some(next),
                expected: Expected {
                    status: &job.status,
                    owner: None,
                },
            };
            let events = new_events(&job.id, &job.service_id, events, &now);
            match self.commit(None, write, events, &effects).await? {
                Committed::Stored => return self.inner.store.get_job(tenant, id).await,
                // It changed meanwhile: look again.
                _ => continue,
            }
        }
    }

    /// Refuses new jobs from now on.
    pub(crate) fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::supervision::Recovered;
    use super::*;
    use crate::clock::SystemClock;
    use crate::services::Handler;
    use crate::store::{EventQuery, Inserted, MemoryStore, NewJob};
    use jobwire_core::{JobStatus, Service};
    use serde_json::json;
    use serde_json::Value;
    use std::collections::BTreeMap;

    fn limits(max_in_flight: usize) -> Limits {
        Limits {
            max_in_flight,
            max_reports_per_job: 10_000,
            max_stored_bytes: u64::MAX,
            lease: Duration::from_secs(30),
            worker_threads: 2,
            caps: lifecycle::Caps {
                max_event_bytes: 256 * 1024,
                max_output_bytes: 16 * 1024 * 1024,
            },
        }
    }

    async fn shared_store() -> (Arc<dyn Store>, Arc<EventBus>, Arc<Registry>) {
        let bus = Arc::new(EventBus::new(4096));
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(u64::MAX, bus.clone()));
        let registry = Arc::new(Registry::new(&[], Default::default()).unwrap());
        registry.seed(store.as_ref()).await.unwrap();
        (store, bus, registry)
    }

    fn runner_on(
        (store, bus, registry): &(Arc<dyn Store>, Arc<EventBus>, Arc<Registry>),
        server_id: &str,
        max_in_flight: usize,
    ) -> Runner {
        Runner::new(
            store.clone(),
            bus.clone(),
            Arc::new(SystemClock),
            registry.clone(),
            server_id.into(),
            limits(max_in_flight),
        )
    }

    /// Two runners ("servers") on one store.
    async fn two_servers() -> (Runner, Runner) {
        let shared = shared_store().await;
        (
            runner_on(&shared, "srv_a", 10),
            runner_on(&shared, "srv_b", 10),
        )
    }

    async fn setup(max_in_flight: usize) -> Runner {
        runner_on(&shared_store().await, "srv_test", max_in_flight)
    }

    async fn all_events(runner: &Runner, tenant: &str) -> Vec<crate::store::Event> {
        let query = EventQuery {
            limit: 1000,
            ..Default::default()
        };
        runner.store().events(tenant, &query).await.unwrap()
    }

    async fn submit(
        runner: &Runner,
        tenant: &str,
        name: &str,
        input: Value,
    ) -> Result<watch::Receiver<Job>, SubmitError> {
        let service = runner
            .store()
            .find_service(tenant, name)
            .await
            .unwrap()
            .unwrap();
        let handler = runner.handlers().handler(tenant, &service).unwrap();
        runner
            .submit(tenant, &service, handler, input, BTreeMap::new(), None)
            .await
            .map(|admitted| admitted.rx)
    }

    async fn finished(mut rx: watch::Receiver<Job>) -> Job {
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
        let runner = setup(10).await;
        let input = json!({"steps": 3, "interval_ms": 1});
        let job = finished(submit(&runner, "t", "steps", input).await.unwrap()).await;
        assert_eq!(job.status, JobStatus::Succeeded);
        let output = job.output.clone().unwrap();
        assert_eq!(output["steps"], 3);
        assert_eq!(job.progress.as_ref().unwrap().fraction, 1.0);

        let events = all_events(&runner, "t").await;
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "status", "status", "progress", "log", "output", "progress", "log", "output",
                "progress", "log", "output", "status", "done"
            ]
        );
        assert!(events
            .iter()
            .all(|e| e.data.value()["job_id"] == job.id.as_str()));
        let chunks: String = events
            .iter()
            .filter(|e| e.kind == "output")
            .map(|e| e.data.value()["chunk"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(output["text"], chunks.as_str());
        assert_eq!(events[2].data.value()["fraction"], json!(1.0 / 3.0));
        assert_eq!(events[2].data.value()["message"], "step 1 of 3");
        let done: Job = serde_json::from_str(events[12].data.get()).unwrap();
        assert_eq!(done, job);
        // Stored state equals the published state.
        assert_eq!(runner.get("t", &job.id).await.unwrap().unwrap().0, job);
    }

    #[tokio::test]
    async fn cancel_is_final_and_frees_a_slot() {
        let runner = setup(1).await;
        let rx = submit(&runner, "t", "sleep", json!({"duration_seconds": 30}))
            .await
            .unwrap();
        let id = rx.borrow().id.clone();
        let second = submit(&runner, "t", "sleep", json!({"duration_seconds": 1})).await;
        assert!(matches!(second, Err(SubmitError::RateLimited(1))));
        let (cancelled, _) = runner.cancel("t", &id).await.unwrap().unwrap();
        assert_eq!(cancelled.status, JobStatus::Cancelled);
        assert!(cancelled.finished_at.is_some());
        // Idempotent, and invisible to other tenants.
        assert_eq!(runner.cancel("t", &id).await.unwrap().unwrap().0, cancelled);
        assert!(runner.cancel("other", &id).await.unwrap().is_none());
        // The slot is free again.
        submit(&runner, "t", "sleep", json!({"duration_seconds": 0}))
            .await
            .unwrap();
        let kinds: Vec<String> = all_events(&runner, "t")
            .await
            .into_iter()
            .filter(|e| e.job_id == id)
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds.last().map(String::as_str), Some("done"));
    }

    /// A cancel that reaches another server than the one running the job: written in
    /// the store; the running server notices at its next write (here, without following
    /// its peers) and stops the handler, and nothing lands after the `done`.
    #[tokio::test]
    async fn a_cancel_through_another_server_stops_the_job_where_it_runs() {
        let (a, b) = two_servers().await;
        let rx = submit(&a, "t", "steps", json!({"steps": 1000, "interval_ms": 20}))
            .await
            .unwrap();
        let id = rx.borrow().id.clone();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(b.watch("t", &id).is_none(), "b does not run it");
        let (cancelled, _) = b.cancel("t", &id).await.unwrap().unwrap();
        assert_eq!(cancelled.status, JobStatus::Cancelled);
        // a's waiters see it end, and a stops running it.
        assert_eq!(finished(rx).await.status, JobStatus::Cancelled);
        assert_eq!(a.unfinished(), 0);
        let kinds: Vec<String> = all_events(&a, "t")
            .await
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds.iter().filter(|k| *k == "done").count(), 1);
        assert_eq!(kinds.last().map(String::as_str), Some("done"));
    }

    /// On a shared store, a job that reports nothing is lost at once when a peer
    /// cancels it: the runner follows the peers' `done`s.
    #[tokio::test]
    async fn a_peer_cancel_of_a_silent_job_stops_it_at_once_when_peers_are_followed() {
        let (a, b) = two_servers().await;
        let (_stop, closed) = watch::channel(false);
        tokio::spawn(a.clone().follow_peers(closed));
        let rx = submit(&a, "t", "sleep", json!({"duration_seconds": 60}))
            .await
            .unwrap();
        let id = rx.borrow().id.clone();
        let started = std::time::Instant::now();
        b.cancel("t", &id).await.unwrap().unwrap();
        assert_eq!(finished(rx).await.status, JobStatus::Cancelled);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(a.unfinished(), 0, "a stopped running it");
    }

    #[tokio::test]
    async fn the_crash_rule_runs_queued_jobs_and_fails_running_ones() {
        let shared = shared_store().await;
        let store = shared.0.clone();
        for (id, service, status) in [
            ("job_running", "svc_echo", JobStatus::Running),
            ("job_queued", "svc_echo", JobStatus::Queued),
            ("job_orphan", "svc_gone", JobStatus::Queued),
        ] {
            let mut job = Job::new(id, service, status);
            job.input = json!("in");
            job.created_at = SystemClock.now_rfc3339();
            let new = NewJob {
                tenant: "t",
                job: &job,
                key: None,
                max_in_flight: 10,
                max_stored_bytes: u64::MAX,
                owner: "srv_gone",
                lease: Duration::ZERO,
            };
            assert!(matches!(
                store.insert_job(new, vec![]).await.unwrap(),
                Inserted::Stored(_)
            ));
        }
        let runner = runner_on(&shared, "srv_new", 10);
        let recovered = runner.recover().await.unwrap();
        assert_eq!(
            recovered,
            Recovered {
                resumed: 1,
                interrupted: 2
            }
        );
        let read = |id: &'static str| {
            let store = store.clone();
            async move { store.get_job("t", id).await.unwrap().unwrap().0 }
        };
        let running = read("job_running").await;
        assert_eq!(running.status, JobStatus::Failed);
        assert_eq!(running.error.unwrap().code.as_deref(), Some("interrupted"));
        assert_eq!(read("job_orphan").await.status, JobStatus::Failed);
        // The queued one runs, once, to the end.
        for _ in 0..100 {
            if runner.unfinished() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let queued = read("job_queued").await;
        assert_eq!(queued.status, JobStatus::Succeeded);
        assert_eq!(queued.output, Some(json!("in")));
        let kinds: Vec<String> = all_events(&runner, "t")
            .await
            .into_iter()
            .filter(|e| e.job_id == "job_running")
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["status", "done"], "its done is recorded");
        assert_eq!(runner.recover().await.unwrap(), Recovered::default());
    }

    #[tokio::test]
    async fn handler_panic_fails_the_job() {
        let runner = setup(10).await;
        let service = Service::new("svc_boom", "boom", json!({}), SystemClock.now_rfc3339());
        let handler = Handler::from_async(|input: Value, _ctx| async move {
            assert!(input.is_string(), "boom");
            Ok(input)
        });
        let rx = runner
            .submit("t", &service, handler, json!(null), BTreeMap::new(), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let job = finished(rx.rx).await;
        assert_eq!(job.status, JobStatus::Failed);
        assert_eq!(job.error.unwrap().code.as_deref(), Some("internal"));
    }
}
