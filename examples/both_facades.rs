//! One program, both facades: the same calls under the same names, blocking here and
//! async there, from one configuration.
//!
//! Patterns: S0.4, S1.3
//!
//! Python (IVCAP, Kubetorch): every operation has a synchronous name and an `_async`
//! twin, or one remote function is called blocking by default and as a coroutine with
//! `async_=True`, per call.
//!
//! Rust: two crates with the same names and arguments — `jobwire` (methods you
//! `.await`) and `jobwire_blocking` (the same methods, returning at once with the
//! answer) — built from one `ClientConfig`. A blocking call inside an async program goes
//! to `spawn_blocking`, so the event loop keeps running meanwhile; this checks it did.
//!
//! ```text
//! cargo run --example both_facades
//! ```

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{check, Server};
use serde_json::{json, Value};

/// The blocking half: plain functions, no `.await`, the names of the async half.
fn blocking_steps(
    client: &jobwire_blocking::Client,
    input: &Value,
) -> Result<Value, jobwire_blocking::Error> {
    let sleep = client.service("sleep")?;
    let mut job = sleep.submit(input)?;
    let output = job.result()?;
    println!("  blocking: job {} {}", job.id(), job.status());
    Ok(output)
}

#[tokio::main]
async fn main() -> common::Result {
    let server = Server::start().await?;
    let config = server.config();
    let async_client = jobwire::Client::from_config(config.clone())?;
    let blocking_client = jobwire_blocking::Client::from_config(config)?;
    let input = json!({"duration_seconds": 1.0});

    // Async: the same three calls, awaited.
    let sleep = async_client.service("sleep").await?;
    let mut job = sleep.submit(&input).await?;
    let async_output: Value = job.result().await?;
    println!("  async:    job {} {}", job.id(), job.status());

    // Blocking, from this async program: on the blocking pool, while a ticker shows the
    // event loop is free.
    let ticks = Arc::new(AtomicU32::new(0));
    let ticker = tokio::spawn({
        let ticks = ticks.clone();
        async move {
            let mut every = tokio::time::interval(Duration::from_millis(10));
            loop {
                every.tick().await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let started = Instant::now();
    let blocking_output = tokio::task::spawn_blocking({
        let input = input.clone();
        move || blocking_steps(&blocking_client, &input)
    })
    .await??;
    let took = started.elapsed();
    ticker.abort();
    let ticked = ticks.load(Ordering::Relaxed);

    check(
        async_output == blocking_output,
        format!("both facades answered the same: {async_output}"),
    )?;
    check(
        took >= Duration::from_secs(1) && ticked >= 50,
        format!(
            "the event loop ticked {ticked} times during the {:.2}s blocking call",
            took.as_secs_f64()
        ),
    )?;
    println!(
        "(the names side by side: the table \"Async and blocking side by side\" in README.md)"
    );
    server.stop().await;
    Ok(())
}
