//! Waiting by push: one task per client follows `GET /v1/events` and wakes each waiting
//! job at its `done`. The core's [`push::Hub`] decides everything — where the stream
//! starts, when to reconnect, whom to wake, when to fall back; this task moves bytes.

use std::pin::pin;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use futures_util::future::{select, Either};
use jobwire_core::follow;
use jobwire_core::push::{self, HubStep, Joined, Ticket, Wake, Watch};
use jobwire_core::transport::AsyncBody;
use jobwire_core::{ClientConfig, TransportError, TransportErrorKind};
use tokio::sync::{oneshot, Notify};

use crate::Client;

/// The largest error answer the driver reads to learn why the stream was refused.
const REFUSAL_LIMIT: usize = 64 * 1024;

/// A waiting caller's end of its wake.
struct Waker(oneshot::Sender<Wake>);

impl push::Waker for Waker {
    fn wake(self, wake: Wake) {
        // A receiver gone means its wait ended meanwhile.
        let _ = self.0.send(wake);
    }
}

/// The push state of a client, shared by its clones.
pub(crate) struct Hub {
    state: Mutex<push::Hub<Waker>>,
    /// Rung when the last waiter leaves, so the driver stops reading at once.
    emptied: Notify,
}

impl Hub {
    pub(crate) fn new(config: &ClientConfig) -> Self {
        Hub {
            state: Mutex::new(push::Hub::new(
                config.stream_idle_timeout_value(),
                follow::jitter_seed(),
            )),
            emptied: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, push::Hub<Waker>> {
        // The state is consistent between statements; a panic elsewhere changes nothing.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

/// A registered wait.
pub(crate) struct Waiting {
    client: Client,
    ticket: Ticket,
    woken: oneshot::Receiver<Wake>,
}

impl Waiting {
    /// The wake, or `None` when `deadline` passed first.
    pub(crate) async fn wait(mut self, deadline: Option<Instant>) -> Option<Wake> {
        let woken = match deadline {
            Some(deadline) => tokio::time::timeout_at(deadline.into(), &mut self.woken)
                .await
                .ok()?,
            None => (&mut self.woken).await,
        };
        // A dropped waker means the driver is gone: long-poll instead.
        Some(woken.unwrap_or(Wake::LongPoll))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let hub = self.client.hub();
        if hub.lock().leave(self.ticket) {
            hub.emptied.notify_one();
        }
    }
}

impl Client {
    /// Registers a wait for a job last seen at event `position`.
    pub(crate) fn watch(&self, job_id: &str, position: Option<u64>) -> Watch<Waiting> {
        // Without a tokio runtime to drive the stream on, long-poll.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Watch::LongPoll;
        };
        let joined = self
            .hub()
            .lock()
            .join(Instant::now(), job_id, position, || {
                let (waker, woken) = oneshot::channel();
                (Waker(waker), woken)
            });
        match joined {
            Joined::Waiting {
                ticket,
                woken,
                start_driver,
            } => {
                if start_driver {
                    runtime.spawn(drive(self.clone()));
                }
                Watch::Waiting(Waiting {
                    client: self.clone(),
                    ticket,
                    woken,
                })
            }
            Joined::Finished(job) => Watch::Finished(job),
            Joined::Recheck => Watch::Recheck,
            _ => Watch::LongPoll,
        }
    }
}

/// The driver: follows the stream while anyone waits.
async fn drive(client: Client) {
    let hub = client.hub();
    let mut abandon = push::DriverGuard::new(&hub.state);
    let mut body: Option<AsyncBody> = None;
    loop {
        let step = hub.lock().step(Instant::now());
        match step {
            HubStep::Connect { pause } => {
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                body = connect(&client).await;
            }
            HubStep::Read { deadline } => {
                let Some(stream) = body.as_mut() else {
                    let broken = TransportError::new(TransportErrorKind::Other, "no stream");
                    hub.lock().list().on_broken(Instant::now(), broken);
                    continue;
                };
                let read = tokio::time::timeout_at(deadline.into(), stream.next_chunk());
                let emptied = hub.emptied.notified();
                let read = match select(pin!(read), pin!(emptied)).await {
                    Either::Left((read, _)) => read,
                    // The last waiter left: `step` says whether to stop.
                    Either::Right(_) => continue,
                };
                let now = Instant::now();
                let mut state = hub.lock();
                let list = state.list();
                match read {
                    Ok(Some(Ok(chunk))) => {
                        list.on_chunk(now, &chunk);
                        continue;
                    }
                    Ok(Some(Err(e))) => list.on_broken(now, e),
                    Ok(None) => list.on_end(now),
                    Err(_) => list.on_silence(now),
                }
                drop(state);
                body = None;
            }
            _ => {
                abandon.disarm();
                return;
            }
        }
    }
}

/// Opens the stream the watchlist asks for; the body when it is one.
async fn connect(client: &Client) -> Option<AsyncBody> {
    let hub = client.hub();
    let request = hub.lock().list().request(client.config());
    let answer = match request {
        Ok(request) => client.transport().send(request).await,
        Err(e) => Err(TransportError::new(
            TransportErrorKind::Other,
            e.to_string(),
        )),
    };
    let now = Instant::now();
    match answer {
        Ok(answer) => {
            let (head, stream) = answer.into_parts();
            if hub.lock().list().on_head(now, &head) {
                return Some(stream);
            }
            let text = stream
                .read_to_bytes(REFUSAL_LIMIT)
                .await
                .unwrap_or_default();
            hub.lock()
                .list()
                .on_refused(now, http::Response::from_parts(head, text));
            None
        }
        Err(e) => {
            hub.lock().list().on_broken(now, e);
            None
        }
    }
}
