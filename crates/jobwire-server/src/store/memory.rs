//! [`MemoryStore`]: everything in process memory, gone when the server stops.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use jobwire_core::{Job, Service};

use super::codec::json_len;
use super::{
    labels_match, Created, Cutoffs, Event, EventQuery, Expected, Inserted, JobQuery, KeyRecord,
    NewEvent, NewJob, Pruned, Retired, ServiceQuery, Store, StoreError,
};
use crate::bus::{EventBus, LiveEvent};
use crate::clock::{lease_end, unix_millis};
use crate::locking::lock;

/// A store in process memory, for tests and throwaway servers.
///
/// Every call is a few map operations under one mutex, so its futures finish at once.
/// Bounded in bytes, whatever the rate: each tenant may keep `budget` bytes of jobs,
/// events and idempotency keys (their JSON plus a fixed cost per record for the maps
/// that hold them). A write that takes a tenant past its budget makes room at once by
/// removing the tenant's oldest finished jobs whole — the job, its events (raising the
/// tenant's event floor, so a resume from before them answers 410) and its key. When
/// nothing finished is left to remove, the tenant's next submit is refused (the quota).
/// The retention pass also removes what is older than its cutoffs.
pub(crate) struct MemoryStore {
    inner: Mutex<Inner>,
    budget: u64,
    bus: Arc<EventBus>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").finish_non_exhaustive()
    }
}

/// What a record costs beyond its JSON text: the map entries, headers and strings that
/// hold it (measured roughly; the budget is an estimate of memory, not an exact count).
const JOB_OVERHEAD: u64 = 320;
const EVENT_OVERHEAD: u64 = 160;
const KEY_OVERHEAD: u64 = 160;

/// A stored job and who runs it.
#[derive(Debug)]
struct Row {
    tenant: String,
    job: Job,
    owner: String,
    /// When the lease runs out, in Unix milliseconds.
    lease_until: i64,
    /// What the job itself is charged (its JSON plus [`JOB_OVERHEAD`]).
    bytes: u64,
    /// The ids of its events still kept, oldest first.
    events: Vec<i64>,
    /// The idempotency key it was created with, while the key is kept.
    key: Option<String>,
}

/// One tenant's events, counters and orders of removal.
#[derive(Debug, Default)]
struct Tenant {
    /// Its kept events by id.
    events: BTreeMap<i64, LiveEvent>,
    /// The ids of its kept events by service: a `?service=` read walks its service's
    /// events, not the tenant's whole history (with a stream per service, that walk
    /// made each read cost as much as all streams' events together).
    by_service: HashMap<String, BTreeSet<i64>>,
    /// The highest id of an event of it that was removed.
    floor: i64,
    /// What it stores, charged as the module docs say.
    bytes: u64,
    /// Its unfinished jobs (the limit check is on every submit).
    unfinished: usize,
    /// Its finished jobs (sequence numbers) in the order they finished: retention and
    /// the budget remove the oldest first. May name jobs already removed.
    finished: VecDeque<i64>,
    /// Its finished jobs whose events are still kept, in the order they finished.
    with_events: VecDeque<i64>,
    /// Its idempotency keys in the order they were recorded, with when.
    keys: VecDeque<(String, String)>,
}

/// A kept idempotency key.
#[derive(Debug)]
struct KeyEntry {
    record: KeyRecord,
    created_at: String,
}

#[derive(Debug, Default)]
struct Inner {
    /// seq -> (owner, service); `None` owner = global.
    services: BTreeMap<i64, (Option<String>, Service)>,
    /// Service id -> seq, and name -> the seqs of every service stored under it (every
    /// owner's, retired ones too): the lookups of each submit and each `?service=`
    /// stream, which a walk of all services made cost more with every service added.
    service_by_id: HashMap<String, i64>,
    services_by_name: HashMap<String, Vec<i64>>,
    /// Ids of retired services.
    retired: HashSet<String>,
    /// seq -> job.
    jobs: BTreeMap<i64, Row>,
    /// job id -> seq.
    job_seq: HashMap<String, i64>,
    tenants: HashMap<String, Tenant>,
    /// (tenant, key) -> what it was used for.
    keys: HashMap<(String, String), KeyEntry>,
    next_service: i64,
    next_job: i64,
    next_event: i64,
}

impl MemoryStore {
    /// An empty store that keeps at most `budget` bytes per tenant and publishes its
    /// events on `bus`.
    pub(crate) fn new(budget: u64, bus: Arc<EventBus>) -> Self {
        MemoryStore {
            inner: Mutex::new(Inner::default()),
            budget,
            bus,
        }
    }
}

fn event_bytes(event: &Event) -> u64 {
    (event.data.get().len() + event.job_id.len() + event.service_id.len()) as u64 + EVENT_OVERHEAD
}

fn key_bytes(key: &str, record: &KeyRecord) -> u64 {
    (key.len() + record.fingerprint.len() + record.job_id.len()) as u64 + KEY_OVERHEAD
}

fn job_bytes(job: &Job) -> u64 {
    json_len(job) + JOB_OVERHEAD
}

impl Inner {
    /// The live service named `name` that `tenant` can see, with its owner (the oldest,
    /// should a global and a tenant's share a name).
    fn live_service_entry(&self, tenant: &str, name: &str) -> Option<&(Option<String>, Service)> {
        let seqs = self.services_by_name.get(name)?;
        seqs.iter()
            .filter_map(|seq| {
                let entry = self.services.get(seq)?;
                let (owner, s) = entry;
                (visible(owner, tenant) && !self.retired.contains(&s.id)).then_some((*seq, entry))
            })
            .min_by_key(|(seq, _)| *seq)
            .map(|(_, entry)| entry)
    }

    /// The service with id `id` that `tenant` can see, with its owner, retired or not.
    fn service_entry_by_id(&self, tenant: &str, id: &str) -> Option<&(Option<String>, Service)> {
        let entry = self.services.get(self.service_by_id.get(id)?)?;
        visible(&entry.0, tenant).then_some(entry)
    }

    /// Stores `service` (of `owner`) as number `seq`, in place of what that number held.
    fn put_service(&mut self, seq: i64, owner: Option<String>, service: Service) {
        if let Some((_, old)) = self.services.get(&seq) {
            if let Some(seqs) = self.services_by_name.get_mut(&old.name) {
                seqs.retain(|s| *s != seq);
            }
        }
        self.service_by_id.insert(service.id.clone(), seq);
        self.services_by_name
            .entry(service.name.clone())
            .or_default()
            .push(seq);
        self.services.insert(seq, (owner, service));
    }

    /// The live service named `name` that `tenant` can see.
    fn live_service(&self, tenant: &str, name: &str) -> Option<&Service> {
        self.live_service_entry(tenant, name).map(|(_, s)| s)
    }

    fn tenant(&mut self, tenant: &str) -> &mut Tenant {
        self.tenants.entry(tenant.to_owned()).or_default()
    }

    /// Records the events of job `seq` and publishes them, still under the store's lock:
    /// id order is publish order.
    fn push_events(
        &mut self,
        bus: &EventBus,
        tenant: &str,
        seq: i64,
        events: Vec<NewEvent>,
    ) -> Vec<i64> {
        if events.is_empty() {
            return Vec::new();
        }
        let mut recorded = Vec::with_capacity(events.len());
        for e in events {
            self.next_event += 1;
            recorded.push(Arc::new(e.recorded(self.next_event)));
        }
        let ids: Vec<i64> = recorded.iter().map(|e| e.seq).collect();
        if let Some(row) = self.jobs.get_mut(&seq) {
            row.events.extend_from_slice(&ids);
        }
        let t = self.tenant(tenant);
        for event in &recorded {
            t.bytes += event_bytes(event);
            t.events.insert(event.seq, event.clone());
            // The service's id is copied only for its first kept event.
            match t.by_service.get_mut(&event.service_id) {
                Some(ids) => {
                    ids.insert(event.seq);
                }
                None => {
                    t.by_service
                        .insert(event.service_id.clone(), BTreeSet::from([event.seq]));
                }
            }
        }
        bus.publish_shared(recorded.into_iter().map(|e| (tenant, e)));
        ids
    }

    /// Removes the kept events of job `seq`, raising its tenant's floor past them.
    fn remove_events_of(&mut self, seq: i64) -> usize {
        let Some(row) = self.jobs.get_mut(&seq) else {
            return 0;
        };
        let ids = std::mem::take(&mut row.events);
        let Some(t) = self.tenants.get_mut(&row.tenant) else {
            return 0;
        };
        let mut removed = 0;
        for id in ids {
            if let Some(event) = t.events.remove(&id) {
                t.bytes = t.bytes.saturating_sub(event_bytes(&event));
                t.floor = t.floor.max(id);
                if let Some(ids) = t.by_service.get_mut(&event.service_id) {
                    ids.remove(&id);
                    if ids.is_empty() {
                        t.by_service.remove(&event.service_id);
                    }
                }
                removed += 1;
            }
        }
        removed
    }

    /// Removes idempotency key `key` of `tenant`, with what it is charged.
    fn remove_key(&mut self, tenant: &str, key: &str) -> bool {
        let Some(entry) = self.keys.remove(&(tenant.to_owned(), key.to_owned())) else {
            return false;
        };
        if let Some(row) = self
            .job_seq
            .get(&entry.record.job_id)
            .and_then(|seq| self.jobs.get_mut(seq))
        {
            row.key = None;
        }
        if let Some(t) = self.tenants.get_mut(tenant) {
            t.bytes = t.bytes.saturating_sub(key_bytes(key, &entry.record));
        }
        true
    }

    /// Removes finished job `seq` whole: itself, its events and its key. Returns the
    /// events removed, or `None` when there was no such finished job.
    fn remove_job(&mut self, seq: i64) -> Option<usize> {
        if !self.jobs.get(&seq)?.job.is_finished() {
            return None;
        }
        let events = self.remove_events_of(seq);
        let row = self.jobs.remove(&seq)?;
        self.job_seq.remove(&row.job.id);
        if let Some(key) = &row.key {
            self.remove_key(&row.tenant, key);
        }
        if let Some(t) = self.tenants.get_mut(&row.tenant) {
            t.bytes = t.bytes.saturating_sub(row.bytes);
        }
        Some(events)
    }

    /// Makes room under `budget` for `tenant` by removing its oldest finished jobs.
    fn enforce_budget(&mut self, tenant: &str, budget: u64) {
        let mut removed = false;
        while let Some(t) = self.tenants.get_mut(tenant) {
            if t.bytes <= budget {
                break;
            }
            let Some(oldest) = t.finished.pop_front() else {
                break;
            };
            removed |= self.remove_job(oldest).is_some();
        }
        if removed {
            self.compact_queues(tenant);
        }
    }

    /// Drops what no longer exists from `tenant`'s removal queues once they hold more
    /// dead entries than live ones. The budget removes jobs ahead of retention, whose
    /// passes would otherwise be the only ones to pop them: at a high rate, a day of
    /// keys' entries would outgrow the budget the store keeps. Amortized O(1) a removal.
    fn compact_queues(&mut self, tenant: &str) {
        let (jobs, keys) = (&self.jobs, &self.keys);
        let Some(t) = self.tenants.get_mut(tenant) else {
            return;
        };
        let slack = |queued: usize, live: usize| queued > 2 * live + 1024;
        if slack(t.finished.len(), jobs.len()) {
            t.finished.retain(|seq| jobs.contains_key(seq));
        }
        if slack(t.with_events.len(), jobs.len()) {
            t.with_events
                .retain(|seq| jobs.get(seq).is_some_and(|row| !row.events.is_empty()));
        }
        if slack(t.keys.len(), keys.len()) {
            t.keys.retain(|(key, at)| {
                keys.get(&(tenant.to_owned(), key.clone()))
                    .is_some_and(|e| &e.created_at == at)
            });
        }
    }

    /// Keeps the per-tenant count of unfinished jobs, and the order of finished ones,
    /// when stored job `seq` becomes terminal (a terminal job never changes again).
    fn count_finished(&mut self, tenant: &str, seq: i64) {
        let t = self.tenant(tenant);
        t.unfinished = t.unfinished.saturating_sub(1);
        t.finished.push_back(seq);
        t.with_events.push_back(seq);
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
        let seq = match inner.service_by_id.get(&service.id) {
            Some(seq) => *seq,
            None => {
                inner.next_service += 1;
                inner.next_service
            }
        };
        inner.put_service(seq, owner, service.clone());
        Ok(())
    }

    async fn create_service(&self, tenant: &str, service: &Service) -> Result<Created, StoreError> {
        let mut inner = lock(&self.inner);
        if let Some(taken) = inner.live_service(tenant, &service.name) {
            return Ok(Created::NameTaken(Box::new(taken.clone())));
        }
        inner.next_service += 1;
        let seq = inner.next_service;
        inner.put_service(seq, Some(tenant.to_owned()), service.clone());
        Ok(Created::Stored)
    }

    async fn retire_service(&self, tenant: &str, id_or_name: &str) -> Result<Retired, StoreError> {
        let mut inner = lock(&self.inner);
        let found = match inner.service_entry_by_id(tenant, id_or_name) {
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
                .service_entry_by_id(tenant, id)
                .is_some_and(|(owner, _)| owner.is_some()))
    }

    async fn find_service(
        &self,
        tenant: &str,
        id_or_name: &str,
    ) -> Result<Option<Service>, StoreError> {
        let inner = lock(&self.inner);
        let by_id = inner
            .service_entry_by_id(tenant, id_or_name)
            .filter(|(_, s)| !inner.retired.contains(&s.id));
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
        if let Some(entry) = slot.as_ref().and_then(|slot| inner.keys.get(slot)) {
            return Ok(Inserted::KeyTaken(entry.record.clone()));
        }
        let stored = |inner: &Inner| {
            inner
                .tenants
                .get(new.tenant)
                .map_or((0, 0), |t| (t.unfinished, t.bytes))
        };
        let (unfinished, used) = stored(&inner);
        if unfinished >= new.max_in_flight {
            return Ok(Inserted::AtLimit);
        }
        if used >= new.max_stored_bytes {
            // Exactly at the quota (the budget's removals stop at it, not under it):
            // make room the budget's way first, so that only a tenant whose unfinished
            // jobs fill it is refused.
            let room = new.max_stored_bytes.min(self.budget).saturating_sub(1);
            inner.enforce_budget(new.tenant, room);
            let (_, used) = stored(&inner);
            if used >= new.max_stored_bytes {
                return Ok(Inserted::OverQuota { used });
            }
        }
        if inner.job_seq.contains_key(&new.job.id) {
            return Err(StoreError::new(format!("job id {} is taken", new.job.id)));
        }
        inner.next_job += 1;
        let seq = inner.next_job;
        let bytes = job_bytes(new.job);
        let row = Row {
            tenant: new.tenant.to_owned(),
            job: new.job.clone(),
            owner: new.owner.to_owned(),
            lease_until: lease_end(SystemTime::now(), new.lease),
            bytes,
            events: Vec::new(),
            key: new.key.map(|k| k.key.to_owned()),
        };
        inner.jobs.insert(seq, row);
        inner.job_seq.insert(new.job.id.clone(), seq);
        let t = inner.tenant(new.tenant);
        t.bytes += bytes;
        if new.job.status.is_terminal() {
            t.finished.push_back(seq);
            t.with_events.push_back(seq);
        } else {
            t.unfinished += 1;
        }
        if let (Some(slot), Some(key)) = (slot, new.key) {
            let record = KeyRecord {
                fingerprint: key.fingerprint.to_owned(),
                job_id: new.job.id.clone(),
                status: key.answered,
            };
            let t = inner.tenant(new.tenant);
            t.bytes += key_bytes(key.key, &record);
            t.keys
                .push_back((key.key.to_owned(), new.job.created_at.clone()));
            let created_at = new.job.created_at.clone();
            inner.keys.insert(slot, KeyEntry { record, created_at });
        }
        let ids = inner.push_events(&self.bus, new.tenant, seq, events);
        inner.enforce_budget(new.tenant, self.budget);
        Ok(Inserted::Stored(ids))
    }

    async fn find_key(&self, tenant: &str, key: &str) -> Result<Option<KeyRecord>, StoreError> {
        let inner = lock(&self.inner);
        let slot = (tenant.to_owned(), key.to_owned());
        Ok(inner.keys.get(&slot).map(|entry| entry.record.clone()))
    }

    async fn set_key_status(&self, tenant: &str, key: &str, status: u16) -> Result<(), StoreError> {
        let mut inner = lock(&self.inner);
        let slot = (tenant.to_owned(), key.to_owned());
        if let Some(entry) = inner.keys.get_mut(&slot) {
            entry.record.status = Some(status);
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
        let Some(seq) = inner.job_seq.get(&job.id).copied() else {
            return Ok(None);
        };
        let bytes = job_bytes(job);
        let (was_terminal, was_bytes) = match inner.jobs.get_mut(&seq) {
            Some(row) if row.tenant == tenant && expected.holds(&row.job, &row.owner) => {
                let was = (row.job.status.is_terminal(), row.bytes);
                row.job = job.clone();
                row.bytes = bytes;
                was
            }
            _ => return Ok(None),
        };
        let t = inner.tenant(tenant);
        t.bytes = t.bytes.saturating_sub(was_bytes) + bytes;
        if !was_terminal && job.status.is_terminal() {
            inner.count_finished(tenant, seq);
        }
        let ids = inner.push_events(&self.bus, tenant, seq, events);
        inner.enforce_budget(tenant, self.budget);
        Ok(Some(ids))
    }

    async fn append_events(
        &self,
        tenant: &str,
        job_id: &str,
        expected: Expected<'_>,
        events: Vec<NewEvent>,
    ) -> Result<Option<Vec<i64>>, StoreError> {
        let mut inner = lock(&self.inner);
        let Some(seq) = inner.job_seq.get(job_id).copied() else {
            return Ok(None);
        };
        let row = inner.jobs.get(&seq);
        if !row.is_some_and(|row| row.tenant == tenant && expected.holds(&row.job, &row.owner)) {
            return Ok(None);
        }
        let ids = inner.push_events(&self.bus, tenant, seq, events);
        inner.enforce_budget(tenant, self.budget);
        Ok(Some(ids))
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
        let Some(t) = inner.tenants.get(tenant) else {
            return Ok(Vec::new());
        };
        let start = query.after.saturating_add(1);
        let page = |events: &mut dyn Iterator<Item = &LiveEvent>| -> Vec<Event> {
            events.take(query.limit).map(|e| Event::clone(e)).collect()
        };
        if query.jobs.is_empty() {
            return Ok(match &query.service_id {
                // One service: its own ids, not the tenant's whole history.
                Some(service) => t.by_service.get(service).map_or_else(Vec::new, |ids| {
                    page(&mut ids.range(start..).filter_map(|id| t.events.get(id)))
                }),
                None => page(&mut t.events.range(start..).map(|(_, e)| e)),
            });
        }
        // A few jobs: their own lists of ids, not the tenant's whole history.
        let mut ids: Vec<i64> = query
            .jobs
            .iter()
            .filter_map(|id| inner.job_seq.get(id).and_then(|seq| inner.jobs.get(seq)))
            .filter(|row| row.tenant == tenant)
            .flat_map(|row| row.events.iter().copied().filter(|id| *id >= start))
            .collect();
        ids.sort_unstable();
        // A job named twice is read once.
        ids.dedup();
        Ok(page(
            &mut ids
                .into_iter()
                .filter_map(|id| t.events.get(&id))
                .filter(|e| query.matches(&e.job_id, &e.service_id)),
        ))
    }

    async fn event_floor(&self, tenant: &str) -> Result<i64, StoreError> {
        Ok(lock(&self.inner).tenants.get(tenant).map_or(0, |t| t.floor))
    }

    async fn prune(&self, cutoffs: &Cutoffs) -> Result<Pruned, StoreError> {
        let mut inner = lock(&self.inner);
        let mut pruned = Pruned::default();
        let tenants: Vec<String> = inner.tenants.keys().cloned().collect();
        let finished_before = |inner: &Inner, seq: i64, cutoff: &str| {
            inner
                .jobs
                .get(&seq)
                .map(|row| row.job.finished_at.as_deref().is_some_and(|at| at < cutoff))
        };
        for tenant in &tenants {
            // Keys, in the order they were recorded.
            while let Some((key, at)) = inner
                .tenants
                .get(tenant)
                .and_then(|t| t.keys.front().cloned())
            {
                if at.as_str() >= cutoffs.keys_before.as_str() {
                    break;
                }
                if let Some(t) = inner.tenants.get_mut(tenant) {
                    t.keys.pop_front();
                }
                let slot = (tenant.clone(), key.clone());
                if inner.keys.get(&slot).is_some_and(|e| e.created_at == at)
                    && inner.remove_key(tenant, &key)
                {
                    pruned.keys += 1;
                }
            }
            // Events of jobs, in the order the jobs finished.
            while let Some(seq) = inner
                .tenants
                .get(tenant)
                .and_then(|t| t.with_events.front().copied())
            {
                match finished_before(&inner, seq, &cutoffs.events_before) {
                    Some(false) => break,
                    Some(true) => pruned.events += inner.remove_events_of(seq),
                    None => {}
                }
                if let Some(t) = inner.tenants.get_mut(tenant) {
                    t.with_events.pop_front();
                }
            }
            // Jobs, in the order they finished.
            while let Some(seq) = inner
                .tenants
                .get(tenant)
                .and_then(|t| t.finished.front().copied())
            {
                match finished_before(&inner, seq, &cutoffs.jobs_before) {
                    Some(false) => break,
                    Some(true) => {
                        if let Some(events) = inner.remove_job(seq) {
                            pruned.events += events;
                            pruned.jobs += 1;
                        }
                    }
                    None => {}
                }
                if let Some(t) = inner.tenants.get_mut(tenant) {
                    t.finished.pop_front();
                }
            }
        }
        Ok(pruned)
    }

    async fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{EventData, EventKind, NewJob};
    use jobwire_core::JobStatus;

    fn store(budget: u64) -> (MemoryStore, Arc<EventBus>) {
        let bus = Arc::new(EventBus::new(4096));
        (MemoryStore::new(budget, bus.clone()), bus)
    }

    #[tokio::test]
    async fn memory_store_keeps_the_contract() {
        let (store, bus) = store(u64::MAX);
        super::super::contract::run(&store, &bus).await;
    }

    fn log(job: &Job, bytes: usize) -> NewEvent {
        NewEvent {
            job_id: job.id.clone(),
            service_id: job.service_id.clone(),
            kind: EventKind::Log,
            data: EventData::of(&serde_json::json!({"line": "x".repeat(bytes)})),
            created_at: String::new(),
        }
    }

    async fn insert(
        store: &MemoryStore,
        tenant: &str,
        job: &Job,
        events: Vec<NewEvent>,
    ) -> Inserted {
        let new = NewJob {
            tenant,
            job,
            key: Some(crate::store::KeyUse {
                key: &job.id,
                fingerprint: "f",
                answered: None,
            }),
            max_in_flight: 100,
            max_stored_bytes: u64::MAX,
            owner: "srv",
            lease: Duration::from_secs(60),
        };
        store.insert_job(new, events).await.unwrap()
    }

    fn finished(i: usize) -> Job {
        let mut job = Job::new(format!("job_{i}"), "svc_a", JobStatus::Succeeded);
        job.created_at = format!("2026-01-01T00:00:{i:02}.000000Z");
        job.finished_at = Some(format!("2026-01-01T00:00:{i:02}.000000Z"));
        job
    }

    #[tokio::test]
    async fn past_its_budget_a_tenant_loses_its_oldest_finished_jobs_whole() {
        // Room for the running job and three finished jobs of ~11 KB each.
        let (store, _) = store(40 * 1024);
        let running = Job::new("job_live", "svc_a", JobStatus::Running);
        insert(&store, "t", &running, vec![log(&running, 2_000)]).await;
        for i in 0..6 {
            let job = finished(i);
            insert(&store, "t", &job, vec![log(&job, 10_000)]).await;
            // Another tenant's jobs never make room for this one's.
            let theirs = finished(100 + i);
            insert(&store, "other", &theirs, vec![log(&theirs, 10_000)]).await;
        }
        let mut kept = Vec::new();
        for i in 0..6 {
            kept.push(
                store
                    .get_job("t", &format!("job_{i}"))
                    .await
                    .unwrap()
                    .is_some(),
            );
        }
        assert_eq!(kept, [false, false, false, true, true, true]);
        assert!(store.get_job("t", "job_live").await.unwrap().is_some());
        // Their events and keys went with them; a resume from before them is past the
        // floor.
        assert!(store.find_key("t", "job_0").await.unwrap().is_none());
        assert!(store.find_key("t", "job_5").await.unwrap().is_some());
        let floor = store.event_floor("t").await.unwrap();
        assert!(floor > 0);
        let all = EventQuery {
            limit: 100,
            ..Default::default()
        };
        let left: Vec<String> = store
            .events("t", &all)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.job_id)
            .collect();
        assert_eq!(left, ["job_live", "job_3", "job_4", "job_5"]);
        let used = lock(&store.inner).tenants["t"].bytes;
        assert!(used <= 40 * 1024, "{used}");
        // The other tenant kept as much as its own budget allows.
        assert!(store.get_job("other", "job_105").await.unwrap().is_some());
    }

    /// The probe that found the store unbounded (18,000 echo jobs a second grew a server
    /// to 5 GB in a minute), at a million jobs: each stored finished in one write with
    /// its events and key, as an echo is, and the tenant's bytes, jobs, events and keys
    /// never go past what a 1 MiB budget holds.
    #[tokio::test]
    async fn a_million_jobs_stay_within_the_budget() {
        const BUDGET: u64 = 1024 * 1024;
        let (store, _) = store(BUDGET);
        let mut most_jobs = 0;
        for i in 0..1_000_000 {
            let job = finished(i);
            let events = vec![log(&job, 40), log(&job, 40)];
            assert!(matches!(
                insert(&store, "t", &job, events).await,
                Inserted::Stored(_)
            ));
            if i % 1000 == 999 {
                let inner = lock(&store.inner);
                let t = &inner.tenants["t"];
                assert!(t.bytes <= BUDGET, "{} bytes after {} jobs", t.bytes, i + 1);
                // What the maps hold is what the bytes count.
                assert_eq!(inner.jobs.len(), t.finished.len());
                assert_eq!(t.events.len(), 2 * inner.jobs.len());
                let indexed: usize = t.by_service.values().map(BTreeSet::len).sum();
                assert_eq!(indexed, t.events.len());
                assert_eq!(inner.keys.len(), inner.jobs.len());
                // Nor do the queues that order them for removal keep what is gone.
                assert!(t.with_events.len() <= 2 * inner.jobs.len() + 1024);
                assert!(t.keys.len() <= 2 * inner.jobs.len() + 1024);
                assert!(inner.job_seq.len() == inner.jobs.len());
                most_jobs = most_jobs.max(inner.jobs.len());
            }
        }
        // It kept as many as fit, and no more: thousands, not a million.
        assert!((500..10_000).contains(&most_jobs), "{most_jobs}");
        assert!(store.get_job("t", "job_999999").await.unwrap().is_some());
        assert!(store.get_job("t", "job_0").await.unwrap().is_none());
    }

    /// The budget's removals stop at the budget, so a tenant can sit exactly at it (the
    /// soak saw it: jobs of equal sizes coming and going). Its next submit makes room.
    #[tokio::test]
    async fn a_tenant_exactly_at_its_budget_with_finished_jobs_is_not_refused() {
        let first = finished(0);
        let (unbounded, _) = store(u64::MAX);
        insert(&unbounded, "t", &first, vec![log(&first, 1_000)]).await;
        let probe = lock(&unbounded.inner).tenants["t"].bytes;
        // A budget of exactly two such jobs: the second fills it to the byte.
        let (store, _) = store(2 * probe);
        for i in 0..2 {
            let job = finished(i);
            insert(&store, "t", &job, vec![log(&job, 1_000)]).await;
        }
        assert_eq!(lock(&store.inner).tenants["t"].bytes, 2 * probe);
        let next = Job::new("job_next", "svc_a", JobStatus::Queued);
        let new = NewJob {
            tenant: "t",
            job: &next,
            key: None,
            max_in_flight: 100,
            max_stored_bytes: 2 * probe,
            owner: "srv",
            lease: Duration::from_secs(60),
        };
        assert!(matches!(
            store.insert_job(new, vec![]).await.unwrap(),
            Inserted::Stored(_)
        ));
        assert!(store.get_job("t", "job_0").await.unwrap().is_none());
        assert!(store.get_job("t", "job_1").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_tenant_whose_unfinished_jobs_fill_its_budget_is_refused_new_ones() {
        let (store, _) = store(16 * 1024);
        let big = Job::new("job_big", "svc_a", JobStatus::Running);
        assert!(matches!(
            insert(&store, "t", &big, vec![log(&big, 20_000)]).await,
            Inserted::Stored(_)
        ));
        let next = Job::new("job_next", "svc_a", JobStatus::Queued);
        let new = NewJob {
            tenant: "t",
            job: &next,
            key: None,
            max_in_flight: 100,
            max_stored_bytes: 16 * 1024,
            owner: "srv",
            lease: Duration::from_secs(60),
        };
        let refused = store.insert_job(new, vec![]).await.unwrap();
        assert!(matches!(refused, Inserted::OverQuota { used } if used > 16 * 1024));
        // Nothing accepted was lost: the running job and its events are all there.
        assert!(store.get_job("t", "job_big").await.unwrap().is_some());
        assert_eq!(store.event_floor("t").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn retention_removes_events_then_jobs_in_the_order_they_finished() {
        let (store, _) = store(u64::MAX);
        for i in 0..4 {
            let job = finished(i);
            insert(&store, "t", &job, vec![log(&job, 10)]).await;
        }
        let cutoffs = Cutoffs {
            events_before: "2026-01-01T00:00:03.000000Z".into(),
            keys_before: "2000-01-01T00:00:00.000000Z".into(),
            jobs_before: "2026-01-01T00:00:01.000000Z".into(),
        };
        let pruned = store.prune(&cutoffs).await.unwrap();
        assert_eq!(
            pruned,
            Pruned {
                events: 3,
                keys: 0,
                jobs: 1
            }
        );
        assert!(store.get_job("t", "job_0").await.unwrap().is_none());
        assert!(store.get_job("t", "job_1").await.unwrap().is_some());
        assert_eq!(store.event_floor("t").await.unwrap(), 3);
        // A second pass finds nothing more.
        assert_eq!(store.prune(&cutoffs).await.unwrap(), Pruned::default());
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
                max_stored_bytes: u64::MAX,
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
        // A page of one service's events starts after its `after` and stops at its limit.
        let service_page = EventQuery {
            service_id: Some("svc_a".into()),
            after: ids["job_a"][1],
            limit: 2,
            ..Default::default()
        };
        assert_eq!(read(service_page).await, ids["job_a"][2..4].to_vec());
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
