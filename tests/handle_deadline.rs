//! One deadline through a job's life, in both facades over real sockets: a handle made
//! under `client.within(300 ms)` ends its wait, its events and its result with
//! `Error::Timeout` within 300 ms + 10 % on a 10 s job, and its cancel after it. A file
//! of its own, so no other test competes for the two cores while it times.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use jobwire_core::{ClientConfig, Error, JobStatus};
use jobwire_server::{spawn_blocking_server, ServerConfig};
use serde_json::{json, Value};

/// The deadline of the handles.
const LIMIT: Duration = Duration::from_millis(300);
/// How late past [`LIMIT`] a timed-out call may end: 10 %.
const SLACK: Duration = Duration::from_millis(30);

/// Asserts a call ended with a timeout by [`LIMIT`] (+ [`SLACK`]) after `started`.
fn timed_out_in_time<T: std::fmt::Debug>(what: &str, started: Instant, result: Result<T, Error>) {
    let took = started.elapsed();
    eprintln!("{what}: Timeout after {took:?}");
    assert!(
        matches!(result, Err(Error::Timeout { .. })),
        "{what}: {result:?}"
    );
    assert!(took <= LIMIT + SLACK, "{what} took {took:?}");
}

#[test]
fn a_handle_keeps_the_deadline_it_was_made_under() {
    let server = spawn_blocking_server(ServerConfig::new()).unwrap();
    let config = ClientConfig::default()
        .base_url(server.url())
        .token(server.token());
    let async_client = jobwire::Client::from_config(config.clone()).unwrap();
    let blocking = jobwire_blocking::Client::from_config(config).unwrap();
    let long = json!({"duration_seconds": 10});

    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let started = Instant::now();
        let mut job = async_client
            .within(LIMIT)
            .submit("sleep", &long)
            .await
            .unwrap();
        timed_out_in_time("async wait", started, job.wait().await.cloned());

        let started = Instant::now();
        let job = async_client
            .within(LIMIT)
            .submit("sleep", &long)
            .await
            .unwrap();
        let mut events = job.events();
        let last = loop {
            match events.next().await {
                Some(Ok(_)) => continue,
                Some(Err(e)) => break Err::<(), _>(e),
                None => panic!("the stream ended without an error"),
            }
        };
        timed_out_in_time("async events", started, last);
        assert!(events.next().await.is_none());

        let started = Instant::now();
        let mut job = async_client
            .within(LIMIT)
            .submit("sleep", &long)
            .await
            .unwrap();
        timed_out_in_time("async result", started, job.result::<Value>().await);
    });

    let started = Instant::now();
    let mut job = blocking.within(LIMIT).submit("sleep", &long).unwrap();
    timed_out_in_time("blocking wait", started, job.wait().cloned());

    let started = Instant::now();
    let job = blocking.within(LIMIT).submit("sleep", &long).unwrap();
    let mut events = job.events();
    let last = loop {
        match events.next() {
            Some(Ok(_)) => continue,
            Some(Err(e)) => break Err::<(), _>(e),
            None => panic!("the stream ended without an error"),
        }
    };
    timed_out_in_time("blocking events", started, last);
    assert!(events.next().is_none());

    let started = Instant::now();
    let mut job = blocking.within(LIMIT).submit("sleep", &long).unwrap();
    timed_out_in_time("blocking result", started, job.result::<Value>());
    // Past its deadline the handle's cancel times out too; a client free of it cancels.
    assert!(matches!(job.cancel(), Err(Error::Timeout { .. })));
    assert_eq!(
        blocking.cancel(job.id()).unwrap().status,
        JobStatus::Cancelled
    );
}
