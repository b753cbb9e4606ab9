//! A throwaway PostgreSQL cluster: `initdb` into a temporary directory, a server on a
//! free loopback port, databases created on demand, everything stopped and removed on
//! drop. Tests' clusters skip durability (`fsync=off`); figure 3 of `cargo xtask bench`
//! runs one with PostgreSQL's defaults ([`Settings::durable`]).
//!
//! Only `std` is used, so the integration tests, the store's unit tests and the xtask
//! all include this one file with `#[path]`. [`PgCluster::launch`] and the methods
//! answer errors; [`PgCluster::start`] and [`PgCluster::start_with`], for tests, panic
//! on them (the binaries are there, so a test must not pass silently). Every cluster
//! has its own directory and port, so tests running in parallel in one process may each
//! start one.
//!
//! A cluster may speak TLS only ([`Tls::Only`]): its certificates are made for it with
//! the `openssl` command, which Debian's `postgresql` package brings along (through
//! `ssl-cert`).

// Not every test binary that includes this file uses all of it.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// How many times `start` tries a fresh port when the server does not come up (another
/// process may have taken the port between our probe and the server's bind).
const START_ATTEMPTS: usize = 3;

/// Whether a cluster speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// `ssl=off`, initdb's default.
    Off,
    /// `ssl=on`, with a certificate for `localhost` and `127.0.0.1` signed by a CA made
    /// for the cluster ([`PgCluster::root_cert`]), and TCP connections accepted over
    /// TLS only (`hostssl` in `pg_hba.conf`). The role [`SCRAM_ROLE`], once a test creates
    /// it, logs in with a password (SCRAM), so channel binding can be shown.
    Only,
}

/// How a cluster is set up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Whether it speaks TLS.
    pub tls: Tls,
    /// PostgreSQL's default durability (`fsync` on, initdb syncing its files), or none.
    pub durable: bool,
    /// `max_connections` (PostgreSQL's default is 100).
    pub max_connections: u32,
}

impl Settings {
    /// A test's cluster: quick, not durable.
    pub fn for_tests(tls: Tls) -> Settings {
        Settings {
            tls,
            durable: false,
            max_connections: 100,
        }
    }

    /// A benchmark's cluster: PostgreSQL's default durability, `max_connections`
    /// connections, no TLS.
    pub fn durable(max_connections: u32) -> Settings {
        Settings {
            tls: Tls::Off,
            durable: true,
            max_connections,
        }
    }
}

/// The role that logs in with a password on a [`Tls::Only`] cluster.
pub const SCRAM_ROLE: &str = "scram_user";

/// The configuration `openssl` makes the test certificates with: a CA, and a server
/// certificate for `localhost` and `127.0.0.1` that it signs.
const OPENSSL_CNF: &str = "\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// A running PostgreSQL cluster; stopped and deleted on drop.
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
    /// Starts a fresh test cluster, or returns `None` (after printing why) when no
    /// PostgreSQL binaries can be found. Any other failure panics.
    pub fn start() -> Option<PgCluster> {
        PgCluster::start_with(Tls::Off)
    }

    /// Starts a fresh test cluster that speaks TLS as `tls` says; `None` as
    /// [`PgCluster::start`].
    pub fn start_with(tls: Tls) -> Option<PgCluster> {
        PgCluster::launch(Settings::for_tests(tls)).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts a fresh cluster set up as `settings` say; `Ok(None)` (after printing why)
    /// when no PostgreSQL binaries can be found.
    pub fn launch(settings: Settings) -> Result<Option<PgCluster>, String> {
        let Some(bin) = find_bin_dir() else {
            eprintln!(
                "skipping: no PostgreSQL server binaries (initdb, pg_ctl) in \
                 /usr/lib/postgresql/*/bin or on PATH"
            );
            return Ok(None);
        };
        let base = unique_temp_dir();
        std::fs::create_dir_all(&base).map_err(|e| format!("creating {}: {e}", base.display()))?;
        // From here on, an early return still stops the server and removes the directory.
        let mut cluster = PgCluster {
            data: base.join("data"),
            bin,
            base,
            port: 0,
            as_postgres: running_as_root(),
        };
        if cluster.as_postgres {
            // PostgreSQL refuses to run as root: the postgres user owns the cluster.
            let chown = Command::new("chown")
                .arg("postgres")
                .arg(&cluster.base)
                .output();
            check("chown postgres", chown)?;
        }
        let initdb = cluster.server_command("initdb", |c| {
            c.arg("-D")
                .arg(&cluster.data)
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8"])
                // C collation: text compares bytewise, like the RFC 3339 times expect.
                .arg("--no-locale");
            if !settings.durable {
                c.arg("--no-sync");
            }
        });
        check("initdb", initdb)?;
        let mut options = format!(
            " -c listen_addresses=127.0.0.1 -c max_connections={}",
            settings.max_connections
        );
        if !settings.durable {
            options.push_str(" -c fsync=off");
        }
        if settings.tls == Tls::Only {
            cluster.make_certificates()?;
            let hba = format!(
                "local all all trust\n\
                 hostssl all {SCRAM_ROLE} 127.0.0.1/32 scram-sha-256\n\
                 hostssl all all 127.0.0.1/32 trust\n"
            );
            let path = cluster.data.join("pg_hba.conf");
            std::fs::write(&path, hba).map_err(|e| format!("writing {}: {e}", path.display()))?;
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                cluster.base.join("server.crt").display(),
                cluster.base.join("server.key").display()
            ));
        }

        let log = cluster.base.join("server.log");
        let mut last_failure = String::new();
        for _ in 0..START_ATTEMPTS {
            cluster.port = free_port()?;
            let options = format!("-p {} -k {}{options}", cluster.port, cluster.base.display());
            let started = cluster.server_command("pg_ctl", |c| {
                c.arg("-D")
                    .arg(&cluster.data)
                    .arg("-l")
                    .arg(&log)
                    .arg("-o")
                    .arg(&options)
                    .args(["-w", "start"]);
            });
            match check("pg_ctl start", started) {
                Ok(_) => return Ok(Some(cluster)),
                Err(e) => {
                    let server_log = std::fs::read_to_string(&log).unwrap_or_default();
                    last_failure = format!("{e}\n{server_log}");
                }
            }
        }
        Err(format!(
            "pg_ctl start failed {START_ATTEMPTS} times: {last_failure}"
        ))
    }

    /// Creates database `name` and returns its URL,
    /// `postgres://postgres@127.0.0.1:PORT/NAME`.
    pub fn database(&self, name: &str) -> Result<String, String> {
        let created = self.client_command("createdb").arg(name).output();
        check(&format!("createdb {name}"), created)?;
        Ok(format!(
            "postgres://postgres@127.0.0.1:{}/{name}",
            self.port
        ))
    }

    /// Runs `sql` in database `name` with `psql`, stopping at its first error.
    pub fn psql(&self, name: &str, sql: &str) -> Result<(), String> {
        let ran = self
            .client_command("psql")
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-d", name, "-c", sql])
            .output();
        check("psql", ran).map(drop)
    }

    /// A client program (`createdb`, `psql`, `pgbench`) with the cluster's address and
    /// user set ([`client_program`](Self::client_program), [`connection_args`](Self::connection_args)).
    pub fn client_command(&self, name: &str) -> Command {
        let mut command = Command::new(self.client_program(name));
        command.args(self.connection_args());
        command
    }

    /// Where client program `name` is: the server's bin directory when there, else PATH.
    pub fn client_program(&self, name: &str) -> PathBuf {
        let beside = self.bin.join(name);
        if beside.is_file() {
            beside
        } else {
            PathBuf::from(name)
        }
    }

    /// The arguments that point a client program at the cluster, as its superuser.
    pub fn connection_args(&self) -> [String; 6] {
        [
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
        ]
        .map(String::from)
    }

    /// The server's version, as `SHOW server_version` says (empty when it cannot tell).
    pub fn version(&self) -> String {
        self.client_command("psql")
            .args(["-Atc", "SHOW server_version"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    }

    /// The loopback TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The CA certificate (PEM) that signed the server's certificate, on a [`Tls::Only`]
    /// cluster: its clients' `sslrootcert`.
    pub fn root_cert(&self) -> PathBuf {
        self.base.join("ca.crt")
    }

    /// A CA certificate (PEM) that signed nothing of this cluster's: the wrong root.
    pub fn other_root_cert(&self) -> PathBuf {
        self.base.join("other-ca.crt")
    }

    /// Makes, in the cluster's directory and as the user the server runs as (it must own
    /// its key): a CA, another CA, and a server certificate and key signed by the first.
    fn make_certificates(&self) -> Result<(), String> {
        let openssl = find_on_path("openssl").ok_or(
            "a TLS cluster needs the openssl command (Debian's postgresql package brings \
             it through ssl-cert); none on PATH",
        )?;
        let cnf = self.base.join("openssl.cnf");
        std::fs::write(&cnf, OPENSSL_CNF).map_err(|e| format!("writing {}: {e}", cnf.display()))?;
        // EC P-256 keys: made at once, unlike RSA.
        let new_key = "-config openssl.cnf -nodes \
                       -newkey ec -pkeyopt ec_paramgen_curve:prime256v1";
        let steps = [
            format!(
                "req -x509 -days 2 -extensions ca {new_key} -subj /CN=jobwire-test-ca \
                 -keyout ca.key -out ca.crt"
            ),
            format!(
                "req -x509 -days 2 -extensions ca {new_key} -subj /CN=another-ca \
                 -keyout other-ca.key -out other-ca.crt"
            ),
            format!("req -new {new_key} -subj /CN=localhost -keyout server.key -out server.csr"),
            "x509 -req -days 2 -in server.csr -CA ca.crt -CAkey ca.key -set_serial 2 \
             -extfile openssl.cnf -extensions server -out server.crt"
                .to_owned(),
        ];
        for step in &steps {
            let made = self.as_server_user(&openssl, |c| {
                c.args(step.split_whitespace());
            });
            check(&format!("openssl {step}"), made)?;
        }
        Ok(())
    }

    /// Runs a server-side binary from the bin directory, as `postgres` when we are root.
    fn server_command(
        &self,
        name: &str,
        args: impl FnOnce(&mut Command),
    ) -> std::io::Result<Output> {
        self.as_server_user(&self.bin.join(name), args)
    }

    /// Runs `program` in the cluster's directory, as `postgres` when we are root.
    fn as_server_user(
        &self,
        program: &Path,
        args: impl FnOnce(&mut Command),
    ) -> std::io::Result<Output> {
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args([OsStr::new("-u"), OsStr::new("postgres"), OsStr::new("--")])
                .arg(program);
            c
        } else {
            Command::new(program)
        };
        // Not a directory the postgres user may be unable to enter.
        command.current_dir(&self.base);
        args(&mut command);
        command.output()
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
            if let Err(e) = check("pg_ctl stop", stopped) {
                eprintln!("{e}");
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

/// The first `name` on PATH.
fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|program| program.is_file())
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
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

/// The output of a command that must have run and succeeded, or what went wrong.
fn check(what: &str, output: std::io::Result<Output>) -> Result<Output, String> {
    let out = output.map_err(|e| format!("running {what}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{what} failed: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out)
}
