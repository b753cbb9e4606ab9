//! 100 jobs, 10 at a time, under a progress bar: `run_all` with an `on_event` hook
//! driving an indicatif bar, then the summary and the first few outputs, in input order.
//!
//! Patterns: S4.9
//!
//! Python (inference.sh): `tqdm.as_completed` over semaphore-bounded `client.run` tasks
//! advances a bar as each task completes.
//!
//! Rust: the batch calls your hook with each job's `Submitted`, `Progress`, `Finished`
//! and `Failed` — the bar moves per job and shows the jobs' own progress reports too,
//! and there is no task list to wrap. The bar is drawn on stderr when it is a terminal.
//!
//! ```text
//! cargo run --example batch_progress
//! ```

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use common::{check, Server};
use indicatif::{ProgressBar, ProgressStyle};
use jobwire::BatchEvent;
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> common::Result {
    let server = Server::start().await?;
    let client = server.client()?;
    let steps = client.service("steps").await?;

    let inputs: Vec<Value> = (0..100)
        .map(|i| json!({"steps": 4, "interval_ms": 10 + i % 7 * 5}))
        .collect();
    let bar = ProgressBar::new(inputs.len() as u64).with_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} jobs, {msg} progress reports [{elapsed}]",
    )?);
    let reports = Arc::new(AtomicU64::new(0));
    let hook = {
        let (bar, reports) = (bar.clone(), reports.clone());
        move |event: &BatchEvent| match event {
            BatchEvent::Progress { .. } => {
                let n = reports.fetch_add(1, Ordering::Relaxed) + 1;
                bar.set_message(n.to_string());
            }
            BatchEvent::Finished { .. } | BatchEvent::Failed { .. } => bar.inc(1),
            _ => {}
        }
    };
    let report = steps
        .run_all(inputs)
        .concurrency(10)
        .on_event(hook)
        .collect::<Value>()
        .await;
    bar.finish();

    let summary = &report.summary;
    let reports = reports.load(Ordering::Relaxed);
    println!(
        "{} succeeded, {} failed {:?}; {reports} progress reports",
        summary.succeeded, summary.failed, summary.by_kind
    );
    for (index, outcome) in report.results.iter().take(3) {
        match outcome {
            Ok(output) => println!("input {index}: {}", output["text"]),
            Err(e) => println!("input {index}: {e}"),
        }
    }
    check(
        summary.succeeded == 100 && bar.position() == 100 && reports == 400,
        format!(
            "the bar reached {}/100 from the hook, which also heard all {reports} of 400 progress reports",
            bar.position()
        ),
    )?;
    server.stop().await;
    Ok(())
}
