//! Many jobs at once: [`ServiceHandle::run_all`] (results in input order, or fail-fast),
//! [`ServiceHandle::run_unordered`] (results as they complete), and [`JobGuard`] (cancels
//! its jobs when dropped). The bookkeeping is `jobwire_core::batch`'s; this module runs
//! the jobs as futures of the caller's task, at most `concurrency` at a time.

use std::sync::Mutex;

use futures_core::Stream;
use futures_util::stream::{FuturesUnordered, StreamExt};
use jobwire_core::batch::{Batch, BatchReport, Mode, Next};
use jobwire_core::endpoint::CancelJob;
use jobwire_core::Error;
use serde::de::DeserializeOwned;

use crate::{Client, JobHandle, ServiceHandle};

jobwire_core::__batch_surface! {
    run_all:
    /// Runs a job per input, at most `concurrency` at a time (default 8); `.collect()`
    /// answers every outcome in input order with a summary, `.try_collect()` the outputs
    /// or the first error — which cancels the other jobs in flight.
    ///
    /// ```no_run
    /// # async fn demo(client: jobwire::Client) -> Result<(), jobwire::Error> {
    /// let echo = client.service("echo").await?;
    /// let report = echo
    ///     .run_all((0..100).map(|i| serde_json::json!({ "i": i })))
    ///     .concurrency(16)
    ///     .collect::<serde_json::Value>()
    ///     .await;
    /// println!("{} ok, {} failed", report.summary.succeeded, report.summary.failed);
    /// for (index, outcome) in report.results {
    ///     if let Err(e) = outcome {
    ///         eprintln!("input {index}: {e}");
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    run_unordered:
    /// Runs a job per input, at most `concurrency` at a time (default 8);
    /// `.results()` yields `(index, outcome)` as each job ends.
    ///
    /// ```no_run
    /// # async fn demo(client: jobwire::Client) -> Result<(), jobwire::Error> {
    /// use futures_util::StreamExt;
    /// let sleep = client.service("sleep").await?;
    /// let inputs = [3.0, 1.0, 2.0].map(|s| serde_json::json!({ "duration_seconds": s }));
    /// let mut done = std::pin::pin!(sleep.run_unordered(inputs).concurrency(3).results::<serde_json::Value>());
    /// while let Some((index, outcome)) = done.next().await {
    ///     println!("input {index} ended first: {outcome:?}"); // 1, then 2, then 0
    /// }
    /// # Ok(()) }
    /// ```
    guard:
    /// Cancels the jobs added to it when dropped, unless [`disarm`](Self::disarm)ed: the
    /// rollback of a step that started jobs and then failed. From [`Client::guard`].
    ///
    /// Dropping cannot wait, so the cancels run on a task of the current tokio runtime;
    /// [`cancel_all`](Self::cancel_all) cancels and waits for the answers.
    ///
    /// ```no_run
    /// # async fn demo(client: jobwire::Client) -> Result<(), jobwire::Error> {
    /// let mut guard = client.guard();
    /// let a = guard.add(client.submit("sleep", &serde_json::json!({"duration_seconds": 60})).await?);
    /// let b = guard.add(client.submit("sleep", &serde_json::json!({"duration_seconds": 60})).await?);
    /// // … a step that returns early with `?` would leave `guard` to cancel both …
    /// guard.disarm(); // all went well: the jobs keep running
    /// # let _ = (a, b);
    /// # Ok(()) }
    /// ```
}

impl RunAll {
    /// Runs every input and answers each outcome in input order, with a summary.
    pub async fn collect<O: DeserializeOwned>(self) -> BatchReport<O> {
        self.drive(Mode::Collect).await.into_report()
    }

    /// Runs the inputs until one fails: then nothing more starts, the jobs in flight are
    /// cancelled on the server, and that first error is the answer. Otherwise the
    /// outputs, in input order.
    pub async fn try_collect<O: DeserializeOwned>(self) -> Result<Vec<O>, Error> {
        self.drive(Mode::FailFast).await.into_outputs()
    }

    /// The drive loop: the core's [`Batch`] decides what to start and what to cancel.
    async fn drive<O: DeserializeOwned>(self, mode: Mode) -> Batch<O> {
        let RunAll {
            client,
            service,
            plan,
        } = self;
        let state = Mutex::new(Batch::new(plan.len(), plan.concurrency_value(), mode));
        let lock = || {
            state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        let mut running = FuturesUnordered::new();
        loop {
            let next = lock().next_step();
            match next {
                Next::Start(index) => {
                    let (client, service, plan) = (&client, &service, &plan);
                    let submitted = move |job_id: &str| lock().submitted(index, job_id);
                    running.push(async move {
                        let outcome = client.run_item(service, plan, index, submitted).await;
                        (index, outcome)
                    });
                }
                Next::Wait => {
                    let Some((index, outcome)) = running.next().await else {
                        break;
                    };
                    plan.emit_outcome(index, &outcome);
                    let cancel = lock().finished(index, outcome);
                    cancel_all(&client, cancel).await;
                }
                _ => break,
            }
        }
        drop(running);
        state
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl RunUnordered {
    /// `(index, outcome)` of each input as its job ends, at most `concurrency` jobs in
    /// flight. Dropping the stream starts no more jobs; those in flight go on.
    pub fn results<O: DeserializeOwned + Send + 'static>(
        self,
    ) -> impl Stream<Item = (usize, Result<O, Error>)> + Send + 'static {
        let RunUnordered {
            client,
            service,
            plan,
        } = self;
        let concurrency = plan.concurrency_value();
        futures_util::stream::iter(0..plan.len())
            .map(move |index| {
                let (client, service, plan) = (client.clone(), service.clone(), plan.clone());
                async move {
                    let outcome = client.run_item(&service, &plan, index, |_| false).await;
                    plan.emit_outcome(index, &outcome);
                    (index, outcome)
                }
            })
            .buffer_unordered(concurrency)
    }
}

/// Cancels jobs, all at once; a cancel that fails is only logged (the batch has its
/// answer already).
async fn cancel_all(client: &Client, ids: Vec<String>) {
    let cancels = ids
        .iter()
        .map(|id| async move { client.execute(&CancelJob::new(id)).await });
    for (id, result) in ids
        .iter()
        .zip(futures_util::future::join_all(cancels).await)
    {
        if let Err(e) = result {
            tracing::warn!(job_id = %id, error = %e, "cannot cancel a job of a stopped batch");
        }
    }
}

impl JobGuard {
    /// Cancels the guarded jobs now and waits for the server's answers.
    pub async fn cancel_all(mut self) {
        let ids = std::mem::take(&mut self.jobs);
        cancel_all(&self.client, ids).await;
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        if self.jobs.is_empty() {
            return;
        }
        let (client, ids) = (self.client.clone(), std::mem::take(&mut self.jobs));
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { cancel_all(&client, ids).await });
            }
            Err(_) => tracing::warn!(
                jobs = ids.len(),
                "a JobGuard dropped outside a tokio runtime cannot cancel its jobs"
            ),
        }
    }
}
