//! A custom transport is a closure: wrap the real one, count every request, and every
//! SDK feature (waiting on events, paging, errors) still works through it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::TryStreamExt;
use jobwire::transport::{AsyncTransport, HyperTransport};
use jobwire_blocking::transport::{Transport, UreqTransport};
use jobwire_core::Error;
use jobwire_server::{spawn, ServerConfig};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread")]
async fn async_closure_transport_sees_every_request() {
    let server = spawn(ServerConfig::new()).await.unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let paths = Arc::new(std::sync::Mutex::new(Vec::new()));
    let inner = HyperTransport::new().unwrap();
    let (c, p) = (count.clone(), paths.clone());
    let counting = move |req: http::Request<Bytes>| {
        c.fetch_add(1, Ordering::SeqCst);
        p.lock()
            .unwrap()
            .push(format!("{} {}", req.method(), req.uri().path()));
        // The wrapped transport goes into the future (a clone shares its pool).
        let inner = inner.clone();
        async move { inner.send(req).await }
    };
    let client = jobwire::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .transport(counting)
        .build()
        .unwrap();

    let out: Value = client.run("echo", &json!({"n": 1})).await.unwrap();
    assert_eq!(out, json!({"n": 1}));
    // run = one submit that waited on the server: one request in all.
    assert_eq!(count.load(Ordering::SeqCst), 1);

    let mut job = client
        .submit("sleep", &json!({"duration_seconds": 0.3}))
        .await
        .unwrap();
    job.wait().await.unwrap();
    let services: Vec<jobwire::Service> = client
        .services()
        .limit(2)
        .items()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(services.len(), 5);
    assert!(matches!(
        client.get_job("job_missing").await,
        Err(Error::NotFound { .. })
    ));

    let paths = paths.lock().unwrap().clone();
    assert_eq!(count.load(Ordering::SeqCst), paths.len());
    // submit + the event stream the wait follows + 3 pages + the 404: the wait needs
    // no long-poll, and the stream goes through the custom transport like the rest.
    assert_eq!(
        paths.iter().filter(|p| *p == "GET /v1/events").count(),
        1,
        "{paths:?}"
    );
    assert_eq!(
        paths
            .iter()
            .filter(|p| p.starts_with("GET /v1/jobs/job_"))
            .count(),
        1,
        "{paths:?}"
    );
    assert_eq!(
        paths.iter().filter(|p| *p == "GET /v1/services").count(),
        3,
        "{paths:?}"
    );
    server.shutdown().await;
}

#[test]
fn blocking_closure_transport_sees_every_request() {
    let server = jobwire_server::spawn_blocking_server(ServerConfig::new()).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let inner = UreqTransport::new();
    let c = count.clone();
    let counting = move |req: http::Request<Bytes>| {
        c.fetch_add(1, Ordering::SeqCst);
        inner.send(req)
    };
    let client = jobwire_blocking::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .transport(counting)
        .build()
        .unwrap();
    let out: Value = client.run("echo", &json!({"n": 2})).unwrap();
    assert_eq!(out, json!({"n": 2}));
    assert_eq!(count.load(Ordering::SeqCst), 1);
    let all: Vec<jobwire_blocking::Service> = client
        .services()
        .limit(2)
        .items()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(count.load(Ordering::SeqCst), 4);
    server.shutdown();
}
