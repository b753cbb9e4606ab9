//! The web application of `examples/web_app`: an axum router whose state holds one
//! jobwire client for every request. Shared with `tests/web_app.rs`, which calls each
//! route over HTTP.
//!
//! - `POST /run/{service}` submits a job with the JSON body as its input, waits for it
//!   and answers its output (a job that failed is 502, an unknown service 404, …);
//! - `POST /background/{service}` submits a job and answers 202 at once; a background
//!   task waits for the job and records how it ended, which `GET /jobs/{job_id}` tells;
//! - `GET /jobs/{job_id}/events` streams the job's events to the browser as server-sent
//!   events, until its `done`;
//! - `GET /` is a page that starts a job and shows its progress from that stream.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::{Stream, StreamExt};
use jobwire::{Client, Error, EventKind, RunOptions};
use serde_json::{json, Value};
use tokio::task::JoinSet;

/// What every handler gets: the one client (cheap to clone, one connection pool), the
/// background work in flight, and what the finished background work found.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    background: Mutex<JoinSet<()>>,
    finished: Mutex<HashMap<String, Value>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing is left half-written under these locks; a panic elsewhere changes nothing.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AppState {
    /// The state of an application that uses `client` (the startup half of a lifespan).
    pub fn new(client: Client) -> AppState {
        AppState {
            inner: Arc::new(Inner {
                client,
                background: Mutex::new(JoinSet::new()),
                finished: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The shutdown half: lets the background work finish, then closes the client.
    pub async fn shutdown(&self) {
        let mut background = std::mem::take(&mut *lock(&self.inner.background));
        while background.join_next().await.is_some() {}
        self.inner.client.close().await;
    }
}

/// The application's routes over `state`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/run/{service}", post(run))
        .route("/background/{service}", post(background))
        .route("/jobs/{job_id}", get(background_outcome))
        .route("/jobs/{job_id}/events", get(events))
        .with_state(state)
}

/// A failure of the SDK as an HTTP answer: the status that says what happened, and the
/// message.
struct Failure(Error);

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            Error::NotFound { .. } => StatusCode::NOT_FOUND,
            Error::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Error::JobFailed { .. } | Error::JobCancelled { .. } => StatusCode::BAD_GATEWAY,
            Error::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let body = json!({"error": self.0.kind_name(), "message": self.0.to_string()});
        (status, Json(body)).into_response()
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure(e)
    }
}

/// Submits a job and waits for it, within 30 s.
async fn run(
    State(state): State<AppState>,
    Path(service): Path<String>,
    Json(input): Json<Value>,
) -> Result<Json<Value>, Failure> {
    let options = RunOptions::default().timeout(Duration::from_secs(30));
    let output: Value = state
        .inner
        .client
        .run_with(&service, &input, options)
        .await?;
    Ok(Json(json!({ "output": output })))
}

/// Submits a job, answers at once, and waits for the job in the background.
async fn background(
    State(state): State<AppState>,
    Path(service): Path<String>,
    Json(input): Json<Value>,
) -> Result<(StatusCode, Json<Value>), Failure> {
    let mut job = state.inner.client.submit(&service, &input).await?;
    let job_id = job.id().to_owned();
    let task_state = state.clone();
    let mut background = lock(&state.inner.background);
    // Forget the background work that has finished already.
    while background.try_join_next().is_some() {}
    background.spawn(async move {
        let outcome = match job.result::<Value>().await {
            Ok(output) => json!({"done": true, "output": output}),
            Err(e) => json!({"done": true, "error": e.to_string()}),
        };
        lock(&task_state.inner.finished).insert(job.id().to_owned(), outcome);
    });
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"job_id": job_id, "events": format!("/jobs/{job_id}/events")})),
    ))
}

/// What the background work found for a job, once it has.
async fn background_outcome(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Json<Value> {
    let found = lock(&state.inner.finished).get(&job_id).cloned();
    Json(found.unwrap_or_else(|| json!({"done": false})))
}

/// A job's events as server-sent events, each with its kind as the event name, until
/// the job's `done`.
async fn events(
    State(state): State<AppState>,
    Path(job_id): Path<String>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = state.inner.client.job(&job_id).events().map(|event| {
        let (name, data) = match event {
            Ok(event) => match event.kind {
                EventKind::Status(status) => ("status", json!({"status": status.as_str()})),
                EventKind::Progress { fraction, message } => (
                    "progress",
                    json!({"fraction": fraction, "message": message}),
                ),
                EventKind::Log(line) => ("log", json!({"line": line})),
                EventKind::Output(chunk) => ("output", json!({"chunk": chunk})),
                EventKind::Done(job) => ("done", json!(job)),
                _ => ("other", Value::Null),
            },
            // An unknown job, say: the browser is told, and the stream ends.
            Err(e) => (
                "error",
                json!({"error": e.kind_name(), "message": e.to_string()}),
            ),
        };
        Ok(Event::default().event(name).data(data.to_string()))
    });
    Sse::new(events).keep_alive(KeepAlive::default())
}

/// A page that starts a `steps` job in the background and draws its progress.
async fn page() -> Html<&'static str> {
    Html(
        r#"<!doctype html>
<meta charset="utf-8"><title>jobwire in axum</title>
<button id="go">Run 10 steps</button> <progress id="bar" max="1" value="0"></progress>
<pre id="out"></pre>
<script>
document.getElementById("go").onclick = async () => {
  const answer = await fetch("/background/steps", {method: "POST",
    headers: {"content-type": "application/json"},
    body: JSON.stringify({steps: 10, interval_ms: 300})});
  const {job_id, events} = await answer.json();
  const source = new EventSource(events), out = document.getElementById("out");
  source.addEventListener("progress", e => document.getElementById("bar").value = JSON.parse(e.data).fraction);
  source.addEventListener("output", e => out.textContent += JSON.parse(e.data).chunk);
  source.addEventListener("done", e => { out.textContent += "\n" + JSON.parse(e.data).status; source.close(); });
  source.addEventListener("error", () => source.close());
};
</script>
"#,
    )
}
