//! Structured concurrency over jobs: when one fails, the others stop — on the server,
//! not just in this program; and a group of jobs that rolls back (cancels) unless it is
//! committed.
//!
//! Patterns: S2.3, S3.6
//!
//! Python (vecu, Infrahub): `async with asyncio.TaskGroup() as tg:` cancels the sibling
//! tasks when one raises; an `@asynccontextmanager` transaction deletes its branch when
//! the body raises, and keeps it otherwise.
//!
//! Rust: dropping a future cancels it, so `tokio::try_join!` already stops the
//! siblings' waits at the first error — but their jobs would run on. A `JobGuard` holds
//! the jobs: `cancel_all()` on the error path, and a guard dropped by an early `?` (the
//! rollback) cancels its jobs by itself, unless `disarm()`ed (the commit). For many jobs
//! of one service, `run_unordered(..).fail_fast()` does all of it.
//!
//! ```text
//! cargo run --example task_group
//! ```

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{check, Server};
use futures_util::StreamExt;
use jobwire::{BatchEvent, Client, Error, JobStatus, SubmitOptions};
use serde_json::{json, Value};

/// Where a job ended, read from the server (the client's own view could be stale).
async fn final_status(client: &Client, id: &str) -> Result<JobStatus, Error> {
    Ok(client
        .within(Duration::from_secs(10))
        .wait(id)
        .await?
        .status)
}

/// A transaction of three steps, its jobs labelled `tx`: if any step fails, the jobs
/// it started are cancelled.
async fn provision(client: &Client, tx: &str, fail_at_the_end: bool) -> Result<(), Error> {
    let mut transaction = client.guard();
    for step in ["network", "storage", "compute"] {
        let labelled = SubmitOptions::default().label("tx", tx);
        let job = client
            .submit_with("sleep", &json!({"duration_seconds": 30}), labelled)
            .await?;
        println!("  {step}: job {}", transaction.add(job).id());
    }
    if fail_at_the_end {
        // The `?` returns early: the guard is dropped and cancels the three jobs.
        let _: Value = client
            .run("fail", &json!({"message": "quota exceeded"}))
            .await?;
    }
    transaction.disarm();
    Ok(())
}

/// Where each job of transaction `tx` ended.
async fn transaction_statuses(client: &Client, tx: &str) -> Result<Vec<JobStatus>, Error> {
    let mut statuses = Vec::new();
    for job in client.jobs().label("tx", tx).page().await?.items {
        statuses.push(final_status(client, &job.id).await?);
    }
    Ok(statuses)
}

#[tokio::main]
async fn main() -> common::Result {
    let server = Server::start().await?;
    let client = server.client()?;

    // A group of three different jobs; the third fails.
    println!("task group:");
    let started = Instant::now();
    let mut group = client.guard();
    let mut releasability = group.add(
        client
            .submit("sleep", &json!({"duration_seconds": 30}))
            .await?,
    );
    let mut authorizations = group.add(
        client
            .submit("steps", &json!({"steps": 100, "interval_ms": 300}))
            .await?,
    );
    let mut transfer = group.add(
        client
            .submit("fail", &json!({"message": "no custodian"}))
            .await?,
    );
    let ids: Vec<String> = group.job_ids().to_vec();
    let outcome = tokio::try_join!(
        releasability.result::<Value>(),
        authorizations.result::<Value>(),
        transfer.result::<Value>(),
    );
    match outcome {
        Ok(_) => group.disarm(),
        Err(e) => {
            println!("  first error: {e}; cancelling the rest");
            group.cancel_all().await;
        }
    }
    let took = started.elapsed();
    let mut statuses = Vec::new();
    for id in &ids {
        statuses.push(final_status(&client, id).await?);
    }
    println!(
        "  statuses on the server: {statuses:?}, after {:.2}s",
        took.as_secs_f64()
    );
    check(
        statuses
            == [
                JobStatus::Cancelled,
                JobStatus::Cancelled,
                JobStatus::Failed,
            ]
            && took < Duration::from_secs(2),
        "the failure ended the group at once and its siblings are cancelled on the server",
    )?;

    // The same for many jobs of one service: the batch's fail-fast mode. Input 3 is
    // one the service refuses.
    println!("fail-fast batch:");
    let mut inputs: Vec<Value> = (0..6).map(|_| json!({"duration_seconds": 30})).collect();
    inputs[3] = json!({"duration_seconds": "never"});
    let submitted = Arc::new(Mutex::new(Vec::new()));
    let hook = {
        let submitted = submitted.clone();
        move |event: &BatchEvent| {
            if let BatchEvent::Submitted { job_id, .. } = event {
                submitted
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(job_id.clone());
            }
        }
    };
    let started = Instant::now();
    let sleep = client.service("sleep").await?;
    let mut results = std::pin::pin!(sleep
        .run_unordered(inputs)
        .concurrency(6)
        .fail_fast()
        .on_event(hook)
        .results::<Value>());
    while let Some((index, outcome)) = results.next().await {
        println!(
            "  input {index}: {}",
            outcome.map_or_else(|e| e.to_string(), |v| v.to_string())
        );
    }
    let took = started.elapsed();
    let submitted = submitted.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut statuses = Vec::new();
    for id in &submitted {
        statuses.push(final_status(&client, id).await?);
    }
    println!("  {} jobs were submitted: {statuses:?}", submitted.len());
    check(
        !statuses.is_empty()
            && statuses.iter().all(|s| *s == JobStatus::Cancelled)
            && took < Duration::from_secs(2),
        "the refused input ended the batch at once and every job it had started is cancelled",
    )?;

    // A transaction that fails rolls back; one that succeeds is kept.
    println!("transaction that fails:");
    let failing = format!("tx-{}", common::run_id());
    if let Err(e) = provision(&client, &failing, true).await {
        println!("  failed: {e}");
    }
    let statuses = transaction_statuses(&client, &failing).await?;
    check(
        statuses.len() == 3 && statuses.iter().all(|s| *s == JobStatus::Cancelled),
        format!("the failed transaction's jobs were cancelled: {statuses:?}"),
    )?;
    println!("transaction that succeeds:");
    let committed = format!("tx-{}-ok", common::run_id());
    provision(&client, &committed, false).await?;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let jobs = client.jobs().label("tx", &committed).page().await?.items;
    check(
        jobs.len() == 3 && jobs.iter().all(|j| j.status == JobStatus::Running),
        "the committed transaction's jobs run on",
    )?;
    for job in &jobs {
        client.cancel(&job.id).await?;
    }
    server.stop().await;
    Ok(())
}
