//! [`MemoryStore`]: everything in process memory, gone when the server stops.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use jobwire_core::{Job, Service};

use super::{
    labels_match, Created, Event, EventQuery, Expected, Inserted, JobQuery, KeyRecord, NewEvent,
    NewJob, Pruned, Retired, ServiceQuery, Store, StoreError,
};
use crate::bus::{EventBus, LiveEvent};
use crate::clock::{lease_end, unix_millis};
use crate::locking::lock;

/// A store in process memory, for tests and throwaway servers.
///
/// Every call is a few map operations under one mutex, so its futures finish at once.
/// A job's events and a service's events are indexed by id, so reading one job's or one
/// service's history (a job's event stream, a filtered `/v1/events`) costs what it
/// returns, not a pass over every event kept. Bounded: the retention pass removes the events of jobs finished before its cutoff, and
/// keeps at most `max_finished_jobs` finished jobs (the oldest go first, events and all).
pub(crate) struct MemoryStore {
    inner: Mutex<Inner>,
    max_finished_jobs: usize,
    bus: Arc<EventBus>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

/// A stored job and who runs it.
#[derive(Debug)]
struct Row {
    tenant: String,
    job: Job,
    owner: String,
    /// When the lease runs out, in Unix milliseconds.
    lease_until: i64,
}

#[derive(Debug, Default)]
struct Inner {
    /// seq -> (owner, service); `None` owner = global.
    services: BTreeMap<i64, (Option<String>, Service)>,
    /// Ids of retired services.
    retired: HashSet<String>,
    /// seq -> job.
    jobs: BTreeMap<i64, Row>,
    /// job id -> seq.
    job_seq: HashMap<String, i64>,
    /// Oldest first, with the tenant.
    events: VecDeque<(String, LiveEvent)>,
    /// job id -> the ids of its events, in order.
    job_events: HashMap<String, Vec<i64>>,
    /// tenant -> service id -> the ids of the events of its jobs, in order.
    service_events: HashMap<String, HashMap<String, Vec<i64>>>,
    /// Per tenant, the highest sequence id of a removed event.
    floors: HashMap<String, i64>,
    /// (tenant, key) -> (what it was used for, when it was recorded).
    keys: HashMap<(String, String), (KeyRecord, String)>,
    /// Unfinished jobs per tenant (kept, not counted per insert: the limit check is on
    /// every submit).
    unfinished: HashMap<String, usize>,
    next_service: i64,
    next_job: i64,
    next_event: i64,
}

impl MemoryStore {
    /// An empty store that keeps at most `max_finished_jobs` finished jobs and publishes
    /// its events on `bus`.
    pub(crate) fn new(max_finished_jobs: usize, bus: Arc<EventBus>) -> Self {
        MemoryStore {
            inner: Mutex::new(Inner::default()),
            max_finished_jobs,
            bus,
        }
    }
}

impl Inner {
    /// The live service named `name` that `tenant` can see, with its owner (the oldest,
    /// should a global and a tenant's share a name).
    fn live_service_entry(&self, tenant: &str, name: &str) -> Option<&(Option<String>, Service)> {
        self.services.values().find(|(owner, s)| {
            visible(owner, tenant) && s.name == name && !self.retired.contains(&s.id)
        })
    }

    /// The live service named `name` that `tenant` can see.
    fn live_service(&self, tenant: &str, name: &str) -> Option<&Service> {
        self.live_service_entry(tenant, name).map(|(_, s)| s)
    }

    /// Records events and publishes them, still under the store's lock: id order is
    /// publish order.
    fn push_events(&mut self, bus: &EventBus, tenant: &str, events: Vec<NewEvent>) -> Vec<i64> {
        let first = self.events.len();
        let mut seqs = Vec::with_capacity(events.len());
        for e in events {
            self.next_event += 1;
            let event = Arc::new(e.recorded(self.next_event));
            seqs.push(event.seq);
            self.job_events
                .entry(event.job_id.clone())
                .or_default()
                .push(event.seq);
            self.service_events
                .entry(tenant.to_owned())
                .or_default()
                .entry(event.service_id.clone())
                .or_default()
                .push(event.seq);
            self.events.push_back((tenant.to_owned(), event));
        }
        bus.publish_shared(self.events.range(first..).map(|(t, e)| (t, e.clone())));
        seqs
    }

    /// Removes the events `doomed` selects (by job id), raising the floors.
    fn remove_events(&mut self, doomed: impl Fn(&str) -> bool) -> usize {
        let before = self.events.len();
        let floors = &mut self.floors;
        let mut removed = HashSet::new();
        self.events.retain(|(tenant, e)| {
            if doomed(&e.job_id) {
                let floor = floors.entry(tenant.clone()).or_insert(0);
                *floor = (*floor).max(e.seq);
                removed.insert(e.seq);
                false
            } else {
                true
            }
        });
        if !removed.is_empty() {
            self.job_events.retain(|job, _| !doomed(job));
            self.service_events.retain(|_, services| {
                services.retain(|_, seqs| {
                    seqs.retain(|seq| !removed.contains(seq));
                    !seqs.is_empty()
                });
                !services.is_empty()
            });
        }
        before - self.events.len()
    }

    /// The event with id `seq`, with its tenant, if it is kept.
    fn event(&self, seq: i64) -> Option<&(String, LiveEvent)> {
        let at = self.events.partition_point(|(_, e)| e.seq < seq);
        self.events.get(at).filter(|(_, e)| e.seq == seq)
    }

    /// The ids an event query can match, from the indexes, in order, at most
    /// `query.limit` of each list; `None` when the query names no job and no service.
    fn indexed(&self, tenant: &str, query: &EventQuery) -> Option<Vec<i64>> {
        let after = |seqs: &Vec<i64>| -> Vec<i64> {
            let from = seqs.partition_point(|seq| *seq <= query.after);
            seqs[from..].iter().take(query.limit).copied().collect()
        };
        if !query.jobs.is_empty() {
            let mut seqs: Vec<i64> = query
                .jobs
                .iter()
                .filter_map(|job| self.job_events.get(job))
                .flat_map(after)
                .collect();
            seqs.sort_unstable();
            seqs.dedup();
            return Some(seqs);
        }
        let service = query.service_id.as_ref()?;
        Some(
            self.service_events
                .get(tenant)
                .and_then(|services| services.get(service))
                .map(after)
                .unwrap_or_default(),
        )
    }

    fn unfinished_of(&self, tenant: &str) -> usize {
        self.unfinished.get(tenant).copied().unwrap_or(0)
    }

    /// Keeps the per-tenant count of unfinished jobs as a job goes from `was` to `now`
    /// being terminal.
    fn count_unfinished(&mut self, tenant: &str, was_terminal: bool, now_terminal: bool) {
        match (was_terminal, now_terminal) {
            (false, true) => {
                if let Some(n) = self.unfinished.get_mut(tenant) {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        self.unfinished.remove(tenant);
                    }
                }
            }
            (true, false) => *self.unfinished.entry(tenant.to_owned()).or_insert(0) += 1,
            _ => {}
        }
    }
}

fn visible(owner: &Option<String>, tenant: &str) -> bool {
    owner.as_deref().map_or(true, |o| o == tenant)
}

#[async_trait]
impl Store for MemoryStore {
    async fn upsert_service(
        &self,
        tenant: Option<&str>,
        service: &Service,
    ) -> Result<(), StoreError> {
        let mut inner = lock(&self.inner);
        let owner = tenant.map(str::to_owned);
        let existing = inner
            .services
            .iter()
            .find(|(_, (_, s))| s.id == service.id)
            .map(|(seq, _)| *seq);
        let seq = match existing {
            Some(seq) => seq,
            None => {
                inner.next_service += 1;
                inner.next_service
            }
        };
        inner.services.insert(seq, (owner, service.clone()));
        Ok(())
    }

    async fn create_service(&self, tenant: &str, service: &Service) -> Result<Created, StoreError> {
        let mut inner = lock(&self.inner);
        if let Some(taken) = inner.live_service(tenant, &service.name) {
            return Ok(Created::NameTaken(Box::new(taken.clone())));
        }
        inner.next_service += 1;
        let seq = inner.next_service;
        inner
            .services
            .insert(seq, (Some(tenant.to_owned()), service.clone()));
        Ok(Created::Stored)
    }

    async fn retire_service(&self, tenant: &str, id_or_name: &str) -> Result<Retired, StoreError> {
        let mut inner = lock(&self.inner);
        let by_id = inner
            .services
            .values()
            .find(|(owner, s)| visible(owner, tenant) && s.id == id_or_name);
        let found = match by_id {
            Some(found) => Some(found),
            None => inner.live_service_entry(tenant, id_or_name),
        };
        let Some((owner, service)) = found else {
            return Ok(Retired::Missing);
        };
        if owner.is_none() {
            return Ok(Retired::Global);
        }
        let id = service.id.clone();
        inner.retired.insert(id.clone());
        Ok(Retired::Done(id))
    }

    async fn is_retired(&self, tenant: &str, id: &str) -> Result<bool, StoreError> {
        let inner = lock(&self.inner);
        Ok(inner.retired.contains(id)
            && inner
                .services
                .values()
                .any(|(owner, s)| owner.as_deref() == Some(tenant) && s.id == id))
    }

    async fn find_service(
        &self,
        tenant: &str,
        id_or_name: &str,
    ) -> Result<Option<Service>, StoreError> {
        let inner = lock(&self.inner);
        let by_id = inner.services.values().find(|(owner, s)| {
            visible(owner, tenant) && s.id == id_or_name && !inner.retired.contains(&s.id)
        });
        let found = by_id.or_else(|| inner.live_service_entry(tenant, id_or_name));
        Ok(found.map(|(_, s)| s.clone()))
    }

    async fn list_services(
        &self,
        tenant: &str,
        query: &ServiceQuery,
    ) -> Result<Vec<(i64, Service)>, StoreError> {
        let inner = lock(&self.inner);
        let start = query.after.map_or(i64::MIN, |a| a.saturating_add(1));
        Ok(inner
            .services
            .range(start..)
            .filter(|(_, (owner, s))| {
                visible(owner, tenant)
                    && !inner.retired.contains(&s.id)
                    && query.name.as_ref().map_or(true, |n| &s.name == n)
            })
            .take(query.limit)
            .map(|(seq, (_, s))| (*seq, s.clone()))
            .collect())
    }

    async fn insert_job(
        &self,
        new: NewJob<'_>,
        events: Vec<NewEvent>,
    ) -> Result<Inserted, StoreError> {
        let mut inner = lock(&self.inner);
        let slot = new.key.map(|k| (new.tenant.to_owned(), k.key.to_owned()));
        if let Some((record, _)) = slot.as_ref().and_then(|slot| inner.keys.get(slot)) {
            return Ok(Inserted::KeyTaken(record.clone()));
        }
        if inner.unfinished_of(new.tenant) >= new.max_in_flight {
            return Ok(Inserted::AtLimit);
        }
        if inner.job_seq.contains_key(&new.job.id) {
            return Err(StoreError::new(format!("job id {} is taken", new.job.id)));
        }
        inner.next_job += 1;
        let seq = inner.next_job;
        let row = Row {
            tenant: new.tenant.to_owned(),
            job: new.job.clone(),
            owner: new.owner.to_owned(),
            lease_until: lease_end(SystemTime::now(), new.lease),
        };
        inner.jobs.insert(seq, row);
        inner.job_seq.insert(new.job.id.clone(), seq);
        let terminal = new.job.status.is_terminal();
        inner.count_unfinished(new.tenant, true, terminal);
        if let (Some(slot), Some(key)) = (slot, new.key) {
            let record = KeyRecord {
                fingerprint: key.fingerprint.to_owned(),
                job_id: new.job.id.clone(),
                status: None,
            };
            inner
                .keys
                .insert(slot, (record, new.job.created_at.clone()));
        }
        Ok(Inserted::Stored(
            inner.push_events(&self.bus, new.tenant, events),
        ))
    }

    async fn find_key(&self, tenant: &str, key: &str) -> Result<Option<KeyRecord>, StoreError> {
        let inner = lock(&self.inner);
        let slot = (tenant.to_owned(), key.to_owned());
        Ok(inner.keys.get(&slot).map(|(record, _)| record.clone()))
    }

    async fn set_key_status(&self, tenant: &str, key: &str, status: u16) -> Result<(), StoreError> {
        let mut inner = lock(&self.inner);
        let slot = (tenant.to_owned(), key.to_owned());
        if let Some((record, _)) = inner.keys.get_mut(&slot) {
            record.status = Some(status);
        }
        Ok(())
    }

    async fn update_job(
        &self,
        tenant: &str,
        job: &Job,
        expected: Expected<'_>,
        events: Vec<NewEvent>,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        let mut inner = lock(&self.inner);
        let seq = inner.job_seq.get(&job.id).copied();
        let was_terminal = match seq.and_then(|seq| inner.jobs.get_mut(&seq)) {
            Some(row) if row.tenant == tenant && expected.holds(&row.job, &row.owner) => {
                let was = row.job.status.is_terminal();
                row.job = job.clone();
                was
            }
            _ => return Ok(None),
        };
        inner.count_unfinished(tenant, was_terminal, job.status.is_terminal());
        Ok(Some(inner.push_events(&self.bus, tenant, events)))
    }

    async fn append_events(
        &self,
        tenant: &str,
        job_id: &str,
        expected: Expected<'_>,
        events: Vec<NewEvent>,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        let mut inner = lock(&self.inner);
        let seq = inner.job_seq.get(job_id).copied();
        let row = seq.and_then(|seq| inner.jobs.get(&seq));
        if !row.is_some_and(|row| row.tenant == tenant && expected.holds(&row.job, &row.owner)) {
            return Ok(None);
        }
        Ok(Some(inner.push_events(&self.bus, tenant, events)))
    }

    async fn get_job(&self, tenant: &str, id: &str) -> Result<Option<(Job, i64)>, StoreError> {
        let inner = lock(&self.inner);
        Ok(inner
            .job_seq
            .get(id)
            .and_then(|seq| inner.jobs.get(seq))
            .filter(|row| row.tenant == tenant)
            .map(|row| (row.job.clone(), inner.next_event)))
    }

    async fn list_jobs(
        &self,
        tenant: &str,
        query: &JobQuery,
    ) -> Result<Vec<(i64, Job)>, StoreError> {
        let inner = lock(&self.inner);
        let end = query.before.unwrap_or(i64::MAX);
        Ok(inner
            .jobs
            .range(..end)
            .rev()
            .filter(|(_, row)| {
                let job = &row.job;
                row.tenant == tenant
                    && query
                        .service_id
                        .as_ref()
                        .map_or(true, |s| &job.service_id == s)
                    && query
                        .status
                        .as_ref()
                        .map_or(true, |s| job.status.as_str() == s)
                    && labels_match(&job.labels, &query.labels)
            })
            .take(query.limit)
            .map(|(seq, row)| (*seq, row.job.clone()))
            .collect())
    }

    async fn renew_leases(
        &self,
        owner: &str,
        jobs: &[String],
        lease: Duration,
    ) -> Result<usize, StoreError> {
        let until = lease_end(SystemTime::now(), lease);
        let mut inner = lock(&self.inner);
        let mut renewed = 0;
        for id in jobs {
            let Some(seq) = inner.job_seq.get(id).copied() else {
                continue;
            };
            if let Some(row) = inner.jobs.get_mut(&seq) {
                if row.owner == owner && !row.job.status.is_terminal() {
                    row.lease_until = until;
                    renewed += 1;
                }
            }
        }
        Ok(renewed)
    }

    async fn claim_orphans(
        &self,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<(String, Job)>, StoreError> {
        let now = unix_millis(SystemTime::now());
        let until = lease_end(SystemTime::now(), lease);
        let mut inner = lock(&self.inner);
        Ok(inner
            .jobs
            .values_mut()
            .filter(|row| !row.job.status.is_terminal() && row.lease_until <= now)
            .take(limit)
            .map(|row| {
                row.owner = owner.to_owned();
                row.lease_until = until;
                (row.tenant.clone(), row.job.clone())
            })
            .collect())
    }

    async fn release_leases(&self, owner: &str) -> Result<usize, StoreError> {
        let mut inner = lock(&self.inner);
        let mut released = 0;
        for row in inner.jobs.values_mut() {
            if row.owner == owner && !row.job.status.is_terminal() {
                row.lease_until = 0;
                released += 1;
            }
        }
        Ok(released)
    }

    async fn events(&self, tenant: &str, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        let inner = lock(&self.inner);
        let wanted = |(owner, e): &&(String, LiveEvent)| {
            owner == tenant && query.matches(&e.job_id, &e.service_id)
        };
        if let Some(seqs) = inner.indexed(tenant, query) {
            return Ok(seqs
                .into_iter()
                .filter_map(|seq| inner.event(seq))
                .filter(wanted)
                .take(query.limit)
                .map(|(_, e)| Event::clone(e))
                .collect());
        }
        let start = inner.events.partition_point(|(_, e)| e.seq <= query.after);
        Ok(inner
            .events
            .range(start..)
            .filter(wanted)
            .take(query.limit)
            .map(|(_, e)| Event::clone(e))
            .collect())
    }

    async fn event_floor(&self, tenant: &str) -> Result<i64, StoreError> {
        Ok(lock(&self.inner).floors.get(tenant).copied().unwrap_or(0))
    }

    async fn prune(&self, cutoff: &str, keys_before: &str) -> Result<Pruned, StoreError> {
        let mut inner = lock(&self.inner);
        let keys_before_pass = inner.keys.len();
        inner.keys.retain(|_, (_, at)| at.as_str() >= keys_before);
        let keys = keys_before_pass - inner.keys.len();
        let finished: Vec<(i64, bool)> = inner
            .jobs
            .iter()
            .filter_map(|(seq, row)| {
                let job = &row.job;
                let at = job.finished_at.as_deref().filter(|_| job.is_finished())?;
                Some((*seq, at < cutoff))
            })
            .collect();
        // Past the cap, the oldest finished jobs go whole.
        let excess = finished.len().saturating_sub(self.max_finished_jobs);
        let dropped: Vec<String> = finished[..excess]
            .iter()
            .filter_map(|(seq, _)| inner.jobs.remove(seq).map(|row| row.job.id))
            .collect();
        for id in &dropped {
            inner.job_seq.remove(id);
        }
        let expired: HashSet<String> = finished[excess..]
            .iter()
            .filter(|(_, old)| *old)
            .filter_map(|(seq, _)| inner.jobs.get(seq).map(|row| row.job.id.clone()))
            .chain(dropped.iter().cloned())
            .collect();
        let events = if expired.is_empty() {
            0
        } else {
            inner.remove_events(|job_id| expired.contains(job_id))
        };
        Ok(Pruned {
            events,
            keys,
            jobs: dropped.len(),
        })
    }

    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EventKind, NewJob};
    use jobwire_core::JobStatus;

    fn store(max_finished_jobs: usize) -> (MemoryStore, Arc<EventBus>) {
        let bus = Arc::new(EventBus::new(4096));
        (MemoryStore::new(max_finished_jobs, bus.clone()), bus)
    }

    #[tokio::test]
    async fn memory_store_keeps_the_contract() {
        let (store, bus) = store(1000);
        super::super::contract::run(&store, &bus).await;
    }

    #[tokio::test]
    async fn finished_jobs_past_the_cap_go_oldest_first() {
        let (store, _) = store(2);
        let insert = |job: Job, events: Vec<NewEvent>| {
            let store = &store;
            async move {
                let new = NewJob {
                    tenant: "t",
                    job: &job,
                    key: None,
                    max_in_flight: 100,
                    owner: "srv",
                    lease: Duration::from_secs(60),
                };
                store.insert_job(new, events).await.unwrap();
            }
        };
        for i in 0..5 {
            let mut job = Job::new(format!("job_{i}"), "svc_a", JobStatus::Succeeded);
            job.finished_at = Some(format!("2026-01-01T00:00:0{i}.000Z"));
            let event = NewEvent {
                job_id: job.id.clone(),
                service_id: "svc_a".into(),
                kind: EventKind::Done,
                data: crate::store::EventData::of(&serde_json::json!({})),
                created_at: String::new(),
            };
            insert(job, vec![event]).await;
        }
        insert(Job::new("job_live", "svc_a", JobStatus::Running), vec![]).await;
        // Nothing is old enough for the window, but the cap removes three jobs.
        let pruned = store
            .prune("2000-01-01T00:00:00.000Z", "2000-01-01T00:00:00.000Z")
            .await
            .unwrap();
        assert_eq!(
            pruned,
            Pruned {
                events: 3,
                keys: 0,
                jobs: 3
            }
        );
        assert!(store.get_job("t", "job_0").await.unwrap().is_none());
        assert!(store.get_job("t", "job_3").await.unwrap().is_some());
        assert!(store.get_job("t", "job_live").await.unwrap().is_some());
        assert_eq!(store.event_floor("t").await.unwrap(), 3);
        // The indexes forget the removed events with them.
        let inner = lock(&store.inner);
        assert!(!inner.job_events.contains_key("job_0"));
        assert_eq!(inner.job_events["job_3"].len(), 1);
        assert_eq!(inner.service_events["t"]["svc_a"].len(), 2);
    }

    /// A job's or a service's history is read from the indexes: pages in id order, from
    /// the resume point, each job once however often it is named.
    #[tokio::test]
    async fn filtered_reads_use_the_indexes() {
        let (store, _) = store(100);
        for (tenant, id, service) in [
            ("t", "job_a", "svc_a"),
            ("t", "job_b", "svc_b"),
            ("u", "job_u", "svc_a"),
        ] {
            let job = Job::new(id, service, JobStatus::Running);
            let new = NewJob {
                tenant,
                job: &job,
                key: None,
                max_in_flight: 100,
                owner: "srv",
                lease: Duration::from_secs(60),
            };
            store.insert_job(new, vec![]).await.unwrap();
        }
        let log = |job: &str, service: &str| NewEvent {
            job_id: job.into(),
            service_id: service.into(),
            kind: EventKind::Log,
            data: crate::store::EventData::of(&serde_json::json!({ "job_id": job })),
            created_at: String::new(),
        };
        let running = JobStatus::Running;
        let held = Expected {
            status: &running,
            owner: Some("srv"),
        };
        let mut ids: HashMap<&str, Vec<i64>> = HashMap::new();
        for _ in 0..5 {
            for (tenant, job, service) in [
                ("t", "job_a", "svc_a"),
                ("t", "job_b", "svc_b"),
                ("u", "job_u", "svc_a"),
            ] {
                let seqs = store
                    .append_events(tenant, job, held, vec![log(job, service)])
                    .await
                    .unwrap()
                    .unwrap();
                ids.entry(job).or_default().extend(seqs);
            }
        }
        let read = |query: EventQuery| {
            let store = &store;
            async move {
                let events = store.events("t", &query).await.unwrap();
                events.into_iter().map(|e| e.seq).collect::<Vec<_>>()
            }
        };
        let both = EventQuery {
            jobs: vec!["job_b".into(), "job_a".into(), "job_b".into()],
            limit: 100,
            ..Default::default()
        };
        let mut want: Vec<i64> = [ids["job_a"].clone(), ids["job_b"].clone()].concat();
        want.sort_unstable();
        assert_eq!(read(both.clone()).await, want);
        let page = EventQuery {
            after: want[2],
            limit: 3,
            ..both.clone()
        };
        assert_eq!(read(page).await, want[3..6].to_vec());
        let service = EventQuery {
            service_id: Some("svc_a".into()),
            limit: 100,
            ..Default::default()
        };
        assert_eq!(
            read(service).await,
            ids["job_a"],
            "tenant u's svc_a events are not t's"
        );
        let theirs = EventQuery {
            jobs: vec!["job_u".into()],
            limit: 100,
            ..Default::default()
        };
        assert!(read(theirs).await.is_empty());
        let both_filters = EventQuery {
            service_id: Some("svc_b".into()),
            ..both
        };
        assert_eq!(read(both_filters).await, ids["job_b"]);
    }
}
