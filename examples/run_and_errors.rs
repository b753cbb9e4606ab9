//! One call that submits a job and returns its output, with the token from the
//! environment; then each way a call can go wrong, told apart with one `match`.
//!
//! Patterns: S4.1, S0.5
//!
//! Python (inference.sh, IVCAP): builds a client with an API key and awaits
//! `client.run({"app": …, "input": …})` for the output; catches `ResourceNotFound`
//! apart from `IvcapApiError`, whose `status_code` it prints.
//!
//! Rust: `run` is generic over your input and output types, so the output arrives
//! decoded; every failure is one `jobwire::Error` enum — not found, unauthorized, the
//! server's field errors, any other API error with its status and RFC 9457 problem, a
//! job that failed with its own error code — so the compiler sees every case you handle.
//!
//! ```text
//! JOBWIRE_URL=http://127.0.0.1:7878 JOBWIRE_TOKEN=secret cargo run --example run_and_errors
//! cargo run --example run_and_errors     # without JOBWIRE_URL: an embedded server
//! ```

mod common;

use common::{check, Server};
use jobwire::Error;
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Serialize)]
struct Prompt<'a> {
    prompt: &'a str,
}

#[derive(Deserialize, Debug, PartialEq)]
struct Answer {
    prompt: String,
}

/// The kind of error, as a program would branch on it, with what it says.
fn describe(e: &Error) -> &'static str {
    match e {
        Error::NotFound { problem } => {
            println!("  not found ({}): {}", problem.status, problem.title);
            "not_found"
        }
        Error::Unauthorized { problem } => {
            println!("  unauthorized ({}): {}", problem.status, problem.title);
            "unauthorized"
        }
        Error::Validation { problem } => {
            println!("  rejected ({}): {}", problem.status, problem.title);
            for field in &problem.errors {
                println!("    {} {}", field.pointer, field.message);
            }
            "validation"
        }
        Error::Api { status, problem } => {
            println!(
                "  API error {status}: {} ({}), request {}",
                problem.detail.as_deref().unwrap_or(&problem.title),
                problem.code,
                problem.request_id.as_deref().unwrap_or("-")
            );
            "api"
        }
        Error::JobFailed { job_id, error } => {
            println!(
                "  job {job_id} failed: {} (code {})",
                error.message,
                error.code.as_deref().unwrap_or("-")
            );
            "job_failed"
        }
        other => {
            println!("  something else: {other}");
            "other"
        }
    }
}

#[tokio::main]
async fn main() -> common::Result {
    let server = Server::start().await?;
    // The URL and key as the environment gives them (`Client::from_env()` reads
    // JOBWIRE_URL and JOBWIRE_TOKEN itself), or the embedded server's.
    let client = jobwire::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .build()?;

    let answer: Answer = client.run("echo", &Prompt { prompt: "A sunset" }).await?;
    println!("echo answered {answer:?}");
    check(
        answer.prompt == "A sunset",
        "run() submitted the job and returned its decoded output",
    )?;

    println!("what can go wrong:");
    let mut seen = Vec::new();
    if let Err(e) = client.service("no-such-service").await {
        seen.push(describe(&e));
    }
    let stranger = jobwire::Client::builder()
        .base_url(server.url())
        .token("not-the-token")
        .build()?;
    if let Err(e) = stranger.service("echo").await {
        seen.push(describe(&e));
    }
    // By name, the input is checked by the server, which names each bad field.
    if let Err(e) = client
        .submit("sleep", &json!({"duration_seconds": "soon"}))
        .await
    {
        seen.push(describe(&e));
    }
    if let Err(e) = client.jobs().cursor("not-a-cursor").page().await {
        seen.push(describe(&e));
    }
    let failed = client
        .run::<_, serde_json::Value>("fail", &json!({"message": "no such VIN"}))
        .await;
    if let Err(e) = failed {
        seen.push(describe(&e));
    }
    check(
        seen == [
            "not_found",
            "unauthorized",
            "validation",
            "api",
            "job_failed",
        ],
        format!("each failure came as its own kind: {seen:?}"),
    )?;
    server.stop().await;
    Ok(())
}
