//! What the SDK tells `tracing`, through both facades over real sockets: a `jobwire.call`
//! span per call with an event per attempt (attempt, status, request id, and the reason
//! and pause of a retry) — and never the token, in spans, events or `Debug` output. With
//! `.traceparent(true)` each request carries a W3C `traceparent`: one trace per call,
//! shared by its retries, a fresh parent id per attempt.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use jobwire_blocking::transport::{Body, Transport, UreqTransport};
use jobwire_core::TransportError;
use jobwire_server::{spawn_blocking_server, BlockingServerHandle, Fault, Faults, ServerConfig};
use serde_json::{json, Value};

const TOKEN: &str = "sekret-token-that-must-never-show";

/// A request's path and its `traceparent`, as the transport saw them.
type Seen = (String, Option<String>);

/// Everything every test of this binary logged, at every level.
fn logged() -> &'static Mutex<Vec<u8>> {
    static LOG: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOG.get_or_init(|| {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
        log
    })
}

struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn log_text() -> String {
    String::from_utf8_lossy(&logged().lock().unwrap()).into_owned()
}

/// A server whose job reads fail with 503 now and then (seeded), so some calls retry.
fn server() -> BlockingServerHandle {
    let faults = Faults::new(3).rule(
        Fault::Unavailable {
            retry_after: Duration::ZERO,
        },
        0.5,
        Some("GET"),
        "/v1/jobs/*",
    );
    spawn_blocking_server(ServerConfig::new().token(TOKEN, "t").faults(faults)).unwrap()
}

#[test]
fn calls_and_attempts_are_traced_without_the_token() {
    logged();
    let server = server();
    let blocking = jobwire_blocking::Client::builder()
        .base_url(server.url())
        .token(TOKEN)
        .build()
        .unwrap();
    let job = blocking.submit("echo", &json!({"x": 1})).unwrap();
    for _ in 0..6 {
        blocking.get_job(job.id()).unwrap();
    }
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (url, id) = (server.url(), job.id().to_owned());
    let from_async = runtime.block_on(async move {
        let client = jobwire::Client::builder()
            .base_url(url)
            .token(TOKEN)
            .build()
            .unwrap();
        for _ in 0..6 {
            client.get_job(&id).await.unwrap();
        }
        let _ = client.service("missing").await;
        format!("{client:?}")
    });
    drop(runtime);

    let log = log_text();
    assert!(log.contains("jobwire.call"), "{log}");
    assert!(log.contains("method=GET"), "{log}");
    assert!(
        log.contains(&format!("path=\"/v1/jobs/{}\"", job.id())),
        "{log}"
    );
    assert!(log.contains(&format!("job=\"{}\"", job.id())), "{log}");
    assert!(log.contains("service=\"echo\""), "{log}");
    assert!(
        log.contains("jobwire.attempt{attempt=1 status=200 request_id=\"req_"),
        "{log}"
    );
    assert!(log.contains("status=404"), "the miss: {log}");
    assert!(log.contains("retrying reason=503"), "a retried 503: {log}");
    assert!(log.contains("jobwire.attempt{attempt=2"), "{log}");
    assert!(!log.contains(TOKEN), "the token leaked into the log");
    for debug in [format!("{blocking:?}"), from_async, format!("{job:?}")] {
        assert!(
            !debug.contains(TOKEN),
            "the token leaked into Debug: {debug}"
        );
        assert!(
            debug.contains("redacted") || !debug.contains("token"),
            "{debug}"
        );
    }
    server.shutdown();
}

#[test]
fn traceparent_is_sent_when_asked_one_trace_per_call() {
    logged();
    let server = server();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let client = |traceparent: bool| {
        let (seen, inner) = (seen.clone(), UreqTransport::new());
        let transport =
            move |req: http::Request<Bytes>| -> Result<http::Response<Body>, TransportError> {
                let header = req
                    .headers()
                    .get("traceparent")
                    .map(|v| v.to_str().unwrap().to_owned());
                seen.lock()
                    .unwrap()
                    .push((req.uri().path().to_owned(), header));
                inner.send(req)
            };
        jobwire_blocking::Client::builder()
            .base_url(server.url())
            .token(TOKEN)
            .traceparent(traceparent)
            .transport(transport)
            .build()
            .unwrap()
    };
    let plain = client(false);
    let job = plain.submit("echo", &json!(1)).unwrap();
    assert!(seen.lock().unwrap().iter().all(|(_, h)| h.is_none()));
    seen.lock().unwrap().clear();

    let traced = client(true);
    for _ in 0..8 {
        traced.get_job(job.id()).unwrap();
    }
    let out: Value = traced.run("echo", &json!({"y": 2})).unwrap();
    assert_eq!(out, json!({"y": 2}));
    let recorded = seen.lock().unwrap();
    let parse = |h: &str| -> (String, String) {
        let parts: Vec<&str> = h.split('-').collect();
        assert_eq!(parts.len(), 4, "{h}");
        assert_eq!((parts[0], parts[3]), ("00", "01"), "{h}");
        assert!(parts[1].len() == 32 && parts[1].bytes().all(|b| b.is_ascii_hexdigit()));
        assert!(parts[2].len() == 16 && parts[2].bytes().all(|b| b.is_ascii_hexdigit()));
        (parts[1].to_owned(), parts[2].to_owned())
    };
    let headers: Vec<(String, String)> = recorded
        .iter()
        .map(|(_, h)| parse(h.as_deref().expect("every request carries one")))
        .collect();
    // Eight calls (some retried by the faults), then the run's submit.
    assert!(
        headers.len() > 9,
        "some GETs were retried: {}",
        headers.len()
    );
    let mut traces: Vec<&String> = headers.iter().map(|(t, _)| t).collect();
    traces.dedup();
    assert_eq!(traces.len(), 9, "one trace per call, its retries included");
    let mut parents: Vec<&String> = headers.iter().map(|(_, p)| p).collect();
    parents.sort();
    parents.dedup();
    assert_eq!(parents.len(), headers.len(), "a parent id per attempt");
    drop(recorded);

    // Calls on behalf of a traced request carry its trace, with parent ids of their own.
    seen.lock().unwrap().clear();
    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let inside = plain.in_trace(incoming).unwrap();
    inside.get_job(job.id()).unwrap();
    for (_, header) in seen.lock().unwrap().iter() {
        let (trace, parent) = parse(header.as_deref().unwrap());
        assert_eq!(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(parent, "00f067aa0ba902b7");
    }
    assert!(plain.in_trace("00-bogus").is_err());
    server.shutdown();
}
