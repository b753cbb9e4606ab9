//! What a handler gets besides its input: [`JobContext`].

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::lifecycle::Happening;
use super::{ActiveJob, Runner};

/// What a handler gets besides its input: the way to report progress, log lines and
/// partial output (each becomes an event clients see on the job's event stream), and to
/// notice that its job was cancelled.
///
/// Reports never block the handler: they are queued and recorded in order, before the
/// job's outcome. Reports made after the job ended (it was cancelled, say) are dropped,
/// so a job's `done` event stays its last; past the server's cap per job
/// ([`ServerConfig::max_events_per_job`](crate::ServerConfig::max_events_per_job)) one
/// log line says so and later reports are dropped.
///
/// ```
/// use jobwire_server::ServiceSpec;
/// use serde_json::json;
///
/// let spec = ServiceSpec::blocking_fn("lines", |input, ctx| {
///     let n = input["n"].as_u64().unwrap_or(3);
///     for i in 1..=n {
///         if ctx.is_cancelled() {
///             break;
///         }
///         ctx.log(format!("line {i}"));
///         ctx.output(format!("{i} "));
///         ctx.progress(i as f64 / n as f64, format!("{i} of {n}"));
///     }
///     Ok(json!({ "lines": n, "job": ctx.job_id() }))
/// });
/// # let _ = spec;
/// ```
#[derive(Clone)]
pub struct JobContext {
    runner: Runner,
    job: Arc<ActiveJob>,
}

impl std::fmt::Debug for JobContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobContext")
            .field("job_id", &self.job.id)
            .finish_non_exhaustive()
    }
}

impl JobContext {
    pub(super) fn new(runner: Runner, job: Arc<ActiveJob>) -> Self {
        JobContext { runner, job }
    }

    /// The id of the job being run.
    pub fn job_id(&self) -> &str {
        &self.job.id
    }

    /// Records progress (`fraction` clamped to 0..=1): updates the job's `progress` and
    /// records a `progress` event.
    pub fn progress(&self, fraction: f64, message: impl Into<String>) {
        let message = message.into();
        self.report(Happening::Progress { fraction, message });
    }

    /// Records a `log` event with one line of text.
    pub fn log(&self, line: impl Into<String>) {
        self.report(Happening::Log(line.into()));
    }

    /// Records an `output` event with a partial output chunk.
    pub fn output(&self, chunk: impl Into<String>) {
        self.report(Happening::Output(chunk.into()));
    }

    /// Whether the job already ended without this handler (cancelled, or failed as
    /// `interrupted` by a shutdown). Async handlers are simply dropped at their next
    /// `.await`; blocking handlers should check this now and then and return early.
    pub fn is_cancelled(&self) -> bool {
        self.job.cancelled.load(Ordering::Acquire)
    }

    /// Queues a report, within the job's cap: the first one past it is replaced by a log
    /// line saying so, later ones are dropped.
    fn report(&self, happening: Happening) {
        let max = self.runner.inner.limits.max_reports_per_job;
        let n = self.job.reports_made.fetch_add(1, Ordering::AcqRel);
        let report = if n < max {
            happening
        } else if n == max {
            Happening::Log(format!(
                "this job reached {max} progress, log and output events; later ones are dropped"
            ))
        } else {
            return;
        };
        // Err: the supervisor is gone (the job is terminal), so the report is too late.
        let _ = self.job.reports.send(report);
    }
}
