//! The services every server ships with, for demos, examples, tests and benchmarks. Each
//! is a real handler, not a canned answer.

use std::time::Duration;

use jobwire_core::JobError;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{Handler, HandlerResult, JobContext, ServiceDef};
use crate::ids::hex;

/// The words the `steps` service streams, one per step, like a chat reply.
const WORDS: &[&str] = &[
    "Every", "step", "of", "this", "job", "streams", "one", "more", "word", "of", "its", "answer",
];

/// How many `digest` rounds run between two checks for cancellation.
const DIGEST_CHECK_EVERY: u64 = 16_384;

pub(super) fn all() -> Vec<ServiceDef> {
    vec![
        ServiceDef {
            id: "svc_echo".into(),
            name: "echo".into(),
            description: "Answers with its input.".into(),
            input_schema: json!({}),
            // Side-effect free: a job finishes within its submit and is stored once.
            handler: Handler::from_async(|input, _ctx| async move { Ok(input) })
                .side_effect_free(),
            kind: "builtin",
        },
        ServiceDef {
            id: "svc_sleep".into(),
            name: "sleep".into(),
            description: "Waits `duration_seconds` on the event loop, then answers {\"slept\": duration_seconds}.".into(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "duration_seconds": {"type": "number", "minimum": 0, "maximum": 3600}
                },
                "required": ["duration_seconds"],
                "additionalProperties": false
            }),
            handler: Handler::from_async(sleep),
            kind: "builtin",
        },
        ServiceDef {
            id: "svc_fail".into(),
            name: "fail".into(),
            description: "Fails with `message` (error code `fail`).".into(),
            input_schema: json!({
                "type": "object",
                "properties": {"message": {"type": "string"}},
                "required": ["message"]
            }),
            handler: Handler::from_async(fail).side_effect_free(),
            kind: "builtin",
        },
        ServiceDef {
            id: "svc_steps".into(),
            name: "steps".into(),
            description: "Runs `steps` steps `interval_ms` apart, reporting progress, a log line and an output chunk per step.".into(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "steps": {"type": "integer", "minimum": 1, "maximum": 1000},
                    "interval_ms": {"type": "integer", "minimum": 0, "maximum": 60000}
                },
                "required": ["steps", "interval_ms"],
                "additionalProperties": false
            }),
            handler: Handler::from_async(steps),
            kind: "builtin",
        },
        ServiceDef {
            id: "svc_digest".into(),
            name: "digest".into(),
            description: "CPU-bound: SHA-256 of `data`, iterated `rounds` times, on the worker pool.".into(),
            input_schema: json!({
                "type": "object",
                "properties": {
                    "data": {"type": "string", "maxLength": 1_000_000},
                    "rounds": {"type": "integer", "minimum": 1, "maximum": 10_000_000}
                },
                "required": ["data", "rounds"],
                "additionalProperties": false
            }),
            handler: Handler::from_blocking(digest),
            kind: "builtin",
        },
    ]
}

/// An input error a handler meets despite validation (a schema that is too lax).
fn bad_input(message: String) -> JobError {
    let mut e = JobError::new(message);
    e.code = Some("bad_input".into());
    e
}

fn number(input: &Value, key: &str) -> Result<f64, JobError> {
    input
        .get(key)
        .and_then(Value::as_f64)
        .ok_or_else(|| bad_input(format!("{key} must be a number")))
}

/// A non-negative integer; `3.0` counts, as in JSON Schema.
fn integer(input: &Value, key: &str) -> Result<u64, JobError> {
    let value = input.get(key);
    value
        .and_then(Value::as_u64)
        .or_else(|| {
            value
                .and_then(Value::as_f64)
                .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f <= 2f64.powi(53))
                .map(|f| f as u64)
        })
        .ok_or_else(|| bad_input(format!("{key} must be a non-negative integer")))
}

async fn sleep(input: Value, _ctx: JobContext) -> HandlerResult {
    let seconds = number(&input, "duration_seconds")?;
    let duration = Duration::try_from_secs_f64(seconds)
        .map_err(|_| bad_input("duration_seconds is out of range".into()))?;
    tokio::time::sleep(duration).await;
    Ok(json!({ "slept": input["duration_seconds"] }))
}

async fn fail(input: Value, _ctx: JobContext) -> HandlerResult {
    let message = input
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("failed on request");
    let mut error = JobError::new(message);
    error.code = Some("fail".into());
    Err(error)
}

/// The output chunk of step `i` (1-based) of `n`: the next word, and a full stop at the
/// end, so the chunks concatenate to a sentence.
fn chunk(i: u64, n: u64) -> String {
    let word = WORDS[usize::try_from(i - 1).unwrap_or(0) % WORDS.len()];
    let sep = if i == 1 { "" } else { " " };
    let end = if i == n { "." } else { "" };
    format!("{sep}{word}{end}")
}

async fn steps(input: Value, ctx: JobContext) -> HandlerResult {
    let n = integer(&input, "steps")?;
    let interval = Duration::from_millis(integer(&input, "interval_ms")?);
    if n == 0 {
        return Err(bad_input("steps must be at least 1".into()));
    }
    let mut text = String::new();
    for i in 1..=n {
        tokio::time::sleep(interval).await;
        ctx.progress(i as f64 / n as f64, format!("step {i} of {n}"));
        ctx.log(format!("finished step {i} of {n}"));
        let piece = chunk(i, n);
        text.push_str(&piece);
        ctx.output(piece);
    }
    Ok(json!({ "steps": n, "text": text }))
}

/// Iterated SHA-256: round 1 hashes the bytes of `data`, every later round the previous
/// 32-byte digest.
fn iterated_sha256(data: &[u8], rounds: u64, cancelled: impl Fn() -> bool) -> Option<[u8; 32]> {
    let mut out: [u8; 32] = Sha256::digest(data).into();
    for round in 2..=rounds {
        if round % DIGEST_CHECK_EVERY == 0 && cancelled() {
            return None;
        }
        out = Sha256::digest(out).into();
    }
    Some(out)
}

fn digest(input: Value, ctx: JobContext) -> HandlerResult {
    let data = input
        .get("data")
        .and_then(Value::as_str)
        .ok_or_else(|| bad_input("data must be a string".into()))?;
    let rounds = integer(&input, "rounds")?.max(1);
    match iterated_sha256(data.as_bytes(), rounds, || ctx.is_cancelled()) {
        Some(out) => Ok(json!({ "hex": hex(&out), "rounds": rounds })),
        // The job is already terminal; this answer is dropped.
        None => Err(JobError::new("cancelled")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_known_vectors() {
        let once = iterated_sha256(b"abc", 1, || false).unwrap();
        assert_eq!(
            hex(&once),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let twice = iterated_sha256(b"abc", 2, || false).unwrap();
        let expected: [u8; 32] = Sha256::digest(once).into();
        assert_eq!(twice, expected);
        assert!(iterated_sha256(b"abc", 100_000, || true).is_none());
    }

    #[test]
    fn chunks_make_a_sentence() {
        let text: String = (1..=3).map(|i| chunk(i, 3)).collect();
        assert_eq!(text, "Every step of.");
        let long: String = (1..=13).map(|i| chunk(i, 13)).collect();
        assert!(long.ends_with("answer Every."));
    }

    #[test]
    fn integers_accept_integral_floats() {
        assert_eq!(integer(&json!({"n": 3}), "n").unwrap(), 3);
        assert_eq!(integer(&json!({"n": 3.0}), "n").unwrap(), 3);
        assert!(integer(&json!({"n": 3.5}), "n").is_err());
        assert!(integer(&json!({"n": -1}), "n").is_err());
        assert!(integer(&json!({}), "n").is_err());
    }
}
