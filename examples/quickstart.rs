//! Quickstart (async): look up the `sleep` service by name, submit 10 jobs at once,
//! await them all, print each result and the wall time — about the longest job, not
//! the sum. Answers seed patterns S0.1 and S0.3.
//!
//! Runs against `JOBWIRE_URL` / `JOBWIRE_TOKEN` when set, else against a reference
//! server spawned in this process on 127.0.0.1:0:
//!
//! ```text
//! cargo run --example quickstart
//! ```

use std::time::Instant;

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
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Use the configured server, or start one here.
    let (client, server) = match std::env::var("JOBWIRE_URL") {
        Ok(_) => (jobwire::Client::from_env()?, None),
        Err(_) => {
            let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
            let client = jobwire::Client::builder()
                .base_url(server.url())
                .token(server.token())
                .build()?;
            println!("spawned a reference server at {}", server.url());
            (client, Some(server))
        }
    };

    let sleep = client.service("sleep").await?;
    println!(
        "service {} ({}), input schema: {}",
        sleep.name(),
        sleep.id(),
        sleep.input_schema()
    );

    let started = Instant::now();
    let durations: Vec<f64> = (1..=10).map(|i| i as f64 / 10.0).collect();
    // Submit all ten at once, then await all ten at once.
    let sleep = &sleep;
    let jobs = try_join_all(durations.iter().map(|&d| async move {
        sleep
            .submit(&Sleep {
                duration_seconds: d,
            })
            .await
    }))
    .await?;
    let results: Vec<Slept> = try_join_all(jobs.into_iter().map(|mut job| async move {
        let out: Slept = job.result().await?;
        println!("  {} -> slept {:.1}s", job.id(), out.slept);
        Ok::<_, jobwire::Error>(out)
    }))
    .await?;

    let wall = started.elapsed();
    let sum: f64 = results.iter().map(|r| r.slept).sum();
    let longest = durations.iter().cloned().fold(0.0, f64::max);
    println!(
        "{} jobs done in {:.2}s wall time (longest job {longest:.1}s, sum of all {sum:.1}s)",
        results.len(),
        wall.as_secs_f64()
    );
    if let Some(server) = server {
        server.shutdown().await;
    }
    Ok(())
}
