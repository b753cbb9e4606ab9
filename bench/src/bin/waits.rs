//! Figures 4 and 5, waiting: `--waits N` jobs (`sleep`, `--job-seconds S`) awaited at
//! once through the async facade, `--mode` one of
//!
//! - `events`: `job.wait()` on the client's one shared event stream (the default);
//! - `long-poll`: `job.wait()` with `wait_by_events(false)`: a `Prefer: wait` GET each;
//! - `poll=MS`: the hand-written loop other SDKs' users write: `refresh()`, then sleep MS,
//!   until the job is done (the loops' first polls spread over the interval, as
//!   independent loops' would be).
//!
//! Prints completion latency — from the moment the server marked each job done (its
//! `finished_at`) to the moment the client had it — p50 and p99, and the peak resident
//! memory while waiting, minus before, per wait: the client's, and the server's when
//! `JOBWIRE_BENCH_SERVER_PID` names it. With one wait, `--samples` jobs (default 20) one
//! after another.

use std::time::{Duration, SystemTime};

use futures_util::StreamExt;
use jobwire_bench::{
    arg, completion_latency, emit, ms, percentile, server_from_env, server_pid, status_kib,
};
use serde_json::json;

/// The polling interval of a `poll=MS` mode.
fn poll_interval(mode: &str) -> Option<Duration> {
    let ms = mode.strip_prefix("poll=")?.parse().ok()?;
    Some(Duration::from_millis(ms))
}

/// The hand-written polling loop: `refresh()`, sleep, until done; the first poll comes
/// `phase` after the start (users' loops do not all tick together). The moment it had
/// the finished job.
async fn poll(
    job: &mut jobwire::JobHandle,
    every: Duration,
    phase: Duration,
) -> Result<SystemTime, String> {
    tokio::time::sleep(phase).await;
    while !job
        .refresh()
        .await
        .map_err(|e| e.to_string())?
        .is_finished()
    {
        tokio::time::sleep(every).await;
    }
    Ok(SystemTime::now())
}

/// The SDK's wait; the moment it had the finished job. Its own function, so a wait's
/// future holds only what `wait()` needs (memory per wait is figure 5).
async fn wait(job: &mut jobwire::JobHandle) -> Result<SystemTime, String> {
    job.wait().await.map_err(|e| e.to_string())?;
    Ok(SystemTime::now())
}

/// Spreads polls over the interval: the `i`th loop's first poll, in `[0, every)`.
fn phase(i: usize, every: Duration) -> Duration {
    // The golden ratio's fraction spreads any number of loops evenly.
    every.mul_f64((i as f64 * 0.618_033_988_75).fract())
}

/// Resident memory over time: (when, client KiB, server KiB).
type Samples = Vec<(SystemTime, u64, u64)>;

/// Runs `all`, sampling the client's and the server's resident memory every 20 ms
/// meanwhile.
async fn sampled<T>(all: impl std::future::Future<Output = T>, samples: &mut Samples) -> T {
    tokio::pin!(all);
    loop {
        tokio::select! {
            returned = &mut all => return returned,
            () = tokio::time::sleep(Duration::from_millis(20)) => samples.push((
                SystemTime::now(),
                status_kib(None, "VmRSS:"),
                status_kib(server_pid(), "VmRSS:"),
            )),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, token) = server_from_env()?;
    let mode: String = arg("--mode", "events".to_owned());
    let waits: usize = arg("--waits", 1000);
    let job_seconds: f64 = arg("--job-seconds", 2.0);
    let samples: usize = arg("--samples", 20);
    let client = jobwire::Client::builder()
        .base_url(&url)
        .token(&token)
        .wait_by_events(mode != "long-poll")
        .build()?;
    let sleep = json!({ "duration_seconds": job_seconds });

    let mut latencies = Vec::new();
    let mut errors = 0;
    let (mut client_per_wait, mut server_per_wait) = (None, None);
    let mut client_idle_per_wait = None;
    if waits == 1 {
        let short = json!({ "duration_seconds": 0.05 });
        for _ in 0..samples {
            let mut job = client.submit("sleep", &short).await?;
            let returned = match poll_interval(&mode) {
                Some(every) => poll(&mut job, every, phase(latencies.len(), every)).await?,
                None => wait(&mut job).await?,
            };
            latencies.extend(completion_latency(job.job(), returned));
        }
    } else {
        // Submitted 64 at a time: the submits take a moment, not the waits.
        let mut jobs: Vec<jobwire::JobHandle> = futures_util::stream::iter(0..waits)
            .map(|_| {
                let (client, sleep) = (client.clone(), sleep.clone());
                async move { client.submit("sleep", &sleep).await }
            })
            .buffer_unordered(64)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let before = (
            status_kib(None, "VmRSS:"),
            status_kib(server_pid(), "VmRSS:"),
        );
        let mut samples = Samples::new();
        let returned: Vec<Result<SystemTime, String>> = match poll_interval(&mode) {
            Some(every) => {
                let loops = jobs
                    .iter_mut()
                    .enumerate()
                    .map(|(i, job)| poll(job, every, phase(i, every)));
                sampled(futures_util::future::join_all(loops), &mut samples).await
            }
            None => {
                let waits = jobs.iter_mut().map(wait);
                sampled(futures_util::future::join_all(waits), &mut samples).await
            }
        };
        for (job, returned) in jobs.iter().zip(returned) {
            match returned
                .ok()
                .and_then(|at| completion_latency(job.job(), at))
            {
                Some(latency) => latencies.push(latency),
                None => errors += 1,
            }
        }
        let per_wait =
            |after: u64, before: u64| after.saturating_sub(before) as f64 * 1024.0 / waits as f64;
        let peak = |until: Option<SystemTime>| {
            samples
                .iter()
                .filter(|(at, _, _)| until.is_none_or(|u| *at < u))
                .fold(before, |(c, s), (_, client, server)| {
                    (c.max(*client), s.max(*server))
                })
        };
        let all = peak(None);
        client_per_wait = Some(per_wait(all.0, before.0));
        server_per_wait = server_pid().map(|_| per_wait(all.1, before.1));
        // Before the first job finished: what waiting itself holds, without the burst of
        // `done` events that follows.
        let first_done = jobs
            .iter()
            .filter_map(|j| jobwire_bench::parse_utc(j.job().finished_at.as_deref()?))
            .min();
        client_idle_per_wait = first_done.map(|f| per_wait(peak(Some(f)).0, before.0));
    }
    emit(json!({
        "figure": 4, "mode": mode, "waits": waits,
        "p50_ms": ms(percentile(&mut latencies, 0.5)),
        "p99_ms": ms(percentile(&mut latencies, 0.99)),
        "errors": errors,
        "client_bytes_per_wait": client_per_wait,
        "client_bytes_per_wait_before_done": client_idle_per_wait,
        "server_bytes_per_wait": server_per_wait,
    }));
    Ok(())
}
