//! Timeouts: a call that gives up in time with `Error::Timeout`, what becomes of the
//! job it was waiting for, and a fallback answer when the fresh one is late.
//!
//! Patterns: S2.8, S4.7
//!
//! Python (vecu, Infrahub, inference.sh): `asyncio.wait_for(call, timeout=5.0)`, catching
//! `asyncio.TimeoutError` to print, return `None`, or fall back to cached data (and
//! `None` when there is none).
//!
//! Rust: `client.within(d)` (or `RunOptions::timeout`) puts one deadline on everything a
//! call does — submit, retries, the wait — and ends it with `Error::Timeout`, a kind
//! like any other to `match`. `tokio::time::timeout` works as `wait_for` does. Either way
//! only the waiting stops: the job runs on at the server until it is cancelled, which
//! this shows and then does.
//!
//! ```text
//! cargo run --example timeouts
//! ```

mod common;

use std::time::{Duration, Instant};

use common::{check, Server};
use jobwire::{Client, Error, JobStatus, RunOptions};
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_millis(300);

/// A fresh answer within `limit`; if it is late, the last one that succeeded for this
/// VIN; `None` when there is none.
async fn check_vin(
    client: &Client,
    vin: &str,
    seconds: f64,
    limit: Duration,
) -> Result<Option<Value>, Error> {
    let options = RunOptions::default().label("vin", vin).timeout(limit);
    match client
        .run_with("sleep", &json!({"duration_seconds": seconds}), options)
        .await
    {
        Ok(fresh) => Ok(Some(fresh)),
        Err(Error::Timeout { .. }) => {
            println!("  timeout for {vin}, trying the last answer");
            let last = client
                .jobs()
                .label("vin", vin)
                .status(JobStatus::Succeeded)
                .limit(1)
                .page()
                .await?;
            Ok(last.items.into_iter().next().and_then(|job| job.output))
        }
        Err(e) => Err(e),
    }
}

#[tokio::main]
async fn main() -> common::Result {
    let server = Server::start().await?;
    let client = server.client()?;
    let slow = json!({"duration_seconds": 5});

    // The SDK's deadline.
    let started = Instant::now();
    let ran = client.within(LIMIT).run::<_, Value>("sleep", &slow).await;
    let took = started.elapsed();
    println!(
        "within(300ms): {:?} after {:.0} ms",
        ran.as_ref().map_err(|e| e.to_string()),
        took.as_secs_f64() * 1000.0
    );
    check(
        matches!(ran, Err(Error::Timeout { .. })) && took >= LIMIT && took < LIMIT * 2,
        "a 5 s job awaited within 300 ms ended in Error::Timeout at 300 ms",
    )?;

    // The shape of `asyncio.wait_for`.
    let started = Instant::now();
    let ran = tokio::time::timeout(LIMIT, client.run::<_, Value>("sleep", &slow)).await;
    let took = started.elapsed();
    check(
        ran.is_err() && took < LIMIT * 2,
        format!(
            "tokio::time::timeout gave up after {:.0} ms too",
            took.as_secs_f64() * 1000.0
        ),
    )?;

    // The job a timed-out wait leaves behind runs on, until cancelled.
    let mut job = client.submit("sleep", &slow).await?;
    let waited = job.wait_for(LIMIT).await.map(|_| ());
    let after_timeout = job.refresh().await?.status.clone();
    client.cancel(job.id()).await?;
    let after_cancel = job.refresh().await?.status.clone();
    println!(
        "job {}: {after_timeout} after the timeout, {after_cancel} after cancel()",
        job.id()
    );
    check(
        matches!(waited, Err(Error::Timeout { .. }))
            && after_timeout == JobStatus::Running
            && after_cancel == JobStatus::Cancelled,
        "the timed-out job was still running, and cancel() stopped it",
    )?;

    // A fallback on timeout.
    let run = common::run_id();
    let (known, unknown) = (format!("{run}-known"), format!("{run}-unknown"));
    let fresh = check_vin(&client, &known, 0.05, Duration::from_secs(5)).await?;
    println!("  {known}: fresh {fresh:?}");
    let late = check_vin(&client, &known, 5.0, LIMIT).await?;
    println!("  {known}: {late:?}");
    let nothing = check_vin(&client, &unknown, 5.0, LIMIT).await?;
    println!("  {unknown}: {nothing:?}");
    check(
        fresh.is_some() && late == fresh && nothing.is_none(),
        "a late answer fell back to the last good one, or to None when there was none",
    )?;
    // The late jobs are still running: cancel them.
    for vin in [&known, &unknown] {
        for job in client
            .jobs()
            .label("vin", vin)
            .status(JobStatus::Running)
            .page()
            .await?
            .items
        {
            client.cancel(&job.id).await?;
        }
    }
    server.stop().await;
    Ok(())
}
