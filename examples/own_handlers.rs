//! Your own services in an embedded server: one `async fn` handler (it runs on the event
//! loop) and one plain `fn` handler (it runs on the blocking pool), both reporting
//! progress, driven by the async client, which prints each event as it comes. Then a
//! program registered as a service over the API (the server allows commands).
//!
//! ```text
//! cargo run --example own_handlers
//! ```

use futures_util::StreamExt;
use jobwire::EventKind;
use jobwire_server::{ServerConfig, ServiceSpec};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // An async handler: a few steps with a pause each, reporting as it goes.
    let countdown = ServiceSpec::async_fn("countdown", |input, ctx| async move {
        let from = input["from"].as_u64().unwrap_or(3);
        for left in (1..=from).rev() {
            ctx.progress((from - left) as f64 / from as f64, format!("{left} to go"));
            ctx.log(format!("tick {left}"));
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        Ok(json!({ "liftoff": true }))
    })
    .description("Counts down from `from`, one tick per 100 ms.")
    .input_schema(json!({
        "type": "object",
        "properties": {"from": {"type": "integer", "minimum": 1, "maximum": 100}},
        "required": ["from"]
    }));
    // A blocking handler: CPU work in chunks, reporting progress, stopping if cancelled.
    let primes = ServiceSpec::blocking_fn("primes", |input, ctx| {
        let below = input["below"].as_u64().unwrap_or(100_000);
        let mut found = 0u64;
        for n in 2..below {
            if n % 20_000 == 0 {
                if ctx.is_cancelled() {
                    break;
                }
                ctx.progress(n as f64 / below as f64, format!("{found} primes so far"));
            }
            if (2..).take_while(|d| d * d <= n).all(|d| n % d != 0) {
                found += 1;
            }
        }
        Ok(json!({ "primes_below": below, "count": found }))
    })
    .description("Counts the primes below `below`, on the blocking pool.")
    .input_schema(json!({
        "type": "object",
        "properties": {"below": {"type": "integer", "minimum": 2, "maximum": 10000000}},
        "required": ["below"]
    }));

    let config = ServerConfig::new()
        .service(countdown)
        .service(primes)
        .allow_commands(true);
    let server = jobwire_server::spawn(config).await?;
    let client = jobwire::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .build()?;
    println!("embedded server at {}", server.url());

    for (service, input) in [
        ("countdown", json!({"from": 3})),
        ("primes", json!({"below": 100_000})),
    ] {
        let job = client.service(service).await?.submit(&input).await?;
        println!("{service}: submitted {}", job.id());
        let mut events = job.events();
        while let Some(event) = events.next().await {
            match event?.kind {
                EventKind::Status(status) => println!("  status   {status}"),
                EventKind::Progress { fraction, message } => {
                    println!("  progress {:>3.0}% {message}", fraction * 100.0)
                }
                EventKind::Log(line) => println!("  log      {line}"),
                EventKind::Output(chunk) => println!("  output   {chunk}"),
                EventKind::Done(job) => println!(
                    "  done     {} {}",
                    job.status,
                    job.output.unwrap_or_default()
                ),
                _ => {}
            }
        }
    }

    // A program as a service: its stdout is the output, `@progress` lines are progress.
    let shout = jobwire::ServiceSpec::command(
        "shout",
        jobwire::CommandSpec::new("sh")
            .arg("-c")
            .arg("echo '@progress 0.5 shouting' ; tr a-z A-Z")
            .env("PATH", "/usr/bin:/bin"),
    );
    let shout = client.create_or_get_service(&shout).await?;
    let out: serde_json::Value = shout.run(&json!({"say": "hello"})).await?;
    println!("shout ({}): {out}", shout.id());
    shout.delete().await?;

    server.shutdown().await;
    Ok(())
}
