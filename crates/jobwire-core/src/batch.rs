//! Many jobs at once: what the facades' `run_all` and `run_unordered` keep track of,
//! written once.
//!
//! A facade runs each input as a job (at most `concurrency` at a time: tasks in
//! `jobwire`, a bounded set of threads in `jobwire-blocking`) and tells a [`Batch`] what
//! happened: which jobs it submitted, which ended and how. The batch answers what to do
//! next — start the next input (the driver takes it from its source then, so inputs are
//! read lazily, as room frees: a bounded channel never holds more than its bound plus
//! the jobs in flight), wait, or, in a fail-fast run, which jobs to cancel after the
//! first error — and gathers the results in input order with a [`Summary`].
//!
//! ```
//! use jobwire_core::batch::{Batch, Mode, Next};
//! use jobwire_core::Error;
//!
//! let mut batch = Batch::<u32>::new(2, Mode::FailFast);
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

/// How a batch runs — how many at once, whether the first error stops it, who hears
/// about it: what a facade's `run_all(..)` and `run_unordered(..)` builders hold beside
/// their inputs. Cheap to clone.
///
/// ```
/// use jobwire_core::batch::Plan;
/// let plan = Plan::default().concurrency(2).on_event(|e| println!("{e:?}"));
/// assert_eq!(plan.concurrency_value(), 2);
/// assert!(plan.follows_events());
/// ```
#[derive(Clone)]
pub struct Plan {
    concurrency: usize,
    fail_fast: bool,
    hook: Option<Hook>,
    /// The inputs' check before they are sent, with the service it is of.
    #[cfg(feature = "validation")]
    check: Option<(Arc<crate::Service>, crate::schema::InputCheck)>,
}

impl std::fmt::Debug for Plan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plan")
            .field("concurrency", &self.concurrency)
            .field("fail_fast", &self.fail_fast)
            .finish_non_exhaustive()
    }
}

/// Jobs in flight at once when the caller does not say.
pub const DEFAULT_CONCURRENCY: usize = 8;

impl Default for Plan {
    /// [`DEFAULT_CONCURRENCY`] at a time, every input run, no hook.
    fn default() -> Self {
        Plan {
            concurrency: DEFAULT_CONCURRENCY,
            fail_fast: false,
            hook: None,
            #[cfg(feature = "validation")]
            check: None,
        }
    }
}

/// An input as JSON, or why it could not be made JSON (that item fails alone).
pub type Input = Result<Value, String>;

/// Makes an input JSON, as a batch reads it from its source.
///
/// ```
/// assert_eq!(jobwire_core::batch::input(&[1, 2]).unwrap(), serde_json::json!([1, 2]));
/// ```
pub fn input<I: serde::Serialize + ?Sized>(item: &I) -> Input {
    serde_json::to_value(item).map_err(|e| e.to_string())
}

impl Plan {
    /// At most `n` jobs in flight at once (0 counts as 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Stops at the first error: nothing more starts, the jobs in flight are cancelled
    /// on the server (for `run_unordered`; `run_all`'s `try_collect` does it anyway).
    pub fn fail_fast(mut self) -> Self {
        self.fail_fast = true;
        self
    }

    /// Calls `hook` with each [`BatchEvent`]: submitted, progress, finished, failed. With
    /// a hook, each job's events are followed (for its progress) instead of only its end.
    pub fn on_event(mut self, hook: impl Fn(&BatchEvent) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// The concurrency asked for.
    pub fn concurrency_value(&self) -> usize {
        self.concurrency
    }

    /// Whether the first error stops the batch.
    pub fn mode(&self) -> Mode {
        if self.fail_fast {
            Mode::FailFast
        } else {
            Mode::Collect
        }
    }

    /// Checks each input against `service`'s input schema before it is sent: one that
    /// fails is that item's [`Error::Validation`], no request made.
    #[cfg(feature = "validation")]
    pub fn checked_against(
        mut self,
        service: crate::Service,
        check: crate::schema::InputCheck,
    ) -> Self {
        self.check = Some((Arc::new(service), check));
        self
    }

    /// An input as JSON, to send; [`Error::Invalid`] when it could not be made JSON,
    /// [`Error::Validation`] when it fails the input check (with feature `validation`).
    pub fn decode_input(&self, input: Input) -> Result<Value, Error> {
        let input = input.map_err(|why| Error::invalid("input", why))?;
        #[cfg(feature = "validation")]
        if let Some((service, check)) = &self.check {
            check.check(service, &input)?;
        }
        Ok(input)
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
    /// let plan = Plan::default().on_event(move |e| log.lock().unwrap().push(e.clone()));
    /// let progress = JobEvent::new(3, "job_1", EventKind::Progress { fraction: 0.5, message: "half".into() });
    /// assert!(plan.observe_event(0, &progress).is_none());
    /// assert!(matches!(&heard.lock().unwrap()[0], BatchEvent::Progress { index: 0, job_id, .. } if job_id == "job_1"));
    /// ```
    pub fn observe_event<'e>(&self, index: usize, event: &'e JobEvent) -> Option<&'e crate::Job> {
        match &event.kind {
            EventKind::Progress { fraction, message } => {
                self.emit(BatchEvent::Progress {
                    index,
                    job_id: event.job_id.clone(),
                    fraction: *fraction,
                    message: message.clone(),
                });
                None
            }
            EventKind::Done(job) => Some(job),
            EventKind::Status(_) | EventKind::Log(_) | EventKind::Output(_) => None,
        }
    }

    /// Tells the hook how input `index` ended, its job `job_id` if it got one.
    pub fn emit_outcome<O>(&self, index: usize, job_id: Option<&str>, outcome: &Result<O, Error>) {
        self.emit(match outcome {
            Ok(_) => BatchEvent::Finished {
                index,
                job_id: job_id.unwrap_or_default().to_owned(),
            },
            Err(e) => BatchEvent::Failed {
                index,
                job_id: job_id.map(str::to_owned),
                kind: e.kind_name(),
            },
        });
    }
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
        /// Its job.
        job_id: String,
        /// From 0 to 1.
        fraction: f64,
        /// What the job is doing.
        message: String,
    },
    /// The job of input `index` succeeded.
    Finished {
        /// Position of the input.
        index: usize,
        /// Its job.
        job_id: String,
    },
    /// Input `index` failed: its submit, its job, or decoding its output.
    Failed {
        /// Position of the input.
        index: usize,
        /// Its job, when the submit made one.
        job_id: Option<String>,
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
    /// Take the next input from the source and start it as input `index`; when the
    /// source has none left, report [`Batch::exhausted`].
    Start(usize),
    /// Wait for a job in flight to end.
    Wait,
    /// Nothing is left to start or to wait for.
    Done,
}

/// The bookkeeping of one batch; see the module docs.
#[derive(Debug)]
pub struct Batch<O> {
    concurrency: usize,
    mode: Mode,
    started: usize,
    /// The source has no more inputs.
    exhausted: bool,
    /// Inputs in flight, with their job once submitted.
    in_flight: HashMap<usize, Option<String>>,
    outcomes: Vec<Option<Result<O, Error>>>,
    /// In a fail-fast batch: the input whose error stopped it.
    first_error: Option<usize>,
    summary: Summary,
}

impl<O> Batch<O> {
    /// A batch of inputs read from a source as room frees, at most `concurrency` (at
    /// least 1) in flight.
    pub fn new(concurrency: usize, mode: Mode) -> Self {
        Batch {
            concurrency: concurrency.max(1),
            mode,
            started: 0,
            exhausted: false,
            in_flight: HashMap::new(),
            outcomes: Vec::new(),
            first_error: None,
            summary: Summary::default(),
        }
    }

    /// The next thing to do: start an input while there is room and the batch goes on,
    /// else wait while jobs are in flight.
    pub fn next_step(&mut self) -> Next {
        let stopped = self.first_error.is_some();
        if !stopped && !self.exhausted && self.in_flight.len() < self.concurrency {
            let index = self.started;
            self.started += 1;
            self.in_flight.insert(index, None);
            self.outcomes.push(None);
            return Next::Start(index);
        }
        if self.in_flight.is_empty() {
            Next::Done
        } else {
            Next::Wait
        }
    }

    /// The source had no input `index` (it was the last start's): nothing more starts.
    pub fn exhausted(&mut self, index: usize) {
        self.exhausted = true;
        if self.in_flight.remove(&index).is_some() && index + 1 == self.started {
            self.started -= 1;
            self.outcomes.pop();
        }
    }

    /// Whether input `index`, given a [`Next::Start`] but not yet read or not yet
    /// started, should still run: not once the batch has stopped — it is withdrawn then,
    /// and nothing more is read from the source.
    ///
    /// ```
    /// use jobwire_core::batch::{Batch, Mode, Next};
    /// let mut batch = Batch::<u32>::new(2, Mode::FailFast);
    /// assert_eq!(batch.next_step(), Next::Start(0));
    /// assert_eq!(batch.next_step(), Next::Start(1)); // its input is still awaited…
    /// batch.finished(0, Err(jobwire_core::Error::Closed)); // …when the batch stops
    /// assert!(!batch.still_wanted(1));
    /// assert_eq!(batch.next_step(), Next::Done);
    /// ```
    pub fn still_wanted(&mut self, index: usize) -> bool {
        if self.first_error.is_some() {
            self.exhausted(index);
            false
        } else {
            true
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

    /// Whether input `index`'s outcome is worth handing to a caller that takes them as
    /// they come: in a fail-fast batch that stopped, only the error that stopped it (the
    /// others were cancelled because of it).
    pub fn reports(&self, index: usize) -> bool {
        self.first_error.map_or(true, |first| first == index)
    }

    /// Takes the outcome of input `index` (for a caller that hands them out as they
    /// come).
    pub fn take_outcome(&mut self, index: usize) -> Option<Result<O, Error>> {
        self.outcomes.get_mut(index)?.take()
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
        let mut batch = Batch::new(2, Mode::Collect);
        let mut order = Vec::new();
        let mut in_flight = Vec::new();
        // A source of five inputs.
        let mut inputs = 0..5usize;
        loop {
            match batch.next_step() {
                Next::Start(i) => {
                    if inputs.next().is_none() {
                        batch.exhausted(i);
                        continue;
                    }
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
        let mut batch = Batch::<u8>::new(3, Mode::FailFast);
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

    /// Inputs are taken one start at a time: however long the source, no more than
    /// `concurrency` are out of it and not yet ended.
    #[test]
    fn a_lazy_source_is_read_only_as_room_frees() {
        let mut batch = Batch::<usize>::new(3, Mode::Collect);
        let mut taken = 0usize;
        let mut in_flight = std::collections::VecDeque::new();
        let mut most = 0;
        loop {
            match batch.next_step() {
                Next::Start(i) if taken < 100 => {
                    taken += 1;
                    in_flight.push_back(i);
                    most = most.max(in_flight.len());
                }
                Next::Start(i) => batch.exhausted(i),
                Next::Wait => {
                    let i = in_flight.pop_front().unwrap();
                    batch.finished(i, Ok(i));
                }
                Next::Done => break,
            }
        }
        assert_eq!(most, 3);
        let report = batch.into_report();
        assert_eq!(report.results.len(), 100);
        assert!(report.results.iter().all(|(i, r)| r.as_ref().unwrap() == i));
    }

    /// Results handed out as they come: a fail-fast batch hands out its first error
    /// and not the cancels it caused.
    #[test]
    fn an_unordered_fail_fast_batch_reports_only_its_first_error() {
        let mut batch = Batch::<u8>::new(3, Mode::FailFast);
        for i in 0..3 {
            assert_eq!(batch.next_step(), Next::Start(i));
            batch.submitted(i, &format!("job_{i}"));
        }
        assert_eq!(batch.finished(0, Ok(1)), Vec::<String>::new());
        assert!(batch.reports(0));
        assert_eq!(batch.take_outcome(0).unwrap().unwrap(), 1);
        assert_eq!(batch.finished(2, Err(failed("job_2"))), ["job_1"]);
        assert!(batch.reports(2));
        batch.finished(
            1,
            Err(Error::JobCancelled {
                job_id: "job_1".into(),
            }),
        );
        assert!(!batch.reports(1), "a cancel the failure caused is not news");
        assert_eq!(batch.next_step(), Next::Done);
    }

    #[test]
    fn a_collecting_batch_keeps_going_after_errors() {
        let mut batch = Batch::<u8>::new(1, Mode::Collect);
        assert_eq!(batch.next_step(), Next::Start(0));
        assert!(batch.finished(0, Err(failed("j"))).is_empty());
        assert_eq!(batch.next_step(), Next::Start(1));
        batch.finished(1, Ok(1));
        assert_eq!(batch.next_step(), Next::Start(2));
        batch.exhausted(2);
        assert_eq!(batch.next_step(), Next::Done);
        assert!(
            batch.into_outputs().is_err(),
            "the first error in input order"
        );
        let mut empty = Batch::<u8>::new(4, Mode::FailFast);
        assert_eq!(empty.next_step(), Next::Start(0));
        empty.exhausted(0);
        assert_eq!(empty.next_step(), Next::Done);
        assert_eq!(empty.into_outputs().unwrap(), Vec::<u8>::new());
    }
}
