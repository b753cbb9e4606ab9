//! [`MemoryStore`]: everything in process memory, gone when the server stops.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use jobwire_core::{Job, Service};

use super::{labels_match, Event, JobQuery, NewEvent, ServiceQuery, Store, StoreError};
use crate::util::lock;

/// A store in process memory, for tests and throwaway servers.
///
/// Events are kept for the life of the process (a retention policy comes with the event
/// streams).
#[derive(Debug, Default)]
pub(crate) struct MemoryStore {
    inner: Mutex<Inner>,
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
    events: Vec<(String, Event)>,
    next_service: i64,
    next_job: i64,
    next_event: i64,
}

impl MemoryStore {
    /// An empty store.
    pub(crate) fn new() -> Self {
        MemoryStore::default()
    }
}

impl Inner {
    fn push_events(&mut self, tenant: &str, events: &[NewEvent]) {
        for e in events {
            self.next_event += 1;
            self.events.push((
                tenant.to_owned(),
                Event {
                    seq: self.next_event,
                    job_id: e.job_id.clone(),
                    kind: e.kind.as_str().to_owned(),
                    data: e.data.clone(),
                    created_at: e.created_at.clone(),
                },
            ));
        }
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

    fn insert_job(&self, tenant: &str, job: &Job, events: &[NewEvent]) -> Result<i64, StoreError> {
        let mut inner = lock(&self.inner);
        if inner.job_seq.contains_key(&job.id) {
            return Err(StoreError::new(format!("job id {} is taken", job.id)));
        }
        inner.next_job += 1;
        let seq = inner.next_job;
        inner.jobs.insert(seq, (tenant.to_owned(), job.clone()));
        inner.job_seq.insert(job.id.clone(), seq);
        inner.push_events(tenant, events);
        Ok(seq)
    }

    fn update_job(&self, tenant: &str, job: &Job, events: &[NewEvent]) -> Result<(), StoreError> {
        let mut inner = lock(&self.inner);
        let seq = inner.job_seq.get(&job.id).copied();
        match seq.and_then(|seq| inner.jobs.get_mut(&seq)) {
            Some((owner, stored)) if owner == tenant => *stored = job.clone(),
            _ => return Err(StoreError::new(format!("no job {} to update", job.id))),
        }
        inner.push_events(tenant, events);
        Ok(())
    }

    fn append_events(&self, tenant: &str, events: &[NewEvent]) -> Result<(), StoreError> {
        lock(&self.inner).push_events(tenant, events);
        Ok(())
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

    fn events_after(
        &self,
        tenant: &str,
        after: i64,
        limit: usize,
    ) -> Result<Vec<Event>, StoreError> {
        let inner = lock(&self.inner);
        let start = inner.events.partition_point(|(_, e)| e.seq <= after);
        Ok(inner.events[start..]
            .iter()
            .filter(|(owner, _)| owner == tenant)
            .take(limit)
            .map(|(_, e)| e.clone())
            .collect())
    }

    fn close(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_store_keeps_the_contract() {
        super::super::contract::run(&super::MemoryStore::new());
    }
}
