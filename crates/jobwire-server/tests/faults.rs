//! Fault injection over real sockets: each fault does what it says, only where its rule
//! points, and a seed fixes which requests it hits.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Client;
use http_body_util::{BodyExt, Full};
use jobwire_server::{spawn, Fault, Faults, ServerConfig, ServerHandle};
use serde_json::json;

/// What one request over a fresh HTTP/1.1 connection produced.
#[derive(Debug)]
struct Outcome {
    /// The status, when a head arrived.
    status: Option<u16>,
    /// When the head arrived.
    head_after: Duration,
    /// The body's bytes, until it ended or broke.
    body: Vec<u8>,
    /// Whether the body broke instead of ending.
    broken: bool,
    /// When the body ended or broke.
    body_after: Duration,
}

async fn request(
    addr: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Outcome {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tcp))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or("").to_owned())))
        .unwrap();
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(10), sender.send_request(request))
        .await
        .expect("an answer or an error within 10 s");
    let head_after = started.elapsed();
    let Ok(answer) = answer else {
        return Outcome {
            status: None,
            head_after,
            body: Vec::new(),
            broken: true,
            body_after: head_after,
        };
    };
    let status = Some(answer.status().as_u16());
    let mut body = answer.into_body();
    let mut bytes = Vec::new();
    let mut broken = false;
    while let Some(frame) = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("a frame within 10 s")
    {
        match frame {
            Ok(frame) => bytes.extend_from_slice(frame.data_ref().map_or(&[][..], |d| &d[..])),
            Err(_) => {
                broken = true;
                break;
            }
        }
    }
    Outcome {
        status,
        head_after,
        body: bytes,
        broken,
        body_after: started.elapsed(),
    }
}

async fn start(faults: Faults) -> ServerHandle {
    spawn(ServerConfig::new().faults(faults)).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turned_away_requests_carry_retry_after_and_problems() {
    let faults = Faults::new(1)
        .rule(
            Fault::Unavailable {
                retry_after: Duration::from_secs(2),
            },
            1.0,
            Some("GET"),
            "/v1/health",
        )
        .rule(
            Fault::RateLimited {
                retry_after: Duration::from_millis(300),
            },
            1.0,
            None,
            "/v1/services",
        );
    let server = start(faults).await;
    let client = Client::new(server.addr(), server.token());
    let resp = client.get("/v1/health").await;
    assert_eq!(resp.status, 503);
    assert_eq!(resp.header("retry-after"), Some("2"));
    assert_eq!(resp.problem().code, "unavailable");
    let resp = client.get("/v1/services").await;
    assert_eq!(resp.status, 429);
    assert_eq!(
        resp.header("retry-after"),
        Some("1"),
        "whole seconds, rounded up"
    );
    assert_eq!(resp.problem().code, "rate_limited");
    // Elsewhere nothing happens.
    assert_eq!(client.get("/v1/services/echo").await.status, 200);
    assert_eq!(client.get("/v1/jobs").await.status, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_answer_still_committed_the_job() {
    let faults = Faults::new(1)
        .with_spec("drop-answer:1:POST:/v1/services/*/jobs")
        .unwrap();
    let server = start(faults).await;
    let out = request(
        server.addr(),
        server.token(),
        "POST",
        "/v1/services/echo/jobs",
        Some(r#"{"input": 1}"#),
    )
    .await;
    assert!(out.broken, "the answer never arrived whole: {out:?}");
    let client = Client::new(server.addr(), server.token());
    let jobs = client.get("/v1/jobs").await.json();
    assert_eq!(
        jobs["items"].as_array().unwrap().len(),
        1,
        "but the job exists"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalls_hold_the_head_or_the_body() {
    let faults = Faults::new(1)
        .rule(
            Fault::StallHead(Duration::from_millis(400)),
            1.0,
            Some("GET"),
            "/v1/health",
        )
        .rule(
            Fault::StallBody(Duration::from_millis(400)),
            1.0,
            Some("GET"),
            "/v1/services",
        );
    let server = start(faults).await;
    let head = request(server.addr(), server.token(), "GET", "/v1/health", None).await;
    assert!(head.head_after >= Duration::from_millis(400), "{head:?}");
    assert_eq!(head.status, Some(200));
    let body = request(server.addr(), server.token(), "GET", "/v1/services", None).await;
    assert!(
        body.head_after < Duration::from_millis(300),
        "the head came at once: {body:?}"
    );
    assert!(
        body.body_after >= Duration::from_millis(400),
        "the body waited: {body:?}"
    );
    assert!(!body.broken);
    let page: serde_json::Value = serde_json::from_slice(&body.body).unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_event_stream_breaks_after_its_bytes() {
    let faults = Faults::new(1)
        .with_spec("cut-body=40:1:GET:/v1/jobs/*/events")
        .unwrap();
    let server = start(faults).await;
    let client = Client::new(server.addr(), server.token());
    let job = client.submit("echo", json!(1), Some(5)).await.job();
    let out = request(
        server.addr(),
        server.token(),
        "GET",
        &format!("/v1/jobs/{}/events", job.id),
        None,
    )
    .await;
    assert_eq!(out.status, Some(200));
    assert!(out.broken, "{out:?}");
    assert!(out.body.len() <= 40, "{} bytes", out.body.len());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seed_fixes_which_requests_are_hit() {
    let spec = "unavailable=1:0.5:GET:/v1/health";
    let statuses = |seed: u64| async move {
        let server = start(Faults::new(seed).with_spec(spec).unwrap()).await;
        let client = Client::new(server.addr(), server.token());
        let mut seen = Vec::new();
        for _ in 0..40 {
            seen.push(client.get("/v1/health").await.status);
        }
        server.shutdown().await;
        seen
    };
    let first = statuses(5).await;
    assert_eq!(first, statuses(5).await);
    assert_ne!(first, statuses(6).await);
    let turned_away = first.iter().filter(|s| **s == 503).count();
    assert!((8..=32).contains(&turned_away), "{turned_away} of 40");
}
