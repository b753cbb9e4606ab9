//! A background task that watches a job list on a timer while the program does other
//! work, stopped on request between two reads — not in the middle of one — and
//! handing back what it saw.
//!
//! Patterns: S2.5
//!
//! Python (vecu): `asyncio.create_task` of a `while True:` loop that lists pending items,
//! processes them and sleeps 60 s; at shutdown `task.cancel()`, then `await task`,
//! catching `CancelledError` to clean up.
//!
//! Rust: the stop is a value, not an exception: a `tokio::sync::watch` channel is the
//! cancellation token, and `tokio::select!` waits for the next tick *or* the stop, so the
//! task ends at once even in a long sleep, runs its cleanup as ordinary code after the
//! loop, and returns its result through its `JoinHandle`. (`JoinHandle::abort()` is
//! `task.cancel()`: it drops the task at its next `.await`, cleanup only in `Drop`.)
//!
//! ```text
//! cargo run --example background_watcher
//! ```

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{check, Server};
use jobwire::{Client, Error, JobStatus, SubmitOptions};
use serde_json::json;
use tokio::sync::watch;

const TICK: Duration = Duration::from_millis(500);

/// What the watcher saw: each job's id and the last status it read.
type Seen = BTreeMap<String, JobStatus>;

/// Reads the jobs labelled `run` every `TICK` until `stop` says so; then cleans up and
/// answers what it saw.
async fn watch_jobs(
    client: Client,
    run: String,
    mut stop: watch::Receiver<bool>,
) -> Result<Seen, Error> {
    let mut seen = Seen::new();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = tick.tick() => {
                // One page is enough here; `.items()` would walk them all.
                let page = client.jobs().label("run", &run).limit(50).page().await;
                match page {
                    Ok(page) => {
                        for job in page.items {
                            if seen.get(&job.id) != Some(&job.status) {
                                println!("  watcher: {} is {}", job.id, job.status);
                            }
                            seen.insert(job.id, job.status);
                        }
                    }
                    // A failed read is reported and retried on the next tick.
                    Err(e) => println!("  watcher: cannot list jobs: {e}"),
                }
            }
        }
    }
    println!("  watcher: stopped, cleaning up ({} jobs seen)", seen.len());
    client.close().await;
    Ok(seen)
}

#[tokio::main]
async fn main() -> common::Result {
    let server = Server::start().await?;
    let client = server.client()?;
    let run = common::run_id();

    let (stop, stopped) = watch::channel(false);
    // A client of its own, so that closing it at cleanup leaves ours open.
    let watcher = tokio::spawn(watch_jobs(server.client()?, run.clone(), stopped));

    // Other work: five jobs, which the watcher sees come and go.
    let mut jobs = Vec::new();
    for seconds in [0.2, 0.4, 0.6, 0.8, 1.0] {
        let labelled = SubmitOptions::default().label("run", &run);
        jobs.push(
            client
                .submit_with("sleep", &json!({"duration_seconds": seconds}), labelled)
                .await?,
        );
    }
    for job in &mut jobs {
        job.wait().await?;
    }
    // Let it read the end of the last one, then stop it in the middle of its sleep.
    tokio::time::sleep(TICK + TICK / 2).await;
    let asked = Instant::now();
    let _ = stop.send(true);
    let seen = watcher.await??;
    let took = asked.elapsed();

    check(
        seen.len() == 5 && seen.values().all(|s| *s == JobStatus::Succeeded),
        "the watcher saw all five jobs through to succeeded",
    )?;
    check(
        took < Duration::from_millis(100),
        format!(
            "it stopped {:.1} ms after being asked, not at its next tick ({} ms)",
            took.as_secs_f64() * 1000.0,
            TICK.as_millis()
        ),
    )?;
    server.stop().await;
    Ok(())
}
