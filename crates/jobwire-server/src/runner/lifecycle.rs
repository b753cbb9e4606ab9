//! The job lifecycle as pure decisions: a job's state and what happened to it give the
//! new state, the events to record and what the runner must do once they are stored
//! (its [`Effect`]s); what a lost compare-and-set means ([`lost`]); and the crash rule
//! for a job whose server is gone ([`crash_rule`]). No I/O, no clock (the time is an
//! argument), no locks; the runner's one `commit` path persists what these return and
//! carries out the effects.
//!
//! ```text
//! queued ──Start──▶ running ──Succeed/Fail──▶ succeeded | failed
//!    │                 │
//!    └──Cancel/Interrupt──▶ cancelled | failed (code "interrupted")
//! ```
//!
//! A terminal job changes no more: every happening is refused. Progress, log and output
//! are recorded only while the job is unfinished, so `done` is always a job's last event.
//!
//! How a submitted job enters this machine is decided here too ([`admission`]): stored
//! `queued` to wait for a slot, stored `running` with its handler started after the
//! write, or — for a handler declared side-effect free — run first, within the submit,
//! and stored once: terminal with all its events ([`settle`]) when it finished within
//! the submit's budget, `running` otherwise.

use std::collections::BTreeMap;

use jobwire_core::{Job, JobError, JobStatus, Progress};
use serde::Serialize;
use serde_json::{json, Value};

use crate::store::{EventData, EventKind};

/// Something that happens to an unfinished job.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Happening {
    /// Its handler starts.
    Start,
    /// Its handler reports progress (`fraction` is clamped to 0..=1; NaN counts as 0).
    Progress {
        /// How far along.
        fraction: f64,
        /// What it is doing.
        message: String,
    },
    /// Its handler writes a log line.
    Log(String),
    /// Its handler writes a partial output chunk.
    Output(String),
    /// Its handler returned an output.
    Succeed(Value),
    /// Its handler returned an error (or panicked).
    Fail(JobError),
    /// A client cancelled it.
    Cancel,
    /// The server stopped under it (the crash rule): failed with code `interrupted`.
    Interrupt(String),
}

/// What the runner does once a change is stored, in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Effect {
    /// The job is no longer this server's to run: abort its handler, mark it cancelled
    /// for blocking handlers, forget it.
    Retire,
    /// Show the new state to the job's waiters.
    Publish,
    /// Show the state the store holds to the job's waiters (it is not the one this
    /// server last wrote).
    PublishStored,
}

/// The outcome of a transition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Transition {
    /// The job's new state; `None` when only events are recorded.
    pub job: Option<Job>,
    /// The events to record with it, in order.
    pub events: Vec<(EventKind, EventData)>,
    /// What to do once it is stored.
    pub effects: Vec<Effect>,
}

/// What a change that lost its compare-and-set means: the store holds another state
/// (a cancel through another server, a takeover after this server's lease ran out), so
/// this server stops running the job and its waiters here see what the store has.
pub(crate) fn lost() -> Vec<Effect> {
    vec![Effect::Retire, Effect::PublishStored]
}

/// What the crash rule makes of an unfinished job whose server is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recovery {
    /// This server's own job (a renewal failed and the claim renewed it): it keeps
    /// running here.
    Keep,
    /// Accepted, never started: run it here now, once.
    Resume,
    /// Its handler may have done part of its work, or there is none: fail it as
    /// `interrupted`, for this reason.
    Interrupt(&'static str),
}

/// The crash rule, for a claimed job in `status`: whether this server already runs it,
/// and whether it has a handler for the job's service.
pub(crate) fn crash_rule(status: &JobStatus, runs_here: bool, has_handler: bool) -> Recovery {
    match (runs_here, status, has_handler) {
        (true, _, _) => Recovery::Keep,
        (false, JobStatus::Running, _) => {
            Recovery::Interrupt("the server stopped while the job was running")
        }
        (false, _, true) => Recovery::Resume,
        (false, _, false) => {
            Recovery::Interrupt("its service has no handler in this server process")
        }
    }
}

/// How a submitted job is admitted (see [`admission`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Stored `queued`; started when one of its service's slots frees.
    Queue,
    /// Stored `running`, with its `queued` and `running` events, in one write; its
    /// handler starts once that write is committed.
    Start,
    /// Its handler runs first, within the submit: a job it finishes there is stored
    /// once, terminal, with every event ([`settle`]); one it does not is stored
    /// `running` (as [`Admission::Start`]) and its handler goes on. Its handler has run
    /// before the job was stored, so a submit the store then refuses (key used, tenant
    /// at its limit or quota) has run it for nothing: only a handler declared
    /// side-effect free may be admitted so.
    Inline,
}

/// How a job of a handler is admitted: whether the handler is declared side-effect free,
/// and whether its service limits how many of its jobs run at once (such a job waits for
/// a slot, so it is never run inline: that would run it without one).
pub(crate) fn admission(side_effect_free: bool, limited: bool) -> Admission {
    match (limited, side_effect_free) {
        (true, _) => Admission::Queue,
        (false, true) => Admission::Inline,
        (false, false) => Admission::Start,
    }
}

/// A job its handler finished within the submit: `job` (as started) with every
/// happening applied in order at `now` — the handler's reports, then its outcome —
/// and the events they record, in that order. Happenings the lifecycle refuses (after
/// the outcome, say) change nothing.
pub(crate) fn settle(
    job: &Job,
    happenings: impl IntoIterator<Item = Happening>,
    now: &str,
) -> (Job, Vec<(EventKind, EventData)>) {
    let mut job = job.clone();
    let mut events = Vec::new();
    for happening in happenings {
        if let Some(t) = transition(&job, happening, now) {
            events.extend(t.events);
            if let Some(next) = t.job {
                job = next;
            }
        }
    }
    (job, events)
}

/// A new job as submitted: `queued`, with its first `status` event.
pub(crate) fn submitted(
    id: String,
    service_id: &str,
    service_name: &str,
    input: Value,
    labels: BTreeMap<String, String>,
    now: &str,
) -> (Job, Vec<(EventKind, EventData)>) {
    let mut job = Job::new(id, service_id, JobStatus::Queued);
    job.service = service_name.to_owned();
    job.input = input;
    job.labels = labels;
    job.created_at = now.to_owned();
    let events = vec![status_event(&job)];
    (job, events)
}

/// What `happening` does to `job` at time `now`; `None` when it does nothing (the job is
/// terminal, or a `Start` finds it no longer queued).
pub(crate) fn transition(job: &Job, happening: Happening, now: &str) -> Option<Transition> {
    if job.status.is_terminal() {
        return None;
    }
    let mut next = job.clone();
    match happening {
        Happening::Start => {
            if job.status != JobStatus::Queued {
                return None;
            }
            next.status = JobStatus::Running;
            next.started_at = Some(now.to_owned());
            let events = vec![status_event(&next)];
            Some(changed(next, events))
        }
        Happening::Progress { fraction, message } => {
            let fraction = if fraction.is_nan() {
                0.0
            } else {
                fraction.clamp(0.0, 1.0)
            };
            let data = EventData::of(
                &json!({ "job_id": job.id, "fraction": fraction, "message": message }),
            );
            next.progress = Some(Progress::new(fraction, message));
            Some(changed(next, vec![(EventKind::Progress, data)]))
        }
        Happening::Log(line) => Some(Transition {
            job: None,
            events: vec![(
                EventKind::Log,
                EventData::of(&json!({ "job_id": job.id, "line": line })),
            )],
            effects: Vec::new(),
        }),
        Happening::Output(chunk) => Some(Transition {
            job: None,
            events: vec![(
                EventKind::Output,
                EventData::of(&json!({ "job_id": job.id, "chunk": chunk })),
            )],
            effects: Vec::new(),
        }),
        Happening::Succeed(output) => {
            next.status = JobStatus::Succeeded;
            next.output = Some(output);
            Some(finished(next, now))
        }
        Happening::Fail(error) => {
            next.status = JobStatus::Failed;
            next.error = Some(error);
            Some(finished(next, now))
        }
        Happening::Cancel => {
            next.status = JobStatus::Cancelled;
            Some(finished(next, now))
        }
        Happening::Interrupt(why) => {
            next.status = JobStatus::Failed;
            next.error = Some(interrupted(&why));
            Some(finished(next, now))
        }
    }
}

/// The error of a job the server stopped under: code `interrupted`.
pub(crate) fn interrupted(why: &str) -> JobError {
    let mut error = JobError::new(why);
    error.code = Some("interrupted".into());
    error
}

/// A job in a new, unfinished state: its waiters see it.
fn changed(job: Job, events: Vec<(EventKind, EventData)>) -> Transition {
    Transition {
        job: Some(job),
        events,
        effects: vec![Effect::Publish],
    }
}

/// A job made terminal at `now`: its `status` event, then `done`; its handler is done
/// with (stopped, if it still runs), then its waiters see the end.
fn finished(mut job: Job, now: &str) -> Transition {
    job.finished_at = Some(now.to_owned());
    let events = vec![status_event(&job), done_event(&job)];
    Transition {
        job: Some(job),
        events,
        effects: vec![Effect::Retire, Effect::Publish],
    }
}

fn status_event(job: &Job) -> (EventKind, EventData) {
    #[derive(Serialize)]
    struct Status<'a> {
        job_id: &'a str,
        status: &'a str,
    }
    let data = Status {
        job_id: &job.id,
        status: job.status.as_str(),
    };
    (EventKind::Status, EventData::of(&data))
}

/// `done` carries the whole job, plus `job_id` like every event.
fn done_event(job: &Job) -> (EventKind, EventData) {
    #[derive(Serialize)]
    struct Done<'a> {
        job_id: &'a str,
        #[serde(flatten)]
        job: &'a Job,
    }
    let data = Done {
        job_id: &job.id,
        job,
    };
    (EventKind::Done, EventData::of(&data))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: &str = "2026-11-23T10:00:00.000000Z";

    fn job(status: JobStatus) -> Job {
        let (mut job, _) = submitted(
            "job_1".into(),
            "svc_a",
            "a",
            json!(1),
            BTreeMap::new(),
            "2026-11-23T09:00:00.000000Z",
        );
        job.status = status;
        job
    }

    fn kinds(t: &Transition) -> Vec<&'static str> {
        t.events.iter().map(|(k, _)| k.as_str()).collect()
    }

    #[test]
    fn a_submitted_job_is_queued_with_its_status_event() {
        let labels = BTreeMap::from([("env".to_owned(), "dev".to_owned())]);
        let (job, events) = submitted("job_9".into(), "svc_a", "a", json!({"x": 1}), labels, NOW);
        assert_eq!(job.status, JobStatus::Queued);
        assert_eq!((job.service.as_str(), job.created_at.as_str()), ("a", NOW));
        assert_eq!(job.labels.len(), 1);
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].1.value(),
            json!({"job_id": "job_9", "status": "queued"})
        );
    }

    /// Every happening from every state: the new status (or none) and the events.
    #[test]
    fn the_transition_table() {
        use JobStatus::*;
        let error = JobError::new("boom");
        let progress = Happening::Progress {
            fraction: 0.5,
            message: "half".into(),
        };
        use Effect::*;
        // From, happening, then `None` (refused) or the new status (`None`: unchanged),
        // the events recorded, and what the runner does once they are stored.
        type Row = (
            JobStatus,
            Happening,
            Option<Option<JobStatus>>,
            Vec<&'static str>,
            Vec<Effect>,
        );
        let table: Vec<Row> = vec![
            (
                Queued,
                Happening::Start,
                Some(Some(Running)),
                vec!["status"],
                vec![Publish],
            ),
            (Running, Happening::Start, None, vec![], vec![]),
            (
                Queued,
                progress.clone(),
                Some(Some(Queued)),
                vec!["progress"],
                vec![Publish],
            ),
            (
                Running,
                progress.clone(),
                Some(Some(Running)),
                vec!["progress"],
                vec![Publish],
            ),
            (
                Running,
                Happening::Log("l".into()),
                Some(None),
                vec!["log"],
                vec![],
            ),
            (
                Running,
                Happening::Output("o".into()),
                Some(None),
                vec!["output"],
                vec![],
            ),
            (
                Running,
                Happening::Succeed(json!(2)),
                Some(Some(Succeeded)),
                vec!["status", "done"],
                vec![Retire, Publish],
            ),
            (
                Running,
                Happening::Fail(error.clone()),
                Some(Some(Failed)),
                vec!["status", "done"],
                vec![Retire, Publish],
            ),
            (
                Queued,
                Happening::Cancel,
                Some(Some(Cancelled)),
                vec!["status", "done"],
                vec![Retire, Publish],
            ),
            (
                Running,
                Happening::Cancel,
                Some(Some(Cancelled)),
                vec!["status", "done"],
                vec![Retire, Publish],
            ),
            (
                Queued,
                Happening::Interrupt("x".into()),
                Some(Some(Failed)),
                vec!["status", "done"],
                vec![Retire, Publish],
            ),
            (
                Running,
                Happening::Interrupt("x".into()),
                Some(Some(Failed)),
                vec!["status", "done"],
                vec![Retire, Publish],
            ),
        ];
        for (from, happening, want, want_events, want_effects) in table {
            let got = transition(&job(from.clone()), happening.clone(), NOW);
            let got_status = got
                .as_ref()
                .map(|t| t.job.as_ref().map(|j| j.status.clone()));
            assert_eq!(got_status, want, "{from:?} + {happening:?}");
            assert_eq!(
                got.as_ref().map(kinds).unwrap_or_default(),
                want_events,
                "{from:?} + {happening:?}"
            );
            assert_eq!(
                got.map(|t| t.effects).unwrap_or_default(),
                want_effects,
                "{from:?} + {happening:?}"
            );
        }
    }

    /// Which jobs wait for a slot, which start after their write, which run inline.
    #[test]
    fn the_admission_table() {
        use Admission::*;
        // Side-effect free, limited to some jobs at once, then the admission.
        let table = [
            (false, false, Start),
            (false, true, Queue),
            (true, false, Inline),
            (true, true, Queue),
        ];
        for (side_effect_free, limited, want) in table {
            assert_eq!(
                admission(side_effect_free, limited),
                want,
                "side-effect free {side_effect_free}, limited {limited}"
            );
        }
    }

    /// A job settled inline: its reports and outcome applied in order, whatever comes
    /// after the outcome refused, its `done` the last event and carrying the end state.
    #[test]
    fn settling_applies_reports_then_the_outcome() {
        let running = job(JobStatus::Running);
        let happenings = vec![
            Happening::Progress {
                fraction: 0.5,
                message: "half".into(),
            },
            Happening::Log("l".into()),
            Happening::Succeed(json!(2)),
            // Too late: refused, records nothing.
            Happening::Log("after".into()),
        ];
        let (settled, events) = settle(&running, happenings, NOW);
        assert_eq!(settled.status, JobStatus::Succeeded);
        assert_eq!(settled.output, Some(json!(2)));
        assert_eq!(settled.finished_at.as_deref(), Some(NOW));
        assert_eq!(settled.progress.as_ref().unwrap().fraction, 0.5);
        let kinds: Vec<&str> = events.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["progress", "log", "status", "done"]);
        assert_eq!(events[1].1.value()["line"], "l");
        let done: Job = serde_json::from_str(events[3].1.get()).unwrap();
        assert_eq!(done, settled);
        // A failure settles the same way; nothing at all leaves the job as it was.
        let (failed, events) = settle(&running, [Happening::Fail(JobError::new("x"))], NOW);
        assert_eq!(failed.status, JobStatus::Failed);
        assert_eq!(events.len(), 2);
        assert_eq!(settle(&running, [], NOW), (running.clone(), vec![]));
    }

    /// A lost compare-and-set stops the job here and shows what the store holds.
    #[test]
    fn a_lost_change_retires_the_job_and_shows_the_stored_state() {
        assert_eq!(lost(), [Effect::Retire, Effect::PublishStored]);
    }

    /// The crash rule, every case: whose job it is, its status, whether there is a
    /// handler.
    #[test]
    fn the_crash_rule() {
        use JobStatus::*;
        let running = "the server stopped while the job was running";
        let no_handler = "its service has no handler in this server process";
        let table = [
            (Queued, true, true, Recovery::Keep),
            (Running, true, false, Recovery::Keep),
            (Queued, false, true, Recovery::Resume),
            (Queued, false, false, Recovery::Interrupt(no_handler)),
            (Running, false, true, Recovery::Interrupt(running)),
            (Running, false, false, Recovery::Interrupt(running)),
        ];
        for (status, runs_here, has_handler, want) in table {
            assert_eq!(
                crash_rule(&status, runs_here, has_handler),
                want,
                "{status:?}, runs here {runs_here}, handler {has_handler}"
            );
        }
    }

    #[test]
    fn terminal_jobs_refuse_everything() {
        for status in [
            JobStatus::Succeeded,
            JobStatus::Failed,
            JobStatus::Cancelled,
        ] {
            for happening in [
                Happening::Start,
                Happening::Log("late".into()),
                Happening::Succeed(json!(1)),
                Happening::Cancel,
                Happening::Interrupt("x".into()),
            ] {
                assert_eq!(transition(&job(status.clone()), happening, NOW), None);
            }
        }
    }

    #[test]
    fn finishing_stamps_the_time_and_done_carries_the_job() {
        let t = transition(
            &job(JobStatus::Running),
            Happening::Succeed(json!("out")),
            NOW,
        )
        .unwrap();
        let done = t.job.unwrap();
        assert_eq!(done.finished_at.as_deref(), Some(NOW));
        assert_eq!(done.output, Some(json!("out")));
        let (kind, data) = &t.events[1];
        assert_eq!(*kind, EventKind::Done);
        assert_eq!(data.value()["job_id"], "job_1");
        let decoded: Job = serde_json::from_str(data.get()).unwrap();
        assert_eq!(decoded, done);

        let started = transition(&job(JobStatus::Queued), Happening::Start, NOW).unwrap();
        assert_eq!(started.job.unwrap().started_at.as_deref(), Some(NOW));

        let interrupted = transition(
            &job(JobStatus::Running),
            Happening::Interrupt("gone".into()),
            NOW,
        )
        .unwrap()
        .job
        .unwrap();
        let error = interrupted.error.unwrap();
        assert_eq!(
            (error.message.as_str(), error.code.as_deref()),
            ("gone", Some("interrupted"))
        );
    }

    #[test]
    fn progress_is_clamped() {
        for (fraction, want) in [(-1.0, 0.0), (0.25, 0.25), (7.0, 1.0), (f64::NAN, 0.0)] {
            let t = transition(
                &job(JobStatus::Running),
                Happening::Progress {
                    fraction,
                    message: "m".into(),
                },
                NOW,
            )
            .unwrap();
            assert_eq!(t.job.unwrap().progress.unwrap().fraction, want);
            assert_eq!(t.events[0].1.value()["fraction"], json!(want));
        }
    }
}
