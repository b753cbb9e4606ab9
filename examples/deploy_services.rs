//! Registering services without waiting on each in turn, get-if-exists by name, and a
//! job's log lines followed while it runs.
//!
//! Patterns: S1.1, S1.2
//!
//! Python (Kubetorch): deploys three functions at once with `asyncio.gather` over
//! `.to_async(compute)`, and deploys with `name=…, get_if_exists=True, stream_logs=True`.
//!
//! Rust: a service here is a program the server runs per job (stdin the input, stdout
//! the output, stderr lines its log), registered over the API; `tokio::try_join!`
//! registers three at once. `create_or_get_service` is get-if-exists: a name already
//! taken — even by a racing registration — answers the existing service, where
//! `create_service` answers `Error::Conflict`. Logs are the job's event stream, read
//! as they come rather than printed by a flag.
//!
//! Needs a server that allows commands (`jobwire serve --allow-commands` for
//! `JOBWIRE_URL`; the embedded one does).
//!
//! ```text
//! cargo run --example deploy_services
//! ```

mod common;

use std::time::{Duration, Instant};

use common::{check, Server};
use futures_util::StreamExt;
use jobwire::{CommandSpec, Error, EventKind, ServiceSpec};
use jobwire_server::ServerConfig;
use serde_json::{json, Value};

/// A shell script as a service: the server runs it per job.
fn script(name: &str, script: &str) -> ServiceSpec {
    ServiceSpec::command(
        name,
        CommandSpec::new("sh")
            .arg("-c")
            .arg(script)
            .env("PATH", "/usr/bin:/bin")
            .timeout(Duration::from_secs(30)),
    )
}

#[tokio::main]
async fn main() -> common::Result {
    let server = Server::start_with(ServerConfig::new().allow_commands(true)).await?;
    let client = server.client()?;
    let suffix = common::run_id().replace('-', "_");

    let prepare = script(&format!("prepare_{suffix}"), r#"echo '{"rows": 1000}'"#);
    let train = script(
        &format!("train_{suffix}"),
        // A log line per epoch on stderr, the output on stdout.
        r#"for epoch in 1 2 3 4; do echo "epoch $epoch: loss 0.$((5 - epoch))" >&2; sleep 0.3; done; echo '{"loss": 0.1}'"#,
    );
    let evaluate = script(
        &format!("evaluate_{suffix}"),
        r#"echo '{"accuracy": 0.95}'"#,
    );

    // Three at once.
    let (prepare_svc, train_svc, evaluate_svc) = tokio::try_join!(
        client.create_or_get_service(&prepare),
        client.create_or_get_service(&train),
        client.create_or_get_service(&evaluate),
    )?;
    for svc in [&prepare_svc, &train_svc, &evaluate_svc] {
        println!("registered {} as {}", svc.name(), svc.id());
    }

    // Get-if-exists: two more registrations of a taken name, racing, answer the same
    // service; a plain create is a conflict.
    let (again, and_again) = tokio::try_join!(
        client.create_or_get_service(&train),
        client.create_or_get_service(&train),
    )?;
    let conflict = client.create_service(&train).await;
    check(
        again.id() == train_svc.id() && and_again.id() == train_svc.id(),
        format!(
            "create_or_get_service answered the existing {}",
            train_svc.id()
        ),
    )?;
    check(
        matches!(conflict, Err(Error::Conflict { .. })),
        "create_service on a taken name is Error::Conflict",
    )?;

    // Logs followed while the job runs.
    let started = Instant::now();
    let job = train_svc.submit(&json!({"epochs": 4})).await?;
    let mut events = job.events();
    let mut log_times = Vec::new();
    let mut output = Value::Null;
    while let Some(event) = events.next().await {
        match event?.kind {
            EventKind::Log(line) => {
                let at = started.elapsed();
                println!("  [{:>5.2}s] {line}", at.as_secs_f64());
                log_times.push(at);
            }
            EventKind::Done(done) => {
                println!(
                    "  [{:>5.2}s] done: {}",
                    started.elapsed().as_secs_f64(),
                    done.status
                );
                output = done.output.unwrap_or_default();
            }
            _ => {}
        }
    }
    let ended = started.elapsed();
    check(
        log_times.len() == 4 && log_times[0] + Duration::from_millis(600) < ended,
        format!(
            "4 log lines, the first {:.2}s before the job's end, as it ran",
            ended
                .saturating_sub(log_times.first().copied().unwrap_or(ended))
                .as_secs_f64()
        ),
    )?;
    check(
        output == json!({"loss": 0.1}),
        format!("train's output: {output}"),
    )?;

    let empty = json!({});
    let ran: Vec<Value> = futures_util::future::try_join_all(
        [&prepare_svc, &evaluate_svc].map(|svc| svc.run::<_, Value>(&empty)),
    )
    .await?;
    println!("prepare and evaluate answered {}", Value::from(ran));

    for svc in [prepare_svc, train_svc, evaluate_svc] {
        svc.delete().await?;
    }
    server.stop().await;
    Ok(())
}
