//! [`Command`]: a program run as a service's job.
//!
//! The protocol between the server and the program:
//!
//! - **stdin**: the job's input as JSON, then end of file;
//! - **stdout**: the job's output as UTF-8 JSON (the whole of stdout but progress lines),
//!   at most 16 MiB; and progress lines: `@progress FRACTION MESSAGE` (FRACTION from 0
//!   to 1, MESSAGE optional), each one a `progress` event, not counted as output;
//! - **stderr**: every line a `log` event; a line longer than 16 KiB is cut (and says
//!   so), bytes that are not UTF-8 become U+FFFD, and past 1 MiB of log and progress text
//!   per job later lines are dropped (one log line says so). stderr is read to its end
//!   whatever it holds, so a program never stops on a full or closed pipe;
//! - **exit status**: 0 and JSON on stdout is success (empty stdout is `null`); another
//!   status fails the job with code `exit_status` and the last lines of stderr; stdout
//!   that is not UTF-8 JSON, or is more than 16 MiB, fails it with code `bad_output`;
//! - **time**: past the per-job timeout the program is stopped and the job fails with code
//!   `timeout`.
//!
//! The program runs in a process group of its own. When the job ends — the program
//! exited, timed out, or the job was cancelled — whatever still runs in the group gets
//! SIGTERM, and SIGKILL after the grace period, so no child it left behind outlives the
//! job; a group with nothing left in it is not signalled at all (see `program.rs` for why
//! no signal can reach another process that later got the same id).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jobwire_core::JobError;
use serde_json::Value;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::isolation::Isolation;
use super::launcher;
use super::program::Program;
use super::JobContext;

/// The prefix of a progress line on a program's stdout.
pub const PROGRESS_PREFIX: &str = "@progress ";
/// Lines of stderr quoted when a program fails, and the most bytes quoted of each.
const STDERR_TAIL: usize = 20;
const TAIL_LINE: usize = 1024;
/// Most stdout a program may write as its output (progress lines aside): 16 MiB.
pub(crate) const MAX_OUTPUT: usize = 16 * 1024 * 1024;
/// Longest stderr line, or progress line, kept: 16 KiB; the rest of a longer one is
/// dropped.
pub(crate) const MAX_LINE: usize = 16 * 1024;
/// Most text of a job's log lines and progress messages together: 1 MiB.
pub(crate) const MAX_TEXT: usize = 1024 * 1024;

/// A program to run for each job of a service; see the module docs for the protocol.
///
/// ```
/// use std::time::Duration;
/// use jobwire_server::{Command, ServerConfig, ServiceSpec};
///
/// // `jq` doubles `n`: stdin {"n": 2} -> stdout {"n": 4}.
/// let double = Command::new("jq")
///     .arg("-c")
///     .arg("{n: (.n * 2)}")
///     .timeout(Duration::from_secs(10));
/// let config = ServerConfig::new().service(ServiceSpec::command("double", double));
/// # let _ = config;
/// ```
#[derive(Clone)]
pub struct Command {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    timeout: Duration,
    grace: Duration,
    /// The user and limits of a registered command's program; `None`: the server's
    /// user, no limits (an embedding program's own command).
    isolation: Option<Arc<Isolation>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Environment values may be secrets (keys for an API the program calls): only
        // their names are shown.
        let env: Vec<&str> = self.env.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("Command")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("env_names", &env)
            .field("timeout", &self.timeout)
            .field("grace", &self.grace)
            .field("isolation", &self.isolation)
            .finish()
    }
}

impl Command {
    /// Runs `program` (a path, or a name looked up on `PATH`) with no arguments, a
    /// 60-second timeout and a 5-second grace between SIGTERM and SIGKILL. The program
    /// gets no environment but the variables given with [`env`](Self::env).
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Command {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            timeout: Duration::from_secs(60),
            grace: Duration::from_secs(5),
            isolation: None,
        }
    }

    /// The program of a command service's spec (its timeout, or the 60-second
    /// default), with the default grace, run with `isolation`.
    pub(crate) fn from_spec(spec: &jobwire_core::CommandSpec, isolation: Arc<Isolation>) -> Self {
        let timeout = spec
            .timeout_seconds
            .and_then(|t| Duration::try_from_secs_f64(t).ok())
            .unwrap_or(Duration::from_secs(60));
        let mut command = Command::new(&spec.program).timeout(timeout);
        command.args.clone_from(&spec.args);
        command.env = spec.env.clone().into_iter().collect();
        command.isolation = Some(isolation);
        command
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Passes an environment variable.
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// How long one job may run before it is stopped and fails with code `timeout`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How long the program has between SIGTERM and SIGKILL when it is stopped.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// Runs one job: see the module docs.
    pub(crate) async fn run(&self, input: Value, ctx: JobContext) -> Result<Value, JobError> {
        let mut command = self.process();
        command
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // From here on, however the job ends, the program's group is stopped.
        let mut program = Program::spawn(&mut command, self.grace).map_err(|e| {
            failed(
                "spawn",
                format!("cannot start {}: {e}", self.program.display()),
            )
        })?;
        let pipes = program
            .child()
            .map(|c| (c.stdin.take(), c.stdout.take(), c.stderr.take()));
        let Some((Some(mut stdin), Some(stdout), Some(stderr))) = pipes else {
            return Err(failed("spawn", "the program's pipes are missing".into()));
        };
        let input = serde_json::to_vec(&input).unwrap_or_default();
        let feed = async move {
            // A program that does not read its input closes the pipe: not an error.
            let _ = stdin.write_all(&input).await;
            drop(stdin);
        };
        let budget = TextBudget::new(MAX_TEXT);
        let logs = read_stderr(BufReader::new(stderr), &ctx, &budget);
        let output = read_stdout(BufReader::new(stdout), &ctx, &budget);
        let run = async { tokio::join!(feed, logs, output, program.exited()) };
        let Ok(((), tail, output, status)) = tokio::time::timeout(self.timeout, run).await else {
            return Err(failed(
                "timeout",
                format!("the program ran longer than {:?}", self.timeout),
            ));
        };
        let status = status.map_err(|e| failed("spawn", format!("cannot wait: {e}")))?;
        if let Some(error) = launch_failure(status, &tail) {
            return Err(failed("spawn", error.to_owned()));
        }
        if !status.success() {
            let code = status
                .code()
                .map_or_else(|| "a signal".to_owned(), |c| c.to_string());
            let stderr: Vec<String> = tail.into_iter().collect();
            return Err(failed(
                "exit_status",
                format!("the program exited with {code}: {}", stderr.join("\n")),
            ));
        }
        output.into_value()
    }
}

impl Command {
    /// The process that runs the program: the program itself, isolated between fork
    /// and exec, or the launcher that isolates itself and then execs the program (see
    /// `launcher.rs`).
    fn process(&self) -> tokio::process::Command {
        #[cfg(unix)]
        if let Some(isolation) = &self.isolation {
            let setup = isolation.child_setup(self.timeout, self.grace);
            if let Some(launcher) = &isolation.launcher {
                let mut command = tokio::process::Command::new(&launcher.program);
                command.args(launcher.args(&setup, isolation.run_as, &self.program, &self.args));
                return command;
            }
            let mut command = tokio::process::Command::new(&self.program);
            command.args(&self.args);
            setup.install(command.as_std_mut(), isolation.run_as);
            return command;
        }
        let mut command = tokio::process::Command::new(&self.program);
        command.args(&self.args);
        command
    }
}

/// Why the launcher could not start the program, when that is how the process ended:
/// its status and its own line last on stderr.
fn launch_failure(status: std::process::ExitStatus, tail: &VecDeque<String>) -> Option<&str> {
    if status.code() != Some(launcher::FAILED_STATUS) {
        return None;
    }
    tail.back()?.strip_prefix(launcher::FAILED_PREFIX)
}

/// A job error with a code.
fn failed(code: &str, message: String) -> JobError {
    let mut error = JobError::new(message);
    error.code = Some(code.to_owned());
    error
}

/// What a program wrote on stdout, progress lines aside.
enum Output {
    Kept(Vec<u8>),
    /// More than [`MAX_OUTPUT`]: dropped.
    TooLarge,
}

impl Output {
    /// The job's output: `null` for nothing, else UTF-8 JSON.
    fn into_value(self) -> Result<Value, JobError> {
        let kept = match self {
            Output::Kept(kept) => kept,
            Output::TooLarge => {
                return Err(failed(
                    "bad_output",
                    format!("the program wrote more than {MAX_OUTPUT} bytes of output"),
                ))
            }
        };
        let text = std::str::from_utf8(&kept).map_err(|e| {
            failed(
                "bad_output",
                format!(
                    "the program's output is not UTF-8 (byte {} is not part of a UTF-8 \
                     character)",
                    e.valid_up_to()
                ),
            )
        })?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(text).map_err(|e| {
            failed(
                "bad_output",
                format!("the program's output is not JSON: {e}"),
            )
        })
    }
}

/// The bytes of log and progress text a job may still record.
struct TextBudget {
    left: AtomicUsize,
}

/// Whether a piece of text fits the budget.
#[derive(Debug, PartialEq, Eq)]
enum Fits {
    Yes,
    /// The first piece that did not: from now on nothing fits.
    JustSpent,
    No,
}

impl TextBudget {
    fn new(bytes: usize) -> Self {
        TextBudget {
            left: AtomicUsize::new(bytes),
        }
    }

    /// Takes `n` bytes if they fit; the first time they do not, the budget is spent for
    /// good (a later, shorter line does not slip in after lines were dropped).
    fn take(&self, n: usize) -> Fits {
        const SPENT: usize = usize::MAX;
        let mut fits = Fits::No;
        let _ = self
            .left
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                if left == SPENT {
                    fits = Fits::No;
                    None
                } else if n <= left {
                    fits = Fits::Yes;
                    Some(left - n)
                } else {
                    fits = Fits::JustSpent;
                    Some(SPENT)
                }
            });
        fits
    }
}

/// Reads one line of at most `cap` bytes (newline and a `\r` before it removed) into
/// `line`. `None` at the end; `Some(true)` when the line is longer: its rest is still
/// to be read (see [`skip_line`]), so a line that never ends is seen at once.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    cap: usize,
    line: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    line.clear();
    let limit = u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1);
    let n = (&mut *reader).take(limit).read_until(b'\n', line).await?;
    if n == 0 {
        return Ok(None);
    }
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        return Ok(Some(false));
    }
    if line.len() <= cap {
        // The last line, without a newline.
        return Ok(Some(false));
    }
    line.truncate(cap);
    Ok(Some(true))
}

/// Reads and drops the rest of a line, newline included, in the reader's own buffer.
async fn skip_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<()> {
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            return Ok(());
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Logs stderr, line by line, to its end (see the module docs); answers the last lines.
async fn read_stderr<R: AsyncBufRead + Unpin>(
    mut reader: R,
    ctx: &JobContext,
    budget: &TextBudget,
) -> VecDeque<String> {
    let mut tail = VecDeque::with_capacity(STDERR_TAIL);
    let mut line = Vec::new();
    // Stops only at the end of stderr (or a read error, which a pipe does not give):
    // a program whose stderr closed early would die of SIGPIPE on its next write.
    while let Ok(Some(was_cut)) = read_line(&mut reader, MAX_LINE, &mut line).await {
        let mut text = String::from_utf8_lossy(&line).into_owned();
        if was_cut {
            text.push_str(&format!(" [line cut: longer than {MAX_LINE} bytes]"));
        }
        match budget.take(text.len()) {
            Fits::Yes => ctx.log(text.clone()),
            Fits::JustSpent => ctx.log(format!(
                "this job's program wrote more than {MAX_TEXT} bytes of log and progress \
                 text; later stderr lines are dropped"
            )),
            Fits::No => {}
        }
        if tail.len() == STDERR_TAIL {
            tail.pop_front();
        }
        tail.push_back(cut(&text, TAIL_LINE).to_owned());
        if was_cut && skip_line(&mut reader).await.is_err() {
            break;
        }
    }
    tail
}

/// Reads stdout to its end: progress lines become progress events, the rest is the
/// output, kept up to [`MAX_OUTPUT`] (past it the rest is read and dropped: a program
/// blocked on a full pipe would otherwise end as a timeout, not as too much output).
async fn read_stdout<R: AsyncBufRead + Unpin>(
    mut reader: R,
    ctx: &JobContext,
    budget: &TextBudget,
) -> Output {
    let mut kept = Vec::new();
    let mut too_large = false;
    let mut at_line_start = true;
    let mut chunk = Vec::new();
    loop {
        chunk.clear();
        // A piece of a line at most MAX_LINE bytes long: a whole line, or the start of a
        // long one (whose rest comes in the next pieces).
        let limit = MAX_LINE as u64;
        match (&mut reader)
            .take(limit)
            .read_until(b'\n', &mut chunk)
            .await
        {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let ends_line = chunk.last() == Some(&b'\n');
        if at_line_start && chunk.starts_with(PROGRESS_PREFIX.as_bytes()) {
            if !ends_line && chunk.len() == MAX_LINE && skip_line(&mut reader).await.is_err() {
                break;
            }
            progress(&chunk[PROGRESS_PREFIX.len()..], ctx, budget);
            continue;
        }
        at_line_start = ends_line;
        if too_large {
            continue;
        }
        if kept.len() + chunk.len() > MAX_OUTPUT {
            too_large = true;
            kept = Vec::new();
        } else {
            kept.extend_from_slice(&chunk);
        }
    }
    if too_large {
        Output::TooLarge
    } else {
        Output::Kept(kept)
    }
}

/// Reports a progress line (`FRACTION MESSAGE`, after the prefix); a line whose fraction
/// is not a finite number is ignored. Its message counts against the text budget: past
/// it, the fraction is still reported, without the message.
fn progress(line: &[u8], ctx: &JobContext, budget: &TextBudget) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches(['\n', '\r']);
    let (fraction, message) = text.split_once(' ').unwrap_or((text, ""));
    let Some(fraction) = fraction
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
    else {
        return;
    };
    let message = message.trim();
    let message = match budget.take(message.len()) {
        Fits::Yes => message,
        Fits::JustSpent | Fits::No => "",
    };
    ctx.progress(fraction, message);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn lines(input: &[u8], cap: usize) -> Vec<(String, bool)> {
        let mut reader = BufReader::with_capacity(4, input);
        let mut line = Vec::new();
        let mut seen = Vec::new();
        while let Some(was_cut) = read_line(&mut reader, cap, &mut line).await.unwrap() {
            seen.push((String::from_utf8_lossy(&line).into_owned(), was_cut));
            if was_cut {
                skip_line(&mut reader).await.unwrap();
            }
        }
        seen
    }

    #[tokio::test]
    async fn lines_are_cut_at_the_cap_and_the_rest_dropped() {
        let seen = lines(b"short\r\nexactly8\n123456789abc\nlast", 8).await;
        let want = [
            ("short", false),
            ("exactly8", false),
            ("12345678", true),
            ("last", false),
        ];
        let want: Vec<(String, bool)> = want.iter().map(|(s, c)| (s.to_string(), *c)).collect();
        assert_eq!(seen, want);
        assert_eq!(lines(b"", 8).await, vec![]);
        assert_eq!(
            lines(b"\xff\xfe\n", 8).await,
            vec![("\u{FFFD}\u{FFFD}".to_string(), false)]
        );
    }

    #[test]
    fn the_budget_is_spent_once_and_for_good() {
        let budget = TextBudget::new(10);
        assert_eq!(budget.take(6), Fits::Yes);
        assert_eq!(budget.take(5), Fits::JustSpent);
        assert_eq!(budget.take(1), Fits::No, "nothing slips in after a drop");
        assert_eq!(budget.take(0), Fits::No);
    }

    #[test]
    fn output_must_be_utf8_json() {
        let code = |output: Output| output.into_value().map_err(|e| e.code.unwrap());
        assert_eq!(code(Output::Kept(b"  \n".to_vec())), Ok(Value::Null));
        assert_eq!(
            code(Output::Kept(b"{\"n\":\"caf\xc3\xa9\"}\n".to_vec())),
            Ok(serde_json::json!({"n": "café"}))
        );
        assert_eq!(
            code(Output::Kept(b"{\"n\":\"caf\xe9\"}".to_vec())),
            Err("bad_output".into())
        );
        assert_eq!(
            code(Output::Kept(b"nope".to_vec())),
            Err("bad_output".into())
        );
        assert_eq!(code(Output::TooLarge), Err("bad_output".into()));
    }

    #[test]
    fn tails_are_cut_at_character_boundaries() {
        assert_eq!(cut("héllo", 2), "h");
        assert_eq!(cut("héllo", 3), "hé");
        assert_eq!(cut("abc", 10), "abc");
    }
}
