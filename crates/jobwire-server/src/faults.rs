//! Faults injected on purpose: a server that misbehaves the way real networks and real
//! servers do, so that users test their own retry and timeout handling against jobwire
//! (and jobwire tests its own).
//!
//! Each [`FaultRule`] matches requests by method and path, and fires with a probability
//! drawn from one seeded sequence, so a test with a fixed seed sees the same faults on the
//! same requests every run.
//!
//! ```
//! use std::time::Duration;
//! use jobwire_server::{Fault, Faults, ServerConfig};
//!
//! let faults = Faults::new(42)
//!     // One submit answer in ten is lost after the job was stored.
//!     .rule(Fault::DropAnswer, 0.1, Some("POST"), "/v1/services/*/jobs")
//!     // One request in ten, anywhere, is turned away as overloaded.
//!     .rule(Fault::Unavailable { retry_after: Duration::from_secs(1) }, 0.1, None, "");
//! let config = ServerConfig::new().faults(faults);
//! # let _ = config;
//! ```

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http::header::{HeaderValue, RETRY_AFTER};

use crate::http::ApiError;

/// One way to misbehave.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Fault {
    /// Handle the request — its effects are stored — then break the connection instead
    /// of answering, as a network that loses an answer does.
    DropAnswer,
    /// Answer 503 `unavailable` with `Retry-After`, without handling the request.
    Unavailable {
        /// The `Retry-After` to send (rounded up to whole seconds; 0 means "at once").
        retry_after: Duration,
    },
    /// Answer 429 `rate_limited` with `Retry-After`, without handling the request.
    RateLimited {
        /// The `Retry-After` to send (rounded up to whole seconds; 0 means "at once").
        retry_after: Duration,
    },
    /// Hold the request this long before handling it: nothing, not even the head, is
    /// sent meanwhile.
    StallHead(Duration),
    /// Handle the request and send the head, then hold the body this long.
    StallBody(Duration),
    /// Break the connection once this many bytes of the body were sent: for event
    /// streams, a connection that dies mid-stream.
    CutBody {
        /// Bytes sent before the cut.
        after_bytes: usize,
    },
}

/// Which requests a fault applies to, and how often.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FaultRule {
    fault: Fault,
    probability: f64,
    method: Option<http::Method>,
    path: Vec<String>,
}

impl FaultRule {
    /// Whether this rule covers `method` and `path` (`*` in the pattern matches one path
    /// segment; an empty pattern matches every path).
    fn covers(&self, method: &http::Method, path: &str) -> bool {
        if self.method.as_ref().is_some_and(|m| m != method) {
            return false;
        }
        if self.path.is_empty() {
            return true;
        }
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        segments.len() == self.path.len()
            && self
                .path
                .iter()
                .zip(&segments)
                .all(|(want, got)| want == "*" || want == got)
    }
}

/// The faults a server injects; see the module docs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    rules: Vec<FaultRule>,
    seed: u64,
}

impl Faults {
    /// No faults yet; `seed` fixes which requests the probabilities pick.
    pub fn new(seed: u64) -> Self {
        Faults {
            rules: Vec::new(),
            seed,
        }
    }

    /// Adds a rule: `fault` on requests with `method` (any when `None`) to paths matching
    /// `path` (`*` matches one segment, `""` every path), each with `probability`
    /// (0 to 1). The first rule that covers a request and fires applies.
    pub fn rule(
        mut self,
        fault: Fault,
        probability: f64,
        method: Option<&str>,
        path: &str,
    ) -> Self {
        let method = method.and_then(|m| m.to_ascii_uppercase().parse().ok());
        let path = path
            .trim_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        self.rules.push(FaultRule {
            fault,
            probability: if probability.is_nan() {
                0.0
            } else {
                probability.clamp(0.0, 1.0)
            },
            method,
            path,
        });
        self
    }

    /// Whether any rule is set.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Adds a rule written as the binary's `--fault` takes it:
    /// `KIND[=SECONDS|BYTES]:PROBABILITY[:METHOD[:PATH]]`, where KIND is `drop-answer`,
    /// `unavailable=S`, `rate-limited=S`, `stall-head=S`, `stall-body=S` or `cut-body=B`;
    /// METHOD may be `*` for any.
    ///
    /// ```
    /// let faults = jobwire_server::Faults::new(1)
    ///     .with_spec("drop-answer:0.1:POST:/v1/services/*/jobs")?
    ///     .with_spec("unavailable=2:0.05")?;
    /// assert!(!faults.is_empty());
    /// assert!(jobwire_server::Faults::new(1).with_spec("explode:1").is_err());
    /// # Ok::<(), String>(())
    /// ```
    ///
    /// SECONDS is a number from 0 to 86400 (a day), BYTES a whole number; anything else,
    /// however large or odd, is refused with an error rather than a panic.
    pub fn with_spec(self, spec: &str) -> Result<Self, String> {
        let mut parts = spec.splitn(4, ':');
        let kind = parts.next().unwrap_or_default();
        let (name, arg) = kind.split_once('=').unwrap_or((kind, ""));
        let seconds = || -> Result<Duration, String> {
            arg.parse::<f64>()
                .ok()
                .filter(|n| (0.0..=MAX_FAULT_SECONDS).contains(n))
                .and_then(|n| Duration::try_from_secs_f64(n).ok())
                .ok_or_else(|| {
                    format!("fault {name} needs =SECONDS, 0 to {MAX_FAULT_SECONDS}, in {spec:?}")
                })
        };
        let fault = match name {
            "drop-answer" => Fault::DropAnswer,
            "unavailable" => Fault::Unavailable {
                retry_after: seconds()?,
            },
            "rate-limited" => Fault::RateLimited {
                retry_after: seconds()?,
            },
            "stall-head" => Fault::StallHead(seconds()?),
            "stall-body" => Fault::StallBody(seconds()?),
            "cut-body" => Fault::CutBody {
                after_bytes: arg.parse::<usize>().map_err(|_| {
                    format!("fault {name} needs =BYTES, a whole number, in {spec:?}")
                })?,
            },
            other => return Err(format!("unknown fault {other:?} in {spec:?}")),
        };
        let probability = parts
            .next()
            .and_then(|p| p.parse::<f64>().ok())
            .filter(|p| (0.0..=1.0).contains(p))
            .ok_or_else(|| format!("a fault needs a probability from 0 to 1, in {spec:?}"))?;
        let method = parts.next().filter(|m| !m.is_empty() && *m != "*");
        if let Some(method) = method {
            http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
                .map_err(|_| format!("{method:?} is not an HTTP method, in {spec:?}"))?;
        }
        let path = parts.next().unwrap_or("");
        Ok(self.rule(fault, probability, method, path))
    }
}

/// Longest a `--fault` stall or `Retry-After` may be, in seconds: a day.
const MAX_FAULT_SECONDS: f64 = 86_400.0;

/// The faults in force and the seeded sequence that decides when they fire.
#[derive(Debug)]
pub(crate) struct Injector {
    rules: Vec<FaultRule>,
    state: AtomicU64,
}

impl Injector {
    pub(crate) fn new(faults: &Faults) -> Self {
        Injector {
            rules: faults.rules.clone(),
            state: AtomicU64::new(faults.seed),
        }
    }

    /// The next number of the sequence, in [0, 1) (splitmix64).
    fn draw(&self) -> f64 {
        let mut z = self
            .state
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The fault for this request, if one fires.
    fn pick(&self, method: &http::Method, path: &str) -> Option<Fault> {
        self.rules
            .iter()
            .filter(|rule| rule.covers(method, path))
            .find(|rule| self.draw() < rule.probability)
            .map(|rule| rule.fault.clone())
    }
}

/// A request turned away with `Retry-After` (whole seconds, rounded up).
fn retry_after(error: ApiError, after: Duration) -> Response {
    let seconds = after.as_secs_f64().ceil() as u64;
    error
        .with_header(RETRY_AFTER, HeaderValue::from(seconds))
        .into_response()
}

/// A body that sends `sent`, then breaks the connection (an error frame makes hyper
/// abort it).
fn broken_body(
    sent: impl futures_util::Stream<Item = Result<Bytes, axum::Error>> + Send + 'static,
) -> Body {
    let cut = futures_util::stream::once(async {
        // hyper writes the head with the first pieces of the body: a moment lets what
        // was sent leave, as it has on a connection that dies mid-answer.
        tokio::time::sleep(Duration::from_millis(50)).await;
        Err::<Bytes, std::io::Error>(std::io::Error::other("fault injected: connection cut"))
    });
    Body::from_stream(sent.map(|r| r.map_err(std::io::Error::other)).chain(cut))
}

/// The middleware: applies the fault that fires for a request, if any.
pub(crate) async fn inject(
    State(injector): State<Arc<Injector>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(fault) = injector.pick(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    tracing::debug!(?fault, path = %request.uri().path(), "injecting a fault");
    match fault {
        Fault::Unavailable { retry_after: after } => retry_after(
            ApiError::unavailable("fault injected: the server turns this request away"),
            after,
        ),
        Fault::RateLimited { retry_after: after } => retry_after(
            ApiError::rate_limited("fault injected: the server asks to slow down"),
            after,
        ),
        Fault::StallHead(pause) => {
            tokio::time::sleep(pause).await;
            next.run(request).await
        }
        Fault::DropAnswer => {
            let (mut parts, _) = next.run(request).await.into_parts();
            parts.headers.remove(http::header::CONTENT_LENGTH);
            Response::from_parts(parts, broken_body(futures_util::stream::empty()))
        }
        Fault::StallBody(pause) => {
            let (mut parts, body) = next.run(request).await.into_parts();
            parts.headers.remove(http::header::CONTENT_LENGTH);
            let held = futures_util::stream::once(tokio::time::sleep(pause))
                .filter_map(|()| async { None::<Result<Bytes, axum::Error>> })
                .chain(body.into_data_stream());
            Response::from_parts(parts, Body::from_stream(held))
        }
        Fault::CutBody { after_bytes } => {
            let (mut parts, body) = next.run(request).await.into_parts();
            parts.headers.remove(http::header::CONTENT_LENGTH);
            let mut left = after_bytes;
            let sent = body.into_data_stream().map(move |chunk| {
                chunk.map(|mut bytes| {
                    let take = bytes.len().min(left);
                    left -= take;
                    bytes.split_to(take)
                })
            });
            let sent = sent.take_while(|chunk| {
                let more = !matches!(chunk, Ok(b) if b.is_empty());
                async move { more }
            });
            Response::from_parts(parts, broken_body(sent))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_match_method_and_path_segments() {
        let faults =
            Faults::new(1).rule(Fault::DropAnswer, 1.0, Some("post"), "/v1/services/*/jobs");
        let rule = &faults.rules[0];
        assert!(rule.covers(&http::Method::POST, "/v1/services/echo/jobs"));
        assert!(!rule.covers(&http::Method::GET, "/v1/services/echo/jobs"));
        assert!(!rule.covers(&http::Method::POST, "/v1/services/echo"));
        assert!(!rule.covers(&http::Method::POST, "/v1/services/a/b/jobs"));
        let everywhere = Faults::new(1).rule(Fault::DropAnswer, 1.0, None, "");
        assert!(everywhere.rules[0].covers(&http::Method::GET, "/v1/health"));
    }

    #[test]
    fn the_seed_fixes_which_requests_are_hit() {
        let faults = Faults::new(7).rule(Fault::DropAnswer, 0.3, None, "");
        let hits = |injector: &Injector| -> Vec<bool> {
            (0..200)
                .map(|_| injector.pick(&http::Method::GET, "/x").is_some())
                .collect()
        };
        let (a, b) = (Injector::new(&faults), Injector::new(&faults));
        let first = hits(&a);
        assert_eq!(first, hits(&b), "same seed, same faults");
        let share = first.iter().filter(|h| **h).count() as f64 / 200.0;
        assert!((0.2..0.4).contains(&share), "{share}");
        let other = Injector::new(&Faults::new(8).rule(Fault::DropAnswer, 0.3, None, ""));
        assert_ne!(first, hits(&other));
        let never = Injector::new(&Faults::new(7).rule(Fault::DropAnswer, 0.0, None, ""));
        assert!(hits(&never).iter().all(|h| !h));
    }
}
