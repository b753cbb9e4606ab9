//! `cargo xtask fuzz --seconds N [--runs N] [TARGET]`: the fuzz targets of `fuzz/`
//! (cargo-fuzz on nightly Rust; `cargo install cargo-fuzz --locked` when it is
//! missing; CI does not run them), one after the other, each in one process (one core:
//! libFuzzer's `-jobs=1`), each for N seconds and/or N executions; all targets unless
//! one is named.
//!
//! For each target it
//! - writes the target's seeds (`jobwire_core::fuzzing::seeds`: boundary values blind
//!   mutation rarely writes) to `fuzz/target/seeds/<target>/`, and runs the seeds
//!   bigger than its longest input ([`max_len`]: lines near the 1 MiB limit) once, whole;
//! - fuzzes a working corpus `fuzz/target/corpus/<target>/` (kept between runs, so a
//!   campaign continues), reading the checked-in `fuzz/corpus/<target>/` and the seeds,
//!   with the dictionary `fuzz/dict/<target>.dict`, optimised with debug assertions (an
//!   overflow panics, as in a debug build), without a sanitizer (the code fuzzed is safe
//!   Rust; AddressSanitizer cut `sse` from 2,986 to 956 executions a second), a 10 s
//!   timeout per input (a hang is a crash);
//! - minimises the checked-in corpus with the new inputs (`-set_cover_merge=1`), so the
//!   corpus replay test (`tests/fuzz_corpus.rs`, in every `cargo test`) runs what the
//!   fuzzer reached from then on;
//! - and at the end prints a table: executions, executions a second, the corpus's size,
//!   crashes. A crash's input is in `fuzz/artifacts/<target>/`; once the bug is fixed,
//!   copy it into `fuzz/corpus/<target>/` under the name libFuzzer gave it (`crash-…`
//!   files are kept by every minimisation), so the replay test keeps it fixed.
//!
//! The logs of each run are in `fuzz/target/logs/`.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// The longest input the fuzzer writes (`-max_len`), and the longest kept in the
/// checked-in corpus: long enough to reach every limit of the targets, whose limits
/// can be small (an `sse` input may set a decoder's limit as low as 8 bytes), short
/// enough to run fast. Bigger seeds (a line near the 1 MiB limit) run once, whole,
/// before the fuzzing, and in every replay of the corpus.
const MAX_LEN: u64 = 16 * 1024;
/// The header targets' [`MAX_LEN`]: a `Retry-After` or `Prefer` past 1 KiB reaches no
/// code a shorter one does not, and long inputs only slow these fast targets down
/// (`prefer` ran at 7,500 executions a second with its inputs grown to 16 KiB).
const HEADER_MAX_LEN: u64 = 1024;

/// The longest input of `target`.
fn max_len(target: &str) -> u64 {
    match target {
        "retry_after" | "prefer" => HEADER_MAX_LEN,
        _ => MAX_LEN,
    }
}
/// Seconds one input may take before it counts as a hang.
const TIMEOUT_SECONDS: u32 = 10;

/// What one target's run came to.
struct Outcome {
    target: String,
    executions: u64,
    seconds: f64,
    per_second: u64,
    /// Files in the checked-in corpus before and after.
    corpus: (usize, usize),
    crashes: Vec<String>,
}

pub(crate) fn fuzz(args: &[String]) -> Result<(), String> {
    let mut seconds = None;
    let mut runs = None;
    let mut only = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut number = |name: &str| {
            args.next()
                .and_then(|n| n.parse::<u64>().ok())
                .ok_or(format!("{name} takes a number"))
        };
        match arg.as_str() {
            "--seconds" => seconds = Some(number("--seconds")?),
            "--runs" => runs = Some(number("--runs")?),
            name if !name.starts_with('-') && only.is_none() => only = Some(name.to_owned()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if seconds.is_none() && runs.is_none() {
        return Err("give --seconds N (per target), --runs N, or both".into());
    }
    let targets = targets()?;
    let chosen: Vec<String> = match only {
        Some(name) if targets.contains(&name) => vec![name],
        Some(name) => return Err(format!("no fuzz target {name}; there are {targets:?}")),
        None => targets,
    };
    tools()?;
    let mut outcomes = Vec::new();
    for target in &chosen {
        outcomes.push(run_target(target, seconds, runs)?);
    }
    print_table(&outcomes);
    let crashed: usize = outcomes.iter().map(|o| o.crashes.len()).sum();
    if crashed > 0 {
        return Err(format!("{crashed} crash(es); inputs under fuzz/artifacts/"));
    }
    Ok(())
}

/// Nightly Rust and cargo-fuzz: the nightly toolchain must be there (installing one is
/// the user's choice), cargo-fuzz is installed when missing.
fn tools() -> Result<(), String> {
    let works = |args: &[&str]| {
        Command::new("cargo")
            .args(args)
            .env_remove("RUSTUP_TOOLCHAIN")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !works(&["+nightly", "--version"]) {
        return Err("cargo-fuzz needs nightly Rust: `rustup toolchain install nightly`".into());
    }
    if !works(&["+nightly", "fuzz", "--version"]) {
        println!("$ cargo install cargo-fuzz --locked");
        let installed = Command::new("cargo")
            .args(["install", "cargo-fuzz", "--locked"])
            .status()
            .is_ok_and(|s| s.success());
        if !installed || !works(&["+nightly", "fuzz", "--version"]) {
            return Err("`cargo install cargo-fuzz --locked` failed".into());
        }
    }
    Ok(())
}

/// The targets: `fuzz/fuzz_targets/<name>.rs`.
fn targets() -> Result<Vec<String>, String> {
    let mut names: Vec<String> = fs::read_dir("fuzz/fuzz_targets")
        .map_err(|e| format!("fuzz/fuzz_targets: {e}"))?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            (path.extension()? == "rs").then(|| path.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    Ok(names)
}

/// `cargo +nightly fuzz run` with the options every run of the xtask uses.
fn cargo_fuzz_run(target: &str) -> Command {
    let mut command = Command::new("cargo");
    command
        .current_dir("fuzz")
        // The outer (stable) cargo's settings are not the nightly one's.
        .env_remove("RUSTUP_TOOLCHAIN")
        .env_remove("CARGO")
        .args(["+nightly", "fuzz", "run", "--release", "--debug-assertions"])
        .args(["--sanitizer", "none"])
        .arg(target);
    command
}

fn run_target(target: &str, seconds: Option<u64>, runs: Option<u64>) -> Result<Outcome, String> {
    let checked_in = PathBuf::from("fuzz/corpus").join(target);
    let work = PathBuf::from("fuzz/target/corpus").join(target);
    let seeds = PathBuf::from("fuzz/target/seeds").join(target);
    let big_seeds = PathBuf::from("fuzz/target/big-seeds").join(target);
    let logs = PathBuf::from("fuzz/target/logs");
    for dir in [&seeds, &big_seeds] {
        let _ = fs::remove_dir_all(dir);
    }
    for dir in [&checked_in, &work, &seeds, &big_seeds, &logs] {
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let mut big = Vec::new();
    for (i, seed) in jobwire_core::fuzzing::seeds(target).iter().enumerate() {
        let is_big = seed.len() as u64 > max_len(target);
        let path = if is_big { &big_seeds } else { &seeds }.join(format!("seed-{i:04}"));
        fs::write(&path, seed).map_err(|e| format!("{}: {e}", path.display()))?;
        if is_big {
            big.push(up(&path));
        }
    }

    let started = Instant::now();
    let mut log = String::new();
    let mut succeeded = true;
    if !big.is_empty() {
        // Files, not a directory: libFuzzer runs each once, whole.
        let mut command = cargo_fuzz_run(target);
        command
            .args(&big)
            .args(["--", &format!("-timeout={TIMEOUT_SECONDS}")]);
        (succeeded, log) = run_logged(command, &logs.join(format!("{target}-big.log")))?;
    }
    let before = count_files(&checked_in);
    if succeeded {
        let mut command = cargo_fuzz_run(target);
        // Paths as the fuzzer, started in `fuzz/`, sees them; new inputs go to the first.
        command
            .args([up(&work), up(&checked_in), up(&seeds)])
            .arg("--");
        if let Some(seconds) = seconds {
            command.arg(format!("-max_total_time={seconds}"));
        }
        if let Some(runs) = runs {
            command.arg(format!("-runs={runs}"));
        }
        command.args([
            format!("-dict=dict/{target}.dict"),
            format!("-max_len={}", max_len(target)),
            format!("-timeout={TIMEOUT_SECONDS}"),
            "-print_final_stats=1".into(),
        ]);
        (succeeded, log) = run_logged(command, &logs.join(format!("{target}.log")))?;
    }
    let seconds = started.elapsed().as_secs_f64();

    let stat = |name: &str| -> Option<u64> {
        log.lines()
            .find_map(|l| l.strip_prefix(&format!("stat::{name}:")))
            .and_then(|v| v.trim().parse().ok())
    };
    // A crash may end the run before the final statistics; the last status line
    // (`#N ...`) has the count then.
    let executions = stat("number_of_executed_units")
        .or_else(|| {
            log.lines()
                .rev()
                .find_map(|l| l.strip_prefix('#')?.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0);
    let crashes = crashes_in(&log);
    if !succeeded && crashes.is_empty() {
        return Err(format!(
            "the fuzzer of {target} failed without a crash; see fuzz/target/logs/"
        ));
    }
    if succeeded {
        minimize(target, &checked_in, &work)?;
    }
    Ok(Outcome {
        target: target.to_owned(),
        executions,
        seconds,
        per_second: stat("average_exec_per_sec").unwrap_or(0),
        corpus: (before, count_files(&checked_in)),
        crashes,
    })
}

/// The crashes, hangs and memory blow-ups a fuzzer's log reports, by the file libFuzzer
/// wrote each input to.
fn crashes_in(log: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.split("Test unit written to ").nth(1))
        .map(|path| format!("fuzz/{}", path.trim().trim_start_matches("./")))
        .filter(|path| {
            let name = Path::new(path)
                .file_name()
                .map_or(String::new(), |n| n.to_string_lossy().into_owned());
            ["crash-", "timeout-", "oom-", "leak-"]
                .iter()
                .any(|kind| name.starts_with(kind))
        })
        .collect()
}

/// Runs `command`, its output to `log_path` and the lines worth seeing to the terminal;
/// whether it succeeded, and the log.
fn run_logged(mut command: Command, log_path: &Path) -> Result<(bool, String), String> {
    println!("$ {command:?}");
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cargo fuzz: {e}"))?;
    let mut file = fs::File::create(log_path).map_err(|e| e.to_string())?;
    let mut log = String::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line.map_err(|e| e.to_string())?;
            let _ = writeln!(file, "{line}");
            let shown = ["pulse", "DONE", "INITED", "ERROR", "panicked", "Test unit"]
                .iter()
                .any(|w| line.contains(w))
                || line.starts_with("stat::")
                || line.starts_with("error");
            if shown {
                println!("  {line}");
            }
            log.push_str(&line);
            log.push('\n');
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    Ok((status.success(), log))
}

/// Whether a file of the checked-in corpus stays whatever code it reaches: the input
/// of a crash once found (named as libFuzzer named it) and the empty input.
fn kept_always(name: &str) -> bool {
    ["crash-", "timeout-", "oom-", "leak-", "empty"]
        .iter()
        .any(|kind| name.starts_with(kind))
}

/// Minimises the checked-in corpus together with the working corpus's inputs (up to
/// [`max_len`]): libFuzzer's `-set_cover_merge=1` keeps a small set of inputs that
/// reach every edge any of them reaches (edges, not how often each is taken: half the
/// files of `-merge=1` here). The crash inputs stay too. The checked-in corpus becomes
/// that set.
fn minimize(target: &str, checked_in: &Path, work: &Path) -> Result<(), String> {
    let minimized = PathBuf::from("fuzz/target/minimized").join(target);
    let candidates = PathBuf::from("fuzz/target/candidates").join(target);
    for dir in [&minimized, &candidates] {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let copy = |from: &Path, to: &Path| {
        fs::copy(from, to).map_err(|e| format!("{} to {}: {e}", from.display(), to.display()))
    };
    for entry in fs::read_dir(checked_in)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        // Merged into: what the crash inputs reach counts as reached already.
        if kept_always(&entry.file_name().to_string_lossy()) {
            copy(&entry.path(), &minimized.join(entry.file_name()))?;
        } else if entry.metadata().is_ok_and(|m| m.len() <= max_len(target)) {
            copy(&entry.path(), &candidates.join(entry.file_name()))?;
        }
    }
    for entry in fs::read_dir(work).map_err(|e| e.to_string())?.flatten() {
        if entry.metadata().is_ok_and(|m| m.len() <= max_len(target)) {
            copy(&entry.path(), &candidates.join(entry.file_name()))?;
        }
    }
    let mut command = cargo_fuzz_run(target);
    command
        .args([up(&minimized), up(&candidates)])
        .arg("--")
        .args([
            "-set_cover_merge=1".to_owned(),
            "-use_counters=0".to_owned(),
            format!("-max_len={}", max_len(target)),
        ]);
    let log = PathBuf::from("fuzz/target/logs").join(format!("{target}-merge.log"));
    let (merged, _) = run_logged(command, &log)?;
    if !merged {
        return Err(format!("minimizing failed; see {}", log.display()));
    }
    for entry in fs::read_dir(checked_in)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        fs::remove_file(entry.path()).map_err(|e| e.to_string())?;
    }
    for entry in fs::read_dir(&minimized)
        .map_err(|e| e.to_string())?
        .flatten()
    {
        copy(&entry.path(), &checked_in.join(entry.file_name()))?;
    }
    Ok(())
}

/// `path` (under `fuzz/`) as seen from `fuzz/`.
fn up(path: &Path) -> String {
    path.strip_prefix("fuzz")
        .unwrap_or(path)
        .to_string_lossy()
        .into_owned()
}

fn count_files(dir: &Path) -> usize {
    fs::read_dir(dir).map_or(0, |entries| entries.flatten().count())
}

fn print_table(outcomes: &[Outcome]) {
    println!();
    println!(
        "| target | executions | seconds | executions/s | fuzz/corpus files before → after | crashes |"
    );
    println!("|---|--:|--:|--:|--:|---|");
    for o in outcomes {
        let crashes = if o.crashes.is_empty() {
            "0".to_owned()
        } else {
            format!("{} ({})", o.crashes.len(), o.crashes.join(", "))
        };
        println!(
            "| {} | {} | {:.0} | {} | {} → {} | {} |",
            o.target, o.executions, o.seconds, o.per_second, o.corpus.0, o.corpus.1, crashes
        );
    }
}
