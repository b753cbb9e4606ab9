//! One client shared by a hundred tasks: create 100 jobs at once, read all 100 back by
//! id at once, wait for half and cancel the other half at once; then close the client.
//!
//! Patterns: S2.1, S3.1, S3.2, S3.3
//!
//! Python (vecu, Infrahub): one client in `async with … as client:`, reused for every
//! call, and `asyncio.gather` over `client.get(id=…)`, over `client.create(…)` with
//! `save()`, and over get-modify-`save()` of every object.
//!
//! Rust: a `Client` is cheap to clone — clones share one connection pool, one event
//! stream and one retry budget — so each task gets its own clone to own; `close()` ends
//! them all together (or just drop the last one). The "update" of a job is its cancel,
//! one request per job, straight by id.
//!
//! ```text
//! cargo run --example many_at_once
//! ```

mod common;

use std::time::{Duration, Instant};

use common::{check, Server};
use futures_util::future::try_join_all;
use jobwire::{Error, JobStatus};
use serde_json::json;
use tokio::task::JoinSet;

#[tokio::main]
async fn main() -> common::Result {
    let server = Server::start().await?;
    let client = server.client()?;

    // Create: 100 tasks, each with its own clone of the one client.
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for i in 0..100 {
        let client = client.clone();
        // Half short, half long enough to still run when cancelled.
        let seconds = if i % 2 == 0 { 1 } else { 60 };
        tasks.spawn(async move {
            let job = client
                .submit("sleep", &json!({"duration_seconds": seconds}))
                .await?;
            Ok::<_, Error>((seconds, job.id().to_owned()))
        });
    }
    let mut short = Vec::new();
    let mut long = Vec::new();
    while let Some(done) = tasks.join_next().await {
        let (seconds, id) = done??;
        if seconds == 1 {
            short.push(id)
        } else {
            long.push(id)
        }
    }
    println!(
        "created 100 jobs in {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );

    // Query: all 100 by id, at once.
    let read = Instant::now();
    let ids: Vec<&String> = short.iter().chain(&long).collect();
    let jobs = try_join_all(ids.iter().map(|id| client.get_job(id))).await?;
    let running = jobs
        .iter()
        .filter(|j| j.status() == &JobStatus::Running)
        .count();
    println!(
        "read 100 jobs back in {:.0} ms: {running} running",
        read.elapsed().as_secs_f64() * 1000.0
    );
    check(running == 100, "all 100 jobs were found by id, running")?;

    // The 50 one-second jobs, waited for at once.
    let finished = try_join_all(short.iter().map(|id| client.wait(id))).await?;
    let wall = started.elapsed();
    check(
        finished.iter().all(|j| j.status == JobStatus::Succeeded) && wall < Duration::from_secs(3),
        format!(
            "50 one-second jobs were done {:.2}s after the first submit (one after another: 50s)",
            wall.as_secs_f64()
        ),
    )?;

    // Update: cancel the 50 long ones, at once.
    let cancelled = try_join_all(long.iter().map(|id| client.cancel(id))).await?;
    let now = try_join_all(long.iter().map(|id| client.get_job(id))).await?;
    check(
        cancelled.iter().all(|j| j.status == JobStatus::Cancelled)
            && now.iter().all(|j| j.status() == &JobStatus::Cancelled),
        "the 50 long jobs are cancelled on the server",
    )?;

    // One close for every clone.
    client.close().await;
    check(
        matches!(client.health().await, Err(Error::Closed)),
        "after close(), every clone's calls answer Error::Closed",
    )?;
    server.stop().await;
    Ok(())
}
