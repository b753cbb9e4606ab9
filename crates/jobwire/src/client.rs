//! The client: settings, a shared transport, and the drive loop every call goes
//! through ([`Client::execute`], over the core's [`Call`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use jobwire_core::backoff::jitter_seed;
use jobwire_core::call::{Answer, Call, CallContext, CallStep};
use jobwire_core::endpoint::{Endpoint, GetHealth};
use jobwire_core::options::CallOptions;
use jobwire_core::throttle::Pacer;
use jobwire_core::trace::TraceContext;
use jobwire_core::transport::AsyncTransport;
use jobwire_core::{deadline, ClientConfig, Error, Health};
use jobwire_hyper::HyperTransport;

use crate::hub::Hub;

/// A jobwire client. Cheap to clone: clones share settings and one connection pool, so
/// build it once and hand clones to tasks.
///
/// ```
/// # #[tokio::main]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
/// # std::env::set_var("JOBWIRE_URL", server.url());
/// # std::env::set_var("JOBWIRE_TOKEN", server.token());
/// let client = jobwire::Client::from_env()?;
/// let out: serde_json::Value = client.run("echo", &serde_json::json!({"hi": 1})).await?;
/// assert_eq!(out, serde_json::json!({"hi": 1}));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// When every call of this clone must end ([`Client::within`]).
    pub(crate) deadline: Option<Instant>,
    /// The trace this clone's calls belong to ([`Client::in_trace`]).
    trace: Option<TraceContext>,
    /// This clone's per-call settings ([`Client::with_options`]).
    pub(crate) options: Arc<CallOptions>,
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
    /// Set by [`Client::close`]: every call fails with [`Error::Closed`].
    closed: AtomicBool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("config", &self.inner.config)
            .field("deadline", &self.deadline)
            .field("trace", &self.trace)
            .field("options", &self.options)
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

    /// Sends every request through `transport` instead of the default hyper client: a
    /// proxy, a test double, another HTTP stack. Every SDK feature works on top of it.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), jobwire::Error> {
    /// use bytes::Bytes;
    /// use jobwire::transport::AsyncBody;
    ///
    /// // A transport that answers every request itself.
    /// let canned = |_request: http::Request<Bytes>| async {
    ///     let body = AsyncBody::from(r#"{"status":"ok","version":"canned"}"#);
    ///     Ok::<_, jobwire::TransportError>(http::Response::new(body))
    /// };
    /// let client = jobwire::Client::builder().transport(canned).build()?;
    /// assert_eq!(client.health().await?.version, "canned");
    /// # Ok(()) }
    /// ```
    pub fn transport(mut self, transport: impl AsyncTransport + 'static) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// Checks the settings and builds the client; [`Error::Invalid`] names a bad one.
    ///
    /// ```
    /// let bad = jobwire::Client::builder().base_url("ftp://jobs").build();
    /// assert!(matches!(bad, Err(jobwire::Error::Invalid { what: "base URL", .. })));
    /// ```
    pub fn build(self) -> Result<Client, Error> {
        let config = self.config.validate()?;
        let transport = match self.transport {
            Some(t) => t,
            None => Arc::new(
                HyperTransport::builder()
                    .connect_timeout(config.connect_timeout_value())
                    .max_connections_per_host(config.max_connections_per_host_value())
                    .build()?,
            ),
        };
        Ok(Client {
            inner: Arc::new(Inner {
                transport,
                hub: Hub::new(&config),
                pacer: Pacer::new(&config, jitter_seed()),
                in_flight: config
                    .max_in_flight_value()
                    .map(tokio::sync::Semaphore::new),
                closed: AtomicBool::new(false),
                config,
            }),
            deadline: None,
            trace: None,
            options: Arc::default(),
        })
    }
}

impl Client {
    /// Settings to build a client from, starting from the defaults.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// let client = jobwire::Client::builder()
    ///     .base_url(server.url())
    ///     .token(server.token())
    ///     .build()?;
    /// assert_eq!(client.health().await?.status, "ok");
    /// # Ok(()) }
    /// ```
    pub fn builder() -> ClientBuilder {
        ClientBuilder {
            config: ClientConfig::default(),
            transport: None,
        }
    }

    /// A client with `config`'s settings and the default transport: one program can
    /// build both facades' clients from one `ClientConfig`.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// let config = jobwire::ClientConfig::default().base_url(server.url()).token(server.token());
    /// let client = jobwire::Client::from_config(config)?;
    /// assert_eq!(client.health().await?.status, "ok");
    /// # Ok(()) }
    /// ```
    pub fn from_config(config: ClientConfig) -> Result<Client, Error> {
        ClientBuilder {
            config,
            transport: None,
        }
        .build()
    }

    /// A client for `JOBWIRE_URL` (default `http://127.0.0.1:7878`) with the token in
    /// `JOBWIRE_TOKEN`.
    ///
    /// ```
    /// # std::env::remove_var("JOBWIRE_URL");
    /// let client = jobwire::Client::from_env()?;
    /// assert_eq!(client.config().base_url_value(), "http://127.0.0.1:7878");
    /// # Ok::<(), jobwire::Error>(())
    /// ```
    pub fn from_env() -> Result<Client, Error> {
        ClientBuilder {
            config: ClientConfig::from_env(),
            transport: None,
        }
        .build()
    }

    /// The settings in force.
    ///
    /// ```
    /// let client = jobwire::Client::builder().timeout(std::time::Duration::from_secs(5)).build()?;
    /// assert_eq!(client.config().timeout_value(), std::time::Duration::from_secs(5));
    /// # Ok::<(), jobwire::Error>(())
    /// ```
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

    /// Sends one endpoint's request and parses its answer: the drive loop under every
    /// call, public so a caller can use an endpoint the client has no method for. The
    /// core's [`Call`] decides each step — the rate limit's slot, the deadline, whether
    /// to retry and after how long, what the `jobwire.call` and `jobwire.attempt` spans
    /// record; this sends and sleeps.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use jobwire::core::endpoint::GetService;
    /// let echo = client.execute(&GetService::new("echo")).await?;
    /// assert_eq!(echo.name, "echo");
    /// # Ok(()) }
    /// ```
    pub async fn execute<E: Endpoint>(&self, endpoint: &E) -> Result<E::Output, Error> {
        Ok(self.execute_answer(endpoint).await?.value)
    }

    /// [`execute`](Self::execute), with what the successful answer said about itself:
    /// its status and the server's request id (to quote in a bug report).
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use jobwire::core::endpoint::GetHealth;
    /// let answer = client.execute_answer(&GetHealth).await?;
    /// assert_eq!(answer.status, 200);
    /// assert!(answer.request_id.unwrap().starts_with("req_"));
    /// # Ok(()) }
    /// ```
    pub async fn execute_answer<E: Endpoint>(
        &self,
        endpoint: &E,
    ) -> Result<Answer<E::Output>, Error> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        let request = self.options.request(endpoint, self.config())?;
        let mut call = Call::new(request, self.call_context(), jitter_seed());
        loop {
            match call.next(Instant::now()) {
                CallStep::Sleep(pause) => tokio::time::sleep(pause).await,
                CallStep::Send(attempt) => {
                    let answer = {
                        let _slot = self.in_flight_slot().await;
                        self.send_once(attempt).await
                    };
                    call.observe(answer, Instant::now());
                }
                CallStep::Done(answer) => return Answer::parse(endpoint, answer?),
            }
        }
    }

    /// What a call of this clone runs under: the shared pacing, its deadline, trace and
    /// per-call settings.
    fn call_context(&self) -> CallContext<'_> {
        CallContext::new(self.config(), &self.inner.pacer)
            .deadline(self.deadline)
            .trace(self.trace.clone())
            .options(&self.options)
    }

    /// A clone of this client whose calls use `options` — a retry policy, a request
    /// timeout, extra headers — instead of the client's settings (a clone of a clone
    /// takes the new ones).
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use std::time::Duration;
    /// use jobwire::core::retry::RetryPolicy;
    /// use jobwire::CallOptions;
    /// let impatient = client.with_options(
    ///     CallOptions::default().retry(RetryPolicy::none()).timeout(Duration::from_secs(2)).header("x-team", "data"),
    /// );
    /// let out: serde_json::Value = impatient.run("echo", &1).await?;
    /// assert_eq!(out, 1);
    /// # Ok(()) }
    /// ```
    pub fn with_options(&self, options: CallOptions) -> Client {
        let mut client = self.clone();
        client.options = Arc::new(options);
        client
    }

    /// Closes the client, and every clone of it: the shared event stream ends (waits in
    /// progress fall back to long-polls, whose next request fails) and this returns once
    /// its task is gone; every later call fails with [`Error::Closed`]. Dropping the last
    /// clone without closing is fine too: the stream then ends by itself.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let out: serde_json::Value = client.run("echo", &1).await?;
    /// client.close().await;
    /// assert!(matches!(client.health().await, Err(jobwire::Error::Closed)));
    /// # let _ = out;
    /// # Ok(()) }
    /// ```
    pub async fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        self.hub().close().await;
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

    /// A clone of this client whose calls carry the trace of `traceparent` (a W3C
    /// `traceparent` header, say of the request being served): each attempt goes out
    /// with that trace id and a parent id of its own. A value that is not a
    /// `traceparent` is [`Error::Invalid`].
    ///
    /// ```
    /// # let client = jobwire::Client::builder().build()?;
    /// let traced = client.in_trace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")?;
    /// assert!(client.in_trace("not a traceparent").is_err());
    /// # let _ = traced;
    /// # Ok::<(), jobwire::Error>(())
    /// ```
    pub fn in_trace(&self, traceparent: &str) -> Result<Client, Error> {
        let trace = TraceContext::parse(traceparent).ok_or_else(|| Error::Invalid {
            what: "traceparent",
            message: format!(
                "{} is not a W3C traceparent",
                jobwire_core::error::quoted(traceparent)
            ),
        })?;
        let mut client = self.clone();
        client.trace = Some(trace);
        Ok(client)
    }

    /// A clone of this client whose every call — each request with its retries, `run`
    /// (submit and wait), event streams and paging walks — ends by `limit` from now,
    /// with [`Error::Timeout`] if it has not finished. A clone of a clone keeps the
    /// earlier deadline. Job handles it returns keep it: their waits, events, results and
    /// cancels end by it too, so "submit, watch, get the result, all within 30 s" is said
    /// once. To cancel a job after its deadline passed, `client.cancel(job.id())` with a
    /// client free of it.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use std::time::Duration;
    /// let slow = serde_json::json!({"duration_seconds": 5});
    /// let ran = client.within(Duration::from_millis(200)).run::<_, serde_json::Value>("sleep", &slow).await;
    /// assert!(matches!(ran, Err(jobwire::Error::Timeout { .. })));
    /// # Ok(()) }
    /// ```
    pub fn within(&self, limit: Duration) -> Client {
        let mut client = self.clone();
        client.deadline = deadline::earlier(self.deadline, deadline::after(Instant::now(), limit));
        client
    }

    /// A clone whose calls end by `deadline` too (the earlier of it and this clone's).
    pub(crate) fn until(&self, deadline: Option<Instant>) -> Client {
        let mut client = self.clone();
        client.deadline = jobwire_core::deadline::earlier(self.deadline, deadline);
        client
    }

    /// When this client's calls must end, if [`within`](Self::within) set it.
    ///
    /// ```
    /// # let client = jobwire::Client::builder().build()?;
    /// assert!(client.deadline().is_none());
    /// assert!(client.within(std::time::Duration::from_secs(1)).deadline().is_some());
    /// # Ok::<(), jobwire::Error>(())
    /// ```
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the server is up, and its version.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// # let client = jobwire::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let health = client.health().await?;
    /// assert_eq!(health.status, "ok");
    /// # Ok(()) }
    /// ```
    pub async fn health(&self) -> Result<Health, Error> {
        self.execute(&GetHealth).await
    }
}
