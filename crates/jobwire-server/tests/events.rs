//! The event streams over real sockets: history then live without gap or duplicate,
//! resume (and 204 once a finished job's stream has nothing more), 410 once retention
//! removed a resume point, tenants, slow subscribers and heartbeats. Streams are read with hyper's HTTP/1.1 client and the SDK core's SSE
//! decoder, incrementally, as a client would.

mod common;

use std::time::{Duration, Instant};

use common::sse::{data, ids, kinds, open_on, Stream};
use common::Client;
use jobwire_core::sse::SseEvent;
use jobwire_core::Job;
use jobwire_server::{spawn, ServerConfig, ServerHandle};
use serde_json::{json, Value};

async fn open(server: &ServerHandle, path: &str, last_event_id: Option<&str>) -> Stream {
    open_on(server.addr(), server.token(), path, last_event_id, None).await
}

/// The events a `steps` job of `n` steps records, in order.
fn steps_kinds(n: usize) -> Vec<&'static str> {
    let mut want = vec!["status", "status"];
    for _ in 0..n {
        want.extend(["progress", "log", "output"]);
    }
    want.extend(["status", "done"]);
    want
}

async fn submit(client: &Client, service: &str, input: Value) -> Job {
    let resp = client.submit(service, input, None).await;
    assert_eq!(resp.status, 202, "{resp:?}");
    resp.job()
}

async fn start(config: ServerConfig) -> (ServerHandle, Client) {
    let server = spawn(config).await.unwrap();
    let client = Client::new(server.addr(), server.token());
    (server, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_then_live_without_gap_or_duplicate() {
    let (server, client) = start(ServerConfig::new()).await;
    let n = 20;
    let job = submit(&client, "steps", json!({"steps": n, "interval_ms": 15})).await;
    let path = format!("/v1/jobs/{}/events", job.id);
    // Streams opened at different moments each get the whole story: history up to the
    // moment they join, live after, the seam invisible.
    let mut streams = Vec::new();
    for _ in 0..6 {
        streams.push(tokio::spawn({
            let stream = open(&server, &path, None).await;
            async move {
                let mut stream = stream;
                assert_eq!(stream.status, 200);
                assert_eq!(stream.content_type, "text/event-stream");
                stream.rest().await
            }
        }));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One stream opened after the job finished: all history, then it ends.
    let mut late = Vec::new();
    for handle in streams {
        late = handle.await.unwrap();
        assert_eq!(kinds(&late), steps_kinds(n), "every event once, in order");
        assert!(ids(&late).windows(2).all(|w| w[0] < w[1]));
        assert!(late.iter().all(|e| data(e)["job_id"] == job.id.as_str()));
    }
    let after = open(&server, &path, None).await.rest().await;
    assert_eq!(
        after, late,
        "the same events with the same ids, from the store"
    );
    let done: Job = serde_json::from_str(&after.last().unwrap().data).unwrap();
    assert_eq!(done.status, jobwire_core::JobStatus::Succeeded);
    assert_eq!(done.output.unwrap()["steps"], n);
    // Streams carry a retry hint, once.
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_mid_stream_gives_every_later_event_once() {
    let (server, client) = start(ServerConfig::new()).await;
    let job = submit(&client, "steps", json!({"steps": 10, "interval_ms": 20})).await;
    let path = format!("/v1/jobs/{}/events", job.id);

    let mut first = open(&server, &path, None).await;
    let mut seen = Vec::new();
    for _ in 0..8 {
        seen.push(first.next().await.unwrap());
    }
    // The connection drops mid-job; the client resumes after the last id it has.
    drop(first);
    let last = seen.last().unwrap().id.clone();
    let mut resumed = open(&server, &path, Some(&last)).await;
    seen.extend(resumed.rest().await);
    assert_eq!(kinds(&seen), steps_kinds(10));
    assert!(ids(&seen).windows(2).all(|w| w[0] < w[1]));

    // The multiplexed stream resumes the same way, filtered to the job.
    let all = open(&server, &format!("/v1/events?job={}", job.id), None)
        .await
        .until("done", &job.id)
        .await;
    assert_eq!(all, seen);
    let cut = &all[5].id;
    let rest = open(&server, &format!("/v1/events?job={}", job.id), Some(cut))
        .await
        .until("done", &job.id)
        .await;
    assert_eq!(rest, all[6..].to_vec());

    // A bad resume point is a problem, not a stream.
    let resp = client
        .get_with(&path, &[("Last-Event-ID", "yesterday")])
        .await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.problem().code, "bad_request");

    // Resumed at (or past) its `done`, a finished job's stream is over: 204, no body —
    // what makes a browser's EventSource stop. From before the `done`, the rest comes.
    let done = &seen.last().unwrap().id;
    for at in [done.as_str(), "999999999"] {
        let over = client.get_with(&path, &[("Last-Event-ID", at)]).await;
        assert_eq!(over.status, 204, "at {at}: {over:?}");
        assert!(over.body.is_empty());
    }
    let before_done = &seen[seen.len() - 2].id;
    let last = open(&server, &path, Some(before_done)).await.rest().await;
    assert_eq!(kinds(&last), ["done"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn multiplexed_stream_without_resume_point_is_live_only() {
    let (server, client) = start(ServerConfig::new()).await;
    let before = submit(&client, "echo", json!("old")).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut stream = open(&server, "/v1/events", None).await;
    let after = submit(&client, "echo", json!("new")).await;
    let events = stream.until("done", &after.id).await;
    assert!(events
        .iter()
        .all(|e| data(e)["job_id"] == after.id.as_str()));
    assert_eq!(kinds(&events), ["status", "status", "status", "done"]);
    // The header on job answers is a resume point that misses nothing of the job.
    let resp = client.get(&format!("/v1/jobs/{}", before.id)).await;
    let position: i64 = resp
        .header("jobwire-last-event-id")
        .unwrap()
        .parse()
        .unwrap();
    assert!(position >= ids(&events)[3], "{position}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_submit_answer_position_misses_nothing_of_the_job() {
    let (server, client) = start(ServerConfig::new()).await;
    for _ in 0..20 {
        let resp = client
            .submit("steps", json!({"steps": 2, "interval_ms": 0}), None)
            .await;
        let job = resp.job();
        let position = resp.header("jobwire-last-event-id").unwrap().to_owned();
        let events = open(
            &server,
            &format!("/v1/events?job={}", job.id),
            Some(&position),
        )
        .await
        .until("done", &job.id)
        .await;
        // Everything the 202 did not show yet is after the position; nothing it showed
        // (its own `queued`) comes again.
        let mut want = steps_kinds(2);
        if job.status == jobwire_core::JobStatus::Queued {
            want.remove(0);
        } else {
            want.drain(..2);
        }
        assert!(
            kinds(&events).ends_with(&want[want.len() - 2..]),
            "{:?}",
            kinds(&events)
        );
        assert!(!events.iter().any(|e| e.event == "status"
            && data(e)["status"] == "queued"
            && job.status == jobwire_core::JobStatus::Queued));
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pruned_resume_point_is_410() {
    let (server, client) =
        start(ServerConfig::new().event_retention(Duration::from_millis(100))).await;
    let job = submit(&client, "echo", json!(1)).await;
    let path = format!("/v1/jobs/{}/events", job.id);
    let events = open(&server, &path, None).await.rest().await;
    assert_eq!(kinds(&events).last(), Some(&"done"));
    // Wait out the window and a retention pass or two.
    tokio::time::sleep(Duration::from_millis(600)).await;

    let resp = client.get(&path).await;
    assert_eq!(resp.status, 410);
    assert_eq!(resp.problem().code, "gone");
    let resp = client
        .get_with("/v1/events", &[("Last-Event-ID", &events[0].id)])
        .await;
    assert_eq!(resp.status, 410);
    assert!(resp.problem().detail.unwrap().contains("GET"));
    // The job itself stays readable; `Last-Event-ID: 0` asks for what is kept.
    assert_eq!(
        client.get(&format!("/v1/jobs/{}", job.id)).await.status,
        200
    );
    let mut kept = open(&server, "/v1/events", Some("0")).await;
    assert_eq!(kept.status, 200);
    let fresh = submit(&client, "echo", json!(2)).await;
    let events = kept.until("done", &fresh.id).await;
    assert!(events
        .iter()
        .all(|e| data(e)["job_id"] == fresh.id.as_str()));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_never_cross_tenants() {
    let server = spawn(
        ServerConfig::new()
            .token("token-a", "tenant-a")
            .token("token-b", "tenant-b"),
    )
    .await
    .unwrap();
    let a = Client::new(server.addr(), "token-a");
    let b = Client::new(server.addr(), "token-b");
    let mut b_all = open_on(server.addr(), "token-b", "/v1/events", Some("0"), None).await;
    let job_a = submit(&a, "echo", json!("a")).await;
    let resp = b.get(&format!("/v1/jobs/{}/events", job_a.id)).await;
    assert_eq!(resp.status, 404);
    // A filter on another tenant's job is allowed, and matches nothing.
    let mut filtered = open_on(
        server.addr(),
        "token-b",
        &format!("/v1/events?job={}", job_a.id),
        Some("0"),
        None,
    )
    .await;
    assert_eq!(filtered.status, 200);
    let quiet = tokio::time::timeout(Duration::from_millis(300), filtered.next()).await;
    assert!(quiet.is_err(), "B saw A's event: {quiet:?}");
    let job_b = submit(&b, "echo", json!("b")).await;
    let seen = b_all.until("done", &job_b.id).await;
    assert!(
        seen.iter().all(|e| data(e)["job_id"] == job_b.id.as_str()),
        "{seen:?}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_never_reads_delays_nobody_and_is_cut_off() {
    let (server, client) = start(ServerConfig::new().subscriber_buffer(16)).await;
    // A tiny receive buffer: once the kernel's buffers are full the server cannot write
    // to this subscriber at all.
    let mut stalled = open_on(
        server.addr(),
        server.token(),
        "/v1/events",
        None,
        Some(4096),
    )
    .await;
    // A subscriber that keeps reading, at the same time.
    let mut reader = open(&server, "/v1/events", None).await;
    let reading = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen
            .iter()
            .filter(|e: &&SseEvent| e.event == "done")
            .count()
            < 40
        {
            seen.push(reader.next().await.expect("the reader is never cut off"));
        }
        seen
    });
    // Each `done` carries the job with its input and output: ~200 KB per job.
    let big = "x".repeat(100_000);
    let started = Instant::now();
    let mut last = String::new();
    for _ in 0..40 {
        let resp = client.submit("echo", json!(big), Some(10)).await;
        assert_eq!(resp.status, 200, "finished within the wait");
        last = resp.job().id;
    }
    let took = started.elapsed();
    let seen = reading.await.unwrap();
    assert!(ids(&seen).windows(2).all(|w| w[0] < w[1]));
    assert!(
        took < Duration::from_secs(20),
        "jobs were held up: {took:?}"
    );

    // The stalled subscriber, read at last, ends early instead of holding everything.
    let got = stalled.rest().await;
    let done = got.iter().filter(|e| e.event == "done").count();
    assert!(
        done < 40,
        "it was cut off, not buffered without bound ({done} done)"
    );
    // And resumes from the store with what it missed.
    let from = got.last().map_or("0".to_owned(), |e| e.id.clone());
    let rest = open(&server, "/v1/events", Some(&from))
        .await
        .until("done", &last)
        .await;
    let mut all = got;
    all.extend(rest);
    assert_eq!(all.iter().filter(|e| e.event == "done").count(), 40);
    assert!(ids(&all).windows(2).all(|w| w[0] < w[1]));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alives_come_at_the_heartbeat_interval() {
    let (server, _) = start(ServerConfig::new().heartbeat(Duration::from_millis(200))).await;
    let mut stream = open(&server, "/v1/events", None).await;
    let opened = Instant::now();
    // Read whatever comes for about a second: only keep-alives on a quiet stream.
    let read = tokio::time::timeout(Duration::from_millis(1100), stream.next()).await;
    assert!(read.is_err(), "no events on a quiet stream: {read:?}");
    let beats = &stream.keep_alives;
    assert!(
        (4..=6).contains(&beats.len()),
        "{} keep-alives",
        beats.len()
    );
    let first = beats[0] - opened;
    assert!(first >= Duration::from_millis(150), "first after {first:?}");
    for pair in beats.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(150) && gap <= Duration::from_millis(400),
            "{gap:?}"
        );
    }
    // Server shutdown ends the stream rather than holding the connection open.
    let ends = tokio::spawn(async move { stream.rest().await });
    server.shutdown().await;
    tokio::time::timeout(Duration::from_secs(2), ends)
        .await
        .expect("the stream ends with the server")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_per_tenant_are_capped() {
    let server = spawn(
        ServerConfig::new()
            .token("token-a", "tenant-a")
            .token("token-b", "tenant-b")
            .max_streams_per_tenant(2)
            .heartbeat(Duration::from_millis(100)),
    )
    .await
    .unwrap();
    let a = Client::new(server.addr(), "token-a");
    let job = submit(&a, "sleep", json!({"duration_seconds": 30})).await;
    let on = |token: &'static str, path: String| {
        let addr = server.addr();
        async move { open_on(addr, token, &path, None, None).await }
    };
    let first = on("token-a", "/v1/events".into()).await;
    let second = on("token-a", format!("/v1/jobs/{}/events", job.id)).await;
    assert_eq!((first.status, second.status), (200, 200));
    // A third stream of the tenant, of either kind, is refused with a problem that says
    // when to come back; nothing else is.
    for path in [
        "/v1/events?service=echo".to_owned(),
        format!("/v1/jobs/{}/events", job.id),
    ] {
        let refused = a.get(&path).await;
        assert_eq!(refused.status, 429, "{path}: {refused:?}");
        assert_eq!(refused.header("retry-after"), Some("1"));
        let problem = refused.problem();
        assert_eq!(problem.code, "rate_limited");
        assert!(problem.detail.unwrap().contains("max_streams_per_tenant"));
    }
    assert_eq!(
        a.get(&format!("/v1/jobs/{}", job.id)).await.status,
        200,
        "other requests are not counted"
    );
    let other = on("token-b", "/v1/events".into()).await;
    assert_eq!(other.status, 200, "another tenant has streams of its own");
    // A stream that ends gives its slot back: once the server has seen the connection
    // go (its next keep-alive fails to be written), a new stream opens.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let again = on("token-a", "/v1/events".into()).await;
        if again.status == 200 {
            break;
        }
        assert_eq!(again.status, 429);
        assert!(Instant::now() < deadline, "the slot never came back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(second);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_over_its_byte_bound_is_cut_off_and_resumes_without_gap_or_duplicate() {
    // The bound is in bytes: far fewer events than the count bound (4096) pass it.
    let (server, client) = start(ServerConfig::new().subscriber_buffer_bytes(64 * 1024)).await;
    let path = "/v1/events?service=echo";
    // Subscribed to echo's events (the service index), with a tiny receive buffer and
    // never read while the jobs run: once the socket buffers are full, its queue grows.
    let mut stalled = open_on(server.addr(), server.token(), path, Some("0"), Some(4096)).await;
    // Events of another service are not its to hold.
    let steps = submit(&client, "steps", json!({"steps": 5, "interval_ms": 0})).await;
    // ~200 KB a `done` (input and output), 10 MB in all: more than the kernel's socket
    // buffers hold, far fewer events than the count bound.
    let big = "x".repeat(100_000);
    let mut jobs = Vec::new();
    for i in 0..50 {
        let resp = client.submit("echo", json!([i, big]), Some(10)).await;
        assert_eq!(resp.status, 200, "finished within the wait");
        jobs.push(resp.job().id);
    }
    let last = jobs.last().unwrap().clone();
    // What the store has, from a fresh stream: the reference.
    let all = open(&server, path, Some("0"))
        .await
        .until("done", &last)
        .await;
    assert_eq!(all.len(), 50 * 4);
    assert!(all.iter().all(|e| data(e)["job_id"] != steps.id.as_str()));

    // Read at last, the stalled stream ends early: it was cut off, not buffered.
    let got = stalled.rest().await;
    assert!(got.len() < all.len(), "not cut off: {} events", got.len());
    // Resumed from the last id it got, it has every event once, in order.
    let from = got.last().map_or("0".to_owned(), |e| e.id.clone());
    let rest = open(&server, path, Some(&from))
        .await
        .until("done", &last)
        .await;
    let mut resumed = ids(&got);
    resumed.extend(ids(&rest));
    assert_eq!(resumed, ids(&all), "no gap, no duplicate");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_larger_than_the_byte_bound_is_sent_in_pieces() {
    // Each `done` here is larger than the whole bound: a history page holds one.
    let (server, client) = start(ServerConfig::new().subscriber_buffer_bytes(16 * 1024)).await;
    let big = "y".repeat(12_000);
    let mut jobs = Vec::new();
    for i in 0..8 {
        let resp = client.submit("echo", json!([i, big]), Some(10)).await;
        assert_eq!(resp.status, 200);
        jobs.push(resp.job().id);
    }
    let replay = open(&server, "/v1/events", Some("0"))
        .await
        .until("done", jobs.last().unwrap())
        .await;
    assert_eq!(kinds(&replay).len(), 8 * 4);
    assert!(ids(&replay).windows(2).all(|w| w[0] < w[1]));
    assert_eq!(
        replay.iter().filter(|e| e.event == "done").count(),
        8,
        "every large event, once"
    );
    for job in &jobs {
        let one = open(&server, &format!("/v1/jobs/{job}/events"), None)
            .await
            .rest()
            .await;
        assert_eq!(kinds(&one), ["status", "status", "status", "done"]);
        assert_eq!(data(one.last().unwrap())["output"][1], big.as_str());
    }
    server.shutdown().await;
}
