//! The facades' shared surface, written once and stamped into `jobwire` (async) and
//! `jobwire-blocking` (sync) by an explicit `macro_rules!`: the `async` arm adds
//! `async`/`.await`, the `blocking` arm leaves them out. No feature flag picks the
//! mode, so both facades can live in one binary.
//!
//! A facade defines `Client` (with `send_once`, one attempt through its transport,
//! `in_flight_slot`, a slot of its in-flight limit, `pacer`, `config`, and `watch`, which
//! registers a wait with its push hub), `ServiceHandle { client, service }`,
//! `JobHandle { client, job, position }` and `EventStream` (with `new(client, target)`),
//! then invokes
//! `jobwire_core::__facade_methods!(async, sleep = tokio::time::sleep);` or
//! `jobwire_core::__facade_methods!(blocking, sleep = std::thread::sleep);`.

/// Stamps the methods of `Client`, `ServiceHandle` and `JobHandle` (see the module docs).
#[doc(hidden)]
#[macro_export]
macro_rules! __facade_methods {
    (async, sleep = $($sleep:ident)::+) => {
        // Rare paths are boxed so the common wait future stays small.
        $crate::__facade_methods!(@emit [async] [.await] [$($sleep)::+] [Box::pin]);
    };
    (blocking, sleep = $($sleep:ident)::+) => {
        $crate::__facade_methods!(@emit [] [] [$($sleep)::+] [std::convert::identity]);
    };
    (@emit [$($async:tt)*] [$($await:tt)*] [$($sleep:tt)*] [$($rare:tt)*]) => {
        impl Client {
            /// Sends one endpoint's request and parses its answer: the drive loop under
            /// every call, public so a caller can use an endpoint the client has no method
            /// for. Before each attempt the client's [`Pacer`]($crate::throttle::Pacer)
            /// says how long to wait (the rate limit, a 429's `Retry-After`) and a slot
            /// of the in-flight limit is taken; after it, the core's
            /// [`RetryPolicy`]($crate::retry::RetryPolicy) decides whether to send it
            /// again. Each call is a `jobwire.call` span (method, path, trace id), each
            /// attempt an event in it (attempt, status, request id, retry reason).
            pub $($async)* fn execute<E: $crate::endpoint::Endpoint>(&self, endpoint: &E) -> Result<E::Output, $crate::Error> {
                let config = self.config();
                let request = endpoint.request(config)?;
                let trace = self.trace.clone().or_else(|| {
                    config
                        .traceparent_value()
                        .then(|| $crate::trace::TraceContext::new($crate::follow::jitter_seed))
                });
                let (service, job) = $crate::endpoint::subject_of(request.uri().path());
                let call = tracing::debug_span!(
                    "jobwire.call",
                    method = %request.method(),
                    path = request.uri().path(),
                    service,
                    job,
                    trace_id = trace.as_ref().map(|t| t.trace_id()),
                );
                let mut attempt = 0u32;
                loop {
                    attempt += 1;
                    let span = tracing::debug_span!(
                        parent: &call,
                        "jobwire.attempt",
                        attempt,
                        status = tracing::field::Empty,
                        request_id = tracing::field::Empty,
                    );
                    let pause = self.pacer().reserve(std::time::Instant::now());
                    let pause = self.time_left().map_or(pause, |left| pause.min(left));
                    if !pause.is_zero() {
                        tracing::debug!(parent: &span, pause_ms = pause.as_millis() as u64, "held by the rate limit");
                        $($sleep)*(pause) $($await)*;
                    }
                    let mut this_attempt = request.clone();
                    if let Some(trace) = &trace {
                        let parent = trace.traceparent($crate::follow::jitter_seed());
                        if let Ok(value) = http::HeaderValue::from_str(&parent) {
                            this_attempt.headers_mut().insert("traceparent", value);
                        }
                    }
                    $crate::retry::within_deadline(&mut this_attempt, self.time_left())?;
                    let answer = {
                        let _slot = self.in_flight_slot() $($await)*;
                        self.send_once(this_attempt) $($await)*
                    };
                    let next = self.pacer().after(
                        config.retry_value(),
                        attempt,
                        &request,
                        &answer,
                        self.time_left(),
                        std::time::Instant::now(),
                    );
                    let reason = match &answer {
                        Ok(response) => {
                            span.record("status", response.status().as_u16());
                            if let Some(id) = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()) {
                                span.record("request_id", id);
                            }
                            response.status().as_str().to_owned()
                        }
                        Err(e) => e.kind_name().to_owned(),
                    };
                    match next {
                        $crate::retry::Attempt::Again { after } => {
                            tracing::debug!(
                                parent: &span, %reason, retry_in_ms = after.as_millis() as u64, "retrying"
                            );
                            $($sleep)*(after) $($await)*;
                        }
                        _ => {
                            tracing::debug!(parent: &span, %reason, "answered");
                            return endpoint.parse(answer?);
                        }
                    }
                }
            }

            /// A clone of this client whose calls carry the trace of `traceparent` (a W3C
            /// `traceparent` header, say of the request being served): each attempt goes
            /// out with that trace id and a parent id of its own. A value that is not a
            /// `traceparent` is [`Error::Invalid`]($crate::Error::Invalid).
            pub fn in_trace(&self, traceparent: &str) -> Result<Client, $crate::Error> {
                let trace = $crate::trace::TraceContext::parse(traceparent).ok_or_else(|| $crate::Error::Invalid {
                    what: "traceparent",
                    message: format!("{traceparent:?} is not a W3C traceparent"),
                })?;
                let mut client = self.clone();
                client.trace = Some(trace);
                Ok(client)
            }

            /// A clone of this client whose every call — each request with its retries,
            /// `run` (submit and wait), event streams and paging walks — ends by `limit`
            /// from now, with [`Error::Timeout`]($crate::Error::Timeout) if it has not
            /// finished. A clone of a clone keeps the earlier deadline. Job handles it
            /// returns are not bound by it (so a job can still be cancelled after its
            /// wait timed out): bound their waits with `wait_for`.
            pub fn within(&self, limit: std::time::Duration) -> Client {
                let mut client = self.clone();
                if let Some(at) = std::time::Instant::now().checked_add(limit) {
                    client.deadline = Some(client.deadline.map_or(at, |d| d.min(at)));
                }
                client
            }

            /// When this client's calls must end, if [`within`](Self::within) set it.
            pub fn deadline(&self) -> Option<std::time::Instant> {
                self.deadline
            }

            /// What is left of the deadline, if there is one.
            pub(crate) fn time_left(&self) -> Option<std::time::Duration> {
                self.deadline
                    .map(|d| d.saturating_duration_since(std::time::Instant::now()))
            }

            /// The earlier of `deadline` and this client's own.
            fn bounded(&self, deadline: Option<std::time::Instant>) -> Option<std::time::Instant> {
                match (deadline, self.deadline) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            }

            /// Whether the server is up, and its version.
            pub $($async)* fn health(&self) -> Result<$crate::Health, $crate::Error> {
                self.execute(&$crate::endpoint::GetHealth) $($await)*
            }

            /// A service by id (`svc_…`) or by name.
            pub $($async)* fn service(&self, id_or_name: &str) -> Result<ServiceHandle, $crate::Error> {
                let service = self.execute(&$crate::endpoint::GetService::new(id_or_name)) $($await)* ?;
                Ok(ServiceHandle { client: self.clone(), service })
            }

            /// Registers a command service (see [`ServiceSpec`]($crate::ServiceSpec)) and
            /// returns its handle. [`Error::Forbidden`]($crate::Error::Forbidden) when the
            /// server runs no programs (it was started without `--allow-commands`),
            /// [`Error::Conflict`]($crate::Error::Conflict) when a service the caller can
            /// see has the name, [`Error::Validation`]($crate::Error::Validation) with each
            /// invalid field otherwise.
            pub $($async)* fn create_service(&self, spec: &$crate::ServiceSpec) -> Result<ServiceHandle, $crate::Error> {
                let endpoint = $crate::endpoint::CreateService::new(spec.clone());
                let service = self.execute(&endpoint) $($await)* ?;
                Ok(ServiceHandle { client: self.clone(), service })
            }

            /// The service named `spec.name`: created from `spec` if there is none, else
            /// the one there is (as it is: its spec is not compared with `spec`). Safe
            /// when several callers race: one creates it, every one gets that service.
            pub $($async)* fn create_or_get_service(&self, spec: &$crate::ServiceSpec) -> Result<ServiceHandle, $crate::Error> {
                // A name may be deleted between our create (409) and our read (404): then
                // the create is tried again, a few times.
                let mut tries = 0;
                loop {
                    tries += 1;
                    match self.create_service(spec) $($await)* {
                        Err($crate::Error::Conflict { problem }) => match self.service(&spec.name) $($await)* {
                            Err($crate::Error::NotFound { .. }) if tries < 3 => continue,
                            // Not a name clash after all (an idempotency conflict, say).
                            Err($crate::Error::NotFound { .. }) => return Err($crate::Error::Conflict { problem }),
                            found => return found,
                        },
                        created => return created,
                    }
                }
            }

            /// The services this client can use: `.items()` walks them all, page by
            /// page; `.page()` fetches one page.
            pub fn services(&self) -> ServiceList {
                ServiceList::new(self.clone())
            }

            /// The jobs of this client's tenant, newest first, with filters.
            pub fn jobs(&self) -> JobList {
                JobList::new(self.clone())
            }

            /// A job by id, as it stands now.
            pub $($async)* fn job(&self, id: &str) -> Result<JobHandle, $crate::Error> {
                let snapshot = self.execute(&$crate::endpoint::GetJob::new(id)) $($await)* ?;
                Ok(JobHandle::from_snapshot(self.clone(), snapshot))
            }

            /// Every event of this client's jobs, as they happen, on one stream (a
            /// `Stream` in `jobwire`, an `Iterator` in `jobwire-blocking`). Narrow it with
            /// `.service(..)` and `.job(..)`; `.after(id)` replays what came after an
            /// event id the server still keeps. It resumes by itself after a dropped
            /// connection, without gap or duplicate.
            pub fn events(&self) -> EventStream {
                EventStream::new(self.clone(), $crate::follow::StreamTarget::all())
            }

            /// Submits a job of `service` (id or name) on `input` (a serde type or a
            /// `serde_json::Value`) without waiting for it.
            pub $($async)* fn submit<I: serde::Serialize + ?Sized>(
                &self,
                service: &str,
                input: &I,
            ) -> Result<JobHandle, $crate::Error> {
                self.submit_with(service, input, $crate::SubmitOptions::default()) $($await)*
            }

            /// Submits with options: a server-side wait, labels, an idempotency key.
            pub $($async)* fn submit_with<I: serde::Serialize + ?Sized>(
                &self,
                service: &str,
                input: &I,
                options: $crate::SubmitOptions,
            ) -> Result<JobHandle, $crate::Error> {
                let input = $crate::outcome::input_value(input)?;
                let options = options.with_fresh_key();
                let endpoint = $crate::endpoint::SubmitJob::new(service, input, options);
                let snapshot = self.execute(&endpoint) $($await)* ?;
                Ok(JobHandle::from_snapshot(self.clone(), snapshot))
            }

            /// Submits a job and waits for its result in one call; a job that fails or
            /// is cancelled is an [`Error::JobFailed`]($crate::Error::JobFailed) or
            /// [`Error::JobCancelled`]($crate::Error::JobCancelled).
            ///
            /// The submit asks the server to hold its answer a moment (a second; a
            /// whole long-poll when waits do not use events), so a quick job costs one
            /// round trip; a longer one is then waited for like [`JobHandle::wait`].
            pub $($async)* fn run<I: serde::Serialize + ?Sized, O: serde::de::DeserializeOwned>(
                &self,
                service: &str,
                input: &I,
            ) -> Result<O, $crate::Error> {
                let (options, deadline) = self.run_plan();
                let mut job = self.submit_with(service, input, options) $($await)* ?;
                // The handle is free of this client's deadline; `deadline` includes it.
                job.wait_until(deadline) $($await)* ?;
                $crate::outcome::job_result(job.job())
            }

            /// Runs input `index` of a batch like [`run`](Self::run), telling the plan's
            /// hook what happens. `submitted(job_id)` answers whether to cancel the job
            /// at once (the batch stopped meanwhile).
            pub(crate) $($async)* fn run_item<O: serde::de::DeserializeOwned>(
                &self,
                service: &str,
                plan: &$crate::batch::Plan,
                index: usize,
                submitted: impl FnOnce(&str) -> bool,
            ) -> Result<O, $crate::Error> {
                use $crate::batch::BatchEvent;
                let input = plan.input(index)?;
                let (mut options, deadline) = self.run_plan();
                if plan.follows_events() {
                    // Answered at once: the job's events tell the rest.
                    options = $crate::SubmitOptions::default();
                }
                let mut job = self.submit_with(service, &input, options) $($await)* ?;
                plan.emit(BatchEvent::Submitted { index, job_id: job.id().to_owned() });
                if submitted(job.id()) {
                    job.cancel() $($await)* ?;
                }
                if plan.follows_events() && !job.job().is_finished() {
                    let mut events = job.events();
                    while let Some(event) = events.next() $($await)* {
                        match event?.kind {
                            $crate::event::EventKind::Progress { fraction, message } => {
                                plan.emit(BatchEvent::Progress { index, fraction, message })
                            }
                            $crate::event::EventKind::Done(done) => return $crate::outcome::job_result(&done),
                            _ => {}
                        }
                    }
                }
                job.wait_until(deadline) $($await)* ?;
                $crate::outcome::job_result(job.job())
            }

            /// How [`run`](Self::run) submits — holding the answer a moment, so a quick
            /// job costs one round trip — and when its wait must end.
            pub(crate) fn run_plan(&self) -> ($crate::SubmitOptions, Option<std::time::Instant>) {
                let config = self.config();
                // One deadline covers the submit's server-side wait and the waiting after.
                let limit = config.wait_timeout_value();
                let deadline = self.bounded(limit.and_then(|t| std::time::Instant::now().checked_add(t)));
                let hold = if config.wait_by_events_value() {
                    std::time::Duration::from_secs(1)
                } else {
                    config.long_poll_value()
                };
                let wait = limit.map_or(hold, |t| hold.min(t));
                ($crate::SubmitOptions::default().wait(wait), deadline)
            }
        }

        impl ServiceHandle {
            /// The service's id (`svc_…`).
            pub fn id(&self) -> &str {
                &self.service.id
            }

            /// The service's unique name.
            pub fn name(&self) -> &str {
                &self.service.name
            }

            /// The JSON Schema every input is validated against.
            pub fn input_schema(&self) -> &serde_json::Value {
                &self.service.input_schema
            }

            /// Everything the server said about the service.
            pub fn info(&self) -> &$crate::Service {
                &self.service
            }

            /// Submits a job on `input` (a serde type or a `serde_json::Value`) without
            /// waiting.
            pub $($async)* fn submit<I: serde::Serialize + ?Sized>(&self, input: &I) -> Result<JobHandle, $crate::Error> {
                self.client.submit(&self.service.id, input) $($await)*
            }

            /// Submits with options: a server-side wait, labels, an idempotency key.
            pub $($async)* fn submit_with<I: serde::Serialize + ?Sized>(
                &self,
                input: &I,
                options: $crate::SubmitOptions,
            ) -> Result<JobHandle, $crate::Error> {
                self.client.submit_with(&self.service.id, input, options) $($await)*
            }

            /// Submits a job and waits for its typed result.
            pub $($async)* fn run<I: serde::Serialize + ?Sized, O: serde::de::DeserializeOwned>(
                &self,
                input: &I,
            ) -> Result<O, $crate::Error> {
                self.client.run(&self.service.id, input) $($await)*
            }

            /// Retires the service (one this client's tenant registered): it is no longer
            /// listed, a submit to it answers 410, its name is free again, and its jobs
            /// stay readable; jobs already running finish. Deleting it twice is fine.
            pub $($async)* fn delete(&self) -> Result<(), $crate::Error> {
                self.client.execute(&$crate::endpoint::DeleteService::new(&self.service.id)) $($await)*
            }
        }

        impl JobHandle {
            fn from_snapshot(mut client: Client, snapshot: $crate::JobSnapshot) -> Self {
                client.deadline = None;
                JobHandle { client, job: snapshot.job, position: snapshot.position }
            }

            fn update(&mut self, snapshot: $crate::JobSnapshot) {
                self.job = snapshot.job;
                // A snapshot without a position (a server or proxy that drops the header)
                // keeps the last one known: it is still a lower bound.
                if snapshot.position.is_some() {
                    self.position = snapshot.position;
                }
            }

            /// The job's id (`job_…`).
            pub fn id(&self) -> &str {
                &self.job.id
            }

            /// The status as last seen; sends nothing.
            pub fn status(&self) -> &$crate::JobStatus {
                &self.job.status
            }

            /// The whole job as last seen; sends nothing.
            pub fn job(&self) -> &$crate::Job {
                &self.job
            }

            /// Fetches the job's current state.
            pub $($async)* fn refresh(&mut self) -> Result<&$crate::Job, $crate::Error> {
                let snapshot = self.client.execute(&$crate::endpoint::GetJob::new(&self.job.id)) $($await)* ?;
                self.update(snapshot);
                Ok(&self.job)
            }

            /// The job's events — status changes, progress, log lines, output chunks,
            /// then `Done` with the final job — from its first (the server keeps a
            /// finished job's events for a while) as they happen. A `Stream` in
            /// `jobwire`, an `Iterator` in `jobwire-blocking`; it resumes by itself after
            /// a dropped connection (no gap, no duplicate) and ends after `Done`.
            pub fn events(&self) -> EventStream {
                EventStream::new(self.client.clone(), $crate::follow::StreamTarget::job(&self.job.id))
            }

            /// Whether the job has finished; asks the server only while the cached
            /// state says it has not.
            pub $($async)* fn is_finished(&mut self) -> Result<bool, $crate::Error> {
                if !self.job.is_finished() {
                    self.refresh() $($await)* ?;
                }
                Ok(self.job.is_finished())
            }

            /// Waits until the job is terminal (bounded by the client's `wait_timeout`,
            /// if set) and returns it, whatever its outcome.
            pub $($async)* fn wait(&mut self) -> Result<&$crate::Job, $crate::Error> {
                let deadline = self
                    .client
                    .config()
                    .wait_timeout_value()
                    .and_then(|t| std::time::Instant::now().checked_add(t));
                self.wait_until(deadline) $($await)*
            }

            /// Waits at most `timeout` for the job to be terminal;
            /// [`Error::Timeout`]($crate::Error::Timeout) otherwise.
            pub $($async)* fn wait_for(&mut self, timeout: std::time::Duration) -> Result<&$crate::Job, $crate::Error> {
                // A timeout too large to add to now is no deadline at all.
                self.wait_until(std::time::Instant::now().checked_add(timeout)) $($await)*
            }

            /// Waits by push: the client's one event stream wakes this job at its
            /// `done` (the core's [`Watchlist`]($crate::push::Watchlist) decides); by
            /// long-poll when events are off or not available.
            pub(crate) $($async)* fn wait_until(&mut self, deadline: Option<std::time::Instant>) -> Result<&$crate::Job, $crate::Error> {
                use $crate::push::{Wake, Watch};
                let deadline = self.client.bounded(deadline);
                // Re-reads before giving up on events for this wait: a server that sends
                // no positions would otherwise be asked again and again.
                let mut rechecks = 0u32;
                while self.client.config().wait_by_events_value() && rechecks < 3 {
                    if self.job.is_finished() {
                        return Ok(&self.job);
                    }
                    if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                        return Err(self.timed_out());
                    }
                    let wake = match self.client.watch(&self.job.id, self.position) {
                        Watch::Finished(job) => Wake::Done(job),
                        Watch::Waiting(waiting) => match waiting.wait(deadline) $($await)* {
                            Some(wake) => wake,
                            None => return Err(self.timed_out()),
                        },
                        Watch::Recheck => Wake::Recheck,
                        _ => Wake::LongPoll,
                    };
                    match wake {
                        // Decoded here, by the waiter; a `done` that does not decode is
                        // read again, as on a recheck.
                        Wake::Done(done) => {
                            if let Ok(job) = done.decode() {
                                self.job = job;
                                continue;
                            }
                        }
                        Wake::Recheck => {}
                        _ => break,
                    }
                    rechecks += 1;
                    $($rare)*(self.refresh()) $($await)* ?;
                }
                $($rare)*(self.long_poll_until(deadline)) $($await)*
            }

            fn timed_out(&self) -> $crate::Error {
                $crate::Error::Timeout {
                    what: format!("job {} to finish (still {})", self.job.id, self.job.status),
                }
            }

            /// The long-poll drive loop: the core's [`Waiter`]($crate::wait::Waiter)
            /// decides, this sends.
            $($async)* fn long_poll_until(&mut self, deadline: Option<std::time::Instant>) -> Result<&$crate::Job, $crate::Error> {
                use $crate::wait::{WaitStep, Waiter};
                let deadline = self.client.bounded(deadline);
                let mut waiter = Waiter::new(deadline, self.client.config().long_poll_value());
                loop {
                    match waiter.next(std::time::Instant::now(), &self.job.status) {
                        WaitStep::Poll { pause, wait } => {
                            if !pause.is_zero() {
                                $($sleep)*(pause) $($await)*;
                            }
                            let sent = std::time::Instant::now();
                            let endpoint = $crate::endpoint::GetJob::new(&self.job.id).wait(wait);
                            let snapshot = self.client.execute(&endpoint) $($await)* ?;
                            waiter.observe(wait, sent.elapsed(), snapshot.job.status != self.job.status);
                            self.update(snapshot);
                        }
                        WaitStep::Finished => return Ok(&self.job),
                        WaitStep::TimedOut => return Err(self.timed_out()),
                        _ => return Err($crate::Error::Protocol("unknown wait step".into())),
                    }
                }
            }

            /// Waits for the job and decodes its output as `T` (or `serde_json::Value`).
            pub $($async)* fn result<T: serde::de::DeserializeOwned>(&mut self) -> Result<T, $crate::Error> {
                self.wait() $($await)* ?;
                $crate::outcome::job_result(&self.job)
            }

            /// Asks the server to cancel the job (idempotent) and returns it as it now
            /// stands.
            pub $($async)* fn cancel(&mut self) -> Result<&$crate::Job, $crate::Error> {
                let snapshot = self.client.execute(&$crate::endpoint::CancelJob::new(&self.job.id)) $($await)* ?;
                self.update(snapshot);
                Ok(&self.job)
            }
        }
    };
}
