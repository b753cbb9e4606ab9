//! What the blocking facade costs per call against a raw ureq 3 agent sending the same
//! request, measured side by side in one run: `run("echo", …)` (a submit with
//! `Prefer: wait`) from T threads, client CPU time (user + system, from
//! `/proc/self/stat`) per call and calls per second.
//!
//! ```text
//! cargo run --release -p jobwire-server -- --memory --token t &
//! JOBWIRE_URL=http://127.0.0.1:7878 JOBWIRE_TOKEN=t cargo run --release --example blocking_overhead -- 8 20000
//! ```

use std::time::{Duration, Instant};

use serde_json::json;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let threads = args.next().transpose()?.unwrap_or(8);
    let calls = args.next().transpose()?.unwrap_or(20_000);
    let url = std::env::var("JOBWIRE_URL").map_err(|_| "set JOBWIRE_URL and JOBWIRE_TOKEN")?;
    let token = std::env::var("JOBWIRE_TOKEN").unwrap_or_default();

    let client = jobwire_blocking::Client::builder()
        .base_url(&url)
        .token(&token)
        .build()?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let endpoint = format!("{url}/v1/services/echo/jobs");
    let body = json!({"input": {"n": 1}}).to_string();

    // Warm both pools first.
    for _ in 0..200 {
        let _: serde_json::Value = client.run("echo", &json!({"n": 1}))?;
        raw(&agent, &endpoint, &token, &body)?;
    }
    for round in 0..2 {
        let facade = measure(threads, calls, || {
            client
                .run::<_, serde_json::Value>("echo", &json!({"n": 1}))
                .map(drop)
                .map_err(|e| e.to_string())
        });
        let baseline = measure(threads, calls, || raw(&agent, &endpoint, &token, &body));
        println!(
            "round {round}, {threads} threads, {calls} calls each: \
             jobwire-blocking {:.1} µs CPU/call, {:.0} calls/s; raw ureq {:.1} µs CPU/call, {:.0} calls/s; \
             CPU ratio {:.2}x, throughput ratio {:.2}x",
            facade.0,
            facade.1,
            baseline.0,
            baseline.1,
            facade.0 / baseline.0,
            facade.1 / baseline.1,
        );
    }
    Ok(())
}

/// The same request as `run("echo")` sends, with a raw agent used the plainest way (no
/// timeout): submit with a wait, read the job.
fn raw(agent: &ureq::Agent, endpoint: &str, token: &str, body: &str) -> Result<(), String> {
    let mut answer = agent
        .post(endpoint)
        .header("authorization", &format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("prefer", "wait=1")
        .send(body)
        .map_err(|e| e.to_string())?;
    let job: serde_json::Value = answer.body_mut().read_json().map_err(|e| e.to_string())?;
    if job["status"] != "succeeded" {
        return Err(format!("unexpected {job}"));
    }
    Ok(())
}

/// Runs `call` `calls` times on each of `threads` threads: (CPU µs per call, calls/s).
fn measure(
    threads: usize,
    calls: usize,
    call: impl Fn() -> Result<(), String> + Sync,
) -> (f64, f64) {
    let cpu_before = cpu_time();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                for _ in 0..calls {
                    if let Err(e) = call() {
                        panic!("call failed: {e}");
                    }
                }
            });
        }
    });
    let wall = started.elapsed();
    let cpu = cpu_time() - cpu_before;
    let total = (threads * calls) as f64;
    (cpu.as_secs_f64() * 1e6 / total, total / wall.as_secs_f64())
}

/// User + system CPU time of this process so far (Linux).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name, which is in parentheses and may hold spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<u64> = after
        .split_whitespace()
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after ')'.
    let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
    Duration::from_secs_f64(ticks as f64 / 100.0)
}
