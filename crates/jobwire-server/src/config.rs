//! [`ServerConfig`]: where the server listens, where it keeps its data, who may call it,
//! and its limits.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The tenant of the random token generated when no token is configured.
pub const DEFAULT_TENANT: &str = "default";

/// The most any jobwire server puts in one event's data: 1 MiB (docs/api.md, "Limits").
/// A client that reads events this large reads every stream.
pub const MAX_EVENT_BYTES: usize = 1024 * 1024;
/// The least [`ServerConfig::max_event_bytes`] accepts: room for a `done` without the
/// job's input and output, whatever its error.
pub const MIN_EVENT_BYTES: usize = 64 * 1024;

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
        write!(f, "{:?}", redacted(&self.0))
    }
}

/// A connection string with its secrets replaced by `…`: a URL's user info
/// (`postgres://user:password@host/db` -> `postgres://…@host/db`), the value of every
/// query parameter whose name (percent-decoded) holds "pass" (`password`, `sslpassword`,
/// …), and any fragment. A `key=value` string that mentions a password is hidden whole:
/// its quoting rules make a partial cut easy to get wrong.
pub(crate) fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return if url.to_ascii_lowercase().contains("pass") {
            "… (a connection string with a password)".into()
        } else {
            url.to_owned()
        };
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((rest, _)) => (rest, "#…"),
        None => (rest, ""),
    };
    let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = match authority.rsplit_once('@') {
        Some((_, host)) => format!("…@{host}"),
        None => authority.to_owned(),
    };
    let query: Vec<String> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((key, _)) if percent_decoded(key).to_ascii_lowercase().contains("pass") => {
                format!("{key}=…")
            }
            _ => pair.to_owned(),
        })
        .collect();
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    format!("{scheme}://{host}{path}{query}{fragment}")
}

/// `text` with its `%XX` escapes decoded (invalid ones left as they are).
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
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
    pub(crate) max_event_bytes: usize,
    pub(crate) max_output_bytes: usize,
    pub(crate) max_wait: Duration,
    pub(crate) max_jobs_in_flight: usize,
    pub(crate) heartbeat: Duration,
    pub(crate) event_retention: Duration,
    pub(crate) subscriber_buffer: usize,
    pub(crate) subscriber_buffer_bytes: usize,
    pub(crate) max_streams_per_tenant: usize,
    pub(crate) max_events_per_job: usize,
    pub(crate) max_stored_bytes_per_tenant: u64,
    pub(crate) job_retention: Duration,
    pub(crate) max_h2_streams: u32,
    pub(crate) max_events_per_stream: Option<usize>,
    pub(crate) idempotency_window: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) lease: Duration,
    pub(crate) faults: crate::Faults,
    pub(crate) connections: crate::connections::ConnectionLimits,
    pub(crate) body_read_timeout: Duration,
    pub(crate) worker_threads: usize,
    pub(crate) services: Vec<crate::ServiceSpec>,
    pub(crate) commands: crate::services::CommandSettings,
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
            max_event_bytes: 256 * 1024,
            max_output_bytes: 16 * 1024 * 1024,
            max_wait: Duration::from_secs(60),
            max_jobs_in_flight: 10_000,
            heartbeat: Duration::from_secs(15),
            event_retention: Duration::from_secs(3600),
            subscriber_buffer: 4096,
            subscriber_buffer_bytes: 1024 * 1024,
            max_streams_per_tenant: 10_000,
            max_events_per_job: 10_000,
            max_stored_bytes_per_tenant: 1024 * 1024 * 1024,
            job_retention: Duration::from_secs(7 * 24 * 3600),
            max_h2_streams: 10_000,
            max_events_per_stream: None,
            idempotency_window: Duration::from_secs(24 * 3600),
            shutdown_grace: Duration::ZERO,
            lease: Duration::from_secs(15),
            faults: crate::Faults::default(),
            connections: crate::connections::ConnectionLimits::default(),
            body_read_timeout: Duration::from_secs(30),
            worker_threads: std::thread::available_parallelism().map_or(2, usize::from),
            services: Vec::new(),
            commands: Default::default(),
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
    ///
    /// The URL's parameters are libpq's, as tokio-postgres reads them
    /// (`connect_timeout`, `application_name`, `channel_binding`, `hostaddr`, …; an
    /// unknown one is an error when the server starts), with TLS as libpq's `sslmode`
    /// says. The server reads `sslmode` and `sslrootcert` itself:
    ///
    /// - `sslmode=disable`: no TLS.
    /// - `sslmode=prefer` (the default): TLS if the server offers it, else plain text (a
    ///   failed handshake is an error, where libpq would try again in plain text).
    /// - `sslmode=require`: TLS or no connection.
    /// - `sslmode=verify-ca`: TLS, and the server's certificate must chain to a trusted
    ///   root.
    /// - `sslmode=verify-full`: as `verify-ca`, and the certificate must name the host
    ///   of the URL (a DNS name or an IP address).
    /// - `sslrootcert=PATH`: the trusted roots, a PEM file. As in libpq, with it `prefer`
    ///   and `require` check the chain too (not the host name). Without it, `verify-ca`
    ///   and `verify-full` trust the operating system's store (where
    ///   `SSL_CERT_FILE`/`SSL_CERT_DIR` point, else the system's bundle), not libpq's
    ///   `~/.postgresql/root.crt`.
    /// - `sslrootcert=system`: the operating system's store; it needs, and defaults to,
    ///   `verify-full`.
    ///
    /// `prefer` and `require` without `sslrootcert` encrypt but do not check who answers;
    /// with a password (SCRAM), `channel_binding=require` still makes a login relayed by
    /// someone in between fail. `sslmode=allow` and client certificates (`sslcert`,
    /// `sslkey`) are refused; a refused certificate or a bad `sslmode` stops the server at
    /// start with an error that names the mode, the roots and the fault. Over a Unix
    /// socket there is no TLS: use `disable` or `prefer` there.
    ///
    /// ```
    /// let config = jobwire_server::ServerConfig::new().database_url(
    ///     "postgres://jobwire@db.internal/jobwire?sslmode=verify-full\
    ///      &sslrootcert=/etc/jobwire/db-ca.pem",
    /// );
    /// ```
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

    /// The most bytes of one event's data (default 256 KiB; from 64 KiB to 1 MiB, the
    /// contract's ceiling). A longer `log` line or `progress` message is cut and marked
    /// `"truncated": true`, a longer `output` chunk is split into several `output`
    /// events, and a `done` that would be longer leaves out the job's `input` and
    /// `output` (`"omitted": ["input", "output"]`), for clients to read the job.
    pub fn max_event_bytes(mut self, n: usize) -> Self {
        self.max_event_bytes = n;
        self
    }

    /// The most bytes of a job's output, as JSON (default 16 MiB); a handler that
    /// returns more fails its job with error code `output_too_large`.
    pub fn max_output_bytes(mut self, n: usize) -> Self {
        self.max_output_bytes = n;
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

    /// Most bytes one tenant may store (default 1 GiB): its jobs and events as the
    /// store keeps them (their JSON text; in memory, plus a fixed cost per record). A
    /// tenant at its cap is refused new jobs with 507 `quota_exceeded` until retention
    /// frees room; nothing it has already been accepted is dropped. The in-memory store
    /// makes room first: past the cap it removes the tenant's oldest finished jobs
    /// whole (with their events and keys; a resume from before them answers 410), and
    /// refuses new jobs only when what is left is all unfinished.
    ///
    /// ```
    /// let config = jobwire_server::ServerConfig::new().max_stored_bytes_per_tenant(64 << 20);
    /// # let _ = config;
    /// ```
    pub fn max_stored_bytes_per_tenant(mut self, bytes: u64) -> Self {
        self.max_stored_bytes_per_tenant = bytes;
        self
    }

    /// How long a finished job is kept (default 7 days), on every store: a background
    /// pass removes older ones whole, after which they answer 404. At least the event
    /// retention and the idempotency window, so a job outlives its events and its key.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = jobwire_server::ServerConfig::new().job_retention(Duration::from_secs(24 * 3600));
    /// # let _ = config;
    /// ```
    pub fn job_retention(mut self, window: Duration) -> Self {
        self.job_retention = window;
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

    /// Lets every tenant register command services over the API (`POST /v1/services`),
    /// whose jobs run programs on this machine; off by default, when such a registration
    /// answers 403. Turn it on only where every token holder may run programs here, and
    /// see [`command_user`](Self::command_user) and `docs/security.md`.
    pub fn allow_commands(mut self, allow: bool) -> Self {
        self.commands.tenants = if allow {
            crate::services::registration::Tenants::All
        } else {
            crate::services::registration::Tenants::None
        };
        self
    }

    /// Lets only these tenants register command services (and have their programs run
    /// here); the others get 403 as without [`allow_commands`](Self::allow_commands).
    /// An empty list allows nobody.
    ///
    /// ```
    /// let config = jobwire_server::ServerConfig::new()
    ///     .token("secret-a", "builders")
    ///     .token("secret-b", "viewers")
    ///     .allow_commands_for(["builders"]);
    /// # let _ = config;
    /// ```
    pub fn allow_commands_for<T: Into<String>>(
        mut self,
        tenants: impl IntoIterator<Item = T>,
    ) -> Self {
        let tenants: std::collections::BTreeSet<String> =
            tenants.into_iter().map(Into::into).collect();
        self.commands.tenants = if tenants.is_empty() {
            crate::services::registration::Tenants::None
        } else {
            crate::services::registration::Tenants::Only(tenants)
        };
        self
    }

    /// Runs the programs of registered command services as `user` (a name or a uid), in
    /// its primary group unless [`command_group`](Self::command_group) names another,
    /// with no supplementary groups. Needs the server to run as root; [`spawn`] refuses
    /// to start when the user cannot be applied. Default: the server's own user, which
    /// lets a program read whatever the server can (see `docs/security.md`).
    ///
    /// [`spawn`]: crate::spawn
    ///
    /// ```
    /// let config = jobwire_server::ServerConfig::new()
    ///     .allow_commands(true)
    ///     .command_user("nobody")
    ///     .command_group("nogroup");
    /// # let _ = config;
    /// ```
    pub fn command_user(mut self, user: impl Into<String>) -> Self {
        self.commands.user = Some(user.into());
        self
    }

    /// The group (a name or a gid) the programs of registered command services run in,
    /// with [`command_user`](Self::command_user).
    pub fn command_group(mut self, group: impl Into<String>) -> Self {
        self.commands.group = Some(group.into());
        self
    }

    /// The resource limits of the programs of registered command services (default:
    /// [`CommandLimits::default`](crate::CommandLimits)).
    pub fn command_limits(mut self, limits: crate::CommandLimits) -> Self {
        self.commands.limits = limits;
        self
    }

    /// Starts the programs of registered command services through `binary`, a
    /// `jobwire-server` binary, which sets each program's user and limits up in a
    /// process of its own (`jobwire-server launch …`) and then execs the program. The
    /// `jobwire-server` binary uses itself; an embedding program without it forks its own
    /// process for each program instead, a cost that grows with the memory the server
    /// holds (see `docs/security.md`, "Command services").
    ///
    /// ```
    /// let config = jobwire_server::ServerConfig::new()
    ///     .allow_commands(true)
    ///     .command_launcher("/usr/local/bin/jobwire-server");
    /// # let _ = config;
    /// ```
    pub fn command_launcher(mut self, binary: impl Into<std::path::PathBuf>) -> Self {
        self.commands.launcher = Some(crate::services::launcher::Launcher {
            program: binary.into(),
            leading: Vec::new(),
        });
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

    /// Longest time an HTTP/1.1 request's header may take to arrive whole (default
    /// 30 s; the connection is closed past it). Waiting for the next request on a
    /// kept-alive HTTP/1.1 connection is reading its header, so this also bounds how
    /// long such a connection may idle.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = jobwire_server::ServerConfig::new().header_read_timeout(Duration::from_secs(10));
    /// # let _ = config;
    /// ```
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.connections.header_read_timeout = timeout;
        self
    }

    /// Longest time a connection may stay open with no request in progress (default
    /// 60 s); HTTP/2 connections get a `GOAWAY`. Long-polls and event streams are
    /// requests in progress, never idle.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = jobwire_server::ServerConfig::new().idle_timeout(Duration::from_secs(30));
    /// # let _ = config;
    /// ```
    pub fn idle_timeout(mut self, timeout: Duration) -> Self {
        self.connections.idle_timeout = timeout;
        self
    }

    /// Longest time a write may wait for the peer to take bytes (default 30 s): a peer
    /// that stops reading — an event stream nobody consumes — has its connection closed,
    /// and what the server held for it is freed.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = jobwire_server::ServerConfig::new().write_timeout(Duration::from_secs(10));
    /// # let _ = config;
    /// ```
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.connections.write_timeout = timeout;
        self
    }

    /// How often an HTTP/2 connection is pinged (default 20 s); a peer that does not
    /// answer a ping within the same time is taken as gone and its connection closed.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = jobwire_server::ServerConfig::new().h2_keep_alive(Duration::from_secs(10));
    /// # let _ = config;
    /// ```
    pub fn h2_keep_alive(mut self, interval: Duration) -> Self {
        self.connections.h2_keep_alive_interval = interval;
        self
    }

    /// Most connections open at once (default 10 000). A connection beyond it closes
    /// the one idle the longest; when none is idle, the newcomer is answered 503
    /// `unavailable` and closed.
    ///
    /// ```
    /// let config = jobwire_server::ServerConfig::new().max_connections(2_000);
    /// # let _ = config;
    /// ```
    pub fn max_connections(mut self, n: usize) -> Self {
        self.connections.max_connections = n;
        self
    }

    /// Longest time a request body may take to arrive whole (default 30 s): a body sent
    /// slower is answered 408 and its connection closed.
    ///
    /// ```
    /// use std::time::Duration;
    /// let config = jobwire_server::ServerConfig::new().body_read_timeout(Duration::from_secs(10));
    /// # let _ = config;
    /// ```
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// Threads of the worker pool, where blocking handlers run — the `digest` built-in
    /// and the `fn` handlers of [`ServiceSpec::blocking_fn`](crate::ServiceSpec::blocking_fn)
    /// (default: one per core). Jobs beyond it wait their turn, each tenant's in a
    /// queue of its own, served in turn; the threads run at a lower priority than the
    /// event loop, so requests and store reads never wait behind them. Raise it for
    /// handlers that block on I/O rather than compute.
    ///
    /// ```
    /// let config = jobwire_server::ServerConfig::new().worker_threads(8);
    /// # let _ = config;
    /// ```
    pub fn worker_threads(mut self, n: usize) -> Self {
        self.worker_threads = n;
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
        if !(MIN_EVENT_BYTES..=MAX_EVENT_BYTES).contains(&self.max_event_bytes) {
            return Err(format!(
                "max_event_bytes must be from {MIN_EVENT_BYTES} to {MAX_EVENT_BYTES} bytes"
            ));
        }
        if self.max_output_bytes == 0 {
            return Err("max_output_bytes must be at least 1".into());
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
        if self.job_retention < self.event_retention.max(self.idempotency_window) {
            return Err(format!(
                "job_retention ({:?}) must be at least event_retention ({:?}) and \
                 idempotency_window ({:?}): a job outlives its events and its key",
                self.job_retention, self.event_retention, self.idempotency_window
            ));
        }
        if self.max_stored_bytes_per_tenant == 0 {
            return Err("max_stored_bytes_per_tenant must be at least 1".into());
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
            crate::store::PgStore::check_url(&url.0).map_err(|e| e.to_string())?;
        }
        let c = &self.connections;
        if [
            c.header_read_timeout,
            c.idle_timeout,
            c.write_timeout,
            c.h2_keep_alive_interval,
            self.body_read_timeout,
        ]
        .iter()
        .any(Duration::is_zero)
        {
            return Err("connection and body timeouts must be longer than zero".into());
        }
        if c.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        if self.worker_threads == 0 || self.worker_threads > 4096 {
            return Err("worker_threads must be between 1 and 4096".into());
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
            .field("max_event_bytes", &self.max_event_bytes)
            .field("max_output_bytes", &self.max_output_bytes)
            .field("max_wait", &self.max_wait)
            .field("max_jobs_in_flight", &self.max_jobs_in_flight)
            .field("heartbeat", &self.heartbeat)
            .field("event_retention", &self.event_retention)
            .field("subscriber_buffer", &self.subscriber_buffer)
            .field("subscriber_buffer_bytes", &self.subscriber_buffer_bytes)
            .field("max_streams_per_tenant", &self.max_streams_per_tenant)
            .field("max_events_per_job", &self.max_events_per_job)
            .field(
                "max_stored_bytes_per_tenant",
                &self.max_stored_bytes_per_tenant,
            )
            .field("job_retention", &self.job_retention)
            .field("max_h2_streams", &self.max_h2_streams)
            .field("max_events_per_stream", &self.max_events_per_stream)
            .field("idempotency_window", &self.idempotency_window)
            .field("shutdown_grace", &self.shutdown_grace)
            .field("lease", &self.lease)
            .field("faults", &self.faults)
            .field("connections", &self.connections)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("worker_threads", &self.worker_threads)
            .field("services", &self.services)
            .field("commands", &self.commands)
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
    fn database_urls_show_no_secret() {
        let cases = [
            (
                "postgres://app:s3cret@db.local:5432/jobs",
                "postgres://…@db.local:5432/jobs",
            ),
            ("postgres://app@db/jobs", "postgres://…@db/jobs"),
            ("postgres://u:p@ss@s3cret@host/db", "postgres://…@host/db"),
            (
                "postgres://db/jobs?user=app&password=s3cret",
                "postgres://db/jobs?user=app&password=…",
            ),
            (
                "postgresql://db/jobs?sslpassword=s3cret&sslmode=require",
                "postgresql://db/jobs?sslpassword=…&sslmode=require",
            ),
            (
                "postgres://db/jobs?PassWord=s3cret",
                "postgres://db/jobs?PassWord=…",
            ),
            (
                "postgres://db/jobs?pass%77ord=s3cret",
                "postgres://db/jobs?pass%77ord=…",
            ),
            (
                "postgres://db/jobs?application_name=a@b&password=s3cret",
                "postgres://db/jobs?application_name=a@b&password=…",
            ),
            ("postgres://db/jobs#s3cret", "postgres://db/jobs#…"),
            ("postgres://db:5432", "postgres://db:5432"),
            (
                "host=db user=app password=s3cret",
                "… (a connection string with a password)",
            ),
            (
                "host=db password = 's3 cret'",
                "… (a connection string with a password)",
            ),
            ("host=db user=app", "host=db user=app"),
        ];
        for (url, shown) in cases {
            assert_eq!(redacted(url), shown, "{url}");
            let debug = format!("{:?}", ServerConfig::new().database_url(url));
            assert!(
                !debug.contains("s3cret") && !debug.contains("s3 cret"),
                "{debug}"
            );
            // The validation error quotes the URL through the same Debug.
            if let Err(e) = ServerConfig::new().database_url(url).validate() {
                assert!(!e.contains("s3cret"), "{e}");
            }
        }
        let c = ServerConfig::new().command_user("nobody");
        assert!(format!("{c:?}").contains("nobody"));
    }

    #[test]
    fn validate_rejects_bad_settings() {
        assert!(ServerConfig::new().validate().is_ok());
        assert!(ServerConfig::new().max_body_bytes(0).validate().is_err());
        for (n, ok) in [
            (MIN_EVENT_BYTES - 1, false),
            (MIN_EVENT_BYTES, true),
            (MAX_EVENT_BYTES, true),
            (MAX_EVENT_BYTES + 1, false),
        ] {
            let checked = ServerConfig::new().max_event_bytes(n).validate();
            assert_eq!(checked.is_ok(), ok, "max_event_bytes {n}");
        }
        assert!(ServerConfig::new().max_output_bytes(0).validate().is_err());
        assert!(ServerConfig::new()
            .heartbeat(Duration::ZERO)
            .validate()
            .is_err());
        assert!(ServerConfig::new().max_h2_streams(0).validate().is_err());
        assert!(ServerConfig::new().max_connections(0).validate().is_err());
        assert!(ServerConfig::new()
            .job_retention(Duration::from_secs(60))
            .validate()
            .is_err());
        assert!(ServerConfig::new()
            .job_retention(Duration::from_secs(60))
            .event_retention(Duration::from_secs(30))
            .idempotency_window(Duration::from_secs(60))
            .validate()
            .is_ok());
        assert!(ServerConfig::new()
            .write_timeout(Duration::ZERO)
            .validate()
            .is_err());
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
        let bad_mode = ServerConfig::new()
            .database_url("postgres://u:secret@h/db?sslmode=verify")
            .validate()
            .unwrap_err();
        assert!(bad_mode.contains("sslmode"), "{bad_mode}");
        assert!(!bad_mode.contains("secret"), "{bad_mode}");
    }
}
