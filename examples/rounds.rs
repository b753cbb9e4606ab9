//! 100 jobs in rounds of 20, each round at once, a pause between rounds, progress
//! printed per round.
//!
//! Patterns: S3.4
//!
//! Python (Infrahub): slices the items into batches of `batch_size`, `gather`s each
//! batch, prints "Processed batch N", and `asyncio.sleep(0.5)` between batches.
//!
//! Rust: `chunks(20)` and one `run_all(chunk).collect()` per round, which keeps every
//! outcome with its index; `tokio::time::sleep` pauses. When the pause is only there to
//! spare the server, `run_all(all).concurrency(20)` (no gaps, never more than 20) or the
//! client's `.rate_limit(per_second)` says it better.
//!
//! ```text
//! cargo run --example rounds
//! ```

mod common;

use std::time::{Duration, Instant};

use common::{check, Server};
use serde_json::{json, Value};

const ROUND: usize = 20;
const PAUSE: Duration = Duration::from_millis(300);

#[tokio::main]
async fn main() -> common::Result {
    let server = Server::start().await?;
    let client = server.client()?;
    let sleep = client.service("sleep").await?;
    let items: Vec<Value> = (0..100).map(|_| json!({"duration_seconds": 0.2})).collect();

    let started = Instant::now();
    let mut done = 0;
    let mut slowest_round = Duration::ZERO;
    for (round, chunk) in items.chunks(ROUND).enumerate() {
        if round > 0 {
            tokio::time::sleep(PAUSE).await;
        }
        let round_started = Instant::now();
        let report = sleep
            .run_all(chunk)
            .concurrency(ROUND)
            .collect::<Value>()
            .await;
        let took = round_started.elapsed();
        slowest_round = slowest_round.max(took);
        done += report.summary.succeeded;
        println!(
            "round {}: {} ok, {} failed in {:.2}s ({done}/{} done)",
            round + 1,
            report.summary.succeeded,
            report.summary.failed,
            took.as_secs_f64(),
            items.len()
        );
    }
    let wall = started.elapsed();
    check(
        done == 100 && slowest_round < Duration::from_secs(1),
        format!(
            "each round of 20 jobs of 0.2 s ran at once (slowest round {:.2}s; one by one: 4s)",
            slowest_round.as_secs_f64()
        ),
    )?;
    check(
        wall >= PAUSE * 4 + Duration::from_millis(200) * 5,
        format!("5 rounds and 4 pauses took {:.2}s", wall.as_secs_f64()),
    )?;
    server.stop().await;
    Ok(())
}
