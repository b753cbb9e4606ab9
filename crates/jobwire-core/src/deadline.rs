//! One deadline over a whole call: what is left of it at a given time, the earlier of
//! two, fitting an attempt's timeouts into what is left, and the error when it passed.
//! The facades read the clock and pass `now` in; nothing here reads it.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use jobwire_core::deadline;
//!
//! let now = Instant::now();
//! let (soon, later) = (now + Duration::from_secs(1), now + Duration::from_secs(5));
//! assert_eq!(deadline::earlier(Some(later), Some(soon)), Some(soon));
//! assert_eq!(deadline::earlier(None, Some(later)), Some(later));
//! assert_eq!(deadline::time_left(Some(soon), now), Some(Duration::from_secs(1)));
//! assert_eq!(deadline::time_left(None, now), None, "no deadline, no limit");
//! ```

use std::time::{Duration, Instant};

use crate::error::Error;

/// The earlier of two optional deadlines (`None` is no deadline at all).
pub fn earlier(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// What is left of `deadline` at `now` (zero once it passed); `None` without one.
pub fn time_left(deadline: Option<Instant>, now: Instant) -> Option<Duration> {
    deadline.map(|d| d.saturating_duration_since(now))
}

/// The deadline `limit` after `now`; `None` when it is too far to be represented (no
/// deadline at all, as good as).
pub fn after(now: Instant, limit: Duration) -> Option<Instant> {
    now.checked_add(limit)
}

/// Fits an attempt into what is left of its call's deadline: its whole-request timeout
/// is cut to `time_left`; an event stream's per-read timeout is cut to it too, and the
/// stream gets `time_left` as its whole-answer timeout; with nothing left, the call is
/// over.
///
/// ```
/// use std::time::Duration;
/// use jobwire_core::deadline::within_deadline;
/// use jobwire_core::transport::RequestTimeout;
/// let mut req = http::Request::new(bytes::Bytes::new());
/// req.extensions_mut().insert(RequestTimeout(Duration::from_secs(30)));
/// within_deadline(&mut req, Some(Duration::from_secs(2))).unwrap();
/// assert_eq!(RequestTimeout::of(&req), Some(Duration::from_secs(2)));
/// assert!(within_deadline(&mut req, Some(Duration::ZERO)).is_err());
/// ```
pub fn within_deadline<B>(
    request: &mut http::Request<B>,
    time_left: Option<Duration>,
) -> Result<(), Error> {
    use crate::transport::{ReadTimeout, RequestTimeout};
    let Some(left) = time_left else {
        return Ok(());
    };
    if left.is_zero() {
        return Err(deadline_passed());
    }
    let extensions = request.extensions_mut();
    if let Some(ReadTimeout(idle)) = extensions.get::<ReadTimeout>().copied() {
        extensions.insert(ReadTimeout(idle.min(left)));
    }
    let whole = extensions
        .get::<RequestTimeout>()
        .map_or(left, |t| t.0.min(left));
    extensions.insert(RequestTimeout(whole));
    Ok(())
}

/// The error of a call whose deadline passed.
pub fn deadline_passed() -> Error {
    Error::Timeout {
        what: "the call's deadline".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::{ReadTimeout, RequestTimeout};

    #[test]
    fn a_stream_gets_its_read_timeout_cut_and_the_deadline_as_its_end() {
        let mut req = http::Request::new(());
        req.extensions_mut()
            .insert(ReadTimeout(Duration::from_secs(45)));
        within_deadline(&mut req, Some(Duration::from_secs(3))).unwrap();
        assert_eq!(ReadTimeout::of(&req), Some(Duration::from_secs(3)));
        assert_eq!(
            RequestTimeout::of(&req),
            Some(Duration::from_secs(3)),
            "and the stream ends at the deadline"
        );
        let mut plain = http::Request::new(());
        within_deadline(&mut plain, Some(Duration::from_secs(3))).unwrap();
        assert_eq!(RequestTimeout::of(&plain), Some(Duration::from_secs(3)));
        let mut free = http::Request::new(());
        within_deadline(&mut free, None).unwrap();
        assert_eq!(RequestTimeout::of(&free), None);
    }

    #[test]
    fn time_left_never_goes_negative() {
        let t0 = Instant::now();
        let d = t0 + Duration::from_secs(1);
        assert_eq!(
            time_left(Some(d), t0 + Duration::from_secs(5)),
            Some(Duration::ZERO)
        );
        assert_eq!(after(t0, Duration::MAX), None);
    }
}
