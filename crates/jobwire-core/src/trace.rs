//! W3C Trace Context for requests (`traceparent`), when the client is asked to send it:
//! one trace id per call, a fresh parent id per attempt, so a server's spans of the
//! attempts of one call share a trace.

use std::fmt::Write as _;

/// The trace of one call; see the module docs.
///
/// ```
/// let mut n = 0u64;
/// let mut random = || { n += 1; n };
/// let trace = jobwire_core::trace::TraceContext::new(&mut random);
/// assert_eq!(trace.trace_id(), "00000000000000010000000000000002");
/// assert_eq!(
///     trace.traceparent(random()),
///     "00-00000000000000010000000000000002-0000000000000003-01"
/// );
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    trace_id: String,
}

impl TraceContext {
    /// A new trace, its id from two draws of `random` (an all-zero id, which the
    /// standard forbids, is replaced).
    pub fn new(mut random: impl FnMut() -> u64) -> Self {
        let (high, low) = (random(), random());
        let low = if high == 0 && low == 0 { 1 } else { low };
        let mut trace_id = String::with_capacity(32);
        let _ = write!(trace_id, "{high:016x}{low:016x}");
        TraceContext { trace_id }
    }

    /// The trace of a W3C `traceparent` (`00-<trace id>-<parent id>-<flags>`), for calls
    /// made on behalf of the request that carried it; `None` when it is not one.
    ///
    /// ```
    /// use jobwire_core::trace::TraceContext;
    /// let trace = TraceContext::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    /// assert_eq!(trace.trace_id(), "4bf92f3577b34da6a3ce929d0e0e4736");
    /// assert!(TraceContext::parse("00-00000000000000000000000000000000-00f067aa0ba902b7-01").is_none());
    /// assert!(TraceContext::parse("not a traceparent").is_none());
    /// ```
    pub fn parse(traceparent: &str) -> Option<Self> {
        let mut parts = traceparent.trim().split('-');
        let (version, trace_id, parent, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let hex = |s: &str, len: usize| {
            s.len() == len
                && s.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        };
        let valid = hex(version, 2)
            && version != "ff"
            && hex(trace_id, 32)
            && trace_id.bytes().any(|b| b != b'0')
            && hex(parent, 16)
            && hex(flags, 2)
            && (version != "00" || parts.next().is_none());
        valid.then(|| TraceContext {
            trace_id: trace_id.to_owned(),
        })
    }

    /// The trace id, 32 lowercase hex digits.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The `traceparent` header of one attempt whose parent id is `span_id` (0 is
    /// replaced: the standard forbids it), sampled.
    pub fn traceparent(&self, span_id: u64) -> String {
        format!("00-{}-{:016x}-01", self.trace_id, span_id.max(1))
    }
}
