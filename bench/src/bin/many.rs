//! Figure 2, many jobs: `--jobs N` `echo` jobs with at most `--concurrency C` in flight,
//! each run as `client.run("echo", input)` does it (a submit that waits, then a wait if
//! the job is not done), through `jobwire` (tasks on a multi-threaded runtime) or
//! `jobwire-blocking` (C threads) — `--client jobwire|jobwire-blocking`. Prints the
//! makespan, client CPU per job (`getrusage`), p50/p99 of each job's submit-to-result
//! time, errors, and the process's peak resident memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use jobwire_bench::{arg, cpu_time, emit, ms, percentile, server_from_env, status_kib};
use serde_json::{json, Value};

/// Whether the job came back as sent.
fn checked(i: usize, out: Result<Value, jobwire_core::Error>) -> bool {
    matches!(out, Ok(v) if v == json!({"i": i}))
}

async fn with_async(url: &str, token: &str, jobs: usize, c: usize) -> (Vec<Duration>, usize) {
    let client = match jobwire::Client::builder()
        .base_url(url)
        .token(token)
        .build()
    {
        Ok(client) => client,
        Err(_) => return (Vec::new(), jobs),
    };
    let results: Vec<(Duration, bool)> = futures_util::stream::iter(0..jobs)
        .map(|i| {
            let client = client.clone();
            async move {
                let started = Instant::now();
                let out = client.run::<_, Value>("echo", &json!({ "i": i })).await;
                (started.elapsed(), checked(i, out))
            }
        })
        .buffer_unordered(c)
        .collect()
        .await;
    let errors = results.iter().filter(|(_, ok)| !ok).count();
    (results.into_iter().map(|(d, _)| d).collect(), errors)
}

fn with_threads(url: &str, token: &str, jobs: usize, c: usize) -> (Vec<Duration>, usize) {
    let client = match jobwire_blocking::Client::builder()
        .base_url(url)
        .token(token)
        .build()
    {
        Ok(client) => client,
        Err(_) => return (Vec::new(), jobs),
    };
    let next = AtomicUsize::new(0);
    let errors = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::with_capacity(jobs));
    std::thread::scope(|scope| {
        for _ in 0..c {
            scope.spawn(|| {
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= jobs {
                        break;
                    }
                    let started = Instant::now();
                    let out = client.run::<_, Value>("echo", &json!({ "i": i }));
                    mine.push(started.elapsed());
                    if !checked(i, out) {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if let Ok(mut all) = latencies.lock() {
                    all.extend(mine);
                }
            });
        }
    });
    let latencies = latencies.into_inner().unwrap_or_default();
    (latencies, errors.into_inner())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, token) = server_from_env()?;
    let client: String = arg("--client", "jobwire".to_owned());
    let jobs: usize = arg("--jobs", 10_000);
    let concurrency: usize = arg("--concurrency", 64);
    let runtime = tokio::runtime::Runtime::new()?;
    // Warm-up (connections, allocator): not counted.
    let warm = |n| match client.as_str() {
        "jobwire" => runtime.block_on(with_async(&url, &token, n, concurrency)),
        _ => with_threads(&url, &token, n, concurrency),
    };
    warm(50);
    let (cpu, wall) = (cpu_time(), Instant::now());
    let (mut latencies, errors) = warm(jobs);
    let (cpu, makespan) = (cpu_time() - cpu, wall.elapsed());
    emit(json!({
        "figure": 2, "client": client, "jobs": jobs, "concurrency": concurrency,
        "makespan_s": makespan.as_secs_f64(),
        "cpu_us_per_job": cpu.as_secs_f64() * 1e6 / jobs as f64,
        "p50_ms": ms(percentile(&mut latencies, 0.5)),
        "p99_ms": ms(percentile(&mut latencies, 0.99)),
        "errors": errors,
        "peak_rss_kib": status_kib(None, "VmHWM:"),
    }));
    Ok(())
}
