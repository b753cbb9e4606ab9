//! `jobwire batch SERVICE FILE --concurrency N`: one job per line of a JSON Lines file,
//! on the SDK's `run_all`, with a bar of finished jobs and the results in input order.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use jobwire::{BatchEvent, Error};
use serde::Serialize;
use serde_json::Value;

use crate::args::BatchArgs;
use crate::context::Context;
use crate::exit::Failure;
use crate::input::read_json_lines;
use crate::interrupt::{self, Interrupt};
use crate::progress;

/// What the progress hook has seen, shared with the Ctrl-C and `--timeout` paths.
#[derive(Debug, Clone, Default)]
struct Seen(Arc<Mutex<SeenState>>);

#[derive(Debug, Default)]
struct SeenState {
    /// The jobs submitted and not ended, by input index: what an interrupt leaves behind.
    unfinished: BTreeMap<usize, String>,
    /// How many inputs failed so far.
    failed: usize,
}

impl Seen {
    /// Records one event and says what the bar's message becomes.
    fn record(&self, event: &BatchEvent) -> String {
        let mut seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match event {
            BatchEvent::Submitted { index, job_id } => {
                seen.unfinished.insert(*index, job_id.clone());
            }
            BatchEvent::Finished { index, .. } => {
                seen.unfinished.remove(index);
            }
            BatchEvent::Failed { index, .. } => {
                seen.unfinished.remove(index);
                seen.failed += 1;
            }
            _ => {}
        }
        match seen.failed {
            0 => format!("{} running", seen.unfinished.len()),
            failed => format!("{} running, {failed} failed", seen.unfinished.len()),
        }
    }

    /// The jobs submitted and not ended.
    fn unfinished(&self) -> Vec<String> {
        let seen = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        seen.unfinished.values().cloned().collect()
    }
}

/// Runs a job per input line, at most `--concurrency` at a time, and prints one JSON
/// line per input, in input order: `{"index": i, "line": n, "ok": output}` or
/// `{"index": i, "line": n, "error": {"kind": …, "message": …}}`. Any failed item is the
/// failure.
pub async fn run(ctx: &Context, args: &BatchArgs) -> Result<(), Failure> {
    // Every line is checked before anything is submitted.
    let (lines, inputs): (Vec<usize>, Vec<Value>) =
        read_json_lines(&args.file)?.into_iter().unzip();
    let total = inputs.len();
    let mut interrupt = Interrupt::catch().await;
    let service = tokio::select! {
        service = ctx.client.service(&args.service) => service?,
        () = interrupt.recv() => return Err(Failure::Interrupted),
        () = ctx.deadline() => return Err(ctx.timed_out("reading the service")),
    };
    let bar = progress::batch_bar(total);
    let seen = Seen::default();
    let hook = {
        let (bar, seen) = (bar.clone(), seen.clone());
        move |event: &BatchEvent| {
            let message = seen.record(event);
            if matches!(
                event,
                BatchEvent::Finished { .. } | BatchEvent::Failed { .. }
            ) {
                bar.inc(1);
            }
            bar.set_message(message);
        }
    };
    let concurrency = usize::try_from(args.concurrency).unwrap_or(usize::MAX);
    let batch = service
        .run_all(inputs)
        .concurrency(concurrency)
        .on_event(hook)
        .collect::<Value>();
    let report = tokio::select! {
        report = batch => report,
        () = interrupt.recv() => {
            bar.abandon();
            let ids = seen.unfinished();
            let cancel = args.interrupt.cancel_on_interrupt;
            return Err(interrupt::settle(&ctx.client, &ids, cancel, &mut interrupt).await);
        }
        () = ctx.deadline() => {
            bar.abandon();
            let ids = seen.unfinished();
            let doing = match ids.len() {
                0 => "running the batch".to_owned(),
                n => format!("with {n} jobs left running: {}", ids.join(" ")),
            };
            return Err(ctx.timed_out(doing));
        }
    };
    bar.finish_and_clear();
    for (index, outcome) in &report.results {
        let line = lines.get(*index).copied().unwrap_or_default();
        ctx.printer
            .json_line(&ResultLine::new(*index, line, outcome))?;
    }
    let summary = &report.summary;
    if summary.failed == 0 {
        return Ok(());
    }
    let kinds: Vec<String> = summary
        .by_kind
        .iter()
        .map(|(kind, n)| format!("{kind}: {n}"))
        .collect();
    Err(Failure::BatchFailed {
        failed: summary.failed,
        total,
        kinds: kinds.join(", "),
    })
}

/// The JSON line of one input's outcome (a struct, so its members keep this order).
#[derive(Debug, Serialize)]
struct ResultLine<'a> {
    /// The input's position among the inputs, from 0.
    index: usize,
    /// Its line in the file, from 1 (blank lines count).
    line: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    ok: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<ErrorLine>,
}

/// Why an input failed.
#[derive(Debug, Serialize)]
struct ErrorLine {
    /// `Error::kind_name`: `job_failed`, `validation`, `timeout`, …
    kind: &'static str,
    message: String,
    /// The job, when one was made.
    #[serde(skip_serializing_if = "Option::is_none")]
    job_id: Option<String>,
}

impl<'a> ResultLine<'a> {
    fn new(index: usize, line: usize, outcome: &'a Result<Value, Error>) -> Self {
        let (ok, error) = match outcome {
            Ok(output) => (Some(output), None),
            Err(e) => {
                let job_id = match e {
                    Error::JobFailed { job_id, .. } | Error::JobCancelled { job_id } => {
                        Some(job_id.clone())
                    }
                    _ => None,
                };
                let error = ErrorLine {
                    kind: e.kind_name(),
                    message: e.to_string(),
                    job_id,
                };
                (None, Some(error))
            }
        };
        ResultLine {
            index,
            line,
            ok,
            error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hook_keeps_the_unfinished_jobs_and_the_failures() {
        let seen = Seen::default();
        let submitted = |index: usize| BatchEvent::Submitted {
            index,
            job_id: format!("job_{index}"),
        };
        assert_eq!(seen.record(&submitted(0)), "1 running");
        assert_eq!(seen.record(&submitted(1)), "2 running");
        assert_eq!(
            seen.record(&BatchEvent::Finished {
                index: 0,
                job_id: "job_0".into(),
            }),
            "1 running"
        );
        assert_eq!(seen.record(&submitted(2)), "2 running");
        let failed = BatchEvent::Failed {
            index: 2,
            job_id: Some("job_2".into()),
            kind: "job_failed",
        };
        assert_eq!(seen.record(&failed), "1 running, 1 failed");
        assert_eq!(seen.unfinished(), ["job_1"]);
    }

    #[test]
    fn result_lines() {
        let ok = Ok(serde_json::json!({"a": 1}));
        let text = serde_json::to_string(&ResultLine::new(0, 2, &ok)).unwrap();
        assert_eq!(text, r#"{"index":0,"line":2,"ok":{"a":1}}"#);
        let failed = Err(Error::JobFailed {
            job_id: "job_1".into(),
            error: jobwire::JobError::new("boom"),
        });
        let text = serde_json::to_string(&ResultLine::new(3, 4, &failed)).unwrap();
        assert_eq!(
            text,
            r#"{"index":3,"line":4,"error":{"kind":"job_failed","message":"job job_1 failed: boom","job_id":"job_1"}}"#
        );
    }
}
