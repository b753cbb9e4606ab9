//! Some inputs fail, the rest carry on: every outcome kept beside its input, the
//! failures counted by kind, successes and failures split apart.
//!
//! Patterns: S2.2, S3.5, S4.10
//!
//! Python (vecu, Infrahub, inference.sh): `asyncio.gather(*tasks, return_exceptions=True)`
//! then `isinstance(result, Exception)` per item, or a `safe_process` wrapper returning
//! `{"success": …, "item": …, "error": …}`, counted into successes and failures.
//!
//! Rust: an error is a value already, so `join_all` over calls gives a
//! `Vec<Result<_, Error>>` with nothing to catch; the SDK's batch does the pairing and
//! the counting: `run_all(..).collect()` answers each input's index with its outcome, and
//! a summary with the failures by kind.
//!
//! ```text
//! cargo run --example partial_failure
//! ```

mod common;

use std::time::{Duration, Instant};

use common::{check, Server};
use futures_util::future::join_all;
use jobwire::Error;
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> common::Result {
    let server = Server::start().await?;
    let client = server.client()?;

    // Heterogeneous calls, some of which fail on the server: `gather(return_exceptions=True)`.
    let vins = [
        "9HGBH41JXMN999999",
        "INVALID_VIN",
        "1HGCM82633A123456",
        "ALSO_INVALID",
    ];
    let checks = vins.iter().map(|vin| {
        let client = &client;
        async move {
            if vin.starts_with(|c: char| c.is_ascii_digit()) {
                client
                    .run::<_, Value>("echo", &json!({"vin": vin, "releasable": true}))
                    .await
            } else {
                client
                    .run("fail", &json!({"message": format!("{vin} is not a VIN")}))
                    .await
            }
        }
    });
    let results: Vec<Result<Value, Error>> = join_all(checks).await;
    let mut failed = Vec::new();
    for (vin, result) in vins.iter().zip(&results) {
        match result {
            Ok(output) => println!("  {vin}: {output}"),
            Err(e) => {
                println!("  {vin}: error: {e}");
                failed.push(*vin);
            }
        }
    }
    check(
        failed == ["INVALID_VIN", "ALSO_INVALID"]
            && results
                .iter()
                .filter(|r| matches!(r, Err(Error::JobFailed { .. })))
                .count()
                == 2,
        "the two bad VINs failed as jobs, the other two answered",
    )?;

    // A batch of 20 where 3 inputs are bad: nothing stops, every outcome is kept.
    let mut inputs: Vec<Value> = (0..20).map(|_| json!({"duration_seconds": 0.5})).collect();
    inputs[4] = json!({"duration_seconds": "soon"});
    inputs[11] = json!({"duration_seconds": -1});
    inputs[17] = json!({"seconds": 1});
    let started = Instant::now();
    let report = client
        .service("sleep")
        .await?
        .run_all(inputs.clone())
        .concurrency(20)
        .collect::<Value>()
        .await;
    let wall = started.elapsed();
    let (successes, failures): (Vec<_>, Vec<_>) = report
        .results
        .iter()
        .partition(|(_, outcome)| outcome.is_ok());
    for (index, outcome) in &failures {
        if let Err(e) = outcome {
            println!("  input {index} {}: {e}", inputs[*index]);
        }
    }
    let summary = &report.summary;
    println!(
        "{} succeeded, {} failed, by kind {:?}, in {:.2}s",
        summary.succeeded,
        summary.failed,
        summary.by_kind,
        wall.as_secs_f64()
    );
    let failed_at: Vec<usize> = failures.iter().map(|(i, _)| *i).collect();
    check(
        successes.len() == 17 && failed_at == [4, 11, 17] && summary.by_kind.get("validation") == Some(&3),
        "17 succeeded; inputs 4, 11 and 17 failed, each paired with its index, counted as validation errors",
    )?;
    check(
        wall < Duration::from_secs(2),
        format!(
            "the 17 half-second jobs ran together ({:.2}s)",
            wall.as_secs_f64()
        ),
    )?;
    server.stop().await;
    Ok(())
}
