//! The fuzz corpus, replayed on stable: every input the fuzzers kept (`fuzz/corpus/<target>/`,
//! the crashes they found among them) and every seed they start from
//! (`jobwire_core::fuzzing::seeds`, big ones made in code), run through the fuzz
//! targets' own bodies (`jobwire_core::fuzzing::run`), so CI runs every case ever found.
//! `cargo xtask fuzz` runs the fuzzers themselves (nightly, not CI).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::Instant;

use jobwire_core::fuzzing;
use jobwire_server::{spawn_blocking_server, ServerConfig};

/// The stack the inputs run on: the fuzzers run them on a main thread's 8 MiB in an
/// optimised build; this is a debug build, whose frames are several times larger, and a
/// test thread has 2 MiB. (A `pattern` of 170 nested repetitions — the regex crate stops
/// at 250 — overflowed 2 MiB here, not in the optimised build.)
const STACK: usize = 32 << 20;

/// Runs every corpus file and seed of `target`; fails naming each input that panicked.
fn replay(target: &'static str) {
    let replayed = std::thread::Builder::new()
        .name(format!("replay {target}"))
        .stack_size(STACK)
        .spawn(move || replay_here(target))
        .unwrap()
        .join();
    if let Err(panic) = replayed {
        std::panic::resume_unwind(panic);
    }
}

fn replay_here(target: &str) {
    assert!(fuzzing::TARGETS.contains(&target), "{target} is not built");
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    let inputs = files
        .iter()
        .map(|file| (file.display().to_string(), std::fs::read(file).unwrap()))
        .chain(
            fuzzing::seeds(target)
                .into_iter()
                .enumerate()
                .map(|(i, seed)| (format!("seed {i} of {target}"), seed)),
        );
    let mut count = 0;
    let mut failed = Vec::new();
    for (name, data) in inputs {
        count += 1;
        match catch_unwind(AssertUnwindSafe(|| {
            fuzzing::run(target, &data, Instant::now())
        })) {
            Ok(known) => assert!(known),
            Err(_) => failed.push(name),
        }
    }
    assert!(failed.is_empty(), "{target}: {failed:#?} panicked");
    assert!(count > files.len(), "{target} has no seeds");
}

#[test]
fn sse() {
    replay("sse");
}

#[test]
fn events() {
    replay("events");
}

#[test]
fn problem() {
    replay("problem");
}

#[test]
fn retry_after() {
    replay("retry_after");
}

#[test]
fn prefer() {
    replay("prefer");
}

#[test]
fn schema() {
    replay("schema");
}

/// Every target has a corpus directory and a test here.
#[test]
fn every_target_is_replayed() {
    let tested = [
        "sse",
        "events",
        "problem",
        "retry_after",
        "prefer",
        "schema",
    ];
    assert_eq!(fuzzing::TARGETS, tested);
    for target in fuzzing::TARGETS {
        let source = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/fuzz_targets")
            .join(format!("{target}.rs"));
        assert!(source.is_file(), "no {}", source.display());
    }
}

/// The schema target's copies of the built-in services' input schemas are what a
/// running server shows.
#[test]
fn builtin_schemas_are_the_servers() {
    let server = spawn_blocking_server(ServerConfig::new()).unwrap();
    let client = jobwire_blocking::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .build()
        .unwrap();
    let builtins: Vec<jobwire_blocking::Service> = client
        .services()
        .items()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
        .into_iter()
        .filter(|s| s.kind == "builtin")
        .collect();
    assert_eq!(builtins.len(), fuzzing::BUILTIN_SCHEMAS.len());
    for service in builtins {
        let (_, text) = fuzzing::BUILTIN_SCHEMAS
            .iter()
            .find(|(name, _)| *name == service.name)
            .unwrap_or_else(|| panic!("no schema for {}", service.name));
        let copy: serde_json::Value = serde_json::from_str(text).unwrap();
        assert_eq!(copy, service.input_schema, "{}", service.name);
    }
    server.shutdown();
}
