//! Sizes in bytes, end to end, over real sockets, through both facades: jobs whose
//! outputs are 0.5, 2 and 15 MiB come back whole through `wait`, `result`, `run` and
//! `events` (their `done` is too large for an event, so it comes without input and
//! output and the SDK reads the job), and `run_stream` too; so does the `echo` of a
//! 600 KiB input, which hung before. On the wire, no event is longer than the server's `max_event_bytes`: a long
//! log line and progress message are cut and marked, a long output chunk is split in
//! order. An event longer than the SDK's own limit hangs nothing: a job's event stream
//! ends with `Error::TooLarge`, and waits read the job instead.
//!
//! Written once over the test interface of `twins`, run through each facade.

mod twins;

use std::time::{Duration, Instant};

use bytes::Bytes;
use jobwire_blocking::transport::{Transport, UreqTransport};
use jobwire_core::event::EventKind;
use jobwire_core::sse::SseDecoder;
use jobwire_core::{Error, JobStatus};
use jobwire_server::{spawn_blocking_server, BlockingServerHandle, ServerConfig, ServiceSpec};
use serde_json::{json, Value};
use twins::{Async, Blocking, Job as _, Sdk};

const KIB: usize = 1024;
const MIB: usize = 1024 * KIB;

/// The server's default event cap.
const EVENT_CAP: usize = 256 * KIB;

/// The output `bytes` makes: a JSON string of exactly `n` bytes of JSON.
fn output_of(n: usize) -> Value {
    json!("x".repeat(n - 2))
}

/// A text that is not all ASCII, so cuts fall between characters of several bytes.
fn text(bytes: usize) -> String {
    "ab€ü\"\n".chars().cycle().take(bytes / 2).collect()
}

fn config() -> ServerConfig {
    // Outputs of `n` bytes of JSON, after `delay_ms` (a run's submit answers within a
    // second; longer, and the run waits on the shared event stream).
    let bytes = ServiceSpec::async_fn("bytes", |input, _ctx| async move {
        let delay = input["delay_ms"].as_u64().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let n = input["n"].as_u64().unwrap_or(2) as usize;
        Ok(output_of(n))
    });
    // Reports one long output chunk, log line and progress message.
    let reports = ServiceSpec::async_fn("reports", |input, ctx| async move {
        let n = input["n"].as_u64().unwrap_or(0) as usize;
        ctx.output(text(n));
        ctx.log(text(n));
        ctx.progress(0.5, text(n));
        Ok(json!(null))
    });
    ServerConfig::new().service(bytes).service(reports)
}

fn server() -> BlockingServerHandle {
    spawn_blocking_server(config()).unwrap()
}

fn blocking(server: &BlockingServerHandle, event_limit: Option<usize>) -> Blocking {
    let mut builder = jobwire_blocking::Client::builder()
        .base_url(server.url())
        .token(server.token());
    if let Some(limit) = event_limit {
        builder = builder.max_event_bytes(limit);
    }
    Blocking(builder.build().unwrap())
}

fn async_sdk(server: &BlockingServerHandle, event_limit: Option<usize>) -> Async {
    let mut builder = jobwire::Client::builder()
        .base_url(server.url())
        .token(server.token());
    if let Some(limit) = event_limit {
        builder = builder.max_event_bytes(limit);
    }
    Async {
        client: builder.build().unwrap(),
        runtime: twins::runtime(),
    }
}

/// The job's `done`, from its event stream: every event before it decodes, and it is the
/// stream's last.
fn done_from_events(job: &impl twins::Job) -> jobwire_core::Job {
    let mut done = None;
    for event in job.events() {
        let event = event.unwrap();
        assert!(done.is_none(), "nothing after the done: {:?}", event.kind);
        if let EventKind::Done(job) = event.kind {
            done = Some(*job);
        }
    }
    done.expect("a done")
}

/// A job whose output is `n` bytes, through `wait`, `result`, `run` and `events`.
fn outputs_come_back_whole(sdk: &impl Sdk, n: usize) {
    let want = output_of(n);
    let what = format!("{}, {n} bytes", sdk.name());
    let input = json!({ "n": n });

    let mut job = sdk.submit("bytes", &input).unwrap();
    let waited = job.wait().unwrap();
    assert_eq!(waited.status, JobStatus::Succeeded, "{what}: wait");
    assert!(waited.output == Some(want.clone()), "{what}: wait");

    let mut job = sdk.submit("bytes", &input).unwrap();
    assert!(job.result().unwrap() == want, "{what}: result");

    let slow = json!({ "n": n, "delay_ms": 1200 });
    assert!(sdk.run("bytes", &slow).unwrap() == want, "{what}: run");

    let job = sdk.submit("bytes", &input).unwrap();
    let done = done_from_events(&job);
    assert_eq!(done.status, JobStatus::Succeeded, "{what}: events");
    assert!(done.output == Some(want), "{what}: events");
    assert_eq!(done.input, input, "{what}: events carry the whole job");
}

/// The `echo` of a 600 KiB input: its `done` (input and output) is 1.2 MiB.
fn a_large_echo_comes_back(sdk: &impl Sdk) {
    let input = json!({ "text": "é".repeat(300 * KIB) });
    let what = sdk.name();
    let mut job = sdk.submit("echo", &input).unwrap();
    assert!(
        job.wait().unwrap().output == Some(input.clone()),
        "{what}: wait"
    );
    let mut job = sdk.submit("echo", &input).unwrap();
    assert!(job.result().unwrap() == input, "{what}: result");
    assert!(sdk.run("echo", &input).unwrap() == input, "{what}: run");
    let job = sdk.submit("echo", &input).unwrap();
    assert!(
        done_from_events(&job).output == Some(input),
        "{what}: events"
    );
}

/// Long reports reach the SDK in pieces that each fit: the chunk whole (split in
/// order), the log line and the progress message cut.
fn long_reports_arrive_within_the_cap(sdk: &impl Sdk) {
    let n = 600 * KIB;
    let job = sdk.submit("reports", &json!({ "n": n })).unwrap();
    let (mut chunks, mut lines, mut messages) = (Vec::new(), Vec::new(), Vec::new());
    for event in job.events() {
        match event.unwrap().kind {
            EventKind::Output(chunk) => chunks.push(chunk),
            EventKind::Log(line) => lines.push(line),
            EventKind::Progress { message, .. } => messages.push(message),
            _ => {}
        }
    }
    let whole = text(n);
    assert!(chunks.len() > 1, "{}: split", sdk.name());
    assert!(chunks.concat() == whole, "{}: nothing lost", sdk.name());
    for cut in lines.iter().chain(&messages) {
        assert!(whole.starts_with(cut.as_str()), "{}", sdk.name());
        assert!(cut.len() > EVENT_CAP / 2 && cut.len() < EVENT_CAP);
    }
    assert_eq!((lines.len(), messages.len()), (1, 1), "{}", sdk.name());
}

/// An event over the SDK's own limit: the job's stream ends with `TooLarge` (after what
/// came before it), and waits read the job instead of hanging.
fn an_event_over_the_sdks_limit_hangs_nothing(sdk: &impl Sdk) {
    let started = Instant::now();
    let job = sdk.submit("reports", &json!({ "n": 100 * KIB })).unwrap();
    let events: Vec<Result<jobwire_core::event::JobEvent, Error>> = job.events().collect();
    match events.last() {
        Some(Err(Error::TooLarge { what, limit })) => {
            assert_eq!((*what, *limit), ("an event", 32 * KIB), "{}", sdk.name())
        }
        other => panic!("{}: {other:?}", sdk.name()),
    }
    assert!(events.len() >= 2, "the events before it: {}", events.len());
    // Its done is 100 KiB: under the server's cap, over the SDK's.
    let mut job = sdk.submit("bytes", &json!({ "n": 100 * KIB })).unwrap();
    assert!(job.wait().unwrap().output == Some(output_of(100 * KIB)));
    let slow = json!({ "n": 100 * KIB, "delay_ms": 1200 });
    assert!(sdk.run("bytes", &slow).unwrap() == output_of(100 * KIB));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// Every size, the echo and the reports at once (each waits out a slow run).
fn every_size_at_once(sdk: &(impl Sdk + Sync)) {
    std::thread::scope(|scope| {
        for n in [MIB / 2, 2 * MIB, 15 * MIB] {
            scope.spawn(move || outputs_come_back_whole(sdk, n));
        }
        scope.spawn(|| a_large_echo_comes_back(sdk));
        scope.spawn(|| long_reports_arrive_within_the_cap(sdk));
    });
}

#[test]
fn large_outputs_through_the_blocking_facade() {
    let server = server();
    let sdk = blocking(&server, None);
    every_size_at_once(&sdk);
    server.shutdown();
}

#[test]
fn large_outputs_through_the_async_facade() {
    let server = server();
    let sdk = async_sdk(&server, None);
    every_size_at_once(&sdk);
    server.shutdown();
}

/// `run_stream` ends with the job's output decoded, whole, in both facades.
#[test]
fn run_stream_ends_with_the_whole_output() {
    let server = server();
    let input = json!({ "n": 2 * MIB });
    let want = output_of(2 * MIB);
    let blocking = jobwire_blocking::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .build()
        .unwrap();
    let last = blocking.run_stream::<_, Value>("bytes", &input).last();
    assert!(matches!(last, Some(Ok(jobwire_blocking::RunEvent::Done(out))) if out == want));
    let client = async_sdk(&server, None).client;
    let last = twins::runtime().block_on(async {
        use futures_util::StreamExt;
        client
            .run_stream::<_, Value>("bytes", &input)
            .collect::<Vec<_>>()
            .await
            .pop()
    });
    assert!(matches!(last, Some(Ok(jobwire::RunEvent::Done(out))) if out == want));
    server.shutdown();
}

#[test]
fn events_over_the_sdks_limit_hang_nothing() {
    let server = server();
    an_event_over_the_sdks_limit_hangs_nothing(&blocking(&server, Some(32 * KIB)));
    an_event_over_the_sdks_limit_hangs_nothing(&async_sdk(&server, Some(32 * KIB)));
    server.shutdown();
}

/// What the server puts on the wire, read raw: no event over the cap; the log line and
/// the progress message marked `truncated`; the chunk in pieces; a `done` over the cap
/// without input and output (and if need be labels and progress), marked `omitted`; an
/// output over `max_output_bytes` fails the job with `output_too_large`.
#[test]
fn the_wire_within_the_caps() {
    let server = spawn_blocking_server(config().max_output_bytes(MIB)).unwrap();
    let sdk = blocking(&server, None);
    let events_of = |id: &str| -> Vec<(String, Value)> {
        let request = http::Request::get(format!("{}/v1/jobs/{id}/events", server.url()))
            .header("authorization", format!("Bearer {}", server.token()))
            .body(Bytes::new())
            .unwrap();
        let body = UreqTransport::new()
            .send(request)
            .unwrap()
            .into_body()
            .read_to_bytes(64 * MIB)
            .unwrap();
        let mut decoder = SseDecoder::with_limit(jobwire_server::MAX_EVENT_BYTES);
        let mut events = Vec::new();
        decoder.push(&body, &mut events).unwrap();
        events
            .into_iter()
            .map(|e| {
                assert!(e.data.len() <= EVENT_CAP, "{} of {}", e.event, e.data.len());
                (e.event, serde_json::from_str(&e.data).unwrap())
            })
            .collect()
    };
    let mut job = sdk.submit("reports", &json!({ "n": 600 * KIB })).unwrap();
    job.wait().unwrap();
    let events = events_of(job.id());
    let of = |kind: &str| -> Vec<&Value> {
        events
            .iter()
            .filter(|(k, _)| k == kind)
            .map(|(_, d)| d)
            .collect()
    };
    assert!(of("output").len() >= 3, "{}", of("output").len());
    assert_eq!(of("log")[0]["truncated"], true);
    assert_eq!(of("progress")[0]["truncated"], true);
    // The job keeps the cut progress message: without input and output its done is
    // still too large, so it leaves out labels and progress too.
    assert_eq!(
        of("done")[0]["omitted"],
        json!(["input", "output", "labels", "progress"])
    );

    let mut job = sdk.submit("bytes", &json!({ "n": 512 * KIB })).unwrap();
    assert_eq!(job.wait().unwrap().status, JobStatus::Succeeded);
    let events = events_of(job.id());
    let done = &events.last().unwrap().1;
    assert_eq!(done["omitted"], json!(["input", "output"]));
    assert!(done.get("output").is_none() && done.get("input").is_none());

    let mut job = sdk.submit("bytes", &json!({ "n": MIB + 1 })).unwrap();
    let failed = job.wait().unwrap();
    assert_eq!(failed.status, JobStatus::Failed);
    let error = failed.error.clone().unwrap();
    assert_eq!(error.code.as_deref(), Some("output_too_large"), "{error}");
    assert_eq!(failed.output, None);
    server.shutdown();
}
