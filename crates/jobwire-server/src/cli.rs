//! The `jobwire-server` program as a library function (feature `cli`): its flags, its
//! environment variables and its run loop, shared by the `jobwire-server` binary and
//! `jobwire serve` of the command line.
//!
//! Serves on `127.0.0.1:7878` with a durable store in `./jobwire-data` unless told
//! otherwise; prints its URL (and the token, when it generated one); stops cleanly on
//! Ctrl-C or SIGTERM. [`main_with_args`] with `--help` prints the flags.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::config::DatabaseUrl;
use crate::services::launcher::{self, Launcher};
use crate::services::registration::Tenants;
use crate::services::CommandSettings;
use crate::{spawn, Faults, ServerConfig, DEFAULT_TENANT};

const USAGE: &str = "\
jobwire-server: the reference server of the jobwire API

USAGE:
    jobwire-server [OPTIONS]
    jobwire serve [OPTIONS]

OPTIONS:
    --addr ADDR            listen on ADDR (default 127.0.0.1:7878)          [env JOBWIRE_ADDR]
    --data-dir DIR         keep data in DIR/jobwire.db (default ./jobwire-data) [env JOBWIRE_DATA_DIR]
    --memory               keep data in memory only (lost on exit)
    --database-url URL     keep data in PostgreSQL (postgres://user:pass@host/db), which
                           several servers may share                 [env JOBWIRE_DATABASE_URL]
    --lease SECONDS        how long this server's claim on its running jobs lasts without
                           renewal; a peer takes over a dead server's jobs this long after
                           it died (default 15)
    --token TOKEN[=TENANT] accept `Authorization: Bearer TOKEN` for TENANT (default tenant
                           \"default\"); repeatable. Split at the last `=`: a token may
                           hold `=` (a spec ending in `=` is all token), a tenant may not.
                           Without any token, a random one is generated and printed.
                           A token on the command line is visible to every local user
                           (ps): prefer --token-file.         [env JOBWIRE_TOKENS=t1=tenant1,t2=tenant2]
    --token-file PATH      read tokens from PATH, one TOKEN[=TENANT] a line (blank lines
                           and lines starting with # are skipped); repeatable, adds to
                           --token                                       [env JOBWIRE_TOKEN_FILE]
    --heartbeat SECONDS    keep-alive comment on quiet event streams (default 15)
    --event-retention SECONDS
                           keep a finished job's events this long (default 3600)
    --job-retention SECONDS
                           keep a finished job this long (default 604800, 7 days; at
                           least the event retention and the idempotency window)
    --idempotency-window SECONDS
                           keep a submit's Idempotency-Key this long (default 86400)
    --max-stored-bytes BYTES
                           most bytes of jobs and events one tenant may store; past it,
                           submits answer 507 (default 1G; in memory, the oldest finished
                           jobs make room first)
    --header-read-timeout SECONDS
                           a request header must arrive within this (default 30); it also
                           bounds an idle HTTP/1.1 connection
    --idle-timeout SECONDS close a connection with no request in progress (default 60)
    --write-timeout SECONDS
                           close a connection whose peer takes no bytes (default 30)
    --body-read-timeout SECONDS
                           a request body must arrive within this, else 408 (default 30)
    --max-connections N    most open connections; past it the longest-idle one is closed,
                           or the newcomer refused with 503 (default 10000)
    --worker-threads N     threads for blocking handlers such as digest (default: one per
                           core); their jobs queue per tenant and take turns
    --max-event-bytes N    the most bytes of one event's data, 65536 to 1048576 (default
                           262144); longer log lines and progress messages are cut, longer
                           output chunks split, and a longer done leaves out the job's
                           input and output; a size may end in K or M (KiB, MiB)
    --max-output-bytes N   the most bytes of a job's output as JSON (default 16MiB); more
                           fails the job with code output_too_large
    --max-streams-per-tenant N
                           most event streams one tenant may have open at once; one
                           more is answered 429 (default 10000)
    --grace SECONDS        on Ctrl-C/SIGTERM, let running jobs finish this long before
                           failing them as interrupted (default 30)
    --allow-commands       let every tenant register command services (POST /v1/services),
                           whose jobs run programs on this machine (see docs/security.md)
    --allow-commands-for TENANT[,TENANT...]
                           the same for these tenants only; repeatable
    --command-user USER[:GROUP]
                           run those programs as USER (name or uid), in its own group or
                           GROUP, without supplementary groups; needs root. Default: this
                           server's user, whose files and database they can then read
    --command-max-memory BYTES   address space of each program's process (default 4G)
    --command-max-files N        open files of each process (default 1024)
    --command-max-processes N    processes of the command user (default 4096 with
                                 --command-user, else not limited)
    --command-max-file-size BYTES  largest file a program writes (default 1G)
                           BYTES: a whole number with an optional K, M, G or T suffix
                           (powers of 1024); these four also take `unlimited`
    --ui, --no-ui          serve the dashboard at /ui, or not (default: served)
    --fault SPEC           misbehave on purpose, to test clients' retries; repeatable.
                           SPEC is KIND[=ARG]:PROBABILITY[:METHOD[:PATH]], KIND one of
                           drop-answer, unavailable=SECONDS, rate-limited=SECONDS,
                           stall-head=SECONDS, stall-body=SECONDS, cut-body=BYTES;
                           e.g. drop-answer:0.1:POST:/v1/services/*/jobs
    --fault-seed N         which requests the fault probabilities pick (default 0)
    -h, --help             print this help

Flags win over environment variables; --token flags replace JOBWIRE_TOKENS.
Log level: JOBWIRE_LOG=error|warn|info|debug|trace (default info), on stderr.";

/// Where the data goes.
#[derive(Debug, PartialEq)]
enum Store {
    Memory,
    Dir(PathBuf),
    Postgres(DatabaseUrl),
}

/// `(token, tenant)` pairs, whose `Debug` shows the tenants only.
#[derive(PartialEq, Default)]
struct Tokens(Vec<(String, String)>);

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let tenants: Vec<&str> = self.0.iter().map(|(_, tenant)| tenant.as_str()).collect();
        f.debug_struct("Tokens")
            .field("tenants", &tenants)
            .finish_non_exhaustive()
    }
}

/// The bounds on connections and storage the command line set (`None`: the default).
#[derive(Debug, PartialEq, Default)]
struct Bounds {
    job_retention: Option<Duration>,
    idempotency_window: Option<Duration>,
    max_stored_bytes: Option<u64>,
    header_read_timeout: Option<Duration>,
    idle_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    body_read_timeout: Option<Duration>,
    max_connections: Option<usize>,
    worker_threads: Option<usize>,
}

impl Bounds {
    /// `config` with the bounds that were set.
    fn apply(&self, mut config: ServerConfig) -> ServerConfig {
        if let Some(d) = self.job_retention {
            config = config.job_retention(d);
        }
        if let Some(d) = self.idempotency_window {
            config = config.idempotency_window(d);
        }
        if let Some(n) = self.max_stored_bytes {
            config = config.max_stored_bytes_per_tenant(n);
        }
        if let Some(d) = self.header_read_timeout {
            config = config.header_read_timeout(d);
        }
        if let Some(d) = self.idle_timeout {
            config = config.idle_timeout(d);
        }
        if let Some(d) = self.write_timeout {
            config = config.write_timeout(d);
        }
        if let Some(d) = self.body_read_timeout {
            config = config.body_read_timeout(d);
        }
        if let Some(n) = self.max_connections {
            config = config.max_connections(n);
        }
        if let Some(n) = self.worker_threads {
            config = config.worker_threads(n);
        }
        config
    }
}

/// What the command line and environment asked for. `Debug` shows no token or password.
#[derive(Debug, PartialEq)]
struct Cli {
    addr: SocketAddr,
    store: Store,
    lease: Option<Duration>,
    tokens: Tokens,
    heartbeat: Option<Duration>,
    event_retention: Option<Duration>,
    max_event_bytes: Option<usize>,
    max_output_bytes: Option<usize>,
    max_streams_per_tenant: Option<usize>,
    grace: Duration,
    faults: Faults,
    commands: CommandSettings,
    bounds: Bounds,
    /// Said on stderr at start (a token file others may read, …).
    warnings: Vec<String>,
    ui: bool,
}

/// Longest duration any flag takes: 10 years, so that no later arithmetic on a time can
/// overflow.
const MAX_SECONDS: u64 = 10 * 365 * 24 * 3600;

/// A positive number of seconds (fractions allowed), at most [`MAX_SECONDS`].
fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0 && *s <= MAX_SECONDS as f64)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            format!(
                "{flag} takes a positive number of seconds, at most {MAX_SECONDS} (10 years), \
                 not {value:?}"
            )
        })
}

/// A resource limit: a whole number (with a K, M, G or T suffix, powers of 1024, when
/// `sized`), or `unlimited` (`None`).
fn limit(flag: &str, value: &str, sized: bool) -> Result<Option<u64>, String> {
    let text = value.trim();
    if text.eq_ignore_ascii_case("unlimited") {
        return Ok(None);
    }
    let wrong = || {
        if sized {
            format!(
                "{flag} takes a number of bytes such as 512M or 4G, or unlimited, not {value:?}"
            )
        } else {
            format!("{flag} takes a whole number or unlimited, not {value:?}")
        }
    };
    let upper = text.to_ascii_uppercase();
    let (digits, unit) = match upper.find(|c: char| !c.is_ascii_digit()) {
        Some(at) if sized => upper.split_at(at),
        Some(_) => return Err(wrong()),
        None => (upper.as_str(), ""),
    };
    let shift = match unit {
        "" | "B" => 0,
        "K" | "KB" | "KIB" => 10,
        "M" | "MB" | "MIB" => 20,
        "G" | "GB" | "GIB" => 30,
        "T" | "TB" | "TIB" => 40,
        _ => return Err(wrong()),
    };
    let n: u64 = digits.parse().map_err(|_| wrong())?;
    n.checked_mul(1 << shift)
        .filter(|n| *n > 0)
        .map(Some)
        .ok_or_else(wrong)
}

/// A size in bytes, as [`limit`] reads one (`262144`, `256K`, `2MiB`), but never
/// `unlimited`.
fn bytes(flag: &str, value: &str) -> Result<usize, String> {
    limit(flag, value, true)?
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| {
            format!("{flag} takes a size in bytes (like 262144 or 256KiB), not {value:?}")
        })
}

/// `TOKEN[=TENANT]`, split at the last `=`: a token may hold `=` (base64 padding), a
/// tenant name may not. A spec that ends in `=` is all token, for the default tenant:
/// `abc==` is the token `abc==`, `abc===team` the token `abc==` of tenant `team`.
fn parse_token(spec: &str) -> Result<(String, String), String> {
    let spec = spec.trim();
    let (token, tenant) = match spec.rsplit_once('=') {
        Some((token, tenant)) if !tenant.trim().is_empty() => (token.trim(), tenant.trim()),
        _ => (spec, DEFAULT_TENANT),
    };
    if token.is_empty() {
        // Only the tenant part is quoted: the spec holds no token to leak.
        return Err(format!(
            "a token must look like TOKEN or TOKEN=TENANT, not {spec:?}"
        ));
    }
    Ok((token.to_owned(), tenant.to_owned()))
}

/// The tokens of a token file: one `TOKEN[=TENANT]` a line; blank lines and lines
/// starting with `#` are skipped. Errors name the line, not its text (a token).
fn read_token_file(
    path: &std::path::Path,
    warnings: &mut Vec<String>,
) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                warnings.push(format!(
                    "the token file {} may be read by other users (chmod 600 it)",
                    path.display()
                ));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = warnings;
    let mut tokens = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let pair = parse_token(line).map_err(|_| {
            format!(
                "{}, line {}: a token must look like TOKEN or TOKEN=TENANT",
                path.display(),
                i + 1
            )
        })?;
        tokens.push(pair);
    }
    if tokens.is_empty() {
        return Err(format!("the token file {} has no token", path.display()));
    }
    Ok(tokens)
}

/// Parses the arguments (without the program name) and the environment; `Ok(None)` means
/// help was asked for.
fn parse(
    args: impl IntoIterator<Item = String>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Cli>, String> {
    let mut addr: Option<String> = None;
    let mut data_dir: Option<PathBuf> = None;
    let mut memory = false;
    let mut database_url: Option<String> = None;
    let mut lease = None;
    let mut tokens = Vec::new();
    let mut heartbeat = None;
    let mut event_retention = None;
    let mut max_event_bytes = None;
    let mut max_output_bytes = None;
    let mut max_streams_per_tenant = None;
    let mut grace = Duration::from_secs(30);
    let mut fault_specs = Vec::new();
    let mut fault_seed = 0u64;
    let mut allow_commands = false;
    let mut allow_commands_for: Vec<String> = Vec::new();
    let mut commands = CommandSettings::default();
    let mut token_files: Vec<PathBuf> = Vec::new();
    let mut bounds = Bounds::default();
    let mut ui = true;

    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--addr" => addr = Some(value("--addr")?),
            "--data-dir" => data_dir = Some(PathBuf::from(value("--data-dir")?)),
            "--memory" if inline.is_none() => memory = true,
            "--allow-commands" if inline.is_none() => allow_commands = true,
            "--ui" if inline.is_none() => ui = true,
            "--no-ui" if inline.is_none() => ui = false,
            "--database-url" => database_url = Some(value("--database-url")?),
            "--lease" => lease = Some(seconds(&flag, &value("--lease")?)?),
            "--token" => tokens.push(parse_token(&value("--token")?)?),
            "--token-file" => token_files.push(PathBuf::from(value("--token-file")?)),
            "--allow-commands-for" => {
                let text = value("--allow-commands-for")?;
                let before = allow_commands_for.len();
                allow_commands_for.extend(
                    text.split(',')
                        .map(str::trim)
                        .filter(|t| !t.is_empty())
                        .map(str::to_owned),
                );
                if allow_commands_for.len() == before {
                    return Err(format!(
                        "--allow-commands-for takes TENANT[,TENANT...], not {text:?}"
                    ));
                }
            }
            "--command-user" => {
                let text = value("--command-user")?;
                let (user, group) = match text.split_once(':') {
                    Some((user, group)) => (user, Some(group)),
                    None => (text.as_str(), None),
                };
                if user.trim().is_empty() || group.is_some_and(|g| g.trim().is_empty()) {
                    return Err(format!(
                        "--command-user takes USER or USER:GROUP, not {text:?}"
                    ));
                }
                commands.user = Some(user.trim().to_owned());
                commands.group = group.map(|g| g.trim().to_owned());
            }
            "--command-max-memory" => {
                let n = limit(&flag, &value("--command-max-memory")?, true)?;
                commands.limits = commands.limits.address_space(n);
            }
            "--command-max-files" => {
                let n = limit(&flag, &value("--command-max-files")?, false)?;
                commands.limits = commands.limits.open_files(n);
            }
            "--command-max-processes" => {
                let n = limit(&flag, &value("--command-max-processes")?, false)?;
                commands.limits = commands.limits.processes(n);
            }
            "--command-max-file-size" => {
                let n = limit(&flag, &value("--command-max-file-size")?, true)?;
                commands.limits = commands.limits.file_size(n);
            }
            "--heartbeat" => heartbeat = Some(seconds(&flag, &value("--heartbeat")?)?),
            "--job-retention" => {
                bounds.job_retention = Some(seconds(&flag, &value("--job-retention")?)?)
            }
            "--idempotency-window" => {
                bounds.idempotency_window = Some(seconds(&flag, &value("--idempotency-window")?)?)
            }
            "--max-stored-bytes" => {
                let n = limit(&flag, &value("--max-stored-bytes")?, true)?;
                bounds.max_stored_bytes = Some(n.unwrap_or(u64::MAX));
            }
            "--header-read-timeout" => {
                bounds.header_read_timeout = Some(seconds(&flag, &value("--header-read-timeout")?)?)
            }
            "--idle-timeout" => {
                bounds.idle_timeout = Some(seconds(&flag, &value("--idle-timeout")?)?)
            }
            "--write-timeout" => {
                bounds.write_timeout = Some(seconds(&flag, &value("--write-timeout")?)?)
            }
            "--body-read-timeout" => {
                bounds.body_read_timeout = Some(seconds(&flag, &value("--body-read-timeout")?)?)
            }
            "--max-connections" => {
                let n = limit(&flag, &value("--max-connections")?, false)?;
                bounds.max_connections =
                    Some(n.map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX)));
            }
            "--worker-threads" => {
                let text = value("--worker-threads")?;
                let n = text
                    .trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=4096).contains(n))
                    .ok_or_else(|| {
                        format!("--worker-threads takes a number from 1 to 4096, not {text:?}")
                    })?;
                bounds.worker_threads = Some(n);
            }
            "--event-retention" => {
                event_retention = Some(seconds(&flag, &value("--event-retention")?)?)
            }
            "--max-event-bytes" => {
                max_event_bytes = Some(bytes(&flag, &value("--max-event-bytes")?)?)
            }
            "--max-output-bytes" => {
                max_output_bytes = Some(bytes(&flag, &value("--max-output-bytes")?)?)
            }
            "--max-streams-per-tenant" => {
                let text = value("--max-streams-per-tenant")?;
                let n = text
                    .parse::<usize>()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| {
                        format!(
                            "--max-streams-per-tenant takes a positive whole number, not {text:?}"
                        )
                    })?;
                max_streams_per_tenant = Some(n);
            }
            "--fault" => fault_specs.push(value("--fault")?),
            "--fault-seed" => {
                let text = value("--fault-seed")?;
                fault_seed = text
                    .parse()
                    .map_err(|_| format!("--fault-seed takes a whole number, not {text:?}"))?;
            }
            "--grace" => {
                let text = value("--grace")?;
                // Zero is a choice here: fail running jobs at once.
                grace = match text.trim() {
                    "0" => Duration::ZERO,
                    other => seconds(&flag, other)?,
                };
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    if [memory, data_dir.is_some(), database_url.is_some()]
        .iter()
        .filter(|chosen| **chosen)
        .count()
        > 1
    {
        return Err("--memory, --data-dir and --database-url exclude each other".into());
    }

    let addr = addr
        .or_else(|| env("JOBWIRE_ADDR"))
        .unwrap_or_else(|| "127.0.0.1:7878".into());
    let addr: SocketAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an address like 127.0.0.1:7878"))?;
    let store = if memory {
        Store::Memory
    } else if let Some(dir) = data_dir {
        Store::Dir(dir)
    } else if let Some(url) = database_url.or_else(|| env("JOBWIRE_DATABASE_URL")) {
        Store::Postgres(DatabaseUrl(url))
    } else {
        let dir = env("JOBWIRE_DATA_DIR").map(PathBuf::from);
        Store::Dir(dir.unwrap_or_else(|| PathBuf::from("./jobwire-data")))
    };
    let mut faults = Faults::new(fault_seed);
    for spec in &fault_specs {
        faults = faults.with_spec(spec)?;
    }
    let mut warnings = Vec::new();
    for path in &token_files {
        tokens.extend(read_token_file(path, &mut warnings)?);
    }
    if tokens.is_empty() {
        if let Some(list) = env("JOBWIRE_TOKENS") {
            for spec in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                tokens.push(parse_token(spec)?);
            }
        }
        if let Some(path) = env("JOBWIRE_TOKEN_FILE") {
            tokens.extend(read_token_file(std::path::Path::new(&path), &mut warnings)?);
        }
    }
    if allow_commands && !allow_commands_for.is_empty() {
        return Err(
            "--allow-commands (every tenant) and --allow-commands-for exclude each other".into(),
        );
    }
    commands.tenants = if allow_commands {
        Tenants::All
    } else if allow_commands_for.is_empty() {
        Tenants::None
    } else {
        Tenants::Only(allow_commands_for.into_iter().collect())
    };
    Ok(Some(Cli {
        addr,
        store,
        lease,
        tokens: Tokens(tokens),
        heartbeat,
        event_retention,
        max_event_bytes,
        max_output_bytes,
        max_streams_per_tenant,
        grace,
        faults,
        commands,
        bounds,
        warnings,
        ui,
    }))
}

fn init_logging() {
    let level = match std::env::var("JOBWIRE_LOG").as_deref() {
        Ok("error") => tracing::Level::ERROR,
        Ok("warn") => tracing::Level::WARN,
        Ok("debug") => tracing::Level::DEBUG,
        Ok("trace") => tracing::Level::TRACE,
        _ => tracing::Level::INFO,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A program that set up logging of its own keeps it.
        .try_init();
}

/// The process's stop requests (Ctrl-C, or SIGTERM on Unix), listened for from when
/// this is made: made before the server says where it listens, so that a request sent
/// right after that line (as a supervisor or a test does) is not left to the default
/// action, which ends the process at once instead of shutting down.
struct StopRequests {
    #[cfg(unix)]
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl StopRequests {
    #[cfg(unix)]
    fn listen() -> Self {
        use tokio::signal::unix::{signal, SignalKind};
        StopRequests {
            signals: signal(SignalKind::terminate())
                .ok()
                .zip(signal(SignalKind::interrupt()).ok()),
        }
    }

    #[cfg(not(unix))]
    fn listen() -> Self {
        StopRequests {}
    }

    /// Resolves at the first stop request.
    async fn wait(self) {
        #[cfg(unix)]
        if let Some((mut term, mut interrupt)) = self.signals {
            tokio::select! {
                _ = term.recv() => {}
                _ = interrupt.recv() => {}
            }
            return;
        }
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Prints a line, and carries on if nobody reads it any more: a server whose terminal or
/// pipe went away keeps serving (`println!` would panic on the broken pipe).
macro_rules! say {
    ($stream:ident, $($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::$stream(), $($arg)*);
    }};
}

async fn run(cli: Cli) -> ExitCode {
    let stop = StopRequests::listen();
    let generated_token = cli.tokens.0.is_empty();
    let cli_grace = cli.grace;
    for warning in &cli.warnings {
        say!(stderr, "jobwire-server: warning: {warning}");
    }
    let mut config = ServerConfig::new().addr(cli.addr).ui(cli.ui);
    config.commands = cli.commands.clone();
    config = match &cli.store {
        Store::Memory => config.memory(),
        Store::Dir(dir) => config.data_dir(dir.clone()),
        Store::Postgres(url) => config.database_url(url.0.clone()),
    };
    if let Some(lease) = cli.lease {
        config = config.lease(lease);
    }
    for (token, tenant) in cli.tokens.0 {
        config = config.token(token, tenant);
    }
    if let Some(interval) = cli.heartbeat {
        config = config.heartbeat(interval);
    }
    if let Some(window) = cli.event_retention {
        config = config.event_retention(window);
    }
    if let Some(n) = cli.max_event_bytes {
        config = config.max_event_bytes(n);
    }
    if let Some(n) = cli.max_output_bytes {
        config = config.max_output_bytes(n);
    }
    config = cli.bounds.apply(config.shutdown_grace(cli.grace));
    if let Some(n) = cli.max_streams_per_tenant {
        config = config.max_streams_per_tenant(n);
    }
    config = config.shutdown_grace(cli.grace);
    if !cli.faults.is_empty() {
        say!(
            stderr,
            "jobwire-server: injecting faults on purpose: {:?}",
            cli.faults
        );
    }
    config = config.faults(cli.faults);
    let server = match spawn(config).await {
        Ok(server) => server,
        Err(e) => {
            say!(stderr, "jobwire-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    say!(
        stdout,
        "jobwire-server {} listening on {}",
        env!("CARGO_PKG_VERSION"),
        server.url()
    );
    match &cli.store {
        Store::Dir(dir) => say!(stdout, "data: {}", dir.join("jobwire.db").display()),
        Store::Memory => say!(stdout, "data: in memory (lost on exit)"),
        // The URL may carry a password: not printed.
        Store::Postgres(_) => say!(stdout, "data: PostgreSQL (--database-url)"),
    }
    if cli.ui {
        say!(stdout, "dashboard: {}/ui", server.url());
    }
    if generated_token {
        say!(
            stdout,
            "token (tenant \"{DEFAULT_TENANT}\"): {}",
            server.token()
        );
    }
    stop.wait().await;
    say!(
        stdout,
        "stopping: running jobs get up to {:?} to finish",
        cli_grace
    );
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// Makes this process non-dumpable (Linux, `PR_SET_DUMPABLE` 0): its `/proc/<pid>/`
/// environ, mem and fd then belong to root, so programs running as the same user — a
/// tenant's command among them — cannot read its environment (`JOBWIRE_TOKENS`), memory
/// or open files, nor attach a debugger; and it leaves no core dump holding tokens. Only
/// the binary does this: a library embedding keeps its process as it is.
fn protect_process() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl with integer arguments.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            say!(
                stderr,
                "jobwire-server: warning: cannot make the process non-dumpable: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

/// Tunes glibc's malloc for a long-running server with many threads and large bodies,
/// unless the environment already does (`MALLOC_ARENA_MAX`, `MALLOC_MMAP_THRESHOLD_`):
///
/// - one arena per core (at least two), not up to eight: each arena keeps what its
///   threads freed;
/// - blocks of 128 KiB and more always mapped on their own and unmapped when freed:
///   by default glibc raises that threshold to the largest block freed (up to 32 MiB),
///   after which 1–2 MiB bodies are carved from the arenas and leave holes.
///
/// Under the soak's load (`cargo xtask soak`) the server's anonymous memory stood near
/// 140 MiB and crept up while its heap held under 40 MiB (heaptrack); with both, about
/// 26 MiB and flat, at the same throughput. Only the binary does this: a library
/// embedding keeps its process's allocator as it is. Returns the settings glibc refused,
/// for the log once it is set up (this runs before, as malloc must be tuned before the
/// runtime's threads start).
fn tune_allocator() -> Vec<&'static str> {
    #[allow(unused_mut)] // Nothing to refuse off glibc.
    let mut refused = Vec::new();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let arenas = libc::c_int::try_from(cores.max(2)).unwrap_or(libc::c_int::MAX);
        for (variable, param, value) in [
            ("MALLOC_ARENA_MAX", libc::M_ARENA_MAX, arenas),
            ("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 128 * 1024),
        ] {
            if std::env::var_os(variable).is_some() {
                continue;
            }
            // SAFETY: mallopt with integer arguments, before the runtime's threads.
            if unsafe { libc::mallopt(param, value) } != 1 {
                refused.push(variable);
            }
        }
    }
    refused
}

/// Runs the server as the `jobwire-server` binary does: `args` are its command-line
/// arguments without the program name (`--addr`, `--memory`, `--token`, … and `--help`;
/// the usage text lists them), read together with the `JOBWIRE_*` environment
/// variables. Blocks until Ctrl-C or SIGTERM has stopped the server, and returns the
/// exit status: success, 2 for bad arguments, failure when the server cannot start.
///
/// It starts a tokio runtime of its own, so call it outside any runtime.
pub fn main_with_args(args: impl IntoIterator<Item = String>) -> ExitCode {
    let args: Vec<String> = args.into_iter().collect();
    if let Some((first, rest)) = args.split_first() {
        if first == launcher::SUBCOMMAND {
            // The server started this binary to launch a command's program.
            return launcher::main(rest.iter().cloned());
        }
    }
    let own_binary = Launcher::this_binary(&args);
    let mut cli = match parse(args, |k| std::env::var(k).ok()) {
        Ok(Some(cli)) => cli,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("jobwire-server: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let refused = tune_allocator();
    init_logging();
    for variable in refused {
        tracing::warn!(
            variable,
            "glibc refused this malloc setting; running with its default"
        );
    }
    protect_process();
    // Command programs start through this binary (posix_spawn, then exec) rather than by
    // forking the whole server; see `services/launcher.rs`.
    cli.commands.launcher = own_binary;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("jobwire-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CommandLimits;
    use std::collections::HashMap;

    fn cli(args: &[&str], env: &[(&str, &str)]) -> Result<Option<Cli>, String> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(args.iter().map(|s| s.to_string()), |k| env.get(k).cloned())
    }

    #[test]
    fn defaults() {
        assert_eq!(
            cli(&[], &[]).unwrap().unwrap(),
            Cli {
                addr: "127.0.0.1:7878".parse().unwrap(),
                store: Store::Dir(PathBuf::from("./jobwire-data")),
                lease: None,
                tokens: Tokens::default(),
                heartbeat: None,
                event_retention: None,
                max_event_bytes: None,
                max_output_bytes: None,
                max_streams_per_tenant: None,
                grace: Duration::from_secs(30),
                faults: Faults::new(0),
                commands: CommandSettings::default(),
                bounds: Bounds::default(),
                warnings: vec![],
                ui: true,
            }
        );
    }

    #[test]
    fn bounds_flags() {
        let parsed = cli(
            &[
                "--job-retention",
                "86400",
                "--idempotency-window",
                "600",
                "--max-stored-bytes",
                "64M",
                "--header-read-timeout",
                "5",
                "--idle-timeout=20",
                "--write-timeout",
                "7.5",
                "--body-read-timeout",
                "9",
                "--max-connections",
                "500",
                "--worker-threads",
                "3",
            ],
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            parsed.bounds,
            Bounds {
                job_retention: Some(Duration::from_secs(86_400)),
                idempotency_window: Some(Duration::from_secs(600)),
                max_stored_bytes: Some(64 << 20),
                header_read_timeout: Some(Duration::from_secs(5)),
                idle_timeout: Some(Duration::from_secs(20)),
                write_timeout: Some(Duration::from_millis(7_500)),
                body_read_timeout: Some(Duration::from_secs(9)),
                max_connections: Some(500),
                worker_threads: Some(3),
            }
        );
        let unlimited = cli(&["--max-stored-bytes", "unlimited"], &[])
            .unwrap()
            .unwrap();
        assert_eq!(unlimited.bounds.max_stored_bytes, Some(u64::MAX));
        for bad in [
            &["--max-connections", "0"][..],
            &["--max-connections", "-1"],
            &["--idle-timeout", "0"],
            &["--write-timeout", "1e300"],
            &["--max-stored-bytes", "18446744073709551615T"],
            &["--worker-threads", "0"],
            &["--worker-threads", "5000"],
        ] {
            assert!(cli(bad, &[]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn flags_win_over_env() {
        let env = [
            ("JOBWIRE_ADDR", "0.0.0.0:1"),
            ("JOBWIRE_DATA_DIR", "/env"),
            ("JOBWIRE_TOKENS", "e1=te, e2"),
        ];
        let from_env = cli(&[], &env).unwrap().unwrap();
        assert_eq!(from_env.addr, "0.0.0.0:1".parse().unwrap());
        assert_eq!(from_env.store, Store::Dir(PathBuf::from("/env")));
        assert_eq!(
            from_env.tokens.0,
            [("e1".into(), "te".into()), ("e2".into(), "default".into())]
        );

        let flags = cli(
            &[
                "--addr",
                "127.0.0.1:9",
                "--memory",
                "--token=a=ta",
                "--token",
                "b",
            ],
            &env,
        )
        .unwrap()
        .unwrap();
        assert_eq!(flags.addr, "127.0.0.1:9".parse().unwrap());
        assert_eq!(flags.store, Store::Memory);
        assert_eq!(
            flags.tokens.0,
            [("a".into(), "ta".into()), ("b".into(), "default".into())]
        );
        let dir = cli(&["--data-dir=/x"], &env).unwrap().unwrap();
        assert_eq!(dir.store, Store::Dir(PathBuf::from("/x")));
        let pg = cli(&["--database-url", "postgres://h/db", "--lease=2"], &env)
            .unwrap()
            .unwrap();
        assert_eq!(
            pg.store,
            Store::Postgres(DatabaseUrl("postgres://h/db".into()))
        );
        assert_eq!(pg.lease, Some(Duration::from_secs(2)));
        let pg_env = cli(&[], &[("JOBWIRE_DATABASE_URL", "postgres://e/db")])
            .unwrap()
            .unwrap();
        assert_eq!(
            pg_env.store,
            Store::Postgres(DatabaseUrl("postgres://e/db".into()))
        );
        let events = cli(&["--heartbeat", "0.5", "--event-retention=60"], &[])
            .unwrap()
            .unwrap();
        assert_eq!(events.heartbeat, Some(Duration::from_millis(500)));
        assert_eq!(events.event_retention, Some(Duration::from_secs(60)));
        let sizes = cli(
            &["--max-event-bytes", "65536", "--max-output-bytes=2MiB"],
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(sizes.max_event_bytes, Some(65536));
        assert_eq!(sizes.max_output_bytes, Some(2 * 1024 * 1024));
        let kib = cli(&["--max-event-bytes=256KiB"], &[]).unwrap().unwrap();
        assert_eq!(kib.max_event_bytes, Some(256 * 1024));
        let streams = cli(&["--max-streams-per-tenant", "50"], &[])
            .unwrap()
            .unwrap();
        assert_eq!(streams.max_streams_per_tenant, Some(50));
        let grace = cli(&["--grace", "0"], &[]).unwrap().unwrap();
        assert_eq!(grace.grace, Duration::ZERO);
        assert_eq!(
            cli(&["--allow-commands"], &[])
                .unwrap()
                .unwrap()
                .commands
                .tenants,
            Tenants::All
        );
        assert!(
            cli(&[], &[]).unwrap().unwrap().ui,
            "the dashboard by default"
        );
        assert!(!cli(&["--no-ui"], &[]).unwrap().unwrap().ui);
        assert!(cli(&["--no-ui", "--ui"], &[]).unwrap().unwrap().ui);
    }

    #[test]
    fn errors_and_help() {
        assert_eq!(cli(&["--help"], &[]), Ok(None));
        assert_eq!(cli(&["-h"], &[]), Ok(None));
        for bad in [
            &["--addr"][..],
            &["--addr", "nope"],
            &["--bogus"],
            &["--memory", "--data-dir", "x"],
            &["--data-dir", "x", "--database-url", "postgres://h/db"],
            &["--lease", "0"],
            &["--token", "=tenant"],
            &["--memory=yes"],
            &["--allow-commands=yes"],
            &["--ui=no"],
            &["--heartbeat", "0"],
            &["--fault", "explode:1"],
            &["--fault", "drop-answer:2"],
            &["--fault-seed", "x"],
            &["--event-retention", "soon"],
            &["--max-event-bytes", "big"],
            &["--max-event-bytes", "0"],
            &["--max-output-bytes", "-1"],
            &["--max-output-bytes", "99999999999999999999MiB"],
            &["--max-streams-per-tenant", "0"],
            &["--max-streams-per-tenant", "-3"],
        ] {
            assert!(cli(bad, &[]).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn tokens_split_at_the_last_equals_sign() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("abc", Some(("abc", "default"))),
            ("abc=team", Some(("abc", "team"))),
            ("abc==", Some(("abc==", "default"))),
            ("abc=", Some(("abc=", "default"))),
            ("abc===team", Some(("abc==", "team"))),
            ("a=b=c", Some(("a=b", "c"))),
            (" abc = team ", Some(("abc", "team"))),
            ("=team", None),
            ("", None),
            ("=", Some(("=", "default"))),
        ];
        for (spec, want) in cases {
            let got = parse_token(spec);
            let want = want.map(|(t, n)| (t.to_string(), n.to_string()));
            assert_eq!(got.as_ref().ok(), want.as_ref(), "{spec:?}");
        }
        let flag = cli(&["--token", "abc=="], &[]).unwrap().unwrap();
        assert_eq!(flag.tokens.0, [("abc==".into(), "default".into())]);
        let inline = cli(&["--token=abc===t"], &[]).unwrap().unwrap();
        assert_eq!(inline.tokens.0, [("abc==".into(), "t".into())]);
    }

    /// A file in a fresh temporary directory, removed with it.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, text: &str, mode: u32) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "jobwire-cli-{}-{name}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            }
            let _ = mode;
            TempFile(path)
        }

        fn arg(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            if let Some(dir) = self.0.parent() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }

    #[test]
    fn token_files_keep_tokens_off_the_command_line() {
        let file = TempFile::new(
            "tokens",
            "# team tokens\n\nsecret-a=team-a\r\nc2VjcmV0==\n  secret-b = team-b  \n",
            0o600,
        );
        let parsed = cli(&["--token-file", file.arg(), "--token", "t=x"], &[])
            .unwrap()
            .unwrap();
        assert_eq!(
            parsed.tokens.0,
            [
                ("t".into(), "x".into()),
                ("secret-a".into(), "team-a".into()),
                ("c2VjcmV0==".into(), "default".into()),
                ("secret-b".into(), "team-b".into()),
            ]
        );
        assert!(parsed.warnings.is_empty(), "{:?}", parsed.warnings);
        // From the environment, with JOBWIRE_TOKENS; flags replace both.
        let env = [
            ("JOBWIRE_TOKEN_FILE", file.arg()),
            ("JOBWIRE_TOKENS", "e=te"),
        ];
        let from_env = cli(&[], &env).unwrap().unwrap();
        assert_eq!(from_env.tokens.0.len(), 4);
        let flags = cli(&["--token", "f"], &env).unwrap().unwrap();
        assert_eq!(flags.tokens.0, [("f".into(), "default".into())]);

        let loose = TempFile::new("loose", "tok\n", 0o644);
        let warned = cli(&["--token-file", loose.arg()], &[]).unwrap().unwrap();
        #[cfg(unix)]
        assert!(
            warned.warnings[0].contains("chmod 600"),
            "{:?}",
            warned.warnings
        );
        let _ = warned;

        let bad = TempFile::new("bad", "fine\n=s3cret-tenant-only\n", 0o600);
        let error = cli(&["--token-file", bad.arg()], &[]).unwrap_err();
        assert!(error.contains("line 2"), "{error}");
        let empty = TempFile::new("empty", "# nothing\n", 0o600);
        assert!(cli(&["--token-file", empty.arg()], &[])
            .unwrap_err()
            .contains("no token"));
        let missing = cli(&["--token-file", "/no/such/jobwire/tokens"], &[]).unwrap_err();
        assert!(missing.contains("cannot read the token file"), "{missing}");
    }

    #[test]
    fn debug_output_shows_no_token_or_password() {
        let file = TempFile::new("debug", "from-file-s3cret=t\n", 0o600);
        let parsed = cli(
            &[
                "--token",
                "flag-s3cret=team",
                "--token-file",
                file.arg(),
                "--database-url",
                "postgres://app:url-s3cret@db/jobs?password=query-s3cret",
            ],
            &[],
        )
        .unwrap()
        .unwrap();
        let shown = format!("{parsed:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("team") && shown.contains("db/jobs"),
            "{shown}"
        );
    }

    #[test]
    fn command_flags() {
        let parsed = cli(
            &[
                "--allow-commands-for",
                "a, b",
                "--allow-commands-for=c",
                "--command-user",
                "nobody:nogroup",
                "--command-max-memory",
                "512M",
                "--command-max-files=64",
                "--command-max-processes",
                "unlimited",
                "--command-max-file-size",
                "2g",
            ],
            &[],
        )
        .unwrap()
        .unwrap();
        let commands = parsed.commands;
        assert_eq!(
            commands.tenants,
            Tenants::Only(["a", "b", "c"].iter().map(|t| t.to_string()).collect())
        );
        assert_eq!(commands.user.as_deref(), Some("nobody"));
        assert_eq!(commands.group.as_deref(), Some("nogroup"));
        assert_eq!(
            commands.limits,
            CommandLimits::default()
                .address_space(Some(512 << 20))
                .open_files(Some(64))
                .processes(None)
                .file_size(Some(2 << 30))
        );
        let user_only = cli(&["--command-user", "1000"], &[]).unwrap().unwrap();
        assert_eq!(
            (user_only.commands.user.as_deref(), user_only.commands.group),
            (Some("1000"), None)
        );
        for bad in [
            &["--allow-commands", "--allow-commands-for", "a"][..],
            &["--allow-commands-for", " , "],
            &["--command-user", ""],
            &["--command-user", "nobody:"],
            &["--command-user", ":staff"],
        ] {
            assert!(cli(bad, &[]).is_err(), "{bad:?}");
        }
    }

    /// Values an attacker or a typo might give, for every flag that takes a number.
    const HOSTILE: &[&str] = &[
        "",
        " ",
        "-1",
        "0",
        "-0",
        "1e300",
        "-1e300",
        "1e-300",
        "5e-324",
        "inf",
        "-inf",
        "NaN",
        "18446744073709551616",
        "340282366920938463463374607431768211456",
        "0x10",
        "1_000",
        "1,5",
        "٣",
        "1e",
        "e1",
        "\u{0}",
        "99999999999999999999999999999999999999999999999999999999999999999999999",
    ];

    #[test]
    fn no_flag_value_panics_and_each_is_checked() {
        // Durations: positive, at most 10 years, never rounded to zero.
        for flag in [
            "--lease",
            "--heartbeat",
            "--event-retention",
            "--grace",
            "--job-retention",
            "--header-read-timeout",
            "--idle-timeout",
            "--write-timeout",
            "--body-read-timeout",
        ] {
            for value in HOSTILE {
                let parsed = cli(&[flag, value], &[]);
                let zero_grace = flag == "--grace" && *value == "0";
                assert_eq!(parsed.is_ok(), zero_grace, "{flag} {value:?}: {parsed:?}");
            }
            let max = MAX_SECONDS.to_string();
            assert!(cli(&[flag, &max], &[]).is_ok(), "{flag} {max}");
            let past = (MAX_SECONDS + 1).to_string();
            assert!(cli(&[flag, &past], &[]).is_err(), "{flag} {past}");
        }
        // Limits: whole numbers (sizes with a suffix), no overflow, never zero.
        for flag in [
            "--command-max-memory",
            "--command-max-files",
            "--command-max-processes",
            "--command-max-file-size",
            "--max-stored-bytes",
            "--max-connections",
        ] {
            for value in HOSTILE {
                assert!(cli(&[flag, value], &[]).is_err(), "{flag} {value:?}");
            }
            for value in ["16777216T", "1K1", "4 G", "4GG", "-4G", "4Q"] {
                assert!(cli(&[flag, value], &[]).is_err(), "{flag} {value:?}");
            }
            assert!(cli(&[flag, "unlimited"], &[]).is_ok());
            assert!(cli(&[flag, "1024"], &[]).is_ok());
        }
        assert!(cli(&["--command-max-memory", "16383T"], &[]).is_ok());
        assert!(
            cli(&["--command-max-files", "1K"], &[]).is_err(),
            "a count has no unit"
        );
        // The fault seed is any u64.
        for value in HOSTILE {
            let ok = *value == "0";
            assert_eq!(cli(&["--fault-seed", value], &[]).is_ok(), ok, "{value:?}");
        }
        assert!(cli(&["--fault-seed", "18446744073709551615"], &[]).is_ok());
        // Faults: each kind's argument, and the probability.
        for kind in [
            "unavailable",
            "rate-limited",
            "stall-head",
            "stall-body",
            "cut-body",
        ] {
            for value in HOSTILE {
                let spec = format!("{kind}={value}:1");
                let parsed = cli(&["--fault", &spec], &[]);
                let fine = if kind == "cut-body" {
                    *value == "0"
                } else {
                    ["0", "-0", "1e-300", "5e-324"].contains(value)
                };
                assert_eq!(parsed.is_ok(), fine, "{spec:?}: {parsed:?}");
            }
        }
        for value in HOSTILE {
            let spec = format!("drop-answer:{value}");
            let fine = ["0", "-0", "1e-300", "5e-324"].contains(value);
            assert_eq!(cli(&["--fault", &spec], &[]).is_ok(), fine, "{spec:?}");
        }
        assert!(
            cli(&["--fault", "drop-answer:1:P@ST"], &[]).is_err(),
            "not a method"
        );
        // Addresses and tokens: refused or accepted, never a panic.
        for value in HOSTILE {
            let _ = cli(&["--addr", value], &[]);
            let _ = cli(&["--token", value], &[]);
            let _ = cli(&["--command-user", value], &[]);
            let _ = cli(&["--allow-commands-for", value], &[]);
        }
    }

    /// The largest values the flags accept start a server that runs jobs: no later
    /// arithmetic on them overflows.
    #[tokio::test]
    async fn a_server_starts_and_runs_with_every_duration_at_its_maximum() {
        let max = Duration::from_secs(MAX_SECONDS);
        let faults = Faults::new(u64::MAX)
            .with_spec("unavailable=86400:0")
            .unwrap();
        let config = ServerConfig::new()
            .lease(max)
            .heartbeat(max)
            .event_retention(max)
            .job_retention(max)
            .header_read_timeout(max)
            .idle_timeout(max)
            .write_timeout(max)
            .h2_keep_alive(max)
            .body_read_timeout(max)
            .shutdown_grace(Duration::from_secs(86_400))
            .faults(faults)
            .token("t", "default");
        let server = spawn(config).await.unwrap();
        let mut socket = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = r#"{"input":{"n":1}}"#;
        let request = format!(
            "POST /v1/services/echo/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\nPrefer: wait=10\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        socket.read_to_string(&mut answer).await.unwrap();
        assert!(answer.contains("\"succeeded\""), "{answer}");
        // Give the background loops (retention, leases) a turn with these values.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut socket = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
        socket
            .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut health = String::new();
        socket.read_to_string(&mut health).await.unwrap();
        assert!(health.starts_with("HTTP/1.1 200"), "{health}");
        server.shutdown().await;
    }
}
