//! A throwaway PostgreSQL cluster for figure 3: `initdb` into a temporary directory, a
//! server on a free loopback port with the default durability (`fsync` and
//! `synchronous_commit` on), databases created on demand, stopped and removed on drop.
//!
//! Like the tests' cluster (`crates/jobwire-server/tests/support/pg_cluster.rs`), but
//! durable (the tests turn `fsync` off) and answering errors instead of panicking.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A running cluster; stopped and deleted on drop.
pub(super) struct PgCluster {
    /// Where `initdb`, `pg_ctl`, `createdb`, `psql` and `pgbench` are.
    bin: PathBuf,
    /// The temporary directory: the data directory and the socket live inside.
    base: PathBuf,
    data: PathBuf,
    port: u16,
    /// Whether server-side commands run as the `postgres` user (we are root).
    as_postgres: bool,
}

impl PgCluster {
    /// Starts a fresh cluster with PostgreSQL's default durability. `max_connections`
    /// is raised to 300: pgbench's 64 clients, two servers' pools and graphile-worker's
    /// pool must fit (never at once, but a closed pool's backends take a moment to go).
    pub(super) fn start() -> Result<PgCluster, String> {
        let bin = find_bin_dir().ok_or(
            "figure 3 needs PostgreSQL's server binaries (Debian's package `postgresql`): \
             no initdb and pg_ctl in /usr/lib/postgresql/*/bin",
        )?;
        let base = std::env::temp_dir().join(format!("jobwire-bench-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(&base).map_err(|e| format!("{}: {e}", base.display()))?;
        let as_postgres = crate::is_root();
        let mut cluster = PgCluster {
            data: base.join("data"),
            bin,
            base,
            port: 0,
            as_postgres,
        };
        if as_postgres {
            // PostgreSQL refuses to run as root: the postgres user owns the cluster.
            check(
                "chown postgres",
                Command::new("chown")
                    .arg("postgres")
                    .arg(&cluster.base)
                    .output(),
            )?;
        }
        let data = cluster.data.clone();
        cluster.server_command("initdb", |c| {
            c.arg("-D").arg(&data).args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
            ]);
        })?;
        cluster.port = free_port()?;
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300",
            cluster.port,
            cluster.base.display()
        );
        let log = cluster.base.join("server.log");
        let started = cluster.server_command("pg_ctl", |c| {
            c.arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .arg("-o")
                .arg(&options)
                .args(["-w", "start"]);
        });
        if let Err(e) = started {
            let server_log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("{e}\n{server_log}"));
        }
        Ok(cluster)
    }

    /// Creates database `name`; answers its URL.
    pub(super) fn database(&self, name: &str) -> Result<String, String> {
        let port = self.port.to_string();
        check(
            &format!("createdb {name}"),
            Command::new(self.bin.join("createdb"))
                .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", name])
                .output(),
        )?;
        Ok(format!("postgres://postgres@127.0.0.1:{port}/{name}"))
    }

    /// Runs `sql` in database `name`.
    pub(super) fn psql(&self, name: &str, sql: &str) -> Result<(), String> {
        let port = self.port.to_string();
        check(
            "psql",
            Command::new(self.bin.join("psql"))
                .args(["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-q"])
                .args(["-v", "ON_ERROR_STOP=1", "-d", name, "-c", sql])
                .output(),
        )
        .map(drop)
    }

    /// `pgbench` (beside the server binaries, else on PATH) with the cluster's address
    /// and user set.
    pub(super) fn pgbench(&self, program: impl FnOnce(&Path) -> Command) -> Command {
        let beside = self.bin.join("pgbench");
        let path = if beside.is_file() {
            beside
        } else {
            PathBuf::from("pgbench")
        };
        let mut command = program(&path);
        command.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
        ]);
        command
    }

    /// The server's version, as `SHOW server_version` says.
    pub(super) fn version(&self) -> String {
        Command::new(self.bin.join("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-Atc", "SHOW server_version"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    }

    /// Runs a server-side binary in the cluster's directory, as `postgres` when we are
    /// root.
    fn server_command(
        &self,
        name: &str,
        args: impl FnOnce(&mut Command),
    ) -> Result<Output, String> {
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
        check(name, command.output())
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.data.join("postmaster.pid").exists() {
            let data = self.data.clone();
            let stopped = self.server_command("pg_ctl", |c| {
                c.arg("-D").arg(&data).args(["-m", "fast", "-w", "stop"]);
            });
            if let Err(e) = stopped {
                eprintln!("{e}");
            }
        }
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

/// The highest version's bin directory under `/usr/lib/postgresql` with `initdb` and
/// `pg_ctl`.
fn find_bin_dir() -> Option<PathBuf> {
    let mut versions: Vec<(u64, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse().ok()?;
            let bin = entry.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// A loopback port that was free a moment ago.
pub(super) fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

/// The output of a command that must succeed.
fn check(what: &str, output: std::io::Result<Output>) -> Result<Output, String> {
    let output = output.map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}
