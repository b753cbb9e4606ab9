//! `cargo xtask soak --minutes N`: a mixed load from both facades against the release
//! server with the SQLite store, then with the memory store, N minutes each, with faults
//! injected so that retries happen; the server's and the client's memory and open file
//! descriptors sampled every 10 s; the samples and a verdict written to `bench/SOAK.md`.
//!
//! The load is `bench/src/bin/soak.rs` (its module doc says what it does), a process of
//! its own, so each process has its own figures; this process only starts the two and
//! reads `/proc`. A store passes when no operation failed, the server is still up, and
//! from the end of the warm-up (see [`warm_up`]) to the end the resident memory of
//! each process grew less than 5 %. Both stores are bounded so that a plateau can show
//! within minutes (see [`server_flags`]).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::Server;

/// How often both processes are sampled (a row of the table).
const EVERY: Duration = Duration::from_secs(10);
/// How often their resident memory is read; a sample's is the mean of its readings.
const READ_EVERY: Duration = Duration::from_secs(1);
/// Memory growth after the warm-up that fails the soak.
const MAX_GROWTH: f64 = 0.05;
/// The load's callers per facade: mixed and large (see `bench/src/bin/soak.rs`).
const CALLERS: usize = 24;
const LARGE: usize = 2;
/// Linux's clock ticks per second in `/proc/<pid>/stat` (USER_HZ, 100 on every
/// architecture Linux runs on today).
const TICKS: f64 = 100.0;

/// Faults on every server: submits lose their answer after the job was stored (the SDK
/// resends with its idempotency key), job reads and cancels get 503, list pages 429,
/// and event streams are cut mid-way (the SDK resumes after the last event it had).
const FAULTS: &[&str] = &[
    "drop-answer:0.02:POST:/v1/services/*/jobs",
    "unavailable=0:0.02:GET:/v1/jobs/*",
    "unavailable=0:0.02:POST:/v1/jobs/*/cancel",
    "rate-limited=0:0.02:GET:/v1/jobs",
    "cut-body=4096:0.05:GET:/v1/jobs/*/events",
    "cut-body=262144:0.2:GET:/v1/events",
];

/// A finished job's events, and submits' idempotency keys, are kept this long (instead
/// of an hour and a day), so that they come and go within a run.
const EVENT_RETENTION: &str = "60";
/// A finished job is kept this long (instead of 7 days), so that the SQLite database,
/// too, reaches a steady size within a run.
const JOB_RETENTION: &str = "120";
/// The memory store's budget per tenant: reached in well under the warm-up, so that the
/// oldest finished jobs are removed from then on and memory can level off.
const MEMORY_BUDGET: &str = "64M";

/// One store's run: the server's flags besides the address and tokens.
struct Store {
    name: &'static str,
    flags: Vec<String>,
    /// Where SQLite keeps its data (measured at each sample), if on disk.
    dir: Option<PathBuf>,
}

/// The flags of each store's server (see [`FAULTS`], [`EVENT_RETENTION`],
/// [`JOB_RETENTION`], [`MEMORY_BUDGET`]).
fn server_flags(store: &Store, tokens: &Tokens) -> Vec<String> {
    let mut flags: Vec<String> = vec![
        "--addr".into(),
        "127.0.0.1:0".into(),
        "--token".into(),
        format!("{}=async", tokens.asynchronous),
        "--token".into(),
        format!("{}=blocking", tokens.blocking),
        "--allow-commands-for".into(),
        "async,blocking".into(),
        "--event-retention".into(),
        EVENT_RETENTION.into(),
        "--idempotency-window".into(),
        EVENT_RETENTION.into(),
        "--job-retention".into(),
        JOB_RETENTION.into(),
        "--fault-seed".into(),
        "7".into(),
    ];
    for fault in FAULTS {
        flags.push("--fault".into());
        flags.push((*fault).into());
    }
    flags.extend(store.flags.iter().cloned());
    flags
}

/// glibc's malloc settings for the load, the ones `jobwire-server` gives itself: one
/// arena per core (at least two), and blocks of 128 KiB and more mapped on their own.
/// With glibc's defaults the load's resident memory stood near 200 MiB and crept up
/// while its heap held 10–25 MiB (heaptrack): each of up to eight arenas per core keeps
/// what its threads freed, and 1–2 MiB bodies end up carved from them.
fn load_allocator() -> [(&'static str, String); 2] {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    [
        ("MALLOC_ARENA_MAX", cores.max(2).to_string()),
        ("MALLOC_MMAP_THRESHOLD_", (128 * 1024).to_string()),
    ]
}

struct Tokens {
    asynchronous: String,
    blocking: String,
}

/// What `/proc` says of one process at one moment.
#[derive(Clone)]
struct Proc {
    rss_kib: Option<u64>,
    /// Open descriptors, or why they could not be counted.
    fds: Result<usize, String>,
    /// User plus system CPU time so far, in clock ticks.
    cpu_ticks: Option<u64>,
}

/// `VmRSS` of `/proc/<pid>/status`, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
}

impl Proc {
    fn read(pid: u32) -> Proc {
        let rss_kib = rss_kib(pid);
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(Iterator::count)
            .map_err(|e| {
                format!(
                    "/proc/{pid}/fd is unreadable ({e}): the server makes itself \
                     non-dumpable, so only root can count its descriptors"
                )
            });
        Proc {
            rss_kib,
            fds,
            cpu_ticks: cpu_ticks(pid),
        }
    }

    /// This sample with its resident memory the mean of `readings`, when there are any.
    fn with_mean_rss(mut self, readings: Vec<u64>) -> Proc {
        if !readings.is_empty() {
            self.rss_kib = Some(readings.iter().sum::<u64>() / readings.len() as u64);
        }
        self
    }
}

/// Both processes' resident memory, read every [`READ_EVERY`] since the last sample. One
/// reading swings by ±10 % with what is in flight (the large callers' 1–2 MiB bodies):
/// the mean of ten is steadier, and a leak moves it all the same.
#[derive(Default)]
struct Readings {
    server: Vec<u64>,
    client: Vec<u64>,
}

impl Readings {
    fn read(&mut self, server: u32, client: u32) {
        for (pid, readings) in [(server, &mut self.server), (client, &mut self.client)] {
            if let Some(kib) = rss_kib(pid) {
                readings.push(kib);
            }
        }
    }

    /// The readings so far (server's, client's), and none kept.
    fn take(&mut self) -> (Vec<u64>, Vec<u64>) {
        (
            std::mem::take(&mut self.server),
            std::mem::take(&mut self.client),
        )
    }
}

/// utime + stime of `/proc/<pid>/stat` (fields 14 and 15; the command name before them
/// may hold spaces, so they are counted from its closing parenthesis).
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

struct Sample {
    at: Duration,
    server: Proc,
    client: Proc,
    /// The client's operations done right and failed so far, and the bytes its heap
    /// holds (its last progress line).
    ok: u64,
    failed: u64,
    client_heap: Option<u64>,
    /// Bytes of the store's files on disk.
    disk: Option<u64>,
}

/// One store's soak, as run.
struct Run {
    store: &'static str,
    flags: Vec<String>,
    samples: Vec<Sample>,
    summary: Option<Value>,
    /// Why the run failed, if it did (besides the memory verdict).
    problems: Vec<String>,
}

/// `cargo xtask soak --minutes N`, given the arguments after `soak`.
pub(crate) fn soak(args: impl Iterator<Item = String>) -> Result<(), String> {
    let args: Vec<String> = args.collect();
    let minutes = match args.as_slice() {
        [flag, n] if flag == "--minutes" => n.parse::<u64>().ok().filter(|n| *n > 0),
        _ => None,
    }
    .ok_or("usage: cargo xtask soak --minutes N (N whole minutes per store, at least 1)")?;
    let started = Instant::now();
    crate::cargo(&[
        "build",
        "--release",
        "-p",
        "jobwire-server",
        "--bin",
        "jobwire-server",
        "-p",
        "jobwire-bench",
        "--bin",
        "soak",
    ])?;
    let release = target_dir().join("release");
    let tokens = Tokens {
        asynchronous: format!("soak-async-{}", std::process::id()),
        blocking: format!("soak-blocking-{}", std::process::id()),
    };
    let dir = std::env::temp_dir().join(format!("jobwire-soak-{}", std::process::id()));
    let stores = [
        Store {
            name: "SQLite",
            flags: vec!["--data-dir".into(), dir.to_string_lossy().into_owned()],
            dir: Some(dir.clone()),
        },
        Store {
            name: "memory",
            flags: vec![
                "--memory".into(),
                "--max-stored-bytes".into(),
                MEMORY_BUDGET.into(),
            ],
            dir: None,
        },
    ];
    let mut runs = Vec::new();
    for store in &stores {
        let _ = std::fs::remove_dir_all(&dir);
        let run = run_store(&release, store, &tokens, minutes);
        let _ = std::fs::remove_dir_all(&dir);
        runs.push(run?);
    }
    let verdicts: Vec<(bool, String)> = runs.iter().map(|r| verdict(r, minutes)).collect();
    let report = report(&runs, &verdicts, minutes, started.elapsed());
    std::fs::write("bench/SOAK.md", report).map_err(|e| format!("bench/SOAK.md: {e}"))?;
    println!("wrote bench/SOAK.md");
    let failed: Vec<String> = runs
        .iter()
        .zip(&verdicts)
        .filter(|(_, (ok, _))| !ok)
        .map(|(run, (_, why))| format!("{}: {why}", run.store))
        .collect();
    if failed.is_empty() {
        println!("soak passed on both stores");
        Ok(())
    } else {
        Err(format!("the soak failed — {}", failed.join("; ")))
    }
}

/// Where cargo puts what it builds.
fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from)
}

fn run_store(release: &Path, store: &Store, tokens: &Tokens, minutes: u64) -> Result<Run, String> {
    println!("soak: {} store, {minutes} min", store.name);
    let flags = server_flags(store, tokens);
    let mut command = Command::new(release.join("jobwire-server"));
    command.args(&flags);
    let mut server = Server::spawn(command)?;
    let load = Duration::from_secs(minutes * 60);
    // A few seconds past the last sample, so that it is taken under load.
    let seconds = load.as_secs() + 3;
    let mut client = Command::new(release.join("soak"))
        .args([
            "--seconds",
            &seconds.to_string(),
            "--callers",
            &CALLERS.to_string(),
            "--large",
            &LARGE.to_string(),
        ])
        .envs(load_allocator())
        .env("JOBWIRE_URL", &server.url)
        .env("JOBWIRE_SOAK_ASYNC_TOKEN", &tokens.asynchronous)
        .env("JOBWIRE_SOAK_BLOCKING_TOKEN", &tokens.blocking)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting the soak's load: {e}"))?;
    let started = Instant::now();
    let progress: Arc<Mutex<(u64, u64, Option<u64>)>> = Arc::default();
    let summary: Arc<Mutex<Option<Value>>> = Arc::default();
    let reader = {
        let stdout = client.stdout.take().ok_or("no stdout of the load")?;
        let (progress, summary) = (progress.clone(), summary.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let Ok(value) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if value["summary"] == true {
                    *summary.lock().unwrap_or_else(|e| e.into_inner()) = Some(value);
                } else if let (Some(ok), Some(failed)) =
                    (value["ok"].as_u64(), value["failed"].as_u64())
                {
                    *progress.lock().unwrap_or_else(|e| e.into_inner()) =
                        (ok, failed, value["heap_bytes"].as_u64());
                }
            }
        })
    };
    let mut samples = Vec::new();
    let mut problems = Vec::new();
    let (mut tick, mut reading) = (1, 1);
    let mut readings = Readings::default();
    let status = loop {
        if let Some(status) = client.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if started.elapsed() >= READ_EVERY * reading {
            readings.read(server.pid(), client.id());
            reading += 1;
        }
        let next = EVERY * tick;
        if next <= load && started.elapsed() >= next {
            let (ok, failed, client_heap) = *progress.lock().unwrap_or_else(|e| e.into_inner());
            let (server_rss, client_rss) = readings.take();
            samples.push(Sample {
                at: started.elapsed(),
                server: Proc::read(server.pid()).with_mean_rss(server_rss),
                client: Proc::read(client.id()).with_mean_rss(client_rss),
                ok,
                failed,
                client_heap,
                disk: store.dir.as_deref().map(dir_bytes),
            });
            let last = samples.last().map(|s| {
                format!(
                    "t={:>4.0}s server {} MiB, client {} MiB, ok {}, failed {}",
                    s.at.as_secs_f64(),
                    mib(s.server.rss_kib),
                    mib(s.client.rss_kib),
                    s.ok,
                    s.failed
                )
            });
            println!("  {}", last.unwrap_or_default());
            tick += 1;
        }
        if started.elapsed() > load + Duration::from_secs(180) {
            let _ = client.kill();
            problems.push("the load did not end within 3 minutes of its end".to_owned());
            break client.wait().map_err(|e| e.to_string())?;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let _ = reader.join();
    let summary = summary.lock().unwrap_or_else(|e| e.into_inner()).take();
    match status.code() {
        Some(0) => {}
        Some(1) => {} // Failed operations: the summary says which.
        _ => problems.push(format!("the load program ended badly ({status})")),
    }
    if summary.is_none() {
        problems.push("the load program gave no summary".to_owned());
    }
    if let Ok(Some(exit)) = server.child.try_wait() {
        problems.push(format!("the server died during the soak ({exit})"));
    }
    Ok(Run {
        store: store.name,
        flags,
        samples,
        summary,
        problems,
    })
}

/// Bytes of the files in `dir` (SQLite's database, its WAL and shared memory).
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "—".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
}

/// How long the warm-up lasts: until the first finished jobs have gone by
/// [`JOB_RETENTION`], plus a minute (by then the stores hold what they will hold, the
/// memory store's budget has filled, and the allocators' pools and SQLite's page cache
/// have reached their size), or the first half of a shorter run.
fn warm_up(minutes: u64) -> Duration {
    let retention = JOB_RETENTION.parse().map_or(120, |s: u64| s);
    Duration::from_secs(retention + 60).min(Duration::from_secs(minutes * 60) / 2)
}

/// Resident memory from the end of the warm-up to the end: (first, last, growth), the
/// two ends read off the least-squares line through every sample after the warm-up.
/// A process's memory swings by ±5–10 % from one reading to the next (a 2 MiB body in
/// flight, an allocator returning pages), so one sample against another — or one
/// minute's median against another's — measures the swings; the line through forty
/// samples, each the mean of ten readings ([`Readings`]), measures the trend.
fn growth(
    samples: &[Sample],
    minutes: u64,
    rss: impl Fn(&Sample) -> Option<u64>,
) -> Option<(u64, u64, f64)> {
    let warm = warm_up(minutes).as_secs_f64();
    let points: Vec<(f64, f64)> = samples
        .iter()
        .filter(|s| s.at.as_secs_f64() >= warm)
        .filter_map(|s| Some((s.at.as_secs_f64(), rss(s)? as f64)))
        .collect();
    let end = points.last()?.0;
    let n = points.len() as f64;
    let mean_t = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_m = points.iter().map(|p| p.1).sum::<f64>() / n;
    let spread: f64 = points.iter().map(|p| (p.0 - mean_t).powi(2)).sum();
    if spread <= 0.0 {
        return None;
    }
    let slope = points
        .iter()
        .map(|p| (p.0 - mean_t) * (p.1 - mean_m))
        .sum::<f64>()
        / spread;
    let at = |t: f64| mean_m + slope * (t - mean_t);
    let (first, last) = (at(warm), at(end));
    if first <= 0.0 {
        return None;
    }
    Some((first as u64, last.max(0.0) as u64, last / first - 1.0))
}

/// Whether a run passed, and why (not).
fn verdict(run: &Run, minutes: u64) -> (bool, String) {
    let mut why = run.problems.clone();
    let failed = run
        .summary
        .as_ref()
        .and_then(|s| s["failed"].as_u64())
        .unwrap_or(0);
    if failed > 0 {
        why.push(format!("{failed} operations failed"));
    }
    for (who, rss) in [
        (
            "server",
            (|s: &Sample| s.server.rss_kib) as fn(&Sample) -> Option<u64>,
        ),
        ("client", |s: &Sample| s.client.rss_kib),
    ] {
        match growth(&run.samples, minutes, rss) {
            Some((first, last, g)) if g >= MAX_GROWTH => why.push(format!(
                "the {who}'s memory grew {:.1} % after the warm-up ({} → {} MiB)",
                g * 100.0,
                mib(Some(first)),
                mib(Some(last))
            )),
            Some(_) => {}
            None => why.push(format!("no {who} memory samples after the warm-up")),
        }
    }
    if why.is_empty() {
        (true, "passed".to_owned())
    } else {
        (false, why.join("; "))
    }
}

fn report(runs: &[Run], verdicts: &[(bool, String)], minutes: u64, took: Duration) -> String {
    let mut out = String::new();
    let all = verdicts.iter().all(|(ok, _)| *ok);
    let _ = writeln!(
        out,
        "# Soak\n\nWritten by `cargo xtask soak --minutes {minutes}` on {} ({} CPUs); the \
         whole soak took {:.0} s. **Verdict: {}.**\n",
        today(),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        took.as_secs_f64(),
        if all { "passed" } else { "FAILED" }
    );
    let _ = writeln!(
        out,
        "**What runs.** The release `jobwire-server` binary, first with the SQLite store, \
         then with the memory store, {minutes} min each under the same load, a process of \
         its own: `bench/src/bin/soak.rs` (release), both facades at once, each as its own \
         tenant with its own client. Per facade: {CALLERS} mixed callers (tasks on a \
         two-thread tokio runtime for `jobwire`, threads for `jobwire-blocking`) that each \
         draw an operation, 0–200 ms apart — `run` of a small `echo` (35 %), `submit` of a \
         0.05–0.5 s `sleep` then `job.wait()` (20 %), `submit` of `steps` (4 steps) then \
         `job.events()` to its `done`, every chunk and progress checked (15 %), `submit` of \
         a 30 s `sleep` then `job.cancel()` (10 %), three pages of 50 through \
         `client.jobs()` (10 %), `run` of `fail`, whose `JobFailed` is the right answer \
         (10 %); {LARGE} large callers, 0.5–1.5 s apart, in turns `echo` of 200–400 KiB \
         and a command service's 1–2 MiB output (`blob`, `/bin/sh` writing `{{\"blob\": \
         \"xxx…\"}}`) awaited by `run` or followed by `job.events()`; one `client.events()` \
         follower for the whole run, whose event ids must increase. Every answer is checked; \
         each operation is bounded by `client.within(60 s)`, so a hang counts as a \
         `timeout` failure. Retries are counted from the SDK's `retrying` events.\n"
    );
    let _ = writeln!(
        out,
        "**Faults** (`--fault`, seed 7), so retries happen: {}.\n",
        FAULTS
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "**Bounds.** `--event-retention {EVENT_RETENTION} --idempotency-window \
         {EVENT_RETENTION} --job-retention {JOB_RETENTION}` on both (a finished job's \
         events and a submit's key go after a minute instead of an hour and a day, a \
         finished job after two minutes instead of 7 days, so that both stores reach a \
         steady size within a run); the memory store has `--max-stored-bytes \
         {MEMORY_BUDGET}` per tenant (the oldest finished jobs are removed past it, instead \
         of a budget of 1 GiB).\n"
    );
    let _ = writeln!(
        out,
        "**Samples.** Every 10 s, of each process: resident memory (`VmRSS` of \
         `/proc/<pid>/status`, read every second, the sample the mean of its ten \
         readings: one reading swings by ±10 % with the bodies in flight), open descriptors (entries of `/proc/<pid>/fd`), CPU since \
         the last sample (`/proc/<pid>/stat`, as a share of one core), the load's \
         operations so far, and the load's heap in use (bytes allocated and not freed, \
         counted by its allocator; resident memory adds what the allocator keeps). Both \
         programs run glibc's malloc with one arena per core and blocks of 128 KiB and \
         more mapped on their own (the server sets this itself; the load gets \
         `MALLOC_ARENA_MAX` and `MALLOC_MMAP_THRESHOLD_`): with glibc's defaults, each of \
         up to eight arenas per core keeps what its threads freed and large bodies are \
         carved from them, so resident memory stood several times above the heap in use \
         and crept up; and the load hands its allocator's free pages back to the kernel \
         once a second (`malloc_trim`), as glibc otherwise keeps the holes freed blocks \
         leave, and its resident memory would follow the most it ever held rather than \
         what it holds (the server does not). **Pass:** no operation failed, the server stayed up, and each \
         process's resident memory grew less than {:.0} % from the end of the \
         warm-up ({} s: finished jobs start to go by their retention, the memory store's budget \
         has filled, and the allocators' \
         pools and SQLite's page cache reach their working size) to the end, both read off \
         the least-squares line through the samples after the warm-up (one sample swings by \
         5–10 % from the next).\n",
        MAX_GROWTH * 100.0,
        warm_up(minutes).as_secs()
    );
    for (run, (ok, why)) in runs.iter().zip(verdicts) {
        store_section(&mut out, run, minutes, *ok, why);
    }
    out
}

fn store_section(out: &mut String, run: &Run, minutes: u64, ok: bool, why: &str) {
    let _ = writeln!(
        out,
        "## {} store: {}\n",
        run.store,
        if ok {
            "passed".to_owned()
        } else {
            format!("**failed** — {why}")
        }
    );
    let _ = writeln!(
        out,
        "Server: `jobwire-server {}`\n",
        run.flags
            .iter()
            .map(|f| if f.contains(' ') || f.contains('*') {
                format!("'{f}'")
            } else {
                f.clone()
            })
            .collect::<Vec<_>>()
            .join(" ")
            .replace(std::env::temp_dir().to_string_lossy().as_ref(), "$TMPDIR")
    );
    let disk = run.samples.iter().any(|s| s.disk.is_some());
    let _ = writeln!(
        out,
        "| t (s) | server RSS MiB | server fds | server CPU | client RSS MiB | client heap MiB | client fds | client CPU | ops ok | ops failed |{}\n|---|---|---|---|---|---|---|---|---|---|{}",
        if disk { " SQLite files MiB |" } else { "" },
        if disk { "---|" } else { "" }
    );
    let mut unreadable = Vec::new();
    for (i, s) in run.samples.iter().enumerate() {
        let before = i.checked_sub(1).and_then(|j| run.samples.get(j));
        let cpu = |now: Option<u64>, then: Option<u64>, at: Duration| match (now, then, before) {
            (Some(now), Some(then), Some(b)) => {
                let secs = (at - b.at).as_secs_f64();
                format!(
                    "{:.0} %",
                    (now.saturating_sub(then)) as f64 / TICKS / secs * 100.0
                )
            }
            _ => "—".to_owned(),
        };
        let mut fds = |p: &Proc| match &p.fds {
            Ok(n) => n.to_string(),
            Err(e) => {
                if !unreadable.contains(e) {
                    unreadable.push(e.clone());
                }
                "n/a".to_owned()
            }
        };
        let (server_fds, client_fds) = (fds(&s.server), fds(&s.client));
        let _ = writeln!(
            out,
            "| {:.0} | {} | {server_fds} | {} | {} | {} | {client_fds} | {} | {} | {} |{}",
            s.at.as_secs_f64(),
            mib(s.server.rss_kib),
            cpu(
                s.server.cpu_ticks,
                before.and_then(|b| b.server.cpu_ticks),
                s.at
            ),
            mib(s.client.rss_kib),
            mib(s.client_heap.map(|b| b / 1024)),
            cpu(
                s.client.cpu_ticks,
                before.and_then(|b| b.client.cpu_ticks),
                s.at
            ),
            s.ok,
            s.failed,
            s.disk
                .map(|d| format!(" {:.1} |", d as f64 / 1048576.0))
                .unwrap_or_default()
        );
    }
    for e in unreadable {
        let _ = writeln!(out, "\nn/a: {e}.");
    }
    let _ = writeln!(out);
    for (who, rss) in [
        (
            "server",
            (|s: &Sample| s.server.rss_kib) as fn(&Sample) -> Option<u64>,
        ),
        ("client", |s: &Sample| s.client.rss_kib),
    ] {
        if let Some((first, last, g)) = growth(&run.samples, minutes, rss) {
            let peak = run
                .samples
                .iter()
                .filter(|s| s.at >= warm_up(minutes))
                .filter_map(rss)
                .max()
                .unwrap_or(last);
            let _ = writeln!(
                out,
                "- The {who}'s memory after the warm-up, on the fitted line: {} → {} MiB, {:+.1} % (peak {} MiB; \
                 limit +{:.0} %).",
                mib(Some(first)),
                mib(Some(last)),
                g * 100.0,
                mib(Some(peak)),
                MAX_GROWTH * 100.0
            );
        }
    }
    for problem in &run.problems {
        let _ = writeln!(out, "- {problem}.");
    }
    let Some(summary) = &run.summary else {
        let _ = writeln!(out);
        return;
    };
    let _ = writeln!(
        out,
        "- Operations: {} done right, {} failed, in {:.0} s.\n",
        summary["ok"],
        summary["failed"],
        summary["seconds"].as_f64().unwrap_or(0.0)
    );
    counts_table(
        out,
        "Operations done right, by facade and operation",
        "facade / operation",
        &summary["done"],
    );
    counts_table(
        out,
        "Failures, by facade, operation and kind",
        "facade / operation / kind",
        &summary["failures"],
    );
    if let Some(examples) = summary["failure_examples"]
        .as_array()
        .filter(|e| !e.is_empty())
    {
        let _ = writeln!(out, "The first failures:\n\n```text");
        for e in examples {
            let _ = writeln!(out, "{}", e.as_str().unwrap_or_default());
        }
        let _ = writeln!(out, "```\n");
    }
    counts_table(
        out,
        "Retries, by facade and reason (the status or error of the attempt retried)",
        "facade / reason",
        &summary["retries"],
    );
    counts_table(
        out,
        "Events the `client.events()` followers saw",
        "facade / kind",
        &summary["events"],
    );
}

fn counts_table(out: &mut String, title: &str, key: &str, counts: &Value) {
    let Some(counts) = counts.as_object() else {
        return;
    };
    if counts.is_empty() {
        let _ = writeln!(out, "{title}: none.\n");
        return;
    }
    let total: u64 = counts.values().filter_map(Value::as_u64).sum();
    let _ = writeln!(
        out,
        "{title} ({total} in all):\n\n| {key} | count |\n|---|---|"
    );
    for (k, v) in counts {
        let _ = writeln!(out, "| {k} | {v} |");
    }
    let _ = writeln!(out);
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

    fn samples(rss: &[u64]) -> Vec<Sample> {
        let proc = |kib| Proc {
            rss_kib: Some(kib),
            fds: Ok(0),
            cpu_ticks: None,
        };
        rss.iter()
            .enumerate()
            .map(|(i, &kib)| Sample {
                at: EVERY * (i as u32 + 1),
                server: proc(kib),
                client: proc(kib),
                ok: 0,
                failed: 0,
                client_heap: None,
                disk: None,
            })
            .collect()
    }

    #[test]
    fn a_sample_holds_the_mean_of_its_readings() {
        let instant = || Proc {
            rss_kib: Some(7),
            fds: Ok(0),
            cpu_ticks: None,
        };
        assert_eq!(instant().with_mean_rss(vec![10, 20, 33]).rss_kib, Some(21));
        assert_eq!(
            instant().with_mean_rss(vec![]).rss_kib,
            Some(7),
            "no readings"
        );
    }

    #[test]
    fn growth_follows_the_trend_not_the_swings() {
        // Ten minutes: the warm-up takes the first three, then a flat level with swings
        // of ±10 %, one high sample at the end.
        let mut rss = vec![50; 17];
        for i in 0..43 {
            rss.push([100, 110, 100, 90][i % 4]);
        }
        rss.push(110);
        let (first, last, g) = growth(&samples(&rss), 10, |s| s.server.rss_kib).unwrap();
        assert!(g.abs() < 0.03, "{first} → {last}: {g}");
        // A steady climb shows whatever the swings.
        let climbing: Vec<u64> = (0..60)
            .map(|i| 100 + i + [0, 8, 0, 4][i as usize % 4])
            .collect();
        let (first, last, g) = growth(&samples(&climbing), 10, |s| s.client.rss_kib).unwrap();
        assert!(first < last && g > 0.25, "{first} → {last}: {g}");
    }
}
