//! Where services, jobs and events are kept: the [`Store`] trait and its two
//! implementations, [`SqliteStore`] (durable, the binary's default) and [`MemoryStore`].
//!
//! The trait is synchronous and small on purpose. Each call is one short transaction
//! (microseconds on SQLite in WAL mode with `synchronous=NORMAL`, which does not fsync on
//! commit), so callers on the event loop call it directly rather than paying a thread hop;
//! only the retention pass ([`Store::prune`]) runs on the blocking pool. A networked engine
//! (PostgreSQL shared by several replicas) would make the trait async; that is a later
//! step, and every caller already goes through this one seam.
//!
//! Every write that records events returns the sequence ids the store gave them, so the
//! runner can publish exactly what was committed (see `crate::bus`).

mod memory;
mod sqlite;

use std::fmt;

use jobwire_core::{Job, Service};
use serde_json::Value;

pub(crate) use memory::MemoryStore;
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
    pub data: Value,
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
    pub data: Value,
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

/// How a keyed insert went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Keyed {
    /// The job and its key were stored; the events got these ids.
    Inserted(Vec<i64>),
    /// The tenant already used the key: nothing was stored.
    Taken(KeyRecord),
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

/// The storage seam of the server.
///
/// Services are either global (`tenant` `None`: the built-ins, visible to every tenant) or
/// belong to one tenant. Jobs and events always belong to one tenant, and every read is
/// scoped by it: a tenant never reads another's jobs. Sequence numbers of services, jobs
/// and events only grow and are never reused, which is what makes cursors stable.
pub(crate) trait Store: Send + Sync + 'static {
    /// Inserts a service, or replaces the one with the same id.
    fn upsert_service(&self, tenant: Option<&str>, service: &Service) -> Result<(), StoreError>;

    /// The service with this id or name that `tenant` can see.
    fn find_service(&self, tenant: &str, id_or_name: &str) -> Result<Option<Service>, StoreError>;

    /// Services `tenant` can see, oldest first, with their sequence numbers.
    fn list_services(
        &self,
        tenant: &str,
        query: &ServiceQuery,
    ) -> Result<Vec<(i64, Service)>, StoreError>;

    /// Inserts a new job and its first events in one transaction; returns the job's
    /// sequence number and the events' sequence ids, in order.
    fn insert_job(
        &self,
        tenant: &str,
        job: &Job,
        events: &[NewEvent],
    ) -> Result<(i64, Vec<i64>), StoreError>;

    /// [`insert_job`](Self::insert_job) for a request with an `Idempotency-Key`: the job,
    /// its events and the key in one transaction — or nothing, when the tenant already
    /// used the key.
    fn insert_keyed_job(
        &self,
        tenant: &str,
        job: &Job,
        events: &[NewEvent],
        key: &str,
        fingerprint: &str,
    ) -> Result<Keyed, StoreError>;

    /// What the tenant's `key` was first used for.
    fn find_key(&self, tenant: &str, key: &str) -> Result<Option<KeyRecord>, StoreError>;

    /// Records the status code the key's first request was answered with.
    fn set_key_status(&self, tenant: &str, key: &str, status: u16) -> Result<(), StoreError>;

    /// Replaces a job's state and records events about it, in one transaction; returns
    /// the events' sequence ids.
    fn update_job(
        &self,
        tenant: &str,
        job: &Job,
        events: &[NewEvent],
    ) -> Result<Vec<i64>, StoreError>;

    /// Records events (for example log lines) without changing the job; returns their
    /// sequence ids.
    fn append_events(&self, tenant: &str, events: &[NewEvent]) -> Result<Vec<i64>, StoreError>;

    /// One job of `tenant`.
    fn get_job(&self, tenant: &str, id: &str) -> Result<Option<Job>, StoreError>;

    /// Jobs of `tenant`, newest first, with their sequence numbers.
    fn list_jobs(&self, tenant: &str, query: &JobQuery) -> Result<Vec<(i64, Job)>, StoreError>;

    /// Every job of every tenant that is `queued` or `running`, as `(tenant, job)`.
    fn unfinished_jobs(&self) -> Result<Vec<(String, Job)>, StoreError>;

    /// Events of `tenant` that `query` selects, oldest first.
    fn events(&self, tenant: &str, query: &EventQuery) -> Result<Vec<Event>, StoreError>;

    /// The highest sequence id of an event of `tenant` that retention has removed (0 when
    /// none): a stream cannot resume from before it.
    fn event_floor(&self, tenant: &str) -> Result<i64, StoreError>;

    /// The highest event sequence id ever given (0 for a new store), removed or not.
    fn last_event_seq(&self) -> Result<i64, StoreError>;

    /// The retention pass: removes the events of jobs that finished before
    /// `events_before` and the idempotency keys recorded before `keys_before` (RFC 3339
    /// times as the server writes them, which sort as text), raising the tenants' event
    /// floors; a store with a cap on finished jobs also drops the oldest past it.
    fn prune(&self, events_before: &str, keys_before: &str) -> Result<Pruned, StoreError>;

    /// Flushes what needs flushing before the process exits.
    fn close(&self) -> Result<(), StoreError>;
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
    use jobwire_core::JobStatus;
    use serde_json::json;

    fn service(id: &str, name: &str) -> Service {
        Service::new(id, name, json!({}), "2026-01-01T00:00:00.000Z")
    }

    fn job(id: &str, service_id: &str, labels: &[(&str, &str)]) -> Job {
        let mut job = Job::new(id, service_id, JobStatus::Queued);
        job.labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        job
    }

    fn event(job_id: &str, kind: EventKind) -> NewEvent {
        NewEvent {
            job_id: job_id.into(),
            service_id: "svc_a".into(),
            kind,
            data: json!({ "job_id": job_id }),
            created_at: "2026-01-01T00:00:00.000Z".into(),
        }
    }

    /// Runs the whole contract against `store`, which must be empty.
    pub(crate) fn run(store: &dyn Store) {
        services(store);
        jobs(store);
        events(store);
        retention(store);
        idempotency(store);
    }

    /// Keys are per tenant, checked and stored with their job atomically, and pruned
    /// after their own window.
    fn idempotency(store: &dyn Store) {
        let first = job("job_k1", "svc_a", &[]);
        let ev = event("job_k1", EventKind::Status);
        let inserted = store
            .insert_keyed_job("t4", &first, std::slice::from_ref(&ev), "key-1", "fp-a")
            .unwrap();
        assert!(matches!(inserted, Keyed::Inserted(ref ids) if ids.len() == 1));
        let record = store.find_key("t4", "key-1").unwrap().unwrap();
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
        assert_eq!(
            store
                .insert_keyed_job("t4", &again, std::slice::from_ref(&ev), "key-1", "fp-b")
                .unwrap(),
            Keyed::Taken(record)
        );
        assert!(store.get_job("t4", "job_k2").unwrap().is_none());
        // Another tenant has keys of its own.
        assert!(matches!(
            store
                .insert_keyed_job("t5", &again, &[ev], "key-1", "fp-b")
                .unwrap(),
            Keyed::Inserted(_)
        ));
        store.set_key_status("t4", "key-1", 202).unwrap();
        assert_eq!(
            store.find_key("t4", "key-1").unwrap().unwrap().status,
            Some(202)
        );
        assert!(store.find_key("t4", "nope").unwrap().is_none());
        // Keys go after their window, measured from when they were recorded.
        let pruned = store
            .prune("1970-01-01T00:00:00.000000Z", "9999-01-01T00:00:00.000000Z")
            .unwrap();
        assert_eq!(pruned.keys, 2);
        assert!(store.find_key("t4", "key-1").unwrap().is_none());
        // The jobs stay.
        assert!(store.get_job("t4", "job_k1").unwrap().is_some());
    }

    fn services(store: &dyn Store) {
        store.upsert_service(None, &service("svc_a", "a")).unwrap();
        store.upsert_service(None, &service("svc_b", "b")).unwrap();
        store
            .upsert_service(Some("t2"), &service("svc_t2", "mine"))
            .unwrap();
        // Replacing keeps the position.
        let mut a2 = service("svc_a", "a");
        a2.description = "new".into();
        store.upsert_service(None, &a2).unwrap();

        assert_eq!(
            store.find_service("t1", "a").unwrap().unwrap().description,
            "new"
        );
        assert_eq!(
            store.find_service("t1", "svc_b").unwrap().unwrap().name,
            "b"
        );
        assert!(store.find_service("t1", "mine").unwrap().is_none());
        assert!(store.find_service("t2", "mine").unwrap().is_some());
        assert!(store.find_service("t1", "zzz").unwrap().is_none());

        let all = store
            .list_services(
                "t1",
                &ServiceQuery {
                    limit: 10,
                    ..Default::default()
                },
            )
            .unwrap();
        let names: Vec<_> = all.iter().map(|(_, s)| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let after_first = store
            .list_services(
                "t1",
                &ServiceQuery {
                    after: Some(all[0].0),
                    limit: 10,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(after_first.len(), 1);
        assert_eq!(after_first[0].1.name, "b");
        let by_name = store
            .list_services(
                "t2",
                &ServiceQuery {
                    name: Some("mine".into()),
                    limit: 10,
                    ..Default::default()
                },
            )
            .unwrap();
        assert_eq!(by_name.len(), 1);
    }

    fn jobs(store: &dyn Store) {
        let s1 = store
            .insert_job("t1", &job("job_1", "svc_a", &[("env", "dev")]), &[])
            .unwrap()
            .0;
        let s2 = store
            .insert_job("t1", &job("job_2", "svc_b", &[("env", "prod")]), &[])
            .unwrap()
            .0;
        let s3 = store
            .insert_job("t2", &job("job_3", "svc_a", &[]), &[])
            .unwrap()
            .0;
        assert!(s1 < s2 && s2 < s3);

        assert!(
            store.get_job("t2", "job_1").unwrap().is_none(),
            "tenant isolation"
        );
        let mut j1 = store.get_job("t1", "job_1").unwrap().unwrap();
        assert_eq!(j1.labels.get("env").map(String::as_str), Some("dev"));
        j1.status = JobStatus::Running;
        store.update_job("t1", &j1, &[]).unwrap();
        assert_eq!(
            store.get_job("t1", "job_1").unwrap().unwrap().status,
            JobStatus::Running
        );

        let q = |f: JobQuery| -> Vec<String> {
            store
                .list_jobs("t1", &JobQuery { limit: 10, ..f })
                .unwrap()
                .into_iter()
                .map(|(_, j)| j.id)
                .collect()
        };
        assert_eq!(q(JobQuery::default()), ["job_2", "job_1"]);
        assert_eq!(
            q(JobQuery {
                before: Some(s2),
                ..Default::default()
            }),
            ["job_1"]
        );
        assert_eq!(
            q(JobQuery {
                service_id: Some("svc_b".into()),
                ..Default::default()
            }),
            ["job_2"]
        );
        assert_eq!(
            q(JobQuery {
                status: Some("running".into()),
                ..Default::default()
            }),
            ["job_1"]
        );
        assert_eq!(
            q(JobQuery {
                labels: vec![("env".into(), "prod".into())],
                ..Default::default()
            }),
            ["job_2"]
        );
        assert!(q(JobQuery {
            labels: vec![("env".into(), "x".into())],
            ..Default::default()
        })
        .is_empty());
        assert_eq!(
            store
                .list_jobs(
                    "t1",
                    &JobQuery {
                        limit: 1,
                        ..Default::default()
                    }
                )
                .unwrap()
                .len(),
            1
        );

        let mut unfinished: Vec<_> = store
            .unfinished_jobs()
            .unwrap()
            .into_iter()
            .map(|(t, j)| (t, j.id))
            .collect();
        unfinished.sort();
        assert_eq!(
            unfinished,
            [
                ("t1".to_string(), "job_1".to_string()),
                ("t1".to_string(), "job_2".to_string()),
                ("t2".to_string(), "job_3".to_string())
            ]
        );
    }

    fn all_events(store: &dyn Store, tenant: &str, after: i64) -> Vec<Event> {
        store
            .events(
                tenant,
                &EventQuery {
                    after,
                    limit: 1000,
                    ..Default::default()
                },
            )
            .unwrap()
    }

    fn events(store: &dyn Store) {
        let before = store.last_event_seq().unwrap();
        let mut j = job("job_e", "svc_a", &[]);
        let (_, first) = store
            .insert_job("t1", &j, &[event("job_e", EventKind::Status)])
            .unwrap();
        let appended = store
            .append_events(
                "t1",
                &[
                    event("job_e", EventKind::Log),
                    event("job_e", EventKind::Output),
                ],
            )
            .unwrap();
        j.status = JobStatus::Succeeded;
        let updated = store
            .update_job(
                "t1",
                &j,
                &[
                    event("job_e", EventKind::Status),
                    event("job_e", EventKind::Done),
                ],
            )
            .unwrap();
        let mut other = event("job_x", EventKind::Log);
        other.service_id = "svc_b".into();
        let x = store.append_events("t2", &[other]).unwrap();
        // The returned ids are the stored ones, increasing in commit order.
        let given: Vec<i64> = [first, appended, updated, x].concat();
        assert_eq!(given.len(), 6);
        assert!(given.windows(2).all(|w| w[0] < w[1]));
        assert!(given[0] > before);
        assert_eq!(store.last_event_seq().unwrap(), given[5]);

        let all = all_events(store, "t1", before);
        let kinds: Vec<_> = all.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["status", "log", "output", "status", "done"]);
        assert_eq!(
            all.iter().map(|e| e.seq).collect::<Vec<_>>(),
            given[..5].to_vec()
        );
        assert_eq!(all[0].data["job_id"], "job_e");
        assert_eq!(all[0].service_id, "svc_a");
        assert_eq!(all_events(store, "t1", all[2].seq).len(), 2);
        let q = |query: EventQuery| store.events("t1", &query).unwrap().len();
        assert_eq!(
            q(EventQuery {
                after: before,
                limit: 2,
                ..Default::default()
            }),
            2
        );
        assert_eq!(
            q(EventQuery {
                after: before,
                jobs: vec!["job_e".into(), "job_zz".into()],
                limit: 100,
                ..Default::default()
            }),
            5
        );
        assert_eq!(
            q(EventQuery {
                after: before,
                jobs: vec!["job_x".into()],
                limit: 100,
                ..Default::default()
            }),
            0,
            "another tenant's job"
        );
        assert_eq!(
            q(EventQuery {
                after: before,
                service_id: Some("svc_b".into()),
                limit: 100,
                ..Default::default()
            }),
            0
        );
        assert_eq!(all_events(store, "t2", before).len(), 1);
    }

    /// Events of jobs finished before the cutoff go, the rest stay, and the floor says
    /// from where a stream can no longer resume.
    fn retention(store: &dyn Store) {
        let before = store.last_event_seq().unwrap();
        let mut old = job("job_old", "svc_a", &[]);
        store
            .insert_job("t3", &old, &[event("job_old", EventKind::Status)])
            .unwrap();
        old.status = JobStatus::Succeeded;
        old.finished_at = Some("2026-01-01T00:00:00.000Z".into());
        let old_done = store
            .update_job("t3", &old, &[event("job_old", EventKind::Done)])
            .unwrap();
        let mut recent = job("job_recent", "svc_a", &[]);
        store
            .insert_job("t3", &recent, &[event("job_recent", EventKind::Status)])
            .unwrap();
        recent.status = JobStatus::Failed;
        recent.finished_at = Some("2026-06-01T00:00:00.000Z".into());
        store
            .update_job("t3", &recent, &[event("job_recent", EventKind::Done)])
            .unwrap();
        let running = job("job_running", "svc_a", &[]);
        store
            .insert_job("t3", &running, &[event("job_running", EventKind::Status)])
            .unwrap();

        assert_eq!(store.event_floor("t3").unwrap(), 0);
        let pruned = store
            .prune("2026-03-01T00:00:00.000Z", "1970-01-01T00:00:00.000000Z")
            .unwrap();
        assert_eq!(pruned.events, 2);
        let left: Vec<String> = all_events(store, "t3", before)
            .into_iter()
            .map(|e| e.job_id)
            .collect();
        assert_eq!(left, ["job_recent", "job_recent", "job_running"]);
        assert_eq!(store.event_floor("t3").unwrap(), old_done[0]);
        assert_eq!(store.event_floor("t1").unwrap(), 0, "floors are per tenant");
        // The job itself stays readable.
        assert!(store.get_job("t3", "job_old").unwrap().is_some());
        // A second pass finds nothing more; ids are never reused after a prune.
        assert_eq!(
            store
                .prune("2026-03-01T00:00:00.000Z", "1970-01-01T00:00:00.000000Z")
                .unwrap()
                .events,
            0
        );
        let last = store.last_event_seq().unwrap();
        let next = store
            .append_events("t3", &[event("job_running", EventKind::Log)])
            .unwrap();
        assert!(next[0] > last);
    }
}
