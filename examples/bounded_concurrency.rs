//! At most N at a time: the batch's own bound, the same with an explicit semaphore, and
//! results handed out as they complete with at most 10 in flight.
//!
//! Patterns: S2.7, S4.3, S4.11
//!
//! Python (vecu, Infrahub, inference.sh): an `asyncio.Semaphore(10)` taken around each
//! call inside `gather`; and an async generator that keeps a set of at most 10 tasks,
//! `asyncio.wait(..., return_when=FIRST_COMPLETED)`, and yields each as it finishes.
//!
//! Rust: the bound is an argument — `run_all(inputs).concurrency(5)` starts the next
//! job only when one ends, and `run_unordered(..).results()` is a `Stream` in completion
//! order, each item with its input's index. A `tokio::sync::Semaphore` still works for
//! calls that are not one batch. Client-wide bounds over every clone exist too:
//! `.max_in_flight(n)` requests at once and `.rate_limit(per_second)` on the builder.
//!
//! ```text
//! cargo run --example bounded_concurrency
//! ```

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{check, Server};
use futures_util::future::join_all;
use futures_util::StreamExt;
use jobwire::BatchEvent;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

/// Jobs between their submit and their end, and the most there ever were.
#[derive(Default)]
struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl InFlight {
    fn started(&self) {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
    }
    fn ended(&self) {
        self.now.fetch_sub(1, Ordering::SeqCst);
    }
    fn most(&self) -> usize {
        self.most.load(Ordering::SeqCst)
    }
    /// A batch hook that counts.
    fn hook(self: &Arc<Self>) -> impl Fn(&BatchEvent) + Send + Sync + 'static {
        let counts = self.clone();
        move |event| match event {
            BatchEvent::Submitted { .. } => counts.started(),
            BatchEvent::Finished { .. } | BatchEvent::Failed { .. } => counts.ended(),
            _ => {}
        }
    }
}

#[tokio::main]
async fn main() -> common::Result {
    let server = Server::start().await?;
    let client = server.client()?;
    let sleep = client.service("sleep").await?;
    let short = json!({"duration_seconds": 0.05});

    // 100 items, at most 5 at a time, by the batch.
    let counts = Arc::new(InFlight::default());
    let started = Instant::now();
    let outputs: Vec<Value> = sleep
        .run_all(vec![short.clone(); 100])
        .concurrency(5)
        .on_event(counts.hook())
        .try_collect()
        .await?;
    let wall = started.elapsed();
    println!(
        "run_all: {} outputs in {:.2}s, at most {} at once",
        outputs.len(),
        wall.as_secs_f64(),
        counts.most()
    );
    check(
        outputs.len() == 100 && counts.most() == 5 && wall >= Duration::from_millis(900),
        "never more than 5 jobs at once, so 100 jobs of 50 ms took 20 rounds",
    )?;

    // The same bound with a semaphore, around any calls.
    let permits = Arc::new(Semaphore::new(10));
    let counts = Arc::new(InFlight::default());
    let started = Instant::now();
    let calls = (0..100).map(|_| {
        let (client, permits, counts, short) = (&client, permits.clone(), counts.clone(), &short);
        async move {
            let _permit = permits.acquire_owned().await.map_err(|e| e.to_string())?;
            counts.started();
            let out = client
                .run::<_, Value>("sleep", short)
                .await
                .map_err(|e| e.to_string());
            counts.ended();
            out
        }
    });
    let results = join_all(calls).await;
    let wall = started.elapsed();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    println!(
        "semaphore: {ok} outputs in {:.2}s, at most {} at once",
        wall.as_secs_f64(),
        counts.most()
    );
    check(
        ok == 100 && counts.most() == 10 && wall < Duration::from_secs(5),
        "the semaphore held 10 calls at once, no more, no fewer",
    )?;

    // As they complete, at most 10 in flight: longer jobs first in input order.
    let durations = [0.6, 0.4, 0.2];
    let inputs: Vec<Value> = (0..30)
        .map(|i| json!({"duration_seconds": durations[i % 3]}))
        .collect();
    let counts = Arc::new(InFlight::default());
    let mut completed = Vec::new();
    let mut results = std::pin::pin!(sleep
        .run_unordered(inputs)
        .concurrency(10)
        .on_event(counts.hook())
        .results::<Value>());
    while let Some((index, outcome)) = results.next().await {
        let output = outcome?;
        println!("  input {index:>2} done: {output}");
        completed.push(index);
    }
    let in_input_order = completed.windows(2).all(|w| w[0] < w[1]);
    let first = completed.first().copied().unwrap_or(usize::MAX);
    check(
        completed.len() == 30 && !in_input_order && first % 3 == 2 && counts.most() <= 10,
        format!(
            "results came in completion order (first: input {first}, a 0.2 s job), at most {} in flight",
            counts.most()
        ),
    )?;
    server.stop().await;
    Ok(())
}
