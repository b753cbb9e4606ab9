//! Figure 2, many jobs: `--jobs N` `echo` jobs with at most `--concurrency C` in flight,
//! each run as `client.run("echo", input)` does it (a submit that waits, then a wait if
//! the job is not done), through `jobwire` (tasks on a multi-threaded runtime) or
//! `jobwire-blocking` (C threads) — `--client jobwire|jobwire-blocking`. Prints the
//! makespan, client CPU per job (`getrusage`), p50/p99 of each job's submit-to-result
//! time, errors, and the process's peak resident memory. One client does a warm-up of as
//! many jobs as are in flight (at least 50), uncounted, then the run; the blocking
//! client's threads are started once, before the warm-up.

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

async fn with_async(client: &jobwire::Client, jobs: usize, c: usize) -> (Vec<Duration>, usize) {
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

/// The blocking run on `c` threads started once: they run the warm-up's `warm` jobs,
/// then, when the measurement starts, the run's `jobs` (so thread start-up, which is
/// the caller's and not the SDK's, stays out of it). Returns the run's latencies, its
/// errors, and its CPU time and wall time.
fn with_threads(
    client: &jobwire_blocking::Client,
    warm: usize,
    jobs: usize,
    c: usize,
) -> (Vec<Duration>, usize, Duration, Duration) {
    let (warm_next, next) = (AtomicUsize::new(0), AtomicUsize::new(0));
    let errors = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::with_capacity(jobs));
    let start = std::sync::Barrier::new(c + 1);
    let end = std::sync::Barrier::new(c + 1);
    let run_share = |next: &AtomicUsize, upto: usize, mine: &mut Vec<Duration>, counted: bool| loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= upto {
            break;
        }
        let started = Instant::now();
        let out = client.run::<_, Value>("echo", &json!({ "i": i }));
        if counted {
            mine.push(started.elapsed());
            if !checked(i, out) {
                errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    };
    std::thread::scope(|scope| {
        for _ in 0..c {
            scope.spawn(|| {
                let mut mine = Vec::new();
                run_share(&warm_next, warm, &mut mine, false);
                start.wait();
                run_share(&next, jobs, &mut mine, true);
                if let Ok(mut all) = latencies.lock() {
                    all.extend(mine);
                }
                end.wait();
            });
        }
        // Every thread is done with the warm-up when the measurement starts.
        start.wait();
        let (cpu, wall) = (cpu_time(), Instant::now());
        end.wait();
        let measured = (cpu_time() - cpu, wall.elapsed());
        let latencies = std::mem::take(&mut *latencies.lock().unwrap_or_else(|e| e.into_inner()));
        (
            latencies,
            errors.load(Ordering::Relaxed),
            measured.0,
            measured.1,
        )
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, token) = server_from_env()?;
    let client: String = arg("--client", "jobwire".to_owned());
    let jobs: usize = arg("--jobs", 10_000);
    let concurrency: usize = arg("--concurrency", 64);
    let runtime = tokio::runtime::Runtime::new()?;
    // One client for the warm-up and the run, as the Python clients keep one session.
    let asynchronous = jobwire::Client::builder()
        .base_url(&url)
        .token(&token)
        .build()?;
    let blocking = jobwire_blocking::Client::builder()
        .base_url(&url)
        .token(&token)
        .build()?;
    // Warm-up, not counted: the allocator, and a connection for each job in flight (the
    // Python clients warm up the same number of jobs).
    let warm = concurrency.max(50);
    let (mut latencies, errors, cpu, makespan) = match client.as_str() {
        "jobwire" => {
            runtime.block_on(with_async(&asynchronous, warm, concurrency));
            let (cpu, wall) = (cpu_time(), Instant::now());
            let (latencies, errors) =
                runtime.block_on(with_async(&asynchronous, jobs, concurrency));
            (latencies, errors, cpu_time() - cpu, wall.elapsed())
        }
        _ => with_threads(&blocking, warm, jobs, concurrency),
    };
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
