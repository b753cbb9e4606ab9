//! The `Prefer` header as the server reads it. See `jobwire_core::fuzzing::prefer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The driver reads the clock; the machines it drives take `now` from it.
    jobwire_core::fuzzing::run("prefer", data, std::time::Instant::now());
});
