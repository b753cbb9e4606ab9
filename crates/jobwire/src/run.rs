//! Streaming runs: submit a job and follow it to its result in one `Stream` — its
//! events as they happen, then its typed result (or its error). The core's
//! [`RunPlan`] decides how the submit goes and when it all must end, and
//! [`run_event`] what each event means; the job's event stream (with its resume and
//! reconnects) carries them.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_core::Stream;
use futures_util::StreamExt;
use jobwire_core::options::RunOptions;
use jobwire_core::outcome::input_value;
use jobwire_core::run::{run_event, RunEvent, RunPlan};
use jobwire_core::Error;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::{Client, EventStream};

type Items<O> = Pin<Box<dyn Stream<Item = Result<RunEvent<O>, Error>> + Send>>;

/// A job run as a `Stream`: [`RunEvent::Submitted`] with its id, each of its events, then
/// [`RunEvent::Done`] with its typed output — or an error item (the job failed or was
/// cancelled, the run's deadline passed) — and the end. From [`Client::run_stream`].
/// Nothing is sent until it is first polled.
///
/// ```
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
/// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
/// use futures_util::StreamExt;
/// use jobwire::{EventKind, RunEvent};
///
/// let input = serde_json::json!({"steps": 3, "interval_ms": 10});
/// let mut run = client.run_stream::<_, serde_json::Value>("steps", &input);
/// while let Some(item) = run.next().await {
///     match item? {
///         RunEvent::Event(event) => {
///             if let EventKind::Output(chunk) = event.kind {
///                 print!("{chunk}");
///             }
///         }
///         RunEvent::Done(output) => println!("\n{output}"),
///         _ => {}
///     }
/// }
/// # Ok(()) }
/// ```
#[must_use = "a stream does nothing until polled"]
pub struct RunStream<O> {
    items: Items<O>,
}

impl<O> std::fmt::Debug for RunStream<O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunStream").finish_non_exhaustive()
    }
}

impl<O> Stream for RunStream<O> {
    type Item = Result<RunEvent<O>, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.items.as_mut().poll_next(cx)
    }
}

/// Where a streaming run stands.
// One per run, and its stages follow each other: boxing a variant would buy nothing.
#[allow(clippy::large_enum_variant)]
enum Stage {
    Submit {
        client: Client,
        service: String,
        input: Result<Value, Error>,
        plan: RunPlan,
    },
    Follow(EventStream),
    Over,
}

impl Client {
    /// Runs a job on `input` and streams it: its events as they happen, then its typed
    /// result (see [`RunStream`]), within the deadline of [`run`](Self::run).
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use futures_util::TryStreamExt;
    /// let items: Vec<_> = client.run_stream::<_, serde_json::Value>("echo", &7).try_collect().await?;
    /// assert!(matches!(items.last(), Some(jobwire::RunEvent::Done(out)) if *out == 7));
    /// # Ok(()) }
    /// ```
    pub fn run_stream<I: Serialize + ?Sized, O: DeserializeOwned + Send + 'static>(
        &self,
        service: &str,
        input: &I,
    ) -> RunStream<O> {
        self.run_stream_with(service, input, RunOptions::default())
    }

    /// [`run_stream`](Self::run_stream) with the options of
    /// [`run_with`](Self::run_with): labels, an idempotency key, a timeout for the whole
    /// run, per-call settings.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use std::time::Duration;
    /// use futures_util::StreamExt;
    /// use jobwire::RunOptions;
    /// let slow = serde_json::json!({"duration_seconds": 10});
    /// let options = RunOptions::default().timeout(Duration::from_millis(300));
    /// let last = client.run_stream_with::<_, serde_json::Value>("sleep", &slow, options).collect::<Vec<_>>().await.pop();
    /// assert!(matches!(last, Some(Err(jobwire::Error::Timeout { .. }))));
    /// # Ok(()) }
    /// ```
    pub fn run_stream_with<I: Serialize + ?Sized, O: DeserializeOwned + Send + 'static>(
        &self,
        service: &str,
        input: &I,
        options: RunOptions,
    ) -> RunStream<O> {
        self.run_stream_of(service, input_value(input), options)
    }

    /// [`run_stream_with`](Self::run_stream_with) of an input made JSON already, or of
    /// why it could not be (the stream's one item).
    pub(crate) fn run_stream_of<O: DeserializeOwned + Send + 'static>(
        &self,
        service: &str,
        input: Result<Value, Error>,
        options: RunOptions,
    ) -> RunStream<O> {
        // Answered at once: the job's events tell the rest.
        let plan = RunPlan::with_options(self.config(), self.deadline, &options, Instant::now())
            .answered_at_once();
        let stage = Stage::Submit {
            client: self.with_run_options(&options).until(plan.deadline()),
            service: service.to_owned(),
            input,
            plan,
        };
        let items = futures_util::stream::unfold(stage, |stage| async move {
            match stage {
                Stage::Submit {
                    client,
                    service,
                    input,
                    plan,
                } => {
                    let submitted = match input {
                        Ok(input) => {
                            client
                                .submit_with(&service, &input, plan.submit_options())
                                .await
                        }
                        Err(e) => Err(e),
                    };
                    match submitted {
                        Ok(job) => {
                            let job_id = job.id().to_owned();
                            Some((
                                Ok(RunEvent::Submitted { job_id }),
                                Stage::Follow(job.events()),
                            ))
                        }
                        Err(e) => Some((Err(e), Stage::Over)),
                    }
                }
                Stage::Follow(mut events) => match events.next().await? {
                    Ok(event) => match run_event(event) {
                        Ok(RunEvent::Done(output)) => {
                            Some((Ok(RunEvent::Done(output)), Stage::Over))
                        }
                        Ok(item) => Some((Ok(item), Stage::Follow(events))),
                        Err(e) => Some((Err(e), Stage::Over)),
                    },
                    Err(e) => Some((Err(e), Stage::Over)),
                },
                Stage::Over => None,
            }
        });
        RunStream {
            items: Box::pin(items),
        }
    }
}
