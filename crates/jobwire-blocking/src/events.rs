//! Event streams as an `Iterator`: one job's events (`job.events()`) or every event of
//! the client's jobs (`client.events()`). The core's [`Follower`] decides when to
//! connect, resume, back off and give up; this only moves bytes.

use std::time::Instant;

use jobwire_core::endpoint::GetJob;
use jobwire_core::event::JobEvent;
use jobwire_core::follow::{jitter_seed, FollowStep, Follower, StreamSpec, StreamTarget};
use jobwire_core::retry::{deadline_passed, within_deadline};
use jobwire_core::transport::Body;
use jobwire_core::Error;

use crate::Client;

/// The largest error answer read to learn why a stream was refused.
const REFUSAL_LIMIT: usize = 64 * 1024;
/// The read buffer.
const CHUNK: usize = 16 * 1024;

/// An iterator of job events, from [`JobHandle::events`](crate::JobHandle::events) or
/// [`Client::events`]. Nothing is sent until the first `next()`; until then the setters
/// narrow what it follows. An error item (a 404, a stream that stays down) ends it.
///
/// ```no_run
/// # fn demo(client: jobwire_blocking::Client) -> Result<(), jobwire_blocking::Error> {
/// use jobwire_blocking::EventKind;
///
/// let job = client.submit("steps", &serde_json::json!({"steps": 3, "interval_ms": 100}))?;
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
        let follower = self.spec.follower(
            self.client.config().stream_idle_timeout_value(),
            jitter_seed(),
        );
        Feed {
            client: self.client.clone(),
            job_id: self.spec.job_id().map(str::to_owned),
            follower,
            body: None,
            buf: vec![0u8; CHUNK],
            over: false,
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

/// The drive loop of one stream.
struct Feed {
    client: Client,
    job_id: Option<String>,
    follower: Follower,
    body: Option<Body>,
    buf: Vec<u8>,
    over: bool,
}

impl Feed {
    fn next_event(&mut self) -> Option<Result<JobEvent, Error>> {
        while !self.over {
            if self.client.time_left().is_some_and(|left| left.is_zero()) {
                self.over = true;
                return Some(Err(deadline_passed()));
            }
            match self.follower.next(Instant::now()) {
                FollowStep::Event(event) => return Some(Ok(event)),
                FollowStep::Fail(error) => {
                    self.over = true;
                    return Some(Err(error));
                }
                FollowStep::Connect { pause } => {
                    self.body = None;
                    std::thread::sleep(pause);
                    if let Err(error) = self.connect() {
                        self.over = true;
                        return Some(Err(error));
                    }
                }
                // The transport's read timeout (the request's `ReadTimeout`) is the
                // watchdog's deadline here: a blocking read cannot be given one.
                FollowStep::Read { .. } => self.read(),
                FollowStep::Refresh => {
                    let id = self.job_id.clone().unwrap_or_default();
                    match self.client.execute(&GetJob::new(id)) {
                        Ok(snapshot) => self.follower.on_job(Instant::now(), snapshot.job),
                        Err(error) => {
                            self.over = true;
                            return Some(Err(error));
                        }
                    }
                }
                _ => self.over = true,
            }
        }
        None
    }

    /// Sends the follower's request and reports the answer; `Err` only for a request
    /// that cannot be built.
    fn connect(&mut self) -> Result<(), Error> {
        let mut request = self.follower.request(self.client.config())?;
        // Reads time out by the call's deadline too: the loop then ends the stream.
        within_deadline(&mut request, self.client.time_left())?;
        let answer = self.client.transport().send(request);
        let now = Instant::now();
        match answer {
            Ok(answer) => {
                let (head, body) = answer.into_parts();
                if self.follower.on_head(now, &head) {
                    self.body = Some(body);
                } else {
                    let text = body.read_to_bytes(REFUSAL_LIMIT).unwrap_or_default();
                    self.follower
                        .on_refused(now, http::Response::from_parts(head, text));
                }
            }
            Err(e) => self.follower.on_broken(now, e),
        }
        Ok(())
    }

    /// Reads the next chunk and reports it.
    fn read(&mut self) {
        let Some(body) = self.body.as_mut() else {
            self.follower.on_end(Instant::now());
            return;
        };
        let read = body.read_chunk(&mut self.buf);
        let now = Instant::now();
        match read {
            Ok(0) => self.follower.on_end(now),
            Ok(n) => return self.follower.on_chunk(now, &self.buf[..n]),
            // The call's deadline is checked at the top of the loop.
            Err(e) if e.is_timeout() && self.client.deadline().is_some_and(|d| now >= d) => {}
            Err(e) if e.is_timeout() => self.follower.on_silence(now),
            Err(e) => self.follower.on_broken(now, e),
        }
        self.body = None;
    }
}
