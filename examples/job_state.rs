//! A job's state without waiting on it: submit, poll `is_finished`, read the cached
//! status; then the same job length awaited with `wait`, which does not poll.
//!
//! Patterns: S0.2
//!
//! Python (IVCAP): submits with `max_wait_time=None`, loops on `await job.finished_async()`
//! with an `asyncio.sleep` between, then reads `job.status_async(refresh=False)`.
//!
//! Rust: the same three calls exist (`is_finished`, `refresh`, and `status()`, which is
//! the cached state and sends nothing), but the loop is rarely what you want: `wait()`
//! is woken by the job's `done` event on one shared stream, so it notices the end within
//! milliseconds and sends no request per tick.
//!
//! ```text
//! cargo run --example job_state
//! ```

mod common;

use std::time::{Duration, Instant};

use common::{check, Server};
use serde_json::json;

const JOB: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_millis(300);

#[tokio::main]
async fn main() -> common::Result {
    let server = Server::start().await?;
    let client = server.client()?;
    let sleep = client.service("sleep").await?;
    let input = json!({"duration_seconds": JOB.as_secs_f64()});

    // The polling loop of the guide.
    let started = Instant::now();
    let mut job = sleep.submit(&input).await?;
    println!("submitted {}: {}", job.id(), job.status());
    let mut polls = 0;
    while !job.is_finished().await? {
        polls += 1;
        tokio::time::sleep(TICK).await;
    }
    let polled = started.elapsed();
    // Cached: what the last answer said, no request.
    println!(
        "finished after {polls} polls, seen {:.0} ms after the job's {} ms: {}",
        polled.saturating_sub(JOB).as_secs_f64() * 1000.0,
        JOB.as_millis(),
        job.status()
    );
    check(
        job.status() == &jobwire::JobStatus::Succeeded && polls >= 2,
        "the loop polled until the job succeeded, and status() answers from the cache",
    )?;
    let refreshed = job.refresh().await?;
    println!("refresh() reads it again: {}", refreshed.status);

    // The same job length, awaited.
    let started = Instant::now();
    let mut job = sleep.submit(&input).await?;
    job.wait().await?;
    let waited = started.elapsed();
    let late = waited.saturating_sub(JOB);
    println!(
        "wait() saw {} end {:.0} ms after its {} ms, with no polling",
        job.id(),
        late.as_secs_f64() * 1000.0,
        JOB.as_millis()
    );
    check(
        job.status() == &jobwire::JobStatus::Succeeded && late < Duration::from_millis(150),
        format!(
            "wait() noticed the end within 150 ms ({:.0} ms; the loop: {:.0} ms)",
            late.as_secs_f64() * 1000.0,
            polled.saturating_sub(JOB).as_secs_f64() * 1000.0
        ),
    )?;
    server.stop().await;
    Ok(())
}
