//! The server binary as a child process: killed with SIGKILL mid-batch and restarted on
//! the same data directory, every accepted job ends by the crash rule (queued ones run,
//! running ones fail as `interrupted`), none lost, none run twice; stopped with SIGTERM,
//! it lets running jobs finish within its grace and exits 0.

mod common;

use std::time::{Duration, Instant};

use common::process::Server;
use common::{Client, Resp, TempDir};
use jobwire_core::{Job, JobStatus};
use serde_json::{json, Value};

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

/// Records every write of a job or an idempotency key the server makes, by triggers in
/// its database: `(table, op, job id, status)` rows of a `writes` table.
fn record_writes(dir: &TempDir) {
    let db = rusqlite::Connection::open(dir.0.join("jobwire.db")).unwrap();
    db.execute_batch(
        "CREATE TABLE writes (n INTEGER PRIMARY KEY, tbl TEXT, op TEXT, job_id TEXT, status);
         CREATE TRIGGER jobs_ins AFTER INSERT ON jobs BEGIN
             INSERT INTO writes (tbl, op, job_id, status) VALUES ('jobs', 'insert', NEW.id, NEW.status);
         END;
         CREATE TRIGGER jobs_upd AFTER UPDATE ON jobs BEGIN
             INSERT INTO writes (tbl, op, job_id, status) VALUES ('jobs', 'update', NEW.id, NEW.status);
         END;
         CREATE TRIGGER keys_ins AFTER INSERT ON idempotency_keys BEGIN
             INSERT INTO writes (tbl, op, job_id, status) VALUES ('keys', 'insert', NEW.job_id, NEW.status);
         END;
         CREATE TRIGGER keys_upd AFTER UPDATE ON idempotency_keys BEGIN
             INSERT INTO writes (tbl, op, job_id, status) VALUES ('keys', 'update', NEW.job_id, NEW.status);
         END;",
    )
    .unwrap();
}

/// The writes recorded for `job_id`, in order, as `table op status`.
fn writes_of(dir: &TempDir, job_id: &str) -> Vec<String> {
    let db = rusqlite::Connection::open(dir.0.join("jobwire.db")).unwrap();
    let mut stmt = db
        .prepare("SELECT tbl, op, status FROM writes WHERE job_id = ?1 ORDER BY n")
        .unwrap();
    let rows = stmt
        .query_map([job_id], |row| {
            let status: rusqlite::types::Value = row.get(2)?;
            let status = match status {
                rusqlite::types::Value::Text(s) => s,
                rusqlite::types::Value::Integer(i) => i.to_string(),
                _ => "null".into(),
            };
            Ok(format!(
                "{} {} {status}",
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?
            ))
        })
        .unwrap();
    rows.map(Result::unwrap).collect()
}

/// A submit with an `Idempotency-Key`, waiting for the job or not.
async fn keyed(client: &Client, service: &str, input: Value, wait: bool, key: &str) -> Resp {
    let mut headers = vec![("Idempotency-Key", key)];
    if wait {
        headers.push(("Prefer", "wait=30"));
    }
    let path = format!("/v1/services/{service}/jobs");
    client
        .post_with(&path, &json!({ "input": input }), &headers)
        .await
}

/// A job its handler finishes within the submit (echo, fail) is written once: its row
/// inserted already finished, its key with the answer's status, no update; so a server
/// killed right after answering leaves it finished, and a repeat of its key gets the
/// same answer. A job of any other handler (`sleep`) still takes its two writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_finishes_within_its_submit_is_written_once_and_survives_a_kill() {
    let dir = TempDir::new("inline");
    // Started once for its schema, then watched.
    let status = tokio::task::spawn_blocking({
        let server = start(&dir, "0");
        move || server.terminate(Duration::from_secs(10))
    })
    .await
    .unwrap();
    assert!(status.success());
    record_writes(&dir);

    let server = start(&dir, "0");
    let client = server.client();
    let waited = keyed(&client, "echo", json!({"n": 1}), true, "k-waited").await;
    let unwaited = keyed(&client, "echo", json!({"n": 2}), false, "k-unwaited").await;
    let failed = keyed(&client, "fail", json!({"message": "no"}), true, "k-failed").await;
    let slept = keyed(
        &client,
        "sleep",
        json!({"duration_seconds": 0}),
        true,
        "k-slept",
    )
    .await;
    server.kill();

    // Answered finished, each as the client asked: 200 within a wait, 202 without.
    for (resp, code, status) in [
        (&waited, 200, JobStatus::Succeeded),
        (&unwaited, 202, JobStatus::Succeeded),
        (&failed, 200, JobStatus::Failed),
        (&slept, 200, JobStatus::Succeeded),
    ] {
        assert_eq!(resp.status, code);
        assert_eq!(resp.job().status, status);
    }
    let id = |resp: &Resp| resp.job().id;
    assert_eq!(
        writes_of(&dir, &id(&waited)),
        ["jobs insert succeeded", "keys insert 200"]
    );
    assert_eq!(
        writes_of(&dir, &id(&unwaited)),
        ["jobs insert succeeded", "keys insert 202"]
    );
    assert_eq!(
        writes_of(&dir, &id(&failed)),
        ["jobs insert failed", "keys insert 200"]
    );
    // The control: stored running, then finished, then its key answered.
    assert_eq!(
        writes_of(&dir, &id(&slept)),
        [
            "jobs insert running",
            "keys insert null",
            "jobs update succeeded",
            "keys update 200"
        ]
    );

    // After the kill: finished as answered, with their whole history, and a repeat of
    // a key gets the first answer.
    let server = start(&dir, "0");
    let client = server.client();
    for resp in [&waited, &unwaited, &failed] {
        let job = client.get(&format!("/v1/jobs/{}", id(resp))).await.job();
        assert_eq!(job, resp.job());
        let (runs, dones) = runs_and_dones(&client, &job.id).await;
        assert_eq!((runs, dones), (1, 1), "job {}", job.id);
    }
    let again = keyed(&client, "echo", json!({"n": 1}), true, "k-waited").await;
    assert_eq!(again.status, 200);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.job(), waited.job());
    let again = keyed(&client, "echo", json!({"n": 2}), false, "k-unwaited").await;
    assert_eq!(again.status, 202);
    assert_eq!(again.job().id, id(&unwaited));
    drop(server);
}

/// SIGTERM right after the server says where it listens is a clean shutdown, not the
/// signal's default action: the server listens for it before it prints that line.
#[test]
fn a_stop_request_right_after_the_listening_line_shuts_down_cleanly() {
    for _ in 0..20 {
        let server = Server::start(env!("CARGO_BIN_EXE_jobwire-server"), &["--memory".as_ref()]);
        let status = server.terminate(Duration::from_secs(10));
        assert!(status.success(), "{status}");
    }
}
