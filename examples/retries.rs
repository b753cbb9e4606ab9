//! Retries against a server that misbehaves on purpose: the built-in policy, configured,
//! rides out 503s and lost answers without ever making a job twice; the same calls with
//! retries off fail at once; and a hand-written policy for what the SDK does not retry.
//!
//! Patterns: S3.9, S4.8
//!
//! Python (Infrahub, inference.sh): an `@async_retry(max_attempts=3, delay=1.0)`
//! decorator that sleeps `delay * 2 ** attempt` after any exception, and a loop that
//! waits `2 ** attempt + random.random()` between attempts.
//!
//! Rust: retrying is the client's, per request, from one policy — 408, 429, 502-504 and
//! broken connections, with full-jitter exponential back-off, never less than the
//! `Retry-After` the server asks for, from a budget all clones share. Every submit
//! carries an `Idempotency-Key`, reused on its retries, so a submit whose answer was lost
//! is retried without making a second job. A job that *failed* is an answer, not a
//! fault, and is never retried by the SDK; a small generic function does that where you
//! want it.
//!
//! The embedded server gets its faults from the specs below; for `JOBWIRE_URL`, start the
//! server with them:
//!
//! ```text
//! cargo run --example retries
//! jobwire serve --memory --fault-seed 7 \
//!   --fault 'unavailable=1:0.05:POST:/v1/services/*/jobs' \
//!   --fault 'drop-answer:0.1:POST:/v1/services/*/jobs'
//! ```

mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{check, Server};
use jobwire::core::retry::RetryPolicy;
use jobwire::transport::{AsyncTransport, HyperTransport};
use jobwire::{CallOptions, Error, RunOptions};
use jobwire_server::{Faults, ServerConfig};
use serde_json::{json, Value};

/// One in twenty submits answered 503 with `Retry-After: 1`, one in ten stored and then its
/// answer lost.
const FAULTS: [&str; 2] = [
    "unavailable=1:0.05:POST:/v1/services/*/jobs",
    "drop-answer:0.1:POST:/v1/services/*/jobs",
];

/// A submit attempt as the transport saw it.
#[derive(Clone)]
struct Attempt {
    at: Instant,
    key: String,
    status: u16,
    retry_after: Option<Duration>,
}

type Attempts = Arc<Mutex<Vec<Attempt>>>;

/// Some noise for the jitter.
fn clock_nanos() -> u32 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
}

/// Runs `call` up to `attempts` times while it fails, pausing a doubling, jittered delay
/// between: the guides' decorator, for failures the SDK leaves to you.
async fn with_retries<T, F, Fut>(attempts: u32, base: Duration, mut call: F) -> Result<T, Error>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut attempt = 1;
    loop {
        match call(attempt).await {
            Err(e @ Error::JobFailed { .. }) if attempt < attempts => {
                let doubled = base * 2u32.pow(attempt - 1);
                let jitter = Duration::from_millis(u64::from(clock_nanos() % 50));
                println!(
                    "  attempt {attempt} failed ({e}); again in {:?}",
                    doubled + jitter
                );
                tokio::time::sleep(doubled + jitter).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[tokio::main]
async fn main() -> common::Result {
    let mut faults = Faults::new(7);
    for spec in FAULTS {
        faults = faults.with_spec(spec)?;
    }
    let server = Server::start_with(ServerConfig::new().faults(faults)).await?;

    // A client whose transport notes each submit attempt.
    let attempts: Attempts = Arc::default();
    let client = {
        let (seen, http) = (attempts.clone(), HyperTransport::new()?);
        jobwire::Client::builder()
            .base_url(server.url())
            .token(server.token())
            // Patient: up to 6 attempts, back-off from 20 ms.
            .retry(
                RetryPolicy::default()
                    .max_attempts(6)
                    .base_delay(Duration::from_millis(20)),
            )
            .transport(move |request: http::Request<Bytes>| {
                let (seen, http) = (seen.clone(), http.clone());
                async move {
                    let key = request
                        .headers()
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let answer = http.send(request).await;
                    if let (Some(key), Ok(answer)) = (key, &answer) {
                        let retry_after = answer
                            .headers()
                            .get("retry-after")
                            .and_then(|v| v.to_str().ok()?.parse().ok())
                            .map(Duration::from_secs);
                        let status = answer.status().as_u16();
                        let attempt = Attempt {
                            at: Instant::now(),
                            key,
                            status,
                            retry_after,
                        };
                        seen.lock().unwrap_or_else(|e| e.into_inner()).push(attempt);
                    }
                    answer
                }
            })
            .build()?
    };

    // 20 runs, one after another, each labelled so the server's jobs can be counted.
    let run = common::run_id();
    let mut wrong = Vec::new();
    for n in 0..20 {
        let options = RunOptions::default().label("run", &run);
        let out: Value = client.run_with("echo", &json!({"n": n}), options).await?;
        if out != json!({"n": n}) {
            wrong.push(out);
        }
    }
    check(
        wrong.is_empty(),
        format!("all 20 runs succeeded with their own output {wrong:?}"),
    )?;
    let attempts = attempts.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut by_key: BTreeMap<&str, Vec<&Attempt>> = BTreeMap::new();
    for attempt in &attempts {
        by_key.entry(&attempt.key).or_default().push(attempt);
    }
    let unavailable = attempts.iter().filter(|a| a.status == 503).count();
    // A 2xx answer followed by another attempt: its body was lost on the way.
    let lost = by_key
        .values()
        .filter(|tries| tries[..tries.len() - 1].iter().any(|t| t.status / 100 == 2))
        .count();
    println!(
        "{} submit attempts for 20 submits: {unavailable} answered 503, {lost} submits had an answer lost",
        attempts.len()
    );
    for (key, tries) in by_key.iter().filter(|(_, tries)| tries.len() > 1) {
        let statuses: Vec<u16> = tries.iter().map(|t| t.status).collect();
        let pauses: Vec<String> = tries
            .windows(2)
            .map(|w| format!("{:.0} ms", (w[1].at - w[0].at).as_secs_f64() * 1000.0))
            .collect();
        println!("  key {key}: answers {statuses:?}, pauses {pauses:?}");
    }
    check(
        by_key.len() == 20 && attempts.len() > 20 && unavailable > 0 && lost > 0,
        "every submit kept one Idempotency-Key over its retries, and there were retries of both kinds",
    )?;
    let retry_after_kept = by_key.values().all(|tries| {
        tries
            .windows(2)
            .all(|w| w[1].at - w[0].at >= w[0].retry_after.unwrap_or_default())
    });
    check(
        retry_after_kept,
        "each retry after a 503 waited at least the Retry-After it asked for",
    )?;
    let jobs = client
        .jobs()
        .label("run", &run)
        .limit(100)
        .page()
        .await?
        .items;
    check(
        jobs.len() == 20,
        format!(
            "the server holds exactly {} jobs for the 20 runs: no submit made two",
            jobs.len()
        ),
    )?;

    // Retries off: the first 503 is the caller's.
    let impatient = client.with_options(CallOptions::default().retry(RetryPolicy::none()));
    let mut refused = None;
    for n in 0..50 {
        if let Err(e) = impatient.submit("echo", &json!({"n": n})).await {
            refused = Some(e);
            break;
        }
    }
    match &refused {
        Some(e) => println!("retries off: {} ({e})", e.kind_name()),
        None => println!("retries off: no error in 50 submits"),
    }
    check(
        matches!(&refused, Some(Error::Api { status, .. }) if status.as_u16() == 503)
            || matches!(&refused, Some(Error::Transport(_))),
        "with RetryPolicy::none() a fault reached the caller at once",
    )?;

    // A policy of your own, for jobs that fail: three tries, 100 ms then 200 ms apart.
    let started = Instant::now();
    let mut tries = 0;
    let outcome = with_retries(3, Duration::from_millis(100), |attempt| {
        tries = attempt;
        let client = &client;
        async move {
            let busy = json!({"message": format!("busy (try {attempt})")});
            client.run::<_, Value>("fail", &busy).await
        }
    })
    .await;
    let took = started.elapsed();
    check(
        matches!(outcome, Err(Error::JobFailed { .. }))
            && tries == 3
            && took >= Duration::from_millis(300),
        format!(
            "the custom policy tried 3 times over {:.0} ms, then gave the failure back",
            took.as_secs_f64() * 1000.0
        ),
    )?;
    server.stop().await;
    Ok(())
}
