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

use serde::de::DeserializeOwned;

use crate::config::ClientConfig;
use crate::deadline;
use crate::event::{EventKind, JobEvent};
use crate::options::RunOptions;
use crate::outcome::job_result;
use crate::{Error, SubmitOptions};

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
        Self::with_options(config, deadline, &RunOptions::default(), now)
    }

    /// The plan of a `run_with(.., options)`: its labels and key on the submit, its wait
    /// hint instead of the default hold, and its timeout bounding the whole run too.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use jobwire_core::options::RunOptions;
    /// use jobwire_core::run::RunPlan;
    /// use jobwire_core::ClientConfig;
    ///
    /// let now = Instant::now();
    /// let config = ClientConfig::default().validate()?;
    /// let options = RunOptions::default().idempotency_key("k1").wait(Duration::from_secs(5)).timeout(Duration::from_secs(3));
    /// let plan = RunPlan::with_options(&config, None, &options, now);
    /// assert_eq!(plan.submit_options().idempotency_key_value(), Some("k1"));
    /// assert_eq!(plan.submit_options().wait_value(), Some(Duration::from_secs(3)), "never past the run's end");
    /// assert_eq!(plan.deadline(), Some(now + Duration::from_secs(3)));
    /// # Ok::<(), jobwire_core::Error>(())
    /// ```
    pub fn with_options(
        config: &ClientConfig,
        deadline: Option<Instant>,
        options: &RunOptions,
        now: Instant,
    ) -> Self {
        let limit = [config.wait_timeout_value(), options.timeout_value()]
            .into_iter()
            .flatten()
            .min();
        let deadline = deadline::earlier(deadline, limit.and_then(|t| deadline::after(now, t)));
        let hold = if config.wait_by_events_value() {
            HOLD_WITH_EVENTS
        } else {
            config.long_poll_value()
        };
        let hold = options.submit_options().wait_value().unwrap_or(hold);
        let wait = limit.map_or(hold, |t| hold.min(t));
        RunPlan {
            options: options.submit_options().clone().wait(wait),
            deadline,
        }
    }

    /// The same plan with a submit the server answers at once (its labels and key
    /// kept): for a job whose events are followed anyway (a batch with a progress hook,
    /// a streaming run).
    pub fn answered_at_once(mut self) -> Self {
        self.options = self.options.without_wait();
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

/// What a streaming run hands out: the job's events as they happen, then its typed
/// result (a job that failed or was cancelled is the stream's last item, as an error).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RunEvent<O> {
    /// The job was submitted: its id (to cancel it, say).
    Submitted {
        /// The job's id.
        job_id: String,
    },
    /// An event of the job: status, progress, log line, output chunk.
    Event(JobEvent),
    /// The job's result, its output decoded: the last item.
    Done(O),
}

/// What a streaming run makes of one of its job's events: the event, or for its `done`
/// the typed result (or the job's error).
///
/// ```
/// use jobwire_core::event::{EventKind, JobEvent};
/// use jobwire_core::run::{run_event, RunEvent};
/// use jobwire_core::{Job, JobStatus};
///
/// let log = JobEvent::new(1, "job_1", EventKind::Log("hi".into()));
/// assert!(matches!(run_event::<u32>(log), Ok(RunEvent::Event(_))));
/// let mut job = Job::new("job_1", "svc_echo", JobStatus::Succeeded);
/// job.output = Some(serde_json::json!(7));
/// let done = JobEvent::new(2, "job_1", EventKind::Done(Box::new(job)));
/// assert_eq!(run_event::<u32>(done).unwrap(), RunEvent::Done(7));
/// ```
pub fn run_event<O: DeserializeOwned>(event: JobEvent) -> Result<RunEvent<O>, Error> {
    match &event.kind {
        EventKind::Done(job) => job_result(job).map(RunEvent::Done),
        _ => Ok(RunEvent::Event(event)),
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
