//! Quickstart (async): a service by name and by id, its input schema, ten typed jobs
//! submitted at once and awaited together.
//!
//! Patterns: S0.1, S0.3
//!
//! Python (IVCAP): gets a service, builds a request from its request model, submits a
//! job and awaits its result; then runs ten jobs with `asyncio.gather` and waits for all.
//!
//! Rust: the request model is your own `serde` struct, checked against the service's
//! JSON Schema before it is sent (feature `validation`), and the result deserializes
//! into another; `try_join_all` is `gather`, and the first error ends it.
//!
//! ```text
//! cargo run --example quickstart
//! ```

mod common;

use std::time::{Duration, Instant};

use common::{check, Server};
use futures_util::future::try_join_all;
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct Sleep {
    duration_seconds: f64,
}

#[derive(Deserialize, Debug)]
struct Slept {
    slept: f64,
}

#[tokio::main]
async fn main() -> common::Result {
    let server = Server::start().await?;
    let client = server.client()?;

    // By name, then by the id the server gave it: the same service.
    let sleep = client.service("sleep").await?;
    let by_id = client.service(sleep.id()).await?;
    println!("service {} has id {}", sleep.name(), sleep.id());
    println!("its input schema: {}", sleep.input_schema());
    check(
        by_id.name() == "sleep"
            && sleep.input_schema()["properties"]["duration_seconds"].is_object(),
        "the service read by id is the one read by name, and its schema describes duration_seconds",
    )?;

    // One job, typed both ways.
    let mut job = sleep
        .submit(&Sleep {
            duration_seconds: 0.2,
        })
        .await?;
    let one: Slept = job.result().await?;
    println!("job {} slept {}s", job.id(), one.slept);

    // Ten one-second jobs: submitted at once, awaited at once.
    let started = Instant::now();
    let sleep = &sleep;
    let results: Vec<Slept> = try_join_all((0..10).map(|_| async move {
        let mut job = sleep
            .submit(&Sleep {
                duration_seconds: 1.0,
            })
            .await?;
        let out: Slept = job.result().await?;
        println!("  {} slept {:.1}s", job.id(), out.slept);
        Ok::<_, jobwire::Error>(out)
    }))
    .await?;
    let wall = started.elapsed();
    let sum: f64 = results.iter().map(|r| r.slept).sum();
    check(
        results.len() == 10 && wall < Duration::from_secs(3),
        format!(
            "10 one-second jobs took {:.2}s together (one after another: {sum:.0}s)",
            wall.as_secs_f64()
        ),
    )?;
    server.stop().await;
    Ok(())
}
