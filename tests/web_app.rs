//! The web application of `examples/web_app` (its router and state are included from
//! there, not copied), started on 127.0.0.1:0 against an embedded reference server and
//! called over HTTP, route by route: submit-and-await with its error answers, answer at
//! once and finish in the background, a job's progress as server-sent events (also for
//! a job that does not exist), the page.

#[path = "../examples/web_app/app.rs"]
mod app;
#[path = "../examples/web_app/visit.rs"]
mod visit;

use std::time::Duration;

use jobwire_server::ServerConfig;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_over_http() {
    let server = jobwire_server::spawn(ServerConfig::new()).await.unwrap();
    let client = jobwire::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .build()
        .unwrap();
    let state = app::AppState::new(client);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = app::router(state.clone());
    let serving = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });
    let visitor = visit::Visitor::new(&url).unwrap();

    // Every route, each answer checked.
    if let Err(e) = visit::tour(&visitor).await {
        panic!("{e}");
    }

    // What the tour does not try: a job nobody knows, an input the service refuses.
    let unknown = visitor.get("/jobs/job_unknown").await.unwrap();
    assert_eq!(
        (unknown.status, unknown.json()),
        (200, json!({"done": false}))
    );
    let mut names = Vec::new();
    let content_type = visitor
        .events(
            "/jobs/job_unknown/events",
            Duration::from_secs(10),
            |event| names.push((event.name, event.data["error"].clone())),
        )
        .await
        .unwrap();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    assert_eq!(names, [("error".to_owned(), json!("not_found"))]);
    let bad = visitor
        .post("/background/sleep", &json!({"duration_seconds": "soon"}))
        .await
        .unwrap();
    assert_eq!(
        (bad.status, bad.json()["error"].clone()),
        (422, json!("validation"))
    );

    // Shutdown: the server stops, background work ends, the client closes.
    stop.send(()).unwrap();
    serving.await.unwrap().unwrap();
    state.shutdown().await;
    server.shutdown().await;
}
