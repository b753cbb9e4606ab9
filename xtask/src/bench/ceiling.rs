//! Figure 3, the server's ceiling: closed loops of 64 clients that each submit a trivial
//! job and wait for its result, side by side in one run — jobwire on its three stores,
//! two jobwire servers on one PostgreSQL database behind nginx, graphile-worker on the
//! same database server, and pgbench's single-row `INSERT` rate there, the rate the
//! database itself commits at.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::pg_cluster::{free_port, PgCluster, Settings};
use super::{against, pinned_command, release_server, Env, Sizes, Spread, TOKEN};

/// The graphile-worker closed loop and its pinned npm dependencies.
const GRAPHILE: &str = "bench/graphile";

/// One system's figures in one run.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Measured {
    /// Jobs (or transactions, or requests) a second.
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Answers that were not a finished job (non-2xx, socket errors, failed jobs).
    errors: f64,
}

/// The systems, in the table's order.
const MEMORY: &str = "jobwire, memory store";
const SQLITE: &str = "jobwire, SQLite store";
const POSTGRES: &str = "jobwire, PostgreSQL store";
const TWO: &str = "two jobwire servers, one PostgreSQL database, behind nginx";
const GRAPHILE_WORKER: &str = "graphile-worker 0.16 (Node)";
const PGBENCH: &str = "pgbench, one single-row `INSERT` per transaction";
const HEALTH: &str = "`GET /v1/health`, memory store (the HTTP stack alone)";
const ORDER: [&str; 7] = [
    MEMORY,
    SQLITE,
    POSTGRES,
    TWO,
    GRAPHILE_WORKER,
    PGBENCH,
    HEALTH,
];

pub(super) fn figure_3(env: &Env, sizes: &Sizes, out: &mut String) -> Result<(), String> {
    println!("figure 3: the server's ceiling");
    ensure_nginx()?;
    ensure_graphile()?;
    // pgbench's 64 clients, two servers' pools and graphile-worker's pool must fit in
    // max_connections (never at once, but a closed pool's backends take a moment to go).
    let cluster = PgCluster::launch(Settings::durable(300))?
        .ok_or("figure 3 needs PostgreSQL's server binaries (Debian's package `postgresql`)")?;
    let seconds = sizes.ceiling_seconds;
    let mut runs: BTreeMap<&str, Vec<Measured>> = BTreeMap::new();
    for run in 0..sizes.runs {
        println!("figure 3, run {} of {}", run + 1, sizes.runs);
        let memory = release_server(env, &["--memory"])?;
        runs.entry(HEALTH)
            .or_default()
            .push(wrk(env, &memory.url, "health.lua", seconds)?);
        runs.entry(MEMORY)
            .or_default()
            .push(jobs(env, &memory.url, seconds)?);
        drop(memory);

        let dir = std::env::temp_dir().join(format!("jobwire-bench-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let sqlite = release_server(env, &["--data-dir", &dir.to_string_lossy()])?;
        runs.entry(SQLITE)
            .or_default()
            .push(jobs(env, &sqlite.url, seconds)?);
        drop(sqlite);
        let _ = std::fs::remove_dir_all(&dir);

        let url = cluster.database(&format!("jobwire_{run}"))?;
        let one = release_server(env, &["--database-url", &url])?;
        runs.entry(POSTGRES)
            .or_default()
            .push(jobs(env, &one.url, seconds)?);
        drop(one);

        let url = cluster.database(&format!("jobwire_two_{run}"))?;
        let a = release_server(env, &["--database-url", &url])?;
        let b = release_server(env, &["--database-url", &url])?;
        let proxy = Nginx::start(env, &a.url, &b.url)?;
        runs.entry(TWO)
            .or_default()
            .push(jobs(env, &proxy.url, seconds)?);
        drop(proxy);
        drop((a, b));

        let url = cluster.database(&format!("graphile_{run}"))?;
        runs.entry(GRAPHILE_WORKER)
            .or_default()
            .push(graphile(env, &url, seconds)?);

        let name = format!("pgbench_{run}");
        cluster.database(&name)?;
        runs.entry(PGBENCH)
            .or_default()
            .push(pgbench(env, &cluster, &name, seconds)?);
    }
    write_figure(out, sizes, &runs, &cluster.version());
    Ok(())
}

fn write_figure(out: &mut String, sizes: &Sizes, runs: &BTreeMap<&str, Vec<Measured>>, pg: &str) {
    let get = |system: &str| runs.get(system).map_or(&[][..], Vec::as_slice);
    let column = |system: &str, f: fn(&Measured) -> f64| {
        Spread::of(&get(system).iter().map(f).collect::<Vec<_>>())
    };
    let _ = writeln!(
        out,
        "## 3. Server ceiling\n\n**What:** closed loops of 64 clients that each submit a \
         trivial job and wait for its result, then submit the next, side by side in one run: \
         jobwire (`POST /v1/services/echo/jobs` with `Prefer: wait=30`, answered once the job \
         is done) on each store, two jobwire servers on one PostgreSQL database behind nginx \
         (`deploy/nginx.conf`, its ports adapted), graphile-worker (`addJob`, then await its \
         `job:success`; worker concurrency 64, pool 20) on the same PostgreSQL, and pgbench's \
         single-row `INSERT` rate with 64 clients there. **How:** one PostgreSQL {pg} \
         cluster made for the run (default durability: `fsync` and `synchronous_commit` \
         on), a fresh database for each measurement; wrk (`bench/wrk/*.lua`), 1 thread, 64 \
         connections, 1 s of warm-up then {seconds} s measured; graphile-worker by \
         `bench/graphile/closed_loop.js` (same warm-up and length); pgbench `-c 64 -j 1 -T \
         {seconds}`, its p50 and p99 from its per-transaction log. jobwire servers and the \
         graphile-worker process on core 0; wrk, nginx and pgbench on core 1; PostgreSQL \
         unpinned. **Baselines:** pgbench (what the database commits), graphile-worker (a \
         job queue on the same database), the memory store, one server. **Command:** \
         `cargo xtask bench{quick} --figure 3`.\n",
        seconds = sizes.ceiling_seconds,
        pg = if pg.is_empty() { "15" } else { pg },
        quick = if sizes.quick { " --quick" } else { "" },
    );
    let _ = writeln!(
        out,
        "| system | jobs/s | p50 ms | p99 ms | errors |\n|---|---|---|---|---|"
    );
    for system in ORDER {
        let unit = match system {
            PGBENCH => " (transactions/s)",
            HEALTH => " (requests/s)",
            _ => "",
        };
        let _ = writeln!(
            out,
            "| {system}{unit} | {} | {} | {} | {} |",
            column(system, |m| m.per_s).show(0),
            column(system, |m| m.p50_ms).show(1),
            column(system, |m| m.p99_ms).show(1),
            column(system, |m| m.errors).show(0),
        );
    }
    // Each ratio within a run, then the median.
    let ratio = |a: &str, b: &str| {
        super::ratios(
            &get(a)
                .iter()
                .map(|m| Value::from(m.per_s))
                .collect::<Vec<_>>(),
            &get(b)
                .iter()
                .map(|m| Value::from(m.per_s))
                .collect::<Vec<_>>(),
            |a, b| Some(a.as_f64()? / b.as_f64()?),
        )
    };
    let pg_p99 = column(POSTGRES, |m| m.p99_ms);
    let two_errors = column(TWO, |m| m.errors);
    let two = ratio(TWO, POSTGRES);
    let rows = [
        (
            "jobwire on PostgreSQL ÷ pgbench TPS",
            ratio(POSTGRES, PGBENCH).show(3),
            "≥ 0.3",
            against(ratio(POSTGRES, PGBENCH).median, 0.3, false),
        ),
        (
            "jobwire on PostgreSQL ÷ graphile-worker",
            ratio(POSTGRES, GRAPHILE_WORKER).show(2),
            "≥ 6",
            against(ratio(POSTGRES, GRAPHILE_WORKER).median, 6.0, false),
        ),
        (
            "jobwire on PostgreSQL, p99 ms",
            pg_p99.show(1),
            "≤ 25",
            against(pg_p99.median, 25.0, true),
        ),
        (
            "jobwire on SQLite ÷ on memory",
            ratio(SQLITE, MEMORY).show(3),
            "≥ 0.6",
            against(ratio(SQLITE, MEMORY).median, 0.6, false),
        ),
        (
            "two servers ÷ one (PostgreSQL), without errors",
            two.show(3),
            "≥ 1, 0 errors",
            if two_errors.max > 0.0 {
                format!("**missed**: {} errors", two_errors.max)
            } else {
                against(two.median, 1.0, false)
            },
        ),
        (
            "jobwire on memory ÷ `GET /v1/health`",
            ratio(MEMORY, HEALTH).show(3),
            "≥ 0.5",
            against(ratio(MEMORY, HEALTH).median, 0.5, false),
        ),
    ];
    let _ = writeln!(out, "\n| ratio | value | goal | |\n|---|---|---|---|");
    for (what, value, goal, verdict) in rows {
        let _ = writeln!(out, "| {what} | {value} | {goal} | {verdict} |");
    }
    let _ = writeln!(out);
}

/// jobwire's closed loop against `url`: 1 s of warm-up, then `seconds` measured.
fn jobs(env: &Env, url: &str, seconds: u32) -> Result<Measured, String> {
    wrk(env, url, "submit_wait.lua", 1)?;
    wrk(env, url, "submit_wait.lua", seconds)
}

/// wrk with `script` against `url`, 64 connections: its rate, percentiles and errors
/// (the script prints `p50_us=… p99_us=… non2xx=…`).
fn wrk(env: &Env, url: &str, script: &str, seconds: u32) -> Result<Measured, String> {
    let output = env
        .client("wrk")
        .args(["-t1", "-c64", &format!("-d{seconds}s"), "-s"])
        .arg(format!("bench/wrk/{script}"))
        .arg(url)
        .env("JOBWIRE_TOKEN", TOKEN)
        .output()
        .map_err(|e| format!("wrk: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_wrk(&text).ok_or_else(|| format!("wrk said: {text}"))
}

/// The figures of wrk's report (with the scripts' own `p50_us=` line).
fn parse_wrk(text: &str) -> Option<Measured> {
    let per_s = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Requests/sec:"))?
        .trim()
        .parse()
        .ok()?;
    let field = |name: &str| -> Option<f64> {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.parse().ok())
    };
    // "Socket errors: connect 0, read 1, write 0, timeout 0"
    let socket: f64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map_or(0.0, |l| {
            l.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<f64>().ok())
                .sum()
        });
    Some(Measured {
        per_s,
        p50_ms: field("p50_us=")? / 1000.0,
        p99_ms: field("p99_us=")? / 1000.0,
        errors: field("non2xx=")? + socket,
    })
}

/// graphile-worker's closed loop on the database at `url`.
fn graphile(env: &Env, url: &str, seconds: u32) -> Result<Measured, String> {
    // The queue's process on the servers' core.
    let output = pinned_command(env.pinned.then_some("0"), "node")
        .arg(format!("{GRAPHILE}/closed_loop.js"))
        .env("DATABASE_URL", url)
        .env("SECONDS", seconds.to_string())
        .env("WARMUP", "1")
        .env("CLIENTS", "64")
        .env("CONCURRENCY", "64")
        .env("POOL", "20")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("node: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("graphile-worker's closed loop failed: {text}"));
    }
    let line: Value = text
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("graphile-worker's closed loop said: {text}"))?;
    let get = |name: &str| line[name].as_f64().unwrap_or(f64::NAN);
    Ok(Measured {
        per_s: get("jobs_per_s"),
        p50_ms: get("p50_ms"),
        p99_ms: get("p99_ms"),
        errors: get("errors"),
    })
}

/// pgbench's single-row `INSERT` rate on database `name`, 64 clients; p50 and p99 from
/// its per-transaction log.
fn pgbench(env: &Env, cluster: &PgCluster, name: &str, seconds: u32) -> Result<Measured, String> {
    cluster.psql(
        name,
        "CREATE TABLE single_insert (id bigserial PRIMARY KEY, v integer NOT NULL)",
    )?;
    let dir = std::env::temp_dir().join(format!("jobwire-bench-pgbench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let script = dir.join("insert.sql");
    std::fs::write(
        &script,
        "\\set v random(1, 1000000)\nINSERT INTO single_insert (v) VALUES (:v);\n",
    )
    .map_err(|e| format!("{}: {e}", script.display()))?;
    let output = pinned_command(
        env.pinned.then_some("1"),
        &cluster.client_program("pgbench").to_string_lossy(),
    )
    .args(cluster.connection_args())
    .args([
        "-n",
        "-c",
        "64",
        "-j",
        "1",
        "-T",
        &seconds.to_string(),
        "-l",
        "-f",
    ])
    .arg(&script)
    .arg(name)
    .current_dir(&dir)
    .output()
    .map_err(|e| format!("pgbench: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        return Err(format!(
            "pgbench failed: {text}{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut latencies = pgbench_latencies(&dir)?;
    let _ = std::fs::remove_dir_all(&dir);
    latencies.sort_by(f64::total_cmp);
    let tps = text
        .lines()
        .find_map(|l| l.strip_prefix("tps = "))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| format!("pgbench said: {text}"))?;
    let failed = text
        .lines()
        .find_map(|l| l.strip_prefix("number of failed transactions: "))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    Ok(Measured {
        per_s: tps,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        errors: failed,
    })
}

/// Every transaction's latency (ms) in pgbench's logs in `dir` (`pgbench_log.*`: client,
/// transaction, latency in µs, …).
fn pgbench_latencies(dir: &Path) -> Result<Vec<f64>, String> {
    let mut latencies = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if !path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("pgbench_log"))
        {
            continue;
        }
        let text =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        latencies.extend(
            text.lines()
                .filter_map(|l| l.split_whitespace().nth(2)?.parse::<f64>().ok())
                .map(|us| us / 1000.0),
        );
    }
    Ok(latencies)
}

/// The `p`th percentile (nearest rank) of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// nginx in front of two servers, with `deploy/nginx.conf` adapted to their ports;
/// stopped when dropped.
struct Nginx {
    child: Child,
    url: String,
    dir: std::path::PathBuf,
}

impl Nginx {
    fn start(env: &Env, a: &str, b: &str) -> Result<Nginx, String> {
        let conf = std::fs::read_to_string("deploy/nginx.conf")
            .map_err(|e| format!("deploy/nginx.conf: {e}"))?;
        let dir = std::env::temp_dir().join(format!("jobwire-bench-nginx-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let port = free_port()?;
        let conf = adapt_nginx_conf(&conf, host_port(a), host_port(b), port, &dir);
        let path = dir.join("nginx.conf");
        std::fs::write(&path, conf).map_err(|e| format!("{}: {e}", path.display()))?;
        // The proxy beside the load generator.
        let child = pinned_command(env.pinned.then_some("1"), "nginx")
            .args(["-e", "stderr", "-g", "daemon off;", "-c"])
            .arg(&path)
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("nginx: {e}"))?;
        let mut nginx = Nginx {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                return Err(format!("nginx exited ({status})"));
            }
            if started.elapsed() > Duration::from_secs(10) {
                return Err("nginx did not listen within 10 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(nginx)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers too (a SIGKILL would leave them
        // serving); SIGKILL only when it does not exit within 5 s.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `http://127.0.0.1:7878` → `127.0.0.1:7878`.
fn host_port(url: &str) -> &str {
    url.trim_start_matches("http://").trim_end_matches('/')
}

/// `deploy/nginx.conf` for servers at `a` and `b` (`host:port`), listening on `port`,
/// its pid and temporary files in `dir`, without its comments.
fn adapt_nginx_conf(conf: &str, a: &str, b: &str, port: u16, dir: &Path) -> String {
    let dir = dir.to_string_lossy();
    // Its comments, which name the deployment's ports, go.
    let conf: String = conf
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    conf.replace("server 127.0.0.1:7878 ", &format!("server {a} "))
        .replace("server 127.0.0.1:7879 ", &format!("server {b} "))
        .replace(
            "listen 127.0.0.1:8080;",
            &format!("listen 127.0.0.1:{port};"),
        )
        .replace("/tmp/jobwire-nginx", &format!("{dir}/nginx"))
}

/// nginx, from Debian's package when it is missing.
fn ensure_nginx() -> Result<(), String> {
    if Command::new("nginx").arg("-v").output().is_ok() {
        return Ok(());
    }
    super::apt_install("nginx")
}

/// graphile-worker, installed from npm as `bench/graphile/package-lock.json` pins it.
fn ensure_graphile() -> Result<(), String> {
    if Path::new(GRAPHILE)
        .join("node_modules/graphile-worker")
        .is_dir()
    {
        return Ok(());
    }
    let mut command = Command::new("npm");
    command
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(GRAPHILE);
    crate::run_command(command)
        .map_err(|e| format!("{e} (figure 3 needs Node.js and npm for graphile-worker)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_reports_are_read_with_their_errors() {
        let text = "Running 3s test @ http://127.0.0.1:1\n  1 threads and 64 connections\n\
                    \x20 Socket errors: connect 0, read 2, write 0, timeout 1\n\
                    Requests/sec:   8918.56\nTransfer/sec:      3.07MB\n\
                    p50_us=6639 p99_us=20135 non2xx=4\n";
        assert_eq!(
            parse_wrk(text),
            Some(Measured {
                per_s: 8918.56,
                p50_ms: 6.639,
                p99_ms: 20.135,
                errors: 7.0,
            })
        );
        assert_eq!(parse_wrk("Requests/sec: 1\n"), None);
    }

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }

    #[test]
    fn the_deploy_nginx_conf_is_adapted_to_the_bench_ports() {
        let conf = std::fs::read_to_string("../deploy/nginx.conf").unwrap();
        let adapted = adapt_nginx_conf(
            &conf,
            "127.0.0.1:4001",
            "127.0.0.1:4002",
            4000,
            Path::new("/x"),
        );
        assert!(adapted.contains("server 127.0.0.1:4001 max_fails"));
        assert!(adapted.contains("server 127.0.0.1:4002 max_fails"));
        assert!(adapted.contains("listen 127.0.0.1:4000;"));
        assert!(adapted.contains("pid /x/nginx.pid;"));
        for gone in ["7878", "7879", "8080", "/tmp/"] {
            assert!(!adapted.contains(gone), "{gone} left in {adapted}");
        }
    }
}
