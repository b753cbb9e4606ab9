//! Exit codes a script can tell apart, and how a failure is told on stderr.

use std::process::ExitCode;
use std::time::Duration;

/// Everything went as asked.
pub const OK: u8 = 0;
/// A local failure: the output could not be written, the runtime would not start.
pub const LOCAL: u8 = 1;
/// Bad arguments, INPUT that is not JSON, a file that cannot be read (clap's own usage
/// errors exit 2 as well).
pub const USAGE: u8 = 2;
/// No such service or job.
pub const NOT_FOUND: u8 = 3;
/// A job failed or was cancelled; in `batch`, at least one item failed.
pub const JOB_FAILED: u8 = 4;
/// The server could not be reached, or did not answer in time.
pub const TRANSPORT: u8 = 5;
/// Any other error answer of the API.
pub const API: u8 = 6;
/// Stopped by Ctrl-C (128 + SIGINT, as shells report it).
pub const INTERRUPTED: u8 = 130;

/// Why a command did not succeed.
#[derive(Debug)]
pub enum Failure {
    /// The command line or its input is wrong; nothing was sent.
    Usage(String),
    /// An SDK call failed.
    Sdk(jobwire::Error),
    /// Items of a batch failed; each one's error is already on stdout.
    BatchFailed {
        /// How many failed.
        failed: usize,
        /// How many there were.
        total: usize,
        /// How many failed of each kind, as text (`job_failed: 2, validation: 1`).
        kinds: String,
    },
    /// `--timeout` ran out.
    TimedOut {
        /// The `--timeout` given.
        after: Duration,
        /// What was still going on, for the message.
        doing: String,
    },
    /// Ctrl-C; what became of the submitted jobs is already said.
    Interrupted,
    /// Several failures (`cancel` of several ids); the first decides the exit code.
    Several(Vec<Failure>),
    /// Stdout could not be written.
    Output(std::io::Error),
    /// The async runtime would not start.
    Runtime(std::io::Error),
    /// A failure to reach the server, with the URL that was tried.
    Unreachable {
        /// The failure.
        failure: Box<Failure>,
        /// The server's base URL.
        url: String,
    },
}

impl From<jobwire::Error> for Failure {
    fn from(error: jobwire::Error) -> Self {
        Failure::Sdk(error)
    }
}

impl Failure {
    /// The process exit code for this failure.
    pub fn code(&self) -> u8 {
        match self {
            Failure::Usage(_) => USAGE,
            Failure::Sdk(error) => code_of(error),
            Failure::BatchFailed { .. } => JOB_FAILED,
            Failure::TimedOut { .. } => TRANSPORT,
            Failure::Interrupted => INTERRUPTED,
            Failure::Several(all) => all.first().map_or(OK, Failure::code),
            Failure::Output(_) | Failure::Runtime(_) => LOCAL,
            Failure::Unreachable { failure, .. } => failure.code(),
        }
    }

    /// Tells the failure on stderr; nothing for a broken pipe (the reader left, as with
    /// `jobwire jobs | head -1`) or an interrupt (already told).
    pub fn report(&self) {
        match self {
            Failure::Output(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Failure::Interrupted => {}
            Failure::Several(all) => all.iter().for_each(Failure::report),
            other => eprintln!("{}", other.message()),
        }
    }

    /// The text [`report`](Self::report) prints.
    pub fn message(&self) -> String {
        match self {
            Failure::Usage(text) => format!("jobwire: {text}"),
            Failure::Sdk(error) => format!("jobwire: {}", describe(error)),
            Failure::BatchFailed {
                failed,
                total,
                kinds,
            } => format!("jobwire: {failed} of {total} jobs failed ({kinds})"),
            Failure::TimedOut { after, doing } => {
                format!("jobwire: timed out after {after:?} (--timeout) {doing}")
            }
            Failure::Interrupted => "jobwire: interrupted".to_owned(),
            Failure::Several(all) => all
                .iter()
                .map(Failure::message)
                .collect::<Vec<_>>()
                .join("\n"),
            Failure::Output(e) => format!("jobwire: cannot write the output: {e}"),
            Failure::Runtime(e) => format!("jobwire: cannot start the async runtime: {e}"),
            Failure::Unreachable { failure, url } => {
                format!("{}\n  server: {url}", failure.message())
            }
        }
    }

    /// A transport failure or timeout names the server it could not reach, since a
    /// wrong `JOBWIRE_URL` is the usual cause; other failures are left as they are.
    pub fn naming_server(self, url: &str) -> Failure {
        if self.code() == TRANSPORT {
            Failure::Unreachable {
                failure: Box::new(self),
                url: url.to_owned(),
            }
        } else {
            self
        }
    }

    /// The failure as the process's exit status, told on stderr first.
    pub fn exit(self) -> ExitCode {
        self.report();
        ExitCode::from(self.code())
    }
}

/// The exit code of an SDK error.
pub fn code_of(error: &jobwire::Error) -> u8 {
    use jobwire::Error as E;
    match error {
        E::NotFound { .. } => NOT_FOUND,
        E::JobFailed { .. } | E::JobCancelled { .. } => JOB_FAILED,
        E::Transport(_) | E::Timeout { .. } => TRANSPORT,
        // A setting the SDK refused before sending anything: a bad --url or --token.
        E::Invalid { .. } => USAGE,
        // Api, Forbidden, Conflict, Validation, Unauthorized, RateLimited, Decode,
        // Protocol, and whatever a later SDK adds.
        _ => API,
    }
}

/// An SDK error for people: the problem's title, detail, failing fields and request id
/// when the server answered with one, else the error's own text and its causes.
pub fn describe(error: &jobwire::Error) -> String {
    let Some(problem) = error.problem() else {
        return with_causes(error);
    };
    let mut text = problem.title.clone();
    if text.is_empty() {
        text = format!("HTTP {}", problem.status);
    }
    if let Some(detail) = problem.detail.as_deref().filter(|d| !d.is_empty()) {
        text.push_str(": ");
        text.push_str(detail);
    }
    for field in &problem.errors {
        let pointer = if field.pointer.is_empty() {
            "(input)"
        } else {
            &field.pointer
        };
        text.push_str(&format!("\n  {pointer}: {}", field.message));
    }
    if let Some(id) = &problem.request_id {
        text.push_str(&format!("\n  request_id: {id}"));
    }
    text
}

/// An error's text followed by its sources' (a transport's own words are often in the
/// innermost one: "Connection refused").
fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(source) = cause {
        let more = source.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = source.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use jobwire::{Error, FieldError, JobError, Problem};

    fn problem(status: u16, code: &str) -> Problem {
        let mut p = Problem::new(status, code, "Title").with_detail("what happened");
        p.request_id = Some("req_1".into());
        p
    }

    #[test]
    fn codes() {
        let not_found = Error::from_problem(problem(404, "not_found"), None);
        assert_eq!(code_of(&not_found), NOT_FOUND);
        for status in [400, 401, 403, 409, 422, 429, 500, 503] {
            let e = Error::from_problem(problem(status, "x"), None);
            assert_eq!(code_of(&e), API, "{status}");
        }
        let failed = Error::JobFailed {
            job_id: "job_1".into(),
            error: JobError::new("boom"),
        };
        assert_eq!(code_of(&failed), JOB_FAILED);
        let cancelled = Error::JobCancelled {
            job_id: "job_1".into(),
        };
        assert_eq!(code_of(&cancelled), JOB_FAILED);
        let timeout = Error::Timeout { what: "x".into() };
        assert_eq!(code_of(&timeout), TRANSPORT);
        let transport = Error::Transport(jobwire::TransportError::new(
            jobwire::TransportErrorKind::Connect,
            "refused",
        ));
        assert_eq!(code_of(&transport), TRANSPORT);
        assert_eq!(Failure::Usage("x".into()).code(), USAGE);
        assert_eq!(
            Failure::BatchFailed {
                failed: 1,
                total: 2,
                kinds: "job_failed: 1".into(),
            }
            .code(),
            JOB_FAILED
        );
        assert_eq!(Failure::Interrupted.code(), INTERRUPTED);
        assert_eq!(
            Failure::Several(vec![Failure::Sdk(not_found), Failure::Usage("x".into())]).code(),
            NOT_FOUND
        );
    }

    #[test]
    fn a_problem_is_told_with_its_title_detail_fields_and_request_id() {
        let p = problem(422, "validation_failed").with_errors(vec![FieldError::new(
            "/duration_seconds",
            "must be a number",
        )]);
        let text = describe(&Error::from_problem(p, None));
        assert_eq!(
            text,
            "Title: what happened\n  /duration_seconds: must be a number\n  request_id: req_1"
        );
        let plain = Error::Timeout { what: "x".into() };
        assert_eq!(describe(&plain), plain.to_string());
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let transport = Error::Transport(jobwire::TransportError::new(
            jobwire::TransportErrorKind::Connect,
            io,
        ));
        assert_eq!(describe(&transport), "connect error: refused");
    }
}
