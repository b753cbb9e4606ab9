//! Quickstart (blocking, no async runtime anywhere): look up the `sleep` service by
//! name, submit 10 jobs at once, wait for them all, print each result and the wall time
//! — about the longest job, not the sum, because the jobs run side by side on the
//! server while this thread waits on each in turn. Answers seed patterns S0.1, S0.3
//! and S3.10.
//!
//! Runs against `JOBWIRE_URL` / `JOBWIRE_TOKEN` when set, else against a reference
//! server started in this process on 127.0.0.1:0:
//!
//! ```text
//! cargo run --example quickstart_blocking
//! ```

use std::time::Instant;

use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct Sleep {
    duration_seconds: f64,
}

#[derive(Deserialize, Debug)]
struct Slept {
    slept: f64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (client, server) = match std::env::var("JOBWIRE_URL") {
        Ok(_) => (jobwire_blocking::Client::from_env()?, None),
        Err(_) => {
            let server =
                jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
            let client = jobwire_blocking::Client::builder()
                .base_url(server.url())
                .token(server.token())
                .build()?;
            println!("spawned a reference server at {}", server.url());
            (client, Some(server))
        }
    };

    let sleep = client.service("sleep")?;
    println!(
        "service {} ({}), input schema: {}",
        sleep.name(),
        sleep.id(),
        sleep.input_schema()
    );

    let started = Instant::now();
    let durations: Vec<f64> = (1..=10).map(|i| i as f64 / 10.0).collect();
    // Submitting does not wait, so all ten are running before the first wait begins.
    let mut jobs = durations
        .iter()
        .map(|&d| {
            sleep.submit(&Sleep {
                duration_seconds: d,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut sum = 0.0;
    for job in &mut jobs {
        let out: Slept = job.result()?;
        println!("  {} -> slept {:.1}s", job.id(), out.slept);
        sum += out.slept;
    }

    let longest = durations.iter().cloned().fold(0.0, f64::max);
    println!(
        "{} jobs done in {:.2}s wall time (longest job {longest:.1}s, sum of all {sum:.1}s)",
        jobs.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(server) = server {
        server.shutdown();
    }
    Ok(())
}
