//! The job and event decoders: events, finished jobs, jobs, pages. See `jobwire_core::fuzzing::events`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The driver reads the clock; the machines it drives take `now` from it.
    jobwire_core::fuzzing::run("events", data, std::time::Instant::now());
});
