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
                           \"default\"); repeatable. Without any token, a random one is
                           generated and printed.                            [env JOBWIRE_TOKENS=t1=tenant1,t2=tenant2]
    --heartbeat SECONDS    keep-alive comment on quiet event streams (default 15)
    --event-retention SECONDS
                           keep a finished job's events this long (default 3600)
    --max-streams-per-tenant N
                           most event streams one tenant may have open at once; one
                           more is answered 429 (default 10000)
    --grace SECONDS        on Ctrl-C/SIGTERM, let running jobs finish this long before
                           failing them as interrupted (default 30)
    --allow-commands       let tenants register command services (POST /v1/services),
                           whose jobs run programs here with this server's rights
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
    Postgres(String),
}

/// What the command line and environment asked for.
#[derive(Debug, PartialEq)]
struct Cli {
    addr: SocketAddr,
    store: Store,
    lease: Option<Duration>,
    tokens: Vec<(String, String)>,
    heartbeat: Option<Duration>,
    event_retention: Option<Duration>,
    max_streams_per_tenant: Option<usize>,
    grace: Duration,
    faults: Faults,
    allow_commands: bool,
    ui: bool,
}

/// A positive number of seconds (fractions allowed).
fn seconds(flag: &str, value: &str) -> Result<Duration, String> {
    value
        .parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{flag} takes a positive number of seconds, not {value:?}"))
}

/// `TOKEN[=TENANT]`.
fn parse_token(spec: &str) -> Result<(String, String), String> {
    let (token, tenant) = spec.split_once('=').unwrap_or((spec, DEFAULT_TENANT));
    let (token, tenant) = (token.trim(), tenant.trim());
    if token.is_empty() || tenant.is_empty() {
        return Err(format!(
            "a token must look like TOKEN or TOKEN=TENANT, not {spec:?}"
        ));
    }
    Ok((token.to_owned(), tenant.to_owned()))
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
    let mut max_streams_per_tenant = None;
    let mut grace = Duration::from_secs(30);
    let mut fault_specs = Vec::new();
    let mut fault_seed = 0u64;
    let mut allow_commands = false;
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
            "--heartbeat" => heartbeat = Some(seconds(&flag, &value("--heartbeat")?)?),
            "--event-retention" => {
                event_retention = Some(seconds(&flag, &value("--event-retention")?)?)
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
        Store::Postgres(url)
    } else {
        let dir = env("JOBWIRE_DATA_DIR").map(PathBuf::from);
        Store::Dir(dir.unwrap_or_else(|| PathBuf::from("./jobwire-data")))
    };
    let mut faults = Faults::new(fault_seed);
    for spec in &fault_specs {
        faults = faults.with_spec(spec)?;
    }
    if tokens.is_empty() {
        if let Some(list) = env("JOBWIRE_TOKENS") {
            for spec in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                tokens.push(parse_token(spec)?);
            }
        }
    }
    Ok(Some(Cli {
        addr,
        store,
        lease,
        tokens,
        heartbeat,
        event_retention,
        max_streams_per_tenant,
        grace,
        faults,
        allow_commands,
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

/// Resolves when the process is asked to stop (Ctrl-C, or SIGTERM on Unix).
async fn stop_requested() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
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
    let generated_token = cli.tokens.is_empty();
    let cli_grace = cli.grace;
    let mut config = ServerConfig::new()
        .addr(cli.addr)
        .allow_commands(cli.allow_commands)
        .ui(cli.ui);
    config = match &cli.store {
        Store::Memory => config.memory(),
        Store::Dir(dir) => config.data_dir(dir.clone()),
        Store::Postgres(url) => config.database_url(url.clone()),
    };
    if let Some(lease) = cli.lease {
        config = config.lease(lease);
    }
    for (token, tenant) in cli.tokens {
        config = config.token(token, tenant);
    }
    if let Some(interval) = cli.heartbeat {
        config = config.heartbeat(interval);
    }
    if let Some(window) = cli.event_retention {
        config = config.event_retention(window);
    }
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
    stop_requested().await;
    say!(
        stdout,
        "stopping: running jobs get up to {:?} to finish",
        cli_grace
    );
    server.shutdown().await;
    ExitCode::SUCCESS
}

/// Runs the server as the `jobwire-server` binary does: `args` are its command-line
/// arguments without the program name (`--addr`, `--memory`, `--token`, … and `--help`;
/// the usage text lists them), read together with the `JOBWIRE_*` environment
/// variables. Blocks until Ctrl-C or SIGTERM has stopped the server, and returns the
/// exit status: success, 2 for bad arguments, failure when the server cannot start.
///
/// It starts a tokio runtime of its own, so call it outside any runtime.
pub fn main_with_args(args: impl IntoIterator<Item = String>) -> ExitCode {
    let cli = match parse(args, |k| std::env::var(k).ok()) {
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
    init_logging();
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
                tokens: vec![],
                heartbeat: None,
                event_retention: None,
                max_streams_per_tenant: None,
                grace: Duration::from_secs(30),
                faults: Faults::new(0),
                allow_commands: false,
                ui: true,
            }
        );
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
            from_env.tokens,
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
            flags.tokens,
            [("a".into(), "ta".into()), ("b".into(), "default".into())]
        );
        let dir = cli(&["--data-dir=/x"], &env).unwrap().unwrap();
        assert_eq!(dir.store, Store::Dir(PathBuf::from("/x")));
        let pg = cli(&["--database-url", "postgres://h/db", "--lease=2"], &env)
            .unwrap()
            .unwrap();
        assert_eq!(pg.store, Store::Postgres("postgres://h/db".into()));
        assert_eq!(pg.lease, Some(Duration::from_secs(2)));
        let pg_env = cli(&[], &[("JOBWIRE_DATABASE_URL", "postgres://e/db")])
            .unwrap()
            .unwrap();
        assert_eq!(pg_env.store, Store::Postgres("postgres://e/db".into()));
        let events = cli(&["--heartbeat", "0.5", "--event-retention=60"], &[])
            .unwrap()
            .unwrap();
        assert_eq!(events.heartbeat, Some(Duration::from_millis(500)));
        assert_eq!(events.event_retention, Some(Duration::from_secs(60)));
        let streams = cli(&["--max-streams-per-tenant", "50"], &[])
            .unwrap()
            .unwrap();
        assert_eq!(streams.max_streams_per_tenant, Some(50));
        let grace = cli(&["--grace", "0"], &[]).unwrap().unwrap();
        assert_eq!(grace.grace, Duration::ZERO);
        assert!(
            cli(&["--allow-commands"], &[])
                .unwrap()
                .unwrap()
                .allow_commands
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
            &["--token", "tok="],
            &["--memory=yes"],
            &["--allow-commands=yes"],
            &["--ui=no"],
            &["--heartbeat", "0"],
            &["--fault", "explode:1"],
            &["--fault", "drop-answer:2"],
            &["--fault-seed", "x"],
            &["--event-retention", "soon"],
            &["--max-streams-per-tenant", "0"],
            &["--max-streams-per-tenant", "-3"],
        ] {
            assert!(cli(bad, &[]).is_err(), "{bad:?}");
        }
    }
}
