//! Chores a contributor repeats: `cargo xtask ci` runs what CI runs.
//!
//! - `cargo xtask lint`: formatting, clippy with `-D warnings`, docs with `-D warnings`,
//!   and the dependency-tree promise (no tokio, hyper or hyper-util under the blocking
//!   facade or the core);
//! - `cargo xtask ci`: `lint`, then the README's test command, `cargo test --workspace`.

use std::process::{Command, ExitCode};

/// Crates whose normal dependencies must never include an async runtime or hyper.
const SYNC_ONLY: &[&str] = &["jobwire-core", "jobwire-ureq", "jobwire-blocking"];
const FORBIDDEN: &[&str] = &["tokio", "hyper", "hyper-util"];

fn main() -> ExitCode {
    let task = std::env::args().nth(1).unwrap_or_default();
    let result = match task.as_str() {
        "lint" => lint(),
        "ci" => lint().and_then(|()| test()),
        "test" => test(),
        "tree" => dependency_tree(),
        _ => {
            eprintln!("usage: cargo xtask <ci|lint|test|tree>");
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
    let status = Command::new(cargo_bin())
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
        let output = Command::new(cargo_bin())
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

fn cargo(args: &[&str]) -> Result<(), String> {
    println!("$ cargo {}", args.join(" "));
    let status = Command::new(cargo_bin())
        .args(args)
        .status()
        .map_err(|e| format!("cargo {}: {e}", args.join(" ")))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("cargo {} failed ({status})", args.join(" ")))
    }
}

fn cargo_bin() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}
