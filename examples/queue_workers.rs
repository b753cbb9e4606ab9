//! Producer and consumers: a producer fills a bounded queue, three workers take items
//! from it and run a job for each; then the same with the SDK's batch reading the queue.
//!
//! Patterns: S3.8, S4.6
//!
//! Python (Infrahub, inference.sh): an `asyncio.Queue`, a producer that `put`s items and
//! then one `None` per consumer, and N consumer coroutines that `get` until they see
//! `None`, all under `gather`.
//!
//! Rust: a bounded `tokio::sync::mpsc` channel; dropping the sender is the end of input
//! for every worker, so there is no sentinel to count, and the bound stops a fast
//! producer from running ahead. One receiver shared by the workers sits behind a mutex.
//! Or hand the receiver, as a `Stream`, to `run_unordered_from(..).concurrency(3)`: it
//! takes an item only when one of its three slots is free.
//!
//! ```text
//! cargo run --example queue_workers
//! ```

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{check, Server};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::{mpsc, Mutex};

const ITEMS: usize = 20;
const WORKERS: usize = 3;
const QUEUE: usize = 4;

/// The job for an item: a fifth of a second of the server's time.
fn job_for(_item: usize) -> Value {
    json!({"duration_seconds": 0.2})
}

#[tokio::main]
async fn main() -> common::Result {
    let server = Server::start().await?;
    let client = server.client()?;

    // The guide's shape: a producer, a queue, three workers.
    let started = Instant::now();
    let (queue, receiver) = mpsc::channel::<usize>(QUEUE);
    let producer = tokio::spawn(async move {
        for i in 0..ITEMS {
            if queue.send(i).await.is_err() {
                break;
            }
        }
        // `queue` is dropped here: the workers' `recv` answers `None` once it is empty.
    });
    let receiver = Arc::new(Mutex::new(receiver));
    let workers = (0..WORKERS).map(|worker| {
        let (client, receiver) = (client.clone(), receiver.clone());
        tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let next = receiver.lock().await.recv().await;
                let Some(i) = next else { break };
                let _: Value = client.run("sleep", &job_for(i)).await?;
                println!("  worker {worker} processed item {i}");
                done.push(i);
            }
            Ok::<_, jobwire::Error>(done)
        })
    });
    let mut by_worker = BTreeMap::new();
    for (worker, handle) in futures_util::future::join_all(workers)
        .await
        .into_iter()
        .enumerate()
    {
        by_worker.insert(worker, handle??);
    }
    producer.await?;
    let wall = started.elapsed();
    let mut all: Vec<usize> = by_worker.values().flatten().copied().collect();
    all.sort();
    let counts: Vec<usize> = by_worker.values().map(Vec::len).collect();
    println!(
        "items per worker: {counts:?}, in {:.2}s",
        wall.as_secs_f64()
    );
    check(
        all == (0..ITEMS).collect::<Vec<_>>() && counts.iter().all(|&n| n > 0),
        "every item was processed once, and every worker took some",
    )?;
    check(
        wall < Duration::from_secs(3),
        format!(
            "three workers ran 20 jobs of 0.2 s in {:.2}s (one worker: 4s)",
            wall.as_secs_f64()
        ),
    )?;

    // The SDK's batch as the consumers, reading the queue as its slots free.
    let (queue, mut receiver) = mpsc::channel::<Value>(QUEUE);
    let produced = Arc::new(AtomicUsize::new(0));
    let producer = tokio::spawn({
        let produced = produced.clone();
        async move {
            for i in 0..ITEMS {
                if queue.send(job_for(i)).await.is_err() {
                    break;
                }
                produced.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let inputs = futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx));
    let sleep = client.service("sleep").await?;
    let mut results = std::pin::pin!(sleep
        .run_unordered_from(inputs)
        .concurrency(WORKERS)
        .results::<Value>());
    let (mut finished, mut most_ahead) = (0, 0);
    while let Some((index, outcome)) = results.next().await {
        outcome?;
        finished += 1;
        let ahead = produced.load(Ordering::SeqCst).saturating_sub(finished);
        most_ahead = usize::max(most_ahead, ahead);
        println!("  batch: item {index} done, producer {ahead} ahead");
    }
    producer.await?;
    check(
        finished == ITEMS && most_ahead <= QUEUE + WORKERS + 1,
        format!(
            "the batch ran all {ITEMS} items; the producer was at most {most_ahead} items ahead (queue {QUEUE} + {WORKERS} running)"
        ),
    )?;
    server.stop().await;
    Ok(())
}
