//! Waiting by push: every job a client waits on is woken by its `done` event from one
//! shared subscription to `GET /v1/events`, so thousands of waits cost one connection.
//! A state machine with injected time, driven by the facades' one connection loop like
//! any [`EventProtocol`] (its stream is a routing [`Follower`]).
//!
//! What makes it exact is the event position every job answer carries
//! (`Jobwire-Last-Event-Id`): each change of the job that the answer does not show has a
//! higher event id. A wait registers the job with that position:
//!
//! - no stream running: the stream starts from the lowest position registered before it
//!   connects, so it replays whatever those jobs did since;
//! - a stream running from `from` that has seen up to `seen`: a position at or above
//!   `seen` will see all of the job's later events; one between `from` and `seen` is
//!   answered from the `done`s the stream saw recently for jobs no one waited on (kept
//!   while the record of them is complete); one a little before `from` (waits registered
//!   out of order, as threads do) restarts the stream from there, a replay of a few
//!   events; anything else, or no position at all, must re-read the job first
//!   ([`Registration::Recheck`]) and register again with the fresh position.
//!
//! When the server has no event stream (404, 501, a proxy that does not pass
//! `text/event-stream`) or it keeps failing, every wait falls back to long-polling for a
//! while ([`Registration::LongPoll`]). A 410 (the resume point is gone) makes every
//! waiter re-read its job.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use jobwire_core::push::{Registration, Watchlist};
//! use jobwire_core::stream::{EventProtocol, StreamStep};
//!
//! let now = Instant::now();
//! let mut list = Watchlist::new(Duration::from_secs(45), 1);
//! let Registration::Waiting(ticket) = list.register(now, "job_1", Some(40)) else { panic!() };
//! assert!(matches!(list.step(now), StreamStep::Connect { pause } if pause.is_zero()));
//! // `list.follower()` now asks for `Last-Event-ID: 40`; the facade's connection loop
//! // sends it and reports the answer, then hands out `take_wakes()`.
//! list.cancel(ticket);
//! assert!(matches!(list.step(now), StreamStep::Stop));
//! ```
//!
//! [`EventProtocol`]: crate::stream::EventProtocol

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::event::FinishedJob;
use crate::follow::{FollowOutput, Follower, StreamTarget};
use crate::stream::{EventProtocol, StreamStep};

/// How many recent `done`s are remembered for waits that register late.
const RECENT_DONE: usize = 4096;
/// How many bytes of finished jobs those keep, at most: past it, the oldest are kept as
/// the fact alone, and a late wait for one reads its job. Without it, 4,096 `done`s of
/// up to 256 KiB each could hold a gigabyte, and the jobs a client never waited on —
/// thousands of blocks of every size, living half a minute each — fragmented its heap.
const RECENT_DONE_BYTES: usize = 1 << 20;
/// How far before a running stream's start a registration may be and still be answered
/// by restarting the stream from it (a replay of at most this many events), rather than
/// by a read of the job.
const MAX_REWIND: u64 = 10_000;
/// How long waits long-poll after the event stream proved unavailable.
const UNAVAILABLE_FOR: Duration = Duration::from_secs(60);

/// A registered wait; give it back to [`Watchlist::cancel`] when the wait ends early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket(u64);

/// The answer to a wait's registration, with `W` what a registered wait holds: the
/// [`Ticket`] of a [`Watchlist`], the [`Joined`] wake channel of a [`Hub`], the handle a
/// facade's waiter blocks or `.await`s on. Exhaustive: a new answer is a compile error
/// in every driver.
#[derive(Debug, Clone, PartialEq)]
pub enum Registration<W> {
    /// The job already finished: its `done`, to decode ([`FinishedJob::decode`]).
    Finished(FinishedJob),
    /// Registered: a [`Wake`] for it will come.
    Waiting(W),
    /// Not registered: read the job (`GET`), then register again with its new position.
    Recheck,
    /// Not registered: wait by long-poll; the event stream is not available.
    LongPoll,
}

impl<W> Registration<W> {
    /// The same answer with the registered wait made into `V`.
    pub fn map<V>(self, f: impl FnOnce(W) -> V) -> Registration<V> {
        match self {
            Registration::Finished(job) => Registration::Finished(job),
            Registration::Waiting(w) => Registration::Waiting(f(w)),
            Registration::Recheck => Registration::Recheck,
            Registration::LongPoll => Registration::LongPoll,
        }
    }

    /// The registered wait, or the [`Wake`] the answer already is.
    ///
    /// ```
    /// use jobwire_core::push::{Registration, Wake};
    /// assert_eq!(Registration::Waiting(7).into_wake(), Ok(7));
    /// assert_eq!(Registration::<u8>::Recheck.into_wake(), Err(Wake::Recheck));
    /// ```
    pub fn into_wake(self) -> Result<W, Wake> {
        match self {
            Registration::Finished(job) => Err(Wake::Done(job)),
            Registration::Waiting(w) => Ok(w),
            Registration::Recheck => Err(Wake::Recheck),
            Registration::LongPoll => Err(Wake::LongPoll),
        }
    }
}

/// Why a waiter is woken; it is no longer registered. Exhaustive.
#[derive(Debug, Clone, PartialEq)]
pub enum Wake {
    /// The job finished: its `done`, to decode ([`FinishedJob::decode`]).
    Done(FinishedJob),
    /// The stream lost track (410): read the job and register again.
    Recheck,
    /// The event stream is not available: wait by long-poll.
    LongPoll,
}

#[derive(Debug)]
enum Stream {
    Stopped,
    /// Waits registered, not yet connected: starts from the lowest position.
    Starting {
        from: u64,
    },
    /// Connected (or reconnecting) since `from`.
    Running {
        follower: Box<Follower>,
        from: u64,
    },
}

/// The `done`s seen recently, complete for every event id above `complete_after`: the
/// final job of those no one waited on (the newest, up to [`RECENT_DONE_BYTES`]), only
/// the fact for the others.
#[derive(Debug, Default)]
struct RecentDone {
    jobs: HashMap<String, Option<FinishedJob>>,
    order: VecDeque<(u64, String)>,
    complete_after: u64,
    /// The jobs kept whole, oldest first, and their bytes.
    kept: VecDeque<String>,
    bytes: usize,
}

impl RecentDone {
    fn reset(&mut self, from: u64) {
        *self = RecentDone {
            complete_after: from,
            ..RecentDone::default()
        };
    }

    /// Remembers `job_id`'s `done` (event `id`), with the job when no one took it.
    fn remember(&mut self, id: u64, job_id: String, job: Option<FinishedJob>) {
        if let Some(job) = &job {
            self.bytes += job.json_len();
            self.kept.push_back(job_id.clone());
        }
        if let Some(Some(old)) = self.jobs.insert(job_id.clone(), job) {
            self.bytes -= old.json_len();
        }
        self.order.push_back((id, job_id));
        while self.order.len() > RECENT_DONE {
            if let Some((id, job_id)) = self.order.pop_front() {
                self.forget(&job_id);
                self.complete_after = self.complete_after.max(id);
            }
        }
        while self.bytes > RECENT_DONE_BYTES {
            let Some(job_id) = self.kept.pop_front() else {
                break;
            };
            // Keep the fact, let the job go.
            if let Some(old) = self.jobs.get_mut(&job_id).and_then(Option::take) {
                self.bytes -= old.json_len();
            }
        }
        // Jobs forgotten meanwhile leave `kept` once they are its oldest, so it stays
        // within the `done`s remembered.
        while self
            .kept
            .front()
            .is_some_and(|front| !matches!(self.jobs.get(front), Some(Some(_))))
        {
            self.kept.pop_front();
        }
    }

    fn forget(&mut self, job_id: &str) {
        if let Some(Some(old)) = self.jobs.remove(job_id) {
            self.bytes -= old.json_len();
        }
    }
}

/// Waits on many jobs over one event stream; see the module docs.
#[derive(Debug)]
pub struct Watchlist {
    idle_timeout: Duration,
    seed: u64,
    /// The stream's reads in ticks ([`Follower::reads_in_ticks`]).
    tick: Option<Duration>,
    /// The largest event the stream reads ([`Follower::event_limit`]).
    event_limit: usize,
    stream: Stream,
    waiters: HashMap<Ticket, String>,
    by_job: HashMap<String, Vec<Ticket>>,
    next_ticket: u64,
    recent: RecentDone,
    unavailable_until: Option<Instant>,
    wakes: Vec<(Ticket, Wake)>,
}

impl Watchlist {
    /// A watchlist whose stream is taken for dead after `idle_timeout` of silence;
    /// `seed` drives the jitter of reconnects.
    pub fn new(idle_timeout: Duration, seed: u64) -> Self {
        Watchlist {
            idle_timeout,
            seed,
            tick: None,
            event_limit: crate::sse::SseDecoder::DEFAULT_LIMIT,
            stream: Stream::Stopped,
            waiters: HashMap::new(),
            by_job: HashMap::new(),
            next_ticket: 0,
            recent: RecentDone::default(),
            unavailable_until: None,
            wakes: Vec::new(),
        }
    }

    /// Reads the stream in ticks of at most `tick` (see [`Follower::reads_in_ticks`]):
    /// for a driver that cannot cut a read short, so it stops within a tick once nobody
    /// waits or the hub closes.
    pub fn reads_in_ticks(mut self, tick: Duration) -> Self {
        self.tick = Some(tick);
        self
    }

    /// Reads events of at most `limit` bytes ([`Follower::event_limit`]). A larger one
    /// wakes every waiter to read its job ([`Wake::Recheck`]); their next registrations
    /// start the stream again after it.
    pub fn event_limit(mut self, limit: usize) -> Self {
        self.event_limit = limit;
        self
    }

    /// Registers a wait for `job_id`, last seen at event `position` (from its last
    /// answer's `Jobwire-Last-Event-Id`).
    pub fn register(
        &mut self,
        now: Instant,
        job_id: &str,
        position: Option<u64>,
    ) -> Registration<Ticket> {
        if self.unavailable_until.is_some_and(|until| now < until) {
            return Registration::LongPoll;
        }
        let Some(position) = position else {
            return Registration::Recheck;
        };
        match &mut self.stream {
            Stream::Stopped => self.stream = Stream::Starting { from: position },
            Stream::Starting { from } => *from = (*from).min(position),
            Stream::Running { from, .. } if position < *from => {
                if *from - position > MAX_REWIND {
                    return Registration::Recheck;
                }
                // Restart from the lower position: everyone registered replays from
                // there, and the old connection is dropped at the driver's next step.
                self.stream = Stream::Starting { from: position };
            }
            Stream::Running { follower, from } => {
                let seen = follower.last_event_id().unwrap_or(*from);
                if position < seen {
                    // Some of its events may have gone by before it registered.
                    if self.recent.complete_after > position {
                        return Registration::Recheck;
                    }
                    match self.recent.jobs.get(job_id) {
                        Some(Some(job)) => return Registration::Finished(job.clone()),
                        // Finished, handed to other waiters, not kept: read it.
                        Some(None) => return Registration::Recheck,
                        None => {}
                    }
                }
            }
        }
        let ticket = Ticket(self.next_ticket);
        self.next_ticket += 1;
        self.waiters.insert(ticket, job_id.to_owned());
        self.by_job
            .entry(job_id.to_owned())
            .or_default()
            .push(ticket);
        Registration::Waiting(ticket)
    }

    /// Forgets a wait that ended without a wake (its deadline passed, it was dropped).
    pub fn cancel(&mut self, ticket: Ticket) {
        let Some(job_id) = self.waiters.remove(&ticket) else {
            return;
        };
        if let Some(tickets) = self.by_job.get_mut(&job_id) {
            tickets.retain(|t| *t != ticket);
            if tickets.is_empty() {
                self.by_job.remove(&job_id);
            }
        }
    }

    /// How many waits are registered.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// The wakes decided since the last call, to hand to their waiters.
    pub fn take_wakes(&mut self) -> Vec<(Ticket, Wake)> {
        std::mem::take(&mut self.wakes)
    }

    /// The driver stopped without being told to (its thread or task is gone): every
    /// waiter long-polls instead, and the next registration starts afresh.
    pub fn abandon(&mut self) {
        for (ticket, _) in self.waiters.drain() {
            self.wakes.push((ticket, Wake::LongPoll));
        }
        self.by_job.clear();
        self.stream = Stream::Stopped;
    }

    /// Hands a finished job to its waiters: moved to the last of them (with thousands of
    /// waits, every `done` has one waiter and nothing is copied), kept only when no one
    /// took it.
    fn on_done(&mut self, id: u64, job: FinishedJob) {
        let mut tickets = self.by_job.remove(job.job_id()).unwrap_or_default();
        let job_id = job.job_id().to_owned();
        let Some(last) = tickets.pop() else {
            self.recent.remember(id, job_id, Some(job));
            return;
        };
        self.recent.remember(id, job_id, None);
        for ticket in tickets {
            self.waiters.remove(&ticket);
            self.wakes.push((ticket, Wake::Done(job.clone())));
        }
        self.waiters.remove(&last);
        self.wakes.push((last, Wake::Done(job)));
    }

    /// Every waiter learns the stream is no more: re-read on 410 and after an event too
    /// large to read (the jobs' reads are the answer, and the stream starts again after
    /// it), long-poll otherwise.
    fn give_up(&mut self, now: Instant, error: &Error) {
        let unreadable = matches!(error, Error::TooLarge { .. });
        let wake = if unreadable || error.status().is_some_and(|s| s == http::StatusCode::GONE) {
            Wake::Recheck
        } else {
            self.unavailable_until = now.checked_add(UNAVAILABLE_FOR);
            Wake::LongPoll
        };
        for (ticket, _) in self.waiters.drain() {
            self.wakes.push((ticket, wake.clone()));
        }
        self.by_job.clear();
        self.stream = Stream::Stopped;
    }
}

impl EventProtocol for Watchlist {
    /// The watchlist hands nothing to a user: it wakes its waiters ([`take_wakes`]) and
    /// stops when none is left.
    ///
    /// [`take_wakes`]: Watchlist::take_wakes
    type Output = Infallible;

    fn step(&mut self, now: Instant) -> StreamStep<Infallible> {
        loop {
            if self.waiters.is_empty() {
                self.stream = Stream::Stopped;
                self.recent.reset(0);
                return StreamStep::Stop;
            }
            let follower = match &mut self.stream {
                // Waiters but no stream: only after a failure woke everyone, which left
                // no waiters; nothing to do but stop.
                Stream::Stopped => return StreamStep::Stop,
                Stream::Starting { from } => {
                    let from = *from;
                    let mut follower =
                        Follower::new(StreamTarget::all(), self.idle_timeout, self.seed)
                            .routing()
                            .event_limit(self.event_limit)
                            .resume_after(from);
                    if let Some(tick) = self.tick {
                        follower = follower.reads_in_ticks(tick);
                    }
                    self.recent.reset(from);
                    self.stream = Stream::Running {
                        follower: Box::new(follower),
                        from,
                    };
                    continue;
                }
                Stream::Running { follower, .. } => follower,
            };
            match follower.step(now) {
                StreamStep::Connect { pause } => return StreamStep::Connect { pause },
                StreamStep::Read { deadline } => return StreamStep::Read { deadline },
                StreamStep::Yield(FollowOutput::Finished { id, job }) => self.on_done(id, job),
                // A router hands out only `done`s.
                StreamStep::Yield(FollowOutput::Event(_)) => {}
                StreamStep::Yield(FollowOutput::Fail(error)) => self.give_up(now, &error),
                // A multiplexed stream neither refreshes nor ends by itself.
                StreamStep::Yield(FollowOutput::Refresh { .. }) | StreamStep::Stop => {
                    self.give_up(now, &Error::Protocol("the event stream ended".into()))
                }
            }
        }
    }

    fn follower(&mut self) -> Option<&mut Follower> {
        match &mut self.stream {
            Stream::Running { follower, .. } => Some(follower),
            _ => None,
        }
    }
}

/// How a facade hands a [`Wake`] to one waiting caller: a oneshot sender in async code,
/// a channel sender in blocking code.
pub trait Waker: Send {
    /// Delivers the wake; a waiter that is gone meanwhile is no error.
    fn wake(self, wake: Wake);
}

/// A wait registered with a [`Hub`].
#[derive(Debug, Clone, PartialEq)]
pub struct Joined<R> {
    /// The registration, to [`leave`](Hub::leave) with if the wait ends early.
    pub ticket: Ticket,
    /// Where the wake will come.
    pub woken: R,
    /// No driver follows the stream: the caller must start one (or report
    /// [`Hub::driver_not_started`]).
    pub start_driver: bool,
}

/// What both facades' push state is: the [`Watchlist`], one waker per registered wait,
/// and whether a driver (task or thread) follows the stream. A facade keeps it behind a
/// mutex; its driver is the facade's one connection loop over this [`EventProtocol`].
#[derive(Debug)]
pub struct Hub<W> {
    list: Watchlist,
    wakers: HashMap<Ticket, W>,
    driving: bool,
    /// Closed for good ([`close`](Hub::close)): no stream any more.
    closed: bool,
}

impl<W: Waker> Hub<W> {
    /// A hub whose stream is taken for dead after `idle_timeout` of silence.
    pub fn new(idle_timeout: Duration, seed: u64) -> Self {
        Hub {
            list: Watchlist::new(idle_timeout, seed),
            wakers: HashMap::new(),
            driving: false,
            closed: false,
        }
    }

    /// Reads the stream in ticks of at most `tick` ([`Watchlist::reads_in_ticks`]).
    pub fn reads_in_ticks(mut self, tick: Duration) -> Self {
        self.list = self.list.reads_in_ticks(tick);
        self
    }

    /// Reads events of at most `limit` bytes ([`Watchlist::event_limit`]).
    pub fn event_limit(mut self, limit: usize) -> Self {
        self.list = self.list.event_limit(limit);
        self
    }

    /// Closes the hub for good (its client was closed): every wait is woken to
    /// long-poll, no wait registers any more, and the driver's next step is
    /// [`StreamStep::Stop`]. Whether a driver was running, to wait for.
    pub fn close(&mut self) -> bool {
        self.closed = true;
        self.list.abandon();
        self.deliver();
        self.driving
    }

    /// Registers a wait for `job_id` last seen at `position`; `channel` makes the waker
    /// and its receiving end when the wait is registered.
    pub fn join<R>(
        &mut self,
        now: Instant,
        job_id: &str,
        position: Option<u64>,
        channel: impl FnOnce() -> (W, R),
    ) -> Registration<Joined<R>> {
        if self.closed {
            return Registration::LongPoll;
        }
        self.list.register(now, job_id, position).map(|ticket| {
            let (waker, woken) = channel();
            self.wakers.insert(ticket, waker);
            let start_driver = !self.driving;
            self.driving = true;
            Joined {
                ticket,
                woken,
                start_driver,
            }
        })
    }

    /// A wait ended without its wake; `true` when no one waits any more.
    pub fn leave(&mut self, ticket: Ticket) -> bool {
        self.list.cancel(ticket);
        self.wakers.remove(&ticket);
        self.list.waiting() == 0
    }

    /// The driver could not be started: the wait long-polls instead.
    pub fn driver_not_started(&mut self, ticket: Ticket) {
        self.leave(ticket);
        self.driving = false;
    }

    /// The driver ended without [`StreamStep::Stop`] (a panic, its runtime shut down):
    /// every wait long-polls instead.
    pub fn driver_failed(&mut self) {
        self.list.abandon();
        self.deliver();
        self.driving = false;
    }

    fn deliver(&mut self) {
        for (ticket, wake) in self.list.take_wakes() {
            if let Some(waker) = self.wakers.remove(&ticket) {
                waker.wake(wake);
            }
        }
    }
}

impl<W: Waker> EventProtocol for Hub<W> {
    /// Nothing: the hub wakes whom the stream woke at each step.
    type Output = Infallible;

    /// The driver's next step; wakes whom the stream woke. After [`StreamStep::Stop`]
    /// the driver must end: the next wait starts another.
    fn step(&mut self, now: Instant) -> StreamStep<Infallible> {
        let step = if self.closed {
            StreamStep::Stop
        } else {
            self.list.step(now)
        };
        self.deliver();
        if matches!(step, StreamStep::Stop) {
            self.driving = false;
        }
        step
    }

    fn follower(&mut self) -> Option<&mut Follower> {
        self.list.follower()
    }
}

/// Held by a facade's driver while it follows the stream: dropped without
/// [`disarm`](Self::disarm) — the driver panicked, or its runtime shut down under it — it
/// tells the hub ([`Hub::driver_failed`]), so no wait is left without anyone to wake it.
#[derive(Debug)]
pub struct DriverGuard<'a, W: Waker> {
    hub: &'a std::sync::Mutex<Hub<W>>,
    armed: bool,
}

impl<'a, W: Waker> DriverGuard<'a, W> {
    /// Guards the driver of `hub`.
    pub fn new(hub: &'a std::sync::Mutex<Hub<W>>) -> Self {
        DriverGuard { hub, armed: true }
    }

    /// The driver stops as the hub told it to: nothing to report.
    pub fn disarm(&mut self) {
        self.armed = false;
    }
}

impl<W: Waker> Drop for DriverGuard<'_, W> {
    fn drop(&mut self) {
        if self.armed {
            // The hub is consistent between statements; a panic elsewhere changes nothing.
            let mut hub = self
                .hub
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            hub.driver_failed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{TransportError, TransportErrorKind};
    use crate::ClientConfig;
    use bytes::Bytes;

    const S: fn(u64) -> Duration = Duration::from_secs;

    fn head(status: u16, content_type: &str) -> http::response::Parts {
        http::Response::builder()
            .status(status)
            .header("content-type", content_type)
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    fn done(id: u64, job: &str) -> String {
        format!("id: {id}\nevent: done\ndata: {{\"job_id\":\"{job}\",\"id\":\"{job}\",\"service_id\":\"s\",\"status\":\"succeeded\"}}\n\n")
    }

    fn status(id: u64, job: &str) -> String {
        format!(
            "id: {id}\nevent: status\ndata: {{\"job_id\":\"{job}\",\"status\":\"running\"}}\n\n"
        )
    }

    fn config() -> ClientConfig {
        ClientConfig::default().validate().unwrap()
    }

    fn waiting(r: Registration<Ticket>) -> Ticket {
        match r {
            Registration::Waiting(t) => t,
            other => panic!("{other:?}"),
        }
    }

    /// The stream the list follows now.
    fn follower(list: &mut Watchlist) -> &mut Follower {
        list.follower().expect("a running stream")
    }

    /// Registers, connects and opens the stream.
    fn connected(list: &mut Watchlist, now: Instant) {
        assert_eq!(list.step(now), StreamStep::Connect { pause: S(0) });
        assert!(follower(list).on_head(now, &head(200, "text/event-stream")));
    }

    #[test]
    fn one_stream_from_the_lowest_position_wakes_each_job_at_its_done() {
        let t0 = Instant::now();
        let mut list = Watchlist::new(S(45), 1);
        let a = waiting(list.register(t0, "a", Some(20)));
        let b = waiting(list.register(t0, "b", Some(10)));
        let b2 = waiting(list.register(t0, "b", Some(12)));
        connected(&mut list, t0);
        let req = follower(&mut list).request(&config(), t0).unwrap();
        assert_eq!(req.headers()["last-event-id"], "10");
        assert_eq!(req.uri().path(), "/v1/events");
        follower(&mut list).on_chunk(
            t0,
            format!("{}{}{}", status(11, "b"), done(21, "b"), done(22, "x")).as_bytes(),
        );
        assert!(matches!(list.step(t0), StreamStep::Read { .. }));
        let mut wakes = list.take_wakes();
        wakes.sort_by_key(|(t, _)| t.0);
        assert_eq!(wakes.len(), 2);
        assert_eq!(wakes[0].0, b);
        assert_eq!(wakes[1].0, b2);
        assert!(matches!(&wakes[0].1, Wake::Done(job) if job.job_id() == "b"));
        assert_eq!(list.waiting(), 1);
        follower(&mut list).on_chunk(t0, done(23, "a").as_bytes());
        assert_eq!(list.step(t0), StreamStep::Stop, "the last wait ended");
        assert_eq!(list.take_wakes()[0].0, a);
    }

    #[test]
    fn late_registrations_are_answered_exactly() {
        let t0 = Instant::now();
        let mut list = Watchlist::new(S(45), 1);
        let _keep = waiting(list.register(t0, "keep", Some(100)));
        connected(&mut list, t0);
        follower(&mut list).on_chunk(
            t0,
            format!("{}{}", done(105, "x"), status(110, "y")).as_bytes(),
        );
        list.step(t0);
        // Behind what the stream has seen, finished meanwhile: answered from memory.
        assert!(
            matches!(list.register(t0, "x", Some(101)), Registration::Finished(j) if j.job_id() == "x")
        );
        // Behind, not finished: its done is still to come.
        let y = waiting(list.register(t0, "y", Some(101)));
        // Ahead of the stream: waits.
        let w = waiting(list.register(t0, "w", Some(500)));
        // No position: must read the job first.
        assert_eq!(list.register(t0, "v", None), Registration::Recheck);
        follower(&mut list).on_chunk(
            t0,
            format!("{}{}", done(501, "w"), done(502, "y")).as_bytes(),
        );
        list.step(t0);
        let woken: Vec<Ticket> = list.take_wakes().into_iter().map(|(t, _)| t).collect();
        assert_eq!(woken, [w, y]);
        // A second wait on a job already handed out registers late: it must read it.
        assert_eq!(list.register(t0, "w", Some(200)), Registration::Recheck);
    }

    /// Waits registered out of order (threads do): one from a little before the stream's
    /// start restarts it from there; one from long before must read its job.
    #[test]
    fn a_registration_before_the_start_rewinds_the_stream() {
        let t0 = Instant::now();
        let mut list = Watchlist::new(S(45), 1);
        let a = waiting(list.register(t0, "a", Some(20_000)));
        connected(&mut list, t0);
        follower(&mut list).on_chunk(t0, status(20_001, "a").as_bytes());
        assert!(matches!(list.step(t0), StreamStep::Read { .. }));
        assert_eq!(
            list.register(t0, "far", Some(20_000 - MAX_REWIND - 1)),
            Registration::Recheck
        );
        let b = waiting(list.register(t0, "b", Some(19_990)));
        // The old stream's chunks no longer count; the next step reconnects from 19 990.
        assert!(
            list.follower().is_none(),
            "no stream to report to until it restarts"
        );
        connected(&mut list, t0);
        let req = follower(&mut list).request(&config(), t0).unwrap();
        assert_eq!(req.headers()["last-event-id"], "19990");
        follower(&mut list).on_chunk(
            t0,
            format!(
                "{}{}{}",
                done(19_995, "b"),
                status(20_001, "a"),
                done(20_002, "a")
            )
            .as_bytes(),
        );
        assert_eq!(list.step(t0), StreamStep::Stop, "both woken by the replay");
        let mut woken: Vec<Ticket> = list.take_wakes().into_iter().map(|(t, _)| t).collect();
        woken.sort_by_key(|t| t.0);
        assert_eq!(woken, [a, b]);
    }

    #[test]
    fn a_forgotten_done_means_recheck() {
        let t0 = Instant::now();
        let mut list = Watchlist::new(S(45), 1);
        let _keep = waiting(list.register(t0, "keep", Some(0)));
        connected(&mut list, t0);
        let many: String = (1..=RECENT_DONE as u64 + 10)
            .map(|i| done(i, &format!("j{i}")))
            .collect();
        follower(&mut list).on_chunk(t0, many.as_bytes());
        list.step(t0);
        // j1..j10 were forgotten: a wait from before them cannot be answered from memory.
        assert_eq!(list.register(t0, "j3", Some(2)), Registration::Recheck);
        assert!(matches!(
            list.register(t0, "j20", Some(15)),
            Registration::Finished(_)
        ));
    }

    /// The jobs kept for late waits are bounded in bytes: past the bound the oldest are
    /// kept as the fact (a late wait reads the job), the newest whole.
    #[test]
    fn recent_jobs_are_kept_within_their_bytes() {
        let t0 = Instant::now();
        let mut list = Watchlist::new(S(45), 1);
        let _keep = waiting(list.register(t0, "keep", Some(0)));
        connected(&mut list, t0);
        // 64 `done`s of ~64 KiB: four times the bound.
        let pad = "x".repeat(64 * 1024);
        let many: String = (1..=64u64)
            .map(|i| {
                format!(
                    "id: {i}\nevent: done\ndata: {{\"id\":\"j{i}\",\"status\":\"succeeded\",\"output\":\"{pad}\"}}\n\n"
                )
            })
            .collect();
        follower(&mut list).on_chunk(t0, many.as_bytes());
        list.step(t0);
        assert!(
            list.recent.bytes <= RECENT_DONE_BYTES,
            "{}",
            list.recent.bytes
        );
        assert!(
            list.recent.bytes > RECENT_DONE_BYTES / 2,
            "{}",
            list.recent.bytes
        );
        let kept = list.recent.jobs.values().filter(|j| j.is_some()).count();
        assert_eq!(list.recent.kept.len(), kept);
        // The oldest: the fact only, so a read; the newest: the job itself.
        assert_eq!(list.register(t0, "j1", Some(0)), Registration::Recheck);
        match list.register(t0, "j64", Some(0)) {
            Registration::Finished(job) => assert_eq!(job.job_id(), "j64"),
            other => panic!("not kept: {}", matches!(other, Registration::Recheck)),
        }
        list.recent.reset(0);
        assert_eq!((list.recent.bytes, list.recent.kept.len()), (0, 0));
    }

    /// An event too large to read wakes every waiter to read its job, without sending
    /// anyone to long-polls: the next registrations (with the positions of those reads)
    /// start the stream again, after the event.
    #[test]
    fn an_event_too_large_makes_every_waiter_read_its_job() {
        let t0 = Instant::now();
        let mut list = Watchlist::new(S(45), 1).event_limit(128);
        let a = waiting(list.register(t0, "a", Some(1)));
        let b = waiting(list.register(t0, "b", Some(1)));
        connected(&mut list, t0);
        let big = format!(
            "id: 3\nevent: done\ndata: {{\"job_id\":\"b\",\"id\":\"b\",\"output\":\"{}\"}}\n\n",
            "x".repeat(200)
        );
        follower(&mut list).on_chunk(t0, format!("{}{big}", done(2, "a")).as_bytes());
        assert_eq!(list.step(t0), StreamStep::Stop);
        let mut wakes = list.take_wakes();
        wakes.sort_by_key(|(t, _)| t.0);
        assert!(matches!(&wakes[0], (t, Wake::Done(job)) if *t == a && job.job_id() == "a"));
        assert_eq!(wakes[1], (b, Wake::Recheck));
        let c = waiting(list.register(t0, "c", Some(3)));
        connected(&mut list, t0);
        let req = follower(&mut list).request(&config(), t0).unwrap();
        assert_eq!(req.headers()["last-event-id"], "3", "after the big event");
        list.cancel(c);
    }

    /// A `done` without input and output is routed like any other: its waiter reads the
    /// job (the wait's plan decides that).
    #[test]
    fn a_done_without_input_and_output_is_routed_as_incomplete() {
        let t0 = Instant::now();
        let mut list = Watchlist::new(S(45), 1);
        let a = waiting(list.register(t0, "a", Some(1)));
        connected(&mut list, t0);
        follower(&mut list).on_chunk(
            t0,
            b"id: 2\nevent: done\ndata: {\"job_id\":\"a\",\"id\":\"a\",\"status\":\"succeeded\",\"omitted\":[\"input\",\"output\"]}\n\n",
        );
        assert_eq!(list.step(t0), StreamStep::Stop);
        match list.take_wakes().pop() {
            Some((t, Wake::Done(job))) => {
                assert_eq!(t, a);
                assert!(!job.is_complete());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reconnects_resume_where_the_stream_was() {
        let t0 = Instant::now();
        let mut list = Watchlist::new(S(45), 1);
        let a = waiting(list.register(t0, "a", Some(5)));
        connected(&mut list, t0);
        follower(&mut list).on_chunk(t0, status(6, "a").as_bytes());
        list.step(t0);
        follower(&mut list).on_broken(t0, TransportError::new(TransportErrorKind::Io, "reset"));
        assert!(matches!(list.step(t0), StreamStep::Connect { .. }));
        assert_eq!(
            follower(&mut list)
                .request(&config(), t0)
                .unwrap()
                .headers()["last-event-id"],
            "6"
        );
        assert!(follower(&mut list).on_head(t0, &head(200, "text/event-stream")));
        // Silence is a dead stream: reconnect at once.
        follower(&mut list).on_silence(t0 + S(45));
        assert_eq!(list.step(t0 + S(45)), StreamStep::Connect { pause: S(0) });
        list.cancel(a);
        assert_eq!(list.step(t0 + S(45)), StreamStep::Stop);
    }

    #[test]
    fn without_events_waits_long_poll_and_after_410_they_recheck() {
        let t0 = Instant::now();
        let problem = |status: u16| {
            http::Response::builder()
                .status(status)
                .body(Bytes::from_static(b"not found"))
                .unwrap()
        };
        let mut list = Watchlist::new(S(45), 1);
        let a = waiting(list.register(t0, "a", Some(1)));
        list.step(t0);
        assert!(!follower(&mut list).on_head(t0, &head(404, "text/plain")));
        follower(&mut list).on_refused(t0, problem(404));
        assert_eq!(list.step(t0), StreamStep::Stop);
        assert_eq!(list.take_wakes(), [(a, Wake::LongPoll)]);
        assert_eq!(
            list.register(t0 + S(1), "b", Some(1)),
            Registration::LongPoll
        );
        // After a while the stream is tried again.
        assert!(matches!(
            list.register(t0 + S(61), "b", Some(1)),
            Registration::Waiting(_)
        ));

        let mut list = Watchlist::new(S(45), 1);
        let a = waiting(list.register(t0, "a", Some(1)));
        list.step(t0);
        follower(&mut list).on_refused(t0, problem(410));
        assert_eq!(list.step(t0), StreamStep::Stop);
        assert_eq!(list.take_wakes(), [(a, Wake::Recheck)]);
        assert!(matches!(
            list.register(t0, "a", Some(50)),
            Registration::Waiting(_)
        ));
    }

    #[test]
    fn an_abandoned_list_sends_everyone_to_long_polls() {
        let t0 = Instant::now();
        let mut list = Watchlist::new(S(45), 1);
        let a = waiting(list.register(t0, "a", Some(1)));
        connected(&mut list, t0);
        list.abandon();
        assert_eq!(list.take_wakes(), [(a, Wake::LongPoll)]);
        assert_eq!(list.step(t0), StreamStep::Stop);
        // Not a failure of the server: the next wait uses the stream again.
        assert!(matches!(
            list.register(t0, "b", Some(1)),
            Registration::Waiting(_)
        ));
    }

    impl Waker for std::sync::mpsc::Sender<Wake> {
        fn wake(self, wake: Wake) {
            let _ = self.send(wake);
        }
    }

    #[test]
    fn the_hub_starts_one_driver_and_wakes_through_the_wakers() {
        let t0 = Instant::now();
        let mut hub = Hub::new(S(45), 1);
        let join = |hub: &mut Hub<_>, job: &str| match hub.join(
            t0,
            job,
            Some(1),
            std::sync::mpsc::channel,
        ) {
            Registration::Waiting(Joined {
                ticket,
                woken,
                start_driver,
            }) => (ticket, woken, start_driver),
            other => panic!("{other:?}"),
        };
        let (_, a_woken, first) = join(&mut hub, "a");
        let (b, _, second) = join(&mut hub, "b");
        assert!(first && !second, "one driver");
        assert_eq!(hub.step(t0), StreamStep::Connect { pause: S(0) });
        assert!(hub
            .follower()
            .unwrap()
            .on_head(t0, &head(200, "text/event-stream")));
        hub.follower()
            .unwrap()
            .on_chunk(t0, done(2, "a").as_bytes());
        assert!(matches!(hub.step(t0), StreamStep::Read { .. }));
        assert!(matches!(a_woken.try_recv(), Ok(Wake::Done(job)) if job.job_id() == "a"));
        assert!(hub.leave(b), "no one waits any more");
        assert_eq!(hub.step(t0), StreamStep::Stop);
        // The next wait starts a driver again; a driver that dies sends it to long-polls.
        let (_, c_woken, again) = join(&mut hub, "c");
        assert!(again);
        hub.driver_failed();
        assert_eq!(c_woken.try_recv(), Ok(Wake::LongPoll));
    }

    #[test]
    fn a_closed_hub_stops_its_driver_and_sends_waits_to_long_polls() {
        let t0 = Instant::now();
        let mut hub = Hub::new(S(45), 1);
        let woken = match hub.join(t0, "a", Some(1), std::sync::mpsc::channel) {
            Registration::Waiting(Joined { woken, .. }) => woken,
            other => panic!("{other:?}"),
        };
        assert_eq!(hub.step(t0), StreamStep::Connect { pause: S(0) });
        assert!(hub.close(), "a driver runs: wait for it");
        assert_eq!(woken.try_recv(), Ok(Wake::LongPoll));
        assert_eq!(hub.step(t0), StreamStep::Stop);
        assert!(matches!(
            hub.join(t0, "b", Some(1), std::sync::mpsc::channel),
            Registration::LongPoll
        ));
        assert!(!hub.close(), "nothing runs any more");
    }

    #[test]
    fn a_driver_guard_dropped_armed_sends_waits_to_long_polls() {
        let t0 = Instant::now();
        let hub = std::sync::Mutex::new(Hub::new(S(45), 1));
        let join = || match hub
            .lock()
            .unwrap()
            .join(t0, "a", Some(1), std::sync::mpsc::channel)
        {
            Registration::Waiting(Joined { woken, .. }) => woken,
            other => panic!("{other:?}"),
        };
        let woken = join();
        let mut guard = DriverGuard::new(&hub);
        guard.disarm();
        drop(guard);
        assert!(woken.try_recv().is_err(), "a disarmed guard says nothing");
        drop(DriverGuard::new(&hub));
        assert_eq!(woken.try_recv(), Ok(Wake::LongPoll));
    }
}
