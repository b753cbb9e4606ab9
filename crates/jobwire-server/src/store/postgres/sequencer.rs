//! The sequencer: the one task, among every server on the database, that gives ids to
//! committed events (see the store's module docs for the design and its failure cases);
//! and [`Numbering`], through which a writer in this process learns the ids its events
//! got.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::{oneshot, watch, Notify};
use tokio_postgres_rustls::MakeRustlsConnect;

use super::listener::{stopped, subscribe};
use super::{err, get, StoreError};

/// The channel writers notify (after their commit) to wake the sequencer (spelled out
/// in `writer::WAKE` as well).
pub(super) const UNNUMBERED: &str = "jobwire_unnumbered";

/// The `application_name` of the sequencer's connection, by which an operator (or a
/// test) finds its backend in `pg_stat_activity`.
pub(super) const APPLICATION_NAME: &str = "jobwire-sequencer";

/// The key of the session-level advisory lock whose holder is the sequencer.
const LOCK: &str = "SELECT pg_try_advisory_lock(hashtext('jobwire-sequencer')::bigint)";

/// Most events one numbering transaction takes.
const STEP: i64 = 5_000;

/// How often a server that is not the sequencer tries to become it (the longest a dead
/// sequencer's work waits, once its session is gone), and how often the sequencer looks
/// for unnumbered events when no notification came.
const POLL_EVERY: Duration = Duration::from_millis(200);

/// The sequencer vacuums the inbox after moving this many events out of it, or
/// [`VACUUM_EVERY`] after moving any: each step reads the inbox's index from its start,
/// dead entries included, so they must not pile up until autovacuum's next round
/// (a minute away).
const VACUUM_AFTER: i64 = 2_000;

const VACUUM_EVERY: Duration = Duration::from_secs(1);

/// The pause before reconnecting after the sequencer's connection failed.
const RETRY_AFTER: Duration = Duration::from_millis(100);

/// Writers of this process waiting for the ids of their committed events, by insertion
/// key; the listener tells it the id of every event it reads.
#[derive(Debug, Default)]
pub(super) struct Numbering {
    waiting: Mutex<HashMap<i64, Slot>>,
}

/// Where an event's id goes: its write's gathering, and its place there.
type Slot = (Arc<Mutex<Gather>>, usize);

/// The ids of one write's events, as they arrive.
#[derive(Debug)]
struct Gather {
    ids: Vec<i64>,
    left: usize,
    done: Option<oneshot::Sender<Vec<i64>>>,
}

impl Numbering {
    /// Starts waiting for the ids of the events with these insertion keys (before the
    /// transaction that inserted them commits, so no id is told before it is awaited).
    pub(super) fn expect(&self, positions: &[i64]) -> oneshot::Receiver<Vec<i64>> {
        let (done, ids) = oneshot::channel();
        if positions.is_empty() {
            let _ = done.send(Vec::new());
            return ids;
        }
        let gather = Arc::new(Mutex::new(Gather {
            ids: vec![0; positions.len()],
            left: positions.len(),
            done: Some(done),
        }));
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        for (i, pos) in positions.iter().enumerate() {
            waiting.insert(*pos, (Arc::clone(&gather), i));
        }
        ids
    }

    /// Stops waiting for these (their transaction did not commit).
    pub(super) fn forget(&self, positions: &[i64]) {
        let mut waiting = self.waiting.lock().unwrap_or_else(PoisonError::into_inner);
        for pos in positions {
            waiting.remove(pos);
        }
    }

    /// The event with insertion key `pos` got id `seq`.
    pub(super) fn numbered(&self, pos: i64, seq: i64) {
        let entry = self
            .waiting
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&pos);
        let Some((gather, i)) = entry else {
            return;
        };
        let mut gather = gather.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(id) = gather.ids.get_mut(i) {
            *id = seq;
        }
        gather.left = gather.left.saturating_sub(1);
        if gather.left == 0 {
            let ids = std::mem::take(&mut gather.ids);
            if let Some(done) = gather.done.take() {
                let _ = done.send(ids);
            }
        }
    }
}

/// The task that becomes the sequencer when no other session is, and numbers events
/// while it is.
pub(super) struct Sequencer {
    pub(super) config: tokio_postgres::Config,
    pub(super) tls: MakeRustlsConnect,
    /// Woken by this process's writers after each commit.
    pub(super) wake: Arc<Notify>,
    /// Set while this task holds the lock.
    pub(super) leading: Arc<AtomicBool>,
    /// The server is stopping.
    pub(super) closed: watch::Receiver<bool>,
    /// `true` (or the store dropped): stop.
    pub(super) stop: watch::Receiver<bool>,
}

impl Sequencer {
    /// Runs until stopped: connects, waits to hold the lock, numbers while it does;
    /// on any failure of its connection starts over (the lock went with the session).
    pub(super) async fn run(self) {
        let mut config = self.config.clone();
        config.application_name(APPLICATION_NAME);
        let (mut stop, mut closed) = (self.stop.clone(), self.closed.clone());
        loop {
            let result = tokio::select! {
                result = self.serve(&config) => result,
                () = stopped(&mut stop, &mut closed) => return,
            };
            self.leading.store(false, Ordering::Release);
            if let Err(e) = result {
                tracing::warn!(error = %e, "the event sequencer's connection failed");
            }
            tokio::select! {
                () = tokio::time::sleep(RETRY_AFTER) => {}
                () = stopped(&mut stop, &mut closed) => return,
            }
        }
    }

    /// One connection's life: a candidate until it takes the lock, then the sequencer.
    async fn serve(&self, config: &tokio_postgres::Config) -> Result<(), StoreError> {
        let mut subscription = subscribe(config, &self.tls, UNNUMBERED).await?;
        let client = &subscription.client;
        loop {
            let row = client
                .query_one(LOCK, &[])
                .await
                .map_err(err("taking the sequencer's lock"))?;
            if get::<bool>(&row, 0, "taking the sequencer's lock")? {
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(POLL_EVERY) => {}
                woke = subscription.notified.recv() => {
                    if woke.is_none() {
                        return Err(StoreError::new("the sequencer's connection was lost"));
                    }
                }
            }
        }
        tracing::debug!("this server numbers the events now");
        self.leading.store(true, Ordering::Release);
        let step = client
            .prepare("SELECT o_numbered FROM jobwire_number_events($1)")
            .await
            .map_err(err("preparing the sequencer's step"))?;
        let mut moved = 0;
        let mut vacuumed = tokio::time::Instant::now();
        loop {
            // Everything committed so far, in steps.
            loop {
                let row = client
                    .query_one(&step, &[&STEP])
                    .await
                    .map_err(err("numbering events"))?;
                let numbered: i64 = get(&row, 0, "numbering events")?;
                moved += numbered;
                if numbered < STEP {
                    break;
                }
            }
            if moved >= VACUUM_AFTER || (moved > 0 && vacuumed.elapsed() >= VACUUM_EVERY) {
                // Not an error if it cannot (another role owns the table): autovacuum
                // still comes, later.
                if let Err(e) = client.batch_execute("VACUUM event_inbox").await {
                    tracing::debug!(error = %e, "cannot vacuum the event inbox");
                }
                moved = 0;
                vacuumed = tokio::time::Instant::now();
            }
            tokio::select! {
                () = self.wake.notified() => {}
                woke = subscription.notified.recv() => {
                    if woke.is_none() {
                        return Err(StoreError::new("the sequencer's connection was lost"));
                    }
                }
                () = tokio::time::sleep(POLL_EVERY) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_learns_its_ids_once_all_are_numbered() {
        let numbering = Numbering::default();
        let mut first = numbering.expect(&[10, 12]);
        let mut second = numbering.expect(&[11]);
        let mut none = numbering.expect(&[]);
        assert_eq!(none.try_recv().unwrap(), Vec::<i64>::new());
        numbering.numbered(10, 7);
        assert!(first.try_recv().is_err(), "one id still missing");
        numbering.numbered(11, 8);
        numbering.numbered(12, 9);
        numbering.numbered(13, 10); // nobody's
        assert_eq!(first.try_recv().unwrap(), [7, 9]);
        assert_eq!(second.try_recv().unwrap(), [8]);
        let mut forgotten = numbering.expect(&[20]);
        numbering.forget(&[20]);
        numbering.numbered(20, 11);
        assert!(forgotten.try_recv().is_err());
        assert!(numbering.waiting.lock().unwrap().is_empty());
    }
}
