//! Waiting by push: while any job of the client is awaited, one reader thread follows
//! `GET /v1/events` with the connection loop of [`stream`](crate::stream) and wakes each
//! waiting thread at its job's `done`. The core's [`push::Hub`] decides everything —
//! where the stream starts, when to reconnect, whom to wake, when to fall back.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jobwire_core::backoff::jitter_seed;
use jobwire_core::push::{self, Joined, Wake};
use jobwire_core::{ClientConfig, JobSnapshot};

use crate::stream::{follow, lock, Connection};
use crate::Client;

/// A waiting thread's end of its wake: a channel with room for the one wake, so the
/// reader never blocks on it.
struct Waker(mpsc::SyncSender<Wake>);

impl push::Waker for Waker {
    fn wake(self, wake: Wake) {
        // A receiver gone means its wait ended meanwhile.
        let _ = self.0.try_send(wake);
    }
}

/// The longest the reader thread's blocked read waits before it looks up: how soon it
/// stops once nobody waits, or the client closes.
const TICK: Duration = Duration::from_millis(250);

/// The push state of a client, shared by its clones.
pub(crate) struct Hub {
    state: Mutex<push::Hub<Waker>>,
    /// The reader thread, for `close` to wait for.
    reader: Mutex<Option<JoinHandle<()>>>,
}

impl Hub {
    pub(crate) fn new(config: &ClientConfig) -> Self {
        Hub {
            state: Mutex::new(
                push::Hub::new(config.stream_idle_timeout_value(), jitter_seed())
                    .event_limit(config.max_event_bytes_value())
                    .reads_in_ticks(TICK),
            ),
            reader: Mutex::new(None),
        }
    }

    /// Ends the stream for good and waits for the reader thread to be gone (a tick at
    /// most).
    pub(crate) fn close(&self) {
        lock(&self.state).close();
        let reader = lock(&self.reader).take();
        if let Some(reader) = reader {
            if reader.thread().id() != std::thread::current().id() {
                // A reader that panicked is gone too.
                let _ = reader.join();
            }
        }
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

impl Client {
    /// The wake for a job seen as `seen`, from the client's shared event stream, or
    /// `None` when `deadline` passed first. Registers the wait (starting the reader
    /// thread if none runs) and leaves again when it ends, however it ends.
    pub(crate) fn wake_of(&self, seen: &JobSnapshot, deadline: Option<Instant>) -> Option<Wake> {
        let hub = self.hub();
        let (ticket, woken) = {
            let mut state = lock(&hub.state);
            let joined = state.join(Instant::now(), &seen.job.id, seen.position, || {
                let (waker, woken) = mpsc::sync_channel(1);
                (Waker(waker), woken)
            });
            let Joined {
                ticket,
                woken,
                start_driver,
            } = match joined.into_wake() {
                Ok(joined) => joined,
                Err(wake) => return Some(wake),
            };
            if start_driver {
                let client = self.clone();
                let started = std::thread::Builder::new()
                    .name("jobwire-events".into())
                    .spawn(move || read_events(client));
                match started {
                    Ok(reader) => *lock(&hub.reader) = Some(reader),
                    Err(_) => {
                        // No thread to read with: this wait long-polls.
                        state.driver_not_started(ticket);
                        return Some(Wake::LongPoll);
                    }
                }
            }
            (ticket, woken)
        };
        let woken = match deadline {
            Some(deadline) => {
                match woken.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Err(RecvTimeoutError::Timeout) => None,
                    other => Some(other.ok()),
                }
            }
            None => Some(woken.recv().ok()),
        };
        lock(&hub.state).leave(ticket);
        // A dropped waker means the reader is gone: long-poll instead.
        woken.map(|wake| wake.unwrap_or(Wake::LongPoll))
    }
}

/// The reader thread: follows the stream while anyone waits. A blocked read cannot be
/// interrupted, so it reads in ticks: after the last wait ends, or the client closes,
/// the thread stops within one.
fn read_events(client: Client) {
    let hub = client.hub();
    let mut abandon = push::DriverGuard::new(&hub.state);
    let mut connection = Connection::default();
    // The hub yields nothing (it wakes its waiters itself): the loop ends at its stop.
    if let Some(never) = follow(&client, &hub.state, &mut connection) {
        match never {}
    }
    abandon.disarm();
}
