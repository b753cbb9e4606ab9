//! Lists, paged by the server: every item as one `Stream` that fetches the next page
//! only when the current one is used up, or one page on request with its cursor.
//!
//! Patterns: S2.9, S3.7
//!
//! Python (vecu, Infrahub): `async for item in client.authorizations.list(limit=50)`
//! pages by itself, `auto_paginate=False` returns one page; an async generator runs
//! the query at growing offsets and `yield`s each item until a page comes back empty.
//!
//! Rust: `client.jobs()…items()` is a `futures::Stream` (the async generator, with
//! `StreamExt` for `take`, `filter`, `map`); `.page()` is one page, with `next_cursor`
//! to pass to `.cursor(…)`. Cursors, not offsets: a job submitted meanwhile neither
//! shifts nor repeats an item. This counts the requests to show the laziness.
//!
//! ```text
//! cargo run --example pagination
//! ```

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use common::{check, Server};
use futures_util::{StreamExt, TryStreamExt};
use jobwire::transport::{AsyncTransport, HyperTransport};
use jobwire::SubmitOptions;
use serde_json::json;

#[tokio::main]
async fn main() -> common::Result {
    let server = Server::start().await?;
    // A client whose transport counts the list requests it sends.
    let list_requests = Arc::new(AtomicUsize::new(0));
    let client = {
        let (counted, http) = (list_requests.clone(), HyperTransport::new()?);
        jobwire::Client::builder()
            .base_url(server.url())
            .token(server.token())
            .transport(move |request: http::Request<Bytes>| {
                if request.uri().path() == "/v1/jobs" {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                let http = http.clone();
                async move { http.send(request).await }
            })
            .build()?
    };

    // 25 jobs of our own, labelled so the lists below see only them.
    let run = common::run_id();
    for i in 0..25 {
        let labelled = SubmitOptions::default().label("run", &run);
        client
            .submit_with("echo", &json!({"i": i}), labelled)
            .await?;
    }
    let ours = || client.jobs().label("run", &run).limit(10);

    // Every item, one page of 10 at a time, fetched as the stream is read.
    let mut items = std::pin::pin!(ours().items());
    let mut seen = 0;
    while let Some(job) = items.try_next().await? {
        seen += 1;
        if seen == 5 {
            let pages = list_requests.load(Ordering::SeqCst);
            check(pages == 1, format!("5 items read, {pages} page fetched"))?;
        }
        println!("  {seen:>2}: {} {} {}", job.id, job.status, job.input);
    }
    let pages = list_requests.swap(0, Ordering::SeqCst);
    check(
        seen == 25 && pages == 3,
        format!("the stream yielded all {seen} jobs from {pages} pages of 10"),
    )?;

    // Stop early and nothing more is fetched.
    let first_three: Vec<_> = ours().items().take(3).try_collect().await?;
    let pages = list_requests.swap(0, Ordering::SeqCst);
    check(
        first_three.len() == 3 && pages == 1,
        "take(3) fetched one page",
    )?;

    // One page at a time, by hand.
    let mut cursor = None;
    let mut sizes = Vec::new();
    loop {
        let query = match &cursor {
            Some(c) => ours().cursor(c),
            None => ours(),
        };
        let page = query.page().await?;
        sizes.push(page.items.len());
        println!(
            "page {}: {} jobs, next cursor {:?}",
            sizes.len(),
            page.items.len(),
            page.next_cursor
        );
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    check(sizes == [10, 10, 5], format!("pages by hand: {sizes:?}"))?;
    server.stop().await;
    Ok(())
}
