//! Many jobs at once: what the facades' `run_all` and `run_unordered` keep track of,
//! written once.
//!
//! A facade runs each input as a job (at most `concurrency` at a time: tasks in
//! `jobwire`, a bounded set of threads in `jobwire-blocking`) and tells a [`Batch`] what
//! happened: which jobs it submitted, which ended and how. The batch answers what to do
//! next — which input to start, and, in a fail-fast run, which jobs to cancel after the
//! first error — and gathers the results in input order with a [`Summary`].
//!
//! ```
//! use jobwire_core::batch::{Batch, Mode, Next};
//! use jobwire_core::Error;
//!
//! let mut batch = Batch::<u32>::new(3, 2, Mode::FailFast);
//! assert_eq!(batch.next_step(), Next::Start(0));
//! assert_eq!(batch.next_step(), Next::Start(1));
//! assert_eq!(batch.next_step(), Next::Wait, "two in flight");
//! batch.submitted(0, "job_a");
//! batch.submitted(1, "job_b");
//! let cancel = batch.finished(1, Err(Error::Timeout { what: "job_b".into() }));
//! assert_eq!(cancel, vec!["job_a".to_owned()], "the first error cancels the siblings");
//! assert_eq!(batch.next_step(), Next::Wait, "no new starts; job_a is still winding down");
//! batch.finished(0, Ok(7));
//! assert_eq!(batch.next_step(), Next::Done);
//! assert!(matches!(batch.into_first_error(), Some(Error::Timeout { .. })));
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde_json::Value;

use crate::event::{EventKind, JobEvent};
use crate::Error;

/// A progress hook: called with each [`BatchEvent`], from whichever task or thread
/// saw it.
pub type Hook = Arc<dyn Fn(&BatchEvent) + Send + Sync>;

/// The inputs of a batch, how many run at once, and who hears about it: what a
/// facade's `run_all(..)` and `run_unordered(..)` builders hold. Cheap to clone.
///
/// ```
/// use jobwire_core::batch::Plan;
/// let plan = Plan::new([1, 2, 3]).concurrency(2).on_event(|e| println!("{e:?}"));
/// assert_eq!((plan.len(), plan.concurrency_value()), (3, 2));
/// assert_eq!(plan.input(1).unwrap(), serde_json::json!(2));
/// ```
#[derive(Clone)]
pub struct Plan {
    /// Each input as JSON, or why it could not be made JSON (that item fails alone).
    inputs: Arc<Vec<Result<Value, String>>>,
    concurrency: usize,
    hook: Option<Hook>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("inputs", &self.inputs.len())
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

/// Jobs in flight at once when the caller does not say.
pub const DEFAULT_CONCURRENCY: usize = 8;

impl Plan {
    /// A plan for `inputs` (serde types or `serde_json::Value`s), [`DEFAULT_CONCURRENCY`]
    /// at a time, with no hook.
    pub fn new<I: serde::Serialize>(inputs: impl IntoIterator<Item = I>) -> Self {
        let inputs = inputs
            .into_iter()
            .map(|input| serde_json::to_value(input).map_err(|e| e.to_string()))
            .collect();
        Plan {
            inputs: Arc::new(inputs),
            concurrency: DEFAULT_CONCURRENCY,
            hook: None,
        }
    }

    /// At most `n` jobs in flight at once (0 counts as 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Calls `hook` with each [`BatchEvent`]: submitted, progress, finished, failed. With
    /// a hook, each job's events are followed (for its progress) instead of only its end.
    pub fn on_event(mut self, hook: impl Fn(&BatchEvent) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// How many inputs there are.
    pub fn len(&self) -> usize {
        self.inputs.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.inputs.is_empty()
    }

    /// The concurrency asked for.
    pub fn concurrency_value(&self) -> usize {
        self.concurrency
    }

    /// Input `index` as JSON; [`Error::Invalid`] when it could not be made JSON.
    pub fn input(&self, index: usize) -> Result<Value, Error> {
        match self.inputs.get(index) {
            Some(Ok(input)) => Ok(input.clone()),
            Some(Err(why)) => Err(Error::invalid("input", why.clone())),
            None => Err(Error::invalid(
                "input",
                format!("there is no input {index}"),
            )),
        }
    }

    /// Whether a hook wants progress events.
    pub fn follows_events(&self) -> bool {
        self.hook.is_some()
    }

    /// Tells the hook, if there is one.
    pub fn emit(&self, event: BatchEvent) {
        if let Some(hook) = &self.hook {
            hook(&event);
        }
    }

    /// Tells the hook of an event of input `index`'s job (its progress); answers the
    /// job when the event is its `done`, the end of what the batch follows.
    ///
    /// ```
    /// use jobwire_core::batch::{BatchEvent, Plan};
    /// use jobwire_core::event::{EventKind, JobEvent};
    /// let heard = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    /// let log = heard.clone();
    /// let plan = Plan::new([1]).on_event(move |e| log.lock().unwrap().push(e.clone()));
    /// let progress = JobEvent::new(3, "job_1", EventKind::Progress { fraction: 0.5, message: "half".into() });
    /// assert!(plan.observe_event(0, &progress).is_none());
    /// assert!(matches!(&heard.lock().unwrap()[0], BatchEvent::Progress { index: 0, .. }));
    /// ```
    pub fn observe_event<'e>(&self, index: usize, event: &'e JobEvent) -> Option<&'e crate::Job> {
        match &event.kind {
            EventKind::Progress { fraction, message } => {
                self.emit(BatchEvent::Progress {
                    index,
                    fraction: *fraction,
                    message: message.clone(),
                });
                None
            }
            EventKind::Done(job) => Some(job),
            EventKind::Status(_) | EventKind::Log(_) | EventKind::Output(_) => None,
        }
    }

    /// Tells the hook how input `index` ended.
    pub fn emit_outcome<O>(&self, index: usize, outcome: &Result<O, Error>) {
        self.emit(match outcome {
            Ok(_) => BatchEvent::Finished { index },
            Err(e) => BatchEvent::Failed {
                index,
                kind: e.kind_name(),
            },
        });
    }
}

/// Stamps the [`Plan`] setters onto a facade's builder holding one in `$field`.
#[doc(hidden)]
#[macro_export]
macro_rules! __batch_setters {
    ($field:ident) => {
        $crate::__forward_setters! { $field:
            /// At most `n` jobs in flight at once (default 8).
            fn concurrency(n: usize);
            /// Calls `hook` with each [`BatchEvent`]($crate::batch::BatchEvent) —
            /// submitted, progress, finished, failed — to drive a progress bar, say. With
            /// a hook, each job's events are followed for its progress.
            fn on_event(hook: impl Fn(&$crate::batch::BatchEvent) + Send + Sync + 'static);
        }
    };
}

/// What happened to one job of a batch, for a progress hook (a bar, a log line).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BatchEvent {
    /// Input `index` was submitted as job `job_id`.
    Submitted {
        /// Position of the input.
        index: usize,
        /// The job the server made of it.
        job_id: String,
    },
    /// The job of input `index` reported progress.
    Progress {
        /// Position of the input.
        index: usize,
        /// From 0 to 1.
        fraction: f64,
        /// What the job is doing.
        message: String,
    },
    /// The job of input `index` succeeded.
    Finished {
        /// Position of the input.
        index: usize,
    },
    /// Input `index` failed: its submit, its job, or decoding its output.
    Failed {
        /// Position of the input.
        index: usize,
        /// [`Error::kind_name`] of the error.
        kind: &'static str,
    },
}

/// How many items of a batch succeeded and failed, and the failures by kind
/// ([`Error::kind_name`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Summary {
    /// Items that produced an output.
    pub succeeded: usize,
    /// Items that ended with an error.
    pub failed: usize,
    /// Failed items by kind of error: `job_failed`, `timeout`, `not_found`, ….
    pub by_kind: BTreeMap<&'static str, usize>,
}

impl Summary {
    /// Counts one outcome.
    pub fn record<T>(&mut self, outcome: &Result<T, Error>) {
        match outcome {
            Ok(_) => self.succeeded += 1,
            Err(e) => {
                self.failed += 1;
                *self.by_kind.entry(e.kind_name()).or_default() += 1;
            }
        }
    }
}

/// What `run_all(..).collect()` answers: every input's outcome, in input order and paired
/// with the input's index, and the summary.
#[derive(Debug)]
#[non_exhaustive]
pub struct BatchReport<O> {
    /// `(index, outcome)` for every input, in input order.
    pub results: Vec<(usize, Result<O, Error>)>,
    /// The counts.
    pub summary: Summary,
}

impl<O> BatchReport<O> {
    /// The outputs in input order, or the first error in input order.
    pub fn into_outputs(self) -> Result<Vec<O>, Error> {
        self.results.into_iter().map(|(_, r)| r).collect()
    }
}

/// Whether the first error ends the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// Every input runs; each outcome is kept.
    Collect,
    /// The first error stops new starts and cancels the jobs in flight.
    FailFast,
}

/// What a facade's driver does next. Exhaustive: a new step is a compile error in
/// both drivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Start input `index`.
    Start(usize),
    /// Wait for a job in flight to end.
    Wait,
    /// Nothing is left to start or to wait for.
    Done,
}

/// The bookkeeping of one batch; see the module docs.
#[derive(Debug)]
pub struct Batch<O> {
    total: usize,
    concurrency: usize,
    mode: Mode,
    started: usize,
    /// Inputs in flight, with their job once submitted.
    in_flight: HashMap<usize, Option<String>>,
    outcomes: Vec<Option<Result<O, Error>>>,
    /// In a fail-fast batch: the input whose error stopped it.
    first_error: Option<usize>,
    summary: Summary,
}

impl<O> Batch<O> {
    /// A batch of `total` inputs, at most `concurrency` (at least 1) in flight.
    pub fn new(total: usize, concurrency: usize, mode: Mode) -> Self {
        Batch {
            total,
            concurrency: concurrency.max(1),
            mode,
            started: 0,
            in_flight: HashMap::new(),
            outcomes: (0..total).map(|_| None).collect(),
            first_error: None,
            summary: Summary::default(),
        }
    }

    /// The next thing to do: start an input while there is room and the batch goes on,
    /// else wait while jobs are in flight.
    pub fn next_step(&mut self) -> Next {
        let stopped = self.first_error.is_some();
        if !stopped && self.started < self.total && self.in_flight.len() < self.concurrency {
            let index = self.started;
            self.started += 1;
            self.in_flight.insert(index, None);
            return Next::Start(index);
        }
        if self.in_flight.is_empty() {
            Next::Done
        } else {
            Next::Wait
        }
    }

    /// Input `index` became job `job_id`. In a batch that stopped meanwhile, the answer
    /// is true: cancel that job.
    pub fn submitted(&mut self, index: usize, job_id: &str) -> bool {
        if let Some(slot) = self.in_flight.get_mut(&index) {
            *slot = Some(job_id.to_owned());
        }
        self.first_error.is_some()
    }

    /// Input `index` ended with `outcome`; answers the jobs to cancel now (in a
    /// fail-fast batch, at its first error: every other job in flight).
    pub fn finished(&mut self, index: usize, outcome: Result<O, Error>) -> Vec<String> {
        if self.in_flight.remove(&index).is_none() {
            return Vec::new();
        }
        let mut cancel = Vec::new();
        if let Err(e) = &outcome {
            if self.mode == Mode::FailFast && self.first_error.is_none() {
                self.first_error = Some(index);
                cancel = self.in_flight.values().flatten().cloned().collect();
                cancel.sort();
            }
            // An error that the fail-fast cancel caused is not a failure of its own.
            if self.first_error.is_some_and(|first| first != index)
                && matches!(e, Error::JobCancelled { .. })
            {
                if let Some(slot) = self.outcomes.get_mut(index) {
                    *slot = Some(outcome);
                }
                return cancel;
            }
        }
        self.summary.record(&outcome);
        if let Some(slot) = self.outcomes.get_mut(index) {
            *slot = Some(outcome);
        }
        cancel
    }

    /// The summary so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Every outcome in input order (inputs never started are left out), and the
    /// summary.
    pub fn into_report(self) -> BatchReport<O> {
        let results = self
            .outcomes
            .into_iter()
            .enumerate()
            .filter_map(|(i, outcome)| outcome.map(|o| (i, o)))
            .collect();
        BatchReport {
            results,
            summary: self.summary,
        }
    }

    /// The error that stopped a fail-fast batch, if one did.
    pub fn into_first_error(mut self) -> Option<Error> {
        let index = self.first_error?;
        self.outcomes.get_mut(index)?.take()?.err()
    }

    /// The outputs in input order, or the error that stopped the batch.
    pub fn into_outputs(self) -> Result<Vec<O>, Error> {
        if self.first_error.is_some() {
            return Err(self
                .into_first_error()
                .unwrap_or_else(|| Error::Protocol("a batch stopped without its error".into())));
        }
        self.into_report().into_outputs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(id: &str) -> Error {
        Error::JobFailed {
            job_id: id.into(),
            error: crate::JobError::new("boom"),
        }
    }

    #[test]
    fn at_most_concurrency_in_flight_and_results_in_input_order() {
        let mut batch = Batch::new(5, 2, Mode::Collect);
        let mut order = Vec::new();
        let mut in_flight = Vec::new();
        loop {
            match batch.next_step() {
                Next::Start(i) => {
                    in_flight.push(i);
                    assert!(in_flight.len() <= 2);
                }
                Next::Wait => {
                    // End the newest first: completion order differs from input order.
                    let i = in_flight.pop().unwrap();
                    order.push(i);
                    let outcome = if i == 3 {
                        Err(failed("j3"))
                    } else {
                        Ok(i * 10)
                    };
                    assert!(batch.finished(i, outcome).is_empty());
                }
                Next::Done => break,
            }
        }
        assert_ne!(order, [0, 1, 2, 3, 4]);
        let report = batch.into_report();
        let indices: Vec<usize> = report.results.iter().map(|(i, _)| *i).collect();
        assert_eq!(indices, [0, 1, 2, 3, 4]);
        assert_eq!(report.results[1].1.as_ref().unwrap(), &10);
        assert!(report.results[3].1.is_err());
        assert_eq!(report.summary.succeeded, 4);
        assert_eq!(report.summary.failed, 1);
        assert_eq!(report.summary.by_kind.get("job_failed"), Some(&1));
    }

    #[test]
    fn fail_fast_cancels_the_siblings_and_starts_nothing_more() {
        let mut batch = Batch::<u8>::new(10, 3, Mode::FailFast);
        for i in 0..3 {
            assert_eq!(batch.next_step(), Next::Start(i));
        }
        batch.submitted(0, "job_0");
        batch.submitted(2, "job_2");
        // Input 1 is still being submitted when input 2 fails.
        assert_eq!(batch.finished(2, Err(failed("job_2"))), ["job_0"]);
        assert_eq!(batch.next_step(), Next::Wait);
        assert!(
            batch.submitted(1, "job_1"),
            "a late submit is cancelled at once"
        );
        let cancelled = |id: &str| Err(Error::JobCancelled { job_id: id.into() });
        assert!(batch.finished(0, cancelled("job_0")).is_empty());
        assert!(batch.finished(1, cancelled("job_1")).is_empty());
        assert_eq!(batch.next_step(), Next::Done);
        assert_eq!(
            batch.summary().failed,
            1,
            "the cancelled siblings are not failures"
        );
        match batch.into_outputs() {
            Err(Error::JobFailed { job_id, .. }) => assert_eq!(job_id, "job_2"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_collecting_batch_keeps_going_after_errors() {
        let mut batch = Batch::<u8>::new(2, 1, Mode::Collect);
        assert_eq!(batch.next_step(), Next::Start(0));
        assert!(batch.finished(0, Err(failed("j"))).is_empty());
        assert_eq!(batch.next_step(), Next::Start(1));
        batch.finished(1, Ok(1));
        assert_eq!(batch.next_step(), Next::Done);
        assert!(
            batch.into_outputs().is_err(),
            "the first error in input order"
        );
        let empty = Batch::<u8>::new(0, 4, Mode::FailFast);
        assert_eq!(empty.into_outputs().unwrap(), Vec::<u8>::new());
    }
}
