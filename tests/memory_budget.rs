//! The memory store's byte budget, over real sockets: a tenant that submits far more
//! than its budget holds keeps getting every answer whole, while the store keeps only
//! its newest finished jobs — the probe that once grew a server without bound.

use futures_util::TryStreamExt;
use jobwire::Client;
use jobwire_server::{spawn, ServerConfig};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn past_its_budget_a_tenant_keeps_working_and_only_its_oldest_jobs_go() {
    const BUDGET: u64 = 256 * 1024;
    const JOBS: usize = 3000;
    let server = spawn(
        ServerConfig::new()
            .memory()
            .max_stored_bytes_per_tenant(BUDGET),
    )
    .await
    .unwrap();
    let client = Client::builder()
        .base_url(server.url())
        .token(server.token())
        .build()
        .unwrap();
    let echo = client.service("echo").await.unwrap();
    // About 2 KB stored a job (its input, its output, its events): ten times the budget.
    let inputs = (0..JOBS).map(|i| json!({ "i": i, "pad": "x".repeat(600) }));
    let outputs: Vec<Value> = echo
        .run_all(inputs)
        .concurrency(16)
        .try_collect()
        .await
        .unwrap();
    // Nothing accepted was refused or lost on the way: every answer came back whole.
    assert_eq!(outputs.len(), JOBS);
    for (i, output) in outputs.iter().enumerate() {
        assert_eq!(output["i"], json!(i));
    }
    // What the store holds is what its budget allows: the newest jobs, not all of them.
    let kept: Vec<_> = client.jobs().items().try_collect().await.unwrap();
    assert!(
        (10..JOBS / 5).contains(&kept.len()),
        "{} of {JOBS} jobs kept within {BUDGET} bytes",
        kept.len()
    );
    let newest = kept.iter().filter_map(|job| job.input["i"].as_u64()).max();
    assert_eq!(newest, Some(JOBS as u64 - 1), "the last job is kept");
    let oldest = kept.iter().filter_map(|job| job.input["i"].as_u64()).min();
    assert!(
        oldest > Some(JOBS as u64 / 2),
        "the oldest went first: {oldest:?}"
    );
}
