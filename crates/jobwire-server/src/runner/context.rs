//! What a handler gets besides its input: [`JobContext`].

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::lifecycle::Happening;
use super::{ActiveJob, Runner};

/// The way a handler reports progress, log lines and partial output, and notices that
/// its job was cancelled.
///
/// Reports are queued (never blocking the handler) and recorded in order by the job's
/// supervisor, before its outcome; reports made after the job became terminal are
/// dropped, so a job's `done` event stays its last.
#[derive(Clone)]
pub(crate) struct JobContext {
    runner: Runner,
    job: Arc<ActiveJob>,
}

impl JobContext {
    pub(super) fn new(runner: Runner, job: Arc<ActiveJob>) -> Self {
        JobContext { runner, job }
    }

    /// Records progress (`fraction` clamped to 0..=1): updates the job's `progress` and
    /// records a `progress` event.
    pub(crate) fn progress(&self, fraction: f64, message: impl Into<String>) {
        let message = message.into();
        self.report(Happening::Progress { fraction, message });
    }

    /// Records a `log` event with one line of text.
    pub(crate) fn log(&self, line: impl Into<String>) {
        self.report(Happening::Log(line.into()));
    }

    /// Records an `output` event with a partial output chunk.
    pub(crate) fn output(&self, chunk: impl Into<String>) {
        self.report(Happening::Output(chunk.into()));
    }

    /// Whether the job is already terminal (cancelled, or the server is shutting down).
    /// Async handlers are simply dropped; blocking handlers should check this now and then
    /// and return early.
    pub(crate) fn is_cancelled(&self) -> bool {
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
