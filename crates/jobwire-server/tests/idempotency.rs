//! `Idempotency-Key` on submit, over real sockets: a repeat gets the first job and its
//! status code, another body with the key is 422, a repeat while the first is answered is
//! 409, keys are per tenant, survive a restart and expire after their window.

mod common;

use std::time::Duration;

use common::{Client, Resp, TempDir};
use jobwire_server::{spawn, ServerConfig};
use serde_json::{json, Value};

async fn keyed(client: &Client, service: &str, body: Value, key: &str, wait: Option<u64>) -> Resp {
    let wait = wait.map(|w| format!("wait={w}"));
    let mut headers = vec![("Idempotency-Key", key)];
    if let Some(w) = wait.as_deref() {
        headers.push(("Prefer", w));
    }
    client
        .post_with(&format!("/v1/services/{service}/jobs"), &body, &headers)
        .await
}

fn total_jobs(list: &Value) -> usize {
    list["items"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeat_gets_the_first_job_and_its_status() {
    let server = spawn(ServerConfig::new()).await.unwrap();
    let client = Client::new(server.addr(), server.token());

    // Finished within the wait: 200, and 200 again on every repeat.
    let body = json!({"input": {"n": 1}, "labels": {"team": "a"}});
    let first = keyed(&client, "echo", body.clone(), "key-200", Some(5)).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("idempotent-replayed"), None);
    // The same request spelled differently is the same request.
    let respelled: Value =
        serde_json::from_str(r#"{"labels":{"team":"a"},"input":{"n":1}}"#).unwrap();
    for again in [body.clone(), respelled] {
        let repeat = keyed(&client, "echo", again, "key-200", Some(5)).await;
        assert_eq!(repeat.status, 200);
        assert_eq!(repeat.header("idempotent-replayed"), Some("true"));
        assert_eq!(repeat.job().id, first.job().id);
        assert_eq!(repeat.header("location"), first.header("location"));
    }

    // Accepted without a wait: 202 on repeats too, showing the job as it stands now.
    let slow = json!({"input": {"duration_seconds": 0.2}});
    let first = keyed(&client, "sleep", slow.clone(), "key-202", None).await;
    assert_eq!(first.status, 202);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let repeat = keyed(&client, "sleep", slow, "key-202", None).await;
    assert_eq!(repeat.status, 202);
    assert_eq!(repeat.job().id, first.job().id);
    assert_eq!(repeat.job().status, jobwire_core::JobStatus::Succeeded);

    // Two jobs in all, not four.
    assert_eq!(total_jobs(&client.get("/v1/jobs").await.json()), 2);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_body_is_422_and_a_repeat_in_flight_is_409() {
    let server = spawn(ServerConfig::new()).await.unwrap();
    let client = Client::new(server.addr(), server.token());
    keyed(&client, "echo", json!({"input": 1}), "k", Some(5)).await;
    for other in [
        json!({"input": 2}),
        json!({"input": 1, "labels": {"x": "y"}}),
    ] {
        let resp = keyed(&client, "echo", other, "k", Some(5)).await;
        assert_eq!(resp.status, 422);
        assert_eq!(resp.problem().code, "validation_failed");
    }
    // Another service with the key is another request too.
    let resp = keyed(
        &client,
        "fail",
        json!({"input": {"message": "m"}}),
        "k",
        None,
    )
    .await;
    assert_eq!(resp.status, 422);

    // The first request is still waiting for its job when the repeat comes.
    let held = tokio::spawn({
        let client = client.clone();
        async move {
            let body = json!({"input": {"duration_seconds": 0.5}});
            keyed(&client, "sleep", body, "busy", Some(5)).await
        }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let body = json!({"input": {"duration_seconds": 0.5}});
    let repeat = keyed(&client, "sleep", body.clone(), "busy", Some(5)).await;
    assert_eq!(repeat.status, 409);
    assert_eq!(repeat.problem().code, "conflict");
    let first = held.await.unwrap();
    assert_eq!(first.status, 200);
    // Once answered, the repeat is a replay.
    let after = keyed(&client, "sleep", body, "busy", Some(5)).await;
    assert_eq!(after.status, 200);
    assert_eq!(after.job().id, first.job().id);

    // A key too long is refused before anything happens.
    let long = "k".repeat(256);
    let resp = keyed(&client, "echo", json!({"input": 1}), &long, None).await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.problem().code, "bad_request");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_per_tenant_durable_and_expire() {
    let dir = TempDir::new("keys");
    let config = |window: Duration| {
        ServerConfig::new()
            .data_dir(dir.0.clone())
            .token("ta", "tenant-a")
            .token("tb", "tenant-b")
            .idempotency_window(window)
    };
    let server = spawn(config(Duration::from_secs(3600))).await.unwrap();
    let a = Client::new(server.addr(), "ta");
    let b = Client::new(server.addr(), "tb");
    let body = json!({"input": "same"});
    let from_a = keyed(&a, "echo", body.clone(), "shared", Some(5))
        .await
        .job();
    let from_b = keyed(&b, "echo", body.clone(), "shared", Some(5))
        .await
        .job();
    assert_ne!(from_a.id, from_b.id, "a tenant's keys are its own");
    server.shutdown().await;

    // After a restart the key still names the same job.
    let server = spawn(config(Duration::from_secs(3600))).await.unwrap();
    let a = Client::new(server.addr(), "ta");
    let repeat = keyed(&a, "echo", body.clone(), "shared", Some(5)).await;
    assert_eq!(repeat.status, 200);
    assert_eq!(repeat.job().id, from_a.id);
    server.shutdown().await;

    // With a short window the key is forgotten: the same request makes a new job.
    let server = spawn(config(Duration::from_millis(200))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    let a = Client::new(server.addr(), "ta");
    let fresh = keyed(&a, "echo", body, "shared", Some(5)).await;
    assert_eq!(fresh.status, 200);
    assert_ne!(fresh.job().id, from_a.id);
    server.shutdown().await;
}
