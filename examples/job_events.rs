//! A job watched as it runs: its status, progress, log lines and partial output as they
//! happen, then its result; and a reply streamed word by word to a callback, like a
//! chat agent's.
//!
//! Patterns: S4.4, S4.5
//!
//! Python (inference.sh): `async for update in client.run(…, stream=True)` prints each
//! `update["status"]` and returns the output once `completed`; an agent's
//! `send_message(…, on_message=callback)` calls back with each piece of the reply.
//!
//! Rust: `run_stream` is that loop as a `Stream` of `RunEvent`s — `Submitted`, each
//! `Event`, then `Done` with the output decoded into your type (a failed job is the
//! stream's last item, as an error). `job.events()` follows a job you already have. A
//! callback is just a closure handed the chunks; the stream resumes by itself after a
//! dropped connection, without a gap or a repeat.
//!
//! ```text
//! cargo run --example job_events
//! ```

mod common;

use std::io::Write;
use std::time::{Duration, Instant};

use common::{check, Server};
use futures_util::StreamExt;
use jobwire::{Client, Error, EventKind, JobStatus, RunEvent};
use serde::Deserialize;
use serde_json::json;

/// The output of the `steps` service.
#[derive(Deserialize, Debug)]
struct Steps {
    steps: u32,
    text: String,
}

/// A reply produced chunk by chunk: each chunk goes to `on_message` as it arrives.
async fn send_message(
    client: &Client,
    words: u32,
    mut on_message: impl FnMut(&str),
) -> Result<Steps, Error> {
    let mut run =
        client.run_stream::<_, Steps>("steps", &json!({"steps": words, "interval_ms": 100}));
    while let Some(item) = run.next().await {
        match item? {
            RunEvent::Event(event) => {
                if let EventKind::Output(chunk) = event.kind {
                    on_message(&chunk);
                }
            }
            RunEvent::Done(reply) => return Ok(reply),
            _ => {}
        }
    }
    Err(Error::Protocol(
        "the stream ended without the job's result".into(),
    ))
}

#[tokio::main]
async fn main() -> common::Result {
    let server = Server::start().await?;
    let client = server.client()?;

    // Every event of a run, until its result.
    let mut run = client.run_stream::<_, Steps>("steps", &json!({"steps": 5, "interval_ms": 150}));
    let mut kinds = Vec::new();
    let mut result = None;
    while let Some(item) = run.next().await {
        match item? {
            RunEvent::Submitted { job_id } => println!("submitted {job_id}"),
            RunEvent::Event(event) => match event.kind {
                EventKind::Status(status) => {
                    println!("  status   {status}");
                    kinds.push(if status == JobStatus::Running {
                        "running"
                    } else {
                        "status"
                    });
                }
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
            && result.is_some_and(|s| s.steps == 5),
        "5 progress reports, 5 log lines, 5 output chunks as they happened, then the typed result",
    )?;

    // The same from a job handle, already submitted.
    let job = client
        .submit("steps", &json!({"steps": 3, "interval_ms": 50}))
        .await?;
    let mut events = job.events();
    let mut last = None;
    while let Some(event) = events.next().await {
        last = Some(event?.kind);
    }
    check(
        matches!(&last, Some(EventKind::Done(job)) if job.status == JobStatus::Succeeded),
        "job.events() ended with the job's done event",
    )?;

    // A reply, word by word, to a callback.
    print!("reply: ");
    let started = Instant::now();
    let mut heard = String::new();
    let mut first_word = None;
    let reply = send_message(&client, 8, |chunk| {
        first_word.get_or_insert_with(|| started.elapsed());
        heard.push_str(chunk);
        print!("{chunk}");
        let _ = std::io::stdout().flush();
    })
    .await?;
    let whole = started.elapsed();
    println!();
    let first = first_word.unwrap_or(whole);
    check(
        heard == reply.text && first + Duration::from_millis(500) < whole,
        format!(
            "the callback heard the whole reply, the first word at {:.2}s of {:.2}s",
            first.as_secs_f64(),
            whole.as_secs_f64()
        ),
    )?;
    server.stop().await;
    Ok(())
}
