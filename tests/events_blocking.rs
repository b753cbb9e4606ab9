//! Events and waiting by push in the blocking facade, against the real server over real
//! sockets — the same checks as `events_async.rs`, with threads and iterators and no
//! async runtime in the client.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use jobwire_blocking::transport::{Body, Transport, UreqTransport};
use jobwire_blocking::{Client, EventKind, JobEvent, JobStatus, TransportError};
use jobwire_server::{spawn_blocking_server, BlockingServerHandle, ServerConfig};
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
    server: &BlockingServerHandle,
    config: impl FnOnce(jobwire_blocking::ClientBuilder) -> jobwire_blocking::ClientBuilder,
    refuse_events: bool,
) -> (Client, Log) {
    let log: Log = Arc::default();
    let seen = log.clone();
    // One idle connection kept, as in the async tests.
    let inner = UreqTransport::builder().max_idle_per_host(1).build();
    let transport = move |req: http::Request<Bytes>| {
        let line = format!("{} {}", req.method(), req.uri().path());
        seen.lock().unwrap().push(line.clone());
        if refuse_events && line.ends_with("/events") {
            return Ok::<_, TransportError>(
                http::Response::builder()
                    .status(404)
                    .body(Body::from("no such route here"))
                    .unwrap(),
            );
        }
        inner.send(req)
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
    let mut want = vec!["status", "status"];
    for _ in 0..n {
        want.extend(["progress", "log", "output"]);
    }
    want.extend(["status", "done"]);
    assert_eq!(events.iter().map(kind).collect::<Vec<_>>(), want);
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
}

#[test]
fn job_events_yield_everything_then_done_also_across_server_side_cuts() {
    let _serial = one_at_a_time();
    let server = spawn_blocking_server(ServerConfig::new().max_events_per_stream(4)).unwrap();
    let (client, log) = client_for(&server, |b| b, false);
    let job = client
        .submit("steps", &json!({"steps": 6, "interval_ms": 20}))
        .unwrap();
    let events: Vec<JobEvent> = job.events().collect::<Result<_, _>>().unwrap();
    check_steps(&events, 6);
    let path = format!("GET /v1/jobs/{}/events", job.id());
    assert!(count(&log, |l| l == path) >= 6);
    let again: Vec<JobEvent> = job.events().collect::<Result<_, _>>().unwrap();
    assert_eq!(again, events);
    server.shutdown();
}

#[test]
fn the_multiplexed_stream_filters_by_service() {
    let _serial = one_at_a_time();
    let server = spawn_blocking_server(ServerConfig::new()).unwrap();
    let (client, _) = client_for(&server, |b| b, false);
    client.submit("echo", &json!("e")).unwrap();
    let steps = client
        .submit("steps", &json!({"steps": 2, "interval_ms": 10}))
        .unwrap();
    let mut seen = Vec::new();
    for event in client.events().service("steps").after(0) {
        let event = event.unwrap();
        let finished = event.done().is_some();
        seen.push(event);
        if finished {
            break;
        }
    }
    assert!(seen.iter().all(|e| e.job_id == steps.id()));
    check_steps(&seen, 2);
    server.shutdown();
}

#[test]
fn a_job_finishing_50ms_after_submit_is_noticed_at_once() {
    let _serial = one_at_a_time();
    let server = spawn_blocking_server(ServerConfig::new()).unwrap();
    let (client, log) = client_for(&server, |b| b, false);
    for _ in 0..5 {
        let mut job = client
            .submit("sleep", &json!({"duration_seconds": 0.05}))
            .unwrap();
        let submitted = Instant::now();
        job.wait().unwrap();
        let took = submitted.elapsed();
        assert_eq!(job.status(), &JobStatus::Succeeded);
        assert!(took < Duration::from_millis(250), "noticed after {took:?}");
    }
    assert_eq!(count(&log, |l| l.starts_with("GET /v1/jobs/")), 0);
    assert!(count(&log, |l| l == "GET /v1/events") >= 1);
    server.shutdown();
}

#[test]
fn two_thousand_waits_hold_at_most_two_connections() {
    let _serial = one_at_a_time();
    let server = spawn_blocking_server(ServerConfig::new()).unwrap();
    let (client, log) = client_for(&server, |b| b, false);
    let n = 2000;
    let mut jobs = Vec::with_capacity(n);
    for _ in 0..n {
        jobs.push(
            client
                .submit("sleep", &json!({"duration_seconds": 2.0}))
                .unwrap(),
        );
    }
    let most = AtomicUsize::new(0);
    let waiting = AtomicBool::new(true);
    let started = Instant::now();
    let all_ok = std::thread::scope(|scope| {
        scope.spawn(|| {
            while waiting.load(Ordering::Relaxed) {
                most.fetch_max(server.connections(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let waits: Vec<_> = jobs
            .iter_mut()
            .map(|job| {
                std::thread::Builder::new()
                    .stack_size(128 * 1024)
                    .spawn_scoped(scope, move || job.wait().is_ok())
                    .unwrap()
            })
            .collect();
        let all_ok = waits.into_iter().all(|w| w.join().unwrap());
        waiting.store(false, Ordering::Relaxed);
        all_ok
    });
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
    server.shutdown();
}

#[test]
fn the_watchdog_reconnects_a_silent_stream() {
    let _serial = one_at_a_time();
    let server =
        spawn_blocking_server(ServerConfig::new().heartbeat(Duration::from_secs(60))).unwrap();
    let (client, log) = client_for(
        &server,
        |b| b.stream_idle_timeout(Duration::from_millis(300)),
        false,
    );
    let job = client
        .submit("steps", &json!({"steps": 3, "interval_ms": 700}))
        .unwrap();
    let events: Vec<JobEvent> = job.events().collect::<Result<_, _>>().unwrap();
    check_steps(&events, 3);
    let path = format!("GET /v1/jobs/{}/events", job.id());
    assert!(count(&log, |l| l == path) >= 3, "{:?}", log.lock().unwrap());

    let mut job = client
        .submit("sleep", &json!({"duration_seconds": 1.0}))
        .unwrap();
    job.wait().unwrap();
    assert_eq!(job.status(), &JobStatus::Succeeded);
    assert!(count(&log, |l| l == "GET /v1/events") >= 2);
    server.shutdown();
}

#[test]
fn without_event_streams_waits_fall_back_to_long_polls() {
    let _serial = one_at_a_time();
    let server = spawn_blocking_server(ServerConfig::new()).unwrap();
    let (client, log) = client_for(&server, |b| b, true);
    let mut job = client
        .submit("sleep", &json!({"duration_seconds": 0.2}))
        .unwrap();
    job.wait().unwrap();
    assert_eq!(job.status(), &JobStatus::Succeeded);
    assert!(count(&log, |l| l.starts_with("GET /v1/jobs/job_")) >= 1);
    let mut slow = client
        .submit("sleep", &json!({"duration_seconds": 30}))
        .unwrap();
    let started = Instant::now();
    let err = slow.wait_for(Duration::from_millis(300)).unwrap_err();
    assert!(
        matches!(err, jobwire_blocking::Error::Timeout { .. }),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(count(&log, |l| l == "GET /v1/events"), 1);
    let err = slow.events().next().unwrap().unwrap_err();
    assert!(
        matches!(err, jobwire_blocking::Error::NotFound { .. }),
        "{err}"
    );
    slow.cancel().unwrap();
    server.shutdown();
}
