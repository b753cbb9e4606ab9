//! Admission: turning a submit into a stored, leased job — running, queued, or already
//! finished — or a clear refusal.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::FutureExt;

use jobwire_core::{Job, Service};
use serde_json::Value;
use tokio::sync::watch;

use super::completion::to_completion;
use super::lifecycle::{self, Happening, Transition};
use super::supervision::panicked;
use super::{new_events, ActiveJob, Committed, Runner, Write};
use crate::clock::{rfc3339_at, unix_millis};
use crate::ids::sortable_id;
use crate::locking::lock;
use crate::services::Handler;
use crate::store::{KeyRecord, KeyUse, NewEvent, NewJob, StoreError};

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
    /// The tenant stores its quota of bytes already.
    #[error("the tenant stores {used} bytes, its quota is {limit}")]
    OverQuota {
        /// What it stores.
        used: u64,
        /// Its quota.
        limit: u64,
    },
    /// The tenant already used the idempotency key; nothing was created.
    #[error("the idempotency key was used before")]
    KeyTaken(KeyRecord),
}

/// How long a side-effect-free handler may run within its submit for its job to be
/// stored once, finished: long enough for one that does not wait on anything (or waits a
/// moment), short enough that a submit of a longer job is not held up. Past it the job is
/// stored `running` and its handler goes on.
const INLINE_BUDGET: Duration = Duration::from_millis(2);

/// A job accepted by [`Runner::submit`].
pub(crate) struct Admitted {
    /// Sees every change of the job from its stored state on.
    pub rx: watch::Receiver<Job>,
    /// The job was stored finished (its handler ran within the submit), and its key,
    /// if any, with the answer's status.
    pub finished: bool,
}

impl Runner {
    /// Accepts a job: stores it leased to this server (with its key, within the tenant's
    /// limit, atomically), starts its handler, and returns a receiver that sees every
    /// change of the job.
    ///
    /// How a job is admitted is the lifecycle's [`admission`](lifecycle::admission):
    ///
    /// - a job of a service that limits how many of its jobs run at once is stored
    ///   `queued` and started when a slot frees;
    /// - any other job starts at once, so it is stored already `running`, with both its
    ///   `queued` and its `running` events: one write instead of two. (By the crash rule
    ///   that is right: its handler starts as soon as the write is committed.)
    /// - a job of a side-effect-free handler runs first, within the submit, for up to
    ///   [`INLINE_BUDGET`]: finished by then, it is stored once, terminal, with all its
    ///   events (and its key with the answer's status); otherwise it is stored `running`
    ///   with its handler going on. Nothing about it is stored before that one write, so
    ///   a server that stops meanwhile leaves no trace of it (the submit was never
    ///   answered; its client repeats it), and a refusal (key used, tenant at its limit
    ///   or quota) drops what the handler did, which, being side-effect free, is
    ///   nothing anyone can see.
    pub(crate) async fn submit(
        &self,
        tenant: &str,
        service: &Service,
        handler: Handler,
        input: Value,
        labels: BTreeMap<String, String>,
        key: Option<KeyUse<'_>>,
    ) -> Result<Admitted, SubmitError> {
        let inner = &self.inner;
        if inner.closed.load(Ordering::Acquire) {
            return Err(SubmitError::ShuttingDown);
        }
        let at = inner.clock.now();
        let id = sortable_id("job_", unix_millis(at)).map_err(SubmitError::Random)?;
        let now = rfc3339_at(at);
        let handler_input = input.clone();
        let (queued, mut events) =
            lifecycle::submitted(id, &service.id, &service.name, input, labels, &now);
        let how = lifecycle::admission(handler.is_side_effect_free(), handler.slots().is_some());
        let job = if how == lifecycle::Admission::Queue {
            queued
        } else {
            let started =
                lifecycle::transition(&queued, Happening::Start, &now, &inner.limits.caps);
            // Its effects are moot: the job is stored already running, and its receiver
            // is made with that state.
            let Some(Transition {
                job: Some(job),
                events: start_events,
                ..
            }) = started
            else {
                return Err(SubmitError::Store(StoreError::new(
                    "a queued job refused to start",
                )));
            };
            events.extend(start_events);
            job
        };
        let events = new_events(&job.id, &job.service_id, events, &now);
        let key = key.map(|k| (k.key.to_owned(), k.fingerprint.to_owned(), k.answered));
        let admission = Admission {
            tenant: tenant.to_owned(),
            job,
            events,
            key,
            handler,
            input: handler_input,
            how,
        };
        // To completion: a client that goes away mid-submit cannot leave a job stored as
        // running with no handler.
        to_completion(self.clone().admit(admission)).await
    }

    /// Stores the job and starts its handler (or runs it first); see
    /// [`submit`](Self::submit).
    async fn admit(self, admission: Admission) -> Result<Admitted, SubmitError> {
        let Admission {
            tenant,
            job,
            mut events,
            key,
            handler,
            input,
            how,
        } = admission;
        let inner = &self.inner;
        let (active, rx, mut reports) = ActiveJob::new(&tenant, &job);
        // Held until the job is stored: nothing (a cancel, a shutdown) may change it
        // before.
        let mut state = active.state.lock().await;
        {
            let mut table = lock(&inner.active);
            // Checked under the lock `abort_all` takes, so no job slips past a shutdown.
            if inner.closed.load(Ordering::Acquire) {
                return Err(SubmitError::ShuttingDown);
            }
            table.insert(job.id.clone(), active.clone());
        }
        let mut input = Some(input);
        let mut unfinished = None;
        let stored = if how == lifecycle::Admission::Inline {
            let run = handler.run.clone();
            let mut task = self.handler_future(&active, run, input.take().unwrap_or_default());
            let ran = tokio::time::timeout(
                INLINE_BUDGET,
                std::panic::AssertUnwindSafe(&mut task).catch_unwind(),
            )
            .await;
            match ran {
                Ok(outcome) => {
                    let outcome = match outcome {
                        Ok(Ok(output)) => Happening::Succeed(output),
                        Ok(Err(error)) => Happening::Fail(error),
                        Err(_) => Happening::Fail(panicked(&job.id)),
                    };
                    // Its reports first, in the order it made them, then its outcome.
                    let mut happenings = Vec::new();
                    while let Ok(report) = reports.try_recv() {
                        happenings.push(report);
                    }
                    happenings.push(outcome);
                    let now = inner.clock.now_rfc3339();
                    let (done, more) =
                        lifecycle::settle(&job, happenings, &now, &inner.limits.caps);
                    events.extend(new_events(&job.id, &job.service_id, more, &now));
                    done
                }
                Err(_) => {
                    unfinished = Some(task);
                    job
                }
            }
        } else {
            job
        };
        let finished = stored.status.is_terminal();
        let new = NewJob {
            tenant: &tenant,
            job: &stored,
            // The answer's status is known now only for a job stored finished; any
            // other's is recorded once it is answered.
            key: key.as_ref().map(|(key, fingerprint, answered)| KeyUse {
                key,
                fingerprint,
                answered: answered.filter(|_| finished),
            }),
            max_in_flight: inner.limits.max_in_flight,
            max_stored_bytes: inner.limits.max_stored_bytes,
            owner: &inner.server_id,
            lease: inner.limits.lease,
        };
        let committed = self
            .commit(Some((&active, &mut state)), Write::Insert(new), events, &[])
            .await;
        let refused = match committed {
            Ok(Committed::Stored) => None,
            Ok(Committed::KeyTaken(record)) => Some(SubmitError::KeyTaken(record)),
            Ok(Committed::AtLimit) => Some(SubmitError::RateLimited(inner.limits.max_in_flight)),
            Ok(Committed::OverQuota { used }) => Some(SubmitError::OverQuota {
                used,
                limit: inner.limits.max_stored_bytes,
            }),
            Ok(Committed::Lost) => Some(SubmitError::Store(StoreError::new(
                "an insert reported a lost change",
            ))),
            Err(e) => Some(SubmitError::Store(e)),
        };
        if let Some(e) = refused {
            // An inline handler still running is dropped with its task here.
            self.retire(&active, &mut state);
            return Err(e);
        }
        if finished {
            // Done within the submit: nothing more runs; its waiters see the end.
            self.retire(&active, &mut state);
            active.watch.send_replace(stored);
            return Ok(Admitted { rx, finished });
        }
        drop(state);
        match (unfinished, input) {
            (Some(task), _) => {
                tokio::spawn(self.clone().supervise(active, task, reports));
            }
            (None, Some(input)) if how == lifecycle::Admission::Queue => {
                tokio::spawn(self.clone().start_and_run(active, handler, input, reports));
            }
            (None, Some(input)) => {
                tokio::spawn(self.clone().run_handler(active, handler, input, reports));
            }
            (None, None) => {}
        }
        Ok(Admitted { rx, finished })
    }
}

/// A submit, checked and owned, on its way to the store.
struct Admission {
    tenant: String,
    job: Job,
    events: Vec<NewEvent>,
    /// The `Idempotency-Key`, the request's fingerprint, and the answer's status should
    /// the job be stored finished.
    key: Option<(String, String, Option<u16>)>,
    handler: Handler,
    input: Value,
    how: lifecycle::Admission,
}
