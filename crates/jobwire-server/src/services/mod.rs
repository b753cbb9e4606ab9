//! Services and the handlers that run their jobs.
//!
//! A [`Handler`] is either async (runs on the event loop; right for waiting on timers or
//! I/O) or blocking (a plain `fn`, run on tokio's blocking pool; right for CPU-bound
//! work). The [`Registry`] maps service ids to handlers. Today it holds the built-ins;
//! services users register with their own handlers will be added to the same registry.

mod builtins;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use jobwire_core::{JobError, Service};
use serde_json::Value;

use crate::clock::{Clock, SystemClock};
pub(crate) use crate::runner::JobContext;
use crate::store::{Store, StoreError};

/// What a handler returns: the job's output, or why it failed.
pub(crate) type HandlerResult = Result<Value, JobError>;

/// A boxed handler future.
pub(crate) type HandlerFuture = Pin<Box<dyn Future<Output = HandlerResult> + Send + 'static>>;

type AsyncFn = dyn Fn(Value, JobContext) -> HandlerFuture + Send + Sync;
type BlockingFn = dyn Fn(Value, JobContext) -> HandlerResult + Send + Sync;

/// The code that runs a service's jobs. Cheap to clone.
#[derive(Clone)]
pub(crate) enum Handler {
    /// Runs as a task on the event loop; must not block.
    Async(Arc<AsyncFn>),
    /// Runs on the blocking pool; may take the CPU for as long as it needs.
    Blocking(Arc<BlockingFn>),
}

impl Handler {
    /// An async handler: `f(input, ctx)` returns a future of the output.
    pub(crate) fn from_async<F, Fut>(f: F) -> Self
    where
        F: Fn(Value, JobContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = HandlerResult> + Send + 'static,
    {
        Handler::Async(Arc::new(move |input, ctx| Box::pin(f(input, ctx))))
    }

    /// A blocking handler: `f(input, ctx)` computes the output on the blocking pool.
    pub(crate) fn from_blocking<F>(f: F) -> Self
    where
        F: Fn(Value, JobContext) -> HandlerResult + Send + Sync + 'static,
    {
        Handler::Blocking(Arc::new(f))
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
}

/// The handlers this server can run, by service id.
pub(crate) struct Registry {
    defs: Vec<ServiceDef>,
    by_id: HashMap<String, usize>,
}

impl Registry {
    /// The built-in services: `echo`, `sleep`, `fail`, `steps` and `digest`.
    pub(crate) fn builtin() -> Self {
        let defs = builtins::all();
        let by_id = defs
            .iter()
            .enumerate()
            .map(|(i, d)| (d.id.clone(), i))
            .collect();
        Registry { defs, by_id }
    }

    /// The handler of a service, if this server has one.
    pub(crate) fn handler(&self, service_id: &str) -> Option<Handler> {
        self.by_id
            .get(service_id)
            .and_then(|&i| self.defs.get(i))
            .map(|d| d.handler.clone())
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
            service.kind = "builtin".into();
            store.upsert_service(None, &service).await?;
        }
        Ok(())
    }
}
