//! Calls run side by side: three with `try_join!`, ten with `try_join_all`, and one
//! started now, left to run while other work goes on, and awaited later.
//!
//! Patterns: S1.4, S1.5, S4.2
//!
//! Python (Kubetorch, inference.sh): `asyncio.gather(remote_fn(1, async_=True), …)`
//! and `asyncio.gather(*[client.run(…) for p in prompts])`; `asyncio.create_task` starts
//! a long call, other calls are awaited meanwhile, then the task.
//!
//! Rust: a future does nothing until polled, so `try_join!` / `try_join_all` are what
//! run calls together (and the first error ends them). To start work now and await it
//! later, either `tokio::spawn` the call, or — cheaper — `submit` the job: the server
//! runs it at once, and the `JobHandle` is what you await later.
//!
//! ```text
//! cargo run --example parallel_runs
//! ```

mod common;

use std::time::{Duration, Instant};

use common::{check, Server};
use futures_util::future::try_join_all;
use serde_json::{json, Value};

fn sleep_for(seconds: f64) -> Value {
    json!({"duration_seconds": seconds})
}

#[tokio::main]
async fn main() -> common::Result {
    let server = Server::start().await?;
    let client = server.client()?;
    let second = sleep_for(1.0);

    // Three calls, one statement.
    let started = Instant::now();
    let (a, b, c): (Value, Value, Value) = tokio::try_join!(
        client.run("sleep", &second),
        client.run("sleep", &second),
        client.run("sleep", &second),
    )?;
    let three = started.elapsed();
    println!("try_join!: {a} {b} {c} in {:.2}s", three.as_secs_f64());
    check(
        three < Duration::from_millis(1800),
        format!(
            "3 one-second runs took {:.2}s together",
            three.as_secs_f64()
        ),
    )?;

    // Ten, from a list.
    let started = Instant::now();
    let prompts = [
        "mountain", "ocean", "forest", "city", "desert", "river", "valley", "island", "glacier",
        "canyon",
    ];
    let outputs: Vec<Value> =
        try_join_all(prompts.iter().map(|_| client.run("sleep", &second))).await?;
    let ten = started.elapsed();
    check(
        outputs.len() == 10 && ten < Duration::from_secs(3),
        format!(
            "10 one-second runs took {:.2}s together (one after another: 10s)",
            ten.as_secs_f64()
        ),
    )?;

    // Fire now, await later: a spawned task...
    let started = Instant::now();
    let training = tokio::spawn({
        let client = client.clone();
        async move { client.run::<_, Value>("sleep", &sleep_for(1.5)).await }
    });
    // ...or just a submitted job: it runs on the server whatever this program does.
    let mut evaluation = client.submit("sleep", &sleep_for(1.0)).await?;
    // Other work meanwhile.
    let data: Value = client.run("echo", &json!({"dataset": "rows.csv"})).await?;
    let other_work_done = started.elapsed();
    println!(
        "other work done at {:.2}s: {data}",
        other_work_done.as_secs_f64()
    );
    let evaluated: Value = evaluation.result().await?;
    let trained = training.await??;
    let all_done = started.elapsed();
    println!(
        "trained {trained}, evaluated {evaluated}, at {:.2}s",
        all_done.as_secs_f64()
    );
    check(
        other_work_done < Duration::from_millis(900) && all_done < Duration::from_millis(2300),
        format!(
            "the other work was done at {:.2}s, before either job; all at {:.2}s (one after another: 2.5s and more)",
            other_work_done.as_secs_f64(),
            all_done.as_secs_f64()
        ),
    )?;
    server.stop().await;
    Ok(())
}
