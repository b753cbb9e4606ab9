//! Figure 7, one tenant's flood against another's reads: tenant B reads one of its jobs
//! (`GET /v1/jobs/{id}` through the async facade, `--readers K` callers in a closed
//! loop) for `--seconds S`, first on a quiet server, then while tenant A (the token in
//! `JOBWIRE_BENCH_FLOOD_TOKEN`) has submitted `--flood N` CPU-bound `digest` jobs of
//! `--rounds R` each. Prints B's read latency, p50 and p99, in both phases, and how many
//! of A's jobs were still unfinished when the flooded phase ended (the flood must outlast
//! the measurement for the figure to mean anything).

use std::sync::Arc;
use std::time::{Duration, Instant};

use jobwire_bench::{arg, emit, ms, percentile, server_from_env};
use serde_json::json;

/// Reads `id` with `readers` callers for `seconds`; every latency seen.
async fn read_for(
    client: &jobwire::Client,
    id: &str,
    readers: usize,
    seconds: f64,
) -> Vec<Duration> {
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for _ in 0..readers {
        let client = client.clone();
        let id = id.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            while Instant::now() < until {
                let started = Instant::now();
                if client.get_job(&id).await.is_ok() {
                    seen.push(started.elapsed());
                }
            }
            seen
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap_or_default());
    }
    all
}

fn summary(latencies: &mut [Duration]) -> serde_json::Value {
    json!({
        "reads": latencies.len(),
        "p50_ms": ms(percentile(latencies, 0.50)),
        "p99_ms": ms(percentile(latencies, 0.99)),
    })
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let (url, token) = server_from_env()?;
    let flood_token = std::env::var("JOBWIRE_BENCH_FLOOD_TOKEN")
        .map_err(|_| "set JOBWIRE_BENCH_FLOOD_TOKEN (tenant A's token)")?;
    let seconds: f64 = arg("--seconds", 5.0);
    let readers: usize = arg("--readers", 4);
    let flood: usize = arg("--flood", 2_000);
    let rounds: u32 = arg("--rounds", 100_000);
    let build = |token: &str| {
        jobwire::Client::builder()
            .base_url(url.clone())
            .token(token.to_owned())
            .build()
            .map_err(|e| e.to_string())
    };
    let reader = build(&token)?;
    let flooder = Arc::new(build(&flood_token)?);
    let mine = reader
        .submit("echo", &json!({"mine": true}))
        .await
        .map_err(|e| e.to_string())?;

    // Warm the connections, then the quiet phase.
    read_for(&reader, mine.id(), readers, 0.5).await;
    let mut quiet = read_for(&reader, mine.id(), readers, seconds).await;

    // Tenant A submits its flood (without waiting for the jobs), then B reads again.
    let submitted = futures_util::future::join_all((0..flood).map(|i| {
        let flooder = flooder.clone();
        async move {
            flooder
                .submit(
                    "digest",
                    &json!({"data": format!("flood {i}"), "rounds": rounds}),
                )
                .await
                .is_ok()
        }
    }))
    .await
    .into_iter()
    .filter(|ok| *ok)
    .count();
    let mut flooded = read_for(&reader, mine.id(), readers, seconds).await;
    let unfinished = flooder
        .jobs()
        .status(jobwire::JobStatus::Running)
        .limit(1000)
        .page()
        .await
        .map(|page| page.items.len())
        .unwrap_or(0);
    emit(json!({
        "quiet": summary(&mut quiet),
        "flooded": summary(&mut flooded),
        "flood_submitted": submitted,
        "flood_unfinished_at_end": unfinished,
    }));
    // Leave nothing running for the next measurement's server (it is stopped anyway).
    Ok(())
}
