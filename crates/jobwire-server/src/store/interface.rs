//! The storage seam: the [`Store`] trait, and the records it takes and gives.

use std::time::Duration;

use async_trait::async_trait;
use jobwire_core::{Job, JobStatus, Service};
use serde::{Deserialize, Serialize};
use serde_json::value::{to_raw_value, RawValue};

use super::StoreError;

/// The kinds of job event (the `event:` field of the SSE stream).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// The job's status changed: `{"job_id", "status"}`.
    Status,
    /// The job reported progress: `{"job_id", "fraction", "message"}`.
    Progress,
    /// A log line: `{"job_id", "line"}`.
    Log,
    /// A partial output chunk: `{"job_id", "chunk"}`.
    Output,
    /// The job is terminal: the job itself plus `job_id`; always a job's last event.
    Done,
}

impl EventKind {
    /// The wire name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventKind::Status => "status",
            EventKind::Progress => "progress",
            EventKind::Log => "log",
            EventKind::Output => "output",
            EventKind::Done => "done",
        }
    }
}

/// An event's JSON object, serialized once, when the event happens: kept, streamed and
/// written to the store as this text, never built as a tree again.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct EventData(Box<RawValue>);

impl EventData {
    /// `value`'s JSON as event data.
    pub(crate) fn of(value: &impl Serialize) -> Self {
        // Event data is a struct or map of plain values, which always serializes.
        EventData(to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned()))
    }

    /// The JSON text.
    pub(crate) fn get(&self) -> &str {
        self.0.get()
    }

    /// The JSON as a tree, for tests to look into.
    #[cfg(test)]
    pub(crate) fn value(&self) -> serde_json::Value {
        serde_json::from_str(self.get()).unwrap_or(serde_json::Value::Null)
    }
}

impl PartialEq for EventData {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

/// An event about to be recorded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NewEvent {
    /// The job it is about.
    pub job_id: String,
    /// The service of that job (for the `service` filter of event streams).
    pub service_id: String,
    /// What happened.
    pub kind: EventKind,
    /// The event's JSON object; carries `job_id`.
    pub data: EventData,
    /// RFC 3339 time it happened.
    pub created_at: String,
}

impl NewEvent {
    /// The recorded event, once the store has given it sequence id `seq`.
    pub(crate) fn recorded(self, seq: i64) -> Event {
        Event {
            seq,
            job_id: self.job_id,
            service_id: self.service_id,
            kind: self.kind.as_str().to_owned(),
            data: self.data,
            created_at: self.created_at,
        }
    }
}

/// A recorded event, with its sequence id (increasing, never reused).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Event {
    /// Sequence id: increasing in commit order, unique, never reused; the SSE `id:`.
    pub seq: i64,
    /// The job it is about.
    pub job_id: String,
    /// The service of that job.
    pub service_id: String,
    /// `status`, `progress`, `log`, `output` or `done`.
    pub kind: String,
    /// The event's JSON object.
    pub data: EventData,
    /// RFC 3339 time it happened.
    pub created_at: String,
}

/// Which services to list, after which position.
#[derive(Debug, Clone, Default)]
pub(crate) struct ServiceQuery {
    /// Only the service with this exact name.
    pub name: Option<String>,
    /// Only services with a sequence number above this (the cursor).
    pub after: Option<i64>,
    /// At most this many.
    pub limit: usize,
}

/// Which jobs to list, newest first, before which position.
#[derive(Debug, Clone, Default)]
pub(crate) struct JobQuery {
    /// Only jobs of this service id.
    pub service_id: Option<String>,
    /// Only jobs with this status.
    pub status: Option<String>,
    /// Only jobs carrying every one of these labels.
    pub labels: Vec<(String, String)>,
    /// Only jobs with a sequence number below this (the cursor).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: usize,
}

/// Which recorded events to read: those of one tenant after a sequence id, optionally only
/// of some jobs or of one service, oldest first.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventQuery {
    /// Only events with a sequence id above this.
    pub after: i64,
    /// Only events of these jobs (all jobs when empty).
    pub jobs: Vec<String>,
    /// Only events of jobs of this service id.
    pub service_id: Option<String>,
    /// At most this many.
    pub limit: usize,
}

impl EventQuery {
    /// Whether a recorded event passes the job and service filters (not `after`).
    pub(crate) fn matches(&self, job_id: &str, service_id: &str) -> bool {
        (self.jobs.is_empty() || self.jobs.iter().any(|j| j == job_id))
            && self.service_id.as_deref().map_or(true, |s| s == service_id)
    }
}

/// An `Idempotency-Key` a submit carries, with the fingerprint of what it asks for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyUse<'a> {
    /// The key the client chose.
    pub key: &'a str,
    /// A digest of the service, input and labels.
    pub fingerprint: &'a str,
    /// The status code the request is answered with, when that is known as the job is
    /// stored (a job stored already finished): recorded with the key in the same
    /// transaction, so no second write records it. `None`: recorded later with
    /// [`Store::set_key_status`]. (Given to the runner's submit, it is the status the
    /// answer has should the job be stored finished; the runner passes it on only then.)
    pub answered: Option<u16>,
}

/// An `Idempotency-Key` as recorded with the job it created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeyRecord {
    /// What the first request asked for (a digest of its service, input and labels).
    pub fingerprint: String,
    /// The job the first request created.
    pub job_id: String,
    /// The status code the first request was answered with, once it was.
    pub status: Option<u16>,
}

/// A job to store, with what its insert must check and who runs it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewJob<'a> {
    /// Whose job it is.
    pub tenant: &'a str,
    /// The job, `queued`.
    pub job: &'a Job,
    /// Its `Idempotency-Key`, when the request had one.
    pub key: Option<KeyUse<'a>>,
    /// The tenant may have at most this many unfinished jobs, this one included.
    pub max_in_flight: usize,
    /// The tenant may store at most this many bytes (see [`Store::insert_job`]); a
    /// tenant already past it gets no new job.
    pub max_stored_bytes: u64,
    /// The server that will run it: it holds the job's lease from the start.
    pub owner: &'a str,
    /// How long the lease lasts unless renewed.
    pub lease: Duration,
}

/// How an insert went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Inserted {
    /// The job (and its key) were stored; its events got these ids.
    Stored(Vec<i64>),
    /// The tenant already used the key: nothing was stored.
    KeyTaken(KeyRecord),
    /// The tenant has `max_in_flight` unfinished jobs already: nothing was stored.
    AtLimit,
    /// The tenant stores `max_stored_bytes` or more already: nothing was stored.
    OverQuota {
        /// The bytes the tenant stores now, as the store counts them.
        used: u64,
    },
}

/// How registering a tenant's service went.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Created {
    /// Stored.
    Stored,
    /// A live service the tenant can see (its own, or a global one) has the name:
    /// nothing was stored.
    NameTaken(Box<Service>),
}

/// How retiring a service went.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Retired {
    /// The tenant's service with this id is retired (now, or it was already).
    Done(String),
    /// The service is global (a built-in, or the embedding program's): not the tenant's
    /// to retire.
    Global,
    /// The tenant can see no such service.
    Missing,
}

/// The state a compare-and-set update expects the stored job to be in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expected<'a> {
    /// The job's status as the writer last saw it.
    pub status: &'a JobStatus,
    /// The server that must hold the job's lease; `None` for whichever holds it (a
    /// cancel made through another server than the one running the job).
    pub owner: Option<&'a str>,
}

impl Expected<'_> {
    /// Whether a stored job held by `owner` is in this state.
    pub(crate) fn holds(&self, job: &Job, owner: &str) -> bool {
        job.status == *self.status && self.owner.map_or(true, |o| o == owner)
    }
}

/// What a retention pass removes: everything older than these times (RFC 3339 as the
/// server writes them, which sort as text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cutoffs {
    /// Events of jobs that finished before this.
    pub events_before: String,
    /// Idempotency keys recorded before this.
    pub keys_before: String,
    /// Jobs that finished before this, whole: the job, its labels, what is left of its
    /// events, and its key.
    pub jobs_before: String,
}

/// What one retention pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pruned {
    /// Events removed.
    pub events: usize,
    /// Idempotency keys removed.
    pub keys: usize,
    /// Finished jobs removed.
    pub jobs: usize,
}

/// The storage seam of the server; see the module docs.
///
/// Services are either global (`tenant` `None`: the built-ins, visible to every tenant) or
/// belong to one tenant. Jobs and events always belong to one tenant, and every read is
/// scoped by it: a tenant never reads another's jobs. Sequence numbers of services, jobs
/// and events only grow and are never reused, which is what makes cursors stable.
#[async_trait]
pub(crate) trait Store: Send + Sync + 'static {
    /// Inserts a service, or replaces the one with the same id.
    async fn upsert_service(
        &self,
        tenant: Option<&str>,
        service: &Service,
    ) -> Result<(), StoreError>;

    /// Stores `tenant`'s new service, unless a live service `tenant` can see has its
    /// name (checked and stored in one transaction).
    async fn create_service(&self, tenant: &str, service: &Service) -> Result<Created, StoreError>;

    /// Retires `tenant`'s service with this id, or the live one with this name: no
    /// longer found or listed, its name free; its jobs stay.
    async fn retire_service(&self, tenant: &str, id_or_name: &str) -> Result<Retired, StoreError>;

    /// Whether `tenant` had a service with this id that is now retired.
    async fn is_retired(&self, tenant: &str, id: &str) -> Result<bool, StoreError>;

    /// The live service with this id or name that `tenant` can see.
    async fn find_service(
        &self,
        tenant: &str,
        id_or_name: &str,
    ) -> Result<Option<Service>, StoreError>;

    /// Live services `tenant` can see, oldest first, with their sequence numbers.
    async fn list_services(
        &self,
        tenant: &str,
        query: &ServiceQuery,
    ) -> Result<Vec<(i64, Service)>, StoreError>;

    /// Inserts a new job leased to its owner, its first events and its idempotency key,
    /// in one transaction — or nothing, when the key was used before, the tenant is at
    /// its limit of unfinished jobs, or it stores its quota of bytes already.
    ///
    /// A tenant's stored bytes are the JSON text of its jobs and events as kept (plus,
    /// in memory, a fixed cost per record). The quota is checked here, before a job is
    /// accepted, never after: a job already accepted keeps everything it records, even
    /// past the quota. (On a shared store the figure may lag the peers' writes of the
    /// last second or so.)
    async fn insert_job(
        &self,
        new: NewJob<'_>,
        events: Vec<NewEvent>,
    ) -> Result<Inserted, StoreError>;

    /// What the tenant's `key` was first used for.
    async fn find_key(&self, tenant: &str, key: &str) -> Result<Option<KeyRecord>, StoreError>;

    /// Records the status code the key's first request was answered with.
    async fn set_key_status(&self, tenant: &str, key: &str, status: u16) -> Result<(), StoreError>;

    /// Compare-and-set: replaces the job's state with `job` and records `events`, in one
    /// transaction, if the stored job is still in the `expected` state; returns the
    /// events' ids, or `None` (nothing written) when it is not.
    async fn update_job(
        &self,
        tenant: &str,
        job: &Job,
        expected: Expected<'_>,
        events: Vec<NewEvent>,
    ) -> Result<Option<Vec<i64>>, StoreError>;

    /// Records events of job `job_id` (log lines, output chunks) without changing the
    /// job, if it is still in the `expected` state (so nothing lands after a `done` a
    /// peer recorded); returns their ids, or `None` (nothing written) when it is not.
    async fn append_events(
        &self,
        tenant: &str,
        job_id: &str,
        expected: Expected<'_>,
        events: Vec<NewEvent>,
    ) -> Result<Option<Vec<i64>>, StoreError>;

    /// One job of `tenant`, with its event position: the highest event id committed
    /// when it was read, so every later change of the job has a higher id.
    async fn get_job(&self, tenant: &str, id: &str) -> Result<Option<(Job, i64)>, StoreError>;

    /// Jobs of `tenant`, newest first, with their sequence numbers.
    async fn list_jobs(
        &self,
        tenant: &str,
        query: &JobQuery,
    ) -> Result<Vec<(i64, Job)>, StoreError>;

    /// Extends the leases `owner` holds on the unfinished jobs `jobs` (those it runs) by
    /// `lease` from now; returns how many it renewed. A job it holds but no longer runs
    /// is left to run out, and to be claimed.
    async fn renew_leases(
        &self,
        owner: &str,
        jobs: &[String],
        lease: Duration,
    ) -> Result<usize, StoreError>;

    /// Claims up to `limit` unfinished jobs whose lease ran out (their server is gone):
    /// each becomes `owner`'s, leased for `lease`, and no other server gets it. Returns
    /// them as `(tenant, job)`, oldest first.
    async fn claim_orphans(
        &self,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<(String, Job)>, StoreError>;

    /// Ends `owner`'s leases at once, so a peer claims its unfinished jobs without
    /// waiting for them to run out; returns how many there were.
    async fn release_leases(&self, owner: &str) -> Result<usize, StoreError>;

    /// Events of `tenant` that `query` selects, oldest first.
    async fn events(&self, tenant: &str, query: &EventQuery) -> Result<Vec<Event>, StoreError>;

    /// The highest id of an event of `tenant` that retention has removed (0 when none): a
    /// stream cannot resume from before it.
    async fn event_floor(&self, tenant: &str) -> Result<i64, StoreError>;

    /// The retention pass: removes what [`Cutoffs`] names, raising the tenants' event
    /// floors past every event it removes. A pass may stop early on a large backlog
    /// (it says how much it removed) so that it never holds the store long; the next
    /// pass goes on.
    async fn prune(&self, cutoffs: &Cutoffs) -> Result<Pruned, StoreError>;

    /// Flushes what needs flushing before the process exits.
    async fn close(&self) -> Result<(), StoreError>;

    /// Whether other server processes may write to this store too (so jobs this one
    /// runs may be changed by them).
    fn shared(&self) -> bool {
        false
    }
}

/// Whether a job with these labels passes the label filter.
pub(crate) fn labels_match(
    job_labels: &std::collections::BTreeMap<String, String>,
    wanted: &[(String, String)],
) -> bool {
    wanted
        .iter()
        .all(|(k, v)| job_labels.get(k).is_some_and(|have| have == v))
}
