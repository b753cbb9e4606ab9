//! Waiting for a job to finish, as one plan with injected time: by push first (the
//! client's shared event stream wakes the wait at the job's `done`), re-reading the job
//! when the stream cannot answer for it, a bounded number of times, and by long-poll
//! when the stream is not available or keeps asking for re-reads ([`Waiter`]). Never
//! past the caller's deadline.
//!
//! A facade's `wait` drives a [`WaitPlan`] in a loop: ask [`WaitPlan::next`] with the
//! job as last seen, do the step, report back.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use jobwire_core::push::Wake;
//! use jobwire_core::wait::{WaitPlan, WaitStep};
//! use jobwire_core::{ClientConfig, Job, JobSnapshot, JobStatus};
//!
//! let now = Instant::now();
//! let config = ClientConfig::default().validate()?;
//! let mut seen = JobSnapshot::new(Job::new("job_1", "svc_echo", JobStatus::Running), Some(7));
//! let mut plan = WaitPlan::new(Some(now + Duration::from_secs(5)), &config);
//! // Wait on the event stream for the job's `done`…
//! assert_eq!(plan.next(&seen, now), WaitStep::Watch { deadline: Some(now + Duration::from_secs(5)) });
//! // …which lost track of it (a 410): read the job, then watch again.
//! plan.on_wake(&mut seen, Some(Wake::Recheck));
//! assert_eq!(plan.next(&seen, now), WaitStep::Refresh);
//! let mut done = seen.job.clone();
//! done.status = JobStatus::Succeeded;
//! plan.on_job(&mut seen, JobSnapshot::new(done, Some(9)), now);
//! assert_eq!(plan.next(&seen, now), WaitStep::Finished);
//! assert_eq!(seen.position, Some(9));
//! # Ok::<(), jobwire_core::Error>(())
//! ```

mod long_poll;

use std::time::{Duration, Instant};

pub use long_poll::{PollStep, Waiter};

use crate::config::ClientConfig;
use crate::push::Wake;
use crate::{Error, JobSnapshot};

/// Re-reads a wait by events makes before it long-polls instead: a server that sends no
/// event positions would otherwise be asked again and again.
const MAX_RECHECKS: u32 = 3;

/// What the facade does next while waiting for a job. Exhaustive: a new step is a
/// compile error in both drivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStep {
    /// The job as last seen is terminal: the wait is over.
    Finished,
    /// The deadline passed first ([`WaitPlan::timed_out`] is the error).
    TimedOut,
    /// Register with the client's event stream (the job's id and position as last
    /// seen) and wait for its wake until `deadline`; report it with
    /// [`WaitPlan::on_wake`] (`None` when the deadline came first).
    Watch {
        /// When to give up waiting for the wake.
        deadline: Option<Instant>,
    },
    /// `GET` the job and report it with [`WaitPlan::on_job`].
    Refresh,
    /// Sleep this long, then ask again.
    Sleep(Duration),
    /// `GET` the job with `Prefer: wait=` `wait` (whole seconds; zero means a plain
    /// `GET`) and report it with [`WaitPlan::on_job`].
    Poll {
        /// How long the server may hold the answer.
        wait: Duration,
    },
}

#[derive(Debug, Clone)]
enum Phase {
    /// Waiting by the event stream.
    Push,
    /// The stream cannot answer for the job: it must be read first.
    Refresh,
    /// The deadline passed while waiting for a wake.
    TimedOut,
    /// Waiting by long-poll (boxed: most waits never get here, and a wait's state is
    /// held once per job awaited).
    LongPoll(Box<LongPoll>),
}

/// The long-poll part of a plan.
#[derive(Debug, Clone)]
struct LongPoll {
    waiter: Waiter,
    poll: Poll,
}

#[derive(Debug, Clone, Copy)]
enum Poll {
    /// Nothing asked yet.
    Idle,
    /// Sleeping before asking with this wait.
    Pausing { wait: Duration },
    /// Asked with this wait at `sent`.
    Sent { wait: Duration, sent: Instant },
}

/// The plan of one wait; see the module docs.
#[derive(Debug, Clone)]
pub struct WaitPlan {
    deadline: Option<Instant>,
    long_poll: Duration,
    rechecks: u32,
    phase: Phase,
}

impl WaitPlan {
    /// A wait that ends by `deadline` (never when `None`), by events when `config` says
    /// so ([`wait_by_events`](ClientConfig::wait_by_events)), by long-polls of at most
    /// its [`long_poll`](ClientConfig::long_poll) otherwise.
    pub fn new(deadline: Option<Instant>, config: &ClientConfig) -> Self {
        let mut plan = WaitPlan {
            deadline,
            long_poll: config.long_poll_value(),
            rechecks: 0,
            phase: Phase::Push,
        };
        if !config.wait_by_events_value() {
            plan.long_poll();
        }
        plan
    }

    /// The step to take at `now`, the job last seen as `seen`.
    pub fn next(&mut self, seen: &JobSnapshot, now: Instant) -> WaitStep {
        if matches!(self.phase, Phase::Push) && self.rechecks >= MAX_RECHECKS {
            self.long_poll();
        }
        match &mut self.phase {
            Phase::Push => {
                if seen.job.is_finished() {
                    WaitStep::Finished
                } else if self.deadline.is_some_and(|d| now >= d) {
                    WaitStep::TimedOut
                } else {
                    WaitStep::Watch {
                        deadline: self.deadline,
                    }
                }
            }
            Phase::Refresh => WaitStep::Refresh,
            Phase::TimedOut => WaitStep::TimedOut,
            Phase::LongPoll(long_poll) => {
                let LongPoll { waiter, poll } = &mut **long_poll;
                if let Poll::Pausing { wait } = *poll {
                    *poll = Poll::Sent { wait, sent: now };
                    return WaitStep::Poll { wait };
                }
                match waiter.next(now, &seen.job.status) {
                    PollStep::Finished => WaitStep::Finished,
                    PollStep::TimedOut => WaitStep::TimedOut,
                    PollStep::Poll { pause, wait } if pause.is_zero() => {
                        *poll = Poll::Sent { wait, sent: now };
                        WaitStep::Poll { wait }
                    }
                    PollStep::Poll { pause, wait } => {
                        *poll = Poll::Pausing { wait };
                        WaitStep::Sleep(pause)
                    }
                }
            }
        }
    }

    /// Reports the wake of a [`WaitStep::Watch`] (`None`: the deadline came first). A
    /// `done` is decoded here, by the waiter; one that does not decode is read again,
    /// as on a recheck. One that left members out (a job too large for an event) is
    /// read once: the job, not the stream, is then the answer.
    pub fn on_wake(&mut self, seen: &mut JobSnapshot, wake: Option<Wake>) {
        match wake {
            None => self.phase = Phase::TimedOut,
            // Not a recheck: the stream did its part, the job is finished.
            Some(Wake::Done(done)) if !done.is_complete() => self.phase = Phase::Refresh,
            Some(Wake::Done(done)) => match done.decode() {
                Ok(job) => seen.job = job,
                Err(_) => self.recheck(),
            },
            Some(Wake::Recheck) => self.recheck(),
            Some(Wake::LongPoll) => self.long_poll(),
        }
    }

    /// Reports the answer to a [`WaitStep::Refresh`] or a [`WaitStep::Poll`], read at
    /// `now`: `seen` takes it.
    pub fn on_job(&mut self, seen: &mut JobSnapshot, fresh: JobSnapshot, now: Instant) {
        match &mut self.phase {
            Phase::Refresh => self.phase = Phase::Push,
            Phase::LongPoll(long_poll) => {
                let LongPoll { waiter, poll } = &mut **long_poll;
                if let Poll::Sent { wait, sent } = *poll {
                    let changed = fresh.job.status != seen.job.status;
                    waiter.observe(wait, now.saturating_duration_since(sent), changed);
                }
                *poll = Poll::Idle;
            }
            Phase::Push | Phase::TimedOut => {}
        }
        seen.update(fresh);
    }

    /// The error of a wait that timed out, the job last seen as `seen`.
    pub fn timed_out(&self, seen: &JobSnapshot) -> Error {
        Error::Timeout {
            what: format!("job {} to finish (still {})", seen.job.id, seen.job.status),
        }
    }

    fn recheck(&mut self) {
        self.rechecks += 1;
        self.phase = Phase::Refresh;
    }

    fn long_poll(&mut self) {
        self.phase = Phase::LongPoll(Box::new(LongPoll {
            waiter: Waiter::new(self.deadline, self.long_poll),
            poll: Poll::Idle,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::FinishedJob;
    use crate::sse::SseEvent;
    use crate::{Job, JobStatus};

    const S: fn(u64) -> Duration = Duration::from_secs;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn config(by_events: bool) -> ClientConfig {
        ClientConfig::default()
            .wait_by_events(by_events)
            .long_poll(S(30))
            .validate()
            .unwrap()
    }

    fn snapshot(status: JobStatus, position: Option<u64>) -> JobSnapshot {
        JobSnapshot::new(Job::new("j", "s", status), position)
    }

    fn done(json: &str) -> Wake {
        let sse = SseEvent {
            event: "done".into(),
            data: json.into(),
            id: "9".into(),
        };
        Wake::Done(FinishedJob::from_sse(sse).unwrap().1)
    }

    const SUCCEEDED: &str = r#"{"id":"j","service_id":"s","status":"succeeded"}"#;
    /// A `done` without the job's input and output: too large for an event.
    const OMITTED: &str =
        r#"{"id":"j","service_id":"s","status":"succeeded","omitted":["input","output"]}"#;
    /// Routable by its id, not decodable as a job.
    const UNDECODABLE: &str = r#"{"id":"j","status":7}"#;

    /// What the simulated world does for each kind of step.
    #[allow(clippy::large_enum_variant)]
    enum Answer {
        Wake(Option<Wake>),
        Job(JobSnapshot),
    }

    /// Drives a plan against scripted answers in simulated time: each `Watch`, `Refresh`
    /// or `Poll` takes the next answer (and `took` of time), each `Sleep` moves the
    /// clock. Returns the steps taken, up to the final one.
    fn drive(
        plan: &mut WaitPlan,
        seen: &mut JobSnapshot,
        t0: Instant,
        took: Duration,
        answers: Vec<Answer>,
    ) -> Vec<WaitStep> {
        let mut answers = answers.into_iter();
        let mut now = t0;
        let mut steps = Vec::new();
        loop {
            let step = plan.next(seen, now);
            steps.push(step);
            match step {
                WaitStep::Finished | WaitStep::TimedOut => return steps,
                WaitStep::Sleep(pause) => now += pause,
                WaitStep::Watch { .. } => match answers.next() {
                    Some(Answer::Wake(wake)) => plan.on_wake(seen, wake),
                    _ => panic!("no wake scripted after {steps:?}"),
                },
                WaitStep::Refresh | WaitStep::Poll { .. } => match answers.next() {
                    Some(Answer::Job(fresh)) => {
                        now += took;
                        plan.on_job(seen, fresh, now);
                    }
                    _ => panic!("no job scripted after {steps:?}"),
                },
            }
        }
    }

    #[test]
    fn the_plan_table() {
        use Answer::{Job as J, Wake as W};
        use JobStatus::*;
        let t0 = Instant::now();
        // Deadlines are written as offsets from t0.
        let watch = |d: Option<Duration>| WaitStep::Watch {
            deadline: d.map(|d| t0 + d),
        };
        let poll = |s: u64| WaitStep::Poll { wait: S(s) };
        // (what, by events, deadline after t0, answers, the steps taken)
        type Row = (
            &'static str,
            bool,
            Option<Duration>,
            Vec<Answer>,
            Vec<WaitStep>,
        );
        let table: Vec<Row> = vec![
            (
                "woken by the done",
                true,
                None,
                vec![W(Some(done(SUCCEEDED)))],
                vec![watch(None), WaitStep::Finished],
            ),
            (
                "a wake that never comes",
                true,
                Some(S(5)),
                vec![W(None)],
                vec![watch(Some(S(5))), WaitStep::TimedOut],
            ),
            (
                "a recheck reads the job, then watches again",
                true,
                None,
                vec![
                    W(Some(Wake::Recheck)),
                    J(snapshot(Running, Some(3))),
                    W(Some(done(SUCCEEDED))),
                ],
                vec![
                    watch(None),
                    WaitStep::Refresh,
                    watch(None),
                    WaitStep::Finished,
                ],
            ),
            (
                "a recheck that finds the job finished",
                true,
                None,
                vec![W(Some(Wake::Recheck)), J(snapshot(Failed, Some(3)))],
                vec![watch(None), WaitStep::Refresh, WaitStep::Finished],
            ),
            (
                "a done that does not decode is read again",
                true,
                None,
                vec![W(Some(done(UNDECODABLE))), J(snapshot(Succeeded, None))],
                vec![watch(None), WaitStep::Refresh, WaitStep::Finished],
            ),
            (
                "a done without input and output reads the job once",
                true,
                None,
                vec![W(Some(done(OMITTED))), J(snapshot(Succeeded, Some(9)))],
                vec![watch(None), WaitStep::Refresh, WaitStep::Finished],
            ),
            (
                "dones without input and output are no rechecks: no fall back to long-polls",
                true,
                None,
                vec![
                    W(Some(done(OMITTED))),
                    J(snapshot(Running, Some(9))),
                    W(Some(done(OMITTED))),
                    J(snapshot(Running, Some(9))),
                    W(Some(done(OMITTED))),
                    J(snapshot(Running, Some(9))),
                    W(Some(done(SUCCEEDED))),
                ],
                vec![
                    watch(None),
                    WaitStep::Refresh,
                    watch(None),
                    WaitStep::Refresh,
                    watch(None),
                    WaitStep::Refresh,
                    watch(None),
                    WaitStep::Finished,
                ],
            ),
            (
                "three rechecks, then long-polls",
                true,
                None,
                vec![
                    W(Some(Wake::Recheck)),
                    J(snapshot(Running, None)),
                    W(Some(Wake::Recheck)),
                    J(snapshot(Running, None)),
                    W(Some(Wake::Recheck)),
                    J(snapshot(Running, None)),
                    J(snapshot(Succeeded, None)),
                ],
                vec![
                    watch(None),
                    WaitStep::Refresh,
                    watch(None),
                    WaitStep::Refresh,
                    watch(None),
                    WaitStep::Refresh,
                    poll(30),
                    WaitStep::Finished,
                ],
            ),
            (
                "no stream: long-polls",
                true,
                None,
                vec![W(Some(Wake::LongPoll)), J(snapshot(Succeeded, None))],
                vec![watch(None), poll(30), WaitStep::Finished],
            ),
            (
                "waits without events long-poll from the start; no news at once is early",
                false,
                Some(S(10)),
                vec![J(snapshot(Running, None)), J(snapshot(Cancelled, None))],
                vec![
                    poll(10),
                    WaitStep::Sleep(MS(100)),
                    WaitStep::Poll { wait: S(9) },
                    WaitStep::Finished,
                ],
            ),
        ];
        for (what, by_events, deadline, answers, want) in table {
            let mut plan = WaitPlan::new(deadline.map(|d| t0 + d), &config(by_events));
            let mut seen = snapshot(Running, Some(1));
            let steps = drive(&mut plan, &mut seen, t0, Duration::ZERO, answers);
            assert_eq!(steps, want, "{what}");
        }
    }

    #[test]
    fn a_position_kept_when_an_answer_has_none() {
        let t0 = Instant::now();
        let mut plan = WaitPlan::new(None, &config(true));
        let mut seen = snapshot(JobStatus::Running, Some(5));
        plan.on_wake(&mut seen, Some(Wake::Recheck));
        plan.on_job(&mut seen, snapshot(JobStatus::Running, None), t0);
        assert_eq!(seen.position, Some(5), "still a lower bound");
    }

    #[test]
    fn early_answers_pause_before_the_next_poll_and_never_past_the_deadline() {
        let t0 = Instant::now();
        let mut plan = WaitPlan::new(Some(t0 + MS(1500)), &config(false));
        let mut seen = snapshot(JobStatus::Running, None);
        // The server answers every poll at once, without news.
        let answers = (0..20)
            .map(|_| Answer::Job(snapshot(JobStatus::Running, None)))
            .collect();
        let steps = drive(&mut plan, &mut seen, t0, MS(1), answers);
        assert_eq!(steps[0], WaitStep::Poll { wait: S(1) });
        assert_eq!(steps[1], WaitStep::Sleep(MS(100)), "the first early answer");
        assert_eq!(steps[2], WaitStep::Poll { wait: S(1) });
        assert_eq!(steps[3], WaitStep::Sleep(MS(200)));
        let slept: Duration = steps
            .iter()
            .filter_map(|s| match s {
                WaitStep::Sleep(d) => Some(*d),
                _ => None,
            })
            .sum();
        assert!(slept <= MS(1500), "{slept:?}");
        assert_eq!(steps.last(), Some(&WaitStep::TimedOut));
        assert!(matches!(
            plan.timed_out(&seen),
            Error::Timeout { what } if what == "job j to finish (still running)"
        ));
    }

    #[test]
    fn a_deadline_passed_before_the_first_watch() {
        let t0 = Instant::now();
        let mut plan = WaitPlan::new(Some(t0), &config(true));
        let seen = snapshot(JobStatus::Queued, Some(1));
        assert_eq!(plan.next(&seen, t0), WaitStep::TimedOut);
        let finished = snapshot(JobStatus::Succeeded, Some(1));
        assert_eq!(
            plan.next(&finished, t0),
            WaitStep::Finished,
            "a finished job is its own answer, deadline or not"
        );
    }
}
