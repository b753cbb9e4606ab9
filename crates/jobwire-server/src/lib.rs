//! The reference server of the jobwire API: services that run jobs, over HTTP.
//!
//! It implements API v1 (`GET /v1/openapi.json` serves the contract) with an embedded
//! store, so examples, tests and benchmarks run against a real server over real sockets
//! with nothing to install. Use it three ways:
//!
//! - **as a binary**: `cargo run -p jobwire-server` serves on `127.0.0.1:7878` with a
//!   durable SQLite store in `./jobwire-data` (`--help` lists the flags);
//! - **in process, async**: [`spawn`] starts a server on the current tokio runtime and
//!   returns a [`ServerHandle`] with its URL, its token and a graceful
//!   [`shutdown`](ServerHandle::shutdown);
//! - **in process, blocking**: [`spawn_blocking_server`] starts a server on a runtime of its
//!   own, for tests and programs that have no runtime.
//!
//! The server ships with five built-in services, each a real handler: `echo` (output =
//! input), `sleep` (`{"duration_seconds": f64}`, waits on the event loop), `fail`
//! (`{"message": str}`), `steps` (`{"steps": u32, "interval_ms": u64}`, reports progress,
//! log lines and output chunks) and `digest` (`{"data": str, "rounds": u32}`, CPU-bound
//! iterated SHA-256 on the worker pool).
//!
//! # Example
//!
//! A blocking test starts a server, talks to it over a socket, and stops it:
//!
//! ```
//! use std::io::{Read, Write};
//! use jobwire_server::{spawn_blocking_server, ServerConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = spawn_blocking_server(ServerConfig::new())?;
//! // Any HTTP client works; API calls send `Authorization: Bearer <server.token()>`.
//! let mut socket = std::net::TcpStream::connect(server.addr())?;
//! socket.write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
//! let mut answer = String::new();
//! socket.read_to_string(&mut answer)?;
//! assert!(answer.starts_with("HTTP/1.1 200"));
//! assert!(answer.contains(r#""status":"ok""#));
//! server.shutdown();
//! # Ok(()) }
//! ```
//!
//! The same from async code, with a durable store and a chosen token:
//!
//! ```no_run
//! use jobwire_server::{spawn, ServerConfig};
//!
//! #[tokio::main]
//! async fn main() -> Result<(), jobwire_server::ServerError> {
//!     let config = ServerConfig::new()
//!         .data_dir("./jobwire-data")
//!         .token("my-secret-token", "my-team");
//!     let server = spawn(config).await?;
//!     println!("serving on {}", server.url());
//!     tokio::signal::ctrl_c().await.ok();
//!     server.shutdown().await;
//!     Ok(())
//! }
//! ```
#![warn(missing_docs)]

mod bus;
#[cfg(feature = "cli")]
pub mod cli;
mod clock;
mod config;
mod connections;
mod faults;
mod http;
mod ids;
mod locking;
mod retention;
mod runner;
mod services;
mod store;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

pub use config::{ServerConfig, DEFAULT_TENANT, MAX_EVENT_BYTES, MIN_EVENT_BYTES};
pub use faults::{Fault, Faults};
pub use services::{Command, CommandLimits, JobContext, ServiceSpec, PROGRESS_PREFIX};
pub use store::StoreError;

use bus::EventBus;
use clock::SystemClock;
use config::Storage;
use connections::{Admission, ConnectionLimits, Connections, CountedService, WriteTimed};
use runner::{Limits, Runner};
use services::Registry;
use store::{MemoryStore, PgStore, SqliteStore, Store};

/// How long [`ServerHandle::shutdown`] lets in-flight requests finish before cutting them
/// (after the jobs' own grace).
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The listening socket could not be bound (address in use, no permission, …).
    #[error("cannot listen: {0}")]
    Bind(#[source] std::io::Error),
    /// The store could not be opened or prepared.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration is not usable.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The runtime or thread of [`spawn_blocking_server`] could not be started.
    #[error("cannot start the server's runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Starts a server on the current tokio runtime and returns once it is listening.
///
/// It serves HTTP/1.1 and HTTP/2 (cleartext, prior knowledge) on one socket, in a
/// background task, until [`ServerHandle::shutdown`] (or dropping the handle).
///
/// # Errors
///
/// [`ServerError::Config`] for an unusable configuration, [`ServerError::Store`] when the
/// data directory cannot be opened, [`ServerError::Bind`] when the address cannot be bound.
pub async fn spawn(config: ServerConfig) -> Result<ServerHandle, ServerError> {
    config.validate().map_err(ServerError::Config)?;
    let mut tokens = config.tokens.clone();
    if tokens.is_empty() {
        let token = ids::random_id("jw_", 24)
            .map_err(|e| ServerError::Config(format!("cannot generate a token: {e}")))?;
        tokens.push((token, DEFAULT_TENANT.to_owned()));
    }
    let first_token = tokens
        .first()
        .map(|(token, _)| token.clone())
        .unwrap_or_default();

    let bus = Arc::new(EventBus::with_bounds(bus::Bounds {
        events: config.subscriber_buffer,
        bytes: config.subscriber_buffer_bytes,
        streams_per_tenant: config.max_streams_per_tenant,
    }));
    let store: Arc<dyn Store> = match &config.storage {
        Storage::Memory => Arc::new(MemoryStore::new(
            config.max_stored_bytes_per_tenant,
            bus.clone(),
        )),
        Storage::Dir(dir) => {
            create_private_dir(dir)?;
            Arc::new(SqliteStore::open(dir, bus.clone())?)
        }
        Storage::Postgres(url) => Arc::new(PgStore::connect(&url.0, bus.clone()).await?),
    };
    let commands = config.commands.resolve().map_err(ServerError::Config)?;
    warn_about_command_rights(&commands);
    let registry =
        Arc::new(Registry::new(&config.services, commands).map_err(ServerError::Config)?);
    registry.seed(store.as_ref()).await?;
    let limits = Limits {
        max_in_flight: config.max_jobs_in_flight,
        max_reports_per_job: config.max_events_per_job,
        max_stored_bytes: config.max_stored_bytes_per_tenant,
        worker_threads: config.worker_threads,
        lease: config.lease,
        caps: runner::Caps {
            max_event_bytes: config.max_event_bytes,
            max_output_bytes: config.max_output_bytes,
        },
    };
    let server_id = ids::random_id("srv_", 8)
        .map_err(|e| ServerError::Config(format!("cannot generate a server id: {e}")))?;
    let runner = Runner::new(
        store.clone(),
        bus.clone(),
        Arc::new(SystemClock),
        registry,
        server_id,
        limits,
    );
    let shutdown_grace = config.shutdown_grace;
    let recovered = runner.recover().await?;
    if recovered.resumed + recovered.interrupted > 0 {
        tracing::warn!(
            resumed = recovered.resumed,
            interrupted = recovered.interrupted,
            "jobs whose server is gone: queued ones run here now, running ones failed as \
             interrupted"
        );
    }
    tokio::spawn(runner.clone().maintain(bus.closed()));
    if store.shared() {
        tokio::spawn(runner.clone().follow_peers(bus.closed()));
    }

    let listener = TcpListener::bind(config.addr)
        .await
        .map_err(ServerError::Bind)?;
    let addr = listener.local_addr().map_err(ServerError::Bind)?;
    let app = Arc::new(http::App {
        tokens: http::Tokens::new(&tokens),
        runner: runner.clone(),
        services: services::ServiceCache::new(),
        max_body_bytes: config.max_body_bytes,
        max_wait: config.max_wait,
        heartbeat: config.heartbeat,
        max_events_per_stream: config.max_events_per_stream,
        body_read_timeout: config.body_read_timeout,
        keys_in_flight: Default::default(),
        ui: config.ui,
    });
    let connections = Arc::new(Connections::new());
    let requests = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    tokio::spawn(retention::run(
        store,
        retention::Windows {
            events: config.event_retention,
            keys: config.idempotency_window,
            jobs: config.job_retention,
        },
        bus.closed(),
    ));
    let injector =
        (!config.faults.is_empty()).then(|| Arc::new(faults::Injector::new(&config.faults)));
    let task = tokio::spawn(serve(
        listener,
        http::router(app, injector, requests.clone()),
        Protocol {
            max_h2_streams: config.max_h2_streams,
            limits: config.connections,
        },
        connections.clone(),
        stop_rx,
    ));
    tracing::info!(%addr, "jobwire server listening");
    Ok(ServerHandle {
        addr,
        token: first_token,
        connections,
        requests,
        runner,
        shutdown_grace,
        stop: Some(stop_tx),
        task: Some(task),
    })
}

/// Creates the data directory readable by the server's user only (0700), so programs
/// running as another user (`command_user`) cannot read the database. A directory that
/// exists is left as it is, with a warning when others may read it.
fn create_private_dir(dir: &std::path::Path) -> Result<(), ServerError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        match std::fs::metadata(dir) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => tracing::warn!(
                dir = %dir.display(),
                "the data directory may be read by other users (chmod 700 it)"
            ),
            Ok(_) => {}
            Err(_) => std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    StoreError::with_source(
                        format!("creating the data directory {}", dir.display()),
                        e,
                    )
                })?,
        }
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Warns when tenants' programs would run with the rights of root.
fn warn_about_command_rights(commands: &services::CommandPolicy) {
    #[cfg(unix)]
    {
        // SAFETY: a plain getter.
        let root = unsafe { libc::geteuid() } == 0;
        let any_allowed = !matches!(commands.tenants, services::registration::Tenants::None);
        if root && any_allowed && commands.isolation.run_as.is_none() {
            tracing::warn!(
                "tenants' programs run as root: give them a user of their own \
                 (--command-user, ServerConfig::command_user)"
            );
        }
    }
    #[cfg(not(unix))]
    let _ = commands;
}

/// How connections are spoken and bounded.
#[derive(Debug, Clone, Copy)]
struct Protocol {
    max_h2_streams: u32,
    limits: ConnectionLimits,
}

/// Accepts connections until `stop` fires (or its sender is dropped), serving HTTP/1.1
/// and HTTP/2 on each within the connection limits (see `connections.rs`), then closes
/// them gracefully and waits for them to finish.
async fn serve(
    listener: TcpListener,
    router: axum::Router,
    protocol: Protocol,
    connections: Arc<Connections>,
    mut stop: oneshot::Receiver<()>,
) {
    let limits = protocol.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(protocol.max_h2_streams)
        .keep_alive_interval(limits.h2_keep_alive_interval)
        .keep_alive_timeout(limits.h2_keep_alive_interval);
    let builder = Arc::new(builder);
    let (stopping_tx, stopping) = watch::channel(false);
    loop {
        let tcp = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => tcp,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let tracked = match connections.admit(limits.max_connections) {
            Admission::Admitted(tracked) => tracked,
            Admission::Full => {
                tracing::warn!(
                    max = limits.max_connections,
                    "refusing a connection: every open one is busy"
                );
                // Best effort and never waiting: the socket is new, its buffer empty.
                let _ = tcp.try_write(connections::FULL_ANSWER);
                continue;
            }
        };
        // Answers are small and latency matters more than packet count: no Nagle delay.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let service = CountedService::new(router.clone(), connections.clone(), tracked.clone());
        let builder = builder.clone();
        let connections = connections.clone();
        let stopping = stopping.clone();
        tokio::spawn(async move {
            let io = TokioIo::new(WriteTimed::new(tcp, limits.write_timeout));
            let connection = builder.serve_connection_with_upgrades(io, service);
            connections::drive(
                connections,
                tracked,
                connection,
                limits.idle_timeout,
                stopping,
            )
            .await;
        });
    }
    drop(listener);
    let _ = stopping_tx.send(true);
    connections.all_closed().await;
}

/// `http://` URL of a listening address; an unspecified address (`0.0.0.0`, `::`) is
/// reached through loopback.
fn url_of(addr: SocketAddr) -> String {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        let loopback = match addr {
            SocketAddr::V4(_) => std::net::IpAddr::from(std::net::Ipv4Addr::LOCALHOST),
            SocketAddr::V6(_) => std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST),
        };
        addr.set_ip(loopback);
    }
    format!("http://{addr}")
}

/// A running server started by [`spawn`].
///
/// Dropping it asks the server to stop (new requests are refused, unfinished jobs fail
/// as `interrupted`) without waiting; [`shutdown`](Self::shutdown) waits.
pub struct ServerHandle {
    addr: SocketAddr,
    token: String,
    connections: Arc<Connections>,
    requests: Arc<AtomicU64>,
    runner: Runner,
    shutdown_grace: Duration,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The base URL, such as `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        url_of(self.addr)
    }

    /// The address the server listens on (with the real port when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first configured token (or the generated one): `Authorization: Bearer <token>`.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// How many client connections are open right now.
    pub fn connections(&self) -> usize {
        self.connections.count()
    }

    /// How many requests the server has been asked since it started, every route and
    /// answer counted: what a test or benchmark reads to count round trips.
    ///
    /// ```
    /// # #[tokio::main]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let server = jobwire_server::spawn(jobwire_server::ServerConfig::new()).await?;
    /// let before = server.requests();
    /// get_health(&server.url()).await?;
    /// assert_eq!(server.requests(), before + 1);
    /// # Ok(()) }
    /// # async fn get_health(url: &str) -> std::io::Result<()> {
    /// #     use tokio::io::{AsyncReadExt, AsyncWriteExt};
    /// #     let mut tcp = tokio::net::TcpStream::connect(url.trim_start_matches("http://")).await?;
    /// #     tcp.write_all(b"GET /v1/health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await?;
    /// #     tcp.read_to_end(&mut Vec::new()).await?;
    /// #     Ok(())
    /// # }
    /// ```
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Stops the server gracefully: refuses new jobs (503) at once, lets the running
    /// ones finish within the shutdown grace ([`ServerConfig::shutdown_grace`]; the
    /// server keeps answering meanwhile, so waits see them finish), fails those still
    /// unfinished as `interrupted`, stops accepting connections, lets in-flight requests
    /// finish (up to 10 s), then flushes the store.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            self.runner.close();
            let deadline = tokio::time::Instant::now() + self.shutdown_grace;
            while self.runner.unfinished() > 0 && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let _ = stop.send(());
            end_jobs(self.runner.clone()).await;
        }
        if let Some(mut task) = self.task.take() {
            if tokio::time::timeout(DRAIN_LIMIT, &mut task).await.is_err() {
                tracing::warn!("in-flight requests did not finish in time; cutting them");
                task.abort();
            }
        }
        if let Err(e) = self.runner.store().close().await {
            tracing::warn!(error = %e, "closing the store");
        }
        tracing::info!("jobwire server stopped");
    }
}

/// Fails the unfinished jobs as interrupted, gives up the leases, then ends the event
/// streams, which first send what is already published, so their connections can close.
/// (On PostgreSQL the last `done`s may not be published here before that; a client
/// resumes from another server and gets them there.)
async fn end_jobs(runner: Runner) {
    let aborted = runner.abort_all().await;
    if aborted > 0 {
        tracing::info!(jobs = aborted, "failed unfinished jobs as interrupted");
    }
    runner.bus().close();
}

impl Drop for ServerHandle {
    /// Refuses new jobs and stops accepting connections at once; the unfinished jobs end
    /// in the background (a drop cannot wait for the store).
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            self.runner.close();
            let _ = stop.send(());
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(end_jobs(self.runner.clone()));
            }
        }
    }
}

/// A running server started by [`spawn_blocking_server`], on a runtime of its own.
///
/// Dropping it stops the server and waits for it, like [`shutdown`](Self::shutdown).
pub struct BlockingServerHandle {
    addr: SocketAddr,
    token: String,
    connections: Arc<Connections>,
    requests: Arc<AtomicU64>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for BlockingServerHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockingServerHandle")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Starts a server on a multi-thread tokio runtime of its own, on a background thread,
/// and returns once it is listening. For blocking tests and programs without a runtime;
/// safe to call from inside one too.
///
/// # Errors
///
/// As [`spawn`], plus [`ServerError::Runtime`] when the thread or runtime cannot start.
pub fn spawn_blocking_server(config: ServerConfig) -> Result<BlockingServerHandle, ServerError> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("jobwire-server".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .thread_name("jobwire-server-worker")
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(ServerError::Runtime(e)));
                    return;
                }
            };
            runtime.block_on(async move {
                match spawn(config).await {
                    Ok(handle) => {
                        let ready = (
                            handle.addr(),
                            handle.token().to_owned(),
                            handle.connections.clone(),
                            handle.requests.clone(),
                        );
                        let _ = ready_tx.send(Ok(ready));
                        // Stop when asked, or when the handle is gone.
                        let _ = stop_rx.await;
                        handle.shutdown().await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            });
        })
        .map_err(ServerError::Runtime)?;
    match ready_rx.recv() {
        Ok(Ok((addr, token, connections, requests))) => Ok(BlockingServerHandle {
            addr,
            token,
            connections,
            requests,
            stop: Some(stop_tx),
            thread: Some(thread),
        }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => {
            let _ = thread.join();
            Err(ServerError::Runtime(std::io::Error::other(
                "the server thread ended before it was listening",
            )))
        }
    }
}

impl BlockingServerHandle {
    /// The base URL, such as `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        url_of(self.addr)
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first configured token (or the generated one).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// How many client connections are open right now.
    pub fn connections(&self) -> usize {
        self.connections.count()
    }

    /// How many requests the server has been asked since it started (see
    /// [`ServerHandle::requests`]).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Stops the server gracefully (see [`ServerHandle::shutdown`]) and waits for it.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for BlockingServerHandle {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_use_loopback_for_unspecified_addresses() {
        assert_eq!(
            url_of("127.0.0.1:80".parse().unwrap()),
            "http://127.0.0.1:80"
        );
        assert_eq!(url_of("0.0.0.0:81".parse().unwrap()), "http://127.0.0.1:81");
        assert_eq!(url_of("[::]:82".parse().unwrap()), "http://[::1]:82");
    }
}
