//! Retries over real sockets, against the reference server's own fault injection, in
//! both facades: submits from 64 callers survive lost answers and 503s without a job run
//! twice (every submit carries an `Idempotency-Key`, reused on its retries), the budget
//! holds 64 callers against a server that fails everything to one retry per call, and
//! what must not be retried is not.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use jobwire::transport::{AsyncTransport, HyperTransport};
use jobwire_blocking::transport::{Transport, UreqTransport};
use jobwire_core::retry::RetryPolicy;
use jobwire_core::Error;
use jobwire_server::{Fault, Faults, ServerConfig};
use serde_json::{json, Value};

/// Every attempt a client made: "METHOD /path" and its idempotency key.
type Attempts = Arc<Mutex<Vec<(String, Option<String>)>>>;

fn record(attempts: &Attempts, req: &http::Request<Bytes>) {
    let key = req
        .headers()
        .get("idempotency-key")
        .map(|v| v.to_str().unwrap().to_owned());
    let line = format!("{} {}", req.method(), req.uri().path());
    attempts.lock().unwrap().push((line, key));
}

/// 10 % of submit answers lost after the job is stored, 10 % of all requests 503.
fn flaky() -> ServerConfig {
    let faults = Faults::new(11)
        .with_spec("drop-answer:0.1:POST:/v1/services/*/jobs")
        .unwrap()
        .with_spec("unavailable=0:0.1")
        .unwrap();
    ServerConfig::new().faults(faults)
}

/// How many callers share one client at once.
const CALLERS: usize = 64;

/// Patient enough that 20 % failures per attempt never exhaust a call.
fn patient() -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(10)
        .base_delay(Duration::from_millis(20))
}

fn async_client(
    server: &jobwire_server::ServerHandle,
    policy: RetryPolicy,
) -> (jobwire::Client, Attempts) {
    let attempts: Attempts = Arc::default();
    let seen = attempts.clone();
    let inner = HyperTransport::new().unwrap();
    let client = jobwire::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .retry(policy)
        .transport(move |req: http::Request<Bytes>| {
            record(&seen, &req);
            let inner = inner.clone();
            async move { inner.send(req).await }
        })
        .build()
        .unwrap();
    (client, attempts)
}

fn blocking_client(
    server: &jobwire_server::BlockingServerHandle,
    policy: RetryPolicy,
) -> (jobwire_blocking::Client, Attempts) {
    let attempts: Attempts = Arc::default();
    let seen = attempts.clone();
    let inner = UreqTransport::new();
    let client = jobwire_blocking::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .retry(policy)
        .transport(move |req: http::Request<Bytes>| {
            record(&seen, &req);
            inner.send(req)
        })
        .build()
        .unwrap();
    (client, attempts)
}

/// Every submit attempt carried a key; retries reused it; `n` distinct keys in all.
fn check_keys(attempts: &Attempts, n: usize) -> usize {
    let attempts = attempts.lock().unwrap();
    let mut per_key: HashMap<&str, usize> = HashMap::new();
    for (line, key) in attempts
        .iter()
        .filter(|(l, _)| l.starts_with("POST /v1/services/"))
    {
        let key = key
            .as_deref()
            .unwrap_or_else(|| panic!("{line} without a key"));
        *per_key.entry(key).or_default() += 1;
    }
    assert_eq!(per_key.len(), n, "one key per submit");
    per_key.values().sum::<usize>() - n
}

/// The server holds exactly one job for each input 0..n.
fn check_jobs(jobs: &[jobwire_core::Job], n: usize) {
    assert_eq!(jobs.len(), n, "exactly {n} jobs at the server");
    let inputs: HashSet<i64> = jobs.iter().map(|j| j.input.as_i64().unwrap()).collect();
    assert_eq!(inputs.len(), n, "none twice");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thousand_submits_survive_lost_answers_and_503s_async() {
    let server = jobwire_server::spawn(flaky()).await.unwrap();
    let (client, attempts) = async_client(&server, patient());
    let n = 1000;
    let results: Vec<Result<jobwire::JobHandle, Error>> = futures_util::stream::iter(0..n)
        .map(|i| {
            let client = client.clone();
            async move { client.submit("echo", &json!(i)).await }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    let retried = check_keys(&attempts, n as usize);
    assert!(
        retried > 100,
        "the faults were hit: {retried} submit retries"
    );
    let jobs: Vec<jobwire_core::Job> = client
        .jobs()
        .limit(1000)
        .items()
        .try_collect()
        .await
        .unwrap();
    check_jobs(&jobs, n as usize);
    server.shutdown().await;
}

#[test]
fn a_thousand_submits_survive_lost_answers_and_503s_blocking() {
    let server = jobwire_server::spawn_blocking_server(flaky()).unwrap();
    let (client, attempts) = blocking_client(&server, patient());
    let n = 1000;
    let failed = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CALLERS)
            .map(|w| {
                let client = client.clone();
                scope.spawn(move || {
                    // 64 callers: 1,000 submits, 15 or 16 each.
                    (w..n)
                        .step_by(CALLERS)
                        .map(|i| client.submit("echo", &json!(i)))
                        .filter_map(Result::err)
                        .map(|e| e.to_string())
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert!(
        failed.is_empty(),
        "{} failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    let retried = check_keys(&attempts, n);
    assert!(
        retried > 100,
        "the faults were hit: {retried} submit retries"
    );
    let jobs: Vec<jobwire_core::Job> = client
        .jobs()
        .limit(1000)
        .items()
        .collect::<Result<_, _>>()
        .unwrap();
    check_jobs(&jobs, n);
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_budget_stops_retrying_a_server_that_fails_everything() {
    let faults = Faults::new(1).with_spec("unavailable=0:1").unwrap();
    let server = jobwire_server::spawn(ServerConfig::new().faults(faults))
        .await
        .unwrap();
    let (client, attempts) = async_client(
        &server,
        RetryPolicy::default().base_delay(Duration::from_millis(1)),
    );
    let call = || {
        let client = client.clone();
        async move {
            let err = client.get_job("job_anything").await.unwrap_err();
            assert_eq!(
                err.status(),
                Some(http::StatusCode::SERVICE_UNAVAILABLE),
                "{err}"
            );
        }
    };
    // 64 callers at once: the 64 retries the budget holds, one per call, not 64 x 3.
    futures_util::future::join_all((0..CALLERS).map(|_| call())).await;
    assert_eq!(attempts.lock().unwrap().len(), 2 * CALLERS);
    // And none more after.
    futures_util::future::join_all((0..CALLERS).map(|_| call())).await;
    assert_eq!(attempts.lock().unwrap().len(), 3 * CALLERS);
    server.shutdown().await;
}

#[test]
fn the_budget_stops_retrying_a_server_that_fails_everything_blocking() {
    let faults = Faults::new(1).with_spec("unavailable=0:1").unwrap();
    let server = jobwire_server::spawn_blocking_server(ServerConfig::new().faults(faults)).unwrap();
    let policy = RetryPolicy::default().base_delay(Duration::from_millis(1));
    let (client, attempts) = blocking_client(&server, policy);
    let calls = || {
        std::thread::scope(|scope| {
            for _ in 0..CALLERS {
                scope.spawn(|| {
                    let err = client.get_job("job_anything").unwrap_err();
                    assert_eq!(
                        err.status(),
                        Some(http::StatusCode::SERVICE_UNAVAILABLE),
                        "{err}"
                    );
                });
            }
        })
    };
    calls();
    assert_eq!(attempts.lock().unwrap().len(), 2 * CALLERS);
    calls();
    assert_eq!(attempts.lock().unwrap().len(), 3 * CALLERS);
    server.shutdown();
}

#[test]
fn what_must_not_be_retried_is_sent_once() {
    let server = jobwire_server::spawn_blocking_server(ServerConfig::new()).unwrap();
    let (client, attempts) = blocking_client(&server, RetryPolicy::default());
    // 422: the input does not fit the schema.
    let err = client
        .submit("sleep", &json!({"duration_seconds": "soon"}))
        .unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::UNPROCESSABLE_ENTITY));
    // 404: no such job.
    assert!(matches!(
        client.get_job("job_none"),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(attempts.lock().unwrap().len(), 2);
    // A caller's own key wins, and the server replays its job.
    let options = jobwire_core::SubmitOptions::default().idempotency_key("mine-1");
    let first = client
        .submit_with("echo", &json!("x"), options.clone())
        .unwrap();
    let again = client.submit_with("echo", &json!("x"), options).unwrap();
    assert_eq!(first.id(), again.id());
    let keys: Vec<Option<String>> = attempts.lock().unwrap()[2..]
        .iter()
        .map(|(_, k)| k.clone())
        .collect();
    assert_eq!(keys, [Some("mine-1".to_owned()), Some("mine-1".to_owned())]);
    let _: Value = client.run("echo", &json!(1)).unwrap();
    server.shutdown();
}

#[tokio::test(flavor = "multi_thread")]
async fn idempotency_through_the_async_facade() {
    let server = jobwire_server::spawn(ServerConfig::new()).await.unwrap();
    let (client, _) = async_client(&server, RetryPolicy::default());
    let keyed = |key: &str| jobwire_core::SubmitOptions::default().idempotency_key(key);
    // Replay: the same key and request give the first job.
    let first = client
        .submit_with("echo", &json!("a"), keyed("k-1"))
        .await
        .unwrap();
    let again = client
        .submit_with("echo", &json!("a"), keyed("k-1"))
        .await
        .unwrap();
    assert_eq!(first.id(), again.id());
    // Another request with the key: 422, not retried.
    let err = client
        .submit_with("echo", &json!("b"), keyed("k-1"))
        .await
        .unwrap_err();
    assert_eq!(
        err.status(),
        Some(http::StatusCode::UNPROCESSABLE_ENTITY),
        "{err}"
    );
    // A repeat while the first is still being answered: 409, not retried.
    let held = {
        let client = client.clone();
        let options = keyed("k-2").wait(Duration::from_secs(5));
        tokio::spawn(async move {
            client
                .submit_with("sleep", &json!({"duration_seconds": 0.6}), options)
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = client
        .submit_with("sleep", &json!({"duration_seconds": 0.6}), keyed("k-2"))
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::CONFLICT), "{err}");
    let held = held.await.unwrap().unwrap();
    assert_eq!(held.status(), &jobwire::JobStatus::Succeeded);
    server.shutdown().await;
}

#[test]
fn idempotency_through_the_blocking_facade() {
    let server = jobwire_server::spawn_blocking_server(ServerConfig::new()).unwrap();
    let (client, _) = blocking_client(&server, RetryPolicy::default());
    let keyed = |key: &str| jobwire_core::SubmitOptions::default().idempotency_key(key);
    let first = client
        .submit_with("echo", &json!("a"), keyed("k-1"))
        .unwrap();
    let again = client
        .submit_with("echo", &json!("a"), keyed("k-1"))
        .unwrap();
    assert_eq!(first.id(), again.id());
    let err = client
        .submit_with("echo", &json!("b"), keyed("k-1"))
        .unwrap_err();
    assert_eq!(
        err.status(),
        Some(http::StatusCode::UNPROCESSABLE_ENTITY),
        "{err}"
    );
    let held = {
        let client = client.clone();
        let options = keyed("k-2").wait(Duration::from_secs(5));
        std::thread::spawn(move || {
            client.submit_with("sleep", &json!({"duration_seconds": 0.6}), options)
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    let err = client
        .submit_with("sleep", &json!({"duration_seconds": 0.6}), keyed("k-2"))
        .unwrap_err();
    assert_eq!(err.status(), Some(http::StatusCode::CONFLICT), "{err}");
    let held = held.join().unwrap().unwrap();
    assert_eq!(held.status(), &jobwire_blocking::JobStatus::Succeeded);
    server.shutdown();
}

/// A server asking for a `Retry-After` longer than the policy's `max_delay` (a hostile
/// 2^64 - 1 seconds, or 10^8): the call ends at once with `RateLimited`, without a panic
/// and without a retry, and the other calls of the client are held no longer than
/// `max_delay`.
fn hostile(retry_after: Duration) -> ServerConfig {
    let faults = Faults::new(1).rule(
        Fault::RateLimited { retry_after },
        1.0,
        Some("GET"),
        "/v1/jobs/*",
    );
    ServerConfig::new().faults(faults)
}

const HOSTILE: [Duration; 2] = [
    Duration::from_secs(u64::MAX),
    Duration::from_secs(100_000_000),
];

fn max_delay() -> RetryPolicy {
    RetryPolicy::default().max_delay(Duration::from_millis(300))
}

fn check_hostile(err: &Error, asked: Duration, took: Duration) {
    match err {
        Error::RateLimited { retry_after, .. } => assert_eq!(*retry_after, Some(asked)),
        other => panic!("{other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.contains(&format!("retry after {} s", asked.as_secs())),
        "{text}"
    );
    assert!(took < Duration::from_millis(250), "ended at once: {took:?}");
}

#[test]
fn a_hostile_retry_after_ends_the_call_and_holds_no_one_blocking() {
    for asked in HOSTILE {
        let server = jobwire_server::spawn_blocking_server(hostile(asked)).unwrap();
        let (client, attempts) = blocking_client(&server, max_delay());
        let started = std::time::Instant::now();
        let err = client.get_job("job_x").unwrap_err();
        check_hostile(&err, asked, started.elapsed());
        assert_eq!(attempts.lock().unwrap().len(), 1, "not retried");
        let started = std::time::Instant::now();
        assert_eq!(client.clone().health().unwrap().status, "ok");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        server.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_retry_after_ends_the_call_and_holds_no_one_async() {
    for asked in HOSTILE {
        let server = jobwire_server::spawn(hostile(asked)).await.unwrap();
        let (client, attempts) = async_client(&server, max_delay());
        let started = std::time::Instant::now();
        let err = client.get_job("job_x").await.unwrap_err();
        check_hostile(&err, asked, started.elapsed());
        assert_eq!(attempts.lock().unwrap().len(), 1, "not retried");
        let started = std::time::Instant::now();
        assert_eq!(client.clone().health().await.unwrap().status, "ok");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        server.shutdown().await;
    }
}
