//! How long to wait after failures, for every machine that waits: the retry of a call
//! ([`retry`](crate::retry)), the reconnect of an event stream
//! ([`follow`](crate::follow)) and the pause after a long-poll answered early
//! ([`wait`](crate::wait)). One exponential [`Backoff`], its ceiling doubling per
//! failure up to a cap, and one seeded random source, [`Jitter`], for the full jitter of
//! the first two (clients that failed together should not come back together).
//!
//! ```
//! use std::time::Duration;
//! use jobwire_core::backoff::{Backoff, Jitter};
//!
//! let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(1));
//! assert_eq!(backoff.ceiling(0), Duration::ZERO, "no failure, no pause");
//! assert_eq!(backoff.ceiling(3), Duration::from_millis(400));
//! assert_eq!(backoff.ceiling(9), Duration::from_secs(1), "capped");
//! let mut jitter = Jitter::new(7);
//! assert!(backoff.jittered(3, &mut jitter) <= Duration::from_millis(400));
//! ```

use std::time::Duration;

/// An exponential back-off: `base` after the first failure, doubling with each one
/// after it, never more than `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    base: Duration,
    max: Duration,
}

impl Backoff {
    /// A back-off from `base`, capped at `max`.
    pub const fn new(base: Duration, max: Duration) -> Self {
        Backoff { base, max }
    }

    /// The longest pause after `failures` failures in a row: zero for none, `base` for
    /// one, doubling per failure after that, at most `max`.
    pub fn ceiling(&self, failures: u32) -> Duration {
        match failures {
            0 => Duration::ZERO,
            n => self
                .base
                .saturating_mul(1u32 << (n - 1).min(20))
                .min(self.max),
        }
    }

    /// Full jitter: a pause drawn evenly between zero and [`ceiling`](Self::ceiling).
    pub fn jittered(&self, failures: u32, jitter: &mut Jitter) -> Duration {
        self.ceiling(failures).mul_f64(jitter.unit())
    }
}

/// A small seeded random sequence (splitmix64) for jitter and random ids. Seed it from
/// [`jitter_seed`], or with a fixed value in tests.
///
/// ```
/// let (mut a, mut b) = (jobwire_core::backoff::Jitter::new(1), jobwire_core::backoff::Jitter::new(1));
/// assert_eq!(a.unit(), b.unit(), "the same seed, the same sequence");
/// assert!((0.0..1.0).contains(&a.unit()));
/// ```
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// A sequence from `seed`.
    pub fn new(seed: u64) -> Self {
        Jitter(seed)
    }

    /// The next number of the sequence.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// The next number, in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A fresh seed, from the standard library's per-process random hash keys (no clock):
/// clients started together should not reconnect together.
pub fn jitter_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn ceilings_double_to_the_cap() {
        let b = Backoff::new(MS(100), Duration::from_secs(2));
        let ceilings: Vec<Duration> = (0..8).map(|n| b.ceiling(n)).collect();
        assert_eq!(
            ceilings,
            [
                MS(0),
                MS(100),
                MS(200),
                MS(400),
                MS(800),
                MS(1600),
                MS(2000),
                MS(2000)
            ]
        );
        assert_eq!(b.ceiling(u32::MAX), MS(2000), "no overflow");
    }

    #[test]
    fn full_jitter_stays_under_the_ceiling_and_spreads() {
        let b = Backoff::new(MS(100), Duration::from_secs(30));
        let mut jitter = Jitter::new(42);
        let pauses: Vec<Duration> = (0..200).map(|_| b.jittered(4, &mut jitter)).collect();
        assert!(pauses.iter().all(|p| *p <= MS(800)));
        assert!(pauses.iter().any(|p| *p < MS(200)) && pauses.iter().any(|p| *p > MS(600)));
    }
}
