//! Event streams as an `Iterator`: one job's events (`job.events()`) or every event of
//! the client's jobs (`client.events()`). The core's [`Follower`] decides when to
//! connect, resume, back off and give up; the connection loop of
//! [`stream`](crate::stream) moves the bytes, and this hands the events out.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use jobwire_core::backoff::jitter_seed;
use jobwire_core::endpoint::GetJob;
use jobwire_core::event::{EventKind, JobEvent};
use jobwire_core::follow::{FollowOutput, Follower, StreamSpec, StreamTarget};
use jobwire_core::Error;

use crate::stream::{follow, lock, Connection};

/// The longest one read of a stream with a deadline waits.
const DEADLINE_TICK: Duration = Duration::from_millis(50);
use crate::Client;

/// An iterator of job events, from [`JobHandle::events`](crate::JobHandle::events) or
/// [`Client::events`]. Nothing is sent until the first `next()`; until then the setters
/// narrow what it follows. An error item (a 404, a stream that stays down, the client's
/// deadline) ends it.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
/// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
/// use jobwire_blocking::EventKind;
///
/// let job = client.submit("steps", &serde_json::json!({"steps": 3, "interval_ms": 10}))?;
/// for event in job.events() {
///     match event?.kind {
///         EventKind::Progress { fraction, message } => println!("{:.0}% {message}", fraction * 100.0),
///         EventKind::Output(chunk) => print!("{chunk}"),
///         EventKind::Done(job) => println!("\n{}", job.status),
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
#[must_use = "an iterator does nothing until iterated"]
pub struct EventStream {
    client: Client,
    spec: StreamSpec,
    running: Option<Feed>,
}

impl std::fmt::Debug for EventStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventStream")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Every event of this client's jobs, as they happen, on one stream (an
    /// `Iterator`); narrow it with [`EventStream::service`] and [`EventStream::job`], or
    /// start it after an event id with [`EventStream::after`]. It does not end by
    /// itself.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let job = client.submit("echo", &1)?;
    /// // From the start: the events of jobs already submitted are replayed.
    /// let mut events = client.events().job(job.id()).after(0);
    /// let first = events.next().unwrap()?;
    /// assert_eq!(first.job_id, job.id());
    /// # Ok(()) }
    /// ```
    pub fn events(&self) -> EventStream {
        EventStream::new(self.clone(), StreamTarget::all())
    }
}

impl EventStream {
    pub(crate) fn new(client: Client, target: StreamTarget) -> Self {
        EventStream {
            client,
            spec: StreamSpec::new(target),
            running: None,
        }
    }

    jobwire_core::__stream_spec_setters!(spec);

    fn start(&self) -> Feed {
        let mut follower = self
            .spec
            .follower(
                self.client.config().stream_idle_timeout_value(),
                jitter_seed(),
            )
            .event_limit(self.client.config().max_event_bytes_value())
            .until(self.client.deadline)
            .options((*self.client.options).clone());
        if self.client.deadline.is_some() {
            // A socket's read timeout is kept loosely for long waits (Linux lets a
            // 300 ms one run 10 % over); short reads end the stream at its deadline.
            follower = follower.reads_in_ticks(DEADLINE_TICK);
        }
        Feed {
            client: self.client.clone(),
            follower: Mutex::new(follower),
            connection: Connection::default(),
        }
    }
}

impl Iterator for EventStream {
    type Item = Result<JobEvent, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.running.is_none() {
            self.running = Some(self.start());
        }
        self.running.as_mut()?.next_event()
    }
}

/// One stream being followed.
struct Feed {
    client: Client,
    follower: Mutex<Follower>,
    connection: Connection,
}

impl Feed {
    /// The drive loop of one stream: the next event, error or end.
    fn next_event(&mut self) -> Option<Result<JobEvent, Error>> {
        loop {
            let output = follow(&self.client, &self.follower, &mut self.connection)?;
            match output {
                FollowOutput::Event(event) => return Some(Ok(event)),
                FollowOutput::Fail(error) => return Some(Err(error)),
                // Only a routing follower hands `done`s out undecoded; decode it here.
                FollowOutput::Finished { id, job } => {
                    let event = job.decode().map(|done| {
                        JobEvent::new(id, job.job_id(), EventKind::Done(Box::new(done)))
                    });
                    return Some(event);
                }
                // A job whose events are gone, or whose `done` left out its input and
                // output: its read is the answer.
                FollowOutput::Refresh { job_id } => {
                    // The read must not wait for the connection the stream holds.
                    self.connection.close();
                    lock(&self.follower).on_closed(Instant::now());
                    match self.client.execute(&GetJob::new(job_id)) {
                        Ok(fresh) => lock(&self.follower).on_job(Instant::now(), fresh.job),
                        Err(error) => {
                            lock(&self.follower).end();
                            return Some(Err(error));
                        }
                    }
                }
            }
        }
    }
}
