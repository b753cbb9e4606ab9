//! Admission: turning a submit into a stored, leased, running job — or a clear refusal.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use jobwire_core::{Job, Service};
use serde_json::Value;
use tokio::sync::watch;

use super::completion::to_completion;
use super::lifecycle::{self, Happening, Transition};
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

impl Runner {
    /// Accepts a job: stores it leased to this server (with its key, within the tenant's
    /// limit, atomically), starts its handler, and returns a receiver that sees every
    /// change of the job.
    ///
    /// This server starts a job it accepts at once unless its service limits how many
    /// of its jobs run at once, so such a job is stored already `running`, with both
    /// its `queued` and its `running` events: one write instead of two, on the path most
    /// jobs take. (By the crash rule that is right: its handler starts as soon as the
    /// write is committed.) A job of a limited service is stored `queued` and started
    /// when a slot frees.
    pub(crate) async fn submit(
        &self,
        tenant: &str,
        service: &Service,
        handler: Handler,
        input: Value,
        labels: BTreeMap<String, String>,
        key: Option<KeyUse<'_>>,
    ) -> Result<watch::Receiver<Job>, SubmitError> {
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
        // A job that may have to wait for a slot is stored queued and started when it
        // gets one; any other starts at once.
        let job = if handler.slots().is_some() {
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
        let key = key.map(|k| (k.key.to_owned(), k.fingerprint.to_owned()));
        let admission = Admission {
            tenant: tenant.to_owned(),
            job,
            events,
            key,
            handler,
            input: handler_input,
        };
        // To completion: a client that goes away mid-submit cannot leave a job stored as
        // running with no handler.
        to_completion(self.clone().admit(admission)).await
    }

    /// Stores the job and starts its handler; see [`submit`](Self::submit).
    async fn admit(self, admission: Admission) -> Result<watch::Receiver<Job>, SubmitError> {
        let Admission {
            tenant,
            job,
            events,
            key,
            handler,
            input,
        } = admission;
        let inner = &self.inner;
        let (active, rx, reports) = ActiveJob::new(&tenant, &job);
        {
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
            let new = NewJob {
                tenant: &tenant,
                job: &job,
                key: key
                    .as_ref()
                    .map(|(key, fingerprint)| KeyUse { key, fingerprint }),
                max_in_flight: inner.limits.max_in_flight,
                max_stored_bytes: inner.limits.max_stored_bytes,
                owner: &inner.server_id,
                lease: inner.limits.lease,
            };
            // Stored as it was made: the new job's receiver already sees it.
            let committed = self
                .commit(Some((&active, &mut state)), Write::Insert(new), events, &[])
                .await;
            let refused = match committed {
                Ok(Committed::Stored) => None,
                Ok(Committed::KeyTaken(record)) => Some(SubmitError::KeyTaken(record)),
                Ok(Committed::AtLimit) => {
                    Some(SubmitError::RateLimited(inner.limits.max_in_flight))
                }
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
                lock(&inner.active).remove(&job.id);
                return Err(e);
            }
        }
        if handler.slots().is_some() {
            tokio::spawn(self.clone().start_and_run(active, handler, input, reports));
        } else {
            tokio::spawn(self.clone().run_handler(active, handler, input, reports));
        }
        Ok(rx)
    }
}

/// A submit, checked and owned, on its way to the store.
struct Admission {
    tenant: String,
    job: Job,
    events: Vec<NewEvent>,
    /// The `Idempotency-Key` and the request's fingerprint.
    key: Option<(String, String)>,
    handler: Handler,
    input: Value,
}
