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
//! - How much: a [`RetryBudget`] shared by every clone of a client, so a server that
//!   fails every request is not stormed: each retry spends a token, each success earns
//!   half of one back (enough to ride out one failure in five; a server that answers
//!   nothing gets 10 retries in all). The one exception: a connection that broke before
//!   any answer on a call's first attempt (a pooled connection the server closed while
//!   idle, most often) is retried once for free.
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
/// let retries = (0..100).filter(|_| budget.spend()).count();
/// assert_eq!(retries, 10);
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

/// The bucket's size: 10 retries.
const BUDGET_TENTHS: u32 = 100;

impl Default for RetryBudget {
    /// 10 retries in hand; a success earns half of one back.
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
        let retried = (0..50)
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
        assert_eq!(retried, 10);
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
