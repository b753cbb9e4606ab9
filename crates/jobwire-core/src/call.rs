//! One call — a request with its retries — as a state machine with injected time: the
//! attempt loop under every facade method. For each attempt it takes a send slot of the
//! client's rate limit (sleeping if the slot is later), fits the attempt into the call's
//! deadline, stamps its `traceparent`, hands it to the facade to send, and, from the
//! answer, decides with the [`RetryPolicy`] and the client's [`Pacer`] whether to sleep
//! and send again or to hand the answer back. It keeps the call's `jobwire.call` span
//! and each attempt's `jobwire.attempt` span (attempt, status, request id), with the
//! retry reason and pause as events.
//!
//! A facade drives it in a loop; the whole loop, as both facades write it:
//!
//! ```
//! use std::time::Instant;
//! use bytes::Bytes;
//! use jobwire_core::call::{Call, CallContext, CallStep};
//! use jobwire_core::throttle::Pacer;
//! use jobwire_core::ClientConfig;
//!
//! let config = ClientConfig::default().validate()?;
//! let pacer = Pacer::new(&config, 7);
//! let request = http::Request::get("http://h/v1/health").body(Bytes::new()).unwrap();
//! let mut call = Call::new(request, CallContext::new(&config, &pacer), 7);
//! let answer = loop {
//!     match call.next(Instant::now()) {
//!         CallStep::Sleep(pause) => std::thread::sleep(pause),
//!         CallStep::Send(request) => {
//!             // The facade sends `request` through its transport; here, a canned answer.
//!             assert_eq!(request.uri().path(), "/v1/health");
//!             let answer = http::Response::builder().status(200).body(Bytes::new()).unwrap();
//!             call.observe(Ok(answer), Instant::now());
//!         }
//!         CallStep::Done(answer) => break answer?,
//!     }
//! };
//! assert_eq!(answer.status(), 200);
//! # Ok::<(), jobwire_core::Error>(())
//! ```

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::backoff::Jitter;
use crate::config::ClientConfig;
use crate::deadline::{time_left, within_deadline};
use crate::endpoint::{subject_of, Endpoint};
use crate::error::Error;
use crate::options::CallOptions;
use crate::retry::{Attempt, RetryPolicy};
use crate::throttle::Pacer;
use crate::token::{authorize, SharedTokenSource};
use crate::trace::TraceContext;
use crate::transport::CallDeadline;

/// The W3C trace header of each attempt.
const TRACEPARENT: http::HeaderName = http::HeaderName::from_static("traceparent");

/// What a call's driver does next. Exhaustive: a new step is a compile error in both
/// drivers.
#[derive(Debug)]
pub enum CallStep {
    /// Sleep this long (the rate limit's slot, or the back-off before a retry), then
    /// ask again.
    Sleep(Duration),
    /// Send this attempt and report its answer, whole body read, with
    /// [`Call::observe`] — holding a slot of the client's in-flight limit while it is
    /// sent.
    Send(http::Request<Bytes>),
    /// The call is over: parse this answer, or return this error.
    Done(Result<http::Response<Bytes>, Error>),
}

/// What a call needs of its client: the shared pacing, the retry policy, the deadline,
/// the trace its attempts belong to, and where its token comes from.
#[derive(Clone)]
pub struct CallContext<'a> {
    pacer: &'a Pacer,
    retry: &'a RetryPolicy,
    deadline: Option<Instant>,
    trace: Option<TraceContext>,
    traceparent: bool,
    token_source: Option<&'a SharedTokenSource>,
}

impl std::fmt::Debug for CallContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("retry", &self.retry)
            .field("deadline", &self.deadline)
            .field("trace", &self.trace)
            .finish_non_exhaustive()
    }
}

impl<'a> CallContext<'a> {
    /// A call of a client with `config`, sharing `pacer` with the client's other calls;
    /// no deadline and no trace of its own.
    pub fn new(config: &'a ClientConfig, pacer: &'a Pacer) -> Self {
        CallContext {
            pacer,
            retry: config.retry_value(),
            deadline: None,
            trace: None,
            traceparent: config.traceparent_value(),
            token_source: config.token_source_value(),
        }
    }

    /// The call retries as `options` say, if they say (see [`CallOptions::retry`]).
    pub fn options(mut self, options: &'a CallOptions) -> Self {
        if let Some(policy) = options.retry_value() {
            self.retry = policy;
        }
        self
    }

    /// The call must end by `deadline` ([`Error::Timeout`] otherwise).
    pub fn deadline(mut self, deadline: Option<Instant>) -> Self {
        self.deadline = deadline;
        self
    }

    /// The attempts carry this trace (a caller's, from `in_trace`), whether or not the
    /// client sends a `traceparent` of its own.
    pub fn trace(mut self, trace: Option<TraceContext>) -> Self {
        if trace.is_some() {
            self.trace = trace;
        }
        self
    }
}

#[derive(Debug)]
enum Phase {
    /// Take the next attempt's send slot.
    Start,
    /// The slot is now: build and send the attempt.
    Ready,
    /// An attempt is out; its answer is to be reported.
    Sent,
    /// The answer says: try again after this pause.
    Pause(Duration),
    /// The answer to hand back.
    Answered(Result<http::Response<Bytes>, Error>),
    Over,
}

/// One call in flight; see the module docs.
#[derive(Debug)]
pub struct Call<'a> {
    request: http::Request<Bytes>,
    context: CallContext<'a>,
    random: Jitter,
    attempt: u32,
    phase: Phase,
    /// Whether a 401 already made the token source give a fresh token.
    refreshed: bool,
    span: tracing::Span,
    attempt_span: tracing::Span,
}

impl<'a> Call<'a> {
    /// A call of `request` in `context`; `seed` draws its trace's ids (any value; fixed
    /// in tests). Nothing is sent until the driver asks [`next`](Self::next).
    pub fn new(request: http::Request<Bytes>, context: CallContext<'a>, seed: u64) -> Self {
        let mut random = Jitter::new(seed);
        let mut context = context;
        if context.trace.is_none() && context.traceparent {
            context.trace = Some(TraceContext::new(|| random.next_u64()));
        }
        let (service, job) = subject_of(request.uri().path());
        let span = tracing::debug_span!(
            "jobwire.call",
            method = %request.method(),
            path = request.uri().path(),
            service,
            job,
            trace_id = context.trace.as_ref().map(|t| t.trace_id()),
        );
        Call {
            request,
            context,
            random,
            attempt: 0,
            phase: Phase::Start,
            refreshed: false,
            span,
            attempt_span: tracing::Span::none(),
        }
    }

    /// The step to take at `now`.
    pub fn next(&mut self, now: Instant) -> CallStep {
        loop {
            match std::mem::replace(&mut self.phase, Phase::Over) {
                Phase::Start => {
                    self.attempt += 1;
                    self.attempt_span = tracing::debug_span!(
                        parent: &self.span,
                        "jobwire.attempt",
                        attempt = self.attempt,
                        status = tracing::field::Empty,
                        request_id = tracing::field::Empty,
                    );
                    let pause = self.context.pacer.reserve(now);
                    let left = time_left(self.context.deadline, now);
                    let pause = left.map_or(pause, |left| pause.min(left));
                    self.phase = Phase::Ready;
                    if !pause.is_zero() {
                        tracing::debug!(
                            parent: &self.attempt_span,
                            pause_ms = pause.as_millis() as u64,
                            "held by the rate limit"
                        );
                        return CallStep::Sleep(pause);
                    }
                }
                Phase::Ready => {
                    let mut attempt = self.request.clone();
                    if let Some(trace) = &self.context.trace {
                        let parent = trace.traceparent(self.random.next_u64());
                        if let Ok(value) = http::HeaderValue::from_str(&parent) {
                            attempt.headers_mut().insert(TRACEPARENT, value);
                        }
                    }
                    if let Err(e) =
                        within_deadline(&mut attempt, time_left(self.context.deadline, now))
                    {
                        return CallStep::Done(Err(e));
                    }
                    if let Some(deadline) = self.context.deadline {
                        attempt.extensions_mut().insert(CallDeadline(deadline));
                    }
                    // Asked before every attempt: a source may have a fresher token.
                    if let Some(source) = self.context.token_source {
                        if let Err(e) = authorize(&mut attempt, source.as_ref()) {
                            return CallStep::Done(Err(e));
                        }
                    }
                    self.phase = Phase::Sent;
                    return CallStep::Send(attempt);
                }
                Phase::Sent => {
                    return CallStep::Done(Err(Error::Protocol(
                        "a call was asked for its next step before its answer came".into(),
                    )))
                }
                Phase::Pause(after) => {
                    self.phase = Phase::Start;
                    return CallStep::Sleep(after);
                }
                Phase::Answered(answer) => return CallStep::Done(answer),
                Phase::Over => {
                    return CallStep::Done(Err(Error::Protocol("the call is over".into())))
                }
            }
        }
    }

    /// Reports the answer to the attempt last sent, at `now`: the client's pacing learns
    /// from it, and the retry policy decides what comes next.
    pub fn observe(&mut self, answer: Result<http::Response<Bytes>, Error>, now: Instant) {
        let context = &self.context;
        // A token the server turns down: the source is told and asked again, once.
        let unauthorized = matches!(&answer, Ok(a) if a.status() == http::StatusCode::UNAUTHORIZED);
        if let (true, false, Some(source)) = (unauthorized, self.refreshed, context.token_source) {
            source.invalidate();
            self.refreshed = true;
            tracing::debug!(parent: &self.attempt_span, reason = "401", "retrying with a fresh token");
            self.phase = Phase::Start;
            return;
        }
        let decision = context.pacer.after(
            context.retry,
            self.attempt,
            &self.request,
            &answer,
            time_left(context.deadline, now),
            now,
        );
        let status = match &answer {
            Ok(response) => {
                self.attempt_span
                    .record("status", response.status().as_u16());
                if let Some(id) = response
                    .headers()
                    .get("x-request-id")
                    .and_then(|v| v.to_str().ok())
                {
                    self.attempt_span.record("request_id", id);
                }
                Some(response.status())
            }
            Err(_) => None,
        };
        let reason = match (&status, &answer) {
            (Some(status), _) => status.as_str(),
            (None, Err(e)) => e.kind_name(),
            (None, Ok(_)) => "",
        };
        match decision {
            Attempt::Again { after } => {
                tracing::debug!(
                    parent: &self.attempt_span,
                    %reason,
                    retry_in_ms = after.as_millis() as u64,
                    "retrying"
                );
                self.phase = Phase::Pause(after);
            }
            Attempt::Done => {
                tracing::debug!(parent: &self.attempt_span, %reason, "answered");
                self.phase = Phase::Answered(answer);
            }
        }
    }
}

/// A successful answer's value, with what the answer said about itself: its status and
/// the server's request id (to quote in a bug report).
///
/// ```
/// use bytes::Bytes;
/// use jobwire_core::call::Answer;
/// use jobwire_core::endpoint::GetHealth;
///
/// let response = http::Response::builder()
///     .header("x-request-id", "req_1")
///     .body(Bytes::from_static(br#"{"status":"ok","version":"1"}"#))
///     .unwrap();
/// let answer = Answer::parse(&GetHealth, response)?;
/// assert_eq!((answer.status, answer.request_id.as_deref()), (http::StatusCode::OK, Some("req_1")));
/// assert_eq!(answer.value.status, "ok");
/// # Ok::<(), jobwire_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Answer<T> {
    /// What the answer decoded to.
    pub value: T,
    /// The answer's HTTP status.
    pub status: http::StatusCode,
    /// The answer's `x-request-id`.
    pub request_id: Option<String>,
}

impl<T> Answer<T> {
    /// Parses `response` with `endpoint`, keeping its status and request id.
    pub fn parse<E: Endpoint<Output = T>>(
        endpoint: &E,
        response: http::Response<Bytes>,
    ) -> Result<Answer<T>, Error> {
        let status = response.status();
        let request_id = response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Answer {
            value: endpoint.parse(response)?,
            status,
            request_id,
        })
    }

    /// The same answer with its value made into `U`.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Answer<U> {
        Answer {
            value: f(self.value),
            status: self.status,
            request_id: self.request_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::{Repeatable, RetryPolicy};
    use crate::transport::RequestTimeout;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn get() -> http::Request<Bytes> {
        let mut req = http::Request::get("http://h/v1/jobs/job_1")
            .body(Bytes::new())
            .unwrap();
        req.extensions_mut()
            .insert(RequestTimeout(Duration::from_secs(30)));
        req
    }

    fn post(keyed: bool) -> http::Request<Bytes> {
        let mut req = http::Request::post("http://h/v1/services/echo/jobs")
            .body(Bytes::new())
            .unwrap();
        if keyed {
            req.extensions_mut().insert(Repeatable);
        }
        req
    }

    fn status(code: u16) -> Result<http::Response<Bytes>, Error> {
        Ok(http::Response::builder()
            .status(code)
            .body(Bytes::new())
            .unwrap())
    }

    /// A step as the table writes it: sleeps and sends with what matters of them.
    #[derive(Debug, PartialEq)]
    enum Seen {
        Sleep(Duration),
        Send,
        Done(Result<u16, &'static str>),
    }

    /// Drives a call in simulated time (each send takes `rtt`) against scripted
    /// answers; returns the steps and when it ended.
    fn drive(
        mut call: Call<'_>,
        t0: Instant,
        rtt: Duration,
        answers: Vec<Result<http::Response<Bytes>, Error>>,
        sent: &mut Vec<http::Request<Bytes>>,
    ) -> (Vec<Seen>, Duration) {
        let mut answers = answers.into_iter();
        let mut now = t0;
        let mut seen = Vec::new();
        loop {
            match call.next(now) {
                CallStep::Sleep(pause) => {
                    seen.push(Seen::Sleep(pause));
                    now += pause;
                }
                CallStep::Send(request) => {
                    seen.push(Seen::Send);
                    sent.push(request);
                    now += rtt;
                    let answer = answers.next().expect("an answer for every send");
                    call.observe(answer, now);
                }
                CallStep::Done(answer) => {
                    let done = answer
                        .map(|a| a.status().as_u16())
                        .map_err(|e| e.kind_name());
                    seen.push(Seen::Done(done));
                    return (seen, now - t0);
                }
            }
        }
    }

    fn config(build: impl Fn(ClientConfig) -> ClientConfig) -> ClientConfig {
        build(ClientConfig::default()).validate().unwrap()
    }

    #[test]
    fn the_attempt_table() {
        use Seen::*;
        let patient = |c: ClientConfig| c.retry(RetryPolicy::default().base_delay(MS(100)));
        // (what, request, answers, steps with each back-off's sleep left out)
        type Row = (
            &'static str,
            http::Request<Bytes>,
            Vec<Result<http::Response<Bytes>, Error>>,
            Vec<Seen>,
        );
        let table: Vec<Row> = vec![
            (
                "answered at once",
                get(),
                vec![status(200)],
                vec![Send, Done(Ok(200))],
            ),
            (
                "an error answer is an answer",
                get(),
                vec![status(404)],
                vec![Send, Done(Ok(404))],
            ),
            (
                "a 503 on a GET is tried again",
                get(),
                vec![status(503), status(200)],
                vec![Send, Send, Done(Ok(200))],
            ),
            (
                "a 503 on an unkeyed POST is not",
                post(false),
                vec![status(503)],
                vec![Send, Done(Ok(503))],
            ),
            (
                "a keyed POST is",
                post(true),
                vec![status(503), status(502), status(201)],
                vec![Send, Send, Send, Done(Ok(201))],
            ),
            (
                "until the last attempt",
                get(),
                vec![status(503), status(503), status(503), status(503)],
                vec![Send, Send, Send, Send, Done(Ok(503))],
            ),
        ];
        for (what, request, answers, want) in table {
            let config = config(patient);
            let pacer = Pacer::new(&config, 1);
            let call = Call::new(request, CallContext::new(&config, &pacer), 1);
            let (steps, _) = drive(call, Instant::now(), MS(1), answers, &mut Vec::new());
            let without_backoff: Vec<Seen> = steps
                .into_iter()
                .filter(|s| !matches!(s, Sleep(_)))
                .collect();
            assert_eq!(without_backoff, want, "{what}");
        }
    }

    #[test]
    fn the_rate_limit_holds_each_attempt_for_its_slot() {
        let config = config(|c| c.rate_limit(10.0));
        let pacer = Pacer::new(&config, 1);
        let t0 = Instant::now();
        let first = Call::new(get(), CallContext::new(&config, &pacer), 1);
        let (steps, _) = drive(
            first,
            t0,
            Duration::ZERO,
            vec![status(200)],
            &mut Vec::new(),
        );
        assert_eq!(steps, [Seen::Send, Seen::Done(Ok(200))]);
        // The second call at the same time waits for the next slot, 100 ms later.
        let second = Call::new(get(), CallContext::new(&config, &pacer), 1);
        let (steps, took) = drive(
            second,
            t0,
            Duration::ZERO,
            vec![status(200)],
            &mut Vec::new(),
        );
        assert_eq!(
            steps,
            [Seen::Sleep(MS(100)), Seen::Send, Seen::Done(Ok(200))]
        );
        assert_eq!(took, MS(100));
    }

    #[test]
    fn the_deadline_cuts_each_attempt_and_ends_the_call() {
        let config = config(|c| c.rate_limit(1.0));
        let pacer = Pacer::new(&config, 1);
        let t0 = Instant::now();
        let context = || CallContext::new(&config, &pacer).deadline(Some(t0 + MS(500)));
        let mut sent = Vec::new();
        let (steps, _) = drive(
            Call::new(get(), context(), 1),
            t0,
            MS(100),
            vec![status(200)],
            &mut sent,
        );
        assert_eq!(steps, [Seen::Send, Seen::Done(Ok(200))]);
        assert_eq!(
            RequestTimeout::of(&sent[0]),
            Some(MS(500)),
            "30 s cut to what is left"
        );
        // The next slot is a second away: the call sleeps out its deadline and ends.
        let (steps, took) = drive(
            Call::new(get(), context(), 1),
            t0 + MS(100),
            MS(1),
            vec![],
            &mut sent,
        );
        assert_eq!(steps, [Seen::Sleep(MS(400)), Seen::Done(Err("timeout"))]);
        assert_eq!(took, MS(400));
    }

    #[test]
    fn every_attempt_carries_the_calls_trace_with_a_parent_of_its_own() {
        let config = config(|c| {
            c.traceparent(true)
                .retry(RetryPolicy::default().base_delay(MS(1)))
        });
        let pacer = Pacer::new(&config, 1);
        let call = Call::new(get(), CallContext::new(&config, &pacer), 42);
        let mut sent = Vec::new();
        drive(
            call,
            Instant::now(),
            MS(1),
            vec![status(503), status(200)],
            &mut sent,
        );
        let parents: Vec<&str> = sent
            .iter()
            .map(|r| r.headers()["traceparent"].to_str().unwrap())
            .collect();
        assert_eq!(parents.len(), 2);
        assert_eq!(parents[0][..35], parents[1][..35], "one trace id");
        assert_ne!(parents[0], parents[1], "a parent id per attempt");
        // A caller's trace is kept as it is.
        let theirs = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
        let context = CallContext::new(&config, &pacer).trace(theirs);
        let mut sent = Vec::new();
        drive(
            Call::new(get(), context, 1),
            Instant::now(),
            MS(1),
            vec![status(200)],
            &mut sent,
        );
        assert!(sent[0].headers()["traceparent"]
            .to_str()
            .unwrap()
            .starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    }

    /// A token source is asked before every attempt; a 401 tells it and the call goes
    /// once more, with the fresh token — once: a second 401 is the answer.
    #[test]
    fn a_401_asks_the_token_source_again_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let asked = Arc::new(AtomicUsize::new(0));
        let invalidated = Arc::new(AtomicUsize::new(0));
        struct Source(Arc<AtomicUsize>, Arc<AtomicUsize>);
        impl crate::token::TokenSource for Source {
            fn token(&self) -> Result<String, crate::BoxError> {
                let n = self.0.fetch_add(1, Ordering::SeqCst);
                Ok(format!("t{}", n + self.1.load(Ordering::SeqCst) * 10))
            }
            fn invalidate(&self) {
                self.1.fetch_add(1, Ordering::SeqCst);
            }
        }
        let config = ClientConfig::default()
            .token_source(Source(asked.clone(), invalidated.clone()))
            .validate()
            .unwrap();
        let pacer = Pacer::new(&config, 1);
        let mut sent = Vec::new();
        let call = Call::new(get(), CallContext::new(&config, &pacer), 1);
        let (steps, _) = drive(
            call,
            Instant::now(),
            MS(1),
            vec![status(401), status(200)],
            &mut sent,
        );
        assert_eq!(steps, [Seen::Send, Seen::Send, Seen::Done(Ok(200))]);
        let tokens: Vec<&str> = sent
            .iter()
            .map(|r| r.headers()["authorization"].to_str().unwrap())
            .collect();
        assert_eq!(
            tokens,
            ["Bearer t0", "Bearer t11"],
            "asked each time, fresh after the 401"
        );
        assert_eq!(invalidated.load(Ordering::SeqCst), 1);
        let call = Call::new(get(), CallContext::new(&config, &pacer), 1);
        let (steps, _) = drive(
            call,
            Instant::now(),
            MS(1),
            vec![status(401), status(401)],
            &mut Vec::new(),
        );
        assert_eq!(
            steps,
            [Seen::Send, Seen::Send, Seen::Done(Ok(401))],
            "once per call"
        );
        // A source that fails sends nothing.
        let failing = ClientConfig::default()
            .token_source(|| Err::<String, _>("no token today"))
            .validate()
            .unwrap();
        let pacer = Pacer::new(&failing, 1);
        let call = Call::new(get(), CallContext::new(&failing, &pacer), 1);
        let (steps, _) = drive(call, Instant::now(), MS(1), vec![], &mut Vec::new());
        assert_eq!(steps, [Seen::Done(Err("invalid"))]);
    }

    #[test]
    fn per_call_options_replace_the_clients_retry_policy() {
        let config = config(|c| c);
        let pacer = Pacer::new(&config, 1);
        let never = crate::options::CallOptions::default().retry(RetryPolicy::none());
        let call = Call::new(get(), CallContext::new(&config, &pacer).options(&never), 1);
        let (steps, _) = drive(
            call,
            Instant::now(),
            MS(1),
            vec![status(503)],
            &mut Vec::new(),
        );
        assert_eq!(steps, [Seen::Send, Seen::Done(Ok(503))]);
    }

    #[test]
    fn a_driver_out_of_step_gets_an_error_not_a_panic() {
        let config = config(|c| c);
        let pacer = Pacer::new(&config, 1);
        let mut call = Call::new(get(), CallContext::new(&config, &pacer), 1);
        let now = Instant::now();
        assert!(matches!(call.next(now), CallStep::Send(_)));
        assert!(matches!(
            call.next(now),
            CallStep::Done(Err(Error::Protocol(_)))
        ));
        assert!(matches!(
            call.next(now),
            CallStep::Done(Err(Error::Protocol(_)))
        ));
    }
}
