//! Figure 7, event fan-out: `--clients N` clients, each submitting one job and following
//! its events through the async facade until the `done` it waits for; the server's CPU
//! time per event delivered. `--mode` is one of
//!
//! - `job`: a `steps` job (10 steps), followed with `job.events()`
//!   (`GET /v1/jobs/{id}/events`);
//! - `events-job`: the same job, followed with `client.events().job(id)`
//!   (`GET /v1/events?job={id}`);
//! - `events-service`: clients in pairs, each pair with a command service of its own (a
//!   shell script: a pause, then 10 progress and 10 log lines); each client submits one
//!   job to its pair's service and follows `client.events().service(id).after(0)`
//!   (`GET /v1/events?service={id}`) until both of the pair's `done`s. Needs a server
//!   started with `--allow-commands`.
//!
//! Each client follows a stream of its own, so the server has up to N subscribers, each
//! getting only the events of its filter. The clients of a wave submit 128 at a time
//! (N connections opened in one burst overflow the server's listen queue, and the
//! retried SYNs take seconds) and each follows as soon as its submit is answered; the
//! jobs last `--hold-ms` (default N ms, at least 100: steps that far apart over 10
//! steps, or the script's pause), so all of a wave follow at once unless the machine is
//! too slow to start them in that time — the line says how many streams were open at
//! most (`peak_streams`). At least `--jobs J` jobs run (default 1000): waves of N
//! clients one after another until then, so a small N still measures enough CPU time.
//! The server's CPU time is read from `/proc/<pid>/stat` of `JOBWIRE_BENCH_SERVER_PID`
//! (user + system, every thread) before the first wave and after the last; the command
//! services are registered before, outside the measurement. The CPU of the programs the
//! server ran (its reaped children: a command's launcher and program) is apart, as
//! `children_cpu_s`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use jobwire::{CommandSpec, EventKind, ServiceSpec};
use jobwire_bench::{arg, emit, server_from_env, server_pid};
use serde_json::json;

/// Clients per command service in `events-service` mode.
const PAIR: usize = 2;
/// Submits in flight at once.
const SUBMITS: usize = 128;

/// The program of the `events-service` jobs: a pause of `$1` seconds (the hold), then 10 progress lines and 10 log lines, then the output (its environment has
/// no `PATH`: the shell's builtins and absolute paths).
const LOOP: &str =
    "/bin/sleep \"$1\"; i=0; while [ $i -lt 10 ]; do i=$((i+1)); echo \"@progress 0.$i step $i\"; \
                    echo \"finished step $i\" >&2; done; echo '{\"steps\":10}'";

/// The CPU time process `pid` has used so far, user plus system, all threads; and that
/// of its children it has reaped (the programs of command services, and anything they
/// ran), which the server's own does not count.
fn process_cpu(pid: u32) -> Result<(Duration, Duration), String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map_err(|e| format!("/proc/{pid}/stat: {e}"))?;
    // The fields after the command name, which is in parentheses and may hold spaces:
    // the 14th to 17th of the whole line are utime, stime, cutime and cstime, in clock
    // ticks.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("an unreadable /proc stat line")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> Result<u64, String> {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| format!("no field {i} in /proc/{pid}/stat"))
    };
    // SAFETY: sysconf takes a plain integer and has no other effect.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let seconds = |t: u64| Duration::from_secs_f64(t as f64 / per_second);
    Ok((
        seconds(ticks(11)? + ticks(12)?),
        seconds(ticks(13)? + ticks(14)?),
    ))
}

/// What one client saw: events delivered to it, and what went wrong if it did not see
/// what it waited for.
struct Seen {
    events: usize,
    error: Option<String>,
}

impl Seen {
    fn failed(error: impl std::fmt::Display) -> Self {
        Seen {
            events: 0,
            error: Some(error.to_string()),
        }
    }
}

/// Reads `events` until `dones` `done` events have come (or the stream fails or ends).
async fn follow(mut events: jobwire::EventStream, dones: usize) -> Seen {
    let mut seen = Seen::failed("the stream ended before the done");
    let mut done = 0;
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(event) => event,
            Err(e) => {
                seen.error = Some(e.to_string());
                return seen;
            }
        };
        seen.events += 1;
        if matches!(event.kind, EventKind::Done(_)) {
            done += 1;
            if done == dones {
                seen.error = None;
                return seen;
            }
        }
    }
    seen
}

/// The first half of a client: its submit; answers the stream it then follows and the
/// number of `done`s it waits for.
async fn submit(
    client: jobwire::Client,
    mode: &str,
    steps: &serde_json::Value,
    service: Option<String>,
) -> Result<(jobwire::EventStream, usize), Seen> {
    match (mode, service) {
        ("events-service", Some(service)) => match client.submit(&service, &json!({})).await {
            Ok(_) => Ok((client.events().service(service).after(0), PAIR)),
            Err(e) => Err(Seen::failed(e)),
        },
        ("job", _) => match client.submit("steps", steps).await {
            Ok(job) => Ok((job.events(), 1)),
            Err(e) => Err(Seen::failed(e)),
        },
        ("events-job", _) => match client.submit("steps", steps).await {
            Ok(job) => Ok((client.events().job(job.id()), 1)),
            Err(e) => Err(Seen::failed(e)),
        },
        _ => Err(Seen::failed("no such mode")),
    }
}

/// Streams open now, and the most open at once.
#[derive(Default)]
struct Open {
    now: AtomicUsize,
    peak: AtomicUsize,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, token) = server_from_env()?;
    let pid = server_pid().ok_or("set JOBWIRE_BENCH_SERVER_PID to the server's pid")?;
    let mode: String = arg("--mode", "job".to_owned());
    let clients: usize = arg("--clients", 100).max(PAIR);
    let jobs: usize = arg("--jobs", 1000);
    // Long enough for every client of a wave to be following before the first jobs end.
    let hold_ms: u64 = arg("--hold-ms", (clients as u64).max(100));
    let waves = jobs.div_ceil(clients).max(1);
    if !["job", "events-job", "events-service"].contains(&mode.as_str()) {
        return Err(format!("unknown --mode {mode:?}").into());
    }
    // As many idle connections kept as there are streams: the next wave reuses them.
    let transport = jobwire::transport::HyperTransport::builder()
        .pool_max_idle_per_host(clients + SUBMITS)
        .build()?;
    let client = jobwire::Client::builder()
        .base_url(&url)
        .token(&token)
        .transport(transport)
        .build()?;
    let steps = json!({ "steps": 10, "interval_ms": hold_ms / 10 });
    let hold = format!("{:.3}", hold_ms as f64 / 1000.0);

    // A service per pair of clients and wave (a fresh one each wave, so its history is
    // only that wave's jobs), registered before the measurement.
    let mut services: Vec<Vec<Option<String>>> = vec![vec![None; clients]; waves];
    if mode == "events-service" {
        let mut command = CommandSpec::new("/bin/sh");
        command.args = vec!["-c".into(), LOOP.into(), "sh".into(), hold];
        let stamp = std::process::id();
        for (wave, names) in services.iter_mut().enumerate() {
            let created: Vec<String> = futures_util::stream::iter(0..clients.div_ceil(PAIR))
                .map(|pair| {
                    let name = format!("fan-{stamp}-{wave}-{pair}");
                    let spec = ServiceSpec::command(name, command.clone());
                    let client = client.clone();
                    async move {
                        let service = client.create_service(&spec).await?;
                        Ok::<_, jobwire::Error>(service.id().to_owned())
                    }
                })
                .buffered(64)
                .collect::<Vec<_>>()
                .await
                .into_iter()
                .collect::<Result<_, _>>()?;
            for (i, name) in names.iter_mut().enumerate() {
                *name = Some(created[i / PAIR].clone());
            }
        }
    }

    let open = Open::default();
    let cpu_before = process_cpu(pid)?;
    let started = Instant::now();
    let (mut events, mut errors) = (0, 0);
    let mut kinds: std::collections::BTreeMap<String, usize> = Default::default();
    for names in services {
        // Submits a few hundred at a time (so connections are not all opened in one
        // burst, which overflows the server's listen queue), each client then following
        // its stream until its `done`s while the others start.
        let seen: Vec<Seen> = futures_util::stream::iter(names)
            .map(|service| submit(client.clone(), &mode, &steps, service))
            .buffer_unordered(SUBMITS)
            .map(|submitted| async {
                let (stream, dones) = submitted?;
                let now = open.now.fetch_add(1, Ordering::Relaxed) + 1;
                open.peak.fetch_max(now, Ordering::Relaxed);
                let seen = follow(stream, dones).await;
                open.now.fetch_sub(1, Ordering::Relaxed);
                Ok::<_, Seen>(seen)
            })
            .buffer_unordered(clients)
            .map(|seen| seen.unwrap_or_else(|failed| failed))
            .collect()
            .await;
        for seen in seen {
            events += seen.events;
            if let Some(error) = seen.error {
                errors += 1;
                *kinds.entry(error).or_default() += 1;
            }
        }
    }
    let took = started.elapsed();
    let (cpu, children_cpu) = process_cpu(pid)?;
    let (cpu, children_cpu) = (
        cpu.saturating_sub(cpu_before.0),
        children_cpu.saturating_sub(cpu_before.1),
    );
    for (error, n) in kinds {
        eprintln!("fanout: {n} clients failed: {error}");
    }
    emit(json!({
        "mode": mode,
        "clients": clients,
        "jobs": waves * clients,
        "events": events,
        "errors": errors,
        "peak_streams": open.peak.load(Ordering::Relaxed),
        "seconds": took.as_secs_f64(),
        "server_cpu_s": cpu.as_secs_f64(),
        "server_cpu_us_per_event": cpu.as_secs_f64() * 1e6 / events.max(1) as f64,
        "children_cpu_s": children_cpu.as_secs_f64(),
    }));
    Ok(())
}
