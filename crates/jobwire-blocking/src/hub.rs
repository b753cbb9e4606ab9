//! Waiting by push: while any job of the client is awaited, one reader thread follows
//! `GET /v1/events` and wakes each waiting thread at its job's `done`. It only drives the
//! core's [`Watchlist`], which decides everything: where the stream starts, when to
//! reconnect, whom to wake, when to fall back to long-polls.

use std::collections::HashMap;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use jobwire_core::follow;
use jobwire_core::push::{HubStep, Registration, Ticket, Wake, Watch, Watchlist};
use jobwire_core::transport::Body;
use jobwire_core::{ClientConfig, TransportError, TransportErrorKind};

use crate::Client;

/// The largest error answer the reader reads to learn why it was refused.
const REFUSAL_LIMIT: usize = 64 * 1024;
/// The reader's buffer.
const CHUNK: usize = 16 * 1024;

/// The push state of a client, shared by its clones.
pub(crate) struct Hub {
    state: Mutex<State>,
}

struct State {
    list: Watchlist,
    wakers: HashMap<Ticket, mpsc::SyncSender<Wake>>,
    reading: bool,
}

impl Hub {
    pub(crate) fn new(config: &ClientConfig) -> Self {
        Hub {
            state: Mutex::new(State {
                list: Watchlist::new(config.stream_idle_limit(), follow::jitter_seed()),
                wakers: HashMap::new(),
                reading: false,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state is consistent between statements; a panic elsewhere changes nothing.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl State {
    fn deliver(&mut self) {
        for (ticket, wake) in self.list.take_wakes() {
            if let Some(waker) = self.wakers.remove(&ticket) {
                // Room for one: never blocks. A receiver gone means its wait ended.
                let _ = waker.try_send(wake);
            }
        }
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
        // A dropped sender means the reader is gone: long-poll instead.
        Some(woken.unwrap_or(Wake::LongPoll))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut state = self.client.hub().lock();
        state.list.cancel(self.ticket);
        state.wakers.remove(&self.ticket);
    }
}

impl Client {
    /// Registers a wait for a job last seen at event `position`.
    pub(crate) fn watch(&self, job_id: &str, position: Option<u64>) -> Watch<Waiting> {
        let mut state = self.hub().lock();
        match state.list.register(Instant::now(), job_id, position) {
            Registration::Waiting(ticket) => {
                let (waker, woken) = mpsc::sync_channel(1);
                state.wakers.insert(ticket, waker);
                if !state.reading {
                    let client = self.clone();
                    let started = std::thread::Builder::new()
                        .name("jobwire-events".into())
                        .spawn(move || read_events(client));
                    if started.is_err() {
                        // No thread to read with: this wait long-polls.
                        state.list.cancel(ticket);
                        state.wakers.remove(&ticket);
                        return Watch::LongPoll;
                    }
                    state.reading = true;
                }
                Watch::Waiting(Waiting {
                    client: self.clone(),
                    ticket,
                    woken,
                })
            }
            Registration::Finished(job) => Watch::Finished(job),
            Registration::Recheck => Watch::Recheck,
            _ => Watch::LongPoll,
        }
    }
}

/// Hands every wait over to long-polls if the reader ends without `Stop` (a panic), so
/// no wait is left without anyone to wake it.
/// Disarmed when the watchlist said `Stop` (and `reading` was cleared under the lock):
/// by then another driver may already own the list.
struct Abandon<'a> {
    hub: &'a Hub,
    armed: bool,
}

impl Drop for Abandon<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.hub.lock();
            state.reading = false;
            state.list.abandon();
            state.deliver();
        }
    }
}

/// The reader thread: follows the stream while anyone waits. A blocked read cannot be
/// interrupted, so after the last wait ends the thread stops at the next byte (a
/// keep-alive at the latest).
fn read_events(client: Client) {
    let hub = client.hub();
    let mut abandon = Abandon { hub, armed: true };
    let mut body: Option<Body> = None;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let step = {
            let mut state = hub.lock();
            let step = state.list.next(Instant::now());
            state.deliver();
            if step == HubStep::Stop {
                state.reading = false;
            }
            step
        };
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
                match read {
                    Ok(0) => state.list.on_end(now),
                    Ok(n) => {
                        state.list.on_chunk(now, &buf[..n]);
                        continue;
                    }
                    Err(e) if e.is_timeout() => state.list.on_silence(now),
                    Err(e) => state.list.on_broken(now, e),
                }
                drop(state);
                body = None;
            }
            _ => {
                abandon.armed = false;
                return;
            }
        }
    }
}

/// Opens the stream the watchlist asks for; the body when it is one.
fn connect(client: &Client) -> Option<Body> {
    let hub = client.hub();
    let request = hub.lock().list.request(client.config());
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
            if hub.lock().list.on_head(now, &head) {
                return Some(stream);
            }
            let text = stream.read_to_bytes(REFUSAL_LIMIT).unwrap_or_default();
            hub.lock()
                .list
                .on_refused(now, http::Response::from_parts(head, text));
            None
        }
        Err(e) => {
            hub.lock().list.on_broken(now, e);
            None
        }
    }
}
