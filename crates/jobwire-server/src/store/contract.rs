//! The behaviour every store must have, one suite run against each implementation.

use std::time::Duration;

use jobwire_core::{Job, Service};

use super::interface::*;
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
        max_stored_bytes: u64::MAX,
        owner: OWNER,
        lease: LONG,
    }
}

/// The cutoffs of a retention pass; `NEVER` removes nothing of its kind.
fn cutoffs(events_before: &str, keys_before: &str, jobs_before: &str) -> Cutoffs {
    Cutoffs {
        events_before: events_before.into(),
        keys_before: keys_before.into(),
        jobs_before: jobs_before.into(),
    }
}

/// A cutoff before anything.
const NEVER: &str = "1970-01-01T00:00:00.000000Z";

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
    quota(store).await;
}

/// Stored bytes: a tenant at its quota gets no new job and loses nothing it has; room
/// comes back as retention removes its old jobs.
async fn quota(store: &dyn Store) {
    let mut big = job("job_big", "svc_a", &[]);
    big.input = json!("x".repeat(10_000));
    insert(
        store,
        new_job("tq", &big),
        vec![event("job_big", EventKind::Status)],
    )
    .await;
    let next = job("job_next", "svc_a", &[]);
    let capped = NewJob {
        max_stored_bytes: 5_000,
        ..new_job("tq", &next)
    };
    match store.insert_job(capped, vec![]).await.unwrap() {
        Inserted::OverQuota { used } => assert!(used >= 10_000, "{used}"),
        other => panic!("over its quota: {other:?}"),
    }
    // Another tenant is not this one's quota.
    let theirs = job("job_theirs", "svc_a", &[]);
    let capped = NewJob {
        max_stored_bytes: 5_000,
        ..new_job("tq2", &theirs)
    };
    insert(store, capped, vec![]).await;
    // What was accepted stays, and grows past the quota if it must.
    big.status = JobStatus::Succeeded;
    big.output = Some(json!("y".repeat(10_000)));
    big.finished_at = Some("2026-01-02T00:00:00.000000Z".into());
    update(
        store,
        "tq",
        &big,
        JobStatus::Queued,
        vec![event("job_big", EventKind::Done)],
    )
    .await;
    assert_eq!(
        store.get_job("tq", "job_big").await.unwrap().unwrap().0,
        big
    );
    // Retention of jobs removes it whole; the tenant has room again (a shared store
    // may take its ledger's flush to know).
    let pruned = store
        .prune(&cutoffs(NEVER, NEVER, "2026-02-01T00:00:00.000000Z"))
        .await
        .unwrap();
    assert!(pruned.jobs >= 1, "{pruned:?}");
    assert!(store.get_job("tq", "job_big").await.unwrap().is_none());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let capped = NewJob {
            max_stored_bytes: 5_000,
            ..new_job("tq", &next)
        };
        match store.insert_job(capped, vec![]).await.unwrap() {
            Inserted::Stored(_) => break,
            Inserted::OverQuota { .. } if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => panic!("room again after retention: {other:?}"),
        }
    }
}

/// A tenant's own services: names unique among what the tenant sees, retired ones
/// gone from reads but known as retired, their names free again.
async fn tenant_services(store: &dyn Store) {
    // An upsert replaces the service with that id, its name too.
    for name in ["global-before", "global"] {
        store
            .upsert_service(None, &service("svc_g", name))
            .await
            .unwrap();
    }
    assert!(store
        .find_service("ts1", "global-before")
        .await
        .unwrap()
        .is_none());
    assert_eq!(
        store
            .find_service("ts1", "global")
            .await
            .unwrap()
            .unwrap()
            .id,
        "svc_g"
    );
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
            answered: None,
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
        .prune(&cutoffs(NEVER, "9999-01-01T00:00:00.000000Z", NEVER))
        .await
        .unwrap();
    assert_eq!(pruned.keys, 2);
    assert!(store.find_key("t4", "key-1").await.unwrap().is_none());
    // The jobs stay.
    assert!(store.get_job("t4", "job_k1").await.unwrap().is_some());
    stored_finished(store).await;
}

/// A job whose handler finished within its submit: stored once, terminal, with all its
/// events and its key with the answer's status, in one insert; it holds no slot of its
/// tenant's limit.
async fn stored_finished(store: &dyn Store) {
    let mut done = job("job_f1", "svc_a", &[]);
    done.status = JobStatus::Succeeded;
    done.output = Some(json!({"echo": 1}));
    done.finished_at = Some("2026-01-01T00:00:01.000000Z".into());
    let keyed = NewJob {
        key: Some(KeyUse {
            key: "key-f",
            fingerprint: "fp-f",
            answered: Some(200),
        }),
        max_in_flight: 1,
        ..new_job("tf", &done)
    };
    let kinds = [
        EventKind::Status,
        EventKind::Status,
        EventKind::Status,
        EventKind::Done,
    ];
    let ids = insert(store, keyed, kinds.map(|k| event("job_f1", k)).into()).await;
    assert_eq!(ids.len(), 4);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let (stored, position) = store.get_job("tf", "job_f1").await.unwrap().unwrap();
    assert_eq!(stored, done);
    assert!(position >= ids[3]);
    assert_eq!(
        store.find_key("tf", "key-f").await.unwrap().unwrap(),
        KeyRecord {
            fingerprint: "fp-f".into(),
            job_id: "job_f1".into(),
            status: Some(200),
        }
    );
    let recorded: Vec<String> = all_events(store, "tf", 0)
        .await
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(recorded, ["status", "status", "status", "done"]);
    // Finished, it leaves the tenant's one slot free.
    let next = job("job_f2", "svc_a", &[]);
    let limited = NewJob {
        max_in_flight: 1,
        ..new_job("tf", &next)
    };
    insert(store, limited, vec![]).await;
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
        max_stored_bytes: u64::MAX,
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
        max_stored_bytes: u64::MAX,
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
        .prune(&cutoffs("2026-03-01T00:00:00.000Z", NEVER, NEVER))
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
        .prune(&cutoffs("2026-03-01T00:00:00.000Z", NEVER, NEVER))
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

    // Jobs finished before the jobs' cutoff go whole; unfinished ones never do.
    let pruned = store
        .prune(&cutoffs(NEVER, NEVER, "2026-03-01T00:00:00.000Z"))
        .await
        .unwrap();
    // (Other parts' tenants have old finished jobs too.)
    assert!(pruned.jobs >= 1, "{pruned:?}");
    assert!(store.get_job("t3", "job_old").await.unwrap().is_none());
    assert!(store.get_job("t3", "job_recent").await.unwrap().is_some());
    assert!(store.get_job("t3", "job_running").await.unwrap().is_some());
    let listed: Vec<String> = store
        .list_jobs(
            "t3",
            &JobQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .into_iter()
        .map(|(_, j)| j.id)
        .collect();
    assert!(!listed.contains(&"job_old".to_owned()), "{listed:?}");
}
