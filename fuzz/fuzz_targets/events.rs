//! The job and event decoders: events, finished jobs, jobs, pages. See `jobwire_core::fuzzing::events`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jobwire_core::fuzzing::run("events", data);
});
