//! The HTTP face of the server: the router, the shared state, and the middleware every
//! request passes through (request id, tracing span, panic guard, problem bodies).

mod auth;
mod events;
mod idempotency;
mod prefer;
mod problem;
mod query;
mod routes;
mod ui;

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::FutureExt;
use http::HeaderValue;
use tracing::Instrument;

pub(crate) use auth::Tokens;
pub(crate) use problem::ApiError;

use crate::ids::random_id;
use crate::runner::Runner;
use crate::services::ServiceCache;

/// The request header (and response header) carrying the request id.
// A `HeaderName` made once: one from a `&str` is allocated on every insert.
const REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// What every request handler can reach.
pub(crate) struct App {
    /// Accepted tokens.
    pub tokens: Tokens,
    /// Runs and tracks jobs; owns the store.
    pub runner: Runner,
    /// Services recently found, for submits.
    pub services: ServiceCache,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Longest time a request body may take to arrive.
    pub body_read_timeout: Duration,
    /// Cap for `Prefer: wait`.
    pub max_wait: Duration,
    /// How often a quiet event stream sends a keep-alive comment.
    pub heartbeat: Duration,
    /// Events one stream sends before the server ends it (the client resumes).
    pub max_events_per_stream: Option<usize>,
    /// Idempotency keys whose first request is being answered.
    pub keys_in_flight: idempotency::InFlight,
    /// Whether `GET /ui` serves the dashboard.
    pub ui: bool,
}

impl App {
    /// The wait actually applied for a requested `wait=N`, in whole seconds.
    fn cap_wait(&self, requested: u64) -> u64 {
        requested.min(self.max_wait.as_secs())
    }
}

/// The router of API v1 over `app`, with `faults` injected when there are any.
pub(crate) fn router(
    app: Arc<App>,
    faults: Option<Arc<crate::faults::Injector>>,
    requests: Arc<AtomicU64>,
) -> Router {
    let routes = Router::new()
        .route("/v1/health", get(routes::health))
        .route("/v1/openapi.json", get(routes::openapi))
        .route(
            "/v1/services",
            get(routes::list_services).post(routes::create_service),
        )
        .route(
            "/v1/services/{id}",
            get(routes::get_service).delete(routes::delete_service),
        )
        .route("/v1/services/{id}/jobs", post(routes::submit))
        .route("/v1/jobs", get(routes::list_jobs))
        .route("/v1/jobs/{id}", get(routes::get_job))
        .route("/v1/jobs/{id}/cancel", post(routes::cancel))
        .route("/v1/jobs/{id}/events", get(events::job_events))
        .route("/v1/events", get(events::events));
    let routes = if app.ui {
        routes
            .route("/ui", get(ui::index))
            .route("/ui/", get(ui::index))
            .route("/ui/{file}", get(ui::asset))
    } else {
        routes
    };
    let routes = routes
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed);
    // Inside the request context: injected problems still carry their request id.
    let routes = match faults {
        Some(injector) => routes.layer(middleware::from_fn_with_state(
            injector,
            crate::faults::inject,
        )),
        None => routes,
    };
    routes
        .layer(middleware::from_fn(request_context))
        .layer(middleware::from_fn_with_state(requests, count_request))
        .with_state(app)
}

/// Counts every request the server is asked, whatever its route or answer
/// ([`ServerHandle::requests`](crate::ServerHandle::requests)).
async fn count_request(
    axum::extract::State(requests): axum::extract::State<Arc<AtomicU64>>,
    request: Request,
    next: Next,
) -> Response {
    requests.fetch_add(1, Ordering::Relaxed);
    next.run(request).await
}

/// The client's request id if it is sensible (1 to 128 visible ASCII characters).
fn client_request_id(request: &Request) -> Option<String> {
    let value = request.headers().get(&REQUEST_ID)?.to_str().ok()?;
    let ok = (1..=128).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_graphic());
    ok.then(|| value.to_owned())
}

/// A fresh request id: random, or (if the OS has no randomness to give) a counter.
fn new_request_id() -> String {
    static FALLBACK: AtomicU64 = AtomicU64::new(0);
    random_id("req_", 12)
        .unwrap_or_else(|_| format!("req_seq_{}", FALLBACK.fetch_add(1, Ordering::Relaxed)))
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// Runs a request inside its span, turns a panic into a 500 problem, finishes problem
/// bodies, and sets `x-request-id` on the answer.
async fn request_context(request: Request, next: Next) -> Response {
    let request_id = client_request_id(&request).unwrap_or_else(new_request_id);
    let span = tracing::info_span!(
        "request",
        method = %request.method(),
        path = %request.uri().path(),
        request_id = %request_id,
        traceparent = tracing::field::Empty,
    );
    if let Some(traceparent) = request
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
    {
        span.record("traceparent", traceparent);
    }
    let started = Instant::now();
    let outcome = AssertUnwindSafe(next.run(request))
        .catch_unwind()
        .instrument(span.clone())
        .await;
    let response = outcome.unwrap_or_else(|panic| {
        tracing::error!(parent: &span, panic = panic_message(panic.as_ref()), "request handler panicked");
        ApiError::internal().into_response()
    });
    let mut response = problem::finish(response, &request_id).await;
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    tracing::debug!(
        parent: &span,
        status = response.status().as_u16(),
        elapsed_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        "answered"
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn raw_get(addr: std::net::SocketAddr, path: &str, extra: &str) -> String {
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{extra}\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    async fn boom() -> &'static str {
        panic!("boom")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_the_server_stays_up() {
        let router = Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "fine" }))
            .layer(middleware::from_fn(request_context));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, router).await });

        let answer = raw_get(addr, "/boom", "x-request-id: abc\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
        assert!(answer.contains("application/problem+json"), "{answer}");
        assert!(answer.contains(r#""code":"internal""#), "{answer}");
        assert!(answer.contains(r#""request_id":"abc""#), "{answer}");
        assert!(raw_get(addr, "/fine", "").await.starts_with("HTTP/1.1 200"));
        server.abort();
    }

    #[test]
    fn request_ids_from_clients_are_checked() {
        let with = |v: &str| {
            let request = Request::builder()
                .header(&REQUEST_ID, v)
                .body(axum::body::Body::empty())
                .unwrap();
            client_request_id(&request)
        };
        assert_eq!(with("abc-123").as_deref(), Some("abc-123"));
        assert_eq!(with("has space"), None);
        assert_eq!(with(&"x".repeat(129)), None);
        assert!(new_request_id().starts_with("req_"));
    }
}
