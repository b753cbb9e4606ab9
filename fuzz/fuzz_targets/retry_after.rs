//! `Retry-After` parsing and the pauses made of it. See `jobwire_core::fuzzing::retry_after`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The driver reads the clock; the machines it drives take `now` from it.
    jobwire_core::fuzzing::run("retry_after", data, std::time::Instant::now());
});
