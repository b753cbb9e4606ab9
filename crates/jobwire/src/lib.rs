//! jobwire for async Rust: run jobs on remote services from tokio.
//!
//! Submit a job to a named service, wait for it without polling loops, fetch its typed
//! result, list what ran. The blocking crate `jobwire-blocking` has the same names, the
//! same arguments and the same errors, for code with no async runtime; both can live in
//! one binary.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
//! # let (url, token) = (server.url(), server.token().to_owned());
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize)]
//! struct Sleep { duration_seconds: f64 }
//! #[derive(Deserialize)]
//! struct Slept { slept: f64 }
//!
//! let client = jobwire::Client::builder().base_url(url).token(token).build()?;
//! let sleep = client.service("sleep").await?;
//! let mut job = sleep.submit(&Sleep { duration_seconds: 0.2 }).await?;
//! let out: Slept = job.result().await?;
//! assert_eq!(out.slept, 0.2);
//! # server.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! Errors are one [`Error`] type to `match` on: [`Error::NotFound`], [`Error::Api`] with
//! the status and RFC 9457 problem, [`Error::Timeout`], [`Error::JobFailed`], …
//!
//! To send requests through something other than the default hyper client, give
//! [`ClientBuilder::transport`] anything that implements [`transport::AsyncTransport`]
//! — a closure will do.
//!
//! Every decision — retries, pacing, deadlines, how to wait, when to reconnect a
//! stream — is made by a state machine of `jobwire-core` (re-exported as [`core`]);
//! this crate drives those machines with tokio and hyper, in short loops written out by
//! hand, the twins of `jobwire-blocking`'s.
#![warn(missing_docs)]

mod batch;
mod client;
mod events;
mod hub;
mod job;
mod list;
mod run;
mod service;
mod stream;

pub use batch::{JobGuard, RunAll, RunUnordered};
pub use client::{Client, ClientBuilder};
pub use events::EventStream;
pub use job::JobHandle;
pub use list::{JobList, ServiceList};
pub use run::RunStream;
pub use service::ServiceHandle;

pub use jobwire_core::batch::{BatchEvent, BatchReport, Summary};
pub use jobwire_core::call::Answer;
pub use jobwire_core::event::{EventKind, JobEvent};
pub use jobwire_core::options::{CallOptions, RunOptions};
pub use jobwire_core::run::RunEvent;
pub use jobwire_core::token::TokenSource;
pub use jobwire_core::{
    ClientConfig, CommandSpec, Error, FieldError, Health, Job, JobError, JobQuery, JobSnapshot,
    JobStatus, Page, Problem, Progress, Service, ServiceQuery, ServiceSpec, SubmitOptions,
    TransportError, TransportErrorKind,
};

/// Transports: the trait to implement for your own, and the default hyper one.
pub mod transport {
    pub use jobwire_core::transport::{
        async_trait, AsyncBody, AsyncTransport, ReadTimeout, RequestTimeout,
    };
    pub use jobwire_hyper::{HyperTransport, HyperTransportBuilder};
}

/// Building blocks from the sans-IO core, for custom endpoints and transports.
pub use jobwire_core as core;
