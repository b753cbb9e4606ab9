//! Retrying a request, as a pure decision: after each attempt the facade asks
//! [`RetryPolicy::decide`] whether to send it again and after how long.
//!
//! - What is retried: answers that say the server was busy or a gateway failed (408, 429,
//!   502, 503, 504 — [`Problem::retryable_status`]), a broken connection, a transport
//!   timeout. A connection that could not be made is retried for any request (nothing
//!   reached the server); the others only for a request that may be repeated: a `GET`,
//!   or one marked [`Repeatable`] (a cancel; a submit carrying an `Idempotency-Key`,
//!   which the SDK sets on every submit). 400, 401, 404, 409, 422 are never retried.
//! - When: exponential back-off with full jitter, at least the `Retry-After` the server
//!   asked for (a wait longer than the policy's longest delay gives up instead).
//! - How much: up to 4 attempts per call, and a [`RetryBudget`] shared by every clone
//!   of a client, so a server that fails every request is not stormed: each retry
//!   spends a token of 64, each success earns half of one back. Sized, and table-tested
//!   in simulated time, so 64 callers ride out a steady 20 % fault rate without the
//!   budget ever refusing a retry (a fifth of attempts failing costs a quarter of a
//!   retry per call, half what successes earn, and the 64 tokens absorb the bunches
//!   random faults come in, up to 30 %, where 10 ran dry), while a server that fails
//!   everything gets the 64 retries in all — one per call of 64 callers — and none
//!   after. What no budget helps: at 20 % independent faults, 1 call in 625 fails all
//!   4 of its attempts; `max_attempts(8)` makes that 1 in 390,000. The one
//!   exception: a connection that broke before any answer on a call's first attempt (a
//!   pooled connection the server closed while idle, most often) is retried once for
//!   free.
//!
//! ```
//! use std::time::Duration;
//! use bytes::Bytes;
//! use jobwire_core::backoff::Jitter;
//! use jobwire_core::retry::{Attempt, RetryBudget, RetryPolicy};
//!
//! let policy = RetryPolicy::default();
//! let (mut budget, mut jitter) = (RetryBudget::default(), Jitter::new(7));
//! let request = http::Request::get("http://h/v1/jobs/job_1").body(Bytes::new()).unwrap();
//! let busy = http::Response::builder().status(503).header("retry-after", "1").body(Bytes::new()).unwrap();
//! let next = policy.decide(1, &request, &Ok(busy), None, &mut budget, &mut jitter);
//! assert!(matches!(next, Attempt::Again { after } if after >= Duration::from_secs(1)));
//! ```
//!
//! [`Problem::retryable_status`]: crate::Problem::retryable_status

use std::time::Duration;

use bytes::Bytes;

use crate::backoff::{Backoff, Jitter};
use crate::endpoint::retry_after_of;
use crate::error::{Error, TransportErrorKind};
use crate::Problem;

/// Marks a request (in its extensions) that may be sent twice with no harm: a cancel, a
/// submit with an `Idempotency-Key`. `GET`s need no mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeatable;

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Hand the answer (or error) to the caller.
    Done,
    /// Send the request again after this pause.
    Again {
        /// How long to wait first.
        after: Duration,
    },
}

/// How a client retries; see the module docs.
///
/// ```
/// use std::time::Duration;
/// use jobwire_core::retry::RetryPolicy;
/// let patient = RetryPolicy::default().max_attempts(6).max_delay(Duration::from_secs(30));
/// let never = RetryPolicy::none();
/// # let _ = (patient, never);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Up to 4 attempts, back-off from 100 ms, at most 10 s between two.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// No retries: every answer goes to the caller as it is.
    pub fn none() -> Self {
        RetryPolicy::default().max_attempts(1)
    }

    /// Attempts in all, the first included (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// The ceiling of the first back-off; it doubles per attempt.
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.base_delay = delay;
        self
    }

    /// The longest pause between two attempts; a server asking for a longer
    /// `Retry-After` gets its answer handed to the caller instead.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.max_delay = delay;
        self
    }

    /// The longest pause between two attempts ([`max_delay`](Self::max_delay)).
    ///
    /// ```
    /// use std::time::Duration;
    /// let policy = jobwire_core::retry::RetryPolicy::default().max_delay(Duration::from_secs(3));
    /// assert_eq!(policy.max_delay_value(), Duration::from_secs(3));
    /// ```
    pub fn max_delay_value(&self) -> Duration {
        self.max_delay
    }

    /// Decides after attempt number `attempt` (1 for the first) of `request`, whose
    /// answer was `answer`; `time_left` is what remains of the call's deadline (a pause
    /// that would not end before it is no retry). Spends from or earns into `budget`.
    pub fn decide(
        &self,
        attempt: u32,
        request: &http::Request<Bytes>,
        answer: &Result<http::Response<Bytes>, Error>,
        time_left: Option<Duration>,
        budget: &mut RetryBudget,
        jitter: &mut Jitter,
    ) -> Attempt {
        let repeatable = request.method() == http::Method::GET
            || request.method() == http::Method::HEAD
            || request.extensions().get::<Repeatable>().is_some();
        let asked_wait = match answer {
            Ok(response) if Problem::retryable_status(response.status().as_u16()) => {
                if !repeatable {
                    return Attempt::Done;
                }
                retry_after_of(response)
            }
            Ok(response) => {
                if response.status().is_success() {
                    budget.earn();
                }
                return Attempt::Done;
            }
            // Nothing reached the server: safe to send again, whatever the request.
            Err(Error::Transport(e)) if e.kind() == TransportErrorKind::Connect => None,
            Err(Error::Transport(e)) if e.kind() == TransportErrorKind::Io && repeatable => None,
            Err(Error::Timeout { .. }) if repeatable => None,
            Err(_) => return Attempt::Done,
        };
        if attempt >= self.max_attempts {
            return Attempt::Done;
        }
        if asked_wait.is_some_and(|w| w > self.max_delay) {
            return Attempt::Done;
        }
        let after = Backoff::new(self.base_delay, self.max_delay).jittered(attempt, jitter);
        let after = asked_wait.map_or(after, |w| w.max(after));
        if time_left.is_some_and(|left| after >= left) {
            return Attempt::Done;
        }
        // A connection that broke before any answer on a call's first attempt is most
        // often a pooled one the server closed while it sat idle: it says nothing about
        // the server's health, so that one retry is free of the budget.
        let stale = attempt == 1
            && matches!(answer, Err(Error::Transport(e)) if e.kind() == TransportErrorKind::Io);
        if !stale && !budget.spend() {
            return Attempt::Done;
        }
        Attempt::Again { after }
    }
}

/// A client's retry budget: a token bucket that retries spend and successes refill, so
/// retries stay a small share of the traffic to a server that keeps failing.
///
/// ```
/// let mut budget = jobwire_core::retry::RetryBudget::default();
/// let retries = (0..1000).filter(|_| budget.spend()).count();
/// assert_eq!(retries, 64);
/// budget.earn();
/// assert!(!budget.spend(), "half a retry");
/// budget.earn();
/// assert!(budget.spend());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryBudget {
    /// In tenths of a retry, so refills add up exactly.
    tenths: u32,
}

/// The bucket's size: 64 retries, one for each call of 64 callers against a server that
/// fails everything (aws-sdk-rust's standard mode holds 100: 500 tokens at 5 a retry).
const BUDGET_TENTHS: u32 = 640;

impl Default for RetryBudget {
    /// 64 retries in hand; a success earns half of one back.
    fn default() -> Self {
        RetryBudget {
            tenths: BUDGET_TENTHS,
        }
    }
}

impl RetryBudget {
    /// Takes a token for a retry; `false` when none is left.
    pub fn spend(&mut self) -> bool {
        match self.tenths.checked_sub(10) {
            Some(left) => {
                self.tenths = left;
                true
            }
            None => false,
        }
    }

    /// A success: half a token back, up to the bucket's size.
    pub fn earn(&mut self) {
        self.tenths = (self.tenths + 5).min(BUDGET_TENTHS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::TransportError;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn get() -> http::Request<Bytes> {
        http::Request::get("http://h/v1/jobs/j")
            .body(Bytes::new())
            .unwrap()
    }

    fn post(repeatable: bool) -> http::Request<Bytes> {
        let mut req = http::Request::post("http://h/v1/services/echo/jobs")
            .body(Bytes::new())
            .unwrap();
        if repeatable {
            req.extensions_mut().insert(Repeatable);
        }
        req
    }

    fn answer(status: u16, retry_after: Option<&str>) -> Result<http::Response<Bytes>, Error> {
        let mut b = http::Response::builder().status(status);
        if let Some(r) = retry_after {
            b = b.header("retry-after", r);
        }
        Ok(b.body(Bytes::new()).unwrap())
    }

    fn transport(kind: TransportErrorKind) -> Result<http::Response<Bytes>, Error> {
        Err(Error::from(TransportError::new(kind, "x")))
    }

    fn decide(
        attempt: u32,
        request: &http::Request<Bytes>,
        answer: &Result<http::Response<Bytes>, Error>,
    ) -> Attempt {
        RetryPolicy::default().decide(
            attempt,
            request,
            answer,
            None,
            &mut RetryBudget::default(),
            &mut Jitter::new(1),
        )
    }

    /// What is asked, of which request, after which answer, and whether to retry.
    type Case = (
        &'static str,
        http::Request<Bytes>,
        Result<http::Response<Bytes>, Error>,
        bool,
    );

    fn again(a: Attempt) -> bool {
        matches!(a, Attempt::Again { .. })
    }

    #[test]
    fn what_is_retried() {
        let cases: Vec<Case> = vec![
            ("503 on a GET", get(), answer(503, None), true),
            ("429 on a GET", get(), answer(429, None), true),
            ("408 on a GET", get(), answer(408, None), true),
            ("502 on a GET", get(), answer(502, None), true),
            ("504 on a GET", get(), answer(504, None), true),
            ("500 is not", get(), answer(500, None), false),
            ("200 is not", get(), answer(200, None), false),
            ("404 is not", get(), answer(404, None), false),
            ("409 is not", get(), answer(409, None), false),
            ("422 is not", get(), answer(422, None), false),
            (
                "503 on a plain POST is not",
                post(false),
                answer(503, None),
                false,
            ),
            ("503 on a keyed POST", post(true), answer(503, None), true),
            (
                "a refused connection, any request",
                post(false),
                transport(TransportErrorKind::Connect),
                true,
            ),
            (
                "a broken connection on a plain POST is not",
                post(false),
                transport(TransportErrorKind::Io),
                false,
            ),
            (
                "a broken connection on a keyed POST",
                post(true),
                transport(TransportErrorKind::Io),
                true,
            ),
            (
                "a transport timeout on a GET",
                get(),
                transport(TransportErrorKind::Timeout),
                true,
            ),
            (
                "a transport timeout on a plain POST is not",
                post(false),
                transport(TransportErrorKind::Timeout),
                false,
            ),
            (
                "a decode error is not",
                get(),
                Err(Error::Decode {
                    status: http::StatusCode::OK,
                    message: String::new(),
                    body: Bytes::new(),
                }),
                false,
            ),
        ];
        for (what, request, answer, want) in cases {
            assert_eq!(again(decide(1, &request, &answer)), want, "{what}");
        }
    }

    #[test]
    fn back_off_grows_with_full_jitter_and_stops_at_the_last_attempt() {
        let policy = RetryPolicy::default()
            .max_attempts(4)
            .base_delay(MS(100))
            .max_delay(MS(1000));
        let mut jitter = Jitter::new(3);
        let mut budget = RetryBudget::default();
        for attempt in 1..4 {
            let ceiling = MS(100 * (1 << (attempt - 1))).min(MS(1000));
            match policy.decide(
                attempt,
                &get(),
                &answer(503, None),
                None,
                &mut budget,
                &mut jitter,
            ) {
                Attempt::Again { after } => assert!(after <= ceiling, "{attempt}: {after:?}"),
                other => panic!("{other:?}"),
            }
        }
        let last = policy.decide(
            4,
            &get(),
            &answer(503, None),
            None,
            &mut budget,
            &mut jitter,
        );
        assert_eq!(last, Attempt::Done);
    }

    #[test]
    fn retry_after_is_honoured_or_too_long() {
        let sent = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let policy = RetryPolicy::default().max_delay(Duration::from_secs(5));
        let run = |value: &str| {
            let answer = http::Response::builder()
                .status(429)
                .header("date", httpdate::fmt_http_date(sent))
                .header("retry-after", value)
                .body(Bytes::new())
                .unwrap();
            policy.decide(
                1,
                &get(),
                &Ok(answer),
                None,
                &mut RetryBudget::default(),
                &mut Jitter::new(1),
            )
        };
        assert!(matches!(run("2"), Attempt::Again { after } if after >= Duration::from_secs(2)));
        // A date is measured against the answer's own Date: no client clock involved.
        let date = httpdate::fmt_http_date(sent + Duration::from_secs(3));
        assert!(matches!(run(&date), Attempt::Again { after } if after >= Duration::from_secs(3)));
        assert_eq!(run("60"), Attempt::Done, "longer than the policy waits");
    }

    #[test]
    fn the_budget_stops_a_storm_and_successes_refill_it() {
        let policy = RetryPolicy::default();
        let mut budget = RetryBudget::default();
        let mut jitter = Jitter::new(1);
        let retried = (0..100)
            .filter(|_| {
                again(policy.decide(
                    1,
                    &get(),
                    &answer(503, None),
                    None,
                    &mut budget,
                    &mut jitter,
                ))
            })
            .count();
        assert_eq!(retried, 64);
        for _ in 0..2 {
            policy.decide(
                1,
                &get(),
                &answer(200, None),
                None,
                &mut budget,
                &mut jitter,
            );
        }
        assert!(again(policy.decide(
            1,
            &get(),
            &answer(503, None),
            None,
            &mut budget,
            &mut jitter
        )));
        assert!(!again(RetryPolicy::none().decide(
            1,
            &get(),
            &answer(503, None),
            None,
            &mut budget,
            &mut jitter
        )));
    }

    /// What a simulated run came to.
    #[derive(Debug, PartialEq, Eq)]
    struct Run {
        /// Calls that ended with the server's 503.
        failed: usize,
        /// Of those, the calls the budget refused a retry (attempts were left).
        refused: usize,
        /// Retries made.
        retries: usize,
    }

    /// `callers` callers, each making `calls` calls one after the other with `policy`
    /// and one shared budget, against a server that answers each attempt 503 with
    /// probability `fault`, in simulated time: an attempt takes 5 ms, a retry waits the
    /// pause the policy says.
    fn simulate(policy: &RetryPolicy, callers: usize, calls: usize, fault: f64, seed: u64) -> Run {
        simulate_with(RetryBudget::default(), policy, callers, calls, fault, seed)
    }

    /// [`simulate`] with `budget` to start from.
    fn simulate_with(
        mut budget: RetryBudget,
        policy: &RetryPolicy,
        callers: usize,
        calls: usize,
        fault: f64,
        seed: u64,
    ) -> Run {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut jitter = Jitter::new(seed);
        let mut faults = Jitter::new(seed ^ 0x5eed);
        let (request, ok, busy) = (get(), answer(200, None), answer(503, None));
        // (when, caller, attempt), earliest first; the callers start within 10 ms.
        let mut due: BinaryHeap<Reverse<(Duration, usize, u32)>> = (0..callers)
            .map(|c| Reverse((MS(10).mul_f64(faults.unit()), c, 1)))
            .collect();
        let mut left = vec![calls; callers];
        let mut run = Run {
            failed: 0,
            refused: 0,
            retries: 0,
        };
        while let Some(Reverse((at, caller, attempt))) = due.pop() {
            let answered = at + MS(5);
            let failed = faults.unit() < fault;
            let answer = if failed { &busy } else { &ok };
            match policy.decide(attempt, &request, answer, None, &mut budget, &mut jitter) {
                Attempt::Again { after } => {
                    run.retries += 1;
                    due.push(Reverse((answered + after, caller, attempt + 1)));
                }
                Attempt::Done => {
                    if failed {
                        run.failed += 1;
                        run.refused += usize::from(attempt < policy.max_attempts);
                    }
                    left[caller] -= 1;
                    if left[caller] > 0 {
                        due.push(Reverse((answered, caller, 1)));
                    }
                }
            }
        }
        run
    }

    /// The budget's sizing, in simulated time. 64 callers ride out a steady 20 % fault
    /// rate (each attempt fails at random, so failures bunch now and then) without the
    /// budget refusing a single retry: with attempts enough, no call fails; with the
    /// default 4, the only failures are calls whose 4 attempts all failed (1 in 625). A
    /// server that fails everything costs at most one retry per call of 64 callers, and
    /// nothing more after; one failing half of everything is not stormed.
    #[test]
    fn the_default_budget_rides_out_faults_and_caps_a_dead_server() {
        let patient = RetryPolicy::default().max_attempts(10);
        let default = RetryPolicy::default();
        for seed in 1..=5 {
            let run = simulate(&patient, 64, 100, 0.2, seed);
            assert_eq!(
                (run.failed, run.refused),
                (0, 0),
                "seed {seed}: 6,400 calls"
            );
            // A fifth of attempts failing: a quarter of a retry per call.
            assert!((1300..1900).contains(&run.retries), "seed {seed}: {run:?}");
            let run = simulate(&default, 64, 100, 0.2, seed);
            assert_eq!(run.refused, 0, "seed {seed}: {run:?}");
            assert!(run.failed < 30, "seed {seed}: about 6,400 / 625: {run:?}");
        }
        // Everything fails: the 64 retries of the budget, one per call of 64 callers…
        let dead = |callers, calls| simulate(&default, callers, calls, 1.0, 1);
        assert_eq!(dead(64, 1).retries, 64);
        // …and none more, however many calls follow.
        assert_eq!(dead(64, 10).retries, 64);
        assert_eq!(dead(1, 100).retries, 64);
        // Half of everything failing: fewer retries than calls.
        let run = simulate(&patient, 64, 100, 0.5, 1);
        assert!(run.retries < 6400 && run.refused > 0, "{run:?}");
    }

    /// 64 callers, 6,400 calls per run, 30 runs: the old budget of 10 retries ran dry
    /// where faults bunch (at 30 %), where the default of 64 never did.
    #[test]
    fn a_budget_of_ten_ran_dry_under_the_same_faults() {
        let patient = RetryPolicy::default().max_attempts(10);
        let refused = |tenths: u32, fault: f64| -> usize {
            (0..30)
                .map(|seed| {
                    let budget = RetryBudget { tenths };
                    simulate_with(budget, &patient, 64, 100, fault, seed).refused
                })
                .sum()
        };
        assert_eq!(refused(BUDGET_TENTHS, 0.2), 0);
        assert_eq!(refused(BUDGET_TENTHS, 0.3), 0, "64 absorb the bunches");
        assert!(refused(100, 0.3) > 0, "10 ran dry");
        // Above a third, retries cost more than successes earn: any bucket drains, and
        // the server is spared.
        assert!(refused(BUDGET_TENTHS, 0.35) > 1000);
    }

    #[test]
    fn no_pause_that_ends_past_the_deadline() {
        let policy = RetryPolicy::default().base_delay(MS(100));
        let (mut budget, mut jitter) = (RetryBudget::default(), Jitter::new(1));
        let mut after =
            |answer, left| policy.decide(1, &get(), &answer, left, &mut budget, &mut jitter);
        assert_eq!(after(answer(503, Some("1")), Some(MS(500))), Attempt::Done);
        assert!(again(after(
            answer(503, None),
            Some(Duration::from_secs(5))
        )));
        assert!(again(after(answer(503, None), None)));
    }

    #[test]
    fn a_stale_connection_is_retried_once_for_free() {
        let policy = RetryPolicy::default();
        let mut empty = RetryBudget::default();
        while empty.spend() {}
        let mut jitter = Jitter::new(1);
        let broken = transport(TransportErrorKind::Io);
        // First attempt, connection broken: retried though the budget is empty.
        assert!(again(policy.decide(
            1,
            &get(),
            &broken,
            None,
            &mut empty,
            &mut jitter
        )));
        // Not twice, and not for answers.
        assert!(!again(policy.decide(
            2,
            &get(),
            &broken,
            None,
            &mut empty,
            &mut jitter
        )));
        let busy = answer(503, None);
        assert!(!again(policy.decide(
            1,
            &get(),
            &busy,
            None,
            &mut empty,
            &mut jitter
        )));
    }
}
