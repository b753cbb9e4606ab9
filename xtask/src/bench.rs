//! `cargo xtask bench [--quick] [--figure N]…`: the benchmark suite, side by side in one
//! run, written to `bench/RESULTS.md` with SVG plots of figures 2 and 4 (figure 3, the
//! server against PostgreSQL, pgbench and graphile-worker, is `ceiling.rs`). Figure 8 also measures the
//! server as it was before event fan-out by index ([`FANOUT_BASELINE`], built once from
//! `git archive` under `target/bench-baseline/`).
//!
//! Every measurement starts a fresh release server (in-memory store unless said) pinned
//! to core 0 and runs the client pinned to core 1 (`taskset`, when the machine has two
//! cores or more); each figure is the median of several runs, with min and max, and each
//! ratio is taken within a run, then its median (the machines are noisy; absolute times
//! drift). The programs are `bench/src/bin/*.rs`, the Python clients `bench/python/`, the
//! micro-benchmarks `crates/jobwire-core/benches/micro.rs`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{svg, Server};

/// How big each figure is.
struct Sizes {
    quick: bool,
    runs: usize,
    /// Calls per measurement of figure 1.
    calls: usize,
    /// Jobs per measurement of figure 2.
    jobs: usize,
    /// Sequential jobs when one wait at a time is measured (figure 4).
    one_at_a_time: usize,
    /// Concurrent waits for the polling modes of figure 4.
    poll_waits: usize,
    /// Seconds of each wrk run of figure 3.
    ceiling_seconds: u32,
    /// Jobs per measurement of figure 8 (waves of as many clients as streams).
    fanout_jobs: usize,
}

impl Sizes {
    fn new(quick: bool) -> Self {
        if quick {
            Sizes {
                quick,
                runs: 3,
                calls: 6000,
                jobs: 1000,
                one_at_a_time: 5,
                poll_waits: 1000,
                ceiling_seconds: 3,
                fanout_jobs: 1000,
            }
        } else {
            Sizes {
                quick,
                runs: 5,
                calls: 10_000,
                jobs: 10_000,
                one_at_a_time: 20,
                poll_waits: 10_000,
                ceiling_seconds: 10,
                fanout_jobs: 5000,
            }
        }
    }
}

const TOKEN: &str = "bench-token";
const VENV: &str = "target/bench-venv";

/// A release binary of the workspace, in `CARGO_TARGET_DIR` when that is set.
fn release_bin(name: &str) -> String {
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    format!("{target}/release/{name}")
}

mod ceiling;
// The tests' throwaway PostgreSQL cluster: one file for both (std only).
#[path = "../../crates/jobwire-server/tests/support/pg_cluster.rs"]
mod pg_cluster;

/// The figures `cargo xtask bench` measures, each numbered as in `bench/RESULTS.md`
/// (figures 4 and 5 come from the same runs).
const FIGURES: [u32; 8] = [1, 2, 3, 4, 5, 6, 7, 8];

/// Runs the suite, or only `figures` (`--figure N`, repeatable): then only their sections
/// of `bench/RESULTS.md` are rewritten, the rest kept as it was.
pub(crate) fn bench(quick: bool, figures: &[u32]) -> Result<(), String> {
    let started = Instant::now();
    if let Some(unknown) = figures.iter().find(|f| !FIGURES.contains(f)) {
        return Err(format!("there is no figure {unknown} (figures: 1 to 8)"));
    }
    let all = figures.is_empty();
    let wanted = |n: u32| all || figures.contains(&n);
    let sizes = Sizes::new(quick);
    ensure_wrk()?;
    // The clients of figures 1, 2, 4, 5 and 7; figure 3 needs the server alone.
    let needs_clients = FIGURES.iter().any(|&n| n != 3 && n != 6 && wanted(n));
    let python = if wanted(2) { python_clients()? } else { None };
    let mut build = vec!["build", "--release", "-p", "jobwire-server"];
    if needs_clients {
        build.extend(["-p", "jobwire-bench"]);
    }
    crate::cargo(&build)?;
    let pinned = std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2;
    let env = Env { pinned, python };
    let mut report = String::new();
    let _ = writeln!(
        report,
        "# Benchmark results\n\nWritten by `cargo xtask bench{}` on {} ({} CPUs{}). Each \
         figure is the median of {} runs, with [min–max]; each ratio is taken within a run \
         (side by side, same server), then its median. Every measurement has a fresh \
         release server with the in-memory store (unless said) on core 0 and the client \
         on core 1. Absolute times drift between machines and runs; compare ratios.\n",
        if quick { " --quick" } else { "" },
        today(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        if pinned {
            ", server and client pinned to different cores"
        } else {
            ""
        },
        sizes.runs,
    );
    if wanted(1) {
        figure_1(&env, &sizes, &mut report)?;
    }
    if wanted(2) {
        figure_2(&env, &sizes, &mut report)?;
    }
    if wanted(3) {
        ceiling::figure_3(&env, &sizes, &mut report)?;
    }
    if wanted(4) || wanted(5) {
        figures_4_and_5(&env, &sizes, &mut report)?;
    }
    if wanted(6) {
        figure_6(&sizes, &mut report)?;
    }
    if wanted(7) {
        figure_7(&env, &sizes, &mut report)?;
    }
    if wanted(8) {
        figure_8(&env, &sizes, &mut report)?;
    }
    // What profiling showed of the goals missed: written by hand, kept beside the suite.
    if let Ok(notes) = std::fs::read_to_string("bench/PROFILES.md") {
        let _ = writeln!(report, "\n{notes}");
    }
    let took = started.elapsed().as_secs_f64();
    let results = if all {
        let _ = writeln!(report, "\n---\nThe whole suite took {took:.0} s.");
        report
    } else {
        let old = std::fs::read_to_string("bench/RESULTS.md").unwrap_or_default();
        splice(&old, &report)
    };
    std::fs::write("bench/RESULTS.md", results).map_err(|e| format!("bench/RESULTS.md: {e}"))?;
    println!("wrote bench/RESULTS.md (and the SVG plots of the figures run) in {took:.0} s");
    Ok(())
}

/// `old` with each of `new`'s sections (`## N. …`, or `## What the profiles show`) in
/// place of the old section with that heading (its number, for a figure): the whole
/// suite's results with only some figures measured again. A section runs up to the next
/// `## ` heading or the closing `---`; a section `old` lacks goes before that line.
fn splice(old: &str, new: &str) -> String {
    fn key(line: &str) -> Option<&str> {
        let heading = line.strip_prefix("## ")?;
        Some(heading.split_once('.').map_or(heading, |(n, _)| n))
    }
    let mut sections: Vec<(&str, String)> = Vec::new();
    for line in new.lines() {
        if let Some(k) = key(line) {
            sections.push((k, String::new()));
        }
        if let Some((_, text)) = sections.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    let mut out = String::new();
    let mut skipping = false;
    let mut closed = false;
    for line in old.lines() {
        if key(line).is_some() || line == "---" {
            skipping = false;
            if line == "---" && !closed {
                closed = true;
                for (_, text) in sections.drain(..) {
                    out.push_str(&text);
                }
            }
            if let Some(i) = key(line).and_then(|k| sections.iter().position(|(s, _)| *s == k)) {
                out.push_str(&sections.remove(i).1);
                skipping = true;
                continue;
            }
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    for (_, text) in sections {
        out.push_str(&text);
    }
    out
}

/// How measurements are run here.
struct Env {
    pinned: bool,
    /// The venv's python, when the Python clients could be installed.
    python: Option<String>,
}

impl Env {
    /// `program` on the client's core.
    fn client(&self, program: &str) -> Command {
        pinned_command(self.pinned.then_some("1"), program)
    }
}

fn pinned_command(core: Option<&str>, program: &str) -> Command {
    match core {
        Some(core) => {
            let mut command = Command::new("taskset");
            command.args(["-c", core, program]);
            command
        }
        None => Command::new(program),
    }
}

/// A release server on core 0 (when pinned), stopped when dropped.
fn release_server(env: &Env, flags: &[&str]) -> Result<Server, String> {
    let mut command = pinned_command(env.pinned.then_some("0"), &release_bin("jobwire-server"));
    command
        .args(["--addr", "127.0.0.1:0", "--token", TOKEN])
        .args(flags);
    Server::spawn(command)
}

/// Runs `command` against `server` (at most `limit`), answering its stdout's JSON lines.
fn json_lines(
    mut command: Command,
    server: &Server,
    limit: Duration,
) -> Result<Vec<Value>, String> {
    command
        .env("JOBWIRE_URL", &server.url)
        .env("JOBWIRE_TOKEN", TOKEN)
        .env("JOBWIRE_BENCH_SERVER_PID", server.pid().to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let shown = format!("{command:?}");
    let mut child = command.spawn().map_err(|e| format!("{shown}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| serde_json::from_str::<Value>(&line).ok())
            .collect::<Vec<_>>()
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{shown} ran longer than {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let lines = reader.join().map_err(|_| "the reader panicked")?;
    if !status.success() {
        return Err(format!("{shown} failed ({status})"));
    }
    Ok(lines)
}

fn bench_bin(env: &Env, name: &str, args: &[String]) -> Command {
    let mut command = env.client(&release_bin(name));
    command.args(args);
    command
}

/// Median, min and max.
#[derive(Debug, Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(values: &[f64]) -> Spread {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return Spread {
                median: f64::NAN,
                min: f64::NAN,
                max: f64::NAN,
            };
        }
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Spread {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        }
    }

    fn show(&self, decimals: usize) -> String {
        if self.median.is_nan() {
            return "—".into();
        }
        format!(
            "**{:.d$}** [{:.d$}–{:.d$}]",
            self.median,
            self.min,
            self.max,
            d = decimals
        )
    }
}

/// Runs of one key (a client, a mode…): each run's line.
type Runs = BTreeMap<String, Vec<Value>>;

fn metric(runs: &[Value], name: &str) -> Vec<f64> {
    runs.iter().filter_map(|v| v[name].as_f64()).collect()
}

/// Per run, `f(a, b)` of two keys' lines measured in that run.
fn ratios(a: &[Value], b: &[Value], f: impl Fn(&Value, &Value) -> Option<f64>) -> Spread {
    Spread::of(
        &a.iter()
            .zip(b)
            .filter_map(|(a, b)| f(a, b))
            .collect::<Vec<_>>(),
    )
}

fn met(ok: bool) -> String {
    if ok { "met" } else { "**missed**" }.to_owned()
}

/// "met", or "missed" and by how much: `value` against a ceiling (`at_most`) or a floor.
fn against(value: f64, goal: f64, at_most: bool) -> String {
    let ok = if at_most {
        value <= goal
    } else {
        value >= goal
    };
    if ok || !value.is_finite() {
        return met(ok);
    }
    let by = ((value - goal) / goal).abs() * 100.0;
    // A miss under 1 % would read "by 0 %".
    let digits = if by < 10.0 { 1 } else { 0 };
    format!("**missed** by {by:.digits$} %")
}

fn figure_1(env: &Env, sizes: &Sizes, out: &mut String) -> Result<(), String> {
    println!("figure 1: SDK overhead per call");
    let mut runs: Runs = BTreeMap::new();
    for _ in 0..sizes.runs {
        let server = release_server(env, &["--memory"])?;
        let args = vec!["--calls".to_owned(), sizes.calls.to_string()];
        for line in json_lines(
            bench_bin(env, "overhead", &args),
            &server,
            Duration::from_secs(600),
        )? {
            let key = format!(
                "{}/{}/{}",
                line["client"].as_str().unwrap_or("?"),
                line["workload"].as_str().unwrap_or("?"),
                line["threads"]
            );
            runs.entry(key).or_default().push(line);
        }
    }
    let _ = writeln!(
        out,
        "## 1. SDK overhead\n\n**What:** client CPU time per call (`getrusage`, user + system, \
         not wall time) and calls per second. **How:** `bench/src/bin/overhead.rs`, {} calls \
         per client in five rounds taken in turns with the other clients (each round after \
         a tenth as many warm-up calls; the line is the median round): a submit that waits for its `echo` job \
         (`Prefer: wait=1`, as `run` sends it) and a job read (`GET /v1/jobs/{{id}}`). \
         **Baselines:** raw hyper-util (the pooled client jobwire uses) and raw \
         `hyper::client::conn::http1` for `jobwire` (one call after another, one runtime \
         thread); a raw ureq 3 agent for `jobwire-blocking`, from 1, 8 and 64 threads; each \
         raw client sends the same request (its input built each call, as the SDK's callers \
         build theirs) and decodes the JSON answer. **Command:** \
         `cargo xtask bench{}`.\n",
        sizes.calls,
        if sizes.quick { " --quick" } else { "" }
    );
    let _ = writeln!(out, "| client | call | threads | CPU µs/call | calls/s | CPU ratio to baseline | goal | |\n|---|---|---|---|---|---|---|---|");
    let get = |key: &str| runs.get(key).cloned().unwrap_or_default();
    let cpu = |a: &Value, b: &Value| {
        Some(a["cpu_us_per_call"].as_f64()? / b["cpu_us_per_call"].as_f64()?)
    };
    let rate = |a: &Value, b: &Value| Some(a["calls_per_s"].as_f64()? / b["calls_per_s"].as_f64()?);
    for workload in ["submit_wait", "get_job"] {
        let baseline = get(&format!("hyper-util/{workload}/1"));
        for client in ["jobwire", "hyper-util", "hyper-http1"] {
            let lines = get(&format!("{client}/{workload}/1"));
            let ratio = ratios(&lines, &baseline, cpu);
            let (goal, verdict) = if client == "jobwire" {
                ("≤ 1.1× hyper-util", against(ratio.median, 1.1, true))
            } else {
                ("", String::new())
            };
            let _ = writeln!(
                out,
                "| {client} | {workload} | 1 | {} | {} | {} | {goal} | {verdict} |",
                Spread::of(&metric(&lines, "cpu_us_per_call")).show(1),
                Spread::of(&metric(&lines, "calls_per_s")).show(0),
                ratio.show(2),
            );
        }
    }
    let mut throughput = String::new();
    for threads in [1, 8, 64] {
        let baseline = get(&format!("ureq/submit_wait/{threads}"));
        for client in ["jobwire-blocking", "ureq"] {
            let lines = get(&format!("{client}/submit_wait/{threads}"));
            let ratio = ratios(&lines, &baseline, cpu);
            let (goal, verdict) = if client == "jobwire-blocking" {
                let r = ratios(&lines, &baseline, rate);
                let _ = write!(throughput, "{threads} threads: {}; ", r.show(2));
                let verdict = match (ratio.median <= 1.2, r.median >= 0.9) {
                    (true, true) => met(true),
                    (false, true) => format!("CPU {}", against(ratio.median, 1.2, true)),
                    (true, false) => format!("calls/s {}", against(r.median, 0.9, false)),
                    (false, false) => format!(
                        "CPU {}, calls/s {}",
                        against(ratio.median, 1.2, true),
                        against(r.median, 0.9, false)
                    ),
                };
                ("≤ 1.2× ureq CPU, ≥ 0.9× its calls/s", verdict)
            } else {
                ("", String::new())
            };
            let _ = writeln!(
                out,
                "| {client} | submit_wait | {threads} | {} | {} | {} | {goal} | {verdict} |",
                Spread::of(&metric(&lines, "cpu_us_per_call")).show(1),
                Spread::of(&metric(&lines, "calls_per_s")).show(0),
                ratio.show(2),
            );
        }
    }
    let _ = writeln!(
        out,
        "\njobwire-blocking's calls/s as a ratio of raw ureq's — {}\n",
        throughput.trim_end_matches("; ")
    );
    Ok(())
}

fn figure_2(env: &Env, sizes: &Sizes, out: &mut String) -> Result<(), String> {
    println!("figure 2: many jobs");
    let mut runs: Runs = BTreeMap::new();
    let mut clients = vec!["jobwire", "jobwire-blocking"];
    if env.python.is_some() {
        clients.extend(["aiohttp", "httpx"]);
    }
    for _ in 0..sizes.runs {
        for concurrency in [64, 256] {
            for client in &clients {
                let server = release_server(env, &["--memory"])?;
                let (jobs, c) = (sizes.jobs.to_string(), concurrency.to_string());
                let command = match (*client, &env.python) {
                    ("jobwire" | "jobwire-blocking", _) => bench_bin(
                        env,
                        "many",
                        &["--client", client, "--jobs", &jobs, "--concurrency", &c]
                            .map(String::from),
                    ),
                    (_, Some(python)) => {
                        let mut command = env.client(python);
                        command.args([
                            "bench/python/many_jobs.py",
                            "--client",
                            client,
                            "--url",
                            &server.url,
                            "--token",
                            TOKEN,
                            "--jobs",
                            &jobs,
                            "--concurrency",
                            &c,
                        ]);
                        command
                    }
                    _ => continue,
                };
                for line in json_lines(command, &server, Duration::from_secs(900))? {
                    runs.entry(format!("{client}/{concurrency}"))
                        .or_default()
                        .push(line);
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "## 2. Many jobs\n\n**What:** {} `echo` jobs with at most 64 or 256 in flight: \
         makespan, client CPU per job (`getrusage`), p50/p99 of each job's submit-to-result \
         time, errors, peak client memory (`VmHWM` / `ru_maxrss`). **How:** \
         `bench/src/bin/many.rs` — `jobwire` (`client.run` on tasks, `buffer_unordered`), \
         `jobwire-blocking` (`client.run` on as many threads) — and \
         `bench/python/many_jobs.py` with aiohttp and httpx (pinned in \
         `bench/python/requirements.txt`, installed by the xtask into `{VENV}`). The Rust \
         clients submit as `run` does (`Prefer: wait=1` and an `Idempotency-Key`, then the \
         shared event stream if the job is not done); the Python clients submit with \
         `Prefer: wait=10`, then long-poll. An `echo` job is done within the submit, so \
         every client makes one request per job. **Baseline:** the Python clients. **Goal:** the lowest \
         client cost per job, no errors. **Command:** `cargo xtask bench{}`. Plot: \
         [figure-2.svg](figure-2.svg).\n",
        sizes.jobs,
        if sizes.quick { " --quick" } else { "" }
    );
    let _ = writeln!(out, "| client | in flight | makespan s | CPU µs/job | p50 ms | p99 ms | errors | peak RSS MiB | CPU vs jobwire |\n|---|---|---|---|---|---|---|---|---|");
    let mut bars = Vec::new();
    for concurrency in [64, 256] {
        let ours = runs
            .get(&format!("jobwire/{concurrency}"))
            .cloned()
            .unwrap_or_default();
        for client in &clients {
            let lines = runs
                .get(&format!("{client}/{concurrency}"))
                .cloned()
                .unwrap_or_default();
            let cpu = Spread::of(&metric(&lines, "cpu_us_per_job"));
            let vs = ratios(&lines, &ours, |a, b| {
                Some(a["cpu_us_per_job"].as_f64()? / b["cpu_us_per_job"].as_f64()?)
            });
            let rss: Vec<f64> = metric(&lines, "peak_rss_kib")
                .iter()
                .map(|k| k / 1024.0)
                .collect();
            let _ = writeln!(
                out,
                "| {client} | {concurrency} | {} | {} | {} | {} | {} | {} | {} |",
                Spread::of(&metric(&lines, "makespan_s")).show(2),
                cpu.show(1),
                Spread::of(&metric(&lines, "p50_ms")).show(2),
                Spread::of(&metric(&lines, "p99_ms")).show(2),
                Spread::of(&metric(&lines, "errors")).show(0),
                Spread::of(&rss).show(1),
                vs.show(2),
            );
            bars.push((format!("{client}, {concurrency} in flight"), cpu.median));
        }
    }
    let errors: f64 = runs
        .values()
        .flatten()
        .filter_map(|v| v["errors"].as_f64())
        .sum();
    let ours_lowest = [64, 256].iter().all(|c| {
        let cpu = |client: &str| {
            Spread::of(&metric(
                runs.get(&format!("{client}/{c}")).map_or(&[][..], |v| v),
                "cpu_us_per_job",
            ))
            .median
        };
        clients
            .iter()
            .filter(|k| !k.starts_with("jobwire"))
            .all(|k| cpu("jobwire") < cpu(k))
    });
    let _ = writeln!(
        out,
        "\nGoal (jobwire's CPU per job below each Python client's, no errors): {}.\n",
        met(ours_lowest && errors == 0.0)
    );
    svg::bars(
        "bench/figure-2.svg",
        "Figure 2: client CPU per echo job (µs, log scale)",
        &bars,
    )?;
    Ok(())
}

fn figures_4_and_5(env: &Env, sizes: &Sizes, out: &mut String) -> Result<(), String> {
    println!("figures 4 and 5: waiting");
    let mut plan: Vec<(String, usize)> = Vec::new();
    for mode in ["events", "long-poll"] {
        for waits in [1, 1000, 10_000] {
            plan.push((mode.to_owned(), waits));
        }
    }
    for every in [100, 500, 1000] {
        for waits in [1, sizes.poll_waits] {
            plan.push((format!("poll={every}"), waits));
        }
    }
    let mut runs: Runs = BTreeMap::new();
    for _ in 0..sizes.runs {
        for (mode, waits) in &plan {
            let server = release_server(env, &["--memory"])?;
            let args = [
                "--mode",
                mode,
                "--waits",
                &waits.to_string(),
                "--samples",
                &sizes.one_at_a_time.to_string(),
            ]
            .map(String::from);
            for line in json_lines(
                bench_bin(env, "waits", &args),
                &server,
                Duration::from_secs(600),
            )? {
                runs.entry(format!("{mode}/{waits}"))
                    .or_default()
                    .push(line);
            }
        }
    }
    let quick = if sizes.quick { " --quick" } else { "" };
    let _ = writeln!(
        out,
        "## 4. Completion latency\n\n**What:** from the moment the server marked a job done \
         (its `finished_at`) to the moment the client had it, p50 and p99, with one wait at a \
         time ({} jobs after one another) and with many at once (`sleep` jobs of 2 s). \
         **How:** `bench/src/bin/waits.rs` with the async facade: `events` is `job.wait()` \
         (one shared event stream), `long-poll` is `job.wait()` with \
         `wait_by_events(false)`, `poll=MS` the hand-written loop (`refresh()`, sleep MS) \
         other SDKs' users write. **Baseline:** polling. **Goal:** with events, p50 < 1 ms \
         and p99 < 5 ms. **Command:** `cargo xtask bench{quick}`. Plot: \
         [figure-4.svg](figure-4.svg).\n",
        sizes.one_at_a_time
    );
    let _ = writeln!(
        out,
        "| waits by | at once | p50 ms | p99 ms | errors | goal | |\n|---|---|---|---|---|---|---|"
    );
    let mut bars = Vec::new();
    for (mode, waits) in &plan {
        let lines = runs
            .get(&format!("{mode}/{waits}"))
            .cloned()
            .unwrap_or_default();
        let (p50, p99) = (
            Spread::of(&metric(&lines, "p50_ms")),
            Spread::of(&metric(&lines, "p99_ms")),
        );
        let (goal, verdict) = if mode == "events" {
            (
                "p50 < 1, p99 < 5",
                match p50.median < 1.0 {
                    true => against(p99.median, 5.0, true),
                    false => format!("p50 {}", against(p50.median, 1.0, true)),
                },
            )
        } else {
            ("", String::new())
        };
        let _ = writeln!(
            out,
            "| {mode} | {waits} | {} | {} | {} | {goal} | {verdict} |",
            p50.show(2),
            p99.show(2),
            Spread::of(&metric(&lines, "errors")).show(0),
        );
        if *waits == 1
            || *waits == sizes.poll_waits
            || (*waits == 10_000 && !mode.starts_with("poll"))
        {
            bars.push((format!("{mode}, {waits} at once (p50)"), p50.median));
        }
    }
    svg::bars(
        "bench/figure-4.svg",
        "Figure 4: completion to result, p50 (ms, log scale)",
        &bars,
    )?;
    let _ = writeln!(
        out,
        "\n## 5. Memory per waiting job\n\n**What:** peak resident memory while N jobs are \
         awaited at once, minus before, divided by N: the client's (`VmRSS` of the bench \
         process; also its peak before the first job finished, what waiting itself holds \
         without the burst of `done` events after) and the server's (`VmRSS` of its process, which also holds the N jobs). \
         **How:** the same runs as figure 4. **Baseline:** one long-poll per job. \
         **Goal:** ≤ 2 KB per wait on the client, with events. **Command:** `cargo xtask \
         bench{quick}`.\n"
    );
    let _ = writeln!(out, "| waits by | N | client B/wait | client B/wait before the first done | server B/wait | client vs long-poll | goal | |\n|---|---|---|---|---|---|---|---|");
    for waits in [1000, 10_000] {
        let poll = runs
            .get(&format!("long-poll/{waits}"))
            .cloned()
            .unwrap_or_default();
        for mode in ["events", "long-poll"] {
            let lines = runs
                .get(&format!("{mode}/{waits}"))
                .cloned()
                .unwrap_or_default();
            let client = Spread::of(&metric(&lines, "client_bytes_per_wait"));
            let vs = ratios(&lines, &poll, |a, b| {
                Some(a["client_bytes_per_wait"].as_f64()? / b["client_bytes_per_wait"].as_f64()?)
            });
            let (goal, verdict) = if mode == "events" {
                ("≤ 2048", against(client.median, 2048.0, true))
            } else {
                ("", String::new())
            };
            let _ = writeln!(
                out,
                "| {mode} | {waits} | {} | {} | {} | {} | {goal} | {verdict} |",
                client.show(0),
                Spread::of(&metric(&lines, "client_bytes_per_wait_before_done")).show(0),
                Spread::of(&metric(&lines, "server_bytes_per_wait")).show(0),
                vs.show(3),
            );
        }
    }
    let _ = writeln!(out);
    Ok(())
}

fn figure_6(sizes: &Sizes, out: &mut String) -> Result<(), String> {
    println!("figure 6: micro-benchmarks");
    let mut args = vec!["bench", "-p", "jobwire-core", "--bench", "micro", "--"];
    if sizes.quick {
        args.extend(["--sample-count", "10"]);
    }
    println!("$ cargo {}", args.join(" "));
    let output = crate::cargo_command()
        .args(&args)
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cargo bench: {e}"))?;
    if !output.status.success() {
        return Err("cargo bench -p jobwire-core --bench micro failed".into());
    }
    let _ = writeln!(
        out,
        "## 6. Micro-benchmarks\n\n**What:** the SSE decoder, the retry decision and job \
         decoding, time and allocations per operation. **How:** divan, \
         `crates/jobwire-core/benches/micro.rs`, its `AllocProfiler` counting allocations. \
         **Baseline:** none (they are for spotting regressions). **Command:** `cargo bench \
         -p jobwire-core --bench micro`{}.\n\n```text\n{}```",
        if sizes.quick {
            " -- --sample-count 10"
        } else {
            ""
        },
        String::from_utf8_lossy(&output.stdout)
    );
    Ok(())
}

/// Figure 7: tenant B's reads while tenant A floods the worker pool with `digest` jobs,
/// against the same reads on a quiet server, same run, same server (SQLite: its reads
/// run on tokio's blocking pool, which the flood used to share).
fn figure_7(env: &Env, sizes: &Sizes, out: &mut String) -> Result<(), String> {
    println!("figure 7: one tenant's flood against another's reads");
    let seconds = if sizes.quick { "3" } else { "10" };
    let mut runs: Vec<(f64, f64, f64, f64, f64)> = Vec::new();
    for _ in 0..sizes.runs {
        let dir = std::env::temp_dir().join(format!("jobwire-bench-7-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let dir_text = dir.to_string_lossy().into_owned();
        let server = release_server(
            env,
            &[
                "--data-dir",
                &dir_text,
                "--token",
                "bench-flood-token=flood",
            ],
        )?;
        let mut command = env.client(&release_bin("isolation"));
        command
            .args(["--seconds", seconds, "--readers", "4", "--flood", "4000"])
            .env("JOBWIRE_BENCH_FLOOD_TOKEN", "bench-flood-token");
        let lines = json_lines(command, &server, Duration::from_secs(120))?;
        drop(server);
        let _ = std::fs::remove_dir_all(&dir);
        let line = lines.last().ok_or("isolation printed nothing")?;
        let get = |phase: &str, key: &str| line[phase][key].as_f64().unwrap_or(f64::NAN);
        runs.push((
            get("quiet", "p50_ms"),
            get("quiet", "p99_ms"),
            get("flooded", "p50_ms"),
            get("flooded", "p99_ms"),
            line["flood_unfinished_at_end"].as_f64().unwrap_or(0.0),
        ));
    }
    let column = |f: fn(&(f64, f64, f64, f64, f64)) -> f64| {
        Spread::of(&runs.iter().map(f).collect::<Vec<_>>())
    };
    let ratio = column(|r| r.3 / r.1);
    let _ = writeln!(
        out,
        "## 7. One tenant's flood against another's reads\n\n**What:** tenant B's \
         `GET /v1/jobs/{{id}}` latency (4 callers through the async facade, closed loop, {seconds} s) \
         while tenant A has 4,000 CPU-bound `digest` jobs (100,000 rounds each) queued, \
         against the same reads on the quiet server just before. **How:** \
         `bench/src/bin/isolation.rs` on core 1, a SQLite server on core 0 (its reads run on \
         tokio's blocking pool; blocking handlers on the server's own worker pool). \
         **Baseline:** the quiet phase, same server, same run. **Goal:** B's p99 with the \
         flood ≤ 2 × without. **Command:** `cargo xtask bench{}`.\n\n| | p50 ms | p99 ms |\n\
         |---|---|---|\n| quiet | {} | {} |\n| A floods | {} | {} |\n\nFlooded p99 ÷ quiet \
         p99: {} ({}); A's jobs still running when the flooded phase ended: {} (the flood \
         outlasted the measurement when this is above 0).\n",
        if sizes.quick { " --quick" } else { "" },
        column(|r| r.0).show(2),
        column(|r| r.1).show(2),
        column(|r| r.2).show(2),
        column(|r| r.3).show(2),
        ratio.show(2),
        against(ratio.median, 2.0, true),
        column(|r| r.4).show(0),
    );
    Ok(())
}

/// The commit whose server figure 8 measures as "before": the last one before event
/// fan-out by index, when every subscriber of a tenant filtered the tenant's whole
/// broadcast.
const FANOUT_BASELINE: &str = "cee81fd0ccc9f2a191abbfa54103d99a69f341ee";

/// Streams at once in figure 8, and the largest the baseline is measured at: its cost per
/// event grows with the streams, so at 5,000 one run would take minutes.
const FANOUT_STREAMS: [usize; 3] = [100, 1000, 5000];
const FANOUT_BASELINE_MAX: usize = 1000;

/// The release server of [`FANOUT_BASELINE`], built once (its source from `git
/// archive`, its own target directory); `None`, with a note, when it cannot be built
/// (no git history, say).
fn baseline_server() -> Option<String> {
    let root = std::env::current_dir().ok()?.join("target/bench-baseline");
    let dir = root.join(&FANOUT_BASELINE[..12]);
    let binary = dir.join("target/release/jobwire-server");
    if binary.exists() {
        return Some(binary.to_string_lossy().into_owned());
    }
    let build = || -> Result<(), String> {
        let src = dir.join("src");
        let _ = std::fs::remove_dir_all(&src);
        std::fs::create_dir_all(&src).map_err(|e| e.to_string())?;
        let archive = Command::new("git")
            .args(["archive", FANOUT_BASELINE])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("git archive: {e}"))?;
        let stdout = archive.stdout.ok_or("git archive: no stdout")?;
        let untar = Command::new("tar")
            .arg("-x")
            .current_dir(&src)
            .stdin(stdout)
            .status()
            .map_err(|e| format!("tar: {e}"))?;
        if !untar.success() || !src.join("Cargo.toml").exists() {
            return Err(format!("git archive {FANOUT_BASELINE} failed"));
        }
        let mut cargo = Command::new(crate::cargo_bin());
        cargo
            .args(["build", "--release", "-p", "jobwire-server"])
            .current_dir(&src)
            .env("CARGO_TARGET_DIR", dir.join("target"));
        crate::run_command(cargo)
    };
    match build() {
        Ok(()) => Some(binary.to_string_lossy().into_owned()),
        Err(e) => {
            println!("figure 8 runs without the baseline server: {e}");
            None
        }
    }
}

fn figure_8(env: &Env, sizes: &Sizes, out: &mut String) -> Result<(), String> {
    println!("figure 8: event fan-out");
    let baseline = baseline_server();
    let modes = [
        ("job", "`job.events()`: `GET /v1/jobs/{id}/events`"),
        (
            "events-job",
            "`client.events().job(id)`: `GET /v1/events?job=`",
        ),
        (
            "events-service",
            "`client.events().service(id)`: `GET /v1/events?service=`",
        ),
    ];
    let mut runs: Runs = BTreeMap::new();
    for _ in 0..sizes.runs {
        for (mode, _) in modes {
            for streams in FANOUT_STREAMS {
                let mut servers = vec![("after", release_bin("jobwire-server"))];
                if let (Some(path), true) = (&baseline, streams <= FANOUT_BASELINE_MAX) {
                    servers.push(("before", path.clone()));
                }
                for (which, binary) in servers {
                    let mut command = pinned_command(env.pinned.then_some("0"), &binary);
                    command.args(["--addr", "127.0.0.1:0", "--token", TOKEN, "--memory"]);
                    if mode == "events-service" {
                        command.arg("--allow-commands");
                    }
                    let server = Server::spawn(command)?;
                    let args = [
                        "--mode",
                        mode,
                        "--clients",
                        &streams.to_string(),
                        "--jobs",
                        &sizes.fanout_jobs.to_string(),
                    ]
                    .map(String::from);
                    for line in json_lines(
                        bench_bin(env, "fanout", &args),
                        &server,
                        Duration::from_secs(900),
                    )? {
                        runs.entry(format!("{which}/{mode}/{streams}"))
                            .or_default()
                            .push(line);
                    }
                }
            }
        }
    }
    let quick = if sizes.quick { " --quick" } else { "" };
    let _ = writeln!(
        out,
        "\n## 8. Event fan-out\n\n**What:** the server's CPU time (user + system, from \
         `/proc/<pid>/stat`) per event delivered, with N clients at once, each following a \
         stream of its own (not counting the programs it runs, its children: for \
         `?service=`, each job's launcher and shell script). **How:** `bench/src/bin/fanout.rs` with the async facade: each \
         client submits one job and follows its events until its `done` — a `steps` job \
         (10 steps; 34 events) by `job.events()` or by `/v1/events?job=`, or, for \
         `/v1/events?service=`, a job of a command service of its own pair of clients (a \
         shell script of 10 progress and 10 log lines; each client gets both jobs' 24 \
         events). Jobs last N ms (at least 100), so a wave's streams are open together; \
         \"most open at once\" counts them. At least {} jobs per measurement, in waves of \
         N, the server's CPU read before the first and after the last. **Baseline:** the same \
         server before fan-out by index (commit `{}`), where each stream filtered its \
         tenant's whole broadcast; not run above {FANOUT_BASELINE_MAX} streams (its cost \
         grows with them). **Goal:** at 1,000 and 5,000 streams, CPU per event within \
         1.5× of that at 100 (ratio within each run). **Command:** `cargo xtask \
         bench{quick}`.\n",
        sizes.fanout_jobs,
        &FANOUT_BASELINE[..7],
    );
    let _ = writeln!(
        out,
        "| stream | N | most open at once | events | errors, after (before) | before: server µs/event | after: server µs/event | after ÷ before | after ÷ after at 100 | goal | |\n|---|---|---|---|---|---|---|---|---|---|---|"
    );
    let per_event = |a: &Value, b: &Value| {
        Some(a["server_cpu_us_per_event"].as_f64()? / b["server_cpu_us_per_event"].as_f64()?)
    };
    for (mode, label) in modes {
        let at_100 = runs
            .get(&format!("after/{mode}/100"))
            .cloned()
            .unwrap_or_default();
        for streams in FANOUT_STREAMS {
            let get = |which: &str| {
                runs.get(&format!("{which}/{mode}/{streams}"))
                    .cloned()
                    .unwrap_or_default()
            };
            let (after, before) = (get("after"), get("before"));
            let flat = ratios(&after, &at_100, per_event);
            let (goal, verdict) = if streams > 100 {
                ("≤ 1.5", against(flat.median, 1.5, true))
            } else {
                ("", String::new())
            };
            let _ = writeln!(
                out,
                "| {label} | {streams} | {} | {} | {} ({}) | {} | {} | {} | {} | {goal} | {verdict} |",
                Spread::of(&metric(&after, "peak_streams")).show(0),
                Spread::of(&metric(&after, "events")).show(0),
                Spread::of(&metric(&after, "errors")).show(0),
                Spread::of(&metric(&before, "errors")).show(0),
                Spread::of(&metric(&before, "server_cpu_us_per_event")).show(1),
                Spread::of(&metric(&after, "server_cpu_us_per_event")).show(1),
                ratios(&after, &before, per_event).show(3),
                flat.show(2),
            );
        }
    }
    let _ = writeln!(out);
    Ok(())
}

/// wrk, from Debian's package when it is missing.
fn ensure_wrk() -> Result<(), String> {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return Ok(());
    }
    apt_install("wrk")
}

/// Installs Debian's `package` (with sudo unless root).
fn apt_install(package: &str) -> Result<(), String> {
    let root = crate::is_root();
    let apt = |args: &[&str]| {
        let mut command = if root {
            Command::new("apt-get")
        } else {
            let mut c = Command::new("sudo");
            c.arg("apt-get");
            c
        };
        command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        crate::run_command(command)
    };
    apt(&["update", "-qq"])?;
    apt(&["install", "-y", "-qq", package])
}

/// The Python clients' venv (pinned requirements); `None`, with a note, without python3.
fn python_clients() -> Result<Option<String>, String> {
    let python = format!("{VENV}/bin/python");
    let requirements = "bench/python/requirements.txt";
    if !Path::new(requirements).exists() {
        return Ok(None);
    }
    if !Path::new(&python).exists() {
        if crate::run("python3", &["-m", "venv", VENV]).is_err() {
            println!("no python3: figure 2 runs without the Python clients");
            return Ok(None);
        }
        crate::run(
            &format!("{VENV}/bin/pip"),
            &["install", "--quiet", "-r", requirements],
        )?;
    }
    Ok(Some(python))
}

fn today() -> String {
    let output = Command::new("date").arg("-u").arg("+%Y-%m-%d").output();
    output
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_figure_run_alone_replaces_its_own_section() {
        let old = "# Results\n\nintro\n\n## 2. Many\n\nold two\n\n## 3. Ceiling\n\nold three\n\n\
                   ## 4. Wait\n\nold four\n\n## What the profiles show\n\nold notes\n\n---\nThe whole suite took 9 s.\n";
        let new = "# Results\n\nother intro\n## 3. Ceiling, again\n\nnew three\n\n\
                   ## What the profiles show\n\nnew notes\n";
        assert_eq!(
            splice(old, new),
            "# Results\n\nintro\n\n## 2. Many\n\nold two\n\n## 3. Ceiling, again\n\nnew three\n\n\
             ## 4. Wait\n\nold four\n\n## What the profiles show\n\nnew notes\n---\nThe whole suite took 9 s.\n"
        );
        // A section the old results lack goes before the closing line.
        let added = splice("# R\n\n## 1. A\n\na\n---\nend\n", "## 3. C\n\nc\n");
        assert_eq!(added, "# R\n\n## 1. A\n\na\n## 3. C\n\nc\n---\nend\n");
    }

    #[test]
    fn spreads() {
        let s = Spread::of(&[3.0, 1.0, 2.0, f64::NAN]);
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of(&[1.0, 2.0]).median, 1.5);
        assert_eq!(Spread::of(&[]).show(1), "—");
    }

    #[test]
    fn verdicts_say_by_how_much() {
        assert_eq!(against(1.0, 1.1, true), "met");
        assert_eq!(against(0.95, 0.9, false), "met");
        assert_eq!(against(1.105, 1.1, true), "**missed** by 0.5 %");
        assert_eq!(against(0.4, 0.5, false), "**missed** by 20 %");
        assert_eq!(against(2242.0, 2048.0, true), "**missed** by 9.5 %");
    }
}
