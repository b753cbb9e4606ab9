//! The retention pass in the background: events of jobs that finished more than their
//! window ago, idempotency keys older than theirs, and finished jobs older than theirs
//! are removed, so no store grows without end.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::clock::rfc3339_at;
use crate::store::{Cutoffs, Store};

/// How long each kind of thing is kept.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Windows {
    /// Events, after their job finished.
    pub events: Duration,
    /// Idempotency keys, after they were recorded.
    pub keys: Duration,
    /// Finished jobs, after they finished.
    pub jobs: Duration,
}

impl Windows {
    /// What a pass at `now` removes.
    fn cutoffs(&self, now: SystemTime) -> Cutoffs {
        Cutoffs {
            events_before: before(now, self.events),
            keys_before: before(now, self.keys),
            jobs_before: before(now, self.jobs),
        }
    }
}

/// A pass that removed this many jobs (or events) may have left more behind.
const BACKLOG_BATCH: usize = 5_000;

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

/// Runs retention passes over `store` until `closed` turns true, keeping things as long
/// as `windows` says. A pass that found a full batch to remove is followed by another at
/// once, so a backlog is worked off in short passes.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    windows: Windows,
    mut closed: watch::Receiver<bool>,
) {
    let interval = interval_for(windows.events.min(windows.keys).min(windows.jobs));
    let mut backlog = false;
    loop {
        let pause = if backlog {
            Duration::from_millis(10)
        } else {
            interval
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = closed.wait_for(|closed| *closed) => return,
        }
        backlog = false;
        match store.prune(&windows.cutoffs(SystemTime::now())).await {
            Ok(pruned) if pruned.events + pruned.jobs + pruned.keys > 0 => {
                backlog = pruned.jobs >= BACKLOG_BATCH || pruned.events >= BACKLOG_BATCH;
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
    fn cutoffs_are_each_window_before_now() {
        let windows = Windows {
            events: Duration::from_secs(60),
            keys: Duration::from_secs(3600),
            jobs: Duration::from_secs(7200),
        };
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
        let cutoffs = windows.cutoffs(now);
        assert_eq!(cutoffs.events_before, "1970-01-01T02:45:40.000000Z");
        assert_eq!(cutoffs.keys_before, "1970-01-01T01:46:40.000000Z");
        assert_eq!(cutoffs.jobs_before, "1970-01-01T00:46:40.000000Z");
        // Windows longer than the time since the epoch: nothing is old enough.
        let early = windows.cutoffs(SystemTime::UNIX_EPOCH + Duration::from_secs(10));
        assert_eq!(early.jobs_before, "1970-01-01T00:00:00.000000Z");
    }

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
