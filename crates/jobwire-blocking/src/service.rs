//! A service handle: what a service is, and how to submit jobs to it.

use jobwire_core::{Error, Service, SubmitOptions};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::{Client, JobHandle};

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
    client: Client,
    service: Service,
}

impl ServiceHandle {
    pub(crate) fn new(client: Client, service: Service) -> Self {
        ServiceHandle { client, service }
    }

    /// The service's id (`svc_…`).
    pub fn id(&self) -> &str {
        &self.service.id
    }

    /// The service's unique name.
    pub fn name(&self) -> &str {
        &self.service.name
    }

    /// The JSON Schema every input is validated against.
    pub fn input_schema(&self) -> &Value {
        &self.service.input_schema
    }

    /// Everything the server said about the service.
    pub fn info(&self) -> &Service {
        &self.service
    }

    /// Submits a job on `input` (a serde type or a `serde_json::Value`) without waiting.
    pub fn submit<I: Serialize + ?Sized>(&self, input: &I) -> Result<JobHandle, Error> {
        self.client.submit(&self.service.id, input)
    }

    /// Submits with options: a server-side wait, labels, an idempotency key.
    pub fn submit_with<I: Serialize + ?Sized>(
        &self,
        input: &I,
        options: SubmitOptions,
    ) -> Result<JobHandle, Error> {
        self.client.submit_with(&self.service.id, input, options)
    }

    /// Submits a job and waits for its typed result.
    pub fn run<I: Serialize + ?Sized, O: DeserializeOwned>(&self, input: &I) -> Result<O, Error> {
        self.client.run(&self.service.id, input)
    }
}
