//! The `jobwire` binary in a pseudo-terminal, as a user at a terminal sees it: the
//! progress bar is drawn, and Ctrl-C asks what to do with the job.

mod common;

use std::process::Command;

use common::{Env, JOBWIRE, WATCHDOG};
use expectrl::{ControlCode, Regex, Session, WaitStatus};

/// The binary with `args` in a pseudo-terminal (stdin, stdout and stderr), pointed at
/// the server of `env`.
fn in_terminal(env: &Env, args: &[&str]) -> Session {
    let mut command = Command::new(JOBWIRE);
    command
        .args(args)
        .env("JOBWIRE_URL", env.server.url())
        .env("JOBWIRE_TOKEN", env.server.token())
        .env("TERM", "xterm");
    let mut session = Session::spawn(command).expect("the binary starts in a pty");
    session.set_expect_timeout(Some(WATCHDOG));
    session
}

/// Waits for the process to end and returns its exit code.
fn exit_code(session: &Session) -> i32 {
    match session.get_process().wait().expect("the binary ends") {
        WaitStatus::Exited(_, code) => code,
        other => panic!("the binary did not exit normally: {other:?}"),
    }
}

#[test]
fn run_draws_a_progress_bar_then_prints_the_output() {
    let env = Env::new();
    let mut session = in_terminal(&env, &["run", "steps", r#"{"steps":20,"interval_ms":50}"#]);
    // The bar, part way: a percentage and the step the job reported.
    session
        .expect(Regex(r"[1-9][0-9]?% step [0-9]+ of 20"))
        .expect("the bar is drawn part way");
    // Log lines are printed above it.
    session
        .expect("finished step 20 of 20")
        .expect("the last log line");
    // Then the output, pretty-printed.
    session.expect("\"steps\": 20").expect("the output");
    session.expect(expectrl::Eof).expect("the end of output");
    assert_eq!(exit_code(&session), 0);
}

#[test]
fn ctrl_c_at_a_terminal_asks_and_cancels_on_yes() {
    let env = Env::new();
    let mut session = in_terminal(
        &env,
        &["run", "steps", r#"{"steps":1000,"interval_ms":20}"#],
    );
    session
        .expect(Regex(r"step [0-9]+ of 1000"))
        .expect("the job runs");
    session.send(ControlCode::EndOfText).expect("Ctrl-C sent");
    session
        .expect("cancel 1 submitted job? [y/N]")
        .expect("the question");
    session.send_line("y").expect("the answer");
    let said = session
        .expect(Regex(r"job_[0-9a-z]+: cancelled"))
        .expect("the cancel is told");
    let said = String::from_utf8_lossy(said.as_bytes()).into_owned();
    session.expect(expectrl::Eof).expect("the end of output");
    assert_eq!(exit_code(&session), 130);
    let id = common::job_id_in(&said).expect("a job id");
    assert_eq!(env.job(&id)["status"], "cancelled");
}

#[test]
fn ctrl_c_at_a_terminal_leaves_the_job_running_on_no() {
    let env = Env::new();
    let mut session = in_terminal(
        &env,
        &["run", "steps", r#"{"steps":1000,"interval_ms":20}"#],
    );
    session
        .expect(Regex(r"step [0-9]+ of 1000"))
        .expect("the job runs");
    session.send(ControlCode::EndOfText).expect("Ctrl-C sent");
    session.expect("[y/N]").expect("the question");
    session.send_line("").expect("the answer: the default");
    let said = session
        .expect(Regex(r"job_[0-9a-z]+"))
        .expect("the job is named");
    let said = String::from_utf8_lossy(said.as_bytes()).into_owned();
    session.expect(expectrl::Eof).expect("the end of output");
    assert_eq!(exit_code(&session), 130);
    let id = common::job_id_in(&said).expect("a job id");
    assert_eq!(env.job(&id)["status"], "running");
    env.run(&["cancel", &id]).ok();
}

#[test]
fn batch_draws_finished_out_of_total_and_ctrl_c_cancels_on_yes() {
    let env = Env::new();
    let dir = std::env::temp_dir().join(format!("jobwire-cli-pty-batch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("inputs.jsonl");
    let quick = r#"{"duration_seconds":0}"#;
    let slow = r#"{"duration_seconds":60}"#;
    std::fs::write(&file, [quick, slow, slow, slow].join("\n")).unwrap();
    let path = file.display().to_string();
    let mut session = in_terminal(&env, &["batch", "sleep", &path, "--concurrency", "2"]);
    // The quick one has finished and two slow ones run: the bar says so.
    session
        .expect(Regex(r"1/4 2 running"))
        .expect("the bar: finished out of total, and the jobs running");
    session.send(ControlCode::EndOfText).expect("Ctrl-C sent");
    session
        .expect("cancel 2 submitted jobs? [y/N]")
        .expect("the question");
    session.send_line("yes").expect("the answer");
    session
        .expect("cancelled 2 jobs")
        .expect("the cancels are told");
    session.expect(expectrl::Eof).expect("the end of output");
    assert_eq!(exit_code(&session), 130);
    let jobs = env.run(&["jobs", "-o", "json"]).ok().json();
    let mut statuses: Vec<&str> = jobs
        .as_array()
        .expect("an array")
        .iter()
        .map(|job| job["status"].as_str().unwrap_or_default())
        .collect();
    statuses.sort_unstable();
    // The fourth input was never submitted.
    assert_eq!(statuses, ["cancelled", "cancelled", "succeeded"]);
    std::fs::remove_dir_all(&dir).unwrap();
}
