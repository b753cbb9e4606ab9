//! A job handle: its cached state, and how to refresh, wait for, read and cancel it.
//! Its methods are stamped from `jobwire_core::__facade_methods!`, shared with the
//! other facade.

use jobwire_core::Job;

use crate::Client;

/// A submitted job. It caches the job as last seen: [`status`](Self::status) reads the
/// cache, [`refresh`](Self::refresh) and the waits update it.
///
/// ```no_run
/// # fn demo(client: jobwire_blocking::Client) -> Result<(), jobwire_blocking::Error> {
/// let mut job = client.submit("sleep", &serde_json::json!({"duration_seconds": 1}))?;
/// println!("{} is {}", job.id(), job.status());
/// let out: serde_json::Value = job.result()?; // waits on a long-poll, no sleep loop
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct JobHandle {
    pub(crate) client: Client,
    pub(crate) job: Job,
    /// The job's event position as last seen (see `jobwire_core::JobSnapshot`).
    pub(crate) position: Option<u64>,
}
