//! Event streams as a `Stream`: one job's events (`job.events()`) or every event of the
//! client's jobs (`client.events()`). The core's [`Follower`] decides when to connect,
//! resume, back off and give up; the connection loop of [`stream`](crate::stream) moves
//! the bytes, and this hands the events out.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_core::Stream;
use jobwire_core::backoff::jitter_seed;
use jobwire_core::endpoint::GetJob;
use jobwire_core::event::{EventKind, JobEvent};
use jobwire_core::follow::{FollowOutput, Follower, StreamSpec, StreamTarget};
use jobwire_core::transport::AsyncBody;
use jobwire_core::Error;

use crate::stream::{follow, lock};
use crate::Client;

type Events = Pin<Box<dyn Stream<Item = Result<JobEvent, Error>> + Send>>;

/// A stream of job events, from [`JobHandle::events`](crate::JobHandle::events) or
/// [`Client::events`]. Nothing is sent until it is first polled; until then the setters
/// narrow what it follows. An error item (a 404, a stream that stays down, the client's
/// deadline) ends it.
///
/// ```
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
/// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
/// use futures_util::StreamExt;
/// use jobwire::EventKind;
///
/// let job = client.submit("steps", &serde_json::json!({"steps": 3, "interval_ms": 10})).await?;
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

impl Client {
    /// Every event of this client's jobs, as they happen, on one stream (a `Stream`);
    /// narrow it with [`EventStream::service`] and [`EventStream::job`], or start it
    /// after an event id with [`EventStream::after`]. It does not end by itself.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use futures_util::StreamExt;
    /// let job = client.submit("echo", &1).await?;
    /// // From the start: the events of jobs already submitted are replayed.
    /// let mut events = client.events().job(job.id()).after(0);
    /// let first = events.next().await.unwrap()?;
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

    fn start(&self) -> Events {
        let follower = self
            .spec
            .follower(
                self.client.config().stream_idle_timeout_value(),
                jitter_seed(),
            )
            .event_limit(self.client.config().max_event_bytes_value())
            .until(self.client.deadline)
            .options((*self.client.options).clone());
        let feed = Feed {
            client: self.client.clone(),
            follower: Mutex::new(follower),
            body: None,
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

/// One stream being followed.
struct Feed {
    client: Client,
    follower: Mutex<Follower>,
    body: Option<AsyncBody>,
}

impl Feed {
    /// The drive loop of one stream: the next event, error or end.
    async fn next_event(&mut self) -> Option<Result<JobEvent, Error>> {
        loop {
            let output = follow(&self.client, &self.follower, &mut self.body, None).await?;
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
                    self.body = None;
                    lock(&self.follower).on_closed(Instant::now());
                    match self.client.execute(&GetJob::new(job_id)).await {
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
