//! Events and waiting by push in the async facade, against the real server over real
//! sockets: `job.events()`, `client.events()`, waits woken by `done`, the shared stream
//! (connections counted at the server), resumption after server-side cuts, the watchdog,
//! and the long-poll fallback.

// Each test owns its runtime; the lock below is held for a whole test on purpose.
#![allow(clippy::await_holding_lock)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use jobwire::transport::{AsyncBody, AsyncTransport, HyperTransport};
use jobwire::{Client, EventKind, JobEvent, JobStatus, TransportError};
use jobwire_server::{spawn, ServerConfig, ServerHandle};
use serde_json::json;

/// These tests measure connections and timings: one at a time, so that they do not load
/// the machine for each other (the test harness runs a file's tests in parallel).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The requests a client sent, as "METHOD /path".
type Log = Arc<Mutex<Vec<String>>>;

/// A client whose requests go through the real transport and are logged; `refuse_events`
/// plays a proxy that does not pass event streams (404 for them).
fn client_for(
    server: &ServerHandle,
    config: impl FnOnce(jobwire::ClientBuilder) -> jobwire::ClientBuilder,
    refuse_events: bool,
) -> (Client, Log) {
    let log: Log = Arc::default();
    let seen = log.clone();
    // One idle connection kept: hyper may take back a finished request's connection a
    // moment late, and more idle ones would blur what the waits themselves hold.
    let inner = HyperTransport::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let transport = move |req: http::Request<Bytes>| {
        let line = format!("{} {}", req.method(), req.uri().path());
        seen.lock().unwrap().push(line.clone());
        let refused = refuse_events && line.ends_with("/events");
        let inner = inner.clone();
        async move {
            if refused {
                let answer = http::Response::builder()
                    .status(404)
                    .body(AsyncBody::from("no such route here"))
                    .unwrap();
                return Ok::<_, TransportError>(answer);
            }
            inner.send(req).await
        }
    };
    let builder = Client::builder()
        .base_url(server.url())
        .token(server.token())
        .transport(transport);
    (config(builder).build().unwrap(), log)
}

fn count(log: &Log, pred: impl Fn(&str) -> bool) -> usize {
    log.lock().unwrap().iter().filter(|l| pred(l)).count()
}

/// The kinds of a `steps` job's events, in order.
fn steps_kinds(n: usize) -> Vec<&'static str> {
    let mut want = vec!["status", "status"];
    for _ in 0..n {
        want.extend(["progress", "log", "output"]);
    }
    want.extend(["status", "done"]);
    want
}

fn kind(event: &JobEvent) -> &'static str {
    match event.kind {
        EventKind::Status(_) => "status",
        EventKind::Progress { .. } => "progress",
        EventKind::Log(_) => "log",
        EventKind::Output(_) => "output",
        EventKind::Done(_) => "done",
        _ => "other",
    }
}

/// Checks a `steps` job's whole event history: every event once, in order, the output
/// chunks adding up to the job's output.
fn check_steps(events: &[JobEvent], n: usize) {
    let kinds: Vec<&str> = events.iter().map(kind).collect();
    assert_eq!(kinds, steps_kinds(n));
    assert!(events.windows(2).all(|w| w[0].id < w[1].id), "ids increase");
    let text: String = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::Output(chunk) => Some(chunk.as_str()),
            _ => None,
        })
        .collect();
    let done = events.last().unwrap().done().unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.output.as_ref().unwrap()["text"], text.as_str());
    let fractions: Vec<f64> = events
        .iter()
        .filter_map(|e| match e.kind {
            EventKind::Progress { fraction, .. } => Some(fraction),
            _ => None,
        })
        .collect();
    assert_eq!(fractions.last(), Some(&1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn job_events_yield_everything_then_done_also_across_server_side_cuts() {
    let _serial = one_at_a_time();
    // The server ends every stream after 4 events: the client must resume each time.
    let server = spawn(ServerConfig::new().max_events_per_stream(4))
        .await
        .unwrap();
    let (client, log) = client_for(&server, |b| b, false);
    let job = client
        .submit("steps", &json!({"steps": 6, "interval_ms": 20}))
        .await
        .unwrap();
    let events: Vec<JobEvent> = job.events().try_collect().await.unwrap();
    check_steps(&events, 6);
    let path = format!("GET /v1/jobs/{}/events", job.id());
    let connections = count(&log, |l| l == path);
    assert!(connections >= 6, "resumed {connections} times");

    // After the job finished, its events are still there: the same story again.
    let again: Vec<JobEvent> = job.events().try_collect().await.unwrap();
    assert_eq!(again, events);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_multiplexed_stream_filters_by_service_and_job() {
    let _serial = one_at_a_time();
    let server = spawn(ServerConfig::new()).await.unwrap();
    let (client, _) = client_for(&server, |b| b, false);
    let echo = client.submit("echo", &json!("e")).await.unwrap();
    let steps = client
        .submit("steps", &json!({"steps": 2, "interval_ms": 10}))
        .await
        .unwrap();
    let mut only_steps = client.events().service("steps").after(0);
    let mut seen = Vec::new();
    while let Some(event) = only_steps.next().await {
        let event = event.unwrap();
        let finished = event.done().is_some();
        seen.push(event);
        if finished {
            break;
        }
    }
    assert!(seen.iter().all(|e| e.job_id == steps.id()));
    check_steps(&seen, 2);
    let mut only_echo = client.events().job(echo.id()).after(0);
    let first = only_echo.next().await.unwrap().unwrap();
    assert_eq!(first.job_id, echo.id());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_job_finishing_50ms_after_submit_is_noticed_at_once() {
    let _serial = one_at_a_time();
    let server = spawn(ServerConfig::new()).await.unwrap();
    let (client, log) = client_for(&server, |b| b, false);
    for _ in 0..5 {
        let mut job = client
            .submit("sleep", &json!({"duration_seconds": 0.05}))
            .await
            .unwrap();
        let submitted = Instant::now();
        job.wait().await.unwrap();
        let took = submitted.elapsed();
        assert_eq!(job.status(), &JobStatus::Succeeded);
        // A poll every second (or half second) could not do this.
        assert!(took < Duration::from_millis(250), "noticed after {took:?}");
    }
    // Woken by events, not by long-polls.
    assert_eq!(count(&log, |l| l.starts_with("GET /v1/jobs/")), 0);
    assert!(count(&log, |l| l == "GET /v1/events") >= 1);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_thousand_waits_hold_at_most_two_connections() {
    let _serial = one_at_a_time();
    let server = spawn(ServerConfig::new()).await.unwrap();
    let (client, log) = client_for(&server, |b| b, false);
    let n = 2000;
    // Submitted one after another over one pooled connection.
    let mut jobs = Vec::with_capacity(n);
    for _ in 0..n {
        jobs.push(
            client
                .submit("sleep", &json!({"duration_seconds": 2.0}))
                .await
                .unwrap(),
        );
    }
    // Sampled at the server while the waits are under way.
    let most = AtomicUsize::new(0);
    let started = Instant::now();
    let all_ok = {
        let waits = futures_util::future::join_all(jobs.iter_mut().map(|job| job.wait()));
        tokio::pin!(waits);
        loop {
            tokio::select! {
                results = &mut waits => break results.iter().all(|r| r.is_ok()),
                () = tokio::time::sleep(Duration::from_millis(5)) => {
                    most.fetch_max(server.connections(), Ordering::Relaxed);
                }
            }
        }
    };
    let makespan = started.elapsed();
    assert!(all_ok);
    assert!(jobs.iter().all(|j| j.status() == &JobStatus::Succeeded));
    let most = most.load(Ordering::Relaxed);
    assert!(
        most <= 2,
        "{most} connections at the server while {n} jobs were awaited"
    );
    // One stream for all; a wait that registers from before the stream's start (threads
    // and tasks register in any order) restarts it from there, rarely.
    let streams = count(&log, |l| l == "GET /v1/events");
    assert!((1..=4).contains(&streams), "{streams} streams");
    assert_eq!(
        count(&log, |l| l.starts_with("GET /v1/jobs/")),
        0,
        "no polls"
    );
    assert!(makespan < Duration::from_secs(10), "{makespan:?}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_watchdog_reconnects_a_silent_stream() {
    let _serial = one_at_a_time();
    // Keep-alives every minute, a client that gives up on silence after 300 ms.
    let server = spawn(ServerConfig::new().heartbeat(Duration::from_secs(60)))
        .await
        .unwrap();
    let (client, log) = client_for(
        &server,
        |b| b.stream_idle_timeout(Duration::from_millis(300)),
        false,
    );
    let job = client
        .submit("steps", &json!({"steps": 3, "interval_ms": 700}))
        .await
        .unwrap();
    let events: Vec<JobEvent> = job.events().try_collect().await.unwrap();
    check_steps(&events, 3);
    let path = format!("GET /v1/jobs/{}/events", job.id());
    assert!(count(&log, |l| l == path) >= 3, "{:?}", log.lock().unwrap());

    // The shared stream of the waits too.
    let mut job = client
        .submit("sleep", &json!({"duration_seconds": 1.0}))
        .await
        .unwrap();
    job.wait().await.unwrap();
    assert_eq!(job.status(), &JobStatus::Succeeded);
    assert!(count(&log, |l| l == "GET /v1/events") >= 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn without_event_streams_waits_fall_back_to_long_polls() {
    let _serial = one_at_a_time();
    let server = spawn(ServerConfig::new()).await.unwrap();
    let (client, log) = client_for(&server, |b| b, true);
    let mut job = client
        .submit("sleep", &json!({"duration_seconds": 0.2}))
        .await
        .unwrap();
    job.wait().await.unwrap();
    assert_eq!(job.status(), &JobStatus::Succeeded);
    assert!(count(&log, |l| l.starts_with("GET /v1/jobs/job_")) >= 1);
    // A timeout still holds, and the stream is not asked again meanwhile.
    let mut slow = client
        .submit("sleep", &json!({"duration_seconds": 30}))
        .await
        .unwrap();
    let started = Instant::now();
    let err = slow.wait_for(Duration::from_millis(300)).await.unwrap_err();
    assert!(matches!(err, jobwire::Error::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(count(&log, |l| l == "GET /v1/events"), 1);
    // A job's own stream reports the refusal as an error.
    let err = slow.events().next().await.unwrap().unwrap_err();
    assert!(matches!(err, jobwire::Error::NotFound { .. }), "{err}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wait_that_times_out_leaves_the_stream_to_the_others() {
    let _serial = one_at_a_time();
    let server = spawn(ServerConfig::new()).await.unwrap();
    let (client, _) = client_for(&server, |b| b, false);
    let mut long = client
        .submit("sleep", &json!({"duration_seconds": 30}))
        .await
        .unwrap();
    let mut short = client
        .submit("sleep", &json!({"duration_seconds": 0.3}))
        .await
        .unwrap();
    let (a, b) = tokio::join!(long.wait_for(Duration::from_millis(100)), short.wait());
    assert!(matches!(a, Err(jobwire::Error::Timeout { .. })));
    assert_eq!(b.unwrap().status, JobStatus::Succeeded);
    // Dropping a wait mid-way deregisters it; nothing is left behind.
    let dropped = tokio::time::timeout(Duration::from_millis(50), long.wait()).await;
    assert!(dropped.is_err());
    long.cancel().await.unwrap();
    server.shutdown().await;
}
