//! [`Command`]: a program run as a service's job.
//!
//! The protocol between the server and the program:
//!
//! - **stdin**: the job's input as JSON, then end of file;
//! - **stdout**: the job's output as JSON (the whole of stdout but progress lines), and
//!   progress lines: `@progress FRACTION MESSAGE` (FRACTION from 0 to 1, MESSAGE
//!   optional), each one a `progress` event;
//! - **stderr**: every line a `log` event;
//! - **exit status**: 0 and JSON on stdout is success (empty stdout is `null`); another
//!   status fails the job with code `exit_status` and the last lines of stderr; stdout
//!   that is not JSON fails it with code `bad_output`;
//! - **time**: past the per-job timeout the program is stopped and the job fails with code
//!   `timeout`.
//!
//! The program runs in a process group of its own. When the job ends — the program
//! exited, timed out, or the job was cancelled — the group gets SIGTERM, and SIGKILL after
//! the grace period if anything in it is still running, so no child it left behind
//! outlives the job.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use jobwire_core::JobError;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::JobContext;

/// The prefix of a progress line on a program's stdout.
pub const PROGRESS_PREFIX: &str = "@progress ";
/// Lines of stderr quoted when a program fails.
const STDERR_TAIL: usize = 20;
/// Most stdout a program may write (its output): 16 MiB.
const MAX_OUTPUT: usize = 16 * 1024 * 1024;

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
#[derive(Debug, Clone)]
pub struct Command {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    timeout: Duration,
    grace: Duration,
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
        }
    }

    /// The program of a command service's spec (its timeout, or the 60-second
    /// default), with the default grace.
    pub(crate) fn from_spec(spec: &jobwire_core::CommandSpec) -> Self {
        let timeout = spec
            .timeout_seconds
            .and_then(|t| Duration::try_from_secs_f64(t).ok())
            .unwrap_or(Duration::from_secs(60));
        let mut command = Command::new(&spec.program).timeout(timeout);
        command.args.clone_from(&spec.args);
        command.env = spec.env.clone().into_iter().collect();
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
        let failed = |code: &str, message: String| {
            let mut error = JobError::new(message);
            error.code = Some(code.to_owned());
            error
        };
        let mut command = tokio::process::Command::new(&self.program);
        command
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command.spawn().map_err(|e| {
            failed(
                "spawn",
                format!("cannot start {}: {e}", self.program.display()),
            )
        })?;
        // From here on, however the job ends, the program's group is stopped.
        let _group = Group {
            id: child.id(),
            grace: self.grace,
        };
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(failed("spawn", "the program's pipes are missing".into()));
        };
        let input = serde_json::to_vec(&input).unwrap_or_default();
        let feed = async move {
            // A program that does not read its input closes the pipe: not an error.
            let _ = stdin.write_all(&input).await;
            drop(stdin);
        };
        let log_ctx = ctx.clone();
        let logs = async move {
            let mut tail = VecDeque::with_capacity(STDERR_TAIL);
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                log_ctx.log(line.clone());
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
            tail
        };
        let output = async move {
            let mut kept = Vec::new();
            let mut lines = BufReader::new(stdout.take(MAX_OUTPUT as u64 + 1)).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                match line.strip_prefix(PROGRESS_PREFIX) {
                    Some(progress) => {
                        let (fraction, message) =
                            progress.split_once(' ').unwrap_or((progress, ""));
                        if let Ok(fraction) = fraction.trim().parse::<f64>() {
                            ctx.progress(fraction, message.trim());
                        }
                    }
                    None => {
                        kept.extend_from_slice(line.as_bytes());
                        kept.push(b'\n');
                    }
                }
            }
            // Past the limit, the rest is read and dropped: a program blocked on a full
            // pipe would otherwise end as a timeout, not as too much output.
            let mut rest = lines.into_inner().into_inner().into_inner();
            let _ = tokio::io::copy(&mut rest, &mut tokio::io::sink()).await;
            kept
        };
        let run = async { tokio::join!(feed, logs, output, child.wait()) };
        let Ok(((), tail, kept, status)) = tokio::time::timeout(self.timeout, run).await else {
            return Err(failed(
                "timeout",
                format!("the program ran longer than {:?}", self.timeout),
            ));
        };
        let status = status.map_err(|e| failed("spawn", format!("cannot wait: {e}")))?;
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
        if kept.len() > MAX_OUTPUT {
            return Err(failed(
                "bad_output",
                format!("the program wrote more than {MAX_OUTPUT} bytes of output"),
            ));
        }
        if kept.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&kept).map_err(|e| {
            failed(
                "bad_output",
                format!("the program's output is not JSON: {e}"),
            )
        })
    }
}

/// A program's process group, stopped when dropped: SIGTERM now, SIGKILL after the grace
/// period (signals to a group that is gone do nothing).
struct Group {
    id: Option<u32>,
    grace: Duration,
}

impl Drop for Group {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pgid) = self.id.and_then(|id| i32::try_from(id).ok()) {
            // SAFETY: kill(2) takes plain integers; a negative pid names the group.
            unsafe {
                libc::kill(-pgid, libc::SIGTERM);
            }
            let grace = self.grace;
            let kill = move || {
                // SAFETY: as above.
                unsafe {
                    libc::kill(-pgid, libc::SIGKILL);
                }
            };
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    runtime.spawn(async move {
                        tokio::time::sleep(grace).await;
                        kill();
                    });
                }
                Err(_) => kill(),
            }
        }
    }
}
