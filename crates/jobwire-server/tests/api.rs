//! The HTTP API of the server, over real sockets.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{Client, Resp, TempDir};
use jobwire_core::{Health, JobStatus, Page, Service};
use jobwire_server::{spawn, ServerConfig, ServerHandle};
use serde_json::{json, Value};

async fn start() -> (ServerHandle, Client) {
    server_with(ServerConfig::new()).await
}

async fn server_with(config: ServerConfig) -> (ServerHandle, Client) {
    let handle = spawn(config).await.expect("server starts");
    let client = Client::new(handle.addr(), handle.token());
    (handle, client)
}

fn location(resp: &Resp) -> String {
    resp.header("location").expect("Location header").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_needs_no_token_and_echoes_request_id() {
    let (server, _) = start().await;
    let anon = Client::anonymous(server.addr());
    let resp = anon.get("/v1/health").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let health: Health = serde_json::from_slice(&resp.body).unwrap();
    assert_eq!(health, Health::new("ok", env!("CARGO_PKG_VERSION")));
    assert!(resp
        .header("x-request-id")
        .is_some_and(|id| id.starts_with("req_")));

    let resp = anon
        .get_with("/v1/health", &[("X-Request-Id", "my-id-42")])
        .await;
    assert_eq!(resp.header("x-request-id"), Some("my-id-42"));

    let spec = anon.get("/v1/openapi.json").await;
    assert_eq!(spec.status, 200);
    assert_eq!(spec.json()["openapi"].as_str().map(|v| &v[..2]), Some("3."));
    assert!(server.url().starts_with("http://127.0.0.1:"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_or_wrong_token_is_401() {
    let (server, client) = start().await;
    let addr = server.addr();
    for (client, extra) in [
        (Client::anonymous(addr), vec![]),
        (Client::new(addr, "wrong-token"), vec![]),
        (
            Client::anonymous(addr),
            vec![("Authorization", "Basic Zm9vOmJhcg==")],
        ),
        (Client::anonymous(addr), vec![("Authorization", "Bearer")]),
    ] {
        for path in [
            "/v1/services",
            "/v1/jobs",
            "/v1/jobs/job_x",
            "/v1/services/echo",
        ] {
            let resp = client.get_with(path, &extra).await;
            assert_eq!(resp.status, 401, "{path} {extra:?}");
            assert_eq!(resp.header("www-authenticate"), Some("Bearer"));
            let p = resp.problem();
            assert_eq!(p.code, "unauthorized");
            assert_eq!(p.type_uri, "https://jobwire.dev/problems/unauthorized");
            assert!(!p.retryable);
        }
    }
    // The scheme is case-insensitive.
    let token = format!("bearer {}", server.token());
    let ok = Client::anonymous(addr)
        .get_with("/v1/services", &[("authorization", &token)])
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(client.get("/v1/services").await.status, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_by_id_and_name_and_paginated() {
    let (server, client) = start().await;
    let resp = client.get("/v1/services").await;
    assert_eq!(resp.status, 200);
    let page: Page<Service> = serde_json::from_slice(&resp.body).unwrap();
    let names: Vec<&str> = page.items.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["echo", "sleep", "fail", "steps", "digest"]);
    assert_eq!(page.next_cursor, None);
    assert!(resp.header("link").is_none());
    assert!(page
        .items
        .iter()
        .all(|s| s.kind == "builtin" && s.id.starts_with("svc_")));

    let sleep = client.get("/v1/services/sleep").await;
    assert_eq!(sleep.status, 200);
    let sleep: Service = serde_json::from_slice(&sleep.body).unwrap();
    assert_eq!(sleep.input_schema["required"], json!(["duration_seconds"]));
    let by_id = client.get(&format!("/v1/services/{}", sleep.id)).await;
    assert_eq!(
        serde_json::from_slice::<Service>(&by_id.body).unwrap(),
        sleep
    );

    let missing = client.get("/v1/services/nope").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.problem().code, "not_found");

    // Pages of two, following Link headers.
    let mut seen = Vec::new();
    let mut path = "/v1/services?limit=2".to_owned();
    loop {
        let resp = client.get(&path).await;
        assert_eq!(resp.status, 200, "{path}");
        let page: Page<Service> = serde_json::from_slice(&resp.body).unwrap();
        seen.extend(page.items.into_iter().map(|s| s.name));
        match (page.next_cursor, resp.header("link")) {
            (Some(cursor), Some(link)) => {
                assert!(link.ends_with("; rel=\"next\""), "{link}");
                assert!(link.contains(&format!("cursor={cursor}")), "{link}");
                let target = link.trim_start_matches('<').split('>').next().unwrap();
                assert!(target.contains("limit=2"));
                path = target.to_owned();
            }
            (None, None) => break,
            other => panic!("cursor and Link disagree: {other:?}"),
        }
    }
    assert_eq!(seen, ["echo", "sleep", "fail", "steps", "digest"]);

    let named = client.get("/v1/services?name=digest").await.json();
    assert_eq!(named["items"].as_array().unwrap().len(), 1);
    for bad in [
        "/v1/services?limit=0",
        "/v1/services?limit=1001",
        "/v1/services?limit=x",
        "/v1/services?cursor=garbage",
        "/v1/services?cursor=j1.0000000000000001",
    ] {
        let resp = client.get(bad).await;
        assert_eq!(resp.status, 400, "{bad}");
        assert_eq!(resp.problem().code, "bad_request");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_with_wait_answers_200_finished() {
    let (server, client) = start().await;
    let input = json!({"hello": ["world", 1, null]});
    let resp = client.submit("echo", input.clone(), Some(5)).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("preference-applied"), Some("wait=5"));
    let job = resp.job();
    assert_eq!(location(&resp), format!("/v1/jobs/{}", job.id));
    assert_eq!(job.status, JobStatus::Succeeded);
    assert_eq!(job.output, Some(input.clone()));
    assert_eq!(job.input, input);
    assert_eq!(job.service, "echo");
    assert!(job.id.starts_with("job_"));
    assert!(job.started_at.is_some() && job.finished_at.is_some());
    assert!(job.created_at.ends_with('Z'));

    let again = client.get(&location(&resp)).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.job(), job);

    // Without a wait, even a job that finishes at once is answered 202.
    for _ in 0..20 {
        let quick = client.submit("echo", json!(1), None).await;
        assert_eq!(quick.status, 202);
        assert_eq!(quick.header("preference-applied"), None);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_job_is_202_then_long_poll_sees_it_finish() {
    let (server, client) = start().await;
    let resp = client
        .submit("sleep", json!({"duration_seconds": 2}), Some(0))
        .await;
    assert_eq!(resp.status, 202);
    assert_eq!(resp.header("preference-applied"), Some("wait=0"));
    let job = resp.job();
    assert!(!job.status.is_terminal());
    let loc = location(&resp);
    assert_eq!(loc, format!("/v1/jobs/{}", job.id));

    // Without Prefer: no waiting, no Preference-Applied.
    let now = client.get(&loc).await;
    assert_eq!(now.status, 200);
    assert!(now.header("preference-applied").is_none());

    let started = Instant::now();
    let done = client.get_with(&loc, &[("Prefer", "wait=10")]).await;
    assert_eq!(done.status, 200);
    assert_eq!(done.header("preference-applied"), Some("wait=10"));
    let done = done.job();
    // Running -> succeeded is a status change; or it was already done.
    if done.status != JobStatus::Succeeded {
        let done2 = client.get_with(&loc, &[("Prefer", "wait=10")]).await.job();
        assert_eq!(done2.status, JobStatus::Succeeded);
    }
    assert!(started.elapsed() < Duration::from_secs(8));
    let finished = client.get(&loc).await.job();
    assert_eq!(finished.output, Some(json!({"slept": 2})));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_ends_early_on_status_change_and_is_capped() {
    let (server, client) = server_with(ServerConfig::new().max_wait(Duration::from_secs(1))).await;
    let job = client
        .submit("sleep", json!({"duration_seconds": 30}), None)
        .await
        .job();
    let path = format!("/v1/jobs/{}", job.id);
    // Let it reach "running".
    let running = client.get_with(&path, &[("Prefer", "wait=1")]).await.job();
    assert_eq!(running.status, JobStatus::Running);

    // The cap: asked 30 s, got 1 s.
    let started = Instant::now();
    let capped = client.get_with(&path, &[("Prefer", "wait=30")]).await;
    assert_eq!(capped.header("preference-applied"), Some("wait=1"));
    assert_eq!(capped.job().status, JobStatus::Running);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    server.shutdown().await;

    // Without a cap, a status change ends the wait early.
    let (server, client) = start().await;
    let job = client
        .submit("sleep", json!({"duration_seconds": 30}), Some(0))
        .await
        .job();
    let path = format!("/v1/jobs/{}", job.id);
    let canceller = {
        let client = client.clone();
        let path = path.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            client.post(&format!("{path}/cancel"), &json!({})).await
        })
    };
    let started = Instant::now();
    let mut seen = client.get_with(&path, &[("Prefer", "wait=20")]).await.job();
    if seen.status == JobStatus::Running {
        // The wait began while the job was queued, so its first change was queued ->
        // running; the next wait sees the cancel.
        seen = client.get_with(&path, &[("Prefer", "wait=20")]).await.job();
    }
    assert_eq!(seen.status, JobStatus::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(canceller.await.unwrap().status, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_is_immediate_and_idempotent() {
    let (server, client) = start().await;
    let job = client
        .submit("sleep", json!({"duration_seconds": 60}), None)
        .await
        .job();
    let cancel_path = format!("/v1/jobs/{}/cancel", job.id);
    let first = client.post(&cancel_path, &json!({})).await;
    assert_eq!(first.status, 200);
    let first = first.job();
    assert_eq!(first.status, JobStatus::Cancelled);
    assert!(first.finished_at.is_some());
    let second = client.post(&cancel_path, &json!({})).await;
    assert_eq!(second.status, 200);
    assert_eq!(second.job(), first);
    assert_eq!(
        client.get(&format!("/v1/jobs/{}", job.id)).await.job(),
        first
    );

    // A finished job is returned unchanged.
    let done = client.submit("echo", json!(1), Some(5)).await.job();
    let resp = client
        .post(&format!("/v1/jobs/{}/cancel", done.id), &json!({}))
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.job(), done);

    let missing = client.post("/v1/jobs/job_nope/cancel", &json!({})).await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.problem().code, "not_found");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_submissions_are_problems() {
    let (server, client) = start().await;
    // Malformed JSON: 400 saying where.
    let resp = client
        .send(
            "POST",
            "/v1/services/echo/jobs",
            &[],
            Some(b"{\"input\": [1,}"),
        )
        .await;
    assert_eq!(resp.status, 400);
    let p = resp.problem();
    assert_eq!(p.code, "bad_request");
    assert!(
        p.detail.as_deref().unwrap().contains("line 1 column"),
        "{p:?}"
    );

    // Wrong types: 422 with pointers into the input.
    let resp = client
        .submit(
            "sleep",
            json!({"duration_seconds": "soon", "extra": 1}),
            None,
        )
        .await;
    assert_eq!(resp.status, 422);
    let p = resp.problem();
    assert_eq!(p.code, "validation_failed");
    let pointers: Vec<&str> = p.errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(pointers, ["/duration_seconds", "/extra"]);
    assert!(p.errors[0].message.contains("number"));

    let resp = client
        .submit("steps", json!({"steps": 0, "interval_ms": 1}), None)
        .await;
    assert_eq!(resp.status, 422);
    assert_eq!(resp.problem().errors[0].pointer, "/steps");

    // No input: 422.
    let resp = client
        .post("/v1/services/echo/jobs", &json!({"labels": {}}))
        .await;
    assert_eq!(resp.status, 422);
    assert_eq!(resp.problem().code, "validation_failed");

    // Unknown service: 404.
    let resp = client.submit("no-such-service", json!({}), None).await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.problem().code, "not_found");

    // Bad Prefer: 400, on submit and on GET.
    for prefer in ["wait=soon", "respond-async, wait=-1", "wait"] {
        let resp = client
            .post_with(
                "/v1/services/echo/jobs",
                &json!({"input": 1}),
                &[("Prefer", prefer)],
            )
            .await;
        assert_eq!(resp.status, 400, "{prefer}");
        assert_eq!(resp.problem().code, "bad_request");
        let resp = client
            .get_with("/v1/jobs/job_x", &[("Prefer", prefer)])
            .await;
        assert_eq!(resp.status, 400, "{prefer}");
    }
    // Other preferences are ignored; several in one header are fine.
    let resp = client
        .post_with(
            "/v1/services/echo/jobs",
            &json!({"input": 1}),
            &[("Prefer", "respond-async, handling=lenient, wait=5")],
        )
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("preference-applied"), Some("wait=5"));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_body_is_413_problem() {
    let (server, client) = server_with(ServerConfig::new().max_body_bytes(1024)).await;
    let big = json!({"input": "x".repeat(4096)});
    let resp = client.post("/v1/services/echo/jobs", &big).await;
    assert_eq!(resp.status, 413);
    assert_eq!(resp.problem().code, "payload_too_large");
    // Just under the limit is fine.
    let small = json!({"input": "x".repeat(900)});
    assert_eq!(
        client.post("/v1/services/echo/jobs", &small).await.status,
        202
    );
    server.shutdown().await;

    // The default limit, 1 MiB, with a body sent in chunks without Content-Length.
    let (server, client) = start().await;
    let resp = chunked_post(&client, "/v1/services/echo/jobs", 2 * 1024 * 1024).await;
    assert_eq!(resp.status, 413);
    assert_eq!(resp.problem().code, "payload_too_large");
    server.shutdown().await;
}

/// Sends a JSON string input of about `size` bytes with `Transfer-Encoding: chunked`.
async fn chunked_post(client: &Client, path: &str, size: usize) -> Resp {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(client.addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\nTransfer-Encoding: chunked\r\n\r\n",
        client.token.as_deref().unwrap()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let writer = async {
        let mut chunks = vec![b"{\"input\":\"".to_vec()];
        chunks.extend(std::iter::repeat(vec![b'x'; 64 * 1024]).take(size / (64 * 1024)));
        chunks.push(b"\"}".to_vec());
        for chunk in chunks {
            let framed = [
                format!("{:x}\r\n", chunk.len()).into_bytes(),
                chunk,
                b"\r\n".to_vec(),
            ]
            .concat();
            if stream.write_all(&framed).await.is_err() {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n").await;
        stream
    };
    let mut stream = writer.await;
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status: u16 = text.split(' ').nth(1).unwrap().parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body.split("\r\n").nth(1).unwrap_or("").as_bytes().to_vec()
    } else {
        body.as_bytes().to_vec()
    };
    Resp {
        status,
        headers,
        body,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_list_pages_newest_first_without_gaps_under_inserts() {
    let (server, client) = start().await;
    let mut submitted = Vec::new();
    for i in 0..25 {
        let job = client.submit("echo", json!({"i": i}), None).await.job();
        submitted.push(job.id);
    }
    // Keep inserting while paging.
    let inserter = {
        let client = client.clone();
        tokio::spawn(async move {
            let mut extra = Vec::new();
            for i in 0..20 {
                extra.push(
                    client
                        .submit("echo", json!({"extra": i}), None)
                        .await
                        .job()
                        .id,
                );
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            extra
        })
    };
    let mut seen = Vec::new();
    let mut path = "/v1/jobs?limit=4&service=echo".to_owned();
    let mut pages = 0;
    loop {
        let resp = client.get(&path).await;
        assert_eq!(resp.status, 200, "{path}");
        let page: Page<jobwire_core::Job> = serde_json::from_slice(&resp.body).unwrap();
        assert!(page.items.len() <= 4);
        seen.extend(page.items.into_iter().map(|j| j.id));
        pages += 1;
        tokio::time::sleep(Duration::from_millis(10)).await;
        match resp.header("link") {
            Some(link) => {
                path = link
                    .trim_start_matches('<')
                    .split('>')
                    .next()
                    .unwrap()
                    .to_owned();
            }
            None => break,
        }
    }
    let extra = inserter.await.unwrap();
    assert!(pages >= 7, "{pages} pages");
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no duplicates");
    // Every job that existed when paging started is there, newest first.
    let initial: Vec<&String> = seen.iter().filter(|id| submitted.contains(id)).collect();
    let expected: Vec<&String> = submitted.iter().rev().collect();
    assert_eq!(initial, expected);
    // Whatever else was seen is from the concurrent inserts.
    assert!(seen
        .iter()
        .all(|id| submitted.contains(id) || extra.contains(id)));

    let all = client.get("/v1/jobs?limit=1000").await.json();
    assert_eq!(all["items"].as_array().unwrap().len(), 45);
    assert_eq!(all["next_cursor"], Value::Null);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_list_filters() {
    let (server, client) = start().await;
    let labelled = client
        .post_with(
            "/v1/services/echo/jobs",
            &json!({"input": 1, "labels": {"env": "prod", "team": "a"}}),
            &[("Prefer", "wait=5")],
        )
        .await
        .job();
    client
        .submit("fail", json!({"message": "nope"}), Some(5))
        .await;
    let sleeping = client
        .submit("sleep", json!({"duration_seconds": 30}), None)
        .await
        .job();

    let ids = |v: Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(client.get("/v1/jobs").await.json()).len(), 3);
    assert_eq!(
        ids(client.get("/v1/jobs?label=env:prod").await.json()),
        std::slice::from_ref(&labelled.id)
    );
    assert_eq!(
        ids(client
            .get("/v1/jobs?label=env:prod&label=team:a")
            .await
            .json()),
        std::slice::from_ref(&labelled.id)
    );
    assert!(ids(client
        .get("/v1/jobs?label=env:prod&label=team:b")
        .await
        .json())
    .is_empty());
    assert_eq!(
        ids(client.get("/v1/jobs?service=echo").await.json()),
        std::slice::from_ref(&labelled.id)
    );
    assert_eq!(
        ids(client.get("/v1/jobs?service=svc_echo").await.json()),
        std::slice::from_ref(&labelled.id)
    );
    assert!(ids(client.get("/v1/jobs?service=unknown").await.json()).is_empty());
    assert_eq!(
        ids(client.get("/v1/jobs?status=failed").await.json()).len(),
        1
    );
    let running = client
        .get("/v1/jobs?status=running&status=ignored-second")
        .await
        .json();
    let queued = client.get("/v1/jobs?status=queued").await.json();
    assert_eq!(
        ids(running).len() + ids(queued).len(),
        1,
        "the sleeping job is queued or running"
    );
    assert_eq!(
        ids(client
            .get("/v1/jobs?status=succeeded&service=sleep")
            .await
            .json())
        .len(),
        0
    );
    for bad in [
        "/v1/jobs?status=paused",
        "/v1/jobs?label=novalue",
        "/v1/jobs?cursor=s1.0000000000000001",
        "/v1/jobs?limit=0",
    ] {
        let resp = client.get(bad).await;
        assert_eq!(resp.status, 400, "{bad}");
        assert_eq!(resp.problem().code, "bad_request");
    }
    client
        .post(&format!("/v1/jobs/{}/cancel", sleeping.id), &json!({}))
        .await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_in_services_do_their_work() {
    let (server, client) = start().await;
    let failed = client
        .submit("fail", json!({"message": "on purpose"}), Some(5))
        .await;
    assert_eq!(failed.status, 200);
    let failed = failed.job();
    assert_eq!(failed.status, JobStatus::Failed);
    let error = failed.error.unwrap();
    assert_eq!(error.message, "on purpose");
    assert_eq!(error.code.as_deref(), Some("fail"));
    assert_eq!(failed.output, None);

    let steps = client
        .submit("steps", json!({"steps": 4, "interval_ms": 10}), Some(10))
        .await
        .job();
    assert_eq!(steps.status, JobStatus::Succeeded);
    assert_eq!(
        steps.output,
        Some(json!({"steps": 4, "text": "Every step of this."}))
    );
    let progress = steps.progress.unwrap();
    assert_eq!(progress.fraction, 1.0);
    assert_eq!(progress.message, "step 4 of 4");

    let digest = client
        .submit("digest", json!({"data": "abc", "rounds": 1}), Some(10))
        .await
        .job();
    assert_eq!(
        digest.output,
        Some(json!({
            "hex": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "rounds": 1
        }))
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_digest_does_not_block_echo() {
    let (server, client) = start().await;
    let digest = client
        .submit(
            "digest",
            json!({"data": "x", "rounds": 10_000_000}),
            Some(0),
        )
        .await;
    assert_eq!(digest.status, 202);
    let digest = digest.job();
    let started = Instant::now();
    let echo = client.submit("echo", json!("quick"), Some(5)).await;
    assert_eq!(echo.status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    let still = client.get(&format!("/v1/jobs/{}", digest.id)).await.job();
    assert_eq!(
        still.status,
        JobStatus::Running,
        "the digest should still be hashing"
    );
    // Cancelling also stops the hashing thread (it checks between rounds).
    let cancelled = client
        .post(&format!("/v1/jobs/{}/cancel", digest.id), &json!({}))
        .await
        .job();
    assert_eq!(cancelled.status, JobStatus::Cancelled);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_never_see_each_other() {
    let config = ServerConfig::new()
        .token("token-a", "tenant-a")
        .token("token-b", "tenant-b");
    let server = spawn(config).await.unwrap();
    assert_eq!(server.token(), "token-a");
    let a = Client::new(server.addr(), "token-a");
    let b = Client::new(server.addr(), "token-b");
    let job = a
        .submit("sleep", json!({"duration_seconds": 30}), None)
        .await
        .job();
    let path = format!("/v1/jobs/{}", job.id);
    assert_eq!(a.get(&path).await.status, 200);
    let resp = b.get(&path).await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.problem().code, "not_found");
    assert_eq!(b.get_with(&path, &[("Prefer", "wait=2")]).await.status, 404);
    assert_eq!(
        b.post(&format!("{path}/cancel"), &json!({})).await.status,
        404
    );
    assert_eq!(b.get("/v1/jobs").await.json()["items"], json!([]));
    // Built-in services are visible to everyone.
    assert_eq!(b.get("/v1/services/echo").await.status, 200);
    // Still running for its owner.
    assert!(!a.get(&path).await.job().status.is_terminal());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_survive_a_restart_with_sqlite() {
    let dir = TempDir::new("durable");
    let config = || {
        ServerConfig::new()
            .data_dir(dir.0.clone())
            .token("t", "tenant")
    };
    let (server, client) = server_with(config()).await;
    let done = client
        .post_with(
            "/v1/services/echo/jobs",
            &json!({"input": {"keep": "me"}, "labels": {"k": "v"}}),
            &[("Prefer", "wait=5")],
        )
        .await
        .job();
    assert_eq!(done.status, JobStatus::Succeeded);
    let left = client
        .submit("sleep", json!({"duration_seconds": 60}), None)
        .await
        .job();
    let services_before = client.get("/v1/services").await.json();
    server.shutdown().await;
    assert!(dir.0.join("jobwire.db").exists());

    let (server, client) = server_with(config()).await;
    let again = client.get(&format!("/v1/jobs/{}", done.id)).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.job(), done);
    let left = client.get(&format!("/v1/jobs/{}", left.id)).await.job();
    assert_eq!(left.status, JobStatus::Failed);
    assert!(left.error.unwrap().message.contains("shut down"));
    assert_eq!(client.get("/v1/services").await.json(), services_before);
    let listed = client.get("/v1/jobs?label=k:v").await.json();
    assert_eq!(listed["items"][0]["id"], done.id.as_str());
    // New jobs are listed before the old ones.
    let newer = client.submit("echo", json!(2), Some(5)).await.job();
    let listed = client.get("/v1/jobs").await.json();
    assert_eq!(listed["items"][0]["id"], newer.id.as_str());
    assert_eq!(listed["items"].as_array().unwrap().len(), 3);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_jobs_in_flight_is_429() {
    let (server, client) = server_with(ServerConfig::new().max_jobs_in_flight(1)).await;
    let first = client
        .submit("sleep", json!({"duration_seconds": 30}), None)
        .await;
    assert_eq!(first.status, 202);
    let second = client.submit("echo", json!(1), None).await;
    assert_eq!(second.status, 429);
    assert_eq!(second.header("retry-after"), Some("1"));
    let p = second.problem();
    assert_eq!(p.code, "rate_limited");
    assert!(p.retryable);
    // Cancelling frees the slot.
    client
        .post(&format!("/v1/jobs/{}/cancel", first.job().id), &json!({}))
        .await;
    assert_eq!(client.submit("echo", json!(1), Some(5)).await.status, 200);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_routes_and_methods_are_problems() {
    let (server, client) = start().await;
    let resp = client.get("/v2/nothing").await;
    assert_eq!(resp.status, 404);
    assert_eq!(resp.problem().code, "not_found");
    let resp = client.send("DELETE", "/v1/health", &[], None).await;
    assert_eq!(resp.status, 405);
    assert!(
        resp.header("allow").is_some_and(|a| a.contains("GET")),
        "{resp:?}"
    );
    resp.problem();
    let resp = client.get("/v1/services/echo/jobs").await;
    assert_eq!(resp.status, 405);
    resp.problem();
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_waiting_requests_and_stops_listening() {
    let (server, client) = start().await;
    let job = client
        .submit("sleep", json!({"duration_seconds": 60}), None)
        .await
        .job();
    let waiter = {
        let client = client.clone();
        let path = format!("/v1/jobs/{}", job.id);
        tokio::spawn(async move {
            // Running, then waits for the next change.
            let mut job = client.get_with(&path, &[("Prefer", "wait=30")]).await.job();
            while !job.status.is_terminal() {
                job = client.get_with(&path, &[("Prefer", "wait=30")]).await.job();
            }
            job
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let addr = server.addr();
    let started = Instant::now();
    server.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let job = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("the waiting request was answered")
        .unwrap();
    assert_eq!(job.status, JobStatus::Failed);
    let error = job.error.unwrap();
    assert_eq!(error.code.as_deref(), Some("interrupted"));
    assert!(error.message.contains("shut down"), "{}", error.message);
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_is_served() {
    use http_body_util::{BodyExt, Empty};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let (server, _) = start().await;
    let stream = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let request = http::Request::get(format!("{}/v1/services/echo", server.url()))
        .header("authorization", format!("Bearer {}", server.token()))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let service: Service = serde_json::from_slice(&body).unwrap();
    assert_eq!(service.name, "echo");
    drop(sender);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_one_data_dir_is_refused_and_the_first_loses_nothing() {
    let dir = TempDir::new("locked");
    let (first, client) = server_with(ServerConfig::new().data_dir(&dir.0)).await;
    let job = client
        .submit("sleep", json!({"duration_seconds": 1}), None)
        .await
        .job();
    let second = spawn(ServerConfig::new().data_dir(&dir.0)).await;
    let error = second.expect_err("the directory is taken").to_string();
    assert!(
        error.contains("in use by another jobwire server"),
        "{error}"
    );
    assert!(
        error.contains(&format!("pid {}", std::process::id())),
        "{error}"
    );
    // The first one's running job was left alone.
    let done = client
        .get_with(&format!("/v1/jobs/{}", job.id), &[("Prefer", "wait=5")])
        .await
        .job();
    assert_eq!(done.status, JobStatus::Succeeded);
    // Once the first has stopped, the directory is free again.
    first.shutdown().await;
    let (again, client) = server_with(ServerConfig::new().data_dir(&dir.0)).await;
    assert_eq!(
        client.get(&format!("/v1/jobs/{}", job.id)).await.status,
        200
    );
    again.shutdown().await;
}
