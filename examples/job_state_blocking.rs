//! A job's state without waiting on it, from blocking code: submit, poll
//! `is_finished`, read the cached status; then the same job length awaited with `wait`.
//!
//! Patterns: S0.2
//!
//! Python (IVCAP): the synchronous twin of the polling loop — `while not job.finished:
//! time.sleep(5)`, then `job.status(refresh=False)`.
//!
//! Rust: `jobwire_blocking` has the same three calls; its `wait()` blocks this thread
//! until the job's `done` event arrives on the client's one event stream (read by one
//! thread of its own), so it neither polls nor needs a runtime.
//!
//! ```text
//! cargo run --example job_state_blocking
//! ```

mod common;

use std::time::{Duration, Instant};

use common::{check, BlockingServer};
use serde_json::json;

const JOB: Duration = Duration::from_secs(1);
const TICK: Duration = Duration::from_millis(300);

fn main() -> common::Result {
    let server = BlockingServer::start()?;
    let client = server.client()?;
    let sleep = client.service("sleep")?;
    let input = json!({"duration_seconds": JOB.as_secs_f64()});

    let started = Instant::now();
    let mut job = sleep.submit(&input)?;
    println!("submitted {}: {}", job.id(), job.status());
    let mut polls = 0;
    while !job.is_finished()? {
        polls += 1;
        std::thread::sleep(TICK);
    }
    let polled = started.elapsed();
    println!(
        "finished after {polls} polls, seen {:.0} ms after the job's {} ms: {}",
        polled.saturating_sub(JOB).as_secs_f64() * 1000.0,
        JOB.as_millis(),
        job.status()
    );
    check(
        job.status() == &jobwire_blocking::JobStatus::Succeeded && polls >= 2,
        "the loop polled until the job succeeded, and status() answers from the cache",
    )?;
    let refreshed = job.refresh()?;
    println!("refresh() reads it again: {}", refreshed.status);

    let started = Instant::now();
    let mut job = sleep.submit(&input)?;
    job.wait()?;
    let late = started.elapsed().saturating_sub(JOB);
    println!(
        "wait() saw {} end {:.0} ms after its {} ms, with no polling",
        job.id(),
        late.as_secs_f64() * 1000.0,
        JOB.as_millis()
    );
    check(
        job.status() == &jobwire_blocking::JobStatus::Succeeded
            && late < Duration::from_millis(150),
        format!(
            "wait() noticed the end within 150 ms ({:.0} ms; the loop: {:.0} ms)",
            late.as_secs_f64() * 1000.0,
            polled.saturating_sub(JOB).as_secs_f64() * 1000.0
        ),
    )?;
    server.stop();
    Ok(())
}
