//! Command services against hostile programs, over real sockets with real programs
//! (`sh`, `printf`, `yes`, `head`, `tr`): what a program writes is read as the protocol
//! says and no more (stdout UTF-8 JSON, stderr lines and bytes capped, progress apart
//! from output), its process group is stopped without ever signalling a stranger, only
//! the tenants allowed register and run programs, and the programs run with the limits
//! and the user they were given.
#![cfg(target_os = "linux")]

mod common;
#[path = "support/process.rs"]
mod process;

use std::time::{Duration, Instant};

use common::{sse, Client, TempDir};
use jobwire_core::{Job, JobStatus};
use jobwire_server::{spawn, Command, CommandLimits, ServerConfig, ServerHandle, ServiceSpec};
use process::alive;
use serde_json::{json, Value};

const TOKEN_A: &str = "token-a";
const TOKEN_B: &str = "token-b";

/// A server with two tenants, `team-a` and `team-b`.
fn two_tenants() -> ServerConfig {
    ServerConfig::new()
        .token(TOKEN_A, "team-a")
        .token(TOKEN_B, "team-b")
}

async fn start(config: ServerConfig) -> (ServerHandle, Client) {
    let server = spawn(config).await.unwrap();
    let client = Client::new(server.addr(), TOKEN_A);
    (server, client)
}

/// The body registering `/bin/sh -c script` as `name`.
fn sh_body(name: &str, script: &str, timeout_seconds: f64) -> Value {
    json!({
        "name": name,
        "command": {
            "program": "/bin/sh",
            "args": ["-c", script],
            "env": {"PATH": "/usr/bin:/bin"},
            "timeout_seconds": timeout_seconds,
        }
    })
}

/// Registers `/bin/sh -c script` as `name` and answers its id.
async fn register(client: &Client, name: &str, script: &str, timeout_seconds: f64) -> String {
    let created = client
        .post("/v1/services", &sh_body(name, script, timeout_seconds))
        .await;
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    created.json()["id"].as_str().unwrap().to_owned()
}

/// Submits `input` and waits for the job to end.
async fn run(client: &Client, service: &str, input: Value) -> Job {
    let submitted = client.submit(service, input, Some(60)).await;
    assert!(
        [200, 201, 202].contains(&submitted.status),
        "{}",
        String::from_utf8_lossy(&submitted.body)
    );
    let mut job = submitted.job();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !job.status.is_terminal() {
        assert!(Instant::now() < deadline, "job {} never ended", job.id);
        tokio::time::sleep(Duration::from_millis(20)).await;
        job = client.get(&format!("/v1/jobs/{}", job.id)).await.job();
    }
    job
}

/// The `log` lines of a finished job, in order.
async fn logs(client: &Client, job: &Job) -> Vec<String> {
    let token = client.token.as_deref().unwrap();
    let path = format!("/v1/jobs/{}/events", job.id);
    let mut stream = sse::open_on(client.addr, token, &path, None, None).await;
    assert_eq!(stream.status, 200);
    stream
        .rest()
        .await
        .iter()
        .filter(|e| e.event == "log")
        .map(|e| sse::data(e)["line"].as_str().unwrap().to_owned())
        .collect()
}

/// The error code of a failed job.
fn code(job: &Job) -> &str {
    assert_eq!(job.status, JobStatus::Failed, "{job:?}");
    job.error
        .as_ref()
        .and_then(|e| e.code.as_deref())
        .unwrap_or("")
}

#[tokio::test]
async fn stdout_that_is_not_utf8_json_fails_bad_output() {
    let (server, client) = start(two_tenants().allow_commands(true)).await;
    let latin1 = register(&client, "latin1", r#"printf '{"n":"caf\351"}'"#, 10.0).await;
    let job = run(&client, &latin1, Value::Null).await;
    assert_eq!(code(&job), "bad_output");
    let message = &job.error.as_ref().unwrap().message;
    assert!(message.contains("not UTF-8"), "{message}");

    let utf8 = register(&client, "utf8", r#"printf '{"n":"caf\303\251"}'"#, 10.0).await;
    let job = run(&client, &utf8, Value::Null).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(job.output, Some(json!({"n": "café"})));

    // 17 MB of output on one line: refused as too large, not cut.
    let huge = register(
        &client,
        "huge",
        "head -c 17000000 /dev/zero | tr '\\0' 1",
        30.0,
    )
    .await;
    let job = run(&client, &huge, Value::Null).await;
    assert_eq!(code(&job), "bad_output");
    assert!(job
        .error
        .unwrap()
        .message
        .contains("more than 16777216 bytes"));
    server.shutdown().await;
}

#[tokio::test]
async fn stderr_lines_are_cut_kept_when_not_utf8_and_read_to_the_end() {
    let (server, client) = start(two_tenants().allow_commands(true)).await;
    // A Latin-1 line (which ended the read before, and the program then died of SIGPIPE
    // on its next write), a 40,000-byte line, then lines after both.
    let script = r#"printf 'caf\351 au lait\n' >&2
        head -c 40000 /dev/zero | tr '\0' x >&2; echo >&2
        for i in 1 2 3; do echo "after $i" >&2; done
        echo '{"ok":true}'"#;
    let service = register(&client, "stderr", script, 20.0).await;
    let job = run(&client, &service, Value::Null).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(job.output, Some(json!({"ok": true})));
    let lines = logs(&client, &job).await;
    assert_eq!(
        lines.len(),
        5,
        "{:?}",
        lines.iter().map(|l| l.len()).collect::<Vec<_>>()
    );
    assert_eq!(lines[0], "caf\u{FFFD} au lait");
    let long = &lines[1];
    assert!(long.starts_with(&"x".repeat(16 * 1024)), "{}", long.len());
    assert!(!long.contains(&"x".repeat(16 * 1024 + 1)));
    assert!(
        long.ends_with("[line cut: longer than 16384 bytes]"),
        "{}",
        &long[16 * 1024..]
    );
    assert_eq!(lines[2..], ["after 1", "after 2", "after 3"]);
    server.shutdown().await;
}

#[tokio::test]
async fn stderr_past_one_mebibyte_is_dropped_and_the_program_still_finishes() {
    let (server, client) = start(two_tenants().allow_commands(true)).await;
    // 2,100 lines of 999 bytes: about 2 MiB.
    let script = r#"line=$(head -c 999 /dev/zero | tr '\0' y)
        yes "$line" | head -n 2100 >&2
        echo '{"done":1}'"#;
    let service = register(&client, "chatty", script, 20.0).await;
    let job = run(&client, &service, Value::Null).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(job.output, Some(json!({"done": 1})));
    let lines = logs(&client, &job).await;
    let (kept, notes): (Vec<&String>, Vec<&String>) = lines.iter().partition(|l| l.len() == 999);
    assert_eq!(kept.len(), 1024 * 1024 / 999, "whole lines up to 1 MiB");
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("later stderr lines are dropped"),
        "{}",
        notes[0]
    );
    assert_eq!(lines.last(), Some(notes[0]), "the note is the last line");
    let total: usize = kept.iter().map(|l| l.len()).sum();
    assert!(total <= 1024 * 1024, "{total}");
    server.shutdown().await;
}

#[tokio::test]
async fn progress_lines_do_not_count_against_the_output_cap() {
    let (server, client) = start(two_tenants().allow_commands(true)).await;
    // 4,600 progress lines of about 4 KB (18.5 MB, more than the 16 MiB output cap),
    // then the output.
    let script = r#"message=$(head -c 4000 /dev/zero | tr '\0' p)
        yes "@progress 0.5 $message" | head -n 4600
        echo '@progress 1 last'
        echo '{"ok":true}'"#;
    let service = register(&client, "progress", script, 60.0).await;
    let job = run(&client, &service, Value::Null).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(job.output, Some(json!({"ok": true})));
    let progress = job.progress.expect("progress reported");
    assert_eq!(progress.fraction, 1.0);
    // Past the 1 MiB of text, the fractions still come, without their messages.
    assert_eq!(progress.message, "");
    server.shutdown().await;
}

/// The pid a program logged (`echo $$ >&2`).
fn logged_pid(lines: &[String]) -> u32 {
    lines
        .iter()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {lines:?}"))
}

/// A server whose `name` service runs `sh -c script` with a `grace` between SIGTERM and
/// SIGKILL.
async fn embedded(name: &str, script: &str, grace: Duration) -> (ServerHandle, Client) {
    let command = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .env("PATH", "/usr/bin:/bin")
        .timeout(Duration::from_secs(20))
        .grace(grace);
    start(two_tenants().service(ServiceSpec::command(name, command))).await
}

#[tokio::test]
async fn what_a_program_leaves_running_is_stopped_after_a_clean_exit() {
    let grace = Duration::from_millis(500);
    // A child that ignores SIGTERM, with its output elsewhere, left behind by a program
    // that exits 0.
    let script = r#"(trap '' TERM; exec sleep 30) </dev/null >/dev/null 2>&1 &
        echo $! >&2"#;
    let (server, client) = embedded("leaves", script, grace).await;
    let job = run(&client, "leaves", Value::Null).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let left = logged_pid(&logs(&client, &job).await);
    let deadline = Instant::now() + grace + Duration::from_secs(3);
    while alive(left) {
        assert!(Instant::now() < deadline, "pid {left} outlived its job");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;
}

/// Makes the next process this one forks get `pid` (Linux, as root: `ns_last_pid`).
fn next_pid_is(pid: u32) -> bool {
    std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).is_ok()
}

/// Starts `sleep 30` as the leader of a new process group whose id is `pid`: what a
/// stranger reusing a finished program's pid looks like. `None` when the pid cannot be
/// chosen (not root).
fn stranger_with_pid(pid: u32) -> Option<std::process::Child> {
    use std::os::unix::process::CommandExt;
    for _ in 0..200 {
        if !next_pid_is(pid) {
            return None;
        }
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        if child.id() == pid {
            return Some(child);
        }
        // Another process took the pid first: try again.
        child.kill().unwrap();
        child.wait().unwrap();
    }
    panic!("could not start a process with pid {pid}");
}

/// The program's group was signalled 5 s after every job, even a clean exit, when its
/// id might already be another process group's. Here a stranger takes the program's pid
/// (as its own group) right after the job, and must survive the grace period.
#[tokio::test]
async fn a_stranger_that_reuses_the_pid_is_never_signalled() {
    let grace = Duration::from_secs(3);
    let (server, client) = embedded("pid", "echo $$ >&2", grace).await;
    let job = run(&client, "pid", Value::Null).await;
    let ended = Instant::now();
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let pid = logged_pid(&logs(&client, &job).await);
    // The program is reaped once nothing is left of its group.
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        assert!(ended.elapsed() < grace, "pid {pid} was not reaped");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let Some(mut stranger) = stranger_with_pid(pid) else {
        eprintln!("skipped: choosing a pid (ns_last_pid) needs root");
        server.shutdown().await;
        return;
    };
    assert!(
        ended.elapsed() < grace,
        "the stranger came too late to prove anything"
    );
    tokio::time::sleep(grace.saturating_sub(ended.elapsed()) + Duration::from_millis(700)).await;
    let status = stranger.try_wait().unwrap();
    let _ = stranger.kill();
    let _ = stranger.wait();
    assert_eq!(status, None, "the stranger with pid {pid} was killed");
    server.shutdown().await;
}

#[tokio::test]
async fn only_listed_tenants_register_and_run_programs() {
    let dir = TempDir::new("commands-tenants");
    // A server for every tenant: team-b registers a service.
    let (server, _) = start(two_tenants().data_dir(&dir.0).allow_commands(true)).await;
    let b = Client::new(server.addr(), TOKEN_B);
    let service_b = register(&b, "mine", "echo '\"b\"'", 10.0).await;
    server.shutdown().await;

    // The next server allows team-a only.
    let config = two_tenants()
        .data_dir(&dir.0)
        .allow_commands_for(["team-a"]);
    let (server, a) = start(config).await;
    let b = Client::new(server.addr(), TOKEN_B);
    let service_a = register(&a, "mine", "echo '\"a\"'", 10.0).await;
    assert_eq!(
        run(&a, &service_a, Value::Null).await.output,
        Some(json!("a"))
    );
    let refused = b
        .post("/v1/services", &sh_body("other", "true", 10.0))
        .await;
    assert_eq!(refused.status, 403);
    let detail = refused.problem().detail.unwrap();
    assert!(
        detail.contains("\"team-b\"") && detail.contains("--allow-commands-for"),
        "{detail}"
    );
    // Its service registered earlier runs here no more.
    let not_run = b.submit(&service_b, Value::Null, None).await;
    assert_eq!(not_run.status, 503);
    let detail = not_run.problem().detail.unwrap();
    assert!(detail.contains("team-b"), "{detail}");
    server.shutdown().await;
}

/// A `/proc/self/limits` row's soft and hard values.
fn limit_row<'a>(limits: &'a [String], name: &str) -> (&'a str, &'a str) {
    let row = limits
        .iter()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} in {limits:?}"));
    let mut values = row[name.len()..].split_whitespace();
    (values.next().unwrap(), values.next().unwrap())
}

/// The two ways a server starts a registered program: forking itself and isolating the
/// child before exec, or through the launcher (the binary, `jobwire-server launch`).
fn both_ways(config: ServerConfig) -> [(&'static str, ServerConfig); 2] {
    [
        ("forked", config.clone()),
        ("launched", config.command_launcher(binary::BIN)),
    ]
}

#[tokio::test]
async fn programs_start_with_their_limits_set_and_no_way_to_gain_privileges() {
    let limits = CommandLimits::default()
        .address_space(Some(3 << 30))
        .open_files(Some(77))
        .processes(Some(999))
        .file_size(Some(5 << 20));
    for (way, config) in both_ways(two_tenants().allow_commands(true).command_limits(limits)) {
        eprintln!("{way}");
        limits_are_set(config).await;
    }
}

async fn limits_are_set(config: ServerConfig) {
    let (server, client) = start(config).await;
    let script = "cat /proc/self/limits >&2; grep NoNewPrivs /proc/self/status >&2";
    let service = register(&client, "limits", script, 7.0).await;
    let job = run(&client, &service, Value::Null).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let lines = logs(&client, &job).await;
    assert_eq!(limit_row(&lines, "Max open files"), ("77", "77"));
    assert_eq!(
        limit_row(&lines, "Max address space"),
        ("3221225472", "3221225472")
    );
    assert_eq!(limit_row(&lines, "Max file size"), ("5242880", "5242880"));
    assert_eq!(limit_row(&lines, "Max processes"), ("999", "999"));
    assert_eq!(limit_row(&lines, "Max core file size"), ("0", "0"));
    let (cpu_soft, cpu_hard) = limit_row(&lines, "Max cpu time");
    assert_eq!(cpu_soft, "9", "the timeout (7 s) and a little");
    assert!(cpu_hard.parse::<u64>().unwrap() > 9, "{cpu_hard}");
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().eq(["NoNewPrivs:", "1"])),
        "{lines:?}"
    );

    // A program over its file size limit is stopped (SIGXFSZ), its job failed.
    let script =
        "f=/tmp/jobwire-fsize-$$; head -c 6000000 /dev/zero > $f; rc=$?; rm -f $f; exit $rc";
    let big = register(&client, "big", script, 10.0).await;
    let job = run(&client, &big, Value::Null).await;
    assert_eq!(code(&job), "exit_status", "{job:?}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_program_inherits_no_file_and_no_variable_of_the_server() {
    for (way, config) in both_ways(two_tenants().allow_commands(true)) {
        eprintln!("{way}");
        // A data directory: the server holds its database open too.
        let dir = TempDir::new(&format!("commands-fds-{way}"));
        nothing_is_inherited(config.data_dir(&dir.0)).await;
    }
}

async fn nothing_is_inherited(config: ServerConfig) {
    let (server, client) = start(config).await;
    // The server holds its database, its listening socket and client connections open;
    // the program sees only its three pipes (and the directory `ls` reads).
    let service = register(&client, "fds", "ls /proc/self/fd >&2; env >&2", 10.0).await;
    let job = run(&client, &service, Value::Null).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let lines = logs(&client, &job).await;
    let fds: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| l.parse::<u32>().is_ok())
        .collect();
    assert_eq!(fds, ["0", "1", "2", "3"], "{lines:?}");
    let vars: Vec<&str> = lines
        .iter()
        .map(String::as_str)
        .filter(|l| l.contains('='))
        .collect();
    assert!(
        vars.iter()
            .all(|v| v.starts_with("PATH=") || v.starts_with("PWD=")),
        "{vars:?}"
    );
    server.shutdown().await;
}

/// A program that cannot start fails its job with code `spawn` and the reason, either
/// way; a program's own exit status 127 (a shell's "not found") stays `exit_status`.
#[tokio::test]
async fn a_program_that_cannot_start_fails_spawn_either_way() {
    for (way, config) in both_ways(two_tenants().allow_commands(true)) {
        let (server, client) = start(config).await;
        // A program that is there when registered and gone when its job runs.
        let dir = TempDir::new(&format!("commands-gone-{way}"));
        let program = dir.0.join("gone.sh");
        std::fs::create_dir_all(&dir.0).unwrap();
        std::fs::write(&program, "#!/bin/sh\necho 1\n").unwrap();
        std::fs::set_permissions(
            &program,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let body = json!({
            "name": "gone",
            "command": {"program": program, "args": ["x"]},
        });
        let created = client.post("/v1/services", &body).await;
        assert_eq!(created.status, 201, "{way}");
        let service = created.json()["id"].as_str().unwrap().to_owned();
        std::fs::remove_file(&program).unwrap();
        let job = run(&client, &service, Value::Null).await;
        assert_eq!(code(&job), "spawn", "{way}: {job:?}");
        let message = &job.error.as_ref().unwrap().message;
        assert!(
            message.contains("gone.sh") && message.contains("No such file"),
            "{way}: {message}"
        );
        let own_127 = register(&client, "own", "echo 'x: not found' >&2; exit 127", 5.0).await;
        let job = run(&client, &own_127, Value::Null).await;
        assert_eq!(code(&job), "exit_status", "{way}: {job:?}");
        server.shutdown().await;
    }
}

/// The server binary as a child process, with its output kept.
mod binary {
    use std::io::{BufRead, BufReader};
    use std::net::SocketAddr;
    use std::os::unix::process::CommandExt;
    use std::path::Path;
    use std::process::{Child, Command, Stdio};

    pub const BIN: &str = env!("CARGO_BIN_EXE_jobwire-server");

    /// Whether this test runs as root.
    pub fn root() -> bool {
        // SAFETY: a plain getter.
        unsafe { libc::geteuid() == 0 }
    }

    /// `nobody`'s uid and gid: the user a root test runs a server as.
    pub const NOBODY: u32 = 65534;

    pub struct Server {
        pub child: Child,
        pub addr: SocketAddr,
    }

    impl Server {
        /// Starts the binary with `args` and `env` (as `nobody` when `as_nobody`), and reads
        /// where it listens.
        pub fn start(args: &[&str], env: &[(&str, &str)], as_nobody: bool) -> Server {
            let mut command = Command::new(BIN);
            command
                .args(["--addr", "127.0.0.1:0", "--no-ui"])
                .args(args)
                .envs(env.iter().copied())
                .env("JOBWIRE_LOG", "warn")
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit());
            if as_nobody {
                command.uid(NOBODY).gid(NOBODY);
            }
            let mut child = command.spawn().expect("the server binary starts");
            let stdout = child.stdout.take().unwrap();
            let mut lines = BufReader::new(stdout).lines();
            let addr = loop {
                let line = lines
                    .next()
                    .expect("the server says where it listens")
                    .unwrap();
                if let Some(url) = line.split("listening on http://").nth(1) {
                    break url.trim().parse().unwrap();
                }
            };
            std::thread::spawn(move || for _ in lines {});
            Server { child, addr }
        }
    }

    impl Drop for Server {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    /// Writes `text` to `path`, mode 0600, owned by `uid` when given.
    pub fn private_file(path: &Path, text: &str, uid: Option<u32>) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
        if let Some(uid) = uid {
            std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
        }
    }

    /// A directory anyone may enter (0755), owned by `uid` when given (a server running
    /// as `nobody` creates its data directory in it).
    pub fn open_dir(path: &Path, uid: Option<u32>) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(path).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
        if let Some(uid) = uid {
            std::os::unix::fs::chown(path, Some(uid), Some(uid)).unwrap();
        }
    }
}

/// With `--allow-commands` and no `--command-user`, the programs share the server's user.
/// The binary makes itself non-dumpable, so even then a program cannot read the server's
/// environment (where JOBWIRE_TOKENS lives) or open files; with `--token-file` its command
/// line shows no token. (A root test runs the server as `nobody`: root could read any
/// process's files anyway.)
#[tokio::test]
async fn the_binary_keeps_its_environment_and_files_from_programs_of_its_own_user() {
    let dir = TempDir::new("commands-secrets");
    let as_nobody = binary::root();
    let owner = as_nobody.then_some(binary::NOBODY);
    binary::open_dir(&dir.0, owner);
    let token_file = dir.0.join("tokens");
    binary::private_file(&token_file, "file-s3cret=team-a\n", owner);
    let data = dir.0.join("data");
    let server = binary::Server::start(
        &[
            "--allow-commands",
            "--token-file",
            token_file.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[("JOBWIRE_TOKENS", "env-s3cret=team-b")],
        as_nobody,
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&data).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o700,
        "the data directory is the server's alone"
    );

    let client = Client::new(server.addr, "file-s3cret");
    // $PPID is the server: the program is its child.
    for (name, script) in [
        ("environ", "cat /proc/$PPID/environ"),
        ("fds", "ls /proc/$PPID/fd"),
        ("mem", "head -c 16 /proc/$PPID/mem"),
    ] {
        let service = register(&client, name, script, 10.0).await;
        let job = run(&client, &service, Value::Null).await;
        assert_eq!(code(&job), "exit_status", "{name}: {job:?}");
        let message = &job.error.as_ref().unwrap().message;
        assert!(message.contains("Permission denied"), "{name}: {message}");
        assert!(!message.contains("s3cret"), "{name}: {message}");
    }
    // The command line can be read by anyone (ps does), but holds no token.
    let service = register(
        &client,
        "cmdline",
        "tr '\\0' ' ' < /proc/$PPID/cmdline >&2",
        10.0,
    )
    .await;
    let job = run(&client, &service, Value::Null).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    let cmdline = logs(&client, &job).await.join("\n");
    assert!(cmdline.contains("--token-file"), "{cmdline}");
    assert!(!cmdline.contains("s3cret"), "{cmdline}");
}

/// `--command-user` is the real boundary: programs run as another user, who cannot read
/// the server's database, token file or process. Needs root; without it, the flag must
/// refuse to start with a clear error, which is checked instead.
#[tokio::test]
async fn a_command_user_keeps_programs_from_the_servers_files() {
    if !binary::root() {
        let refused = std::process::Command::new(binary::BIN)
            .args(["--memory", "--allow-commands", "--command-user", "root"])
            .output()
            .unwrap();
        assert!(!refused.status.success());
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(said.contains("needs the server to run as root"), "{said}");
        eprintln!("the rest needs root: skipped");
        return;
    }
    let dir = TempDir::new("commands-user");
    binary::open_dir(&dir.0, None);
    let token_file = dir.0.join("tokens");
    binary::private_file(&token_file, "file-s3cret=team-a\n", None);
    let data = dir.0.join("data");
    let server = binary::Server::start(
        &[
            "--allow-commands",
            "--command-user",
            "nobody",
            "--token-file",
            token_file.to_str().unwrap(),
            "--data-dir",
            data.to_str().unwrap(),
        ],
        &[("JOBWIRE_TOKENS", "env-s3cret=team-b")],
        false,
    );
    let client = Client::new(server.addr, "file-s3cret");
    let service = register(&client, "who", "id -u >&2; id -G >&2", 10.0).await;
    let job = run(&client, &service, Value::Null).await;
    assert_eq!(job.status, JobStatus::Succeeded, "{job:?}");
    assert_eq!(
        logs(&client, &job).await,
        ["65534", "65534"],
        "no supplementary group"
    );
    let db = data.join("jobwire.db");
    for (name, script) in [
        ("db", format!("cat {}", db.display())),
        ("tokens", format!("cat {}", token_file.display())),
        ("environ", "cat /proc/$PPID/environ".to_owned()),
        ("fds", "ls /proc/$PPID/fd".to_owned()),
    ] {
        let service = register(&client, name, &script, 10.0).await;
        let job = run(&client, &service, Value::Null).await;
        assert_eq!(code(&job), "exit_status", "{name}: {job:?}");
        let message = &job.error.as_ref().unwrap().message;
        assert!(message.contains("Permission denied"), "{name}: {message}");
        assert!(!message.contains("s3cret"), "{name}: {message}");
    }
    drop(server);

    // A server that cannot apply its command user refuses to start, saying why.
    let refused = std::process::Command::new(binary::BIN)
        .args(["--memory", "--allow-commands", "--command-user", "root"])
        .uid(binary::NOBODY)
        .gid(binary::NOBODY)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("needs the server to run as root"), "{said}");
    let unknown = std::process::Command::new(binary::BIN)
        .args([
            "--memory",
            "--allow-commands",
            "--command-user",
            "no-such-user-here",
        ])
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    let said = String::from_utf8_lossy(&unknown.stderr);
    assert!(said.contains("no user \"no-such-user-here\""), "{said}");
}

use std::os::unix::process::CommandExt as _;

/// The peak memory of a process (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    let kib: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// `yes | tr -d '\n' >&2` is one endless stderr line. It used to be read whole, growing
/// the server by hundreds of MB a second; now the first 16 KiB are logged at once and the
/// rest is read and dropped until the timeout stops the program.
#[tokio::test]
async fn an_endless_stderr_line_does_not_grow_the_server() {
    let server = binary::Server::start(
        &["--memory", "--allow-commands", "--token", TOKEN_A],
        &[],
        false,
    );
    let client = Client::new(server.addr, TOKEN_A);
    let before = peak_rss(server.child.id());
    let service = register(&client, "endless", "yes | tr -d '\\n' >&2", 3.0).await;
    let job = run(&client, &service, Value::Null).await;
    assert_eq!(code(&job), "timeout", "{job:?}");
    let lines = logs(&client, &job).await;
    assert_eq!(
        lines.len(),
        1,
        "{:?}",
        lines.iter().map(|l| l.len()).collect::<Vec<_>>()
    );
    assert!(lines[0].starts_with("y"), "{}", &lines[0][..20]);
    assert!(lines[0].ends_with("[line cut: longer than 16384 bytes]"));
    let after = peak_rss(server.child.id());
    println!(
        "server peak RSS: {} MB before, {} MB after",
        before >> 20,
        after >> 20
    );
    assert!(
        after < before + (64 << 20),
        "the server grew from {before} to {after} bytes"
    );
}
