//! Job events as Rust types: what a job's event stream (`GET /v1/jobs/{id}/events`) and
//! the multiplexed stream (`GET /v1/events`) carry.
//!
//! ```
//! use jobwire_core::event::{EventKind, JobEvent};
//! use jobwire_core::sse::SseEvent;
//!
//! let sse = SseEvent {
//!     event: "progress".into(),
//!     data: r#"{"job_id":"job_1","fraction":0.5,"message":"half way"}"#.into(),
//!     id: "42".into(),
//! };
//! let event = JobEvent::from_sse(&sse)?.expect("a known event");
//! assert_eq!(event.id, 42);
//! assert_eq!(event.job_id, "job_1");
//! assert!(matches!(event.kind, EventKind::Progress { fraction, .. } if fraction == 0.5));
//! # Ok::<(), jobwire_core::Error>(())
//! ```

use serde::Deserialize;

use crate::error::quoted;
use crate::sse::SseEvent;
use crate::{Error, Job, JobStatus};

/// One thing that happened to a job.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct JobEvent {
    /// The event's id: increasing in the order the server recorded events. A stream
    /// resumes after it.
    pub id: u64,
    /// The job it is about.
    pub job_id: String,
    /// What happened.
    pub kind: EventKind,
}

/// What happened to a job.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum EventKind {
    /// The job's status changed.
    Status(JobStatus),
    /// The job reported progress.
    Progress {
        /// Between 0 and 1.
        fraction: f64,
        /// What the job is doing now.
        message: String,
    },
    /// The job wrote a log line.
    Log(String),
    /// The job produced a chunk of partial output (the next words of a reply, say).
    Output(String),
    /// The job is terminal: the final job, with its output or error. Always a job's
    /// last event.
    Done(Box<Job>),
}

#[derive(Deserialize)]
struct StatusData {
    status: JobStatus,
}

#[derive(Deserialize)]
struct ProgressData {
    fraction: f64,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct LogData {
    line: String,
}

#[derive(Deserialize)]
struct OutputData {
    chunk: String,
}

#[derive(Deserialize)]
struct JobIdOnly {
    job_id: String,
}

impl EventKind {
    /// Whether `kind` is the wire name of an event this version knows.
    pub(crate) fn is_known(kind: &str) -> bool {
        matches!(kind, "status" | "progress" | "log" | "output" | "done")
    }
}

impl JobEvent {
    /// An event `id` of job `job_id`.
    pub fn new(id: u64, job_id: impl Into<String>, kind: EventKind) -> Self {
        JobEvent {
            id,
            job_id: job_id.into(),
            kind,
        }
    }

    /// Reads a job event from a decoded SSE event: `Ok(None)` for an event type this
    /// version does not know (the contract says to ignore those), an error for a known
    /// type whose id or data does not fit.
    pub fn from_sse(sse: &SseEvent) -> Result<Option<JobEvent>, Error> {
        let decode = |what: &str, e: serde_json::Error| Error::Decode {
            status: http::StatusCode::OK,
            message: format!("{what} event {}: {e}", quoted(&sse.id)),
            body: bytes::Bytes::from(sse.data.clone()),
        };
        let data = sse.data.as_str();
        let kind = match sse.event.as_str() {
            "status" => {
                let d: StatusData = serde_json::from_str(data).map_err(|e| decode("status", e))?;
                EventKind::Status(d.status)
            }
            "progress" => {
                let d: ProgressData =
                    serde_json::from_str(data).map_err(|e| decode("progress", e))?;
                EventKind::Progress {
                    fraction: d.fraction,
                    message: d.message,
                }
            }
            "log" => {
                let d: LogData = serde_json::from_str(data).map_err(|e| decode("log", e))?;
                EventKind::Log(d.line)
            }
            "output" => {
                let d: OutputData = serde_json::from_str(data).map_err(|e| decode("output", e))?;
                EventKind::Output(d.chunk)
            }
            "done" => {
                let job: Job = serde_json::from_str(data).map_err(|e| decode("done", e))?;
                EventKind::Done(Box::new(job))
            }
            _ => return Ok(None),
        };
        let id = event_id(sse)?;
        let job_id = match &kind {
            EventKind::Done(job) => job.id.clone(),
            _ => {
                serde_json::from_str::<JobIdOnly>(data)
                    .map_err(|e| decode(&sse.event, e))?
                    .job_id
            }
        };
        Ok(Some(JobEvent { id, job_id, kind }))
    }

    /// The final job, when this is a `done` event.
    pub fn done(&self) -> Option<&Job> {
        match &self.kind {
            EventKind::Done(job) => Some(job),
            _ => None,
        }
    }
}

/// An event's id, the position a stream resumes after.
pub(crate) fn event_id(sse: &SseEvent) -> Result<u64, Error> {
    sse.id.parse::<u64>().map_err(|_| {
        Error::Protocol(format!(
            "event id {} is not a non-negative integer",
            quoted(&sse.id)
        ))
    })
}

/// A job's final state as a `done` event carried it, still the server's JSON: whoever
/// routes `done`s to their waiters reads only the job's id, and each waiter decodes its
/// own job (on its own thread, where the job it replaces is freed).
///
/// A `done` too large for the server's event limit comes without the job's `input` and
/// `output`, with a member `omitted` that lists what it left out (docs/api.md,
/// "Limits"): [`is_complete`](Self::is_complete) is then `false`, and its waiter reads
/// the job (`GET /v1/jobs/{id}`) instead of decoding it.
///
/// ```
/// use jobwire_core::event::FinishedJob;
/// use jobwire_core::sse::SseEvent;
///
/// let sse = SseEvent {
///     event: "done".into(),
///     data: r#"{"id":"job_1","service_id":"svc_echo","service":"echo","status":"succeeded",
///               "input":{},"output":{"n":1},"created_at":"2026-12-01T00:00:00Z"}"#.into(),
///     id: "9".into(),
/// };
/// let (id, finished) = FinishedJob::from_sse(sse)?;
/// assert_eq!((id, finished.job_id()), (9, "job_1"));
/// assert!(finished.is_complete());
/// assert_eq!(finished.decode()?.output, Some(serde_json::json!({"n": 1})));
///
/// let cut = SseEvent {
///     event: "done".into(),
///     data: r#"{"id":"job_2","service_id":"svc_echo","status":"succeeded","omitted":["input","output"]}"#.into(),
///     id: "10".into(),
/// };
/// assert!(!FinishedJob::from_sse(cut)?.1.is_complete());
/// # Ok::<(), jobwire_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinishedJob {
    job_id: String,
    complete: bool,
    json: String,
}

/// What routing a `done` needs of it: the job's id, and whether members were left out.
#[derive(Deserialize)]
struct DoneMarks<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    /// Present (whatever it lists) when the server left members out.
    #[serde(default)]
    omitted: Option<serde::de::IgnoredAny>,
}

impl FinishedJob {
    /// Reads a `done` event's id, its job's id and whether it carries the whole job,
    /// keeping the rest undecoded.
    pub fn from_sse(sse: SseEvent) -> Result<(u64, FinishedJob), Error> {
        let id = event_id(&sse)?;
        let (job_id, complete) = match serde_json::from_str::<DoneMarks<'_>>(&sse.data) {
            Ok(marks) => (marks.id.into_owned(), marks.omitted.is_none()),
            Err(e) => {
                return Err(Error::Decode {
                    status: http::StatusCode::OK,
                    message: format!("done event {}: {e}", quoted(&sse.id)),
                    body: bytes::Bytes::from(sse.data),
                })
            }
        };
        Ok((
            id,
            FinishedJob {
                job_id,
                complete,
                json: sse.data,
            },
        ))
    }

    /// The finished job's id.
    pub fn job_id(&self) -> &str {
        &self.job_id
    }

    /// The bytes of the job's JSON, as the event carried it.
    pub(crate) fn json_len(&self) -> usize {
        self.json.len()
    }

    /// Whether the event carries the whole job; `false` when the server left members
    /// out (`omitted`): read the job instead.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Decodes the job (without the members the server left out, if it did).
    pub fn decode(&self) -> Result<Job, Error> {
        serde_json::from_str(&self.json).map_err(|e| Error::Decode {
            status: http::StatusCode::OK,
            message: format!("done event of {}: {e}", self.job_id),
            body: bytes::Bytes::from(self.json.clone()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse(event: &str, id: &str, data: &str) -> SseEvent {
        SseEvent {
            event: event.into(),
            data: data.into(),
            id: id.into(),
        }
    }

    #[test]
    fn every_kind_decodes() {
        let cases = [
            (
                sse("status", "1", r#"{"job_id":"j","status":"running"}"#),
                EventKind::Status(JobStatus::Running),
            ),
            (
                sse(
                    "progress",
                    "2",
                    r#"{"job_id":"j","fraction":1,"message":"m"}"#,
                ),
                EventKind::Progress {
                    fraction: 1.0,
                    message: "m".into(),
                },
            ),
            (
                sse("log", "3", r#"{"job_id":"j","line":"l"}"#),
                EventKind::Log("l".into()),
            ),
            (
                sse("output", "4", r#"{"job_id":"j","chunk":" word"}"#),
                EventKind::Output(" word".into()),
            ),
            (
                sse(
                    "done",
                    "5",
                    r#"{"job_id":"j","id":"j","service_id":"s","status":"succeeded","output":1}"#,
                ),
                EventKind::Done(Box::new({
                    let mut job = Job::new("j", "s", JobStatus::Succeeded);
                    job.output = Some(serde_json::json!(1));
                    job
                })),
            ),
        ];
        for (i, (sse, want)) in cases.into_iter().enumerate() {
            let event = JobEvent::from_sse(&sse).unwrap().unwrap();
            assert_eq!(event.id, i as u64 + 1);
            assert_eq!(event.job_id, "j");
            assert_eq!(event.kind, want);
        }
    }

    #[test]
    fn unknown_kinds_are_skipped_and_bad_ones_are_errors() {
        assert_eq!(
            JobEvent::from_sse(&sse("heartbeat", "", "{}")).unwrap(),
            None
        );
        assert!(matches!(
            JobEvent::from_sse(&sse("log", "1", "not json")),
            Err(Error::Decode { .. })
        ));
        assert!(matches!(
            JobEvent::from_sse(&sse("log", "x", r#"{"job_id":"j","line":"l"}"#)),
            Err(Error::Protocol(_))
        ));
        assert!(matches!(
            JobEvent::from_sse(&sse("log", "1", r#"{"line":"no job"}"#)),
            Err(Error::Decode { .. })
        ));
    }
}
