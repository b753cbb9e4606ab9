//! Many jobs at once through both facades, over real sockets: `run_all` in input order
//! with each failure paired with its input, `run_unordered` in completion order and never
//! more than `concurrency` in flight (counted at the server), a fail-fast batch that
//! cancels its siblings' server-side jobs, a guard that cancels on drop and not after
//! `disarm`, the progress hook, and the client-wide in-flight and rate limits, held
//! across clones (measured at the server).
//!
//! What reads the same in both facades is written once, over the test interface of
//! `twins` that both facades implement; running clones at once is written out in each.

mod twins;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jobwire_core::batch::BatchEvent;
use jobwire_core::{Error, JobError, JobStatus};
use jobwire_server::{ServerConfig, ServiceSpec};
use serde_json::{json, Value};
use twins::{Guard as _, Job as _, Sdk, Service as _};

/// What the `gauge` service lets a test see from outside: jobs running now, the most
/// ever running at once, and a count of jobs that finished.
#[derive(Default)]
struct Gauge {
    running: AtomicUsize,
    most: AtomicUsize,
    finished: AtomicUsize,
}

/// Takes one off `running` however the job ends (a cancel drops the future).
struct Running(Arc<Gauge>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A server with `gauge`: `{"ms": n, "fail": bool}` runs n ms, then fails if asked, else
/// answers `{"seq": <finish order>, "ms": n}`.
fn config(gauge: &Arc<Gauge>) -> ServerConfig {
    let gauge = gauge.clone();
    let spec = ServiceSpec::async_fn("gauge", move |input, _ctx| {
        let gauge = gauge.clone();
        async move {
            let now = gauge.running.fetch_add(1, Ordering::SeqCst) + 1;
            gauge.most.fetch_max(now, Ordering::SeqCst);
            let _running = Running(gauge.clone());
            let ms = input["ms"].as_u64().unwrap_or(0);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            if input["fail"] == json!(true) {
                return Err(JobError::new("asked to fail"));
            }
            let seq = gauge.finished.fetch_add(1, Ordering::SeqCst);
            Ok(json!({ "seq": seq, "ms": ms }))
        }
    });
    ServerConfig::new().service(spec)
}

fn gauge_input(ms: u64, fail: bool) -> Value {
    json!({ "ms": ms, "fail": fail })
}

/// Seconds between the first and the last `created_at` of `jobs` (RFC 3339, UTC, one
/// fixed width with microseconds: `2026-12-01T07:37:03.344878Z`).
fn created_span(created: &[String]) -> f64 {
    let seconds = |t: &str| -> f64 {
        let time = &t[11..t.len() - 1];
        let mut parts = time.split(':');
        let h: f64 = parts.next().unwrap().parse().unwrap();
        let m: f64 = parts.next().unwrap().parse().unwrap();
        let s: f64 = parts.next().unwrap().parse().unwrap();
        h * 3600.0 + m * 60.0 + s
    };
    let times: Vec<f64> = created.iter().map(|t| seconds(t)).collect();
    let (min, max) = times
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), t| (lo.min(*t), hi.max(*t)));
    max - min
}

/// The statuses of every job of `service`, newest first.
fn statuses<S: Sdk>(sdk: &S, service: &str) -> Vec<JobStatus> {
    let page = sdk.jobs_page(service, 1000).unwrap();
    page.items.into_iter().map(|job| job.status).collect()
}

/// Outcomes in input order, each failure with its input; the summary counts them.
fn run_all_keeps_order<S: Sdk>(sdk: &S) {
    let gauge = sdk.service("gauge").unwrap();
    let inputs = vec![
        gauge_input(150, false),
        gauge_input(10, true),
        json!({"ms": "not a number"}),
        gauge_input(10, false),
        gauge_input(80, false),
    ];
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = events.clone();
    let hook: twins::Hook = Box::new(move |e| seen.lock().unwrap().push(e.clone()));
    let report = gauge.run_all(inputs, Some(5), Some(hook));
    let indices: Vec<usize> = report.results.iter().map(|(i, _)| *i).collect();
    assert_eq!(indices, [0, 1, 2, 3, 4]);
    let ms: Vec<Option<u64>> = report
        .results
        .iter()
        .map(|(_, r)| r.as_ref().ok().map(|v| v["ms"].as_u64().unwrap()))
        .collect();
    assert_eq!(ms, [Some(150), None, Some(0), Some(10), Some(80)]);
    match &report.results[1].1 {
        Err(Error::JobFailed { error, .. }) => assert_eq!(error.message, "asked to fail"),
        other => panic!("input 1: {other:?}"),
    }
    assert_eq!(report.summary.succeeded, 4);
    assert_eq!(report.summary.failed, 1);
    assert_eq!(report.summary.by_kind.get("job_failed"), Some(&1));
    // The hook heard of each input's submit and end.
    let events = events.lock().unwrap();
    let submitted = events
        .iter()
        .filter(|e| matches!(e, BatchEvent::Submitted { .. }))
        .count();
    let ended = events
        .iter()
        .filter(|e| matches!(e, BatchEvent::Finished { .. } | BatchEvent::Failed { .. }))
        .count();
    assert_eq!((submitted, ended), (5, 5));
}

/// An input the service refuses fails alone, as a typed error of its own.
fn a_refused_input_fails_alone<S: Sdk>(sdk: &S) {
    let sleep = sdk.service("sleep").unwrap();
    let inputs = vec![
        json!({"duration_seconds": 0.01}),
        json!({"duration_seconds": "x"}),
    ];
    let report = sleep.run_all(inputs, None, None);
    assert!(report.results[0].1.is_ok());
    assert!(matches!(report.results[1].1, Err(Error::Validation { .. })));
    assert_eq!(report.summary.by_kind.get("validation"), Some(&1));
}

/// Results as they complete, never more than `concurrency` at the server.
fn run_unordered_in_completion_order<S: Sdk>(sdk: &S, gauge: &Gauge) {
    let service = sdk.service("gauge").unwrap();
    let ms = [400u64, 100, 250, 30, 330, 180, 60, 120];
    let inputs: Vec<Value> = ms.iter().map(|&ms| gauge_input(ms, false)).collect();
    gauge.most.store(0, Ordering::SeqCst);
    let results = service.run_unordered(inputs, 3);
    assert_eq!(results.len(), ms.len());
    let seqs: Vec<u64> = results
        .iter()
        .map(|(_, r)| r.as_ref().unwrap()["seq"].as_u64().unwrap())
        .collect();
    let mut sorted = seqs.clone();
    sorted.sort_unstable();
    assert_eq!(seqs, sorted, "yielded in the order the jobs finished");
    let first: Vec<usize> = results.iter().map(|(i, _)| *i).take(2).collect();
    assert_eq!(first, [1, 3], "the short ones of the first three end first");
    assert_eq!(
        gauge.most.load(Ordering::SeqCst),
        3,
        "at most three at the server"
    );
}

/// The first error cancels the sibling jobs on the server, and nothing more starts.
fn fail_fast_cancels_siblings<S: Sdk>(sdk: &S) {
    let service = sdk.service("gauge").unwrap();
    let mut inputs: Vec<Value> = (0..10).map(|_| gauge_input(20_000, false)).collect();
    inputs[2] = gauge_input(100, true);
    let started = std::time::Instant::now();
    match service.try_run_all(inputs, 4) {
        Err(Error::JobFailed { error, .. }) => assert_eq!(error.message, "asked to fail"),
        other => panic!("expected the failure, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let statuses = statuses(sdk, "gauge");
    assert_eq!(
        statuses.len(),
        4,
        "no job started after the failure: {statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == JobStatus::Failed).count(),
        1
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == JobStatus::Cancelled)
            .count(),
        3,
        "{statuses:?}"
    );
}

/// A guard cancels its jobs when dropped, and leaves them be after `disarm`.
fn guard_cancels_on_drop_unless_disarmed<S: Sdk>(sdk: &S) {
    let long = json!({"duration_seconds": 60});
    let mut kept = sdk.submit("sleep", &long).unwrap();
    let mut guard = sdk.guard();
    let mut dropped = guard.add(sdk.submit("sleep", &long).unwrap());
    let mut also = guard.add(sdk.submit("sleep", &long).unwrap());
    drop(guard);
    for job in [&mut dropped, &mut also] {
        let started = std::time::Instant::now();
        while job.refresh().unwrap().status != JobStatus::Cancelled {
            assert!(started.elapsed() < Duration::from_secs(10), "not cancelled");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    let mut guard = sdk.guard();
    let mut disarmed = guard.add(sdk.submit("sleep", &long).unwrap());
    guard.disarm();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(disarmed.refresh().unwrap().status, JobStatus::Running);
    assert_eq!(kept.refresh().unwrap().status, JobStatus::Running);
    disarmed.cancel().unwrap();
    kept.cancel().unwrap();
}

/// The hook hears each job's progress, enough to drive a bar.
fn the_hook_hears_progress<S: Sdk>(sdk: &S) {
    let steps = sdk.service("steps").unwrap();
    let inputs: Vec<Value> = (0..3)
        .map(|_| json!({"steps": 4, "interval_ms": 20}))
        .collect();
    let progress = Arc::new(AtomicUsize::new(0));
    let heard = progress.clone();
    let hook: twins::Hook = Box::new(move |e| {
        if let BatchEvent::Progress { fraction, .. } = e {
            assert!((0.0..=1.0).contains(fraction));
            heard.fetch_add(1, Ordering::SeqCst);
        }
    });
    let report = steps.run_all(inputs, Some(3), Some(hook));
    assert_eq!(report.summary.succeeded, 3);
    assert_eq!(
        progress.load(Ordering::SeqCst),
        12,
        "four steps of three jobs"
    );
}

mod async_facade {
    use super::*;
    use jobwire::Client;
    use jobwire_server::{spawn, ServerHandle};
    use twins::{runtime, Async};

    async fn start(
        build: impl Fn(jobwire::ClientBuilder) -> jobwire::ClientBuilder,
    ) -> (ServerHandle, Client, Arc<Gauge>) {
        let gauge = Arc::default();
        let server = spawn(config(&gauge)).await.unwrap();
        let builder = Client::builder()
            .base_url(server.url())
            .token(server.token());
        let client = build(builder).build().unwrap();
        (server, client, gauge)
    }

    /// The scenarios' interface over a client awaited on the shared runtime.
    fn twin() -> (ServerHandle, Async, Arc<Gauge>) {
        let (server, client, gauge) = runtime().block_on(start(|b| b));
        let sdk = Async {
            client,
            runtime: runtime(),
        };
        (server, sdk, gauge)
    }

    #[test]
    fn batches() {
        let (server, sdk, gauge) = twin();
        run_all_keeps_order(&sdk);
        a_refused_input_fails_alone(&sdk);
        run_unordered_in_completion_order(&sdk, &gauge);
        the_hook_hears_progress(&sdk);
        runtime().block_on(server.shutdown());
    }

    #[test]
    fn fail_fast() {
        let (server, sdk, _) = twin();
        fail_fast_cancels_siblings(&sdk);
        runtime().block_on(server.shutdown());
    }

    #[test]
    fn guard() {
        let (server, sdk, _) = twin();
        guard_cancels_on_drop_unless_disarmed(&sdk);
        runtime().block_on(server.shutdown());
    }

    /// Twelve calls from two clones, each holding its request while its job runs: at
    /// most three jobs run at the server at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_in_flight_limit_holds_across_clones() {
        let (server, client, gauge) = start(|b| b.max_in_flight(3)).await;
        let clones = [client.clone(), client.clone()];
        let calls = clones.iter().flat_map(|c| {
            (0..6).map(move |_| async move {
                c.run::<_, Value>("gauge", &gauge_input(150, false)).await
            })
        });
        for outcome in futures_util::future::join_all(calls).await {
            outcome.unwrap();
        }
        let most = gauge.most.load(Ordering::SeqCst);
        assert!((2..=3).contains(&most), "{most} at once");
        server.shutdown().await;
    }

    /// Twenty submits from two clones at 20 a second reach the server over about a
    /// second.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_rate_limit_holds_across_clones() {
        let (server, client, _) = start(|b| b.rate_limit(20.0)).await;
        let clones = [client.clone(), client.clone()];
        let submits = clones.iter().flat_map(|c| {
            (0..10).map(move |i| async move { c.submit("echo", &json!({ "i": i })).await })
        });
        let jobs = futures_util::future::join_all(submits).await;
        let created: Vec<String> = jobs
            .into_iter()
            .map(|job| job.unwrap().job().created_at.clone())
            .collect();
        let span = created_span(&created);
        assert!(span >= 0.85, "20 submits in {span} s");
        server.shutdown().await;
    }
}

mod blocking_facade {
    use super::*;
    use jobwire_blocking::Client;
    use jobwire_server::{spawn_blocking_server, BlockingServerHandle};
    use twins::Blocking;

    fn start(
        build: impl Fn(jobwire_blocking::ClientBuilder) -> jobwire_blocking::ClientBuilder,
    ) -> (BlockingServerHandle, Client, Arc<Gauge>) {
        let gauge = Arc::default();
        let server = spawn_blocking_server(config(&gauge)).unwrap();
        let builder = Client::builder()
            .base_url(server.url())
            .token(server.token());
        let client = build(builder).build().unwrap();
        (server, client, gauge)
    }

    #[test]
    fn batches() {
        let (server, client, gauge) = start(|b| b);
        let sdk = Blocking(client);
        run_all_keeps_order(&sdk);
        a_refused_input_fails_alone(&sdk);
        run_unordered_in_completion_order(&sdk, &gauge);
        the_hook_hears_progress(&sdk);
        server.shutdown();
    }

    #[test]
    fn fail_fast() {
        let (server, client, _) = start(|b| b);
        fail_fast_cancels_siblings(&Blocking(client));
        server.shutdown();
    }

    #[test]
    fn guard() {
        let (server, client, _) = start(|b| b);
        guard_cancels_on_drop_unless_disarmed(&Blocking(client));
        server.shutdown();
    }

    #[test]
    fn the_in_flight_limit_holds_across_clones() {
        let (server, client, gauge) = start(|b| b.max_in_flight(3));
        std::thread::scope(|scope| {
            for clone in [client.clone(), client.clone()] {
                for _ in 0..6 {
                    let clone = clone.clone();
                    scope.spawn(move || {
                        clone
                            .run::<_, Value>("gauge", &gauge_input(150, false))
                            .unwrap()
                    });
                }
            }
        });
        let most = gauge.most.load(Ordering::SeqCst);
        assert!((2..=3).contains(&most), "{most} at once");
        server.shutdown();
    }

    #[test]
    fn the_rate_limit_holds_across_clones() {
        let (server, client, _) = start(|b| b.rate_limit(20.0));
        let created: Vec<String> = std::thread::scope(|scope| {
            let submits: Vec<_> = [client.clone(), client.clone()]
                .into_iter()
                .flat_map(|clone| (0..10).map(move |i| (clone.clone(), i)).collect::<Vec<_>>())
                .map(|(clone, i)| {
                    scope.spawn(move || {
                        let job = clone.submit("echo", &json!({ "i": i })).unwrap();
                        job.job().created_at.clone()
                    })
                })
                .collect();
            submits.into_iter().map(|s| s.join().unwrap()).collect()
        });
        let span = created_span(&created);
        assert!(span >= 0.85, "20 submits in {span} s");
        server.shutdown();
    }
}
