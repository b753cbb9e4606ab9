//! Chores a contributor repeats: `cargo xtask ci` runs what CI runs.
//!
//! - `cargo xtask lint`: formatting, clippy with `-D warnings`, docs with `-D warnings`,
//!   and the dependency-tree promise (no tokio, hyper or hyper-util under the blocking
//!   facade or the core);
//! - `cargo xtask ci`: `lint`, then the README's test command, `cargo test --workspace`,
//!   then `examples`, `schemathesis`, `openapi-client` and `ui`;
//! - `cargo xtask examples [NAME…]`: runs every example (see `examples.rs`) and prints
//!   the README's table of the Python guides' patterns with each one's result; fails if
//!   an example fails or a pattern lacks an example in a form it needs; CI runs it.
//! - `cargo xtask schemathesis`: the server against its own OpenAPI document with
//!   schemathesis (a pinned version, installed into a virtual environment under
//!   `target/`), every check and every phase; CI runs it.
//! - `cargo xtask openapi-client`: a Python client generated from the OpenAPI document
//!   by openapi-python-client (pinned, in a virtual environment under `target/`) must
//!   come out whole, and calls every operation against the server binary; CI runs it.
//! - `cargo xtask ui`: the dashboard's tests — its JavaScript's unit tests under node's
//!   test runner, then the browser tests in a real headless Chromium (Debian's
//!   `chromium`, installed when missing) driven by `playwright-core` (installed with
//!   `npm ci` from the committed lock file), screenshots under `target/ui-screenshots/`;
//!   CI runs it.
//! - `cargo xtask bench [--quick] [--figure N]…`: the benchmark suite (see `bench.rs`),
//!   written to `bench/RESULTS.md` (with `--figure`, only those figures, whose sections
//!   it rewrites); CI compiles the benchmarks but does not run them.
//! - `cargo xtask soak --minutes N`: both facades' mixed load against the release server
//!   with faults injected, SQLite then memory, N minutes each (see `soak.rs`); samples
//!   and verdict in `bench/SOAK.md`, non-zero exit when anything failed or memory grew.
//! - `cargo xtask fuzz --seconds N [--runs N] [TARGET]`: the fuzz targets of `fuzz/`
//!   (cargo-fuzz on nightly Rust; cargo-fuzz is installed if missing), each for N seconds or
//!   N executions, one process at a time; new inputs that reach new code are merged
//!   into the checked-in `fuzz/corpus/`, and a table gives each target's executions,
//!   executions a second and crashes (see `fuzz.rs`). CI does not fuzz, but replays
//!   the corpus in `cargo test` (`tests/fuzz_corpus.rs`).

mod bench;
mod examples;
mod fuzz;
mod soak;
mod svg;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};

/// Crates whose normal dependencies must never include an async runtime or hyper.
const SYNC_ONLY: &[&str] = &["jobwire-core", "jobwire-ureq", "jobwire-blocking"];
const FORBIDDEN: &[&str] = &["tokio", "hyper", "hyper-util"];

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "lint" => lint(),
        "ci" => lint()
            .and_then(|()| test())
            .and_then(|()| examples::examples(&[]))
            .and_then(|()| schemathesis())
            .and_then(|()| openapi_client())
            .and_then(|()| ui()),
        "test" => test(),
        "examples" => examples::examples(&std::env::args().skip(2).collect::<Vec<_>>()),
        "tree" => dependency_tree(),
        "schemathesis" => schemathesis(),
        "openapi-client" => openapi_client(),
        "ui" => ui(),
        "bench" => bench_figures()
            .and_then(|figures| bench::bench(std::env::args().any(|a| a == "--quick"), &figures)),
        "soak" => soak::soak(std::env::args().skip(2)),
        "fuzz" => fuzz::fuzz(&std::env::args().skip(2).collect::<Vec<_>>()),
        _ => {
            eprintln!("usage: cargo xtask <ci|lint|test|examples [NAME…]|tree|schemathesis|openapi-client|ui|bench [--quick] [--figure N]…|soak --minutes N|fuzz --seconds N [--runs N] [TARGET]>");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask {task}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The figures named by `--figure N` (repeatable; `--figure 3,4` too); none: all.
fn bench_figures() -> Result<Vec<u32>, String> {
    let args: Vec<String> = std::env::args().collect();
    let mut figures = Vec::new();
    for (i, arg) in args.iter().enumerate() {
        let value = match arg.strip_prefix("--figure") {
            Some("") => args.get(i + 1).map(String::as_str),
            Some(rest) => rest.strip_prefix('='),
            None => continue,
        };
        let value = value.ok_or("--figure needs a figure number, e.g. --figure 3")?;
        for n in value.split(',') {
            figures.push(
                n.trim()
                    .parse()
                    .map_err(|_| format!("--figure {value}: not a figure number"))?,
            );
        }
    }
    Ok(figures)
}

fn lint() -> Result<(), String> {
    cargo(&["fmt", "--all", "--", "--check"])?;
    cargo(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    docs()?;
    dependency_tree()
}

/// The API docs build without a warning (broken or redundant links, say).
fn docs() -> Result<(), String> {
    println!("$ RUSTDOCFLAGS=\"-D warnings\" cargo doc --workspace --no-deps");
    let status = cargo_command()
        .args(["doc", "--workspace", "--no-deps"])
        .env("RUSTDOCFLAGS", "-D warnings")
        .status()
        .map_err(|e| format!("cargo doc: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo doc failed ({status})"))
    }
}

fn test() -> Result<(), String> {
    cargo(&["test", "--workspace"])
}

/// Fails when a sync-only crate's normal dependency tree contains a forbidden crate.
fn dependency_tree() -> Result<(), String> {
    for krate in SYNC_ONLY {
        let output = cargo_command()
            .args(["tree", "-p", krate, "-e", "normal", "--prefix", "none"])
            .output()
            .map_err(|e| format!("cargo tree: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "cargo tree -p {krate} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        let tree = String::from_utf8_lossy(&output.stdout);
        let found: Vec<&str> = tree
            .lines()
            .filter_map(|line| line.split_whitespace().next())
            .filter(|name| FORBIDDEN.contains(name))
            .collect();
        if !found.is_empty() {
            return Err(format!(
                "{krate} depends on {found:?} (cargo tree -p {krate} -e normal); \
                 sync-only users must not get an async runtime"
            ));
        }
        println!("dependency tree of {krate}: no {}", FORBIDDEN.join(", no "));
    }
    Ok(())
}

/// The schemathesis release the checks were made with; a newer one may check more.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// Fixed, so a CI run is repeatable; change it to explore.
const SCHEMATHESIS_SEED: &str = "1";

/// Runs schemathesis against the server binary on a free port: 0 failures or an error.
fn schemathesis() -> Result<(), String> {
    let venv = python_tool("schemathesis", SCHEMATHESIS)?;
    let token = format!("st-{}", std::process::id());
    // Commands allowed, so registrations are really made (and deleted, through the
    // document's links) in the stateful phase; as root, its programs run as `nobody`.
    let mut flags = vec!["--token", &token, "--allow-commands"];
    if is_root() {
        flags.extend(["--command-user", "nobody"]);
    }
    let server = Server::start(&flags)?;
    let auth = format!("Authorization: Bearer {token}");
    let document = format!("{}/v1/openapi.json", server.url);
    run(
        &venv.join("bin/st").to_string_lossy(),
        &[
            "--config-file",
            "crates/jobwire-server/schemathesis.toml",
            "run",
            &document,
            "--header",
            &auth,
            "--checks",
            "all",
            "--max-examples",
            "30",
            // One worker: two race inside CPython's parser on this version.
            "--workers",
            "1",
            "--seed",
            SCHEMATHESIS_SEED,
            "--wait-for-schema",
            "10",
        ],
    )
}

/// The generator release the document is checked with.
const OPENAPI_PYTHON_CLIENT: &str = "openapi-python-client==0.28.4";
/// Where the generated client goes (a package named after the directory).
const GENERATED_CLIENT: &str = "target/openapi-client/jobwire_api";

/// Generates a Python client from the OpenAPI document — every schema and operation
/// must come through, a generator's warning is a failure — and runs
/// `openapi-client/check.py` with it against the server binary.
fn openapi_client() -> Result<(), String> {
    let venv = python_tool("openapi-client", OPENAPI_PYTHON_CLIENT)?;
    let _ = std::fs::remove_dir_all(GENERATED_CLIENT);
    std::fs::create_dir_all("target/openapi-client").map_err(|e| e.to_string())?;
    let generated = Command::new(venv.join("bin/openapi-python-client"))
        .args([
            "generate",
            "--path",
            "crates/jobwire-server/openapi.json",
            "--meta",
            "none",
            "--output-path",
            GENERATED_CLIENT,
        ])
        .output()
        .map_err(|e| format!("openapi-python-client: {e}"))?;
    let said = String::from_utf8_lossy(&generated.stdout).into_owned()
        + &String::from_utf8_lossy(&generated.stderr);
    // It formats with ruff when it finds it; without, it says so, which is no warning
    // about the document.
    let warnings: Vec<&str> = said
        .lines()
        .filter(|l| {
            ["Unable to", "Failure to", "Could not", "removal of"]
                .iter()
                .any(|w| l.contains(w))
        })
        .collect();
    if !generated.status.success() || !warnings.is_empty() {
        return Err(format!("the generated client is not whole:\n{said}"));
    }
    let token = format!("oc-{}", std::process::id());
    let server = Server::start(&["--token", &token, "--allow-commands"])?;
    let mut check = Command::new(venv.join("bin/python"));
    check
        .args([
            "crates/jobwire-server/openapi-client/check.py",
            &server.url,
            &token,
        ])
        .env("PYTHONPATH", "target/openapi-client");
    run_command(check)
}

/// A Python tool installed at a pinned version into its own virtual environment under
/// `target/`, once; answers the environment's directory.
fn python_tool(name: &str, requirement: &str) -> Result<std::path::PathBuf, String> {
    let venv = Path::new("target").join(format!("{name}-venv"));
    let marker = venv.join("installed.txt");
    let installed = std::fs::read_to_string(&marker).unwrap_or_default();
    if installed.trim() != requirement {
        run("python3", &["-m", "venv", &venv.to_string_lossy()])?;
        let pip = venv.join("bin/pip");
        run(&pip.to_string_lossy(), &["install", "--quiet", requirement])?;
        std::fs::write(&marker, requirement).map_err(|e| format!("{}: {e}", marker.display()))?;
    }
    Ok(venv)
}

/// Builds the debug server binary; answers its path.
fn debug_server() -> Result<&'static str, String> {
    cargo(&[
        "build",
        "--quiet",
        "-p",
        "jobwire-server",
        "--bin",
        "jobwire-server",
    ])?;
    Ok("target/debug/jobwire-server")
}

/// A running server binary, killed when dropped.
struct Server {
    child: std::process::Child,
    url: String,
}

impl Server {
    /// The debug server binary on a free port with in-memory data, and `args`.
    fn start(args: &[&str]) -> Result<Server, String> {
        let mut command = Command::new(debug_server()?);
        command
            .args(["--memory", "--addr", "127.0.0.1:0"])
            .args(args);
        Server::spawn(command)
    }

    /// Starts `command` (a server binary and its flags) and waits until it says where
    /// it listens.
    fn spawn(mut command: Command) -> Result<Server, String> {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("starting the server: {e}"))?;
        let mut lines = BufReader::new(child.stdout.take().ok_or("no server stdout")?)
            .lines()
            .map_while(Result::ok);
        let url = lines
            .find_map(|line| {
                line.split("listening on ")
                    .nth(1)
                    .map(|u| u.trim().to_owned())
            })
            .ok_or("the server did not say where it listens")?;
        // Keep reading what it prints after, so it never writes into a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Server { child, url })
    }

    /// The server's process id.
    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where the dashboard's files and their tests are.
const UI: &str = "crates/jobwire-server/ui";
/// The browser the dashboard's tests drive (Debian's package `chromium`).
const CHROMIUM: &str = "/usr/bin/chromium";

/// The dashboard's tests: node unit tests, then browser tests against the server binary.
fn ui() -> Result<(), String> {
    if !Path::new(CHROMIUM).exists() {
        let sudo = if is_root() { Vec::new() } else { vec!["sudo"] };
        let apt = |args: &[&str]| {
            let mut command = Command::new(sudo.first().copied().unwrap_or("apt-get"));
            if !sudo.is_empty() {
                command.arg("apt-get");
            }
            command.args(args).env("DEBIAN_FRONTEND", "noninteractive");
            run_command(command)
        };
        apt(&["update", "-qq"])?;
        apt(&["install", "-y", "-qq", "chromium"])?;
    }
    let e2e = format!("{UI}/e2e");
    let mut npm = Command::new("npm");
    npm.args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&e2e);
    run_command(npm)?;
    run("node", &["--test", &format!("{UI}/test/")])?;
    let server = debug_server()?;
    let mut browser_tests = Command::new("node");
    browser_tests
        .arg(format!("{e2e}/run.mjs"))
        .env("JOBWIRE_SERVER_BIN", server)
        .env("CHROMIUM", CHROMIUM);
    run_command(browser_tests)?;
    println!("screenshots: target/ui-screenshots/ (index.txt lists them)");
    Ok(())
}

/// Whether this process runs as root (no `sudo` needed to install packages).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let mut command = Command::new(program);
    command.args(args);
    run_command(command)
}

fn run_command(mut command: Command) -> Result<(), String> {
    let shown = format!("{command:?}");
    println!("$ {shown}");
    let status = command.status().map_err(|e| format!("{shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

fn cargo(args: &[&str]) -> Result<(), String> {
    println!("$ cargo {}", args.join(" "));
    let status = cargo_command()
        .args(args)
        .status()
        .map_err(|e| format!("cargo {}: {e}", args.join(" ")))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed ({status})", args.join(" ")))
    }
}

/// A `cargo` command with the environment a plain `cargo` would have. `cargo run` gave
/// this process its package's CARGO_PKG_NAME, CARGO_MANIFEST_DIR, …; build scripts that
/// watch those (ring's does) would run again and rebuild half the tree.
fn cargo_command() -> Command {
    let mut command = Command::new(cargo_bin());
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let set_by_cargo_run = name.starts_with("CARGO_PKG_")
            || matches!(
                &*name,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
            );
        if set_by_cargo_run {
            command.env_remove(&*name);
        }
    }
    command
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}
