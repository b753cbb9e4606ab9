//! The sans-IO core of jobwire: everything the SDK knows, nothing that does I/O.
//!
//! jobwire runs jobs on remote services. This crate holds what both facades
//! (`jobwire` for async Rust, `jobwire-blocking` for plain Rust) share, so that logic
//! exists once:
//!
//! - [`model`] and [`problem`]: the API's resources and its RFC 9457 errors;
//! - [`endpoint`]: each API call as a request builder plus an answer parser;
//! - [`transport`]: the blocking and async transport traits (closures implement them);
//! - [`Error`]: the one error type of every call;
//! - [`batch`]: many jobs at once (bounded concurrency, results in input order, fail-fast);
//! - [`sse`] and [`event`]: server-sent events decoded to typed job events;
//! - every decision, as a pure function or a small state machine that takes the time
//!   (and a seed for its randomness) from its driver:
//!   - [`call::Call`]: one call's attempt loop (rate-limit slot, deadline, retries with
//!     [`retry::RetryPolicy`] and [`backoff::Backoff`], the spans it records);
//!   - [`wait::WaitPlan`]: waiting for a job (push, bounded re-reads, long-poll);
//!   - [`stream::EventProtocol`]: the one event-stream protocol, spoken by
//!     [`follow::Follower`] (one stream: resume, back-off, watchdog, deadline) and
//!     [`push::Hub`] (many waits woken from one stream);
//!   - [`run::RunPlan`], [`create_or_get::CreateOrGet`], [`paging::Pager`] and
//!     [`batch::Batch`].
//!
//! It depends on no runtime, socket or HTTP client, and reads no clock. A facade drives
//! each machine in a short loop: ask what to do, do the I/O (send, sleep, read), report
//! what happened.
//!
//! ```
//! use bytes::Bytes;
//! use jobwire_core::endpoint::{Endpoint, SubmitJob};
//! use jobwire_core::transport::{Body, Transport};
//! use jobwire_core::{ClientConfig, JobStatus, SubmitOptions, TransportError};
//!
//! // A transport is anything that answers a request; this one plays the server.
//! let transport = |req: http::Request<Bytes>| -> Result<http::Response<Body>, TransportError> {
//!     assert_eq!(req.uri().path(), "/v1/services/echo/jobs");
//!     Ok(http::Response::builder().status(200).body(Body::from(
//!         r#"{"id":"job_1","service_id":"svc_echo","status":"succeeded","output":{"hi":1}}"#,
//!     )).unwrap())
//! };
//!
//! let config = ClientConfig::default().validate()?;
//! let endpoint = SubmitJob::new("echo", serde_json::json!({"hi": 1}), SubmitOptions::default());
//! let answer = transport.send(endpoint.request(&config)?)?;
//! let (head, body) = answer.into_parts();
//! let body = body.read_to_bytes(config.max_body_bytes_value()).map_err(|e| e.into_error(head.status))?;
//! let job = endpoint.parse(http::Response::from_parts(head, body))?.job;
//! assert_eq!(job.status, JobStatus::Succeeded);
//! # Ok::<(), jobwire_core::Error>(())
//! ```
#![warn(missing_docs)]

pub mod backoff;
pub mod batch;
pub mod call;
pub mod config;
pub mod create_or_get;
pub mod deadline;
pub mod endpoint;
pub mod error;
pub mod event;
pub mod follow;
// The fuzz targets' bodies (`fuzz/`), shared with the corpus replay test; not API.
#[doc(hidden)]
pub mod fuzzing;
pub mod model;
pub mod options;
pub mod outcome;
pub mod paging;
pub mod prefer;
pub mod problem;
pub mod push;
pub mod retry;
pub mod run;
#[cfg(feature = "validation")]
pub mod schema;
pub mod sse;
pub mod stream;
pub mod throttle;
pub mod token;
pub mod trace;
pub mod transport;
pub mod wait;

pub use config::ClientConfig;
pub use endpoint::{JobQuery, JobSnapshot, ServiceQuery, SubmitOptions};
pub use error::{BoxError, Error, TransportError, TransportErrorKind};
pub use model::{
    CommandSpec, Health, Job, JobError, JobStatus, Page, Progress, Service, ServiceSpec, SubmitBody,
};
pub use problem::{FieldError, Problem};
