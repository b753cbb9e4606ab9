//! Lists from blocking code: every item as an `Iterator` that fetches the next page only
//! when the current one is used up, or one page on request with its cursor.
//!
//! Patterns: S2.9
//!
//! Python (vecu): the synchronous `for item in client.authorizations.list(limit=50)`,
//! and one page with `auto_paginate=False`.
//!
//! Rust: `jobwire_blocking`'s `items()` is a plain `Iterator` of `Result`s — `take`,
//! `filter`, `collect::<Result<Vec<_>, _>>()` all work — and `.page()` is one page with
//! `next_cursor`. This counts the requests to show the laziness.
//!
//! ```text
//! cargo run --example pagination_blocking
//! ```

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use common::{check, BlockingServer};
use jobwire_blocking::transport::{Transport, UreqTransport};
use jobwire_blocking::SubmitOptions;
use serde_json::json;

fn main() -> common::Result {
    let server = BlockingServer::start()?;
    let list_requests = Arc::new(AtomicUsize::new(0));
    let client = {
        let (counted, http) = (list_requests.clone(), UreqTransport::new());
        jobwire_blocking::Client::builder()
            .base_url(server.url())
            .token(server.token())
            .transport(move |request: http::Request<Bytes>| {
                if request.uri().path() == "/v1/jobs" {
                    counted.fetch_add(1, Ordering::SeqCst);
                }
                http.send(request)
            })
            .build()?
    };

    let run = common::run_id();
    for i in 0..25 {
        let labelled = SubmitOptions::default().label("run", &run);
        client.submit_with("echo", &json!({"i": i}), labelled)?;
    }
    let ours = || client.jobs().label("run", &run).limit(10);

    let mut seen = 0;
    for job in ours().items() {
        let job = job?;
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
        format!("the iterator yielded all {seen} jobs from {pages} pages of 10"),
    )?;

    let first_three = ours().items().take(3).collect::<Result<Vec<_>, _>>()?;
    let pages = list_requests.swap(0, Ordering::SeqCst);
    check(
        first_three.len() == 3 && pages == 1,
        "take(3) fetched one page",
    )?;

    let mut cursor = None;
    let mut sizes = Vec::new();
    loop {
        let query = match &cursor {
            Some(c) => ours().cursor(c),
            None => ours(),
        };
        let page = query.page()?;
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
    server.stop();
    Ok(())
}
