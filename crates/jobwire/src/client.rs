//! The client: settings, a shared transport, and the one drive loop every call uses.

use std::sync::Arc;

use futures_util::StreamExt as _;
use jobwire_core::throttle::Pacer;
use jobwire_core::transport::AsyncTransport;
use jobwire_core::{ClientConfig, Error};
use jobwire_hyper::HyperTransport;

use crate::hub::Hub;
use crate::{EventStream, JobHandle, JobList, ServiceHandle, ServiceList};

/// A jobwire client. Cheap to clone: clones share settings and one connection pool, so
/// build it once and hand clones to tasks.
///
/// ```no_run
/// # async fn demo() -> Result<(), jobwire::Error> {
/// let client = jobwire::Client::from_env()?;
/// let out: serde_json::Value = client.run("echo", &serde_json::json!({"hi": 1})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// When every call of this clone must end ([`Client::within`]).
    pub(crate) deadline: Option<std::time::Instant>,
    /// The trace this clone's calls belong to ([`Client::in_trace`]).
    pub(crate) trace: Option<jobwire_core::trace::TraceContext>,
}

struct Inner {
    config: ClientConfig,
    transport: Arc<dyn AsyncTransport>,
    /// Where waits share one event stream.
    hub: Hub,
    /// The retry budget, jitter and throttle all clones share.
    pacer: Pacer,
    /// One permit per request that may be in flight, when there is a limit.
    in_flight: Option<tokio::sync::Semaphore>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .field("deadline", &self.deadline)
            .field("trace", &self.trace)
            .finish_non_exhaustive()
    }
}

/// Settings for a [`Client`]; from [`Client::builder`].
///
/// ```
/// use std::time::Duration;
/// let client = jobwire::Client::builder()
///     .base_url("http://127.0.0.1:7878")
///     .token("secret")
///     .timeout(Duration::from_secs(10))
///     .build()?;
/// # let _ = client;
/// # Ok::<(), jobwire::Error>(())
/// ```
#[must_use]
pub struct ClientBuilder {
    config: ClientConfig,
    transport: Option<Arc<dyn AsyncTransport>>,
}

impl ClientBuilder {
    jobwire_core::__client_config_setters!(config);

    /// Send every request through `transport` instead of the default hyper client: a
    /// proxy, a test double, another HTTP stack. Every SDK feature works on top of it.
    pub fn transport(mut self, transport: impl AsyncTransport + 'static) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// Checks the settings and builds the client.
    pub fn build(self) -> Result<Client, Error> {
        let config = self.config.validate()?;
        let transport = match self.transport {
            Some(t) => t,
            None => Arc::new(
                HyperTransport::builder()
                    .connect_timeout(config.connect_timeout_value())
                    .build()?,
            ),
        };
        let hub = Hub::new(&config);
        Ok(Client {
            inner: Arc::new(Inner {
                transport,
                hub,
                pacer: Pacer::new(&config, jobwire_core::follow::jitter_seed()),
                in_flight: config
                    .max_in_flight_value()
                    .map(tokio::sync::Semaphore::new),
                config,
            }),
            deadline: None,
            trace: None,
        })
    }
}

impl Client {
    /// Settings to build a client from, starting from the defaults.
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            config: ClientConfig::default(),
            transport: None,
        }
    }

    /// A client for `JOBWIRE_URL` (default `http://127.0.0.1:7878`) with the token in
    /// `JOBWIRE_TOKEN`.
    pub fn from_env() -> Result<Client, Error> {
        ClientBuilder {
            config: ClientConfig::from_env(),
            transport: None,
        }
        .build()
    }

    /// The settings in force.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The transport requests go through.
    pub(crate) fn transport(&self) -> &dyn AsyncTransport {
        self.inner.transport.as_ref()
    }

    /// The push hub of this client (shared by its clones).
    pub(crate) fn hub(&self) -> &Hub {
        &self.inner.hub
    }

    /// What all clones share about sending: retry budget, jitter, throttle.
    pub(crate) fn pacer(&self) -> &Pacer {
        &self.inner.pacer
    }

    /// A slot of the in-flight limit, held while one attempt is sent (none without a
    /// limit).
    async fn in_flight_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        match &self.inner.in_flight {
            // The semaphore is never closed, so acquiring only fails if it were.
            Some(slots) => slots.acquire().await.ok(),
            None => None,
        }
    }

    /// One attempt: the answer with its whole body, or why there is none.
    async fn send_once(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, Error> {
        let (head, body) = self.inner.transport.send(request).await?.into_parts();
        let body = body
            .read_to_bytes(self.inner.config.max_body_bytes_value())
            .await
            .map_err(|e| e.into_error(head.status))?;
        Ok(http::Response::from_parts(head, body))
    }
}

jobwire_core::__facade_methods!(async, sleep = tokio::time::sleep);
