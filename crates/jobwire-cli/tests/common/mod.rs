//! Running the built `jobwire` binary against a reference server spawned in process.

#![allow(dead_code)] // each test file uses its own part

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use jobwire_server::{spawn_blocking_server, BlockingServerHandle, ServerConfig};
use serde_json::Value;

/// How long one run of the binary may take before the test fails (a hang must fail,
/// not stall the suite).
pub const WATCHDOG: Duration = Duration::from_secs(20);

/// The path of the binary under test.
pub const JOBWIRE: &str = env!("CARGO_BIN_EXE_jobwire");

/// A server on 127.0.0.1:0 with an in-memory store, and the binary pointed at it.
pub struct Env {
    pub server: BlockingServerHandle,
}

/// What a run of the binary did.
#[derive(Debug)]
pub struct Outcome {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Outcome {
    /// Asserts the exit code, showing everything the run printed when it is not.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, Some(code), "exit code; the run was {self:#?}");
        self
    }

    /// Asserts success.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        self.expect_code(0)
    }

    /// Stdout as one JSON document.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }

    /// Stdout as JSON Lines.
    #[track_caller]
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|line| {
                serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("line {line:?} is not JSON ({e}): {self:#?}"))
            })
            .collect()
    }
}

impl Env {
    pub fn new() -> Env {
        Env::with(ServerConfig::new())
    }

    /// A server of `config`.
    pub fn with(config: ServerConfig) -> Env {
        Env {
            server: spawn_blocking_server(config).expect("the server starts"),
        }
    }

    /// How many requests the server has been asked so far.
    pub fn requests(&self) -> u64 {
        self.server.requests()
    }

    /// The binary with `args`, the server's URL and token in its environment, and
    /// nothing on stdin.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(JOBWIRE);
        command
            .args(args)
            .env("JOBWIRE_URL", self.server.url())
            .env("JOBWIRE_TOKEN", self.server.token())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Runs the binary to its end.
    pub fn run(&self, args: &[&str]) -> Outcome {
        finish(self.command(args).spawn().expect("the binary starts"))
    }

    /// Runs the binary with `input` on stdin.
    pub fn run_with_stdin(&self, args: &[&str], input: &str) -> Outcome {
        let mut command = self.command(args);
        command.stdin(Stdio::piped());
        let mut child = command.spawn().expect("the binary starts");
        let mut stdin = child.stdin.take().expect("a stdin pipe");
        stdin.write_all(input.as_bytes()).expect("stdin written");
        drop(stdin);
        finish(child)
    }

    /// Submits a job with the binary and returns its id.
    pub fn submit(&self, service: &str, input: &str) -> String {
        let out = self.run(&["submit", service, input]);
        out.ok();
        out.stdout.trim().to_owned()
    }

    /// A job as the binary shows it with `-o json`.
    pub fn job(&self, id: &str) -> Value {
        self.run(&["job", id, "-o", "json"]).ok().json()
    }
}

/// Waits for a child to end, within the watchdog, and collects its output.
pub fn finish(child: Child) -> Outcome {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(output) => {
            let output = output.expect("the binary ran");
            Outcome {
                code: output.status.code(),
                stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            }
        }
        Err(_) => {
            signal(pid, libc::SIGKILL);
            panic!("jobwire (pid {pid}) did not end within {WATCHDOG:?}");
        }
    }
}

/// Sends a signal to a process this test started.
pub fn signal(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("a pid fits");
    // SAFETY: kill(2) with a pid of a child this test spawned has no memory effects.
    let done = unsafe { libc::kill(pid, signal) };
    assert_eq!(done, 0, "kill({pid}, {signal})");
}

/// Reads lines from `reader` on a thread of its own, passing each on, so a test can wait
/// for a given line without blocking past the watchdog.
pub fn lines(reader: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The first line from `lines` that satisfies `wanted`, within the watchdog; the lines
/// before it are returned too, for the failure message.
#[track_caller]
pub fn wait_for_line(lines: &mpsc::Receiver<String>, wanted: impl Fn(&str) -> bool) -> String {
    let mut seen = Vec::new();
    let deadline = std::time::Instant::now() + WATCHDOG;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if wanted(&line) => return line,
            Ok(line) => seen.push(line),
            Err(e) => panic!("no such line ({e}); saw {seen:#?}"),
        }
    }
}

/// A job id (`job_…`) in a text.
pub fn job_id_in(text: &str) -> Option<String> {
    let start = text.find("job_")?;
    let id: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    Some(id)
}
