//! Client settings shared by both facades: where the server is, who you are, how long
//! things may take.

use std::time::Duration;

use crate::error::{duration_text, quoted, Error};

/// The server a client talks to when neither the builder nor `JOBWIRE_URL` names one.
pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:7878";

/// Environment variable naming the server's base URL.
pub const ENV_URL: &str = "JOBWIRE_URL";

/// Environment variable holding the bearer token.
pub const ENV_TOKEN: &str = "JOBWIRE_TOKEN";

/// The longest timeout a setting accepts: long enough for any job, short enough that
/// adding it to `Instant::now()` cannot overflow.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_secs(366 * 24 * 3600);

/// The longest single long-poll the SDK asks for: the server's cap (docs/api.md).
pub const MAX_LONG_POLL: std::time::Duration = std::time::Duration::from_secs(60);
/// The highest rate limit accepted, in requests a second.
pub const MAX_RATE: f64 = 1_000_000.0;
/// The lowest rate limit accepted, in requests a second: one a day. (Spacing requests
/// further apart than a `Duration` or an `Instant` can hold once panicked.)
pub const MIN_RATE: f64 = 1.0 / 86_400.0;

/// The default largest answer body: 32 MiB, room for the largest job a jobwire server
/// answers with its default limits (an input of at most 1 MiB, an output of at most
/// 16 MiB, JSON escapes and the rest of the job; docs/api.md, "Limits").
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// The default largest event: 1 MiB, the most any jobwire server sends (docs/api.md,
/// "Limits"), so every stream is read whole.
pub const DEFAULT_MAX_EVENT_BYTES: usize = crate::sse::SseDecoder::DEFAULT_LIMIT;

/// The default most connections to one host: 100, as aiohttp's and httpx's pools.
pub const DEFAULT_MAX_CONNECTIONS_PER_HOST: usize = 100;

/// Everything a client needs to know besides its transport.
///
/// Build it with the setters (each returns the changed config), then [`validate`]
/// it; the facades' `Client::builder()` offers the same setters.
///
/// ```
/// use std::time::Duration;
/// use jobwire_core::ClientConfig;
/// let config = ClientConfig::default()
///     .base_url("http://127.0.0.1:7878/")
///     .token("secret")
///     .timeout(Duration::from_secs(10))
///     .validate()
///     .unwrap();
/// assert_eq!(config.base_url_value(), "http://127.0.0.1:7878");
/// ```
///
/// [`validate`]: ClientConfig::validate
#[derive(Clone)]
pub struct ClientConfig {
    base_url: String,
    token: Option<String>,
    user_agent: String,
    timeout: Duration,
    connect_timeout: Duration,
    wait_timeout: Option<Duration>,
    long_poll: Duration,
    max_body_bytes: usize,
    max_event_bytes: usize,
    max_connections_per_host: usize,
    stream_idle_timeout: Duration,
    wait_by_events: bool,
    retry: crate::retry::RetryPolicy,
    max_in_flight: Option<usize>,
    rate_limit: Option<f64>,
    traceparent: bool,
    /// Asked for the token before each request, instead of `token`.
    token_source: Option<crate::token::SharedTokenSource>,
    /// `Authorization` and `User-Agent` as header values, made by `validate`.
    headers: Option<Headers>,
}

/// The header values every request carries, and the base URL's parts a request's URI
/// is put together from, made once.
#[derive(Clone)]
struct Headers {
    authorization: Option<http::HeaderValue>,
    user_agent: http::HeaderValue,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// The base URL's path, without the trailing slash ("" for none).
    base_path: String,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            token: None,
            user_agent: concat!("jobwire-rust/", env!("CARGO_PKG_VERSION")).to_owned(),
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            wait_timeout: None,
            long_poll: Duration::from_secs(30),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_event_bytes: DEFAULT_MAX_EVENT_BYTES,
            max_connections_per_host: DEFAULT_MAX_CONNECTIONS_PER_HOST,
            stream_idle_timeout: Duration::from_secs(45),
            wait_by_events: true,
            retry: crate::retry::RetryPolicy::default(),
            max_in_flight: None,
            rate_limit: None,
            traceparent: false,
            token_source: None,
            headers: None,
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token never appears in logs or panics.
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("user_agent", &self.user_agent)
            .field("timeout", &self.timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("wait_timeout", &self.wait_timeout)
            .field("long_poll", &self.long_poll)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_event_bytes", &self.max_event_bytes)
            .field("max_connections_per_host", &self.max_connections_per_host)
            .field("stream_idle_timeout", &self.stream_idle_timeout)
            .field("wait_by_events", &self.wait_by_events)
            .field("retry", &self.retry)
            .field("max_in_flight", &self.max_in_flight)
            .field("rate_limit", &self.rate_limit)
            .field("traceparent", &self.traceparent)
            .field(
                "token_source",
                &self.token_source.as_ref().map(|_| "<source>"),
            )
            .finish()
    }
}

impl ClientConfig {
    /// Settings from `JOBWIRE_URL` (default [`DEFAULT_BASE_URL`]) and `JOBWIRE_TOKEN`.
    ///
    /// ```
    /// let config = jobwire_core::ClientConfig::from_env_with(|name| match name {
    ///     "JOBWIRE_URL" => Some("https://jobs.example.com".into()),
    ///     "JOBWIRE_TOKEN" => Some("t0k".into()),
    ///     _ => None,
    /// });
    /// assert_eq!(config.base_url_value(), "https://jobs.example.com");
    /// ```
    pub fn from_env() -> Self {
        Self::from_env_with(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) with the variables looked up by `get` (for tests).
    pub fn from_env_with(get: impl Fn(&str) -> Option<String>) -> Self {
        let mut config = ClientConfig::default();
        if let Some(url) = get(ENV_URL).filter(|s| !s.trim().is_empty()) {
            config = config.base_url(url.trim());
        }
        if let Some(token) = get(ENV_TOKEN).filter(|s| !s.trim().is_empty()) {
            config = config.token(token.trim());
        }
        config
    }

    /// The server's base URL, e.g. `https://jobs.example.com` or `http://host:7878/prefix`.
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The bearer token sent with every request.
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self.token_source = None;
        self.headers = None;
        self
    }

    /// Asks `source` for the bearer token before each request, instead of sending a
    /// fixed one (see [`token`](crate::token)); a 401 makes it fetch a fresh one, and
    /// the call is sent once more. Replaces [`token`](Self::token).
    pub fn token_source(mut self, source: impl crate::token::TokenSource) -> Self {
        self.token_source = Some(std::sync::Arc::new(source));
        self.token = None;
        self.headers = None;
        self
    }

    /// How long one plain request may take, answer body included (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long connecting may take (default 10 s); the transport applies it.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The default bound on `wait()` and `result()` (default: none, wait as long as the
    /// job runs). `wait_for` overrides it per call.
    pub fn wait_timeout(mut self, timeout: Duration) -> Self {
        self.wait_timeout = Some(timeout);
        self
    }

    /// The longest single long-poll while waiting for a job (default 30 s; the server
    /// caps it too). Shorter suits proxies that cut idle connections.
    pub fn long_poll(mut self, max: Duration) -> Self {
        self.long_poll = max;
        self
    }

    /// The `User-Agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self.headers = None;
        self
    }

    /// The largest answer body accepted (default 32 MiB, room for the largest job a
    /// jobwire server answers with its default limits); a larger one is
    /// [`Error::TooLarge`], not an out-of-memory.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// The largest event (its data, in bytes) an event stream accepts (default 1 MiB,
    /// the most a jobwire server sends). A larger one ends a `job.events()` stream with
    /// [`Error::TooLarge`]; waits then read their jobs instead.
    pub fn max_event_bytes(mut self, limit: usize) -> Self {
        self.max_event_bytes = limit;
        self
    }

    /// The most connections the default transport opens to one host (default 100, as
    /// aiohttp and httpx; an HTTP/2 connection counts its streams). Requests beyond it
    /// wait for a connection in the order they came, they do not fail; so do requests
    /// that find the process out of file descriptors. Event streams count too.
    pub fn max_connections_per_host(mut self, n: usize) -> Self {
        self.max_connections_per_host = n;
        self
    }

    /// How long an event stream may deliver nothing at all — no event, not even a
    /// keep-alive — before it is taken for dead and reconnected (default 45 s, three of
    /// the reference server's 15 s heartbeats).
    pub fn stream_idle_timeout(mut self, timeout: Duration) -> Self {
        self.stream_idle_timeout = timeout;
        self
    }

    /// Whether `wait()`, `result()` and `run()` wait on the server's event stream (the
    /// default: all waiting jobs of a client share one connection), or each long-poll
    /// with `Prefer: wait`. Waits fall back to long-polls by themselves where the server
    /// has no event stream.
    pub fn wait_by_events(mut self, enabled: bool) -> Self {
        self.wait_by_events = enabled;
        self
    }

    /// How requests are retried (default: [`RetryPolicy::default`], up to 8 attempts;
    /// [`RetryPolicy::none`] turns retries off). See [`retry`](crate::retry) for what is
    /// retried.
    ///
    /// [`RetryPolicy::default`]: crate::retry::RetryPolicy::default
    /// [`RetryPolicy::none`]: crate::retry::RetryPolicy::none
    pub fn retry(mut self, policy: crate::retry::RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// At most `n` requests in flight at once, across all clones of the client (default:
    /// no limit); the others wait for a slot. Event streams do not count.
    pub fn max_in_flight(mut self, n: usize) -> Self {
        self.max_in_flight = Some(n);
        self
    }

    /// At most `per_second` requests a second, evenly spaced, across all clones of the
    /// client (default: no limit). A 429 answer halves it for a while (it climbs back
    /// with each success) and holds every request for the `Retry-After` asked for.
    /// [`validate`](Self::validate) refuses a rate below [`MIN_RATE`] (one a day) or
    /// above [`MAX_RATE`].
    pub fn rate_limit(mut self, per_second: f64) -> Self {
        self.rate_limit = Some(per_second);
        self
    }

    /// Sends a W3C `traceparent` header with each request (default off): one trace per
    /// call, a fresh parent id per attempt, recorded on the call's `tracing` span.
    pub fn traceparent(mut self, enabled: bool) -> Self {
        self.traceparent = enabled;
        self
    }

    /// Checks the settings and normalises the base URL; nothing is sent with a bad one.
    pub fn validate(mut self) -> Result<Self, Error> {
        let trimmed = self.base_url.trim().trim_end_matches('/').to_owned();
        let uri: http::Uri = trimmed
            .parse()
            .map_err(|e| Error::invalid("base URL", format!("{}: {e}", quoted(&trimmed))))?;
        match uri.scheme_str() {
            Some("http") | Some("https") => {}
            _ => {
                return Err(Error::invalid(
                    "base URL",
                    format!("{} must start with http:// or https://", quoted(&trimmed)),
                ))
            }
        }
        if uri.authority().is_none() {
            return Err(Error::invalid(
                "base URL",
                format!("{} has no host", quoted(&trimmed)),
            ));
        }
        if uri.query().is_some() || trimmed.contains('#') {
            return Err(Error::invalid(
                "base URL",
                format!("{} must not have a query or fragment", quoted(&trimmed)),
            ));
        }
        if let Some(token) = &self.token {
            if token.is_empty() || http::HeaderValue::from_str(token).is_err() {
                return Err(Error::invalid(
                    "token",
                    "must be non-empty visible ASCII (it goes in a header)",
                ));
            }
        }
        let user_agent = http::HeaderValue::from_str(&self.user_agent)
            .map_err(|_| Error::invalid("user agent", "must be visible ASCII"))?;
        let authorization = match &self.token {
            Some(token) => {
                let mut value = http::HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| Error::invalid("token", "must be visible ASCII"))?;
                // Kept out of HTTP/2 header compression tables and of debug output.
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned())
        else {
            return Err(Error::invalid(
                "base URL",
                format!("{} has no host", quoted(&trimmed)),
            ));
        };
        self.headers = Some(Headers {
            authorization,
            user_agent,
            scheme,
            authority,
            base_path: uri.path().trim_end_matches('/').to_owned(),
        });
        for (what, d) in [
            ("timeout", Some(self.timeout)),
            ("connect timeout", Some(self.connect_timeout)),
            ("long poll", Some(self.long_poll)),
            ("stream idle timeout", Some(self.stream_idle_timeout)),
            ("wait timeout", self.wait_timeout),
        ] {
            if d.is_some_and(|d| d.is_zero() || d > MAX_DURATION) {
                return Err(Error::invalid(
                    what,
                    format!(
                        "must be more than zero and at most {}",
                        duration_text(MAX_DURATION)
                    ),
                ));
            }
        }
        if self.max_body_bytes == 0 || self.max_event_bytes == 0 {
            return Err(Error::invalid(
                "size limit",
                "max_body_bytes and max_event_bytes must be at least 1",
            ));
        }
        if self.max_connections_per_host == 0 {
            return Err(Error::invalid(
                "max connections per host",
                "must be at least 1",
            ));
        }
        if self.max_in_flight == Some(0) {
            return Err(Error::invalid("max in flight", "must be at least 1"));
        }
        if self
            .rate_limit
            .is_some_and(|r| !(MIN_RATE..=MAX_RATE).contains(&r))
        {
            return Err(Error::invalid(
                "rate limit",
                format!(
                    "must be at least one request a day and at most {MAX_RATE} requests a second"
                ),
            ));
        }
        // The server caps `Prefer: wait` (docs/api.md: 60 s); asking longer would make every
        // honest answer look early to the waiter.
        self.long_poll = self.long_poll.min(MAX_LONG_POLL);
        self.base_url = trimmed;
        Ok(self)
    }

    /// `Authorization: Bearer <token>` (sensitive) and `User-Agent` as header values:
    /// made by [`validate`](Self::validate), or now for settings never validated.
    pub(crate) fn request_headers(
        &self,
    ) -> (
        Option<std::borrow::Cow<'_, http::HeaderValue>>,
        Option<std::borrow::Cow<'_, http::HeaderValue>>,
    ) {
        use std::borrow::Cow;
        match &self.headers {
            Some(h) => (
                h.authorization.as_ref().map(Cow::Borrowed),
                Some(Cow::Borrowed(&h.user_agent)),
            ),
            None => (
                self.token
                    .as_ref()
                    .and_then(|t| http::HeaderValue::from_str(&format!("Bearer {t}")).ok())
                    .map(Cow::Owned),
                http::HeaderValue::from_str(&self.user_agent)
                    .ok()
                    .map(Cow::Owned),
            ),
        }
    }

    /// The URI of `path_and_query` under the base URL, put together from the parts
    /// [`validate`](Self::validate) made (not parsed whole again); `None` for settings
    /// never validated, or a path that is not a valid URI path.
    pub(crate) fn request_uri(&self, path_and_query: &str) -> Option<http::Uri> {
        let h = self.headers.as_ref()?;
        let path = if h.base_path.is_empty() {
            http::uri::PathAndQuery::try_from(path_and_query).ok()?
        } else {
            http::uri::PathAndQuery::try_from(format!("{}{path_and_query}", h.base_path)).ok()?
        };
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(h.scheme.clone());
        parts.authority = Some(h.authority.clone());
        parts.path_and_query = Some(path);
        http::Uri::from_parts(parts).ok()
    }

    /// The limit on requests in flight, if one is set.
    pub fn max_in_flight_value(&self) -> Option<usize> {
        self.max_in_flight
    }

    /// The limit on requests a second, if one is set.
    pub fn rate_limit_value(&self) -> Option<f64> {
        self.rate_limit
    }

    /// Whether requests carry a `traceparent`.
    pub fn traceparent_value(&self) -> bool {
        self.traceparent
    }

    /// The base URL without a trailing slash.
    pub fn base_url_value(&self) -> &str {
        &self.base_url
    }

    /// The bearer token, if one is set.
    pub fn token_value(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// The token source, if one is set.
    pub fn token_source_value(&self) -> Option<&crate::token::SharedTokenSource> {
        self.token_source.as_ref()
    }

    /// The `User-Agent` header value.
    pub fn user_agent_value(&self) -> &str {
        &self.user_agent
    }

    /// The per-request timeout.
    pub fn timeout_value(&self) -> Duration {
        self.timeout
    }

    /// The connect timeout, for transports built from this config.
    pub fn connect_timeout_value(&self) -> Duration {
        self.connect_timeout
    }

    /// The default bound on waiting for a job.
    pub fn wait_timeout_value(&self) -> Option<Duration> {
        self.wait_timeout
    }

    /// The longest single long-poll.
    pub fn long_poll_value(&self) -> Duration {
        self.long_poll
    }

    /// The largest answer body accepted.
    pub fn max_body_bytes_value(&self) -> usize {
        self.max_body_bytes
    }

    /// The largest event accepted.
    pub fn max_event_bytes_value(&self) -> usize {
        self.max_event_bytes
    }

    /// The most connections the default transport opens to one host.
    pub fn max_connections_per_host_value(&self) -> usize {
        self.max_connections_per_host
    }

    /// How long an event stream may be silent before it is reconnected.
    pub fn stream_idle_timeout_value(&self) -> Duration {
        self.stream_idle_timeout
    }

    /// Whether waits follow the event stream rather than long-poll.
    pub fn wait_by_events_value(&self) -> bool {
        self.wait_by_events
    }

    /// How requests are retried.
    pub fn retry_value(&self) -> &crate::retry::RetryPolicy {
        &self.retry
    }
}

/// Stamps the [`ClientConfig`] setters onto a facade's builder that keeps its config in
/// the field `$field`, so both facades offer the same setters, written once.
#[doc(hidden)]
#[macro_export]
macro_rules! __client_config_setters {
    ($field:ident) => {
        $crate::__forward_setters! { $field:
            /// The server's base URL (default `http://127.0.0.1:7878`, or `JOBWIRE_URL`).
            fn base_url(url: impl Into<String>);
            /// The bearer token sent with every request.
            fn token(token: impl Into<String>);
            /// Asks `source` for the bearer token before each request (a closure will
            /// do); a 401 makes it fetch a fresh one, and the call is sent once more.
            fn token_source(source: impl $crate::token::TokenSource);
            /// How long one plain request may take, answer body included (default 30 s).
            fn timeout(timeout: std::time::Duration);
            /// How long connecting may take (default 10 s).
            fn connect_timeout(timeout: std::time::Duration);
            /// The default bound on `wait()` and `result()` (default: none).
            fn wait_timeout(timeout: std::time::Duration);
            /// The longest single long-poll while waiting for a job (default 30 s).
            fn long_poll(max: std::time::Duration);
            /// The `User-Agent` header.
            fn user_agent(user_agent: impl Into<String>);
            /// The largest answer body accepted (default 32 MiB).
            fn max_body_bytes(limit: usize);
            /// The largest event an event stream accepts (default 1 MiB, the most a
            /// jobwire server sends).
            fn max_event_bytes(limit: usize);
            /// The most connections to one host (default 100); requests beyond it wait
            /// in order, they do not fail.
            fn max_connections_per_host(n: usize);
            /// How long an event stream may be silent (not even a keep-alive) before it
            /// is reconnected (default 45 s).
            fn stream_idle_timeout(timeout: std::time::Duration);
            /// Wait on the shared event stream (default `true`) or by long-poll.
            fn wait_by_events(enabled: bool);
            /// How requests are retried (`RetryPolicy::none()` turns retries off).
            fn retry(policy: $crate::retry::RetryPolicy);
            /// At most `n` requests in flight at once, across all clones (default: no
            /// limit).
            fn max_in_flight(n: usize);
            /// At most `per_second` requests a second, across all clones (default: no
            /// limit); a 429 slows it down and holds requests for its `Retry-After`.
            fn rate_limit(per_second: f64);
            /// Send a W3C `traceparent` with each request (default off).
            fn traceparent(enabled: bool);
        }
    };
}

/// Forwards by-value setters of an inner value held in `$field`.
#[doc(hidden)]
#[macro_export]
macro_rules! __forward_setters {
    ($field:ident: $( $(#[$meta:meta])* fn $name:ident($arg:ident: $ty:ty); )*) => {
        $(
            $(#[$meta])*
            pub fn $name(mut self, $arg: $ty) -> Self {
                self.$field = self.$field.$name($arg);
                self
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_url_validation() {
        let ok = [
            ("http://127.0.0.1:7878", "http://127.0.0.1:7878"),
            ("https://jobs.example.com/", "https://jobs.example.com"),
            (" http://h/api/v2// ", "http://h/api/v2"),
        ];
        for (input, want) in ok {
            let c = ClientConfig::default().base_url(input).validate().unwrap();
            assert_eq!(c.base_url_value(), want, "{input}");
        }
        for bad in [
            "",
            "127.0.0.1:7878",
            "ftp://h",
            "http://",
            "http://h/?q=1",
            "not a url",
        ] {
            assert!(
                matches!(
                    ClientConfig::default().base_url(bad).validate(),
                    Err(Error::Invalid { .. })
                ),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn request_uris_are_put_together_as_the_whole_url_would_parse() {
        let table = [
            (
                "http://127.0.0.1:7878",
                "/v1/health",
                "http://127.0.0.1:7878/v1/health",
            ),
            (
                "https://h:8443/api/v2/",
                "/v1/jobs?limit=5",
                "https://h:8443/api/v2/v1/jobs?limit=5",
            ),
            ("http://[::1]:9", "/v1/events", "http://[::1]:9/v1/events"),
        ];
        for (base, path, want) in table {
            let c = ClientConfig::default().base_url(base).validate().unwrap();
            let uri = c.request_uri(path).unwrap();
            assert_eq!(uri.to_string(), want);
            let whole: http::Uri = format!("{}{path}", c.base_url_value()).parse().unwrap();
            assert_eq!(uri, whole, "{base} {path}");
        }
        let c = ClientConfig::default().validate().unwrap();
        assert_eq!(
            c.request_uri("/a b"),
            None,
            "not a URI path: left to the parser"
        );
        assert_eq!(
            ClientConfig::default().request_uri("/v1/health"),
            None,
            "never validated"
        );
    }

    #[test]
    fn token_must_fit_in_a_header_and_is_redacted() {
        assert!(ClientConfig::default().token("a\nb").validate().is_err());
        assert!(ClientConfig::default().token("").validate().is_err());
        let c = ClientConfig::default().token("s3cret").validate().unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn durations_are_bounded() {
        let year_and_more = MAX_DURATION + Duration::from_secs(1);
        assert!(ClientConfig::default()
            .timeout(Duration::ZERO)
            .validate()
            .is_err());
        assert!(ClientConfig::default()
            .timeout(Duration::MAX)
            .validate()
            .is_err());
        assert!(ClientConfig::default()
            .wait_timeout(year_and_more)
            .validate()
            .is_err());
        assert!(ClientConfig::default()
            .connect_timeout(Duration::ZERO)
            .validate()
            .is_err());
        let c = ClientConfig::default()
            .long_poll(Duration::from_secs(600))
            .validate()
            .unwrap();
        assert_eq!(c.long_poll_value(), MAX_LONG_POLL);
    }

    #[test]
    fn rate_limits_are_bounded() {
        for (rate, ok) in [
            (MIN_RATE, true),
            (1.0, true),
            (MAX_RATE, true),
            (MIN_RATE / 2.0, false),
            (1e-20, false),
            (0.0, false),
            (-1.0, false),
            (MAX_RATE * 2.0, false),
            (f64::NAN, false),
            (f64::INFINITY, false),
        ] {
            let validated = ClientConfig::default().rate_limit(rate).validate();
            assert_eq!(validated.is_ok(), ok, "{rate}");
        }
    }

    #[test]
    fn env_defaults_and_overrides() {
        let c = ClientConfig::from_env_with(|_| None);
        assert_eq!(c.base_url_value(), DEFAULT_BASE_URL);
        assert_eq!(c.token_value(), None);
        let c = ClientConfig::from_env_with(|n| (n == ENV_TOKEN).then(|| " tok ".to_owned()));
        assert_eq!(c.token_value(), Some("tok"));
    }
}
