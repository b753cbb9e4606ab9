//! `cargo xtask examples`: builds the examples once, runs each with a time limit, and
//! prints the pattern table of README.md ("From the Python SDKs") with each pattern's
//! examples, their result and wall time.
//!
//! It fails when an example fails (it exits non-zero, which each does when what it shows
//! did not happen) or runs past its time, when one of the guides' 43 patterns has no
//! example, when a pattern marked "async + blocking" lacks one of its forms, or when the
//! table and the examples' `//! Patterns:` lines disagree about which example answers
//! which pattern. The table is the one list of patterns; the doc comments must match it.
//!
//! `cargo xtask examples NAME…` runs only the examples named (the checks of the table
//! still apply).

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How many patterns each guide has: S0.1–S0.5, S1.1–S1.7, S2.1–S2.9, S3.1–S3.10 and
/// S4.1–S4.12.
const PATTERNS_PER_GUIDE: [u32; 5] = [5, 7, 9, 10, 12];
/// The README section whose table lists the patterns.
const HEADING: &str = "## From the Python SDKs";
/// The line of an example's doc comment that names the patterns it answers.
const PATTERNS_LINE: &str = "//! Patterns:";
/// An example takes a few seconds; past this it is stuck.
const TIME_LIMIT: Duration = Duration::from_secs(60);

/// The forms a pattern must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forms {
    Async,
    Blocking,
    Both,
}

impl Forms {
    fn parse(cell: &str) -> Option<Forms> {
        match cell.trim() {
            "async" => Some(Forms::Async),
            "blocking" => Some(Forms::Blocking),
            "async + blocking" => Some(Forms::Both),
            _ => None,
        }
    }

    /// Whether examples of these forms (blocking or not) give what is asked.
    fn met_by(self, blocking: &[bool]) -> bool {
        let has_async = blocking.iter().any(|b| !b);
        let has_blocking = blocking.iter().any(|b| *b);
        match self {
            Forms::Async => has_async,
            Forms::Blocking => has_blocking,
            Forms::Both => has_async && has_blocking,
        }
    }
}

/// One row of the table.
struct Row {
    id: String,
    forms: Forms,
    examples: BTreeSet<String>,
}

/// One example: the patterns its doc comment names.
struct Example {
    patterns: BTreeSet<String>,
}

/// How one example's run went.
struct Ran {
    ok: bool,
    wall: Duration,
}

/// Whether an example is a blocking one: its name ends in `_blocking`.
fn is_blocking(name: &str) -> bool {
    name.ends_with("_blocking")
}

pub fn examples(only: &[String]) -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .ok_or("no workspace root")?
        .to_path_buf();
    let rows = read_table(&root.join("README.md"))?;
    let examples = read_examples(&root.join("examples"))?;
    let mut problems = disagreements(&rows, &examples);
    for name in only {
        if !examples.contains_key(name) {
            problems.push(format!("there is no example {name}"));
        }
    }

    let binaries = build(&root)?;
    let mut ran = BTreeMap::new();
    for name in examples.keys() {
        if !only.is_empty() && !only.contains(name) {
            continue;
        }
        let Some(binary) = binaries.get(name) else {
            problems.push(format!("cargo built no binary for example {name}"));
            continue;
        };
        println!("$ cargo run --example {name}");
        ran.insert(name.clone(), run(&root, name, binary)?);
    }

    let answered = report(&rows, &examples, &ran);
    let failed: Vec<&String> = ran.iter().filter(|(_, r)| !r.ok).map(|(n, _)| n).collect();
    let total: Duration = ran.values().map(|r| r.wall).sum();
    println!(
        "\n{answered}/{} patterns answered and ok; {} of {} examples ran ok, in {:.1} s",
        rows.len(),
        ran.len() - failed.len(),
        ran.len(),
        total.as_secs_f64()
    );
    let both: Vec<&str> = rows
        .iter()
        .filter(|r| r.forms == Forms::Both)
        .map(|r| r.id.as_str())
        .collect();
    println!("in both forms: {}", both.join(", "));
    if !failed.is_empty() {
        problems.push(format!(
            "failed: {}",
            failed
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

/// The rows of the table under [`HEADING`] in README.md.
fn read_table(readme: &Path) -> Result<Vec<Row>, String> {
    let text = std::fs::read_to_string(readme).map_err(|e| format!("{}: {e}", readme.display()))?;
    let section = text
        .split_once(HEADING)
        .map(|(_, rest)| rest)
        .ok_or_else(|| format!("README.md has no section {HEADING:?}"))?;
    let mut rows = Vec::new();
    for line in section.lines().take_while(|l| !l.starts_with("## ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // "| id | guide | pattern | forms | run it |" splits into 7 cells.
        if cells.len() != 7 || !cells[1].starts_with('S') || cells[1].contains(' ') {
            continue;
        }
        let forms = Forms::parse(cells[4]).ok_or_else(|| {
            format!(
                "README.md, pattern {}: forms {:?} is none of async, blocking, async + blocking",
                cells[1], cells[4]
            )
        })?;
        let examples = cells[5]
            .split("--example ")
            .skip(1)
            .filter_map(|rest| {
                rest.split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .next()
            })
            .map(str::to_owned)
            .collect();
        rows.push(Row {
            id: cells[1].to_owned(),
            forms,
            examples,
        });
    }
    Ok(rows)
}

/// Every example (`examples/NAME.rs` or `examples/NAME/main.rs`) with the patterns its
/// doc comment names.
fn read_examples(dir: &Path) -> Result<BTreeMap<String, Example>, String> {
    let mut examples = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        let (name, source) = if path.extension().is_some_and(|e| e == "rs") {
            (path.file_stem(), path.clone())
        } else if path.join("main.rs").is_file() {
            (path.file_name(), path.join("main.rs"))
        } else {
            continue;
        };
        let name = name
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("{}: not a UTF-8 name", path.display()))?
            .to_owned();
        let text =
            std::fs::read_to_string(&source).map_err(|e| format!("{}: {e}", source.display()))?;
        let patterns = text
            .lines()
            .take_while(|l| l.starts_with("//!"))
            .find_map(|l| l.strip_prefix(PATTERNS_LINE))
            .map(|ids| {
                ids.split(',')
                    .map(|id| id.trim().to_owned())
                    .filter(|id| !id.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        examples.insert(name, Example { patterns });
    }
    Ok(examples)
}

/// Where the table and the examples disagree, or the table is not the guides' whole
/// list.
fn disagreements(rows: &[Row], examples: &BTreeMap<String, Example>) -> Vec<String> {
    let mut problems = Vec::new();
    let expected: BTreeSet<String> = PATTERNS_PER_GUIDE
        .iter()
        .enumerate()
        .flat_map(|(guide, n)| (1..=*n).map(move |i| format!("S{guide}.{i}")))
        .collect();
    let listed: BTreeSet<String> = rows.iter().map(|r| r.id.clone()).collect();
    if listed.len() != rows.len() {
        problems.push("README.md lists a pattern twice".to_owned());
    }
    for id in expected.difference(&listed) {
        problems.push(format!("pattern {id} is not in the README's table"));
    }
    for id in listed.difference(&expected) {
        problems.push(format!("the README's table lists {id}, which no guide has"));
    }
    for (name, example) in examples {
        if example.patterns.is_empty() {
            problems.push(format!(
                "example {name} names no pattern ({PATTERNS_LINE} … in its doc comment)"
            ));
        }
        for id in example.patterns.difference(&listed) {
            problems.push(format!(
                "example {name} names {id}, which the table does not list"
            ));
        }
    }
    for row in rows {
        let claiming: BTreeSet<String> = examples
            .iter()
            .filter(|(_, e)| e.patterns.contains(&row.id))
            .map(|(n, _)| n.clone())
            .collect();
        if claiming != row.examples {
            problems.push(format!(
                "pattern {}: the table names {:?}, the examples' doc comments {:?}",
                row.id, row.examples, claiming
            ));
        }
        if row.examples.is_empty() {
            problems.push(format!("pattern {} has no example", row.id));
        }
        let forms: Vec<bool> = row.examples.iter().map(|n| is_blocking(n)).collect();
        if !row.forms.met_by(&forms) {
            problems.push(format!(
                "pattern {} needs {:?} forms, its examples are {:?}",
                row.id, row.forms, row.examples
            ));
        }
    }
    problems
}

/// Builds every example of the root package once; answers each one's binary. With
/// `--workspace`, as `cargo test --workspace` builds them: features unify the same way,
/// so after the tests this finds them built.
fn build(root: &Path) -> Result<BTreeMap<String, PathBuf>, String> {
    println!("$ cargo build --workspace --examples");
    let manifest = root.join("Cargo.toml");
    let mut command = crate::cargo_command();
    let mut child = command
        .args([
            "build",
            "--workspace",
            "--examples",
            "--message-format=json-render-diagnostics",
        ])
        .current_dir(root)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cargo build: {e}"))?;
    let mut binaries = BTreeMap::new();
    let stdout = child.stdout.take().ok_or("no stdout from cargo build")?;
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| e.to_string())?;
        let Ok(message) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let is_example = message["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "example"));
        let of_root = message["manifest_path"]
            .as_str()
            .is_some_and(|m| Path::new(m) == manifest);
        if message["reason"] == "compiler-artifact" && is_example && of_root {
            if let (Some(name), Some(binary)) = (
                message["target"]["name"].as_str(),
                message["executable"].as_str(),
            ) {
                binaries.insert(name.to_owned(), PathBuf::from(binary));
            }
        }
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("cargo build of the examples failed ({status})"));
    }
    Ok(binaries)
}

/// Runs one example with its output in a log file beside its binary, stopping it past
/// [`TIME_LIMIT`]; shows the log when it failed.
fn run(root: &Path, name: &str, binary: &Path) -> Result<Ran, String> {
    let log_path = binary.with_extension("log");
    let log = File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut child = Command::new(binary)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    let (ok, why) = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break (status.success(), format!("{status}"));
        }
        if started.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break (
                false,
                format!("still running after {TIME_LIMIT:?}, stopped"),
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = started.elapsed();
    if !ok {
        let output = std::fs::read_to_string(&log_path).unwrap_or_default();
        let lines: Vec<&str> = output.lines().collect();
        println!(
            "--- {name} failed ({why}); the last of its output ({}):",
            log_path.display()
        );
        for line in &lines[lines.len().saturating_sub(40)..] {
            println!("    {line}");
        }
    }
    Ok(Ran { ok, wall })
}

/// Prints pattern → example → result → time; answers how many patterns were answered
/// with every form they need and every example ok.
fn report(
    rows: &[Row],
    examples: &BTreeMap<String, Example>,
    ran: &BTreeMap<String, Ran>,
) -> usize {
    println!(
        "\n{:<7} {:<22} {:<9} {:<7} {:>7}",
        "pattern", "example", "form", "result", "time"
    );
    let mut answered = 0;
    for row in rows {
        let names: Vec<&String> = examples
            .iter()
            .filter(|(_, e)| e.patterns.contains(&row.id))
            .map(|(n, _)| n)
            .collect();
        let mut all_ok = !names.is_empty();
        for (i, name) in names.iter().enumerate() {
            let id = if i == 0 { row.id.as_str() } else { "" };
            let form = if is_blocking(name) {
                "blocking"
            } else {
                "async"
            };
            let (result, time) = match ran.get(*name) {
                Some(r) => (
                    if r.ok { "ok" } else { "FAILED" },
                    format!("{:.1} s", r.wall.as_secs_f64()),
                ),
                None => ("-", String::new()),
            };
            all_ok &= result == "ok";
            println!("{id:<7} {name:<22} {form:<9} {result:<7} {time:>7}");
        }
        if names.is_empty() {
            println!("{:<7} {:<22} {:<9} {:<7}", row.id, "(none)", "", "MISSING");
        }
        let forms: Vec<bool> = names.iter().map(|n| is_blocking(n)).collect();
        if all_ok && row.forms.met_by(&forms) {
            answered += 1;
        }
    }
    answered
}
