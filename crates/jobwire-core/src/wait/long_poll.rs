//! Waiting for a job by long-poll, as a state machine with injected time: `Prefer:
//! wait=N`, never past the caller's deadline, and back off if the server answers early
//! without news (a proxy that strips `Prefer`, say) instead of spinning.
//!
//! The [`WaitPlan`](super::WaitPlan) drives it when a wait cannot use the event stream:
//! it asks [`Waiter::next`] what to do and reports each answer with [`Waiter::observe`].
//!
//! ```
//! use std::time::{Duration, Instant};
//! use jobwire_core::wait::{PollStep, Waiter};
//! use jobwire_core::JobStatus;
//!
//! let start = Instant::now();
//! let mut waiter = Waiter::new(Some(start + Duration::from_secs(90)), Duration::from_secs(30));
//! assert_eq!(
//!     waiter.next(start, &JobStatus::Running),
//!     PollStep::Poll { pause: Duration::ZERO, wait: Duration::from_secs(30) },
//! );
//! assert_eq!(waiter.next(start, &JobStatus::Succeeded), PollStep::Finished);
//! assert_eq!(waiter.next(start + Duration::from_secs(90), &JobStatus::Running), PollStep::TimedOut);
//! ```

use std::time::{Duration, Instant};

use crate::backoff::Backoff;
use crate::JobStatus;

/// The pause after early answers: from 100 ms, doubling per early answer in a row, at
/// most 2 s between polls.
const EARLY: Backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(2));

/// What to do next while waiting for a job by long-poll. Exhaustive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollStep {
    /// The job is terminal: stop waiting.
    Finished,
    /// The deadline has passed and the job is not terminal.
    TimedOut,
    /// Sleep `pause` (often zero), then `GET` the job with `Prefer: wait=` `wait`
    /// (whole seconds; zero means a plain `GET`).
    Poll {
        /// How long to sleep before sending.
        pause: Duration,
        /// How long the server may hold the answer.
        wait: Duration,
    },
}

/// The waiting state of one job.
#[derive(Debug, Clone)]
pub struct Waiter {
    deadline: Option<Instant>,
    long_poll: Duration,
    early_answers: u32,
}

impl Waiter {
    /// Waits until `deadline` (forever when `None`), long-polling at most `long_poll`
    /// per request.
    pub fn new(deadline: Option<Instant>, long_poll: Duration) -> Self {
        Waiter {
            deadline,
            long_poll: long_poll.max(Duration::from_secs(1)),
            early_answers: 0,
        }
    }

    /// The step to take now, given the job's last known status.
    pub fn next(&self, now: Instant, status: &JobStatus) -> PollStep {
        if status.is_terminal() {
            return PollStep::Finished;
        }
        let remaining = match self.deadline {
            Some(deadline) if now >= deadline => return PollStep::TimedOut,
            Some(deadline) => Some(deadline - now),
            None => None,
        };
        let mut pause = self.backoff();
        let mut wait = self.long_poll;
        if let Some(remaining) = remaining {
            pause = pause.min(remaining);
            // `Prefer: wait` counts whole seconds; never ask past the deadline.
            wait = Duration::from_secs(wait.min(remaining - pause).as_secs());
            if wait.is_zero() {
                // Less than a second left: sleep it out, then look one last time.
                pause = remaining;
            }
        }
        PollStep::Poll { pause, wait }
    }

    /// Reports a poll's outcome: asked to wait `asked`, the server answered after
    /// `took`, and the status did or did not change.
    pub fn observe(&mut self, asked: Duration, took: Duration, status_changed: bool) {
        // Half the asked wait is a generous margin: a server that honours `Prefer`
        // answers early only on news.
        if !status_changed && !asked.is_zero() && took < asked / 2 {
            self.early_answers = self.early_answers.saturating_add(1);
        } else {
            self.early_answers = 0;
        }
    }

    fn backoff(&self) -> Duration {
        EARLY.ceiling(self.early_answers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn next_step_table() {
        let t0 = Instant::now();
        // (deadline after t0, long poll, now after t0, status, expected)
        let cases: Vec<(Option<Duration>, Duration, Duration, JobStatus, PollStep)> = vec![
            (
                None,
                S(30),
                S(0),
                JobStatus::Queued,
                PollStep::Poll {
                    pause: S(0),
                    wait: S(30),
                },
            ),
            (
                None,
                S(30),
                S(999),
                JobStatus::Running,
                PollStep::Poll {
                    pause: S(0),
                    wait: S(30),
                },
            ),
            (
                Some(S(10)),
                S(30),
                S(0),
                JobStatus::Running,
                PollStep::Poll {
                    pause: S(0),
                    wait: S(10),
                },
            ),
            (
                Some(S(10)),
                S(30),
                MS(2500),
                JobStatus::Running,
                PollStep::Poll {
                    pause: S(0),
                    wait: S(7),
                },
            ),
            (
                Some(S(10)),
                S(30),
                MS(9400),
                JobStatus::Running,
                PollStep::Poll {
                    pause: MS(600),
                    wait: S(0),
                },
            ),
            (
                Some(S(10)),
                S(30),
                S(10),
                JobStatus::Running,
                PollStep::TimedOut,
            ),
            (
                Some(S(10)),
                S(30),
                S(11),
                JobStatus::Queued,
                PollStep::TimedOut,
            ),
            (
                Some(S(10)),
                S(30),
                S(11),
                JobStatus::Failed,
                PollStep::Finished,
            ),
            (None, S(30), S(0), JobStatus::Cancelled, PollStep::Finished),
            (
                None,
                S(30),
                S(0),
                JobStatus::Unknown("paused".into()),
                PollStep::Poll {
                    pause: S(0),
                    wait: S(30),
                },
            ),
            // A long-poll shorter than a second is raised to one.
            (
                None,
                MS(10),
                S(0),
                JobStatus::Running,
                PollStep::Poll {
                    pause: S(0),
                    wait: S(1),
                },
            ),
        ];
        for (i, (deadline, long_poll, now, status, want)) in cases.into_iter().enumerate() {
            let waiter = Waiter::new(deadline.map(|d| t0 + d), long_poll);
            assert_eq!(waiter.next(t0 + now, &status), want, "case {i}");
        }
    }

    #[test]
    fn early_answers_back_off_and_reset() {
        let t0 = Instant::now();
        let mut w = Waiter::new(None, S(30));
        let pauses: Vec<Duration> = (0..7)
            .map(|_| {
                w.observe(S(30), MS(5), false);
                match w.next(t0, &JobStatus::Running) {
                    PollStep::Poll { pause, .. } => pause,
                    other => panic!("{other:?}"),
                }
            })
            .collect();
        assert_eq!(
            pauses,
            [MS(100), MS(200), MS(400), MS(800), MS(1600), S(2), S(2)]
        );
        // News resets the backoff, and so does an answer that used its wait.
        w.observe(S(30), MS(5), true);
        assert_eq!(
            w.next(t0, &JobStatus::Running),
            PollStep::Poll {
                pause: S(0),
                wait: S(30)
            }
        );
        w.observe(S(30), MS(5), false);
        w.observe(S(30), S(30), false);
        assert_eq!(
            w.next(t0, &JobStatus::Running),
            PollStep::Poll {
                pause: S(0),
                wait: S(30)
            }
        );
    }

    #[test]
    fn backoff_never_passes_the_deadline() {
        let t0 = Instant::now();
        let mut w = Waiter::new(Some(t0 + MS(1500)), S(30));
        for _ in 0..10 {
            w.observe(S(1), MS(1), false);
        }
        // 2 s of backoff is cut to what is left; no whole second remains to long-poll.
        assert_eq!(
            w.next(t0, &JobStatus::Running),
            PollStep::Poll {
                pause: MS(1500),
                wait: S(0)
            }
        );
    }

    /// Drives the waiter against a simulated job and clock: it must finish exactly when
    /// the job does, or time out at the deadline, never sleeping past it.
    #[test]
    fn simulated_runs() {
        for (finish_at, deadline, want_finished) in [
            (S(45), Some(S(60)), true),
            (S(45), Some(S(20)), false),
            (S(100), None, true),
        ] {
            let t0 = Instant::now();
            let mut now = t0;
            let mut w = Waiter::new(deadline.map(|d| t0 + d), S(30));
            let status_at = |t: Instant| {
                if t - t0 >= finish_at {
                    JobStatus::Succeeded
                } else {
                    JobStatus::Running
                }
            };
            let mut status = JobStatus::Queued;
            let outcome = loop {
                match w.next(now, &status) {
                    PollStep::Poll { pause, wait } => {
                        now += pause;
                        // The server holds until the job ends or the wait passes.
                        let end = (t0 + finish_at).max(now).min(now + wait);
                        let took = end - now;
                        now = end;
                        let new = status_at(now);
                        w.observe(wait, took, new != status);
                        status = new;
                    }
                    step => break step,
                }
            };
            if want_finished {
                assert_eq!(outcome, PollStep::Finished);
                assert_eq!(now - t0, finish_at);
            } else {
                assert_eq!(outcome, PollStep::TimedOut);
                assert_eq!(now - t0, deadline.unwrap());
            }
        }
    }
}
