//! Event streams as a `Stream`: one job's events (`job.events()`) or every event of the
//! client's jobs (`client.events()`). The core's [`Follower`] decides when to connect,
//! resume, back off and give up; this only moves bytes.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_core::Stream;
use jobwire_core::endpoint::GetJob;
use jobwire_core::event::JobEvent;
use jobwire_core::follow::{jitter_seed, FollowStep, Follower, StreamSpec, StreamTarget};
use jobwire_core::retry::{deadline_passed, within_deadline};
use jobwire_core::transport::AsyncBody;
use jobwire_core::Error;

use crate::Client;

/// The largest error answer read to learn why a stream was refused.
const REFUSAL_LIMIT: usize = 64 * 1024;

type Events = Pin<Box<dyn Stream<Item = Result<JobEvent, Error>> + Send>>;

/// A stream of job events, from [`JobHandle::events`](crate::JobHandle::events) or
/// [`Client::events`]. Nothing is sent until it is first polled; until then the setters
/// narrow what it follows. An error item (a 404, a stream that stays down) ends it.
///
/// ```no_run
/// # async fn demo(client: jobwire::Client) -> Result<(), jobwire::Error> {
/// use futures_util::StreamExt;
/// use jobwire::EventKind;
///
/// let job = client.submit("steps", &serde_json::json!({"steps": 3, "interval_ms": 100})).await?;
/// let mut events = job.events();
/// while let Some(event) = events.next().await {
///     match event?.kind {
///         EventKind::Progress { fraction, message } => println!("{:.0}% {message}", fraction * 100.0),
///         EventKind::Output(chunk) => print!("{chunk}"),
///         EventKind::Done(job) => println!("\n{}", job.status),
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
#[must_use = "a stream does nothing until polled"]
pub struct EventStream {
    client: Client,
    spec: StreamSpec,
    running: Option<Events>,
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

    fn start(&self) -> Events {
        let follower = self.spec.follower(
            self.client.config().stream_idle_timeout_value(),
            jitter_seed(),
        );
        let feed = Feed {
            client: self.client.clone(),
            job_id: self.spec.job_id().map(str::to_owned),
            follower,
            body: None,
            over: false,
        };
        Box::pin(futures_util::stream::unfold(feed, |mut feed| async move {
            let item = feed.next_event().await?;
            Some((item, feed))
        }))
    }
}

impl Stream for EventStream {
    type Item = Result<JobEvent, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.running.is_none() {
            let events = self.start();
            self.running = Some(events);
        }
        match self.running.as_mut() {
            Some(events) => events.as_mut().poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}

/// The drive loop of one stream.
struct Feed {
    client: Client,
    job_id: Option<String>,
    follower: Follower,
    body: Option<AsyncBody>,
    over: bool,
}

impl Feed {
    async fn next_event(&mut self) -> Option<Result<JobEvent, Error>> {
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
                    if !pause.is_zero() {
                        tokio::time::sleep(pause).await;
                    }
                    if let Err(error) = self.connect().await {
                        self.over = true;
                        return Some(Err(error));
                    }
                }
                FollowStep::Read { deadline } => self.read(deadline).await,
                FollowStep::Refresh => {
                    let id = self.job_id.clone().unwrap_or_default();
                    match self.client.execute(&GetJob::new(id)).await {
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
    async fn connect(&mut self) -> Result<(), Error> {
        let mut request = self.follower.request(self.client.config())?;
        within_deadline(&mut request, self.client.time_left())?;
        let answer = self.client.transport().send(request).await;
        let now = Instant::now();
        match answer {
            Ok(answer) => {
                let (head, body) = answer.into_parts();
                if self.follower.on_head(now, &head) {
                    self.body = Some(body);
                } else {
                    let text = body.read_to_bytes(REFUSAL_LIMIT).await.unwrap_or_default();
                    self.follower
                        .on_refused(now, http::Response::from_parts(head, text));
                }
            }
            Err(e) => self.follower.on_broken(now, e),
        }
        Ok(())
    }

    /// Reads the next chunk, until the watchdog's deadline, and reports it.
    async fn read(&mut self, deadline: Instant) {
        let Some(body) = self.body.as_mut() else {
            self.follower.on_end(Instant::now());
            return;
        };
        // The watchdog's deadline, or the call's if that comes first.
        let until = self.client.deadline().map_or(deadline, |d| d.min(deadline));
        let read = tokio::time::timeout_at(until.into(), body.next_chunk()).await;
        let now = Instant::now();
        match read {
            Ok(Some(Ok(chunk))) => return self.follower.on_chunk(now, &chunk),
            Ok(Some(Err(e))) => self.follower.on_broken(now, e),
            Ok(None) => self.follower.on_end(now),
            // The call's deadline is checked at the top of the loop.
            Err(_) if until < deadline => {}
            Err(_) => self.follower.on_silence(now),
        }
        self.body = None;
    }
}
