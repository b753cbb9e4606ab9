//! The JSON Schema check of inputs, and arbitrary schemas compiled. See `jobwire_core::fuzzing::schema`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The driver reads the clock; the machines it drives take `now` from it.
    jobwire_core::fuzzing::run("schema", data, std::time::Instant::now());
});
