//! The event-stream decoder in any chunking, each event through the job-event decoders. See `jobwire_core::fuzzing::sse`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    jobwire_core::fuzzing::run("sse", data);
});
