//! An error answer (any status, headers, body) read as the SDK's error. See `jobwire_core::fuzzing::problem`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jobwire_core::fuzzing::run("problem", data);
});
