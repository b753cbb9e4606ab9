//! Supervision: the life of each job's handler, the leases that say this server is
//! still running its jobs, and the crash rule for jobs whose server is gone.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use jobwire_core::{Job, JobError};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::sync::watch;

use super::lifecycle::{self, Happening, Recovery};
use super::workers::Unfinished;
use super::{ActiveJob, Applied, JobContext, Runner};
use crate::locking::lock;
use crate::services::{Handler, HandlerFuture, Run};
use crate::store::StoreError;

/// Orphaned jobs claimed per store call.
const CLAIM_BATCH: usize = 256;
/// The longest pause between two attempts to record a job's outcome.
const MAX_FINISH_BACKOFF: Duration = Duration::from_secs(5);

/// How the jobs of a server that is gone were dealt with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Recovered {
    /// Accepted but never started: running here now.
    pub resumed: usize,
    /// Running when their server stopped: failed as `interrupted`.
    pub interrupted: usize,
}

impl Runner {
    /// The life of a `queued` job: wait for a slot of its handler (if its service limits
    /// how many of its jobs run at once), mark it running, then
    /// [`run_handler`](Self::run_handler). The slot is held until the job ends.
    pub(super) async fn start_and_run(
        self,
        job: Arc<ActiveJob>,
        handler: Handler,
        input: Value,
        reports: mpsc::UnboundedReceiver<Happening>,
    ) {
        let _slot = match handler.slots() {
            Some(slots) => match slots.clone().acquire_owned().await {
                Ok(slot) => Some(slot),
                Err(_) => return,
            },
            None => None,
        };
        // Cancelled (or lost) while it waited: the lifecycle refuses the start.
        if self.record(&job, Happening::Start).await == Applied::Done {
            self.run_handler(job, handler, input, reports).await;
        }
    }

    /// The life of a `running` job: run the handler in its own task (so a panic or an
    /// abort cannot take the bookkeeping down with it), record its reports in order while
    /// it runs, then record how it ended.
    pub(super) async fn run_handler(
        self,
        job: Arc<ActiveJob>,
        handler: Handler,
        input: Value,
        reports: mpsc::UnboundedReceiver<Happening>,
    ) {
        let task = self.handler_future(&job, handler.run, input);
        self.supervise(job, task, reports).await;
    }

    /// The handler's run for `job`, not started yet: an async handler's future, or a
    /// blocking handler's turn on the worker pool (its panic resumed as the future's).
    pub(super) fn handler_future(
        &self,
        job: &Arc<ActiveJob>,
        run: Run,
        input: Value,
    ) -> HandlerFuture {
        let ctx = JobContext::new(self.clone(), job.clone());
        match run {
            Run::Async(f) => f(input, ctx),
            Run::Blocking(f) => {
                let work = self.inner.workers.run(&job.tenant, move || f(input, ctx));
                Box::pin(async move {
                    match work.await {
                        Ok(outcome) => outcome,
                        // As a panic of the task, like an async handler's.
                        Err(Unfinished::Panicked(panic)) => std::panic::resume_unwind(panic),
                        Err(Unfinished::Dropped) => Err(JobError::new(
                            "the server stopped before the job's turn came",
                        )),
                    }
                })
            }
        }
    }

    /// Runs `task` (the job's handler, perhaps already under way) in its own task to
    /// its end, recording its reports in order while it runs, then how it ended.
    pub(super) async fn supervise(
        self,
        job: Arc<ActiveJob>,
        task: HandlerFuture,
        mut reports: mpsc::UnboundedReceiver<Happening>,
    ) {
        let mut task = tokio::spawn(task);
        {
            let mut state = job.state.lock().await;
            if job.is_terminal() || job.cancelled.load(Ordering::Acquire) {
                // Cancelled (or lost) between "running" and here.
                task.abort();
                return;
            }
            state.abort = Some(task.abort_handle());
        }
        let joined = loop {
            tokio::select! {
                Some(report) = reports.recv() => {
                    self.apply(&job, report).await;
                }
                joined = &mut task => break joined,
            }
        };
        // Reports made before the handler returned go first.
        while let Ok(report) = reports.try_recv() {
            self.apply(&job, report).await;
        }
        let outcome = match joined {
            Ok(Ok(output)) => Happening::Succeed(output),
            Ok(Err(error)) => Happening::Fail(error),
            Err(e) if e.is_panic() => Happening::Fail(panicked(&job.id)),
            // Aborted: whoever aborted it has recorded the outcome.
            Err(_) => return,
        };
        self.record(&job, outcome).await;
    }

    /// Applies a change that must not be dropped (a start, an outcome): while the store
    /// fails, tries again with a growing pause (the job stays unfinished and leased
    /// meanwhile, so nothing else takes it).
    async fn record(&self, job: &ActiveJob, happening: Happening) -> Applied {
        let mut pause = Duration::from_millis(50);
        loop {
            match self.apply(job, happening.clone()).await {
                Applied::Failed => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_FINISH_BACKOFF);
                }
                applied => return applied,
            }
        }
    }

    /// The crash rule, for jobs whose server is gone (it crashed, was killed, or its
    /// shutdown grace ran out; on a shared database, its leases ran out):
    ///
    /// - `queued` — accepted, never started: run here now, once;
    /// - `running` — its handler may have done part of its work: not run again, but
    ///   `failed` with code `interrupted`, and its `done` event recorded.
    ///
    /// Claims every such job there is now; so no job runs twice, and every accepted job
    /// ends.
    pub(crate) async fn recover(&self) -> Result<Recovered, StoreError> {
        let inner = &self.inner;
        let mut recovered = Recovered::default();
        loop {
            if inner.closed.load(Ordering::Acquire) {
                return Ok(recovered);
            }
            let claimed = inner
                .store
                .claim_orphans(&inner.server_id, inner.limits.lease, CLAIM_BATCH)
                .await?;
            let n = claimed.len();
            for (tenant, job) in claimed {
                let runs_here = self.active(&tenant, &job.id).is_some();
                let handler = self.handler_of(&tenant, &job.service_id).await;
                match lifecycle::crash_rule(&job.status, runs_here, handler.is_some()) {
                    Recovery::Keep => {}
                    Recovery::Resume => {
                        if let Some(handler) = handler {
                            self.resume(&tenant, job, handler);
                            recovered.resumed += 1;
                        }
                    }
                    Recovery::Interrupt(why) => {
                        self.fail_orphan(&tenant, &job, why).await;
                        recovered.interrupted += 1;
                    }
                }
            }
            if n < CLAIM_BATCH {
                return Ok(recovered);
            }
        }
    }

    /// The handler of a tenant's service, if this server runs it.
    async fn handler_of(&self, tenant: &str, service_id: &str) -> Option<Handler> {
        match self.inner.store.find_service(tenant, service_id).await {
            Ok(Some(service)) => self.inner.handlers.handler(tenant, &service),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, service_id, "cannot read a service");
                None
            }
        }
    }

    /// Runs a `queued` job this server just claimed.
    fn resume(&self, tenant: &str, job: Job, handler: Handler) {
        let input = job.input.clone();
        let (active, _, reports) = ActiveJob::new(tenant, &job);
        {
            let mut table = lock(&self.inner.active);
            // Checked under the lock `abort_all` takes: nothing starts after a shutdown
            // began (the job's lease runs out, and a live server takes it).
            if self.inner.closed.load(Ordering::Acquire) {
                return;
            }
            table.insert(job.id.clone(), active.clone());
        }
        tokio::spawn(self.clone().start_and_run(active, handler, input, reports));
    }

    /// Ends a claimed job as `failed` (`interrupted`).
    async fn fail_orphan(&self, tenant: &str, job: &Job, why: &str) {
        let (orphan, _, _) = ActiveJob::new(tenant, job);
        self.record(&orphan, Happening::Interrupt(why.to_owned()))
            .await;
    }

    /// Keeps the leases of the jobs this server runs alive and takes over the jobs of
    /// servers that are gone, every third of a lease, until `closed` turns true.
    pub(crate) async fn maintain(self, mut closed: watch::Receiver<bool>) {
        let every = self.inner.limits.lease / 3;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = closed.wait_for(|closed| *closed) => return,
            }
            let inner = &self.inner;
            let running: Vec<String> = lock(&inner.active).keys().cloned().collect();
            if let Err(e) = inner
                .store
                .renew_leases(&inner.server_id, &running, inner.limits.lease)
                .await
            {
                tracing::warn!(error = %e, "cannot renew this server's leases");
            }
            match self.recover().await {
                Ok(r) if r.resumed + r.interrupted > 0 => tracing::warn!(
                    resumed = r.resumed,
                    interrupted = r.interrupted,
                    "took over the jobs of a server that is gone"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot claim orphaned jobs"),
            }
        }
    }

    /// Fails every unfinished job as `interrupted` (the crash rule's answer for a job
    /// whose handler may have done part of its work), aborts its handler, and gives up
    /// this server's leases. Returns how many jobs there were.
    pub(crate) async fn abort_all(&self) -> usize {
        let jobs: Vec<Arc<ActiveJob>> = lock(&self.inner.active).values().cloned().collect();
        for job in &jobs {
            let why = "the server shut down before the job finished";
            self.apply(job, Happening::Interrupt(why.to_owned())).await;
        }
        let inner = &self.inner;
        if let Err(e) = inner.store.release_leases(&inner.server_id).await {
            tracing::warn!(error = %e, "cannot release this server's leases");
        }
        jobs.len()
    }
}

/// How a job whose handler panicked fails (the panic is logged, not shown).
pub(super) fn panicked(job_id: &str) -> JobError {
    tracing::error!(job_id = %job_id, "job handler panicked");
    let mut error = JobError::new("the service's handler panicked");
    error.code = Some("internal".into());
    error
}
