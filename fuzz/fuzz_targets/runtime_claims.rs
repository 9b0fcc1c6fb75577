//! Fuzz target: `attestation::fuzzing::runtime_claims` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| attestation::fuzzing::runtime_claims(data));
