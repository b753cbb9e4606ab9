//! A web application that runs jobs: an axum server holding one jobwire client in its
//! state, with a route that submits a job and awaits it, one that answers at once and
//! finishes the job in the background, and one that streams a job's progress to the
//! browser as server-sent events. The routes are in `app.rs`.
//!
//! Patterns: S2.4, S2.6, S4.12
//!
//! Python (vecu, inference.sh): a FastAPI app creates the client in its `lifespan`,
//! hands it to routes through `Depends`, awaits `client.run(…)` in a route, and queues
//! work with `BackgroundTasks`.
//!
//! Rust: the client lives in the router's state and reaches each handler through the
//! `State` extractor — no global, no `None` before startup; it is cheap to clone, so
//! every request shares one connection pool. Background work is a tokio task kept in a
//! `JoinSet`, waited for at shutdown before the client closes. A job's events map one to
//! one onto axum's `Sse`.
//!
//! By default this starts the app on a free port, calls every route as a browser would
//! (checking each answer), and stops. With `--serve` it stays up on 127.0.0.1:3000 for a
//! real browser, until Ctrl-C.
//!
//! ```text
//! cargo run --example web_app
//! cargo run --example web_app -- --serve     # then open http://127.0.0.1:3000/
//! ```

#[path = "../common/mod.rs"]
mod common;

mod app;
mod visit;

use common::Server;

#[tokio::main]
async fn main() -> common::Result {
    let serve = std::env::args().any(|a| a == "--serve");
    let server = Server::start().await?;

    // Startup: one client for the application's whole life.
    let state = app::AppState::new(server.client()?);
    let address = if serve {
        "127.0.0.1:3000"
    } else {
        "127.0.0.1:0"
    };
    let listener = tokio::net::TcpListener::bind(address).await?;
    let url = format!("http://{}", listener.local_addr()?);
    println!("the application: {url}/");

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = app::router(state.clone());
    let app = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });

    let toured = if serve {
        tokio::signal::ctrl_c().await?;
        Ok(())
    } else {
        visit::tour(&visit::Visitor::new(&url)?).await
    };

    // Shutdown: stop taking requests, let background work end, close the client.
    let _ = stop.send(());
    app.await??;
    state.shutdown().await;
    server.stop().await;
    toured
}
