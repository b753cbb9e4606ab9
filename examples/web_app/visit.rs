//! A stand-in for a browser: plain HTTP requests to the application, and its
//! server-sent events read as they arrive. Shared by `examples/web_app` and
//! `tests/web_app.rs`. The HTTP client is the SDK's own hyper transport, used as the
//! plain HTTP client it is.

use std::time::Duration;

use bytes::Bytes;
use jobwire::transport::{AsyncTransport, HyperTransport};
use serde_json::Value;

/// An answer: its status, content type and body.
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON (`null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// One server-sent event: its name and its data as JSON.
#[derive(Debug)]
pub struct SentEvent {
    pub name: String,
    pub data: Value,
}

/// Requests to the application at `base` (`http://127.0.0.1:PORT`).
pub struct Visitor {
    base: String,
    http: HyperTransport,
}

impl Visitor {
    pub fn new(base: impl Into<String>) -> Result<Visitor, Box<dyn std::error::Error>> {
        Ok(Visitor {
            base: base.into(),
            http: HyperTransport::new()?,
        })
    }

    async fn send(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<Answer, Box<dyn std::error::Error>> {
        let answer = self.http.send(request).await?;
        let status = answer.status().as_u16();
        let content_type = answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = answer
            .into_body()
            .read_to_bytes(1 << 20)
            .await
            .map_err(|e| format!("{e:?}"))?;
        Ok(Answer {
            status,
            content_type,
            body,
        })
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Result<Answer, Box<dyn std::error::Error>> {
        let request = http::Request::get(format!("{}{path}", self.base)).body(Bytes::new())?;
        self.send(request).await
    }

    /// `POST path` with a JSON body.
    pub async fn post(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<Answer, Box<dyn std::error::Error>> {
        let request = http::Request::post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(Bytes::from(body.to_string()))?;
        self.send(request).await
    }

    /// `GET path` as an event stream: each event handed to `seen` as it arrives, until
    /// the stream's `done` or `error` event, or `limit`. Answers the content type.
    pub async fn events(
        &self,
        path: &str,
        limit: Duration,
        mut seen: impl FnMut(SentEvent),
    ) -> Result<String, Box<dyn std::error::Error>> {
        let request = http::Request::get(format!("{}{path}", self.base))
            .header("accept", "text/event-stream")
            .body(Bytes::new())?;
        let answer = self.http.send(request).await?;
        let content_type = answer
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let mut body = answer.into_body();
        let mut text = String::new();
        let read = async {
            while let Some(chunk) = body.next_chunk().await {
                text.push_str(&String::from_utf8_lossy(&chunk?));
                // Events end with a blank line.
                while let Some(end) = text.find("\n\n") {
                    let block: String = text.drain(..end + 2).collect();
                    let (mut name, mut data) = (String::from("message"), String::new());
                    for line in block.lines() {
                        if let Some(value) = line.strip_prefix("event:") {
                            name = value.trim().to_owned();
                        } else if let Some(value) = line.strip_prefix("data:") {
                            data.push_str(value.trim_start());
                        }
                    }
                    if data.is_empty() {
                        continue; // a keep-alive comment
                    }
                    let last = name == "done" || name == "error";
                    seen(SentEvent {
                        name,
                        data: serde_json::from_str(&data).unwrap_or(Value::Null),
                    });
                    if last {
                        return Ok(());
                    }
                }
            }
            Ok::<(), jobwire::TransportError>(())
        };
        tokio::time::timeout(limit, read)
            .await
            .map_err(|_| "the event stream did not end in time")??;
        Ok(content_type)
    }
}

/// Says that `claim` held, or fails the tour with `not so: …`.
fn check(claim: bool, what: impl std::fmt::Display) -> Result<(), Box<dyn std::error::Error>> {
    if claim {
        println!("ok: {what}");
        Ok(())
    } else {
        Err(format!("not so: {what}").into())
    }
}

/// Calls every route of the application as a browser would, and checks each answer.
pub async fn tour(visitor: &Visitor) -> Result<(), Box<dyn std::error::Error>> {
    use serde_json::json;
    use std::time::Instant;

    // Submit and await.
    let answer = visitor
        .post("/run/echo", &json!({"prompt": "A sunset"}))
        .await?;
    println!("POST /run/echo -> {} {}", answer.status, answer.json());
    check(
        answer.status == 200 && answer.json()["output"] == json!({"prompt": "A sunset"}),
        "POST /run/{service} submitted a job, awaited it and answered its output",
    )?;
    let failed = visitor
        .post("/run/fail", &json!({"message": "no such VIN"}))
        .await?;
    let missing = visitor.post("/run/no-such-service", &json!({})).await?;
    println!("POST /run/fail -> {} {}", failed.status, failed.json());
    println!(
        "POST /run/no-such-service -> {} {}",
        missing.status,
        missing.json()
    );
    check(
        failed.status == 502 && failed.json()["error"] == "job_failed" && missing.status == 404,
        "a failed job answered 502 and an unknown service 404, with the reason",
    )?;

    // Answer at once, finish in the background.
    let started = Instant::now();
    let accepted = visitor
        .post("/background/sleep", &json!({"duration_seconds": 1.0}))
        .await?;
    let answered = started.elapsed();
    let job_id = accepted.json()["job_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    println!(
        "POST /background/sleep -> {} {} after {:.0} ms",
        accepted.status,
        accepted.json(),
        answered.as_secs_f64() * 1000.0
    );
    let early = visitor.get(&format!("/jobs/{job_id}")).await?.json();
    check(
        accepted.status == 202 && answered < Duration::from_millis(500) && early["done"] == false,
        "POST /background/{service} answered 202 at once, while its one-second job still ran",
    )?;
    let mut outcome = early;
    while outcome["done"] != true && started.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        outcome = visitor.get(&format!("/jobs/{job_id}")).await?.json();
    }
    println!(
        "GET /jobs/{job_id} -> {outcome} after {:.2}s",
        started.elapsed().as_secs_f64()
    );
    check(
        outcome["output"] == json!({"slept": 1.0}),
        "the background task waited for the job and recorded its output",
    )?;

    // A job's progress as server-sent events.
    let accepted = visitor
        .post(
            "/background/steps",
            &json!({"steps": 5, "interval_ms": 100}),
        )
        .await?;
    let events = accepted.json()["events"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut names = Vec::new();
    let content_type = visitor
        .events(&events, Duration::from_secs(10), |event| {
            println!("  event {}: {}", event.name, event.data);
            names.push(event.name);
        })
        .await?;
    let progress = names.iter().filter(|n| *n == "progress").count();
    check(
        content_type.starts_with("text/event-stream")
            && progress == 5
            && names.last().map(String::as_str) == Some("done"),
        format!("GET {events} streamed 5 progress events and the done event"),
    )?;

    let page = visitor.get("/").await?;
    check(
        page.status == 200
            && page.content_type.starts_with("text/html")
            && String::from_utf8_lossy(&page.body).contains("EventSource"),
        "GET / is the page that follows a job's events in the browser",
    )?;
    Ok(())
}
