//! 10,000 `run`s at once under `ulimit -n 1024`, in both facades, all succeed: each
//! client has at most 100 connections to its server (the default
//! `max_connections_per_host`), the calls past them wait their turn instead of failing,
//! and running out of file descriptors while connecting is waited out. Without the cap
//! the client opened a socket per call and thousands failed to connect.
//!
//! A test binary of its own: it lowers its own process's `RLIMIT_NOFILE` (the server
//! runs in the same process and counts against it too). Its tests take turns.
#![cfg(target_os = "linux")]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jobwire_core::Error;
use jobwire_server::ServerConfig;
use serde_json::{json, Value};

/// Calls at once.
const CALLS: usize = 10_000;
/// The common `ulimit -n`.
const FD_LIMIT: u64 = 1024;

/// One test at a time: both share the process's descriptors.
static TURN: Mutex<()> = Mutex::new(());

/// Lowers this process's soft limit on open files to 1024 (never above its hard limit).
fn ulimit_n_1024() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        limit.rlim_cur = FD_LIMIT.min(limit.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
    }
}

/// Open descriptors of this process, counted every few milliseconds while `f` runs; the
/// most seen.
fn peak_descriptors<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let done = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicUsize::new(0));
    let sampler = {
        let (done, peak) = (done.clone(), peak.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
                    peak.fetch_max(entries.count(), Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let out = f();
    done.store(true, Ordering::Release);
    sampler.join().unwrap();
    (out, peak.load(Ordering::Relaxed))
}

/// A short job: 10 ms.
fn input() -> Value {
    json!({ "duration_seconds": 0.01 })
}

fn check(results: Vec<Result<Value, Error>>, peak: usize, took: Duration, facade: &str) {
    let failed: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err().map(ToString::to_string))
        .collect();
    assert!(
        failed.is_empty(),
        "{facade}: {} of {CALLS} failed, e.g. {:?}",
        failed.len(),
        &failed[..failed.len().min(3)]
    );
    assert_eq!(results.len(), CALLS);
    eprintln!("{facade}: {CALLS} runs in {took:?}, at most {peak} descriptors open");
    assert!(peak < FD_LIMIT as usize, "{peak}");
}

#[test]
fn ten_thousand_runs_at_once_async() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    ulimit_n_1024();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let server = jobwire_server::spawn(ServerConfig::new()).await.unwrap();
        let client = jobwire::Client::builder()
            .base_url(server.url())
            .token(server.token())
            .build()
            .unwrap();
        let started = Instant::now();
        let (results, peak) = {
            let done = Arc::new(AtomicBool::new(false));
            let peak = Arc::new(AtomicUsize::new(0));
            let sampler = {
                let (done, peak) = (done.clone(), peak.clone());
                std::thread::spawn(move || {
                    while !done.load(Ordering::Acquire) {
                        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
                            peak.fetch_max(entries.count(), Ordering::Relaxed);
                        }
                        std::thread::sleep(Duration::from_millis(5));
                    }
                })
            };
            let input = input();
            let runs = (0..CALLS).map(|_| client.run::<_, Value>("sleep", &input));
            let results = futures_util::future::join_all(runs).await;
            done.store(true, Ordering::Release);
            sampler.join().unwrap();
            (results, peak.load(Ordering::Relaxed))
        };
        check(results, peak, started.elapsed(), "jobwire");
        server.shutdown().await;
    });
}

#[test]
fn ten_thousand_runs_at_once_blocking() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    ulimit_n_1024();
    let server = jobwire_server::spawn_blocking_server(ServerConfig::new()).unwrap();
    let client = jobwire_blocking::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .build()
        .unwrap();
    let started = Instant::now();
    let (results, peak) = peak_descriptors(|| {
        std::thread::scope(|scope| {
            let runs: Vec<_> = (0..CALLS)
                .map(|_| {
                    std::thread::Builder::new()
                        // Threads are the blocking facade's concurrency: 10,000 of them,
                        // with small stacks.
                        .stack_size(256 * 1024)
                        .spawn_scoped(scope, || client.run::<_, Value>("sleep", &input()))
                        .unwrap()
                })
                .collect();
            runs.into_iter()
                .map(|run| run.join().unwrap())
                .collect::<Vec<_>>()
        })
    });
    check(results, peak, started.elapsed(), "jobwire-blocking");
    server.shutdown();
}

/// Opens files until the process has no descriptor left; closing some of them (dropping
/// part of the list) frees them again.
fn exhaust_descriptors() -> Vec<std::fs::File> {
    let mut held = Vec::new();
    loop {
        match std::fs::File::open("/dev/null") {
            Ok(file) => held.push(file),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(libc::EMFILE), "{e}");
                return held;
            }
        }
    }
}

/// A call that finds the process out of file descriptors waits for one, and succeeds
/// once some are closed: back-pressure, not an error.
fn out_of_descriptors_is_waited_out(call: impl FnOnce() -> Result<(), Error> + Send + 'static) {
    let mut held = exhaust_descriptors();
    let finished = Arc::new(AtomicBool::new(false));
    let caller = {
        let finished = finished.clone();
        std::thread::spawn(move || {
            let result = call();
            finished.store(true, Ordering::Release);
            result
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !finished.load(Ordering::Acquire),
        "still waiting, not failed"
    );
    held.truncate(held.len().saturating_sub(64));
    caller.join().unwrap().unwrap();
    drop(held);
}

#[test]
fn running_out_of_descriptors_is_back_pressure() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    ulimit_n_1024();
    let server = jobwire_server::spawn_blocking_server(ServerConfig::new()).unwrap();
    let blocking = jobwire_blocking::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .build()
        .unwrap();
    out_of_descriptors_is_waited_out(move || blocking.health().map(drop));
    let client = jobwire::Client::builder()
        .base_url(server.url())
        .token(server.token())
        .build()
        .unwrap();
    // The runtime exists before the descriptors run out: it needs some of its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    out_of_descriptors_is_waited_out(move || runtime.block_on(client.health()).map(drop));
    server.shutdown();
}
