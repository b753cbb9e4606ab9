//! Services and the handlers that run their jobs.
//!
//! A [`Handler`] is either async (runs on the event loop; right for waiting on timers or
//! I/O) or blocking (a plain `fn`, run on the server's worker pool; right for CPU-bound
//! work), with an optional limit on how many of its jobs run at once. The [`Registry`]
//! finds the handler of a service: the built-ins and the embedding program's own by id,
//! and the command services tenants register ([`registration`]) from their stored spec.

mod builtins;
mod command;
mod isolation;
pub(crate) mod launcher;
mod program;
pub(crate) mod registration;
mod spec;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobwire_core::schema::InputSchema;
use jobwire_core::{FieldError, JobError, Service};
use serde_json::Value;
use tokio::sync::Semaphore;

use crate::clock::{Clock, SystemClock};
use crate::locking::lock;
pub use crate::runner::JobContext;
use crate::store::{Store, StoreError};
pub use command::{Command, PROGRESS_PREFIX};
pub use isolation::CommandLimits;
pub(crate) use isolation::{CommandPolicy, CommandSettings};
pub use spec::ServiceSpec;

/// What a handler returns: the job's output, or why it failed.
pub(crate) type HandlerResult = Result<Value, JobError>;

/// A boxed handler future.
pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send + 'static>>;

type AsyncFn = dyn Fn(Value, JobContext) -> HandlerFuture + Send + Sync;
type BlockingFn = dyn Fn(Value, JobContext) -> HandlerResult + Send + Sync;

/// How a handler's code runs.
#[derive(Clone)]
pub(crate) enum Run {
    /// As a task on the event loop; must not block.
    Async(Arc<AsyncFn>),
    /// On the worker pool; may take the CPU for as long as it needs.
    Blocking(Arc<BlockingFn>),
}

/// The code that runs a service's jobs, and how many may run at once. Cheap to clone
/// (clones share the limit).
#[derive(Clone)]
pub(crate) struct Handler {
    pub(crate) run: Run,
    /// One permit per job that may run at once; `None`: no limit.
    slots: Option<Arc<Semaphore>>,
    /// Running it has no effect besides its output and reports, so the server may run
    /// it within the submit, before the job is stored (see the runner's admission).
    side_effect_free: bool,
}

impl Handler {
    /// An async handler: `f(input, ctx)` returns a future of the output.
    pub(crate) fn from_async<F, Fut>(f: F) -> Self
    where
        F: Fn(Value, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        Handler {
            run: Run::Async(Arc::new(move |input, ctx| Box::pin(f(input, ctx)))),
            slots: None,
            side_effect_free: false,
        }
    }

    /// A blocking handler: `f(input, ctx)` computes the output on the worker pool.
    pub(crate) fn from_blocking<F>(f: F) -> Self
    where
        F: Fn(Value, JobContext) -> HandlerResult + Send + Sync + 'static,
    {
        Handler {
            run: Run::Blocking(Arc::new(f)),
            slots: None,
            side_effect_free: false,
        }
    }

    /// The same code, with at most `n` jobs running at once (on this server).
    pub(crate) fn at_most(mut self, n: usize) -> Self {
        self.slots = Some(Arc::new(Semaphore::new(n)));
        self
    }

    /// The same code, declared side-effect free: running a job has no effect besides its
    /// output and reports, so running it for a job the store then refuses (or twice, once
    /// for a submit that was never answered) changes nothing anyone can see.
    pub(crate) fn side_effect_free(mut self) -> Self {
        self.side_effect_free = true;
        self
    }

    /// Whether the handler is declared side-effect free.
    pub(crate) fn is_side_effect_free(&self) -> bool {
        self.side_effect_free
    }

    /// The permits of a limited handler: a job runs while it holds one.
    pub(crate) fn slots(&self) -> Option<&Arc<Semaphore>> {
        self.slots.as_ref()
    }

    /// The handler of a command service: runs `spec`'s program per job, with `isolation`.
    fn for_command(spec: &jobwire_core::CommandSpec, isolation: Arc<isolation::Isolation>) -> Self {
        let command = Command::from_spec(spec, isolation);
        let handler = Handler::from_async(move |input, ctx| {
            let command = command.clone();
            async move { command.run(input, ctx).await }
        });
        match spec.max_concurrency {
            Some(n) => handler.at_most(n as usize),
            None => handler,
        }
    }
}

/// A service as the server defines it: what the API shows, plus its handler.
pub(crate) struct ServiceDef {
    /// Stable id (`svc_…`).
    pub id: String,
    /// Unique name.
    pub name: String,
    /// For people.
    pub description: String,
    /// JSON Schema of the input.
    pub input_schema: Value,
    /// Runs the jobs.
    pub handler: Handler,
    /// `builtin`, or `embedded` for a service of the embedding program.
    pub kind: &'static str,
}

/// The handlers this server can run, by service id.
pub(crate) struct Registry {
    defs: Vec<ServiceDef>,
    by_id: HashMap<String, usize>,
    /// Whose command services this server registers and runs, and how.
    commands: CommandPolicy,
    /// The handlers of command services made so far, so each keeps one concurrency
    /// limit (a service's spec never changes: a new spec is a new service).
    command_handlers: Mutex<HashMap<String, Handler>>,
}

impl Registry {
    /// The built-in services (`echo`, `sleep`, `fail`, `steps` and `digest`) and the
    /// embedding program's own `specs`; refused when a spec is not servable or two
    /// services share a name. The command services of the tenants `commands` allows run
    /// here too.
    pub(crate) fn new(specs: &[ServiceSpec], commands: CommandPolicy) -> Result<Self, String> {
        let mut defs = builtins::all();
        for spec in specs {
            if let Some(problem) = spec.problem() {
                return Err(problem);
            }
            if defs.iter().any(|d| d.name == spec.name) {
                return Err(format!("two services are named {:?}", spec.name));
            }
            defs.push(ServiceDef {
                id: format!("svc_{}", spec.name),
                name: spec.name.clone(),
                description: spec.description.clone(),
                input_schema: spec.input_schema.clone(),
                handler: spec.handler(),
                kind: "embedded",
            });
        }
        Ok(Registry::with(defs, commands))
    }

    fn with(defs: Vec<ServiceDef>, commands: CommandPolicy) -> Self {
        let by_id = defs
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.clone(), i))
            .collect();
        Registry {
            defs,
            by_id,
            commands,
            command_handlers: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `tenant` may register command services here: `Err` with why not.
    pub(crate) fn allows_commands_for(&self, tenant: &str) -> Result<(), String> {
        if self.commands.tenants.allow(tenant) {
            Ok(())
        } else {
            Err(self.commands.tenants.refusal(tenant))
        }
    }

    /// The handler of `tenant`'s `service`, if this server runs it: its own services by
    /// id, a command service from its spec when the tenant's commands are allowed (a
    /// tenant taken off the list has its registered programs run no more).
    pub(crate) fn handler(&self, tenant: &str, service: &Service) -> Option<Handler> {
        if let Some(def) = self.by_id.get(&service.id).and_then(|&i| self.defs.get(i)) {
            return Some(def.handler.clone());
        }
        let spec = service
            .command
            .as_ref()
            .filter(|_| self.commands.tenants.allow(tenant))?;
        let mut handlers = lock(&self.command_handlers);
        let handler = handlers
            .entry(service.id.clone())
            .or_insert_with(|| Handler::for_command(spec, self.commands.isolation.clone()));
        Some(handler.clone())
    }

    /// Drops what it made for a retired command service.
    pub(crate) fn forget(&self, service_id: &str) {
        lock(&self.command_handlers).remove(service_id);
    }

    /// Saves the registered services to the store as global services, keeping the
    /// creation time of those already there.
    pub(crate) async fn seed(&self, store: &dyn Store) -> Result<(), StoreError> {
        for def in &self.defs {
            let created_at = store
                .find_service("", &def.id)
                .await?
                .filter(|s| s.id == def.id)
                .map_or_else(|| SystemClock.now_rfc3339(), |s| s.created_at);
            let mut service = Service::new(
                def.id.clone(),
                def.name.clone(),
                def.input_schema.clone(),
                created_at,
            );
            service.description = def.description.clone();
            service.kind = def.kind.into();
            store.upsert_service(None, &service).await?;
        }
        Ok(())
    }
}

/// Services recently found, so a submit does not read the store for its service each
/// time (services change rarely; jobs are submitted all the time).
///
/// Only services found are kept, for [`SERVICE_TTL`]: a service created anywhere is seen
/// at once, a change or removal made through another server within that time.
pub(crate) struct ServiceCache {
    found: Mutex<HashMap<(String, String), Found>>,
}

/// A found service, shared (it carries its whole input schema), and when it was found.
type Found = (Arc<FoundService>, Instant);

/// A service as a submit needs it: with its input schema compiled, once per find.
pub(crate) struct FoundService {
    pub(crate) service: Service,
    /// The checker of inputs, or why the stored schema is none (one a server of an
    /// older version accepted).
    pub(crate) input: Result<InputSchema, FieldError>,
}

impl std::ops::Deref for FoundService {
    type Target = Service;

    fn deref(&self) -> &Service {
        &self.service
    }
}

impl FoundService {
    fn new(service: Service) -> Self {
        let input = InputSchema::new(&service.input_schema);
        FoundService { service, input }
    }
}

/// How long a found service is answered from memory.
pub(crate) const SERVICE_TTL: Duration = Duration::from_secs(1);
/// Most entries kept; past it the cache starts over (tenants × names is unbounded).
const MAX_CACHED_SERVICES: usize = 10_000;

impl ServiceCache {
    /// An empty cache.
    pub(crate) fn new() -> Self {
        ServiceCache {
            found: Mutex::new(HashMap::new()),
        }
    }

    /// The service with this id or name that `tenant` can see, from memory when it was
    /// found less than [`SERVICE_TTL`] ago, else from `store`.
    pub(crate) async fn find(
        &self,
        store: &dyn Store,
        tenant: &str,
        id_or_name: &str,
    ) -> Result<Option<Arc<FoundService>>, StoreError> {
        let key = (tenant.to_owned(), id_or_name.to_owned());
        let now = Instant::now();
        if let Some((service, at)) = lock(&self.found).get(&key) {
            if now.duration_since(*at) < SERVICE_TTL {
                // Shared, not copied: a service carries its whole input schema.
                return Ok(Some(service.clone()));
            }
        }
        let found = store
            .find_service(tenant, id_or_name)
            .await?
            .map(|service| Arc::new(FoundService::new(service)));
        if let Some(service) = &found {
            let mut cached = lock(&self.found);
            if cached.len() >= MAX_CACHED_SERVICES {
                cached.clear();
            }
            cached.insert(key, (service.clone(), now));
        }
        Ok(found)
    }

    /// Forgets `service_id` (retired through this server): found no more from now on.
    pub(crate) fn forget(&self, service_id: &str) {
        lock(&self.found).retain(|_, (service, _)| service.id != service_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::EventBus;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn found_services_are_kept_for_a_moment_and_misses_never() {
        let store = MemoryStore::new(u64::MAX, Arc::new(EventBus::new(16)));
        let cache = ServiceCache::new();
        assert!(cache.find(&store, "t", "mine").await.unwrap().is_none());
        let service = Service::new("svc_m", "mine", serde_json::json!({}), "now");
        store.upsert_service(Some("t"), &service).await.unwrap();
        // A miss was not kept: the new service is found at once.
        let found = cache.find(&store, "t", "mine").await.unwrap().unwrap();
        assert_eq!(found.description, "");
        let mut changed = service.clone();
        changed.description = "changed".into();
        store.upsert_service(Some("t"), &changed).await.unwrap();
        let cached = cache.find(&store, "t", "mine").await.unwrap().unwrap();
        assert_eq!(cached.description, "", "kept for a moment");
        tokio::time::sleep(SERVICE_TTL).await;
        let fresh = cache.find(&store, "t", "mine").await.unwrap().unwrap();
        assert_eq!(fresh.description, "changed");
        assert!(cache.find(&store, "other", "mine").await.unwrap().is_none());
    }
}
