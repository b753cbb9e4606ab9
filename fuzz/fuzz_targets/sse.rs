//! The event-stream decoder in any chunking, each event through the job-event decoders. See `jobwire_core::fuzzing::sse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The driver reads the clock; the machines it drives take `now` from it.
    jobwire_core::fuzzing::run("sse", data, std::time::Instant::now());
});
