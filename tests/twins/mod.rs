//! Both facades behind one test interface, so a scenario is written once and run through
//! each: [`Sdk`], [`Service`], [`Job`] and [`Guard`] are the SDK calls the scenarios
//! make, each implemented for `jobwire-blocking` as the call itself and for `jobwire` as
//! the call awaited on a runtime of the test's. Nothing here decides anything: every
//! method is one SDK call, so a scenario that passes through one facade and fails
//! through the other has found a difference between them.
#![allow(dead_code)]

use std::time::Duration;

use futures_util::StreamExt;
use jobwire_core::batch::{BatchEvent, BatchReport};
use jobwire_core::event::JobEvent;
use jobwire_core::{Error, JobStatus, Page, ServiceSpec};
use serde_json::Value;
use tokio::runtime::Runtime;

/// A progress hook, as both facades' batches take it.
pub type Hook = Box<dyn Fn(&BatchEvent) + Send + Sync>;

/// A client of one facade.
pub trait Sdk {
    /// Its service handle.
    type Service: Service<Job = Self::Job>;
    /// Its job handle.
    type Job: Job;
    /// Its job guard.
    type Guard: Guard<Job = Self::Job>;

    /// Which facade this is, for messages.
    fn name(&self) -> &'static str;
    fn service(&self, name: &str) -> Result<Self::Service, Error>;
    fn create_service(&self, spec: &ServiceSpec) -> Result<Self::Service, Error>;
    fn create_or_get_service(&self, spec: &ServiceSpec) -> Result<Self::Service, Error>;
    fn submit(&self, service: &str, input: &Value) -> Result<Self::Job, Error>;
    fn run(&self, service: &str, input: &Value) -> Result<Value, Error>;
    fn job(&self, id: &str) -> Result<Self::Job, Error>;
    /// One page of the jobs of `service`, at most `limit`.
    fn jobs_page(&self, service: &str, limit: u32) -> Result<Page<jobwire_core::Job>, Error>;
    /// Every service named `name`, walked page by page.
    fn services_named(&self, name: &str) -> Result<Vec<jobwire_core::Service>, Error>;
    fn guard(&self) -> Self::Guard;
    fn health(&self) -> Result<jobwire_core::Health, Error>;
    /// `within(limit).run(service, input)`.
    fn run_within(&self, limit: Duration, service: &str, input: &Value) -> Result<Value, Error>;
}

/// A service handle of one facade.
pub trait Service: std::fmt::Debug {
    type Job: Job;
    fn id(&self) -> &str;
    fn info(&self) -> &jobwire_core::Service;
    fn delete(&self) -> Result<(), Error>;
    fn submit(&self, input: &Value) -> Result<Self::Job, Error>;
    fn run(&self, input: &Value) -> Result<Value, Error>;
    /// `run_all(inputs)`, with `concurrency` and `on_event` when given, `.collect()`.
    fn run_all(
        &self,
        inputs: Vec<Value>,
        concurrency: Option<usize>,
        hook: Option<Hook>,
    ) -> BatchReport<Value>;
    /// `run_all(inputs).concurrency(n).try_collect()`.
    fn try_run_all(&self, inputs: Vec<Value>, concurrency: usize) -> Result<Vec<Value>, Error>;
    /// `run_unordered(inputs).concurrency(n).results()`, read to the end.
    fn run_unordered(
        &self,
        inputs: Vec<Value>,
        concurrency: usize,
    ) -> Vec<(usize, Result<Value, Error>)>;
}

/// A job handle of one facade.
pub trait Job: std::fmt::Debug {
    fn id(&self) -> &str;
    fn status(&self) -> &JobStatus;
    fn job(&self) -> &jobwire_core::Job;
    fn refresh(&mut self) -> Result<jobwire_core::Job, Error>;
    fn wait(&mut self) -> Result<jobwire_core::Job, Error>;
    fn cancel(&mut self) -> Result<jobwire_core::Job, Error>;
    fn wait_for(&mut self, timeout: Duration) -> Result<jobwire_core::Job, Error>;
    fn result(&mut self) -> Result<Value, Error>;
    /// `events()`, as an iterator.
    fn events(&self) -> Box<dyn Iterator<Item = Result<JobEvent, Error>>>;
}

/// A job guard of one facade; dropping it cancels its jobs.
pub trait Guard {
    type Job;
    fn add(&mut self, job: Self::Job) -> Self::Job;
    fn disarm(self);
}

/// `jobwire-blocking`: every method is the call itself.
pub struct Blocking(pub jobwire_blocking::Client);

impl Sdk for Blocking {
    type Service = jobwire_blocking::ServiceHandle;
    type Job = jobwire_blocking::JobHandle;
    type Guard = jobwire_blocking::JobGuard;

    fn name(&self) -> &'static str {
        "jobwire-blocking"
    }
    fn service(&self, name: &str) -> Result<Self::Service, Error> {
        self.0.service(name)
    }
    fn create_service(&self, spec: &ServiceSpec) -> Result<Self::Service, Error> {
        self.0.create_service(spec)
    }
    fn create_or_get_service(&self, spec: &ServiceSpec) -> Result<Self::Service, Error> {
        self.0.create_or_get_service(spec)
    }
    fn submit(&self, service: &str, input: &Value) -> Result<Self::Job, Error> {
        self.0.submit(service, input)
    }
    fn run(&self, service: &str, input: &Value) -> Result<Value, Error> {
        self.0.run(service, input)
    }
    fn job(&self, id: &str) -> Result<Self::Job, Error> {
        self.0.get_job(id)
    }
    fn jobs_page(&self, service: &str, limit: u32) -> Result<Page<jobwire_core::Job>, Error> {
        self.0.jobs().service(service).limit(limit).page()
    }
    fn services_named(&self, name: &str) -> Result<Vec<jobwire_core::Service>, Error> {
        self.0.services().name(name).items().collect()
    }
    fn guard(&self) -> Self::Guard {
        self.0.guard()
    }
    fn health(&self) -> Result<jobwire_core::Health, Error> {
        self.0.health()
    }
    fn run_within(&self, limit: Duration, service: &str, input: &Value) -> Result<Value, Error> {
        self.0.within(limit).run(service, input)
    }
}

impl Service for jobwire_blocking::ServiceHandle {
    type Job = jobwire_blocking::JobHandle;
    fn id(&self) -> &str {
        self.id()
    }
    fn info(&self) -> &jobwire_core::Service {
        self.info()
    }
    fn delete(&self) -> Result<(), Error> {
        self.delete()
    }
    fn submit(&self, input: &Value) -> Result<Self::Job, Error> {
        self.submit(input)
    }
    fn run(&self, input: &Value) -> Result<Value, Error> {
        self.run(input)
    }
    fn run_all(
        &self,
        inputs: Vec<Value>,
        concurrency: Option<usize>,
        hook: Option<Hook>,
    ) -> BatchReport<Value> {
        let mut batch = self.run_all(inputs);
        if let Some(n) = concurrency {
            batch = batch.concurrency(n);
        }
        if let Some(hook) = hook {
            batch = batch.on_event(hook);
        }
        batch.collect()
    }
    fn try_run_all(&self, inputs: Vec<Value>, concurrency: usize) -> Result<Vec<Value>, Error> {
        self.run_all(inputs).concurrency(concurrency).try_collect()
    }
    fn run_unordered(
        &self,
        inputs: Vec<Value>,
        concurrency: usize,
    ) -> Vec<(usize, Result<Value, Error>)> {
        self.run_unordered(inputs)
            .concurrency(concurrency)
            .results()
            .collect()
    }
}

impl Job for jobwire_blocking::JobHandle {
    fn id(&self) -> &str {
        self.id()
    }
    fn status(&self) -> &JobStatus {
        self.status()
    }
    fn job(&self) -> &jobwire_core::Job {
        self.job()
    }
    fn refresh(&mut self) -> Result<jobwire_core::Job, Error> {
        self.refresh().cloned()
    }
    fn wait(&mut self) -> Result<jobwire_core::Job, Error> {
        self.wait().cloned()
    }
    fn cancel(&mut self) -> Result<jobwire_core::Job, Error> {
        self.cancel().cloned()
    }
    fn wait_for(&mut self, timeout: Duration) -> Result<jobwire_core::Job, Error> {
        self.wait_for(timeout).cloned()
    }
    fn result(&mut self) -> Result<Value, Error> {
        self.result()
    }
    fn events(&self) -> Box<dyn Iterator<Item = Result<JobEvent, Error>>> {
        Box::new(self.events())
    }
}

impl Guard for jobwire_blocking::JobGuard {
    type Job = jobwire_blocking::JobHandle;
    fn add(&mut self, job: Self::Job) -> Self::Job {
        self.add(job)
    }
    fn disarm(self) {
        self.disarm()
    }
}

/// `jobwire`: every method is the call awaited on the test's runtime (whose worker
/// threads run the client's own tasks: the shared event stream, a guard's cancels).
pub struct Async {
    pub client: jobwire::Client,
    pub runtime: &'static Runtime,
}

/// A multi-thread runtime for the async facade's calls, one per test binary.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: std::sync::OnceLock<Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

/// An async handle with the runtime its calls are awaited on.
#[derive(Debug)]
pub struct On<T> {
    inner: T,
    runtime: &'static Runtime,
}

/// An async guard, dropped inside the runtime so that its cancels can be spawned.
pub struct AsyncGuard {
    guard: Option<jobwire::JobGuard>,
    runtime: &'static Runtime,
}

impl Drop for AsyncGuard {
    fn drop(&mut self) {
        let _inside = self.runtime.enter();
        drop(self.guard.take());
    }
}

impl Sdk for Async {
    type Service = On<jobwire::ServiceHandle>;
    type Job = On<jobwire::JobHandle>;
    type Guard = AsyncGuard;

    fn name(&self) -> &'static str {
        "jobwire"
    }
    fn service(&self, name: &str) -> Result<Self::Service, Error> {
        self.on(self.runtime.block_on(self.client.service(name)))
    }
    fn create_service(&self, spec: &ServiceSpec) -> Result<Self::Service, Error> {
        self.on(self.runtime.block_on(self.client.create_service(spec)))
    }
    fn create_or_get_service(&self, spec: &ServiceSpec) -> Result<Self::Service, Error> {
        self.on(self
            .runtime
            .block_on(self.client.create_or_get_service(spec)))
    }
    fn submit(&self, service: &str, input: &Value) -> Result<Self::Job, Error> {
        self.on(self.runtime.block_on(self.client.submit(service, input)))
    }
    fn run(&self, service: &str, input: &Value) -> Result<Value, Error> {
        self.runtime.block_on(self.client.run(service, input))
    }
    fn job(&self, id: &str) -> Result<Self::Job, Error> {
        self.on(self.runtime.block_on(self.client.get_job(id)))
    }
    fn jobs_page(&self, service: &str, limit: u32) -> Result<Page<jobwire_core::Job>, Error> {
        let list = self.client.jobs().service(service).limit(limit);
        self.runtime.block_on(list.page())
    }
    fn services_named(&self, name: &str) -> Result<Vec<jobwire_core::Service>, Error> {
        let items = self.client.services().name(name).items();
        let all: Vec<_> = self.runtime.block_on(items.collect());
        all.into_iter().collect()
    }
    fn guard(&self) -> Self::Guard {
        AsyncGuard {
            guard: Some(self.client.guard()),
            runtime: self.runtime,
        }
    }
    fn health(&self) -> Result<jobwire_core::Health, Error> {
        self.runtime.block_on(self.client.health())
    }
    fn run_within(&self, limit: Duration, service: &str, input: &Value) -> Result<Value, Error> {
        self.runtime
            .block_on(self.client.within(limit).run(service, input))
    }
}

impl Async {
    fn on<T>(&self, result: Result<T, Error>) -> Result<On<T>, Error> {
        result.map(|inner| On {
            inner,
            runtime: self.runtime,
        })
    }
}

impl Service for On<jobwire::ServiceHandle> {
    type Job = On<jobwire::JobHandle>;
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn info(&self) -> &jobwire_core::Service {
        self.inner.info()
    }
    fn delete(&self) -> Result<(), Error> {
        self.runtime.block_on(self.inner.delete())
    }
    fn submit(&self, input: &Value) -> Result<Self::Job, Error> {
        let job = self.runtime.block_on(self.inner.submit(input))?;
        Ok(On {
            inner: job,
            runtime: self.runtime,
        })
    }
    fn run(&self, input: &Value) -> Result<Value, Error> {
        self.runtime.block_on(self.inner.run(input))
    }
    fn run_all(
        &self,
        inputs: Vec<Value>,
        concurrency: Option<usize>,
        hook: Option<Hook>,
    ) -> BatchReport<Value> {
        let mut batch = self.inner.run_all(inputs);
        if let Some(n) = concurrency {
            batch = batch.concurrency(n);
        }
        if let Some(hook) = hook {
            batch = batch.on_event(hook);
        }
        self.runtime.block_on(batch.collect())
    }
    fn try_run_all(&self, inputs: Vec<Value>, concurrency: usize) -> Result<Vec<Value>, Error> {
        let batch = self.inner.run_all(inputs).concurrency(concurrency);
        self.runtime.block_on(batch.try_collect())
    }
    fn run_unordered(
        &self,
        inputs: Vec<Value>,
        concurrency: usize,
    ) -> Vec<(usize, Result<Value, Error>)> {
        let results = self
            .inner
            .run_unordered(inputs)
            .concurrency(concurrency)
            .results();
        self.runtime.block_on(results.collect())
    }
}

impl Job for On<jobwire::JobHandle> {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn status(&self) -> &JobStatus {
        self.inner.status()
    }
    fn job(&self) -> &jobwire_core::Job {
        self.inner.job()
    }
    fn refresh(&mut self) -> Result<jobwire_core::Job, Error> {
        self.runtime.block_on(self.inner.refresh()).cloned()
    }
    fn wait(&mut self) -> Result<jobwire_core::Job, Error> {
        self.runtime.block_on(self.inner.wait()).cloned()
    }
    fn cancel(&mut self) -> Result<jobwire_core::Job, Error> {
        self.runtime.block_on(self.inner.cancel()).cloned()
    }
    fn wait_for(&mut self, timeout: Duration) -> Result<jobwire_core::Job, Error> {
        self.runtime.block_on(self.inner.wait_for(timeout)).cloned()
    }
    fn result(&mut self) -> Result<Value, Error> {
        self.runtime.block_on(self.inner.result())
    }
    fn events(&self) -> Box<dyn Iterator<Item = Result<JobEvent, Error>>> {
        let mut events = self.inner.events();
        let runtime = self.runtime;
        Box::new(std::iter::from_fn(move || runtime.block_on(events.next())))
    }
}

impl Guard for AsyncGuard {
    type Job = On<jobwire::JobHandle>;
    fn add(&mut self, job: Self::Job) -> Self::Job {
        match self.guard.as_mut() {
            Some(guard) => On {
                inner: guard.add(job.inner),
                runtime: job.runtime,
            },
            None => job,
        }
    }
    fn disarm(mut self) {
        if let Some(guard) = self.guard.take() {
            guard.disarm();
        }
    }
}

/// Polls `condition` every 5 ms for up to 10 s.
pub fn until(what: &str, condition: impl Fn() -> bool) {
    let started = std::time::Instant::now();
    while !condition() {
        assert!(started.elapsed() < Duration::from_secs(10), "never: {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}
