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
//! What a job records is capped in bytes ([`Caps`], docs/api.md "Limits"): no event's
//! data is longer than `max_event_bytes` — a long `log` line or `progress` message is cut
//! at a character boundary and marked `"truncated": true`, a long `output` chunk is
//! split into several `output` events in order, and a `done` too large for an event
//! leaves out the job's `input` and `output` (listing them in `"omitted"`), for clients
//! to read the job instead. An output longer than `max_output_bytes` of JSON fails the
//! job with code `output_too_large`; an error's message is cut to
//! [`MAX_ERROR_MESSAGE_BYTES`] and its code to [`MAX_ERROR_CODE_BYTES`].
//!
//! How a submitted job enters this machine is decided here too ([`admission`]): stored
//! `queued` to wait for a slot, stored `running` with its handler started after the
//! write, or — for a handler declared side-effect free — run first, within the submit,
//! and stored once: terminal with all its events ([`settle`]) when it finished within
//! the submit's budget, `running` otherwise.

use std::collections::BTreeMap;
use std::io;

use jobwire_core::{Job, JobError, JobStatus, Progress};
use serde::Serialize;
use serde_json::{json, Value};

use crate::store::{EventData, EventKind};

/// The longest `error.message` a job keeps: 8 KiB, cut at a character boundary.
pub(crate) const MAX_ERROR_MESSAGE_BYTES: usize = 8 * 1024;
/// The longest `error.code` a job keeps, cut at a character boundary.
pub(crate) const MAX_ERROR_CODE_BYTES: usize = 256;
/// The error code of a job whose output is longer than `max_output_bytes`.
pub(crate) const OUTPUT_TOO_LARGE: &str = "output_too_large";

/// What a job may record, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    /// The most bytes of one event's data (its JSON text).
    pub max_event_bytes: usize,
    /// The most bytes of a job's output, as JSON text.
    pub max_output_bytes: usize,
}

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
    caps: &Caps,
) -> (Job, Vec<(EventKind, EventData)>) {
    let mut job = job.clone();
    let mut events = Vec::new();
    for happening in happenings {
        if let Some(t) = transition(&job, happening, now, caps) {
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

/// What `happening` does to `job` at time `now`, within `caps`; `None` when it does
/// nothing (the job is terminal, or a `Start` finds it no longer queued).
pub(crate) fn transition(
    job: &Job,
    happening: Happening,
    now: &str,
    caps: &Caps,
) -> Option<Transition> {
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
            let event = |message: &str, truncated: bool| {
                let mut data =
                    json!({ "job_id": job.id, "fraction": fraction, "message": message });
                if truncated {
                    data["truncated"] = Value::Bool(true);
                }
                EventData::of(&data)
            };
            let (data, kept) = fitted(&message, caps, event);
            let mut message = message;
            message.truncate(kept);
            next.progress = Some(Progress::new(fraction, message));
            Some(changed(next, vec![(EventKind::Progress, data)]))
        }
        Happening::Log(line) => {
            let event = |line: &str, truncated: bool| {
                let mut data = json!({ "job_id": job.id, "line": line });
                if truncated {
                    data["truncated"] = Value::Bool(true);
                }
                EventData::of(&data)
            };
            let (data, _) = fitted(&line, caps, event);
            Some(Transition {
                job: None,
                events: vec![(EventKind::Log, data)],
                effects: Vec::new(),
            })
        }
        Happening::Output(chunk) => {
            let event = |chunk: &str| EventData::of(&json!({ "job_id": job.id, "chunk": chunk }));
            let whole = event(&chunk);
            let events = if whole.get().len() <= caps.max_event_bytes {
                vec![(EventKind::Output, whole)]
            } else {
                let room = caps.max_event_bytes.saturating_sub(event("").get().len());
                pieces(&chunk, room)
                    .map(|piece| (EventKind::Output, event(piece)))
                    .collect()
            };
            Some(Transition {
                job: None,
                events,
                effects: Vec::new(),
            })
        }
        Happening::Succeed(output) => {
            next.status = JobStatus::Succeeded;
            next.output = Some(output);
            Some(finished(next, now, caps))
        }
        Happening::Fail(error) => {
            next.status = JobStatus::Failed;
            next.error = Some(capped_error(error));
            Some(finished(next, now, caps))
        }
        Happening::Cancel => {
            next.status = JobStatus::Cancelled;
            Some(finished(next, now, caps))
        }
        Happening::Interrupt(why) => {
            next.status = JobStatus::Failed;
            next.error = Some(capped_error(interrupted(&why)));
            Some(finished(next, now, caps))
        }
    }
}

/// The event `make(text, truncated)` of `text`, cut (and marked) to fit
/// `max_event_bytes` when the whole does not; with how many bytes of `text` it carries.
fn fitted(text: &str, caps: &Caps, make: impl Fn(&str, bool) -> EventData) -> (EventData, usize) {
    let whole = make(text, false);
    if whole.get().len() <= caps.max_event_bytes {
        return (whole, text.len());
    }
    let room = caps
        .max_event_bytes
        .saturating_sub(make("", true).get().len());
    let kept = fit(text, room);
    (make(&text[..kept], true), kept)
}

/// How many bytes JSON takes to write `c` inside a string (as serde_json escapes it).
fn escaped_len(c: char) -> usize {
    match c {
        '"' | '\\' | '\u{8}' | '\u{c}' | '\n' | '\r' | '\t' => 2,
        c if (c as u32) < 0x20 => 6,
        c => c.len_utf8(),
    }
}

/// The longest prefix of `text` (in bytes, at a character boundary) whose JSON string
/// form takes at most `room` bytes.
fn fit(text: &str, room: usize) -> usize {
    let mut used = 0;
    for (at, c) in text.char_indices() {
        used += escaped_len(c);
        if used > room {
            return at;
        }
    }
    text.len()
}

/// `text` in pieces whose JSON string forms take at most `room` bytes each (at least
/// one character each), in order, nothing lost.
fn pieces(text: &str, room: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = fit(rest, room);
        if end == 0 {
            // Room for less than one character: never the case with the server's
            // minimum event size, but a piece must move on.
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut_to(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// A job error within [`MAX_ERROR_MESSAGE_BYTES`] and [`MAX_ERROR_CODE_BYTES`].
fn capped_error(mut error: JobError) -> JobError {
    error.message = cut_to(error.message, MAX_ERROR_MESSAGE_BYTES);
    error.code = error.code.map(|code| cut_to(code, MAX_ERROR_CODE_BYTES));
    error
}

/// How many bytes `value` takes as JSON text, counted without keeping the text.
fn json_len(value: &Value) -> usize {
    struct Count(usize);
    impl io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    // Writing a `Value` to a writer that never fails cannot fail.
    let _ = serde_json::to_writer(&mut count, value);
    count.0
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
/// with (stopped, if it still runs), then its waiters see the end. An output longer
/// than `max_output_bytes` fails the job instead; a `done` longer than
/// `max_event_bytes` leaves out what makes it so.
fn finished(mut job: Job, now: &str, caps: &Caps) -> Transition {
    job.finished_at = Some(now.to_owned());
    let mut done = done_event(&job);
    // The output is part of the done: only a done that long can carry an output that
    // long, so the common case measures nothing twice.
    if done.1.get().len() > caps.max_output_bytes {
        let size = job.output.as_ref().map_or(0, json_len);
        if size > caps.max_output_bytes {
            job.status = JobStatus::Failed;
            job.output = None;
            let mut error = JobError::new(format!(
                "the output is {size} bytes of JSON, more than the server's limit of {} bytes",
                caps.max_output_bytes
            ));
            error.code = Some(OUTPUT_TOO_LARGE.into());
            job.error = Some(error);
            done = done_event(&job);
        }
    }
    if done.1.get().len() > caps.max_event_bytes {
        done = done_without(&mut job, caps);
    }
    let events = vec![status_event(&job), done];
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

/// A `done` for a job too large for one event: without its `input` and `output`, and
/// if that is not enough, without its `labels` and `progress` too (both bounded only by
/// the request and event sizes), naming what it left out in `omitted`. What is left —
/// ids, status, times, an error within its caps — is far below the smallest
/// `max_event_bytes` the server accepts.
fn done_without(job: &mut Job, caps: &Caps) -> (EventKind, EventData) {
    // Taken out while the rest is made a tree, so nothing large is copied.
    let input = std::mem::take(&mut job.input);
    let output = job.output.take();
    let mut data = match serde_json::to_value(&*job) {
        Ok(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    job.input = input;
    job.output = output;
    data.insert("job_id".into(), Value::String(job.id.clone()));
    let mut omitted = vec!["input", "output"];
    for member in &omitted {
        data.remove(*member);
    }
    data.insert("omitted".into(), json!(omitted));
    let mut event = EventData::of(&data);
    if event.get().len() > caps.max_event_bytes {
        omitted.extend(["labels", "progress"]);
        for member in &omitted {
            data.remove(*member);
        }
        data.insert("omitted".into(), json!(omitted));
        event = EventData::of(&data);
    }
    (EventKind::Done, event)
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
    /// The server's defaults.
    const CAPS: Caps = Caps {
        max_event_bytes: 256 * 1024,
        max_output_bytes: 16 * 1024 * 1024,
    };

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
            let got = transition(&job(from.clone()), happening.clone(), NOW, &CAPS);
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
        let (settled, events) = settle(&running, happenings, NOW, &CAPS);
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
        let (failed, events) = settle(&running, [Happening::Fail(JobError::new("x"))], NOW, &CAPS);
        assert_eq!(failed.status, JobStatus::Failed);
        assert_eq!(events.len(), 2);
        assert_eq!(settle(&running, [], NOW, &CAPS), (running.clone(), vec![]));
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
                assert_eq!(
                    transition(&job(status.clone()), happening, NOW, &CAPS),
                    None
                );
            }
        }
    }

    #[test]
    fn finishing_stamps_the_time_and_done_carries_the_job() {
        let t = transition(
            &job(JobStatus::Running),
            Happening::Succeed(json!("out")),
            NOW,
            &CAPS,
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

        let started = transition(&job(JobStatus::Queued), Happening::Start, NOW, &CAPS).unwrap();
        assert_eq!(started.job.unwrap().started_at.as_deref(), Some(NOW));

        let interrupted = transition(
            &job(JobStatus::Running),
            Happening::Interrupt("gone".into()),
            NOW,
            &CAPS,
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
                &CAPS,
            )
            .unwrap();
            assert_eq!(t.job.unwrap().progress.unwrap().fraction, want);
            assert_eq!(t.events[0].1.value()["fraction"], json!(want));
        }
    }

    /// The smallest caps the server accepts, so each rule is seen at its boundary.
    const SMALL: Caps = Caps {
        max_event_bytes: crate::config::MIN_EVENT_BYTES,
        max_output_bytes: 256 * 1024,
    };

    /// The JSON of each event of `t`, checked against the event cap.
    fn data_within(t: &Transition, caps: &Caps) -> Vec<Value> {
        t.events
            .iter()
            .map(|(kind, data)| {
                assert!(
                    data.get().len() <= caps.max_event_bytes,
                    "a {} event of {} bytes",
                    kind.as_str(),
                    data.get().len()
                );
                data.value()
            })
            .collect()
    }

    /// The text an event of `make(text)` carries, with `room` the bytes of data left
    /// for it: exactly the cap is whole, one byte more is cut (at a character boundary,
    /// counting JSON escapes) and marked.
    #[test]
    fn log_lines_and_progress_messages_are_cut_to_fit_and_marked() {
        let running = job(JobStatus::Running);
        let log_room = SMALL.max_event_bytes - r#"{"job_id":"job_1","line":""}"#.len();
        let cut = SMALL.max_event_bytes - r#"{"job_id":"job_1","line":"","truncated":true}"#.len();
        // (what, line, cut to this many bytes of the line or not cut)
        let table: Vec<(&str, String, Option<usize>)> = vec![
            ("short", "hello".into(), None),
            ("exactly the cap", "a".repeat(log_room), None),
            ("one byte over", "a".repeat(log_room + 1), Some(cut)),
            // "é" is 2 bytes: the cut never splits it.
            (
                "two-byte characters",
                "é".repeat(40_000),
                Some(2 * (cut / 2)),
            ),
            // A control character is 6 bytes of JSON (\u0001).
            ("escapes", "\u{1}".repeat(12_000), Some(cut / 6)),
            ("quotes", "\"".repeat(40_000), Some(cut / 2)),
        ];
        for (what, line, want) in table {
            let t = transition(&running, Happening::Log(line.clone()), NOW, &SMALL).unwrap();
            let data = data_within(&t, &SMALL);
            assert_eq!(data.len(), 1, "{what}");
            let got = data[0]["line"].as_str().unwrap();
            match want {
                None => {
                    assert_eq!(got, line, "{what}");
                    assert!(data[0].get("truncated").is_none(), "{what}");
                }
                Some(kept) => {
                    assert_eq!(got, &line[..kept], "{what}");
                    assert_eq!(data[0]["truncated"], true, "{what}");
                }
            }
        }
        // A progress message: the event and the job's progress both carry the cut text.
        let long = "m".repeat(70_000);
        let progress = Happening::Progress {
            fraction: 0.5,
            message: long.clone(),
        };
        let t = transition(&running, progress, NOW, &SMALL).unwrap();
        let data = data_within(&t, &SMALL);
        let message = data[0]["message"].as_str().unwrap();
        assert!(
            long.starts_with(message) && message.len() > 60_000,
            "{}",
            message.len()
        );
        assert_eq!(data[0]["truncated"], true);
        assert_eq!(t.job.unwrap().progress.unwrap().message, message);
    }

    /// An output chunk too long for one event is split into several, in order, each
    /// within the cap, nothing lost.
    #[test]
    fn output_chunks_are_split_in_order() {
        let running = job(JobStatus::Running);
        for chunk in [
            "x".repeat(200_000),
            "é\u{1}\"ü".repeat(10_000),
            "y".repeat(SMALL.max_event_bytes - r#"{"job_id":"job_1","chunk":""}"#.len()),
        ] {
            let t = transition(&running, Happening::Output(chunk.clone()), NOW, &SMALL).unwrap();
            let data = data_within(&t, &SMALL);
            let joined: String = data.iter().map(|d| d["chunk"].as_str().unwrap()).collect();
            assert_eq!(joined, chunk);
            assert!(t.events.iter().all(|(k, _)| *k == EventKind::Output));
            let whole = r#"{"job_id":"job_1","chunk":""}"#.len() + json_len(&json!(chunk)) - 2;
            assert_eq!(
                data.len() > 1,
                whole > SMALL.max_event_bytes,
                "split only when needed"
            );
        }
    }

    /// What a finished job's `done` carries, and what its output may be.
    #[test]
    fn done_and_output_within_their_caps() {
        let running = job(JobStatus::Running);
        // The output's JSON is the string's length plus its quotes.
        let output = |json_bytes: usize| json!("o".repeat(json_bytes - 2));
        // (what, happening, the status, `omitted` of the done, the error code)
        type Row = (
            &'static str,
            Happening,
            JobStatus,
            Option<Value>,
            Option<&'static str>,
        );
        let table: Vec<Row> = vec![
            (
                "small",
                Happening::Succeed(json!(1)),
                JobStatus::Succeeded,
                None,
                None,
            ),
            (
                "too large for an event",
                Happening::Succeed(output(100_000)),
                JobStatus::Succeeded,
                Some(json!(["input", "output"])),
                None,
            ),
            (
                "exactly the output cap",
                Happening::Succeed(output(SMALL.max_output_bytes)),
                JobStatus::Succeeded,
                Some(json!(["input", "output"])),
                None,
            ),
            (
                "one byte over the output cap",
                Happening::Succeed(output(SMALL.max_output_bytes + 1)),
                JobStatus::Failed,
                None,
                Some(OUTPUT_TOO_LARGE),
            ),
            (
                "a long error message",
                Happening::Fail(JobError::new("e".repeat(100_000))),
                JobStatus::Failed,
                None,
                None,
            ),
        ];
        for (what, happening, status, omitted, code) in table {
            let t = transition(&running, happening.clone(), NOW, &SMALL).unwrap();
            let stored = t.job.clone().unwrap();
            assert_eq!(stored.status, status, "{what}");
            let data = data_within(&t, &SMALL);
            assert_eq!(data[0]["status"], status.as_str(), "{what}");
            let done = &data[1];
            assert_eq!(done.get("omitted"), omitted.as_ref(), "{what}");
            assert_eq!(done["job_id"], "job_1", "{what}");
            if omitted.is_some() {
                assert!(
                    done.get("input").is_none() && done.get("output").is_none(),
                    "{what}"
                );
                assert!(stored.output.is_some(), "{what}: the stored job keeps it");
            } else {
                let decoded: Job = serde_json::from_value(done.clone()).unwrap();
                assert_eq!(decoded, stored, "{what}: the whole job");
            }
            let error = stored.error.as_ref();
            assert_eq!(error.and_then(|e| e.code.as_deref()), code, "{what}");
            if let Happening::Succeed(out) = happening {
                if code.is_some() {
                    assert_eq!(stored.output, None, "{what}");
                } else {
                    assert_eq!(stored.output, Some(out), "{what}");
                }
            }
            if let Some(error) = error {
                assert!(error.message.len() <= MAX_ERROR_MESSAGE_BYTES, "{what}");
            }
        }
    }

    #[test]
    fn error_messages_and_codes_are_capped_at_a_character_boundary() {
        let mut error = JobError::new(format!("a{}", "é".repeat(MAX_ERROR_MESSAGE_BYTES)));
        error.code = Some("c".repeat(1000));
        let t = transition(&job(JobStatus::Running), Happening::Fail(error), NOW, &CAPS).unwrap();
        let error = t.job.unwrap().error.unwrap();
        // 1 + 2k bytes: the last "é" that fits ends at MAX - 1.
        assert_eq!(error.message.len(), MAX_ERROR_MESSAGE_BYTES - 1);
        assert_eq!(error.code.map(|c| c.len()), Some(MAX_ERROR_CODE_BYTES));
    }

    /// A done too large even without input and output (labels are bounded only by the
    /// request's size) leaves out labels and progress too.
    #[test]
    fn a_done_with_huge_labels_leaves_them_out_too() {
        let mut running = job(JobStatus::Running);
        running.labels = (0..64)
            .map(|i| (format!("k{i}"), "v".repeat(1500)))
            .collect();
        running.progress = Some(Progress::new(0.5, "p".repeat(1000)));
        let t = transition(&running, Happening::Succeed(json!(1)), NOW, &SMALL).unwrap();
        let data = data_within(&t, &SMALL);
        assert_eq!(
            data[1]["omitted"],
            json!(["input", "output", "labels", "progress"])
        );
        assert_eq!(data[1]["id"], "job_1");
        assert_eq!(t.job.unwrap().labels.len(), 64, "the stored job keeps them");
    }
}
