//! The job lifecycle as a pure transition: a job's state and what happened to it give
//! the new state and the events to record. No I/O, no clock (the time is an argument),
//! no locks; the runner drives it and persists what it returns.
//!
//! ```text
//! queued ──Start──▶ running ──Succeed/Fail──▶ succeeded | failed
//!    │                 │
//!    └──Cancel/Interrupt──▶ cancelled | failed (code "interrupted")
//! ```
//!
//! A terminal job changes no more: every happening is refused. Progress, log and output
//! are recorded only while the job is unfinished, so `done` is always a job's last event.

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

/// The outcome of a transition.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Transition {
    /// The job's new state; `None` when only events are recorded.
    pub job: Option<Job>,
    /// The events to record with it, in order.
    pub events: Vec<(EventKind, EventData)>,
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
        }),
        Happening::Output(chunk) => Some(Transition {
            job: None,
            events: vec![(
                EventKind::Output,
                EventData::of(&json!({ "job_id": job.id, "chunk": chunk })),
            )],
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

fn changed(job: Job, events: Vec<(EventKind, EventData)>) -> Transition {
    Transition {
        job: Some(job),
        events,
    }
}

/// A job made terminal at `now`: its `status` event, then `done`.
fn finished(mut job: Job, now: &str) -> Transition {
    job.finished_at = Some(now.to_owned());
    let events = vec![status_event(&job), done_event(&job)];
    changed(job, events)
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
        // From, happening, then `None` (refused) or the new status (`None`: unchanged),
        // and the events recorded.
        type Row = (
            JobStatus,
            Happening,
            Option<Option<JobStatus>>,
            Vec<&'static str>,
        );
        let table: Vec<Row> = vec![
            (
                Queued,
                Happening::Start,
                Some(Some(Running)),
                vec!["status"],
            ),
            (Running, Happening::Start, None, vec![]),
            (
                Queued,
                progress.clone(),
                Some(Some(Queued)),
                vec!["progress"],
            ),
            (
                Running,
                progress.clone(),
                Some(Some(Running)),
                vec!["progress"],
            ),
            (Running, Happening::Log("l".into()), Some(None), vec!["log"]),
            (
                Running,
                Happening::Output("o".into()),
                Some(None),
                vec!["output"],
            ),
            (
                Running,
                Happening::Succeed(json!(2)),
                Some(Some(Succeeded)),
                vec!["status", "done"],
            ),
            (
                Running,
                Happening::Fail(error.clone()),
                Some(Some(Failed)),
                vec!["status", "done"],
            ),
            (
                Queued,
                Happening::Cancel,
                Some(Some(Cancelled)),
                vec!["status", "done"],
            ),
            (
                Running,
                Happening::Cancel,
                Some(Some(Cancelled)),
                vec!["status", "done"],
            ),
            (
                Queued,
                Happening::Interrupt("x".into()),
                Some(Some(Failed)),
                vec!["status", "done"],
            ),
            (
                Running,
                Happening::Interrupt("x".into()),
                Some(Some(Failed)),
                vec!["status", "done"],
            ),
        ];
        for (from, happening, want, want_events) in table {
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
