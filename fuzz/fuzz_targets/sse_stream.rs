//! Fuzz target: `client::fuzzing::sse_stream` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| client::fuzzing::sse_stream(data));
