//! Services: reading one, registering and retiring command services, and a handle to
//! submit jobs to.

use jobwire_core::create_or_get::{CreateOrGet, CreateOrGetStep};
use jobwire_core::endpoint::{CreateService, DeleteService, GetService};
use jobwire_core::options::RunOptions;
use jobwire_core::outcome::input_value;
use jobwire_core::{Error, Service, ServiceSpec, SubmitOptions};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{Client, JobHandle, RunStream};

/// A service, as fetched by [`Client::service`], bound to the client that fetched it.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
/// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
/// let sleep = client.service("sleep")?;
/// println!("{} takes {}", sleep.name(), sleep.input_schema());
/// let job = sleep.submit(&serde_json::json!({"duration_seconds": 0.1}))?;
/// # let _ = job;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct ServiceHandle {
    pub(crate) client: Client,
    pub(crate) service: Service,
    /// Its inputs' check before they are sent, compiled when first used.
    #[cfg(feature = "validation")]
    pub(crate) input_check: jobwire_core::schema::InputCheck,
}

impl Client {
    /// A service by id (`svc_…`) or by name; [`Error::NotFound`] when there is none.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let echo = client.service("echo")?;
    /// assert!(echo.id().starts_with("svc_"));
    /// assert!(matches!(client.service("nope"), Err(jobwire_blocking::Error::NotFound { .. })));
    /// # Ok(()) }
    /// ```
    pub fn service(&self, id_or_name: &str) -> Result<ServiceHandle, Error> {
        let service = self.execute(&GetService::new(id_or_name))?;
        Ok(self.service_handle(service))
    }

    /// Registers a command service (see [`ServiceSpec`]) and returns its handle.
    /// [`Error::Forbidden`] when the server runs no programs (it was started without
    /// `--allow-commands`), [`Error::Conflict`] when a service the caller can see has
    /// the name, [`Error::Validation`] with each invalid field otherwise.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new().allow_commands(true))?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use jobwire_blocking::{CommandSpec, ServiceSpec};
    /// let spec = ServiceSpec::command("copy", CommandSpec::new("cat"));
    /// let copy = client.create_service(&spec)?;
    /// let out: serde_json::Value = copy.run(&serde_json::json!({"n": 1}))?;
    /// assert_eq!(out, serde_json::json!({"n": 1}));
    /// assert!(matches!(client.create_service(&spec), Err(jobwire_blocking::Error::Conflict { .. })));
    /// # Ok(()) }
    /// ```
    pub fn create_service(&self, spec: &ServiceSpec) -> Result<ServiceHandle, Error> {
        let service = self.execute(&CreateService::new(spec.clone()))?;
        Ok(self.service_handle(service))
    }

    /// The service named `spec.name`: created from `spec` if there is none, else the one
    /// there is (as it is: its spec is not compared with `spec`). Safe when several
    /// callers race: one creates it, every one gets that service (the core's
    /// [`CreateOrGet`] decides).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new().allow_commands(true))?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use jobwire_blocking::{CommandSpec, ServiceSpec};
    /// let spec = ServiceSpec::command("copy", CommandSpec::new("cat"));
    /// let first = client.create_or_get_service(&spec)?;
    /// let again = client.create_or_get_service(&spec)?;
    /// assert_eq!(first.id(), again.id());
    /// # Ok(()) }
    /// ```
    pub fn create_or_get_service(&self, spec: &ServiceSpec) -> Result<ServiceHandle, Error> {
        let mut plan = CreateOrGet::new();
        loop {
            let answer = match plan.next_step() {
                CreateOrGetStep::Create => self.execute(&CreateService::new(spec.clone())),
                CreateOrGetStep::Get => self.execute(&GetService::new(&spec.name)),
                CreateOrGetStep::Done(service) => return service.map(|s| self.service_handle(*s)),
            };
            plan.observe(answer);
        }
    }

    fn service_handle(&self, service: Service) -> ServiceHandle {
        ServiceHandle {
            client: self.clone(),
            service,
            #[cfg(feature = "validation")]
            input_check: Default::default(),
        }
    }
}

impl ServiceHandle {
    /// The service's id (`svc_…`).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let echo = client.service("echo")?;
    /// let same = client.service(echo.id())?;
    /// assert_eq!(same.name(), "echo");
    /// # Ok(()) }
    /// ```
    pub fn id(&self) -> &str {
        &self.service.id
    }

    /// The service's unique name.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// assert_eq!(client.service("echo")?.name(), "echo");
    /// # Ok(()) }
    /// ```
    pub fn name(&self) -> &str {
        &self.service.name
    }

    /// The JSON Schema every input is validated against.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let sleep = client.service("sleep")?;
    /// assert_eq!(sleep.input_schema()["required"][0], "duration_seconds");
    /// # Ok(()) }
    /// ```
    pub fn input_schema(&self) -> &serde_json::Value {
        &self.service.input_schema
    }

    /// Everything the server said about the service.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let echo = client.service("echo")?;
    /// assert!(!echo.info().created_at.is_empty());
    /// # Ok(()) }
    /// ```
    pub fn info(&self) -> &Service {
        &self.service
    }

    /// Submits a job on `input` (a serde type or a `serde_json::Value`) without waiting.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let sleep = client.service("sleep")?;
    /// let mut job = sleep.submit(&serde_json::json!({"duration_seconds": 0.1}))?;
    /// assert_eq!(job.wait()?.status, jobwire_blocking::JobStatus::Succeeded);
    /// # Ok(()) }
    /// ```
    pub fn submit<I: Serialize + ?Sized>(&self, input: &I) -> Result<JobHandle, Error> {
        self.submit_with(input, SubmitOptions::default())
    }

    /// Submits with options: a server-side wait, labels, an idempotency key.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use jobwire_blocking::SubmitOptions;
    /// let echo = client.service("echo")?;
    /// let job = echo.submit_with(&1, SubmitOptions::default().label("team", "data"))?;
    /// assert_eq!(job.job().labels["team"], "data");
    /// # Ok(()) }
    /// ```
    pub fn submit_with<I: Serialize + ?Sized>(
        &self,
        input: &I,
        options: SubmitOptions,
    ) -> Result<JobHandle, Error> {
        let input = self.input(input)?;
        self.client.submit_with(&self.service.id, &input, options)
    }

    /// Submits a job and waits for its typed result (see [`Client::run`]).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// #[derive(serde::Deserialize)]
    /// struct Slept { slept: f64 }
    /// let sleep = client.service("sleep")?;
    /// let out: Slept = sleep.run(&serde_json::json!({"duration_seconds": 0.1}))?;
    /// assert_eq!(out.slept, 0.1);
    /// # Ok(()) }
    /// ```
    pub fn run<I: Serialize + ?Sized, O: DeserializeOwned>(&self, input: &I) -> Result<O, Error> {
        self.run_with(input, RunOptions::default())
    }

    /// [`run`](Self::run) with options (see [`Client::run_with`]): labels, an
    /// idempotency key, a server-side wait, a timeout, per-call settings.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let echo = client.service("echo")?;
    /// let options = jobwire_blocking::RunOptions::default().idempotency_key("nightly-2026-12-04");
    /// let out: u32 = echo.run_with(&5, options)?;
    /// assert_eq!(out, 5);
    /// # Ok(()) }
    /// ```
    pub fn run_with<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        input: &I,
        options: RunOptions,
    ) -> Result<O, Error> {
        let input = self.input(input)?;
        self.client.run_with(&self.service.id, &input, options)
    }

    /// Runs a job and streams its events, then its typed result (see
    /// [`Client::run_stream`]).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let steps = client.service("steps")?;
    /// let items = steps.run_stream::<_, serde_json::Value>(&serde_json::json!({"steps": 2, "interval_ms": 1})).count();
    /// assert!(items >= 4, "submitted, events, done");
    /// # Ok(()) }
    /// ```
    pub fn run_stream<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        input: &I,
    ) -> RunStream<O> {
        self.run_stream_with(input, RunOptions::default())
    }

    /// [`run_stream`](Self::run_stream) with options (see [`Client::run_stream_with`]).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let echo = client.service("echo")?;
    /// let options = jobwire_blocking::RunOptions::default().label("team", "data");
    /// let last = echo.run_stream_with::<_, u32>(&3, options).last();
    /// assert!(matches!(last, Some(Ok(jobwire_blocking::RunEvent::Done(3)))));
    /// # Ok(()) }
    /// ```
    pub fn run_stream_with<I: Serialize + ?Sized, O: DeserializeOwned>(
        &self,
        input: &I,
        options: RunOptions,
    ) -> RunStream<O> {
        self.client
            .run_stream_of(&self.service.id, self.input(input), options)
    }

    /// Checks `input` against the service's input schema (JSON Schema 2020-12, compiled
    /// once per handle) without sending anything: the [`Error::Validation`] the server
    /// would answer, one [`FieldError`](jobwire_core::FieldError) per failing field.
    /// `submit`, `run`, `run_stream` and the batches of this handle check each input so
    /// before they send it. Cargo feature `validation`.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new())?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// let sleep = client.service("sleep")?;
    /// let bad = serde_json::json!({"duration_seconds": "soon"});
    /// let Err(jobwire_blocking::Error::Validation { problem }) = sleep.validate(&bad) else { panic!() };
    /// assert_eq!(problem.errors[0].pointer, "/duration_seconds");
    /// assert!(matches!(sleep.submit(&bad), Err(jobwire_blocking::Error::Validation { .. })), "not sent");
    /// # Ok(()) }
    /// ```
    #[cfg(feature = "validation")]
    pub fn validate<I: Serialize + ?Sized>(&self, input: &I) -> Result<(), Error> {
        self.input_check.check(&self.service, &input_value(input)?)
    }

    /// `input` as JSON, to send — checked first with feature `validation`.
    fn input<I: Serialize + ?Sized>(&self, input: &I) -> Result<serde_json::Value, Error> {
        let input = input_value(input)?;
        #[cfg(feature = "validation")]
        self.input_check.check(&self.service, &input)?;
        Ok(input)
    }

    /// Retires the service (one this client's tenant registered): it is no longer
    /// listed, a submit to it answers 410, its name is free again, and its jobs stay
    /// readable; jobs already running finish. Deleting it twice is fine.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let server = jobwire_server::spawn_blocking_server(jobwire_server::ServerConfig::new().allow_commands(true))?;
    /// # let client = jobwire_blocking::Client::builder().base_url(server.url()).token(server.token()).build()?;
    /// use jobwire_blocking::{CommandSpec, ServiceSpec};
    /// let copy = client.create_service(&ServiceSpec::command("copy", CommandSpec::new("cat")))?;
    /// copy.delete()?;
    /// copy.delete()?;
    /// assert!(matches!(client.service("copy"), Err(jobwire_blocking::Error::NotFound { .. })));
    /// # Ok(()) }
    /// ```
    pub fn delete(&self) -> Result<(), Error> {
        self.client.execute(&DeleteService::new(&self.service.id))
    }
}
