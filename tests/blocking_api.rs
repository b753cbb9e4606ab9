//! The blocking facade, with no async runtime anywhere, against a real reference server over real sockets.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use jobwire_blocking::{Client, Error, JobStatus, SubmitOptions};
use jobwire_server::{spawn_blocking_server, BlockingServerHandle, ServerConfig};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

#[derive(Serialize)]
struct Sleep {
    duration_seconds: f64,
}

#[derive(Deserialize, Debug, PartialEq)]
struct Slept {
    slept: f64,
}

fn server_and_client() -> (BlockingServerHandle, Client) {
    let server = spawn_blocking_server(ServerConfig::new()).unwrap();
    let client = Client::builder()
        .base_url(server.url())
        .token(server.token())
        .build()
        .unwrap();
    (server, client)
}

#[test]
fn lookup_by_id_and_name_and_schema() {
    let (server, client) = server_and_client();
    assert_eq!(client.health().unwrap().status, "ok");
    let by_name = client.service("sleep").unwrap();
    assert_eq!(by_name.name(), "sleep");
    assert!(by_name.id().starts_with("svc_"));
    let by_id = client.service(by_name.id()).unwrap();
    assert_eq!(by_id.info(), by_name.info());
    assert_eq!(
        by_name.input_schema()["properties"]["duration_seconds"]["type"],
        "number"
    );
    server.shutdown();
}

#[test]
fn submit_and_result_typed_and_untyped() {
    let (server, client) = server_and_client();
    let sleep = client.service("sleep").unwrap();
    let mut job = sleep
        .submit(&Sleep {
            duration_seconds: 0.05,
        })
        .unwrap();
    assert!(job.id().starts_with("job_"));
    let typed: Slept = job.result().unwrap();
    assert_eq!(typed, Slept { slept: 0.05 });
    assert_eq!(job.status(), &JobStatus::Succeeded);

    let untyped: Value = client.run("echo", &json!({"a": [1, 2]})).unwrap();
    assert_eq!(untyped, json!({"a": [1, 2]}));
    let typed_run: Slept = sleep
        .run(&Sleep {
            duration_seconds: 0.0,
        })
        .unwrap();
    assert_eq!(typed_run.slept, 0.0);
    server.shutdown();
}

#[test]
fn submit_with_wait_finishes_in_the_first_answer() {
    let (server, client) = server_and_client();
    let job = client
        .submit_with(
            "echo",
            &json!({"x": 1}),
            SubmitOptions::default().wait(Duration::from_secs(5)),
        )
        .unwrap();
    // The 200 carried the finished job: no second request needed to know it.
    assert_eq!(job.status(), &JobStatus::Succeeded);
    assert_eq!(job.job().output, Some(json!({"x": 1})));
    server.shutdown();
}

#[test]
fn wait_on_a_sleep_job_and_refresh() {
    let (server, client) = server_and_client();
    let started = Instant::now();
    let mut job = client
        .submit(
            "sleep",
            &Sleep {
                duration_seconds: 0.5,
            },
        )
        .unwrap();
    assert!(!job.status().is_terminal());
    assert!(!job.is_finished().unwrap());
    let done = job.wait().unwrap();
    assert_eq!(done.status, JobStatus::Succeeded);
    let took = started.elapsed();
    // Long-poll wakes on completion, not after a poll interval.
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(job.is_finished().unwrap());
    assert_eq!(job.refresh().unwrap().status, JobStatus::Succeeded);

    // A deadline shorter than the job is a Timeout, and the job goes on.
    let mut slow = client
        .submit(
            "sleep",
            &Sleep {
                duration_seconds: 5.0,
            },
        )
        .unwrap();
    let err = slow.wait_for(Duration::from_millis(300)).unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err:?}");
    slow.cancel().unwrap();
    server.shutdown();
}

#[test]
fn cancel_is_seen_by_result() {
    let (server, client) = server_and_client();
    let mut job = client
        .submit(
            "sleep",
            &Sleep {
                duration_seconds: 30.0,
            },
        )
        .unwrap();
    assert_eq!(job.cancel().unwrap().status, JobStatus::Cancelled);
    // Idempotent.
    assert_eq!(job.cancel().unwrap().status, JobStatus::Cancelled);
    let err = job.result::<Value>().unwrap_err();
    assert!(
        matches!(err, Error::JobCancelled { ref job_id } if job_id == job.id()),
        "{err:?}"
    );
    server.shutdown();
}

#[test]
fn errors_match_by_variant() {
    let (server, client) = server_and_client();
    match client.service("no-such-service") {
        Err(Error::NotFound { problem }) => assert_eq!(problem.code, "not_found"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    assert!(matches!(
        client.get_job("job_nope"),
        Err(Error::NotFound { .. })
    ));
    match client.submit("sleep", &json!({"duration_seconds": "long"})) {
        Err(Error::Validation { problem }) => {
            assert_eq!(problem.status, 422);
            assert_eq!(problem.code, "validation_failed");
            assert!(problem
                .errors
                .iter()
                .any(|e| e.pointer == "/duration_seconds"));
        }
        other => panic!("expected Validation, got {other:?}"),
    }
    match client.run::<_, Value>("fail", &json!({"message": "boom"})) {
        Err(Error::JobFailed { error, .. }) => assert_eq!(error.message, "boom"),
        other => panic!("expected JobFailed, got {other:?}"),
    }
    // Bad arguments never reach the server.
    assert!(matches!(client.get_job(""), Err(Error::Invalid { .. })));
    server.shutdown();
}

#[test]
fn auth_failure_is_unauthorized() {
    let (server, _) = server_and_client();
    for client in [
        Client::builder().base_url(server.url()).build().unwrap(),
        Client::builder()
            .base_url(server.url())
            .token("wrong")
            .build()
            .unwrap(),
    ] {
        match client.service("echo") {
            Err(Error::Unauthorized { problem }) => assert_eq!(problem.status, 401),
            other => panic!("expected Unauthorized, got {other:?}"),
        }
    }
    server.shutdown();
}

#[test]
fn pagination_over_many_pages_skips_and_repeats_nothing() {
    let (server, client) = server_and_client();
    let mut submitted = HashSet::new();
    for i in 0..23 {
        let opts = SubmitOptions::default()
            .label("batch", "p1")
            .wait(Duration::from_secs(5));
        let job = client.submit_with("echo", &json!({"i": i}), opts).unwrap();
        submitted.insert(job.id().to_owned());
    }
    // Noise that the filter must leave out.
    client
        .run::<_, Value>("echo", &json!({"other": true}))
        .unwrap();

    let listed: Vec<jobwire_blocking::Job> = client
        .jobs()
        .label("batch", "p1")
        .limit(5)
        .items()
        .collect::<Result<_, _>>()
        .unwrap();
    let ids: Vec<&str> = listed.iter().map(|j| j.id.as_str()).collect();
    let unique: HashSet<String> = ids.iter().map(|s| s.to_string()).collect();
    assert_eq!(ids.len(), 23, "no item repeated");
    assert_eq!(unique, submitted, "no item skipped");
    // Newest first.
    assert_eq!(listed.first().unwrap().input, json!({"i": 22}));

    // One page, then the next from its cursor.
    let first = client.jobs().label("batch", "p1").limit(10).page().unwrap();
    assert_eq!(first.items.len(), 10);
    let cursor = first.next_cursor.clone().unwrap();
    let second = client
        .jobs()
        .label("batch", "p1")
        .limit(10)
        .cursor(cursor)
        .page()
        .unwrap();
    assert_eq!(second.items.len(), 10);
    assert!(second.items.iter().all(|j| !first.items.contains(j)));

    let services: Vec<jobwire_blocking::Service> = client
        .services()
        .limit(2)
        .items()
        .collect::<Result<_, _>>()
        .unwrap();
    let names: HashSet<String> = services.into_iter().map(|s| s.name).collect();
    for name in ["echo", "sleep", "fail", "steps", "digest"] {
        assert!(names.contains(name), "{name} missing from {names:?}");
    }

    let succeeded = client
        .jobs()
        .status(JobStatus::Succeeded)
        .service("echo")
        .limit(1000)
        .page()
        .unwrap();
    assert_eq!(succeeded.items.len(), 24);
    server.shutdown();
}
