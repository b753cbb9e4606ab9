//! Waiting by push: while any job of the client is awaited, one task follows
//! `GET /v1/events` with the connection loop of [`stream`](crate::stream) and wakes each
//! waiting job at its `done`. The core's [`push::Hub`] decides everything — where the
//! stream starts, when to reconnect, whom to wake, when to fall back.

use std::sync::Mutex;
use std::time::Instant;

use jobwire_core::backoff::jitter_seed;
use jobwire_core::push::{self, Joined, Ticket, Wake};
use jobwire_core::{ClientConfig, JobSnapshot};
use tokio::sync::{oneshot, Notify};

use crate::stream::{follow, lock};
use crate::Client;

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
    /// Rung when the last waiter leaves (or the client closes), so the driver stops
    /// reading at once.
    emptied: Notify,
    /// The driver's task, for `close` to wait for.
    driver: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Hub {
    pub(crate) fn new(config: &ClientConfig) -> Self {
        Hub {
            state: Mutex::new(
                push::Hub::new(config.stream_idle_timeout_value(), jitter_seed())
                    .event_limit(config.max_event_bytes_value()),
            ),
            emptied: Notify::new(),
            driver: Mutex::new(None),
        }
    }

    /// Ends the stream for good and waits for its driver to be gone.
    pub(crate) async fn close(&self) {
        let running = lock(&self.state).close();
        self.emptied.notify_one();
        let driver = lock(&self.driver).take();
        if let (true, Some(driver)) = (running, driver) {
            // A driver that panicked is gone too.
            let _ = driver.await;
        }
    }
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").finish_non_exhaustive()
    }
}

/// A registered wait; leaves the hub when dropped.
struct Waiting<'a> {
    hub: &'a Hub,
    ticket: Ticket,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if lock(&self.hub.state).leave(self.ticket) {
            self.hub.emptied.notify_one();
        }
    }
}

impl Client {
    /// The wake for a job seen as `seen`, from the client's shared event stream, or
    /// `None` when `deadline` passed first. Registers the wait (starting the stream's
    /// task if none runs) and leaves again when it ends, however it ends.
    pub(crate) async fn wake_of(
        &self,
        seen: &JobSnapshot,
        deadline: Option<Instant>,
    ) -> Option<Wake> {
        let hub = self.hub();
        let (ticket, mut woken) = {
            // Without a tokio runtime to drive the stream on, long-poll.
            let Ok(runtime) = tokio::runtime::Handle::try_current() else {
                return Some(Wake::LongPoll);
            };
            let joined = lock(&hub.state).join(Instant::now(), &seen.job.id, seen.position, || {
                let (waker, woken) = oneshot::channel();
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
                *lock(&hub.driver) = Some(runtime.spawn(drive(self.clone())));
            }
            (ticket, woken)
        };
        let _waiting = Waiting { hub, ticket };
        let woken = match deadline {
            // Boxed: most waits have no deadline, and thousands of them wait at once, so
            // the timer is kept out of the common wait's future.
            Some(deadline) => Box::pin(tokio::time::timeout_at(deadline.into(), &mut woken))
                .await
                .ok()?,
            None => (&mut woken).await,
        };
        // A dropped waker means the driver is gone: long-poll instead.
        Some(woken.unwrap_or(Wake::LongPoll))
    }
}

/// The driver: follows the stream while anyone waits.
async fn drive(client: Client) {
    let hub = client.hub();
    let mut abandon = push::DriverGuard::new(&hub.state);
    let mut body = None;
    // The hub yields nothing (it wakes its waiters itself): the loop ends at its stop.
    if let Some(never) = follow(&client, &hub.state, &mut body, Some(&hub.emptied)).await {
        match never {}
    }
    abandon.disarm();
}
