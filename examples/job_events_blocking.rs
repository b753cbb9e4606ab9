//! A job watched as it runs, from blocking code: its status, progress, log lines and
//! partial output as they happen, then its result.
//!
//! Patterns: S4.4
//!
//! Python (inference.sh): `for update in client.run(…, stream=True)` prints each status
//! update until the task completes, then takes its output.
//!
//! Rust: `jobwire_blocking`'s `run_stream` is an `Iterator` of `RunEvent`s — each event
//! as the server sends it, then `Done` with the decoded output — read with a plain `for`
//! loop; `job.events()` is the same for a job already submitted.
//!
//! ```text
//! cargo run --example job_events_blocking
//! ```

mod common;

use common::{check, BlockingServer};
use jobwire_blocking::{EventKind, JobStatus, RunEvent};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Debug)]
struct Steps {
    steps: u32,
    text: String,
}

fn main() -> common::Result {
    let server = BlockingServer::start()?;
    let client = server.client()?;

    let mut kinds = Vec::new();
    let mut result = None;
    for item in client.run_stream::<_, Steps>("steps", &json!({"steps": 5, "interval_ms": 150})) {
        match item? {
            RunEvent::Submitted { job_id } => println!("submitted {job_id}"),
            RunEvent::Event(event) => match event.kind {
                EventKind::Status(status) => println!("  status   {status}"),
                EventKind::Progress { fraction, message } => {
                    println!("  progress {:>3.0}% {message}", fraction * 100.0);
                    kinds.push("progress");
                }
                EventKind::Log(line) => {
                    println!("  log      {line}");
                    kinds.push("log");
                }
                EventKind::Output(chunk) => {
                    println!("  output   {chunk:?}");
                    kinds.push("output");
                }
                _ => {}
            },
            RunEvent::Done(steps) => {
                println!("done: {steps:?}");
                result = Some(steps);
            }
            _ => {}
        }
    }
    let count = |kind: &str| kinds.iter().filter(|k| **k == kind).count();
    check(
        count("progress") == 5
            && count("log") == 5
            && count("output") == 5
            && result.is_some_and(|s| s.steps == 5 && s.text.ends_with('.')),
        "5 progress reports, 5 log lines, 5 output chunks as they happened, then the typed result",
    )?;

    let job = client.submit("steps", &json!({"steps": 3, "interval_ms": 50}))?;
    let mut last = None;
    for event in job.events() {
        last = Some(event?.kind);
    }
    check(
        matches!(&last, Some(EventKind::Done(job)) if job.status == JobStatus::Succeeded),
        "job.events() ended with the job's done event",
    )?;
    server.stop();
    Ok(())
}
