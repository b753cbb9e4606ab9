//! The command line as clap types: every command, its arguments and flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// What `--help` says about exit codes; the codes themselves live in `exit.rs`.
const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    a local failure (the output could not be written, the runtime would not start)
  2    usage: bad arguments, INPUT that is not JSON, a file that cannot be read
  3    not found: no such service or job
  4    a job failed or was cancelled (batch: at least one item failed)
  5    transport or timeout: no answer from the server, or not in time
  6    any other API error: unauthorized, forbidden, conflict, invalid input, rate limited, ...
  130  interrupted (Ctrl-C)";

/// `jobwire`: run jobs on jobwire services from the command line.
#[derive(Debug, Parser)]
#[command(
    name = "jobwire",
    version,
    about = "Run jobs on jobwire services: list services, run and watch jobs, run batches, serve",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the services (every page).
    Services(ServicesArgs),
    /// Show one service, with its input schema; or register (`create`) or retire
    /// (`delete`) a command service.
    Service(ServiceArgs),
    /// Submit a job, show its progress, and print its output when it ends.
    Run(RunArgs),
    /// Submit a job without waiting; print its id.
    Submit(SubmitArgs),
    /// List jobs, newest first.
    Jobs(JobsArgs),
    /// Show one job.
    Job(JobArgs),
    /// Print a job's events as they happen, until it is done.
    Events(EventsArgs),
    /// Wait for existing jobs to end; print the status each ended in.
    Wait(WaitArgs),
    /// Cancel jobs; print the status each ends up in.
    Cancel(CancelArgs),
    /// Run one job per line of a JSON Lines file; print the results in input order.
    Batch(BatchArgs),
    /// Run the reference server (the flags of `jobwire-server`; `jobwire serve --help`).
    // The server parses its own flags, `--help` and `--token` included.
    #[command(disable_help_flag = true)]
    Serve(ServeArgs),
}

impl Command {
    /// The connection and output flags, for every command that talks to a server.
    pub fn common(&self) -> Option<&Common> {
        match self {
            Command::Services(a) => Some(&a.common),
            Command::Service(a) => Some(a.common()),
            Command::Run(a) => Some(&a.common),
            Command::Submit(a) => Some(&a.common),
            Command::Jobs(a) => Some(&a.common),
            Command::Job(a) => Some(&a.common),
            Command::Events(a) => Some(&a.common),
            Command::Wait(a) => Some(&a.common),
            Command::Cancel(a) => Some(&a.common),
            Command::Batch(a) => Some(&a.common),
            Command::Serve(_) => None,
        }
    }
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns and pretty JSON, for people.
    Table,
    /// JSON (one document, or one object per line for streams), for scripts.
    Json,
}

/// Flags of every command that talks to a server.
///
/// They are flattened into each command rather than global, so that `serve` can pass
/// the server's own `--token` through untouched.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection and output")]
pub struct Common {
    /// The server's base URL [default: http://127.0.0.1:7878]
    #[arg(long, env = "JOBWIRE_URL", value_name = "URL")]
    pub url: Option<String>,
    /// The bearer token
    #[arg(
        long,
        env = "JOBWIRE_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN"
    )]
    pub token: Option<String>,
    /// `table` for people, `json` for scripts
    #[arg(short, long, value_enum, default_value_t = Format::Table, value_name = "FORMAT")]
    pub output: Format,
    /// Give up after this many seconds (exit 5)
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,
}

/// What to do with submitted jobs on Ctrl-C.
#[derive(Debug, Clone, Args)]
pub struct InterruptArgs {
    /// On Ctrl-C, cancel the submitted jobs that have not finished, without asking
    /// (otherwise: ask on a terminal, leave them running elsewhere)
    #[arg(long)]
    pub cancel_on_interrupt: bool,
}

/// `jobwire services`.
#[derive(Debug, Args)]
pub struct ServicesArgs {
    #[command(flatten)]
    pub common: Common,
}

/// `jobwire service NAME`, `jobwire service create FILE`, `jobwire service delete NAME`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ServiceArgs {
    /// The service's name or id, to show it
    #[arg(required = true)]
    pub name: Option<String>,
    /// Register or retire a command service
    #[command(subcommand)]
    pub action: Option<ServiceAction>,
    #[command(flatten)]
    pub common: Common,
}

/// What `jobwire service` does beside showing one.
#[derive(Debug, Subcommand)]
pub enum ServiceAction {
    /// Register a command service from a JSON file (`-` for stdin) holding the body of
    /// `POST /v1/services`: name, description, input_schema, command
    Create {
        /// A path to the service's JSON, or `-` for stdin
        #[arg(allow_hyphen_values = true)]
        file: String,
        #[command(flatten)]
        common: Common,
    },
    /// Retire a command service this token registered: it takes no more jobs, its jobs
    /// stay readable
    Delete {
        /// The service's name or id
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Show a service (for one named `create` or `delete`)
    Show {
        /// The service's name or id
        name: String,
        #[command(flatten)]
        common: Common,
    },
}

impl ServiceArgs {
    /// The connection flags, wherever on the line they were given.
    pub fn common(&self) -> &Common {
        match &self.action {
            Some(
                ServiceAction::Create { common, .. }
                | ServiceAction::Delete { common, .. }
                | ServiceAction::Show { common, .. },
            ) => common,
            None => &self.common,
        }
    }
}

/// `jobwire run SERVICE INPUT [--key KEY] [--label K=V]...`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The service's name or id
    pub service: String,
    /// The input: JSON text, `@FILE` to read a file, or `-` to read stdin
    #[arg(allow_hyphen_values = true)]
    pub input: String,
    /// An idempotency key: running again with the same key follows the job the first
    /// run made instead of starting another (safe to retry)
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
    /// A label for the job, `KEY=VALUE`; repeatable
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    #[command(flatten)]
    pub interrupt: InterruptArgs,
    #[command(flatten)]
    pub common: Common,
}

/// `jobwire submit SERVICE INPUT [--label K=V]...`.
#[derive(Debug, Args)]
pub struct SubmitArgs {
    /// The service's name or id
    pub service: String,
    /// The input: JSON text, `@FILE` to read a file, or `-` to read stdin
    #[arg(allow_hyphen_values = true)]
    pub input: String,
    /// A label for the job, `KEY=VALUE`; repeatable
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    #[command(flatten)]
    pub common: Common,
}

/// `jobwire jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// Only jobs in this status
    #[arg(long, value_parser = ["queued", "running", "succeeded", "failed", "cancelled"])]
    pub status: Option<String>,
    /// Only jobs of this service (name or id)
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
    /// At most this many jobs
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
    #[command(flatten)]
    pub common: Common,
}

/// `jobwire job ID`.
#[derive(Debug, Args)]
pub struct JobArgs {
    /// The job's id (`job_…`)
    pub id: String,
    #[command(flatten)]
    pub common: Common,
}

/// `jobwire events ID`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    /// The job's id (`job_…`)
    pub id: String,
    #[command(flatten)]
    pub common: Common,
}

/// `jobwire wait ID...`.
#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The jobs' ids (`job_…`)
    #[arg(required = true)]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub common: Common,
}

/// `jobwire cancel ID...`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The jobs' ids (`job_…`)
    #[arg(required = true)]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub common: Common,
}

/// `jobwire batch SERVICE FILE --concurrency N`.
#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The service's name or id
    pub service: String,
    /// One JSON input per line (blank lines are skipped)
    pub file: PathBuf,
    /// How many jobs run at once
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
    #[command(flatten)]
    pub interrupt: InterruptArgs,
    #[command(flatten)]
    pub common: Common,
}

/// `jobwire serve [SERVER FLAGS]`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The flags of `jobwire-server`, passed on as they are
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
    pub args: Vec<String>,
}

/// A positive number of seconds, fractions allowed.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    text.parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("expected a positive number of seconds, not {text:?}"))
}

/// `KEY=VALUE`, split at the first `=`; the key must not be empty.
fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("expected KEY=VALUE, not {text:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("jobwire").chain(args.iter().copied()))
    }

    #[test]
    fn the_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_takes_every_argument_raw() {
        let cli = parse(&["serve", "--token", "t", "--help", "-o", "--memory"]).unwrap();
        match cli.command {
            Command::Serve(serve) => {
                assert_eq!(serve.args, ["--token", "t", "--help", "-o", "--memory"])
            }
            other => panic!("not serve: {other:?}"),
        }
    }

    #[test]
    fn common_flags_and_labels() {
        let cli = parse(&[
            "submit",
            "echo",
            "{}",
            "--label",
            "a=b=c",
            "-o",
            "json",
            "--timeout",
            "1.5",
        ])
        .unwrap();
        let Command::Submit(submit) = cli.command else {
            panic!("not submit")
        };
        assert_eq!(submit.labels, [("a".to_owned(), "b=c".to_owned())]);
        assert_eq!(submit.common.output, Format::Json);
        assert_eq!(submit.common.timeout, Some(Duration::from_millis(1500)));
        assert!(parse(&["submit", "echo", "{}", "--label", "=x"]).is_err());
        assert!(parse(&["jobs", "--timeout", "0"]).is_err());
        assert!(parse(&["jobs", "--status", "done"]).is_err());
        assert!(parse(&["jobs", "--limit", "0"]).is_err());
    }

    #[test]
    fn stdin_input_is_a_value() {
        let cli = parse(&["run", "echo", "-"]).unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.input, "-");
    }
}
