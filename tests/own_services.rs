//! Services users bring, driven through both facades over real sockets: command services
//! registered over the API (`POST /v1/services`) and retired (`DELETE`), and handlers an
//! embedding program gives the server — each run, watched through its events, and
//! stopped for real by a cancel.
//!
//! The scenarios that read the same in both facades are written once, over the test
//! interface of `twins` that both facades implement, and run through each; what
//! differs — running things at once — is written out in each.
#![cfg(unix)]

mod twins;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobwire_core::event::EventKind;
use jobwire_core::{CommandSpec, Error, JobStatus, ServiceSpec};
use jobwire_server::ServerConfig;
use serde_json::{json, Value};
use twins::{until, Job as _, Sdk, Service as _};

/// The token of the tenant that registers services, and of one that must not see them.
const TOKEN: &str = "token-a";
const OTHER_TOKEN: &str = "token-b";

/// What the embedded handlers let a test see from outside.
#[derive(Default)]
struct Probes {
    /// Ticks the async handler made.
    ticks: AtomicUsize,
    /// The blocking handler is spinning.
    spinning: AtomicBool,
    /// The blocking handler returned after seeing its job cancelled.
    saw_cancel: AtomicBool,
}

/// A server for two tenants with an async handler (`ticker`) and a blocking one
/// (`spinner`), and command services allowed when `allow_commands`.
fn config(probes: &Arc<Probes>, allow_commands: bool) -> ServerConfig {
    let ticks = probes.clone();
    let ticker = jobwire_server::ServiceSpec::async_fn("ticker", move |_input, ctx| {
        let probes = ticks.clone();
        async move {
            for i in 0u64.. {
                probes.ticks.fetch_add(1, Ordering::SeqCst);
                ctx.progress(0.5, format!("tick {i}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(Value::Null)
        }
    });
    let spins = probes.clone();
    let spinner = jobwire_server::ServiceSpec::blocking_fn("spinner", move |_input, ctx| {
        spins.spinning.store(true, Ordering::SeqCst);
        while !ctx.is_cancelled() {
            std::thread::sleep(Duration::from_millis(1));
        }
        spins.saw_cancel.store(true, Ordering::SeqCst);
        Ok(Value::Null)
    });
    ServerConfig::new()
        .token(TOKEN, "team-a")
        .token(OTHER_TOKEN, "team-b")
        .service(ticker)
        .service(spinner)
        .allow_commands(allow_commands)
}

/// A `/bin/sh -c script` service named `name`.
fn sh(name: &str, script: &str) -> ServiceSpec {
    ServiceSpec::command(
        name,
        CommandSpec::new("sh")
            .arg("-c")
            .arg(script)
            .env("PATH", "/usr/bin:/bin")
            .timeout(Duration::from_secs(20)),
    )
}

#[path = "../crates/jobwire-server/tests/support/process.rs"]
mod process;
use process::alive;

/// The pids a script wrote to stderr (`echo $$ >&2`), one per log line.
fn pid_of(line: &str) -> Option<u32> {
    line.trim().parse().ok()
}

/// 403 without `--allow-commands`: nothing is registered.
fn registration_is_refused<S: Sdk>(client: &S) {
    let refused = client.create_service(&sh("nope", "cat"));
    match refused {
        Err(Error::Forbidden { problem }) => {
            assert_eq!(problem.code, "forbidden");
            assert!(problem.detail.unwrap().contains("--allow-commands"));
        }
        other => panic!("expected Forbidden, got {other:?}"),
    }
    assert!(matches!(
        client.service("nope"),
        Err(Error::NotFound { .. })
    ));
}

/// Bad specs are 422 with each failing field, a taken name is 409, and the
/// service is its tenant's alone.
fn bad_specs_and_names<S: Sdk>(client: &S, other: &S) {
    let mut bad = ServiceSpec::command(
        "bad",
        CommandSpec::new("/no/such/program").max_concurrency(0),
    )
    .input_schema(json!({"type": "text"}));
    bad.command.timeout_seconds = Some(-1.0);
    match client.create_service(&bad) {
        Err(Error::Validation { problem }) => {
            let mut pointers: Vec<_> = problem.errors.iter().map(|e| e.pointer.as_str()).collect();
            pointers.sort_unstable();
            assert_eq!(
                pointers,
                [
                    "/command/max_concurrency",
                    "/command/program",
                    "/command/timeout_seconds",
                    "/input_schema/type"
                ]
            );
        }
        other => panic!("expected Validation, got {other:?}"),
    }
    let first = client.create_service(&sh("mine", "cat")).unwrap();
    assert_eq!(first.info().kind, "command");
    assert!(first
        .info()
        .command
        .as_ref()
        .unwrap()
        .program
        .starts_with('/'));
    let taken = client.create_service(&sh("mine", "cat"));
    assert!(matches!(taken, Err(Error::Conflict { .. })), "{taken:?}");
    let builtin = client.create_service(&sh("echo", "cat"));
    assert!(
        matches!(builtin, Err(Error::Conflict { .. })),
        "{builtin:?}"
    );
    // Another tenant neither sees it nor deletes it, and may take the name.
    assert!(matches!(other.service("mine"), Err(Error::NotFound { .. })));
    assert!(matches!(
        other.service(first.id()),
        Err(Error::NotFound { .. })
    ));
    let theirs = other.create_service(&sh("mine", "cat")).unwrap();
    assert_ne!(theirs.id(), first.id());
    // Built-ins are no one's to delete.
    let echo = client.service("echo").unwrap();
    assert!(matches!(echo.delete(), Err(Error::Forbidden { .. })));
}

/// A command job's stdout is its output, its progress lines are progress
/// events and its stderr lines log events, as they come.
fn events_of_a_command_job<S: Sdk>(client: &S) {
    let chatty = client
        .create_service(&sh(
            "chatty",
            "echo '@progress 0.25 reading'; echo 'a log line' >&2; \
         echo '@progress 0.75 writing'; echo 'another' >&2; cat",
        ))
        .unwrap();
    let job = chatty.submit(&json!({"text": "hi"})).unwrap();
    let events = job.events();
    let (mut progress, mut logs, mut done) = (Vec::new(), Vec::new(), None);
    for event in events {
        match event.unwrap().kind {
            EventKind::Progress { fraction, message } => progress.push((fraction, message)),
            EventKind::Log(line) => logs.push(line),
            EventKind::Done(job) => done = Some(job),
            _ => {}
        }
    }
    assert_eq!(
        progress,
        [(0.25, "reading".to_owned()), (0.75, "writing".to_owned())]
    );
    assert_eq!(logs, ["a log line", "another"]);
    let done = done.expect("a done event");
    assert_eq!(done.status, JobStatus::Succeeded);
    assert_eq!(done.output, Some(json!({"text": "hi"})));
}

/// A program that fails fails its job with its exit code and stderr; one that
/// never exits is stopped at its timeout.
fn failures_and_timeouts<S: Sdk>(client: &S) {
    let broken = client
        .create_service(&sh("broken", "echo 'no input for me' >&2; exit 3"))
        .unwrap();
    match broken.run(&json!(1)) {
        Err(Error::JobFailed { error, .. }) => {
            assert_eq!(error.code.as_deref(), Some("exit_status"));
            assert!(error.message.contains("exited with 3"), "{}", error.message);
            assert!(
                error.message.contains("no input for me"),
                "{}",
                error.message
            );
        }
        other => panic!("expected JobFailed, got {other:?}"),
    }
    let mut stuck = sh("stuck", "echo $$ >&2; exec sleep 60");
    stuck.command = stuck.command.timeout(Duration::from_millis(500));
    let stuck = client.create_service(&stuck).unwrap();
    let started = std::time::Instant::now();
    let mut job = stuck.submit(&json!(null)).unwrap();
    let mut pid = None;
    let events = job.events();
    for event in events {
        if let EventKind::Log(line) = event.unwrap().kind {
            pid = pid_of(&line);
        }
    }
    let job = job.wait().unwrap();
    let error = job.error.clone().unwrap();
    assert_eq!(error.code.as_deref(), Some("timeout"), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let pid = pid.expect("the program said its pid");
    until("the stuck program is gone", || !alive(pid));
}

/// A cancel stops an async handler (its future is dropped), a blocking one (it
/// sees its flag), and a command (its process and the child it started are
/// gone, by pid); each job ends cancelled.
fn cancel_stops_what_runs<S: Sdk>(client: &S, probes: &Probes) {
    let mut ticking = client.submit("ticker", &json!({})).unwrap();
    until("ticking", || probes.ticks.load(Ordering::SeqCst) >= 3);
    assert_eq!(ticking.cancel().unwrap().status, JobStatus::Cancelled);
    let at_cancel = probes.ticks.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(200));
    let after = probes.ticks.load(Ordering::SeqCst);
    assert!(after <= at_cancel + 1, "{at_cancel} ticks, then {after}");

    let mut spinning = client.submit("spinner", &json!({})).unwrap();
    until("spinning", || probes.spinning.load(Ordering::SeqCst));
    assert_eq!(spinning.cancel().unwrap().status, JobStatus::Cancelled);
    until("the blocking handler returned", || {
        probes.saw_cancel.load(Ordering::SeqCst)
    });

    let waiter = client
        .create_service(&sh("waiter", "echo $$ >&2; sleep 60 & echo $! >&2; wait"))
        .unwrap();
    let mut job = waiter.submit(&json!(null)).unwrap();
    let mut pids = Vec::new();
    let mut events = job.events();
    while pids.len() < 2 {
        let event = events.next().expect("the job runs").unwrap();
        if let EventKind::Log(line) = event.kind {
            pids.extend(pid_of(&line));
        }
    }
    assert!(pids.iter().all(|pid| alive(*pid)), "{pids:?} run");
    assert_eq!(job.cancel().unwrap().status, JobStatus::Cancelled);
    until("the program and its child are gone", || {
        !pids.iter().any(|p| alive(*p))
    });
    assert_eq!(job.wait().unwrap().status, JobStatus::Cancelled);
}

/// A service with `max_concurrency(1)` runs one job at a time: the others
/// wait `queued`, and no two runs overlap.
fn one_at_a_time<S: Sdk>(client: &S) {
    let mut spec = sh("single", "sleep 0.2; cat");
    spec.command = spec.command.max_concurrency(1);
    let single = client.create_service(&spec).unwrap();
    let mut jobs = Vec::new();
    for i in 0..3 {
        jobs.push(single.submit(&json!(i)).unwrap());
    }
    assert_eq!(jobs[2].status(), &JobStatus::Queued, "it waits for a slot");
    let mut runs = Vec::new();
    for job in &mut jobs {
        let job = job.wait().unwrap();
        assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
        runs.push((
            job.started_at.clone().unwrap(),
            job.finished_at.clone().unwrap(),
        ));
    }
    runs.sort();
    for pair in runs.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "runs overlap: {pair:?}");
    }
}

/// A deleted service is gone from reads, a submit to it is 410, its name is
/// free again, its jobs stay readable, and deleting it twice is fine.
fn delete_retires<S: Sdk>(client: &S) {
    let doomed = client.create_service(&sh("doomed", "cat")).unwrap();
    let mut job = doomed.submit(&json!("kept")).unwrap();
    assert_eq!(job.wait().unwrap().status, JobStatus::Succeeded);
    doomed.delete().unwrap();
    doomed.delete().expect("deleting twice is fine");
    assert!(matches!(
        client.service("doomed"),
        Err(Error::NotFound { .. })
    ));
    match doomed.submit(&json!(1)) {
        Err(Error::Api { status, problem }) => {
            assert_eq!((status.as_u16(), problem.code.as_str()), (410, "gone"));
        }
        other => panic!("expected 410, got {other:?}"),
    }
    assert!(matches!(
        client.submit("doomed", &json!(1)),
        Err(Error::NotFound { .. })
    ));
    let kept = client.job(job.id()).unwrap();
    assert_eq!(kept.job().output, Some(json!("kept")));
    let again = client.create_service(&sh("doomed", "cat")).unwrap();
    assert_ne!(again.id(), doomed.id());
}

mod async_facade {
    use super::*;
    use jobwire::Client;
    use jobwire_server::{spawn, ServerHandle};
    use twins::{runtime, Async};

    async fn start(allow_commands: bool) -> (ServerHandle, Client, Client, Arc<Probes>) {
        let probes = Arc::default();
        let server = spawn(config(&probes, allow_commands)).await.unwrap();
        let client = |token: &str| {
            Client::builder()
                .base_url(server.url())
                .token(token)
                .build()
                .unwrap()
        };
        let (mine, other) = (client(TOKEN), client(OTHER_TOKEN));
        (server, mine, other, probes)
    }

    /// The scenarios' interface over two tenants' clients, awaited on the shared
    /// runtime.
    fn twins(allow_commands: bool) -> (ServerHandle, Async, Async, Arc<Probes>) {
        let (server, mine, other, probes) = runtime().block_on(start(allow_commands));
        let twin = |client| Async {
            client,
            runtime: runtime(),
        };
        (server, twin(mine), twin(other), probes)
    }

    #[test]
    fn without_allow_commands_registration_is_403() {
        let (server, client, _, _) = twins(false);
        registration_is_refused(&client);
        runtime().block_on(server.shutdown());
    }

    #[test]
    fn command_services_registered_run_and_retired() {
        let (server, client, other, _) = twins(true);
        bad_specs_and_names(&client, &other);
        events_of_a_command_job(&client);
        failures_and_timeouts(&client);
        one_at_a_time(&client);
        delete_retires(&client);
        runtime().block_on(server.shutdown());
    }

    #[test]
    fn cancel_stops_handlers_and_programs() {
        let (server, client, _, probes) = twins(true);
        cancel_stops_what_runs(&client, &probes);
        runtime().block_on(server.shutdown());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn three_registered_at_once_each_run() {
        let (server, client, _, _) = start(true).await;
        let specs: Vec<ServiceSpec> = (1..=3)
            .map(|n| sh(&format!("times-{n}"), &format!("echo {n}")))
            .collect();
        let created =
            futures_util::future::join_all(specs.iter().map(|s| client.create_service(s))).await;
        for (n, service) in (1..=3).zip(created) {
            let out: Value = service.unwrap().run(&json!(null)).await.unwrap();
            assert_eq!(out, json!(n));
        }
        server.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn create_or_get_racing_yields_one_service() {
        let (server, client, _, _) = start(true).await;
        for round in 0..10 {
            let spec = sh(&format!("shared-{round}"), "cat");
            let (a, b) = tokio::join!(
                tokio::spawn({
                    let (client, spec) = (client.clone(), spec.clone());
                    async move { client.create_or_get_service(&spec).await }
                }),
                tokio::spawn({
                    let (client, spec) = (client.clone(), spec.clone());
                    async move { client.create_or_get_service(&spec).await }
                }),
            );
            let (a, b) = (a.unwrap().unwrap(), b.unwrap().unwrap());
            assert_eq!(a.id(), b.id(), "round {round}");
            let listed = client
                .services()
                .name(spec.name.as_str())
                .page()
                .await
                .unwrap();
            assert_eq!(listed.items.len(), 1, "round {round}");
        }
        server.shutdown().await;
    }
}

mod blocking_facade {
    use super::*;
    use jobwire_blocking::Client;
    use jobwire_server::{spawn_blocking_server, BlockingServerHandle};
    use twins::Blocking;

    fn start(allow_commands: bool) -> (BlockingServerHandle, Client, Client, Arc<Probes>) {
        let probes = Arc::default();
        let server = spawn_blocking_server(config(&probes, allow_commands)).unwrap();
        let client = |token: &str| {
            Client::builder()
                .base_url(server.url())
                .token(token)
                .build()
                .unwrap()
        };
        let (mine, other) = (client(TOKEN), client(OTHER_TOKEN));
        (server, mine, other, probes)
    }

    #[test]
    fn without_allow_commands_registration_is_403() {
        let (server, client, _, _) = start(false);
        registration_is_refused(&Blocking(client));
        server.shutdown();
    }

    #[test]
    fn command_services_registered_run_and_retired() {
        let (server, client, other, _) = start(true);
        let (client, other) = (Blocking(client), Blocking(other));
        bad_specs_and_names(&client, &other);
        events_of_a_command_job(&client);
        failures_and_timeouts(&client);
        one_at_a_time(&client);
        delete_retires(&client);
        server.shutdown();
    }

    #[test]
    fn cancel_stops_handlers_and_programs() {
        let (server, client, _, probes) = start(true);
        cancel_stops_what_runs(&Blocking(client), &probes);
        server.shutdown();
    }

    #[test]
    fn three_registered_at_once_each_run() {
        let (server, client, _, _) = start(true);
        std::thread::scope(|scope| {
            let runs: Vec<_> = (1..=3)
                .map(|n| {
                    let client = &client;
                    scope.spawn(move || {
                        let spec = sh(&format!("times-{n}"), &format!("echo {n}"));
                        let service = client.create_service(&spec).unwrap();
                        service.run::<_, Value>(&json!(null)).unwrap()
                    })
                })
                .collect();
            for (n, run) in (1..=3).zip(runs) {
                assert_eq!(run.join().unwrap(), json!(n));
            }
        });
        server.shutdown();
    }

    #[test]
    fn create_or_get_racing_yields_one_service() {
        let (server, client, _, _) = start(true);
        for round in 0..10 {
            let spec = sh(&format!("shared-{round}"), "cat");
            let barrier = std::sync::Barrier::new(2);
            let ids: Vec<String> = std::thread::scope(|scope| {
                let racers: Vec<_> = (0..2)
                    .map(|_| {
                        scope.spawn(|| {
                            barrier.wait();
                            client.create_or_get_service(&spec).unwrap().id().to_owned()
                        })
                    })
                    .collect();
                racers.into_iter().map(|r| r.join().unwrap()).collect()
            });
            assert_eq!(ids[0], ids[1], "round {round}");
            let listed = client.services().name(spec.name.as_str()).page().unwrap();
            assert_eq!(listed.items.len(), 1, "round {round}");
        }
        server.shutdown();
    }
}
