//! The live side of job events: every event the store commits is published, in id
//! order, to the subscribers that want it (the event streams of `http::events`, the
//! waits of `GET /v1/jobs/{id}`, and the runner's watch on peers' `done`s).
//!
//! The store is the only publisher, and publishes from one place in id order (under its
//! lock in memory, from its writer thread for SQLite, from its listener for PostgreSQL,
//! which also brings the events other server processes wrote). So a stream cut after
//! event `n` and resumed with `Last-Event-ID: n` misses nothing and repeats nothing.
//!
//! **Fan-out by index.** A subscriber says what it wants ([`Interest`]): every event of
//! its tenant, the events of some jobs, or those of one service. The bus keeps, per
//! tenant, who wants every event, who wants each job and who wants each service, and
//! puts an event only in the queues of those (plus, for a `done`, of those watching
//! every tenant's `done`s). So an event costs the same whether the tenant has ten
//! subscribers or ten thousand, and a subscriber of job A is never woken for job B.
//!
//! **Bounded queues, publishing never waits.** Each subscriber has a queue of its own,
//! bounded in events and in bytes (one event always fits, however large). Publishing
//! takes the queue's lock for a push and never waits for the subscriber. A subscriber
//! that falls behind so far that the next event would pass a bound is cut off: what
//! waited is dropped at once (its memory goes with it), it receives nothing more, and
//! its next [`Subscription::recv`] says so; its stream ends and the client resumes from
//! the store with `Last-Event-ID`.
//!
//! **Streams per tenant.** [`EventBus::open_stream`] also counts the tenant's open event
//! streams against a cap, released when the subscription is dropped.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{watch, Notify};

use crate::locking::lock;
use crate::store::Event;

/// A recorded event as subscribers receive it.
pub(crate) type LiveEvent = Arc<Event>;

/// The memory an event holds while it waits in a queue or a history page: its strings
/// and the event itself. What the per-subscriber byte bounds count.
pub(crate) fn held_bytes(event: &Event) -> usize {
    std::mem::size_of::<Event>()
        + event.job_id.len()
        + event.service_id.len()
        + event.kind.len()
        + event.data.get().len()
        + event.created_at.len()
}

/// How much one subscriber may have waiting, and how many streams a tenant may open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bounds {
    /// Live events one subscriber may have waiting before it is cut off.
    pub events: usize,
    /// Bytes ([`held_bytes`]) of live events one subscriber may have waiting before it
    /// is cut off; an event alone always fits.
    pub bytes: usize,
    /// Event streams ([`EventBus::open_stream`]) one tenant may have open at once.
    pub streams_per_tenant: usize,
}

impl Bounds {
    /// `events` events a subscriber, and no other bound: for tests.
    #[cfg(test)]
    pub(crate) fn events(events: usize) -> Self {
        Bounds {
            events: events.max(1),
            bytes: usize::MAX,
            streams_per_tenant: usize::MAX,
        }
    }
}

/// Which of its tenant's events a subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Interest {
    /// Every one.
    Tenant,
    /// Those of these jobs (a job named twice still gets each event once).
    Jobs(Vec<String>),
    /// Those of the jobs of this service id.
    Service(String),
}

/// The stream cap of a tenant is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AtStreamCap {
    /// The cap.
    pub limit: usize,
}

/// A subscriber was cut off: it fell too far behind, and what waited for it is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CutOff;

/// Why [`Subscription::try_recv`] has no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TryRecvError {
    /// Nothing waits now.
    Empty,
    /// Cut off; nothing more will come.
    CutOff,
}

/// Publishes recorded events to subscribers; see the module docs.
pub(crate) struct EventBus {
    shared: Arc<Shared>,
    /// The highest sequence id recorded so far.
    latest: AtomicI64,
    closed: watch::Sender<bool>,
}

/// What subscriptions need of the bus to leave it.
struct Shared {
    index: Mutex<Index>,
    bounds: Bounds,
}

/// Who wants what.
#[derive(Default)]
struct Index {
    tenants: HashMap<String, Topics>,
    /// Those who want every tenant's `done`s.
    dones: Vec<Arc<Queue>>,
}

/// One tenant's subscribers, by what they want.
#[derive(Default)]
struct Topics {
    every: Vec<Arc<Queue>>,
    jobs: HashMap<String, Vec<Arc<Queue>>>,
    services: HashMap<String, Vec<Arc<Queue>>>,
    /// Event streams open, for the cap.
    streams: usize,
}

impl Topics {
    fn is_empty(&self) -> bool {
        self.every.is_empty()
            && self.jobs.is_empty()
            && self.services.is_empty()
            && self.streams == 0
    }
}

/// One subscriber's queue.
#[derive(Default)]
struct Queue {
    waiting: Mutex<Waiting>,
    /// Rung when the queue stops being empty, and when it is cut off.
    ready: Notify,
}

#[derive(Default)]
struct Waiting {
    events: VecDeque<LiveEvent>,
    /// [`held_bytes`] of `events`.
    bytes: usize,
    cut: bool,
}

impl Queue {
    /// Queues `event` (of `size` bytes), or cuts the subscriber off if it would pass a
    /// bound. Never waits for the subscriber.
    fn push(&self, event: &LiveEvent, size: usize, bounds: &Bounds) {
        let mut waiting = lock(&self.waiting);
        if waiting.cut {
            return;
        }
        let was_empty = waiting.events.is_empty();
        let over = waiting.events.len() >= bounds.events
            || waiting.bytes.saturating_add(size) > bounds.bytes;
        if !was_empty && over {
            // Too far behind: free what waited now, not when the subscriber next looks.
            waiting.events = VecDeque::new();
            waiting.bytes = 0;
            waiting.cut = true;
            drop(waiting);
            self.ready.notify_one();
            return;
        }
        waiting.events.push_back(event.clone());
        waiting.bytes += size;
        drop(waiting);
        // A subscriber takes events until the queue is empty before it waits again, so
        // only the first event after that needs to wake it.
        if was_empty {
            self.ready.notify_one();
        }
    }

    fn pop(&self) -> Result<LiveEvent, TryRecvError> {
        let mut waiting = lock(&self.waiting);
        match waiting.events.pop_front() {
            Some(event) => {
                waiting.bytes = waiting.bytes.saturating_sub(held_bytes(&event));
                Ok(event)
            }
            None if waiting.cut => Err(TryRecvError::CutOff),
            None => Err(TryRecvError::Empty),
        }
    }
}

/// Where a subscription sits in the index.
enum Place {
    Tenant { tenant: String, interest: Interest },
    Dones,
}

/// A subscriber's end: its queue, left (and its stream slot given back) when dropped.
pub(crate) struct Subscription {
    queue: Arc<Queue>,
    shared: Arc<Shared>,
    place: Place,
    /// Whether it holds one of its tenant's stream slots.
    stream: bool,
}

impl Subscription {
    /// The next event, in id order; [`CutOff`] once the subscriber fell too far behind
    /// (nothing more comes). Cancel-safe: an event is taken only when it is returned.
    pub(crate) async fn recv(&mut self) -> Result<LiveEvent, CutOff> {
        loop {
            match self.queue.pop() {
                Ok(event) => return Ok(event),
                Err(TryRecvError::CutOff) => return Err(CutOff),
                // `notify_one` leaves a permit when nobody waits, so an event queued
                // between the look and the wait still wakes this.
                Err(TryRecvError::Empty) => self.queue.ready.notified().await,
            }
        }
    }

    /// The next event if one waits.
    #[cfg(test)]
    pub(crate) fn try_recv(&mut self) -> Result<LiveEvent, TryRecvError> {
        self.queue.pop()
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut index = lock(&self.shared.index);
        let leave = |queues: &mut Vec<Arc<Queue>>| {
            if let Some(at) = queues.iter().position(|q| Arc::ptr_eq(q, &self.queue)) {
                queues.swap_remove(at);
            }
        };
        match &self.place {
            Place::Dones => leave(&mut index.dones),
            Place::Tenant { tenant, interest } => {
                let Some(topics) = index.tenants.get_mut(tenant) else {
                    return;
                };
                match interest {
                    Interest::Tenant => leave(&mut topics.every),
                    Interest::Jobs(jobs) => {
                        for job in jobs {
                            if let Some(queues) = topics.jobs.get_mut(job) {
                                leave(queues);
                                if queues.is_empty() {
                                    topics.jobs.remove(job);
                                }
                            }
                        }
                    }
                    Interest::Service(service) => {
                        if let Some(queues) = topics.services.get_mut(service) {
                            leave(queues);
                            if queues.is_empty() {
                                topics.services.remove(service);
                            }
                        }
                    }
                }
                if self.stream {
                    topics.streams = topics.streams.saturating_sub(1);
                }
                if topics.is_empty() {
                    index.tenants.remove(tenant);
                }
            }
        }
    }
}

impl EventBus {
    /// A bus whose subscribers may fall `capacity` events behind (and no byte or stream
    /// bound): for tests.
    #[cfg(test)]
    pub(crate) fn new(capacity: usize) -> Self {
        EventBus::with_bounds(Bounds::events(capacity))
    }

    /// A bus with these bounds on subscribers and streams.
    pub(crate) fn with_bounds(bounds: Bounds) -> Self {
        EventBus {
            shared: Arc::new(Shared {
                index: Mutex::new(Index::default()),
                bounds: Bounds {
                    events: bounds.events.max(1),
                    bytes: bounds.bytes.max(1),
                    streams_per_tenant: bounds.streams_per_tenant,
                },
            }),
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
        let bounds = &self.shared.bounds;
        let index = lock(&self.shared.index);
        for (tenant, event) in events {
            self.latest.fetch_max(event.seq, Ordering::AcqRel);
            let topics = index.tenants.get(tenant.as_ref());
            let dones = if event.kind == "done" {
                &index.dones[..]
            } else {
                &[]
            };
            if topics.is_none() && dones.is_empty() {
                continue;
            }
            let size = held_bytes(&event);
            let to = |queues: &[Arc<Queue>]| {
                for queue in queues {
                    queue.push(&event, size, bounds);
                }
            };
            to(dones);
            if let Some(topics) = topics {
                to(&topics.every);
                if let Some(queues) = topics.jobs.get(event.job_id.as_str()) {
                    to(queues);
                }
                if let Some(queues) = topics.services.get(event.service_id.as_str()) {
                    to(queues);
                }
            }
        }
    }

    /// Raises the highest committed id the bus knows of without publishing anything: a
    /// store opening over earlier events says where they end.
    pub(crate) fn advance(&self, seq: i64) {
        self.latest.fetch_max(seq, Ordering::AcqRel);
    }

    /// Receives every event of `tenant` recorded from now on.
    #[cfg(test)]
    pub(crate) fn subscribe(&self, tenant: &str) -> Subscription {
        self.subscribe_to(tenant, Interest::Tenant)
    }

    /// Receives the events of `tenant` that `interest` names, recorded from now on.
    pub(crate) fn subscribe_to(&self, tenant: &str, interest: Interest) -> Subscription {
        let mut index = lock(&self.shared.index);
        self.join(&mut index, tenant, interest, false)
    }

    /// [`subscribe_to`](Self::subscribe_to) for an event stream: it takes one of the
    /// tenant's stream slots (given back when the subscription is dropped), or is refused
    /// when they are all taken.
    pub(crate) fn open_stream(
        &self,
        tenant: &str,
        interest: Interest,
    ) -> Result<Subscription, AtStreamCap> {
        let limit = self.shared.bounds.streams_per_tenant;
        let mut index = lock(&self.shared.index);
        let open = index.tenants.get(tenant).map_or(0, |t| t.streams);
        if open >= limit {
            return Err(AtStreamCap { limit });
        }
        Ok(self.join(&mut index, tenant, interest, true))
    }

    fn join(
        &self,
        index: &mut Index,
        tenant: &str,
        interest: Interest,
        stream: bool,
    ) -> Subscription {
        let queue = Arc::new(Queue::default());
        let topics = index.tenants.entry(tenant.to_owned()).or_default();
        let interest = match interest {
            Interest::Tenant => {
                topics.every.push(queue.clone());
                Interest::Tenant
            }
            Interest::Jobs(mut jobs) => {
                // Each job once: an event has one job, so it is then queued once.
                jobs.sort_unstable();
                jobs.dedup();
                for job in &jobs {
                    topics
                        .jobs
                        .entry(job.clone())
                        .or_default()
                        .push(queue.clone());
                }
                Interest::Jobs(jobs)
            }
            Interest::Service(service) => {
                topics
                    .services
                    .entry(service.clone())
                    .or_default()
                    .push(queue.clone());
                Interest::Service(service)
            }
        };
        if stream {
            topics.streams += 1;
        }
        Subscription {
            queue,
            shared: self.shared.clone(),
            place: Place::Tenant {
                tenant: tenant.to_owned(),
                interest,
            },
            stream,
        }
    }

    /// Receives the `done` of every job of every tenant from now on.
    pub(crate) fn subscribe_dones(&self) -> Subscription {
        let queue = Arc::new(Queue::default());
        lock(&self.shared.index).dones.push(queue.clone());
        Subscription {
            queue,
            shared: self.shared.clone(),
            place: Place::Dones,
            stream: false,
        }
    }

    /// The bounds it was made with.
    pub(crate) fn bounds(&self) -> Bounds {
        self.shared.bounds
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
    use std::future::Future;
    use std::sync::atomic::AtomicUsize;
    use std::task::{Context, Poll, Wake, Waker};

    fn event(seq: i64, job: &str) -> Event {
        event_of(seq, job, "svc")
    }

    fn event_of(seq: i64, job: &str, service: &str) -> Event {
        Event {
            seq,
            job_id: job.into(),
            service_id: service.into(),
            kind: "log".into(),
            data: crate::store::EventData::of(&serde_json::json!({ "job_id": job })),
            created_at: String::new(),
        }
    }

    fn drain(sub: &mut Subscription) -> Vec<i64> {
        std::iter::from_fn(|| sub.try_recv().ok().map(|e| e.seq)).collect()
    }

    /// A waker that counts its wake-ups.
    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
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
        assert_eq!(theirs.try_recv().unwrap_err(), TryRecvError::Empty);
        // Events of a tenant nobody follows still move the position, and their `done`s
        // reach those who watch every tenant's.
        let mut dones = bus.subscribe_dones();
        let mut done = event(14, "c");
        done.kind = "done".into();
        bus.publish([("t3".into(), event(13, "c")), ("t3".into(), done)]);
        assert_eq!(drain(&mut dones), [14]);
        assert_eq!(bus.latest(), 14);
        bus.advance(5);
        assert_eq!(bus.latest(), 14, "never back");
    }

    #[test]
    fn subscribers_get_only_what_they_asked_for() {
        let bus = EventBus::new(64);
        let mut job_a = bus.subscribe_to("t", Interest::Jobs(vec!["a".into()]));
        // A job named twice is still one entry: each event once.
        let mut a_and_c = bus.subscribe_to(
            "t",
            Interest::Jobs(vec!["c".into(), "a".into(), "a".into()]),
        );
        let mut svc_x = bus.subscribe_to("t", Interest::Service("x".into()));
        let mut every = bus.subscribe("t");
        bus.publish([
            ("t".into(), event_of(1, "a", "x")),
            ("t".into(), event_of(2, "b", "y")),
            ("t".into(), event_of(3, "c", "x")),
            ("u".into(), event_of(4, "a", "x")),
            ("t".into(), event_of(5, "a", "x")),
        ]);
        assert_eq!(drain(&mut job_a), [1, 5]);
        assert_eq!(drain(&mut a_and_c), [1, 3, 5]);
        assert_eq!(drain(&mut svc_x), [1, 3, 5]);
        assert_eq!(drain(&mut every), [1, 2, 3, 5]);
    }

    #[test]
    fn a_subscriber_of_one_job_never_wakes_for_another() {
        let bus = EventBus::new(4096);
        let mut a = bus.subscribe_to("t", Interest::Jobs(vec!["a".into()]));
        let _b = bus.subscribe_to("t", Interest::Jobs(vec!["b".into()]));
        let wakes = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        {
            let mut next = std::pin::pin!(a.recv());
            assert!(next.as_mut().poll(&mut cx).is_pending());
            for seq in 1..=1000 {
                bus.publish([("t".into(), event(seq, "b"))]);
            }
            assert_eq!(wakes.0.load(Ordering::SeqCst), 0, "woken for job b");
            bus.publish([("t".into(), event(1001, "a"))]);
            assert_eq!(wakes.0.load(Ordering::SeqCst), 1);
            match next.as_mut().poll(&mut cx) {
                Poll::Ready(Ok(event)) => assert_eq!(event.seq, 1001),
                other => panic!("{:?}", other.map(|r| r.map(|e| e.seq))),
            }
        }
        // A burst wakes a waiting subscriber once, not once an event.
        let mut next = std::pin::pin!(a.recv());
        assert!(next.as_mut().poll(&mut cx).is_pending());
        for seq in 1002..1010 {
            bus.publish([("t".into(), event(seq, "a"))]);
        }
        assert_eq!(wakes.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_lagging_subscriber_is_cut_off_and_publishing_never_waits() {
        let bus = EventBus::new(2);
        let mut slow = bus.subscribe("t");
        let mut fast = bus.subscribe("t");
        for seq in 1..=5 {
            bus.publish([("t".into(), event(seq, "a"))]);
            assert_eq!(fast.try_recv().unwrap().seq, seq);
        }
        // Cut off at the third event: the two waiting were dropped, nothing more came.
        assert_eq!(slow.try_recv().unwrap_err(), TryRecvError::CutOff);
        assert_eq!(lock(&slow.queue.waiting).bytes, 0);
    }

    #[test]
    fn queues_are_bounded_in_bytes_and_one_event_always_fits() {
        let one = held_bytes(&event(1, "a"));
        let bus = EventBus::with_bounds(Bounds {
            events: 1000,
            bytes: 3 * one,
            streams_per_tenant: 10,
        });
        let mut slow = bus.subscribe("t");
        let mut big = bus.subscribe("t");
        for seq in 1..=3 {
            bus.publish([("t".into(), event(seq, "a"))]);
        }
        assert_eq!(lock(&slow.queue.waiting).bytes, 3 * one);
        assert_eq!(drain(&mut big), [1, 2, 3]);
        // One more byte's worth than fits: cut off, and what it held is freed.
        bus.publish([("t".into(), event(4, "a"))]);
        assert_eq!(slow.try_recv().unwrap_err(), TryRecvError::CutOff);
        assert_eq!(lock(&slow.queue.waiting).bytes, 0);
        // An event larger than the whole bound reaches a subscriber that keeps up…
        assert_eq!(drain(&mut big), [4]);
        let huge = |seq| {
            let mut e = event(seq, "a");
            e.data = crate::store::EventData::of(&"x".repeat(10 * one));
            e
        };
        bus.publish([("t".into(), huge(5))]);
        assert_eq!(drain(&mut big), [5]);
        // …but not one that has another waiting.
        bus.publish([("t".into(), event(6, "a")), ("t".into(), huge(7))]);
        assert_eq!(big.try_recv().unwrap_err(), TryRecvError::CutOff);
    }

    #[test]
    fn streams_are_capped_per_tenant_and_slots_come_back() {
        let bus = EventBus::with_bounds(Bounds {
            events: 16,
            bytes: 1 << 20,
            streams_per_tenant: 2,
        });
        let one = bus.open_stream("t", Interest::Tenant).unwrap();
        let two = bus
            .open_stream("t", Interest::Jobs(vec!["a".into()]))
            .unwrap();
        assert_eq!(
            bus.open_stream("t", Interest::Service("x".into())).err(),
            Some(AtStreamCap { limit: 2 })
        );
        // Another tenant has its own slots; waits are not streams.
        let _other = bus.open_stream("u", Interest::Tenant).unwrap();
        let _wait = bus.subscribe_to("t", Interest::Jobs(vec!["a".into()]));
        drop(one);
        let _three = bus.open_stream("t", Interest::Tenant).unwrap();
        drop(two);
        drop(_three);
        drop(_wait);
        // Everything left: nothing of the tenant stays in the index.
        assert!(!lock(&bus.shared.index).tenants.contains_key("t"));
    }
}
