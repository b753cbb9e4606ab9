//! Many jobs at once: [`ServiceHandle::run_all`] (results in input order, or fail-fast),
//! [`ServiceHandle::run_unordered`] (results as they complete), and [`JobGuard`] (cancels
//! its jobs when dropped). The bookkeeping is `jobwire_core::batch`'s; this module runs
//! the jobs on a bounded set of threads (`concurrency` of them), with no runtime.

use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use jobwire_core::batch::{Batch, BatchReport, Mode, Next};
use jobwire_core::endpoint::CancelJob;
use jobwire_core::Error;
use serde::de::DeserializeOwned;

use crate::{Client, JobHandle, ServiceHandle};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

jobwire_core::__batch_surface! {
    run_all:
    /// Runs a job per input on at most `concurrency` threads (default 8); `.collect()`
    /// answers every outcome in input order with a summary, `.try_collect()` the outputs
    /// or the first error — which cancels the other jobs in flight.
    ///
    /// ```no_run
    /// # fn demo(client: jobwire_blocking::Client) -> Result<(), jobwire_blocking::Error> {
    /// let echo = client.service("echo")?;
    /// let report = echo
    ///     .run_all((0..100).map(|i| serde_json::json!({ "i": i })))
    ///     .concurrency(16)
    ///     .collect::<serde_json::Value>();
    /// println!("{} ok, {} failed", report.summary.succeeded, report.summary.failed);
    /// # Ok(()) }
    /// ```
    run_unordered:
    /// Runs a job per input on at most `concurrency` threads (default 8); `.results()`
    /// yields `(index, outcome)` as each job ends.
    ///
    /// ```no_run
    /// # fn demo(client: jobwire_blocking::Client) -> Result<(), jobwire_blocking::Error> {
    /// let sleep = client.service("sleep")?;
    /// let inputs = [3.0, 1.0, 2.0].map(|s| serde_json::json!({ "duration_seconds": s }));
    /// for (index, outcome) in sleep.run_unordered(inputs).concurrency(3).results::<serde_json::Value>() {
    ///     println!("input {index} ended: {outcome:?}"); // 1, then 2, then 0
    /// }
    /// # Ok(()) }
    /// ```
    guard:
    /// Cancels the jobs added to it when dropped, unless [`disarm`](Self::disarm)ed: the
    /// rollback of a step that started jobs and then failed. From [`Client::guard`].
    ///
    /// ```no_run
    /// # fn demo(client: jobwire_blocking::Client) -> Result<(), jobwire_blocking::Error> {
    /// let mut guard = client.guard();
    /// let a = guard.add(client.submit("sleep", &serde_json::json!({"duration_seconds": 60}))?);
    /// let b = guard.add(client.submit("sleep", &serde_json::json!({"duration_seconds": 60}))?);
    /// // … a step that returns early with `?` would leave `guard` to cancel both …
    /// guard.disarm(); // all went well: the jobs keep running
    /// # let _ = (a, b);
    /// # Ok(()) }
    /// ```
}

impl RunAll {
    /// Runs every input and answers each outcome in input order, with a summary.
    pub fn collect<O: DeserializeOwned + Send>(self) -> BatchReport<O> {
        self.drive(Mode::Collect).into_report()
    }

    /// Runs the inputs until one fails: then nothing more starts, the jobs in flight are
    /// cancelled on the server, and that first error is the answer. Otherwise the
    /// outputs, in input order.
    pub fn try_collect<O: DeserializeOwned + Send>(self) -> Result<Vec<O>, Error> {
        self.drive(Mode::FailFast).into_outputs()
    }

    /// The drive loop, on each of `concurrency` threads: the core's [`Batch`] decides
    /// what to start and what to cancel.
    fn drive<O: DeserializeOwned + Send>(self, mode: Mode) -> Batch<O> {
        let RunAll {
            client,
            service,
            plan,
        } = self;
        let state = Mutex::new(Batch::new(plan.len(), plan.concurrency_value(), mode));
        let threads = plan.concurrency_value().min(plan.len());
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| loop {
                    // A thread holds one job at most, so there is room whenever it asks.
                    let Next::Start(index) = lock(&state).next_step() else {
                        return;
                    };
                    let submitted = |job_id: &str| lock(&state).submitted(index, job_id);
                    let outcome = client.run_item(&service, &plan, index, submitted);
                    plan.emit_outcome(index, &outcome);
                    let cancel = lock(&state).finished(index, outcome);
                    cancel_all(&client, &cancel);
                });
            }
        });
        state.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}

impl RunUnordered {
    /// `(index, outcome)` of each input as its job ends, from `concurrency` threads
    /// started now. Dropping the iterator starts no more jobs; those in flight go on.
    pub fn results<O: DeserializeOwned + Send + 'static>(
        self,
    ) -> impl Iterator<Item = (usize, Result<O, Error>)> {
        let RunUnordered {
            client,
            service,
            plan,
        } = self;
        let total = plan.len();
        let next = Arc::new(Mutex::new(0usize));
        let (tx, rx) = mpsc::channel();
        for _ in 0..plan.concurrency_value().min(total) {
            let (client, service, plan) = (client.clone(), service.clone(), plan.clone());
            let (next, tx) = (next.clone(), tx.clone());
            std::thread::spawn(move || loop {
                let index = {
                    let mut next = lock(&next);
                    if *next >= total {
                        return;
                    }
                    *next += 1;
                    *next - 1
                };
                let outcome = client.run_item::<O>(&service, &plan, index, |_| false);
                plan.emit_outcome(index, &outcome);
                if tx.send((index, outcome)).is_err() {
                    // The caller dropped the results: start nothing more.
                    return;
                }
            });
        }
        rx.into_iter().take(total)
    }
}

/// Cancels jobs one after another; a cancel that fails is skipped (the batch has its
/// answer already).
fn cancel_all(client: &Client, ids: &[String]) {
    for id in ids {
        let _ = client.execute(&CancelJob::new(id));
    }
}

impl JobGuard {
    /// Cancels the guarded jobs now and waits for the server's answers (dropping the
    /// guard does the same).
    pub fn cancel_all(mut self) {
        cancel_all(&self.client, &std::mem::take(&mut self.jobs));
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        cancel_all(&self.client, &std::mem::take(&mut self.jobs));
    }
}
