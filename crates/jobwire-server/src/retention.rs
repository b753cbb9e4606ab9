//! The retention pass in the background: events of jobs that finished more than the
//! retention window ago, and idempotency keys older than theirs, are removed, so the
//! store does not grow without end (and the in-memory store drops finished jobs past its
//! cap).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::clock::rfc3339_at;
use crate::store::Store;

/// How often a pass runs for a retention `window`: often enough that nothing outlives
/// its window by much more than a quarter of it, never more than once a minute apart.
fn interval_for(window: Duration) -> Duration {
    (window / 4).clamp(Duration::from_millis(50), Duration::from_secs(60))
}

/// The time `window` before `now`, as the server writes times.
fn before(now: SystemTime, window: Duration) -> String {
    now.checked_sub(window)
        .map_or_else(|| rfc3339_at(SystemTime::UNIX_EPOCH), rfc3339_at)
}

/// Runs retention passes over `store` until `closed` turns true: events kept `window`
/// after their job finished, idempotency keys `keys_window` after they were recorded.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    window: Duration,
    keys_window: Duration,
    mut closed: watch::Receiver<bool>,
) {
    let interval = interval_for(window.min(keys_window));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = closed.wait_for(|closed| *closed) => return,
        }
        let now = SystemTime::now();
        let (events_before, keys_before) = (before(now, window), before(now, keys_window));
        match store.prune(&events_before, &keys_before).await {
            Ok(pruned) if pruned.events + pruned.jobs + pruned.keys > 0 => {
                tracing::debug!(
                    events = pruned.events,
                    jobs = pruned.jobs,
                    keys = pruned.keys,
                    "retention pass"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention pass failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_follow_the_window_within_bounds() {
        for (window, want) in [
            (Duration::from_secs(3600), Duration::from_secs(60)),
            (Duration::from_secs(120), Duration::from_secs(30)),
            (Duration::from_millis(100), Duration::from_millis(50)),
        ] {
            assert_eq!(interval_for(window), want);
        }
    }
}
