//! Fuzz target: `enclave::fuzzing::chat_request` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| enclave::fuzzing::chat_request(data));
