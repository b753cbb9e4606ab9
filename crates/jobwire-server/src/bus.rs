//! The live side of job events: every event the store commits is published, in id
//! order, to the tenant's subscribers (the event streams of `http::events` and the waits
//! of `runner`).
//!
//! The store is the only publisher, and publishes from one place in id order (under its
//! lock in memory, from its writer thread for SQLite, from its listener for PostgreSQL,
//! which also brings the events other server processes wrote). So a stream cut after
//! event `n` and resumed with `Last-Event-ID: n` misses nothing and repeats nothing. Each
//! tenant has one bounded broadcast channel; a subscriber that falls more than its
//! capacity behind learns it lagged (and its stream is cut off, to resume from the
//! store), while publishing never waits for anyone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{broadcast, watch};

use crate::locking::lock;
use crate::store::Event;

/// A recorded event as subscribers receive it.
pub(crate) type LiveEvent = Arc<Event>;

/// Publishes recorded events to subscribers; see the module docs.
pub(crate) struct EventBus {
    channels: Mutex<HashMap<String, broadcast::Sender<LiveEvent>>>,
    /// Every tenant's events, for the runner's watch on jobs changed by other servers.
    all: broadcast::Sender<LiveEvent>,
    capacity: usize,
    /// The highest sequence id recorded so far.
    latest: AtomicI64,
    closed: watch::Sender<bool>,
}

impl EventBus {
    /// A bus whose subscribers may fall `capacity` events behind.
    pub(crate) fn new(capacity: usize) -> Self {
        EventBus {
            channels: Mutex::new(HashMap::new()),
            all: broadcast::Sender::new(capacity.max(1)),
            capacity: capacity.max(1),
            latest: AtomicI64::new(0),
            closed: watch::Sender::new(false),
        }
    }

    /// Publishes committed events, as `(tenant, event)`; the store calls it from one
    /// place, in id order.
    pub(crate) fn publish(&self, events: impl IntoIterator<Item = (String, Event)>) {
        self.publish_shared(events.into_iter().map(|(tenant, e)| (tenant, Arc::new(e))));
    }

    /// [`EventBus::publish`] for events the store keeps too: shared, not copied.
    pub(crate) fn publish_shared<T: AsRef<str>>(
        &self,
        events: impl IntoIterator<Item = (T, LiveEvent)>,
    ) {
        let mut channels = lock(&self.channels);
        let to_all = self.all.receiver_count() > 0;
        for (tenant, event) in events {
            let tenant = tenant.as_ref();
            self.latest.fetch_max(event.seq, Ordering::AcqRel);
            let tenant_tx = channels.get(tenant);
            if !to_all && tenant_tx.is_none() {
                continue;
            }
            if to_all {
                let _ = self.all.send(event.clone());
            }
            let Some(tx) = tenant_tx else {
                continue;
            };
            if tx.receiver_count() == 0 {
                channels.remove(tenant);
            } else {
                // Err only means every receiver left meanwhile.
                let _ = tx.send(event);
            }
        }
    }

    /// Raises the highest committed id the bus knows of without publishing anything: a
    /// store opening over earlier events says where they end.
    pub(crate) fn advance(&self, seq: i64) {
        self.latest.fetch_max(seq, Ordering::AcqRel);
    }

    /// Receives every event of `tenant` recorded from now on.
    pub(crate) fn subscribe(&self, tenant: &str) -> broadcast::Receiver<LiveEvent> {
        let mut channels = lock(&self.channels);
        let tx = channels
            .entry(tenant.to_owned())
            .or_insert_with(|| broadcast::Sender::new(self.capacity));
        tx.subscribe()
    }

    /// Receives every tenant's events published from now on.
    pub(crate) fn subscribe_all(&self) -> broadcast::Receiver<LiveEvent> {
        self.all.subscribe()
    }

    /// The highest event id published so far. Every event committed after it was read
    /// has a higher id (ids grow in commit order); it may lag behind the store, never run
    /// ahead of it.
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

    fn event(seq: i64, job: &str) -> Event {
        Event {
            seq,
            job_id: job.into(),
            service_id: "svc".into(),
            kind: "log".into(),
            data: crate::store::EventData::of(&serde_json::json!({ "job_id": job })),
            created_at: String::new(),
        }
    }

    #[test]
    fn publishes_in_order_to_the_tenant_only() {
        let bus = EventBus::new(8);
        bus.advance(10);
        let mut mine = bus.subscribe("t1");
        let mut theirs = bus.subscribe("t2");
        bus.publish([("t1".into(), event(11, "a")), ("t1".into(), event(12, "b"))]);
        assert_eq!(bus.latest(), 12);
        assert_eq!(mine.try_recv().unwrap().seq, 11);
        assert_eq!(mine.try_recv().unwrap().job_id, "b");
        assert!(theirs.try_recv().is_err());
        // Events of a tenant nobody follows still move the position, and reach those
        // who follow every tenant.
        let mut all = bus.subscribe_all();
        bus.publish([("t3".into(), event(13, "c"))]);
        assert_eq!(all.try_recv().unwrap().job_id, "c");
        assert_eq!(bus.latest(), 13);
        bus.advance(5);
        assert_eq!(bus.latest(), 13, "never back");
    }

    #[test]
    fn a_lagging_subscriber_is_told_and_publishing_never_waits() {
        let bus = EventBus::new(2);
        let mut slow = bus.subscribe("t");
        for seq in 1..=5 {
            bus.publish([("t".into(), event(seq, "a"))]);
        }
        assert!(matches!(
            slow.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(3))
        ));
    }
}
