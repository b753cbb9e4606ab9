//! How `run` (submit, then wait for the result) goes, decided once for both facades: the
//! submit asks the server to hold its answer a moment, so that a quick job costs one
//! round trip (a second when waits use the event stream, which wakes a longer job at
//! once anyway; a whole long-poll when they do not), and one deadline covers the hold
//! and the waiting after it.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use jobwire_core::run::RunPlan;
//! use jobwire_core::ClientConfig;
//!
//! let now = Instant::now();
//! let config = ClientConfig::default().wait_timeout(Duration::from_secs(20)).validate()?;
//! let plan = RunPlan::new(&config, None, now);
//! assert_eq!(plan.submit_options().wait_value(), Some(Duration::from_secs(1)));
//! assert_eq!(plan.deadline(), Some(now + Duration::from_secs(20)));
//! # Ok::<(), jobwire_core::Error>(())
//! ```

use std::time::{Duration, Instant};

use crate::config::ClientConfig;
use crate::deadline;
use crate::SubmitOptions;

/// How long a `run`'s submit asks the server to hold its answer when waits use events.
const HOLD_WITH_EVENTS: Duration = Duration::from_secs(1);

/// The submit options and the deadline of one `run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPlan {
    options: SubmitOptions,
    deadline: Option<Instant>,
}

impl RunPlan {
    /// The plan of a `run` started at `now` by a client with `config` whose calls must
    /// end by `deadline` (its `within`, if any); the client's `wait_timeout` bounds it
    /// too.
    pub fn new(config: &ClientConfig, deadline: Option<Instant>, now: Instant) -> Self {
        let limit = config.wait_timeout_value();
        let deadline = deadline::earlier(deadline, limit.and_then(|t| deadline::after(now, t)));
        let hold = if config.wait_by_events_value() {
            HOLD_WITH_EVENTS
        } else {
            config.long_poll_value()
        };
        let wait = limit.map_or(hold, |t| hold.min(t));
        RunPlan {
            options: SubmitOptions::default().wait(wait),
            deadline,
        }
    }

    /// The same plan with a submit the server answers at once: for a job whose events
    /// are followed anyway (a batch with a progress hook).
    pub fn answered_at_once(mut self) -> Self {
        self.options = SubmitOptions::default();
        self
    }

    /// The options of the submit.
    pub fn submit_options(&self) -> SubmitOptions {
        self.options.clone()
    }

    /// When the whole run must end.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_plan_table() {
        let t0 = Instant::now();
        // (wait by events, long poll, wait timeout, client deadline after t0) →
        // (the hold asked for, the deadline after t0)
        type Row = (
            bool,
            u64,
            Option<u64>,
            Option<u64>,
            Option<u64>,
            Option<u64>,
        );
        let table: Vec<Row> = vec![
            (true, 30, None, None, Some(1), None),
            (false, 30, None, None, Some(30), None),
            (false, 30, Some(5), None, Some(5), Some(5)),
            (true, 30, Some(20), Some(8), Some(1), Some(8)),
            (true, 30, Some(3), Some(8), Some(1), Some(3)),
            (false, 10, None, Some(4), Some(10), Some(4)),
        ];
        for (by_events, long_poll, wait_timeout, within, hold, deadline) in table {
            let mut config = ClientConfig::default()
                .wait_by_events(by_events)
                .long_poll(S(long_poll));
            if let Some(t) = wait_timeout {
                config = config.wait_timeout(S(t));
            }
            let config = config.validate().unwrap();
            let plan = RunPlan::new(&config, within.map(|w| t0 + S(w)), t0);
            let row = (by_events, long_poll, wait_timeout, within);
            assert_eq!(plan.submit_options().wait_value(), hold.map(S), "{row:?}");
            assert_eq!(plan.deadline(), deadline.map(|d| t0 + S(d)), "{row:?}");
            assert_eq!(
                plan.answered_at_once().submit_options(),
                SubmitOptions::default()
            );
        }
    }
}
