//! The server binary as a child process: killed with SIGKILL mid-batch and restarted on
//! the same data directory, every accepted job ends by the crash rule (queued ones run,
//! running ones fail as `interrupted`), none lost, none run twice; stopped with SIGTERM,
//! it lets running jobs finish within its grace and exits 0.

mod common;

use std::time::{Duration, Instant};

use common::process::Server;
use common::{Client, TempDir};
use jobwire_core::{Job, JobStatus};
use serde_json::json;

/// A server on `dir`, letting running jobs finish `grace` seconds on SIGTERM.
fn start(dir: &TempDir, grace: &str) -> Server {
    let args = [
        "--grace".as_ref(),
        grace.as_ref(),
        "--data-dir".as_ref(),
        dir.0.as_os_str(),
    ];
    Server::start(env!("CARGO_BIN_EXE_jobwire-server"), &args)
}

/// Waits for a job to be terminal.
async fn finished(client: &Client, id: &str) -> Job {
    for _ in 0..30 {
        let resp = client
            .get_with(&format!("/v1/jobs/{id}"), &[("Prefer", "wait=5")])
            .await;
        assert_eq!(resp.status, 200, "job {id} is there");
        let job = resp.job();
        if job.status.is_terminal() {
            return job;
        }
    }
    panic!("job {id} never finished");
}

/// How many `running` status events and `done` events a job's history has.
async fn runs_and_dones(client: &Client, id: &str) -> (usize, usize) {
    let resp = client.get(&format!("/v1/jobs/{id}/events")).await;
    assert_eq!(resp.status, 200);
    let text = String::from_utf8(resp.body).unwrap();
    let runs = text.matches("\"status\":\"running\"").count();
    let dones = text.matches("event: done").count();
    (runs, dones)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_ends_every_accepted_job_by_the_crash_rule() {
    let dir = TempDir::new("crash");
    let server = start(&dir, "0");
    let client = server.client();
    let mut ids = Vec::new();
    for i in 0..24 {
        // 0.1 s to 4.7 s: some end before the kill, the rest are cut.
        let input = json!({"duration_seconds": 0.1 + 0.2 * f64::from(i)});
        let resp = client.submit("sleep", input, None).await;
        assert_eq!(resp.status, 202);
        ids.push(resp.job().id);
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    server.kill();

    let server = start(&dir, "0");
    let client = server.client();
    let (mut succeeded, mut interrupted) = (0, 0);
    for id in &ids {
        let job = finished(&client, id).await;
        match job.status {
            JobStatus::Succeeded => succeeded += 1,
            JobStatus::Failed => {
                assert_eq!(job.error.unwrap().code.as_deref(), Some("interrupted"));
                interrupted += 1;
            }
            other => panic!("job {id} ended {other}"),
        }
        let (runs, dones) = runs_and_dones(&client, id).await;
        assert!(runs <= 1, "job {id} ran {runs} times");
        assert_eq!(dones, 1, "job {id} has one done");
    }
    assert_eq!(succeeded + interrupted, ids.len(), "none lost");
    assert!(
        succeeded >= 1 && interrupted >= 1,
        "{succeeded} / {interrupted}"
    );
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_running_jobs_finish_within_the_grace() {
    let dir = TempDir::new("graceful");
    let server = start(&dir, "1");
    let client = server.client();
    let mut short = Vec::new();
    for _ in 0..5 {
        let resp = client
            .submit("sleep", json!({"duration_seconds": 0.4}), None)
            .await;
        short.push(resp.job().id);
    }
    let long = client
        .submit("sleep", json!({"duration_seconds": 30}), None)
        .await
        .job()
        .id;
    let started = Instant::now();
    let status = tokio::task::spawn_blocking(move || server.terminate(Duration::from_secs(10)))
        .await
        .unwrap();
    assert!(status.success(), "{status:?}");
    // The grace (1 s) bounded the wait for the long job.
    assert!(started.elapsed() < Duration::from_secs(5));

    let server = start(&dir, "0");
    let client = server.client();
    for id in &short {
        assert_eq!(finished(&client, id).await.status, JobStatus::Succeeded);
    }
    let long = finished(&client, &long).await;
    assert_eq!(long.status, JobStatus::Failed);
    assert_eq!(long.error.unwrap().code.as_deref(), Some("interrupted"));
    drop(server);
}
