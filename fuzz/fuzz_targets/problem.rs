//! An error answer (any status, headers, body) read as the SDK's error. See `jobwire_core::fuzzing::problem`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The driver reads the clock; the machines it drives take `now` from it.
    jobwire_core::fuzzing::run("problem", data, std::time::Instant::now());
});
