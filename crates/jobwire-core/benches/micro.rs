//! Micro-benchmarks of jobwire-core's hot paths, with allocation counts:
//!
//! - `sse_decoder`: [`SseDecoder::push`] over a stream of 1,000 job events as the server
//!   frames them, in one chunk and in the 1–64 byte pieces a socket hands over;
//! - `retry_policy_decide`: [`RetryPolicy::decide`] after each kind of answer, for a
//!   repeatable and a non-repeatable request;
//! - `job_decoding`: a `GET /v1/jobs/{id}` answer through [`GetJob`]'s
//!   [`Endpoint::parse`], and a `done` event through [`JobEvent::from_sse`].
//!
//! Every input is built outside the timed part (statics, or `Bencher::with_inputs`);
//! what a benchmark returns is dropped outside it too. `AllocProfiler` counts the
//! allocations made inside the timed part, per iteration.
//!
//! ```text
//! cargo bench -p jobwire-core --bench micro                      # full run
//! cargo bench -p jobwire-core --bench micro -- --sample-count 10 --sample-size 10
//! cargo bench -p jobwire-core --bench micro -- sse_decoder       # one group
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;
use std::time::Duration;

use bytes::Bytes;
use divan::counter::{BytesCount, ItemsCount};
use divan::{AllocProfiler, Bencher};
use jobwire_core::backoff::Jitter;
use jobwire_core::endpoint::{Endpoint, GetJob};
use jobwire_core::event::{EventKind, JobEvent};
use jobwire_core::retry::{Attempt, RetryBudget, RetryPolicy};
use jobwire_core::sse::{SseDecoder, SseEvent};
use jobwire_core::{Error, Job, JobStatus, Progress, TransportError, TransportErrorKind};
use serde_json::{json, Value};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

// ---------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------

/// Jobs in the multiplexed stream (`GET /v1/events`), their events interleaved.
const JOBS: usize = 20;
/// Events of each job: `status` running, 47 of `progress`/`log`/`output`, `status`
/// succeeded, `done`.
const EVENTS_PER_JOB: usize = 50;
/// Events in the stream (keep-alive comments are not events).
const EVENTS: usize = JOBS * EVENTS_PER_JOB;
/// A `: keep-alive` comment after every this many events.
const KEEP_ALIVE_EVERY: usize = 64;
/// The id of the stream's first event.
const FIRST_ID: u64 = 48_201;

fn job_id(n: usize) -> String {
    // The server's sortable ids: `job_`, 6 bytes of time and 8 random bytes, in hex.
    format!(
        "job_019ab3c47e21{:016x}",
        0x5d3a_91c2_0f7b_0000_u64 + n as u64
    )
}

/// A finished job as the server shows it: what `GET /v1/jobs/{id}` answers and what its
/// `done` event carries.
fn finished_job(n: usize) -> Job {
    let mut job = Job::new(
        job_id(n),
        "svc_019ab3a1f0c2e8d4b7a61f93",
        JobStatus::Succeeded,
    );
    job.service = "summarize".into();
    job.input = json!({
        "text": "Jobwire runs jobs on remote services. A client submits an input, \
                 follows the job's events as they happen and reads its output once it \
                 has succeeded; the server keeps every event for an hour.",
        "max_words": 24,
        "language": "en",
    });
    job.output = Some(json!({
        "summary": "Jobwire runs jobs remotely: submit an input, follow its events, \
                    read the output.",
        "words": 12,
        "model": "extractive-v3",
        "tokens": {"input": 41, "output": 17},
    }));
    job.labels = BTreeMap::from([
        ("env".to_owned(), "prod".to_owned()),
        ("team".to_owned(), "data".to_owned()),
        ("batch".to_owned(), "nightly-2026-11-23".to_owned()),
    ]);
    job.progress = Some(Progress::new(1.0, "summary written"));
    job.created_at = "2026-11-23T09:00:00.000000Z".into();
    job.started_at = Some("2026-11-23T09:00:00.012345Z".into());
    job.finished_at = Some("2026-11-23T09:00:01.873210Z".into());
    job
}

/// The `data:` of a job's `done` event: the whole job plus `job_id`, as the server
/// writes it.
fn done_data(n: usize) -> String {
    let mut data = serde_json::to_value(finished_job(n)).unwrap();
    if let Value::Object(map) = &mut data {
        map.insert("job_id".into(), Value::String(job_id(n)));
    }
    data.to_string()
}

/// The kind and `data:` of the `step`th event of job `n`.
fn job_event(n: usize, step: usize) -> (&'static str, String) {
    let id = job_id(n);
    let last = EVENTS_PER_JOB - 1;
    let middle = EVENTS_PER_JOB - 3;
    if step == 0 {
        return (
            "status",
            json!({"job_id": id, "status": "running"}).to_string(),
        );
    }
    if step == last - 1 {
        let data = json!({"job_id": id, "status": "succeeded"});
        return ("status", data.to_string());
    }
    if step == last {
        return ("done", done_data(n));
    }
    let (kind, data) = match step % 3 {
        1 => (
            "progress",
            json!({
                "job_id": id,
                "fraction": step as f64 / middle as f64,
                "message": format!("chunk {step} of {middle}"),
            }),
        ),
        2 => (
            "log",
            json!({
                "job_id": id,
                "line": format!("[summarize] chunk {step}: 412 tokens, 38 sentences scored in 310 µs"),
            }),
        ),
        _ => (
            "output",
            json!({"job_id": id, "chunk": " services — submit an input, follow"}),
        ),
    };
    (kind, data.to_string())
}

/// The body of `GET /v1/events` carrying [`EVENTS`] events, framed like the server does
/// (`id:`, `event:`, one `data:` line, a blank line), with a `: keep-alive` comment now
/// and then.
static STREAM: LazyLock<Vec<u8>> = LazyLock::new(|| {
    let mut out = Vec::new();
    for i in 0..EVENTS {
        let (kind, data) = job_event(i % JOBS, i / JOBS);
        let id = FIRST_ID + i as u64;
        out.extend_from_slice(format!("id: {id}\nevent: {kind}\ndata: {data}\n\n").as_bytes());
        if (i + 1) % KEEP_ALIVE_EVERY == 0 {
            out.extend_from_slice(b": keep-alive\n\n");
        }
    }
    out
});

/// [`STREAM`] cut into pieces of 1 to 64 bytes (a fixed pseudo-random sequence), as
/// reads off a socket may deliver it.
static SOCKET_CHUNKS: LazyLock<Vec<&'static [u8]>> = LazyLock::new(|| {
    let mut rest: &'static [u8] = &STREAM;
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut chunks = Vec::new();
    while !rest.is_empty() {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let len = (1 + (state % 64) as usize).min(rest.len());
        let (chunk, tail) = rest.split_at(len);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
});

/// Decodes `chunks` with a fresh decoder, as the benchmarks do; for checking inputs.
fn decode_all(chunks: &[&[u8]]) -> Vec<SseEvent> {
    let mut decoder = SseDecoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.push(chunk, &mut events).unwrap();
    }
    events
}

// ---------------------------------------------------------------------------------------
// 1. The SSE decoder
// ---------------------------------------------------------------------------------------

/// `SseDecoder::push` over the 1,000-event stream (about 150 KB). Times and
/// allocations are per stream: divide by 1,000 for one event (the `item/s` throughput is
/// events per second). The decoder and an output `Vec` with room for every event are
/// made outside the timed part, so the allocations counted are the decoder's own.
mod sse_decoder {
    use super::*;

    fn check(chunks: &[&[u8]]) {
        let events = decode_all(chunks);
        assert_eq!(events.len(), EVENTS);
        assert_eq!(events.iter().filter(|e| e.event == "done").count(), JOBS);
        assert_eq!(
            events[EVENTS - 1].id,
            (FIRST_ID + EVENTS as u64 - 1).to_string()
        );
        assert_eq!(
            events,
            decode_all(&[&STREAM]),
            "the same events however cut"
        );
        assert!(events.iter().any(|e| e.data.contains("310 µs")));
    }

    fn bench_chunks(bencher: Bencher, chunks: &[&[u8]]) {
        check(chunks);
        bencher
            .counter(ItemsCount::new(EVENTS))
            .counter(BytesCount::of_slice(&*STREAM))
            .with_inputs(|| (SseDecoder::new(), Vec::with_capacity(EVENTS)))
            .bench_local_values(|(mut decoder, mut events): (SseDecoder, Vec<SseEvent>)| {
                for chunk in chunks {
                    decoder.push(chunk, &mut events).unwrap();
                }
                // Returned, so that dropping them is not timed.
                (decoder, events)
            });
    }

    /// The whole body in one `push`.
    #[divan::bench]
    fn push_1000_events_in_one_chunk(bencher: Bencher) {
        bench_chunks(bencher, &[&STREAM]);
    }

    /// The body in pieces of 1 to 64 bytes, one `push` each (lines and UTF-8 cut
    /// anywhere).
    #[divan::bench]
    fn push_1000_events_in_1_to_64_byte_chunks(bencher: Bencher) {
        // Some cuts fall inside a UTF-8 sequence.
        assert!(SOCKET_CHUNKS
            .iter()
            .any(|c| std::str::from_utf8(c).is_err()));
        bench_chunks(bencher, &SOCKET_CHUNKS);
    }
}

// ---------------------------------------------------------------------------------------
// 2. The retry decision
// ---------------------------------------------------------------------------------------

/// What came back from the first attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Ok200,
    Unavailable503RetryAfter,
    TooMany429,
    ConnectRefused,
    NotFound404,
}

const ANSWERS: [Answer; 5] = [
    Answer::Ok200,
    Answer::Unavailable503RetryAfter,
    Answer::TooMany429,
    Answer::ConnectRefused,
    Answer::NotFound404,
];

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Answer::Ok200 => "200_ok",
            Answer::Unavailable503RetryAfter => "503_with_retry_after",
            Answer::TooMany429 => "429_without_retry_after",
            Answer::ConnectRefused => "connect_error",
            Answer::NotFound404 => "404_not_found",
        })
    }
}

impl Answer {
    /// The answer as the transport hands it to the policy, headers as the server sends
    /// them (a `Date` on every answer).
    fn build(self) -> Result<http::Response<Bytes>, Error> {
        let response = |status: u16, extra: &[(&str, &str)], body: &'static str| {
            let mut b = http::Response::builder()
                .status(status)
                .header("date", "Mon, 23 Nov 2026 09:00:01 GMT")
                .header("x-request-id", "req_019ab3c47e21a0b1c2d3e4f5");
            for (name, value) in extra {
                b = b.header(*name, *value);
            }
            Ok(b.body(Bytes::from_static(body.as_bytes())).unwrap())
        };
        let problem = "application/problem+json";
        match self {
            Answer::Ok200 => response(
                200,
                &[("content-type", "application/json")],
                r#"{"id":"job_1","service_id":"svc_1","status":"running"}"#,
            ),
            Answer::Unavailable503RetryAfter => response(
                503,
                &[("content-type", problem), ("retry-after", "1")],
                r#"{"type":"https://jobwire.dev/problems/unavailable","title":"Service Unavailable","status":503,"code":"unavailable"}"#,
            ),
            Answer::TooMany429 => response(
                429,
                &[("content-type", problem)],
                r#"{"type":"https://jobwire.dev/problems/rate_limited","title":"Too Many Requests","status":429,"code":"rate_limited"}"#,
            ),
            Answer::ConnectRefused => Err(Error::from(TransportError::new(
                TransportErrorKind::Connect,
                "connection refused (os error 111)",
            ))),
            Answer::NotFound404 => response(
                404,
                &[("content-type", problem)],
                r#"{"type":"https://jobwire.dev/problems/not_found","title":"Not Found","status":404,"code":"not_found"}"#,
            ),
        }
    }

    /// Whether the policy should send `request` again after this answer.
    fn retried(self, repeatable: bool) -> bool {
        match self {
            Answer::Ok200 | Answer::NotFound404 => false,
            Answer::Unavailable503RetryAfter | Answer::TooMany429 => repeatable,
            Answer::ConnectRefused => true,
        }
    }
}

/// `RetryPolicy::decide` (the default policy) after a first attempt of a call with 30 s
/// left. Each iteration gets a full budget and the same jitter seed, made outside the
/// timed part, so every iteration takes the same branch.
mod retry_policy_decide {
    use super::*;

    fn bench_decide(bencher: Bencher, request: http::Request<Bytes>, answer: Answer) {
        let policy = RetryPolicy::default();
        let result = answer.build();
        let time_left = Some(Duration::from_secs(30));
        let repeatable = request.method() == http::Method::GET;
        let decide = |(budget, jitter): &mut (RetryBudget, Jitter)| {
            policy.decide(1, &request, &result, time_left, budget, jitter)
        };
        let first = decide(&mut (RetryBudget::default(), Jitter::new(7)));
        assert_eq!(
            matches!(first, Attempt::Again { .. }),
            answer.retried(repeatable),
            "{answer} on a {} gave {first:?}",
            request.method()
        );
        bencher
            .with_inputs(|| (RetryBudget::default(), Jitter::new(7)))
            .bench_local_refs(decide);
    }

    /// A `GET /v1/jobs/{id}`: repeatable.
    #[divan::bench(args = ANSWERS)]
    fn get_job_repeatable(bencher: Bencher, answer: Answer) {
        let request = http::Request::get("http://127.0.0.1:7878/v1/jobs/job_1")
            .body(Bytes::new())
            .unwrap();
        bench_decide(bencher, request, answer);
    }

    /// A `POST` without an `Idempotency-Key` (nor the `Repeatable` mark): not repeatable.
    #[divan::bench(args = ANSWERS)]
    fn unkeyed_post_not_repeatable(bencher: Bencher, answer: Answer) {
        let request = http::Request::post("http://127.0.0.1:7878/v1/services/summarize/jobs")
            .header("content-type", "application/json")
            .body(Bytes::from_static(br#"{"input":{"text":"hi"}}"#))
            .unwrap();
        bench_decide(bencher, request, answer);
    }
}

// ---------------------------------------------------------------------------------------
// 3. Job decoding
// ---------------------------------------------------------------------------------------

/// Decoding a finished job (about 800 bytes of JSON: input, output, labels, progress,
/// times) from an answer and from a `done` event. The decoded value is returned, so
/// freeing it is not timed.
mod job_decoding {
    use super::*;

    /// `GetJob::parse` of a `200` answer with the job JSON and `jobwire-last-event-id`,
    /// as the SDK hands it over (body read into `Bytes`). Each iteration gets its own
    /// copy of the answer, made outside the timed part; the headers are freed inside it.
    #[divan::bench]
    fn get_job_parse_200_answer(bencher: Bencher) {
        let body = Bytes::from(serde_json::to_vec(&finished_job(0)).unwrap());
        let answer = http::Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .header("content-length", body.len())
            .header("date", "Mon, 23 Nov 2026 09:00:02 GMT")
            .header("x-request-id", "req_019ab3c47e21a0b1c2d3e4f5")
            .header("jobwire-last-event-id", "49250")
            .body(body.clone())
            .unwrap();
        let endpoint = GetJob::new(job_id(0));
        let snapshot = endpoint.parse(answer.clone()).unwrap();
        assert_eq!(snapshot.position, Some(49_250));
        assert_eq!(snapshot.job, finished_job(0));
        bencher
            .counter(BytesCount::of_slice(&body))
            .with_inputs(|| answer.clone())
            .bench_local_values(|answer| endpoint.parse(answer));
    }

    /// `JobEvent::from_sse` of a `done` event (the whole job plus `job_id`), as the
    /// decoder dispatched it.
    #[divan::bench]
    fn done_event_from_sse(bencher: Bencher) {
        let sse = SseEvent {
            event: "done".into(),
            data: done_data(0),
            id: "49250".into(),
        };
        let event = JobEvent::from_sse(&sse).unwrap().unwrap();
        assert_eq!(event.id, 49_250);
        assert!(matches!(&event.kind, EventKind::Done(job) if **job == finished_job(0)));
        bencher
            .counter(BytesCount::of_str(&sse.data))
            .bench_local(|| JobEvent::from_sse(divan::black_box(&sse)));
    }
}
