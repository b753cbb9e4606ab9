//! Waiting by push: every job a client waits on is woken by its `done` event from one
//! shared subscription to `GET /v1/events`, so thousands of waits cost one connection.
//! A state machine with injected time, driven by the facades like [`Follower`] (which it
//! uses for the stream itself).
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
//! use jobwire_core::push::{HubStep, Registration, Watchlist};
//!
//! let now = Instant::now();
//! let mut list = Watchlist::new(Duration::from_secs(45), 1);
//! let Registration::Waiting(ticket) = list.register(now, "job_1", Some(40)) else { panic!() };
//! assert_eq!(list.next(now), HubStep::Connect { pause: Duration::ZERO });
//! // `list.request(&config)` now carries `Last-Event-ID: 40`; the facade sends it and
//! // reports the answer with `on_head`, `on_chunk`, …, then hands out `take_wakes()`.
//! list.cancel(ticket);
//! assert_eq!(list.next(now), HubStep::Stop);
//! ```
//!
//! [`Follower`]: crate::follow::Follower

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::config::ClientConfig;
use crate::error::{Error, TransportError};
use crate::event::FinishedJob;
use crate::follow::{FollowStep, Follower, StreamTarget};

/// How many recent `done`s are remembered for waits that register late.
const RECENT_DONE: usize = 4096;
/// How far before a running stream's start a registration may be and still be answered
/// by restarting the stream from it (a replay of at most this many events), rather than
/// by a read of the job.
const MAX_REWIND: u64 = 10_000;
/// How long waits long-poll after the event stream proved unavailable.
const UNAVAILABLE_FOR: Duration = Duration::from_secs(60);

/// A registered wait; give it back to [`Watchlist::cancel`] when the wait ends early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket(u64);

/// The answer to [`Watchlist::register`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Registration {
    /// The job already finished: its `done`, to decode ([`FinishedJob::decode`]).
    Finished(FinishedJob),
    /// Registered: a [`Wake`] for this ticket will come.
    Waiting(Ticket),
    /// Not registered: read the job (`GET`), then register again with its new position.
    Recheck,
    /// Not registered: wait by long-poll; the event stream is not available.
    LongPoll,
}

/// Why a waiter is woken; it is no longer registered.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Wake {
    /// The job finished: its `done`, to decode ([`FinishedJob::decode`]).
    Done(FinishedJob),
    /// The stream lost track (410): read the job and register again.
    Recheck,
    /// The event stream is not available: wait by long-poll.
    LongPoll,
}

/// What a facade's `watch` answers a wait: [`Registration`], with the facade's own
/// handle `W` on a registered wait (the thing to block or `.await` on).
#[derive(Debug)]
#[non_exhaustive]
pub enum Watch<W> {
    /// The job already finished: its `done`, to decode ([`FinishedJob::decode`]).
    Finished(FinishedJob),
    /// Registered: wait on `W` for the wake.
    Waiting(W),
    /// Read the job, then watch again.
    Recheck,
    /// Long-poll instead.
    LongPoll,
}

/// What the facade's stream driver should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HubStep {
    /// Sleep `pause`, send [`Watchlist::request`], report the answer.
    Connect {
        /// How long to wait first.
        pause: Duration,
    },
    /// Read the next chunk; at `deadline` report [`Watchlist::on_silence`].
    Read {
        /// The watchdog's deadline.
        deadline: Instant,
    },
    /// No one waits: close the stream, stop driving.
    Stop,
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
/// final job of those no one waited on, only the fact for those already handed out.
#[derive(Debug, Default)]
struct RecentDone {
    jobs: HashMap<String, Option<FinishedJob>>,
    order: VecDeque<(u64, String)>,
    complete_after: u64,
}

impl RecentDone {
    fn reset(&mut self, from: u64) {
        self.jobs.clear();
        self.order.clear();
        self.complete_after = from;
    }

    /// Remembers `job_id`'s `done` (event `id`), with the job when no one took it.
    fn remember(&mut self, id: u64, job_id: String, job: Option<FinishedJob>) {
        self.jobs.insert(job_id.clone(), job);
        self.order.push_back((id, job_id));
        while self.order.len() > RECENT_DONE {
            if let Some((id, job_id)) = self.order.pop_front() {
                self.jobs.remove(&job_id);
                self.complete_after = self.complete_after.max(id);
            }
        }
    }
}

/// Waits on many jobs over one event stream; see the module docs.
#[derive(Debug)]
pub struct Watchlist {
    idle_timeout: Duration,
    seed: u64,
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
            stream: Stream::Stopped,
            waiters: HashMap::new(),
            by_job: HashMap::new(),
            next_ticket: 0,
            recent: RecentDone::default(),
            unavailable_until: None,
            wakes: Vec::new(),
        }
    }

    /// Registers a wait for `job_id`, last seen at event `position` (from its last
    /// answer's `Jobwire-Last-Event-Id`).
    pub fn register(&mut self, now: Instant, job_id: &str, position: Option<u64>) -> Registration {
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

    /// The step to take at `now`.
    pub fn next(&mut self, now: Instant) -> HubStep {
        loop {
            if self.waiters.is_empty() {
                self.stream = Stream::Stopped;
                self.recent.reset(0);
                return HubStep::Stop;
            }
            let (follower, _) = match &mut self.stream {
                Stream::Stopped => {
                    // Waiters but no stream: only after a failure woke everyone, which
                    // left no waiters; nothing to do but stop.
                    return HubStep::Stop;
                }
                Stream::Starting { from } => {
                    let from = *from;
                    let follower = Follower::new(StreamTarget::all(), self.idle_timeout, self.seed)
                        .routing()
                        .resume_after(from);
                    self.recent.reset(from);
                    self.stream = Stream::Running {
                        follower: Box::new(follower),
                        from,
                    };
                    continue;
                }
                Stream::Running { follower, from } => (follower, from),
            };
            match follower.next(now) {
                FollowStep::Connect { pause } => return HubStep::Connect { pause },
                FollowStep::Read { deadline } => return HubStep::Read { deadline },
                FollowStep::Finished { id, job } => self.on_done(id, job),
                // Only `done`s matter here.
                FollowStep::Event(_) => {}
                FollowStep::Fail(error) => self.give_up(now, &error),
                // A multiplexed stream neither refreshes nor ends by itself.
                _ => self.give_up(now, &Error::Protocol("the event stream ended".into())),
            }
        }
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

    /// Every waiter learns the stream is no more: re-read on 410, long-poll otherwise.
    fn give_up(&mut self, now: Instant, error: &Error) {
        let wake = if error.status().is_some_and(|s| s == http::StatusCode::GONE) {
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

    fn follower(&mut self) -> Option<&mut Follower> {
        match &mut self.stream {
            Stream::Running { follower, .. } => Some(follower),
            _ => None,
        }
    }

    /// The request that opens (or resumes) the stream, after [`HubStep::Connect`].
    pub fn request(&self, config: &ClientConfig) -> Result<http::Request<Bytes>, Error> {
        match &self.stream {
            Stream::Running { follower, .. } => follower.request(config),
            _ => Err(Error::Protocol("no event stream to connect".into())),
        }
    }

    /// See [`Follower::on_head`].
    pub fn on_head(&mut self, now: Instant, head: &http::response::Parts) -> bool {
        self.follower().is_some_and(|f| f.on_head(now, head))
    }

    /// See [`Follower::on_refused`].
    pub fn on_refused(&mut self, now: Instant, answer: http::Response<Bytes>) {
        if let Some(f) = self.follower() {
            f.on_refused(now, answer);
        }
    }

    /// See [`Follower::on_chunk`].
    pub fn on_chunk(&mut self, now: Instant, chunk: &[u8]) {
        if let Some(f) = self.follower() {
            f.on_chunk(now, chunk);
        }
    }

    /// See [`Follower::on_end`].
    pub fn on_end(&mut self, now: Instant) {
        if let Some(f) = self.follower() {
            f.on_end(now);
        }
    }

    /// See [`Follower::on_broken`].
    pub fn on_broken(&mut self, now: Instant, error: TransportError) {
        if let Some(f) = self.follower() {
            f.on_broken(now, error);
        }
    }

    /// See [`Follower::on_silence`].
    pub fn on_silence(&mut self, now: Instant) {
        if let Some(f) = self.follower() {
            f.on_silence(now);
        }
    }
}

/// How a facade hands a [`Wake`] to one waiting caller: a oneshot sender in async code,
/// a channel sender in blocking code.
pub trait Waker: Send {
    /// Delivers the wake; a waiter that is gone meanwhile is no error.
    fn wake(self, wake: Wake);
}

/// The answer to [`Hub::join`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Joined<R> {
    /// The job already finished: its `done`, to decode ([`FinishedJob::decode`]).
    Finished(FinishedJob),
    /// Registered: wait on `woken`. When `start_driver` is set, no driver runs: start
    /// one (or report [`Hub::driver_not_started`]).
    Waiting {
        /// The registration, to [`leave`](Hub::leave) with if the wait ends early.
        ticket: Ticket,
        /// Where the wake will come.
        woken: R,
        /// Whether the caller must start the stream's driver.
        start_driver: bool,
    },
    /// Read the job, then join again.
    Recheck,
    /// Long-poll instead.
    LongPoll,
}

/// What both facades' push state is: the [`Watchlist`], one waker per registered wait,
/// and whether a driver (task or thread) follows the stream. A facade keeps it behind a
/// mutex; its driver loop calls [`step`](Self::step) and reports to
/// [`list`](Self::list).
#[derive(Debug)]
pub struct Hub<W> {
    list: Watchlist,
    wakers: HashMap<Ticket, W>,
    driving: bool,
}

impl<W: Waker> Hub<W> {
    /// A hub whose stream is taken for dead after `idle_timeout` of silence.
    pub fn new(idle_timeout: Duration, seed: u64) -> Self {
        Hub {
            list: Watchlist::new(idle_timeout, seed),
            wakers: HashMap::new(),
            driving: false,
        }
    }

    /// Registers a wait for `job_id` last seen at `position`; `channel` makes the waker
    /// and its receiving end when the wait is registered.
    pub fn join<R>(
        &mut self,
        now: Instant,
        job_id: &str,
        position: Option<u64>,
        channel: impl FnOnce() -> (W, R),
    ) -> Joined<R> {
        match self.list.register(now, job_id, position) {
            Registration::Waiting(ticket) => {
                let (waker, woken) = channel();
                self.wakers.insert(ticket, waker);
                let start_driver = !self.driving;
                self.driving = true;
                Joined::Waiting {
                    ticket,
                    woken,
                    start_driver,
                }
            }
            Registration::Finished(job) => Joined::Finished(job),
            Registration::Recheck => Joined::Recheck,
            _ => Joined::LongPoll,
        }
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

    /// The driver's next step; wakes whom the stream woke. After [`HubStep::Stop`] the
    /// driver must end: the next wait starts another.
    pub fn step(&mut self, now: Instant) -> HubStep {
        let step = self.list.next(now);
        self.deliver();
        if step == HubStep::Stop {
            self.driving = false;
        }
        step
    }

    /// The driver ended without [`HubStep::Stop`] (a panic, its runtime shut down):
    /// every wait long-polls instead.
    pub fn driver_failed(&mut self) {
        self.list.abandon();
        self.deliver();
        self.driving = false;
    }

    /// The watchlist, to report what the stream did (`on_head`, `on_chunk`, …).
    pub fn list(&mut self) -> &mut Watchlist {
        &mut self.list
    }

    fn deliver(&mut self) {
        for (ticket, wake) in self.list.take_wakes() {
            if let Some(waker) = self.wakers.remove(&ticket) {
                waker.wake(wake);
            }
        }
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
    use crate::error::TransportErrorKind;

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

    fn waiting(r: Registration) -> Ticket {
        match r {
            Registration::Waiting(t) => t,
            other => panic!("{other:?}"),
        }
    }

    /// Registers, connects and opens the stream.
    fn connected(list: &mut Watchlist, now: Instant) {
        assert_eq!(list.next(now), HubStep::Connect { pause: S(0) });
        assert!(list.on_head(now, &head(200, "text/event-stream")));
    }

    #[test]
    fn one_stream_from_the_lowest_position_wakes_each_job_at_its_done() {
        let t0 = Instant::now();
        let mut list = Watchlist::new(S(45), 1);
        let a = waiting(list.register(t0, "a", Some(20)));
        let b = waiting(list.register(t0, "b", Some(10)));
        let b2 = waiting(list.register(t0, "b", Some(12)));
        connected(&mut list, t0);
        let req = list.request(&config()).unwrap();
        assert_eq!(req.headers()["last-event-id"], "10");
        assert_eq!(req.uri().path(), "/v1/events");
        list.on_chunk(
            t0,
            format!("{}{}{}", status(11, "b"), done(21, "b"), done(22, "x")).as_bytes(),
        );
        assert!(matches!(list.next(t0), HubStep::Read { .. }));
        let mut wakes = list.take_wakes();
        wakes.sort_by_key(|(t, _)| t.0);
        assert_eq!(wakes.len(), 2);
        assert_eq!(wakes[0].0, b);
        assert_eq!(wakes[1].0, b2);
        assert!(matches!(&wakes[0].1, Wake::Done(job) if job.job_id() == "b"));
        assert_eq!(list.waiting(), 1);
        list.on_chunk(t0, done(23, "a").as_bytes());
        assert_eq!(list.next(t0), HubStep::Stop, "the last wait ended");
        assert_eq!(list.take_wakes()[0].0, a);
    }

    #[test]
    fn late_registrations_are_answered_exactly() {
        let t0 = Instant::now();
        let mut list = Watchlist::new(S(45), 1);
        let _keep = waiting(list.register(t0, "keep", Some(100)));
        connected(&mut list, t0);
        list.on_chunk(
            t0,
            format!("{}{}", done(105, "x"), status(110, "y")).as_bytes(),
        );
        list.next(t0);
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
        list.on_chunk(
            t0,
            format!("{}{}", done(501, "w"), done(502, "y")).as_bytes(),
        );
        list.next(t0);
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
        list.on_chunk(t0, status(20_001, "a").as_bytes());
        assert!(matches!(list.next(t0), HubStep::Read { .. }));
        assert_eq!(
            list.register(t0, "far", Some(20_000 - MAX_REWIND - 1)),
            Registration::Recheck
        );
        let b = waiting(list.register(t0, "b", Some(19_990)));
        // The old stream's chunks no longer count; the next step reconnects from 19 990.
        list.on_chunk(t0, done(20_002, "a").as_bytes());
        connected(&mut list, t0);
        let req = list.request(&config()).unwrap();
        assert_eq!(req.headers()["last-event-id"], "19990");
        list.on_chunk(
            t0,
            format!(
                "{}{}{}",
                done(19_995, "b"),
                status(20_001, "a"),
                done(20_002, "a")
            )
            .as_bytes(),
        );
        assert_eq!(list.next(t0), HubStep::Stop, "both woken by the replay");
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
        list.on_chunk(t0, many.as_bytes());
        list.next(t0);
        // j1..j10 were forgotten: a wait from before them cannot be answered from memory.
        assert_eq!(list.register(t0, "j3", Some(2)), Registration::Recheck);
        assert!(matches!(
            list.register(t0, "j20", Some(15)),
            Registration::Finished(_)
        ));
    }

    #[test]
    fn reconnects_resume_where_the_stream_was() {
        let t0 = Instant::now();
        let mut list = Watchlist::new(S(45), 1);
        let a = waiting(list.register(t0, "a", Some(5)));
        connected(&mut list, t0);
        list.on_chunk(t0, status(6, "a").as_bytes());
        list.next(t0);
        list.on_broken(t0, TransportError::new(TransportErrorKind::Io, "reset"));
        assert!(matches!(list.next(t0), HubStep::Connect { .. }));
        assert_eq!(
            list.request(&config()).unwrap().headers()["last-event-id"],
            "6"
        );
        assert!(list.on_head(t0, &head(200, "text/event-stream")));
        // Silence is a dead stream: reconnect at once.
        list.on_silence(t0 + S(45));
        assert_eq!(list.next(t0 + S(45)), HubStep::Connect { pause: S(0) });
        list.cancel(a);
        assert_eq!(list.next(t0 + S(45)), HubStep::Stop);
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
        list.next(t0);
        assert!(!list.on_head(t0, &head(404, "text/plain")));
        list.on_refused(t0, problem(404));
        assert_eq!(list.next(t0), HubStep::Stop);
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
        list.next(t0);
        list.on_refused(t0, problem(410));
        assert_eq!(list.next(t0), HubStep::Stop);
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
        assert_eq!(list.next(t0), HubStep::Stop);
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
            Joined::Waiting {
                ticket,
                woken,
                start_driver,
            } => (ticket, woken, start_driver),
            other => panic!("{other:?}"),
        };
        let (_, a_woken, first) = join(&mut hub, "a");
        let (b, _, second) = join(&mut hub, "b");
        assert!(first && !second, "one driver");
        assert_eq!(hub.step(t0), HubStep::Connect { pause: S(0) });
        assert!(hub.list().on_head(t0, &head(200, "text/event-stream")));
        hub.list().on_chunk(t0, done(2, "a").as_bytes());
        assert!(matches!(hub.step(t0), HubStep::Read { .. }));
        assert!(matches!(a_woken.try_recv(), Ok(Wake::Done(job)) if job.job_id() == "a"));
        assert!(hub.leave(b), "no one waits any more");
        assert_eq!(hub.step(t0), HubStep::Stop);
        // The next wait starts a driver again; a driver that dies sends it to long-polls.
        let (_, c_woken, again) = join(&mut hub, "c");
        assert!(again);
        hub.driver_failed();
        assert_eq!(c_woken.try_recv(), Ok(Wake::LongPoll));
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
            Joined::Waiting { woken, .. } => woken,
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
