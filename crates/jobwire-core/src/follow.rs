//! Following one event stream as a state machine with injected time: connect, read,
//! resume with `Last-Event-ID` after a drop (no gap, no duplicate), back off after
//! failures, reconnect a stream that goes silent (the watchdog), re-read a job whose
//! events are gone (410), end after a job's `done` or at the call's deadline.
//!
//! A [`Follower`] is an [`EventProtocol`]: the facades drive it with their one
//! connection loop (see [`stream`](crate::stream)) and hand its [`FollowOutput`]s to the
//! caller, so both have the same behaviour and neither decides anything itself:
//!
//! ```
//! use std::time::{Duration, Instant};
//! use jobwire_core::follow::{FollowOutput, Follower, StreamTarget};
//! use jobwire_core::stream::{EventProtocol, StreamStep};
//!
//! let t0 = Instant::now();
//! let mut follower = Follower::new(StreamTarget::job("job_1"), Duration::from_secs(45), 7);
//! assert!(matches!(follower.step(t0), StreamStep::Connect { pause } if pause == Duration::ZERO));
//! // The facade sends `follower.request(&config, t0)`, gets a 200 `text/event-stream`…
//! let head = http::Response::builder()
//!     .header("content-type", "text/event-stream")
//!     .body(())
//!     .unwrap()
//!     .into_parts()
//!     .0;
//! assert!(follower.on_head(t0, &head));
//! // …and reads the body until the watchdog's deadline.
//! assert!(matches!(follower.step(t0), StreamStep::Read { deadline } if deadline == t0 + Duration::from_secs(45)));
//! follower.on_chunk(t0, b"id: 3\nevent: log\ndata: {\"job_id\":\"job_1\",\"line\":\"hi\"}\n\n");
//! assert!(matches!(follower.step(t0), StreamStep::Yield(FollowOutput::Event(e)) if e.id == 3));
//! ```
//!
//! [`EventProtocol`]: crate::stream::EventProtocol

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{self, HeaderValue};

use crate::backoff::{Backoff, Jitter};
use crate::config::ClientConfig;
use crate::deadline::{deadline_passed, time_left, within_deadline};
use crate::endpoint::{encode_component, error_from_response, finish, start_stream_request};
use crate::error::{duration_text, Error, TransportError};
use crate::event::{event_id, EventKind, FinishedJob, JobEvent};
use crate::options::CallOptions;
use crate::problem::status_meaning;
use crate::sse::{SseDecoder, SseError, SseEvent};
use crate::stream::{EventProtocol, StreamStep};
use crate::token::{authorize, SharedTokenSource};
use crate::transport::CallDeadline;
use crate::Job;

/// The reconnection delay before the server says otherwise (`retry:`).
const DEFAULT_RETRY: Duration = Duration::from_secs(1);
/// The longest pause between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Connection attempts in a row that deliver nothing before the follower gives up.
const MAX_ATTEMPTS: u32 = 8;

/// Which stream to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamTarget {
    /// One job's events (`GET /v1/jobs/{id}/events`); ends after its `done`.
    Job(String),
    /// Every event of the caller's jobs (`GET /v1/events`), optionally only of one
    /// service and of some jobs; does not end by itself.
    All {
        /// Only events of jobs of this service (id or name).
        service: Option<String>,
        /// Only events of these jobs (all jobs when empty).
        jobs: Vec<String>,
    },
}

impl StreamTarget {
    /// One job's stream.
    pub fn job(id: impl Into<String>) -> Self {
        StreamTarget::Job(id.into())
    }

    /// The multiplexed stream, unfiltered.
    pub fn all() -> Self {
        StreamTarget::All {
            service: None,
            jobs: Vec::new(),
        }
    }

    fn path(&self) -> Result<String, Error> {
        match self {
            StreamTarget::Job(id) => {
                if id.trim().is_empty() {
                    return Err(Error::Invalid {
                        what: "job id",
                        message: "must not be empty".into(),
                    });
                }
                Ok(format!("/v1/jobs/{}/events", encode_component(id)))
            }
            StreamTarget::All { service, jobs } => {
                let mut query = Vec::new();
                if let Some(service) = service {
                    query.push(format!("service={}", encode_component(service)));
                }
                for job in jobs {
                    query.push(format!("job={}", encode_component(job)));
                }
                if query.is_empty() {
                    Ok("/v1/events".to_owned())
                } else {
                    Ok(format!("/v1/events?{}", query.join("&")))
                }
            }
        }
    }

    fn is_job(&self) -> bool {
        matches!(self, StreamTarget::Job(_))
    }
}

/// What an event stream follows, as a facade's `EventStream` is set up before it starts:
/// the target, narrowed by service and jobs, and where to start.
///
/// ```
/// use jobwire_core::follow::{StreamSpec, StreamTarget};
/// let spec = StreamSpec::new(StreamTarget::all()).service("steps").after(41);
/// assert_eq!(spec.follower(std::time::Duration::from_secs(45), 1).last_event_id(), Some(41));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSpec {
    target: StreamTarget,
    after: Option<u64>,
}

impl StreamSpec {
    /// Follows `target` from its start (a job's first event; live events for all jobs).
    pub fn new(target: StreamTarget) -> Self {
        StreamSpec {
            target,
            after: None,
        }
    }

    /// Only events of jobs of this service (id or name); for the multiplexed stream.
    pub fn service(mut self, service: impl Into<String>) -> Self {
        if let StreamTarget::All { service: s, .. } = &mut self.target {
            *s = Some(service.into());
        }
        self
    }

    /// Only events of this job (repeat for several); for the multiplexed stream.
    pub fn job(mut self, id: impl Into<String>) -> Self {
        if let StreamTarget::All { jobs, .. } = &mut self.target {
            jobs.push(id.into());
        }
        self
    }

    /// Only events after this event id (the server replays those it still keeps).
    pub fn after(mut self, id: u64) -> Self {
        self.after = Some(id);
        self
    }

    /// The job whose stream this is, if it is one job's.
    pub fn job_id(&self) -> Option<&str> {
        match &self.target {
            StreamTarget::Job(id) => Some(id),
            StreamTarget::All { .. } => None,
        }
    }

    /// A follower of this stream (see [`Follower::new`]).
    pub fn follower(&self, idle_timeout: Duration, seed: u64) -> Follower {
        let follower = Follower::new(self.target.clone(), idle_timeout, seed);
        match self.after {
            Some(id) => follower.resume_after(id),
            None => follower,
        }
    }
}

/// Stamps the [`StreamSpec`] setters onto a facade's event stream held in `$field`.
#[doc(hidden)]
#[macro_export]
macro_rules! __stream_spec_setters {
    ($field:ident) => {
        $crate::__forward_setters! { $field:
            /// Only events of jobs of this service (id or name); for `client.events()`.
            fn service(service: impl Into<String>);
            /// Only events of this job (repeat for several); for `client.events()`.
            fn job(id: impl Into<String>);
            /// Only events after this event id (the server replays those it still keeps).
            fn after(id: u64);
        }
    };
}

/// What a follower hands its user ([`StreamStep::Yield`]). Exhaustive: a new output is
/// a compile error in every driver.
#[derive(Debug)]
pub enum FollowOutput {
    /// An event, for the caller.
    Event(JobEvent),
    /// A `done`, its job undecoded (a [`Follower::routing`] one hands these out).
    Finished {
        /// The event's id.
        id: u64,
        /// The job.
        job: FinishedJob,
    },
    /// `GET` the job `job_id` and report it with [`Follower::on_job`] (or give up with
    /// [`Follower::end`]): a job stream's events are gone (410), or a `done` came
    /// without the job's input and output (too large for an event) and the job read is
    /// the `done` to hand out.
    Refresh {
        /// The job to read.
        job_id: String,
    },
    /// An error for the caller; the stream is over.
    Fail(Error),
}

/// An event decoded and waiting to be handed out.
#[derive(Debug)]
enum Ready {
    Event(JobEvent),
    Finished {
        id: u64,
        job: FinishedJob,
    },
    /// A `done` (event `id`) without the job's input and output: read the job.
    Read {
        id: u64,
        job_id: String,
    },
}

#[derive(Debug)]
enum Phase {
    /// Not connected; connect at this time (`None`: at once).
    Closed {
        at: Option<Instant>,
    },
    /// Reading; the last byte arrived at `activity`.
    Open {
        activity: Instant,
    },
    /// A job stream answered 410: the job must be read.
    Refresh,
    /// A final error to hand out.
    Failed(Box<Error>),
    Ended,
}

/// The state of one followed stream; see the module docs.
#[derive(Debug)]
pub struct Follower {
    target: StreamTarget,
    idle_timeout: Duration,
    /// When the call following the stream must end ([`until`](Self::until)).
    deadline: Option<Instant>,
    decoder: SseDecoder,
    phase: Phase,
    /// The id of the last event handed out: resume after it, skip anything not above it.
    last_id: Option<u64>,
    /// After a 410 the resume point is gone: reconnect without it (still skipping).
    send_last_id: bool,
    ready: VecDeque<Result<Ready, Error>>,
    /// A `done` (its event id and job) whose job is being read ([`Ready::Read`]).
    reading: Option<(u64, String)>,
    /// `done`s are handed out undecoded ([`Follower::routing`]).
    routing: bool,
    /// The server's reconnection delay (`retry:`), the base of the back-off.
    retry: Duration,
    /// Connection attempts since the last one that delivered an event.
    attempts: u32,
    done: bool,
    jitter: Jitter,
    /// The longest a single read may wait, for a driver whose reads cannot be cut short
    /// ([`reads_in_ticks`](Self::reads_in_ticks)).
    tick: Option<Duration>,
    /// Extra headers of the stream's requests.
    options: Option<CallOptions>,
    /// The token source of the last request, told when a 401 turns its token down.
    token_source: Option<SharedTokenSource>,
    /// Whether a 401 already made the token source give a fresh token.
    refreshed: bool,
}

impl Follower {
    /// A follower of `target` that takes `idle_timeout` of silence for a dead stream;
    /// `seed` drives the jitter of its back-off (any value; fixed in tests).
    pub fn new(target: StreamTarget, idle_timeout: Duration, seed: u64) -> Self {
        Follower {
            target,
            idle_timeout,
            deadline: None,
            decoder: SseDecoder::new(),
            phase: Phase::Closed { at: None },
            last_id: None,
            send_last_id: true,
            ready: VecDeque::new(),
            reading: None,
            routing: false,
            retry: DEFAULT_RETRY,
            attempts: 0,
            done: false,
            jitter: Jitter::new(seed),
            tick: None,
            options: None,
            token_source: None,
            refreshed: false,
        }
    }

    /// For a driver that cannot cut a read short (a blocking one): no single read of the
    /// stream waits longer than `tick` (the requests' per-read timeout), and a read that
    /// times out before the watchdog's deadline is reported with
    /// [`on_read_timeout`](Self::on_read_timeout) and read again. So the driver looks up
    /// at least every `tick` — to stop when it is no longer needed, to end at the call's
    /// deadline.
    pub fn reads_in_ticks(mut self, tick: Duration) -> Self {
        self.tick = Some(tick);
        self
    }

    /// Takes an event whose data is longer than `limit` bytes for a stream that cannot
    /// be read on (default [`SseDecoder::DEFAULT_LIMIT`], the most a jobwire server
    /// sends): the stream ends with [`Error::TooLarge`] instead of reconnecting to the
    /// same event again and again.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use jobwire_core::follow::{FollowOutput, Follower, StreamTarget};
    /// use jobwire_core::stream::{EventProtocol, StreamStep};
    ///
    /// let now = Instant::now();
    /// let mut f = Follower::new(StreamTarget::job("j"), Duration::from_secs(45), 7).event_limit(16);
    /// f.on_chunk(now, b"id: 1\nevent: log\ndata: {\"job_id\":\"j\",\"line\":\"far too long\"}\n\n");
    /// assert!(matches!(f.step(now), StreamStep::Yield(FollowOutput::Fail(jobwire_core::Error::TooLarge { limit: 16, .. }))));
    /// assert!(matches!(f.step(now), StreamStep::Stop));
    /// ```
    pub fn event_limit(mut self, limit: usize) -> Self {
        self.decoder = SseDecoder::with_limit(limit);
        self
    }

    /// Sends `options`' extra headers with the stream's requests.
    pub fn options(mut self, options: CallOptions) -> Self {
        self.options = (!options.is_empty()).then_some(options);
        self
    }

    /// Starts after event `id` (as if it had been handed out): only later events come.
    pub fn resume_after(mut self, id: u64) -> Self {
        self.last_id = Some(id);
        self
    }

    /// Ends the stream with [`Error::Timeout`] at `deadline` (the call's, from the
    /// client's `within`): no read waits past it, no event is handed out after it.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use jobwire_core::follow::{FollowOutput, Follower, StreamTarget};
    /// use jobwire_core::stream::{EventProtocol, StreamStep};
    ///
    /// let now = Instant::now();
    /// let deadline = now + Duration::from_secs(1);
    /// let mut f = Follower::new(StreamTarget::all(), Duration::from_secs(45), 7).until(Some(deadline));
    /// assert!(matches!(f.step(deadline), StreamStep::Yield(FollowOutput::Fail(jobwire_core::Error::Timeout { .. }))));
    /// assert!(matches!(f.step(deadline), StreamStep::Stop));
    /// ```
    pub fn until(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// Hands `done`s out as [`FollowOutput::Finished`], their jobs undecoded, and only
    /// them: for a stream that routes `done`s to waiters, who decode their own. Other
    /// events only move the resume point.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use jobwire_core::follow::{FollowOutput, Follower, StreamTarget};
    /// use jobwire_core::stream::{EventProtocol, StreamStep};
    ///
    /// let now = Instant::now();
    /// let mut router = Follower::new(StreamTarget::all(), Duration::from_secs(45), 7).routing();
    /// router.on_chunk(now, b"id: 4\nevent: log\ndata: {\"job_id\":\"job_1\",\"line\":\"hi\"}\n\n\
    ///                      id: 5\nevent: done\ndata: {\"id\":\"job_1\"}\n\n");
    /// match router.step(now) {
    ///     StreamStep::Yield(FollowOutput::Finished { id, job }) => assert_eq!((id, job.job_id()), (5, "job_1")),
    ///     other => panic!("{other:?}"),
    /// }
    /// ```
    pub fn routing(mut self) -> Self {
        self.routing = true;
        self
    }

    /// The id of the last event handed out.
    pub fn last_event_id(&self) -> Option<u64> {
        self.last_id
    }

    /// The request that opens (or resumes) the stream at `now`, its read timeout cut to
    /// what is left of the call's deadline.
    pub fn request(
        &mut self,
        config: &ClientConfig,
        now: Instant,
    ) -> Result<http::Request<Bytes>, Error> {
        let path = self.target.path()?;
        let per_read = self
            .tick
            .map_or(self.idle_timeout, |tick| tick.min(self.idle_timeout));
        let mut builder = start_stream_request(config, &path, per_read);
        if let Some(id) = self.last_id.filter(|_| self.send_last_id) {
            builder = builder.header("last-event-id", HeaderValue::from(id));
        }
        let mut request = finish(builder, Bytes::new())?;
        within_deadline(&mut request, time_left(self.deadline, now))?;
        if let Some(deadline) = self.deadline {
            request.extensions_mut().insert(CallDeadline(deadline));
        }
        if let Some(options) = &self.options {
            options.add_headers(&mut request)?;
        }
        if let Some(source) = config.token_source_value() {
            authorize(&mut request, source.as_ref())?;
        }
        self.token_source = config.token_source_value().cloned();
        Ok(request)
    }

    /// Reports that the request could not be made (an invalid id, say): the stream is
    /// over with that error.
    pub fn on_unsendable(&mut self, error: Error) {
        self.fail(error);
    }

    /// Reports the head of an answer. `true`: it is the stream, read its body. `false`:
    /// it is not; read its (small) body and report it with [`on_refused`](Self::on_refused).
    pub fn on_head(&mut self, now: Instant, head: &http::response::Parts) -> bool {
        let is_stream = head.status == http::StatusCode::OK
            && head
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim_start().starts_with("text/event-stream"));
        if is_stream {
            self.decoder.reset_stream();
            self.phase = Phase::Open { activity: now };
        }
        is_stream
    }

    /// Reports an answer that was not the stream: an error answer, or a 200 of another
    /// kind (a proxy that does not pass event streams). What a status means — retry
    /// later or give up — is the one status table's ([`Problem::retryable_status`]).
    ///
    /// [`Problem::retryable_status`]: crate::Problem::retryable_status
    pub fn on_refused(&mut self, now: Instant, answer: http::Response<Bytes>) {
        let status = answer.status();
        if status == http::StatusCode::NO_CONTENT {
            // The standard way to say a stream is over (a job's, resumed after its done).
            self.end();
            return;
        }
        if status.is_success() {
            self.fail(Error::Protocol(format!(
                "the event stream answered {status} without text/event-stream; \
                 is a proxy in the way?"
            )));
            return;
        }
        let error = error_from_response(&answer);
        if status == http::StatusCode::UNAUTHORIZED && !self.refreshed {
            if let Some(source) = &self.token_source {
                // The token turned down: a fresh one, at once, once.
                source.invalidate();
                self.refreshed = true;
                self.phase = Phase::Closed { at: Some(now) };
                return;
            }
        }
        if status == http::StatusCode::GONE && self.target.is_job() {
            self.phase = Phase::Refresh;
        } else if status_meaning(status.as_u16()).retryable {
            let hint = match &error {
                Error::RateLimited { retry_after, .. } => *retry_after,
                _ => None,
            };
            self.retry_later(now, hint, error);
        } else {
            self.fail(error);
        }
    }

    /// Reports a chunk of the body.
    pub fn on_chunk(&mut self, now: Instant, chunk: &[u8]) {
        self.phase = Phase::Open { activity: now };
        let mut decoded = Vec::new();
        if let Err(SseError::TooLarge { limit }) = self.decoder.push(chunk, &mut decoded) {
            // The events before it are handed out. Reconnecting would only bring the same
            // event again: the stream is over, for its user to say so (`job.events()`)
            // or to read its jobs instead (a hub's waits).
            let kept = self.keep(decoded);
            self.ready.extend(kept);
            self.fail(Error::TooLarge {
                what: "an event",
                limit,
            });
            return;
        }
        if let Some(retry) = self.decoder.retry() {
            self.retry = retry.min(MAX_BACKOFF);
        }
        let kept = self.keep(decoded);
        self.ready.extend(kept);
    }

    /// The decoded events worth handing out: known kinds with ids above the last one.
    fn keep(&mut self, decoded: Vec<SseEvent>) -> Vec<Result<Ready, Error>> {
        let mut out = Vec::new();
        for sse in decoded {
            let read = match (self.routing, sse.event.as_str()) {
                (true, "done") => FinishedJob::from_sse(sse)
                    .map(|(id, job)| Some((id, Some(Ready::Finished { id, job })))),
                // A router reads only the position of the other events: their data is
                // for no one, and a bad one should not stop the stream.
                (true, kind) if EventKind::is_known(kind) => {
                    event_id(&sse).map(|id| Some((id, None)))
                }
                // A `done` without the job's input and output is handed out once the job
                // is read.
                (false, "done") => FinishedJob::from_sse(sse).and_then(|(id, job)| {
                    let ready = if job.is_complete() {
                        let done = EventKind::Done(Box::new(job.decode()?));
                        Ready::Event(JobEvent::new(id, job.job_id(), done))
                    } else {
                        Ready::Read {
                            id,
                            job_id: job.job_id().to_owned(),
                        }
                    };
                    Ok(Some((id, Some(ready))))
                }),
                _ => JobEvent::from_sse(&sse).map(|e| e.map(|e| (e.id, Some(Ready::Event(e))))),
            };
            match read {
                Ok(Some((id, ready))) => {
                    if self.last_id.is_some_and(|last| id <= last) {
                        continue;
                    }
                    self.last_id = Some(id);
                    self.attempts = 0;
                    out.extend(ready.map(Ok));
                }
                Ok(None) => {}
                Err(e) => out.push(Err(e)),
            }
        }
        out
    }

    /// Reports the end of the body. A job stream after its `done` is over; any other
    /// stream resumes.
    pub fn on_end(&mut self, now: Instant) {
        self.decoder.finish();
        if self.done_queued() {
            return;
        }
        let pause = if self.attempts == 0 {
            // The server closed a stream that was delivering: come back at its pace.
            self.attempts = 1;
            self.retry
        } else {
            self.backoff()
        };
        self.phase = Phase::Closed {
            at: Some(now + pause),
        };
    }

    /// Reports that connecting or reading failed below HTTP.
    pub fn on_broken(&mut self, now: Instant, error: TransportError) {
        self.decoder.finish();
        if self.done_queued() {
            return;
        }
        self.retry_later(now, None, Error::from(error));
    }

    /// Reports that the driver closed the stream's connection itself — before reading a
    /// job for a [`FollowOutput::Refresh`], so the read never waits for a connection the
    /// stream holds: an open stream reconnects at once after it, from where it was (a
    /// job's stream whose `done` came needs no more).
    pub fn on_closed(&mut self, now: Instant) {
        if let Phase::Open { .. } = self.phase {
            self.decoder.finish();
            if !self.done_queued() {
                self.phase = Phase::Closed { at: Some(now) };
            }
        }
    }

    /// Reports that nothing, not even a keep-alive, arrived by the `Read` deadline: at
    /// the call's deadline the stream is over (the next step says so), otherwise the
    /// watchdog takes the stream for dead and reconnects at once.
    pub fn on_silence(&mut self, now: Instant) {
        self.decoder.finish();
        if self.deadline.is_some_and(|d| now >= d) {
            return;
        }
        self.attempts = self.attempts.saturating_add(1);
        if self.attempts > MAX_ATTEMPTS {
            self.fail(Error::Timeout {
                what: format!(
                    "an event stream that stayed silent for {}, {} times in a row",
                    duration_text(self.idle_timeout),
                    MAX_ATTEMPTS
                ),
            });
            return;
        }
        self.phase = Phase::Closed { at: Some(now) };
    }

    /// Reports that a read timed out at the per-read timeout of
    /// [`reads_in_ticks`](Self::reads_in_ticks): before the watchdog's deadline, nothing
    /// changes (read again); at or after it, the stream is silent
    /// ([`on_silence`](Self::on_silence)).
    pub fn on_read_timeout(&mut self, now: Instant) {
        let silent = match self.phase {
            Phase::Open { activity } => activity
                .checked_add(self.idle_timeout)
                .map_or(true, |silent_at| now >= silent_at),
            _ => true,
        };
        if silent {
            self.on_silence(now);
        }
    }

    /// Reports the job read after a [`FollowOutput::Refresh`]. For a `done` that came
    /// without the job's input and output, the job read is that `done`'s job. After a
    /// 410, a finished job ends the stream with its `done`; an unfinished one is
    /// followed again from its start.
    pub fn on_job(&mut self, now: Instant, job: Job) {
        if let Some((id, _)) = self.reading.take() {
            self.ready.push_front(Ok(Ready::Event(JobEvent {
                id,
                job_id: job.id.clone(),
                kind: EventKind::Done(Box::new(job)),
            })));
            return;
        }
        if job.is_finished() {
            let id = self.last_id.unwrap_or(0);
            let job_id = job.id.clone();
            self.ready.push_back(Ok(Ready::Event(JobEvent {
                id,
                job_id,
                kind: EventKind::Done(Box::new(job)),
            })));
            self.phase = Phase::Ended;
        } else {
            self.send_last_id = false;
            self.phase = Phase::Closed { at: Some(now) };
        }
    }

    /// Ends the stream: its user gave up on it (the job it was to re-read could not be
    /// read, say).
    pub fn end(&mut self) {
        self.ready.clear();
        self.reading = None;
        self.phase = Phase::Ended;
    }

    /// Whether a job stream has its `done` (handed out or about to be).
    fn done_queued(&self) -> bool {
        let queued = || {
            self.ready.iter().any(|e| match e {
                Ok(Ready::Event(e)) => e.done().is_some(),
                Ok(Ready::Finished { .. } | Ready::Read { .. }) => true,
                Err(_) => false,
            })
        };
        self.target.is_job() && (self.done || self.reading.is_some() || queued())
    }

    fn retry_later(&mut self, now: Instant, hint: Option<Duration>, error: Error) {
        self.attempts = self.attempts.saturating_add(1);
        if self.attempts > MAX_ATTEMPTS {
            self.fail(error);
            return;
        }
        let pause = hint.unwrap_or_else(|| self.backoff()).min(MAX_BACKOFF);
        self.phase = Phase::Closed {
            at: Some(now + pause),
        };
    }

    fn fail(&mut self, error: Error) {
        self.phase = Phase::Failed(Box::new(error));
    }

    /// Full jitter over an exponential ceiling that starts at the server's `retry`.
    fn backoff(&mut self) -> Duration {
        Backoff::new(self.retry, MAX_BACKOFF).jittered(self.attempts, &mut self.jitter)
    }
}

impl EventProtocol for Follower {
    type Output = FollowOutput;

    fn step(&mut self, now: Instant) -> StreamStep<FollowOutput> {
        let over = matches!(self.phase, Phase::Ended);
        if !over && self.deadline.is_some_and(|d| now >= d) {
            self.ready.clear();
            self.reading = None;
            self.phase = Phase::Ended;
            return StreamStep::Yield(FollowOutput::Fail(deadline_passed()));
        }
        if let Some((_, job_id)) = &self.reading {
            // Until the job read is reported, nothing after its `done` is handed out.
            return StreamStep::Yield(FollowOutput::Refresh {
                job_id: job_id.clone(),
            });
        }
        if let Some(item) = self.ready.pop_front() {
            return StreamStep::Yield(match item {
                Ok(Ready::Finished { id, job }) => {
                    self.done |= self.target.is_job();
                    FollowOutput::Finished { id, job }
                }
                Ok(Ready::Read { id, job_id }) => {
                    self.reading = Some((id, job_id.clone()));
                    FollowOutput::Refresh { job_id }
                }
                Ok(Ready::Event(event)) => {
                    self.done |= self.target.is_job() && event.done().is_some();
                    FollowOutput::Event(event)
                }
                Err(e) => FollowOutput::Fail(e),
            });
        }
        if self.done {
            self.phase = Phase::Ended;
        }
        match &self.phase {
            Phase::Closed { at } => StreamStep::Connect {
                pause: at.map_or(Duration::ZERO, |at| at.saturating_duration_since(now)),
            },
            Phase::Open { activity } => {
                // An idle timeout too long to add is a watchdog that never fires first.
                let watchdog = activity
                    .checked_add(self.idle_timeout)
                    .unwrap_or_else(|| *activity + crate::config::MAX_DURATION);
                StreamStep::Read {
                    deadline: self.deadline.map_or(watchdog, |d| d.min(watchdog)),
                }
            }
            Phase::Refresh => StreamStep::Yield(FollowOutput::Refresh {
                job_id: match &self.target {
                    StreamTarget::Job(id) => id.clone(),
                    // Only a job's stream refreshes after a 410.
                    StreamTarget::All { .. } => String::new(),
                },
            }),
            Phase::Failed(_) => match std::mem::replace(&mut self.phase, Phase::Ended) {
                Phase::Failed(e) => StreamStep::Yield(FollowOutput::Fail(*e)),
                _ => StreamStep::Stop,
            },
            Phase::Ended => StreamStep::Stop,
        }
    }

    fn follower(&mut self) -> Option<&mut Follower> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TransportErrorKind;
    use crate::transport::ReadTimeout;
    use crate::JobStatus;

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

    fn log(id: u64) -> String {
        format!("id: {id}\nevent: log\ndata: {{\"job_id\":\"j\",\"line\":\"{id}\"}}\n\n")
    }

    fn done(id: u64) -> String {
        format!("id: {id}\nevent: done\ndata: {{\"job_id\":\"j\",\"id\":\"j\",\"service_id\":\"s\",\"status\":\"succeeded\"}}\n\n")
    }

    fn config() -> ClientConfig {
        ClientConfig::default().token("t").validate().unwrap()
    }

    /// Drains the events ready now.
    fn events(f: &mut Follower, now: Instant) -> Vec<u64> {
        let mut ids = Vec::new();
        while let StreamStep::Yield(FollowOutput::Event(e)) = f.step(now) {
            ids.push(e.id);
        }
        ids
    }

    fn open(f: &mut Follower, now: Instant) {
        assert!(matches!(f.step(now), StreamStep::Connect { .. }));
        assert!(f.on_head(now, &head(200, "text/event-stream; charset=utf-8")));
    }

    #[test]
    fn resumes_after_a_drop_without_gap_or_duplicate() {
        let t0 = Instant::now();
        let mut f = Follower::new(StreamTarget::job("j"), S(45), 1);
        open(&mut f, t0);
        f.on_chunk(t0, format!("retry: 500\n\n{}{}", log(1), log(2)).as_bytes());
        assert_eq!(events(&mut f, t0), [1, 2]);
        // Cut mid-event: the half event is dropped, the resume point is 2.
        f.on_chunk(t0, b"id: 3\nevent: log\ndata: {\"jo");
        f.on_broken(t0, TransportError::new(TransportErrorKind::Io, "reset"));
        match f.step(t0) {
            StreamStep::Connect { pause } => assert!(pause <= Duration::from_millis(500)),
            other => panic!("{other:?}"),
        }
        let req = f.request(&config(), Instant::now()).unwrap();
        assert_eq!(req.headers()["last-event-id"], "2");
        assert_eq!(req.uri().path(), "/v1/jobs/j/events");
        assert_eq!(req.headers()["accept"], "text/event-stream");
        assert_eq!(ReadTimeout::of(&req), Some(S(45)));
        assert!(f.on_head(t0, &head(200, "text/event-stream")));
        // A server that repeats what was delivered is deduplicated.
        f.on_chunk(t0, format!("{}{}{}", log(2), log(3), done(4)).as_bytes());
        assert_eq!(events(&mut f, t0), [3, 4]);
        assert!(matches!(f.step(t0), StreamStep::Stop));
    }

    #[test]
    fn a_routing_follower_hands_dones_out_undecoded_and_deduplicated() {
        let t0 = Instant::now();
        let mut f = Follower::new(StreamTarget::all(), S(45), 1).routing();
        open(&mut f, t0);
        // A `done` whose job does not decode is still routed by its id: its waiter
        // finds out, the other waiters do not lose the stream. Other events only move
        // the position, even one whose data is bad.
        let bad_done = "id: 3\nevent: done\ndata: {\"id\":\"k\",\"status\":7}\n\n";
        let bad_log = "id: 5\nevent: log\ndata: not json\n\n";
        let chunk = format!("{}{}{bad_done}{}{bad_log}", log(1), done(2), done(2));
        f.on_chunk(t0, chunk.as_bytes());
        match f.step(t0) {
            StreamStep::Yield(FollowOutput::Finished { id: 2, job }) => {
                assert_eq!(job.job_id(), "j");
                assert_eq!(job.decode().unwrap().status, JobStatus::Succeeded);
            }
            other => panic!("{other:?}"),
        }
        match f.step(t0) {
            StreamStep::Yield(FollowOutput::Finished { id: 3, job }) => {
                assert_eq!(job.job_id(), "k");
                assert!(matches!(job.decode(), Err(Error::Decode { .. })));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(f.step(t0), StreamStep::Read { .. }));
        assert_eq!(f.last_event_id(), Some(5));
        // A `done` without a job id cannot be routed: an error, like any bad event.
        f.on_chunk(t0, b"id: 6\nevent: done\ndata: {\"status\":\"failed\"}\n\n");
        assert!(matches!(
            f.step(t0),
            StreamStep::Yield(FollowOutput::Fail(Error::Decode { .. }))
        ));
        assert_eq!(f.last_event_id(), Some(5));
    }

    /// A `done` without the job's input and output (too large for an event) is handed
    /// out once the job is read: the stream asks for the read, holds what came after it,
    /// and hands out the job read as the `done`, with the `done`'s id.
    #[test]
    fn a_done_without_input_and_output_is_handed_out_once_the_job_is_read() {
        let t0 = Instant::now();
        let omitted = |id: u64, job: &str| {
            format!(
                "id: {id}\nevent: done\ndata: {{\"job_id\":\"{job}\",\"id\":\"{job}\",\"service_id\":\"s\",\"status\":\"succeeded\",\"omitted\":[\"input\",\"output\"]}}\n\n"
            )
        };
        let mut full = Job::new("j", "s", JobStatus::Succeeded);
        full.output = Some(serde_json::json!("the whole output"));
        // One job's stream: it ends after the done.
        let mut f = Follower::new(StreamTarget::job("j"), S(45), 1);
        open(&mut f, t0);
        f.on_chunk(t0, format!("{}{}", log(1), omitted(2, "j")).as_bytes());
        assert_eq!(events(&mut f, t0), [1]);
        for _ in 0..2 {
            assert!(
                matches!(f.step(t0), StreamStep::Yield(FollowOutput::Refresh { job_id }) if job_id == "j"),
                "asked until the read is reported"
            );
        }
        f.on_closed(t0);
        f.on_end(t0);
        f.on_job(t0, full.clone());
        match f.step(t0) {
            StreamStep::Yield(FollowOutput::Event(e)) => {
                assert_eq!(e.id, 2);
                assert_eq!(e.done(), Some(&full));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(f.step(t0), StreamStep::Stop));
        // All jobs' stream: events after the done wait for the read, then go on.
        let mut f = Follower::new(StreamTarget::all(), S(45), 1);
        open(&mut f, t0);
        f.on_chunk(t0, format!("{}{}", omitted(3, "j"), log(4)).as_bytes());
        assert!(
            matches!(f.step(t0), StreamStep::Yield(FollowOutput::Refresh { job_id }) if job_id == "j")
        );
        // The driver lets the connection go for the read: the stream comes back at once,
        // after what it handed out.
        f.on_closed(t0);
        f.on_job(t0, full.clone());
        assert_eq!(events(&mut f, t0), [3, 4]);
        assert!(matches!(f.step(t0), StreamStep::Connect { pause } if pause.is_zero()));
        assert_eq!(f.last_event_id(), Some(4));
        open(&mut f, t0);
        // A read that failed ends the stream.
        f.on_chunk(t0, omitted(5, "k").as_bytes());
        assert!(matches!(
            f.step(t0),
            StreamStep::Yield(FollowOutput::Refresh { .. })
        ));
        f.end();
        assert!(matches!(f.step(t0), StreamStep::Stop));
    }

    /// An event larger than the limit cannot be read, now or after a reconnect: what
    /// came before it is handed out, then the stream ends with `TooLarge` at once.
    #[test]
    fn an_event_over_the_limit_ends_the_stream_at_once() {
        let t0 = Instant::now();
        let big = format!(
            "id: 2\nevent: log\ndata: {{\"job_id\":\"j\",\"line\":\"{}\"}}\n\n",
            "x".repeat(100)
        );
        let mut f = Follower::new(StreamTarget::job("j"), S(45), 1).event_limit(64);
        open(&mut f, t0);
        f.on_chunk(t0, format!("{}{big}{}", log(1), log(3)).as_bytes());
        assert!(matches!(f.step(t0), StreamStep::Yield(FollowOutput::Event(e)) if e.id == 1));
        assert!(matches!(
            f.step(t0),
            StreamStep::Yield(FollowOutput::Fail(Error::TooLarge {
                what: "an event",
                limit: 64
            }))
        ));
        assert!(matches!(f.step(t0), StreamStep::Stop), "no reconnect");
        // An event of exactly the limit is read.
        let line = "y".repeat(64 - r#"{"job_id":"j","line":""}"#.len());
        let exact =
            format!("id: 4\nevent: log\ndata: {{\"job_id\":\"j\",\"line\":\"{line}\"}}\n\n");
        let mut f = Follower::new(StreamTarget::job("j"), S(45), 1).event_limit(64);
        open(&mut f, t0);
        f.on_chunk(t0, exact.as_bytes());
        assert_eq!(events(&mut f, t0), [4]);
    }

    #[test]
    fn a_routing_job_stream_ends_at_its_done() {
        let t0 = Instant::now();
        let mut f = Follower::new(StreamTarget::job("j"), S(45), 1).routing();
        open(&mut f, t0);
        f.on_chunk(t0, format!("{}{}", log(1), done(2)).as_bytes());
        assert!(matches!(
            f.step(t0),
            StreamStep::Yield(FollowOutput::Finished { id: 2, .. })
        ));
        assert!(matches!(f.step(t0), StreamStep::Stop));
    }

    #[test]
    fn watchdog_reconnects_a_silent_stream_and_gives_up_eventually() {
        let t0 = Instant::now();
        let mut f = Follower::new(StreamTarget::all(), S(10), 1);
        open(&mut f, t0);
        assert!(matches!(f.step(t0), StreamStep::Read { deadline } if deadline == t0 + S(10)));
        // Keep-alives are activity: the deadline moves.
        f.on_chunk(t0 + S(8), b": keep-alive\n\n");
        assert!(
            matches!(f.step(t0 + S(9)), StreamStep::Read { deadline } if deadline == t0 + S(18))
        );
        let mut now = t0 + S(18);
        for _ in 0..MAX_ATTEMPTS {
            f.on_silence(now);
            assert!(matches!(f.step(now), StreamStep::Connect { pause } if pause == S(0)));
            assert!(f.on_head(now, &head(200, "text/event-stream")));
            now += S(10);
        }
        f.on_silence(now);
        assert!(matches!(
            f.step(now),
            StreamStep::Yield(FollowOutput::Fail(Error::Timeout { .. }))
        ));
        assert!(matches!(f.step(now), StreamStep::Stop));
    }

    #[test]
    fn answers_that_are_not_the_stream() {
        let t0 = Instant::now();
        let refused = |status: u16, retry_after: Option<&str>| {
            let mut b = http::Response::builder()
                .status(status)
                .header("content-type", "application/problem+json");
            if let Some(r) = retry_after {
                b = b.header("retry-after", r);
            }
            b.body(Bytes::from_static(
                br#"{"type":"about:blank","title":"x","status":0,"code":"x"}"#,
            ))
            .unwrap()
        };
        // 404: final.
        let mut f = Follower::new(StreamTarget::job("j"), S(45), 1);
        f.step(t0);
        assert!(!f.on_head(t0, &head(404, "application/problem+json")));
        f.on_refused(t0, refused(404, None));
        assert!(matches!(
            f.step(t0),
            StreamStep::Yield(FollowOutput::Fail(Error::NotFound { .. }))
        ));
        // 503 with Retry-After: try again then.
        let mut f = Follower::new(StreamTarget::all(), S(45), 1);
        f.step(t0);
        f.on_refused(t0, refused(429, Some("3")));
        assert!(matches!(f.step(t0), StreamStep::Connect { pause } if pause == S(3)));
        // 410 on a job stream: read the job; a finished one ends the stream with `done`.
        let mut f = Follower::new(StreamTarget::job("j"), S(45), 1).resume_after(9);
        f.step(t0);
        f.on_refused(t0, refused(410, None));
        assert!(matches!(
            f.step(t0),
            StreamStep::Yield(FollowOutput::Refresh { job_id }) if job_id == "j"
        ));
        f.on_job(t0, Job::new("j", "s", JobStatus::Succeeded));
        assert!(
            matches!(f.step(t0), StreamStep::Yield(FollowOutput::Event(e)) if e.done().is_some() && e.id == 9)
        );
        assert!(matches!(f.step(t0), StreamStep::Stop));
        // 410 on the multiplexed stream: the caller must know.
        let mut f = Follower::new(StreamTarget::all(), S(45), 1);
        f.step(t0);
        f.on_refused(t0, refused(410, None));
        assert!(
            matches!(f.step(t0), StreamStep::Yield(FollowOutput::Fail(Error::Api { status, .. })) if status == 410)
        );
        // What a status means is the one status table's: a 500 is not retried, a 503
        // without Retry-After is, after a back-off.
        let mut f = Follower::new(StreamTarget::all(), S(45), 1);
        f.step(t0);
        f.on_refused(t0, refused(500, None));
        assert!(
            matches!(f.step(t0), StreamStep::Yield(FollowOutput::Fail(Error::Api { status, .. })) if status == 500)
        );
        let mut f = Follower::new(StreamTarget::all(), S(45), 1);
        f.step(t0);
        f.on_refused(t0, refused(503, None));
        assert!(matches!(f.step(t0), StreamStep::Connect { pause } if pause <= S(1)));
        // 204: the stream is over (a job's, resumed after its done): no error, no retry.
        let mut f = Follower::new(StreamTarget::job("j"), S(45), 1).resume_after(9);
        f.step(t0);
        f.on_refused(
            t0,
            http::Response::builder()
                .status(204)
                .body(Bytes::new())
                .unwrap(),
        );
        assert!(matches!(f.step(t0), StreamStep::Stop));
        // A 200 that is not an event stream (a buffering proxy, say) is a protocol error.
        let mut f = Follower::new(StreamTarget::all(), S(45), 1);
        f.step(t0);
        assert!(!f.on_head(t0, &head(200, "application/json")));
        f.on_refused(t0, http::Response::new(Bytes::from_static(b"{}")));
        assert!(matches!(
            f.step(t0),
            StreamStep::Yield(FollowOutput::Fail(Error::Protocol(_)))
        ));
    }

    #[test]
    fn backoff_grows_with_full_jitter_and_resets_on_progress() {
        let t0 = Instant::now();
        let mut f = Follower::new(StreamTarget::all(), S(45), 42);
        let mut ceilings = Vec::new();
        for attempt in 1..=6u32 {
            f.step(t0);
            f.on_broken(
                t0,
                TransportError::new(TransportErrorKind::Connect, "refused"),
            );
            let StreamStep::Connect { pause } = f.step(t0) else {
                panic!("should retry")
            };
            let ceiling = DEFAULT_RETRY
                .saturating_mul(1 << (attempt - 1))
                .min(MAX_BACKOFF);
            assert!(
                pause <= ceiling,
                "attempt {attempt}: {pause:?} > {ceiling:?}"
            );
            ceilings.push(ceiling);
        }
        assert_eq!(ceilings.last(), Some(&S(30)));
        // Progress resets the count.
        assert!(f.on_head(t0, &head(200, "text/event-stream")));
        f.on_chunk(t0, log(1).as_bytes());
        assert_eq!(events(&mut f, t0), [1]);
        f.on_end(t0);
        assert!(matches!(f.step(t0), StreamStep::Connect { pause } if pause == S(1)));
    }

    /// The call's deadline bounds every read and ends the stream, queued events or not.
    #[test]
    fn the_calls_deadline_ends_the_stream() {
        let t0 = Instant::now();
        let mut f = Follower::new(StreamTarget::all(), S(45), 1).until(Some(t0 + S(2)));
        let req = f.request(&config(), t0 + S(1)).unwrap();
        assert_eq!(ReadTimeout::of(&req), Some(S(1)), "cut to what is left");
        open(&mut f, t0);
        assert!(matches!(f.step(t0), StreamStep::Read { deadline } if deadline == t0 + S(2)));
        // Silence at the deadline is not the watchdog's: no reconnect, the end.
        f.on_silence(t0 + S(2));
        assert!(matches!(
            f.step(t0 + S(2)),
            StreamStep::Yield(FollowOutput::Fail(Error::Timeout { .. }))
        ));
        assert!(matches!(f.step(t0 + S(2)), StreamStep::Stop));
        // An event that arrived in time is not handed out once the deadline passed.
        let mut f = Follower::new(StreamTarget::all(), S(45), 1).until(Some(t0 + S(2)));
        open(&mut f, t0);
        f.on_chunk(t0, log(1).as_bytes());
        assert!(matches!(
            f.step(t0 + S(3)),
            StreamStep::Yield(FollowOutput::Fail(Error::Timeout { .. }))
        ));
        assert!(
            f.request(&config(), t0 + S(3)).is_err(),
            "nothing left to connect with"
        );
    }

    /// A driver that cannot cut reads short reads in ticks: each read waits at most the
    /// tick; a tick with nothing is no silence until the watchdog's deadline.
    #[test]
    fn reads_in_ticks_are_not_silence_before_the_watchdog() {
        let t0 = Instant::now();
        let mut f = Follower::new(StreamTarget::all(), S(10), 1).reads_in_ticks(S(1));
        let req = f.request(&config(), t0).unwrap();
        assert_eq!(ReadTimeout::of(&req), Some(S(1)));
        open(&mut f, t0);
        for n in 1..10 {
            f.on_read_timeout(t0 + S(n));
            assert!(
                matches!(f.step(t0 + S(n)), StreamStep::Read { .. }),
                "tick {n}"
            );
        }
        f.on_read_timeout(t0 + S(10));
        assert!(
            matches!(f.step(t0 + S(10)), StreamStep::Connect { .. }),
            "the watchdog"
        );
    }

    /// A 401 on a stream with a token source: told, and the stream reconnects at once
    /// with a fresh token, once.
    #[test]
    fn a_401_on_a_stream_refreshes_the_token_once() {
        let t0 = Instant::now();
        let config = ClientConfig::default()
            .token_source(|| Ok::<_, std::io::Error>("t".to_owned()))
            .validate()
            .unwrap();
        let mut f = Follower::new(StreamTarget::all(), S(45), 1);
        f.step(t0);
        let req = f.request(&config, t0).unwrap();
        assert_eq!(req.headers()["authorization"], "Bearer t");
        let unauthorized = || {
            http::Response::builder()
                .status(401)
                .body(Bytes::new())
                .unwrap()
        };
        f.on_refused(t0, unauthorized());
        assert!(matches!(f.step(t0), StreamStep::Connect { pause } if pause.is_zero()));
        f.request(&config, t0).unwrap();
        f.on_refused(t0, unauthorized());
        assert!(matches!(
            f.step(t0),
            StreamStep::Yield(FollowOutput::Fail(Error::Unauthorized { .. }))
        ));
    }

    #[test]
    fn the_multiplexed_stream_asks_for_its_filters() {
        let mut f = Follower::new(
            StreamTarget::All {
                service: Some("a b".into()),
                jobs: vec!["j1".into(), "j2".into()],
            },
            S(45),
            1,
        )
        .resume_after(7);
        let req = f.request(&config(), Instant::now()).unwrap();
        assert_eq!(
            req.uri().path_and_query().unwrap().as_str(),
            "/v1/events?service=a%20b&job=j1&job=j2"
        );
        assert_eq!(req.headers()["last-event-id"], "7");
        assert_eq!(req.headers()["authorization"], "Bearer t");
        assert!(Follower::new(StreamTarget::job(" "), S(1), 1)
            .request(&config(), Instant::now())
            .is_err());
    }
}
