//! Two server processes on one PostgreSQL database, behind a "load balancer" that is this
//! test sending round-robin: one is killed with SIGKILL mid-batch and restarted at once,
//! and every job any of them accepted ends exactly once by the crash rule (a live server
//! takes the dead one's jobs over when their leases run out: running ones fail as
//! `interrupted`; the restarted one never touches the survivor's jobs), while an event
//! subscriber on the survivor sees every `done` once.
//!
//! Needs PostgreSQL's server binaries (`initdb`, `pg_ctl`); without them the test says
//! so and passes.

mod common;
#[path = "support/pg_cluster.rs"]
mod pg_cluster;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::process::{Server, TOKEN};
use common::sse::{data, open_on};
use common::Client;
use futures_util::StreamExt;
use jobwire_core::{Job, JobStatus, Page};
use pg_cluster::PgCluster;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_jobwire-server");
const JOBS: usize = 2000;
const IN_FLIGHT: usize = 32;
/// The first server dies once this many submits have been answered.
const KILL_AFTER: usize = JOBS / 2;

/// What one event said, as the subscriber saw it.
#[derive(Debug)]
struct Seen {
    job_id: String,
    kind: String,
    status: Option<String>,
}

/// Every job of the tenant, read page by page from `client`.
async fn all_jobs(client: &Client) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut path = "/v1/jobs?limit=500".to_owned();
    loop {
        let resp = client.get(&path).await;
        assert_eq!(resp.status, 200);
        let page: Page<Job> = serde_json::from_slice(&resp.body).unwrap();
        jobs.extend(page.items);
        match page.next_cursor {
            Some(cursor) => path = format!("/v1/jobs?limit=500&cursor={cursor}"),
            None => return jobs,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_database_end_every_job_once_when_one_is_killed() {
    let Some(cluster) = PgCluster::start() else {
        return;
    };
    let url = cluster.database("jobwire").unwrap();
    let args = [
        "--database-url".as_ref(),
        url.as_ref(),
        "--lease".as_ref(),
        "1.5".as_ref(),
        "--heartbeat".as_ref(),
        "1".as_ref(),
        "--grace".as_ref(),
        "0".as_ref(),
    ];
    let first = Server::start(BIN, &args);
    let second = Server::start(BIN, &args);
    let clients = [first.client(), second.client()];
    let survivor = second.client();

    // Everything the tenant records, from the survivor, from the start.
    let mut stream = open_on(second.addr, TOKEN, "/v1/events", Some("0"), None).await;
    assert_eq!(stream.status, 200);
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel();
    let subscriber = tokio::spawn(async move {
        while let Some(event) = stream.next().await {
            let body = data(&event);
            let seen = Seen {
                job_id: body["job_id"].as_str().unwrap_or_default().to_owned(),
                kind: event.event.clone(),
                status: body["status"].as_str().map(str::to_owned),
            };
            if seen_tx.send(seen).is_err() {
                return;
            }
        }
    });

    // Round-robin, IN_FLIGHT at a time; the first server is killed halfway.
    let first = Arc::new(Mutex::new(Some(first)));
    let restarted: Arc<Mutex<Option<Server>>> = Arc::default();
    let answered = Arc::new(AtomicUsize::new(0));
    let accepted: Vec<(usize, String)> = futures_util::stream::iter(0..JOBS)
        .map(|i| {
            let client = clients[i % 2].clone();
            let (first, answered) = (first.clone(), answered.clone());
            let restarted = restarted.clone();
            async move {
                let input = json!({"duration_seconds": 0.02 * (i % 5) as f64});
                let body = serde_json::to_vec(&json!({ "input": input })).unwrap();
                let sent = client
                    .try_send("POST", "/v1/services/sleep/jobs", &[], Some(&body))
                    .await;
                if answered.fetch_add(1, Ordering::SeqCst) + 1 == KILL_AFTER {
                    if let Some(server) = first.lock().unwrap().take() {
                        server.kill();
                        // Back at once, on the same database, under a new identity.
                        let again = tokio::task::block_in_place(|| Server::start(BIN, &args));
                        *restarted.lock().unwrap() = Some(again);
                    }
                }
                match sent {
                    Ok(resp) if resp.status == 202 => Some((i % 2, resp.job().id)),
                    Ok(resp) => {
                        assert_eq!(i % 2, 0, "the survivor refused a job: {}", resp.status);
                        None
                    }
                    // The killed server: not accepted.
                    Err(_) => {
                        assert_eq!(i % 2, 0, "the survivor could not be reached");
                        None
                    }
                }
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .filter_map(|accepted| async move { accepted })
        .collect()
        .await;
    assert!(
        first.lock().unwrap().is_none(),
        "the first server was killed"
    );
    let on_first: HashSet<&str> = accepted
        .iter()
        .filter(|(server, _)| *server == 0)
        .map(|(_, id)| id.as_str())
        .collect();
    assert!(
        on_first.len() >= KILL_AFTER / 2 - IN_FLIGHT,
        "{} accepted by the first",
        on_first.len()
    );

    // The survivor takes the dead server's jobs over once their leases run out.
    let started = Instant::now();
    let jobs = loop {
        let jobs = all_jobs(&survivor).await;
        if jobs.iter().all(|j| j.status.is_terminal()) {
            break jobs;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{} jobs still unfinished",
            jobs.iter().filter(|j| !j.status.is_terminal()).count()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let by_id: HashMap<&str, &Job> = jobs.iter().map(|j| (j.id.as_str(), j)).collect();
    let mut interrupted = 0;
    for (server, id) in &accepted {
        let job = by_id
            .get(id.as_str())
            .unwrap_or_else(|| panic!("accepted job {id} is stored"));
        match (&job.status, server) {
            (JobStatus::Succeeded, _) => {}
            (JobStatus::Failed, 0) => {
                let code = job.error.as_ref().and_then(|e| e.code.as_deref());
                assert_eq!(code, Some("interrupted"), "{job:?}");
                interrupted += 1;
            }
            other => panic!("job {id} ended {other:?}"),
        }
    }
    assert!(interrupted >= 1, "some jobs were cut by the kill");
    // Jobs the first server stored but never answered for end the same way.
    for job in &jobs {
        assert!(
            job.status == JobStatus::Succeeded
                || job.error.as_ref().and_then(|e| e.code.as_deref()) == Some("interrupted"),
            "{job:?}"
        );
    }

    // The subscriber saw every job's `done`, once, and no job run twice.
    let mut dones: BTreeMap<String, usize> = BTreeMap::new();
    let mut runs: BTreeMap<String, usize> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while dones.len() < jobs.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(seen)) = tokio::time::timeout(left, seen_rx.recv()).await else {
            panic!("the subscriber saw {} dones of {}", dones.len(), jobs.len());
        };
        match (seen.kind.as_str(), seen.status.as_deref()) {
            ("done", _) => *dones.entry(seen.job_id).or_default() += 1,
            ("status", Some("running")) => *runs.entry(seen.job_id).or_default() += 1,
            _ => {}
        }
    }
    // Anything late would be a second `done`.
    tokio::time::sleep(Duration::from_millis(500)).await;
    while let Ok(seen) = seen_rx.try_recv() {
        assert_ne!(seen.kind, "done", "a second done for {}", seen.job_id);
    }
    let ids: HashSet<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
    assert!(dones.keys().all(|id| ids.contains(id.as_str())));
    assert!(dones.values().all(|n| *n == 1), "every done once");
    assert!(runs.values().all(|n| *n == 1), "no job ran twice");
    eprintln!(
        "{} jobs stored, {} accepted ({} by the killed server, {} of them interrupted), {} \
         dones seen once each",
        jobs.len(),
        accepted.len(),
        on_first.len(),
        interrupted,
        dones.len()
    );
    subscriber.abort();
    assert!(restarted.lock().unwrap().is_some(), "restarted");
    drop(second);
}
