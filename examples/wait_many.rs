//! Many waits at once: what they cost the client, and how soon each learns its job is
//! done. For N in the arguments (default 1000 and 10000), submits N `sleep` jobs, awaits
//! them all with the async facade, and prints:
//!
//! - the client's sockets while waiting (all waits share one event stream);
//! - the client's peak resident memory while waiting, minus before, divided by N;
//! - the makespan (first submit to last result) against the job length;
//! - completion latency: from the moment the server marked each job done (its
//!   `finished_at`, in microseconds) to the moment `wait()` returned it, p50 and p99;
//!
//! and the same latency for one wait at a time. With `--long-poll`, every wait long-polls
//! on its own connection instead (the baseline). Against `JOBWIRE_URL` / `JOBWIRE_TOKEN`
//! when set (so the server's memory is not counted), else against a server spawned in
//! this process (then the memory figure includes the server's).
//!
//! ```text
//! cargo run --release -p jobwire-server -- --memory --token t &
//! JOBWIRE_URL=http://127.0.0.1:7878 JOBWIRE_TOKEN=t cargo run --release --example wait_many
//! JOBWIRE_URL=http://127.0.0.1:7878 JOBWIRE_TOKEN=t cargo run --release --example wait_many -- --long-poll 1000
//! ```

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use serde_json::json;

/// How long each job sleeps.
const JOB_SECONDS: f64 = 5.0;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let by_events = !args.iter().any(|a| a == "--long-poll");
    let sizes: Vec<usize> = args.iter().filter_map(|a| a.parse().ok()).collect();
    let sizes = if sizes.is_empty() {
        vec![1000, 10_000]
    } else {
        sizes
    };
    let (client, server) = match std::env::var("JOBWIRE_URL") {
        Ok(url) => {
            let mut builder = jobwire::Client::builder().base_url(url);
            if let Ok(token) = std::env::var("JOBWIRE_TOKEN") {
                builder = builder.token(token);
            }
            (builder.wait_by_events(by_events).build()?, None)
        }
        Err(_) => {
            let config = jobwire_server::ServerConfig::new().max_jobs_in_flight(100_000);
            let server = jobwire_server::spawn(config).await?;
            let client = jobwire::Client::builder()
                .base_url(server.url())
                .token(server.token())
                .wait_by_events(by_events)
                .build()?;
            println!("(server in this process: memory figures include it)");
            (client, Some(server))
        }
    };
    println!(
        "waiting by {}",
        if by_events { "events" } else { "long-poll" }
    );

    let mut one = Vec::new();
    for _ in 0..50 {
        let mut job = client
            .submit("sleep", &json!({"duration_seconds": 0.02}))
            .await?;
        job.wait().await?;
        one.push(latency(job.job(), SystemTime::now())?);
    }
    let (p50, p99) = percentiles(&mut one);
    println!("1 wait at a time: completion -> wait() p50 {p50:?}, p99 {p99:?} (50 jobs)");

    for n in sizes {
        let started = Instant::now();
        // Submitted 64 at a time, so the submits take a moment, not the waits.
        let mut jobs: Vec<jobwire::JobHandle> = futures_util::stream::iter(0..n)
            .map(|_| {
                let client = client.clone();
                async move {
                    client
                        .submit("sleep", &json!({"duration_seconds": JOB_SECONDS}))
                        .await
                }
            })
            .buffer_unordered(64)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        let submitted = started.elapsed();
        let rss_before = rss_kib();
        let mut peak_rss = rss_before;
        let mut most_sockets = 0;
        let returned: Vec<(bool, SystemTime)> = {
            // Each wait stamps the moment it returns.
            let waits = futures_util::future::join_all(jobs.iter_mut().map(|job| async move {
                let ok = job.wait().await.is_ok();
                (ok, SystemTime::now())
            }));
            tokio::pin!(waits);
            loop {
                tokio::select! {
                    returned = &mut waits => break returned,
                    () = tokio::time::sleep(Duration::from_millis(20)) => {
                        peak_rss = peak_rss.max(rss_kib());
                        most_sockets = most_sockets.max(sockets());
                    }
                }
            }
        };
        let makespan = started.elapsed();
        let failed = returned.iter().filter(|(ok, _)| !ok).count();
        let mut lat: Vec<Duration> = jobs
            .iter()
            .zip(&returned)
            .map(|(job, (_, at))| latency(job.job(), *at))
            .collect::<Result<_, _>>()?;
        let (p50, p99) = percentiles(&mut lat);
        let per_wait = (peak_rss.saturating_sub(rss_before) as f64 * 1024.0) / n as f64;
        println!(
            "{n} waits: {failed} failed; sockets while waiting {most_sockets}; \
             peak RSS +{} KiB = {per_wait:.0} B per wait; submits took {submitted:.2?}; \
             makespan {makespan:.2?} for {JOB_SECONDS} s jobs ({:.3}x); \
             completion -> wait() p50 {p50:?}, p99 {p99:?}",
            peak_rss.saturating_sub(rss_before),
            makespan.as_secs_f64() / JOB_SECONDS,
        );
    }
    if let Some(server) = server {
        server.shutdown().await;
    }
    Ok(())
}

/// From the job's `finished_at` to `returned`.
fn latency(job: &jobwire::Job, returned: SystemTime) -> Result<Duration, String> {
    let finished = job
        .finished_at
        .as_deref()
        .and_then(parse_utc)
        .ok_or_else(|| format!("job {} has no finished_at", job.id))?;
    Ok(returned.duration_since(finished).unwrap_or_default())
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (any number of fraction digits).
fn parse_utc(text: &str) -> Option<SystemTime> {
    let (date, time) = text.strip_suffix('Z')?.split_once('T')?;
    let mut ymd = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, "0"));
    let mut hms = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (hh, mm, ss) = (hms.next()??, hms.next()??, hms.next()??);
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    let nanos: u64 = format!("{fraction:0<9}")[..9].parse().ok()?;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

fn percentiles(values: &mut [Duration]) -> (Duration, Duration) {
    values.sort();
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}

/// Resident memory of this process, KiB (Linux; 0 elsewhere).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Open sockets of this process (Linux; 0 elsewhere).
fn sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter(|e| {
                    std::fs::read_link(e.path())
                        .is_ok_and(|p| p.to_string_lossy().starts_with("socket:"))
                })
                .count()
        })
        .unwrap_or(0)
}
