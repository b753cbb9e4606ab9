//! `jobwire events ID`: a job's events, one line each, until its `done`.

use futures_util::StreamExt;
use jobwire::{EventKind, JobEvent};
use serde::Serialize;
use serde_json::{json, Value};

use crate::context::Context;
use crate::exit::Failure;

/// Prints each event of the job as it comes (history first), until `done`.
pub async fn follow(ctx: &Context, id: &str) -> Result<(), Failure> {
    // Reading the job first makes an unknown id a plain not-found.
    let job = ctx.client.get_job(id).await?;
    let mut events = job.events();
    while let Some(event) = events.next().await {
        let event = event?;
        if ctx.printer.is_json() {
            ctx.printer.json_line(&as_json(&event))?;
        } else {
            ctx.printer.line(&as_text(&event))?;
        }
        if event.done().is_some() {
            break;
        }
    }
    Ok(())
}

/// An event as one JSON object: its id, job id and type, then the type's data, as on
/// the wire (`done` carries the final job as `job`). A struct, so the members keep this
/// order.
#[derive(Debug, Serialize)]
struct EventLine<'a> {
    id: u64,
    job_id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(flatten)]
    data: Value,
}

fn as_json(event: &JobEvent) -> EventLine<'_> {
    let (kind, data) = match &event.kind {
        EventKind::Status(status) => ("status", json!({ "status": status })),
        EventKind::Progress { fraction, message } => (
            "progress",
            json!({ "fraction": fraction, "message": message }),
        ),
        EventKind::Log(line) => ("log", json!({ "line": line })),
        EventKind::Output(chunk) => ("output", json!({ "chunk": chunk })),
        EventKind::Done(job) => ("done", json!({ "job": job })),
        _ => ("other", json!({})),
    };
    EventLine {
        id: event.id,
        job_id: &event.job_id,
        kind,
        data,
    }
}

/// An event as one line for people: `ID  TYPE  WHAT`.
fn as_text(event: &JobEvent) -> String {
    let (kind, what) = match &event.kind {
        EventKind::Status(status) => ("status", status.to_string()),
        EventKind::Progress { fraction, message } => {
            ("progress", format!("{:>3.0}% {message}", fraction * 100.0))
        }
        EventKind::Log(line) => ("log", line.clone()),
        // Quoted: a chunk's spaces and newlines matter.
        EventKind::Output(chunk) => ("output", json!(chunk).to_string()),
        EventKind::Done(job) => match &job.error {
            Some(error) => ("done", format!("{}: {error}", job.status)),
            None => ("done", job.status.to_string()),
        },
        other => ("other", format!("{other:?}")),
    };
    format!("{}  {kind:<8}  {what}", event.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobwire::core::sse::SseEvent;

    fn event(kind: &str, data: &str) -> JobEvent {
        let sse = SseEvent {
            event: kind.into(),
            data: data.into(),
            id: "7".into(),
        };
        JobEvent::from_sse(&sse).unwrap().unwrap()
    }

    #[test]
    fn lines_and_objects() {
        let progress = event(
            "progress",
            r#"{"job_id":"job_1","fraction":0.5,"message":"half"}"#,
        );
        assert_eq!(as_text(&progress), "7  progress   50% half");
        assert_eq!(
            serde_json::to_string(&as_json(&progress)).unwrap(),
            r#"{"id":7,"job_id":"job_1","type":"progress","fraction":0.5,"message":"half"}"#
        );
        let output = event("output", r#"{"job_id":"job_1","chunk":"a b"}"#);
        assert_eq!(as_text(&output), r#"7  output    "a b""#);
        let done = event(
            "done",
            r#"{"id":"job_1","service_id":"svc_fail","status":"failed","error":{"message":"boom","code":"fail"},"job_id":"job_1"}"#,
        );
        assert_eq!(as_text(&done), "7  done      failed: boom (fail)");
        let done = serde_json::to_value(as_json(&done)).unwrap();
        assert_eq!(done["job"]["error"]["message"], "boom");
    }
}
