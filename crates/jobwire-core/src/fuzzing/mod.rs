//! The bodies of the fuzz targets, in one place: each `fuzz/fuzz_targets/<name>.rs`
//! (cargo-fuzz, nightly) is one call to [`run`], and the corpus replay test
//! (`tests/fuzz_corpus.rs`, stable, in CI) feeds every file of `fuzz/corpus/<name>/`
//! and every `seeds` input through the same [`run`], so CI runs every case the fuzzer
//! ever kept. Not part of the SDK's API.
//!
//! Each body reads whatever a peer could send — an event stream in any chunking, an
//! error answer with any status, headers and body, a `Retry-After`, a `Prefer`, a job
//! or event, an input to check against a schema or a schema itself — and panics only on
//! a bug: a panic inside the SDK, or a property that must hold and does not (the same
//! events whatever the chunking, an error's status the answer's, a pause no longer than
//! the policy's `max_delay`, …).
//!
//! ```
//! use jobwire_core::fuzzing;
//! for target in fuzzing::TARGETS {
//!     for seed in fuzzing::seeds(target).iter().take(3) {
//!         assert!(fuzzing::run(target, seed, std::time::Instant::now()));
//!     }
//! }
//! assert!(!fuzzing::run("no-such-target", b"", std::time::Instant::now()));
//! ```

mod seeds;
#[cfg(feature = "validation")]
mod validation;

use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::endpoint::{
    decode_json, error_from_response, parse_retry_after, retry_after_of, Endpoint, GetJob, ListJobs,
};
use crate::event::{FinishedJob, JobEvent};
use crate::follow::{FollowOutput, Follower, StreamTarget};
use crate::paging::Pager;
use crate::prefer::{wait_seconds, wait_value, PREFER};
use crate::retry::{Attempt, RetryPolicy};
use crate::sse::{SseDecoder, SseEvent};
use crate::stream::{EventProtocol, StreamStep};
use crate::throttle::Pacer;
use crate::{ClientConfig, Error, Health, Job, JobQuery, Page, Problem, Service};

pub use seeds::seeds;
#[cfg(feature = "validation")]
pub use validation::{schema, BUILTIN_SCHEMAS};

/// The fuzz targets [`run`] knows, each a file `fuzz/fuzz_targets/<name>.rs`.
#[cfg(feature = "validation")]
pub const TARGETS: &[&str] = &[
    "sse",
    "events",
    "problem",
    "retry_after",
    "prefer",
    "schema",
];
/// The fuzz targets [`run`] knows (`schema` needs the `validation` feature).
#[cfg(not(feature = "validation"))]
pub const TARGETS: &[&str] = &["sse", "events", "problem", "retry_after", "prefer"];

/// Runs fuzz target `target` on `data`, its machines starting at `now` (the driver's
/// clock, as for every core decision); `false` when there is no such target (in this
/// build: `schema` needs the `validation` feature). Panics on a bug.
pub fn run(target: &str, data: &[u8], now: Instant) -> bool {
    match target {
        "sse" => sse(data, now),
        "events" => events(data),
        "problem" => problem(data),
        "retry_after" => retry_after(data, now),
        "prefer" => prefer(data),
        #[cfg(feature = "validation")]
        "schema" => schema(data),
        _ => return false,
    }
    true
}

/// The limit of a decoder of the `sse` target: a mode byte's low four bits, 0 for the
/// default (1 MiB), else 8 bytes to 128 KiB, so that small inputs reach the limit too.
fn sse_limit(mode: u8) -> usize {
    match mode & 0x0f {
        0 => SseDecoder::DEFAULT_LIMIT,
        n => 4 << n,
    }
}

/// `sse`: the event-stream decoder fed a stream whole and in other chunks.
///
/// Input: a mode byte (low four bits: the limit, see `sse_limit`; high four bits: how
/// many cut bytes follow), the cut bytes (each the length of the next chunk, cycled; no
/// cut bytes: one byte at a time), then the stream. Every chunking decodes to the same
/// events, error, last event id and `retry`; every event goes through the job-event
/// decoders; a [`Follower`] (plain and routing) reads the same chunks.
pub fn sse(data: &[u8], now: Instant) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let limit = sse_limit(mode);
    let (cuts, stream) = rest.split_at(usize::from(mode >> 4).min(rest.len()));
    let chunks = chunked(stream, cuts);
    let whole = decode(limit, &[stream]);
    let split = decode(limit, &chunks);
    assert_eq!(whole, split, "the chunking changed what was decoded");
    for event in &whole.events {
        assert!(!event.event.is_empty(), "an event type defaults to message");
        assert!(
            !event.event.contains(['\r', '\n']) && !event.id.contains(['\r', '\n', '\0']),
            "{event:?}"
        );
        job_event(event);
    }
    follow(&chunks, false, now);
    follow(&chunks, true, now);
}

/// What a decoder made of a stream: its events, whether it failed, and its state after
/// `finish`.
#[derive(Debug, PartialEq, Eq)]
struct Decoded {
    events: Vec<SseEvent>,
    failed: bool,
    last_event_id: String,
    retry: Option<Duration>,
}

fn decode(limit: usize, chunks: &[&[u8]]) -> Decoded {
    let mut decoder = SseDecoder::with_limit(limit);
    let mut events = Vec::new();
    let failed = chunks
        .iter()
        .any(|chunk| decoder.push(chunk, &mut events).is_err());
    let decoded = Decoded {
        failed,
        last_event_id: decoder.last_event_id().to_owned(),
        retry: decoder.retry(),
        events: Vec::new(),
    };
    if failed {
        // Documented: a failed stream stays failed until `reset_stream`, then decodes.
        let mut more = Vec::new();
        assert!(decoder.push(b"data: x\n\n", &mut more).is_err() && more.is_empty());
        decoder.reset_stream();
        decoder
            .push(b"data: x\n\n", &mut more)
            .unwrap_or_else(|e| panic!("a reset stream does not decode: {e}"));
        assert_eq!(
            more,
            [SseEvent {
                event: "message".into(),
                data: "x".into(),
                id: decoded.last_event_id.clone(),
            }]
        );
    }
    decoder.finish();
    assert_eq!(decoder.last_event_id(), decoded.last_event_id);
    Decoded { events, ..decoded }
}

/// `stream` cut into chunks of the lengths in `cuts`, cycled; a zero is an empty chunk.
/// No cuts: one byte at a time.
fn chunked<'a>(stream: &'a [u8], cuts: &[u8]) -> Vec<&'a [u8]> {
    if cuts.is_empty() {
        return stream.chunks(1).collect();
    }
    let mut chunks = Vec::new();
    let mut rest = stream;
    let mut empty_in_a_row = 0;
    for &cut in cuts.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        if empty_in_a_row >= cuts.len() {
            // Only zeros: the rest in one chunk.
            chunks.push(rest);
            break;
        }
        let (chunk, tail) = rest.split_at(usize::from(cut).min(rest.len()));
        empty_in_a_row = if chunk.is_empty() {
            empty_in_a_row + 1
        } else {
            0
        };
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

/// A decoded event through the job-event decoders: [`JobEvent::from_sse`], and for a
/// `done` what a router reads ([`FinishedJob`]), which must agree with it.
fn job_event(sse: &SseEvent) {
    let event = JobEvent::from_sse(sse);
    if let Ok(Some(event)) = &event {
        let _ = event.done();
    }
    let Ok((id, finished)) = FinishedJob::from_sse(sse.clone()) else {
        return;
    };
    assert_eq!(Ok(id), sse.id.parse::<u64>());
    if let Ok(job) = finished.decode() {
        assert_eq!(
            job.id,
            finished.job_id(),
            "a router and a waiter read one job"
        );
        if sse.event == "done" {
            match event {
                Ok(Some(event)) => assert_eq!(event.job_id, job.id),
                other => panic!("a done event whose job decodes read as {other:?}"),
            }
        }
    }
}

/// A [`Follower`] of all events reads `chunks` at one instant, as a facade drives it
/// (it reads on while the follower asks to): no panic, and the events it hands out
/// have increasing ids.
fn follow(chunks: &[&[u8]], routing: bool, t0: Instant) {
    let mut follower = Follower::new(StreamTarget::all(), Duration::from_secs(45), 1);
    if routing {
        follower = follower.routing();
    }
    let Ok(head) = http::Response::builder()
        .header(http::header::CONTENT_TYPE, "text/event-stream")
        .body(())
    else {
        return;
    };
    let _ = follower.step(t0);
    if !follower.on_head(t0, &head.into_parts().0) {
        return;
    }
    let mut last = None;
    for chunk in chunks {
        follower.on_chunk(t0, chunk);
        if !drain(&mut follower, t0, &mut last) {
            return;
        }
    }
    follower.on_end(t0);
    drain(&mut follower, t0, &mut last);
}

/// Takes what a follower hands out at `now`, checking that ids increase; whether it
/// reads on.
fn drain(follower: &mut Follower, now: Instant, last: &mut Option<u64>) -> bool {
    loop {
        let id = match follower.step(now) {
            StreamStep::Yield(FollowOutput::Event(event)) => event.id,
            StreamStep::Yield(FollowOutput::Finished { id, .. }) => id,
            // A re-read of a job (a done without its input and output) carries no id.
            StreamStep::Yield(FollowOutput::Fail(_) | FollowOutput::Refresh { .. }) => continue,
            StreamStep::Read { .. } => return true,
            StreamStep::Connect { .. } | StreamStep::Stop => return false,
        };
        assert!(last.map_or(true, |last| id > last), "{id} after {last:?}");
        *last = Some(id);
    }
}

/// `events`: the job and event decoders.
///
/// Input: an event type, a line end, an event id, a line end, then the data (also read
/// as a job answer's body, with the id as its `Jobwire-Last-Event-Id`).
pub fn events(data: &[u8]) {
    let mut parts = data.splitn(3, |&b| b == b'\n');
    let event = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let id = parts.next().unwrap_or_default();
    let body = parts.next().unwrap_or_default();
    let sse = SseEvent {
        event: event.into_owned(),
        id: String::from_utf8_lossy(id).into_owned(),
        data: String::from_utf8_lossy(body).into_owned(),
    };
    job_event(&sse);

    if let Ok(job) = serde_json::from_slice::<Job>(body) {
        // What the SDK decodes it can encode, and decode again.
        let again = serde_json::to_vec(&job)
            .unwrap_or_else(|e| panic!("a decoded job does not encode: {e}"));
        if let Err(e) = serde_json::from_slice::<Job>(&again) {
            panic!("a job does not decode as it encoded: {e}");
        }
        let _ = (job.is_finished(), job.status.to_string());
    }
    let _ = serde_json::from_slice::<Service>(body);
    let _ = serde_json::from_slice::<Page<Service>>(body);
    let _ = serde_json::from_slice::<Health>(body);

    let mut answer = http::Response::new(Bytes::copy_from_slice(body));
    if let Ok(value) = HeaderValue::from_bytes(id) {
        answer
            .headers_mut()
            .insert(HeaderName::from_static("jobwire-last-event-id"), value);
    }
    if let Ok(snapshot) = GetJob::new("job_1").parse(answer.clone()) {
        let _ = snapshot.job.id;
    }
    if let Ok(page) = ListJobs::page(&JobQuery::default(), None).parse(answer) {
        // A walk through pages ends, also when a server repeats its cursor.
        let mut pager = Pager::new(None);
        let cursor = page.next_cursor;
        assert!(pager.advance(cursor.clone()).is_ok());
        let repeated = pager.advance(cursor.clone());
        assert_eq!(
            repeated.is_err(),
            cursor.is_some_and(|c| !c.is_empty()),
            "a repeated cursor ends the walk with an error"
        );
        assert_eq!(pager.next_request(), None);
    }
}

/// `problem`: an error answer read as the SDK's [`Error`].
///
/// Input: two bytes of status (100 to 999), header lines `name: value` up to an empty
/// line, then the body.
pub fn problem(data: &[u8]) {
    let [a, b, rest @ ..] = data else {
        return;
    };
    let status = 100 + u16::from_be_bytes([*a, *b]) % 900;
    let (head, body) = match find(rest, b"\n\n") {
        Some(at) => (&rest[..at], &rest[at + 2..]),
        None => (rest, &[][..]),
    };
    let Some(answer) = response(status, head, body) else {
        return;
    };
    let error = error_from_response(&answer);
    let _ = (error.to_string(), error.kind_name());
    assert_eq!(error.status(), Some(answer.status()), "{error:?}");
    let problem = error
        .problem()
        .unwrap_or_else(|| panic!("an error answer without a problem: {error:?}"));
    assert_eq!(problem.status, status, "the status line is the truth");
    if let Error::RateLimited { retry_after, .. } = &error {
        assert_eq!(*retry_after, retry_after_of(&answer));
    }
    if let Ok(problem) = serde_json::from_slice::<Problem>(body) {
        let _ = problem.to_string();
    }
    let decoded = decode_json::<Job>(answer.clone());
    assert!(decoded.is_err() || answer.status().is_success());
    let _ = decode_json::<Page<Job>>(answer);
}

/// The first position of `needle` in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// An answer of `status` with the `name: value` lines of `head` that are valid headers.
fn response(status: u16, head: &[u8], body: &[u8]) -> Option<http::Response<Bytes>> {
    let mut answer = http::Response::new(Bytes::copy_from_slice(body));
    *answer.status_mut() = http::StatusCode::from_u16(status).ok()?;
    for line in head.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii_start();
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            answer.headers_mut().append(name, value);
        }
    }
    Some(answer)
}

/// Client rate limits (requests a second) the `retry_after` target picks from with its
/// first byte; from 0x80 on, the eight bytes after it are the rate.
const RATES: &[Option<f64>] = &[
    None,
    Some(1.0),
    Some(10.0),
    Some(1e-3),
    Some(1e-9),
    Some(1e-20),
    Some(1e-300),
    Some(f64::MIN_POSITIVE),
    Some(5e-324),
    Some(1e6),
    Some(1e9),
];

/// Longest pauses ([`RetryPolicy::max_delay`]) the `retry_after` target picks from.
const MAX_DELAYS: &[Duration] = &[
    Duration::from_secs(10),
    Duration::ZERO,
    Duration::from_millis(1),
    Duration::from_secs(3600),
    Duration::from_secs(u64::MAX / 4),
    Duration::MAX,
];

/// `retry_after`: a `Retry-After` read, and the pauses made of it — the client's
/// throttle and retry policy ([`Pacer`]) and an event stream's reconnection
/// ([`Follower`]).
///
/// Input: a byte choosing the client's rate limit and the policy's `max_delay` (from
/// 0x80 on, eight more bytes are the rate), then the `Retry-After` value, a line end,
/// and the answer's `Date`.
pub fn retry_after(data: &[u8], t0: Instant) {
    let Some((&choice, mut rest)) = data.split_first() else {
        return;
    };
    let rate = if choice >= 0x80 && rest.len() >= 8 {
        let (bits, tail) = rest.split_at(8);
        rest = tail;
        let mut raw = [0; 8];
        raw.copy_from_slice(bits);
        Some(f64::from_be_bytes(raw))
    } else {
        RATES[usize::from(choice) % RATES.len()]
    };
    let max_delay = MAX_DELAYS[usize::from(choice / 16) % MAX_DELAYS.len()];
    let (value, date) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };

    let text = String::from_utf8_lossy(value);
    let epoch = SystemTime::UNIX_EPOCH;
    for now in [
        Some(epoch),
        epoch.checked_add(Duration::from_secs(1_798_761_600)),
        epoch.checked_add(Duration::from_secs(253_402_300_799)),
        epoch.checked_add(Duration::from_secs(1 << 40)),
    ]
    .into_iter()
    .flatten()
    {
        let parsed = parse_retry_after(&text, now);
        if let Ok(seconds) = text.trim().parse::<u64>() {
            assert_eq!(parsed, Some(Duration::from_secs(seconds)));
        }
    }

    let mut head = b"retry-after: ".to_vec();
    head.extend_from_slice(value);
    if let Some(date) = date {
        head.extend_from_slice(b"\ndate: ");
        head.extend_from_slice(date);
    }
    for status in [429, 503] {
        let Some(answer) = response(status, &head, b"") else {
            continue;
        };
        let _ = error_from_response(&answer).to_string();
        pace(rate, max_delay, &answer, t0);
        reconnect(&answer, t0);
    }
}

/// A client with `rate` and a policy with `max_delay` after `answer`: neither the
/// call's pause nor the one every call is held for is longer than `max_delay` (or, for
/// an answer without a usable `Retry-After`, the throttle's default second).
fn pace(rate: Option<f64>, max_delay: Duration, answer: &http::Response<Bytes>, t0: Instant) {
    let mut config = ClientConfig::default();
    if let Some(rate) = rate {
        config = config.rate_limit(rate);
    }
    let Ok(config) = config.validate() else {
        return;
    };
    let pacer = Pacer::new(&config, 7);
    let policy = RetryPolicy::default().max_delay(max_delay);
    let Ok(request) = http::Request::get("http://127.0.0.1/v1/jobs/job_1").body(Bytes::new())
    else {
        return;
    };
    let attempt = pacer.after(&policy, 1, &request, &Ok(answer.clone()), None, t0);
    if let Attempt::Again { after } = attempt {
        assert!(after <= max_delay, "{after:?} past max_delay {max_delay:?}");
    }
    let held = pacer.reserve(t0);
    assert!(
        held <= max_delay.max(Duration::from_secs(1)),
        "every call held {held:?}, past max_delay {max_delay:?}"
    );
    // The next slots, then later: the rate's spacing added up.
    for later in [0, 1, 3600] {
        let now = t0.checked_add(Duration::from_secs(later)).unwrap_or(t0);
        let _ = pacer.reserve(now);
        let _ = pacer.after(&policy, 2, &request, &Ok(answer.clone()), None, now);
    }
}

/// An event stream refused with `answer` reconnects after a pause no longer than a
/// follower's cap (30 s), whatever the `Retry-After`.
fn reconnect(answer: &http::Response<Bytes>, t0: Instant) {
    let mut follower = Follower::new(StreamTarget::job("job_1"), Duration::from_secs(45), 3);
    let _ = follower.step(t0);
    follower.on_refused(t0, answer.clone());
    match follower.step(t0) {
        StreamStep::Connect { pause } => {
            assert!(
                pause <= Duration::from_secs(30),
                "reconnects after {pause:?}"
            )
        }
        StreamStep::Yield(FollowOutput::Fail(_)) | StreamStep::Stop => {}
        other => panic!("after a refusal: {other:?}"),
    }
}

/// `prefer`: the `Prefer` header as the server reads it.
///
/// Input: eight bytes (a number of seconds), then header values, one a line. Whatever
/// the headers say, `wait=N` written by the SDK and appended after them reads back as
/// N when they had no `wait`, and changes nothing otherwise (the first counts).
pub fn prefer(data: &[u8]) {
    let (seconds, values) = if data.len() >= 8 {
        let (bits, rest) = data.split_at(8);
        let mut raw = [0; 8];
        raw.copy_from_slice(bits);
        (u64::from_be_bytes(raw), rest)
    } else {
        (0, data)
    };
    let mut headers = HeaderMap::new();
    for line in values.split(|&b| b == b'\n') {
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.append(PREFER, value);
        }
    }
    let read = wait_seconds(&headers);
    if let Err(e) = &read {
        let _ = e.to_string();
    }
    headers.append(PREFER, wait_value(seconds));
    let with_ours = wait_seconds(&headers);
    match read {
        Ok(None) => assert_eq!(with_ours, Ok(Some(seconds))),
        theirs => assert_eq!(with_ours, theirs, "the first wait counts"),
    }
}
