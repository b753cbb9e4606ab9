//! 200 `steps` jobs, 16 at a time, with a progress bar: `run_all` with an `on_event`
//! hook driving an indicatif bar, then the summary and the first few outputs, in input
//! order. Against an embedded server, so nothing needs to be running.
//!
//! ```text
//! cargo run --example batch_progress
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};
use jobwire::BatchEvent;
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    let client = jobwire::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .build()?;
    let steps = client.service("steps").await?;

    let inputs: Vec<Value> = (0..200)
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
        .concurrency(16)
        .on_event(hook)
        .collect::<Value>()
        .await;
    bar.finish();

    let summary = &report.summary;
    println!(
        "{} succeeded, {} failed {:?}; {} progress reports",
        summary.succeeded,
        summary.failed,
        summary.by_kind,
        reports.load(Ordering::Relaxed)
    );
    for (index, outcome) in report.results.iter().take(3) {
        match outcome {
            Ok(output) => println!("input {index}: {}", output["text"]),
            Err(e) => println!("input {index}: {e}"),
        }
    }
    server.shutdown().await;
    if summary.failed > 0 {
        return Err(format!("{} jobs failed", summary.failed).into());
    }
    Ok(())
}
