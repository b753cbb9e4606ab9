//! One deadline over a whole call (`client.within(d)`), in both facades, against a server
//! that accepts and never answers, one that sends the head and stalls the body, a job
//! that outlasts it, and streams and list walks: each ends with `Error::Timeout` no later
//! than the deadline plus 10 %.

use std::time::{Duration, Instant};

use futures_util::{StreamExt, TryStreamExt};
use jobwire_core::Error;
use jobwire_server::{Faults, ServerConfig};
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_millis(800);

/// A server that stalls submits before the head, and service reads and job lists
/// mid-body.
fn stalling() -> ServerConfig {
    let faults = Faults::new(1)
        .with_spec("stall-head=30:1:POST:/v1/services/*/jobs")
        .unwrap()
        .with_spec("stall-body=30:1:GET:/v1/services/*")
        .unwrap()
        .with_spec("stall-body=30:1:GET:/v1/jobs")
        .unwrap();
    ServerConfig::new().faults(faults)
}

/// The call ended with a timeout, not before `LIMIT` minus a little and no later than
/// `LIMIT` plus 10 %.
fn timed_out<T: std::fmt::Debug>(what: &str, started: Instant, result: Result<T, Error>) {
    let took = started.elapsed();
    assert!(
        matches!(result, Err(Error::Timeout { .. })),
        "{what}: {result:?}"
    );
    assert!(
        took >= LIMIT.mul_f64(0.9),
        "{what}: gave up early, {took:?}"
    );
    assert!(
        took <= LIMIT.mul_f64(1.1),
        "{what}: {took:?} is past the deadline + 10 %"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deadlines_hold_in_the_async_facade() {
    let stalled = jobwire_server::spawn(stalling()).await.unwrap();
    let client = jobwire::Client::builder()
        .base_url(stalled.url())
        .token(stalled.token())
        .build()
        .unwrap();
    // Accepts, never answers.
    let started = Instant::now();
    let result = client
        .within(LIMIT)
        .run::<_, Value>("echo", &json!(1))
        .await;
    timed_out("a submit with no answer", started, result);
    // Sends the head, stalls the body.
    let started = Instant::now();
    let result = client.within(LIMIT).service("echo").await;
    timed_out("a body that stalls", started, result);
    let started = Instant::now();
    let result: Result<Vec<_>, _> = client.within(LIMIT).jobs().items().try_collect().await;
    timed_out("a list walk", started, result);
    stalled.shutdown().await;

    let server = jobwire_server::spawn(ServerConfig::new()).await.unwrap();
    let client = jobwire::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .build()
        .unwrap();
    // A job that outlasts the deadline: `run` is submit and wait under one deadline.
    let started = Instant::now();
    let sleep = json!({"duration_seconds": 30});
    let result = client.within(LIMIT).run::<_, Value>("sleep", &sleep).await;
    timed_out("a run", started, result);
    // On a handle, a wait's own deadline.
    let mut job = client.within(LIMIT).submit("sleep", &sleep).await.unwrap();
    let started = Instant::now();
    let result = job.wait_for(LIMIT).await.cloned();
    timed_out("a wait", started, result);
    // A quiet stream ends at the deadline too.
    let started = Instant::now();
    let mut events = client.within(LIMIT).events();
    let result = events.next().await.unwrap();
    timed_out("a quiet event stream", started, result);
    assert!(events.next().await.is_none(), "and then it is over");
    // Without a deadline, the same calls just work.
    let out: Value = client.run("echo", &json!(2)).await.unwrap();
    assert_eq!(out, json!(2));
    // The handle keeps its deadline: past it, its cancel times out too; a client free of
    // it cancels the job.
    assert!(matches!(job.cancel().await, Err(Error::Timeout { .. })));
    client.cancel(job.id()).await.unwrap();
    server.shutdown().await;
}

#[test]
fn deadlines_hold_in_the_blocking_facade() {
    let stalled = jobwire_server::spawn_blocking_server(stalling()).unwrap();
    let client = jobwire_blocking::Client::builder()
        .base_url(stalled.url())
        .token(stalled.token())
        .build()
        .unwrap();
    let started = Instant::now();
    let result = client.within(LIMIT).run::<_, Value>("echo", &json!(1));
    timed_out("a submit with no answer", started, result);
    let started = Instant::now();
    let result = client.within(LIMIT).service("echo");
    timed_out("a body that stalls", started, result);
    let started = Instant::now();
    let result: Result<Vec<_>, _> = client.within(LIMIT).jobs().items().collect();
    timed_out("a list walk", started, result);
    stalled.shutdown();

    let server = jobwire_server::spawn_blocking_server(ServerConfig::new()).unwrap();
    let client = jobwire_blocking::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .build()
        .unwrap();
    let started = Instant::now();
    let sleep = json!({"duration_seconds": 30});
    let result = client.within(LIMIT).run::<_, Value>("sleep", &sleep);
    timed_out("a run", started, result);
    let mut job = client.within(LIMIT).submit("sleep", &sleep).unwrap();
    let started = Instant::now();
    let result = job.wait_for(LIMIT).cloned();
    timed_out("a wait", started, result);
    let started = Instant::now();
    let mut events = client.within(LIMIT).events();
    let result = events.next().unwrap();
    timed_out("a quiet event stream", started, result);
    assert!(events.next().is_none());
    assert!(matches!(job.cancel(), Err(Error::Timeout { .. })));
    client.cancel(job.id()).unwrap();
    server.shutdown();
}
