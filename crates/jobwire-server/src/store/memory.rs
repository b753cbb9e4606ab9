//! [`MemoryStore`]: everything in process memory, gone when the server stops.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Mutex;

use jobwire_core::{Job, Service};

use super::{
    labels_match, Event, EventQuery, JobQuery, KeyRecord, Keyed, NewEvent, Pruned, ServiceQuery,
    Store, StoreError,
};
use crate::util::lock;

/// A store in process memory, for tests and throwaway servers.
///
/// Bounded: the retention pass removes the events of jobs finished before its cutoff, and
/// keeps at most `max_finished_jobs` finished jobs (the oldest go first, events and all).
#[derive(Debug)]
pub(crate) struct MemoryStore {
    inner: Mutex<Inner>,
    max_finished_jobs: usize,
}

#[derive(Debug, Default)]
struct Inner {
    /// seq -> (owner, service); `None` owner = global.
    services: BTreeMap<i64, (Option<String>, Service)>,
    /// seq -> (tenant, job).
    jobs: BTreeMap<i64, (String, Job)>,
    /// job id -> seq.
    job_seq: HashMap<String, i64>,
    /// Oldest first, with the tenant.
    events: VecDeque<(String, Event)>,
    /// Per tenant, the highest sequence id of a removed event.
    floors: HashMap<String, i64>,
    /// (tenant, key) -> (what it was used for, when it was recorded).
    keys: HashMap<(String, String), (KeyRecord, String)>,
    next_service: i64,
    next_job: i64,
    next_event: i64,
}

impl MemoryStore {
    /// An empty store that keeps at most `max_finished_jobs` finished jobs.
    pub(crate) fn new(max_finished_jobs: usize) -> Self {
        MemoryStore {
            inner: Mutex::new(Inner::default()),
            max_finished_jobs,
        }
    }
}

impl Inner {
    fn push_events(&mut self, tenant: &str, events: &[NewEvent]) -> Vec<i64> {
        events
            .iter()
            .map(|e| {
                self.next_event += 1;
                let seq = self.next_event;
                self.events
                    .push_back((tenant.to_owned(), e.clone().recorded(seq)));
                seq
            })
            .collect()
    }

    /// Removes the events `doomed` selects (by job id), raising the floors.
    fn remove_events(&mut self, doomed: impl Fn(&str) -> bool) -> usize {
        let before = self.events.len();
        let floors = &mut self.floors;
        self.events.retain(|(tenant, e)| {
            if doomed(&e.job_id) {
                let floor = floors.entry(tenant.clone()).or_insert(0);
                *floor = (*floor).max(e.seq);
                false
            } else {
                true
            }
        });
        before - self.events.len()
    }
}

fn visible(owner: &Option<String>, tenant: &str) -> bool {
    owner.as_deref().map_or(true, |o| o == tenant)
}

impl Store for MemoryStore {
    fn upsert_service(&self, tenant: Option<&str>, service: &Service) -> Result<(), StoreError> {
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

    fn find_service(&self, tenant: &str, id_or_name: &str) -> Result<Option<Service>, StoreError> {
        let inner = lock(&self.inner);
        let by_id = inner
            .services
            .values()
            .find(|(owner, s)| visible(owner, tenant) && s.id == id_or_name);
        let found = by_id.or_else(|| {
            inner
                .services
                .values()
                .find(|(owner, s)| visible(owner, tenant) && s.name == id_or_name)
        });
        Ok(found.map(|(_, s)| s.clone()))
    }

    fn list_services(
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
                visible(owner, tenant) && query.name.as_ref().map_or(true, |n| &s.name == n)
            })
            .take(query.limit)
            .map(|(seq, (_, s))| (*seq, s.clone()))
            .collect())
    }

    fn insert_job(
        &self,
        tenant: &str,
        job: &Job,
        events: &[NewEvent],
    ) -> Result<(i64, Vec<i64>), StoreError> {
        let mut inner = lock(&self.inner);
        if inner.job_seq.contains_key(&job.id) {
            return Err(StoreError::new(format!("job id {} is taken", job.id)));
        }
        inner.next_job += 1;
        let seq = inner.next_job;
        inner.jobs.insert(seq, (tenant.to_owned(), job.clone()));
        inner.job_seq.insert(job.id.clone(), seq);
        Ok((seq, inner.push_events(tenant, events)))
    }

    fn insert_keyed_job(
        &self,
        tenant: &str,
        job: &Job,
        events: &[NewEvent],
        key: &str,
        fingerprint: &str,
    ) -> Result<Keyed, StoreError> {
        let mut inner = lock(&self.inner);
        let slot = (tenant.to_owned(), key.to_owned());
        if let Some((record, _)) = inner.keys.get(&slot) {
            return Ok(Keyed::Taken(record.clone()));
        }
        if inner.job_seq.contains_key(&job.id) {
            return Err(StoreError::new(format!("job id {} is taken", job.id)));
        }
        inner.next_job += 1;
        let seq = inner.next_job;
        inner.jobs.insert(seq, (tenant.to_owned(), job.clone()));
        inner.job_seq.insert(job.id.clone(), seq);
        let record = KeyRecord {
            fingerprint: fingerprint.to_owned(),
            job_id: job.id.clone(),
            status: None,
        };
        inner.keys.insert(slot, (record, job.created_at.clone()));
        Ok(Keyed::Inserted(inner.push_events(tenant, events)))
    }

    fn find_key(&self, tenant: &str, key: &str) -> Result<Option<KeyRecord>, StoreError> {
        let inner = lock(&self.inner);
        let slot = (tenant.to_owned(), key.to_owned());
        Ok(inner.keys.get(&slot).map(|(record, _)| record.clone()))
    }

    fn set_key_status(&self, tenant: &str, key: &str, status: u16) -> Result<(), StoreError> {
        let mut inner = lock(&self.inner);
        let slot = (tenant.to_owned(), key.to_owned());
        if let Some((record, _)) = inner.keys.get_mut(&slot) {
            record.status = Some(status);
        }
        Ok(())
    }

    fn update_job(
        &self,
        tenant: &str,
        job: &Job,
        events: &[NewEvent],
    ) -> Result<Vec<i64>, StoreError> {
        let mut inner = lock(&self.inner);
        let seq = inner.job_seq.get(&job.id).copied();
        match seq.and_then(|seq| inner.jobs.get_mut(&seq)) {
            Some((owner, stored)) if owner == tenant => *stored = job.clone(),
            _ => return Err(StoreError::new(format!("no job {} to update", job.id))),
        }
        Ok(inner.push_events(tenant, events))
    }

    fn append_events(&self, tenant: &str, events: &[NewEvent]) -> Result<Vec<i64>, StoreError> {
        Ok(lock(&self.inner).push_events(tenant, events))
    }

    fn get_job(&self, tenant: &str, id: &str) -> Result<Option<Job>, StoreError> {
        let inner = lock(&self.inner);
        Ok(inner
            .job_seq
            .get(id)
            .and_then(|seq| inner.jobs.get(seq))
            .filter(|(owner, _)| owner == tenant)
            .map(|(_, job)| job.clone()))
    }

    fn list_jobs(&self, tenant: &str, query: &JobQuery) -> Result<Vec<(i64, Job)>, StoreError> {
        let inner = lock(&self.inner);
        let end = query.before.unwrap_or(i64::MAX);
        Ok(inner
            .jobs
            .range(..end)
            .rev()
            .filter(|(_, (owner, job))| {
                owner == tenant
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
            .map(|(seq, (_, job))| (*seq, job.clone()))
            .collect())
    }

    fn unfinished_jobs(&self) -> Result<Vec<(String, Job)>, StoreError> {
        let inner = lock(&self.inner);
        Ok(inner
            .jobs
            .values()
            .filter(|(_, job)| !job.status.is_terminal())
            .cloned()
            .collect())
    }

    fn events(&self, tenant: &str, query: &EventQuery) -> Result<Vec<Event>, StoreError> {
        let inner = lock(&self.inner);
        let start = inner.events.partition_point(|(_, e)| e.seq <= query.after);
        Ok(inner
            .events
            .range(start..)
            .filter(|(owner, e)| owner == tenant && query.matches(&e.job_id, &e.service_id))
            .take(query.limit)
            .map(|(_, e)| e.clone())
            .collect())
    }

    fn event_floor(&self, tenant: &str) -> Result<i64, StoreError> {
        Ok(lock(&self.inner).floors.get(tenant).copied().unwrap_or(0))
    }

    fn last_event_seq(&self) -> Result<i64, StoreError> {
        Ok(lock(&self.inner).next_event)
    }

    fn prune(&self, cutoff: &str, keys_before: &str) -> Result<Pruned, StoreError> {
        let mut inner = lock(&self.inner);
        let keys_before_pass = inner.keys.len();
        inner.keys.retain(|_, (_, at)| at.as_str() >= keys_before);
        let keys = keys_before_pass - inner.keys.len();
        let finished: Vec<(i64, bool)> = inner
            .jobs
            .iter()
            .filter_map(|(seq, (_, job))| {
                let at = job.finished_at.as_deref().filter(|_| job.is_finished())?;
                Some((*seq, at < cutoff))
            })
            .collect();
        // Past the cap, the oldest finished jobs go whole.
        let excess = finished.len().saturating_sub(self.max_finished_jobs);
        let dropped: Vec<String> = finished[..excess]
            .iter()
            .filter_map(|(seq, _)| inner.jobs.remove(seq).map(|(_, job)| job.id))
            .collect();
        for id in &dropped {
            inner.job_seq.remove(id);
        }
        let expired: std::collections::HashSet<String> = finished[excess..]
            .iter()
            .filter(|(_, old)| *old)
            .filter_map(|(seq, _)| inner.jobs.get(seq).map(|(_, job)| job.id.clone()))
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

    fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobwire_core::JobStatus;

    #[test]
    fn memory_store_keeps_the_contract() {
        super::super::contract::run(&MemoryStore::new(1000));
    }

    #[test]
    fn finished_jobs_past_the_cap_go_oldest_first() {
        let store = MemoryStore::new(2);
        for i in 0..5 {
            let mut job = Job::new(format!("job_{i}"), "svc_a", JobStatus::Succeeded);
            job.finished_at = Some(format!("2026-01-01T00:00:0{i}.000Z"));
            let event = NewEvent {
                job_id: job.id.clone(),
                service_id: "svc_a".into(),
                kind: super::super::EventKind::Done,
                data: serde_json::json!({}),
                created_at: String::new(),
            };
            store.insert_job("t", &job, &[event]).unwrap();
        }
        store
            .insert_job("t", &Job::new("job_live", "svc_a", JobStatus::Running), &[])
            .unwrap();
        // Nothing is old enough for the window, but the cap removes three jobs.
        let pruned = store
            .prune("2000-01-01T00:00:00.000Z", "2000-01-01T00:00:00.000Z")
            .unwrap();
        assert_eq!(
            pruned,
            Pruned {
                events: 3,
                keys: 0,
                jobs: 3
            }
        );
        assert!(store.get_job("t", "job_0").unwrap().is_none());
        assert!(store.get_job("t", "job_3").unwrap().is_some());
        assert!(store.get_job("t", "job_live").unwrap().is_some());
        assert_eq!(store.event_floor("t").unwrap(), 3);
    }
}
