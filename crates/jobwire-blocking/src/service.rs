//! A service handle: what a service is, and how to submit jobs to it. Its methods are
//! stamped from `jobwire_core::__facade_methods!`, shared with the other facade.

use jobwire_core::Service;

use crate::Client;

/// A service, as fetched by [`Client::service`], bound to the client that fetched it.
///
/// ```no_run
/// # fn demo(client: jobwire_blocking::Client) -> Result<(), jobwire_blocking::Error> {
/// let sleep = client.service("sleep")?;
/// println!("{} takes {}", sleep.name(), sleep.input_schema());
/// let job = sleep.submit(&serde_json::json!({"duration_seconds": 0.1}))?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ServiceHandle {
    pub(crate) client: Client,
    pub(crate) service: Service,
}
