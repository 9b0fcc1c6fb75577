//! Fuzz target: `attestation::fuzzing::policy_file` (see fuzz/README.md).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| attestation::fuzzing::policy_file(data));
