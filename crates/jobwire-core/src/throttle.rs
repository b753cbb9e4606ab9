//! How fast a client may send: an optional rate limit shared by all clones of a client,
//! slowed down by the server's 429 answers. A pure state machine with injected time; the
//! facades' `execute` asks it before each attempt and tells it each answer.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use jobwire_core::throttle::Throttle;
//!
//! let t0 = Instant::now();
//! let mut throttle = Throttle::new(Some(10.0)); // 10 a second: one per 100 ms
//! assert_eq!(throttle.reserve(t0), Duration::ZERO);
//! assert_eq!(throttle.reserve(t0), Duration::from_millis(100), "the next slot");
//! throttle.observe(t0, 429, Some(Duration::from_secs(2)));
//! assert!(throttle.reserve(t0) >= Duration::from_secs(2), "held for Retry-After");
//! ```

use std::time::{Duration, Instant};

use crate::config::{MAX_RATE, MIN_RATE};

/// How long every request is held after a 429 without `Retry-After`.
const DEFAULT_PAUSE: Duration = Duration::from_secs(1);
/// The lowest a 429 brings the rate, as a fraction of the configured rate.
const FLOOR: f64 = 1.0 / 16.0;
/// How much of the configured rate each success gives back.
const RECOVERY: f64 = 1.0 / 10.0;

/// The send schedule of one client; see the module docs.
#[derive(Debug, Clone)]
pub struct Throttle {
    /// The rate asked for, requests a second.
    configured: Option<f64>,
    /// The rate in force: the configured one, or less after 429s.
    rate: f64,
    /// When the next request may go, by the rate.
    next_slot: Option<Instant>,
    /// No request goes before this (a 429's `Retry-After`).
    paused_until: Option<Instant>,
}

impl Throttle {
    /// A schedule of at most `per_second` requests a second, evenly spaced (`None`: no
    /// limit, but 429s still hold every request for their `Retry-After`). A rate outside
    /// what a client accepts ([`MIN_RATE`] to [`MAX_RATE`]) is taken as the nearest one.
    ///
    /// [`MIN_RATE`]: crate::config::MIN_RATE
    /// [`MAX_RATE`]: crate::config::MAX_RATE
    pub fn new(per_second: Option<f64>) -> Self {
        let per_second = per_second.map(|r| r.clamp(MIN_RATE, MAX_RATE));
        Throttle {
            configured: per_second,
            rate: per_second.unwrap_or(0.0),
            next_slot: None,
            paused_until: None,
        }
    }

    /// Takes the next send slot at `now`: how long to wait before sending. Each call
    /// takes a slot of its own, so callers that wait are spaced, not released at once.
    pub fn reserve(&mut self, now: Instant) -> Duration {
        let mut at = self.paused_until.map_or(now, |p| p.max(now));
        if self.configured.is_some() && self.rate > 0.0 {
            let slot = self.next_slot.map_or(at, |n| n.max(at));
            // A slot an `Instant` cannot follow (held off by an enormous `Retry-After`
            // under an enormous `max_delay`) is never reached: no need for a later one.
            let spacing = Duration::from_secs_f64(1.0 / self.rate);
            self.next_slot = Some(slot.checked_add(spacing).unwrap_or(slot));
            at = slot;
        }
        at.saturating_duration_since(now)
    }

    /// Learns from an answer at `now` with HTTP `status` (0 when there was none): a 429
    /// holds everything for its `Retry-After` (1 s without) and halves the rate; another
    /// answer gives some of the rate back.
    pub fn observe(&mut self, now: Instant, status: u16, retry_after: Option<Duration>) {
        let Some(configured) = self.configured else {
            if status == 429 {
                self.pause(now, retry_after);
            }
            return;
        };
        if status == 429 {
            self.pause(now, retry_after);
            self.rate = (self.rate / 2.0).max(configured * FLOOR);
        } else if status != 0 {
            self.rate = (self.rate + configured * RECOVERY).min(configured);
        }
    }

    fn pause(&mut self, now: Instant, retry_after: Option<Duration>) {
        // A pause past what an `Instant` can hold is no pause a client can keep: the
        // call that got it gives up instead (its pause is over `max_delay`).
        let Some(until) = now.checked_add(retry_after.unwrap_or(DEFAULT_PAUSE)) else {
            return;
        };
        self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
    }

    /// The rate in force, if there is a limit.
    pub fn rate(&self) -> Option<f64> {
        self.configured.map(|_| self.rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// A hostile `Retry-After` neither panics nor holds the client for ages.
    #[test]
    fn a_retry_after_too_large_for_an_instant_is_no_pause() {
        let t0 = Instant::now();
        let mut t = Throttle::new(None);
        t.observe(t0, 429, Some(Duration::from_secs(u64::MAX)));
        assert_eq!(t.reserve(t0), Duration::ZERO);
        t.observe(t0, 429, Some(Duration::from_secs(2)));
        assert_eq!(t.reserve(t0), Duration::from_secs(2));
    }

    /// Found by the `retry_after` fuzz target: a rate of 1e-20 a second passed
    /// `validate` and its spacing panicked ("cannot convert float seconds to Duration").
    #[test]
    fn rates_out_of_range_are_the_nearest_and_far_slots_do_not_overflow() {
        let t0 = Instant::now();
        for (rate, spacing) in [
            (1e-20, 86_400_000 * MS),
            (5e-324, 86_400_000 * MS),
            (1e12, MS / 1000),
        ] {
            let mut t = Throttle::new(Some(rate));
            assert_eq!(t.reserve(t0), Duration::ZERO);
            let next = t.reserve(t0);
            assert!(next.abs_diff(spacing) < MS, "{rate}: {next:?}");
        }
        // Held up to the last instant an `Instant` can hold: its next slot cannot follow.
        let (mut lo, mut hi) = (0, u64::MAX);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            match t0.checked_add(Duration::from_secs(mid)) {
                Some(_) => lo = mid,
                None => hi = mid - 1,
            }
        }
        let mut t = Throttle::new(Some(1.0));
        t.observe(t0, 429, Some(Duration::from_secs(lo)));
        assert_eq!(t.reserve(t0), Duration::from_secs(lo));
        assert_eq!(t.reserve(t0), Duration::from_secs(lo));
    }

    #[test]
    fn the_pacer_holds_other_calls_no_longer_than_the_policy_waits() {
        let t0 = Instant::now();
        let config = crate::ClientConfig::default();
        let pacer = Pacer::new(&config, 1);
        let policy = crate::retry::RetryPolicy::default().max_delay(Duration::from_secs(5));
        let request = http::Request::get("http://x/v1/jobs")
            .body(bytes::Bytes::new())
            .unwrap();
        let answer = http::Response::builder()
            .status(429)
            .header("retry-after", "100000000")
            .body(bytes::Bytes::new())
            .unwrap();
        let attempt = pacer.after(&policy, 1, &request, &Ok(answer), None, t0);
        assert!(
            matches!(attempt, crate::retry::Attempt::Done),
            "{attempt:?}"
        );
        assert_eq!(
            pacer.reserve(t0),
            Duration::from_secs(5),
            "capped at max_delay"
        );
    }

    #[test]
    fn without_a_limit_nothing_waits_but_a_429() {
        let t0 = Instant::now();
        let mut t = Throttle::new(None);
        for _ in 0..100 {
            assert_eq!(t.reserve(t0), Duration::ZERO);
        }
        t.observe(t0, 503, None);
        assert_eq!(t.reserve(t0), Duration::ZERO);
        t.observe(t0, 429, Some(3 * 1000 * MS));
        assert_eq!(t.reserve(t0 + 1000 * MS), 2000 * MS);
        assert_eq!(t.reserve(t0 + 3000 * MS), Duration::ZERO);
        assert_eq!(t.rate(), None);
    }

    #[test]
    fn slots_are_evenly_spaced_and_taken_in_turn() {
        let t0 = Instant::now();
        let mut t = Throttle::new(Some(20.0));
        let waits: Vec<Duration> = (0..4).map(|_| t.reserve(t0)).collect();
        assert_eq!(waits, [Duration::ZERO, 50 * MS, 100 * MS, 150 * MS]);
        // Idle time is not saved up: no burst after a quiet spell.
        let later = t0 + 10_000 * MS;
        assert_eq!(t.reserve(later), Duration::ZERO);
        assert_eq!(t.reserve(later), 50 * MS);
    }

    #[test]
    fn a_429_pauses_halves_and_success_recovers() {
        let t0 = Instant::now();
        let mut t = Throttle::new(Some(100.0));
        t.observe(t0, 429, None);
        assert_eq!(t.rate(), Some(50.0));
        assert_eq!(t.reserve(t0), 1000 * MS, "held for the default pause");
        for _ in 0..10 {
            t.observe(t0, 429, Some(MS));
        }
        assert_eq!(t.rate(), Some(100.0 / 16.0), "never below the floor");
        t.observe(t0, 200, None);
        assert_eq!(t.rate(), Some(100.0 / 16.0 + 10.0));
        for _ in 0..20 {
            t.observe(t0, 404, None);
        }
        assert_eq!(t.rate(), Some(100.0), "never above the limit");
        t.observe(t0, 0, None);
        assert_eq!(t.rate(), Some(100.0), "no answer teaches nothing");
    }
}

/// What every clone of a client shares about sending — the retry budget with its jitter,
/// and the [`Throttle`] — behind locks held only for a decision.
#[derive(Debug)]
pub struct Pacer {
    retry: std::sync::Mutex<(crate::retry::RetryBudget, crate::backoff::Jitter)>,
    throttle: std::sync::Mutex<Throttle>,
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Pacer {
    /// The pacing of a client with `config`, its jitter seeded with `seed`.
    pub fn new(config: &crate::ClientConfig, seed: u64) -> Self {
        Pacer {
            retry: std::sync::Mutex::new((
                crate::retry::RetryBudget::default(),
                crate::backoff::Jitter::new(seed),
            )),
            throttle: std::sync::Mutex::new(Throttle::new(config.rate_limit_value())),
        }
    }

    /// How long to wait at `now` before the next attempt goes (see
    /// [`Throttle::reserve`]).
    pub fn reserve(&self, now: Instant) -> Duration {
        lock(&self.throttle).reserve(now)
    }

    /// After an attempt: the throttle learns from `answer`, then `policy` decides
    /// whether to send `request` again (see [`RetryPolicy::decide`](crate::retry::RetryPolicy::decide)).
    pub fn after(
        &self,
        policy: &crate::retry::RetryPolicy,
        attempt: u32,
        request: &http::Request<bytes::Bytes>,
        answer: &Result<http::Response<bytes::Bytes>, crate::Error>,
        time_left: Option<Duration>,
        now: Instant,
    ) -> crate::retry::Attempt {
        if let Ok(response) = answer {
            // A `Retry-After` longer than the policy waits ends this call; the other
            // calls are held no longer than it would wait either.
            let retry_after =
                crate::endpoint::retry_after_of(response).map(|d| d.min(policy.max_delay_value()));
            lock(&self.throttle).observe(now, response.status().as_u16(), retry_after);
        }
        let mut retry = lock(&self.retry);
        let (budget, jitter) = &mut *retry;
        policy.decide(attempt, request, answer, time_left, budget, jitter)
    }
}
