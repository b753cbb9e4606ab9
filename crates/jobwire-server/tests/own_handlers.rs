//! Services the embedding program brings (`ServiceSpec`), over real sockets: listed and
//! run like the built-ins, their schemas enforced, their reports recorded as events, and
//! a cancel that really stops them — an async handler's future is dropped, a blocking
//! handler sees its flag.

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Client;
use jobwire_core::JobStatus;
use jobwire_server::{spawn, ServerConfig, ServerError, ServerHandle, ServiceSpec};
use serde_json::{json, Value};

/// What the handlers let the test see from outside.
#[derive(Default)]
struct Probes {
    /// Ticks the async handler made.
    ticks: AtomicUsize,
    /// The blocking handler is spinning.
    spinning: AtomicBool,
    /// The blocking handler returned after seeing its job cancelled.
    saw_cancel: AtomicBool,
}

async fn start(probes: &Arc<Probes>) -> (ServerHandle, Client) {
    let ticks = probes.clone();
    let ticker = ServiceSpec::async_fn("ticker", move |input, ctx| {
        let probes = ticks.clone();
        async move {
            let n = input["n"].as_u64().unwrap_or(1);
            for i in 1..=n {
                probes.ticks.fetch_add(1, Ordering::SeqCst);
                ctx.progress(i as f64 / n as f64, format!("tick {i}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Ok(json!({ "ticks": n, "job": ctx.job_id() }))
        }
    })
    .description("ticks n times")
    .input_schema(json!({
        "type": "object",
        "properties": {"n": {"type": "integer", "minimum": 1}},
        "required": ["n"]
    }));
    let spins = probes.clone();
    let spinner = ServiceSpec::blocking_fn("spinner", move |_input, ctx| {
        spins.spinning.store(true, Ordering::SeqCst);
        while !ctx.is_cancelled() {
            std::thread::sleep(Duration::from_millis(1));
        }
        spins.saw_cancel.store(true, Ordering::SeqCst);
        Ok(Value::Null)
    });
    let config = ServerConfig::new().service(ticker).service(spinner);
    let server = spawn(config).await.expect("the server starts");
    let client = Client::new(server.addr(), server.token());
    (server, client)
}

async fn until(what: &str, condition: impl Fn() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < Duration::from_secs(10), "never: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_services_are_listed_checked_and_run() {
    let probes = Arc::default();
    let (server, client) = start(&probes).await;
    let listed = client.get("/v1/services?name=ticker").await.json();
    assert_eq!(listed["items"][0]["kind"], "embedded");
    assert_eq!(listed["items"][0]["description"], "ticks n times");

    let refused = client.submit("ticker", json!({"n": 0}), None).await;
    assert_eq!(refused.status, 422);
    assert_eq!(refused.problem().errors[0].pointer, "/n");

    let done = client.submit("ticker", json!({"n": 3}), Some(10)).await;
    assert_eq!(done.status, 200);
    let job = done.job();
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!(job.output.as_ref().unwrap()["job"], job.id.as_str());
    let history = client.get(&format!("/v1/jobs/{}/events", job.id)).await;
    let text = String::from_utf8(history.body).unwrap();
    assert_eq!(text.matches("event: progress").count(), 3);
    assert!(text.contains(r#""message":"tick 3""#));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_an_async_handler_and_a_blocking_one() {
    let probes: Arc<Probes> = Arc::default();
    let (server, client) = start(&probes).await;

    // Async: its future is dropped, so it ticks no more.
    let id = client
        .submit("ticker", json!({"n": 100_000}), None)
        .await
        .job()
        .id;
    until("ticking", || probes.ticks.load(Ordering::SeqCst) >= 3).await;
    let cancelled = client
        .post(&format!("/v1/jobs/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(cancelled.job().status, JobStatus::Cancelled);
    let at_cancel = probes.ticks.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = probes.ticks.load(Ordering::SeqCst);
    assert!(after <= at_cancel + 1, "{at_cancel} ticks, then {after}");

    // Blocking: it sees its flag and returns.
    let id = client.submit("spinner", json!(null), None).await.job().id;
    until("spinning", || probes.spinning.load(Ordering::SeqCst)).await;
    let cancelled = client
        .post(&format!("/v1/jobs/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(cancelled.job().status, JobStatus::Cancelled);
    until("the blocking handler returned", || {
        probes.saw_cancel.load(Ordering::SeqCst)
    })
    .await;
    server.shutdown().await;
}

#[tokio::test]
async fn unservable_specs_are_refused_at_start() {
    let noop = |name: &str| ServiceSpec::async_fn(name, |input, _ctx| async move { Ok(input) });
    for (config, why) in [
        (ServerConfig::new().service(noop("echo")), "named"),
        (
            ServerConfig::new()
                .service(noop("twice"))
                .service(noop("twice")),
            "named",
        ),
        (ServerConfig::new().service(noop("Bad Name")), "must be"),
        (
            ServerConfig::new().service(noop("s").input_schema(json!(3))),
            "JSON Schema",
        ),
    ] {
        match spawn(config).await {
            Err(ServerError::Config(message)) => assert!(message.contains(why), "{message}"),
            other => panic!("{:?}", other.map(|s| s.url())),
        }
    }
}

/// The input of the `resize` test service: a schema derived from it checks nested
/// fields too.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[allow(dead_code)]
struct Resize {
    url: String,
    size: Size,
    quality: Option<u8>,
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[allow(dead_code)]
struct Size {
    width: u32,
    height: u32,
}

#[tokio::test]
async fn schemas_derived_from_rust_types_check_nested_fields() {
    let resize = ServiceSpec::async_fn("resize", |input, _ctx| async move {
        let resize: Resize = serde_json::from_value(input)
            .map_err(|e| jobwire_core::JobError::new(e.to_string()))?;
        Ok(json!({ "pixels": resize.size.width * resize.size.height }))
    })
    .input_schema_for::<Resize>();
    let server = spawn(ServerConfig::new().service(resize)).await.unwrap();
    let client = Client::new(server.addr(), server.token());

    let ok = json!({"url": "u", "size": {"width": 2, "height": 3}, "quality": null});
    let done = client.submit("resize", ok, Some(5)).await;
    assert_eq!(done.status, 200);
    assert_eq!(done.job().output, Some(json!({"pixels": 6})));

    let bad = json!({"url": 1, "size": {"width": -2}});
    let refused = client.submit("resize", bad, None).await;
    assert_eq!(refused.status, 422);
    let mut pointers: Vec<String> = refused
        .problem()
        .errors
        .into_iter()
        .map(|e| e.pointer)
        .collect();
    pointers.sort();
    assert_eq!(
        pointers,
        ["/size/height", "/size/width", "/url"],
        "each failing field, nested ones too"
    );
    server.shutdown().await;
}

/// Programs as services: the stdin/stdout/stderr protocol, exit statuses, timeouts, and
/// a cancel that stops the process.
#[cfg(unix)]
#[path = "support/process.rs"]
mod process;

#[cfg(unix)]
mod commands {
    use super::process::alive;
    use super::*;
    use jobwire_server::Command;

    fn sh(script: &str) -> Command {
        Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .env("PATH", "/usr/bin:/bin")
            .timeout(Duration::from_secs(10))
            .grace(Duration::from_millis(300))
    }

    fn error_of(resp: &common::Resp) -> (String, String) {
        let job = resp.job();
        assert_eq!(job.status, JobStatus::Failed, "{job:?}");
        let error = job.error.unwrap();
        (error.code.unwrap_or_default(), error.message)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn programs_run_as_jobs_by_the_documented_protocol() {
        let services = [
            ServiceSpec::command("copy", sh("cat")),
            ServiceSpec::command(
                "chatty",
                sh("echo '@progress 0.5 half way'; echo 'working hard' >&2; cat"),
            ),
            ServiceSpec::command("broken", sh("echo 'oops: no input' >&2; exit 3")),
            ServiceSpec::command("garbled", sh("echo 'not json'")),
            ServiceSpec::command("stuck", sh("sleep 30").timeout(Duration::from_millis(300))),
            ServiceSpec::command("missing", Command::new("/nonexistent/program")),
            ServiceSpec::command("flood", sh("head -c 17000000 /dev/zero")),
        ];
        let config = services
            .into_iter()
            .fold(ServerConfig::new(), |config, spec| config.service(spec));
        let server = spawn(config).await.unwrap();
        let client = Client::new(server.addr(), server.token());

        let copied = client.submit("copy", json!({"a": [1, 2]}), Some(10)).await;
        assert_eq!(copied.job().output, Some(json!({"a": [1, 2]})));

        let chatty = client.submit("chatty", json!("in"), Some(10)).await.job();
        assert_eq!(
            chatty.output,
            Some(json!("in")),
            "progress lines are not output"
        );
        let history = client.get(&format!("/v1/jobs/{}/events", chatty.id)).await;
        let text = String::from_utf8(history.body).unwrap();
        assert!(text.contains(r#""fraction":0.5"#), "{text}");
        assert!(text.contains(r#""message":"half way""#), "{text}");
        assert!(text.contains(r#""line":"working hard""#), "{text}");

        let (code, message) = error_of(&client.submit("broken", json!(1), Some(10)).await);
        assert_eq!(code, "exit_status");
        assert!(
            message.contains("exited with 3") && message.contains("oops"),
            "{message}"
        );
        let (code, _) = error_of(&client.submit("garbled", json!(1), Some(10)).await);
        assert_eq!(code, "bad_output");
        let started = Instant::now();
        let (code, _) = error_of(&client.submit("stuck", json!(1), Some(10)).await);
        assert_eq!(code, "timeout");
        assert!(started.elapsed() < Duration::from_secs(5));
        let (code, message) = error_of(&client.submit("missing", json!(1), Some(10)).await);
        assert_eq!(code, "spawn", "{message}");
        // Too much output is refused as such, not left blocked on a full pipe.
        let (code, message) = error_of(&client.submit("flood", json!(1), Some(10)).await);
        assert_eq!(code, "bad_output", "{message}");
        server.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancel_stops_the_program_and_its_children() {
        // The shell says its pid, starts a child, and waits.
        let config = ServerConfig::new().service(ServiceSpec::command(
            "waiter",
            sh("echo $$ >&2; sleep 30 & echo $! >&2; wait"),
        ));
        let server = spawn(config).await.unwrap();
        let client = Client::new(server.addr(), server.token());
        let id = client.submit("waiter", json!(null), None).await.job().id;
        // Its log lines, as they come.
        let path = format!("/v1/jobs/{id}/events");
        let mut stream =
            common::sse::open_on(server.addr(), server.token(), &path, None, None).await;
        let mut pids = Vec::new();
        while pids.len() < 2 {
            let event = stream.next().await.expect("the stream stays open");
            if event.event == "log" {
                let line = common::sse::data(&event)["line"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                pids.push(line.trim().parse::<u32>().expect("a pid"));
            }
        }
        for pid in &pids {
            assert!(alive(*pid), "{pid} runs");
        }
        let cancelled = client
            .post(&format!("/v1/jobs/{id}/cancel"), &json!({}))
            .await;
        assert_eq!(cancelled.job().status, JobStatus::Cancelled);
        let started = Instant::now();
        while pids.iter().any(|pid| alive(*pid)) {
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "still running: {pids:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.shutdown().await;
    }
}

/// A schema's whole JSON Schema 2020-12 is enforced: the keywords a subset validator
/// once accepted and ignored (`pattern`, `oneOf`, `$ref`, `format`, `const`) refuse a
/// wrong input with a 422 whose pointers name each failing field.
#[tokio::test]
async fn every_keyword_of_an_input_schema_is_enforced() {
    let strict = ServiceSpec::async_fn("strict", |input, _ctx| async move { Ok(input) })
        .input_schema(json!({
            "type": "object",
            "$defs": {"positive": {"type": "number", "exclusiveMinimum": 0}},
            "properties": {
                "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"},
                "size": {"oneOf": [{"const": "small"}, {"type": "integer"}]},
                "price": {"$ref": "#/$defs/positive"},
                "email": {"type": "string", "format": "email"},
                "version": {"const": 2}
            },
            "required": ["sku"]
        }));
    let server = spawn(ServerConfig::new().service(strict)).await.unwrap();
    let client = Client::new(server.addr(), server.token());
    let good =
        json!({"sku": "ABC-12", "size": "small", "price": 1.5, "email": "a@b.io", "version": 2});
    let resp = client.submit("strict", good.clone(), Some(5)).await;
    assert_eq!(resp.status, 200, "{:?}", resp.body);
    assert_eq!(resp.json()["output"], good);

    let bad = json!({"sku": "abc", "size": "huge", "price": 0, "email": "nobody", "version": 3});
    let resp = client.submit("strict", bad, None).await;
    assert_eq!(resp.status, 422);
    let p = resp.problem();
    assert_eq!(p.code, "validation_failed");
    let mut pointers: Vec<&str> = p.errors.iter().map(|e| e.pointer.as_str()).collect();
    pointers.sort();
    assert_eq!(
        pointers,
        ["/email", "/price", "/size", "/sku", "/version"],
        "{p:?}"
    );
    server.shutdown().await;
}
