//! Figure 1, what the SDK costs per call: client CPU time (`getrusage`, user + system)
//! per call and calls per second, for a submit that waits for its `echo` job
//! (`POST …/jobs` with `Prefer: wait=1`, as `run` sends it) and for a job read
//! (`GET /v1/jobs/{id}`), each sent by
//!
//! - `jobwire` (async) against raw hyper-util (the pooled client jobwire uses) and raw
//!   `hyper::client::conn::http1` (one connection, no pool), one call after another on
//!   one runtime thread;
//! - `jobwire-blocking` against a raw ureq 3 agent, from 1, 8 and 64 threads.
//!
//! Every raw client sends the same request and decodes the answer's JSON. Against the
//! server in `JOBWIRE_URL`; `--calls N` per measurement.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use jobwire_bench::{arg, cpu_times, emit, server_from_env};
use serde_json::{json, Value};

/// One measurement: CPU µs per call (user + system: Linux splits the two only at
/// scheduler ticks, too coarse for a round), calls per second.
#[derive(Clone, Copy)]
struct Sample {
    cpu: f64,
    rate: f64,
}

impl Sample {
    /// Since `cpu` (user, system) and `wall`, for `calls` calls.
    fn since(cpu: (std::time::Duration, std::time::Duration), wall: Instant, calls: usize) -> Self {
        let (user, system) = cpu_times();
        let per_call = |d: std::time::Duration| d.as_secs_f64() * 1e6 / calls as f64;
        Sample {
            cpu: per_call((user - cpu.0) + (system - cpu.1)),
            rate: calls as f64 / wall.elapsed().as_secs_f64(),
        }
    }
}

/// One measurement: run `calls` calls.
async fn measure_async<F, Fut>(calls: usize, mut call: F) -> Result<Sample, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    for _ in 0..calls / 10 {
        call().await?;
    }
    let (cpu, wall) = (cpu_times(), Instant::now());
    for _ in 0..calls {
        call().await?;
    }
    Ok(Sample::since(cpu, wall, calls))
}

fn measure_threads(
    threads: usize,
    calls: usize,
    call: impl Fn() -> Result<(), String> + Sync,
) -> Result<Sample, String> {
    for _ in 0..calls / 10 {
        call()?;
    }
    let left = AtomicUsize::new(calls);
    let (cpu, wall) = (cpu_times(), Instant::now());
    let failed = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    while left
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                        .is_ok()
                    {
                        call()?;
                    }
                    Ok::<(), String>(())
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or(Err("a worker panicked".into())))
            .find(Result::is_err)
    });
    if let Some(Err(e)) = failed {
        return Err(e);
    }
    Ok(Sample::since(cpu, wall, calls))
}

/// Whether `client` is measured this time (`--only CLIENT` picks one).
fn wanted(client: &str) -> bool {
    let only: String = arg("--only", String::new());
    only.is_empty() || only == client
}

/// Measurements taken in turns: each client measured once per round, so a drift of the
/// machine (another process, the CPU's clock) hits all of them alike.
const ROUNDS: usize = 5;

/// What a sample measured: (client, call, threads).
type Key = (&'static str, &'static str, usize);

/// Each key with its rounds' samples.
#[derive(Default)]
struct Samples(Vec<(Key, Vec<Sample>)>);

impl Samples {
    fn add(&mut self, key: Key, sample: Sample) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some((_, samples)) => samples.push(sample),
            None => self.0.push((key, vec![sample])),
        }
    }

    /// One line per key: the medians of its rounds.
    fn report(self) {
        for ((client, workload, threads), samples) in self.0 {
            let median = |mut v: Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            emit(json!({
                "figure": 1, "client": client, "workload": workload, "threads": threads,
                "cpu_us_per_call": median(samples.iter().map(|s| s.cpu).collect()),
                "calls_per_s": median(samples.iter().map(|s| s.rate).collect()),
                "rounds": samples.len(),
            }));
        }
    }
}

/// The request every raw client sends: as jobwire sends it, minus its idempotency key.
fn submit_request(url: &str, token: &str) -> http::Request<Bytes> {
    http::Request::post(format!("{url}/v1/services/echo/jobs"))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .header("prefer", "wait=1")
        .body(Bytes::from(json!({"input": {"n": 1}}).to_string()))
        .unwrap_or_default()
}

fn get_request(url: &str, token: &str, id: &str) -> http::Request<Bytes> {
    http::Request::get(format!("{url}/v1/jobs/{id}"))
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "application/json")
        .body(Bytes::new())
        .unwrap_or_default()
}

/// Reads a raw hyper answer's body and decodes it, as a user of raw hyper would.
async fn read_decoded(answer: http::Response<hyper::body::Incoming>) -> Result<(), String> {
    let status = answer.status();
    let body = answer
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?;
    decoded(status, &body.to_bytes())
}

fn decoded(status: http::StatusCode, body: &[u8]) -> Result<(), String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| e.to_string())?;
    if !status.is_success() || value["status"] != "succeeded" {
        return Err(format!("unexpected answer {status}: {value}"));
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, token) = server_from_env()?;
    let calls: usize = arg("--calls", 5000);
    let per_round = (calls / ROUNDS).max(1);
    let mut samples = Samples::default();

    // The async facade against raw hyper-util and raw hyper, one call at a time.
    let client = jobwire::Client::builder()
        .base_url(&url)
        .token(&token)
        .build()?;
    let job_id = client
        .submit("echo", &json!({"n": 1}))
        .await?
        .id()
        .to_owned();
    let pooled = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let authority = url.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&authority).await?;
    stream.set_nodelay(true)?;
    let (mut conn, driver) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(driver);

    let only_workload: String = arg("--workload", String::new());
    for (_, workload) in (0..ROUNDS).flat_map(|r| ["submit_wait", "get_job"].map(|w| (r, w))) {
        if !only_workload.is_empty() && workload != only_workload {
            continue;
        }
        let calls = per_round;
        if wanted("jobwire") {
            let facade = measure_async(calls, || async {
                match workload {
                    "submit_wait" => client
                        .run::<_, Value>("echo", &json!({"n": 1}))
                        .await
                        .map(drop),
                    _ => client.get_job(&job_id).await.map(drop),
                }
                .map_err(|e| e.to_string())
            })
            .await?;
            samples.add(("jobwire", workload, 1), facade);
        }
        let request = || match workload {
            "submit_wait" => submit_request(&url, &token),
            _ => get_request(&url, &token, &job_id),
        };
        if wanted("hyper-util") {
            let util = measure_async(calls, || async {
                let answer = pooled.request(request().map(Full::new)).await;
                read_decoded(answer.map_err(|e| e.to_string())?).await
            })
            .await?;
            samples.add(("hyper-util", workload, 1), util);
        }
        if wanted("hyper-http1") {
            let raw = measure_async(calls, || {
                let mut request = request().map(Full::new);
                request.headers_mut().insert(
                    "host",
                    http::HeaderValue::from_str(&authority)
                        .unwrap_or(http::HeaderValue::from_static("localhost")),
                );
                let sent = conn.send_request(request);
                async move { read_decoded(sent.await.map_err(|e| e.to_string())?).await }
            })
            .await?;
            samples.add(("hyper-http1", workload, 1), raw);
        }
    }

    // The blocking facade against a raw ureq agent, from 1, 8 and 64 threads.
    let blocking = jobwire_blocking::Client::builder()
        .base_url(&url)
        .token(&token)
        .build()?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let only_threads: usize = arg("--threads", 0);
    for (_, threads) in (0..ROUNDS).flat_map(|r| [1, 8, 64].map(|t| (r, t))) {
        if only_threads != 0 && threads != only_threads {
            continue;
        }
        let calls = per_round;
        if wanted("jobwire-blocking") {
            let facade = measure_threads(threads, calls, || {
                blocking
                    .run::<_, Value>("echo", &json!({"n": 1}))
                    .map(drop)
                    .map_err(|e| e.to_string())
            })?;
            samples.add(("jobwire-blocking", "submit_wait", threads), facade);
        }
        if wanted("ureq") {
            let raw = measure_threads(threads, calls, || {
                let mut answer = agent
                    .post(&format!("{url}/v1/services/echo/jobs"))
                    .header("authorization", &format!("Bearer {token}"))
                    .header("content-type", "application/json")
                    .header("accept", "application/json")
                    .header("prefer", "wait=1")
                    // The input built and encoded each call, as the other clients do.
                    .send(&json!({"input": {"n": 1}}).to_string())
                    .map_err(|e| e.to_string())?;
                let status = answer.status();
                let bytes = answer.body_mut().read_to_vec().map_err(|e| e.to_string())?;
                decoded(status, &bytes)
            })?;
            samples.add(("ureq", "submit_wait", threads), raw);
        }
    }
    samples.report();
    Ok(())
}
