//! The listener: one task per process that publishes, in id order, every event any
//! server commits — woken by `NOTIFY`, and once a second in case a notification was lost.

use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::sequencer::Numbering;
use super::{connect_error, err, event_from, get, limit, query, CHANNEL};
use crate::bus::EventBus;
use crate::store::StoreError;

/// Every event after `$1`, whichever tenant's, oldest first: what the listener
/// publishes.
pub(super) const UNPUBLISHED: &str = "
SELECT tenant, seq, job_id, service_id, kind, data, created_at, pos FROM events
WHERE seq > $1 ORDER BY seq LIMIT $2";

/// The listener reads new events in batches of this many.
pub(super) const PUBLISH_BATCH: i64 = 1000;

/// The listener also looks for new events this often, in case a notification was lost.
pub(super) const POLL_EVERY: Duration = Duration::from_secs(1);

/// The first and the longest pause before reconnecting the `LISTEN` connection.
pub(super) const MIN_BACKOFF: Duration = Duration::from_millis(100);

pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How long the listener may take to publish what is left when the store closes.
pub(super) const FINAL_PUBLISH: Duration = Duration::from_secs(2);

/// The task that publishes committed events on the bus; see the module docs.
pub(super) struct Listener {
    pub(super) pool: Pool,
    /// Where to open the `LISTEN` connection (outside the pool: it stays subscribed).
    pub(super) config: tokio_postgres::Config,
    /// The pool's TLS connector: the `LISTEN` connection is encrypted and checked alike.
    pub(super) tls: MakeRustlsConnect,
    pub(super) bus: Arc<EventBus>,
    /// This process's writers waiting for their events' ids.
    pub(super) numbering: Arc<Numbering>,
    /// The server is stopping.
    pub(super) closed: watch::Receiver<bool>,
    /// The highest id published on the bus.
    pub(super) published: i64,
    /// `true` (or the store dropped): stop.
    pub(super) stop: watch::Receiver<bool>,
}

/// A `LISTEN` connection: its client, the task driving it, and a wake-up per burst of
/// notifications. The channel closes when the connection is lost.
pub(super) struct Subscription {
    pub(super) client: tokio_postgres::Client,
    pub(super) driver: JoinHandle<()>,
    pub(super) notified: mpsc::Receiver<()>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Why the listener stopped following notifications.
pub(super) enum Followed {
    /// The store was closed or dropped, or the server is stopping.
    Stopped,
    /// The `LISTEN` connection was lost.
    Lost,
}

impl Listener {
    /// Publishes until stopped, reconnecting (with backoff) when the `LISTEN` connection
    /// drops; polls once a second all along.
    pub(super) async fn run(mut self) {
        let mut backoff = MIN_BACKOFF;
        'run: loop {
            let subscribed = tokio::select! {
                subscribed = subscribe(&self.config, &self.tls, CHANNEL) => subscribed,
                () = stopped(&mut self.stop, &mut self.closed) => break,
            };
            match subscribed {
                Ok(mut subscription) => {
                    backoff = MIN_BACKOFF;
                    if let Followed::Stopped = self.follow(&mut subscription).await {
                        break;
                    }
                    tracing::warn!("the PostgreSQL LISTEN connection was lost");
                }
                Err(e) => tracing::warn!(error = %e, "cannot listen for PostgreSQL events"),
            }
            // Disconnected: keep polling until the next attempt.
            let retry_at = tokio::time::Instant::now() + backoff;
            loop {
                let now = tokio::time::Instant::now();
                if now >= retry_at {
                    break;
                }
                let stop = tokio::select! {
                    () = tokio::time::sleep(POLL_EVERY.min(retry_at - now)) => false,
                    () = stopped(&mut self.stop, &mut self.closed) => true,
                };
                if stop {
                    break 'run;
                }
                self.catch_up().await;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        self.finish().await;
    }

    /// Publishes on every notification and every second until stopped or disconnected.
    async fn follow(&mut self, subscription: &mut Subscription) -> Followed {
        // What was committed before LISTEN took effect has sent its notification already.
        self.catch_up().await;
        let mut poll = tokio::time::interval(POLL_EVERY);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        poll.tick().await;
        loop {
            tokio::select! {
                woke = subscription.notified.recv() => {
                    if woke.is_none() {
                        return Followed::Lost;
                    }
                }
                _ = poll.tick() => {}
                () = stopped(&mut self.stop, &mut self.closed) => return Followed::Stopped,
            }
            self.catch_up().await;
        }
    }

    /// Publishes what is new, logging a failure (the next wake-up or poll retries).
    async fn catch_up(&mut self) {
        if let Err(e) = self.publish_new().await {
            tracing::warn!(error = %e, "cannot publish new events");
        }
    }

    /// On an orderly close (not when the server is stopping: its streams are ending),
    /// publishes what this process committed last, briefly.
    async fn finish(&mut self) {
        if *self.closed.borrow() {
            return;
        }
        if tokio::time::timeout(FINAL_PUBLISH, self.catch_up())
            .await
            .is_err()
        {
            tracing::warn!("gave up publishing the last events");
        }
    }

    /// Reads the events after the last one published, oldest first, and publishes
    /// them in batches.
    async fn publish_new(&mut self) -> Result<(), StoreError> {
        const WHAT: &str = "reading new events";
        let client = self
            .pool
            .get()
            .await
            .map_err(err("taking a connection from the pool"))?;
        loop {
            let rows = query(
                &client,
                WHAT,
                UNPUBLISHED,
                &[&self.published, &PUBLISH_BATCH],
            )
            .await?;
            let mut batch = Vec::with_capacity(rows.len());
            for row in &rows {
                self.numbering
                    .numbered(get(row, 7, WHAT)?, get(row, 1, WHAT)?);
                let tenant_event = get::<String>(row, 0, WHAT)
                    .and_then(|tenant| event_from(row, 1).map(|event| (tenant, event)));
                // A row that cannot be read is skipped, not retried forever.
                match tenant_event {
                    Ok(tenant_event) => batch.push(tenant_event),
                    Err(e) => tracing::warn!(error = %e, "skipping an unreadable event"),
                }
            }
            if let Some(row) = rows.last() {
                self.published = self.published.max(get(row, 1, WHAT)?);
            }
            self.bus.publish(batch);
            if limit(rows.len()) < PUBLISH_BATCH {
                return Ok(());
            }
        }
    }
}

/// Opens a connection and starts `LISTEN` on `channel` on it.
pub(super) async fn subscribe(
    config: &tokio_postgres::Config,
    tls: &MakeRustlsConnect,
    channel: &str,
) -> Result<Subscription, StoreError> {
    let (client, mut connection) = config
        .connect(tls.clone())
        .await
        .map_err(|e| connect_error("opening the LISTEN connection".into(), &e))?;
    let (wake, notified) = mpsc::channel(1);
    let driver = tokio::spawn(async move {
        // poll_message drives the connection and yields what the server sends unasked:
        // notifications and notices.
        let mut messages = futures_util::stream::poll_fn(|cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                // Full: a wake-up is pending already, which covers this one too.
                Ok(AsyncMessage::Notification(_)) => {
                    let _ = wake.try_send(());
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "the PostgreSQL LISTEN connection failed");
                    break;
                }
            }
        }
    });
    // From here on, dropping the subscription stops the driver.
    let subscription = Subscription {
        client,
        driver,
        notified,
    };
    subscription
        .client
        .batch_execute(&format!("LISTEN {channel}"))
        .await
        .map_err(err("subscribing to event notifications"))?;
    Ok(subscription)
}

/// Resolves when the store is closed or dropped, or the server is stopping.
pub(super) async fn stopped(stop: &mut watch::Receiver<bool>, closed: &mut watch::Receiver<bool>) {
    // An error means the sender is gone (the store was dropped): stop as well.
    tokio::select! {
        _ = stop.wait_for(|stop| *stop) => {}
        _ = closed.wait_for(|closed| *closed) => {}
    }
}
