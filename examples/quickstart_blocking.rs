//! Quickstart (blocking, no async runtime anywhere): a service by name and by id, its
//! input schema, ten typed jobs submitted at once and waited for.
//!
//! Patterns: S0.1, S0.3, S3.10
//!
//! Python (IVCAP, Infrahub): the same calls without `_async` (`svc.request_job(req)`,
//! `job.result`), or a separate synchronous client for code that has no event loop.
//!
//! Rust: `jobwire_blocking` has the same names as `jobwire` without `.await`, and no
//! tokio under it. Ten jobs need no threads here: a submit does not wait, so all ten run
//! on the server while this thread waits for each in turn.
//!
//! ```text
//! cargo run --example quickstart_blocking
//! ```

mod common;

use std::time::{Duration, Instant};

use common::{check, BlockingServer};
use serde::{Deserialize, Serialize};

#[derive(Serialize)]
struct Sleep {
    duration_seconds: f64,
}

#[derive(Deserialize, Debug)]
struct Slept {
    slept: f64,
}

fn main() -> common::Result {
    let server = BlockingServer::start()?;
    let client = server.client()?;

    let sleep = client.service("sleep")?;
    let by_id = client.service(sleep.id())?;
    println!("service {} has id {}", sleep.name(), sleep.id());
    println!("its input schema: {}", sleep.input_schema());
    check(
        by_id.name() == "sleep"
            && sleep.input_schema()["properties"]["duration_seconds"].is_object(),
        "the service read by id is the one read by name, and its schema describes duration_seconds",
    )?;

    let mut job = sleep.submit(&Sleep {
        duration_seconds: 0.2,
    })?;
    let one: Slept = job.result()?;
    println!("job {} slept {}s", job.id(), one.slept);

    let started = Instant::now();
    let mut jobs = (0..10)
        .map(|_| {
            sleep.submit(&Sleep {
                duration_seconds: 1.0,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut sum = 0.0;
    for job in &mut jobs {
        let out: Slept = job.result()?;
        println!("  {} slept {:.1}s", job.id(), out.slept);
        sum += out.slept;
    }
    let wall = started.elapsed();
    check(
        jobs.len() == 10 && wall < Duration::from_secs(3),
        format!(
            "10 one-second jobs took {:.2}s together (one after another: {sum:.0}s)",
            wall.as_secs_f64()
        ),
    )?;
    server.stop();
    Ok(())
}
