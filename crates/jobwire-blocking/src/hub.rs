//! Waiting by push: while any job of the client is awaited, one reader thread follows
//! `GET /v1/events` and wakes each waiting thread at its job's `done`. The core's
//! [`push::Hub`] decides everything — where the stream starts, when to reconnect, whom
//! to wake, when to fall back to long-polls; this thread moves bytes.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use jobwire_core::follow;
use jobwire_core::push::{self, HubStep, Joined, Ticket, Wake, Watch};
use jobwire_core::transport::Body;
use jobwire_core::{ClientConfig, TransportError, TransportErrorKind};

use crate::Client;

/// The largest error answer the reader reads to learn why the stream was refused.
const REFUSAL_LIMIT: usize = 64 * 1024;
/// The reader's buffer.
const CHUNK: usize = 16 * 1024;

/// A waiting thread's end of its wake: a channel with room for the one wake, so the
/// reader never blocks on it.
struct Waker(mpsc::SyncSender<Wake>);

impl push::Waker for Waker {
    fn wake(self, wake: Wake) {
        // A receiver gone means its wait ended meanwhile.
        let _ = self.0.try_send(wake);
    }
}

/// The push state of a client, shared by its clones.
pub(crate) struct Hub {
    state: Mutex<push::Hub<Waker>>,
}

impl Hub {
    pub(crate) fn new(config: &ClientConfig) -> Self {
        Hub {
            state: Mutex::new(push::Hub::new(
                config.stream_idle_timeout_value(),
                follow::jitter_seed(),
            )),
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
    woken: mpsc::Receiver<Wake>,
}

impl Waiting {
    /// The wake, or `None` when `deadline` passed first.
    pub(crate) fn wait(self, deadline: Option<Instant>) -> Option<Wake> {
        let woken = match deadline {
            Some(deadline) => {
                match self
                    .woken
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                {
                    Err(RecvTimeoutError::Timeout) => return None,
                    other => other.ok(),
                }
            }
            None => self.woken.recv().ok(),
        };
        // A dropped waker means the reader is gone: long-poll instead.
        Some(woken.unwrap_or(Wake::LongPoll))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.client.hub().lock().leave(self.ticket);
    }
}

impl Client {
    /// Registers a wait for a job last seen at event `position`.
    pub(crate) fn watch(&self, job_id: &str, position: Option<u64>) -> Watch<Waiting> {
        let mut hub = self.hub().lock();
        let joined = hub.join(Instant::now(), job_id, position, || {
            let (waker, woken) = mpsc::sync_channel(1);
            (Waker(waker), woken)
        });
        match joined {
            Joined::Waiting {
                ticket,
                woken,
                start_driver,
            } => {
                if start_driver {
                    let client = self.clone();
                    let started = std::thread::Builder::new()
                        .name("jobwire-events".into())
                        .spawn(move || read_events(client));
                    if started.is_err() {
                        // No thread to read with: this wait long-polls.
                        hub.driver_not_started(ticket);
                        return Watch::LongPoll;
                    }
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

/// The reader thread: follows the stream while anyone waits. A blocked read cannot be
/// interrupted, so after the last wait ends the thread stops at the next byte (a
/// keep-alive at the latest).
fn read_events(client: Client) {
    let hub = client.hub();
    let mut abandon = push::DriverGuard::new(&hub.state);
    let mut body: Option<Body> = None;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let step = hub.lock().step(Instant::now());
        match step {
            HubStep::Connect { pause } => {
                // Let the old connection go before waiting to reconnect.
                drop(body.take());
                std::thread::sleep(pause);
                body = connect(&client);
            }
            HubStep::Read { .. } => {
                // The transport's read timeout (the request's `ReadTimeout`) is the
                // watchdog's deadline here: a blocking read cannot be given one.
                let read = match body.as_mut() {
                    Some(stream) => stream.read_chunk(&mut buf),
                    None => Err(TransportError::new(TransportErrorKind::Other, "no stream")),
                };
                let now = Instant::now();
                let mut state = hub.lock();
                let list = state.list();
                match read {
                    Ok(0) => list.on_end(now),
                    Ok(n) => {
                        list.on_chunk(now, &buf[..n]);
                        continue;
                    }
                    Err(e) if e.is_timeout() => list.on_silence(now),
                    Err(e) => list.on_broken(now, e),
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
fn connect(client: &Client) -> Option<Body> {
    let hub = client.hub();
    let request = hub.lock().list().request(client.config());
    let answer = match request {
        Ok(request) => client.transport().send(request),
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
            let text = stream.read_to_bytes(REFUSAL_LIMIT).unwrap_or_default();
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
