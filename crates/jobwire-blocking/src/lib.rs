//! jobwire for blocking Rust: run jobs on remote services with no async runtime.
//!
//! The same names, arguments and errors as the async crate `jobwire`: values where it
//! returns futures, `Iterator` where it returns `Stream`. Under it is a ureq agent; there
//! is no tokio, no hyper and no hidden `block_on`, so it is safe to embed in sync-only
//! code and to call from any thread. Waits share one event stream, read by one thread
//! the client starts while anything waits.
//!
//! ```
//! # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new()).unwrap();
//! # let (url, token) = (server.url(), server.token().to_owned());
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize)]
//! struct Sleep { duration_seconds: f64 }
//! #[derive(Deserialize)]
//! struct Slept { slept: f64 }
//!
//! let client = jobwire_blocking::Client::builder().base_url(url).token(token).build()?;
//! let sleep = client.service("sleep")?;
//! let mut job = sleep.submit(&Sleep { duration_seconds: 0.2 })?;
//! let out: Slept = job.result()?;
//! assert_eq!(out.slept, 0.2);
//! # server.shutdown();
//! # Ok::<(), jobwire_blocking::Error>(())
//! ```
//!
//! To send requests through something other than ureq, give
//! [`ClientBuilder::transport`] anything that implements [`transport::Transport`] — a
//! closure will do.
//!
//! Every decision — retries, pacing, deadlines, how to wait, when to reconnect a
//! stream — is made by a state machine of `jobwire-core` (re-exported as [`core`]);
//! this crate drives those machines with threads and ureq, in short loops written out
//! by hand, the twins of `jobwire`'s.
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
pub use list::{Items, JobList, ServiceList};
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

/// Transports: the trait to implement for your own, and the default ureq one.
pub mod transport {
    pub use jobwire_core::transport::{Body, ReadTimeout, RequestTimeout, Transport};
    pub use jobwire_ureq::{UreqTransport, UreqTransportBuilder};
}

/// Building blocks from the sans-IO core, for custom endpoints and transports.
pub use jobwire_core as core;
