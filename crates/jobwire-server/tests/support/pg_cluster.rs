//! A throwaway PostgreSQL cluster for tests: `initdb` into a temporary directory, a
//! server on a free loopback port, databases created on demand, everything stopped and
//! removed on drop.
//!
//! Only `std` is used, so both the integration tests and the store's unit tests can
//! include this file with `#[path]`. Every cluster has its own directory and port, so
//! tests running in parallel in one process may each start one.

use std::ffi::OsStr;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// How many times `start` tries a fresh port when the server does not come up (another
/// process may have taken the port between our probe and the server's bind).
const START_ATTEMPTS: usize = 3;

/// A running PostgreSQL cluster owned by the test; stopped and deleted on drop.
#[derive(Debug)]
pub struct PgCluster {
    /// Where `initdb`, `pg_ctl` and `createdb` were found.
    bin: PathBuf,
    /// The temporary directory: the data directory and the socket live inside.
    base: PathBuf,
    /// The data directory (`base/data`).
    data: PathBuf,
    /// The loopback TCP port the server listens on.
    port: u16,
    /// Whether server-side commands run as the `postgres` user (we are root).
    as_postgres: bool,
}

impl PgCluster {
    /// Starts a fresh cluster, or returns `None` (after printing why) when no PostgreSQL
    /// binaries can be found. Any other failure panics: the binaries are there, so the
    /// test must not pass silently.
    pub fn start() -> Option<PgCluster> {
        let Some(bin) = find_bin_dir() else {
            eprintln!(
                "skipping: no PostgreSQL server binaries (initdb, pg_ctl) in \
                 /usr/lib/postgresql/*/bin or on PATH"
            );
            return None;
        };
        let as_postgres = running_as_root();
        let base = unique_temp_dir();
        std::fs::create_dir_all(&base)
            .unwrap_or_else(|e| panic!("creating {}: {e}", base.display()));
        // From here on, a panic still stops the server and removes the directory.
        let mut cluster = PgCluster {
            data: base.join("data"),
            bin,
            base,
            port: 0,
            as_postgres,
        };
        if as_postgres {
            // PostgreSQL refuses to run as root: the postgres user owns the cluster.
            let out = Command::new("chown")
                .arg("postgres")
                .arg(&cluster.base)
                .output()
                .unwrap_or_else(|e| panic!("running chown: {e}"));
            check("chown postgres", &out);
        }
        let initdb = cluster.server_command("initdb", |c| {
            c.arg("-D")
                .arg(&cluster.data)
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"])
                // C collation: text compares bytewise, like the RFC 3339 times expect.
                .args(["--no-locale", "--no-sync"]);
        });
        check("initdb", &initdb);

        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            cluster.port = free_port();
            let options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                cluster.port,
                cluster.base.display()
            );
            let log = cluster.base.join("server.log");
            let started = cluster.server_command("pg_ctl", |c| {
                c.arg("-D")
                    .arg(&cluster.data)
                    .arg("-l")
                    .arg(&log)
                    .arg("-o")
                    .arg(&options)
                    .args(["-w", "start"]);
            });
            if started.status.success() {
                return Some(cluster);
            }
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            last_failure = format!("{}\n{server_log}", describe(&started));
        }
        panic!("pg_ctl start failed {START_ATTEMPTS} times: {last_failure}");
    }

    /// Creates database `name` and returns its URL,
    /// `postgres://postgres@127.0.0.1:PORT/NAME`.
    pub fn database(&self, name: &str) -> String {
        let port = self.port.to_string();
        let out = Command::new(self.client_binary("createdb"))
            .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", name])
            .output()
            .unwrap_or_else(|e| panic!("running createdb: {e}"));
        check(&format!("createdb {name}"), &out);
        format!("postgres://postgres@127.0.0.1:{port}/{name}")
    }

    /// Runs a server-side binary from the bin directory, as `postgres` when we are root.
    fn server_command(&self, name: &str, args: impl FnOnce(&mut Command)) -> Output {
        let program = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args([OsStr::new("-u"), OsStr::new("postgres"), OsStr::new("--")])
                .arg(&program);
            c
        } else {
            Command::new(&program)
        };
        // Not a directory the postgres user may be unable to enter.
        command.current_dir(&self.base);
        args(&mut command);
        command
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", program.display()))
    }

    /// A client binary: from the server's bin directory when there, else from PATH.
    fn client_binary(&self, name: &str) -> PathBuf {
        let beside = self.bin.join(name);
        if beside.is_file() {
            beside
        } else {
            PathBuf::from(name)
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // A server runs (or was left half-started) while its pid file is there.
        if self.data.join("postmaster.pid").exists() {
            let stopped = self.server_command("pg_ctl", |c| {
                c.arg("-D")
                    .arg(&self.data)
                    .args(["-m", "immediate", "-w", "stop"]);
            });
            if !stopped.status.success() {
                eprintln!("pg_ctl stop: {}", describe(&stopped));
            }
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// The directory holding `initdb` and `pg_ctl`: the highest version under
/// `/usr/lib/postgresql`, else the first PATH entry that has both.
fn find_bin_dir() -> Option<PathBuf> {
    let has_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file();
    let mut versions: Vec<(Vec<u64>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            // "15", "9.6": compared numerically, part by part.
            let version: Option<Vec<u64>> = name.split('.').map(|p| p.parse().ok()).collect();
            let bin = entry.path().join("bin");
            Some((version?, bin)).filter(|(_, bin)| has_both(bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::var_os("PATH").and_then(|path| std::env::split_paths(&path).find(|d| has_both(d)))
}

/// Whether this process runs as root (PostgreSQL must then be run as another user).
fn running_as_root() -> bool {
    // /proc/self/status: "Uid:\treal\teffective\t...". Without /proc, ask `id -u`.
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(line) = status.lines().find(|l| l.starts_with("Uid:")) {
            return line.split_whitespace().nth(2) == Some("0");
        }
    }
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// A directory path no other cluster (in this or another process) uses.
fn unique_temp_dir() -> PathBuf {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    // Short: the socket path inside it must stay under the 107-byte limit.
    std::env::temp_dir().join(format!(
        "jwpg-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("finding a free port: {e}"))
}

/// Panics with the command's output unless it succeeded.
fn check(what: &str, out: &Output) {
    assert!(out.status.success(), "{what} failed: {}", describe(out));
}

/// The exit status and output of a command, for failure messages.
fn describe(out: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
