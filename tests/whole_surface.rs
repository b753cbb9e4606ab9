//! What the seeds' users reach for, through both facades against the real server over
//! real sockets: a `run` retried with one key, a streaming run, jobs by id, both clients from one config and `close()`, batches fed
//! from a bounded channel, fail-fast in `run_unordered`, and a token source asked again
//! after a 401.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use jobwire_core::event::EventKind;
use jobwire_core::token::TokenSource;
use jobwire_core::{BoxError, ClientConfig, Error, JobStatus};
use jobwire_server::{spawn_blocking_server, ServerConfig};
use serde_json::{json, Value};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn config(server: &jobwire_server::BlockingServerHandle) -> ClientConfig {
    ClientConfig::default()
        .base_url(server.url())
        .token(server.token())
}

/// Both clients, built from one `ClientConfig`.
fn clients(
    server: &jobwire_server::BlockingServerHandle,
) -> (jobwire::Client, jobwire_blocking::Client) {
    let config = config(server);
    (
        jobwire::Client::from_config(config.clone()).unwrap(),
        jobwire_blocking::Client::from_config(config).unwrap(),
    )
}

/// How many jobs labelled `run=<label>` the server holds.
fn jobs_labelled(client: &jobwire_blocking::Client, label: &str) -> Vec<jobwire_core::Job> {
    client
        .jobs()
        .label("run", label)
        .items()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn a_run_retried_with_one_key_makes_one_job() {
    let server = spawn_blocking_server(ServerConfig::new()).unwrap();
    let (async_client, blocking) = clients(&server);
    let slow = json!({"duration_seconds": 0.4});

    let options = jobwire::RunOptions::default()
        .idempotency_key("order-17-async")
        .label("run", "async");
    let outputs = runtime().block_on(async {
        // The first try gives up before the job ends; the caller retries with the key.
        let first = async_client
            .run_with::<_, Value>(
                "sleep",
                &slow,
                options.clone().timeout(Duration::from_millis(100)),
            )
            .await;
        assert!(matches!(first, Err(Error::Timeout { .. })), "{first:?}");
        let second: Value = async_client
            .run_with("sleep", &slow, options.clone())
            .await
            .unwrap();
        let third: Value = async_client
            .run_with("sleep", &slow, options)
            .await
            .unwrap();
        (second, third)
    });
    assert_eq!(outputs.0, json!({"slept": 0.4}));
    assert_eq!(outputs.0, outputs.1);
    assert_eq!(
        jobs_labelled(&blocking, "async").len(),
        1,
        "one job at the server"
    );

    let options = jobwire_blocking::RunOptions::default()
        .idempotency_key("order-17-blocking")
        .label("run", "blocking");
    let first = blocking.run_with::<_, Value>(
        "sleep",
        &slow,
        options.clone().timeout(Duration::from_millis(100)),
    );
    assert!(matches!(first, Err(Error::Timeout { .. })), "{first:?}");
    let second: Value = blocking.run_with("sleep", &slow, options.clone()).unwrap();
    let third: Value = blocking.run_with("sleep", &slow, options).unwrap();
    assert_eq!(second, third);
    assert_eq!(
        jobs_labelled(&blocking, "blocking").len(),
        1,
        "one job at the server"
    );

    // Without a key, each run is a job of its own.
    for _ in 0..2 {
        let options = jobwire_blocking::RunOptions::default().label("run", "keyless");
        let _: Value = blocking.run_with("echo", &1, options).unwrap();
    }
    assert_eq!(jobs_labelled(&blocking, "keyless").len(), 2);
}

/// What a streaming run yielded, by kind.
#[derive(Debug, Default, PartialEq)]
struct Streamed {
    submitted: usize,
    progress: usize,
    output: usize,
    done: Option<Value>,
}

impl Streamed {
    fn take<O: Into<Value>>(&mut self, item: jobwire_core::run::RunEvent<O>) {
        use jobwire_core::run::RunEvent;
        assert!(self.done.is_none(), "nothing after the result");
        match item {
            RunEvent::Submitted { job_id } => {
                assert!(job_id.starts_with("job_"));
                assert_eq!(self.submitted, 0, "submitted first, once");
                self.submitted += 1;
            }
            RunEvent::Event(event) => {
                assert_eq!(self.submitted, 1, "events after the submit");
                match event.kind {
                    EventKind::Progress { .. } => self.progress += 1,
                    EventKind::Output(_) => self.output += 1,
                    EventKind::Done(_) => panic!("the done event is the result"),
                    _ => {}
                }
            }
            RunEvent::Done(output) => self.done = Some(output.into()),
            _ => panic!("a run event this test does not know"),
        }
    }
}

#[test]
fn a_streaming_run_yields_progress_and_output_then_the_result() {
    let server = spawn_blocking_server(ServerConfig::new()).unwrap();
    let (async_client, blocking) = clients(&server);
    let input = json!({"steps": 3, "interval_ms": 20});

    let from_async = runtime().block_on(async {
        let mut seen = Streamed::default();
        let mut run = async_client.run_stream::<_, Value>("steps", &input);
        while let Some(item) = run.next().await {
            seen.take(item.unwrap());
        }
        seen
    });
    let mut from_blocking = Streamed::default();
    for item in blocking.run_stream::<_, Value>("steps", &input) {
        from_blocking.take(item.unwrap());
    }
    for seen in [&from_async, &from_blocking] {
        assert_eq!((seen.progress, seen.output), (3, 3), "{seen:?}");
        assert_eq!(seen.done.as_ref().unwrap()["steps"], 3);
    }
    assert_eq!(from_async, from_blocking);

    // A job that fails ends the stream with its error.
    let mut items: Vec<_> = blocking
        .run_stream::<_, Value>("fail", &json!({"message": "bang"}))
        .collect();
    assert!(matches!(items.pop(), Some(Err(Error::JobFailed { .. }))));
    // An input the server refuses: the one item is the error.
    let refused: Vec<_> = runtime().block_on(
        async_client
            .run_stream::<_, Value>("sleep", &json!({"duration_seconds": -1}))
            .collect(),
    );
    assert!(
        matches!(refused[..], [Err(Error::Validation { .. })]),
        "{refused:?}"
    );
}

#[test]
fn listed_jobs_are_cancelled_by_id_one_request_each() {
    let server = spawn_blocking_server(ServerConfig::new()).unwrap();
    let (async_client, blocking) = clients(&server);
    let long = json!({"duration_seconds": 60});
    let options = || jobwire_core::SubmitOptions::default().label("run", "many");
    for _ in 0..200 {
        blocking.submit_with("sleep", &long, options()).unwrap();
    }
    let listed = jobs_labelled(&blocking, "many");
    assert_eq!(listed.len(), 200);
    let (for_async, for_blocking) = listed.split_at(100);

    let before = server.requests();
    for job in for_blocking {
        assert_eq!(
            blocking.cancel(&job.id).unwrap().status,
            JobStatus::Cancelled
        );
    }
    assert_eq!(
        server.requests() - before,
        100,
        "blocking: one request per job"
    );

    let before = server.requests();
    runtime().block_on(async {
        for job in for_async {
            // A listed job turns into a handle without a request, too.
            let mut handle = async_client.handle(job.clone());
            assert_eq!(handle.cancel().await.unwrap().status, JobStatus::Cancelled);
        }
    });
    assert_eq!(
        server.requests() - before,
        100,
        "async: one request per job"
    );

    // A handle from an id sends nothing until it is used; a wrong id is found out then.
    let before = server.requests();
    let mut unknown = blocking.job("job_nope");
    assert_eq!(server.requests(), before);
    assert!(matches!(unknown.wait(), Err(Error::NotFound { .. })));
    let id = &for_blocking[0].id;
    assert_eq!(blocking.wait(id).unwrap().status, JobStatus::Cancelled);
    let waited = runtime().block_on(async_client.wait(id)).unwrap();
    assert_eq!(waited.status, JobStatus::Cancelled);
}

/// Counts the inputs a batch has taken and not yet finished, with those in the channel:
/// what the batch and its source hold.
#[derive(Default)]
struct Held {
    sent: AtomicUsize,
    ended: AtomicUsize,
    most: AtomicUsize,
}

impl Held {
    fn sent(&self) {
        let sent = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        let held = sent.saturating_sub(self.ended.load(Ordering::SeqCst));
        self.most.fetch_max(held, Ordering::SeqCst);
    }

    fn hook(self: &Arc<Self>) -> impl Fn(&jobwire_core::batch::BatchEvent) + Send + Sync + 'static {
        let held = self.clone();
        move |event| {
            use jobwire_core::batch::BatchEvent;
            if matches!(
                event,
                BatchEvent::Finished { .. } | BatchEvent::Failed { .. }
            ) {
                held.ended.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}

#[test]
fn a_batch_fed_from_a_bounded_channel_holds_only_the_bound_and_the_jobs_in_flight() {
    const INPUTS: u32 = 1000;
    const BOUND: usize = 16;
    const CONCURRENCY: usize = 8;
    let server = spawn_blocking_server(ServerConfig::new()).unwrap();
    let (async_client, blocking) = clients(&server);

    let held = Arc::new(Held::default());
    let (send, receive) = std::sync::mpsc::sync_channel::<u32>(BOUND);
    let producer = {
        let held = held.clone();
        std::thread::spawn(move || {
            for i in 0..INPUTS {
                send.send(i).unwrap();
                held.sent();
            }
        })
    };
    let echo = blocking.service("echo").unwrap();
    let outputs: Vec<u32> = echo
        .run_all_from(receive)
        .concurrency(CONCURRENCY)
        .on_event(held.hook())
        .try_collect()
        .unwrap();
    producer.join().unwrap();
    assert_eq!(outputs, (0..INPUTS).collect::<Vec<_>>());
    let most = held.most.load(Ordering::SeqCst);
    assert!(most <= BOUND + CONCURRENCY, "blocking: held {most}");

    let held = Arc::new(Held::default());
    runtime().block_on(async {
        let (send, mut receive) = tokio::sync::mpsc::channel::<u32>(BOUND);
        let producer = {
            let held = held.clone();
            tokio::spawn(async move {
                for i in 0..INPUTS {
                    send.send(i).await.unwrap();
                    held.sent();
                }
            })
        };
        let inputs = futures_util::stream::poll_fn(move |cx| receive.poll_recv(cx));
        let echo = async_client.service("echo").await.unwrap();
        let done = echo
            .run_unordered_from(inputs)
            .concurrency(CONCURRENCY)
            .on_event(held.hook())
            .results::<u32>()
            .fold(0u64, |sum, (_, out)| async move {
                sum + u64::from(out.unwrap())
            })
            .await;
        producer.await.unwrap();
        assert_eq!(done, u64::from(INPUTS) * u64::from(INPUTS - 1) / 2);
    });
    let most = held.most.load(Ordering::SeqCst);
    assert!(most <= BOUND + CONCURRENCY, "async: held {most}");
}

/// Every `sleep` job at the server is cancelled, and there are `n`.
fn all_cancelled(client: &jobwire_blocking::Client, n: usize) {
    let jobs: Vec<_> = client
        .jobs()
        .service("sleep")
        .items()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(jobs.len(), n);
    for job in jobs {
        assert_eq!(job.status, JobStatus::Cancelled, "{}", job.id);
    }
}

#[test]
fn fail_fast_in_run_unordered_cancels_the_siblings_jobs() {
    let inputs = [30.0, 30.0, 30.0, -1.0].map(|s| json!({ "duration_seconds": s }));

    let server = spawn_blocking_server(ServerConfig::new()).unwrap();
    let (_, blocking) = clients(&server);
    let sleep = blocking.service("sleep").unwrap();
    // The refused input is submitted after the others, which are running by then.
    let (send, receive) = std::sync::mpsc::channel();
    for input in &inputs[..3] {
        send.send(input.clone()).unwrap();
    }
    let refused = inputs[3].clone();
    let feeder = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        send.send(refused).unwrap();
    });
    let started = Instant::now();
    let items: Vec<_> = sleep
        .run_unordered_from(receive)
        .concurrency(4)
        .fail_fast()
        .results::<Value>()
        .collect();
    feeder.join().unwrap();
    assert!(
        matches!(items[..], [(3, Err(Error::Validation { .. }))]),
        "{items:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the 30 s jobs did not run out"
    );
    all_cancelled(&blocking, 3);

    let server = spawn_blocking_server(ServerConfig::new()).unwrap();
    let (async_client, blocking) = clients(&server);
    runtime().block_on(async {
        let sleep = async_client.service("sleep").await.unwrap();
        let (send, mut receive) = tokio::sync::mpsc::unbounded_channel();
        for input in &inputs[..3] {
            send.send(input.clone()).unwrap();
        }
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            send.send(inputs[3].clone()).unwrap();
        });
        let items: Vec<_> = sleep
            .run_unordered_from(futures_util::stream::poll_fn(move |cx| {
                receive.poll_recv(cx)
            }))
            .concurrency(4)
            .fail_fast()
            .results::<Value>()
            .collect()
            .await;
        assert!(
            matches!(items[..], [(3, Err(Error::Validation { .. }))]),
            "{items:?}"
        );
    });
    all_cancelled(&blocking, 3);
}

/// A token that expires: `stale` until the server turns it down, then `fresh`.
struct Expiring {
    fresh: String,
    expired: AtomicBool,
    asked: AtomicUsize,
    invalidated: AtomicUsize,
}

impl Expiring {
    fn new(fresh: &str) -> Arc<Self> {
        Arc::new(Expiring {
            fresh: fresh.to_owned(),
            expired: AtomicBool::new(true),
            asked: AtomicUsize::new(0),
            invalidated: AtomicUsize::new(0),
        })
    }
}

/// The client's settings keep their own `Arc` of the source; the test keeps another.
struct Shared(Arc<Expiring>);

impl TokenSource for Shared {
    fn token(&self) -> Result<String, BoxError> {
        self.0.asked.fetch_add(1, Ordering::SeqCst);
        if self.0.expired.load(Ordering::SeqCst) {
            Ok("stale".to_owned())
        } else {
            Ok(self.0.fresh.clone())
        }
    }

    fn invalidate(&self) {
        self.0.invalidated.fetch_add(1, Ordering::SeqCst);
        self.0.expired.store(false, Ordering::SeqCst);
    }
}

#[test]
fn a_token_source_is_asked_again_after_a_401_and_the_call_succeeds() {
    let server = spawn_blocking_server(ServerConfig::new()).unwrap();
    let url = server.url();

    let source = Expiring::new(server.token());
    let blocking = jobwire_blocking::Client::builder()
        .base_url(url.clone())
        .token_source(Shared(source.clone()))
        .build()
        .unwrap();
    let out: Value = blocking.run("echo", &json!({"n": 1})).unwrap();
    assert_eq!(out, json!({"n": 1}));
    assert_eq!(source.invalidated.load(Ordering::SeqCst), 1, "told once");
    assert!(source.asked.load(Ordering::SeqCst) >= 2, "asked again");

    // The async facade, and an event stream: its reconnect takes the fresh token.
    let source = Expiring::new(server.token());
    let config = ClientConfig::default()
        .base_url(url)
        .token_source(Shared(source.clone()));
    let async_client = jobwire::Client::from_config(config.clone()).unwrap();
    let job_id = blocking.submit("echo", &2).unwrap().id().to_owned();
    let events: Vec<_> = runtime().block_on(async {
        // A handle from an id sends nothing: the stream's request is the first.
        async_client.job(&job_id).events().collect().await
    });
    assert!(events.iter().all(Result::is_ok), "{events:?}");
    assert_eq!(source.invalidated.load(Ordering::SeqCst), 1);

    // A token the server never takes: one retry, then the 401 is the answer.
    let refused = jobwire_blocking::Client::from_config(
        config.token_source(|| Ok::<_, std::io::Error>("never".to_owned())),
    )
    .unwrap()
    .run::<_, Value>("echo", &1);
    assert!(
        matches!(refused, Err(Error::Unauthorized { .. })),
        "{refused:?}"
    );
}

#[test]
fn close_ends_the_shared_stream_and_every_later_call() {
    let server = spawn_blocking_server(ServerConfig::new()).unwrap();
    let (async_client, blocking) = clients(&server);
    let long = json!({"duration_seconds": 60});

    // A wait in progress on the blocking client's shared stream.
    let job = blocking.submit("sleep", &long).unwrap();
    let waiting = {
        let mut job = job.clone();
        std::thread::spawn(move || job.wait().map(|j| j.status.clone()))
    };
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    blocking.close();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "close waited for the reader"
    );
    assert!(matches!(waiting.join().unwrap(), Err(Error::Closed)));
    assert!(matches!(blocking.health(), Err(Error::Closed)));
    assert!(matches!(
        blocking.clone().submit("echo", &1),
        Err(Error::Closed)
    ));

    let ended = Arc::new(Mutex::new(None));
    runtime().block_on(async {
        let job = async_client.submit("sleep", &long).await.unwrap();
        let waiting = {
            let (mut job, ended) = (job.clone(), ended.clone());
            tokio::spawn(async move {
                let result = job.wait().await.map(|j| j.status.clone());
                *ended.lock().unwrap() = Some(result);
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        async_client.close().await;
        waiting.await.unwrap();
        assert!(matches!(async_client.health().await, Err(Error::Closed)));
    });
    assert!(matches!(
        ended.lock().unwrap().take(),
        Some(Err(Error::Closed))
    ));
}

/// The field errors of a validation error.
fn field_errors<T: std::fmt::Debug>(result: Result<T, Error>) -> Vec<jobwire_core::FieldError> {
    match result {
        Err(Error::Validation { problem }) => {
            assert_eq!(
                (problem.status, problem.code.as_str()),
                (422, "validation_failed")
            );
            problem.errors
        }
        other => panic!("expected a validation error, got {other:?}"),
    }
}

#[test]
fn a_wrong_input_is_refused_before_a_request_with_the_servers_own_errors() {
    let server = spawn_blocking_server(ServerConfig::new()).unwrap();
    let (async_client, blocking) = clients(&server);
    let bad = json!({"steps": 0, "interval_ms": "fast", "extra": true});

    // What the server answers when the input is sent (a submit by name is not checked).
    let from_server = field_errors(blocking.submit("steps", &bad));
    assert_eq!(from_server.len(), 3, "{from_server:?}");

    let steps = blocking.service("steps").unwrap();
    let before = server.requests();
    assert_eq!(field_errors(steps.validate(&bad)), from_server);
    assert_eq!(field_errors(steps.submit(&bad)), from_server);
    assert_eq!(field_errors(steps.run::<_, Value>(&bad)), from_server);
    let mut streamed: Vec<_> = steps.run_stream::<_, Value>(&bad).collect();
    assert_eq!(streamed.len(), 1);
    assert_eq!(field_errors(streamed.pop().unwrap()), from_server);
    let report = steps.run_all([bad.clone()]).collect::<Value>();
    assert_eq!(
        report.summary.by_kind.get("validation"),
        Some(&1),
        "{:?}",
        report.summary
    );
    assert_eq!(server.requests(), before, "blocking: nothing sent");

    runtime().block_on(async {
        let steps = async_client.service("steps").await.unwrap();
        let before = server.requests();
        assert_eq!(field_errors(steps.validate(&bad)), from_server);
        assert_eq!(field_errors(steps.submit(&bad).await), from_server);
        assert_eq!(field_errors(steps.run::<_, Value>(&bad).await), from_server);
        let mut streamed: Vec<_> = steps.run_stream::<_, Value>(&bad).collect().await;
        assert_eq!(field_errors(streamed.pop().unwrap()), from_server);
        let outcomes: Vec<_> = steps
            .run_unordered([bad.clone()])
            .results::<Value>()
            .collect()
            .await;
        assert!(matches!(outcomes[..], [(0, Err(Error::Validation { .. }))]));
        assert_eq!(server.requests(), before, "async: nothing sent");
        // A good input goes through.
        let good = json!({"steps": 1, "interval_ms": 1});
        let out: Value = steps.run(&good).await.unwrap();
        assert_eq!(out["steps"], 1);
    });
}
