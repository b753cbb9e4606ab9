//! Your own functions as services of an embedded server: an `async fn` (run on the event
//! loop) and a CPU-bound plain `fn` (run on the blocking pool), each reporting progress;
//! the `fn` burns a core while the `async fn` still answers in milliseconds; then both
//! looked up and run at once, end to end.
//!
//! Patterns: S1.6, S1.7
//!
//! Python (Kubetorch): the server runs `async def` functions on its event loop and
//! `def` functions on a thread pool, detected from the signature; the complete example
//! deploys a CPU-bound `train_model` and an I/O-bound `fetch_training_data` with
//! `gather` and runs both with `gather`.
//!
//! Rust: the choice is said, not detected — `ServiceSpec::async_fn` or
//! `ServiceSpec::blocking_fn` — and both get a `JobContext` for progress, log lines and
//! cancellation (the async one is dropped at its next `.await`, the blocking one reads
//! `ctx.is_cancelled()`). The services are compiled into this program, so it always
//! embeds its server; `JOBWIRE_URL` is not used.
//!
//! ```text
//! cargo run --example own_handlers
//! ```

mod common;

use std::time::{Duration, Instant};

use common::{check, Server};
use futures_util::StreamExt;
use jobwire::EventKind;
use jobwire_server::{JobContext, ServerConfig, ServiceSpec};
use serde_json::{json, Value};

/// Keeps a core busy for `d`: real CPU work, no sleeping.
fn burn(d: Duration) -> u64 {
    let end = Instant::now() + d;
    let mut x = 0u64;
    while Instant::now() < end {
        for i in 0..10_000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
        }
    }
    x
}

/// CPU-bound, so a plain `fn` on the blocking pool: 250 ms of work per epoch.
fn train(input: Value, ctx: JobContext) -> Result<Value, jobwire::JobError> {
    let epochs = input["epochs"].as_u64().unwrap_or(4);
    let mut state = 0;
    for epoch in 1..=epochs {
        if ctx.is_cancelled() {
            break;
        }
        state ^= burn(Duration::from_millis(250));
        ctx.progress(
            epoch as f64 / epochs as f64,
            format!("epoch {epoch} of {epochs}"),
        );
    }
    Ok(json!({"epochs": epochs, "loss": 0.123, "accuracy": 0.95, "state": state % 1000}))
}

fn services() -> ServerConfig {
    // I/O-bound, so an `async fn`: it waits without holding a thread.
    let fetch = ServiceSpec::async_fn("fetch_training_data", |input, ctx| async move {
        ctx.log(format!("fetching {}", input["url"]));
        tokio::time::sleep(Duration::from_millis(800)).await;
        ctx.progress(1.0, "fetched");
        Ok(json!({"rows": 1000, "from": input["url"]}))
    })
    .input_schema(json!({"type": "object", "required": ["url"]}));
    let ping = ServiceSpec::async_fn("ping", |_input, _ctx| async move { Ok(json!("pong")) });
    let train = ServiceSpec::blocking_fn("train_model", train).input_schema(json!({
        "type": "object",
        "properties": {"epochs": {"type": "integer", "minimum": 1, "maximum": 100}},
        "required": ["epochs"]
    }));
    ServerConfig::new()
        .service(fetch)
        .service(ping)
        .service(train)
}

/// Round trips of `ping` jobs, one after another, for `samples` of them.
async fn pings(client: &jobwire::Client, samples: usize) -> Result<Vec<Duration>, jobwire::Error> {
    let mut times = Vec::new();
    for _ in 0..samples {
        let started = Instant::now();
        let _: Value = client.run("ping", &json!({})).await?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok(times)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() -> common::Result {
    let server = Server::embedded(services()).await?;
    let client = server.client()?;

    // Neither starves the other: pings while the CPU-bound job runs.
    let idle = pings(&client, 10).await?;
    let job = client.submit("train_model", &json!({"epochs": 8})).await?;
    let mut events = job.events();
    // Once it reports its first epoch, it is surely burning.
    while let Some(event) = events.next().await {
        if let EventKind::Progress { message, .. } = event?.kind {
            println!("train_model: {message}");
            break;
        }
    }
    let busy = pings(&client, 20).await?;
    let mut job = job;
    let still_running = !job.is_finished().await?;
    let median = busy[busy.len() / 2];
    println!(
        "ping round trip, idle: median {}; while train_model burns a core: median {}, slowest {}",
        ms(idle[idle.len() / 2]),
        ms(median),
        ms(busy[busy.len() - 1])
    );
    check(
        still_running && median < Duration::from_millis(25),
        format!(
            "the async fn answered in {} (median) while the CPU-bound fn kept running",
            ms(median)
        ),
    )?;
    let trained: Value = job.result().await?;
    println!("train_model: {trained}");

    // The complete example: both services found at once, then run at once.
    let started = Instant::now();
    let (train_svc, fetch_svc) = tokio::try_join!(
        client.service("train_model"),
        client.service("fetch_training_data"),
    )?;
    let (epochs, dataset) = (
        json!({"epochs": 4}),
        json!({"url": "https://example.com/dataset"}),
    );
    let (model, data): (Value, Value) =
        tokio::try_join!(train_svc.run(&epochs), fetch_svc.run(&dataset))?;
    let both = started.elapsed();
    println!("model {model}\ndata {data}");
    check(
        both < Duration::from_millis(1600),
        format!(
            "a 1 s training and a 0.8 s fetch took {:.2}s together",
            both.as_secs_f64()
        ),
    )?;
    server.stop().await;
    Ok(())
}
