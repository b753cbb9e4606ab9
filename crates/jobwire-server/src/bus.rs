//! The live side of job events: everything the runner records is published, in commit
//! order, to the tenant's subscribers (the event streams of `http::events`).
//!
//! Recording and publishing happen under one lock, so subscribers see events in sequence
//! order: a stream cut after event `n` and resumed with `Last-Event-ID: n` then misses
//! nothing and repeats nothing. Each tenant has one bounded broadcast channel; a
//! subscriber that falls more than its capacity behind learns it lagged (and its stream
//! is cut off, to resume from the store), while publishing never waits for anyone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};

use crate::store::{Event, NewEvent, StoreError};
use crate::util::lock;

/// A recorded event as subscribers receive it.
pub(crate) type LiveEvent = Arc<Event>;

/// Publishes recorded events to subscribers; see the module docs.
pub(crate) struct EventBus {
    channels: Mutex<HashMap<String, broadcast::Sender<LiveEvent>>>,
    capacity: usize,
    /// The highest sequence id recorded so far.
    latest: AtomicI64,
    closed: watch::Sender<bool>,
}

impl EventBus {
    /// A bus whose subscribers may fall `capacity` events behind; `latest` is the highest
    /// sequence id the store has given so far.
    pub(crate) fn new(capacity: usize, latest: i64) -> Self {
        EventBus {
            channels: Mutex::new(HashMap::new()),
            capacity: capacity.max(1),
            latest: AtomicI64::new(latest),
            closed: watch::Sender::new(false),
        }
    }

    /// Records `events` of `tenant` with `write` (a store call that returns their sequence
    /// ids) and publishes them, in order. Nothing is published when the write fails.
    pub(crate) fn record(
        &self,
        tenant: &str,
        events: Vec<NewEvent>,
        write: impl FnOnce(&[NewEvent]) -> Result<Vec<i64>, StoreError>,
    ) -> Result<(), StoreError> {
        // Held from the write to the publish: sequence order is publish order.
        let mut channels = lock(&self.channels);
        let seqs = write(&events)?;
        if let Some(&last) = seqs.last() {
            self.latest.fetch_max(last, Ordering::AcqRel);
        }
        if let Some(tx) = channels.get(tenant) {
            if tx.receiver_count() == 0 {
                channels.remove(tenant);
            } else {
                for (event, seq) in events.into_iter().zip(seqs) {
                    // Err only means every receiver left meanwhile.
                    let _ = tx.send(Arc::new(event.recorded(seq)));
                }
            }
        }
        Ok(())
    }

    /// Receives every event of `tenant` recorded from now on.
    pub(crate) fn subscribe(&self, tenant: &str) -> broadcast::Receiver<LiveEvent> {
        let mut channels = lock(&self.channels);
        let tx = channels
            .entry(tenant.to_owned())
            .or_insert_with(|| broadcast::Sender::new(self.capacity));
        tx.subscribe()
    }

    /// The highest sequence id recorded so far. Read under a job's lock, every later
    /// event of that job is above it.
    pub(crate) fn latest(&self) -> i64 {
        self.latest.load(Ordering::Acquire)
    }

    /// Tells every stream to end: the server is stopping.
    pub(crate) fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Changes to `true` when the server stops.
    pub(crate) fn closed(&self) -> watch::Receiver<bool> {
        self.closed.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::EventKind;

    fn event(job: &str) -> NewEvent {
        NewEvent {
            job_id: job.into(),
            service_id: "svc".into(),
            kind: EventKind::Log,
            data: serde_json::json!({ "job_id": job }),
            created_at: String::new(),
        }
    }

    #[test]
    fn publishes_in_order_to_the_tenant_only() {
        let bus = EventBus::new(8, 10);
        let mut mine = bus.subscribe("t1");
        let mut theirs = bus.subscribe("t2");
        let mut next = 10;
        let mut write = |events: &[NewEvent]| {
            Ok(events
                .iter()
                .map(|_| {
                    next += 1;
                    next
                })
                .collect())
        };
        bus.record("t1", vec![event("a"), event("b")], &mut write)
            .unwrap();
        assert_eq!(bus.latest(), 12);
        assert_eq!(mine.try_recv().unwrap().seq, 11);
        assert_eq!(mine.try_recv().unwrap().job_id, "b");
        assert!(theirs.try_recv().is_err());
        // A failed write publishes nothing and moves nothing.
        let failed = bus.record("t1", vec![event("c")], |_| {
            Err(StoreError::new("disk full"))
        });
        assert!(failed.is_err());
        assert!(mine.try_recv().is_err());
        assert_eq!(bus.latest(), 12);
    }

    #[test]
    fn a_lagging_subscriber_is_told_and_publishing_never_waits() {
        let bus = EventBus::new(2, 0);
        let mut slow = bus.subscribe("t");
        let mut seq = 0;
        for _ in 0..5 {
            bus.record("t", vec![event("a")], |_| {
                seq += 1;
                Ok(vec![seq])
            })
            .unwrap();
        }
        assert!(matches!(
            slow.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(3))
        ));
    }
}
