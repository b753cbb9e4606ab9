//! [`ServiceSpec`]: a service of the embedding program's own, with its handler.

use std::future::Future;

use jobwire_core::JobError;
use serde_json::Value;

use super::{Handler, JobContext};

/// A service a program embedding the server brings: a name, an input schema, and the
/// code that runs its jobs. Register it with
/// [`ServerConfig::service`](crate::ServerConfig::service); every tenant can see it and
/// submit to it, like the built-ins.
///
/// An async handler runs on the server's event loop and must not block; cancelling its
/// job drops its future at its next `.await`. A blocking handler runs on tokio's blocking
/// pool and may take the CPU as long as it needs; it should look at
/// [`JobContext::is_cancelled`] now and then and return early. Either one reports
/// progress, log lines and output chunks through its [`JobContext`], and returns the
/// job's output or a [`JobError`](jobwire_core::JobError).
///
/// ```
/// use jobwire_server::{ServerConfig, ServiceSpec};
/// use serde_json::json;
///
/// let greet = ServiceSpec::async_fn("greet", |input, ctx| async move {
///     ctx.progress(0.5, "thinking");
///     let name = input["name"].as_str().unwrap_or("world").to_owned();
///     Ok(json!({ "greeting": format!("hello, {name}") }))
/// })
/// .description("Greets someone.")
/// .input_schema(json!({
///     "type": "object",
///     "properties": {"name": {"type": "string"}},
///     "required": ["name"]
/// }));
/// let count = ServiceSpec::blocking_fn("count", |input, ctx| {
///     let n = input["n"].as_u64().unwrap_or(0);
///     let mut i = 0;
///     while i < n && !ctx.is_cancelled() {
///         i += 1;
///     }
///     Ok(json!(i))
/// });
/// let config = ServerConfig::new().service(greet).service(count);
/// # let _ = config;
/// ```
#[derive(Clone)]
pub struct ServiceSpec {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) input_schema: Value,
    handler: Handler,
    max_concurrency: Option<usize>,
}

impl std::fmt::Debug for ServiceSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceSpec")
            .field("name", &self.name)
            .field("input_schema", &self.input_schema)
            .field("max_concurrency", &self.max_concurrency)
            .finish_non_exhaustive()
    }
}

impl ServiceSpec {
    /// A service named `name` whose jobs run `f(input, ctx)` on the event loop. The input
    /// schema starts as `{}` (anything).
    pub fn async_fn<F, Fut>(name: impl Into<String>, f: F) -> Self
    where
        F: Fn(Value, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, JobError>> + Send + 'static,
    {
        ServiceSpec::with_handler(name.into(), Handler::from_async(f))
    }

    /// A service named `name` whose jobs run `f(input, ctx)` on the server's worker pool. The
    /// input schema starts as `{}` (anything).
    pub fn blocking_fn<F>(name: impl Into<String>, f: F) -> Self
    where
        F: Fn(Value, JobContext) -> Result<Value, JobError> + Send + Sync + 'static,
    {
        ServiceSpec::with_handler(name.into(), Handler::from_blocking(f))
    }

    /// A service named `name` whose jobs each run `command`, a program: the input on its
    /// stdin, the output from its stdout, its stderr lines as log events (see
    /// [`Command`](crate::Command) for the whole protocol). A cancel stops the program's
    /// process group.
    pub fn command(name: impl Into<String>, command: crate::Command) -> Self {
        let handler = Handler::from_async(move |input, ctx| {
            let command = command.clone();
            async move { command.run(input, ctx).await }
        });
        ServiceSpec::with_handler(name.into(), handler)
    }

    fn with_handler(name: String, handler: Handler) -> Self {
        ServiceSpec {
            name,
            description: String::new(),
            input_schema: Value::Object(Default::default()),
            handler,
            max_concurrency: None,
        }
    }

    /// What the service does, for people (shown by `GET /v1/services`).
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = text.into();
        self
    }

    /// The JSON Schema every input must match; a submit whose input does not is refused
    /// with 422 and each failing field.
    pub fn input_schema(mut self, schema: Value) -> Self {
        self.input_schema = schema;
        self
    }

    /// The input schema derived from the Rust type the handler reads its input as, with
    /// `schemars` (`#[derive(JsonSchema)]`); nested types are inlined, so every part of
    /// the input is checked.
    ///
    /// ```
    /// use jobwire_server::ServiceSpec;
    /// use schemars::JsonSchema;
    /// use serde::Deserialize;
    ///
    /// #[derive(Deserialize, JsonSchema)]
    /// struct Resize {
    ///     url: String,
    ///     width: u32,
    ///     height: Option<u32>,
    /// }
    ///
    /// let spec = ServiceSpec::async_fn("resize", |input, _ctx| async move {
    ///     let resize: Resize = serde_json::from_value(input)
    ///         .map_err(|e| jobwire_core::JobError::new(e.to_string()))?;
    ///     Ok(serde_json::json!({ "url": resize.url, "width": resize.width }))
    /// })
    /// .input_schema_for::<Resize>();
    /// # let _ = spec;
    /// ```
    pub fn input_schema_for<T: schemars::JsonSchema>(self) -> Self {
        let generator = schemars::generate::SchemaSettings::draft2020_12()
            .with(|settings| settings.inline_subschemas = true)
            .into_generator();
        let schema = generator.into_root_schema_for::<T>();
        self.input_schema(schema.to_value())
    }

    /// The service's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs at most `n` of the service's jobs at once; the others wait `queued` for
    /// one to end. Refused at start when `n` is 0.
    ///
    /// ```
    /// use jobwire_server::ServiceSpec;
    /// let gpu = ServiceSpec::blocking_fn("render", |input, _ctx| Ok(input)).max_concurrency(1);
    /// # let _ = gpu;
    /// ```
    pub fn max_concurrency(mut self, n: usize) -> Self {
        self.max_concurrency = Some(n);
        self
    }

    /// Declares the handler side-effect free: running a job has no effect besides its
    /// output and its reports (no write elsewhere, no message sent, no money spent).
    ///
    /// The server may then run a job's handler within the submit, before the job is
    /// stored: a job whose handler finishes within the submit's short budget (an async
    /// handler that returns without waiting, say) is stored once, already finished, with
    /// all its events — one durable write instead of two. The price is that the handler
    /// may run for a submit the store then refuses (its `Idempotency-Key` used
    /// meanwhile, its tenant at its limit or quota), or run again when the server stops
    /// before the job is stored and the client repeats the submit; the result of such a
    /// run is dropped. A handler that has any other effect must not be declared so.
    /// Ignored with [`max_concurrency`](Self::max_concurrency): such jobs wait for a slot.
    ///
    /// ```
    /// use jobwire_server::ServiceSpec;
    /// use serde_json::json;
    ///
    /// let add = ServiceSpec::async_fn("add", |input, _ctx| async move {
    ///     let sum = input["a"].as_i64().unwrap_or(0) + input["b"].as_i64().unwrap_or(0);
    ///     Ok(json!({ "sum": sum }))
    /// })
    /// .side_effect_free();
    /// # let _ = add;
    /// ```
    pub fn side_effect_free(mut self) -> Self {
        self.handler = self.handler.side_effect_free();
        self
    }

    /// The handler the server runs the jobs with.
    pub(crate) fn handler(&self) -> Handler {
        match self.max_concurrency {
            Some(n) => self.handler.clone().at_most(n),
            None => self.handler.clone(),
        }
    }

    /// Why this spec cannot be served, if it cannot.
    pub(crate) fn problem(&self) -> Option<String> {
        let name = &self.name;
        if !super::registration::is_valid_name(name) {
            return Some(format!(
                "service name {name:?} must be 1 to 64 of a-z, 0-9, '_' and '-'"
            ));
        }
        if let Err(e) = jobwire_core::schema::InputSchema::new(&self.input_schema) {
            return Some(format!(
                "the input schema of {name} is not a valid JSON Schema: at {:?}, {}",
                e.pointer, e.message
            ));
        }
        if self.max_concurrency == Some(0) {
            return Some(format!(
                "the concurrency limit of {name} must be at least 1"
            ));
        }
        None
    }
}
