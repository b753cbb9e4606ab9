//! [`ServerConfig`]: where the server listens, where it keeps its data, who may call it,
//! and its limits.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The tenant of the random token generated when no token is configured.
pub const DEFAULT_TENANT: &str = "default";

/// Where the server keeps services, jobs and events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Storage {
    /// In memory: gone when the server stops.
    Memory,
    /// SQLite (WAL) at `dir/jobwire.db`: survives restarts.
    Dir(PathBuf),
    /// A PostgreSQL database, which several server processes may share.
    Postgres(DatabaseUrl),
}

/// A database URL, which may carry a password: `Debug` shows it without.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct DatabaseUrl(pub(crate) String);

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // postgres://user:password@host/db -> postgres://…@host/db
        match self.0.split_once("://").zip(self.0.rsplit_once('@')) {
            Some(((scheme, _), (_, rest))) => write!(f, "\"{scheme}://…@{rest}\""),
            None => write!(f, "{:?}", self.0),
        }
    }
}

/// How to run a server: built with chained calls, handed to [`spawn`](crate::spawn) or
/// [`spawn_blocking_server`](crate::spawn_blocking_server).
///
/// The defaults suit tests: `127.0.0.1:0` (an ephemeral port), an in-memory store, and one
/// random token for the tenant `default` (read it back with
/// [`ServerHandle::token`](crate::ServerHandle::token)).
///
/// ```
/// use std::time::Duration;
/// use jobwire_server::ServerConfig;
///
/// let config = ServerConfig::new()
///     .addr("127.0.0.1:7878".parse().unwrap())
///     .data_dir("./jobwire-data")
///     .token("secret-a", "team-a")
///     .token("secret-b", "team-b")
///     .max_body_bytes(64 * 1024)
///     .max_wait(Duration::from_secs(30));
/// # let _ = config;
/// ```
///
/// `Debug` never prints the tokens.
#[derive(Clone)]
pub struct ServerConfig {
    pub(crate) addr: SocketAddr,
    pub(crate) storage: Storage,
    pub(crate) tokens: Vec<(String, String)>,
    pub(crate) max_body_bytes: usize,
    pub(crate) max_wait: Duration,
    pub(crate) max_jobs_in_flight: usize,
    pub(crate) heartbeat: Duration,
    pub(crate) event_retention: Duration,
    pub(crate) subscriber_buffer: usize,
    pub(crate) subscriber_buffer_bytes: usize,
    pub(crate) max_streams_per_tenant: usize,
    pub(crate) max_events_per_job: usize,
    pub(crate) max_finished_jobs_in_memory: usize,
    pub(crate) max_h2_streams: u32,
    pub(crate) max_events_per_stream: Option<usize>,
    pub(crate) idempotency_window: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) lease: Duration,
    pub(crate) faults: crate::Faults,
    pub(crate) services: Vec<crate::ServiceSpec>,
    pub(crate) allow_commands: bool,
    pub(crate) ui: bool,
}

impl ServerConfig {
    /// The defaults: `127.0.0.1:0`, in-memory store, one random token for tenant
    /// `default`, 1 MiB request bodies, waits capped at 60 s, 10 000 jobs in flight per
    /// tenant, a keep-alive on event streams every 15 s, events kept 1 h after their job
    /// finished, and 10 000 concurrent HTTP/2 streams per connection.
    pub fn new() -> Self {
        ServerConfig {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            storage: Storage::Memory,
            tokens: Vec::new(),
            max_body_bytes: 1024 * 1024,
            max_wait: Duration::from_secs(60),
            max_jobs_in_flight: 10_000,
            heartbeat: Duration::from_secs(15),
            event_retention: Duration::from_secs(3600),
            subscriber_buffer: 4096,
            subscriber_buffer_bytes: 1024 * 1024,
            max_streams_per_tenant: 10_000,
            max_events_per_job: 10_000,
            max_finished_jobs_in_memory: 100_000,
            max_h2_streams: 10_000,
            max_events_per_stream: None,
            idempotency_window: Duration::from_secs(24 * 3600),
            shutdown_grace: Duration::ZERO,
            lease: Duration::from_secs(15),
            faults: crate::Faults::default(),
            services: Vec::new(),
            allow_commands: false,
            ui: false,
        }
    }

    /// Listens on `addr` (port 0 picks a free port).
    pub fn addr(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    /// Keeps everything in memory (the default): nothing survives the server.
    pub fn memory(mut self) -> Self {
        self.storage = Storage::Memory;
        self
    }

    /// Keeps everything in a durable SQLite database (WAL mode) at `dir/jobwire.db`,
    /// creating the directory if needed. Jobs survive a restart, and the jobs a previous
    /// process left unfinished meet the crash rule on start: those it had accepted but
    /// not started run then; those it was running fail as `interrupted`.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.storage = Storage::Dir(dir.into());
        self
    }

    /// Keeps everything in a PostgreSQL database (`postgres://user:password@host/db`),
    /// which several server processes may share behind a load balancer: each runs the
    /// jobs it accepted under a lease it renews, and takes over the jobs of a server that
    /// is gone once their leases run out (by the crash rule). Events reach subscribers on
    /// every server, and idempotency keys and per-tenant limits hold across them.
    pub fn database_url(mut self, url: impl Into<String>) -> Self {
        self.storage = Storage::Postgres(DatabaseUrl(url.into()));
        self
    }

    /// How long a server's claim on the jobs it runs lasts without renewal (default
    /// 15 s; renewed every third of it). On a shared database, a server that dies has
    /// its unfinished jobs taken over this long after its last renewal.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// Accepts `Authorization: Bearer <token>` for `tenant`. May be called several times;
    /// once any token is added, no random token is generated.
    pub fn token(mut self, token: impl Into<String>, tenant: impl Into<String>) -> Self {
        self.tokens.push((token.into(), tenant.into()));
        self
    }

    /// Largest request body accepted (413 `payload_too_large` above it); default 1 MiB.
    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// Longest wait a client may ask for with `Prefer: wait=N`; longer asks are capped to
    /// it (and `Preference-Applied` says so). Default 60 s.
    pub fn max_wait(mut self, d: Duration) -> Self {
        self.max_wait = d;
        self
    }

    /// Most unfinished jobs one tenant may have at once (429 `rate_limited` above it);
    /// default 10 000.
    pub fn max_jobs_in_flight(mut self, n: usize) -> Self {
        self.max_jobs_in_flight = n;
        self
    }

    /// How often an idle event stream sends a `: keep-alive` comment, so clients can tell
    /// a quiet stream from a dead one (default 15 s).
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = interval;
        self
    }

    /// How long the events of a finished job are kept (default 1 h); a background pass
    /// removes older ones, and a stream can no longer resume from before them (410).
    /// Events of unfinished jobs are always kept.
    pub fn event_retention(mut self, window: Duration) -> Self {
        self.event_retention = window;
        self
    }

    /// How many live events one event-stream subscriber may fall behind before it is cut
    /// off (it then resumes with `Last-Event-ID` from the store); default 4096.
    pub fn subscriber_buffer(mut self, events: usize) -> Self {
        self.subscriber_buffer = events;
        self
    }

    /// How many bytes of events one event stream may hold for a client that does not
    /// read them (default 1 MiB): its queue of live events — past this it is cut off, as
    /// past [`subscriber_buffer`](Self::subscriber_buffer) events, and resumes from the
    /// store — and, separately, the page of history it is sending. One event always
    /// fits, however large.
    ///
    /// ```
    /// let config = jobwire_server::ServerConfig::new().subscriber_buffer_bytes(256 * 1024);
    /// # let _ = config;
    /// ```
    pub fn subscriber_buffer_bytes(mut self, bytes: usize) -> Self {
        self.subscriber_buffer_bytes = bytes;
        self
    }

    /// Most event streams (`GET /v1/jobs/{id}/events` and `GET /v1/events`) one tenant
    /// may have open at once on this server (default 10 000, one per job in flight);
    /// one more is answered 429 `rate_limited` with `Retry-After: 1`.
    ///
    /// ```
    /// let config = jobwire_server::ServerConfig::new().max_streams_per_tenant(500);
    /// # let _ = config;
    /// ```
    pub fn max_streams_per_tenant(mut self, n: usize) -> Self {
        self.max_streams_per_tenant = n;
        self
    }

    /// Most progress, log and output events recorded per job (status and done events
    /// always are); default 10 000.
    pub fn max_events_per_job(mut self, n: usize) -> Self {
        self.max_events_per_job = n;
        self
    }

    /// Most finished jobs the in-memory store keeps (the oldest go first, with their
    /// events); default 100 000. The durable store keeps every job.
    pub fn max_finished_jobs_in_memory(mut self, n: usize) -> Self {
        self.max_finished_jobs_in_memory = n;
        self
    }

    /// Most concurrent HTTP/2 streams one connection may open (default 10 000, far above
    /// hyper's 200, so long-polls and event streams over one connection do not queue).
    pub fn max_h2_streams(mut self, n: u32) -> Self {
        self.max_h2_streams = n;
        self
    }

    /// Ends each event stream after it has sent `n` events (default: never). Clients
    /// resume with `Last-Event-ID` on a new connection, so this spreads long-lived
    /// streams over the servers behind a load balancer — and lets tests cut streams
    /// from the server side.
    pub fn max_events_per_stream(mut self, n: usize) -> Self {
        self.max_events_per_stream = Some(n.max(1));
        self
    }

    /// How long an `Idempotency-Key` is remembered after its first request (default
    /// 24 h): within it, a repeat with the same key gets the first request's job.
    pub fn idempotency_window(mut self, window: Duration) -> Self {
        self.idempotency_window = window;
        self
    }

    /// How long a graceful shutdown lets running jobs finish before it fails them as
    /// `interrupted` (default: not at all, which suits tests; the binary's `--grace`
    /// defaults to 30 s).
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.shutdown_grace = grace;
        self
    }

    /// Serves `spec`, a service of the embedding program's own, beside the built-ins (see
    /// [`ServiceSpec`](crate::ServiceSpec)). May be called several times; names must be
    /// unique and differ from the built-ins'.
    pub fn service(mut self, spec: crate::ServiceSpec) -> Self {
        self.services.push(spec);
        self
    }

    /// Lets tenants register command services over the API (`POST /v1/services`), whose
    /// jobs run programs on this machine with the server's rights; off by default, when
    /// such a registration answers 403. Turn it on only where every token holder may
    /// run programs here.
    pub fn allow_commands(mut self, allow: bool) -> Self {
        self.allow_commands = allow;
        self
    }

    /// Serves the dashboard at `GET /ui`: a page in the browser that shows the jobs of the
    /// token it is given as they run, their progress and logs, the services, and the
    /// throughput, using only the public API (off by default here; the `jobwire-server`
    /// binary turns it on unless given `--no-ui`). Its files are compiled into the
    /// server; it loads nothing from elsewhere.
    ///
    /// ```
    /// let config = jobwire_server::ServerConfig::new().ui(true);
    /// # let _ = config;
    /// ```
    pub fn ui(mut self, enabled: bool) -> Self {
        self.ui = enabled;
        self
    }

    /// Misbehaves on purpose (see [`Faults`](crate::Faults)): drops answers, turns
    /// requests away, stalls, cuts streams — to test retry and timeout handling against.
    pub fn faults(mut self, faults: crate::Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Checks the settings that cannot be checked when they are set.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.max_body_bytes == 0 {
            return Err("max_body_bytes must be at least 1".into());
        }
        if self.max_jobs_in_flight == 0 {
            return Err("max_jobs_in_flight must be at least 1".into());
        }
        if self.heartbeat.is_zero()
            || self.event_retention.is_zero()
            || self.idempotency_window.is_zero()
        {
            return Err(
                "heartbeat, event_retention and idempotency_window must be longer than zero".into(),
            );
        }
        if self.lease < Duration::from_millis(300) {
            return Err("lease must be at least 300 ms".into());
        }
        if let Storage::Postgres(url) = &self.storage {
            if !(url.0.starts_with("postgres://") || url.0.starts_with("postgresql://")) {
                return Err(format!(
                    "a database URL starts with postgres:// or postgresql://, not {url:?}"
                ));
            }
        }
        if self.subscriber_buffer == 0 || self.max_h2_streams == 0 {
            return Err("subscriber_buffer and max_h2_streams must be at least 1".into());
        }
        if self.subscriber_buffer_bytes == 0 || self.max_streams_per_tenant == 0 {
            return Err(
                "subscriber_buffer_bytes and max_streams_per_tenant must be at least 1".into(),
            );
        }
        for (token, tenant) in &self.tokens {
            if token.is_empty() || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(
                    "a token must be non-empty, without spaces or control characters".into(),
                );
            }
            if tenant.is_empty() {
                return Err("a tenant name must not be empty".into());
            }
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig::new()
    }
}

impl fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tenants: Vec<&str> = self.tokens.iter().map(|(_, t)| t.as_str()).collect();
        f.debug_struct("ServerConfig")
            .field("addr", &self.addr)
            .field("storage", &self.storage)
            .field("token_tenants", &tenants)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_wait", &self.max_wait)
            .field("max_jobs_in_flight", &self.max_jobs_in_flight)
            .field("heartbeat", &self.heartbeat)
            .field("event_retention", &self.event_retention)
            .field("subscriber_buffer", &self.subscriber_buffer)
            .field("subscriber_buffer_bytes", &self.subscriber_buffer_bytes)
            .field("max_streams_per_tenant", &self.max_streams_per_tenant)
            .field("max_events_per_job", &self.max_events_per_job)
            .field(
                "max_finished_jobs_in_memory",
                &self.max_finished_jobs_in_memory,
            )
            .field("max_h2_streams", &self.max_h2_streams)
            .field("max_events_per_stream", &self.max_events_per_stream)
            .field("idempotency_window", &self.idempotency_window)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("lease", &self.lease)
            .field("faults", &self.faults)
            .field("services", &self.services)
            .field("allow_commands", &self.allow_commands)
            .field("ui", &self.ui)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_tokens() {
        let c = ServerConfig::new().token("s3cr3t", "team");
        let shown = format!("{c:?}");
        assert!(shown.contains("team"));
        assert!(!shown.contains("s3cr3t"));
        let c = ServerConfig::new().database_url("postgres://app:pw0rd@db.local:5432/jobs");
        let shown = format!("{c:?}");
        assert!(shown.contains("postgres://…@db.local:5432/jobs"), "{shown}");
        assert!(!shown.contains("pw0rd"));
    }

    #[test]
    fn validate_rejects_bad_settings() {
        assert!(ServerConfig::new().validate().is_ok());
        assert!(ServerConfig::new().max_body_bytes(0).validate().is_err());
        assert!(ServerConfig::new()
            .heartbeat(Duration::ZERO)
            .validate()
            .is_err());
        assert!(ServerConfig::new().max_h2_streams(0).validate().is_err());
        assert!(ServerConfig::new()
            .subscriber_buffer_bytes(0)
            .validate()
            .is_err());
        assert!(ServerConfig::new()
            .max_streams_per_tenant(0)
            .validate()
            .is_err());
        assert!(ServerConfig::new().token("a b", "t").validate().is_err());
        assert!(ServerConfig::new().token("ab", "").validate().is_err());
        assert!(ServerConfig::new()
            .lease(Duration::from_millis(10))
            .validate()
            .is_err());
        assert!(ServerConfig::new()
            .database_url("mysql://x")
            .validate()
            .is_err());
    }
}
