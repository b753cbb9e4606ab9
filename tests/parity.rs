//! The two facades are twins, written by hand: this keeps them in step.
//!
//! - **The same surface.** Every public method of every type of `jobwire` exists in
//!   `jobwire-blocking` with the same parameters, and the other way round, read from
//!   the sources (rustfmt's layout: `impl Type {` at the margin, its `pub fn`s four
//!   spaces in). The one intended difference is named in [`ONLY_IN`].
//! - **The same behaviour.** One scenario runs through each facade against the same
//!   server and writes down what it saw — statuses, outputs, error kinds and problem
//!   codes, event kinds in order; the two accounts must be equal.

mod twins;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use jobwire_core::event::EventKind;
use jobwire_core::{CommandSpec, Error, ServiceSpec};
use jobwire_server::ServerConfig;
use serde_json::json;
use twins::{Async, Blocking, Job as _, Sdk, Service as _};

/// Items that one facade has and the other does not, on purpose: (facade, item, why).
const ONLY_IN: &[(&str, &str, &str)] = &[(
    "jobwire-blocking",
    "Items",
    "a list walk's named Iterator type; the async facade returns `impl Stream`",
)];

/// Type → method → parameter names, of the public methods in one facade's sources.
type Surface = BTreeMap<String, BTreeMap<String, Vec<String>>>;

fn surface(crate_dir: &str) -> Surface {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(crate_dir)
        .join("src");
    let mut surface = Surface::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut current: Option<String> = None;
        for (i, line) in lines.iter().enumerate() {
            if let Some(name) = line
                .strip_prefix("pub struct ")
                .or(line.strip_prefix("pub enum "))
            {
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                surface.entry(name).or_default();
            }
            if line.starts_with("impl ") && line.ends_with('{') && !line.contains(" for ") {
                let rest = &line["impl ".len()..];
                // Past the impl's own generics, if any: `impl<T> Name<T> {`.
                let rest = match rest.strip_prefix('<') {
                    Some(generic) => generic.split_once("> ").map_or(rest, |(_, r)| r),
                    None => rest,
                };
                let name = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                current = Some(name);
                continue;
            }
            if line.starts_with('}') {
                current = None;
                continue;
            }
            let Some(ty) = &current else { continue };
            if let Some(rest) = line
                .strip_prefix("    pub fn ")
                .or(line.strip_prefix("    pub async fn "))
            {
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                // The signature up to its body, over as many lines as rustfmt made.
                let signature: String = lines[i..]
                    .iter()
                    .take_while(|l| {
                        !l.trim_end().ends_with('{') && !l.trim_start().starts_with("where")
                    })
                    .chain(lines[i..].iter().find(|l| l.trim_end().ends_with('{')))
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" ");
                surface
                    .entry(ty.clone())
                    .or_default()
                    .insert(name, parameters(&signature));
            } else if let Some(setters) = line.trim().strip_prefix("jobwire_core::__") {
                // Setters stamped from the core's one list (config, queries, batches).
                let which: String = setters.chars().take_while(|c| *c != '!').collect();
                surface
                    .entry(ty.clone())
                    .or_default()
                    .insert(format!("<{which}>"), Vec::new());
            }
        }
    }
    surface
}

/// The parameter names of a signature: `fn x(&self, a: A, b: impl Fn(&B) -> C)` is
/// `["&self", "a", "b"]`.
fn parameters(signature: &str) -> Vec<String> {
    let Some(open) = signature.find('(') else {
        return Vec::new();
    };
    let mut depth = 0;
    let mut params = Vec::new();
    let mut current = String::new();
    for c in signature[open + 1..].chars() {
        match c {
            '(' | '<' | '[' => depth += 1,
            ')' if depth == 0 => break,
            ')' | '>' | ']' => depth -= 1,
            ',' if depth == 0 => {
                params.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    params.push(current);
    params
        .iter()
        .map(|p| p.split(':').next().unwrap_or("").trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

#[test]
fn both_facades_have_the_same_public_methods() {
    let mut asynchronous = surface("crates/jobwire");
    let mut blocking = surface("crates/jobwire-blocking");
    for (facade, item, _) in ONLY_IN {
        let (mine, theirs) = match *facade {
            "jobwire-blocking" => (&mut blocking, &asynchronous),
            _ => (&mut asynchronous, &blocking),
        };
        assert!(
            mine.remove(*item).is_some(),
            "{facade} no longer has {item}"
        );
        assert!(!theirs.contains_key(*item), "both facades have {item} now");
    }
    assert!(
        asynchronous["Client"].contains_key("execute") && asynchronous["JobHandle"].len() >= 10,
        "the scan found too little: {asynchronous:#?}"
    );
    let mut differences = Vec::new();
    let types: BTreeSet<&String> = asynchronous.keys().chain(blocking.keys()).collect();
    for ty in types {
        let (a, b) = (asynchronous.get(ty), blocking.get(ty));
        let (Some(a), Some(b)) = (a, b) else {
            differences.push(format!(
                "{ty}: only in {}",
                if a.is_some() {
                    "jobwire"
                } else {
                    "jobwire-blocking"
                }
            ));
            continue;
        };
        let methods: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for method in methods {
            match (a.get(method), b.get(method)) {
                (Some(pa), Some(pb)) if pa == pb => {}
                (Some(pa), Some(pb)) => differences.push(format!(
                    "{ty}::{method}: ({}) against ({})",
                    pa.join(", "),
                    pb.join(", ")
                )),
                (Some(_), None) => differences.push(format!("{ty}::{method}: only in jobwire")),
                (None, _) => differences.push(format!("{ty}::{method}: only in jobwire-blocking")),
            }
        }
    }
    assert!(
        differences.is_empty(),
        "the facades differ:\n{}",
        differences.join("\n")
    );
}

#[test]
fn the_scan_sees_a_method_missing_from_one_facade() {
    let one = parameters("    pub fn run_with(&self, service: &str, input: &I, options: RunOptions) -> Result<O, Error> {");
    assert_eq!(one, ["&self", "service", "input", "options"]);
    let hook = parameters(
        "pub fn on_event(mut self, hook: impl Fn(&BatchEvent) + Send + Sync + 'static) -> Self {",
    );
    assert_eq!(hook, ["mut self", "hook"]);
}

/// What one facade saw, step by step.
fn account<S: Sdk>(sdk: &S, tag: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut note = |what: &str, outcome: String| seen.push(format!("{what}: {outcome}"));
    let kind = |e: &Error| match e.problem() {
        Some(p) => format!("{} ({})", e.kind_name(), p.code),
        None => e.kind_name().to_owned(),
    };
    note(
        "health",
        sdk.health().map(|h| h.status).unwrap_or_else(|e| kind(&e)),
    );
    note(
        "a service",
        sdk.service("echo")
            .map(|s| s.info().name.clone())
            .unwrap_or_else(|e| kind(&e)),
    );
    note(
        "a missing service",
        sdk.service("missing")
            .map(|_| "found".into())
            .unwrap_or_else(|e| kind(&e)),
    );
    note(
        "a missing job",
        sdk.job("job_missing")
            .map(|_| "found".into())
            .unwrap_or_else(|e| kind(&e)),
    );
    note(
        "run",
        format!(
            "{:?}",
            sdk.run("echo", &json!({"tag": tag})).map_err(|e| kind(&e))
        ),
    );
    let bad = json!({"duration_seconds": "soon"});
    note(
        "run on a bad input",
        format!("{:?}", sdk.run("sleep", &bad).map_err(|e| kind(&e))),
    );
    let slow = json!({"duration_seconds": 5});
    note(
        "a run past its deadline",
        format!(
            "{:?}",
            sdk.run_within(Duration::from_millis(200), "sleep", &slow)
                .map_err(|e| kind(&e))
        ),
    );
    let spec = ServiceSpec::command("never", CommandSpec::new("cat"));
    note(
        "a command service",
        sdk.create_service(&spec)
            .map(|_| "created".into())
            .unwrap_or_else(|e| kind(&e)),
    );

    let mut short = sdk
        .submit("sleep", &json!({"duration_seconds": 0.1}))
        .unwrap();
    note("wait", format!("{}", short.wait().unwrap().status));
    note(
        "result",
        format!("{:?}", short.result().map_err(|e| kind(&e))),
    );
    let mut long = sdk.submit("sleep", &slow).unwrap();
    note(
        "wait_for",
        format!(
            "{:?}",
            long.wait_for(Duration::from_millis(100))
                .map(|j| j.status)
                .map_err(|e| kind(&e))
        ),
    );
    note("cancel", format!("{}", long.cancel().unwrap().status));
    note("cancel again", format!("{}", long.cancel().unwrap().status));
    note(
        "result of a cancelled job",
        format!("{:?}", long.result().map_err(|e| kind(&e))),
    );

    let steps = sdk
        .submit("steps", &json!({"steps": 2, "interval_ms": 5}))
        .unwrap();
    let kinds: Vec<&str> = steps
        .events()
        .map(|e| match e.map(|e| e.kind) {
            Ok(EventKind::Status(_)) => "status",
            Ok(EventKind::Progress { .. }) => "progress",
            Ok(EventKind::Log(_)) => "log",
            Ok(EventKind::Output(_)) => "output",
            Ok(EventKind::Done(_)) => "done",
            Ok(_) => "other",
            Err(_) => "error",
        })
        .collect();
    note("events", kinds.join(" "));

    let echo = sdk.service("echo").unwrap();
    let report = echo.run_all(vec![json!(1), json!(2), json!(3)], Some(2), None);
    let outcomes: Vec<String> = report
        .results
        .iter()
        .map(|(i, r)| format!("{i}={r:?}"))
        .collect();
    note("run_all", outcomes.join(" "));
    let sleep = sdk.service("sleep").unwrap();
    let mixed = vec![json!({"duration_seconds": 0}), bad.clone()];
    let summary = sleep.run_all(mixed, None, None).summary;
    note(
        "run_all summary",
        format!(
            "{} ok, {} failed, {:?}",
            summary.succeeded, summary.failed, summary.by_kind
        ),
    );
    note(
        "try_run_all",
        format!(
            "{:?}",
            sleep.try_run_all(vec![bad], 2).map_err(|e| kind(&e))
        ),
    );
    let mut unordered: Vec<usize> = echo
        .run_unordered(vec![json!(1); 4], 2)
        .into_iter()
        .map(|(i, _)| i)
        .collect();
    unordered.sort_unstable();
    note("run_unordered", format!("{unordered:?}"));
    note(
        "a page of jobs",
        format!("{}", sdk.jobs_page("steps", 1).unwrap().items.len()),
    );
    note(
        "services named sleep",
        format!("{}", sdk.services_named("sleep").unwrap().len()),
    );
    seen
}

#[test]
fn both_facades_behave_the_same_against_one_server() {
    let runtime = twins::runtime();
    let server = runtime
        .block_on(jobwire_server::spawn(ServerConfig::new()))
        .unwrap();
    let async_client = jobwire::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .build()
        .unwrap();
    let blocking_client = jobwire_blocking::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .build()
        .unwrap();
    let from_async = account(
        &Async {
            client: async_client,
            runtime,
        },
        "same",
    );
    let from_blocking = account(&Blocking(blocking_client), "same");
    assert_eq!(from_async.len(), 21, "{from_async:#?}");
    for (a, b) in from_async.iter().zip(&from_blocking) {
        assert_eq!(a, b, "jobwire saw the first, jobwire-blocking the second");
    }
    assert_eq!(from_async, from_blocking);
    // What both saw is what the server does, not two equal mistakes.
    let expect = |what: &str, want: &str| {
        let line = from_async
            .iter()
            .find(|l| l.starts_with(&format!("{what}: ")))
            .unwrap();
        assert_eq!(line, &format!("{what}: {want}"));
    };
    expect("a missing service", "not_found (not_found)");
    expect("run", r#"Ok(Object {"tag": String("same")})"#);
    expect("a run past its deadline", r#"Err("timeout")"#);
    expect("a command service", "forbidden (forbidden)");
    expect("cancel", "cancelled");
    expect("result of a cancelled job", r#"Err("job_cancelled")"#);
    expect(
        "events",
        "status status progress log output progress log output status done",
    );
    runtime.block_on(server.shutdown());
}
