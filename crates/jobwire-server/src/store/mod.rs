//! Where services, jobs and events are kept: the [`Store`] trait and its three
//! implementations, [`SqliteStore`] (durable, embedded, the binary's default),
//! [`PgStore`] (PostgreSQL, shared by several server processes) and [`MemoryStore`].
//!
//! The trait is async: no store call blocks the event loop. SQLite writes go to one
//! writer thread that commits everything that arrived while its last commit ran in one
//! transaction (group commit); its reads run on the blocking pool. PostgreSQL is driven
//! by an async driver and a connection pool.
//!
//! What makes several processes on one database safe is in the trait, not in any one
//! process's locks:
//!
//! - a job changes by compare-and-set ([`Store::update_job`] and
//!   [`Store::append_events`] name the status they expect and the server that must hold
//!   the job), so a server that lost a job to a peer can neither overwrite it nor record
//!   anything after its `done`;
//! - every unfinished job is leased to one server, which renews its leases; a job whose
//!   lease ran out is claimed by another server ([`Store::claim_orphans`]) and dealt with
//!   by the crash rule;
//! - idempotency keys and the per-tenant limit on unfinished jobs are checked inside the
//!   insert's transaction;
//! - event ids grow in commit order, and the store publishes every committed event, in
//!   id order, on the [`EventBus`](crate::bus::EventBus) it was opened with, whichever
//!   process wrote it.
mod memory;
mod postgres;
mod sqlite;

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use jobwire_core::{Job, JobStatus, Service};
use serde::{Deserialize, Serialize};
use serde_json::value::{to_raw_value, RawValue};

pub(crate) use memory::MemoryStore;
pub(crate) use postgres::PgStore;
pub(crate) use sqlite::SqliteStore;

/// A storage failure: the database could not be opened, read or written.
///
/// The message says what was being done; the source is the underlying error.
#[derive(Debug)]
pub struct StoreError {
    context: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl StoreError {
    pub(crate) fn new(context: impl Into<String>) -> Self {
        StoreError {
            context: context.into(),
            source: None,
        }
    }

    pub(crate) fn with_source(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError {
            context: context.into(),
            source: Some(Box::new(source)),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Some(source) => write!(f, "store: {}: {source}", self.context),
            None => write!(f, "store: {}", self.context),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

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

/// What one retention pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pruned {
    /// Events removed.
    pub events: usize,
    /// Idempotency keys removed.
    pub keys: usize,
    /// Finished jobs removed (only a store with a cap on jobs removes any).
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
    /// in one transaction — or nothing, when the key was used before or the tenant is at
    /// its limit.
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

    /// The retention pass: removes the events of jobs that finished before
    /// `events_before` and the idempotency keys recorded before `keys_before` (RFC 3339
    /// times as the server writes them, which sort as text), raising the tenants' event
    /// floors; a store with a cap on finished jobs also drops the oldest past it.
    async fn prune(&self, events_before: &str, keys_before: &str) -> Result<Pruned, StoreError>;

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

#[cfg(test)]
pub(crate) mod contract {
    //! The behaviour every store must have, run against each implementation.

    use super::*;
    use crate::bus::EventBus;
    use jobwire_core::JobStatus;
    use serde_json::json;

    const OWNER: &str = "srv_a";
    const LONG: Duration = Duration::from_secs(3600);

    fn service(id: &str, name: &str) -> Service {
        Service::new(id, name, json!({}), "2026-01-01T00:00:00.000Z")
    }

    fn job(id: &str, service_id: &str, labels: &[(&str, &str)]) -> Job {
        let mut job = Job::new(id, service_id, JobStatus::Queued);
        job.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        job.created_at = "2026-01-01T00:00:00.000000Z".into();
        job
    }

    fn event(job_id: &str, kind: EventKind) -> NewEvent {
        NewEvent {
            job_id: job_id.into(),
            service_id: "svc_a".into(),
            kind,
            data: EventData::of(&json!({ "job_id": job_id })),
            created_at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    fn new_job<'a>(tenant: &'a str, job: &'a Job) -> NewJob<'a> {
        NewJob {
            tenant,
            job,
            key: None,
            max_in_flight: 1000,
            owner: OWNER,
            lease: LONG,
        }
    }

    /// Inserts a job that must be stored; returns its events' ids.
    async fn insert(store: &dyn Store, new: NewJob<'_>, events: Vec<NewEvent>) -> Vec<i64> {
        match store.insert_job(new, events).await.unwrap() {
            Inserted::Stored(ids) => ids,
            other => panic!("not stored: {other:?}"),
        }
    }

    /// A job in `status`, held by `OWNER`.
    fn expected(status: &JobStatus) -> Expected<'_> {
        Expected {
            status,
            owner: Some(OWNER),
        }
    }

    /// Replaces a job that must be in `status` and held by `OWNER`.
    async fn update(
        store: &dyn Store,
        tenant: &str,
        job: &Job,
        status: JobStatus,
        events: Vec<NewEvent>,
    ) -> Vec<i64> {
        let expected = Expected {
            status: &status,
            owner: Some(OWNER),
        };
        store
            .update_job(tenant, job, expected, events)
            .await
            .unwrap()
            .expect("the compare-and-set holds")
    }

    /// Runs the whole contract against `store`, which must be empty and publish on
    /// `bus`. Each part uses tenants of its own.
    pub(crate) async fn run(store: &dyn Store, bus: &EventBus) {
        services(store).await;
        tenant_services(store).await;
        jobs(store).await;
        events(store, bus).await;
        compare_and_set(store).await;
        leases(store).await;
        limits(store).await;
        retention(store, bus).await;
        idempotency(store).await;
    }

    /// A tenant's own services: names unique among what the tenant sees, retired ones
    /// gone from reads but known as retired, their names free again.
    async fn tenant_services(store: &dyn Store) {
        store
            .upsert_service(None, &service("svc_g", "global"))
            .await
            .unwrap();
        let mine = service("svc_m1", "mine");
        assert_eq!(
            store.create_service("ts1", &mine).await.unwrap(),
            Created::Stored
        );
        let taken = store
            .create_service("ts1", &service("svc_m2", "mine"))
            .await
            .unwrap();
        assert_eq!(taken, Created::NameTaken(Box::new(mine.clone())));
        let global = store
            .create_service("ts1", &service("svc_m3", "global"))
            .await
            .unwrap();
        assert!(matches!(global, Created::NameTaken(s) if s.id == "svc_g"));
        // Another tenant may use the name.
        let theirs = service("svc_o1", "mine");
        assert_eq!(
            store.create_service("ts2", &theirs).await.unwrap(),
            Created::Stored
        );
        assert_eq!(
            store.find_service("ts2", "mine").await.unwrap().unwrap().id,
            "svc_o1"
        );
        // Only the owner retires it; globals are no one's.
        assert_eq!(
            store.retire_service("ts2", "svc_m1").await.unwrap(),
            Retired::Missing
        );
        assert_eq!(
            store.retire_service("ts1", "svc_g").await.unwrap(),
            Retired::Global
        );
        assert!(!store.is_retired("ts1", "svc_m1").await.unwrap());
        assert_eq!(
            store.retire_service("ts1", "mine").await.unwrap(),
            Retired::Done(mine.id.clone())
        );
        assert!(store.is_retired("ts1", "svc_m1").await.unwrap());
        assert!(!store.is_retired("ts2", "svc_m1").await.unwrap());
        // Retiring again by id is fine; by name there is nothing left.
        assert_eq!(
            store.retire_service("ts1", "svc_m1").await.unwrap(),
            Retired::Done(mine.id)
        );
        assert_eq!(
            store.retire_service("ts1", "mine").await.unwrap(),
            Retired::Missing
        );
        assert!(store.find_service("ts1", "svc_m1").await.unwrap().is_none());
        assert!(store.find_service("ts1", "mine").await.unwrap().is_none());
        let listed = store
            .list_services(
                "ts1",
                &ServiceQuery {
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert!(listed.iter().all(|(_, s)| s.id != "svc_m1"));
        // The name is free again.
        let again = service("svc_m4", "mine");
        assert_eq!(
            store.create_service("ts1", &again).await.unwrap(),
            Created::Stored
        );
        assert_eq!(
            store.find_service("ts1", "mine").await.unwrap().unwrap().id,
            "svc_m4"
        );
    }

    /// Keys are per tenant, checked and stored with their job atomically, and pruned
    /// after their own window.
    async fn idempotency(store: &dyn Store) {
        let first = job("job_k1", "svc_a", &[]);
        let key = |fingerprint| {
            Some(KeyUse {
                key: "key-1",
                fingerprint,
            })
        };
        let stored = store
            .insert_job(
                NewJob {
                    key: key("fp-a"),
                    ..new_job("t4", &first)
                },
                vec![event("job_k1", EventKind::Status)],
            )
            .await
            .unwrap();
        assert!(matches!(stored, Inserted::Stored(ref ids) if ids.len() == 1));
        let record = store.find_key("t4", "key-1").await.unwrap().unwrap();
        assert_eq!(
            record,
            KeyRecord {
                fingerprint: "fp-a".into(),
                job_id: "job_k1".into(),
                status: None,
            }
        );
        // The same key again stores nothing and says what it was used for.
        let again = job("job_k2", "svc_a", &[]);
        let keyed_again = NewJob {
            key: key("fp-b"),
            ..new_job("t4", &again)
        };
        assert_eq!(
            store
                .insert_job(keyed_again, vec![event("job_k2", EventKind::Status)])
                .await
                .unwrap(),
            Inserted::KeyTaken(record)
        );
        assert!(store.get_job("t4", "job_k2").await.unwrap().is_none());
        // Another tenant has keys of its own.
        let other = NewJob {
            key: key("fp-b"),
            ..new_job("t5", &again)
        };
        insert(store, other, vec![]).await;
        store.set_key_status("t4", "key-1", 202).await.unwrap();
        assert_eq!(
            store.find_key("t4", "key-1").await.unwrap().unwrap().status,
            Some(202)
        );
        assert!(store.find_key("t4", "nope").await.unwrap().is_none());
        // Keys go after their window, measured from when they were recorded.
        let pruned = store
            .prune("1970-01-01T00:00:00.000000Z", "9999-01-01T00:00:00.000000Z")
            .await
            .unwrap();
        assert_eq!(pruned.keys, 2);
        assert!(store.find_key("t4", "key-1").await.unwrap().is_none());
        // The jobs stay.
        assert!(store.get_job("t4", "job_k1").await.unwrap().is_some());
    }

    async fn services(store: &dyn Store) {
        store
            .upsert_service(None, &service("svc_a", "a"))
            .await
            .unwrap();
        store
            .upsert_service(None, &service("svc_b", "b"))
            .await
            .unwrap();
        store
            .upsert_service(Some("t2"), &service("svc_t2", "mine"))
            .await
            .unwrap();
        // Replacing keeps the position.
        let mut a2 = service("svc_a", "a");
        a2.description = "new".into();
        store.upsert_service(None, &a2).await.unwrap();

        let find = |tenant: &'static str, name: &'static str| async move {
            store.find_service(tenant, name).await.unwrap()
        };
        assert_eq!(find("t1", "a").await.unwrap().description, "new");
        assert_eq!(find("t1", "svc_b").await.unwrap().name, "b");
        assert!(find("t1", "mine").await.is_none());
        assert!(find("t2", "mine").await.is_some());
        assert!(find("t1", "zzz").await.is_none());

        let list = |tenant: &'static str, query: ServiceQuery| async move {
            store
                .list_services(tenant, &ServiceQuery { limit: 10, ..query })
                .await
                .unwrap()
        };
        let all = list("t1", ServiceQuery::default()).await;
        let names: Vec<_> = all.iter().map(|(_, s)| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let after_first = list(
            "t1",
            ServiceQuery {
                after: Some(all[0].0),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(after_first.len(), 1);
        assert_eq!(after_first[0].1.name, "b");
        let by_name = list(
            "t2",
            ServiceQuery {
                name: Some("mine".into()),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(by_name.len(), 1);
    }

    async fn jobs(store: &dyn Store) {
        let j1 = job("job_1", "svc_a", &[("env", "dev")]);
        let j2 = job("job_2", "svc_b", &[("env", "prod")]);
        let j3 = job("job_3", "svc_a", &[]);
        insert(store, new_job("t1", &j1), vec![]).await;
        insert(store, new_job("t1", &j2), vec![]).await;
        insert(store, new_job("t2", &j3), vec![]).await;

        assert!(
            store.get_job("t2", "job_1").await.unwrap().is_none(),
            "tenant isolation"
        );
        let (mut j1, _) = store.get_job("t1", "job_1").await.unwrap().unwrap();
        assert_eq!(j1.labels.get("env").map(String::as_str), Some("dev"));
        j1.status = JobStatus::Running;
        update(store, "t1", &j1, JobStatus::Queued, vec![]).await;
        assert_eq!(
            store
                .get_job("t1", "job_1")
                .await
                .unwrap()
                .unwrap()
                .0
                .status,
            JobStatus::Running
        );

        let q = |f: JobQuery| async move {
            store
                .list_jobs("t1", &JobQuery { limit: 10, ..f })
                .await
                .unwrap()
        };
        let ids = |rows: Vec<(i64, Job)>| rows.into_iter().map(|(_, j)| j.id).collect::<Vec<_>>();
        let all = q(JobQuery::default()).await;
        assert!(all[0].0 > all[1].0, "sequence numbers grow");
        assert_eq!(ids(all.clone()), ["job_2", "job_1"]);
        let before = JobQuery {
            before: Some(all[0].0),
            ..Default::default()
        };
        assert_eq!(ids(q(before).await), ["job_1"]);
        let by_service = JobQuery {
            service_id: Some("svc_b".into()),
            ..Default::default()
        };
        assert_eq!(ids(q(by_service).await), ["job_2"]);
        let by_status = JobQuery {
            status: Some("running".into()),
            ..Default::default()
        };
        assert_eq!(ids(q(by_status).await), ["job_1"]);
        let by_label = JobQuery {
            labels: vec![("env".into(), "prod".into())],
            ..Default::default()
        };
        assert_eq!(ids(q(by_label).await), ["job_2"]);
        let no_label = JobQuery {
            labels: vec![("env".into(), "x".into())],
            ..Default::default()
        };
        assert!(q(no_label).await.is_empty());
        let one = store
            .list_jobs(
                "t1",
                &JobQuery {
                    limit: 1,
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
    }

    async fn all_events(store: &dyn Store, tenant: &str, after: i64) -> Vec<Event> {
        let query = EventQuery {
            after,
            limit: 1000,
            ..Default::default()
        };
        store.events(tenant, &query).await.unwrap()
    }

    /// Ids grow in commit order, reads filter, and every committed event is published on
    /// the bus, in id order.
    async fn events(store: &dyn Store, bus: &EventBus) {
        let mut live = bus.subscribe("t1");
        let before = bus.latest();
        let mut j = job("job_e", "svc_a", &[]);
        let first = insert(
            store,
            new_job("t1", &j),
            vec![event("job_e", EventKind::Status)],
        )
        .await;
        let appended = store
            .append_events(
                "t1",
                "job_e",
                expected(&JobStatus::Queued),
                vec![
                    event("job_e", EventKind::Log),
                    event("job_e", EventKind::Output),
                ],
            )
            .await
            .unwrap()
            .unwrap();
        j.status = JobStatus::Succeeded;
        let updated = update(
            store,
            "t1",
            &j,
            JobStatus::Queued,
            vec![
                event("job_e", EventKind::Status),
                event("job_e", EventKind::Done),
            ],
        )
        .await;
        let mut other = event("job_x", EventKind::Log);
        other.service_id = "svc_b".into();
        insert(
            store,
            new_job("t2", &job("job_x", "svc_b", &[])),
            vec![other],
        )
        .await;
        let x = all_events(store, "t2", before).await;
        let x: Vec<i64> = x.iter().map(|e| e.seq).collect();
        // The returned ids are the stored ones, increasing in commit order.
        let given: Vec<i64> = [first, appended, updated, x].concat();
        assert_eq!(given.len(), 6);
        assert!(given.windows(2).all(|w| w[0] < w[1]));
        assert!(given[0] > before);

        let all = all_events(store, "t1", before).await;
        let kinds: Vec<_> = all.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["status", "log", "output", "status", "done"]);
        assert_eq!(
            all.iter().map(|e| e.seq).collect::<Vec<_>>(),
            given[..5].to_vec()
        );
        assert_eq!(all[0].data.value()["job_id"], "job_e");
        assert_eq!(all[0].service_id, "svc_a");
        assert_eq!(all_events(store, "t1", all[2].seq).await.len(), 2);

        // Published, in order, to the tenant's subscribers only; the bus knows the last.
        let mut published = Vec::new();
        while published.len() < 5 {
            let got = tokio::time::timeout(Duration::from_secs(10), live.recv())
                .await
                .expect("published within 10 s")
                .unwrap();
            published.push(got.seq);
        }
        assert_eq!(published, given[..5].to_vec());
        for _ in 0..1000 {
            if bus.latest() >= given[5] {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(bus.latest(), given[5]);

        // A job's position: every change of the job is at or below it.
        let (_, position) = store.get_job("t1", "job_e").await.unwrap().unwrap();
        assert!(position >= given[4], "{position} < {}", given[4]);

        let q = |query: EventQuery| async move { store.events("t1", &query).await.unwrap().len() };
        let limited = EventQuery {
            after: before,
            limit: 2,
            ..Default::default()
        };
        assert_eq!(q(limited).await, 2);
        let by_job = EventQuery {
            after: before,
            jobs: vec!["job_e".into(), "job_zz".into()],
            limit: 100,
            ..Default::default()
        };
        assert_eq!(q(by_job).await, 5);
        let theirs = EventQuery {
            after: before,
            jobs: vec!["job_x".into()],
            limit: 100,
            ..Default::default()
        };
        assert_eq!(q(theirs).await, 0, "another tenant's job");
        let by_service = EventQuery {
            after: before,
            service_id: Some("svc_b".into()),
            limit: 100,
            ..Default::default()
        };
        assert_eq!(q(by_service).await, 0);
        assert_eq!(all_events(store, "t2", before).await.len(), 1);
    }

    /// An update names the state it expects; when the stored job has moved on, or
    /// another server holds it, nothing is written.
    async fn compare_and_set(store: &dyn Store) {
        let mut j = job("job_cas", "svc_a", &[]);
        insert(store, new_job("t6", &j), vec![]).await;
        j.status = JobStatus::Running;
        let stale = Expected {
            status: &JobStatus::Running,
            owner: Some(OWNER),
        };
        let written = store
            .update_job("t6", &j, stale, vec![event("job_cas", EventKind::Status)])
            .await
            .unwrap();
        assert_eq!(written, None, "the stored job is queued, not running");
        let not_mine = Expected {
            status: &JobStatus::Queued,
            owner: Some("srv_other"),
        };
        assert_eq!(
            store.update_job("t6", &j, not_mine, vec![]).await.unwrap(),
            None
        );
        assert_eq!(
            store.update_job("t7", &j, stale, vec![]).await.unwrap(),
            None,
            "another tenant's job"
        );
        assert_eq!(
            store
                .get_job("t6", "job_cas")
                .await
                .unwrap()
                .unwrap()
                .0
                .status,
            JobStatus::Queued
        );
        update(store, "t6", &j, JobStatus::Queued, vec![]).await;
        // Without an owner, whichever server holds the job: the status alone decides.
        j.status = JobStatus::Cancelled;
        let any_owner = |status| Expected {
            status,
            owner: None,
        };
        assert_eq!(
            store
                .update_job("t6", &j, any_owner(&JobStatus::Queued), vec![])
                .await
                .unwrap(),
            None
        );
        assert!(store
            .update_job("t6", &j, any_owner(&JobStatus::Running), vec![])
            .await
            .unwrap()
            .is_some());
        // Nothing lands after a job's done: appends name the state they expect too.
        let late = store
            .append_events(
                "t6",
                "job_cas",
                expected(&JobStatus::Running),
                vec![event("job_cas", EventKind::Log)],
            )
            .await
            .unwrap();
        assert_eq!(late, None, "the job is cancelled");
        let unknown = store
            .append_events(
                "t6",
                "job_nope",
                expected(&JobStatus::Running),
                vec![event("job_nope", EventKind::Log)],
            )
            .await
            .unwrap();
        assert_eq!(unknown, None);
        let kinds: Vec<String> = all_events(store, "t6", 0)
            .await
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert!(kinds.is_empty(), "a refused update records no event");
    }

    /// Leases: renewed by their holder, claimed by one other server once they ran out,
    /// released at once on request.
    async fn leases(store: &dyn Store) {
        let mut queued = job("job_l1", "svc_a", &[]);
        let mut running = job("job_l2", "svc_a", &[]);
        let finished = job("job_l3", "svc_a", &[]);
        let short = |job| NewJob {
            owner: "srv_gone",
            lease: Duration::ZERO,
            ..new_job("t8", job)
        };
        insert(store, short(&queued), vec![]).await;
        insert(store, short(&running), vec![]).await;
        insert(store, short(&finished), vec![]).await;
        running.status = JobStatus::Running;
        let gone = |status| Expected {
            status,
            owner: Some("srv_gone"),
        };
        let written = store
            .update_job("t8", &running, gone(&JobStatus::Queued), vec![])
            .await
            .unwrap();
        assert!(written.is_some());
        let mut done = finished.clone();
        done.status = JobStatus::Succeeded;
        done.finished_at = Some("2026-01-01T00:00:01.000000Z".into());
        let written = store
            .update_job("t8", &done, gone(&JobStatus::Queued), vec![])
            .await
            .unwrap();
        assert!(written.is_some());

        // A live server's jobs are never claimed.
        let live = job("job_l4", "svc_a", &[]);
        let live_job = NewJob {
            owner: "srv_live",
            ..new_job("t8", &live)
        };
        insert(store, live_job, vec![]).await;
        let live_ids = ["job_l4".to_owned()];
        assert_eq!(
            store
                .renew_leases("srv_live", &live_ids, LONG)
                .await
                .unwrap(),
            1
        );
        // Only the jobs named, and only the owner's.
        assert_eq!(store.renew_leases("srv_live", &[], LONG).await.unwrap(), 0);
        assert_eq!(
            store
                .renew_leases("srv_other", &live_ids, LONG)
                .await
                .unwrap(),
            0
        );

        let claimed = store.claim_orphans("srv_b", LONG, 10).await.unwrap();
        let ids: Vec<&str> = claimed.iter().map(|(_, j)| j.id.as_str()).collect();
        assert_eq!(
            ids,
            ["job_l1", "job_l2"],
            "unfinished orphans, oldest first"
        );
        assert!(claimed.iter().all(|(tenant, _)| tenant == "t8"));
        assert_eq!(claimed[1].1.status, JobStatus::Running);
        assert!(
            store
                .claim_orphans("srv_c", LONG, 10)
                .await
                .unwrap()
                .is_empty(),
            "claimed once"
        );
        // The claimer now holds them: its updates pass, the old owner's do not.
        queued.status = JobStatus::Cancelled;
        let theirs = store
            .update_job("t8", &queued, gone(&JobStatus::Queued), vec![])
            .await
            .unwrap();
        assert_eq!(theirs, None);
        let mine = Expected {
            status: &JobStatus::Queued,
            owner: Some("srv_b"),
        };
        assert!(store
            .update_job("t8", &queued, mine, vec![])
            .await
            .unwrap()
            .is_some());
        // Released leases are claimable at once; a limit is honoured.
        assert_eq!(store.release_leases("srv_b").await.unwrap(), 1);
        assert_eq!(store.release_leases("srv_live").await.unwrap(), 1);
        let first = store.claim_orphans("srv_d", LONG, 1).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].1.id, "job_l2");
        let second = store.claim_orphans("srv_d", LONG, 10).await.unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].1.id, "job_l4");
        let ids = [
            "job_l2".to_owned(),
            "job_l4".to_owned(),
            "job_l1".to_owned(),
        ];
        assert_eq!(store.renew_leases("srv_d", &ids, LONG).await.unwrap(), 2);
    }

    /// The limit on a tenant's unfinished jobs is checked in the insert.
    async fn limits(store: &dyn Store) {
        let limited = |job| NewJob {
            max_in_flight: 2,
            ..new_job("t9", job)
        };
        let (a, b, c) = (
            job("job_m1", "svc_a", &[]),
            job("job_m2", "svc_a", &[]),
            job("job_m3", "svc_a", &[]),
        );
        insert(store, limited(&a), vec![]).await;
        insert(store, limited(&b), vec![]).await;
        assert_eq!(
            store.insert_job(limited(&c), vec![]).await.unwrap(),
            Inserted::AtLimit
        );
        assert!(store.get_job("t9", "job_m3").await.unwrap().is_none());
        let mut done = a.clone();
        done.status = JobStatus::Failed;
        update(store, "t9", &done, JobStatus::Queued, vec![]).await;
        insert(store, limited(&c), vec![]).await;
        assert_eq!(
            store.insert_job(limited(&a), vec![]).await.unwrap(),
            Inserted::AtLimit,
            "two unfinished again"
        );
        // Other tenants are counted apart.
        let theirs = job("job_m4", "svc_a", &[]);
        let other_tenant = NewJob {
            max_in_flight: 2,
            ..new_job("t10", &theirs)
        };
        insert(store, other_tenant, vec![]).await;
    }

    /// Events of jobs finished before the cutoff go, the rest stay, and the floor says
    /// from where a stream can no longer resume.
    async fn retention(store: &dyn Store, bus: &EventBus) {
        let mut old = job("job_old", "svc_a", &[]);
        insert(
            store,
            new_job("t3", &old),
            vec![event("job_old", EventKind::Status)],
        )
        .await;
        old.status = JobStatus::Succeeded;
        old.finished_at = Some("2026-01-01T00:00:00.000Z".into());
        let old_done = update(
            store,
            "t3",
            &old,
            JobStatus::Queued,
            vec![event("job_old", EventKind::Done)],
        )
        .await;
        let mut recent = job("job_recent", "svc_a", &[]);
        insert(
            store,
            new_job("t3", &recent),
            vec![event("job_recent", EventKind::Status)],
        )
        .await;
        recent.status = JobStatus::Failed;
        recent.finished_at = Some("2026-06-01T00:00:00.000Z".into());
        update(
            store,
            "t3",
            &recent,
            JobStatus::Queued,
            vec![event("job_recent", EventKind::Done)],
        )
        .await;
        let running = job("job_running", "svc_a", &[]);
        insert(
            store,
            new_job("t3", &running),
            vec![event("job_running", EventKind::Status)],
        )
        .await;

        assert_eq!(store.event_floor("t3").await.unwrap(), 0);
        let pruned = store
            .prune("2026-03-01T00:00:00.000Z", "1970-01-01T00:00:00.000000Z")
            .await
            .unwrap();
        assert_eq!(pruned.events, 2);
        let left: Vec<String> = all_events(store, "t3", 0)
            .await
            .into_iter()
            .map(|e| e.job_id)
            .collect();
        assert_eq!(left, ["job_recent", "job_recent", "job_running"]);
        assert_eq!(store.event_floor("t3").await.unwrap(), old_done[0]);
        assert_eq!(
            store.event_floor("t1").await.unwrap(),
            0,
            "floors are per tenant"
        );
        // The job itself stays readable.
        assert!(store.get_job("t3", "job_old").await.unwrap().is_some());
        // A second pass finds nothing more; ids are never reused after a prune.
        let again = store
            .prune("2026-03-01T00:00:00.000Z", "1970-01-01T00:00:00.000000Z")
            .await
            .unwrap();
        assert_eq!(again.events, 0);
        let last = bus.latest();
        let next = store
            .append_events(
                "t3",
                "job_running",
                expected(&JobStatus::Queued),
                vec![event("job_running", EventKind::Log)],
            )
            .await
            .unwrap()
            .unwrap();
        assert!(next[0] > last);
    }
}
