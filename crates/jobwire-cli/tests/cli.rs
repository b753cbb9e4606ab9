//! The `jobwire` binary as a user runs it: against a reference server spawned in
//! process, with stdout, stderr and exit codes checked. Stdin and stderr are not
//! terminals here, so no progress bar may be drawn (`tests/terminal.rs` has one).

mod common;

use std::process::Stdio;

use common::{job_id_in, lines, signal, wait_for_line, Env};
use serde_json::json;

/// What indicatif draws: a bar's brackets and the escape sequences that redraw it.
fn assert_no_bar(stderr: &str) {
    assert!(!stderr.contains('\u{1b}'), "escape sequences in {stderr:?}");
    assert!(!stderr.contains("=>"), "a bar in {stderr:?}");
    assert!(!stderr.contains('%'), "a percentage in {stderr:?}");
}

#[test]
fn services_as_a_table_and_as_json() {
    let env = Env::new();
    let table = env.run(&["services"]);
    table.ok();
    let mut lines = table.stdout.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header, ["ID", "NAME", "KIND", "DESCRIPTION"]);
    let names: Vec<&str> = lines
        .map(|line| line.split_whitespace().nth(1).unwrap_or_default())
        .collect();
    assert_eq!(names, ["echo", "sleep", "fail", "steps", "digest"]);

    let json = env.run(&["services", "-o", "json"]).ok().json();
    let services = json.as_array().expect("an array");
    assert_eq!(services.len(), 5);
    assert_eq!(services[0]["name"], "echo");
    assert_eq!(services[0]["kind"], "builtin");
    assert!(services[1]["input_schema"].is_object());
}

#[test]
fn service_shows_its_input_schema() {
    let env = Env::new();
    let out = env.run(&["service", "sleep"]);
    out.ok();
    assert!(out.stdout.contains("name:        sleep"), "{out:#?}");
    assert!(out.stdout.contains("\"duration_seconds\": {"), "{out:#?}");
    let json = env
        .run(&["service", "sleep", "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        json["input_schema"]["required"],
        json!(["duration_seconds"])
    );
    env.run(&["service", "nope"]).expect_code(3);
}

#[test]
fn run_prints_the_output() {
    let env = Env::new();
    let table = env.run(&["run", "echo", r#"{"a":1}"#]);
    table.ok();
    assert_eq!(table.stdout, "{\n  \"a\": 1\n}\n");
    assert_no_bar(&table.stderr);
    let compact = env.run(&["run", "echo", r#"{"a": [1, 2]}"#, "-o", "json"]);
    assert_eq!(compact.ok().stdout, "{\"a\":[1,2]}\n");
}

#[test]
fn run_reads_input_from_a_file_and_from_stdin() {
    let env = Env::new();
    let dir = std::env::temp_dir().join(format!("jobwire-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("input.json");
    std::fs::write(&file, r#"{"from": "file"}"#).unwrap();
    let at_file = format!("@{}", file.display());
    let out = env.run(&["run", "echo", &at_file, "-o", "json"]);
    assert_eq!(out.ok().json(), json!({"from": "file"}));

    let out = env.run_with_stdin(
        &["run", "echo", "-", "-o", "json"],
        "[\"from\", \"stdin\"]\n",
    );
    assert_eq!(out.ok().json(), json!(["from", "stdin"]));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn run_steps_prints_its_log_lines_and_output_without_a_bar() {
    let env = Env::new();
    let out = env.run(&["run", "steps", r#"{"steps":3,"interval_ms":10}"#]);
    out.ok();
    assert_eq!(out.json()["steps"], 3);
    let logs: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        logs,
        [
            "finished step 1 of 3",
            "finished step 2 of 3",
            "finished step 3 of 3"
        ]
    );
    assert_no_bar(&out.stderr);
}

#[test]
fn a_failed_job_exits_4_with_its_error() {
    let env = Env::new();
    let out = env.run(&["run", "fail", r#"{"message":"boom"}"#]);
    out.expect_code(4);
    assert!(out.stdout.is_empty(), "{out:#?}");
    assert!(out.stderr.contains("boom"), "{out:#?}");
    assert!(out.stderr.contains("failed"), "{out:#?}");
}

#[test]
fn an_unknown_job_exits_3_with_the_problem() {
    let env = Env::new();
    let out = env.run(&["job", "job_nope"]);
    out.expect_code(3);
    assert!(out.stderr.contains("Not Found"), "{out:#?}");
    assert!(out.stderr.contains("job_nope"), "{out:#?}");
    assert!(out.stderr.contains("request_id: req_"), "{out:#?}");
}

#[test]
fn a_server_that_is_not_there_exits_5() {
    let env = Env::new();
    // A port that was just free: nothing listens on it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = env.run(&["services", "--url", &url]);
    out.expect_code(5);
    assert!(out.stderr.contains(&url), "{out:#?}");
    assert!(out.stderr.to_lowercase().contains("connect"), "{out:#?}");
}

#[test]
fn usage_errors_exit_2_and_send_nothing() {
    let env = Env::new();
    let out = env.run(&["run", "echo", "{not json"]);
    out.expect_code(2);
    assert!(out.stderr.contains("INPUT is not JSON"), "{out:#?}");
    let out = env.run(&["submit", "echo", "@/nonexistent/input.json"]);
    out.expect_code(2);
    assert!(out.stderr.contains("/nonexistent/input.json"), "{out:#?}");
    env.run(&["jobs", "--status", "done"]).expect_code(2);
    env.run(&["frobnicate"]).expect_code(2);
    env.run(&["services", "--url", "not-a-url"]).expect_code(2);
    let jobs = env.run(&["jobs", "-o", "json"]).ok().json();
    assert_eq!(jobs, json!([]), "nothing was submitted");
}

#[test]
fn other_api_errors_exit_6() {
    let env = Env::new();
    let out = env.run(&["run", "sleep", r#"{"duration_seconds":"soon"}"#]);
    out.expect_code(6);
    assert!(out.stderr.contains("/duration_seconds"), "{out:#?}");
    let out = env.run(&["services", "--token", "wrong"]);
    out.expect_code(6);
    assert!(out.stderr.contains("Unauthorized"), "{out:#?}");
}

#[test]
fn submit_then_job_then_cancel() {
    let env = Env::new();
    let out = env.run(&[
        "submit",
        "sleep",
        r#"{"duration_seconds":60}"#,
        "--label",
        "team=data",
    ]);
    let id = out.ok().stdout.trim().to_owned();
    assert!(id.starts_with("job_"), "{out:#?}");

    let shown = env.run(&["job", &id]);
    shown.ok();
    assert!(
        shown.stdout.contains(&format!("id:         {id}")),
        "{shown:#?}"
    );
    assert!(shown.stdout.contains("labels:     team=data"), "{shown:#?}");
    let job = env.job(&id);
    assert!(["queued", "running"].contains(&job["status"].as_str().unwrap_or_default()));

    let cancelled = env.run(&["cancel", &id]);
    assert_eq!(cancelled.ok().stdout, format!("{id}  cancelled\n"));
    assert_eq!(env.job(&id)["status"], "cancelled");

    // Not found among found ones: each is tried, and the exit says not found.
    let out = env.run(&["cancel", &id, "job_nope", "-o", "json"]);
    out.expect_code(3);
    let lines = out.json_lines();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["status"], "cancelled");
    assert!(out.stderr.contains("job_nope"), "{out:#?}");

    let submitted = env
        .run(&["submit", "echo", "[1]", "-o", "json"])
        .ok()
        .json();
    assert_eq!(submitted["service"], "echo");
    assert_eq!(submitted["input"], json!([1]));
}

#[test]
fn jobs_lists_the_newest_first_at_most_limit() {
    let env = Env::new();
    let ids: Vec<String> = (0..3).map(|i| env.submit("echo", &i.to_string())).collect();
    let listed = env.run(&["jobs", "--limit", "2", "-o", "json"]).ok().json();
    let listed: Vec<&str> = listed
        .as_array()
        .expect("an array")
        .iter()
        .map(|job| job["id"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str()]);

    let table = env.run(&["jobs", "--limit", "2"]);
    let rows: Vec<&str> = table.ok().stdout.lines().collect();
    assert_eq!(rows.len(), 3, "{table:#?}");
    assert!(rows[0].starts_with("ID "), "{table:#?}");
    assert!(rows[1].starts_with(&ids[2]), "{table:#?}");

    let by_service = env
        .run(&["jobs", "--service", "sleep", "-o", "json"])
        .ok()
        .json();
    assert_eq!(by_service, json!([]));
}

#[test]
fn events_prints_each_event_and_ends_after_done() {
    let env = Env::new();
    let id = env.submit("steps", r#"{"steps":2,"interval_ms":10}"#);
    let out = env.run(&["events", &id]);
    out.ok();
    let last = out.stdout.lines().last().unwrap_or_default();
    assert!(
        last.contains("done") && last.ends_with("succeeded"),
        "{out:#?}"
    );
    assert!(out.stdout.contains("progress"), "{out:#?}");
    assert!(
        out.stdout.contains("log       finished step 2 of 2"),
        "{out:#?}"
    );

    let events = env.run(&["events", &id, "-o", "json"]).ok().json_lines();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(kinds.first(), Some(&"status"));
    assert_eq!(kinds.last(), Some(&"done"));
    assert_eq!(kinds.iter().filter(|k| **k == "progress").count(), 2);
    let done = events.last().expect("a done event");
    assert_eq!(done["job"]["status"], "succeeded");
    assert_eq!(done["job_id"], id.as_str());
    let ids: Vec<u64> = events.iter().filter_map(|e| e["id"].as_u64()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    env.run(&["events", "job_nope"]).expect_code(3);
}

/// Ctrl-C (SIGINT) with `--cancel-on-interrupt`: the running job is cancelled, exit 130.
#[test]
fn an_interrupt_cancels_the_job_when_asked_to() {
    let env = Env::new();
    let mut child = env
        .command(&[
            "run",
            "steps",
            r#"{"steps":1000,"interval_ms":20}"#,
            "--cancel-on-interrupt",
        ])
        .spawn()
        .unwrap();
    let stderr = lines(child.stderr.take().unwrap());
    // A log line means the job runs and Ctrl-C is caught.
    wait_for_line(&stderr, |l| l.starts_with("finished step"));
    signal(child.id(), libc::SIGINT);
    let said = wait_for_line(&stderr, |l| l.contains(": cancelled"));
    let id = job_id_in(&said).expect("the job's id");
    let out = common::finish(child);
    out.expect_code(130);
    assert_eq!(env.job(&id)["status"], "cancelled");
}

/// Ctrl-C without a terminal and without `--cancel-on-interrupt`: the job keeps running
/// and its id is printed.
#[test]
fn an_interrupt_without_a_terminal_leaves_the_job_running() {
    let env = Env::new();
    let mut child = env
        .command(&["run", "steps", r#"{"steps":1000,"interval_ms":20}"#])
        .spawn()
        .unwrap();
    let stderr = lines(child.stderr.take().unwrap());
    wait_for_line(&stderr, |l| l.starts_with("finished step"));
    signal(child.id(), libc::SIGINT);
    wait_for_line(&stderr, |l| l.contains("left 1 job running"));
    let id = wait_for_line(&stderr, |l| l.starts_with("job_"));
    common::finish(child).expect_code(130);
    assert_eq!(env.job(&id)["status"], "running");
    env.run(&["cancel", &id]).ok();
}

#[test]
fn help_documents_the_exit_codes() {
    let env = Env::new();
    let out = env.run(&["--help"]);
    out.ok();
    for line in [
        "Exit codes:",
        "3    not found",
        "4    a job failed",
        "130  interrupted",
    ] {
        assert!(out.stdout.contains(line), "{line:?} in {out:#?}");
    }
}

#[test]
fn serve_runs_the_reference_server_with_its_flags() {
    let env = Env::new();
    let mut child = std::process::Command::new(common::JOBWIRE)
        .args(["serve", "--memory", "--addr", "127.0.0.1:0", "--token", "t"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = lines(child.stdout.take().unwrap());
    let listening = wait_for_line(&stdout, |l| l.contains("listening on "));
    let url = listening.rsplit(' ').next().unwrap_or_default().to_owned();
    let addr = url.trim_start_matches("http://");

    use std::io::{Read, Write};
    let mut socket = std::net::TcpStream::connect(addr).unwrap();
    socket
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""status":"ok""#), "{answer}");

    // The token given with --token is the one it accepts.
    let out = env.run(&["run", "echo", "7", "--url", &url, "--token", "t"]);
    assert_eq!(out.ok().stdout, "7\n");

    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn serve_passes_help_and_bad_flags_to_the_server() {
    let env = Env::new();
    let help = env.run(&["serve", "--help"]);
    help.ok();
    assert!(help.stdout.contains("--allow-commands"), "{help:#?}");
    assert!(help.stdout.contains("jobwire serve [OPTIONS]"), "{help:#?}");
    let bad = env.run(&["serve", "--bogus"]);
    bad.expect_code(2);
    assert!(bad.stderr.contains("--bogus"), "{bad:#?}");
}

/// A JSON Lines file of `lines` in a directory of its own.
struct InputFile {
    dir: std::path::PathBuf,
    path: String,
}

impl InputFile {
    fn new(name: &str, lines: &[&str]) -> InputFile {
        let dir = std::env::temp_dir().join(format!("jobwire-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("inputs.jsonl");
        std::fs::write(&path, lines.join("\n")).unwrap();
        let path = path.display().to_string();
        InputFile { dir, path }
    }
}

impl Drop for InputFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn batch_prints_results_in_input_order() {
    let env = Env::new();
    let lines: Vec<String> = (0..10).map(|i| format!(r#"{{"n": {i}}}"#)).collect();
    let mut lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    lines.insert(3, "");
    lines.insert(7, "   ");
    let file = InputFile::new("echo", &lines);
    let out = env.run(&["batch", "echo", &file.path, "--concurrency", "4"]);
    out.ok();
    assert_no_bar(&out.stderr);
    let results = out.json_lines();
    assert_eq!(results.len(), 10, "blank lines are skipped: {out:#?}");
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result["index"], i);
        assert_eq!(result["ok"], json!({ "n": i }));
    }
    assert_eq!(results[3]["line"], 5, "line numbers count the blank lines");

    // Jobs that end in the reverse order of their inputs still print in input order.
    let sleeps = [
        r#"{"duration_seconds":0.3}"#,
        r#"{"duration_seconds":0.2}"#,
        r#"{"duration_seconds":0.1}"#,
        r#"{"duration_seconds":0}"#,
    ];
    let file = InputFile::new("sleep", &sleeps);
    let results = env
        .run(&["batch", "sleep", &file.path, "--concurrency", "4"])
        .ok()
        .json_lines();
    let slept: Vec<f64> = results
        .iter()
        .map(|r| r["ok"]["slept"].as_f64().unwrap_or(-1.0))
        .collect();
    assert_eq!(slept, [0.3, 0.2, 0.1, 0.0]);
}

#[test]
fn a_batch_with_a_failing_item_exits_4_with_that_items_error() {
    let env = Env::new();
    let file = InputFile::new(
        "sleep-invalid",
        &[
            r#"{"duration_seconds":0}"#,
            r#"{"duration_seconds":"soon"}"#,
            r#"{"duration_seconds":0.01}"#,
        ],
    );
    let out = env.run(&["batch", "sleep", &file.path, "--concurrency", "2"]);
    out.expect_code(4);
    let results = out.json_lines();
    assert_eq!(results.len(), 3, "{out:#?}");
    assert_eq!(results[0]["ok"], json!({"slept": 0}));
    assert_eq!(results[1]["index"], 1);
    assert_eq!(results[1]["error"]["kind"], "validation");
    let message = results[1]["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("/duration_seconds"), "{message}");
    assert_eq!(results[2]["ok"], json!({"slept": 0.01}));
    assert!(
        out.stderr.contains("1 of 3 jobs failed (validation: 1)"),
        "{out:#?}"
    );

    let file = InputFile::new("fail", &[r#"{"message":"boom"}"#, r#"{"message":"bang"}"#]);
    let out = env.run(&["batch", "fail", &file.path, "--concurrency", "2"]);
    out.expect_code(4);
    let results = out.json_lines();
    assert_eq!(results[0]["error"]["kind"], "job_failed");
    let message = results[0]["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("boom"), "{message}");
    let id = results[1]["error"]["job_id"]
        .as_str()
        .expect("the failed job's id");
    assert_eq!(env.job(id)["error"]["message"], "bang");
}

#[test]
fn a_batch_line_that_is_not_json_is_a_usage_error_before_any_submit() {
    let env = Env::new();
    let file = InputFile::new("bad", &[r#"{"a":1}"#, "", "{oops", "3"]);
    let out = env.run(&["batch", "echo", &file.path]);
    out.expect_code(2);
    assert!(out.stderr.contains("line 3 is not JSON"), "{out:#?}");
    assert!(out.stdout.is_empty(), "{out:#?}");
    assert_eq!(env.run(&["jobs", "-o", "json"]).ok().json(), json!([]));
    env.run(&["batch", "echo", "/nonexistent/inputs.jsonl"])
        .expect_code(2);
    // An unknown service is not found, once the file is good.
    let good = InputFile::new("good", &["1"]);
    env.run(&["batch", "nope", &good.path]).expect_code(3);
}

#[test]
fn a_timeout_exits_5_and_names_the_job_left_running() {
    let env = Env::new();
    let out = env.run(&[
        "run",
        "sleep",
        r#"{"duration_seconds":30}"#,
        "--timeout",
        "0.3",
    ]);
    out.expect_code(5);
    assert!(out.stderr.contains("--timeout"), "{out:#?}");
    let id = job_id_in(&out.stderr).expect("the job is named");
    assert_eq!(env.job(&id)["status"], "running");
    env.run(&["cancel", &id]).ok();
}

#[test]
fn run_with_a_key_twice_follows_one_job_and_keeps_its_labels() {
    let env = Env::new();
    let args = [
        "run",
        "echo",
        r#"{"n": 7}"#,
        "--key",
        "nightly-7",
        "--label",
        "team=data",
        "-o",
        "json",
    ];
    assert_eq!(env.run(&args).ok().json(), json!({"n": 7}));
    assert_eq!(env.run(&args).ok().json(), json!({"n": 7}));
    let jobs = env.run(&["jobs", "-o", "json"]).ok().json();
    let jobs = jobs.as_array().expect("an array");
    assert_eq!(jobs.len(), 1, "one job for two runs with one key: {jobs:?}");
    assert_eq!(jobs[0]["labels"]["team"], "data");
    env.run(&["run", "echo", "1", "--label", "no-equals"])
        .expect_code(2);
}

#[test]
fn wait_waits_for_existing_jobs_and_says_how_each_ended() {
    let env = Env::new();
    let quick = env.submit("sleep", r#"{"duration_seconds": 0.2}"#);
    let failing = env.submit("fail", r#"{"message": "bang"}"#);
    let out = env.run(&["wait", &quick]);
    assert_eq!(out.ok().stdout, format!("{quick}  succeeded\n"));

    let out = env.run(&["wait", &quick, &failing, "-o", "json"]);
    out.expect_code(4);
    let ended = out.json_lines();
    assert_eq!(ended.len(), 2);
    assert_eq!(
        (&ended[0]["id"], &ended[0]["status"]),
        (&json!(quick), &json!("succeeded"))
    );
    assert_eq!(ended[1]["status"], "failed");
    assert!(out.stderr.contains("bang"), "{out:#?}");
    env.run(&["wait", "job_nope"]).expect_code(3);
}

#[test]
fn service_create_and_delete_register_and_retire_a_command_service() {
    let env = Env::with(jobwire_server::ServerConfig::new().allow_commands(true));
    let dir = std::env::temp_dir().join(format!("jobwire-cli-service-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("copy.json");
    let spec = json!({
        "name": "copy",
        "description": "Answers its input.",
        "input_schema": {"type": "object", "required": ["n"]},
        "command": {"program": "cat"}
    });
    std::fs::write(&file, spec.to_string()).unwrap();
    let path = file.to_string_lossy().into_owned();

    let created = env
        .run(&["service", "create", &path, "-o", "json"])
        .ok()
        .json();
    assert_eq!(created["name"], "copy");
    assert_eq!(created["kind"], "command");
    assert_eq!(
        env.run(&["run", "copy", r#"{"n": 1}"#, "-o", "json"])
            .ok()
            .json(),
        json!({"n": 1})
    );
    // A second registration of the name is a conflict (exit 6); stdin works too.
    env.run_with_stdin(&["service", "create", "-"], &spec.to_string())
        .expect_code(6);
    std::fs::write(&file, "{\"name\": 3}").unwrap();
    env.run(&["service", "create", &path]).expect_code(2);

    let out = env.run(&["service", "delete", "copy"]);
    assert_eq!(
        out.ok().stdout,
        format!("{}  deleted\n", created["id"].as_str().unwrap())
    );
    env.run(&["service", "copy"]).expect_code(3);
    env.run(&["service", "show", "sleep"]).ok();
    std::fs::remove_dir_all(&dir).unwrap();
}
